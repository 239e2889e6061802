#include "cycles.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "parallel.h"

void cvm_cycles_params_default(cvm_cycles_params *p)
{
    p->as_of = CVM_DATE_NONE;
    p->min_intervals = 2;
    p->product_min_intervals = 2;
    p->rule = CVM_OVERDUE_QUANTILE;
    p->rule_param = 0.9;
    p->threads = 0;
}

const char *cvm_cycles_params_check(const cvm_cycles_params *p)
{
    if (p->as_of == CVM_DATE_NONE)
        return "as_of is not set";
    if (p->min_intervals < 1 || p->product_min_intervals < 1)
        return "min_intervals and product_min_intervals must be at least 1";
    if (p->rule == CVM_OVERDUE_QUANTILE && !(p->rule_param > 0 && p->rule_param <= 1))
        return "the quantile overdue rule needs a level in (0, 1]";
    if (p->rule == CVM_OVERDUE_ZSCORE && !(p->rule_param >= 0 && p->rule_param <= 100))
        return "the zscore overdue rule needs z within [0, 100]";
    if (p->rule != CVM_OVERDUE_QUANTILE && p->rule != CVM_OVERDUE_ZSCORE)
        return "unknown overdue rule";
    return NULL;
}

static bool is_purchase(const cvm_txn_table *t, size_t r)
{
    return !(t->flags[r] & (CVM_TXN_RETURN | CVM_TXN_EXCLUDED));
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Linear-interpolation quantile (numpy's default) of sorted v[0..n). */
static double quantile(const double *v, size_t n, double q)
{
    double h = q * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n)
        return v[n - 1];
    return v[lo] + (h - (double)lo) * (v[lo + 1] - v[lo]);
}

/* Fills c from the ascending distinct purchase days d[0..n); iv is scratch
 * of at least n doubles. */
static void rhythm(const cvm_cycles_params *p, int min_iv, const int32_t *d, size_t n, double *iv,
                   cvm_cycle *c)
{
    c->n_days = (int32_t)n;
    c->first_day = n ? d[0] : CVM_DATE_NONE;
    c->last_day = n ? d[n - 1] : CVM_DATE_NONE;
    c->has_cycle = n >= 2 && n - 1 >= (size_t)min_iv;
    c->mean = c->median = c->cv = c->threshold = NAN;
    c->next_day = CVM_DATE_NONE;
    c->days_overdue = 0;
    if (!c->has_cycle)
        return;
    size_t k = n - 1;
    double s = 0;
    for (size_t i = 0; i < k; i++) {
        iv[i] = (double)(d[i + 1] - d[i]);
        s += iv[i];
    }
    double mean = s / (double)k, ss = 0;
    for (size_t i = 0; i < k; i++)
        ss += (iv[i] - mean) * (iv[i] - mean);
    double sd = k >= 2 ? sqrt(ss / (double)(k - 1)) : 0;
    qsort(iv, k, sizeof *iv, cmp_double);
    c->mean = mean;
    c->median = quantile(iv, k, 0.5);
    c->cv = k >= 2 && mean > 0 ? sd / mean : NAN;
    c->threshold = p->rule == CVM_OVERDUE_QUANTILE ? quantile(iv, k, p->rule_param)
                                                   : mean + p->rule_param * sd;
    c->next_day = c->last_day + (int32_t)lround(c->median);
    double late = (double)(p->as_of - c->last_day) - ceil(c->threshold - 1e-9);
    c->days_overdue = late > 0 ? (int32_t)late : 0;
}

typedef struct scratch {
    int32_t *days;
    double *iv;
    uint64_t *keys;
    size_t cap;
} scratch;

static bool scratch_reserve(scratch *s, size_t n)
{
    if (n <= s->cap)
        return true;
    size_t cap = s->cap ? s->cap : 64;
    while (cap < n)
        cap *= 2;
    int32_t *d = cvm_realloc(s->days, cap * sizeof *d);
    if (d)
        s->days = d;
    double *iv = cvm_realloc(s->iv, cap * sizeof *iv);
    if (iv)
        s->iv = iv;
    uint64_t *k = cvm_realloc(s->keys, cap * sizeof *k);
    if (k)
        s->keys = k;
    if (!d || !iv || !k)
        return false;
    s->cap = cap;
    return true;
}

static void scratch_clear(scratch *s)
{
    cvm_free(s->days);
    cvm_free(s->iv);
    cvm_free(s->keys);
    memset(s, 0, sizeof *s);
}

int cvm_cycles_customers(const cvm_cycles_params *p, const cvm_txn_table *t, cvm_cycle *out,
                         cvm_err *err)
{
    const char *why = cvm_cycles_params_check(p);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "cycles: %s", why);
    const long n = (long)t->n_customers;
    int status = CVM_OK;
#pragma omp parallel num_threads(cvm_threads(p->threads)) default(none) shared(p, t, out, status) \
    firstprivate(n)
    {
        scratch s = {0};
#pragma omp for schedule(dynamic, 256)
        for (long c = 0; c < n; c++) {
            size_t a = t->cust_start[c], b = t->cust_start[c + 1];
            if (!scratch_reserve(&s, b - a + 1)) {
#pragma omp atomic write
                status = CVM_ENOMEM;
                continue;
            }
            size_t nd = 0;
            for (size_t r = a; r < b && t->day[r] < p->as_of; r++)
                if (is_purchase(t, r) && (nd == 0 || s.days[nd - 1] != t->day[r]))
                    s.days[nd++] = t->day[r];
            rhythm(p, p->min_intervals, s.days, nd, s.iv, &out[c]);
        }
        scratch_clear(&s);
    }
    if (status != CVM_OK)
        return CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory");
    return CVM_OK;
}

/* The (product, day) keys of customer c's purchase lines, sorted, with
 * duplicates (several lines of one product on one day) removed. */
static size_t product_keys(const cvm_cycles_params *p, const cvm_txn_table *t, long c, scratch *s)
{
    size_t a = t->cust_start[c], b = t->cust_start[c + 1], k = 0;
    for (size_t r = a; r < b && t->day[r] < p->as_of; r++)
        if (is_purchase(t, r) && t->product[r] >= 0)
            s->keys[k++] = (uint64_t)(uint32_t)t->product[r] << 32 |
                           (uint32_t)((int64_t)t->day[r] + 2147483648LL);
    qsort(s->keys, k, sizeof *s->keys, cmp_u64);
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        if (m == 0 || s->keys[m - 1] != s->keys[i])
            s->keys[m++] = s->keys[i];
    return m;
}

/* Walks customer c's product runs; with out == NULL only counts the pairs
 * that qualify. */
static size_t product_pairs(const cvm_cycles_params *p, const cvm_txn_table *t, long c, scratch *s,
                            cvm_cycle_pair *out)
{
    size_t k = product_keys(p, t, c, s), found = 0;
    for (size_t i = 0; i < k;) {
        uint32_t prod = (uint32_t)(s->keys[i] >> 32);
        size_t nd = 0;
        while (i < k && (uint32_t)(s->keys[i] >> 32) == prod) {
            s->days[nd++] = (int32_t)((int64_t)(uint32_t)s->keys[i] - 2147483648LL);
            i++;
        }
        if (nd >= 2 && nd - 1 >= (size_t)p->product_min_intervals) {
            if (out) {
                out[found].customer = (int32_t)c;
                out[found].product = (int32_t)prod;
                rhythm(p, p->product_min_intervals, s->days, nd, s->iv, &out[found].c);
            }
            found++;
        }
    }
    return found;
}

int cvm_cycles_products(const cvm_cycles_params *p, const cvm_txn_table *t,
                        cvm_cycle_pair **pairs, size_t *n_pairs, cvm_err *err)
{
    *pairs = NULL;
    *n_pairs = 0;
    const char *why = cvm_cycles_params_check(p);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "cycles: %s", why);
    if (t->products == NULL || t->n_customers == 0)
        return CVM_OK;
    const long n = (long)t->n_customers;
    size_t *off = cvm_calloc((size_t)n + 1, sizeof *off);
    if (off == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory");
    int status = CVM_OK;
    cvm_cycle_pair *res = NULL;
    /* Two passes, count then fill, so each customer writes its own slice:
     * the output order is the customer order whatever the thread count. */
    for (int pass = 0; pass < 2 && status == CVM_OK; pass++) {
        if (pass == 1) {
            for (long c = 0; c < n; c++)
                off[c + 1] += off[c];
            if (off[n] == 0)
                break;
            res = cvm_malloc(off[n] * sizeof *res);
            if (res == NULL) {
                status = CVM_ENOMEM;
                break;
            }
        }
#pragma omp parallel num_threads(cvm_threads(p->threads)) default(none) \
    shared(p, t, off, res, status) firstprivate(n, pass)
        {
            scratch s = {0};
#pragma omp for schedule(dynamic, 256)
            for (long c = 0; c < n; c++) {
                size_t a = t->cust_start[c], b = t->cust_start[c + 1];
                if (!scratch_reserve(&s, b - a + 1)) {
#pragma omp atomic write
                    status = CVM_ENOMEM;
                    continue;
                }
                if (pass == 0)
                    off[c + 1] = product_pairs(p, t, c, &s, NULL);
                else
                    product_pairs(p, t, c, &s, res + off[c]);
            }
            scratch_clear(&s);
        }
    }
    if (status != CVM_OK) {
        cvm_free(off);
        cvm_free(res);
        return CVM_FAIL(err, CVM_ENOMEM, "cycles: out of memory");
    }
    *n_pairs = off[n];
    *pairs = res;
    cvm_free(off);
    return CVM_OK;
}

int cvm_cycles_summary(const cvm_txn_table *t, int32_t end_day, double unit_days,
                       int32_t holdout_end, int threads, double *x, double *t_x, double *T,
                       double *m_x, uint8_t *active, double *holdout, cvm_err *err)
{
    if (!(unit_days > 0))
        return CVM_FAIL(err, CVM_EINVAL, "cycles: unit_days must be positive");
    const long n = (long)t->n_customers;
#pragma omp parallel for schedule(dynamic, 512) num_threads(cvm_threads(threads)) default(none) \
    shared(t, x, t_x, T, m_x, active, holdout) firstprivate(n, end_day, unit_days, holdout_end)
    for (long c = 0; c < n; c++) {
        size_t a = t->cust_start[c], b = t->cust_start[c + 1];
        int32_t first = CVM_DATE_NONE, last = CVM_DATE_NONE, last_later = CVM_DATE_NONE;
        double days = 0, rep_value = 0, later = 0;
        for (size_t r = a; r < b; r++) {
            if (!is_purchase(t, r))
                continue;
            int32_t d = t->day[r]; /* rows are sorted by day */
            if (d > end_day) {
                if (holdout && d <= holdout_end && d != last_later) {
                    later++;
                    last_later = d;
                }
                continue;
            }
            if (first == CVM_DATE_NONE)
                first = d;
            if (d != last) {
                days++;
                last = d;
            }
            if (d != first)
                rep_value += t->revenue[r];
        }
        if (holdout)
            holdout[c] = first == CVM_DATE_NONE ? 0 : later;
        if (first == CVM_DATE_NONE) {
            active[c] = 0;
            x[c] = t_x[c] = T[c] = m_x[c] = 0;
            continue;
        }
        active[c] = 1;
        x[c] = days - 1;
        t_x[c] = (double)(last - first) / unit_days;
        T[c] = (double)(end_day - first) / unit_days;
        m_x[c] = days > 1 ? rep_value / (days - 1) : 0;
    }
    return CVM_OK;
}
