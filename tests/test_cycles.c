/* Purchase cycles: a hand-made history with known intervals, a brute-force
 * oracle over random histories (rhythms, reorder pairs, the BG/NBD summary),
 * the planted pharmacy reorder cycles of generated data recovered in
 * cycles.csv, the stage's columns and reasons, configuration errors, and
 * the same bytes for 1 and 2 threads. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_rng.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "csvread.h"
#include "cycles.h"
#include "datetime.h"
#include "ingest.h"
#include "rejects.h"

/* ---- CSV outputs read back into memory ---- */

typedef struct rows {
    size_t n, ncol, cap;
    char **cell;   /* n x ncol, row 0 is the header */
} rows;

static int on_rec(void *ctx, const cvm_csv_record *rec, cvm_err *err)
{
    (void)err;
    rows *r = ctx;
    if (r->n == 0)
        r->ncol = rec->n;
    assert_int_equal(rec->n, r->ncol);
    if (r->n == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 256;
        r->cell = realloc(r->cell, r->cap * r->ncol * sizeof *r->cell);
        assert_non_null(r->cell);
    }
    for (size_t i = 0; i < rec->n; i++) {
        char *s = malloc(rec->len[i] + 1);
        assert_non_null(s);
        memcpy(s, rec->field[i], rec->len[i]);
        s[rec->len[i]] = '\0';
        r->cell[r->n * r->ncol + i] = s;
    }
    r->n++;
    return CVM_OK;
}

static rows read_csv(const char *path)
{
    rows r = {0};
    cvm_err err = {0};
    if (cvm_csv_read_file(path, ',', on_rec, &r, &err) != CVM_OK)
        fail_msg("%s: %s", path, err.msg);
    return r;
}

static void rows_free(rows *r)
{
    for (size_t i = 0; i < r->n * r->ncol; i++)
        free(r->cell[i]);
    free(r->cell);
}

static int col(const rows *r, const char *name)
{
    for (size_t i = 0; i < r->ncol; i++)
        if (strcmp(r->cell[i], name) == 0)
            return (int)i;
    fail_msg("no column %s", name);
    return -1;
}

static const char *cell(const rows *r, size_t row, int c)
{
    return r->cell[row * r->ncol + (size_t)c];
}

static int32_t iso(const char *s)
{
    int32_t d;
    if (!cvm_date_parse_iso(s, &d))
        fail_msg("not a date: '%s'", s);
    return d;
}

/* ---- ingest a transactions text ---- */

static void load(const char *dir, const char *text, cvm_txn_table *t)
{
    char *p = cvm_test_path(dir, "tx.csv");
    cvm_test_write_file(p, text);
    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = p;
    sp.col_customer = "customer_id";
    sp.col_order = "order_id";
    sp.col_date = "date";
    sp.col_product = "product_id";
    sp.col_quantity = "quantity";
    sp.col_unit_price = "unit_price";
    sp.col_unit_cost = "";
    sp.col_revenue = "";
    sp.return_prefix = "RT";
    sp.negative_is_return = true;
    static const char *const ex[] = {"POSTAGE"};
    sp.exclude_products = ex;
    sp.n_exclude = 1;
    cvm_rejects rej;
    memset(&rej, 0, sizeof rej);
    cvm_ingest_stats st;
    cvm_err err = {0};
    if (cvm_ingest_transactions(&sp, NULL, t, &rej, &st, &err) != CVM_OK)
        fail_msg("ingest: %s", err.msg);
    assert_int_equal(rej.n, 0);
    cvm_rejects_clear(&rej);
    free(p);
}

/* A: purchase days 0, 10 (two orders), 30, 60 of 2024-01-01, a return on
 * day 45 and a postage line on day 50 (neither is a purchase day); P1 on
 * days 0, 30, 60, P2 on 0 and 10. B: one purchase. C: buys only on as_of. */
static void test_hand_history(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("cyc-hand");
    cvm_txn_table t;
    load(dir,
         "order_id,customer_id,date,product_id,quantity,unit_price\n"
         "O1,A,2024-01-01,P1,1,10\n"
         "O1,A,2024-01-01,P2,1,5\n"
         "O2,A,2024-01-11,P2,2,5\n"
         "O3,A,2024-01-11 17:00,P3,1,7\n"
         "O4,A,2024-01-31,P1,1,10\n"
         "RT9,A,2024-02-15,P1,-1,10\n"
         "O5,A,2024-02-20,POSTAGE,1,4\n"
         "O6,A,2024-03-01,P1,1,10\n"
         "O6,A,2024-03-01,P3,3,1\n"
         "O7,B,2024-02-01,P1,1,20\n"
         "O8,C,2024-04-10,P1,1,20\n",
         &t);
    assert_int_equal(t.n_customers, 3);
    const int32_t d0 = cvm_days_from_civil(2024, 1, 1), as_of = d0 + 100;
    cvm_cycles_params p;
    cvm_cycles_params_default(&p);
    p.as_of = as_of;
    cvm_cycle c[3];
    cvm_err err = {0};
    assert_int_equal(cvm_cycles_customers(&p, &t, c, &err), CVM_OK);
    /* A: intervals 10, 20, 30. */
    assert_int_equal(c[0].n_days, 4);
    assert_true(c[0].has_cycle);
    assert_close(c[0].mean, 20, 1e-15, 0, "mean");
    assert_close(c[0].median, 20, 1e-15, 0, "median");
    assert_close(c[0].cv, 0.5, 1e-15, 0, "cv = sd 10 / mean 20");
    assert_close(c[0].threshold, 28, 1e-13, 0, "0.9 quantile of 10, 20, 30");
    assert_int_equal(c[0].first_day, d0);
    assert_int_equal(c[0].last_day, d0 + 60);
    assert_int_equal(c[0].next_day, d0 + 80);
    assert_int_equal(c[0].days_overdue, 40 - 28);
    assert_false(c[1].has_cycle);
    assert_int_equal(c[1].n_days, 1);
    assert_int_equal(c[1].days_overdue, 0);
    assert_int_equal(c[2].n_days, 0);
    assert_int_equal(c[2].last_day, CVM_DATE_NONE);
    /* mean + 1 sd = 30: 10 days overdue; three intervals needed -> B-like. */
    p.rule = CVM_OVERDUE_ZSCORE;
    p.rule_param = 1;
    assert_int_equal(cvm_cycles_customers(&p, &t, c, &err), CVM_OK);
    assert_close(c[0].threshold, 30, 1e-15, 0, "zscore threshold");
    assert_int_equal(c[0].days_overdue, 10);
    p.min_intervals = 4;
    assert_int_equal(cvm_cycles_customers(&p, &t, c, &err), CVM_OK);
    assert_false(c[0].has_cycle);
    assert_true(isnan(c[0].median));
    assert_int_equal(c[0].next_day, CVM_DATE_NONE);

    /* Pairs: P1 (0, 30, 60) qualifies with 2 intervals; P3 (10, 60) and P2
     * (0, 10) have one and appear only with product_min_intervals = 1. */
    cvm_cycles_params_default(&p);
    p.as_of = as_of;
    cvm_cycle_pair *pr;
    size_t np;
    assert_int_equal(cvm_cycles_products(&p, &t, &pr, &np, &err), CVM_OK);
    assert_int_equal(np, 1);
    assert_string_equal(cvm_dict_str(t.products, pr[0].product), "P1");
    assert_int_equal(pr[0].customer, 0);
    assert_close(pr[0].c.mean, 30, 1e-15, 0, "P1 mean");
    assert_true(isfinite(pr[0].c.cv) && pr[0].c.cv == 0);
    assert_int_equal(pr[0].c.next_day, d0 + 90);
    assert_int_equal(pr[0].c.days_overdue, 40 - 30);
    cvm_free(pr);
    p.product_min_intervals = 1;
    assert_int_equal(cvm_cycles_products(&p, &t, &pr, &np, &err), CVM_OK);
    assert_int_equal(np, 3);
    assert_string_equal(cvm_dict_str(t.products, pr[1].product), "P2");
    assert_close(pr[1].c.mean, 10, 1e-15, 0, "P2 mean");
    assert_true(isnan(pr[1].c.cv));
    assert_string_equal(cvm_dict_str(t.products, pr[2].product), "P3");
    assert_close(pr[2].c.median, 50, 1e-15, 0, "P3 median");
    cvm_free(pr);

    /* BG/NBD summary to day 99, weeks: x = 3, t_x = 60/7, T = 99/7, m = the
     * mean of the repeat days' revenue: (10 + 7) on day 10, 10 on 30, 13 on 60. */
    double x[3], tx[3], T[3], m[3], h[3];
    uint8_t act[3];
    assert_int_equal(cvm_cycles_summary(&t, as_of - 1, 7, as_of + 30, 1, x, tx, T, m, act, h, &err), CVM_OK);
    assert_int_equal(act[0], 1);
    assert_true(x[0] == 3);
    assert_close(tx[0], 60 / 7.0, 1e-15, 0, "t_x");
    assert_close(T[0], 99 / 7.0, 1e-15, 0, "T");
    assert_close(m[0], (17 + 10 + 13) / 3.0, 1e-14, 0, "m_x");
    assert_true(x[1] == 0 && tx[1] == 0 && m[1] == 0);
    assert_close(T[1], (as_of - 1 - (d0 + 31)) / 7.0, 1e-15, 0, "T of B");
    assert_int_equal(act[2], 0);
    assert_true(h[0] == 0 && h[1] == 0 && h[2] == 0); /* C was not a customer by day 99 */
    /* Calibration to day 30: A has x = 2, holdout days 60 (and not the return). */
    assert_int_equal(cvm_cycles_summary(&t, d0 + 30, 1, as_of - 1, 2, x, tx, T, m, act, h, &err), CVM_OK);
    assert_true(x[0] == 2 && tx[0] == 30 && T[0] == 30);
    assert_true(h[0] == 1);
    assert_int_equal(act[1], 0);
    cvm_txn_table_clear(&t);
    cvm_test_rmtree(dir);
    free(dir);
}

/* ---- brute force over random histories ---- */

typedef struct line {
    int cust, prod, day;
    bool ret, postage;
    double rev;
} line;

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The rhythm of sorted distinct days, written out plainly. */
static void brute(const int *days, int n, int min_iv, double q, int as_of, cvm_cycle *c)
{
    memset(c, 0, sizeof *c);
    c->n_days = n;
    c->has_cycle = n - 1 >= min_iv && n >= 2;
    if (!c->has_cycle)
        return;
    double iv[512], s = 0;
    for (int i = 0; i + 1 < n; i++) {
        iv[i] = days[i + 1] - days[i];
        s += iv[i];
    }
    int k = n - 1;
    c->mean = s / k;
    double v = 0;
    for (int i = 0; i < k; i++)
        v += (iv[i] - c->mean) * (iv[i] - c->mean);
    c->cv = k >= 2 && c->mean > 0 ? sqrt(v / (k - 1)) / c->mean : NAN;
    qsort(iv, (size_t)k, sizeof iv[0], cmp_dbl);
    double hm = 0.5 * (k - 1), hq = q * (k - 1);
    int lm = (int)hm, lq = (int)hq;
    c->median = lm + 1 < k ? iv[lm] + (hm - lm) * (iv[lm + 1] - iv[lm]) : iv[k - 1];
    c->threshold = lq + 1 < k ? iv[lq] + (hq - lq) * (iv[lq + 1] - iv[lq]) : iv[k - 1];
    c->last_day = days[n - 1];
    c->next_day = days[n - 1] + (int)lround(c->median);
    int late = (as_of - days[n - 1]) - (int)ceil(c->threshold - 1e-9);
    c->days_overdue = late > 0 ? late : 0;
}

static void test_random_vs_brute_force(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("cyc-rand");
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(rng, 99);
    enum { NC = 300, NP = 6, MAXL = 60 };
    static line L[NC * MAXL];
    size_t nl = 0;
    size_t cap = 64 + (size_t)NC * MAXL * 48;
    char *text = malloc(cap), *w = text;
    w += sprintf(w, "order_id,customer_id,date,product_id,quantity,unit_price\n");
    const int32_t d0 = cvm_days_from_civil(2023, 1, 1);
    for (int c = 0; c < NC; c++) {
        int nlines = (int)gsl_rng_uniform_int(rng, MAXL);
        int base = (int)gsl_rng_uniform_int(rng, 30), step = 1 + (int)gsl_rng_uniform_int(rng, 40);
        for (int i = 0; i < nlines; i++) {
            line *l = &L[nl++];
            l->cust = c;
            l->prod = (int)gsl_rng_uniform_int(rng, NP);
            l->day = base + step * (int)gsl_rng_uniform_int(rng, 12) + (int)gsl_rng_uniform_int(rng, 3);
            l->ret = gsl_rng_uniform(rng) < 0.07;
            l->postage = !l->ret && gsl_rng_uniform(rng) < 0.05;
            int q = 1 + (int)gsl_rng_uniform_int(rng, 4);
            int price = 1 + (int)gsl_rng_uniform_int(rng, 50);
            l->rev = (l->ret ? -q : q) * (double)price;
            char ds[11];
            cvm_date_format(d0 + l->day, ds);
            w += sprintf(w, "%s%d-%d,C%03d,%s,%s,%d,%d\n", l->ret ? "RT" : "SO", c, i, c, ds,
                         l->postage ? "POSTAGE" : (char[]){'P', (char)('0' + l->prod), 0},
                         l->ret ? -q : q, price);
        }
    }
    cvm_txn_table t;
    load(dir, text, &t);
    free(text);
    const int as_of_rel = 400, end_rel = 300;
    cvm_cycles_params p;
    cvm_cycles_params_default(&p);
    p.as_of = d0 + as_of_rel;
    p.product_min_intervals = 1;
    p.rule_param = 0.75;
    p.threads = 2;
    cvm_cycle *got = calloc(t.n_customers, sizeof *got);
    cvm_err err = {0};
    assert_int_equal(cvm_cycles_customers(&p, &t, got, &err), CVM_OK);
    cvm_cycle_pair *pr;
    size_t np, seen_pairs = 0;
    assert_int_equal(cvm_cycles_products(&p, &t, &pr, &np, &err), CVM_OK);
    double *x = calloc(t.n_customers, sizeof *x), *tx = calloc(t.n_customers, sizeof *tx),
           *T = calloc(t.n_customers, sizeof *T), *m = calloc(t.n_customers, sizeof *m),
           *h = calloc(t.n_customers, sizeof *h);
    uint8_t *act = calloc(t.n_customers, 1);
    assert_int_equal(cvm_cycles_summary(&t, d0 + end_rel, 7, d0 + as_of_rel - 1, 2, x, tx, T, m,
                                        act, h, &err), CVM_OK);
    int days[MAXL], pdays[MAXL];
    for (int c = 0; c < NC; c++) {
        char id[8];
        snprintf(id, sizeof id, "C%03d", c);
        int32_t ci = cvm_dict_find(t.customers, id, strlen(id));
        if (ci < 0)
            continue;
        /* Purchase days before as_of: distinct, not returns, not postage. */
        int n = 0;
        for (size_t i = 0; i < nl; i++)
            if (L[i].cust == c && !L[i].ret && !L[i].postage && L[i].day < as_of_rel)
                days[n++] = L[i].day;
        qsort(days, (size_t)n, sizeof days[0], cmp_int);
        int nd = 0;
        for (int i = 0; i < n; i++)
            if (nd == 0 || days[nd - 1] != days[i])
                days[nd++] = days[i];
        cvm_cycle want;
        brute(days, nd, p.min_intervals, p.rule_param, as_of_rel, &want);
        const cvm_cycle *g = &got[ci];
        assert_int_equal(g->n_days, want.n_days);
        assert_int_equal(g->has_cycle, want.has_cycle);
        if (want.has_cycle) {
            assert_close(g->mean, want.mean, 1e-13, 0, "mean of C%03d", c);
            assert_close(g->median, want.median, 1e-13, 0, "median of C%03d", c);
            assert_close(g->threshold, want.threshold, 1e-13, 0, "threshold of C%03d", c);
            if (isnan(want.cv))
                assert_true(isnan(g->cv));
            else
                assert_close(g->cv, want.cv, 1e-12, 0, "cv of C%03d", c);
            assert_int_equal(g->next_day - d0, want.next_day);
            assert_int_equal(g->days_overdue, want.days_overdue);
        }
        /* Summary to end_rel: x, t_x, T, m in weeks; holdout days after it. */
        int nc = 0;
        while (nc < nd && days[nc] <= end_rel)
            nc++;
        assert_int_equal(act[ci], nc > 0);
        if (nc > 0) {
            assert_true(x[ci] == nc - 1);
            assert_close(tx[ci], (days[nc - 1] - days[0]) / 7.0, 1e-15, 0, "t_x C%03d", c);
            assert_close(T[ci], (end_rel - days[0]) / 7.0, 1e-15, 0, "T C%03d", c);
            double rv = 0;
            for (size_t i = 0; i < nl; i++)
                if (L[i].cust == c && !L[i].ret && !L[i].postage && L[i].day > days[0] &&
                    L[i].day <= end_rel)
                    rv += L[i].rev;
            assert_close(m[ci], nc > 1 ? rv / (nc - 1) : 0, 1e-12, 1e-12, "m_x C%03d", c);
            assert_true(h[ci] == nd - nc);
        }
        /* Pairs of this customer, product by product. */
        for (int q = 0; q < NP; q++) {
            int k = 0;
            for (size_t i = 0; i < nl; i++)
                if (L[i].cust == c && L[i].prod == q && !L[i].ret && !L[i].postage &&
                    L[i].day < as_of_rel)
                    pdays[k++] = L[i].day;
            qsort(pdays, (size_t)k, sizeof pdays[0], cmp_int);
            int kd = 0;
            for (int i = 0; i < k; i++)
                if (kd == 0 || pdays[kd - 1] != pdays[i])
                    pdays[kd++] = pdays[i];
            if (kd < 2)
                continue;
            cvm_cycle pw;
            brute(pdays, kd, p.product_min_intervals, p.rule_param, as_of_rel, &pw);
            char pid[3] = {'P', (char)('0' + q), 0};
            int32_t pi = cvm_dict_find(t.products, pid, 2);
            const cvm_cycle_pair *hit = NULL;
            for (size_t i = 0; i < np; i++)
                if (pr[i].customer == ci && pr[i].product == pi)
                    hit = &pr[i];
            if (hit == NULL)
                fail_msg("pair C%03d %s missing", c, pid);
            seen_pairs++;
            assert_int_equal(hit->c.n_days, kd);
            assert_close(hit->c.mean, pw.mean, 1e-13, 0, "pair mean");
            assert_close(hit->c.median, pw.median, 1e-13, 0, "pair median");
            assert_int_equal(hit->c.days_overdue, pw.days_overdue);
        }
    }
    assert_int_equal(seen_pairs, np); /* nothing extra */
    for (size_t i = 1; i < np; i++)    /* customer, then product order */
        assert_true(pr[i - 1].customer < pr[i].customer ||
                    (pr[i - 1].customer == pr[i].customer && pr[i - 1].product < pr[i].product));
    cvm_free(pr);
    free(got);
    free(x);
    free(tx);
    free(T);
    free(m);
    free(h);
    free(act);
    gsl_rng_free(rng);
    cvm_txn_table_clear(&t);
    cvm_test_rmtree(dir);
    free(dir);
}

/* ---- the stage through the binary ---- */

static char *run_job(const char *dir, const char *job, const char *tag, const char *extra)
{
    char *out = cvm_test_path(dir, tag);
    /* keep_runs 0: a fresh output directory has nothing to retain. */
    int rc = cvm_test_system("cd '%s' && '%s' run '%s' --out '%s' --quiet --set cycles.enabled=true "
                             "--set output.keep_runs=0 %s > '%s.log' 2>&1",
                             cvm_test_source_dir(), cvm_test_binary(), job, out, extra, out);
    if (rc != 0) {
        char lp[4200];
        snprintf(lp, sizeof lp, "%s.log", out);
        char *log = cvm_test_read_file(lp, NULL);
        fail_msg("cvm run %s failed (%d): %s", job, rc, log ? log : "");
    }
    return out;
}

/* Planted reorder cycles (truth_cycles.csv) in cycles.csv. The generator
 * pins a pharmacy's first and last order so that the mean gap is exactly its
 * cycle; a core product is on every order (m = 1) or every other one (m = 2,
 * counted back from the last order). What moves the observed mean:
 * dates are whole days (floor, <= 1 day) and weekend orders move to Monday
 * (<= 2 days), at each end of the span: 3 days over the n - 1 intervals; and
 * for m = 2 with an even number of orders the product's span starts at the
 * second order, missing one jittered gap (cv 0.15 and a 30% winter time
 * warp: within 0.75 of the customer's cycle). So
 *   |mean - cycle| <= (3 + (m - 1) 0.75 customer cycle) / (n - 1)
 * (+0.005 for the two decimals written), and every planted pair is found. */
static void check_planted(const char *truth_dir, const char *out)
{
    char *tp = cvm_test_path(truth_dir, "truth_cycles.csv");
    char *cp = cvm_test_path(truth_dir, "truth_customers.csv");
    char *gp = cvm_test_path(out, "latest/cycles.csv");
    rows tr = read_csv(tp), tc = read_csv(cp), g = read_csv(gp);
    int g_c = col(&g, "customer_id"), g_p = col(&g, "product_id"), g_n = col(&g, "n_purchases"),
        g_mean = col(&g, "mean_interval_days"), g_med = col(&g, "median_interval_days"),
        g_last = col(&g, "last_purchase"), g_next = col(&g, "next_reorder");
    assert_true(tr.n > 100);
    size_t exact3 = 0;
    for (size_t i = 1; i < tr.n; i++) {
        const char *cid = cell(&tr, i, 0), *pid = cell(&tr, i, 1);
        double cyc = atof(cell(&tr, i, 2)), ccyc = NAN;
        for (size_t k = 1; k < tc.n && isnan(ccyc); k++)
            if (strcmp(cell(&tc, k, 0), cid) == 0)
                ccyc = atof(cell(&tc, k, 3));
        assert_false(isnan(ccyc));
        double mult = round(cyc / ccyc);
        size_t hit = 0;
        for (size_t k = 1; k < g.n && !hit; k++)
            if (strcmp(cell(&g, k, g_c), cid) == 0 && strcmp(cell(&g, k, g_p), pid) == 0)
                hit = k;
        if (!hit)
            fail_msg("planted pair %s %s (cycle %.2f) missing from cycles.csv", cid, pid, cyc);
        int n = atoi(cell(&g, hit, g_n));
        double mean = atof(cell(&g, hit, g_mean)), err = fabs(mean - cyc);
        double bound = (3 + (mult - 1) * 0.75 * ccyc) / (n - 1) + 0.005;
        if (err > bound)
            fail_msg("%s %s: mean interval %.2f, planted %.2f (n %d, m %.0f): off by %.2f > %.2f",
                     cid, pid, mean, cyc, n, mult, err, bound);
        exact3 += err <= 3.0 / (n - 1) + 0.005;
        /* next_reorder = last purchase + the median, rounded. */
        double med = atof(cell(&g, hit, g_med));
        assert_int_equal(iso(cell(&g, hit, g_next)) - iso(cell(&g, hit, g_last)), (int)lround(med));
    }
    print_message("%zu planted pairs found; %zu within the 3-day span bound\n", tr.n - 1, exact3);
    assert_true(exact3 >= (tr.n - 1) * 95 / 100);
    rows_free(&tr);
    rows_free(&tc);
    rows_free(&g);
    free(tp);
    free(cp);
    free(gp);
}

static void test_planted_reorder_cycles(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("cyc-planted");
    char *out = run_job(dir, "jobs/nightly.yaml", "sample", "");
    char *sd = cvm_test_path(cvm_test_source_dir(), "sample_data");
    check_planted(sd, out);
    free(sd);
    free(out);
    /* A fresh data set with another seed and the history at its natural scale. */
    char *gd = cvm_test_path(dir, "gen");
    assert_int_equal(cvm_test_system("'%s' gen --customers 1200 --seed 11 --out '%s' > /dev/null 2>&1",
                                     cvm_test_binary(), gd), 0);
    char *src = cvm_test_path(cvm_test_source_dir(), "jobs/nightly.yaml");
    char *job = cvm_test_path(dir, "gen.yaml");
    char *text = cvm_test_read_file(src, NULL);
    assert_non_null(text);
    /* Same job, pointed at the generated files. */
    size_t cap = strlen(text) + 4096;
    char *mod = malloc(cap), *w = mod;
    for (const char *s = text; *s;) {
        const char *hit = strstr(s, "../sample_data/");
        if (hit == NULL) {
            w += sprintf(w, "%s", s);
            break;
        }
        w += sprintf(w, "%.*s%s/", (int)(hit - s), s, gd);
        s = hit + strlen("../sample_data/");
    }
    cvm_test_write_file(job, mod);
    out = run_job(dir, job, "gen-out", "");
    check_planted(gd, out);
    free(out);
    free(mod);
    free(text);
    free(job);
    free(src);
    free(gd);
    cvm_test_rmtree(dir);
    free(dir);
}

static json_t *models(const char *out)
{
    char *p = cvm_test_path(out, "latest/summary.json");
    json_error_t je;
    json_t *s = json_load_file(p, 0, &je);
    if (s == NULL)
        fail_msg("%s: %s", p, je.text);
    free(p);
    json_t *m = json_incref(json_object_get(s, "models"));
    json_decref(s);
    return m;
}

/* Columns on the sample data: the rhythm, the reason, the contact date, the
 * churn risk, and CLV put together from its parts. */
static void test_stage_columns(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("cyc-cols");
    char *out = run_job(dir, "jobs/nightly.yaml", "o", "");
    json_t *m = models(out);
    json_t *bg = json_object_get(m, "bgnbd"), *gg = json_object_get(m, "gamma_gamma");
    assert_non_null(bg);
    assert_non_null(gg);
    bool bg_ok = json_is_true(json_object_get(bg, "converged"));
    bool gg_ok = json_is_true(json_object_get(gg, "converged"));
    double thr = json_number_value(json_object_get(json_object_get(m, "cycles"), "churn_threshold"));
    char *sp = cvm_test_path(out, "latest/segments.csv");
    rows s = read_csv(sp);
    int c_last = col(&s, "last_purchase"), c_med = col(&s, "median_interval_days"),
        c_next = col(&s, "next_purchase_date"), c_late = col(&s, "days_overdue"),
        c_od = col(&s, "overdue"), c_pa = col(&s, "p_alive"), c_risk = col(&s, "churn_risk"),
        c_by = col(&s, "contact_by"), c_why = col(&s, "cycle_reason"), c_rec = col(&s, "recency_days"),
        c_after = col(&s, "overdue_after_days"), c_ex = col(&s, "expected_purchases"),
        c_ev = col(&s, "expected_avg_value"), c_clv = col(&s, "clv"), c_mr = col(&s, "margin_rate");
    char *sum = cvm_test_path(out, "latest/summary.json");
    json_error_t je;
    json_t *S = json_load_file(sum, 0, &je);
    int32_t as_of = iso(json_string_value(json_object_get(S, "as_of")));
    json_decref(S);
    size_t with_cycle = 0, high = 0, checked_clv = 0;
    for (size_t i = 1; i < s.n; i++) {
        const char *last = cell(&s, i, c_last), *med = cell(&s, i, c_med);
        const char *why = cell(&s, i, c_why), *risk = cell(&s, i, c_risk);
        if (*last == '\0') { /* a prospect: nothing */
            assert_string_equal(why, "");
            assert_string_equal(cell(&s, i, c_pa), "");
            continue;
        }
        if (bg_ok) {
            double pa = atof(cell(&s, i, c_pa));
            assert_true(*cell(&s, i, c_pa) != '\0' && pa >= 0 && pa <= 1);
            assert_true(*cell(&s, i, c_ex) != '\0' && atof(cell(&s, i, c_ex)) >= 0);
            if (pa < thr) {
                assert_string_equal(risk, "high");
                assert_non_null(strstr(why, "churn risk high"));
                high++;
            }
        }
        if (*med != '\0') {
            with_cycle++;
            int32_t next = iso(cell(&s, i, c_next)), by = iso(cell(&s, i, c_by));
            assert_int_equal(next - iso(last), (int)lround(atof(med)));
            assert_int_equal(by, next - 3 > as_of ? next - 3 : as_of);
            int late = atoi(cell(&s, i, c_late));
            int expect = atoi(cell(&s, i, c_rec)) - (int)ceil(atof(cell(&s, i, c_after)) - 1e-9);
            /* overdue_after_days is written with 1 decimal: allow its rounding. */
            assert_true(abs(late - (expect > 0 ? expect : 0)) <= 1);
            assert_int_equal(atoi(cell(&s, i, c_od)), late > 0);
            char every[64];
            snprintf(every, sizeof every, "usually orders every %ld days", lround(atof(med)));
            assert_non_null(strstr(why, every));
            if (late > 0) {
                assert_true(strncmp(why, "call now", 8) == 0);
                if (strcmp(risk, "high") != 0)
                    assert_string_equal(risk, "medium");
            } else {
                char pre[64];
                snprintf(pre, sizeof pre, "call before %s:", cell(&s, i, c_by));
                assert_true(strncmp(why, pre, strlen(pre)) == 0);
            }
        } else {
            assert_string_equal(cell(&s, i, c_next), "");
            assert_non_null(strstr(why, "purchase day"));
        }
        if (bg_ok && gg_ok && *cell(&s, i, c_clv) != '\0' && *cell(&s, i, c_mr) != '\0') {
            /* clv = margin x E(M) x discounted purchases < margin x E(M) x expected. */
            double clv = atof(cell(&s, i, c_clv)), mr = atof(cell(&s, i, c_mr));
            double ev = atof(cell(&s, i, c_ev)), ex = atof(cell(&s, i, c_ex));
            if (mr > 0 && mr <= 1 && ex > 0.01) {
                assert_true(clv <= mr * ev * ex * (1 + 1e-3) + 0.01);
                assert_true(clv >= mr * ev * ex * 0.8 - 0.01); /* 10% a year over one year */
                checked_clv++;
            }
        }
    }
    print_message("%zu customers with a rhythm, %zu at high churn risk, %zu CLVs checked\n",
                  with_cycle, high, checked_clv);
    assert_true(with_cycle > 100);
    assert_int_equal((size_t)json_integer_value(json_object_get(json_object_get(m, "cycles"),
                                                                "customers_with_cycle")), with_cycle);
    rows_free(&s);
    json_decref(m);
    free(sp);
    free(sum);
    free(out);
    cvm_test_rmtree(dir);
    free(dir);
}

static void test_threads_same_bytes(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("cyc-threads");
    char *o1 = run_job(dir, "jobs/nightly.yaml", "t1", "--threads 1");
    char *o2 = run_job(dir, "jobs/nightly.yaml", "t2", "--threads 2");
    static const char *const files[] = {"latest/cycles.csv", "latest/segments.csv"};
    for (int k = 0; k < 2; k++) {
        char *a = cvm_test_path(o1, files[k]), *b = cvm_test_path(o2, files[k]);
        size_t la, lb;
        char *x = cvm_test_read_file(a, &la), *y = cvm_test_read_file(b, &lb);
        assert_non_null(x);
        assert_non_null(y);
        if (la != lb || memcmp(x, y, la) != 0)
            fail_msg("%s differs between 1 and 2 threads", files[k]);
        free(x);
        free(y);
        free(a);
        free(b);
    }
    json_t *m1 = models(o1), *m2 = models(o2);
    static const char *const keys[] = {"cycles", "bgnbd", "gamma_gamma"};
    for (int k = 0; k < 3; k++) {
        char *s1 = json_dumps(json_object_get(m1, keys[k]), JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        char *s2 = json_dumps(json_object_get(m2, keys[k]), JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
        assert_non_null(s1);
        assert_string_equal(s1, s2);
        free(s1);
        free(s2);
    }
    json_decref(m1);
    json_decref(m2);
    free(o1);
    free(o2);
    cvm_test_rmtree(dir);
    free(dir);
}

/* A fit that cannot be made does not fail the run: every customer bought
 * once, so BG/NBD has nothing to learn from and Gamma-Gamma no repeaters;
 * the statuses say so and the model columns stay empty. */
static void test_fit_not_usable(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("cyc-nofit");
    char *csv = cvm_test_path(dir, "tx.csv"), *job = cvm_test_path(dir, "job.yaml");
    FILE *f = fopen(csv, "w");
    assert_non_null(f);
    fputs("customer_id,date,revenue\n", f);
    for (int i = 0; i < 50; i++)
        fprintf(f, "K%02d,2024-%02d-%02d,%d.50\n", i, 1 + i % 12, 1 + i % 28, 10 + i);
    assert_int_equal(fclose(f), 0);
    char text[512];
    snprintf(text, sizeof text,
             "job: {name: nofit}\ninput:\n  transactions:\n    path: %s\n"
             "    columns: {customer: customer_id, date: date, revenue: revenue}\n", csv);
    cvm_test_write_file(job, text);
    char *out = run_job(dir, job, "o", "");
    json_t *m = models(out);
    json_t *bg = json_object_get(m, "bgnbd"), *gg = json_object_get(m, "gamma_gamma");
    assert_false(json_is_true(json_object_get(bg, "converged")));
    assert_string_equal(json_string_value(json_object_get(bg, "status")), "no_repeat_purchases");
    assert_true(json_is_null(json_object_get(bg, "r")));
    assert_string_equal(json_string_value(json_object_get(gg, "status")), "too_few_customers");
    char *sp = cvm_test_path(out, "latest/segments.csv");
    rows s = read_csv(sp);
    assert_int_equal(s.n, 51);
    int c_pa = col(&s, "p_alive"), c_clv = col(&s, "clv"), c_why = col(&s, "cycle_reason"),
        c_risk = col(&s, "churn_risk");
    for (size_t i = 1; i < s.n; i++) {
        assert_string_equal(cell(&s, i, c_pa), "");
        assert_string_equal(cell(&s, i, c_clv), "");
        assert_string_equal(cell(&s, i, c_risk), "");
        assert_true(strncmp(cell(&s, i, c_why), "1 purchase day, last order ", 27) == 0);
    }
    rows_free(&s);
    json_decref(m);
    free(sp);
    free(out);
    free(csv);
    free(job);
    cvm_test_rmtree(dir);
    free(dir);
}

static void test_config_errors(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("cyc-cfg");
    struct {
        const char *set, *needle;
    } cases[] = {
        {"--set cycles.overdue_param=2", "cycles.overdue_param"},
        {"--set cycles.overdue_rule=sometimes", "cycles.overdue_rule"},
        {"--set cycles.calibration_end=2030-01-01", "cycles.calibration_end"},
        {"--set cycles.time_unit=months", "cycles.time_unit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *log = cvm_test_path(dir, "log");
        int rc = cvm_test_system("cd '%s' && '%s' run jobs/nightly.yaml --out '%s/o' --quiet "
                                 "--set cycles.enabled=true --set output.keep_runs=0 %s > '%s' 2>&1",
                                 cvm_test_source_dir(), cvm_test_binary(), dir, cases[i].set, log);
        char *text = cvm_test_read_file(log, NULL);
        if (rc != 2 || text == NULL || strstr(text, cases[i].needle) == NULL)
            fail_msg("%s: exit %d, message '%s'", cases[i].set, rc, text ? text : "");
        free(text);
        free(log);
    }
    /* zscore takes any z >= 0, including 2. */
    char *out = run_job(dir, "jobs/nightly.yaml", "z", "--set cycles.overdue_rule=zscore --set cycles.overdue_param=2");
    free(out);
    cvm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_history),
        cmocka_unit_test(test_random_vs_brute_force),
        cmocka_unit_test(test_planted_reorder_cycles),
        cmocka_unit_test(test_stage_columns),
        cmocka_unit_test(test_threads_same_bytes),
        cmocka_unit_test(test_fit_not_usable),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
