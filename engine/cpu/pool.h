/* pool.h - a small persistent thread pool that hands out chunks of work: the
 * caller's thread is worker 0 and claims chunks too, n-1 pthreads join in as
 * soon as they wake. Nobody waits for a worker that has not started (on a
 * busy machine the caller simply does more of the chunks itself); the caller
 * waits only for chunks already claimed. */
#ifndef ENGINE_CPU_POOL_H
#define ENGINE_CPU_POOL_H

#include "common.h"

typedef struct pool pool_t;

/* fn(arg, chunk, tid) runs once for each chunk 0..n_chunks-1, on whichever
 * worker claims it; tid (0..n-1) identifies the worker, for per-worker
 * scratch. */
typedef void (*pool_fn)(void *arg, int64_t chunk, int tid);

#define POOL_MAX_CHUNKS ((1 << 20) - 1)

/* Starts n_threads - 1 threads (n_threads >= 1). ENG_ENOMEM or ENG_EIO (thread
 * creation failed) with a message; *out is NULL then. */
int pool_new(pool_t **out, int n_threads, eng_err *err);

/* Runs every chunk (0 <= n_chunks <= POOL_MAX_CHUNKS) and returns when all are
 * done. One caller thread at a time. */
void pool_run(pool_t *p, int64_t n_chunks, pool_fn fn, void *arg);

int pool_size(const pool_t *p);

/* Joins the threads and frees the pool; accepts NULL. */
void pool_free(pool_t *p);

#endif
