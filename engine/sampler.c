/* sampler.c - logits -> next token in stages (repetition penalty, presence and
 * frequency penalties, temperature, top-k, top-p, min-p, seeded draw), with the
 * probability of the leading candidates after every stage kept for display.
 *
 * Cost per step is a few linear passes over the vocabulary and a partial
 * selection: the vocabulary is never fully sorted unless top-p (with top-k off)
 * needs most of it. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REPORT_N SAMPLER_MAX_CANDS
#define FIRST_PREFIX 256          /* top-p without top-k: first sorted prefix size */
#define MAX_WINDOW (1 << 20)

typedef struct {
    float v;                      /* logit after the penalties */
    int i;                        /* token id */
} pair_t;

struct sampler {
    int n_vocab;
    sampler_params p;

    uint64_t rng[4];              /* xoshiro256** state */
    uint64_t rng_before[4];       /* state at the start of the last step (redo) */

    int *hist;                    /* ring of accepted tokens */
    int hist_cap, hist_n, hist_head;

    float *raw;                   /* [n_vocab] the last step's logits, as given */
    float *work;                  /* [n_vocab] after the penalties */
    int *count;                   /* [n_vocab] occurrences in the window (0 between steps) */
    int *touched;                 /* [hist_cap] distinct tokens of the window */
    pair_t *pairs;                /* [n_vocab] selection buffer */
    float *e;                     /* [n_vocab] exp((w - w_max) / T), temperature weights */

    /* the last step's figures, for the report and for sampler_force */
    bool have_step, greedy, full_mode;
    int n_touched;
    int n_pre;                    /* sorted prefix pairs[0..n_pre) */
    int n_cand;                   /* pairs[0..n_cand): candidates, all likelier than the rest */
    int chosen_pos;               /* where the drawn token sits in pairs[] */
    int n_k, n_p, n_m;            /* kept after top-k, top-p, min-p (prefix ranks) */
    double m_raw, z_raw, z_rep, z_pen;   /* softmax normalisers relative to m_raw */
    double m_w, z_t;              /* max after penalties, temperature normaliser */
    double z_k, z_p, z_m;         /* masses kept after top-k, top-p, min-p (of z_t = 1) */
    double minp_thr;              /* full mode: q >= thr survives min-p */
    sampler_report rep;
};

/* ------------------------------------------------------------ generator */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t xoshiro_next(uint64_t s[4])
{
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

void sampler_seed(sampler *s, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
}

/* uniform in [0, 1) with 53 random bits */
static double next_uniform(sampler *s) { return (double)(xoshiro_next(s->rng) >> 11) * 0x1p-53; }

/* ------------------------------------------------------------ params */

void sampler_params_default(sampler_params *p)
{
    *p = (sampler_params){
        .temperature = 0.7f, .top_k = 50, .top_p = 0.9f, .min_p = 0.0f,
        .repeat_penalty = 1.1f, .penalty_last_n = 64,
        .presence_penalty = 0.0f, .frequency_penalty = 0.0f, .seed = 0,
    };
}

int sampler_params_check(const sampler_params *p, eng_err *err)
{
    if (!isfinite(p->temperature) || p->temperature < 0)
        return eng_fail(err, ENG_EINPUT, "sampler: temperature must be >= 0 (got %g)", p->temperature);
    if (p->top_k < 0)
        return eng_fail(err, ENG_EINPUT, "sampler: top-k must be >= 0 (got %d)", p->top_k);
    if (!(p->top_p > 0 && p->top_p <= 1))
        return eng_fail(err, ENG_EINPUT, "sampler: top-p must be in (0, 1] (got %g)", p->top_p);
    if (!(p->min_p >= 0 && p->min_p <= 1))
        return eng_fail(err, ENG_EINPUT, "sampler: min-p must be in [0, 1] (got %g)", p->min_p);
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0)
        return eng_fail(err, ENG_EINPUT, "sampler: repeat penalty must be > 0 (got %g)",
                        p->repeat_penalty);
    if (p->penalty_last_n < 0 || p->penalty_last_n > MAX_WINDOW)
        return eng_fail(err, ENG_EINPUT, "sampler: penalty window must be in [0, %d] (got %d)",
                        MAX_WINDOW, p->penalty_last_n);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return eng_fail(err, ENG_EINPUT, "sampler: presence/frequency penalties must be finite");
    return ENG_OK;
}

/* ------------------------------------------------------------ lifetime */

static int grow_history(sampler *s, int want)
{
    if (want <= s->hist_cap) return ENG_OK;
    int *h = eng_malloc((size_t)want * sizeof *h);
    int *t = eng_malloc((size_t)want * sizeof *t);
    if (!h || !t) { eng_free(h); eng_free(t); return ENG_ENOMEM; }
    /* unroll the ring oldest first */
    for (int k = 0; k < s->hist_n; k++)
        h[k] = s->hist[(s->hist_head - s->hist_n + k + s->hist_cap) % s->hist_cap];
    eng_free(s->hist);
    eng_free(s->touched);
    s->hist = h;
    s->touched = t;
    s->hist_head = s->hist_n % want;
    s->hist_cap = want;
    return ENG_OK;
}

int sampler_new(sampler **out, int n_vocab, const sampler_params *p, eng_err *err)
{
    *out = NULL;
    int rc = sampler_params_check(p, err);
    if (rc != ENG_OK) return rc;
    if (n_vocab < 1) return eng_fail(err, ENG_EINPUT, "sampler: vocabulary size %d < 1", n_vocab);
    sampler *s = eng_calloc(1, sizeof *s);
    if (!s) return eng_fail(err, ENG_ENOMEM, "sampler: out of memory");
    s->n_vocab = n_vocab;
    s->p = *p;
    s->raw = eng_malloc((size_t)n_vocab * sizeof *s->raw);
    s->work = eng_malloc((size_t)n_vocab * sizeof *s->work);
    s->count = eng_calloc((size_t)n_vocab, sizeof *s->count);
    s->pairs = eng_malloc((size_t)n_vocab * sizeof *s->pairs);
    s->e = eng_malloc((size_t)n_vocab * sizeof *s->e);
    if (!s->raw || !s->work || !s->count || !s->pairs || !s->e ||
        grow_history(s, p->penalty_last_n > 64 ? p->penalty_last_n : 64) != ENG_OK) {
        sampler_free(s);
        return eng_fail(err, ENG_ENOMEM, "sampler: out of memory (vocabulary %d)", n_vocab);
    }
    sampler_seed(s, p->seed);
    s->rep.chosen = -1;
    *out = s;
    return ENG_OK;
}

void sampler_free(sampler *s)
{
    if (!s) return;
    eng_free(s->hist);
    eng_free(s->touched);
    eng_free(s->raw);
    eng_free(s->work);
    eng_free(s->count);
    eng_free(s->pairs);
    eng_free(s->e);
    eng_free(s);
}

int sampler_set_params(sampler *s, const sampler_params *p, eng_err *err)
{
    int rc = sampler_params_check(p, err);
    if (rc != ENG_OK) return rc;
    if (grow_history(s, p->penalty_last_n) != ENG_OK)
        return eng_fail(err, ENG_ENOMEM, "sampler: out of memory (penalty window %d)",
                        p->penalty_last_n);
    bool reseed = p->seed != s->p.seed;
    s->p = *p;
    if (reseed) sampler_seed(s, p->seed);
    return ENG_OK;
}

const sampler_params *sampler_get_params(const sampler *s) { return &s->p; }

void sampler_accept(sampler *s, int token)
{
    if (token < 0 || token >= s->n_vocab) return;
    s->hist[s->hist_head] = token;
    s->hist_head = (s->hist_head + 1) % s->hist_cap;
    if (s->hist_n < s->hist_cap) s->hist_n++;
}

void sampler_accept_many(sampler *s, const int *tokens, int n)
{
    for (int i = 0; i < n; i++) sampler_accept(s, tokens[i]);
}

void sampler_reset(sampler *s)
{
    s->hist_n = 0;
    s->hist_head = 0;
}

const char *sampler_stage_name(int stage)
{
    static const char *const names[SAMPLER_NSTAGES] = {
        "raw", "repeat", "presence", "temp", "top-k", "top-p", "min-p",
    };
    return stage >= 0 && stage < SAMPLER_NSTAGES ? names[stage] : "?";
}

const sampler_report *sampler_last(const sampler *s) { return &s->rep; }

/* ------------------------------------------------------------ selection */

/* Total order: larger logit first, then lower id (so ties are deterministic). */
static inline bool before(pair_t a, pair_t b) { return a.v > b.v || (a.v == b.v && a.i < b.i); }

static int cmp_pairs(const void *a, const void *b)
{
    pair_t x = *(const pair_t *)a, y = *(const pair_t *)b;
    return before(x, y) ? -1 : before(y, x) ? 1 : 0;
}

/* Rearranges p[0..n) so that p[0..k) are the k first in `before` order
 * (unsorted). Expected O(n): quickselect with a median-of-three pivot. */
static void select_top(pair_t *p, int n, int k)
{
    int lo = 0, hi = n - 1;
    if (k <= 0 || k >= n) return;
    while (hi > lo) {
        int mid = lo + (hi - lo) / 2;
        pair_t a = p[lo], b = p[mid], c = p[hi], piv;
        if (before(a, b)) piv = before(b, c) ? b : (before(a, c) ? c : a);
        else piv = before(a, c) ? a : (before(b, c) ? c : b);
        int i = lo, j = hi;
        while (i <= j) {
            while (before(p[i], piv)) i++;
            while (before(piv, p[j])) j--;
            if (i <= j) { pair_t t = p[i]; p[i] = p[j]; p[j] = t; i++; j--; }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else return;
    }
}

/* ------------------------------------------------------------ fast exp */

/* exp(x) for x <= 0 in float, to about 2e-7 relative (Cephes' expf
 * polynomial after reducing by powers of two); 0 below -87. Written with
 * GCC vector extensions so that the passes over the vocabulary run 8 lanes
 * wide. */
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

#define EXP_POLY(r, rr)                                                                 \
    ((((((1.9875691500e-4f * (r) + 1.3981999507e-3f) * (r) + 8.3334519073e-3f) * (r) + \
         4.1665795894e-2f) * (r) + 1.6666665459e-1f) * (r) + 5.0000001201e-1f) * (rr) + (r) + 1.0f)

static inline float exp_neg(float x)
{
    if (!(x > -87.0f)) return 0.0f;              /* also -inf and NaN */
    float t = x * 1.44269504089f + 0.5f;
    int n = (int)t;
    if ((float)n > t) n--;                       /* floor */
    float r = x - (float)n * 0.693359375f + (float)n * 2.12194440e-4f;
    union { int i; float f; } sc = { .i = (n + 127) << 23 };
    return EXP_POLY(r, r * r) * sc.f;
}

static inline v8f exp_neg8(v8f x)
{
    const v8f lo = {-87, -87, -87, -87, -87, -87, -87, -87};
    v8i alive = x > lo;                           /* false for -inf and NaN too */
    x = (v8f)((v8i)x & alive);                  /* masked lanes compute exp(0) */
    v8f t = x * 1.44269504089f + 0.5f;
    v8i n = __builtin_convertvector(t, v8i);
    v8f nf = __builtin_convertvector(n, v8f);
    v8i over = nf > t;
    n += over;                                    /* -1 where truncation rounded up */
    nf = __builtin_convertvector(n, v8f);
    v8f r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
    v8f y = EXP_POLY(r, r * r);
    v8i bits = (n + 127) << 23;
    union { v8i i; v8f f; } sc = { .i = bits };
    y *= sc.f;
    return (v8f)((v8i)y & alive);
}

/* out[i] = exp((x[i] - m) * scale) for i < n; returns the sum. */
static double exp_pass(const float *x, float *out, int n, float m, float scale)
{
    v8f acc = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v;
        memcpy(&v, x + i, sizeof v);
        v8f y = exp_neg8((v - m) * scale);
        if (out) memcpy(out + i, &y, sizeof y);
        acc += y;
    }
    double z = 0;
    for (int k = 0; k < 8; k++) z += acc[k];
    for (; i < n; i++) {
        float y = exp_neg((x[i] - m) * scale);
        if (out) out[i] = y;
        z += y;
    }
    return z;
}

/* Copies in[0..n) to out (NaN -> -inf) and returns the max; out may be in. */
static float sanitize_max(const float *in, float *out, int n)
{
    const v8f ninf = {-INFINITY, -INFINITY, -INFINITY, -INFINITY,
                      -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    v8f mx = ninf;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        v8f v;
        memcpy(&v, in + i, sizeof v);
        v8i ok = v == v;
        v = (v8f)(((v8i)v & ok) | ((v8i)ninf & ~ok));
        memcpy(out + i, &v, sizeof v);
        v8i gt = v > mx;
        mx = (v8f)(((v8i)v & gt) | ((v8i)mx & ~gt));
    }
    float m = -INFINITY;
    for (int k = 0; k < 8; k++) m = mx[k] > m ? mx[k] : m;
    for (; i < n; i++) {
        float x = in[i] == in[i] ? in[i] : -INFINITY;
        out[i] = x;
        m = x > m ? x : m;
    }
    return m;
}

/* ------------------------------------------------------------ selection */

/* Copies into pairs[] the tokens whose penalised logit is >= cut. */
static int gather(sampler *s, float cut)
{
    int n = 0;
    for (int i = 0; i < s->n_vocab; i++)
        if (s->work[i] >= cut) s->pairs[n++] = (pair_t){s->work[i], i};
    return n;
}

/* Makes pairs[0..k) the k best of pairs[0..n), sorted. */
static void sorted_prefix(sampler *s, int n, int k)
{
    select_top(s->pairs, n, k);
    qsort(s->pairs, (size_t)k, sizeof *s->pairs, cmp_pairs);
    s->n_pre = k;
}

static double q_of(const sampler *s, int t);

/* Rearranges p[0..n) so that p[0..k) are the k likeliest tokens, k the
 * smallest count whose temperature mass reaches target (all n if none
 * does); returns k. Expected O(n), no sort: a quickselect that keeps the
 * mass of each side. */
static int select_mass(const sampler *s, pair_t *p, int n, double target)
{
    int lo = 0, hi = n;
    double acc = 0;
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2, last = hi - 1;
        pair_t a = p[lo], b = p[mid], c = p[last];
        int piv_at = before(a, b) ? (before(b, c) ? mid : (before(a, c) ? last : lo))
                                  : (before(a, c) ? lo : (before(b, c) ? last : mid));
        pair_t piv = p[piv_at];
        p[piv_at] = p[last];
        p[last] = piv;
        int j = lo;
        double m_left = 0;
        for (int i = lo; i < last; i++) {
            if (!before(p[i], piv)) continue;
            pair_t t = p[i];
            p[i] = p[j];
            p[j++] = t;
            m_left += q_of(s, t.i);
        }
        p[last] = p[j];
        p[j] = piv;
        if (acc + m_left >= target) { hi = j; continue; }
        double m_piv = q_of(s, piv.i);
        if (acc + m_left + m_piv >= target) return j + 1;
        acc += m_left + m_piv;
        lo = j + 1;
    }
    return hi;
}

/* ------------------------------------------------------------ the stages */

static inline float rep_apply(float x, float rp) { return x > 0 ? x / rp : x * rp; }

static double q_of(const sampler *s, int t)           /* temperature probability */
{
    return s->e[t] / s->z_t;
}

/* Candidates: tokens within `delta` logits (times T) of the best, widened
 * until there are at least `need` of them and, when mass_need > 0, they hold
 * that share of the temperature distribution. Every token outside is less
 * likely than every token inside, so a sorted prefix of pairs[0..n) is a
 * sorted prefix of the whole vocabulary. */
static int candidates(sampler *s, float scale_t, int need, double mass_need)
{
    static const float deltas[] = {12.0f, 30.0f, 80.0f};
    for (size_t d = 0; d < sizeof deltas / sizeof deltas[0]; d++) {
        int n = gather(s, (float)s->m_w - deltas[d] * scale_t);
        if (n < need) continue;
        if (mass_need > 0) {
            double mass = 0;
            for (int r = 0; r < n; r++) mass += q_of(s, s->pairs[r].i);
            if (mass < mass_need) continue;
        }
        return n;
    }
    return gather(s, -INFINITY);
}

/* Runs every stage on s->raw and draws. */
static int run_step(sampler *s, int *token, eng_err *err)
{
    const int V = s->n_vocab;
    const sampler_params *p = &s->p;
    memcpy(s->rng_before, s->rng, sizeof s->rng);

    /* raw: NaN counts as -inf; the softmax normaliser relative to the max */
    float m = sanitize_max(s->raw, s->work, V);
    if (m == -INFINITY)
        return eng_fail(err, ENG_EINPUT, "sampler: every logit is NaN or -inf");
    s->m_raw = m;
    s->z_raw = exp_pass(s->work, NULL, V, m, 1.0f);

    /* the window: distinct tokens and their counts */
    int win = p->penalty_last_n < s->hist_n ? p->penalty_last_n : s->hist_n;
    s->n_touched = 0;
    for (int k = 0; k < win; k++) {
        int t = s->hist[(s->hist_head - 1 - k + 2 * s->hist_cap) % s->hist_cap];
        if (s->count[t]++ == 0) s->touched[s->n_touched++] = t;
    }

    /* repetition penalty (HF: divide positive logits, multiply negative ones),
     * then presence/frequency (OpenAI: minus count * freq + presence); the
     * normalisers change only by the touched tokens' terms */
    double z_rep = s->z_raw, z_pen;
    for (int k = 0; k < s->n_touched; k++) {
        int t = s->touched[k];
        float x0 = s->work[t], x1 = rep_apply(x0, p->repeat_penalty);
        s->work[t] = x1;
        z_rep += exp((double)x1 - m) - exp((double)x0 - m);
    }
    z_pen = z_rep;
    for (int k = 0; k < s->n_touched; k++) {
        int t = s->touched[k];
        float x0 = s->work[t];
        float x1 = x0 - (float)s->count[t] * p->frequency_penalty - p->presence_penalty;
        s->work[t] = x1;
        z_pen += exp((double)x1 - m) - exp((double)x0 - m);
    }
    s->z_rep = z_rep > 0 ? z_rep : 0;
    s->z_pen = z_pen > 0 ? z_pen : 0;
    for (int k = 0; k < s->n_touched; k++) s->count[s->touched[k]] = 0;

    float mw = sanitize_max(s->work, s->work, V);
    s->m_w = mw;
    s->greedy = p->temperature == 0;
    s->full_mode = false;
    const int report_n = REPORT_N < V ? REPORT_N : V;
    double u = next_uniform(s);
    int chosen;

    if (s->greedy) {
        /* temperature 0: the argmax, every later stage a one-hot */
        int n = candidates(s, 1.0f, report_n, 0);
        sorted_prefix(s, n, report_n);
        s->n_k = s->n_p = s->n_m = 1;
        s->z_t = s->z_k = s->z_p = s->z_m = 1;
        s->chosen_pos = 0;
        chosen = s->pairs[0].i;
    } else {
        /* temperature: q_i = exp((w_i - w_max) / T) / z_t over the whole vocabulary */
        s->z_t = exp_pass(s->work, s->e, V, mw, 1.0f / p->temperature);
        int K = p->top_k > 0 && p->top_k < V ? p->top_k : V;
        if (K == V && p->top_p >= 1) {
            /* no truncation by rank: min-p is a threshold over the whole
             * vocabulary (the top token has weight 1) */
            s->full_mode = true;
            int n = candidates(s, p->temperature, report_n, 0);
            sorted_prefix(s, n, report_n);
            const float thr = p->min_p;
            s->minp_thr = p->min_p / s->z_t;
            s->n_k = s->n_p = V;
            s->z_k = s->z_p = 1;
            double we = 0;
            int kept = 0;
            for (int i = 0; i < V; i++)
                if (s->e[i] >= thr && s->e[i] > 0) { we += s->e[i]; kept++; }
            s->z_m = we / s->z_t;
            s->n_m = kept;
            double target = u * we, acc = 0;
            s->chosen_pos = -1;                 /* the report looks at e[] here */
            chosen = s->pairs[0].i;
            for (int i = 0; i < V; i++) {
                if (!(s->e[i] >= thr && s->e[i] > 0)) continue;
                acc += s->e[i];
                chosen = i;
                if (acc > target) break;
            }
        } else {
            /* pairs[0..R) sorted: the top-k set (or the report's rows); with
             * top-k off, top-p's nucleus may reach into the unsorted rest */
            int R = K < V ? K : report_n;
            if (R < report_n) R = report_n;
            int nc = candidates(s, p->temperature, R, K < V ? 0 : p->top_p);
            sorted_prefix(s, nc, R);
            s->n_cand = nc;
            /* top-k */
            s->n_k = K < V ? K : nc;
            double zk = 1;                      /* nothing cut: the whole mass */
            if (K < V) {
                zk = 0;
                for (int r = 0; r < s->n_k; r++) zk += q_of(s, s->pairs[r].i);
            }
            s->z_k = zk;
            /* top-p on the renormalised distribution, at least one token:
             * the smallest most-likely-first prefix whose mass reaches p */
            double cum = 0;
            int np = 0, lim = s->n_k < R ? s->n_k : R;
            while (np < lim && (np == 0 || cum < p->top_p)) {
                cum += q_of(s, s->pairs[np].i) / zk;
                np++;
            }
            if (np == R && cum < p->top_p && K == V && nc > R) {
                np = R + select_mass(s, s->pairs + R, nc - R, p->top_p - cum);
                cum = 0;
                for (int r = 0; r < np; r++) cum += q_of(s, s->pairs[r].i);
            }
            s->n_p = np;
            s->z_p = cum * zk;
            /* min-p relative to the most likely token: in the sorted part a
             * prefix, in the unsorted rest a partition */
            double thr = p->min_p * q_of(s, s->pairs[0].i), zm = 0;
            int nm = 0;
            while (nm < np && nm < R && q_of(s, s->pairs[nm].i) >= thr) zm += q_of(s, s->pairs[nm++].i);
            if (nm == R) {
                for (int r = R; r < np; r++) {
                    double q = q_of(s, s->pairs[r].i);
                    if (q < thr) continue;
                    pair_t t = s->pairs[r];
                    s->pairs[r] = s->pairs[nm];
                    s->pairs[nm++] = t;
                    zm += q;
                }
            }
            s->n_m = nm;
            s->z_m = zm;
            /* the draw */
            double target = u * zm, acc = 0;
            s->chosen_pos = nm - 1;
            for (int r = 0; r < nm; r++) {
                acc += q_of(s, s->pairs[r].i);
                if (acc > target) { s->chosen_pos = r; break; }
            }
            chosen = s->pairs[s->chosen_pos].i;
        }
    }

    s->have_step = true;
    s->rep.u = u;
    s->rep.greedy = s->greedy;
    s->rep.forced = false;
    s->rep.n_kept = s->n_m;
    *token = chosen;
    return ENG_OK;
}

/* ------------------------------------------------------------ the report */

/* Whether token t is in the window of the last step, and how often. */
static int window_count(const sampler *s, int t)
{
    int win = s->p.penalty_last_n < s->hist_n ? s->p.penalty_last_n : s->hist_n, c = 0;
    for (int k = 0; k < win; k++)
        if (s->hist[(s->hist_head - 1 - k + 2 * s->hist_cap) % s->hist_cap] == t) c++;
    return c;
}

/* Position of token t in pairs[] (-1: not a candidate, so cut by every
 * truncating stage). Linear: only for a forced token. */
static int find_pos(const sampler *s, int t)
{
    int n = s->greedy || s->full_mode ? s->n_pre : s->n_cand;
    for (int r = 0; r < n; r++)
        if (s->pairs[r].i == t) return r;
    return -1;
}

static sampler_cand describe(const sampler *s, int t, int r)
{
    sampler_cand c = {.token = t, .logit = s->raw[t]};
    float raw = s->raw[t] != s->raw[t] ? -INFINITY : s->raw[t];
    int cnt = window_count(s, t);
    float rep = cnt ? rep_apply(raw, s->p.repeat_penalty) : raw;
    float w = s->work[t];
    c.prob[SAMPLER_ST_RAW] = (float)(exp((double)raw - s->m_raw) / s->z_raw);
    c.prob[SAMPLER_ST_REPEAT] = s->z_rep > 0 ? (float)(exp((double)rep - s->m_raw) / s->z_rep) : 0;
    c.prob[SAMPLER_ST_PRESENCE] = s->z_pen > 0 ? (float)(exp((double)w - s->m_raw) / s->z_pen) : 0;
    if (s->greedy) {
        float one = r == 0 ? 1.0f : 0.0f;
        for (int st = SAMPLER_ST_TEMP; st < SAMPLER_NSTAGES; st++) c.prob[st] = one;
        return c;
    }
    double q = q_of(s, t);
    c.prob[SAMPLER_ST_TEMP] = (float)q;
    if (s->full_mode) {
        c.prob[SAMPLER_ST_TOPK] = c.prob[SAMPLER_ST_TOPP] = (float)q;
        c.prob[SAMPLER_ST_MINP] = s->e[t] >= s->p.min_p && s->e[t] > 0 ? (float)(q / s->z_m) : 0;
        return c;
    }
    bool in_k = r >= 0 && r < s->n_k, in_p = r >= 0 && r < s->n_p, in_m = r >= 0 && r < s->n_m;
    if (s->n_k == s->n_vocab) in_k = true;
    c.prob[SAMPLER_ST_TOPK] = in_k ? (float)(q / s->z_k) : 0;
    c.prob[SAMPLER_ST_TOPP] = in_p ? (float)(q / s->z_p) : 0;
    c.prob[SAMPLER_ST_MINP] = in_m ? (float)(q / s->z_m) : 0;
    return c;
}

static void build_report(sampler *s, int chosen, int pos)
{
    sampler_report *rp = &s->rep;
    int n = s->n_pre < REPORT_N ? s->n_pre : REPORT_N;
    bool seen = false;
    for (int r = 0; r < n; r++) {
        rp->cands[r] = describe(s, s->pairs[r].i, r);
        if (s->pairs[r].i == chosen) seen = true;
    }
    if (!seen && n > 0) rp->cands[n - 1] = describe(s, chosen, pos);
    rp->n_cands = n;
    rp->chosen = chosen;
}

/* ------------------------------------------------------------ public steps */

int sampler_step(sampler *s, const float *logits, int *token, eng_err *err)
{
    memcpy(s->raw, logits, (size_t)s->n_vocab * sizeof *s->raw);
    int t, rc = run_step(s, &t, err);
    if (rc != ENG_OK) { s->have_step = false; return rc; }
    build_report(s, t, s->chosen_pos);
    *token = t;
    return ENG_OK;
}

int sampler_redo(sampler *s, int *token, eng_err *err)
{
    if (!s->have_step) return eng_fail(err, ENG_ERANGE, "sampler: no step to redo yet");
    memcpy(s->rng, s->rng_before, sizeof s->rng);
    int t, rc = run_step(s, &t, err);
    if (rc != ENG_OK) return rc;
    build_report(s, t, s->chosen_pos);
    *token = t;
    return ENG_OK;
}

int sampler_force(sampler *s, int token, eng_err *err)
{
    if (!s->have_step) return eng_fail(err, ENG_ERANGE, "sampler: no step to force a token into");
    if (token < 0 || token >= s->n_vocab)
        return eng_fail(err, ENG_ERANGE, "sampler: token %d outside the vocabulary (0..%d)", token,
                        s->n_vocab - 1);
    build_report(s, token, find_pos(s, token));
    s->rep.forced = true;
    return ENG_OK;
}
