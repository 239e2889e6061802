/*
 * gammagamma.h - the Gamma-Gamma model of spend per transaction (Fader,
 * Hardie & Lee 2005, "RFM and CLV: using iso-value curves for customer base
 * analysis"; Colombo & Jiang 1999): what a customer's average transaction is
 * worth, shrinking their own mean towards the population's.
 *
 *     cvm_gammagamma_data d = {n, x, m};     // repeat purchases, mean value of them
 *     cvm_gammagamma_opts o;
 *     cvm_gammagamma_opts_default(&o);
 *     cvm_gammagamma_result fit;
 *     if (cvm_gammagamma_fit(&o, &d, &fit, &err) != CVM_OK) ...  // EINVAL, ENOMEM only
 *     if (fit.converged)
 *         cvm_gammagamma_score(&fit.params, &d, threads, value);
 *
 * Model: a customer's transaction values are Gamma(p, nu), nu ~ Gamma(q, v)
 * across customers; m is the mean of the customer's x repeat transactions
 * (the first purchase is left out, as in the paper). The fit uses the
 * customers with x > 0 and m > 0 only; others are skipped (counted in
 * n_used). Expected average value given (x, m):
 *     E[M | x, m] = p (v + x m) / (p x + q - 1),
 * and p v / (q - 1) (the population mean) for x = 0; both need q > 1.
 *
 * The fit is the same as the BG/NBD one (bgnbd.h): Nelder-Mead from several
 * starts on a deterministic subsample, BFGS with the analytic gradient, Newton
 * steps on all customers, bounded iterations, a status word, standard errors
 * from the numeric Hessian. Reentrant; OpenMP loops with fixed-order block sums, so
 * any thread count gives the same bits.
 */
#ifndef CVM_GAMMAGAMMA_H
#define CVM_GAMMAGAMMA_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct cvm_gammagamma_params {
    double p, q, v;
} cvm_gammagamma_params;

/* Borrowed arrays of n customers: x repeat purchases (whole numbers), m the
 * mean value of those repeat purchases (ignored when x = 0). */
typedef struct cvm_gammagamma_data {
    size_t n;
    const double *x;
    const double *m;
} cvm_gammagamma_data;

typedef struct cvm_gammagamma_opts {
    int max_iter;          /* per optimiser run (default 400) */
    int n_starts;          /* 1..6 (default 3) */
    double grad_tol;       /* on the mean log-likelihood w.r.t. log-parameters (default 1e-9) */
    size_t start_sample;   /* customers in the starting-point search (default 5000; 0 = all) */
    int threads;
} cvm_gammagamma_opts;

typedef struct cvm_gammagamma_result {
    cvm_gammagamma_params params;
    double se[3];          /* p, q, v; NAN when the Hessian is not positive definite */
    double loglik;
    int iterations;
    bool converged;
    const char *status;    /* static: "converged", "max_iterations", "no_progress",
                              "boundary", "too_few_customers" */
    size_t n_used;         /* customers with x > 0 and m > 0 */
} cvm_gammagamma_result;

void cvm_gammagamma_opts_default(cvm_gammagamma_opts *o);
const char *cvm_gammagamma_opts_check(const cvm_gammagamma_opts *o);
/** @brief NULL when p, q, v are positive and finite. */
const char *cvm_gammagamma_params_check(const cvm_gammagamma_params *p);

/** @return CVM_OK also when not converged; CVM_EINVAL (x not a whole number
 *  >= 0, or m not finite where x > 0), CVM_ENOMEM. */
int cvm_gammagamma_fit(const cvm_gammagamma_opts *o, const cvm_gammagamma_data *d,
                       cvm_gammagamma_result *res, cvm_err *err);
/** @brief Total log-likelihood over the customers with x > 0 and m > 0 and,
 *  when grad is not NULL, its gradient w.r.t. (p, q, v); NAN on ENOMEM or
 *  invalid parameters. */
double cvm_gammagamma_loglik(const cvm_gammagamma_params *p, const cvm_gammagamma_data *d,
                             int threads, double grad[3]);
/** @brief E[M | x, m]; the population mean for x = 0 (m ignored); a negative
 *  m counts as 0. NAN when q <= 1. */
double cvm_gammagamma_expected_value(const cvm_gammagamma_params *p, double x, double m);
/** @brief Bulk E[M | x, m] into out (d->n values), parallel. */
void cvm_gammagamma_score(const cvm_gammagamma_params *p, const cvm_gammagamma_data *d,
                          int threads, double *out);

#endif
