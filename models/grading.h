/*
 * grading.h - value grades and the satisfaction x volume grid.
 *
 * Grade (grade column):
 *  1. one vote: revenue_recent >= one_vote_revenue gives A whatever else;
 *  2. otherwise a tier from the value percentile (revenue_recent or profit,
 *     value.grade_basis) and, when the customer master has an influence
 *     column, a tier from the influence percentile; the 3x3 matrix
 *     grade_matrix (value tier rows high/mid/low x influence tier columns
 *     high/mid/low) gives the letter. Without influence the value tier alone
 *     gives A/B/C. Customers without purchases get D.
 *  Tiers: percentile >= tier_high is high, >= tier_mid is mid, else low.
 *  Percentiles are mid-ranks in [0, 1] among customers with purchases.
 *
 * Grid (grid_class A..I): volume tier from the revenue_recent percentile
 * (large >= volume_large, medium >= volume_medium, else small) x
 * satisfaction level (high >= sat_high, medium >= sat_medium, else low):
 *            large  medium  small
 *   high       A      B       C      strategy: partner
 *   medium     D      E       F      strategy: improve
 *   low        G      H       I      strategy: correct   (G: the time bomb)
 * Volume strategies: large one_to_one (key account), medium one_to_many
 * (regional rep), small via_retailer (distributor/retailer).
 * Missing satisfaction leaves grid_class empty; the volume strategy stays.
 */
#ifndef CVM_GRADING_H
#define CVM_GRADING_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "table.h"

typedef struct cvm_grading_params {
    double one_vote_revenue;  /* <= 0 disables the one-vote rule */
    bool basis_profit;        /* value percentile from profit instead of revenue_recent */
    double tier_high, tier_mid;
    char matrix[3][3];        /* value tier x influence tier -> letter */
    double volume_large, volume_medium;
    double sat_high, sat_medium;
    int threads;               /* 0: OpenMP's default */
} cvm_grading_params;

typedef struct cvm_grading_result {
    size_t grade_counts[5];   /* A B C D other */
    size_t class_counts[9];   /* A..I */
    size_t no_satisfaction;   /* customers without a satisfaction value */
    bool used_influence;
    bool used_satisfaction;
    size_t one_vote;          /* grade A by the one-vote rule */
} cvm_grading_result;

void cvm_grading_params_default(cvm_grading_params *p);
const char *cvm_grading_params_check(const cvm_grading_params *p);
/** @brief Reads revenue_recent (or profit), frequency, optional influence and
 *  satisfaction; adds value_percentile, influence_percentile, grade,
 *  grade_reason, volume_tier, satisfaction_level, grid_class,
 *  strategy_volume, strategy_satisfaction. */
int cvm_grading_run(const cvm_grading_params *p, cvm_custtab *ct, cvm_grading_result *res,
                    cvm_err *err);

#endif
