/*
 * fuzz_config.c - libFuzzer target for the YAML config loader.
 *
 * Every input is loaded against a small schema covering each key type. The
 * bytes before the first NUL are the YAML file (libyaml rejects a raw NUL
 * anyway); after it come NUL-separated `--set` assignments, applied once the
 * file has loaded, so arbitrary bytes also reach the setters. When it loads,
 * the effective config is written back as YAML (with and without docs) and
 * loaded again into a fresh config: the two must have the same JSON form,
 * which turns the writer's quoting and escaping into something the fuzzer
 * can break. tests/test_config.c includes this file to replay the seed
 * corpus through the very same function.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "alloc.h"
#include "config.h"

static const cvm_cfg_key fuzz_schema[] = {
    {"input.path", CVM_CFG_STRING, "data/tx.csv", 1, 0, NULL, "Transactions file."},
    {"input.since", CVM_CFG_DATE, "", 1, 0, NULL, "First day kept."},
    {"input.until", CVM_CFG_DATE, NULL, 1, 0, NULL, "Last day kept."},
    {"input.columns", CVM_CFG_LIST, "id, date, amount", 1, 0, NULL, "Columns."},
    {"rfm.bins", CVM_CFG_INT, "5", 2, 10, NULL, "Bins per score."},
    {"rfm.method", CVM_CFG_ENUM, "quantile", 1, 0, "quantile|breaks", "Binning."},
    {"rfm.weight", CVM_CFG_DOUBLE, "0.5", 0, 1, NULL, "Weight."},
    {"rfm.verbose", CVM_CFG_BOOL, "false", 1, 0, NULL, "Chatty."},
    {"rfm.seed", CVM_CFG_INT, NULL, 1, 0, NULL, "Seed."},
    {"model.tree.depth", CVM_CFG_INT, "3", 1, 20, NULL, "Depth."},
    {"model.tree.title", CVM_CFG_STRING, NULL, 1, 0, NULL, "Title."},
    {"cost.per_type", CVM_CFG_MAP, "{hospital: 120, doctor: 40}", 0, 1e6, NULL,
     "Cost per customer type."},
    {"clean.rules", CVM_CFG_TABLE, "[{when: \"class=G\", action: FIX}]", 1, 0,
     "when|action|text", "Cleaning rules."},
    {"clean.extra", CVM_CFG_TABLE, NULL, 1, 0, NULL, "Free-form rows."},
};
#define FUZZ_SCHEMA_LEN (sizeof fuzz_schema / sizeof fuzz_schema[0])

/* Load then round-trip; returns the load status. Aborts when a written config
 * does not load back identically, so both the fuzzer and the test notice. */
static int fuzz_config_run(const uint8_t *data, size_t size, cvm_err *err)
{
    cvm_config *c = cvm_config_new(fuzz_schema, FUZZ_SCHEMA_LEN);
    if (c == NULL)
        abort();
    const uint8_t *nul = memchr(data, 0, size);
    size_t yaml_len = nul ? (size_t)(nul - data) : size;
    int rc = cvm_config_load_buffer(c, "<fuzz>", (const char *)data, yaml_len, err);
    if (rc == CVM_OK && nul != NULL) {
        /* Copy so that the last assignment is NUL-terminated too. */
        size_t n = size - yaml_len - 1;
        char *sets = malloc(n + 1);
        if (sets == NULL)
            abort();
        memcpy(sets, nul + 1, n);
        sets[n] = '\0';
        for (char *a = sets; a <= sets + n; a += strlen(a) + 1) {
            cvm_err e = {0};
            int src = cvm_config_set(c, a, &e);
            if (src != CVM_OK && src != CVM_ECONFIG)
                abort();
        }
        free(sets);
    }
    if (rc == CVM_OK) {
        for (int docs = 0; docs < 2; docs++) {
            char *text = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&text, &len);
            if (f == NULL || cvm_config_write_yaml(c, f, docs != 0) != CVM_OK)
                abort();
            fclose(f);
            cvm_config *back = cvm_config_new(fuzz_schema, FUZZ_SCHEMA_LEN);
            cvm_err e2 = {0};
            if (back == NULL || cvm_config_load_buffer(back, "<back>", text, len, &e2)) {
                fprintf(stderr, "written config does not load: %s\n%s\n", e2.msg, text);
                abort();
            }
            json_t *a = cvm_config_to_json(c), *b = cvm_config_to_json(back);
            if (a == NULL || b == NULL || !json_equal(a, b)) {
                fprintf(stderr, "round trip changed the config:\n%s\n", text);
                abort();
            }
            json_decref(a);
            json_decref(b);
            cvm_config_free(back);
            free(text);
        }
    } else if (rc != CVM_ECONFIG) {
        abort(); /* a buffer can only be invalid, never an I/O or memory error */
    }
    cvm_config_free(c);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cvm_err err = {0};
    fuzz_config_run(data, size, &err);
    return 0;
}
