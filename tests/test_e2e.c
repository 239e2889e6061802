/* End to end: the cvm binary on sample_data/ against an independent
 * brute-force computation from the raw CSV files (its own line splitter,
 * date and number checks, per-customer loops), and byte-identical output
 * for 1 and 2 threads and any chunk size. */
#include "testutil.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csvread.h"

#define MAXF 16
#define MAXC 20000

/* ---- an independent RFC 4180 line splitter (no embedded newlines) ---- */
static int split(char *line, char **f, int maxf)
{
    int n = 0;
    char *p = line, *w;
    for (;;) {
        if (n == maxf)
            return maxf + 1;
        if (*p == '"') {
            p++;
            w = p;
            f[n++] = w;
            for (;;) {
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else if (*p == '\0') {
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            *w = '\0';
            while (*p && *p != ',')
                p++;
        } else {
            f[n++] = p;
            while (*p && *p != ',')
                p++;
        }
        if (*p != ',') {
            *p = '\0';
            break;
        }
        *p++ = '\0';
    }
    return n;
}

static bool num(const char *s, double *out)
{
    if (*s == '\0')
        return false;
    char *end;
    *out = strtod(s, &end);
    return *end == '\0' && isfinite(*out) && !isspace((unsigned char)*s);
}

static long days_from_civil(long y, long m, long d)
{
    /* Days since 1970-01-01 by counting, as slowly and plainly as possible. */
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    long days = 0;
    for (long yy = 1970; yy < y; yy++)
        days += ((yy % 4 == 0 && yy % 100 != 0) || yy % 400 == 0) ? 366 : 365;
    for (long mm = 1; mm < m; mm++)
        days += md[mm - 1] + (mm == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    return days + d - 1;
}

static bool date(const char *s, long *day)
{
    int y, m, d, H, M, S, n = 0;
    if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &y, &m, &d, &H, &M, &S, &n) != 6 || s[n] != '\0' ||
        strlen(s) != 19)
        return false;
    static const int md[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1 || H > 23 || M > 59 || S > 60)
        return false;
    int lim = md[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    if (d > lim)
        return false;
    *day = days_from_civil(y, m, d);
    return true;
}

typedef struct line {
    char cust[32], order[32], prod[32];
    long day;
    double qty, rev, cost; /* cost NAN = unknown */
    bool ret, excl;
} line;

typedef struct cust {
    char id[32];
    long last;
    int n_orders;
    char (*orders)[32];
    double monetary, cogs, lines, rlines;
    double type_cost, inter_cost;
    bool buyer;
} cust;

static cust *find_cust(cust *cs, int *nc, const char *id, bool add)
{
    for (int i = 0; i < *nc; i++)
        if (strcmp(cs[i].id, id) == 0)
            return &cs[i];
    if (!add)
        return NULL;
    assert_true(*nc < MAXC);
    cust *c = &cs[(*nc)++];
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    c->last = -1;
    return c;
}

/* Output rows keyed by customer id. */
#define MAXCOL 160
typedef struct out_ctx {
    int ncol;
    char names[MAXCOL][40];
    char *cells[MAXC][MAXCOL];
    char ids[MAXC][32];
    int nrow;
} out_ctx;

static int out_rec(void *ctx, const cvm_csv_record *r, cvm_err *err)
{
    (void)err;
    out_ctx *o = ctx;
    assert_true(r->n <= MAXCOL);
    if (o->ncol == 0) {
        o->ncol = (int)r->n;
        for (size_t i = 0; i < r->n; i++)
            snprintf(o->names[i], sizeof o->names[i], "%.*s", (int)r->len[i], r->field[i]);
        return CVM_OK;
    }
    for (size_t i = 0; i < r->n; i++) {
        o->cells[o->nrow][i] = malloc(r->len[i] + 1);
        memcpy(o->cells[o->nrow][i], r->field[i], r->len[i]);
        o->cells[o->nrow][i][r->len[i]] = '\0';
    }
    snprintf(o->ids[o->nrow], 32, "%s", o->cells[o->nrow][0]);
    o->nrow++;
    return CVM_OK;
}

static const char *cell(const out_ctx *o, int row, const char *col)
{
    for (int i = 0; i < o->ncol; i++)
        if (strcmp(o->names[i], col) == 0)
            return o->cells[row][i];
    fail_msg("no column %s in segments.csv", col);
    return NULL;
}

static int run_cvm(const char *out, const char *extra)
{
    return cvm_test_system("mkdir -p '%s' && cd '%s' && '%s' run jobs/nightly.yaml --out '%s' --quiet %s > '%s/stdout' 2> '%s/stderr'",
                           out, cvm_test_source_dir(), cvm_test_binary(), out, extra, out, out);
}

static void test_against_brute_force(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("e2e");
    assert_int_equal(run_cvm(dir, "--set cleaning.drop_duplicates=false"), 0);

    /* ---- the oracle ---- */
    char path[4096];
    snprintf(path, sizeof path, "%s/sample_data/transactions.csv", cvm_test_source_dir());
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 16];
    line *ls = calloc(200000, sizeof *ls);
    assert_non_null(ls);
    int nl = 0, bad = 0, rows = 0;
    assert_non_null(fgets(buf, sizeof buf, f)); /* header */
    while (fgets(buf, sizeof buf, f)) {
        size_t L = strlen(buf);
        while (L && (buf[L - 1] == '\n' || buf[L - 1] == '\r'))
            buf[--L] = '\0';
        if (L == 0)
            continue;
        rows++;
        char *fl[MAXF + 1];
        int n = split(buf, fl, MAXF);
        line x = {0};
        double price;
        /* order_id,line,customer_id,date,product_id,quantity,unit_price,unit_cost */
        if (n != 8 || !*fl[2] || !*fl[0] || !date(fl[3], &x.day) || !num(fl[5], &x.qty) ||
            !num(fl[6], &price) || (*fl[7] && !num(fl[7], &x.cost))) {
            bad++;
            continue;
        }
        if (!*fl[7])
            x.cost = NAN;
        else
            x.cost *= x.qty;
        x.rev = x.qty * price;
        snprintf(x.cust, sizeof x.cust, "%s", fl[2]);
        snprintf(x.order, sizeof x.order, "%s", fl[0]);
        snprintf(x.prod, sizeof x.prod, "%s", fl[4]);
        x.ret = x.qty < 0 || x.rev < 0 || strncmp(x.order, "RT", 2) == 0;
        x.excl = !strcmp(x.prod, "POSTAGE") || !strcmp(x.prod, "FEE-HANDLING") || !strcmp(x.prod, "ADJ");
        assert_true(nl < 200000);
        ls[nl++] = x;
    }
    fclose(f);
    long as_of = -1;
    for (int i = 0; i < nl; i++)
        if (!ls[i].ret && !ls[i].excl && ls[i].day + 1 > as_of)
            as_of = ls[i].day + 1;

    static cust cs[MAXC];
    int nc = 0;
    for (int i = 0; i < nl; i++) {
        line *x = &ls[i];
        cust *c = find_cust(cs, &nc, x->cust, true);
        c->lines++;
        if (x->excl)
            continue;
        double cost = isnan(x->cost) ? x->rev * (1 - 0.25) : x->cost;
        c->monetary += x->rev;
        c->cogs += cost;
        if (x->ret) {
            c->rlines++;
            continue;
        }
        c->buyer = true;
        if (x->day > c->last)
            c->last = x->day;
        bool seen = false;
        for (int k = 0; k < c->n_orders && !seen; k++)
            seen = strcmp(c->orders[k], x->order) == 0;
        if (!seen) {
            c->orders = realloc(c->orders, (size_t)(c->n_orders + 1) * sizeof *c->orders);
            snprintf(c->orders[c->n_orders++], 32, "%s", x->order);
        }
    }
    /* Customer master: flat cost by type. */
    snprintf(path, sizeof path, "%s/sample_data/customers.csv", cvm_test_source_dir());
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    static const char *const tn[] = {"hospital", "distributor", "pharmacy", "doctor", "contact", "patient"};
    static const double tc[] = {300, 200, 60, 30, 10, 2};
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        char *fl[MAXF + 1];
        if (split(buf, fl, MAXF) != 7)
            continue;
        cust *c = find_cust(cs, &nc, fl[0], true);
        for (int k = 0; k < 6; k++)
            if (strcmp(fl[2], tn[k]) == 0)
                c->type_cost = tc[k];
    }
    fclose(f);
    /* Interactions before as_of: their cost, or the configured cost per kind. */
    snprintf(path, sizeof path, "%s/sample_data/interactions.csv", cvm_test_source_dir());
    f = fopen(path, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        char *fl[MAXF + 1];
        if (split(buf, fl, MAXF) != 4)
            continue;
        int y, m, d;
        if (sscanf(fl[1], "%d-%d-%d", &y, &m, &d) != 3 || days_from_civil(y, m, d) >= as_of)
            continue;
        cust *c = find_cust(cs, &nc, fl[0], false);
        if (c == NULL)
            continue;
        double x;
        if (num(fl[3], &x))
            c->inter_cost += x;
        else if (!*fl[3])
            c->inter_cost += !strcmp(fl[2], "visit") ? 110 : !strcmp(fl[2], "call") ? 9
                             : !strcmp(fl[2], "complaint") ? 120 : !strcmp(fl[2], "sample") ? 20 : 0;
    }
    fclose(f);

    /* ---- compare with segments.csv ---- */
    static out_ctx o;
    memset(&o, 0, sizeof o);
    snprintf(path, sizeof path, "%s/latest/segments.csv", dir);
    cvm_err err = {0};
    assert_int_equal(cvm_csv_read_file(path, ',', out_rec, &o, &err), CVM_OK);
    assert_int_equal(o.nrow, nc);
    int buyers = 0;
    for (int i = 0; i < nc; i++)
        buyers += cs[i].buyer;
    int checked = 0;
    for (int r = 0; r < o.nrow; r++) {
        cust *c = find_cust(cs, &nc, o.ids[r], false);
        assert_non_null(c);
        const char *rec = cell(&o, r, "recency_days");
        if (!c->buyer) {
            assert_string_equal(rec, "");
        } else {
            assert_int_equal(atol(rec), as_of - c->last);
            assert_int_equal(atol(cell(&o, r, "frequency")), c->n_orders);
        }
        double monetary = atof(cell(&o, r, "monetary"));
        assert_close(monetary, c->monetary, 0, 0.006, "monetary of %s", c->id);
        double gm = c->monetary - c->cogs;
        assert_close(atof(cell(&o, r, "gross_margin")), gm, 0, 0.006, "gross margin of %s", c->id);
        double cts = 4 * c->n_orders + 0.5 * c->lines + 6 * c->rlines +
                     (c->lines > 0 ? c->type_cost : 0) + c->inter_cost;
        assert_close(atof(cell(&o, r, "cost_to_serve")), cts, 0, 0.006, "cost to serve of %s", c->id);
        assert_close(atof(cell(&o, r, "profit")), gm - cts, 0, 0.011, "profit of %s", c->id);
        checked++;
    }
    assert_int_equal(checked, nc);

    /* RFM scores: rank with ties broken by id (ids sorted bytewise), bins by
     * the exact rational form of pandas' qcut edges for 5 bins. */
    static const char *const meas[3] = {"recency_days", "frequency", "monetary"};
    static const char *const score[3] = {"r_score", "f_score", "m_score"};
    for (int m = 0; m < 3; m++) {
        for (int r = 0; r < o.nrow; r++) {
            const char *v = cell(&o, r, meas[0]);
            if (*v == '\0')
                continue;
            double me = atof(cell(&o, r, meas[m]));
            long k = 1;
            for (int q = 0; q < o.nrow; q++) {
                if (q == r || *cell(&o, q, meas[0]) == '\0')
                    continue;
                double other = atof(cell(&o, q, meas[m]));
                if (other < me || (other == me && strcmp(o.ids[q], o.ids[r]) < 0))
                    k++;
            }
            long n = buyers;
            long bin = ((k - 1) * 5 + (n - 2)) / (n - 1); /* ceil((k-1)*5/(n-1)) */
            if (bin < 1)
                bin = 1;
            long expect = m == 0 ? 6 - bin : bin;
            if (atol(cell(&o, r, score[m])) != expect)
                fail_msg("%s of %s: cvm %s, oracle %ld (rank %ld of %ld)", score[m], o.ids[r],
                         cell(&o, r, score[m]), expect, k, n);
        }
    }
    /* Rejected rows: the oracle's count equals the manifest's. */
    snprintf(path, sizeof path, "%s/latest/summary.json", dir);
    char *summary = cvm_test_read_file(path, NULL);
    char want[64];
    snprintf(want, sizeof want, "\"transaction_rows_rejected\": %d", bad);
    assert_non_null(strstr(summary, want));
    snprintf(want, sizeof want, "\"read\": %d", rows);
    assert_non_null(strstr(summary, want));
    free(summary);
    for (int r = 0; r < o.nrow; r++)
        for (int i = 0; i < o.ncol; i++)
            free(o.cells[r][i]);
    for (int i = 0; i < nc; i++)
        free(cs[i].orders);
    free(ls);
    cvm_test_rmtree(dir);
    free(dir);
}

static void test_threads_and_chunks_give_same_bytes(void **state)
{
    (void)state;
    char *a = cvm_test_mkdtemp("det1"), *b = cvm_test_mkdtemp("det2");
    assert_int_equal(run_cvm(a, "--threads 1"), 0);
    assert_int_equal(run_cvm(b, "--threads 2 --set input.transactions.chunk_mb=1"), 0);
    static const char *const files[] = {"segments.csv", "rejects.csv"};
    for (int i = 0; i < 2; i++) {
        char pa[4200], pb[4200];
        snprintf(pa, sizeof pa, "%s/latest/%s", a, files[i]);
        snprintf(pb, sizeof pb, "%s/latest/%s", b, files[i]);
        size_t la, lb;
        char *xa = cvm_test_read_file(pa, &la), *xb = cvm_test_read_file(pb, &lb);
        assert_non_null(xa);
        assert_non_null(xb);
        assert_true(la > 100);
        if (la != lb || memcmp(xa, xb, la) != 0)
            fail_msg("%s differs between 1 thread and 2 threads with 1 MB chunks", files[i]);
        free(xa);
        free(xb);
    }
    /* The 1 MB chunks really split the file. */
    char ps[4200];
    snprintf(ps, sizeof ps, "%s/latest/summary.json", b);
    char *s = cvm_test_read_file(ps, NULL);
    assert_null(strstr(s, "\"chunks\": 1,"));
    free(s);
    cvm_test_rmtree(a);
    cvm_test_rmtree(b);
    free(a);
    free(b);
}

/* Three hash partitions together hold every customer exactly once, with
 * the same per-customer purchase and profit figures as the whole run. */
static void test_partitions_cover_the_whole(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("part");
    char whole[4200];
    snprintf(whole, sizeof whole, "%s/whole", dir);
    assert_int_equal(run_cvm(whole, ""), 0);
    static const char check[] =
        "import csv,sys\n"
        "cols=('recency_days','frequency','monetary','gross_margin','cost_to_serve','profit')\n"
        "w={r['customer_id']:r for r in csv.DictReader(open(sys.argv[1]))}\n"
        "seen=set()\n"
        "for p in sys.argv[2:]:\n"
        "  for r in csv.DictReader(open(p)):\n"
        "    c=r['customer_id']\n"
        "    if c in seen: sys.exit('%s twice'%c)\n"
        "    seen.add(c)\n"
        "    for k in cols:\n"
        "      if r[k]!=w[c][k]: sys.exit('%s %s: %s != %s'%(c,k,r[k],w[c][k]))\n"
        "if seen!=set(w): sys.exit('%d of %d customers'%(len(seen),len(w)))\n";
    char *py = cvm_test_path(dir, "check.py");
    cvm_test_write_file(py, check);
    char parts[3][4200];
    for (int p = 0; p < 3; p++) {
        snprintf(parts[p], sizeof parts[p], "%s/p%d", dir, p);
        char extra[128];
        snprintf(extra, sizeof extra, "--set job.partitions=3 --set job.partition=%d", p);
        assert_int_equal(run_cvm(parts[p], extra), 0);
    }
    assert_int_equal(cvm_test_system("python3 '%s' '%s/latest/segments.csv' '%s/latest/segments.csv' "
                                     "'%s/latest/segments.csv' '%s/latest/segments.csv'",
                                     py, whole, parts[0], parts[1], parts[2]), 0);
    free(py);
    cvm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partitions_cover_the_whole),
        cmocka_unit_test(test_against_brute_force),
        cmocka_unit_test(test_threads_and_chunks_give_same_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
