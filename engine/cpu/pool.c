/* pool.c - the range-claiming thread pool (see pool.h).
 *
 * A job's items are cut into grains, and the grains into one contiguous
 * region per worker. Each region is one 64-bit word:
 *
 *   region = | generation : 24 | front : 20 | back : 20 |     (in grains)
 *
 * A worker takes halves of what is left of its own region from the front,
 * so that its ranges follow one another and it reads its share of a matrix
 * as one stream (the kernels' prefetch of the next block lands on the next
 * range). When its region is empty it steals halves of the others' from the
 * back. Every claim is a compare-and-swap that names the generation, so a
 * worker still busy with an old job cannot take items of a new one; a job
 * cannot finish while some of its grains are unclaimed, so a worker that won
 * a range may read fn/arg/grain: they still belong to its job.
 *
 * The caller writes fn/arg/grain and the regions, then publishes the new
 * generation. `completed` counts finished items; the caller returns when it
 * reaches the count. Idle workers spin briefly on the generation, then sleep
 * on a condition variable (a seq_cst `sleepers` count tells the caller
 * whether to signal). */
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
#define FRONT(c) ((int64_t)(((c) >> 20) & 0xfffff))
#define BACK(c) ((int64_t)((c) & 0xfffff))
#define MAKE(g, front, back) (((uint64_t)((g) & 0xffffff) << 40) | ((uint64_t)(front) << 20) | (uint64_t)(back))

typedef struct {
    pool_t *pool;
    int tid;
} worker_arg;

/* Padded so that no two words share a cache line (the allocation is only
 * 16-byte aligned): owners claim without contention. */
typedef struct {
    _Atomic uint64_t word;
    char pad[120];
} region_t;

struct pool {
    int n;
    pthread_t *threads;
    worker_arg *args;
    region_t *regions;   /* [n] */
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pool_fn fn;
    void *arg;
    int64_t grain, n_items;
    char pad0[128];
    _Atomic uint32_t gen;
    atomic_int sleepers;
    atomic_bool quit;
    char pad1[128];
    atomic_long completed;   /* its own cache line: added to as ranges finish */
};

static long elapsed_ns(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0->tv_sec) * 1000000000L + (t.tv_nsec - t0->tv_nsec);
}

/* Claims and runs ranges of the job whose generation is gen until none is
 * left (or a newer job has replaced it): its own region front to back, then
 * the others' from the back. */
static void work_on(pool_t *p, uint32_t gen, int tid)
{
    for (int i = 0; i < p->n; i++) {
        int v = (tid + i) % p->n;
        _Atomic uint64_t *w = &p->regions[v].word;
        uint64_t c = atomic_load_explicit(w, memory_order_acquire);
        while (GEN(c) == gen && FRONT(c) < BACK(c)) {
            int64_t front = FRONT(c), back = BACK(c), half = (back - front + 1) / 2, b, e;
            uint64_t want;
            if (v == tid) {
                b = front, e = front + half;
                want = MAKE(gen, e, back);
            } else {
                b = back - half, e = back;
                want = MAKE(gen, front, b);
            }
            if (atomic_compare_exchange_weak_explicit(w, &c, want, memory_order_acq_rel, memory_order_acquire)) {
                int64_t lo = b * p->grain, hi = e * p->grain < p->n_items ? e * p->grain : p->n_items;
                p->fn(p->arg, lo, hi, tid);
                atomic_fetch_add_explicit(&p->completed, hi - lo, memory_order_release);
                c = atomic_load_explicit(w, memory_order_acquire);
            }
        }
    }
}

static void *worker_main(void *varg)
{
    worker_arg *wa = varg;
    pool_t *p = wa->pool;
    uint32_t seen = atomic_load(&p->gen), g;
    for (;;) {
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        unsigned spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->quit, memory_order_acquire)) {
            CPU_RELAX();
            if ((++spins & 63) == 0 && elapsed_ns(&t0) > SPIN_NS) {
                pthread_mutex_lock(&p->mu);
                atomic_fetch_add(&p->sleepers, 1);
                while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit))
                    pthread_cond_wait(&p->cv, &p->mu);
                atomic_fetch_sub(&p->sleepers, 1);
                pthread_mutex_unlock(&p->mu);
            }
        }
        if (atomic_load_explicit(&p->quit, memory_order_acquire))
            return NULL;
        seen = g;
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
        p->regions = eng_calloc((size_t)n_threads, sizeof *p->regions);
        if (!p->threads || !p->args || !p->regions) {
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
    p->grain = grain;
    p->n_items = n_items;
    atomic_store_explicit(&p->completed, 0, memory_order_relaxed);
    uint32_t gen = (atomic_load_explicit(&p->gen, memory_order_relaxed) + 1) & 0xffffff;
    int64_t grains = (n_items + grain - 1) / grain;
    for (int t = 0; t < p->n; t++)
        atomic_store_explicit(&p->regions[t].word, MAKE(gen, grains * t / p->n, grains * (t + 1) / p->n),
                              memory_order_release);
    atomic_store(&p->gen, gen);   /* seq_cst: pairs with `sleepers` */
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
    eng_free(p->regions);
    eng_free(p);
}
