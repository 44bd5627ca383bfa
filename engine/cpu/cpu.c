/* cpu.c - the CPU backend: SIMD matrix-vector products for decode, OpenBLAS
 * GEMM for prefill, and attention (GEMMs for many rows, direct loops for one),
 * all split across a persistent thread pool.
 * OpenBLAS runs single-threaded inside each worker so the two never fight
 * over the cores. */
#include "backend.h"
#include "cpu/kernels.h"
#include "cpu/pool.h"

#include <cblas.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

#define CONVERT_FLOATS (1 << 18)   /* per-thread weight block for GEMM: 1 MiB */

typedef struct {
    pool_t *pool;
    int n;
    int64_t scratch_floats;   /* per thread */
    float **scratch;          /* [n][scratch_floats]: widened weight blocks */
    float **scores;           /* [n][max_rows * max_keys]: attention scores */
    size_t scores_floats;
} cpu_ctx;

static void cpu_ctx_free(void *vctx)
{
    cpu_ctx *c = vctx;
    if (!c)
        return;
    pool_free(c->pool);
    for (int i = 0; i < c->n; i++) {
        if (c->scratch) eng_free(c->scratch[i]);
        if (c->scores) eng_free(c->scores[i]);
    }
    eng_free(c->scratch);
    eng_free(c->scores);
    eng_free(c);
}

static int cpu_ctx_new(void **out, const bk_sizes *sz, eng_err *err)
{
    *out = NULL;
    int n = sz->n_threads;
    if (n <= 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)online : 1;
    }
    if (n > 256)
        n = 256;
    cpu_ctx *c = eng_calloc(1, sizeof *c);
    if (!c)
        return eng_fail(err, ENG_ENOMEM, "cpu backend: out of memory");
    c->n = n;
    /* Room for a block of 128 rows of the widest matrix, or 1 MiB. */
    c->scratch_floats = sz->max_in * 128 > CONVERT_FLOATS ? sz->max_in * 128 : CONVERT_FLOATS;
    int rows = sz->max_rows > sz->n_heads ? sz->max_rows : sz->n_heads;
    c->scores_floats = (size_t)(rows > 0 ? rows : 1) * (size_t)(sz->max_keys > 0 ? sz->max_keys : 1);
    c->scratch = eng_calloc((size_t)n, sizeof *c->scratch);
    c->scores = eng_calloc((size_t)n, sizeof *c->scores);
    if (!c->scratch || !c->scores) {
        cpu_ctx_free(c);
        return eng_fail(err, ENG_ENOMEM, "cpu backend: out of memory");
    }
    for (int i = 0; i < n; i++) {
        c->scratch[i] = eng_malloc((size_t)c->scratch_floats * sizeof(float));
        c->scores[i] = eng_malloc(c->scores_floats * sizeof(float));
        if (!c->scratch[i] || !c->scores[i]) {
            cpu_ctx_free(c);
            return eng_fail(err, ENG_ENOMEM, "cpu backend: out of memory for %d threads' scratch", n);
        }
    }
    int rc = pool_new(&c->pool, n, err);
    if (rc != ENG_OK) {
        cpu_ctx_free(c);
        return rc;
    }
    openblas_set_num_threads(1);
    *out = c;
    return ENG_OK;
}

static int cpu_n_threads(const void *vctx) { return ((const cpu_ctx *)vctx)->n; }

/* ----------------------------------------------------------------- matvec */

typedef struct {
    const bk_matvec *jobs;
    int n_jobs;
} matvec_task;

/* Rows [b, e) of the concatenation of all jobs' rows. */
static void matvec_range(void *arg, int64_t b, int64_t e, int tid)
{
    const matvec_task *t = arg;
    (void)tid;
    int64_t base = 0;
    for (int j = 0; j < t->n_jobs && base < e; j++) {
        int64_t rows = t->jobs[j].w->shape[0];
        int64_t lo = b > base ? b - base : 0;
        int64_t hi = e - base < rows ? e - base : rows;
        if (lo < hi)
            kern_matvec_rows(t->jobs[j].y + lo, t->jobs[j].w, lo, hi, t->jobs[j].x);
        base += rows;
    }
}

/* Ranges of whole 4-row blocks, at least ~16 KB of weights each. */
static void cpu_matvec(void *vctx, const bk_matvec *jobs, int n_jobs)
{
    cpu_ctx *c = vctx;
    matvec_task t = {jobs, n_jobs};
    int64_t total = 0;
    for (int j = 0; j < n_jobs; j++)
        total += jobs[j].w->shape[0];
    size_t row_bytes = (size_t)jobs[0].w->shape[1] * dtype_size(jobs[0].w->dtype);
    int64_t grain = (int64_t)((16384 / (row_bytes ? row_bytes : 1)) & ~(size_t)3);
    if (grain < 4)
        grain = 4;
    if (total <= POOL_MAX_ITEMS) {
        pool_run(c->pool, total, grain, matvec_range, &t);
    } else {   /* more rows than the pool's counter holds: one job at a time, in slices */
        for (int j = 0; j < n_jobs; j++)
            for (int64_t r = 0; r < jobs[j].w->shape[0]; r += POOL_MAX_ITEMS - 3) {
                int64_t n = jobs[j].w->shape[0] - r < POOL_MAX_ITEMS - 3 ? jobs[j].w->shape[0] - r : POOL_MAX_ITEMS - 3;
                tensor_t slice = *jobs[j].w;
                slice.data = (const uint8_t *)slice.data + (size_t)r * row_bytes;
                slice.shape[0] = n;
                bk_matvec one = {jobs[j].y + r, &slice, jobs[j].x};
                matvec_task t1 = {&one, 1};
                pool_run(c->pool, n, grain, matvec_range, &t1);
            }
    }
}

/* ----------------------------------------------------------------- matmul */

typedef struct {
    cpu_ctx *c;
    float *y;
    const float *x;
    int T;
    const tensor_t *w;
    int64_t blk;          /* weight rows per chunk */
} matmul_task;

/* Weight rows [b, e), in blocks of t->blk: widen a block into the worker's
 * scratch (unless F32), then one GEMM of all T activation rows against it. */
static void matmul_range(void *arg, int64_t b, int64_t e, int tid)
{
    const matmul_task *t = arg;
    int64_t rows = t->w->shape[0], cols = t->w->shape[1];
    for (int64_t r = b; r < e; r += t->blk) {
        int64_t r1 = r + t->blk < e ? r + t->blk : e;
        const float *wf;
        if (t->w->dtype == DT_F32) {
            wf = (const float *)t->w->data + r * cols;
        } else {
            kern_convert_rows(t->c->scratch[tid], t->w, r, r1);
            wf = t->c->scratch[tid];
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t->T, (int)(r1 - r), (int)cols,
                    1.0f, t->x, (int)cols, wf, (int)cols, 0.0f, t->y + r, (int)rows);
    }
}

/* Blocks of up to 128 weight rows (fewer if the scratch is smaller). */
static void cpu_matmul(void *vctx, float *y, const float *x, int T, const tensor_t *w)
{
    cpu_ctx *c = vctx;
    int64_t rows = w->shape[0], cols = w->shape[1];
    int64_t blk = c->scratch_floats / cols;
    if (blk > 128)
        blk = 128;
    if (blk > 16)
        blk -= blk % 16;
    if (blk < 1)
        blk = 1;
    matmul_task t = {c, y, x, T, w, blk};
    if (rows <= POOL_MAX_ITEMS)
        pool_run(c->pool, rows, blk, matmul_range, &t);
    else
        matmul_range(&t, 0, rows, 0);
}

/* -------------------------------------------------------------- attention */

typedef struct {
    cpu_ctx *c;
    const bk_attention *a;
} attn_task;

/* Keys into L1 and values into L2 for the n cached rows at k and v. */
static void prefetch_kv(const float *k, const float *v, int n, int hd)
{
    for (int i = 0; i < n * hd; i += 16) {
        __builtin_prefetch(k + i, 0, 3);
        __builtin_prefetch(v + i, 0, 2);
    }
}

/* One row (decode), one GQA group per call: the kv_mul query heads that share
 * KV head g are scored against each block of 16 cached keys while it is in
 * L1 (kern_dot_rows), then O = P V keeps each head's output in registers
 * (kern_mix_rows). Direct SIMD loops: at one query row the BLAS call overhead
 * outweighed the work. The cache is usually cold here (a decode step streams
 * all the weights between two visits of a layer), so the keys and values of
 * the next block are prefetched while this one is scored: 30 layers at 144
 * keys, one thread, cold, 1.0 -> 0.75 ms. */
static void attend_group(const bk_attention *a, int g, float *sc)
{
    int hd = a->head_dim, kv_mul = a->n_heads / a->n_kv_heads, nk = a->pos0 + 1;
    const float *kh = a->k + (size_t)g * a->kv_stride * hd;
    const float *vh = a->v + (size_t)g * a->kv_stride * hd;
    const float *q = a->q + (size_t)g * kv_mul * hd;
    float *o = a->out + (size_t)g * kv_mul * hd;
    prefetch_kv(kh, vh, nk < 16 ? nk : 16, hd);
    for (int j = 0; j < nk; j += 16) {
        int nb = nk - j < 16 ? nk - j : 16, ahead = nk - j - 16 < 16 ? nk - j - 16 : 16;
        if (ahead > 0)
            prefetch_kv(kh + (size_t)(j + 16) * hd, vh + (size_t)(j + 16) * hd, ahead, hd);
        for (int r = 0; r < kv_mul; r++)
            kern_dot_rows(sc + (size_t)r * nk + j, q + (size_t)r * hd, kh + (size_t)j * hd, nb, hd, a->scale);
    }
    for (int r = 0; r < kv_mul; r++) {
        kern_softmax(sc + (size_t)r * nk, nk);
        if (a->probs) {
            int h = g * kv_mul + r;
            float *p = a->probs + ((size_t)h * a->probs_nq + a->probs_row0) * a->probs_nk;
            memcpy(p, sc + (size_t)r * nk, (size_t)nk * sizeof(float));
            memset(p + nk, 0, (size_t)(a->probs_nk - nk) * sizeof(float));
        }
    }
    for (int r = 0; r < kv_mul; r++)
        kern_mix_rows(o + (size_t)r * hd, sc + (size_t)r * nk, vh, nk, hd);
}

/* Many rows (prefill, cache off): S = Q K^T and O = P V as GEMMs per head. */
static void attend_gemm(const bk_attention *a, int h, float *sc)
{
    int q_dim = a->n_heads * a->head_dim, hd = a->head_dim;
    int g = h / (a->n_heads / a->n_kv_heads);
    int nk = a->pos0 + a->T;
    const float *kh = a->k + (size_t)g * a->kv_stride * hd;
    const float *vh = a->v + (size_t)g * a->kv_stride * hd;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, a->T, nk, hd, a->scale,
                a->q + (size_t)h * hd, q_dim, kh, hd, 0.0f, sc, nk);
    for (int i = 0; i < a->T; i++) {
        float *row = sc + (size_t)i * nk;
        int n_valid = a->pos0 + i + 1;
        kern_softmax(row, n_valid);
        memset(row + n_valid, 0, (size_t)(nk - n_valid) * sizeof(float));
        if (a->probs) {
            float *p = a->probs + ((size_t)h * a->probs_nq + a->probs_row0 + i) * a->probs_nk;
            memcpy(p, row, (size_t)nk * sizeof(float));
            memset(p + nk, 0, (size_t)(a->probs_nk - nk) * sizeof(float));
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, a->T, hd, nk, 1.0f,
                sc, nk, vh, hd, 0.0f, a->out + (size_t)h * hd, q_dim);
}

static void attention_range(void *arg, int64_t b, int64_t e, int tid)
{
    const attn_task *t = arg;
    for (int64_t i = b; i < e; i++) {
        if (t->a->T == 1)
            attend_group(t->a, (int)i, t->c->scores[tid]);
        else
            attend_gemm(t->a, (int)i, t->c->scores[tid]);
    }
}

/* Decode: an item per KV head (its GQA group); more rows: an item per head. */
static void cpu_attention(void *vctx, const bk_attention *a)
{
    cpu_ctx *c = vctx;
    attn_task t = {c, a};
    pool_run(c->pool, a->T == 1 ? a->n_kv_heads : a->n_heads, 1, attention_range, &t);
}

const backend_ops backend_cpu = {
    .name = "cpu",
    .ctx_new = cpu_ctx_new,
    .ctx_free = cpu_ctx_free,
    .n_threads = cpu_n_threads,
    .matvec = cpu_matvec,
    .matmul = cpu_matmul,
    .attention = cpu_attention,
};
