/* test_chat.c - chat templates: family detection, hand-checked renderings, and
 * every fixture conversation against transformers' apply_chat_template output
 * (tests/fixtures/templates/expected/, made by tools/ref_templates.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cjson/cJSON.h>

#include "chat.h"
#include "commands.h"
#include "engine_cli.h"

#define FIXDIR "tests/fixtures/templates"

static cJSON *load_json(const char *path)
{
    char *text = ecli_slurp(path, NULL);
    if (!text) return NULL;
    cJSON *j = cJSON_Parse(text);
    free(text);
    return j;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static chat_template *open_fixture(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, FIXDIR "/%s.json", name);
    cJSON *fx = load_json(path);
    assert_non_null(fx);
    chat_template *t = NULL;
    eng_err err;
    assert_int_equal(chat_open(&t, jstr(fx, "chat_template"), jstr(fx, "bos_token"),
                               jstr(fx, "eos_token"), &err), ENG_OK);
    cJSON_Delete(fx);
    return t;
}

static char *render(chat_template *t, const chat_msg *m, size_t n, unsigned flags)
{
    char *out = NULL;
    eng_err err;
    int rc = chat_render(t, m, n, flags, &out, &err);
    if (rc != ENG_OK) fail_msg("render failed: %s", err.msg);
    return out;
}

/* ------------------------------------------------------------ detection */

static void each_fixture_is_detected_as_its_family(void **state)
{
    (void)state;
    static const struct { const char *fixture, *family; } want[] = {
        {"llama3", "llama3"},     {"llama3.1", "llama3.1"}, {"llama3.2", "llama3.1"},
        {"qwen3", "qwen3"},       {"qwen2.5", "chatml"},    {"smollm2", "chatml"},
        {"zephyr", "zephyr"},     {"llama2", "llama2"},     {"mistral-v1", "mistral"},
        {"mixtral", "mistral"},   {"gemma", "gemma"},       {"phi3", "phi3"},
        {"mistral-v3", "mistral-v3"}, {"mistral-v3-tekken", "mistral-v3"},
        {"mistral-v7", "mistral-v7"}, {"gemma3", "gemma3"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        chat_template *t = open_fixture(want[i].fixture);
        if (strcmp(chat_family(t), want[i].family) != 0)
            fail_msg("%s: detected '%s', want '%s' (%s)", want[i].fixture, chat_family(t),
                     want[i].family, chat_warning(t) ? chat_warning(t) : "");
        assert_null(chat_warning(t));
        chat_close(t);
    }
}

static void unknown_template_is_family_none_with_a_warning_and_refuses_to_render(void **state)
{
    (void)state;
    chat_template *t;
    eng_err err;
    char *out = (char *)"unchanged";
    chat_msg m = {"user", "hi"};
    assert_int_equal(chat_open(&t, "{% for m in messages %}### {{ m.content }}{% endfor %}",
                               "<s>", "</s>", &err), ENG_OK);
    assert_string_equal(chat_family(t), "none");
    assert_non_null(chat_warning(t));
    assert_int_equal(chat_render(t, &m, 1, CHAT_GEN_PROMPT, &out, &err), ENG_EINPUT);
    assert_null(out);
    int n = -1;
    assert_null(chat_stop_strings(t, &n)[0]);
    assert_int_equal(n, 0);
    chat_close(t);

    assert_int_equal(chat_open(&t, NULL, NULL, NULL, &err), ENG_OK);
    assert_string_equal(chat_family(t), "none");
    assert_non_null(strstr(chat_warning(t), "plain completion"));
    chat_close(t);
}

static void variants_we_do_not_reproduce_are_not_guessed(void **state)
{
    (void)state;
    /* Qwen1.5 leaves the last turn open; a Gemma 3 look-alike that places the
     * system prompt differently; a Mistral template with a system message
     * rule we do not know: reported, not rendered as the nearest family. */
    static const char *const tmpls[] = {
        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']}}"
        "{% if (loop.last and add_generation_prompt) or not loop.last %}{{ '<|im_end|>' + '\\n'}}{% endif %}{% endfor %}",
        "{{ bos_token }}{%- set first_user_prefix = '' -%}<start_of_turn>{{ first_user_prefix + message['content'] | trim }}",
        "{% if messages[0]['role'] == 'system' %}{% set system_message = messages[0]['content'] %}{% endif %}"
        "{{ bos_token }}{% for message in messages %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}",
    };
    for (size_t i = 0; i < sizeof tmpls / sizeof tmpls[0]; i++) {
        chat_template *t;
        eng_err err;
        assert_int_equal(chat_open(&t, tmpls[i], "<s>", "</s>", &err), ENG_OK);
        assert_string_equal(chat_family(t), "none");
        assert_non_null(chat_warning(t));
        chat_close(t);
    }
}

static void stop_strings_name_the_end_of_turn_token_and_eos(void **state)
{
    (void)state;
    static const struct { const char *fixture, *first, *second; } want[] = {
        {"qwen3", "<|im_end|>", NULL},
        {"llama3", "<|eot_id|>", "<|end_of_text|>"},
        {"gemma", "<end_of_turn>", "<eos>"},
        {"phi3", "<|end|>", "<|endoftext|>"},
        {"zephyr", "</s>", NULL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        chat_template *t = open_fixture(want[i].fixture);
        int n;
        const char *const *s = chat_stop_strings(t, &n);
        assert_string_equal(s[0], want[i].first);
        if (want[i].second) {
            assert_int_equal(n, 2);
            assert_string_equal(s[1], want[i].second);
        } else {
            assert_int_equal(n, 1);
        }
        assert_null(s[n]);
        chat_close(t);
    }
}

/* ------------------------------------------------------------ hand-checked */

static void smollm2_adds_its_default_system_prompt_only_when_none_is_given(void **state)
{
    (void)state;
    chat_template *t = open_fixture("smollm2");
    chat_msg one[] = {{"user", "Hi"}};
    char *s = render(t, one, 1, CHAT_GEN_PROMPT);
    assert_string_equal(s,
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    eng_free(s);
    chat_msg two[] = {{"system", "Be brief."}, {"user", "Hi"}};
    s = render(t, two, 2, 0);
    assert_string_equal(s, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
    eng_free(s);
    chat_close(t);
}

static void qwen3_generation_prompt_adds_an_empty_think_block_only_without_thinking(void **state)
{
    (void)state;
    chat_template *t = open_fixture("qwen3");
    chat_msg m[] = {{"user", "2+2?"}};
    char *s = render(t, m, 1, CHAT_GEN_PROMPT);
    assert_string_equal(s, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n");
    eng_free(s);
    s = render(t, m, 1, CHAT_GEN_PROMPT | CHAT_NO_THINKING);
    assert_string_equal(s, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
                           "<think>\n\n</think>\n\n");
    eng_free(s);
    chat_close(t);
}

static void qwen3_drops_old_reasoning_and_keeps_it_after_the_last_query(void **state)
{
    (void)state;
    chat_template *t = open_fixture("qwen3");
    chat_msg hist[] = {{"user", "a"}, {"assistant", "<think>\nr1\n</think>\n\nx"}, {"user", "b"}};
    char *s = render(t, hist, 3, 0);
    assert_string_equal(s, "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nx<|im_end|>\n"
                           "<|im_start|>user\nb<|im_end|>\n");
    eng_free(s);
    chat_msg last[] = {{"user", "a"}, {"assistant", "<think>\n\nr1\n\n</think>\n\n\ny"}};
    s = render(t, last, 2, 0);
    assert_string_equal(s, "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\n"
                           "<think>\nr1\n</think>\n\ny<|im_end|>\n");
    eng_free(s);
    chat_close(t);
}

static void llama3_1_system_header_uses_the_given_date(void **state)
{
    (void)state;
    chat_template *t = open_fixture("llama3.2");
    eng_err err;
    assert_int_equal(chat_set_date(t, "02 Jan 2025", &err), ENG_OK);
    chat_msg m[] = {{"system", "  Be kind. "}, {"user", " Hi\n"}};
    char *s = render(t, m, 2, CHAT_GEN_PROMPT);
    assert_string_equal(s,
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 02 Jan 2025\n\nBe kind.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n");
    eng_free(s);
    chat_close(t);
    /* 3.1 has a fixed date and no clock */
    t = open_fixture("llama3.1");
    s = render(t, m + 1, 1, 0);
    assert_non_null(strstr(s, "Today Date: 26 Jul 2024\n\n<|eot_id|>"));
    eng_free(s);
    chat_close(t);
}

static void llama2_folds_the_system_prompt_into_the_first_instruction(void **state)
{
    (void)state;
    chat_template *t = open_fixture("llama2");
    /* strip() applies to the whole first content, <<SYS>> block included, so
     * the user text's leading space stays */
    chat_msg m[] = {{"system", "S"}, {"user", " u1 "}, {"assistant", "a1"}, {"user", "u2"}};
    char *s = render(t, m, 4, CHAT_GEN_PROMPT);
    assert_string_equal(s, "<s>[INST] <<SYS>>\nS\n<</SYS>>\n\n u1 [/INST] a1 </s><s>[INST] u2 [/INST]");
    eng_free(s);
    chat_close(t);
}

static void templates_that_raise_are_input_errors(void **state)
{
    (void)state;
    static const char *const names[] = {"gemma", "mistral-v1", "llama2"};
    chat_msg sys_first[] = {{"system", "S"}, {"user", "u"}};
    chat_msg two_users[] = {{"user", "a"}, {"user", "b"}};
    for (size_t i = 0; i < 3; i++) {
        chat_template *t = open_fixture(names[i]);
        char *out = NULL;
        eng_err err;
        if (i < 2) assert_int_equal(chat_render(t, sys_first, 2, 0, &out, &err), ENG_EINPUT);
        assert_int_equal(chat_render(t, two_users, 2, 0, &out, &err), ENG_EINPUT);
        assert_null(out);
        chat_close(t);
    }
}

static void unknown_roles_and_missing_fields_are_input_errors(void **state)
{
    (void)state;
    chat_template *t = open_fixture("qwen2.5");
    char *out = NULL;
    eng_err err;
    chat_msg bad_role[] = {{"tool", "x"}};
    chat_msg no_content[] = {{"user", NULL}};
    assert_int_equal(chat_render(t, bad_role, 1, 0, &out, &err), ENG_EINPUT);
    assert_non_null(strstr(err.msg, "tool"));
    assert_int_equal(chat_render(t, no_content, 1, 0, &out, &err), ENG_EINPUT);
    assert_null(out);
    chat_close(t);
}

static void python_strip_removes_unicode_whitespace_like_jinja_trim(void **state)
{
    (void)state;
    chat_template *t = open_fixture("gemma");
    /* U+00A0, U+3000 and U+2028 are whitespace to Python; U+200B is not */
    chat_msg m[] = {{"user", "\xc2\xa0\xe3\x80\x80 x y\t\xe2\x80\xa8"}, {"assistant", "\xe2\x80\x8bz "}};
    char *s = render(t, m, 2, 0);
    assert_string_equal(s, "<bos><start_of_turn>user\nx y<end_of_turn>\n"
                           "<start_of_turn>model\n\xe2\x80\x8bz<end_of_turn>\n");
    eng_free(s);
    chat_close(t);
}

/* ------------------------------------------------------------ folders */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void open_dir_reads_token_objects_and_reports_bad_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/attnscope_chat_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    write_file(path, "{\"bos_token\": {\"content\": \"<s>\", \"lstrip\": false}, \"eos_token\": \"</s>\","
                     " \"chat_template\": [{\"name\": \"tool_use\", \"template\": \"x\"},"
                     " {\"name\": \"default\", \"template\": \"{{ bos_token }}{% for message in messages %}"
                     "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% endfor %}\"}]}");
    chat_template *t;
    eng_err err;
    assert_int_equal(chat_open_dir(&t, dir, &err), ENG_OK);
    assert_string_equal(chat_family(t), "mistral");
    chat_msg m = {"user", "hi"};
    char *s = render(t, &m, 1, 0);
    assert_string_equal(s, "<s>[INST] hi [/INST]");
    eng_free(s);
    chat_close(t);

    write_file(path, "{\"chat_template\": 42}");
    assert_int_equal(chat_open_dir(&t, dir, &err), ENG_EINPUT);
    assert_null(t);
    assert_non_null(strstr(err.msg, "chat_template"));
    write_file(path, "{not json");
    assert_int_equal(chat_open_dir(&t, dir, &err), ENG_EINPUT);
    assert_non_null(strstr(err.msg, "tokenizer_config.json"));
    unlink(path);
    assert_int_equal(chat_open_dir(&t, dir, &err), ENG_EIO);
    rmdir(dir);
}

static void open_dir_on_the_real_llama3_folder_finds_its_template(void **state)
{
    (void)state;
    const char *dir = ".cache/tokenizers/llama3";
    struct stat st;
    if (stat(dir, &st) != 0) fail_msg("%s missing: run tests/fetch_tokenizers.sh", dir);
    chat_template *t;
    eng_err err;
    assert_int_equal(chat_open_dir(&t, dir, &err), ENG_OK);
    assert_string_equal(chat_family(t), "llama3");
    chat_msg m = {"user", "Hi"};
    char *s = render(t, &m, 1, 0);
    /* this copy of the template writes the assistant header unconditionally */
    assert_string_equal(s, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                           "<|start_header_id|>assistant<|end_header_id|>\n\n");
    eng_free(s);
    chat_close(t);
}

static void every_allocation_failure_is_reported_and_leaks_nothing(void **state)
{
    (void)state;
    chat_msg m[] = {{"system", "S"}, {"user", "u"}, {"assistant", "<think>r</think>a"}, {"user", "v"}};
    static const char *const names[] = {"qwen3", "llama2", "smollm2"};
    for (size_t k = 0; k < 3; k++) {
        char path[256];
        snprintf(path, sizeof path, FIXDIR "/%s.json", names[k]);
        cJSON *fx = load_json(path);
        assert_non_null(fx);
        int ok_at = 0;
        for (long n = 1; n < 200 && !ok_at; n++) {
            chat_template *t = NULL;
            char *out = NULL;
            eng_err err;
            eng_alloc_fail_at(n);
            int rc = chat_open(&t, jstr(fx, "chat_template"), jstr(fx, "bos_token"),
                               jstr(fx, "eos_token"), &err);
            if (rc == ENG_OK) rc = chat_render(t, m, 4, CHAT_GEN_PROMPT, &out, &err);
            eng_alloc_fail_at(0);
            if (rc == ENG_OK && eng_alloc_count() < n) ok_at = (int)n;
            else assert_true(rc == ENG_OK || rc == ENG_ENOMEM);
            if (rc != ENG_OK) assert_null(out);
            eng_free(out);
            chat_close(t);
        }
        assert_true(ok_at > 1);
        cJSON_Delete(fx);
    }
}

/* ------------------------------------------------------------ command line */

/* Runs `attnscope template ARGS`, capturing stdout and stderr into files. */
static int run_template_cmd(char **argv, int argc, char *out, size_t out_n, char *errs, size_t err_n)
{
    fflush(stdout);
    fflush(stderr);
    int o = dup(1), e = dup(2);
    FILE *fo = tmpfile(), *fe = tmpfile();
    assert_non_null(fo);
    assert_non_null(fe);
    dup2(fileno(fo), 1);
    dup2(fileno(fe), 2);
    int rc = cmd_template(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(o, 1);
    dup2(e, 2);
    close(o);
    close(e);
    rewind(fo);
    rewind(fe);
    size_t n = fread(out, 1, out_n - 1, fo);
    out[n] = '\0';
    n = fread(errs, 1, err_n - 1, fe);
    errs[n] = '\0';
    fclose(fo);
    fclose(fe);
    return rc;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static void the_template_command_prints_the_prompt_and_fails_with_one_line(void **state)
{
    (void)state;
    char dir[] = "/tmp/attnscope_tplcmd_XXXXXX", cfg[256], msgs[256], bad[256];
    assert_non_null(mkdtemp(dir));
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    snprintf(msgs, sizeof msgs, "%s/m.json", dir);
    snprintf(bad, sizeof bad, "%s/bad.json", dir);
    write_file(cfg, "{\"eos_token\": \"<|im_end|>\", \"chat_template\": \"{% for message in messages %}"
                    "{{'<|im_start|>' + message['role'] + '\\\\n' + message['content'] + '<|im_end|>' + '\\\\n'}}"
                    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\\\n' }}{% endif %}\"}");
    write_file(msgs, "[{\"role\": \"user\", \"content\": \"Hi\"}]");
    write_file(bad, "[{\"role\": \"user\"}]");
    char out[4096], errs[4096];

    char *ok[] = {"template", "--model", dir, "--messages", msgs, NULL};
    assert_int_equal(run_template_cmd(ok, 5, out, sizeof out, errs, sizeof errs), 0);
    assert_string_equal(out, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    assert_string_equal(errs, "");

    char *nogen[] = {"template", "--model", dir, "--messages", msgs, "--no-generation-prompt", NULL};
    assert_int_equal(run_template_cmd(nogen, 6, out, sizeof out, errs, sizeof errs), 0);
    assert_string_equal(out, "<|im_start|>user\nHi<|im_end|>\n");

    char *cases[][6] = {
        {"template", "--model", dir, "--messages", bad, NULL},          /* message without content */
        {"template", "--model", dir, "--messages", cfg, NULL},          /* not an array */
        {"template", "--model", "/nonexistent", "--messages", msgs, NULL},
        {"template", "--model", dir, "--messages", "/nonexistent.json", NULL},
        {"template", "--model", dir, "--bogus", NULL, NULL},
        {"template", "--model", dir, NULL, NULL, NULL},
    };
    const int argcs[] = {5, 5, 5, 5, 4, 3};
    for (int k = 0; k < 6; k++) {
        int rc = run_template_cmd(cases[k], argcs[k], out, sizeof out, errs, sizeof errs);
        if (rc != 2 || count_lines(errs) != 1 || out[0])
            fail_msg("case %d: rc %d, stdout '%s', stderr '%s'", k, rc, out, errs);
    }
    /* a template no family matches: one line naming the folder, exit 2 */
    write_file(cfg, "{\"chat_template\": \"{{ messages }}\"}");
    assert_int_equal(run_template_cmd(ok, 5, out, sizeof out, errs, sizeof errs), 2);
    assert_non_null(strstr(errs, dir));
    assert_int_equal(count_lines(errs), 1);
    unlink(cfg);
    unlink(msgs);
    unlink(bad);
    rmdir(dir);
}

/* ------------------------------------------------------------ reference */

static unsigned flags_for(const cJSON *item, chat_template *t)
{
    unsigned f = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "add_generation_prompt"))
                     ? CHAT_GEN_PROMPT : 0;
    const cJSON *kw = cJSON_GetObjectItemCaseSensitive(item, "kwargs");
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(kw, "enable_thinking");
    if (cJSON_IsFalse(th)) f |= CHAT_NO_THINKING;
    const char *date = jstr(kw, "date_string");
    eng_err err;
    assert_int_equal(chat_set_date(t, date, &err), ENG_OK);
    return f;
}

static void every_fixture_conversation_matches_transformers(void **state)
{
    (void)state;
    const char *dev = getenv("ATTNSCOPE_TEMPLATE_EXPECTED");   /* local jinja2 checks */
    char expdir[512];
    snprintf(expdir, sizeof expdir, "%s", dev ? dev : FIXDIR "/expected");
    cJSON *cases_doc = load_json(FIXDIR "/cases.json");
    cJSON *cases = cJSON_GetObjectItemCaseSensitive(cases_doc, "cases");
    assert_non_null(cases);
    DIR *d = opendir(FIXDIR);
    assert_non_null(d);
    struct dirent *de;
    int files = 0, compared = 0, raised = 0, mismatches = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 ||
            strcmp(de->d_name, "cases.json") == 0)
            continue;
        char name[256], path[1024];
        snprintf(name, sizeof name, "%.*s", (int)(len - 5), de->d_name);
        snprintf(path, sizeof path, "%s/%s.json", expdir, name);
        cJSON *exp = load_json(path);
        if (!exp) {
            print_message("[ SKIPPED  ] %s: no expected file %s yet (tools/ref_templates.py makes it)\n",
                          name, path);
            continue;
        }
        const char *renderer = jstr(exp, "renderer");
        if (!dev && (!renderer || strncmp(renderer, "transformers", 12) != 0))
            fail_msg("%s: expected outputs not made by transformers (%s)", path,
                     renderer ? renderer : "?");
        files++;
        chat_template *t = open_fixture(name);
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(exp, "results")) {
            const char *cname = jstr(item, "case");
            const cJSON *c, *msgs = NULL;
            cJSON_ArrayForEach(c, cases)
                if (strcmp(jstr(c, "name"), cname) == 0)
                    msgs = cJSON_GetObjectItemCaseSensitive(c, "messages");
            assert_non_null(msgs);
            chat_msg m[16];
            size_t n = 0;
            const cJSON *mm;
            cJSON_ArrayForEach(mm, msgs) {
                assert_true(n < 16);
                m[n].role = jstr(mm, "role");
                m[n].content = jstr(mm, "content");
                n++;
            }
            unsigned flags = flags_for(item, t);
            char *out = NULL;
            eng_err err;
            int rc = chat_render(t, m, n, flags, &out, &err);
            bool ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "ok"));
            if (!ok) {
                if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "template_raised"))) {
                    print_message("[ SKIPPED  ] %s/%s: reference failed: %s\n", name, cname,
                                  jstr(item, "error"));
                } else if (rc != ENG_EINPUT) {
                    print_message("MISMATCH %s/%s gen=%d: template raises (%s), we rendered\n",
                                  name, cname, !!(flags & CHAT_GEN_PROMPT), jstr(item, "error"));
                    mismatches++;
                } else {
                    raised++;
                }
            } else if (rc != ENG_OK) {
                print_message("MISMATCH %s/%s gen=%d: we failed: %s\n", name, cname,
                              !!(flags & CHAT_GEN_PROMPT), err.msg);
                mismatches++;
            } else if (strcmp(out, jstr(item, "text")) != 0) {
                print_message("MISMATCH %s/%s gen=%d flags=%u\n  want: %s\n  got:  %s\n", name, cname,
                              !!(flags & CHAT_GEN_PROMPT), flags, jstr(item, "text"), out);
                mismatches++;
            } else {
                compared++;
            }
            eng_free(out);
        }
        chat_close(t);
        cJSON_Delete(exp);
    }
    closedir(d);
    cJSON_Delete(cases_doc);
    print_message("templates: %d fixtures, %d prompts equal, %d raises matched, %d mismatches\n",
                  files, compared, raised, mismatches);
    assert_int_equal(mismatches, 0);
    if (files == 0) skip();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_fixture_is_detected_as_its_family),
        cmocka_unit_test(unknown_template_is_family_none_with_a_warning_and_refuses_to_render),
        cmocka_unit_test(variants_we_do_not_reproduce_are_not_guessed),
        cmocka_unit_test(stop_strings_name_the_end_of_turn_token_and_eos),
        cmocka_unit_test(smollm2_adds_its_default_system_prompt_only_when_none_is_given),
        cmocka_unit_test(qwen3_generation_prompt_adds_an_empty_think_block_only_without_thinking),
        cmocka_unit_test(qwen3_drops_old_reasoning_and_keeps_it_after_the_last_query),
        cmocka_unit_test(llama3_1_system_header_uses_the_given_date),
        cmocka_unit_test(llama2_folds_the_system_prompt_into_the_first_instruction),
        cmocka_unit_test(templates_that_raise_are_input_errors),
        cmocka_unit_test(unknown_roles_and_missing_fields_are_input_errors),
        cmocka_unit_test(python_strip_removes_unicode_whitespace_like_jinja_trim),
        cmocka_unit_test(open_dir_reads_token_objects_and_reports_bad_files),
        cmocka_unit_test(open_dir_on_the_real_llama3_folder_finds_its_template),
        cmocka_unit_test(every_allocation_failure_is_reported_and_leaks_nothing),
        cmocka_unit_test(the_template_command_prints_the_prompt_and_fails_with_one_line),
        cmocka_unit_test(every_fixture_conversation_matches_transformers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
