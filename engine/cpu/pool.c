/* pool.c - the persistent thread pool (see pool.h). A job is published by
 * bumping a generation counter under the mutex; workers spin on it for a short
 * while (back-to-back decode dispatches) before sleeping on the condition
 * variable (long gaps, and while OpenBLAS has the cores). */
#include "pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_NS 200000L   /* how long an idle worker spins before sleeping */

typedef struct {
    pool_t *pool;
    int tid;
} worker_arg;

struct pool {
    int n;
    pthread_t *threads;
    worker_arg *args;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;
    atomic_int done;
    atomic_bool quit;
    pool_fn fn;
    void *arg;
};

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

static void *worker_main(void *varg)
{
    worker_arg *wa = varg;
    pool_t *p = wa->pool;
    unsigned seen = 0;
    for (;;) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        unsigned spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen) {
            CPU_RELAX();
            if ((++spins & 255) == 0 && elapsed_ns(&t0) > SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen)
                    pthread_cond_wait(&p->cv, &p->mu);
                pthread_mutex_unlock(&p->mu);
            }
        }
        seen = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (atomic_load_explicit(&p->quit, memory_order_acquire))
            return NULL;
        p->fn(p->arg, wa->tid, p->n);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
    }
}

int pool_new(pool_t **out, int n_threads, eng_err *err)
{
    *out = NULL;
    if (n_threads < 1)
        n_threads = 1;
    pool_t *p = eng_calloc(1, sizeof *p);
    if (!p)
        return eng_fail(err, ENG_ENOMEM, "thread pool: out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->threads = eng_calloc((size_t)n_threads, sizeof *p->threads);
        p->args = eng_calloc((size_t)n_threads, sizeof *p->args);
        if (!p->threads || !p->args) {
            pool_free(p);
            return eng_fail(err, ENG_ENOMEM, "thread pool: out of memory");
        }
        for (int i = 1; i < n_threads; i++) {
            p->args[i].pool = p;
            p->args[i].tid = i;
            if (pthread_create(&p->threads[i], NULL, worker_main, &p->args[i]) != 0) {
                pool_free(p);
                return eng_fail(err, ENG_EIO, "thread pool: cannot start thread %d of %d", i, n_threads);
            }
            p->started = i;
        }
    }
    *out = p;
    return ENG_OK;
}

void pool_run(pool_t *p, pool_fn fn, void *arg)
{
    if (p->n == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(arg, 0, p->n);
    unsigned spins = 0;
    while (atomic_load_explicit(&p->done, memory_order_acquire) < p->n - 1) {
        CPU_RELAX();
        if ((++spins & 1023) == 0)
            sched_yield();   /* a worker may be descheduled on a busy machine */
    }
}

int pool_size(const pool_t *p) { return p->n; }

void pool_free(pool_t *p)
{
    if (!p)
        return;
    if (p->started > 0) {
        atomic_store_explicit(&p->quit, true, memory_order_release);
        pthread_mutex_lock(&p->mu);
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        for (int i = 1; i <= p->started; i++)
            pthread_join(p->threads[i], NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    eng_free(p->threads);
    eng_free(p->args);
    eng_free(p);
}

void pool_split(int64_t n, int tid, int nt, int64_t align, int64_t *b, int64_t *e)
{
    if (align < 1)
        align = 1;
    int64_t chunks = (n + align - 1) / align;
    int64_t per = chunks / nt, extra = chunks % nt;
    int64_t c0 = tid * per + (tid < extra ? tid : extra);
    int64_t c1 = c0 + per + (tid < extra ? 1 : 0);
    *b = c0 * align < n ? c0 * align : n;
    *e = c1 * align < n ? c1 * align : n;
}
