/*
 * publish.h - run directories and writers for the outputs.
 *
 * A run writes everything into OUT/.tmp-RUNID/, and only when every file is
 * complete (and fsync'ed) renames it to OUT/RUNID and then atomically
 * re-points the OUT/latest symlink. A failed or killed run leaves at most a
 * .tmp-* directory, never a half-written run or a moved `latest`; earlier
 * runs are never touched.
 *
 *     cvm_rundir rd;
 *     cvm_rundir_begin("out", "nightly", &rd, &err);
 *     char *p = cvm_rundir_path(&rd, "segments.csv");  ... write ... free(p)
 *     cvm_rundir_commit(&rd, &err);   // or cvm_rundir_abort(&rd)
 *     cvm_rundir_clear(&rd);
 */
#ifndef CVM_PUBLISH_H
#define CVM_PUBLISH_H

#include <stdbool.h>
#include <stdio.h>

#include "error.h"
#include "rejects.h"
#include "table.h"

typedef struct cvm_rundir {
    char *out_dir;
    char *run_id;
    char *tmp_path;
    char *final_path;
    bool committed;
    bool keep_latest;   /* set before commit: do not move `latest` (validation runs) */
} cvm_rundir;

int cvm_rundir_begin(const char *out_dir, const char *job_name, cvm_rundir *rd, cvm_err *err);
/** @brief malloc'd path of a file inside the (temporary) run directory. */
char *cvm_rundir_path(const cvm_rundir *rd, const char *name);
/** @brief Create file `name` in the run directory for writing (64 KiB
 *  buffer); *path receives its malloc'd path for messages and
 *  cvm_publish_close. NULL (and *path NULL) on error, with err set. */
FILE *cvm_rundir_create(const cvm_rundir *rd, const char *name, char **path, cvm_err *err);
int cvm_rundir_commit(cvm_rundir *rd, cvm_err *err);
/** @brief Remove the temporary directory of an uncommitted run. */
void cvm_rundir_abort(cvm_rundir *rd);
void cvm_rundir_clear(cvm_rundir *rd);

/**
 * @brief Take OUT/.lock-JOB for the whole run (flock, released by the kernel
 * even if the process is killed). CVM_EBUSY with the holder's pid and start
 * time when another run of the same job is in progress.
 */
int cvm_rundir_lock(const char *out_dir, const char *job_name, int *fd, cvm_err *err);
void cvm_rundir_unlock(int fd);
/**
 * @brief Under the lock: remove temporary directories that killed runs of
 * this job left behind, and keep only the newest `keep` published runs (and
 * `keep` failed-* directories) of the job; the run `latest` points to is
 * never removed. keep = 0 keeps everything. Returns the number removed.
 */
size_t cvm_rundir_retain(const char *out_dir, const char *job_name, size_t keep);

/** @brief Write a CSV field with RFC 4180 quoting only when needed. */
void cvm_csv_put(FILE *f, const char *s, size_t len);
/** @brief Every column of ct, header first, in column order. */
int cvm_publish_custtab_csv(const cvm_custtab *ct, const char *path, cvm_err *err);
/** @brief rejects.csv: file,line,column,field,reason,detail,raw. */
int cvm_publish_rejects_csv(const cvm_rejects *r, const char *path, cvm_err *err);
/** @brief Write a jansson value (json_t *) pretty-printed to path. */
int cvm_publish_json(const void *json, const char *path, cvm_err *err);
/** @brief Close f after fflush + fsync; CVM_EIO naming path on failure. */
int cvm_publish_close(FILE *f, const char *path, cvm_err *err);

#endif
