/*
 * purchases.h - the per-customer figures every model reads: purchase dates,
 * recency, frequency, monetary value, margin, returns, tenure, intervals.
 *
 *     cvm_purchases_params p;
 *     cvm_purchases_params_default(&p);
 *     p.as_of = cvm_purchases_default_as_of(&txn);   // day after the last purchase
 *     cvm_purchases_run(&p, &txn, ct, &err);         // adds columns to ct
 *
 * Definitions (docs/outputs.md has them all):
 * - a purchase line is a line that is neither a return nor excluded, dated
 *   before as_of; frequency counts distinct orders with a purchase line;
 * - recency = as_of - last purchase day, in whole days;
 * - monetary = net revenue: purchases minus returns (excluded codes out);
 * - lines dated on or after as_of are ignored, so an earlier as_of replays
 *   an earlier night.
 * The loop is parallel over customers with disjoint outputs: results do not
 * depend on the thread count.
 */
#ifndef CVM_PURCHASES_H
#define CVM_PURCHASES_H

#include "error.h"
#include "table.h"

typedef struct cvm_purchases_params {
    int32_t as_of;            /* day number; lines on or after it are ignored */
    int window_days;          /* window of revenue_recent (default 365) */
    double default_margin;    /* margin rate assumed for lines without a cost (default 0.25) */
    int threads;
} cvm_purchases_params;

void cvm_purchases_params_default(cvm_purchases_params *p);
const char *cvm_purchases_params_check(const cvm_purchases_params *p);
/** @brief Day after the last purchase line in t (CVM_DATE_NONE when none). */
int32_t cvm_purchases_default_as_of(const cvm_txn_table *t);
/** @brief Add the feature columns to ct, which must have
 *  t->n_customers rows. */
int cvm_purchases_run(const cvm_purchases_params *p, const cvm_txn_table *t, cvm_custtab *ct,
                     cvm_err *err);

#endif
