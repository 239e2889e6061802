#include "cluster_metrics.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "parallel.h"

#ifdef _OPENMP
#include <omp.h>
static int thread_id(void) { return omp_get_thread_num(); }
#else
static int thread_id(void) { return 0; }
#endif

static int check_labels(const int32_t *labels, size_t n, size_t k, const char *what, cvm_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= k)
            return CVM_FAIL(err, CVM_EINVAL, "%s: label %d of row %zu is outside 0..%zu", what,
                            (int)labels[i], i, k ? k - 1 : 0);
    return CVM_OK;
}

static double dist(const double *a, const double *b, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double t = a[j] - b[j];
        s += t * t;
    }
    return sqrt(s);
}

/* Per-cluster sizes and centroids (means), summed in row order. */
static int centroids(const double *X, size_t n, size_t d, const int32_t *labels, size_t k,
                     double **cen, size_t **cnt, cvm_err *err)
{
    *cen = cvm_calloc(k * d > 0 ? k * d : 1, sizeof **cen);
    *cnt = cvm_calloc(k ? k : 1, sizeof **cnt);
    if (*cen == NULL || *cnt == NULL) {
        cvm_free(*cen);
        cvm_free(*cnt);
        *cen = NULL;
        *cnt = NULL;
        return CVM_FAIL(err, CVM_ENOMEM, "cluster metrics: out of memory for %zu centroids", k);
    }
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)labels[i];
        (*cnt)[c]++;
        for (size_t j = 0; j < d; j++)
            (*cen)[c * d + j] += X[i * d + j];
    }
    for (size_t c = 0; c < k; c++)
        for (size_t j = 0; j < d; j++)
            if ((*cnt)[c])
                (*cen)[c * d + j] /= (double)(*cnt)[c];
    return CVM_OK;
}

static size_t nonempty(const size_t *cnt, size_t k)
{
    size_t m = 0;
    for (size_t c = 0; c < k; c++)
        m += cnt[c] > 0;
    return m;
}

int cvm_cluster_silhouette(const double *X, size_t n, size_t d, const int32_t *labels, size_t k,
                           size_t sample, uint64_t seed, int threads, double *out, cvm_err *err)
{
    *out = NAN;
    CVM_TRY(check_labels(labels, n, k, "silhouette", err));
    size_t m = (sample == 0 || n <= sample) ? n : sample;
    if (m < 2 || k < 2)
        return CVM_OK;
    double *P = cvm_malloc(m * d * sizeof *P);
    int32_t *lab = cvm_malloc(m * sizeof *lab);
    size_t *cnt = cvm_calloc(k, sizeof *cnt);
    double *s = cvm_malloc(m * sizeof *s);
    int nt = cvm_threads(threads);
    if (m < 1024)
        nt = 1; /* not worth a team: about a million distances, milliseconds */
    double *scratch = cvm_calloc((size_t)nt * k, sizeof *scratch);
    gsl_rng *rng = m < n ? gsl_rng_alloc(gsl_rng_mt19937) : NULL;
    int rc = CVM_OK;
    if (!P || !lab || !cnt || !s || !scratch || (m < n && rng == NULL)) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "silhouette: out of memory for %zu points", m);
        goto done;
    }
    /* Selection sampling (Knuth's algorithm S, as gsl_ran_choose): every
     * subset of size m equally likely, rows kept in their order. */
    if (rng)
        gsl_rng_set(rng, (unsigned long)seed);
    for (size_t i = 0, j = 0; i < n && j < m; i++) {
        if (rng && (double)(n - i) * gsl_rng_uniform(rng) >= (double)(m - j))
            continue;
        memcpy(P + j * d, X + i * d, d * sizeof *P);
        lab[j] = labels[i];
        cnt[labels[i]]++;
        j++;
    }
    size_t kk = nonempty(cnt, k);
    if (kk < 2 || kk >= m)
        goto done; /* undefined: NAN */
    long lm = (long)m;
#pragma omp parallel num_threads(nt) default(none) shared(P, lab, cnt, s, scratch, lm, d, k)
    {
        double *acc = scratch + (size_t)thread_id() * k;
#pragma omp for schedule(dynamic, 16)
        for (long ii = 0; ii < lm; ii++) {
            memset(acc, 0, k * sizeof *acc);
            const double *xi = P + (size_t)ii * d;
            for (long jj = 0; jj < lm; jj++)
                if (jj != ii)
                    acc[lab[jj]] += dist(xi, P + (size_t)jj * d, d);
            size_t ci = (size_t)lab[ii];
            if (cnt[ci] <= 1) {
                s[ii] = 0;
                continue;
            }
            double a = acc[ci] / (double)(cnt[ci] - 1);
            double b = INFINITY;
            for (size_t c = 0; c < k; c++)
                if (c != ci && cnt[c] > 0 && acc[c] / (double)cnt[c] < b)
                    b = acc[c] / (double)cnt[c];
            double mx = a > b ? a : b;
            s[ii] = mx > 0 ? (b - a) / mx : 0;
        }
    }
    double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += s[i];
    *out = sum / (double)m;
done:
    gsl_rng_free(rng);
    cvm_free(P);
    cvm_free(lab);
    cvm_free(cnt);
    cvm_free(s);
    cvm_free(scratch);
    return rc;
}

int cvm_cluster_calinski_harabasz(const double *X, size_t n, size_t d, const int32_t *labels,
                                  size_t k, double *out, cvm_err *err)
{
    *out = NAN;
    CVM_TRY(check_labels(labels, n, k, "calinski_harabasz", err));
    double *cen;
    size_t *cnt;
    CVM_TRY(centroids(X, n, d, labels, k, &cen, &cnt, err));
    size_t kk = nonempty(cnt, k);
    double *mean = cvm_calloc(d ? d : 1, sizeof *mean);
    if (mean == NULL) {
        cvm_free(cen);
        cvm_free(cnt);
        return CVM_FAIL(err, CVM_ENOMEM, "calinski_harabasz: out of memory");
    }
    if (kk >= 2 && kk < n) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                mean[j] += X[i * d + j];
        for (size_t j = 0; j < d; j++)
            mean[j] /= (double)n;
        double B = 0, W = 0;
        for (size_t c = 0; c < k; c++) {
            double t = dist(cen + c * d, mean, d);
            B += (double)cnt[c] * t * t;
        }
        for (size_t i = 0; i < n; i++) {
            double t = dist(X + i * d, cen + (size_t)labels[i] * d, d);
            W += t * t;
        }
        *out = W == 0 ? 1.0 : B * (double)(n - kk) / (W * (double)(kk - 1));
    }
    cvm_free(mean);
    cvm_free(cen);
    cvm_free(cnt);
    return CVM_OK;
}

int cvm_cluster_davies_bouldin(const double *X, size_t n, size_t d, const int32_t *labels,
                               size_t k, double *out, cvm_err *err)
{
    *out = NAN;
    CVM_TRY(check_labels(labels, n, k, "davies_bouldin", err));
    double *cen;
    size_t *cnt;
    CVM_TRY(centroids(X, n, d, labels, k, &cen, &cnt, err));
    size_t kk = nonempty(cnt, k);
    double *S = cvm_calloc(k ? k : 1, sizeof *S);
    if (S == NULL) {
        cvm_free(cen);
        cvm_free(cnt);
        return CVM_FAIL(err, CVM_ENOMEM, "davies_bouldin: out of memory");
    }
    if (kk >= 2 && kk < n) {
        for (size_t i = 0; i < n; i++)
            S[labels[i]] += dist(X + i * d, cen + (size_t)labels[i] * d, d);
        bool s_zero = true, m_zero = true;
        for (size_t c = 0; c < k; c++) {
            if (cnt[c])
                S[c] /= (double)cnt[c];
            if (fabs(S[c]) > 1e-8)
                s_zero = false;
        }
        for (size_t a = 0; a < k; a++)
            for (size_t b = a + 1; b < k; b++)
                if (cnt[a] && cnt[b] && dist(cen + a * d, cen + b * d, d) > 1e-8)
                    m_zero = false;
        /* As scikit-learn: all-zero scatters or separations give 0. */
        if (s_zero || m_zero) {
            *out = 0;
        } else {
            double sum = 0;
            for (size_t a = 0; a < k; a++) {
                if (!cnt[a])
                    continue;
                double worst = 0;
                for (size_t b = 0; b < k; b++) {
                    if (b == a || !cnt[b])
                        continue;
                    double M = dist(cen + a * d, cen + b * d, d);
                    double r = M > 0 ? (S[a] + S[b]) / M : 0;
                    if (r > worst)
                        worst = r;
                }
                sum += worst;
            }
            *out = sum / (double)kk;
        }
    }
    cvm_free(S);
    cvm_free(cen);
    cvm_free(cnt);
    return CVM_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Sum over the runs of equal keys of C(run length, 2). */
static long double pairs_of_runs(const uint64_t *v, size_t n)
{
    long double s = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && v[j] == v[i])
            j++;
        long double r = (long double)(j - i);
        s += r * (r - 1) / 2;
        i = j;
    }
    return s;
}

int cvm_cluster_ari(const int32_t *a, const int32_t *b, size_t n, double *out, cvm_err *err)
{
    *out = NAN;
    for (size_t i = 0; i < n; i++)
        if (a[i] < 0 || b[i] < 0)
            return CVM_FAIL(err, CVM_EINVAL, "ari: negative label at row %zu", i);
    if (n < 2) {
        *out = 1.0;
        return CVM_OK;
    }
    /* Sorting keys instead of a contingency table: labels may be sparse. */
    uint64_t *v = cvm_malloc(n * sizeof *v);
    if (v == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "ari: out of memory for %zu labels", n);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)(uint32_t)a[i];
    qsort(v, n, sizeof *v, cmp_u64);
    long double sa = pairs_of_runs(v, n);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)(uint32_t)b[i];
    qsort(v, n, sizeof *v, cmp_u64);
    long double sb = pairs_of_runs(v, n);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint64_t)(uint32_t)a[i] << 32 | (uint64_t)(uint32_t)b[i];
    qsort(v, n, sizeof *v, cmp_u64);
    long double sab = pairs_of_runs(v, n);
    cvm_free(v);
    long double all = (long double)n * (long double)(n - 1) / 2;
    long double expected = sa * sb / all;
    long double max = (sa + sb) / 2;
    /* Both partitions trivial (one cluster, or all singletons): identical. */
    *out = max == expected ? 1.0 : (double)((sab - expected) / (max - expected));
    return CVM_OK;
}
