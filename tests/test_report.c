/* report.html: well-formed and self-contained; every figure it takes from
 * summary.json equals the manifest (value and text), the figures it
 * computes equal a brute-force computation from segments.csv, planted CLV,
 * P(alive), churn, cluster and rule data come out as planted; and headless
 * Chromium renders it (DOM dump and a screenshot kept as a CI artifact in
 * $CVM_ARTIFACT_DIR, else ./artifacts of the build directory). Without
 * Chromium the test fails. */
#include "testutil.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "csvtest.h"
#include "publish_report.h"

static char *tmp;
static char *run1, *run2;

static int setup(void **state)
{
    (void)state;
    tmp = cvm_test_mkdtemp("report");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cvm_test_rmtree(tmp);
    free(tmp);
    free(run1);
    free(run2);
    return 0;
}

static char *run_job(const char *out, const char *extra)
{
    char *so = cvm_test_path(tmp, "stdout"), *se = cvm_test_path(tmp, "stderr");
    /* The mining stages are switched off: the planted-data tests add their
     * files themselves, and the no-section assertions hold whatever the
     * sample job enables. */
    int st = cvm_test_system("cd '%s' && '%s' run jobs/nightly.yaml --out '%s' --quiet "
                             "--set kmeans.enabled=false --set cycles.enabled=false "
                             "--set rules.enabled=false %s >'%s' 2>'%s'",
                             cvm_test_source_dir(), cvm_test_binary(), out, extra, so, se);
    if (st != 0) {
        char *e = cvm_test_read_file(se, NULL);
        print_error("cvm run failed (%d): %s\n", st, e ? e : "");
        free(e);
    }
    assert_int_equal(st, 0);
    char *dir = cvm_test_read_file(so, NULL);
    dir[strcspn(dir, "\n")] = '\0';
    free(so);
    free(se);
    return dir;
}

/* ---------------------------------------------------- HTML structure */

static const char *const void_tags[] = {"meta", "br", "hr", "img", "input", "link", "area",
                                        "base", "col", "embed", "source", "track", "wbr"};

/* Every element closed, in order; <style> content skipped; no script. */
static void check_well_formed(const char *h)
{
    char stack[256][32];
    int depth = 0;
    const char *p = h;
    while ((p = strchr(p, '<')) != NULL) {
        if (strncmp(p, "<!DOCTYPE", 9) == 0 || strncmp(p, "<!--", 4) == 0) {
            p = strchr(p, '>');
            assert_non_null(p);
            continue;
        }
        bool closing = p[1] == '/';
        const char *n = p + 1 + closing;
        size_t len = 0;
        while (isalnum((unsigned char)n[len]))
            len++;
        assert_true(len > 0 && len < 32);
        char name[32];
        memcpy(name, n, len);
        name[len] = '\0';
        for (char *c = name; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        const char *end = strchr(n, '>');
        assert_non_null(end);
        /* attribute values are quoted and contain no '>' */
        bool self = end[-1] == '/';
        if (closing) {
            if (depth == 0 || strcmp(stack[depth - 1], name) != 0)
                print_error("</%s> closes <%s>\n", name, depth ? stack[depth - 1] : "(nothing)");
            assert_true(depth > 0 && strcmp(stack[depth - 1], name) == 0);
            depth--;
        } else if (!self) {
            bool v = false;
            for (size_t i = 0; i < sizeof void_tags / sizeof void_tags[0]; i++)
                v |= strcmp(name, void_tags[i]) == 0;
            if (!v) {
                assert_true(depth < 256);
                strcpy(stack[depth++], name);
            }
        }
        p = end + 1;
        if (!closing && strcmp(name, "style") == 0) {
            p = strstr(p, "</style>");
            assert_non_null(p);
        }
    }
    if (depth != 0)
        print_error("<%s> never closed\n", stack[depth - 1]);
    assert_int_equal(depth, 0);
    /* Self-contained: nothing fetched, nothing run. */
    assert_null(strstr(h, "<script"));
    assert_null(strstr(h, "http://"));
    assert_null(strstr(h, "https://"));
    assert_null(strstr(h, "@import"));
    assert_null(strstr(h, " src="));
    assert_null(strstr(h, "<link"));
}

/* ------------------------------------------------- figures and formats */

static void unescape(char *s)
{
    static const char *const ent[][2] = {{"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"},
                                         {"&quot;", "\""}, {"&#39;", "'"}};
    char *w = s;
    for (char *r = s; *r;) {
        bool done = false;
        for (size_t i = 0; i < 5 && !done; i++)
            if (strncmp(r, ent[i][0], strlen(ent[i][0])) == 0) {
                *w++ = ent[i][1][0];
                r += strlen(ent[i][0]);
                done = true;
            }
        if (!done)
            *w++ = *r++;
    }
    *w = '\0';
}

static bool attr(const char *tag, const char *tag_end, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof key, " %s=\"", name);
    const char *a = strstr(tag, key);
    if (a == NULL || a > tag_end)
        return false;
    a += strlen(key);
    size_t n = strcspn(a, "\"");
    assert_true(n < cap);
    memcpy(out, a, n);
    out[n] = '\0';
    unescape(out);
    return true;
}

/* The test's own rendering of a number: thousands commas, fixed decimals. */
static void expect_text(double v, const char *format, char *out, size_t cap)
{
    char t[96];
    int dec = strcmp(format, "int") == 0 ? 0 : strcmp(format, "pct2") == 0 ? 2
            : strcmp(format, "pct") == 0 ? 1 : strcmp(format, "sec") == 0 ? 3 : 2;
    double x = strncmp(format, "pct", 3) == 0 ? v * 100 : v;
    snprintf(t, sizeof t, "%.*f", dec, x);
    if (strcmp(t, "-0") == 0 || strcmp(t, "-0.0") == 0 || strcmp(t, "-0.00") == 0 ||
        strcmp(t, "-0.000") == 0)
        memmove(t, t + 1, strlen(t));
    if (strcmp(format, "sec") == 0) {
        snprintf(out, cap, "%s s", t);
        return;
    }
    char *dot = strchr(t, '.');
    size_t nint = dot ? (size_t)(dot - t) : strlen(t), k = 0, i = 0;
    if (t[0] == '-') {
        out[k++] = '-';
        i = 1;
    }
    for (; i < nint; i++) {
        if (i > (t[0] == '-') && (nint - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = t[i];
    }
    snprintf(out + k, cap - k, "%s%s", dot ? dot : "", strncmp(format, "pct", 3) == 0 ? "%" : "");
}

static const json_t *jptr(const json_t *o, const char *ptr)
{
    char seg[512];
    const char *p = ptr;
    while (o && *p == '/') {
        p++;
        size_t k = 0;
        while (*p && *p != '/') {
            if (*p == '~') {
                seg[k++] = p[1] == '0' ? '~' : '/';
                p += 2;
            } else {
                seg[k++] = *p++;
            }
        }
        seg[k] = '\0';
        o = json_is_array(o) ? json_array_get(o, (size_t)atoi(seg)) : json_object_get(o, seg);
    }
    return o;
}

typedef struct fig {
    char key[512], value[64], format[16], text[128];
    bool calc;
} fig;

/* All data-key / data-calc figures of the page. */
static fig *figures(const char *h, size_t *n)
{
    size_t cap = 256;
    fig *v = calloc(cap, sizeof *v);
    *n = 0;
    for (const char *p = h; (p = strchr(p, '<')) != NULL; p++) {
        const char *end = strchr(p, '>');
        if (end == NULL)
            break;
        fig f;
        memset(&f, 0, sizeof f);
        if (attr(p, end, "data-key", f.key, sizeof f.key))
            f.calc = false;
        else if (attr(p, end, "data-calc", f.key, sizeof f.key))
            f.calc = true;
        else
            continue;
        assert_true(attr(p, end, "data-value", f.value, sizeof f.value));
        assert_true(attr(p, end, "data-format", f.format, sizeof f.format));
        size_t tl = strcspn(end + 1, "<");
        snprintf(f.text, sizeof f.text, "%.*s", (int)tl, end + 1);
        if (*n == cap)
            v = realloc(v, (cap *= 2) * sizeof *v);
        v[(*n)++] = f;
    }
    return v;
}

static const fig *find_fig(const fig *v, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].key, key) == 0)
            return &v[i];
    return NULL;
}

static double calc_value(const fig *v, size_t n, const char *key)
{
    const fig *f = find_fig(v, n, key);
    if (f == NULL)
        print_error("report has no figure %s\n", key);
    assert_non_null(f);
    assert_true(f->calc);
    return strtod(f->value, NULL);
}

/* Each data-key figure equals summary.json, in value and in text. */
static size_t check_keys(const fig *v, size_t n, const json_t *S)
{
    size_t checked = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].calc)
            continue;
        const json_t *j = jptr(S, v[i].key);
        if (!json_is_number(j))
            print_error("%s: not a number in summary.json\n", v[i].key);
        assert_true(json_is_number(j));
        if (json_is_integer(j)) {
            assert_int_equal(strtoll(v[i].value, NULL, 10), json_integer_value(j));
        } else if (strtod(v[i].value, NULL) != json_real_value(j)) {
            print_error("%s: report %s, summary %.17g\n", v[i].key, v[i].value, json_real_value(j));
            fail();
        }
        if (strcmp(v[i].format, "compact") != 0 && strcmp(v[i].format, "num") != 0) {
            char want[128];
            expect_text(json_number_value(j), v[i].format, want, sizeof want);
            if (strcmp(want, v[i].text) != 0)
                print_error("%s: text '%s', expected '%s'\n", v[i].key, v[i].text, want);
            assert_string_equal(v[i].text, want);
        }
        checked++;
    }
    return checked;
}

static void expect_key(const fig *v, size_t n, const char *a, const char *b, const char *c)
{
    char key[512];
    snprintf(key, sizeof key, "/%s/%s%s%s", a, b, c ? "/" : "", c ? c : "");
    if (find_fig(v, n, key) == NULL)
        print_error("report lacks %s\n", key);
    assert_non_null(find_fig(v, n, key));
}

static json_t *summary_of(const char *dir)
{
    char *p = cvm_test_path(dir, "summary.json");
    json_t *S = json_load_file(p, 0, NULL);
    assert_non_null(S);
    free(p);
    return S;
}

static size_t count(const char *h, const char *needle)
{
    size_t n = 0;
    for (const char *p = h; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_figures_match_summary(void **state)
{
    (void)state;
    char *out = cvm_test_path(tmp, "out");
    run1 = run_job(out, "--as-of 2024-12-01");
    sleep(1);
    run2 = run_job(out, "--as-of 2025-03-01");
    json_t *S = summary_of(run2);
    char *p = cvm_test_path(run2, "report.html");
    char *h = cvm_test_read_file(p, NULL);
    free(p);
    assert_non_null(h);
    check_well_formed(h);
    static const char *const sections[] = {"overview", "pareto", "rfm", "segments", "grades",
                                           "grid", "actions", "changes", "rejects", "timings"};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) {
        char id[64];
        snprintf(id, sizeof id, "<section id=\"%s\"", sections[i]);
        if (strstr(h, id) == NULL) {
            snprintf(id, sizeof id, "<section class=\"wide\" id=\"%s\"", sections[i]);
            assert_non_null(strstr(h, id));
        }
    }
    size_t n;
    fig *v = figures(h, &n);
    assert_true(check_keys(v, n, S) >= 60);
    /* Every count the manifest has is on the page. */
    static const char *const groups[][2] = {{"grading", "grades"}, {"grading", "grid_classes"},
                                            {"actions", "counts"}, {"rejects", "by_reason"},
                                            {"rfm", "segments"}};
    for (size_t g = 0; g < 5; g++) {
        const char *k;
        json_t *x;
        json_object_foreach(json_object_get(json_object_get(S, groups[g][0]), groups[g][1]), k, x)
            expect_key(v, n, groups[g][0], groups[g][1], k);
    }
    const char *k;
    json_t *x;
    json_object_foreach(json_object_get(S, "timings"), k, x)
        if (strcmp(k, "report") != 0 && strcmp(k, "postgres") != 0)
            expect_key(v, n, "timings", k, NULL);
    expect_key(v, n, "profit", "total_profit", NULL);
    expect_key(v, n, "changes", "newly_at_risk", "customers");
    /* The grade migration matrix: every cell of the manifest. */
    const char *from;
    json_t *row;
    json_object_foreach(json_object_get(json_object_get(json_object_get(S, "changes"), "migrations"),
                                        "grade"), from, row)
        json_object_foreach(row, k, x) {
            char key[200];
            snprintf(key, sizeof key, "/changes/migrations/grade/%s/%s", from, k);
            assert_non_null(find_fig(v, n, key));
        }

    /* Computed figures against a brute-force pass over segments.csv. */
    tcsv t;
    p = cvm_test_path(run2, "segments.csv");
    tcsv_load(p, &t);
    free(p);
    int cg = tcsv_col(&t, "grade"), cp = tcsv_col(&t, "profit"), cm = tcsv_col(&t, "monetary");
    int cr = tcsv_col(&t, "r_score"), cf = tcsv_col(&t, "f_score"), cc = tcsv_col(&t, "grid_class");
    assert_close(calc_value(v, n, "segments_rows"), (double)t.n_rows, 0, 0, "rows");
    for (char g = 'A'; g <= 'D'; g++) {
        double prof = 0, mon = 0;
        for (size_t r = 0; r < t.n_rows; r++)
            if (t.cell[r][cg][0] == g && t.cell[r][cg][1] == '\0') {
                prof += strtod(t.cell[r][cp], NULL);
                mon += strtod(t.cell[r][cm], NULL);
            }
        char key[64];
        snprintf(key, sizeof key, "grade_profit:%c", g);
        assert_close(calc_value(v, n, key), prof, 1e-9, 1e-6, "%s", key);
        snprintf(key, sizeof key, "grade_monetary:%c", g);
        assert_close(calc_value(v, n, key), mon, 1e-9, 1e-6, "%s", key);
    }
    for (char g = 'A'; g <= 'I'; g++) {
        double prof = 0;
        for (size_t r = 0; r < t.n_rows; r++)
            if (t.cell[r][cc][0] == g)
                prof += strtod(t.cell[r][cp], NULL);
        char key[64];
        snprintf(key, sizeof key, "grid_profit:%c", g);
        assert_close(calc_value(v, n, key), prof, 1e-9, 1e-6, "%s", key);
    }
    long long cells = 0;
    for (int r = 1; r <= 5; r++)
        for (int f = 1; f <= 5; f++) {
            long long want = 0;
            for (size_t i = 0; i < t.n_rows; i++)
                want += atoi(t.cell[i][cr]) == r && atoi(t.cell[i][cf]) == f;
            char key[64];
            snprintf(key, sizeof key, "rfm_count:r%d:f%d", r, f);
            assert_close(calc_value(v, n, key), (double)want, 0, 0, "%s", key);
            cells += want;
        }
    assert_int_equal(cells, json_integer_value(json_object_get(json_object_get(S, "rfm"),
                                                               "scored_customers")));
    /* Without clv, p_alive, clusters or rules, their sections are left out. */
    assert_null(strstr(h, "id=\"clv\""));
    assert_null(strstr(h, "id=\"clusters\""));
    assert_null(strstr(h, "id=\"rules\""));
    tcsv_free(&t);
    free(v);
    free(h);
    json_decref(S);
    free(out);
}

/* A copy of the run with planted model outputs. */
static void test_planted_sections(void **state)
{
    (void)state;
    assert_non_null(run2);
    char *dir = cvm_test_path(tmp, "planted");
    assert_int_equal(cvm_test_system("cp -r '%s' '%s'", run2, dir), 0);
    tcsv t;
    char *p = cvm_test_path(dir, "segments.csv");
    tcsv_load(p, &t);
    /* Rewrite segments.csv with clv = i, p_alive mid-bin, churn high every 5th. */
    char *text = cvm_test_read_file(p, NULL);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    char *line = text, *nl = strchr(line, '\n');
    fprintf(f, "%.*s,clv,p_alive,churn_risk\n", (int)(nl - line), line);
    line = nl + 1;
    for (size_t i = 0; i < t.n_rows; i++) {
        nl = strchr(line, '\n');
        fprintf(f, "%.*s,%zu.00,%.4f,%s\n", (int)(nl - line), line, i, (double)(i % 100) / 100 + 0.005,
                i % 5 == 0 ? "high" : "low");
        line = nl + 1;
    }
    fclose(f);
    free(text);
    free(p);
    size_t N = t.n_rows;
    assert_int_equal(N % 100, 0);
    tcsv_free(&t);
    p = cvm_test_path(dir, "clusters.csv");
    cvm_test_write_file(p, "cluster,label,size,share_customers,share_revenue\n"
                           "1,\"big, loyal\",10,0.1000,0.8000\n2,middle,30,0.3000,0.1500\n"
                           "3,<small>,60,0.6000,0.0500\n");
    free(p);
    p = cvm_test_path(dir, "rules.csv");
    f = fopen(p, "wb");
    fputs("antecedent_ids,antecedent_names,consequent_id,consequent_name,support,confidence,lift,"
          "count,segment\n", f);
    for (int i = 1; i <= 20; i++)
        fprintf(f, "P%d,Product %d,Q%d,Other %d,0.01,0.5,%d.5,%d,(all)\n", i, i, i, i, i, 10 + i);
    fputs("P99,Segment only,Q99,Other,0.01,0.5,99.5,5,champion\n", f);
    fclose(f);
    free(p);
    json_t *S = summary_of(dir);
    char *out = cvm_test_path(dir, "report.html");
    cvm_err err = {0};
    assert_int_equal(cvm_report_write(dir, S, out, &err), CVM_OK);
    char *h = cvm_test_read_file(out, NULL);
    check_well_formed(h);
    size_t n;
    fig *v = figures(h, &n);
    check_keys(v, n, S);
    assert_close(calc_value(v, n, "clv_count"), (double)N, 0, 0, "clv count");
    assert_close(calc_value(v, n, "clv_total"), (double)N * (N - 1) / 2, 1e-12, 0, "clv total");
    assert_close(calc_value(v, n, "clv_median"), (N - 1) / 2.0, 1e-12, 0, "clv median");
    double sum = 0;
    for (int k = 0; k < 20; k++) {
        char key[64];
        snprintf(key, sizeof key, "clv_bin:%d", k);
        sum += calc_value(v, n, key);
        snprintf(key, sizeof key, "p_alive_bin:%d", k);
        /* five planted values in each 0.05-wide bin per hundred customers */
        assert_close(calc_value(v, n, key), (double)N / 20, 0, 0, "%s", key);
    }
    assert_close(sum, (double)N, 0, 0, "clv histogram total");
    assert_close(calc_value(v, n, "churn_risk:high"), (double)N / 5, 0, 0, "high churn");
    assert_close(calc_value(v, n, "churn_risk:low"), (double)N * 4 / 5, 0, 0, "low churn");
    assert_close(calc_value(v, n, "clusters"), 3, 0, 0, "clusters");
    assert_non_null(strstr(h, "big, loyal"));
    assert_non_null(strstr(h, "&lt;small&gt;"));   /* escaped */
    assert_close(calc_value(v, n, "rules"), 20, 0, 0, "rules over all customers");
    assert_close(calc_value(v, n, "rule_lift:1"), 20.5, 0, 0, "best lift");
    assert_close(calc_value(v, n, "rule_lift:15"), 6.5, 0, 0, "15th lift");
    assert_null(find_fig(v, n, "rule_lift:16"));
    assert_null(strstr(h, "Segment only"));
    free(v);
    free(h);
    free(out);
    json_decref(S);
    free(dir);
}

/* --------------------------------------------------------------- Chromium */

static const char *chromium(void)
{
    static const char *const names[] = {"chromium", "chromium-browser", "google-chrome"};
    for (size_t i = 0; i < 3; i++)
        if (cvm_test_system("command -v %s >/dev/null 2>&1", names[i]) == 0)
            return names[i];
    return NULL;
}

static const char *artifact_dir(void)
{
    static char dir[4096];
    const char *env = getenv("CVM_ARTIFACT_DIR");
    if (env && *env)
        snprintf(dir, sizeof dir, "%s", env);
    else if (getcwd(dir, sizeof dir - 16) != NULL)
        strcat(dir, "/artifacts");
    else
        snprintf(dir, sizeof dir, "%s/artifacts", tmp);
    if (cvm_test_system("mkdir -p '%s'", dir) != 0) {
        snprintf(dir, sizeof dir, "%s/artifacts", tmp);
        assert_int_equal(cvm_test_system("mkdir -p '%s'", dir), 0);
    }
    return dir;
}

static int browse(const char *browser, const char *what, const char *url, const char *out,
                  const char *log)
{
    char *profile = cvm_test_mkdtemp("chromium");
    int st = cvm_test_system(
        "timeout 180 %s --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
        "--disable-background-networking --disable-component-update --disable-sync "
        "--hide-scrollbars --user-data-dir='%s' %s '%s' >'%s' 2>'%s'", browser, profile, what,
        url, out, log);
    cvm_test_rmtree(profile);
    free(profile);
    return st;
}

static void check_png(const char *path, unsigned w, unsigned h)
{
    size_t len;
    unsigned char *b = (unsigned char *)cvm_test_read_file(path, &len);
    if (b == NULL)
        print_error("no screenshot at %s\n", path);
    assert_non_null(b);
    assert_true(len > 33);
    assert_memory_equal(b, "\x89PNG\r\n\x1a\n", 8);
    assert_memory_equal(b + 12, "IHDR", 4);
    unsigned W = (unsigned)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    unsigned H = (unsigned)b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
    assert_int_equal(W, w);
    assert_int_equal(H, h);
    /* A blank page compresses to a few KB; charts and tables do not. */
    if (len < 60000)
        print_error("%s: only %zu bytes, the page looks empty\n", path, len);
    assert_true(len >= 60000);
    free(b);
}

static void shoot(const char *browser, const char *report, const char *png)
{
    char url[4400], log[4400], what[4400], *sink = cvm_test_path(tmp, "shot.out");
    snprintf(url, sizeof url, "file://%s", report);
    snprintf(log, sizeof log, "%s/chromium-shot.log", tmp);
    snprintf(what, sizeof what, "--window-size=1280,2400 --screenshot='%s'", png);
    int st = browse(browser, what, url, sink, log);
    if (st != 0) {
        char *l = cvm_test_read_file(log, NULL);
        print_error("chromium --screenshot failed (%d): %s\n", st, l ? l : "");
        free(l);
    }
    assert_int_equal(st, 0);
    check_png(png, 1280, 2400);
    print_message("screenshot: %s\n", png);
    free(sink);
}

static void test_renders_in_chromium(void **state)
{
    (void)state;
    assert_non_null(run2);
    const char *browser = chromium();
    if (browser == NULL) {
        print_error("headless Chromium is needed to check report.html: install Debian's chromium "
                    "package (scripts/install-deps.sh)\n");
        fail();
    }
    char *report = cvm_test_path(run2, "report.html");
    char *html = cvm_test_read_file(report, NULL);
    char url[4400], *dom_path = cvm_test_path(tmp, "dom.html"), *log = cvm_test_path(tmp, "dom.log");
    snprintf(url, sizeof url, "file://%s", report);
    int st = browse(browser, "--dump-dom", url, dom_path, log);
    if (st != 0) {
        char *l = cvm_test_read_file(log, NULL);
        print_error("chromium --dump-dom failed (%d): %s\n", st, l ? l : "");
        free(l);
    }
    assert_int_equal(st, 0);
    char *dom = cvm_test_read_file(dom_path, NULL);
    assert_non_null(dom);
    /* The browser built the whole page: every section and chart, up to the
     * footer, and no "page not found" or file error page instead. */
    assert_non_null(strstr(dom, "id=\"end\""));
    assert_non_null(strstr(dom, "Customer value report"));
    assert_int_equal(count(dom, "<section"), count(html, "<section"));
    assert_int_equal(count(dom, "<svg"), count(html, "<svg"));
    assert_int_equal(count(dom, "<rect"), count(html, "<rect"));
    assert_true(count(html, "<section") >= 10);
    assert_null(strstr(dom, "ERR_FILE_NOT_FOUND"));

    const char *art = artifact_dir();
    char png[4400];
    snprintf(png, sizeof png, "%s/report.png", art);
    shoot(browser, report, png);
    /* The planted copy, with every optional section. */
    char *planted = cvm_test_path(tmp, "planted/report.html");
    struct stat sb;
    if (stat(planted, &sb) == 0) {
        snprintf(png, sizeof png, "%s/report-all-sections.png", art);
        shoot(browser, planted, png);
    }
    free(planted);
    free(dom);
    free(html);
    free(dom_path);
    free(log);
    free(report);
}

static void test_switched_off(void **state)
{
    (void)state;
    char *out = cvm_test_path(tmp, "off");
    char *dir = run_job(out, "--set output.report=false");
    char *p = cvm_test_path(dir, "report.html");
    struct stat st;
    assert_int_not_equal(stat(p, &st), 0);
    free(p);
    free(dir);
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_figures_match_summary),
        cmocka_unit_test(test_planted_sections),
        cmocka_unit_test(test_renders_in_chromium),
        cmocka_unit_test(test_switched_off),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
