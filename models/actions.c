#include "actions.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "parallel.h"

#define MAX_CONDS 8
#define MAX_ALTS 12
#define TOKEN 64

typedef struct cond {
    char column[TOKEN];
    bool negate;
    int n_alts;
    char alt[MAX_ALTS][TOKEN];
    const cvm_column *col;
} cond;

typedef struct rule {
    bool always;
    int n;
    cond c[MAX_CONDS];
} rule;

static void trim_copy(char *dst, const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len >= TOKEN)
        len = TOKEN - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* Parses `a=x|y & b!=z`; returns NULL or the problem. */
static const char *parse_when(const char *when, rule *r)
{
    memset(r, 0, sizeof *r);
    if (when == NULL)
        return "missing 'when'";
    char tmp[TOKEN];
    trim_copy(tmp, when, strlen(when));
    if (strcmp(tmp, "default") == 0 || strcmp(tmp, "*") == 0) {
        r->always = true;
        return NULL;
    }
    const char *p = when;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (r->n == MAX_CONDS)
            return "too many conditions (at most 8)";
        cond *c = &r->c[r->n++];
        const char *eq = memchr(p, '=', len);
        if (eq == NULL)
            return "each condition must be column=value";
        size_t klen = (size_t)(eq - p);
        if (klen > 0 && p[klen - 1] == '!') {
            c->negate = true;
            klen--;
        }
        trim_copy(c->column, p, klen);
        if (c->column[0] == '\0')
            return "empty column name in a condition";
        const char *v = eq + 1, *end = p + len;
        while (v <= end) {
            const char *bar = memchr(v, '|', (size_t)(end - v));
            const char *ve = bar ? bar : end;
            if (c->n_alts == MAX_ALTS)
                return "too many alternatives (at most 12)";
            trim_copy(c->alt[c->n_alts++], v, (size_t)(ve - v));
            if (!bar)
                break;
            v = bar + 1;
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return r->n ? NULL : "empty condition";
}

const char *cvm_actions_params_check(const cvm_actions_params *p, char *buf, size_t len)
{
    for (size_t i = 0; i < p->n_rules; i++) {
        rule r;
        const char *why = parse_when(p->rules[i].when, &r);
        if (why == NULL && (p->rules[i].action == NULL || p->rules[i].action[0] == '\0'))
            why = "missing 'action'";
        if (why) {
            snprintf(buf, len, "%s:%d: actions.rules[%zu] (when: \"%s\"): %s",
                     p->source ? p->source : "config", p->rules[i].source_line, i,
                     p->rules[i].when ? p->rules[i].when : "", why);
            return buf;
        }
    }
    return NULL;
}

static void cell_text(const cvm_column *c, size_t row, char *buf, size_t len)
{
    buf[0] = '\0';
    if (c->type == CVM_COL_STR) {
        const char *s = ((char *const *)c->data)[row];
        snprintf(buf, len, "%s", s ? s : "");
    } else if (c->type == CVM_COL_INT) {
        int64_t v = ((const int64_t *)c->data)[row];
        if (v != CVM_INT_NONE)
            snprintf(buf, len, "%lld", (long long)v);
    } else if (c->type == CVM_COL_DOUBLE) {
        double v = ((const double *)c->data)[row];
        if (!isnan(v))
            snprintf(buf, len, "%g", v);
    }
}

static bool match(const rule *r, size_t row)
{
    if (r->always)
        return true;
    char buf[256];
    for (int i = 0; i < r->n; i++) {
        const cond *c = &r->c[i];
        if (c->col == NULL)
            return false;
        /* Strings compare in place; numbers are formatted once per test. */
        const char *v;
        if (c->col->type == CVM_COL_STR) {
            v = ((char *const *)c->col->data)[row];
            if (v == NULL)
                v = "";
        } else {
            cell_text(c->col, row, buf, sizeof buf);
            v = buf;
        }
        bool any = false;
        for (int a = 0; a < c->n_alts && !any; a++)
            any = strcmp(v, c->alt[a]) == 0;
        if (any == c->negate)
            return false;
    }
    return true;
}

/* The columns the reasons quote, looked up once per run (a lookup is a
 * scan of the column names, too slow per customer). */
enum { K_CLASS, K_VOLUME, K_SAT, K_COMPLAINTS, K_GRADE, K_GRADE_REASON, K_SEGMENT, K_CELL,
       K_RECENCY, K_FREQUENCY, K_MONETARY, K_REVENUE_RECENT, K_PARETO_TOP, K_PROFIT, K_PARETO_RANK,
       K_CYCLE_REASON, K_P_ALIVE, K_CHURN, K_NEXT_REASON, K_CLUSTER_LABEL, K_COUNT };
static const char *const k_names[K_COUNT] = {
    "grid_class", "volume_tier", "satisfaction", "complaints", "grade", "grade_reason",
    "rfm_segment", "rfm_cell", "recency_days", "frequency", "monetary", "revenue_recent",
    "pareto_top", "profit", "pareto_rank", "cycle_reason", "p_alive", "churn_risk",
    "next_product_reason", "cluster_label"};

typedef struct known {
    const cvm_column *col[K_COUNT];
} known;

static double num(const known *k, int which, size_t row)
{
    return k->col[which] ? cvm_column_number(k->col[which], row) : NAN;
}

static const char *str(const known *k, int which, size_t row)
{
    const cvm_column *c = k->col[which];
    if (c == NULL || c->type != CVM_COL_STR)
        return NULL;
    return ((char *const *)c->data)[row];
}

/* Facts behind one condition's column, in words. */
static void explain(const cvm_custtab *ct, const known *kn, const char *column, size_t row, char *out,
                    size_t len)
{
    out[0] = '\0';
    if (strcmp(column, "grid_class") == 0) {
        const char *cls = str(kn, K_CLASS, row), *vol = str(kn, K_VOLUME, row);
        double sat = num(kn, K_SAT, row), comp = num(kn, K_COMPLAINTS, row);
        int k = snprintf(out, len, "class %s: %s volume", cls ? cls : "?", vol ? vol : "?");
        if (!isnan(sat) && k >= 0 && (size_t)k < len)
            k += snprintf(out + k, len - (size_t)k, ", satisfaction %.1f/5", sat);
        if (!isnan(comp) && k >= 0 && (size_t)k < len)
            snprintf(out + k, len - (size_t)k, ", %.0f complaint%s", comp, comp == 1 ? "" : "s");
    } else if (strcmp(column, "grade") == 0) {
        const char *g = str(kn, K_GRADE, row), *why = str(kn, K_GRADE_REASON, row);
        snprintf(out, len, "grade %s: %s", g ? g : "?", why ? why : "");
    } else if (strcmp(column, "rfm_segment") == 0 || strcmp(column, "rfm_cell") == 0) {
        const char *seg = str(kn, K_SEGMENT, row), *cell = str(kn, K_CELL, row);
        double r = num(kn, K_RECENCY, row), f = num(kn, K_FREQUENCY, row),
               m = num(kn, K_MONETARY, row);
        snprintf(out, len, "RFM %s (%s): last order %.0f days ago, %.0f orders, %.2f net revenue",
                 cell ? cell : "-", seg ? seg : "-", r, f, m);
    } else if (strcmp(column, "churn_risk") == 0 || strcmp(column, "overdue") == 0 ||
               strcmp(column, "contact_by") == 0 || strcmp(column, "days_overdue") == 0) {
        /* The purchase-cycle stage words its own facts. */
        const char *why = str(kn, K_CYCLE_REASON, row), *risk = str(kn, K_CHURN, row);
        double pa = num(kn, K_P_ALIVE, row);
        int k = snprintf(out, len, "%s", why && *why ? why : "");
        if (!isnan(pa) && k >= 0 && (size_t)k < len)
            snprintf(out + k, len - (size_t)k, "%sP(alive) %.2f, churn risk %s", k ? "; " : "", pa,
                     risk ? risk : "?");
    } else if (strcmp(column, "next_product") == 0) {
        const char *why = str(kn, K_NEXT_REASON, row);
        snprintf(out, len, "%s", why ? why : "");
    } else if (strcmp(column, "cluster_label") == 0 || strcmp(column, "cluster") == 0) {
        const char *lab = str(kn, K_CLUSTER_LABEL, row);
        snprintf(out, len, "segment '%s' (k-means)", lab ? lab : "?");
    } else if (strcmp(column, "volume_tier") == 0) {
        const char *vol = str(kn, K_VOLUME, row);
        snprintf(out, len, "%s volume (%.2f revenue in the last window)", vol ? vol : "?",
                 num(kn, K_REVENUE_RECENT, row));
    } else if (strcmp(column, "pareto_top") == 0) {
        double top = num(kn, K_PARETO_TOP, row);
        snprintf(out, len, "%s the customers making the top share of profit (profit %.2f, rank %.0f)",
                 top == 1 ? "among" : "not among", num(kn, K_PROFIT, row), num(kn, K_PARETO_RANK, row));
    } else {
        const cvm_column *c = cvm_custtab_find(ct, column);
        char v[128] = "";
        if (c)
            cell_text(c, row, v, sizeof v);
        snprintf(out, len, "%s %s", column, v);
    }
}

int cvm_actions_run(const cvm_actions_params *p, cvm_custtab *ct, cvm_actions_result *res,
                    cvm_err *err)
{
    memset(res, 0, sizeof *res);
    char why[512];
    if (cvm_actions_params_check(p, why, sizeof why))
        return CVM_FAIL(err, CVM_ECONFIG, "%s", why);
    rule *rules = cvm_calloc(p->n_rules ? p->n_rules : 1, sizeof *rules);
    res->rule_hits = cvm_calloc(p->n_rules ? p->n_rules : 1, sizeof *res->rule_hits);
    if (!rules || !res->rule_hits) {
        cvm_free(rules);
        cvm_actions_result_clear(res);
        return CVM_FAIL(err, CVM_ENOMEM, "actions: out of memory");
    }
    res->n_rules = p->n_rules;
    for (size_t i = 0; i < p->n_rules; i++) {
        parse_when(p->rules[i].when, &rules[i]);
        bool missing = false;
        for (int k = 0; k < rules[i].n; k++) {
            rules[i].c[k].col = cvm_custtab_find(ct, rules[i].c[k].column);
            missing |= rules[i].c[k].col == NULL;
        }
        res->rules_on_missing_columns += missing;
    }
    size_t n = ct->n_rows;
    known kn;
    for (int k = 0; k < K_COUNT; k++)
        kn.col[k] = cvm_custtab_find(ct, k_names[k]);
    char **act = cvm_custtab_add_labels(ct, "action", "Action code of the first matching rule in actions.rules.", err);
    char **txt = act ? cvm_custtab_add_labels(ct, "action_text", "What to do, from the rule's text.", err) : NULL;
    int64_t *pri = txt ? cvm_custtab_add_int(ct, "action_priority", "rank", "Priority of the rule (1 = most urgent).", err) : NULL;
    char **rsn = pri ? cvm_custtab_add_str(ct, "action_reason", "The facts behind the matched conditions, in words.", err) : NULL;
    int rc = rsn ? CVM_OK : (err ? err->status : CVM_ENOMEM);
    /* Each rule's code and text interned in the table once (label cells). */
    const char **L_act = rc == CVM_OK ? cvm_calloc(p->n_rules ? p->n_rules * 2 : 1, sizeof *L_act) : NULL;
    for (size_t i = 0; L_act && i < p->n_rules; i++) {
        L_act[2 * i] = cvm_custtab_label(ct, p->rules[i].action);
        L_act[2 * i + 1] = cvm_custtab_label(ct, p->rules[i].text ? p->rules[i].text : "");
        if (!L_act[2 * i] || !L_act[2 * i + 1]) {
            cvm_free(L_act);
            L_act = NULL;
        }
    }
    if (rc == CVM_OK && L_act == NULL)
        rc = CVM_FAIL(err, CVM_ENOMEM, "actions: out of memory");
    /* Rows in parallel (each writes only its own cells); the rule each
     * row matched is kept and counted afterwards. */
    size_t *hit_of = rc == CVM_OK ? cvm_malloc((n ? n : 1) * sizeof *hit_of) : NULL;
    if (rc == CVM_OK && hit_of == NULL)
        rc = CVM_FAIL(err, CVM_ENOMEM, "actions: out of memory");
    int nomem = 0;
    long nl = rc == CVM_OK ? (long)n : 0;
#pragma omp parallel for num_threads(cvm_threads(p->threads)) schedule(dynamic, 256) default(none) \
    shared(p, ct, kn, rules, act, txt, pri, rsn, hit_of, nl, nomem, L_act)
    for (long row = 0; row < nl; row++) {
        size_t hit = p->n_rules;
        for (size_t i = 0; i < p->n_rules; i++)
            if (match(&rules[i], (size_t)row)) {
                hit = i;
                break;
            }
        hit_of[row] = hit;
        if (hit == p->n_rules)
            continue;
        const cvm_action_rule *ar = &p->rules[hit];
        char reason[1024] = "", part[320];
        size_t used = 0;
        if (rules[hit].always) {
            explain(ct, &kn, "grade", (size_t)row, part, sizeof part);
            used += (size_t)snprintf(reason, sizeof reason, "%s", part);
        }
        for (int k = 0; k < rules[hit].n && used < sizeof reason; k++) {
            /* One explanation per distinct column family. */
            bool dup = false;
            for (int j = 0; j < k; j++)
                dup |= strcmp(rules[hit].c[j].column, rules[hit].c[k].column) == 0;
            if (dup)
                continue;
            explain(ct, &kn, rules[hit].c[k].column, (size_t)row, part, sizeof part);
            used += (size_t)snprintf(reason + used, sizeof reason - used, "%s%s",
                                     used ? "; " : "", part);
        }
        act[row] = (char *)L_act[2 * hit];
        txt[row] = (char *)L_act[2 * hit + 1];
        rsn[row] = cvm_strdup(reason);
        pri[row] = ar->priority;
        if (!act[row] || !txt[row] || !rsn[row]) {
#pragma omp atomic write
            nomem = 1;
        }
    }
    if (nomem)
        rc = CVM_FAIL(err, CVM_ENOMEM, "actions: out of memory");
    for (long row = 0; row < nl && rc == CVM_OK; row++) {
        if (hit_of[row] == p->n_rules)
            res->unmatched++;
        else
            res->rule_hits[hit_of[row]]++;
    }
    cvm_free(hit_of);
    cvm_free(L_act);
    cvm_free(rules);
    return rc;
}

void cvm_actions_result_clear(cvm_actions_result *r)
{
    cvm_free(r->rule_hits);
    memset(r, 0, sizeof *r);
}
