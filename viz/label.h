/* label.h - short readable token labels for axes and the token view: BPE
 * markers (GPT-2 byte-level "Ġ"/"Ċ", SentencePiece "▁", <0xNN> byte tokens)
 * turned into what they mean, spaces and control characters made visible. */
#ifndef VIZ_LABEL_H
#define VIZ_LABEL_H

#include <stddef.h>

/* Writes a label for the stored token string raw into buf (cap bytes, always
 * NUL-terminated when cap > 0), at most max_cols terminal columns, ending
 * with "…" when cut (max_cols >= 1).
 * - A string made only of GPT-2 byte-level characters is mapped back to its
 *   bytes ("Ġthe" -> " the", "Ã©" -> "é"); one containing "▁" is
 *   SentencePiece ("▁the" -> " the"); "<0x0A>" is the byte 0x0A.
 * - Then a space shows as "␣", a newline as "↵", a tab as "→", other control
 *   bytes and bytes that are not valid UTF-8 as "·".
 * - Special tokens ("<|im_end|>", "<s>") are kept as written.
 * Returns the columns used. */
int viz_label(const char *raw, char *buf, size_t cap, int max_cols);

/* The same for text that is already decoded (no BPE markers): only the
 * visible-whitespace and truncation rules apply. */
int viz_label_text(const char *text, char *buf, size_t cap, int max_cols);

#endif
