#include "mle.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_math.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_multimin.h>
#include <math.h>
#include <string.h>

/* Natural parameters from log-parameters; false outside the bound. */
static bool to_params(const cvm_mle *m, const gsl_vector *v, double *t)
{
    for (size_t i = 0; i < m->dim; i++) {
        double u = gsl_vector_get(v, i);
        if (!(fabs(u) <= m->log_bound + 5))
            return false;
        t[i] = exp(u);
    }
    return true;
}

static double obj_f(const gsl_vector *v, void *ctx)
{
    const cvm_mle *m = ctx;
    double th[CVM_MLE_MAX_DIM];
    if (!to_params(m, v, th))
        return GSL_POSINF;
    double ll = m->loglik(m->ctx, th, NULL);
    return isfinite(ll) ? -ll / m->n : GSL_POSINF;
}

static void obj_fdf(const gsl_vector *v, void *ctx, double *f, gsl_vector *g)
{
    const cvm_mle *m = ctx;
    double th[CVM_MLE_MAX_DIM], gr[CVM_MLE_MAX_DIM];
    if (!to_params(m, v, th)) {
        *f = GSL_POSINF;
        gsl_vector_set_zero(g);
        return;
    }
    double ll = m->loglik(m->ctx, th, gr);
    *f = isfinite(ll) ? -ll / m->n : GSL_POSINF;
    for (size_t i = 0; i < m->dim; i++)
        gsl_vector_set(g, i, -gr[i] * th[i] / m->n);
}

static void obj_df(const gsl_vector *v, void *ctx, gsl_vector *g)
{
    double f;
    obj_fdf(v, ctx, &f, g);
}

/* Nelder-Mead from x (updated in place); returns iterations (-1 on ENOMEM),
 * *f the value reached. */
int cvm_mle_simplex(const cvm_mle *m, gsl_vector *x, int max_iter, double size_tol, double *f)
{
    gsl_multimin_function fn = {obj_f, m->dim, (void *)m};
    gsl_multimin_fminimizer *s =
        gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, m->dim);
    gsl_vector *step = gsl_vector_alloc(m->dim);
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

/* BFGS from x (updated in place). True when the gradient test passed;
 * *maxed when the iteration bound stopped it. */
bool cvm_mle_bfgs(const cvm_mle *m, gsl_vector *x, int max_iter, double grad_tol, int *iters,
                  bool *maxed)
{
    gsl_multimin_function_fdf fn = {obj_f, obj_df, obj_fdf, m->dim, (void *)m};
    gsl_multimin_fdfminimizer *s =
        gsl_multimin_fdfminimizer_alloc(gsl_multimin_fdfminimizer_vector_bfgs2, m->dim);
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

/* Hessian of the objective in log-parameters by central differences of its
 * analytic gradient, Cholesky-factorised in place. False when it is not
 * positive definite. */
bool cvm_mle_hess_chol(const cvm_mle *m, const gsl_vector *x, gsl_matrix *H, gsl_vector *tmp,
                       gsl_vector *gp, gsl_vector *gm)
{
    const size_t dim = m->dim;
    const double h = 1e-4;
    double f;
    for (size_t k = 0; k < dim; k++) {
        gsl_vector_memcpy(tmp, x);
        gsl_vector_set(tmp, k, gsl_vector_get(x, k) + h);
        obj_fdf(tmp, (void *)m, &f, gp);
        gsl_vector_set(tmp, k, gsl_vector_get(x, k) - h);
        obj_fdf(tmp, (void *)m, &f, gm);
        for (size_t j = 0; j < dim; j++)
            gsl_matrix_set(H, j, k, (gsl_vector_get(gp, j) - gsl_vector_get(gm, j)) / (2 * h));
    }
    for (size_t j = 0; j < dim; j++)
        for (size_t k = j + 1; k < dim; k++) {
            double v = 0.5 * (gsl_matrix_get(H, j, k) + gsl_matrix_get(H, k, j));
            if (!isfinite(v))
                return false;
            gsl_matrix_set(H, j, k, v);
            gsl_matrix_set(H, k, j, v);
        }
    return gsl_linalg_cholesky_decomp1(H) == GSL_SUCCESS;
}

/* Newton steps with a fixed Hessian (from the subsample): on all customers
 * each step costs one gradient, and from the subsample's optimum a handful
 * reach the tolerance. Armijo backtracking keeps every step downhill. */
bool cvm_mle_newton(const cvm_mle *m, gsl_vector *x, const gsl_matrix *L, int max_steps,
                    double grad_tol, int *iters)
{
    const size_t dim = m->dim;
    gsl_vector *g = gsl_vector_alloc(dim), *gn = gsl_vector_alloc(dim), *d = gsl_vector_alloc(dim),
               *xn = gsl_vector_alloc(dim);
    bool ok = false;
    if (!g || !gn || !d || !xn)
        goto out;
    double f, fn;
    obj_fdf(x, (void *)m, &f, g);
    for (int step = 0; step < max_steps && isfinite(f); step++) {
        double gmax = 0;
        for (size_t i = 0; i < dim; i++)
            gmax = fmax(gmax, fabs(gsl_vector_get(g, i)));
        if (gmax < grad_tol) {
            ok = true;
            break;
        }
        if (gsl_linalg_cholesky_solve(L, g, d) != GSL_SUCCESS)
            break;
        double dmax = 0, slope = 0;
        for (size_t i = 0; i < dim; i++) {
            dmax = fmax(dmax, fabs(gsl_vector_get(d, i)));
            slope += gsl_vector_get(d, i) * gsl_vector_get(g, i);
        }
        double lam = dmax > 2 ? 2 / dmax : 1;
        bool moved = false;
        for (int k = 0; k < 30; k++, lam *= 0.5) {
            for (size_t i = 0; i < dim; i++)
                gsl_vector_set(xn, i, gsl_vector_get(x, i) - lam * gsl_vector_get(d, i));
            obj_fdf(xn, (void *)m, &fn, gn);
            if (isfinite(fn) && fn <= f - 1e-4 * lam * slope) {
                moved = true;
                break;
            }
            /* Near the optimum the decrease falls below the rounding of f
             * (it is of order gradient^2); a smaller gradient at an equal f
             * is then progress. */
            double gnmax = 0;
            for (size_t i = 0; i < dim; i++)
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

/* Largest |component| of the mean-log-likelihood gradient g (natural
 * parameters) in log-parameters. */
double cvm_mle_grad_norm(const cvm_mle *m, const double *th, const double *g)
{
    double mx = 0;
    for (size_t i = 0; i < m->dim; i++) {
        double v = fabs(g[i] * th[i] / m->n);
        mx = isnan(v) ? INFINITY : (v > mx ? v : mx);
    }
    return mx;
}

/* Standard errors from the Hessian of the total log-likelihood in the
 * natural parameters: forward differences of the analytic gradient from g0,
 * the gradient at the optimum (one gradient per parameter; step 1e-6
 * relative balances truncation, O(h), and the rounding of n-term sums). */
void cvm_mle_std_errors(const cvm_mle *m, const double *th, const double *g0, double *se)
{
    const size_t dim = m->dim;
    for (size_t i = 0; i < dim; i++)
        se[i] = NAN;
    gsl_matrix *H = gsl_matrix_alloc(dim, dim);
    if (H == NULL)
        return;
    for (size_t k = 0; k < dim; k++) {
        double h = 1e-6 * th[k], gp[CVM_MLE_MAX_DIM], t[CVM_MLE_MAX_DIM];
        memcpy(t, th, dim * sizeof *t);
        t[k] = th[k] + h;
        m->loglik(m->ctx, t, gp);
        for (size_t j = 0; j < dim; j++)
            gsl_matrix_set(H, (size_t)j, (size_t)k, -(gp[j] - g0[j]) / h);
    }
    bool ok = true;
    for (size_t j = 0; j < dim; j++)
        for (size_t k = j + 1; k < dim; k++) {
            double v = 0.5 * (gsl_matrix_get(H, j, k) + gsl_matrix_get(H, k, j));
            gsl_matrix_set(H, j, k, v);
            gsl_matrix_set(H, k, j, v);
        }
    for (size_t j = 0; j < dim && ok; j++)
        for (size_t k = 0; k < dim; k++)
            ok &= isfinite(gsl_matrix_get(H, j, k));
    if (ok && gsl_linalg_cholesky_decomp1(H) == GSL_SUCCESS &&
        gsl_linalg_cholesky_invert(H) == GSL_SUCCESS)
        for (size_t j = 0; j < dim; j++) {
            double v = gsl_matrix_get(H, j, j);
            se[j] = v > 0 ? sqrt(v) : NAN;
        }
    gsl_matrix_free(H);
}

bool cvm_mle_fit(const cvm_mle *sub, const cvm_mle *full, const double *starts, int n_starts,
                 int max_iter, double grad_tol, gsl_vector *best, double *fbest, int *iters,
                 bool *maxed)
{
    const size_t d = full->dim;
    gsl_vector *x = gsl_vector_alloc(d), *t1 = gsl_vector_alloc(d), *t2 = gsl_vector_alloc(d),
               *t3 = gsl_vector_alloc(d);
    gsl_matrix *H = gsl_matrix_alloc(d, d);
    bool ok = x && t1 && t2 && t3 && H;
    *fbest = GSL_POSINF;
    *iters = 0;
    *maxed = false;
    for (int s = 0; ok && s < n_starts; s++) {
        for (size_t i = 0; i < d; i++)
            gsl_vector_set(x, i, log(starts[(size_t)s * d + i]));
        double f;
        int it = cvm_mle_simplex(sub, x, max_iter, 1e-2, &f);
        if (it < 0) {
            ok = false;
            break;
        }
        *iters += it;
        if (f < *fbest) {
            *fbest = f;
            gsl_vector_memcpy(best, x);
        }
    }
    if (ok && isfinite(*fbest)) {
        cvm_mle_bfgs(sub, best, max_iter, grad_tol, iters, maxed);
        /* Newton steps on every observation with the curvature at the
         * (subsample's) optimum: quadratic convergence when sub is full,
         * linear at the rate of the subsample's error otherwise. */
        int steps = max_iter < 50 ? max_iter : 50;
        bool done = cvm_mle_hess_chol(sub, best, H, t1, t2, t3) &&
                    cvm_mle_newton(full, best, H, steps, grad_tol, iters);
        if (!done)
            done = cvm_mle_bfgs(full, best, max_iter, grad_tol, iters, maxed);
        if (!done) {
            /* A second chance: the simplex on everyone, then BFGS again. */
            double f;
            int it = cvm_mle_simplex(full, best, max_iter, 1e-8, &f);
            *iters += it > 0 ? it : 0;
            cvm_mle_bfgs(full, best, max_iter, grad_tol, iters, maxed);
        }
    }
    gsl_vector_free(x);
    gsl_vector_free(t1);
    gsl_vector_free(t2);
    gsl_vector_free(t3);
    gsl_matrix_free(H);
    return ok;
}

const char *cvm_mle_opts_check(int max_iter, int n_starts, int max_starts, double grad_tol,
                               size_t start_sample)
{
    if (max_iter < 10 || max_iter > 1000000)
        return "max_iter must be within [10, 1000000]";
    if (n_starts < 1 || n_starts > max_starts)
        return max_starts == 8 ? "n_starts must be within [1, 8]"
             : max_starts == 6 ? "n_starts must be within [1, 6]"
                               : "n_starts must be at least 1 and at most the model's starting points";
    if (!(grad_tol > 0 && grad_tol < 1))
        return "grad_tol must be within (0, 1)";
    if (start_sample != 0 && start_sample < 100)
        return "start_sample must be 0 (all) or at least 100";
    return NULL;
}
