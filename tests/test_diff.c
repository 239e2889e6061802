/* Night to night: two runs on the sample data, the second on a copy with
 * planted changes (one customer gone, one new, five champions who stopped
 * buying 500 days ago, three happy customers made unhappy), checked against
 * the plants and against a brute-force comparison of the two segments.csv;
 * then `cvm diff` (cvm_diff_cli) against the publisher, and its errors. */
#include "testutil.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csvtest.h"
#include "diff.h"

static char *tmp;

static int setup(void **state)
{
    (void)state;
    tmp = cvm_test_mkdtemp("diff");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cvm_test_rmtree(tmp);
    free(tmp);
    return 0;
}

/* Runs the sample job on the inputs in data; returns the run directory. */
static char *run_on(const char *data, const char *out, const char *extra)
{
    char *so = cvm_test_path(tmp, "stdout"), *se = cvm_test_path(tmp, "stderr");
    int st = cvm_test_system(
        /* Mining stages off: the brute force below knows the value fields only. */
        "cd '%s' && '%s' run jobs/nightly.yaml --out '%s' --quiet --as-of 2025-01-01 "
        "--set kmeans.enabled=false --set cycles.enabled=false --set rules.enabled=false "
        "--set input.transactions.path=%s/transactions.csv --set input.customers.path=%s/customers.csv "
        "--set input.products.path=%s/products.csv --set input.interactions.path=%s/interactions.csv "
        "%s >'%s' 2>'%s'", cvm_test_source_dir(), cvm_test_binary(), out, data, data, data, data,
        extra, so, se);
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

static json_t *summary_of(const char *dir)
{
    char *p = cvm_test_path(dir, "summary.json");
    json_t *S = json_load_file(p, 0, NULL);
    assert_non_null(S);
    free(p);
    return S;
}

static bool in_list(const char *s, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, v[i]) == 0)
            return true;
    return false;
}

/* Field k (0-based) of a plain CSV line (no quotes before it) into buf. */
static bool field_of(const char *line, int k, char *buf, size_t cap)
{
    const char *p = line;
    for (int i = 0; i < k; i++) {
        p = strchr(p, ',');
        if (p == NULL)
            return false;
        p++;
    }
    size_t n = strcspn(p, ",\n");
    if (memchr(line, '"', (size_t)(p - line) + n) || n >= cap)
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return true;
}

typedef struct plant {
    char gone[32];
    char risk[5][32];
    char unhappy[3][32];
} plant;

/* Copies path to out line by line, dropping or rewriting lines. */
static void rewrite(const char *in, const char *out, const plant *pl, int kind)
{
    char *text = cvm_test_read_file(in, NULL);
    assert_non_null(text);
    FILE *f = fopen(out, "wb");
    assert_non_null(f);
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
        char cust[64] = "", date[64] = "";
        bool drop = false;
        if (kind == 0 && field_of(line, 2, cust, sizeof cust)) { /* transactions */
            drop = strcmp(cust, pl->gone) == 0;
            for (int i = 0; i < 5 && !drop; i++)
                drop = strcmp(cust, pl->risk[i]) == 0 && field_of(line, 3, date, sizeof date) &&
                       strcmp(date, "2023-08-19") >= 0;
        } else if (kind != 0 && field_of(line, 0, cust, sizeof cust)) {
            drop = strcmp(cust, pl->gone) == 0;
        }
        bool unhappy = false;
        for (int i = 0; i < 3 && kind == 1; i++)
            unhappy |= strcmp(cust, pl->unhappy[i]) == 0;
        if (unhappy) {
            /* customer_id,name,type,region,satisfaction,complaints,influence */
            char copy[1024];
            snprintf(copy, sizeof copy, "%.*s", (int)len, line);
            char *f4 = copy;
            for (int i = 0; i < 4; i++)
                f4 = strchr(f4, ',') + 1;
            char *f5 = strchr(f4, ',');
            fprintf(f, "%.*s1.0%s", (int)(f4 - copy), copy, f5);
        } else if (!drop) {
            fwrite(line, 1, len, f);
        }
        line += len;
    }
    if (kind == 0)
        fputs("SOZZ0000001,1,ZZZ-NEW-001,2024-12-01 10:00:00,P00487,2,10.00,6.00\n"
              "SOZZ0000002,1,ZZZ-NEW-001,2024-12-15 10:00:00,P00724,1,25.00,17.00\n", f);
    assert_int_equal(fclose(f), 0);
    free(text);
}

static bool master_line_plain(const char *data, const char *id)
{
    char *p = cvm_test_path(data, "customers.csv");
    char *text = cvm_test_read_file(p, NULL);
    char key[64];
    snprintf(key, sizeof key, "\n%s,", id);
    char *at = strstr(text, key);
    bool ok = at && memchr(at + 1, '"', strcspn(at + 1, "\n")) == NULL;
    free(text);
    free(p);
    return ok;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *const risk_set[] = {"At risk", "Cannot lose", "About to sleep", "Hibernating",
                                       "Lost"};
static const char *const fields[] = {"grade", "grid_class", "volume_tier", "rfm_segment", "action"};

static long long mig(const json_t *C, const char *field, const char *a, const char *b)
{
    const json_t *v = json_object_get(
        json_object_get(json_object_get(json_object_get(C, "migrations"), field), a), b);
    return v ? (long long)json_integer_value(v) : 0;
}

static const char *label(const char *v)
{
    return *v ? v : "(none)";
}

/* Capture stdout of cvm_diff_cli into a file. */
static int cli(char *const *argv, int argc, const char *capture, cvm_err *err)
{
    fflush(stdout);
    int saved = dup(1);
    int fd = open(capture, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    int rc = cvm_diff_cli(argc, (char **)argv, err);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

static void test_planted_night(void **state)
{
    (void)state;
    char *data1 = cvm_test_path(tmp, "data1"), *data2 = cvm_test_path(tmp, "data2");
    char *out = cvm_test_path(tmp, "out");
    assert_int_equal(cvm_test_system("cp -r '%s/sample_data' '%s' && mkdir '%s' && cp '%s'/products.csv '%s'/",
                                     cvm_test_source_dir(), data1, data2, data1, data2), 0);
    char *d1 = run_on(data1, out, "");
    /* The first night has nothing to compare with. */
    json_t *S1 = summary_of(d1);
    assert_true(json_is_null(json_object_get(json_object_get(S1, "changes"), "previous_run")));
    char *p = cvm_test_path(d1, "changes.csv");
    char *t = cvm_test_read_file(p, NULL);
    assert_string_equal(t, "customer_id,field,old,new\n");
    free(t);
    free(p);

    tcsv a;
    p = cvm_test_path(d1, "segments.csv");
    tcsv_load(p, &a);
    free(p);
    int id = tcsv_col(&a, "customer_id"), seg = tcsv_col(&a, "rfm_segment");
    int grid = tcsv_col(&a, "grid_class"), grade = tcsv_col(&a, "grade");
    int first = tcsv_col(&a, "first_purchase");
    plant pl;
    memset(&pl, 0, sizeof pl);
    int nr = 0, nu = 0;
    for (size_t r = 0; r < a.n_rows; r++) {
        const char *c = a.cell[r][id];
        if (!pl.gone[0] && strncmp(c, "DOC-", 4) == 0 && strcmp(a.cell[r][grade], "C") == 0 &&
            master_line_plain(data1, c)) {
            snprintf(pl.gone, sizeof pl.gone, "%s", c);
        } else if (nr < 5 && strcmp(a.cell[r][seg], "Champions") == 0 &&
                   strcmp(a.cell[r][first], "2023-06-01") < 0) {
            snprintf(pl.risk[nr++], sizeof pl.risk[0], "%s", c);
        } else if (nu < 3 && strchr("ABC", a.cell[r][grid][0]) && a.cell[r][grid][0] &&
                   strcmp(a.cell[r][seg], "Champions") != 0 && master_line_plain(data1, c)) {
            snprintf(pl.unhappy[nu++], sizeof pl.unhappy[0], "%s", c);
        }
    }
    assert_true(pl.gone[0] && nr == 5 && nu == 3);
    static const char *const files[3] = {"transactions.csv", "customers.csv", "interactions.csv"};
    for (int k = 0; k < 3; k++) {
        char *in = cvm_test_path(data1, files[k]), *o = cvm_test_path(data2, files[k]);
        rewrite(in, o, &pl, k);
        free(in);
        free(o);
    }
    sleep(1); /* a new run directory name */
    char *d2 = run_on(data2, out, "");
    json_t *S2 = summary_of(d2);
    const json_t *C = json_object_get(S2, "changes");
    assert_non_null(C);
    const char *slash = strrchr(d1, '/');
    assert_string_equal(json_string_value(json_object_get(C, "previous_run")), slash + 1);
    assert_string_equal(json_string_value(json_object_get(C, "run")),
                        json_string_value(json_object_get(S2, "run_id")));

    tcsv b, ch;
    p = cvm_test_path(d2, "segments.csv");
    tcsv_load(p, &b);
    free(p);
    p = cvm_test_path(d2, "changes.csv");
    tcsv_load(p, &ch);
    free(p);
    assert_int_equal(ch.n_cols, 4);

    /* The plants. */
    const json_t *cust = json_object_get(C, "customers");
    assert_int_equal(json_integer_value(json_object_get(cust, "gone")), 1);
    assert_int_equal(json_integer_value(json_object_get(cust, "new")), 1);
    assert_int_equal(json_integer_value(json_object_get(cust, "both")), a.n_rows - 1);
    char want[200];
    char **rows = calloc(ch.n_rows + 1, sizeof *rows);
    for (size_t r = 0; r < ch.n_rows; r++) {
        char buf[400];
        snprintf(buf, sizeof buf, "%s|%s|%s|%s", ch.cell[r][0], ch.cell[r][1], ch.cell[r][2],
                 ch.cell[r][3]);
        rows[r] = strdup(buf);
    }
#define HAS_ROW(s) (bsearch(&(const char *){s}, rows, ch.n_rows, sizeof *rows, cmp_str) != NULL)
    qsort(rows, ch.n_rows, sizeof *rows, cmp_str);
    snprintf(want, sizeof want, "%s|customer|present|absent", pl.gone);
    assert_true(HAS_ROW(want));
    assert_true(HAS_ROW("ZZZ-NEW-001|customer|absent|present"));
    int bid = tcsv_col(&b, "customer_id"), bgrid = tcsv_col(&b, "grid_class");
    int btier = tcsv_col(&b, "volume_tier"), bseg = tcsv_col(&b, "rfm_segment");
    int br = tcsv_col(&b, "r_score");
    for (int i = 0; i < 3; i++) {
        long ra = tcsv_find(&a, id, pl.unhappy[i]), rb = tcsv_find(&b, bid, pl.unhappy[i]);
        assert_true(ra >= 0 && rb >= 0);
        /* Low satisfaction: row G/H/I of the grid, by the new volume tier. */
        const char *tier = b.cell[rb][btier];
        const char *expect = strcmp(tier, "large") == 0 ? "G" : strcmp(tier, "medium") == 0 ? "H" : "I";
        assert_string_equal(b.cell[rb][bgrid], expect);
        snprintf(want, sizeof want, "%s|grid_class|%s|%s", pl.unhappy[i], a.cell[ra][grid], expect);
        if (!HAS_ROW(want))
            print_error("changes.csv lacks %s\n", want);
        assert_true(HAS_ROW(want));
    }
    for (int i = 0; i < 5; i++) {
        long rb = tcsv_find(&b, bid, pl.risk[i]);
        assert_true(rb >= 0);
        assert_true(atoi(b.cell[rb][br]) <= 2); /* stopped buying 500 days ago */
        assert_true(in_list(b.cell[rb][bseg], risk_set, 5));
        snprintf(want, sizeof want, "%s|at_risk|0|1", pl.risk[i]);
        assert_true(HAS_ROW(want));
        snprintf(want, sizeof want, "%s|rfm_segment|Champions|%s", pl.risk[i], b.cell[rb][bseg]);
        assert_true(HAS_ROW(want));
    }

    /* Brute force over both files: every row of changes.csv, the matrices,
     * the segment sizes and the newly-at-risk count. */
    size_t cap = 16 + 8 * (a.n_rows + b.n_rows), n = 0;
    char **expect = calloc(cap, sizeof *expect);
    long long at_risk = 0;
    int fa[5], fb[5];
    for (int f = 0; f < 5; f++) {
        fa[f] = tcsv_col(&a, fields[f]);
        fb[f] = tcsv_col(&b, fields[f]);
        assert_true(fa[f] >= 0 && fb[f] >= 0);
    }
    static const char *const groups[3] = {"grade", "grid_class", "rfm_segment"};
    long long total[3] = {0, 0, 0};
    for (size_t r = 0; r < a.n_rows; r++) {
        long rb = tcsv_find(&b, bid, a.cell[r][id]);
        char buf[400];
        if (rb < 0) {
            snprintf(buf, sizeof buf, "%s|customer|present|absent", a.cell[r][id]);
            expect[n++] = strdup(buf);
            continue;
        }
        for (int f = 0; f < 5; f++)
            if (strcmp(a.cell[r][fa[f]], b.cell[rb][fb[f]]) != 0) {
                snprintf(buf, sizeof buf, "%s|%s|%s|%s", a.cell[r][id], fields[f], a.cell[r][fa[f]],
                         b.cell[rb][fb[f]]);
                expect[n++] = strdup(buf);
            }
        if (in_list(b.cell[rb][bseg], risk_set, 5) && !in_list(a.cell[r][seg], risk_set, 5)) {
            snprintf(buf, sizeof buf, "%s|at_risk|0|1", a.cell[r][id]);
            expect[n++] = strdup(buf);
            at_risk++;
        }
    }
    for (size_t r = 0; r < b.n_rows; r++)
        if (tcsv_find(&a, id, b.cell[r][bid]) < 0) {
            char buf[400];
            snprintf(buf, sizeof buf, "%s|customer|absent|present", b.cell[r][bid]);
            expect[n++] = strdup(buf);
        }
    qsort(expect, n, sizeof *expect, cmp_str);
    assert_int_equal(n, ch.n_rows);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(expect[i], rows[i]) != 0)
            print_error("changes.csv row %zu: '%s', expected '%s'\n", i, rows[i], expect[i]);
        assert_string_equal(rows[i], expect[i]);
    }
    assert_int_equal(json_integer_value(json_object_get(C, "rows")), n);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(C, "newly_at_risk"),
                                                        "customers")), at_risk);
    assert_true(at_risk >= 5);
    long *map = malloc(a.n_rows * sizeof *map);
    for (size_t r = 0; r < a.n_rows; r++)
        map[r] = tcsv_find(&b, bid, a.cell[r][id]);
    for (int g = 0; g < 3; g++) {
        int ca = tcsv_col(&a, groups[g]), cb = tcsv_col(&b, groups[g]);
        /* Oracle: (from, to) pairs counted by linear search. */
        char from[256][48], to[256][48];
        long long cnt[256];
        size_t np = 0;
        for (size_t r = 0; r < a.n_rows + b.n_rows; r++) {
            const char *f, *t2;
            if (r < a.n_rows) {
                f = label(a.cell[r][ca]);
                t2 = map[r] < 0 ? "(gone)" : label(b.cell[map[r]][cb]);
            } else {
                size_t q = r - a.n_rows;
                if (tcsv_find(&a, id, b.cell[q][bid]) >= 0)
                    continue;
                f = "(new)";
                t2 = label(b.cell[q][cb]);
            }
            size_t k = 0;
            while (k < np && !(strcmp(from[k], f) == 0 && strcmp(to[k], t2) == 0))
                k++;
            if (k == np) {
                assert_true(np < 256);
                snprintf(from[np], sizeof from[0], "%s", f);
                snprintf(to[np], sizeof to[0], "%s", t2);
                cnt[np++] = 0;
            }
            cnt[k]++;
        }
        size_t entries = 0;
        for (size_t k = 0; k < np; k++)
            assert_int_equal(mig(C, groups[g], from[k], to[k]), cnt[k]);
        const char *fr, *k;
        json_t *row, *v;
        json_object_foreach(json_object_get(json_object_get(C, "migrations"), groups[g]), fr, row)
            json_object_foreach(row, k, v) {
                total[g] += json_integer_value(v);
                entries++;
            }
        assert_int_equal(entries, np);
        assert_int_equal(total[g], a.n_rows + 1); /* both + gone + new */
    }
    free(map);
    const json_t *sizes = json_object_get(json_object_get(C, "sizes"), "rfm_segment");
    const char *sname;
    json_t *sv;
    json_object_foreach((json_t *)sizes, sname, sv) {
        long long no = 0, nn = 0;
        for (size_t r = 0; r < a.n_rows; r++)
            no += strcmp(label(a.cell[r][seg]), sname) == 0;
        for (size_t r = 0; r < b.n_rows; r++)
            nn += strcmp(label(b.cell[r][bseg]), sname) == 0;
        assert_int_equal(json_integer_value(json_object_get(sv, "old")), no);
        assert_int_equal(json_integer_value(json_object_get(sv, "new")), nn);
        assert_int_equal(json_integer_value(json_object_get(sv, "delta")), nn - no);
    }

    /* cvm diff: the same file, the same section, a readable summary. */
    char *csv2 = cvm_test_path(tmp, "cli-changes.csv"), *cap_out = cvm_test_path(tmp, "cli.out");
    char *argv1[] = {"diff", d1, d2, "--out", csv2, "--json", NULL};
    cvm_err err = {0};
    assert_int_equal(cli(argv1, 6, cap_out, &err), CVM_OK);
    char *x = cvm_test_read_file(csv2, NULL);
    p = cvm_test_path(d2, "changes.csv");
    char *y = cvm_test_read_file(p, NULL);
    assert_string_equal(x, y);
    free(x);
    free(y);
    free(p);
    json_t *J = json_load_file(cap_out, 0, NULL);
    assert_non_null(J);
    assert_true(json_equal(J, C));
    json_decref(J);
    char *argv2[] = {"diff", d1, d2, NULL};
    assert_int_equal(cli(argv2, 3, cap_out, &err), CVM_OK);
    char *text = cvm_test_read_file(cap_out, NULL);
    snprintf(want, sizeof want, "customers: %zu in both runs, 1 new, 1 gone", a.n_rows - 1);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof want, "newly at risk: %lld customers", at_risk);
    assert_non_null(strstr(text, want));
    assert_non_null(strstr(text, "grade (rows: before, columns: after)"));
    free(text);

    for (size_t i = 0; i < n; i++)
        free(expect[i]);
    free(expect);
    for (size_t i = 0; i < ch.n_rows; i++)
        free(rows[i]);
    free(rows);
    tcsv_free(&a);
    tcsv_free(&b);
    tcsv_free(&ch);
    json_decref(S1);
    json_decref(S2);
    free(csv2);
    free(cap_out);
    free(d1);
    free(d2);
    free(out);
    free(data1);
    free(data2);
}

static void test_cli_errors(void **state)
{
    (void)state;
    cvm_err err = {0};
    char *cap = cvm_test_path(tmp, "err.out");
    char *a1[] = {"diff", "only-one", NULL};
    assert_int_equal(cli(a1, 2, cap, &err), CVM_EINVAL);
    assert_non_null(strstr(err.msg, "two run directories"));
    char *a2[] = {"diff", "a", "b", "--bogus", NULL};
    assert_int_equal(cli(a2, 4, cap, &err), CVM_EINVAL);
    assert_non_null(strstr(err.msg, "--bogus"));
    char *a3[] = {"diff", "--help", NULL};
    assert_int_equal(cli(a3, 2, cap, &err), CVM_OK);
    char *help = cvm_test_read_file(cap, NULL);
    assert_non_null(strstr(help, "Usage: cvm diff"));
    free(help);
    char *missing = cvm_test_path(tmp, "no-such-run");
    char *a4[] = {"diff", missing, missing, NULL};
    assert_int_equal(cli(a4, 3, cap, &err), CVM_EIO);
    assert_non_null(strstr(err.msg, "no-such-run/segments.csv"));
    /* Unsorted ids would pair the wrong customers: refused. */
    char *u = cvm_test_path(tmp, "unsorted"), *s = cvm_test_path(tmp, "sorted");
    assert_int_equal(cvm_test_system("mkdir -p '%s' '%s'", u, s), 0);
    char *pu = cvm_test_path(u, "segments.csv"), *ps = cvm_test_path(s, "segments.csv");
    cvm_test_write_file(pu, "customer_id,grade\nB,A\nA,B\n");
    cvm_test_write_file(ps, "customer_id,grade\nA,A\nB,B\n");
    char *a5[] = {"diff", s, u, NULL};
    assert_int_equal(cli(a5, 3, cap, &err), CVM_EDATA);
    assert_non_null(strstr(err.msg, "sorted by customer_id"));
    cvm_test_write_file(pu, "grade\nA\n");
    assert_int_equal(cli(a5, 3, cap, &err), CVM_EDATA);
    assert_non_null(strstr(err.msg, "no customer_id"));
    /* Minimal files: only the columns both have are compared. */
    cvm_test_write_file(pu, "customer_id,grade,extra\nA,C,1\nC,A,2\n");
    void *sec = NULL;
    cvm_diff_params p;
    cvm_diff_params_default(&p);
    assert_int_equal(cvm_diff_runs(s, u, &p, NULL, &sec, &err), CVM_OK);
    json_t *J = sec;
    assert_int_equal(json_array_size(json_object_get(J, "fields")), 1);
    assert_int_equal(mig(J, "grade", "A", "C"), 1);
    assert_int_equal(mig(J, "grade", "B", "(gone)"), 1);
    assert_int_equal(mig(J, "grade", "(new)", "A"), 1);
    assert_int_equal(json_integer_value(json_object_get(J, "rows")), 3);
    json_decref(J);
    free(pu);
    free(ps);
    free(u);
    free(s);
    free(missing);
    free(cap);
}

static void test_broken_previous_run(void **state)
{
    (void)state;
    char *out = cvm_test_path(tmp, "out-broken");
    char *data = cvm_test_path(tmp, "data-b");
    assert_int_equal(cvm_test_system("cp -r '%s/sample_data' '%s'", cvm_test_source_dir(), data), 0);
    char *d1 = run_on(data, out, "");
    char *seg = cvm_test_path(d1, "segments.csv");
    assert_int_equal(unlink(seg), 0);
    sleep(1);
    /* The night still publishes, with an empty comparison and the reason. */
    char *d2 = run_on(data, out, "");
    json_t *S = summary_of(d2);
    const json_t *C = json_object_get(S, "changes");
    assert_non_null(strstr(json_string_value(json_object_get(C, "error")), "segments.csv"));
    char *p = cvm_test_path(d2, "changes.csv");
    char *t = cvm_test_read_file(p, NULL);
    assert_string_equal(t, "customer_id,field,old,new\n");
    free(t);
    free(p);
    json_decref(S);
    /* Switched off: no file, no section. */
    sleep(1);
    char *d3 = run_on(data, out, "--set output.changes.enabled=false");
    S = summary_of(d3);
    assert_null(json_object_get(S, "changes"));
    p = cvm_test_path(d3, "changes.csv");
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    free(p);
    json_decref(S);
    free(seg);
    free(d1);
    free(d2);
    free(d3);
    free(data);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planted_night),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_broken_previous_run),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
