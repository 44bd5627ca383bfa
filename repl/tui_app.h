/* tui_app.h - the TUI's state, shared by the event loop (tui.c) and the pane
 * drawing (tui_draw.c). Private to repl/. */
#ifndef REPL_TUI_APP_H
#define REPL_TUI_APP_H

#include <stdbool.h>
#include <stddef.h>

#include "engine.h"
#include "slash.h"
#include "tui.h"
#include "color.h"
#include "grid.h"
#include "heatmap.h"
#include "layout.h"

typedef enum { MSG_USER = 0, MSG_MODEL, MSG_INFO, MSG_ERROR } tui_msg_kind;

typedef struct {
    tui_msg_kind kind;
    char *text;              /* UTF-8, NUL-terminated */
    size_t len, cap;
    int *ids;                /* token ids (token view); user turns are tokenized on entry */
    int n_ids, ids_cap;
} tui_msg;

/* Every layer's attention rows kept across evals, so the heatmap shows the
 * whole conversation: rows[l] holds, for query q, n_heads rows of q + 1
 * keys at offset n_heads * q (q + 1) / 2. */
typedef struct {
    int n_layers, n_heads, n_kv_heads;
    int n;                   /* query rows held (0 .. n-1) */
    int cap;                 /* rows allocated */
    float **rows;
    bool full;               /* stopped growing at the memory cap */
} tui_attn;

/* One reply's decode latencies, for the timings pane. */
typedef struct {
    bool valid;
    bool cache;
    float *ms;               /* per decoded token (the first token excluded: it is TTFT) */
    int n, cap;
    double prefill_ms, ttft_ms, decode_ms;
    int prefill_tokens, gen_tokens;
} tui_run_stats;

typedef enum { VIEW_HEAD = 0, VIEW_GRID } tui_attn_view;

typedef struct tui_app {
    const tui_opts *opts;
    conv_t *conv;
    slash_ctx sctx;
    char model_dir[1024];

    /* screen */
    viz_grid grid;
    viz_depth depth;
    const viz_theme *theme;
    viz_layout L;
    int w, h;
    viz_pane focus;          /* CHAT means the input line has the keys */
    viz_pane fold;           /* the side pane shown when folded */
    bool help;               /* the help overlay is open */
    int help_scroll;
    bool dirty;
    double last_draw_ms;
    double last_draw_cost;   /* ms the last frame took */
    int cur_x, cur_y;        /* where the terminal cursor goes */

    /* chat */
    tui_msg *msgs;
    int n_msgs, msgs_cap;
    int scroll;              /* lines scrolled back from the bottom */
    bool token_view;

    /* generation */
    bool generating;
    bool step_mode;
    int cand_sel;            /* step mode: the candidate row picked with the arrows */
    int compare_phase;       /* /compare: 0 off, 1 cache on, 2 cache off */
    bool compare_saved_cache;
    int reply_msg;           /* index of the model message being written, -1 */
    double gen_start_ms;
    int gen_tokens;
    double live_tok_s;
    bool quit;

    /* attention */
    tui_attn attn;
    char (*labels)[24];      /* readable label per context position */
    int n_labels, labels_cap;
    int layer, head;         /* head -1 = all heads averaged */
    tui_attn_view view;
    int cur_q, cur_k;        /* heatmap cursor, -1 = follow the newest token */
    viz_heat_info heat;      /* where the last frame drew the heatmap (mouse clicks) */
    bool heat_drawn;
    bool observe;

    /* timings */
    tui_run_stats last[2];   /* [0] last reply with the cache off, [1] with it on */

    /* overhead accounting (ATTNSCOPE_TUI_STATS=FILE appends one line per reply) */
    double first_tok_ms;     /* wall clock when the reply's first token arrived */
    double draw_ms;          /* time spent drawing during the reply */
    double capture_ms;       /* time spent copying attention rows during the reply */
    int frames;
} tui_app;

/* tui_draw.c: renders the whole screen into app->grid and sets cur_x/cur_y. */
void tui_draw(tui_app *app);

/* Attention of layer l, head h (or averaged when h < 0), query q, key k <= q. */
float tui_attn_get(const tui_attn *a, int l, int h, int q, int k);

#endif
