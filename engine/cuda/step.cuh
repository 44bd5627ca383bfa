/* step.cuh - one decode step as one persistent kernel, and the same
 * warp-specialized ring for one matrix per kernel (included by kernels.cuh;
 * both opt-in, both measured slower than the kernel-per-matrix path).
 *
 * Decode reads every weight byte once per token, and a 1B model's matrices
 * are small: at the copy bandwidth a 2048 x 2048 BF16 matrix takes 2 us, less
 * than what a kernel boundary costs (launch, wait, the input's first round
 * trip, the grid's tail). So the whole step runs in one kernel, one block
 * per multiprocessor, all blocks resident (a cooperative launch):
 *
 *  - one producer warp per block streams the block's share of every matrix
 *    of the step, in the order the step uses them, through a ring of
 *    shared-memory stages (cp.async.bulk completing on an mbarrier per
 *    stage). The weights do not depend on any result, so the producer runs
 *    as far ahead as the ring allows and never waits for the phases: the
 *    memory keeps streaming while the consumers wait at a grid barrier or
 *    run attention;
 *  - the consumer warps run the phases of each layer (q/k/v, attention, o,
 *    gate/up, down, then lm_head), separated by grid-wide barriers (a
 *    counter in global memory). For a matrix they load the input vector into
 *    shared memory (RMS-normed where the model norms it), then take the
 *    stages in turn: warp w computes the rows (units) w, w + 16, ... of the
 *    block's share, and every warp releases every stage (an mbarrier the
 *    producer waits on before refilling it);
 *  - attention for one query is the same split-K scheme as k_attn_decode
 *    (chunks of keys over blocks, the last block of a KV head combines),
 *    done by the consumer warps between two barriers.
 *
 * Every wait has a time limit (about two seconds): a broken invariant traps
 * (a kernel error, reported as such) instead of hanging the program. */
#pragma once

namespace kern {

constexpr int ST_CW = 16;                    /* consumer warps */
constexpr int ST_THREADS = (ST_CW + 1) * 32; /* + the producer warp */
constexpr int ST_MAX_STAGES = 16;

struct st_layer {
    const void *wq, *wk, *wv, *wo, *wg, *wu, *wd;
    const float *bq, *bk, *bv, *attn_norm, *ffn_norm, *qn, *kn;
    float *K, *V;
};

struct st_args {
    const st_layer *L;          /* device (n_layers) */
    int n_layers;
    const void *embed, *lm;
    const float *final_norm, *inv_freq;
    const int *tok, *pos;       /* device: this step's token and position */
    float *x, *q, *k, *v, *att, *g, *logits;
    float *part_o, *part_ml;
    unsigned *ticket;           /* (nkv), zero between steps */
    unsigned *bar;              /* [0]: grid barrier arrivals, [1]: blocks done; zero between steps */
    int dim, hidden, vocab, nh, nkv, hd, S, n_split, min_chunk;
    float eps, scale;
    int ns, stage_bytes;        /* the ring: stages and bytes per stage */
    int inflight;               /* bytes the producer keeps in flight at most (0: the whole ring) */
    int aux_floats;             /* shared floats after the ring: inputs, attention scratch */
    int res_off;                /* in aux: the block's rows of x (o and down add into them) */
    unsigned long long *trace;  /* NULL, or ST_TRACE_N sums of ns (ATTNSCOPE_CUDA_STEP_TRACE) */
};

/* The trace: per job kind, ns summed over blocks and steps spent waiting at
 * grid barriers, in attention, loading the input, and in the products
 * (which includes waiting for the weights to arrive); then the kernel's
 * time per block, and the number of steps. */
enum { ST_T_WAIT = 0, ST_T_ATTN = 1, ST_T_INPUT = 2, ST_T_MV = 3, ST_T_SEGS = 4 };
constexpr int ST_TRACE_TOTAL = 5 * ST_T_SEGS, ST_TRACE_STEPS = ST_TRACE_TOTAL + 1, ST_TRACE_N = ST_TRACE_STEPS + 1;

__device__ __forceinline__ unsigned long long st_now()
{
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

enum { ST_QKV = 0, ST_O = 1, ST_GU = 2, ST_DOWN = 3, ST_LM = 4 };

/* One matrix job of the step: up to three row segments sharing the input
 * (q/k/v), or gate and up read as one unit per row (NR = 2). */
struct st_job {
    const char *w[3];
    const float *bias[3];
    float *y[3];
    int rows[3];
    int n_seg, cols, nr, units, kind;
};

__device__ __forceinline__ st_job st_job_of(const st_args &a, int j, int esz)
{
    st_job J = {};
    int l = j / 4, kind = j >= 4 * a.n_layers ? ST_LM : j % 4;
    J.kind = kind;
    J.nr = 1;
    J.n_seg = 1;
    if (kind == ST_LM) {
        J.w[0] = (const char *)a.lm;
        J.y[0] = a.logits;
        J.rows[0] = a.vocab;
        J.cols = a.dim;
    } else {
        const st_layer &L = a.L[l];
        int q_dim = a.nh * a.hd, kv_dim = a.nkv * a.hd;
        if (kind == ST_QKV) {
            J.n_seg = 3;
            J.w[0] = (const char *)L.wq; J.bias[0] = L.bq; J.y[0] = a.q; J.rows[0] = q_dim;
            J.w[1] = (const char *)L.wk; J.bias[1] = L.bk; J.y[1] = a.k; J.rows[1] = kv_dim;
            J.w[2] = (const char *)L.wv; J.bias[2] = L.bv; J.y[2] = a.v; J.rows[2] = kv_dim;
            J.cols = a.dim;
        } else if (kind == ST_O) {
            J.w[0] = (const char *)L.wo; J.y[0] = a.x; J.rows[0] = a.dim; J.cols = q_dim;
        } else if (kind == ST_GU) {
            J.nr = 2;
            J.w[0] = (const char *)L.wg; J.w[1] = (const char *)L.wu; J.y[0] = a.g;
            J.rows[0] = a.hidden; J.cols = a.dim;
        } else {
            J.w[0] = (const char *)L.wd; J.y[0] = a.x; J.rows[0] = a.dim; J.cols = a.hidden;
        }
    }
    J.units = J.n_seg == 3 ? J.rows[0] + J.rows[1] + J.rows[2] : J.rows[0];
    (void)esz;
    return J;
}

__device__ __forceinline__ void mbar_wait(uint64_t *b, unsigned parity)
{
    if (mbar_try_wait(b, parity))
        return;
    long long t0 = clock64();
    while (!mbar_try_wait(b, parity))
        check_time(t0);
}

__device__ __forceinline__ void mbar_arrive(uint64_t *b)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(b)) : "memory");
}

/* The consumer warps only (the producer never joins). */
__device__ __forceinline__ void cons_sync() { group_sync<ST_CW * 32>(); }

/* Grid barrier number k of the step (k = 1, 2, ...): every block's
 * consumers have finished what they wrote before it. */
__device__ void grid_barrier(unsigned *bar, unsigned k)
{
    cons_sync();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(bar, 1u);
        wait_at_least(bar, k * gridDim.x);
    }
    cons_sync();
}

/* Consumers: the input of a job into xs, RMS-normed by norm when set, and
 * (res, when set) x's rows [r0, r1) as they are. emb (layer 0's q/k/v): the
 * token's embedding row, which block 0 also writes to x, the residual
 * stream. Reads bypass L1 (other blocks wrote them in this kernel), all of
 * a thread's loads issued before their first use. */
template <typename T>
__device__ void st_input(float *xs, const float *x, const T *emb, float *x_out, const float *norm, float eps, int n,
                         float *red, float *res, const float *xres, int r0, int r1)
{
    constexpr int NT = ST_CW * 32, B = 4;
    float ss = 0.f;
    if (res)
        for (int i = r0 + threadIdx.x; i < r1; i += NT)
            res[i - r0] = __ldcg(&xres[i]);
    if (!emb && n % 4 == 0) {
        const float4 *x4 = reinterpret_cast<const float4 *>(x);
        float4 *xs4 = reinterpret_cast<float4 *>(xs);
        int n4 = n / 4;
        const float4 *g4 = reinterpret_cast<const float4 *>(norm);
        for (int base = threadIdx.x; base < n4; base += B * NT) {
            float4 v[B], g[B];   /* x and the norm weights, loaded together */
#pragma unroll
            for (int u = 0; u < B; u++)
                if (base + u * NT < n4) {
                    v[u] = __ldcg(&x4[base + u * NT]);
                    g[u] = norm ? __ldg(&g4[base + u * NT]) : make_float4(1.f, 1.f, 1.f, 1.f);
                }
#pragma unroll
            for (int u = 0; u < B; u++)
                if (base + u * NT < n4) {
                    xs4[base + u * NT] = make_float4(g[u].x * v[u].x, g[u].y * v[u].y, g[u].z * v[u].z, g[u].w * v[u].w);
                    ss += v[u].x * v[u].x + v[u].y * v[u].y + v[u].z * v[u].z + v[u].w * v[u].w;
                }
        }
        if (norm) {   /* xs holds norm * x: scale by 1 / rms */
            ss = block_sum<ST_CW * 32>(ss, red) / (float)n;
            float r = 1.0f / sqrtf(ss + eps);
            for (int i = threadIdx.x; i < n4; i += NT) {
                float4 w = xs4[i];
                xs4[i] = make_float4(w.x * r, w.y * r, w.z * r, w.w * r);
            }
        }
        cons_sync();
        return;
    } else {
        for (int i = threadIdx.x; i < n; i += NT) {
            float v = emb ? to_f32(emb[i]) : __ldcg(&x[i]);
            if (x_out)
                x_out[i] = v;
            xs[i] = v;
            ss += v * v;
        }
    }
    if (norm) {
        ss = block_sum<ST_CW * 32>(ss, red) / (float)n;
        float r = 1.0f / sqrtf(ss + eps);
        for (int i = threadIdx.x; i < n; i += NT)
            xs[i] = norm[i] * (xs[i] * r);
    }
    cons_sync();
}

/* Consumers: the attention items of this block for layer l (one query,
 * the context cut into chunks over (KV head, chunk) items; the last item of
 * a KV head to finish combines the partial softmaxes). cs: cos and sin at
 * the position. sm: scratch (G*hd + G*chunk + G*n_split floats). */
__device__ void st_attention(const st_args &a, const st_layer &L, int pos, const float *cs, float *sm, float *red,
                             bool *last)
{
    int G = a.nh / a.nkv, hd = a.hd, nk = pos + 1;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nt = ST_CW * 32;
    int chunk = (nk + a.n_split - 1) / a.n_split;
    if (chunk < a.min_chunk)
        chunk = a.min_chunk;
    int n_active = (nk + chunk - 1) / chunk;
    float *qs = sm, *ps = qs + G * hd, *wts = ps + G * chunk;
    for (int item = blockIdx.x; item < a.nkv * n_active; item += gridDim.x) {
        int g = item / n_active, split = item % n_active;
        int j0 = split * chunk, j1 = min(nk, j0 + chunk), n = j1 - j0;
        float *po = a.part_o + ((size_t)g * a.n_split + split) * G * hd;
        float *pml = a.part_ml + ((size_t)g * a.n_split + split) * G * 2;
        for (int i = threadIdx.x; i < G * hd; i += nt)
            qs[i] = __ldcg(&a.q[(size_t)g * G * hd + i]);
        cons_sync();
        for (int h = warp; h < G; h += ST_CW)
            head_norm_rope(qs + h * hd, hd, L.qn, a.eps, cs);
        if (pos < j1 && warp == ST_CW - 1) {   /* this item holds the new key */
            float *kc = L.K + ((size_t)g * a.S + pos) * hd, *vc = L.V + ((size_t)g * a.S + pos) * hd;
            for (int d = lane; d < hd; d += 32) {
                kc[d] = __ldcg(&a.k[g * hd + d]);
                vc[d] = __ldcg(&a.v[g * hd + d]);
            }
            __syncwarp();
            head_norm_rope(kc, hd, L.kn, a.eps, cs);
        }
        cons_sync();
        const float *Kg = L.K + ((size_t)g * a.S + j0) * hd;
        for (int i = threadIdx.x; i < n * G; i += nt) {
            int j = i % n, h = i / n;
            ps[h * chunk + j] = qk_dot<0>(qs + h * hd, Kg + (size_t)j * hd, hd) * a.scale;
        }
        cons_sync();
        for (int h = warp; h < G; h += ST_CW) {
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
        cons_sync();
        const float *Vg = L.V + ((size_t)g * a.S + j0) * hd;
        for (int i = threadIdx.x; i < G * hd; i += nt) {
            int h = i / hd, d = i % hd;
            const float *p = ps + h * chunk;
            float acc = 0.f;
#pragma unroll 8
            for (int j = 0; j < n; j++)
                acc += p[j] * Vg[(size_t)j * hd + d];
            po[i] = acc;
        }
        __threadfence();
        cons_sync();
        if (threadIdx.x == 0)
            *last = atomicAdd(&a.ticket[g], 1u) == (unsigned)n_active - 1;
        cons_sync();
        if (*last) {
            __threadfence();
            const float *ml0 = a.part_ml + (size_t)g * a.n_split * G * 2;
            const float *o0 = a.part_o + (size_t)g * a.n_split * G * hd;
            for (int h = warp; h < G; h += ST_CW) {
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
            cons_sync();
            for (int i = threadIdx.x; i < G * hd; i += nt) {
                const float *w = wts + (i / hd) * a.n_split;
                float acc = 0.f;
                for (int s = 0; s < n_active; s++)
                    acc += w[s] * __ldcg(&o0[(size_t)s * G * hd + i]);
                a.att[(size_t)g * G * hd + i] = acc;
            }
            if (threadIdx.x == 0)
                a.ticket[g] = 0;
        }
        cons_sync();   /* qs, ps and wts are free for the next item */
    }
    (void)red;
}

/* This block's units [u0, u1) of a job, in chunks of upc units. */
__device__ __forceinline__ void st_share(const st_job &J, int unit_bytes, int stage_bytes, int &u0, int &u1, int &upc)
{
    u0 = (int)((long long)J.units * blockIdx.x / gridDim.x);
    u1 = (int)((long long)J.units * (blockIdx.x + 1) / gridDim.x);
    upc = stage_bytes / unit_bytes;
    if (upc < 1)
        upc = 1;
}

/* Producer: units [u, u + n) of J into a stage (gate rows first, then up
 * rows at upc rows in; q/k/v rows may cross from one matrix into the next). */
__device__ void st_issue(const st_job &J, int row_bytes, int upc, unsigned char *stage, uint64_t *full, int u, int n)
{
    mbar_expect_tx(full, (unsigned)(n * J.nr * row_bytes));
    if (J.nr == 2) {
        bulk_load(stage, J.w[0] + (size_t)u * row_bytes, (unsigned)(n * row_bytes), full);
        bulk_load(stage + (size_t)upc * row_bytes, J.w[1] + (size_t)u * row_bytes, (unsigned)(n * row_bytes), full);
        return;
    }
    int s = 0, r = u, off = 0;
    while (n > 0) {
        while (s + 1 < J.n_seg && r >= J.rows[s]) {
            r -= J.rows[s];
            s++;
        }
        int k = min(n, J.rows[s] - r);
        bulk_load(stage + (size_t)off * row_bytes, J.w[s] + (size_t)r * row_bytes, (unsigned)(k * row_bytes), full);
        n -= k;
        off += k;
        r += k;
    }
}

/* A block's ring of shared-memory stages: the producer fills stage c % ns
 * (full: one arrival and the stage's bytes), the consumer warps release it
 * (empty: one arrival per consumer warp). */
struct st_ring {
    unsigned char *sm;          /* ns stages of stage_bytes */
    uint64_t *full, *empty;     /* (ns) each, in shared memory */
    int ns, stage_bytes;
};

/* Thread 0, before a __syncthreads: the ring's barriers. */
__device__ void ring_init(const st_ring &R, int consumer_warps)
{
    for (int i = 0; i < R.ns; i++) {
        mbar_init(&R.full[i], 1);
        mbar_init(&R.empty[i], consumer_warps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

/* The producer's place in the ring, carried from one job to the next: c
 * stages issued, the oldest (done) not yet seen complete, and the bytes in
 * flight. */
struct st_prod {
    int c, done;
    long fl;
    int bytes_of[ST_MAX_STAGES];
};

/* Producer (one thread): units [u0, u1) of J into the ring, upc a stage.
 * Bytes in flight are capped at inflight (0: the whole ring): beyond what
 * keeps the memory busy, more requests only lengthen the queues that the
 * consumers' own small loads (inputs, barrier polls, attention) wait in. */
__device__ void ring_produce(const st_ring &R, st_prod &P, const st_job &J, int row_bytes, int u0, int u1, int upc,
                             int inflight)
{
    for (int u = u0; u < u1; u += upc, P.c++) {
        int c = P.c, st = c % R.ns, n = min(upc, u1 - u), bytes = n * J.nr * row_bytes;
        if (c >= R.ns) {
            mbar_wait(&R.empty[st], (unsigned)((c / R.ns) - 1) & 1u);
            asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        }
        for (; P.done <= c - R.ns; P.done++)   /* stages being refilled were consumed */
            P.fl -= P.bytes_of[P.done % R.ns];
        while (inflight && P.done < c && P.fl + bytes > inflight) {
            mbar_wait(&R.full[P.done % R.ns], (unsigned)(P.done / R.ns) & 1u);
            P.fl -= P.bytes_of[P.done % R.ns];
            P.done++;
        }
        st_issue(J, row_bytes, upc, R.sm + (size_t)st * R.stage_bytes, &R.full[st], u, n);
        P.bytes_of[st] = bytes;
        P.fl += bytes;
    }
}

/* Consumers (CW warps): units [u0, u1) from the ring, upc a stage (two:
 * gate rows then up rows), each unit's products with xs (shared memory)
 * handed by lane 0 of the warp that owns it (unit u0 + k: warp k % CW) to
 * out(unit, gate or only product, up product); every warp releases every
 * stage. c: stages taken, carried from one job to the next. */
template <typename T, int CW, typename Out>
__device__ void ring_consume(const st_ring &R, int &c, int u0, int u1, int upc, int row_bytes, bool two,
                             const float *xs, Out out)
{
    constexpr int V = 16 / (int)sizeof(T);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nv = row_bytes / 16;
    for (int u = u0; u < u1; u += upc, c++) {
        int st = c % R.ns, n = min(upc, u1 - u);
        mbar_wait(&R.full[st], (unsigned)(c / R.ns) & 1u);
        const unsigned char *stage = R.sm + (size_t)st * R.stage_bytes;
        for (int i = (warp - (u - u0) % CW + CW) % CW; i < n; i += CW) {
            const uint4 *w0 = reinterpret_cast<const uint4 *>(stage + (size_t)i * row_bytes);
            const uint4 *w1 = reinterpret_cast<const uint4 *>(stage + (size_t)(upc + i) * row_bytes);
            float acc0 = 0.f, acc1 = 0.f;
#pragma unroll 4
            for (int k = lane; k < nv; k += 32) {
                const float *xk = xs + (size_t)k * V;
                acc0 += dot16(w0[k], xk, T{});
                if (two)
                    acc1 += dot16(w1[k], xk, T{});
            }
            acc0 = warp_sum(acc0);
            if (two)
                acc1 = warp_sum(acc1);
            if (lane == 0)
                out(u + i, acc0, acc1);
        }
        __syncwarp();
        if (lane == 0)
            mbar_arrive(&R.empty[st]);
    }
}

template <typename T>
__global__ void __launch_bounds__(ST_THREADS, 1) k_step(st_args a)
{
    extern __shared__ __align__(128) unsigned char st_sm[];
    __shared__ __align__(8) uint64_t full[ST_MAX_STAGES], empty[ST_MAX_STAGES];
    __shared__ float red[32];
    __shared__ bool last;
    float *aux = reinterpret_cast<float *>(st_sm + (size_t)a.ns * a.stage_bytes);
    float *cs = aux + a.aux_floats;   /* cos, sin at the position (hd) */
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int n_jobs = 4 * a.n_layers + 1, esz = (int)sizeof(T);

    const st_ring R = {st_sm, full, empty, a.ns, a.stage_bytes};
    if (threadIdx.x == 0)
        ring_init(R, ST_CW);
    __syncthreads();

    if (warp == ST_CW) {   /* the producer */
        if (lane != 0)
            return;
        st_prod P = {};
        for (int j = 0; j < n_jobs; j++) {
            st_job J = st_job_of(a, j, esz);
            int row_bytes = J.cols * esz, u0, u1, upc;
            st_share(J, row_bytes * J.nr, a.stage_bytes, u0, u1, upc);
            ring_produce(R, P, J, row_bytes, u0, u1, upc, a.inflight);
        }
        return;
    }

    /* the consumers */
    int pos = *a.pos;
    rope_table(cs, a.inv_freq, pos, a.hd / 2, threadIdx.x, ST_CW * 32);
    unsigned nb = 0;
    int c = 0;
    unsigned long long t_start = a.trace ? st_now() : 0, t0 = t_start;
    auto lap = [&](int kind, int seg) {   /* trace: the time since the last lap, thread 0 */
        if (a.trace && threadIdx.x == 0) {
            unsigned long long t = st_now();
            atomicAdd(&a.trace[kind * ST_T_SEGS + seg], t - t0);
            t0 = t;
        }
    };
    for (int j = 0; j < n_jobs; j++) {
        st_job J = st_job_of(a, j, esz);
        int l = j / 4;
        const float *in = a.x, *norm = NULL;
        const T *emb = NULL;
        float *x_out = NULL;
        if (J.kind == ST_QKV) {
            norm = a.L[l].attn_norm;
            if (l == 0) {
                emb = (const T *)a.embed + (size_t)*a.tok * a.dim;
                x_out = blockIdx.x == 0 ? a.x : NULL;
            } else {
                grid_barrier(a.bar, ++nb);
            }
        } else if (J.kind == ST_O) {
            grid_barrier(a.bar, ++nb);   /* q, k, v complete */
            lap(ST_O, ST_T_WAIT);
            st_attention(a, a.L[l], pos, cs, aux, red, &last);
            lap(ST_O, ST_T_ATTN);
            grid_barrier(a.bar, ++nb);   /* att complete */
            in = a.att;
        } else if (J.kind == ST_GU) {
            grid_barrier(a.bar, ++nb);
            norm = a.L[l].ffn_norm;
        } else if (J.kind == ST_DOWN) {
            grid_barrier(a.bar, ++nb);
            in = a.g;
        } else {
            grid_barrier(a.bar, ++nb);
            norm = a.final_norm;
        }
        lap(J.kind, ST_T_WAIT);
        int row_bytes = J.cols * esz, u0, u1, upc;
        st_share(J, row_bytes * J.nr, a.stage_bytes, u0, u1, upc);
        bool adds = J.kind == ST_O || J.kind == ST_DOWN;
        float *res = aux + a.res_off;
        st_input<T>(aux, in, emb, x_out, norm, a.eps, J.cols, red, adds ? res : NULL, a.x, u0, u1);
        lap(J.kind, ST_T_INPUT);
        ring_consume<T, ST_CW>(R, c, u0, u1, upc, row_bytes, J.nr == 2, aux, [&](int r, float acc0, float acc1) {
            int s = 0;
            if (J.kind == ST_GU) {
                J.y[0][r] = acc0 / (1.0f + expf(-acc0)) * acc1;
            } else if (adds) {
                J.y[0][r] = res[r - u0] + acc0;
            } else {
                while (s + 1 < J.n_seg && r >= J.rows[s]) {
                    r -= J.rows[s];
                    s++;
                }
                J.y[s][r] = acc0 + (J.bias[s] ? J.bias[s][r] : 0.f);
            }
        });
        cons_sync();   /* aux is read: the next job may overwrite it */
        lap(J.kind, ST_T_MV);
    }
    if (a.trace && threadIdx.x == 0) {
        atomicAdd(&a.trace[ST_TRACE_TOTAL], st_now() - t_start);
        if (blockIdx.x == 0)
            atomicAdd(&a.trace[ST_TRACE_STEPS], 1ull);
    }

    /* the last block out clears the counters for the next step */
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(&a.bar[1], 1u) == gridDim.x - 1) {
            a.bar[0] = 0;
            a.bar[1] = 0;
            __threadfence();
        }
    }
}

/* ---- matvec through a warp-specialized ring, one kernel per matrix ----
 *
 * k_mvr: k_step's streaming for one matrix (ATTNSCOPE_CUDA_MV=mvr). One
 * block per multiprocessor; its producer warp streams the block's
 * contiguous share of units (rows; gate + up rows) through a ring of
 * shared-memory stages (cp.async.bulk on mbarriers) from the moment the
 * block is resident, before griddepcontrol.wait, since the weights do not
 * depend on the previous kernel; MVR_CW consumer warps wait for it, load
 * the input and take the stages in turn, releasing each to the producer.
 * The block holds under half a multiprocessor's registers and shared
 * memory, so the next kernel's block becomes resident beside it and starts
 * its own stream while this one finishes: the stream does not stop at the
 * kernel boundary, and the boundary costs what programmatic dependent
 * launch costs instead of a grid barrier. Opt-in: at the ring sizes that
 * leave room for the next block (48-96 KiB) it streams at 1.8-2.3 TB/s,
 * 0.7-0.99x the register matvec (docs/performance.md). */
constexpr int MVR_CW = 8;
constexpr int MVR_THREADS = (MVR_CW + 1) * 32;

template <typename T, int NR>
__global__ void __launch_bounds__(MVR_THREADS, 1) k_mvr(mv_args a, int ns, int stage_bytes)
{
    extern __shared__ __align__(128) unsigned char mvr_sm[];
    __shared__ __align__(8) uint64_t full[ST_MAX_STAGES], empty[ST_MAX_STAGES];
    __shared__ float red[MVR_CW];
    float *xs = reinterpret_cast<float *>(mvr_sm + (size_t)ns * stage_bytes);
    st_job J = {};
    J.nr = NR;
    J.cols = a.cols;
    J.n_seg = NR == 2 ? 1 : a.n_seg;
    for (int s = 0; s < a.n_seg && s < 3; s++) {
        J.w[s] = (const char *)a.seg[s].w;
        J.rows[s] = a.seg[s].rows;
    }
    J.units = a.rows;
    int row_bytes = a.cols * (int)sizeof(T), u0, u1, upc;
    st_share(J, row_bytes * NR, stage_bytes, u0, u1, upc);

    tl_mark(a.tl, TL_START);
    const st_ring R = {mvr_sm, full, empty, ns, stage_bytes};
    if (threadIdx.x == 0)
        ring_init(R, MVR_CW);
    __syncthreads();
    if (threadIdx.x >> 5 == MVR_CW) {   /* the producer: needs nothing from the previous kernel */
        if ((threadIdx.x & 31) == 0) {
            st_prod P = {};
            ring_produce(R, P, J, row_bytes, u0, u1, upc, 0);
        }
        return;
    }
    pdl_wait();
    tl_mark(a.tl, TL_WAITED);
    pdl_launch_next();
    load_x<MVR_CW * 32>(xs, a.x, a.norm, a.eps, a.cols, red);
    int c = 0;
    ring_consume<T, MVR_CW>(R, c, u0, u1, upc, row_bytes, NR == 2, xs, [&](int r, float acc0, float acc1) {
        if (a.mode == MV_SWIGLU) {
            a.seg[0].y[r] = acc0 / (1.0f + expf(-acc0)) * acc1;
            return;
        }
        int s = 0;
        seg_locate(a, s, r);
        if (a.mode == MV_ADD)
            a.seg[s].y[r] += acc0;
        else
            a.seg[s].y[r] = acc0 + (a.seg[s].bias ? a.seg[s].bias[r] : 0.f);
    });
    if (a.tl) {
        group_sync<MVR_CW * 32>();
        tl_mark(a.tl, TL_END);
    }
}

}  // namespace kern
