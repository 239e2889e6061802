/*
 * stage_rules.c - association rules and cross-sell (models/baskets.h,
 * models/fpgrowth.h, models/rules.h) as a job stage: its config keys, their
 * cross-checks, and the run that writes rules.csv, itemsets.csv,
 * recommendations.csv and the next_product columns. docs/models/rules.md
 * has the definitions.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "baskets.h"
#include "fpgrowth.h"
#include "rules.h"
#include "stage.h"

#define NR 1, 0

static const cvm_cfg_key schema[] = {
    {"rules.enabled", CVM_CFG_BOOL, "false", NR, NULL,
     "Run the association rules and cross-sell stage: rules.csv, recommendations.csv and the "
     "next_product columns."},
    {"rules.basket", CVM_CFG_ENUM, "order", NR, "order|customer",
     "What a basket is: one order (what is bought together), or the whole purchase history of a "
     "customer (what the same customers buy). Returns and cleaning.exclude_products codes are "
     "not purchases; an order with only such codes is an empty basket that still counts."},
    {"rules.item", CVM_CFG_ENUM, "product", NR, "product|category",
     "What an item is: a product, or its category from the product master (input.products)."},
    {"rules.min_support", CVM_CFG_DOUBLE, "0.001", 0, 1, NULL,
     "Minimum support as a fraction of baskets: an itemset is frequent when its count >= "
     "ceil(min_support x baskets) (and >= rules.min_count)."},
    {"rules.min_count", CVM_CFG_INT, "2", 0, 2147483647.0, NULL,
     "Minimum support as an absolute number of baskets; the larger of the two thresholds wins "
     "(the default 2 keeps what a single basket shows out of small segments). Set "
     "rules.min_support: 0 to use the count alone."},
    {"rules.max_len", CVM_CFG_INT, "5", 0, 1000, NULL,
     "Longest itemset (antecedent plus consequent); 0 = no limit."},
    {"rules.target", CVM_CFG_ENUM, "frequent", NR, "frequent|closed|maximal",
     "Which itemsets are reported and give rules: all frequent ones, the closed ones (no superset "
     "with the same count) or the maximal ones (no frequent superset)."},
    {"rules.min_confidence", CVM_CFG_DOUBLE, "0.2", 0, 1, NULL,
     "Minimum confidence of a rule A -> c: count(A and c) / count(A)."},
    {"rules.min_lift", CVM_CFG_DOUBLE, "1.0", 0, 1e12, NULL,
     "Minimum lift of a rule: confidence / support(c). 1 keeps only positive associations."},
    {"rules.max_rules", CVM_CFG_INT, "10000", 0, 1e9, NULL,
     "Rules kept per segment, highest lift first; 0 = all."},
    {"rules.prune_redundant", CVM_CFG_BOOL, "true", NR, NULL,
     "Remove a rule when a more general rule (a subset of its antecedent, same consequent) is at "
     "least as confident."},
    {"rules.max_itemsets", CVM_CFG_INT, "2000000", 0, 4000000000.0, NULL,
     "Explosion guard: the stage stops with a message naming the support to raise when the "
     "number of frequent itemsets would pass this; 0 = no guard."},
    {"rules.segment_by", CVM_CFG_STRING, "", NR, NULL,
     "Also mine within each value of this customer column (grade, grid_class, rfm_segment, "
     "cluster_label, customer_type ...); \"\" = only over all baskets. Segment rules also feed "
     "the recommendations of the segment's customers."},
    {"rules.top_n", CVM_CFG_INT, "3", 1, 255, NULL,
     "Recommendations per customer in recommendations.csv (the best one also goes into "
     "next_product)."},
    {"rules.write_itemsets", CVM_CFG_BOOL, "false", NR, NULL,
     "Also write itemsets.csv (the target itemsets with their counts)."},
};

typedef struct rules_cfg {
    cvm_baskets_params bp;
    cvm_fim_params fp;
    cvm_rules_params rp;
    const char *segment_by;
    int top_n;
    bool write_itemsets;
} rules_cfg;

static int read_cfg(const cvm_config *c, const char *src, rules_cfg *r, cvm_err *err)
{
    cvm_baskets_params_default(&r->bp);
    r->bp.basket = strcmp(cvm_config_str(c, "rules.basket"), "customer") == 0 ? CVM_BASKET_CUSTOMER
                                                                              : CVM_BASKET_ORDER;
    r->bp.item = strcmp(cvm_config_str(c, "rules.item"), "category") == 0 ? CVM_ITEM_CATEGORY
                                                                          : CVM_ITEM_PRODUCT;
    cvm_fim_params_default(&r->fp);
    r->fp.min_support = cvm_config_double(c, "rules.min_support");
    r->fp.min_count = (uint64_t)cvm_config_int(c, "rules.min_count");
    r->fp.max_len = (int)cvm_config_int(c, "rules.max_len");
    const char *t = cvm_config_str(c, "rules.target");
    r->fp.target = strcmp(t, "closed") == 0    ? CVM_FIM_CLOSED
                   : strcmp(t, "maximal") == 0 ? CVM_FIM_MAXIMAL
                                               : CVM_FIM_FREQUENT;
    r->fp.max_itemsets = (size_t)cvm_config_int(c, "rules.max_itemsets");
    cvm_rules_params_default(&r->rp);
    r->rp.min_confidence = cvm_config_double(c, "rules.min_confidence");
    r->rp.min_lift = cvm_config_double(c, "rules.min_lift");
    r->rp.max_rules = (size_t)cvm_config_int(c, "rules.max_rules");
    r->rp.prune_redundant = cvm_config_bool(c, "rules.prune_redundant");
    r->segment_by = cvm_config_str(c, "rules.segment_by");
    r->top_n = (int)cvm_config_int(c, "rules.top_n");
    r->write_itemsets = cvm_config_bool(c, "rules.write_itemsets");
    const char *why = cvm_fim_params_check(&r->fp);
    if (why == NULL)
        why = cvm_rules_params_check(&r->rp);
    if (why)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: rules: %s", src, why);
    return CVM_OK;
}

static int check(const cvm_config *c, const char *src, cvm_err *err)
{
    rules_cfg r;
    CVM_TRY(read_cfg(c, src, &r, err));
    if (!cvm_config_bool(c, "rules.enabled"))
        return CVM_OK;
    if (*cvm_config_str(c, "input.transactions.columns.product") == '\0')
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: rules.enabled needs a product column "
                        "(input.transactions.columns.product)", src);
    if (r.bp.item == CVM_ITEM_CATEGORY &&
        (!cvm_config_is_set(c, "input.products.path") || *cvm_config_str(c, "input.products.path") == '\0'))
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: rules.item = category needs the product master (input.products.path)", src);
    if (r.fp.min_support == 0 && r.fp.min_count == 0)
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: rules.min_support and rules.min_count are both 0: set one of them", src);
    return CVM_OK;
}

/* ------------------------------------------------------------------- run */

typedef struct seg {
    char *label;
    uint32_t *baskets;
    size_t n;
    cvm_itemsets s;
    cvm_rules r;
} seg;

static int cmp_label(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Segment label of every customer (NULL = none), owned strings. */
static int customer_labels(const cvm_custtab *ct, const char *src, const char *col, char ***out,
                           cvm_err *err)
{
    const cvm_column *c = cvm_custtab_find(ct, col);
    if (c == NULL) {
        char names[600] = "";
        size_t used = 0;
        for (size_t i = 0; i < ct->n_cols && used + 40 < sizeof names; i++)
            if (ct->cols[i]->type == CVM_COL_STR || ct->cols[i]->type == CVM_COL_INT)
                used += (size_t)snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                                         ct->cols[i]->name);
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: rules.segment_by = '%s': no such column in the customer table (string "
                        "or integer columns at this point: %s)", src, col, names);
    }
    if (c->type != CVM_COL_STR && c->type != CVM_COL_INT)
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: rules.segment_by = '%s' must name a string or integer column", src, col);
    char **l = cvm_calloc(ct->n_rows ? ct->n_rows : 1, sizeof *l);
    if (l == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
    for (size_t i = 0; i < ct->n_rows; i++) {
        char buf[32];
        const char *v = NULL;
        if (c->type == CVM_COL_STR) {
            v = ((char *const *)c->data)[i];
        } else if (((const int64_t *)c->data)[i] != CVM_INT_NONE) {
            snprintf(buf, sizeof buf, "%lld", (long long)((const int64_t *)c->data)[i]);
            v = buf;
        }
        if (v && *v && (l[i] = cvm_strdup(v)) == NULL) {
            for (size_t k = 0; k < i; k++)
                cvm_free(l[k]);
            cvm_free(l);
            return CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
        }
    }
    *out = l;
    return CVM_OK;
}

static void join_ids(char *buf, size_t len, const cvm_baskets *b, const int32_t *it, size_t k)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < k && n < len; i++) {
        const char *sep = i == 0 ? "" : i + 1 == k ? " and " : ", ";
        n += (size_t)snprintf(buf + n, len - n, "%s%s", sep, b->item_id[it[i]]);
    }
}

/* "offer X: bought A and B; 62% of such buyers also buy X, lift 3.1" */
static char *reason(const cvm_baskets *b, const cvm_itemsets *s, const cvm_rule *r, bool by_customer,
                    const char *seg_col, const char *seg_label)
{
    size_t la;
    const int32_t *A = cvm_rule_antecedent(s, r, &la);
    char ante[512], text[1024];
    join_ids(ante, sizeof ante, b, A, la);
    const char *x = b->item_id[r->consequent];
    double pct = 100.0 * r->confidence;
    char lift[32];
    snprintf(lift, sizeof lift, r->lift >= 100 ? "%.0f" : "%.1f", r->lift);
    if (by_customer)
        snprintf(text, sizeof text, "offer %s: bought %s; %.0f%% of such buyers also buy %s, lift %s",
                 x, ante, pct, x, lift);
    else
        snprintf(text, sizeof text, "offer %s: bought %s; %.0f%% of orders with %s also have %s, lift %s",
                 x, ante, pct, la == 1 ? "it" : "them", x, lift);
    if (seg_label) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, " (rule of %s=%s)", seg_col, seg_label);
    }
    return cvm_strdup(text);
}

static void rule_text(char *buf, size_t len, const cvm_baskets *b, const cvm_itemsets *s,
                      const cvm_rule *r)
{
    size_t la, n = 0;
    const int32_t *A = cvm_rule_antecedent(s, r, &la);
    buf[0] = '\0';
    for (size_t i = 0; i < la && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, "%s%s", i ? " + " : "", b->item_id[A[i]]);
    if (n < len)
        snprintf(buf + n, len - n, " => %s", b->item_id[r->consequent]);
}

static int mine_one(const rules_cfg *rc, const cvm_baskets *b, const uint32_t *subset, size_t n,
                    int threads, cvm_itemsets *s, cvm_rules *r, const char *src, const char *what,
                    cvm_err *err)
{
    cvm_fim_params fp = rc->fp;
    fp.threads = threads;
    cvm_rules_params rp = rc->rp;
    rp.threads = threads;
    int st = cvm_fim_run(&fp, b, subset, n, s, err);
    if (st == CVM_ELIMIT)
        return cvm_err_prefix(err, "%s: rules%s (rules.min_support, rules.min_count, rules.max_len, "
                                   "rules.max_itemsets)", src, what);
    if (st != CVM_OK)
        return st;
    return cvm_rules_generate(&rp, s, r, err);
}

static json_t *seg_json(const cvm_itemsets *s, const cvm_rules *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "baskets", json_integer((json_int_t)s->n_baskets));
    json_object_set_new(o, "support_threshold_count", json_integer((json_int_t)s->min_count_used));
    json_object_set_new(o, "frequent_items", json_integer((json_int_t)s->n_frequent_items));
    json_object_set_new(o, "itemsets", json_integer((json_int_t)s->n_target));
    json_object_set_new(o, "frequent_itemsets", json_integer((json_int_t)s->n));
    json_object_set_new(o, "longest_itemset", json_integer(s->max_len_used));
    json_object_set_new(o, "rules", json_integer((json_int_t)r->n));
    json_object_set_new(o, "rules_passing", json_integer((json_int_t)r->n_passing));
    json_object_set_new(o, "redundant_removed", json_integer((json_int_t)r->n_redundant));
    return o;
}

static double lap(double *t)
{
    double now = cvm_now(), d = now - *t;
    *t = now;
    return round(d * 1e4) / 1e4;
}

static int run(cvm_stage_ctx *ctx, cvm_err *err)
{
    const char *src = ctx->cfg_source;
    rules_cfg rc;
    CVM_TRY(read_cfg(ctx->cfg, src, &rc, err));
    rc.bp.as_of = ctx->as_of;
    bool by_customer = rc.bp.basket == CVM_BASKET_CUSTOMER;
    double t = cvm_now();
    json_t *tj = json_object();
    cvm_baskets B = {0}, H = {0};
    cvm_itemsets S0 = {0};
    cvm_rules R0 = {0};
    cvm_recs rec = {0};
    seg *segs = NULL;
    size_t n_seg = 0;
    char **labels = NULL;
    cvm_rules *sets = NULL;
    const cvm_itemsets **isets = NULL;
    int32_t *extra = NULL;
    char *path = NULL;
    FILE *f = NULL;
    int st = cvm_baskets_build(&rc.bp, ctx->txn, ctx->products, &B, err);
    if (st == CVM_OK && !by_customer) {
        cvm_baskets_params hp = rc.bp;
        hp.basket = CVM_BASKET_CUSTOMER;
        st = cvm_baskets_build(&hp, ctx->txn, ctx->products, &H, err);
    }
    const cvm_baskets *hist = by_customer ? &B : &H;
    json_object_set_new(tj, "baskets", json_real(lap(&t)));
    if (st == CVM_OK)
        st = mine_one(&rc, &B, NULL, 0, ctx->threads, &S0, &R0, src, "", err);
    json_object_set_new(tj, "mining", json_real(lap(&t)));

    /* Segments: the baskets of each value of segment_by, mined apart. */
    if (st == CVM_OK && *rc.segment_by)
        st = customer_labels(ctx->ct, src, rc.segment_by, &labels, err);
    if (st == CVM_OK && labels) {
        char **u = cvm_calloc(ctx->ct->n_rows + 1, sizeof *u);
        if (u == NULL)
            st = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
        size_t nu = 0;
        for (size_t i = 0; st == CVM_OK && i < ctx->ct->n_rows; i++)
            if (labels[i])
                u[nu++] = labels[i];
        if (st == CVM_OK) {
            qsort(u, nu, sizeof *u, cmp_label);
            for (size_t i = 0; i < nu; i++)
                if (n_seg == 0 || strcmp(u[i], u[n_seg - 1]) != 0)
                    u[n_seg++] = u[i];
            segs = cvm_calloc(n_seg ? n_seg : 1, sizeof *segs);
            if (segs == NULL) {
                n_seg = 0;
                st = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
            }
            for (size_t k = 0; st == CVM_OK && k < n_seg; k++)
                segs[k].label = u[k]; /* borrowed from labels */
        }
        cvm_free(u);
        int32_t *cseg = st == CVM_OK ? cvm_malloc((ctx->ct->n_rows + 1) * sizeof *cseg) : NULL;
        if (st == CVM_OK && cseg == NULL)
            st = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
        for (size_t i = 0; st == CVM_OK && i < ctx->ct->n_rows; i++) {
            cseg[i] = -1;
            if (labels[i]) {
                const char *key = labels[i];
                seg *hit = NULL;
                size_t lo = 0, hi = n_seg;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    int cmp = strcmp(segs[mid].label, key);
                    if (cmp == 0) {
                        hit = &segs[mid];
                        break;
                    }
                    if (cmp < 0)
                        lo = mid + 1;
                    else
                        hi = mid;
                }
                cseg[i] = hit ? (int32_t)(hit - segs) : -1;
            }
        }
        for (size_t b = 0; st == CVM_OK && b < B.n_baskets; b++) {
            int32_t k = cseg[B.customer[b]];
            if (k >= 0)
                segs[k].n++;
        }
        for (size_t k = 0; st == CVM_OK && k < n_seg; k++) {
            segs[k].baskets = cvm_malloc((segs[k].n ? segs[k].n : 1) * sizeof *segs[k].baskets);
            if (segs[k].baskets == NULL)
                st = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
            segs[k].n = 0;
        }
        for (size_t b = 0; st == CVM_OK && b < B.n_baskets; b++) {
            int32_t k = cseg[B.customer[b]];
            if (k >= 0)
                segs[k].baskets[segs[k].n++] = (uint32_t)b;
        }
        for (size_t k = 0; st == CVM_OK && k < n_seg; k++) {
            char what[300];
            snprintf(what, sizeof what, " in segment %s=%s", rc.segment_by, segs[k].label);
            st = mine_one(&rc, &B, segs[k].baskets, segs[k].n, ctx->threads, &segs[k].s, &segs[k].r,
                          src, what, err);
        }
        if (st == CVM_OK) {
            extra = cvm_malloc((hist->n_baskets ? hist->n_baskets : 1) * sizeof *extra);
            if (extra == NULL)
                st = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
            for (size_t h = 0; st == CVM_OK && h < hist->n_baskets; h++) {
                int32_t k = cseg[hist->customer[h]];
                extra[h] = k >= 0 ? k + 1 : -1;
            }
        }
        cvm_free(cseg);
        json_object_set_new(tj, "segments", json_real(lap(&t)));
    }

    /* Cross-sell. */
    if (st == CVM_OK) {
        sets = cvm_calloc(n_seg + 1, sizeof *sets);
        isets = cvm_calloc(n_seg + 1, sizeof *isets);
        if (!sets || !isets)
            st = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
    }
    if (st == CVM_OK) {
        sets[0] = R0;
        isets[0] = &S0;
        for (size_t k = 0; k < n_seg; k++) {
            sets[k + 1] = segs[k].r;
            isets[k + 1] = &segs[k].s;
        }
        st = cvm_rules_recommend(hist, sets, isets, n_seg + 1, extra, rc.top_n, ctx->threads, &rec, err);
    }
    json_object_set_new(tj, "recommendations", json_real(lap(&t)));

    /* Outputs. */
    if (st == CVM_OK && (f = cvm_rundir_create(ctx->rd, "rules.csv", &path, err)) == NULL)
        st = err->status;
    if (st == CVM_OK) {
        cvm_rules_csv_header(f);
        cvm_rules_csv_rows(f, &B, &S0, &R0, "(all)");
        for (size_t k = 0; k < n_seg; k++)
            cvm_rules_csv_rows(f, &B, &segs[k].s, &segs[k].r, segs[k].label);
        st = cvm_publish_close(f, path, err);
        f = NULL;
        cvm_free(path);
        path = NULL;
    }
    if (st == CVM_OK && rc.write_itemsets) {
        if ((f = cvm_rundir_create(ctx->rd, "itemsets.csv", &path, err)) == NULL)
            st = err->status;
        if (st == CVM_OK) {
            cvm_itemsets_csv_header(f);
            cvm_itemsets_csv_rows(f, &B, &S0, "(all)");
            for (size_t k = 0; k < n_seg; k++)
                cvm_itemsets_csv_rows(f, &B, &segs[k].s, segs[k].label);
            st = cvm_publish_close(f, path, err);
            f = NULL;
            cvm_free(path);
            path = NULL;
        }
    }
    size_t with_offer = 0;
    cvm_custtab *ct = ctx->ct;
    char **np = NULL, **nn = NULL, **nr = NULL;
    double *ns = NULL;
    if (st == CVM_OK) {
        np = cvm_custtab_add_str(ct, "next_product",
            "Cross-sell: the best product (or category, with rules.item = category) the customer "
            "has not bought, from the association rules; empty when no rule applies.", err);
        nn = np ? cvm_custtab_add_str(ct, "next_product_name", "Name of next_product from the product master.", err) : NULL;
        ns = nn ? cvm_custtab_add_double(ct, "next_product_score", "score",
            "Score of next_product: confidence x lift of the best rule recommending it.", 4, err) : NULL;
        nr = ns ? cvm_custtab_add_str(ct, "next_product_reason",
            "The rule behind next_product, e.g. \"offer X: bought A and B; 62% of orders with them "
            "also have X, lift 3.1\".", err) : NULL;
        if (nr == NULL)
            st = err->status;
    }
    if (st == CVM_OK && (f = cvm_rundir_create(ctx->rd, "recommendations.csv", &path, err)) == NULL)
        st = err->status;
    if (st == CVM_OK) {
        fputs("customer_id,rank,product_id,product_name,score,confidence,lift,rule,segment\n", f);
        char rt[1024];
        for (size_t h = 0; h < rec.n && st == CVM_OK; h++) {
            size_t cust = (size_t)hist->customer[h];
            const char *cid = cvm_dict_str(ctx->txn->customers, (int32_t)cust);
            for (int k = 0; k < rec.n_rec[h]; k++) {
                size_t sl = h * (size_t)rec.top_n + (size_t)k;
                uint16_t set = rec.ruleset[sl];
                const cvm_rule *r = &sets[set].rule[rec.rule[sl]];
                const cvm_itemsets *s = isets[set];
                const char *label = set ? segs[set - 1].label : "(all)";
                int32_t it = rec.item[sl];
                cvm_csv_put(f, cid, strlen(cid));
                fprintf(f, ",%d,", k + 1);
                cvm_csv_put(f, B.item_id[it], strlen(B.item_id[it]));
                fputc(',', f);
                cvm_csv_put(f, B.item_name[it], strlen(B.item_name[it]));
                fprintf(f, ",%.6g,%.6g,%.6g,", rec.score[sl], r->confidence, r->lift);
                rule_text(rt, sizeof rt, &B, s, r);
                cvm_csv_put(f, rt, strlen(rt));
                fputc(',', f);
                cvm_csv_put(f, label, strlen(label));
                fputc('\n', f);
                if (k == 0) {
                    with_offer++;
                    np[cust] = cvm_strdup(B.item_id[it]);
                    nn[cust] = cvm_strdup(B.item_name[it]);
                    ns[cust] = round(rec.score[sl] * 1e4) / 1e4;
                    nr[cust] = reason(&B, s, r, by_customer, rc.segment_by, set ? label : NULL);
                    if (!np[cust] || !nn[cust] || !nr[cust])
                        st = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
                }
            }
        }
        int cst = cvm_publish_close(f, path, st == CVM_OK ? err : &(cvm_err){0});
        if (st == CVM_OK)
            st = cst;
        f = NULL;
        cvm_free(path);
        path = NULL;
    }
    json_object_set_new(tj, "write", json_real(lap(&t)));

    if (st == CVM_OK) {
        size_t *seen = cvm_calloc(B.n_items ? B.n_items : 1, sizeof *seen);
        size_t items = 0;
        if (seen) {
            for (size_t k = 0; k < cvm_baskets_size(&B); k++)
                items += seen[B.item[k]]++ == 0;
            cvm_free(seen);
        }
        json_t *o = seg_json(&S0, &R0);
        json_object_set_new(o, "basket", json_string(by_customer ? "customer" : "order"));
        json_object_set_new(o, "item", json_string(rc.bp.item == CVM_ITEM_CATEGORY ? "category" : "product"));
        json_object_set_new(o, "target", json_string(cvm_config_str(ctx->cfg, "rules.target")));
        json_object_set_new(o, "items", json_integer((json_int_t)items));
        json_object_set_new(o, "min_support", json_real(rc.fp.min_support));
        json_object_set_new(o, "max_len", json_integer(rc.fp.max_len));
        json_object_set_new(o, "customers_with_recommendation", json_integer((json_int_t)with_offer));
        if (n_seg) {
            json_t *sj = json_object();
            for (size_t k = 0; k < n_seg; k++)
                json_object_set_new(sj, segs[k].label, seg_json(&segs[k].s, &segs[k].r));
            json_object_set_new(o, "segment_by", json_string(rc.segment_by));
            json_object_set_new(o, "segments", sj);
        }
        json_object_set_new(o, "timings", tj);
        tj = NULL;
        json_object_set_new((json_t *)ctx->models_json, "rules", o);
        cvm_log_msg(ctx->log, CVM_LOG_INFO,
                    "rules: %zu baskets, %zu itemsets (count >= %llu), %zu rules, %zu segments, "
                    "%zu customers with an offer", B.n_baskets, S0.n_target,
                    (unsigned long long)S0.min_count_used, R0.n, n_seg, with_offer);
    }

    json_decref(tj);
    cvm_recs_clear(&rec);
    cvm_free(extra);
    cvm_free(sets);
    cvm_free(isets);
    for (size_t k = 0; k < n_seg; k++) {
        cvm_free(segs[k].baskets);
        cvm_itemsets_clear(&segs[k].s);
        cvm_rules_clear(&segs[k].r);
    }
    cvm_free(segs);
    if (labels) {
        for (size_t i = 0; i < ctx->ct->n_rows; i++)
            cvm_free(labels[i]);
        cvm_free(labels);
    }
    cvm_rules_clear(&R0);
    cvm_itemsets_clear(&S0);
    cvm_baskets_clear(&B);
    cvm_baskets_clear(&H);
    return st;
}

const cvm_stage cvm_stage_rules = {"rules", schema, sizeof schema / sizeof schema[0], check, run};
