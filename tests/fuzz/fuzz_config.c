/* fuzz_config.c - fuzz target: config.json text mapped to config_t and, after
 * a NUL byte, generation_config.json merged into it. An accepted config must
 * describe a model the engine can size safely. */
#include <stdint.h>
#include <stddef.h>

#include "fuzz_util.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t clen = nul ? (size_t)(nul - data) : size;
    config_t c;
    eng_err err;
    memset(&err, 0, sizeof err);
    int rc = config_parse(&c, (const char *)data, clen, "config.json", &err);
    if (rc == ENG_OK && nul) {
        FUZZ_CHECK(fuzz_write("generation_config.json", nul + 1, size - clen - 1) == 0);
        rc = config_merge_generation(&c, fuzz_scratch(), &err);
    }
    if (rc == ENG_OK) {
        FUZZ_CHECK(c.dim > 0 && c.n_layers > 0 && c.n_heads > 0 && c.n_kv_heads > 0);
        FUZZ_CHECK(c.head_dim > 0 && c.vocab_size > 0 && c.hidden_dim > 0);
        FUZZ_CHECK(c.n_heads % c.n_kv_heads == 0);
        FUZZ_CHECK(c.n_eos >= 0 && c.n_eos <= CONFIG_MAX_EOS);
        FUZZ_CHECK(memchr(c.model_type, '\0', sizeof c.model_type) != NULL);
    } else {
        FUZZ_CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof err.msg));
    }
    return 0;
}
