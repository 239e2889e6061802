/*
 * log.h - logging to stderr for unattended nightly jobs: timestamped text
 * lines or one JSON object per line (--log-format json), levels, per-stage
 * timing, and a progress bar drawn only when stderr is a terminal.
 *
 * The library itself never logs; the job runner does, through this module.
 */
#ifndef CVM_LOG_H
#define CVM_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { CVM_LOG_DEBUG, CVM_LOG_INFO, CVM_LOG_WARN, CVM_LOG_ERROR } cvm_log_level;

typedef struct cvm_log {
    cvm_log_level min_level;  /* INFO by default; --quiet: WARN */
    bool json;
    bool progress;            /* draw progress bars (stderr is a tty and not json/quiet) */
    double t0;                /* start of the run, for elapsed times */
    int bar_width;
    int last_pct;
} cvm_log;

void cvm_log_init(cvm_log *l, bool quiet, bool json);
void cvm_log_msg(cvm_log *l, cvm_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/** @brief A stage finished: logs "stage NAME done in S s" (json: stage, seconds, extra). */
void cvm_log_stage(cvm_log *l, const char *stage, double seconds, const char *extra);
/** @brief Progress of a long stage (done of total); no-op unless l->progress. */
void cvm_log_progress(cvm_log *l, const char *stage, uint64_t done, uint64_t total);
/** @brief Monotonic seconds. */
double cvm_now(void);

#endif
