/* fuzz_tokenizer_load.c - fuzz target: tokenizer.json (and, after a NUL
 * byte, tokenizer_config.json) loaded from memory; a file that loads must
 * then encode and decode a short fixed text without crashing. */
#include <stdint.h>
#include <stddef.h>

#include "fuzz_util.h"
#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *json = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    const char *cfg = nul ? (const char *)nul + 1 : NULL;
    size_t clen = nul ? size - jlen - 1 : 0;

    tokenizer_t *t = NULL;
    eng_err err;
    memset(&err, 0, sizeof err);
    int rc = tok_open_mem(&t, json, jlen, cfg, clen, &err);
    if (rc != ENG_OK) {
        FUZZ_CHECK(t == NULL);
        FUZZ_CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof err.msg));
        return 0;
    }
    FUZZ_CHECK(t != NULL);
    static const char text[] = "Hello, world! 123 \xc3\xa9t\xc3\xa9  <s>\n";
    int *ids = NULL;
    size_t n = 0;
    if (tok_encode(t, text, sizeof text - 1, true, &ids, &n, &err) == ENG_OK) {
        int vs = tok_vocab_size(t);
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(ids[i] >= 0 && ids[i] < vs);
            char lab[64];
            tok_label(t, ids[i], lab, sizeof lab, 16);
        }
        char *out = NULL;
        if (tok_decode(t, ids, n, false, &out, NULL, &err) == ENG_OK)
            eng_free(out);
        eng_free(ids);
    }
    tok_close(t);
    return 0;
}
