/*
 * publisher.h - how an output format plugs into the job runner.
 *
 * Publishers run after every CSV of the run is written into the temporary
 * run directory and before summary.json is written and the directory is
 * renamed into place: they read the run's files (and the manifest being
 * built), write more files next to them (cvm.sqlite, report.html,
 * changes.csv) or load them elsewhere (PostgreSQL), and may add sections to
 * the manifest. A publisher that fails makes the run fail with the output
 * exit code; the previous run and `latest` stay as they were.
 *
 * Order: jobs/publishers.c.
 */
#ifndef CVM_PUBLISHER_H
#define CVM_PUBLISHER_H

#include <stddef.h>

#include "config.h"
#include "error.h"
#include "log.h"

typedef struct cvm_publish_ctx {
    const cvm_config *cfg;
    const char *cfg_source;     /* job file, for messages */
    const char *run_dir;        /* the temporary run directory being filled */
    const char *run_id;         /* final name of the run directory */
    const char *out_dir;        /* output.dir */
    const char *prev_run_dir;   /* the run `latest` pointed to before this one, or NULL */
    void *summary;              /* json_t object of summary.json (written after the publishers) */
    cvm_log *log;
    int threads;
} cvm_publish_ctx;

typedef struct cvm_publisher {
    const char *name;
    const cvm_cfg_key *schema;  /* its keys, under "output." */
    size_t schema_len;
    int (*check)(const cvm_config *cfg, const char *source, cvm_err *err);  /* may be NULL */
    int (*run)(cvm_publish_ctx *ctx, cvm_err *err);
    const char *enabled_key;    /* the bool key that switches it on: when false the
                                   job runner skips it (no run, no timing, no log) */
} cvm_publisher;

/** @brief The publishers in run order, NULL-terminated. */
extern const cvm_publisher *const cvm_job_publishers[];

#endif
