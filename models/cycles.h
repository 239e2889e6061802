/*
 * cycles.h - purchase rhythms from the customer's own history: intervals
 * between distinct purchase days, the next expected purchase, how overdue a
 * customer (or a customer's reorder of one product) is; and the per-customer
 * summary (x, t_x, T, mean repeat value) that the BG/NBD and Gamma-Gamma
 * models read.
 *
 *     cvm_cycles_params p;
 *     cvm_cycles_params_default(&p);
 *     p.as_of = as_of;
 *     cvm_cycle *c = cvm_calloc(txn.n_customers, sizeof *c);
 *     cvm_cycles_customers(&p, &txn, c, &err);            // one per customer
 *     cvm_cycle_pair *pairs; size_t n;
 *     cvm_cycles_products(&p, &txn, &pairs, &n, &err);    // cvm_free(pairs)
 *
 * Definitions (docs/models/cycles.md):
 * - purchase days are the distinct days with a purchase line (not a return,
 *   not an excluded code) before as_of; several orders on one day are one;
 * - intervals are the gaps between consecutive purchase days; mean, median
 *   (linear interpolation) and coefficient of variation (sample standard
 *   deviation / mean, needs 2 intervals);
 * - a rhythm needs at least min_intervals intervals (product_min_intervals
 *   for a customer x product pair);
 * - next_day = last purchase + the median interval, rounded;
 * - overdue after `threshold` days since the last purchase: the rule's upper
 *   quantile of the own intervals, or mean + z sd;
 *   days_overdue = (as_of - last) - threshold rounded up, when positive, else 0.
 *
 * Thread-safety: reentrant; the loops are parallel over customers with
 * disjoint outputs, so results do not depend on the thread count.
 */
#ifndef CVM_CYCLES_H
#define CVM_CYCLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "table.h"

typedef enum {
    CVM_OVERDUE_QUANTILE, /* beyond the rule_param quantile of the own intervals */
    CVM_OVERDUE_ZSCORE,   /* beyond mean + rule_param x sd (sd 0 with one interval) */
} cvm_overdue_rule;

typedef struct cvm_cycles_params {
    int32_t as_of;              /* lines on or after this day are ignored */
    int min_intervals;          /* per customer (default 2) */
    int product_min_intervals;  /* per customer x product (default 2) */
    cvm_overdue_rule rule;      /* default CVM_OVERDUE_QUANTILE */
    double rule_param;          /* quantile level in (0, 1] (default 0.9), or z >= 0 */
    int threads;
} cvm_cycles_params;

/* One rhythm: a customer's, or a customer's for one product. */
typedef struct cvm_cycle {
    int32_t n_days;        /* distinct purchase days */
    bool has_cycle;        /* n_days - 1 >= the minimum; the figures below need it */
    double mean, median;   /* intervals, days (NAN without a cycle) */
    double cv;             /* NAN with fewer than 2 intervals or a zero mean */
    double threshold;      /* overdue after this many days since the last purchase */
    int32_t first_day, last_day; /* CVM_DATE_NONE without purchases */
    int32_t next_day;      /* expected next purchase; CVM_DATE_NONE without a cycle */
    int32_t days_overdue;  /* >= 0; 0 when not overdue or without a cycle */
} cvm_cycle;

typedef struct cvm_cycle_pair {
    int32_t customer, product;
    cvm_cycle c;
} cvm_cycle_pair;

void cvm_cycles_params_default(cvm_cycles_params *p);
/** @brief NULL when p is usable, else a readable reason (static string). */
const char *cvm_cycles_params_check(const cvm_cycles_params *p);

/** @brief Rhythm of every customer into out[t->n_customers]. */
int cvm_cycles_customers(const cvm_cycles_params *p, const cvm_txn_table *t, cvm_cycle *out,
                         cvm_err *err);
/**
 * @brief Rhythms of every customer x product pair with at least
 * product_min_intervals intervals, ordered by customer then product index.
 * @param pairs receives a cvm_malloc'd array (free with cvm_free), NULL when
 *        there are none or t has no product column.
 */
int cvm_cycles_products(const cvm_cycles_params *p, const cvm_txn_table *t,
                        cvm_cycle_pair **pairs, size_t *n_pairs, cvm_err *err);

/**
 * @brief The repeat-buying summary of every customer as of end_day
 * (inclusive), in time units of unit_days days (1 = days, 7 = weeks):
 *   x    repeat purchase days (distinct purchase days after the first),
 *   t_x  (last purchase day - first) / unit_days,
 *   T    (end_day - first) / unit_days,
 *   m_x  mean revenue of the repeat purchase days (the first day left out;
 *        0 when x = 0), a day's revenue being its purchase lines' sum,
 * and, when holdout is not NULL, purchase days in (end_day, holdout_end].
 * Customers without a purchase by end_day get active[c] = 0 (other outputs
 * 0). Arrays have t->n_customers entries.
 */
int cvm_cycles_summary(const cvm_txn_table *t, int32_t end_day, double unit_days,
                       int32_t holdout_end, int threads, double *x, double *t_x, double *T,
                       double *m_x, uint8_t *active, double *holdout, cvm_err *err);

#endif
