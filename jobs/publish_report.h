/*
 * publish_report.h - report.html: one self-contained page (inline SVG and
 * CSS, no script, no network) for the people who act on a run.
 *
 *     cvm_report_write("out/nightly-20241201T023000Z", summary,
 *                      "out/nightly-20241201T023000Z/report.html", &err);
 *
 * Sections: key figures, Pareto curve of profit, RFM heat map (recency x
 * frequency score, coloured by mean monetary), value grades, the
 * satisfaction x volume grid, cluster profiles (clusters.csv), top rules by
 * lift (rules.csv), CLV and P(alive) distributions (columns clv, p_alive),
 * churn-risk and action counts, night-to-night changes (summary `changes`),
 * rejects by reason, stage timings, degraded inputs. Sections whose data the
 * run lacks are left out. Every figure taken from summary.json carries
 * data-key (its JSON pointer), data-value (the exact value) and data-format,
 * so a test, or a reader, can check it against the manifest; figures the
 * report computes from the CSV files carry data-calc instead.
 *
 * The publisher "report" (key output.report) writes it for every run, after
 * the changes and SQLite publishers. Not thread-safe; no global state.
 */
#ifndef CVM_PUBLISH_REPORT_H
#define CVM_PUBLISH_REPORT_H

#include "error.h"
#include "publisher.h"

/**
 * @brief Write the report of the run in run_dir (its segments.csv and, when
 * present, clusters.csv and rules.csv) with figures from summary.
 * @param summary json_t manifest of the run (borrowed)
 * @return CVM_OK, CVM_EIO (naming the file), CVM_EDATA (a malformed CSV),
 *         CVM_ENOMEM.
 */
int cvm_report_write(const char *run_dir, const void *summary, const char *out_path,
                     cvm_err *err);

extern const cvm_publisher cvm_publisher_report;

#endif
