/*
 * rfm.h - recency, frequency and monetary scores 1..bins, the RFM cell and a
 * named segment.
 *
 * Quantile method (default), exactly pandas'
 *     qcut(x.rank(method="first"), bins, labels=1..bins)
 * over the customers with a purchase, sorted by id: ranks break ties by
 * customer id, the ranks are cut at numpy's linear-interpolated quantiles,
 * recency is reversed (recent = high score). Breaks method: configured
 * right-closed break points (bins-1 ascending values per measure). Frozen
 * cut-offs from an earlier run are breaks too.
 *
 * The value cut-offs actually used (the largest value in each score but the
 * top one) are reported so that a later night can freeze them.
 */
#ifndef CVM_RFM_H
#define CVM_RFM_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"
#include "table.h"

#define CVM_RFM_MAX_BINS 10

typedef struct cvm_rfm_segment_rule {
    const char *name;
    int r_lo, r_hi, f_lo, f_hi, m_lo, m_hi;   /* inclusive score ranges */
} cvm_rfm_segment_rule;

typedef struct cvm_rfm_params {
    int bins;                 /* 2..10, default 5 */
    bool use_breaks;          /* false: quantiles */
    double breaks[3][CVM_RFM_MAX_BINS - 1]; /* R, F, M break points when use_breaks */
    const cvm_rfm_segment_rule *segments; /* first match wins; NULL: built-in map */
    size_t n_segments;
    int threads;              /* 0: OpenMP's default */
} cvm_rfm_params;

typedef struct cvm_rfm_result {
    double cutoffs[3][CVM_RFM_MAX_BINS - 1]; /* value cut-offs used per measure */
    size_t scored;            /* customers with a purchase */
    size_t segment_counts[32];
    size_t n_segment_names;
    const char *segment_names[32];
} cvm_rfm_result;

void cvm_rfm_params_default(cvm_rfm_params *p);
const char *cvm_rfm_params_check(const cvm_rfm_params *p);
/** @brief The built-in 11-segment map for 5 bins (Champions ... Lost). */
const cvm_rfm_segment_rule *cvm_rfm_default_segments(size_t *n);
/** @brief Reads recency_days, frequency, monetary from ct; adds r_score,
 *  f_score, m_score, rfm_cell, rfm_segment. */
int cvm_rfm_run(const cvm_rfm_params *p, cvm_custtab *ct, cvm_rfm_result *res, cvm_err *err);
/** @brief pandas qcut bin (1..bins) of 1-based rank k among n, for tests. */
int cvm_rfm_qcut_bin(size_t k, size_t n, int bins);

#endif
