#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "error.h"
#include "gen.h"
#include "gen_cli.h"

/* ------------------------------------------------------------------------ */
/* A small strict CSV reader, independent of the generator's code.          */

typedef struct rec {
    int nf;
    char **f;
} rec;

typedef struct table {
    size_t n; /* records, header included: rows[0] is line 1 */
    rec *rows;
} table;

/* RFC 4180 split of one line without its newline; -1 on broken quoting. */
static int split_line(const char *s, size_t n, rec *r)
{
    int cap = 8;
    r->nf = 0;
    r->f = malloc((size_t)cap * sizeof *r->f);
    assert_non_null(r->f);
    size_t i = 0;
    for (;;) {
        char *field = malloc(n + 1);
        assert_non_null(field);
        size_t k = 0;
        if (i < n && s[i] == '"') {
            i++;
            for (;;) {
                if (i >= n) {
                    free(field);
                    return -1;
                }
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        field[k++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                field[k++] = s[i++];
            }
            if (i < n && s[i] != ',') {
                free(field);
                return -1;
            }
        } else {
            while (i < n && s[i] != ',') {
                if (s[i] == '"') {
                    free(field);
                    return -1;
                }
                field[k++] = s[i++];
            }
        }
        field[k] = '\0';
        if (r->nf == cap) {
            cap *= 2;
            r->f = realloc(r->f, (size_t)cap * sizeof *r->f);
            assert_non_null(r->f);
        }
        r->f[r->nf++] = field;
        if (i >= n)
            break;
        i++; /* the comma */
    }
    return r->nf;
}

static void table_read(const char *dir, const char *name, table *t)
{
    char *path = cvm_test_path(dir, name);
    size_t len;
    char *text = cvm_test_read_file(path, &len);
    assert_non_null(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    assert_null(memchr(text, '\r', len)); /* LF line endings */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    t->rows = calloc(lines, sizeof *t->rows);
    assert_non_null(t->rows);
    t->n = 0;
    const char *s = text;
    while (s < text + len) {
        const char *e = memchr(s, '\n', (size_t)(text + len - s));
        rec *r = &t->rows[t->n++];
        if (split_line(s, (size_t)(e - s), r) < 0)
            r->nf = -1;
        s = e + 1;
    }
    free(text);
    free(path);
}

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++) {
        for (int j = 0; j < t->rows[i].nf; j++)
            free(t->rows[i].f[j]);
        free(t->rows[i].f);
    }
    free(t->rows);
    t->rows = NULL;
    t->n = 0;
}

static void assert_header(const table *t, const char *const *cols, int n, const char *file)
{
    assert_true(t->n >= 1);
    if (t->rows[0].nf != n) {
        print_error("%s: header has %d fields, want %d\n", file, t->rows[0].nf, n);
        fail();
    }
    for (int i = 0; i < n; i++)
        assert_string_equal(t->rows[0].f[i], cols[i]);
}

/* ------------------------------------------------------------------------ */
/* Strict field checks                                                      */

static int all_digits(const char *s, size_t n)
{
    if (strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int64_t civil_days(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int mdays(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) ? 29 : dm[m - 1];
}

/* YYYY-MM-DD into days since 1970; -1 when invalid. */
static int64_t parse_day(const char *s)
{
    if (strlen(s) < 10 || s[4] != '-' || s[7] != '-')
        return -1;
    char y[5], m[3], d[3];
    memcpy(y, s, 4), y[4] = 0;
    memcpy(m, s + 5, 2), m[2] = 0;
    memcpy(d, s + 8, 2), d[2] = 0;
    if (!all_digits(y, 4) || !all_digits(m, 2) || !all_digits(d, 2))
        return -1;
    int yy = atoi(y), mm = atoi(m), dd = atoi(d);
    if (mm < 1 || mm > 12 || dd < 1 || dd > mdays(yy, mm))
        return -1;
    return civil_days(yy, mm, dd);
}

/* YYYY-MM-DD HH:MM:SS; seconds of the day in *tod. */
static int64_t parse_datetime(const char *s, int *tod)
{
    if (strlen(s) != 19 || s[10] != ' ' || s[13] != ':' || s[16] != ':')
        return -1;
    char date[11];
    memcpy(date, s, 10);
    date[10] = 0;
    int64_t day = parse_day(date);
    char h[3] = {s[11], s[12], 0}, mi[3] = {s[14], s[15], 0}, se[3] = {s[17], s[18], 0};
    if (day < 0 || !all_digits(h, 2) || !all_digits(mi, 2) || !all_digits(se, 2))
        return -1;
    if (atoi(h) > 23 || atoi(mi) > 59 || atoi(se) > 59)
        return -1;
    *tod = atoi(h) * 3600 + atoi(mi) * 60 + atoi(se);
    return day;
}

static int parse_int(const char *s, long *v)
{
    const char *p = s + (s[0] == '-');
    size_t n = strlen(p);
    if (n == 0 || n > 9 || !all_digits(p, n) || (p[0] == '0' && n > 1))
        return 0;
    *v = atol(s);
    return 1;
}

/* -?digits.dd into cents */
static int parse_money(const char *s, long *cents)
{
    const char *p = s + (s[0] == '-');
    const char *dot = strchr(p, '.');
    if (dot == NULL || dot == p || strlen(dot) != 3 || !all_digits(dot + 1, 2))
        return 0;
    char ip[32];
    size_t n = (size_t)(dot - p);
    if (n >= sizeof ip)
        return 0;
    memcpy(ip, p, n);
    ip[n] = 0;
    if (!all_digits(ip, n) || (ip[0] == '0' && n > 1))
        return 0;
    *cents = atol(ip) * 100 + atol(dot + 1);
    if (s[0] == '-')
        *cents = -*cents;
    return 1;
}

static const char *const prefixes[6] = {"HOS", "DOC", "PHA", "CON", "DIS", "PAT"};
static const char *const type_names[6] = {"hospital", "doctor",      "pharmacy",
                                          "contact",  "distributor", "patient"};

static int type_of_prefix(const char *id)
{
    for (int i = 0; i < 6; i++)
        if (strncmp(id, prefixes[i], 3) == 0)
            return i;
    return -1;
}

/* customer number (1-based), 0 when the id is malformed */
static long parse_customer(const char *s)
{
    if (strlen(s) != 10 || type_of_prefix(s) < 0 || s[3] != '-' || !all_digits(s + 4, 6))
        return 0;
    return atol(s + 4);
}

/* 0..1199 for P00001..P01200, 1200.. for the codes, -1 otherwise */
static int parse_product(const char *s)
{
    if (strcmp(s, "POSTAGE") == 0)
        return 1200;
    if (strcmp(s, "FEE-HANDLING") == 0)
        return 1201;
    if (strcmp(s, "ADJ") == 0)
        return 1202;
    if (s[0] != 'P' || !all_digits(s + 1, 5))
        return -1;
    int v = atoi(s + 1);
    return v >= 1 && v <= 1200 ? v - 1 : -1;
}

typedef struct txrow {
    char oid[12];
    long line;
    long cust; /* 1-based number */
    int64_t day;
    int tod;
    int prod;
    long qty, price, cost;
} txrow;

enum { ROW_OK, ROW_MISSING_CUSTOMER, ROW_BAD_NUMBER, ROW_BAD_DATE, ROW_FIELD_COUNT, ROW_OTHER };
static const char *const reason_name[] = {"ok",       "missing_customer", "bad_number",
                                          "bad_date", "field_count",      "other"};

/* Classifies one transactions.csv record the way a strict reader would. */
static int check_tx(const rec *r, txrow *out)
{
    if (r->nf != 8)
        return ROW_FIELD_COUNT;
    const char *const *f = (const char *const *)r->f;
    if (f[2][0] == '\0')
        return ROW_MISSING_CUSTOMER;
    if (parse_datetime(f[3], &out->tod) < 0)
        return ROW_BAD_DATE;
    if (!parse_int(f[5], &out->qty) || !parse_money(f[6], &out->price) ||
        !parse_money(f[7], &out->cost))
        return ROW_BAD_NUMBER;
    if (strlen(f[0]) != 11 || (strncmp(f[0], "SO", 2) != 0 && strncmp(f[0], "RT", 2) != 0) ||
        !all_digits(f[0] + 2, 9))
        return ROW_OTHER;
    if (!parse_int(f[1], &out->line) || out->line < 1)
        return ROW_OTHER;
    if ((out->cust = parse_customer(f[2])) == 0)
        return ROW_OTHER;
    if ((out->prod = parse_product(f[4])) < 0)
        return ROW_OTHER;
    if (out->qty == 0 || out->cost < 0)
        return ROW_OTHER;
    memcpy(out->oid, f[0], 12);
    out->day = parse_datetime(f[3], &out->tod);
    return ROW_OK;
}

/* ------------------------------------------------------------------------ */
/* The shared data set                                                      */

#define DS_CUSTOMERS 3000
#define DS_DAYS 730

typedef struct dataset {
    char *dir;
    cvm_gen_params p;
    cvm_gen_stats st;
    int64_t day0;
    table tx, cust, prod, inter, t_cust, t_bund, t_cyc, t_bad;
    txrow *rows; /* good rows in file order */
    size_t nrows;
    int *bad_of_line; /* reason per physical line from truth_bad_rows, 0 = good */
} dataset;

static dataset ds;

static int setup_dataset(void **state)
{
    (void)state;
    memset(&ds, 0, sizeof ds);
    ds.dir = cvm_test_mkdtemp("gen");
    cvm_gen_params_default(&ds.p);
    ds.p.customers = DS_CUSTOMERS;
    ds.p.seed = 11;
    ds.p.out_dir = ds.dir;
    ds.p.days = DS_DAYS;
    ds.p.bad_row_share = 0.005;
    ds.p.return_share = 0.03;
    ds.p.threads = 2;
    cvm_err err = {0};
    int rc = cvm_gen_run(&ds.p, &ds.st, &err);
    if (rc != CVM_OK) {
        print_error("cvm_gen_run: %s\n", err.msg);
        return -1;
    }
    ds.day0 = parse_day(ds.p.start);
    table_read(ds.dir, "transactions.csv", &ds.tx);
    table_read(ds.dir, "customers.csv", &ds.cust);
    table_read(ds.dir, "products.csv", &ds.prod);
    table_read(ds.dir, "interactions.csv", &ds.inter);
    table_read(ds.dir, "truth_customers.csv", &ds.t_cust);
    table_read(ds.dir, "truth_bundles.csv", &ds.t_bund);
    table_read(ds.dir, "truth_cycles.csv", &ds.t_cyc);
    table_read(ds.dir, "truth_bad_rows.csv", &ds.t_bad);

    ds.bad_of_line = calloc(ds.tx.n + 2, sizeof *ds.bad_of_line);
    assert_non_null(ds.bad_of_line);
    for (size_t i = 1; i < ds.t_bad.n; i++) {
        long line = atol(ds.t_bad.rows[i].f[0]);
        assert_true(line >= 2 && (size_t)line <= ds.tx.n);
        int reason = -1;
        for (int k = ROW_MISSING_CUSTOMER; k <= ROW_FIELD_COUNT; k++)
            if (strcmp(ds.t_bad.rows[i].f[1], reason_name[k]) == 0)
                reason = k;
        assert_true(reason > 0);
        ds.bad_of_line[line] = reason;
    }
    ds.rows = malloc(ds.tx.n * sizeof *ds.rows);
    assert_non_null(ds.rows);
    for (size_t i = 1; i < ds.tx.n; i++) {
        if (ds.bad_of_line[i + 1])
            continue;
        txrow r;
        if (check_tx(&ds.tx.rows[i], &r) == ROW_OK) {
            r.day -= ds.day0;
            ds.rows[ds.nrows++] = r;
        }
    }
    return 0;
}

static int teardown_dataset(void **state)
{
    (void)state;
    table *ts[] = {&ds.tx, &ds.cust, &ds.prod, &ds.inter, &ds.t_cust, &ds.t_bund, &ds.t_cyc,
                   &ds.t_bad};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        table_free(ts[i]);
    free(ds.rows);
    free(ds.bad_of_line);
    cvm_test_rmtree(ds.dir);
    free(ds.dir);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Tests on the shared data set                                             */

static void test_headers_and_columns(void **state)
{
    (void)state;
    static const char *const tx[] = {"order_id", "line",       "customer_id", "date",
                                     "product_id", "quantity", "unit_price",  "unit_cost"};
    static const char *const cu[] = {"customer_id",  "name",       "type",     "region",
                                     "satisfaction", "complaints", "influence"};
    static const char *const pr[] = {"product_id", "name", "category", "unit_cost"};
    static const char *const in[] = {"customer_id", "date", "kind", "cost"};
    static const char *const tc[] = {"customer_id", "type", "segment", "cycle_days", "churned"};
    static const char *const tb[] = {"bundle_id", "products", "support", "lift"};
    static const char *const ty[] = {"customer_id", "product_id", "cycle_days"};
    static const char *const tr[] = {"line", "reason"};
    struct {
        const table *t;
        const char *const *cols;
        int n;
        const char *name;
    } files[] = {
        {&ds.tx, tx, 8, "transactions.csv"},     {&ds.cust, cu, 7, "customers.csv"},
        {&ds.prod, pr, 4, "products.csv"},       {&ds.inter, in, 4, "interactions.csv"},
        {&ds.t_cust, tc, 5, "truth_customers"}, {&ds.t_bund, tb, 4, "truth_bundles"},
        {&ds.t_cyc, ty, 3, "truth_cycles"},      {&ds.t_bad, tr, 2, "truth_bad_rows"},
    };
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        assert_header(files[k].t, files[k].cols, files[k].n, files[k].name);
        assert_true(files[k].t->n > 1);
        for (size_t i = 1; i < files[k].t->n; i++) {
            if (files[k].t == &ds.tx && ds.bad_of_line[i + 1])
                continue;
            if (files[k].t->rows[i].nf != files[k].n) {
                print_error("%s line %zu: %d fields\n", files[k].name, i + 1,
                            files[k].t->rows[i].nf);
                fail();
            }
        }
    }
    /* stats describe the file */
    assert_int_equal(ds.st.lines, ds.tx.n - 1);
    assert_int_equal(ds.st.bad_rows, ds.t_bad.n - 1);
    char *path = cvm_test_path(ds.dir, "transactions.csv");
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal((size_t)sb.st_size, ds.st.bytes);
    free(path);
    /* no temporary files are left behind */
    char *tmp = cvm_test_path(ds.dir, "transactions.csv.tmp");
    assert_int_not_equal(stat(tmp, &sb), 0);
    free(tmp);
}

static void test_bad_rows_match_truth(void **state)
{
    (void)state;
    size_t nbad = 0, kinds[6] = {0};
    for (size_t i = 1; i < ds.tx.n; i++) {
        size_t line = i + 1;
        txrow r;
        int got = check_tx(&ds.tx.rows[i], &r);
        int want = ds.bad_of_line[line];
        if (got != want) {
            print_error("transactions.csv:%zu: parsed as %s, truth says %s\n", line,
                        reason_name[got], reason_name[want]);
            fail();
        }
        if (want) {
            nbad++;
            kinds[want]++;
            /* a bad row is an extra copy of the good line just before it */
            const rec *prev = &ds.tx.rows[i - 1];
            assert_int_equal(ds.bad_of_line[line - 1], 0);
            assert_string_equal(prev->f[0], ds.tx.rows[i].f[0]);
        }
    }
    assert_int_equal(nbad, ds.st.bad_rows);
    /* share as asked, and every kind present */
    assert_close((double)nbad / (double)(ds.tx.n - 1), ds.p.bad_row_share, 0.02, 0.0,
                 "bad row share");
    for (int k = ROW_MISSING_CUSTOMER; k <= ROW_FIELD_COUNT; k++)
        assert_true(kinds[k] > 0);
    /* truth lines are sorted and unique */
    for (size_t i = 2; i < ds.t_bad.n; i++)
        assert_true(atol(ds.t_bad.rows[i].f[0]) > atol(ds.t_bad.rows[i - 1].f[0]));
}

static void test_orders_chronological(void **state)
{
    (void)state;
    assert_true(ds.nrows > 100000);
    long last_so = 0, last_rt = 0;
    size_t returns = 0, weekend = 0, orders = 0;
    size_t winter = 0, summer = 0;
    for (size_t i = 0; i < ds.nrows; i++) {
        const txrow *r = &ds.rows[i];
        assert_true(r->day >= 0 && r->day < DS_DAYS);
        assert_true(r->tod >= 7 * 3600 && r->tod < 22 * 3600);
        if (i > 0) {
            const txrow *q = &ds.rows[i - 1];
            /* chronological by date and time */
            assert_true(r->day * 86400 + r->tod >= q->day * 86400 + q->tod);
        }
        int new_order = i == 0 || strcmp(r->oid, ds.rows[i - 1].oid) != 0;
        if (!new_order) {
            const txrow *q = &ds.rows[i - 1];
            assert_int_equal(r->line, q->line + 1); /* contiguous lines 1..n */
            assert_int_equal(r->cust, q->cust);
            assert_int_equal(r->day, q->day);
            continue;
        }
        assert_int_equal(r->line, 1);
        long num = atol(r->oid + 2);
        if (r->oid[0] == 'R') { /* numbers grow in export order: never seen twice */
            assert_true(num > last_rt);
            last_rt = num;
            returns++;
            assert_true(r->qty < 0);
        } else {
            assert_true(num > last_so);
            last_so = num;
            orders++;
            int64_t w = (ds.day0 + r->day + 3) % 7; /* 0 = Monday */
            weekend += w >= 5;
        }
    }
    assert_int_equal(orders + returns, ds.st.orders);
    assert_int_equal(returns, ds.st.returns);
    assert_close((double)returns / (double)orders, ds.p.return_share, 0.25, 0.0, "returns");
    /* weekday business mostly */
    assert_true(weekend > 0);
    assert_true((double)weekend / (double)orders < 0.05);

    /* winter (Nov-Feb) has more orders per day than summer (May-Aug) */
    size_t wdays = 0, sdays = 0;
    for (int d = 0; d < DS_DAYS; d++) {
        int64_t z = ds.day0 + d + 719468;
        int64_t era = z / 146097, doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        int m = (int)(mp < 10 ? mp + 3 : mp - 9);
        if (d < DS_DAYS / 3 || d > 2 * DS_DAYS / 3) /* where all segments are active */
            continue;
        if (m == 11 || m == 12 || m == 1 || m == 2)
            wdays++;
        else if (m >= 5 && m <= 8)
            sdays++;
    }
    for (size_t i = 0; i < ds.nrows; i++) {
        const txrow *r = &ds.rows[i];
        if (r->line != 1 || r->oid[0] != 'S' || r->day < DS_DAYS / 3 || r->day > 2 * DS_DAYS / 3)
            continue;
        int64_t z = ds.day0 + r->day + 719468;
        int64_t era = z / 146097, doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
        int m = (int)(mp < 10 ? mp + 3 : mp - 9);
        if (m == 11 || m == 12 || m == 1 || m == 2)
            winter++;
        else if (m >= 5 && m <= 8)
            summer++;
    }
    assert_true(wdays > 0 && sdays > 0);
    double ratio = ((double)winter / wdays) / ((double)summer / sdays);
    if (ratio < 1.15 || ratio > 1.45) {
        print_error("winter/summer order rate %.3f, want about 1.3\n", ratio);
        fail();
    }
}

/* Index of customers by number (1-based). */
typedef struct custinfo {
    int type;    /* from the prefix */
    int in_cust; /* listed in customers.csv */
    int seg;     /* -1 when not in truth */
    int churned;
    double cycle;
    size_t orders;
    int64_t last_day;
    double monetary;
    int sat10, complaints, influence;
    int inter_complaints;
} custinfo;

static const char *const seg_names[4] = {"champion", "steady", "occasional", "lapsed"};

static custinfo *build_custinfo(void)
{
    custinfo *ci = calloc(DS_CUSTOMERS + 1, sizeof *ci);
    assert_non_null(ci);
    for (size_t i = 0; i <= DS_CUSTOMERS; i++) {
        ci[i].seg = -1;
        ci[i].type = -1;
        ci[i].last_day = -1;
    }
    for (size_t i = 1; i < ds.cust.n; i++) {
        const rec *r = &ds.cust.rows[i];
        long c = parse_customer(r->f[0]);
        assert_true(c >= 1 && c <= DS_CUSTOMERS);
        assert_false(ci[c].in_cust);
        ci[c].in_cust = 1;
        ci[c].type = type_of_prefix(r->f[0]);
        assert_string_equal(r->f[2], type_names[ci[c].type]);
        assert_true(strlen(r->f[1]) > 0 && strlen(r->f[3]) > 0);
        ci[c].sat10 = -1;
        if (r->f[4][0]) {
            const char *s = r->f[4];
            assert_true(strlen(s) == 3 && s[1] == '.');
            ci[c].sat10 = (s[0] - '0') * 10 + (s[2] - '0');
            assert_true(ci[c].sat10 >= 10 && ci[c].sat10 <= 50);
        }
        long v;
        assert_true(parse_int(r->f[5], &v) && v >= 0);
        ci[c].complaints = (int)v;
        ci[c].influence = -1;
        if (r->f[6][0]) {
            assert_true(parse_int(r->f[6], &v) && v >= 0 && v <= 100);
            ci[c].influence = (int)v;
        }
    }
    for (size_t i = 1; i < ds.t_cust.n; i++) {
        const rec *r = &ds.t_cust.rows[i];
        long c = parse_customer(r->f[0]);
        assert_true(c >= 1 && c <= DS_CUSTOMERS);
        assert_string_equal(r->f[1], type_names[type_of_prefix(r->f[0])]);
        for (int s = 0; s < 4; s++)
            if (strcmp(r->f[2], seg_names[s]) == 0)
                ci[c].seg = s;
        assert_true(ci[c].seg >= 0);
        ci[c].cycle = atof(r->f[3]);
        assert_true(ci[c].cycle >= 1.0);
        ci[c].churned = atoi(r->f[4]);
    }
    for (size_t i = 0; i < ds.nrows; i++) {
        const txrow *r = &ds.rows[i];
        custinfo *c = &ci[r->cust];
        c->monetary += (double)r->qty * (double)r->price / 100.0;
        if (r->oid[0] != 'S')
            continue;
        if (r->line == 1)
            c->orders++;
        if (r->day > c->last_day)
            c->last_day = r->day;
    }
    for (size_t i = 1; i < ds.inter.n; i++) {
        const rec *r = &ds.inter.rows[i];
        long c = parse_customer(r->f[0]);
        assert_true(c >= 1 && ci[c].in_cust);
        int64_t d = parse_day(r->f[1]);
        assert_true(d >= ds.day0 && d < ds.day0 + DS_DAYS && strlen(r->f[1]) == 10);
        long cents;
        assert_true(parse_money(r->f[3], &cents) && cents > 0);
        if (strcmp(r->f[2], "complaint") == 0)
            ci[c].inter_complaints++;
        else
            assert_true(strcmp(r->f[2], "visit") == 0 || strcmp(r->f[2], "call") == 0 ||
                        strcmp(r->f[2], "sample") == 0);
    }
    return ci;
}

static void test_customers_and_truth(void **state)
{
    (void)state;
    custinfo *ci = build_custinfo();
    size_t seg_n[4] = {0}, type_n[6] = {0}, active = 0, silent = 0;
    size_t champs = 0, bombs = 0;
    for (long c = 1; c <= DS_CUSTOMERS; c++) {
        custinfo *x = &ci[c];
        assert_true(x->in_cust); /* every number is used once */
        type_n[x->type]++;
        assert_int_equal(x->inter_complaints, x->complaints);
        int unhappy = x->sat10 >= 0 && x->sat10 <= 25 && x->complaints >= 3;
        if (x->orders == 0) {
            silent++;
            assert_int_equal(x->seg, -1); /* prospects have no behavioural truth */
            continue;
        }
        active++;
        assert_true(x->seg >= 0);
        seg_n[x->seg]++;
        assert_int_equal(x->churned, x->seg == 3);
        if (x->seg == 3) /* lapsed: last purchase in the first third */
            assert_true(x->last_day < DS_DAYS / 3);
        else if (x->seg <= 1) /* champions and steady bought recently */
            assert_true(x->last_day >= DS_DAYS - 60);
        if (x->seg == 0) {
            champs++;
            bombs += unhappy;
        } else {
            assert_false(unhappy); /* the time bombs are big buyers only */
        }
    }
    /* every transaction's customer is known */
    for (size_t i = 0; i < ds.nrows; i++)
        assert_true(ci[ds.rows[i].cust].in_cust);
    assert_int_equal(active, ds.t_cust.n - 1);
    assert_true(silent > DS_CUSTOMERS * 0.005 && silent < DS_CUSTOMERS * 0.05);
    static const double seg_share[4] = {0.15, 0.35, 0.30, 0.20};
    for (int s = 0; s < 4; s++)
        assert_close((double)seg_n[s] / (double)active, seg_share[s], 0.0, 0.04, "segment %s",
                     seg_names[s]);
    static const double type_share[6] = {0.08, 0.25, 0.35, 0.07, 0.05, 0.20};
    for (int t = 0; t < 6; t++)
        assert_close((double)type_n[t] / DS_CUSTOMERS, type_share[t], 0.0, 0.03, "type %s",
                     type_names[t]);
    assert_close((double)bombs / (double)champs, 0.10, 0.0, 0.05, "time bombs among champions");
    free(ci);
}

/* The planted segments must be separable in log1p + z-scored (R, F, M):
 * nearly every customer is closest to its own segment's centre. */
static void test_segments_separate(void **state)
{
    (void)state;
    custinfo *ci = build_custinfo();
    int64_t last = 0;
    for (long c = 1; c <= DS_CUSTOMERS; c++)
        if (ci[c].last_day > last)
            last = ci[c].last_day;
    size_t n = 0;
    double (*x)[3] = malloc(DS_CUSTOMERS * sizeof *x);
    int *seg = malloc(DS_CUSTOMERS * sizeof *seg);
    assert_non_null(x);
    assert_non_null(seg);
    for (long c = 1; c <= DS_CUSTOMERS; c++) {
        if (ci[c].orders == 0)
            continue;
        x[n][0] = log1p((double)(last + 1 - ci[c].last_day));
        x[n][1] = log1p((double)ci[c].orders);
        x[n][2] = log1p(ci[c].monetary > 0 ? ci[c].monetary : 0);
        seg[n++] = ci[c].seg;
    }
    for (int d = 0; d < 3; d++) {
        double m = 0, v = 0;
        for (size_t i = 0; i < n; i++)
            m += x[i][d];
        m /= (double)n;
        for (size_t i = 0; i < n; i++)
            v += (x[i][d] - m) * (x[i][d] - m);
        v = sqrt(v / (double)n);
        for (size_t i = 0; i < n; i++)
            x[i][d] = (x[i][d] - m) / v;
    }
    double cen[4][3] = {{0}};
    size_t cnt[4] = {0};
    for (size_t i = 0; i < n; i++) {
        cnt[seg[i]]++;
        for (int d = 0; d < 3; d++)
            cen[seg[i]][d] += x[i][d];
    }
    for (int s = 0; s < 4; s++)
        for (int d = 0; d < 3; d++)
            cen[s][d] /= (double)cnt[s];
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        int best = 0;
        double bd = INFINITY;
        for (int s = 0; s < 4; s++) {
            double dd = 0;
            for (int d = 0; d < 3; d++)
                dd += (x[i][d] - cen[s][d]) * (x[i][d] - cen[s][d]);
            if (dd < bd) {
                bd = dd;
                best = s;
            }
        }
        right += best == seg[i];
    }
    double share = (double)right / (double)n;
    if (share < 0.97) {
        print_error("only %.3f of customers are nearest their own segment centre\n", share);
        fail();
    }
    free(x);
    free(seg);
    free(ci);
}

static void test_bundles_exact(void **state)
{
    (void)state;
    assert_int_equal(ds.t_bund.n - 1, 6);
    for (size_t b = 1; b < ds.t_bund.n; b++) {
        const rec *r = &ds.t_bund.rows[b];
        int prods[3], np = 0;
        char buf[128];
        snprintf(buf, sizeof buf, "%s", r->f[1]);
        for (char *tok = strtok(buf, " "); tok; tok = strtok(NULL, " ")) {
            assert_true(np < 3);
            prods[np] = parse_product(tok);
            assert_true(prods[np] >= 0 && prods[np] < 1200);
            np++;
        }
        assert_true(np >= 2);
        /* brute force over the SO orders */
        size_t n = 0, first = 0, rest = 0, all = 0;
        for (size_t i = 0; i < ds.nrows;) {
            size_t j = i;
            int has[3] = {0};
            while (j < ds.nrows && strcmp(ds.rows[j].oid, ds.rows[i].oid) == 0) {
                for (int k = 0; k < np; k++)
                    has[k] |= ds.rows[j].prod == prods[k];
                j++;
            }
            if (ds.rows[i].oid[0] == 'S') {
                int r1 = 1;
                for (int k = 1; k < np; k++)
                    r1 &= has[k];
                n++;
                first += has[0];
                rest += r1;
                all += has[0] && r1;
            }
            i = j;
        }
        double support = (double)all / (double)n;
        double lift = support / (((double)first / n) * ((double)rest / n));
        assert_true(all >= 30); /* minable: the bundle really is there */
        assert_true(lift > 5);
        assert_close(atof(r->f[2]), support, 1e-9, 0.0, "support of %s", r->f[0]);
        assert_close(atof(r->f[3]), lift, 1e-9, 0.0, "lift of %s", r->f[0]);
    }
}

static void test_planted_cycles(void **state)
{
    (void)state;
    assert_true(ds.t_cyc.n > 100);
    /* the good rows of each customer, in file order (a counting sort) */
    size_t *start = calloc(DS_CUSTOMERS + 2, sizeof *start);
    size_t *idx = malloc(ds.nrows * sizeof *idx);
    assert_non_null(start);
    assert_non_null(idx);
    for (size_t i = 0; i < ds.nrows; i++)
        start[ds.rows[i].cust + 1]++;
    for (size_t c = 1; c <= DS_CUSTOMERS + 1; c++)
        start[c] += start[c - 1];
    size_t *fill = malloc((DS_CUSTOMERS + 2) * sizeof *fill);
    assert_non_null(fill);
    memcpy(fill, start, (DS_CUSTOMERS + 2) * sizeof *fill);
    for (size_t i = 0; i < ds.nrows; i++)
        idx[fill[ds.rows[i].cust]++] = i;
    free(fill);

    size_t bad = 0;
    long last_cust = -1;
    size_t npha = 0;
    for (size_t k = 1; k < ds.t_cyc.n; k++) {
        const rec *r = &ds.t_cyc.rows[k];
        long c = parse_customer(r->f[0]);
        int p = parse_product(r->f[1]);
        double cyc = atof(r->f[2]);
        assert_true(strncmp(r->f[0], "PHA", 3) == 0);
        assert_true(p >= 0 && p < 1200);
        assert_true(cyc >= 3.0 && cyc <= 28.0 + 1e-9);
        if (c != last_cust)
            npha++;
        last_cust = c;
        int64_t first = -1, lastd = -1, prev = -1;
        size_t dates = 0;
        for (size_t j = start[c]; j < start[c + 1]; j++) {
            const txrow *t = &ds.rows[idx[j]];
            if (t->prod != p || t->oid[0] != 'S' || t->day == prev)
                continue;
            if (first < 0)
                first = t->day;
            lastd = prev = t->day;
            dates++;
        }
        assert_true(dates >= 3);
        double gap = (double)(lastd - first) / (double)(dates - 1);
        if (fabs(gap - cyc) > 0.25 * cyc) {
            print_error("%s %s: mean gap %.2f, cycle_days %.2f\n", r->f[0], r->f[1], gap, cyc);
            bad++;
        }
    }
    free(start);
    free(idx);
    assert_int_equal(bad, 0);
    /* every buying pharmacy has its 2-4 core products */
    size_t pha = 0;
    for (size_t i = 1; i < ds.t_cust.n; i++)
        pha += strcmp(ds.t_cust.rows[i].f[1], "pharmacy") == 0;
    assert_int_equal(npha, pha);
    assert_true(ds.t_cyc.n - 1 >= 2 * pha && ds.t_cyc.n - 1 <= 4 * pha);
}

static void test_products(void **state)
{
    (void)state;
    assert_int_equal(ds.prod.n - 1, 1203);
    long cost[1203];
    int comma = 0, quote = 0, utf8 = 0;
    for (size_t i = 1; i < ds.prod.n; i++) {
        const rec *r = &ds.prod.rows[i];
        int p = parse_product(r->f[0]);
        assert_int_equal(p, (int)i - 1);
        assert_true(parse_money(r->f[3], &cost[p]) && cost[p] >= 0);
        comma |= strchr(r->f[1], ',') != NULL;
        quote |= strchr(r->f[1], '"') != NULL;
        for (const unsigned char *s = (const unsigned char *)r->f[1]; *s; s++)
            utf8 |= *s >= 0x80;
        if (p >= 1200)
            assert_int_equal(cost[p], 0);
    }
    assert_true(comma && quote && utf8);
    /* transactions' unit_cost is the catalogue's, prices mostly above cost */
    size_t below = 0, lines = 0;
    for (size_t i = 0; i < ds.nrows; i++) {
        assert_int_equal(ds.rows[i].cost, cost[ds.rows[i].prod]);
        if (ds.rows[i].prod < 1200) {
            lines++;
            below += ds.rows[i].price <= ds.rows[i].cost;
        }
    }
    assert_int_equal(below, 0);
    assert_true(lines > 0);
}

/* ------------------------------------------------------------------------ */
/* Separate runs                                                            */

static const char *const all_files[] = {"transactions.csv",    "customers.csv",
                                        "products.csv",        "interactions.csv",
                                        "truth_customers.csv", "truth_bundles.csv",
                                        "truth_cycles.csv",    "truth_bad_rows.csv"};

static void run_ok(cvm_gen_params *p, cvm_gen_stats *st)
{
    cvm_err err = {0};
    int rc = cvm_gen_run(p, st, &err);
    if (rc != CVM_OK) {
        print_error("cvm_gen_run: %s\n", err.msg);
        fail();
    }
}

static int same_file(const char *a, const char *b, const char *name)
{
    char *pa = cvm_test_path(a, name), *pb = cvm_test_path(b, name);
    size_t la, lb;
    char *x = cvm_test_read_file(pa, &la), *y = cvm_test_read_file(pb, &lb);
    assert_non_null(x);
    assert_non_null(y);
    int same = la == lb && memcmp(x, y, la) == 0;
    free(x), free(y), free(pa), free(pb);
    return same;
}

static void test_determinism(void **state)
{
    (void)state;
    char *d1 = cvm_test_mkdtemp("gen-det1"), *d2 = cvm_test_mkdtemp("gen-det2");
    char *d3 = cvm_test_mkdtemp("gen-det3");
    cvm_gen_params p;
    cvm_gen_stats s1, s2, s3;
    cvm_gen_params_default(&p);
    p.customers = 700;
    p.seed = 3;
    p.bad_row_share = 0.01;
    p.out_dir = d1;
    p.threads = 1;
    run_ok(&p, &s1);
    p.out_dir = d2;
    p.threads = 2;
    run_ok(&p, &s2);
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
        if (!same_file(d1, d2, all_files[i])) {
            print_error("%s differs between 1 and 2 threads\n", all_files[i]);
            fail();
        }
    assert_int_equal(s1.lines, s2.lines);
    assert_int_equal(s1.bytes, s2.bytes);
    /* again into an existing directory: files are replaced, same bytes */
    p.threads = 3;
    run_ok(&p, &s2);
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
        assert_true(same_file(d1, d2, all_files[i]));
    /* another seed gives other data */
    p.seed = 4;
    p.out_dir = d3;
    run_ok(&p, &s3);
    assert_false(same_file(d1, d3, "transactions.csv"));
    assert_false(same_file(d1, d3, "customers.csv"));
    cvm_test_rmtree(d1), cvm_test_rmtree(d2), cvm_test_rmtree(d3);
    free(d1), free(d2), free(d3);
}

static size_t count_lines(const char *dir, const char *name)
{
    char *path = cvm_test_path(dir, name);
    size_t len, n = 0;
    char *t = cvm_test_read_file(path, &len);
    assert_non_null(t);
    for (size_t i = 0; i < len; i++)
        n += t[i] == '\n';
    free(t);
    free(path);
    return n;
}

static void test_target_lines(void **state)
{
    (void)state;
    char *d = cvm_test_mkdtemp("gen-target");
    cvm_gen_params p;
    cvm_gen_stats st;
    cvm_gen_params_default(&p);
    p.customers = 600;
    p.seed = 9;
    p.out_dir = d;
    static const size_t targets[] = {20000, 150000};
    for (size_t i = 0; i < 2; i++) {
        p.target_lines = targets[i];
        run_ok(&p, &st);
        assert_close((double)st.lines, (double)targets[i], 0.01, 0.0, "lines for target %zu",
                     targets[i]);
        assert_int_equal(count_lines(d, "transactions.csv") - 1, st.lines);
    }
    /* one line per customer cannot be reached: every buyer orders at least once */
    cvm_err err = {0};
    p.target_lines = 600;
    assert_int_equal(cvm_gen_run(&p, &st, &err), CVM_EINVAL);
    assert_non_null(strstr(err.msg, "target_lines"));
    cvm_test_rmtree(d);
    free(d);
}

static void test_no_bad_rows_no_returns(void **state)
{
    (void)state;
    char *d = cvm_test_mkdtemp("gen-clean");
    cvm_gen_params p;
    cvm_gen_stats st;
    cvm_gen_params_default(&p);
    p.customers = 300;
    p.out_dir = d;
    p.bad_row_share = 0;
    p.return_share = 0;
    p.start = "2020-02-29";
    p.days = 400;
    run_ok(&p, &st);
    assert_int_equal(st.bad_rows, 0);
    assert_int_equal(st.returns, 0);
    assert_int_equal(count_lines(d, "truth_bad_rows.csv"), 1);
    table t;
    table_read(d, "transactions.csv", &t);
    int64_t day0 = parse_day("2020-02-29");
    for (size_t i = 1; i < t.n; i++) {
        txrow r;
        assert_int_equal(check_tx(&t.rows[i], &r), ROW_OK);
        assert_true(r.oid[0] == 'S');
        assert_true(r.day >= day0 && r.day < day0 + 400);
    }
    table_free(&t);
    cvm_test_rmtree(d);
    free(d);
}

static void test_params_check(void **state)
{
    (void)state;
    cvm_gen_params p;
    cvm_gen_params_default(&p);
    assert_int_equal(p.customers, 2000);
    assert_int_equal(p.days, 730);
    assert_string_equal(p.start, "2023-01-01");
    assert_non_null(cvm_gen_params_check(&p)); /* out_dir is required */
    p.out_dir = "/tmp/never-written";
    assert_null(cvm_gen_params_check(&p));
    assert_non_null(cvm_gen_params_check(NULL));

    cvm_gen_params bad[12];
    for (int i = 0; i < 12; i++)
        bad[i] = p;
    bad[0].customers = 0;
    bad[1].customers = 1000000;
    bad[2].start = "2023-02-29";
    bad[3].start = "23-01-01";
    bad[4].start = NULL;
    bad[5].days = 10;
    bad[6].bad_row_share = -0.1;
    bad[7].bad_row_share = 0.9;
    bad[8].return_share = NAN;
    bad[9].threads = -1;
    bad[10].out_dir = "";
    bad[11].target_lines = 5; /* fewer lines than customers */
    for (int i = 0; i < 12; i++) {
        const char *why = cvm_gen_params_check(&bad[i]);
        if (why == NULL) {
            print_error("bad params #%d accepted\n", i);
            fail();
        }
        cvm_err err = {0};
        assert_int_equal(cvm_gen_run(&bad[i], NULL, &err), CVM_EINVAL);
        assert_non_null(strstr(err.msg, why));
    }
    struct stat sb;
    assert_int_not_equal(stat("/tmp/never-written", &sb), 0); /* no side effects */
}

static void test_io_error(void **state)
{
    (void)state;
    char *d = cvm_test_mkdtemp("gen-io");
    char *file = cvm_test_path(d, "plain");
    cvm_test_write_file(file, "x");
    char *sub = cvm_test_path(file, "out"); /* a directory under a file */
    cvm_gen_params p;
    cvm_gen_params_default(&p);
    p.customers = 50;
    p.out_dir = sub;
    cvm_err err = {0};
    assert_int_equal(cvm_gen_run(&p, NULL, &err), CVM_EIO);
    assert_non_null(strstr(err.msg, "plain"));
    cvm_test_rmtree(d);
    free(sub), free(file), free(d);
}

/* Every allocation failure comes back as CVM_ENOMEM, without leaks. */
static long oom_left, oom_live;
static int oom_hit;
static void *oom_malloc(size_t n, void *ctx)
{
    (void)ctx;
    if (oom_left-- <= 0) {
        oom_hit = 1;
        return NULL;
    }
    void *p = malloc(n);
    oom_live += p != NULL;
    return p;
}
static void *oom_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    if (oom_left-- <= 0) {
        oom_hit = 1;
        return NULL;
    }
    void *q = realloc(p, n);
    oom_live += q != NULL && p == NULL;
    return q;
}
static void oom_free(void *p, void *ctx)
{
    (void)ctx;
    oom_live--;
    free(p);
}

static void test_out_of_memory(void **state)
{
    (void)state;
    char *d = cvm_test_mkdtemp("gen-oom");
    cvm_gen_params p;
    cvm_gen_params_default(&p);
    p.customers = 150; /* three blocks of customers */
    p.days = 120;
    p.threads = 1;
    p.out_dir = d;
    cvm_allocator a = {oom_malloc, oom_realloc, oom_free, NULL};
    cvm_set_allocator(&a);
    oom_left = 1L << 40;
    oom_live = 0;
    cvm_err err = {0};
    int rc = cvm_gen_run(&p, NULL, &err);
    long total = (1L << 40) - oom_left;
    assert_int_equal(rc, CVM_OK);
    assert_int_equal(oom_live, 0);
    assert_true(total > 100);
    for (long k = 0; k < total; k += k < 100 ? 1 : 7) {
        oom_left = k;
        oom_live = 0;
        oom_hit = 0;
        memset(&err, 0, sizeof err);
        rc = cvm_gen_run(&p, NULL, &err);
        if (rc != (oom_hit ? CVM_ENOMEM : CVM_OK) || oom_live != 0) {
            cvm_set_allocator(NULL);
            print_error("failing allocation #%ld: rc %d (%s), %ld blocks leaked\n", k, rc,
                        err.msg, oom_live);
            fail();
        }
    }
    cvm_set_allocator(NULL);
    cvm_test_rmtree(d);
    free(d);
}

static int cli(const char *const *args, int n, cvm_err *err)
{
    char *argv[32];
    assert_true(n < 32);
    for (int i = 0; i < n; i++)
        argv[i] = (char *)args[i];
    argv[n] = NULL;
    memset(err, 0, sizeof *err);
    return cvm_gen_cli(n, argv, err);
}

static void test_cli(void **state)
{
    (void)state;
    char *d = cvm_test_mkdtemp("gen-cli");
    char *out = cvm_test_path(d, "nested/out");
    cvm_err err;
    const char *ok[] = {"gen",      "--customers", "200",        "--seed",  "5",
                        "--out",    out,           "--lines=8000", "--start", "2024-03-01",
                        "--days",   "365",         "--bad-rows", "0.01",    "--returns",
                        "0.05",     "--threads",   "2"};
    assert_int_equal(cli(ok, 18, &err), CVM_OK);
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++) {
        char *path = cvm_test_path(out, all_files[i]);
        struct stat sb;
        assert_int_equal(stat(path, &sb), 0);
        free(path);
    }
    size_t lines = count_lines(out, "transactions.csv") - 1;
    assert_close((double)lines, 8000, 0.01, 0, "--lines");
    char *tx = cvm_test_path(out, "transactions.csv");
    char *text = cvm_test_read_file(tx, NULL);
    assert_non_null(strstr(text, "\nSO100000001,1,"));
    assert_non_null(strstr(text, ",2024-03-0")); /* --start applies */
    free(text);
    free(tx);
    /* the same through the library gives the same bytes */
    char *d2 = cvm_test_path(d, "lib");
    cvm_gen_params p;
    cvm_gen_params_default(&p);
    p.customers = 200, p.seed = 5, p.out_dir = d2, p.target_lines = 8000;
    p.start = "2024-03-01", p.days = 365, p.bad_row_share = 0.01, p.return_share = 0.05;
    cvm_gen_stats st;
    run_ok(&p, &st);
    assert_true(same_file(out, d2, "transactions.csv"));
    assert_true(same_file(out, d2, "truth_bad_rows.csv"));

    const char *help[] = {"gen", "--help"};
    assert_int_equal(cli(help, 2, &err), CVM_OK);

    struct {
        const char *args[8];
        int n;
        const char *needle;
    } bad[] = {
        {{"gen", "--customers", "10", "--out", out, "--frobnicate", "1"}, 7, "--frobnicate"},
        {{"gen", "--customers", "10", "--out", out, "--seed"}, 6, "--seed"},
        {{"gen", "--customers", "12x", "--out", out}, 5, "--customers"},
        {{"gen", "--customers", "-3", "--out", out}, 5, "--customers"},
        {{"gen", "--customers", "10"}, 3, "--out"},
        {{"gen", "--out", out, "--bad-rows", "0.9"}, 5, "--bad-rows"},
        {{"gen", "--out", out, "--returns", "abc"}, 5, "--returns"},
        {{"gen", "--out", out, "--days", "10"}, 5, "--days"},
        {{"gen", "--out", out, "--start", "2023-13-01"}, 5, "--start"},
        {{"gen", "--out", out, "--threads", "many"}, 5, "--threads"},
        {{"gen", "--out", out, "stray"}, 4, "stray"},
        {{"gen", "--out", out, "--customers", "0"}, 5, "--customers"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = cli(bad[i].args, bad[i].n, &err);
        if (rc != CVM_EINVAL || strstr(err.msg, bad[i].needle) == NULL) {
            print_error("case %zu: rc %d, message '%s', want EINVAL naming %s\n", i, rc, err.msg,
                        bad[i].needle);
            fail();
        }
    }
    cvm_test_rmtree(d);
    free(d2), free(out), free(d);
}

/* The cvm executable in a separate process gives the same bytes as the
 * library here, and maps bad usage to exit code 2. */
static void test_binary(void **state)
{
    (void)state;
    const char *bin = cvm_test_binary();
    /* CTest always sets CVM_BINARY; a missing binary is a failure, not a skip. */
    if (access(bin, X_OK) != 0)
        fail_msg("cvm executable not found at %s", bin);
    char *d1 = cvm_test_mkdtemp("gen-bin1"), *d2 = cvm_test_mkdtemp("gen-bin2");
    assert_int_equal(cvm_test_system("'%s' gen --customers 300 --seed 21 --out '%s' --threads 1 "
                                     "2>/dev/null",
                                     bin, d1),
                     0);
    cvm_gen_params p;
    cvm_gen_stats st;
    cvm_gen_params_default(&p);
    p.customers = 300;
    p.seed = 21;
    p.out_dir = d2;
    p.threads = 2;
    run_ok(&p, &st);
    for (size_t i = 0; i < sizeof all_files / sizeof all_files[0]; i++)
        if (!same_file(d1, d2, all_files[i])) {
            print_error("%s differs between the cvm process and the library\n", all_files[i]);
            fail();
        }
    assert_int_equal(cvm_test_system("'%s' gen --out '%s' --bogus 2>/dev/null", bin, d1), 2);
    cvm_test_rmtree(d1), cvm_test_rmtree(d2);
    free(d1), free(d2);
}

int main(void)
{
    const struct CMUnitTest shared[] = {
        cmocka_unit_test(test_headers_and_columns),
        cmocka_unit_test(test_bad_rows_match_truth),
        cmocka_unit_test(test_orders_chronological),
        cmocka_unit_test(test_customers_and_truth),
        cmocka_unit_test(test_segments_separate),
        cmocka_unit_test(test_bundles_exact),
        cmocka_unit_test(test_planted_cycles),
        cmocka_unit_test(test_products),
    };
    const struct CMUnitTest separate[] = {
        cmocka_unit_test(test_params_check),  cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_target_lines),  cmocka_unit_test(test_no_bad_rows_no_returns),
        cmocka_unit_test(test_io_error),      cmocka_unit_test(test_out_of_memory),
        cmocka_unit_test(test_cli),           cmocka_unit_test(test_binary),
    };
    int failed = cmocka_run_group_tests_name("gen: shared data set", shared, setup_dataset,
                                             teardown_dataset);
    failed += cmocka_run_group_tests_name("gen: separate runs", separate, NULL, NULL);
    return failed;
}
