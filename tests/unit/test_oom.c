/* test_oom.c - out-of-memory walks: eng_alloc_fail_at(N) for every N over
 * loading the tiny-chat model, loading its tokenizer, opening a conversation
 * and generating one token through conv.h, and at a stride over loading the
 * real Llama 3 tokenizer. Each failed allocation must give ENG_ENOMEM with a
 * message, a NULL handle, no crash and nothing leaked (heap in use back to
 * where it was; ASan/LSan in `make asan`); the next attempt must succeed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"

#define FIXTURE "tests/fixtures/tiny-chat"
#define LLAMA3 ".cache/tokenizers/llama3"

/* Bytes of heap in use: the plain build's leak check. glibc counts chunks
 * parked in its thread cache and fast bins as in use, so main() re-runs the
 * binary with the cache off (GLIBC_TUNABLES) and turns fast bins off. ASan
 * replaces malloc (LSan checks leaks there) and so does valgrind (make
 * valgrind sets ATTNSCOPE_NO_HEAP_CHECK): the count is not compared then. */
static bool heap_check = true;

static size_t heap_in_use(void)
{
    if (!heap_check)
        return 0;
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

typedef int (*load_fn)(void **out, const char *dir, eng_err *err);
typedef void (*close_fn)(void *h);

static int open_model(void **out, const char *dir, eng_err *err) { return model_open((model_t **)out, dir, err); }
static void close_model(void *h) { model_close(h); }
static int open_tok(void **out, const char *dir, eng_err *err) { return tok_open((tokenizer_t **)out, dir, err); }
static void close_tok(void *h) { tok_close(h); }

/* Fails allocation N of open(dir) for N = 1 .. dense, then every stride-th,
 * up to the number a successful open makes; returns how many were walked. */
static long walk_open(load_fn open, close_fn close, const char *dir, long dense, long stride)
{
    void *h = NULL;
    eng_err err;
    eng_alloc_fail_at(0);
    assert_int_equal(open(&h, dir, &err), ENG_OK);      /* warm-up: one-time library state */
    close(h);
    size_t base = heap_in_use();
    eng_alloc_fail_at(0);
    assert_int_equal(open(&h, dir, &err), ENG_OK);
    long total = eng_alloc_count();
    close(h);
    assert_true(total > 5);
    long walked = 0, tolerated = 0;
    for (long n = 1; n <= total; n += (n < dense ? 1 : stride)) {
        h = (void *)1;
        err.msg[0] = '\0';
        eng_alloc_fail_at(n);
        int rc = open(&h, dir, &err);
        eng_alloc_fail_at(0);
        if (rc == ENG_OK) {
            /* An allocation the loader may do without (PCRE2's JIT code:
             * patterns still match, interpreted); the handle must work. */
            assert_non_null(h);
            close(h);
            tolerated++;
        } else {
            if (rc != ENG_ENOMEM)
                print_error("%s: allocation %ld of %ld: rc %d (%s)\n", dir, n, total, rc, err.msg);
            assert_int_equal(rc, ENG_ENOMEM);
            assert_null(h);
            assert_true(err.msg[0] != '\0');
        }
        if (heap_in_use() != base)
            print_error("%s: allocation %ld of %ld failed: %zu bytes leaked\n", dir, n, total,
                        heap_in_use() - base);
        assert_true(heap_in_use() == base);
        walked++;
    }
    print_message("%s: %ld of %ld allocations failed in turn, %ld of them done without\n",
                  dir, walked, total, tolerated);
    assert_true(tolerated * 4 < walked);
    assert_int_equal(open(&h, dir, &err), ENG_OK);     /* nothing left broken */
    close(h);
    return walked;
}

static void every_failed_allocation_in_model_load_gives_enomem(void **state)
{
    (void)state;
    assert_true(walk_open(open_model, close_model, FIXTURE, 1, 1) > 5);
}

static void every_failed_allocation_in_tokenizer_load_gives_enomem(void **state)
{
    (void)state;
    assert_true(walk_open(open_tok, close_tok, FIXTURE, 1, 1) > 5);
}

static void llama3_tokenizer_load_fails_cleanly_at_a_stride(void **state)
{
    (void)state;
    if (access(LLAMA3 "/tokenizer.json", R_OK) != 0) {
        print_message("skipped: %s missing (tests/fetch_tokenizers.sh)\n", LLAMA3);
        skip();
    }
    void *h = NULL;
    eng_err err;
    eng_alloc_fail_at(0);
    assert_int_equal(tok_open((tokenizer_t **)&h, LLAMA3, &err), ENG_OK);
    long total = eng_alloc_count();
    tok_close(h);
    /* A 9 MB file takes about a second to load: the first 8 allocations,
     * then 12 more spread over the rest. */
    long stride = total / 12 > 1 ? total / 12 : 1;
    assert_true(walk_open(open_tok, close_tok, LLAMA3, 8, stride) >= 16);
}

/* One conversation: open, begin a turn, generate one token. Returns the
 * status of the first call that failed (ENG_OK when none did); *stage says
 * which. The conversation is closed before returning. */
static int one_generation(int *stage, eng_err *err)
{
    conv_opts o;
    conv_opts_default(&o);
    o.n_threads = 1;
    o.max_seq = 64;
    o.max_new = 4;
    conv_t *c = (conv_t *)1;
    *stage = 0;
    int rc = conv_open(&c, FIXTURE, &o, err);
    if (rc != ENG_OK) {
        assert_null(c);
        return rc;
    }
    *stage = 1;
    rc = conv_begin(c, "Hi there", err);
    if (rc == ENG_OK) {
        *stage = 2;
        conv_token tok;
        rc = conv_step(c, -1, &tok, err);
    }
    if (rc != ENG_OK) {
        /* The conversation survives the failure: with memory back, a turn works. */
        eng_alloc_fail_at(0);
        eng_err e2;
        if (conv_generating(c)) conv_stop_reply(c);
        assert_int_equal(conv_begin(c, "Again", &e2), ENG_OK);
        conv_token tok;
        assert_int_equal(conv_step(c, -1, &tok, &e2), ENG_OK);
    }
    conv_close(c);
    return rc;
}

static void every_failed_allocation_in_one_generation_gives_a_clear_error(void **state)
{
    (void)state;
    int stage;
    eng_err err;
    eng_alloc_fail_at(0);
    assert_int_equal(one_generation(&stage, &err), ENG_OK);     /* warm-up */
    size_t base = heap_in_use();
    eng_alloc_fail_at(0);
    assert_int_equal(one_generation(&stage, &err), ENG_OK);
    assert_true(heap_in_use() == base);
    long total = eng_alloc_count();
    assert_true(total > 10);
    int failed_in[3] = {0, 0, 0};
    long tolerated = 0;
    for (long n = 1; n <= total; n++) {
        err.msg[0] = '\0';
        eng_alloc_fail_at(n);
        int rc = one_generation(&stage, &err);
        eng_alloc_fail_at(0);
        if (rc == ENG_OK) {
            tolerated++;       /* JIT code, a cache entry: done without */
        } else {
            if (rc != ENG_ENOMEM)
                print_error("allocation %ld of %ld (stage %d): rc %d (%s)\n", n, total, stage, rc, err.msg);
            assert_int_equal(rc, ENG_ENOMEM);
            assert_true(err.msg[0] != '\0');
            failed_in[stage]++;
        }
        if (heap_in_use() != base)
            print_error("allocation %ld of %ld (stage %d): %zu bytes leaked\n", n, total, stage,
                        heap_in_use() - base);
        assert_true(heap_in_use() == base);
    }
    print_message("%ld allocations: ENG_ENOMEM from %d in conv_open, %d in conv_begin, %d in conv_step; "
                  "%ld done without\n", total, failed_in[0], failed_in[1], failed_in[2], tolerated);
    assert_true(failed_in[0] > 0 && failed_in[1] > 0 && failed_in[2] > 0);
    assert_true(tolerated * 4 < total);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
#if defined(__SANITIZE_ADDRESS__)
    heap_check = false;
#else
    if (getenv("ATTNSCOPE_NO_HEAP_CHECK")) {
        heap_check = false;
    } else if (!getenv("ATTNSCOPE_OOM_CHILD")) {
        setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
        setenv("ATTNSCOPE_OOM_CHILD", "1", 1);
        execv("/proc/self/exe", argv);
        heap_check = false;     /* no re-exec: LSan/valgrind runs still check */
    }
    mallopt(M_MXFAST, 0);
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_failed_allocation_in_model_load_gives_enomem),
        cmocka_unit_test(every_failed_allocation_in_tokenizer_load_gives_enomem),
        cmocka_unit_test(llama3_tokenizer_load_fails_cleanly_at_a_stride),
        cmocka_unit_test(every_failed_allocation_in_one_generation_gives_a_clear_error),
    };
    return cmocka_run_group_tests_name("oom", tests, NULL, NULL);
}
