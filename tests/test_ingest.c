/* Transaction ingest: one test per bad-input kind with its reason, line and
 * column; cleaning rules; column mappings and date formats; chunked parallel
 * ingest equal to a single chunk; every allocation failure is CVM_ENOMEM. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ingest.h"

static char *dir;

static int setup(void **state)
{
    (void)state;
    dir = cvm_test_mkdtemp("ingest");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cvm_test_rmtree(dir);
    free(dir);
    return 0;
}

static char *file(const char *name, const char *text)
{
    char *p = cvm_test_path(dir, name);
    cvm_test_write_file(p, text);
    return p;
}

static const char *const H = "order_id,customer_id,date,product_id,quantity,unit_price,unit_cost\n";

static int load(cvm_txn_spec *sp, cvm_txn_table *t, cvm_rejects *r, cvm_ingest_stats *st)
{
    cvm_err err = {0};
    memset(r, 0, sizeof *r);
    int rc = cvm_ingest_transactions(sp, NULL, t, r, st, &err);
    if (rc != CVM_OK)
        print_message("ingest: %s\n", err.msg);
    return rc;
}

static const cvm_reject *find_line(const cvm_rejects *r, uint64_t line)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].line == line)
            return &r->items[i];
    fail_msg("no reject for line %llu", (unsigned long long)line);
    return NULL;
}

static void test_each_bad_input_kind(void **state)
{
    (void)state;
    char text[4096];
    snprintf(text, sizeof text,
             "%s"
             "O1,C1,2024-01-05,P1,2,10.00,6.00\n"          /* 2: good */
             "O2,C1,2024-01-06,P1,2,10.00\n"               /* 3: field_count */
             "O3,,2024-01-06,P1,2,10.00,6.00\n"            /* 4: missing_customer */
             ",C2,2024-01-06,P1,2,10.00,6.00\n"            /* 5: missing_order */
             "O5,C2,,P1,2,10.00,6.00\n"                    /* 6: missing_date */
             "O6,C2,2024-02-30,P1,2,10.00,6.00\n"          /* 7: bad_date (no 30 Feb) */
             "O7,C2,yesterday,P1,2,10.00,6.00\n"           /* 8: bad_date */
             "O8,C2,2024-01-06,P1,12x,10.00,6.00\n"        /* 9: bad_number quantity */
             "O9,C2,2024-01-06,P1,2,\"1,5\",6.00\n"        /* 10: bad_number price */
             "O10,C2,2024-01-06,P1,,10.00,6.00\n"          /* 11: missing_number */
             "O11,C2,2024-01-06,P1,2,10.00,abc\n"          /* 12: bad_number cost */
             "O12,C2,2024-01-06,P1,2,10.00,6.00,extra\n"   /* 13: field_count */
             "O13,C2,2024-01-06,P1,2,nan,6.00\n"           /* 14: bad_number (no NaN) */
             "O14,C2,2024-01-07,P2,1,3.00,\n",             /* 15: good, cost unknown */
             H);
    char *p = file("bad.csv", text);
    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = p;
    cvm_txn_table t;
    cvm_rejects r;
    cvm_ingest_stats st;
    assert_int_equal(load(&sp, &t, &r, &st), CVM_OK);
    assert_int_equal(st.rows, 14);
    assert_int_equal(st.accepted, 2);
    assert_int_equal(st.rejected, 12);
    assert_int_equal(r.n, 12);
    struct {
        int line, column;
        cvm_reject_reason why;
        const char *field, *detail;
    } want[] = {
        {3, 0, CVM_REJECT_FIELD_COUNT, "", "expected 7 fields, found 6"},
        {4, 2, CVM_REJECT_MISSING_CUSTOMER, "customer_id", ""},
        {5, 1, CVM_REJECT_MISSING_ORDER, "order_id", ""},
        {6, 3, CVM_REJECT_MISSING_DATE, "date", ""},
        {7, 3, CVM_REJECT_BAD_DATE, "date", "'2024-02-30'"},
        {8, 3, CVM_REJECT_BAD_DATE, "date", "'yesterday'"},
        {9, 5, CVM_REJECT_BAD_NUMBER, "quantity", "'12x'"},
        {10, 6, CVM_REJECT_BAD_NUMBER, "unit_price", "'1,5'"},
        {11, 5, CVM_REJECT_MISSING_NUMBER, "quantity", ""},
        {12, 7, CVM_REJECT_BAD_NUMBER, "unit_cost", "'abc'"},
        {13, 0, CVM_REJECT_FIELD_COUNT, "", "found 8"},
        {14, 6, CVM_REJECT_BAD_NUMBER, "unit_price", "'nan'"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const cvm_reject *x = find_line(&r, (uint64_t)want[i].line);
        if (x->reason != want[i].why || x->column != want[i].column ||
            strcmp(x->field, want[i].field) != 0 || !strstr(x->detail, want[i].detail))
            fail_msg("line %d: got %s column %d field '%s' detail '%s'", want[i].line,
                     cvm_reject_name(x->reason), x->column, x->field, x->detail);
        assert_string_equal(x->file, p);
        assert_true(strlen(x->raw) > 5); /* the raw text is kept */
    }
    assert_string_equal(find_line(&r, 10)->raw, "O9,C2,2024-01-06,P1,2,\"1,5\",6.00");
    /* Accepted lines: values and the unknown cost. */
    assert_int_equal(t.n_customers, 2);
    assert_string_equal(cvm_dict_str(t.customers, 0), "C1");
    assert_close(t.revenue[0], 20, 0, 1e-12, "revenue");
    assert_close(t.cost[0], 12, 0, 1e-12, "cost");
    assert_true(isnan(t.cost[1]));
    assert_int_equal(t.line[1], 15);
    cvm_txn_table_clear(&t);
    cvm_rejects_clear(&r);
    free(p);
}

static void test_cleaning_rules(void **state)
{
    (void)state;
    char text[2048];
    snprintf(text, sizeof text,
             "\xEF\xBB\xBF%s"
             "O1,C1,2024-01-05,P1,2,10.00,6.00\r\n"
             "\r\n"
             "RT1,C1,2024-01-09,P1,1,10.00,6.00\r\n"    /* return by prefix */
             "O2,C1,2024-01-10,P1,-1,10.00,6.00\r\n"    /* return by sign */
             "O3,C1,2024-01-11,POSTAGE,1,5.00,0\r\n"    /* excluded code */
             "O1,C1,2024-01-05,P1,2,10.00,6.00\r\n"     /* duplicate of line 2 */
             "O4,Caf\xe9,2024-01-12,P1,1,10.00,6.00\r\n", /* Latin-1 byte */
             H);
    char *p = file("clean.csv", text);
    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = p;
    sp.return_prefix = "RT";
    const char *ex[] = {"POSTAGE"};
    sp.exclude_products = ex;
    sp.n_exclude = 1;
    sp.drop_duplicates = true;
    cvm_txn_table t;
    cvm_rejects r;
    cvm_ingest_stats st;
    assert_int_equal(load(&sp, &t, &r, &st), CVM_OK);
    assert_int_equal(st.rows, 6);
    assert_int_equal(st.returns, 2);
    assert_int_equal(st.excluded, 1);
    assert_int_equal(st.duplicates, 1);
    assert_int_equal(st.accepted, 5);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0].reason, CVM_REJECT_DUPLICATE);
    assert_int_equal(r.items[0].line, 7); /* BOM header 1, blank line 3 */
    assert_non_null(strstr(r.items[0].detail, "same as line 2"));
    assert_int_equal(st.utf8_repaired, 1);
    assert_int_equal(cvm_dict_find(t.customers, "Caf\xc3\xa9", 5), 1);
    /* Rows of C1 sorted by day with their flags. */
    assert_int_equal(t.cust_start[1] - t.cust_start[0], 4);
    assert_int_equal(t.flags[1], CVM_TXN_RETURN);
    assert_int_equal(t.flags[2], CVM_TXN_RETURN);
    assert_int_equal(t.flags[3], CVM_TXN_EXCLUDED);
    cvm_txn_table_clear(&t);
    cvm_rejects_clear(&r);
    free(p);
}

static void test_mappings_and_formats(void **state)
{
    (void)state;
    /* US dates, a revenue column, no order column, semicolons, tab-free. */
    char *p = file("us.csv", "client;when;amount\n"
                             "B;3/7/2024 9:05;10.5\n"
                             "A;3/7/2024 17:30;1\n"
                             "A;3/7/2024 18:00;2\n"
                             "A;12/31/2023 8:00;4\n"
                             "A;13/1/2024 8:00;4\n");
    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = p;
    sp.delimiter = ';';
    sp.col_customer = "client";
    sp.col_date = "when";
    sp.col_revenue = "amount";
    sp.col_order = sp.col_product = sp.col_quantity = sp.col_unit_price = sp.col_unit_cost = "";
    sp.date_format = "%m/%d/%Y %H:%M";
    cvm_txn_table t;
    cvm_rejects r;
    cvm_ingest_stats st;
    assert_int_equal(load(&sp, &t, &r, &st), CVM_OK);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.items[0].reason, CVM_REJECT_BAD_DATE);
    assert_true(st.orders_synthesized);
    /* A: 2023-12-31 then two lines on 2024-03-07 (one order), sorted by day. */
    assert_string_equal(cvm_dict_str(t.customers, 0), "A");
    assert_int_equal(t.cust_start[1], 3);
    assert_true(t.day[0] < t.day[1]);
    assert_int_equal(t.order[1], t.order[2]);
    assert_true(t.order[0] != t.order[1]);
    assert_close(t.revenue[3], 10.5, 0, 0, "B's revenue");
    cvm_txn_table_clear(&t);
    cvm_rejects_clear(&r);
    /* No header: columns by number. */
    char *q = file("nohdr.csv", "X1,2024-05-01,3,2.5\nX2,2024-05-02,1,1\n");
    cvm_txn_spec_default(&sp);
    sp.path = q;
    sp.header = false;
    sp.col_customer = "1";
    sp.col_date = "2";
    sp.col_quantity = "3";
    sp.col_unit_price = "4";
    sp.col_order = sp.col_product = sp.col_unit_cost = "";
    assert_int_equal(load(&sp, &t, &r, &st), CVM_OK);
    assert_int_equal(st.rows, 2);
    assert_close(t.revenue[0], 7.5, 0, 0, "revenue by column numbers");
    cvm_txn_table_clear(&t);
    cvm_rejects_clear(&r);
    /* A configured column missing from the header is an error naming it. */
    cvm_txn_spec_default(&sp);
    sp.path = p;
    sp.delimiter = ';';
    cvm_err err = {0};
    memset(&r, 0, sizeof r);
    assert_int_equal(cvm_ingest_transactions(&sp, NULL, &t, &r, &st, &err), CVM_EDATA);
    assert_non_null(strstr(err.msg, "us.csv:1"));
    assert_non_null(strstr(err.msg, "'customer_id'"));
    cvm_rejects_clear(&r);
    free(p);
    free(q);
}

/* A new file in the test directory with the transaction header written. */
static FILE *open_with_header(const char *name, char **path)
{
    *path = cvm_test_path(dir, name);
    FILE *f = fopen(*path, "w");
    assert_non_null(f);
    fputs(H, f);
    return f;
}

static void test_chunked_equals_single_chunk(void **state)
{
    (void)state;
    char *p;
    FILE *f = open_with_header("big.csv", &p);
    uint64_t s = 7;
    for (int i = 0; i < 30000; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        int c = (int)(s >> 40) % 997, prod = (int)(s >> 20) % 50;
        if (i % 1000 == 7)
            fprintf(f, "O%d,\"C%03d\",\"2024-01-%02d\",\"P%d\nwith newline\",1,2.00,1.00\n", i / 3, c,
                    1 + i % 28, prod);
        else if (i % 777 == 0)
            fprintf(f, "O%d,C%03d,bad-date,P%d,1,2.00,1.00\n", i / 3, c, prod);
        else
            fprintf(f, "O%d,C%03d,2024-%02d-%02d,P%d,%d,%d.25,1.00\n", i / 3, c, 1 + i % 12,
                    1 + i % 28, prod, 1 + i % 5, i % 40);
    }
    fclose(f);
    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = p;
    cvm_txn_table a, b;
    cvm_rejects ra, rb;
    cvm_ingest_stats sa, sb;
    sp.chunk_bytes = 1 << 30;
    sp.threads = 1;
    sp.libcsv_only = true;
    sp.keep_order_ids = true;
    assert_int_equal(load(&sp, &a, &ra, &sa), CVM_OK);
    assert_int_equal(sa.chunks, 1);
    sp.chunk_bytes = 4096;
    sp.threads = 2;
    sp.libcsv_only = false;
    assert_int_equal(load(&sp, &b, &rb, &sb), CVM_OK);
    assert_true(sb.chunks > 100);
    assert_true(sb.boundary_repairs > 0);
    assert_int_equal(a.n_rows, b.n_rows);
    assert_int_equal(a.n_customers, b.n_customers);
    assert_int_equal(cvm_dict_size(a.orders), cvm_dict_size(b.orders));
    assert_int_equal(a.n_orders, cvm_dict_size(a.orders));
    assert_int_equal(b.n_orders, a.n_orders);
    for (size_t i = 0; i < a.n_rows; i++) {
        if (a.customer[i] != b.customer[i] || a.order[i] != b.order[i] || a.day[i] != b.day[i] ||
            a.product[i] != b.product[i] || a.revenue[i] != b.revenue[i] ||
            a.quantity[i] != b.quantity[i] || a.line[i] != b.line[i] || a.flags[i] != b.flags[i])
            fail_msg("row %zu differs (line %u vs %u)", i, a.line[i], b.line[i]);
    }
    for (size_t i = 0; i < cvm_dict_size(a.orders); i++)
        assert_string_equal(cvm_dict_str(a.orders, (int32_t)i), cvm_dict_str(b.orders, (int32_t)i));
    for (size_t i = 0; i < cvm_dict_size(a.products); i++)
        assert_string_equal(cvm_dict_str(a.products, (int32_t)i), cvm_dict_str(b.products, (int32_t)i));
    assert_int_equal(ra.n, rb.n);
    for (size_t i = 0; i < ra.n; i++) {
        assert_int_equal(ra.items[i].line, rb.items[i].line);
        assert_string_equal(ra.items[i].raw, rb.items[i].raw);
    }
    assert_true(ra.n > 30);
    cvm_txn_table_clear(&a);
    cvm_txn_table_clear(&b);
    cvm_rejects_clear(&ra);
    cvm_rejects_clear(&rb);
    free(p);
}

/* A failing allocator: allocation number `budget` and later fail. */
static long budget, allocs;
static void *f_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return allocs++ >= budget ? NULL : malloc(n);
}
static void *f_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return allocs++ >= budget ? NULL : realloc(p, n);
}
static void f_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

/* Order ids that come back far apart, within a chunk and across chunks,
 * are still one order each: the ids equal an independent expectation built
 * from the file, numbered in order of first appearance. */
static void test_orders_repeat_apart(void **state)
{
    (void)state;
    char *p;
    FILE *f = open_with_header("orders.csv", &p);
    enum { N = 6000, ORDERS = 613 };
    int order_of_line[N + 2];
    for (int i = 0; i < N; i++) {
        int o = (int)((long)i * 7919 % ORDERS); /* every order about ten times, scattered */
        order_of_line[i + 2] = o;
        fprintf(f, "O%d,C%d,2024-02-%02d,P%d,1,3.00,1.00\n", o, o % 97, 1 + o % 28, i % 13);
    }
    fclose(f);
    /* First appearance of each order, by line. */
    int first_rank[ORDERS], seen = 0;
    for (int o = 0; o < ORDERS; o++)
        first_rank[o] = -1;
    for (int l = 2; l < N + 2; l++)
        if (first_rank[order_of_line[l]] < 0)
            first_rank[order_of_line[l]] = seen++;
    assert_int_equal(seen, ORDERS);
    size_t chunk_sizes[] = {1 << 30, 2048};
    for (int v = 0; v < 2; v++) {
        cvm_txn_spec sp;
        cvm_txn_spec_default(&sp);
        sp.path = p;
        sp.chunk_bytes = chunk_sizes[v];
        sp.threads = 2;
        sp.keep_order_ids = true;
        cvm_txn_table t;
        cvm_rejects r;
        cvm_ingest_stats st;
        assert_int_equal(load(&sp, &t, &r, &st), CVM_OK);
        assert_int_equal(t.n_rows, N);
        assert_int_equal(t.n_orders, ORDERS);
        assert_int_equal(cvm_dict_size(t.orders), ORDERS);
        for (size_t i = 0; i < t.n_rows; i++) {
            int o = order_of_line[t.line[i]];
            char want[16];
            snprintf(want, sizeof want, "O%d", o);
            assert_string_equal(cvm_dict_str(t.orders, t.order[i]), want);
            assert_int_equal(t.order[i], first_rank[o]);
        }
        cvm_txn_table_clear(&t);
        cvm_rejects_clear(&r);
    }
    free(p);
}

static void test_out_of_memory_everywhere(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text, "%sO1,C1,2024-01-05,P1,2,10.00,6.00\nO2,,2024-01-05,P1,2,10.00,6.00\n"
                                "O3,C2,2024-01-06,P2,1,5.00,\n", H);
    char *p = file("oom.csv", text);
    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = p;
    sp.threads = 1;
    cvm_allocator a = {f_malloc, f_realloc, f_free, NULL};
    int ok = 0, nomem = 0;
    for (budget = 0; budget < 400 && ok == 0; budget++) {
        allocs = 0;
        cvm_set_allocator(&a);
        cvm_txn_table t;
        cvm_rejects r = {0};
        cvm_ingest_stats st;
        cvm_err err = {0};
        int rc = cvm_ingest_transactions(&sp, NULL, &t, &r, &st, &err);
        cvm_set_allocator(NULL);
        if (rc == CVM_OK) {
            ok++;
            assert_int_equal(t.n_rows, 2);
            cvm_txn_table_clear(&t);
        } else {
            if (rc != CVM_ENOMEM)
                fail_msg("budget %ld: status %d (%s), not ENOMEM", budget, rc, err.msg);
            nomem++;
        }
        cvm_rejects_clear(&r);
    }
    assert_int_equal(ok, 1);
    assert_true(nomem > 20);
    free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_bad_input_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cleaning_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mappings_and_formats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_equals_single_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orders_repeat_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory_everywhere, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
