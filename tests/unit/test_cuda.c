/* test_cuda.c - the CUDA backend against the CPU backend (synthetic models,
 * prefill, decode, cache off, observer rows, a device switch mid-context)
 * and against the transformers fixtures in tests/fixtures/ref/ (or
 * $ATTNSCOPE_REF_DIR) when present. Skips with a message in a build without
 * CUDA (make CUDA=1) or on a machine without a CUDA device. */
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

#include "model.h"
#include "session.h"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"   /* npy.h's messages cut long paths on purpose */
#include "npy.h"
#pragma GCC diagnostic pop

#ifdef ATTNSCOPE_CUDA
#include "cuda/cuda.h"

#define F32_TOL  1e-4   /* ||got - ref|| / ||ref|| for f32 weights */
#define BF16_TOL 1e-2   /* the same for bf16/f16 weights */

static double rel_l2(const float *got, const float *ref, size_t n)
{
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - ref[i];
        d += e * e;
        r += (double)ref[i] * ref[i];
    }
    if (isnan(d))
        return INFINITY;
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

static int argmax(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

static session_t *open_on(const model_t *m, int max_seq, const char *device)
{
    session_t *s = NULL;
    eng_err e = {{0}};
    if (session_new(&s, m, max_seq, 2, &e) != ENG_OK)
        fail_msg("session_new: %s", e.msg);
    if (session_set_device(s, device, 2, &e) != ENG_OK)
        fail_msg("session_set_device(%s): %s", device, e.msg);
    assert_string_equal(session_device(s), device);
    return s;
}

static void eval_ok(session_t *s, const int *ids, int n, float *all)
{
    eng_err e = {{0}};
    int rc = session_eval(s, ids, n, all, &e);
    if (rc != ENG_OK)
        fail_msg("session_eval (%s): %s", session_device(s), e.msg);
}

static void prompt_ids(int *ids, int n, int vocab)
{
    uint64_t st = 12345;
    for (int i = 0; i < n; i++) {
        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
        ids[i] = (int)((st >> 33) % (uint64_t)vocab);
    }
}

/* Prefill of P tokens (all rows of logits), then G greedy decode steps on
 * both devices: logits within tol at every step, the same ids (f32). */
static void compare_devices(const char *name, eng_dtype dt, int P, int G, bool cache, double tol)
{
    model_t *m = NULL;
    eng_err e = {{0}};
    if (model_synthetic(&m, name, dt, 1, &e) != ENG_OK)
        fail_msg("model_synthetic %s: %s", name, e.msg);
    int V = m->cfg.vocab_size;
    session_t *cpu = open_on(m, P + G + 1, "cpu"), *gpu = open_on(m, P + G + 1, "cuda");
    session_set_cache(cpu, cache);
    session_set_cache(gpu, cache);
    int *ids = malloc((size_t)P * sizeof *ids);
    float *a = malloc((size_t)P * V * sizeof *a), *b = malloc((size_t)P * V * sizeof *b);
    assert_non_null(ids);
    assert_non_null(a);
    assert_non_null(b);
    prompt_ids(ids, P, V);
    eval_ok(cpu, ids, P, a);
    eval_ok(gpu, ids, P, b);
    double err = rel_l2(b, a, (size_t)P * V);
    printf("  %s %s cache %s: prefill %d rows rel L2 %.3g\n", name, dtype_name(dt), cache ? "on" : "off", P, err);
    assert_true(err <= tol);
    for (int g = 0; g < G; g++) {
        int tc = argmax(session_logits(cpu), V), tg = argmax(session_logits(gpu), V);
        const float *lc = session_logits(cpu);
        if (dt == DT_F32 && tc != tg && !(fabsf(lc[tc] - lc[tg]) <= 1e-5f * fabsf(lc[tc])))   /* not a near tie */
            fail_msg("%s: decode step %d: greedy id cpu %d cuda %d", name, g, tc, tg);
        eval_ok(cpu, &tc, 1, NULL);
        eval_ok(gpu, &tc, 1, NULL);   /* the CPU's id on both: errors cannot compound */
        err = rel_l2(session_logits(gpu), session_logits(cpu), (size_t)V);
        if (!(err <= tol))
            fail_msg("%s: decode step %d rel L2 %.3g > %.1g", name, g, err, tol);
    }
    free(ids);
    free(a);
    free(b);
    session_free(cpu);
    session_free(gpu);
    model_close(m);
}

static int skip_without_device(void)
{
    eng_err e = {{0}};
    if (cuda_probe(&e) != ENG_OK) {
        printf("test_cuda: skipped: %s\n", e.msg);
        return 1;
    }
    return 0;
}

static void tiny_f32_prefill_and_decode_match_the_cpu(void **state)
{
    (void)state;
    compare_devices("tiny", DT_F32, 37, 8, true, F32_TOL);
}

static void tiny_bf16_prefill_and_decode_match_the_cpu(void **state)
{
    (void)state;
    compare_devices("tiny", DT_BF16, 37, 8, true, BF16_TOL);
}

static void tiny_f16_with_the_cache_off_matches_the_cpu(void **state)
{
    (void)state;
    compare_devices("tiny", DT_F16, 20, 4, false, BF16_TOL);
}

static void a_prefill_longer_than_one_chunk_matches_the_cpu(void **state)
{
    (void)state;
    compare_devices("tiny", DT_F32, 700, 2, true, F32_TOL);
}

static void qwen_shaped_models_match_the_cpu(void **state)
{
    (void)state;
    compare_devices("tiny-qwen2", DT_F32, 19, 4, true, F32_TOL);
    compare_devices("tiny-qwen3", DT_BF16, 19, 4, true, BF16_TOL);
    compare_devices("tiny-llama3", DT_F32, 19, 4, true, F32_TOL);
}

/* The CPU comparisons above with one decode path switched on or off by
 * setting var to val (including a context long enough for attention over
 * many blocks); cuda_launches(path) counts how often a path ran: it must
 * have run (runs) or not at all (!runs). */
static void compare_with_switch(const char *var, const char *val, const char *path, bool runs)
{
    long before = cuda_launches(path);
    assert_true(before >= 0);
    setenv(var, val, 1);
    compare_devices("tiny", DT_F32, 37, 8, true, F32_TOL);
    compare_devices("tiny", DT_BF16, 37, 8, true, BF16_TOL);
    compare_devices("tiny", DT_F32, 700, 4, true, F32_TOL);
    compare_devices("tiny-qwen2", DT_F32, 19, 4, true, F32_TOL);
    compare_devices("tiny-qwen3", DT_BF16, 19, 4, true, BF16_TOL);
    unsetenv(var);
    long ran = cuda_launches(path) - before;
    printf("  %s=%s: %s ran %ld times\n", var, val, path, ran);
    if (runs)
        assert_true(ran >= 5);
    else
        assert_int_equal(ran, 0);
}

/* The persistent decode kernel (opt-in). */
static void the_persistent_step_kernel_matches_the_cpu(void **state)
{
    (void)state;
    compare_with_switch("ATTNSCOPE_CUDA_STEP", "1", "step", true);
}

/* The warp-specialized ring matvec (opt-in), every matrix kind through it. */
static void the_ring_matvec_matches_the_cpu(void **state)
{
    (void)state;
    compare_with_switch("ATTNSCOPE_CUDA_MV", "mvr", "mvr", true);
}

/* All rows of logits after a P-token prompt on the GPU, the environment
 * variable var set to val (or left as it is: var NULL). */
static float *gpu_prefill_logits(const model_t *m, int P, const char *var, const char *val)
{
    int V = m->cfg.vocab_size, *ids = malloc((size_t)P * sizeof *ids);
    float *out = malloc((size_t)P * V * sizeof *out);
    assert_non_null(ids);
    assert_non_null(out);
    prompt_ids(ids, P, V);
    if (var)
        setenv(var, val, 1);
    session_t *s = open_on(m, P + 1, "cuda");
    eval_ok(s, ids, P, out);
    session_free(s);
    if (var)
        unsetenv(var);
    free(ids);
    return out;
}

/* Prefill attention on tensor cores (f16 inputs, f32 accumulation; the
 * default for f16 / bf16 weights) over several query and key tiles and two
 * chunks: against the CPU within the
 * bf16 tolerance, and against the f32 kernel (ATTNSCOPE_CUDA_FLASH=f32) on
 * the same device: both round their output to the model's dtype, so they
 * differ by up to that rounding (bf16 1e-2; f16, 8 times finer, 2e-3);
 * with the switch it must not run. */
static void prefill_attention_on_tensor_cores_matches_the_cpu(void **state)
{
    (void)state;
    long before = cuda_launches("flash_tc");
    compare_devices("tiny", DT_BF16, 700, 2, true, BF16_TOL);
    compare_devices("tiny", DT_F16, 300, 2, true, BF16_TOL);
    compare_devices("smollm2-135m", DT_BF16, 130, 1, true, BF16_TOL);   /* head_dim 64, three key tiles */
    compare_devices("tiny-hd128", DT_BF16, 300, 2, true, BF16_TOL);     /* head_dim 128: 32-key tiles */
    long ran = cuda_launches("flash_tc") - before;
    printf("  flash_tc ran %ld times\n", ran);
    assert_true(ran >= 6);
    const eng_dtype dts[2] = {DT_BF16, DT_F16};
    const double tols[2] = {BF16_TOL, 2e-3};
    for (int i = 0; i < 2; i++) {
        model_t *m = NULL;
        eng_err e = {{0}};
        assert_int_equal(model_synthetic(&m, "tiny", dts[i], 1, &e), ENG_OK);
        int P = 700;
        float *tc = gpu_prefill_logits(m, P, NULL, NULL), *f32 = gpu_prefill_logits(m, P, "ATTNSCOPE_CUDA_FLASH", "f32");
        double err = rel_l2(tc, f32, (size_t)P * m->cfg.vocab_size);
        printf("  tiny %s %d rows: tensor cores vs f32 attention rel L2 %.3g\n", dtype_name(dts[i]), P, err);
        assert_true(err <= tols[i]);
        free(tc);
        free(f32);
        model_close(m);
    }
    compare_with_switch("ATTNSCOPE_CUDA_FLASH", "f32", "flash_tc", false);
}

/* The fused MLP (gate/up/down in one kernel) is the default decode path on
 * these shapes; it also runs with the next layer's q/k/v after a grid
 * barrier (opt-in), and with it switched off gate/up and down run as two
 * matvecs and down_proj is stored as it is. All must match the CPU. */
static void the_fused_mlp_and_the_two_kernel_mlp_match_the_cpu(void **state)
{
    (void)state;
    compare_with_switch("ATTNSCOPE_CUDA_MLP", "1", "mlp", true);
    compare_with_switch("ATTNSCOPE_CUDA_MLP_QKV", "1", "mlp_qkv", true);
    compare_with_switch("ATTNSCOPE_CUDA_MLP", "0", "mlp", false);
}

static void a_rewind_and_new_tokens_match_the_cpu(void **state)
{
    (void)state;
    model_t *m = NULL;
    eng_err e = {{0}};
    assert_int_equal(model_synthetic(&m, "tiny", DT_BF16, 1, &e), ENG_OK);
    int V = m->cfg.vocab_size, ids[40];
    prompt_ids(ids, 40, V);
    session_t *cpu = open_on(m, 48, "cpu"), *gpu = open_on(m, 48, "cuda");
    eval_ok(cpu, ids, 30, NULL);
    eval_ok(gpu, ids, 30, NULL);
    assert_int_equal(session_rewind(cpu, 12), ENG_OK);
    assert_int_equal(session_rewind(gpu, 12), ENG_OK);
    eval_ok(cpu, ids + 25, 15, NULL);
    eval_ok(gpu, ids + 25, 15, NULL);
    eval_ok(cpu, ids + 3, 1, NULL);
    eval_ok(gpu, ids + 3, 1, NULL);
    double err = rel_l2(session_logits(gpu), session_logits(cpu), (size_t)V);
    printf("  rewind 30 -> 12, 15 new + 1: rel L2 %.3g\n", err);
    assert_true(err <= BF16_TOL);
    session_free(cpu);
    session_free(gpu);
    model_close(m);
}

static void observer_rows_match_the_cpu(void **state)
{
    (void)state;
    model_t *m = NULL;
    eng_err e = {{0}};
    assert_int_equal(model_synthetic(&m, "tiny", DT_F32, 1, &e), ENG_OK);
    int ids[24];
    prompt_ids(ids, 24, m->cfg.vocab_size);
    session_t *cpu = open_on(m, 32, "cpu"), *gpu = open_on(m, 32, "cuda");
    session_set_observe(cpu, true);
    session_set_observe(gpu, true);
    eval_ok(cpu, ids, 20, NULL);
    eval_ok(gpu, ids, 20, NULL);
    for (int step = 0; step < 2; step++) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            int q0a, nqa, nka, q0b, nqb, nkb;
            const float *pa = session_attn(cpu, l, &q0a, &nqa, &nka);
            const float *pb = session_attn(gpu, l, &q0b, &nqb, &nkb);
            assert_non_null(pa);
            assert_non_null(pb);
            assert_int_equal(q0a, q0b);
            assert_int_equal(nqa, nqb);
            assert_int_equal(nka, nkb);
            size_t n = (size_t)m->cfg.n_heads * nqa * nka;
            for (size_t i = 0; i < n; i++)
                if (!(fabsf(pa[i] - pb[i]) <= 1e-5f))
                    fail_msg("layer %d: probability %zu: cpu %g cuda %g", l, i, pa[i], pb[i]);
        }
        eval_ok(cpu, &ids[20 + step], 1, NULL);
        eval_ok(gpu, &ids[20 + step], 1, NULL);
    }
    session_free(cpu);
    session_free(gpu);
    model_close(m);
}

static void switching_devices_mid_context_keeps_the_conversation(void **state)
{
    (void)state;
    model_t *m = NULL;
    eng_err e = {{0}};
    assert_int_equal(model_synthetic(&m, "tiny", DT_F32, 1, &e), ENG_OK);
    int V = m->cfg.vocab_size, ids[30];
    prompt_ids(ids, 30, V);
    session_t *ref = open_on(m, 32, "cpu"), *s = open_on(m, 32, "cpu");
    eval_ok(ref, ids, 30, NULL);
    eval_ok(s, ids, 20, NULL);
    assert_int_equal(session_set_device(s, "cuda", 2, &e), ENG_OK);
    eval_ok(s, ids + 20, 5, NULL);
    assert_int_equal(session_set_device(s, "cpu", 2, &e), ENG_OK);
    eval_ok(s, ids + 25, 5, NULL);
    assert_int_equal(session_len(s), 30);
    double err = rel_l2(session_logits(s), session_logits(ref), (size_t)V);
    printf("  cpu -> cuda -> cpu: last logits rel L2 %.3g\n", err);
    assert_true(err <= F32_TOL);
    assert_int_equal(session_set_device(s, "tpu", 2, &e), ENG_EINPUT);
    assert_string_equal(session_device(s), "cpu");
    session_free(ref);
    session_free(s);
    model_close(m);
}

/* ------------------------------------------------------ transformers fixtures */

static const char *ref_root(void)
{
    const char *r = getenv("ATTNSCOPE_REF_DIR");
    return r && *r ? r : "tests/fixtures/ref";
}

static int read_ids(const cJSON *arr, int *out, int max)
{
    int n = 0;
    for (const cJSON *it = cJSON_IsArray(arr) ? arr->child : NULL; it && n < max; it = it->next)
        out[n++] = (int)it->valuedouble;
    return n;
}

/* One fixture: the prompt's logits on the GPU against transformers and the
 * CPU; greedy ids equal to the CPU's on f32 weights. Returns 0 when it
 * passes (messages printed either way). */
static int check_fixture(const char *dir, const char *name)
{
    char p[1400], why[128], mdir[1024];
    static char text[1 << 20];
    int ids[4096], greedy[64];
    snprintf(p, sizeof p, "%s/ref.json", dir);
    FILE *f = fopen(p, "rb");
    if (!f)
        return 0;   /* not a fixture folder */
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    cJSON *j = cJSON_Parse(text);
    if (!j) {
        printf("  %s: ref.json is not JSON\n", name);
        return 1;
    }
    int T = read_ids(cJSON_GetObjectItem(j, "ids"), ids, 4096);
    int G = read_ids(cJSON_GetObjectItem(j, "greedy"), greedy, 64);
    const cJSON *md = cJSON_GetObjectItem(j, "model_dir");
    snprintf(mdir, sizeof mdir, "%s", cJSON_IsString(md) ? md->valuestring : dir);
    cJSON_Delete(j);
    npy_array ref;
    snprintf(p, sizeof p, "%s/logits.npy", dir);
    if (T < 1 || npy_read(p, &ref, why)) {
        printf("  %s: no ids or %s\n", name, T < 1 ? "" : why);
        return 1;
    }
    model_t *m = NULL;
    eng_err e = {{0}};
    if (model_open(&m, mdir, &e) != ENG_OK) {
        printf("  %s: %s\n", name, e.msg);
        npy_free(&ref);
        return 1;
    }
    int bad = 0, V = m->cfg.vocab_size;
    bool f32 = m->w.embed.dtype == DT_F32;
    double tol = f32 ? F32_TOL : BF16_TOL;
    float *a = malloc((size_t)T * V * sizeof *a), *b = malloc((size_t)T * V * sizeof *b);
    session_t *cpu = open_on(m, T + G + 1, "cpu"), *gpu = open_on(m, T + G + 1, "cuda");
    if (!a || !b || ref.n != (size_t)T * V) {
        printf("  %s: logits.npy has %zu values, want %d x %d\n", name, ref.n, T, V);
        bad = 1;
    } else {
        eval_ok(cpu, ids, T, a);
        eval_ok(gpu, ids, T, b);
        double eh = rel_l2(b, ref.data, (size_t)T * V), ec = rel_l2(b, a, (size_t)T * V);
        bad |= !(eh <= tol) || !(ec <= tol);
        int same = 1;
        if (f32)
            for (int g = 0; g < G; g++) {
                int tc = argmax(session_logits(cpu), V), tg = argmax(session_logits(gpu), V);
                same &= tc == tg;
                if (g + 1 < G) {
                    eval_ok(cpu, &tc, 1, NULL);
                    eval_ok(gpu, &tg, 1, NULL);
                }
            }
        bad |= !same;
        printf("  %s (%s, %d tokens): cuda vs transformers rel L2 %.3g, vs cpu %.3g (tol %.0e)%s  %s\n", name,
               dtype_name(m->w.embed.dtype), T, eh, ec, tol, f32 ? (same ? ", greedy ids equal" : ", GREEDY IDS DIFFER") : "",
               bad ? "FAIL" : "ok");
    }
    session_free(cpu);
    session_free(gpu);
    free(a);
    free(b);
    npy_free(&ref);
    model_close(m);
    return bad;
}

static void every_reference_fixture_matches_transformers_and_the_cpu(void **state)
{
    (void)state;
    DIR *d = opendir(ref_root());
    if (!d) {
        printf("  no fixtures at %s: skipped\n", ref_root());
        skip();
    }
    struct dirent *de;
    int bad = 0, seen = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char dir[1100];
        snprintf(dir, sizeof dir, "%s/%s", ref_root(), de->d_name);
        bad += check_fixture(dir, de->d_name);
        seen++;
    }
    closedir(d);
    printf("  %d fixture folders, %d failed\n", seen, bad);
    assert_int_equal(bad, 0);
}

int main(void)
{
    if (skip_without_device())
        return 0;
    const char *only = getenv("ATTNSCOPE_TEST_FILTER");   /* a cmocka pattern: run only these tests */
    if (only && *only)
        cmocka_set_test_filter(only);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tiny_f32_prefill_and_decode_match_the_cpu),
        cmocka_unit_test(tiny_bf16_prefill_and_decode_match_the_cpu),
        cmocka_unit_test(tiny_f16_with_the_cache_off_matches_the_cpu),
        cmocka_unit_test(a_prefill_longer_than_one_chunk_matches_the_cpu),
        cmocka_unit_test(qwen_shaped_models_match_the_cpu),
        cmocka_unit_test(a_rewind_and_new_tokens_match_the_cpu),
        cmocka_unit_test(the_persistent_step_kernel_matches_the_cpu),
        cmocka_unit_test(the_ring_matvec_matches_the_cpu),
        cmocka_unit_test(prefill_attention_on_tensor_cores_matches_the_cpu),
        cmocka_unit_test(the_fused_mlp_and_the_two_kernel_mlp_match_the_cpu),
        cmocka_unit_test(observer_rows_match_the_cpu),
        cmocka_unit_test(switching_devices_mid_context_keeps_the_conversation),
        cmocka_unit_test(every_reference_fixture_matches_transformers_and_the_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#else

static void a_build_without_cuda_refuses_the_cuda_device(void **state)
{
    (void)state;
    model_t *m = NULL;
    session_t *s = NULL;
    eng_err e = {{0}};
    assert_int_equal(model_synthetic(&m, "tiny", DT_F32, 1, &e), ENG_OK);
    assert_int_equal(session_new(&s, m, 16, 1, &e), ENG_OK);
    assert_int_equal(session_set_device(s, "cuda", 1, &e), ENG_EDEVICE);
    assert_non_null(strstr(e.msg, "no CUDA backend"));
    assert_string_equal(session_device(s), "cpu");
    assert_int_equal(session_set_device(s, "cpu", 1, &e), ENG_OK);
    int id = 3;
    assert_int_equal(session_eval(s, &id, 1, NULL, &e), ENG_OK);
    session_free(s);
    model_close(m);
}

int main(void)
{
    printf("test_cuda: this build has no CUDA backend (make CUDA=1); only the refusal is tested\n");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_build_without_cuda_refuses_the_cuda_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

#endif
