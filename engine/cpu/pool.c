/* pool.c - the range-claiming thread pool (see pool.h).
 *
 * One 64-bit word describes the current job and its progress:
 *
 *   claim = | generation : 24 | next item : 20 | item count : 20 |
 *
 * The caller writes fn/arg/grain, then publishes a new generation with
 * next = 0. Any worker (the caller included) claims [next, next + k) by
 * compare-and-swap, k = max(grain, remaining / (2 n)) rounded to the grain.
 * A job cannot finish while some of its items are unclaimed, so a worker that
 * won a range may read fn/arg/grain: they still belong to its job.
 * `completed` counts finished items; the caller returns when it reaches the
 * count. Idle workers spin briefly on the word, then sleep on a condition
 * variable (a seq_cst `sleepers` count tells the caller whether to signal). */
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

/* How long an idle worker spins before it sleeps. Short: between the jobs of
 * a decode step the caller is busy for a few microseconds at most, and on a
 * shared machine a longer spin takes CPU share from the caller (50 us here:
 * 2-thread decode 26-29 tok/s under load 4.3, vs 32 with 15 us, alternated
 * runs; one thread: 32). The clock is read every 64 pauses (~5 us here). */
#define SPIN_NS 15000L

#define GEN(c) ((uint32_t)((c) >> 40))
#define NEXT(c) ((int64_t)(((c) >> 20) & 0xfffff))
#define TOTAL(c) ((int64_t)((c) & 0xfffff))
#define MAKE(g, next, total) (((uint64_t)((g) & 0xffffff) << 40) | ((uint64_t)(next) << 20) | (uint64_t)(total))

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
    _Atomic uint64_t claim;
    atomic_long completed;
    atomic_int sleepers;
    atomic_bool quit;
    pool_fn fn;
    void *arg;
    atomic_llong grain;
};

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* Claims and runs ranges of the job whose generation is gen until none is
 * left (or a newer job has replaced it). */
static void work_on(pool_t *p, uint32_t gen, int tid)
{
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    while (GEN(c) == gen && NEXT(c) < TOTAL(c)) {
        int64_t next = NEXT(c), total = TOTAL(c);
        int64_t grain = atomic_load_explicit(&p->grain, memory_order_relaxed);   /* re-checked by the CAS */
        int64_t k = (total - next) / (2 * p->n);
        k = k < grain ? grain : k - k % grain;
        int64_t end = next + k < total ? next + k : total;
        uint64_t want = MAKE(gen, end, total);
        if (atomic_compare_exchange_weak_explicit(&p->claim, &c, want, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            p->fn(p->arg, next, end, tid);
            atomic_fetch_add_explicit(&p->completed, end - next, memory_order_release);
            c = atomic_load_explicit(&p->claim, memory_order_acquire);
        }
    }
}

static void *worker_main(void *varg)
{
    worker_arg *wa = varg;
    pool_t *p = wa->pool;
    uint32_t seen = GEN(atomic_load(&p->claim));
    for (;;) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        unsigned spins = 0;
        uint64_t c;
        while (GEN(c = atomic_load_explicit(&p->claim, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->quit, memory_order_acquire)) {
            CPU_RELAX();
            if ((++spins & 63) == 0 && elapsed_ns(&t0) > SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->sleepers, 1);
                while (GEN(atomic_load(&p->claim)) == seen && !atomic_load(&p->quit))
                    pthread_cond_wait(&p->cv, &p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mu);
            }
        }
        if (atomic_load_explicit(&p->quit, memory_order_acquire))
            return NULL;
        seen = GEN(c);
        work_on(p, seen, wa->tid);
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

void pool_run(pool_t *p, int64_t n_items, int64_t grain, pool_fn fn, void *arg)
{
    if (n_items <= 0)
        return;
    if (grain < 1)
        grain = 1;
    if (p->n == 1) {
        fn(arg, 0, n_items, 0);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store_explicit(&p->grain, grain, memory_order_relaxed);
    atomic_store_explicit(&p->completed, 0, memory_order_relaxed);
    uint32_t gen = (GEN(atomic_load_explicit(&p->claim, memory_order_relaxed)) + 1) & 0xffffff;
    atomic_store(&p->claim, MAKE(gen, 0, n_items));   /* seq_cst: pairs with `sleepers` */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    work_on(p, gen, 0);
    unsigned spins = 0;
    while (atomic_load_explicit(&p->completed, memory_order_acquire) < n_items) {
        CPU_RELAX();
        if ((++spins & 1023) == 0)
            sched_yield();   /* a worker holding a range may be descheduled */
    }
}

int pool_size(const pool_t *p) { return p->n; }

void pool_free(pool_t *p)
{
    if (!p)
        return;
    if (p->started > 0) {
        atomic_store(&p->quit, true);
        pthread_mutex_lock(&p->mu);
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
