/* k-means and its metrics against known truths: hand-solved small cases, the
 * brute-force optimum of tiny sets, Lloyd's invariants, Hamerly and Elkan
 * against Lloyd bit for bit, 1 thread against 2, the metrics against naive
 * implementations and published values, planted segments from `cvm gen`,
 * and the stage end to end through the cvm binary. */
#include "testutil.h"

#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cluster_metrics.h"
#include "kmeans.h"

static const cvm_kmeans_algorithm algs[3] = {CVM_KMEANS_LLOYD, CVM_KMEANS_HAMERLY,
                                             CVM_KMEANS_ELKAN};

static cvm_kmeans *fit(const double *X, size_t n, size_t d, size_t k, cvm_kmeans_algorithm a,
                       uint64_t seed, int n_init, int threads)
{
    cvm_kmeans_params p;
    cvm_kmeans_params_default(&p);
    p.k = k;
    p.algorithm = a;
    p.seed = seed;
    p.n_init = n_init;
    p.threads = threads;
    cvm_kmeans *km = cvm_kmeans_new(&p);
    assert_non_null(km);
    cvm_err err = {0};
    if (cvm_kmeans_fit(km, X, n, d, NULL, &err) != CVM_OK)
        fail_msg("fit n=%zu d=%zu k=%zu %s: %s", n, d, k, cvm_kmeans_algorithm_name(a), err.msg);
    return km;
}

/* Gaussian blobs around k random centres spread `sep` sd apart. */
static void blobs(gsl_rng *r, size_t n, size_t d, size_t k, double sep, double *X, int32_t *truth)
{
    double *C = malloc(k * d * sizeof *C);
    assert_non_null(C);
    for (size_t j = 0; j < k * d; j++)
        C[j] = gsl_ran_gaussian(r, sep);
    for (size_t i = 0; i < n; i++) {
        size_t c = i % k;
        if (truth)
            truth[i] = (int32_t)c;
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = C[c * d + j] + gsl_ran_gaussian(r, 1);
    }
    free(C);
}

static double brute_inertia(const double *X, size_t n, size_t d, const double *C, const int32_t *lab)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double t = X[i * d + j] - C[(size_t)lab[i] * d + j];
            s += t * t;
        }
    return s;
}

/* ---------------------------------------------------------- small cases */

static void test_small_cases_exact(void **state)
{
    (void)state;
    /* 1-D: {0, 1} and {10, 11}; centres 0.5 and 10.5, inertia 4 x 0.25. */
    const double x1[4] = {0, 1, 10, 11};
    /* 2-D: the corners of two unit squares far apart; centres at their middles. */
    const double x2[16] = {0, 0, 0, 2, 2, 0, 2, 2, 100, 100, 100, 102, 102, 100, 102, 102};
    for (int a = 0; a < 3; a++) {
        cvm_kmeans *km = fit(x1, 4, 1, 2, algs[a], 1, 4, 1);
        const int32_t *l = cvm_kmeans_labels(km);
        const double *C = cvm_kmeans_centers(km);
        assert_int_equal(l[0], l[1]);
        assert_int_equal(l[2], l[3]);
        assert_int_not_equal(l[0], l[2]);
        assert_close(C[l[0]], 0.5, 0, 0, "%s centre of {0,1}", cvm_kmeans_algorithm_name(algs[a]));
        assert_close(C[l[2]], 10.5, 0, 0, "centre of {10,11}");
        assert_close(cvm_kmeans_inertia(km), 1.0, 0, 0, "inertia");
        cvm_kmeans_free(km);

        km = fit(x2, 8, 2, 2, algs[a], 3, 2, 1);
        l = cvm_kmeans_labels(km);
        C = cvm_kmeans_centers(km);
        for (int i = 1; i < 4; i++) {
            assert_int_equal(l[i], l[0]);
            assert_int_equal(l[4 + i], l[4]);
        }
        assert_close(C[l[0] * 2], 1, 0, 0, "x of the first square");
        assert_close(C[l[0] * 2 + 1], 1, 0, 0, "y of the first square");
        assert_close(C[l[4] * 2], 101, 0, 0, "x of the second square");
        assert_close(cvm_kmeans_inertia(km), 16.0, 0, 0, "8 corners at sqrt(2)");
        cvm_kmeans_free(km);

        /* k = 1: the mean; k = n: every point its own centre. */
        km = fit(x1, 4, 1, 1, algs[a], 1, 1, 1);
        assert_close(cvm_kmeans_centers(km)[0], 5.5, 0, 0, "mean");
        assert_close(cvm_kmeans_inertia(km), 2 * 5.5 * 5.5 + 2 * 4.5 * 4.5, 0, 0, "k=1 inertia");
        cvm_kmeans_free(km);
        km = fit(x1, 4, 1, 4, algs[a], 1, 1, 1);
        assert_close(cvm_kmeans_inertia(km), 0, 0, 0, "k=n inertia");
        cvm_kmeans_free(km);
    }
}

/* The usage example of kmeans.h, as written there. */
static void test_header_example(void **state)
{
    (void)state;
    const double X[12] = {0, 0, 0, 1, 1, 0, 9, 9, 9, 10, 10, 9};
    const double Y[4] = {0.2, 0.1, 9.5, 9.6};
    const size_t n = 6, d = 2, m = 2;
    int32_t out[2];
    cvm_err err = {0};

    cvm_kmeans_params p;
    cvm_kmeans_params_default(&p);
    p.k = 2;
    p.seed = 42;
    const char *why = cvm_kmeans_params_check(&p);   // NULL or a reason
    cvm_kmeans *km = cvm_kmeans_new(&p);              // NULL: bad params or ENOMEM
    if (cvm_kmeans_fit(km, X, n, d, NULL, &err) != CVM_OK)
        fail_msg("%s", err.msg);
    const double *C = cvm_kmeans_centers(km);         // k x d, borrowed
    const int32_t *lab = cvm_kmeans_labels(km);       // n labels of X, borrowed
    double j = cvm_kmeans_inertia(km);
    cvm_kmeans_predict(km, Y, m, d, out, NULL, &err); // nearest centre of new rows

    assert_null(why);
    assert_int_equal(out[0], lab[0]);
    assert_int_equal(out[1], lab[3]);
    assert_close(C[lab[0] * 2], 1.0 / 3, 1e-15, 0, "centre x");
    assert_close(j, 8.0 / 3, 1e-15, 0, "inertia: 4/3 per triangle");
    cvm_kmeans_free(km);
}

/* The global optimum of tiny sets by enumerating every partition; k-means
 * with restarts must reach it. */
static void test_brute_force_optimum(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    enum { N = 9, D = 2 };
    double X[N * D];
    for (int set = 0; set < 12; set++) {
        gsl_rng_set(r, 100 + set);
        for (int i = 0; i < N * D; i++)
            X[i] = gsl_ran_gaussian(r, 1) + (i / D % 3) * (set % 2 ? 3 : 1);
        for (size_t k = 2; k <= 3; k++) {
            double best = INFINITY;
            int32_t lab[N];
            long total = 1;
            for (int i = 0; i < N; i++)
                total *= (long)k;
            for (long code = 0; code < total; code++) {
                long c = code;
                int used[3] = {0, 0, 0};
                for (int i = 0; i < N; i++) {
                    lab[i] = (int32_t)(c % (long)k);
                    used[lab[i]] = 1;
                    c /= (long)k;
                }
                if (used[0] + used[1] + used[2] != (int)k)
                    continue;
                double C[3 * D] = {0}, cnt[3] = {0};
                for (int i = 0; i < N; i++) {
                    cnt[lab[i]]++;
                    for (int j = 0; j < D; j++)
                        C[lab[i] * D + j] += X[i * D + j];
                }
                for (size_t q = 0; q < k; q++)
                    for (int j = 0; j < D; j++)
                        C[q * D + j] /= cnt[q];
                double in = brute_inertia(X, N, D, C, lab);
                if (in < best)
                    best = in;
            }
            for (int a = 0; a < 3; a++) {
                cvm_kmeans *km = fit(X, N, D, k, algs[a], (uint64_t)set, 20, 1);
                assert_close(cvm_kmeans_inertia(km), best, 1e-12, 1e-12, "set %d k %zu %s", set, k,
                             cvm_kmeans_algorithm_name(algs[a]));
                cvm_kmeans_free(km);
            }
        }
    }
    gsl_rng_free(r);
}

/* ------------------------------------------------------------ invariants */

static void test_lloyd_invariants(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    for (int rep = 0; rep < 8; rep++) {
        size_t n = 500 + 700 * (size_t)rep, d = 1 + (size_t)rep % 4, k = 2 + (size_t)rep;
        gsl_rng_set(r, 7 + rep);
        double *X = malloc(n * d * sizeof *X);
        assert_non_null(X);
        /* Overlapping blobs: many iterations before convergence. */
        blobs(r, n, d, k, 1.5, X, NULL);
        for (int a = 0; a < 3; a++) {
            cvm_kmeans_params p;
            cvm_kmeans_params_default(&p);
            p.k = k;
            p.algorithm = algs[a];
            p.tol = 0;
            p.n_init = 3;
            p.seed = (uint64_t)rep;
            p.trace = true;
            cvm_kmeans *km = cvm_kmeans_new(&p);
            cvm_err err = {0};
            assert_int_equal(cvm_kmeans_fit(km, X, n, d, NULL, &err), CVM_OK);
            size_t len;
            const double *tr = cvm_kmeans_trace(km, &len);
            cvm_kmeans_stats st;
            cvm_kmeans_get_stats(km, &st);
            assert_true(st.converged);
            assert_true(len >= 2);
            for (size_t t = 1; t < len; t++)
                if (tr[t] > tr[t - 1] * (1 + 1e-13))
                    fail_msg("rep %d %s: inertia rose at iteration %zu: %.17g -> %.17g", rep,
                             cvm_kmeans_algorithm_name(algs[a]), t, tr[t - 1], tr[t]);
            assert_close(tr[len - 1], cvm_kmeans_inertia(km), 0, 0, "last trace = inertia");
            /* Every point at its nearest centre (ties: the lowest index). */
            const double *C = cvm_kmeans_centers(km);
            const int32_t *l = cvm_kmeans_labels(km);
            for (size_t i = 0; i < n; i++) {
                double own = 0;
                for (size_t j = 0; j < d; j++)
                    own += (X[i * d + j] - C[l[i] * d + j]) * (X[i * d + j] - C[l[i] * d + j]);
                for (size_t c = 0; c < k; c++) {
                    double e = 0;
                    for (size_t j = 0; j < d; j++)
                        e += (X[i * d + j] - C[c * d + j]) * (X[i * d + j] - C[c * d + j]);
                    if (e < own || (e == own && c < (size_t)l[i]))
                        fail_msg("rep %d %s: point %zu labelled %d but centre %zu is nearer", rep,
                                 cvm_kmeans_algorithm_name(algs[a]), i, l[i], c);
                }
            }
            assert_close(brute_inertia(X, n, d, C, l), cvm_kmeans_inertia(km), 1e-12, 0,
                         "inertia recomputed");
            /* Strict convergence (tol 0): the centres are their clusters' means. */
            for (size_t c = 0; c < k; c++) {
                double m[8] = {0};
                size_t cnt = 0;
                for (size_t i = 0; i < n; i++)
                    if ((size_t)l[i] == c) {
                        cnt++;
                        for (size_t j = 0; j < d; j++)
                            m[j] += X[i * d + j];
                    }
                assert_true(cnt > 0);
                for (size_t j = 0; j < d; j++)
                    assert_close(C[c * d + j], m[j] / (double)cnt, 1e-9, 1e-12, "centre %zu mean", c);
            }
            /* predict agrees with the labels. */
            int32_t *pl = malloc(n * sizeof *pl);
            assert_int_equal(cvm_kmeans_predict(km, X, n, d, pl, NULL, &err), CVM_OK);
            assert_memory_equal(pl, l, n * sizeof *pl);
            free(pl);
            cvm_kmeans_free(km);
        }
        free(X);
    }
    gsl_rng_free(r);
}

/* An initial centre far from everything gets no point: it is re-seeded
 * with the point farthest from its centre, and every cluster ends non-empty. */
static void test_empty_cluster_reseeded(void **state)
{
    (void)state;
    const double X[6] = {0, 1, 2, 10, 11, 12};
    const double init[3] = {1, 11, 100};
    for (int a = 0; a < 3; a++) {
        cvm_kmeans_params p;
        cvm_kmeans_params_default(&p);
        p.k = 3;
        p.algorithm = algs[a];
        p.tol = 0;
        p.trace = true;
        cvm_kmeans *km = cvm_kmeans_new(&p);
        cvm_err err = {0};
        assert_int_equal(cvm_kmeans_set_init(km, init, 1, &err), CVM_OK);
        assert_int_equal(cvm_kmeans_fit(km, X, 6, 1, NULL, &err), CVM_OK);
        cvm_kmeans_stats st;
        cvm_kmeans_get_stats(km, &st);
        assert_true(st.relocations >= 1);
        /* Distances to own centres are 1 0 1 1 0 1: the farthest, lowest row
         * is point 0, which becomes the third centre; Lloyd then settles on
         * {0}, {1, 2}, {10, 11, 12}: inertia 0.5 + 2. */
        const int32_t *l = cvm_kmeans_labels(km);
        assert_int_equal(l[0], 2);
        assert_int_equal(l[1], 0);
        assert_int_equal(l[2], 0);
        assert_int_equal(l[3], 1);
        assert_close(cvm_kmeans_inertia(km), 2.5, 1e-15, 0, "%s", cvm_kmeans_algorithm_name(algs[a]));
        size_t len;
        const double *tr = cvm_kmeans_trace(km, &len);
        for (size_t t = 1; t < len; t++)
            assert_true(tr[t] <= tr[t - 1]);
        cvm_kmeans_free(km);
    }
    /* Fewer distinct points than k: no crash, duplicate centres, inertia 0. */
    const double two[6] = {3, 3, 3, 7, 7, 7};
    cvm_kmeans *km = fit(two, 6, 1, 3, CVM_KMEANS_HAMERLY, 1, 3, 1);
    assert_close(cvm_kmeans_inertia(km), 0, 0, 0, "two distinct values");
    cvm_kmeans_free(km);
}

/* Integer weights act as repeated rows. */
static void test_weights_are_repeats(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 11);
    enum { N = 300, D = 2, K = 3 };
    double X[N * D], w[N];
    blobs(r, N, D, K, 8, X, NULL);
    size_t m = 0;
    for (int i = 0; i < N; i++) {
        w[i] = (double)(1 + gsl_rng_uniform_int(r, 3));
        m += (size_t)w[i];
    }
    double *Y = malloc(m * D * sizeof *Y);
    size_t o = 0;
    for (int i = 0; i < N; i++)
        for (int c = 0; c < (int)w[i]; c++, o++)
            memcpy(Y + o * D, X + i * D, D * sizeof *Y);
    for (int a = 0; a < 3; a++) {
        cvm_kmeans_params p;
        cvm_kmeans_params_default(&p);
        p.k = K;
        p.algorithm = algs[a];
        p.tol = 0;
        cvm_kmeans *kw = cvm_kmeans_new(&p), *kr = cvm_kmeans_new(&p);
        cvm_err err = {0};
        assert_int_equal(cvm_kmeans_fit(kw, X, N, D, w, &err), CVM_OK);
        assert_int_equal(cvm_kmeans_fit(kr, Y, m, D, NULL, &err), CVM_OK);
        assert_close(cvm_kmeans_inertia(kw), cvm_kmeans_inertia(kr), 1e-10, 0, "weighted = repeated");
        /* The same centres, in some order. */
        for (int c = 0; c < K; c++) {
            double best = INFINITY;
            for (int q = 0; q < K; q++) {
                double e = 0;
                for (int j = 0; j < D; j++) {
                    double t = cvm_kmeans_centers(kw)[c * D + j] - cvm_kmeans_centers(kr)[q * D + j];
                    e += t * t;
                }
                if (e < best)
                    best = e;
            }
            assert_true(best < 1e-18);
        }
        cvm_kmeans_free(kw);
        cvm_kmeans_free(kr);
    }
    free(Y);
    gsl_rng_free(r);
}

/* ------------------------------------------------ accelerations = Lloyd */

static void test_bounds_give_lloyd(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    static const size_t ns[] = {1, 5, 60, 333, 2000, 9000};
    static const size_t ds[] = {1, 2, 3, 8, 20};
    static const size_t ks[] = {1, 2, 3, 5, 12, 40};
    size_t cases = 0;
    uint64_t lloyd_ev = 0, hamerly_ev = 0, elkan_ev = 0;
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (size_t b = 0; b < sizeof ds / sizeof ds[0]; b++)
            for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
                size_t n = ns[a], d = ds[b], k = ks[c];
                if (k > n || n * d * k > 4000000)
                    continue;
                gsl_rng_set(r, 1000 + cases);
                double *X = malloc(n * d * sizeof *X);
                int kind = (int)(cases % 3);
                if (kind == 0) {
                    blobs(r, n, d, k, 3, X, NULL);
                } else if (kind == 1) {
                    for (size_t i = 0; i < n * d; i++)
                        X[i] = gsl_rng_uniform(r);
                } else {
                    /* A small integer grid: many exact distance ties. */
                    for (size_t i = 0; i < n * d; i++)
                        X[i] = (double)gsl_rng_uniform_int(r, 4);
                }
                cvm_kmeans *m[3];
                for (int q = 0; q < 3; q++) {
                    cvm_kmeans_params p;
                    cvm_kmeans_params_default(&p);
                    p.k = k;
                    p.algorithm = algs[q];
                    p.seed = cases;
                    p.n_init = 2;
                    p.tol = (cases % 2) ? 0 : 1e-4;
                    p.threads = 1;
                    m[q] = cvm_kmeans_new(&p);
                    cvm_err err = {0};
                    if (cvm_kmeans_fit(m[q], X, n, d, NULL, &err) != CVM_OK)
                        fail_msg("n=%zu d=%zu k=%zu: %s", n, d, k, err.msg);
                }
                cvm_kmeans_stats s0, s;
                cvm_kmeans_get_stats(m[0], &s0);
                lloyd_ev += s0.distance_evals;
                for (int q = 1; q < 3; q++) {
                    cvm_kmeans_get_stats(m[q], &s);
                    *(q == 1 ? &hamerly_ev : &elkan_ev) += s.distance_evals;
                    if (memcmp(cvm_kmeans_labels(m[0]), cvm_kmeans_labels(m[q]), n * sizeof(int32_t)) != 0 ||
                        memcmp(cvm_kmeans_centers(m[0]), cvm_kmeans_centers(m[q]), k * d * sizeof(double)) != 0 ||
                        cvm_kmeans_inertia(m[0]) != cvm_kmeans_inertia(m[q]) || s0.n_iter != s.n_iter)
                        fail_msg("%s differs from lloyd: n=%zu d=%zu k=%zu data %d (iter %d vs %d, "
                                 "inertia %.17g vs %.17g)", cvm_kmeans_algorithm_name(algs[q]), n,
                                 d, k, kind, s0.n_iter, s.n_iter, cvm_kmeans_inertia(m[0]),
                                 cvm_kmeans_inertia(m[q]));
                }
                for (int q = 0; q < 3; q++)
                    cvm_kmeans_free(m[q]);
                free(X);
                cases++;
            }
    assert_true(cases > 100);
    /* And they are accelerations: far fewer distances than Lloyd. */
    assert_true(hamerly_ev * 2 < lloyd_ev);
    assert_true(elkan_ev * 2 < lloyd_ev);
    gsl_rng_free(r);
}

static void test_threads_bit_identical(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 5);
    size_t n = 60000, d = 4, k = 6;
    double *X = malloc(n * d * sizeof *X), *w = malloc(n * sizeof *w);
    blobs(r, n, d, k, 2, X, NULL);
    for (size_t i = 0; i < n; i++)
        w[i] = gsl_rng_uniform(r) + 0.5;
    /* n_init 1: both threads share each restart's blocks; n_init 3: each
     * thread runs whole restarts. */
    for (int a = 0; a < 3; a++)
        for (int variant = 0; variant < 4; variant++) {
            int weighted = variant & 1, n_init = variant & 2 ? 3 : 1;
            cvm_kmeans *m[2];
            for (int t = 0; t < 2; t++) {
                cvm_kmeans_params p;
                cvm_kmeans_params_default(&p);
                p.k = k;
                p.algorithm = algs[a];
                p.n_init = n_init;
                p.seed = 9;
                p.threads = t + 1;
                m[t] = cvm_kmeans_new(&p);
                cvm_err err = {0};
                assert_int_equal(cvm_kmeans_fit(m[t], X, n, d, weighted ? w : NULL, &err), CVM_OK);
            }
            assert_memory_equal(cvm_kmeans_labels(m[0]), cvm_kmeans_labels(m[1]), n * sizeof(int32_t));
            assert_memory_equal(cvm_kmeans_centers(m[0]), cvm_kmeans_centers(m[1]), k * d * sizeof(double));
            double i0 = cvm_kmeans_inertia(m[0]), i1 = cvm_kmeans_inertia(m[1]);
            assert_memory_equal(&i0, &i1, sizeof i0);
            cvm_kmeans_free(m[0]);
            cvm_kmeans_free(m[1]);
        }
    /* The sampled silhouette too. */
    cvm_kmeans *km = fit(X, n, d, k, CVM_KMEANS_AUTO, 1, 1, 2);
    double s1, s2;
    cvm_err err = {0};
    assert_int_equal(cvm_cluster_silhouette(X, n, d, cvm_kmeans_labels(km), k, 3000, 4, 1, &s1, &err), CVM_OK);
    assert_int_equal(cvm_cluster_silhouette(X, n, d, cvm_kmeans_labels(km), k, 3000, 4, 2, &s2, &err), CVM_OK);
    assert_memory_equal(&s1, &s2, sizeof s1);
    cvm_kmeans_free(km);
    free(X);
    free(w);
    gsl_rng_free(r);
}

/* --------------------------------------------------------------- metrics */

static double naive_silhouette(const double *X, size_t n, size_t d, const int32_t *l, size_t k)
{
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double a = 0, b = INFINITY;
        size_t na = 0;
        for (size_t c = 0; c < k; c++) {
            double s = 0;
            size_t cnt = 0;
            for (size_t j = 0; j < n; j++) {
                if ((size_t)l[j] != c || j == i)
                    continue;
                double e = 0;
                for (size_t q = 0; q < d; q++)
                    e += (X[i * d + q] - X[j * d + q]) * (X[i * d + q] - X[j * d + q]);
                s += sqrt(e);
                cnt++;
            }
            if (c == (size_t)l[i]) {
                a = s;
                na = cnt;
            } else if (cnt > 0 && s / (double)cnt < b) {
                b = s / (double)cnt;
            }
        }
        if (na == 0)
            continue; /* singleton: 0 */
        a /= (double)na;
        total += (b - a) / (a > b ? a : b);
    }
    return total / (double)n;
}

static void test_metrics_by_hand_and_naive(void **state)
{
    (void)state;
    cvm_err err = {0};
    double v;
    /* Worked by hand: {0, 1 | 4, 5}. a = 1 for all; b = 4.5, 3.5, 3.5, 4.5. */
    const double x[4] = {0, 1, 4, 5};
    const int32_t l[4] = {0, 0, 1, 1};
    assert_int_equal(cvm_cluster_silhouette(x, 4, 1, l, 2, 0, 0, 1, &v, &err), CVM_OK);
    assert_close(v, (3.5 / 4.5 + 2.5 / 3.5) / 2, 1e-15, 0, "silhouette");
    /* B = 2*2^2 + 2*2^2 = 16, W = 4 * 0.25 = 1: (16 / 1) / (1 / 2) = 32. */
    assert_int_equal(cvm_cluster_calinski_harabasz(x, 4, 1, l, 2, &v, &err), CVM_OK);
    assert_close(v, 32, 1e-15, 0, "calinski_harabasz");
    /* S = 0.5 each, M = 4: (0.5 + 0.5) / 4. */
    assert_int_equal(cvm_cluster_davies_bouldin(x, 4, 1, l, 2, &v, &err), CVM_OK);
    assert_close(v, 0.25, 1e-15, 0, "davies_bouldin");
    /* Undefined: one cluster. */
    const int32_t one[4] = {0, 0, 0, 0};
    assert_int_equal(cvm_cluster_silhouette(x, 4, 1, one, 1, 0, 0, 1, &v, &err), CVM_OK);
    assert_true(isnan(v));
    assert_int_equal(cvm_cluster_calinski_harabasz(x, 4, 1, one, 1, &v, &err), CVM_OK);
    assert_true(isnan(v));
    /* A label outside 0..k-1 is an argument error. */
    const int32_t bad[4] = {0, 0, 1, 2};
    assert_int_equal(cvm_cluster_davies_bouldin(x, 4, 1, bad, 2, &v, &err), CVM_EINVAL);

    /* Published values: scikit-learn's adjusted_rand_score documentation. */
    struct { int32_t a[4], b[4]; double ari; } ref[] = {
        {{0, 0, 1, 1}, {0, 0, 1, 1}, 1.0},
        {{0, 0, 1, 1}, {1, 1, 0, 0}, 1.0},
        {{0, 0, 1, 2}, {0, 0, 1, 1}, 0.5714285714285714},
        {{0, 0, 1, 1}, {0, 0, 1, 2}, 0.5714285714285714},
        {{0, 0, 0, 0}, {0, 1, 2, 3}, 0.0},
        {{0, 0, 1, 1}, {0, 1, 0, 1}, -0.5},
    };
    for (size_t i = 0; i < sizeof ref / sizeof ref[0]; i++) {
        assert_int_equal(cvm_cluster_ari(ref[i].a, ref[i].b, 4, &v, &err), CVM_OK);
        assert_close(v, ref[i].ari, 1e-12, 1e-15, "ari case %zu", i);
    }
    /* Sparse label values are fine; a negative one is not. */
    const int32_t sa[4] = {7, 7, 1000000, 1000000}, sb[4] = {0, 0, 5, 5};
    assert_int_equal(cvm_cluster_ari(sa, sb, 4, &v, &err), CVM_OK);
    assert_close(v, 1, 0, 0, "sparse labels");
    const int32_t neg[4] = {0, -1, 0, 0};
    assert_int_equal(cvm_cluster_ari(neg, sb, 4, &v, &err), CVM_EINVAL);

    /* Silhouette against the naive definition on random partitions, exact
     * and on a sample (the naive one on the same seeded subset). */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    for (int rep = 0; rep < 6; rep++) {
        size_t n = 50 + 40 * (size_t)rep, d = 1 + (size_t)rep % 3, k = 2 + (size_t)rep % 4;
        gsl_rng_set(r, 50 + rep);
        double *X = malloc(n * d * sizeof *X);
        int32_t *lab = malloc(n * sizeof *lab);
        blobs(r, n, d, k, 2, X, NULL);
        for (size_t i = 0; i < n; i++)
            lab[i] = (int32_t)gsl_rng_uniform_int(r, k);
        lab[0] = 0;
        lab[1] = 1; /* at least two clusters */
        assert_int_equal(cvm_cluster_silhouette(X, n, d, lab, k, 0, 0, 2, &v, &err), CVM_OK);
        assert_close(v, naive_silhouette(X, n, d, lab, k), 1e-12, 1e-14, "rep %d exact", rep);
        size_t m = n / 3;
        gsl_rng *s = gsl_rng_alloc(gsl_rng_mt19937);
        gsl_rng_set(s, 77);
        double *P = malloc(m * d * sizeof *P);
        int32_t *pl = malloc(m * sizeof *pl);
        size_t j = 0;
        for (size_t i = 0; i < n && j < m; i++)
            if ((double)(n - i) * gsl_rng_uniform(s) < (double)(m - j)) {
                memcpy(P + j * d, X + i * d, d * sizeof *P);
                pl[j++] = lab[i];
            }
        assert_int_equal(j, m);
        assert_int_equal(cvm_cluster_silhouette(X, n, d, lab, k, m, 77, 2, &v, &err), CVM_OK);
        assert_close(v, naive_silhouette(P, m, d, pl, k), 1e-12, 1e-14, "rep %d sampled", rep);
        /* CH and DB against their definitions written out here. */
        double *C = calloc(k * d, sizeof *C), *mean = calloc(d, sizeof *mean);
        double *cnt = calloc(k, sizeof *cnt);
        for (size_t i = 0; i < n; i++) {
            cnt[lab[i]]++;
            for (size_t q = 0; q < d; q++) {
                C[lab[i] * d + q] += X[i * d + q];
                mean[q] += X[i * d + q] / (double)n;
            }
        }
        for (size_t c = 0; c < k; c++)
            for (size_t q = 0; q < d; q++)
                C[c * d + q] /= cnt[c];
        double B = 0, W = 0;
        for (size_t c = 0; c < k; c++)
            for (size_t q = 0; q < d; q++)
                B += cnt[c] * (C[c * d + q] - mean[q]) * (C[c * d + q] - mean[q]);
        W = brute_inertia(X, n, d, C, lab);
        assert_int_equal(cvm_cluster_calinski_harabasz(X, n, d, lab, k, &v, &err), CVM_OK);
        assert_close(v, (B / (double)(k - 1)) / (W / (double)(n - k)), 1e-10, 0, "rep %d CH", rep);
        double S[8] = {0}, db = 0;
        for (size_t i = 0; i < n; i++) {
            double e = 0;
            for (size_t q = 0; q < d; q++)
                e += (X[i * d + q] - C[lab[i] * d + q]) * (X[i * d + q] - C[lab[i] * d + q]);
            S[lab[i]] += sqrt(e) / cnt[lab[i]];
        }
        for (size_t a = 0; a < k; a++) {
            double worst = 0;
            for (size_t b = 0; b < k; b++) {
                if (a == b)
                    continue;
                double e = 0;
                for (size_t q = 0; q < d; q++)
                    e += (C[a * d + q] - C[b * d + q]) * (C[a * d + q] - C[b * d + q]);
                double rr = (S[a] + S[b]) / sqrt(e);
                if (rr > worst)
                    worst = rr;
            }
            db += worst / (double)k;
        }
        assert_int_equal(cvm_cluster_davies_bouldin(X, n, d, lab, k, &v, &err), CVM_OK);
        assert_close(v, db, 1e-10, 0, "rep %d DB", rep);
        /* ARI against the pair-counting definition. */
        int32_t *lab2 = malloc(n * sizeof *lab2);
        for (size_t i = 0; i < n; i++)
            lab2[i] = gsl_rng_uniform(r) < 0.7 ? lab[i] : (int32_t)gsl_rng_uniform_int(r, k + 1);
        double agree_both = 0, same_a = 0, same_b = 0, pairs = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t q = i + 1; q < n; q++) {
                int sa_ = lab[i] == lab[q], sb_ = lab2[i] == lab2[q];
                agree_both += sa_ && sb_;
                same_a += sa_;
                same_b += sb_;
                pairs++;
            }
        double expected = same_a * same_b / pairs;
        double ari = (agree_both - expected) / ((same_a + same_b) / 2 - expected);
        assert_int_equal(cvm_cluster_ari(lab, lab2, n, &v, &err), CVM_OK);
        assert_close(v, ari, 1e-12, 1e-14, "rep %d ARI", rep);
        free(lab2);
        free(C);
        free(mean);
        free(cnt);
        free(P);
        free(pl);
        gsl_rng_free(s);
        free(X);
        free(lab);
    }
    gsl_rng_free(r);
}

/* ------------------------------------------------------------ choosing k */

static void test_select_k_on_blobs(void **state)
{
    (void)state;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 21);
    size_t n = 4000, d = 3;
    double *X = malloc(n * d * sizeof *X);
    int32_t *truth = malloc(n * sizeof *truth);
    /* Four well separated blobs at fixed places. */
    static const double C[4][3] = {{0, 0, 0}, {12, 0, 0}, {0, 12, 0}, {0, 0, 12}};
    for (size_t i = 0; i < n; i++) {
        truth[i] = (int32_t)(i % 4);
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = C[i % 4][j] + gsl_ran_gaussian(r, 1);
    }
    for (int c = CVM_KMEANS_SILHOUETTE; c <= CVM_KMEANS_STABILITY; c++) {
        cvm_kmeans_params p;
        cvm_kmeans_params_default(&p);
        p.seed = 3;
        p.n_init = 4;
        cvm_kmeans_select_params sp;
        cvm_kmeans_select_params_default(&sp);
        sp.k_min = 2;
        sp.k_max = 8;
        sp.criterion = (cvm_kmeans_criterion)c;
        sp.silhouette_sample = 1500;
        cvm_kmeans_kscore t[7];
        cvm_kmeans *best = NULL;
        cvm_err err = {0};
        assert_int_equal(cvm_kmeans_select(&p, &sp, X, n, d, t, &best, &err), CVM_OK);
        if (cvm_kmeans_k(best) != 4)
            fail_msg("%s chose k = %zu", cvm_kmeans_criterion_name(sp.criterion), cvm_kmeans_k(best));
        int chosen = 0;
        for (int i = 0; i < 7; i++) {
            chosen += t[i].chosen;
            assert_int_equal(t[i].k, i + 2);
            if (i > 0)
                assert_true(t[i].inertia <= t[i - 1].inertia * (1 + 1e-12));
        }
        assert_int_equal(chosen, 1);
        assert_true(t[2].chosen);
        assert_close(t[2].stability, 1, 0, 0, "stability at the true k");
        double ari;
        assert_int_equal(cvm_cluster_ari(truth, cvm_kmeans_labels(best), n, &ari, &err), CVM_OK);
        assert_true(ari > 0.99);
        cvm_kmeans_free(best);
    }
    /* The elbow rule on a table written by hand: the knee is at k = 4. */
    cvm_kmeans_kscore t[5] = {{.k = 2, .inertia = 100}, {.k = 3, .inertia = 60},
                              {.k = 4, .inertia = 20}, {.k = 5, .inertia = 17},
                              {.k = 6, .inertia = 15}};
    assert_int_equal(cvm_kmeans_pick(t, 5, CVM_KMEANS_ELBOW), 2);
    /* Stability: the largest stable k, else the most stable one. */
    double st[5] = {1.0, 0.5, 0.95, 0.8, 0.85};
    for (int i = 0; i < 5; i++)
        t[i].stability = st[i];
    assert_int_equal(cvm_kmeans_pick(t, 5, CVM_KMEANS_STABILITY), 2);
    t[0].stability = t[2].stability = 0.7;
    assert_int_equal(cvm_kmeans_pick(t, 5, CVM_KMEANS_STABILITY), 4);
    /* The others: max silhouette and CH, min DB, ties to the lower k. */
    double sil[5] = {0.2, 0.6, 0.6, 0.1, NAN}, db[5] = {1, 0.5, 0.4, 0.4, 2};
    for (int i = 0; i < 5; i++) {
        t[i].silhouette = sil[i];
        t[i].calinski_harabasz = sil[i] * 10;
        t[i].davies_bouldin = db[i];
    }
    assert_int_equal(cvm_kmeans_pick(t, 5, CVM_KMEANS_SILHOUETTE), 1);
    assert_int_equal(cvm_kmeans_pick(t, 5, CVM_KMEANS_CALINSKI_HARABASZ), 1);
    assert_int_equal(cvm_kmeans_pick(t, 5, CVM_KMEANS_DAVIES_BOULDIN), 2);
    free(X);
    free(truth);
    gsl_rng_free(r);
}

/* ---------------------------------------------------------------- errors */

static long budget, allocs;
static void *f_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return allocs++ >= budget ? NULL : malloc(n);
}
static void *f_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return allocs++ >= budget ? NULL : realloc(p, n);
}
static void f_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static void test_errors_and_out_of_memory(void **state)
{
    (void)state;
    cvm_kmeans_params p;
    cvm_kmeans_params_default(&p);
    p.k = 0;
    assert_non_null(cvm_kmeans_params_check(&p));
    assert_null(cvm_kmeans_new(&p));
    p.k = 3;
    p.tol = -1;
    assert_null(cvm_kmeans_new(&p));
    cvm_kmeans_params_default(&p);
    p.k = 3;
    cvm_kmeans_free(NULL);
    cvm_kmeans *km = cvm_kmeans_new(&p);
    cvm_err err = {0};
    double X[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    int32_t lab[8];
    assert_int_equal(cvm_kmeans_predict(km, X, 8, 1, lab, NULL, &err), CVM_EINVAL);
    assert_int_equal(cvm_kmeans_fit(km, X, 2, 1, NULL, &err), CVM_EINVAL);
    assert_non_null(strstr(err.msg, "k = 3"));
    X[5] = NAN;
    assert_int_equal(cvm_kmeans_fit(km, X, 8, 1, NULL, &err), CVM_EINVAL);
    assert_non_null(strstr(err.msg, "row 5"));
    assert_null(cvm_kmeans_labels(km));
    X[5] = 5;
    double w[8] = {1, 1, 1, 1, 1, -1, 1, 1};
    assert_int_equal(cvm_kmeans_fit(km, X, 8, 1, w, &err), CVM_EINVAL);
    assert_non_null(strstr(err.msg, "row 5"));
    assert_int_equal(cvm_kmeans_fit(km, X, 8, 1, NULL, &err), CVM_OK);
    assert_int_equal(cvm_kmeans_predict(km, X, 4, 2, lab, NULL, &err), CVM_EINVAL);
    cvm_kmeans_free(km);

    /* Every allocation failure comes back as ENOMEM, with nothing leaked
     * (the sanitizer build checks the leaks). */
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    double Y[200 * 2];
    blobs(r, 200, 2, 3, 5, Y, NULL);
    cvm_allocator a = {f_malloc, f_realloc, f_free, NULL};
    int ok = 0, nomem = 0;
    for (budget = 0; budget < 2000 && ok == 0; budget++) {
        allocs = 0;
        cvm_set_allocator(&a);
        cvm_kmeans_params q;
        cvm_kmeans_params_default(&q);
        q.k = 3;
        q.trace = true;
        cvm_kmeans_select_params sp;
        cvm_kmeans_select_params_default(&sp);
        sp.k_min = 2;
        sp.k_max = 3;
        sp.stability_runs = 1;
        cvm_kmeans_kscore t[2];
        cvm_kmeans *best = NULL;
        int rc = cvm_kmeans_select(&q, &sp, Y, 200, 2, t, &best, &err);
        cvm_set_allocator(NULL);
        if (rc == CVM_OK) {
            ok++;
            assert_non_null(best);
            cvm_kmeans_free(best);
        } else {
            if (rc != CVM_ENOMEM)
                fail_msg("budget %ld: status %d (%s), not ENOMEM", budget, rc, err.msg);
            assert_null(best);
            nomem++;
        }
    }
    assert_int_equal(ok, 1);
    assert_true(nomem > 20);
    gsl_rng_free(r);
}

/* ------------------------------------------------------- through the CLI */

static char *dir;

static int setup(void **state)
{
    (void)state;
    gsl_set_error_handler_off();
    dir = cvm_test_mkdtemp("kmeans");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cvm_test_rmtree(dir);
    free(dir);
    return 0;
}

/* Column index of name in a CSV header line. */
static int col_index(const char *header, const char *name)
{
    int i = 0;
    const char *p = header;
    size_t len = strlen(name);
    while (*p && *p != '\n') {
        const char *e = p + strcspn(p, ",\n");
        if ((size_t)(e - p) == len && strncmp(p, name, len) == 0)
            return i;
        i++;
        p = *e == ',' ? e + 1 : e;
    }
    return -1;
}

/* Field i of a simple CSV line (no quoted commas before it) into out. */
static void field(const char *line, int i, char *out, size_t cap)
{
    const char *p = line;
    for (int c = 0; c < i; c++) {
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"'))
                p += *p == '"' ? 2 : 1;
            p++;
        }
        p += strcspn(p, ",\n");
        if (*p == ',')
            p++;
    }
    size_t n = strcspn(p, ",\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static char *read_in(const char *sub)
{
    char *p = cvm_test_path(dir, sub);
    char *s = cvm_test_read_file(p, NULL);
    if (s == NULL)
        fail_msg("%s is missing", p);
    free(p);
    return s;
}

static const char job_yaml[] =
    "job: {name: km, seed: 42}\n"
    "input:\n"
    "  transactions: {path: data/transactions.csv}\n"
    "  customers: {path: data/customers.csv}\n"
    "  products: {path: data/products.csv}\n"
    "cleaning:\n"
    "  return_order_prefix: RT\n"
    "  exclude_products: [POSTAGE, FEE-HANDLING, ADJ]\n"
    "  max_reject_ratio: 0.05\n";

/* Planted segments: k-means on log1p + z-scored RFM finds them. */
static void test_planted_segments(void **state)
{
    (void)state;
    assert_int_equal(cvm_test_system("'%s' gen --customers 3000 --seed 5 --bad-rows 0 --out '%s/data' > /dev/null 2>&1",
                                     cvm_test_binary(), dir), 0);
    char *p = cvm_test_path(dir, "job.yaml");
    cvm_test_write_file(p, job_yaml);
    free(p);
    for (int mode = 0; mode < 2; mode++) {
        /* Fixed k = 4, then k = auto with the default criterion. */
        assert_int_equal(cvm_test_system("cd '%s' && '%s' run job.yaml --out out%d --quiet --set kmeans.enabled=true %s "
                                         "> /dev/null 2> err.txt", dir, cvm_test_binary(), mode,
                                         mode == 0 ? "--set kmeans.k=4"
                                                   : "--set kmeans.k=auto --set kmeans.criterion=calinski_harabasz"), 0);
        char sub[64];
        snprintf(sub, sizeof sub, "out%d/latest/segments.csv", mode);
        char *seg = read_in(sub);
        char *truth = read_in("data/truth_customers.csv");
        int ci = col_index(seg, "cluster"), ii = col_index(seg, "customer_id");
        assert_true(ci > 0 && ii == 0);
        /* segments.csv rows are sorted by id (bytewise): look truth ids up. */
        size_t cap = 8000, n = 0, ns = 0;
        char (*ids)[24] = malloc(cap * sizeof *ids);
        int *cls = malloc(cap * sizeof *cls);
        for (char *l = strchr(seg, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
            char cl[16];
            assert_true(ns < cap);
            field(l, 0, ids[ns], sizeof ids[ns]);
            field(l, ci, cl, sizeof cl);
            cls[ns++] = cl[0] ? atoi(cl) : -1;
        }
        int32_t *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
        static const char *const names[4] = {"champion", "steady", "occasional", "lapsed"};
        for (char *tl = strchr(truth, '\n') + 1; *tl; tl = strchr(tl, '\n') + 1) {
            char id[24], sname[32];
            field(tl, 0, id, sizeof id);
            field(tl, 2, sname, sizeof sname);
            char (*hit)[24] = bsearch(id, ids, ns, sizeof *ids, (int (*)(const void *, const void *))strcmp);
            assert_non_null(hit);
            int cl = cls[hit - ids];
            assert_true(cl >= 1);
            int s = -1;
            for (int q = 0; q < 4; q++)
                if (strcmp(sname, names[q]) == 0)
                    s = q;
            assert_true(s >= 0);
            a[n] = s;
            b[n] = cl;
            n++;
        }
        free(ids);
        free(cls);
        assert_true(n > 2800);
        double ari;
        cvm_err err = {0};
        assert_int_equal(cvm_cluster_ari(a, b, n, &ari, &err), CVM_OK);
        snprintf(sub, sizeof sub, "out%d/latest/summary.json", mode);
        char *sj = read_in(sub);
        json_error_t je;
        json_t *j = json_loads(sj, 0, &je);
        assert_non_null(j);
        json_t *kmj = json_object_get(json_object_get(j, "models"), "kmeans");
        assert_non_null(kmj);
        long k = (long)json_integer_value(json_object_get(kmj, "k"));
        if (mode == 0) {
            /* The planted truth: four segments. */
            assert_int_equal(k, 4);
            if (!(ari >= 0.9))
                fail_msg("k = 4: ARI %.4f against the planted segments", ari);
        } else {
            /* auto: the chosen k is the row of kmeans_k.csv with the highest
             * Calinski-Harabasz, and the labels are that fit's. */
            char *kt = read_in("out1/latest/kmeans_k.csv");
            double best = -1;
            long best_k = 0;
            for (char *l = strchr(kt, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
                char v[32];
                field(l, 3, v, sizeof v);
                if (atof(v) > best) {
                    best = atof(v);
                    field(l, 0, v, sizeof v);
                    best_k = atol(v);
                }
            }
            assert_int_equal(k, best_k);
            long maxc = 0;
            for (size_t i = 0; i < n; i++)
                maxc = b[i] > maxc ? b[i] : maxc;
            assert_int_equal(maxc, k);
            free(kt);
        }
        json_decref(j);
        free(sj);
        free(a);
        free(b);
        free(seg);
        free(truth);
    }
}

/* The stage on the sample data: its files, its columns, and the same bytes
 * with 1 and 2 threads. */
static void test_stage_end_to_end(void **state)
{
    (void)state;
    for (int t = 1; t <= 2; t++)
        assert_int_equal(cvm_test_system("'%s' run '%s/jobs/nightly.yaml' --out '%s/t%d' --quiet --threads %d "
                                         "--set kmeans.enabled=true --set kmeans.k=auto > /dev/null 2> '%s/err.txt'",
                                         cvm_test_binary(), cvm_test_source_dir(), dir, t, t, dir), 0);
    for (int f = 0; f < 3; f++) {
        static const char *const files[3] = {"clusters.csv", "kmeans_k.csv", "segments.csv"};
        assert_int_equal(cvm_test_system("cmp -s '%s/t1/latest/%s' '%s/t2/latest/%s'", dir, files[f], dir,
                                         files[f]), 0);
    }
    char *k = read_in("t1/latest/kmeans_k.csv");
    assert_true(strncmp(k, "k,inertia,silhouette,calinski_harabasz,davies_bouldin,stability,iterations,chosen\n",
                        82) == 0);
    int rows = 0, chosen_k = 0;
    for (char *l = strchr(k, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        char v[32];
        rows++;
        field(l, 7, v, sizeof v);
        if (strcmp(v, "1") == 0) {
            assert_int_equal(chosen_k, 0);
            field(l, 0, v, sizeof v);
            chosen_k = atoi(v);
        }
        field(l, 2, v, sizeof v);
        assert_true(v[0] != '\0'); /* silhouette present for every k >= 2 */
    }
    assert_int_equal(rows, 7); /* k_min 2 .. k_max 8 */
    assert_true(chosen_k >= 2 && chosen_k <= 8);
    free(k);

    char *c = read_in("t1/latest/clusters.csv");
    assert_int_equal(col_index(c, "cluster"), 0);
    assert_true(col_index(c, "share_revenue") > 0);
    assert_true(col_index(c, "share_profit") > 0);
    assert_true(col_index(c, "mean_monetary") > 0);
    assert_true(col_index(c, "median_recency_days") > 0);
    assert_true(col_index(c, "center_frequency") > 0);
    assert_true(col_index(c, "distinguishing") > 0);
    int isz = col_index(c, "size"), ish = col_index(c, "share_customers"), irv = col_index(c, "share_revenue");
    int lines = 0;
    long size_sum = 0;
    double share = 0, rev = 0, prev_rev = 2;
    char labels[16][64];
    for (char *l = strchr(c, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        char v[128];
        field(l, 0, v, sizeof v);
        assert_int_equal(atoi(v), lines + 1);
        field(l, 1, labels[lines], sizeof labels[lines]);
        assert_true(labels[lines][0] != '\0');
        for (int q = 0; q < lines; q++)
            assert_string_not_equal(labels[q], labels[lines]);
        field(l, isz, v, sizeof v);
        size_sum += atol(v);
        field(l, ish, v, sizeof v);
        share += atof(v);
        field(l, irv, v, sizeof v);
        rev += atof(v);
        assert_true(atof(v) <= prev_rev); /* numbered by decreasing revenue */
        prev_rev = atof(v);
        lines++;
    }
    assert_int_equal(lines, chosen_k);
    assert_close(share, 1, 0, 1e-3, "shares of customers");
    assert_close(rev, 1, 0, 1e-3, "shares of revenue");
    free(c);

    /* segments.csv: every buyer has a cluster and its label, prospects none. */
    char *s = read_in("t1/latest/segments.csv");
    int ic = col_index(s, "cluster"), il = col_index(s, "cluster_label"), ir = col_index(s, "recency_days");
    assert_true(ic > 0 && il == ic + 1 && ir > 0);
    long buyers = 0, prospects = 0;
    for (char *l = strchr(s, '\n') + 1; *l; l = strchr(l, '\n') + 1) {
        char r[32], cl[16], lb[64];
        field(l, ir, r, sizeof r);
        field(l, ic, cl, sizeof cl);
        field(l, il, lb, sizeof lb);
        if (r[0] == '\0') {
            prospects++;
            assert_string_equal(cl, "");
            assert_string_equal(lb, "");
        } else {
            buyers++;
            int id = atoi(cl);
            assert_true(id >= 1 && id <= chosen_k);
            assert_string_equal(lb, labels[id - 1]);
        }
    }
    assert_int_equal(buyers, size_sum);
    assert_true(prospects > 0);
    free(s);

    char *sj = read_in("t1/latest/summary.json");
    json_error_t je;
    json_t *j = json_loads(sj, 0, &je);
    json_t *kmj = json_object_get(json_object_get(j, "models"), "kmeans");
    assert_non_null(kmj);
    assert_int_equal(json_integer_value(json_object_get(kmj, "k")), chosen_k);
    assert_int_equal(json_integer_value(json_object_get(kmj, "seed")), 42);
    assert_int_equal(json_array_size(json_object_get(kmj, "k_table")), 7);
    assert_int_equal(json_array_size(json_object_get(kmj, "features")), 3);
    assert_true(json_integer_value(json_object_get(kmj, "iterations")) >= 1);
    assert_true(json_real_value(json_object_get(kmj, "inertia")) > 0);
    json_decref(j);
    free(sj);

    /* A cluster label keys an action. */
    char *yaml = cvm_test_path(dir, "act.yaml");
    char text[1024];
    snprintf(text, sizeof text,
             "input:\n  transactions: {path: %s/sample_data/transactions.csv}\n"
             "cleaning: {return_order_prefix: RT, exclude_products: [POSTAGE, FEE-HANDLING, ADJ]}\n"
             "kmeans: {enabled: true, k: 3}\n"
             "actions:\n  rules:\n    - {when: \"cluster=1\", action: TOP_CLUSTER, text: \"x\"}\n"
             "    - {when: default, action: OTHER, text: \"y\"}\n",
             cvm_test_source_dir());
    cvm_test_write_file(yaml, text);
    assert_int_equal(cvm_test_system("'%s' run '%s' --out '%s/act' --quiet > /dev/null 2>&1",
                                     cvm_test_binary(), yaml, dir), 0);
    assert_int_equal(cvm_test_system("grep -q TOP_CLUSTER '%s/act/latest/segments.csv'", dir), 0);
    free(yaml);
}

static void test_stage_config_errors(void **state)
{
    (void)state;
    struct { const char *set; const char *expect; } cases[] = {
        {"--set kmeans.k=abc", "kmeans.k must be auto or a whole number"},
        {"--set kmeans.k=0", "kmeans.k must be auto or a whole number"},
        {"--set kmeans.k_min=6 --set kmeans.k_max=3", "kmeans.k_min (6) must not exceed kmeans.k_max (3)"},
        {"--set kmeans.features=recency_days,recency_days", "lists 'recency_days' twice"},
        {"--set kmeans.k=auto --set kmeans.criterion=stability --set kmeans.stability_runs=0", "stability_runs >= 1"},
        {"--set kmeans.features=recency_days,no_such_column", "'no_such_column' is not a column of the customer table"},
        {"--set kmeans.features=recency_days,rfm_segment", "'rfm_segment' is not a numeric column"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = cvm_test_system("'%s' run '%s/jobs/nightly.yaml' --out '%s/e' --quiet --set kmeans.enabled=true %s "
                                 "> /dev/null 2> '%s/err.txt'", cvm_test_binary(), cvm_test_source_dir(),
                                 dir, cases[i].set, dir);
        if (rc != 2)
            fail_msg("%s: exit %d, expected 2", cases[i].set, rc);
        char *e = read_in("err.txt");
        if (strstr(e, cases[i].expect) == NULL)
            fail_msg("%s: message '%s' lacks '%s'", cases[i].set, e, cases[i].expect);
        free(e);
    }
    /* feature_options rows are checked with their line. */
    char *yaml = cvm_test_path(dir, "opt.yaml");
    char text[1024];
    snprintf(text, sizeof text,
             "input:\n  transactions: {path: %s/sample_data/transactions.csv}\n"
             "kmeans:\n  enabled: true\n  feature_options:\n"
             "    - {column: monetary, transform: log1p_robust, weight: 2}\n"
             "    - {column: profit, weight: 1}\n", cvm_test_source_dir());
    cvm_test_write_file(yaml, text);
    assert_int_equal(cvm_test_system("'%s' run '%s' --out '%s/e' --quiet > /dev/null 2> '%s/err.txt'",
                                     cvm_test_binary(), yaml, dir, dir), 2);
    char *e = read_in("err.txt");
    assert_non_null(strstr(e, "opt.yaml:7: kmeans.feature_options[1].column 'profit' is not in kmeans.features"));
    free(e);
    /* A weight, a transform and a feature from the profit stage are accepted. */
    snprintf(text, sizeof text,
             "input:\n  transactions: {path: %s/sample_data/transactions.csv}\n"
             "kmeans:\n  enabled: true\n  k: 3\n  features: [recency_days, frequency, monetary, profit, interval_cv]\n"
             "  feature_options:\n    - {column: monetary, transform: log1p_robust, weight: 2}\n"
             "    - {column: interval_cv, transform: zscore}\n", cvm_test_source_dir());
    cvm_test_write_file(yaml, text);
    assert_int_equal(cvm_test_system("'%s' run '%s' --out '%s/ok' --quiet > /dev/null 2> '%s/err.txt'",
                                     cvm_test_binary(), yaml, dir, dir), 0);
    char *sj = read_in("ok/latest/summary.json");
    json_error_t je;
    json_t *j = json_loads(sj, 0, &je);
    json_t *f = json_object_get(json_object_get(json_object_get(j, "models"), "kmeans"), "features");
    assert_int_equal(json_array_size(f), 5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(f, 2), "transform")), "log1p_robust");
    assert_close(json_real_value(json_object_get(json_array_get(f, 2), "weight")), 2, 0, 0, "weight");
    /* interval_cv is empty below 3 purchase days: those cells were imputed. */
    assert_true(json_integer_value(json_object_get(json_array_get(f, 4), "imputed")) > 0);
    json_decref(j);
    free(sj);
    free(yaml);
}

int main(void)
{
    gsl_set_error_handler_off();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_example),
        cmocka_unit_test(test_small_cases_exact),
        cmocka_unit_test(test_brute_force_optimum),
        cmocka_unit_test(test_lloyd_invariants),
        cmocka_unit_test(test_empty_cluster_reseeded),
        cmocka_unit_test(test_weights_are_repeats),
        cmocka_unit_test(test_bounds_give_lloyd),
        cmocka_unit_test(test_threads_bit_identical),
        cmocka_unit_test(test_metrics_by_hand_and_naive),
        cmocka_unit_test(test_select_k_on_blobs),
        cmocka_unit_test(test_errors_and_out_of_memory),
        cmocka_unit_test_setup_teardown(test_planted_segments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_end_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_config_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
