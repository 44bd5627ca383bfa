/* test_conv.c - conversations on the tiny-chat fixture: a second turn prefills
 * only its new tokens and gets the same logits as a fresh run, /regen runs
 * nothing, every stop condition, streamed text equal to the decoded reply,
 * step-mode replacement, /reset, and the JSON save. */
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

#include <cjson/cJSON.h>

#include "engine.h"

#define FIXTURE "tests/fixtures/tiny-chat"

static conv_t *open_with(int max_seq, int max_new, float temp)
{
    conv_opts o;
    conv_opts_default(&o);
    o.max_seq = max_seq;
    o.max_new = max_new;
    o.n_threads = 1;
    o.sampling.temperature = temp;
    conv_t *c = NULL;
    eng_err err;
    int rc = conv_open(&c, FIXTURE, &o, &err);
    if (rc != ENG_OK)
        fprintf(stderr, "conv_open: %s\n", err.msg);
    assert_int_equal(rc, ENG_OK);
    return c;
}

static int im_end(conv_t *c)
{
    int id = tok_token_to_id(conv_tokenizer(c), "<|im_end|>");
    assert_true(id >= 0);
    return id;
}

/* Generates a reply made of exactly the tokens of text, then <|im_end|>. */
static void forced_reply(conv_t *c, const char *text)
{
    int *ids;
    size_t n;
    eng_err err;
    assert_int_equal(tok_encode(conv_tokenizer(c), text, strlen(text), false, &ids, &n, &err), ENG_OK);
    conv_token t;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(conv_step(c, ids[i], &t, &err), ENG_OK);
        assert_int_equal(t.id, ids[i]);
        assert_int_equal(t.stop, CONV_STOP_NONE);
    }
    assert_int_equal(conv_step(c, im_end(c), &t, &err), ENG_OK);
    assert_int_equal(t.stop, CONV_STOP_EOS);
    eng_free(ids);
}

static void generate_to_end(conv_t *c, char *out, size_t cap)
{
    conv_token t;
    eng_err err;
    size_t used = 0;
    out[0] = '\0';
    while (conv_generating(c)) {
        assert_int_equal(conv_step(c, -1, &t, &err), ENG_OK);
        if (t.len && used + t.len < cap) {
            memcpy(out + used, t.text, t.len);
            used += t.len;
            out[used] = '\0';
        }
    }
}

static float max_abs_diff(const float *a, const float *b, int n, float *scale)
{
    float d = 0, s = 0;
    for (int i = 0; i < n; i++) {
        d = fmaxf(d, fabsf(a[i] - b[i]));
        s = fmaxf(s, fabsf(b[i]));
    }
    *scale = s;
    return d;
}

static void a_second_turn_prefills_only_its_new_tokens(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 64, 0.0f);
    eng_err err;
    assert_int_equal(conv_begin(c, "Hello there", &err), ENG_OK);
    const conv_timings *t = conv_last_timings(c);
    assert_int_equal(t->prefill_tokens, t->prompt_tokens);          /* nothing cached yet */
    forced_reply(c, "Hi! How can I help?");
    int before = session_len(conv_session(c));

    assert_int_equal(conv_begin(c, "Tell me more", &err), ENG_OK);
    t = conv_last_timings(c);
    int len = session_len(conv_session(c));
    assert_int_equal(t->prompt_tokens, len);
    /* Everything up to the reply's last token was cached: only the end-of-turn
     * token and the new user turn run. */
    assert_int_equal(t->prefill_tokens, len - before);
    assert_true(t->prefill_tokens < t->prompt_tokens / 2);

    /* The same logits as a fresh session that runs the whole prompt. */
    session_t *fresh;
    assert_int_equal(session_new(&fresh, conv_model(c), 0, 1, &err), ENG_OK);
    assert_int_equal(session_eval(fresh, session_tokens(conv_session(c)), len, NULL, &err), ENG_OK);
    float scale;
    float d = max_abs_diff(session_logits(conv_session(c)), session_logits(fresh),
                           conv_model(c)->cfg.vocab_size, &scale);
    assert_true(d <= 1e-4f * fmaxf(scale, 1.0f));
    session_free(fresh);
    conv_close(c);
}

static void regen_runs_nothing_and_draws_from_the_same_prompt(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 8, 0.0f);      /* greedy: the same prompt gives the same reply */
    eng_err err;
    char first[1024], second[1024];
    assert_int_equal(conv_begin(c, "Once upon a time", &err), ENG_OK);
    int prompt_len = session_len(conv_session(c));
    generate_to_end(c, first, sizeof first);
    int n_msgs = conv_n_messages(c);

    assert_int_equal(conv_regen(c, &err), ENG_OK);
    const conv_timings *t = conv_last_timings(c);
    assert_int_equal(t->prefill_tokens, 0);
    assert_int_equal(t->prompt_tokens, prompt_len);
    assert_int_equal(session_len(conv_session(c)), prompt_len);
    assert_int_equal(conv_n_messages(c), n_msgs);                 /* replaced, not added */
    generate_to_end(c, second, sizeof second);
    assert_string_equal(first, second);
    assert_string_equal(conv_message_text(c, conv_n_messages(c) - 1), second);
    conv_close(c);
}

static void regen_without_a_reply_is_refused(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 8, 0.0f);
    eng_err err;
    assert_int_equal(conv_regen(c, &err), ENG_EINPUT);
    assert_non_null(strstr(err.msg, "no reply"));
    conv_close(c);
}

static void a_reply_stops_after_max_new_tokens(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 3, 0.0f);
    eng_err err;
    char out[256];
    assert_int_equal(conv_begin(c, "Count", &err), ENG_OK);
    generate_to_end(c, out, sizeof out);
    const conv_timings *t = conv_last_timings(c);
    /* A random model may still pick an end-of-turn token early. */
    if (t->stop == CONV_STOP_LIMIT) {
        assert_int_equal(t->gen_tokens, 3);
        assert_non_null(strstr(conv_stop_message(c), "-n"));
    } else {
        assert_int_equal(t->stop, CONV_STOP_EOS);
        assert_true(t->gen_tokens <= 3);
    }
    int n;
    conv_token_ms(c, &n);
    assert_int_equal(n, t->gen_tokens);
    assert_true(t->decode_evals == t->gen_tokens - 1);
    conv_close(c);
}

static void an_end_of_turn_token_ends_the_reply_and_prints_nothing(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 64, 0.7f);
    eng_err err;
    conv_token t;
    assert_int_equal(conv_begin(c, "Hi", &err), ENG_OK);
    assert_int_equal(conv_step(c, im_end(c), &t, &err), ENG_OK);
    assert_int_equal(t.stop, CONV_STOP_EOS);
    assert_int_equal(t.len, 0);
    assert_false(conv_generating(c));
    assert_int_equal(conv_step(c, -1, &t, &err), ENG_ERANGE);
    /* config.json's eos_token_id and generation_config's list count too. */
    assert_int_equal(conv_regen(c, &err), ENG_OK);
    assert_int_equal(conv_step(c, 0, &t, &err), ENG_OK);      /* <|endoftext|> (generation_config) */
    assert_int_equal(t.stop, CONV_STOP_EOS);
    conv_close(c);
}

static void a_full_context_ends_the_reply_with_a_message(void **state)
{
    (void)state;
    conv_t *c = open_with(48, 0, 0.0f);
    eng_err err;
    conv_token t;
    assert_int_equal(conv_begin(c, "Go on", &err), ENG_OK);
    int a = tok_token_to_id(conv_tokenizer(c), "a");
    assert_true(a >= 0);
    int steps = 0;
    while (conv_generating(c)) {
        assert_int_equal(conv_step(c, a, &t, &err), ENG_OK);   /* never an end-of-turn */
        assert_true(++steps <= 48);
    }
    assert_int_equal(t.stop, CONV_STOP_CONTEXT);
    assert_int_equal(conv_last_timings(c)->stop, CONV_STOP_CONTEXT);
    assert_non_null(strstr(conv_stop_message(c), "context full"));
    assert_int_equal(session_len(conv_session(c)), 48);
    conv_close(c);
}

static void a_prompt_longer_than_the_context_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    conv_t *c = open_with(16, 8, 0.0f);
    eng_err err;
    assert_int_equal(conv_set_system(c, "sys", &err), ENG_OK);
    assert_int_equal(conv_begin(c, "this message is far too long for a sixteen token context", &err), ENG_ERANGE);
    assert_non_null(strstr(err.msg, "context holds 16"));
    assert_int_equal(conv_n_messages(c), 1);
    assert_false(conv_generating(c));
    conv_close(c);
}

static void streamed_text_equals_the_decoded_reply_even_across_split_characters(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 64, 0.0f);
    tokenizer_t *tk = conv_tokenizer(c);
    eng_err err;
    conv_token t;
    /* "é" is two byte-level tokens: the first prints nothing, the second both bytes. */
    int b1 = tok_token_to_id(tk, "\xc3\x83");   /* "Ã": byte 0xC3 */
    int b2 = tok_token_to_id(tk, "\xc2\xa9");   /* "©": byte 0xA9 */
    int x = tok_token_to_id(tk, "x");
    assert_true(b1 >= 0 && b2 >= 0 && x >= 0);
    assert_int_equal(conv_begin(c, "Say it", &err), ENG_OK);
    assert_int_equal(conv_step(c, x, &t, &err), ENG_OK);
    assert_int_equal(t.len, 1);
    assert_int_equal(conv_step(c, b1, &t, &err), ENG_OK);
    assert_int_equal(t.len, 0);
    assert_int_equal(conv_step(c, b2, &t, &err), ENG_OK);
    assert_int_equal(t.len, 2);
    assert_memory_equal(t.text, "\xc3\xa9", 2);
    assert_string_equal(conv_message_text(c, conv_n_messages(c) - 1), "x\xc3\xa9");
    conv_stop_reply(c);
    assert_int_equal(conv_last_timings(c)->stop, CONV_STOP_USER);
    assert_string_equal(conv_message_text(c, conv_n_messages(c) - 1), "x\xc3\xa9");
    conv_close(c);
}

static void step_mode_can_replace_the_newest_token(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 64, 0.0f);
    tokenizer_t *tk = conv_tokenizer(c);
    eng_err err;
    conv_token t;
    const char *text;
    int x = tok_token_to_id(tk, "x"), y = tok_token_to_id(tk, "y");
    assert_true(x >= 0 && y >= 0);
    assert_int_equal(conv_begin(c, "Pick", &err), ENG_OK);
    int len0 = session_len(conv_session(c));
    assert_int_equal(conv_step(c, x, &t, &err), ENG_OK);
    assert_int_equal(conv_replace_last(c, y, &text, &err), ENG_OK);
    assert_string_equal(text, "y");
    assert_int_equal(session_len(conv_session(c)), len0);          /* nothing was run */
    assert_int_equal(conv_step(c, x, &t, &err), ENG_OK);
    assert_int_equal(session_tokens(conv_session(c))[len0], y);    /* the replacement was run */
    /* An end-of-turn can be replaced too, and generation goes on. */
    assert_int_equal(conv_step(c, im_end(c), &t, &err), ENG_OK);
    assert_false(conv_generating(c));
    assert_int_equal(conv_replace_last(c, x, &text, &err), ENG_OK);
    assert_true(conv_generating(c));
    assert_string_equal(text, "yxx");
    conv_close(c);
}

static void reset_keeps_the_system_message_and_its_cache(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 4, 0.0f);
    eng_err err;
    char out[256];
    assert_int_equal(conv_set_system(c, "You are terse.", &err), ENG_OK);
    assert_int_equal(conv_begin(c, "Hello", &err), ENG_OK);
    generate_to_end(c, out, sizeof out);
    conv_reset(c);
    assert_int_equal(conv_n_messages(c), 1);
    assert_int_equal(conv_message_role(c, 0), CONV_SYSTEM);
    assert_int_equal(conv_begin(c, "Hello", &err), ENG_OK);
    const conv_timings *t = conv_last_timings(c);
    assert_true(t->prefill_tokens < t->prompt_tokens);             /* the system turn was cached */
    conv_close(c);
}

static void the_cache_can_be_switched_off_mid_reply_with_the_same_greedy_text(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 12, 0.0f);
    eng_err err;
    char on[512], mixed[512];
    assert_int_equal(conv_begin(c, "Tell a story", &err), ENG_OK);
    generate_to_end(c, on, sizeof on);
    assert_int_equal(conv_regen(c, &err), ENG_OK);
    conv_token t;
    size_t used = 0;
    mixed[0] = '\0';
    for (int i = 0; conv_generating(c); i++) {
        if (i == 4)
            conv_set_cache(c, false);
        assert_int_equal(conv_step(c, -1, &t, &err), ENG_OK);
        memcpy(mixed + used, t.text, t.len);
        used += t.len;
        mixed[used] = '\0';
    }
    assert_string_equal(on, mixed);
    assert_false(conv_last_timings(c)->cache);
    conv_close(c);
}

static void save_writes_messages_settings_and_timings_as_json(void **state)
{
    (void)state;
    conv_t *c = open_with(0, 64, 0.0f);
    eng_err err;
    assert_int_equal(conv_set_system(c, "Be \"precise\"\n", &err), ENG_OK);
    assert_int_equal(conv_begin(c, "Hi", &err), ENG_OK);
    forced_reply(c, "Hello");
    char path[] = "/tmp/attnscope-conv-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(conv_save(c, path, false, &err), ENG_EINPUT);   /* exists */
    assert_int_equal(conv_save(c, path, true, &err), ENG_OK);
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0);                        /* renamed away */

    FILE *f = fopen(path, "rb");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    cJSON *j = cJSON_Parse(buf);
    assert_non_null(j);
    const cJSON *msgs = cJSON_GetObjectItem(j, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "content")->valuestring,
                        "Be \"precise\"\n");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 2), "role")->valuestring, "assistant");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 2), "content")->valuestring, "Hello");
    const cJSON *s = cJSON_GetObjectItem(j, "settings");
    assert_true(cJSON_GetObjectItem(s, "temp")->valuedouble == 0.0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(s, "cache")));
    const cJSON *tm = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "timings"), 0);
    assert_non_null(tm);
    assert_string_equal(cJSON_GetObjectItem(tm, "stop")->valuestring, "eos");
    assert_true(cJSON_GetObjectItem(tm, "gen_tokens")->valueint >= 2);
    cJSON_Delete(j);
    unlink(path);
    assert_int_equal(conv_save(c, "/no/such/folder/x.json", false, &err), ENG_EINPUT);
    assert_non_null(strstr(err.msg, "does not exist"));
    conv_close(c);
}

static void failed_allocations_in_open_and_a_turn_never_crash_and_are_reported(void **state)
{
    (void)state;
    int failures = 0;
    for (long nth = 1; nth < 5000; nth++) {
        conv_opts o;
        conv_opts_default(&o);
        o.max_new = 2;
        o.n_threads = 1;
        conv_t *c = NULL;
        eng_err err;
        eng_alloc_fail_at(nth);
        int rc = conv_open(&c, FIXTURE, &o, &err);
        if (rc == ENG_OK) {
            rc = conv_begin(c, "Hi", &err);
            conv_token t;
            while (rc == ENG_OK && conv_generating(c))
                rc = conv_step(c, -1, &t, &err);
        }
        long used = eng_alloc_count();
        eng_alloc_fail_at(0);
        conv_close(c);
        if (used < nth)
            break;                      /* the nth allocation was never reached: all done */
        /* Some modules tolerate a failed allocation (a cache, a JIT); when
         * the failure surfaces it must come with a message. */
        if (rc != ENG_OK) {
            assert_true(strlen(err.msg) > 0);
            failures++;
        }
    }
    assert_true(failures > 5);
}

static void a_folder_without_a_template_runs_as_plain_completion_with_a_warning(void **state)
{
    (void)state;
    char dir[] = "/tmp/attnscope-notmpl-XXXXXX";
    assert_non_null(mkdtemp(dir));
    static const char *const files[] = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"};
    char src[512], dst[512];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(src, sizeof src, "%s/%s", FIXTURE, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        char real[512];
        assert_non_null(realpath(src, real));
        assert_int_equal(symlink(real, dst), 0);
    }
    conv_t *c = NULL;
    eng_err err;
    assert_int_equal(conv_open(&c, dir, NULL, &err), ENG_OK);
    assert_false(conv_chat(c));
    assert_string_equal(conv_family(c), "none");
    assert_non_null(conv_warning(c));
    conv_opts o;
    conv_get_opts(c, &o);
    assert_true(o.chat);                         /* the request stays for the next /model */
    assert_int_equal(conv_begin(c, "Once upon", &err), ENG_OK);
    conv_token t;
    assert_int_equal(conv_step(c, -1, &t, &err), ENG_OK);
    conv_close(c);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        unlink(dst);
    }
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_second_turn_prefills_only_its_new_tokens),
        cmocka_unit_test(regen_runs_nothing_and_draws_from_the_same_prompt),
        cmocka_unit_test(regen_without_a_reply_is_refused),
        cmocka_unit_test(a_reply_stops_after_max_new_tokens),
        cmocka_unit_test(an_end_of_turn_token_ends_the_reply_and_prints_nothing),
        cmocka_unit_test(a_full_context_ends_the_reply_with_a_message),
        cmocka_unit_test(a_prompt_longer_than_the_context_is_refused_and_changes_nothing),
        cmocka_unit_test(streamed_text_equals_the_decoded_reply_even_across_split_characters),
        cmocka_unit_test(step_mode_can_replace_the_newest_token),
        cmocka_unit_test(reset_keeps_the_system_message_and_its_cache),
        cmocka_unit_test(the_cache_can_be_switched_off_mid_reply_with_the_same_greedy_text),
        cmocka_unit_test(save_writes_messages_settings_and_timings_as_json),
        cmocka_unit_test(failed_allocations_in_open_and_a_turn_never_crash_and_are_reported),
        cmocka_unit_test(a_folder_without_a_template_runs_as_plain_completion_with_a_warning),
    };
    return cmocka_run_group_tests_name("conv", tests, NULL, NULL);
}
