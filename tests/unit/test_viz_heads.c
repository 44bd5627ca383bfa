/* test_viz_heads.c - naming heads from their patterns: sink, previous token,
 * self, induction, and nothing for a diffuse head. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "heads.h"

static float prev_at(const void *ctx, int q, int k) { (void)ctx; return k == q - 1 ? 1.0f : (q == 0 ? 1.0f : 0.0f); }
static float sink_at(const void *ctx, int q, int k) { (void)ctx; (void)q; return k == 0 ? 1.0f : 0.0f; }
static float self_at(const void *ctx, int q, int k) { (void)ctx; return k == q ? 1.0f : 0.0f; }
static float uniform_at(const void *ctx, int q, int k) { (void)ctx; (void)k; return 1.0f / (float)(q + 1); }

/* An induction head: at a repeated token, attend to what followed its last
 * earlier occurrence; elsewhere, to the first token. */
static float induction_at(const void *ctx, int q, int k)
{
    const int *t = ctx;
    for (int j = q - 1; j >= 0; j--)
        if (t[j] == t[q] && j + 1 < q) return k == j + 1 ? 1.0f : 0.0f;
    return k == 0 ? 1.0f : 0.0f;
}

static const int seq[16] = {1, 17, 42, 9, 23, 5, 8, 30, 17, 42, 9, 23, 5, 8, 30, 2};
static int occ[16];

static int setup(void **state)
{
    (void)state;
    viz_prev_occurrence(seq, 16, occ);
    return 0;
}

static void earlier_occurrences_skip_the_last_two_positions(void **state)
{
    (void)state;
    const int t[6] = {4, 4, 4, 4, 7, 4};
    int o[6];
    viz_prev_occurrence(t, 6, o);
    assert_int_equal(o[0], -1);
    assert_int_equal(o[2], -1);      /* 4 at 0 and 1 are too close (j <= q - 3) */
    assert_int_equal(o[3], 0);
    assert_int_equal(o[4], -1);
    assert_int_equal(o[5], 2);
    assert_int_equal(occ[8], 1);     /* the second 17 */
    assert_int_equal(occ[15], -1);
}

static void a_previous_token_head_is_named_so(void **state)
{
    (void)state;
    viz_head_scores s;
    viz_head_score(prev_at, NULL, 16, occ, 0, &s);
    assert_int_equal(s.n_queries, 15);
    assert_true(s.prev == 1.0f);
    float score;
    assert_string_equal(viz_head_kind(&s, &score), "prev-token");
    assert_true(score == 1.0f);
}

static void a_first_token_sink_is_named_so(void **state)
{
    (void)state;
    viz_head_scores s;
    viz_head_score(sink_at, NULL, 16, occ, 0, &s);
    assert_string_equal(viz_head_kind(&s, NULL), "sink");
}

static void a_diagonal_head_is_named_self(void **state)
{
    (void)state;
    viz_head_scores s;
    viz_head_score(self_at, NULL, 16, occ, 0, &s);
    assert_string_equal(viz_head_kind(&s, NULL), "self");
}

static void an_induction_head_copies_what_followed_the_earlier_occurrence(void **state)
{
    (void)state;
    viz_head_scores s;
    viz_head_score(induction_at, seq, 16, occ, 0, &s);
    assert_int_equal(s.n_induction, 7);          /* tokens 17 42 9 23 5 8 30 seen again */
    assert_true(s.induction == 1.0f);
    assert_string_equal(viz_head_kind(&s, NULL), "induction");
    /* the previous-token head is not mistaken for one */
    viz_head_score(prev_at, NULL, 16, occ, 0, &s);
    assert_true(s.induction == 0.0f);
}

static void a_diffuse_head_gets_no_name(void **state)
{
    (void)state;
    viz_head_scores s;
    viz_head_score(uniform_at, NULL, 16, occ, 0, &s);
    assert_null(viz_head_kind(&s, NULL));
}

static void only_the_last_queries_are_scored_when_asked(void **state)
{
    (void)state;
    viz_head_scores s;
    viz_head_score(prev_at, NULL, 16, NULL, 4, &s);
    assert_int_equal(s.n_queries, 4);
    assert_int_equal(s.n_induction, 0);
    viz_head_score(prev_at, NULL, 1, NULL, 0, &s);
    assert_int_equal(s.n_queries, 0);
    assert_null(viz_head_kind(&s, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(earlier_occurrences_skip_the_last_two_positions),
        cmocka_unit_test(a_previous_token_head_is_named_so),
        cmocka_unit_test(a_first_token_sink_is_named_so),
        cmocka_unit_test(a_diagonal_head_is_named_self),
        cmocka_unit_test(an_induction_head_copies_what_followed_the_earlier_occurrence),
        cmocka_unit_test(a_diffuse_head_gets_no_name),
        cmocka_unit_test(only_the_last_queries_are_scored_when_asked),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
