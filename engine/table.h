/*
 * table.h - the two tables every stage shares.
 *
 * cvm_txn_table: transaction lines as columns, sorted by (customer, day,
 * file order), with per-customer row offsets: the rows of customer c are
 * [cust_start[c], cust_start[c+1]). Every per-customer computation is a loop
 * over those contiguous ranges, parallel over customers, and a hash partition
 * of customers is a natural unit for spreading a job over machines later.
 * Customers are numbered in bytewise order of their id (so "ties broken by
 * customer id" is "ties broken by index"); products too; orders in order of
 * first appearance in the file.
 *
 * cvm_custtab: one row per customer (same numbering), a registry of named,
 * typed, documented columns. Each stage adds its columns; publishing writes
 * whatever columns exist, in the order they were added, with their docs.
 */
#ifndef CVM_TABLE_H
#define CVM_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dict.h"
#include "error.h"

enum {
    CVM_TXN_RETURN = 1u << 0,   /* a return or cancellation: not a purchase */
    CVM_TXN_EXCLUDED = 1u << 1, /* a non-product code (postage, fees): no revenue */
};

typedef struct cvm_txn_table {
    size_t n_rows;
    int32_t *customer;   /* customer index */
    int32_t *order;      /* order index */
    int32_t *day;        /* days since 1970-01-01 */
    int32_t *product;    /* product index, -1 when no product column */
    double *quantity;
    double *revenue;     /* line revenue: quantity x unit price, or the revenue column */
    double *cost;        /* line cost of goods; NAN when unknown */
    uint8_t *flags;      /* CVM_TXN_* */
    uint32_t *line;      /* physical line in the input file; NULL unless the
                            ingest spec kept them (keep_lines) */
    size_t n_customers;  /* == cvm_dict_size(customers) */
    size_t *cust_start;  /* n_customers + 1 offsets */
    cvm_dict *customers; /* id strings, in index order (sorted) */
    cvm_dict *orders;    /* order id strings; NULL unless the ingest spec asked
                            for them (keep_order_ids): nothing downstream needs
                            them and on 10M lines they cost ~100 MB */
    size_t n_orders;     /* distinct orders: order[] is in 0..n_orders-1 */
    cvm_dict *products;  /* sorted */
    bool has_cost;       /* some line had a cost (column or product master) */
    void *map_base;      /* non-NULL: the ten arrays above (customer .. line,
                            cust_start) live in this mapping of a parse cache
                            file (cvm_cache_load) and are not separately
                            allocated; clear unmaps it */
    size_t map_len;
} cvm_txn_table;

/** @brief Free (or unmap) every column and dictionary; t itself is the caller's. */
void cvm_txn_table_clear(cvm_txn_table *t);

typedef enum {
    CVM_COL_INT,    /* int64_t */
    CVM_COL_DOUBLE, /* double; NAN = empty */
    CVM_COL_STR,    /* char * owned by the table; NULL = empty */
    CVM_COL_DATE,   /* int32_t day number; INT32_MIN = empty */
} cvm_col_type;

#define CVM_DATE_NONE INT32_MIN
#define CVM_INT_NONE INT64_MIN

typedef struct cvm_column {
    char *name;
    cvm_col_type type;
    char *unit;     /* "days", "currency", "share", "" */
    char *doc;
    int decimals;   /* DOUBLE: digits written to CSV (-1: shortest exact) */
    void *data;     /* n_rows values of the type */
    bool labels;    /* STR: cells point to the table's labels (not owned) */
} cvm_column;

typedef struct cvm_custtab {
    size_t n_rows;
    size_t n_cols, cap_cols;
    cvm_column **cols;   /* each column separately allocated: pointers from
                            cvm_custtab_find stay valid as columns are added */
    cvm_dict *labels;    /* strings shared by label columns */
} cvm_custtab;

/** @brief Empty table of n_rows rows; NULL on ENOMEM. */
cvm_custtab *cvm_custtab_new(size_t n_rows);
void cvm_custtab_free(cvm_custtab *t);
/** Add a column filled with "empty" values; returns its data or NULL on
 *  ENOMEM or a duplicate name (err says which). */
int64_t *cvm_custtab_add_int(cvm_custtab *t, const char *name, const char *unit,
                             const char *doc, cvm_err *err);
double *cvm_custtab_add_double(cvm_custtab *t, const char *name, const char *unit,
                               const char *doc, int decimals, cvm_err *err);
char **cvm_custtab_add_str(cvm_custtab *t, const char *name, const char *doc, cvm_err *err);
/** @brief A STR column of labels: a small vocabulary (grades, tiers, action
 *  codes) whose cells all point to strings interned once in the table by
 *  cvm_custtab_label, instead of a copy per customer. Read like any STR
 *  column; a cell is NULL (empty) or a cvm_custtab_label pointer. */
char **cvm_custtab_add_labels(cvm_custtab *t, const char *name, const char *doc, cvm_err *err);
/** @brief The table's copy of s, for label column cells: valid until the
 *  table is freed; NULL on ENOMEM. Not thread-safe: intern the vocabulary
 *  before a parallel loop assigns the cells. */
const char *cvm_custtab_label(cvm_custtab *t, const char *s);
int32_t *cvm_custtab_add_date(cvm_custtab *t, const char *name, const char *doc, cvm_err *err);
/** @brief Column by name, NULL when absent. */
const cvm_column *cvm_custtab_find(const cvm_custtab *t, const char *name);
/** @brief Double value of a numeric column cell (INT, DOUBLE, DATE), NAN when empty. */
double cvm_column_number(const cvm_column *c, size_t row);

#endif
