/* cvm.sqlite: every table against the CSV file it came from (cell by cell,
 * with an independent CSV reader), the typed columns, the run tables, and
 * the type inference and error paths on crafted files. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csvtest.h"
#include "publish_sqlite.h"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = cvm_test_mkdtemp("sqlite");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cvm_test_rmtree(tmp);
    free(tmp);
    return 0;
}

/* Runs the sample job; returns the published run directory (malloc'd). */
static char *run_job(const char *out, const char *extra)
{
    char *so = cvm_test_path(tmp, "stdout"), *se = cvm_test_path(tmp, "stderr");
    int st = cvm_test_system("cd '%s' && '%s' run jobs/nightly.yaml --out '%s' --quiet %s >'%s' 2>'%s'",
                             cvm_test_source_dir(), cvm_test_binary(), out, extra, so, se);
    if (st != 0) {
        char *e = cvm_test_read_file(se, NULL);
        print_error("cvm run failed (%d): %s\n", st, e ? e : "");
        free(e);
    }
    assert_int_equal(st, 0);
    char *dir = cvm_test_read_file(so, NULL);
    assert_non_null(dir);
    dir[strcspn(dir, "\n")] = '\0';
    free(so);
    free(se);
    return dir;
}

static json_t *load_summary(const char *dir)
{
    char *p = cvm_test_path(dir, "summary.json");
    json_error_t je;
    json_t *S = json_load_file(p, 0, &je);
    if (S == NULL)
        print_error("%s: %s\n", p, je.text);
    assert_non_null(S);
    free(p);
    return S;
}

static sqlite3 *open_db(const char *dir)
{
    char *p = cvm_test_path(dir, "cvm.sqlite");
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(p, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    free(p);
    return db;
}

static long long scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static char *text1(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        print_error("%s: %s\n", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    const unsigned char *t = sqlite3_column_text(st, 0);
    char *r = t ? strdup((const char *)t) : NULL;
    sqlite3_finalize(st);
    return r;
}

/* Expected storage of each column: 'i' integer, 'r' real, 't' text. */
static void check_table(sqlite3 *db, const char *csv_path, const char *table, const char *kinds)
{
    tcsv t;
    tcsv_load(csv_path, &t);
    assert_int_equal(strlen(kinds), t.n_cols);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\" ORDER BY rowid", table);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_column_count(st), (int)t.n_cols);
    for (size_t c = 0; c < t.n_cols; c++)
        assert_string_equal(sqlite3_column_name(st, (int)c), t.names[c]);
    size_t r = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        assert_true(r < t.n_rows);
        for (size_t c = 0; c < t.n_cols; c++) {
            const char *v = t.cell[r][c];
            int type = sqlite3_column_type(st, (int)c);
            if (*v == '\0' && (!t.quoted[r][c] || kinds[c] != 't')) {
                if (type != SQLITE_NULL)
                    print_error("%s row %zu col %s: expected NULL\n", table, r + 1, t.names[c]);
                assert_int_equal(type, SQLITE_NULL);
            } else if (kinds[c] == 'i') {
                assert_int_equal(type, SQLITE_INTEGER);
                assert_true(sqlite3_column_int64(st, (int)c) == strtoll(v, NULL, 10));
            } else if (kinds[c] == 'r') {
                assert_int_equal(type, SQLITE_FLOAT);
                assert_true(sqlite3_column_double(st, (int)c) == strtod(v, NULL));
            } else {
                if (type != SQLITE_TEXT)
                    print_error("%s row %zu col %s: '%s' stored as type %d\n", table, r + 1,
                                t.names[c], v, type);
                assert_int_equal(type, SQLITE_TEXT);
                assert_int_equal((size_t)sqlite3_column_bytes(st, (int)c), strlen(v));
                assert_memory_equal(sqlite3_column_text(st, (int)c), v, strlen(v));
            }
        }
        r++;
    }
    sqlite3_finalize(st);
    assert_int_equal(r, t.n_rows);
    tcsv_free(&t);
}

/* Kinds of segments.csv from its published schema. */
static char *schema_kinds(const json_t *S, const char *file)
{
    const json_t *cols = json_object_get(json_object_get(json_object_get(S, "outputs"), file),
                                         "columns");
    assert_true(json_is_array(cols));
    char *k = calloc(json_array_size(cols) + 1, 1);
    size_t i;
    json_t *c;
    json_array_foreach(cols, i, c) {
        const char *t = json_string_value(json_object_get(c, "type"));
        k[i] = strcmp(t, "integer") == 0 ? 'i' : strcmp(t, "number") == 0 ? 'r' : 't';
    }
    return k;
}

static void test_run_tables_match_csv(void **state)
{
    (void)state;
    char *out = cvm_test_path(tmp, "out");
    char *first = run_job(out, "--as-of 2024-12-01");
    char *dir = run_job(out, "--as-of 2025-03-01");
    json_t *S = load_summary(dir);
    sqlite3 *db = open_db(dir);

    /* Every CSV of the run is a table, cell by cell. */
    char *seg = schema_kinds(S, "segments.csv"), *chg = schema_kinds(S, "changes.csv");
    char *p = cvm_test_path(dir, "segments.csv");
    check_table(db, p, "segments", seg);
    free(p);
    p = cvm_test_path(dir, "changes.csv");
    check_table(db, p, "changes", chg);
    free(p);
    p = cvm_test_path(dir, "rejects.csv");
    check_table(db, p, "rejects", "tiitttt"); /* file,line,column,field,reason,detail,raw */
    free(p);
    assert_int_equal(scalar(db, "SELECT count(*) FROM changes"),
                     json_integer_value(json_object_get(json_object_get(S, "changes"), "rows")));
    assert_true(scalar(db, "SELECT count(*) FROM changes") > 0);

    /* Declared types follow the schema; dates are ISO text in DATE columns. */
    assert_int_equal(scalar(db, "SELECT count(*) FROM run_columns WHERE table_name = 'segments' "
                                "AND column_name = 'first_purchase' AND sql_type = 'DATE'"), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM segments WHERE first_purchase IS NOT NULL "
                                "AND (typeof(first_purchase) <> 'text' OR first_purchase NOT GLOB "
                                "'[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]')"), 0);
    assert_int_equal(scalar(db, "SELECT count(*) FROM segments WHERE typeof(recency_days) "
                                "NOT IN ('integer', 'null')"), 0);
    /* run_columns repeats the published schema of segments.csv. */
    const json_t *cols = json_object_get(json_object_get(json_object_get(S, "outputs"),
                                                         "segments.csv"), "columns");
    size_t i;
    json_t *c;
    json_array_foreach(cols, i, c) {
        char sql[600];
        snprintf(sql, sizeof sql, "SELECT column_name || '|' || type || '|' || coalesce(unit, '') "
                 "|| '|' || doc FROM run_columns WHERE table_name = 'segments' AND position = %zu",
                 i + 1);
        char *got = text1(db, sql), want[2000];
        snprintf(want, sizeof want, "%s|%s|%s|%s", json_string_value(json_object_get(c, "name")),
                 json_string_value(json_object_get(c, "type")),
                 json_string_value(json_object_get(c, "unit")),
                 json_string_value(json_object_get(c, "doc")));
        assert_string_equal(got, want);
        free(got);
    }
    /* run_tables and the summary agree on the row counts. */
    long long rows = json_integer_value(json_object_get(json_object_get(S, "rows"), "customers"));
    assert_int_equal(scalar(db, "SELECT rows FROM run_tables WHERE table_name = 'segments'"), rows);
    assert_int_equal(scalar(db, "SELECT columns FROM run_tables WHERE table_name = 'segments'"),
                     json_array_size(cols));
    const json_t *tables = json_object_get(json_object_get(json_object_get(S, "outputs"),
                                                           "cvm.sqlite"), "tables");
    assert_int_equal(json_integer_value(json_object_get(tables, "segments")), rows);
    assert_int_equal(scalar(db, "SELECT count(*) FROM run_tables"), json_object_size(tables));
    /* Indexes on customer_id. */
    assert_int_equal(scalar(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                "tbl_name IN ('segments', 'changes') AND sql LIKE '%customer_id%'"),
                     2);
    assert_int_equal(scalar(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                                "tbl_name = 'rejects'"), 0);

    /* run_info: this run, and the one before it. */
    char *v = text1(db, "SELECT run_id FROM run_info");
    assert_string_equal(v, json_string_value(json_object_get(S, "run_id")));
    free(v);
    v = text1(db, "SELECT as_of || ' ' || job || ' ' || status || ' ' || previous_run FROM run_info");
    const char *slash = strrchr(first, '/');
    char want[600];
    snprintf(want, sizeof want, "2025-03-01 nightly ok %s", slash + 1);
    assert_string_equal(v, want);
    free(v);
    assert_int_equal(scalar(db, "SELECT customers FROM run_info"), rows);
    assert_int_equal(scalar(db, "SELECT count(*) FROM run_info"), 1);

    /* run_manifest: each key's JSON as in summary.json (written later, so
     * only keys that do not change after the SQLite publisher are compared). */
    static const char *const keys[] = {"config", "inputs", "rfm", "grading", "profit", "rejects",
                                       "rows", "as_of", "run_id", "changes"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT value FROM run_manifest WHERE key = '%s'", keys[k]);
        char *txt = text1(db, sql);
        json_t *got = json_loads(txt, JSON_DECODE_ANY, NULL);
        assert_non_null(got);
        if (!json_equal(got, json_object_get(S, keys[k])))
            print_error("run_manifest[%s] differs from summary.json\n", keys[k]);
        assert_true(json_equal(got, json_object_get(S, keys[k])));
        json_decref(got);
        free(txt);
    }
    /* The first run has no previous run. */
    sqlite3 *db1 = open_db(first);
    assert_int_equal(scalar(db1, "SELECT previous_run IS NULL FROM run_info"), 1);
    assert_int_equal(scalar(db1, "SELECT count(*) FROM changes"), 0);
    sqlite3_close(db1);

    sqlite3_close(db);
    json_decref(S);
    free(seg);
    free(chg);
    free(first);
    free(dir);
    free(out);
}

static void test_inferred_types(void **state)
{
    (void)state;
    char *dir = cvm_test_path(tmp, "craft");
    assert_int_equal(mkdir(dir, 0755), 0);
    char *p = cvm_test_path(dir, "extra.csv");
    cvm_test_write_file(p,
                        "id,code_id,n,x,d,mixed,txt,empty,quoted\n"
                        "1,007,12,1.5,2024-02-29,1,\"a,b\",,\"\"\n"
                        "2,010,-3,2,2024-03-01,x,\"line1\nline2\",,\"q\"\"q\"\n"
                        "3,011,0,-0.25,2023-12-31,2.5,plain,,\n");
    free(p);
    p = cvm_test_path(dir, "2nd-file.csv");
    cvm_test_write_file(p, "customer_id,when\r\nC1,2024-13-01\r\nC2,\r\n");
    free(p);
    p = cvm_test_path(dir, "notes.txt");
    cvm_test_write_file(p, "not a table\n");
    free(p);
    char *db_path = cvm_test_path(dir, "cvm.sqlite");
    cvm_err err = {0};
    assert_int_equal(cvm_sqlite_write_run(dir, db_path, NULL, NULL, NULL, &err), CVM_OK);
    sqlite3 *db = open_db(dir);
    p = cvm_test_path(dir, "extra.csv");
    /* id and *_id stay text (leading zeros kept); 2 and 1.5 make a real. */
    check_table(db, p, "extra", "ttirtttt" "t");
    free(p);
    char *v = text1(db, "SELECT group_concat(sql_type, ',') FROM (SELECT sql_type FROM run_columns "
                        "WHERE table_name = 'extra' ORDER BY position)");
    assert_string_equal(v, "TEXT,TEXT,INTEGER,REAL,DATE,TEXT,TEXT,TEXT,TEXT");
    free(v);
    v = text1(db, "SELECT code_id FROM extra WHERE n = 12");
    assert_string_equal(v, "007");
    free(v);
    /* A quoted empty string is '', an empty field is NULL. */
    assert_int_equal(scalar(db, "SELECT count(*) FROM extra WHERE quoted = ''"), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM extra WHERE quoted IS NULL"), 1);
    assert_int_equal(scalar(db, "SELECT count(*) FROM extra WHERE empty IS NULL"), 3);
    v = text1(db, "SELECT txt FROM extra WHERE id = '2'");
    assert_string_equal(v, "line1\nline2");
    free(v);
    /* A file name that is not an identifier; an invalid date makes text. */
    p = cvm_test_path(dir, "2nd-file.csv");
    check_table(db, p, "_2nd_file", "tt");
    free(p);
    assert_int_equal(scalar(db, "SELECT count(*) FROM run_tables"), 2);
    assert_int_equal(scalar(db, "SELECT count(*) FROM run_manifest"), 0);
    assert_int_equal(scalar(db, "SELECT count(*) FROM run_info WHERE run_id IS NULL"), 1);
    sqlite3_close(db);

    /* Written again: replaced, not appended. */
    assert_int_equal(cvm_sqlite_write_run(dir, db_path, NULL, "prev", NULL, &err), CVM_OK);
    db = open_db(dir);
    assert_int_equal(scalar(db, "SELECT count(*) FROM extra"), 3);
    v = text1(db, "SELECT previous_run FROM run_info");
    assert_string_equal(v, "prev");
    free(v);
    sqlite3_close(db);
    free(db_path);
    free(dir);
}

static void test_errors(void **state)
{
    (void)state;
    cvm_err err = {0};
    char *dir = cvm_test_path(tmp, "bad");
    assert_int_equal(mkdir(dir, 0755), 0);
    char *db_path = cvm_test_path(dir, "cvm.sqlite");
    char *p = cvm_test_path(dir, "broken.csv");
    cvm_test_write_file(p, "a,b\n1,\"open\n");
    assert_int_equal(cvm_sqlite_write_run(dir, db_path, NULL, NULL, NULL, &err), CVM_EDATA);
    assert_non_null(strstr(err.msg, "broken.csv:2"));
    struct stat st;
    assert_int_not_equal(stat(db_path, &st), 0); /* no half-written database left */
    cvm_test_write_file(p, "a,b\n1,2,3\n");
    assert_int_equal(cvm_sqlite_write_run(dir, db_path, NULL, NULL, NULL, &err), CVM_EDATA);
    assert_non_null(strstr(err.msg, "expected 2 fields"));
    unlink(p);
    free(p);
    p = cvm_test_path(dir, "run_info.csv");
    cvm_test_write_file(p, "a\n1\n");
    assert_int_equal(cvm_sqlite_write_run(dir, db_path, NULL, NULL, NULL, &err), CVM_EIO);
    assert_non_null(strstr(err.msg, "reserved"));
    unlink(p);
    free(p);
    char *nowhere = cvm_test_path(dir, "missing/cvm.sqlite");
    assert_int_equal(cvm_sqlite_write_run(dir, nowhere, NULL, NULL, NULL, &err), CVM_EIO);
    free(nowhere);
    free(db_path);
    free(dir);
}

static void test_switched_off(void **state)
{
    (void)state;
    char *out = cvm_test_path(tmp, "off");
    char *dir = run_job(out, "--set output.sqlite=false");
    char *p = cvm_test_path(dir, "cvm.sqlite");
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    json_t *S = load_summary(dir);
    assert_null(json_object_get(json_object_get(S, "outputs"), "cvm.sqlite"));
    json_decref(S);
    free(p);
    free(dir);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_tables_match_csv),
        cmocka_unit_test(test_inferred_types),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_switched_off),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
