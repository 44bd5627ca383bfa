/* test_config.c - config.json and generation_config.json parsing: defaults,
 * both rope forms, the four architectures, and every refused field. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>

#include "config.h"
#include "st_write.h"

#define BASE "\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":96," \
             "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":300"

static int parse(config_t *c, const char *json, eng_err *e)
{
    return config_parse(c, json, strlen(json), "cfg/config.json", e);
}

static void a_minimal_llama_config_gets_the_transformers_defaults(void **state)
{
    (void)state;
    config_t c;
    eng_err e;
    assert_int_equal(parse(&c, "{" BASE "}", &e), ENG_OK);
    assert_int_equal(c.arch, ARCH_LLAMA);
    assert_string_equal(c.model_type, "llama");
    assert_int_equal(c.dim, 64);
    assert_int_equal(c.hidden_dim, 96);
    assert_int_equal(c.n_layers, 2);
    assert_int_equal(c.n_heads, 4);
    assert_int_equal(c.n_kv_heads, 4);          /* defaults to the heads */
    assert_int_equal(c.head_dim, 16);           /* hidden / heads */
    assert_int_equal(c.vocab_size, 300);
    assert_int_equal(c.max_seq_len, 2048);
    assert_true(c.norm_eps == 1e-6f);
    assert_true(c.rope_theta == 10000.0f);
    assert_int_equal(c.rope_type, ROPE_NONE);
    assert_false(c.tie_embeddings);
    assert_false(c.attn_bias);
    assert_false(c.qk_norm);
    assert_int_equal(c.bos_id, -1);
    assert_int_equal(c.n_eos, 0);
    assert_int_equal(c.dtype, DT_F32);
}

static void explicit_fields_are_honoured(void **state)
{
    (void)state;
    config_t c;
    eng_err e;
    assert_int_equal(parse(&c, "{" BASE ",\"num_key_value_heads\":1,\"head_dim\":32,"
                               "\"rms_norm_eps\":1e-5,\"rope_theta\":500000.0,\"max_position_embeddings\":8192,"
                               "\"tie_word_embeddings\":true,\"bos_token_id\":5,\"eos_token_id\":[7,8,7],"
                               "\"torch_dtype\":\"bfloat16\",\"rope_scaling\":null}", &e), ENG_OK);
    assert_int_equal(c.n_kv_heads, 1);
    assert_int_equal(c.head_dim, 32);
    assert_int_equal(config_q_dim(&c), 128);
    assert_int_equal(config_kv_dim(&c), 32);
    assert_int_equal(config_kv_mul(&c), 4);
    assert_true(c.norm_eps == 1e-5f);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(c.max_seq_len, 8192);
    assert_true(c.tie_embeddings);
    assert_int_equal(c.bos_id, 5);
    assert_int_equal(c.n_eos, 2);               /* a repeated id counts once */
    assert_int_equal(c.eos_ids[0], 7);
    assert_int_equal(c.eos_ids[1], 8);
    assert_int_equal(c.dtype, DT_BF16);
    assert_int_equal(c.rope_type, ROPE_NONE);
    /* transformers 5 writes "dtype" */
    assert_int_equal(parse(&c, "{" BASE ",\"dtype\":\"float16\",\"eos_token_id\":2}", &e), ENG_OK);
    assert_int_equal(c.dtype, DT_F16);
    assert_int_equal(c.n_eos, 1);
    assert_int_equal(c.eos_ids[0], 2);
}

static void rope_scaling_llama3_and_linear_are_read_in_both_spellings(void **state)
{
    (void)state;
    config_t c;
    eng_err e;
    assert_int_equal(parse(&c, "{" BASE ",\"rope_theta\":500000,\"rope_scaling\":{\"rope_type\":\"llama3\","
                               "\"factor\":32.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,"
                               "\"original_max_position_embeddings\":8192}}", &e), ENG_OK);
    assert_int_equal(c.rope_type, ROPE_LLAMA3);
    assert_true(c.rope_factor == 32.0f);
    assert_true(c.rope_low_freq == 1.0f);
    assert_true(c.rope_high_freq == 4.0f);
    assert_int_equal(c.rope_orig_max_pos, 8192);
    assert_true(c.rope_theta == 500000.0f);
    assert_int_equal(parse(&c, "{" BASE ",\"rope_scaling\":{\"type\":\"linear\",\"factor\":4}}", &e), ENG_OK);
    assert_int_equal(c.rope_type, ROPE_LINEAR);
    assert_true(c.rope_factor == 4.0f);
    assert_int_equal(parse(&c, "{" BASE ",\"rope_scaling\":{\"rope_type\":\"default\"}}", &e), ENG_OK);
    assert_int_equal(c.rope_type, ROPE_NONE);
}

static void rope_parameters_of_transformers_5_take_precedence(void **state)
{
    (void)state;
    config_t c;
    eng_err e;
    assert_int_equal(parse(&c, "{" BASE ",\"rope_theta\":1,\"rope_parameters\":{\"rope_theta\":250000.0,"
                               "\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
                               "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":64}}", &e), ENG_OK);
    assert_true(c.rope_theta == 250000.0f);
    assert_int_equal(c.rope_type, ROPE_LLAMA3);
    assert_int_equal(c.rope_orig_max_pos, 64);
    assert_int_equal(parse(&c, "{" BASE ",\"rope_parameters\":{\"rope_theta\":1000000.0,\"rope_type\":\"default\"}}",
                           &e), ENG_OK);
    assert_true(c.rope_theta == 1000000.0f);
    assert_int_equal(c.rope_type, ROPE_NONE);
    assert_int_equal(parse(&c, "{" BASE ",\"rope_parameters\":{\"rope_type\":\"linear\",\"factor\":2.0}}", &e), ENG_OK);
    assert_true(c.rope_theta == 10000.0f);
    assert_int_equal(c.rope_type, ROPE_LINEAR);
    assert_true(c.rope_factor == 2.0f);
}

static void qwen2_has_qkv_bias_and_qwen3_has_qk_norm(void **state)
{
    (void)state;
    config_t c;
    eng_err e;
    const char *q2 = "{\"model_type\":\"qwen2\",\"hidden_size\":64,\"intermediate_size\":96,"
                     "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                     "\"vocab_size\":300,\"use_sliding_window\":false,\"sliding_window\":4096}";
    assert_int_equal(parse(&c, q2, &e), ENG_OK);
    assert_int_equal(c.arch, ARCH_QWEN2);
    assert_true(c.attn_bias);
    assert_false(c.qk_norm);
    assert_int_equal(c.head_dim, 16);
    const char *q3 = "{\"model_type\":\"qwen3\",\"hidden_size\":64,\"intermediate_size\":96,"
                     "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"num_key_value_heads\":2,"
                     "\"vocab_size\":300,\"attention_bias\":false}";
    assert_int_equal(parse(&c, q3, &e), ENG_OK);
    assert_int_equal(c.arch, ARCH_QWEN3);
    assert_false(c.attn_bias);
    assert_true(c.qk_norm);
    assert_int_equal(c.head_dim, 128);          /* Qwen3Config's default */
    assert_int_equal(parse(&c, "{\"model_type\":\"mistral\",\"hidden_size\":64,\"intermediate_size\":96,"
                               "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":300,"
                               "\"sliding_window\":null}", &e), ENG_OK);
    assert_int_equal(c.arch, ARCH_MISTRAL);
    assert_false(c.attn_bias);
}

/* The JSON must be refused with ENG_EINPUT, the message naming the file and
 * containing want. */
static void refused(const char *json, const char *want)
{
    config_t c;
    eng_err e = {{0}};
    int rc = parse(&c, json, &e);
    if (rc != ENG_EINPUT || !strstr(e.msg, want) || !strstr(e.msg, "cfg/config.json: "))
        print_error("%s\n -> rc %d \"%s\" (wanted \"%s\")\n", json, rc, e.msg, want);
    assert_int_equal(rc, ENG_EINPUT);
    assert_non_null(strstr(e.msg, "cfg/config.json: "));
    assert_non_null(strstr(e.msg, want));
}

static void broken_json_and_unsupported_models_are_refused(void **state)
{
    (void)state;
    refused("{\"model_type\": \"llama\",", "not valid JSON");
    refused("", "not valid JSON");
    refused("[1, 2]", "not a JSON object");
    refused("{\"hidden_size\":64}", "required field model_type is missing");
    refused("{\"model_type\":7}", "field model_type must be a string");
    refused("{\"model_type\":\"gpt2\",\"hidden_size\":64}", "model_type \"gpt2\" is not supported");
    refused("{" BASE ",\"hidden_act\":\"gelu\"}", "hidden_act must be \"silu\"");
    refused("{" BASE ",\"attention_bias\":true}", "attention_bias true (bias on o_proj) is not supported");
    refused("{" BASE ",\"mlp_bias\":true}", "mlp_bias true is not supported");
}

static void missing_or_zero_required_fields_are_named(void **state)
{
    (void)state;
    refused("{\"model_type\":\"llama\",\"intermediate_size\":96,\"num_hidden_layers\":2,"
            "\"num_attention_heads\":4,\"vocab_size\":300}", "required field hidden_size is missing");
    refused("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":0,"
            "\"num_attention_heads\":4,\"vocab_size\":300}", "required field num_hidden_layers is 0");
    refused("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
            "\"num_attention_heads\":4}", "required field vocab_size is missing");
    refused("{\"model_type\":\"llama\",\"hidden_size\":64,\"intermediate_size\":null,\"num_hidden_layers\":2,"
            "\"num_attention_heads\":4,\"vocab_size\":3}", "required field intermediate_size is missing");
    refused("{\"model_type\":\"llama\",\"hidden_size\":\"64\",\"intermediate_size\":96,\"num_hidden_layers\":2,"
            "\"num_attention_heads\":4,\"vocab_size\":3}", "field hidden_size must be an integer");
    refused("{\"model_type\":\"llama\",\"hidden_size\":64.5,\"intermediate_size\":96,\"num_hidden_layers\":2,"
            "\"num_attention_heads\":4,\"vocab_size\":3}", "field hidden_size must be an integer");
    refused("{\"model_type\":\"llama\",\"hidden_size\":-64,\"intermediate_size\":96,\"num_hidden_layers\":2,"
            "\"num_attention_heads\":4,\"vocab_size\":3}", "field hidden_size = -64 is out of range");
    refused("{\"model_type\":\"llama\",\"hidden_size\":1e12,\"intermediate_size\":96,\"num_hidden_layers\":2,"
            "\"num_attention_heads\":4,\"vocab_size\":3}", "hidden_size");
}

static void inconsistent_dimensions_are_refused(void **state)
{
    (void)state;
    refused("{" BASE ",\"num_key_value_heads\":3}", "num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
    refused("{" BASE ",\"num_key_value_heads\":0}", "num_key_value_heads");
    refused("{\"model_type\":\"llama\",\"hidden_size\":66,\"intermediate_size\":96,\"num_hidden_layers\":2,"
            "\"num_attention_heads\":4,\"vocab_size\":300}", "hidden_size (66) is not a multiple of num_attention_heads (4)");
    refused("{" BASE ",\"head_dim\":15}", "head_dim (15) must be even");
    refused("{" BASE ",\"rms_norm_eps\":0}", "rms_norm_eps must be a positive number");
    refused("{" BASE ",\"rope_theta\":-1}", "rope_theta must be a positive number");
    refused("{" BASE ",\"tie_word_embeddings\":1}", "tie_word_embeddings must be true or false");
    refused("{" BASE ",\"eos_token_id\":300}", "eos_token_id must be a token id");
    refused("{" BASE ",\"eos_token_id\":[1,\"x\"]}", "eos_token_id must be a token id");
    refused("{" BASE ",\"eos_token_id\":[1,2,3,4,5,6,7,8,9]}", "eos_token_id has more than 8 ids");
}

static void unsupported_or_incomplete_rope_scaling_is_refused(void **state)
{
    (void)state;
    refused("{" BASE ",\"rope_scaling\":{\"rope_type\":\"yarn\",\"factor\":4}}", "rope_scaling.rope_type \"yarn\" is not supported");
    refused("{" BASE ",\"rope_parameters\":{\"rope_type\":\"dynamic\",\"factor\":4}}", "rope_parameters.rope_type \"dynamic\"");
    refused("{" BASE ",\"rope_scaling\":{\"rope_type\":\"linear\"}}", "required field rope_scaling.factor is missing");
    refused("{" BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"high_freq_factor\":4,"
            "\"original_max_position_embeddings\":8192}}", "required field rope_scaling.low_freq_factor is missing");
    refused("{" BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":4,"
            "\"high_freq_factor\":4,\"original_max_position_embeddings\":8192}}", "high_freq_factor must be greater");
    refused("{" BASE ",\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8,\"low_freq_factor\":1,"
            "\"high_freq_factor\":4}}", "required field original_max_position_embeddings is missing");
    refused("{" BASE ",\"rope_scaling\":\"linear\"}", "rope_scaling must be an object or null");
    refused("{" BASE ",\"rope_parameters\":[1]}", "rope_parameters must be an object");
    refused("{" BASE ",\"rope_scaling\":{\"rope_type\":3}}", "rope_type must be a string");
}

/* ------------------------------------------------------------- folders */

static char tmp[64];

static int setup(void **state)
{
    (void)state;
    return stw_tmpdir(tmp, "cfg") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    stw_rm_tree(tmp);
    return 0;
}

static const char *file_in(const char *sub, const char *name, const char *text)
{
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", tmp, sub);
    mkdir(p, 0755);
    if (name) {
        snprintf(p, sizeof p, "%s/%s/%s", tmp, sub, name);
        if (text)
            assert_int_equal(stw_text(p, text), 0);
        else
            mkdir(p, 0755);
    }
    snprintf(p, sizeof p, "%s/%s", tmp, sub);
    return p;
}

static void generation_config_adds_its_eos_ids_and_bos(void **state)
{
    (void)state;
    config_t c;
    eng_err e;
    file_in("g1", "config.json", "{" BASE ",\"eos_token_id\":2}");
    const char *dir = file_in("g1", "generation_config.json", "{\"bos_token_id\":9,\"eos_token_id\":[2,11,12]}");
    assert_int_equal(config_load(&c, dir, &e), ENG_OK);
    assert_int_equal(c.n_eos, 3);
    assert_int_equal(c.eos_ids[0], 2);
    assert_int_equal(c.eos_ids[1], 11);
    assert_int_equal(c.eos_ids[2], 12);
    assert_int_equal(c.bos_id, 9);
    /* no generation_config.json: fine */
    dir = file_in("g2", "config.json", "{" BASE ",\"eos_token_id\":[3,4]}");
    assert_int_equal(config_load(&c, dir, &e), ENG_OK);
    assert_int_equal(c.n_eos, 2);
}

static void broken_files_in_the_folder_are_refused_by_name(void **state)
{
    (void)state;
    config_t c;
    eng_err e;
    file_in("b1", "config.json", "{" BASE "}");
    const char *dir = file_in("b1", "generation_config.json", "{\"eos_token_id\":");
    assert_int_equal(config_load(&c, dir, &e), ENG_EINPUT);
    assert_non_null(strstr(e.msg, "b1/generation_config.json: not a JSON object"));
    file_in("b2", "config.json", "{" BASE "}");
    dir = file_in("b2", "generation_config.json", NULL);    /* a folder */
    assert_int_equal(config_load(&c, dir, &e), ENG_EINPUT);
    assert_non_null(strstr(e.msg, "b2/generation_config.json: is a folder"));
    file_in("b3", "generation_config.json", "{\"eos_token_id\":[1,2,3,4,5,6,7,8,9]}");
    dir = file_in("b3", "config.json", "{" BASE ",\"eos_token_id\":10}");
    assert_int_equal(config_load(&c, dir, &e), ENG_EINPUT);
    assert_non_null(strstr(e.msg, "b3/generation_config.json: field eos_token_id has more than 8 ids"));
    dir = file_in("b4", NULL, NULL);
    assert_int_equal(config_load(&c, dir, &e), ENG_EINPUT);
    assert_non_null(strstr(e.msg, "b4/config.json: no such file"));
    dir = file_in("b5", "config.json", NULL);
    assert_int_equal(config_load(&c, dir, &e), ENG_EINPUT);
    assert_non_null(strstr(e.msg, "b5/config.json: is a folder"));
    dir = file_in("b6", "config.json", "{" BASE ",\"num_key_value_heads\":3}");
    assert_int_equal(config_load(&c, dir, &e), ENG_EINPUT);
    assert_non_null(strstr(e.msg, "b6/config.json: num_attention_heads (4)"));
}

static void reading_a_file_fails_cleanly_when_memory_runs_out(void **state)
{
    (void)state;
    config_t c;
    eng_err e;
    file_in("m1", "config.json", "{" BASE "}");
    const char *dir = file_in("m1", "generation_config.json", "{\"eos_token_id\":2}");
    eng_alloc_fail_at(0);
    assert_int_equal(config_load(&c, dir, &e), ENG_OK);
    long n = eng_alloc_count();
    assert_true(n >= 2);
    for (long i = 1; i <= n; i++) {
        eng_alloc_fail_at(i);
        assert_int_equal(config_load(&c, dir, &e), ENG_ENOMEM);
    }
    eng_alloc_fail_at(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_minimal_llama_config_gets_the_transformers_defaults),
        cmocka_unit_test(explicit_fields_are_honoured),
        cmocka_unit_test(rope_scaling_llama3_and_linear_are_read_in_both_spellings),
        cmocka_unit_test(rope_parameters_of_transformers_5_take_precedence),
        cmocka_unit_test(qwen2_has_qkv_bias_and_qwen3_has_qk_norm),
        cmocka_unit_test(broken_json_and_unsupported_models_are_refused),
        cmocka_unit_test(missing_or_zero_required_fields_are_named),
        cmocka_unit_test(inconsistent_dimensions_are_refused),
        cmocka_unit_test(unsupported_or_incomplete_rope_scaling_is_refused),
        cmocka_unit_test(generation_config_adds_its_eos_ids_and_bos),
        cmocka_unit_test(broken_files_in_the_folder_are_refused_by_name),
        cmocka_unit_test(reading_a_file_fails_cleanly_when_memory_runs_out),
    };
    return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
