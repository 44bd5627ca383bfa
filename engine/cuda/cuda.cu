/* cuda.cu - the CUDA backend: whole forward passes on the first GPU.
 *
 * The first forward uploads the model once, matrices in their stored dtype
 * (norm weights and biases widened to f32), and allocates the KV cache on
 * the device (f32, like the CPU's). After that only token ids go up and
 * logits come down.
 *
 *   decode, one token:   embed -> per layer [RMSNorm+q/k/v matvec (+bias)]
 *                        [attention: q/k norm, RoPE, cache write, split-K
 *                        softmax] [o matvec += x] [RMSNorm+gate/up matvec,
 *                        SwiGLU] [down matvec += x] -> RMSNorm+lm_head
 *                        5 kernels a layer, captured once in a CUDA graph
 *                        and replayed for every token.
 *   prefill, T tokens:   RMSNorm to the weights' dtype -> cuBLAS GEMM (bf16
 *                        or f16 in, f32 accumulate; f32 weights: pedantic
 *                        f32) -> bias/norm/RoPE/cache write -> flash
 *                        attention -> GEMM with the residual as C.
 *
 * The observer's probabilities come from a separate exact attention kernel,
 * run only when the caller asks for them, and only the rows asked for are
 * copied back. Failures are kept in the context (cuda_ctx_status); every
 * later call then fails the same way and outputs are NaN. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <algorithm>
#include <initializer_list>
#include <type_traits>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "cuda.h"
#include "model.h"
}
#include "kernels.cuh"

namespace {

using kern::bf16w;
using kern::f16w;
using kern::f32w;

struct dmat {
    const void *p;
    int rows, cols;
    bool tr;   /* stored transposed, (cols, rows): down_proj for the fused MLP */
};

struct dlayer {
    dmat wq, wk, wv, wo, wg, wu, wd;   /* wv lies right after wk: prefill multiplies them as one (kv_of) */
    float *attn_norm, *ffn_norm, *bq, *bk, *bv, *qn, *kn;
    float *K, *V;   /* (n_kv_heads, S, head_dim) */
};

enum { TL_MAX = 1024, TL_SLOT = 4096 };   /* decode timeline: kernels, blocks per kernel */
enum { N_KINDS = 32 };   /* kernel kinds in the profile and timeline tables */

struct cuctx {
    cudaStream_t st;
    cublasHandle_t blas;
    bk_sizes sz;
    int sms;
    void **allocs;          /* every cudaMalloc, freed together */
    int n_allocs, cap_allocs;

    /* the model on the device (set by the first forward) */
    const model_t *m;
    eng_dtype dt;           /* the matrices' dtype */
    int S;                  /* cache capacity in positions */
    dmat embed, lm;
    float *final_norm, *inv_freq;
    dlayer *L;

    /* activations for up to sz.max_rows positions */
    float *x, *q, *k, *v, *att, *g, *u, *logits, *P;   /* v = k + kv_dim: rows of k and v interleaved */
    float *xn;              /* decode: the residual after o, the fused MLP's input (it adds into x) */
    size_t n_P;             /* floats in P (grown on demand) */
    void *xa;               /* GEMM input in the weights' dtype */
    int *tok, *pos;         /* device: token ids, the decode position */
    float *rope_cs;         /* device: cos, sin at the decode position */
    float *rope_rows;       /* device: cos, sin at each prefill row's position (sz.max_rows, head_dim) */
    int *h_tokpos;          /* pinned: token and position for the graph */

    /* decode attention's split of the context */
    int n_split, min_chunk;
    size_t dec_smem;
    float *part_o, *part_ml;
    unsigned *ticket;

    cudaGraphExec_t graph;  /* one decode step, captured after the upload */
    float *pinned_out;      /* a host logits buffer registered for fast copies */
    int wpr_override;       /* ATTNSCOPE_CUDA_WPR: warps per row, for tuning */
    bool mvr;               /* ATTNSCOPE_CUDA_MV=mvr: matvecs through k_mvr (a warp-specialized ring) */
    bool mvr_kind[5];       /* the kinds that take it (ATTNSCOPE_CUDA_MVR_KINDS=qkv,o,...; default all) */
    int mvr_ring, mvr_stage;   /* its ring and stage bytes (ATTNSCOPE_CUDA_MVR_RING, _MVR_STAGE KiB) */
    int wide_combine;       /* decode attention's combine, 16 splits' loads at a time (ATTNSCOPE_CUDA_COMBINE=0: off) */
    int waves;              /* matvec grids sized so that every block gets as many row blocks (ATTNSCOPE_CUDA_WAVES=0: off) */
    int kbps[5], kwpr[5];   /* per matrix kind (kern::ST_QKV ..): blocks per SM and warps per row, 0: the default
                               (ATTNSCOPE_CUDA_MVCFG=qkv=B/W,o=B/W,gate_up=B/W,down=B/W,lm_head=B/W) */
    bool pdl;               /* programmatic dependent launch (ATTNSCOPE_CUDA_PDL=0: off) */
    int bps;                /* matvec blocks per multiprocessor (ATTNSCOPE_CUDA_BPS) */
    bool mvs;               /* streamed matvec k_mvs (ATTNSCOPE_CUDA_MV=mvs; default k_matvec,
                             * which measured faster: docs/performance.md) */
    int mvs_bps;            /* its blocks per multiprocessor (ATTNSCOPE_CUDA_MVS_BPS, default 1) */
    int mvs_ring;           /* its ring's bytes per block (ATTNSCOPE_CUDA_MVS_RING KiB, default 72) */
    int mvs_chunk;          /* its target chunk bytes (ATTNSCOPE_CUDA_MVS_CHUNK KiB, default 16) */
    bool attn_head;         /* decode attention per query head (ATTNSCOPE_CUDA_ATTN=head; default split) */
    int head_chunk, head_split;
    size_t head_smem;
    int min_chunk_env;      /* ATTNSCOPE_CUDA_MINCHUNK: keys per attention block at least (tuning) */
    bool skip_attn;         /* ATTNSCOPE_CUDA_SKIP_ATTN=1: no decode attention (wrong logits; timing) */
    int vstage;             /* decode attention stages V in shared memory (ATTNSCOPE_CUDA_VSTAGE=0: off) */
    int mvs_dry;            /* ATTNSCOPE_CUDA_MVS_DRY=1: stream only, no products (wrong logits; timing) */
    size_t pf_bytes;        /* L2 prefetch of the next kernel's weights, at most (ATTNSCOPE_CUDA_PF MiB; 0: off) */
    /* the decode step as one persistent kernel (kern::k_step; opt-in, ATTNSCOPE_CUDA_STEP=1:
     * measured slower than the kernel-per-matrix path); set up after the upload where the
     * model's shapes allow */
    bool step_want, step_on;
    int step_stage;         /* bytes per ring stage (ATTNSCOPE_CUDA_STAGE KiB, default 32) */
    int mv_pre;             /* matvec packs per lane loaded before the wait (ATTNSCOPE_CUDA_PRE, default 8) */
    bool mlp_want, mlp;     /* gate/up/down in one kernel (kern::k_mlp; ATTNSCOPE_CUDA_MLP=0: off); on once
                               the model's shapes allow it and down_proj is stored transposed */
    int mlp_threads;        /* its block size (ATTNSCOPE_CUDA_MLP_THREADS: 256, 512 or 1024) */
    int mlp_bps;            /* its blocks per multiprocessor (ATTNSCOPE_CUDA_MLP_BPS, default 1024 / threads) */
    int mlp_red;            /* ATTNSCOPE_CUDA_MLP_RED=1|2: k_mlp stores or drops its sums instead of adding
                               them (wrong logits; timing) */
    bool mlp_qkv_want, mlp_qkv;   /* k_mlp also computes the next layer's q/k/v after a grid barrier
                                     (ATTNSCOPE_CUDA_MLP_QKV=1: measured slower); on where its blocks all fit
                                     at once */
    unsigned long long *mlp_bar;  /* that barrier's counter */
    bool flash_f32;               /* prefill attention in f32 on CUDA cores for every dtype
                                     (ATTNSCOPE_CUDA_FLASH=f32; default: tensor cores for f16/bf16) */
    int step_inflight;      /* bytes its producer keeps in flight at most (ATTNSCOPE_CUDA_INFLIGHT KiB, 0: no cap) */
    kern::st_args sa;
    size_t step_smem;
    char *trace_path;       /* ATTNSCOPE_CUDA_STEP_TRACE=FILE: k_step's time per phase, appended at the end */

    /* ATTNSCOPE_CUDA_TIMELINE=FILE: every decode kernel's blocks stamp their
     * start, the end of their wait and their end (the last step's stamps
     * stay); a table per kernel kind goes to FILE at the end. */
    char *tl_path;
    unsigned long long *tl;   /* device: (5 n_layers + 2, TL_SLOT, 3) */
    int tl_k;                 /* kernels stamped in the step so far */
    const char *tl_kind[TL_MAX];

    /* ATTNSCOPE_CUDA_PROFILE=FILE: decode steps run uncaptured with an event
     * after every kernel, and prefills too ("pf:" kinds); the time per kernel
     * kind goes to FILE at the end. */
    char *prof_path;
    cudaEvent_t ev[512];
    const char *ev_name[512];
    int n_ev;
    const char *kind[N_KINDS];
    double kind_ms[N_KINDS];
    long kind_n[N_KINDS];
    int n_kind;

    int failed;
    eng_err err;
};

int fail_cuda(cuctx *c, cudaError_t e, const char *what)
{
    int code = e == cudaErrorMemoryAllocation ? ENG_ENOMEM : ENG_EDEVICE;
    if (!c->failed)
        c->failed = eng_fail(&c->err, code, "cuda: %s: %s", what, cudaGetErrorString(e));
    return c->failed;
}

int fail_blas(cuctx *c, cublasStatus_t st, const char *what)
{
    if (!c->failed)
        c->failed = eng_fail(&c->err, st == CUBLAS_STATUS_ALLOC_FAILED ? ENG_ENOMEM : ENG_EDEVICE,
                             "cuda: %s failed (cuBLAS status %d)", what, (int)st);
    return c->failed;
}

void mark(cuctx *c, const char *name)
{
    if (!c->prof_path || c->n_ev >= 512)
        return;
    if (!c->ev[c->n_ev] && cudaEventCreate(&c->ev[c->n_ev]) != cudaSuccess)
        return;
    cudaEventRecord(c->ev[c->n_ev], c->st);
    c->ev_name[c->n_ev++] = name;
}

/* The index of name in names[0..*n) (N_KINDS at most), added when new; -1
 * when the table is full. */
int kind_index(const char **names, int *n, const char *name)
{
    int k = 0;
    while (k < *n && strcmp(names[k], name) != 0)
        k++;
    if (k == *n) {
        if (k == N_KINDS)
            return -1;
        names[(*n)++] = name;
    }
    return k;
}

/* The stamps of the step's next kernel (kind: its name), or NULL. */
unsigned long long *tl_next(cuctx *c, const char *kind, long grid)
{
    if (!c->tl || c->tl_k >= TL_MAX || c->tl_k >= 5 * c->m->cfg.n_layers + 2 || grid > TL_SLOT)
        return NULL;
    c->tl_kind[c->tl_k] = kind;
    return c->tl + (size_t)c->tl_k++ * TL_SLOT * kern::TL_FIELDS;
}

/* The timeline of the last decode step, per kernel kind, in us: how long
 * after the previous kernel's last block ended this kernel's first block
 * started (launch: negative when it started early) and passed its wait
 * (release), its body (first release to last end), its tail (median end
 * to last end) and its span (previous kernel's end to its end; the spans
 * add up to the step). */
void tl_write(cuctx *c)
{
    FILE *f;
    const int F = kern::TL_FIELDS;
    size_t n = (size_t)c->tl_k * TL_SLOT * F;
    unsigned long long *h = (unsigned long long *)malloc(n * sizeof *h + 1);
    if (!h || cudaMemcpy(h, c->tl, n * sizeof *h, cudaMemcpyDeviceToHost) != cudaSuccess ||
        !(f = fopen(c->tl_path, "a"))) {
        free(h);
        return;
    }
    const char *rawp = getenv("ATTNSCOPE_CUDA_TIMELINE_RAW");
    FILE *raw = rawp && *rawp ? fopen(rawp, "w") : NULL;
    const char *kinds[N_KINDS];
    double sum[N_KINDS][8] = {{0}};
    int cnt[N_KINDS] = {0}, cntp[N_KINDS] = {0}, nk = 0;
    double prev_end = -1, total = 0;
    static unsigned long long ends[TL_SLOT];
    for (int k = 0; k < c->tl_k; k++) {
        const unsigned long long *s = h + (size_t)k * TL_SLOT * F;
        unsigned long long smin = ~0ull, wmin = ~0ull, emax = 0;
        int ne = 0;
        for (int b = 0; b < TL_SLOT; b++) {
            if (s[b * F] && s[b * F] < smin) smin = s[b * F];
            if (s[b * F + 1] && s[b * F + 1] < wmin) wmin = s[b * F + 1];
            if (s[b * F + 2]) {
                ends[ne++] = s[b * F + 2];
                if (s[b * F + 2] > emax) emax = s[b * F + 2];
                if (raw)   /* kernel, kind, block, multiprocessor, start, wait and end in ns */
                    fprintf(raw, "%d %s %d %llu %llu %llu %llu\n", k, c->tl_kind[k], b, s[b * F + 3], s[b * F],
                            s[b * F + 1], s[b * F + 2]);
            }
        }
        if (!ne || wmin == ~0ull)
            continue;
        std::sort(ends, ends + ne);
        double emed = (double)ends[ne / 2];
        int i = kind_index(kinds, &nk, c->tl_kind[k]);
        if (i < 0)
            continue;
        if (prev_end >= 0) {
            sum[i][0] += ((double)smin - prev_end) / 1e3;
            sum[i][1] += ((double)wmin - prev_end) / 1e3;
            sum[i][4] += ((double)emax - prev_end) / 1e3;
            total += ((double)emax - prev_end) / 1e3;
            cntp[i]++;
        }
        sum[i][2] += ((double)emax - (double)wmin) / 1e3;
        sum[i][3] += ((double)emax - emed) / 1e3;
        for (int q = 0; q < 3; q++)   /* the 10th, 50th and 90th percentile block ends */
            sum[i][5 + q] += ((double)ends[ne * (1 + 4 * q) / 10] - (double)wmin) / 1e3;
        cnt[i]++;
        prev_end = (double)emax;
    }
    fprintf(f, "decode timeline, last step: %d kernels, %.1f us from the first kernel's end to the last's\n"
               "kind          count   launch  release     body     tail     span    end10    end50    end90"
               "   (us, mean per kernel; ends after the first release)\n",
            c->tl_k, total);
    for (int i = 0; i < nk; i++)
        fprintf(f, "%-12s %6d %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", kinds[i], cnt[i],
                sum[i][0] / (cntp[i] ? cntp[i] : 1), sum[i][1] / (cntp[i] ? cntp[i] : 1), sum[i][2] / cnt[i],
                sum[i][3] / cnt[i], sum[i][4] / (cntp[i] ? cntp[i] : 1), sum[i][5] / cnt[i], sum[i][6] / cnt[i],
                sum[i][7] / cnt[i]);
    fclose(f);
    if (raw)
        fclose(raw);
    free(h);
}

/* After a profiled step (stream synchronized): time between marks by kind. */
void prof_collect(cuctx *c)
{
    for (int i = 1; i < c->n_ev; i++) {
        float ms = 0.f;
        cudaEventElapsedTime(&ms, c->ev[i - 1], c->ev[i]);
        int k = kind_index(c->kind, &c->n_kind, c->ev_name[i]);
        if (k < 0)
            continue;
        c->kind_ms[k] += ms;
        c->kind_n[k]++;
    }
    c->n_ev = 0;
}

void prof_write(cuctx *c)
{
    FILE *f = c->prof_path ? fopen(c->prof_path, "a") : NULL;
    if (!f)
        return;
    double total = 0;
    for (int k = 0; k < c->n_kind; k++)
        total += c->kind_ms[k];
    fprintf(f, "kernel        total ms  launches   mean us  share\n");
    for (int k = 0; k < c->n_kind; k++)
        fprintf(f, "%-12s %9.3f %9ld %9.2f %5.1f%%\n", c->kind[k], c->kind_ms[k], c->kind_n[k],
                1e3 * c->kind_ms[k] / (double)(c->kind_n[k] ? c->kind_n[k] : 1), 100.0 * c->kind_ms[k] / (total > 0 ? total : 1));
    fclose(f);
}

#define CK(c, call, what) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) return fail_cuda((c), e_, (what)); } while (0)

/* Launches a decode kernel on the context's stream, allowed to start while
 * the previous one finishes (the kernels wait with griddepcontrol.wait). */
template <typename... KArgs, typename... Args>
int launch(cuctx *c, void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem, const char *what, Args... args)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = c->st;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = c->pdl ? 1 : 0;
    CK(c, cudaLaunchKernelEx(&cfg, k, args...), what);
    return ENG_OK;
}

/* The decode attention kernel for a head size (unrolled for 64 and 128). */
void (*attn_decode_kernel(int hd))(kern::dec_args)
{
    return hd == 64 ? kern::k_attn_decode<64> : hd == 128 ? kern::k_attn_decode<128> : kern::k_attn_decode<0>;
}

/* The per-head decode attention kernel for a head size. */
void (*attn_head_kernel(int hd))(kern::dec_args)
{
    return hd == 64 ? kern::k_attn_head<64> : hd == 128 ? kern::k_attn_head<128> : kern::k_attn_head<0>;
}

/* ---------------------------------------------------------------- memory */

int dev_alloc(cuctx *c, void **p, size_t bytes, const char *what)
{
    *p = NULL;
    if (c->n_allocs == c->cap_allocs) {
        int ncap = c->cap_allocs ? 2 * c->cap_allocs : 64;
        void **na = (void **)eng_realloc(c->allocs, (size_t)ncap * sizeof *na);
        if (!na) {
            if (!c->failed)
                c->failed = eng_fail(&c->err, ENG_ENOMEM, "cuda: out of host memory (%s)", what);
            return c->failed;
        }
        c->allocs = na;
        c->cap_allocs = ncap;
    }
    CK(c, cudaMalloc(p, bytes ? bytes : 16), what);
    c->allocs[c->n_allocs++] = *p;
    return ENG_OK;
}

template <typename P>
int alloc_n(cuctx *c, P **p, size_t n, const char *what)
{
    return dev_alloc(c, (void **)p, n * sizeof(P), what);
}

size_t tensor_elems(const tensor_t *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

void dev_free(cuctx *c, void *p);

constexpr size_t MLP_SMEM_MAX = 112 * 1024;

long mlp_grid(const cuctx *c, const config_t *cf)
{
    long grid = (long)c->sms * c->mlp_bps;
    return grid > cf->hidden_dim ? cf->hidden_dim : grid;
}

/* x, then g and u of the block's rows, then one sum of the down products
 * per group of threads; with the next q/k/v fused (qkv), the block's share
 * of those rows. */
size_t mlp_smem(const cuctx *c, const config_t *cf, bool qkv)
{
    int groups = c->mlp_threads / (cf->dim / (16 / (int)dtype_size(c->dt)));
    size_t bytes = ((size_t)cf->dim * (1 + groups) + 2 * kern::MLP_MAX_ROWS) * sizeof(float);
    if (qkv) {
        long rows = config_q_dim(cf) + 2L * config_kv_dim(cf), grid = mlp_grid(c, cf);
        bytes += (size_t)((rows + grid - 1) / grid) * cf->dim * dtype_size(c->dt);
    }
    return bytes;
}

/* The fused MLP (kern::k_mlp) fits a model when its rows split into 16-byte
 * packs that one block covers (dim / V <= threads) and the hidden rows
 * spread over the grid at most MLP_MAX_ROWS a block; the opt-in decode paths
 * that read down_proj as stored (k_step, k_mvs, k_mvr) keep it off. */
bool mlp_fits(const cuctx *c, const config_t *cf)
{
    int V = 16 / (int)dtype_size(c->dt);
    long grid = mlp_grid(c, cf);
    return !c->step_want && !c->mvs && !c->mvr && cf->dim % V == 0 && cf->dim / V <= c->mlp_threads &&
           (cf->hidden_dim + grid - 1) / grid <= kern::MLP_MAX_ROWS && mlp_smem(c, cf, false) <= MLP_SMEM_MAX;
}

/* Uploads a matrix in its stored dtype; transpose: stored as (cols, rows)
 * instead (d keeps the logical rows and cols, d->tr says so). */
int upload_mat(cuctx *c, dmat *d, const tensor_t *t, const char *name, bool transpose = false, void *into = nullptr)
{
    if (t->dtype != c->dt) {
        if (!c->failed)
            c->failed = eng_fail(&c->err, ENG_EINPUT, "cuda: %s is %s but the other matrices are %s (mixed dtypes are not supported)",
                                 name, dtype_name(t->dtype), dtype_name(c->dt));
        return c->failed;
    }
    size_t bytes = tensor_elems(t) * dtype_size(t->dtype);
    void *p = into;
    if (!p && dev_alloc(c, &p, bytes, name))
        return c->failed;
    *d = dmat{p, (int)t->shape[0], t->ndim > 1 ? (int)t->shape[1] : 1, transpose};
    if (!transpose) {
        CK(c, cudaMemcpyAsync(p, t->data, bytes, cudaMemcpyHostToDevice, c->st), "uploading a weight");
        return ENG_OK;
    }
    void *tmp;
    if (dev_alloc(c, &tmp, bytes, name))
        return c->failed;
    CK(c, cudaMemcpyAsync(tmp, t->data, bytes, cudaMemcpyHostToDevice, c->st), "uploading a weight");
    dim3 grid((unsigned)((d->cols + 31) / 32), (unsigned)((d->rows + 31) / 32)), block(32, 8);
    if (dtype_size(t->dtype) == 4)
        kern::k_transpose<float><<<grid, block, 0, c->st>>>((float *)p, (const float *)tmp, d->rows, d->cols);
    else
        kern::k_transpose<uint16_t><<<grid, block, 0, c->st>>>((uint16_t *)p, (const uint16_t *)tmp, d->rows, d->cols);
    CK(c, cudaGetLastError(), "transposing a weight");
    CK(c, cudaStreamSynchronize(c->st), "transposing a weight");
    dev_free(c, tmp);
    return ENG_OK;
}

/* A small vector (norm weight, bias) widened to f32 on the device; NULL
 * when the tensor is absent. */
int upload_vec(cuctx *c, float **d, const tensor_t *t, const char *name)
{
    *d = NULL;
    if (!tensor_present(t))
        return ENG_OK;
    size_t n = tensor_elems(t), bytes = n * dtype_size(t->dtype);
    void *raw;
    if (alloc_n(c, d, n, name) || dev_alloc(c, &raw, bytes, name))
        return c->failed;
    CK(c, cudaMemcpyAsync(raw, t->data, bytes, cudaMemcpyHostToDevice, c->st), "uploading a vector");
    switch (t->dtype) {
    case DT_F32: kern::k_widen<f32w><<<64, 256, 0, c->st>>>(*d, (const f32w *)raw, n); break;
    case DT_BF16: kern::k_widen<bf16w><<<64, 256, 0, c->st>>>(*d, (const bf16w *)raw, n); break;
    case DT_F16: kern::k_widen<f16w><<<64, 256, 0, c->st>>>(*d, (const f16w *)raw, n); break;
    }
    CK(c, cudaGetLastError(), "widening a vector");
    return ENG_OK;
}

template <typename T>
int step_setup(cuctx *c);
template <typename T>
int mlp_qkv_setup(cuctx *c);

int upload_model(cuctx *c, const bk_forward *f)
{
    const model_t *m = f->m;
    const config_t *cf = &m->cfg;
    const weights_t *w = &m->w;
    c->dt = w->layers[0].wq.dtype;
    c->S = (int)c->sz.max_keys;
    int C = c->sz.max_rows, nh = cf->n_heads, nkv = cf->n_kv_heads, hd = cf->head_dim, G = nh / nkv;
    int q_dim = config_q_dim(cf), kv_dim = config_kv_dim(cf), half = hd / 2;
    size_t widest = (size_t)cf->dim;
    if ((size_t)q_dim > widest) widest = (size_t)q_dim;
    if ((size_t)cf->hidden_dim > widest) widest = (size_t)cf->hidden_dim;

    c->L = (dlayer *)eng_calloc((size_t)cf->n_layers, sizeof *c->L);
    if (!c->L) {
        c->failed = eng_fail(&c->err, ENG_ENOMEM, "cuda: out of host memory for the layer table");
        return c->failed;
    }
    if (upload_mat(c, &c->embed, &w->embed, "embed_tokens"))
        return c->failed;
    if (tensor_present(&w->lm_head) && w->lm_head.data != w->embed.data) {
        if (upload_mat(c, &c->lm, &w->lm_head, "lm_head"))
            return c->failed;
    } else {
        c->lm = c->embed;   /* tied */
    }
    if (upload_vec(c, &c->final_norm, &w->final_norm, "norm"))
        return c->failed;
    size_t kv_floats = (size_t)nkv * c->S * hd;
    c->mlp = c->mlp_want && mlp_fits(c, cf);
    for (int l = 0; l < cf->n_layers; l++) {
        const layer_weights_t *lw = &w->layers[l];
        dlayer *d = &c->L[l];
        size_t kb = tensor_elems(&lw->wk) * dtype_size(c->dt), vb = tensor_elems(&lw->wv) * dtype_size(c->dt);
        void *kv = nullptr;
        if (upload_mat(c, &d->wq, &lw->wq, "q_proj") || dev_alloc(c, &kv, kb + vb, "k_proj and v_proj") ||
            upload_mat(c, &d->wk, &lw->wk, "k_proj", false, kv) ||
            upload_mat(c, &d->wv, &lw->wv, "v_proj", false, (char *)kv + kb) || upload_mat(c, &d->wo, &lw->wo, "o_proj") ||
            upload_mat(c, &d->wg, &lw->w_gate, "gate_proj") || upload_mat(c, &d->wu, &lw->w_up, "up_proj") ||
            upload_mat(c, &d->wd, &lw->w_down, "down_proj", c->mlp) ||
            upload_vec(c, &d->attn_norm, &lw->attn_norm, "input_layernorm") ||
            upload_vec(c, &d->ffn_norm, &lw->ffn_norm, "post_attention_layernorm") ||
            upload_vec(c, &d->bq, &lw->bq, "q_proj.bias") || upload_vec(c, &d->bk, &lw->bk, "k_proj.bias") ||
            upload_vec(c, &d->bv, &lw->bv, "v_proj.bias") || upload_vec(c, &d->qn, &lw->q_norm, "q_norm") ||
            upload_vec(c, &d->kn, &lw->k_norm, "k_norm") || alloc_n(c, &d->K, kv_floats, "the KV cache") ||
            alloc_n(c, &d->V, kv_floats, "the KV cache"))
            return c->failed;
    }
    if (alloc_n(c, &c->inv_freq, (size_t)half, "rope table"))
        return c->failed;
    CK(c, cudaMemcpyAsync(c->inv_freq, f->inv_freq, (size_t)half * sizeof(float), cudaMemcpyHostToDevice, c->st),
       "rope table");

    /* decode attention: up to about two blocks per multiprocessor over the
     * KV heads, each with at least min_chunk keys */
    c->min_chunk = c->min_chunk_env ? c->min_chunk_env : 32;
    c->n_split = (2 * c->sms + nkv - 1) / nkv;
    for (;;) {
        int chunk = (c->S + c->n_split - 1) / c->n_split;
        if (chunk < c->min_chunk) chunk = c->min_chunk;
        /* q, scores, combine weights, alignment, staged values and keys
         * (rows padded by 4), the rotation table */
        /* q, scores, combine weights, alignment, staged values and keys
         * (rows padded by 4), the rotation table */
        c->dec_smem = ((size_t)G * (hd + chunk + c->n_split) + 4 + (size_t)chunk * (2 * hd + 4) + hd) * sizeof(float);
        if (c->dec_smem <= 96 * 1024 || c->n_split >= c->S)
            break;
        c->n_split *= 2;
    }
    CK(c, cudaFuncSetAttribute(attn_decode_kernel(hd), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)c->dec_smem),
       "decode attention shared memory");


    /* the per-head kernel: chunks of 64 KiB of values (at least 16 keys), as
     * many as the capacity needs */
    c->head_chunk = c->min_chunk_env ? c->min_chunk_env : 16384 / hd < 16 ? 16 : 16384 / hd;
    c->head_split = (c->S + c->head_chunk - 1) / c->head_chunk;
    c->head_smem = (size_t)(2 * hd + c->head_chunk + 4 + (size_t)c->head_chunk * hd + (hd > 256 ? hd : 256)) * sizeof(float);
    if (c->attn_head && c->head_smem > 200 * 1024)
        c->attn_head = false;
    if (c->attn_head)
        CK(c, cudaFuncSetAttribute(attn_head_kernel(hd), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)c->head_smem),
           "decode attention shared memory");
    int parts = c->attn_head && c->head_split > c->n_split ? c->head_split : c->n_split;
    if (alloc_n(c, &c->x, (size_t)C * cf->dim, "activations") || alloc_n(c, &c->xn, (size_t)cf->dim, "activations") ||
        alloc_n(c, &c->q, (size_t)C * q_dim, "activations") ||
        alloc_n(c, &c->k, (size_t)C * 2 * kv_dim, "activations") ||
        alloc_n(c, &c->att, (size_t)C * q_dim, "activations") ||
        alloc_n(c, &c->g, (size_t)C * cf->hidden_dim, "activations") ||
        alloc_n(c, &c->u, (size_t)C * cf->hidden_dim, "activations") ||
        alloc_n(c, &c->logits, (size_t)C * cf->vocab_size, "logits") ||
        dev_alloc(c, &c->xa, (size_t)C * widest * sizeof(float), "activations") ||
        alloc_n(c, &c->tok, (size_t)C, "token ids") || alloc_n(c, &c->pos, 1, "position") ||
        alloc_n(c, &c->rope_cs, (size_t)hd, "rope table") || alloc_n(c, &c->rope_rows, (size_t)C * hd, "rope table") ||
        alloc_n(c, &c->part_o, (size_t)nh * parts * hd, "attention partials") ||
        alloc_n(c, &c->part_ml, (size_t)nh * parts * 2, "attention partials") ||
        alloc_n(c, &c->ticket, (size_t)nh, "attention tickets"))
        return c->failed;
    c->v = c->k + kv_dim;   /* prefill's k|v GEMM writes rows of 2 kv_dim: k then v */
    CK(c, cudaMemsetAsync(c->ticket, 0, (size_t)nh * sizeof(unsigned), c->st), "attention tickets");
    CK(c, cudaStreamSynchronize(c->st), "uploading the model");
    c->m = m;
    switch (c->dt) {
    case DT_F32: return mlp_qkv_setup<kern::f32w>(c) || step_setup<kern::f32w>(c);
    case DT_BF16: return mlp_qkv_setup<kern::bf16w>(c) || step_setup<kern::bf16w>(c);
    case DT_F16: return mlp_qkv_setup<kern::f16w>(c) || step_setup<kern::f16w>(c);
    }
    return ENG_OK;
}

/* ------------------------------------------- decode as one kernel (k_step) */

/* Sets up the persistent decode kernel where it applies: rows of whole 16
 * bytes, a unit (a row; gate + up rows) within a stage, at least two stages
 * beside the inputs and the attention scratch in shared memory, one block
 * resident per multiprocessor. Otherwise the kernel-per-matrix path runs.
 * Returns nonzero only on a CUDA failure. */
template <typename T>
int step_setup(cuctx *c)
{
    const config_t *cf = &c->m->cfg;
    int es = (int)sizeof(T), dim = cf->dim, hid = cf->hidden_dim, hd = cf->head_dim;
    int q_dim = config_q_dim(cf), G = cf->n_heads / cf->n_kv_heads;
    c->step_on = false;
    if (!c->step_want || (dim * es) % 16 || (q_dim * es) % 16 || (hid * es) % 16)
        return ENG_OK;
    int unit = 2 * dim * es > hid * es ? 2 * dim * es : hid * es;
    if (q_dim * es > unit)
        unit = q_dim * es;
    int stage = c->step_stage > unit ? c->step_stage : (unit + 15) / 16 * 16;
    int chunk = (c->S + c->n_split - 1) / c->n_split;
    if (chunk < c->min_chunk)
        chunk = c->min_chunk;
    long widest = dim > hid ? dim : hid;
    if (q_dim > widest)
        widest = q_dim;
    long res = (dim + c->sms - 1) / c->sms + 4;   /* the block's rows of x, for o and down */
    long attn = (long)G * (hd + chunk + c->n_split);
    int aux = (int)(widest + res > attn ? widest + res : attn);
    size_t aux_bytes = ((size_t)aux + hd) * sizeof(float);
    int optin = 0;
    CK(c, cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), "device attributes");
    size_t room = (size_t)optin - 1024;   /* the kernel's static shared memory */
    if (aux_bytes + 2 * (size_t)stage > room)
        return ENG_OK;
    int ns = (int)((room - aux_bytes) / stage);
    if (ns > kern::ST_MAX_STAGES)
        ns = kern::ST_MAX_STAGES;
    c->step_smem = (size_t)ns * stage + aux_bytes;
    CK(c, cudaFuncSetAttribute(kern::k_step<T>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)c->step_smem),
       "decode step shared memory");
    int per_sm = 0;
    CK(c, cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern::k_step<T>, kern::ST_THREADS, c->step_smem),
       "decode step occupancy");
    if (per_sm < 1)
        return ENG_OK;

    int L = cf->n_layers;
    kern::st_layer *h = (kern::st_layer *)eng_calloc((size_t)L, sizeof *h);
    if (!h) {
        c->failed = eng_fail(&c->err, ENG_ENOMEM, "cuda: out of host memory for the layer table");
        return c->failed;
    }
    for (int l = 0; l < L; l++) {
        const dlayer *d = &c->L[l];
        h[l] = kern::st_layer{d->wq.p, d->wk.p, d->wv.p, d->wo.p, d->wg.p, d->wu.p, d->wd.p, d->bq, d->bk, d->bv,
                              d->attn_norm, d->ffn_norm, d->qn, d->kn, d->K, d->V};
    }
    kern::st_layer *dl;
    unsigned *bar;
    int rc = alloc_n(c, &dl, (size_t)L, "the layer table") || alloc_n(c, &bar, 2, "the grid barrier");
    if (!rc) {
        cudaError_t e = cudaMemcpyAsync(dl, h, (size_t)L * sizeof *h, cudaMemcpyHostToDevice, c->st);
        if (e == cudaSuccess)
            e = cudaMemsetAsync(bar, 0, 2 * sizeof(unsigned), c->st);
        if (e != cudaSuccess)
            rc = fail_cuda(c, e, "the decode step's tables");
    }
    eng_free(h);
    if (rc)
        return c->failed;
    kern::st_args &a = c->sa;
    a = kern::st_args{};
    a.L = dl; a.n_layers = L; a.embed = c->embed.p; a.lm = c->lm.p;
    a.final_norm = c->final_norm; a.inv_freq = c->inv_freq; a.tok = c->tok; a.pos = c->pos;
    a.x = c->x; a.q = c->q; a.k = c->k; a.v = c->v; a.att = c->att; a.g = c->g; a.logits = c->logits;
    a.part_o = c->part_o; a.part_ml = c->part_ml; a.ticket = c->ticket; a.bar = bar;
    a.dim = dim; a.hidden = hid; a.vocab = cf->vocab_size; a.nh = cf->n_heads; a.nkv = cf->n_kv_heads; a.hd = hd;
    a.S = c->S; a.n_split = c->n_split; a.min_chunk = c->min_chunk;
    a.eps = cf->norm_eps; a.scale = 1.0f / sqrtf((float)hd);
    a.ns = ns; a.stage_bytes = stage; a.inflight = c->step_inflight; a.aux_floats = aux; a.res_off = (int)widest;
    if (c->trace_path) {
        if (alloc_n(c, &a.trace, kern::ST_TRACE_N, "the decode step trace"))
            return c->failed;
        CK(c, cudaMemsetAsync(a.trace, 0, kern::ST_TRACE_N * sizeof *a.trace, c->st), "the decode step trace");
    }
    c->step_on = true;
    return ENG_OK;
}

/* One decode step through k_step: one block per multiprocessor, all of
 * them resident (one block fits per multiprocessor, step_setup checked, and
 * nothing else runs on the stream), so its grid barriers cannot wait on a
 * block that never starts; its waits trap after about two seconds. */
/* Launches of the decode and prefill paths that are not always taken,
 * captured or not (cuda_launches: tests check which path ran). */
enum { CNT_STEP, CNT_MVR, CNT_MLP, CNT_MLP_QKV, CNT_FLASH_TC, N_COUNTED };
const char *const counted_name[N_COUNTED] = {"step", "mvr", "mlp", "mlp_qkv", "flash_tc"};
long counted[N_COUNTED];

template <typename T>
int step_launch(cuctx *c)
{
    counted[CNT_STEP]++;
    kern::k_step<T><<<c->sms, kern::ST_THREADS, c->step_smem, c->st>>>(c->sa);
    CK(c, cudaGetLastError(), "decode step launch");
    return ENG_OK;
}

/* ---------------------------------------------------------------- decode */

/* The decode matrices by kind, in kern's order (ST_QKV .. ST_LM). */
const char *const mv_kind_name[5] = {"qkv", "o", "gate_up", "down", "lm_head"};

/* Blocks per multiprocessor for a matvec of this kind. The o matvec takes
 * 2 before the fused MLP: room for k_mlp's first blocks, which then load
 * their first weights during it (measured 1% faster: docs/performance.md). */
int mv_bps(const cuctx *c, int kind)
{
    if (c->kbps[kind])
        return c->kbps[kind];
    return kind == kern::ST_O && c->mlp ? 2 : c->bps;
}

/* Blocks of a matvec launch: bps per multiprocessor (or fewer when the
 * rows run out). When the row blocks need more than one wave of the grid,
 * the grid shrinks until every block gets the same number of them (5632
 * rows of gate/up: 352 blocks of two row blocks each instead of 528 of
 * which a third take a second one): no tail of a few blocks still loading. */
long mv_grid(const cuctx *c, int rows, int wpr, int kind)
{
    int rpb = kern::MV_WARPS / wpr;
    long need = ((long)rows + rpb - 1) / rpb, most = (long)c->sms * mv_bps(c, kind);
    if (need <= most)
        return need;
    if (!c->waves)
        return most;
    long waves = (need + most - 1) / most;   /* every block the same number of row blocks */
    return (need + waves - 1) / waves;
}

/* Warps per row: more than one only when rows are too few to give every
 * warp of the grid at least one. */
int pick_wpr(const cuctx *c, int rows, int kind)
{
    if (c->kwpr[kind])
        return c->kwpr[kind];
    if (c->wpr_override)
        return c->wpr_override;
    long warps = (long)c->sms * mv_bps(c, kind) * kern::MV_WARPS;
    int wpr = 1;
    while (wpr < kern::MV_WARPS && (long)rows * wpr * 2 <= warps)
        wpr *= 2;
    return wpr;
}

/* ATTNSCOPE_CUDA_MVCFG: "kind=B/W,..." (tuning). */
void parse_mvcfg(cuctx *c, const char *v)
{
    while (v && *v) {
        for (int k = 0; k < 5; k++) {
            size_t n = strlen(mv_kind_name[k]);
            int b = 0, w = 0;
            if (!strncmp(v, mv_kind_name[k], n) && v[n] == '=' && sscanf(v + n + 1, "%d/%d", &b, &w) == 2) {
                if (b >= 0 && b <= 16)
                    c->kbps[k] = b;
                if (w == 0 || w == 1 || w == 2 || w == 4 || w == 8)
                    c->kwpr[k] = w;
            }
        }
        v = strchr(v, ',');
        if (v)
            v++;
    }
}

/* Shared memory the streamed matvec may take (its limit is raised once, at
 * start, not while a graph is being captured). */
constexpr size_t MVS_SMEM_MAX = 200 * 1024;


/* Raises the shared-memory limit of the opt-in streamed matvecs that are on
 * (k_mvs: ATTNSCOPE_CUDA_MV=mvs, k_mvr: =mvr) for element type T. */
template <typename T>
int ring_mv_allow(cuctx *c)
{
    const void *k[2] = {NULL, NULL};
    if (c->mvs) {
        k[0] = (const void *)kern::k_mvs<T, 1>;
        k[1] = (const void *)kern::k_mvs<T, 2>;
    } else if (c->mvr) {
        k[0] = (const void *)kern::k_mvr<T, 1>;
        k[1] = (const void *)kern::k_mvr<T, 2>;
    }
    for (const void *f : k)
        if (f)
            CK(c, cudaFuncSetAttribute(f, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)MVS_SMEM_MAX),
               "matvec shared memory");
    return ENG_OK;
}

/* k_mvr for a matvec (ATTNSCOPE_CUDA_MV=mvr): 1 when launched, 0 where it
 * does not apply (rows not a multiple of 16 bytes, fewer than two stages). */
template <typename T>
int mvr_launch(cuctx *c, const kern::mv_args &a, bool two)
{
    int row_bytes = a.cols * (int)sizeof(T), unit = row_bytes * (two ? 2 : 1);
    int stage = c->mvr_stage > unit ? c->mvr_stage : (unit + 127) / 128 * 128;
    int ns = c->mvr_ring / stage;
    if (ns > kern::ST_MAX_STAGES)
        ns = kern::ST_MAX_STAGES;
    size_t smem = (size_t)ns * stage + (size_t)a.cols * sizeof(float);
    if (row_bytes % 16 || ns < 2 || smem > MVS_SMEM_MAX)
        return 0;
    dim3 grid((unsigned)c->sms), block(kern::MVR_THREADS);
    counted[CNT_MVR]++;
    int rc = two ? launch(c, kern::k_mvr<T, 2>, grid, block, smem, "matvec launch", a, ns, stage)
                 : launch(c, kern::k_mvr<T, 1>, grid, block, smem, "matvec launch", a, ns, stage);
    return rc ? -1 : 1;
}

/* The streamed matvec's chunking for rows of row_bytes (NR rows a unit), or
 * false where it does not apply (rows not a multiple of 16 bytes, or a unit
 * too large for two stages of the ring). */
bool mvs_plan_for(const cuctx *c, int row_bytes, int nr, kern::mvs_plan *p)
{
    int unit = row_bytes * nr;
    if (row_bytes <= 0 || row_bytes % 16 != 0 || 2L * unit > c->mvs_ring ||
        (size_t)c->mvs_ring + (size_t)row_bytes / 2 * sizeof(float) > MVS_SMEM_MAX)   /* ring + x (f32) */
        return false;
    int rpc = c->mvs_chunk / unit;
    rpc = rpc < 1 ? 1 : rpc > kern::MVS_MAX_RPC ? kern::MVS_MAX_RPC : rpc;
    int ns = c->mvs_ring / (rpc * unit);
    *p = kern::mvs_plan{rpc, ns > kern::MVS_MAX_STAGES ? kern::MVS_MAX_STAGES : ns, unit, row_bytes, c->mvs_dry};
    return true;
}

template <typename T, int NR>
int mvs_launch(cuctx *c, const kern::mv_args &a, const kern::mvs_plan &p)
{
    size_t smem = (size_t)p.ns * p.rpc * p.unit_bytes + (size_t)a.cols * sizeof(float);
    if (smem > MVS_SMEM_MAX)
        return fail_cuda(c, cudaErrorInvalidValue, "matvec shared memory");
    long most = (long)c->sms * c->mvs_bps;
    dim3 grid((unsigned)(a.rows < most ? a.rows : most));
    return launch(c, kern::k_mvs<T, NR>, grid, dim3(kern::MVS_THREADS), smem, "matvec launch", a, p);
}

template <typename T>
int mv(cuctx *c, kern::mv_args a, int kind)
{
    bool two = a.mode == kern::MV_SWIGLU;
    kern::mvs_plan p;
    if (c->mvs && mvs_plan_for(c, a.cols * (int)sizeof(T), two ? 2 : 1, &p))
        return two ? mvs_launch<T, 2>(c, a, p) : mvs_launch<T, 1>(c, a, p);
    if (c->mvr && c->mvr_kind[kind]) {
        int r = mvr_launch<T>(c, a, two);
        if (r)
            return r < 0 ? c->failed : ENG_OK;
    }
    a.wpr = pick_wpr(c, a.rows, kind);
    a.pre = c->mv_pre;
    size_t smem = (size_t)a.cols * sizeof(float);
    if (smem > 48 * 1024)
        CK(c, cudaFuncSetAttribute(two ? kern::k_matvec<T, 2> : kern::k_matvec<T, 1>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem), "matvec shared memory");
    dim3 grid((unsigned)mv_grid(c, a.rows, a.wpr, kind));
    return two ? launch(c, kern::k_matvec<T, 2>, grid, dim3(kern::MV_THREADS), smem, "matvec launch", a)
               : launch(c, kern::k_matvec<T, 1>, grid, dim3(kern::MV_THREADS), smem, "matvec launch", a);
}

/* The L2 prefetch for a kernel whose successor reads matrices m[0..n):
 * the start of each, in proportion to its size, c->pf_bytes in all (the
 * successor's first wave of rows reads the start of each matrix). */
kern::l2_pf pf_of(const cuctx *c, std::initializer_list<const dmat *> m)
{
    kern::l2_pf pf = {};
    size_t es = dtype_size(c->dt), total = 0;
    for (const dmat *d : m)
        total += (size_t)d->rows * d->cols * es;
    if (!c->pf_bytes || !total)
        return pf;
    double frac = total > c->pf_bytes ? (double)c->pf_bytes / (double)total : 1.0;
    for (const dmat *d : m) {
        size_t bytes = (size_t)((double)((size_t)d->rows * d->cols * es) * frac) & ~(size_t)15;
        if (bytes && pf.n < 3) {
            pf.p[pf.n] = (const char *)d->p;
            pf.bytes[pf.n++] = bytes;
        }
    }
    return pf;
}

template <typename T>
int copy_probs(cuctx *c, const bk_forward *f, int l, int T_, int nk);


/* k_mlp for the block size c->mlp_threads (256, 512 or 1024). */
template <typename T>
void (*mlp_kernel(const cuctx *c))(kern::mlp_args)
{
    return c->mlp_threads == 256 ? kern::k_mlp<T, 256> : c->mlp_threads == 512 ? kern::k_mlp<T, 512> : kern::k_mlp<T, 1024>;
}

/* y += W_down silu(W_gate n) * (W_up n), n = RMSNorm(x): the fused MLP;
 * next (when the fusion is on): then the q/k/v product of that layer. */
template <typename T>
int mlp(cuctx *c, const dlayer *d, const float *x, float *y, unsigned long long *tl, const dlayer *next)
{
    const config_t *cf = &c->m->cfg;
    long grid = mlp_grid(c, cf);
    size_t smem = mlp_smem(c, cf, next);
    kern::mlp_args a = {x, d->ffn_norm, cf->norm_eps, d->wg.p, d->wu.p, d->wd.p, y, cf->dim, cf->hidden_dim, tl};
    a.red_mode = c->mlp_red;
    if (next) {
        a.qnorm = next->attn_norm;
        a.seg[0] = {next->wq.p, next->bq, c->q, next->wq.rows};
        a.seg[1] = {next->wk.p, next->bk, c->k, next->wk.rows};
        a.seg[2] = {next->wv.p, next->bv, c->v, next->wv.rows};
        a.n_seg = 3;
        a.qrows = next->wq.rows + next->wk.rows + next->wv.rows;
        a.bar = c->mlp_bar;
        counted[CNT_MLP_QKV]++;
    }
    counted[CNT_MLP]++;
    return launch(c, mlp_kernel<T>(c), dim3((unsigned)grid), dim3((unsigned)c->mlp_threads), smem, "mlp launch", a);
}

/* After the upload: the next layer's q/k/v go into k_mlp when its shared
 * memory allows and all of its blocks fit on the device at once (the grid
 * barrier waits for every one of them). */
template <typename T>
int mlp_qkv_setup(cuctx *c)
{
    const config_t *cf = &c->m->cfg;
    c->mlp_qkv = false;
    if (!c->mlp || !c->mlp_qkv_want || cf->n_layers < 2 || mlp_smem(c, cf, true) > MLP_SMEM_MAX)
        return ENG_OK;
    int per_sm = 0;
    CK(c, cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, mlp_kernel<T>(c), c->mlp_threads, mlp_smem(c, cf, true)),
       "mlp occupancy");
    if ((long)per_sm * c->sms < mlp_grid(c, cf))
        return ENG_OK;
    if (alloc_n(c, &c->mlp_bar, 1, "the mlp barrier"))
        return c->failed;
    CK(c, cudaMemsetAsync(c->mlp_bar, 0, sizeof *c->mlp_bar, c->st), "the mlp barrier");
    c->mlp_qkv = true;
    return ENG_OK;
}

/* Query rows a block of k_flash_tc (128 measured the same: docs/performance.md). */
constexpr int FLASH_TC_BQ = 64;

/* Lets k_flash_tc take the shared memory its tiles need (raised once, at
 * start, as for k_mlp). */
template <typename T>
int flash_tc_allow(cuctx *c)
{
    CK(c, cudaFuncSetAttribute(kern::k_flash_tc<T, 64, FLASH_TC_BQ>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)kern::tc_shape<64>::SMEM), "flash attention shared memory");
    CK(c, cudaFuncSetAttribute(kern::k_flash_tc<T, 128, FLASH_TC_BQ>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               (int)kern::tc_shape<128>::SMEM), "flash attention shared memory");
    return ENG_OK;
}

/* Lets k_mlp take the shared memory it needs (raised once, at start: not
 * while a graph is being captured). */
template <typename T>
int mlp_allow(cuctx *c)
{
    CK(c, cudaFuncSetAttribute(mlp_kernel<T>(c), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)MLP_SMEM_MAX),
       "mlp shared memory");
    return ENG_OK;
}

/* One token (f->T == 1) at position f->pos0, token in c->tok, position in
 * c->pos. observed: exact attention with probabilities (not capturable). */
template <typename T>
int decode_layers(cuctx *c, const bk_forward *f, bool observed)
{
    const config_t *cf = &c->m->cfg;
    int dim = cf->dim, hd = cf->head_dim, nh = cf->n_heads, nkv = cf->n_kv_heads;
    float eps = cf->norm_eps, scale = 1.0f / sqrtf((float)hd);
    c->tl_k = 0;
    mark(c, "start");
    kern::k_embed_rope<T><<<1, 256, 0, c->st>>>(c->x, (const T *)c->embed.p, c->tok, dim, c->inv_freq, c->pos,
                                                 c->rope_cs, hd / 2);
    CK(c, cudaGetLastError(), "embedding launch");
    mark(c, "embed");
    for (int l = 0; l < cf->n_layers; l++) {
        const dlayer *d = &c->L[l];
        kern::mv_args a = {};
        if (l == 0 || !c->mlp_qkv) {   /* else the previous layer's k_mlp computed q/k/v */
            a.x = c->x; a.norm = d->attn_norm; a.eps = eps; a.cols = dim; a.mode = kern::MV_STORE;
            a.seg[0] = {d->wq.p, d->bq, c->q, d->wq.rows};
            a.seg[1] = {d->wk.p, d->bk, c->k, d->wk.rows};
            a.seg[2] = {d->wv.p, d->bv, c->v, d->wv.rows};
            a.n_seg = 3;
            a.rows = d->wq.rows + d->wk.rows + d->wv.rows;
            a.pf = pf_of(c, {&d->wo});
            a.tl = tl_next(c, "qkv", 0);
            if (mv<T>(c, a, kern::ST_QKV))
                return c->failed;
            mark(c, "qkv");
        }
        if (observed) {
            kern::post_args p = {c->q, c->k, c->v, NULL, NULL, NULL, d->qn, d->kn, d->K, d->V, eps,
                                 1, f->pos0, nh, nkv, hd, c->S, c->rope_cs, 2 * nkv * hd};
            kern::k_post<<<(nh + nkv + 7) / 8, 256, 0, c->st>>>(p);
            int nk = f->pos0 + 1;
            kern::k_attn_probs<<<dim3(1, (unsigned)nh), 256, 0, c->st>>>(c->q, d->K, d->V, c->att, c->P, 1, f->pos0,
                                                                         nh, nkv, hd, nk, c->S, scale);
            CK(c, cudaGetLastError(), "attention launch");
            if (copy_probs<T>(c, f, l, 1, nk))
                return c->failed;
        } else {
            kern::dec_args da = {c->q, c->k, c->v, d->qn, d->kn, d->K, d->V, c->inv_freq, c->pos, c->part_o,
                                 c->part_ml, c->ticket, c->att, eps, scale, nh, nkv, hd, c->S, c->n_split,
                                 c->min_chunk, c->rope_cs, c->vstage, pf_of(c, {&d->wg, &d->wu})};
            da.wide_combine = c->wide_combine;
            if (c->attn_head) {
                da.n_split = c->head_split;
                da.min_chunk = c->head_chunk;
            } else {
                da.tl = tl_next(c, "attention", (long)nkv * c->n_split);
            }
            if (!c->skip_attn &&
                (c->attn_head ? launch(c, attn_head_kernel(hd), dim3((unsigned)nh, (unsigned)c->head_split), dim3(256),
                                       c->head_smem, "decode attention launch", da)
                              : launch(c, attn_decode_kernel(hd), dim3((unsigned)nkv, (unsigned)c->n_split), dim3(256),
                                       c->dec_smem, "decode attention launch", da)))
                return c->failed;
        }
        mark(c, "attention");
        a = kern::mv_args{};
        a.x = c->att; a.cols = d->wo.cols; a.mode = kern::MV_ADD;
        a.seg[0] = {d->wo.p, NULL, c->x, d->wo.rows};
        a.n_seg = 1;
        a.rows = d->wo.rows;
        a.pf = pf_of(c, {&d->wg, &d->wu});
        a.y2 = c->mlp ? c->xn : NULL;
        a.tl = tl_next(c, "o", 0);
        if (mv<T>(c, a, kern::ST_O))
            return c->failed;
        mark(c, "o");
        if (c->mlp) {
            const dlayer *next = c->mlp_qkv && l + 1 < cf->n_layers ? &c->L[l + 1] : NULL;
            if (mlp<T>(c, d, c->xn, c->x, tl_next(c, next ? "mlp_qkv" : "mlp", 0), next))
                return c->failed;
            mark(c, "mlp");
            continue;
        }
        a = kern::mv_args{};
        a.x = c->x; a.norm = d->ffn_norm; a.eps = eps; a.cols = dim; a.mode = kern::MV_SWIGLU;
        a.seg[0] = {d->wg.p, NULL, c->g, d->wg.rows};
        a.seg[1] = {d->wu.p, NULL, NULL, d->wu.rows};
        a.n_seg = 2;
        a.rows = d->wg.rows;
        a.pf = pf_of(c, {&d->wd});
        a.tl = tl_next(c, "gate_up", 0);
        if (mv<T>(c, a, kern::ST_GU))
            return c->failed;
        mark(c, "gate_up");
        a = kern::mv_args{};
        a.x = c->g; a.cols = d->wd.cols; a.mode = kern::MV_ADD;
        a.seg[0] = {d->wd.p, NULL, c->x, d->wd.rows};
        a.n_seg = 1;
        a.rows = d->wd.rows;
        if (l + 1 < cf->n_layers) {
            const dlayer *e = &c->L[l + 1];
            a.pf = pf_of(c, {&e->wq, &e->wk, &e->wv});
        } else {
            a.pf = pf_of(c, {&c->lm});
        }
        a.tl = tl_next(c, "down", 0);
        if (mv<T>(c, a, kern::ST_DOWN))
            return c->failed;
        mark(c, "down");
    }
    kern::mv_args a = {};
    a.x = c->x; a.norm = c->final_norm; a.eps = eps; a.cols = dim; a.mode = kern::MV_STORE;
    a.seg[0] = {c->lm.p, NULL, c->logits, c->lm.rows};
    a.n_seg = 1;
    a.rows = c->lm.rows;
    a.tl = tl_next(c, "lm_head", 0);
    int rc = mv<T>(c, a, kern::ST_LM);
    mark(c, "lm_head");
    return rc;
}

/* Copies the logits of rows out_row0..T-1 (device c->logits) to f->out. The
 * session's own logits buffer is registered with the driver once, so the
 * copy of every decode step is one DMA. */
int logits_out(cuctx *c, const bk_forward *f)
{
    if (f->out_row0 >= f->T || !f->out)
        return ENG_OK;
    size_t bytes = (size_t)(f->T - f->out_row0) * c->m->cfg.vocab_size * sizeof(float);
    if (f->out_is_session && !c->pinned_out) {
        if (cudaHostRegister(f->out, bytes, cudaHostRegisterDefault) == cudaSuccess)
            c->pinned_out = f->out;
        else
            cudaGetLastError();   /* not fatal: the copy is only slower */
    }
    CK(c, cudaMemcpyAsync(f->out, c->logits, bytes, cudaMemcpyDeviceToHost, c->st), "copying logits");
    return ENG_OK;
}

template <typename T>
int decode(cuctx *c, const bk_forward *f)
{
    bool observed = f->probs != NULL;
    if (c->tl_path && !c->step_on) {   /* the timeline: stamps of this step only */
        size_t n = (size_t)(5 * c->m->cfg.n_layers + 2) * TL_SLOT * kern::TL_FIELDS;
        if (!c->tl && alloc_n(c, &c->tl, n, "the decode timeline"))
            return c->failed;
        CK(c, cudaMemsetAsync(c->tl, 0, n * sizeof *c->tl, c->st), "the decode timeline");
    }
    c->h_tokpos[0] = f->tokens[0];
    c->h_tokpos[1] = f->pos0;
    if (observed || c->prof_path) {
        CK(c, cudaMemcpyAsync(c->tok, c->h_tokpos, sizeof(int), cudaMemcpyHostToDevice, c->st), "token upload");
        CK(c, cudaMemcpyAsync(c->pos, c->h_tokpos + 1, sizeof(int), cudaMemcpyHostToDevice, c->st), "position upload");
        if (decode_layers<T>(c, f, observed))
            return c->failed;
    } else {
        if (!c->graph) {
            cudaGraph_t g = NULL;
            CK(c, cudaStreamBeginCapture(c->st, cudaStreamCaptureModeRelaxed), "graph capture");
            cudaMemcpyAsync(c->tok, c->h_tokpos, sizeof(int), cudaMemcpyHostToDevice, c->st);
            cudaMemcpyAsync(c->pos, c->h_tokpos + 1, sizeof(int), cudaMemcpyHostToDevice, c->st);
            int rc = c->step_on ? step_launch<T>(c) : decode_layers<T>(c, f, false);
            cudaError_t e = cudaStreamEndCapture(c->st, &g);
            if (rc)
                return rc;
            CK(c, e, "graph capture");
            e = cudaGraphInstantiate(&c->graph, g, 0);
            cudaGraphDestroy(g);
            CK(c, e, "graph instantiation");
        }
        CK(c, cudaGraphLaunch(c->graph, c->st), "graph launch");
    }
    if (logits_out(c, f))
        return c->failed;
    CK(c, cudaStreamSynchronize(c->st), "decode step");
    if (c->prof_path)
        prof_collect(c);
    return ENG_OK;
}

/* --------------------------------------------------------------- prefill */

cudaDataType_t cuda_type(eng_dtype dt)
{
    return dt == DT_BF16 ? CUDA_R_16BF : dt == DT_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* Y[T][rows] (f32) = X[T][cols] W^T + beta Y; X in the weights' dtype. */
int gemm(cuctx *c, float *y, const void *x, int T, const dmat &w, float beta)
{
    const float one = 1.f;
    cudaDataType_t t = cuda_type(c->dt);
    cublasComputeType_t ct = c->dt == DT_F32 ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
    /* Row-major Y = X W^T is column-major Y' = W'^T X' with W' = (cols x rows);
     * W stored transposed is column-major (rows x cols) as it is. */
    cublasStatus_t st = cublasGemmEx(c->blas, w.tr ? CUBLAS_OP_N : CUBLAS_OP_T, CUBLAS_OP_N, w.rows, T, w.cols, &one,
                                     w.p, t, w.tr ? w.rows : w.cols, x, t, w.cols, &beta, y, CUDA_R_32F, w.rows, ct,
                                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS)
        return fail_blas(c, st, "cublasGemmEx");
    return ENG_OK;
}

void dev_free(cuctx *c, void *p)
{
    for (int i = 0; i < c->n_allocs; i++)
        if (c->allocs[i] == p) {
            cudaFree(p);
            c->allocs[i] = c->allocs[--c->n_allocs];
            return;
        }
}

/* The probabilities buffer, grown geometrically (the observer asks for one
 * more row of keys every decode step). */
int ensure_P(cuctx *c, size_t n)
{
    if (n <= c->n_P)
        return ENG_OK;
    size_t want = n < 2 * c->n_P ? 2 * c->n_P : n + n / 2;
    if (c->P)
        dev_free(c, c->P);
    c->P = NULL;
    c->n_P = 0;
    if (alloc_n(c, &c->P, want, "attention probabilities"))
        return c->failed;
    c->n_P = want;
    return ENG_OK;
}

/* Layer l's probabilities (P: nh, T, nk) into the observer's rows. */
template <typename T>
int copy_probs(cuctx *c, const bk_forward *f, int l, int T_, int nk)
{
    int nh = c->m->cfg.n_heads, w = nk < f->probs_nk ? nk : f->probs_nk;
    float *base = f->probs + (size_t)l * nh * f->probs_nq * f->probs_nk;
    for (int h = 0; h < nh; h++) {
        float *dst = base + ((size_t)h * f->probs_nq + f->probs_row0) * f->probs_nk;
        CK(c, cudaMemcpy2DAsync(dst, (size_t)f->probs_nk * sizeof(float), c->P + (size_t)h * T_ * nk,
                                (size_t)nk * sizeof(float), (size_t)w * sizeof(float), (size_t)T_,
                                cudaMemcpyDeviceToHost, c->st), "copying attention probabilities");
    }
    CK(c, cudaStreamSynchronize(c->st), "copying attention probabilities");
    if (f->probs_nk > nk)
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < T_; i++)
                memset(base + ((size_t)h * f->probs_nq + f->probs_row0 + i) * f->probs_nk + nk, 0,
                       (size_t)(f->probs_nk - nk) * sizeof(float));
    return ENG_OK;
}

template <typename T, int DPT>
int flash(cuctx *c, const dlayer *d, int T_, int pos0)
{
    const config_t *cf = &c->m->cfg;
    int hd = cf->head_dim;
    size_t smem = (size_t)(32 * (hd + 1) + 32 * hd + 64 * 33) * sizeof(float);
    if (smem > 48 * 1024)
        CK(c, cudaFuncSetAttribute(kern::k_flash<T, DPT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
           "flash attention shared memory");
    dim3 grid((unsigned)((T_ + 63) / 64), (unsigned)cf->n_heads);
    kern::k_flash<T, DPT><<<grid, 256, smem, c->st>>>(c->q, d->K, d->V, (T *)c->xa, T_, pos0, cf->n_heads,
                                                     cf->n_kv_heads, hd, c->S, 1.0f / sqrtf((float)hd));
    CK(c, cudaGetLastError(), "flash attention launch");
    return ENG_OK;
}

/* k_proj and v_proj as one matrix: rows of k then v (upload_model puts wv
 * right after wk). */
dmat kv_of(const dlayer *d)
{
    return dmat{d->wk.p, d->wk.rows + d->wv.rows, d->wk.cols, false};
}

/* Prefill attention on tensor cores (f16 / bf16 weights; head_dim 16, 32,
 * 64 or 128): k_flash_tc. */
template <typename T, int HD>
int flash_tc(cuctx *c, const dlayer *d, int T_, int pos0)
{
    const config_t *cf = &c->m->cfg;
    constexpr int BQ = FLASH_TC_BQ;
    constexpr size_t smem = kern::tc_shape<HD>::SMEM;   /* raised at start: flash_tc_allow */
    counted[CNT_FLASH_TC]++;
    dim3 grid((unsigned)((T_ + BQ - 1) / BQ), (unsigned)cf->n_heads);
    kern::k_flash_tc<T, HD, BQ><<<grid, 2 * BQ, smem, c->st>>>(c->q, d->K, d->V, (T *)c->xa, T_, pos0, cf->n_heads,
                                                               cf->n_kv_heads, c->S, 1.0f / sqrtf((float)HD));
    CK(c, cudaGetLastError(), "flash attention launch");
    return ENG_OK;
}

template <typename T>
int attention_prefill(cuctx *c, const bk_forward *f, int l)
{
    const config_t *cf = &c->m->cfg;
    const dlayer *d = &c->L[l];
    int T_ = f->T, hd = cf->head_dim, nh = cf->n_heads;
    if (f->probs) {
        int nk = f->pos0 + T_;
        if (ensure_P(c, (size_t)nh * T_ * nk))
            return c->failed;
        kern::k_attn_probs<<<dim3((unsigned)T_, (unsigned)nh), 256, 0, c->st>>>(
            c->q, d->K, d->V, c->att, c->P, T_, f->pos0, nh, cf->n_kv_heads, hd, nk, c->S, 1.0f / sqrtf((float)hd));
        CK(c, cudaGetLastError(), "attention launch");
        if (copy_probs<T>(c, f, l, T_, nk))
            return c->failed;
        size_t n = (size_t)T_ * nh * hd;
        kern::k_convert<T><<<(unsigned)((n + 255) / 256 < 4096 ? (n + 255) / 256 : 4096), 256, 0, c->st>>>((T *)c->xa, c->att, n);
        CK(c, cudaGetLastError(), "convert launch");
        return ENG_OK;
    }
    if constexpr (!std::is_same<T, kern::f32w>::value) {
        if (!c->flash_f32)
            switch (hd) {
            case 16: return flash_tc<T, 16>(c, d, T_, f->pos0);
            case 32: return flash_tc<T, 32>(c, d, T_, f->pos0);
            case 64: return flash_tc<T, 64>(c, d, T_, f->pos0);
            case 128: return flash_tc<T, 128>(c, d, T_, f->pos0);
            }
    }
    int dpt = (hd + 3) / 4;
    if (dpt <= 2) return flash<T, 2>(c, d, T_, f->pos0);
    if (dpt <= 4) return flash<T, 4>(c, d, T_, f->pos0);
    if (dpt <= 8) return flash<T, 8>(c, d, T_, f->pos0);
    if (dpt <= 16) return flash<T, 16>(c, d, T_, f->pos0);
    if (dpt <= 32) return flash<T, 32>(c, d, T_, f->pos0);
    if (dpt <= 64) return flash<T, 64>(c, d, T_, f->pos0);
    c->failed = eng_fail(&c->err, ENG_EINPUT, "cuda: head_dim %d is larger than the attention kernel's 256", hd);
    return c->failed;
}

template <typename T>
int prefill(cuctx *c, const bk_forward *f)
{
    const config_t *cf = &c->m->cfg;
    int T_ = f->T, dim = cf->dim, hidden = cf->hidden_dim, nh = cf->n_heads, nkv = cf->n_kv_heads;
    float eps = cf->norm_eps;
    T *xa = (T *)c->xa;
    mark(c, "pf:start");
    CK(c, cudaMemcpyAsync(c->tok, f->tokens, (size_t)T_ * sizeof(int), cudaMemcpyHostToDevice, c->st), "token upload");
    kern::k_embed<T><<<(unsigned)T_, 256, 0, c->st>>>(c->x, (const T *)c->embed.p, c->tok, dim, c->inv_freq, f->pos0,
                                                       c->rope_rows, cf->head_dim / 2);
    CK(c, cudaGetLastError(), "embedding launch");
    mark(c, "pf:embed");
    for (int l = 0; l < cf->n_layers; l++) {
        const dlayer *d = &c->L[l];
        kern::k_rmsnorm<T><<<(unsigned)T_, 256, 0, c->st>>>(xa, c->x, d->attn_norm, dim, eps);
        CK(c, cudaGetLastError(), "rmsnorm launch");
        mark(c, "pf:norm");
        if (gemm(c, c->q, xa, T_, d->wq, 0.f) || gemm(c, c->k, xa, T_, kv_of(d), 0.f))
            return c->failed;
        mark(c, "pf:qkv");
        kern::post_args p = {c->q, c->k, c->v, d->bq, d->bk, d->bv, d->qn, d->kn, d->K, d->V, eps,
                             T_, f->pos0, nh, nkv, cf->head_dim, c->S, c->rope_rows, 2 * nkv * cf->head_dim};
        kern::k_post<<<(unsigned)(((long)T_ * (nh + nkv) + 7) / 8), 256, 0, c->st>>>(p);
        CK(c, cudaGetLastError(), "rope launch");
        mark(c, "pf:rope");
        if (attention_prefill<T>(c, f, l))
            return c->failed;
        mark(c, "pf:attention");
        if (gemm(c, c->x, xa, T_, d->wo, 1.f))
            return c->failed;
        mark(c, "pf:o");
        kern::k_rmsnorm<T><<<(unsigned)T_, 256, 0, c->st>>>(xa, c->x, d->ffn_norm, dim, eps);
        CK(c, cudaGetLastError(), "rmsnorm launch");
        mark(c, "pf:norm");
        if (gemm(c, c->g, xa, T_, d->wg, 0.f) || gemm(c, c->u, xa, T_, d->wu, 0.f))
            return c->failed;
        mark(c, "pf:gate_up");
        size_t n = (size_t)T_ * hidden;
        kern::k_swiglu<T><<<(unsigned)((n + 255) / 256 < 8192 ? (n + 255) / 256 : 8192), 256, 0, c->st>>>(xa, c->g, c->u, n);
        CK(c, cudaGetLastError(), "swiglu launch");
        mark(c, "pf:swiglu");
        if (gemm(c, c->x, xa, T_, d->wd, 1.f))
            return c->failed;
        mark(c, "pf:down");
    }
    if (f->out_row0 < T_) {
        int R = T_ - f->out_row0;
        kern::k_rmsnorm<T><<<(unsigned)R, 256, 0, c->st>>>(xa, c->x + (size_t)f->out_row0 * dim, c->final_norm, dim, eps);
        CK(c, cudaGetLastError(), "rmsnorm launch");
        if (gemm(c, c->logits, xa, R, c->lm, 0.f))
            return c->failed;
        mark(c, "pf:lm_head");
        if (logits_out(c, f))
            return c->failed;
        mark(c, "pf:logits_out");
    }
    CK(c, cudaStreamSynchronize(c->st), "prefill");
    if (c->prof_path)
        prof_collect(c);
    return ENG_OK;
}

/* ------------------------------------------------------------------ table */

template <typename T>
int run(cuctx *c, const bk_forward *f)
{
    if (f->T == 1 && f->probs && ensure_P(c, (size_t)c->m->cfg.n_heads * (f->pos0 + 1)))
        return c->failed;
    return f->T == 1 ? decode<T>(c, f) : prefill<T>(c, f);
}

void nan_out(const bk_forward *f, int vocab)
{
    if (!f->out || f->out_row0 >= f->T)
        return;
    size_t n = (size_t)(f->T - f->out_row0) * vocab;
    for (size_t i = 0; i < n; i++)
        f->out[i] = NAN;
}

void cu_forward(void *ctx, const bk_forward *f)
{
    cuctx *c = (cuctx *)ctx;
    if (!c->failed && c->m != f->m) {
        if (c->m)
            c->failed = eng_fail(&c->err, ENG_EINPUT, "cuda: one backend context serves one model");
        else
            upload_model(c, f);
    }
    if (!c->failed && f->pos0 + f->T > c->S)
        c->failed = eng_fail(&c->err, ENG_ERANGE, "cuda: positions up to %d past the cache's %d", f->pos0 + f->T, c->S);
    if (!c->failed) {
        switch (c->dt) {
        case DT_F32: run<f32w>(c, f); break;
        case DT_BF16: run<bf16w>(c, f); break;
        case DT_F16: run<f16w>(c, f); break;
        }
    }
    if (c->failed)
        nan_out(f, f->m->cfg.vocab_size);
}

/* ATTNSCOPE_CUDA_STEP_TRACE: k_step's time per job kind and part, in us
 * per step averaged over the blocks (each block's parts add up to its
 * kernel time). */
void step_trace_write(cuctx *c)
{
    unsigned long long t[kern::ST_TRACE_N] = {0};
    FILE *f;
    if (!c->sa.trace || cudaMemcpy(t, c->sa.trace, sizeof t, cudaMemcpyDeviceToHost) != cudaSuccess ||
        !t[kern::ST_TRACE_STEPS] || !(f = fopen(c->trace_path, "a")))
        return;
    double per = 1e3 * (double)t[kern::ST_TRACE_STEPS] * (double)c->sms;   /* ns -> us per step and block */
    fprintf(f, "k_step, %llu steps: us per step (mean over blocks)\nphase      barrier  attention   input  products\n",
            t[kern::ST_TRACE_STEPS]);
    for (int k = 0; k < 5; k++)
        fprintf(f, "%-9s %8.1f %10.1f %7.1f %9.1f\n", mv_kind_name[k], t[k * 4] / per, t[k * 4 + 1] / per, t[k * 4 + 2] / per,
                t[k * 4 + 3] / per);
    fprintf(f, "kernel    %8.1f us per step\n", t[kern::ST_TRACE_TOTAL] / per);
    fclose(f);
}

void cu_free(void *ctx)
{
    cuctx *c = (cuctx *)ctx;
    if (!c)
        return;
    if (c->st)
        cudaStreamSynchronize(c->st);
    if (c->prof_path) {
        prof_write(c);
        for (int i = 0; i < 512 && c->ev[i]; i++)
            cudaEventDestroy(c->ev[i]);
        free(c->prof_path);
    }
    if (c->trace_path) {
        step_trace_write(c);
        free(c->trace_path);
    }
    if (c->tl_path) {
        if (c->tl)
            tl_write(c);
        free(c->tl_path);
    }
    if (c->graph)
        cudaGraphExecDestroy(c->graph);
    if (c->pinned_out)
        cudaHostUnregister(c->pinned_out);
    for (int i = 0; i < c->n_allocs; i++)
        cudaFree(c->allocs[i]);
    eng_free(c->allocs);
    if (c->h_tokpos)
        cudaFreeHost(c->h_tokpos);
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->st)
        cudaStreamDestroy(c->st);
    eng_free(c->L);
    eng_free(c);
}

/* Tuning switches: whether variable name is set to value; its integer value
 * when set within lo..hi, else dflt. */
bool env_is(const char *name, const char *value)
{
    const char *v = getenv(name);
    return v && strcmp(v, value) == 0;
}

int env_int(const char *name, int lo, int hi, int dflt)
{
    const char *v = getenv(name);
    return v && atoi(v) >= lo && atoi(v) <= hi ? atoi(v) : dflt;
}

int cu_new(void **out, const bk_sizes *sz, eng_err *err)
{
    *out = NULL;
    int rc = cuda_probe(err);
    if (rc != ENG_OK)
        return rc;
    cuctx *c = (cuctx *)eng_calloc(1, sizeof *c);
    if (!c)
        return eng_fail(err, ENG_ENOMEM, "cuda: out of memory for the backend context");
    c->sz = *sz;
    cudaError_t e = cudaDeviceGetAttribute(&c->sms, cudaDevAttrMultiProcessorCount, 0);
    if (e == cudaSuccess)
        e = cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking);
    if (e == cudaSuccess)
        e = cudaMallocHost((void **)&c->h_tokpos, 2 * sizeof(int));
    if (e != cudaSuccess) {
        cu_free(c);
        return eng_fail(err, e == cudaErrorMemoryAllocation ? ENG_ENOMEM : ENG_EDEVICE, "cuda: %s",
                        cudaGetErrorString(e));
    }
    cublasStatus_t st = cublasCreate(&c->blas);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasSetStream(c->blas, c->st);
    if (st != CUBLAS_STATUS_SUCCESS) {
        cu_free(c);
        return eng_fail(err, ENG_EDEVICE, "cuda: cublasCreate failed (status %d)", (int)st);
    }
    const char *pf = getenv("ATTNSCOPE_CUDA_PROFILE");
    if (pf && *pf)
        c->prof_path = strdup(pf);
    c->pdl = !env_is("ATTNSCOPE_CUDA_PDL", "0");
    c->bps = env_int("ATTNSCOPE_CUDA_BPS", 1, 16, 4);
    c->pf_bytes = (size_t)env_int("ATTNSCOPE_CUDA_PF", 0, 1024, 0) << 20;
    c->step_want = env_is("ATTNSCOPE_CUDA_STEP", "1");   /* measured slower: docs/cuda.md */
    const char *tlp = getenv("ATTNSCOPE_CUDA_TIMELINE");
    if (tlp && *tlp)
        c->tl_path = strdup(tlp);
    const char *tp = getenv("ATTNSCOPE_CUDA_STEP_TRACE");
    if (tp && *tp)
        c->trace_path = strdup(tp);
    c->step_stage = env_int("ATTNSCOPE_CUDA_STAGE", 4, 112, 32) * 1024;
    c->mv_pre = env_int("ATTNSCOPE_CUDA_PRE", 0, 8, 8);
    c->step_inflight = env_int("ATTNSCOPE_CUDA_INFLIGHT", 0, 4096, 0) * 1024;
    c->mvs = env_is("ATTNSCOPE_CUDA_MV", "mvs");
    c->mvr = env_is("ATTNSCOPE_CUDA_MV", "mvr");
    const char *mk = getenv("ATTNSCOPE_CUDA_MVR_KINDS");
    for (int k = 0; k < 5; k++) {   /* whole names in a comma-separated list */
        size_t n = strlen(mv_kind_name[k]);
        c->mvr_kind[k] = !mk || !*mk;
        for (const char *t = mk; t && *t; t = strchr(t, ',') ? strchr(t, ',') + 1 : NULL)
            if (!strncmp(t, mv_kind_name[k], n) && (t[n] == ',' || t[n] == 0))
                c->mvr_kind[k] = true;
    }
    c->mvr_ring = env_int("ATTNSCOPE_CUDA_MVR_RING", 16, 200, 64) * 1024;
    c->mvr_stage = env_int("ATTNSCOPE_CUDA_MVR_STAGE", 2, 64, 16) * 1024;
    c->min_chunk_env = env_int("ATTNSCOPE_CUDA_MINCHUNK", 1, 4096, 0);
    c->attn_head = env_is("ATTNSCOPE_CUDA_ATTN", "head");
    c->skip_attn = env_is("ATTNSCOPE_CUDA_SKIP_ATTN", "1");
    c->vstage = !env_is("ATTNSCOPE_CUDA_VSTAGE", "0");
    c->mvs_dry = env_is("ATTNSCOPE_CUDA_MVS_DRY", "1");
    /* the kernel-per-matrix switches apply to that path only */
    c->step_want = c->step_want && !c->mvs && !c->mvr && !c->attn_head && !c->skip_attn && !c->pf_bytes;
    c->mvs_chunk = env_int("ATTNSCOPE_CUDA_MVS_CHUNK", 1, 64, 16) * 1024;
    c->mvs_bps = env_int("ATTNSCOPE_CUDA_MVS_BPS", 1, 4, 1);
    c->mvs_ring = env_int("ATTNSCOPE_CUDA_MVS_RING", 8, 160, 72) * 1024;
    c->mlp_want = !env_is("ATTNSCOPE_CUDA_MLP", "0");
    c->mlp_threads = env_int("ATTNSCOPE_CUDA_MLP_THREADS", 256, 1024, 512);   /* 512 measured fastest */
    if (c->mlp_threads != 256 && c->mlp_threads != 1024)
        c->mlp_threads = 512;
    c->mlp_bps = env_int("ATTNSCOPE_CUDA_MLP_BPS", 1, 4, 1024 / c->mlp_threads);
    c->mlp_red = env_int("ATTNSCOPE_CUDA_MLP_RED", 0, 2, 0);
    c->mlp_qkv_want = env_is("ATTNSCOPE_CUDA_MLP_QKV", "1");   /* measured slower: docs/cuda.md */
    c->flash_f32 = env_is("ATTNSCOPE_CUDA_FLASH", "f32");
    if (ring_mv_allow<kern::f32w>(c) || ring_mv_allow<kern::bf16w>(c) || ring_mv_allow<kern::f16w>(c) ||
        mlp_allow<kern::f32w>(c) || mlp_allow<kern::bf16w>(c) || mlp_allow<kern::f16w>(c) ||
        flash_tc_allow<kern::bf16w>(c) || flash_tc_allow<kern::f16w>(c)) {
        eng_err e = c->err;
        int rc = c->failed;
        cu_free(c);
        if (err)
            *err = e;
        return rc;
    }
    parse_mvcfg(c, getenv("ATTNSCOPE_CUDA_MVCFG"));
    c->wide_combine = !env_is("ATTNSCOPE_CUDA_COMBINE", "0");
    c->waves = !env_is("ATTNSCOPE_CUDA_WAVES", "0");   /* measured 3% faster on tinyllama-1.1b: docs/cuda.md */
    const char *w = getenv("ATTNSCOPE_CUDA_WPR");
    if (w && (atoi(w) == 1 || atoi(w) == 2 || atoi(w) == 4 || atoi(w) == 8))
        c->wpr_override = atoi(w);
    *out = c;
    return ENG_OK;
}

int cu_threads(const void *ctx)
{
    (void)ctx;
    return 1;
}

}  // namespace

extern "C" long cuda_launches(const char *path)
{
    for (int i = 0; i < N_COUNTED; i++)
        if (!strcmp(path, counted_name[i]))
            return counted[i];
    return -1;
}

extern "C" int cuda_probe(eng_err *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess)
        return eng_fail(err, ENG_EDEVICE, "cuda: no usable CUDA device (%s)", cudaGetErrorString(e));
    if (n <= 0)
        return eng_fail(err, ENG_EDEVICE, "cuda: no CUDA device found");
    e = cudaSetDevice(0);
    if (e != cudaSuccess)
        return eng_fail(err, ENG_EDEVICE, "cuda: cannot use device 0 (%s)", cudaGetErrorString(e));
    return ENG_OK;
}

extern "C" int cuda_ctx_status(const void *ctx, eng_err *err)
{
    const cuctx *c = (const cuctx *)ctx;
    if (!c || !c->failed)
        return ENG_OK;
    if (err)
        *err = c->err;
    return c->failed;
}

extern "C" const backend_ops backend_cuda = {"cuda", cu_new, cu_free, cu_threads, NULL, NULL, NULL, cu_forward};
