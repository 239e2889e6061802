#include "publish_postgres.h"

#include <ctype.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "runcsv.h"
#include "sbuf.h"

#define NR 1, 0 /* no range */
#define COPY_CHUNK (1u << 20)

typedef struct pg {
    PGconn *c;
    cvm_log *log;
    const char *schema;
} pg;

/* The server's words, on one line: primary message, detail, context. */
static int pg_fail(pg *P, const char *what, const PGresult *res, cvm_err *err)
{
    cvm_sbuf m = {0};
    const char *prim = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (prim) {
        cvm_sbuf_puts(&m, prim);
        const char *det = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
        const char *ctx = PQresultErrorField(res, PG_DIAG_CONTEXT);
        /* A failing row's detail quotes the whole row: the start is enough. */
        if (det)
            cvm_sbuf_printf(&m, " (%.160s%s)", det, strlen(det) > 160 ? "..." : "");
        if (ctx)
            cvm_sbuf_printf(&m, " [%.160s%s]", ctx, strlen(ctx) > 160 ? "..." : "");
    } else {
        cvm_sbuf_puts(&m, res ? PQresultErrorMessage(res) : PQerrorMessage(P->c));
    }
    char *s = m.s ? m.s : "";
    for (char *q = s; *q; q++)
        if (*q == '\n' || *q == '\r')
            *q = ' ';
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        s[--n] = '\0';
    int rc = CVM_FAIL(err, CVM_EIO, "output.postgres: %s: %s", what, *s ? s : "unknown error");
    cvm_sbuf_free(&m);
    return rc;
}

static int pg_cmd(pg *P, const char *sql, const char *what, cvm_err *err)
{
    PGresult *r = PQexec(P->c, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? CVM_OK : pg_fail(P, what, r, err);
    PQclear(r);
    return rc;
}

/* A statement with text parameters; *out gets the result when it has rows. */
static int pg_params(pg *P, const char *sql, int n, const char *const *vals, const char *what,
                     PGresult **out, cvm_err *err)
{
    PGresult *r = PQexecParams(P->c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        int rc = pg_fail(P, what, r, err);
        PQclear(r);
        return rc;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return CVM_OK;
}

static int sql_run(pg *P, cvm_sbuf *b, const char *what, cvm_err *err)
{
    if (b->oom)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    int rc = pg_cmd(P, cvm_sbuf_str(b), what, err);
    cvm_sbuf_reset(b);
    return rc;
}

static void qualified(cvm_sbuf *b, const char *schema, const char *name)
{
    cvm_sbuf_ident(b, schema);
    cvm_sbuf_puts(b, ".");
    cvm_sbuf_ident(b, name);
}

static const char *pg_type(cvm_runcsv_type t)
{
    switch (t) {
    case CVM_RUNCSV_INTEGER: return "bigint";
    case CVM_RUNCSV_NUMBER: return "double precision";
    case CVM_RUNCSV_DATE: return "date";
    default: return "text";
    }
}

static int type_rank(const char *t)
{
    static const char *const order[] = {"bigint", "double precision", "date", "text"};
    for (int i = 0; i < 4; i++)
        if (strcmp(t, order[i]) == 0)
            return i;
    return -1;
}

/* The type a column must have to hold both what it has and tonight's values:
 * integers widen to double precision, anything else mixed widens to text. A
 * type cvm does not make (set by hand) is left alone; COPY then decides. */
static const char *merge_type(const char *have, const char *want)
{
    int h = type_rank(have), w = type_rank(want);
    if (h < 0 || h == w)
        return have;
    if ((h == 0 && w == 1) || (h == 1 && w == 0))
        return "double precision";
    return "text";
}

static void notice(void *arg, const char *message)
{
    pg *P = arg;
    if (P->log == NULL)
        return;
    size_t n = strlen(message);
    while (n > 0 && (message[n - 1] == '\n' || message[n - 1] == ' '))
        n--;
    cvm_log_msg(P->log, CVM_LOG_DEBUG, "postgres: %.*s", (int)n, message);
}

/* Streams the file's records, each prefixed with the run id, through COPY. */
static int copy_rows(pg *P, cvm_runcsv *r, const char *table, const char *run_id,
                     unsigned long long *rows, cvm_err *err)
{
    cvm_sbuf buf = {0}, prefix = {0};
    cvm_sbuf_puts(&prefix, "\"");
    for (const char *s = run_id; *s; s++)
        cvm_sbuf_put(&prefix, *s == '"' ? "\"\"" : s, *s == '"' ? 2 : 1); /* CSV doubles quotes */
    cvm_sbuf_puts(&prefix, "\",");
    int rc = prefix.oom ? CVM_FAIL(err, CVM_ENOMEM, "out of memory") : CVM_OK;
    int st = 0;
    bool broken = false;
    char what[300];
    snprintf(what, sizeof what, "COPY into %s.%s", P->schema, table);
    while (rc == CVM_OK && (st = cvm_runcsv_next(r, err)) > 0) {
        cvm_sbuf_put(&buf, prefix.s, prefix.len);
        cvm_sbuf_put(&buf, r->raw, r->raw_len);
        cvm_sbuf_put(&buf, "\n", 1);
        if (buf.oom)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        else if (buf.len >= COPY_CHUNK) {
            if (PQputCopyData(P->c, buf.s, (int)buf.len) != 1)
                broken = true;
            cvm_sbuf_reset(&buf);
        }
        if (broken)
            break;
    }
    if (rc == CVM_OK && st < 0)
        rc = st;
    if (rc == CVM_OK && !broken && buf.len > 0 && PQputCopyData(P->c, buf.s, (int)buf.len) != 1)
        broken = true;
    /* A COPY is ended in every case, or the connection stays in COPY state;
     * ending it with a message makes the server fail (and roll back) it. */
    PQputCopyEnd(P->c, rc == CVM_OK ? NULL : "cvm stopped the load");
    PGresult *res;
    bool first = true;
    while ((res = PQgetResult(P->c)) != NULL) {
        if (first && rc == CVM_OK) {
            if (PQresultStatus(res) != PGRES_COMMAND_OK)
                rc = pg_fail(P, what, res, err);
            else
                *rows = strtoull(PQcmdTuples(res), NULL, 10);
        }
        first = false;
        PQclear(res);
    }
    if (rc == CVM_OK && broken)
        rc = pg_fail(P, what, NULL, err);
    cvm_sbuf_free(&buf);
    cvm_sbuf_free(&prefix);
    return rc;
}

static int load_table(pg *P, const char *dir, const char *file, const char *run_id,
                      const json_t *summary, json_t *tables, cvm_err *err)
{
    char table[256];
    cvm_runcsv_table_name(file, table, sizeof table);
    if (strcmp(table, "runs") == 0 || strlen(table) > 56)
        return CVM_FAIL(err, CVM_EIO, "output.postgres: %s/%s: cannot be loaded as table %s (name "
                        "reserved or longer than 56 bytes)", dir, file, table);
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    cvm_runcsv r;
    CVM_TRY(cvm_runcsv_open(&r, path, err));
    size_t nc = r.n_cols;
    cvm_runcsv_type *types = cvm_calloc(nc ? nc : 1, sizeof *types);
    int rc = types ? CVM_OK : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    const json_t *cols = json_object_get(json_object_get(json_object_get(summary, "outputs"), file),
                                         "columns");
    if (rc == CVM_OK)
        rc = cvm_runcsv_types(&r, cols, types, NULL, err);
    for (size_t c = 0; rc == CVM_OK && c < nc; c++)
        if (strcmp(r.names[c], "run_id") == 0 || r.names[c][0] == '\0')
            rc = CVM_FAIL(err, CVM_EIO, "output.postgres: %s: column %zu is named '%s', which "
                          "cannot be loaded", path, c + 1, r.names[c]);

    cvm_sbuf q = {0};
    PGresult *have = NULL;
    char what[400];
    snprintf(what, sizeof what, "preparing table %s.%s", P->schema, table);
    if (rc == CVM_OK) {
        const char *v[2] = {P->schema, table};
        rc = pg_params(P, "SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
                       2, v, what, &have, err);
    }
    int nh = have ? PQntuples(have) : 0;
    if (rc == CVM_OK && nh == 0) {
        cvm_sbuf_puts(&q, "CREATE TABLE ");
        qualified(&q, P->schema, table);
        cvm_sbuf_puts(&q, " (run_id text NOT NULL");
        for (size_t c = 0; c < nc; c++) {
            cvm_sbuf_puts(&q, ", ");
            cvm_sbuf_ident(&q, r.names[c]);
            cvm_sbuf_printf(&q, " %s", pg_type(types[c]));
        }
        cvm_sbuf_puts(&q, "); CREATE INDEX ON ");
        qualified(&q, P->schema, table);
        cvm_sbuf_puts(&q, cvm_runcsv_col(&r, "customer_id") >= 0 ? " (run_id, customer_id)"
                                                                  : " (run_id)");
        rc = sql_run(P, &q, what, err);
    } else if (rc == CVM_OK) {
        bool has_run_id = false;
        for (int i = 0; i < nh; i++)
            has_run_id |= strcmp(PQgetvalue(have, i, 0), "run_id") == 0;
        if (!has_run_id)
            rc = CVM_FAIL(err, CVM_EIO, "output.postgres: table %s.%s is in the way: it exists "
                          "without a run_id column, so cvm did not make it", P->schema, table);
        /* Tonight's file may have new columns (a stage switched on) or values
         * of a wider type: the table grows, older runs' rows get NULLs. */
        for (size_t c = 0; rc == CVM_OK && c < nc; c++) {
            int i = 0;
            while (i < nh && strcmp(PQgetvalue(have, i, 0), r.names[c]) != 0)
                i++;
            cvm_sbuf_puts(&q, "ALTER TABLE ");
            qualified(&q, P->schema, table);
            if (i == nh) {
                cvm_sbuf_puts(&q, " ADD COLUMN ");
                cvm_sbuf_ident(&q, r.names[c]);
                cvm_sbuf_printf(&q, " %s", pg_type(types[c]));
            } else {
                const char *old = PQgetvalue(have, i, 1);
                const char *t = merge_type(old, pg_type(types[c]));
                if (strcmp(t, old) == 0) {
                    cvm_sbuf_reset(&q);
                    continue;
                }
                cvm_sbuf_puts(&q, " ALTER COLUMN ");
                cvm_sbuf_ident(&q, r.names[c]);
                cvm_sbuf_printf(&q, " TYPE %s USING ", t);
                cvm_sbuf_ident(&q, r.names[c]);
                cvm_sbuf_printf(&q, "::%s", t);
            }
            rc = sql_run(P, &q, what, err);
        }
    }
    PQclear(have);
    if (rc == CVM_OK) {
        /* The comment marks the table as cvm's: it gets a latest_ view and
         * is pruned by keep_runs, also when it was made by hand. */
        cvm_sbuf_puts(&q, "COMMENT ON TABLE ");
        qualified(&q, P->schema, table);
        cvm_sbuf_puts(&q, " IS ");
        char comment[300];
        snprintf(comment, sizeof comment, "cvm: %s of every run loaded (run_id)", file);
        cvm_sbuf_literal(&q, comment);
        rc = sql_run(P, &q, what, err);
    }
    if (rc == CVM_OK) {
        /* Loading a run twice replaces its rows. */
        cvm_sbuf_puts(&q, "DELETE FROM ");
        qualified(&q, P->schema, table);
        cvm_sbuf_puts(&q, " WHERE run_id = $1");
        const char *v[1] = {run_id};
        rc = q.oom ? CVM_FAIL(err, CVM_ENOMEM, "out of memory")
                   : pg_params(P, cvm_sbuf_str(&q), 1, v, what, NULL, err);
        cvm_sbuf_reset(&q);
    }
    if (rc == CVM_OK) {
        cvm_sbuf_puts(&q, "COPY ");
        qualified(&q, P->schema, table);
        cvm_sbuf_puts(&q, " (run_id");
        for (size_t c = 0; c < nc; c++) {
            cvm_sbuf_puts(&q, ", ");
            cvm_sbuf_ident(&q, r.names[c]);
        }
        cvm_sbuf_puts(&q, ") FROM STDIN WITH (FORMAT csv)");
        PGresult *res = q.oom ? NULL : PQexec(P->c, cvm_sbuf_str(&q));
        if (q.oom)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        else if (PQresultStatus(res) != PGRES_COPY_IN)
            rc = pg_fail(P, what, res, err);
        PQclear(res);
        unsigned long long rows = 0;
        if (rc == CVM_OK)
            rc = copy_rows(P, &r, table, run_id, &rows, err);
        if (rc == CVM_OK && rows != r.row)
            rc = CVM_FAIL(err, CVM_EIO, "output.postgres: %s.%s: the server took %llu rows of %llu",
                          P->schema, table, rows, (unsigned long long)r.row);
        if (rc == CVM_OK && tables)
            json_object_set_new(tables, table, json_integer((json_int_t)rows));
    }
    cvm_sbuf_free(&q);
    cvm_free(types);
    cvm_runcsv_close(&r);
    return rc;
}

/* Names of the schema's relations of a kind that cvm made (their comment
 * starts with "cvm:"), so that hand-made tables and views are never touched. */
static int cvm_relations(pg *P, const char *kind, PGresult **out, cvm_err *err)
{
    const char *v[2] = {P->schema, kind};
    return pg_params(P, "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = "
                        "c.relnamespace WHERE n.nspname = $1 AND c.relkind = $2 AND "
                        "obj_description(c.oid, 'pg_class') LIKE 'cvm:%' ORDER BY c.relname",
                     2, v, "listing cvm's relations", out, err);
}

static int load(pg *P, const cvm_pg_params *p, const char *run_dir, const char *run_id,
                const json_t *S, json_t *report, cvm_err *err)
{
    cvm_sbuf q = {0};
    json_t *tables = json_object(), *vlist = json_array();
    PGresult *views = NULL, *rel = NULL;
    char **files = NULL;
    size_t nf = 0;
    int rc = tables && vlist ? CVM_OK : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    if (rc == CVM_OK)
        rc = pg_cmd(P, "BEGIN; SET LOCAL client_min_messages = warning", "BEGIN", err);
    char lock[300];
    snprintf(lock, sizeof lock, "cvm:%s", p->schema);
    const char *lv[1] = {lock};
    if (rc == CVM_OK)
        rc = pg_params(P, "SELECT pg_advisory_xact_lock(hashtext($1))", 1, lv,
                       "waiting for another load into the schema", NULL, err);
    cvm_sbuf_puts(&q, "CREATE SCHEMA IF NOT EXISTS ");
    cvm_sbuf_ident(&q, p->schema);
    cvm_sbuf_puts(&q, "; CREATE TABLE IF NOT EXISTS ");
    qualified(&q, p->schema, "runs");
    cvm_sbuf_puts(&q, " (run_id text PRIMARY KEY, job text, as_of date, started_at timestamptz, "
                      "finished_at timestamptz, loaded_at timestamptz NOT NULL DEFAULT now(), "
                      "tables jsonb, summary jsonb); COMMENT ON TABLE ");
    qualified(&q, p->schema, "runs");
    cvm_sbuf_puts(&q, " IS 'cvm: one row per run loaded'");
    if (rc == CVM_OK)
        rc = sql_run(P, &q, "creating the schema", err);
    cvm_sbuf_reset(&q);

    /* The views go first: a column cannot change type under a view, and
     * they are re-created below, inside the same transaction. */
    if (rc == CVM_OK)
        rc = cvm_relations(P, "v", &views, err);
    for (int i = 0; rc == CVM_OK && i < PQntuples(views); i++) {
        cvm_sbuf_puts(&q, "DROP VIEW ");
        qualified(&q, p->schema, PQgetvalue(views, i, 0));
        rc = sql_run(P, &q, "dropping the latest_* views (a view of yours depends on them?)", err);
    }
    if (rc == CVM_OK)
        rc = cvm_runcsv_list(run_dir, &files, &nf, err);

    for (size_t i = 0; rc == CVM_OK && i < nf; i++)
        rc = load_table(P, run_dir, files[i], run_id, S, tables, err);

    if (rc == CVM_OK) {
        char *tj = json_dumps(tables, JSON_COMPACT);
        char *sj = S ? json_dumps(S, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
        const char *job = json_string_value(json_object_get(S, "job"));
        const char *as_of = json_string_value(json_object_get(S, "as_of"));
        const char *st = json_string_value(json_object_get(S, "started_at"));
        const char *fin = json_string_value(json_object_get(S, "finished_at"));
        const char *v[7] = {run_id, job, as_of, st, fin, tj, sj};
        cvm_sbuf_puts(&q, "DELETE FROM ");
        qualified(&q, p->schema, "runs");
        cvm_sbuf_puts(&q, " WHERE run_id = $1");
        rc = q.oom ? CVM_FAIL(err, CVM_ENOMEM, "out of memory")
                   : pg_params(P, cvm_sbuf_str(&q), 1, v, "recording the run", NULL, err);
        cvm_sbuf_reset(&q);
        cvm_sbuf_puts(&q, "INSERT INTO ");
        qualified(&q, p->schema, "runs");
        cvm_sbuf_puts(&q, " (run_id, job, as_of, started_at, finished_at, tables, summary) VALUES "
                          "($1, $2, $3::date, $4::timestamptz, $5::timestamptz, $6::jsonb, $7::jsonb)");
        if (rc == CVM_OK)
            rc = tj == NULL ? CVM_FAIL(err, CVM_ENOMEM, "out of memory")
                            : pg_params(P, cvm_sbuf_str(&q), 7, v, "recording the run", NULL, err);
        cvm_sbuf_reset(&q);
        free(tj); /* jansson's allocator */
        free(sj);
    }

    if (rc == CVM_OK)
        rc = cvm_relations(P, "r", &rel, err);
    int nrel = rel ? PQntuples(rel) : 0;
    if (rc == CVM_OK && p->keep_runs > 0) {
        char keep[32];
        snprintf(keep, sizeof keep, "%ld", p->keep_runs);
        for (int i = 0; rc == CVM_OK && i <= nrel; i++) {
            /* The runs table last: the others' deletes read it. */
            const char *t = i < nrel ? PQgetvalue(rel, i, 0) : "runs";
            if (i < nrel && strcmp(t, "runs") == 0)
                continue;
            cvm_sbuf_puts(&q, "DELETE FROM ");
            qualified(&q, p->schema, t);
            cvm_sbuf_puts(&q, " WHERE run_id NOT IN (SELECT run_id FROM ");
            qualified(&q, p->schema, "runs");
            cvm_sbuf_puts(&q, " ORDER BY loaded_at DESC, run_id DESC LIMIT $1::bigint)");
            const char *v[1] = {keep};
            rc = q.oom ? CVM_FAIL(err, CVM_ENOMEM, "out of memory")
                       : pg_params(P, cvm_sbuf_str(&q), 1, v, "pruning old runs", NULL, err);
            cvm_sbuf_reset(&q);
        }
    }
    for (int i = 0; rc == CVM_OK && i <= nrel; i++) {
        /* Every table cvm made gets its view, also those the run did not
         * write tonight (a stage switched off): they show no rows, not an
         * older night's rows that would look current. */
        const char *t = i < nrel ? PQgetvalue(rel, i, 0) : "runs";
        if (i < nrel && strcmp(t, "runs") == 0)
            continue;
        char vname[300];
        snprintf(vname, sizeof vname, "latest_%s", i < nrel ? t : "run");
        cvm_sbuf_puts(&q, "CREATE VIEW ");
        qualified(&q, p->schema, vname);
        cvm_sbuf_puts(&q, " AS SELECT * FROM ");
        qualified(&q, p->schema, t);
        cvm_sbuf_puts(&q, " WHERE run_id = ");
        cvm_sbuf_literal(&q, run_id);
        cvm_sbuf_puts(&q, "; COMMENT ON VIEW ");
        qualified(&q, p->schema, vname);
        cvm_sbuf_puts(&q, " IS 'cvm: rows of the newest run loaded'");
        rc = sql_run(P, &q, "creating the latest_* views", err);
        json_array_append_new(vlist, json_string(vname));
    }
    if (rc == CVM_OK)
        rc = pg_cmd(P, "COMMIT", "COMMIT", err);
    if (rc == CVM_OK && report) {
        json_object_set_new(report, "schema", json_string(p->schema));
        json_object_set_new(report, "run_id", json_string(run_id));
        json_object_set_new(report, "tables", json_incref(tables));
        json_object_set_new(report, "views", json_incref(vlist));
        json_object_set_new(report, "keep_runs", json_integer(p->keep_runs));
    }
    PQclear(views);
    PQclear(rel);
    cvm_runcsv_free_list(files, nf);
    json_decref(tables);
    json_decref(vlist);
    cvm_sbuf_free(&q);
    return rc;
}

int cvm_pg_load_run(const cvm_pg_params *p, const char *run_dir, const char *run_id,
                    const void *summary, void *report_out, cvm_log *log, cvm_err *err)
{
    pg P = {NULL, log, p->schema};
    /* dbname with expand_dbname takes a whole connection string or URI. */
    const char *const kw[] = {"dbname", "application_name", NULL};
    const char *const val[] = {p->conninfo, "cvm", NULL};
    P.c = PQconnectdbParams(kw, val, 1);
    if (P.c == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory connecting to PostgreSQL");
    if (PQstatus(P.c) != CONNECTION_OK) {
        cvm_sbuf m = {0};
        cvm_sbuf_puts(&m, PQerrorMessage(P.c));
        for (char *s = m.s; s && *s; s++)
            if (*s == '\n')
                *s = ' ';
        int rc = CVM_FAIL(err, CVM_EIO, "output.postgres: cannot connect to database '%s': %s",
                          PQdb(P.c) ? PQdb(P.c) : "", m.s ? m.s : "");
        cvm_sbuf_free(&m);
        PQfinish(P.c);
        return rc;
    }
    PQsetNoticeProcessor(P.c, notice, &P);
    int rc = load(&P, p, run_dir, run_id, summary, report_out, err);
    if (rc != CVM_OK && PQtransactionStatus(P.c) != PQTRANS_IDLE) {
        PGresult *r = PQexec(P.c, "ROLLBACK");
        PQclear(r);
    }
    PQfinish(P.c);
    return rc;
}

/* ------------------------------------------------------------- publisher */

static const cvm_cfg_key pg_schema[] = {
    {"output.postgres.enabled", CVM_CFG_BOOL, "false", NR, NULL,
     "Load every table of each run into PostgreSQL (COPY, one transaction) and point the "
     "latest_* views at it. A failed load fails the run (exit code 4) and leaves the views as "
     "they were (docs/operations.md#postgresql)."},
    {"output.postgres.conninfo", CVM_CFG_STRING, "", NR, NULL,
     "libpq connection string or URI, e.g. \"host=/run/postgresql dbname=bi user=cvm\"; empty = "
     "the PG* environment variables. No password here (summary.json records the config): use "
     "~/.pgpass or PGPASSFILE."},
    {"output.postgres.schema", CVM_CFG_STRING, "cvm", NR, NULL,
     "Schema that receives the tables, the runs table and the latest_* views; created when "
     "missing. One schema per job."},
    {"output.postgres.keep_runs", CVM_CFG_INT, "0", 0, 100000, NULL,
     "Keep only this many newest runs in the tables (deleted in the same transaction); 0 = keep "
     "every run."},
};

static bool plain_identifier(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_') || (unsigned char)s[i] > 127)
            return false;
    return true;
}

static int pg_check(const cvm_config *cfg, const char *source, cvm_err *err)
{
    const char *schema = cvm_config_str(cfg, "output.postgres.schema");
    if (!plain_identifier(schema))
        return CVM_FAIL(err, CVM_ECONFIG, "%s: output.postgres.schema must be a plain identifier "
                        "(letters, digits, _; not starting with a digit), got '%s'", source,
                        schema);
    const char *ci = cvm_config_str(cfg, "output.postgres.conninfo");
    if (*ci == '\0')
        return CVM_OK;
    char *msg = NULL;
    PQconninfoOption *opts = PQconninfoParse(ci, &msg);
    if (opts == NULL) {
        size_t n = msg ? strlen(msg) : 0;
        while (n > 0 && msg[n - 1] == '\n')
            n--;
        int rc = CVM_FAIL(err, CVM_ECONFIG, "%s: output.postgres.conninfo: %.*s", source, (int)n,
                          msg ? msg : "not a connection string");
        PQfreemem(msg);
        return rc;
    }
    bool password = false;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val && *o->val)
            password = true;
    PQconninfoFree(opts);
    if (password)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: output.postgres.conninfo must not contain a "
                        "password (summary.json records the configuration): put it in ~/.pgpass "
                        "or the file PGPASSFILE names", source);
    return CVM_OK;
}

static int pg_run(cvm_publish_ctx *ctx, cvm_err *err)
{
    if (!cvm_config_bool(ctx->cfg, "output.postgres.enabled"))
        return CVM_OK;
    cvm_pg_params p = {cvm_config_str(ctx->cfg, "output.postgres.conninfo"),
                       cvm_config_str(ctx->cfg, "output.postgres.schema"),
                       cvm_config_int(ctx->cfg, "output.postgres.keep_runs")};
    json_t *report = json_object();
    if (report == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    int rc = cvm_pg_load_run(&p, ctx->run_dir, ctx->run_id, ctx->summary, report, ctx->log, err);
    if (rc != CVM_OK) {
        json_decref(report);
        char msg[CVM_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return CVM_FAIL(err, rc, "%s; nothing was loaded and the latest_* views still show "
                        "the previous run", msg);
    }
    cvm_log_msg(ctx->log, CVM_LOG_INFO, "postgres: loaded %zu tables into schema %s",
                json_object_size(json_object_get(report, "tables")), p.schema);
    json_object_set_new(ctx->summary, "postgres", report);
    return CVM_OK;
}

const cvm_publisher cvm_publisher_postgres = {
    "postgres", pg_schema, sizeof pg_schema / sizeof pg_schema[0], pg_check, pg_run,
    "output.postgres.enabled",
};
