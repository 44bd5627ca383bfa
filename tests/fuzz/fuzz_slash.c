/* fuzz_slash.c - fuzz target: slash-command parsing and the sampling-setting
 * validator. Each input line runs through slash_exec on a conversation over
 * the tiny-chat fixture (opened once), in plain-REPL and in TUI mode; /save
 * and /model are left out (they write files or open folders named by the
 * input). The settings and the conversation are reset after every input. */
#include <stdint.h>
#include <stddef.h>

#include "fuzz_util.h"
#include "slash.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static conv_t *sl_conv;
static sampler_params sl_defaults;

static void sl_say(void *ud, bool error, const char *text)
{
    (void)ud;
    (void)error;
    FUZZ_CHECK(text != NULL && strlen(text) < 1u << 20);
}

static slash_result sl_hook(slash_ctx *ctx, const char *args)
{
    (void)ctx;
    long v;
    FUZZ_CHECK(args != NULL);
    return slash_parse_int(args, 0, 64, &v) == 0 ? SLASH_OK : SLASH_ERROR;
}

static void sl_load(void)
{
    if (sl_conv) return;
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/tests/fixtures/tiny-chat", fuzz_root());
    conv_opts o;
    conv_opts_default(&o);
    o.n_threads = 1;
    o.max_seq = 64;
    o.max_new = 2;
    eng_err err;
    if (conv_open(&sl_conv, dir, &o, &err) != ENG_OK) {
        fprintf(stderr, "fuzz_slash: %s\n", err.msg);
        FUZZ_CHECK(0);
    }
    sl_defaults = *conv_sampling(sl_conv);
}

/* True when the line names a command this target must not run. */
static bool sl_unsafe(const char *line)
{
    while (*line == ' ' || *line == '\t') line++;
    if (*line == '/') line++;
    return strncmp(line, "save", 4) == 0 || strncmp(line, "model", 5) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_load();
    if (size > 8192) return 0;
    char *line = malloc(size + 1);
    FUZZ_CHECK(line != NULL);
    memcpy(line, data, size);
    line[size] = '\0';

    /* The validator on "NAME VALUE" split at the first blank. */
    {
        char name[64];
        const char *sp = strchr(line, ' ');
        size_t nl = sp ? (size_t)(sp - line) : strlen(line);
        if (nl < sizeof name) {
            memcpy(name, line, nl);
            name[nl] = '\0';
            sampler_params p = sl_defaults;
            char msg[256];
            msg[0] = '\0';
            if (slash_set_sampling(&p, name, sp ? sp + 1 : "", "/", msg, sizeof msg) != 0)
                FUZZ_CHECK(msg[0] != '\0');
        }
        long v;
        if (slash_parse_int(line, -5, 5, &v) == 0) FUZZ_CHECK(v >= -5 && v <= 5);
        for (int st = 0; st < 40 && slash_complete(line, st); st++) {}
        (void)slash_is_command(line);
    }

    if (!sl_unsafe(line)) {
        for (int tui = 0; tui < 2; tui++) {
            slash_ctx ctx;
            memset(&ctx, 0, sizeof ctx);
            ctx.conv = sl_conv;
            ctx.tui = tui;
            ctx.say = sl_say;
            if (tui) ctx.step = ctx.layer = ctx.head = ctx.compare = ctx.help = sl_hook;
            slash_result r = slash_exec(&ctx, line);
            FUZZ_CHECK(r >= SLASH_OK && r <= SLASH_QUIT && ctx.conv == sl_conv);
            if (conv_generating(sl_conv)) conv_stop_reply(sl_conv);
        }
    }
    eng_err err;
    FUZZ_CHECK(conv_set_sampling(sl_conv, &sl_defaults, &err) == ENG_OK);
    conv_set_cache(sl_conv, true);
    conv_set_system(sl_conv, NULL, &err);
    conv_reset(sl_conv);
    free(line);
    return 0;
}
