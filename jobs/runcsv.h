/*
 * runcsv.h - streaming reader for the CSV files of a run directory, shared
 * by the publishers (SQLite, PostgreSQL, report, night-to-night changes) and
 * `cvm diff`.
 *
 *     cvm_runcsv r;
 *     if (cvm_runcsv_open(&r, "out/latest/segments.csv", &err) != CVM_OK) ...
 *     int g = cvm_runcsv_col(&r, "grade");
 *     int st;
 *     while ((st = cvm_runcsv_next(&r, &err)) > 0)
 *         use(r.field[g], r.len[g]);        // not NUL-terminated
 *     cvm_runcsv_close(&r);
 *
 * The file is mapped read-only, so memory stays flat whatever its size; the
 * fields of a record point into the mapping (or into a scratch buffer for
 * quoted fields) and are valid until the next cvm_runcsv_next. RFC 4180:
 * quoted fields may hold commas, doubled quotes and line ends; LF or CRLF.
 * Every record must have as many fields as the header (CVM_EDATA naming
 * file:line otherwise). raw/raw_len give the record's bytes as in the file,
 * so a loader can forward a record without re-quoting it.
 *
 * cvm_runcsv_infer reads a whole column set once to pick a type per column
 * (the types of summary.json: integer, number, date, string), for files that
 * carry no schema. Not thread-safe; one reader per thread.
 */
#ifndef CVM_RUNCSV_H
#define CVM_RUNCSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef enum {
    CVM_RUNCSV_INTEGER, /* canonical decimal integers (no leading zeros or '+') */
    CVM_RUNCSV_NUMBER,  /* plain decimal numbers */
    CVM_RUNCSV_STRING,
    CVM_RUNCSV_DATE,    /* YYYY-MM-DD, real calendar dates */
} cvm_runcsv_type;

typedef struct cvm_runcsv {
    char *path;
    const char *data;      /* the mapped file */
    size_t size;
    size_t pos;            /* next unread byte */
    size_t data_start;     /* first byte after the header */
    uint64_t next_line;
    size_t n_cols;         /* header fields */
    char **names;          /* header names, NUL-terminated */
    /* current record */
    size_t n;              /* == n_cols after a successful next */
    const char **field;
    size_t *len;
    bool *quoted;          /* the field was quoted in the file (an empty quoted
                              field is "", an empty unquoted one is "no value") */
    uint64_t line;         /* physical line of the record's first byte */
    uint64_t row;          /* data rows read so far (1 = first) */
    const char *raw;
    size_t raw_len;
    /* scratch for unescaped quoted fields */
    char *scratch;
    size_t scratch_cap;
    size_t *off;           /* per-field offset into scratch, or SIZE_MAX */
    size_t cap;
} cvm_runcsv;

/** @brief Map path and read its header. CVM_EIO when it cannot be read,
 *  CVM_EDATA when it has no header line. On failure r needs no close. */
int cvm_runcsv_open(cvm_runcsv *r, const char *path, cvm_err *err);
/** @brief Next data record: 1, 0 at the end, or a negative CVM_E* status. */
int cvm_runcsv_next(cvm_runcsv *r, cvm_err *err);
/** @brief Back to the first data record. */
void cvm_runcsv_rewind(cvm_runcsv *r);
void cvm_runcsv_close(cvm_runcsv *r);
/** @brief Index of a header name, -1 when absent. */
int cvm_runcsv_col(const cvm_runcsv *r, const char *name);
/** @brief Field i of the current record as a NUL-terminated copy in buf
 *  (truncated to cap-1 bytes); returns buf. */
const char *cvm_runcsv_str(const cvm_runcsv *r, size_t i, char *buf, size_t cap);
/** @brief Field i parsed as a number; false when empty or not a number. */
bool cvm_runcsv_num(const cvm_runcsv *r, size_t i, double *out);

/** @brief true when s[0..len) is a canonical integer / a number / an ISO date. */
bool cvm_runcsv_is_integer(const char *s, size_t len);
bool cvm_runcsv_is_number(const char *s, size_t len);
bool cvm_runcsv_is_date(const char *s, size_t len);

/** @brief Infer a type per column from every value (empty values do not
 *  vote; an all-empty column is a string). Columns named `id` or ending in
 *  `_id` or `_ids` are strings whatever their values: ids are labels, and
 *  "00123" must not become 123. types has n_cols entries. Rewinds r before
 *  and after. */
int cvm_runcsv_infer(cvm_runcsv *r, cvm_runcsv_type *types, cvm_err *err);
/** @brief Types of r's columns for a loader: from columns_json (a json_t
 *  array of {name, type, unit, doc}, as summary.json's
 *  outputs[FILE].columns; may be NULL) where it names the column, inferred
 *  (cvm_runcsv_infer) for the others. meta (optional, n_cols entries)
 *  receives each column's json_t object or NULL. Rewinds r. */
int cvm_runcsv_types(cvm_runcsv *r, const void *columns_json, cvm_runcsv_type *types,
                     const void **meta, cvm_err *err);
/** @brief "integer", "number", "string" or "date" (the names of summary.json). */
const char *cvm_runcsv_type_name(cvm_runcsv_type t);
/** @brief Parse one of those names; false when unknown. */
bool cvm_runcsv_type_parse(const char *name, cvm_runcsv_type *out);

/** @brief The *.csv files directly in dir, sorted by name (bytewise), as a
 *  NULL-terminated array of malloc'd names; free with cvm_runcsv_free_list. */
int cvm_runcsv_list(const char *dir, char ***names, size_t *n, cvm_err *err);
void cvm_runcsv_free_list(char **names, size_t n);
/** @brief Table name for a file name: "kmeans_k.csv" -> "kmeans_k"; bytes
 *  other than [A-Za-z0-9_] become '_', a leading digit gets a '_' prefix,
 *  lower-cased. Writes at most cap-1 bytes. */
void cvm_runcsv_table_name(const char *file, char *out, size_t cap);

#endif
