/* chat.c - chat templates by family, rendered in C: each family's renderer
 * reproduces, character for character, what its published Jinja template
 * produces under transformers' apply_chat_template (trim_blocks, lstrip_blocks,
 * Python's str.strip for `trim`/`.strip()`, raise_exception as an error). */
#include "chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>

typedef enum {
    FAM_NONE = 0,
    FAM_CHATML,     /* <|im_start|>role\n...<|im_end|>\n, optional default system */
    FAM_QWEN3,      /* ChatML with Qwen3's think-block rules */
    FAM_LLAMA3,     /* Llama 3 8B: headers, trimmed content, bos on the first */
    FAM_LLAMA31,    /* Llama 3.1/3.2: system header with the knowledge/today dates */
    FAM_LLAMA2,     /* <s>[INST] <<SYS>>...<</SYS>> ... [/INST] */
    FAM_MISTRAL,    /* <s>[INST] ... [/INST]answer</s>[ ] (v0.1, Mixtral) */
    FAM_MISTRAL_V3, /* system folded into the last user turn (v3, v3-tekken) */
    FAM_MISTRAL_V7, /* [SYSTEM_PROMPT] ... [/SYSTEM_PROMPT] */
    FAM_ZEPHYR,     /* <|user|>\n...</s>\n */
    FAM_PHI3,       /* <|user|>\n...<|end|>\n */
    FAM_GEMMA,      /* <start_of_turn>user\n...<end_of_turn>\n */
    FAM_GEMMA3,     /* Gemma with the system prompt prefixed to the first turn */
} family_t;

static const char *const family_names[] = {
    [FAM_NONE] = "none",       [FAM_CHATML] = "chatml",   [FAM_QWEN3] = "qwen3",
    [FAM_LLAMA3] = "llama3",   [FAM_LLAMA31] = "llama3.1", [FAM_LLAMA2] = "llama2",
    [FAM_MISTRAL] = "mistral", [FAM_MISTRAL_V3] = "mistral-v3", [FAM_MISTRAL_V7] = "mistral-v7",
    [FAM_ZEPHYR] = "zephyr",   [FAM_PHI3] = "phi3",
    [FAM_GEMMA] = "gemma",      [FAM_GEMMA3] = "gemma3",
};

#define MAX_STOPS 4

struct chat_template {
    family_t fam;
    char *bos, *eos;            /* "" when absent */
    char *default_system;       /* ChatML: the system turn used when none is given */
    char *warning;              /* NULL when fully supported */
    char *date;                 /* chat_set_date override */
    char *fixed_date;           /* Llama 3.1: the template's own date literal */
    bool date_from_clock;       /* Llama 3.2: strftime_now("%d %b %Y") */
    bool gen_always;            /* Llama 3 8B (npm copy): assistant header always */
    bool eos_space;             /* Mistral v0.1: eos_token + ' ' after an answer */
    bool inst_space;            /* Mistral v3: "[INST] " (v3-tekken: "[INST]") */
    bool answer_trim;           /* Mistral v3: " " + answer|trim (v3-tekken: as is) */
    bool skip_empty_system;     /* Phi-3.5 form: "'system' and message['content']" */
    const char *stops[MAX_STOPS + 1];
    char *stop_store[MAX_STOPS];
    int n_stops;
};

/* ------------------------------------------------------------ string buffer */

typedef struct {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_addn(sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = eng_realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }

/* ------------------------------------------------------------ Python strip */

/* Length of the whitespace code point at s (Python's str.isspace), or 0. */
static size_t space_len(const unsigned char *s, size_t n)
{
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20)))
        return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3) {
        unsigned cp;
        if ((s[0] & 0xf0) != 0xe0 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80) return 0;
        cp = ((unsigned)(s[0] & 0x0f) << 12) | ((unsigned)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        if (cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 ||
            cp == 0x202f || cp == 0x205f || cp == 0x3000)
            return 3;
    }
    return 0;
}

/* Python's s.strip() (which Jinja's trim filter calls): [*b, *e) of s. */
static void py_strip(const char *s, const char **b, const char **e)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    size_t k;
    while (p < end && (k = space_len(p, (size_t)(end - p))) > 0) p += k;
    while (end > p) {
        const unsigned char *q = end - 1;
        while (q > p && (*q & 0xc0) == 0x80) q--;   /* start of the last code point */
        if (space_len(q, (size_t)(end - q)) != (size_t)(end - q)) break;
        end = q;
    }
    *b = (const char *)p;
    *e = (const char *)end;
}

static void sb_add_stripped(sbuf *b, const char *s)
{
    const char *x, *y;
    py_strip(s, &x, &y);
    sb_addn(b, x, (size_t)(y - x));
}

/* s.strip(chars) / lstrip / rstrip for a set of ASCII characters. */
static void strip_chars(const char **b, const char **e, const char *chars, bool left, bool right)
{
    if (left) while (*b < *e && strchr(chars, **b)) (*b)++;
    if (right) while (*e > *b && strchr(chars, (*e)[-1])) (*e)--;
}

/* ------------------------------------------------------------ helpers */

static bool has(const char *hay, const char *needle) { return strstr(hay, needle) != NULL; }

static bool role_is(const chat_msg *m, const char *r) { return strcmp(m->role, r) == 0; }

static int check_msgs(const chat_msg *msgs, size_t n, eng_err *err)
{
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].role || !msgs[i].content)
            return eng_fail(err, ENG_EINPUT, "chat: message %zu has no role or no content", i);
        if (!role_is(&msgs[i], "system") && !role_is(&msgs[i], "user") &&
            !role_is(&msgs[i], "assistant"))
            return eng_fail(err, ENG_EINPUT,
                            "chat: message %zu: role '%s' is not system, user or assistant",
                            i, msgs[i].role);
    }
    return ENG_OK;
}

/* The templates' own raise_exception for user/assistant alternation. */
static int alternation_error(eng_err *err, const char *family, size_t i)
{
    return eng_fail(err, ENG_EINPUT,
                    "chat: the %s template requires roles to alternate "
                    "user/assistant/user/assistant/... (message %zu breaks it)", family, i);
}

/* Unescapes a Jinja string literal body [s, e) into a new string. */
static char *jinja_unescape(const char *s, const char *e)
{
    char *out = eng_malloc((size_t)(e - s) + 1), *o = out;
    if (!out) return NULL;
    while (s < e) {
        if (*s == '\\' && s + 1 < e) {
            s++;
            switch (*s) {
            case 'n': *o++ = '\n'; break;
            case 't': *o++ = '\t'; break;
            case 'r': *o++ = '\r'; break;
            default: *o++ = *s; break;
            }
            s++;
        } else {
            *o++ = *s++;
        }
    }
    *o = '\0';
    return out;
}

/* ChatML templates that open with a fixed system turn when the conversation has
 * none (Qwen2/2.5, SmolLM2) spell it as one literal: '<|im_start|>system\n...
 * <|im_end|>'. Returns ENG_OK and *out NULL when there is none. */
static int find_default_system(const char *tmpl, char **out)
{
    static const char *const heads[] = { "<|im_start|>system\\n", "<|im_start|>system\n" };
    *out = NULL;
    for (size_t h = 0; h < 2; h++) {
        for (const char *p = strstr(tmpl, heads[h]); p; p = strstr(p + 1, heads[h])) {
            const char *body = p + strlen(heads[h]);
            const char *end = strstr(body, "<|im_end|>");
            if (*body == '\'' || *body == '"' || !end) continue;
            /* the literal must not be cut by a quote (that would be an expression) */
            const char *q = body;
            while (q < end && *q != '\'' && *q != '"') q++;
            if (q < end) continue;
            *out = jinja_unescape(body, end);
            return *out ? ENG_OK : ENG_ENOMEM;
        }
    }
    return ENG_OK;
}

/* The literal in `set date_string = "..."` (Llama 3.1's fixed date). */
static char *find_fixed_date(const char *tmpl)
{
    const char *key = "date_string = \"";
    const char *p = strstr(tmpl, key);
    if (!p) return NULL;
    p += strlen(key);
    const char *e = strchr(p, '"');
    if (!e) return NULL;
    char *d = eng_malloc((size_t)(e - p) + 1);
    if (!d) return NULL;
    memcpy(d, p, (size_t)(e - p));
    d[e - p] = '\0';
    return d;
}

/* ------------------------------------------------------------ detection */

static int set_warning(chat_template *t, const char *msg)
{
    eng_free(t->warning);
    t->warning = eng_strdup(msg);
    return t->warning ? ENG_OK : ENG_ENOMEM;
}

static int unsupported(chat_template *t, const char *what)
{
    char buf[256];
    snprintf(buf, sizeof buf, "chat template not supported (%s): using plain completion", what);
    t->fam = FAM_NONE;
    return set_warning(t, buf);
}

/* Family by substrings of the template text, in llama.cpp's order, then the
 * variant details each renderer needs. A family whose template deviates from
 * the forms we reproduce is reported as unsupported rather than guessed. */
static int detect(chat_template *t, const char *tmpl)
{
    if (!tmpl || !*tmpl) {
        t->fam = FAM_NONE;
        return set_warning(t, "no chat_template in tokenizer_config.json: using plain completion");
    }
    if (has(tmpl, "<|im_start|>")) {
        if (has(tmpl, "<think>") && has(tmpl, "last_query_index")) {
            t->fam = FAM_QWEN3;
            return ENG_OK;
        }
        if (has(tmpl, "<think>"))
            return unsupported(t, "ChatML with a think-block rule other than Qwen3's");
        if (has(tmpl, "or not loop.last"))
            return unsupported(t, "ChatML variant that leaves the last turn open (Qwen1.5)");
        t->fam = FAM_CHATML;
        return find_default_system(tmpl, &t->default_system);
    }
    if (has(tmpl, "[INST]")) {
        if (has(tmpl, "<<SYS>>")) {
            if (!has(tmpl, "bos_token + '[INST] ' + content.strip() + ' [/INST]'") ||
                has(tmpl, "USE_DEFAULT_PROMPT") || has(tmpl, "default_system"))
                return unsupported(t, "Llama 2 [INST] variant");
            t->fam = FAM_LLAMA2;
            return ENG_OK;
        }
        if (has(tmpl, "'[INST] ' + message['content'] + ' [/INST]'") &&
            !has(tmpl, "system_message") && has(tmpl, "{{ bos_token }}")) {
            t->fam = FAM_MISTRAL;
            t->eos_space = has(tmpl, "eos_token + ' '");
            return ENG_OK;
        }
        if (has(tmpl, "[SYSTEM_PROMPT]")) {
            if (!has(tmpl, "'[INST] ' + message['content'] + '[/INST]'") ||
                !has(tmpl, "' ' + message['content'] + eos_token"))
                return unsupported(t, "Mistral [SYSTEM_PROMPT] variant");
            t->fam = FAM_MISTRAL_V7;
            return ENG_OK;
        }
        if (has(tmpl, "loop.last and system_message is defined")) {
            t->inst_space = has(tmpl, "\"[INST] \" + message[\"content\"]");
            t->answer_trim = has(tmpl, "\" \" + message[\"content\"]|trim + eos_token");
            if ((!t->inst_space && !has(tmpl, "\"[INST]\" + message[\"content\"]")) ||
                (!t->answer_trim && !has(tmpl, "message[\"content\"] + eos_token}}")))
                return unsupported(t, "Mistral v3 variant");
            t->fam = FAM_MISTRAL_V3;
            return ENG_OK;
        }
        return unsupported(t, "Mistral [INST] variant other than v0.1, v3 or v7");
    }
    if (has(tmpl, "<|assistant|>") && has(tmpl, "<|end|>")) {
        if (!has(tmpl, "{% else %}{{ eos_token }}") || has(tmpl, "bos_token"))
            return unsupported(t, "Phi-3 variant");
        t->fam = FAM_PHI3;
        t->skip_empty_system = has(tmpl, "'system' and message['content']");
        return ENG_OK;
    }
    if (has(tmpl, "<start_of_turn>")) {
        if (!has(tmpl, "message['content'] | trim"))
            return unsupported(t, "Gemma variant");
        t->fam = has(tmpl, "first_user_prefix") ? FAM_GEMMA3 : FAM_GEMMA;
        if (t->fam == FAM_GEMMA3 && !has(tmpl, "(first_user_prefix if loop.first else"))
            return unsupported(t, "Gemma 3 variant");
        return ENG_OK;
    }
    if (has(tmpl, "<|start_header_id|>") && has(tmpl, "<|end_header_id|>")) {
        if (has(tmpl, "Cutting Knowledge Date")) {
            t->fam = FAM_LLAMA31;
            t->date_from_clock = has(tmpl, "strftime_now");
            t->fixed_date = find_fixed_date(tmpl);
            if (!t->fixed_date) return unsupported(t, "Llama 3.1 variant without a date literal");
            return ENG_OK;
        }
        t->fam = FAM_LLAMA3;
        t->gen_always = !has(tmpl, "add_generation_prompt");
        return ENG_OK;
    }
    if (has(tmpl, "<|user|>") && has(tmpl, "<|assistant|>") && has(tmpl, "eos_token")) {
        t->fam = FAM_ZEPHYR;
        return ENG_OK;
    }
    return unsupported(t, "no known family matches");
}

static int add_stop(chat_template *t, const char *s)
{
    if (!s || !*s || t->n_stops == MAX_STOPS) return ENG_OK;
    for (int i = 0; i < t->n_stops; i++)
        if (strcmp(t->stops[i], s) == 0) return ENG_OK;
    char *c = eng_strdup(s);
    if (!c) return ENG_ENOMEM;
    t->stop_store[t->n_stops] = c;
    t->stops[t->n_stops++] = c;
    t->stops[t->n_stops] = NULL;
    return ENG_OK;
}

static int set_stops(chat_template *t)
{
    const char *turn = NULL;
    switch (t->fam) {
    case FAM_NONE: return ENG_OK;
    case FAM_CHATML: case FAM_QWEN3: turn = "<|im_end|>"; break;
    case FAM_LLAMA3: case FAM_LLAMA31: turn = "<|eot_id|>"; break;
    case FAM_PHI3: turn = "<|end|>"; break;
    case FAM_GEMMA: case FAM_GEMMA3: turn = "<end_of_turn>"; break;
    case FAM_LLAMA2: case FAM_MISTRAL: case FAM_MISTRAL_V3: case FAM_MISTRAL_V7:
    case FAM_ZEPHYR: break;
    }
    if (add_stop(t, turn) != ENG_OK || add_stop(t, t->eos) != ENG_OK) return ENG_ENOMEM;
    return ENG_OK;
}

/* ------------------------------------------------------------ open / close */

int chat_open(chat_template **out, const char *template_text, const char *bos,
              const char *eos, eng_err *err)
{
    *out = NULL;
    chat_template *t = eng_calloc(1, sizeof *t);
    if (!t) return eng_fail(err, ENG_ENOMEM, "chat: out of memory");
    t->bos = eng_strdup(bos ? bos : "");
    t->eos = eng_strdup(eos ? eos : "");
    if (!t->bos || !t->eos || detect(t, template_text) != ENG_OK || set_stops(t) != ENG_OK) {
        chat_close(t);
        return eng_fail(err, ENG_ENOMEM, "chat: out of memory");
    }
    *out = t;
    return ENG_OK;
}

void chat_close(chat_template *t)
{
    if (!t) return;
    eng_free(t->bos);
    eng_free(t->eos);
    eng_free(t->default_system);
    eng_free(t->warning);
    eng_free(t->date);
    eng_free(t->fixed_date);
    for (int i = 0; i < t->n_stops; i++) eng_free(t->stop_store[i]);
    eng_free(t);
}

/* A special-token field of tokenizer_config.json: a string, an AddedToken
 * object {"content": ...}, or null. */
static int token_field(const cJSON *cfg, const char *name, const char **out, const char *path,
                       eng_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, name);
    *out = NULL;
    if (!v || cJSON_IsNull(v)) return ENG_OK;
    if (cJSON_IsString(v)) { *out = v->valuestring; return ENG_OK; }
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) { *out = c->valuestring; return ENG_OK; }
    }
    return eng_fail(err, ENG_EINPUT, "%s: field '%s' is neither a string nor a token object",
                    path, name);
}

static char *read_file(const char *path, int *status)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;
    *status = ENG_EIO;
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = eng_malloc((size_t)n + 1);
    if (!buf) { *status = ENG_ENOMEM; fclose(f); return NULL; }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) { eng_free(buf); fclose(f); return NULL; }
    buf[n] = '\0';
    fclose(f);
    *status = ENG_OK;
    return buf;
}

int chat_open_dir(chat_template **out, const char *dir, eng_err *err)
{
    char path[4096], jpath[4096];
    int st, rc;
    *out = NULL;
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    snprintf(jpath, sizeof jpath, "%s/chat_template.jinja", dir);
    char *text = read_file(path, &st);
    if (!text) {
        if (st == ENG_ENOMEM) return eng_fail(err, ENG_ENOMEM, "chat: out of memory");
        return eng_fail(err, ENG_EIO, "%s: cannot read the file", path);
    }
    bool oom;
    cJSON *cfg = eng_json_parse(text, strlen(text), &oom);
    eng_free(text);
    if (!cfg && oom)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory reading the JSON", path);
    if (!cfg || !cJSON_IsObject(cfg)) {
        cJSON_Delete(cfg);
        return eng_fail(err, ENG_EINPUT, "%s: not a JSON object", path);
    }
    const char *bos, *eos, *tmpl = NULL;
    char *jinja = NULL;
    if ((rc = token_field(cfg, "bos_token", &bos, path, err)) != ENG_OK ||
        (rc = token_field(cfg, "eos_token", &eos, path, err)) != ENG_OK) {
        cJSON_Delete(cfg);
        return rc;
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    if (cJSON_IsString(ct)) {
        tmpl = ct->valuestring;
    } else if (cJSON_IsArray(ct)) {
        const cJSON *e;
        cJSON_ArrayForEach(e, ct) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name");
            const cJSON *tx = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (cJSON_IsString(nm) && cJSON_IsString(tx) && strcmp(nm->valuestring, "default") == 0)
                tmpl = tx->valuestring;
        }
    } else if (ct && !cJSON_IsNull(ct)) {
        cJSON_Delete(cfg);
        return eng_fail(err, ENG_EINPUT, "%s: field 'chat_template' is neither a string nor a list",
                        path);
    }
    if (!tmpl) {
        jinja = read_file(jpath, &st);
        if (!jinja && st == ENG_ENOMEM) {
            cJSON_Delete(cfg);
            return eng_fail(err, ENG_ENOMEM, "chat: out of memory");
        }
        tmpl = jinja;
    }
    rc = chat_open(out, tmpl, bos, eos, err);
    eng_free(jinja);
    cJSON_Delete(cfg);
    return rc;
}

const char *chat_family(const chat_template *t) { return family_names[t->fam]; }

const char *chat_warning(const chat_template *t) { return t->warning; }

const char *const *chat_stop_strings(const chat_template *t, int *n)
{
    if (n) *n = t->n_stops;
    return t->stops;
}

int chat_set_date(chat_template *t, const char *date, eng_err *err)
{
    char *d = NULL;
    if (date && !(d = eng_strdup(date))) return eng_fail(err, ENG_ENOMEM, "chat: out of memory");
    eng_free(t->date);
    t->date = d;
    return ENG_OK;
}

/* ------------------------------------------------------------ renderers */

static void chatml_turn(sbuf *b, const char *role, const char *s, size_t n)
{
    sb_add(b, "<|im_start|>");
    sb_add(b, role);
    sb_add(b, "\n");
    sb_addn(b, s, n);
    sb_add(b, "<|im_end|>\n");
}

static int render_chatml(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                         sbuf *b, eng_err *err)
{
    (void)err;
    if (t->default_system && n > 0 && !role_is(&m[0], "system")) {
        sb_add(b, "<|im_start|>system\n");
        sb_add(b, t->default_system);
        sb_add(b, "<|im_end|>\n");
    }
    for (size_t i = 0; i < n; i++)
        chatml_turn(b, m[i].role, m[i].content, strlen(m[i].content));
    if (flags & CHAT_GEN_PROMPT) sb_add(b, "<|im_start|>assistant\n");
    return ENG_OK;
}

/* Qwen3: the system turn first; assistant turns after the last real user
 * query keep (or get an empty) think block, earlier ones lose it. */
static int render_qwen3(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                        sbuf *b, eng_err *err)
{
    (void)t; (void)err;
    if (n > 0 && role_is(&m[0], "system"))
        chatml_turn(b, "system", m[0].content, strlen(m[0].content));
    size_t last_query = n > 0 ? n - 1 : 0;
    for (size_t k = n; k-- > 0;) {
        const char *c = m[k].content;
        size_t len = strlen(c);
        bool tool_resp = len >= 15 + 16 && strncmp(c, "<tool_response>", 15) == 0 &&
                         strcmp(c + len - 16, "</tool_response>") == 0;
        if (role_is(&m[k], "user") && !tool_resp) { last_query = k; break; }
    }
    for (size_t i = 0; i < n; i++) {
        const char *c = m[i].content;
        if (role_is(&m[i], "user") || (role_is(&m[i], "system") && i > 0)) {
            chatml_turn(b, m[i].role, c, strlen(c));
            continue;
        }
        if (!role_is(&m[i], "assistant")) continue;
        const char *cb = c, *ce = c + strlen(c);        /* content */
        const char *rb = "", *re = rb;                   /* reasoning_content */
        const char *first_end = strstr(c, "</think>");
        if (first_end) {
            const char *last_end = first_end, *p;
            while ((p = strstr(last_end + 1, "</think>")) != NULL) last_end = p;
            cb = last_end + 8;                                   /* split('</think>')[-1] */
            strip_chars(&cb, &ce, "\n", true, false);            /* .lstrip('\n') */
            rb = c; re = first_end;                              /* split('</think>')[0] */
            strip_chars(&rb, &re, "\n", false, true);            /* .rstrip('\n') */
            for (const char *q = rb; (q = strstr(q, "<think>")) != NULL && q < re; q += 7)
                rb = q + 7;                                      /* .split('<think>')[-1] */
            if (rb > re) rb = re;
            strip_chars(&rb, &re, "\n", true, false);            /* .lstrip('\n') */
        }
        sb_add(b, "<|im_start|>assistant\n");
        if (i > last_query && (i == n - 1 || re > rb)) {
            const char *sb_ = rb, *se = re, *xb = cb, *xe = ce;
            strip_chars(&sb_, &se, "\n", true, true);            /* reasoning.strip('\n') */
            strip_chars(&xb, &xe, "\n", true, false);            /* content.lstrip('\n') */
            sb_add(b, "<think>\n");
            sb_addn(b, sb_, (size_t)(se - sb_));
            sb_add(b, "\n</think>\n\n");
            sb_addn(b, xb, (size_t)(xe - xb));
        } else {
            sb_addn(b, cb, (size_t)(ce - cb));
        }
        sb_add(b, "<|im_end|>\n");
    }
    if (flags & CHAT_GEN_PROMPT) {
        sb_add(b, "<|im_start|>assistant\n");
        if (flags & CHAT_NO_THINKING) sb_add(b, "<think>\n\n</think>\n\n");
    }
    return ENG_OK;
}

static void llama3_turn(sbuf *b, const char *role, const char *content)
{
    sb_add(b, "<|start_header_id|>");
    sb_add(b, role);
    sb_add(b, "<|end_header_id|>\n\n");
    sb_add_stripped(b, content);
    sb_add(b, "<|eot_id|>");
}

static int render_llama3(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                         sbuf *b, eng_err *err)
{
    (void)err;
    for (size_t i = 0; i < n; i++) {
        if (i == 0) sb_add(b, t->bos);
        llama3_turn(b, m[i].role, m[i].content);
    }
    if (t->gen_always || (flags & CHAT_GEN_PROMPT))
        sb_add(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return ENG_OK;
}

static int render_llama31(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                          sbuf *b, eng_err *err)
{
    (void)err;
    char today[64];
    const char *date = t->date;
    if (!date && t->date_from_clock) {
        time_t now = time(NULL);
        struct tm tmv;
        if (localtime_r(&now, &tmv) && strftime(today, sizeof today, "%d %b %Y", &tmv) > 0)
            date = today;
    }
    if (!date) date = t->fixed_date;
    size_t i = 0;
    sb_add(b, t->bos);
    sb_add(b, "<|start_header_id|>system<|end_header_id|>\n\n");
    sb_add(b, "Cutting Knowledge Date: December 2023\n");
    sb_add(b, "Today Date: ");
    sb_add(b, date);
    sb_add(b, "\n\n");
    if (n > 0 && role_is(&m[0], "system")) {
        sb_add_stripped(b, m[0].content);
        i = 1;
    }
    sb_add(b, "<|eot_id|>");
    for (; i < n; i++) llama3_turn(b, m[i].role, m[i].content);
    if (flags & CHAT_GEN_PROMPT) sb_add(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    return ENG_OK;
}

static int render_llama2(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                         sbuf *b, eng_err *err)
{
    (void)flags;   /* the template has no generation prompt */
    const char *sys = NULL;
    size_t first = 0;
    if (n > 0 && role_is(&m[0], "system")) { sys = m[0].content; first = 1; }
    for (size_t i = first; i < n; i++) {
        size_t k = i - first;   /* loop.index0 */
        if (role_is(&m[i], "user") != (k % 2 == 0)) return alternation_error(err, "Llama 2", i);
        sbuf c = {0};
        if (k == 0 && sys) {
            sb_add(&c, "<<SYS>>\n");
            sb_add(&c, sys);
            sb_add(&c, "\n<</SYS>>\n\n");
        }
        sb_add(&c, m[i].content);
        if (c.oom) { eng_free(c.p); return eng_fail(err, ENG_ENOMEM, "chat: out of memory"); }
        if (role_is(&m[i], "user")) {
            sb_add(b, t->bos);
            sb_add(b, "[INST] ");
            sb_add_stripped(b, c.p);
            sb_add(b, " [/INST]");
        } else if (role_is(&m[i], "assistant")) {
            sb_add(b, " ");
            sb_add_stripped(b, c.p);
            sb_add(b, " ");
            sb_add(b, t->eos);
        }   /* any other role at an odd position: the template writes nothing */
        eng_free(c.p);
    }
    return ENG_OK;
}

static int render_mistral(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                          sbuf *b, eng_err *err)
{
    (void)flags;
    sb_add(b, t->bos);
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "user") != (i % 2 == 0)) return alternation_error(err, "Mistral", i);
        if (role_is(&m[i], "user")) {
            sb_add(b, "[INST] ");
            sb_add(b, m[i].content);
            sb_add(b, " [/INST]");
        } else if (role_is(&m[i], "assistant")) {
            sb_add(b, m[i].content);
            sb_add(b, t->eos);
            if (t->eos_space) sb_add(b, " ");
        } else {
            return eng_fail(err, ENG_EINPUT,
                            "chat: the Mistral template supports only user and assistant roles "
                            "(message %zu is '%s')", i, m[i].role);
        }
    }
    return ENG_OK;
}

/* Mistral v3: an optional first system message goes into the last user turn,
 * and only if the conversation ends with one. */
static int render_mistral_v3(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                             sbuf *b, eng_err *err)
{
    (void)flags;
    const char *sys = NULL;
    size_t first = 0;
    if (n > 0 && role_is(&m[0], "system")) { sys = m[0].content; first = 1; }
    for (size_t i = first; i < n; i++)
        if (role_is(&m[i], "user") != ((i - first) % 2 == 0))
            return alternation_error(err, "Mistral", i);
    const char *inst = t->inst_space ? "[INST] " : "[INST]";
    sb_add(b, t->bos);
    for (size_t i = first; i < n; i++) {
        if (role_is(&m[i], "user")) {
            sb_add(b, inst);
            if (i == n - 1 && sys) {
                sb_add(b, sys);
                sb_add(b, "\n\n");
            }
            sb_add(b, m[i].content);
            sb_add(b, "[/INST]");
        } else if (role_is(&m[i], "assistant")) {
            if (t->answer_trim) {
                sb_add(b, " ");
                sb_add_stripped(b, m[i].content);
            } else {
                sb_add(b, m[i].content);
            }
            sb_add(b, t->eos);
        } else {
            return eng_fail(err, ENG_EINPUT,
                            "chat: the Mistral template supports a system message only first "
                            "(message %zu)", i);
        }
    }
    return ENG_OK;
}

static int render_mistral_v7(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                             sbuf *b, eng_err *err)
{
    (void)flags; (void)err;
    sb_add(b, t->bos);
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "user")) {
            sb_add(b, "[INST] ");
            sb_add(b, m[i].content);
            sb_add(b, "[/INST]");
        } else if (role_is(&m[i], "system")) {
            sb_add(b, "[SYSTEM_PROMPT] ");
            sb_add(b, m[i].content);
            sb_add(b, "[/SYSTEM_PROMPT]");
        } else {
            sb_add(b, " ");
            sb_add(b, m[i].content);
            sb_add(b, t->eos);
        }
    }
    return ENG_OK;
}

static int render_zephyr(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                         sbuf *b, eng_err *err)
{
    (void)err;
    for (size_t i = 0; i < n; i++) {
        sb_add(b, "<|");
        sb_add(b, m[i].role);
        sb_add(b, "|>\n");
        sb_add(b, m[i].content);
        sb_add(b, t->eos);
        sb_add(b, "\n");
        if (i == n - 1 && (flags & CHAT_GEN_PROMPT)) sb_add(b, "<|assistant|>\n");
    }
    return ENG_OK;
}

static int render_phi3(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                       sbuf *b, eng_err *err)
{
    (void)err;
    for (size_t i = 0; i < n; i++) {
        if (t->skip_empty_system && role_is(&m[i], "system") && !m[i].content[0]) continue;
        sb_add(b, "<|");
        sb_add(b, m[i].role);
        sb_add(b, "|>\n");
        sb_add(b, m[i].content);
        sb_add(b, "<|end|>\n");
    }
    sb_add(b, (flags & CHAT_GEN_PROMPT) ? "<|assistant|>\n" : t->eos);
    return ENG_OK;
}

static int render_gemma(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                        sbuf *b, eng_err *err)
{
    sb_add(b, t->bos);
    if (n > 0 && role_is(&m[0], "system"))
        return eng_fail(err, ENG_EINPUT, "chat: the Gemma template does not support a system role");
    for (size_t i = 0; i < n; i++) {
        if (role_is(&m[i], "user") != (i % 2 == 0)) return alternation_error(err, "Gemma", i);
        sb_add(b, "<start_of_turn>");
        sb_add(b, role_is(&m[i], "assistant") ? "model" : m[i].role);
        sb_add(b, "\n");
        sb_add_stripped(b, m[i].content);
        sb_add(b, "<end_of_turn>\n");
    }
    if (flags & CHAT_GEN_PROMPT) sb_add(b, "<start_of_turn>model\n");
    return ENG_OK;
}

/* Gemma 3: a first system message becomes a prefix of the first turn. */
static int render_gemma3(const chat_template *t, const chat_msg *m, size_t n, unsigned flags,
                         sbuf *b, eng_err *err)
{
    const char *sys = NULL;
    size_t first = 0;
    if (n > 0 && role_is(&m[0], "system")) { sys = m[0].content; first = 1; }
    sb_add(b, t->bos);
    for (size_t i = first; i < n; i++) {
        if (role_is(&m[i], "user") != ((i - first) % 2 == 0))
            return alternation_error(err, "Gemma 3", i);
        sb_add(b, "<start_of_turn>");
        sb_add(b, role_is(&m[i], "assistant") ? "model" : m[i].role);
        sb_add(b, "\n");
        if (i == first && sys) {
            sb_add(b, sys);
            sb_add(b, "\n\n");
        }
        sb_add_stripped(b, m[i].content);
        sb_add(b, "<end_of_turn>\n");
    }
    if (flags & CHAT_GEN_PROMPT) sb_add(b, "<start_of_turn>model\n");
    return ENG_OK;
}

typedef int (*render_fn)(const chat_template *, const chat_msg *, size_t, unsigned, sbuf *,
                         eng_err *);

static const render_fn renderers[] = {
    [FAM_NONE] = NULL,            [FAM_CHATML] = render_chatml,   [FAM_QWEN3] = render_qwen3,
    [FAM_LLAMA3] = render_llama3, [FAM_LLAMA31] = render_llama31, [FAM_LLAMA2] = render_llama2,
    [FAM_MISTRAL] = render_mistral, [FAM_MISTRAL_V3] = render_mistral_v3,
    [FAM_MISTRAL_V7] = render_mistral_v7, [FAM_ZEPHYR] = render_zephyr, [FAM_PHI3] = render_phi3,
    [FAM_GEMMA] = render_gemma,   [FAM_GEMMA3] = render_gemma3,
};

int chat_render(const chat_template *t, const chat_msg *msgs, size_t n, unsigned flags,
                char **out, eng_err *err)
{
    *out = NULL;
    if (t->fam == FAM_NONE)
        return eng_fail(err, ENG_EINPUT, "chat: %s",
                        t->warning ? t->warning : "no chat template: use plain completion");
    int rc = check_msgs(msgs, n, err);
    if (rc != ENG_OK) return rc;
    sbuf b = {0};
    sb_add(&b, "");   /* an empty conversation still gives a string */
    rc = renderers[t->fam](t, msgs, n, flags, &b, err);
    if (rc == ENG_OK && b.oom) rc = eng_fail(err, ENG_ENOMEM, "chat: out of memory");
    if (rc != ENG_OK) {
        eng_free(b.p);
        return rc;
    }
    *out = b.p;
    return ENG_OK;
}
