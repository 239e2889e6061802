#include "rfm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "keysort.h"
#include "parallel.h"

/* Scores for 5 bins in the style of the common RFM segment maps (Putler,
 * Klaviyo): first match wins, so the order matters. */
static const cvm_rfm_segment_rule default_segments[] = {
    {"Champions", 4, 5, 4, 5, 4, 5},
    {"Loyal", 3, 5, 3, 5, 3, 5},
    {"Cannot lose", 1, 2, 4, 5, 4, 5},
    {"At risk", 1, 2, 3, 5, 1, 5},
    {"Potential loyalist", 4, 5, 2, 3, 1, 5},
    {"New", 5, 5, 1, 1, 1, 5},
    {"Promising", 4, 4, 1, 1, 1, 5},
    {"Need attention", 3, 3, 2, 3, 1, 5},
    {"About to sleep", 3, 3, 1, 1, 1, 5},
    {"Hibernating", 2, 2, 1, 2, 1, 5},
    {"Lost", 1, 1, 1, 2, 1, 5},
};

const cvm_rfm_segment_rule *cvm_rfm_default_segments(size_t *n)
{
    *n = sizeof default_segments / sizeof default_segments[0];
    return default_segments;
}

void cvm_rfm_params_default(cvm_rfm_params *p)
{
    memset(p, 0, sizeof *p);
    p->bins = 5;
}

const char *cvm_rfm_params_check(const cvm_rfm_params *p)
{
    if (p->bins < 2 || p->bins > CVM_RFM_MAX_BINS)
        return "rfm.bins must be within [2, 10]";
    if (p->use_breaks)
        for (int m = 0; m < 3; m++)
            for (int j = 1; j < p->bins - 1; j++)
                if (!(p->breaks[m][j] >= p->breaks[m][j - 1]))
                    /* Equal points are allowed: frozen quantile cut-offs of
                     * heavily tied data repeat, leaving a score empty. */
                    return "rfm break points must be ascending";
    if (p->n_segments > 31)
        return "at most 31 RFM segments";
    return NULL;
}

/* numpy 1.24's np.quantile(..., method="linear") of the ranks 1..n at
 * np.linspace(0, 1, bins+1), with the same floating-point operations, so
 * that bins agree with pandas even where an edge lands on an integer. */
static void qcut_edges(size_t n, int bins, double *edges)
{
    double step = 1.0 / (double)bins;
    for (int j = 0; j <= bins; j++) {
        double q = j == bins ? 1.0 : (double)j * step;
        double v = (double)(n - 1) * q;
        double prev = floor(v);
        double gamma = v - prev;
        size_t lo = (size_t)prev;
        size_t hi = lo + 1 < n ? lo + 1 : n - 1;
        double a = (double)(lo + 1), b = (double)(hi + 1);
        double diff = b - a;
        edges[j] = gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
    }
}

int cvm_rfm_qcut_bin(size_t k, size_t n, int bins)
{
    double e[CVM_RFM_MAX_BINS + 1];
    qcut_edges(n, bins, e);
    /* pandas: searchsorted(edges, x, side="left"), x == edges[0] -> 1. */
    int b = 0;
    for (int j = 0; j <= bins; j++)
        if (e[j] < (double)k)
            b = j + 1;
    if (b < 1)
        b = 1;
    if (b > bins)
        b = bins;
    return b;
}

int cvm_rfm_run(const cvm_rfm_params *p, cvm_custtab *ct, cvm_rfm_result *res, cvm_err *err)
{
    const char *why = cvm_rfm_params_check(p);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "rfm: %s", why);
    memset(res, 0, sizeof *res);
    const cvm_column *cr = cvm_custtab_find(ct, "recency_days");
    const cvm_column *cf = cvm_custtab_find(ct, "frequency");
    const cvm_column *cm = cvm_custtab_find(ct, "monetary");
    if (!cr || !cf || !cm)
        return CVM_FAIL(err, CVM_EINVAL, "rfm: needs recency_days, frequency and monetary columns");
    size_t n = ct->n_rows;
    int64_t *rs = cvm_custtab_add_int(ct, "r_score", "score",
        "Recency score 1..rfm.bins (high = bought recently). Empty without purchases.", err);
    if (!rs) return err->status;
    int64_t *fs = cvm_custtab_add_int(ct, "f_score", "score", "Frequency score 1..rfm.bins.", err);
    if (!fs) return err->status;
    int64_t *ms = cvm_custtab_add_int(ct, "m_score", "score", "Monetary score 1..rfm.bins.", err);
    if (!ms) return err->status;
    char **cell = cvm_custtab_add_labels(ct, "rfm_cell", "The three scores as digits, e.g. 545.", err);
    if (!cell) return err->status;
    char **seg = cvm_custtab_add_labels(ct, "rfm_segment",
        "Named segment from rfm.segments (first matching rule), e.g. Champions.", err);
    if (!seg) return err->status;

    /* The three measures are independent: one sort each, in parallel. */
    const cvm_column *src[3] = {cr, cf, cm};
    int64_t *dst[3] = {rs, fs, ms};
    size_t scored[3] = {0, 0, 0};
    int nomem = 0;
#pragma omp parallel for num_threads(cvm_threads(p->threads)) schedule(dynamic, 1) default(none) \
    shared(src, dst, scored, nomem, cr, n, p, res)
    for (int meas = 0; meas < 3; meas++) {
        cvm_vi *k = cvm_malloc((n ? n : 1) * sizeof *k);
        if (k == NULL) {
#pragma omp atomic write
            nomem = 1;
            continue;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (cvm_column_number(cr, i) != cvm_column_number(cr, i))
                continue; /* no purchase: not scored */
            k[m].v = cvm_column_number(src[meas], i);
            k[m].i = i;
            m++;
        }
        scored[meas] = m;
        /* Stable order by value then id: rank(method="first"). */
        if (cvm_sort_vi(k, m, false) != CVM_OK) {
            cvm_free(k);
#pragma omp atomic write
            nomem = 1;
            continue;
        }
        int bins = p->bins;
        double edges[CVM_RFM_MAX_BINS + 1];
        qcut_edges(m, bins, edges);
        int b = 1;
        for (size_t r = 0; r < m; r++) {
            int score;
            if (p->use_breaks) {
                score = 1;
                for (int j = 0; j < bins - 1; j++)
                    if (k[r].v > p->breaks[meas][j])
                        score = j + 2;
            } else {
                double rank = (double)(r + 1);
                while (b < bins && edges[b] < rank)
                    b++;
                score = b;
            }
            /* Recency: fewer days is better. */
            dst[meas][k[r].i] = meas == 0 ? bins + 1 - score : score;
            /* Cut-off j = largest value with raw bin j+1. */
            if (score < bins)
                res->cutoffs[meas][score - 1] = k[r].v;
        }
        if (p->use_breaks)
            memcpy(res->cutoffs[meas], p->breaks[meas], sizeof res->cutoffs[meas]);
        cvm_free(k);
    }
    if (nomem)
        return CVM_FAIL(err, CVM_ENOMEM, "rfm: out of memory");
    res->scored = scored[2];

    size_t nseg;
    const cvm_rfm_segment_rule *segs = p->segments ? p->segments : cvm_rfm_default_segments(&nseg);
    if (p->segments)
        nseg = p->n_segments;
    res->n_segment_names = nseg + 1;
    for (size_t s = 0; s < nseg; s++)
        res->segment_names[s] = segs[s].name;
    res->segment_names[nseg] = "Other";
    /* The labels (every cell b^3, every segment name) interned in the table
     * once; then cells and names per customer, in parallel; counts after. */
    const int B = p->bins;
    const char **L_cell = cvm_malloc((size_t)(B * B * B) * sizeof *L_cell);
    const char *L_seg[32];
    bool lab_ok = L_cell != NULL;
    for (int c3 = 0; lab_ok && c3 < B * B * B; c3++) {
        int r = c3 / (B * B) + 1, f = c3 / B % B + 1, m = c3 % B + 1;
        char buf[40];
        if (B == 10)
            snprintf(buf, sizeof buf, "%d-%d-%d", r, f, m);
        else
            snprintf(buf, sizeof buf, "%d%d%d", r, f, m);
        lab_ok = (L_cell[c3] = cvm_custtab_label(ct, buf)) != NULL;
    }
    for (size_t j = 0; lab_ok && j <= nseg; j++)
        lab_ok = (L_seg[j] = cvm_custtab_label(ct, res->segment_names[j])) != NULL;
    uint8_t *hit_of = lab_ok ? cvm_malloc(n ? n : 1) : NULL;
    if (hit_of == NULL) {
        cvm_free(L_cell);
        return CVM_FAIL(err, CVM_ENOMEM, "rfm: out of memory");
    }
    long nl = (long)n;
#pragma omp parallel for num_threads(cvm_threads(p->threads)) schedule(static) default(none) \
    shared(rs, fs, ms, cell, seg, segs, nseg, hit_of, nl, L_cell, L_seg) firstprivate(B)
    for (long i = 0; i < nl; i++) {
        hit_of[i] = UINT8_MAX;
        if (rs[i] == CVM_INT_NONE)
            continue;
        cell[i] = (char *)L_cell[(rs[i] - 1) * B * B + (fs[i] - 1) * B + (ms[i] - 1)];
        size_t hit = nseg;
        for (size_t s = 0; s < nseg; s++) {
            const cvm_rfm_segment_rule *g = &segs[s];
            if (rs[i] >= g->r_lo && rs[i] <= g->r_hi && fs[i] >= g->f_lo && fs[i] <= g->f_hi &&
                ms[i] >= g->m_lo && ms[i] <= g->m_hi) {
                hit = s;
                break;
            }
        }
        seg[i] = (char *)L_seg[hit];
        hit_of[i] = (uint8_t)hit;
    }
    for (size_t i = 0; i < n; i++)
        if (hit_of[i] != UINT8_MAX)
            res->segment_counts[hit_of[i]]++;
    cvm_free(hit_of);
    cvm_free(L_cell);
    return CVM_OK;
}
