/* The host kernels' threading, shared by rmsprop_host.c and rmsprop_host8.c: a table of rows, each with a size in
 * units (elements, or 8-bit state's blocks), split into chunks for the calling thread and the worker threads
 * (host_pool.h); a span function does the work. */
#ifndef PUZZLELIB_RMSPROP_HOST_PARALLEL_H
#define PUZZLELIB_RMSPROP_HOST_PARALLEL_H

#include <stddef.h>
#include <stdint.h>

#include "quantize8.h"
#include "rmsprop_update.h"
#include "tensor_table.h"

/* Per-ISA versions chosen at load time, so a portable build still uses AVX2 / AVX-512. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define ISA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef ISA_CLONES
#define ISA_CLONES
#endif
/* 8-bit state's loops also move bytes (codes), which gcc puts in 64-byte vectors only with AVX512BW: under the
   "avx512f" clone they ran in 32-byte ones. x86-64-v4 is AVX512F, BW, DQ and VL (every AVX-512 CPU but Xeon Phi,
   which takes the AVX2 clone); the resolver knows it from gcc 12. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__has_attribute)
#if __has_attribute(target_clones)
#define ISA_CLONES_BYTES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
#endif
#ifndef ISA_CLONES_BYTES
#define ISA_CLONES_BYTES ISA_CLONES
#endif

typedef struct { int dtype; int *nonFinite; const RMSPropFlavour *flavour; } SpanArgs;
/* Works on units [start, start + n) of one row. */
typedef void (*SpanFn)(const void *row, int64_t start, int64_t n, const SpanArgs *args);
/* rows: count rows of rowBytes; the row's size (int64) at sizeOffset; unit: elements per size unit. */
typedef struct { const char *rows; int count; size_t rowBytes, sizeOffset; int unit; } Table;

void parallelApply(const Table *t, SpanFn span, const SpanArgs *args, int threads);

/* The tables of TensorEntry rows (units: elements) and of Quant8Entry rows (units: 8-bit state's blocks). */
#define TENSOR_TABLE(table, count) ((Table){(const char *)(table), (count), sizeof(TensorEntry), offsetof(TensorEntry, size), 1})
#define QUANT8_TABLE(table, count) \
	((Table){(const char *)(table), (count), sizeof(Quant8Entry), offsetof(Quant8Entry, blocks), QUANT8_BLOCK})

#endif
