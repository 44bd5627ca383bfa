/* kernels.cuh - the CUDA kernels of the backend (included by cuda.cu only).
 *
 * Decode (one token) is bandwidth-bound: every weight byte is read once per
 * token, so the matrix-vector kernel streams 16-byte loads, several in
 * flight per lane, with the input vector (RMS-normed on the way in) held in
 * shared memory and the bias, residual add or SwiGLU done on the way out.
 * Attention for one query splits the context across blocks; the last block
 * of a KV head to finish combines the partial softmaxes (no extra launch).
 *
 * Prefill (many tokens) runs its products through cuBLAS; the kernels here
 * do the elementwise steps and a tiled online-softmax (flash) attention.
 * Activations, norms, softmax and the KV cache are f32 throughout, as on
 * the CPU. */
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_pipeline.h>
#include <math.h>
#include <stdint.h>

namespace kern {

constexpr int MV_THREADS = 256;            /* 8 warps */
constexpr int MV_WARPS = MV_THREADS / 32;

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* A barrier of the block (NT = 0: __syncthreads) or of its first NT
 * threads only (named barrier 1: for blocks with a warp that never joins,
 * like a producer warp). */
template <int NT = 0>
__device__ __forceinline__ void group_sync()
{
    if constexpr (NT == 0)
        __syncthreads();
    else
        asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
}

/* Sum over the block, or over its first NT threads (every one of them gets
 * it); red holds one float per warp. */
template <int NT = 0>
__device__ float block_sum(float v, float *red)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = NT ? NT / 32 : (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    group_sync<NT>();   /* red may still be read from a previous call */
    if (lane == 0)
        red[wid] = v;
    group_sync<NT>();
    float r = 0.f;
    for (int i = 0; i < nw; i++)
        r += red[i];
    return r;
}

/* ---- overlap between kernels of one decode step ----
 * Every decode kernel is launched with programmatic dependent launch: it may
 * start while the kernel before it is still running, asks the L2 to fetch
 * the weights it is about to read (they do not depend on the previous
 * kernel), and only then waits for the previous kernel's results. Without
 * the launch attribute the wait returns at once. */
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_launch_next() { asm volatile("griddepcontrol.launch_dependents;" :::); }

/* The global timer (ns) and the decode timeline (ATTNSCOPE_CUDA_TIMELINE):
 * thread 0 of each block stamps its start, the end of its wait for the
 * previous kernel and its end into tl[block * TL_FIELDS + 0|1|2], and with
 * its start the multiprocessor it runs on (+ 3); tl NULL: off. */
__device__ __forceinline__ unsigned long long gtimer()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
enum { TL_START = 0, TL_WAITED = 1, TL_END = 2, TL_SM = 3, TL_FIELDS = 4 };
__device__ __forceinline__ void tl_mark(unsigned long long *tl, int what)
{
    if (tl && threadIdx.x == 0) {
        unsigned long long *b = tl + (size_t)(blockIdx.y * gridDim.x + blockIdx.x) * TL_FIELDS;
        b[what] = gtimer();
        if (what == TL_START) {
            unsigned sm;
            asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
            b[TL_SM] = sm;
        }
    }
}

/* ---- the next kernel's weights, fetched into L2 ahead of it ----
 * A decode kernel asks the L2 for (the start of) the weights the kernel
 * after it will read: they do not depend on any result, so the memory keeps
 * streaming through the launch, wait and prologue of the next kernel, which
 * then reads them from L2. Each block fetches its share of the ranges (one
 * thread, bulk prefetches of up to 64 KiB). Only a hint: bytes are rounded
 * down to 16 and nothing is read past a range. */
struct l2_pf {
    const char *p[3];
    unsigned long long bytes[3];   /* multiples of 16 */
    int n;
};

__device__ __forceinline__ void prefetch_l2(const void *p, uint32_t bytes)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
#else
    (void)p;
    (void)bytes;
#endif
}

__device__ void issue_l2_pf(const l2_pf &pf)
{
    if (threadIdx.x != 0 || pf.n == 0)
        return;
    unsigned long long total = 0;
    for (int i = 0; i < pf.n; i++)
        total += pf.bytes[i];
    unsigned long long share = (total / gridDim.x + 15) & ~15ull;
    unsigned long long lo = share * blockIdx.x, hi = lo + share, base = 0;
    for (int i = 0; i < pf.n && lo < hi; i++) {
        unsigned long long e = base + pf.bytes[i];
        while (lo < hi && lo < e) {
            unsigned long long end = hi < e ? hi : e, len = end - lo;
            if (len > 65536)
                len = 65536;
            prefetch_l2(pf.p[i] + (lo - base), (uint32_t)len);
            lo += len;
        }
        base = e;
    }
}

/* ---- element types: f32, bf16 and f16 weights, read 16 bytes at a time ---- */

struct f32w { float v; };
struct bf16w { uint16_t v; };
struct f16w { uint16_t v; };

__device__ __forceinline__ float to_f32(f32w a) { return a.v; }
__device__ __forceinline__ float to_f32(bf16w a) { return __uint_as_float((uint32_t)a.v << 16); }
__device__ __forceinline__ float to_f32(f16w a) { return __half2float(__ushort_as_half(a.v)); }

/* f32 -> the element type (round to nearest even), for GEMM inputs. */
template <typename T> __device__ __forceinline__ T from_f32(float x);
template <> __device__ __forceinline__ f32w from_f32<f32w>(float x) { return f32w{x}; }
template <> __device__ __forceinline__ bf16w from_f32<bf16w>(float x)
{
    return bf16w{__bfloat16_as_ushort(__float2bfloat16_rn(x))};
}
template <> __device__ __forceinline__ f16w from_f32<f16w>(float x) { return f16w{__half_as_ushort(__float2half_rn(x))}; }

/* dot of one 16-byte pack of weights with the matching floats of x (shared). */
__device__ __forceinline__ float dot16(uint4 p, const float *x, f32w)
{
    float4 a = *reinterpret_cast<const float4 *>(x);
    return __uint_as_float(p.x) * a.x + __uint_as_float(p.y) * a.y + __uint_as_float(p.z) * a.z +
           __uint_as_float(p.w) * a.w;
}

__device__ __forceinline__ float dot16(uint4 p, const float *x, bf16w)
{
    float4 a = *reinterpret_cast<const float4 *>(x), b = *reinterpret_cast<const float4 *>(x + 4);
    uint32_t w[4] = {p.x, p.y, p.z, p.w};
    float s = 0.f;
    s += __uint_as_float(w[0] << 16) * a.x + __uint_as_float(w[0] & 0xffff0000u) * a.y;
    s += __uint_as_float(w[1] << 16) * a.z + __uint_as_float(w[1] & 0xffff0000u) * a.w;
    s += __uint_as_float(w[2] << 16) * b.x + __uint_as_float(w[2] & 0xffff0000u) * b.y;
    s += __uint_as_float(w[3] << 16) * b.z + __uint_as_float(w[3] & 0xffff0000u) * b.w;
    return s;
}

__device__ __forceinline__ float dot16(uint4 p, const float *x, f16w)
{
    float4 a = *reinterpret_cast<const float4 *>(x), b = *reinterpret_cast<const float4 *>(x + 4);
    uint32_t w[4] = {p.x, p.y, p.z, p.w};
    float2 f0 = __half22float2(*reinterpret_cast<__half2 *>(&w[0]));
    float2 f1 = __half22float2(*reinterpret_cast<__half2 *>(&w[1]));
    float2 f2 = __half22float2(*reinterpret_cast<__half2 *>(&w[2]));
    float2 f3 = __half22float2(*reinterpret_cast<__half2 *>(&w[3]));
    return f0.x * a.x + f0.y * a.y + f1.x * a.z + f1.y * a.w + f2.x * b.x + f2.y * b.y + f3.x * b.z + f3.y * b.w;
}

/* Weights are read once per token: stream them past the caches. */
__device__ __forceinline__ uint4 ld_stream(const uint4 *p) { return __ldcs(p); }

/* ---- matrix-vector: y = W x for up to three matrices sharing x ---- */

enum { MV_STORE = 0, MV_ADD = 1, MV_SWIGLU = 2 };

struct mv_seg {
    const void *w;        /* (rows, cols) in the element type */
    const float *bias;    /* (rows) or NULL */
    float *y;             /* (rows) */
    int rows;
};

struct mv_args {
    const float *x;       /* (cols) */
    const float *norm;    /* RMSNorm weight applied to x first, or NULL */
    float eps;
    int cols;
    mv_seg seg[3];        /* rows concatenated; MV_SWIGLU: seg 0 gate, 1 up, same rows */
    int n_seg;
    int rows;             /* all segments' rows (MV_SWIGLU: one segment's) */
    int wpr;              /* warps per row: 1, 2, 4 or 8 */
    int mode;             /* MV_STORE: y = Wx + b; MV_ADD: y += Wx; MV_SWIGLU: y0 = silu(G x) * (U x) */
    int pre;              /* 16-byte packs per lane and row loaded before the wait (at most 8 / NR) */
    float *y2;            /* MV_ADD: the new y also stored here (the fused MLP's input), or NULL */
    unsigned long long *tl;   /* timeline stamps, or NULL */
    l2_pf pf;             /* the next kernel's weights, into L2 */
};

/* Copies x into shared memory, RMS-normed when a.norm is set:
 * xs = norm * (x / sqrt(mean(x^2) + eps)), as the CPU computes it. One pass
 * over x in global memory; the scaling runs in shared memory. Run by the
 * whole block, or (NT) by its first NT threads only. L2: x read past L1
 * (other blocks of this kernel wrote it). */
template <int NT = 0, bool L2 = false>
__device__ void load_x(float *xs, const float *x, const float *norm, float eps, int n, float *red)
{
    unsigned nt = NT ? NT : blockDim.x;
    float ss = 0.f;
    if (n % 4 == 0) {   /* 16-byte loads, all issued before the first use */
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        float4 *xs4 = reinterpret_cast<float4 *>(xs);
#pragma unroll 8
        for (int i = threadIdx.x; i < n / 4; i += nt) {
            float4 v = L2 ? __ldcg(x4 + i) : x4[i];
            xs4[i] = v;
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int i = threadIdx.x; i < n; i += nt) {
            float v = L2 ? __ldcg(x + i) : x[i];
            xs[i] = v;
            ss += v * v;
        }
    }
    if (norm) {
        ss = block_sum<NT>(ss, red) / (float)n;   /* its barriers also order the xs writes */
        float r = 1.0f / sqrtf(ss + eps);
        for (int i = threadIdx.x; i < n; i += nt)
            xs[i] = norm[i] * (xs[i] * r);
    }
    group_sync<NT>();
}

/* Row r of segment s, moved on to the segment that holds it (rows of a
 * multi-segment launch are the segments' rows one after another). */
__device__ __forceinline__ void seg_locate(const mv_seg *seg, int n_seg, int &s, int &r)
{
    while (s + 1 < n_seg && r >= seg[s].rows) {
        r -= seg[s].rows;
        s++;
    }
}
__device__ __forceinline__ void seg_locate(const mv_args &a, int &s, int &r) { seg_locate(a.seg, a.n_seg, s, r); }

/* The NR weight rows of global row `row` (MV_SWIGLU: gate and up), and the
 * segment s and row r within it where the result goes. */
template <typename T, int NR>
__device__ __forceinline__ void row_ptrs(const mv_args &a, int row, const uint4 *w[NR], int &s, int &r)
{
    s = 0;
    r = row;
    if constexpr (NR == 2) {
        w[0] = reinterpret_cast<const uint4 *>((const T *)a.seg[0].w + (size_t)row * a.cols);
        w[NR - 1] = reinterpret_cast<const uint4 *>((const T *)a.seg[1].w + (size_t)row * a.cols);
    } else {
        seg_locate(a, s, r);
        w[0] = reinterpret_cast<const uint4 *>((const T *)a.seg[s].w + (size_t)r * a.cols);
    }
}

/* y = W x, one or more warps per row (a.wpr), rows spread over a grid that
 * leaves room on each multiprocessor for the next kernel. Each lane loads
 * U = 8 / NR 16-byte packs of each of its NR rows at a time; the first
 * batch is loaded before waiting for the previous kernel, whose output x is
 * not needed until the products. Rows whose bytes are not a multiple of 16
 * (tiny test models) take a scalar path after the wait. */
template <typename T, int NR>
__global__ void __launch_bounds__(MV_THREADS, 4) k_matvec(mv_args a)
{
    constexpr int V = 16 / (int)sizeof(T), U = 8 / NR;
    extern __shared__ float xs[];   /* (cols) */
    __shared__ float red[MV_WARPS][2];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int rpb = MV_WARPS / a.wpr, sub = warp % a.wpr;
    int first = sub * 32 + lane, step = 32 * a.wpr;
    int n_blocks = (a.rows + rpb - 1) / rpb;
    bool vec = a.cols % V == 0;
    int nv = a.cols / V;

    tl_mark(a.tl, TL_START);
    issue_l2_pf(a.pf);
    uint4 pre[NR][U];
    int pre_row = blockIdx.x * rpb + warp / a.wpr;
    if (vec && blockIdx.x < n_blocks && pre_row < a.rows) {
        const uint4 *w[NR];
        int s, r;
        row_ptrs<T, NR>(a, pre_row, w, s, r);
#pragma unroll
        for (int u = 0; u < U; u++)
#pragma unroll
            for (int i = 0; i < NR; i++)
                if (u < a.pre && first + u * step < nv)
                    pre[i][u] = ld_stream(w[i] + first + u * step);
    }
    pdl_wait();
    tl_mark(a.tl, TL_WAITED);
    pdl_launch_next();
    load_x(xs, a.x, a.norm, a.eps, a.cols, &red[0][0]);

    /* One row block: the first one with the batch already in registers. */
    auto row_block = [&](int b, bool have_pre) {
        int row = b * rpb + warp / a.wpr;
        bool live = row < a.rows;
        float acc[2] = {0.f, 0.f};
        int s = 0, r = row;
        if (live) {
            const uint4 *w[NR];
            row_ptrs<T, NR>(a, row, w, s, r);
            if (vec) {
                int k = first;
                if (have_pre) {
                    int np = a.pre < U ? a.pre : U;
#pragma unroll
                    for (int u = 0; u < U; u++)
#pragma unroll
                        for (int i = 0; i < NR; i++)
                            if (u < np && k + u * step < nv)
                                acc[i] += dot16(pre[i][u], xs + (size_t)(k + u * step) * V, T{});
                    k += np * step;
                }
                for (; k + (U - 1) * step < nv; k += U * step) {
                    uint4 p[NR][U];
#pragma unroll
                    for (int u = 0; u < U; u++)
#pragma unroll
                        for (int i = 0; i < NR; i++)
                            p[i][u] = ld_stream(w[i] + k + u * step);
#pragma unroll
                    for (int u = 0; u < U; u++)
#pragma unroll
                        for (int i = 0; i < NR; i++)
                            acc[i] += dot16(p[i][u], xs + (size_t)(k + u * step) * V, T{});
                }
                for (; k < nv; k += step)
#pragma unroll
                    for (int i = 0; i < NR; i++)
                        acc[i] += dot16(ld_stream(w[i] + k), xs + (size_t)k * V, T{});
            } else {
                const T *wr[NR];
#pragma unroll
                for (int i = 0; i < NR; i++)
                    wr[i] = reinterpret_cast<const T *>(w[i]);
                for (int c = first; c < a.cols; c += step)
#pragma unroll
                    for (int i = 0; i < NR; i++)
                        acc[i] += to_f32(wr[i][c]) * xs[c];
            }
        }
        acc[0] = warp_sum(acc[0]);
        acc[1] = warp_sum(acc[1]);
        if (a.wpr > 1) {
            if (lane == 0) {
                red[warp][0] = acc[0];
                red[warp][1] = acc[1];
            }
            __syncthreads();
            if (sub == 0 && lane == 0)
                for (int i = 1; i < a.wpr; i++) {
                    acc[0] += red[warp + i][0];
                    acc[1] += red[warp + i][1];
                }
            __syncthreads();
        }
        if (!live || sub != 0 || lane != 0)
            return;
        if (a.mode == MV_SWIGLU) {
            float g = acc[0];
            a.seg[0].y[row] = g / (1.0f + expf(-g)) * acc[1];
        } else if (a.mode == MV_ADD) {
            float v = a.seg[s].y[r] + acc[0];
            a.seg[s].y[r] = v;
            if (a.y2)
                a.y2[r] = v;
        } else {
            a.seg[s].y[r] = acc[0] + (a.seg[s].bias ? a.seg[s].bias[r] : 0.f);
        }
    };
    if ((int)blockIdx.x < n_blocks)   /* uniform across the block */
        row_block(blockIdx.x, true);
    for (int b = blockIdx.x + gridDim.x; b < n_blocks; b += gridDim.x)
        row_block(b, false);
    if (a.tl) {
        __syncthreads();
        tl_mark(a.tl, TL_END);
    }
}

/* ---- the MLP in one kernel: gate/up, SwiGLU and down, split over the hidden rows ----
 *
 * Block b owns hidden rows [r0, r1) (the rows spread evenly over the grid):
 * it computes g and u for them (x RMS-normed on the way in), h = silu(g) * u
 * in shared memory, and then its share of the down projection,
 * W_down[:, r0:r1] h[r0:r1], which it adds into y with vector reductions
 * (red.global.add.v4.f32). The down weights are stored transposed, (hidden,
 * dim), so each block reads three contiguous spans: its gate rows, its up
 * rows and its down rows. No product waits for another block, so the weight
 * stream does not drain between gate/up and down as it does at a kernel
 * boundary; the price is that the f32 additions into y arrive in an order
 * that varies from run to run (last-bit differences, as with split-K GEMMs).
 *
 * y must not be x: blocks add into y while others may still be reading x.
 * Gate/up: the block's rows x 32-pack chunks are "units", spread evenly
 * over its warps; a warp sums its partial dot products per row and adds
 * them into shared memory. Down: thread t owns 16-byte pack t % nv of each
 * down row (nv packs a row), and the NT / nv groups of threads take every
 * group-th row; the groups' sums meet in shared memory before the
 * reduction into y.
 *
 * Opt-in (a.n_seg, ATTNSCOPE_CUDA_MLP_QKV=1): after a grid barrier the
 * block also computes its share of the next layer's q/k/v, whose rows it
 * copied to shared memory from the kernel's start; measured slower (the
 * barrier and the work after it cost more than the boundary they save). */
constexpr int MLP_MAX_ROWS = 128;   /* hidden rows per block at most */

struct mlp_args {
    const float *x;       /* (dim) the residual, RMS-normed on the way in */
    const float *norm;    /* RMSNorm weight */
    float eps;
    const void *wg, *wu;  /* (hidden, dim) */
    const void *wdt;      /* (hidden, dim): down_proj transposed */
    float *y;             /* (dim): += W_down h */
    int dim, hidden;
    unsigned long long *tl;   /* timeline stamps, or NULL */
    /* the next layer's q/k/v product, fused after a grid barrier (n_seg 0: none) */
    const float *qnorm;   /* its RMSNorm weight */
    mv_seg seg[3];        /* q, k, v: rows concatenated, outputs + bias stored */
    int n_seg, qrows;     /* segments, all their rows */
    unsigned long long *bar;   /* grid barrier counter (only ever grows) */
    int red_mode;         /* timing only (ATTNSCOPE_CUDA_MLP_RED): 1 store instead of adding, 2 neither (wrong y) */
};

/* The block's share [q0, q1) of the fused q/k/v rows. */
__device__ __forceinline__ void qkv_span(const mlp_args &a, int &q0, int &q1)
{
    q0 = (int)((long)a.qrows * blockIdx.x / gridDim.x);
    q1 = (int)((long)a.qrows * (blockIdx.x + 1) / gridDim.x);
}

/* A wait that gives up: about 2 s at the H200's clock (a broken invariant
 * traps instead of hanging the GPU). */
__device__ __forceinline__ void check_time(long long t0)
{
    if (clock64() - t0 > (1ll << 32))
        __trap();
}

/* Spins until a grid barrier's counter reaches target (an acquire load:
 * what the blocks wrote before adding to it is visible after); traps after
 * about 2 s (check_time). U: a 32- or 64-bit counter. */
template <typename U>
__device__ __forceinline__ void wait_at_least(const U *bar, U target)
{
    long long t0 = clock64();
    for (;;) {
        U seen;
        if constexpr (sizeof(U) == 8)
            asm volatile("ld.acquire.gpu.global.u64 %0, [%1];" : "=l"(seen) : "l"(bar) : "memory");
        else
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(bar) : "memory");
        if (seen >= target)
            return;
        check_time(t0);
    }
}

/* Every block of the grid has got here, and what each wrote before is
 * visible (all blocks resident: the host checks the occupancy). The counter
 * only grows: this barrier's target is the next multiple of the grid. */
__device__ void grid_sync(unsigned long long *bar)
{
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        unsigned long long old = atomicAdd(bar, 1ull);
        wait_at_least(bar, (old / gridDim.x + 1) * gridDim.x);
    }
    __syncthreads();
}

/* acc[0..V) += h * the V weights of one 16-byte pack. */
__device__ __forceinline__ void axpy16(float *acc, float h, uint4 p, f32w)
{
    acc[0] += h * __uint_as_float(p.x);
    acc[1] += h * __uint_as_float(p.y);
    acc[2] += h * __uint_as_float(p.z);
    acc[3] += h * __uint_as_float(p.w);
}

__device__ __forceinline__ void axpy16(float *acc, float h, uint4 p, bf16w)
{
    uint32_t w[4] = {p.x, p.y, p.z, p.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        acc[2 * i] += h * __uint_as_float(w[i] << 16);
        acc[2 * i + 1] += h * __uint_as_float(w[i] & 0xffff0000u);
    }
}

__device__ __forceinline__ void axpy16(float *acc, float h, uint4 p, f16w)
{
    uint32_t w[4] = {p.x, p.y, p.z, p.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __half22float2(*reinterpret_cast<__half2 *>(&w[i]));
        acc[2 * i] += h * f.x;
        acc[2 * i + 1] += h * f.y;
    }
}

/* *p += v, four floats at once, in the L2 (no value comes back). */
__device__ __forceinline__ void red_add4(float *p, float4 v)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};" ::"l"(p), "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w)
                 : "memory");
#else
    atomicAdd(p, v.x);
    atomicAdd(p + 1, v.y);
    atomicAdd(p + 2, v.z);
    atomicAdd(p + 3, v.w);
#endif
}

template <typename T, int NT>
__global__ void __launch_bounds__(NT, 1024 / NT) k_mlp(mlp_args a)
{
    constexpr int V = 16 / (int)sizeof(T), NW = NT / 32, UB = 4, DB = 8;
    extern __shared__ float sm[];
    __shared__ float red[NW];
    int nv = a.dim / V, groups = NT / nv;
    float *xs = sm, *gs = xs + a.dim, *us = gs + MLP_MAX_ROWS, *buf = us + MLP_MAX_ROWS;   /* buf: (groups, dim) */
    uint4 *ws = reinterpret_cast<uint4 *>(buf + (size_t)groups * a.dim);   /* the q/k/v rows [q0, q1) */
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int r0 = (int)((long)a.hidden * blockIdx.x / gridDim.x), r1 = (int)((long)a.hidden * (blockIdx.x + 1) / gridDim.x);
    int S = r1 - r0, nch = (nv + 31) / 32, nu = S * nch;
    int u0 = (int)((long)nu * warp / NW), u1 = (int)((long)nu * (warp + 1) / NW);
    const uint4 *G = reinterpret_cast<const uint4 *>((const T *)a.wg + (size_t)r0 * a.dim);
    const uint4 *U = reinterpret_cast<const uint4 *>((const T *)a.wu + (size_t)r0 * a.dim);

    uint4 pg[UB], pu[UB];
    auto load_units = [&](int u) {
#pragma unroll
        for (int i = 0; i < UB; i++) {
            int j = (u + i) / nch, k = (u + i) % nch * 32 + lane;
            if (u + i < u1 && k < nv) {
                pg[i] = ld_stream(G + (size_t)j * nv + k);
                pu[i] = ld_stream(U + (size_t)j * nv + k);
            }
        }
    };
    tl_mark(a.tl, TL_START);
    load_units(u0);   /* the weights do not wait for the previous kernel */
    int q0 = 0, q1 = 0;
    if (a.n_seg) {   /* nor do the next q/k/v's: all of the block's rows, into shared memory */
        qkv_span(a, q0, q1);
        for (int i = threadIdx.x; i < (q1 - q0) * nv; i += NT) {
            int s = 0, r = q0 + i / nv;
            seg_locate(a.seg, a.n_seg, s, r);
            __pipeline_memcpy_async(ws + i, reinterpret_cast<const uint4 *>((const T *)a.seg[s].w + (size_t)r * a.dim) + i % nv,
                                    16);
        }
        __pipeline_commit();
    }
    for (int i = threadIdx.x; i < 2 * MLP_MAX_ROWS; i += NT)
        gs[i] = 0.f;   /* gs and us */
    pdl_wait();
    tl_mark(a.tl, TL_WAITED);
    pdl_launch_next();
    load_x(xs, a.x, a.norm, a.eps, a.dim, red);   /* its barriers order the zeroing too */

    float ag = 0.f, au = 0.f;
    int cur = -1;   /* the row being summed (warp-uniform) */
    auto flush = [&]() {
        ag = warp_sum(ag);
        au = warp_sum(au);
        if (lane == 0) {
            atomicAdd(&gs[cur], ag);
            atomicAdd(&us[cur], au);
        }
        ag = au = 0.f;
    };
    for (int u = u0; u < u1; u += UB) {
        if (u != u0)
            load_units(u);
#pragma unroll
        for (int i = 0; i < UB; i++) {
            if (u + i >= u1)
                break;
            int j = (u + i) / nch, k = (u + i) % nch * 32 + lane;
            if (j != cur) {
                if (cur >= 0)
                    flush();
                cur = j;
            }
            if (k < nv) {
                ag += dot16(pg[i], xs + (size_t)k * V, T{});
                au += dot16(pu[i], xs + (size_t)k * V, T{});
            }
        }
    }
    if (cur >= 0)
        flush();

    /* down: this thread's pack k of rows q, q + groups, ... */
    int k = threadIdx.x % nv, q = threadIdx.x / nv;
    int mine = q < groups && q < S ? (S - q + groups - 1) / groups : 0;
    const uint4 *D = reinterpret_cast<const uint4 *>((const T *)a.wdt + (size_t)r0 * a.dim) + k;
    uint4 pd[DB];
    auto load_down = [&](int b) {
#pragma unroll
        for (int i = 0; i < DB; i++)
            if (b + i < mine)
                pd[i] = ld_stream(D + (size_t)(q + (b + i) * groups) * nv);
    };
    load_down(0);   /* before the products of gate/up are complete */
    __syncthreads();
    for (int j = threadIdx.x; j < S; j += NT) {
        float g = gs[j];
        gs[j] = g / (1.0f + expf(-g)) * us[j];   /* h */
    }
    __syncthreads();
    float acc[V];
#pragma unroll
    for (int v = 0; v < V; v++)
        acc[v] = 0.f;
    for (int b = 0; b < mine; b += DB) {
        if (b)
            load_down(b);
#pragma unroll
        for (int i = 0; i < DB; i++)
            if (b + i < mine)
                axpy16(acc, gs[q + (b + i) * groups], pd[i], T{});
    }
    if (q < groups) {
        float4 *o = reinterpret_cast<float4 *>(buf + (size_t)q * a.dim + (size_t)k * V);
#pragma unroll
        for (int v = 0; v < V / 4; v++)
            o[v] = make_float4(acc[4 * v], acc[4 * v + 1], acc[4 * v + 2], acc[4 * v + 3]);
    }
    __syncthreads();
    const float4 *b4 = reinterpret_cast<const float4 *>(buf);
    int n4 = a.dim / 4, used = groups < S ? groups : S;
    for (int i = threadIdx.x; i < n4; i += NT) {
        float4 s = b4[i];
        for (int g = 1; g < used; g++) {
            float4 t = b4[(size_t)g * n4 + i];
            s.x += t.x;
            s.y += t.y;
            s.z += t.z;
            s.w += t.w;
        }
        if (a.red_mode == 0)
            red_add4(a.y + 4 * i, s);
        else if (a.red_mode == 1)
            *reinterpret_cast<float4 *>(a.y + 4 * i) = s;
    }
    if (a.n_seg) {   /* the next layer's q/k/v once every block's down products are in y */
        grid_sync(a.bar);
        __pipeline_wait_prior(0);
        load_x<0, true>(xs, a.y, a.qnorm, a.eps, a.dim, red);   /* ends with __syncthreads: ws complete too */
        for (int row = q0 + warp; row < q1; row += NW) {
            const uint4 *w = ws + (size_t)(row - q0) * nv;
            float acc = 0.f;
            for (int k = lane; k < nv; k += 32)
                acc += dot16(w[k], xs + (size_t)k * V, T{});
            acc = warp_sum(acc);
            int s = 0, r = row;
            seg_locate(a.seg, a.n_seg, s, r);
            if (lane == 0)
                a.seg[s].y[r] = acc + (a.seg[s].bias ? a.seg[s].bias[r] : 0.f);
        }
    }
    if (a.tl) {
        __syncthreads();
        tl_mark(a.tl, TL_END);
    }
}

/* dst (cols, rows) = src (rows, cols) transposed, elements of type E
 * (32 x 32 tiles through shared memory; blocks of 32 x 8 threads). */
template <typename E>
__global__ void k_transpose(E *dst, const E *src, int rows, int cols)
{
    __shared__ E tile[32][33];
    int c0 = blockIdx.x * 32, r0 = blockIdx.y * 32;
    for (int i = threadIdx.y; i < 32; i += 8) {
        int r = r0 + i, c = c0 + threadIdx.x;
        if (r < rows && c < cols)
            tile[i][threadIdx.x] = src[(size_t)r * cols + c];
    }
    __syncthreads();
    for (int i = threadIdx.y; i < 32; i += 8) {
        int c = c0 + i, r = r0 + threadIdx.x;
        if (r < rows && c < cols)
            dst[(size_t)c * rows + r] = tile[threadIdx.x][i];
    }
}

/* ---- matrix-vector, streamed: the copy engine fills a shared-memory ring ----
 *
 * The same products as k_matvec, but the weights reach shared memory through
 * bulk copies (cp.async.bulk, completing on an mbarrier per stage) instead of
 * through registers. Each block owns a contiguous run of rows (of units: one
 * row, or a gate row and an up row), i.e. one contiguous span of each
 * matrix, and streams it in chunks of whole units through a ring of
 * p.ns stages. The ring is filled before griddepcontrol.wait (the weights do
 * not depend on the previous kernel) and the kernel lets the next one launch
 * at once, so while one kernel finishes, the next has its first p.ns chunks
 * on the way: the weight stream does not stop at kernel boundaries. Few
 * registers and at most half a multiprocessor's shared memory per block, so
 * two kernels' blocks fit side by side. Opt-in (ATTNSCOPE_CUDA_MV=mvs): on
 * the H200 it streamed at about half k_matvec's rate (docs/performance.md). */

constexpr int MVS_THREADS = 256;
constexpr int MVS_WARPS = MVS_THREADS / 32;
constexpr int MVS_MAX_STAGES = 8;
constexpr int MVS_MAX_RPC = 32;

struct mvs_plan {
    int rpc;            /* units per chunk */
    int ns;             /* ring stages */
    int unit_bytes;     /* bytes of one unit: NR rows */
    int row_bytes;
    int dry;            /* tuning only: wait for the chunks but skip the products */
};

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void mbar_init(uint64_t *b, unsigned count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(b)), "r"(count) : "memory");
}

__device__ __forceinline__ void mbar_expect_tx(uint64_t *b, unsigned bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(b)), "r"(bytes) : "memory");
}

__device__ __forceinline__ bool mbar_try_wait(uint64_t *b, unsigned parity)
{
    uint32_t ok;
    asm volatile("{\n\t.reg .pred p;\n\t"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
                 "selp.u32 %0, 1, 0, p;\n\t}"
                 : "=r"(ok) : "r"(smem_addr(b)), "r"(parity) : "memory");
    return ok != 0;
}

__device__ __forceinline__ void bulk_load(void *dst, const void *src, unsigned bytes, uint64_t *b)
{
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(smem_addr(dst)), "l"(src), "r"(bytes), "r"(smem_addr(b)) : "memory");
}

/* Thread 0: starts chunk c (units u..u+n of this block) into stage st. Units
 * of a multi-segment launch may cross from one matrix into the next. */
template <int NR>
__device__ void mvs_issue(const mv_args &a, const mvs_plan &p, unsigned char *stage, uint64_t *bar, int u, int n)
{
    mbar_expect_tx(bar, (unsigned)(n * p.unit_bytes));
    if constexpr (NR == 2) {
        bulk_load(stage, (const unsigned char *)a.seg[0].w + (size_t)u * p.row_bytes, (unsigned)(n * p.row_bytes), bar);
        bulk_load(stage + (size_t)p.rpc * p.row_bytes, (const unsigned char *)a.seg[1].w + (size_t)u * p.row_bytes,
                  (unsigned)(n * p.row_bytes), bar);
    } else {
        int s = 0, r = u, off = 0;
        while (n > 0) {
            seg_locate(a, s, r);
            int k = min(n, a.seg[s].rows - r);
            bulk_load(stage + (size_t)off * p.row_bytes, (const unsigned char *)a.seg[s].w + (size_t)r * p.row_bytes,
                      (unsigned)(k * p.row_bytes), bar);
            n -= k;
            off += k;
            r += k;
        }
    }
}

template <typename T, int NR>
__global__ void __launch_bounds__(MVS_THREADS) k_mvs(mv_args a, mvs_plan p)
{
    constexpr int V = 16 / (int)sizeof(T);
    extern __shared__ __align__(128) unsigned char mvs_sm[];
    __shared__ __align__(8) uint64_t full[MVS_MAX_STAGES];
    __shared__ float red[MVS_WARPS];
    __shared__ float part[2][(MVS_MAX_RPC > MVS_WARPS ? MVS_MAX_RPC : MVS_WARPS)][NR];
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    size_t chunk_bytes = (size_t)p.rpc * p.unit_bytes;
    float *xs = reinterpret_cast<float *>(mvs_sm + (size_t)p.ns * chunk_bytes);

    /* this block's units [u0, u1), in chunks of p.rpc */
    int u0 = (int)((long)a.rows * blockIdx.x / gridDim.x), u1 = (int)((long)a.rows * (blockIdx.x + 1) / gridDim.x);
    int n_chunks = (u1 - u0 + p.rpc - 1) / p.rpc;

    issue_l2_pf(a.pf);
    pdl_launch_next();
    if (threadIdx.x == 0) {
        for (int i = 0; i < p.ns; i++)
            mbar_init(&full[i], 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        for (int c = 0; c < p.ns && c < n_chunks; c++)
            mvs_issue<NR>(a, p, mvs_sm + c * chunk_bytes, &full[c], u0 + c * p.rpc, min(p.rpc, u1 - u0 - c * p.rpc));
    }
    pdl_wait();
    load_x(xs, a.x, a.norm, a.eps, a.cols, red);   /* ends with __syncthreads: the barriers are initialised */

    int nv = p.row_bytes / 16;
    for (int c = 0; c < n_chunks; c++) {
        int st = c % p.ns, n = min(p.rpc, u1 - u0 - c * p.rpc);
        const unsigned char *stage = mvs_sm + st * chunk_bytes;
        unsigned parity = (unsigned)(c / p.ns) & 1u;
        while (!mbar_try_wait(&full[st], parity)) {
        }
        /* work items: each unit in P parts, so that every warp has one */
        int P = n >= MVS_WARPS ? 1 : MVS_WARPS / n, items = n * P;
        float (*pt)[NR] = part[c & 1];
        for (int it = warp; it < (p.dry ? 0 : items); it += MVS_WARPS) {
            int un = it / P, pi = it % P;
            int lo = (int)((long)nv * pi / P), hi = (int)((long)nv * (pi + 1) / P);
            float acc[NR];
#pragma unroll
            for (int i = 0; i < NR; i++)
                acc[i] = 0.f;
            const uint4 *w0 = reinterpret_cast<const uint4 *>(stage + (size_t)un * p.row_bytes);
            const uint4 *w1 = reinterpret_cast<const uint4 *>(stage + ((size_t)p.rpc + un) * p.row_bytes);
#pragma unroll 4
            for (int k = lo + lane; k < hi; k += 32) {
                const float *xk = xs + (size_t)k * V;
                acc[0] += dot16(w0[k], xk, T{});
                if constexpr (NR == 2)
                    acc[1] += dot16(w1[k], xk, T{});
            }
#pragma unroll
            for (int i = 0; i < NR; i++)
                acc[i] = warp_sum(acc[i]);
            if (lane == 0)
#pragma unroll
                for (int i = 0; i < NR; i++)
                    pt[it][i] = acc[i];
        }
        __syncthreads();   /* the stage is read: refill it; the parts are written */
        if (threadIdx.x == 0 && c + p.ns < n_chunks) {
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            mvs_issue<NR>(a, p, mvs_sm + st * chunk_bytes, &full[st], u0 + (c + p.ns) * p.rpc,
                          min(p.rpc, u1 - u0 - (c + p.ns) * p.rpc));
        }
        if ((int)threadIdx.x < n && !p.dry) {
            int un = threadIdx.x, row = u0 + c * p.rpc + un;
            float r0 = 0.f, r1 = 0.f;
            for (int i = 0; i < P; i++) {
                r0 += pt[un * P + i][0];
                if constexpr (NR == 2)
                    r1 += pt[un * P + i][NR - 1];
            }
            if (a.mode == MV_SWIGLU) {
                a.seg[0].y[row] = r0 / (1.0f + expf(-r0)) * r1;
            } else {
                int s = 0, r = row;
                seg_locate(a, s, r);
                if (a.mode == MV_ADD)
                    a.seg[s].y[r] += r0;
                else
                    a.seg[s].y[r] = r0 + (a.seg[s].bias ? a.seg[s].bias[r] : 0.f);
            }
        }
    }
}

/* ---- per-head steps: qwen3's q/k RMSNorm, then RoPE (rotate_half) ---- */

/* The rotation table of position pos into cs: cos then sin of (float)pos *
 * inv_freq[i] for i < half (angles in f32 like transformers; cos and sin in
 * double, rounded, like the CPU), by threads tid, tid + nt, ... */
__device__ __forceinline__ void rope_table(float *cs, const float *inv_freq, int pos, int half, int tid, int nt)
{
    for (int i = tid; i < half; i += nt) {
        float ang = (float)pos * inv_freq[i];
        cs[i] = (float)cos((double)ang);
        cs[half + i] = (float)sin((double)ang);
    }
}

/* One warp: v (head_dim floats, shared or global) normed by nw (or not),
 * then rotated by the table cs_tab of its position (rope_table). */
__device__ void head_norm_rope(float *v, int hd, const float *nw, float eps, const float *cs_tab)
{
    int lane = threadIdx.x & 31, half = hd / 2;
    if (nw) {
        float ss = 0.f;
        for (int d = lane; d < hd; d += 32)
            ss += v[d] * v[d];
        ss = warp_sum(ss) / (float)hd;
        float r = 1.0f / sqrtf(ss + eps);
        __syncwarp();
        for (int d = lane; d < hd; d += 32)
            v[d] = nw[d] * (v[d] * r);
        __syncwarp();
    }
    for (int i = lane; i < half; i += 32) {
        float cs = cs_tab[i], sn = cs_tab[half + i];
        float a = v[i], b = v[i + half];
        v[i] = a * cs - b * sn;
        v[i + half] = b * cs + a * sn;
    }
    __syncwarp();
}

struct post_args {
    float *q;                  /* (T, nh * hd): + bias, normed, rotated in place */
    const float *k, *v;        /* (T, nkv * hd), rows kv_stride apart */
    const float *bq, *bk, *bv; /* or NULL */
    const float *qn, *kn;      /* qwen3 per-head norms or NULL */
    float *K, *V;              /* the layer's cache (nkv, S, hd) */
    float eps;
    int T, pos0, nh, nkv, hd, S;
    const float *cs;           /* the rotation table of each row's position (T, hd; rope_table) */
    int kv_stride;             /* floats from one row of k (and of v) to the next */
};

/* One warp per (row t, head): q heads first, then k/v heads, whose rotated
 * keys and values go into the cache at position pos0 + t. */
__global__ void k_post(post_args a)
{
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    int heads = a.nh + a.nkv;
    if (warp >= a.T * heads)
        return;
    int t = warp / heads, h = warp % heads, pos = a.pos0 + t;
    if (h < a.nh) {
        float *q = a.q + ((size_t)t * a.nh + h) * a.hd;
        if (a.bq)
            for (int d = lane; d < a.hd; d += 32)
                q[d] += a.bq[h * a.hd + d];
        __syncwarp();
        head_norm_rope(q, a.hd, a.qn, a.eps, a.cs + (size_t)t * a.hd);
    } else {
        h -= a.nh;
        size_t row = (size_t)t * a.kv_stride + (size_t)h * a.hd;
        const float *k = a.k + row, *v = a.v + row;
        float *kc = a.K + ((size_t)h * a.S + pos) * a.hd, *vc = a.V + ((size_t)h * a.S + pos) * a.hd;
        for (int d = lane; d < a.hd; d += 32) {
            kc[d] = k[d] + (a.bk ? a.bk[h * a.hd + d] : 0.f);
            vc[d] = v[d] + (a.bv ? a.bv[h * a.hd + d] : 0.f);
        }
        __syncwarp();
        head_norm_rope(kc, a.hd, a.kn, a.eps, a.cs + (size_t)t * a.hd);
    }
}

/* ---- decode attention: one query, the context split across blocks ---- */

struct dec_args {
    const float *q, *k, *v;    /* this token's q (nh*hd), k, v (nkv*hd), biases added */
    const float *qn, *kn;
    float *K, *V;              /* the layer's cache (nkv, S, hd) */
    const float *inv_freq;
    const int *pos;            /* device: the token's position (graph replays read it) */
    float *part_o;             /* (nkv, n_split, G, hd) unnormalized outputs */
    float *part_ml;            /* (nkv, n_split, G, 2): max and sum of exp */
    unsigned *ticket;          /* (nkv), zero between launches */
    float *out;                /* (nh * hd) */
    float eps, scale;
    int nh, nkv, hd, S, n_split, min_chunk;
    const float *rope_cs;      /* cos then sin at the token's position (head_dim/2 each) */
    int vstage;                /* copy the chunk's values to shared memory while scoring */
    l2_pf pf;                  /* the next kernel's weights, into L2 */
    unsigned long long *tl;    /* timeline stamps, or NULL */
    int wide_combine;          /* the combine loads 16 splits at a time (0: 8, one output at a time) */
};

/* q . k over one head (HD: head_dim unrolled, or 0: hd at run time), the
 * key's row loaded whole before the products; rows of a multiple of 4 floats
 * are read 16 bytes at a time. */
template <int HD>
__device__ __forceinline__ float qk_dot(const float *q, const float *k, int hd)
{
    const float4 *q4 = reinterpret_cast<const float4 *>(q), *k4 = reinterpret_cast<const float4 *>(k);
    float s = 0.f;
    if constexpr (HD > 0) {
        float4 kk[HD / 4];
#pragma unroll
        for (int d = 0; d < HD / 4; d++)
            kk[d] = k4[d];
#pragma unroll
        for (int d = 0; d < HD / 4; d++) {
            float4 qq = q4[d];
            s += qq.x * kk[d].x + qq.y * kk[d].y + qq.z * kk[d].z + qq.w * kk[d].w;
        }
    } else if (hd % 4 == 0) {
        for (int d = 0; d < hd / 4; d++) {
            float4 kk = k4[d], qq = q4[d];
            s += qq.x * kk.x + qq.y * kk.y + qq.z * kk.z + qq.w * kk.w;
        }
    } else {
        for (int d = 0; d < hd; d++)
            s += q[d] * k[d];
    }
    return s;
}

/* grid (nkv, n_split), 256 threads. The context is cut into chunks of at
 * least min_chunk keys; splits past the last chunk return at once. Shared:
 * q of the group (G*hd), scores (G * chunk), combine weights (G * n_split),
 * the chunk's values and keys, the rotation table. The block whose keys
 * include the new position norms/rotates this token's k, uses it from
 * shared memory and writes k and v into the cache. */
template <int HD>   /* head_dim, or 0: any (read from a.hd) */
__global__ void __launch_bounds__(256) k_attn_decode(dec_args a)
{
    extern __shared__ float sm[];
    __shared__ bool last;
    int g = blockIdx.x, split = blockIdx.y, G = a.nh / a.nkv, hd = HD ? HD : a.hd;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nw = blockDim.x >> 5;
    /* the position was uploaded before the step's first kernel */
    int pos = *a.pos, nk = pos + 1;
    int chunk = (nk + a.n_split - 1) / a.n_split;
    if (chunk < a.min_chunk)
        chunk = a.min_chunk;
    int n_active = (nk + chunk - 1) / chunk;
    int j0 = split * chunk, j1 = min(nk, j0 + chunk), n = j1 - j0;
    tl_mark(a.tl, TL_START);
    issue_l2_pf(a.pf);
    pdl_launch_next();   /* the o matvec may start streaming its weights */
    float *qs = sm, *ps = qs + G * hd, *wts = ps + G * chunk;
    float *vs = reinterpret_cast<float *>(((uintptr_t)(wts + G * a.n_split) + 15) & ~(uintptr_t)15);
    int kst = hd + 4;   /* staged key rows padded: conflict-free 16-byte reads */
    float *ks = vs + (size_t)chunk * hd, *csm = ks + (size_t)chunk * kst;
    /* Staged (a.vstage, rows of 16-byte multiples): the chunk's cached keys
     * and values (positions before this token's: written by earlier steps)
     * and the rotation table (written by the step's first kernel, which has
     * finished: the kernel before this one waited for it) are copied to
     * shared memory before waiting for the q/k/v product; the new key and
     * value come from it after the wait. */
    bool stage = a.vstage && hd % 4 == 0;
    int jp = min(j1, pos);   /* cached rows of this chunk: [j0, jp) */
    if (stage && split < n_active) {
        const float4 *vsrc = reinterpret_cast<const float4 *>(a.V + ((size_t)g * a.S + j0) * hd);
        const float4 *ksrc = reinterpret_cast<const float4 *>(a.K + ((size_t)g * a.S + j0) * hd);
        int q4 = hd / 4;
        for (int i = threadIdx.x; i < (jp - j0) * q4; i += blockDim.x) {
            __pipeline_memcpy_async(reinterpret_cast<float4 *>(vs) + i, vsrc + i, 16);
            __pipeline_memcpy_async(reinterpret_cast<float4 *>(ks + (size_t)(i / q4) * kst) + i % q4, ksrc + i, 16);
        }
        __pipeline_commit();
        for (int i = threadIdx.x; i < hd; i += blockDim.x)
            csm[i] = a.rope_cs[i];
    }
    /* blocks past the last chunk leave before waiting, making room for the
     * o matvec's blocks (the working blocks wait, so this grid still ends
     * after the q/k/v product) */
    if (split >= n_active)
        return;
    pdl_wait();
    tl_mark(a.tl, TL_WAITED);
    const float *cs = stage ? csm : a.rope_cs;
    float *po = a.part_o + ((size_t)g * a.n_split + split) * G * hd;
    float *pml = a.part_ml + ((size_t)g * a.n_split + split) * G * 2;

    for (int i = threadIdx.x; i < G * hd; i += blockDim.x)
        qs[i] = a.q[(size_t)g * G * hd + i];
    bool has_new = pos < j1;   /* this block holds the new key */
    float *knew = ks + (size_t)(pos - j0) * kst;
    if (stage && has_new)
        for (int d = threadIdx.x; d < hd; d += blockDim.x) {
            knew[d] = a.k[g * hd + d];
            vs[(size_t)(pos - j0) * hd + d] = a.v[g * hd + d];
        }
    __syncthreads();
    for (int h = warp; h < G; h += nw)
        head_norm_rope(qs + h * hd, hd, a.qn, a.eps, cs);
    if (has_new && warp == nw - 1) {
        float *kc = a.K + ((size_t)g * a.S + pos) * hd, *vc = a.V + ((size_t)g * a.S + pos) * hd;
        if (stage) {
            head_norm_rope(knew, hd, a.kn, a.eps, cs);
            for (int d = lane; d < hd; d += 32) {
                kc[d] = knew[d];
                vc[d] = vs[(size_t)(pos - j0) * hd + d];
            }
        } else {
            for (int d = lane; d < hd; d += 32) {
                kc[d] = a.k[g * hd + d];
                vc[d] = a.v[g * hd + d];
            }
            __syncwarp();
            head_norm_rope(kc, hd, a.kn, a.eps, cs);
        }
    }
    if (stage)
        __pipeline_wait_prior(0);
    __syncthreads();
    /* scores: one thread per (key, head), the key's row read whole */
    const float *Kg = stage ? ks : a.K + ((size_t)g * a.S + j0) * hd;
    int kstride = stage ? kst : hd;
    for (int i = threadIdx.x; i < n * G; i += blockDim.x) {
        int j = i % n, h = i / n;
        ps[h * chunk + j] = qk_dot<HD>(qs + h * hd, Kg + (size_t)j * kstride, hd) * a.scale;
    }
    __syncthreads();
    /* softmax pieces per head: max, exp, sum */
    for (int h = warp; h < G; h += nw) {
        float *p = ps + h * chunk;
        float m = -INFINITY;
        for (int j = lane; j < n; j += 32)
            m = fmaxf(m, p[j]);
        m = warp_max(m);
        float l = 0.f;
        for (int j = lane; j < n; j += 32) {
            float e = expf(p[j] - m);
            p[j] = e;
            l += e;
        }
        l = warp_sum(l);
        if (lane == 0) {
            pml[h * 2] = m;
            pml[h * 2 + 1] = l;
        }
    }
    __syncthreads();
    const float *Vg = stage ? vs : a.V + (size_t)g * a.S * hd + (size_t)j0 * hd;
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
        int h = i / hd, d = i % hd;
        const float *p = ps + h * chunk;
        float acc = 0.f;
#pragma unroll 8
        for (int j = 0; j < n; j++)
            acc += p[j] * Vg[(size_t)j * hd + d];
        po[i] = acc;
    }

    /* The last block of this KV head to get here combines the splits. */
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0)
        last = atomicAdd(&a.ticket[g], 1u) == (unsigned)n_active - 1;
    __syncthreads();
    if (!last) {
        tl_mark(a.tl, TL_END);
        return;
    }
    __threadfence();
    const float *ml0 = a.part_ml + (size_t)g * a.n_split * G * 2;
    const float *o0 = a.part_o + (size_t)g * a.n_split * G * hd;
    for (int h = warp; h < G; h += nw) {   /* weights exp(m_s - M) / sum_s exp(m_s - M) l_s */
        float M = -INFINITY;
        for (int s = lane; s < n_active; s += 32)
            M = fmaxf(M, __ldcg(&ml0[(s * G + h) * 2]));
        M = warp_max(M);
        float den = 0.f;
        for (int s = lane; s < n_active; s += 32) {
            float f = expf(__ldcg(&ml0[(s * G + h) * 2]) - M);
            wts[h * a.n_split + s] = f;
            den += f * __ldcg(&ml0[(s * G + h) * 2 + 1]);
        }
        den = warp_sum(den);
        __syncwarp();
        for (int s = lane; s < n_active; s += 32)
            wts[h * a.n_split + s] /= den;
    }
    __syncthreads();
    int gh = G * hd, nt = blockDim.x;
    if (a.wide_combine && gh <= 2 * nt) {
        /* one or two outputs a thread, the splits' values loaded 16 at a
         * time before they are summed (in split order, as below): the
         * combine is a chain of round trips to L2, 63 splits deep at 2000
         * tokens, so the loads in flight set its time */
        int i0 = threadIdx.x, i1 = threadIdx.x + nt;
        bool one = i0 < gh, two = i1 < gh;
        if (!one)
            i0 = 0;   /* loads in bounds, nothing stored */
        const float *w0 = wts + (i0 / hd) * a.n_split, *w1 = wts + ((two ? i1 : i0) / hd) * a.n_split;
        float acc0 = 0.f, acc1 = 0.f;
        int s = 0;
        for (; s + 16 <= n_active; s += 16) {
            float v0[16], v1[16];
#pragma unroll
            for (int j = 0; j < 16; j++)
                v0[j] = __ldcg(&o0[(size_t)(s + j) * gh + i0]);
#pragma unroll
            for (int j = 0; j < 16; j++)
                v1[j] = two ? __ldcg(&o0[(size_t)(s + j) * gh + i1]) : 0.f;
#pragma unroll
            for (int j = 0; j < 16; j++) {
                acc0 += w0[s + j] * v0[j];
                acc1 += w1[s + j] * v1[j];
            }
        }
        for (; s < n_active; s++) {
            acc0 += w0[s] * __ldcg(&o0[(size_t)s * gh + i0]);
            if (two)
                acc1 += w1[s] * __ldcg(&o0[(size_t)s * gh + i1]);
        }
        if (one)
            a.out[(size_t)g * gh + i0] = acc0;
        if (two)
            a.out[(size_t)g * gh + i1] = acc1;
    } else {
        for (int i = threadIdx.x; i < gh; i += nt) {
            const float *w = wts + (i / hd) * a.n_split;
            float acc = 0.f;
#pragma unroll 8
            for (int s = 0; s < n_active; s++)
                acc += w[s] * __ldcg(&o0[(size_t)s * gh + i]);
            a.out[(size_t)g * gh + i] = acc;
        }
    }
    if (threadIdx.x == 0)
        a.ticket[g] = 0;
    if (a.tl) {
        __syncthreads();
        tl_mark(a.tl, TL_END);
    }
}

/* Max over the block (every thread gets it); red holds one float per warp. */
__device__ float block_max(float v, float *red)
{
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0)
        red[wid] = v;
    __syncthreads();
    float r = -INFINITY;
    for (int i = 0; i < nw; i++)
        r = fmaxf(r, red[i]);
    return r;
}

/* Decode attention, one block per (query head, chunk of keys): grid (nh,
 * n_split), chunks of a.min_chunk keys (a fixed size, so that up to that many
 * keys one block does the whole head and no combine is needed). Each block
 * norms/rotates its own q and, where its chunk holds the new position, the
 * new k (kept in shared memory and used for that key, so no block reads a
 * cache row another block is writing); the first query head of each KV
 * group writes k and v into the cache. One thread per key scores; the
 * chunk's values are copied to shared memory (cp.async) meanwhile. Several
 * chunks: partial outputs, and the last block of the head combines them. */
template <int HD>
__global__ void __launch_bounds__(256) k_attn_head(dec_args a)
{
    extern __shared__ float sm[];
    __shared__ bool last;
    __shared__ float red[32];
    int h = blockIdx.x, split = blockIdx.y, G = a.nh / a.nkv, g = h / G, hd = HD ? HD : a.hd;
    int warp = threadIdx.x >> 5, tid = threadIdx.x;
    int pos = *a.pos, nk = pos + 1;
    int chunk = a.min_chunk;
    int n_active = (nk + chunk - 1) / chunk;
    int j0 = split * chunk, j1 = min(nk, j0 + chunk), n = j1 - j0;
    issue_l2_pf(a.pf);
    pdl_launch_next();
    pdl_wait();
    if (split >= n_active)
        return;
    float *qs = sm, *ks = qs + hd, *ps = ks + hd;
    float *vs = reinterpret_cast<float *>(((uintptr_t)(ps + chunk) + 15) & ~(uintptr_t)15);
    float *pp = vs + (size_t)chunk * hd;
    bool has_new = pos >= j0 && pos < j1, stage_v = hd % 4 == 0;
    const float *vnew = a.v + (size_t)g * hd;
    const float *Vg = a.V + ((size_t)g * a.S + j0) * hd;
    if (stage_v) {   /* the new position's row comes from this token's v */
        int q4 = hd / 4;
        for (int i = tid; i < n * q4; i += blockDim.x) {
            if (j0 + i / q4 == pos)
                reinterpret_cast<float4 *>(vs)[i] = reinterpret_cast<const float4 *>(vnew)[i % q4];
            else
                __pipeline_memcpy_async(reinterpret_cast<float4 *>(vs) + i, reinterpret_cast<const float4 *>(Vg) + i, 16);
        }
        __pipeline_commit();
    }
    for (int d = tid; d < hd; d += blockDim.x) {
        qs[d] = a.q[(size_t)h * hd + d];
        if (has_new)
            ks[d] = a.k[(size_t)g * hd + d];
    }
    __syncthreads();
    if (warp == 0)
        head_norm_rope(qs, hd, a.qn, a.eps, a.rope_cs);
    if (has_new && warp == 1)
        head_norm_rope(ks, hd, a.kn, a.eps, a.rope_cs);
    __syncthreads();
    if (has_new && h % G == 0) {
        float *kc = a.K + ((size_t)g * a.S + pos) * hd, *vc = a.V + ((size_t)g * a.S + pos) * hd;
        for (int d = tid; d < hd; d += blockDim.x) {
            kc[d] = ks[d];
            vc[d] = vnew[d];
        }
    }
    /* scores, one thread per key */
    const float *Kg = a.K + ((size_t)g * a.S + j0) * hd;
    for (int j = tid; j < n; j += blockDim.x) {
        ps[j] = qk_dot<HD>(qs, j0 + j == pos ? ks : Kg + (size_t)j * hd, hd) * a.scale;
    }
    float m = -INFINITY;
    __syncthreads();
    for (int j = tid; j < n; j += blockDim.x)
        m = fmaxf(m, ps[j]);
    m = block_max(m, red);
    float l = 0.f;
    for (int j = tid; j < n; j += blockDim.x) {
        float e = expf(ps[j] - m);
        ps[j] = e;
        l += e;
    }
    l = block_sum(l, red);   /* its barriers also publish ps */
    if (stage_v)
        __pipeline_wait_prior(0);
    __syncthreads();
    /* out[d] = sum_j p_j v_j[d]: P partial sums per dimension, then added */
    int P = (int)blockDim.x >= hd ? (int)blockDim.x / hd : 1;
    for (int i = tid; i < hd * P; i += blockDim.x) {
        int d = i % hd, part = i / hd;
        float acc = 0.f;
        if (stage_v) {
#pragma unroll 4
            for (int j = part; j < n; j += P)
                acc += ps[j] * vs[(size_t)j * hd + d];
        } else {
            for (int j = part; j < n; j += P)
                acc += ps[j] * (j0 + j == pos ? vnew[d] : Vg[(size_t)j * hd + d]);
        }
        pp[part * hd + d] = acc;
    }
    __syncthreads();
    float *po = a.part_o + ((size_t)h * a.n_split + split) * hd;
    float *pml = a.part_ml + ((size_t)h * a.n_split + split) * 2;
    for (int d = tid; d < hd; d += blockDim.x) {
        float o = 0.f;
        for (int p = 0; p < P; p++)
            o += pp[p * hd + d];
        if (n_active == 1)
            a.out[(size_t)h * hd + d] = o / l;
        else
            po[d] = o;
    }
    if (n_active == 1)
        return;
    if (tid == 0) {
        pml[0] = m;
        pml[1] = l;
    }
    __threadfence();
    __syncthreads();
    if (tid == 0)
        last = atomicAdd(&a.ticket[h], 1u) == (unsigned)n_active - 1;
    __syncthreads();
    if (!last)
        return;
    __threadfence();
    const float *ml0 = a.part_ml + (size_t)h * a.n_split * 2;
    const float *o0 = a.part_o + (size_t)h * a.n_split * hd;
    float M = -INFINITY;
    for (int sp = 0; sp < n_active; sp++)
        M = fmaxf(M, __ldcg(&ml0[sp * 2]));
    float den = 0.f;
    for (int sp = 0; sp < n_active; sp++)
        den += expf(__ldcg(&ml0[sp * 2]) - M) * __ldcg(&ml0[sp * 2 + 1]);
    for (int d = tid; d < hd; d += blockDim.x) {
        float o = 0.f;
        for (int sp = 0; sp < n_active; sp++)
            o += expf(__ldcg(&ml0[sp * 2]) - M) * __ldcg(&o0[(size_t)sp * hd + d]);
        a.out[(size_t)h * hd + d] = o / den;
    }
    if (tid == 0)
        a.ticket[h] = 0;
}

/* ---- prefill attention ---- */

/* Flash attention, causal, f32: one block per (64 query rows, head); keys in
 * tiles of 32 through shared memory with a running max and sum per row. Four
 * threads share a row: each scores 8 keys of a tile, and owns every 4th
 * output dimension. q (T, nh, hd) rotated; out (T, nh * hd) as TO. */
template <typename TO, int DPT>
__global__ void __launch_bounds__(256) k_flash(const float *q, const float *K, const float *V, TO *out, int T, int pos0,
                                              int nh, int nkv, int hd, int S, float scale)
{
    constexpr int BQ = 64, BK = 32;
    extern __shared__ float sm[];
    float *Ks = sm, *Vs = Ks + BK * (hd + 1), *Ps = Vs + BK * hd;   /* Ps: (BQ, BK + 1) */
    int h = blockIdx.y, g = h / (nh / nkv);
    int row = threadIdx.x >> 2, sub = threadIdx.x & 3;
    int i = blockIdx.x * BQ + row;              /* query row in the chunk */
    bool live = i < T;
    int qpos = pos0 + (live ? i : T - 1);
    const float *qi = q + ((size_t)(live ? i : T - 1) * nh + h) * hd;
    float o[DPT];
#pragma unroll
    for (int x = 0; x < DPT; x++)
        o[x] = 0.f;
    float m = -INFINITY, l = 0.f;
    int last_row = min(T, (int)(blockIdx.x + 1) * BQ) - 1;
    int n_keys = pos0 + last_row + 1;
    const float *Kg = K + (size_t)g * S * hd, *Vg = V + (size_t)g * S * hd;
    for (int j0 = 0; j0 < n_keys; j0 += BK) {
        int nt = min(BK, n_keys - j0);
        __syncthreads();
        for (int e = threadIdx.x; e < BK * hd; e += blockDim.x) {
            int j = e / hd, d = e % hd;
            Ks[j * (hd + 1) + d] = j < nt ? Kg[(size_t)(j0 + j) * hd + d] : 0.f;
            Vs[j * hd + d] = j < nt ? Vg[(size_t)(j0 + j) * hd + d] : 0.f;
        }
        __syncthreads();
        /* this thread's 8 keys: sub, sub + 4, ... */
        float s[8], tmax = -INFINITY;
#pragma unroll
        for (int x = 0; x < 8; x++) {
            int j = sub + 4 * x;
            float acc = 0.f;
            for (int d = 0; d < hd; d++)
                acc += qi[d] * Ks[j * (hd + 1) + d];
            s[x] = (j < nt && j0 + j <= qpos) ? acc * scale : -INFINITY;
            tmax = fmaxf(tmax, s[x]);
        }
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 1));
        tmax = fmaxf(tmax, __shfl_xor_sync(0xffffffffu, tmax, 2));
        float mnew = fmaxf(m, tmax);
        float corr = (m == -INFINITY) ? 0.f : expf(m - mnew);
        float psum = 0.f;
#pragma unroll
        for (int x = 0; x < 8; x++) {
            float p = s[x] == -INFINITY ? 0.f : expf(s[x] - mnew);
            Ps[row * (BK + 1) + sub + 4 * x] = p;
            psum += p;
        }
        psum += __shfl_xor_sync(0xffffffffu, psum, 1);
        psum += __shfl_xor_sync(0xffffffffu, psum, 2);
        if (mnew != -INFINITY) {
            l = l * corr + psum;
            m = mnew;
        }
        __syncwarp();
#pragma unroll
        for (int x = 0; x < DPT; x++) {
            int d = sub + 4 * x;
            if (d < hd) {
                float acc = o[x] * corr;
                for (int j = 0; j < nt; j++)
                    acc += Ps[row * (BK + 1) + j] * Vs[j * hd + d];
                o[x] = acc;
            }
        }
    }
    if (!live)
        return;
    TO *oi = out + ((size_t)i * nh + h) * hd;
    float inv = 1.0f / l;
#pragma unroll
    for (int x = 0; x < DPT; x++) {
        int d = sub + 4 * x;
        if (d < hd)
            oi[d] = from_f32<TO>(o[x] * inv);
    }
}

/* ---- prefill attention on tensor cores (f16 / bf16 models) ----
 *
 * FlashAttention-2 with mma.sync m16n8k16 (f16 inputs, f32 accumulation):
 * a block is BQ / 16 warps, BQ query rows of one head, each warp 16 rows.
 * The keys come in tiles of BK (64; 32 for head_dim 128), copied from the
 * f32 cache into shared memory with cp.async, two tiles in flight (the next
 * one loads while this one is multiplied); the fragments are rounded to f16
 * as they are read (rows padded so that those reads hit 32 different
 * banks). Per tile a warp computes its 16 x BK scores (S = Q K^T), masks the
 * keys past each row's position, updates the running row max and sum, and
 * adds P V into its 16 x head_dim output; the scores' accumulator fragments
 * are the P V product's input fragments, so P never leaves the registers.
 * f16 rather than bf16: 3 more bits of mantissa for q, k, v and p (the
 * models' activations are far inside f16's range); the row sums and the
 * output stay f32. f32 models keep k_flash (f32 throughout). */
template <int HD>
struct tc_shape {
    static constexpr int BK = HD > 64 ? 32 : 64;   /* keys a tile */
    static constexpr int KS = HD + 8;              /* key row stride (floats): float2 reads conflict-free */
    static constexpr int VS = HD + 4;              /* value row stride: column reads conflict-free */
    static constexpr int STAGE = BK * (KS + VS);   /* floats a tile */
    static constexpr size_t SMEM = 2 * STAGE * sizeof(float);
};

__device__ __forceinline__ uint32_t pack_half2(float lo, float hi)
{
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&h);
}

/* c += a b: a 16 x 16 (row), b 16 x 8 (column), f16 in, f32 accumulate. */
__device__ __forceinline__ void mma_16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* grid (ceil(T / BQ), nh), 2 BQ threads, tc_shape<HD>::SMEM bytes of shared
 * memory. q (T, nh, HD) normed and rotated; the chunk's keys and values
 * already in the cache (nkv, S, HD); out (T, nh, HD) in the GEMM input
 * type. In the fragments a thread holds rows gid and gid + 8 of its warp's
 * 16 and columns tig * 2, tig * 2 + 1 of each 8-column tile (PTX's m16n8k16
 * layout). */
template <typename TO, int HD, int BQ>
__global__ void __launch_bounds__(2 * BQ) k_flash_tc(const float *q, const float *K, const float *V, TO *out, int T,
                                                    int pos0, int nh, int nkv, int S, float scale)
{
    using SH = tc_shape<HD>;
    constexpr int BK = SH::BK, KS = SH::KS, VS = SH::VS, NT = BK / 8, DT = HD / 8, NTH = 2 * BQ;
    extern __shared__ float4 tc_sm4[];
    float *tc_sm = reinterpret_cast<float *>(tc_sm4);   /* two tiles: keys (BK, KS), values (BK, VS) */
    int h = blockIdx.y, g = h / (nh / nkv);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, gid = lane >> 2, tig = lane & 3;
    int r0 = blockIdx.x * BQ + warp * 16 + gid, r1 = r0 + 8;   /* this thread's two rows */
    int pa = pos0 + r0, pb = pos0 + r1;                           /* their positions */
    int last_row = min(T, (int)(blockIdx.x + 1) * BQ) - 1;
    int n_keys = pos0 + last_row + 1;
    const float *Kg = K + (size_t)g * S * HD, *Vg = V + (size_t)g * S * HD;

    /* tile j0 into stage buf: keys past the last as zeros (never NaN) */
    auto issue = [&](int j0, int buf) {
        float *ks = tc_sm + buf * SH::STAGE, *vs = ks + BK * KS;
        for (int e = threadIdx.x; e < BK * HD / 4; e += NTH) {
            int j = e / (HD / 4), d = (e % (HD / 4)) * 4;
            bool ok = j0 + j < n_keys;
            size_t off = ok ? (size_t)(j0 + j) * HD + d : 0;
            __pipeline_memcpy_async(ks + j * KS + d, Kg + off, 16, ok ? 0 : 16);
            __pipeline_memcpy_async(vs + j * VS + d, Vg + off, 16, ok ? 0 : 16);
        }
        __pipeline_commit();
    };
    issue(0, 0);

    uint32_t qf[HD / 16][4];   /* q of the warp's rows as A fragments (rows past T: the last row's q) */
    {
        const float *qa = q + ((size_t)min(r0, T - 1) * nh + h) * HD, *qb = q + ((size_t)min(r1, T - 1) * nh + h) * HD;
#pragma unroll
        for (int ks = 0; ks < HD / 16; ks++) {
            int c = ks * 16 + tig * 2;
            qf[ks][0] = pack_half2(qa[c], qa[c + 1]);
            qf[ks][1] = pack_half2(qb[c], qb[c + 1]);
            qf[ks][2] = pack_half2(qa[c + 8], qa[c + 9]);
            qf[ks][3] = pack_half2(qb[c + 8], qb[c + 9]);
        }
    }
    float o[DT][4];
#pragma unroll
    for (int dn = 0; dn < DT; dn++)
        o[dn][0] = o[dn][1] = o[dn][2] = o[dn][3] = 0.f;
    float ma = -INFINITY, mb = -INFINITY, la = 0.f, lb = 0.f;   /* running max; this thread's part of the sums */

    for (int t = 0, j0 = 0; j0 < n_keys; t++, j0 += BK) {
        if (j0 + BK < n_keys)
            issue(j0 + BK, (t + 1) & 1);
        else
            __pipeline_commit();   /* an empty group: the wait below counts the same */
        __pipeline_wait_prior(1);
        __syncthreads();
        const float *ks_ = tc_sm + (t & 1) * SH::STAGE, *vs_ = ks_ + BK * KS;

        float s[NT][4];   /* S = Q K^T, 16 rows x BK keys */
#pragma unroll
        for (int n = 0; n < NT; n++) {
            s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.f;
#pragma unroll
            for (int kk = 0; kk < HD / 16; kk++) {
                const float *kp = ks_ + (n * 8 + gid) * KS + kk * 16 + tig * 2;
                float2 lo = *reinterpret_cast<const float2 *>(kp), hi = *reinterpret_cast<const float2 *>(kp + 8);
                mma_16816(s[n], qf[kk], pack_half2(lo.x, lo.y), pack_half2(hi.x, hi.y));
            }
        }
        float xa = -INFINITY, xb = -INFINITY;   /* scaled, masked; the tile's row max */
#pragma unroll
        for (int n = 0; n < NT; n++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int key = j0 + n * 8 + tig * 2 + e;
                s[n][e] = key <= pa ? s[n][e] * scale : -INFINITY;
                s[n][2 + e] = key <= pb ? s[n][2 + e] * scale : -INFINITY;
                xa = fmaxf(xa, s[n][e]);
                xb = fmaxf(xb, s[n][2 + e]);
            }
        xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 1));
        xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 2));
        xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 1));
        xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 2));
        float na = fmaxf(ma, xa), nb = fmaxf(mb, xb);
        /* key 0 is in every row's first tile, so na and nb are finite from there on */
        float ca = ma == -INFINITY ? 0.f : expf(ma - na), cb = mb == -INFINITY ? 0.f : expf(mb - nb);
        ma = na;
        mb = nb;
        uint32_t pf[BK / 16][4];   /* P as the A fragments of P V */
        float sa = 0.f, sb = 0.f;
#pragma unroll
        for (int n = 0; n < NT; n++) {
            float p0 = s[n][0] == -INFINITY ? 0.f : expf(s[n][0] - na);
            float p1 = s[n][1] == -INFINITY ? 0.f : expf(s[n][1] - na);
            float p2 = s[n][2] == -INFINITY ? 0.f : expf(s[n][2] - nb);
            float p3 = s[n][3] == -INFINITY ? 0.f : expf(s[n][3] - nb);
            sa += p0 + p1;
            sb += p2 + p3;
            pf[n / 2][(n % 2) * 2] = pack_half2(p0, p1);
            pf[n / 2][(n % 2) * 2 + 1] = pack_half2(p2, p3);
        }
        la = la * ca + sa;
        lb = lb * cb + sb;
#pragma unroll
        for (int dn = 0; dn < DT; dn++) {
            o[dn][0] *= ca;
            o[dn][1] *= ca;
            o[dn][2] *= cb;
            o[dn][3] *= cb;
#pragma unroll
            for (int kk = 0; kk < BK / 16; kk++) {
                const float *vp = vs_ + (kk * 16 + tig * 2) * VS + dn * 8 + gid;
                mma_16816(o[dn], pf[kk], pack_half2(vp[0], vp[VS]), pack_half2(vp[8 * VS], vp[9 * VS]));
            }
        }
        __syncthreads();   /* this stage is read: the next iteration's copy may refill it */
    }
    la += __shfl_xor_sync(0xffffffffu, la, 1);
    la += __shfl_xor_sync(0xffffffffu, la, 2);
    lb += __shfl_xor_sync(0xffffffffu, lb, 1);
    lb += __shfl_xor_sync(0xffffffffu, lb, 2);
    float ia = 1.0f / la, ib = 1.0f / lb;
#pragma unroll
    for (int dn = 0; dn < DT; dn++) {
        int d = dn * 8 + tig * 2;
        if (r0 < T) {
            TO *oa = out + ((size_t)r0 * nh + h) * HD + d;
            oa[0] = from_f32<TO>(o[dn][0] * ia);
            oa[1] = from_f32<TO>(o[dn][1] * ia);
        }
        if (r1 < T) {
            TO *ob = out + ((size_t)r1 * nh + h) * HD + d;
            ob[0] = from_f32<TO>(o[dn][2] * ib);
            ob[1] = from_f32<TO>(o[dn][3] * ib);
        }
    }
}

/* Exact attention that also keeps the probabilities (the observer's rows):
 * one block per (query row, head). P (nh, T, nk). q rotated, out f32. */
__global__ void k_attn_probs(const float *q, const float *K, const float *V, float *out, float *P, int T, int pos0,
                             int nh, int nkv, int hd, int nk, int S, float scale)
{
    __shared__ float red[32];
    int i = blockIdx.x, h = blockIdx.y, g = h / (nh / nkv);
    const float *qi = q + ((size_t)i * nh + h) * hd;
    const float *Kg = K + (size_t)g * S * hd, *Vg = V + (size_t)g * S * hd;
    float *p = P + ((size_t)h * T + i) * nk;
    int last = pos0 + i;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j <= last; j += blockDim.x) {
        float s = 0.f;
        for (int d = 0; d < hd; d++)
            s += qi[d] * Kg[(size_t)j * hd + d];
        s *= scale;
        p[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = warp_max(mx);
    __syncthreads();
    if ((threadIdx.x & 31) == 0)
        red[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++)
        mx = fmaxf(mx, red[w]);
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
    sum = block_sum(sum, red);
    float inv = 1.f / sum;
    for (int j = threadIdx.x; j <= last; j += blockDim.x)
        p[j] *= inv;
    __syncthreads();
    float *oi = out + ((size_t)i * nh + h) * hd;
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float acc = 0.f;
        for (int j = 0; j <= last; j++)
            acc += p[j] * Vg[(size_t)j * hd + d];
        oi[d] = acc;
    }
}

/* ---- elementwise ---- */

/* x[t] = embed[tokens[t]] widened (one block per row), and the cos/sin
 * table of position pos0 + t that every layer's k_post reads (cs: T rows of
 * half cosines then half sines). */
template <typename T>
__global__ void k_embed(float *x, const T *emb, const int *tokens, int dim, const float *inv_freq, int pos0, float *cs,
                        int half)
{
    const T *r = emb + (size_t)tokens[blockIdx.x] * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        x[(size_t)blockIdx.x * dim + i] = to_f32(r[i]);
    rope_table(cs + (size_t)blockIdx.x * 2 * half, inv_freq, pos0 + (int)blockIdx.x, half, threadIdx.x, blockDim.x);
}

/* The decode step's first kernel: x = embed[*tok], and the cos/sin table of
 * position *pos that every layer's attention reads. */
template <typename T>
__global__ void k_embed_rope(float *x, const T *emb, const int *tok, int dim, const float *inv_freq, const int *pos,
                             float *rope_cs, int half)
{
    const T *r = emb + (size_t)*tok * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        x[i] = to_f32(r[i]);
    rope_table(rope_cs, inv_freq, *pos, half, threadIdx.x, blockDim.x);
}

/* Four elements of type TO stored as one (8 or 16 bytes). */
template <typename TO>
struct alignas(4 * sizeof(TO)) pack4 {
    TO v[4];
};

template <typename TO>
__device__ __forceinline__ pack4<TO> pack4_of(float a, float b, float c, float d)
{
    return pack4<TO>{{from_f32<TO>(a), from_f32<TO>(b), from_f32<TO>(c), from_f32<TO>(d)}};
}

/* out[t] = RMSNorm(x[t]) * w as TO (the next GEMM's input type). */
template <typename TO>
__global__ void k_rmsnorm(TO *out, const float *x, const float *w, int dim, float eps)
{
    __shared__ float red[32];
    const float *xr = x + (size_t)blockIdx.x * dim;
    constexpr int R = 4;   /* 16-byte packs a thread keeps in registers */
    if (dim % 4 == 0 && dim <= 4 * R * (int)blockDim.x) {   /* one read of x, 16 bytes at a time */
        const float4 *x4 = reinterpret_cast<const float4 *>(xr), *w4 = reinterpret_cast<const float4 *>(w);
        pack4<TO> *o4 = reinterpret_cast<pack4<TO> *>(out + (size_t)blockIdx.x * dim);
        float4 v[R];
        float ss = 0.f;
#pragma unroll
        for (int u = 0; u < R; u++) {
            int i = threadIdx.x + u * blockDim.x;
            if (i < dim / 4) {
                v[u] = x4[i];
                ss += v[u].x * v[u].x + v[u].y * v[u].y + v[u].z * v[u].z + v[u].w * v[u].w;
            }
        }
        ss = block_sum(ss, red) / (float)dim;
        float r = 1.0f / sqrtf(ss + eps);
#pragma unroll
        for (int u = 0; u < R; u++) {
            int i = threadIdx.x + u * blockDim.x;
            if (i < dim / 4) {
                float4 g = w4[i];
                o4[i] = pack4_of<TO>(g.x * (v[u].x * r), g.y * (v[u].y * r), g.z * (v[u].z * r), g.w * (v[u].w * r));
            }
        }
        return;
    }
    float ss = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        ss += xr[i] * xr[i];
    ss = block_sum(ss, red) / (float)dim;
    float r = 1.0f / sqrtf(ss + eps);
    for (int i = threadIdx.x; i < dim; i += blockDim.x)
        out[(size_t)blockIdx.x * dim + i] = from_f32<TO>(w[i] * (xr[i] * r));
}

template <typename TO>
__global__ void k_swiglu(TO *out, const float *g, const float *u, size_t n)
{
    size_t i0 = (size_t)blockIdx.x * blockDim.x + threadIdx.x, step = (size_t)gridDim.x * blockDim.x;
    if (n % 4 == 0) {   /* 16-byte loads */
        const float4 *g4 = reinterpret_cast<const float4 *>(g), *u4 = reinterpret_cast<const float4 *>(u);
        pack4<TO> *o4 = reinterpret_cast<pack4<TO> *>(out);
        for (size_t i = i0; i < n / 4; i += step) {
            float4 a = g4[i], b = u4[i];
            o4[i] = pack4_of<TO>(a.x / (1.0f + expf(-a.x)) * b.x, a.y / (1.0f + expf(-a.y)) * b.y,
                                 a.z / (1.0f + expf(-a.z)) * b.z, a.w / (1.0f + expf(-a.w)) * b.w);
        }
        return;
    }
    for (size_t i = i0; i < n; i += step) {
        float a = g[i];
        out[i] = from_f32<TO>(a / (1.0f + expf(-a)) * u[i]);
    }
}

template <typename TO>
__global__ void k_convert(TO *out, const float *in, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = from_f32<TO>(in[i]);
}

template <typename T>
__global__ void k_widen(float *out, const T *in, size_t n)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        out[i] = to_f32(in[i]);
}

}  // namespace kern

#include "step.cuh"
