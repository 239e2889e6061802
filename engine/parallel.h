/*
 * parallel.h - the thread count every parallel loop uses.
 *
 * cvm parallelises map steps with disjoint outputs (per-customer features,
 * point-to-centre assignment) and keeps every reduction in a fixed order, so
 * results are byte-identical for any thread count.
 */
#ifndef CVM_PARALLEL_H
#define CVM_PARALLEL_H

/** @brief requested > 0: that many; otherwise OpenMP's default (1 without OpenMP). */
int cvm_threads(int requested);

#endif
