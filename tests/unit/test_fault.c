/* test_fault.c - repl/fault: a model file truncated while mapped ends the
 * process with one line naming the file and status 1 (not a silent SIGBUS);
 * the cleanup hook runs first; a SIGBUS outside any file mapping keeps its
 * default action. Each case runs in a forked child. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "safetensors.h"
#include "fault.h"

#define FIXTURE "tests/fixtures/tiny-chat/model.safetensors"

static char tmp_model[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmp_model, sizeof tmp_model, "/tmp/attnscope-fault-%ld.safetensors", (long)getpid());
    FILE *in = fopen(FIXTURE, "rb"), *out = fopen(tmp_model, "wb");
    if (!in || !out) return -1;
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
    fclose(in);
    return fclose(out);
}

static int teardown(void **state)
{
    (void)state;
    unlink(tmp_model);
    return 0;
}

static void say_cleanup(void)
{
    ssize_t r = write(2, "cleanup ran\n", 12);
    (void)r;
}

/* Runs child() in a fork with stderr captured into err; returns the wait status. */
static int in_child(void (*child)(void), char *err, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        close(p[0]);
        dup2(p[1], 2);
        child();
        _exit(42);      /* not reached when the fault fires */
    }
    close(p[1]);
    size_t len = 0;
    ssize_t r;
    while (len < cap - 1 && (r = read(p[0], err + len, cap - 1 - len)) > 0) len += (size_t)r;
    err[len] = '\0';
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Opens the copy, truncates it underneath its mapping, then reads weights. */
static void truncate_while_mapped(void)
{
    fault_install();
    st_set *s;
    eng_err e;
    if (st_open_file(&s, tmp_model, &e) != ENG_OK) _exit(40);
    if (truncate(tmp_model, 0) != 0) _exit(41);
    volatile unsigned char sink = 0;
    for (int i = 0; i < st_count(s); i++) {
        const st_tensor *t = st_get(s, i);
        sink ^= ((const unsigned char *)t->data)[t->nbytes - 1];
    }
    (void)sink;
}

static void truncate_with_cleanup(void)
{
    fault_set_cleanup(say_cleanup);
    truncate_while_mapped();
}

static void sigbus_not_from_a_mapping(void)
{
    fault_install();
    raise(SIGBUS);
}

static void a_model_file_truncated_while_mapped_exits_1_naming_it(void **state)
{
    (void)state;
    char err[2048];
    int st = in_child(truncate_while_mapped, err, sizeof err);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    assert_non_null(strstr(err, tmp_model));
    assert_non_null(strstr(err, "truncated while in use"));
    assert_non_null(strchr(err, '\n'));
    assert_null(strchr(strchr(err, '\n') + 1, '\n'));      /* one line */
}

static void the_cleanup_hook_runs_before_the_message(void **state)
{
    (void)state;
    assert_int_equal(setup(NULL), 0);          /* a fresh, untruncated copy */
    char err[2048];
    int st = in_child(truncate_with_cleanup, err, sizeof err);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    char *c = strstr(err, "cleanup ran"), *m = strstr(err, tmp_model);
    assert_non_null(c);
    assert_non_null(m);
    assert_true(c < m);
}

static void a_sigbus_outside_file_mappings_keeps_its_default_action(void **state)
{
    (void)state;
    char err[2048];
    int st = in_child(sigbus_not_from_a_mapping, err, sizeof err);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGBUS);
    assert_null(strstr(err, "truncated"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_model_file_truncated_while_mapped_exits_1_naming_it),
        cmocka_unit_test(the_cleanup_hook_runs_before_the_message),
        cmocka_unit_test(a_sigbus_outside_file_mappings_keeps_its_default_action),
    };
    return cmocka_run_group_tests_name("fault", tests, setup, teardown);
}
