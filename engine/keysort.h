/*
 * keysort.h - stable radix sort of (value, index) pairs by a double value.
 *
 * The customer stages rank customers by a figure with ties broken by
 * customer number (pandas `rank(method="first")`, the RFM quantiles, the
 * grading percentiles, the Pareto order of profit). Pairs built in index
 * order and sorted stably give exactly that order. An LSD radix sort over
 * the bits of the values does it in O(n) with sequential passes, several
 * times faster than qsort with a comparator on 100,000 customers.
 *
 *     cvm_vi *a = ...;  // a[j] = {value of row i, i}, built in ascending i
 *     if (cvm_sort_vi(a, n, false) != CVM_OK) ... out of memory
 */
#ifndef CVM_KEYSORT_H
#define CVM_KEYSORT_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

typedef struct cvm_vi {
    double v;
    size_t i;
} cvm_vi;

/** @brief Sort a[0..n) by v, ascending (descending when desc), stable: pairs
 *  with equal v keep their relative order. -0 equals +0; NaN sort last in
 *  both directions. CVM_ENOMEM when the scratch cannot be allocated (a is
 *  then unchanged). */
int cvm_sort_vi(cvm_vi *a, size_t n, bool desc);

#endif
