/* test_slash.c - the slash-command table: parsing, validation of settings,
 * unknown commands, TUI-only commands in plain mode, /save's refusals and
 * /model's lookup, on the tiny-chat fixture where a conversation is needed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slash.h"

#define FIXTURE "tests/fixtures/tiny-chat"

typedef struct {
    char text[8192];
    int n_errors, n_lines;
} said;

static void record(void *ud, bool error, const char *text)
{
    said *s = ud;
    size_t l = strlen(s->text);
    snprintf(s->text + l, sizeof s->text - l, "%s\n", text);
    s->n_lines++;
    s->n_errors += error;
}

static slash_ctx plain_ctx(said *s, conv_t *c)
{
    slash_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    memset(s, 0, sizeof *s);
    ctx.conv = c;
    ctx.say = record;
    ctx.ud = s;
    return ctx;
}

static conv_t *open_fixture(void)
{
    conv_t *c = NULL;
    eng_err err;
    int rc = conv_open(&c, FIXTURE, NULL, &err);
    if (rc != ENG_OK)
        fprintf(stderr, "conv_open: %s\n", err.msg);
    assert_int_equal(rc, ENG_OK);
    return c;
}

static void sampling_settings_accept_values_in_range(void **state)
{
    (void)state;
    sampler_params p;
    sampler_params_default(&p);
    char msg[256];
    assert_int_equal(slash_set_sampling(&p, "temp", "0", "--", msg, sizeof msg), 0);
    assert_true(p.temperature == 0.0f);
    assert_int_equal(slash_set_sampling(&p, "top-k", "40", "--", msg, sizeof msg), 0);
    assert_int_equal(p.top_k, 40);
    assert_int_equal(slash_set_sampling(&p, "top-p", "1", "--", msg, sizeof msg), 0);
    assert_true(p.top_p == 1.0f);
    assert_int_equal(slash_set_sampling(&p, "min-p", "0.05", "--", msg, sizeof msg), 0);
    assert_true(fabsf(p.min_p - 0.05f) < 1e-7f);
    assert_int_equal(slash_set_sampling(&p, "repeat-penalty", "1.3", "--", msg, sizeof msg), 0);
    assert_true(fabsf(p.repeat_penalty - 1.3f) < 1e-6f);
    assert_int_equal(slash_set_sampling(&p, "seed", "18446744073709551615", "--", msg, sizeof msg), 0);
    assert_true(p.seed == UINT64_MAX);
}

static void sampling_settings_reject_out_of_range_values_and_keep_the_old_ones(void **state)
{
    (void)state;
    sampler_params p, before;
    sampler_params_default(&p);
    before = p;
    char msg[256];
    static const char *const bad[][2] = {
        {"temp", "-0.1"}, {"temp", "abc"}, {"temp", ""}, {"temp", "0.5x"}, {"temp", "nan"},
        {"top-k", "-1"}, {"top-k", "2.5"}, {"top-p", "1.01"}, {"top-p", "0"},
        {"min-p", "-0.5"}, {"min-p", "2"}, {"repeat-penalty", "0"}, {"repeat-penalty", "-1"},
        {"seed", "-3"}, {"seed", "1e3"}, {"bogus", "1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg[0] = '\0';
        assert_int_equal(slash_set_sampling(&p, bad[i][0], bad[i][1], "--", msg, sizeof msg), -1);
        assert_true(strlen(msg) > 10);
        assert_memory_equal(&p, &before, sizeof p);
    }
    slash_set_sampling(&p, "top-p", "1.5", "--", msg, sizeof msg);
    assert_string_equal(msg, "--top-p must be in (0, 1] (1 = off), got '1.5'");
}

static void every_command_in_the_table_is_found_by_name(void **state)
{
    (void)state;
    int n;
    const slash_cmd *t = slash_table(&n);
    static const char *const required[] = {"help", "cache", "temp", "top-k", "top-p", "min-p",
        "repeat-penalty", "seed", "regen", "reset", "system", "save", "model", "device",
        "step", "layer", "head", "compare", "quit"};
    for (size_t i = 0; i < sizeof required / sizeof required[0]; i++) {
        const slash_cmd *c = slash_find(required[i]);
        assert_non_null(c);
        assert_non_null(c->fn);
        assert_true(c->usage[0] == '/');
    }
    assert_true(n >= (int)(sizeof required / sizeof required[0]));
    assert_ptr_equal(slash_find(t[0].name), &t[0]);
    assert_null(slash_find("tem"));
    assert_null(slash_find(""));
}

static void an_unknown_command_says_so_and_changes_nothing(void **state)
{
    (void)state;
    said s;
    slash_ctx ctx = plain_ctx(&s, NULL);
    assert_int_equal(slash_exec(&ctx, "/frobnicate now"), SLASH_ERROR);
    assert_int_equal(s.n_errors, 1);
    assert_string_equal(s.text, "unknown command /frobnicate; /help lists them\n");
    assert_int_equal(slash_exec(&ctx, "/"), SLASH_ERROR);
    assert_int_equal(s.n_errors, 2);
}

static void quit_returns_quit(void **state)
{
    (void)state;
    said s;
    slash_ctx ctx = plain_ctx(&s, NULL);
    assert_int_equal(slash_exec(&ctx, "  /quit  "), SLASH_QUIT);
    assert_true(slash_is_command("  /x"));
    assert_false(slash_is_command("hello /x"));
}

static slash_result fake_layer(slash_ctx *ctx, const char *args)
{
    ctx->say(ctx->ud, false, args);
    return SLASH_OK;
}

static void tui_only_commands_need_the_tui_and_reach_its_hooks(void **state)
{
    (void)state;
    said s;
    slash_ctx ctx = plain_ctx(&s, NULL);
    assert_int_equal(slash_exec(&ctx, "/layer 3"), SLASH_ERROR);
    assert_non_null(strstr(s.text, "TUI only"));
    ctx.tui = true;
    ctx.layer = fake_layer;
    s.text[0] = '\0';
    assert_int_equal(slash_exec(&ctx, "/layer   3 "), SLASH_OK);
    assert_string_equal(s.text, "3\n");
}

static void device_cuda_explains_why_not_in_a_cpu_build(void **state)
{
    (void)state;
    said s;
    slash_ctx ctx = plain_ctx(&s, NULL);
    assert_int_equal(slash_exec(&ctx, "/device cuda"), SLASH_ERROR);
#ifndef ATTNSCOPE_CUDA
    assert_non_null(strstr(s.text, "no CUDA backend"));
#endif
    assert_int_equal(slash_exec(&ctx, "/device tpu"), SLASH_ERROR);
    assert_non_null(strstr(s.text, "usage: /device cpu|cuda"));
}

static void completion_lists_matching_commands_in_table_order(void **state)
{
    (void)state;
    assert_string_equal(slash_complete("/re", 0), "/repeat-penalty");
    assert_string_equal(slash_complete("/re", 1), "/regen");
    assert_string_equal(slash_complete("/re", 2), "/reset");
    assert_null(slash_complete("/re", 3));
    assert_null(slash_complete("/zz", 0));
}

static void help_lists_every_plain_command_and_hides_tui_ones(void **state)
{
    (void)state;
    said s;
    slash_ctx ctx = plain_ctx(&s, NULL);
    assert_int_equal(slash_exec(&ctx, "/help"), SLASH_OK);
    int n;
    const slash_cmd *t = slash_table(&n);
    for (int i = 0; i < n; i++) {
        if (t[i].tui_only)
            continue;
        assert_non_null(strstr(s.text, t[i].usage));
    }
    assert_null(strstr(s.text, "/layer N"));
    s.text[0] = '\0';
    assert_int_equal(slash_exec(&ctx, "/help temp"), SLASH_OK);
    assert_non_null(strstr(s.text, "/temp [T]"));
}

static void a_model_hint_comes_from_attnscope_json_or_the_readme(void **state)
{
    (void)state;
    char dir[] = "/tmp/attnscope-hint-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char p[256];
    assert_null(slash_model_hint(dir));
    snprintf(p, sizeof p, "%s/README.md", dir);
    FILE *f = fopen(p, "w");
    fputs("# model\n\n**Suggested prompt:** `1>a;a>c;c>`\n", f);
    fclose(f);
    char *h = slash_model_hint(dir);
    assert_non_null(h);
    assert_string_equal(h, "1>a;a>c;c>");
    free(h);
    snprintf(p, sizeof p, "%s/attnscope.json", dir);
    f = fopen(p, "w");
    fputs("{\"prompt\": \"A B C A B\"}", f);
    fclose(f);
    h = slash_model_hint(dir);
    assert_string_equal(h, "A B C A B");
    free(h);
    unlink(p);
    snprintf(p, sizeof p, "%s/README.md", dir);
    unlink(p);
    rmdir(dir);
}

static void a_missing_model_name_lists_the_bundled_ones(void **state)
{
    (void)state;
    char out[256], msg[512];
    assert_int_equal(slash_resolve_model("tests/fixtures", "tiny-chat", out, sizeof out, msg, sizeof msg), 0);
    assert_string_equal(out, "tests/fixtures/tiny-chat");
    assert_int_equal(slash_resolve_model("tests/fixtures", "nope", out, sizeof out, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "no bundled model 'nope'"));
    assert_non_null(strstr(msg, "tiny-chat"));
    assert_int_equal(slash_resolve_model(NULL, "./no/such/dir", out, sizeof out, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "no such model folder"));
}

static void settings_commands_change_the_conversation_and_bad_values_do_not(void **state)
{
    (void)state;
    conv_t *c = open_fixture();
    said s;
    slash_ctx ctx = plain_ctx(&s, c);
    assert_int_equal(slash_exec(&ctx, "/temp 0.25"), SLASH_OK);
    assert_true(fabsf(conv_sampling(c)->temperature - 0.25f) < 1e-7f);
    assert_int_equal(slash_exec(&ctx, "/temp -1"), SLASH_ERROR);
    assert_true(fabsf(conv_sampling(c)->temperature - 0.25f) < 1e-7f);
    assert_int_equal(slash_exec(&ctx, "/top-p 2"), SLASH_ERROR);
    assert_true(fabsf(conv_sampling(c)->top_p - 0.9f) < 1e-7f);
    assert_int_equal(slash_exec(&ctx, "/top-k 7"), SLASH_OK);
    assert_int_equal(conv_sampling(c)->top_k, 7);
    assert_int_equal(slash_exec(&ctx, "/cache off"), SLASH_OK);
    assert_false(conv_cache(c));
    assert_int_equal(slash_exec(&ctx, "/cache maybe"), SLASH_ERROR);
    assert_false(conv_cache(c));
    assert_int_equal(slash_exec(&ctx, "/system be brief"), SLASH_OK);
    assert_int_equal(conv_n_messages(c), 1);
    assert_string_equal(conv_message_text(c, 0), "be brief");
    assert_int_equal(slash_exec(&ctx, "/regen"), SLASH_ERROR);   /* nothing to regenerate */
    /* A long system message is kept whole, not cut at some buffer size. */
    char *line = malloc(10020);
    strcpy(line, "/system ");
    memset(line + 8, 'w', 10000);
    strcpy(line + 10008, " end\n");
    assert_int_equal(slash_exec(&ctx, line), SLASH_OK);
    assert_int_equal(strlen(conv_message_text(c, 0)), 10004);
    assert_string_equal(conv_message_text(c, 0) + 10000, " end");
    free(line);
    conv_close(ctx.conv);
}

static void save_refuses_a_missing_folder_and_an_existing_file_without_force(void **state)
{
    (void)state;
    conv_t *c = open_fixture();
    said s;
    slash_ctx ctx = plain_ctx(&s, c);
    assert_int_equal(slash_exec(&ctx, "/save /nonexistent-dir/x.json"), SLASH_ERROR);
    assert_non_null(strstr(s.text, "does not exist"));
    char path[] = "/tmp/attnscope-save-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    char line[128];
    snprintf(line, sizeof line, "/save %s", path);
    assert_int_equal(slash_exec(&ctx, line), SLASH_ERROR);
    assert_non_null(strstr(s.text, "--force"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);                 /* untouched */
    snprintf(line, sizeof line, "/save %s --force", path);
    assert_int_equal(slash_exec(&ctx, line), SLASH_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 0);
    assert_int_equal(slash_exec(&ctx, "/save"), SLASH_ERROR);
    unlink(path);
    conv_close(ctx.conv);
}

static void model_switches_by_name_and_keeps_the_old_one_on_failure(void **state)
{
    (void)state;
    conv_t *c = open_fixture();
    said s;
    slash_ctx ctx = plain_ctx(&s, c);
    ctx.models_dir = "tests/fixtures";
    assert_int_equal(slash_exec(&ctx, "/model templates"), SLASH_ERROR);   /* not a model folder */
    assert_ptr_equal(ctx.conv, c);
    assert_int_equal(slash_exec(&ctx, "/model tiny-chat"), SLASH_OK);
    assert_ptr_not_equal(ctx.conv, NULL);
    assert_string_equal(conv_dir(ctx.conv), "tests/fixtures/tiny-chat");
    conv_close(ctx.conv);
}

static void seed_then_regen_repeats_a_sampled_reply(void **state)
{
    (void)state;
    conv_opts o;
    conv_opts_default(&o);
    o.max_new = 12;
    o.sampling.temperature = 1.5f;         /* far from greedy: draws matter */
    o.sampling.top_k = 0;
    o.sampling.top_p = 1.0f;
    conv_t *c = NULL;
    eng_err err;
    assert_int_equal(conv_open(&c, FIXTURE, &o, &err), ENG_OK);
    said s;
    slash_ctx ctx = plain_ctx(&s, c);
    conv_token t;
    int first[12], second[12], n1 = 0, n2 = 0;
    assert_int_equal(slash_exec(&ctx, "/seed 42"), SLASH_OK);
    assert_int_equal(conv_begin(c, "Hi", &err), ENG_OK);
    while (conv_generating(c) && conv_step(c, -1, &t, &err) == ENG_OK)
        first[n1++] = t.id;
    assert_int_equal(slash_exec(&ctx, "/seed 42"), SLASH_OK);   /* the same seed again */
    assert_int_equal(slash_exec(&ctx, "/regen"), SLASH_GENERATE);
    while (conv_generating(c) && conv_step(c, -1, &t, &err) == ENG_OK)
        second[n2++] = t.id;
    assert_int_equal(n1, n2);
    assert_memory_equal(first, second, (size_t)n1 * sizeof(int));
    conv_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sampling_settings_accept_values_in_range),
        cmocka_unit_test(sampling_settings_reject_out_of_range_values_and_keep_the_old_ones),
        cmocka_unit_test(every_command_in_the_table_is_found_by_name),
        cmocka_unit_test(an_unknown_command_says_so_and_changes_nothing),
        cmocka_unit_test(quit_returns_quit),
        cmocka_unit_test(tui_only_commands_need_the_tui_and_reach_its_hooks),
        cmocka_unit_test(device_cuda_explains_why_not_in_a_cpu_build),
        cmocka_unit_test(completion_lists_matching_commands_in_table_order),
        cmocka_unit_test(help_lists_every_plain_command_and_hides_tui_ones),
        cmocka_unit_test(a_model_hint_comes_from_attnscope_json_or_the_readme),
        cmocka_unit_test(a_missing_model_name_lists_the_bundled_ones),
        cmocka_unit_test(settings_commands_change_the_conversation_and_bad_values_do_not),
        cmocka_unit_test(save_refuses_a_missing_folder_and_an_existing_file_without_force),
        cmocka_unit_test(model_switches_by_name_and_keeps_the_old_one_on_failure),
        cmocka_unit_test(seed_then_regen_repeats_a_sampled_reply),
    };
    return cmocka_run_group_tests_name("slash", tests, NULL, NULL);
}
