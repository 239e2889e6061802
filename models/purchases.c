#include "purchases.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "parallel.h"

void cvm_purchases_params_default(cvm_purchases_params *p)
{
    p->as_of = CVM_DATE_NONE;
    p->window_days = 365;
    p->default_margin = 0.25;
    p->threads = 0;
}

const char *cvm_purchases_params_check(const cvm_purchases_params *p)
{
    if (p->as_of == CVM_DATE_NONE)
        return "as_of is not set (no purchase in the data?)";
    if (p->window_days < 1)
        return "window_days must be at least 1";
    if (!(p->default_margin >= -1 && p->default_margin <= 1))
        return "default_margin must be within [-1, 1]";
    return NULL;
}

int32_t cvm_purchases_default_as_of(const cvm_txn_table *t)
{
    int32_t last = CVM_DATE_NONE;
    long n = (long)t->n_rows;
    const uint8_t *fl = t->flags;
    const int32_t *day = t->day;
#pragma omp parallel for schedule(static) default(none) shared(n, fl, day) reduction(max : last)
    for (long r = 0; r < n; r++)
        if (!(fl[r] & (CVM_TXN_RETURN | CVM_TXN_EXCLUDED)) && day[r] > last)
            last = day[r];
    return last == CVM_DATE_NONE ? CVM_DATE_NONE : last + 1;
}

/* A set of order ids (>= 0) for one customer; -1 marks an empty slot. */
typedef struct order_set {
    int32_t *slot;
    size_t mask, cap;
} order_set;

/* Empties the set, sized for up to `lines` distinct orders. */
static int set_reset(order_set *s, size_t lines)
{
    size_t want = 16;
    while (want < 2 * lines)
        want <<= 1;
    if (want > s->cap) {
        int32_t *p = realloc(s->slot, want * sizeof *p);
        if (p == NULL)
            return -1;
        s->slot = p;
        s->cap = want;
    }
    s->mask = want - 1;
    memset(s->slot, 0xff, want * sizeof *s->slot);
    return 0;
}

/* 1 when o was new. */
static inline int set_add(order_set *s, int32_t o)
{
    size_t i = ((uint32_t)o * 0x9E3779B1u) & s->mask;
    while (s->slot[i] >= 0) {
        if (s->slot[i] == o)
            return 0;
        i = (i + 1) & s->mask;
    }
    s->slot[i] = o;
    return 1;
}

typedef struct cols {
    int32_t *first, *last;
    int64_t *recency, *frequency, *pdays, *lines, *rlines, *tenure;
    double *monetary, *gross, *returns, *rshare, *aov, *units, *cogs, *margin, *mrate,
        *recent, *est_share, *mean_iv, *cv_iv;
} cols;

static int add_columns(cvm_custtab *ct, cols *c, cvm_err *err)
{
#define ADD(x) if ((x) == NULL) return err ? err->status : CVM_ENOMEM
    ADD(c->first = cvm_custtab_add_date(ct, "first_purchase", "Day of the first purchase line.", err));
    ADD(c->last = cvm_custtab_add_date(ct, "last_purchase", "Day of the last purchase line before as_of.", err));
    ADD(c->recency = cvm_custtab_add_int(ct, "recency_days", "days",
        "Whole calendar days from the last purchase to as_of (1 = bought the day before). Empty without purchases.", err));
    ADD(c->frequency = cvm_custtab_add_int(ct, "frequency", "orders",
        "Distinct orders with at least one purchase line (returns and excluded codes do not count).", err));
    ADD(c->pdays = cvm_custtab_add_int(ct, "purchase_days", "days",
        "Distinct days with a purchase.", err));
    ADD(c->monetary = cvm_custtab_add_double(ct, "monetary", "currency",
        "Net revenue: purchase lines minus returns, excluded codes left out.", 2, err));
    ADD(c->gross = cvm_custtab_add_double(ct, "revenue_gross", "currency",
        "Revenue of purchase lines only.", 2, err));
    ADD(c->returns = cvm_custtab_add_double(ct, "returns_value", "currency",
        "Value of returned lines, as a positive amount.", 2, err));
    ADD(c->rshare = cvm_custtab_add_double(ct, "return_share", "share",
        "returns_value / revenue_gross (0 when nothing was bought).", 4, err));
    ADD(c->aov = cvm_custtab_add_double(ct, "avg_order_value", "currency",
        "revenue_gross / frequency.", 2, err));
    ADD(c->units = cvm_custtab_add_double(ct, "units", "units",
        "Quantity bought on purchase lines, net of returned quantity.", 2, err));
    ADD(c->lines = cvm_custtab_add_int(ct, "lines", "lines",
        "Accepted transaction lines before as_of (purchases, returns, excluded codes).", err));
    ADD(c->rlines = cvm_custtab_add_int(ct, "return_lines", "lines", "Lines flagged as returns.", err));
    ADD(c->tenure = cvm_custtab_add_int(ct, "tenure_days", "days",
        "as_of - first_purchase: how long the customer has bought.", err));
    ADD(c->recent = cvm_custtab_add_double(ct, "revenue_recent", "currency",
        "Net revenue in the value.window_days (default 365) days before as_of: the basis of the one-vote grade.", 2, err));
    ADD(c->cogs = cvm_custtab_add_double(ct, "cost_of_goods", "currency",
        "Cost of goods of net sales: line costs (unit cost x quantity, from the file or the product master), returns deducted; lines without a cost are estimated with value.default_margin.", 2, err));
    ADD(c->est_share = cvm_custtab_add_double(ct, "cost_estimated_share", "share",
        "Share of net revenue whose cost was estimated from value.default_margin.", 4, err));
    ADD(c->margin = cvm_custtab_add_double(ct, "gross_margin", "currency",
        "monetary - cost_of_goods.", 2, err));
    ADD(c->mrate = cvm_custtab_add_double(ct, "margin_rate", "share",
        "gross_margin / monetary (empty when monetary is 0).", 4, err));
    ADD(c->mean_iv = cvm_custtab_add_double(ct, "mean_interval_days", "days",
        "Mean gap between distinct purchase days (empty with fewer than 2).", 2, err));
    ADD(c->cv_iv = cvm_custtab_add_double(ct, "interval_cv", "ratio",
        "Coefficient of variation of those gaps: purchase regularity (0 = clockwork; empty with fewer than 3 purchase days).", 4, err));
#undef ADD
    return CVM_OK;
}

int cvm_purchases_run(const cvm_purchases_params *p, const cvm_txn_table *t, cvm_custtab *ct,
                     cvm_err *err)
{
    const char *why = cvm_purchases_params_check(p);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "purchases: %s", why);
    if (ct->n_rows != t->n_customers)
        return CVM_FAIL(err, CVM_EINVAL, "purchases: customer table has %zu rows, expected %zu",
                        ct->n_rows, t->n_customers);
    cols c;
    CVM_TRY(add_columns(ct, &c, err));
    const int32_t as_of = p->as_of, since = p->as_of - p->window_days;
    const double dm = p->default_margin;
    long n = (long)t->n_customers;
    int status = CVM_OK;
#pragma omp parallel num_threads(cvm_threads(p->threads)) \
    default(none) shared(t, c, n, status) firstprivate(as_of, since, dm)
    {
        /* Distinct orders per customer: an order's lines need not be
         * adjacent, so each customer's orders go into a small open-addressing
         * set sized to its lines (at most half full). It stays in the cache,
         * where a table over all orders would miss on every new order. */
        order_set set = {0};
#pragma omp for schedule(dynamic, 512)
        for (long ci = 0; ci < n; ci++) {
            size_t a = t->cust_start[ci], b = t->cust_start[ci + 1];
            if (set_reset(&set, b - a) != 0) {
#pragma omp atomic write
                status = CVM_ENOMEM;
            }
            if (status != CVM_OK)
                continue;
            int32_t prev_order = -1;
            double mon = 0, gross = 0, ret = 0, units = 0, cogs = 0, recent = 0, est = 0;
            int64_t lines = 0, rlines = 0, orders = 0, pdays = 0;
            int32_t first = CVM_DATE_NONE, last = CVM_DATE_NONE, prev_day = CVM_DATE_NONE;
            double s1 = 0, s2 = 0;
            int64_t ngaps = 0;
            for (size_t r = a; r < b; r++) {
                int32_t d = t->day[r];
                if (d >= as_of)
                    break; /* rows are sorted by day */
                uint8_t f = t->flags[r];
                lines++;
                if (f & CVM_TXN_EXCLUDED)
                    continue;
                double rev = t->revenue[r], cost = t->cost[r];
                if (isnan(cost)) {
                    cost = rev * (1 - dm);
                    est += rev;
                }
                mon += rev;
                cogs += cost;
                if (d >= since)
                    recent += rev;
                if (f & CVM_TXN_RETURN) {
                    rlines++;
                    ret -= rev;
                    units -= fabs(t->quantity[r]);
                    continue;
                }
                gross += rev;
                units += t->quantity[r];
                if (first == CVM_DATE_NONE)
                    first = d;
                last = d;
                if (d != prev_day) {
                    if (prev_day != CVM_DATE_NONE) {
                        double g = d - prev_day;
                        s1 += g;
                        s2 += g * g;
                        ngaps++;
                    }
                    prev_day = d;
                    pdays++;
                }
                int32_t o = t->order[r];
                if (o != prev_order) { /* most lines continue their order */
                    prev_order = o;
                    orders += set_add(&set, o);
                }
            }
            c.first[ci] = first;
            c.last[ci] = last;
            c.recency[ci] = last == CVM_DATE_NONE ? CVM_INT_NONE : (int64_t)(as_of - last);
            c.tenure[ci] = first == CVM_DATE_NONE ? CVM_INT_NONE : (int64_t)(as_of - first);
            c.frequency[ci] = orders;
            c.pdays[ci] = pdays;
            c.lines[ci] = lines;
            c.rlines[ci] = rlines;
            c.monetary[ci] = mon;
            c.gross[ci] = gross;
            c.returns[ci] = ret;
            c.rshare[ci] = gross > 0 ? ret / gross : 0;
            c.aov[ci] = orders > 0 ? gross / (double)orders : NAN;
            c.units[ci] = units;
            c.cogs[ci] = cogs;
            c.est_share[ci] = mon != 0 ? est / mon : (est != 0 ? 1 : 0);
            c.margin[ci] = mon - cogs;
            c.mrate[ci] = mon != 0 ? (mon - cogs) / mon : NAN;
            c.recent[ci] = recent;
            c.mean_iv[ci] = ngaps >= 1 ? s1 / (double)ngaps : NAN;
            if (ngaps >= 2) {
                double mean = s1 / (double)ngaps;
                double var = (s2 - (double)ngaps * mean * mean) / (double)(ngaps - 1);
                c.cv_iv[ci] = mean > 0 ? sqrt(var > 0 ? var : 0) / mean : NAN;
            }
        }
        free(set.slot);
    }
    if (status != CVM_OK)
        return CVM_FAIL(err, CVM_ENOMEM, "purchases: out of memory for the order sets");
    return CVM_OK;
}
