/*
 * rejects.h - input rows that could not be used, each with its reason, for
 * rejects.csv and the manifest. Nothing is dropped silently: every row the
 * loaders skip lands here (or is counted as a blank line by libcsv).
 */
#ifndef CVM_REJECTS_H
#define CVM_REJECTS_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

/* X-macro: code, name in rejects.csv, description for docs. */
#define CVM_REJECT_MAP(X)                                                          \
    X(FIELD_COUNT, "field_count", "the row has more or fewer fields than the header") \
    X(MISSING_CUSTOMER, "missing_customer", "the customer id is empty")          \
    X(MISSING_ORDER, "missing_order", "the order id is empty")                    \
    X(MISSING_DATE, "missing_date", "the date is empty")                          \
    X(BAD_DATE, "bad_date", "the date does not match the configured format or is not a real date") \
    X(BAD_NUMBER, "bad_number", "a numeric field is not a plain decimal number")  \
    X(MISSING_NUMBER, "missing_number", "a required numeric field is empty")      \
    X(DUPLICATE, "duplicate", "the same line (all mapped fields equal) appeared before; dropped by cleaning.drop_duplicates") \
    X(DUPLICATE_ID, "duplicate_id", "a master-data id appears twice; the first row wins") \
    X(UNKNOWN_CUSTOMER, "unknown_customer", "an interaction names a customer with no transactions and no master row") \
    X(OUT_OF_RANGE, "out_of_range", "a value is outside its valid range (a negative complaint count in the customer master)")

typedef enum {
#define CVM__REJ_ENUM(code, name, doc) CVM_REJECT_##code,
    CVM_REJECT_MAP(CVM__REJ_ENUM)
#undef CVM__REJ_ENUM
    CVM_REJECT_COUNT
} cvm_reject_reason;

const char *cvm_reject_name(cvm_reject_reason r);
const char *cvm_reject_doc(cvm_reject_reason r);

typedef struct cvm_reject {
    const char *file;      /* borrowed: the input path, lives as long as the config */
    uint64_t line;
    int column;            /* 1-based; 0 = the whole row */
    char *field;           /* column name or "" (owned) */
    cvm_reject_reason reason;
    char *detail;          /* owned */
    char *raw;             /* owned, the row's text (truncated at 4 KiB) */
} cvm_reject;

typedef struct cvm_rejects {
    size_t n, cap;
    cvm_reject *items;
    uint64_t by_reason[CVM_REJECT_COUNT];
} cvm_rejects;

/** @brief Append a reject (copies strings). */
int cvm_rejects_add(cvm_rejects *r, const char *file, uint64_t line, int column,
                    const char *field, cvm_reject_reason reason, const char *detail,
                    const char *raw, size_t raw_len, cvm_err *err);
/** @brief Move all of src's items to the end of dst (src emptied). */
int cvm_rejects_append(cvm_rejects *dst, cvm_rejects *src, cvm_err *err);
void cvm_rejects_clear(cvm_rejects *r);

#endif
