/* common.c - error formatting, the failing-allocation hook, clocks, dtype helpers. */
#include "common.h"

#include <cjson/cJSON.h>
#include <pthread.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int eng_fail(eng_err *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Out-of-memory testing: when fail_at > 0, the fail_at-th allocation counted
 * from the call to eng_alloc_fail_at() returns NULL (and only that one). */
static long alloc_count;
static long fail_at;
static long alloc_failures;   /* allocations that returned NULL, injected or real */

void eng_alloc_fail_at(long n)
{
    fail_at = n;
    alloc_count = 0;
}

long eng_alloc_count(void) { return alloc_count; }

static bool should_fail(void)
{
    alloc_count++;
    if (fail_at > 0 && alloc_count == fail_at) {
        alloc_failures++;
        return true;
    }
    return false;
}

void *eng_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = malloc(n ? n : 1);
    if (!p)
        alloc_failures++;
    return p;
}

void *eng_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        alloc_failures++;
    return p;
}

void *eng_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    void *q = realloc(p, n ? n : 1);
    if (!q)
        alloc_failures++;
    return q;
}

char *eng_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = eng_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void eng_free(void *p) { free(p); }

static void *json_malloc(size_t n) { return eng_malloc(n); }

static void json_hooks(void)
{
    cJSON_Hooks h = {json_malloc, eng_free};
    cJSON_InitHooks(&h);
}

struct cJSON *eng_json_parse(const char *text, size_t len, bool *oom)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, json_hooks);
    long before = alloc_failures;
    cJSON *root = cJSON_ParseWithLength(text, len);
    *oom = !root && alloc_failures != before;
    return root;
}

double eng_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

size_t dtype_size(eng_dtype t) { return t == DT_F32 ? 4 : 2; }

const char *dtype_name(eng_dtype t)
{
    switch (t) {
    case DT_F32: return "F32";
    case DT_F16: return "F16";
    case DT_BF16: return "BF16";
    }
    return "?";
}

float bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u)   /* NaN: keep it a quiet NaN */
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);        /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {                    /* subnormal: renormalize */
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ffu;
            u = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u;
    int32_t exp = (int32_t)((u >> 23) & 0xffu) - 127 + 15;
    uint32_t man = u & 0x7fffffu;
    if (((u >> 23) & 0xffu) == 0xffu)                  /* inf / nan */
        return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
    if (exp >= 31)
        return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) {                                     /* subnormal or zero */
        if (exp < -10)
            return (uint16_t)sign;
        man |= 0x800000u;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = 1u << (shift - 1);
        uint32_t rounded = (man + half - 1 + ((man >> shift) & 1u)) >> shift;
        return (uint16_t)(sign | rounded);
    }
    uint32_t r = (man + 0xfffu + ((man >> 13) & 1u)) >> 13;  /* round to nearest even */
    uint32_t out = sign | ((uint32_t)exp << 10);
    return (uint16_t)(out + r);   /* a carry out of the mantissa bumps the exponent */
}
