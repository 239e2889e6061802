/* docs/outputs.md cannot drift from the code: the column table of
 * segments.csv between its markers must be exactly what
 * scripts/gen-outputs-doc.py prints for a run of the sample job, every reject
 * reason of engine/rejects.h must be documented, and so must every key of
 * summary.json (but for the maps whose keys are data: segment names, grade
 * letters, action codes, the config). */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rejects.h"

#define BEGIN "<!-- columns:begin -->\n"
#define END "<!-- columns:end -->"

static char *dir;      /* scratch directory of the test */
static char run[4200]; /* the published run directory of the sample job */
static char *outputs_md;

static char *src_path(const char *rel)
{
    return cvm_test_path(cvm_test_source_dir(), rel);
}

static int setup(void **state)
{
    (void)state;
    dir = cvm_test_mkdtemp("docs");
    /* The sample job: every optional input, so every column of segments.csv. */
    int rc = cvm_test_system("'%s' run '%s/jobs/nightly.yaml' --out '%s/out' --quiet "
                             "> '%s/run.txt' 2> '%s/stderr.txt'",
                             cvm_test_binary(), cvm_test_source_dir(), dir, dir, dir);
    if (rc != 0) {
        print_error("cvm run jobs/nightly.yaml exited with %d (stderr in %s/stderr.txt)\n", rc,
                    dir);
        return -1;
    }
    char *p = cvm_test_path(dir, "run.txt");
    char *s = cvm_test_read_file(p, NULL);
    free(p);
    if (s == NULL)
        return -1;
    s[strcspn(s, "\r\n")] = '\0';
    snprintf(run, sizeof run, "%s", s);
    free(s);
    p = src_path("docs/outputs.md");
    outputs_md = cvm_test_read_file(p, NULL);
    if (outputs_md == NULL)
        print_error("%s is missing\n", p);
    free(p);
    return outputs_md && run[0] ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cvm_test_rmtree(dir);
    free(dir);
    free(outputs_md);
    return 0;
}

static void test_column_table_is_generated(void **state)
{
    (void)state;
    assert_int_equal(cvm_test_system("python3 '%s/scripts/gen-outputs-doc.py' '%s' > '%s/table.md'",
                                     cvm_test_source_dir(), run, dir),
                     0);
    char *p = cvm_test_path(dir, "table.md");
    char *want = cvm_test_read_file(p, NULL);
    free(p);
    assert_non_null(want);
    assert_true(strlen(want) > 100);

    const char *b = strstr(outputs_md, BEGIN);
    if (b == NULL)
        fail_msg("docs/outputs.md lacks the line %s", BEGIN);
    b += strlen(BEGIN);
    const char *e = strstr(b, END);
    if (e == NULL)
        fail_msg("docs/outputs.md lacks the line %s after the begin marker", END);
    size_t n = (size_t)(e - b);
    if (n != strlen(want) || memcmp(b, want, n) != 0) {
        p = cvm_test_path(dir, "doc-table.md");
        char *have = malloc(n + 1);
        assert_non_null(have);
        memcpy(have, b, n);
        have[n] = '\0';
        cvm_test_write_file(p, have);
        free(have);
        cvm_test_system("diff -u '%s' '%s/table.md' >&2", p, dir);
        free(p);
        free(want);
        fail_msg("the column table in docs/outputs.md is stale; regenerate it with\n"
                 "  scripts/gen-outputs-doc.py \"$(cvm run jobs/nightly.yaml --out /tmp/o)\" "
                 "--update docs/outputs.md");
    }
    free(want);
}

/* "`name`" must occur in docs/outputs.md. */
static void expect_documented(const char *what, const char *name)
{
    char quoted[300];
    snprintf(quoted, sizeof quoted, "`%s`", name);
    if (strstr(outputs_md, quoted) == NULL)
        fail_msg("docs/outputs.md does not document %s %s", what, quoted);
}

static void test_every_reject_reason_is_documented(void **state)
{
    (void)state;
    for (int i = 0; i < CVM_REJECT_COUNT; i++)
        expect_documented("the reject reason", cvm_reject_name((cvm_reject_reason)i));
}

static void expect_keys(json_t *obj, const char *where)
{
    char what[200];
    snprintf(what, sizeof what, "the summary.json key (in %s)", where);
    if (!json_is_object(obj))
        fail_msg("summary.json: %s is not an object", where);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
        expect_documented(what, key);
}

static void test_every_summary_key_is_documented(void **state)
{
    (void)state;
    char *p = cvm_test_path(run, "summary.json");
    json_error_t je;
    json_t *s = json_load_file(p, 0, &je);
    if (s == NULL)
        fail_msg("%s:%d: %s", p, je.line, je.text);
    free(p);
    expect_keys(s, "the top level");
    /* Objects whose keys are fixed names (not data). */
    static const char *const fixed[] = {"timings", "checks", "profit", "rfm", "grading",
                                        "actions", "rejects", "rows"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        expect_keys(json_object_get(s, fixed[i]), fixed[i]);
    expect_keys(json_object_get(json_object_get(s, "rfm"), "cutoffs"), "rfm.cutoffs");
    json_t *inputs = json_object_get(s, "inputs");
    assert_true(json_is_array(inputs) && json_array_size(inputs) > 0);
    expect_keys(json_array_get(inputs, 0), "inputs[]");
    json_t *seg = json_object_get(json_object_get(s, "outputs"), "segments.csv");
    expect_keys(seg, "outputs[\"segments.csv\"]");
    expect_keys(json_array_get(json_object_get(seg, "columns"), 0), "outputs.columns[]");
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_column_table_is_generated),
        cmocka_unit_test(test_every_reject_reason_is_documented),
        cmocka_unit_test(test_every_summary_key_is_documented),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
