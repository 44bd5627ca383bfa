/* fault.c - SIGBUS on a mapped model file -> one line naming the file, exit 1.
 * Everything in the handler is async-signal-safe: it reads /proc/self/maps
 * with open/read into a stack buffer and writes with write(2). */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fault.h"

static void (*volatile cleanup)(void);

void fault_set_cleanup(void (*fn)(void)) { cleanup = fn; }

static uintptr_t hex(const char **s)
{
    uintptr_t v = 0;
    for (;; (*s)++) {
        char c = **s;
        if (c >= '0' && c <= '9') v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else return v;
    }
}

/* Copies the path of the file mapped at addr into out (cap bytes); returns its
 * length, 0 when addr is in no file mapping. One line of /proc/self/maps:
 *   7f12a000-7f12b000 r--s 00000000 08:01 1234   /path/to/model.safetensors */
static size_t mapped_file(uintptr_t addr, char *out, size_t cap)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[4096], line[1024];
    size_t ll = 0, found = 0;
    bool skipping = false;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n && !found; i++) {
            char c = buf[i];
            if (c != '\n') {
                if (ll < sizeof line - 1) line[ll++] = c;
                else skipping = true;      /* a longer line than we keep: ignored */
                continue;
            }
            line[ll] = '\0';
            const char *p = line;
            uintptr_t lo = hex(&p);
            if (*p == '-' && !skipping) {
                p++;
                uintptr_t hi = hex(&p);
                const char *path = strchr(p, '/');
                if (addr >= lo && addr < hi && path) {
                    size_t l = strlen(path);
                    if (l >= cap) l = cap - 1;
                    memcpy(out, path, l);
                    out[l] = '\0';
                    found = l;
                }
            }
            ll = 0;
            skipping = false;
        }
        if (found) break;
    }
    close(fd);
    return found;
}

static void say(const char *s) { ssize_t r = write(2, s, strlen(s)); (void)r; }

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char path[1024];
    if (si && mapped_file((uintptr_t)si->si_addr, path, sizeof path)) {
        void (*fn)(void) = cleanup;
        if (fn) fn();
        say("attnscope: ");
        say(path);
        say(" changed or was truncated while in use (SIGBUS reading its mapping); stopping\n");
        _exit(1);
    }
    signal(sig, SIG_DFL);
    raise(sig);
}

void fault_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}
