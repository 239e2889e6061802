#include "baskets.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define NO_CATEGORY "(no category)"

void cvm_baskets_params_default(cvm_baskets_params *p)
{
    p->basket = CVM_BASKET_ORDER;
    p->item = CVM_ITEM_PRODUCT;
    p->as_of = CVM_DATE_NONE;
}

void cvm_baskets_clear(cvm_baskets *b)
{
    if (b == NULL)
        return;
    if (b->item_id)
        for (size_t i = 0; i < b->n_items; i++)
            cvm_free(b->item_id[i]);
    if (b->item_name)
        for (size_t i = 0; i < b->n_items; i++)
            cvm_free(b->item_name[i]);
    cvm_free(b->item_id);
    cvm_free(b->item_name);
    cvm_free(b->start);
    cvm_free(b->item);
    cvm_free(b->customer);
    memset(b, 0, sizeof *b);
}

/* Baskets are short (tens of items): insertion sort beats qsort's calls. */
static size_t sort_unique(int32_t *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        int32_t v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || a[i] != a[m - 1])
            a[m++] = a[i];
    return m;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sorts and deduplicates each basket in place, then closes the gaps. */
void cvm_baskets_normalize(cvm_baskets *b)
{
    size_t w = 0;
    for (size_t i = 0; i < b->n_baskets; i++) {
        size_t s = b->start[i], n = b->start[i + 1] - s;
        int32_t *row = b->item + s;
        size_t m;
        if (n > 64) {
            qsort(row, n, sizeof *row, cmp_i32);
            m = 0;
            for (size_t k = 0; k < n; k++)
                if (m == 0 || row[k] != row[m - 1])
                    row[m++] = row[k];
        } else {
            m = sort_unique(row, n);
        }
        b->start[i] = w;
        memmove(b->item + w, row, m * sizeof *row);
        w += m;
    }
    b->start[b->n_baskets] = w;
    int32_t *shrunk = cvm_reallocarray(b->item, w ? w : 1, sizeof *b->item);
    if (shrunk)
        b->item = shrunk;
}

int cvm_baskets_from_rows(size_t n, const size_t *start, const int32_t *raw, size_t n_items,
                          cvm_baskets *b, cvm_err *err)
{
    memset(b, 0, sizeof *b);
    size_t total = start[n];
    b->start = cvm_malloc((n + 1) * sizeof *b->start);
    b->item = cvm_malloc((total ? total : 1) * sizeof *b->item);
    if (!b->start || !b->item) {
        cvm_baskets_clear(b);
        return CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory for %zu items", total);
    }
    memcpy(b->start, start, (n + 1) * sizeof *start);
    memcpy(b->item, raw, total * sizeof *raw);
    b->n_baskets = n;
    b->n_items = n_items;
    cvm_baskets_normalize(b);
    return CVM_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Item of each product (-1 for none) plus the item labels. */
static int item_map(const cvm_baskets_params *p, const cvm_txn_table *t,
                    const cvm_text_table *products, int32_t *map, cvm_baskets *b, cvm_err *err)
{
    size_t np = cvm_dict_size(t->products);
    if (p->item == CVM_ITEM_PRODUCT) {
        b->n_items = np;
        b->item_id = cvm_calloc(np ? np : 1, sizeof *b->item_id);
        b->item_name = cvm_calloc(np ? np : 1, sizeof *b->item_name);
        if (!b->item_id || !b->item_name)
            return CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory");
        for (size_t i = 0; i < np; i++) {
            const char *id = cvm_dict_str(t->products, (int32_t)i);
            const char *name = NULL;
            if (products) {
                int32_t row = cvm_dict_find(products->ids, id, strlen(id));
                if (row >= 0)
                    name = cvm_text_cell(products, (size_t)row, 1);
            }
            map[i] = (int32_t)i;
            b->item_id[i] = cvm_strdup(id);
            b->item_name[i] = cvm_strdup(name ? name : "");
            if (!b->item_id[i] || !b->item_name[i])
                return CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory");
        }
        return CVM_OK;
    }
    if (products == NULL)
        return CVM_FAIL(err, CVM_ECONFIG,
                        "baskets: items by category need the product master (input.products.path)");
    /* Categories: distinct labels, sorted bytewise. */
    const char **cat = cvm_calloc(np ? np : 1, sizeof *cat);
    char **uniq = cvm_calloc(np ? np : 1, sizeof *uniq);
    int rc = CVM_OK;
    if (!cat || !uniq) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory");
        goto done;
    }
    size_t nu = 0;
    for (size_t i = 0; i < np; i++) {
        const char *id = cvm_dict_str(t->products, (int32_t)i);
        int32_t row = cvm_dict_find(products->ids, id, strlen(id));
        const char *c = row >= 0 ? cvm_text_cell(products, (size_t)row, 2) : NULL;
        cat[i] = c && *c ? c : NO_CATEGORY;
        uniq[nu++] = (char *)cat[i];
    }
    qsort(uniq, nu, sizeof *uniq, cmp_str);
    size_t m = 0;
    for (size_t i = 0; i < nu; i++)
        if (m == 0 || strcmp(uniq[i], uniq[m - 1]) != 0)
            uniq[m++] = uniq[i];
    b->n_items = m;
    b->item_id = cvm_calloc(m ? m : 1, sizeof *b->item_id);
    b->item_name = cvm_calloc(m ? m : 1, sizeof *b->item_name);
    if (!b->item_id || !b->item_name) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory");
        goto done;
    }
    for (size_t i = 0; i < m; i++) {
        b->item_id[i] = cvm_strdup(uniq[i]);
        b->item_name[i] = cvm_strdup(uniq[i]);
        if (!b->item_id[i] || !b->item_name[i]) {
            rc = CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory");
            goto done;
        }
    }
    for (size_t i = 0; i < np; i++) {
        const char *key = cat[i];
        char **hit = bsearch(&key, uniq, m, sizeof *uniq, cmp_str);
        map[i] = (int32_t)(hit - uniq);
    }
done:
    cvm_free(cat);
    cvm_free(uniq);
    return rc;
}

int cvm_baskets_build(const cvm_baskets_params *p, const cvm_txn_table *t,
                      const cvm_text_table *products, cvm_baskets *out, cvm_err *err)
{
    memset(out, 0, sizeof *out);
    if (t->products == NULL || t->product == NULL)
        return CVM_FAIL(err, CVM_EDATA,
                        "baskets: the transactions have no product column "
                        "(input.transactions.columns.product); rules need products");
    size_t np = cvm_dict_size(t->products);
    int32_t *map = cvm_malloc((np ? np : 1) * sizeof *map);
    if (map == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory");
    int rc = item_map(p, t, products, map, out, err);
    bool by_order = p->basket == CVM_BASKET_ORDER;
    size_t n_groups = by_order ? t->n_orders : t->n_customers;
    int32_t *bask = NULL;
    if (rc == CVM_OK) {
        /* Basket number of each order (or customer), -1 when it has no
         * non-return line before as_of. */
        bask = cvm_malloc((n_groups ? n_groups : 1) * sizeof *bask);
        if (bask == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory");
    }
    if (rc != CVM_OK) {
        cvm_free(map);
        cvm_baskets_clear(out);
        return rc;
    }
    for (size_t g = 0; g < n_groups; g++)
        bask[g] = -1;
    for (size_t r = 0; r < t->n_rows; r++) {
        if ((t->flags[r] & CVM_TXN_RETURN) || (p->as_of != CVM_DATE_NONE && t->day[r] >= p->as_of))
            continue;
        size_t g = by_order ? (size_t)t->order[r] : (size_t)t->customer[r];
        bask[g] = 0;
    }
    size_t nb = 0;
    for (size_t g = 0; g < n_groups; g++)
        if (bask[g] == 0)
            bask[g] = (int32_t)nb++;
    out->n_baskets = nb;
    out->start = cvm_calloc(nb + 2, sizeof *out->start);
    out->customer = cvm_malloc((nb ? nb : 1) * sizeof *out->customer);
    if (!out->start || !out->customer) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory for %zu baskets", nb);
        goto fail;
    }
    /* Counting sort of the purchase lines by basket. */
    for (size_t r = 0; r < t->n_rows; r++) {
        if (t->flags[r] & (CVM_TXN_RETURN | CVM_TXN_EXCLUDED) || t->product[r] < 0 ||
            (p->as_of != CVM_DATE_NONE && t->day[r] >= p->as_of))
            continue;
        size_t g = by_order ? (size_t)t->order[r] : (size_t)t->customer[r];
        out->start[(size_t)bask[g] + 2]++;
    }
    for (size_t i = 2; i < nb + 2; i++)
        out->start[i] += out->start[i - 1];
    size_t total = out->start[nb + 1];
    out->item = cvm_malloc((total ? total : 1) * sizeof *out->item);
    if (out->item == NULL) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "baskets: out of memory for %zu lines", total);
        goto fail;
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        if ((t->flags[r] & CVM_TXN_RETURN) || (p->as_of != CVM_DATE_NONE && t->day[r] >= p->as_of))
            continue;
        size_t g = by_order ? (size_t)t->order[r] : (size_t)t->customer[r];
        size_t b = (size_t)bask[g];
        /* start[b + 1] is the fill cursor of basket b; after the loop it is
         * the end of b, i.e. the start of b + 1. */
        if (!(t->flags[r] & CVM_TXN_EXCLUDED) && t->product[r] >= 0)
            out->item[out->start[b + 1]++] = map[t->product[r]];
        out->customer[b] = t->customer[r];
    }
    cvm_baskets_normalize(out);
    cvm_free(map);
    cvm_free(bask);
    return CVM_OK;
fail:
    cvm_free(map);
    cvm_free(bask);
    cvm_baskets_clear(out);
    return rc;
}
