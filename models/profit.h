/*
 * profit.h - cost to serve, profit contribution and the Pareto (whale)
 * curve of profit.
 *
 *   cost_to_serve = cost.per_order x frequency + cost.per_line x lines
 *                 + cost.per_return_line x return_lines
 *                 + cost.per_type[type] (flat, for the period)
 *                 + interaction_cost (visits, calls, complaint handling)
 *   profit        = gross_margin - cost_to_serve
 *
 * Pareto: customers ranked by profit (descending, ties by id); pareto_top
 * flags the smallest prefix whose cumulative profit reaches pareto_share of
 * the total profit (when the total is positive).
 */
#ifndef CVM_PROFIT_H
#define CVM_PROFIT_H

#include <stddef.h>

#include "error.h"
#include "table.h"

typedef struct cvm_profit_params {
    double per_order, per_line, per_return_line;
    const char *const *type_names;  /* cost per customer type, for the period */
    const double *type_costs;
    size_t n_types;
    double type_default;            /* for types not listed (and no type) */
    double pareto_share;            /* default 0.8 */
} cvm_profit_params;

typedef struct cvm_profit_result {
    double total_profit, total_margin, total_cost_to_serve;
    size_t top_customers;           /* customers flagged pareto_top */
    double top_customer_share;      /* top_customers / customers with activity */
    size_t negative_profit;         /* customers with profit < 0 */
    size_t active;                  /* customers with any line */
} cvm_profit_result;

void cvm_profit_params_default(cvm_profit_params *p);
const char *cvm_profit_params_check(const cvm_profit_params *p);
/** @brief Reads frequency, lines, return_lines, gross_margin, optional
 *  customer_type and interaction_cost; adds cost_to_serve, profit,
 *  profit_share, pareto_rank, cum_profit_share, pareto_top. */
int cvm_profit_run(const cvm_profit_params *p, cvm_custtab *ct, cvm_profit_result *res,
                   cvm_err *err);

#endif
