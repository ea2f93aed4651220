/* The host kernels' worker threads (host_pool.h). A job is published under a lock with a new generation; every
 * chunk is claimed by a compare-and-swap on one word that holds the generation and the next chunk, so a worker
 * that wakes after its job is over finds another generation there and claims nothing. The caller waits only for
 * claimed chunks, which are running on a core. After a job a worker spins for SPIN_NS (the next dtype's launch, or
 * the next step of a tight loop, finds it awake), then sleeps on a condition variable: no longer spin that would take
 * a core from the caller's BLAS threads. */
#define _GNU_SOURCE
#include "host_pool.h"

#include <stdlib.h>

#if defined(__unix__) || defined(__APPLE__)
#define POOL_PTHREADS 1
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>
#endif


int poolDefaultThreads(void)
{
	static int cached;  /* read once, as OpenMP reads OMP_NUM_THREADS once */
	if (cached > 0)
		return cached;

	int n = 0;
	const char *env = getenv("OMP_NUM_THREADS");
	if (env != NULL)
		n = atoi(env);
#if defined(__linux__)
	cpu_set_t set;
	if (n <= 0 && sched_getaffinity(0, sizeof(set), &set) == 0)
		n = CPU_COUNT(&set);
#endif
#ifdef POOL_PTHREADS
	if (n <= 0)
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
	cached = n > 0 ? n : 1;
	return cached;
}


static void runAlone(int64_t chunks, ChunkFn fn, void *context)
{
	for (int64_t c = 0; c < chunks; c++)
		fn(c, context);
}


#ifdef POOL_PTHREADS

#define MAX_WORKERS 255
#define SPIN_NS 30000
/* Jobs in a row where the workers did not pay before the next ones run alone: 1, 2, 4 ... up to MAX_ALONE of them,
   then a try again. A miss: a job that took as long as the caller's own pace over every chunk, or workers woken
   after a job for the next one and asleep again when it came (other work in between: in training, NumPy's BLAS
   threads spin between GEMMs and hold the cores, and a woken worker lands on the caller's core, costing it
   10-40 us). */
#define MISSES_BEFORE_ALONE 2
#define MAX_ALONE 64
#define CHUNK_BITS 24
#define CHUNK_MASK ((UINT64_C(1) << CHUNK_BITS) - 1)

static pthread_mutex_t poolLock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t poolWake = PTHREAD_COND_INITIALIZER;
/* under poolLock */
static int started, forkHandled, sleeping, wokeForNext;
static uint64_t generation;
static ChunkFn jobFn;
static void *jobContext;
static int64_t jobChunks;
static int jobHelpers;
/* the current job's (generation << CHUNK_BITS) | next chunk, and its chunks done */
static _Atomic uint64_t claim;
static _Atomic int64_t finished;
static _Atomic uint64_t published;  /* generation, for spinning workers */
static atomic_flag busy = ATOMIC_FLAG_INIT;
/* under busy */
static int misses, alone;


/* Returns how many chunks this thread ran. */
static int64_t takeChunks(uint64_t gen, ChunkFn fn, void *context, int64_t chunks)
{
	int64_t ran = 0;
	uint64_t tag = gen << CHUNK_BITS;
	uint64_t v = atomic_load_explicit(&claim, memory_order_relaxed);

	while ((v & ~CHUNK_MASK) == tag && (int64_t)(v & CHUNK_MASK) < chunks)
	{
		if (atomic_compare_exchange_weak_explicit(&claim, &v, v + 1, memory_order_acquire, memory_order_relaxed))
		{
			fn((int64_t)(v & CHUNK_MASK), context);
			atomic_fetch_add_explicit(&finished, 1, memory_order_release);
			ran++;
			v = atomic_load_explicit(&claim, memory_order_relaxed);
		}
	}
	return ran;
}


static int64_t nanosBetween(const struct timespec *a, const struct timespec *b)
{
	return (int64_t)(b->tv_sec - a->tv_sec) * 1000000000 + (b->tv_nsec - a->tv_nsec);
}


/* Up to SPIN_NS, or until a job after gen is published. */
static void spinWhile(uint64_t gen)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do
	{
		for (int i = 0; i < 64; i++)
		{
			if (atomic_load_explicit(&published, memory_order_relaxed) != gen)
				return;
#if defined(__x86_64__) || defined(__i386__)
			__builtin_ia32_pause();
#endif
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (nanosBetween(&start, &now) < SPIN_NS);
}


static void *workerMain(void *arg)
{
	int index = (int)(intptr_t)arg;
	uint64_t seen = 0;

	pthread_mutex_lock(&poolLock);
	for (;;)
	{
		while (generation == seen)
		{
			sleeping++;
			pthread_cond_wait(&poolWake, &poolLock);
			sleeping--;
		}
		seen = generation;
		if (index >= jobHelpers)
			continue;

		ChunkFn fn = jobFn;
		void *context = jobContext;
		int64_t chunks = jobChunks;
		pthread_mutex_unlock(&poolLock);
		takeChunks(seen, fn, context, chunks);
		spinWhile(seen);
		pthread_mutex_lock(&poolLock);
	}
	return NULL;
}


/* In a forked child only the forking thread exists: the pool starts again from nothing. */
static void afterForkInChild(void)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
	poolLock = lock;
	poolWake = wake;
	started = sleeping = wokeForNext = misses = alone = 0;
	atomic_flag_clear(&busy);
}


/* Workers up to helpers (fewer if the system refuses more), with every signal blocked: Python's main thread takes
   them. Under poolLock. */
static void startWorkers(int helpers)
{
	if (!forkHandled)
		forkHandled = pthread_atfork(NULL, NULL, afterForkInChild) == 0;

	sigset_t all, previous;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &previous);
	while (started < helpers)
	{
		pthread_t thread;
		if (pthread_create(&thread, NULL, workerMain, (void *)(intptr_t)started) != 0)
			break;
		pthread_detach(thread);
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
}


/* Publishes a job (chunks 0: none, only waking the workers so that they spin for the next). Under poolLock. */
static uint64_t publish(int64_t chunks, int helpers, ChunkFn fn, void *context)
{
	uint64_t gen = ++generation;
	jobFn = fn;
	jobContext = context;
	jobChunks = chunks;
	jobHelpers = helpers;
	atomic_store_explicit(&finished, 0, memory_order_relaxed);
	atomic_store_explicit(&claim, gen << CHUNK_BITS, memory_order_release);
	atomic_store_explicit(&published, gen, memory_order_relaxed);
	if (sleeping > 0)
		pthread_cond_broadcast(&poolWake);
	return gen;
}


/* Workers asleep (the last job was more than SPIN_NS ago: other work in between, as in training) and a job that is
   not large: it runs alone, since a woken worker would arrive late or share the caller's core; then they are woken to
   spin for the next job (the next dtype's, or a tight loop's). */
static void runThenWake(int64_t chunks, int helpers, ChunkFn fn, void *context)
{
	runAlone(chunks, fn, context);
	pthread_mutex_lock(&poolLock);
	publish(0, helpers, fn, context);
	wokeForNext = 1;
	pthread_mutex_unlock(&poolLock);
}


/* After a job that helping did not pay for (paid = 0): the next ones run alone (MISSES_BEFORE_ALONE). */
static void account(int paid)
{
	misses = paid ? 0 : misses + 1;
	if (misses >= MISSES_BEFORE_ALONE)
	{
		int doublings = misses - MISSES_BEFORE_ALONE;
		alone = doublings >= 6 ? MAX_ALONE : 1 << doublings;
	}
}


void poolRun(int64_t chunks, int helpers, ChunkFn fn, void *context, int large)
{
	if (helpers > MAX_WORKERS)
		helpers = MAX_WORKERS;
	if (chunks < 2 || helpers < 1 || chunks > (int64_t)CHUNK_MASK
		|| atomic_flag_test_and_set_explicit(&busy, memory_order_acquire))
	{
		runAlone(chunks, fn, context);
		return;
	}
	if (alone > 0)
	{
		alone--;
		runAlone(chunks, fn, context);
		atomic_flag_clear_explicit(&busy, memory_order_release);
		return;
	}

	struct timespec start, mine, end;
	clock_gettime(CLOCK_MONOTONIC, &start);
	pthread_mutex_lock(&poolLock);
	startWorkers(helpers);
	int asleep = sleeping >= (started < helpers ? started : helpers);
	if (wokeForNext)  /* the last job woke them for this one: were they still awake? */
	{
		wokeForNext = 0;
		account(!asleep);
	}
	if (asleep && (!large || alone > 0))
	{
		pthread_mutex_unlock(&poolLock);
		if (alone > 0)
		{
			alone--;
			runAlone(chunks, fn, context);
		}
		else
			runThenWake(chunks, helpers, fn, context);
		atomic_flag_clear_explicit(&busy, memory_order_release);
		return;
	}
	uint64_t gen = publish(chunks, helpers, fn, context);
	pthread_mutex_unlock(&poolLock);

	int64_t ran = takeChunks(gen, fn, context, chunks);
	clock_gettime(CLOCK_MONOTONIC, &mine);
	while (atomic_load_explicit(&finished, memory_order_acquire) < chunks)
		sched_yield();  /* a claimed chunk is running: only its own work is waited for */
	clock_gettime(CLOCK_MONOTONIC, &end);

	/* alone, at the caller's pace: its time over the chunks it ran, times all of them */
	double aloneNs = ran > 0 ? (double)nanosBetween(&start, &mine) / (double)ran * (double)chunks : 0.0;
	account(ran < chunks && (double)nanosBetween(&start, &end) < aloneNs);
	atomic_flag_clear_explicit(&busy, memory_order_release);
}


int poolThreaded(void)
{
	return 1;
}

#else

void poolRun(int64_t chunks, int helpers, ChunkFn fn, void *context, int large)
{
	(void)helpers, (void)large;
	runAlone(chunks, fn, context);
}


int poolThreaded(void)
{
	return 0;
}

#endif
