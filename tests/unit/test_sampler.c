/* test_sampler.c - each sampling stage against hand-computed numbers, the
 * draw against its distribution (chi-square), seeds, redo/force, and the
 * 152k-vocabulary path (partial selection, no allocation per step). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

#define TOL 1e-5

static sampler_params plain(void)
{
    /* every stage a no-op unless a test turns it on */
    sampler_params p;
    sampler_params_default(&p);
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.seed = 1234;
    return p;
}

static sampler *make(int V, const sampler_params *p)
{
    sampler *s = NULL;
    eng_err err;
    if (sampler_new(&s, V, p, &err) != ENG_OK) fail_msg("sampler_new: %s", err.msg);
    return s;
}

static int step(sampler *s, const float *logits)
{
    int t = -1;
    eng_err err;
    if (sampler_step(s, logits, &t, &err) != ENG_OK) fail_msg("sampler_step: %s", err.msg);
    return t;
}

/* The report entry of token t (it must be there). */
static const sampler_cand *cand(const sampler *s, int t)
{
    const sampler_report *r = sampler_last(s);
    for (int i = 0; i < r->n_cands; i++)
        if (r->cands[i].token == t) return &r->cands[i];
    fail_msg("token %d is not among the report's candidates", t);
    return NULL;
}

static void assert_prob(const sampler *s, int t, int stage, double want)
{
    double got = cand(s, t)->prob[stage];
    if (fabs(got - want) > TOL)
        fail_msg("token %d after %s: %.7f, want %.7f", t, sampler_stage_name(stage), got, want);
}

/* ------------------------------------------------------------ params */

static void defaults_are_nanollamas(void **state)
{
    (void)state;
    sampler_params p;
    sampler_params_default(&p);
    assert_true(p.temperature == 0.7f && p.top_k == 50 && p.top_p == 0.9f && p.min_p == 0.0f);
    assert_true(p.repeat_penalty == 1.1f && p.penalty_last_n == 64);
    assert_true(p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
}

static void out_of_range_params_are_rejected_naming_the_field(void **state)
{
    (void)state;
    static const struct { const char *field; } names[] = {
        {"temperature"}, {"top-k"}, {"top-p"}, {"top-p"}, {"min-p"}, {"repeat penalty"},
        {"penalty window"}, {"temperature"},
    };
    for (int k = 0; k < 8; k++) {
        sampler_params p = plain();
        switch (k) {
        case 0: p.temperature = -0.1f; break;
        case 1: p.top_k = -1; break;
        case 2: p.top_p = 0.0f; break;
        case 3: p.top_p = 1.5f; break;
        case 4: p.min_p = 2.0f; break;
        case 5: p.repeat_penalty = 0.0f; break;
        case 6: p.penalty_last_n = -3; break;
        case 7: p.temperature = NAN; break;
        }
        eng_err err;
        sampler *s = NULL;
        assert_int_equal(sampler_params_check(&p, &err), ENG_EINPUT);
        assert_non_null(strstr(err.msg, names[k].field));
        assert_int_equal(sampler_new(&s, 10, &p, &err), ENG_EINPUT);
        assert_null(s);
    }
    /* set_params on error changes nothing */
    sampler_params p = plain();
    sampler *s = make(4, &p);
    sampler_params bad = p;
    bad.top_p = -1;
    eng_err err;
    assert_int_equal(sampler_set_params(s, &bad, &err), ENG_EINPUT);
    assert_true(sampler_get_params(s)->top_p == 1.0f);
    sampler_free(s);
}

/* ------------------------------------------------------------ stages by hand */

static void temperature_zero_takes_the_argmax_and_reports_one_hot(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.temperature = 0;
    sampler *s = make(5, &p);
    const float l[5] = {0.1f, 2.5f, -1.0f, 2.4f, 0.0f};
    for (int i = 0; i < 20; i++) assert_int_equal(step(s, l), 1);
    assert_true(sampler_last(s)->greedy);
    assert_int_equal(sampler_last(s)->n_kept, 1);
    for (int st = SAMPLER_ST_TEMP; st < SAMPLER_NSTAGES; st++) {
        assert_prob(s, 1, st, 1.0);
        assert_prob(s, 3, st, 0.0);
    }
    sampler_free(s);
}

static void softmax_of_the_raw_logits_is_reported(void **state)
{
    (void)state;
    sampler_params p = plain();
    sampler *s = make(3, &p);
    const float l[3] = {0.0f, 1.0f, 2.0f};
    step(s, l);
    /* e^0, e^1, e^2 = 1, 2.7182818, 7.3890561; sum 11.1073379 */
    assert_prob(s, 0, SAMPLER_ST_RAW, 0.0900306);
    assert_prob(s, 1, SAMPLER_ST_RAW, 0.2447285);
    assert_prob(s, 2, SAMPLER_ST_RAW, 0.6652410);
    assert_true(cand(s, 2)->logit == 2.0f);
    sampler_free(s);
}

static void repetition_penalty_divides_positive_and_multiplies_negative_logits(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.repeat_penalty = 2.0f;
    sampler *s = make(4, &p);
    const int hist[] = {0, 1, 1};
    sampler_accept_many(s, hist, 3);
    const float l[4] = {2.0f, -1.0f, 0.5f, 1.0f};
    step(s, l);
    /* penalised: 2/2 = 1, -1*2 = -2 (once, though seen twice), 0.5, 1
     * e: 2.7182818, 0.1353353, 1.6487213, 2.7182818; sum 7.2206202 */
    assert_prob(s, 0, SAMPLER_ST_REPEAT, 0.3764610);
    assert_prob(s, 1, SAMPLER_ST_REPEAT, 0.0187429);
    assert_prob(s, 2, SAMPLER_ST_REPEAT, 0.2283351);
    assert_prob(s, 3, SAMPLER_ST_REPEAT, 0.3764610);
    /* nothing else on: presence and temperature 1 leave it as is */
    assert_prob(s, 1, SAMPLER_ST_TEMP, 0.0187429);
    sampler_free(s);
}

static void penalties_see_only_the_last_n_tokens(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.repeat_penalty = 2.0f;
    p.penalty_last_n = 2;
    sampler *s = make(4, &p);
    const int hist[] = {0, 3, 3};        /* token 0 is out of the window */
    sampler_accept_many(s, hist, 3);
    const float l[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    step(s, l);
    /* 1, 1, 1, 0.5: e = 2.7182818 x3, 1.6487213; sum 9.8035667 */
    assert_prob(s, 0, SAMPLER_ST_REPEAT, 0.2772748);
    assert_prob(s, 3, SAMPLER_ST_REPEAT, 0.1681757);
    sampler_reset(s);
    step(s, l);
    assert_prob(s, 3, SAMPLER_ST_REPEAT, 0.25);
    sampler_free(s);
}

static void presence_and_frequency_penalties_subtract_per_token_and_per_count(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    sampler *s = make(3, &p);
    const int hist[] = {0, 0, 1};
    sampler_accept_many(s, hist, 3);
    const float l[3] = {1.0f, 1.0f, 1.0f};
    step(s, l);
    /* 1 - 2*0.25 - 0.5 = 0; 1 - 0.25 - 0.5 = 0.25; 1
     * e: 1, 1.2840254, 2.7182818; sum 5.0023072 */
    assert_prob(s, 0, SAMPLER_ST_PRESENCE, 0.1999078);
    assert_prob(s, 1, SAMPLER_ST_PRESENCE, 0.2566866);
    assert_prob(s, 2, SAMPLER_ST_PRESENCE, 0.5434056);
    assert_prob(s, 0, SAMPLER_ST_REPEAT, 1.0 / 3);     /* repetition penalty is 1 */
    sampler_free(s);
}

static void temperature_divides_the_logits(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.temperature = 0.5f;
    sampler *s = make(3, &p);
    const float l[3] = {1.0f, 2.0f, 3.0f};
    step(s, l);
    /* logits / 0.5 = 2, 4, 6: e^-4, e^-2, 1 = 0.0183156, 0.1353353, 1; sum 1.1536509 */
    assert_prob(s, 0, SAMPLER_ST_TEMP, 0.0158762);
    assert_prob(s, 1, SAMPLER_ST_TEMP, 0.1173104);
    assert_prob(s, 2, SAMPLER_ST_TEMP, 0.8668133);
    sampler_free(s);
}

static void top_k_keeps_the_k_most_likely_and_renormalises(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.top_k = 2;
    sampler *s = make(5, &p);
    const float l[5] = {3.0f, 4.0f, 2.0f, 1.0f, 0.0f};
    for (uint64_t seed = 0; seed < 200; seed++) {
        sampler_seed(s, seed);
        int t = step(s, l);
        assert_true(t == 0 || t == 1);
    }
    /* e^4 / (e^4 + e^3) = 1 / (1 + e^-1) = 0.7310586 */
    assert_prob(s, 1, SAMPLER_ST_TOPK, 0.7310586);
    assert_prob(s, 0, SAMPLER_ST_TOPK, 0.2689414);
    assert_prob(s, 2, SAMPLER_ST_TOPK, 0.0);
    assert_int_equal(sampler_last(s)->n_kept, 2);
    sampler_free(s);
}

static void top_p_keeps_the_smallest_prefix_reaching_p_and_at_least_one(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.top_p = 0.7f;
    sampler *s = make(4, &p);
    const float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    step(s, l);
    /* 0.5 < 0.7 so the second is kept; 0.8 >= 0.7 so the third is not */
    assert_prob(s, 0, SAMPLER_ST_TOPP, 0.625);
    assert_prob(s, 1, SAMPLER_ST_TOPP, 0.375);
    assert_prob(s, 2, SAMPLER_ST_TOPP, 0.0);
    assert_int_equal(sampler_last(s)->n_kept, 2);

    p.top_p = 0.01f;
    eng_err err;
    assert_int_equal(sampler_set_params(s, &p, &err), ENG_OK);
    for (int i = 0; i < 50; i++) assert_int_equal(step(s, l), 0);
    assert_prob(s, 0, SAMPLER_ST_TOPP, 1.0);
    sampler_free(s);
}

static void min_p_cuts_below_a_fraction_of_the_top_probability_in_both_modes(void **state)
{
    (void)state;
    const float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    for (int mode = 0; mode < 2; mode++) {
        sampler_params p = plain();
        p.min_p = 0.35f;                  /* threshold 0.175: keeps 0.5 and 0.3 */
        p.top_k = mode ? 3 : 0;           /* sorted-prefix path and whole-vocabulary path */
        sampler *s = make(4, &p);
        step(s, l);
        assert_prob(s, 0, SAMPLER_ST_MINP, 0.625);
        assert_prob(s, 1, SAMPLER_ST_MINP, 0.375);
        assert_prob(s, 2, SAMPLER_ST_MINP, 0.0);
        assert_int_equal(sampler_last(s)->n_kept, 2);
        sampler_free(s);
    }
}

static void the_worked_example_in_docs_sampling_md_holds(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.repeat_penalty = 1.1f;
    p.temperature = 0.7f;
    p.top_k = 4;
    p.top_p = 0.9f;
    p.min_p = 0.3f;
    sampler *s = make(6, &p);
    const int ctx[] = {1, 5};                     /* London, banana */
    sampler_accept_many(s, ctx, 2);
    const float l[6] = {3.0f, 2.5f, 2.0f, 1.0f, 0.5f, -1.0f};
    int t = step(s, l);
    static const double want[6][SAMPLER_NSTAGES] = {
        {0.4525, 0.4796, 0.4796, 0.5946, 0.6057, 0.6276, 0.7387},
        {0.2744, 0.2318, 0.2318, 0.2104, 0.2143, 0.2220, 0.2613},
        {0.1665, 0.1764, 0.1764, 0.1425, 0.1452, 0.1504, 0},
        {0.0612, 0.0649, 0.0649, 0.0341, 0.0348, 0, 0},
        {0.0371, 0.0394, 0.0394, 0.0167, 0, 0, 0},
        {0.0083, 0.0079, 0.0079, 0.0017, 0, 0, 0},
    };
    for (int i = 0; i < 6; i++)
        for (int st = 0; st < SAMPLER_NSTAGES; st++)
            if (fabs(cand(s, i)->prob[st] - want[i][st]) > 6e-5)
                fail_msg("token %d after %s: %.4f, the doc says %.4f", i, sampler_stage_name(st),
                         cand(s, i)->prob[st], want[i][st]);
    /* the doc's draw: u < 0.7387 gives Paris, above it London */
    assert_int_equal(t, sampler_last(s)->u < 0.7387 ? 0 : 1);
    assert_int_equal(sampler_last(s)->n_kept, 2);
    sampler_free(s);
}

/* ------------------------------------------------------------ the draw */

/* Chi-square of n draws against probs; df = k - 1. */
static double chi_square(sampler *s, const float *l, const double *probs, int k, int n)
{
    int counts[16] = {0};
    for (int i = 0; i < n; i++) {
        int t = step(s, l);
        assert_true(t >= 0 && t < k);
        counts[t]++;
    }
    double chi = 0;
    for (int i = 0; i < k; i++) {
        double e = probs[i] * n;
        if (e == 0) { assert_int_equal(counts[i], 0); continue; }
        chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi;
}

static void draws_follow_the_distribution_by_chi_square(void **state)
{
    (void)state;
    const double pr[6] = {0.4, 0.25, 0.15, 0.1, 0.07, 0.03};
    float l[6];
    for (int i = 0; i < 6; i++) l[i] = (float)log(pr[i]);

    /* whole-vocabulary path: df 5; chi-square above 20.52 has probability 0.001 */
    sampler_params p = plain();
    sampler *s = make(6, &p);
    double chi = chi_square(s, l, pr, 6, 100000);
    print_message("chi-square (no truncation, df 5, 100000 draws): %.2f, bound 20.52\n", chi);
    assert_true(chi < 20.52);
    sampler_free(s);

    /* sorted-prefix path: top-k 4 keeps 0.9 of the mass, top-p 0.95 keeps all four;
     * expected 4/9, 2.5/9, 1.5/9, 1/9, 0, 0; df 3; 0.001 bound 16.27 */
    p.top_k = 4;
    p.top_p = 0.95f;
    p.seed = 99;
    s = make(6, &p);
    const double pk[6] = {0.4 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0.1 / 0.9, 0, 0};
    chi = chi_square(s, l, pk, 6, 100000);
    print_message("chi-square (top-k 4, top-p 0.95, df 3, 100000 draws): %.2f, bound 16.27\n", chi);
    assert_true(chi < 16.27);
    sampler_free(s);

    /* temperature 2 flattens: q ~ sqrt(p) */
    p = plain();
    p.temperature = 2.0f;
    s = make(6, &p);
    double pt[6], z = 0;
    for (int i = 0; i < 6; i++) z += sqrt(pr[i]);
    for (int i = 0; i < 6; i++) pt[i] = sqrt(pr[i]) / z;
    chi = chi_square(s, l, pt, 6, 100000);
    print_message("chi-square (temperature 2, df 5, 100000 draws): %.2f, bound 20.52\n", chi);
    assert_true(chi < 20.52);
    sampler_free(s);
}

static void a_nucleus_beyond_the_sorted_rows_follows_the_distribution(void **state)
{
    (void)state;
    /* 40 tokens weighted 40, 39, ..., 1 (total 820); the first n hold
     * 40n - n(n-1)/2: 22 hold 649/820 = 0.791 < 0.8, 23 hold 667/820 = 0.813,
     * so top-p 0.8 keeps 23 (weights 18..40), more than the 16 sorted rows */
    enum { V = 40 };
    float l[V];
    double w[V], pr[V], z = 0;
    for (int i = 0; i < V; i++) {
        int id = (i * 7) % V;                 /* shuffled ids */
        w[id] = V - i;
        l[id] = (float)log(w[id]);
    }
    for (int i = 0; i < V; i++) if (w[i] >= 18) z += w[i];    /* 667 */
    for (int i = 0; i < V; i++) pr[i] = w[i] >= 18 ? w[i] / z : 0;
    sampler_params p = plain();
    p.top_p = 0.8f;
    p.seed = 5;
    sampler *s = make(V, &p);
    int counts[V] = {0};
    const int n = 200000;
    for (int k = 0; k < n; k++) counts[step(s, l)]++;
    assert_int_equal(sampler_last(s)->n_kept, 23);
    double chi = 0;
    for (int i = 0; i < V; i++) {
        if (pr[i] == 0) { assert_int_equal(counts[i], 0); continue; }
        chi += (counts[i] - pr[i] * n) * (counts[i] - pr[i] * n) / (pr[i] * n);
    }
    /* df 22: chi-square above 48.27 has probability 0.001 */
    print_message("chi-square (top-p 0.8 over 40 tokens, nucleus 23, df 22, %d draws): %.2f, "
                  "bound 48.27\n", n, chi);
    assert_true(chi < 48.27);
    /* min-p 0.6 inside that nucleus: weight >= 24 -> 17 tokens */
    p.min_p = 0.6f;
    eng_err err;
    assert_int_equal(sampler_set_params(s, &p, &err), ENG_OK);
    for (int k = 0; k < 2000; k++) assert_true(w[step(s, l)] >= 24);
    assert_int_equal(sampler_last(s)->n_kept, 17);
    sampler_free(s);
}

static void the_same_seed_gives_the_same_sequence(void **state)
{
    (void)state;
    sampler_params p = plain();
    p.seed = 7;
    sampler *a = make(6, &p), *b = make(6, &p);
    p.seed = 8;
    sampler *c = make(6, &p);
    const float l[6] = {1, 1, 1, 1, 1, 1};
    int diff = 0;
    for (int i = 0; i < 200; i++) {
        int x = step(a, l), y = step(b, l), z = step(c, l);
        assert_int_equal(x, y);
        diff += x != z;
    }
    assert_true(diff > 50);
    sampler_seed(a, 7);
    sampler_seed(b, 7);
    for (int i = 0; i < 50; i++) assert_int_equal(step(a, l), step(b, l));
    sampler_free(a);
    sampler_free(b);
    sampler_free(c);
}

static void redo_reruns_the_step_with_new_settings_and_the_same_number(void **state)
{
    (void)state;
    sampler_params p = plain();
    sampler *s = make(6, &p);
    const float l[6] = {0.5f, 0.1f, 0.4f, 0.3f, 0.2f, 0.0f};
    eng_err err;
    int t;
    assert_int_equal(sampler_redo(s, &t, &err), ENG_ERANGE);
    int first = step(s, l);
    double u = sampler_last(s)->u;
    p.temperature = 0;
    assert_int_equal(sampler_set_params(s, &p, &err), ENG_OK);
    assert_int_equal(sampler_redo(s, &t, &err), ENG_OK);
    assert_int_equal(t, 0);
    assert_true(sampler_last(s)->greedy);
    p.temperature = 1;
    assert_int_equal(sampler_set_params(s, &p, &err), ENG_OK);
    assert_int_equal(sampler_redo(s, &t, &err), ENG_OK);
    assert_int_equal(t, first);
    assert_true(sampler_last(s)->u == u);
    /* the next step draws a fresh number */
    step(s, l);
    assert_true(sampler_last(s)->u != u);
    sampler_free(s);
}

static void a_forced_token_is_marked_and_reported(void **state)
{
    (void)state;
    sampler_params p = plain();
    const int V = 100;
    sampler *s = make(V, &p);
    float l[100];
    for (int i = 0; i < V; i++) l[i] = (float)(V - i) * 0.1f;   /* token 0 most likely */
    eng_err err;
    assert_int_equal(sampler_force(s, 3, &err), ENG_ERANGE);    /* no step yet */
    step(s, l);
    assert_int_equal(sampler_force(s, V, &err), ENG_ERANGE);
    assert_int_equal(sampler_force(s, 97, &err), ENG_OK);
    const sampler_report *r = sampler_last(s);
    assert_true(r->forced);
    assert_int_equal(r->chosen, 97);
    assert_int_equal(r->n_cands, SAMPLER_MAX_CANDS);
    assert_true(cand(s, 97)->prob[SAMPLER_ST_RAW] > 0);
    assert_true(cand(s, 97)->logit == l[97]);
    sampler_free(s);
}

static void the_report_lists_candidates_in_order_with_the_chosen_one(void **state)
{
    (void)state;
    sampler_params p;
    sampler_params_default(&p);
    const int V = 1000;
    sampler *s = make(V, &p);
    float *l = malloc(V * sizeof *l);
    srand(5);
    for (int i = 0; i < V; i++) l[i] = (float)rand() / RAND_MAX * 8.0f;
    for (int k = 0; k < 100; k++) {
        int t = step(s, l);
        const sampler_report *r = sampler_last(s);
        assert_int_equal(r->chosen, t);
        assert_false(r->forced);
        assert_true(r->n_kept >= 1 && r->n_kept <= 50);
        cand(s, t);
        double sum = 0;
        for (int i = 0; i < r->n_cands; i++) {
            if (i > 0 && r->cands[i].token != t)
                assert_true(r->cands[i - 1].prob[SAMPLER_ST_PRESENCE] >=
                            r->cands[i].prob[SAMPLER_ST_PRESENCE]);
            sum += r->cands[i].prob[SAMPLER_ST_MINP];
        }
        assert_true(sum <= 1.0 + 1e-5);
        assert_true(cand(s, t)->prob[SAMPLER_ST_MINP] > 0);
        sampler_accept(s, t);
    }
    free(l);
    sampler_free(s);
}

static void impossible_logits_are_input_errors_and_nan_counts_as_minus_infinity(void **state)
{
    (void)state;
    sampler_params p = plain();
    sampler *s = make(3, &p);
    const float dead[3] = {NAN, -INFINITY, NAN};
    int t;
    eng_err err;
    assert_int_equal(sampler_step(s, dead, &t, &err), ENG_EINPUT);
    const float some[3] = {NAN, -INFINITY, 0.0f};
    for (int i = 0; i < 20; i++) assert_int_equal(step(s, some), 2);
    sampler_free(s);
}

/* ------------------------------------------------------------ big vocabulary */

static int cmp_desc(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void a_152k_vocabulary_step_allocates_nothing_and_respects_top_k_and_top_p(void **state)
{
    (void)state;
    const int V = 152064;
    float *l = malloc(V * sizeof *l), *sorted = malloc(V * sizeof *sorted);
    srand(11);
    for (int i = 0; i < V; i++) {   /* a long-tailed, logit-like spread */
        double u = (rand() + 1.0) / ((double)RAND_MAX + 2.0);
        l[i] = (float)(-log(-log(u)) * 2.0);
    }
    memcpy(sorted, l, V * sizeof *l);
    qsort(sorted, V, sizeof *sorted, cmp_desc);

    sampler_params p;
    sampler_params_default(&p);
    sampler *s = make(V, &p);
    for (int k = 0; k < 50; k++) sampler_accept(s, k * 13);
    long before = eng_alloc_count();
    double t0 = eng_now_ms();
    const int steps = 200;
    for (int k = 0; k < steps; k++) {
        int t = step(s, l);
        /* top-k 50 (penalties only lower logits here, and only 50 of them) */
        int rank = 0;
        for (int i = 0; i < V; i++) rank += l[i] > l[t];
        assert_true(rank < 100);
    }
    double ms = (eng_now_ms() - t0) / steps;
    assert_int_equal(eng_alloc_count(), before);
    print_message("sampler step, vocabulary %d, defaults (top-k 50, top-p 0.9, penalty over 50): "
                  "%.3f ms\n", V, ms);

    /* top-k off: top-p alone must find its prefix without a full sort */
    p.top_k = 0;
    p.repeat_penalty = 1.0f;
    p.temperature = 1.0f;
    eng_err err;
    assert_int_equal(sampler_set_params(s, &p, &err), ENG_OK);
    double mx = sorted[0], z = 0;
    for (int i = 0; i < V; i++) z += exp(sorted[i] - mx);
    t0 = eng_now_ms();
    for (int k = 0; k < steps; k++) {
        int t = step(s, l);
        /* the mass strictly above the drawn token is below top-p */
        double above = 0;
        for (int i = 0; i < V && sorted[i] > l[t]; i++) above += exp(sorted[i] - mx) / z;
        assert_true(above < p.top_p + 1e-4);
    }
    print_message("sampler step, vocabulary %d, top-k off, top-p 0.9 (kept %d tokens): %.3f ms\n",
                  V, sampler_last(s)->n_kept, (eng_now_ms() - t0) / steps);

    /* a flat distribution: the nucleus holds most of the vocabulary */
    for (int i = 0; i < V; i++) l[i] *= 0.15f;
    for (int i = 0; i < V; i++) sorted[i] *= 0.15f;
    mx = sorted[0];
    z = 0;
    for (int i = 0; i < V; i++) z += exp(sorted[i] - mx);
    double cum = 0;
    int want = 0;
    while (want < V && cum < p.top_p) cum += exp(sorted[want++] - mx) / z;
    t0 = eng_now_ms();
    for (int k = 0; k < 20; k++) step(s, l);
    int kept = sampler_last(s)->n_kept;
    print_message("sampler step, vocabulary %d, flat logits, top-k off, top-p 0.9 (kept %d tokens): "
                  "%.3f ms\n", V, kept, (eng_now_ms() - t0) / 20);
    assert_true(abs(kept - want) <= 1);
    free(l);
    free(sorted);
    sampler_free(s);
}

static void every_allocation_failure_in_new_is_reported(void **state)
{
    (void)state;
    sampler_params p;
    sampler_params_default(&p);
    int ok_at = 0;
    for (long n = 1; n < 20 && !ok_at; n++) {
        sampler *s = NULL;
        eng_err err;
        eng_alloc_fail_at(n);
        int rc = sampler_new(&s, 1000, &p, &err);
        eng_alloc_fail_at(0);
        if (rc == ENG_OK) { ok_at = (int)n; sampler_free(s); continue; }
        assert_int_equal(rc, ENG_ENOMEM);
        assert_null(s);
    }
    assert_true(ok_at > 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_nanollamas),
        cmocka_unit_test(out_of_range_params_are_rejected_naming_the_field),
        cmocka_unit_test(temperature_zero_takes_the_argmax_and_reports_one_hot),
        cmocka_unit_test(softmax_of_the_raw_logits_is_reported),
        cmocka_unit_test(repetition_penalty_divides_positive_and_multiplies_negative_logits),
        cmocka_unit_test(penalties_see_only_the_last_n_tokens),
        cmocka_unit_test(presence_and_frequency_penalties_subtract_per_token_and_per_count),
        cmocka_unit_test(temperature_divides_the_logits),
        cmocka_unit_test(top_k_keeps_the_k_most_likely_and_renormalises),
        cmocka_unit_test(top_p_keeps_the_smallest_prefix_reaching_p_and_at_least_one),
        cmocka_unit_test(min_p_cuts_below_a_fraction_of_the_top_probability_in_both_modes),
        cmocka_unit_test(the_worked_example_in_docs_sampling_md_holds),
        cmocka_unit_test(draws_follow_the_distribution_by_chi_square),
        cmocka_unit_test(a_nucleus_beyond_the_sorted_rows_follows_the_distribution),
        cmocka_unit_test(the_same_seed_gives_the_same_sequence),
        cmocka_unit_test(redo_reruns_the_step_with_new_settings_and_the_same_number),
        cmocka_unit_test(a_forced_token_is_marked_and_reported),
        cmocka_unit_test(the_report_lists_candidates_in_order_with_the_chosen_one),
        cmocka_unit_test(impossible_logits_are_input_errors_and_nan_counts_as_minus_infinity),
        cmocka_unit_test(a_152k_vocabulary_step_allocates_nothing_and_respects_top_k_and_top_p),
        cmocka_unit_test(every_allocation_failure_in_new_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
