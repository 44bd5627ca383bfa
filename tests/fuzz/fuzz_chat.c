/* fuzz_chat.c - fuzz target: chat template rendering of arbitrary messages
 * with every published template fixture (tests/fixtures/templates/NAME.json,
 * opened once). Input: byte 0 picks the template, byte 1 the flags; the rest
 * is split at NUL bytes into messages whose first byte picks the role
 * (system, user, assistant, or an unknown one). */
#include <stdint.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "fuzz_util.h"
#include "chat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const ch_names[] = {
    "llama3", "llama3.1", "llama3.2", "llama2", "mistral-v1", "mixtral", "phi3",
    "qwen2.5", "qwen3", "smollm2", "zephyr", "gemma",
};
#define CH_N (sizeof ch_names / sizeof ch_names[0])
static chat_template *ch_tpl[CH_N + 1];    /* the last: no template (family none) */

static const char *ch_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {   /* {"content": "<s>", ...} */
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return NULL;
}

static void ch_load(void)
{
    static int done;
    if (done) return;
    done = 1;
    eng_err err;
    for (size_t i = 0; i < CH_N; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/fixtures/templates/%s.json", fuzz_root(), ch_names[i]);
        char *text = fuzz_slurp(path, NULL);
        cJSON *j = text ? cJSON_Parse(text) : NULL;
        free(text);
        if (!j) { fprintf(stderr, "fuzz_chat: %s not loaded\n", path); continue; }
        if (chat_open(&ch_tpl[i], ch_str(j, "chat_template"), ch_str(j, "bos_token"),
                      ch_str(j, "eos_token"), &err) != ENG_OK)
            fprintf(stderr, "fuzz_chat: %s: %s\n", path, err.msg);
        else
            chat_set_date(ch_tpl[i], "26 Jul 2024", &err);
        cJSON_Delete(j);
    }
    FUZZ_CHECK(chat_open(&ch_tpl[CH_N], NULL, NULL, NULL, &err) == ENG_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ch_load();
    if (size < 2) return 0;
    chat_template *t = ch_tpl[data[0] % (CH_N + 1)];
    if (!t) return 0;
    unsigned flags = data[1] & 3;
    static const char *const roles[] = {"system", "user", "assistant", "tool"};

    /* Copy so that every message is NUL-terminated. */
    char *buf = malloc(size - 2 + 1);
    FUZZ_CHECK(buf != NULL);
    memcpy(buf, data + 2, size - 2);
    buf[size - 2] = '\0';
    chat_msg msgs[64];
    size_t n = 0;
    char *p = buf, *end = buf + (size - 2);
    while (p < end && n < 64) {
        size_t l = strlen(p);
        if (l >= 1) {
            msgs[n].role = roles[(unsigned char)p[0] & 3];
            msgs[n].content = p + 1;
            n++;
        }
        p += l + 1;
    }
    char *out = NULL;
    eng_err err;
    int rc = chat_render(t, msgs, n, flags, &out, &err);
    if (rc == ENG_OK) {
        FUZZ_CHECK(out != NULL);
        eng_free(out);
    } else {
        FUZZ_CHECK(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof err.msg));
    }
    free(buf);
    return 0;
}
