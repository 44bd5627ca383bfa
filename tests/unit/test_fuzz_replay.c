/* test_fuzz_replay.c - replays every committed fuzz corpus (each file under
 * tests/fuzz/corpus/TARGET: the seeds and every input that once crashed a
 * target) through the fuzz targets' entry points, built with the normal
 * compiler: `make test` and `make asan` see any regression a fuzzer found. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <dirent.h>
#include <cmocka.h>

/* Each target defines LLVMFuzzerTestOneInput; rename it per target so that
 * all of them live in this one binary. */
#define LLVMFuzzerTestOneInput fuzz_safetensors_one
#include "../fuzz/fuzz_safetensors.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_config_one
#include "../fuzz/fuzz_config.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tokenizer_load_one
#include "../fuzz/fuzz_tokenizer_load.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_tokenize_one
#include "../fuzz/fuzz_tokenize.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_chat_one
#include "../fuzz/fuzz_chat.c"
#undef LLVMFuzzerTestOneInput
#define LLVMFuzzerTestOneInput fuzz_slash_one
#include "../fuzz/fuzz_slash.c"
#undef LLVMFuzzerTestOneInput

/* Runs fn over every file of tests/fuzz/corpus/target; returns the count. */
static int replay(const char *target, int (*fn)(const uint8_t *, size_t))
{
    char dir[512];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", target);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *data = fuzz_slurp(path, &len);
        assert_non_null(data);
        /* An exact-size copy, so that ASan sees any read past the input. */
        uint8_t *exact = malloc(len ? len : 1);
        assert_non_null(exact);
        memcpy(exact, data, len);
        free(data);
        assert_int_equal(fn(exact, len), 0);
        free(exact);
        n++;
    }
    closedir(d);
    return n;
}

static void safetensors_corpus_replays_without_a_crash(void **state)
{
    (void)state;
    assert_true(replay("safetensors", fuzz_safetensors_one) >= 5);
}

static void config_corpus_replays_without_a_crash(void **state)
{
    (void)state;
    assert_true(replay("config", fuzz_config_one) >= 5);
}

static void tokenizer_load_corpus_replays_without_a_crash(void **state)
{
    (void)state;
    assert_true(replay("tokenizer_load", fuzz_tokenizer_load_one) >= 2);
}

static void tokenize_corpus_replays_without_a_crash(void **state)
{
    (void)state;
    assert_true(replay("tokenize", fuzz_tokenize_one) >= 50);
}

static void chat_corpus_replays_without_a_crash(void **state)
{
    (void)state;
    assert_true(replay("chat", fuzz_chat_one) >= 20);
}

static void slash_corpus_replays_without_a_crash(void **state)
{
    (void)state;
    assert_true(replay("slash", fuzz_slash_one) >= 20);
}

/* The checks inside the targets are real: a config the engine cannot size is
 * refused, and the seeds a target is given are actually accepted. */
static void targets_accept_their_seeds_and_refuse_junk(void **state)
{
    (void)state;
    config_t c;
    eng_err err;
    size_t len = 0;
    char *json = fuzz_slurp("tests/fuzz/corpus/config/tiny-chat", &len);
    assert_non_null(json);
    assert_int_equal(config_parse(&c, json, len, "config.json", &err), ENG_OK);
    free(json);
    assert_int_not_equal(config_parse(&c, "{\"hidden_size\": -1}", 19, "config.json", &err), ENG_OK);
    assert_true(err.msg[0] != '\0');

    json = fuzz_slurp("tests/fuzz/corpus/tokenizer_load/tiny-chat", &len);
    assert_non_null(json);
    tokenizer_t *t = NULL;
    assert_int_equal(tok_open_mem(&t, json, len, NULL, 0, &err), ENG_OK);
    tok_close(t);
    free(json);
}

static void cleanup_globals(void)
{
    for (size_t i = 0; i < TZ_N; i++) tok_close(tz_tok[i]);
    for (size_t i = 0; i <= CH_N; i++) chat_close(ch_tpl[i]);
    conv_close(sl_conv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(safetensors_corpus_replays_without_a_crash),
        cmocka_unit_test(config_corpus_replays_without_a_crash),
        cmocka_unit_test(tokenizer_load_corpus_replays_without_a_crash),
        cmocka_unit_test(tokenize_corpus_replays_without_a_crash),
        cmocka_unit_test(chat_corpus_replays_without_a_crash),
        cmocka_unit_test(slash_corpus_replays_without_a_crash),
        cmocka_unit_test(targets_accept_their_seeds_and_refuse_junk),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    cleanup_globals();
    return rc;
}
