/* test_viz_spark.c - sparklines, eighth-block bars and percentiles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "spark.h"

static void sparkline_scales_from_zero_to_the_maximum(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 10, 1);
    const float v[4] = {1.0f, 2.0f, 4.0f, 8.0f};
    assert_int_equal(viz_spark_draw(&g, 0, 0, 10, v, 4, 0.0f, VIZ_DEFAULT, VIZ_DEFAULT), 4);
    assert_int_equal(g.cells[0].ch, 0x2581);   /* 1/8 */
    assert_int_equal(g.cells[1].ch, 0x2582);   /* 2/8 */
    assert_int_equal(g.cells[2].ch, 0x2584);   /* 4/8 */
    assert_int_equal(g.cells[3].ch, 0x2588);   /* 8/8 */
    assert_int_equal(g.cells[4].ch, ' ');
    viz_grid_free(&g);
}

static void sparklines_sharing_a_maximum_compare_by_height(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 4, 2);
    const float on[2] = {1.0f, 1.0f}, off[2] = {4.0f, 8.0f};
    viz_spark_draw(&g, 0, 0, 4, on, 2, 8.0f, VIZ_DEFAULT, VIZ_DEFAULT);
    viz_spark_draw(&g, 0, 1, 4, off, 2, 8.0f, VIZ_DEFAULT, VIZ_DEFAULT);
    assert_int_equal(viz_grid_at(&g, 0, 0)->ch, 0x2581);
    assert_int_equal(viz_grid_at(&g, 0, 1)->ch, 0x2584);
    assert_int_equal(viz_grid_at(&g, 1, 1)->ch, 0x2588);
    viz_grid_free(&g);
}

static void a_fitted_sparkline_averages_the_whole_series_into_the_width(void **state)
{
    (void)state;
    viz_grid g = {0};
    assert_int_equal(viz_grid_resize(&g, 8, 1), 0);
    /* 8 values rising in pairs, 4 columns: means 1, 3, 5, 7 of a maximum 8 */
    const float v[8] = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f};
    assert_int_equal(viz_spark_draw_fit(&g, 0, 0, 4, v, 8, 8.0f, VIZ_DEFAULT, VIZ_DEFAULT), 4);
    assert_int_equal(viz_grid_at(&g, 0, 0)->ch, 0x2581);   /* 1/8 */
    assert_int_equal(viz_grid_at(&g, 1, 0)->ch, 0x2583);   /* 3/8 */
    assert_int_equal(viz_grid_at(&g, 2, 0)->ch, 0x2585);   /* 5/8 */
    assert_int_equal(viz_grid_at(&g, 3, 0)->ch, 0x2587);   /* 7/8 */
    /* fewer values than columns: drawn one per column like viz_spark_draw */
    assert_int_equal(viz_spark_draw_fit(&g, 0, 0, 8, v, 3, 8.0f, VIZ_DEFAULT, VIZ_DEFAULT), 3);
    viz_grid_free(&g);
}

static void a_fitted_sparkline_without_a_maximum_scales_to_its_largest_mean(void **state)
{
    (void)state;
    viz_grid g = {0};
    assert_int_equal(viz_grid_resize(&g, 4, 1), 0);
    /* means 1, 3, 5, 7; vmax 0: 7 is the top, so 1/7, 3/7, 5/7 and 7/7 of 8 levels */
    const float v[8] = {0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f, 6.5f, 7.5f};
    assert_int_equal(viz_spark_draw_fit(&g, 0, 0, 4, v, 8, 0.0f, VIZ_DEFAULT, VIZ_DEFAULT), 4);
    assert_int_equal(viz_grid_at(&g, 0, 0)->ch, 0x2582);   /* ceil(8/7) = 2 */
    assert_int_equal(viz_grid_at(&g, 1, 0)->ch, 0x2584);   /* ceil(24/7) = 4 */
    assert_int_equal(viz_grid_at(&g, 2, 0)->ch, 0x2586);   /* ceil(40/7) = 6 */
    assert_int_equal(viz_grid_at(&g, 3, 0)->ch, 0x2588);   /* 8 */
    viz_grid_free(&g);
}

static void sparkline_shows_the_newest_values_when_too_many(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 3, 1);
    const float v[5] = {8.0f, 8.0f, 1.0f, 1.0f, 8.0f};
    assert_int_equal(viz_spark_draw(&g, 0, 0, 3, v, 5, 8.0f, VIZ_DEFAULT, VIZ_DEFAULT), 3);
    assert_int_equal(g.cells[0].ch, 0x2581);
    assert_int_equal(g.cells[2].ch, 0x2588);
    viz_grid_free(&g);
}

static void bars_use_eighth_blocks_for_the_remainder(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 10, 1);
    assert_int_equal(viz_bar_draw(&g, 0, 0, 10, 0.25f, VIZ_DEFAULT, VIZ_DEFAULT), 3);
    assert_int_equal(g.cells[0].ch, 0x2588);
    assert_int_equal(g.cells[1].ch, 0x2588);
    assert_int_equal(g.cells[2].ch, 0x258C);   /* half a cell: ▌ */
    assert_int_equal(g.cells[3].ch, ' ');
    assert_int_equal(viz_bar_draw(&g, 0, 0, 10, 0.0f, VIZ_DEFAULT, VIZ_DEFAULT), 0);
    assert_int_equal(viz_bar_draw(&g, 0, 0, 10, 2.0f, VIZ_DEFAULT, VIZ_DEFAULT), 10);
    viz_grid_free(&g);
}

static void percentiles_interpolate_between_closest_ranks_like_numpy(void **state)
{
    (void)state;
    const float v[5] = {5.0f, 1.0f, 4.0f, 2.0f, 3.0f};
    float tmp[5];
    assert_true(viz_percentile(v, 5, 50.0f, tmp) == 3.0f);
    assert_true(viz_percentile(v, 5, 90.0f, tmp) == 4.6f);   /* numpy.percentile: 4.6 */
    assert_true(viz_percentile(v, 5, 0.0f, tmp) == 1.0f);
    assert_true(viz_percentile(v, 5, 100.0f, tmp) == 5.0f);
    assert_true(v[0] == 5.0f);                                 /* input untouched */
    assert_true(viz_percentile(v, 0, 50.0f, tmp) == 0.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sparkline_scales_from_zero_to_the_maximum),
        cmocka_unit_test(sparklines_sharing_a_maximum_compare_by_height),
        cmocka_unit_test(sparkline_shows_the_newest_values_when_too_many),
        cmocka_unit_test(a_fitted_sparkline_averages_the_whole_series_into_the_width),
        cmocka_unit_test(a_fitted_sparkline_without_a_maximum_scales_to_its_largest_mean),
        cmocka_unit_test(bars_use_eighth_blocks_for_the_remainder),
        cmocka_unit_test(percentiles_interpolate_between_closest_ranks_like_numpy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
