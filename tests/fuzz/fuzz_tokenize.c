/* fuzz_tokenize.c - fuzz target: encode arbitrary bytes with real tokenizers
 * (Llama 3, Llama 2, Qwen3 from .cache/tokenizers, and the tiny-chat fixture;
 * each loaded once), then decode and stream-decode the ids. The first input
 * byte picks the tokenizer and add_special. For byte-level tokenizers without
 * a normalizer (Llama 3, tiny-chat) decode(encode(text)) must give the text
 * back for valid UTF-8. Only the first TZ_STREAM_IDS ids are stream-decoded:
 * while the text so far ends in U+FFFD the stream re-decodes every id it
 * holds back, so a text made of U+FFFD costs the square of its length (one
 * 4 KB input ran past libFuzzer's 10 s timeout); see docs/testing.md. */
#include <stdint.h>
#include <stddef.h>

#include "fuzz_util.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    const char *dir;       /* relative to fuzz_root() */
    bool roundtrip;        /* decode(encode(x)) == x holds for valid UTF-8 */
} tz_files[] = {
    {".cache/tokenizers/llama3", true},
    {".cache/tokenizers/llama2", false},
    {".cache/tokenizers/qwen3", false},
    {"tests/fixtures/tiny-chat", true},
};
#define TZ_N (sizeof tz_files / sizeof tz_files[0])
#define TZ_STREAM_IDS 256   /* ids pushed through the stream decoder */
static tokenizer_t *tz_tok[TZ_N];

static void tz_load(void)
{
    static int done;
    if (done) return;
    done = 1;
    int any = 0;
    for (size_t i = 0; i < TZ_N; i++) {
        char dir[1024];
        eng_err err;
        snprintf(dir, sizeof dir, "%s/%s", fuzz_root(), tz_files[i].dir);
        if (tok_open(&tz_tok[i], dir, &err) == ENG_OK) any = 1;
        else fprintf(stderr, "fuzz_tokenize: %s not loaded: %s\n", dir, err.msg);
    }
    FUZZ_CHECK(any);   /* tiny-chat at least must load */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tz_load();
    if (size < 1) return 0;
    size_t which = (size_t)(data[0] & 3) % TZ_N;
    bool add_special = (data[0] & 4) != 0;
    tokenizer_t *t = tz_tok[which];
    if (!t) t = tz_tok[TZ_N - 1], which = TZ_N - 1;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;

    int *ids = NULL;
    size_t n = 0;
    eng_err err;
    int rc = tok_encode(t, text, len, add_special, &ids, &n, &err);
    if (rc != ENG_OK) {
        FUZZ_CHECK(rc == ENG_EINPUT && ids == NULL && n == 0);   /* invalid UTF-8 */
        return 0;
    }
    int vs = tok_vocab_size(t);
    for (size_t i = 0; i < n; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < vs);

    char *out = NULL;
    size_t olen = 0;
    FUZZ_CHECK(tok_decode(t, ids, n, false, &out, &olen, &err) == ENG_OK);
    if (tz_files[which].roundtrip && !add_special)
        FUZZ_CHECK(olen == len && memcmp(out, text, len) == 0);
    eng_free(out);
    FUZZ_CHECK(tok_decode(t, ids, n, true, &out, &olen, &err) == ENG_OK);
    eng_free(out);

    tok_stream_t *s = NULL;
    FUZZ_CHECK(tok_stream_new(&s, t, false, &err) == ENG_OK);
    size_t total = 0;
    for (size_t i = 0; i < n && i < TZ_STREAM_IDS; i++) {
        const char *piece;
        size_t plen;
        FUZZ_CHECK(tok_stream_push(s, ids[i], &piece, &plen, &err) == ENG_OK);
        FUZZ_CHECK(piece && piece[plen] == '\0');   /* text may hold NUL bytes */
        total += plen;
    }
    (void)total;
    tok_stream_free(s);
    for (size_t i = 0; i < n && i < 8; i++) {
        char lab[64];
        int cols = tok_label(t, ids[i], lab, sizeof lab, 12);
        FUZZ_CHECK(cols >= 0 && cols <= 12 && memchr(lab, '\0', sizeof lab));
    }
    eng_free(ids);
    return 0;
}
