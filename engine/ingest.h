/*
 * ingest.h - load transactions and optional master data into cvm tables.
 *
 *     cvm_txn_spec spec;
 *     cvm_txn_spec_default(&spec);
 *     spec.path = "sample_data/transactions.csv";
 *     cvm_txn_table t = {0};
 *     cvm_rejects rej = {0};
 *     cvm_ingest_stats st;
 *     if (cvm_ingest_transactions(&spec, NULL, &t, &rej, &st, &err) != CVM_OK) ...
 *     ...
 *     cvm_txn_table_clear(&t); cvm_rejects_clear(&rej);
 *
 * Transactions are parsed in parallel chunks (csvread.h) and the result is
 * identical to a serial parse for any thread count. Rows that cannot be used
 * go to the rejects with file, line, column and reason; the caller decides
 * whether their share is acceptable (cleaning.max_reject_ratio).
 */
#ifndef CVM_INGEST_H
#define CVM_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dict.h"
#include "error.h"
#include "rejects.h"
#include "table.h"

typedef struct cvm_txn_spec {
    const char *path;
    char delimiter;
    bool header;              /* false: column names below are 1-based numbers */
    /* Column names (or numbers); NULL or "" = not present. customer and date
     * are required; order, product, quantity, unit_price/revenue, unit_cost
     * optional (no order column: each purchase day of a customer is one order;
     * no quantity: 1; revenue = quantity x unit_price unless revenue is given). */
    const char *col_customer, *col_order, *col_date, *col_product, *col_quantity,
        *col_unit_price, *col_revenue, *col_unit_cost;
    const char *date_format;  /* "auto" or strptime-style */
    /* Cleaning. */
    const char *return_prefix;        /* order ids starting with it are returns; "" = none */
    bool negative_is_return;          /* quantity < 0 or revenue < 0 marks a return */
    const char *const *exclude_products; /* non-product codes (postage, fees) */
    size_t n_exclude;
    bool drop_duplicates;
    /* Execution. */
    size_t chunk_bytes;       /* default 16 MiB; results do not depend on it */
    bool libcsv_only;         /* every line through libcsv (no quote-free fast path) */
    bool keep_order_ids;      /* keep the order id strings in out->orders */
    bool keep_lines;          /* out->line, the physical line of each row (default
                                 true); nothing after the ingest needs it, so the
                                 job runner turns it off: 40 MB less on 10M lines */
    /* Hash partition of customers: keep only customers whose id hashes to
     * `partition` modulo `partitions` (cvm_dict_hash of the id bytes), so
     * N processes can each run the per-customer stages on 1/N of the
     * customers. partitions <= 1 keeps everything. */
    unsigned partitions, partition;
    int threads;              /* <= 0: OpenMP default */
    void (*progress)(void *ctx, uint64_t done, uint64_t total);
    void *progress_ctx;
} cvm_txn_spec;

typedef struct cvm_ingest_stats {
    uint64_t bytes;           /* size of the file */
    uint64_t rows;            /* data records read (blank lines excluded) */
    uint64_t accepted;
    uint64_t rejected;
    uint64_t returns;         /* accepted lines flagged as returns */
    uint64_t excluded;        /* accepted lines with a non-product code */
    uint64_t duplicates;      /* dropped duplicates (also in rejects) */
    uint64_t utf8_repaired;   /* text fields re-encoded from Latin-1 */
    uint64_t other_partition; /* rows of customers outside this partition */
    size_t chunks;
    int boundary_repairs;     /* chunk starts that fell inside a quoted newline */
    bool orders_synthesized;  /* no order column: one order per customer-day */
    double seconds_parse;     /* parallel parse of the chunks */
    double seconds_merge;     /* id dictionaries merged and sorted */
    double seconds_sort;      /* rows ordered by (customer, day) */
} cvm_ingest_stats;

void cvm_txn_spec_default(cvm_txn_spec *s);

/**
 * @brief Load a transactions file.
 * @param extra_customers ids that must exist in the customer numbering even
 *        without transactions (the customer master), or NULL.
 * @param out  filled table; the caller frees it with cvm_txn_table_clear.
 * @param rej  rejects are appended here.
 */
int cvm_ingest_transactions(const cvm_txn_spec *spec, const cvm_dict *extra_customers,
                            cvm_txn_table *out, cvm_rejects *rej, cvm_ingest_stats *stats,
                            cvm_err *err);

/** @brief true when customer id s belongs to partition `part` of `parts`. */
bool cvm_ingest_in_partition(const char *s, size_t len, unsigned parts, unsigned part);

/* ---- master data: small files, read serially ---- */

typedef struct cvm_table_spec {
    const char *path;
    char delimiter;
    const char *const *want;  /* logical column names wanted, e.g. "id","type" */
    const char *const *col;   /* header names for them; NULL/"" = absent */
    size_t n_want;
    const int *required;      /* per wanted column: 1 = must be in the header */
    bool unique;              /* first column is a unique id (masters); false for
                                 event files (interactions): only non-empty */
} cvm_table_spec;

/* A master file read as text: rows x wanted columns; cell NULL when absent
 * or empty. Row r came from physical line line[r]. */
typedef struct cvm_text_table {
    size_t n_rows, n_cols;
    char **cell;          /* n_rows * n_cols, owned */
    uint64_t *line;
    cvm_dict *ids;        /* unique: first column interned, row r has id r */
} cvm_text_table;

/**
 * @brief Read a master-data file; the first wanted column is the row id
 * (empty ids and repeated ids are rejected, the first row wins).
 */
int cvm_ingest_text_table(const cvm_table_spec *spec, cvm_text_table *out, cvm_rejects *rej,
                          cvm_err *err);
void cvm_text_table_clear(cvm_text_table *t);
static inline const char *cvm_text_cell(const cvm_text_table *t, size_t row, size_t col)
{
    return t->cell[row * t->n_cols + col];
}

#endif
