#include "rules.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "alloc.h"
#include "log.h"
#include "parallel.h"
#include "publish.h"

void cvm_rules_params_default(cvm_rules_params *p)
{
    p->min_confidence = 0.2;
    p->min_lift = 1.0;
    p->max_rules = 10000;
    p->prune_redundant = true;
    p->threads = 0;
}

const char *cvm_rules_params_check(const cvm_rules_params *p)
{
    if (!(p->min_confidence >= 0 && p->min_confidence <= 1))
        return "minimum confidence must be in [0, 1]";
    if (!(p->min_lift >= 0) || isinf(p->min_lift))
        return "minimum lift must be a finite number >= 0";
    return NULL;
}

void cvm_rules_clear(cvm_rules *r)
{
    if (r == NULL)
        return;
    cvm_free(r->rule);
    memset(r, 0, sizeof *r);
}

/* a/b >= c/d on counts below 2^32: exact. */
static inline bool ratio_ge(uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
    return (unsigned __int128)a * d >= (unsigned __int128)c * b;
}

/* Rule order: lift, confidence, count descending, shorter antecedent,
 * antecedent items, consequent ascending. Negative when a comes first. */
static int rule_cmp(const cvm_itemsets *s, const cvm_rule *a, const cvm_rule *b)
{
    if (a->lift != b->lift)
        return a->lift > b->lift ? -1 : 1;
    if (a->confidence != b->confidence)
        return a->confidence > b->confidence ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    size_t la = cvm_itemsets_len(s, a->antecedent), lb = cvm_itemsets_len(s, b->antecedent);
    if (la != lb)
        return la < lb ? -1 : 1;
    const int32_t *ia = s->item + s->start[a->antecedent], *ib = s->item + s->start[b->antecedent];
    for (size_t k = 0; k < la; k++)
        if (ia[k] != ib[k])
            return ia[k] < ib[k] ? -1 : 1;
    return (a->consequent > b->consequent) - (a->consequent < b->consequent);
}

static const cvm_itemsets *g_set; /* qsort context, under a lock */

static int cmp_rule(const void *x, const void *y)
{
    return rule_cmp(g_set, x, y);
}

/* Bounded selection of the best max_rules rules: heap[0] is the worst kept
 * rule, so most candidates are turned away by one comparison and memory
 * stays proportional to max_rules. */
static void heap_down(const cvm_itemsets *s, cvm_rule *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && rule_cmp(s, &h[l], &h[w]) > 0)
            w = l;
        if (r < n && rule_cmp(s, &h[r], &h[w]) > 0)
            w = r;
        if (w == i)
            return;
        cvm_rule t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_up(const cvm_itemsets *s, cvm_rule *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (rule_cmp(s, &h[i], &h[p]) <= 0)
            return;
        cvm_rule t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* The rules of one thread: all of them, or its best max_rules in a heap. */
typedef struct rbuf {
    cvm_rule *r;
    size_t n, cap;
    size_t passing, redundant;
    int status;
} rbuf;

static void keep_rule(const cvm_rules_params *p, const cvm_itemsets *s, rbuf *b, const cvm_rule *cand)
{
    b->passing++;
    if (p->max_rules && b->n == p->max_rules) {
        if (rule_cmp(s, cand, &b->r[0]) < 0) {
            b->r[0] = *cand;
            heap_down(s, b->r, b->n, 0);
        }
        return;
    }
    if (b->n == b->cap) {
        size_t c = b->cap ? b->cap * 2 : 1024;
        cvm_rule *g = cvm_reallocarray(b->r, c, sizeof *g);
        if (g == NULL) {
            b->status = CVM_ENOMEM;
            return;
        }
        b->r = g;
        b->cap = c;
    }
    b->r[b->n++] = *cand;
    if (p->max_rules)
        heap_up(s, b->r, b->n - 1);
}

/* Rules of itemset i (length >= 2), and best_num/best_den at its items:
 * for item c at offset x, the highest confidence of a rule A' -> c with A'
 * a non-empty subset of X \ {c}. The subsets are shorter, so done before. */
static void itemset_rules(const cvm_rules_params *p, const cvm_itemsets *s, size_t i, uint32_t *bn,
                          uint32_t *bd, rbuf *b)
{
    size_t k = cvm_itemsets_len(s, i);
    const int32_t *it = s->item + s->start[i];
    int32_t sub[1024];
    long idx[1024];
    for (size_t j = 0; j < k; j++) {
        size_t q = 0;
        for (size_t u = 0; u < k; u++)
            if (u != j)
                sub[q++] = it[u];
        idx[j] = cvm_itemsets_find(s, sub, k - 1);
        if (idx[j] < 0) {
            b->status = CVM_EINTERNAL; /* subsets of frequent sets are frequent */
            return;
        }
    }
    double N = (double)s->n_baskets;
    uint64_t cx = s->count[i];
    for (size_t j = 0; j < k; j++) {
        uint64_t ca = s->count[idx[j]];
        /* More general rules for consequent it[j]: drop one more item a. */
        uint64_t gn = 0, gd = 1;
        if (k >= 3)
            for (size_t a = 0; a < k; a++) {
                if (a == j)
                    continue;
                size_t pos = s->start[idx[a]] + (j < a ? j : j - 1);
                if (!ratio_ge(gn, gd, bn[pos], bd[pos])) {
                    gn = bn[pos];
                    gd = bd[pos];
                }
            }
        size_t x = s->start[i] + j;
        if (ratio_ge(cx, ca, gn, gd)) {
            bn[x] = (uint32_t)cx;
            bd[x] = (uint32_t)ca;
        } else {
            bn[x] = (uint32_t)gn;
            bd[x] = (uint32_t)gd;
        }
        if (!s->in_target[i])
            continue;
        long ci = cvm_itemsets_find(s, &it[j], 1);
        if (ci < 0) {
            b->status = CVM_EINTERNAL;
            return;
        }
        uint64_t cc = s->count[ci];
        double conf = (double)cx / (double)ca;
        double pc = (double)cc / N;
        double lift = conf / pc;
        if (conf < p->min_confidence || lift < p->min_lift)
            continue;
        if (p->prune_redundant && gn > 0 && ratio_ge(gn, gd, cx, ca)) {
            b->redundant++;
            continue;
        }
        cvm_rule o;
        memset(&o, 0, sizeof o);
        o.antecedent = (size_t)idx[j];
        o.itemset = i;
        o.consequent = it[j];
        o.count = cx;
        o.antecedent_count = ca;
        o.consequent_count = cc;
        o.support = (double)cx / N;
        o.confidence = conf;
        o.lift = lift;
        o.leverage = o.support - ((double)ca / N) * pc;
        o.conviction = cx == ca ? INFINITY : (1 - pc) / (1 - conf);
        keep_rule(p, s, b, &o);
        if (b->status != CVM_OK)
            return;
    }
}

int cvm_rules_generate(const cvm_rules_params *p, const cvm_itemsets *s, cvm_rules *out,
                       cvm_err *err)
{
    memset(out, 0, sizeof *out);
    const char *why = cvm_rules_params_check(p);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "rules: %s", why);
    double t0 = cvm_now();
    size_t ni = s->n ? s->start[s->n] : 0;
    int nt = cvm_threads(p->threads);
    uint32_t *bn = cvm_malloc((ni ? ni : 1) * sizeof *bn);
    uint32_t *bd = cvm_malloc((ni ? ni : 1) * sizeof *bd);
    rbuf *T = cvm_calloc((size_t)nt, sizeof *T);
    cvm_rule *all = NULL;
    int rc = CVM_OK;
    if (!bn || !bd || !T) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory");
        goto done;
    }
    /* Itemsets come by length: one parallel pass per length, each reading
     * only the (finished) shorter ones. */
    size_t lo = 0;
    while (lo < s->n && cvm_itemsets_len(s, lo) < 2) {
        bn[s->start[lo]] = 0;
        bd[s->start[lo]] = 1;
        lo++;
    }
    int failed = 0;
    while (lo < s->n && !failed) {
        size_t k = cvm_itemsets_len(s, lo), hi = lo;
        while (hi < s->n && cvm_itemsets_len(s, hi) == k)
            hi++;
        /* Short lengths are not worth a barrier (it costs a time slice when
         * the other core is busy). */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 256) if (hi - lo >= 20000) \
    default(none) shared(p, s, bn, bd, T, lo, hi, failed)
        for (size_t i = lo; i < hi; i++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            if (T[tid].status != CVM_OK)
                continue;
            itemset_rules(p, s, i, bn, bd, &T[tid]);
            if (T[tid].status != CVM_OK) {
#pragma omp atomic write
                failed = 1;
            }
        }
        lo = hi;
    }
    size_t n = 0;
    for (int t = 0; t < nt; t++) {
        if (T[t].status != CVM_OK && rc == CVM_OK)
            rc = T[t].status == CVM_ENOMEM
                     ? CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory")
                     : CVM_FAIL(err, CVM_EINTERNAL, "rules: a subset of a frequent itemset is missing");
        n += T[t].n;
        out->n_passing += T[t].passing;
        out->n_redundant += T[t].redundant;
    }
    if (rc != CVM_OK)
        goto done;
    /* Threads' rules together, in rule order; the first max_rules are the
     * best overall since each thread kept its best max_rules. */
    all = cvm_malloc((n ? n : 1) * sizeof *all);
    if (all == NULL) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "rules: out of memory for %zu rules", n);
        goto done;
    }
    n = 0;
    for (int t = 0; t < nt; t++) {
        if (T[t].n)
            memcpy(all + n, T[t].r, T[t].n * sizeof *all);
        n += T[t].n;
        cvm_free(T[t].r);
        T[t].r = NULL;
    }
#pragma omp critical(cvm_rules_sort)
    {
        g_set = s;
        qsort(all, n, sizeof *all, cmp_rule);
        g_set = NULL;
    }
    if (p->max_rules && n > p->max_rules)
        n = p->max_rules;
    cvm_rule *g = cvm_reallocarray(all, n ? n : 1, sizeof *all);
    if (g)
        all = g;
    out->rule = all;
    out->n = n;
    all = NULL;
done:
    if (T)
        for (int t = 0; t < nt; t++)
            cvm_free(T[t].r);
    cvm_free(T);
    cvm_free(all);
    cvm_free(bn);
    cvm_free(bd);
    out->seconds = cvm_now() - t0;
    return rc;
}

/* ------------------------------------------------------------ cross-sell */

void cvm_recs_clear(cvm_recs *r)
{
    if (r == NULL)
        return;
    cvm_free(r->n_rec);
    cvm_free(r->item);
    cvm_free(r->score);
    cvm_free(r->rule);
    cvm_free(r->ruleset);
    memset(r, 0, sizeof *r);
}

/* Rules of one set listed under the first item of their antecedent. */
typedef struct rule_index {
    size_t *start;            /* n_items + 1 */
    uint32_t *rule;
} rule_index;

typedef struct cand {
    int32_t item;
    uint32_t rule;
    uint16_t set;
    double score;
} cand;

static int cmp_cand(const void *x, const void *y)
{
    const cand *a = x, *b = y;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return (a->item > b->item) - (a->item < b->item);
}

/* Is candidate (score, set, rule) better than the current best? */
static inline bool better(double s, uint16_t set, uint32_t rule, const cand *c)
{
    if (s != c->score)
        return s > c->score;
    if (set != c->set)
        return set < c->set;
    return rule < c->rule;
}

int cvm_rules_recommend(const cvm_baskets *history, const cvm_rules *sets,
                        const cvm_itemsets *const *itemsets, size_t n_sets,
                        const int32_t *extra_set, int top_n, int threads, cvm_recs *out,
                        cvm_err *err)
{
    memset(out, 0, sizeof *out);
    if (top_n < 1 || top_n > 255)
        return CVM_FAIL(err, CVM_EINVAL, "recommendations: top_n must be 1..255, got %d", top_n);
    if (n_sets > UINT16_MAX)
        return CVM_FAIL(err, CVM_EINVAL, "recommendations: too many rule sets");
    size_t nc = history->n_baskets, ni = history->n_items;
    int rc = CVM_OK;
    rule_index *ix = cvm_calloc(n_sets ? n_sets : 1, sizeof *ix);
    if (ix == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "recommendations: out of memory");
    for (size_t k = 0; k < n_sets && rc == CVM_OK; k++) {
        const cvm_rules *R = &sets[k];
        const cvm_itemsets *S = itemsets[k];
        ix[k].start = cvm_calloc(ni + 2, sizeof *ix[k].start);
        ix[k].rule = cvm_malloc((R->n ? R->n : 1) * sizeof *ix[k].rule);
        if (!ix[k].start || !ix[k].rule) {
            rc = CVM_FAIL(err, CVM_ENOMEM, "recommendations: out of memory");
            break;
        }
        for (size_t j = 0; j < R->n; j++)
            ix[k].start[S->item[S->start[R->rule[j].antecedent]] + 2]++;
        for (size_t i = 2; i < ni + 2; i++)
            ix[k].start[i] += ix[k].start[i - 1];
        for (size_t j = 0; j < R->n; j++)
            ix[k].rule[ix[k].start[S->item[S->start[R->rule[j].antecedent]] + 1]++] = (uint32_t)j;
    }
    size_t slots = nc * (size_t)top_n;
    out->n = nc;
    out->top_n = top_n;
    out->n_rec = cvm_calloc(nc ? nc : 1, sizeof *out->n_rec);
    out->item = cvm_malloc((slots ? slots : 1) * sizeof *out->item);
    out->score = cvm_malloc((slots ? slots : 1) * sizeof *out->score);
    out->rule = cvm_malloc((slots ? slots : 1) * sizeof *out->rule);
    out->ruleset = cvm_malloc((slots ? slots : 1) * sizeof *out->ruleset);
    if (rc == CVM_OK && (!out->n_rec || !out->item || !out->score || !out->rule || !out->ruleset))
        rc = CVM_FAIL(err, CVM_ENOMEM, "recommendations: out of memory for %zu customers", nc);
    int nt = cvm_threads(threads);
    int failed = 0;
    if (rc == CVM_OK) {
#pragma omp parallel num_threads(nt) default(none) \
    shared(history, sets, itemsets, n_sets, extra_set, top_n, out, ix, nc, ni, failed)
        {
            /* Per thread: marks of the bought items, best candidate per item. */
            uint8_t *bought = cvm_calloc(ni ? ni : 1, 1);
            cand *best = cvm_malloc((ni ? ni : 1) * sizeof *best);
            int32_t *touched = cvm_malloc((ni ? ni : 1) * sizeof *touched);
            cand *list = cvm_malloc((ni ? ni : 1) * sizeof *list);
            if (!bought || !best || !touched || !list) {
#pragma omp atomic write
                failed = 1;
            } else {
                for (size_t i = 0; i < ni; i++)
                    best[i].score = -1;
            }
#pragma omp for schedule(dynamic, 256)
            for (size_t c = 0; c < nc; c++) {
                if (!bought || !best || !touched || !list)
                    continue;
                const int32_t *B = history->item + history->start[c];
                size_t nb = history->start[c + 1] - history->start[c];
                for (size_t x = 0; x < nb; x++)
                    bought[B[x]] = 1;
                size_t nt2 = 0;
                for (int pass = 0; pass < 2; pass++) {
                    long k = pass == 0 ? 0 : (extra_set ? extra_set[c] : -1);
                    if (pass == 1 && (k <= 0 || (size_t)k >= n_sets))
                        continue;
                    const cvm_rules *R = &sets[k];
                    const cvm_itemsets *S = itemsets[k];
                    for (size_t x = 0; x < nb; x++) {
                        int32_t f = B[x];
                        for (size_t q = ix[k].start[f]; q < ix[k].start[f + 1]; q++) {
                            const cvm_rule *r = &R->rule[ix[k].rule[q]];
                            if (bought[r->consequent])
                                continue;
                            const int32_t *A = S->item + S->start[r->antecedent];
                            size_t la = S->start[r->antecedent + 1] - S->start[r->antecedent];
                            size_t y = 1;
                            while (y < la && bought[A[y]])
                                y++;
                            if (y < la)
                                continue;
                            double sc = r->confidence * r->lift;
                            cand *bc = &best[r->consequent];
                            if (bc->score < 0)
                                touched[nt2++] = r->consequent;
                            if (bc->score < 0 || better(sc, (uint16_t)k, ix[k].rule[q], bc)) {
                                bc->score = sc;
                                bc->set = (uint16_t)k;
                                bc->rule = ix[k].rule[q];
                                bc->item = r->consequent;
                            }
                        }
                    }
                }
                for (size_t t = 0; t < nt2; t++) {
                    list[t] = best[touched[t]];
                    best[touched[t]].score = -1;
                }
                qsort(list, nt2, sizeof *list, cmp_cand);
                size_t keep = nt2 < (size_t)top_n ? nt2 : (size_t)top_n;
                out->n_rec[c] = (uint8_t)keep;
                for (size_t t = 0; t < keep; t++) {
                    size_t s = c * (size_t)top_n + t;
                    out->item[s] = list[t].item;
                    out->score[s] = list[t].score;
                    out->rule[s] = list[t].rule;
                    out->ruleset[s] = list[t].set;
                }
                for (size_t x = 0; x < nb; x++)
                    bought[B[x]] = 0;
            }
            cvm_free(bought);
            cvm_free(best);
            cvm_free(touched);
            cvm_free(list);
        }
        if (failed)
            rc = CVM_FAIL(err, CVM_ENOMEM, "recommendations: out of memory");
    }
    for (size_t k = 0; k < n_sets; k++) {
        cvm_free(ix[k].start);
        cvm_free(ix[k].rule);
    }
    cvm_free(ix);
    if (rc != CVM_OK)
        cvm_recs_clear(out);
    return rc;
}

/* ------------------------------------------------------------------- CSV */

static void put_items(FILE *f, const cvm_baskets *labels, const int32_t *it, size_t k, bool names)
{
    /* Joined into one field, quoted as a whole when needed. */
    size_t len = 0;
    for (size_t i = 0; i < k; i++)
        len += strlen(names ? labels->item_name[it[i]] : labels->item_id[it[i]]) + 3;
    char small[512];
    small[0] = 0;
    char *buf = len < sizeof small ? small : cvm_malloc(len + 1);
    if (buf == NULL) {
        /* No memory for a very long field: write the items one by one. */
        for (size_t i = 0; i < k; i++) {
            const char *s = names ? labels->item_name[it[i]] : labels->item_id[it[i]];
            cvm_csv_put(f, s, strlen(s));
        }
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < k; i++) {
        const char *s = names ? labels->item_name[it[i]] : labels->item_id[it[i]];
        if (i) {
            const char *sep = names ? " | " : " ";
            size_t sl = names ? 3 : 1;
            memcpy(buf + n, sep, sl);
            n += sl;
        }
        size_t l = strlen(s);
        memcpy(buf + n, s, l);
        n += l;
    }
    cvm_csv_put(f, buf, n);
    if (buf != small)
        cvm_free(buf);
}

static void put_num(FILE *f, double v)
{
    if (isinf(v))
        fputs(v > 0 ? "inf" : "-inf", f);
    else
        fprintf(f, "%.12g", v);
}

void cvm_rules_csv_header(FILE *f)
{
    fputs("antecedent_ids,antecedent_names,consequent_id,consequent_name,support,confidence,"
          "lift,leverage,conviction,count,antecedent_count,consequent_count,segment\n", f);
}

void cvm_rules_csv_rows(FILE *f, const cvm_baskets *labels, const cvm_itemsets *s,
                        const cvm_rules *r, const char *segment)
{
    for (size_t i = 0; i < r->n; i++) {
        const cvm_rule *x = &r->rule[i];
        size_t la;
        const int32_t *A = cvm_rule_antecedent(s, x, &la);
        put_items(f, labels, A, la, false);
        fputc(',', f);
        put_items(f, labels, A, la, true);
        fputc(',', f);
        put_items(f, labels, &x->consequent, 1, false);
        fputc(',', f);
        put_items(f, labels, &x->consequent, 1, true);
        const double v[5] = {x->support, x->confidence, x->lift, x->leverage, x->conviction};
        for (int k = 0; k < 5; k++) {
            fputc(',', f);
            put_num(f, v[k]);
        }
        fprintf(f, ",%llu,%llu,%llu,", (unsigned long long)x->count,
                (unsigned long long)x->antecedent_count, (unsigned long long)x->consequent_count);
        cvm_csv_put(f, segment, strlen(segment));
        fputc('\n', f);
    }
}

void cvm_itemsets_csv_header(FILE *f)
{
    fputs("items,names,length,count,support,segment\n", f);
}

void cvm_itemsets_csv_rows(FILE *f, const cvm_baskets *labels, const cvm_itemsets *s,
                           const char *segment)
{
    for (size_t i = 0; i < s->n; i++) {
        if (!s->in_target[i])
            continue;
        size_t k = cvm_itemsets_len(s, i);
        const int32_t *it = s->item + s->start[i];
        put_items(f, labels, it, k, false);
        fputc(',', f);
        put_items(f, labels, it, k, true);
        fprintf(f, ",%zu,%llu,", k, (unsigned long long)s->count[i]);
        put_num(f, (double)s->count[i] / (double)(s->n_baskets ? s->n_baskets : 1));
        fputc(',', f);
        cvm_csv_put(f, segment, strlen(segment));
        fputc('\n', f);
    }
}
