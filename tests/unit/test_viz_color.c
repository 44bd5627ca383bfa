/* test_viz_color.c - colour maps, terminal colour depths, shades and themes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "color.h"

static void viridis_ends_are_matplotlibs_first_and_last_colours(void **state)
{
    (void)state;
    assert_int_equal(viz_cmap_rgb(VIZ_VIRIDIS, 0.0f), VIZ_RGB(0x44, 0x01, 0x54));
    assert_int_equal(viz_cmap_rgb(VIZ_VIRIDIS, 1.0f), VIZ_RGB(0xfd, 0xe7, 0x25));
    assert_int_equal(viz_cmap_rgb(VIZ_VIRIDIS, 0.5f), VIZ_RGB(0x21, 0x91, 0x8c));
    assert_int_equal(viz_cmap_rgb(VIZ_MAGMA, 0.0f), VIZ_RGB(0x00, 0x00, 0x04));
    assert_int_equal(viz_cmap_rgb(VIZ_MAGMA, 1.0f), VIZ_RGB(0xfc, 0xfd, 0xbf));
}

static void colour_map_inputs_are_clamped_and_nan_is_zero(void **state)
{
    (void)state;
    assert_int_equal(viz_cmap_rgb(VIZ_VIRIDIS, -3.0f), viz_cmap_rgb(VIZ_VIRIDIS, 0.0f));
    assert_int_equal(viz_cmap_rgb(VIZ_MAGMA, 7.0f), viz_cmap_rgb(VIZ_MAGMA, 1.0f));
    assert_int_equal(viz_cmap_rgb(VIZ_VIRIDIS, 0.0f / 0.0f), viz_cmap_rgb(VIZ_VIRIDIS, 0.0f));
}

static int lum(viz_color c) { return 299 * VIZ_R(c) + 587 * VIZ_G(c) + 114 * VIZ_B(c); }

static void both_maps_get_brighter_as_the_value_grows(void **state)
{
    (void)state;
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < 64; i++)
            assert_true(lum(viz_cmap_rgb((viz_cmap)m, (float)i / 64)) <
                        lum(viz_cmap_rgb((viz_cmap)m, (float)(i + 1) / 64)));
}

static void xterm256_picks_the_nearest_cube_level_or_grey(void **state)
{
    (void)state;
    assert_int_equal(viz_rgb_to_256(0, 0, 0), 16);
    assert_int_equal(viz_rgb_to_256(255, 255, 255), 231);
    assert_int_equal(viz_rgb_to_256(255, 0, 0), 196);
    assert_int_equal(viz_rgb_to_256(95, 135, 175), 16 + 36 * 1 + 6 * 2 + 3);
    /* levels are 0,95,135,175,215,255: 40 is nearer 0 than 95, 120 nearer 135 */
    assert_int_equal(viz_rgb_to_256(40, 120, 240), 16 + 36 * 0 + 6 * 2 + 5);
    /* greys between cube levels go to the 232..255 ramp (8 + 10 i) */
    assert_int_equal(viz_rgb_to_256(128, 128, 128), 244);
    assert_int_equal(viz_rgb_to_256(100, 100, 100), 241);
    assert_int_equal(viz_rgb_to_256(8, 8, 8), 232);
    assert_int_equal(viz_rgb_to_256(238, 238, 238), 255);
}

static void palette_values_round_trip_through_the_256_mapping(void **state)
{
    (void)state;
    for (int i = 16; i < 256; i++) {
        viz_color c = viz_palette_rgb(i);
        int j = viz_rgb_to_256(VIZ_R(c), VIZ_G(c), VIZ_B(c));
        viz_color d = viz_palette_rgb(j);
        assert_int_equal(c, d);   /* same colour (cube and ramp share a few greys) */
    }
}

static void sixteen_and_eight_colours_pick_the_standard_ones(void **state)
{
    (void)state;
    assert_int_equal(viz_rgb_to_16(250, 10, 10), 9);
    assert_int_equal(viz_rgb_to_16(200, 0, 0), 1);
    assert_int_equal(viz_rgb_to_16(255, 255, 255), 15);
    assert_int_equal(viz_rgb_to_8(250, 10, 10), 1);
    assert_int_equal(viz_rgb_to_8(255, 255, 255), 7);
    assert_int_equal(viz_rgb_to_8(0, 0, 0), 0);
    for (int v = 0; v < 256; v += 15) assert_true(viz_rgb_to_8(v, 255 - v, v / 2) < 8);
}

static void depth_mapping_passes_defaults_and_drops_colour_in_mono(void **state)
{
    (void)state;
    viz_color c = VIZ_RGB(255, 0, 0);
    assert_int_equal(viz_color_for_depth(c, VIZ_TRUECOLOR), c);
    assert_int_equal(viz_color_for_depth(c, VIZ_256), 196);
    assert_int_equal(viz_color_for_depth(c, VIZ_16), 9);
    assert_int_equal(viz_color_for_depth(c, VIZ_8), 1);
    assert_int_equal(viz_color_for_depth(c, VIZ_MONO), VIZ_DEFAULT);
    assert_int_equal(viz_color_for_depth(VIZ_DEFAULT, VIZ_256), VIZ_DEFAULT);
    assert_int_equal(viz_color_for_depth(196, VIZ_8), 1);   /* a 256 index folds down */
}

static void quantize_rewrites_every_cell(void **state)
{
    (void)state;
    viz_grid g = {0};
    assert_int_equal(viz_grid_resize(&g, 3, 2), 0);
    viz_grid_fill(&g, (viz_rect){0, 0, 3, 2}, 'x', VIZ_RGB(255, 255, 255), VIZ_RGB(0, 0, 0), 0);
    viz_grid_quantize(&g, VIZ_256);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(g.cells[i].fg, 231);
        assert_int_equal(g.cells[i].bg, 16);
    }
    viz_grid_free(&g);
}

static void eight_colour_text_in_mid_grey_is_never_black(void **state)
{
    (void)state;
    /* the dark theme's border grey is nearest to black among 8 colours */
    assert_int_equal(viz_color_for_depth(VIZ_RGB(98, 98, 98), VIZ_8), 0);
    assert_int_equal(viz_fg_for_depth(VIZ_RGB(98, 98, 98), VIZ_8), 7);
    assert_int_equal(viz_fg_for_depth(VIZ_RGB(20, 20, 20), VIZ_8), 0);   /* near-black stays */
    assert_int_equal(viz_fg_for_depth(VIZ_RGB(98, 98, 98), VIZ_16), 8);  /* 16 colours have grey */
    assert_int_equal(viz_fg_for_depth(VIZ_RGB(255, 0, 0), VIZ_8), 1);
    viz_grid g = {0};
    assert_int_equal(viz_grid_resize(&g, 2, 1), 0);
    viz_grid_fill(&g, (viz_rect){0, 0, 2, 1}, 'x', VIZ_RGB(98, 98, 98), VIZ_RGB(98, 98, 98), 0);
    viz_grid_quantize(&g, VIZ_8);
    assert_int_equal(g.cells[0].fg, 7);
    assert_int_equal(g.cells[0].bg, 0);   /* backgrounds keep the nearest colour */
    viz_grid_free(&g);
}

static void shades_run_from_blank_to_full_block(void **state)
{
    (void)state;
    assert_int_equal(viz_shade(0.0f), ' ');
    assert_int_equal(viz_shade(0.3f), 0x2591);
    assert_int_equal(viz_shade(0.5f), 0x2592);
    assert_int_equal(viz_shade(0.7f), 0x2593);
    assert_int_equal(viz_shade(1.0f), 0x2588);
    assert_int_equal(viz_shade(-1.0f), ' ');
}

static void themes_are_found_by_name_and_unknown_names_are_null(void **state)
{
    (void)state;
    assert_string_equal(viz_theme_named(NULL)->name, "dark");
    assert_string_equal(viz_theme_named("light")->name, "light");
    assert_string_equal(viz_theme_named("projector")->name, "projector");
    assert_null(viz_theme_named("neon"));
    /* the projector theme keeps masked cells apart from the lowest colour */
    const viz_theme *p = viz_theme_named("projector");
    assert_int_not_equal(p->masked, viz_cmap_rgb(p->cmap, 0.0f));
    /* the light theme's masked cells differ from both ends of magma, and from
     * its background, at 256 colours too (magma's top is a pale yellow) */
    const viz_theme *l = viz_theme_named("light");
    viz_color m = viz_color_for_depth(l->masked, VIZ_256);
    assert_int_not_equal(m, viz_color_for_depth(viz_cmap_rgb(l->cmap, 0.0f), VIZ_256));
    assert_int_not_equal(m, viz_color_for_depth(viz_cmap_rgb(l->cmap, 1.0f), VIZ_256));
    assert_int_not_equal(m, viz_color_for_depth(l->bg, VIZ_256));
    assert_true(VIZ_B(l->masked) > VIZ_R(l->masked) + 15);   /* a blue-grey, not a near-white */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(viridis_ends_are_matplotlibs_first_and_last_colours),
        cmocka_unit_test(colour_map_inputs_are_clamped_and_nan_is_zero),
        cmocka_unit_test(both_maps_get_brighter_as_the_value_grows),
        cmocka_unit_test(xterm256_picks_the_nearest_cube_level_or_grey),
        cmocka_unit_test(palette_values_round_trip_through_the_256_mapping),
        cmocka_unit_test(sixteen_and_eight_colours_pick_the_standard_ones),
        cmocka_unit_test(depth_mapping_passes_defaults_and_drops_colour_in_mono),
        cmocka_unit_test(quantize_rewrites_every_cell),
        cmocka_unit_test(eight_colour_text_in_mid_grey_is_never_black),
        cmocka_unit_test(shades_run_from_blank_to_full_block),
        cmocka_unit_test(themes_are_found_by_name_and_unknown_names_are_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
