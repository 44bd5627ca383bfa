/* test_viz_label.c - readable token labels from stored BPE token strings. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "label.h"

static void byte_level_space_marker_becomes_a_visible_space(void **state)
{
    (void)state;
    char b[64];
    assert_int_equal(viz_label("\xc4\xa0the", b, sizeof b, 20), 4);   /* "Ġthe" */
    assert_string_equal(b, "\xe2\x90\xa3the");                         /* "␣the" */
}

static void byte_level_newline_and_tab_markers_become_arrows(void **state)
{
    (void)state;
    char b[64];
    viz_label("\xc4\x8a", b, sizeof b, 20);           /* "Ċ" = \n */
    assert_string_equal(b, "\xe2\x86\xb5");           /* "↵" */
    viz_label("\xc4\x89x", b, sizeof b, 20);          /* "ĉx" = \tx */
    assert_string_equal(b, "\xe2\x86\x92x");          /* "→x" */
}

static void byte_level_pairs_decode_to_their_utf8_character(void **state)
{
    (void)state;
    char b[64];
    viz_label("caf\xc3\x83\xc2\xa9", b, sizeof b, 20);   /* "cafÃ©" = "café" */
    assert_string_equal(b, "caf\xc3\xa9");
}

static void sentencepiece_marker_becomes_a_visible_space(void **state)
{
    (void)state;
    char b[64];
    viz_label("\xe2\x96\x81world", b, sizeof b, 20);     /* "▁world" */
    assert_string_equal(b, "\xe2\x90\xa3world");
}

static void byte_tokens_show_their_byte(void **state)
{
    (void)state;
    char b[64];
    viz_label("<0x0A>", b, sizeof b, 20);
    assert_string_equal(b, "\xe2\x86\xb5");
    viz_label("<0x41>", b, sizeof b, 20);
    assert_string_equal(b, "A");
    viz_label("<0xC3>", b, sizeof b, 20);                /* half a character */
    assert_string_equal(b, "\xc2\xb7");                  /* "·" */
}

static void special_tokens_are_kept_as_written(void **state)
{
    (void)state;
    char b[64];
    viz_label("<|im_end|>", b, sizeof b, 20);
    assert_string_equal(b, "<|im_end|>");
    viz_label("<s>", b, sizeof b, 20);
    assert_string_equal(b, "<s>");
}

static void long_labels_are_cut_with_an_ellipsis_to_the_width(void **state)
{
    (void)state;
    char b[64];
    assert_int_equal(viz_label("\xc4\xa0international", b, sizeof b, 6), 6);
    assert_string_equal(b, "\xe2\x90\xa3inte\xe2\x80\xa6");   /* "␣inte…" */
    assert_int_equal(viz_label("abc", b, sizeof b, 3), 3);
    assert_string_equal(b, "abc");
}

static void wide_characters_count_two_columns(void **state)
{
    (void)state;
    char b[64];
    /* "日本語" (6 columns) in 5 columns: two characters and the ellipsis */
    assert_int_equal(viz_label_text("\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", b, sizeof b, 5), 5);
    assert_string_equal(b, "\xe6\x97\xa5\xe6\x9c\xac\xe2\x80\xa6");
}

static void control_bytes_in_decoded_text_become_dots(void **state)
{
    (void)state;
    char b[64];
    viz_label_text("a\x01 b", b, sizeof b, 10);
    assert_string_equal(b, "a\xc2\xb7\xe2\x90\xa3" "b");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(byte_level_space_marker_becomes_a_visible_space),
        cmocka_unit_test(byte_level_newline_and_tab_markers_become_arrows),
        cmocka_unit_test(byte_level_pairs_decode_to_their_utf8_character),
        cmocka_unit_test(sentencepiece_marker_becomes_a_visible_space),
        cmocka_unit_test(byte_tokens_show_their_byte),
        cmocka_unit_test(special_tokens_are_kept_as_written),
        cmocka_unit_test(long_labels_are_cut_with_an_ellipsis_to_the_width),
        cmocka_unit_test(wide_characters_count_two_columns),
        cmocka_unit_test(control_bytes_in_decoded_text_become_dots),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
