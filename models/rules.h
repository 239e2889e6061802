/*
 * rules.h - association rules from frequent itemsets, and cross-sell
 * recommendations from rules. Part of the rules model
 * (baskets.h -> fpgrowth.h -> rules.h); docs/models/rules.md has the maths.
 *
 *     cvm_rules_params rp;
 *     cvm_rules_params_default(&rp);       // confidence >= 0.2, lift >= 1, pruned
 *     cvm_rules r = {0};
 *     if (cvm_rules_generate(&rp, &itemsets, &r, &err) != CVM_OK) ...
 *     for (size_t i = 0; i < r.n; i++) {
 *         const cvm_rule *x = &r.rule[i];
 *         // antecedent: cvm_rule_antecedent(&itemsets, x, &len); consequent: x->consequent
 *     }
 *     cvm_rules_clear(&r);
 *
 * A rule A -> c has a single-item consequent c and a non-empty antecedent A,
 * with A u {c} one of the target itemsets (all frequent ones, or the closed
 * or maximal ones). With N baskets and counts n(.):
 *   support    = n(A u c) / N              (the support of the whole rule)
 *   confidence = n(A u c) / n(A)
 *   lift       = confidence / (n(c) / N)
 *   leverage   = support - (n(A) / N) (n(c) / N)
 *   conviction = (1 - n(c)/N) / (1 - confidence), +inf when confidence = 1
 * A rule is kept when confidence >= min_confidence and lift >= min_lift.
 * Redundancy (prune_redundant): A -> c is removed when some more general rule
 * A' -> c, with A' a non-empty proper subset of A, is at least as confident
 * (compared exactly on the integer counts), as R arules' is.redundant().
 * Order: lift, confidence, count descending, then shorter antecedent, then
 * antecedent and consequent item numbers ascending; max_rules keeps the
 * first ones.
 *
 * Cross-sell (cvm_rules_recommend): for a customer who bought the items B,
 * a rule A -> c applies when A is a subset of B and c is not in B; its
 * score is confidence x lift; each candidate product takes the score of its
 * best rule (ties: the earlier rule set, then the earlier rule), and the
 * top_n products by score (ties: item number) are recommended, each with
 * that rule as its reason.
 *
 * Thread-safety: all functions are reentrant; results are read-only.
 */
#ifndef CVM_RULES_H
#define CVM_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "baskets.h"
#include "error.h"
#include "fpgrowth.h"

typedef struct cvm_rules_params {
    double min_confidence;  /* default 0.2 */
    double min_lift;        /* default 1.0 */
    size_t max_rules;       /* default 10000; 0 = all */
    bool prune_redundant;   /* default true */
    int threads;            /* <= 0: OpenMP default; results do not depend on it */
} cvm_rules_params;

typedef struct cvm_rule {
    size_t antecedent;      /* itemset index of A */
    size_t itemset;         /* itemset index of A u {c} */
    int32_t consequent;     /* item number of c */
    uint64_t count;         /* n(A u c) */
    uint64_t antecedent_count; /* n(A) */
    uint64_t consequent_count; /* n(c) */
    double support, confidence, lift, leverage, conviction;
} cvm_rule;

typedef struct cvm_rules {
    cvm_rule *rule;
    size_t n;
    size_t n_passing;       /* rules passing the thresholds (and pruning) before max_rules */
    size_t n_redundant;     /* passing the thresholds but removed as redundant */
    double seconds;
} cvm_rules;

void cvm_rules_params_default(cvm_rules_params *p);
const char *cvm_rules_params_check(const cvm_rules_params *p);

/** @brief Rules from the target itemsets of s (s must hold every frequent
 *  itemset up to its max length, as cvm_fim_run returns). */
int cvm_rules_generate(const cvm_rules_params *p, const cvm_itemsets *s, cvm_rules *out,
                       cvm_err *err);
void cvm_rules_clear(cvm_rules *r);

/** @brief The antecedent's items (ascending) and their number. */
static inline const int32_t *cvm_rule_antecedent(const cvm_itemsets *s, const cvm_rule *r,
                                                 size_t *len)
{
    *len = cvm_itemsets_len(s, r->antecedent);
    return s->item + s->start[r->antecedent];
}

/* ---- CSV output (rules.csv, itemsets.csv) ---- */

/** rules.csv columns: antecedent_ids (ids joined by one space, as in FIMI),
 *  antecedent_names (joined by " | "), consequent_id, consequent_name,
 *  support, confidence, lift, leverage, conviction ("inf" when confidence is
 *  1), count, antecedent_count, consequent_count, segment. Numbers with 12
 *  significant digits. labels gives item_id / item_name. */
void cvm_rules_csv_header(FILE *f);
void cvm_rules_csv_rows(FILE *f, const cvm_baskets *labels, const cvm_itemsets *s,
                        const cvm_rules *r, const char *segment);
/** itemsets.csv columns: items, names, length, count, support, segment; only
 *  the target itemsets (closed/maximal when asked). */
void cvm_itemsets_csv_header(FILE *f);
void cvm_itemsets_csv_rows(FILE *f, const cvm_baskets *labels, const cvm_itemsets *s,
                           const char *segment);

/* ---- cross-sell ---- */

typedef struct cvm_recs {
    size_t n;               /* customers (baskets of the history) */
    int top_n;
    /* Slot k of customer i is [i * top_n + k], for k < n_rec[i]. */
    uint8_t *n_rec;
    int32_t *item;
    double *score;          /* confidence x lift of the rule */
    uint32_t *rule;         /* index in its rule set */
    uint16_t *ruleset;      /* which rule set */
} cvm_recs;

/**
 * @brief Recommend for every basket of history (one per customer: the
 * items it bought) up to top_n (1..255) items it has not bought.
 * @param sets      n_sets rule sets with their itemsets (sets[k] mined from
 *                  itemsets[k]); set 0 applies to everyone.
 * @param extra_set per history basket, one more set that applies to it
 *                  (its segment's), or -1; NULL = none.
 */
int cvm_rules_recommend(const cvm_baskets *history, const cvm_rules *sets,
                        const cvm_itemsets *const *itemsets, size_t n_sets,
                        const int32_t *extra_set, int top_n, int threads, cvm_recs *out,
                        cvm_err *err);
void cvm_recs_clear(cvm_recs *r);

#endif
