/* test_viz_grid.c - the cell grid: text with wide characters, clipping, resizing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "common.h"
#include "grid.h"

static void text_is_clipped_to_the_column_budget(void **state)
{
    (void)state;
    viz_grid g = {0};
    assert_int_equal(viz_grid_resize(&g, 8, 1), 0);
    assert_int_equal(viz_grid_text(&g, 2, 0, 4, "abcdefgh", VIZ_DEFAULT, VIZ_DEFAULT, 0), 4);
    char row[64];
    viz_grid_row_utf8(&g, 0, row, sizeof row);
    assert_string_equal(row, "  abcd  ");
    assert_int_equal(viz_grid_text(&g, 6, 0, 10, "xyz", VIZ_DEFAULT, VIZ_DEFAULT, 0), 2);
    viz_grid_free(&g);
}

static void wide_characters_take_two_cells_and_are_never_split(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 5, 1);
    /* "日本語": three wide characters, only two fit in 5 columns */
    assert_int_equal(viz_grid_text(&g, 0, 0, 5, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", VIZ_DEFAULT, VIZ_DEFAULT, 0), 4);
    assert_int_equal(g.cells[1].ch, 0);
    char row[64];
    viz_grid_row_utf8(&g, 0, row, sizeof row);
    assert_string_equal(row, "\xe6\x97\xa5\xe6\x9c\xac ");
    assert_int_equal(viz_text_width("a\xe6\x97\xa5" "b"), 4);
    viz_grid_free(&g);
}

static void invalid_utf8_is_drawn_as_the_replacement_character(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 4, 1);
    viz_grid_text(&g, 0, 0, 4, "a\xff" "b", VIZ_DEFAULT, VIZ_DEFAULT, 0);
    assert_int_equal(g.cells[1].ch, 0xFFFD);
    assert_int_equal(g.cells[2].ch, 'b');
    viz_grid_free(&g);
}

static void puts_outside_the_grid_are_ignored(void **state)
{
    (void)state;
    viz_grid g = {0};
    viz_grid_resize(&g, 2, 2);
    viz_grid_put(&g, -1, 0, 'x', 1, 2, 0);
    viz_grid_put(&g, 2, 1, 'x', 1, 2, 0);
    viz_grid_fill(&g, (viz_rect){1, 1, 5, 5}, '#', 3, 4, 0);
    assert_null(viz_grid_at(&g, 2, 0));
    assert_int_equal(viz_grid_at(&g, 1, 1)->ch, '#');
    assert_int_equal(viz_grid_at(&g, 0, 0)->ch, ' ');
    viz_grid_free(&g);
}

static void a_failed_allocation_leaves_an_empty_grid(void **state)
{
    (void)state;
    viz_grid g = {0};
    assert_int_equal(viz_grid_resize(&g, 4, 4), 0);
    eng_alloc_fail_at(1);
    assert_int_equal(viz_grid_resize(&g, 100, 100), -1);
    eng_alloc_fail_at(0);
    assert_int_equal(g.w, 0);
    assert_null(g.cells);
    viz_grid_free(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_is_clipped_to_the_column_budget),
        cmocka_unit_test(wide_characters_take_two_cells_and_are_never_split),
        cmocka_unit_test(invalid_utf8_is_drawn_as_the_replacement_character),
        cmocka_unit_test(puts_outside_the_grid_are_ignored),
        cmocka_unit_test(a_failed_allocation_leaves_an_empty_grid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
