/*
 * job.h - the job runner: validates the whole job, ingests once, runs the
 * stages in a fixed order with per-stage timing, and publishes the run
 * directory atomically. The CLI (main.c) is a thin layer over it.
 *
 * Exit codes (docs/operations.md):
 *   0 success, 2 usage or configuration error, 3 input-data error (a file
 *   missing or unreadable, a header without a configured column, rejects
 *   above cleaning.max_reject_ratio), 4 output error, 5 internal error
 *   (out of memory, a bug), 6 another run of the same job is in progress
 *   (its lock file is held).
 */
#ifndef CVM_JOB_H
#define CVM_JOB_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "error.h"
#include "log.h"

enum {
    CVM_EXIT_OK = 0,
    CVM_EXIT_USAGE = 2,
    CVM_EXIT_DATA = 3,
    CVM_EXIT_OUTPUT = 4,
    CVM_EXIT_INTERNAL = 5,
    CVM_EXIT_LOCKED = 6,
};

typedef struct cvm_job_opts {
    const char *job_path;
    const char *const *sets;  /* "section.key=value" overrides */
    size_t n_sets;
    int threads;              /* > 0 overrides job.threads */
    const char *out_dir;      /* overrides output.dir */
    const char *as_of;        /* overrides value.as_of */
    bool validate_only;       /* cvm validate: ingest + rejects report, no model */
    const char *const *grid;  /* cvm sweep: "key=v1,v2,..." per swept key; the
                                 run parses once and evaluates every point */
    size_t n_grid;
} cvm_job_opts;

typedef struct cvm_job_report {
    int exit_code;
    char run_dir[4400];       /* published directory (or failed-* directory) */
    size_t customers;
    size_t rows;
    size_t rejected;
} cvm_job_report;

/** @brief Load the job file and overrides, and check every key and the
 *  cross-key rules. On failure err names file:line and the key. */
int cvm_job_config(const cvm_job_opts *o, cvm_config **out, cvm_err *err);
/** @brief Run (or validate) a job. rep->exit_code is set on every path. */
int cvm_job_run(const cvm_job_opts *o, cvm_log *log, cvm_job_report *rep, cvm_err *err);
/** @brief Exit code for a status raised in a given phase. */
int cvm_job_exit_code(int status, bool output_phase);

#endif
