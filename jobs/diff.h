/*
 * diff.h - night to night: what changed between two runs' segments.csv.
 *
 * For the customers of both runs: grade, grid-class and RFM-segment
 * migration matrices (who moved from A to B), customers newly at risk (their
 * rfm_segment moved into one of the at-risk segments, or churn_risk became
 * high where that column exists), segment and grade sizes and value before
 * and after, and one changes.csv row (customer_id, field, old, new) per
 * customer and changed field. Customers of only one run count as new or
 * gone. Both files must be sorted by customer_id (cvm writes them so), which
 * makes the comparison one streaming merge with flat memory.
 *
 *     cvm_diff_params p;
 *     cvm_diff_params_default(&p);
 *     json_t *section;
 *     cvm_diff_runs("out/nightly-20241130T023000Z", "out/nightly-20241201T023000Z", &p,
 *                   "changes.csv", (void **)&section, &err);
 *     ... json_decref(section);
 *
 * The publisher "changes" (output.changes.*) runs it automatically against
 * the run `latest` pointed to before this one, and `cvm diff OLD NEW` runs it
 * by hand (cvm_diff_cli). Sections and files: docs/outputs.md#changescsv.
 * Not thread-safe; no global state.
 */
#ifndef CVM_DIFF_H
#define CVM_DIFF_H

#include <stddef.h>

#include "error.h"
#include "publisher.h"

typedef struct cvm_diff_params {
    const char *const *fields;   /* columns compared into changes.csv; those
                                    missing from either run are skipped */
    size_t n_fields;
    const char *const *at_risk;  /* rfm_segment values that count as at risk */
    size_t n_at_risk;
    size_t top;                  /* newly-at-risk customers listed by value (20) */
} cvm_diff_params;

/** @brief The defaults: fields grade, grid_class, volume_tier, rfm_segment,
 *  action, churn_risk, cluster; at risk: At risk, Cannot lose, About to sleep,
 *  Hibernating, Lost; top 20. The arrays are static. */
void cvm_diff_params_default(cvm_diff_params *p);

/**
 * @brief Compare old_dir/segments.csv with new_dir/segments.csv.
 * @param csv_path     where to write changes.csv, or NULL for none
 * @param section_out  receives the `changes` section (a new json_t * reference)
 * @return CVM_OK; CVM_EIO when a file cannot be read or written; CVM_EDATA
 *         for a malformed file, one without customer_id, or one not sorted by
 *         customer_id (naming file:line); CVM_ENOMEM.
 */
int cvm_diff_runs(const char *old_dir, const char *new_dir, const cvm_diff_params *p,
                  const char *csv_path, void **section_out, cvm_err *err);

/**
 * @brief `cvm diff OLD_RUN NEW_RUN [--out FILE] [--json]` with its own argv
 * (argv[0] == "diff"): prints a readable summary (or, with --json, the
 * `changes` section) on stdout, and with --out writes changes.csv to FILE.
 * `--help` prints the usage and returns CVM_OK.
 * @return CVM_OK, CVM_EINVAL on bad usage, or cvm_diff_runs' status.
 */
int cvm_diff_cli(int argc, char **argv, cvm_err *err);

extern const cvm_publisher cvm_publisher_changes;

#endif
