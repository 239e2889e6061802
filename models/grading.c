#include "grading.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "keysort.h"
#include "parallel.h"

void cvm_grading_params_default(cvm_grading_params *p)
{
    memset(p, 0, sizeof *p);
    p->one_vote_revenue = 0;
    p->tier_high = 0.8;
    p->tier_mid = 0.5;
    static const char m[3][3] = {{'A', 'A', 'B'}, {'A', 'B', 'C'}, {'B', 'C', 'C'}};
    memcpy(p->matrix, m, sizeof m);
    p->volume_large = 0.8;
    p->volume_medium = 0.5;
    p->sat_high = 4.0;
    p->sat_medium = 3.0;
}

const char *cvm_grading_params_check(const cvm_grading_params *p)
{
    if (!(p->tier_mid > 0 && p->tier_mid < p->tier_high && p->tier_high < 1))
        return "grading tiers need 0 < tier_mid < tier_high < 1";
    if (!(p->volume_medium > 0 && p->volume_medium < p->volume_large && p->volume_large < 1))
        return "grid volume cut-offs need 0 < volume_medium < volume_large < 1";
    if (!(p->sat_medium < p->sat_high))
        return "grid satisfaction cut-offs need satisfaction_medium < satisfaction_high";
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (p->matrix[i][j] < 'A' || p->matrix[i][j] > 'Z')
                return "grade matrix entries must be letters A-Z";
    return NULL;
}

/* Mid-rank percentile in [0, 1] among rows where include[i] and v is a
 * number: equal values share a percentile, so ties never split a tier. */
static int percentiles(const cvm_column *c, const bool *include, size_t n, double *out)
{
    cvm_vi *k = cvm_malloc((n ? n : 1) * sizeof *k);
    if (k == NULL)
        return CVM_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        out[i] = NAN;
        double v = cvm_column_number(c, i);
        if (include[i] && !isnan(v)) {
            k[m].v = v;
            k[m].i = i;
            m++;
        }
    }
    if (cvm_sort_vi(k, m, false) != CVM_OK) {
        cvm_free(k);
        return CVM_ENOMEM;
    }
    for (size_t a = 0; a < m;) {
        size_t b = a;
        while (b < m && k[b].v == k[a].v)
            b++;
        double mid = m > 1 ? ((double)(a + b - 1) / 2.0) / (double)(m - 1) : 1.0;
        for (size_t r = a; r < b; r++)
            out[k[r].i] = mid;
        a = b;
    }
    cvm_free(k);
    return CVM_OK;
}

static int tier(double pct, double hi, double mid)
{
    return pct >= hi ? 0 : pct >= mid ? 1 : 2;
}

int cvm_grading_run(const cvm_grading_params *p, cvm_custtab *ct, cvm_grading_result *res,
                    cvm_err *err)
{
    const char *why = cvm_grading_params_check(p);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "grading: %s", why);
    memset(res, 0, sizeof *res);
    const cvm_column *crev = cvm_custtab_find(ct, "revenue_recent");
    const cvm_column *cprof = cvm_custtab_find(ct, "profit");
    const cvm_column *cfreq = cvm_custtab_find(ct, "frequency");
    const cvm_column *cinf = cvm_custtab_find(ct, "influence");
    const cvm_column *csat = cvm_custtab_find(ct, "satisfaction");
    if (!crev || !cfreq || (p->basis_profit && !cprof))
        return CVM_FAIL(err, CVM_EINVAL, "grading: needs revenue_recent, frequency%s",
                        p->basis_profit ? " and profit" : "");
    size_t n = ct->n_rows;
    double *vp = cvm_custtab_add_double(ct, "value_percentile", "share",
        "Percentile (mid-rank, 0..1) of revenue_recent, or of profit with grading.basis = profit, among customers with purchases.", 4, err);
    if (!vp) return err->status;
    double *ip = cvm_custtab_add_double(ct, "influence_percentile", "share",
        "Percentile of the master's influence (empty when the column is absent).", 4, err);
    if (!ip) return err->status;
    char **grade = cvm_custtab_add_labels(ct, "grade",
        "Value grade: A by the one-vote rule or the value x influence matrix, then B, C; D = no purchases.", err);
    if (!grade) return err->status;
    char **greason = cvm_custtab_add_str(ct, "grade_reason", "Why the grade, in words.", err);
    if (!greason) return err->status;
    char **vol = cvm_custtab_add_labels(ct, "volume_tier",
        "large / medium / small by revenue_recent percentile (grid.volume_large, grid.volume_medium).", err);
    if (!vol) return err->status;
    char **satl = cvm_custtab_add_labels(ct, "satisfaction_level",
        "high / medium / low from the master's satisfaction (grid.satisfaction_high, grid.satisfaction_medium); empty when unknown.", err);
    if (!satl) return err->status;
    char **cls = cvm_custtab_add_labels(ct, "grid_class",
        "Satisfaction x volume class A..I (rows high/medium/low satisfaction, columns large/medium/small volume); G = large and unhappy.", err);
    if (!cls) return err->status;
    char **sv = cvm_custtab_add_labels(ct, "strategy_volume",
        "one_to_one (key account), one_to_many (regional rep) or via_retailer, from the volume tier.", err);
    if (!sv) return err->status;
    char **ss = cvm_custtab_add_labels(ct, "strategy_satisfaction",
        "partner, improve or correct, from the satisfaction level.", err);
    if (!ss) return err->status;

    bool *buyer = cvm_malloc((n ? n : 1) * sizeof *buyer);
    double *volp = cvm_malloc((n ? n : 1) * sizeof *volp);
    if (!buyer || !volp) {
        cvm_free(buyer);
        cvm_free(volp);
        return CVM_FAIL(err, CVM_ENOMEM, "grading: out of memory");
    }
    for (size_t i = 0; i < n; i++)
        buyer[i] = cvm_column_number(cfreq, i) > 0;
    /* The percentiles are independent sorts: in parallel. */
    const cvm_column *pc[3] = {p->basis_profit ? cprof : crev, crev, cinf};
    double *po[3] = {vp, volp, ip};
    int rc = CVM_OK;
#pragma omp parallel for num_threads(cvm_threads(p->threads)) schedule(dynamic, 1) default(none) \
    shared(pc, po, buyer, n, rc)
    for (int j = 0; j < 3; j++) {
        if (pc[j] && percentiles(pc[j], buyer, n, po[j]) != CVM_OK) {
#pragma omp atomic write
            rc = CVM_ENOMEM;
        }
    }
    if (rc != CVM_OK) {
        cvm_free(buyer);
        cvm_free(volp);
        return CVM_FAIL(err, CVM_ENOMEM, "grading: out of memory");
    }
    res->used_influence = cinf != NULL;
    res->used_satisfaction = csat != NULL;
    static const char *const vt_name[3] = {"large", "medium", "small"};
    static const char *const vt_strat[3] = {"one_to_one", "one_to_many", "via_retailer"};
    static const char *const st_name[3] = {"high", "medium", "low"};
    static const char *const st_strat[3] = {"partner", "improve", "correct"};
    static const char *const tier_name[3] = {"high", "mid", "low"};
    /* The label vocabulary, interned in the table once: cells point to it. */
    const char *L_vt[3], *L_vs[3], *L_st[3], *L_ss[3], *L_grade[26], *L_cls[9];
    bool lab_ok = true;
    for (int j = 0; j < 3; j++) {
        lab_ok &= (L_vt[j] = cvm_custtab_label(ct, vt_name[j])) != NULL;
        lab_ok &= (L_vs[j] = cvm_custtab_label(ct, vt_strat[j])) != NULL;
        lab_ok &= (L_st[j] = cvm_custtab_label(ct, st_name[j])) != NULL;
        lab_ok &= (L_ss[j] = cvm_custtab_label(ct, st_strat[j])) != NULL;
    }
    for (int j = 0; j < 26; j++) {
        char g[2] = {(char)('A' + j), 0};
        lab_ok &= (L_grade[j] = cvm_custtab_label(ct, g)) != NULL;
        if (j < 9)
            L_cls[j] = L_grade[j];
    }
    /* Rows in parallel; what each row counts for is kept (code[i]) and
     * summed afterwards in row order. */
    int8_t *code = lab_ok ? cvm_malloc((n ? n : 1) * 2) : NULL;
    if (code == NULL) {
        cvm_free(buyer);
        cvm_free(volp);
        return CVM_FAIL(err, CVM_ENOMEM, "grading: out of memory");
    }
    long nl = (long)n;
#pragma omp parallel for num_threads(cvm_threads(p->threads)) schedule(static) default(none) \
    shared(p, nl, crev, cinf, csat, vp, ip, volp, buyer, grade, greason, vol, sv, satl, ss, cls, \
           code, rc, L_vt, L_vs, L_st, L_ss, L_grade, L_cls, tier_name)
    for (long i = 0; i < nl; i++) {
        int8_t *ci = code + 2 * i; /* [0] grade letter - 'A' (+8: one vote), [1] class or -1 / -2 */
        ci[1] = -1;
        char reason[256];
        char g = 'D';
        ci[0] = 0;
        double rrev = cvm_column_number(crev, i);
        if (!buyer[i]) {
            snprintf(reason, sizeof reason, "no purchases");
        } else if (p->one_vote_revenue > 0 && rrev >= p->one_vote_revenue) {
            g = 'A';
            ci[0] = 8;
            snprintf(reason, sizeof reason, "one vote: recent revenue %.0f >= %.0f", rrev,
                     p->one_vote_revenue);
        } else {
            int vt = tier(vp[i], p->tier_high, p->tier_mid);
            if (cinf && !isnan(ip[i])) {
                int it = tier(ip[i], p->tier_high, p->tier_mid);
                g = p->matrix[vt][it];
                snprintf(reason, sizeof reason, "%s percentile %.0f (%s), influence percentile %.0f (%s)",
                         p->basis_profit ? "profit" : "revenue", 100 * vp[i], tier_name[vt],
                         100 * ip[i], tier_name[it]);
            } else {
                g = (char)('A' + vt);
                snprintf(reason, sizeof reason, "%s percentile %.0f (%s)%s",
                         p->basis_profit ? "profit" : "revenue", 100 * vp[i], tier_name[vt],
                         cinf ? ", influence unknown" : "");
            }
        }
        grade[i] = (char *)L_grade[g >= 'A' && g <= 'Z' ? g - 'A' : 3];
        greason[i] = cvm_strdup(reason);
        ci[0] = (int8_t)((ci[0] == 8 ? 8 : 0) + (g >= 'A' && g <= 'D' ? g - 'A' : 4));
        if (!grade[i] || !greason[i]) {
#pragma omp atomic write
            rc = CVM_ENOMEM;
        }
        if (!buyer[i])
            continue;
        int vt = tier(volp[i], p->volume_large, p->volume_medium);
        vol[i] = (char *)L_vt[vt];
        sv[i] = (char *)L_vs[vt];
        if (!vol[i] || !sv[i]) {
#pragma omp atomic write
            rc = CVM_ENOMEM;
        }
        double sat = csat ? cvm_column_number(csat, i) : NAN;
        if (isnan(sat)) {
            ci[1] = -2;
            continue;
        }
        int st = sat >= p->sat_high ? 0 : sat >= p->sat_medium ? 1 : 2;
        satl[i] = (char *)L_st[st];
        ss[i] = (char *)L_ss[st];
        cls[i] = (char *)L_cls[st * 3 + vt];
        ci[1] = (int8_t)(st * 3 + vt);
        if (!satl[i] || !ss[i] || !cls[i]) {
#pragma omp atomic write
            rc = CVM_ENOMEM;
        }
    }
    for (size_t i = 0; i < n && rc == CVM_OK; i++) {
        int g = code[2 * i], c = code[2 * i + 1];
        res->one_vote += g >= 8;
        res->grade_counts[g & 7]++;
        if (c == -2)
            res->no_satisfaction++;
        else if (c >= 0)
            res->class_counts[c]++;
    }
    cvm_free(code);
    cvm_free(buyer);
    cvm_free(volp);
    if (rc != CVM_OK)
        return CVM_FAIL(err, CVM_ENOMEM, "grading: out of memory");
    return CVM_OK;
}
