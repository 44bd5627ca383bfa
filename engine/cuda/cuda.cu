/* cuda.cu - the CUDA backend: backend.h's table (matvec, matmul, attention)
 * on the first GPU. Weights are uploaded once, in their stored dtype, the
 * first time a call names them (a table keyed by the host data pointer);
 * the KV cache is mirrored on the device (only rows new since the last call
 * cross the bus); activations and outputs cross the bus per call. Decode matvec: one warp per output row, 16-byte loads. Prefill
 * matmul: the weight widened to f32 on the device, then cublasSgemm (f32
 * accumulate, no TF32). Attention: one block per (query row, head), exact
 * softmax through a scores buffer in device memory. */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "cuda.h"
}

namespace {

struct wslot {
    const void *host;   /* key: tensor_t.data and the byte size (views may share a start) */
    size_t bytes;
    void *dev;
};

/* One layer's K/V on the device, [n_kv_heads][stride][head_dim] like the
 * host cache it mirrors. Rows [0, valid) are current: the session writes
 * rows pos0.. of a layer only right before that layer's attention call
 * (kv_store, then attention over the same rows), so a call uploads rows
 * from min(valid, pos0) up to pos0 + T and nothing before is stale. */
struct kvslot {
    const float *hk, *hv;   /* key: the host cache of the layer */
    int stride, nkv, hd, valid;
    float *dk, *dv;
};

struct cuctx {
    cublasHandle_t blas;
    kvslot *kv;
    int n_kv, cap_kv;
    wslot *slots;       /* open addressing, cap a power of two */
    size_t cap, used;
    float *d_x, *d_y, *d_w, *d_q, *d_o, *d_p;
    size_t n_x, n_y, n_w, n_q, n_o, n_p;  /* floats held */
    int failed;         /* the status of the first failure (0 = none) */
    eng_err err;
};

int fail_cuda(cuctx *c, cudaError_t e, const char *what)
{
    int code = e == cudaErrorMemoryAllocation ? ENG_ENOMEM : ENG_EDEVICE;
    if (!c->failed)
        c->failed = eng_fail(&c->err, code, "cuda: %s: %s", what, cudaGetErrorString(e));
    return code;
}

#define CK(c, call, what) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) return fail_cuda((c), e_, (what)); } while (0)

int ensure(cuctx *c, float **buf, size_t *have, size_t need, const char *what)
{
    if (need <= *have)
        return ENG_OK;
    if (*buf)
        cudaFree(*buf);
    *buf = NULL;
    *have = 0;
    size_t n = need + need / 4;
    cudaError_t e = cudaMalloc((void **)buf, n * sizeof(float));
    if (e != cudaSuccess) {
        *buf = NULL;
        return fail_cuda(c, e, what);
    }
    *have = n;
    return ENG_OK;
}

size_t hash_ptr(const void *p) { return (size_t)(((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull); }

/* The device copy of w (uploaded on first use), or NULL after a failure. */
const void *weight(cuctx *c, const tensor_t *w)
{
    if (c->used * 2 >= c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 256;
        wslot *ns = (wslot *)eng_calloc(ncap, sizeof *ns);
        if (!ns) {
            if (!c->failed)
                c->failed = eng_fail(&c->err, ENG_ENOMEM, "cuda: out of host memory for the weight table");
            return NULL;
        }
        for (size_t i = 0; i < c->cap; i++) {
            if (!c->slots[i].host)
                continue;
            size_t j = hash_ptr(c->slots[i].host) & (ncap - 1);
            while (ns[j].host)
                j = (j + 1) & (ncap - 1);
            ns[j] = c->slots[i];
        }
        eng_free(c->slots);
        c->slots = ns;
        c->cap = ncap;
    }
    size_t bytes = dtype_size(w->dtype);
    for (int d = 0; d < w->ndim; d++)
        bytes *= (size_t)w->shape[d];
    size_t j = hash_ptr(w->data) & (c->cap - 1);
    while (c->slots[j].host) {
        if (c->slots[j].host == w->data && c->slots[j].bytes == bytes)
            return c->slots[j].dev;
        j = (j + 1) & (c->cap - 1);
    }
    void *dev = NULL;
    cudaError_t e = cudaMalloc(&dev, bytes);
    if (e != cudaSuccess) {
        fail_cuda(c, e, "uploading a weight (cudaMalloc)");
        return NULL;
    }
    e = cudaMemcpy(dev, w->data, bytes, cudaMemcpyHostToDevice);
    if (e != cudaSuccess) {
        cudaFree(dev);
        fail_cuda(c, e, "uploading a weight (cudaMemcpy)");
        return NULL;
    }
    c->slots[j].host = w->data;
    c->slots[j].bytes = bytes;
    c->slots[j].dev = dev;
    c->used++;
    return dev;
}

/* ---- kernels ---- */

__device__ __forceinline__ float cvt(float v) { return v; }
struct bf16s { uint16_t b; };
struct f16s { uint16_t b; };
__device__ __forceinline__ float cvt(bf16s v) { return __uint_as_float((uint32_t)v.b << 16); }
__device__ __forceinline__ float cvt(f16s v) { return __half2float(__ushort_as_half(v.b)); }

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* y[r] = dot(w[r, :], x): one warp per row; 16-byte loads when rows allow. */
template <typename T>
__global__ void k_matvec(float *y, const T *w, const float *x, int rows, int64_t cols)
{
    int64_t row = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (row >= rows)
        return;
    const T *r = w + row * cols;
    float acc = 0.f;
    constexpr int V = 16 / (int)sizeof(T);
    if (cols % V == 0) {
        for (int64_t c = (int64_t)lane * V; c < cols; c += 32 * V) {
            uint4 pk = *reinterpret_cast<const uint4 *>(r + c);
            const T *e = reinterpret_cast<const T *>(&pk);
#pragma unroll
            for (int j = 0; j < V; j++)
                acc += cvt(e[j]) * x[c + j];
        }
    } else {
        for (int64_t c = lane; c < cols; c += 32)
            acc += cvt(r[c]) * x[c];
    }
    acc = warp_sum(acc);
    if (lane == 0)
        y[row] = acc;
}

template <typename T>
__global__ void k_widen(float *out, const T *in, int64_t n)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = cvt(in[i]);
}

/* Block-wide reduce (max or sum) of v; every thread gets the result. */
__device__ float block_reduce(float v, bool is_max)
{
    __shared__ float sh[32];
    __shared__ float res;
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    for (int o = 16; o > 0; o >>= 1) {
        float t = __shfl_xor_sync(0xffffffffu, v, o);
        v = is_max ? fmaxf(v, t) : v + t;
    }
    if (lane == 0)
        sh[wid] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float r = sh[0];
        for (int i = 1; i < nw; i++)
            r = is_max ? fmaxf(r, sh[i]) : r + sh[i];
        res = r;
    }
    __syncthreads();
    float r = res;
    __syncthreads();
    return r;
}

/* One block per (query row i, head h). q, out: [T][nh][hd]; K, V: [nkv][nk][hd];
 * P: [nh][T][nk] scores, then probabilities (0 past the row's position). */
__global__ void k_attention(const float *q, const float *K, const float *V, float *out, float *P, int T,
                            int pos0, int nh, int nkv, int hd, int nk, int kvs, float scale)
{
    int i = blockIdx.x, h = blockIdx.y;
    int kvh = h / (nh / nkv);
    const float *qi = q + ((int64_t)i * nh + h) * hd;
    const float *Kh = K + (int64_t)kvh * kvs * hd;
    const float *Vh = V + (int64_t)kvh * kvs * hd;
    float *p = P + ((int64_t)h * T + i) * nk;
    int last = pos0 + i;   /* keys 0..last */
    float mx = -INFINITY;
    for (int j = threadIdx.x; j <= last; j += blockDim.x) {
        const float *kj = Kh + (int64_t)j * hd;
        float s = 0.f;
        for (int d = 0; d < hd; d++)
            s += qi[d] * kj[d];
        s *= scale;
        p[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = block_reduce(mx, true);
    float sum = 0.f;
    for (int j = threadIdx.x; j < nk; j += blockDim.x) {
        if (j <= last) {
            float e = expf(p[j] - mx);
            p[j] = e;
            sum += e;
        } else {
            p[j] = 0.f;
        }
    }
    sum = block_reduce(sum, false);
    float inv = 1.f / sum;
    for (int j = threadIdx.x; j <= last; j += blockDim.x)
        p[j] *= inv;
    __syncthreads();
    float *oi = out + ((int64_t)i * nh + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.f;
        for (int j = 0; j <= last; j++)
            acc += p[j] * Vh[(int64_t)j * hd + d];
        oi[d] = acc;
    }
}

/* ---- table ---- */

void nan_fill(float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = NAN;
}

/* same_x: j->x is the previous job's input, already in d_x. */
int mv_one(cuctx *c, const bk_matvec *j, bool same_x)
{
    const tensor_t *w = j->w;
    int rows = (int)w->shape[0];
    int64_t cols = w->ndim > 1 ? w->shape[1] : 1;
    const void *dw = weight(c, w);
    if (!dw)
        return ENG_EDEVICE;
    if (ensure(c, &c->d_x, &c->n_x, (size_t)cols, "matvec input") || ensure(c, &c->d_y, &c->n_y, (size_t)rows, "matvec output"))
        return ENG_EDEVICE;
    if (!same_x)
        CK(c, cudaMemcpy(c->d_x, j->x, (size_t)cols * sizeof(float), cudaMemcpyHostToDevice), "matvec: copying x");
    int threads = 256, blocks = (int)(((int64_t)rows * 32 + threads - 1) / threads);
    switch (w->dtype) {
    case DT_F32: k_matvec<float><<<blocks, threads>>>(c->d_y, (const float *)dw, c->d_x, rows, cols); break;
    case DT_BF16: k_matvec<bf16s><<<blocks, threads>>>(c->d_y, (const bf16s *)dw, c->d_x, rows, cols); break;
    case DT_F16: k_matvec<f16s><<<blocks, threads>>>(c->d_y, (const f16s *)dw, c->d_x, rows, cols); break;
    }
    CK(c, cudaGetLastError(), "matvec kernel launch");
    CK(c, cudaMemcpy(j->y, c->d_y, (size_t)rows * sizeof(float), cudaMemcpyDeviceToHost), "matvec: copying y");
    return ENG_OK;
}

void cu_matvec(void *ctx, const bk_matvec *jobs, int n_jobs)
{
    cuctx *c = (cuctx *)ctx;
    for (int i = 0; i < n_jobs; i++) {
        /* q/k/v and gate/up share their input: upload it once. */
        bool same_x = i > 0 && jobs[i].x == jobs[i - 1].x && jobs[i].w->ndim > 1 && jobs[i - 1].w->ndim > 1 &&
                      jobs[i].w->shape[1] == jobs[i - 1].w->shape[1];
        if (c->failed || mv_one(c, &jobs[i], same_x) != ENG_OK)
            nan_fill(jobs[i].y, (size_t)jobs[i].w->shape[0]);
    }
}

int mm(cuctx *c, float *y, const float *x, int T, const tensor_t *w)
{
    int rows = (int)w->shape[0];
    int64_t cols = w->ndim > 1 ? w->shape[1] : 1;
    const void *dw = weight(c, w);
    if (!dw)
        return ENG_EDEVICE;
    size_t nx = (size_t)T * cols, ny = (size_t)T * rows, nw = (size_t)rows * cols;
    if (ensure(c, &c->d_x, &c->n_x, nx, "matmul input") || ensure(c, &c->d_y, &c->n_y, ny, "matmul output"))
        return ENG_EDEVICE;
    const float *wf = (const float *)dw;
    if (w->dtype != DT_F32) {
        if (ensure(c, &c->d_w, &c->n_w, nw, "matmul f32 weight scratch"))
            return ENG_EDEVICE;
        if (w->dtype == DT_BF16)
            k_widen<bf16s><<<1024, 256>>>(c->d_w, (const bf16s *)dw, (int64_t)nw);
        else
            k_widen<f16s><<<1024, 256>>>(c->d_w, (const f16s *)dw, (int64_t)nw);
        CK(c, cudaGetLastError(), "matmul widen kernel launch");
        wf = c->d_w;
    }
    CK(c, cudaMemcpy(c->d_x, x, nx * sizeof(float), cudaMemcpyHostToDevice), "matmul: copying X");
    /* Row-major Y[T][rows] = X[T][cols] W^T is column-major Y^T = W^T' X^T. */
    const float one = 1.f, zero = 0.f;
    cublasStatus_t st = cublasSgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, rows, T, (int)cols, &one, wf, (int)cols,
                                    c->d_x, (int)cols, &zero, c->d_y, rows);
    if (st != CUBLAS_STATUS_SUCCESS) {
        if (!c->failed)
            c->failed = eng_fail(&c->err, ENG_EDEVICE, "cuda: cublasSgemm failed (status %d)", (int)st);
        return ENG_EDEVICE;
    }
    CK(c, cudaMemcpy(y, c->d_y, ny * sizeof(float), cudaMemcpyDeviceToHost), "matmul: copying Y");
    return ENG_OK;
}

void cu_matmul(void *ctx, float *y, const float *x, int T, const tensor_t *w)
{
    cuctx *c = (cuctx *)ctx;
    if (c->failed || mm(c, y, x, T, w) != ENG_OK)
        nan_fill(y, (size_t)T * (size_t)w->shape[0]);
}

/* The device mirror of the layer cache a reads, or NULL after a failure. */
kvslot *kv_slot(cuctx *c, const bk_attention *a)
{
    for (int i = 0; i < c->n_kv; i++) {
        kvslot *k = &c->kv[i];
        if (k->hk == a->k && k->hv == a->v) {
            if (k->stride == a->kv_stride && k->nkv == a->n_kv_heads && k->hd == a->head_dim)
                return k;
            cudaFree(k->dk);   /* the host cache changed shape: start again */
            cudaFree(k->dv);
            *k = c->kv[--c->n_kv];
            break;
        }
    }
    if (c->n_kv == c->cap_kv) {
        int ncap = c->cap_kv ? 2 * c->cap_kv : 64;
        kvslot *nk = (kvslot *)eng_realloc(c->kv, (size_t)ncap * sizeof *nk);
        if (!nk) {
            if (!c->failed)
                c->failed = eng_fail(&c->err, ENG_ENOMEM, "cuda: out of host memory for the KV table");
            return NULL;
        }
        c->kv = nk;
        c->cap_kv = ncap;
    }
    kvslot *k = &c->kv[c->n_kv];
    *k = kvslot{a->k, a->v, a->kv_stride, a->n_kv_heads, a->head_dim, 0, NULL, NULL};
    size_t bytes = (size_t)a->n_kv_heads * a->kv_stride * a->head_dim * sizeof(float);
    cudaError_t e = cudaMalloc((void **)&k->dk, bytes);
    if (e == cudaSuccess)
        e = cudaMalloc((void **)&k->dv, bytes);
    if (e != cudaSuccess) {
        cudaFree(k->dk);
        fail_cuda(c, e, "allocating the KV cache");
        return NULL;
    }
    c->n_kv++;
    return k;
}

int att(cuctx *c, const bk_attention *a)
{
    int nk = a->pos0 + a->T, hd = a->head_dim, nh = a->n_heads, nkv = a->n_kv_heads, T = a->T;
    size_t nq = (size_t)T * nh * hd, np = (size_t)nh * T * nk;
    if (ensure(c, &c->d_q, &c->n_q, nq, "attention q") || ensure(c, &c->d_o, &c->n_o, nq, "attention out") ||
        ensure(c, &c->d_p, &c->n_p, np, "attention scores"))
        return ENG_EDEVICE;
    kvslot *kv = kv_slot(c, a);
    if (!kv)
        return ENG_EDEVICE;
    CK(c, cudaMemcpy(c->d_q, a->q, nq * sizeof(float), cudaMemcpyHostToDevice), "attention: copying q");
    int lo = kv->valid < a->pos0 ? kv->valid : a->pos0;   /* rows lo..nk-1 are new or not uploaded yet */
    size_t pitch = (size_t)a->kv_stride * hd * sizeof(float), width = (size_t)(nk - lo) * hd * sizeof(float);
    size_t off = (size_t)lo * hd;
    kv->valid = 0;   /* until both copies succeed */
    CK(c, cudaMemcpy2D(kv->dk + off, pitch, a->k + off, pitch, width, (size_t)nkv, cudaMemcpyHostToDevice),
       "attention: copying K");
    CK(c, cudaMemcpy2D(kv->dv + off, pitch, a->v + off, pitch, width, (size_t)nkv, cudaMemcpyHostToDevice),
       "attention: copying V");
    kv->valid = nk;
    dim3 grid((unsigned)T, (unsigned)nh);
    k_attention<<<grid, 256>>>(c->d_q, kv->dk, kv->dv, c->d_o, c->d_p, T, a->pos0, nh, nkv, hd, nk, a->kv_stride,
                               a->scale);
    CK(c, cudaGetLastError(), "attention kernel launch");
    CK(c, cudaMemcpy(a->out, c->d_o, nq * sizeof(float), cudaMemcpyDeviceToHost), "attention: copying out");
    if (a->probs) {
        int w = nk < a->probs_nk ? nk : a->probs_nk;
        for (int h = 0; h < nh; h++) {
            float *dst = a->probs + ((size_t)h * a->probs_nq + a->probs_row0) * a->probs_nk;
            CK(c, cudaMemcpy2D(dst, (size_t)a->probs_nk * sizeof(float), c->d_p + (size_t)h * T * nk,
                               (size_t)nk * sizeof(float), (size_t)w * sizeof(float), (size_t)T,
                               cudaMemcpyDeviceToHost), "attention: copying probabilities");
            if (a->probs_nk > nk)
                for (int i = 0; i < T; i++)
                    memset(dst + (size_t)i * a->probs_nk + nk, 0, (size_t)(a->probs_nk - nk) * sizeof(float));
        }
    }
    return ENG_OK;
}

void cu_attention(void *ctx, const bk_attention *a)
{
    cuctx *c = (cuctx *)ctx;
    if (c->failed || att(c, a) != ENG_OK)
        nan_fill(a->out, (size_t)a->T * a->n_heads * a->head_dim);
}

void cu_free(void *ctx)
{
    cuctx *c = (cuctx *)ctx;
    if (!c)
        return;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].host)
            cudaFree(c->slots[i].dev);
    eng_free(c->slots);
    for (int i = 0; i < c->n_kv; i++) {
        cudaFree(c->kv[i].dk);
        cudaFree(c->kv[i].dv);
    }
    eng_free(c->kv);
    float *bufs[] = {c->d_x, c->d_y, c->d_w, c->d_q, c->d_o, c->d_p};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            cudaFree(bufs[i]);
    if (c->blas)
        cublasDestroy(c->blas);
    eng_free(c);
}

int cu_new(void **out, const bk_sizes *sz, eng_err *err)
{
    (void)sz;
    *out = NULL;
    int rc = cuda_probe(err);
    if (rc != ENG_OK)
        return rc;
    cuctx *c = (cuctx *)eng_calloc(1, sizeof *c);
    if (!c)
        return eng_fail(err, ENG_ENOMEM, "cuda: out of memory for the backend context");
    cublasStatus_t st = cublasCreate(&c->blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        cu_free(c);
        return eng_fail(err, ENG_EDEVICE, "cuda: cublasCreate failed (status %d)", (int)st);
    }
    cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH);   /* pure f32: no TF32 */
    *out = c;
    return ENG_OK;
}

int cu_threads(const void *ctx)
{
    (void)ctx;
    return 1;
}

}  // namespace

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

extern "C" const backend_ops backend_cuda = {"cuda", cu_new, cu_free, cu_threads, cu_matvec, cu_matmul, cu_attention};
