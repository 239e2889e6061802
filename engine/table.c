#include "table.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>

#include "alloc.h"

void cvm_txn_table_clear(cvm_txn_table *t)
{
    if (t == NULL)
        return;
    if (t->map_base) {
        munmap(t->map_base, t->map_len);
        t->customer = t->order = t->day = t->product = NULL;
        t->quantity = t->revenue = t->cost = NULL;
        t->flags = NULL;
        t->line = NULL;
        t->cust_start = NULL;
    }
    cvm_free(t->customer);
    cvm_free(t->order);
    cvm_free(t->day);
    cvm_free(t->product);
    cvm_free(t->quantity);
    cvm_free(t->revenue);
    cvm_free(t->cost);
    cvm_free(t->flags);
    cvm_free(t->line);
    cvm_free(t->cust_start);
    cvm_dict_free(t->customers);
    cvm_dict_free(t->orders);
    cvm_dict_free(t->products);
    memset(t, 0, sizeof *t);
}

cvm_custtab *cvm_custtab_new(size_t n_rows)
{
    cvm_custtab *t = cvm_calloc(1, sizeof *t);
    if (t)
        t->n_rows = n_rows;
    return t;
}

void cvm_custtab_free(cvm_custtab *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->n_cols; i++) {
        cvm_column *c = t->cols[i];
        if (c->type == CVM_COL_STR && c->data && !c->labels) {
            char **s = c->data;
            for (size_t r = 0; r < t->n_rows; r++)
                cvm_free(s[r]);
        }
        cvm_free(c->data);
        cvm_free(c->name);
        cvm_free(c->unit);
        cvm_free(c->doc);
        cvm_free(c);
    }
    cvm_free(t->cols);
    cvm_dict_free(t->labels);
    cvm_free(t);
}

static void *add_col(cvm_custtab *t, const char *name, cvm_col_type type, const char *unit,
                     const char *doc, int decimals, size_t elem, cvm_err *err)
{
    if (cvm_custtab_find(t, name)) {
        CVM_FAIL(err, CVM_EINTERNAL, "customer table: column '%s' added twice", name);
        return NULL;
    }
    if (t->n_cols == t->cap_cols) {
        size_t cap = t->cap_cols ? t->cap_cols * 2 : 32;
        cvm_column **nc = cvm_reallocarray(t->cols, cap, sizeof *nc);
        if (nc == NULL) {
            CVM_FAIL(err, CVM_ENOMEM, "out of memory adding column '%s'", name);
            return NULL;
        }
        t->cols = nc;
        t->cap_cols = cap;
    }
    cvm_column *cp = cvm_calloc(1, sizeof *cp);
    if (cp == NULL) {
        CVM_FAIL(err, CVM_ENOMEM, "out of memory adding column '%s'", name);
        return NULL;
    }
    cvm_column c = {0};
    c.name = cvm_strdup(name);
    c.unit = cvm_strdup(unit ? unit : "");
    c.doc = cvm_strdup(doc ? doc : "");
    c.type = type;
    c.decimals = decimals;
    c.data = cvm_malloc((t->n_rows ? t->n_rows : 1) * elem);
    if (!c.name || !c.unit || !c.doc || !c.data) {
        cvm_free(c.name);
        cvm_free(c.unit);
        cvm_free(c.doc);
        cvm_free(c.data);
        cvm_free(cp);
        CVM_FAIL(err, CVM_ENOMEM, "out of memory adding column '%s'", name);
        return NULL;
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        switch (type) {
        case CVM_COL_INT: ((int64_t *)c.data)[r] = CVM_INT_NONE; break;
        case CVM_COL_DOUBLE: ((double *)c.data)[r] = NAN; break;
        case CVM_COL_STR: ((char **)c.data)[r] = NULL; break;
        case CVM_COL_DATE: ((int32_t *)c.data)[r] = CVM_DATE_NONE; break;
        }
    }
    *cp = c;
    t->cols[t->n_cols++] = cp;
    return c.data;
}

int64_t *cvm_custtab_add_int(cvm_custtab *t, const char *name, const char *unit,
                             const char *doc, cvm_err *err)
{
    return add_col(t, name, CVM_COL_INT, unit, doc, 0, sizeof(int64_t), err);
}

double *cvm_custtab_add_double(cvm_custtab *t, const char *name, const char *unit,
                               const char *doc, int decimals, cvm_err *err)
{
    return add_col(t, name, CVM_COL_DOUBLE, unit, doc, decimals, sizeof(double), err);
}

char **cvm_custtab_add_str(cvm_custtab *t, const char *name, const char *doc, cvm_err *err)
{
    return add_col(t, name, CVM_COL_STR, "", doc, 0, sizeof(char *), err);
}

char **cvm_custtab_add_labels(cvm_custtab *t, const char *name, const char *doc, cvm_err *err)
{
    char **cells = add_col(t, name, CVM_COL_STR, "", doc, 0, sizeof(char *), err);
    if (cells)
        t->cols[t->n_cols - 1]->labels = true;
    return cells;
}

const char *cvm_custtab_label(cvm_custtab *t, const char *s)
{
    if (t->labels == NULL && (t->labels = cvm_dict_new(64)) == NULL)
        return NULL;
    int32_t id = cvm_dict_intern(t->labels, s, strlen(s));
    return id < 0 ? NULL : cvm_dict_str(t->labels, id);
}

int32_t *cvm_custtab_add_date(cvm_custtab *t, const char *name, const char *doc, cvm_err *err)
{
    return add_col(t, name, CVM_COL_DATE, "date", doc, 0, sizeof(int32_t), err);
}

const cvm_column *cvm_custtab_find(const cvm_custtab *t, const char *name)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->cols[i]->name, name) == 0)
            return t->cols[i];
    return NULL;
}

double cvm_column_number(const cvm_column *c, size_t row)
{
    switch (c->type) {
    case CVM_COL_INT: {
        int64_t v = ((const int64_t *)c->data)[row];
        return v == CVM_INT_NONE ? NAN : (double)v;
    }
    case CVM_COL_DOUBLE:
        return ((const double *)c->data)[row];
    case CVM_COL_DATE: {
        int32_t v = ((const int32_t *)c->data)[row];
        return v == CVM_DATE_NONE ? NAN : (double)v;
    }
    case CVM_COL_STR:
        break;
    }
    return NAN;
}
