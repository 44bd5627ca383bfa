/* chat.h - chat templates by family, rendered in C (no Jinja engine): detects
 * the family from tokenizer_config.json's chat_template text and renders a
 * list of messages into exactly the prompt transformers' apply_chat_template
 * would produce for it. */
#ifndef ENGINE_CHAT_H
#define ENGINE_CHAT_H

#include "common.h"

typedef struct chat_template chat_template;

/* One message. role is "system", "user" or "assistant"; content is UTF-8.
 * Both are borrowed for the duration of the call. */
typedef struct {
    const char *role;
    const char *content;
} chat_msg;

/* Flags for chat_render. */
enum {
    CHAT_GEN_PROMPT   = 1 << 0,  /* add_generation_prompt=True: open the assistant turn */
    CHAT_NO_THINKING  = 1 << 1,  /* Qwen3: enable_thinking=False (an empty think block
                                    after the generation prompt); ignored elsewhere */
};

/* Opens the template of a Hugging Face model folder: reads DIR/tokenizer_config.json
 * (chat_template, bos_token, eos_token; chat_template may also be the newer
 * list-of-{name,template} form, of which "default" is used, or the separate
 * file DIR/chat_template.jinja). A folder whose config has no chat_template, or
 * a template no family matches, still opens: family "none" with a warning
 * (chat_warning), and the caller falls back to plain completion.
 * Returns ENG_OK and sets *out (free with chat_close); ENG_EIO when the file
 * cannot be read, ENG_EINPUT when it is not valid JSON or a field has the wrong
 * type, ENG_ENOMEM; on failure *out is NULL and err names the file and field. */
int chat_open_dir(chat_template **out, const char *dir, eng_err *err);

/* Same from the template text itself and the bos/eos token strings (any of
 * them may be NULL: NULL template = family "none"; NULL bos/eos = ""). The
 * strings are copied. */
int chat_open(chat_template **out, const char *template_text, const char *bos,
              const char *eos, eng_err *err);

void chat_close(chat_template *t);      /* accepts NULL */

/* The detected family: "chatml" (Qwen2/2.5, SmolLM2 and plain ChatML, with
 * the template's default system prompt if it has one), "qwen3", "llama3"
 * (Llama 3 8B's short template), "llama3.1" (the 3.1/3.2 template with the
 * "Cutting Knowledge Date" system header), "llama2", "mistral" ([INST] v0.1 /
 * Mixtral), "mistral-v3" (v3 and v3-tekken: the system prompt goes into the
 * last user turn), "mistral-v7" ([SYSTEM_PROMPT]), "zephyr", "phi3", "gemma",
 * "gemma3" (system prompt prefixed to the first turn), or "none". Valid until
 * chat_close. */
const char *chat_family(const chat_template *t);

/* NULL when the template is fully supported; otherwise one line saying why
 * rendering falls back (unknown template) or what is approximated. */
const char *chat_warning(const chat_template *t);

/* The date the Llama 3.1/3.2 system header shows ("26 Jul 2024" form). By
 * default it is what the template itself would use under transformers: its
 * fixed date, or today's local date where the template calls strftime_now.
 * Passing a date here is transformers' date_string=... argument; NULL goes
 * back to the default. Copied; ENG_ENOMEM on failure. */
int chat_set_date(chat_template *t, const char *date, eng_err *err);

/* The end-of-turn strings generation must stop at (e.g. "<|im_end|>",
 * "<|eot_id|>", "</s>", "<end_of_turn>"), as a NULL-terminated array owned by
 * t; *n (if not NULL) receives the count. Empty for family "none". */
const char *const *chat_stop_strings(const chat_template *t, int *n);

/* Renders msgs[0..n) into the prompt text, BOS string included where the
 * template writes it (tokenize it without adding special tokens again).
 * flags: CHAT_GEN_PROMPT, CHAT_NO_THINKING. On ENG_OK *out is a NUL-terminated
 * string the caller frees with eng_free. Errors: ENG_EINPUT for family "none",
 * an unknown role, a role order the real template rejects (e.g. Llama 2 and
 * Mistral require user/assistant alternation and raise an exception), or
 * NULL fields; ENG_ENOMEM. */
int chat_render(const chat_template *t, const chat_msg *msgs, size_t n, unsigned flags,
                char **out, eng_err *err);

#endif
