/* String dictionaries: ids in first-appearance order through growth, lookups,
 * kept hashes equal to cvm_dict_hash, lists that keep repeats, and the sorted
 * order equal to a brute-force bytewise sort (embedded NUL bytes, long
 * shared prefixes, prefixes of each other, the empty string). */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dict.h"

typedef struct str {
    char b[48];
    size_t len;
} str;

static uint64_t rng = 12345;
static unsigned next(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(rng >> 33);
}

/* Strings drawn to collide on prefixes: a few stems, then random bytes
 * from a small alphabet that includes 0x00 and 0xFF. */
static str random_str(void)
{
    static const char *const stem[] = {"", "PAT-0214", "PAT-02145", "CUSTOMER-0000000000", "a"};
    static const unsigned char alpha[] = {0x00, '0', '1', 'A', 'z', 0x7F, 0x80, 0xFF};
    str s;
    const char *st = stem[next() % 5];
    s.len = strlen(st);
    memcpy(s.b, st, s.len);
    size_t extra = next() % 24;
    for (size_t i = 0; i < extra && s.len < sizeof s.b; i++)
        s.b[s.len++] = (char)alpha[next() % sizeof alpha];
    return s;
}

static int cmp_bytes(const void *x_, const void *y_)
{
    const str *x = x_, *y = y_;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->b, y->b, m);
    if (c)
        return c;
    return (x->len > y->len) - (x->len < y->len);
}

static void test_intern_find_and_sort(void **state)
{
    (void)state;
    enum { N = 20000 };
    str *in = malloc(N * sizeof *in);
    assert_non_null(in);
    cvm_dict *d = cvm_dict_new(0); /* grows many times */
    assert_non_null(d);
    size_t distinct = 0;
    for (size_t i = 0; i < N; i++) {
        in[i] = random_str();
        size_t before = cvm_dict_size(d);
        int32_t id = cvm_dict_intern(d, in[i].b, in[i].len);
        assert_true(id >= 0);
        if ((size_t)id == before)
            distinct++;
        assert_int_equal(cvm_dict_find(d, in[i].b, in[i].len), id);
    }
    assert_int_equal(cvm_dict_size(d), distinct);
    /* Ids in first-appearance order, strings and hashes as given. */
    for (size_t i = 0; i < N; i++) {
        int32_t id = cvm_dict_find(d, in[i].b, in[i].len);
        assert_int_equal(cvm_dict_len(d, id), in[i].len);
        assert_memory_equal(cvm_dict_str(d, id), in[i].b, in[i].len);
        assert_true(cvm_dict_hash_at(d, id) == cvm_dict_hash(in[i].b, in[i].len));
    }
    /* Sorted order against a brute-force sort of the distinct strings. */
    str *u = malloc(distinct * sizeof *u);
    assert_non_null(u);
    for (size_t id = 0; id < distinct; id++) {
        u[id].len = cvm_dict_len(d, (int32_t)id);
        memcpy(u[id].b, cvm_dict_str(d, (int32_t)id), u[id].len);
    }
    qsort(u, distinct, sizeof *u, cmp_bytes);
    int32_t *order = cvm_dict_sorted_order(d);
    assert_non_null(order);
    for (size_t r = 0; r < distinct; r++) {
        assert_int_equal(cvm_dict_len(d, order[r]), u[r].len);
        assert_memory_equal(cvm_dict_str(d, order[r]), u[r].b, u[r].len);
    }
    cvm_free(order);
    /* Frozen: strings stay readable. */
    cvm_dict_freeze(d);
    assert_int_equal(cvm_dict_size(d), distinct);
    assert_memory_equal(cvm_dict_str(d, 0), in[0].b, in[0].len);
    cvm_dict_free(d);
    free(u);
    free(in);
}

static void test_list_keeps_repeats(void **state)
{
    (void)state;
    cvm_dict *l = cvm_dict_new_list(2); /* grows */
    assert_non_null(l);
    const char *const v[] = {"O1", "O2", "O1", "", "O2", "a longer order id past sixteen bytes"};
    for (int i = 0; i < 6; i++) {
        size_t n = strlen(v[i]);
        assert_int_equal(cvm_dict_push(l, v[i], n, cvm_dict_hash(v[i], n)), i);
    }
    assert_int_equal(cvm_dict_size(l), 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(cvm_dict_str(l, i), v[i]);
        assert_true(cvm_dict_hash_at(l, i) == cvm_dict_hash(v[i], strlen(v[i])));
    }
    cvm_dict_freeze(l);
    assert_string_equal(cvm_dict_str(l, 5), v[5]);
    cvm_dict_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intern_find_and_sort),
        cmocka_unit_test(test_list_keeps_repeats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
