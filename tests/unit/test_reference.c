/* test_reference.c - the engine against transformers: for every fixture in
 * tests/fixtures/ref/ (made by tools/make_fixtures.py), logits, attention
 * probabilities and greedy continuations with the KV cache on and off. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model.h"
#include "session.h"
#include "npy.h"

#define LOGITS_REL_TOL 1e-3   /* max |logits - ref| / max |ref| */
#define ATTN_ABS_TOL   1e-4   /* max |probability - ref| */
#define MAX_IDS        4096

typedef struct {
    char name[256];
    char dir[1024];          /* the fixture folder */
    char model_dir[1024];    /* where the weights are: the fixture itself or a repo folder */
    int ids[MAX_IDS], n_ids;
    int greedy[64], n_greedy;
    npy_array logits;        /* [T, vocab] */
    npy_array attn;          /* [layers, heads, T, T] */
} fixture;

static const char *ref_root(void)
{
    const char *r = getenv("ATTNSCOPE_REF_DIR");
    return r && *r ? r : "tests/fixtures/ref";
}

/* ----------------------------------------------------------- fixture files */

static int read_ids(const cJSON *arr, int *out, int max)
{
    int n = 0;
    for (const cJSON *it = cJSON_IsArray(arr) ? arr->child : NULL; it && n < max; it = it->next)
        out[n++] = (int)it->valuedouble;
    return n;
}

static void load_fixture(fixture *fx)
{
    char p[1200], why[128];
    snprintf(p, sizeof p, "%s/ref.json", fx->dir);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fail_msg("%s: not valid JSON", p);
    fx->n_ids = read_ids(cJSON_GetObjectItem(j, "ids"), fx->ids, MAX_IDS);
    fx->n_greedy = read_ids(cJSON_GetObjectItem(j, "greedy"), fx->greedy, 64);
    const cJSON *md = cJSON_GetObjectItem(j, "model_dir");
    if (cJSON_IsString(md))
        snprintf(fx->model_dir, sizeof fx->model_dir, "%s", md->valuestring);
    else
        snprintf(fx->model_dir, sizeof fx->model_dir, "%s", fx->dir);
    cJSON_Delete(j);
    assert_true(fx->n_ids > 0);
    assert_true(fx->n_greedy > 0);

    snprintf(p, sizeof p, "%s/logits.npy", fx->dir);
    if (npy_read(p, &fx->logits, why))
        fail_msg("%s", why);
    snprintf(p, sizeof p, "%s/attn.npy", fx->dir);
    if (npy_read(p, &fx->attn, why))
        fail_msg("%s", why);
    assert_int_equal(fx->logits.ndim, 2);
    assert_int_equal(fx->logits.shape[0], fx->n_ids);
    assert_int_equal(fx->attn.ndim, 4);
    assert_int_equal(fx->attn.shape[2], fx->n_ids);
    assert_int_equal(fx->attn.shape[3], fx->n_ids);
}

/* ---------------------------------------------------------------- metrics */

typedef struct {
    double logit_err, logit_scale;   /* max |diff|, max |ref| */
    double attn_err;                 /* max |diff| */
} errs;

static void cmp_logits(errs *e, const float *got, const float *ref, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (!(d <= e->logit_err))   /* NaN counts as infinite */
            e->logit_err = isnan(d) ? INFINITY : d;
        if (fabs(ref[i]) > e->logit_scale)
            e->logit_scale = fabs(ref[i]);
    }
}

/* Compares the observer's rows of the last eval with the reference rows. */
static void cmp_attn(errs *e, const fixture *fx, const session_t *s)
{
    const int64_t L = fx->attn.shape[0], H = fx->attn.shape[1], T = fx->n_ids;
    for (int l = 0; l < L; l++) {
        int q0, nq, nk;
        const float *a = session_attn(s, l, &q0, &nq, &nk);
        assert_non_null(a);
        assert_true(q0 >= 0 && q0 + nq <= T && nk <= T && q0 + nq == nk);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < nq; i++)
                for (int j = 0; j < nk; j++) {
                    float got = a[((size_t)h * nq + i) * nk + j];
                    float ref = fx->attn.data[(((size_t)l * H + h) * T + q0 + i) * T + j];
                    double d = fabs((double)got - ref);
                    if (!(d <= e->attn_err))
                        e->attn_err = isnan(d) ? INFINITY : d;
                }
    }
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

/* ------------------------------------------------------------------ runs */

static session_t *new_session(const model_t *m, const fixture *fx, bool cache)
{
    session_t *s = NULL;
    eng_err e = {{0}};
    int rc = session_new(&s, m, fx->n_ids + fx->n_greedy + 1, 2, &e);
    if (rc)
        fail_msg("%s: session_new: %s", fx->name, e.msg);
    session_set_cache(s, cache);
    session_set_observe(s, true);
    return s;
}

static void eval(session_t *s, const fixture *fx, const int *ids, int n, float *all)
{
    eng_err e = {{0}};
    int rc = session_eval(s, ids, n, all, &e);
    if (rc)
        fail_msg("%s: session_eval: %s", fx->name, e.msg);
}

/* The whole prompt in one eval (prefill with the cache on, one full pass with
 * it off): every row of logits and attention. */
static errs run_whole(const model_t *m, const fixture *fx, bool cache)
{
    errs e = {0};
    const size_t V = (size_t)m->cfg.vocab_size;
    float *all = malloc((size_t)fx->n_ids * V * sizeof *all);
    session_t *s = new_session(m, fx, cache);
    eval(s, fx, fx->ids, fx->n_ids, all);
    cmp_logits(&e, all, fx->logits.data, (size_t)fx->n_ids * V);
    cmp_attn(&e, fx, s);
    session_free(s);
    free(all);
    return e;
}

/* One token at a time: decode steps with the cache on; with it off each step
 * re-runs the whole context. */
static errs run_stepwise(const model_t *m, const fixture *fx, bool cache)
{
    errs e = {0};
    const size_t V = (size_t)m->cfg.vocab_size;
    session_t *s = new_session(m, fx, cache);
    for (int t = 0; t < fx->n_ids; t++) {
        eval(s, fx, &fx->ids[t], 1, NULL);
        cmp_logits(&e, session_logits(s), fx->logits.data + (size_t)t * V, V);
        cmp_attn(&e, fx, s);
    }
    session_free(s);
    return e;
}

static void run_greedy(const model_t *m, const fixture *fx, bool cache, int *out)
{
    session_t *s = new_session(m, fx, cache);
    session_set_observe(s, false);
    eval(s, fx, fx->ids, fx->n_ids, NULL);
    for (int i = 0; i < fx->n_greedy; i++) {
        out[i] = argmax(session_logits(s), m->cfg.vocab_size);
        if (i + 1 < fx->n_greedy)
            eval(s, fx, &out[i], 1, NULL);
    }
    session_free(s);
}

static void check(const fixture *fx, const char *what, errs e)
{
    double rel = e.logit_scale > 0 ? e.logit_err / e.logit_scale : INFINITY;
    print_message("ref %s %s: logits max rel err %.2e, attention max abs err %.2e\n",
                  fx->name, what, rel, e.attn_err);
    if (!(rel <= LOGITS_REL_TOL))
        fail_msg("%s %s: logits rel err %.3e > %.0e", fx->name, what, rel, LOGITS_REL_TOL);
    if (!(e.attn_err <= ATTN_ABS_TOL))
        fail_msg("%s %s: attention abs err %.3e > %.0e", fx->name, what, e.attn_err, ATTN_ABS_TOL);
}

static void matches_transformers(void **state)
{
    fixture *fx = *state;
    load_fixture(fx);
    struct stat sb;
    if (stat(fx->model_dir, &sb) != 0)
        fail_msg("%s: model folder %s not found", fx->name, fx->model_dir);
    model_t *m = NULL;
    eng_err e = {{0}};
    if (model_open(&m, fx->model_dir, &e))
        fail_msg("%s: model_open: %s", fx->name, e.msg);
    assert_int_equal(fx->logits.shape[1], m->cfg.vocab_size);
    assert_int_equal(fx->attn.shape[0], m->cfg.n_layers);
    assert_int_equal(fx->attn.shape[1], m->cfg.n_heads);

    check(fx, "prefill, cache on", run_whole(m, fx, true));
    check(fx, "one pass, cache off", run_whole(m, fx, false));
    check(fx, "token by token, cache on", run_stepwise(m, fx, true));
    check(fx, "token by token, cache off", run_stepwise(m, fx, false));

    int on[64], off[64];
    run_greedy(m, fx, true, on);
    run_greedy(m, fx, false, off);
    for (int i = 0; i < fx->n_greedy; i++) {
        if (on[i] != fx->greedy[i] || off[i] != fx->greedy[i])
            fail_msg("%s: greedy id %d: cache on %d, cache off %d, transformers %d",
                     fx->name, i, on[i], off[i], fx->greedy[i]);
    }
    print_message("ref %s: %d greedy ids equal with the cache on and off\n", fx->name, fx->n_greedy);
    model_close(m);
    npy_free(&fx->logits);
    npy_free(&fx->attn);
}

static void no_fixtures_yet(void **state)
{
    (void)state;
    print_message("%s: no reference fixtures (made by tools/make_fixtures.py); skipped\n", ref_root());
    skip();
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const fixture *)a)->name, ((const fixture *)b)->name);
}

int main(void)
{
    const char *root = ref_root();
    fixture *fx = calloc(256, sizeof *fx);
    int n = 0;
    DIR *d = opendir(root);
    for (struct dirent *de; d && n < 256 && (de = readdir(d));) {
        if (de->d_name[0] == '.')
            continue;
        char p[1200];
        struct stat sb;
        snprintf(p, sizeof p, "%s/%s/ref.json", root, de->d_name);
        if (stat(p, &sb) != 0)
            continue;
        snprintf(fx[n].name, sizeof fx[n].name, "%s", de->d_name);
        snprintf(fx[n].dir, sizeof fx[n].dir, "%s/%s", root, de->d_name);
        n++;
    }
    if (d)
        closedir(d);
    qsort(fx, (size_t)n, sizeof *fx, by_name);

    struct CMUnitTest *tests = calloc((size_t)n + 1, sizeof *tests);
    char (*names)[300] = calloc((size_t)n + 1, sizeof *names);
    for (int i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s_matches_transformers", fx[i].name);
        tests[i] = (struct CMUnitTest){.name = names[i], .test_func = matches_transformers,
                                       .initial_state = &fx[i]};
    }
    if (n == 0)
        tests[n++] = (struct CMUnitTest){.name = "reference_fixtures_exist", .test_func = no_fixtures_yet};
    int rc = _cmocka_run_group_tests("reference", tests, (size_t)n, NULL, NULL);
    free(tests);
    free(names);
    free(fx);
    return rc;
}
