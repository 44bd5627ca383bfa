/* config.c - config.json and generation_config.json (cJSON) -> config_t, every
 * field checked before use. */
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (4u << 20)   /* config files are a few KB */

/* ------------------------------------------------------------------ files */

int config_read_file(const char *path, size_t max, char **buf, size_t *len, eng_err *err)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return eng_fail(err, ENG_EINPUT, "%s: no such file", path);
        return eng_fail(err, ENG_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return eng_fail(err, ENG_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return eng_fail(err, ENG_EINPUT, "%s: is a folder, expected a file", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return eng_fail(err, ENG_EINPUT, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return eng_fail(err, ENG_EINPUT, "%s: %lld bytes, more than the %zu allowed",
                        path, (long long)st.st_size, max);
    }
    size_t n = (size_t)st.st_size;
    char *b = eng_malloc(n + 1);
    if (!b) {
        close(fd);
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            close(fd);
            eng_free(b);
            return eng_fail(err, ENG_EIO, "%s: read failed: %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return ENG_OK;
}

/* ----------------------------------------------------------- field access */

/* Reads an integer field. Absent (or null) gives def when !required. */
static int get_int(const cJSON *o, const char *key, bool required, long def, long lo, long hi,
                   int *out, const char *fname, eng_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return eng_fail(err, ENG_EINPUT, "%s: required field %s is missing", fname, key);
        *out = (int)def;
        return ENG_OK;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble))
        return eng_fail(err, ENG_EINPUT, "%s: field %s must be an integer", fname, key);
    double d = v->valuedouble;
    if (required && d == 0)
        return eng_fail(err, ENG_EINPUT, "%s: required field %s is 0", fname, key);
    if (d < (double)lo || d > (double)hi)
        return eng_fail(err, ENG_EINPUT, "%s: field %s = %.0f is out of range [%ld, %ld]",
                        fname, key, d, lo, hi);
    *out = (int)d;
    return ENG_OK;
}

/* Reads a positive finite number field. Absent (or null) gives def. */
static int get_num(const cJSON *o, const char *key, bool required, double def, float *out,
                   const char *where, const char *fname, eng_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return eng_fail(err, ENG_EINPUT, "%s: required field %s%s is missing", fname, where, key);
        *out = (float)def;
        return ENG_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble <= 0 ||
        v->valuedouble > 1e30)
        return eng_fail(err, ENG_EINPUT, "%s: field %s%s must be a positive number", fname, where, key);
    *out = (float)v->valuedouble;
    return ENG_OK;
}

static int get_bool(const cJSON *o, const char *key, bool def, bool *out, const char *fname,
                    eng_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return ENG_OK;
    }
    if (!cJSON_IsBool(v))
        return eng_fail(err, ENG_EINPUT, "%s: field %s must be true or false", fname, key);
    *out = cJSON_IsTrue(v);
    return ENG_OK;
}

/* A token id field: an integer, a list of integers, or null. Appends to ids
 * (skipping ids already there). */
static int get_ids(const cJSON *o, const char *key, int vocab, int *ids, int *n, int max,
                   const char *fname, eng_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return ENG_OK;
    const cJSON *one = v, *it = NULL;
    bool list = cJSON_IsArray(v);
    if (list)
        one = v->child;
    for (it = one; it; it = list ? it->next : NULL) {
        if (!cJSON_IsNumber(it) || it->valuedouble != floor(it->valuedouble) ||
            it->valuedouble < 0 || (vocab > 0 && it->valuedouble >= vocab))
            return eng_fail(err, ENG_EINPUT, "%s: field %s must be a token id (0..%d) or a list of them",
                            fname, key, vocab - 1);
        int id = (int)it->valuedouble;
        bool seen = false;
        for (int i = 0; i < *n; i++)
            seen |= ids[i] == id;
        if (seen)
            continue;
        if (*n >= max)
            return eng_fail(err, ENG_EINPUT, "%s: field %s has more than %d ids", fname, key, max);
        ids[(*n)++] = id;
    }
    return ENG_OK;
}

static eng_dtype parse_dtype(const cJSON *o)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "torch_dtype");
    if (!cJSON_IsString(v))
        v = cJSON_GetObjectItemCaseSensitive(o, "dtype");   /* transformers 5 */
    if (cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "bfloat16"))
            return DT_BF16;
        if (!strcmp(v->valuestring, "float16"))
            return DT_F16;
    }
    return DT_F32;
}

/* ------------------------------------------------------------------- rope */

/* RoPE settings come either from transformers 5's rope_parameters
 * {rope_theta, rope_type, factor, ...} or from the older top-level rope_theta
 * plus rope_scaling {rope_type | type, factor, ...} (null when unscaled). */
static int parse_rope(config_t *c, const cJSON *root, const char *fname, eng_err *err)
{
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(root, "rope_parameters");
    const char *where = "rope_parameters.";
    const cJSON *sc = rp;
    int rc = get_num(root, "rope_theta", false, 10000.0, &c->rope_theta, "", fname, err);
    if (rc)
        return rc;
    if (rp && !cJSON_IsNull(rp)) {
        if (!cJSON_IsObject(rp))
            return eng_fail(err, ENG_EINPUT, "%s: field rope_parameters must be an object", fname);
        if ((rc = get_num(rp, "rope_theta", false, c->rope_theta, &c->rope_theta, where, fname, err)))
            return rc;
    } else {
        sc = cJSON_GetObjectItemCaseSensitive(root, "rope_scaling");
        where = "rope_scaling.";
        if (!sc || cJSON_IsNull(sc)) {
            c->rope_type = ROPE_NONE;
            return ENG_OK;
        }
        if (!cJSON_IsObject(sc))
            return eng_fail(err, ENG_EINPUT, "%s: field rope_scaling must be an object or null", fname);
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(sc, "rope_type");
    if (!t)
        t = cJSON_GetObjectItemCaseSensitive(sc, "type");
    const char *type = cJSON_IsString(t) ? t->valuestring : NULL;
    if (t && !type)
        return eng_fail(err, ENG_EINPUT, "%s: field %srope_type must be a string", fname, where);
    if (!type || !strcmp(type, "default")) {
        c->rope_type = ROPE_NONE;
        return ENG_OK;
    }
    if (!strcmp(type, "linear")) {
        c->rope_type = ROPE_LINEAR;
        return get_num(sc, "factor", true, 1.0, &c->rope_factor, where, fname, err);
    }
    if (!strcmp(type, "llama3")) {
        c->rope_type = ROPE_LLAMA3;
        if ((rc = get_num(sc, "factor", true, 1.0, &c->rope_factor, where, fname, err)) ||
            (rc = get_num(sc, "low_freq_factor", true, 1.0, &c->rope_low_freq, where, fname, err)) ||
            (rc = get_num(sc, "high_freq_factor", true, 1.0, &c->rope_high_freq, where, fname, err)) ||
            (rc = get_int(sc, "original_max_position_embeddings", true, 0, 1, INT_MAX,
                          &c->rope_orig_max_pos, fname, err)))
            return rc;
        if (!(c->rope_high_freq > c->rope_low_freq))
            return eng_fail(err, ENG_EINPUT, "%s: %shigh_freq_factor must be greater than low_freq_factor",
                            fname, where);
        return ENG_OK;
    }
    return eng_fail(err, ENG_EINPUT, "%s: %srope_type \"%s\" is not supported (default, linear, llama3)",
                    fname, where, type);
}

/* ------------------------------------------------------------ config.json */

int config_parse(config_t *c, const char *json, size_t len, const char *fname, eng_err *err)
{
    memset(c, 0, sizeof *c);
    bool oom;
    cJSON *root = eng_json_parse(json, len, &oom);
    if (!root && oom)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory reading the JSON", fname);
    if (!root)
        return eng_fail(err, ENG_EINPUT, "%s: not valid JSON", fname);
    int rc = ENG_OK;
    if (!cJSON_IsObject(root)) {
        rc = eng_fail(err, ENG_EINPUT, "%s: not a JSON object", fname);
        goto out;
    }

    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
    if (!mt) {
        rc = eng_fail(err, ENG_EINPUT, "%s: required field model_type is missing", fname);
        goto out;
    }
    if (!cJSON_IsString(mt)) {
        rc = eng_fail(err, ENG_EINPUT, "%s: field model_type must be a string", fname);
        goto out;
    }
    static const struct { const char *name; model_arch arch; } archs[] = {
        {"llama", ARCH_LLAMA}, {"mistral", ARCH_MISTRAL}, {"qwen2", ARCH_QWEN2}, {"qwen3", ARCH_QWEN3},
    };
    size_t a = 0;
    while (a < sizeof archs / sizeof archs[0] && strcmp(archs[a].name, mt->valuestring))
        a++;
    if (a == sizeof archs / sizeof archs[0]) {
        rc = eng_fail(err, ENG_EINPUT, "%s: model_type \"%.64s\" is not supported (llama, mistral, qwen2, qwen3)",
                      fname, mt->valuestring);
        goto out;
    }
    c->arch = archs[a].arch;
    snprintf(c->model_type, sizeof c->model_type, "%s", archs[a].name);

    /* Required dimensions; the bounds keep every derived product in range. */
    if ((rc = get_int(root, "hidden_size", true, 0, 1, 1 << 16, &c->dim, fname, err)) ||
        (rc = get_int(root, "intermediate_size", true, 0, 1, 1 << 18, &c->hidden_dim, fname, err)) ||
        (rc = get_int(root, "num_hidden_layers", true, 0, 1, 1024, &c->n_layers, fname, err)) ||
        (rc = get_int(root, "num_attention_heads", true, 0, 1, 1024, &c->n_heads, fname, err)) ||
        (rc = get_int(root, "vocab_size", true, 0, 1, 1 << 22, &c->vocab_size, fname, err)) ||
        (rc = get_int(root, "num_key_value_heads", false, c->n_heads, 1, 1024, &c->n_kv_heads, fname, err)) ||
        (rc = get_int(root, "max_position_embeddings", false, 2048, 1, 1 << 24, &c->max_seq_len, fname, err)))
        goto out;
    if (c->n_heads % c->n_kv_heads != 0) {
        rc = eng_fail(err, ENG_EINPUT, "%s: num_attention_heads (%d) is not a multiple of num_key_value_heads (%d)",
                      fname, c->n_heads, c->n_kv_heads);
        goto out;
    }
    /* head_dim defaults to hidden / heads, except Qwen3Config whose default is 128. */
    bool has_head_dim = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(root, "head_dim"));
    if (!has_head_dim && c->arch != ARCH_QWEN3 && c->dim % c->n_heads != 0) {
        rc = eng_fail(err, ENG_EINPUT, "%s: hidden_size (%d) is not a multiple of num_attention_heads (%d) and head_dim is missing",
                      fname, c->dim, c->n_heads);
        goto out;
    }
    long def_hd = c->arch == ARCH_QWEN3 ? 128 : c->dim / c->n_heads;
    if ((rc = get_int(root, "head_dim", false, def_hd, 2, 4096, &c->head_dim, fname, err)))
        goto out;
    if (c->head_dim % 2) {
        rc = eng_fail(err, ENG_EINPUT, "%s: head_dim (%d) must be even for RoPE", fname, c->head_dim);
        goto out;
    }
    if ((long)c->n_heads * c->head_dim > (1 << 17)) {
        rc = eng_fail(err, ENG_EINPUT, "%s: num_attention_heads * head_dim is too large", fname);
        goto out;
    }
    if ((rc = get_num(root, "rms_norm_eps", false, 1e-6, &c->norm_eps, "", fname, err)))
        goto out;
    if ((rc = parse_rope(c, root, fname, err)))
        goto out;

    const cJSON *act = cJSON_GetObjectItemCaseSensitive(root, "hidden_act");
    if (act && !(cJSON_IsString(act) && !strcmp(act->valuestring, "silu"))) {
        rc = eng_fail(err, ENG_EINPUT, "%s: hidden_act must be \"silu\"", fname);
        goto out;
    }
    if ((rc = get_bool(root, "tie_word_embeddings", false, &c->tie_embeddings, fname, err)))
        goto out;
    bool attn_bias = false, mlp_bias = false;
    if ((rc = get_bool(root, "attention_bias", false, &attn_bias, fname, err)) ||
        (rc = get_bool(root, "mlp_bias", false, &mlp_bias, fname, err)))
        goto out;
    /* Llama and Qwen3 put attention_bias on o_proj too, which the engine does
     * not carry; Qwen2's q/k/v bias is unconditional and o_proj has none. */
    if (c->arch != ARCH_QWEN2 && c->arch != ARCH_MISTRAL && attn_bias) {
        rc = eng_fail(err, ENG_EINPUT, "%s: attention_bias true (bias on o_proj) is not supported", fname);
        goto out;
    }
    if (mlp_bias) {
        rc = eng_fail(err, ENG_EINPUT, "%s: mlp_bias true is not supported", fname);
        goto out;
    }
    c->attn_bias = c->arch == ARCH_QWEN2;
    c->qk_norm = c->arch == ARCH_QWEN3;

    c->bos_id = -1;
    int bos[1], nbos = 0;
    if ((rc = get_ids(root, "bos_token_id", c->vocab_size, bos, &nbos, 1, fname, err)) ||
        (rc = get_ids(root, "eos_token_id", c->vocab_size, c->eos_ids, &c->n_eos, CONFIG_MAX_EOS, fname, err)))
        goto out;
    if (nbos)
        c->bos_id = bos[0];
    c->dtype = parse_dtype(root);
out:
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------- generation_config.json */

int config_merge_generation(config_t *c, const char *dir, eng_err *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/generation_config.json", dir) >= sizeof path)
        return eng_fail(err, ENG_EINPUT, "%s: path too long", dir);
    struct stat st;
    if (stat(path, &st) != 0 && errno == ENOENT)
        return ENG_OK;
    char *buf;
    size_t len;
    int rc = config_read_file(path, CONFIG_MAX_BYTES, &buf, &len, err);
    if (rc)
        return rc;
    bool oom;
    cJSON *root = eng_json_parse(buf, len, &oom);
    eng_free(buf);
    if (!root && oom)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory reading the JSON", path);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return eng_fail(err, ENG_EINPUT, "%s: not a JSON object", path);
    }
    int bos[1], nbos = 0;
    rc = get_ids(root, "eos_token_id", c->vocab_size, c->eos_ids, &c->n_eos, CONFIG_MAX_EOS, path, err);
    if (!rc)
        rc = get_ids(root, "bos_token_id", c->vocab_size, bos, &nbos, 1, path, err);
    if (!rc && nbos)
        c->bos_id = bos[0];
    cJSON_Delete(root);
    return rc;
}

int config_load(config_t *c, const char *dir, eng_err *err)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/config.json", dir) >= sizeof path)
        return eng_fail(err, ENG_EINPUT, "%s: path too long", dir);
    char *buf;
    size_t len;
    int rc = config_read_file(path, CONFIG_MAX_BYTES, &buf, &len, err);
    if (rc)
        return rc;
    rc = config_parse(c, buf, len, path, err);
    eng_free(buf);
    if (rc)
        return rc;
    return config_merge_generation(c, dir, err);
}
