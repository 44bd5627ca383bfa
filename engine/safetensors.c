/* safetensors.c - the safetensors reader: mmap, a cJSON header, every length,
 * offset, dtype and shape checked against the file size; sharded folders. */
#include "safetensors.h"
#include "config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER   (100u << 20)  /* the reference reader's limit */
#define ST_MAX_INDEX    (64u << 20)
#define ST_MAX_DIM_SIZE ((int64_t)1 << 40)

typedef struct {
    char *path;
    const char *base;       /* basename, inside path */
    void *map;
    size_t size;
} st_mapping;

struct st_set {
    st_mapping *files;
    int n_files;
    st_tensor *t;           /* sorted by name once loading is done */
    int n, cap;
    size_t file_bytes;
    char *source;           /* the index or the single file, for messages */
};

/* ------------------------------------------------------------- the set */

void st_close(st_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        eng_free((char *)s->t[i].name);
    eng_free(s->t);
    for (int i = 0; i < s->n_files; i++) {
        if (s->files[i].map)
            munmap(s->files[i].map, s->files[i].size);
        eng_free(s->files[i].path);
    }
    eng_free(s->files);
    eng_free(s->source);
    eng_free(s);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

const st_tensor *st_find(const st_set *s, const char *name)
{
    st_tensor key = {.name = name};
    return s->n ? bsearch(&key, s->t, (size_t)s->n, sizeof *s->t, cmp_name) : NULL;
}

int st_count(const st_set *s) { return s->n; }
const st_tensor *st_get(const st_set *s, int i) { return i >= 0 && i < s->n ? &s->t[i] : NULL; }
size_t st_file_bytes(const st_set *s) { return s->file_bytes; }
const char *st_source(const st_set *s) { return s->source; }

/* Sorts the tensors by name and rejects a name seen twice. */
static int finish(st_set *s, eng_err *err)
{
    if (s->n > 1)
        qsort(s->t, (size_t)s->n, sizeof *s->t, cmp_name);
    for (int i = 1; i < s->n; i++)
        if (!strcmp(s->t[i - 1].name, s->t[i].name))
            return eng_fail(err, ENG_EINPUT, "%s: tensor %s appears twice (also in %s)",
                            s->t[i].file, s->t[i].name, s->t[i - 1].file);
    return ENG_OK;
}

/* ------------------------------------------------------------ one file */

/*
 * The safetensors format (huggingface/safetensors), all little-endian:
 *
 *   offset 0        8                    8+N                               size
 *          +--------+--------------------+----------------------------------+
 *          |   N    |  header: N bytes   |  data: size - 8 - N bytes        |
 *          |  u64   |  UTF-8 JSON object |  raw tensors, row-major          |
 *          +--------+--------------------+----------------------------------+
 *
 *   header = { "__metadata__": {"key": "value", ...},         (optional)
 *              "NAME": { "dtype": "BF16" | "F16" | "F32" | ...,
 *                        "shape": [d0, d1, ...],
 *                        "data_offsets": [begin, end] },   relative to byte 8+N
 *              ... }
 *
 * Checks made before anything is used: size >= 8; 8 + N <= size; N <= 100 MB;
 * the header parses as a JSON object; each entry has a supported dtype, at most
 * 4 non-negative dims, 0 <= begin <= end <= size - 8 - N, end - begin equal to
 * product(shape) * sizeof(dtype), the data aligned to its element size; no two
 * tensors' bytes overlap. Writers pad the header with spaces to a multiple of
 * 8, so real files are aligned.
 */

static bool json_uint(const cJSON *v, int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > (double)max || v->valuedouble != floor(v->valuedouble))
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

static int parse_dtype(const char *s, eng_dtype *dt)
{
    static const char *const unsupported[] = {
        "F64", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL",
        "F8_E4M3", "F8_E5M2", "F8_E8M0", "E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
    };
    if (!strcmp(s, "F32")) { *dt = DT_F32; return 0; }
    if (!strcmp(s, "F16")) { *dt = DT_F16; return 0; }
    if (!strcmp(s, "BF16")) { *dt = DT_BF16; return 0; }
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (!strcmp(s, unsupported[i]))
            return 1;
    return 2;
}

/* Validates one header entry and appends it to s. */
static int add_entry(st_set *s, const st_mapping *f, const cJSON *e, const char *data,
                     size_t data_size, size_t data_off, eng_err *err)
{
    const char *path = f->path, *name = e->string;
    if (!cJSON_IsObject(e))
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: header entry is not an object", path, name);

    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(dt))
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: dtype missing or not a string", path, name);
    eng_dtype dtype;
    switch (parse_dtype(dt->valuestring, &dtype)) {
    case 1:
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: unsupported dtype %s (F32, F16, BF16 only)",
                        path, name, dt->valuestring);
    case 2:
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: unknown dtype \"%.32s\"",
                        path, name, dt->valuestring);
    }

    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(sh))
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: shape missing or not a list", path, name);
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > ST_MAX_DIMS)
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: %d dimensions, at most %d supported",
                        path, name, ndim, ST_MAX_DIMS);
    int64_t shape[ST_MAX_DIMS] = {0};
    uint64_t nelem = 1;
    int k = 0;
    for (const cJSON *d = sh->child; d; d = d->next, k++) {
        if (!json_uint(d, ST_MAX_DIM_SIZE, &shape[k]))
            return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: shape[%d] is not a non-negative integer",
                            path, name, k);
        if (shape[k] && nelem > UINT64_MAX / 8 / (uint64_t)shape[k])
            return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: shape too large", path, name);
        nelem *= (uint64_t)shape[k];
    }
    uint64_t need = nelem * dtype_size(dtype);

    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    int64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        !json_uint(off->child, INT64_MAX / 2, &b) || !json_uint(off->child->next, INT64_MAX / 2, &en))
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: data_offsets must be [begin, end]", path, name);
    if (b > en)
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: data_offsets [%lld, %lld] end before they begin",
                        path, name, (long long)b, (long long)en);
    if ((uint64_t)en > data_size)
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: data_offsets [%lld, %lld] run past the end of the data (%zu bytes)",
                        path, name, (long long)b, (long long)en, data_size);
    if ((uint64_t)(en - b) != need)
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: data_offsets span %lld bytes, dtype %s and shape need %llu",
                        path, name, (long long)(en - b), dt->valuestring, (unsigned long long)need);
    if ((data_off + (size_t)b) % dtype_size(dtype))
        return eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: data not aligned to its %zu-byte elements",
                        path, name, dtype_size(dtype));

    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 64;
        st_tensor *t = eng_realloc(s->t, (size_t)cap * sizeof *t);
        if (!t)
            return eng_fail(err, ENG_ENOMEM, "%s: out of memory for the tensor list", path);
        s->t = t;
        s->cap = cap;
    }
    char *nm = eng_strdup(name);
    if (!nm)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory for tensor names", path);
    st_tensor *t = &s->t[s->n++];
    *t = (st_tensor){.name = nm, .file = f->base, .dtype = dtype, .ndim = ndim,
                     .data = data + b, .nbytes = (size_t)need};
    memcpy(t->shape, shape, sizeof shape);
    return ENG_OK;
}

static int cmp_data(const void *a, const void *b)
{
    const char *x = (*(const st_tensor *const *)a)->data, *y = (*(const st_tensor *const *)b)->data;
    return x < y ? -1 : x > y;
}

/* Rejects two tensors of one file whose bytes overlap (tensors first..s->n-1). */
static int check_overlap(st_set *s, int first, const char *path, eng_err *err)
{
    int n = s->n - first;
    if (n < 2)
        return ENG_OK;
    const st_tensor **v = eng_malloc((size_t)n * sizeof *v);
    if (!v)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory checking offsets", path);
    int k = 0;
    for (int i = first; i < s->n; i++)
        if (s->t[i].nbytes)
            v[k++] = &s->t[i];
    qsort(v, (size_t)k, sizeof *v, cmp_data);
    int rc = ENG_OK;
    for (int i = 1; i < k && !rc; i++)
        if ((const char *)v[i - 1]->data + v[i - 1]->nbytes > (const char *)v[i]->data)
            rc = eng_fail(err, ENG_EINPUT, "%s: tensors %.200s and %.200s overlap in the data",
                          path, v[i - 1]->name, v[i]->name);
    eng_free(v);
    return rc;
}

/* Maps path and adds its tensors to s. */
static int add_file(st_set *s, const char *path, eng_err *err)
{
    st_mapping *files = eng_realloc(s->files, (size_t)(s->n_files + 1) * sizeof *files);
    if (!files)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory", path);
    s->files = files;
    st_mapping *f = &s->files[s->n_files];
    *f = (st_mapping){0};
    if (!(f->path = eng_strdup(path)))
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory", path);
    s->n_files++;
    const char *slash = strrchr(f->path, '/');
    f->base = slash ? slash + 1 : f->path;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return eng_fail(err, ENG_EINPUT, "%s: no such file", path);
        return eng_fail(err, ENG_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return eng_fail(err, ENG_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return eng_fail(err, ENG_EINPUT, "%s: %s, expected a file", path,
                        S_ISDIR(st.st_mode) ? "is a folder" : "not a regular file");
    }
    size_t size = (size_t)st.st_size;
    if (size < 8) {
        close(fd);
        return eng_fail(err, ENG_EINPUT, "%s: truncated: %zu bytes, shorter than the 8-byte header length",
                        path, size);
    }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED)
        return eng_fail(err, ENG_EIO, "%s: mmap failed: %s", path, strerror(e));
    f->map = map;
    f->size = size;
    s->file_bytes += size;

    const unsigned char *p = map;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | p[i];
    if (n > size - 8)
        return eng_fail(err, ENG_EINPUT, "%s: header length %llu runs past the end of the file (%zu bytes): truncated?",
                        path, (unsigned long long)n, size);
    if (n > ST_MAX_HEADER)
        return eng_fail(err, ENG_EINPUT, "%s: header length %llu is over the %u-byte limit",
                        path, (unsigned long long)n, ST_MAX_HEADER);
    bool oom;
    cJSON *h = eng_json_parse((const char *)p + 8, (size_t)n, &oom);
    if (!h && oom)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory reading the header", path);
    if (!h)
        return eng_fail(err, ENG_EINPUT, "%s: header is not valid JSON", path);
    int rc = ENG_OK;
    if (!cJSON_IsObject(h))
        rc = eng_fail(err, ENG_EINPUT, "%s: header is not a JSON object", path);
    int first = s->n;
    for (const cJSON *it = h->child; it && !rc; it = it->next) {
        if (!strcmp(it->string, "__metadata__"))
            continue;
        rc = add_entry(s, f, it, (const char *)p + 8 + n, size - 8 - (size_t)n, 8 + (size_t)n, err);
    }
    cJSON_Delete(h);
    if (!rc)
        rc = check_overlap(s, first, path, err);
    return rc;
}

int st_open_file(st_set **out, const char *path, eng_err *err)
{
    *out = NULL;
    st_set *s = eng_calloc(1, sizeof *s);
    if (!s || !(s->source = eng_strdup(path))) {
        eng_free(s);
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory", path);
    }
    int rc = add_file(s, path, err);
    if (!rc)
        rc = finish(s, err);
    if (rc) {
        st_close(s);
        return rc;
    }
    *out = s;
    return ENG_OK;
}

/* --------------------------------------------------------- sharded sets */

/*
 * model.safetensors.index.json:
 *   { "metadata": {"total_size": ...},
 *     "weight_map": { "model.embed_tokens.weight": "model-00001-of-00002.safetensors", ... } }
 * Shard names must be plain file names in the same folder (no '/', no "..").
 */

static int open_sharded(st_set *s, const char *dir, const char *ipath, eng_err *err)
{
    char *buf;
    size_t len;
    int rc = config_read_file(ipath, ST_MAX_INDEX, &buf, &len, err);
    if (rc)
        return rc;
    bool oom;
    cJSON *root = eng_json_parse(buf, len, &oom);
    eng_free(buf);
    if (!root && oom)
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory reading the JSON", ipath);
    if (!root)
        return eng_fail(err, ENG_EINPUT, "%s: not valid JSON", ipath);
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    const cJSON **shards = NULL;
    int n_shards = 0;
    if (!cJSON_IsObject(root) || !cJSON_IsObject(wm) || !wm->child) {
        rc = eng_fail(err, ENG_EINPUT, "%s: field weight_map is missing, empty or not an object", ipath);
        goto out;
    }
    shards = eng_calloc((size_t)cJSON_GetArraySize(wm), sizeof *shards);
    if (!shards) {
        rc = eng_fail(err, ENG_ENOMEM, "%s: out of memory", ipath);
        goto out;
    }
    for (const cJSON *it = wm->child; it; it = it->next) {
        const char *f = cJSON_IsString(it) ? it->valuestring : NULL;
        if (!f || !*f || strchr(f, '/') || !strcmp(f, ".") || !strcmp(f, "..") || strlen(f) > 255) {
            rc = eng_fail(err, ENG_EINPUT, "%s: tensor %.200s: shard must be a file name in the same folder",
                          ipath, it->string);
            goto out;
        }
        int k = 0;
        while (k < n_shards && strcmp(shards[k]->valuestring, f))
            k++;
        if (k == n_shards)
            shards[n_shards++] = it;
    }
    for (int k = 0; k < n_shards && !rc; k++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, shards[k]->valuestring) >= sizeof path)
            rc = eng_fail(err, ENG_EINPUT, "%s: path too long", dir);
        else
            rc = add_file(s, path, err);
    }
    if (!rc)
        rc = finish(s, err);
    for (const cJSON *it = wm->child; it && !rc; it = it->next) {
        const st_tensor *t = st_find(s, it->string);
        if (!t)
            rc = eng_fail(err, ENG_EINPUT, "%s: tensor %.200s is mapped to %s, which does not contain it",
                          ipath, it->string, it->valuestring);
        else if (strcmp(t->file, it->valuestring))
            rc = eng_fail(err, ENG_EINPUT, "%s: tensor %.200s is mapped to %s but found in %s",
                          ipath, it->string, it->valuestring, t->file);
    }
out:
    eng_free(shards);
    cJSON_Delete(root);
    return rc;
}

int st_open_dir(st_set **out, const char *dir, eng_err *err)
{
    *out = NULL;
    char ipath[4096], fpath[4096];
    if ((size_t)snprintf(ipath, sizeof ipath, "%s/model.safetensors.index.json", dir) >= sizeof ipath ||
        (size_t)snprintf(fpath, sizeof fpath, "%s/model.safetensors", dir) >= sizeof fpath)
        return eng_fail(err, ENG_EINPUT, "%s: path too long", dir);
    struct stat st;
    bool sharded = stat(ipath, &st) == 0;
    if (!sharded && stat(fpath, &st) != 0)
        return eng_fail(err, ENG_EINPUT, "%s: no model.safetensors or model.safetensors.index.json", dir);
    st_set *s = eng_calloc(1, sizeof *s);
    if (!s || !(s->source = eng_strdup(sharded ? ipath : fpath))) {
        eng_free(s);
        return eng_fail(err, ENG_ENOMEM, "%s: out of memory", dir);
    }
    int rc = sharded ? open_sharded(s, dir, ipath, err) : add_file(s, fpath, err);
    if (!rc && !sharded)
        rc = finish(s, err);
    if (rc) {
        st_close(s);
        return rc;
    }
    *out = s;
    return ENG_OK;
}
