/*
 * publish_postgres.h - load a run into PostgreSQL (libpq COPY), all or
 * nothing.
 *
 * Every CSV of the run directory goes into a table of the same name in one
 * schema, with a leading run_id column, so the tables keep every run loaded;
 * the schema's `runs` table lists the runs, and the views latest_<table>
 * (plus latest_run) show the newest. Everything happens in ONE transaction:
 * schema and tables created or widened, this run's rows (re)loaded, old runs
 * pruned (keep_runs), views re-pointed, commit. A failure anywhere rolls it
 * all back, so readers keep seeing the previous run. Operations:
 * docs/operations.md#postgresql.
 *
 *     cvm_pg_params p = {"host=/run/postgresql dbname=bi", "cvm", 0};
 *     json_t *report = json_object();
 *     if (cvm_pg_load_run(&p, "out/.tmp-nightly-...", "nightly-20241201T023000Z",
 *                         summary, report, log, &err) != CVM_OK) ... err.msg ...
 *
 * The publisher "postgres" (output.postgres.*) calls it when enabled, as the
 * last publisher. libpq allocates through its own allocator. Not
 * thread-safe; one load at a time per schema (a transaction-scoped advisory
 * lock makes concurrent loads wait for each other).
 */
#ifndef CVM_PUBLISH_POSTGRES_H
#define CVM_PUBLISH_POSTGRES_H

#include "error.h"
#include "log.h"
#include "publisher.h"

typedef struct cvm_pg_params {
    const char *conninfo;  /* libpq connection string or URI; "" = the PG* environment */
    const char *schema;    /* a plain identifier: [A-Za-z_][A-Za-z0-9_]* */
    long keep_runs;        /* > 0: delete all but the newest keep_runs runs */
} cvm_pg_params;

/**
 * @brief Load every *.csv of run_dir under run_id (replacing an earlier load
 * of the same run_id).
 * @param summary     json_t manifest (borrowed): column types of segments.csv,
 *                    stored in runs.summary; may be NULL
 * @param report_out  json_t object (borrowed) receiving schema, tables
 *                    (table -> rows) and views, or NULL
 * @param log         receives the server's notices at debug level; may be NULL
 * @return CVM_OK; CVM_EIO when the server refuses the connection or any
 *         statement (err names the table and quotes the server); CVM_EDATA
 *         for a malformed CSV; CVM_ENOMEM.
 */
int cvm_pg_load_run(const cvm_pg_params *p, const char *run_dir, const char *run_id,
                    const void *summary, void *report_out, cvm_log *log, cvm_err *err);

extern const cvm_publisher cvm_publisher_postgres;

#endif
