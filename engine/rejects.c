#include "rejects.h"

#include <string.h>

#include "alloc.h"
#include "textparse.h"

static const char *const names[] = {
#define CVM__REJ_NAME(code, name, doc) name,
    CVM_REJECT_MAP(CVM__REJ_NAME)
#undef CVM__REJ_NAME
};
static const char *const docs[] = {
#define CVM__REJ_DOC(code, name, doc) doc,
    CVM_REJECT_MAP(CVM__REJ_DOC)
#undef CVM__REJ_DOC
};

const char *cvm_reject_name(cvm_reject_reason r)
{
    return (unsigned)r < CVM_REJECT_COUNT ? names[r] : "unknown";
}
const char *cvm_reject_doc(cvm_reject_reason r)
{
    return (unsigned)r < CVM_REJECT_COUNT ? docs[r] : "";
}

#define RAW_MAX 4096

static int grow(cvm_rejects *r, size_t need, cvm_err *err)
{
    if (need <= r->cap)
        return CVM_OK;
    size_t cap = r->cap ? r->cap : 64;
    while (cap < need)
        cap *= 2;
    cvm_reject *ni = cvm_reallocarray(r->items, cap, sizeof *ni);
    if (ni == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory recording rejected rows");
    r->items = ni;
    r->cap = cap;
    return CVM_OK;
}

int cvm_rejects_add(cvm_rejects *r, const char *file, uint64_t line, int column,
                    const char *field, cvm_reject_reason reason, const char *detail,
                    const char *raw, size_t raw_len, cvm_err *err)
{
    CVM_TRY(grow(r, r->n + 1, err));
    if (raw_len > RAW_MAX)
        raw_len = RAW_MAX;
    cvm_reject *x = &r->items[r->n];
    x->file = file;
    x->line = line;
    x->column = column;
    x->reason = reason;
    x->field = cvm_strdup(field ? field : "");
    x->detail = cvm_strdup(detail ? detail : "");
    /* Raw text goes to CSV and JSON outputs, which must stay valid UTF-8. */
    x->raw = cvm_malloc(2 * raw_len + 1);
    if (!x->field || !x->detail || !x->raw) {
        cvm_free(x->field);
        cvm_free(x->detail);
        cvm_free(x->raw);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory recording rejected rows");
    }
    cvm_utf8_repair(raw ? raw : "", raw ? raw_len : 0, x->raw);
    r->n++;
    r->by_reason[reason]++;
    return CVM_OK;
}

int cvm_rejects_append(cvm_rejects *dst, cvm_rejects *src, cvm_err *err)
{
    CVM_TRY(grow(dst, dst->n + src->n, err));
    if (src->n)
        memcpy(dst->items + dst->n, src->items, src->n * sizeof *src->items);
    dst->n += src->n;
    for (int i = 0; i < CVM_REJECT_COUNT; i++)
        dst->by_reason[i] += src->by_reason[i];
    cvm_free(src->items);
    memset(src, 0, sizeof *src);
    return CVM_OK;
}

void cvm_rejects_clear(cvm_rejects *r)
{
    for (size_t i = 0; i < r->n; i++) {
        cvm_free(r->items[i].field);
        cvm_free(r->items[i].detail);
        cvm_free(r->items[i].raw);
    }
    cvm_free(r->items);
    memset(r, 0, sizeof *r);
}
