/* test_common.c - dtype conversions, error formatting and the allocation hook. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "common.h"

static void bf16_round_trips_representable_values(void **state)
{
    (void)state;
    const float vals[] = {0.0f, 1.0f, -2.5f, 0.15625f, 65504.0f, -1e-3f};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        float r = bf16_to_f32(f32_to_bf16(vals[i]));
        assert_true(fabsf(r - vals[i]) <= fabsf(vals[i]) / 128.0f);
    }
    assert_int_equal(f32_to_bf16(1.0f), 0x3f80);
    /* 1 + 2^-8 is a tie between 1 and 1 + 2^-7: rounds to even (1.0). */
    assert_int_equal(f32_to_bf16(1.0f + 1.0f / 256.0f), 0x3f80);
}

static void f16_conversions_match_ieee_half(void **state)
{
    (void)state;
    assert_int_equal(f32_to_f16(1.0f), 0x3c00);
    assert_int_equal(f32_to_f16(-2.0f), 0xc000);
    assert_int_equal(f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(f32_to_f16(1e6f), 0x7c00);               /* overflow -> inf */
    assert_true(f16_to_f32(0x0001) == ldexpf(1.0f, -24));     /* smallest subnormal */
    assert_true(f16_to_f32(0x3555) > 0.333f && f16_to_f32(0x3555) < 0.3334f);
    for (uint32_t h = 0; h < 0x7c00; h++)                      /* every finite positive half */
        assert_int_equal(f32_to_f16(f16_to_f32((uint16_t)h)), h);
}

static void the_nth_allocation_fails_and_only_that_one(void **state)
{
    (void)state;
    eng_alloc_fail_at(2);
    void *a = eng_malloc(8);
    void *b = eng_malloc(8);
    void *c = eng_malloc(8);
    assert_non_null(a);
    assert_null(b);
    assert_non_null(c);
    eng_free(a);
    eng_free(c);
    eng_alloc_fail_at(0);
}

static void eng_fail_formats_the_message_and_returns_the_code(void **state)
{
    (void)state;
    eng_err e;
    assert_int_equal(eng_fail(&e, ENG_EINPUT, "%s: tensor %s", "a.safetensors", "x"), ENG_EINPUT);
    assert_string_equal(e.msg, "a.safetensors: tensor x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bf16_round_trips_representable_values),
        cmocka_unit_test(f16_conversions_match_ieee_half),
        cmocka_unit_test(the_nth_allocation_fails_and_only_that_one),
        cmocka_unit_test(eng_fail_formats_the_message_and_returns_the_code),
    };
    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
