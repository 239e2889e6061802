/*
 * mle.h - maximum likelihood over positive parameters with GSL: the
 * optimiser shared by the probabilistic models (BG/NBD, Gamma-Gamma).
 *
 * The objective is the mean negative log-likelihood over log-parameters
 * (so every parameter stays positive), from a caller's total log-likelihood
 * and its gradient in the natural parameters:
 *
 *     cvm_mle m = {3, (double)n, 25.0, my_loglik, my_data};
 *     cvm_mle_simplex(&m, x, 500, 1e-4, &f);        // robust start
 *     cvm_mle_bfgs(&m, x, 200, 1e-6, &iters, &maxed); // then gradient steps
 *
 * x holds log-parameters and is updated in place. Nothing here allocates
 * beyond GSL workspaces freed before returning; thread safety is that of
 * the loglik callback.
 */
#ifndef CVM_MLE_H
#define CVM_MLE_H

#include <stdbool.h>
#include <stddef.h>

#include <gsl/gsl_matrix.h>
#include <gsl/gsl_vector.h>

#define CVM_MLE_MAX_DIM 8

typedef struct cvm_mle {
    size_t dim;        /* number of parameters, at most CVM_MLE_MAX_DIM */
    double n;          /* observations: the objective is the mean */
    double log_bound;  /* |log parameter| beyond log_bound + 5 is infeasible */
    /* Total log-likelihood at the natural parameters theta[dim]; when grad is
     * not NULL, also d/dtheta into grad[dim]. Non-finite = infeasible. */
    double (*loglik)(void *ctx, const double *theta, double *grad);
    void *ctx;
} cvm_mle;

/** @brief Nelder-Mead (nmsimplex2, initial step 0.5); returns iterations,
 *  -1 on allocation failure; *f the value reached. */
int cvm_mle_simplex(const cvm_mle *m, gsl_vector *x, int max_iter, double size_tol, double *f);
/** @brief BFGS2; true when the gradient test passed, *maxed when the
 *  iteration bound stopped it; adds its iterations to *iters. */
bool cvm_mle_bfgs(const cvm_mle *m, gsl_vector *x, int max_iter, double grad_tol, int *iters,
                  bool *maxed);
/** @brief Hessian of the objective at x by central differences of the
 *  gradient, Cholesky-factorised in H; false when not positive definite.
 *  tmp, gp, gm are dim-sized scratch vectors. */
bool cvm_mle_hess_chol(const cvm_mle *m, const gsl_vector *x, gsl_matrix *H, gsl_vector *tmp,
                       gsl_vector *gp, gsl_vector *gm);
/** @brief Newton steps with a fixed factorised Hessian L and Armijo
 *  backtracking; true when the gradient test passed. */
bool cvm_mle_newton(const cvm_mle *m, gsl_vector *x, const gsl_matrix *L, int max_steps,
                    double grad_tol, int *iters);
/** @brief The whole fit both models use. Multi-start Nelder-Mead on `sub`
 *  (a subsample, or everyone) from starts[k][dim] (natural parameters,
 *  n_starts of them), BFGS from the best, then Newton steps on `full` with
 *  the subsample's curvature; when those do not pass the gradient test,
 *  BFGS on `full`, and as a last chance the simplex and BFGS again. best
 *  (log-parameters) receives the result, *fbest the best start's value
 *  (not finite: no start worked), *iters all iterations, *maxed whether an
 *  iteration bound stopped BFGS. Returns false only on allocation failure. */
bool cvm_mle_fit(const cvm_mle *sub, const cvm_mle *full, const double *starts, int n_starts,
                 int max_iter, double grad_tol, gsl_vector *best, double *fbest, int *iters,
                 bool *maxed);
/** @brief Checks the options every cvm_mle_fit user has: max_iter within
 *  [10, 1e6], n_starts within [1, max_starts] (the model's built-in
 *  starting points), grad_tol within (0, 1), start_sample 0 (everyone) or at
 *  least 100. NULL when fine, else a static message. */
const char *cvm_mle_opts_check(int max_iter, int n_starts, int max_starts, double grad_tol,
                               size_t start_sample);
/** @brief Largest |component| of the objective's gradient in
 *  log-parameters, from g = d loglik / d theta at theta. */
double cvm_mle_grad_norm(const cvm_mle *m, const double *theta, const double *g);
/** @brief Standard errors of theta from the Hessian of the total
 *  log-likelihood (forward differences of the gradient from g0); NAN where
 *  it is not positive definite. */
void cvm_mle_std_errors(const cvm_mle *m, const double *theta, const double *g0, double *se);

#endif
