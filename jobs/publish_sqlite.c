#include "publish_sqlite.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "runcsv.h"
#include "sbuf.h"
#include "textparse.h"

#define NR 1, 0 /* no range */

/* Tables cvm itself adds; a CSV of the same name would clash. */
static const char *const reserved[] = {"run_info", "run_manifest", "run_tables", "run_columns"};

static int sq_fail(sqlite3 *db, const char *path, const char *what, cvm_err *err)
{
    int code = db ? sqlite3_errcode(db) : SQLITE_NOMEM;
    return CVM_FAIL(err, code == SQLITE_NOMEM ? CVM_ENOMEM : CVM_EIO, "%s: %s: %s", path, what,
                    db ? sqlite3_errmsg(db) : "out of memory");
}

static int sq_exec(sqlite3 *db, const char *path, const char *sql, cvm_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
        return CVM_OK;
    int code = sqlite3_errcode(db);
    int rc = CVM_FAIL(err, code == SQLITE_NOMEM ? CVM_ENOMEM : CVM_EIO, "%s: %s (in: %.200s)",
                      path, msg ? msg : sqlite3_errstr(code), sql);
    sqlite3_free(msg);
    return rc;
}

static int sq_prepare(sqlite3 *db, const char *path, const char *sql, sqlite3_stmt **st,
                      cvm_err *err)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK)
        return sq_fail(db, path, "prepare", err);
    return CVM_OK;
}

static int sq_step_done(sqlite3 *db, sqlite3_stmt *st, const char *path, const char *what,
                        cvm_err *err)
{
    int s = sqlite3_step(st);
    sqlite3_reset(st);
    if (s != SQLITE_DONE)
        return sq_fail(db, path, what, err);
    return CVM_OK;
}

/* Canonical decimal integer to int64 (the writer's format); false otherwise. */
static bool parse_i64(const char *s, size_t n, sqlite3_int64 *out)
{
    if (!cvm_runcsv_is_integer(s, n))
        return false;
    size_t i = s[0] == '-';
    sqlite3_int64 v = 0;
    for (; i < n; i++)
        v = v * 10 + (s[i] - '0');
    *out = s[0] == '-' ? -v : v;
    return true;
}

static const char *sql_type(cvm_runcsv_type t)
{
    switch (t) {
    case CVM_RUNCSV_INTEGER: return "INTEGER";
    case CVM_RUNCSV_NUMBER: return "REAL";
    case CVM_RUNCSV_DATE: return "DATE";
    default: return "TEXT";
    }
}

static const char *jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

typedef struct meta {
    sqlite3_stmt *tables;   /* run_tables insert */
    sqlite3_stmt *columns;  /* run_columns insert */
} meta;

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
    if (s && *s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static int load_table(sqlite3 *db, const char *db_path, const char *dir, const char *file,
                      const json_t *summary, meta *m, json_t *tables_out, cvm_err *err)
{
    char table[256];
    cvm_runcsv_table_name(file, table, sizeof table);
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp(table, reserved[i]) == 0)
            return CVM_FAIL(err, CVM_EIO, "%s: %s/%s: table name %s is reserved by cvm", db_path,
                            dir, file, table);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cvm_runcsv r;
    CVM_TRY(cvm_runcsv_open(&r, path, err));
    size_t nc = r.n_cols;
    cvm_runcsv_type *types = cvm_calloc(nc ? nc : 1, sizeof *types);
    const json_t **cmeta = cvm_calloc(nc ? nc : 1, sizeof *cmeta);
    cvm_sbuf sql = {0};
    sqlite3_stmt *ins = NULL;
    int rc = types && cmeta ? CVM_OK : CVM_FAIL(err, CVM_ENOMEM, "out of memory");

    /* The published schema of a file, when the manifest has one. */
    const json_t *cols = json_object_get(json_object_get(json_object_get(summary, "outputs"), file),
                                         "columns");
    if (rc == CVM_OK)
        rc = cvm_runcsv_types(&r, cols, types, (const void **)cmeta, err);

    if (rc == CVM_OK) {
        cvm_sbuf_puts(&sql, "CREATE TABLE ");
        cvm_sbuf_ident(&sql, table);
        cvm_sbuf_puts(&sql, " (");
        for (size_t c = 0; c < nc; c++) {
            if (c)
                cvm_sbuf_puts(&sql, ", ");
            cvm_sbuf_ident(&sql, r.names[c]);
            cvm_sbuf_printf(&sql, " %s", sql_type(types[c]));
        }
        cvm_sbuf_puts(&sql, ")");
        rc = sql.oom ? CVM_FAIL(err, CVM_ENOMEM, "out of memory")
                     : sq_exec(db, db_path, cvm_sbuf_str(&sql), err);
    }
    if (rc == CVM_OK) {
        cvm_sbuf_reset(&sql);
        cvm_sbuf_puts(&sql, "INSERT INTO ");
        cvm_sbuf_ident(&sql, table);
        cvm_sbuf_puts(&sql, " VALUES (");
        for (size_t c = 0; c < nc; c++)
            cvm_sbuf_puts(&sql, c ? ",?" : "?");
        cvm_sbuf_puts(&sql, ")");
        rc = sql.oom ? CVM_FAIL(err, CVM_ENOMEM, "out of memory")
                     : sq_prepare(db, db_path, cvm_sbuf_str(&sql), &ins, err);
    }
    int st = 0;
    while (rc == CVM_OK && (st = cvm_runcsv_next(&r, err)) > 0) {
        for (size_t c = 0; c < nc; c++) {
            const char *s = r.field[c];
            size_t n = r.len[c];
            int k = (int)c + 1;
            sqlite3_int64 iv;
            double dv;
            if (n == 0 && (!r.quoted[c] || types[c] != CVM_RUNCSV_STRING))
                sqlite3_bind_null(ins, k);
            else if (types[c] == CVM_RUNCSV_INTEGER && parse_i64(s, n, &iv))
                sqlite3_bind_int64(ins, k, iv);
            else if (types[c] == CVM_RUNCSV_NUMBER && cvm_parse_double(s, n, &dv))
                sqlite3_bind_double(ins, k, dv);
            else
                /* The record stays mapped until the step below. */
                sqlite3_bind_text(ins, k, s, (int)n, SQLITE_STATIC);
        }
        if (sqlite3_step(ins) != SQLITE_DONE) {
            char what[300];
            snprintf(what, sizeof what, "inserting %s line %llu into %s", file,
                     (unsigned long long)r.line, table);
            rc = sq_fail(db, db_path, what, err);
        }
        sqlite3_reset(ins);
    }
    if (rc == CVM_OK && st < 0)
        rc = st;
    sqlite3_finalize(ins);
    int cust = cvm_runcsv_col(&r, "customer_id");
    if (rc == CVM_OK && cust >= 0) {
        cvm_sbuf_reset(&sql);
        char iname[300];
        snprintf(iname, sizeof iname, "%s_customer_id", table);
        cvm_sbuf_puts(&sql, "CREATE INDEX ");
        cvm_sbuf_ident(&sql, iname);
        cvm_sbuf_puts(&sql, " ON ");
        cvm_sbuf_ident(&sql, table);
        cvm_sbuf_puts(&sql, " (customer_id)");
        rc = sql.oom ? CVM_FAIL(err, CVM_ENOMEM, "out of memory")
                     : sq_exec(db, db_path, cvm_sbuf_str(&sql), err);
    }
    if (rc == CVM_OK) {
        sqlite3_bind_text(m->tables, 1, table, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(m->tables, 2, file, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(m->tables, 3, (sqlite3_int64)r.row);
        sqlite3_bind_int64(m->tables, 4, (sqlite3_int64)nc);
        rc = sq_step_done(db, m->tables, db_path, "run_tables", err);
    }
    for (size_t c = 0; rc == CVM_OK && c < nc; c++) {
        sqlite3_bind_text(m->columns, 1, table, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(m->columns, 2, (sqlite3_int64)c + 1);
        sqlite3_bind_text(m->columns, 3, r.names[c], -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(m->columns, 4, cvm_runcsv_type_name(types[c]), -1, SQLITE_STATIC);
        sqlite3_bind_text(m->columns, 5, sql_type(types[c]), -1, SQLITE_STATIC);
        bind_text_or_null(m->columns, 6, cmeta[c] ? jstr(cmeta[c], "unit") : NULL);
        bind_text_or_null(m->columns, 7, cmeta[c] ? jstr(cmeta[c], "doc") : NULL);
        rc = sq_step_done(db, m->columns, db_path, "run_columns", err);
    }
    if (rc == CVM_OK && tables_out)
        json_object_set_new(tables_out, table, json_integer((json_int_t)r.row));
    cvm_sbuf_free(&sql);
    cvm_free(types);
    cvm_free(cmeta);
    cvm_runcsv_close(&r);
    return rc;
}

static int write_run_info(sqlite3 *db, const char *db_path, const json_t *S,
                          const char *prev_run_id, cvm_err *err)
{
    CVM_TRY(sq_exec(db, db_path,
                    "CREATE TABLE run_info (run_id TEXT, job TEXT, mode TEXT, status TEXT, "
                    "as_of DATE, started_at TEXT, finished_at TEXT, cvm_version TEXT, "
                    "threads INTEGER, customers INTEGER, rows_read INTEGER, rows_rejected INTEGER, "
                    "previous_run TEXT, job_file TEXT)", err));
    sqlite3_stmt *st;
    CVM_TRY(sq_prepare(db, db_path, "INSERT INTO run_info VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       &st, err));
    static const char *const skeys[] = {"run_id", "job", "mode", "status", "as_of",
                                        "started_at", "finished_at", "cvm_version"};
    for (int i = 0; i < 8; i++)
        bind_text_or_null(st, i + 1, jstr(S, skeys[i]));
    const json_t *rows = json_object_get(S, "rows"), *rej = json_object_get(S, "rejects");
    const json_t *iv[4] = {json_object_get(S, "threads"), json_object_get(rows, "customers"),
                           json_object_get(rows, "read"), json_object_get(rej, "total")};
    for (int i = 0; i < 4; i++) {
        if (json_is_integer(iv[i]))
            sqlite3_bind_int64(st, 9 + i, (sqlite3_int64)json_integer_value(iv[i]));
        else
            sqlite3_bind_null(st, 9 + i);
    }
    bind_text_or_null(st, 13, prev_run_id);
    bind_text_or_null(st, 14, jstr(S, "job_file"));
    int rc = sq_step_done(db, st, db_path, "run_info", err);
    sqlite3_finalize(st);
    return rc;
}

static int write_manifest(sqlite3 *db, const char *db_path, const json_t *S, cvm_err *err)
{
    CVM_TRY(sq_exec(db, db_path, "CREATE TABLE run_manifest (key TEXT PRIMARY KEY, value TEXT)",
                    err));
    sqlite3_stmt *st;
    CVM_TRY(sq_prepare(db, db_path, "INSERT INTO run_manifest VALUES (?,?)", &st, err));
    int rc = CVM_OK;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)S, key, v) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        if (text == NULL) {
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
            break;
        }
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, text, -1, SQLITE_TRANSIENT);
        free(text); /* jansson's allocator */
        rc = sq_step_done(db, st, db_path, "run_manifest", err);
        if (rc != CVM_OK)
            break;
    }
    sqlite3_finalize(st);
    return rc;
}

int cvm_sqlite_write_run(const char *run_dir, const char *db_path, const void *summary,
                         const char *prev_run_id, void *tables_out, cvm_err *err)
{
    const json_t *S = summary;
    if (unlink(db_path) != 0 && errno != ENOENT)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot replace: %s", db_path, strerror(errno));
    char **files = NULL;
    size_t nf = 0;
    CVM_TRY(cvm_runcsv_list(run_dir, &files, &nf, err));
    sqlite3 *db = NULL;
    int rc = CVM_OK;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) !=
        SQLITE_OK)
        rc = sq_fail(db, db_path, "cannot create", err);
    /* The file lives in the temporary run directory and is published by the
     * directory rename only when complete, so SQLite's own journal and syncs
     * buy nothing here; the file is fsync'ed once at the end instead. */
    if (rc == CVM_OK)
        rc = sq_exec(db, db_path,
                     "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; "
                     "PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-65536; "
                     "PRAGMA temp_store=MEMORY; BEGIN", err);
    if (rc == CVM_OK)
        rc = write_run_info(db, db_path, S, prev_run_id, err);
    if (rc == CVM_OK)
        rc = write_manifest(db, db_path, S, err);
    if (rc == CVM_OK)
        rc = sq_exec(db, db_path,
                     "CREATE TABLE run_tables (table_name TEXT PRIMARY KEY, file TEXT, "
                     "rows INTEGER, columns INTEGER);"
                     "CREATE TABLE run_columns (table_name TEXT, position INTEGER, "
                     "column_name TEXT, type TEXT, sql_type TEXT, unit TEXT, doc TEXT, "
                     "PRIMARY KEY (table_name, position))", err);
    meta m = {NULL, NULL};
    if (rc == CVM_OK)
        rc = sq_prepare(db, db_path, "INSERT INTO run_tables VALUES (?,?,?,?)", &m.tables, err);
    if (rc == CVM_OK)
        rc = sq_prepare(db, db_path, "INSERT INTO run_columns VALUES (?,?,?,?,?,?,?)",
                        &m.columns, err);
    for (size_t i = 0; rc == CVM_OK && i < nf; i++)
        rc = load_table(db, db_path, run_dir, files[i], S, &m, tables_out, err);
    sqlite3_finalize(m.tables);
    sqlite3_finalize(m.columns);
    if (rc == CVM_OK)
        rc = sq_exec(db, db_path, "COMMIT", err);
    if (db && sqlite3_close(db) != SQLITE_OK && rc == CVM_OK)
        rc = CVM_FAIL(err, CVM_EIO, "%s: cannot close", db_path);
    cvm_runcsv_free_list(files, nf);
    if (rc == CVM_OK) {
        int fd = open(db_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) != 0)
            rc = CVM_FAIL(err, CVM_EIO, "%s: cannot sync: %s", db_path, strerror(errno));
        if (fd >= 0)
            close(fd);
    }
    if (rc != CVM_OK)
        unlink(db_path);
    return rc;
}

/* ------------------------------------------------------------- publisher */

static const cvm_cfg_key sqlite_schema[] = {
    {"output.sqlite", CVM_CFG_BOOL, "true", NR, NULL,
     "Write cvm.sqlite into every run directory: each CSV of the run as a typed table "
     "(indexed on customer_id), plus run_info, run_manifest, run_tables and run_columns "
     "(docs/outputs.md)."},
};

static int sqlite_run(cvm_publish_ctx *ctx, cvm_err *err)
{
    if (!cvm_config_bool(ctx->cfg, "output.sqlite"))
        return CVM_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/cvm.sqlite", ctx->run_dir);
    const char *prev = NULL;
    if (ctx->prev_run_dir) {
        prev = strrchr(ctx->prev_run_dir, '/');
        prev = prev ? prev + 1 : ctx->prev_run_dir;
    }
    json_t *tables = json_object();
    if (tables == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    int rc = cvm_sqlite_write_run(ctx->run_dir, path, ctx->summary, prev, tables, err);
    if (rc != CVM_OK) {
        json_decref(tables);
        return rc;
    }
    struct stat st;
    json_t *o = json_object();
    json_object_set_new(o, "bytes", json_integer(stat(path, &st) == 0 ? (json_int_t)st.st_size : 0));
    json_object_set_new(o, "tables", tables);
    json_t *outputs = json_object_get(ctx->summary, "outputs");
    if (outputs)
        json_object_set_new(outputs, "cvm.sqlite", o);
    else
        json_decref(o);
    return CVM_OK;
}

const cvm_publisher cvm_publisher_sqlite = {
    "sqlite", sqlite_schema, sizeof sqlite_schema / sizeof sqlite_schema[0], NULL, sqlite_run,
    "output.sqlite",
};
