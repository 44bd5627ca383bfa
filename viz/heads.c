/* heads.c - sink, previous-token, self and induction scores of a head. */
#include <stddef.h>

#include "heads.h"

void viz_prev_occurrence(const int *tokens, int n, int *out)
{
    for (int q = 0; q < n; q++) {
        out[q] = -1;
        int stop = q - 1024 > 0 ? q - 1024 : 0;
        for (int j = q - 3; j >= stop; j--)
            if (tokens[j] == tokens[q]) { out[q] = j; break; }
    }
}

void viz_head_score(viz_attn_fn at, const void *ctx, int n, const int *prev_occ, int max_q,
                    viz_head_scores *out)
{
    *out = (viz_head_scores){0};
    if (n < 2) return;
    int q0 = n - max_q;
    if (max_q <= 0 || q0 < 1) q0 = 1;
    double sink = 0, prev = 0, self = 0, ind = 0;
    for (int q = q0; q < n; q++) {
        sink += at(ctx, q, 0);
        prev += at(ctx, q, q - 1);
        self += at(ctx, q, q);
        if (prev_occ && prev_occ[q] >= 0) {
            ind += at(ctx, q, prev_occ[q] + 1);
            out->n_induction++;
        }
        out->n_queries++;
    }
    out->sink = (float)(sink / out->n_queries);
    out->prev = (float)(prev / out->n_queries);
    out->self = (float)(self / out->n_queries);
    out->induction = out->n_induction ? (float)(ind / out->n_induction) : 0.0f;
}

const char *viz_head_kind(const viz_head_scores *s, float *score)
{
    const char *kind = NULL;
    float best = 0.4f;
    if (s->n_induction >= 3 && s->induction >= best) { kind = "induction"; best = s->induction; }
    if (s->prev > best) { kind = "prev-token"; best = s->prev; }
    if (s->sink > best) { kind = "sink"; best = s->sink; }
    if (s->self > best) { kind = "self"; best = s->self; }
    if (score) *score = kind ? best : 0.0f;
    return kind;
}
