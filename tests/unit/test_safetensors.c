/* test_safetensors.c - the safetensors reader: good single and sharded files,
 * every malformed header the reader must refuse, and out-of-memory paths. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "safetensors.h"
#include "st_write.h"

static char tmp[64];
static char path[4096];

static int setup(void **state)
{
    (void)state;
    return stw_tmpdir(tmp, "st") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    stw_rm_tree(tmp);
    return 0;
}

static const char *in_tmp(const char *name)
{
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    return path;
}

/* Opens file name in tmp expecting failure code; the message must name the
 * file and contain want. */
static void expect_refused(const char *name, int code, const char *want)
{
    st_set *s = (st_set *)1;
    eng_err e = {{0}};
    int rc = st_open_file(&s, in_tmp(name), &e);
    if (rc != code || !strstr(e.msg, name) || !strstr(e.msg, want))
        print_error("%s: rc %d, message \"%s\" (wanted %d and \"%s\")\n", name, rc, e.msg, code, want);
    assert_int_equal(rc, code);
    assert_null(s);
    assert_non_null(strstr(e.msg, name));
    assert_non_null(strstr(e.msg, want));
}

static void raw(const char *name, const char *header, size_t data_len)
{
    assert_int_equal(stw_raw(in_tmp(name), header, -1, NULL, data_len), 0);
}

/* ------------------------------------------------------------------ good */

static void reads_f32_f16_and_bf16_tensors_in_place(void **state)
{
    (void)state;
    const stw_tensor t[] = {
        {"b.f32", DT_F32, 2, {2, 3}},
        {"a.f16", DT_F16, 1, {5}},
        {"c.bf16", DT_BF16, 3, {2, 1, 2}},
    };
    assert_int_equal(stw_file(in_tmp("good.safetensors"), t, 3), 0);
    st_set *s;
    eng_err e;
    assert_int_equal(st_open_file(&s, in_tmp("good.safetensors"), &e), ENG_OK);
    assert_int_equal(st_count(s), 3);
    assert_string_equal(st_get(s, 0)->name, "a.f16");     /* sorted by name */
    assert_string_equal(st_get(s, 2)->name, "c.bf16");
    assert_null(st_get(s, 3));

    const st_tensor *f32 = st_find(s, "b.f32");
    assert_non_null(f32);
    assert_int_equal(f32->dtype, DT_F32);
    assert_int_equal(f32->ndim, 2);
    assert_int_equal(f32->shape[0], 2);
    assert_int_equal(f32->shape[1], 3);
    assert_int_equal(f32->nbytes, 24);
    assert_string_equal(f32->file, "good.safetensors");
    for (int k = 0; k < 6; k++)
        assert_true(((const float *)f32->data)[k] == stw_value(0, k));

    const st_tensor *f16 = st_find(s, "a.f16");
    for (int k = 0; k < 5; k++)
        assert_true(f16_to_f32(((const uint16_t *)f16->data)[k]) == stw_value(1, k));
    const st_tensor *bf = st_find(s, "c.bf16");
    assert_int_equal(bf->ndim, 3);
    assert_int_equal(bf->nbytes, 8);
    for (int k = 0; k < 4; k++)
        assert_true(bf16_to_f32(((const uint16_t *)bf->data)[k]) == stw_value(2, k));

    /* the data is the file's bytes, not a copy: the tensors sit back to back
     * after the header, in the order written */
    assert_ptr_equal((const char *)f32->data + 24, (const char *)f16->data);
    assert_ptr_equal((const char *)f16->data + 10, (const char *)bf->data);
    assert_null(st_find(s, "missing"));
    assert_null(st_find(s, "__metadata__"));
    struct stat sb;
    stat(in_tmp("good.safetensors"), &sb);
    assert_int_equal(st_file_bytes(s), (size_t)sb.st_size);
    st_close(s);
    st_close(NULL);
}

static void accepts_a_header_with_no_tensors_and_empty_tensors(void **state)
{
    (void)state;
    raw("empty.safetensors", "{\"__metadata__\":{}}", 0);
    st_set *s;
    eng_err e;
    assert_int_equal(st_open_file(&s, in_tmp("empty.safetensors"), &e), ENG_OK);
    assert_int_equal(st_count(s), 0);
    assert_null(st_find(s, "x"));
    st_close(s);
    raw("zero.safetensors", "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
                            "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    assert_int_equal(st_open_file(&s, in_tmp("zero.safetensors"), &e), ENG_OK);
    assert_int_equal(st_find(s, "z")->nbytes, 0);
    st_close(s);
}

/* ------------------------------------------------------------- malformed */

static void refuses_a_file_shorter_than_the_length_field(void **state)
{
    (void)state;
    assert_int_equal(stw_text(in_tmp("short.safetensors"), "abc"), 0);
    expect_refused("short.safetensors", ENG_EINPUT, "truncated");
    assert_int_equal(stw_text(in_tmp("zero.safetensors"), ""), 0);
    expect_refused("zero.safetensors", ENG_EINPUT, "truncated");
}

static void refuses_a_header_length_past_the_end(void **state)
{
    (void)state;
    assert_int_equal(stw_raw(in_tmp("long.safetensors"), "{}", 1000, NULL, 0), 0);
    expect_refused("long.safetensors", ENG_EINPUT, "header length 1000 runs past the end");
    /* a huge length must not wrap around */
    assert_int_equal(stw_raw(in_tmp("huge.safetensors"), "{}", INT64_MAX, NULL, 0), 0);
    expect_refused("huge.safetensors", ENG_EINPUT, "runs past the end");
}

static void refuses_a_header_that_is_not_json(void **state)
{
    (void)state;
    raw("notjson.safetensors", "{\"a\": [1, 2", 0);
    expect_refused("notjson.safetensors", ENG_EINPUT, "header is not valid JSON");
    raw("array.safetensors", "[1, 2, 3]", 0);
    expect_refused("array.safetensors", ENG_EINPUT, "not a JSON object");
    assert_int_equal(stw_raw(in_tmp("zerolen.safetensors"), "", 0, NULL, 16), 0);
    expect_refused("zerolen.safetensors", ENG_EINPUT, "not valid JSON");
}

static void refuses_data_offsets_past_the_end(void **state)
{
    (void)state;
    raw("past.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 12);
    expect_refused("past.safetensors", ENG_EINPUT, "tensor w: data_offsets [0, 16] run past the end of the data (12 bytes)");
    raw("big.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[1e300,1e300]}}", 12);
    expect_refused("big.safetensors", ENG_EINPUT, "tensor w: data_offsets must be");
}

static void refuses_overlapping_tensors(void **state)
{
    (void)state;
    raw("overlap.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    expect_refused("overlap.safetensors", ENG_EINPUT, "tensors a and b overlap");
    raw("same.safetensors", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                            "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4);
    expect_refused("same.safetensors", ENG_EINPUT, "overlap");
}

static void refuses_offsets_that_do_not_match_dtype_and_shape(void **state)
{
    (void)state;
    raw("span.safetensors", "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 16);
    expect_refused("span.safetensors", ENG_EINPUT, "tensor w: data_offsets span 8 bytes, dtype BF16 and shape need 12");
    raw("rev.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", 16);
    expect_refused("rev.safetensors", ENG_EINPUT, "end before they begin");
    raw("one.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 16);
    expect_refused("one.safetensors", ENG_EINPUT, "data_offsets must be [begin, end]");
    raw("neg.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 16);
    expect_refused("neg.safetensors", ENG_EINPUT, "data_offsets must be");
    raw("overflow.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776,1099511627776],\"data_offsets\":[0,4]}}", 16);
    expect_refused("overflow.safetensors", ENG_EINPUT, "tensor w: shape too large");
}

static void refuses_unknown_and_unsupported_dtypes(void **state)
{
    (void)state;
    raw("f64.safetensors", "{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
    expect_refused("f64.safetensors", ENG_EINPUT, "tensor w: unsupported dtype F64");
    raw("i8.safetensors", "{\"w\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 8);
    expect_refused("i8.safetensors", ENG_EINPUT, "unsupported dtype I8");
    raw("odd.safetensors", "{\"w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,1]}}", 8);
    expect_refused("odd.safetensors", ENG_EINPUT, "tensor w: unknown dtype \"Q4_K\"");
    raw("nodt.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 8);
    expect_refused("nodt.safetensors", ENG_EINPUT, "tensor w: dtype missing");
}

static void refuses_bad_shapes(void **state)
{
    (void)state;
    raw("dims.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 8);
    expect_refused("dims.safetensors", ENG_EINPUT, "tensor w: 5 dimensions, at most 4");
    raw("negdim.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 8);
    expect_refused("negdim.safetensors", ENG_EINPUT, "tensor w: shape[0] is not a non-negative integer");
    raw("frac.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 8);
    expect_refused("frac.safetensors", ENG_EINPUT, "shape[0]");
    raw("noshape.safetensors", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 8);
    expect_refused("noshape.safetensors", ENG_EINPUT, "tensor w: shape missing");
    raw("notobj.safetensors", "{\"w\":3}", 8);
    expect_refused("notobj.safetensors", ENG_EINPUT, "tensor w: header entry is not an object");
}

static void refuses_misaligned_data_and_duplicate_names(void **state)
{
    (void)state;
    raw("align.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 8);
    expect_refused("align.safetensors", ENG_EINPUT, "tensor w: data not aligned");
    raw("dup.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                           "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8);
    expect_refused("dup.safetensors", ENG_EINPUT, "tensor w appears twice");
}

static void refuses_a_folder_or_a_missing_file(void **state)
{
    (void)state;
    mkdir(in_tmp("dir.safetensors"), 0755);
    expect_refused("dir.safetensors", ENG_EINPUT, "is a folder");
    expect_refused("nothere.safetensors", ENG_EINPUT, "no such file");
}

/* --------------------------------------------------------------- sharded */

static const stw_tensor shard_a[] = {{"a", DT_BF16, 2, {2, 2}}, {"b", DT_F32, 1, {3}}};
static const stw_tensor shard_b[] = {{"c", DT_F16, 1, {4}}};

static const char *sharded_dir(const char *name, const char *index)
{
    static char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", tmp, name);
    mkdir(dir, 0755);
    snprintf(path, sizeof path, "%s/m-1.safetensors", dir);
    assert_int_equal(stw_file(path, shard_a, 2), 0);
    snprintf(path, sizeof path, "%s/m-2.safetensors", dir);
    assert_int_equal(stw_file(path, shard_b, 1), 0);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    assert_int_equal(stw_text(path, index), 0);
    return dir;
}

#define GOOD_INDEX "{\"metadata\":{\"total_size\":28},\"weight_map\":{\"a\":\"m-1.safetensors\"," \
                   "\"b\":\"m-1.safetensors\",\"c\":\"m-2.safetensors\"}}"

static void reads_a_sharded_folder_through_its_index(void **state)
{
    (void)state;
    const char *dir = sharded_dir("sharded", GOOD_INDEX);
    st_set *s;
    eng_err e;
    assert_int_equal(st_open_dir(&s, dir, &e), ENG_OK);
    assert_int_equal(st_count(s), 3);
    assert_string_equal(st_find(s, "a")->file, "m-1.safetensors");
    assert_string_equal(st_find(s, "c")->file, "m-2.safetensors");
    assert_true(f16_to_f32(((const uint16_t *)st_find(s, "c")->data)[1]) == stw_value(0, 1));
    assert_non_null(strstr(st_source(s), "model.safetensors.index.json"));
    struct stat a, b;
    snprintf(path, sizeof path, "%s/m-1.safetensors", dir);
    stat(path, &a);
    snprintf(path, sizeof path, "%s/m-2.safetensors", dir);
    stat(path, &b);
    assert_int_equal(st_file_bytes(s), (size_t)(a.st_size + b.st_size));
    st_close(s);
}

static void expect_dir_refused(const char *dir, const char *want)
{
    st_set *s = (st_set *)1;
    eng_err e = {{0}};
    int rc = st_open_dir(&s, dir, &e);
    if (rc != ENG_EINPUT || !strstr(e.msg, want))
        print_error("rc %d, message \"%s\" (wanted \"%s\")\n", rc, e.msg, want);
    assert_int_equal(rc, ENG_EINPUT);
    assert_null(s);
    assert_non_null(strstr(e.msg, want));
}

static void refuses_broken_indexes(void **state)
{
    (void)state;
    expect_dir_refused(sharded_dir("i1", "{\"weight_map\":{\"a\":\"m-1.safetensors\""),
                       "model.safetensors.index.json: not valid JSON");
    expect_dir_refused(sharded_dir("i2", "{\"metadata\":{}}"), "index.json: field weight_map is missing");
    expect_dir_refused(sharded_dir("i3", "{\"weight_map\":{\"a\":\"m-9.safetensors\"}}"),
                       "m-9.safetensors: no such file");
    expect_dir_refused(sharded_dir("i4", "{\"weight_map\":{\"a\":\"m-2.safetensors\",\"c\":\"m-2.safetensors\"}}"),
                       "tensor a is mapped to m-2.safetensors, which does not contain it");
    expect_dir_refused(sharded_dir("i5", "{\"weight_map\":{\"a\":\"../st/m-1.safetensors\"}}"),
                       "tensor a: shard must be a file name in the same folder");
    expect_dir_refused(sharded_dir("i6", "{\"weight_map\":{\"a\":7}}"), "tensor a: shard must be");
    /* the same tensor in two shards */
    const char *dir = sharded_dir("i7", "{\"weight_map\":{\"a\":\"m-1.safetensors\",\"c\":\"m-2.safetensors\"}}");
    snprintf(path, sizeof path, "%s/m-2.safetensors", dir);
    assert_int_equal(stw_file(path, shard_a, 1), 0);
    expect_dir_refused(dir, "tensor a appears twice");
    /* a folder where a shard should be */
    dir = sharded_dir("i8", GOOD_INDEX);
    snprintf(path, sizeof path, "%s/m-2.safetensors", dir);
    remove(path);
    mkdir(path, 0755);
    expect_dir_refused(dir, "m-2.safetensors: is a folder");
    /* a folder where the index should be */
    snprintf(path, sizeof path, "%s/i9", tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/i9/model.safetensors.index.json", tmp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/i9", tmp);
    expect_dir_refused(path, "index.json: is a folder");
    snprintf(path, sizeof path, "%s/none", tmp);
    mkdir(path, 0755);
    expect_dir_refused(path, "no model.safetensors or model.safetensors.index.json");
}

/* ---------------------------------------------------------- mutated files */

static void randomly_mutated_files_are_read_or_refused_never_crash(void **state)
{
    (void)state;
    const stw_tensor t[] = {{"model.norm.weight", DT_BF16, 1, {6}}, {"w", DT_F32, 2, {3, 2}}};
    assert_int_equal(stw_file(in_tmp("seed.safetensors"), t, 2), 0);
    FILE *f = fopen(in_tmp("seed.safetensors"), "rb");
    unsigned char good[1024];
    size_t n = fread(good, 1, sizeof good, f);
    fclose(f);
    assert_true(n > 64 && n < sizeof good);
    uint64_t rng = 0x9e3779b97f4a7c15u;
    int ok = 0, refused = 0;
    for (int iter = 0; iter < 2000; iter++) {
        unsigned char buf[1024];
        memcpy(buf, good, n);
        size_t len = n;
        int edits = 1 + iter % 4;
        for (int k = 0; k < edits; k++) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            size_t at = (size_t)(rng >> 16) % len;
            switch ((rng >> 8) % 4) {
            case 0: buf[at] = (unsigned char)rng; break;                 /* any byte */
            case 1: buf[at] = "{}[]\",:0123456789-e."[rng % 19]; break; /* JSON-ish byte */
            case 2: len = at > 0 ? at : 1; break;                         /* truncate */
            case 3: buf[at] = (unsigned char)(buf[at] ^ (1u << (rng % 8))); break;
            }
        }
        f = fopen(in_tmp("mut.safetensors"), "wb");
        fwrite(buf, 1, len, f);
        fclose(f);
        st_set *s;
        eng_err e = {{0}};
        int rc = st_open_file(&s, in_tmp("mut.safetensors"), &e);
        assert_true(rc == ENG_OK || rc == ENG_EINPUT);
        if (rc == ENG_OK) {
            /* whatever was accepted lies inside the file */
            for (int i = 0; i < st_count(s); i++) {
                const st_tensor *x = st_get(s, i);
                assert_true(x->nbytes <= len);
                volatile unsigned char sink = 0;
                for (size_t b = 0; b < x->nbytes; b++)
                    sink ^= ((const unsigned char *)x->data)[b];
                (void)sink;
            }
            st_close(s);
            ok++;
        } else {
            assert_null(s);
            assert_non_null(strstr(e.msg, "mut.safetensors"));
            refused++;
        }
    }
    print_message("mutated files: %d read, %d refused\n", ok, refused);
    assert_true(ok > 0 && refused > 0);
}

/* ---------------------------------------------------------- out of memory */

static void every_failed_allocation_gives_enomem_and_leaks_nothing(void **state)
{
    (void)state;
    const char *dir = sharded_dir("oom", GOOD_INDEX);
    st_set *s;
    eng_err e;
    eng_alloc_fail_at(0);
    assert_int_equal(st_open_dir(&s, dir, &e), ENG_OK);
    st_close(s);
    long n = eng_alloc_count();
    assert_true(n > 5);
    for (long i = 1; i <= n; i++) {
        eng_alloc_fail_at(i);
        int rc = st_open_dir(&s, dir, &e);
        if (rc != ENG_ENOMEM)
            print_error("allocation %ld of %ld: rc %d (%s)\n", i, n, rc, e.msg);
        assert_int_equal(rc, ENG_ENOMEM);
        assert_null(s);
    }
    eng_alloc_fail_at(n + 1);
    assert_int_equal(st_open_dir(&s, dir, &e), ENG_OK);
    st_close(s);
    eng_alloc_fail_at(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_f32_f16_and_bf16_tensors_in_place),
        cmocka_unit_test(accepts_a_header_with_no_tensors_and_empty_tensors),
        cmocka_unit_test(refuses_a_file_shorter_than_the_length_field),
        cmocka_unit_test(refuses_a_header_length_past_the_end),
        cmocka_unit_test(refuses_a_header_that_is_not_json),
        cmocka_unit_test(refuses_data_offsets_past_the_end),
        cmocka_unit_test(refuses_overlapping_tensors),
        cmocka_unit_test(refuses_offsets_that_do_not_match_dtype_and_shape),
        cmocka_unit_test(refuses_unknown_and_unsupported_dtypes),
        cmocka_unit_test(refuses_bad_shapes),
        cmocka_unit_test(refuses_misaligned_data_and_duplicate_names),
        cmocka_unit_test(refuses_a_folder_or_a_missing_file),
        cmocka_unit_test(reads_a_sharded_folder_through_its_index),
        cmocka_unit_test(refuses_broken_indexes),
        cmocka_unit_test(randomly_mutated_files_are_read_or_refused_never_crash),
        cmocka_unit_test(every_failed_allocation_gives_enomem_and_leaks_nothing),
    };
    return cmocka_run_group_tests_name("safetensors", tests, setup, teardown);
}
