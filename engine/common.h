/* common.h - status codes, error messages, the allocation hook and tensor views
 * shared by every engine module. */
#ifndef ENGINE_COMMON_H
#define ENGINE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* Every engine function that can fail returns one of these and, on failure,
 * fills an eng_err with one line naming the file, tensor or field at fault.
 * ENG_EINPUT is "bad input" (a broken model folder, a malformed file): the
 * command line maps it to exit code 2; everything else maps to exit code 1. */
typedef enum {
    ENG_OK = 0,
    ENG_EINPUT,        /* malformed or unsupported input file / argument */
    ENG_EIO,           /* open/read/mmap failed */
    ENG_ENOMEM,        /* an allocation failed */
    ENG_ERANGE,        /* context full, index out of range */
    ENG_EDEVICE,       /* accelerator unavailable or failed */
} eng_status;

typedef struct {
    char msg[512];
} eng_err;

/* printf-style: writes the message into e (if e is not NULL) and returns code. */
int eng_fail(eng_err *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* All engine allocations go through these so that tests can fail the Nth one
 * (eng_alloc_fail_at(n): the n-th allocation from now fails, 0 disables).
 * eng_free accepts NULL. */
void *eng_malloc(size_t n);
void *eng_calloc(size_t count, size_t size);
void *eng_realloc(void *p, size_t n);
char *eng_strdup(const char *s);
void eng_free(void *p);
void eng_alloc_fail_at(long n);
long eng_alloc_count(void);   /* allocations attempted since the last fail_at */

/* cJSON_ParseWithLength with cJSON's own allocations going through
 * eng_malloc/eng_free (so that the allocation-failure walk reaches them).
 * NULL with *oom true when an allocation failed, NULL with *oom false when
 * the text is not JSON. */
struct cJSON;
struct cJSON *eng_json_parse(const char *text, size_t len, bool *oom);

/* Monotonic clock in milliseconds. */
double eng_now_ms(void);

/* Storage dtypes of weights as found in safetensors files. */
typedef enum { DT_F32 = 0, DT_F16, DT_BF16 } eng_dtype;

size_t dtype_size(eng_dtype t);
const char *dtype_name(eng_dtype t);

/* A borrowed view of a tensor: data points into a mapping or an owned buffer,
 * row-major, shape[0] outermost. ndim 0 means "absent" (e.g. no q bias). */
typedef struct {
    const void *data;
    eng_dtype dtype;
    int ndim;
    int64_t shape[4];
} tensor_t;

static inline bool tensor_present(const tensor_t *t) { return t->ndim > 0 && t->data; }

/* bf16/f16 <-> f32 scalar conversions (exact, round-to-nearest-even). */
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

#endif
