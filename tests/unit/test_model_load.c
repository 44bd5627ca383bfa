/* test_model_load.c - model_open on folders written by the test: every tensor
 * bound by name with its shape, single-file and sharded, the four
 * architectures; every broken folder refused by name; out-of-memory paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>

#include "model.h"
#include "st_write.h"

static char tmp[64];

static int setup(void **state)
{
    (void)state;
    return stw_tmpdir(tmp, "model") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    stw_rm_tree(tmp);
    return 0;
}

static const stw_model LLAMA = {
    .model_type = "llama", .dim = 32, .hidden = 48, .layers = 2, .heads = 4, .kv_heads = 2,
    .head_dim = 8, .vocab = 40, .tied = false, .dtype = DT_F32,
};

static const char *write_model(const char *name, stw_model m)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    assert_int_equal(stw_model_dir(dir, &m), 0);
    return dir;
}

static void assert_shape(const tensor_t *t, int64_t d0, int64_t d1)
{
    assert_true(tensor_present(t));
    assert_int_equal(t->ndim, d1 ? 2 : 1);
    assert_int_equal(t->shape[0], d0);
    if (d1)
        assert_int_equal(t->shape[1], d1);
}

/* Checks every view of m against the stw_model it was written from, and
 * returns the summed tensor bytes. */
static size_t check_views(const model_t *m, const stw_model *s)
{
    const int64_t q = (int64_t)s->heads * s->head_dim, kv = (int64_t)s->kv_heads * s->head_dim;
    const size_t es = dtype_size(s->dtype);
    size_t bytes = 0;
    assert_shape(&m->w.embed, s->vocab, s->dim);
    assert_shape(&m->w.final_norm, s->dim, 0);
    assert_shape(&m->w.lm_head, s->vocab, s->dim);
    assert_int_equal(m->w.embed.dtype, s->dtype);
    bytes += (size_t)(2 * s->vocab + 1) * (size_t)s->dim * es;
    if (s->tied) {
        assert_ptr_equal(m->w.lm_head.data, m->w.embed.data);
        bytes -= (size_t)s->vocab * (size_t)s->dim * es;
    } else {
        assert_ptr_not_equal(m->w.lm_head.data, m->w.embed.data);
    }
    for (int l = 0; l < s->layers; l++) {
        const layer_weights_t *w = &m->w.layers[l];
        assert_shape(&w->attn_norm, s->dim, 0);
        assert_shape(&w->wq, q, s->dim);
        assert_shape(&w->wk, kv, s->dim);
        assert_shape(&w->wv, kv, s->dim);
        assert_shape(&w->wo, s->dim, q);
        assert_shape(&w->ffn_norm, s->dim, 0);
        assert_shape(&w->w_gate, s->hidden, s->dim);
        assert_shape(&w->w_up, s->hidden, s->dim);
        assert_shape(&w->w_down, s->dim, s->hidden);
        assert_int_equal(w->w_down.dtype, s->dtype);
        bytes += (size_t)(2 * s->dim + 2 * q * s->dim + 2 * kv * s->dim + 3 * s->hidden * s->dim) * es;
        bool qwen2 = !strcmp(s->model_type, "qwen2"), qwen3 = !strcmp(s->model_type, "qwen3");
        assert_int_equal(tensor_present(&w->bq), qwen2);
        assert_int_equal(tensor_present(&w->bk), qwen2);
        assert_int_equal(tensor_present(&w->bv), qwen2);
        assert_int_equal(tensor_present(&w->q_norm), qwen3);
        assert_int_equal(tensor_present(&w->k_norm), qwen3);
        if (qwen2) {
            assert_shape(&w->bq, q, 0);
            assert_shape(&w->bk, kv, 0);
            assert_shape(&w->bv, kv, 0);
            bytes += (size_t)(q + 2 * kv) * es;
        }
        if (qwen3) {
            assert_shape(&w->q_norm, s->head_dim, 0);
            assert_shape(&w->k_norm, s->head_dim, 0);
            bytes += (size_t)(2 * s->head_dim) * es;
        }
    }
    return bytes;
}

static size_t folder_file_bytes(const char *dir)
{
    size_t total = 0;
    DIR *d = opendir(dir);
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > 12 && !strcmp(e->d_name + n - 12, ".safetensors")) {
            char p[512];
            struct stat sb;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            stat(p, &sb);
            total += (size_t)sb.st_size;
        }
    }
    closedir(d);
    return total;
}

static void open_and_check(const char *name, stw_model s)
{
    const char *dir = write_model(name, s);
    model_t *m = NULL;
    eng_err e = {{0}};
    int rc = model_open(&m, dir, &e);
    if (rc)
        print_error("%s: %s\n", name, e.msg);
    assert_int_equal(rc, ENG_OK);
    assert_string_equal(m->name, name);
    assert_int_equal(m->cfg.n_layers, s.layers);
    assert_int_equal(m->cfg.head_dim, s.head_dim);
    size_t bytes = check_views(m, &s);
    assert_int_equal(m->weights_bytes, bytes);
    assert_int_equal(m->file_bytes, folder_file_bytes(dir));
    assert_true(m->file_bytes > m->weights_bytes);
    model_close(m);
}

/* ------------------------------------------------------------------ good */

static void a_single_file_llama_binds_every_tensor_with_its_shape(void **state)
{
    (void)state;
    open_and_check("llama", LLAMA);
    /* the first element of the embedding is the file's first value */
    model_t *m;
    eng_err e;
    char dir[256];
    snprintf(dir, sizeof dir, "%s/llama/", tmp);   /* a trailing slash is fine */
    assert_int_equal(model_open(&m, dir, &e), ENG_OK);
    assert_string_equal(m->name, "llama");
    assert_true(((const float *)m->w.embed.data)[1] == stw_value(0, 1));
    model_close(m);
    model_close(NULL);
}

static void tied_bf16_and_f16_models_load_without_lm_head(void **state)
{
    (void)state;
    stw_model s = LLAMA;
    s.tied = true;
    s.dtype = DT_BF16;
    open_and_check("tied_bf16", s);
    s.dtype = DT_F16;
    s.extra = "lm_head.weight";   /* a stored lm_head is ignored when tied, as transformers does */
    open_and_check("tied_f16_extra", s);
}

static void sharded_qwen2_with_biases_and_mqa_loads(void **state)
{
    (void)state;
    stw_model s = LLAMA;
    s.model_type = "qwen2";
    s.kv_heads = 1;
    s.dtype = DT_BF16;
    s.shards = 3;
    open_and_check("qwen2_sharded", s);
}

static void qwen3_with_qk_norm_and_an_explicit_head_dim_loads(void **state)
{
    (void)state;
    stw_model s = LLAMA;
    s.model_type = "qwen3";
    s.head_dim = 16;          /* heads * head_dim = 64 != hidden 32 */
    s.tied = true;
    open_and_check("qwen3", s);
    s.model_type = "mistral";
    s.heads = s.kv_heads = 4;
    s.tied = false;
    s.shards = 2;
    open_and_check("mistral", s);
}

/* ------------------------------------------------------------- malformed */

static void refused(const char *dir, const char *want)
{
    model_t *m = (model_t *)1;
    eng_err e = {{0}};
    int rc = model_open(&m, dir, &e);
    if (rc != ENG_EINPUT || !strstr(e.msg, want))
        print_error("%s: rc %d \"%s\" (wanted \"%s\")\n", dir, rc, e.msg, want);
    assert_int_equal(rc, ENG_EINPUT);
    assert_null(m);
    assert_non_null(strstr(e.msg, want));
    assert_null(strchr(e.msg, '\n'));
}

static void missing_empty_and_non_folders_are_refused(void **state)
{
    (void)state;
    char p[256];
    snprintf(p, sizeof p, "%s/nothere", tmp);
    refused(p, "nothere: no such folder");
    snprintf(p, sizeof p, "%s/empty", tmp);
    mkdir(p, 0755);
    refused(p, "empty: empty folder");
    snprintf(p, sizeof p, "%s/afile", tmp);
    stw_text(p, "x");
    refused(p, "afile: not a folder");
}

static void missing_or_misplaced_files_are_refused_by_name(void **state)
{
    (void)state;
    char p[512];
    const char *dir = write_model("noconfig", LLAMA);
    snprintf(p, sizeof p, "%s/config.json", dir);
    remove(p);
    refused(dir, "noconfig/config.json: no such file");
    dir = write_model("cfgdir", LLAMA);
    snprintf(p, sizeof p, "%s/config.json", dir);
    remove(p);
    mkdir(p, 0755);
    refused(dir, "cfgdir/config.json: is a folder");
    dir = write_model("noweights", LLAMA);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    remove(p);
    refused(dir, "noweights: no model.safetensors or model.safetensors.index.json");
    dir = write_model("weightsdir", LLAMA);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    remove(p);
    mkdir(p, 0755);
    refused(dir, "weightsdir/model.safetensors: is a folder");
    dir = write_model("truncated", LLAMA);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    truncate(p, 100);
    refused(dir, "truncated/model.safetensors: header length");
    stw_model s = LLAMA;
    s.config_extra = "\"num_key_value_heads\":3,";
    dir = write_model("badcfg", s);
    refused(dir, "badcfg/config.json: num_attention_heads (4) is not a multiple of num_key_value_heads (3)");
}

static void a_missing_tensor_is_refused_by_name(void **state)
{
    (void)state;
    stw_model s = LLAMA;
    s.omit = "model.layers.1.mlp.up_proj.weight";
    refused(write_model("missing", s), "missing/model.safetensors: tensor model.layers.1.mlp.up_proj.weight is missing");
    s = LLAMA;
    s.omit = "lm_head.weight";
    refused(write_model("nohead", s), "tensor lm_head.weight is missing");
    s = LLAMA;
    s.model_type = "qwen2";
    s.omit = "model.layers.0.self_attn.k_proj.bias";
    s.shards = 2;
    refused(write_model("nobias", s), "model.safetensors.index.json: tensor model.layers.0.self_attn.k_proj.bias is missing");
    s = LLAMA;
    s.model_type = "qwen3";
    s.omit = "model.layers.1.self_attn.k_norm.weight";
    refused(write_model("nonorm", s), "tensor model.layers.1.self_attn.k_norm.weight is missing");
    s = LLAMA;
    s.config_extra = "\"num_hidden_layers\":3,";   /* a layer the file does not have */
    refused(write_model("fewlayers", s), "tensor model.layers.2.input_layernorm.weight is missing");
}

static void a_wrong_shape_is_refused_with_both_shapes(void **state)
{
    (void)state;
    stw_model s = LLAMA;
    s.reshape = "model.layers.1.self_attn.k_proj.weight";
    refused(write_model("shape", s),
            "model.safetensors: tensor model.layers.1.self_attn.k_proj.weight has shape [32, 32], expected [16, 32]");
    s.reshape = "model.norm.weight";
    refused(write_model("shape2", s), "tensor model.norm.weight has shape [64], expected [32]");
    s = LLAMA;
    s.config_extra = "\"vocab_size\":41,";
    refused(write_model("vocab", s), "tensor model.embed_tokens.weight has shape [40, 32], expected [41, 32]");
    s = LLAMA;
    s.config_extra = "\"head_dim\":16,";
    refused(write_model("headdim", s), "tensor model.layers.0.self_attn.q_proj.weight has shape [32, 32], expected [64, 32]");
}

static void an_o_proj_bias_is_refused_not_dropped(void **state)
{
    (void)state;
    stw_model s = LLAMA;
    s.model_type = "qwen2";
    s.extra = "model.layers.0.self_attn.o_proj.bias";
    refused(write_model("obias", s), "tensor model.layers.0.self_attn.o_proj.bias is not supported");
}

/* ---------------------------------------------------------- out of memory */

static void every_failed_allocation_gives_enomem_and_leaks_nothing(void **state)
{
    (void)state;
    stw_model s = LLAMA;
    s.model_type = "qwen2";
    s.shards = 2;
    s.dtype = DT_BF16;
    const char *dir = write_model("oom", s);
    model_t *m;
    eng_err e;
    eng_alloc_fail_at(0);
    assert_int_equal(model_open(&m, dir, &e), ENG_OK);
    model_close(m);
    long n = eng_alloc_count();
    assert_true(n > 10);
    for (long i = 1; i <= n; i++) {
        eng_alloc_fail_at(i);
        int rc = model_open(&m, dir, &e);
        if (rc != ENG_ENOMEM)
            print_error("allocation %ld of %ld: rc %d (%s)\n", i, n, rc, e.msg);
        assert_int_equal(rc, ENG_ENOMEM);
        assert_null(m);
    }
    eng_alloc_fail_at(n + 1);
    assert_int_equal(model_open(&m, dir, &e), ENG_OK);
    model_close(m);
    eng_alloc_fail_at(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_single_file_llama_binds_every_tensor_with_its_shape),
        cmocka_unit_test(tied_bf16_and_f16_models_load_without_lm_head),
        cmocka_unit_test(sharded_qwen2_with_biases_and_mqa_loads),
        cmocka_unit_test(qwen3_with_qk_norm_and_an_explicit_head_dim_loads),
        cmocka_unit_test(missing_empty_and_non_folders_are_refused),
        cmocka_unit_test(missing_or_misplaced_files_are_refused_by_name),
        cmocka_unit_test(a_missing_tensor_is_refused_by_name),
        cmocka_unit_test(a_wrong_shape_is_refused_with_both_shapes),
        cmocka_unit_test(an_o_proj_bias_is_refused_not_dropped),
        cmocka_unit_test(every_failed_allocation_gives_enomem_and_leaks_nothing),
    };
    return cmocka_run_group_tests_name("model_load", tests, setup, teardown);
}
