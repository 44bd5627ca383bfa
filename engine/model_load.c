/* model_load.c - model_open/model_close: a Hugging Face folder bound tensor by
 * tensor, by name, with exact shape checks; the weights stay mapped. */
#include "model.h"
#include "safetensors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <dirent.h>

/* ---------------------------------------------------------------- binding */

typedef struct {
    const st_set *st;
    size_t weights_bytes;
    eng_err *err;
} binder;

static void fmt_shape(char *buf, size_t n, int ndim, const int64_t *shape)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* Binds tensor name with the expected shape (d1 == 0: a vector of d0) into
 * *out. A missing tensor is an error when required, else *out stays absent. */
static int bind(binder *b, tensor_t *out, bool required, const char *name, int64_t d0, int64_t d1)
{
    const st_tensor *t = st_find(b->st, name);
    if (!t) {
        if (!required)
            return ENG_OK;
        return eng_fail(b->err, ENG_EINPUT, "%s: tensor %s is missing", st_source(b->st), name);
    }
    int ndim = d1 ? 2 : 1;
    int64_t want[2] = {d0, d1};
    if (t->ndim != ndim || t->shape[0] != d0 || (ndim == 2 && t->shape[1] != d1)) {
        char got[96], exp[64];
        fmt_shape(got, sizeof got, t->ndim, t->shape);
        fmt_shape(exp, sizeof exp, ndim, want);
        return eng_fail(b->err, ENG_EINPUT, "%s: tensor %s has shape %s, expected %s",
                        t->file, name, got, exp);
    }
    *out = (tensor_t){.data = t->data, .dtype = t->dtype, .ndim = ndim, .shape = {d0, d1}};
    b->weights_bytes += t->nbytes;
    return ENG_OK;
}

static int bind_layer(binder *b, const config_t *c, int l, layer_weights_t *w)
{
    const int64_t dim = c->dim, q_dim = config_q_dim(c), kv_dim = config_kv_dim(c);
    const int64_t hidden = c->hidden_dim, hd = c->head_dim;
    static const char *const P = "model.layers";
    char n[160];
    int rc;
#define BIND(field, req, d0, d1, suffix)                                   \
    do {                                                                   \
        snprintf(n, sizeof n, "%s.%d.%s", P, l, suffix);                   \
        if ((rc = bind(b, &w->field, req, n, d0, d1)))                     \
            return rc;                                                     \
    } while (0)
    BIND(attn_norm, true, dim, 0, "input_layernorm.weight");
    BIND(wq, true, q_dim, dim, "self_attn.q_proj.weight");
    BIND(wk, true, kv_dim, dim, "self_attn.k_proj.weight");
    BIND(wv, true, kv_dim, dim, "self_attn.v_proj.weight");
    BIND(wo, true, dim, q_dim, "self_attn.o_proj.weight");
    if (c->attn_bias) {
        BIND(bq, true, q_dim, 0, "self_attn.q_proj.bias");
        BIND(bk, true, kv_dim, 0, "self_attn.k_proj.bias");
        BIND(bv, true, kv_dim, 0, "self_attn.v_proj.bias");
    }
    if (c->qk_norm) {
        BIND(q_norm, true, hd, 0, "self_attn.q_norm.weight");
        BIND(k_norm, true, hd, 0, "self_attn.k_norm.weight");
    }
    BIND(ffn_norm, true, dim, 0, "post_attention_layernorm.weight");
    BIND(w_gate, true, hidden, dim, "mlp.gate_proj.weight");
    BIND(w_up, true, hidden, dim, "mlp.up_proj.weight");
    BIND(w_down, true, dim, hidden, "mlp.down_proj.weight");
#undef BIND
    /* A bias the engine would silently drop is refused, not ignored. */
    snprintf(n, sizeof n, "%s.%d.self_attn.o_proj.bias", P, l);
    if (st_find(b->st, n))
        return eng_fail(b->err, ENG_EINPUT, "%s: tensor %s is not supported", st_source(b->st), n);
    return ENG_OK;
}

static int bind_all(binder *b, const config_t *c, weights_t *w)
{
    int rc;
    if ((rc = bind(b, &w->embed, true, "model.embed_tokens.weight", c->vocab_size, c->dim)) ||
        (rc = bind(b, &w->final_norm, true, "model.norm.weight", c->dim, 0)))
        return rc;
    if (c->tie_embeddings)
        w->lm_head = w->embed;   /* a stored lm_head.weight is ignored, as transformers does */
    else if ((rc = bind(b, &w->lm_head, true, "lm_head.weight", c->vocab_size, c->dim)))
        return rc;
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = bind_layer(b, c, l, &w->layers[l])))
            return rc;
    return ENG_OK;
}

/* ------------------------------------------------------------ open/close */

/* What model_open owns besides the model_t: the mapped files and the layer
 * array (m->w.layers points into it). */
typedef struct {
    st_set *st;
    layer_weights_t *layers;
} loaded;

static void free_loaded(model_t *m)
{
    loaded *p = m->priv;
    if (!p)
        return;
    st_close(p->st);
    eng_free(p->layers);
    eng_free(p);
    m->priv = NULL;
    m->w.layers = NULL;
}

/* Is dir an existing folder with at least one entry? Fills err otherwise. */
static int check_folder(const char *dir, eng_err *err)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return eng_fail(err, ENG_EINPUT, "%s: no such folder", dir);
    if (!S_ISDIR(st.st_mode))
        return eng_fail(err, ENG_EINPUT, "%s: not a folder (a model is a Hugging Face folder)", dir);
    DIR *d = opendir(dir);
    if (!d)
        return eng_fail(err, ENG_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
    bool empty = true;
    for (struct dirent *e; empty && (e = readdir(d));)
        empty = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
    closedir(d);
    if (empty)
        return eng_fail(err, ENG_EINPUT, "%s: empty folder (expected config.json and model.safetensors)", dir);
    return ENG_OK;
}

int model_open(model_t **out, const char *dir, eng_err *err)
{
    *out = NULL;
    int rc = check_folder(dir, err);
    if (rc)
        return rc;
    model_t *m = eng_calloc(1, sizeof *m);
    if (!m)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory", dir);
    if ((rc = config_load(&m->cfg, dir, err)))
        goto fail;
    loaded *p = eng_calloc(1, sizeof *p);
    if (!p) {
        rc = eng_fail(err, ENG_ENOMEM, "%s: out of memory", dir);
        goto fail;
    }
    m->priv = p;
    m->priv_free = free_loaded;
    if ((rc = st_open_dir(&p->st, dir, err)))
        goto fail;
    m->w.layers = p->layers = eng_calloc((size_t)m->cfg.n_layers, sizeof *p->layers);
    if (!p->layers) {
        rc = eng_fail(err, ENG_ENOMEM, "%s: out of memory", dir);
        goto fail;
    }
    binder b = {.st = p->st, .err = err};
    if ((rc = bind_all(&b, &m->cfg, &m->w)))
        goto fail;
    m->weights_bytes = b.weights_bytes;
    m->file_bytes = st_file_bytes(p->st);
    /* name: the folder's basename, without trailing slashes */
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/')
        len--;
    size_t start = len;
    while (start > 0 && dir[start - 1] != '/')
        start--;
    snprintf(m->name, sizeof m->name, "%.*s", (int)(len - start), dir + start);
    *out = m;
    return ENG_OK;
fail:
    model_close(m);
    return rc;
}

/* The one model_close for loaded and synthetic models alike: each kind frees
 * what it owns (weights, layer array) in its priv_free. */
void model_close(model_t *m)
{
    if (!m)
        return;
    if (m->priv_free)
        m->priv_free(m);
    eng_free(m);
}
