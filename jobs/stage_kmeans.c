/* The k-means stage: customer segments from configured features.
 *
 * Who is clustered: customers with a purchase (recency_days not empty).
 * Prospects keep an empty cluster and cluster_label.
 *
 * Features: kmeans.features names numeric (integer or number) columns of
 * the customer table. Each is transformed with kmeans.transform unless a
 * row of kmeans.feature_options {column, transform, weight} says otherwise:
 *   none          the value as it is
 *   log1p         sign(x) * ln(1 + |x|): tames long tails, keeps the sign of
 *                 negative values (net revenue after returns, profit)
 *   zscore        (x - mean) / sd (population sd; sd 0 -> 1)
 *   robust        (x - median) / IQR (IQR 0 -> sd; sd 0 -> 1)
 *   log1p_zscore  log1p, then zscore (the default)
 *   log1p_robust  log1p, then robust
 * and multiplied by sqrt(weight), so a feature's share of the squared
 * distance is multiplied by its weight (weight 2 counts like the feature
 * twice). Missing values (e.g. interval_cv with fewer than 3 purchase days)
 * are, with kmeans.missing = median, replaced by the feature's median over
 * the clustered customers before the transform; with skip, those customers
 * get no cluster. summary.json counts both.
 *
 * k: a number, or auto: every k in k_min..k_max is fitted and scored, and
 * kmeans.criterion picks one (models/kmeans.h). kmeans_k.csv has the table.
 * Clusters are numbered 1..k by decreasing share of revenue (monetary);
 * labels come from the rules in docs/models/kmeans.md. */
#include "stage.h"

#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "cluster_metrics.h"
#include "kmeans.h"
#include "textparse.h"

#define NR 1, 0

static const cvm_cfg_key schema[] = {
    {"kmeans.enabled", CVM_CFG_BOOL, "false", NR, NULL,
     "Run k-means customer segmentation: adds cluster and cluster_label to segments.csv, "
     "writes clusters.csv and kmeans_k.csv."},
    {"kmeans.features", CVM_CFG_LIST, "recency_days,frequency,monetary", NR, NULL,
     "Numeric columns of segments.csv to cluster on (any integer or number column present when "
     "the stage runs: recency_days, frequency, monetary, profit, avg_order_value, tenure_days, "
     "interval_cv, return_share, satisfaction, ...)."},
    {"kmeans.transform", CVM_CFG_ENUM, "log1p_zscore", NR,
     "none|log1p|zscore|robust|log1p_zscore|log1p_robust",
     "Transform of every feature without its own in kmeans.feature_options. log1p is "
     "sign(x)*ln(1+|x|); zscore (x-mean)/sd; robust (x-median)/IQR."},
    {"kmeans.feature_options", CVM_CFG_TABLE, NULL, NR, "column|transform|weight",
     "Per-feature overrides: rows {column, transform, weight}. column must be in "
     "kmeans.features; transform defaults to kmeans.transform, weight (> 0) to 1. A weight w "
     "multiplies the feature's share of the squared distance by w."},
    {"kmeans.missing", CVM_CFG_ENUM, "median", NR, "median|skip",
     "Empty feature values of customers with purchases: median = replaced by the feature's "
     "median (before the transform); skip = the customer gets no cluster."},
    {"kmeans.k", CVM_CFG_STRING, "4", NR, NULL,
     "Number of clusters (1-1000), or auto: try k_min..k_max and keep the k that "
     "kmeans.criterion prefers (kmeans_k.csv shows every k tried)."},
    {"kmeans.k_min", CVM_CFG_INT, "2", 2, 100, NULL, "Smallest k tried when k is auto."},
    {"kmeans.k_max", CVM_CFG_INT, "8", 2, 100, NULL, "Largest k tried when k is auto."},
    {"kmeans.criterion", CVM_CFG_ENUM, "silhouette", NR,
     "silhouette|calinski_harabasz|davies_bouldin|elbow|stability",
     "How k = auto chooses: highest silhouette, highest Calinski-Harabasz, lowest "
     "Davies-Bouldin, the knee of the inertia curve, or the highest stability (mean adjusted "
     "Rand index between seeds). Ties go to the smaller k."},
    {"kmeans.n_init", CVM_CFG_INT, "10", 1, 1000, NULL,
     "k-means++ restarts per k; the lowest inertia wins."},
    {"kmeans.max_iter", CVM_CFG_INT, "300", 1, 100000, NULL, "Iterations per restart."},
    {"kmeans.tol", CVM_CFG_DOUBLE, "0.0001", 0, 1, NULL,
     "A restart stops when the summed squared centre shift is at most tol x the mean feature "
     "variance (scikit-learn's rule), or when no label changes."},
    {"kmeans.algorithm", CVM_CFG_ENUM, "auto", NR, "auto|lloyd|hamerly|elkan",
     "lloyd computes every distance; hamerly and elkan skip those that distance bounds prove "
     "useless and give the same clusters faster; auto picks one."},
    {"kmeans.silhouette_sample", CVM_CFG_INT, "10000", 0, 1000000, NULL,
     "The silhouette is exact up to this many customers, else computed on a seeded random "
     "sample of this size (0 = always exact; the cost grows with the square)."},
    {"kmeans.stability_runs", CVM_CFG_INT, "3", 0, 100, NULL,
     "Single-restart fits with other seeds per k, compared with the fit by the adjusted Rand "
     "index (the stability column; 0 = not computed)."},
};

/* ------------------------------------------------------------ parameters */

enum { TR_NONE, TR_LOG1P, TR_ZSCORE, TR_ROBUST, TR_LOG1P_ZSCORE, TR_LOG1P_ROBUST, TR_COUNT };
static const char *const tr_names[TR_COUNT] = {"none",   "log1p",        "zscore",
                                               "robust", "log1p_zscore", "log1p_robust"};

static int tr_parse(const char *s)
{
    for (int i = 0; i < TR_COUNT; i++)
        if (strcmp(s, tr_names[i]) == 0)
            return i;
    return -1;
}

typedef struct feature {
    const char *column; /* owned by the config */
    int transform;
    double weight;
    /* filled by the run */
    const cvm_column *col;
    double center, scale; /* of the z-score or robust step (0, 1 when none) */
    size_t imputed;
    double fill;          /* the median used for missing values */
} feature;

typedef struct kparams {
    feature *f;
    size_t d;
    bool k_auto;
    bool skip_missing;
    cvm_kmeans_params km;
    cvm_kmeans_select_params sel;
} kparams;

static int parse(const cvm_config *c, const char *src, kparams *kp, cvm_err *err)
{
    memset(kp, 0, sizeof *kp);
    size_t d = cvm_config_list_len(c, "kmeans.features");
    if (d == 0)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: kmeans.features is empty", src);
    kp->f = cvm_calloc(d, sizeof *kp->f);
    if (kp->f == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory");
    kp->d = d;
    int deftr = tr_parse(cvm_config_str(c, "kmeans.transform"));
    for (size_t i = 0; i < d; i++) {
        kp->f[i].column = cvm_config_list_at(c, "kmeans.features", i);
        kp->f[i].transform = deftr;
        kp->f[i].weight = 1;
        if (*kp->f[i].column == '\0')
            return CVM_FAIL(err, CVM_ECONFIG, "%s: kmeans.features[%zu] is empty", src, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(kp->f[j].column, kp->f[i].column) == 0)
                return CVM_FAIL(err, CVM_ECONFIG, "%s: kmeans.features lists '%s' twice", src,
                                kp->f[i].column);
    }
    size_t nr = cvm_config_table_rows(c, "kmeans.feature_options");
    for (size_t r = 0; r < nr; r++) {
        int line = cvm_config_table_row_line(c, "kmeans.feature_options", r);
        const char *col = cvm_config_table_cell(c, "kmeans.feature_options", r, "column");
        const char *tr = cvm_config_table_cell(c, "kmeans.feature_options", r, "transform");
        const char *wt = cvm_config_table_cell(c, "kmeans.feature_options", r, "weight");
        if (col == NULL || *col == '\0')
            return CVM_FAIL(err, CVM_ECONFIG, "%s:%d: kmeans.feature_options[%zu] needs a column",
                            src, line, r);
        feature *f = NULL;
        for (size_t i = 0; i < d; i++)
            if (strcmp(kp->f[i].column, col) == 0)
                f = &kp->f[i];
        if (f == NULL)
            return CVM_FAIL(err, CVM_ECONFIG,
                            "%s:%d: kmeans.feature_options[%zu].column '%s' is not in "
                            "kmeans.features", src, line, r, col);
        for (size_t q = 0; q < r; q++) {
            const char *o = cvm_config_table_cell(c, "kmeans.feature_options", q, "column");
            if (o && strcmp(o, col) == 0)
                return CVM_FAIL(err, CVM_ECONFIG, "%s:%d: kmeans.feature_options has two rows for '%s'",
                                src, line, col);
        }
        if (tr != NULL && (f->transform = tr_parse(tr)) < 0)
            return CVM_FAIL(err, CVM_ECONFIG,
                            "%s:%d: kmeans.feature_options[%zu].transform '%s' must be one of "
                            "none|log1p|zscore|robust|log1p_zscore|log1p_robust", src, line, r, tr);
        if (wt != NULL && (!cvm_parse_double(wt, strlen(wt), &f->weight) || !(f->weight > 0) ||
                           f->weight > 1000))
            return CVM_FAIL(err, CVM_ECONFIG,
                            "%s:%d: kmeans.feature_options[%zu].weight '%s' must be a number in "
                            "(0, 1000]", src, line, r, wt);
    }
    kp->skip_missing = strcmp(cvm_config_str(c, "kmeans.missing"), "skip") == 0;

    cvm_kmeans_params_default(&kp->km);
    cvm_kmeans_select_params_default(&kp->sel);
    const char *k = cvm_config_str(c, "kmeans.k");
    long kv = 0;
    size_t kmin = (size_t)cvm_config_int(c, "kmeans.k_min");
    size_t kmax = (size_t)cvm_config_int(c, "kmeans.k_max");
    if (kmin > kmax)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: kmeans.k_min (%zu) must not exceed kmeans.k_max (%zu)",
                        src, kmin, kmax);
    if (strcmp(k, "auto") == 0) {
        kp->k_auto = true;
        kp->sel.k_min = kmin;
        kp->sel.k_max = kmax;
        cvm_kmeans_criterion_parse(cvm_config_str(c, "kmeans.criterion"), &kp->sel.criterion);
    } else if (cvm_parse_long(k, strlen(k), &kv) && kv >= 1 && kv <= 1000) {
        kp->sel.k_min = kp->sel.k_max = (size_t)kv;
        /* One row: any criterion would pick it; elbow also accepts k = 1. */
        kp->sel.criterion = CVM_KMEANS_ELBOW;
    } else {
        return CVM_FAIL(err, CVM_ECONFIG, "%s: kmeans.k must be auto or a whole number in [1, 1000], got '%s'",
                        src, k);
    }
    kp->sel.silhouette_sample = (size_t)cvm_config_int(c, "kmeans.silhouette_sample");
    kp->sel.stability_runs = (int)cvm_config_int(c, "kmeans.stability_runs");
    if (kp->k_auto && kp->sel.criterion == CVM_KMEANS_STABILITY && kp->sel.stability_runs < 1)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: kmeans.criterion = stability needs kmeans.stability_runs >= 1",
                        src);
    kp->km.n_init = (int)cvm_config_int(c, "kmeans.n_init");
    kp->km.max_iter = (int)cvm_config_int(c, "kmeans.max_iter");
    kp->km.tol = cvm_config_double(c, "kmeans.tol");
    cvm_kmeans_algorithm_parse(cvm_config_str(c, "kmeans.algorithm"), &kp->km.algorithm);
    kp->km.k = kp->sel.k_max;
    const char *why = cvm_kmeans_params_check(&kp->km);
    if (why == NULL)
        why = cvm_kmeans_select_params_check(&kp->sel);
    if (why)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: kmeans: %s", src, why);
    return CVM_OK;
}

static int check(const cvm_config *cfg, const char *source, cvm_err *err)
{
    kparams kp;
    int rc = parse(cfg, source, &kp, err);
    cvm_free(kp.f);
    return rc;
}

/* ------------------------------------------------------------- features */

static double slog1p(double x) { return x < 0 ? -log1p(-x) : log1p(x); }

/* numpy's linear quantile of a sorted array. */
static double quantile(const double *sorted, size_t n, double q)
{
    return gsl_stats_quantile_from_sorted_data(sorted, 1, n, q);
}

/* Transform column j of the m x d matrix in place; records center, scale. */
static void transform(double *Z, size_t m, size_t d, size_t j, feature *f, double *tmp)
{
    int t = f->transform;
    if (t == TR_LOG1P || t == TR_LOG1P_ZSCORE || t == TR_LOG1P_ROBUST)
        for (size_t i = 0; i < m; i++)
            Z[i * d + j] = slog1p(Z[i * d + j]);
    f->center = 0;
    f->scale = 1;
    if (t == TR_ZSCORE || t == TR_LOG1P_ZSCORE || t == TR_ROBUST || t == TR_LOG1P_ROBUST) {
        double mean = 0, m2 = 0;
        for (size_t i = 0; i < m; i++)
            mean += Z[i * d + j];
        mean /= (double)m;
        for (size_t i = 0; i < m; i++)
            m2 += (Z[i * d + j] - mean) * (Z[i * d + j] - mean);
        double sd = sqrt(m2 / (double)m);
        f->center = mean;
        f->scale = sd > 0 ? sd : 1;
        if (t == TR_ROBUST || t == TR_LOG1P_ROBUST) {
            for (size_t i = 0; i < m; i++)
                tmp[i] = Z[i * d + j];
            gsl_sort(tmp, 1, m);
            double iqr = quantile(tmp, m, 0.75) - quantile(tmp, m, 0.25);
            f->center = quantile(tmp, m, 0.5);
            if (iqr > 0)
                f->scale = iqr;
        }
    }
    double sw = sqrt(f->weight);
    for (size_t i = 0; i < m; i++)
        Z[i * d + j] = (Z[i * d + j] - f->center) / f->scale * sw;
}

static const char *numeric_columns(const cvm_custtab *ct, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < ct->n_cols && o + 2 < len; i++) {
        const cvm_column *c = ct->cols[i];
        if (c->type != CVM_COL_INT && c->type != CVM_COL_DOUBLE)
            continue;
        int w = snprintf(buf + o, len - o, "%s%s", o ? ", " : "", c->name);
        if (w < 0 || (size_t)w >= len - o)
            break;
        o += (size_t)w;
    }
    return buf;
}

/* --------------------------------------------------------------- labels */

typedef struct cluster_info {
    size_t id;          /* index in the fit */
    size_t size;
    double revenue, profit;
    double med[4];      /* medians of recency_days, frequency, monetary, tenure_days */
    int level[4];       /* 0 low, 1 mid, 2 high */
    char label[64];
    char why[256];      /* distinguishing features */
} cluster_info;

static const char *const basis_cols[4] = {"recency_days", "frequency", "monetary", "tenure_days"};

static int cmp_revenue(const void *a, const void *b)
{
    const cluster_info *x = a, *y = b;
    if (x->revenue != y->revenue)
        return x->revenue > y->revenue ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* low when v <= the population's 1/3 quantile, high when above its 2/3. */
static int level(double v, double q1, double q2)
{
    if (isnan(v))
        return 1;
    return v <= q1 ? 0 : v > q2 ? 2 : 1;
}

/* The documented rules (docs/models/kmeans.md), first match wins. */
static void make_label(cluster_info *ci)
{
    static const char *const value[3] = {"low-value", "mid-value", "high-value"};
    static const char *const freq[3] = {"occasional", "regular", "frequent"};
    int R = ci->level[0], F = ci->level[1], M = ci->level[2], T = ci->level[3];
    char *o = ci->label;
    size_t n = sizeof ci->label;
    if (R == 2 && M == 2)
        snprintf(o, n, "lapsed big spenders");
    else if (R == 2)
        snprintf(o, n, "lapsed %s", value[M]);
    else if (T == 0 && F < 2)
        snprintf(o, n, "new %s", value[M]);
    else if (M == 2 && F == 2)
        snprintf(o, n, "high-value frequent");
    else if (M == 2)
        snprintf(o, n, "high-value %s", freq[F]);
    else if (F == 2)
        snprintf(o, n, "frequent %s", value[M]);
    else if (R == 1)
        snprintf(o, n, "cooling %s", value[M]);
    else
        snprintf(o, n, "%s %s", value[M], freq[F]);
}

/* ---------------------------------------------------------------- output */

static void put_num(FILE *f, double v, const char *fmt)
{
    if (!isnan(v) && !isinf(v))
        fprintf(f, fmt, v);
}

static json_t *jnum(double v) { return isfinite(v) ? json_real(v) : json_null(); }

static int write_k_csv(const cvm_stage_ctx *ctx, const cvm_kmeans_kscore *t, size_t m, cvm_err *err)
{
    char *path;
    FILE *f = cvm_rundir_create(ctx->rd, "kmeans_k.csv", &path, err);
    if (f == NULL)
        return err->status;
    fputs("k,inertia,silhouette,calinski_harabasz,davies_bouldin,stability,iterations,chosen\n", f);
    for (size_t i = 0; i < m; i++) {
        fprintf(f, "%zu,", t[i].k);
        put_num(f, t[i].inertia, "%.10g");
        fputc(',', f);
        put_num(f, t[i].silhouette, "%.6f");
        fputc(',', f);
        put_num(f, t[i].calinski_harabasz, "%.6g");
        fputc(',', f);
        put_num(f, t[i].davies_bouldin, "%.6f");
        fputc(',', f);
        put_num(f, t[i].stability, "%.6f");
        fprintf(f, ",%d,%d\n", t[i].n_iter, t[i].chosen ? 1 : 0);
    }
    int rc = cvm_publish_close(f, path, err);
    cvm_free(path);
    return rc;
}

typedef struct fit_data {
    const kparams *kp;
    size_t m, d, k;
    const size_t *rows;     /* m customer rows */
    const double *raw;      /* m x d, original units, missing filled */
    const double *Z;        /* m x d, scaled */
    const int32_t *lab;     /* m, fit labels */
    const double *C;        /* k x d centres, scaled */
    cluster_info *ci;       /* k, in output order */
    size_t *rank;           /* fit label -> output position */
    double tot_rev, tot_profit;
    bool has_profit;
} fit_data;

static int write_clusters_csv(const cvm_stage_ctx *ctx, const fit_data *fd, cvm_err *err)
{
    const size_t m = fd->m, d = fd->d, k = fd->k;
    const feature *F = fd->kp->f;
    double *vals = cvm_malloc((m ? m : 1) * sizeof *vals);
    if (vals == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    char *path;
    FILE *f = cvm_rundir_create(ctx->rd, "clusters.csv", &path, err);
    if (f == NULL) {
        cvm_free(vals);
        return err->status;
    }
    fputs("cluster,label,size,share_customers,share_revenue,share_profit,"
          "recency_level,frequency_level,value_level,tenure_level", f);
    for (size_t j = 0; j < d; j++) {
        fputs(",mean_", f);
        cvm_csv_put(f, F[j].column, strlen(F[j].column));
        fputs(",median_", f);
        cvm_csv_put(f, F[j].column, strlen(F[j].column));
    }
    for (size_t j = 0; j < d; j++) {
        fputs(",center_", f);
        cvm_csv_put(f, F[j].column, strlen(F[j].column));
    }
    fputs(",distinguishing\n", f);
    static const char *const lv[4][3] = {{"recent", "cooling", "lapsed"},
                                         {"occasional", "regular", "frequent"},
                                         {"low", "mid", "high"},
                                         {"new", "established", "long-standing"}};
    for (size_t p = 0; p < k; p++) {
        const cluster_info *c = &fd->ci[p];
        fprintf(f, "%zu,", p + 1);
        cvm_csv_put(f, c->label, strlen(c->label));
        fprintf(f, ",%zu,%.4f,", c->size, m ? (double)c->size / (double)m : 0.0);
        put_num(f, fd->tot_rev != 0 ? c->revenue / fd->tot_rev : NAN, "%.4f");
        fputc(',', f);
        put_num(f, fd->has_profit && fd->tot_profit != 0 ? c->profit / fd->tot_profit : NAN, "%.4f");
        for (int b = 0; b < 4; b++)
            fprintf(f, ",%s", isnan(c->med[b]) ? "" : lv[b][c->level[b]]);
        for (size_t j = 0; j < d; j++) {
            size_t cnt = 0;
            double sum = 0;
            for (size_t i = 0; i < m; i++)
                if ((size_t)fd->lab[i] == c->id) {
                    vals[cnt++] = fd->raw[i * d + j];
                    sum += fd->raw[i * d + j];
                }
            gsl_sort(vals, 1, cnt);
            fputc(',', f);
            put_num(f, cnt ? sum / (double)cnt : NAN, "%.6g");
            fputc(',', f);
            put_num(f, cnt ? quantile(vals, cnt, 0.5) : NAN, "%.6g");
        }
        for (size_t j = 0; j < d; j++) {
            fputc(',', f);
            put_num(f, fd->C[c->id * d + j], "%.4f");
        }
        fputc(',', f);
        cvm_csv_put(f, c->why, strlen(c->why));
        fputc('\n', f);
    }
    cvm_free(vals);
    int rc = cvm_publish_close(f, path, err);
    cvm_free(path);
    return rc;
}

/* Per-cluster profile: size, value, the medians behind the label, and the
 * features whose cluster mean stands out (in sd of the scaled feature). */
static int profile(const cvm_stage_ctx *ctx, fit_data *fd, cvm_err *err)
{
    const size_t m = fd->m, d = fd->d, k = fd->k;
    const cvm_custtab *ct = ctx->ct;
    const cvm_column *mon = cvm_custtab_find(ct, "monetary");
    const cvm_column *pro = cvm_custtab_find(ct, "profit");
    fd->has_profit = pro != NULL;
    double *vals = cvm_malloc((m ? m : 1) * sizeof *vals);
    double *zmean = cvm_calloc(d, sizeof *zmean), *zsd = cvm_calloc(d, sizeof *zsd);
    double *cmean = cvm_calloc(k * d, sizeof *cmean);
    if (!vals || !zmean || !zsd || !cmean) {
        cvm_free(vals);
        cvm_free(zmean);
        cvm_free(zsd);
        cvm_free(cmean);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    cluster_info *ci = fd->ci;
    for (size_t c = 0; c < k; c++)
        ci[c].id = c;
    for (size_t i = 0; i < m; i++) {
        cluster_info *c = &ci[fd->lab[i]];
        c->size++;
        double r = mon ? cvm_column_number(mon, fd->rows[i]) : NAN;
        double p = pro ? cvm_column_number(pro, fd->rows[i]) : NAN;
        if (!isnan(r)) {
            c->revenue += r;
            fd->tot_rev += r;
        }
        if (!isnan(p)) {
            c->profit += p;
            fd->tot_profit += p;
        }
        for (size_t j = 0; j < d; j++) {
            zmean[j] += fd->Z[i * d + j];
            cmean[(size_t)fd->lab[i] * d + j] += fd->Z[i * d + j];
        }
    }
    for (size_t j = 0; j < d; j++)
        zmean[j] /= (double)m;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < d; j++)
            zsd[j] += (fd->Z[i * d + j] - zmean[j]) * (fd->Z[i * d + j] - zmean[j]);
    for (size_t j = 0; j < d; j++)
        zsd[j] = sqrt(zsd[j] / (double)m);

    /* Medians of the label basis, per cluster and for the population. */
    for (int b = 0; b < 4; b++) {
        const cvm_column *col = cvm_custtab_find(ct, basis_cols[b]);
        size_t cnt = 0;
        for (size_t i = 0; col && i < m; i++) {
            double v = cvm_column_number(col, fd->rows[i]);
            if (!isnan(v))
                vals[cnt++] = v;
        }
        double q1 = NAN, q2 = NAN;
        if (cnt) {
            gsl_sort(vals, 1, cnt);
            q1 = quantile(vals, cnt, 1.0 / 3);
            q2 = quantile(vals, cnt, 2.0 / 3);
        }
        for (size_t c = 0; c < k; c++) {
            cnt = 0;
            for (size_t i = 0; col && i < m; i++) {
                double v = cvm_column_number(col, fd->rows[i]);
                if ((size_t)fd->lab[i] == c && !isnan(v))
                    vals[cnt++] = v;
            }
            gsl_sort(vals, 1, cnt);
            ci[c].med[b] = cnt ? quantile(vals, cnt, 0.5) : NAN;
            ci[c].level[b] = level(ci[c].med[b], q1, q2);
        }
    }
    for (size_t c = 0; c < k; c++) {
        make_label(&ci[c]);
        /* Up to three features more than half an sd from the mean. */
        bool used[64] = {false};
        size_t o = 0;
        ci[c].why[0] = '\0';
        for (int r = 0; r < 3; r++) {
            size_t best = d;
            double bz = 0.5;
            for (size_t j = 0; j < d && j < 64; j++) {
                double z = ci[c].size && zsd[j] > 0
                               ? (cmean[c * d + j] / (double)ci[c].size - zmean[j]) / zsd[j]
                               : 0;
                if (!used[j] && fabs(z) >= bz) {
                    bz = fabs(z);
                    best = j;
                }
            }
            if (best == d)
                break;
            used[best] = true;
            double z = (cmean[c * d + best] / (double)ci[c].size - zmean[best]) / zsd[best];
            int w = snprintf(ci[c].why + o, sizeof ci[c].why - o, "%s%s %s (%+.1f sd)",
                             o ? "; " : "", fd->kp->f[best].column, z > 0 ? "high" : "low", z);
            if (w < 0 || (size_t)w >= sizeof ci[c].why - o)
                break;
            o += (size_t)w;
        }
        if (o == 0)
            snprintf(ci[c].why, sizeof ci[c].why, "close to the average on every feature");
    }
    cvm_free(vals);
    cvm_free(zmean);
    cvm_free(zsd);
    cvm_free(cmean);

    /* Output order: decreasing revenue, ties by fit index. */
    qsort(ci, k, sizeof *ci, cmp_revenue);
    for (size_t p = 0; p < k; p++)
        fd->rank[ci[p].id] = p;
    /* Labels are keys for the action table: make them unique. The second
     * cluster with a label gets " 2", the third " 3", in output order. */
    for (size_t p = k; p-- > 0;) {
        int dup = 1;
        for (size_t q = 0; q < p; q++)
            dup += strcmp(ci[q].label, ci[p].label) == 0;
        if (dup > 1) {
            size_t l = strlen(ci[p].label);
            snprintf(ci[p].label + l, sizeof ci[p].label - l, " %d", dup);
        }
    }
    return CVM_OK;
}

/* ------------------------------------------------------------------ run */

static int run(cvm_stage_ctx *ctx, cvm_err *err)
{
    kparams kp;
    int rc = parse(ctx->cfg, ctx->cfg_source, &kp, err);
    cvm_custtab *ct = ctx->ct;
    const size_t d = kp.d, n = ct->n_rows;
    size_t *rows = NULL;
    double *raw = NULL, *Z = NULL, *tmp = NULL;
    cvm_kmeans_kscore *table = NULL;
    cvm_kmeans *km = NULL;
    cluster_info *ci = NULL;
    size_t *rank = NULL;
    if (rc != CVM_OK)
        goto done;

    const cvm_column *rec = cvm_custtab_find(ct, "recency_days");
    if (rec == NULL) {
        rc = CVM_FAIL(err, CVM_EINTERNAL, "kmeans: the customer table has no recency_days");
        goto done;
    }
    for (size_t j = 0; j < d; j++) {
        const cvm_column *col = cvm_custtab_find(ct, kp.f[j].column);
        if (col == NULL || (col->type != CVM_COL_INT && col->type != CVM_COL_DOUBLE)) {
            char buf[2048];
            rc = CVM_FAIL(err, CVM_ECONFIG, "%s: kmeans.features: '%s' is %s; numeric columns are: %s",
                          ctx->cfg_source, kp.f[j].column,
                          col ? "not a numeric column" : "not a column of the customer table",
                          numeric_columns(ct, buf, sizeof buf));
            goto done;
        }
        kp.f[j].col = col;
    }
    rows = cvm_malloc((n ? n : 1) * sizeof *rows);
    raw = cvm_malloc((n ? n : 1) * d * sizeof *raw);
    tmp = cvm_malloc((n ? n : 1) * sizeof *tmp);
    if (!rows || !raw || !tmp) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory for %zu customers", n);
        goto done;
    }
    /* Customers with purchases; missing cells NAN for now. */
    size_t m = 0, skipped = 0;
    for (size_t r = 0; r < n; r++) {
        if (isnan(cvm_column_number(rec, r)))
            continue;
        bool miss = false;
        for (size_t j = 0; j < d; j++) {
            double v = cvm_column_number(kp.f[j].col, r);
            raw[m * d + j] = v;
            miss |= !isfinite(v);
        }
        if (miss && kp.skip_missing) {
            skipped++;
            continue;
        }
        rows[m++] = r;
    }
    for (size_t j = 0; j < d && !kp.skip_missing; j++) {
        size_t cnt = 0;
        for (size_t i = 0; i < m; i++)
            if (isfinite(raw[i * d + j]))
                tmp[cnt++] = raw[i * d + j];
        if (cnt == 0 && m > 0) {
            rc = CVM_FAIL(err, CVM_EDATA, "kmeans: feature '%s' is empty for every customer with purchases",
                          kp.f[j].column);
            goto done;
        }
        gsl_sort(tmp, 1, cnt);
        kp.f[j].fill = cnt ? quantile(tmp, cnt, 0.5) : NAN;
        for (size_t i = 0; i < m; i++)
            if (!isfinite(raw[i * d + j])) {
                raw[i * d + j] = kp.f[j].fill;
                kp.f[j].imputed++;
            }
    }
    if (m < kp.sel.k_max) {
        if (kp.k_auto && m >= kp.sel.k_min && m >= 2) {
            kp.sel.k_max = m; /* fewer customers than k_max: try what can be tried */
        } else {
            rc = CVM_FAIL(err, CVM_EDATA, "kmeans: k = %zu needs at least %zu customers with purchases, "
                          "found %zu", kp.sel.k_max, kp.sel.k_max, m);
            goto done;
        }
    }
    Z = cvm_malloc(m * d * sizeof *Z);
    size_t nk = kp.sel.k_max - kp.sel.k_min + 1;
    table = cvm_calloc(nk, sizeof *table);
    if (!Z || !table) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory for %zu customers", m);
        goto done;
    }
    memcpy(Z, raw, m * d * sizeof *Z);
    for (size_t j = 0; j < d; j++)
        transform(Z, m, d, j, &kp.f[j], tmp);

    kp.km.seed = ctx->seed;
    kp.km.threads = ctx->threads;
    rc = cvm_kmeans_select(&kp.km, &kp.sel, Z, m, d, table, &km, err);
    if (rc != CVM_OK)
        goto done;
    const size_t k = cvm_kmeans_k(km);
    const int32_t *lab = cvm_kmeans_labels(km);
    ci = cvm_calloc(k, sizeof *ci);
    rank = cvm_calloc(k, sizeof *rank);
    if (!ci || !rank) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory");
        goto done;
    }
    fit_data fd = {&kp, m, d, k, rows, raw, Z, lab, cvm_kmeans_centers(km), ci, rank, 0, 0, false};
    rc = profile(ctx, &fd, err);
    if (rc != CVM_OK)
        goto done;

    int64_t *cl = cvm_custtab_add_int(ct, "cluster", "",
        "k-means segment 1..k (clusters.csv), numbered by decreasing share of revenue. Empty "
        "without purchases (or with a missing feature when kmeans.missing = skip).", err);
    char **cll = cl ? cvm_custtab_add_str(ct, "cluster_label",
        "Readable name of the k-means segment from its profile (docs/models/kmeans.md), e.g. "
        "\"lapsed big spenders\"; a key for the action table.", err) : NULL;
    if (cll == NULL) {
        rc = err->status;
        goto done;
    }
    for (size_t i = 0; i < m; i++) {
        size_t p = rank[lab[i]];
        cl[rows[i]] = (int64_t)p + 1;
        if ((cll[rows[i]] = cvm_strdup(ci[p].label)) == NULL) {
            rc = CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory");
            goto done;
        }
    }
    rc = write_clusters_csv(ctx, &fd, err);
    if (rc == CVM_OK)
        rc = write_k_csv(ctx, table, nk, err);
    if (rc != CVM_OK)
        goto done;

    cvm_kmeans_stats st;
    cvm_kmeans_get_stats(km, &st);
    json_t *J = json_object();
    json_object_set_new(J, "k", json_integer((json_int_t)k));
    json_object_set_new(J, "k_mode", json_string(kp.k_auto ? "auto" : "fixed"));
    json_object_set_new(J, "criterion", kp.k_auto ? json_string(cvm_kmeans_criterion_name(kp.sel.criterion))
                                                  : json_null());
    json_object_set_new(J, "customers", json_integer((json_int_t)m));
    json_object_set_new(J, "skipped_missing", json_integer((json_int_t)skipped));
    json_object_set_new(J, "inertia", jnum(cvm_kmeans_inertia(km)));
    json_object_set_new(J, "iterations", json_integer(st.n_iter));
    json_object_set_new(J, "converged", json_boolean(st.converged));
    json_object_set_new(J, "algorithm", json_string(cvm_kmeans_algorithm_name(st.algorithm)));
    json_object_set_new(J, "n_init", json_integer(kp.km.n_init));
    json_object_set_new(J, "tol", json_real(kp.km.tol));
    json_object_set_new(J, "seed", json_integer((json_int_t)ctx->seed));
    json_t *fa = json_array();
    for (size_t j = 0; j < d; j++) {
        json_t *o = json_object();
        json_object_set_new(o, "column", json_string(kp.f[j].column));
        json_object_set_new(o, "transform", json_string(tr_names[kp.f[j].transform]));
        json_object_set_new(o, "weight", json_real(kp.f[j].weight));
        json_object_set_new(o, "center", jnum(kp.f[j].center));
        json_object_set_new(o, "scale", jnum(kp.f[j].scale));
        json_object_set_new(o, "imputed", json_integer((json_int_t)kp.f[j].imputed));
        json_object_set_new(o, "fill", jnum(kp.f[j].fill));
        json_array_append_new(fa, o);
    }
    json_object_set_new(J, "features", fa);
    json_t *ta = json_array();
    for (size_t i = 0; i < nk; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "k", json_integer((json_int_t)table[i].k));
        json_object_set_new(o, "inertia", jnum(table[i].inertia));
        json_object_set_new(o, "silhouette", jnum(table[i].silhouette));
        json_object_set_new(o, "calinski_harabasz", jnum(table[i].calinski_harabasz));
        json_object_set_new(o, "davies_bouldin", jnum(table[i].davies_bouldin));
        json_object_set_new(o, "stability", jnum(table[i].stability));
        json_object_set_new(o, "iterations", json_integer(table[i].n_iter));
        json_object_set_new(o, "chosen", json_boolean(table[i].chosen));
        json_array_append_new(ta, o);
    }
    json_object_set_new(J, "k_table", ta);
    json_t *ca = json_array();
    for (size_t p = 0; p < k; p++) {
        json_t *o = json_object();
        json_object_set_new(o, "cluster", json_integer((json_int_t)p + 1));
        json_object_set_new(o, "label", json_string(ci[p].label));
        json_object_set_new(o, "size", json_integer((json_int_t)ci[p].size));
        json_array_append_new(ca, o);
    }
    json_object_set_new(J, "clusters", ca);
    json_object_set_new((json_t *)ctx->models_json, "kmeans", J);
    cvm_log_msg(ctx->log, CVM_LOG_INFO, "kmeans: k = %zu (%s) on %zu customers x %zu features, inertia %.6g",
                k, kp.k_auto ? cvm_kmeans_criterion_name(kp.sel.criterion) : "fixed", m, d,
                cvm_kmeans_inertia(km));
done:
    cvm_free(kp.f);
    cvm_free(rows);
    cvm_free(raw);
    cvm_free(Z);
    cvm_free(tmp);
    cvm_free(table);
    cvm_free(ci);
    cvm_free(rank);
    cvm_kmeans_free(km);
    return rc;
}

const cvm_stage cvm_stage_kmeans = {"kmeans", schema, sizeof schema / sizeof schema[0], check, run};
