/* mk_bound.cu - how close can one persistent decode kernel come to the copy
 * bandwidth on this GPU, whatever its arithmetic?
 *
 * A skeleton of the megakernel design for a LLaMA-shaped decode step: one
 * block per multiprocessor, all resident. In each block a producer warp
 * streams the block's share (whole rows) of every matrix of the step, in the
 * order the step uses them, through a ring of shared-memory stages
 * (cp.async.bulk completing on mbarriers), never waiting for the phases;
 * consumer warps multiply every row of a stage with an input vector in shared
 * memory (bf16 weights, f32 products, as the real kernels do). Where the
 * model's data dependencies need the whole grid (every input of the next
 * matrix depends on every block's output), the consumers stop at a grid
 * barrier (a counter in global memory: release add, acquire polls), then
 * reload the input vector from global memory. A phase that ends in a
 * reduction into x adds the block's dim partial sums (red.global.add.v4.f32,
 * as k_mlp does). Attention is modelled as a delay only.
 *
 * The structures (syncs a layer; "|" is a grid barrier):
 *   none : no barriers at all (the ring's streaming ceiling)
 *   k5   : qkv | attention | o | gate/up | down |    (the persistent k_step)
 *   k4   : qkv | attention | o | gate/up + down |   (the kernel-per-matrix
 *          path's dependencies: down reduced into x as in k_mlp)
 *   k2   : qkv, attention, o | gate/up + down |     (the fewest whole-grid
 *          dependencies a layer has: RMSNorm needs all of x after o and
 *          after down; attention's and o's per-head dependencies taken as
 *          free, o reduced into x)
 * so each result is an upper bound for its structure: real attention, real
 * per-head dependencies and real outputs only add to it.
 *
 * Variants (environment): MK_NS and MK_STAGE (ring stages and KiB a stage,
 * default 6 x 32), MK_INFL=KiB (the producer keeps at most that much in
 * flight, the rest of the ring a buffer of arrived stages), MK_PF=KiB (L2
 * bulk prefetch that far ahead of the ring's loads), MK_DYN=1 (blocks claim
 * chunks of rows from a counter per phase instead of fixed shares), MK_BAR=1
 * (the last block to arrive raises a flag) or 2 (polls 200 ns apart),
 * MK_NOP=1 (consumers release every stage unread: the fastest consumer
 * there is), MK_DRY=1 (no weights: the barriers' own time).
 *
 * Build and run (GPU machine):
 *   nvcc -O3 -std=c++17 -arch=sm_90a -o /tmp/mk_bound tools/mk_bound.cu
 *   /tmp/mk_bound [steps]
 * Prints, per model and structure, us a step and the share of the measured
 * device-to-device copy bandwidth (read + write, as tools/gpu_check.sh). */
#include <cuda_runtime.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <algorithm>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "mk_bound: %s: %s\n", #x, cudaGetErrorString(e_)); exit(1); } } while (0)

constexpr int CW = 16;                 /* consumer warps */
constexpr int NTHREADS = (CW + 1) * 32; /* + the producer warp */
constexpr int MAX_PH = 256;
constexpr int MAX_NS = 16;
constexpr int HDR = 512;   /* shared bytes before the input: the ring's barriers, then meta */

struct phase {
    long long off;      /* bytes into the weights */
    int rows, cols;     /* row-major bf16 */
    int sync_after;     /* a grid barrier after it */
    int reduce;         /* the block adds dim partial sums into x at its end */
    int delay_ns;       /* consumers wait this long after it (attention) */
    int in_len;         /* input floats reloaded after the barrier before it */
};

struct args {
    const unsigned char *w;
    float *x;           /* (dim) the reduced output and the reloaded input */
    float *sink;        /* per block: keeps the products live */
    unsigned long long *tsum;   /* [0]: ns in barrier waits, [1]: ns reloading the input, over blocks */
    unsigned *bar;
    unsigned base;      /* the barrier count before this step */
    int nph, dim, ns, stage_bytes;
    int ring_off;       /* shared bytes before the ring: HDR, then the input (the longest, 128-byte aligned) */
    long long pf;       /* bytes the producer prefetches into the L2 ahead of its ring loads (0: none) */
    int infl;           /* bytes the producer keeps in flight at most (0: the whole ring) */
    int dyn;            /* blocks claim chunks of rows from a counter per phase instead of a fixed share */
    unsigned *cnt;      /* (2, MAX_PH) claim counters: this step's (epoch & 1), the next step's zeroed */
    unsigned epoch;
    int nop;            /* consumers release every stage unread */
    int bar_kind;       /* 0: poll the count, 1: a flag raised by the last block, 2: poll with sleeps */
};

__constant__ phase c_ph[MAX_PH];

__device__ __forceinline__ uint32_t sa(const void *p) { return (uint32_t)__cvta_generic_to_shared(p); }
__device__ __forceinline__ unsigned long long now_ns()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}
__device__ __forceinline__ void mb_init(uint64_t *b, unsigned n)
{ asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(sa(b)), "r"(n) : "memory"); }
__device__ __forceinline__ void mb_expect(uint64_t *b, unsigned bytes)
{ asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(sa(b)), "r"(bytes) : "memory"); }
__device__ __forceinline__ void mb_arrive(uint64_t *b)
{ asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(sa(b)) : "memory"); }
__device__ __forceinline__ void mb_wait(uint64_t *b, unsigned parity)
{
    uint32_t ok = 0;
    long long t0 = clock64();
    while (!ok) {
        asm volatile("{\n\t.reg .pred p;\n\tmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n\t"
                     "selp.u32 %0, 1, 0, p;\n\t}" : "=r"(ok) : "r"(sa(b)), "r"(parity) : "memory");
        if (clock64() - t0 > (1ll << 32))
            __trap();
    }
}
__device__ __forceinline__ void bulk(void *dst, const void *src, unsigned bytes, uint64_t *b)
{
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(sa(dst)), "l"(src), "r"(bytes), "r"(sa(b)) : "memory");
}
__device__ __forceinline__ void cons_sync() { asm volatile("bar.sync 1, %0;" ::"n"(CW * 32) : "memory"); }
__device__ __forceinline__ void block_rows(const phase &P, int &r0, int &r1)
{
    r0 = (int)((long long)P.rows * blockIdx.x / gridDim.x);
    r1 = (int)((long long)P.rows * (blockIdx.x + 1) / gridDim.x);
}

__global__ void __launch_bounds__(NTHREADS, 1) k_skel(args a)
{
    extern __shared__ __align__(128) unsigned char sm[];
    uint64_t *full = (uint64_t *)sm, *empty = full + MAX_NS;
    float *xs = (float *)(sm + HDR);
    int *meta = (int *)(sm + 256);   /* rows in each stage (claimed shares); 0: the phase's end */
    unsigned char *ring = sm + a.ring_off;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) {
        for (int i = 0; i < a.ns; i++) {
            mb_init(&full[i], 1);
            mb_init(&empty[i], CW);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    if (a.dyn && blockIdx.x == 0)   /* the next step's counters (the last step's: it has ended) */
        for (int i = threadIdx.x; i < a.nph; i += blockDim.x)
            a.cnt[((a.epoch + 1) & 1) * MAX_PH + i] = 0;
    __syncthreads();

    if (warp == CW) {   /* producer */
        if (lane)
            return;
        int c = 0;
        int done = 0, fl = 0, bytes_of[MAX_NS];   /* the oldest stage not seen arrived; bytes in flight */
        auto issue = [&](const phase &P, int r, int n) {
            int st = c % a.ns, rb = P.cols * 2;
            if (c >= a.ns) {
                mb_wait(&empty[st], (unsigned)((c / a.ns) - 1) & 1u);
                asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
            }
            for (; done <= c - a.ns; done++)   /* consumed, so arrived */
                fl -= bytes_of[done % a.ns];
            /* at most a.infl bytes in flight: the rest of the ring holds
             * arrived stages, a buffer for when the consumers stop */
            while (a.infl && done < c && fl + n * rb > a.infl) {
                mb_wait(&full[done % a.ns], (unsigned)(done / a.ns) & 1u);
                fl -= bytes_of[done % a.ns];
                done++;
            }
            bytes_of[st] = n * rb;
            fl += n * rb;
            meta[st] = n;
            if (n) {
                mb_expect(&full[st], (unsigned)(n * rb));
                bulk(ring + (size_t)st * a.stage_bytes, a.w + P.off + (size_t)r * rb, (unsigned)(n * rb), &full[st]);
            } else {
                mb_arrive(&full[st]);
            }
            c++;
        };
        if (a.dyn) {
            /* claims run four ahead (each an atomic round trip); once one
             * comes back past the end, so do the later ones */
            unsigned *cnt = a.cnt + (a.epoch & 1) * MAX_PH;
            for (int p = 0; p < a.nph; p++) {
                const phase &P = c_ph[p];
                int upc = max(1, a.stage_bytes / (P.cols * 2)), nch = (P.rows + upc - 1) / upc;
                if (nch) {
                    unsigned q0 = atomicAdd(&cnt[p], 1u), q1 = atomicAdd(&cnt[p], 1u), q2 = atomicAdd(&cnt[p], 1u),
                             q3 = atomicAdd(&cnt[p], 1u);
#define CLAIM(q) { if ((int)q >= nch) break; issue(P, (int)q * upc, min(upc, P.rows - (int)q * upc)); q = atomicAdd(&cnt[p], 1u); }
                    for (;;) {
                        CLAIM(q0) CLAIM(q1) CLAIM(q2) CLAIM(q3)
                    }
#undef CLAIM
                }
                issue(P, 0, 0);
            }
            return;
        }
        long long issued = 0, fetched = 0;   /* bytes of the block's sequence loaded / prefetched */
        int fp = 0;                          /* the prefetch cursor: phase, and bytes into its span */
        long long fo = 0;
        for (int p = 0; p < a.nph; p++) {
            const phase &P = c_ph[p];
            int r0, r1, rb = P.cols * 2, upc = max(1, a.stage_bytes / rb);
            block_rows(P, r0, r1);
            for (int r = r0; r < r1; r += upc) {
                int n = min(upc, r1 - r);
                /* the L2 prefetch runs a.pf bytes ahead of the ring's loads:
                 * the memory keeps streaming while the ring is full */
                while (a.pf && fp < a.nph && fetched < issued + n * rb + a.pf) {
                    const phase &F = c_ph[fp];
                    int f0, f1;
                    block_rows(F, f0, f1);
                    long long span = (long long)(f1 - f0) * F.cols * 2;
                    if (fo >= span) {
                        fp++;
                        fo = 0;
                        continue;
                    }
                    unsigned k = (unsigned)min(span - fo, 32768ll);
                    const unsigned char *src = a.w + F.off + (long long)f0 * F.cols * 2 + fo;
                    if (fetched >= issued)
                        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(src), "r"(k) : "memory");
                    fo += k;
                    fetched += k;
                }
                issue(P, r, n);
                issued += n * rb;
            }
        }
        return;
    }

    /* consumers */
    unsigned nbar = a.base;
    float keep = 0.f;
    int c = 0;
    for (int i = threadIdx.x; i < c_ph[0].cols; i += CW * 32)
        xs[i] = __ldcg(&a.x[i % a.dim]);
    cons_sync();
    for (int p = 0; p < a.nph; p++) {
        const phase &P = c_ph[p];
        int r0, r1, rb = P.cols * 2, upc = max(1, a.stage_bytes / rb);
        block_rows(P, r0, r1);
        float acc = 0.f;
        for (int r = r0; a.dyn || r < r1; r += upc, c++) {
            int st = c % a.ns, n = min(upc, r1 - r);
            mb_wait(&full[st], (unsigned)(c / a.ns) & 1u);
            if (a.dyn) {
                n = ((volatile int *)meta)[st];
                if (!n) {   /* the phase's end */
                    __syncwarp();
                    if (lane == 0)
                        mb_arrive(&empty[st]);
                    c++;
                    break;
                }
            }
            if (a.nop) {   /* the fastest consumer there is: release the stage unread */
                __syncwarp();
                if (lane == 0)
                    mb_arrive(&empty[st]);
                continue;
            }
            const uint4 *s4 = (const uint4 *)(ring + (size_t)st * a.stage_bytes);
            int ppr = P.cols / 8;   /* 16-byte packs a row; every consumer thread takes every 512th */
            float d = 0.f;
            for (int i = threadIdx.x; i < n * ppr; i += CW * 32) {
                uint4 v = s4[i];
                const float *xv = xs + (i % ppr) * 8;
                uint32_t u[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                for (int e = 0; e < 4; e++) {
                    d += __uint_as_float(u[e] << 16) * xv[2 * e];
                    d += __uint_as_float(u[e] & 0xffff0000u) * xv[2 * e + 1];
                }
            }
            acc += d;
            __syncwarp();
            if (lane == 0)
                mb_arrive(&empty[st]);
        }
        keep += acc;
        if (P.reduce) {   /* the block's dim partial sums into x */
            float4 *x4 = (float4 *)a.x;
            for (int i = threadIdx.x; i < a.dim / 4; i += CW * 32) {
                float v = keep * 1e-30f;
                asm volatile("red.global.add.v4.f32 [%0], {%1, %2, %3, %4};"
                             ::"l"(x4 + i), "f"(v), "f"(v), "f"(v), "f"(v) : "memory");
            }
        }
        if (P.delay_ns) {
            unsigned long long t0 = now_ns();
            while (now_ns() - t0 < (unsigned long long)P.delay_ns)
                ;
        }
        if (P.sync_after) {
            cons_sync();
            nbar++;
            unsigned long long tb = now_ns();
            if (threadIdx.x == 0) {
                unsigned seen, target = nbar * gridDim.x;
                long long t0 = clock64();
                if (a.bar_kind == 1) {   /* the last to arrive raises a flag, the others poll it */
                    unsigned old;
                    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(a.bar) : "memory");
                    if (old == target - 1)
                        asm volatile("st.release.gpu.global.u32 [%0], %1;" ::"l"(a.bar + 32), "r"(nbar) : "memory");
                    else
                        do {
                            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(a.bar + 32) : "memory");
                            if (clock64() - t0 > (1ll << 32))
                                __trap();
                        } while ((int)(seen - nbar) < 0);
                } else {   /* 0: every block polls the count; 2: the same, polls 200 ns apart */
                    asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(a.bar) : "memory");
                    do {
                        asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(seen) : "l"(a.bar) : "memory");
                        if (clock64() - t0 > (1ll << 32))
                            __trap();
                        if (a.bar_kind == 2 && (int)(seen - target) < 0)
                            __nanosleep(200);
                    } while ((int)(seen - target) < 0);
                }
            }
            cons_sync();
            unsigned long long tr = now_ns();
            if (p + 1 < a.nph) {   /* the next input, written by every block */
                int n = c_ph[p + 1].in_len;
                for (int i = threadIdx.x; i < n; i += CW * 32)
                    xs[i] = __ldcg(&a.x[i % a.dim]) * 1e-3f;
                cons_sync();
            }
            if (threadIdx.x == 0) {
                atomicAdd(&a.tsum[0], tr - tb);
                atomicAdd(&a.tsum[1], now_ns() - tr);
            }
        }
    }
    if (lane == 0)
        atomicAdd(&a.sink[blockIdx.x], keep);
}

/* A plain streaming read at full occupancy: the read ceiling. */
__global__ void k_read(const uint4 *w, long long n, float *sink)
{
    float s = 0.f;
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x, stride = (long long)gridDim.x * blockDim.x;
    for (; i + 3 * stride < n; i += 4 * stride) {
        uint4 v0 = __ldcs(&w[i]), v1 = __ldcs(&w[i + stride]), v2 = __ldcs(&w[i + 2 * stride]),
              v3 = __ldcs(&w[i + 3 * stride]);
        s += __uint_as_float(v0.x ^ v1.y ^ v2.z ^ v3.w);
    }
    for (; i < n; i += stride)
        s += __uint_as_float(w[i].x);
    if (s == 1.2345f)
        sink[0] = s;
}

/* Times f(i) for i = 0 .. warm + reps - 1 with events around each call;
 * returns the last reps times in ms, sorted. */
template <typename F>
static std::vector<float> timed(cudaEvent_t e0, cudaEvent_t e1, int warm, int reps, F f)
{
    std::vector<float> t;
    for (int i = 0; i < warm + reps; i++) {
        CK(cudaEventRecord(e0));
        f(i);
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        CK(cudaGetLastError());
        float ms;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (i >= warm)
            t.push_back(ms);
    }
    std::sort(t.begin(), t.end());
    return t;
}

struct model {
    const char *name;
    int dim, hidden, nh, nkv, hd, layers, vocab;
};

static int build(const model &m, const char *mode, int att_ns, std::vector<phase> &ph, long long &bytes)
{
    ph.clear();
    long long off = 0;
    auto add = [&](int rows, int cols, int sync, int red, int delay, int in_len) {
        phase P = {off, rows, cols, sync, red, delay, in_len};
        off += (long long)rows * cols * 2;
        off = (off + 255) & ~255ll;
        ph.push_back(P);
    };
    int qd = m.nh * m.hd, kvd = m.nkv * m.hd;
    bool none = !strcmp(mode, "none"), k5 = !strcmp(mode, "k5"), k4 = !strcmp(mode, "k4"), k2 = !strcmp(mode, "k2");
    if (!none && !k5 && !k4 && !k2)
        return -1;
    for (int l = 0; l < m.layers; l++) {
        if (k5 || k4) {
            add(qd + 2 * kvd, m.dim, 1, 0, 0, m.dim);   /* qkv | */
            add(0, m.dim, 1, 0, att_ns, 0);             /* attention | */
        } else {
            add(qd + 2 * kvd, m.dim, 0, 0, att_ns, m.dim);   /* qkv, attention (a delay) */
        }
        add(m.dim, qd, !none, k2, 0, qd);                /* o (k2: reduced into x) */
        add(2 * m.hidden, m.dim, k5, 0, 0, m.dim);       /* gate/up */
        add(m.dim, m.hidden, !none, k4 || k2, 0, m.hidden);   /* down (k4, k2: reduced into x) */
    }
    add(m.vocab, m.dim, 0, 0, 0, m.dim);                 /* lm_head */
    bytes = 0;
    for (auto &P : ph)
        bytes += (long long)P.rows * P.cols * 2;
    return 0;
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 30;
    if (argc > 2 || steps < 1) {
        fprintf(stderr, "usage: mk_bound [steps >= 1] (variants through MK_* in the environment)\n");
        return 2;
    }
    int dev = 0, nsm;
    CK(cudaSetDevice(dev));
    CK(cudaDeviceGetAttribute(&nsm, cudaDevAttrMultiProcessorCount, dev));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));

    /* device-to-device copy bandwidth, read + written bytes per second */
    size_t cn = (size_t)1 << 30;
    void *ca, *cb;
    CK(cudaMalloc(&ca, cn));
    CK(cudaMalloc(&cb, cn));
    CK(cudaMemset(ca, 1, cn));
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    float best = timed(e0, e1, 2, 10, [&](int) { CK(cudaMemcpyAsync(cb, ca, cn, cudaMemcpyDeviceToDevice)); })[0];
    double copy_bw = 2.0 * cn / (best * 1e-3);
    CK(cudaFree(ca));
    CK(cudaFree(cb));
    printf("%s, %d SMs; d2d copy: read+write %.1f GB/s\n", prop.name, nsm, copy_bw / 1e9);

    model models[] = {{"tinyllama-1.1b", 2048, 5632, 32, 4, 64, 22, 32000},
                      {"llama-3.2-1b", 2048, 8192, 32, 8, 64, 16, 128256}};
    size_t wmax = (size_t)3 << 30;
    unsigned char *w;
    float *x, *sink;
    unsigned *bar;
    unsigned long long *tsum;
    CK(cudaMalloc(&tsum, 16));
    unsigned *cnt;
    CK(cudaMalloc(&cnt, 2 * MAX_PH * 4));
    CK(cudaMalloc(&w, wmax));
    CK(cudaMemset(w, 0x3c, wmax));
    CK(cudaMalloc(&x, 65536 * 4));
    CK(cudaMemset(x, 0, 65536 * 4));
    CK(cudaMalloc(&sink, 4096 * 4));
    CK(cudaMalloc(&bar, 256));

    const char *env_ns = getenv("MK_NS"), *env_st = getenv("MK_STAGE");
    const char *env_pf = getenv("MK_PF");
    int ns = env_ns ? atoi(env_ns) : 6, stage = (env_st ? atoi(env_st) : 32) * 1024;
    long long pf = env_pf ? atoll(env_pf) * 1024 : 0;
    int dyn = getenv("MK_DYN") ? atoi(getenv("MK_DYN")) : 0;
    int nop = getenv("MK_NOP") != NULL;
    int bar_kind = getenv("MK_BAR") ? atoi(getenv("MK_BAR")) : 0, dry = getenv("MK_DRY") != NULL;
    int infl = getenv("MK_INFL") ? atoi(getenv("MK_INFL")) * 1024 : 0;
    printf("barrier kind %d%s%s; ring %d x %d KiB, at most %d KiB in flight, L2 prefetch %lld KiB ahead, %s shares\n", bar_kind,
           dry ? " (dry: no weights)" : "", nop ? " (stages released unread)" : "", ns, stage / 1024,
           infl ? infl / 1024 : ns * stage / 1024, pf / 1024, dyn ? "claimed" : "fixed");
    for (const model &m : models) {
        std::vector<phase> ph;
        long long bytes;
        build(m, "none", 0, ph, bytes);
        /* the plain read of the same bytes */
        float rbest = timed(e0, e1, 2, 8, [&](int) { k_read<<<nsm * 4, 512>>>((const uint4 *)w, bytes / 16, sink); })[0];
        printf("\n%s: %.1f MB a step; plain read %.1f us = %.3f of copy\n", m.name, bytes / 1e6, rbest * 1e3,
               bytes / (rbest * 1e-3) / copy_bw);
        printf("  %-6s %6s %7s %8s %9s %7s %9s %9s\n", "struct", "att_us", "syncs", "barriers", "us/step", "share", "wait_us", "reload_us");
        struct { const char *mode; int att_us; } cfgs[] = {
            {"none", 0}, {"k5", 0}, {"k5", 7}, {"k4", 0}, {"k4", 7}, {"k2", 0}, {"k2", 3}, {"k2", 7}};
        for (auto &cf : cfgs) {
            build(m, cf.mode, cf.att_us * 1000, ph, bytes);
            if (dry)   /* no weights: the barriers' and reloads' own time */
                for (auto &P : ph)
                    P.rows = 0;
            if ((int)ph.size() > MAX_PH) {
                printf("  %s: too many phases\n", cf.mode);
                continue;
            }
            int nb = 0, in_max = m.dim;
            for (auto &P : ph) {
                nb += P.sync_after ? 1 : 0;
                in_max = std::max(in_max, P.cols);
            }
            CK(cudaMemcpyToSymbol(c_ph, ph.data(), ph.size() * sizeof(phase)));
            int ring_off = HDR + ((in_max * 4 + 127) & ~127);
            size_t smem = (size_t)ring_off + (size_t)ns * stage;
            CK(cudaFuncSetAttribute(k_skel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
            CK(cudaMemset(bar, 0, 256));
            CK(cudaMemset(tsum, 0, 16));
            CK(cudaMemset(cnt, 0, 2 * MAX_PH * 4));
            args a = {w, x, sink, tsum, bar, 0, (int)ph.size(), m.dim, ns, stage, ring_off, pf, infl, dyn, cnt, 0, nop, bar_kind};
            std::vector<float> t = timed(e0, e1, 3, steps, [&](int s) {
                a.base = (unsigned)(s * nb);
                a.epoch = (unsigned)s;
                k_skel<<<nsm, NTHREADS, smem>>>(a);
            });
            float med = t[t.size() / 2];
            unsigned long long ts[2];
            CK(cudaMemcpy(ts, tsum, 16, cudaMemcpyDeviceToHost));
            double per = nb ? (double)nb * nsm * (steps + 3) * 1e3 : 1.0;   /* barriers passed, over blocks, in us */
            printf("  %-6s %6d %7.1f %8d %9.1f %7.3f %9.2f %9.2f\n", cf.mode, cf.att_us, (double)nb / m.layers, nb,
                   med * 1e3, bytes / (med * 1e-3) / copy_bw, ts[0] / per, ts[1] / per);
        }
    }
    return 0;
}
