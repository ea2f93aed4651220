/* Worker threads that help the calling thread (host_pool.c): the caller splits its work into chunks, wakes the
 * workers and takes chunks itself; it waits only for the chunks a worker has claimed, never for a worker that has
 * not arrived. OpenMP's team waits for every thread at the end of a region, and on a busy machine (numpy's BLAS
 * threads spin for a while after each GEMM) a thread that has no core arrives a scheduler slice later: 4 ms for a
 * 25 us update on 2 cores (docs/benchmarks.md). */
#ifndef PUZZLELIB_RMSPROP_HOST_POOL_H
#define PUZZLELIB_RMSPROP_HOST_POOL_H

#include <stdint.h>

typedef void (*ChunkFn)(int64_t chunk, void *context);

/* Runs fn(c, context) for every chunk c in [0, chunks), on the calling thread and up to helpers workers; returns
   when all have run. A second caller while a job runs (another Python thread) runs its chunks alone. Sleeping
   workers are woken first only for a large job (worth a late worker); a small one runs alone and wakes them after,
   for the next. Where helping does not pay (measured per job), the next jobs run alone, up to 64 of them. */
void poolRun(int64_t chunks, int helpers, ChunkFn fn, void *context, int large);

/* The threads the kernels use by default: OMP_NUM_THREADS where set, else the cores this process may run on. */
int poolDefaultThreads(void);

/* Whether workers can be started here (POSIX threads). */
int poolThreaded(void);

#endif
