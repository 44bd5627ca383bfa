/* test_viz_layout.c - pane placement for terminal sizes, and the too-small notice. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "layout.h"

static bool inside(viz_rect r, int w, int h)
{
    return r.x >= 0 && r.y >= 0 && r.w > 0 && r.h > 0 && r.x + r.w <= w && r.y + r.h <= h;
}

static bool overlap(viz_rect a, viz_rect b)
{
    return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

static void check_disjoint(const viz_layout *L, int w, int h)
{
    viz_rect rs[VIZ_NPANES + 2];
    int n = 0;
    for (int p = 0; p < VIZ_NPANES; p++)
        if (L->visible[p]) rs[n++] = L->pane[p];
    rs[n++] = L->input;
    rs[n++] = L->status;
    for (int i = 0; i < n; i++) {
        assert_true(inside(rs[i], w, h));
        for (int j = i + 1; j < n; j++) assert_false(overlap(rs[i], rs[j]));
    }
}

static void a_200x50_screen_shows_every_pane(void **state)
{
    (void)state;
    viz_layout L;
    viz_layout_compute(&L, 200, 50, 1, VIZ_PANE_ATTN);
    assert_false(L.too_small);
    assert_false(L.folded);
    for (int p = 0; p < VIZ_NPANES; p++) assert_true(L.visible[p]);
    check_disjoint(&L, 200, 50);
    assert_int_equal(L.status.y, 49);
    assert_true(L.pane[VIZ_PANE_ATTN].w >= 100);
    assert_true(L.pane[VIZ_PANE_ATTN].h >= 20);
}

static void an_80x24_screen_stacks_chat_over_one_folded_side_pane(void **state)
{
    (void)state;
    viz_layout L;
    for (int f = VIZ_PANE_ATTN; f <= VIZ_PANE_TIME; f++) {
        viz_layout_compute(&L, 80, 24, 1, (viz_pane)f);
        assert_false(L.too_small);
        assert_true(L.folded);
        assert_true(L.stacked);
        assert_true(L.visible[VIZ_PANE_CHAT]);
        for (int p = VIZ_PANE_ATTN; p <= VIZ_PANE_TIME; p++)
            assert_int_equal(L.visible[p], p == f);
        check_disjoint(&L, 80, 24);
        assert_int_equal(L.pane[f].w, 80);
        assert_true(L.pane[f].h >= 10);         /* room for a useful heatmap */
        assert_true(L.pane[VIZ_PANE_CHAT].h >= 6);
    }
}

static void medium_screens_put_the_folded_pane_beside_the_chat(void **state)
{
    (void)state;
    viz_layout L;
    viz_layout_compute(&L, 120, 30, 2, VIZ_PANE_CAND);
    assert_true(L.folded);
    assert_false(L.stacked);
    assert_true(L.visible[VIZ_PANE_CAND]);
    assert_int_equal(L.input.h, 2);
    check_disjoint(&L, 120, 30);
    assert_true(L.vsep_x > 0);
}

static void from_100x30_the_attention_pane_stays_above_a_shared_slot(void **state)
{
    (void)state;
    viz_layout L;
    for (int f = VIZ_PANE_ATTN; f <= VIZ_PANE_TIME; f++) {
        viz_layout_compute(&L, 120, 40, 1, (viz_pane)f);
        assert_true(L.folded);
        assert_true(L.split);
        assert_true(L.visible[VIZ_PANE_CHAT]);
        assert_true(L.visible[VIZ_PANE_ATTN]);
        viz_pane low = f == VIZ_PANE_TIME ? VIZ_PANE_TIME : VIZ_PANE_CAND;
        assert_true(L.visible[low]);
        assert_false(L.visible[low == VIZ_PANE_CAND ? VIZ_PANE_TIME : VIZ_PANE_CAND]);
        assert_int_equal(L.pane[low].y, L.pane[VIZ_PANE_ATTN].y + L.pane[VIZ_PANE_ATTN].h);
        assert_int_equal(L.pane[low].w, L.pane[VIZ_PANE_ATTN].w);
        assert_true(L.pane[VIZ_PANE_ATTN].h >= 15);   /* room for a useful heatmap */
        assert_true(L.pane[low].h >= 12);             /* and for the timings */
        check_disjoint(&L, 120, 40);
    }
    /* one row short: back to one slot for all three */
    viz_layout_compute(&L, 120, 29, 1, VIZ_PANE_CAND);
    assert_true(L.folded);
    assert_false(L.split);
    assert_false(L.visible[VIZ_PANE_ATTN]);
    viz_layout_compute(&L, 200, 50, 1, VIZ_PANE_CAND);
    assert_false(L.split);
}

static void input_rows_are_clamped_to_a_quarter_of_the_screen(void **state)
{
    (void)state;
    viz_layout L;
    viz_layout_compute(&L, 80, 24, 50, VIZ_PANE_ATTN);
    assert_int_equal(L.input.h, 6);
    viz_layout_compute(&L, 80, 24, 0, VIZ_PANE_ATTN);
    assert_int_equal(L.input.h, 1);
}

static void below_the_minimum_the_screen_says_what_it_needs(void **state)
{
    (void)state;
    viz_layout L;
    viz_layout_compute(&L, 40, 10, 1, VIZ_PANE_ATTN);
    assert_true(L.too_small);
    assert_int_equal(L.need_w, VIZ_MIN_W);
    assert_int_equal(L.need_h, VIZ_MIN_H);
    viz_layout_compute(&L, VIZ_MIN_W, VIZ_MIN_H, 1, VIZ_PANE_ATTN);
    assert_false(L.too_small);
    viz_grid g = {0};
    viz_grid_resize(&g, 40, 10);
    viz_draw_too_small(&g, 60, 16, VIZ_DEFAULT);
    char row[128];
    viz_grid_row_utf8(&g, 5, row, sizeof row);
    assert_non_null(strstr(row, "too small: need 60x16"));
    viz_grid_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_200x50_screen_shows_every_pane),
        cmocka_unit_test(an_80x24_screen_stacks_chat_over_one_folded_side_pane),
        cmocka_unit_test(medium_screens_put_the_folded_pane_beside_the_chat),
        cmocka_unit_test(from_100x30_the_attention_pane_stays_above_a_shared_slot),
        cmocka_unit_test(input_rows_are_clamped_to_a_quarter_of_the_screen),
        cmocka_unit_test(below_the_minimum_the_screen_says_what_it_needs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
