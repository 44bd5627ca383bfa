/* label.c - readable token labels from stored BPE token strings. */
#include <stdint.h>
#include <string.h>

#include "grid.h"
#include "label.h"

/* GPT-2's byte-to-unicode table: printable Latin-1 bytes map to themselves,
 * the other 68 bytes (0-32, 127-160, 173) to U+0100 onward, in byte order. */
static int byte_level_to_byte(uint32_t cp)
{
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
        return (int)cp;
    if (cp < 256 || cp > 0x143) return -1;
    int k = (int)(cp - 256);
    for (int b = 0; b < 256; b++) {
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) continue;
        if (k-- == 0) return b;
    }
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes raw's BPE markers into bytes (at most cap - 1, NUL-terminated). */
static void unmark(const char *raw, char *out, size_t cap)
{
    size_t n = strlen(raw), o = 0;
    if (cap == 0) return;
    /* <0xNN> byte token */
    if (n == 6 && raw[0] == '<' && raw[1] == '0' && raw[2] == 'x' && raw[5] == '>' &&
        hexval(raw[3]) >= 0 && hexval(raw[4]) >= 0) {
        if (cap >= 2) { out[0] = (char)(hexval(raw[3]) * 16 + hexval(raw[4])); o = 1; }
        out[o] = '\0';
        return;
    }
    bool sp = strstr(raw, "\xe2\x96\x81") != NULL;   /* U+2581 */
    bool special = n >= 3 && raw[0] == '<' && raw[n - 1] == '>';
    bool bytelevel = !sp && !special;
    if (bytelevel) {   /* every character must belong to the byte-level alphabet */
        const char *s = raw;
        int left = (int)n;
        while (left > 0) {
            uint32_t cp;
            int k = viz_utf8_decode(s, left, &cp);
            if (byte_level_to_byte(cp) < 0) { bytelevel = false; break; }
            s += k; left -= k;
        }
    }
    const char *s = raw;
    int left = (int)n;
    while (left > 0 && o + 4 < cap) {
        uint32_t cp;
        int k = viz_utf8_decode(s, left, &cp);
        if (bytelevel) {
            out[o++] = (char)byte_level_to_byte(cp);
        } else if (sp && cp == 0x2581) {
            out[o++] = ' ';
        } else {
            memcpy(out + o, s, (size_t)k);
            o += (size_t)k;
        }
        s += k; left -= k;
    }
    out[o] = '\0';
}

int viz_label_text(const char *text, char *buf, size_t cap, int max_cols)
{
    if (cap == 0) return 0;
    if (max_cols < 1) { buf[0] = '\0'; return 0; }
    /* Render every character first, then cut to max_cols with an ellipsis. */
    char tmp[512];
    int cols[128], ends[128], nc = 0;
    size_t o = 0;
    const char *s = text;
    int left = (int)strlen(text);
    while (left > 0 && nc < 128 && o + 8 < sizeof tmp) {
        uint32_t cp;
        int k = viz_utf8_decode(s, left, &cp);
        if (cp == 0xFFFD && !(k == 3 && (unsigned char)s[0] == 0xEF)) cp = 0xB7;   /* invalid byte */
        s += k; left -= k;
        if (cp == ' ') cp = 0x2423;            /* ␣ */
        else if (cp == '\n') cp = 0x21B5;      /* ↵ */
        else if (cp == '\t') cp = 0x2192;      /* → */
        else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) cp = 0xB7;   /* · */
        int w = viz_cp_width(cp);
        if (w == 0) continue;   /* combining marks and the like: leave out */
        o += (size_t)viz_utf8_encode(cp, tmp + o);
        cols[nc] = w; ends[nc] = (int)o; nc++;
    }
    tmp[o] = '\0';
    int total = 0;
    for (int i = 0; i < nc; i++) total += cols[i];
    bool truncated = left > 0;
    if (total <= max_cols && !truncated) {
        size_t m = o < cap - 1 ? o : cap - 1;
        memcpy(buf, tmp, m);
        buf[m] = '\0';
        return total;
    }
    /* keep characters that fit in max_cols - 1, then "…" */
    int used = 0, keep = 0;
    while (keep < nc && used + cols[keep] <= max_cols - 1) used += cols[keep++];
    size_t bytes = keep ? (size_t)ends[keep - 1] : 0;
    if (bytes + 4 > cap) { buf[0] = '\0'; return 0; }
    memcpy(buf, tmp, bytes);
    memcpy(buf + bytes, "\xe2\x80\xa6", 4);   /* … and the NUL */
    return used + 1;
}

int viz_label(const char *raw, char *buf, size_t cap, int max_cols)
{
    char bytes[256];
    unmark(raw ? raw : "", bytes, sizeof bytes);
    return viz_label_text(bytes, buf, cap, max_cols);
}
