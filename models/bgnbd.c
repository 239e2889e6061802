#include "bgnbd.h"

#include <gsl/gsl_chebyshev.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_sf_hyperg.h>
#include <gsl/gsl_sf_psi.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "mle.h"
#include "parallel.h"

/* Customers per block of the likelihood sum. Fixed, not derived from the
 * thread count: each block is summed serially and the blocks are added in
 * order, which is what makes 1 and N threads give the same bits. */
#define BLOCK 4096
/* Sums per block: log-likelihood and four gradient accumulators. */
#define NSUM 5
/* Log-parameters beyond this are treated as off the map (e^25 ~ 7e10). */
#define LOG_BOUND 25.0
/* Blocks before the likelihood goes parallel. */
#define PAR_MIN_BLOCKS 8

void cvm_bgnbd_opts_default(cvm_bgnbd_opts *o)
{
    o->max_iter = 400;
    o->n_starts = 4;
    o->grad_tol = 1e-9;
    o->start_sample = 5000;
    o->threads = 0;
}

const char *cvm_bgnbd_opts_check(const cvm_bgnbd_opts *o)
{
    return cvm_mle_opts_check(o->max_iter, o->n_starts, 8, o->grad_tol, o->start_sample);
}

const char *cvm_bgnbd_params_check(const cvm_bgnbd_params *p)
{
    const double v[4] = {p->r, p->alpha, p->a, p->b};
    for (int i = 0; i < 4; i++)
        if (!(v[i] > 0) || !isfinite(v[i]))
            return "BG/NBD parameters r, alpha, a, b must be positive and finite";
    return NULL;
}

const char *cvm_bgnbd_data_check(const cvm_bgnbd_data *d, char *buf, size_t len)
{
    if (d->n > 0 && (d->x == NULL || d->t_x == NULL || d->T == NULL)) {
        snprintf(buf, len, "BG/NBD data: NULL array");
        return buf;
    }
    for (size_t i = 0; i < d->n; i++) {
        double x = d->x[i], tx = d->t_x[i], T = d->T[i];
        const char *why = NULL;
        if (!(x >= 0 && x <= 1e9) || x != floor(x))
            why = "x must be a whole number in [0, 1e9]";
        else if (!(T >= 0) || !isfinite(T))
            why = "T must be finite and >= 0";
        else if (!(tx >= 0 && tx <= T))
            why = "t_x must be within [0, T]";
        else if (x == 0 && tx != 0)
            why = "t_x must be 0 when x is 0";
        if (why) {
            snprintf(buf, len, "BG/NBD data, customer %zu (x=%g, t_x=%g, T=%g): %s", i, x, tx, T,
                     why);
            return buf;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Prepared data: distinct x values, so the Gamma-function terms are    */
/* computed once per distinct x and not once per customer.              */

typedef struct prep {
    size_t n;
    const double *t_x, *T;
    int32_t *xi;      /* customer -> index into xv */
    double *xv;       /* distinct x, ascending */
    double *xn;       /* customers per distinct x */
    size_t nx;
    double *lab;      /* per eval: log a - log(b + x - 1) (x > 0) */
    double *ibx;      /* per eval: 1 / (b + x - 1) */
    size_t nblocks;
    double *part;     /* nblocks x NSUM */
    int threads;
    /* Owned copies when the prep is a subsample. */
    double *own_tx, *own_T;
} prep;

static void prep_clear(prep *P)
{
    cvm_free(P->xi);
    cvm_free(P->xv);
    cvm_free(P->xn);
    cvm_free(P->lab);
    cvm_free(P->ibx);
    cvm_free(P->part);
    cvm_free(P->own_tx);
    cvm_free(P->own_T);
    memset(P, 0, sizeof *P);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Prepares customers i = 0, stride, 2 stride, ... of d. */
static int prep_init(prep *P, const cvm_bgnbd_data *d, size_t stride, int threads)
{
    memset(P, 0, sizeof *P);
    size_t n = stride > 1 ? (d->n + stride - 1) / stride : d->n;
    P->n = n;
    P->threads = threads;
    P->xi = cvm_malloc((n ? n : 1) * sizeof *P->xi);
    if (P->xi == NULL)
        return CVM_ENOMEM;
    if (stride > 1) {
        P->own_tx = cvm_malloc((n ? n : 1) * sizeof *P->own_tx);
        P->own_T = cvm_malloc((n ? n : 1) * sizeof *P->own_T);
        if (!P->own_tx || !P->own_T)
            return CVM_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            P->own_tx[i] = d->t_x[i * stride];
            P->own_T[i] = d->T[i * stride];
        }
        P->t_x = P->own_tx;
        P->T = P->own_T;
    } else {
        P->t_x = d->t_x;
        P->T = d->T;
    }
    double xmax = 0;
    for (size_t i = 0; i < n; i++)
        if (d->x[i * stride] > xmax)
            xmax = d->x[i * stride];
    if (xmax < (double)(1u << 22)) {
        /* Counting: x is small in any real data. */
        size_t m = (size_t)xmax + 1;
        int32_t *map = cvm_calloc(m, sizeof *map);
        if (map == NULL)
            return CVM_ENOMEM;
        for (size_t i = 0; i < n; i++)
            map[(size_t)d->x[i * stride]] = 1;
        size_t nx = 0;
        for (size_t k = 0; k < m; k++)
            if (map[k])
                map[k] = (int32_t)nx++;
        P->nx = nx;
        P->xv = cvm_malloc((nx ? nx : 1) * sizeof *P->xv);
        P->xn = cvm_calloc(nx ? nx : 1, sizeof *P->xn);
        if (!P->xv || !P->xn) {
            cvm_free(map);
            return CVM_ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            size_t x = (size_t)d->x[i * stride];
            int32_t k = map[x];
            P->xi[i] = k;
            P->xv[k] = (double)x;
            P->xn[k] += 1;
        }
        cvm_free(map);
    } else {
        double *s = cvm_malloc((n ? n : 1) * sizeof *s);
        if (s == NULL)
            return CVM_ENOMEM;
        for (size_t i = 0; i < n; i++)
            s[i] = d->x[i * stride];
        qsort(s, n, sizeof *s, cmp_double);
        size_t nx = 0;
        for (size_t i = 0; i < n; i++)
            if (i == 0 || s[i] != s[i - 1])
                s[nx++] = s[i];
        P->nx = nx;
        P->xv = s;
        P->xn = cvm_calloc(nx ? nx : 1, sizeof *P->xn);
        if (!P->xn)
            return CVM_ENOMEM;
        for (size_t i = 0; i < n; i++) {
            double x = d->x[i * stride];
            size_t lo = 0, hi = nx;
            while (hi - lo > 1) {
                size_t mid = (lo + hi) / 2;
                if (s[mid] <= x)
                    lo = mid;
                else
                    hi = mid;
            }
            P->xi[i] = (int32_t)lo;
            P->xn[lo] += 1;
        }
    }
    P->lab = cvm_malloc((P->nx ? P->nx : 1) * sizeof *P->lab);
    P->ibx = cvm_malloc((P->nx ? P->nx : 1) * sizeof *P->ibx);
    P->nblocks = (n + BLOCK - 1) / BLOCK;
    P->part = cvm_malloc((P->nblocks ? P->nblocks : 1) * NSUM * sizeof *P->part);
    if (!P->lab || !P->ibx || !P->part)
        return CVM_ENOMEM;
    return CVM_OK;
}

/* One block of customers: the per-customer part of the log-likelihood,
 * log[(alpha+T)^-(r+x) + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x)], and with grad
 * the sums the gradient needs. w is the weight of the second (dropped-out)
 * term, so 1 - w is P(alive). */
static void eval_block(const prep *P, double r, double al, size_t lo, size_t hi, int grad,
                       double *out)
{
    const int32_t *xi = P->xi;
    const double *xv = P->xv, *lab = P->lab, *ibx = P->ibx, *tx = P->t_x, *Tv = P->T;
    double s_ll = 0, s_r = 0, s_al = 0, s_w = 0, s_wb = 0;
    for (size_t i = lo; i < hi; i++) {
        int32_t k = xi[i];
        double x = xv[k], aT = al + Tv[i];
        double LT = log(aT), rx = r + x;
        double A = -rx * LT;
        if (x == 0) {
            s_ll += A;
            if (grad) {
                s_r += LT;
                s_al += r / aT;
            }
            continue;
        }
        double at = al + tx[i];
        double Lt = log(at);
        double B = lab[k] - rx * Lt;
        double e, lse, w;
        if (A >= B) {
            e = exp(B - A);
            lse = A + log1p(e);
            w = e / (1 + e);
        } else {
            e = exp(A - B);
            lse = B + log1p(e);
            w = 1 / (1 + e);
        }
        s_ll += lse;
        if (grad) {
            s_r += (1 - w) * LT + w * Lt;
            s_al += rx * ((1 - w) / aT + w / at);
            s_w += w;
            s_wb += w * ibx[k];
        }
    }
    out[0] = s_ll;
    out[1] = s_r;
    out[2] = s_al;
    out[3] = s_w;
    out[4] = s_wb;
}

static double prep_loglik(prep *P, const cvm_bgnbd_params *p, double *grad)
{
    const double r = p->r, al = p->alpha, a = p->a, b = p->b;
    const double la = log(a);
    for (size_t k = 0; k < P->nx; k++) {
        double x = P->xv[k];
        P->ibx[k] = x > 0 ? 1 / (b + x - 1) : 0;
        P->lab[k] = x > 0 ? la - log(b + x - 1) : 0;
    }
    const long nb = (long)P->nblocks;
    const int g = grad != NULL;
    const prep *CP = P;
    double *part = P->part;
    const size_t n = P->n;
    /* Threads only pay off over several blocks: a parallel region per
     * evaluation of a small subsample costs more than it saves. */
#pragma omp parallel for schedule(static) num_threads(cvm_threads(P->threads)) if(nb >= PAR_MIN_BLOCKS) \
    default(none) shared(CP, part) firstprivate(nb, g, r, al, n)
    for (long bi = 0; bi < nb; bi++) {
        size_t lo = (size_t)bi * BLOCK, hi = lo + BLOCK;
        if (hi > n)
            hi = n;
        eval_block(CP, r, al, lo, hi, g, part + (size_t)bi * NSUM);
    }
    double S[NSUM] = {0};
    for (long bi = 0; bi < nb; bi++)
        for (int j = 0; j < NSUM; j++)
            S[j] += part[(size_t)bi * NSUM + j];
    /* Terms that depend on the customer only through x, once per distinct x:
     * lnG(r+x) - lnG(r) + ln B(a, b+x) - ln B(a, b). */
    const double lg_r = gsl_sf_lngamma(r), lg_b = gsl_sf_lngamma(b), lg_ab = gsl_sf_lngamma(a + b);
    double cx = 0, gr = 0, ga = 0, gb = 0;
    double ps_r = 0, ps_b = 0, ps_ab = 0;
    if (grad) {
        ps_r = gsl_sf_psi(r);
        ps_b = gsl_sf_psi(b);
        ps_ab = gsl_sf_psi(a + b);
    }
    for (size_t k = 0; k < P->nx; k++) {
        double x = P->xv[k], m = P->xn[k];
        if (x == 0)
            continue;
        cx += m * (gsl_sf_lngamma(r + x) - lg_r + gsl_sf_lngamma(b + x) -
                   gsl_sf_lngamma(a + b + x) - lg_b + lg_ab);
        if (grad) {
            double p_abx = gsl_sf_psi(a + b + x);
            gr += m * (gsl_sf_psi(r + x) - ps_r);
            ga += m * (ps_ab - p_abx);
            gb += m * (gsl_sf_psi(b + x) - ps_b + ps_ab - p_abx);
        }
    }
    const double dn = (double)n;
    double ll = cx + dn * r * log(al) + S[0];
    if (grad) {
        grad[0] = gr + dn * log(al) - S[1];
        grad[1] = dn * r / al - S[2];
        grad[2] = ga + S[3] / a;
        grad[3] = gb - S[4];
    }
    return ll;
}

double cvm_bgnbd_loglik(const cvm_bgnbd_params *p, const cvm_bgnbd_data *d, int threads,
                        double grad[4])
{
    if (cvm_bgnbd_params_check(p))
        return NAN;
    prep P;
    if (prep_init(&P, d, 1, threads) != CVM_OK) {
        prep_clear(&P);
        return NAN;
    }
    double ll = prep_loglik(&P, p, grad);
    prep_clear(&P);
    return ll;
}

/* ------------------------------------------------------------------ */
/* The optimiser: minimise the mean negative log-likelihood over        */
/* log-parameters.                                                      */

/* Natural parameters from the optimiser's log-parameters; false outside
 * the search bound. */
static bool to_params(const gsl_vector *v, cvm_bgnbd_params *p)
{
    for (size_t i = 0; i < 4; i++)
        if (!(fabs(gsl_vector_get(v, i)) <= LOG_BOUND + 5))
            return false;
    p->r = exp(gsl_vector_get(v, 0));
    p->alpha = exp(gsl_vector_get(v, 1));
    p->a = exp(gsl_vector_get(v, 2));
    p->b = exp(gsl_vector_get(v, 3));
    return true;
}

/* The optimiser (engine/mle.h) over this model's likelihood. */
static double mle_loglik(void *ctx, const double *th, double *grad)
{
    cvm_bgnbd_params p = {th[0], th[1], th[2], th[3]};
    return prep_loglik(ctx, &p, grad);
}

static cvm_mle mle_of(const prep *P)
{
    cvm_mle m = {4, (double)P->n, LOG_BOUND, mle_loglik, (void *)P};
    return m;
}

static double grad_norm(const prep *P, const cvm_bgnbd_params *p, const double g[4])
{
    cvm_mle m = mle_of(P);
    const double th[4] = {p->r, p->alpha, p->a, p->b};
    return cvm_mle_grad_norm(&m, th, g);
}

static void std_errors(prep *P, const cvm_bgnbd_params *p, const double g0[4], double se[4])
{
    cvm_mle m = mle_of(P);
    const double th[4] = {p->r, p->alpha, p->a, p->b};
    cvm_mle_std_errors(&m, th, g0, se);
}

int cvm_bgnbd_fit(const cvm_bgnbd_opts *o, const cvm_bgnbd_data *d, cvm_bgnbd_result *res,
                  cvm_err *err)
{
    memset(res, 0, sizeof *res);
    res->params.r = res->params.alpha = res->params.a = res->params.b = NAN;
    res->loglik = NAN;
    for (int i = 0; i < 4; i++)
        res->se[i] = NAN;
    const char *why = cvm_bgnbd_opts_check(o);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "bgnbd: %s", why);
    char buf[256];
    if ((why = cvm_bgnbd_data_check(d, buf, sizeof buf)) != NULL)
        return CVM_FAIL(err, CVM_EINVAL, "%s", why);
    res->n = d->n;
    double sx = 0, sT = 0;
    for (size_t i = 0; i < d->n; i++) {
        res->n_repeaters += d->x[i] > 0;
        sx += d->x[i];
        sT += d->T[i];
    }
    if (d->n < 3) {
        res->status = "too_few_customers";
        return CVM_OK;
    }
    if (res->n_repeaters == 0) {
        res->status = "no_repeat_purchases";
        return CVM_OK;
    }

    prep full, samp;
    memset(&samp, 0, sizeof samp);
    size_t stride = o->start_sample && d->n > o->start_sample
                        ? (d->n + o->start_sample - 1) / o->start_sample : 1;
    int rc = prep_init(&full, d, 1, o->threads);
    if (rc == CVM_OK && stride > 1)
        rc = prep_init(&samp, d, stride, o->threads);
    gsl_vector *best = gsl_vector_alloc(4);
    if (rc != CVM_OK || !best) {
        rc = CVM_ENOMEM;
        goto out;
    }
    /* A subsample without repeat buyers cannot locate the optimum. */
    prep *S = &full;
    if (stride > 1) {
        for (size_t i = 0; i < samp.n && S == &full; i++)
            if (samp.xv[samp.xi[i]] > 0)
                S = &samp;
    }

    /* Starting points: the purchase rate of the data sets the scale of
     * alpha (E[lambda] = r / alpha); the others cover heavy, moderate and
     * light dropout. (1, 1, 1, 1) is what the usual Python code starts from. */
    double rate = sT > 0 && sx > 0 ? sx / sT : 1;
    const double starts[8][4] = {
        {1, 1 / rate, 1, 1},     {0.5, 0.5 / rate, 0.5, 2}, {2, 2 / rate, 2, 5},
        {1, 1, 1, 1},            {0.25, 0.25 / rate, 1, 4}, {1, 1 / rate, 3, 10},
        {4, 4 / rate, 0.3, 0.6}, {0.1, 0.1 / rate, 1, 1},
    };
    double fbest;
    bool maxed;
    cvm_mle ms = mle_of(S), mf = mle_of(&full);
    if (!cvm_mle_fit(&ms, &mf, &starts[0][0], o->n_starts, o->max_iter, o->grad_tol, best, &fbest,
                     &res->iterations, &maxed))
        rc = CVM_ENOMEM;
    if (rc != CVM_OK)
        goto out;
    cvm_bgnbd_params p;
    bool inside = to_params(best, &p);
    for (size_t i = 0; i < 4 && inside; i++)
        inside = fabs(gsl_vector_get(best, i)) < LOG_BOUND;
    if (!isfinite(fbest) || !to_params(best, &p)) {
        res->status = "no_progress";
    } else {
        res->params = p;
        double g[4];
        res->loglik = prep_loglik(&full, &p, g);
        /* BFGS can stop without progress when the line search meets the
         * rounding floor of the objective; the gradient decides. */
        res->converged = inside && grad_norm(&full, &p, g) < o->grad_tol * 10;
        res->status = !inside ? "boundary"
                      : res->converged ? "converged"
                      : maxed ? "max_iterations" : "no_progress";
        if (inside)
            std_errors(&full, &p, g, res->se);
    }
out:
    prep_clear(&full);
    prep_clear(&samp);
    gsl_vector_free(best);
    if (rc != CVM_OK)
        return CVM_FAIL(err, CVM_ENOMEM, "bgnbd: out of memory for %zu customers", d->n);
    return CVM_OK;
}

/* ------------------------------------------------------------------ */
/* Scoring                                                              */

/* The defining series in long double; *ok when it converged within
 * max_terms. Convergence is judged only once j exceeds the parameters, where
 * the terms shrink monotonically (a small term earlier can be a near-zero
 * factor (a + j), not convergence). */
static long double series_2f1(double a, double b, double c, double z, long max_terms, bool *ok)
{
    long double term = 1, sum = 1;
    const double j0 = fabs(a) + fabs(b) + fabs(c) + 2;
    *ok = false;
    for (long j = 0; j < max_terms; j++) {
        term *= (long double)(a + (double)j) * (b + (double)j) / ((c + (double)j) * (j + 1)) * z;
        sum += term;
        if (term == 0 || ((double)j > j0 && fabsl(term) <= 1e-18L * fabsl(sum))) {
            *ok = isfinite((double)sum);
            return sum;
        }
    }
    return sum;
}

/* log|Gamma(x)| and its sign; false at the poles (x a non-positive integer). */
static bool lgam(double x, double *lg, double *sgn)
{
    if (x <= 0 && x == floor(x))
        return false;
    gsl_sf_result r;
    if (gsl_sf_lngamma_sgn_e(x, &r, sgn) != GSL_SUCCESS)
        return false;
    *lg = r.val;
    return true;
}

/* Abramowitz & Stegun 15.3.6, the connection to 1 - z, with w = 1 - z given
 * exactly by the caller:
 *   F = G1 2F1(a, b; 1-m; w) + w^m G2 2F1(c-a, c-b; 1+m; w),  m = c - a - b,
 *   G1 = Gamma(c) Gamma(m) / (Gamma(c-a) Gamma(c-b)),
 *   G2 = Gamma(c) Gamma(-m) / (Gamma(a) Gamma(b)).
 * Both series converge fast for small w. G1 and G2 have poles at integer m
 * where the two terms cancel (at distance e, to about 1e-16 / e); within
 * 1e-4 of one, F is interpolated from a -/+ d and a -/+ 2d (d = 2.5e-4), a
 * symmetric four-point formula exact to O(d^4) (F is entire in a, unlike in
 * c). */
static double connect_2f1(double a, double b, double c, double w, int depth)
{
    double m = c - a - b;
    if (fabs(m - nearbyint(m)) < 1e-4) {
        if (depth > 0)
            return NAN;
        const double d = 2.5e-4;
        double f1 = connect_2f1(a + d, b, c, w, 1) + connect_2f1(a - d, b, c, w, 1);
        double f2 = connect_2f1(a + 2 * d, b, c, w, 1) + connect_2f1(a - 2 * d, b, c, w, 1);
        return (4 * f1 - f2) / 6;
    }
    double lc, sc, lm, sm, l1, s1, l2, s2, t1 = 0, t2 = 0;
    bool ok;
    if (!lgam(c, &lc, &sc))
        return NAN;
    if (lgam(m, &lm, &sm) && lgam(c - a, &l1, &s1) && lgam(c - b, &l2, &s2)) {
        long double f = series_2f1(a, b, 1 - m, w, 100000, &ok);
        if (!ok)
            return NAN;
        t1 = sc * sm * s1 * s2 * exp(lc + lm - l1 - l2) * (double)f;
    }
    if (lgam(-m, &lm, &sm) && lgam(a, &l1, &s1) && lgam(b, &l2, &s2)) {
        long double f = series_2f1(c - a, c - b, 1 + m, w, 100000, &ok);
        if (!ok)
            return NAN;
        t2 = sc * sm * s1 * s2 * exp(lc + lm - l1 - l2 + m * log(w)) * (double)f;
    }
    return t1 + t2;
}

/* 2F1(a, b; c; z) for 0 <= z < 1 with w = 1 - z accurate. Up to z = 0.9 the
 * series itself (a few hundred terms at most); beyond, the connection to
 * 1 - z. gsl_sf_hyperg_2F1 only as a last resort: compared with mpmath it
 * returns wrong values with a small error estimate when c - a - b is within
 * about 1e-5 of an integer (e.g. r = a in the BG/NBD expectation). */
static double hyp2f1_w(double a, double b, double c, double z, double w)
{
    if (!(z >= 0 && z < 1) || (c <= 0 && c == floor(c)))
        return NAN;
    if (z == 0)
        return 1;
    bool ok;
    long double s;
    if (z <= 0.9) {
        s = series_2f1(a, b, c, z, 100000, &ok);
        if (ok)
            return (double)s;
    }
    double v = connect_2f1(a, b, c, w, 0);
    if (isfinite(v))
        return v;
    gsl_sf_result r;
    double m = c - a - b;
    if (c > 0 && fabs(m - nearbyint(m)) > 1e-3 &&
        gsl_sf_hyperg_2F1_e(a, b, c, z, &r) == GSL_SUCCESS && isfinite(r.val) &&
        r.err <= 1e-10 * fabs(r.val))
        return r.val;
    s = series_2f1(a, b, c, z, 20000000, &ok);
    return ok ? (double)s : NAN;
}

double cvm_bgnbd_hyp2f1(double a, double b, double c, double z)
{
    return hyp2f1_w(a, b, c, z, 1 - z);
}

/* Purchases expected in the next t units by a customer who is alive at T:
 *   (a+b+x-1)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x)
 *                        2F1(r+x, b+x; a+b+x-1; z)],  z = t/(alpha+T+t).
 * Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)
 * turns the power and the function into
 *   (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z),
 * whose upper parameters do not grow with x: no overflow for heavy buyers,
 * and 0 <= z < 1 always, inside the series' convergence region.
 * The customer enters only through x and u = -log(1-z) = log(1 + t/(alpha+T)). */
static double e_alive_u(double r, double a, double b, double x, double u)
{
    if (!(u > 0))
        return 0;
    if (fabs(a - 1) < 1e-6) {
        /* (a-1) cancels analytically; the mean of both sides is exact to
         * second order. */
        return 0.5 * (e_alive_u(r, 1 + 2e-6, b, x, u) + e_alive_u(r, 1 - 2e-6, b, x, u));
    }
    if (fabs(a + b + x - 1) < 1e-6) {
        /* c = a + b - 1 = 0 (x = 0): 2F1 has a pole that the factor
         * (a + b - 1) cancels; the mean of both sides again. */
        return 0.5 * (e_alive_u(r, a, b + 2e-6, x, u) + e_alive_u(r, a, b - 2e-6, x, u));
    }
    double z = -expm1(-u), w = exp(-u);
    double F = hyp2f1_w(a + b - 1 - r, a - 1, a + b + x - 1, z, w);
    double pw = exp(-(a - 1) * u);
    double bracket = -expm1(-(a - 1) * u) - pw * (F - 1);
    double e = (a + b + x - 1) / (a - 1) * bracket;
    if (e > 0 && isfinite(e))
        return e;
    /* Rounding can take a tiny expectation below zero; a 2F1 that failed
     * (never seen in the tests) would be NaN. Both become 0, so no NaN
     * reaches an output column. */
    return 0;
}

double cvm_bgnbd_p_alive(const cvm_bgnbd_params *p, double x, double t_x, double T)
{
    if (x <= 0)
        return 1;
    /* 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)), on the log scale. */
    double L = log(p->a) - log(p->b + x - 1) + (p->r + x) * log1p((T - t_x) / (p->alpha + t_x));
    if (L > 0) {
        double e = exp(-L);
        return e / (1 + e);
    }
    return 1 / (1 + exp(L));
}

double cvm_bgnbd_expected(const cvm_bgnbd_params *p, double x, double t_x, double T, double t)
{
    if (!(t > 0))
        return 0;
    double pa = cvm_bgnbd_p_alive(p, x, t_x, T);
    if (pa == 0)
        return 0;
    return pa * e_alive_u(p->r, p->a, p->b, x, log1p(t / (p->alpha + T)));
}

double cvm_bgnbd_expected_new(const cvm_bgnbd_params *p, double t)
{
    /* E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))],
     * which is the alive expectation of a customer with x = 0 at T = 0. */
    if (!(t > 0))
        return 0;
    return e_alive_u(p->r, p->a, p->b, 0, log1p(t / p->alpha));
}

/* Gauss-Legendre, 6 points on [-1, 1]. */
#define NGL 6
static const double gl_x[NGL] = {-0.9324695142031521, -0.6612093864662645, -0.2386191860831969,
                                 0.2386191860831969,  0.6612093864662645,  0.9324695142031521};
static const double gl_w[NGL] = {0.1713244923791704, 0.3607615730481386, 0.4679139345726910,
                                 0.4679139345726910, 0.3607615730481386, 0.1713244923791704};

/* The alive expectation as a function of u for one x: either a table of
 * Chebyshev pieces or, when the table could not be verified, direct
 * evaluation. */
#define CHEB_ORDER 12
#define PIECE_U 0.4
typedef struct xcurve {
    double r, a, b, x;
    int npieces;          /* 0: evaluate directly */
    double width;
    double *c;            /* npieces x (CHEB_ORDER + 1) */
} xcurve;

static double curve_eval(const xcurve *k, double u)
{
    if (k->npieces == 0 || !(u >= 0))
        return e_alive_u(k->r, k->a, k->b, k->x, u);
    int j = (int)(u / k->width);
    if (j >= k->npieces) {
        if (u > k->width * k->npieces * (1 + 1e-12))
            return e_alive_u(k->r, k->a, k->b, k->x, u);
        j = k->npieces - 1;
    }
    const double *c = k->c + (size_t)j * (CHEB_ORDER + 1);
    double lo = j * k->width;
    double y = (2 * (u - lo) - k->width) / k->width, y2 = 2 * y, d1 = 0, d2 = 0;
    for (int i = CHEB_ORDER; i >= 1; i--) {
        double tmp = d1;
        d1 = y2 * d1 - d2 + c[i];
        d2 = tmp;
    }
    return y * d1 - d2 + 0.5 * c[0];
}

/* curve_eval at n <= CURVE_BATCH points, the Clenshaw recurrences
 * interleaved: each alone is a chain of dependent multiply-adds, together
 * they keep the floating-point units busy. */
#define CURVE_BATCH 8
static void curve_eval_n(const xcurve *k, const double *u, int n, double *out)
{
    const double *c[CURVE_BATCH];
    double y[CURVE_BATCH], y2[CURVE_BATCH], d1[CURVE_BATCH], d2[CURVE_BATCH];
    bool direct[CURVE_BATCH];
    for (int i = 0; i < n; i++) {
        int j = k->npieces > 0 && u[i] >= 0 ? (int)(u[i] / k->width) : -1;
        if (j >= k->npieces && u[i] <= k->width * k->npieces * (1 + 1e-12))
            j = k->npieces - 1;
        direct[i] = j < 0 || j >= k->npieces;
        if (direct[i])
            j = 0;
        c[i] = k->c ? k->c + (size_t)j * (CHEB_ORDER + 1) : NULL;
        double lo = j * k->width;
        y[i] = direct[i] ? 0 : (2 * (u[i] - lo) - k->width) / k->width;
        y2[i] = 2 * y[i];
        d1[i] = d2[i] = 0;
    }
    if (k->npieces > 0)
        for (int m = CHEB_ORDER; m >= 1; m--)
            for (int i = 0; i < n; i++) {
                double tmp = d1[i];
                d1[i] = y2[i] * d1[i] - d2[i] + c[i][m];
                d2[i] = tmp;
            }
    for (int i = 0; i < n; i++)
        out[i] = direct[i] ? e_alive_u(k->r, k->a, k->b, k->x, u[i])
                           : y[i] * d1[i] - d2[i] + 0.5 * c[i][0];
}

static double curve_fn(double u, void *ctx)
{
    const xcurve *k = ctx;
    return e_alive_u(k->r, k->a, k->b, k->x, u);
}

/* Chebyshev coefficients on [0, umax] in pieces, each checked against direct
 * evaluation between its nodes; any miss leaves the curve direct. */
static void curve_build(xcurve *k, double umax, gsl_cheb_series *cs)
{
    k->npieces = 0;
    int np = (int)ceil(umax / PIECE_U);
    if (np < 1)
        np = 1;
    if (np > 64)
        return;
    double *c = cvm_malloc((size_t)np * (CHEB_ORDER + 1) * sizeof *c);
    if (c == NULL)
        return;
    double w = umax / np;
    gsl_function F = {curve_fn, k};
    for (int j = 0; j < np; j++) {
        if (gsl_cheb_init(cs, &F, j * w, (j + 1) * w) != GSL_SUCCESS) {
            cvm_free(c);
            return;
        }
        const double *cc = gsl_cheb_coeffs(cs);
        for (int i = 0; i <= CHEB_ORDER; i++) {
            if (!isfinite(cc[i])) {
                cvm_free(c);
                return;
            }
            c[(size_t)j * (CHEB_ORDER + 1) + (size_t)i] = cc[i];
        }
    }
    k->c = c;
    k->width = w;
    k->npieces = np;
    double scale = fabs(e_alive_u(k->r, k->a, k->b, k->x, umax));
    for (int j = 0; j < np; j++)
        for (int i = 0; i < 7; i++) {
            double u = (j + (i + 0.5) / 7) * w;
            double want = e_alive_u(k->r, k->a, k->b, k->x, u), got = curve_eval(k, u);
            if (!(fabs(got - want) <= 1e-10 * fabs(want) + 1e-12 * scale)) {
                k->npieces = 0;
                cvm_free(k->c);
                k->c = NULL;
                return;
            }
        }
}

static double discounted_curve(const xcurve *k, double c, double U, double EH, double H,
                               double delta)
{
    /* By parts: int_0^H e^(-delta s) dE(s) = e^(-delta H) E(H) + delta int_0^H e^(-delta s) E(s) ds.
     * E(s) bends at s ~ alpha + T = c, so the integral is taken over
     * u = log(1 + s/c), in which E is close to a straight line; panels keep
     * the change of the discount exponent, delta (s + c) du, below 1/2 per
     * panel, so steep discounting stays accurate too. */
    if (delta == 0)
        return EH;
    double m = ceil(2 * delta * (H + c) * U);
    int panels = m < 1 ? 1 : (m > 64 ? 64 : (int)m);
    double h = U / panels, I = 0;
    for (int q = 0; q < panels; q++) {
        double u[NGL], e[NGL];
        for (int j = 0; j < NGL; j++)
            u[j] = h * (q + 0.5 * (gl_x[j] + 1));
        curve_eval_n(k, u, NGL, e);
        for (int j = 0; j < NGL; j++) {
            double sc = c * exp(u[j]); /* s + c */
            I += gl_w[j] * exp(-delta * (sc - c)) * e[j] * sc;
        }
    }
    return exp(-delta * H) * EH + delta * 0.5 * h * I;
}

double cvm_bgnbd_discounted(const cvm_bgnbd_params *p, double x, double t_x, double T,
                            double horizon, double rate_per_unit)
{
    if (!(horizon > 0))
        return 0;
    double pa = cvm_bgnbd_p_alive(p, x, t_x, T);
    if (pa == 0)
        return 0;
    double delta = rate_per_unit > 0 ? log1p(rate_per_unit) : 0;
    xcurve k = {p->r, p->a, p->b, x, 0, 0, NULL};
    double c = p->alpha + T, U = log1p(horizon / c);
    return pa * discounted_curve(&k, c, U, curve_eval(&k, U), horizon, delta);
}

/* Customers per x value before a table pays for its ~200 direct evaluations. */
#define TABLE_MIN 32

void cvm_bgnbd_score(const cvm_bgnbd_params *p, const cvm_bgnbd_data *d, double t,
                     double rate_per_unit, int threads, double *p_alive, double *expected,
                     double *discounted)
{
    const long n = (long)d->n;
    const double delta = rate_per_unit > 0 ? log1p(rate_per_unit) : 0;
    const double *X = d->x, *TX = d->t_x, *TT = d->T;
    const cvm_bgnbd_params P = *p;
    /* Tables of the alive expectation per frequent x value, over the u range
     * this data needs (the youngest customer has the largest u). */
    size_t nk = 0;
    xcurve *curves = NULL;
    int32_t *map = NULL;
    double xmax = 0, Tmin = INFINITY;
    for (long i = 0; i < n; i++) {
        xmax = fmax(xmax, X[i]);
        Tmin = fmin(Tmin, TT[i]);
    }
    if (n > 0 && t > 0 && xmax < 65536) {
        size_t m = (size_t)xmax + 1;
        map = cvm_calloc(m, sizeof *map);
        if (map) {
            for (long i = 0; i < n; i++)
                map[(size_t)X[i]]++;
            for (size_t v = 0; v < m; v++)
                nk += map[v] >= TABLE_MIN;
            curves = cvm_calloc(nk ? nk : 1, sizeof *curves);
        }
        if (curves) {
            size_t j = 0;
            for (size_t v = 0; v < m; v++) {
                if (map[v] >= TABLE_MIN) {
                    curves[j] = (xcurve){P.r, P.a, P.b, (double)v, 0, 0, NULL};
                    map[v] = (int32_t)j++;
                } else {
                    map[v] = -1;
                }
            }
            double umax = log1p(t / (P.alpha + Tmin));
            const long nkl = (long)nk;
#pragma omp parallel num_threads(cvm_threads(threads)) default(none) shared(curves) \
    firstprivate(nkl, umax)
            {
                gsl_cheb_series *cs = gsl_cheb_alloc(CHEB_ORDER);
#pragma omp for schedule(dynamic, 1)
                for (long j = 0; j < nkl; j++)
                    if (cs)
                        curve_build(&curves[j], umax, cs);
                gsl_cheb_free(cs);
            }
        } else {
            cvm_free(map);
            map = NULL;
        }
    }
    const xcurve *CV = curves;
    const int32_t *MP = map;
#pragma omp parallel for schedule(static, 1024) num_threads(cvm_threads(threads)) default(none) \
    shared(P, X, TX, TT, p_alive, expected, discounted, CV, MP) firstprivate(n, t, delta)
    for (long i = 0; i < n; i++) {
        double pa = cvm_bgnbd_p_alive(&P, X[i], TX[i], TT[i]);
        if (p_alive)
            p_alive[i] = pa;
        if (!expected && !discounted)
            continue;
        double e = 0, det = 0;
        if (pa > 0 && t > 0) {
            int32_t j = MP ? MP[(size_t)X[i]] : -1;
            xcurve direct = {P.r, P.a, P.b, X[i], 0, 0, NULL};
            const xcurve *k = j >= 0 ? &CV[j] : &direct;
            double c = P.alpha + TT[i], U = log1p(t / c);
            double EH = curve_eval(k, U);
            e = pa * EH;
            if (discounted)
                det = pa * discounted_curve(k, c, U, EH, t, delta);
        }
        if (expected)
            expected[i] = e;
        if (discounted)
            discounted[i] = det;
    }
    for (size_t j = 0; j < nk; j++)
        cvm_free(curves[j].c);
    cvm_free(curves);
    cvm_free(map);
}
