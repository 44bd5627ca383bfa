/* tokenizer.c - Hugging Face tokenizer.json in C: added-token matching,
 * normalizers, pre-tokenizers, BPE (byte-level and SentencePiece-style with
 * byte fallback), post-processors and decoders, each with the semantics of
 * the Rust `tokenizers` crate so that ids and decoded text are identical. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>
#include <cjson/cJSON.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tokenizer.h"

/* The pipeline, as HF runs it for encode(text):
 *
 *   text --added tokens (normalized:false)--> pieces | added ids
 *   piece --normalizer--> --added tokens (normalized:true)--> --pre-tokenizer--> words
 *   word --BPE (ignore_merges, cache, merges by rank, byte fallback / unk)--> ids
 *   ids --post-processor (add_special)--> ids
 *
 * and for decode(ids): ids -> token strings (added content or vocab string)
 * -> decoder chain on the list of strings -> concatenation. */

/* ======================================================================
 * Growable buffers
 * ====================================================================== */

typedef struct { char *p; size_t n, cap; } sbuf;   /* bytes, kept NUL-terminated */
typedef struct { int *p; size_t n, cap; } ibuf;

static int sb_reserve(sbuf *b, size_t extra)
{
    if (b->n + extra + 1 <= b->cap) return ENG_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = eng_realloc(b->p, cap);
    if (!p) return ENG_ENOMEM;
    b->p = p;
    b->cap = cap;
    return ENG_OK;
}

static int sb_add(sbuf *b, const void *s, size_t n)
{
    if (sb_reserve(b, n)) return ENG_ENOMEM;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return ENG_OK;
}

static int sb_addc(sbuf *b, char c) { return sb_add(b, &c, 1); }

static void sb_free(sbuf *b) { eng_free(b->p); b->p = NULL; b->n = b->cap = 0; }

static int ib_reserve(ibuf *b, size_t extra)
{
    if (b->n + extra <= b->cap) return ENG_OK;
    size_t cap = b->cap ? b->cap : 32;
    while (cap < b->n + extra) cap *= 2;
    int *p = eng_realloc(b->p, cap * sizeof *p);
    if (!p) return ENG_ENOMEM;
    b->p = p;
    b->cap = cap;
    return ENG_OK;
}

static int ib_push(ibuf *b, int v)
{
    if (b->n == b->cap && ib_reserve(b, 1)) return ENG_ENOMEM;
    b->p[b->n++] = v;
    return ENG_OK;
}

/* A list of strings sharing one byte buffer: pieces of text being split, or
 * token strings going through the decoder chain. */
typedef struct {
    sbuf text;
    size_t *off, *len;
    unsigned char *first;   /* piece starts at offset 0 of the original text */
    size_t n, cap;
} slist;

static int sl_push(slist *l, const char *s, size_t n, bool first)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        size_t *o = eng_realloc(l->off, cap * sizeof *o);
        if (!o) return ENG_ENOMEM;
        l->off = o;
        size_t *ln = eng_realloc(l->len, cap * sizeof *ln);
        if (!ln) return ENG_ENOMEM;
        l->len = ln;
        unsigned char *f = eng_realloc(l->first, cap);
        if (!f) return ENG_ENOMEM;
        l->first = f;
        l->cap = cap;
    }
    size_t at = l->text.n;
    if (sb_add(&l->text, s, n)) return ENG_ENOMEM;
    l->off[l->n] = at;
    l->len[l->n] = n;
    l->first[l->n] = first;
    l->n++;
    return ENG_OK;
}

/* Appends bytes to the last string of the list (which must be the last
 * one written to the buffer). */
static int sl_append_last(slist *l, const char *s, size_t n)
{
    if (sb_add(&l->text, s, n)) return ENG_ENOMEM;
    l->len[l->n - 1] += n;
    return ENG_OK;
}

static const char *sl_str(const slist *l, size_t i) { return l->text.p + l->off[i]; }
static void sl_clear(slist *l) { l->n = 0; l->text.n = 0; if (l->text.p) l->text.p[0] = 0; }

static void sl_free(slist *l)
{
    sb_free(&l->text);
    eng_free(l->off);
    eng_free(l->len);
    eng_free(l->first);
    memset(l, 0, sizeof *l);
}

static void sl_swap(slist *a, slist *b) { slist t = *a; *a = *b; *b = t; }

/* ======================================================================
 * UTF-8
 * ====================================================================== */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when the
 * bytes there are not valid UTF-8 (overlongs, surrogates, > U+10FFFF). */
static size_t u8_valid_len(const unsigned char *s, size_t n, int32_t *cp)
{
    unsigned c = s[0];
    if (c < 0x80) { if (cp) *cp = (int32_t)c; return 1; }
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    int32_t v;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; v = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3; v = c & 0x0F;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4; v = c & 0x07;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        unsigned b = s[i];
        if (b < lo || b > hi) return 0;
        lo = 0x80; hi = 0xBF;
        v = (v << 6) | (int32_t)(b & 0x3F);
    }
    if (cp) *cp = v;
    return len;
}

static bool u8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) { i++; continue; }
        size_t l = u8_valid_len(u + i, n - i, NULL);
        if (!l) return false;
        i += l;
    }
    return true;
}

/* Decodes one code point of valid UTF-8; returns its length. */
static size_t u8_next(const char *s, size_t n, int32_t *cp)
{
    size_t l = u8_valid_len((const unsigned char *)s, n, cp);
    if (!l) { *cp = 0xFFFD; return 1; }
    return l;
}

static size_t u8_encode(int32_t cp, char *out)
{
    return (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out);
}

/* Appends bytes to out, replacing each maximal invalid subsequence with
 * U+FFFD, exactly like Rust's String::from_utf8_lossy. */
static int u8_lossy_append(sbuf *out, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, run = 0;
    while (i < n) {
        size_t l = u[i] < 0x80 ? 1 : u8_valid_len(u + i, n - i, NULL);
        if (l) { i += l; continue; }
        if (sb_add(out, s + run, i - run)) return ENG_ENOMEM;
        /* the maximal subpart: how many bytes of a valid prefix there are */
        unsigned c = u[i];
        size_t need = 0;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c >= 0xE0 && c <= 0xEF) { need = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
        else if (c >= 0xF0 && c <= 0xF4) { need = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
        size_t k = 1;
        while (k <= need && i + k < n && u[i + k] >= lo && u[i + k] <= hi) { k++; lo = 0x80; hi = 0xBF; }
        if (sb_add(out, "\xEF\xBF\xBD", 3)) return ENG_ENOMEM;
        i += k;
        run = i;
    }
    return sb_add(out, s + run, n - run);
}

/* Rust char::is_whitespace (the White_Space property). */
static bool cp_is_space(int32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Rust char::is_numeric: general categories Nd, Nl, No. */
static bool cp_is_numeric(int32_t c)
{
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

/* A "word" character for single_word added tokens: HF tests the neighbours
 * with the regex crate's Unicode \w = Alphabetic, marks, Nd, Pc and the join
 * controls. Alphabetic is taken as letters, Nl and the circled letters (its
 * other members are marks, counted anyway). */
static bool cp_is_word(int32_t c)
{
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
        return true;
    default:
        return c == 0x200C || c == 0x200D || (c >= 0x24B6 && c <= 0x24E9);
    }
}

/* ======================================================================
 * Hashing and maps
 * ====================================================================== */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ (n * 0x9E3779B97F4A7C15ull);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

static uint64_t hash_u64(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* String -> id map over strings owned elsewhere (the tokenizer's arena). */
typedef struct {
    struct vslot { int32_t id; uint32_t tag; } *slot;   /* id -1: empty; tag: high hash bits */
    size_t mask;
} strmap;

typedef struct tokenizer tokenizer_t;

/* ======================================================================
 * Components
 * ====================================================================== */

typedef struct {
    pcre2_code *re;          /* literal strings compiled with PCRE2_LITERAL */
    char *literal;           /* the String pattern (NULL for a regex) */
    size_t literal_len;
    pcre2_general_context *gctx;   /* for match data made on the fly */
} pattern_t;

typedef enum { NRM_SEQ, NRM_NFC, NRM_NFD, NRM_NFKC, NRM_NFKD, NRM_LOWER, NRM_PREPEND,
               NRM_REPLACE, NRM_STRIP } nrm_kind;

typedef struct nrm {
    nrm_kind kind;
    struct nrm *sub;         /* NRM_SEQ */
    int n_sub;
    char *str;               /* NRM_PREPEND: prepend; NRM_REPLACE: content */
    size_t str_len;
    pattern_t pat;           /* NRM_REPLACE */
    bool left, right;        /* NRM_STRIP */
} nrm_t;

typedef enum { SPL_REMOVED, SPL_ISOLATED, SPL_MERGED_PREV, SPL_MERGED_NEXT, SPL_CONTIGUOUS } spl_behavior;

typedef enum { PRE_SEQ, PRE_SPLIT, PRE_BYTELEVEL, PRE_METASPACE, PRE_DIGITS, PRE_WSSPLIT } pre_kind;
typedef enum { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER } prepend_scheme;

typedef struct pre {
    pre_kind kind;
    struct pre *sub;         /* PRE_SEQ */
    int n_sub;
    pattern_t pat;           /* PRE_SPLIT, PRE_BYTELEVEL with use_regex */
    spl_behavior behavior;
    bool invert;
    bool add_prefix_space;   /* PRE_BYTELEVEL */
    bool use_regex;
    int32_t replacement;     /* PRE_METASPACE */
    prepend_scheme scheme;
    bool split;
    bool individual_digits;  /* PRE_DIGITS */
} pre_t;

typedef enum { DEC_SEQ, DEC_BYTELEVEL, DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP,
               DEC_METASPACE } dec_kind;

typedef struct dec {
    dec_kind kind;
    struct dec *sub;
    int n_sub;
    pattern_t pat;           /* DEC_REPLACE */
    char *str;               /* DEC_REPLACE content */
    size_t str_len;
    int32_t content;         /* DEC_STRIP: the char; DEC_METASPACE: replacement */
    int start, stop;         /* DEC_STRIP */
    prepend_scheme scheme;   /* DEC_METASPACE */
} dec_t;

/* TemplateProcessing "single": a list of pieces, each the sequence itself or
 * the ids of a special token. */
typedef struct {
    bool is_seq;
    int *ids;
    int n_ids;
} tpl_item;

typedef struct {
    char *content;
    size_t len;
    int id;
    bool single_word, lstrip, rstrip, normalized, special;
} added_t;

/* Leftmost-longest matcher over added-token contents: the candidates for
 * each first byte, longest first, so the first that matches is the longest. */
typedef struct {
    int *order;              /* indices into added[] */
    int start[257];          /* order[start[b] .. start[b+1]) begin with byte b */
    int n;
    char **content;          /* [n_added] the string matched (normalized or raw) */
    size_t *len;
} matcher_t;

typedef struct level level_t;

struct tokenizer {
    /* vocabulary: id -> model token string and/or added token */
    sbuf arena;              /* model token strings, NUL-separated */
    size_t *tok_off;         /* [n_ids] offset into arena, SIZE_MAX when absent */
    uint32_t *tok_len;
    int n_ids;
    strmap vocab;            /* model vocab string -> id */
    int *added_of;           /* [n_ids] index into added[] or -1 */
    unsigned char *special;  /* [n_ids] */

    added_t *added;
    int n_added;
    matcher_t m_raw;         /* added tokens with normalized:false, on the raw text */
    matcher_t m_norm;        /* normalized:true, their normalized contents on normalized text */

    /* BPE */
    uint64_t *merge_key;     /* open addressing: (left << 32 | right) + 1, 0 empty */
    uint64_t *merge_val;     /* rank << 32 | new id */
    size_t merge_mask;
    int unk_id;              /* -1 */
    bool fuse_unk, byte_fallback, ignore_merges;
    bool meta_cut;           /* words may be cut before each "x▁" (see word_cuts) */
    int byte_id[256];        /* <0xNN> ids for byte fallback, -1 */

    nrm_t *normalizer;       /* NULL: none */
    pre_t *pre;
    const pre_t **pre_flat;  /* the leaves of pre, in order */
    int n_pre;
    level_t *lv;             /* [n_pre] scratch per level */
    dec_t *decoder;
    bool has_template;
    tpl_item *tpl;
    int n_tpl;
    bool byte_level_decode;  /* for labels */

    int bos_id, eos_id;
    bool add_bos, add_eos;

    /* per-word cache (encode only) */
    struct centry *cache;    /* open addressing, hash 0 = empty */
    size_t cache_mask, cache_used;
    sbuf cache_keys;
    ibuf cache_ids;

    /* scratch reused across encodes */
    pcre2_match_data *md;
    pcre2_general_context *gctx;
    pcre2_compile_context *cctx;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
};

struct tok_stream {
    const tokenizer_t *t;
    bool skip_special;
    ibuf ids;
    sbuf prefix;
    size_t prefix_index;
    sbuf out;
};

/* ======================================================================
 * Patterns (String or Regex, as tokenizer.json writes them)
 * ====================================================================== */

static void *pc_malloc(PCRE2_SIZE n, void *data) { (void)data; return eng_malloc(n); }
static void pc_free(void *p, void *data) { (void)data; eng_free(p); }

/* Finds the first match of p in s[from..n). Returns 1 and the span, 0 when
 * there is none, -2 when PCRE2 ran out of memory and -1 on another match
 * failure (err filled in both cases). */
static int pat_find(const pattern_t *p, pcre2_match_data *md, pcre2_match_context *mctx,
                    const char *s, size_t n, size_t from, size_t *ms, size_t *me, eng_err *err)
{
    if (p->literal) {
        if (p->literal_len == 0 || from > n) return 0;
        const char *hit = memmem(s + from, n - from, p->literal, p->literal_len);
        if (!hit) return 0;
        *ms = (size_t)(hit - s);
        *me = *ms + p->literal_len;
        return 1;
    }
    int rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc == PCRE2_ERROR_NOMEMORY) { eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory"); return -2; }
    if (rc < 0) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(rc, msg, sizeof msg);
        eng_fail(err, ENG_ERANGE, "tokenizer: regex match failed: %s", (const char *)msg);
        return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    *ms = ov[0];
    *me = ov[1];
    return 1;
}

/* ======================================================================
 * Normalizers
 * ====================================================================== */

static bool all_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) if ((unsigned char)s[i] >= 0x80) return false;
    return true;
}

static int nrm_unicode(const char *s, size_t n, utf8proc_option_t opt, sbuf *out)
{
    if (all_ascii(s, n)) return sb_add(out, s, n);
    utf8proc_ssize_t cap = (utf8proc_ssize_t)n + 16;
    int32_t *buf = NULL;
    for (;;) {
        eng_free(buf);
        buf = eng_malloc((size_t)cap * sizeof *buf);
        if (!buf) return ENG_ENOMEM;
        utf8proc_ssize_t r = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n,
                                                buf, cap, opt);
        if (r < 0) { eng_free(buf); return ENG_EINPUT; }
        if (r <= cap) { cap = r; break; }
        cap = r;
    }
    utf8proc_ssize_t len = utf8proc_reencode(buf, cap, opt);
    int rc = len < 0 ? ENG_EINPUT : sb_add(out, (const char *)buf, (size_t)len);
    eng_free(buf);
    return rc;
}

/* The most bytes normalizing n bytes may give: real normalizers grow text a
 * few times at most (NFKD of U+FDFA: 3 -> 33 bytes; Replace " " by "\u2581":
 * 1 -> 3), while a chain of Replace steps whose content holds the pattern
 * grows it exponentially (fuzz_tokenizer_load found a file whose Prepend and
 * three such steps grow the 5-byte added token "<unk>" to 1.2 KB, 568 KB,
 * 93 MB and 5.6 GB). */
#define NRM_GROWTH 64
#define NRM_SLACK  ((size_t)64 << 10)

static size_t nrm_cap(size_t n)
{
    return n > (SIZE_MAX - NRM_SLACK) / NRM_GROWTH ? SIZE_MAX : n * NRM_GROWTH + NRM_SLACK;
}

static int nrm_too_long(size_t cap, eng_err *err)
{
    return eng_fail(err, ENG_EINPUT, "tokenizer: the normalizer makes the text longer than %zu bytes "
                    "(%d times the input + 64 KiB)", cap, NRM_GROWTH);
}

/* Applies one normalizer: in -> out (out is cleared first). An output over
 * cap bytes (nrm_cap of the text first given) is ENG_EINPUT. */
static int nrm_apply(const nrm_t *nm, pcre2_match_data *md, pcre2_match_context *mctx,
                     const char *s, size_t n, size_t cap, sbuf *out, eng_err *err)
{
    out->n = 0;
    int rc = ENG_OK;
    switch (nm->kind) {
    case NRM_SEQ: {
        sbuf a = {0}, b = {0};
        rc = sb_add(&a, s, n);
        for (int i = 0; rc == ENG_OK && i < nm->n_sub; i++) {
            rc = nrm_apply(&nm->sub[i], md, mctx, a.p, a.n, cap, &b, err);
            sbuf t = a; a = b; b = t;
        }
        if (rc == ENG_OK) rc = sb_add(out, a.p, a.n);
        sb_free(&a);
        sb_free(&b);
        return rc;
    }
    case NRM_NFC:  rc = nrm_unicode(s, n, UTF8PROC_STABLE | UTF8PROC_COMPOSE, out); break;
    case NRM_NFD:  rc = nrm_unicode(s, n, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE, out); break;
    case NRM_NFKC: rc = nrm_unicode(s, n, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT, out); break;
    case NRM_NFKD: rc = nrm_unicode(s, n, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT, out); break;
    case NRM_LOWER:
        for (size_t i = 0; i < n;) {
            int32_t c;
            i += u8_next(s + i, n - i, &c);
            char tmp[8];
            if (c == 0x130) { if (sb_add(out, "i\xCC\x87", 3)) return ENG_ENOMEM; continue; }
            size_t l = u8_encode(utf8proc_tolower(c), tmp);
            if (sb_add(out, tmp, l)) return ENG_ENOMEM;
        }
        rc = ENG_OK;
        break;
    case NRM_PREPEND:
        if (n && sb_add(out, nm->str, nm->str_len)) return ENG_ENOMEM;
        rc = sb_add(out, s, n);
        break;
    case NRM_REPLACE: {
        size_t pos = 0, from = 0, ms, me;
        for (;;) {
            int f = pat_find(&nm->pat, md, mctx, s, n, from, &ms, &me, err);
            if (f < 0) return f == -2 ? ENG_ENOMEM : ENG_ERANGE;
            if (f == 0) break;
            if (me == ms) {   /* an empty match replaces nothing; step over one char */
                int32_t c;
                if (ms >= n) break;
                from = ms + u8_next(s + ms, n - ms, &c);
                continue;
            }
            if (sb_add(out, s + pos, ms - pos) || sb_add(out, nm->str, nm->str_len)) return ENG_ENOMEM;
            if (out->n > cap) return nrm_too_long(cap, err);   /* before it grows further */
            pos = from = me;
        }
        rc = sb_add(out, s + pos, n - pos);
        break;
    }
    case NRM_STRIP: {
        size_t a = 0, b = n;
        int32_t c;
        if (nm->left)
            while (a < b) { size_t l = u8_next(s + a, b - a, &c); if (!cp_is_space(c)) break; a += l; }
        if (nm->right)
            while (b > a) {
                size_t k = b - 1;
                while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
                u8_next(s + k, b - k, &c);
                if (!cp_is_space(c)) break;
                b = k;
            }
        return sb_add(out, s + a, b - a);
    }
    }
    if (rc == ENG_OK && out->n > cap) return nrm_too_long(cap, err);
    return rc;
}

/* ======================================================================
 * Pre-tokenizers: each maps a list of pieces to a finer list
 * ====================================================================== */

typedef struct { size_t a, b; bool m; } seg_t;
typedef struct { seg_t *p; size_t n, cap; } segs_t;

static int seg_push(segs_t *v, size_t a, size_t b, bool m)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 32;
        seg_t *p = eng_realloc(v->p, cap * sizeof *p);
        if (!p) return ENG_ENOMEM;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = (seg_t){a, b, m};
    return ENG_OK;
}

/* HF's SplitDelimiterBehavior over (span, is_match) segments covering the
 * piece, then the non-empty spans are pushed to out. */
static int split_emit(segs_t *sg, spl_behavior bh, bool invert, const char *s, bool first, slist *out)
{
    if (invert) for (size_t i = 0; i < sg->n; i++) sg->p[i].m = !sg->p[i].m;
    size_t k = 0;   /* segments kept, rewritten in place as plain spans */
    switch (bh) {
    case SPL_ISOLATED:
        k = sg->n;
        break;
    case SPL_REMOVED:
        for (size_t i = 0; i < sg->n; i++) if (!sg->p[i].m) sg->p[k++] = sg->p[i];
        break;
    case SPL_MERGED_PREV: {
        bool prev = false;
        for (size_t i = 0; i < sg->n; i++) {
            seg_t g = sg->p[i];
            if (g.m && !prev && k > 0) sg->p[k - 1].b = g.b;
            else sg->p[k++] = g;
            prev = g.m;
        }
        break;
    }
    case SPL_MERGED_NEXT: {
        /* fold from the right: a match joins the piece after it */
        bool prev = false;
        size_t w = sg->n;   /* write downwards from the end */
        for (size_t i = sg->n; i-- > 0;) {
            seg_t g = sg->p[i];
            if (g.m && !prev && w < sg->n) sg->p[w].a = g.a;
            else sg->p[--w] = g;
            prev = g.m;
        }
        k = sg->n - w;
        memmove(sg->p, sg->p + w, k * sizeof *sg->p);
        break;
    }
    case SPL_CONTIGUOUS: {
        bool prev = false;
        for (size_t i = 0; i < sg->n; i++) {
            seg_t g = sg->p[i];
            if (g.m == prev && k > 0) sg->p[k - 1].b = g.b;
            else sg->p[k++] = g;
            prev = g.m;
        }
        break;
    }
    }
    for (size_t i = 0; i < k; i++) {
        seg_t g = sg->p[i];
        if (g.b > g.a && sl_push(out, s + g.a, g.b - g.a, first && g.a == 0)) return ENG_ENOMEM;
    }
    return ENG_OK;
}

/* Segments from a pattern's matches (HF Pattern::find_matches). */
static int segs_from_pattern(const pattern_t *p, pcre2_match_data *md, pcre2_match_context *mctx,
                             const char *s, size_t n, segs_t *sg, eng_err *err)
{
    sg->n = 0;
    if (n == 0) return seg_push(sg, 0, 0, false);
    size_t prev = 0, from = 0, ms, me;
    while (from <= n) {
        int f = pat_find(p, md, mctx, s, n, from, &ms, &me, err);
        if (f < 0) return f == -2 ? ENG_ENOMEM : ENG_ERANGE;
        if (f == 0) break;
        if (me == ms) {
            int32_t c;
            if (ms >= n) break;
            from = ms + u8_next(s + ms, n - ms, &c);
            continue;
        }
        if (prev != ms && seg_push(sg, prev, ms, false)) return ENG_ENOMEM;
        if (seg_push(sg, ms, me, true)) return ENG_ENOMEM;
        prev = from = me;
    }
    if (prev != n && seg_push(sg, prev, n, false)) return ENG_ENOMEM;
    return ENG_OK;
}

/* Segments from a character predicate: every matching char is one match. */
static int segs_from_pred(bool (*pred)(int32_t), const char *s, size_t n, segs_t *sg)
{
    sg->n = 0;
    if (n == 0) return seg_push(sg, 0, 0, false);
    size_t prev = 0;
    for (size_t i = 0; i < n;) {
        int32_t c;
        size_t l = u8_next(s + i, n - i, &c);
        if (pred(c)) {
            if (prev != i && seg_push(sg, prev, i, false)) return ENG_ENOMEM;
            if (seg_push(sg, i, i + l, true)) return ENG_ENOMEM;
            prev = i + l;
        }
        i += l;
    }
    if (prev != n && seg_push(sg, prev, n, false)) return ENG_ENOMEM;
    return ENG_OK;
}


/* GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to
 * U+0100 onwards in byte order. */
static char bl_enc[256][3];
static unsigned char bl_enc_len[256];
static int16_t bl_dec[0x144];   /* code point -> byte, -1 */
static bool bl_ready;

static void bl_init(void)
{
    if (bl_ready) return;
    for (int i = 0; i < 0x144; i++) bl_dec[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        int32_t cp = keep ? b : 256 + extra++;
        bl_enc_len[b] = (unsigned char)u8_encode(cp, bl_enc[b]);
        bl_dec[cp] = (int16_t)b;
    }
    bl_ready = true;
}

static int bytelevel_map(const char *s, size_t n, sbuf *out)
{
    if (sb_reserve(out, 2 * n)) return ENG_ENOMEM;
    char *o = out->p + out->n;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        o[0] = bl_enc[b][0];   /* every mapped character is 1 or 2 bytes of UTF-8 */
        o[1] = bl_enc[b][1];
        o += bl_enc_len[b];
    }
    out->n = (size_t)(o - out->p);
    out->p[out->n] = 0;
    return ENG_OK;
}

/* Scratch for one level of the (flattened) pre-tokenizer chain. */
struct level {
    segs_t sg;
    sbuf tmp, tmp2;
    slist out;
};

/* ======================================================================
 * BPE
 * ====================================================================== */

static int vocab_get(const tokenizer_t *t, const char *s, size_t n)
{
    uint64_t h = hash_bytes(s, n);
    uint32_t tag = (uint32_t)(h >> 32);
    size_t i = h & t->vocab.mask;
    for (;;) {
        struct vslot v = t->vocab.slot[i];
        if (v.id < 0) return -1;
        if (v.tag == tag && t->tok_len[v.id] == n && memcmp(t->arena.p + t->tok_off[v.id], s, n) == 0)
            return v.id;
        i = (i + 1) & t->vocab.mask;
    }
}

/* (rank, new id) of merging left and right, or false. */
static bool merge_get(const tokenizer_t *t, int left, int right, uint32_t *rank, int *new_id)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    size_t i = hash_u64(key) & t->merge_mask;
    for (;;) {
        uint64_t k = t->merge_key[i];
        if (k == 0) return false;
        if (k == key) {
            *rank = (uint32_t)(t->merge_val[i] >> 32);
            *new_id = (int)(uint32_t)t->merge_val[i];
            return true;
        }
        i = (i + 1) & t->merge_mask;
    }
}

typedef struct { int c; int prev, next; uint32_t len; } sym_t;   /* len: bytes, 0 = merged away */
typedef struct { uint32_t rank; uint32_t pos; int new_id; } cand_t;

static bool cand_less(cand_t a, cand_t b) { return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos; }

typedef struct { cand_t *p; size_t n, cap; } heap_t;

static int heap_push(heap_t *hp, cand_t c)
{
    if (hp->n == hp->cap) {
        size_t cap = hp->cap ? hp->cap * 2 : 16;
        cand_t *p = eng_realloc(hp->p, cap * sizeof *p);
        if (!p) return ENG_ENOMEM;
        hp->p = p;
        hp->cap = cap;
    }
    cand_t *h = hp->p;
    size_t i = hp->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!cand_less(c, h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
    return ENG_OK;
}

static cand_t heap_pop(cand_t *h, size_t *n)
{
    cand_t top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        cand_t best = last;
        if (l < *n && cand_less(h[l], best)) { m = l; best = h[l]; }
        if (r < *n && cand_less(h[r], best)) { m = r; }
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    if (*n) h[i] = last;
    return top;
}

/* The BPE of one pre-token (HF BPE::merge_word then Word::merge_all): chars
 * to ids (byte fallback, unk), then merges by rank, lowest first, ties to the
 * left, with a heap over candidate pairs and a linked list of symbols. */
static int bpe_word(const tokenizer_t *t, const char *w, size_t n, ibuf *out)
{
    if (n == 0) return ENG_OK;
    if (n > UINT32_MAX / 2) return ENG_ERANGE;
    sym_t *sy = eng_malloc(n * sizeof *sy);             /* at most one symbol per byte */
    heap_t heap = {0};
    if (!sy) return ENG_ENOMEM;
    int ns = 0;
    int unk_id = -1;
    size_t unk_len = 0;
#define ADD_SYM(id_, len_) do { sy[ns] = (sym_t){(id_), ns - 1, ns + 1, (uint32_t)(len_)}; ns++; } while (0)
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t l = u8_next(w + i, n - i, &cp);
        int id = vocab_get(t, w + i, l);
        if (id >= 0) {
            if (unk_id >= 0) { ADD_SYM(unk_id, unk_len); unk_id = -1; }
            ADD_SYM(id, l);
        } else {
            bool done = false;
            if (t->byte_fallback) {
                bool all = true;
                for (size_t k = 0; k < l; k++) if (t->byte_id[(unsigned char)w[i + k]] < 0) all = false;
                if (all) {
                    for (size_t k = 0; k < l; k++) ADD_SYM(t->byte_id[(unsigned char)w[i + k]], 1);
                    done = true;
                }
            }
            if (!done && t->unk_id >= 0) {
                if (unk_id >= 0 && t->fuse_unk) unk_len += l;
                else {
                    if (unk_id >= 0) ADD_SYM(unk_id, unk_len);
                    unk_id = t->unk_id;
                    unk_len = l;
                }
            }
        }
        i += l;
    }
    if (unk_id >= 0) ADD_SYM(unk_id, unk_len);
#undef ADD_SYM
    if (ns > 0) sy[ns - 1].next = -1;

    int rc = ENG_OK;
    for (int i = 0; rc == ENG_OK && i + 1 < ns; i++) {
        uint32_t rank; int nid;
        if (merge_get(t, sy[i].c, sy[i + 1].c, &rank, &nid))
            rc = heap_push(&heap, (cand_t){rank, (uint32_t)i, nid});
    }
    while (rc == ENG_OK && heap.n) {
        cand_t top = heap_pop(heap.p, &heap.n);
        sym_t *cur = &sy[top.pos];
        if (cur->len == 0 || cur->next < 0) continue;
        int nx = cur->next;
        uint32_t rank; int nid;
        if (!merge_get(t, cur->c, sy[nx].c, &rank, &nid) || nid != top.new_id) continue;
        /* merge the right symbol into this one */
        cur->c = top.new_id;
        cur->len += sy[nx].len;
        cur->next = sy[nx].next;
        sy[nx].len = 0;
        if (cur->next >= 0) sy[cur->next].prev = (int)top.pos;
        if (cur->prev >= 0 && merge_get(t, sy[cur->prev].c, cur->c, &rank, &nid))
            rc = heap_push(&heap, (cand_t){rank, (uint32_t)cur->prev, nid});
        if (rc == ENG_OK && cur->next >= 0 && merge_get(t, cur->c, sy[cur->next].c, &rank, &nid))
            rc = heap_push(&heap, (cand_t){rank, top.pos, nid});
    }
    for (int i = 0; i < ns && rc == ENG_OK; i++)
        if (sy[i].len) rc = ib_push(out, sy[i].c);
    eng_free(sy);
    eng_free(heap.p);
    return rc;
}

/* ---- the per-word cache ------------------------------------------------- */

/* One cached word in 32 bytes: short words (most) are compared in place and
 * single-id results stored in place, so a hit touches one cache line. */
struct centry {
    uint64_t hash;           /* 0: empty */
    char key[16];            /* the word when klen <= 16, else its offset in cache_keys */
    uint16_t klen, ilen;
    uint32_t val;            /* the id when ilen == 1, else the offset in cache_ids */
};

#define CACHE_SLOTS   (1u << 16)
#define CACHE_MAX_LEN 256

static void cache_clear(tokenizer_t *t)
{
    if (t->cache) memset(t->cache, 0, (t->cache_mask + 1) * sizeof *t->cache);
    t->cache_used = 0;
    t->cache_keys.n = 0;
    t->cache_ids.n = 0;
}

static bool centry_is(const tokenizer_t *t, const struct centry *e, const char *w, size_t n)
{
    if (e->klen != n) return false;
    if (n <= sizeof e->key) return memcmp(e->key, w, n) == 0;
    uint32_t off;
    memcpy(&off, e->key, sizeof off);
    return memcmp(t->cache_keys.p + off, w, n) == 0;
}

/* Encodes one pre-token: the cache, then ignore_merges, then BPE. The cache
 * sits in front of ignore_merges (HF checks the vocabulary first): both give
 * the same ids for the same word. */
static int encode_word(tokenizer_t *t, const char *w, size_t n, ibuf *out)
{
    bool cacheable = n <= CACHE_MAX_LEN;
    uint64_t h = 0;
    size_t slot = 0;
    if (cacheable) {
        h = hash_bytes(w, n) | 1;
        slot = h & t->cache_mask;
        for (;;) {
            const struct centry *e = &t->cache[slot];
            if (e->hash == 0) break;
            if (e->hash == h && centry_is(t, e, w, n)) {
                if (e->ilen == 0) return ENG_OK;   /* every character unknown, no unk token */
                if (e->ilen == 1) return ib_push(out, (int)e->val);
                if (ib_reserve(out, e->ilen)) return ENG_ENOMEM;
                memcpy(out->p + out->n, t->cache_ids.p + e->val, e->ilen * sizeof(int));
                out->n += e->ilen;
                return ENG_OK;
            }
            slot = (slot + 1) & t->cache_mask;
        }
    }
    size_t before = out->n;
    int id = t->ignore_merges ? vocab_get(t, w, n) : -1;
    int rc = id >= 0 ? ib_push(out, id) : bpe_word(t, w, n, out);
    size_t len = out->n - before;
    if (rc || !cacheable || len > UINT16_MAX) return rc;
    if (t->cache_used + 1 > (t->cache_mask + 1) / 2 || t->cache_keys.n > (1u << 24) || t->cache_ids.n > (1u << 24)) {
        cache_clear(t);
        slot = h & t->cache_mask;   /* the table is empty now */
    }
    struct centry e = { .hash = h, .klen = (uint16_t)n, .ilen = (uint16_t)len };
    /* a failed cache insert is not an error: the word is encoded already */
    if (n <= sizeof e.key) memcpy(e.key, w, n);
    else {
        uint32_t off = (uint32_t)t->cache_keys.n;
        if (sb_add(&t->cache_keys, w, n)) return ENG_OK;
        memcpy(e.key, &off, sizeof off);
    }
    if (len == 1) e.val = (uint32_t)out->p[before];
    else if (len > 1) {
        if (ib_reserve(&t->cache_ids, len)) return ENG_OK;
        e.val = (uint32_t)t->cache_ids.n;
        memcpy(t->cache_ids.p + t->cache_ids.n, out->p + before, len * sizeof(int));
        t->cache_ids.n += len;
    }
    t->cache[slot] = e;
    t->cache_used++;
    return ENG_OK;
}

/* ======================================================================
 * Added tokens: HF AddedVocabulary::find_matches
 * ====================================================================== */

typedef struct { size_t a, b; int added; } span_t;
typedef struct { span_t *p; size_t n, cap; } spans_t;

static int span_push(spans_t *v, size_t a, size_t b, int added)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        span_t *p = eng_realloc(v->p, cap * sizeof *p);
        if (!p) return ENG_ENOMEM;
        v->p = p;
        v->cap = cap;
    }
    v->p[v->n++] = (span_t){a, b, added};
    return ENG_OK;
}

static bool ends_with_word(const char *s, size_t n)
{
    if (n == 0) return false;
    size_t k = n - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    int32_t c;
    u8_next(s + k, n - k, &c);
    return cp_is_word(c);
}

static bool starts_with_word(const char *s, size_t n)
{
    if (n == 0) return false;
    int32_t c;
    u8_next(s, n, &c);
    return cp_is_word(c);
}

/* Splits s into spans that are added tokens (added >= 0) or plain text (-1). */
static int find_added(const tokenizer_t *t, const matcher_t *m, const char *s, size_t n, spans_t *out)
{
    out->n = 0;
    size_t start_offset = 0;
    if (m->n > 0) {
        for (size_t i = 0; i < n;) {
            unsigned char b0 = (unsigned char)s[i];
            int hit = -1;
            for (int k = m->start[b0]; k < m->start[b0 + 1]; k++) {
                int a = m->order[k];
                size_t l = m->len[a];
                if (l <= n - i && memcmp(s + i, m->content[a], l) == 0) { hit = a; break; }
            }
            if (hit < 0) { i++; continue; }
            const added_t *ad = &t->added[hit];
            size_t start = i, stop = i + m->len[hit];
            i = stop;
            if (ad->single_word) {
                bool start_space = start == 0 || !ends_with_word(s, start);
                bool stop_space = stop == n || !starts_with_word(s + stop, n - stop);
                if (!start_space || !stop_space) continue;
            }
            if (ad->lstrip) {
                size_t k = start;
                while (k > 0) {
                    size_t j = k - 1;
                    while (j > 0 && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
                    int32_t c;
                    u8_next(s + j, k - j, &c);
                    if (!cp_is_space(c)) break;
                    k = j;
                }
                start = k > start_offset ? k : start_offset;
            }
            if (ad->rstrip) {
                while (stop < n) {
                    int32_t c;
                    size_t l = u8_next(s + stop, n - stop, &c);
                    if (!cp_is_space(c)) break;
                    stop += l;
                }
                i = stop;
            }
            if (start_offset < start && span_push(out, start_offset, start, -1)) return ENG_ENOMEM;
            if (span_push(out, start, stop, hit)) return ENG_ENOMEM;
            start_offset = stop;
        }
    }
    if (start_offset != n && span_push(out, start_offset, n, -1)) return ENG_ENOMEM;
    return ENG_OK;
}

/* ======================================================================
 * Encode
 * ====================================================================== */

static int pre_piece(tokenizer_t *t, int lvl, const char *s, size_t n, bool first, ibuf *ids, eng_err *err);

/* Hands one piece to the next level; for ByteLevel (map) its bytes are first
 * mapped to GPT-2's printable characters. */
static int pre_next(tokenizer_t *t, int lvl, bool map, const char *s, size_t n, bool first,
                    ibuf *ids, eng_err *err)
{
    if (n == 0) return ENG_OK;
    if (!map) return pre_piece(t, lvl + 1, s, n, first, ids, err);
    level_t *L = &t->lv[lvl];
    L->tmp2.n = 0;
    int rc = bytelevel_map(s, n, &L->tmp2);
    return rc ? rc : pre_piece(t, lvl + 1, L->tmp2.p, L->tmp2.n, first, ids, err);
}

/* Isolated/Removed splits pass each piece on as soon as it is found, so a
 * long text never becomes a long list of pieces. */
static int split_stream(tokenizer_t *t, int lvl, const pattern_t *pat, bool keep_gap, bool keep_match,
                        bool map, const char *s, size_t n, bool first, ibuf *ids, eng_err *err)
{
    size_t prev = 0, from = 0, ms, me;
    int rc = ENG_OK;
    while (rc == ENG_OK && from <= n) {
        int f = pat_find(pat, t->md, t->mctx, s, n, from, &ms, &me, err);
        if (f < 0) return f == -2 ? ENG_ENOMEM : ENG_ERANGE;
        if (f == 0) break;
        if (me == ms) {
            int32_t c;
            if (ms >= n) break;
            from = ms + u8_next(s + ms, n - ms, &c);
            continue;
        }
        if (prev != ms && keep_gap) rc = pre_next(t, lvl, map, s + prev, ms - prev, first && prev == 0, ids, err);
        if (rc == ENG_OK && keep_match) rc = pre_next(t, lvl, map, s + ms, me - ms, first && ms == 0, ids, err);
        prev = from = me;
    }
    if (rc == ENG_OK && prev != n && keep_gap) rc = pre_next(t, lvl, map, s + prev, n - prev, first && prev == 0, ids, err);
    return rc;
}

/* Runs pre-tokenizer lvl of the flattened chain on one piece and passes what
 * it makes on to the next level; past the last level, pieces are words for
 * the BPE. Depth first: the order of words is the order HF's Sequence gives. */
/* SentencePiece-style files have no pre-tokenizer: a whole text is one BPE
 * word. When no vocabulary token contains "▁" after another character, no
 * symbol can ever span such a boundary, so the merges on either side never
 * interact and the word can be cut there (exactly the same ids, and the cuts
 * hit the word cache). */
static int word_cuts(tokenizer_t *t, const char *s, size_t n, ibuf *ids)
{
    size_t start = 0;
    for (size_t i = 1; i + 3 <= n; i++) {
        if (memcmp(s + i, "\xE2\x96\x81", 3) != 0) continue;
        if (i >= 3 && memcmp(s + i - 3, "\xE2\x96\x81", 3) == 0) continue;
        int rc = encode_word(t, s + start, i - start, ids);
        if (rc) return rc;
        start = i;
    }
    return encode_word(t, s + start, n - start, ids);
}

static int pre_piece(tokenizer_t *t, int lvl, const char *s, size_t n, bool first, ibuf *ids, eng_err *err)
{
    if (n == 0) return ENG_OK;
    if (lvl == t->n_pre) return t->meta_cut ? word_cuts(t, s, n, ids) : encode_word(t, s, n, ids);
    const pre_t *pt = t->pre_flat[lvl];
    level_t *L = &t->lv[lvl];
    int rc = ENG_OK;
    sl_clear(&L->out);
    switch (pt->kind) {
    case PRE_SPLIT:
        if (pt->behavior == SPL_ISOLATED || pt->behavior == SPL_REMOVED) {
            bool iso = pt->behavior == SPL_ISOLATED;
            return split_stream(t, lvl, &pt->pat, iso || !pt->invert, iso || pt->invert, false, s, n, first, ids, err);
        }
        rc = segs_from_pattern(&pt->pat, t->md, t->mctx, s, n, &L->sg, err);
        if (rc == ENG_OK) rc = split_emit(&L->sg, pt->behavior, pt->invert, s, first, &L->out);
        break;
    case PRE_DIGITS:
        rc = segs_from_pred(cp_is_numeric, s, n, &L->sg);   /* HF: char::is_numeric */
        if (rc == ENG_OK)
            rc = split_emit(&L->sg, pt->individual_digits ? SPL_ISOLATED : SPL_CONTIGUOUS, false, s, first, &L->out);
        break;
    case PRE_WSSPLIT:
        rc = segs_from_pred(cp_is_space, s, n, &L->sg);
        if (rc == ENG_OK) rc = split_emit(&L->sg, SPL_REMOVED, false, s, first, &L->out);
        break;
    case PRE_BYTELEVEL:
        if (pt->add_prefix_space && s[0] != ' ') {
            L->tmp.n = 0;
            if ((rc = sb_addc(&L->tmp, ' ')) || (rc = sb_add(&L->tmp, s, n))) break;
            s = L->tmp.p;
            n = L->tmp.n;
        }
        if (pt->use_regex) return split_stream(t, lvl, &pt->pat, true, true, true, s, n, first, ids, err);
        return pre_next(t, lvl, true, s, n, first, ids, err);
    case PRE_METASPACE: {
        char rep[8];
        size_t rl = u8_encode(pt->replacement, rep);
        L->tmp.n = 0;
        /* spaces become the replacement first, so a leading space counts */
        bool starts = s[0] == ' ' || (n >= rl && memcmp(s, rep, rl) == 0);
        if ((pt->scheme == PREPEND_ALWAYS || (pt->scheme == PREPEND_FIRST && first)) && !starts)
            rc = sb_add(&L->tmp, rep, rl);
        for (size_t k = 0; rc == ENG_OK && k < n; k++)
            rc = s[k] == ' ' ? sb_add(&L->tmp, rep, rl) : sb_addc(&L->tmp, s[k]);
        if (rc) break;
        if (!pt->split) return pre_piece(t, lvl + 1, L->tmp.p, L->tmp.n, first, ids, err);
        pattern_t lit = { .literal = rep, .literal_len = rl };
        rc = segs_from_pattern(&lit, NULL, NULL, L->tmp.p, L->tmp.n, &L->sg, err);
        if (rc == ENG_OK) rc = split_emit(&L->sg, SPL_MERGED_NEXT, false, L->tmp.p, first, &L->out);
        break;
    }
    case PRE_SEQ:   /* flattened away at load */
        break;
    }
    for (size_t i = 0; rc == ENG_OK && i < L->out.n; i++)
        rc = pre_piece(t, lvl + 1, sl_str(&L->out, i), L->out.len[i], L->out.first[i], ids, err);
    return rc;
}

/* A piece of text between added tokens: normalize, match normalized added
 * tokens, pre-tokenize, BPE. */
static int encode_piece(tokenizer_t *t, const char *s, size_t n, bool first, ibuf *ids, eng_err *err)
{
    if (n == 0) return ENG_OK;
    sbuf norm = {0};
    spans_t sp = {0};
    int rc = ENG_OK;
    if (t->normalizer) {
        rc = nrm_apply(t->normalizer, t->md, t->mctx, s, n, nrm_cap(n), &norm, err);
        if (rc) goto done;
        s = norm.p ? norm.p : "";
        n = norm.n;
    }
    if (t->m_norm.n == 0) {
        rc = pre_piece(t, 0, s, n, first, ids, err);
        goto done;
    }
    rc = find_added(t, &t->m_norm, s, n, &sp);
    for (size_t k = 0; rc == ENG_OK && k < sp.n; k++) {
        span_t g = sp.p[k];
        if (g.added >= 0) rc = ib_push(ids, t->added[g.added].id);
        else rc = pre_piece(t, 0, s + g.a, g.b - g.a, first && g.a == 0, ids, err);
    }
done:
    sb_free(&norm);
    eng_free(sp.p);
    if (rc == ENG_ENOMEM) eng_fail(err, rc, "tokenizer: out of memory");
    return rc;
}

int tok_encode(tokenizer_t *t, const char *text, size_t len, bool add_special,
               int **ids_out, size_t *n_out, eng_err *err)
{
    *ids_out = NULL;
    *n_out = 0;
    if (!text && len) return eng_fail(err, ENG_EINPUT, "tokenizer: NULL text");
    if (!text) text = "";
    if (!u8_valid(text, len)) return eng_fail(err, ENG_EINPUT, "tokenizer: input is not valid UTF-8");
    ibuf ids = {0};
    spans_t sp = {0};
    int rc = find_added(t, &t->m_raw, text, len, &sp);
    for (size_t k = 0; rc == ENG_OK && k < sp.n; k++) {
        span_t g = sp.p[k];
        if (g.added >= 0) rc = ib_push(&ids, t->added[g.added].id);
        else rc = encode_piece(t, text + g.a, g.b - g.a, g.a == 0, &ids, err);
    }
    if (rc == ENG_OK && add_special && t->has_template) {
        ibuf all = {0};
        for (int i = 0; rc == ENG_OK && i < t->n_tpl; i++) {
            const tpl_item *it = &t->tpl[i];
            if (it->is_seq) {
                rc = ib_reserve(&all, ids.n);
                if (rc == ENG_OK && ids.n) { memcpy(all.p + all.n, ids.p, ids.n * sizeof(int)); all.n += ids.n; }
            } else {
                for (int j = 0; rc == ENG_OK && j < it->n_ids; j++) rc = ib_push(&all, it->ids[j]);
            }
        }
        eng_free(ids.p);
        ids = all;
    }
    if (rc == ENG_OK && !ids.p) rc = ib_reserve(&ids, 1);   /* non-NULL even when empty */
    eng_free(sp.p);
    if (rc) {
        eng_free(ids.p);
        if (rc == ENG_ENOMEM) eng_fail(err, rc, "tokenizer: out of memory");
        return rc;
    }
    *ids_out = ids.p;
    *n_out = ids.n;
    return ENG_OK;
}

/* ======================================================================
 * Decode: the decoder chain over token strings
 * ====================================================================== */

static bool parse_byte_token(const char *s, size_t n, unsigned char *b)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return false;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
                c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return false;
        v = v * 16 + d;
    }
    *b = (unsigned char)v;
    return true;
}

static int dec_apply(const dec_t *d, slist *in, slist *out, eng_err *err)
{
    int rc = ENG_OK;
    sl_clear(out);
    switch (d->kind) {
    case DEC_SEQ: {
        slist cur = {0}, nxt = {0};
        for (size_t i = 0; rc == ENG_OK && i < in->n; i++) rc = sl_push(&cur, sl_str(in, i), in->len[i], false);
        for (int k = 0; rc == ENG_OK && k < d->n_sub; k++) {
            rc = dec_apply(&d->sub[k], &cur, &nxt, err);
            sl_swap(&cur, &nxt);
        }
        for (size_t i = 0; rc == ENG_OK && i < cur.n; i++) rc = sl_push(out, sl_str(&cur, i), cur.len[i], false);
        sl_free(&cur);
        sl_free(&nxt);
        return rc;
    }
    case DEC_BYTELEVEL: {
        sbuf bytes = {0};
        for (size_t i = 0; rc == ENG_OK && i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->len[i], start = bytes.n;
            bool ok = true;
            for (size_t k = 0; ok && k < n;) {
                int32_t c;
                k += u8_next(s + k, n - k, &c);
                if (c < 0x144 && bl_dec[c] >= 0) rc = sb_addc(&bytes, (char)bl_dec[c]);
                else ok = false;
                if (rc) break;
            }
            if (!ok) { bytes.n = start; rc = sb_add(&bytes, s, n); }
        }
        sbuf txt = {0};
        if (rc == ENG_OK) rc = u8_lossy_append(&txt, bytes.p ? bytes.p : "", bytes.n);
        if (rc == ENG_OK) rc = sl_push(out, txt.p ? txt.p : "", txt.n, false);
        sb_free(&bytes);
        sb_free(&txt);
        return rc;
    }
    case DEC_REPLACE: {
        sbuf tmp = {0};
        for (size_t i = 0; rc == ENG_OK && i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->len[i], pos = 0, from = 0, ms, me;
            tmp.n = 0;
            pcre2_match_data *md = d->pat.re ? pcre2_match_data_create(16, d->pat.gctx) : NULL;
            if (d->pat.re && !md) { rc = ENG_ENOMEM; break; }
            for (;;) {
                int f = pat_find(&d->pat, md, NULL, s, n, from, &ms, &me, err);
                if (f < 0) { rc = f == -2 ? ENG_ENOMEM : ENG_ERANGE; break; }
                if (f == 0) break;
                if (me == ms) { int32_t c; if (ms >= n) break; from = ms + u8_next(s + ms, n - ms, &c); continue; }
                if (sb_add(&tmp, s + pos, ms - pos) || sb_add(&tmp, d->str, d->str_len)) { rc = ENG_ENOMEM; break; }
                pos = from = me;
            }
            if (md) pcre2_match_data_free(md);
            if (rc == ENG_OK) rc = sb_add(&tmp, s + pos, n - pos);
            if (rc == ENG_OK) rc = sl_push(out, tmp.p, tmp.n, false);
        }
        sb_free(&tmp);
        return rc;
    }
    case DEC_BYTEFALLBACK: {
        sbuf pend = {0};
        for (size_t i = 0; rc == ENG_OK && i <= in->n; i++) {
            unsigned char b;
            if (i < in->n && parse_byte_token(sl_str(in, i), in->len[i], &b)) { rc = sb_addc(&pend, (char)b); continue; }
            if (pend.n) {
                if (u8_valid(pend.p, pend.n)) rc = sl_push(out, pend.p, pend.n, false);
                else for (size_t k = 0; rc == ENG_OK && k < pend.n; k++) rc = sl_push(out, "\xEF\xBF\xBD", 3, false);
                pend.n = 0;
            }
            if (rc == ENG_OK && i < in->n) rc = sl_push(out, sl_str(in, i), in->len[i], false);
        }
        sb_free(&pend);
        return rc;
    }
    case DEC_FUSE:
        rc = sl_push(out, "", 0, false);
        for (size_t i = 0; rc == ENG_OK && i < in->n; i++) rc = sl_append_last(out, sl_str(in, i), in->len[i]);
        return rc;
    case DEC_STRIP:
        for (size_t i = 0; rc == ENG_OK && i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->len[i], a = 0, b = n;
            for (int k = 0; k < d->start && a < n; k++) {
                int32_t c;
                size_t l = u8_next(s + a, n - a, &c);
                if (c != d->content) break;
                a += l;
            }
            for (int k = 0; k < d->stop && b > a; k++) {
                size_t j = b - 1;
                while (j > a && ((unsigned char)s[j] & 0xC0) == 0x80) j--;
                int32_t c;
                u8_next(s + j, b - j, &c);
                if (c != d->content) break;
                b = j;
            }
            rc = sl_push(out, s + a, b - a, false);
        }
        return rc;
    case DEC_METASPACE: {
        sbuf tmp = {0};
        for (size_t i = 0; rc == ENG_OK && i < in->n; i++) {
            const char *s = sl_str(in, i);
            size_t n = in->len[i];
            tmp.n = 0;
            for (size_t k = 0; rc == ENG_OK && k < n;) {
                int32_t c;
                size_t l = u8_next(s + k, n - k, &c);
                if (c == d->content) { if (!(i == 0 && d->scheme != PREPEND_NEVER)) rc = sb_addc(&tmp, ' '); }
                else rc = sb_add(&tmp, s + k, l);
                k += l;
            }
            if (rc == ENG_OK) rc = sl_push(out, tmp.p ? tmp.p : "", tmp.n, false);
        }
        sb_free(&tmp);
        return rc;
    }
    }
    return rc;
}

static const char *token_str(const tokenizer_t *t, int id, size_t *len)
{
    if (id < 0 || id >= t->n_ids) return NULL;
    if (t->added_of[id] >= 0) {
        const added_t *a = &t->added[t->added_of[id]];
        *len = a->len;
        return a->content;
    }
    if (t->tok_off[id] == SIZE_MAX) return NULL;
    *len = t->tok_len[id];
    return t->arena.p + t->tok_off[id];
}

int tok_decode(const tokenizer_t *t, const int *ids, size_t n, bool skip_special,
               char **text, size_t *len, eng_err *err)
{
    *text = NULL;
    if (len) *len = 0;
    slist a = {0}, b = {0};
    sbuf out = {0};
    int rc = ENG_OK;
    for (size_t i = 0; rc == ENG_OK && i < n; i++) {
        size_t l;
        const char *s = token_str(t, ids[i], &l);
        if (!s) continue;
        if (skip_special && t->special[ids[i]]) continue;
        rc = sl_push(&a, s, l, false);
    }
    if (rc == ENG_OK && t->decoder) {
        rc = dec_apply(t->decoder, &a, &b, err);
        for (size_t i = 0; rc == ENG_OK && i < b.n; i++) rc = sb_add(&out, sl_str(&b, i), b.len[i]);
    } else {
        for (size_t i = 0; rc == ENG_OK && i < a.n; i++) {
            if (i && sb_addc(&out, ' ')) rc = ENG_ENOMEM;
            if (rc == ENG_OK) rc = sb_add(&out, sl_str(&a, i), a.len[i]);
        }
    }
    if (rc == ENG_OK && !out.p) rc = sb_reserve(&out, 0);
    sl_free(&a);
    sl_free(&b);
    if (rc) {
        sb_free(&out);
        if (rc == ENG_ENOMEM) eng_fail(err, rc, "tokenizer: out of memory");
        return rc;
    }
    *text = out.p;
    if (len) *len = out.n;
    return ENG_OK;
}

/* ======================================================================
 * Loading tokenizer.json
 *
 *   { "added_tokens": [{"id", "content", "single_word", "lstrip", "rstrip",
 *                       "normalized", "special"}, ...],
 *     "normalizer": null | {"type": ..., ...},
 *     "pre_tokenizer": null | {...}, "post_processor": null | {...},
 *     "decoder": null | {...},
 *     "model": {"type": "BPE", "vocab": {token: id}, "merges": ["a b", ...]
 *               or [["a", "b"], ...], "unk_token", "byte_fallback",
 *               "fuse_unk", "ignore_merges", "dropout", ...} }
 * ====================================================================== */

typedef struct {
    tokenizer_t *t;
    const char *file;        /* name used in messages */
    eng_err *err;
} loader_t;

static int bad(loader_t *L, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(loader_t *L, const char *where, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return eng_fail(L->err, ENG_EINPUT, "%s: %s: %s", L->file, where, what);
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

static bool jbool(const cJSON *o, const char *k, bool def)
{
    const cJSON *v = jget(o, k);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return def;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = jget(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *dup_n(const char *s, size_t n)
{
    char *p = eng_malloc(n + 1);
    if (p) { memcpy(p, s, n); p[n] = 0; }
    return p;
}

static void pat_free(pattern_t *p)
{
    if (p->re) pcre2_code_free(p->re);
    eng_free(p->literal);
    memset(p, 0, sizeof *p);
}

/* HF compiles these regexes with Oniguruma, whose \s is exactly Unicode
 * White_Space; PCRE2's \s also matches U+180E MONGOLIAN VOWEL SEPARATOR.
 * \s and \S are rewritten to the explicit White_Space set to match. */
#define WHITE_SPACE "\\t\\n\\x{0B}\\f\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}" \
                    "\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

static int onig_compat(const char *re, size_t len, sbuf *out)
{
    bool in_class = false;
    int rc = ENG_OK;
    for (size_t i = 0; rc == ENG_OK && i < len; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < len) {
            char d = re[i + 1];
            i++;
            const char *rep = d == 's' ? (in_class ? WHITE_SPACE : "[" WHITE_SPACE "]")
                            : d == 'S' && !in_class ? "[^" WHITE_SPACE "]" : NULL;
            if (rep) rc = sb_add(out, rep, strlen(rep));
            else { rc = sb_addc(out, c); if (rc == ENG_OK) rc = sb_addc(out, d); }
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            rc = sb_addc(out, c);
            /* a ']' right after '[' or '[^' is a literal */
            if (rc == ENG_OK && i + 1 < len && re[i + 1] == '^') { rc = sb_addc(out, '^'); i++; }
            if (rc == ENG_OK && i + 1 < len && re[i + 1] == ']') { rc = sb_addc(out, ']'); i++; }
            continue;
        }
        if (in_class && c == '[' && i + 1 < len && re[i + 1] == ':') {   /* [:alpha:] */
            const char *end = memmem(re + i + 2, len - i - 2, ":]", 2);
            if (end) {
                size_t l = (size_t)(end + 2 - (re + i));
                rc = sb_add(out, re + i, l);
                i += l - 1;
                continue;
            }
        }
        if (in_class && c == ']') in_class = false;
        rc = sb_addc(out, c);
    }
    return rc;
}

static int compile_regex(loader_t *L, const char *where, const char *re, size_t len, pcre2_code **out)
{
    int ec;
    PCRE2_SIZE eo;
    sbuf fixed = {0};
    if (onig_compat(re, len, &fixed) || sb_reserve(&fixed, 0)) {
        sb_free(&fixed);
        return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
    }
    *out = pcre2_compile((PCRE2_SPTR)fixed.p, fixed.n, PCRE2_UTF | PCRE2_UCP, &ec, &eo, L->t->cctx);
    sb_free(&fixed);
    if (!*out && ec == PCRE2_ERROR_HEAP_FAILED) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
    if (!*out) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return bad(L, where, "PCRE2 rejects the regex at offset %zu: %s", (size_t)eo, (const char *)msg);
    }
    pcre2_jit_compile(*out, PCRE2_JIT_COMPLETE);   /* without JIT it still matches, slower */
    return ENG_OK;
}

/* {"String": "..."} or {"Regex": "..."} */
static int parse_pattern(loader_t *L, const char *where, const cJSON *o, pattern_t *p)
{
    memset(p, 0, sizeof *p);
    p->gctx = L->t->gctx;
    const char *s = jstr(o, "String");
    if (s) {
        p->literal_len = strlen(s);
        p->literal = dup_n(s, p->literal_len);
        return p->literal ? ENG_OK : eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
    }
    const char *r = jstr(o, "Regex");
    if (!r) return bad(L, where, "pattern must be {\"String\": ...} or {\"Regex\": ...}");
    return compile_regex(L, where, r, strlen(r), &p->re);
}

static int parse_char(loader_t *L, const char *where, const char *s, int32_t *c)
{
    if (!s) return bad(L, where, "missing character");
    size_t n = strlen(s);
    size_t l = n ? u8_valid_len((const unsigned char *)s, n, c) : 0;
    if (!l || l != n) return bad(L, where, "'%s' must be exactly one character", s);
    return ENG_OK;
}

static int parse_scheme(loader_t *L, const char *where, const cJSON *o, prepend_scheme *sc)
{
    const char *s = jstr(o, "prepend_scheme");
    if (!s) { *sc = jbool(o, "add_prefix_space", true) ? PREPEND_ALWAYS : PREPEND_NEVER; return ENG_OK; }
    if (!strcmp(s, "always")) *sc = PREPEND_ALWAYS;
    else if (!strcmp(s, "first")) *sc = PREPEND_FIRST;
    else if (!strcmp(s, "never")) *sc = PREPEND_NEVER;
    else return bad(L, where, "unknown prepend_scheme '%s'", s);
    return ENG_OK;
}

static void nrm_free(nrm_t *n)
{
    if (!n) return;
    for (int i = 0; i < n->n_sub; i++) nrm_free(&n->sub[i]);
    eng_free(n->sub);
    eng_free(n->str);
    pat_free(&n->pat);
}

static int parse_normalizer(loader_t *L, const char *where, const cJSON *o, nrm_t *n)
{
    memset(n, 0, sizeof *n);
    const char *ty = jstr(o, "type");
    if (!ty) return bad(L, where, "missing \"type\"");
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = jget(o, "normalizers");
        if (!cJSON_IsArray(arr)) return bad(L, where, "Sequence without a \"normalizers\" list");
        n->kind = NRM_SEQ;
        int cnt = cJSON_GetArraySize(arr);
        n->sub = eng_calloc((size_t)cnt + 1, sizeof *n->sub);
        if (!n->sub) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
        for (int i = 0; i < cnt; i++) {
            char w[200];
            snprintf(w, sizeof w, "%s.normalizers[%d]", where, i);
            int rc = parse_normalizer(L, w, cJSON_GetArrayItem(arr, i), &n->sub[i]);
            n->n_sub = i + 1;
            if (rc) return rc;
        }
        return ENG_OK;
    }
    if (!strcmp(ty, "NFC")) n->kind = NRM_NFC;
    else if (!strcmp(ty, "NFD")) n->kind = NRM_NFD;
    else if (!strcmp(ty, "NFKC")) n->kind = NRM_NFKC;
    else if (!strcmp(ty, "NFKD")) n->kind = NRM_NFKD;
    else if (!strcmp(ty, "Lowercase")) n->kind = NRM_LOWER;
    else if (!strcmp(ty, "Strip")) {
        n->kind = NRM_STRIP;
        n->left = jbool(o, "strip_left", true);
        n->right = jbool(o, "strip_right", true);
    } else if (!strcmp(ty, "Prepend")) {
        n->kind = NRM_PREPEND;
        const char *s = jstr(o, "prepend");
        if (!s) return bad(L, where, "Prepend without \"prepend\"");
        n->str_len = strlen(s);
        if (!(n->str = dup_n(s, n->str_len))) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
    } else if (!strcmp(ty, "Replace")) {
        n->kind = NRM_REPLACE;
        const char *c = jstr(o, "content");
        if (!c) return bad(L, where, "Replace without \"content\"");
        n->str_len = strlen(c);
        if (!(n->str = dup_n(c, n->str_len))) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
        return parse_pattern(L, where, jget(o, "pattern"), &n->pat);
    } else return bad(L, where, "unsupported type '%s'", ty);
    return ENG_OK;
}

static void pre_free(pre_t *p)
{
    if (!p) return;
    for (int i = 0; i < p->n_sub; i++) pre_free(&p->sub[i]);
    eng_free(p->sub);
    pat_free(&p->pat);
}

#define GPT2_REGEX "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

static int parse_pre(loader_t *L, const char *where, const cJSON *o, pre_t *p)
{
    memset(p, 0, sizeof *p);
    const char *ty = jstr(o, "type");
    if (!ty) return bad(L, where, "missing \"type\"");
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = jget(o, "pretokenizers");
        if (!cJSON_IsArray(arr)) return bad(L, where, "Sequence without a \"pretokenizers\" list");
        p->kind = PRE_SEQ;
        int cnt = cJSON_GetArraySize(arr);
        p->sub = eng_calloc((size_t)cnt + 1, sizeof *p->sub);
        if (!p->sub) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
        for (int i = 0; i < cnt; i++) {
            char w[200];
            snprintf(w, sizeof w, "%s.pretokenizers[%d]", where, i);
            int rc = parse_pre(L, w, cJSON_GetArrayItem(arr, i), &p->sub[i]);
            p->n_sub = i + 1;
            if (rc) return rc;
        }
        return ENG_OK;
    }
    if (!strcmp(ty, "Split")) {
        p->kind = PRE_SPLIT;
        const char *b = jstr(o, "behavior");
        if (!b) return bad(L, where, "Split without \"behavior\"");
        if (!strcmp(b, "Removed")) p->behavior = SPL_REMOVED;
        else if (!strcmp(b, "Isolated")) p->behavior = SPL_ISOLATED;
        else if (!strcmp(b, "MergedWithPrevious")) p->behavior = SPL_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) p->behavior = SPL_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) p->behavior = SPL_CONTIGUOUS;
        else return bad(L, where, "unknown Split behavior '%s'", b);
        p->invert = jbool(o, "invert", false);
        char w[220];
        snprintf(w, sizeof w, "%s.pattern", where);
        return parse_pattern(L, w, jget(o, "pattern"), &p->pat);
    }
    if (!strcmp(ty, "ByteLevel")) {
        p->kind = PRE_BYTELEVEL;
        p->add_prefix_space = jbool(o, "add_prefix_space", true);
        p->use_regex = jbool(o, "use_regex", true);
        if (p->use_regex) return compile_regex(L, where, GPT2_REGEX, strlen(GPT2_REGEX), &p->pat.re);
        return ENG_OK;
    }
    if (!strcmp(ty, "Metaspace")) {
        p->kind = PRE_METASPACE;
        int rc = parse_char(L, where, jstr(o, "replacement"), &p->replacement);
        if (rc == ENG_OK) rc = parse_scheme(L, where, o, &p->scheme);
        p->split = jbool(o, "split", true);
        return rc;
    }
    if (!strcmp(ty, "Digits")) {
        p->kind = PRE_DIGITS;
        p->individual_digits = jbool(o, "individual_digits", false);
        return ENG_OK;
    }
    if (!strcmp(ty, "WhitespaceSplit")) { p->kind = PRE_WSSPLIT; return ENG_OK; }
    return bad(L, where, "unsupported type '%s'", ty);
}

static void dec_free(dec_t *d)
{
    if (!d) return;
    for (int i = 0; i < d->n_sub; i++) dec_free(&d->sub[i]);
    eng_free(d->sub);
    eng_free(d->str);
    pat_free(&d->pat);
}

static int parse_decoder(loader_t *L, const char *where, const cJSON *o, dec_t *d)
{
    memset(d, 0, sizeof *d);
    const char *ty = jstr(o, "type");
    if (!ty) return bad(L, where, "missing \"type\"");
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = jget(o, "decoders");
        if (!cJSON_IsArray(arr)) return bad(L, where, "Sequence without a \"decoders\" list");
        d->kind = DEC_SEQ;
        int cnt = cJSON_GetArraySize(arr);
        d->sub = eng_calloc((size_t)cnt + 1, sizeof *d->sub);
        if (!d->sub) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
        for (int i = 0; i < cnt; i++) {
            char w[200];
            snprintf(w, sizeof w, "%s.decoders[%d]", where, i);
            int rc = parse_decoder(L, w, cJSON_GetArrayItem(arr, i), &d->sub[i]);
            d->n_sub = i + 1;
            if (rc) return rc;
        }
        return ENG_OK;
    }
    if (!strcmp(ty, "ByteLevel")) { d->kind = DEC_BYTELEVEL; L->t->byte_level_decode = true; return ENG_OK; }
    if (!strcmp(ty, "ByteFallback")) { d->kind = DEC_BYTEFALLBACK; return ENG_OK; }
    if (!strcmp(ty, "Fuse")) { d->kind = DEC_FUSE; return ENG_OK; }
    if (!strcmp(ty, "Replace")) {
        d->kind = DEC_REPLACE;
        const char *c = jstr(o, "content");
        if (!c) return bad(L, where, "Replace without \"content\"");
        d->str_len = strlen(c);
        if (!(d->str = dup_n(c, d->str_len))) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
        return parse_pattern(L, where, jget(o, "pattern"), &d->pat);
    }
    if (!strcmp(ty, "Strip")) {
        d->kind = DEC_STRIP;
        const cJSON *st = jget(o, "start"), *sp = jget(o, "stop");
        d->start = cJSON_IsNumber(st) ? st->valueint : 0;
        d->stop = cJSON_IsNumber(sp) ? sp->valueint : 0;
        if (d->start < 0 || d->stop < 0) return bad(L, where, "negative start/stop");
        return parse_char(L, where, jstr(o, "content"), &d->content);
    }
    if (!strcmp(ty, "Metaspace")) {
        d->kind = DEC_METASPACE;
        int rc = parse_char(L, where, jstr(o, "replacement"), &d->content);
        return rc ? rc : parse_scheme(L, where, o, &d->scheme);
    }
    return bad(L, where, "unsupported type '%s'", ty);
}

static int tpl_add(loader_t *L, bool is_seq, const int *ids, int n)
{
    tokenizer_t *t = L->t;
    tpl_item *p = eng_realloc(t->tpl, (size_t)(t->n_tpl + 1) * sizeof *p);
    if (!p) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
    t->tpl = p;
    tpl_item *it = &t->tpl[t->n_tpl];
    memset(it, 0, sizeof *it);
    it->is_seq = is_seq;
    if (n) {
        it->ids = eng_malloc((size_t)n * sizeof(int));
        if (!it->ids) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
        memcpy(it->ids, ids, (size_t)n * sizeof(int));
        it->n_ids = n;
    }
    t->n_tpl++;
    return ENG_OK;
}

static int parse_post(loader_t *L, const char *where, const cJSON *o)
{
    const char *ty = jstr(o, "type");
    if (!ty) return bad(L, where, "missing \"type\"");
    if (!strcmp(ty, "ByteLevel")) return ENG_OK;   /* offsets only: ids unchanged */
    if (!strcmp(ty, "Sequence")) {
        const cJSON *arr = jget(o, "processors");
        if (!cJSON_IsArray(arr)) return bad(L, where, "Sequence without a \"processors\" list");
        for (int i = 0; i < cJSON_GetArraySize(arr); i++) {
            char w[200];
            snprintf(w, sizeof w, "%s.processors[%d]", where, i);
            int rc = parse_post(L, w, cJSON_GetArrayItem(arr, i));
            if (rc) return rc;
        }
        return ENG_OK;
    }
    if (L->t->has_template) return bad(L, where, "more than one processor adds special tokens");
    if (!strcmp(ty, "TemplateProcessing")) {
        const cJSON *single = jget(o, "single"), *sp = jget(o, "special_tokens");
        if (!cJSON_IsArray(single)) return bad(L, where, "TemplateProcessing without a \"single\" list");
        L->t->has_template = true;
        const cJSON *it;
        cJSON_ArrayForEach(it, single) {
            const cJSON *seq = jget(it, "Sequence"), *tok = jget(it, "SpecialToken");
            if (seq) { int rc = tpl_add(L, true, NULL, 0); if (rc) return rc; continue; }
            const char *name = jstr(tok, "id");
            if (!name) return bad(L, where, "single: an item is neither Sequence nor SpecialToken");
            const cJSON *ent = jget(sp, name), *ids = jget(ent, "ids");
            if (!cJSON_IsArray(ids)) return bad(L, where, "special token '%s' missing from special_tokens", name);
            int n = cJSON_GetArraySize(ids);
            int buf[16];
            if (n > 16) return bad(L, where, "special token '%s' has too many ids", name);
            for (int k = 0; k < n; k++) {
                const cJSON *v = cJSON_GetArrayItem(ids, k);
                if (!cJSON_IsNumber(v) || v->valueint < 0 || v->valueint >= L->t->n_ids)
                    return bad(L, where, "special token '%s': id not in the vocabulary", name);
                buf[k] = v->valueint;
            }
            int rc = tpl_add(L, false, buf, n);
            if (rc) return rc;
        }
        return ENG_OK;
    }
    if (!strcmp(ty, "RobertaProcessing") || !strcmp(ty, "BertProcessing")) {
        const cJSON *cls = jget(o, "cls"), *sep = jget(o, "sep");
        const cJSON *ci = cJSON_GetArrayItem(cls, 1), *si = cJSON_GetArrayItem(sep, 1);
        if (!cJSON_IsNumber(ci) || !cJSON_IsNumber(si)) return bad(L, where, "cls/sep must be [token, id]");
        L->t->has_template = true;
        int c = ci->valueint, s = si->valueint;
        if (c < 0 || c >= L->t->n_ids || s < 0 || s >= L->t->n_ids)
            return bad(L, where, "cls/sep id not in the vocabulary");
        int rc = tpl_add(L, false, &c, 1);
        if (!rc) rc = tpl_add(L, true, NULL, 0);
        if (!rc) rc = tpl_add(L, false, &s, 1);
        return rc;
    }
    return bad(L, where, "unsupported type '%s'", ty);
}

/* ---- model --------------------------------------------------------------- */

static int merge_put(tokenizer_t *t, int left, int right, uint32_t rank, int new_id)
{
    uint64_t key = ((uint64_t)(uint32_t)left << 32 | (uint32_t)right) + 1;
    size_t i = hash_u64(key) & t->merge_mask;
    while (t->merge_key[i] && t->merge_key[i] != key) i = (i + 1) & t->merge_mask;
    t->merge_key[i] = key;   /* a repeated pair takes the later rank, as HF's map does */
    t->merge_val[i] = (uint64_t)rank << 32 | (uint32_t)new_id;
    return ENG_OK;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n) p *= 2;
    return p;
}

static int load_model(loader_t *L, const cJSON *model, const cJSON *added)
{
    tokenizer_t *t = L->t;
    if (!cJSON_IsObject(model)) return bad(L, "model", "missing");
    const char *ty = jstr(model, "type");
    const cJSON *vocab = jget(model, "vocab"), *merges = jget(model, "merges");
    if (ty && strcmp(ty, "BPE")) return bad(L, "model.type", "unsupported model type '%s' (only BPE)", ty);
    if (!ty && !merges) return bad(L, "model", "no \"type\" and no merges: not a BPE model");
    if (!cJSON_IsObject(vocab)) return bad(L, "model.vocab", "missing or not an object");
    if (merges && !cJSON_IsArray(merges)) return bad(L, "model.merges", "not a list");
    const cJSON *dr = jget(model, "dropout");
    if (cJSON_IsNumber(dr) && dr->valuedouble > 0) return bad(L, "model.dropout", "BPE dropout is not supported");
    const char *csp = jstr(model, "continuing_subword_prefix"), *eow = jstr(model, "end_of_word_suffix");
    if (csp && *csp) return bad(L, "model.continuing_subword_prefix", "'%s' is not supported", csp);
    if (eow && *eow) return bad(L, "model.end_of_word_suffix", "'%s' is not supported", eow);

    /* ids: the largest vocab or added id + 1 */
    long max_id = -1;
    size_t n_vocab = 0, bytes = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, vocab) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 16777216 ||
            v->valuedouble != (double)v->valueint)
            return bad(L, "model.vocab", "token '%s' has an id that is not an integer in [0, 2^24]", v->string);
        if (v->valueint > max_id) max_id = v->valueint;
        n_vocab++;
        bytes += strlen(v->string) + 1;
    }
    if (cJSON_IsArray(added)) {
        cJSON_ArrayForEach(v, added) {
            const cJSON *id = jget(v, "id");
            if (!cJSON_IsNumber(id) || id->valueint < 0 || id->valueint > 16777216 || !jstr(v, "content"))
                return bad(L, "added_tokens", "an entry lacks an integer \"id\" or a \"content\" string");
            if (id->valueint > max_id) max_id = id->valueint;
        }
    }
    t->n_ids = (int)(max_id + 1);
    size_t nid = (size_t)t->n_ids + 1;
    t->tok_off = eng_malloc(nid * sizeof *t->tok_off);
    t->tok_len = eng_calloc(nid, sizeof *t->tok_len);
    t->added_of = eng_malloc(nid * sizeof *t->added_of);
    t->special = eng_calloc(nid, 1);
    t->vocab.mask = pow2_at_least(2 * n_vocab + 2) - 1;
    t->vocab.slot = eng_malloc((t->vocab.mask + 1) * sizeof *t->vocab.slot);
    if (!t->tok_off || !t->tok_len || !t->added_of || !t->special || !t->vocab.slot ||
        sb_reserve(&t->arena, bytes))
        return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
    for (size_t i = 0; i < nid; i++) { t->tok_off[i] = SIZE_MAX; t->added_of[i] = -1; }
    memset(t->vocab.slot, 0xff, (t->vocab.mask + 1) * sizeof *t->vocab.slot);
    cJSON_ArrayForEach(v, vocab) {
        int id = v->valueint;
        size_t n = strlen(v->string);
        if (vocab_get(t, v->string, n) >= 0) continue;
        if (t->tok_off[id] != SIZE_MAX)
            return bad(L, "model.vocab", "two tokens share one id (token '%s')", v->string);
        t->tok_off[id] = t->arena.n;
        t->tok_len[id] = (uint32_t)n;
        sb_add(&t->arena, v->string, n + 1);   /* reserved above: cannot fail */
        uint64_t h = hash_bytes(v->string, n);
        size_t i = h & t->vocab.mask;
        while (t->vocab.slot[i].id >= 0) i = (i + 1) & t->vocab.mask;
        t->vocab.slot[i] = (struct vslot){id, (uint32_t)(h >> 32)};
    }

    /* merges: "a b" or ["a", "b"]; rank = position */
    int n_merges = merges ? cJSON_GetArraySize(merges) : 0;
    t->merge_mask = pow2_at_least(2 * (size_t)n_merges + 2) - 1;
    t->merge_key = eng_calloc(t->merge_mask + 1, sizeof *t->merge_key);
    t->merge_val = eng_malloc((t->merge_mask + 1) * sizeof *t->merge_val);
    if (!t->merge_key || !t->merge_val) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
    sbuf joined = {0};
    int rank = 0, rc = ENG_OK;
    cJSON_ArrayForEach(v, merges) {
        const char *a, *b;
        size_t al, bl;
        char where[64];   /* formatted only for a message: 280k merges make snprintf show */
#define WHERE (snprintf(where, sizeof where, "model.merges[%d]", rank), where)
        if (cJSON_IsString(v)) {
            a = v->valuestring;
            const char *sp = strchr(a, ' ');
            if (!sp || strchr(sp + 1, ' ')) { rc = bad(L, WHERE, "'%s' is not two tokens separated by one space", a); break; }
            al = (size_t)(sp - a);
            b = sp + 1;
            bl = strlen(b);
        } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 2 &&
                   cJSON_IsString(cJSON_GetArrayItem(v, 0)) && cJSON_IsString(cJSON_GetArrayItem(v, 1))) {
            a = cJSON_GetArrayItem(v, 0)->valuestring;
            b = cJSON_GetArrayItem(v, 1)->valuestring;
            al = strlen(a);
            bl = strlen(b);
        } else { rc = bad(L, WHERE, "must be \"a b\" or [\"a\", \"b\"]"); break; }
        int ia = vocab_get(t, a, al), ib = vocab_get(t, b, bl);
        joined.n = 0;
        if (sb_add(&joined, a, al) || sb_add(&joined, b, bl)) { rc = eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory"); break; }
        if (ia < 0 || ib < 0) {
            char tokname[200];
            snprintf(tokname, sizeof tokname, "%.*s", (int)(ia < 0 ? al : bl), ia < 0 ? a : b);
            rc = bad(L, WHERE, "names a token that is not in the vocabulary: '%s'", tokname);
            break;
        }
        int inew = vocab_get(t, joined.p, joined.n);
        if (inew < 0) { rc = bad(L, WHERE, "the merged token '%s' is not in the vocabulary", joined.p); break; }
        merge_put(t, ia, ib, (uint32_t)rank, inew);
        rank++;
    }
#undef WHERE
    sb_free(&joined);
    if (rc) return rc;

    const char *unk = jstr(model, "unk_token");
    t->unk_id = unk ? vocab_get(t, unk, strlen(unk)) : -1;
    t->fuse_unk = jbool(model, "fuse_unk", false);
    t->byte_fallback = jbool(model, "byte_fallback", false);
    t->ignore_merges = jbool(model, "ignore_merges", false);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = vocab_get(t, name, 6);
    }
    /* may words be cut before "▁"? only if no token has "▁" after another character */
    t->meta_cut = true;
    for (int id = 0; id < t->n_ids && t->meta_cut; id++) {
        if (t->tok_off[id] == SIZE_MAX) continue;
        const char *p = t->arena.p + t->tok_off[id];
        size_t len = t->tok_len[id];
        for (size_t i = 1; i + 3 <= len; i++) {
            if (memcmp(p + i, "\xE2\x96\x81", 3) != 0) continue;
            if (i >= 3 && memcmp(p + i - 3, "\xE2\x96\x81", 3) == 0) continue;
            t->meta_cut = false;
            break;
        }
    }
    return ENG_OK;
}

/* ---- added tokens -------------------------------------------------------- */

typedef struct { int idx; unsigned char b0; size_t len; } mkey;

static int mkey_cmp(const void *x, const void *y)
{
    const mkey *a = x, *b = y;
    if (a->b0 != b->b0) return a->b0 < b->b0 ? -1 : 1;
    if (a->len != b->len) return a->len > b->len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static int matcher_build(tokenizer_t *t, matcher_t *m, bool normalized, eng_err *err)
{
    memset(m, 0, sizeof *m);
    m->content = eng_calloc((size_t)t->n_added + 1, sizeof *m->content);
    m->len = eng_calloc((size_t)t->n_added + 1, sizeof *m->len);
    mkey *keys = eng_malloc(((size_t)t->n_added + 1) * sizeof *keys);
    if (!m->content || !m->len || !keys) { eng_free(keys); return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory"); }
    int n = 0;
    for (int i = 0; i < t->n_added; i++) {
        const added_t *a = &t->added[i];
        if (a->normalized != normalized || a->len == 0) continue;
        sbuf s = {0};
        int rc;
        if (normalized && t->normalizer)
            rc = nrm_apply(t->normalizer, t->md, t->mctx, a->content, a->len, nrm_cap(a->len), &s, err);
        else rc = sb_add(&s, a->content, a->len);
        if (rc) { sb_free(&s); eng_free(keys); return rc == ENG_ENOMEM ? eng_fail(err, rc, "tokenizer: out of memory") : rc; }
        if (s.n == 0) { sb_free(&s); continue; }
        m->content[i] = s.p;
        m->len[i] = s.n;
        keys[n++] = (mkey){i, (unsigned char)s.p[0], s.n};
    }
    qsort(keys, (size_t)n, sizeof *keys, mkey_cmp);
    m->order = eng_malloc(((size_t)n + 1) * sizeof *m->order);
    if (!m->order) { eng_free(keys); return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory"); }
    int k = 0;
    for (int b = 0; b < 256; b++) {
        m->start[b] = k;
        while (k < n && keys[k].b0 == b) { m->order[k] = keys[k].idx; k++; }
    }
    m->start[256] = k;
    m->n = n;
    eng_free(keys);
    return ENG_OK;
}

static void matcher_free(matcher_t *m, int n_added)
{
    if (m->content) for (int i = 0; i < n_added; i++) eng_free(m->content[i]);
    eng_free(m->content);
    eng_free(m->len);
    eng_free(m->order);
}

static int load_added(loader_t *L, const cJSON *added)
{
    tokenizer_t *t = L->t;
    if (!cJSON_IsArray(added)) return ENG_OK;
    int n = cJSON_GetArraySize(added);
    t->added = eng_calloc((size_t)n + 1, sizeof *t->added);
    if (!t->added) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
    const cJSON *v;
    cJSON_ArrayForEach(v, added) {
        added_t *a = &t->added[t->n_added];
        const char *c = jstr(v, "content");
        a->len = strlen(c);
        a->content = dup_n(c, a->len);
        if (!a->content) return eng_fail(L->err, ENG_ENOMEM, "tokenizer: out of memory");
        a->id = jget(v, "id")->valueint;
        a->special = jbool(v, "special", false);
        a->single_word = jbool(v, "single_word", false);
        a->lstrip = jbool(v, "lstrip", false);
        a->rstrip = jbool(v, "rstrip", false);
        a->normalized = jbool(v, "normalized", !a->special);
        t->added_of[a->id] = t->n_added;
        if (a->special) t->special[a->id] = 1;
        t->n_added++;
    }
    return ENG_OK;
}

/* ---- tokenizer_config.json ----------------------------------------------- */

static const char *config_token(const cJSON *cfg, const char *key)
{
    const cJSON *v = jget(cfg, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) return jstr(v, "content");
    return NULL;
}

static void load_config(tokenizer_t *t, const cJSON *cfg)
{
    t->bos_id = t->eos_id = -1;
    const char *bos = cfg ? config_token(cfg, "bos_token") : NULL;
    const char *eos = cfg ? config_token(cfg, "eos_token") : NULL;
    if (bos) t->bos_id = tok_token_to_id(t, bos);
    if (eos) t->eos_id = tok_token_to_id(t, eos);
    /* otherwise: what the post-processor puts around the sequence */
    bool before = true, tb = false, te = false;
    for (int i = 0; i < t->n_tpl; i++) {
        if (t->tpl[i].is_seq) { before = false; continue; }
        for (int k = 0; k < t->tpl[i].n_ids; k++) {
            if (before && t->bos_id >= 0 && t->tpl[i].ids[k] == t->bos_id) tb = true;
            if (!before && t->eos_id >= 0 && t->tpl[i].ids[k] == t->eos_id) te = true;
        }
    }
    const cJSON *ab = cfg ? jget(cfg, "add_bos_token") : NULL, *ae = cfg ? jget(cfg, "add_eos_token") : NULL;
    t->add_bos = cJSON_IsBool(ab) ? cJSON_IsTrue(ab) : tb;
    t->add_eos = cJSON_IsBool(ae) ? cJSON_IsTrue(ae) : te;
}

/* ======================================================================
 * Public API
 * ====================================================================== */

void tok_close(tokenizer_t *t)
{
    if (!t) return;
    sb_free(&t->arena);
    eng_free(t->tok_off);
    eng_free(t->tok_len);
    eng_free(t->added_of);
    eng_free(t->special);
    eng_free(t->vocab.slot);
    matcher_free(&t->m_raw, t->n_added);
    matcher_free(&t->m_norm, t->n_added);
    for (int i = 0; i < t->n_added; i++) eng_free(t->added[i].content);
    eng_free(t->added);
    eng_free(t->merge_key);
    eng_free(t->merge_val);
    nrm_free(t->normalizer);
    eng_free(t->normalizer);
    pre_free(t->pre);
    eng_free(t->pre);
    eng_free(t->pre_flat);
    for (int i = 0; t->lv && i < t->n_pre; i++) {
        eng_free(t->lv[i].sg.p);
        sb_free(&t->lv[i].tmp);
        sb_free(&t->lv[i].tmp2);
        sl_free(&t->lv[i].out);
    }
    eng_free(t->lv);
    dec_free(t->decoder);
    eng_free(t->decoder);
    for (int i = 0; i < t->n_tpl; i++) eng_free(t->tpl[i].ids);
    eng_free(t->tpl);
    eng_free(t->cache);
    sb_free(&t->cache_keys);
    eng_free(t->cache_ids.p);
    if (t->md) pcre2_match_data_free(t->md);
    if (t->mctx) pcre2_match_context_free(t->mctx);
    if (t->jit_stack) pcre2_jit_stack_free(t->jit_stack);
    if (t->cctx) pcre2_compile_context_free(t->cctx);
    if (t->gctx) pcre2_general_context_free(t->gctx);
    eng_free(t);
}

static int pre_count(const pre_t *p)
{
    if (p->kind != PRE_SEQ) return 1;
    int n = 0;
    for (int i = 0; i < p->n_sub; i++) n += pre_count(&p->sub[i]);
    return n;
}

static void pre_flatten(const pre_t *p, const pre_t **out, int *k)
{
    if (p->kind != PRE_SEQ) { out[(*k)++] = p; return; }
    for (int i = 0; i < p->n_sub; i++) pre_flatten(&p->sub[i], out, k);
}

static int load_all(loader_t *L, const cJSON *root, const cJSON *cfg)
{
    tokenizer_t *t = L->t;
    eng_err *err = L->err;
    const cJSON *added = jget(root, "added_tokens");
    if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added)) return bad(L, "added_tokens", "not a list");
    int rc = load_model(L, jget(root, "model"), added);
    if (rc) return rc;
    rc = load_added(L, added);
    if (rc) return rc;

    const cJSON *o = jget(root, "normalizer");
    if (o && !cJSON_IsNull(o)) {
        if (!(t->normalizer = eng_calloc(1, sizeof *t->normalizer))) return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
        if ((rc = parse_normalizer(L, "normalizer", o, t->normalizer))) return rc;
    }
    o = jget(root, "pre_tokenizer");
    if (o && !cJSON_IsNull(o)) {
        if (!(t->pre = eng_calloc(1, sizeof *t->pre))) return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
        if ((rc = parse_pre(L, "pre_tokenizer", o, t->pre))) return rc;
    }
    if (t->pre) {
        t->n_pre = pre_count(t->pre);
        /* each level is a stack frame of the depth-first walk */
        if (t->n_pre > 64) return bad(L, "pre_tokenizer", "more than 64 pre-tokenizers (%d)", t->n_pre);
        t->pre_flat = eng_calloc((size_t)t->n_pre + 1, sizeof *t->pre_flat);
        t->lv = eng_calloc((size_t)t->n_pre + 1, sizeof *t->lv);
        if (!t->pre_flat || !t->lv) return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
        int k = 0;
        pre_flatten(t->pre, t->pre_flat, &k);
    }
    o = jget(root, "decoder");
    if (o && !cJSON_IsNull(o)) {
        if (!(t->decoder = eng_calloc(1, sizeof *t->decoder))) return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
        if ((rc = parse_decoder(L, "decoder", o, t->decoder))) return rc;
    }
    o = jget(root, "post_processor");
    if (o && !cJSON_IsNull(o) && (rc = parse_post(L, "post_processor", o))) return rc;
    const cJSON *tr = jget(root, "truncation"), *pd = jget(root, "padding");
    if (tr && !cJSON_IsNull(tr)) return bad(L, "truncation", "truncation settings are not supported");
    if (pd && !cJSON_IsNull(pd)) return bad(L, "padding", "padding settings are not supported");

    if ((rc = matcher_build(t, &t->m_raw, false, err))) return rc;
    if ((rc = matcher_build(t, &t->m_norm, true, err)))
        return rc == ENG_EINPUT ? bad(L, "normalizer", "it makes an added token over %d times longer (+ 64 KiB)",
                                      NRM_GROWTH) : rc;
    load_config(t, cfg);

    t->cache_mask = CACHE_SLOTS - 1;
    t->cache = eng_calloc(CACHE_SLOTS, sizeof *t->cache);
    if (!t->cache) return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
    return ENG_OK;
}

static int open_mem_named(tokenizer_t **out, const char *json, size_t len, const char *config,
                          size_t config_len, const char *file, const char *cfg_file, eng_err *err)
{
    *out = NULL;
    bl_init();
    tokenizer_t *t = eng_calloc(1, sizeof *t);
    if (!t) return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
    t->gctx = pcre2_general_context_create(pc_malloc, pc_free, NULL);
    t->cctx = t->gctx ? pcre2_compile_context_create(t->gctx) : NULL;
    t->mctx = t->gctx ? pcre2_match_context_create(t->gctx) : NULL;
    t->md = t->gctx ? pcre2_match_data_create(16, t->gctx) : NULL;
    t->jit_stack = t->gctx ? pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, t->gctx) : NULL;
    if (!t->gctx || !t->cctx || !t->mctx || !t->md || !t->jit_stack) {
        tok_close(t);
        return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
    }
    pcre2_jit_stack_assign(t->mctx, NULL, t->jit_stack);

    bool oom;
    cJSON *root = eng_json_parse(json, len, &oom);
    if (!root && oom) {
        tok_close(t);
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory reading the JSON", file);
    }
    if (!cJSON_IsObject(root)) {
        const char *at = cJSON_GetErrorPtr();
        size_t off = at && at >= json && at <= json + len ? (size_t)(at - json) : 0;
        cJSON_Delete(root);
        tok_close(t);
        return eng_fail(err, ENG_EINPUT, "%s: not valid JSON (near byte %zu)", file, off);
    }
    cJSON *cfg = NULL;
    if (config) {
        cfg = eng_json_parse(config, config_len, &oom);
        if (!cfg && oom) {
            cJSON_Delete(root);
            tok_close(t);
            return eng_fail(err, ENG_ENOMEM, "%s: out of memory reading the JSON", cfg_file);
        }
        if (!cJSON_IsObject(cfg)) {
            cJSON_Delete(cfg);
            cJSON_Delete(root);
            tok_close(t);
            return eng_fail(err, ENG_EINPUT, "%s: not valid JSON", cfg_file);
        }
    }
    loader_t L = { t, file, err };
    int rc = load_all(&L, root, cfg);
    cJSON_Delete(root);
    cJSON_Delete(cfg);
    if (rc) { tok_close(t); return rc; }
    *out = t;
    return ENG_OK;
}

int tok_open_mem(tokenizer_t **out, const char *json, size_t len, const char *config,
                 size_t config_len, eng_err *err)
{
    return open_mem_named(out, json, len, config, config_len, "tokenizer.json", "tokenizer_config.json", err);
}

/* Reads a whole file into a new NUL-terminated buffer. ENG_EIO when absent. */
static int read_file(const char *path, char **data, size_t *len, eng_err *err)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return eng_fail(err, ENG_EIO, "%s: %s", path, strerror(errno));
    sbuf b = {0};
    char chunk[65536];
    size_t got;
    int rc = ENG_OK;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sb_add(&b, chunk, got)) { rc = eng_fail(err, ENG_ENOMEM, "%s: out of memory", path); break; }
    if (rc == ENG_OK && ferror(f)) rc = eng_fail(err, ENG_EIO, "%s: read error", path);
    fclose(f);
    if (rc == ENG_OK && !b.p && sb_reserve(&b, 0)) rc = eng_fail(err, ENG_ENOMEM, "%s: out of memory", path);
    if (rc) { sb_free(&b); return rc; }
    *data = b.p;
    *len = b.n;
    return ENG_OK;
}

int tok_open(tokenizer_t **out, const char *dir, eng_err *err)
{
    *out = NULL;
    size_t dl = strlen(dir);
    char *p1 = eng_malloc(dl + 32), *p2 = eng_malloc(dl + 32);
    if (!p1 || !p2) { eng_free(p1); eng_free(p2); return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory"); }
    snprintf(p1, dl + 32, "%s/tokenizer.json", dir);
    snprintf(p2, dl + 32, "%s/tokenizer_config.json", dir);
    char *json = NULL, *cfg = NULL;
    size_t jl = 0, cl = 0;
    int rc = read_file(p1, &json, &jl, err);
    if (rc == ENG_OK) {
        FILE *f = fopen(p2, "rb");
        if (f) { fclose(f); rc = read_file(p2, &cfg, &cl, err); }
    }
    if (rc == ENG_OK) rc = open_mem_named(out, json, jl, cfg, cl, p1, p2, err);
    eng_free(json);
    eng_free(cfg);
    eng_free(p1);
    eng_free(p2);
    return rc;
}

int tok_vocab_size(const tokenizer_t *t) { return t->n_ids; }

const char *tok_id_to_token(const tokenizer_t *t, int id)
{
    if (id < 0 || id >= t->n_ids) return NULL;
    if (t->added_of[id] >= 0) return t->added[t->added_of[id]].content;
    return t->tok_off[id] == SIZE_MAX ? NULL : t->arena.p + t->tok_off[id];
}

int tok_token_to_id(const tokenizer_t *t, const char *token)
{
    size_t n = strlen(token);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && memcmp(t->added[i].content, token, n) == 0) return t->added[i].id;
    return vocab_get(t, token, n);
}

bool tok_is_special(const tokenizer_t *t, int id) { return id >= 0 && id < t->n_ids && t->special[id]; }
int tok_bos_id(const tokenizer_t *t) { return t->bos_id; }
int tok_eos_id(const tokenizer_t *t) { return t->eos_id; }
bool tok_add_bos(const tokenizer_t *t) { return t->add_bos; }
bool tok_add_eos(const tokenizer_t *t) { return t->add_eos; }

/* ---- streaming decode (HF DecodeStream::step) ------------------------------ */

int tok_stream_new(tok_stream_t **out, const tokenizer_t *t, bool skip_special, eng_err *err)
{
    *out = eng_calloc(1, sizeof **out);
    if (!*out) return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
    (*out)->t = t;
    (*out)->skip_special = skip_special;
    return ENG_OK;
}

void tok_stream_free(tok_stream_t *s)
{
    if (!s) return;
    eng_free(s->ids.p);
    sb_free(&s->prefix);
    sb_free(&s->out);
    eng_free(s);
}

void tok_stream_reset(tok_stream_t *s)
{
    s->ids.n = 0;
    s->prefix.n = 0;
    s->prefix_index = 0;
    s->out.n = 0;
}

static bool ends_with_fffd(const char *s, size_t n)
{
    return n >= 3 && memcmp(s + n - 3, "\xEF\xBF\xBD", 3) == 0;
}

int tok_stream_push(tok_stream_t *s, int id, const char **text, size_t *len, eng_err *err)
{
    *text = "";
    *len = 0;
    if (id < 0 || id >= s->t->n_ids) return eng_fail(err, ENG_ERANGE, "tokenizer: token id %d out of range", id);
    char *str = NULL;
    size_t sl = 0;
    int rc;
    /* a stream whose prefix is still empty takes the ids so far as its prefix
     * once they decode to complete text (tokenizers >= 0.22) */
    if (s->prefix.n == 0 && s->ids.n > 0) {
        if ((rc = tok_decode(s->t, s->ids.p, s->ids.n, s->skip_special, &str, &sl, err))) return rc;
        if (!ends_with_fffd(str, sl)) {
            s->prefix.n = 0;
            rc = sb_add(&s->prefix, str, sl);
            s->prefix_index = s->ids.n;
        } else rc = ENG_OK;
        eng_free(str);
        if (rc) return eng_fail(err, rc, "tokenizer: out of memory");
    }
    if (ib_push(&s->ids, id)) return eng_fail(err, ENG_ENOMEM, "tokenizer: out of memory");
    if ((rc = tok_decode(s->t, s->ids.p, s->ids.n, s->skip_special, &str, &sl, err))) { s->ids.n--; return rc; }
    if (sl > s->prefix.n && !ends_with_fffd(str, sl)) {
        if (s->prefix.n && memcmp(str, s->prefix.p, s->prefix.n) != 0) {
            eng_free(str);
            s->ids.n--;
            return eng_fail(err, ENG_EINPUT, "tokenizer: stream decode: the text so far changed (invalid prefix)");
        }
        s->out.n = 0;
        rc = sb_add(&s->out, str + s->prefix.n, sl - s->prefix.n);
        eng_free(str);
        if (rc) return eng_fail(err, rc, "tokenizer: out of memory");
        size_t new_prefix_index = s->ids.n - s->prefix_index;
        memmove(s->ids.p, s->ids.p + s->prefix_index, (s->ids.n - s->prefix_index) * sizeof(int));
        s->ids.n -= s->prefix_index;
        if ((rc = tok_decode(s->t, s->ids.p, s->ids.n, s->skip_special, &str, &sl, err))) return rc;
        s->prefix.n = 0;
        rc = sb_add(&s->prefix, str, sl);
        eng_free(str);
        if (rc) return eng_fail(err, rc, "tokenizer: out of memory");
        s->prefix_index = new_prefix_index;
        *text = s->out.p;
        *len = s->out.n;
        return ENG_OK;
    }
    eng_free(str);
    return ENG_OK;
}

/* ---- labels ----------------------------------------------------------------- */

/* Raw bytes a single token stands for (without the decoder's context rules). */
static int token_bytes(const tokenizer_t *t, int id, sbuf *out)
{
    size_t n;
    const char *s = token_str(t, id, &n);
    if (!s) return ENG_ERANGE;
    if (t->added_of[id] >= 0) return sb_add(out, s, n);
    unsigned char b;
    if (parse_byte_token(s, n, &b) && t->byte_fallback) return sb_addc(out, (char)b);
    if (t->byte_level_decode) {
        size_t start = out->n;
        for (size_t k = 0; k < n;) {
            int32_t c;
            k += u8_next(s + k, n - k, &c);
            if (c < 0x144 && bl_dec[c] >= 0) { if (sb_addc(out, (char)bl_dec[c])) return ENG_ENOMEM; }
            else { out->n = start; return sb_add(out, s, n); }
        }
        return ENG_OK;
    }
    for (size_t k = 0; k < n;) {
        int32_t c;
        size_t l = u8_next(s + k, n - k, &c);
        if (c == 0x2581 ? sb_addc(out, ' ') : sb_add(out, s + k, l)) return ENG_ENOMEM;
        k += l;
    }
    return ENG_OK;
}

int tok_label(const tokenizer_t *t, int id, char *buf, size_t cap, int max_cols)
{
    if (cap == 0) return 0;
    buf[0] = 0;
    sbuf raw = {0};
    char tmp[32];
    if (token_bytes(t, id, &raw) != ENG_OK) {
        sb_free(&raw);
        snprintf(tmp, sizeof tmp, "<?%d>", id);
        raw.p = NULL;
        size_t l = strlen(tmp);
        int cols = (int)l > max_cols ? max_cols : (int)l;
        if ((size_t)cols >= cap) cols = (int)cap - 1;
        memcpy(buf, tmp, (size_t)cols);
        buf[cols] = 0;
        return cols;
    }
    const unsigned char *u = (const unsigned char *)(raw.p ? raw.p : "");
    size_t n = raw.n, used = 0;
    int cols = 0;
    bool cut = false;
    for (size_t i = 0; i < n;) {
        int32_t c;
        size_t l = u[i] < 0x80 ? (c = u[i], 1) : u8_valid_len(u + i, n - i, &c);
        const char *piece;
        size_t plen;
        int w;
        if (!l) { snprintf(tmp, sizeof tmp, "\\x%02X", u[i]); piece = tmp; plen = 4; w = 4; l = 1; }
        else if (c == ' ') { piece = "\xE2\x90\xA3"; plen = 3; w = 1; }
        else if (c == '\n') { piece = "\\n"; plen = 2; w = 2; }
        else if (c == '\t') { piece = "\\t"; plen = 2; w = 2; }
        else if (c == '\r') { piece = "\\r"; plen = 2; w = 2; }
        else if (c < 0x20 || c == 0x7F || (c >= 0x80 && c < 0xA0)) {
            snprintf(tmp, sizeof tmp, "\\x%02X", (unsigned)c); piece = tmp; plen = 4; w = 4;
        } else {
            piece = (const char *)u + i; plen = l;
            w = utf8proc_charwidth(c);
            if (w < 0) w = 0;
        }
        /* keep one column (and 3 bytes) for the ellipsis unless this is the end */
        bool last = i + l >= n;
        int need = w + (last ? 0 : 1);
        if (cols + need > max_cols || used + plen + (last ? 0 : 3) + 1 > cap) { cut = true; break; }
        memcpy(buf + used, piece, plen);
        used += plen;
        cols += w;
        i += l;
    }
    if (cut && cols + 1 <= max_cols && used + 4 <= cap) {
        memcpy(buf + used, "\xE2\x80\xA6", 3);
        used += 3;
        cols++;
    }
    buf[used] = 0;
    sb_free(&raw);
    return cols;
}
