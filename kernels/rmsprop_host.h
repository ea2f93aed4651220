/* Host (CPU) kernels: one call updates every row of a multi-tensor table. */
#ifndef PUZZLELIB_RMSPROP_HOST_H
#define PUZZLELIB_RMSPROP_HOST_H

#include "rmsprop_update.h"
#include "tensor_table.h"

enum { RMSPROP_FLOAT32 = 0, RMSPROP_FLOAT16 = 1, RMSPROP_BFLOAT16 = 2 };

/* threads <= 0 means all available; small tables run on one thread (fork/join costs more than it saves). */
void rmspropHostApply(const TensorEntry *table, int count, int dtype, const RMSPropFlavour *flavour, int threads);

int rmspropHostMaxThreads(void);

/* The flavours (RMSProp options, RMSPropGraves); combo: RMSPROP_FLAVOUR_* (parameter / state storage). */
enum
{
	RMSPROP_FLAVOUR_FLOAT32 = 0, RMSPROP_FLAVOUR_FLOAT16 = 1, RMSPROP_FLAVOUR_FLOAT16_STATE32 = 2,
	RMSPROP_FLAVOUR_BFLOAT16 = 3, RMSPROP_FLAVOUR_BFLOAT16_STATE32 = 4
};
void rmspropHostFlavour(const FlavourEntry *table, int count, int combo, const RMSPropFlavour *flavour, int threads);

/* 1 if any grad in the table is inf or NaN (reads the grads only), else 0. */
int rmspropHostNonFinite(const TensorEntry *table, int count, int dtype, int threads);

/* 8-bit state (kernels/rmsprop_host8.c): every flavour over Quant8Entry rows, dtype RMSPROP_FLOAT32/16/BFLOAT16 for
   the parameters; and the codes of a float32 array. */
void rmspropHostQuant8(const Quant8Entry *table, int count, int dtype, const RMSPropFlavour *flavour, int threads);
void rmspropHostQuantize(const float *values, long long n, unsigned char *codes, float *scales, int isSigned);
void rmspropHostDequantize(const unsigned char *codes, const float *scales, long long n, float *values, int isSigned);

#endif
