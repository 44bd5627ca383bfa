/* pool.h - a small persistent thread pool: the caller's thread is worker 0
 * and n-1 pthreads wait (spinning briefly, then on a condition variable) for
 * the next job, so a decode step's ~200 dispatches cost microseconds. */
#ifndef ENGINE_CPU_POOL_H
#define ENGINE_CPU_POOL_H

#include "common.h"

typedef struct pool pool_t;

/* fn(arg, tid, n) runs once on each of the n workers (tid 0..n-1); it splits
 * its own work by tid. */
typedef void (*pool_fn)(void *arg, int tid, int n);

/* Starts n_threads - 1 threads (n_threads >= 1). ENG_ENOMEM or ENG_EIO (thread
 * creation failed) with a message; *out is NULL then. */
int pool_new(pool_t **out, int n_threads, eng_err *err);

/* Runs fn on every worker and returns when all have finished. Not reentrant:
 * one caller thread at a time. */
void pool_run(pool_t *p, pool_fn fn, void *arg);

int pool_size(const pool_t *p);

/* Joins the threads and frees the pool; accepts NULL. */
void pool_free(pool_t *p);

/* The range [*b, *e) of n items that worker tid of nt takes, in chunks of
 * `align` items (the last worker takes the remainder). */
void pool_split(int64_t n, int tid, int nt, int64_t align, int64_t *b, int64_t *e);

#endif
