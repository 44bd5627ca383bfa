/* conv.h - a conversation with a model: messages, the chat prompt, incremental
 * prefill that keeps the KV cache across turns, stop conditions, streamed
 * UTF-8-safe text and llama.cpp-style timings, generated one token at a time. */
#ifndef ENGINE_CONV_H
#define ENGINE_CONV_H

#include "common.h"
#include "model.h"
#include "session.h"
#include "tokenizer.h"
#include "chat.h"
#include "sampler.h"

typedef struct conv conv_t;

typedef enum { CONV_SYSTEM = 0, CONV_USER, CONV_ASSISTANT } conv_role;

/* Why a reply ended. */
typedef enum {
    CONV_STOP_NONE = 0,      /* still generating (or no reply yet) */
    CONV_STOP_EOS,           /* an end-of-sequence / end-of-turn token */
    CONV_STOP_LIMIT,         /* max_new tokens generated (-n) */
    CONV_STOP_CONTEXT,       /* the context is full */
    CONV_STOP_USER,          /* conv_stop_reply (Ctrl-C, Esc) */
} conv_stop;

typedef struct {
    int max_seq;             /* context in tokens; 0 = the model's, capped at 4096 */
    int n_threads;           /* 0 = all cores */
    bool chat;               /* render through the chat template; false = plain completion */
    bool cache;              /* KV cache on at the start */
    int max_new;             /* tokens per reply; 0 = until end of turn or context full */
    const char *device;      /* NULL or "cpu"; "cuda" in a CUDA build (session_set_device) */
    sampler_params sampling;
} conv_opts;

/* Defaults: context from the model, all cores, chat on, cache on,
 * max_new 512, sampler_params_default. */
void conv_opts_default(conv_opts *o);

/* Timings of one reply, in llama.cpp's terms. */
typedef struct {
    int prompt_tokens;       /* tokens of the rendered prompt (the whole context before the reply) */
    int prefill_tokens;      /* of those, run through the model now (the rest came from the cache) */
    double prefill_ms;       /* model time for the prefill */
    int gen_tokens;          /* tokens generated (an end-of-turn token is counted, not shown) */
    int decode_evals;        /* generated tokens run through the model (gen_tokens - 1 at most) */
    double decode_ms;        /* model time of those evals */
    double ttft_ms;          /* conv_begin/conv_regen -> first token chosen (tokenize + prefill + sample) */
    double total_ms;         /* conv_begin/conv_regen -> the reply's end */
    bool cache;              /* cache setting at the reply's end */
    conv_stop stop;
} conv_timings;

/* Opens DIR as a model folder (config.json, weights, tokenizer.json,
 * tokenizer_config.json, optional generation_config.json) and starts an empty
 * conversation. o may be NULL (defaults). When o->chat is set but the folder
 * has no usable chat template, the conversation runs as plain completion and
 * conv_warning says so. Errors: the loaders' codes (ENG_EINPUT for a bad
 * folder, naming the file and field), ENG_EINPUT for out-of-range options,
 * ENG_EDEVICE when o->device cannot be used; *out is NULL then. Free with
 * conv_close. */
int conv_open(conv_t **out, const char *dir, const conv_opts *o, eng_err *err);
void conv_close(conv_t *c);                     /* accepts NULL */

/* ---- what is loaded ------------------------------------------------------ */
const char *conv_dir(const conv_t *c);          /* the folder given to conv_open */
const model_t *conv_model(const conv_t *c);
session_t *conv_session(conv_t *c);             /* for the observer and attention reads */
tokenizer_t *conv_tokenizer(conv_t *c);
sampler *conv_sampler(conv_t *c);               /* sampler_last: the candidates of the last step */
bool conv_chat(const conv_t *c);                /* rendering through a chat template */
const char *conv_family(const conv_t *c);       /* chat family, "none" in completion mode */
const char *conv_warning(const conv_t *c);      /* NULL, or why chat fell back to completion */

/* ---- settings (take effect at the next token) ----------------------------- */
int conv_set_sampling(conv_t *c, const sampler_params *p, eng_err *err); /* checked; nothing changes on error */
const sampler_params *conv_sampling(const conv_t *c);
void conv_set_cache(conv_t *c, bool on);
bool conv_cache(const conv_t *c);
const char *conv_device(const conv_t *c);       /* "cpu" or "cuda" (session_set_device switches) */
void conv_set_max_new(conv_t *c, int n);       /* 0 = unlimited */
/* The options a conv_open of another folder needs to continue with the same
 * settings (context size, threads, chat, cache, max_new, device, sampling). */
void conv_get_opts(const conv_t *c, conv_opts *o);
int conv_max_new(const conv_t *c);

/* ---- messages -------------------------------------------------------------- */
/* Sets (text non-empty) or removes (NULL or "") the system message. Takes
 * effect at the next reply; the cache is reused up to the first changed token. */
int conv_set_system(conv_t *c, const char *text, eng_err *err);
int conv_n_messages(const conv_t *c);           /* system message included */
conv_role conv_message_role(const conv_t *c, int i);
const char *conv_message_text(const conv_t *c, int i); /* the reply so far while generating */
const char *conv_role_name(conv_role r);        /* "system", "user", "assistant" */

/* ---- generation, one token at a time ------------------------------------- */
/* Adds a user message and prefills the prompt: the rendered conversation is
 * tokenized and compared with the tokens already in the session; only the
 * tokens after the common prefix are run through the model. On error
 * (ENG_ERANGE: the prompt does not fit the context, message saying how many
 * tokens it has and how many fit; others from the engine) the user message is
 * removed again and the conversation is as before. */
int conv_begin(conv_t *c, const char *user_text, eng_err *err);

/* /regen: drops the last assistant reply and starts a new one from the same
 * prompt, without prefilling anything (the cache is rewound, the prompt's
 * logits were kept). ENG_EINPUT when there is no reply to drop. */
int conv_regen(conv_t *c, eng_err *err);

/* One token of the reply started by conv_begin/conv_regen. The token chosen
 * by a step is run through the model at the start of the next step, so after
 * a step the session's attention rows (session_attn, observer on) are those
 * of the query that produced the token just returned, and its sampler report
 * (sampler_last) the candidates it was drawn from. If force_id >= 0
 * that token is taken instead of sampling (the sampler report marks it).
 * Fills *tok; when tok->stop != CONV_STOP_NONE the reply is finished (its
 * timings are final) and further calls return ENG_ERANGE until the next
 * begin. A stop at the context limit sets conv_stop_message. Errors from the
 * model leave the reply finished with what it had. */
typedef struct {
    int id;                  /* the token chosen, -1 when none (stopped before choosing) */
    const char *text;        /* newly printable UTF-8 (may be ""); valid until the next call */
    size_t len;
    conv_stop stop;
} conv_token;
int conv_step(conv_t *c, int force_id, conv_token *tok, eng_err *err);

/* Step mode: replaces the last chosen token (not yet run through the model)
 * with id, or, with id < 0, draws it again with the current sampling settings
 * (sampler_redo: the same random number). The reply text is rebuilt; *text
 * receives the whole reply text after the change (valid until the next call).
 * ENG_ERANGE when there is no token to replace. */
int conv_replace_last(conv_t *c, int id, const char **text, eng_err *err);

/* Ends the reply being generated (Ctrl-C, Esc): the text so far is kept as
 * the assistant message, stop = CONV_STOP_USER. No-op when not generating. */
void conv_stop_reply(conv_t *c);
bool conv_generating(const conv_t *c);

/* A one-line explanation of the last stop when it was not a plain end of turn
 * (e.g. "context full: 4096 tokens; /reset to start over"), or NULL. */
const char *conv_stop_message(const conv_t *c);

/* Timings of the last (or current) reply; per-token latencies in ms, one per
 * generated token (the first one is the time to first token). */
const conv_timings *conv_last_timings(const conv_t *c);
const double *conv_token_ms(const conv_t *c, int *n);

/* Forgets every message but the system message. The cache is kept and
 * reused for the system prompt on the next reply (nothing is re-prefilled
 * that is still valid). */
void conv_reset(conv_t *c);

/* Writes the conversation as JSON to path: {"model", "messages": [{role,
 * content}], "settings": {...}, "timings": [...one object per reply]}.
 * Writes path.tmp then renames it. ENG_EINPUT when path exists and force is
 * false ("exists; use --force") or its folder does not exist; ENG_EIO on a
 * write failure (the old file, if any, is untouched). */
int conv_save(const conv_t *c, const char *path, bool force, eng_err *err);

#endif
