/*
 * fpgrowth.h - frequent itemsets: all, closed or maximal. Part of the rules
 * model (baskets.h -> fpgrowth.h -> rules.h).
 *
 *     cvm_fim_params fp;
 *     cvm_fim_params_default(&fp);             // support 0.1%, max_len 5
 *     fp.min_support = 0.002;
 *     cvm_itemsets is = {0};
 *     if (cvm_fim_run(&fp, &baskets, NULL, 0, &is, &err) != CVM_OK) ...
 *     for (size_t s = 0; s < is.n; s++)         // is.item[is.start[s] .. is.start[s+1])
 *         ...is.count[s]...
 *     cvm_itemsets_clear(&is);
 *
 * Algorithm: pattern growth over conditional databases (FP-growth's
 * divide-and-conquer, with the FP-tree replaced by flat arrays as in
 * H-mine and LCM's occurrence delivery). Items are ranked by descending
 * frequency; the conditional database of itemset P+{e} holds, for every
 * basket containing P+{e}, its items more frequent than e that are frequent
 * together with P+{e}; baskets left with fewer than two items are dropped
 * (they cannot support a longer itemset). The first-level items are mined in
 * parallel (OpenMP, one workspace per thread); the output is sorted into a
 * canonical order, so it does not depend on the thread count.
 *
 * Conventions (as R arules and Borgelt's apriori/eclat/fpgrowth):
 * - support(X) = count(X) / n_baskets, where n_baskets counts every basket
 *   of the input (or of the subset), empty ones included;
 * - X is frequent when count(X) >= min_count_used, where min_count_used =
 *   max(ceil(min_support * n_baskets), min_count, 1) (ceil computed on the
 *   exact product with a 1e-9 relative guard against binary rounding, so
 *   0.001 * 1000 is 1, not 2);
 * - max_len bounds the number of items (default 5; 0 = no bound); the empty
 *   itemset is never reported;
 * - closed: no proper superset has the same count; maximal: no proper
 *   superset is frequent. Both are decided against supersets of any length
 *   (the miner looks one item beyond max_len), so a closed set of length
 *   <= max_len is closed in the unbounded sense too.
 * Output order: by length, then lexicographically by item numbers (items
 * ascending inside an itemset). Every frequent itemset up to max_len is
 * returned (rules need them all); in_target marks the closed or maximal ones
 * when the target asks for them.
 *
 * The explosion guard: when the number of frequent itemsets would pass
 * max_itemsets, the run stops early with CVM_ELIMIT and a message naming a
 * minimum support (count) at which the number stays under the bound, found
 * by bounded trial runs; suggest_count holds it. Memory stays proportional to
 * max_itemsets plus the input.
 *
 * Thread-safety: cvm_fim_run is reentrant; results are read-only after it.
 */
#ifndef CVM_FPGROWTH_H
#define CVM_FPGROWTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "baskets.h"
#include "error.h"

typedef enum { CVM_FIM_FREQUENT, CVM_FIM_CLOSED, CVM_FIM_MAXIMAL } cvm_fim_target;

typedef struct cvm_fim_params {
    double min_support;   /* fraction of baskets in [0, 1] (default 0.001) */
    uint64_t min_count;   /* absolute minimum count; the larger threshold wins (default 0) */
    int max_len;          /* default 5; 0 = unbounded */
    cvm_fim_target target;/* default CVM_FIM_FREQUENT */
    size_t max_itemsets;  /* explosion guard (default 2,000,000; 0 = none) */
    int threads;          /* <= 0: OpenMP default */
} cvm_fim_params;

typedef struct cvm_itemsets {
    size_t n;             /* frequent itemsets */
    size_t *start;        /* n + 1 offsets into item */
    int32_t *item;        /* ascending within an itemset */
    uint64_t *count;      /* baskets containing the itemset */
    uint8_t *in_target;   /* 1 when closed/maximal as the target asks (all 1 for frequent) */
    size_t n_target;      /* itemsets with in_target */
    uint64_t n_baskets;   /* baskets mined (the support denominator) */
    uint64_t min_count_used;
    size_t n_items;       /* item numbers are < n_items (the baskets') */
    size_t n_frequent_items;
    int max_len_used;     /* longest itemset found */
    uint64_t suggest_count; /* after CVM_ELIMIT: a count threshold within the bound */
    double seconds;       /* wall time of the mining */
    /* Hash index for cvm_itemsets_find (internal). */
    uint32_t *slot;
    size_t mask;
} cvm_itemsets;

void cvm_fim_params_default(cvm_fim_params *p);
/** @brief NULL when p is usable, else a reason. */
const char *cvm_fim_params_check(const cvm_fim_params *p);

/** @brief The count threshold for n baskets (see the conventions above). */
uint64_t cvm_fim_min_count(const cvm_fim_params *p, uint64_t n_baskets);

/**
 * @brief Mine the frequent itemsets of b, or of the baskets listed in subset
 * (n_subset indices into b; subset NULL = all baskets).
 * @param out filled (cleared first); free with cvm_itemsets_clear. On
 *        CVM_ELIMIT only out->suggest_count and the figures are set.
 * @return CVM_OK, CVM_EINVAL (bad params), CVM_ELIMIT (explosion guard),
 *         CVM_ENOMEM.
 */
int cvm_fim_run(const cvm_fim_params *p, const cvm_baskets *b, const uint32_t *subset,
                size_t n_subset, cvm_itemsets *out, cvm_err *err);

/** @brief Index of the itemset items[0..k) (ascending), or -1 when it is not
 *  frequent. Thread-safe (read-only). */
long cvm_itemsets_find(const cvm_itemsets *s, const int32_t *items, size_t k);

static inline size_t cvm_itemsets_len(const cvm_itemsets *s, size_t i)
{
    return s->start[i + 1] - s->start[i];
}

void cvm_itemsets_clear(cvm_itemsets *s);

#endif
