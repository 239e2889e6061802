/*
 * config.h - job configuration: a typed key registry filled from a YAML file
 * and `--set section.key=value` overrides.
 *
 * The caller (the job runner) owns the schema: a static array of cvm_cfg_key,
 * one per key, with its type, default, range and documentation. This module
 * knows nothing about ingest or models; it only parses, validates and answers.
 *
 *     cvm_config *c = cvm_config_new(cvm_job_schema, cvm_job_schema_len);
 *     if (cvm_config_load_file(c, "jobs/nightly.yaml", &err) != CVM_OK ||
 *         cvm_config_set(c, "rfm.bins=4", &err) != CVM_OK ||
 *         cvm_config_check(c, &err) != CVM_OK) { ...report err.msg... }
 *     long bins = cvm_config_int(c, "rfm.bins");
 *     cvm_config_free(c);
 *
 * YAML layout: nested mappings give dotted key names, so
 *     rfm:
 *       bins: 5          # -> key "rfm.bins"
 * Sequences are allowed only for LIST keys (a sequence of scalars, or a
 * comma-separated scalar) and TABLE keys (a sequence of flat mappings of
 * scalars). MAP keys are a mapping of arbitrary names to numbers
 * ("cost.per_type": {hospital: 120, doctor: 40}); `--set cost.per_type.hospital=150`
 * sets one entry.
 *
 * Errors name the place: "jobs/x.yaml:12:3: unknown key 'rfm.binz' (did you mean
 * 'rfm.bins'?)", "--set rfm.bins=x: 'rfm.bins' expects an integer, got 'x'",
 * "jobs/x.yaml:4:9: 'rfm.bins' = 99 is out of range [2, 10]". All errors are
 * CVM_ECONFIG (CVM_EIO when the file cannot be read, CVM_ENOMEM).
 *
 * Lifetimes: strings returned by getters are owned by the config and valid
 * until the key is set again or the config is freed. Not thread-safe for
 * writing; concurrent reads are fine.
 */
#ifndef CVM_CONFIG_H
#define CVM_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>

#include "error.h"

typedef enum {
    CVM_CFG_BOOL,   /* true/false/yes/no/on/off/1/0 */
    CVM_CFG_INT,    /* long, checked against [min, max] */
    CVM_CFG_DOUBLE, /* double, checked against [min, max] */
    CVM_CFG_STRING, /* any scalar; "" allowed */
    CVM_CFG_ENUM,   /* one of choices, "a|b|c" */
    CVM_CFG_DATE,   /* YYYY-MM-DD or empty; stored as text */
    CVM_CFG_LIST,   /* list of strings */
    CVM_CFG_MAP,    /* name -> double, names free, values in [min, max] */
    CVM_CFG_TABLE   /* list of rows, each a flat map of string -> string */
} cvm_cfg_type;

typedef struct cvm_cfg_key {
    const char *name;    /* dotted, e.g. "rfm.bins" */
    cvm_cfg_type type;
    const char *def;     /* default as YAML text; NULL = unset (optional) */
    double min, max;     /* INT, DOUBLE, MAP values; ignored when min > max */
    const char *choices; /* ENUM: "quantile|breaks"; TABLE: allowed columns "when|action|text" */
    const char *doc;     /* one or more sentences for docs and `cvm config` */
} cvm_cfg_key;

/* Where a key's current value came from. */
typedef enum { CVM_CFG_FROM_DEFAULT, CVM_CFG_FROM_FILE, CVM_CFG_FROM_SET } cvm_cfg_origin;

typedef struct cvm_config cvm_config;

/** @brief New config holding every key's default. The schema must outlive it.
 *  @return NULL on allocation failure or an invalid schema default. */
cvm_config *cvm_config_new(const cvm_cfg_key *schema, size_t n_keys);
void cvm_config_free(cvm_config *c); /* NULL is a no-op */

/** @brief Read a YAML file; keys it names override the defaults. May be
 *  called more than once (later files win). Relative path values are kept as
 *  written; cvm_config_dir() gives the directory of the last file loaded. */
int cvm_config_load_file(cvm_config *c, const char *path, cvm_err *err);
/** @brief Same, from a buffer; name is used in messages (e.g. "<fuzz>"). */
int cvm_config_load_buffer(cvm_config *c, const char *name, const char *buf,
                           size_t len, cvm_err *err);
/** @brief Apply "section.key=value" (value parsed as a YAML scalar, or a
 *  comma-separated list for LIST keys; TABLE keys cannot be set this way). */
int cvm_config_set(cvm_config *c, const char *assignment, cvm_err *err);
/** @brief Cross-key checks are the caller's; this re-validates every value
 *  against its type and range (useful after programmatic changes). */
int cvm_config_check(const cvm_config *c, cvm_err *err);

/* Getters. Calling one with an unknown name or the wrong type is a
 * programming error (assert). */
bool cvm_config_is_set(const cvm_config *c, const char *key); /* false for NULL-default keys never set */
bool cvm_config_bool(const cvm_config *c, const char *key);
long cvm_config_int(const cvm_config *c, const char *key);
double cvm_config_double(const cvm_config *c, const char *key);
const char *cvm_config_str(const cvm_config *c, const char *key); /* STRING, ENUM, DATE; "" when unset */
size_t cvm_config_list_len(const cvm_config *c, const char *key);
const char *cvm_config_list_at(const cvm_config *c, const char *key, size_t i);
size_t cvm_config_map_len(const cvm_config *c, const char *key);
const char *cvm_config_map_name(const cvm_config *c, const char *key, size_t i);
double cvm_config_map_value(const cvm_config *c, const char *key, size_t i);
/** @brief Look up a MAP entry by name; returns false (and leaves *out) when absent. */
bool cvm_config_map_get(const cvm_config *c, const char *key, const char *name, double *out);
size_t cvm_config_table_rows(const cvm_config *c, const char *key);
/** @brief Cell of a TABLE row by column name; NULL when the row lacks it. */
const char *cvm_config_table_cell(const cvm_config *c, const char *key, size_t row,
                                  const char *column);
/** @brief Source line of a TABLE row in its file (0 when not from a file),
 *  so later semantic errors can name it. */
int cvm_config_table_row_line(const cvm_config *c, const char *key, size_t row);
cvm_cfg_origin cvm_config_origin(const cvm_config *c, const char *key);
/** @brief Directory of the last file loaded ("." when none), to resolve
 *  relative input paths against. */
const char *cvm_config_dir(const cvm_config *c);
/** @brief Path of the last file loaded, NULL when none. */
const char *cvm_config_path(const cvm_config *c);

/** @brief Write the effective config as YAML, sections nested, every key
 *  present; with_docs adds each key's doc as a comment above it and marks
 *  keys changed from their default. */
int cvm_config_write_yaml(const cvm_config *c, FILE *out, bool with_docs);
/** @brief The effective config as a JSON object (a jansson json_t *, nested
 *  by section, typed values), new reference owned by the caller. Returned as
 *  void * so this header does not pull in jansson. NULL on ENOMEM. */
void *cvm_config_to_json(const cvm_config *c);
/** @brief Write docs/config.md-style Markdown for the schema (one table per
 *  section: key, type, default, range/choices, description). */
int cvm_config_write_markdown(const cvm_cfg_key *schema, size_t n_keys, FILE *out);

#endif /* CVM_CONFIG_H */
