/* test_viz_heatmap.c - causal heatmaps as half-block cells, windowing, the
 * masked triangle, the cursor, the layer strip and the layer x head grid. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "heatmap.h"

/* A dense n x n attention matrix for the accessor. */
typedef struct { int n; const float *p; } dense;
static float dense_at(const void *ctx, int q, int k)
{
    const dense *d = ctx;
    return d->p[q * d->n + k];
}

/* Uniform causal attention: row q spreads 1 over keys 0..q. */
static float uniform_at(const void *ctx, int q, int k) { (void)ctx; (void)k; return 1.0f / (float)(q + 1); }
/* Previous-token head: row q puts everything on key q - 1 (key 0 for q = 0). */
static float prev_at(const void *ctx, int q, int k) { (void)ctx; return k == (q > 0 ? q - 1 : 0) ? 1.0f : 0.0f; }
static float prev_head_at(const void *ctx, int l, int h, int q, int k)
{
    (void)l; (void)h;
    return prev_at(ctx, q, k);
}
static float layer_at(const void *ctx, int l, int h, int q, int k)
{
    (void)ctx; (void)h;
    return k == (l % (q + 1)) ? 1.0f : 0.0f;   /* layer l looks at key l (mod q+1) */
}

static viz_heat_opts opts(viz_depth d)
{
    viz_heat_opts o = {.depth = d, .theme = viz_theme_named("dark"), .gamma = 1.0f,
                       .cur_q = -1, .cur_k = -1, .show_cursor = false, .axis_rows = 0};
    return o;
}

static void window_shows_the_newest_items_and_keeps_the_cursor(void **state)
{
    (void)state;
    assert_int_equal(viz_window(5, 10, -1), 0);
    assert_int_equal(viz_window(100, 10, -1), 90);
    assert_int_equal(viz_window(100, 10, 95), 90);
    assert_int_equal(viz_window(100, 10, 20), 20);
}

static void half_blocks_put_the_upper_row_in_fg_and_the_lower_in_bg(void **state)
{
    (void)state;
    const float p[4] = {1.0f, 0.0f,
                        0.25f, 0.75f};
    dense d = {2, p};
    viz_grid g = {0};
    viz_grid_resize(&g, 20, 5);
    viz_heat_opts o = opts(VIZ_TRUECOLOR);
    viz_heat_info info;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 20, 5}, 2, dense_at, &d, NULL, &o, &info);
    assert_true(info.half);
    assert_int_equal(info.nq, 2);
    assert_int_equal(info.nk, 2);
    const viz_theme *t = viz_theme_named("dark");
    viz_cell *c0 = viz_grid_at(&g, info.map.x, info.map.y);
    viz_cell *c1 = viz_grid_at(&g, info.map.x + 1, info.map.y);
    assert_int_equal(c0->ch, 0x2580);
    assert_int_equal(c0->fg, viz_cmap_rgb(t->cmap, 1.0f));    /* q0 k0 */
    assert_int_equal(c0->bg, viz_cmap_rgb(t->cmap, 0.25f));   /* q1 k0 */
    assert_int_equal(c1->fg, t->masked);                      /* q0 k1: future, masked */
    assert_int_equal(c1->bg, viz_cmap_rgb(t->cmap, 0.75f));   /* q1 k1 */
    assert_int_equal(info.map.h, 1);                          /* two query rows in one text row */
    viz_grid_free(&g);
}

static void masked_cells_differ_from_zero_attention_at_every_depth(void **state)
{
    (void)state;
    const viz_theme *t = viz_theme_named("dark");
    for (int d = VIZ_TRUECOLOR; d <= VIZ_MONO; d++) {
        viz_cell z = viz_value_cell(0.0f, false, (viz_depth)d, t, 0.5f);
        viz_cell m = viz_value_cell(0.0f, true, (viz_depth)d, t, 0.5f);
        assert_true(z.ch != m.ch || z.bg != m.bg || z.fg != m.fg);
    }
    for (int i = 0; i < 3; i++) {
        const viz_theme *th = viz_theme_named(i == 0 ? "dark" : i == 1 ? "light" : "projector");
        assert_int_not_equal(viz_value_cell(0.0f, true, VIZ_256, th, 0.5f).bg,
                             viz_value_cell(0.0f, false, VIZ_256, th, 0.5f).bg);
    }
}

static void monochrome_uses_shades_one_row_per_query_and_dots_for_the_mask(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 24, 6);
    viz_heat_opts o = opts(VIZ_MONO);
    viz_heat_info info;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 24, 6}, 3, prev_at, NULL, NULL, &o, &info);
    assert_false(info.half);
    assert_int_equal(info.map.h, 3);
    int x = info.map.x, y = info.map.y;
    /* row 1 attends fully to key 0: a full block; key 1 is zero: blank; key 2 masked */
    assert_int_equal(viz_grid_at(&g, x + 0, y + 1)->ch, 0x2588);
    assert_int_equal(viz_grid_at(&g, x + 1, y + 1)->ch, ' ');
    assert_int_equal(viz_grid_at(&g, x + 2, y + 1)->ch, 0xB7);
    assert_int_equal(viz_grid_at(&g, x + 2, y + 1)->fg, VIZ_DEFAULT);
    viz_grid_free(&g);
}

static void long_sequences_window_around_the_newest_token(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 40, 10);
    viz_heat_opts o = opts(VIZ_256);
    viz_heat_info info;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 40, 10}, 500, uniform_at, NULL, NULL, &o, &info);
    assert_int_equal(info.q0 + info.nq, 500);
    assert_int_equal(info.k0 + info.nk, 500);
    assert_true(info.nk <= 40 && info.nk > 20);
    assert_int_equal(info.nq, 2 * 9);          /* 9 map rows, two queries each */
    assert_int_equal(info.cur_q, 499);
    viz_grid_free(&g);
}

static void the_cursor_reports_the_exact_value_and_defaults_to_the_row_maximum(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 60, 12);
    viz_heat_opts o = opts(VIZ_TRUECOLOR);
    o.show_cursor = true;
    viz_heat_info info;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 60, 12}, 8, prev_at, NULL, NULL, &o, &info);
    assert_int_equal(info.cur_q, 7);
    assert_int_equal(info.cur_k, 6);            /* previous-token head's maximum */
    assert_true(info.value == 1.0f);
    o.cur_q = 5; o.cur_k = 2;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 60, 12}, 8, uniform_at, NULL, NULL, &o, &info);
    assert_true(info.value == 1.0f / 6.0f);
    char row[256];
    viz_grid_row_utf8(&g, 11, row, sizeof row);
    assert_non_null(strstr(row, "q5 5 \xe2\x86\x92 k2 2 = 0.167"));
    /* the cursor's half of its cell takes the cursor colour */
    viz_cell *c = viz_grid_at(&g, info.map.x + 2 - info.k0, info.map.y + (5 - info.q0) / 2);
    assert_int_equal(c->bg, viz_theme_named("dark")->cursor);   /* q5 is a lower half */
    viz_grid_free(&g);
}

static void the_legend_shows_the_masked_cell_beside_the_colour_ramp(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 60, 12);
    viz_heat_opts o = opts(VIZ_TRUECOLOR);
    o.gamma = 0.5f;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 60, 12}, 8, uniform_at, NULL, NULL, &o, NULL);
    char row[256];
    viz_grid_row_utf8(&g, 11, row, sizeof row);
    const char *m = strstr(row, " masked 0 ");
    assert_non_null(m);
    assert_non_null(strstr(row, " 1 \xe2\x88\x9a"));   /* square-root colour scale */
    /* the cell before " masked" is drawn as the masked triangle is */
    int x = 60 - (10 + 4 + 3 + 9);
    assert_int_equal(viz_grid_at(&g, x, 11)->bg, viz_theme_named("dark")->masked);
    assert_int_equal(viz_grid_at(&g, x + 11, 11)->bg, viz_cmap_rgb(VIZ_VIRIDIS, 0.0f));
    /* monochrome: the dot that marks masked cells */
    o.depth = VIZ_MONO;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 60, 12}, 8, uniform_at, NULL, NULL, &o, NULL);
    assert_int_equal(viz_grid_at(&g, x, 11)->ch, 0xB7);
    /* too narrow for the swatch: the ramp alone */
    viz_grid_resize(&g, 40, 12);
    o.depth = VIZ_TRUECOLOR;
    o.show_cursor = true;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 40, 12}, 8, uniform_at, NULL, NULL, &o, NULL);
    viz_grid_row_utf8(&g, 11, row, sizeof row);
    assert_null(strstr(row, "masked"));
    assert_non_null(strstr(row, "0 "));
    viz_grid_free(&g);
}

static void fitting_gives_a_short_sequence_one_row_per_query_and_wide_cells(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 60, 12);
    viz_heat_opts o = opts(VIZ_TRUECOLOR);
    o.fit = true;
    const char *labels[4] = {"A", "B", "C", "D"};
    viz_heat_info info;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 60, 12}, 4, prev_at, NULL, labels, &o, &info);
    assert_false(info.half);
    assert_int_equal(info.map.h, 4);
    assert_int_equal(info.map.w, 8);                 /* 4 keys x 2 columns */
    char row[256];
    for (int q = 0; q < 4; q++) {                    /* each query's own label */
        viz_grid_row_utf8(&g, q, row, sizeof row);
        assert_int_equal(row[0], labels[q][0]);
    }
    /* q2 attends to k1 only: both columns of k1 bright, k3 (above the diagonal) masked */
    viz_color one = viz_cmap_rgb(VIZ_VIRIDIS, 1.0f);
    assert_int_equal(viz_grid_at(&g, info.map.x + 2, 2)->bg, one);
    assert_int_equal(viz_grid_at(&g, info.map.x + 3, 2)->bg, one);
    assert_int_equal(viz_grid_at(&g, info.map.x + 6, 2)->bg, viz_theme_named("dark")->masked);
    /* two columns per key carry two characters of its label per axis row */
    const char *two[4] = {"Ab", "Cd", "Ef", "Gh"};
    o.axis_rows = 2;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 60, 12}, 4, prev_at, NULL, two, &o, &info);
    viz_grid_row_utf8(&g, 10, row, sizeof row);
    assert_non_null(strstr(row, "AbCdEfGh"));
    o.axis_rows = 0;
    /* too many tokens for one row each: half blocks and one column again */
    viz_heatmap_draw(&g, (viz_rect){0, 0, 60, 12}, 40, prev_at, NULL, NULL, &o, &info);
    assert_true(info.half);
    assert_int_equal(info.map.w, 40);
    /* a half-block row is labelled with both of its queries */
    assert_int_equal(info.q0, 18);
    viz_grid_row_utf8(&g, 0, row, sizeof row);
    assert_memory_equal(row, "18 19", 5);
    viz_grid_free(&g);
}

static void labels_run_down_the_left_and_down_each_key_column(void **state)
{
    (void)state;
    const char *labels[4] = {"<s>", "the", "cat", "sat"};
    viz_grid g = {0};
    viz_grid_resize(&g, 40, 12);
    viz_heat_opts o = opts(VIZ_MONO);
    o.axis_rows = 4;
    viz_heat_info info;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 40, 12}, 4, uniform_at, NULL, labels, &o, &info);
    char row[256];
    viz_grid_row_utf8(&g, 2, row, sizeof row);
    assert_int_equal(strncmp(row, "cat", 3), 0);
    /* key labels read downwards under the map: row mh+1 holds first letters */
    int ay = 12 - 4 - 1;
    viz_grid_row_utf8(&g, ay + 1, row, sizeof row);
    assert_non_null(strstr(row, "<tcs"));
    viz_grid_row_utf8(&g, ay + 2, row, sizeof row);
    assert_non_null(strstr(row, "shaa"));
    viz_grid_free(&g);
}

static void projector_cells_are_two_columns_wide_and_show_fewer_keys(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 50, 10);
    viz_heat_opts o = opts(VIZ_256);
    viz_heat_info one, two;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 50, 10}, 200, prev_at, NULL, NULL, &o, &one);
    o.cell_w = 2;
    viz_heatmap_draw(&g, (viz_rect){0, 0, 50, 10}, 200, prev_at, NULL, NULL, &o, &two);
    assert_int_equal(two.nk, one.nk / 2);
    assert_int_equal(two.map.w, 2 * two.nk);
    assert_int_equal(two.k0 + two.nk, 200);
    for (int c = 0; c < two.nk; c++) {
        viz_cell *a = viz_grid_at(&g, two.map.x + 2 * c, two.map.y);
        viz_cell *b = viz_grid_at(&g, two.map.x + 2 * c + 1, two.map.y);
        assert_int_equal(a->fg, b->fg);
        assert_int_equal(a->bg, b->bg);
    }
    viz_grid_free(&g);
}

static void the_layer_strip_draws_one_row_per_layer_for_the_newest_token(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 30, 4);
    viz_heat_opts o = opts(VIZ_MONO);
    viz_strip_draw(&g, (viz_rect){0, 0, 30, 4}, 3, 2, 5, -1, layer_at, NULL, 1, &o);
    char row[256];
    for (int l = 0; l < 3; l++) {
        viz_grid_row_utf8(&g, l, row, sizeof row);
        assert_int_equal(row[0], 'L');
        assert_int_equal(row[1], '0' + l);
        /* the newest query (4) of layer l attends to key l only */
        for (int k = 0; k < 5; k++)
            assert_int_equal(viz_grid_at(&g, 4 + k, l)->ch, k == l ? 0x2588 : ' ');
    }
    assert_int_equal(viz_grid_at(&g, 0, 1)->attr & VIZ_REVERSE, VIZ_REVERSE);   /* selected */
    viz_grid_free(&g);
}

static void the_head_grid_groups_query_heads_by_their_kv_head(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 60, 12);
    viz_heat_opts o = opts(VIZ_MONO);
    char tags[8] = {0};
    tags[1 * 4 + 3] = 'P';
    viz_headgrid_draw(&g, (viz_rect){0, 0, 60, 12}, 2, 4, 2, 6, prev_head_at, NULL, 1, 2, tags, &o);
    char row[256];
    viz_grid_row_utf8(&g, 0, row, sizeof row);
    assert_non_null(strstr(row, "kv0"));
    assert_non_null(strstr(row, "kv1"));
    viz_grid_row_utf8(&g, 1, row, sizeof row);
    assert_non_null(strstr(row, "h3"));
    assert_non_null(strstr(row, "\xe2\x94\x82"));   /* │ between the two KV groups */
    /* a previous-token head at full resolution: tile row q has a block at key q-1 */
    int tw = (60 - 4 - 3) / 4;
    assert_true(tw >= 6);
    viz_cell *c = viz_grid_at(&g, 4 + 2, 2 + 3);      /* layer 0, head 0, q 3, k 2 */
    assert_int_equal(c->ch, 0x2588);
    /* the tag of layer 1, head 3 sits in its tile's top-left cell */
    int th = (12 - 2) / 2;
    viz_cell *tag = viz_grid_at(&g, 4 + 3 * (tw + 1), 2 + th);
    assert_int_equal(tag->ch, 'P');
    assert_true(tag->attr & VIZ_REVERSE);
    viz_grid_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(window_shows_the_newest_items_and_keeps_the_cursor),
        cmocka_unit_test(half_blocks_put_the_upper_row_in_fg_and_the_lower_in_bg),
        cmocka_unit_test(masked_cells_differ_from_zero_attention_at_every_depth),
        cmocka_unit_test(monochrome_uses_shades_one_row_per_query_and_dots_for_the_mask),
        cmocka_unit_test(long_sequences_window_around_the_newest_token),
        cmocka_unit_test(the_cursor_reports_the_exact_value_and_defaults_to_the_row_maximum),
        cmocka_unit_test(the_legend_shows_the_masked_cell_beside_the_colour_ramp),
        cmocka_unit_test(fitting_gives_a_short_sequence_one_row_per_query_and_wide_cells),
        cmocka_unit_test(labels_run_down_the_left_and_down_each_key_column),
        cmocka_unit_test(projector_cells_are_two_columns_wide_and_show_fewer_keys),
        cmocka_unit_test(the_layer_strip_draws_one_row_per_layer_for_the_newest_token),
        cmocka_unit_test(the_head_grid_groups_query_heads_by_their_kv_head),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
