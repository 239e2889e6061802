#include "diff.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "publish.h"
#include "runcsv.h"
#include "sbuf.h"

#define NR 1, 0 /* no range */
#define MAX_LABELS 64

static const char *const default_fields[] = {"grade",  "grid_class", "volume_tier", "rfm_segment",
                                             "action", "churn_risk", "cluster"};
static const char *const default_at_risk[] = {"At risk", "Cannot lose", "About to sleep",
                                              "Hibernating", "Lost"};

void cvm_diff_params_default(cvm_diff_params *p)
{
    p->fields = default_fields;
    p->n_fields = sizeof default_fields / sizeof default_fields[0];
    p->at_risk = default_at_risk;
    p->n_at_risk = sizeof default_at_risk / sizeof default_at_risk[0];
    p->top = 20;
}

/* Labels of one field in either run, plus the pseudo-labels below. */
#define L_NONE "(none)"
#define L_NEW "(new)"
#define L_GONE "(gone)"
#define L_OTHER "(other)"

typedef struct stats {
    uint64_t n_old, n_new;
    double mon_old, mon_new, profit_old, profit_new;
} stats;

typedef struct group {
    const char *field;
    int col_old, col_new;        /* -1 when the run lacks the column */
    char *label[MAX_LABELS];
    size_t n;
    uint64_t (*m)[MAX_LABELS];   /* m[old][new] */
    stats st[MAX_LABELS];
} group;

typedef struct top_entry {
    char *id, *old_seg, *new_seg, *grade;
    double monetary, profit;
} top_entry;

typedef struct diff {
    const cvm_diff_params *p;
    cvm_runcsv o, n;
    bool o_open, n_open;
    group g[3];                  /* grade, grid_class, rfm_segment */
    int *fo, *fn;                /* tracked fields: columns in old and new */
    uint64_t *changed;
    size_t n_fields;
    int co, cn;                  /* customer_id */
    int mon_o, mon_n, pro_o, pro_n, churn_o, churn_n;
    uint64_t both, added, gone, rows;
    uint64_t at_risk, at_risk_by_segment[MAX_LABELS], churn_high;
    double at_risk_mon, at_risk_profit;
    top_entry *top;
    size_t n_top;
    double tot_mon_old, tot_mon_new, tot_profit_old, tot_profit_new;
    FILE *csv;
    const char *csv_path;
    cvm_sbuf prev_o, prev_n;
} diff;

static int label_index(group *g, const char *s, size_t len, cvm_err *err)
{
    if (len == 0) {
        s = L_NONE;
        len = strlen(L_NONE);
    }
    for (size_t i = 0; i < g->n; i++)
        if (strlen(g->label[i]) == len && memcmp(g->label[i], s, len) == 0)
            return (int)i;
    if (g->n == MAX_LABELS - 1) {
        /* Free-text columns could have any number of values: the rest are lumped. */
        s = L_OTHER;
        len = strlen(L_OTHER);
        for (size_t i = 0; i < g->n; i++)
            if (strcmp(g->label[i], L_OTHER) == 0)
                return (int)i;
    }
    if ((g->label[g->n] = cvm_strndup(s, len)) == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    return (int)g->n++;
}

static bool same(const cvm_runcsv *a, int ca, const cvm_runcsv *b, int cb)
{
    return a->len[ca] == b->len[cb] && memcmp(a->field[ca], b->field[cb], a->len[ca]) == 0;
}

static bool is_at_risk(const diff *D, const cvm_runcsv *r, int col)
{
    if (col < 0)
        return false;
    for (size_t i = 0; i < D->p->n_at_risk; i++)
        if (strlen(D->p->at_risk[i]) == r->len[col] &&
            memcmp(D->p->at_risk[i], r->field[col], r->len[col]) == 0)
            return true;
    return false;
}

static bool is_high(const cvm_runcsv *r, int col)
{
    return col >= 0 && r->len[col] == 4 && memcmp(r->field[col], "high", 4) == 0;
}

static double num_or0(const cvm_runcsv *r, int col)
{
    double x;
    return col >= 0 && cvm_runcsv_num(r, (size_t)col, &x) ? x : 0.0;
}

static void put_row(diff *D, const char *id, size_t idlen, const char *field, const char *o,
                    size_t ol, const char *nw, size_t nl)
{
    D->rows++;
    if (D->csv == NULL)
        return;
    cvm_csv_put(D->csv, id, idlen);
    fputc(',', D->csv);
    cvm_csv_put(D->csv, field, strlen(field));
    fputc(',', D->csv);
    cvm_csv_put(D->csv, o, ol);
    fputc(',', D->csv);
    cvm_csv_put(D->csv, nw, nl);
    fputc('\n', D->csv);
}

/* Ids must ascend strictly (bytewise), or the merge would pair wrong rows. */
static int check_order(cvm_sbuf *prev, const cvm_runcsv *r, int col, cvm_err *err)
{
    const char *s = r->field[col];
    size_t n = r->len[col];
    if (prev->len > 0 || r->row > 1) {
        size_t m = prev->len < n ? prev->len : n;
        int c = memcmp(cvm_sbuf_str(prev), s, m);
        if (c > 0 || (c == 0 && prev->len >= n))
            return CVM_FAIL(err, CVM_EDATA, "%s:%llu: customer_id '%.*s' is not after '%s': the "
                            "file must be sorted by customer_id, as cvm writes it", r->path,
                            (unsigned long long)r->line, (int)(n > 100 ? 100 : n), s,
                            cvm_sbuf_str(prev));
    }
    cvm_sbuf_reset(prev);
    cvm_sbuf_put(prev, s, n);
    return prev->oom ? CVM_FAIL(err, CVM_ENOMEM, "out of memory") : CVM_OK;
}

static int add_top(diff *D, const char *id, size_t idlen, double mon, double profit,
                   cvm_err *err)
{
    if (D->p->top == 0)
        return CVM_OK;
    size_t pos = D->n_top;
    /* Kept sorted by monetary, descending; ties keep id order (input order). */
    while (pos > 0 && D->top[pos - 1].monetary < mon)
        pos--;
    if (pos >= D->p->top)
        return CVM_OK;
    if (D->n_top == D->p->top) {
        top_entry *last = &D->top[D->n_top - 1];
        cvm_free(last->id);
        cvm_free(last->old_seg);
        cvm_free(last->new_seg);
        cvm_free(last->grade);
        D->n_top--;
    }
    memmove(&D->top[pos + 1], &D->top[pos], (D->n_top - pos) * sizeof *D->top);
    D->n_top++;
    top_entry *e = &D->top[pos];
    memset(e, 0, sizeof *e);
    e->monetary = mon;
    e->profit = profit;
    int so = D->g[2].col_old, sn = D->g[2].col_new, gr = D->g[0].col_new;
    e->id = cvm_strndup(id, idlen);
    e->old_seg = so >= 0 ? cvm_strndup(D->o.field[so], D->o.len[so]) : cvm_strdup("");
    e->new_seg = sn >= 0 ? cvm_strndup(D->n.field[sn], D->n.len[sn]) : cvm_strdup("");
    e->grade = gr >= 0 ? cvm_strndup(D->n.field[gr], D->n.len[gr]) : cvm_strdup("");
    if (!e->id || !e->old_seg || !e->new_seg || !e->grade)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    return CVM_OK;
}

/* One customer: present in old (o), new (n) or both. */
static int step(diff *D, bool o, bool n, cvm_err *err)
{
    const cvm_runcsv *ro = &D->o, *rn = &D->n;
    double mo = o ? num_or0(ro, D->mon_o) : 0, mn = n ? num_or0(rn, D->mon_n) : 0;
    double po = o ? num_or0(ro, D->pro_o) : 0, pn = n ? num_or0(rn, D->pro_n) : 0;
    D->tot_mon_old += mo;
    D->tot_mon_new += mn;
    D->tot_profit_old += po;
    D->tot_profit_new += pn;
    for (int k = 0; k < 3; k++) {
        group *g = &D->g[k];
        if (g->col_old < 0 || g->col_new < 0)
            continue;
        int io = o ? label_index(g, ro->field[g->col_old], ro->len[g->col_old], err)
                   : label_index(g, L_NEW, strlen(L_NEW), err);
        if (io < 0)
            return io;
        int in = n ? label_index(g, rn->field[g->col_new], rn->len[g->col_new], err)
                   : label_index(g, L_GONE, strlen(L_GONE), err);
        if (in < 0)
            return in;
        g->m[io][in]++;
        if (o) {
            g->st[io].n_old++;
            g->st[io].mon_old += mo;
            g->st[io].profit_old += po;
        }
        if (n) {
            g->st[in].n_new++;
            g->st[in].mon_new += mn;
            g->st[in].profit_new += pn;
        }
    }
    if (o && !n) {
        D->gone++;
        put_row(D, ro->field[D->co], ro->len[D->co], "customer", "present", 7, "absent", 6);
        return CVM_OK;
    }
    const char *id = rn->field[D->cn];
    size_t idlen = rn->len[D->cn];
    if (!o) {
        D->added++;
        put_row(D, id, idlen, "customer", "absent", 6, "present", 7);
        return CVM_OK;
    }
    D->both++;
    for (size_t f = 0; f < D->n_fields; f++) {
        if (same(ro, D->fo[f], rn, D->fn[f]))
            continue;
        D->changed[f]++;
        put_row(D, id, idlen, D->p->fields[f], ro->field[D->fo[f]], ro->len[D->fo[f]],
                rn->field[D->fn[f]], rn->len[D->fn[f]]);
    }
    group *seg = &D->g[2];
    bool seg_risk = seg->col_old >= 0 && seg->col_new >= 0 && is_at_risk(D, rn, seg->col_new) &&
                    !is_at_risk(D, ro, seg->col_old);
    bool churn = D->churn_o >= 0 && D->churn_n >= 0 && is_high(rn, D->churn_n) &&
                 !is_high(ro, D->churn_o);
    if (churn)
        D->churn_high++;
    if (seg_risk || churn) {
        D->at_risk++;
        D->at_risk_mon += mn;
        D->at_risk_profit += pn;
        if (seg->col_new >= 0) {
            int i = label_index(seg, rn->field[seg->col_new], rn->len[seg->col_new], err);
            if (i < 0)
                return i;
            D->at_risk_by_segment[i]++;
        }
        put_row(D, id, idlen, "at_risk", "0", 1, "1", 1);
        CVM_TRY(add_top(D, id, idlen, mn, pn, err));
    }
    return CVM_OK;
}

/* Label order for the JSON: real values bytewise, then the pseudo-labels. */
static int label_rank(const char *s)
{
    if (strcmp(s, L_OTHER) == 0)
        return 1;
    if (strcmp(s, L_NONE) == 0)
        return 2;
    if (strcmp(s, L_NEW) == 0)
        return 3;
    if (strcmp(s, L_GONE) == 0)
        return 4;
    return 0;
}

static const group *sort_group;
static int cmp_label(const void *a, const void *b)
{
    const char *x = sort_group->label[*(const int *)a], *y = sort_group->label[*(const int *)b];
    int rx = label_rank(x), ry = label_rank(y);
    if (rx != ry)
        return rx - ry;
    return strcmp(x, y);
}

static void order_labels(const group *g, int *idx)
{
    for (size_t i = 0; i < g->n; i++)
        idx[i] = (int)i;
    sort_group = g;
    qsort(idx, g->n, sizeof *idx, cmp_label);
    sort_group = NULL;
}

static json_t *round2(double x)
{
    return json_real(round(x * 100) / 100);
}

static json_t *group_json(const group *g, bool with_stats)
{
    int idx[MAX_LABELS];
    order_labels(g, idx);
    json_t *o = json_object();
    for (size_t a = 0; a < g->n; a++) {
        int i = idx[a];
        if (with_stats) {
            const stats *s = &g->st[i];
            if (label_rank(g->label[i]) >= 3)
                continue;
            json_t *e = json_object();
            json_object_set_new(e, "old", json_integer((json_int_t)s->n_old));
            json_object_set_new(e, "new", json_integer((json_int_t)s->n_new));
            json_object_set_new(e, "delta", json_integer((json_int_t)s->n_new - (json_int_t)s->n_old));
            json_object_set_new(e, "old_monetary", round2(s->mon_old));
            json_object_set_new(e, "new_monetary", round2(s->mon_new));
            json_object_set_new(e, "old_profit", round2(s->profit_old));
            json_object_set_new(e, "new_profit", round2(s->profit_new));
            json_object_set_new(o, g->label[i], e);
            continue;
        }
        json_t *row = json_object();
        for (size_t b = 0; b < g->n; b++) {
            int j = idx[b];
            if (g->m[i][j])
                json_object_set_new(row, g->label[j], json_integer((json_int_t)g->m[i][j]));
        }
        if (json_object_size(row))
            json_object_set_new(o, g->label[i], row);
        else
            json_decref(row);
    }
    return o;
}

static const char *dir_run_id(const char *dir, json_t **summary)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/summary.json", dir);
    *summary = json_load_file(path, 0, NULL);
    const char *id = json_string_value(json_object_get(*summary, "run_id"));
    if (id)
        return id;
    const char *slash = strrchr(dir, '/');
    return slash && slash[1] ? slash + 1 : dir;
}

static json_t *build_section(diff *D, const char *old_dir, const char *new_dir)
{
    json_t *so = NULL, *sn = NULL;
    json_t *S = json_object();
    json_object_set_new(S, "previous_run", json_string(dir_run_id(old_dir, &so)));
    const char *oa = json_string_value(json_object_get(so, "as_of"));
    json_object_set_new(S, "previous_as_of", oa ? json_string(oa) : json_null());
    json_object_set_new(S, "run", json_string(dir_run_id(new_dir, &sn)));
    const char *na = json_string_value(json_object_get(sn, "as_of"));
    json_object_set_new(S, "as_of", na ? json_string(na) : json_null());
    json_decref(so);
    json_decref(sn);
    json_t *c = json_object();
    json_object_set_new(c, "both", json_integer((json_int_t)D->both));
    json_object_set_new(c, "new", json_integer((json_int_t)D->added));
    json_object_set_new(c, "gone", json_integer((json_int_t)D->gone));
    json_object_set_new(S, "customers", c);
    json_t *fields = json_array(), *changed = json_object();
    for (size_t f = 0; f < D->n_fields; f++) {
        json_array_append_new(fields, json_string(D->p->fields[f]));
        json_object_set_new(changed, D->p->fields[f], json_integer((json_int_t)D->changed[f]));
    }
    json_object_set_new(S, "fields", fields);
    json_object_set_new(S, "changed", changed);
    json_object_set_new(S, "rows", json_integer((json_int_t)D->rows));
    json_t *mig = json_object(), *sizes = json_object();
    for (int k = 0; k < 3; k++) {
        const group *g = &D->g[k];
        if (g->col_old < 0 || g->col_new < 0)
            continue;
        json_object_set_new(mig, g->field, group_json(g, false));
        json_object_set_new(sizes, g->field, group_json(g, true));
    }
    json_object_set_new(S, "migrations", mig);
    json_object_set_new(S, "sizes", sizes);
    json_t *r = json_object(), *by = json_object(), *top = json_array();
    json_object_set_new(r, "customers", json_integer((json_int_t)D->at_risk));
    json_object_set_new(r, "monetary", round2(D->at_risk_mon));
    json_object_set_new(r, "profit", round2(D->at_risk_profit));
    const group *seg = &D->g[2];
    int idx[MAX_LABELS];
    order_labels(seg, idx);
    for (size_t a = 0; a < seg->n; a++)
        if (D->at_risk_by_segment[idx[a]])
            json_object_set_new(by, seg->label[idx[a]],
                                json_integer((json_int_t)D->at_risk_by_segment[idx[a]]));
    json_object_set_new(r, "by_segment", by);
    if (D->churn_o >= 0 && D->churn_n >= 0)
        json_object_set_new(r, "churn_risk_became_high", json_integer((json_int_t)D->churn_high));
    for (size_t i = 0; i < D->n_top; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "customer_id", json_string(D->top[i].id));
        json_object_set_new(e, "old_segment", json_string(D->top[i].old_seg));
        json_object_set_new(e, "new_segment", json_string(D->top[i].new_seg));
        json_object_set_new(e, "grade", json_string(D->top[i].grade));
        json_object_set_new(e, "monetary", round2(D->top[i].monetary));
        json_object_set_new(e, "profit", round2(D->top[i].profit));
        json_array_append_new(top, e);
    }
    json_object_set_new(r, "top", top);
    json_object_set_new(S, "newly_at_risk", r);
    json_t *t = json_object();
    json_object_set_new(t, "old_monetary", round2(D->tot_mon_old));
    json_object_set_new(t, "new_monetary", round2(D->tot_mon_new));
    json_object_set_new(t, "old_profit", round2(D->tot_profit_old));
    json_object_set_new(t, "new_profit", round2(D->tot_profit_new));
    json_object_set_new(S, "totals", t);
    return S;
}

static void diff_clear(diff *D)
{
    if (D->o_open)
        cvm_runcsv_close(&D->o);
    if (D->n_open)
        cvm_runcsv_close(&D->n);
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < D->g[k].n; i++)
            cvm_free(D->g[k].label[i]);
        cvm_free(D->g[k].m);
    }
    cvm_free(D->fo);
    cvm_free(D->fn);
    cvm_free(D->changed);
    for (size_t i = 0; i < D->n_top; i++) {
        cvm_free(D->top[i].id);
        cvm_free(D->top[i].old_seg);
        cvm_free(D->top[i].new_seg);
        cvm_free(D->top[i].grade);
    }
    cvm_free(D->top);
    cvm_sbuf_free(&D->prev_o);
    cvm_sbuf_free(&D->prev_n);
    if (D->csv)
        fclose(D->csv);
}

static int open_side(cvm_runcsv *r, bool *opened, const char *dir, cvm_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/segments.csv", dir);
    CVM_TRY(cvm_runcsv_open(r, path, err));
    *opened = true;
    if (cvm_runcsv_col(r, "customer_id") < 0)
        return CVM_FAIL(err, CVM_EDATA, "%s: no customer_id column", path);
    return CVM_OK;
}

int cvm_diff_runs(const char *old_dir, const char *new_dir, const cvm_diff_params *p,
                  const char *csv_path, void **section_out, cvm_err *err)
{
    *section_out = NULL;
    diff D;
    memset(&D, 0, sizeof D);
    D.p = p;
    D.csv_path = csv_path;
    int rc = open_side(&D.o, &D.o_open, old_dir, err);
    if (rc == CVM_OK)
        rc = open_side(&D.n, &D.n_open, new_dir, err);
    static const char *const gf[3] = {"grade", "grid_class", "rfm_segment"};
    for (int k = 0; rc == CVM_OK && k < 3; k++) {
        D.g[k].field = gf[k];
        D.g[k].col_old = cvm_runcsv_col(&D.o, gf[k]);
        D.g[k].col_new = cvm_runcsv_col(&D.n, gf[k]);
        D.g[k].m = cvm_calloc(MAX_LABELS, sizeof *D.g[k].m);
        if (D.g[k].m == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    if (rc == CVM_OK) {
        D.co = cvm_runcsv_col(&D.o, "customer_id");
        D.cn = cvm_runcsv_col(&D.n, "customer_id");
        D.mon_o = cvm_runcsv_col(&D.o, "monetary");
        D.mon_n = cvm_runcsv_col(&D.n, "monetary");
        D.pro_o = cvm_runcsv_col(&D.o, "profit");
        D.pro_n = cvm_runcsv_col(&D.n, "profit");
        D.churn_o = cvm_runcsv_col(&D.o, "churn_risk");
        D.churn_n = cvm_runcsv_col(&D.n, "churn_risk");
        size_t nf = p->n_fields ? p->n_fields : 1;
        D.fo = cvm_calloc(nf, sizeof *D.fo);
        D.fn = cvm_calloc(nf, sizeof *D.fn);
        D.changed = cvm_calloc(nf, sizeof *D.changed);
        D.top = cvm_calloc(p->top ? p->top : 1, sizeof *D.top);
        if (!D.fo || !D.fn || !D.changed || !D.top)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    /* Only fields both runs have are compared; the params array keeps its
     * order, so fields[] of the section lists them in that order. */
    const char **kept = NULL;
    if (rc == CVM_OK && (kept = cvm_calloc(p->n_fields ? p->n_fields : 1, sizeof *kept)) == NULL)
        rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    for (size_t f = 0; rc == CVM_OK && f < p->n_fields; f++) {
        int a = cvm_runcsv_col(&D.o, p->fields[f]), b = cvm_runcsv_col(&D.n, p->fields[f]);
        if (a < 0 || b < 0)
            continue;
        kept[D.n_fields] = p->fields[f];
        D.fo[D.n_fields] = a;
        D.fn[D.n_fields++] = b;
    }
    cvm_diff_params kp = *p;
    kp.fields = kept;
    D.p = &kp;
    if (rc == CVM_OK && csv_path) {
        D.csv = fopen(csv_path, "wb");
        if (D.csv == NULL)
            rc = CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", csv_path, strerror(errno));
        else
            fputs("customer_id,field,old,new\n", D.csv);
    }
    if (rc == CVM_OK) {
        int co = D.co, cn = D.cn;
        int so = cvm_runcsv_next(&D.o, err);
        if (so > 0)
            rc = check_order(&D.prev_o, &D.o, co, err);
        int sn = so >= 0 ? cvm_runcsv_next(&D.n, err) : 0;
        if (rc == CVM_OK && sn > 0)
            rc = check_order(&D.prev_n, &D.n, cn, err);
        while (rc == CVM_OK && so >= 0 && sn >= 0 && (so > 0 || sn > 0)) {
            int c;
            if (so > 0 && sn > 0) {
                size_t lo = D.o.len[co], ln = D.n.len[cn];
                c = memcmp(D.o.field[co], D.n.field[cn], lo < ln ? lo : ln);
                if (c == 0)
                    c = lo < ln ? -1 : lo > ln ? 1 : 0;
            } else {
                c = so > 0 ? -1 : 1;
            }
            rc = step(&D, c <= 0, c >= 0, err);
            if (rc == CVM_OK && c <= 0 && (so = cvm_runcsv_next(&D.o, err)) > 0)
                rc = check_order(&D.prev_o, &D.o, co, err);
            if (rc == CVM_OK && c >= 0 && (sn = cvm_runcsv_next(&D.n, err)) > 0)
                rc = check_order(&D.prev_n, &D.n, cn, err);
        }
        if (rc == CVM_OK && (so < 0 || sn < 0))
            rc = so < 0 ? so : sn;
    }
    if (D.csv) {
        FILE *f = D.csv;
        D.csv = NULL;
        if (rc == CVM_OK)
            rc = cvm_publish_close(f, csv_path, err);
        else
            fclose(f);
    }
    if (rc == CVM_OK) {
        json_t *S = build_section(&D, old_dir, new_dir);
        if (S == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        *section_out = S;
    }
    D.p = p;
    cvm_free(kept);
    diff_clear(&D);
    return rc;
}

/* -------------------------------------------------------------------- CLI */

static const char diff_usage[] =
    "Usage: cvm diff OLD_RUN NEW_RUN [--out FILE] [--json]\n"
    "\n"
    "Compare the segments.csv of two run directories (e.g. out/nightly-... and\n"
    "out/latest): grade, grid-class and RFM-segment migrations, customers newly at\n"
    "risk, segment sizes and value before and after.\n"
    "  --out FILE   also write changes.csv (customer_id,field,old,new) to FILE\n"
    "  --json       print the `changes` section (as in summary.json) instead of text\n"
    "  --help       show this help\n";

static long long jint(const json_t *o, const char *k)
{
    return (long long)json_integer_value(json_object_get(o, k));
}

static void print_matrix(FILE *out, const char *title, const json_t *m)
{
    if (json_object_size(m) == 0)
        return;
    /* Column labels: every target that occurs, in first-seen order. */
    const char *cols[MAX_LABELS];
    size_t nc = 0;
    const char *from, *to;
    json_t *row, *v;
    json_object_foreach((json_t *)m, from, row) {
        json_object_foreach(row, to, v) {
            size_t i = 0;
            while (i < nc && strcmp(cols[i], to) != 0)
                i++;
            if (i == nc && nc < MAX_LABELS)
                cols[nc++] = to;
        }
    }
    fprintf(out, "\n%s (rows: before, columns: after)\n%-16s", title, "");
    for (size_t i = 0; i < nc; i++)
        fprintf(out, " %9.9s", cols[i]);
    fputc('\n', out);
    json_object_foreach((json_t *)m, from, row) {
        fprintf(out, "%-16.16s", from);
        for (size_t i = 0; i < nc; i++) {
            json_t *x = json_object_get(row, cols[i]);
            if (x)
                fprintf(out, " %9lld", (long long)json_integer_value(x));
            else
                fprintf(out, " %9s", ".");
        }
        fputc('\n', out);
    }
}

static void print_text(FILE *out, const json_t *S)
{
    const char *pa = json_string_value(json_object_get(S, "previous_as_of"));
    const char *na = json_string_value(json_object_get(S, "as_of"));
    fprintf(out, "changes from %s (as of %s) to %s (as of %s)\n",
            json_string_value(json_object_get(S, "previous_run")), pa ? pa : "?",
            json_string_value(json_object_get(S, "run")), na ? na : "?");
    const json_t *c = json_object_get(S, "customers");
    fprintf(out, "customers: %lld in both runs, %lld new, %lld gone\n", jint(c, "both"),
            jint(c, "new"), jint(c, "gone"));
    const json_t *r = json_object_get(S, "newly_at_risk");
    fprintf(out, "newly at risk: %lld customers, monetary %.2f, profit %.2f\n",
            jint(r, "customers"), json_number_value(json_object_get(r, "monetary")),
            json_number_value(json_object_get(r, "profit")));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(r, "by_segment"), k, v)
        fprintf(out, "  %-20s %lld\n", k, (long long)json_integer_value(v));
    const json_t *ch = json_object_get(S, "changed");
    fprintf(out, "customers with a changed field:");
    json_object_foreach((json_t *)ch, k, v)
        fprintf(out, " %s %lld;", k, (long long)json_integer_value(v));
    fputc('\n', out);
    const json_t *mig = json_object_get(S, "migrations");
    json_object_foreach((json_t *)mig, k, v)
        print_matrix(out, k, v);
    const json_t *sz = json_object_get(S, "sizes");
    json_t *g;
    json_object_foreach((json_t *)sz, k, g) {
        fprintf(out, "\n%-20s %9s %9s %9s %16s %16s\n", k, "before", "after", "delta",
                "monetary before", "monetary after");
        const char *l;
        json_object_foreach(g, l, v)
            fprintf(out, "%-20.20s %9lld %9lld %+9lld %16.2f %16.2f\n", l, jint(v, "old"),
                    jint(v, "new"), jint(v, "delta"),
                    json_number_value(json_object_get(v, "old_monetary")),
                    json_number_value(json_object_get(v, "new_monetary")));
    }
    fprintf(out, "\nchanges.csv rows: %lld\n", jint(S, "rows"));
}

int cvm_diff_cli(int argc, char **argv, cvm_err *err)
{
    const char *dirs[2] = {NULL, NULL}, *out = NULL;
    int nd = 0;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(diff_usage, stdout);
            return CVM_OK;
        } else if (strcmp(a, "--json") == 0) {
            as_json = true;
        } else if (strcmp(a, "--out") == 0) {
            if (i + 1 >= argc)
                return CVM_FAIL(err, CVM_EINVAL, "--out needs a file name");
            out = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0') {
            return CVM_FAIL(err, CVM_EINVAL, "unknown option '%s' (see cvm diff --help)", a);
        } else if (nd < 2) {
            dirs[nd++] = a;
        } else {
            return CVM_FAIL(err, CVM_EINVAL, "unexpected argument '%s'", a);
        }
    }
    if (nd != 2)
        return CVM_FAIL(err, CVM_EINVAL, "two run directories are needed: cvm diff OLD_RUN NEW_RUN");
    cvm_diff_params p;
    cvm_diff_params_default(&p);
    json_t *S = NULL;
    CVM_TRY(cvm_diff_runs(dirs[0], dirs[1], &p, out, (void **)&S, err));
    if (as_json) {
        json_dumpf(S, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
        fputc('\n', stdout);
    } else {
        print_text(stdout, S);
    }
    json_decref(S);
    if (fflush(stdout) != 0)
        return CVM_FAIL(err, CVM_EIO, "stdout: %s", strerror(errno));
    return CVM_OK;
}

/* ------------------------------------------------------------- publisher */

static const cvm_cfg_key changes_schema[] = {
    {"output.changes.enabled", CVM_CFG_BOOL, "true", NR, NULL,
     "Compare every run with the previous one (the run `latest` pointed to): changes.csv, the "
     "`changes` section of summary.json and of the report."},
    {"output.changes.fields", CVM_CFG_LIST,
     "grade,grid_class,volume_tier,rfm_segment,action,churn_risk,cluster", NR, NULL,
     "Columns of segments.csv whose changes go into changes.csv (those missing from either run "
     "are skipped)."},
    {"output.changes.at_risk_segments", CVM_CFG_LIST,
     "At risk,Cannot lose,About to sleep,Hibernating,Lost", NR, NULL,
     "rfm_segment values that count as at risk: a customer moving into one of them from any "
     "other segment is newly at risk (so is one whose churn_risk became high)."},
};

static const char *const changes_docs[4][2] = {
    {"customer_id", "Customer id."},
    {"field", "The column that changed (a name of output.changes.fields), or `customer` "
              "(new or gone customer) or `at_risk` (newly at risk)."},
    {"old", "Value in the previous run (`present`/`absent` for field customer, 0 for at_risk)."},
    {"new", "Value in this run (`present`/`absent` for field customer, 1 for at_risk)."},
};

static void describe_changes_csv(json_t *S, long long rows)
{
    json_t *outputs = json_object_get(S, "outputs");
    if (outputs == NULL)
        return;
    json_t *cols = json_array();
    for (int i = 0; i < 4; i++) {
        json_t *c = json_object();
        json_object_set_new(c, "name", json_string(changes_docs[i][0]));
        json_object_set_new(c, "type", json_string("string"));
        json_object_set_new(c, "unit", json_string(""));
        json_object_set_new(c, "doc", json_string(changes_docs[i][1]));
        json_array_append_new(cols, c);
    }
    json_t *o = json_object();
    json_object_set_new(o, "rows", json_integer(rows));
    json_object_set_new(o, "columns", cols);
    json_object_set_new(outputs, "changes.csv", o);
}

static int header_only(const char *path, cvm_err *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", path, strerror(errno));
    fputs("customer_id,field,old,new\n", f);
    return cvm_publish_close(f, path, err);
}

static int changes_run(cvm_publish_ctx *ctx, cvm_err *err)
{
    const cvm_config *c = ctx->cfg;
    if (!cvm_config_bool(c, "output.changes.enabled"))
        return CVM_OK;
    size_t nf = cvm_config_list_len(c, "output.changes.fields");
    size_t na = cvm_config_list_len(c, "output.changes.at_risk_segments");
    const char **f = cvm_calloc(nf ? nf : 1, sizeof *f), **a = cvm_calloc(na ? na : 1, sizeof *a);
    if (!f || !a) {
        cvm_free(f);
        cvm_free(a);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nf; i++)
        f[i] = cvm_config_list_at(c, "output.changes.fields", i);
    for (size_t i = 0; i < na; i++)
        a[i] = cvm_config_list_at(c, "output.changes.at_risk_segments", i);
    cvm_diff_params p;
    cvm_diff_params_default(&p);
    p.fields = f;
    p.n_fields = nf;
    p.at_risk = a;
    p.n_at_risk = na;
    char path[4200];
    snprintf(path, sizeof path, "%s/changes.csv", ctx->run_dir);
    json_t *S = NULL;
    int rc = CVM_OK;
    if (ctx->prev_run_dir) {
        rc = cvm_diff_runs(ctx->prev_run_dir, ctx->run_dir, &p, path, (void **)&S, err);
        if (rc == CVM_OK) {
            /* The new run has no summary.json yet: name it from the manifest in the making. */
            json_object_set_new(S, "run", json_string(ctx->run_id));
            json_t *as_of = json_object_get(ctx->summary, "as_of");
            json_object_set_new(S, "as_of", as_of ? json_incref(as_of) : json_null());
        }
        if (rc == CVM_EDATA || (rc == CVM_EIO && strstr(err->msg, ctx->prev_run_dir) == err->msg)) {
            /* An unreadable or foreign previous run must not stop tonight's
             * results: say so, and publish an empty comparison. */
            cvm_log_msg(ctx->log, CVM_LOG_WARN, "changes: no comparison with the previous run: %s",
                        err->msg);
            S = json_object();
            const char *slash = strrchr(ctx->prev_run_dir, '/');
            json_object_set_new(S, "previous_run", json_string(slash ? slash + 1 : ctx->prev_run_dir));
            json_object_set_new(S, "error", json_string(err->msg));
            json_object_set_new(S, "rows", json_integer(0));
            rc = header_only(path, err);
        }
    } else {
        S = json_object();
        json_object_set_new(S, "previous_run", json_null());
        json_object_set_new(S, "rows", json_integer(0));
        rc = header_only(path, err);
    }
    cvm_free(f);
    cvm_free(a);
    if (rc != CVM_OK) {
        json_decref(S);
        return rc;
    }
    describe_changes_csv(ctx->summary, (long long)json_integer_value(json_object_get(S, "rows")));
    json_object_set_new(ctx->summary, "changes", S);
    return CVM_OK;
}

const cvm_publisher cvm_publisher_changes = {
    "changes", changes_schema, sizeof changes_schema / sizeof changes_schema[0], NULL, changes_run,
    "output.changes.enabled",
};
