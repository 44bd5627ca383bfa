/* conv.c - a conversation: messages rendered through the chat template, an
 * incremental prefill that reuses the KV cache up to the first changed token,
 * generation one token at a time with stop conditions, streamed text, /regen
 * and /reset by rewinding the cache, per-reply timings, and a JSON save.
 *
 * The token chosen by a step is run through the model lazily, at the start of
 * the next step. So a step's latency is "eval the previous token + sample
 * this one" (the inter-token latency a user sees), the last token of a reply
 * is never run for nothing, and step mode can replace the newest token with
 * another candidate without recomputing anything. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conv.h"

typedef struct {
    conv_role role;
    char *text;                 /* NUL-terminated, owned */
    size_t len, cap;
} message;

struct conv {
    char *dir;
    model_t *model;
    session_t *sess;
    tokenizer_t *tok;
    chat_template *tmpl;        /* NULL in completion mode (the conversation is a chat when set) */
    sampler *smp;
    tok_stream_t *stream;
    conv_opts opts;             /* opts.sampling mirrors the sampler's params */
    char warning[600];
    int n_vocab;                /* logits per position (the model's vocabulary) */

    int eos[32];                /* ids that end a reply */
    int n_eos;

    message *msgs;
    int n_msgs, cap_msgs;

    /* the reply being generated (or the last one) */
    bool generating;
    bool regen_ok;              /* the session still holds the last reply's prompt */
    int prompt_len;             /* context tokens before the reply */
    float *prompt_logits;       /* [n_vocab] logits after the prompt (for the first token and /regen) */
    int *reply;                 /* ids chosen in this reply */
    int n_reply, cap_reply;
    int pending;                /* chosen but not yet run through the model, -1 none */
    bool last_unrun;            /* the newest reply token has not been run (step mode may replace it) */
    double t_begin;
    conv_timings cur;
    double *tok_ms;
    int n_tok_ms, cap_tok_ms;
    char stop_msg[256];
    char *text_out;             /* conv_replace_last's text */

    conv_timings *hist;         /* timings of every finished reply, for /save */
    int n_hist, cap_hist;
    bool hist_has_cur;          /* hist's last entry is the current reply */
};

/* ---- small helpers ----------------------------------------------------------- */

static int grow(void **p, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int nc = *cap ? *cap : 16;
    while (nc < need)
        nc *= 2;
    void *q = eng_realloc(*p, (size_t)nc * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = nc;
    return 0;
}

/* Appends n bytes of s to the NUL-terminated string *p of *len bytes in *cap,
 * growing it by doubling; -1 (the string unchanged) when memory runs out. */
static int str_append(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t nc = *cap ? *cap : 64;
        while (nc < *len + n + 1)
            nc *= 2;
        char *q = eng_realloc(*p, nc);
        if (!q)
            return -1;
        *p = q;
        *cap = nc;
    }
    memcpy(*p + *len, s, n);
    *len += n;
    (*p)[*len] = '\0';
    return 0;
}

static int msg_append(message *m, const char *s, size_t n)
{
    return str_append(&m->text, &m->len, &m->cap, s, n);
}

static int msg_push(conv_t *c, conv_role role, const char *text, eng_err *err)
{
    if (grow((void **)&c->msgs, &c->cap_msgs, c->n_msgs + 1, sizeof *c->msgs))
        return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
    message *m = &c->msgs[c->n_msgs];
    memset(m, 0, sizeof *m);
    m->role = role;
    if (msg_append(m, text, strlen(text))) {
        eng_free(m->text);
        return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
    }
    c->n_msgs++;
    return ENG_OK;
}

static void msg_pop(conv_t *c)
{
    if (c->n_msgs > 0)
        eng_free(c->msgs[--c->n_msgs].text);
}

static bool is_eos(const conv_t *c, int id)
{
    for (int i = 0; i < c->n_eos; i++)
        if (c->eos[i] == id)
            return true;
    return false;
}

static void add_eos(conv_t *c, int id)
{
    if (id < 0 || id >= c->n_vocab || is_eos(c, id) || c->n_eos >= (int)(sizeof c->eos / sizeof c->eos[0]))
        return;
    c->eos[c->n_eos++] = id;
}

const char *conv_role_name(conv_role r)
{
    return r == CONV_SYSTEM ? "system" : r == CONV_USER ? "user" : "assistant";
}

/* ---- open / close --------------------------------------------------------------- */

void conv_opts_default(conv_opts *o)
{
    memset(o, 0, sizeof *o);
    o->chat = true;
    o->cache = true;
    o->max_new = 512;
    sampler_params_default(&o->sampling);
}

int conv_open(conv_t **out, const char *dir, const conv_opts *o, eng_err *err)
{
    *out = NULL;
    conv_opts def;
    if (!o) {
        conv_opts_default(&def);
        o = &def;
    }
    if (o->max_seq < 0 || o->n_threads < 0 || o->max_new < 0)
        return eng_fail(err, ENG_EINPUT, "conversation: context, threads and max_new must be >= 0");
    int rc = sampler_params_check(&o->sampling, err);
    if (rc != ENG_OK)
        return rc;

    conv_t *c = eng_calloc(1, sizeof *c);
    if (!c)
        return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
    c->opts = *o;
    c->pending = -1;
    c->dir = eng_strdup(dir);
    if (!c->dir) {
        rc = eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
        goto fail;
    }
    if ((rc = model_open(&c->model, dir, err)) != ENG_OK)
        goto fail;
    if ((rc = tok_open(&c->tok, dir, err)) != ENG_OK)
        goto fail;
    c->n_vocab = c->model->cfg.vocab_size;
    if ((rc = session_new(&c->sess, c->model, o->max_seq, o->n_threads, err)) != ENG_OK)
        goto fail;
    session_set_cache(c->sess, o->cache);
    if (o->device && strcmp(o->device, "cpu") != 0 &&
        (rc = session_set_device(c->sess, o->device, o->n_threads, err)) != ENG_OK)
        goto fail;
    if ((rc = sampler_new(&c->smp, c->n_vocab, &o->sampling, err)) != ENG_OK)
        goto fail;
    if ((rc = tok_stream_new(&c->stream, c->tok, true, err)) != ENG_OK)
        goto fail;
    /* A reply never outgrows the context: its buffers are allocated once. */
    int max = session_max(c->sess);
    c->prompt_logits = eng_malloc((size_t)c->n_vocab * sizeof(float));
    c->reply = eng_malloc((size_t)max * sizeof *c->reply);
    c->tok_ms = eng_malloc((size_t)max * sizeof *c->tok_ms);
    c->cap_reply = c->cap_tok_ms = max;
    if (!c->prompt_logits || !c->reply || !c->tok_ms) {
        rc = eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
        goto fail;
    }

    /* Stop tokens: config.json + generation_config.json, the tokenizer's EOS,
     * and the chat template's end-of-turn strings. */
    for (int i = 0; i < c->model->cfg.n_eos; i++)
        add_eos(c, c->model->cfg.eos_ids[i]);
    add_eos(c, tok_eos_id(c->tok));

    if (o->chat) {
        eng_err cerr;
        rc = chat_open_dir(&c->tmpl, dir, &cerr);
        if (rc == ENG_EIO) {
            /* No tokenizer_config.json to read a template from: completion. */
            snprintf(c->warning, sizeof c->warning, "%s: plain completion", cerr.msg);
        } else if (rc != ENG_OK) {
            if (err)
                *err = cerr;
            goto fail;
        } else if (strcmp(chat_family(c->tmpl), "none") == 0) {
            snprintf(c->warning, sizeof c->warning, "%s",
                     chat_warning(c->tmpl) ? chat_warning(c->tmpl)
                                           : "no chat template: plain completion");
            chat_close(c->tmpl);
            c->tmpl = NULL;
        } else {
            if (chat_warning(c->tmpl))
                snprintf(c->warning, sizeof c->warning, "%s", chat_warning(c->tmpl));
            int ns = 0;
            const char *const *stops = chat_stop_strings(c->tmpl, &ns);
            for (int i = 0; stops && i < ns; i++)
                add_eos(c, tok_token_to_id(c->tok, stops[i]));
        }
    }
    *out = c;
    return ENG_OK;
fail:
    conv_close(c);
    return rc;
}

void conv_close(conv_t *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n_msgs; i++)
        eng_free(c->msgs[i].text);
    eng_free(c->msgs);
    eng_free(c->reply);
    eng_free(c->tok_ms);
    eng_free(c->hist);
    eng_free(c->text_out);
    eng_free(c->prompt_logits);
    tok_stream_free(c->stream);
    sampler_free(c->smp);
    chat_close(c->tmpl);
    session_free(c->sess);
    tok_close(c->tok);
    model_close(c->model);
    eng_free(c->dir);
    eng_free(c);
}

/* ---- accessors and settings -------------------------------------------------------- */

const char *conv_dir(const conv_t *c) { return c->dir; }
const model_t *conv_model(const conv_t *c) { return c->model; }
session_t *conv_session(conv_t *c) { return c->sess; }
tokenizer_t *conv_tokenizer(conv_t *c) { return c->tok; }
sampler *conv_sampler(conv_t *c) { return c->smp; }
bool conv_chat(const conv_t *c) { return c->tmpl != NULL; }
const char *conv_family(const conv_t *c) { return c->tmpl ? chat_family(c->tmpl) : "none"; }
const char *conv_warning(const conv_t *c) { return c->warning[0] ? c->warning : NULL; }

int conv_set_sampling(conv_t *c, const sampler_params *p, eng_err *err)
{
    int rc = sampler_set_params(c->smp, p, err);
    if (rc == ENG_OK)
        c->opts.sampling = *p;
    return rc;
}

const sampler_params *conv_sampling(const conv_t *c) { return &c->opts.sampling; }
void conv_set_cache(conv_t *c, bool on) { session_set_cache(c->sess, on); }
bool conv_cache(const conv_t *c) { return session_cache(c->sess); }
const char *conv_device(const conv_t *c) { return session_device(c->sess); }
void conv_set_max_new(conv_t *c, int n) { c->opts.max_new = n < 0 ? 0 : n; }
int conv_max_new(const conv_t *c) { return c->opts.max_new; }

void conv_get_opts(const conv_t *c, conv_opts *o)
{
    *o = c->opts;
    o->cache = session_cache(c->sess);
    o->max_seq = session_max(c->sess);
    o->device = session_device(c->sess);
}

int conv_n_messages(const conv_t *c) { return c->n_msgs; }
conv_role conv_message_role(const conv_t *c, int i) { return c->msgs[i].role; }
const char *conv_message_text(const conv_t *c, int i) { return c->msgs[i].text; }
bool conv_generating(const conv_t *c) { return c->generating; }
const char *conv_stop_message(const conv_t *c) { return c->stop_msg[0] ? c->stop_msg : NULL; }
const conv_timings *conv_last_timings(const conv_t *c) { return &c->cur; }

const double *conv_token_ms(const conv_t *c, int *n)
{
    *n = c->n_tok_ms;
    return c->tok_ms;
}

int conv_set_system(conv_t *c, const char *text, eng_err *err)
{
    if (c->generating)
        return eng_fail(err, ENG_EINPUT, "a reply is being generated");
    bool has = c->n_msgs > 0 && c->msgs[0].role == CONV_SYSTEM;
    if (!text || !*text) {
        if (has) {
            eng_free(c->msgs[0].text);
            memmove(c->msgs, c->msgs + 1, (size_t)(c->n_msgs - 1) * sizeof *c->msgs);
            c->n_msgs--;
        }
    } else if (has) {
        message m = {CONV_SYSTEM, NULL, 0, 0};
        if (msg_append(&m, text, strlen(text)))
            return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
        eng_free(c->msgs[0].text);
        c->msgs[0] = m;
    } else {
        int rc = msg_push(c, CONV_SYSTEM, text, err);
        if (rc != ENG_OK)
            return rc;
        message m = c->msgs[c->n_msgs - 1];
        memmove(c->msgs + 1, c->msgs, (size_t)(c->n_msgs - 1) * sizeof *c->msgs);
        c->msgs[0] = m;
    }
    c->regen_ok = false;
    return ENG_OK;
}

void conv_reset(conv_t *c)
{
    conv_stop_reply(c);
    int keep = c->n_msgs > 0 && c->msgs[0].role == CONV_SYSTEM ? 1 : 0;
    while (c->n_msgs > keep)
        msg_pop(c);
    c->regen_ok = false;
    c->n_reply = 0;
    c->pending = -1;
    c->last_unrun = false;
    c->n_hist = 0;
    c->hist_has_cur = false;
    c->stop_msg[0] = '\0';
    sampler_reset(c->smp);
}

/* ---- the prompt ------------------------------------------------------------------- */

/* Renders the conversation (with the generation prompt in chat mode) and
 * tokenizes it into *ids / *n (caller frees with eng_free). */
static int render_prompt(conv_t *c, int **ids, size_t *n, eng_err *err)
{
    char *text = NULL;
    int rc;
    if (c->tmpl) {
        chat_msg *m = eng_malloc((size_t)(c->n_msgs ? c->n_msgs : 1) * sizeof *m);
        if (!m)
            return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
        for (int i = 0; i < c->n_msgs; i++) {
            m[i].role = conv_role_name(c->msgs[i].role);
            m[i].content = c->msgs[i].text;
        }
        rc = chat_render(c->tmpl, m, (size_t)c->n_msgs, CHAT_GEN_PROMPT, &text, err);
        eng_free(m);
        if (rc != ENG_OK)
            return rc;
    } else {
        /* Plain completion: the messages' texts, one after the other. */
        message all = {CONV_USER, NULL, 0, 0};
        if (msg_append(&all, "", 0))
            return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
        for (int i = 0; i < c->n_msgs; i++)
            if (msg_append(&all, c->msgs[i].text, c->msgs[i].len)) {
                eng_free(all.text);
                return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
            }
        text = all.text;
    }
    /* A chat template writes BOS itself; completion adds it as the tokenizer says. */
    rc = tok_encode(c->tok, text, strlen(text), !c->tmpl, ids, n, err);
    eng_free(text);
    return rc;
}

static void timings_start(conv_t *c, int prompt_tokens, int prefill_tokens, double prefill_ms)
{
    memset(&c->cur, 0, sizeof c->cur);
    c->cur.prompt_tokens = prompt_tokens;
    c->cur.prefill_tokens = prefill_tokens;
    c->cur.prefill_ms = prefill_ms;
    c->cur.cache = session_cache(c->sess);
    c->n_tok_ms = 0;
    c->hist_has_cur = false;
    c->stop_msg[0] = '\0';
}

/* Starts the reply state after the prompt is in the session and its logits
 * are in prompt_logits; adds the empty assistant message. */
static int reply_start(conv_t *c, eng_err *err)
{
    /* Room for this reply's timings now, so that finishing never allocates. */
    if (grow((void **)&c->hist, &c->cap_hist, c->n_hist + 1, sizeof *c->hist))
        return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
    int rc = msg_push(c, CONV_ASSISTANT, "", err);
    if (rc != ENG_OK)
        return rc;
    c->prompt_len = session_len(c->sess);
    sampler_reset(c->smp);
    sampler_accept_many(c->smp, session_tokens(c->sess), c->prompt_len);
    tok_stream_reset(c->stream);
    c->n_reply = 0;
    c->pending = -1;
    c->last_unrun = false;
    c->generating = true;
    c->regen_ok = true;
    return ENG_OK;
}

/* Tokenizes the conversation and runs only what the session does not
 * already hold through the model. */
static int prefill(conv_t *c, eng_err *err)
{
    int *ids = NULL;
    size_t n = 0;
    int rc = render_prompt(c, &ids, &n, err);
    if (rc != ENG_OK)
        return rc;
    int max = session_max(c->sess);
    if (n == 0) {
        eng_free(ids);
        return eng_fail(err, ENG_EINPUT, "the prompt is empty");
    }
    if ((int64_t)n >= max) {
        eng_free(ids);
        return eng_fail(err, ENG_ERANGE,
                        "the prompt is %zu tokens but the context holds %d (room is needed for the reply): "
                        "shorten it or /reset", n, max);
    }
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= c->n_vocab) {
            int bad = ids[i];
            eng_free(ids);
            return eng_fail(err, ENG_EINPUT, "tokenizer.json: token id %d is outside the model's vocabulary (%d)",
                            bad, c->n_vocab);
        }

    /* The common prefix with the session stays cached; at least one token is
     * run so that the logits belong to this prompt. */
    int len = session_len(c->sess);
    const int *have = session_tokens(c->sess);
    int p = 0;
    while (p < len && p < (int)n && have[p] == ids[p])
        p++;
    if (p >= (int)n)
        p = (int)n - 1;
    session_rewind(c->sess, p);
    double t0 = eng_now_ms();
    c->t_begin = t0;
    rc = session_eval(c->sess, ids + p, (int)n - p, NULL, err);
    double ms = eng_now_ms() - t0;
    if (rc != ENG_OK) {
        session_rewind(c->sess, p);
        eng_free(ids);
        return rc;
    }
    memcpy(c->prompt_logits, session_logits(c->sess), (size_t)c->n_vocab * sizeof(float));
    eng_free(ids);
    /* Positions actually run: n - p with the cache on, all n with it off. */
    timings_start(c, (int)n, session_last_timing(c->sess).n_computed, ms);
    return ENG_OK;
}

int conv_begin(conv_t *c, const char *user_text, eng_err *err)
{
    if (c->generating)
        return eng_fail(err, ENG_EINPUT, "a reply is being generated");
    double t0 = eng_now_ms();
    int rc = msg_push(c, CONV_USER, user_text ? user_text : "", err);
    if (rc != ENG_OK)
        return rc;
    rc = prefill(c, err);
    if (rc == ENG_OK)
        rc = reply_start(c, err);
    if (rc != ENG_OK) {
        msg_pop(c);
        c->regen_ok = false;
        return rc;
    }
    c->t_begin = t0;
    return ENG_OK;
}

int conv_regen(conv_t *c, eng_err *err)
{
    if (c->generating)
        return eng_fail(err, ENG_EINPUT, "a reply is being generated");
    if (c->n_msgs == 0 || c->msgs[c->n_msgs - 1].role != CONV_ASSISTANT)
        return eng_fail(err, ENG_EINPUT, "there is no reply to regenerate");
    double t0 = eng_now_ms();
    message dropped = c->msgs[--c->n_msgs];
    int rc;
    if (c->regen_ok && session_len(c->sess) >= c->prompt_len) {
        /* The prompt is still cached and its logits kept: nothing to run. */
        session_rewind(c->sess, c->prompt_len);
        timings_start(c, c->prompt_len, 0, 0.0);
        rc = ENG_OK;
    } else {
        rc = prefill(c, err);
    }
    if (rc == ENG_OK)
        rc = reply_start(c, err);
    if (rc != ENG_OK) {
        c->msgs[c->n_msgs++] = dropped;     /* the old reply stays */
        return rc;
    }
    eng_free(dropped.text);
    /* The dropped reply's timings stay in the history: it was generated. */
    c->t_begin = t0;
    return ENG_OK;
}

/* ---- generation ---------------------------------------------------------------------- */

static void finish(conv_t *c, conv_stop why)
{
    if (!c->generating)
        return;
    c->generating = false;
    c->cur.stop = why;
    c->cur.total_ms = eng_now_ms() - c->t_begin;
    c->cur.cache = session_cache(c->sess);
    if (why == CONV_STOP_CONTEXT)
        snprintf(c->stop_msg, sizeof c->stop_msg,
                 "context full (%d tokens): the reply was cut; /reset to start over", session_max(c->sess));
    else if (why == CONV_STOP_LIMIT)
        snprintf(c->stop_msg, sizeof c->stop_msg, "reply cut at the limit of %d tokens (-n)", c->opts.max_new);
    else if (why == CONV_STOP_USER)
        snprintf(c->stop_msg, sizeof c->stop_msg, "stopped");
    if (c->n_hist < c->cap_hist) {          /* reserved by reply_start */
        c->hist[c->n_hist++] = c->cur;
        c->hist_has_cur = true;
    }
}

void conv_stop_reply(conv_t *c)
{
    finish(c, CONV_STOP_USER);
}

static void record_latency(conv_t *c, double ms)
{
    if (c->n_tok_ms < c->cap_tok_ms)
        c->tok_ms[c->n_tok_ms++] = ms;
}

/* Appends the newly printable text of id to the assistant message. */
static int emit(conv_t *c, int id, const char **text, size_t *len, eng_err *err)
{
    *text = "";
    *len = 0;
    if (is_eos(c, id))
        return ENG_OK;
    const char *t = "";
    size_t n = 0;
    eng_err e2;
    int rc = tok_stream_push(c->stream, id, &t, &n, &e2);
    if (rc == ENG_ENOMEM)
        return eng_fail(err, rc, "%s", e2.msg);
    if (rc != ENG_OK)
        return ENG_OK;                 /* an id the tokenizer does not know prints nothing */
    if (msg_append(&c->msgs[c->n_msgs - 1], t, n))
        return eng_fail(err, ENG_ENOMEM, "conversation: out of memory");
    *text = t;
    *len = n;
    return ENG_OK;
}

int conv_step(conv_t *c, int force_id, conv_token *tok, eng_err *err)
{
    tok->id = -1;
    tok->text = "";
    tok->len = 0;
    tok->stop = CONV_STOP_NONE;
    if (!c->generating)
        return eng_fail(err, ENG_ERANGE, "no reply is being generated");
    if (force_id >= c->n_vocab)
        return eng_fail(err, ENG_ERANGE, "token %d is outside the vocabulary (%d)", force_id, c->n_vocab);
    double t0 = eng_now_ms();

    /* Run the previous token through the model (see the top of the file). */
    if (c->pending >= 0) {
        if (session_len(c->sess) >= session_max(c->sess)) {
            finish(c, CONV_STOP_CONTEXT);
            tok->stop = CONV_STOP_CONTEXT;
            return ENG_OK;
        }
        int id = c->pending;
        double te = eng_now_ms();
        int rc = session_eval(c->sess, &id, 1, NULL, err);
        if (rc != ENG_OK) {
            finish(c, CONV_STOP_USER);
            tok->stop = CONV_STOP_USER;
            return rc;
        }
        c->cur.decode_ms += eng_now_ms() - te;
        c->cur.decode_evals++;
        sampler_accept(c->smp, id);
        c->pending = -1;
        c->last_unrun = false;
    }

    /* Choose the next token. */
    const float *logits = c->n_reply == 0 ? c->prompt_logits : session_logits(c->sess);
    int id = -1;
    int rc = sampler_step(c->smp, logits, &id, err);
    if (rc == ENG_OK && force_id >= 0) {
        rc = sampler_force(c->smp, force_id, err);
        id = force_id;
    }
    if (rc != ENG_OK) {
        finish(c, CONV_STOP_USER);
        tok->stop = CONV_STOP_USER;
        return rc;
    }
    if (c->n_reply >= c->cap_reply) {      /* cannot happen: the context check comes first */
        finish(c, CONV_STOP_CONTEXT);
        tok->stop = CONV_STOP_CONTEXT;
        return ENG_OK;
    }
    c->reply[c->n_reply++] = id;
    c->cur.gen_tokens++;
    c->last_unrun = true;
    double now = eng_now_ms();
    if (c->n_reply == 1)
        c->cur.ttft_ms = now - c->t_begin;
    record_latency(c, c->n_reply == 1 ? now - c->t_begin : now - t0);
    tok->id = id;

    if (is_eos(c, id)) {
        finish(c, CONV_STOP_EOS);
        tok->stop = CONV_STOP_EOS;
        return ENG_OK;
    }
    rc = emit(c, id, &tok->text, &tok->len, err);
    if (rc != ENG_OK) {
        finish(c, CONV_STOP_USER);
        tok->stop = CONV_STOP_USER;
        return rc;
    }
    c->pending = id;
    if (c->opts.max_new > 0 && c->n_reply >= c->opts.max_new) {
        finish(c, CONV_STOP_LIMIT);
        tok->stop = CONV_STOP_LIMIT;
    }
    return ENG_OK;
}

int conv_replace_last(conv_t *c, int id, const char **text, eng_err *err)
{
    *text = "";
    bool reopen = !c->generating && c->hist_has_cur &&
                  (c->cur.stop == CONV_STOP_EOS || c->cur.stop == CONV_STOP_LIMIT);
    if (c->n_reply == 0 || !c->last_unrun || (!c->generating && !reopen))
        return eng_fail(err, ENG_ERANGE, "there is no newest token to replace");
    if (id >= c->n_vocab)
        return eng_fail(err, ENG_ERANGE, "token %d is outside the vocabulary (%d)", id, c->n_vocab);
    int rc = id < 0 ? sampler_redo(c->smp, &id, err) : sampler_force(c->smp, id, err);
    if (rc != ENG_OK)
        return rc;

    /* The reply again from its tokens, the new one last. */
    c->reply[c->n_reply - 1] = id;
    message *m = &c->msgs[c->n_msgs - 1];
    m->len = 0;
    m->text[0] = '\0';
    tok_stream_reset(c->stream);
    for (int i = 0; i < c->n_reply; i++) {
        const char *t;
        size_t n;
        rc = emit(c, c->reply[i], &t, &n, err);
        if (rc != ENG_OK)
            return rc;
    }
    if (reopen) {
        c->n_hist--;
        c->hist_has_cur = false;
        c->generating = true;
        c->cur.stop = CONV_STOP_NONE;
        c->stop_msg[0] = '\0';
    }
    if (is_eos(c, id)) {
        c->pending = -1;
        finish(c, CONV_STOP_EOS);
    } else {
        c->pending = id;
        if (c->opts.max_new > 0 && c->n_reply >= c->opts.max_new)
            finish(c, CONV_STOP_LIMIT);
    }
    *text = m->text;
    return ENG_OK;
}

/* ---- save as JSON ------------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (!b->oom && str_append(&b->p, &b->len, &b->cap, s, n))
        b->oom = true;
}

static void sb_puts(sbuf *b, const char *s)
{
    sb_put(b, s, strlen(s));
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        sb_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string: quotes, backslashes and control characters escaped; UTF-8
 * passes through as it is. */
static void sb_str(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if (*u == '"')
            sb_put(b, "\\\"", 2);
        else if (*u == '\\')
            sb_put(b, "\\\\", 2);
        else if (*u == '\n')
            sb_put(b, "\\n", 2);
        else if (*u == '\t')
            sb_put(b, "\\t", 2);
        else if (*u == '\r')
            sb_put(b, "\\r", 2);
        else if (*u < 0x20)
            sb_printf(b, "\\u%04x", *u);
        else
            sb_put(b, (const char *)u, 1);
    }
    sb_put(b, "\"", 1);
}

/* JSON has no NaN or infinity: a rate over zero time is written as 0. */
static double rate(double tokens, double ms)
{
    return ms > 0 ? tokens * 1000.0 / ms : 0.0;
}

static const char *stop_name(conv_stop s)
{
    switch (s) {
    case CONV_STOP_EOS: return "eos";
    case CONV_STOP_LIMIT: return "limit";
    case CONV_STOP_CONTEXT: return "context";
    case CONV_STOP_USER: return "user";
    default: return "none";
    }
}

static void sb_timings(sbuf *b, const conv_timings *t)
{
    sb_printf(b, "{\"prompt_tokens\": %d, \"prefill_tokens\": %d, \"prefill_ms\": %.3f, "
                 "\"prefill_tok_s\": %.2f, ", t->prompt_tokens, t->prefill_tokens, t->prefill_ms,
              rate(t->prefill_tokens, t->prefill_ms));
    sb_printf(b, "\"gen_tokens\": %d, \"decode_evals\": %d, \"decode_ms\": %.3f, "
                 "\"decode_ms_per_token\": %.3f, \"decode_tok_s\": %.2f, ",
              t->gen_tokens, t->decode_evals, t->decode_ms,
              t->decode_evals ? t->decode_ms / t->decode_evals : 0.0, rate(t->decode_evals, t->decode_ms));
    sb_printf(b, "\"ttft_ms\": %.3f, \"total_ms\": %.3f, \"cache\": %s, \"stop\": \"%s\"}",
              t->ttft_ms, t->total_ms, t->cache ? "true" : "false", stop_name(t->stop));
}

int conv_save(const conv_t *c, const char *path, bool force, eng_err *err)
{
    if (!path || !*path)
        return eng_fail(err, ENG_EINPUT, "no file name given");
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return eng_fail(err, ENG_EINPUT, "%s is a folder", path);
        if (!force)
            return eng_fail(err, ENG_EINPUT, "%s exists; add --force to overwrite it", path);
    }
    /* The folder must exist (we do not create folders behind the user's back). */
    char folder[4096];
    snprintf(folder, sizeof folder, "%s", path);
    char *slash = strrchr(folder, '/');
    if (slash) {
        if (slash == folder)
            slash[1] = '\0';
        else
            *slash = '\0';
        if (stat(folder, &st) != 0 || !S_ISDIR(st.st_mode))
            return eng_fail(err, ENG_EINPUT, "%s: folder %s does not exist", path, folder);
    }

    sbuf b = {0};
    const sampler_params *p = &c->opts.sampling;
    sb_puts(&b, "{\n  \"model\": ");
    sb_str(&b, c->dir);
    sb_puts(&b, ",\n  \"family\": ");
    sb_str(&b, conv_family(c));
    sb_printf(&b, ",\n  \"settings\": {\"temp\": %g, \"top_k\": %d, \"top_p\": %g, \"min_p\": %g, "
                  "\"repeat_penalty\": %g, \"penalty_last_n\": %d, \"seed\": %llu, ",
              (double)p->temperature, p->top_k, (double)p->top_p, (double)p->min_p,
              (double)p->repeat_penalty, p->penalty_last_n, (unsigned long long)p->seed);
    sb_printf(&b, "\"cache\": %s, \"max_new\": %d, \"context\": %d, \"chat\": %s},\n  \"messages\": [",
              session_cache(c->sess) ? "true" : "false", c->opts.max_new, session_max(c->sess),
              c->tmpl ? "true" : "false");
    for (int i = 0; i < c->n_msgs; i++) {
        sb_puts(&b, i ? ",\n    {\"role\": " : "\n    {\"role\": ");
        sb_str(&b, conv_role_name(c->msgs[i].role));
        sb_puts(&b, ", \"content\": ");
        sb_str(&b, c->msgs[i].text);
        sb_puts(&b, "}");
    }
    sb_puts(&b, c->n_msgs ? "\n  ],\n  \"timings\": [" : "],\n  \"timings\": [");
    for (int i = 0; i < c->n_hist; i++) {
        sb_puts(&b, i ? ",\n    " : "\n    ");
        sb_timings(&b, &c->hist[i]);
    }
    sb_puts(&b, c->n_hist ? "\n  ]\n}\n" : "]\n}\n");
    if (b.oom) {
        eng_free(b.p);
        return eng_fail(err, ENG_ENOMEM, "/save: out of memory");
    }

    /* path.tmp, then rename: an interrupted save never damages an old file. */
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int e = errno;
        eng_free(b.p);
        return eng_fail(err, e == ENOENT ? ENG_EINPUT : ENG_EIO, "%s: %s", tmp, strerror(e));
    }
    bool ok = fwrite(b.p, 1, b.len, f) == b.len;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    ok = fclose(f) == 0 && ok;
    eng_free(b.p);
    if (!ok) {
        int e = errno;
        unlink(tmp);
        return eng_fail(err, ENG_EIO, "%s: write failed: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return eng_fail(err, ENG_EIO, "%s: %s", path, strerror(e));
    }
    return ENG_OK;
}
