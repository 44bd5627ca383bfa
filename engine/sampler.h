/* sampler.h - turns a logits vector into the next token: repetition penalty ->
 * presence/frequency penalties -> temperature -> top-k -> top-p -> min-p ->
 * a seeded draw, and reports each stage's probabilities for the step taken. */
#ifndef ENGINE_SAMPLER_H
#define ENGINE_SAMPLER_H

#include "common.h"

typedef struct {
    float temperature;       /* 0 = argmax (greedy); default 0.7 */
    int top_k;               /* keep the k most likely; 0 = off; default 50 */
    float top_p;             /* nucleus mass in (0, 1]; 1 = off; default 0.9 */
    float min_p;             /* keep p >= min_p * p_max, [0, 1]; 0 = off; default 0 */
    float repeat_penalty;    /* HF semantics, > 0; 1 = off; default 1.1 */
    int penalty_last_n;      /* window of recent tokens the penalties look at; default 64 */
    float presence_penalty;  /* subtracted once from a token seen in the window; default 0 */
    float frequency_penalty; /* subtracted per occurrence in the window; default 0 */
    uint64_t seed;           /* default 0 */
} sampler_params;

/* The stages, in the order they run. The report carries the probability of
 * each candidate after each stage (softmax of the logits as they stand then;
 * 0 for a token a filter has removed). */
enum {
    SAMPLER_ST_RAW = 0,      /* softmax of the model's logits */
    SAMPLER_ST_REPEAT,       /* after the repetition penalty */
    SAMPLER_ST_PRESENCE,     /* after presence/frequency penalties */
    SAMPLER_ST_TEMP,         /* after temperature */
    SAMPLER_ST_TOPK,
    SAMPLER_ST_TOPP,
    SAMPLER_ST_MINP,         /* the distribution the draw uses */
    SAMPLER_NSTAGES
};

#define SAMPLER_MAX_CANDS 16

typedef struct {
    int token;
    float logit;                    /* the model's raw logit */
    float prob[SAMPLER_NSTAGES];    /* probability after each stage */
} sampler_cand;

typedef struct {
    int n_cands;                    /* candidates filled */
    sampler_cand cands[SAMPLER_MAX_CANDS]; /* most likely first (after the penalties);
                                       the chosen token is always among them */
    int chosen;                     /* the token drawn (or forced), -1 before any step */
    bool forced;                    /* chosen by sampler_force, not drawn */
    bool greedy;                    /* temperature 0: argmax */
    int n_kept;                     /* tokens left after every filter */
    double u;                       /* the uniform number in [0,1) the draw used */
} sampler_report;

/* Fills p with the defaults above. */
void sampler_params_default(sampler_params *p);

/* ENG_OK when every field is in range; else ENG_EINPUT naming the field
 * (temperature < 0, top_k < 0, top_p not in (0,1], min_p not in [0,1],
 * repeat_penalty <= 0, penalty_last_n < 0, a NaN anywhere). */
int sampler_params_check(const sampler_params *p, eng_err *err);

typedef struct sampler sampler;

/* Creates a sampler for a vocabulary of n_vocab tokens with params p (checked;
 * the generator is seeded from p->seed). All buffers are allocated here: a
 * step never allocates. Free with sampler_free. ENG_EINPUT for bad params or
 * n_vocab < 1, ENG_ENOMEM. */
int sampler_new(sampler **out, int n_vocab, const sampler_params *p, eng_err *err);
void sampler_free(sampler *s);          /* accepts NULL */

/* Replaces the params (checked; on error nothing changes). The generator is
 * re-seeded only when the seed changed. Takes effect at the next step or redo. */
int sampler_set_params(sampler *s, const sampler_params *p, eng_err *err);
const sampler_params *sampler_get_params(const sampler *s);

/* Re-seeds the generator. */
void sampler_seed(sampler *s, uint64_t seed);

/* The penalties look at the tokens accepted so far (the last penalty_last_n
 * of them): accept every token that enters the context, prompt tokens
 * included, in order. Reset forgets them (a new conversation). */
void sampler_accept(sampler *s, int token);
void sampler_accept_many(sampler *s, const int *tokens, int n);
void sampler_reset(sampler *s);

/* One step: copies logits[0..n_vocab) (the caller's array is not modified),
 * runs the stages, draws, fills the report and sets *token. It does not
 * accept the token: call sampler_accept with whatever token the caller keeps.
 * ENG_EINPUT when every logit is NaN or -inf. */
int sampler_step(sampler *s, const float *logits, int *token, eng_err *err);

/* Runs the last step again on the same logits with the current params and
 * the generator state it started from (so the same uniform number is used):
 * what /temp and friends show for the current step. The penalties use the
 * tokens accepted so far, so redo before accepting the step's token.
 * ENG_ERANGE before any step. */
int sampler_redo(sampler *s, int *token, eng_err *err);

/* Marks token as chosen for the last step (a user's choice), adding it to the
 * report's candidates if it was not there. ENG_ERANGE for a token outside the
 * vocabulary or before any step. */
int sampler_force(sampler *s, int token, eng_err *err);

/* The report of the last step (or redo/force); valid until the next call on s. */
const sampler_report *sampler_last(const sampler *s);

/* Stage name for display: "raw", "repeat", "presence", "temp", "top-k",
 * "top-p", "min-p". */
const char *sampler_stage_name(int stage);

#endif
