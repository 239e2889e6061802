/*
 * baskets.h - market baskets in compressed rows, the input of the rules
 * model (fpgrowth.h, rules.h). Part of the rules model; owned by it.
 *
 *     cvm_baskets_params bp;
 *     cvm_baskets_params_default(&bp);          // basket = order, item = product
 *     bp.as_of = as_of;
 *     cvm_baskets b = {0};
 *     if (cvm_baskets_build(&bp, &txn, products, &b, &err) != CVM_OK) ...
 *     for (size_t k = b.start[i]; k < b.start[i + 1]; k++) use(b.item[k]);
 *     cvm_baskets_clear(&b);
 *
 * Conventions (the ones of the truth in `cvm gen` data, R arules and
 * Borgelt's miners):
 * - a basket is an order (default) or the whole history of a customer; only
 *   purchase lines count: returns (CVM_TXN_RETURN) and non-product codes
 *   (CVM_TXN_EXCLUDED) are not purchases, and lines dated on or after as_of
 *   are ignored;
 * - an order (or customer) with at least one non-return line before as_of is
 *   a basket even when all its lines are excluded codes: it is then an empty
 *   basket, which counts in the number of baskets (the denominator of every
 *   support) but holds no item;
 * - items are distinct within a basket (quantities do not matter) and sorted
 *   ascending;
 * - items are products, or product categories from the product master
 *   (products without a master row or without a category become the item
 *   "(no category)");
 * - item numbers follow the bytewise order of their ids, so "ties broken by
 *   item" means "by id".
 * Baskets are numbered in order of first appearance of the order in the
 * input (orders) or by customer index (customers). Building is serial and
 * deterministic; the result is read-only and may be shared by threads.
 */
#ifndef CVM_BASKETS_H
#define CVM_BASKETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "ingest.h"
#include "table.h"

typedef enum { CVM_BASKET_ORDER, CVM_BASKET_CUSTOMER } cvm_basket_kind;
typedef enum { CVM_ITEM_PRODUCT, CVM_ITEM_CATEGORY } cvm_item_kind;

typedef struct cvm_baskets_params {
    cvm_basket_kind basket;   /* default CVM_BASKET_ORDER */
    cvm_item_kind item;       /* default CVM_ITEM_PRODUCT */
    int32_t as_of;            /* lines on or after it are ignored; CVM_DATE_NONE = none */
} cvm_baskets_params;

typedef struct cvm_baskets {
    size_t n_baskets;
    size_t *start;            /* n_baskets + 1 offsets into item */
    int32_t *item;            /* item numbers, ascending within a basket */
    int32_t *customer;        /* customer index of each basket; NULL when unknown (FIMI) */
    size_t n_items;           /* items are 0 .. n_items-1 */
    char **item_id;           /* n_items owned strings, bytewise ascending */
    char **item_name;         /* n_items owned strings ("" when unknown) */
} cvm_baskets;

void cvm_baskets_params_default(cvm_baskets_params *p);

/**
 * @brief Build baskets from the transaction table.
 * @param products product master (columns id, name, category, unit_cost) or
 *        NULL; needed for item = category, used for names otherwise.
 * @param out filled; the caller frees it with cvm_baskets_clear.
 * @return CVM_OK; CVM_EDATA when the table has no product column;
 *         CVM_ECONFIG for item = category without a product master; CVM_ENOMEM.
 */
int cvm_baskets_build(const cvm_baskets_params *p, const cvm_txn_table *t,
                      const cvm_text_table *products, cvm_baskets *out, cvm_err *err);

/** @brief Free every array; b itself is the caller's. NULL-safe, idempotent. */
void cvm_baskets_clear(cvm_baskets *b);

/**
 * @brief Fill b from raw rows: n baskets, basket i holding items
 * raw[start[i] .. start[i+1]) (any order, repeats allowed) out of n_items;
 * the rows are sorted and deduplicated into b, which takes ownership of
 * nothing (labels stay NULL). Used by the FIMI reader and the tests.
 */
int cvm_baskets_from_rows(size_t n, const size_t *start, const int32_t *raw, size_t n_items,
                          cvm_baskets *b, cvm_err *err);

/** @brief Sort and deduplicate every basket of b in place (rows filled in any
 *  order with repeats), closing the gaps; shrinks b->item. */
void cvm_baskets_normalize(cvm_baskets *b);

/** @brief Number of item occurrences (sum of basket sizes). */
static inline size_t cvm_baskets_size(const cvm_baskets *b)
{
    return b->start ? b->start[b->n_baskets] : 0;
}

#endif
