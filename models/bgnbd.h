/*
 * bgnbd.h - the BG/NBD model of repeat buying (Fader, Hardie & Lee 2005,
 * "Counting your customers the easy way"): is a customer still alive, and how
 * many purchases will they make in the next t time units.
 *
 *     cvm_bgnbd_data d = {n, x, t_x, T};   // per customer, one time unit
 *     cvm_bgnbd_opts o;
 *     cvm_bgnbd_opts_default(&o);
 *     o.threads = 2;
 *     cvm_bgnbd_result fit;
 *     if (cvm_bgnbd_fit(&o, &d, &fit, &err) != CVM_OK) ...   // EINVAL, ENOMEM only
 *     if (fit.converged)
 *         cvm_bgnbd_score(&fit.params, &d, 52.0, 2, p_alive, expected);
 *
 * Data conventions (as in the paper): x is the number of repeat purchases
 * (purchase periods after the first), t_x the time of the last purchase and
 * T the age of the customer, both measured from the first purchase, in any one
 * time unit (the parameter alpha is in that unit; r, a, b are unitless).
 * 0 <= t_x <= T, and t_x = 0 when x = 0.
 *
 * Model: while alive a customer buys at Poisson rate lambda ~ Gamma(r, alpha)
 * and after each repeat purchase drops out with probability p ~ Beta(a, b).
 *
 * The fit is maximum likelihood on log-parameters with GSL's minimisers:
 * Nelder-Mead (nmsimplex2) from several starting points on a deterministic
 * subsample, BFGS (vector_bfgs2, analytic gradient) on the subsample, then
 * Newton steps on all customers with the subsample's Hessian (BFGS on all
 * customers if they fail), iterations bounded. It never aborts: a fit that does not
 * reach the gradient tolerance, or whose estimate runs to the edge of the
 * parameter space, comes back with converged = false and a status word, and
 * callers must not use its parameters for scoring. Standard errors are from
 * the numeric Hessian (central differences of the analytic gradient) in the
 * natural parameters.
 *
 * Thread-safety: every function is reentrant; fit, loglik and score run
 * OpenMP loops over fixed blocks of customers whose partial sums are added in
 * block order, so any thread count gives the same bits. The conditional
 * expectation uses the Gaussian hypergeometric function only inside its
 * convergence region (Euler's transformation, see bgnbd.c) and returns finite
 * values for every valid input (no repeats, very many repeats, t_x = T).
 */
#ifndef CVM_BGNBD_H
#define CVM_BGNBD_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct cvm_bgnbd_params {
    double r, alpha, a, b;
} cvm_bgnbd_params;

/* Borrowed arrays of n customers; x holds whole numbers. */
typedef struct cvm_bgnbd_data {
    size_t n;
    const double *x;
    const double *t_x;
    const double *T;
} cvm_bgnbd_data;

typedef struct cvm_bgnbd_opts {
    int max_iter;          /* per optimiser run (default 400) */
    int n_starts;          /* Nelder-Mead starting points, 1..8 (default 4) */
    double grad_tol;       /* converged when every component of the gradient of the
                              mean log-likelihood w.r.t. log-parameters is below
                              this (default 1e-9) */
    size_t start_sample;   /* customers in the starting-point search and the
                              curvature of the final Newton steps (default
                              5000; 0 = all) */
    int threads;           /* 0 = OpenMP default */
} cvm_bgnbd_opts;

typedef struct cvm_bgnbd_result {
    cvm_bgnbd_params params;
    double se[4];          /* standard errors of r, alpha, a, b; NAN when the
                              Hessian is not positive definite */
    double loglik;         /* total log-likelihood at params */
    int iterations;        /* over every optimiser run */
    bool converged;
    const char *status;    /* static: "converged", "max_iterations", "no_progress",
                              "boundary", "too_few_customers", "no_repeat_purchases" */
    size_t n;              /* customers */
    size_t n_repeaters;    /* customers with x > 0 */
} cvm_bgnbd_result;

void cvm_bgnbd_opts_default(cvm_bgnbd_opts *o);
/** @brief NULL when o is usable, else a readable reason (static string). */
const char *cvm_bgnbd_opts_check(const cvm_bgnbd_opts *o);
/** @brief NULL when d satisfies the data conventions, else a reason naming
 *  the first bad customer (written into buf). */
const char *cvm_bgnbd_data_check(const cvm_bgnbd_data *d, char *buf, size_t len);
/** @brief NULL when p is a valid parameter set (all > 0 and finite). */
const char *cvm_bgnbd_params_check(const cvm_bgnbd_params *p);

/**
 * @brief Fit by maximum likelihood.
 * @return CVM_OK also when the fit did not converge (see res->converged);
 *         CVM_EINVAL for invalid options or data, CVM_ENOMEM.
 */
int cvm_bgnbd_fit(const cvm_bgnbd_opts *o, const cvm_bgnbd_data *d, cvm_bgnbd_result *res,
                  cvm_err *err);

/**
 * @brief Total log-likelihood and (when grad is not NULL) its gradient with
 * respect to (r, alpha, a, b). Deterministic for any thread count.
 * @return the log-likelihood; NAN when out of memory or p is invalid.
 */
double cvm_bgnbd_loglik(const cvm_bgnbd_params *p, const cvm_bgnbd_data *d, int threads,
                        double grad[4]);

/** @brief P(alive | x, t_x, T): 1 for x = 0, in [0, 1]. */
double cvm_bgnbd_p_alive(const cvm_bgnbd_params *p, double x, double t_x, double T);
/** @brief E[X(T, T + t] | x, t_x, T]: purchases expected in the next t units. */
double cvm_bgnbd_expected(const cvm_bgnbd_params *p, double x, double t_x, double T, double t);
/** @brief E[X(t)] for a customer who has just made a first purchase
 *  (repeat purchases in (0, t]), FHL 2005 eq. 9. */
double cvm_bgnbd_expected_new(const cvm_bgnbd_params *p, double t);
/**
 * @brief Discounted expected purchases over the next `horizon` units:
 * integral over s in (0, horizon] of exp(-delta s) dE[X(T, T + s]], with
 * delta = log(1 + rate_per_unit) (continuous discounting at the effective
 * rate per time unit). Equals cvm_bgnbd_expected(..., horizon) when the rate
 * is 0. Gauss-Legendre quadrature after integration by parts.
 */
double cvm_bgnbd_discounted(const cvm_bgnbd_params *p, double x, double t_x, double T,
                            double horizon, double rate_per_unit);

/**
 * @brief Bulk scoring into caller buffers of d->n values (either may be
 * NULL): P(alive) and purchases expected in the next t units; with
 * discounted != NULL also cvm_bgnbd_discounted over t at rate_per_unit.
 * Parallel over customers.
 */
void cvm_bgnbd_score(const cvm_bgnbd_params *p, const cvm_bgnbd_data *d, double t,
                     double rate_per_unit, int threads, double *p_alive, double *expected,
                     double *discounted);

/** @brief Gaussian hypergeometric 2F1(a, b; c; z) for 0 <= z < 1 (c not a
 *  non-positive integer): the series up to z = 0.9, beyond it the connection
 *  to 1 - z (Abramowitz & Stegun 15.3.6), gsl_sf_hyperg_2F1 as a last resort
 *  (see bgnbd.c for why not first). Exposed for tests; NAN when nothing
 *  converges. */
double cvm_bgnbd_hyp2f1(double a, double b, double c, double z);

#endif
