/* cmd_template.c - `attnscope template`: renders a JSON conversation with the
 * model folder's chat template and prints the prompt, byte for byte, on stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "commands.h"
#include "engine.h"
#include "engine_cli.h"

static const char usage[] =
    "usage: attnscope template --model DIR --messages FILE.json [--no-generation-prompt]\n"
    "                          [--no-thinking] [--date \"DD Mon YYYY\"]\n"
    "  Prints the chat prompt that DIR's tokenizer_config.json template makes of FILE,\n"
    "  a JSON array of {\"role\": \"system\"|\"user\"|\"assistant\", \"content\": TEXT}.\n"
    "  --no-generation-prompt  do not open the assistant's turn at the end\n"
    "  --no-thinking           Qwen3: enable_thinking=False (an empty think block)\n"
    "  --date                  the date Llama 3.1/3.2 headers show (default: the template's)\n";

int cmd_template(int argc, char **argv)
{
    const char *model = NULL, *msgs_path = NULL, *date = NULL;
    unsigned flags = CHAT_GEN_PROMPT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--no-generation-prompt") == 0) {
            flags &= ~(unsigned)CHAT_GEN_PROMPT;
        } else if (strcmp(a, "--no-thinking") == 0) {
            flags |= CHAT_NO_THINKING;
        } else if (strcmp(a, "--model") == 0 || strcmp(a, "--messages") == 0 ||
                   strcmp(a, "--date") == 0) {
            if (i + 1 >= argc) return ecli_bad("template", "%s needs a value", a);
            const char **dst = a[2] == 'm' ? (a[3] == 'o' ? &model : &msgs_path) : &date;
            *dst = argv[++i];
        } else {
            return ecli_bad("template", "unknown argument '%s' (see --help)", a);
        }
    }
    if (!model || !msgs_path) return ecli_bad("template", "--model DIR and --messages FILE.json are required");

    char *text = ecli_slurp(msgs_path, NULL);
    if (!text) return ecli_bad("template", "%s: cannot read the file", msgs_path);
    cJSON *doc = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsArray(doc)) {
        cJSON_Delete(doc);
        return ecli_bad("template", "%s: not a JSON array of {\"role\", \"content\"} objects", msgs_path);
    }
    int n = cJSON_GetArraySize(doc), rc = 0;
    chat_msg *msgs = calloc((size_t)n + 1, sizeof *msgs);
    if (!msgs) { cJSON_Delete(doc); fputs("attnscope template: out of memory\n", stderr); return 1; }
    for (int i = 0; i < n; i++) {
        const cJSON *m = cJSON_GetArrayItem(doc, i);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(r) || !cJSON_IsString(c)) {
            fprintf(stderr, "attnscope template: %s: message %d needs string \"role\" and "
                            "\"content\" fields\n", msgs_path, i);
            free(msgs);
            cJSON_Delete(doc);
            return 2;
        }
        msgs[i].role = r->valuestring;
        msgs[i].content = c->valuestring;
    }

    chat_template *t = NULL;
    eng_err err;
    char *prompt = NULL;
    int st = chat_open_dir(&t, model, &err);
    if (st != ENG_OK) {
        fprintf(stderr, "attnscope template: %s\n", err.msg);
        rc = st == ENG_ENOMEM ? 1 : 2;
    } else if (strcmp(chat_family(t), "none") == 0) {
        fprintf(stderr, "attnscope template: %s: %s\n", model, chat_warning(t));
        rc = 2;
    } else if ((st = chat_set_date(t, date, &err)) != ENG_OK ||
               (st = chat_render(t, msgs, (size_t)n, flags, &prompt, &err)) != ENG_OK) {
        fprintf(stderr, "attnscope template: %s: %s\n", msgs_path, err.msg);
        rc = st == ENG_ENOMEM ? 1 : 2;
    } else {
        fwrite(prompt, 1, strlen(prompt), stdout);
        if (fflush(stdout) != 0) rc = 1;
    }
    eng_free(prompt);
    chat_close(t);
    free(msgs);
    cJSON_Delete(doc);
    return rc;
}
