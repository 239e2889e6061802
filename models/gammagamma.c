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
    if (o->max_iter < 10 || o->max_iter > 1000000)
        return "max_iter must be within [10, 1000000]";
    if (o->n_starts < 1 || o->n_starts > 6)
        return "n_starts must be within [1, 6]";
    if (!(o->grad_tol > 0 && o->grad_tol < 1))
        return "grad_tol must be within (0, 1)";
    if (o->start_sample != 0 && o->start_sample < 100)
        return "start_sample must be 0 (all) or at least 100";
    return NULL;
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

typedef struct objective {
    prep *P;
} objective;

static bool to_params(const gsl_vector *v, cvm_gammagamma_params *p)
{
    double t[3];
    for (int i = 0; i < 3; i++) {
        double u = gsl_vector_get(v, (size_t)i);
        if (!(fabs(u) <= LOG_BOUND + 5))
            return false;
        t[i] = exp(u);
    }
    p->p = t[0];
    p->q = t[1];
    p->v = t[2];
    return true;
}

static double obj_f(const gsl_vector *v, void *ctx)
{
    objective *o = ctx;
    cvm_gammagamma_params p;
    if (!to_params(v, &p))
        return GSL_POSINF;
    double ll = prep_loglik(o->P, &p, NULL);
    return isfinite(ll) ? -ll / (double)o->P->n : GSL_POSINF;
}

static void obj_fdf(const gsl_vector *v, void *ctx, double *f, gsl_vector *g)
{
    objective *o = ctx;
    cvm_gammagamma_params p;
    if (!to_params(v, &p)) {
        *f = GSL_POSINF;
        gsl_vector_set_zero(g);
        return;
    }
    double gr[3];
    double ll = prep_loglik(o->P, &p, gr);
    const double th[3] = {p.p, p.q, p.v}, n = (double)o->P->n;
    *f = isfinite(ll) ? -ll / n : GSL_POSINF;
    for (int i = 0; i < 3; i++)
        gsl_vector_set(g, (size_t)i, -gr[i] * th[i] / n);
}

static void obj_df(const gsl_vector *v, void *ctx, gsl_vector *g)
{
    double f;
    obj_fdf(v, ctx, &f, g);
}

static int run_simplex(prep *P, gsl_vector *x, int max_iter, double size_tol, double *f)
{
    objective o = {P};
    gsl_multimin_function fn = {obj_f, 3, &o};
    gsl_multimin_fminimizer *s = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, 3);
    gsl_vector *step = gsl_vector_alloc(3);
    int it = 0;
    *f = GSL_POSINF;
    if (s == NULL || step == NULL) {
        gsl_multimin_fminimizer_free(s);
        gsl_vector_free(step);
        return -1;
    }
    gsl_vector_set_all(step, 0.5);
    if (gsl_multimin_fminimizer_set(s, &fn, x, step) == GSL_SUCCESS) {
        while (it < max_iter) {
            it++;
            if (gsl_multimin_fminimizer_iterate(s) != GSL_SUCCESS)
                break;
            if (gsl_multimin_test_size(gsl_multimin_fminimizer_size(s), size_tol) == GSL_SUCCESS)
                break;
        }
        *f = gsl_multimin_fminimizer_minimum(s);
        gsl_vector_memcpy(x, gsl_multimin_fminimizer_x(s));
    }
    gsl_multimin_fminimizer_free(s);
    gsl_vector_free(step);
    return it;
}

static bool run_bfgs(prep *P, gsl_vector *x, int max_iter, double grad_tol, int *iters,
                     bool *maxed)
{
    objective o = {P};
    gsl_multimin_function_fdf fn = {obj_f, obj_df, obj_fdf, 3, &o};
    gsl_multimin_fdfminimizer *s =
        gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, 3);
    *maxed = false;
    if (s == NULL)
        return false;
    if (gsl_multimin_fdfminimizer_set(s, &fn, x, 0.05, 0.1) != GSL_SUCCESS ||
        !isfinite(gsl_multimin_fdfminimizer_minimum(s))) {
        gsl_multimin_fdfminimizer_free(s);
        return false;
    }
    int it = 0;
    bool done = gsl_multimin_test_gradient(gsl_multimin_fdfminimizer_gradient(s), grad_tol) ==
                GSL_SUCCESS;
    while (!done && it < max_iter) {
        it++;
        int rc = gsl_multimin_fdfminimizer_iterate(s);
        done = gsl_multimin_test_gradient(gsl_multimin_fdfminimizer_gradient(s), grad_tol) ==
               GSL_SUCCESS;
        if (rc != GSL_SUCCESS)
            break;
    }
    *maxed = !done && it >= max_iter;
    if (isfinite(gsl_multimin_fdfminimizer_minimum(s)))
        gsl_vector_memcpy(x, gsl_multimin_fdfminimizer_x(s));
    gsl_multimin_fdfminimizer_free(s);
    *iters += it;
    return done;
}

/* Hessian of the objective in log-parameters by central differences of the
 * analytic gradient, Cholesky-factorised in place; false when not positive
 * definite. */
static bool hess_chol(prep *P, const gsl_vector *x, gsl_matrix *H, gsl_vector *tmp,
                      gsl_vector *gp, gsl_vector *gm)
{
    objective o = {P};
    const double h = 1e-4;
    double f;
    for (size_t k = 0; k < 3; k++) {
        gsl_vector_memcpy(tmp, x);
        gsl_vector_set(tmp, k, gsl_vector_get(x, k) + h);
        obj_fdf(tmp, &o, &f, gp);
        gsl_vector_set(tmp, k, gsl_vector_get(x, k) - h);
        obj_fdf(tmp, &o, &f, gm);
        for (size_t j = 0; j < 3; j++)
            gsl_matrix_set(H, j, k, (gsl_vector_get(gp, j) - gsl_vector_get(gm, j)) / (2 * h));
    }
    for (size_t j = 0; j < 3; j++)
        for (size_t k = j + 1; k < 3; k++) {
            double v = 0.5 * (gsl_matrix_get(H, j, k) + gsl_matrix_get(H, k, j));
            if (!isfinite(v))
                return false;
            gsl_matrix_set(H, j, k, v);
            gsl_matrix_set(H, k, j, v);
        }
    return gsl_linalg_cholesky_decomp1(H) == GSL_SUCCESS;
}

/* Newton steps with the subsample's Hessian on all customers: one gradient
 * per step, Armijo backtracking. */
static bool run_newton(prep *P, gsl_vector *x, const gsl_matrix *L, int max_steps, double grad_tol,
                       int *iters)
{
    objective o = {P};
    gsl_vector *g = gsl_vector_alloc(3), *gn = gsl_vector_alloc(3), *d = gsl_vector_alloc(3),
               *xn = gsl_vector_alloc(3);
    bool ok = false;
    if (!g || !gn || !d || !xn)
        goto out;
    double f, fn;
    obj_fdf(x, &o, &f, g);
    for (int step = 0; step < max_steps && isfinite(f); step++) {
        double gmax = 0;
        for (size_t i = 0; i < 3; i++)
            gmax = fmax(gmax, fabs(gsl_vector_get(g, i)));
        if (gmax < grad_tol) {
            ok = true;
            break;
        }
        if (gsl_linalg_cholesky_solve(L, g, d) != GSL_SUCCESS)
            break;
        double dmax = 0, slope = 0;
        for (size_t i = 0; i < 3; i++) {
            dmax = fmax(dmax, fabs(gsl_vector_get(d, i)));
            slope += gsl_vector_get(d, i) * gsl_vector_get(g, i);
        }
        double lam = dmax > 2 ? 2 / dmax : 1;
        bool moved = false;
        for (int k = 0; k < 30; k++, lam *= 0.5) {
            for (size_t i = 0; i < 3; i++)
                gsl_vector_set(xn, i, gsl_vector_get(x, i) - lam * gsl_vector_get(d, i));
            obj_fdf(xn, &o, &fn, gn);
            if (isfinite(fn) && fn <= f - 1e-4 * lam * slope) {
                moved = true;
                break;
            }
            /* Near the optimum the decrease falls below the rounding of f
             * (it is of order gradient^2); a smaller gradient at an equal f
             * is then progress. */
            double gnmax = 0;
            for (size_t i = 0; i < 3; i++)
                gnmax = fmax(gnmax, fabs(gsl_vector_get(gn, i)));
            if (isfinite(fn) && fn <= f + 1e-13 * fabs(f) && gnmax < 0.5 * gmax) {
                moved = true;
                break;
            }
        }
        (*iters)++;
        if (!moved)
            break;
        gsl_vector_memcpy(x, xn);
        gsl_vector_memcpy(g, gn);
        f = fn;
    }
out:
    gsl_vector_free(g);
    gsl_vector_free(gn);
    gsl_vector_free(d);
    gsl_vector_free(xn);
    return ok;
}

/* Standard errors from the Hessian of the total log-likelihood in the
 * natural parameters: forward differences of the analytic gradient from g0,
 * the gradient at the optimum (one gradient per parameter; step 1e-6
 * relative balances truncation, O(h), and the rounding of n-term sums). */
static void std_errors(prep *P, const cvm_gammagamma_params *p, const double g0[3], double se[3])
{
    for (int i = 0; i < 3; i++)
        se[i] = NAN;
    const double th[3] = {p->p, p->q, p->v};
    gsl_matrix *H = gsl_matrix_alloc(3, 3);
    if (H == NULL)
        return;
    for (int k = 0; k < 3; k++) {
        double h = 1e-6 * th[k], gp[3], t[3];
        memcpy(t, th, sizeof t);
        t[k] = th[k] + h;
        cvm_gammagamma_params pp = {t[0], t[1], t[2]};
        prep_loglik(P, &pp, gp);
        for (int j = 0; j < 3; j++)
            gsl_matrix_set(H, (size_t)j, (size_t)k, -(gp[j] - g0[j]) / h);
    }
    bool ok = true;
    for (size_t j = 0; j < 3; j++)
        for (size_t k = j + 1; k < 3; k++) {
            double v = 0.5 * (gsl_matrix_get(H, j, k) + gsl_matrix_get(H, k, j));
            gsl_matrix_set(H, j, k, v);
            gsl_matrix_set(H, k, j, v);
        }
    for (size_t j = 0; j < 3 && ok; j++)
        for (size_t k = 0; k < 3; k++)
            ok &= isfinite(gsl_matrix_get(H, j, k));
    if (ok && gsl_linalg_cholesky_decomp1(H) == GSL_SUCCESS &&
        gsl_linalg_cholesky_invert(H) == GSL_SUCCESS)
        for (size_t j = 0; j < 3; j++) {
            double v = gsl_matrix_get(H, j, j);
            se[j] = v > 0 ? sqrt(v) : NAN;
        }
    gsl_matrix_free(H);
}

/* Largest |component| of the mean-log-likelihood gradient g (natural
 * parameters) in log-parameters. */
static double grad_norm(const prep *P, const cvm_gammagamma_params *p, const double g[3])
{
    const double th[3] = {p->p, p->q, p->v};
    double m = 0;
    for (int i = 0; i < 3; i++) {
        double v = fabs(g[i] * th[i] / (double)P->n);
        m = isnan(v) ? INFINITY : (v > m ? v : m);
    }
    return m;
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
    gsl_vector *x = gsl_vector_alloc(3), *best = gsl_vector_alloc(3);
    gsl_vector *t1 = gsl_vector_alloc(3), *t2 = gsl_vector_alloc(3), *t3 = gsl_vector_alloc(3);
    gsl_matrix *H = gsl_matrix_alloc(3, 3);
    int rc = prep_init(&full, d, 1, o->threads);
    res->n_used = full.n;
    size_t stride = o->start_sample && full.n > o->start_sample
                        ? (full.n + o->start_sample - 1) / o->start_sample : 1;
    if (rc == CVM_OK && stride > 1)
        rc = prep_init(&samp, d, stride, o->threads);
    if (rc != CVM_OK || !x || !best || !t1 || !t2 || !t3 || !H) {
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
    double fbest = GSL_POSINF;
    int iters = 0;
    for (int s = 0; s < o->n_starts; s++) {
        for (int i = 0; i < 3; i++)
            gsl_vector_set(x, (size_t)i, log(starts[s][i]));
        double f;
        int it = run_simplex(S, x, o->max_iter, 1e-2, &f);
        if (it < 0) {
            rc = CVM_ENOMEM;
            goto out;
        }
        iters += it;
        if (f < fbest) {
            fbest = f;
            gsl_vector_memcpy(best, x);
        }
    }
    bool maxed = false, done;
    if (isfinite(fbest)) {
        run_bfgs(S, best, o->max_iter, o->grad_tol, &iters, &maxed);
        /* Newton steps on every customer with the curvature at the
         * (subsample's) optimum: quadratic convergence when S is everyone,
         * linear at the rate of the subsample's error otherwise. */
        {
            int steps = o->max_iter < 50 ? o->max_iter : 50;
            done = hess_chol(S, best, H, t1, t2, t3) &&
                   run_newton(&full, best, H, steps, o->grad_tol, &iters);
            if (!done)
                done = run_bfgs(&full, best, o->max_iter, o->grad_tol, &iters, &maxed);
        }
        if (!done) {
            double f;
            int it = run_simplex(&full, best, o->max_iter, 1e-8, &f);
            iters += it > 0 ? it : 0;
            run_bfgs(&full, best, o->max_iter, o->grad_tol, &iters, &maxed);
        }
    }
    res->iterations = iters;
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
    gsl_vector_free(x);
    gsl_vector_free(best);
    gsl_vector_free(t1);
    gsl_vector_free(t2);
    gsl_vector_free(t3);
    gsl_matrix_free(H);
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
