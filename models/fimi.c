#include "fimi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dict.h"
#include "parallel.h"

static inline int is_sep(unsigned char c)
{
    return c == ' ' || c == '\t' || c == ',' || c == '\r' || c == '\v' || c == '\f';
}

#define CACHE_BITS 12

/* One chunk of lines, parsed by one thread into its own dictionary. */
typedef struct chunk {
    const unsigned char *p, *end;
    cvm_dict *d;
    size_t *start;            /* n_lines + 1 */
    int32_t *item;
    size_t n_lines, n_items, cap;
    int status;               /* CVM_OK, CVM_EDATA (NUL), CVM_ELIMIT, CVM_ENOMEM */
    size_t bad_line;          /* chunk-local, 1-based */
    int32_t *remap;           /* local id -> global rank */
    uint64_t ckey[1 << CACHE_BITS]; /* label cache (0 = empty: labels are never empty) */
    int32_t cid[1 << CACHE_BITS];
} chunk;

static void parse_chunk(chunk *c)
{
    size_t lines = 0;
    for (const unsigned char *q = c->p; q < c->end;) {
        const unsigned char *nl = memchr(q, '\n', (size_t)(c->end - q));
        lines++;
        q = nl ? nl + 1 : c->end;
    }
    c->d = cvm_dict_new(1024);
    c->start = cvm_malloc((lines + 1) * sizeof *c->start);
    c->cap = (size_t)(c->end - c->p) / 3 + 16;
    c->item = cvm_malloc(c->cap * sizeof *c->item);
    if (!c->d || !c->start || !c->item) {
        c->status = CVM_ENOMEM;
        return;
    }
    size_t n = 0, line = 0;
    const unsigned char *p = c->p, *end = c->end;
    while (p < end) {
        c->start[line++] = n;
        for (;;) {
            while (p < end && is_sep(*p))
                p++;
            if (p == end)
                break;
            if (*p == '\n') {
                p++;
                break;
            }
            const unsigned char *s = p;
            while (p < end && !is_sep(*p) && *p != '\n' && *p != '\0')
                p++;
            if (p < end && *p == '\0') {
                c->status = CVM_EDATA;
                c->bad_line = line;
                return;
            }
            size_t tl = (size_t)(p - s);
            int32_t id;
            if (tl <= 8) {
                /* FIMI labels are mostly short numbers: a direct-mapped cache
                 * keyed by the zero-padded bytes (labels hold no NUL, so
                 * the key determines the label) skips the dictionary. */
                uint64_t v = 0;
                memcpy(&v, s, tl);
                size_t h = (size_t)((v * 0x9E3779B97F4A7C15ULL) >> (64 - CACHE_BITS));
                if (c->ckey[h] == v) {
                    id = c->cid[h];
                } else {
                    id = cvm_dict_intern(c->d, (const char *)s, tl);
                    if (id >= 0) {
                        c->ckey[h] = v;
                        c->cid[h] = id;
                    }
                }
            } else {
                id = cvm_dict_intern(c->d, (const char *)s, tl);
            }
            if (id < 0) {
                c->status = cvm_dict_size(c->d) >= INT32_MAX - 1 ? CVM_ELIMIT : CVM_ENOMEM;
                c->bad_line = line;
                return;
            }
            if (n == c->cap) {
                int32_t *g = cvm_reallocarray(c->item, c->cap * 2, sizeof *g);
                if (g == NULL) {
                    c->status = CVM_ENOMEM;
                    return;
                }
                c->item = g;
                c->cap *= 2;
            }
            c->item[n++] = id;
        }
    }
    c->start[line] = n;
    c->n_lines = line;
    c->n_items = n;
}

static void chunk_clear(chunk *c)
{
    cvm_dict_free(c->d);
    cvm_free(c->start);
    cvm_free(c->item);
    cvm_free(c->remap);
}

int cvm_fimi_parse(const char *buf, size_t len, const char *name, int threads, cvm_baskets *out,
                   cvm_err *err)
{
    memset(out, 0, sizeof *out);
    /* Chunks start at line starts; small inputs are one chunk. */
    int nt = cvm_threads(threads);
    if (len < ((size_t)1 << 20))
        nt = 1;
    chunk *ch = cvm_calloc((size_t)nt, sizeof *ch);
    if (ch == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", name);
    const unsigned char *base = (const unsigned char *)buf, *prev = base;
    for (int k = 0; k < nt; k++) {
        const unsigned char *e = base + len;
        if (k + 1 < nt) {
            e = base + len / (size_t)nt * (size_t)(k + 1);
            if (e < prev)
                e = prev;
            const unsigned char *nl = memchr(e, '\n', (size_t)(base + len - e));
            e = nl ? nl + 1 : base + len;
        }
        ch[k].p = prev;
        ch[k].end = e;
        prev = e;
    }
#pragma omp parallel for num_threads(nt) schedule(static, 1) default(none) shared(ch, nt)
    for (int k = 0; k < nt; k++)
        parse_chunk(&ch[k]);
    int rc = CVM_OK;
    size_t lines_before = 0;
    for (int k = 0; k < nt && rc == CVM_OK; k++) {
        if (ch[k].status == CVM_EDATA)
            rc = CVM_FAIL(err, CVM_EDATA, "%s:%zu: NUL byte in an item label", name,
                          lines_before + ch[k].bad_line);
        else if (ch[k].status == CVM_ELIMIT)
            rc = CVM_FAIL(err, CVM_ELIMIT, "%s:%zu: more than 2^31 distinct items", name,
                          lines_before + ch[k].bad_line);
        else if (ch[k].status != CVM_OK)
            rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", name);
        lines_before += ch[k].n_lines;
    }
    /* One numbering: the union of the chunk dictionaries, in label order. */
    cvm_dict *g = rc == CVM_OK ? cvm_dict_new(1024) : NULL;
    if (rc == CVM_OK && g == NULL)
        rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", name);
    for (int k = 0; k < nt && rc == CVM_OK; k++) {
        size_t nl = cvm_dict_size(ch[k].d);
        ch[k].remap = cvm_malloc((nl ? nl : 1) * sizeof *ch[k].remap);
        if (ch[k].remap == NULL) {
            rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", name);
            break;
        }
        for (size_t i = 0; i < nl; i++) {
            ch[k].remap[i] = cvm_dict_intern(g, cvm_dict_str(ch[k].d, (int32_t)i),
                                             cvm_dict_len(ch[k].d, (int32_t)i));
            if (ch[k].remap[i] < 0) {
                rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", name);
                break;
            }
        }
    }
    size_t ni = g ? cvm_dict_size(g) : 0;
    int32_t *order = rc == CVM_OK ? cvm_dict_sorted_order(g) : NULL;
    int32_t *rank = rc == CVM_OK ? cvm_malloc((ni ? ni : 1) * sizeof *rank) : NULL;
    if (rc == CVM_OK) {
        out->item_id = cvm_calloc(ni ? ni : 1, sizeof *out->item_id);
        out->item_name = cvm_calloc(ni ? ni : 1, sizeof *out->item_name);
        out->n_items = ni;
        if (!order || !rank || !out->item_id || !out->item_name)
            rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", name);
    }
    for (size_t r = 0; rc == CVM_OK && r < ni; r++) {
        rank[order[r]] = (int32_t)r;
        out->item_id[r] = cvm_strdup(cvm_dict_str(g, order[r]));
        out->item_name[r] = cvm_strdup(cvm_dict_str(g, order[r]));
        if (!out->item_id[r] || !out->item_name[r])
            rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", name);
    }
    cvm_free(order);
    cvm_dict_free(g);
    size_t tot_lines = 0, tot_items = 0;
    if (rc == CVM_OK) {
        for (int k = 0; k < nt; k++) {
            size_t nl = cvm_dict_size(ch[k].d);
            for (size_t i = 0; i < nl; i++)
                ch[k].remap[i] = rank[ch[k].remap[i]];
            tot_lines += ch[k].n_lines;
        }
        out->start = cvm_malloc((tot_lines + 1) * sizeof *out->start);
        if (out->start == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", name);
    }
    cvm_free(rank);
    if (rc == CVM_OK) {
        /* Items renumbered and each basket sorted, chunk by chunk. */
#pragma omp parallel for num_threads(nt) schedule(static, 1) default(none) shared(ch, nt)
        for (int k = 0; k < nt; k++) {
            chunk *c = &ch[k];
            for (size_t x = 0; x < c->n_items; x++)
                c->item[x] = c->remap[c->item[x]];
            cvm_baskets v = {0};
            v.n_baskets = c->n_lines;
            v.start = c->start;
            v.item = c->item;
            cvm_baskets_normalize(&v);
            c->item = v.item;
            c->n_items = c->start[c->n_lines];
        }
        for (int k = 0; k < nt; k++)
            tot_items += ch[k].n_items;
        if (nt == 1) {
            /* Adopt the single chunk's rows instead of copying them. */
            cvm_free(out->start);
            out->start = ch[0].start;
            out->item = ch[0].item;
            ch[0].start = NULL;
            ch[0].item = NULL;
        } else {
            out->item = cvm_malloc((tot_items ? tot_items : 1) * sizeof *out->item);
            if (out->item == NULL) {
                rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory for %zu items", name, tot_items);
            } else {
                size_t lo = 0, io = 0;
                for (int k = 0; k < nt; k++) {
                    for (size_t i = 0; i < ch[k].n_lines; i++)
                        out->start[lo + i] = io + ch[k].start[i];
                    memcpy(out->item + io, ch[k].item, ch[k].n_items * sizeof *out->item);
                    lo += ch[k].n_lines;
                    io += ch[k].n_items;
                    cvm_free(ch[k].item);
                    ch[k].item = NULL;
                }
                out->start[tot_lines] = io;
            }
        }
        out->n_baskets = tot_lines;
    }
    for (int k = 0; k < nt; k++)
        chunk_clear(&ch[k]);
    cvm_free(ch);
    if (rc != CVM_OK)
        cvm_baskets_clear(out);
    return rc;
}

int cvm_fimi_read(const char *path, int threads, cvm_baskets *out, cvm_err *err)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1u << 20, len = 0;
    char *buf = cvm_malloc(cap);
    int rc = CVM_OK;
    if (buf == NULL)
        rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory", path);
    /* fseek/ftell would miss pipes; grow instead. */
    while (rc == CVM_OK) {
        if (len == cap) {
            char *g = cvm_realloc(buf, cap * 2);
            if (g == NULL) {
                rc = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory reading %zu bytes", path, cap * 2);
                break;
            }
            buf = g;
            cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = CVM_FAIL(err, CVM_EIO, "%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == CVM_OK)
        rc = cvm_fimi_parse(buf, len, path, threads, out, err);
    cvm_free(buf);
    return rc;
}
