#include "gammagamma.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multimin.h>
#include <gsl/gsl_sf_gamma.h>
#include <gsl/gsl_sf_psi.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "mle.h"
#include "parallel.h"

/* Fixed block size: block sums added in block order make the result
 * independent of the thread count. */
#define BLOCK 4096
#define NSUM 4
#define LOG_BOUND 25.0
/* Blocks before the likelihood goes parallel: a parallel region per
 * evaluation of a small subsample costs more than it saves. */
#define PAR_MIN_BLOCKS 8

void cvm_gammagamma_opts_default(cvm_gammagamma_opts *o)
{
    o->max_iter = 400;
    o->n_starts = 3;
    o->grad_tol = 1e-9;
    o->start_sample = 5000;
    o->threads = 0;
}

const char *cvm_gammagamma_opts_check(const cvm_gammagamma_opts *o)
{
    return cvm_mle_opts_check(o->max_iter, o->n_starts, 6, o->grad_tol, o->start_sample);
}

const char *cvm_gammagamma_params_check(const cvm_gammagamma_params *p)
{
    if (!(p->p > 0 && p->q > 0 && p->v > 0) || !isfinite(p->p) || !isfinite(p->q) ||
        !isfinite(p->v))
        return "Gamma-Gamma parameters p, q, v must be positive and finite";
    return NULL;
}

static const char *data_check(const cvm_gammagamma_data *d, char *buf, size_t len)
{
    if (d->n > 0 && (d->x == NULL || d->m == NULL)) {
        snprintf(buf, len, "Gamma-Gamma data: NULL array");
        return buf;
    }
    for (size_t i = 0; i < d->n; i++) {
        double x = d->x[i];
        if (!(x >= 0 && x <= 1e9) || x != floor(x)) {
            snprintf(buf, len, "Gamma-Gamma data, customer %zu: x = %g is not a whole number "
                     "in [0, 1e9]", i, x);
            return buf;
        }
        if (x > 0 && !isfinite(d->m[i])) {
            snprintf(buf, len, "Gamma-Gamma data, customer %zu: m is not finite", i);
            return buf;
        }
    }
    return NULL;
}

/* The customers that enter the likelihood, with distinct x values so the
 * Gamma-function terms are computed once per distinct x. */
typedef struct prep {
    size_t n;
    double *x, *m;
    double *xv, *xn;   /* distinct x, customers per x */
    size_t nx;
    double c_xlm, c_lm, c_xlx;  /* sums of x ln m, ln m, x ln x (data constants) */
    size_t nblocks;
    double *part;
    int threads;
} prep;

static void prep_clear(prep *P)
{
    cvm_free(P->x);
    cvm_free(P->m);
    cvm_free(P->xv);
    cvm_free(P->xn);
    cvm_free(P->part);
    memset(P, 0, sizeof *P);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Usable customers i = 0, stride, 2 stride, ... of d. */
static int prep_init(prep *P, const cvm_gammagamma_data *d, size_t stride, int threads)
{
    memset(P, 0, sizeof *P);
    P->threads = threads;
    size_t n = 0;
    for (size_t i = 0; i < d->n; i += stride)
        n += d->x[i] > 0 && d->m[i] > 0;
    P->n = n;
    P->x = cvm_malloc((n ? n : 1) * sizeof *P->x);
    P->m = cvm_malloc((n ? n : 1) * sizeof *P->m);
    P->xv = cvm_malloc((n ? n : 1) * sizeof *P->xv);
    if (!P->x || !P->m || !P->xv)
        return CVM_ENOMEM;
    size_t k = 0;
    double xmax = 0;
    for (size_t i = 0; i < d->n; i += stride)
        if (d->x[i] > 0 && d->m[i] > 0) {
            P->x[k] = d->x[i];
            P->m[k] = d->m[i];
            if (d->x[i] > xmax)
                xmax = d->x[i];
            k++;
        }
    P->nblocks = (n + BLOCK - 1) / BLOCK;
    P->part = cvm_malloc((P->nblocks ? P->nblocks : 1) * NSUM * sizeof *P->part);
    P->xn = cvm_calloc(n ? n : 1, sizeof *P->xn);
    if (!P->xn || !P->part)
        return CVM_ENOMEM;
    if (xmax < (double)(1u << 22)) {
        /* Counting: x is small in any real data. */
        size_t m = (size_t)xmax + 1;
        double *cnt = cvm_calloc(m, sizeof *cnt);
        if (cnt == NULL)
            return CVM_ENOMEM;
        for (size_t i = 0; i < n; i++)
            cnt[(size_t)P->x[i]] += 1;
        size_t nx = 0;
        for (size_t j = 0; j < m; j++)
            if (cnt[j] > 0) {
                P->xv[nx] = (double)j;
                P->xn[nx++] = cnt[j];
            }
        P->nx = nx;
        cvm_free(cnt);
    } else {
        memcpy(P->xv, P->x, n * sizeof *P->xv);
        qsort(P->xv, n, sizeof *P->xv, cmp_double);
        size_t nx = 0;
        for (size_t i = 0; i < n; i++) {
            if (i == 0 || P->xv[i] != P->xv[i - 1])
                P->xv[nx++] = P->xv[i];
            P->xn[nx - 1] += 1;
        }
        P->nx = nx;
    }
    for (size_t i = 0; i < n; i++) {
        double lm = log(P->m[i]);
        P->c_xlm += P->x[i] * lm;
        P->c_lm += lm;
        P->c_xlx += P->x[i] * log(P->x[i]);
    }
    return CVM_OK;
}

static double prep_loglik(prep *P, const cvm_gammagamma_params *pp, double *grad)
{
    const double p = pp->p, q = pp->q, v = pp->v;
    const long nb = (long)P->nblocks;
    const size_t n = P->n;
    const double *X = P->x, *M = P->m;
    double *part = P->part;
    const int g = grad != NULL;
#pragma omp parallel for schedule(static) num_threads(cvm_threads(P->threads)) if(nb >= PAR_MIN_BLOCKS) \
    default(none) shared(X, M, part) firstprivate(nb, n, v, g)
    for (long bi = 0; bi < nb; bi++) {
        size_t lo = (size_t)bi * BLOCK, hi = lo + BLOCK;
        if (hi > n)
            hi = n;
        double sL = 0, sxL = 0, si = 0, sxi = 0;
        for (size_t i = lo; i < hi; i++) {
            double den = v + X[i] * M[i];
            double L = log(den);
            sL += L;
            sxL += X[i] * L;
            if (g) {
                double inv = 1 / den;
                si += inv;
                sxi += X[i] * inv;
            }
        }
        double *o = part + (size_t)bi * NSUM;
        o[0] = sL;
        o[1] = sxL;
        o[2] = si;
        o[3] = sxi;
    }
    double S[NSUM] = {0};
    for (long bi = 0; bi < nb; bi++)
        for (int j = 0; j < NSUM; j++)
            S[j] += part[(size_t)bi * NSUM + j];
    const double lg_q = gsl_sf_lngamma(q);
    const double ps_q = g ? gsl_sf_psi(q) : 0;
    double gx = 0, gp = 0, gq = 0;
    for (size_t k = 0; k < P->nx; k++) {
        double x = P->xv[k], c = P->xn[k];
        gx += c * (gsl_sf_lngamma(p * x + q) - gsl_sf_lngamma(p * x) - lg_q);
        if (g) {
            double ps = gsl_sf_psi(p * x + q);
            gp += c * x * (ps - gsl_sf_psi(p * x));
            gq += c * (ps - ps_q);
        }
    }
    const double dn = (double)n;
    double ll = gx + dn * q * log(v) + p * P->c_xlm - P->c_lm + p * P->c_xlx - p * S[1] - q * S[0];
    if (g) {
        grad[0] = gp + P->c_xlm + P->c_xlx - S[1];
        grad[1] = gq + dn * log(v) - S[0];
        grad[2] = dn * q / v - (p * S[3] + q * S[2]);
    }
    return ll;
}

double cvm_gammagamma_loglik(const cvm_gammagamma_params *p, const cvm_gammagamma_data *d,
                             int threads, double grad[3])
{
    if (cvm_gammagamma_params_check(p))
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
/* Optimiser over log-parameters (the same scheme as bgnbd.c).          */

/* Natural parameters from the optimiser's log-parameters; false outside
 * the search bound. */
static bool to_params(const gsl_vector *v, cvm_gammagamma_params *p)
{
    for (size_t i = 0; i < 3; i++)
        if (!(fabs(gsl_vector_get(v, i)) <= LOG_BOUND + 5))
            return false;
    p->p = exp(gsl_vector_get(v, 0));
    p->q = exp(gsl_vector_get(v, 1));
    p->v = exp(gsl_vector_get(v, 2));
    return true;
}

/* The optimiser (engine/mle.h) over this model's likelihood. */
static double mle_loglik(void *ctx, const double *th, double *grad)
{
    cvm_gammagamma_params p = {th[0], th[1], th[2]};
    return prep_loglik(ctx, &p, grad);
}

static cvm_mle mle_of(const prep *P)
{
    cvm_mle m = {3, (double)P->n, LOG_BOUND, mle_loglik, (void *)P};
    return m;
}

static double grad_norm(const prep *P, const cvm_gammagamma_params *p, const double g[3])
{
    cvm_mle m = mle_of(P);
    const double th[3] = {p->p, p->q, p->v};
    return cvm_mle_grad_norm(&m, th, g);
}

static void std_errors(prep *P, const cvm_gammagamma_params *p, const double g0[3], double se[3])
{
    cvm_mle m = mle_of(P);
    const double th[3] = {p->p, p->q, p->v};
    cvm_mle_std_errors(&m, th, g0, se);
}

int cvm_gammagamma_fit(const cvm_gammagamma_opts *o, const cvm_gammagamma_data *d,
                       cvm_gammagamma_result *res, cvm_err *err)
{
    memset(res, 0, sizeof *res);
    res->params.p = res->params.q = res->params.v = NAN;
    res->loglik = NAN;
    for (int i = 0; i < 3; i++)
        res->se[i] = NAN;
    const char *why = cvm_gammagamma_opts_check(o);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "gammagamma: %s", why);
    char buf[256];
    if ((why = data_check(d, buf, sizeof buf)) != NULL)
        return CVM_FAIL(err, CVM_EINVAL, "%s", why);
    prep full, samp;
    memset(&samp, 0, sizeof samp);
    gsl_vector *best = gsl_vector_alloc(3);
    int rc = prep_init(&full, d, 1, o->threads);
    res->n_used = full.n;
    size_t stride = o->start_sample && full.n > o->start_sample
                        ? (full.n + o->start_sample - 1) / o->start_sample : 1;
    if (rc == CVM_OK && stride > 1)
        rc = prep_init(&samp, d, stride, o->threads);
    if (rc != CVM_OK || !best) {
        rc = CVM_ENOMEM;
        goto out;
    }
    if (full.n < 3) {
        res->status = "too_few_customers";
        goto out;
    }
    prep *S = stride > 1 && samp.n >= 3 ? &samp : &full;
    double mbar = 0;
    for (size_t i = 0; i < full.n; i++)
        mbar += full.m[i];
    mbar /= (double)full.n;
    /* Starts: population mean p v / (q - 1) near the observed mean, with
     * little, some and much heterogeneity; (1, 1, 1) as the usual Python code. */
    const double starts[6][3] = {
        {1, 2, mbar}, {5, 4, 3 * mbar / 5}, {1, 1, 1},
        {10, 10, 0.9 * mbar}, {0.5, 1.5, mbar}, {2, 20, 9.5 * mbar},
    };
    double fbest;
    bool maxed;
    cvm_mle ms = mle_of(S), mf = mle_of(&full);
    if (!cvm_mle_fit(&ms, &mf, &starts[0][0], o->n_starts, o->max_iter, o->grad_tol, best, &fbest,
                     &res->iterations, &maxed))
        rc = CVM_ENOMEM;
    if (rc != CVM_OK)
        goto out;
    cvm_gammagamma_params p;
    if (!isfinite(fbest) || !to_params(best, &p)) {
        res->status = "no_progress";
    } else {
        bool inside = true;
        for (size_t i = 0; i < 3 && inside; i++)
            inside = fabs(gsl_vector_get(best, i)) < LOG_BOUND;
        res->params = p;
        double g[3];
        res->loglik = prep_loglik(&full, &p, g);
        res->converged = inside && grad_norm(&full, &p, g) < 10 * o->grad_tol;
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
        return CVM_FAIL(err, CVM_ENOMEM, "gammagamma: out of memory for %zu customers", d->n);
    return CVM_OK;
}

double cvm_gammagamma_expected_value(const cvm_gammagamma_params *p, double x, double m)
{
    if (!(p->q > 1))
        return NAN;
    if (!(x > 0))
        return p->p * p->v / (p->q - 1);
    if (!(m > 0))
        m = 0;
    return p->p * (p->v + x * m) / (p->p * x + p->q - 1);
}

void cvm_gammagamma_score(const cvm_gammagamma_params *p, const cvm_gammagamma_data *d,
                          int threads, double *out)
{
    const long n = (long)d->n;
    const double *X = d->x, *M = d->m;
#pragma omp parallel for schedule(static, 4096) num_threads(cvm_threads(threads)) \
    default(none) shared(p, X, M, out) firstprivate(n)
    for (long i = 0; i < n; i++)
        out[i] = cvm_gammagamma_expected_value(p, X[i], M[i]);
}
