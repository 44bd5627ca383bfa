/* heads.h - what an attention head does, from its attention pattern: how much
 * it attends to the first token (a sink), to the previous token, to itself,
 * and to the token after the previous occurrence of the current one
 * (induction, Olsson et al. 2022). For labels in the attention pane. */
#ifndef VIZ_HEADS_H
#define VIZ_HEADS_H

#include "heatmap.h"

typedef struct {
    float sink;        /* mean attention to key 0 */
    float prev;        /* mean attention to key q - 1 */
    float self;        /* mean attention to key q */
    float induction;   /* mean attention to key j + 1, j the latest earlier occurrence of token q */
    int n_queries;     /* queries averaged (the last max_q of 1 .. n-1) */
    int n_induction;   /* queries that had an earlier occurrence (with j + 1 < q - 1) */
} viz_head_scores;

/* For each position q, the latest j <= q - 3 with tokens[j] == tokens[q]
 * (looking back at most 1024 positions), or -1: the earlier occurrences an
 * induction head copies from. j + 1 < q - 1 keeps a previous-token head from
 * passing for an induction head. */
void viz_prev_occurrence(const int *tokens, int n, int *out);

/* Scores the causal pattern at() over n tokens, using the last max_q queries
 * (max_q <= 0: all; query 0 is never used: it can only attend to itself).
 * prev_occ is viz_prev_occurrence's output for the n tokens (NULL: no
 * induction score). */
void viz_head_score(viz_attn_fn at, const void *ctx, int n, const int *prev_occ, int max_q,
                    viz_head_scores *out);

/* The head's kind when one score is clear (>= 0.4 and the largest):
 * "induction" (needs 3 or more induction queries), "prev-token", "sink",
 * "self"; NULL otherwise. *score receives the winning score when not NULL. */
const char *viz_head_kind(const viz_head_scores *s, float *score);

#endif
