/* BG/NBD and Gamma-Gamma: the published CDNOW estimates through the real
 * binary, P(alive) and expected purchases against hand-computed cases and an
 * independent numerical integration, the hypergeometric function against
 * closed forms, finite values for extreme customers, recovery of known
 * parameters from simulated data, and identical bits for 1 and 2 threads. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_integration.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_sf_gamma.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bgnbd.h"
#include "gammagamma.h"

static const cvm_bgnbd_params CDNOW_BG = {0.243, 4.414, 0.793, 2.426};
static const cvm_gammagamma_params CDNOW_GG = {6.25, 3.74, 15.44};

/* ------------------------------------------------------------------ */
/* Hand-computed cases                                                  */

static void test_p_alive_hand(void **state)
{
    (void)state;
    /* No repeat purchase: alive by construction, whatever the age. */
    for (double T = 0; T < 1000; T = T * 3 + 1)
        assert_true(cvm_bgnbd_p_alive(&CDNOW_BG, 0, 0, T) == 1);
    /* r = alpha = a = b = 1, x = 1, t_x = 1, T = 3:
     * 1 / (1 + a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) = 1 / (1 + (4/2)^2) = 0.2. */
    cvm_bgnbd_params one = {1, 1, 1, 1};
    assert_close(cvm_bgnbd_p_alive(&one, 1, 1, 3), 0.2, 1e-14, 0, "P(alive) hand case");
    /* Bought on the last day (t_x = T): 1 / (1 + a/(b+x-1)). x = 2 with a = 1, b = 1: 2/3. */
    assert_close(cvm_bgnbd_p_alive(&one, 2, 5, 5), 2.0 / 3.0, 1e-14, 0, "P(alive), t_x = T");
    /* x = 3, t_x = 2, T = 8, r = 2, alpha = 2, a = 3, b = 4:
     * a/(b+x-1) = 3/6, ((2+8)/(2+2))^5 = 2.5^5 = 97.65625, P = 1 / (1 + 48.828125). */
    cvm_bgnbd_params p2 = {2, 2, 3, 4};
    assert_close(cvm_bgnbd_p_alive(&p2, 3, 2, 8), 1 / 49.828125, 1e-13, 0, "P(alive) case 3");
}

/* With r = 1, a = 2, b = 1 and x = 0 the conditional expectation has the
 * closed form 2 [1 + (1-z) ln(1-z) / z], z = t / (alpha + T + t), because
 * 2F1(1, 1; 2; z) = -ln(1-z)/z (FHL 2005 eq. 10 with these parameters). */
static void test_expected_closed_form(void **state)
{
    (void)state;
    const double alphas[] = {0.1, 1, 4.414, 30};
    const double Ts[] = {0, 1, 38.86, 400};
    const double ts[] = {1e-3, 1, 39, 52, 1e4};
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < 4; j++)
            for (size_t k = 0; k < 5; k++) {
                cvm_bgnbd_params p = {1, alphas[i], 2, 1};
                double T = Ts[j], t = ts[k];
                /* 1 + (1-z) ln(1-z) / z = 1 - log1p(s)/s with s = t/(alpha+T),
                 * the form without cancellation for small t. */
                double s = t / (alphas[i] + T);
                double want = 2 * (1 - log1p(s) / s);
                assert_close(cvm_bgnbd_expected(&p, 0, 0, T, t), want, 1e-10, 1e-15,
                             "E closed form alpha=%g T=%g t=%g", alphas[i], T, t);
                if (T == 0)
                    assert_close(cvm_bgnbd_expected_new(&p, t), want, 1e-10, 1e-15,
                                 "E[X(t)] closed form alpha=%g t=%g", alphas[i], t);
            }
    /* Small t: an alive customer buys at E[lambda | x, T] = (r+x)/(alpha+T). */
    double e = cvm_bgnbd_expected(&CDNOW_BG, 0, 0, 10, 1e-6);
    assert_close(e, CDNOW_BG.r / (CDNOW_BG.alpha + 10) * 1e-6, 1e-4, 0, "E small t");
    assert_true(cvm_bgnbd_expected(&CDNOW_BG, 3, 5, 10, 0) == 0);
    /* No discounting: the discounted expectation is the expectation. */
    assert_close(cvm_bgnbd_discounted(&CDNOW_BG, 2, 30.43, 38.86, 52, 0),
                 cvm_bgnbd_expected(&CDNOW_BG, 2, 30.43, 38.86, 52), 1e-14, 0, "DET rate 0");
}

/* ------------------------------------------------------------------ */
/* An independent oracle: integrate lambda out analytically and p       */
/* numerically against its Beta density (GSL QAWS, which takes the       */
/* endpoint singularities p^(a-1) (1-p)^(b-1) as its weight).            */

typedef struct oracle_ctx {
    double r, alpha, x, t_x, T, t;
    int which; /* 0: alive part, 1: dead part, 2: expected purchases if alive */
} oracle_ctx;

static double oracle_f(double p, void *v)
{
    const oracle_ctx *o = v;
    double rx = o->r + o->x;
    switch (o->which) {
    case 0:
        return pow(1 - p, o->x) * pow(o->alpha + o->T, -rx);
    case 1:
        return o->x > 0 ? p * pow(1 - p, o->x - 1) * pow(o->alpha + o->t_x, -rx) : 0;
    default: {
        /* (1/p) [(alpha+T)^-(r+x) - (alpha+T+pt)^-(r+x)], kept accurate near p = 0. */
        double c = o->alpha + o->T;
        double d = p > 0 ? -expm1(-rx * log1p(p * o->t / c)) / p : rx * o->t / c;
        return pow(1 - p, o->x) * pow(c, -rx) * d;
    }
    }
}

static double oracle_int(const cvm_bgnbd_params *pp, oracle_ctx *o, int which)
{
    o->which = which;
    gsl_integration_workspace *w = gsl_integration_workspace_alloc(2000);
    gsl_integration_qaws_table *tb = gsl_integration_qaws_table_alloc(pp->a - 1, pp->b - 1, 0, 0);
    assert_non_null(w);
    assert_non_null(tb);
    gsl_function F = {oracle_f, o};
    double res, abserr;
    int st = gsl_integration_qaws(&F, 0, 1, tb, 0, 1e-12, 2000, w, &res, &abserr);
    assert_int_equal(st, GSL_SUCCESS);
    gsl_integration_qaws_table_free(tb);
    gsl_integration_workspace_free(w);
    return res;
}

static void test_expected_vs_integration(void **state)
{
    (void)state;
    const cvm_bgnbd_params ps[] = {CDNOW_BG, {1.7, 20, 2.5, 6}, {0.5, 0.3, 0.6, 0.9}};
    const double cust[][3] = {{0, 0, 38.86}, {2, 30.43, 38.86}, {1, 1.71, 38.86}, {10, 12, 40},
                              {7, 39, 39},   {0, 0, 0},         {25, 3, 70}};
    const double ts[] = {0.5, 39, 150};
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 7; j++)
            for (size_t k = 0; k < 3; k++) {
                oracle_ctx o = {ps[i].r, ps[i].alpha, cust[j][0], cust[j][1], cust[j][2], ts[k], 0};
                double alive = oracle_int(&ps[i], &o, 0), dead = oracle_int(&ps[i], &o, 1);
                double pa = alive / (alive + dead);
                double e = oracle_int(&ps[i], &o, 2) / (alive + dead);
                assert_close(cvm_bgnbd_p_alive(&ps[i], cust[j][0], cust[j][1], cust[j][2]), pa, 1e-9,
                             0, "P(alive) params %zu customer %zu", i, j);
                assert_close(cvm_bgnbd_expected(&ps[i], cust[j][0], cust[j][1], cust[j][2], ts[k]), e,
                             1e-8, 1e-14, "E params %zu customer %zu t %g", i, j, ts[k]);
            }
}

/* A fine Stieltjes sum of the discounted purchases as the reference. */
static void test_discounted_vs_sum(void **state)
{
    (void)state;
    const cvm_bgnbd_params ps[] = {CDNOW_BG, {1.5, 0.2, 2.5, 0.7}};
    const double cust[][3] = {{0, 0, 0}, {2, 30.43, 38.86}, {10, 5, 40}, {50, 39, 39}};
    const double rates[] = {0.0018, 0.05};
    for (size_t i = 0; i < 2; i++)
        for (size_t j = 0; j < 4; j++)
            for (size_t k = 0; k < 2; k++) {
                double H = 52, delta = log1p(rates[k]), s = 0, prev = 0;
                const int N = 20000;
                for (int q = 1; q <= N; q++) {
                    double t = H * q / N;
                    double e = cvm_bgnbd_expected(&ps[i], cust[j][0], cust[j][1], cust[j][2], t);
                    s += exp(-delta * (t - 0.5 * H / N)) * (e - prev);
                    prev = e;
                }
                double det = cvm_bgnbd_discounted(&ps[i], cust[j][0], cust[j][1], cust[j][2], H,
                                                  rates[k]);
                assert_close(det, s, 1e-6, 1e-15, "DET params %zu customer %zu rate %g", i, j,
                             rates[k]);
                assert_true(det < prev);
            }
}

/* 2F1 against closed forms, including the paths the BG/NBD needs: z close
 * to 1 and c - a - b at or next to an integer. */
static void test_hyp2f1_closed_forms(void **state)
{
    (void)state;
    const double zs[] = {0, 0.1, 0.5, 0.8999, 0.9001, 0.99, 0.999999};
    for (size_t i = 0; i < sizeof zs / sizeof zs[0]; i++) {
        double z = zs[i], w = 1 - z;
        /* 2F1(1, 1; 2; z) = -ln(1-z)/z (c - a - b = 0). */
        assert_close(cvm_bgnbd_hyp2f1(1, 1, 2, z), z > 0 ? -log1p(-z) / z : 1, 1e-9, 0, "2F1(1,1;2;%g)", z);
        /* 2F1(a, b; b; z) = (1-z)^-a: c - a - b = -a, integer for a = 2, near it for 2 + 1e-7. */
        const double as[] = {0.3, 2, 2 + 1e-7, 5.5};
        for (size_t k = 0; k < 4; k++)
            assert_close(cvm_bgnbd_hyp2f1(as[k], 0.7, 0.7, z), pow(w, -as[k]), 1e-8, 0,
                         "2F1(%g,0.7;0.7;%g)", as[k], z);
        /* 2F1(1/2, 1/2; 3/2; z) = asin(sqrt z)/sqrt z. */
        double sz = sqrt(z);
        assert_close(cvm_bgnbd_hyp2f1(0.5, 0.5, 1.5, z), z > 0 ? asin(sz) / sz : 1, 1e-9, 0,
                     "2F1(1/2,1/2;3/2;%g)", z);
        /* 2F1(a, b; c; z) with a = -n is the polynomial sum_j (-n)_j (b)_j/((c)_j j!) z^j;
         * n = 2, b = 0.4, c = 1.3. */
        double poly = 1 + (-2 * 0.4 / 1.3) * z + (-2 * -1 * 0.4 * 1.4 / (1.3 * 2.3 * 2)) * z * z;
        assert_close(cvm_bgnbd_hyp2f1(-2, 0.4, 1.3, z), poly, 1e-10, 1e-14, "polynomial z=%g", z);
    }
    /* Negative non-integer c (x = 0 with a + b < 1). 2F1(a, b; b; z) again. */
    assert_close(cvm_bgnbd_hyp2f1(0.4, -0.3, -0.3, 0.95), pow(0.05, -0.4), 1e-8, 0, "negative c");
    assert_true(isnan(cvm_bgnbd_hyp2f1(1, 1, -2, 0.5)));
    assert_true(isnan(cvm_bgnbd_hyp2f1(1, 1, 2, 1)));
}

/* ------------------------------------------------------------------ */
/* Extreme customers and parameters: always finite.                      */

static void test_extremes_finite(void **state)
{
    (void)state;
    const cvm_bgnbd_params ps[] = {
        CDNOW_BG, {1, 1, 1, 1}, {50, 0.01, 0.05, 80}, {0.01, 500, 30, 0.05}, {0.3, 2, 1, 0.5},
        {2, 3, 1 + 1e-9, 4}, {0.7, 0.2, 0.4, 0.6}, {2.72, 180.8, 0.088, 0.437}, {3, 0.01, 20, 0.01},
    };
    const double cust[][3] = {
        {0, 0, 0},   {0, 0, 1e5},     {1, 0, 0},      {1, 1e-9, 1e-9}, {1e4, 1, 5e4},
        {1e4, 5e4, 5e4}, {1e6, 0.5, 1e3}, {1e6, 1e3, 1e3}, {3, 2, 1e6},  {50, 39, 39},
    };
    const double ts[] = {1e-9, 1, 52, 1e6};
    double px[10], ptx[10], pT[10], pa[10], ex[10], de[10];
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        for (size_t j = 0; j < 10; j++) {
            double x = cust[j][0], tx = cust[j][1], T = cust[j][2];
            px[j] = x;
            ptx[j] = tx;
            pT[j] = T;
            double p = cvm_bgnbd_p_alive(&ps[i], x, tx, T);
            if (!(p >= 0 && p <= 1))
                fail_msg("P(alive) = %g for params %zu customer %zu", p, i, j);
            for (size_t k = 0; k < 4; k++) {
                double e = cvm_bgnbd_expected(&ps[i], x, tx, T, ts[k]);
                double d = cvm_bgnbd_discounted(&ps[i], x, tx, T, ts[k], 0.01);
                if (!isfinite(e) || e < 0 || !isfinite(d) || d < 0 || d > e * (1 + 1e-12))
                    fail_msg("E = %g, DET = %g for params %zu customer %zu t %g", e, d, i, j, ts[k]);
            }
        }
        cvm_bgnbd_data d = {10, px, ptx, pT};
        cvm_bgnbd_score(&ps[i], &d, 52, 0.01, 2, pa, ex, de);
        for (size_t j = 0; j < 10; j++)
            if (!isfinite(pa[j]) || !isfinite(ex[j]) || !isfinite(de[j]))
                fail_msg("bulk score not finite, params %zu customer %zu", i, j);
        double g[4];
        double ll = cvm_bgnbd_loglik(&ps[i], &d, 1, g);
        if (!isfinite(ll) || !isfinite(g[0]) || !isfinite(g[1]) || !isfinite(g[2]) || !isfinite(g[3]))
            fail_msg("log-likelihood %g not finite for params %zu", ll, i);
    }
    /* a = 1 and a + b = 1 are removable singularities: continuous. */
    cvm_bgnbd_params a1 = {0.5, 3, 1, 2}, a1b = {0.5, 3, 1.001, 2};
    assert_close(cvm_bgnbd_expected(&a1, 2, 5, 9, 20), cvm_bgnbd_expected(&a1b, 2, 5, 9, 20), 2e-3, 0, "a = 1");
    cvm_bgnbd_params ab1 = {0.5, 3, 0.4, 0.6}, ab1b = {0.5, 3, 0.4, 0.601};
    assert_close(cvm_bgnbd_expected(&ab1, 0, 0, 9, 20), cvm_bgnbd_expected(&ab1b, 0, 0, 9, 20), 2e-3, 0, "a + b = 1");
}

/* ------------------------------------------------------------------ */
/* Gradient, simulation, recovery, threads                              */

static void test_gradient_numeric(void **state)
{
    (void)state;
    const double x[] = {0, 0, 1, 2, 5, 12, 1, 0, 3};
    const double tx[] = {0, 0, 3, 10, 20, 35, 0.5, 0, 38};
    const double T[] = {10, 40, 38, 39, 30, 36, 2, 0, 38};
    cvm_bgnbd_data d = {9, x, tx, T};
    const cvm_bgnbd_params ps[] = {CDNOW_BG, {2, 10, 3, 1.5}};
    for (size_t i = 0; i < 2; i++) {
        double g[4], th[4] = {ps[i].r, ps[i].alpha, ps[i].a, ps[i].b};
        cvm_bgnbd_loglik(&ps[i], &d, 1, g);
        for (int k = 0; k < 4; k++) {
            double h = 1e-6 * th[k], tp[4], tm[4];
            memcpy(tp, th, sizeof tp);
            memcpy(tm, th, sizeof tm);
            tp[k] += h;
            tm[k] -= h;
            cvm_bgnbd_params pp = {tp[0], tp[1], tp[2], tp[3]}, pm = {tm[0], tm[1], tm[2], tm[3]};
            double num = (cvm_bgnbd_loglik(&pp, &d, 1, NULL) - cvm_bgnbd_loglik(&pm, &d, 1, NULL)) / (2 * h);
            assert_close(g[k], num, 1e-6, 1e-8, "BG/NBD gradient %d, params %zu", k, i);
        }
    }
    const double m[] = {0, 0, 20, 35.5, 12, 80, 7, 0, 15};
    cvm_gammagamma_data gd = {9, x, m};
    cvm_gammagamma_params gp = CDNOW_GG;
    double g[3], th[3] = {gp.p, gp.q, gp.v};
    cvm_gammagamma_loglik(&gp, &gd, 1, g);
    for (int k = 0; k < 3; k++) {
        double h = 1e-6 * th[k], tp[3], tm[3];
        memcpy(tp, th, sizeof tp);
        memcpy(tm, th, sizeof tm);
        tp[k] += h;
        tm[k] -= h;
        cvm_gammagamma_params pp = {tp[0], tp[1], tp[2]}, pm = {tm[0], tm[1], tm[2]};
        double num = (cvm_gammagamma_loglik(&pp, &gd, 1, NULL) - cvm_gammagamma_loglik(&pm, &gd, 1, NULL)) / (2 * h);
        assert_close(g[k], num, 1e-6, 1e-8, "Gamma-Gamma gradient %d", k);
    }
}

typedef struct simdata {
    size_t n;
    double *x, *tx, *T, *m;
} simdata;

/* The BG/NBD story customer by customer: Poisson purchases at rate
 * lambda ~ Gamma(r, alpha) until the dropout after a repeat purchase
 * (probability p ~ Beta(a, b)); first purchases spread over the first 12 of
 * 39 weeks; transaction values Gamma(p_gg, nu) with nu ~ Gamma(q, v). */
static simdata simulate(size_t n, unsigned long seed, const cvm_bgnbd_params *bg,
                        const cvm_gammagamma_params *gg)
{
    simdata s = {n, malloc(n * sizeof(double)), malloc(n * sizeof(double)),
                 malloc(n * sizeof(double)), malloc(n * sizeof(double))};
    assert_true(s.x && s.tx && s.T && s.m);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    assert_non_null(rng);
    gsl_rng_set(rng, seed);
    for (size_t i = 0; i < n; i++) {
        double age = 39 - 12 * gsl_rng_uniform(rng);
        double lambda = gsl_ran_gamma(rng, bg->r, 1 / bg->alpha);
        double p = gsl_ran_beta(rng, bg->a, bg->b);
        double nu = gsl_ran_gamma(rng, gg->q, 1 / gg->v);
        double t = 0, last = 0, k = 0, sum = 0;
        for (;;) {
            t += gsl_ran_exponential(rng, 1 / lambda);
            if (t > age)
                break;
            k++;
            last = t;
            sum += gsl_ran_gamma(rng, gg->p, 1 / nu);
            if (gsl_rng_uniform(rng) < p)
                break;
        }
        s.x[i] = k;
        s.tx[i] = last;
        s.T[i] = age;
        s.m[i] = k > 0 ? sum / k : 0;
    }
    gsl_rng_free(rng);
    return s;
}

static void simdata_free(simdata *s)
{
    free(s->x);
    free(s->tx);
    free(s->T);
    free(s->m);
}

/* Tolerance: each estimate within 4 of its standard errors. Over 100
 * replications of 100,000 customers (bench/results-cycles.md) the z-scores
 * have standard deviations close to 1 and |z| stayed below 3.5, so the
 * Hessian's standard errors are honest and 4 is a real bound, not slack
 * (P(|z| > 4) = 6e-5 per parameter). */
static void test_recovery(void **state)
{
    (void)state;
    const cvm_bgnbd_params bgs[] = {CDNOW_BG, {1.2, 8, 0.5, 4}};
    const cvm_gammagamma_params ggs[] = {CDNOW_GG, {3, 8, 40}};
    for (int c = 0; c < 2; c++) {
        simdata s = simulate(60000, 20261122 + (unsigned long)c, &bgs[c], &ggs[c]);
        cvm_bgnbd_data d = {s.n, s.x, s.tx, s.T};
        cvm_bgnbd_opts o;
        cvm_bgnbd_opts_default(&o);
        o.threads = 2;
        cvm_bgnbd_result r;
        cvm_err err = {0};
        assert_int_equal(cvm_bgnbd_fit(&o, &d, &r, &err), CVM_OK);
        assert_true(r.converged);
        assert_string_equal(r.status, "converged");
        const double est[4] = {r.params.r, r.params.alpha, r.params.a, r.params.b};
        const double tru[4] = {bgs[c].r, bgs[c].alpha, bgs[c].a, bgs[c].b};
        for (int k = 0; k < 4; k++) {
            assert_true(isfinite(r.se[k]) && r.se[k] > 0);
            if (fabs(est[k] - tru[k]) > 4 * r.se[k])
                fail_msg("BG/NBD set %d parameter %d: %g, true %g, se %g", c, k, est[k], tru[k], r.se[k]);
        }
        cvm_gammagamma_data gd = {s.n, s.x, s.m};
        cvm_gammagamma_opts go;
        cvm_gammagamma_opts_default(&go);
        cvm_gammagamma_result g;
        assert_int_equal(cvm_gammagamma_fit(&go, &gd, &g, &err), CVM_OK);
        assert_true(g.converged);
        const double gest[3] = {g.params.p, g.params.q, g.params.v};
        const double gtru[3] = {ggs[c].p, ggs[c].q, ggs[c].v};
        for (int k = 0; k < 3; k++)
            if (!(fabs(gest[k] - gtru[k]) <= 4 * g.se[k]))
                fail_msg("Gamma-Gamma set %d parameter %d: %g, true %g, se %g", c, k, gest[k], gtru[k], g.se[k]);
        simdata_free(&s);
    }
}

static void test_threads_identical(void **state)
{
    (void)state;
    /* Enough customers for the parallel blocks and the subsample path. */
    simdata s = simulate(80000, 7, &CDNOW_BG, &CDNOW_GG);
    cvm_bgnbd_data d = {s.n, s.x, s.tx, s.T};
    cvm_gammagamma_data gd = {s.n, s.x, s.m};
    cvm_bgnbd_result r[2];
    cvm_gammagamma_result g[2];
    double *out[2][4];
    for (int k = 0; k < 2; k++) {
        cvm_err err = {0};
        cvm_bgnbd_opts o;
        cvm_bgnbd_opts_default(&o);
        o.threads = k + 1;
        assert_int_equal(cvm_bgnbd_fit(&o, &d, &r[k], &err), CVM_OK);
        cvm_gammagamma_opts go;
        cvm_gammagamma_opts_default(&go);
        go.threads = k + 1;
        assert_int_equal(cvm_gammagamma_fit(&go, &gd, &g[k], &err), CVM_OK);
        for (int j = 0; j < 4; j++)
            out[k][j] = malloc(s.n * sizeof(double));
        cvm_bgnbd_score(&r[k].params, &d, 52, 0.0018, k + 1, out[k][0], out[k][1], out[k][2]);
        cvm_gammagamma_score(&g[k].params, &gd, k + 1, out[k][3]);
    }
    assert_true(r[0].converged && g[0].converged);
    assert_memory_equal(&r[0].params, &r[1].params, sizeof r[0].params);
    assert_memory_equal(r[0].se, r[1].se, sizeof r[0].se);
    assert_memory_equal(&r[0].loglik, &r[1].loglik, sizeof(double));
    assert_int_equal(r[0].iterations, r[1].iterations);
    assert_memory_equal(&g[0].params, &g[1].params, sizeof g[0].params);
    for (int j = 0; j < 4; j++) {
        assert_memory_equal(out[0][j], out[1][j], s.n * sizeof(double));
        free(out[0][j]);
        free(out[1][j]);
    }
    double l1 = cvm_bgnbd_loglik(&CDNOW_BG, &d, 1, NULL), l2 = cvm_bgnbd_loglik(&CDNOW_BG, &d, 2, NULL);
    assert_memory_equal(&l1, &l2, sizeof l1);
    /* The bulk score (tables per x) equals the one-customer functions. */
    double pa[3], ex[3], de[3];
    cvm_bgnbd_data d3 = {3, s.x, s.tx, s.T};
    cvm_bgnbd_score(&r[0].params, &d3, 52, 0.0018, 1, pa, ex, de);
    for (int i = 0; i < 3; i++) {
        assert_close(pa[i], cvm_bgnbd_p_alive(&r[0].params, s.x[i], s.tx[i], s.T[i]), 1e-15, 0, "pa");
        assert_close(ex[i], cvm_bgnbd_expected(&r[0].params, s.x[i], s.tx[i], s.T[i], 52), 1e-10, 0, "ex");
        assert_close(de[i], cvm_bgnbd_discounted(&r[0].params, s.x[i], s.tx[i], s.T[i], 52, 0.0018), 1e-10, 0, "det");
    }
    simdata_free(&s);
}

static void test_degenerate_and_invalid(void **state)
{
    (void)state;
    cvm_err err = {0};
    cvm_bgnbd_opts o;
    cvm_bgnbd_opts_default(&o);
    cvm_bgnbd_result r;
    double x[5] = {0, 0, 0, 0, 0}, tx[5] = {0}, T[5] = {1, 2, 3, 4, 5};
    cvm_bgnbd_data d = {5, x, tx, T};
    assert_int_equal(cvm_bgnbd_fit(&o, &d, &r, &err), CVM_OK);
    assert_false(r.converged);
    assert_string_equal(r.status, "no_repeat_purchases");
    assert_true(isnan(r.params.r));
    d.n = 2;
    x[0] = 1;
    tx[0] = 0.5;
    assert_int_equal(cvm_bgnbd_fit(&o, &d, &r, &err), CVM_OK);
    assert_string_equal(r.status, "too_few_customers");
    /* Invalid data names the customer. */
    d.n = 5;
    tx[3] = 9; /* > T with x = 0 */
    assert_int_equal(cvm_bgnbd_fit(&o, &d, &r, &err), CVM_EINVAL);
    assert_non_null(strstr(err.msg, "customer 3"));
    tx[3] = 0;
    x[1] = 1.5;
    assert_int_equal(cvm_bgnbd_fit(&o, &d, &r, &err), CVM_EINVAL);
    x[1] = 0;
    o.n_starts = 0;
    assert_int_equal(cvm_bgnbd_fit(&o, &d, &r, &err), CVM_EINVAL);
    /* Nobody drops out and everybody buys like clockwork: the estimate may
     * run off to the edge; whatever happens the status says so and the call
     * succeeds. */
    double cx[200], ctx[200], cT[200];
    for (int i = 0; i < 200; i++) {
        cT[i] = 50;
        cx[i] = 10 + i % 3;
        ctx[i] = 50;
    }
    cvm_bgnbd_opts_default(&o);
    cvm_bgnbd_data cd = {200, cx, ctx, cT};
    assert_int_equal(cvm_bgnbd_fit(&o, &cd, &r, &err), CVM_OK);
    assert_non_null(r.status);
    if (!r.converged)
        assert_true(strcmp(r.status, "boundary") == 0 || strcmp(r.status, "max_iterations") == 0 ||
                    strcmp(r.status, "no_progress") == 0);
    /* Gamma-Gamma: too few, and the expected value by hand:
     * p (v + x m) / (p x + q - 1) = 6 (15 + 40) / (12 + 3) = 22; population 6 15 / 3 = 30. */
    cvm_gammagamma_params gp = {6, 4, 15};
    assert_close(cvm_gammagamma_expected_value(&gp, 2, 20), 22, 1e-14, 0, "E(M)");
    assert_close(cvm_gammagamma_expected_value(&gp, 0, 99), 30, 1e-14, 0, "E(M) population");
    cvm_gammagamma_params gq = {6, 0.9, 15};
    assert_true(isnan(cvm_gammagamma_expected_value(&gq, 2, 20)));
    cvm_gammagamma_opts go;
    cvm_gammagamma_opts_default(&go);
    cvm_gammagamma_result g;
    double gm[5] = {10, 0, 0, 0, 0};
    cvm_gammagamma_data gd = {5, x, gm};
    x[0] = 1;
    assert_int_equal(cvm_gammagamma_fit(&go, &gd, &g, &err), CVM_OK);
    assert_string_equal(g.status, "too_few_customers");
    assert_int_equal(g.n_used, 1);
}

/* ------------------------------------------------------------------ */
/* CDNOW through the binary                                             */

typedef struct cdnow {
    size_t n;
    char id[2400][8];
    double x[2400], tx[2400], T[2400], m[2400], hold[2400];
} cdnow;

static const char *shared_dir(void)
{
    const char *s = getenv("CVM_SHARED_DIR");
    static char buf[4096];
    if (s && *s)
        return s;
    snprintf(buf, sizeof buf, "%s/../shared", cvm_test_source_dir());
    return buf;
}

static int32_t day_of(long ymd)
{
    /* Days since 1970-01-01 (civil from days, Howard Hinnant). */
    int y = (int)(ymd / 10000), mo = (int)(ymd / 100 % 100), d = (int)(ymd % 100);
    y -= mo <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The test's own reading of CDNOW_sample.txt: distinct days per customer,
 * same-day amounts added, calibration to 1997-09-30, weeks = days / 7. Also
 * writes it as a cvm transactions CSV. */
static cdnow *read_cdnow(const char *dir, char **csv_path)
{
    char *path = cvm_test_path(shared_dir(), "cdnow/CDNOW_sample.txt");
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s is missing: the CDNOW benchmark data (shared/cdnow/ next to the repository, "
                 "or $CVM_SHARED_DIR/cdnow/) is needed to check the published BG/NBD and "
                 "Gamma-Gamma estimates", path);
    *csv_path = cvm_test_path(dir, "cdnow.csv");
    FILE *out = fopen(*csv_path, "w");
    assert_non_null(out);
    fputs("customer_id,date,quantity,revenue\n", out);
    cdnow *c = calloc(1, sizeof *c);
    assert_non_null(c);
    const int32_t cut = day_of(19970930), end = day_of(19980630);
    char master[32], sid[8];
    long ymd;
    double cds, dollars;
    int32_t first = 0, last = 0, lastday = 0;
    double days = 0, value = 0, dayval = 0;
    long prev = -1;
    while (fscanf(f, "%31s %7s %ld %lf %lf", master, sid, &ymd, &cds, &dollars) == 5) {
        fprintf(out, "%s,%ld,%g,%.2f\n", sid, ymd, cds, dollars);
        long id = strtol(sid, NULL, 10);
        int32_t d = day_of(ymd);
        if (id != prev) {
            assert_true(id > prev && c->n < 2400);
            snprintf(c->id[c->n], sizeof c->id[0], "%s", sid);
            c->n++;
            prev = id;
            first = last = lastday = d;
            days = 1;
            value = dayval = 0;
        } else if (d != lastday) {
            lastday = d;
            if (d <= cut) {
                days++;
                last = d;
            } else if (d <= end) {
                c->hold[c->n - 1]++;
            }
        }
        if (d != first && d <= cut)
            value += dollars;
        (void)dayval;
        size_t i = c->n - 1;
        c->x[i] = days - 1;
        c->tx[i] = (last - first) / 7.0;
        c->T[i] = (cut - first) / 7.0;
        c->m[i] = days > 1 ? value / (days - 1) : 0;
    }
    fclose(f);
    assert_int_equal(fclose(out), 0);
    free(path);
    return c;
}

/* "Agrees to three significant digits": both round to the same 3-digit value. */
static void assert_3sf(double got, double published, const char *what)
{
    double e = floor(log10(fabs(published))) - 2, u = pow(10, e);
    if (llround(got / u) != llround(published / u))
        fail_msg("%s = %.6g does not reproduce the published %.4g to three significant digits",
                 what, got, published);
}

static json_t *run_cdnow(const char *dir, const char *csv, const char *as_of, const char *extra)
{
    char *job = cvm_test_path(dir, "cdnow.yaml");
    char text[1024];
    snprintf(text, sizeof text,
             "job: {name: cdnow}\n"
             "input:\n  transactions:\n    path: %s\n"
             "    columns: {customer: customer_id, date: date, quantity: quantity, revenue: revenue}\n"
             "cycles: {enabled: true, time_unit: weeks}\n", csv);
    cvm_test_write_file(job, text);
    char *out = cvm_test_path(dir, "out");
    /* keep_runs 0: a fresh output directory has nothing to retain. */
    int rc = cvm_test_system("'%s' run '%s' --out '%s' --as-of %s --quiet --set output.keep_runs=0 "
                             "%s > '%s/log' 2>&1",
                             cvm_test_binary(), job, out, as_of, extra, dir);
    if (rc != 0) {
        char *lp = cvm_test_path(dir, "log");
        char *log = cvm_test_read_file(lp, NULL);
        fail_msg("cvm run failed (%d): %s", rc, log ? log : "");
    }
    char *sp = cvm_test_path(out, "latest/summary.json");
    json_error_t je;
    json_t *s = json_load_file(sp, 0, &je);
    if (s == NULL)
        fail_msg("%s: %s", sp, je.text);
    free(sp);
    free(out);
    free(job);
    return s;
}

static double jget(json_t *root, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(json_object_get(json_object_get(root, "models"), a), b);
    if (c)
        v = json_object_get(v, c);
    if (!json_is_number(v))
        fail_msg("summary.json models.%s.%s%s%s is not a number", a, b, c ? "." : "", c ? c : "");
    return json_number_value(v);
}

/* The optimiser options of both models: defaults pass, each bound fails
 * with its message (n_starts up to each model's own starting points). */
static void test_opts_checked(void **state)
{
    (void)state;
    cvm_bgnbd_opts b;
    cvm_gammagamma_opts g;
    cvm_bgnbd_opts_default(&b);
    cvm_gammagamma_opts_default(&g);
    assert_null(cvm_bgnbd_opts_check(&b));
    assert_null(cvm_gammagamma_opts_check(&g));
    b.n_starts = 8;
    assert_null(cvm_bgnbd_opts_check(&b));
    b.n_starts = 9;
    assert_string_equal(cvm_bgnbd_opts_check(&b), "n_starts must be within [1, 8]");
    g.n_starts = 7;
    assert_string_equal(cvm_gammagamma_opts_check(&g), "n_starts must be within [1, 6]");
    cvm_gammagamma_opts_default(&g);
    g.max_iter = 9;
    assert_non_null(strstr(cvm_gammagamma_opts_check(&g), "max_iter"));
    cvm_bgnbd_opts_default(&b);
    b.grad_tol = 0;
    assert_non_null(strstr(cvm_bgnbd_opts_check(&b), "grad_tol"));
    cvm_bgnbd_opts_default(&b);
    b.start_sample = 50;
    assert_non_null(strstr(cvm_bgnbd_opts_check(&b), "start_sample"));
    b.start_sample = 0;
    assert_null(cvm_bgnbd_opts_check(&b));
}

static void test_cdnow_published(void **state)
{
    (void)state;
    gsl_set_error_handler_off();
    char *dir = cvm_test_mkdtemp("cdnow");
    char *csv;
    cdnow *c = read_cdnow(dir, &csv);
    assert_int_equal(c->n, 2357);

    /* The summary conventions reproduce the published customer summary
     * (t_x and T rounded to 2 decimals there). */
    char *sp = cvm_test_path(shared_dir(), "cdnow/cdnow_customers_summary.csv");
    FILE *f = fopen(sp, "r");
    if (f == NULL)
        fail_msg("%s is missing", sp);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    size_t i = 0, repeaters = 0;
    int id;
    double fx, ftx, fT;
    while (fscanf(f, "%d,%lf,%lf,%lf", &id, &fx, &ftx, &fT) == 4) {
        assert_true(i < c->n && id == atoi(c->id[i]));
        assert_true(c->x[i] == fx);
        assert_close(c->tx[i], ftx, 0, 0.0051, "t_x of customer %d", id);
        assert_close(c->T[i], fT, 0, 0.0051, "T of customer %d", id);
        repeaters += fx > 0;
        i++;
    }
    fclose(f);
    free(sp);
    assert_int_equal(i, c->n);
    assert_int_equal(repeaters, 946);

    json_t *s = run_cdnow(dir, csv, "1997-10-01", "");
    assert_true(json_is_true(json_object_get(json_object_get(json_object_get(s, "models"), "bgnbd"), "converged")));
    assert_true(json_is_true(json_object_get(json_object_get(json_object_get(s, "models"), "gamma_gamma"), "converged")));
    double r = jget(s, "bgnbd", "r", NULL), al = jget(s, "bgnbd", "alpha", NULL),
           a = jget(s, "bgnbd", "a", NULL), b = jget(s, "bgnbd", "b", NULL);
    double p = jget(s, "gamma_gamma", "p", NULL), q = jget(s, "gamma_gamma", "q", NULL),
           v = jget(s, "gamma_gamma", "v", NULL);
    print_message("CDNOW via cvm: r %.6f alpha %.6f a %.6f b %.6f; p %.6f q %.6f v %.6f\n", r, al,
                  a, b, p, q, v);
    assert_3sf(r, 0.243, "r");
    assert_3sf(al, 4.414, "alpha");
    assert_3sf(a, 0.793, "a");
    assert_3sf(b, 2.426, "b");
    assert_3sf(p, 6.25, "p");
    assert_3sf(q, 3.74, "q");
    assert_3sf(v, 15.44, "v");
    assert_int_equal((int)jget(s, "bgnbd", "customers", NULL), 2357);
    assert_int_equal((int)jget(s, "gamma_gamma", "customers", NULL), 946);
    assert_true(jget(s, "bgnbd", "std_errors", "r") > 0);

    /* The same fit from the test's own summary: cvm's ingest and summary
     * gave the same x, t_x, T and m. */
    cvm_err err = {0};
    cvm_bgnbd_opts o;
    cvm_bgnbd_opts_default(&o);
    cvm_bgnbd_result br;
    cvm_bgnbd_data d = {c->n, c->x, c->tx, c->T};
    assert_int_equal(cvm_bgnbd_fit(&o, &d, &br, &err), CVM_OK);
    assert_close(br.params.r, r, 1e-6, 0, "r own summary");
    assert_close(br.params.alpha, al, 1e-6, 0, "alpha own summary");
    assert_close(br.params.a, a, 1e-5, 0, "a own summary");
    assert_close(br.params.b, b, 1e-5, 0, "b own summary");
    assert_close(br.loglik, jget(s, "bgnbd", "loglik", NULL), 1e-10, 0, "loglik");
    cvm_gammagamma_opts go;
    cvm_gammagamma_opts_default(&go);
    cvm_gammagamma_result gr;
    cvm_gammagamma_data gd = {c->n, c->x, c->m};
    assert_int_equal(cvm_gammagamma_fit(&go, &gd, &gr, &err), CVM_OK);
    assert_close(gr.params.p, p, 1e-5, 0, "p own summary");
    assert_close(gr.params.q, q, 1e-5, 0, "q own summary");
    assert_close(gr.params.v, v, 1e-5, 0, "v own summary");
    json_decref(s);

    /* Holdout: calibration to 1997-09-30, the 39 weeks after it. The
     * calibration fit is the one above; actual and predicted totals match
     * the test's own count and the sum of the conditional expectations. */
    s = run_cdnow(dir, csv, "1998-07-01", "--set cycles.calibration_end=1997-09-30");
    json_t *h = json_object_get(json_object_get(json_object_get(s, "models"), "bgnbd"), "holdout");
    assert_non_null(h);
    json_t *cal = json_object_get(h, "calibration");
    assert_close(json_number_value(json_object_get(cal, "r")), r, 1e-12, 0, "holdout calibration r");
    assert_close(json_number_value(json_object_get(cal, "b")), b, 1e-12, 0, "holdout calibration b");
    double actual = 0, pred = 0, mae = 0;
    for (i = 0; i < c->n; i++) {
        double e = cvm_bgnbd_expected(&br.params, c->x[i], c->tx[i], c->T[i], 39);
        actual += c->hold[i];
        pred += e;
        mae += fabs(e - c->hold[i]);
    }
    assert_close(json_number_value(json_object_get(h, "actual_total")), actual, 0, 1e-9, "actual");
    assert_close(json_number_value(json_object_get(h, "predicted_total")), pred, 1e-5, 0, "predicted");
    assert_close(json_number_value(json_object_get(h, "mae")), mae / (double)c->n, 1e-5, 0, "mae");
    assert_int_equal((int)json_integer_value(json_object_get(h, "holdout_days")), 273);
    json_decref(s);
    free(csv);
    free(c);
    cvm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_p_alive_hand),
        cmocka_unit_test(test_expected_closed_form),
        cmocka_unit_test(test_expected_vs_integration),
        cmocka_unit_test(test_discounted_vs_sum),
        cmocka_unit_test(test_hyp2f1_closed_forms),
        cmocka_unit_test(test_extremes_finite),
        cmocka_unit_test(test_gradient_numeric),
        cmocka_unit_test(test_recovery),
        cmocka_unit_test(test_threads_identical),
        cmocka_unit_test(test_degenerate_and_invalid),
        cmocka_unit_test(test_opts_checked),
        cmocka_unit_test(test_cdnow_published),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
