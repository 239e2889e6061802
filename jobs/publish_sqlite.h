/*
 * publish_sqlite.h - cvm.sqlite: every CSV of a run directory as a typed
 * SQLite table, plus run_info, run_manifest, run_tables and run_columns
 * (docs/outputs.md#cvmsqlite), written in one transaction with prepared
 * statements, so a BI tool can open the file as it is.
 *
 *     json_t *tables = json_object();
 *     cvm_sqlite_write_run("out/.tmp-nightly-...", "out/.tmp-nightly-.../cvm.sqlite",
 *                          summary, "nightly-20241130T023000Z", tables, &err);
 *
 * Column types of segments.csv come from summary.json's
 * outputs["segments.csv"].columns (integer -> INTEGER, number -> REAL,
 * string -> TEXT, date -> DATE holding ISO text); other files' types are
 * inferred from their values (runcsv.h). Empty fields are NULL.
 *
 * The publisher "sqlite" (key output.sqlite) calls it for every run. SQLite
 * allocates through its own allocator, not cvm_malloc. Not thread-safe: one
 * call at a time per database file.
 */
#ifndef CVM_PUBLISH_SQLITE_H
#define CVM_PUBLISH_SQLITE_H

#include "error.h"
#include "publisher.h"

/**
 * @brief Write db_path (replaced if it exists) from the *.csv files of run_dir.
 * @param summary      json_t object of the run's manifest (borrowed), or NULL
 * @param prev_run_id  name of the previous run, recorded in run_info, or NULL
 * @param tables_out   json_t object (borrowed) that receives table -> rows, or NULL
 * @return CVM_OK, CVM_EIO (SQLite or file error, naming the table),
 *         CVM_EDATA (a malformed CSV, naming file:line), CVM_ENOMEM.
 */
int cvm_sqlite_write_run(const char *run_dir, const char *db_path, const void *summary,
                         const char *prev_run_id, void *tables_out, cvm_err *err);

extern const cvm_publisher cvm_publisher_sqlite;

#endif
