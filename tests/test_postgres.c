/* The PostgreSQL load against a real server: this test starts its own
 * (Debian's postgresql: initdb + pg_ctl into a temporary directory, a Unix
 * socket there, no TCP), loads two runs, checks the tables against the CSV
 * files and the latest_* views, then makes loads fail (a constraint that
 * rejects the rows, a dropped database, a table in the way) and checks that
 * the views still show the last good run and nothing of the failed one
 * remains. The server is stopped in the group teardown, also after a
 * failure. Without a PostgreSQL server installed the test fails. */
#include "testutil.h"

#include <glob.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <math.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csvtest.h"

static char *tmp;         /* data directory, socket and outputs */
static char bindir[512];  /* .../postgresql/NN/bin */
static bool started;
static char conninfo[1024];
static char as_user[64];  /* "runuser -u postgres --" when root */

static int server_teardown(void **state);

static int server_setup(void **state)
{
    (void)state;
    glob_t g;
    if (glob("/usr/lib/postgresql/*/bin/pg_ctl", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        fprintf(stderr, "test_postgres: no PostgreSQL server found (/usr/lib/postgresql/*/bin/"
                        "pg_ctl): install Debian's postgresql package (scripts/install-deps.sh)\n");
        return -1;
    }
    /* glob sorts: the last is the newest major version (for one-digit
     * majors, which is what Debian ships). */
    snprintf(bindir, sizeof bindir, "%s", g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    *strrchr(bindir, '/') = '\0';
    tmp = cvm_test_mkdtemp("pg");
    if (geteuid() == 0) {
        /* PostgreSQL refuses to run as root: the server belongs to postgres. */
        struct passwd *pw = getpwnam("postgres");
        if (pw == NULL) {
            fprintf(stderr, "test_postgres: running as root and there is no postgres user\n");
            return -1;
        }
        if (chown(tmp, pw->pw_uid, pw->pw_gid) != 0 || chmod(tmp, 0755) != 0)
            return -1;
        snprintf(as_user, sizeof as_user, "runuser -u postgres --");
    }
    if (cvm_test_system("%s '%s/initdb' -D '%s/data' -A trust -U postgres --no-sync "
                        ">'%s/initdb.log' 2>&1", as_user, bindir, tmp, tmp) != 0) {
        fprintf(stderr, "test_postgres: initdb failed, see %s/initdb.log\n", tmp);
        return -1;
    }
    if (cvm_test_system("%s '%s/pg_ctl' -D '%s/data' -l '%s/server.log' -w -t 60 -o \"-k %s -c "
                        "listen_addresses='' -c fsync=off\" start >/dev/null 2>&1", as_user,
                        bindir, tmp, tmp, tmp) != 0) {
        fprintf(stderr, "test_postgres: the server did not start, see %s/server.log\n", tmp);
        return -1;
    }
    started = true;
    snprintf(conninfo, sizeof conninfo, "host=%s dbname=cvmtest user=postgres", tmp);
    char admin[600];
    snprintf(admin, sizeof admin, "host=%s dbname=postgres user=postgres", tmp);
    PGconn *c = PQconnectdb(admin);
    PGresult *r = PQexec(c, "CREATE DATABASE cvmtest");
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        fprintf(stderr, "test_postgres: %s\n", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    if (!ok)
        server_teardown(NULL);
    return ok ? 0 : -1;
}

static int server_teardown(void **state)
{
    (void)state;
    if (started)
        cvm_test_system("%s '%s/pg_ctl' -D '%s/data' -m fast -w stop >/dev/null 2>&1", as_user,
                        bindir, tmp);
    started = false;
    cvm_test_rmtree(tmp);
    free(tmp);
    return 0;
}

static PGconn *db(void)
{
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) != CONNECTION_OK)
        print_error("connect: %s\n", PQerrorMessage(c));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static void sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        print_error("%s: %s\n", q, PQerrorMessage(c));
    assert_true(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
}

/* First cell of a query as text (malloc'd; "" for NULL). */
static char *val(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        print_error("%s: %s\n", q, PQerrorMessage(c));
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQntuples(r) >= 1);
    char *s = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return s;
}

static long long num(PGconn *c, const char *q)
{
    char *s = val(c, q);
    long long v = atoll(s);
    free(s);
    return v;
}

typedef struct result {
    int exit;
    char out[4400];
    char *err;
} result;

static void run(const char *out, const char *extra, result *res)
{
    char *so = cvm_test_path(tmp, "stdout"), *se = cvm_test_path(tmp, "stderr");
    res->exit = cvm_test_system(
        "cd '%s' && '%s' run jobs/nightly.yaml --out '%s' --quiet --set output.postgres.enabled=true "
        "--set 'output.postgres.conninfo=%s' %s >'%s' 2>'%s'", cvm_test_source_dir(),
        cvm_test_binary(), out, conninfo, extra, so, se);
    char *o = cvm_test_read_file(so, NULL);
    snprintf(res->out, sizeof res->out, "%s", o ? o : "");
    res->out[strcspn(res->out, "\n")] = '\0';
    free(o);
    res->err = cvm_test_read_file(se, NULL);
    free(so);
    free(se);
}

static void run_ok(const char *out, const char *extra, result *res)
{
    run(out, extra, res);
    if (res->exit != 0)
        print_error("cvm run failed (%d): %s\n", res->exit, res->err ? res->err : "");
    assert_int_equal(res->exit, 0);
}

static const char *base(const char *dir)
{
    const char *s = strrchr(dir, '/');
    return s ? s + 1 : dir;
}

static size_t csv_rows(const char *dir, const char *file)
{
    tcsv t;
    char *p = cvm_test_path(dir, file);
    tcsv_load(p, &t);
    size_t n = t.n_rows;
    tcsv_free(&t);
    free(p);
    return n;
}

static char r1[4400], r2[4400]; /* the two good runs */
static char *out_dir;

static void test_two_runs_and_views(void **state)
{
    (void)state;
    out_dir = cvm_test_path(tmp, "out");
    result a, b;
    run_ok(out_dir, "--set output.postgres.schema=cvmt --as-of 2024-12-01", &a);
    snprintf(r1, sizeof r1, "%s", a.out);
    PGconn *c = db();
    char q[9000];
    static const char *const tables[3] = {"segments", "rejects", "changes"};
    for (int t = 0; t < 3; t++) {
        char file[64];
        snprintf(file, sizeof file, "%s.csv", tables[t]);
        size_t n = csv_rows(r1, file);
        snprintf(q, sizeof q, "SELECT count(*) FROM cvmt.%s WHERE run_id = '%s'", tables[t], base(r1));
        assert_int_equal(num(c, q), n);
        snprintf(q, sizeof q, "SELECT count(*) FROM cvmt.latest_%s", tables[t]);
        assert_int_equal(num(c, q), n);
    }
    assert_true(csv_rows(r1, "segments.csv") > 0 && csv_rows(r1, "rejects.csv") > 0);
    snprintf(q, sizeof q, "SELECT run_id || ' ' || as_of FROM cvmt.latest_run");
    char *v = val(c, q), want[9000];
    snprintf(want, sizeof want, "%s 2024-12-01", base(r1));
    assert_string_equal(v, want);
    free(v);

    /* Typed columns, and the values as in the CSV file. */
    v = val(c, "SELECT string_agg(column_name || ':' || data_type, ',' ORDER BY column_name) FROM "
               "information_schema.columns WHERE table_schema = 'cvmt' AND table_name = 'segments' "
               "AND column_name IN ('run_id', 'customer_id', 'recency_days', 'monetary', "
               "'first_purchase')");
    assert_string_equal(v, "customer_id:text,first_purchase:date,monetary:double precision,"
                           "recency_days:bigint,run_id:text");
    free(v);
    tcsv s;
    char *p = cvm_test_path(r1, "segments.csv");
    tcsv_load(p, &s);
    free(p);
    int cm = tcsv_col(&s, "monetary"), cn = tcsv_col(&s, "name"), ci = tcsv_col(&s, "customer_id");
    int cf = tcsv_col(&s, "first_purchase");
    double sum = 0;
    long long nofirst = 0;
    for (size_t r = 0; r < s.n_rows; r++) {
        sum += strtod(s.cell[r][cm], NULL);
        nofirst += s.cell[r][cf][0] == '\0';
    }
    v = val(c, "SELECT sum(monetary)::text FROM cvmt.latest_segments");
    assert_close(strtod(v, NULL), sum, 1e-12, 1e-6, "sum(monetary)");
    free(v);
    assert_int_equal(num(c, "SELECT count(*) FROM cvmt.latest_segments WHERE first_purchase IS NULL"),
                     nofirst);
    assert_true(nofirst > 0);
    long row = tcsv_find(&s, ci, "DOC-000002"); /* a name with a comma, quoted in the CSV */
    assert_true(row >= 0);
    v = val(c, "SELECT name FROM cvmt.latest_segments WHERE customer_id = 'DOC-000002'");
    assert_string_equal(v, s.cell[row][cn]);
    assert_non_null(strchr(v, ','));
    free(v);
    tcsv_free(&s);

    /* The second night: both runs kept, the views move. */
    sleep(1);
    run_ok(out_dir, "--set output.postgres.schema=cvmt --as-of 2025-03-01", &b);
    snprintf(r2, sizeof r2, "%s", b.out);
    for (int t = 0; t < 3; t++) {
        char file[64];
        snprintf(file, sizeof file, "%s.csv", tables[t]);
        size_t n1 = csv_rows(r1, file), n2 = csv_rows(r2, file);
        snprintf(q, sizeof q, "SELECT count(*) FROM cvmt.%s", tables[t]);
        assert_int_equal(num(c, q), n1 + n2);
        snprintf(q, sizeof q, "SELECT count(*) FROM cvmt.latest_%s WHERE run_id = '%s'", tables[t],
                 base(r2));
        assert_int_equal(num(c, q), n2);
        snprintf(q, sizeof q, "SELECT count(*) FROM cvmt.latest_%s", tables[t]);
        assert_int_equal(num(c, q), n2);
    }
    assert_true(csv_rows(r2, "changes.csv") > 0);
    assert_int_equal(num(c, "SELECT count(*) FROM cvmt.runs"), 2);
    v = val(c, "SELECT run_id FROM cvmt.latest_run");
    assert_string_equal(v, base(r2));
    free(v);
    /* runs.summary is the manifest; summary.json says what was loaded. */
    v = val(c, "SELECT summary->>'as_of' FROM cvmt.latest_run");
    assert_string_equal(v, "2025-03-01");
    free(v);
    p = cvm_test_path(r2, "summary.json");
    json_t *S = json_load_file(p, 0, NULL);
    free(p);
    const json_t *pg = json_object_get(S, "postgres");
    assert_string_equal(json_string_value(json_object_get(pg, "schema")), "cvmt");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(pg, "tables"), "segments")),
                     csv_rows(r2, "segments.csv"));
    json_decref(S);
    PQfinish(c);
    free(a.err);
    free(b.err);
}

static size_t count_runs(const char *out)
{
    size_t n = 0;
    char *p = cvm_test_path(tmp, "ls.txt");
    assert_int_equal(cvm_test_system("ls '%s' | grep -c '^nightly-' >'%s'", out, p) <= 1, 1);
    char *t = cvm_test_read_file(p, NULL);
    n = (size_t)atol(t);
    free(t);
    free(p);
    return n;
}

static void expect_views_on_r2(PGconn *c)
{
    char q[9000];
    assert_int_equal(num(c, "SELECT count(*) FROM cvmt.runs"), 2);
    snprintf(q, sizeof q, "SELECT count(*) FROM cvmt.latest_segments WHERE run_id <> '%s'", base(r2));
    assert_int_equal(num(c, q), 0);
    assert_int_equal(num(c, "SELECT count(*) FROM cvmt.latest_segments"), csv_rows(r2, "segments.csv"));
    /* Nothing of the failed run: rejects and changes were loaded before
     * segments in that transaction, and went with it. */
    assert_int_equal(num(c, "SELECT count(*) FROM cvmt.rejects"),
                     csv_rows(r1, "rejects.csv") + csv_rows(r2, "rejects.csv"));
    assert_int_equal(num(c, "SELECT count(*) FROM cvmt.changes"),
                     csv_rows(r1, "changes.csv") + csv_rows(r2, "changes.csv"));
    char *v = val(c, "SELECT run_id FROM cvmt.latest_run");
    assert_string_equal(v, base(r2));
    free(v);
}

static void test_failed_loads_keep_views(void **state)
{
    (void)state;
    assert_non_null(out_dir); /* after test_two_runs_and_views */
    assert_true(r2[0] != '\0');
    PGconn *c = db();
    size_t before = count_runs(out_dir);
    char latest[4400], *lp = cvm_test_path(out_dir, "latest");
    ssize_t k = readlink(lp, latest, sizeof latest - 1);
    assert_true(k > 0);
    latest[k] = '\0';

    /* Rows the table refuses: the COPY fails after two tables were loaded. */
    sql(c, "ALTER TABLE cvmt.segments ADD CONSTRAINT refuse_all CHECK (false) NOT VALID");
    result f;
    sleep(1);
    run(out_dir, "--set output.postgres.schema=cvmt --as-of 2025-04-01", &f);
    assert_int_equal(f.exit, 4);
    assert_string_equal(f.out, "");
    assert_non_null(strstr(f.err, "violates check constraint"));
    assert_non_null(strstr(f.err, "latest_* views still show the previous run"));
    expect_views_on_r2(c);
    /* The run itself was not published and latest did not move. */
    assert_int_equal(count_runs(out_dir), before);
    char now[4400];
    k = readlink(lp, now, sizeof now - 1);
    now[k] = '\0';
    assert_string_equal(now, latest);
    sql(c, "ALTER TABLE cvmt.segments DROP CONSTRAINT refuse_all");
    free(f.err);

    /* A database that is gone. */
    char admin[600];
    snprintf(admin, sizeof admin, "host=%s dbname=postgres user=postgres", tmp);
    PGconn *a = PQconnectdb(admin);
    PQclear(PQexec(a, "CREATE DATABASE gone"));
    PQclear(PQexec(a, "DROP DATABASE gone"));
    PQfinish(a);
    char extra[1200];
    snprintf(extra, sizeof extra, "--set output.postgres.schema=cvmt "
             "--set 'output.postgres.conninfo=host=%s dbname=gone user=postgres'", tmp);
    run(out_dir, extra, &f);
    assert_int_equal(f.exit, 4);
    assert_non_null(strstr(f.err, "cannot connect to database 'gone'"));
    expect_views_on_r2(c);
    assert_int_equal(count_runs(out_dir), before);
    free(f.err);

    /* A table in the way (not made by cvm): the schema stays as it was. */
    sql(c, "CREATE SCHEMA cvmx; CREATE TABLE cvmx.rejects (reason text)");
    run(out_dir, "--set output.postgres.schema=cvmx", &f);
    assert_int_equal(f.exit, 4);
    assert_non_null(strstr(f.err, "cvmx.rejects is in the way"));
    assert_int_equal(num(c, "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                            "'cvmx'"), 1);
    free(f.err);

    /* Configuration errors are found before the run: exit code 2. */
    run(out_dir, "--set output.postgres.schema=bad-name", &f);
    assert_int_equal(f.exit, 2);
    assert_non_null(strstr(f.err, "output.postgres.schema"));
    free(f.err);
    snprintf(extra, sizeof extra, "--set 'output.postgres.conninfo=host=%s password=secret'", tmp);
    run(out_dir, extra, &f);
    assert_int_equal(f.exit, 2);
    assert_non_null(strstr(f.err, "must not contain a password"));
    free(f.err);
    expect_views_on_r2(c);
    free(lp);
    PQfinish(c);
}

static void test_widening_and_keep_runs(void **state)
{
    (void)state;
    PGconn *c = db();
    /* A table from an older layout: a column of another type, one column
     * the CSV no longer has. The load widens and adds; old rows stay. */
    sql(c, "CREATE SCHEMA cvmw; CREATE TABLE cvmw.rejects (run_id text NOT NULL, line date, "
           "retired text); INSERT INTO cvmw.rejects VALUES ('old-run', '2020-01-01', 'x')");
    char *out = cvm_test_path(tmp, "out-w");
    result a;
    run_ok(out, "--set output.postgres.schema=cvmw --set output.postgres.keep_runs=2", &a);
    size_t n = csv_rows(a.out, "rejects.csv");
    char *v = val(c, "SELECT data_type FROM information_schema.columns WHERE table_schema = 'cvmw' "
                     "AND table_name = 'rejects' AND column_name = 'line'");
    assert_string_equal(v, "text"); /* date and bigint meet in text */
    free(v);
    char q[9000];
    snprintf(q, sizeof q, "SELECT count(*) FROM cvmw.rejects WHERE run_id = '%s' AND retired IS NULL "
             "AND reason IS NOT NULL", base(a.out));
    assert_int_equal(num(c, q), n);
    /* keep_runs = 2 counts loaded runs: 'old-run' has no runs row and goes. */
    assert_int_equal(num(c, "SELECT count(*) FROM cvmw.rejects WHERE run_id = 'old-run'"), 0);
    free(a.err);
    result b, d;
    sleep(1);
    run_ok(out, "--set output.postgres.schema=cvmw --set output.postgres.keep_runs=2", &b);
    sleep(1);
    run_ok(out, "--set output.postgres.schema=cvmw --set output.postgres.keep_runs=2", &d);
    assert_int_equal(num(c, "SELECT count(*) FROM cvmw.runs"), 2);
    snprintf(q, sizeof q, "SELECT count(*) FROM cvmw.segments WHERE run_id = '%s'", base(a.out));
    assert_int_equal(num(c, q), 0);
    assert_int_equal(num(c, "SELECT count(DISTINCT run_id) FROM cvmw.segments"), 2);
    snprintf(q, sizeof q, "SELECT count(*) FROM cvmw.latest_segments WHERE run_id = '%s'", base(d.out));
    assert_int_equal(num(c, q), csv_rows(d.out, "segments.csv"));
    free(b.err);
    free(d.err);
    free(out);
    PQfinish(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_runs_and_views),
        cmocka_unit_test(test_failed_loads_keep_views),
        cmocka_unit_test(test_widening_and_keep_runs),
    };
    int rc = cmocka_run_group_tests(tests, server_setup, server_teardown);
    free(out_dir);
    return rc;
}
