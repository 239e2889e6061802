/*
 * kmeans.h - k-means clustering of a dense row-major matrix: greedy
 * k-means++ seeding, n_init restarts, Lloyd iterations exact or accelerated
 * by distance bounds (Hamerly 2010, Elkan 2003), and the choice of k.
 *
 *     cvm_kmeans_params p;
 *     cvm_kmeans_params_default(&p);
 *     p.k = 4;
 *     p.seed = 42;
 *     const char *why = cvm_kmeans_params_check(&p);   // NULL or a reason
 *     cvm_kmeans *km = cvm_kmeans_new(&p);              // NULL: bad params or ENOMEM
 *     if (cvm_kmeans_fit(km, X, n, d, NULL, &err) != CVM_OK) ...
 *     const double *C = cvm_kmeans_centers(km);         // k x d, borrowed
 *     const int32_t *lab = cvm_kmeans_labels(km);       // n labels of X, borrowed
 *     double j = cvm_kmeans_inertia(km);
 *     cvm_kmeans_predict(km, Y, m, d, out, NULL, &err); // nearest centre of new rows
 *     cvm_kmeans_free(km);
 *
 * Definitions (the same as scikit-learn's KMeans, so results can be compared):
 * - inertia = sum over points of w_i * ||x_i - c_label(i)||^2;
 * - seeding: greedy k-means++ (Arthur & Vassilvitskii 2007): the first centre
 *   is a point drawn with probability proportional to its weight, every next
 *   one the best of local_trials candidates drawn with probability
 *   proportional to w * D^2 (D = distance to the nearest centre so far);
 * - tol is relative: a restart stops when the sum over centres of the
 *   squared centre shift is <= tol x the mean variance of the columns of X,
 *   or when no label changed (strict convergence), or after max_iter
 *   iterations; the labels are then recomputed against the final centres, so
 *   every point is at its nearest centre (ties: the lowest centre index);
 * - an empty cluster is re-seeded with the point farthest from its own
 *   centre (ties: lowest row), taken from a cluster that keeps a member;
 *   when every such point sits on its centre the cluster stays empty (its
 *   centre a duplicate: the data has fewer than k distinct points);
 * - Hamerly and Elkan skip distance computations that bounds prove useless;
 *   they give exactly the labels, centres and inertia of Lloyd (the bounds
 *   carry a relative slack far above rounding error, and every distance that
 *   decides a label is computed the same way as in Lloyd).
 *
 * Determinism: all randomness comes from a GSL mt19937 generator seeded with
 * p.seed and owned by the object. With n_init >= 2 each thread runs whole
 * restarts; otherwise the seeding and assignment steps are OpenMP maps over
 * fixed blocks of rows whose sums are reduced block by block in block order.
 * Either way the results are bit-identical for any thread count.
 *
 * Thread-safety: a cvm_kmeans object is not shared between threads while it
 * fits; getters and predict may be called concurrently once fitted.
 * Borrowed pointers are valid until the next fit or free.
 */
#ifndef CVM_KMEANS_H
#define CVM_KMEANS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum {
    CVM_KMEANS_LLOYD,
    CVM_KMEANS_HAMERLY,
    CVM_KMEANS_ELKAN,
    CVM_KMEANS_AUTO, /* Hamerly for k < 32, Elkan above while its n x k bounds fit */
} cvm_kmeans_algorithm;

typedef struct cvm_kmeans_params {
    size_t k;                       /* clusters, >= 1 (default 8) */
    int n_init;                     /* restarts; the lowest inertia wins (default 10) */
    int max_iter;                   /* iterations per restart (default 300) */
    double tol;                     /* relative tolerance on centre shift (default 1e-4) */
    cvm_kmeans_algorithm algorithm; /* default CVM_KMEANS_AUTO */
    int local_trials;               /* k-means++ candidates per centre; 0 = 2 + floor(ln k) */
    uint64_t seed;                  /* default 0 */
    int threads;                    /* 0 = OpenMP default */
    bool trace;                     /* record the inertia of every iteration (costs O(n d) each) */
} cvm_kmeans_params;

typedef struct cvm_kmeans cvm_kmeans;

/** Counters of the kept (best) restart. */
typedef struct cvm_kmeans_stats {
    int n_iter;                     /* iterations of the best restart */
    bool converged;                 /* stopped by tol or strict convergence, not max_iter */
    cvm_kmeans_algorithm algorithm; /* the one used (AUTO resolved) */
    uint64_t distance_evals;        /* point-centre distances computed, all restarts, seeding excluded */
    uint64_t relocations;           /* empty clusters re-seeded, all restarts */
} cvm_kmeans_stats;

void cvm_kmeans_params_default(cvm_kmeans_params *p);
/** @brief NULL when p is usable, else a readable reason. */
const char *cvm_kmeans_params_check(const cvm_kmeans_params *p);
/** @brief "lloyd", "hamerly", "elkan", "auto". */
const char *cvm_kmeans_algorithm_name(cvm_kmeans_algorithm a);
/** @brief Parse a name of cvm_kmeans_algorithm_name; false when unknown. */
bool cvm_kmeans_algorithm_parse(const char *s, cvm_kmeans_algorithm *out);

/** @brief New unfitted object with a copy of p; NULL when p fails the check
 *  or on ENOMEM. Free with cvm_kmeans_free. */
cvm_kmeans *cvm_kmeans_new(const cvm_kmeans_params *p);
void cvm_kmeans_free(cvm_kmeans *km); /* NULL is a no-op */

/**
 * @brief Start every later fit from these k x d centres instead of
 *        k-means++ (one run: n_init is ignored); NULL returns to k-means++.
 *        The centres are copied.
 */
int cvm_kmeans_set_init(cvm_kmeans *km, const double *centers, size_t d, cvm_err *err);

/**
 * @brief Cluster the n rows of X (n x d, row-major, finite values).
 * @param w optional non-negative sample weights (NULL: all 1); a weight
 *        scales a point's pull on its centre and its share of the inertia.
 * @return CVM_OK; CVM_EINVAL when n < k, d == 0, a value is not finite or
 *         the weights are negative or all zero (err names the row);
 *         CVM_ENOMEM. A failed fit leaves the object unfitted.
 * X and w are read only during the call; the object keeps no pointer to them.
 */
int cvm_kmeans_fit(cvm_kmeans *km, const double *X, size_t n, size_t d, const double *w,
                   cvm_err *err);

/**
 * @brief Nearest centre (ties: lowest index) of each of the m rows of Y.
 * @param labels out, m entries (caller's buffer).
 * @param sqdist optional out, m squared distances to that centre.
 * @return CVM_EINVAL when the object is not fitted or d differs.
 */
int cvm_kmeans_predict(const cvm_kmeans *km, const double *Y, size_t m, size_t d,
                       int32_t *labels, double *sqdist, cvm_err *err);

/** @brief k x d centres, borrowed; NULL before a successful fit. */
const double *cvm_kmeans_centers(const cvm_kmeans *km);
/** @brief Labels 0..k-1 of the fitted rows, borrowed; NULL before a fit. */
const int32_t *cvm_kmeans_labels(const cvm_kmeans *km);
/** @brief Inertia of the fitted rows (NAN before a fit). */
double cvm_kmeans_inertia(const cvm_kmeans *km);
size_t cvm_kmeans_k(const cvm_kmeans *km);
size_t cvm_kmeans_dim(const cvm_kmeans *km);
void cvm_kmeans_get_stats(const cvm_kmeans *km, cvm_kmeans_stats *out);
/** @brief With p.trace: the inertia of labels and centres after each
 *  assignment step of the best restart (non-increasing by construction of
 *  Lloyd's algorithm), borrowed; *len = 0 and NULL otherwise. */
const double *cvm_kmeans_trace(const cvm_kmeans *km, size_t *len);

/* ------------------------------------------------------------ choosing k */

typedef enum {
    CVM_KMEANS_SILHOUETTE,        /* highest mean silhouette */
    CVM_KMEANS_CALINSKI_HARABASZ, /* highest variance ratio */
    CVM_KMEANS_DAVIES_BOULDIN,    /* lowest index */
    CVM_KMEANS_ELBOW,             /* knee of the inertia curve */
    CVM_KMEANS_STABILITY,         /* largest k whose stability >= CVM_KMEANS_STABLE_ARI,
                                     else the highest stability */
} cvm_kmeans_criterion;

/* A partition that fits from other seeds reproduce with an ARI of at least
 * this is "stable". Stability alone favours small k (a single dominant
 * split is perfectly reproducible), so the criterion takes the finest
 * stable partition: the transition from stable to unstable of Ben-Hur,
 * Elisseeff & Guyon (2002). */
#define CVM_KMEANS_STABLE_ARI 0.9

const char *cvm_kmeans_criterion_name(cvm_kmeans_criterion c);
bool cvm_kmeans_criterion_parse(const char *s, cvm_kmeans_criterion *out);

typedef struct cvm_kmeans_select_params {
    size_t k_min, k_max;            /* range tried, 1 <= k_min <= k_max (default 2..8) */
    cvm_kmeans_criterion criterion; /* default silhouette */
    size_t silhouette_sample;       /* exact silhouette up to this many points, else on a
                                       seeded sample of this size; 0 = always exact
                                       (default 10000) */
    int stability_runs;             /* extra single-restart fits per k for stability (default 3;
                                       0 = no stability column) */
} cvm_kmeans_select_params;

/** One row of the k table: every metric of the fit at k (NAN where undefined,
 *  e.g. silhouette at k = 1). */
typedef struct cvm_kmeans_kscore {
    size_t k;
    double inertia;
    double silhouette;        /* Rousseeuw 1987, mean s(i), in [-1, 1] */
    double calinski_harabasz; /* Calinski & Harabasz 1974 */
    double davies_bouldin;    /* Davies & Bouldin 1979, lower is better */
    double stability;         /* mean ARI (Hubert & Arabie 1985) of stability_runs
                                 single-restart fits with other seeds against the fit */
    int n_iter;
    bool chosen;
} cvm_kmeans_kscore;

void cvm_kmeans_select_params_default(cvm_kmeans_select_params *p);
const char *cvm_kmeans_select_params_check(const cvm_kmeans_select_params *p);

/**
 * @brief Fit every k in [k_min, k_max] with base (its k ignored), score each
 *        fit, and pick k by the criterion (ties: the smaller k).
 * @param table out, k_max - k_min + 1 rows (caller's buffer).
 * @param best out: the fitted model at the chosen k, owned by the caller.
 * @return as cvm_kmeans_fit; CVM_EINVAL when k_max > n.
 */
int cvm_kmeans_select(const cvm_kmeans_params *base, const cvm_kmeans_select_params *sp,
                      const double *X, size_t n, size_t d, cvm_kmeans_kscore *table,
                      cvm_kmeans **best, cvm_err *err);

/** @brief The index in table[0..m) (ascending k) the criterion picks (ties:
 *  lowest k); for ELBOW the point farthest below the chord from the first to
 *  the last normalised inertia (Satopaa et al. 2011, "Kneedle"); for
 *  STABILITY the largest k with stability >= CVM_KMEANS_STABLE_ARI, else the
 *  most stable. -1 when no row has the metric. */
int cvm_kmeans_pick(const cvm_kmeans_kscore *table, size_t m, cvm_kmeans_criterion c);

#endif /* CVM_KMEANS_H */
