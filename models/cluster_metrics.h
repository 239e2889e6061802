/*
 * cluster_metrics.h - quality of a partition, for choosing k and for tests:
 * silhouette, Calinski-Harabasz, Davies-Bouldin, adjusted Rand index.
 *
 *     double s, ch, db, ari;
 *     cvm_cluster_silhouette(X, n, d, labels, k, 10000, seed, threads, &s, &err);
 *     cvm_cluster_calinski_harabasz(X, n, d, labels, k, &ch, &err);
 *     cvm_cluster_davies_bouldin(X, n, d, labels, k, &db, &err);
 *     cvm_cluster_ari(labels_a, labels_b, n, &ari, &err);
 *
 * X is n x d row-major; labels are in 0..k-1. Distances are Euclidean,
 * points unweighted, cluster centroids the means of their points (not the
 * k-means centres), the same conventions as scikit-learn's metrics. A metric
 * that is undefined for the partition (fewer than 2 non-empty clusters, or
 * as many clusters as points) is NAN, with CVM_OK.
 *
 * Thread-safety: pure functions of their arguments; the silhouette is
 * parallel over points with per-point results summed in point order, so the
 * value does not depend on the thread count.
 */
#ifndef CVM_CLUSTER_METRICS_H
#define CVM_CLUSTER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/**
 * @brief Mean silhouette (Rousseeuw 1987): s(i) = (b - a) / max(a, b), a the
 *        mean distance to the other members of i's cluster, b the lowest mean
 *        distance to another cluster; s(i) = 0 in a singleton cluster.
 * @param sample exact over all n points when n <= sample or sample == 0;
 *        otherwise exact over `sample` points drawn without replacement with
 *        a GSL mt19937 seeded with seed (the points and their reference set
 *        are the sample, as in scikit-learn's silhouette_score(sample_size)).
 */
int cvm_cluster_silhouette(const double *X, size_t n, size_t d, const int32_t *labels, size_t k,
                           size_t sample, uint64_t seed, int threads, double *out, cvm_err *err);

/** @brief Variance ratio (Calinski & Harabasz 1974):
 *  [B / (k' - 1)] / [W / (n - k')], k' the non-empty clusters; 1 when W = 0. */
int cvm_cluster_calinski_harabasz(const double *X, size_t n, size_t d, const int32_t *labels,
                                  size_t k, double *out, cvm_err *err);

/** @brief Davies & Bouldin 1979: mean over clusters of max_j (S_i + S_j) / M_ij,
 *  S the mean distance to the centroid, M the centroid distance (pairs of
 *  coinciding centroids count 0). Lower is better. */
int cvm_cluster_davies_bouldin(const double *X, size_t n, size_t d, const int32_t *labels,
                               size_t k, double *out, cvm_err *err);

/** @brief Adjusted Rand index (Hubert & Arabie 1985) of two labelings of n
 *  items (labels >= 0, any range): 1 for identical partitions, about 0 for
 *  independent ones; 1 when both are a single cluster or all singletons. */
int cvm_cluster_ari(const int32_t *a, const int32_t *b, size_t n, double *out, cvm_err *err);

#endif /* CVM_CLUSTER_METRICS_H */
