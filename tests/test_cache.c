/* The parse cache and input checksums: the checksum is the published XXH3-64
 * (checked against a published value and against libxxhash's one-shot
 * function across the mapping windows); a saved table loads back equal,
 * column by column; a changed key is a miss; a truncated file or a byte
 * changed in any section is reported corrupt and never yields a table. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "alloc.h"
#include "cache.h"
#include "filehash.h"
#include "ingest.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = cvm_test_mkdtemp("cache");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cvm_test_rmtree(dir);
    free(dir);
    return 0;
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void test_checksum_is_xxh3(void **state)
{
    (void)state;
    cvm_err err = {0};
    uint64_t h, size;
    char *p = cvm_test_path(dir, "empty");
    write_bytes(p, "", 0);
    assert_int_equal(cvm_file_checksum(p, &h, &size, &err), CVM_OK);
    /* XXH3-64 of no bytes, seed 0: the reference value of the xxHash spec
     * (what `xxhsum -H3` prints for an empty file). */
    assert_true(h == 0x2D06800538D394C2ULL);
    assert_int_equal(size, 0);
    free(p);

    /* Larger than one 64 MiB mapping window and not a multiple of it: the
     * windowed streaming hash must equal the one-shot hash of the bytes. */
    size_t sizes[] = {1, 17, 240, 4096, ((size_t)64 << 20) + 12345};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        unsigned char *b = malloc(n);
        assert_non_null(b);
        uint64_t x = 0x9E3779B97F4A7C15ULL * (k + 1);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (unsigned char)x;
        }
        char *q = cvm_test_path(dir, "blob");
        write_bytes(q, b, n);
        assert_int_equal(cvm_file_checksum(q, &h, &size, &err), CVM_OK);
        assert_true(h == XXH3_64bits(b, n));
        assert_int_equal(size, n);
        unlink(q);
        free(q);
        free(b);
    }
    char *missing = cvm_test_path(dir, "missing");
    assert_int_equal(cvm_file_checksum(missing, &h, &size, &err), CVM_EIO);
    assert_non_null(strstr(err.msg, "missing"));
    free(missing);
}

/* A small table with rejects, returns and a cost-less line. */
static bool sample_lines = true; /* keep_lines of the sample's ingest */
static void ingest_sample(cvm_txn_table *t, cvm_rejects *rej, cvm_ingest_stats *st)
{
    char *p = cvm_test_path(dir, "t.csv");
    cvm_test_write_file(p, "order_id,customer_id,date,product_id,quantity,unit_price,unit_cost\n"
                           "O1,C2,2024-01-05,P1,2,10.00,6.00\n"
                           "O1,C2,2024-01-05,P2,1,4.50,\n"
                           "O2,C1,2024-01-06,P1,1,10.00,6.00\n"
                           "O3,C1,bad-date,P1,1,10.00,6.00\n"
                           "RT4,C2,2024-01-09,P1,-1,10.00,6.00\n"
                           "O5,C3,2024-02-01,P3,3,1.25,0.50\n"
                           "O6,,2024-02-01,P3,3,1.25,0.50\n");
    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = p;
    sp.return_prefix = "RT";
    sp.keep_lines = sample_lines;
    cvm_err err = {0};
    memset(rej, 0, sizeof *rej);
    assert_int_equal(cvm_ingest_transactions(&sp, NULL, t, rej, st, &err), CVM_OK);
    assert_int_equal(rej->n, 2);
    free(p);
}

#define SAME_ARRAY(a, b, n) assert_memory_equal((a), (b), (n) * sizeof *(a))

static void assert_tables_equal(const cvm_txn_table *a, const cvm_txn_table *b)
{
    assert_int_equal(a->n_rows, b->n_rows);
    assert_int_equal(a->n_customers, b->n_customers);
    assert_int_equal(a->n_orders, b->n_orders);
    assert_int_equal(a->has_cost, b->has_cost);
    size_t n = a->n_rows;
    SAME_ARRAY(a->customer, b->customer, n);
    SAME_ARRAY(a->order, b->order, n);
    SAME_ARRAY(a->day, b->day, n);
    SAME_ARRAY(a->product, b->product, n);
    SAME_ARRAY(a->quantity, b->quantity, n); /* NaN bit patterns too */
    SAME_ARRAY(a->revenue, b->revenue, n);
    SAME_ARRAY(a->cost, b->cost, n);
    SAME_ARRAY(a->flags, b->flags, n);
    assert_int_equal(a->line == NULL, b->line == NULL);
    if (a->line)
        SAME_ARRAY(a->line, b->line, n);
    SAME_ARRAY(a->cust_start, b->cust_start, a->n_customers + 1);
    assert_int_equal(cvm_dict_size(a->customers), cvm_dict_size(b->customers));
    for (size_t i = 0; i < cvm_dict_size(a->customers); i++)
        assert_string_equal(cvm_dict_str(a->customers, (int32_t)i), cvm_dict_str(b->customers, (int32_t)i));
    assert_int_equal(cvm_dict_size(a->products), cvm_dict_size(b->products));
    for (size_t i = 0; i < cvm_dict_size(a->products); i++)
        assert_string_equal(cvm_dict_str(a->products, (int32_t)i), cvm_dict_str(b->products, (int32_t)i));
}

/* The sample table saved under `key` in dir/name. */
typedef struct saved {
    cvm_txn_table t;
    cvm_rejects rej;
    cvm_ingest_stats st;
    char *path;
} saved;

static void save_sample(saved *s, const char *name, uint64_t key)
{
    ingest_sample(&s->t, &s->rej, &s->st);
    s->path = cvm_test_path(dir, name);
    cvm_err err = {0};
    assert_int_equal(cvm_cache_save(s->path, key, &s->t, &s->rej, &s->st, &err), CVM_OK);
}

static void saved_clear(saved *s)
{
    cvm_txn_table_clear(&s->t);
    cvm_rejects_clear(&s->rej);
    free(s->path);
}

static void test_round_trip(void **state)
{
    (void)state;
    saved sv;
    save_sample(&sv, "job.cvmcache", 42);
    cvm_txn_table t = sv.t, u;
    cvm_rejects rej = sv.rej, rej2;
    cvm_ingest_stats st = sv.st, st2;
    const char *cp = sv.path;
    cvm_err err = {0};
    assert_int_equal(cvm_cache_load(cp, 42, &u, &rej2, &st2, "t.csv", &err), CVM_OK);
    assert_non_null(u.map_base); /* columns are in the mapping, not copies */
    assert_tables_equal(&t, &u);
    assert_int_equal(rej2.n, rej.n);
    for (size_t i = 0; i < rej.n; i++) {
        assert_int_equal(rej2.items[i].line, rej.items[i].line);
        assert_int_equal(rej2.items[i].column, rej.items[i].column);
        assert_int_equal(rej2.items[i].reason, rej.items[i].reason);
        assert_string_equal(rej2.items[i].raw, rej.items[i].raw);
        assert_string_equal(rej2.items[i].file, "t.csv");
    }
    assert_int_equal(st2.rows, st.rows);
    assert_int_equal(st2.accepted, st.accepted);
    assert_int_equal(st2.rejected, st.rejected);
    assert_int_equal(st2.returns, st.returns);
    /* A stage may adjust a column in place (product costs): the mapping is
     * private, so the file is not changed by it. */
    u.cost[0] = 123.0;
    cvm_txn_table_clear(&u);
    cvm_rejects_clear(&rej2);
    assert_int_equal(cvm_cache_load(cp, 42, &u, &rej2, &st2, "t.csv", &err), CVM_OK);
    assert_tables_equal(&t, &u);
    cvm_txn_table_clear(&u);
    cvm_rejects_clear(&rej2);

    /* The two-step open/take gives the stored key before building anything. */
    cvm_cache_file *f;
    uint64_t k = 0;
    assert_int_equal(cvm_cache_open(cp, &f, &k, &err), CVM_OK);
    assert_true(k == 42);
    assert_int_equal(cvm_cache_take(f, &u, &rej2, &st2, "t.csv", &err), CVM_OK);
    assert_tables_equal(&t, &u);
    cvm_txn_table_clear(&u);
    cvm_rejects_clear(&rej2);

    /* Another key: a miss, nothing loaded. */
    assert_int_equal(cvm_cache_load(cp, 43, &u, &rej2, &st2, "t.csv", &err), CVM_ENOTFOUND);
    assert_int_equal(u.n_rows, 0);
    assert_null(u.customer);
    char *none = cvm_test_path(dir, "none.cvmcache");
    assert_int_equal(cvm_cache_load(none, 42, &u, &rej2, &st2, "t.csv", &err), CVM_ENOTFOUND);
    free(none);
    (void)st;
    saved_clear(&sv);
}

/* A table without line numbers (what the job runner keeps) saves and loads
 * without them. */
static void test_round_trip_without_lines(void **state)
{
    (void)state;
    sample_lines = false;
    saved sv;
    save_sample(&sv, "nolines.cvmcache", 5);
    sample_lines = true;
    assert_null(sv.t.line);
    cvm_txn_table u;
    cvm_rejects rej2;
    cvm_ingest_stats st2;
    cvm_err err = {0};
    assert_int_equal(cvm_cache_load(sv.path, 5, &u, &rej2, &st2, "t.csv", &err), CVM_OK);
    assert_null(u.line);
    assert_tables_equal(&sv.t, &u);
    cvm_txn_table_clear(&u);
    cvm_rejects_clear(&rej2);
    saved_clear(&sv);
}

static void test_corruption_detected(void **state)
{
    (void)state;
    saved sv;
    save_sample(&sv, "c.cvmcache", 7);
    const cvm_txn_table t = sv.t;
    cvm_txn_table u;
    cvm_rejects rej2;
    cvm_ingest_stats st2;
    const char *cp = sv.path;
    cvm_err err = {0};
    size_t len;
    char *orig = cvm_test_read_file(cp, &len);
    assert_true(len > 300);
    /* One byte changed at a time, everywhere past the magic, version and key
     * (a changed key is a miss, not corruption): header offsets, every
     * column, the padding, the dictionaries, rejects and the trailer. */
    size_t tried = 0;
    for (size_t at = 24; at < len; at += (at < 256 ? 1 : 7)) {
        char *b = malloc(len);
        memcpy(b, orig, len);
        b[at] ^= 0x20;
        write_bytes(cp, b, len);
        free(b);
        int rc = cvm_cache_load(cp, 7, &u, &rej2, &st2, "t.csv", &err);
        if (rc != CVM_EDATA)
            fail_msg("byte %zu changed: load returned %d, expected CVM_EDATA", at, rc);
        assert_null(u.customer);
        assert_int_equal(rej2.n, 0);
        tried++;
    }
    assert_true(tried > 100);
    /* Truncated anywhere: corrupt too. */
    size_t cuts[] = {0, 10, 191, len / 2, len - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        write_bytes(cp, orig, cuts[k]);
        assert_int_equal(cvm_cache_load(cp, 7, &u, &rej2, &st2, "t.csv", &err), CVM_EDATA);
        assert_non_null(strstr(err.msg, "c.cvmcache"));
    }
    /* The intact file loads again. */
    write_bytes(cp, orig, len);
    assert_int_equal(cvm_cache_load(cp, 7, &u, &rej2, &st2, "t.csv", &err), CVM_OK);
    assert_tables_equal(&t, &u);
    cvm_txn_table_clear(&u);
    cvm_rejects_clear(&rej2);
    free(orig);
    saved_clear(&sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_checksum_is_xxh3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_without_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption_detected, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
