/* fuzz_config.c - fuzz target: config.json text mapped to config_t. An
 * accepted config must describe a model the engine can size safely. */
#include <stdint.h>
#include <stddef.h>

#include "fuzz_util.h"
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    config_t c;
    eng_err err;
    memset(&err, 0, sizeof err);
    int rc = config_parse(&c, (const char *)data, size, "config.json", &err);
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
