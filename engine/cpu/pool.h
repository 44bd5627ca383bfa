/* pool.h - a small persistent thread pool that hands out ranges of work: the
 * caller's thread is worker 0 and claims ranges too, n-1 pthreads join in as
 * soon as they wake. Each worker owns a contiguous part of every job and
 * works through it front to back, so it reads its share of a matrix as one
 * stream; a worker with nothing left takes halves of the others' remaining
 * parts from their back ends, which balances the finish. Nobody waits for a
 * worker that has not started (on a busy machine the caller simply does more
 * of the work itself); the caller waits only for ranges already claimed. */
#ifndef ENGINE_CPU_POOL_H
#define ENGINE_CPU_POOL_H

#include "common.h"

typedef struct pool pool_t;

/* fn(arg, begin, end, tid) runs on items [begin, end) on whichever worker
 * claimed them; tid (0..n-1) identifies the worker, for per-worker scratch. */
typedef void (*pool_fn)(void *arg, int64_t begin, int64_t end, int tid);

#define POOL_MAX_ITEMS ((1 << 20) - 1)

/* Starts n_threads - 1 threads (n_threads >= 1). ENG_ENOMEM or ENG_EIO (thread
 * creation failed) with a message; *out is NULL then. */
int pool_new(pool_t **out, int n_threads, eng_err *err);

/* Runs items 0..n_items-1 (0 <= n_items <= POOL_MAX_ITEMS) in ranges that
 * start at multiples of `grain` and hold at least `grain` items (except the
 * last), and returns when all are done. One caller thread at a time. */
void pool_run(pool_t *p, int64_t n_items, int64_t grain, pool_fn fn, void *arg);

int pool_size(const pool_t *p);

/* Joins the threads and frees the pool; accepts NULL. */
void pool_free(pool_t *p);

#endif
