/* tokenizer.h - Hugging Face tokenizer.json (byte-level BPE and SentencePiece-style
 * BPE with byte fallback): encode, decode, streaming decode, vocabulary and
 * special tokens, and readable token labels for the TUI. Output is meant to be
 * identical to Hugging Face `tokenizers` on the same file. */
#ifndef ENGINE_TOKENIZER_H
#define ENGINE_TOKENIZER_H

#include "common.h"

typedef struct tokenizer tokenizer_t;
typedef struct tok_stream tok_stream_t;

/* ---- open / close ------------------------------------------------------- */

/* Opens DIR/tokenizer.json and, when present, DIR/tokenizer_config.json.
 * Every component the file declares (normalizer, pre-tokenizer, model,
 * post-processor, decoder) must be supported: an unsupported or malformed one
 * is ENG_EINPUT with one line naming the file and the component/field
 * (e.g. "tokenizer.json: pre_tokenizer: unsupported type 'BertPreTokenizer'"),
 * and so is a normalizer that makes an added token over 64 times longer
 * (+ 64 KiB): a chain of Replace steps whose content holds the pattern grows
 * text exponentially.
 * A missing tokenizer.json is ENG_EIO. On success *out owns everything; free it
 * with tok_close. On failure *out is NULL. */
int tok_open(tokenizer_t **out, const char *dir, eng_err *err);

/* The same from memory: json is tokenizer.json's text (len bytes), config is
 * tokenizer_config.json's text or NULL (config_len ignored then). Nothing is
 * borrowed after return. Used by tests and by tok_open. */
int tok_open_mem(tokenizer_t **out, const char *json, size_t len,
                 const char *config, size_t config_len, eng_err *err);

void tok_close(tokenizer_t *t);                 /* accepts NULL */

/* ---- encode / decode ---------------------------------------------------- */

/* Encodes len bytes of UTF-8 text (need not be NUL-terminated; invalid UTF-8
 * is ENG_EINPUT, and so is a normalizer output over 64 times the text + 64 KiB). Added/special tokens are matched in the text first, as HF
 * does; the rest goes through normalizer -> pre-tokenizer -> BPE.
 * add_special applies the file's post-processor (TemplateProcessing: e.g. BOS
 * for Llama 2; a ByteLevel post-processor adds nothing), exactly like
 * HF `Tokenizer.encode(text, add_special_tokens=True)`.
 * On success *ids is a new array of *n ids that the caller frees with eng_free
 * (non-NULL even when *n is 0). On failure *ids is NULL and *n is 0.
 * Not safe to call concurrently on one tokenizer (it keeps a word cache). */
int tok_encode(tokenizer_t *t, const char *text, size_t len, bool add_special,
               int **ids, size_t *n, eng_err *err);

/* Decodes n ids to UTF-8 through the file's decoder, like HF
 * `Tokenizer.decode(ids, skip_special_tokens)`: byte sequences that are not
 * valid UTF-8 become U+FFFD; ids outside the vocabulary are skipped; with
 * skip_special, special added tokens are left out.
 * On success *text is a new NUL-terminated string (free with eng_free) of
 * *len bytes (len may be NULL). */
int tok_decode(const tokenizer_t *t, const int *ids, size_t n, bool skip_special,
               char **text, size_t *len, eng_err *err);

/* ---- streaming decode --------------------------------------------------- */

/* A streaming decoder for generated tokens, with HF `DecodeStream` semantics:
 * push one id at a time and get the text that became printable. A token that
 * ends inside a UTF-8 sequence yields nothing until the sequence completes;
 * bytes that can never complete come out as U+FFFD once a later character
 * follows. The outputs are exactly those of HF's DecodeStream.step (an
 * empty output where HF returns None). The stream borrows t (t must outlive it). */
int tok_stream_new(tok_stream_t **out, const tokenizer_t *t, bool skip_special, eng_err *err);
void tok_stream_free(tok_stream_t *s);          /* accepts NULL */
void tok_stream_reset(tok_stream_t *s);         /* forget all pushed ids */

/* Pushes id. *text and *len receive the newly printable bytes (possibly 0 bytes:
 * *len == 0, *text points to ""); the bytes are NUL-terminated and stay
 * valid until the next push, reset or free. An id outside the vocabulary is
 * ENG_ERANGE and changes nothing. */
int tok_stream_push(tok_stream_t *s, int id, const char **text, size_t *len, eng_err *err);

/* ---- vocabulary and special tokens -------------------------------------- */

/* Number of ids: max(vocab id, added token id) + 1. */
int tok_vocab_size(const tokenizer_t *t);

/* The token's string as stored in tokenizer.json (e.g. "Ġthe", "▁the",
 * "<0x0A>", "<|im_end|>"), or NULL for an id out of range or unassigned.
 * Borrowed from t. */
const char *tok_id_to_token(const tokenizer_t *t, int id);

/* The id of a vocabulary or added token by its exact stored string (e.g.
 * "<|im_end|>", "<s>", "Ġthe"), or -1. */
int tok_token_to_id(const tokenizer_t *t, const char *token);

/* True for added tokens marked "special": true (e.g. <s>, <|im_end|>). */
bool tok_is_special(const tokenizer_t *t, int id);

/* BOS/EOS ids from tokenizer_config.json (bos_token / eos_token, given as a
 * string or as {"content": ...}), or -1 when absent/null or not in the
 * vocabulary. */
int tok_bos_id(const tokenizer_t *t);
int tok_eos_id(const tokenizer_t *t);

/* Whether BOS/EOS are prepended/appended to an encoding: tokenizer_config's
 * add_bos_token / add_eos_token when given; otherwise whether the
 * post-processor (TemplateProcessing "single") puts the BOS / EOS id there. */
bool tok_add_bos(const tokenizer_t *t);
bool tok_add_eos(const tokenizer_t *t);

/* ---- labels for display ------------------------------------------------- */

/* Writes a short readable label for token id into buf (always NUL-terminated
 * when cap > 0): the token's decoded text, with a leading/inner space shown
 * as "␣" (for "Ġ" and "▁" too), byte tokens like <0x0A> as their byte
 * ("\n"), control characters escaped as \n \t \r or \xNN, invalid/partial
 * UTF-8 bytes as \xNN, special tokens as stored ("<|im_end|>"). Truncated to
 * at most max_cols terminal columns (wide CJK counts 2), ending with "…" when
 * cut. Unknown ids give "<?id>". Returns the number of columns used. */
int tok_label(const tokenizer_t *t, int id, char *buf, size_t cap, int max_cols);

#endif
