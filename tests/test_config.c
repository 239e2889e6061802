#include "testutil.h"

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "alloc.h"
#include "config.h"

/* The fuzz target's schema and load path, so the seed corpus replays through
 * exactly the code the fuzzer runs. */
#include "fuzz/fuzz_config.c"

#define SCHEMA fuzz_schema, FUZZ_SCHEMA_LEN

static cvm_config *load_ok(const char *yaml)
{
    cvm_config *c = cvm_config_new(SCHEMA);
    assert_non_null(c);
    cvm_err err = {0};
    int rc = cvm_config_load_buffer(c, "t.yaml", yaml, strlen(yaml), &err);
    if (rc != CVM_OK)
        print_error("unexpected error: %s\n", err.msg);
    assert_int_equal(rc, CVM_OK);
    return c;
}

/* Loads yaml into a fresh config and expects exactly this error message. */
static void load_err(const char *yaml, const char *msg)
{
    cvm_config *c = cvm_config_new(SCHEMA);
    assert_non_null(c);
    cvm_err err = {0};
    int rc = cvm_config_load_buffer(c, "t.yaml", yaml, strlen(yaml), &err);
    if (rc != CVM_ECONFIG)
        print_error("for YAML:\n%s\nstatus %d: %s\n", yaml, rc, err.msg);
    assert_int_equal(rc, CVM_ECONFIG);
    if (strcmp(err.msg, msg) != 0)
        print_error("for YAML:\n%s\n", yaml);
    assert_string_equal(err.msg, msg);
    cvm_config_free(c);
}

static void set_ok(cvm_config *c, const char *assignment)
{
    cvm_err err = {0};
    int rc = cvm_config_set(c, assignment, &err);
    if (rc != CVM_OK)
        print_error("--set %s: %s\n", assignment, err.msg);
    assert_int_equal(rc, CVM_OK);
}

static void set_err(cvm_config *c, const char *assignment, const char *msg)
{
    cvm_err err = {0};
    assert_int_equal(cvm_config_set(c, assignment, &err), CVM_ECONFIG);
    assert_string_equal(err.msg, msg);
}

static char *write_yaml(const cvm_config *c, bool docs)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(cvm_config_write_yaml(c, f, docs), CVM_OK);
    assert_int_equal(fclose(f), 0);
    return text;
}

/* Two configs hold the same values when their JSON forms are equal. */
static void assert_same_values(const cvm_config *a, const cvm_config *b)
{
    json_t *ja = cvm_config_to_json(a), *jb = cvm_config_to_json(b);
    assert_non_null(ja);
    assert_non_null(jb);
    if (!json_equal(ja, jb)) {
        char *sa = json_dumps(ja, JSON_INDENT(1)), *sb = json_dumps(jb, JSON_INDENT(1));
        print_error("configs differ:\n%s\n----\n%s\n", sa, sb);
        free(sa);
        free(sb);
    }
    assert_true(json_equal(ja, jb));
    json_decref(ja);
    json_decref(jb);
}

/* ------------------------------------------------------------------ */

static void test_defaults(void **state)
{
    (void)state;
    cvm_config *c = cvm_config_new(SCHEMA);
    assert_non_null(c);
    assert_string_equal(cvm_config_str(c, "input.path"), "data/tx.csv");
    assert_true(cvm_config_is_set(c, "input.since"));
    assert_string_equal(cvm_config_str(c, "input.since"), "");
    assert_false(cvm_config_is_set(c, "input.until"));
    assert_string_equal(cvm_config_str(c, "input.until"), "");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 3);
    assert_string_equal(cvm_config_list_at(c, "input.columns", 0), "id");
    assert_string_equal(cvm_config_list_at(c, "input.columns", 1), "date");
    assert_string_equal(cvm_config_list_at(c, "input.columns", 2), "amount");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 5);
    assert_string_equal(cvm_config_str(c, "rfm.method"), "quantile");
    assert_true(cvm_config_double(c, "rfm.weight") == 0.5);
    assert_false(cvm_config_bool(c, "rfm.verbose"));
    assert_false(cvm_config_is_set(c, "rfm.seed"));
    assert_int_equal(cvm_config_int(c, "rfm.seed"), 0);
    assert_int_equal(cvm_config_int(c, "model.tree.depth"), 3);
    assert_false(cvm_config_is_set(c, "model.tree.title"));
    assert_int_equal(cvm_config_map_len(c, "cost.per_type"), 2);
    assert_string_equal(cvm_config_map_name(c, "cost.per_type", 0), "hospital");
    assert_true(cvm_config_map_value(c, "cost.per_type", 0) == 120);
    double v = -1;
    assert_true(cvm_config_map_get(c, "cost.per_type", "doctor", &v));
    assert_true(v == 40);
    v = -1;
    assert_false(cvm_config_map_get(c, "cost.per_type", "nurse", &v));
    assert_true(v == -1);
    assert_int_equal(cvm_config_table_rows(c, "clean.rules"), 1);
    assert_string_equal(cvm_config_table_cell(c, "clean.rules", 0, "when"), "class=G");
    assert_string_equal(cvm_config_table_cell(c, "clean.rules", 0, "action"), "FIX");
    assert_null(cvm_config_table_cell(c, "clean.rules", 0, "text"));
    assert_int_equal(cvm_config_table_row_line(c, "clean.rules", 0), 0);
    assert_false(cvm_config_is_set(c, "clean.extra"));
    assert_int_equal(cvm_config_table_rows(c, "clean.extra"), 0);
    for (size_t i = 0; i < FUZZ_SCHEMA_LEN; i++)
        assert_int_equal(cvm_config_origin(c, fuzz_schema[i].name), CVM_CFG_FROM_DEFAULT);
    assert_string_equal(cvm_config_dir(c), ".");
    assert_null(cvm_config_path(c));
    cvm_err err = {0};
    assert_int_equal(cvm_config_check(c, &err), CVM_OK);
    cvm_config_free(c);
    cvm_config_free(NULL);
}

static void test_load_every_type(void **state)
{
    (void)state;
    const char *yaml =
        "# nightly job\n"                   /* 1 */
        "input:            # the inputs\n"  /* 2 */
        "  path: \"in/tx.csv\"\n"           /* 3 */
        "  since: 2024-02-29   # leap day\n" /* 4 */
        "  until: 2024-12-31\n"             /* 5 */
        "  columns:\n"                      /* 6 */
        "    - a\n"                         /* 7 */
        "    - 'b c'   # quoted\n"          /* 8 */
        "rfm:\n"                            /* 9 */
        "  bins: 7\n"                       /* 10 */
        "  method: breaks\n"                /* 11 */
        "  weight: 1e-1\n"                  /* 12 */
        "  verbose: On\n"                   /* 13 */
        "  seed: -3\n"                      /* 14 */
        "model:\n"                          /* 15 */
        "  tree:\n"                         /* 16 */
        "    # a comment between keys\n"    /* 17 */
        "    depth: 20\n"                   /* 18 */
        "    title: Deep tree # not part of it\n" /* 19 */
        "cost:\n"                           /* 20 */
        "  per_type:\n"                     /* 21 */
        "    hospital: 150\n"               /* 22 */
        "    clinic: 7.5\n"                 /* 23 */
        "clean:\n"                          /* 24 */
        "  rules:\n"                        /* 25 */
        "    - when: \"class=G\"\n"         /* 26 */
        "      action: FIX\n"               /* 27 */
        "    - {when: x, text: hello}\n";   /* 28 */
    cvm_config *c = load_ok(yaml);
    assert_string_equal(cvm_config_str(c, "input.path"), "in/tx.csv");
    assert_string_equal(cvm_config_str(c, "input.since"), "2024-02-29");
    assert_string_equal(cvm_config_str(c, "input.until"), "2024-12-31");
    assert_true(cvm_config_is_set(c, "input.until"));
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 2);
    assert_string_equal(cvm_config_list_at(c, "input.columns", 0), "a");
    assert_string_equal(cvm_config_list_at(c, "input.columns", 1), "b c");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 7);
    assert_string_equal(cvm_config_str(c, "rfm.method"), "breaks");
    assert_true(cvm_config_double(c, "rfm.weight") == 0.1);
    assert_true(cvm_config_bool(c, "rfm.verbose"));
    assert_int_equal(cvm_config_int(c, "rfm.seed"), -3);
    assert_int_equal(cvm_config_int(c, "model.tree.depth"), 20);
    assert_string_equal(cvm_config_str(c, "model.tree.title"), "Deep tree");
    /* A MAP from a file replaces the default map as a whole. */
    assert_int_equal(cvm_config_map_len(c, "cost.per_type"), 2);
    assert_string_equal(cvm_config_map_name(c, "cost.per_type", 1), "clinic");
    assert_true(cvm_config_map_value(c, "cost.per_type", 1) == 7.5);
    assert_false(cvm_config_map_get(c, "cost.per_type", "doctor", NULL));
    assert_int_equal(cvm_config_table_rows(c, "clean.rules"), 2);
    assert_string_equal(cvm_config_table_cell(c, "clean.rules", 0, "when"), "class=G");
    assert_string_equal(cvm_config_table_cell(c, "clean.rules", 0, "action"), "FIX");
    assert_string_equal(cvm_config_table_cell(c, "clean.rules", 1, "text"), "hello");
    assert_null(cvm_config_table_cell(c, "clean.rules", 1, "action"));
    assert_int_equal(cvm_config_table_row_line(c, "clean.rules", 0), 26);
    assert_int_equal(cvm_config_table_row_line(c, "clean.rules", 1), 28);
    assert_int_equal(cvm_config_origin(c, "rfm.bins"), CVM_CFG_FROM_FILE);
    assert_int_equal(cvm_config_origin(c, "clean.rules"), CVM_CFG_FROM_FILE);
    assert_int_equal(cvm_config_origin(c, "clean.extra"), CVM_CFG_FROM_DEFAULT);
    cvm_config_free(c);
}

static void test_bool_values(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        bool v;
    } ok[] = {{"true", true}, {"False", false}, {"YES", true}, {"no", false},
              {"on", true},   {"OFF", false},   {"1", true},   {"0", false},
              {"\"yes\"", true}};
    char yaml[128];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(yaml, sizeof yaml, "rfm:\n  verbose: %s\n", ok[i].text);
        cvm_config *c = load_ok(yaml);
        assert_int_equal(cvm_config_bool(c, "rfm.verbose"), ok[i].v);
        cvm_config_free(c);
    }
    load_err("rfm:\n  verbose: maybe\n",
             "t.yaml:2:12: 'rfm.verbose' expects a boolean (true/false), got 'maybe'");
    load_err("rfm:\n  verbose: 2\n",
             "t.yaml:2:12: 'rfm.verbose' expects a boolean (true/false), got '2'");
}

static void test_int_parsing(void **state)
{
    (void)state;
    cvm_config *c = load_ok("rfm:\n  bins: \"4\"\n  seed: 9223372036854775807\n");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 4);
    assert_true(cvm_config_int(c, "rfm.seed") == LONG_MAX);
    cvm_config_free(c);
    c = load_ok("rfm: {bins: +10, seed: -9223372036854775808}");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 10);
    assert_true(cvm_config_int(c, "rfm.seed") == LONG_MIN);
    cvm_config_free(c);
    load_err("rfm:\n  bins: abc\n", "t.yaml:2:9: 'rfm.bins' expects an integer, got 'abc'");
    load_err("rfm:\n  bins: 5x\n", "t.yaml:2:9: 'rfm.bins' expects an integer, got '5x'");
    load_err("rfm:\n  bins: 5.0\n", "t.yaml:2:9: 'rfm.bins' expects an integer, got '5.0'");
    load_err("rfm:\n  bins: \" 5\"\n",
             "t.yaml:2:9: 'rfm.bins' expects an integer, got ' 5'");
    load_err("rfm:\n  seed: 9223372036854775808\n",
             "t.yaml:2:9: 'rfm.seed' expects an integer, got '9223372036854775808'");
    load_err("rfm:\n  bins: 99\n", "t.yaml:2:9: 'rfm.bins' = 99 is out of range [2, 10]");
    load_err("rfm:\n  bins: 1\n", "t.yaml:2:9: 'rfm.bins' = 1 is out of range [2, 10]");
}

static void test_double_parsing(void **state)
{
    (void)state;
    cvm_config *c = load_ok("rfm:\n  weight: .25\n");
    assert_true(cvm_config_double(c, "rfm.weight") == 0.25);
    cvm_config_free(c);
    c = load_ok("rfm:\n  weight: '1'\n");
    assert_true(cvm_config_double(c, "rfm.weight") == 1.0);
    cvm_config_free(c);
    static const char *const bad[] = {"nan", ".inf", "inf", "-Infinity", "1e999",
                                      "0x1p-2", "0.5x", "1e", "."};
    char yaml[128], msg[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(yaml, sizeof yaml, "rfm:\n  weight: %s\n", bad[i]);
        snprintf(msg, sizeof msg, "t.yaml:2:11: 'rfm.weight' expects a number, got '%s'",
                 bad[i]);
        load_err(yaml, msg);
    }
    load_err("rfm:\n  weight: 1.5\n",
             "t.yaml:2:11: 'rfm.weight' = 1.5 is out of range [0, 1]");
}

static void test_dates(void **state)
{
    (void)state;
    static const char *const good[] = {"2024-02-29", "2000-02-29", "2023-12-31",
                                       "0001-01-01", "2023-04-30"};
    char yaml[128], msg[256];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(yaml, sizeof yaml, "input:\n  since: %s\n", good[i]);
        cvm_config *c = load_ok(yaml);
        assert_string_equal(cvm_config_str(c, "input.since"), good[i]);
        cvm_config_free(c);
    }
    cvm_config *c = load_ok("input:\n  since: \"\"\n");
    assert_string_equal(cvm_config_str(c, "input.since"), "");
    assert_true(cvm_config_is_set(c, "input.since"));
    cvm_config_free(c);
    static const char *const bad[] = {"2023-02-29", "1900-02-29", "2024-04-31",
                                      "2024-13-01", "2024-00-10", "2024-01-00",
                                      "2024-1-01",  "20240101",   "2024-01-01x",
                                      "0000-01-01", "2024/01/01", "yesterday"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(yaml, sizeof yaml, "input:\n  since: %s\n", bad[i]);
        snprintf(msg, sizeof msg,
                 "t.yaml:2:10: 'input.since' expects a date YYYY-MM-DD, got '%s'", bad[i]);
        load_err(yaml, msg);
    }
}

static void test_enum_and_strings(void **state)
{
    (void)state;
    load_err("rfm: {method: median}",
             "t.yaml:1:15: 'rfm.method' must be one of quantile|breaks, got 'median'");
    load_err("rfm: {method: Breaks}",
             "t.yaml:1:15: 'rfm.method' must be one of quantile|breaks, got 'Breaks'");
    load_err("rfm: {method: ''}",
             "t.yaml:1:15: 'rfm.method' must be one of quantile|breaks, got ''");
    /* Quoted scalars are strings, even when they look like null or numbers. */
    cvm_config *c = load_ok("model:\n  tree:\n    title: \"~\"\ninput:\n  path: 12\n");
    assert_true(cvm_config_is_set(c, "model.tree.title"));
    assert_string_equal(cvm_config_str(c, "model.tree.title"), "~");
    assert_string_equal(cvm_config_str(c, "input.path"), "12");
    cvm_config_free(c);
    c = load_ok("input:\n  path: ''\n");
    assert_string_equal(cvm_config_str(c, "input.path"), "");
    cvm_config_free(c);
    load_err("input:\n  path: \"a\\0b\"\n", "t.yaml:2:9: 'input.path' contains a NUL character");
}

static void test_lists(void **state)
{
    (void)state;
    cvm_config *c = load_ok("input:\n  columns: \" x , y,,z ,\"\n");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 3);
    assert_string_equal(cvm_config_list_at(c, "input.columns", 0), "x");
    assert_string_equal(cvm_config_list_at(c, "input.columns", 1), "y");
    assert_string_equal(cvm_config_list_at(c, "input.columns", 2), "z");
    cvm_config_free(c);
    c = load_ok("input:\n  columns: ''\n");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 0);
    assert_true(cvm_config_is_set(c, "input.columns"));
    cvm_config_free(c);
    c = load_ok("input:\n  columns: single\n");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 1);
    assert_string_equal(cvm_config_list_at(c, "input.columns", 0), "single");
    cvm_config_free(c);
    c = load_ok("input:\n  columns: [\"a,b\", 3, '']\n");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 3);
    assert_string_equal(cvm_config_list_at(c, "input.columns", 0), "a,b");
    assert_string_equal(cvm_config_list_at(c, "input.columns", 1), "3");
    assert_string_equal(cvm_config_list_at(c, "input.columns", 2), "");
    cvm_config_free(c);
    c = load_ok("input:\n  columns: []\n");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 0);
    cvm_config_free(c);
    load_err("input:\n  columns: [a, {b: 1}]\n",
             "t.yaml:2:16: 'input.columns' item 2 expects a scalar, got a mapping");
    load_err("input:\n  columns:\n    - a\n    -\n",
             "t.yaml:4:6: 'input.columns' item 2 expects a scalar, got null");
    load_err("input:\n  columns: {a: 1}\n",
             "t.yaml:2:12: 'input.columns' expects a list, got a mapping");
}

static void test_maps(void **state)
{
    (void)state;
    cvm_config *c = load_ok("cost:\n  per_type: {\"a.b\": 1e3, z: '0'}\n");
    assert_int_equal(cvm_config_map_len(c, "cost.per_type"), 2);
    double v = 0;
    assert_true(cvm_config_map_get(c, "cost.per_type", "a.b", &v));
    assert_true(v == 1000);
    assert_true(cvm_config_map_get(c, "cost.per_type", "z", &v));
    assert_true(v == 0);
    cvm_config_free(c);
    c = load_ok("cost:\n  per_type: {}\n");
    assert_int_equal(cvm_config_map_len(c, "cost.per_type"), 0);
    assert_true(cvm_config_is_set(c, "cost.per_type"));
    cvm_config_free(c);
    load_err("cost:\n  per_type: {hospital: abc}\n",
             "t.yaml:2:24: 'cost.per_type.hospital' expects a number, got 'abc'");
    load_err("cost:\n  per_type: {hospital: -5}\n",
             "t.yaml:2:24: 'cost.per_type.hospital' = -5 is out of range [0, 1000000]");
    load_err("cost:\n  per_type: {hospital: [1]}\n",
             "t.yaml:2:24: 'cost.per_type.hospital' expects a number, got a sequence");
    load_err("cost:\n  per_type: {hospital: ~}\n",
             "t.yaml:2:24: 'cost.per_type.hospital' expects a number, got null");
    load_err("cost:\n  per_type: {a: 1, a: 2}\n",
             "t.yaml:2:20: duplicate key 'cost.per_type.a' (first at line 2)");
    load_err("cost:\n  per_type: [1]\n",
             "t.yaml:2:13: 'cost.per_type' expects a mapping of names to numbers, got a "
             "sequence");
    load_err("cost:\n  per_type: 5\n",
             "t.yaml:2:13: 'cost.per_type' expects a mapping of names to numbers, got '5'");
}

static void test_tables(void **state)
{
    (void)state;
    cvm_config *c = load_ok("clean:\n"
                            "  rules: []\n"
                            "  extra:\n"
                            "    - {anything: 1, goes: ~}\n"
                            "    - {}\n");
    assert_int_equal(cvm_config_table_rows(c, "clean.rules"), 0);
    assert_true(cvm_config_is_set(c, "clean.extra"));
    assert_int_equal(cvm_config_table_rows(c, "clean.extra"), 2);
    assert_string_equal(cvm_config_table_cell(c, "clean.extra", 0, "anything"), "1");
    assert_null(cvm_config_table_cell(c, "clean.extra", 0, "goes")); /* null = absent */
    assert_null(cvm_config_table_cell(c, "clean.extra", 1, "anything"));
    assert_int_equal(cvm_config_table_row_line(c, "clean.extra", 1), 5);
    cvm_config_free(c);
    load_err("clean:\n  rules:\n    - {when: x, acton: y}\n",
             "t.yaml:3:17: 'clean.rules' row 1 has unknown column 'acton' (did you mean "
             "'action'?)");
    load_err("clean:\n  rules:\n    - {when: x}\n    - {zzzzzz: y}\n",
             "t.yaml:4:8: 'clean.rules' row 2 has unknown column 'zzzzzz' (allowed: "
             "when|action|text)");
    load_err("clean:\n  rules:\n    - {when: [a]}\n",
             "t.yaml:3:14: 'clean.rules' row 1 column 'when' expects a scalar, got a "
             "sequence");
    load_err("clean:\n  rules:\n    - {when: a, when: b}\n",
             "t.yaml:3:17: 'clean.rules' row 1 has duplicate column 'when'");
    load_err("clean:\n  rules: [x]\n",
             "t.yaml:2:11: 'clean.rules' row 1 expects a mapping, got 'x'");
    load_err("clean:\n  rules: abc\n",
             "t.yaml:2:10: 'clean.rules' expects a sequence of mappings, got 'abc'");
    load_err("clean:\n  rules:\n    - {[a]: b}\n",
             "t.yaml:3:8: 'clean.rules' row 1: column names must be scalars, got a "
             "sequence");
}

static void test_nulls(void **state)
{
    (void)state;
    cvm_config *c = cvm_config_new(SCHEMA);
    assert_non_null(c);
    set_ok(c, "rfm.seed=4");
    assert_true(cvm_config_is_set(c, "rfm.seed"));
    cvm_err err = {0};
    const char *yaml = "rfm:\n  seed: null\ninput:\n  until:\nclean:\n  extra: ~\n";
    assert_int_equal(cvm_config_load_buffer(c, "t.yaml", yaml, strlen(yaml), &err),
                     CVM_OK);
    assert_false(cvm_config_is_set(c, "rfm.seed"));
    assert_int_equal(cvm_config_origin(c, "rfm.seed"), CVM_CFG_FROM_FILE);
    assert_false(cvm_config_is_set(c, "input.until"));
    assert_false(cvm_config_is_set(c, "clean.extra"));
    cvm_config_free(c);
    load_err("rfm:\n  bins:\n", "t.yaml:2:8: 'rfm.bins' expects an integer, got null");
    load_err("rfm:\n  bins: ~\n", "t.yaml:2:9: 'rfm.bins' expects an integer, got null");
    load_err("input:\n  path: NULL\n", "t.yaml:2:9: 'input.path' expects a string, got null");
    load_err("input:\n  columns: Null\n",
             "t.yaml:2:12: 'input.columns' expects a list, got null");
    load_err("rfm: {method: ~}",
             "t.yaml:1:15: 'rfm.method' must be one of quantile|breaks, got null");
    /* An empty section is allowed (everything under it commented out). */
    c = load_ok("rfm:\n  # bins: 4\nmodel:\n  tree:\n");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 5);
    cvm_config_free(c);
    c = load_ok("");
    cvm_config_free(c);
    c = load_ok("~\n");
    cvm_config_free(c);
    c = load_ok("# only a comment\n---\n");
    cvm_config_free(c);
}

static void test_structure_errors(void **state)
{
    (void)state;
    load_err("rfm: 5\n", "t.yaml:1:6: 'rfm' is a section and expects a mapping, got '5'");
    load_err("model.tree: [1]\n",
             "t.yaml:1:13: 'model.tree' is a section and expects a mapping, got a "
             "sequence");
    load_err("rfm:\n  bins: {a: 1}\n",
             "t.yaml:2:9: 'rfm.bins' expects an integer, got a mapping");
    load_err("rfm:\n  bins: [1]\n", "t.yaml:2:9: 'rfm.bins' expects an integer, got a sequence");
    load_err("- a\n", "t.yaml:1:1: the top level must be a mapping of sections, got a sequence");
    load_err("hello\n", "t.yaml:1:1: the top level must be a mapping of sections, got 'hello'");
    load_err("? [a]\n: 1\n", "t.yaml:1:3: keys must be names, got a sequence");
    load_err("rfm:\n  ~: 1\n", "t.yaml:2:3: keys must be names, got null");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    load_err("rfm:\n  binz: 5\n",
             "t.yaml:2:3: unknown key 'rfm.binz' (did you mean 'rfm.bins'?)");
    load_err("rfm:\n  bnis: 5\n",
             "t.yaml:2:3: unknown key 'rfm.bnis' (did you mean 'rfm.bins'?)");
    load_err("rfm:\n  colour: 5\n", "t.yaml:2:3: unknown key 'rfm.colour'");
    load_err("# header\nrfmx:\n  bins: 5\n",
             "t.yaml:2:1: unknown section 'rfmx' (did you mean 'rfm'?)");
    load_err("zzz:\n  a: 1\n", "t.yaml:1:1: unknown section 'zzz'");
    load_err("model:\n  tree:\n    dept: 4\n",
             "t.yaml:3:5: unknown key 'model.tree.dept' (did you mean 'model.tree.depth'?)");
    load_err("model:\n  trees:\n    depth: 4\n",
             "t.yaml:2:3: unknown section 'model.trees' (did you mean 'model.tree'?)");
    load_err("bins: 5\n", "t.yaml:1:1: unknown key 'bins'");
}

static void test_duplicates(void **state)
{
    (void)state;
    load_err("rfm:\n  bins: 5\n  bins: 6\n",
             "t.yaml:3:3: duplicate key 'rfm.bins' (first at line 2)");
    load_err("rfm:\n  bins: 5\nrfm.bins: 6\n",
             "t.yaml:3:1: duplicate key 'rfm.bins' (first at line 2)");
    load_err("rfm: {bins: 5}\nrfm: {method: breaks}\n",
             "t.yaml:2:1: duplicate key 'rfm' (first at line 1)");
    /* The dotted form alone is fine, and so are two different keys. */
    cvm_config *c = load_ok("rfm.bins: 3\nmodel.tree:\n  depth: 2\nrfm: {method: breaks}\n");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 3);
    assert_int_equal(cvm_config_int(c, "model.tree.depth"), 2);
    assert_string_equal(cvm_config_str(c, "rfm.method"), "breaks");
    cvm_config_free(c);
}

/* Checks the place and the start of a syntax error, and libyaml's problem. */
static void syntax_err(const char *yaml, const char *head, const char *problem)
{
    cvm_config *c = cvm_config_new(SCHEMA);
    cvm_err err = {0};
    assert_int_equal(cvm_config_load_buffer(c, "t.yaml", yaml, strlen(yaml), &err),
                     CVM_ECONFIG);
    if (strncmp(err.msg, head, strlen(head)) != 0 || strstr(err.msg, problem) == NULL)
        print_error("got: %s\n", err.msg);
    assert_true(strncmp(err.msg, head, strlen(head)) == 0);
    assert_non_null(strstr(err.msg, problem));
    cvm_config_free(c);
}

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    syntax_err("rfm:\n  bins: 5\n   method: breaks\n", "t.yaml:3:10: YAML syntax error: ",
               "mapping values are not allowed in this context");
    syntax_err("rfm: [1, 2\n", "t.yaml:2:1: YAML syntax error: ",
               "did not find expected ',' or ']' (while parsing a flow sequence at 1:6)");
    syntax_err("rfm:\n\tbins: 5\n", "t.yaml:2:1: YAML syntax error: ",
               "found character that cannot start any token");
    syntax_err("rfm:\n  method: \"\xff\"\n", "t.yaml:2:12: YAML syntax error: ",
               "invalid leading UTF-8 octet (#FF)");
    syntax_err("a: *nowhere\n", "t.yaml:1:4: YAML syntax error: ", "undefined alias");
    load_err("rfm: {bins: 3}\n---\nrfm: {bins: 4}\n",
             "t.yaml:2:1: only one YAML document is allowed");
    /* A NULL name still gives a readable place. */
    cvm_config *c = cvm_config_new(SCHEMA);
    cvm_err err = {0};
    assert_int_equal(cvm_config_load_buffer(c, NULL, "rfm: 3", 6, &err), CVM_ECONFIG);
    assert_string_equal(err.msg,
                        "<buffer>:1:6: 'rfm' is a section and expects a mapping, got '3'");
    cvm_config_free(c);
}

static void test_failed_load_changes_nothing(void **state)
{
    (void)state;
    cvm_config *c = load_ok("rfm:\n  bins: 7\n");
    cvm_err err = {0};
    const char *bad = "rfm:\n  bins: 8\n  method: breaks\ninput:\n  since: 2023-02-30\n";
    assert_int_equal(cvm_config_load_buffer(c, "t.yaml", bad, strlen(bad), &err),
                     CVM_ECONFIG);
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 7);
    assert_string_equal(cvm_config_str(c, "rfm.method"), "quantile");
    assert_int_equal(cvm_config_origin(c, "rfm.method"), CVM_CFG_FROM_DEFAULT);
    set_err(c, "rfm.bins=11", "--set rfm.bins=11: 'rfm.bins' = 11 is out of range [2, 10]");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 7);
    assert_int_equal(cvm_config_origin(c, "rfm.bins"), CVM_CFG_FROM_FILE);
    cvm_config_free(c);
}

static void test_load_file(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("config");
    char *sub = cvm_test_path(dir, "jobs");
    assert_int_equal(mkdir(sub, 0700), 0);
    char *p1 = cvm_test_path(sub, "base.yaml");
    char *p2 = cvm_test_path(dir, "over.yaml");
    cvm_test_write_file(p1, "rfm:\n  bins: 4\n  method: breaks\n");
    cvm_test_write_file(p2, "rfm:\n  bins: 6\n");
    cvm_config *c = cvm_config_new(SCHEMA);
    cvm_err err = {0};
    assert_int_equal(cvm_config_load_file(c, p1, &err), CVM_OK);
    assert_string_equal(cvm_config_path(c), p1);
    assert_string_equal(cvm_config_dir(c), sub);
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 4);
    assert_int_equal(cvm_config_load_file(c, p2, &err), CVM_OK);
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 6); /* later files win */
    assert_string_equal(cvm_config_str(c, "rfm.method"), "breaks");
    assert_string_equal(cvm_config_dir(c), dir);

    /* Errors name the path; failures keep the last good path. */
    char *missing = cvm_test_path(dir, "missing.yaml");
    assert_int_equal(cvm_config_load_file(c, missing, &err), CVM_EIO);
    char want[4096];
    snprintf(want, sizeof want, "cannot read %s: No such file or directory", missing);
    assert_string_equal(err.msg, want);
    assert_int_equal(cvm_config_load_file(c, sub, &err), CVM_EIO);
    snprintf(want, sizeof want, "cannot read %s: Is a directory", sub);
    assert_string_equal(err.msg, want);
    cvm_test_write_file(p1, "rfm:\n  bins: x\n");
    assert_int_equal(cvm_config_load_file(c, p1, &err), CVM_ECONFIG);
    snprintf(want, sizeof want, "%s:2:9: 'rfm.bins' expects an integer, got 'x'", p1);
    assert_string_equal(err.msg, want);
    assert_string_equal(cvm_config_path(c), p2);
    /* A buffer is not a file: the directory stays. */
    assert_int_equal(cvm_config_load_buffer(c, "b", "rfm: {bins: 3}", 14, &err), CVM_OK);
    assert_string_equal(cvm_config_dir(c), dir);
    cvm_config_free(c);

    /* Relative paths: "x.yaml" lives in ".". */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(dir), 0);
    c = cvm_config_new(SCHEMA);
    assert_int_equal(cvm_config_load_file(c, "over.yaml", &err), CVM_OK);
    assert_string_equal(cvm_config_dir(c), ".");
    assert_int_equal(cvm_config_load_file(c, "jobs/base.yaml", &err), CVM_ECONFIG);
    cvm_test_write_file(p1, "{}\n");
    assert_int_equal(cvm_config_load_file(c, "jobs/base.yaml", &err), CVM_OK);
    assert_string_equal(cvm_config_dir(c), "jobs");
    assert_int_equal(chdir(cwd), 0);
    cvm_config_free(c);

    cvm_test_rmtree(dir);
    free(missing);
    free(p1);
    free(p2);
    free(sub);
    free(dir);
}

static void test_set_each_type(void **state)
{
    (void)state;
    cvm_config *c = cvm_config_new(SCHEMA);
    set_ok(c, "rfm.bins=8");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 8);
    assert_int_equal(cvm_config_origin(c, "rfm.bins"), CVM_CFG_FROM_SET);
    set_ok(c, "rfm.bins=\"6\"");
    assert_int_equal(cvm_config_int(c, "rfm.bins"), 6);
    set_ok(c, "rfm.verbose=yes");
    assert_true(cvm_config_bool(c, "rfm.verbose"));
    set_ok(c, "rfm.weight=0.75");
    assert_true(cvm_config_double(c, "rfm.weight") == 0.75);
    set_ok(c, "rfm.method=breaks");
    assert_string_equal(cvm_config_str(c, "rfm.method"), "breaks");
    set_ok(c, "input.since=2024-01-31");
    assert_string_equal(cvm_config_str(c, "input.since"), "2024-01-31");
    set_ok(c, "input.path='it''s here'");
    assert_string_equal(cvm_config_str(c, "input.path"), "it's here");
    set_ok(c, "model.tree.title=a: b # not a comment");
    assert_string_equal(cvm_config_str(c, "model.tree.title"), "a: b # not a comment");
    set_ok(c, "model.tree.title=");
    assert_true(cvm_config_is_set(c, "model.tree.title"));
    assert_string_equal(cvm_config_str(c, "model.tree.title"), "");
    set_ok(c, "model.tree.title=~");
    assert_false(cvm_config_is_set(c, "model.tree.title"));
    assert_int_equal(cvm_config_origin(c, "model.tree.title"), CVM_CFG_FROM_SET);
    set_ok(c, "rfm.seed=-1");
    assert_int_equal(cvm_config_int(c, "rfm.seed"), -1);
    set_ok(c, "rfm.seed=null");
    assert_false(cvm_config_is_set(c, "rfm.seed"));

    set_ok(c, "input.columns= x , y ");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 2);
    assert_string_equal(cvm_config_list_at(c, "input.columns", 1), "y");
    set_ok(c, "input.columns=");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 0);
    set_ok(c, "input.columns=[\"a,b\", c]");
    assert_int_equal(cvm_config_list_len(c, "input.columns"), 2);
    assert_string_equal(cvm_config_list_at(c, "input.columns", 0), "a,b");

    /* Map entries: override one, add one, the rest stay. */
    set_ok(c, "cost.per_type.hospital=150");
    set_ok(c, "cost.per_type.nurse=12.5");
    assert_int_equal(cvm_config_map_len(c, "cost.per_type"), 3);
    double v = 0;
    assert_true(cvm_config_map_get(c, "cost.per_type", "hospital", &v));
    assert_true(v == 150);
    assert_true(cvm_config_map_get(c, "cost.per_type", "doctor", &v));
    assert_true(v == 40);
    assert_true(cvm_config_map_get(c, "cost.per_type", "nurse", &v));
    assert_true(v == 12.5);
    assert_string_equal(cvm_config_map_name(c, "cost.per_type", 2), "nurse");
    assert_int_equal(cvm_config_origin(c, "cost.per_type"), CVM_CFG_FROM_SET);
    set_ok(c, "cost.per_type.a.b=1");
    assert_true(cvm_config_map_get(c, "cost.per_type", "a.b", &v));
    set_ok(c, "cost.per_type={only: 1}");
    assert_int_equal(cvm_config_map_len(c, "cost.per_type"), 1);
    set_ok(c, "cost.per_type=");
    assert_int_equal(cvm_config_map_len(c, "cost.per_type"), 0);
    cvm_err err = {0};
    assert_int_equal(cvm_config_check(c, &err), CVM_OK);
    cvm_config_free(c);
}

static void test_set_errors(void **state)
{
    (void)state;
    cvm_config *c = cvm_config_new(SCHEMA);
    set_err(c, "rfm.bins=x", "--set rfm.bins=x: 'rfm.bins' expects an integer, got 'x'");
    set_err(c, "rfm.bins=99", "--set rfm.bins=99: 'rfm.bins' = 99 is out of range [2, 10]");
    set_err(c, "rfm.bins=", "--set rfm.bins=: 'rfm.bins' expects an integer, got ''");
    set_err(c, "rfm.bins=~", "--set rfm.bins=~: 'rfm.bins' expects an integer, got null");
    set_err(c, "rfm.verbose=maybe",
            "--set rfm.verbose=maybe: 'rfm.verbose' expects a boolean (true/false), got "
            "'maybe'");
    set_err(c, "rfm.weight=nan", "--set rfm.weight=nan: 'rfm.weight' expects a number, got 'nan'");
    set_err(c, "rfm.method=x",
            "--set rfm.method=x: 'rfm.method' must be one of quantile|breaks, got 'x'");
    set_err(c, "input.since=2023-02-29",
            "--set input.since=2023-02-29: 'input.since' expects a date YYYY-MM-DD, got "
            "'2023-02-29'");
    set_err(c, "rfm.binz=3", "--set rfm.binz=3: unknown key 'rfm.binz' (did you mean 'rfm.bins'?)");
    set_err(c, "nothing.here=3", "--set nothing.here=3: unknown key 'nothing.here'");
    set_err(c, "rfm=3", "--set rfm=3: 'rfm' is a section, not a key");
    set_err(c, "rfm.bins", "--set rfm.bins: expected section.key=value");
    set_err(c, "=3", "--set =3: expected section.key=value");
    set_err(c, "clean.rules=[]",
            "--set clean.rules=[]: 'clean.rules' is a table and cannot be set with --set; "
            "put it in the YAML file");
    set_err(c, "cost.per_type.hospital=-1",
            "--set cost.per_type.hospital=-1: 'cost.per_type.hospital' = -1 is out of range "
            "[0, 1000000]");
    set_err(c, "cost.per_type.hospital=x",
            "--set cost.per_type.hospital=x: 'cost.per_type.hospital' expects a number, got "
            "'x'");
    set_err(c, "cost.per_type.=1",
            "--set cost.per_type.=1: unknown key 'cost.per_type.' (did you mean "
            "'cost.per_type'?)");
    set_err(c, "model.tree.title=\xff",
            "--set model.tree.title=\xff: 'model.tree.title' value is not valid UTF-8");
    cvm_err err = {0};
    assert_int_equal(cvm_config_set(c, "rfm.bins=[1", &err), CVM_ECONFIG);
    assert_true(strncmp(err.msg, "--set rfm.bins=[1: YAML syntax error: ", 38) == 0);
    /* Nothing above changed anything. */
    for (size_t i = 0; i < FUZZ_SCHEMA_LEN; i++)
        assert_int_equal(cvm_config_origin(c, fuzz_schema[i].name), CVM_CFG_FROM_DEFAULT);
    assert_int_equal(cvm_config_map_len(c, "cost.per_type"), 2);
    assert_true(cvm_config_map_value(c, "cost.per_type", 0) == 120);
    cvm_config_free(c);
}

static void test_origins(void **state)
{
    (void)state;
    cvm_config *c = cvm_config_new(SCHEMA);
    assert_int_equal(cvm_config_origin(c, "rfm.weight"), CVM_CFG_FROM_DEFAULT);
    const char *yaml = "rfm:\n  weight: 0.1\n";
    cvm_err err = {0};
    assert_int_equal(cvm_config_load_buffer(c, "a.yaml", yaml, strlen(yaml), &err), CVM_OK);
    assert_int_equal(cvm_config_origin(c, "rfm.weight"), CVM_CFG_FROM_FILE);
    assert_int_equal(cvm_config_origin(c, "rfm.bins"), CVM_CFG_FROM_DEFAULT);
    set_ok(c, "rfm.weight=0.2");
    assert_int_equal(cvm_config_origin(c, "rfm.weight"), CVM_CFG_FROM_SET);
    /* A later file wins over an earlier --set of the same key. */
    assert_int_equal(cvm_config_load_buffer(c, "b.yaml", yaml, strlen(yaml), &err), CVM_OK);
    assert_int_equal(cvm_config_origin(c, "rfm.weight"), CVM_CFG_FROM_FILE);
    assert_true(cvm_config_double(c, "rfm.weight") == 0.1);
    cvm_config_free(c);
}

static const char *const default_yaml =
    "input:\n"
    "  path: data/tx.csv\n"
    "  since: \"\"\n"
    "  until: ~\n"
    "  columns: [id, date, amount]\n"
    "rfm:\n"
    "  bins: 5\n"
    "  method: quantile\n"
    "  weight: 0.5\n"
    "  verbose: false\n"
    "  seed: ~\n"
    "model:\n"
    "  tree:\n"
    "    depth: 3\n"
    "    title: ~\n"
    "cost:\n"
    "  per_type: {hospital: 120, doctor: 40}\n"
    "clean:\n"
    "  rules:\n"
    "    - {when: \"class=G\", action: FIX}\n"
    "  extra: ~\n";

static void test_write_yaml_defaults(void **state)
{
    (void)state;
    cvm_config *c = cvm_config_new(SCHEMA);
    char *text = write_yaml(c, false);
    assert_string_equal(text, default_yaml);
    free(text);
    text = write_yaml(c, true);
    assert_non_null(strstr(text, "rfm:\n  # Bins per score.\n  bins: 5\n"));
    assert_null(strstr(text, "# changed"));
    free(text);
    cvm_config_free(c);
}

static void test_write_yaml_round_trip(void **state)
{
    (void)state;
    cvm_config *c = cvm_config_new(SCHEMA);
    const char *yaml = "clean:\n"
                       "  rules:\n"
                       "    - {when: \"a: b\", action: \"#x\", text: \"line\\none\"}\n"
                       "    - {}\n"
                       "  extra:\n"
                       "    - {\"odd key\": \"[1, 2]\", \"-\": \"- x\", q: \"\\\"q\\\" \\\\ \"}\n"
                       "input:\n"
                       "  columns: [\"a,b\", \"~\", \"null\", \"\", \" pad \", \"{x}\", "
                       "\"caf\\u00e9\", \"\\u2028\\x85\\uFEFF\\t\\x01\"]\n"
                       "  since: 2024-02-29\n";
    cvm_err err = {0};
    assert_int_equal(cvm_config_load_buffer(c, "t.yaml", yaml, strlen(yaml), &err), CVM_OK);
    set_ok(c, "rfm.bins=9");
    set_ok(c, "rfm.weight=0.1");
    set_ok(c, "rfm.verbose=on");
    set_ok(c, "rfm.seed=-42");
    set_ok(c, "model.tree.title=Tree: \"deep\" \\ 'quoted' # hash");
    set_ok(c, "input.path=");
    set_ok(c, "cost.per_type.odd name: x=1e-300");
    set_ok(c, "cost.per_type.big=999999.123456789");

    for (int docs = 0; docs < 2; docs++) {
        char *text = write_yaml(c, docs);
        cvm_config *back = cvm_config_new(SCHEMA);
        int rc = cvm_config_load_buffer(back, "back.yaml", text, strlen(text), &err);
        if (rc != CVM_OK)
            print_error("%s\n%s\n", err.msg, text);
        assert_int_equal(rc, CVM_OK);
        assert_same_values(c, back);
        assert_string_equal(cvm_config_list_at(back, "input.columns", 7),
                            "\xe2\x80\xa8\xc2\x85\xef\xbb\xbf\t\x01");
        assert_string_equal(cvm_config_table_cell(back, "clean.extra", 0, "-"), "- x");
        /* Writing the reloaded config gives the same text. */
        char *again = write_yaml(back, docs);
        if (docs == 0)
            assert_string_equal(text, again);
        free(again);
        if (docs) {
            assert_non_null(strstr(text, "  bins: 9  # changed\n"));
            assert_non_null(strstr(text, "  method: quantile\n"));
            assert_non_null(strstr(text, "  rules:  # changed\n    - {"));
            assert_non_null(strstr(text, "    # Depth.\n    depth: 3\n"));
        } else {
            assert_non_null(strstr(text, "  since: 2024-02-29\n"));
            assert_non_null(strstr(text, "  seed: -42\n"));
            assert_non_null(strstr(text, "  path: \"\"\n"));
        }
        cvm_config_free(back);
        free(text);
    }
    cvm_config_free(c);
}

static void test_write_yaml_docs_wrap(void **state)
{
    (void)state;
    static const cvm_cfg_key schema[] = {
        {"b.x", CVM_CFG_INT, "1", 1, 0, NULL,
         "A long description that goes on and on, explaining why this key exists, what "
         "it changes in the output, and which other keys interact with it, so that it "
         "must be wrapped over several comment lines."},
        {"a.y", CVM_CFG_BOOL, "true", 1, 0, NULL, "Short."},
        {"b.z", CVM_CFG_STRING, "s", 1, 0, NULL, NULL},
    };
    cvm_config *c = cvm_config_new(schema, 3);
    assert_non_null(c);
    char *text = write_yaml(c, true);
    /* Sections keep first-appearance order and b appears only once. */
    char *b = strstr(text, "b:\n"), *a = strstr(text, "a:\n");
    assert_non_null(b);
    assert_non_null(a);
    assert_true(b < a);
    assert_null(strstr(b + 1, "\nb:\n"));
    assert_non_null(strstr(text, "  x: 1\n  z: s\n"));
    size_t comment_lines = 0;
    char words[1024] = "";
    for (char *line = text; *line;) {
        char *nl = strchr(line, '\n');
        assert_non_null(nl);
        assert_true(nl - line <= 88);
        if (strncmp(line, "  # ", 4) == 0 && strstr(line, "Short.") != line + 4) {
            comment_lines++;
            strncat(words, line + 3, (size_t)(nl - line - 3));
        }
        line = nl + 1;
    }
    assert_true(comment_lines >= 3);
    assert_string_equal(words, " A long description that goes on and on, explaining why this "
                               "key exists, what it changes in the output, and which other "
                               "keys interact with it, so that it must be wrapped over "
                               "several comment lines.");
    free(text);
    cvm_config_free(c);
}

static void test_json(void **state)
{
    (void)state;
    cvm_config *c = cvm_config_new(SCHEMA);
    set_ok(c, "rfm.bins=7");
    set_ok(c, "rfm.verbose=true");
    set_ok(c, "input.until=2024-05-01");
    json_t *j = cvm_config_to_json(c);
    assert_non_null(j);
    char *dump = json_dumps(j, JSON_COMPACT);
    assert_non_null(dump);
    json_decref(j);
    json_error_t jerr;
    json_t *r = json_loads(dump, 0, &jerr);
    free(dump);
    assert_non_null(r);
    json_t *rfm = json_object_get(r, "rfm");
    assert_true(json_is_object(rfm));
    assert_true(json_is_integer(json_object_get(rfm, "bins")));
    assert_int_equal(json_integer_value(json_object_get(rfm, "bins")), 7);
    assert_true(json_is_real(json_object_get(rfm, "weight")));
    assert_true(json_real_value(json_object_get(rfm, "weight")) == 0.5);
    assert_true(json_is_true(json_object_get(rfm, "verbose")));
    assert_true(json_is_null(json_object_get(rfm, "seed")));
    assert_string_equal(json_string_value(json_object_get(rfm, "method")), "quantile");
    json_t *tree = json_object_get(json_object_get(r, "model"), "tree");
    assert_int_equal(json_integer_value(json_object_get(tree, "depth")), 3);
    assert_true(json_is_null(json_object_get(tree, "title")));
    json_t *input = json_object_get(r, "input");
    assert_string_equal(json_string_value(json_object_get(input, "since")), "");
    assert_string_equal(json_string_value(json_object_get(input, "until")), "2024-05-01");
    json_t *cols = json_object_get(input, "columns");
    assert_true(json_is_array(cols));
    assert_int_equal(json_array_size(cols), 3);
    assert_string_equal(json_string_value(json_array_get(cols, 2)), "amount");
    json_t *pt = json_object_get(json_object_get(r, "cost"), "per_type");
    assert_true(json_is_object(pt));
    assert_true(json_number_value(json_object_get(pt, "doctor")) == 40);
    json_t *rules = json_object_get(json_object_get(r, "clean"), "rules");
    assert_true(json_is_array(rules));
    assert_int_equal(json_array_size(rules), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rules, 0), "when")),
                        "class=G");
    assert_true(json_is_null(json_object_get(json_object_get(r, "clean"), "extra")));
    assert_int_equal(json_object_size(r), 5);
    json_decref(r);
    cvm_config_free(c);
}

static void test_markdown(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_int_equal(cvm_config_write_markdown(SCHEMA, f), CVM_OK);
    fclose(f);
    assert_non_null(strstr(text, "## rfm\n\n| key | type | default | allowed | description |\n"
                                 "| --- | --- | --- | --- | --- |\n"
                                 "| `rfm.bins` | int | `5` | [2, 10] | Bins per score. |\n"));
    assert_non_null(strstr(text, "| `rfm.method` | enum | `quantile` | quantile\\|breaks | "
                                 "Binning. |\n"));
    assert_non_null(strstr(text, "| `rfm.seed` | int | (unset) | any | Seed. |\n"));
    assert_non_null(strstr(text, "| `input.since` | date | \"\" | YYYY-MM-DD or empty |"));
    assert_non_null(strstr(text, "| `cost.per_type` | map | `{hospital: 120, doctor: 40}` | "
                                 "[0, 1000000] |"));
    assert_non_null(strstr(text, "| columns: when\\|action\\|text | Cleaning rules. |"));
    assert_non_null(strstr(text, "| `model.tree.depth` | int | `3` | [1, 20] |"));
    const char *order[] = {"## input\n", "## rfm\n", "## model\n", "## cost\n", "## clean\n"};
    const char *prev = text;
    for (size_t i = 0; i < 5; i++) {
        const char *at = strstr(text, order[i]);
        assert_non_null(at);
        assert_true(at >= prev);
        prev = at;
    }
    size_t headings = 0;
    for (const char *p = text; (p = strstr(p, "## ")) != NULL; p++)
        headings++;
    assert_int_equal(headings, 5);
    free(text);
}

static void test_check_after_schema_change(void **state)
{
    (void)state;
    cvm_cfg_key schema[FUZZ_SCHEMA_LEN];
    memcpy(schema, fuzz_schema, sizeof schema);
    cvm_config *c = cvm_config_new(schema, FUZZ_SCHEMA_LEN);
    set_ok(c, "rfm.bins=8");
    set_ok(c, "cost.per_type.hospital=500");
    cvm_err err = {0};
    assert_int_equal(cvm_config_check(c, &err), CVM_OK);
    schema[4].max = 6;
    assert_int_equal(cvm_config_check(c, &err), CVM_ECONFIG);
    assert_string_equal(err.msg, "config: 'rfm.bins' = 8 is out of range [2, 6]");
    schema[4].max = 10;
    schema[5].choices = "breaks|other";
    assert_int_equal(cvm_config_check(c, &err), CVM_ECONFIG);
    assert_string_equal(err.msg,
                        "config: 'rfm.method' must be one of breaks|other, got 'quantile'");
    schema[5].choices = "quantile|breaks";
    schema[11].max = 200;
    assert_int_equal(cvm_config_check(c, &err), CVM_ECONFIG);
    assert_string_equal(err.msg,
                        "config: 'cost.per_type.hospital' = 500 is out of range [0, 200]");
    schema[11].max = 1e6;
    schema[12].choices = "when|text";
    assert_int_equal(cvm_config_check(c, &err), CVM_ECONFIG);
    assert_string_equal(err.msg, "config: 'clean.rules' row 1 has unknown column 'action' "
                                 "(allowed: when|text)");
    schema[12].choices = fuzz_schema[12].choices;
    assert_int_equal(cvm_config_check(c, &err), CVM_OK);
    cvm_config_free(c);
}

static void test_schema_validation(void **state)
{
    (void)state;
    static const cvm_cfg_key bad[][2] = {
        {{"a.x", CVM_CFG_INT, "abc", 1, 0, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.x", CVM_CFG_INT, "12", 0, 10, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.x", CVM_CFG_ENUM, "c", 1, 0, "a|b", NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.x", CVM_CFG_ENUM, "a", 1, 0, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.x", CVM_CFG_DATE, "2023-02-30", 1, 0, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.x", CVM_CFG_INT, "1", 1, 0, NULL, NULL}, {"a.x", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a", CVM_CFG_INT, "1", 1, 0, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a..x", CVM_CFG_INT, "1", 1, 0, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.x.", CVM_CFG_INT, "1", 1, 0, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.t", CVM_CFG_TABLE, "[{bad: 1}]", 1, 0, "when", NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.m", CVM_CFG_MAP, "{x: 5}", 0, 1, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
        {{"a.l", CVM_CFG_LIST, "[a, [b]]", 1, 0, NULL, NULL}, {"a.y", CVM_CFG_INT, "1", 1, 0, NULL, NULL}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cvm_config *c = cvm_config_new(bad[i], 2);
        if (c != NULL)
            print_error("schema %zu accepted\n", i);
        assert_null(c);
    }
    static const cvm_cfg_key good[] = {
        {"top", CVM_CFG_STRING, "", 1, 0, NULL, NULL},
        {"a.l", CVM_CFG_LIST, "", 1, 0, NULL, NULL},
        {"a.m", CVM_CFG_MAP, "", 0, 1, NULL, NULL},
        {"a.t", CVM_CFG_TABLE, "[]", 1, 0, NULL, NULL},
    };
    cvm_config *c = cvm_config_new(good, 4);
    assert_non_null(c);
    assert_int_equal(cvm_config_list_len(c, "a.l"), 0);
    assert_int_equal(cvm_config_map_len(c, "a.m"), 0);
    cvm_config *c2 = load_ok("{}");
    cvm_config_free(c2);
    cvm_err err = {0};
    assert_int_equal(cvm_config_load_buffer(c, "t", "top: x\na: {l: y}", 16, &err), CVM_OK);
    assert_string_equal(cvm_config_str(c, "top"), "x");
    char *text = write_yaml(c, false);
    assert_string_equal(text, "top: x\na:\n  l: [y]\n  m: {}\n  t: []\n");
    free(text);
    cvm_config_free(c);
    c = cvm_config_new(NULL, 0);
    assert_non_null(c);
    text = write_yaml(c, false);
    assert_string_equal(text, "{}\n");
    free(text);
    assert_int_equal(cvm_config_load_buffer(c, "t", "{}", 2, &err), CVM_OK);
    cvm_config_free(c);
}

/* ------------------------------------------------------------------ */
/* Failing allocator: fail after N successful allocations, and count live
 * blocks so leaks show up even without LeakSanitizer. */

static long fail_budget;
static long live_blocks;
static long failures;

static void *counting_malloc(size_t n, void *ctx)
{
    (void)ctx;
    if (fail_budget-- <= 0) {
        failures++;
        return NULL;
    }
    void *p = malloc(n);
    if (p)
        live_blocks++;
    return p;
}

static void *counting_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    if (fail_budget-- <= 0) {
        failures++;
        return NULL;
    }
    void *q = realloc(p, n);
    if (q && p == NULL)
        live_blocks++;
    return q;
}

static void counting_free(void *p, void *ctx)
{
    (void)ctx;
    if (p)
        live_blocks--;
    free(p);
}

static void test_allocation_failures(void **state)
{
    (void)state;
    const char *yaml = "input:\n  columns: [a, b, c]\n  path: x\n"
                       "rfm: {bins: 4, method: breaks}\n"
                       "cost:\n  per_type: {a: 1, b: 2}\n"
                       "clean:\n  rules:\n    - {when: x, action: y}\n    - {text: z}\n"
                       "  extra: [{k: v}]\n";
    cvm_allocator a = {counting_malloc, counting_realloc, counting_free, NULL};
    long n_ok = 0, n_nomem = 0;
    bool done = false;
    for (long budget = 0; budget < 100000 && !done; budget++) {
        live_blocks = 0;
        failures = 0;
        fail_budget = budget;
        cvm_set_allocator(&a);
        cvm_err err = {0};
        cvm_config *c = cvm_config_new(SCHEMA);
        int rc = CVM_ENOMEM;
        if (c != NULL) {
            rc = cvm_config_load_buffer(c, "t.yaml", yaml, strlen(yaml), &err);
            if (rc == CVM_OK)
                rc = cvm_config_set(c, "cost.per_type.nurse=3", &err);
            if (rc == CVM_OK)
                rc = cvm_config_set(c, "input.columns=x,y", &err);
            if (rc == CVM_OK) {
                json_t *j = cvm_config_to_json(c);
                if (j == NULL) /* to_json has no cvm_err; record it here */
                    rc = CVM_FAIL(&err, CVM_ENOMEM, "to_json");
                json_decref(j);
            }
        }
        cvm_config_free(c);
        cvm_set_allocator(NULL);
        if (rc != CVM_OK && rc != CVM_ENOMEM)
            print_error("budget %ld: status %d: %s\n", budget, rc, err.msg);
        assert_true(rc == CVM_OK || rc == CVM_ENOMEM);
        if (rc == CVM_ENOMEM && c != NULL)
            assert_int_equal(err.status, CVM_ENOMEM);
        if (live_blocks != 0)
            print_error("budget %ld: %ld blocks leaked\n", budget, live_blocks);
        assert_int_equal(live_blocks, 0);
        if (rc == CVM_OK) {
            n_ok++;
            done = failures == 0;
        } else {
            n_nomem++;
        }
    }
    assert_true(done);
    assert_true(n_nomem > 20); /* the path really allocates through the hook */
    assert_true(n_ok >= 1);
}

/* ------------------------------------------------------------------ */

static void test_corpus_replay(void **state)
{
    (void)state;
    /* CTest sets CVM_SOURCE_DIR; run by hand, fall back to this file's path. */
    char *dir;
    if (getenv("CVM_SOURCE_DIR") != NULL) {
        dir = cvm_test_path(cvm_test_source_dir(), "tests/fuzz/corpus_config");
    } else {
        const char *slash = strrchr(__FILE__, '/');
        char here[4096];
        snprintf(here, sizeof here, "%.*s", slash ? (int)(slash - __FILE__) : 1,
                 slash ? __FILE__ : ".");
        dir = cvm_test_path(here, "fuzz/corpus_config");
    }
    DIR *d = opendir(dir);
    if (d == NULL)
        print_error("cannot open %s\n", dir);
    assert_non_null(d);
    size_t files = 0, good = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *path = cvm_test_path(dir, e->d_name);
        size_t len = 0;
        char *data = cvm_test_read_file(path, &len);
        assert_non_null(data);
        cvm_err err = {0};
        int rc = fuzz_config_run((const uint8_t *)data, len, &err);
        if (strncmp(e->d_name, "ok_", 3) == 0) {
            if (rc != CVM_OK)
                print_error("%s: %s\n", e->d_name, err.msg);
            assert_int_equal(rc, CVM_OK);
            good++;
        } else if (strncmp(e->d_name, "bad_", 4) == 0) {
            if (rc != CVM_ECONFIG)
                print_error("%s: status %d\n", e->d_name, rc);
            assert_int_equal(rc, CVM_ECONFIG);
            assert_non_null(strstr(err.msg, "<fuzz>:"));
            bad++;
        }
        assert_int_equal(LLVMFuzzerTestOneInput((const uint8_t *)data, len), 0);
        files++;
        free(data);
        free(path);
    }
    closedir(d);
    free(dir);
    assert_true(files >= 10);
    assert_true(good >= 3);
    assert_true(bad >= 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_load_every_type),
        cmocka_unit_test(test_bool_values),
        cmocka_unit_test(test_int_parsing),
        cmocka_unit_test(test_double_parsing),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_enum_and_strings),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_maps),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_nulls),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_failed_load_changes_nothing),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_set_each_type),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_origins),
        cmocka_unit_test(test_write_yaml_defaults),
        cmocka_unit_test(test_write_yaml_round_trip),
        cmocka_unit_test(test_write_yaml_docs_wrap),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test(test_check_after_schema_change),
        cmocka_unit_test(test_schema_validation),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_corpus_replay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
