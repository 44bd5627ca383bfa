/* cpu.c - the CPU backend: SIMD matrix-vector products for decode, OpenBLAS
 * GEMM for prefill, and attention, all split across a persistent thread pool.
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
    /* A block of at least 64 rows keeps each GEMM call large enough. */
    c->scratch_floats = sz->max_in * 64 > CONVERT_FLOATS ? sz->max_in * 64 : CONVERT_FLOATS;
    c->scores_floats = (size_t)(sz->max_rows > 0 ? sz->max_rows : 1) * (size_t)(sz->max_keys > 0 ? sz->max_keys : 1);
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
    int64_t total;
} matvec_task;

static void matvec_worker(void *arg, int tid, int nt)
{
    const matvec_task *t = arg;
    int64_t b, e;
    pool_split(t->total, tid, nt, 16, &b, &e);
    /* Walk the concatenation of all jobs' rows and do [b, e). */
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

static void cpu_matvec(void *vctx, const bk_matvec *jobs, int n_jobs)
{
    cpu_ctx *c = vctx;
    matvec_task t = {jobs, n_jobs, 0};
    for (int j = 0; j < n_jobs; j++)
        t.total += jobs[j].w->shape[0];
    pool_run(c->pool, matvec_worker, &t);
}

/* ----------------------------------------------------------------- matmul */

typedef struct {
    cpu_ctx *c;
    float *y;
    const float *x;
    int T;
    const tensor_t *w;
} matmul_task;

static void matmul_worker(void *arg, int tid, int nt)
{
    const matmul_task *t = arg;
    int64_t rows = t->w->shape[0], cols = t->w->shape[1];
    int64_t b, e;
    pool_split(rows, tid, nt, 16, &b, &e);
    if (b >= e)
        return;
    if (t->w->dtype == DT_F32) {
        const float *w = (const float *)t->w->data + b * cols;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t->T, (int)(e - b), (int)cols,
                    1.0f, t->x, (int)cols, w, (int)cols, 0.0f, t->y + b, (int)rows);
        return;
    }
    /* Widen a block of weight rows into this thread's scratch, multiply, repeat. */
    float *scratch = t->c->scratch[tid];
    int64_t blk = t->c->scratch_floats / cols;
    if (blk > 16)
        blk -= blk % 16;
    for (int64_t r = b; r < e; r += blk) {
        int64_t r1 = r + blk < e ? r + blk : e;
        kern_convert_rows(scratch, t->w, r, r1);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, t->T, (int)(r1 - r), (int)cols,
                    1.0f, t->x, (int)cols, scratch, (int)cols, 0.0f, t->y + r, (int)rows);
    }
}

static void cpu_matmul(void *vctx, float *y, const float *x, int T, const tensor_t *w)
{
    cpu_ctx *c = vctx;
    matmul_task t = {c, y, x, T, w};
    pool_run(c->pool, matmul_worker, &t);
}

/* -------------------------------------------------------------- attention */

typedef struct {
    cpu_ctx *c;
    const bk_attention *a;
} attn_task;

/* Few rows (decode): one dot product per key, softmax, a weighted sum of V. */
static void attend_rows(const bk_attention *a, int h, float *sc)
{
    int q_dim = a->n_heads * a->head_dim, hd = a->head_dim;
    int g = h / (a->n_heads / a->n_kv_heads);
    const float *kh = a->k + (size_t)g * a->kv_stride * hd;
    const float *vh = a->v + (size_t)g * a->kv_stride * hd;
    for (int i = 0; i < a->T; i++) {
        int nk = a->pos0 + i + 1;
        const float *q = a->q + (size_t)i * q_dim + (size_t)h * hd;
        for (int j = 0; j < nk; j++)
            sc[j] = kern_dot(q, kh + (size_t)j * hd, hd) * a->scale;
        kern_softmax(sc, nk);
        float *o = a->out + (size_t)i * q_dim + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        for (int j = 0; j < nk; j++)
            kern_axpy(o, sc[j], vh + (size_t)j * hd, hd);
        if (a->probs) {
            float *p = a->probs + ((size_t)h * a->probs_nq + a->probs_row0 + i) * a->probs_nk;
            memcpy(p, sc, (size_t)nk * sizeof(float));
            memset(p + nk, 0, (size_t)(a->probs_nk - nk) * sizeof(float));
        }
    }
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

static void attention_worker(void *arg, int tid, int nt)
{
    const attn_task *t = arg;
    int64_t b, e;
    pool_split(t->a->n_heads, tid, nt, 1, &b, &e);
    for (int64_t h = b; h < e; h++) {
        if (t->a->T <= 2)
            attend_rows(t->a, (int)h, t->c->scores[tid]);
        else
            attend_gemm(t->a, (int)h, t->c->scores[tid]);
    }
}

static void cpu_attention(void *vctx, const bk_attention *a)
{
    cpu_ctx *c = vctx;
    attn_task t = {c, a};
    pool_run(c->pool, attention_worker, &t);
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
