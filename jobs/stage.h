/*
 * stage.h - how a mining model plugs into the job runner.
 *
 * A stage owns its config keys (a schema fragment merged into the job schema,
 * so docs/config.md and `cvm config` list them), checks them before any data
 * is read, and runs after the value stages (purchases, profit, RFM, grading)
 * and before the action table, so its columns can drive actions. It reads the
 * shared tables, adds columns to the customer table, may write extra files
 * into the run directory, and adds its section to summary.json under
 * "models". Stages do not call each other; they meet in the customer table.
 *
 * Order of stages in a run: kmeans, cycles, rules (jobs/stages.c).
 */
#ifndef CVM_STAGE_H
#define CVM_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "error.h"
#include "ingest.h"
#include "log.h"
#include "publish.h"
#include "table.h"

typedef struct cvm_stage_ctx {
    const cvm_config *cfg;
    const char *cfg_source;          /* job file, for messages */
    const cvm_txn_table *txn;        /* sorted transactions (read-only) */
    const cvm_text_table *products;  /* product master (columns id, name, category,
                                        unit_cost) or NULL */
    cvm_custtab *ct;                 /* one row per customer: add columns here */
    void *models_json;               /* json_t object: add "NAME": {...} */
    const cvm_rundir *rd;            /* cvm_rundir_path(rd, "x.csv") for extra files */
    cvm_log *log;
    int threads;
    uint64_t seed;                   /* job.seed */
    int32_t as_of;                   /* evaluation day (day number) */
} cvm_stage_ctx;

typedef struct cvm_stage {
    const char *name;
    const cvm_cfg_key *schema;       /* the stage's keys, all under "NAME." */
    size_t schema_len;
    /** Cross-key checks before any data is read; NULL when none. */
    int (*check)(const cvm_config *cfg, const char *source, cvm_err *err);
    /** Run when "NAME.enabled" is true. */
    int (*run)(cvm_stage_ctx *ctx, cvm_err *err);
} cvm_stage;

/** @brief The stages in run order, NULL-terminated. */
extern const cvm_stage *const cvm_job_stages[];

#endif
