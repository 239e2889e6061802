#include "ingest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "csvread.h"
#include "datetime.h"
#include "textparse.h"
#include "log.h"
#ifdef _OPENMP
#include <omp.h>
#endif

bool cvm_ingest_in_partition(const char *s, size_t len, unsigned parts, unsigned part)
{
    return parts <= 1 || cvm_dict_hash(s, len) % parts == part;
}

void cvm_txn_spec_default(cvm_txn_spec *s)
{
    memset(s, 0, sizeof *s);
    s->delimiter = ',';
    s->header = true;
    s->col_customer = "customer_id";
    s->col_order = "order_id";
    s->col_date = "date";
    s->col_product = "product_id";
    s->col_quantity = "quantity";
    s->col_unit_price = "unit_price";
    s->col_unit_cost = "unit_cost";
    s->date_format = "auto";
    s->return_prefix = "";
    s->negative_is_return = true;
    s->chunk_bytes = (size_t)16 << 20;
    s->keep_lines = true;
}

enum role { R_CUSTOMER, R_ORDER, R_DATE, R_PRODUCT, R_QTY, R_PRICE, R_REVENUE, R_COST, R_COUNT };
static const char *const role_key[R_COUNT] = {"customer", "order",      "date",    "product",
                                              "quantity", "unit_price", "revenue", "unit_cost"};

typedef struct ingest_shared {
    const cvm_txn_spec *spec;
    int col[R_COUNT];         /* 0-based column of each role, -1 absent */
    char **header;
    size_t n_fields;
    cvm_datefmt fmt;
    cvm_dict *exclude;        /* read-only during the parallel parse */
    bool lines;               /* record each row's line (kept, or for duplicates) */
    size_t return_prefix_len;
    int n_threads;
    size_t *row_hint;         /* per thread: rows of its last chunk (a capacity hint) */
    struct thread_cust *tc;   /* per thread: its customer dictionary */
    int n_tc;
    uint32_t next_epoch;      /* numbers chunk parses (atomic) */
} ingest_shared;

/* Customers are interned per thread, not per chunk: a thread's chunks share
 * most customers, so after its first chunk almost every lookup finds an
 * existing entry, and the merge sees each thread's distinct customers once
 * instead of every chunk's. A chunk still numbers its customers 0.. in
 * order of first appearance (its `cust_list` maps those to thread ids);
 * `seen` tells whether a thread id was seen in the current chunk parse. */
typedef struct thread_cust {
    cvm_dict *d;
    struct seen {
        uint32_t epoch; /* of the chunk parse that last saw this thread id */
        int32_t local;  /* its number in that chunk (one cache line for both) */
    } *seen;
    uint8_t *used;     /* per thread id: referenced by a chunk kept (merge) */
    size_t cap;
} thread_cust;

/* The previous row's id string per dictionary: most lookups end here. The
 * key is kept from the row itself (not the dictionary's copy, whose arena
 * is cold in the cache by the time the next row comes). */
typedef struct last_key {
    uint64_t k0, k1; /* cvm_dict_key16 of the string */
    size_t len;
    int32_t id;      /* -1: nothing cached */
    char tail[48];   /* bytes 16..len-1 when 16 < len <= 64 */
} last_key;

/* Products change on every line (the previous-row check rarely helps), but
 * a chunk sees only a few thousand of them: a direct-mapped cache of ids by
 * the whole key of ids up to 16 bytes (cvm_dict_key16 and the length)
 * answers most lines without hashing or probing the dictionary. */
enum { PCACHE_BITS = 12 };
typedef struct pcache_entry {
    uint64_t k0, k1;
    uint32_t len; /* UINT32_MAX: empty */
    int32_t id;
} pcache_entry;

static inline size_t pcache_slot(uint64_t k0, uint64_t k1, size_t len)
{
    uint64_t h = (k0 ^ (k1 * 0x9E3779B97F4A7C15ULL) ^ len) * 0xD6E8FEB86659FD93ULL;
    return (size_t)(h >> (64 - PCACHE_BITS));
}

/* Per-chunk results: columns with chunk-local ids, merged afterwards in
 * chunk order so the outcome equals a serial parse. */
typedef struct chunk {
    size_t n, cap;
    int32_t *cust, *order, *day, *prod;
    double *qty, *rev, *cost;
    uint8_t *flags;
    uint32_t *line;           /* local line; absolute after the merge */
    cvm_dict *dorder, *dprod;
    thread_cust *tcust;       /* the parsing thread's customers */
    int thread;               /* index of the parsing thread */
    uint32_t epoch;
    struct pcache_entry *pcache; /* products seen, by their short key (below) */
    int32_t *cust_list;       /* chunk customer number -> thread id */
    size_t n_cust, cap_cust;
    last_key last[3];     /* customer (chunk number), order, product */
    char last_date[40];   /* the previous row's date text and its day: the */
    size_t last_date_len; /* lines of an order share their timestamp */
    int32_t last_day;
    cvm_rejects rej;
    uint64_t rows, utf8_repaired, other_partition;
    char *scratch;            /* UTF-8 repair buffer */
    size_t scratch_cap;
    const ingest_shared *sh;
} chunk;

static void chunk_free(chunk *c)
{
    if (c == NULL)
        return;
    cvm_free(c->cust);
    cvm_free(c->order);
    cvm_free(c->day);
    cvm_free(c->prod);
    cvm_free(c->qty);
    cvm_free(c->rev);
    cvm_free(c->cost);
    cvm_free(c->flags);
    cvm_free(c->line);
    cvm_free(c->cust_list);
    cvm_free(c->pcache);
    cvm_dict_free(c->dorder);
    cvm_dict_free(c->dprod);
    cvm_rejects_clear(&c->rej);
    cvm_free(c->scratch);
    cvm_free(c);
}

static void *chunk_begin(void *user, size_t k)
{
    (void)k;
    chunk *c = cvm_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    ingest_shared *sh = user;
    c->sh = sh;
    /* Orders as a list: an order's lines are adjacent, so the previous-row
     * check catches repeats and a new order id needs no lookup; the merge
     * unifies the rare order that comes back later in the chunk. */
    c->dorder = cvm_dict_new_list(4096);
    c->dprod = cvm_dict_new(1024);
    /* Optional: without it every product goes to the dictionary. */
    c->pcache = cvm_malloc(((size_t)1 << PCACHE_BITS) * sizeof *c->pcache);
    for (size_t i = 0; c->pcache && i < ((size_t)1 << PCACHE_BITS); i++)
        c->pcache[i].len = UINT32_MAX;
#ifdef _OPENMP
    int t = omp_get_thread_num();
#else
    int t = 0;
#endif
    if (t >= sh->n_tc) { /* more threads than planned: cannot happen */
        chunk_free(c);
        return NULL;
    }
    c->tcust = &sh->tc[t];
    c->thread = t;
    uint32_t e;
#pragma omp atomic capture
    e = ++sh->next_epoch;
    c->epoch = e;
    for (int i = 0; i < 3; i++)
        c->last[i].id = -1;
    if (!c->dorder || !c->dprod) {
        chunk_free(c);
        return NULL;
    }
    return c;
}

static void chunk_discard(void *user, void *ctx)
{
    (void)user;
    chunk_free(ctx);
}

static int chunk_grow(chunk *c, cvm_err *err)
{
    /* Chunks are the same size: start from the thread's previous chunk's
     * rows (+1/8), so a chunk usually allocates its columns once instead of
     * copying them through several small sizes. */
    size_t hint = c->sh->row_hint ? c->sh->row_hint[c->thread] : 0;
    size_t cap = c->cap ? c->cap + c->cap / 2 : hint + hint / 8 > (1 << 16) ? hint + hint / 8 : 1 << 16;
#define GROW(f)                                                   \
    do {                                                          \
        void *p = cvm_reallocarray(c->f, cap, sizeof *c->f);      \
        if (p == NULL)                                            \
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory growing ingest buffers"); \
        c->f = p;                                                 \
    } while (0)
    GROW(cust);
    GROW(order);
    GROW(day);
    GROW(prod);
    GROW(qty);
    GROW(rev);
    GROW(cost);
    GROW(flags);
    if (c->sh->lines)
        GROW(line);
#undef GROW
    c->cap = cap;
    return CVM_OK;
}

/* A parsed chunk keeps exactly its rows: the growth slack of up to half the
 * arrays would otherwise add up over all chunks to the peak memory. */
static int chunk_end(void *ctx, cvm_err *err)
{
    chunk *c = ctx;
    if (c->sh->row_hint)
        c->sh->row_hint[c->thread] = c->n;
    cvm_dict_freeze(c->dorder);
    cvm_dict_freeze(c->dprod);
    if (c->n == 0 || c->n == c->cap)
        return CVM_OK;
    size_t n = c->n;
#define SHRINK(f)                                             \
    do {                                                      \
        void *p = cvm_reallocarray(c->f, n, sizeof *c->f);    \
        if (p == NULL)                                        \
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory shrinking ingest buffers"); \
        c->f = p;                                             \
    } while (0)
    SHRINK(cust);
    SHRINK(order);
    SHRINK(day);
    SHRINK(prod);
    SHRINK(qty);
    SHRINK(rev);
    SHRINK(cost);
    SHRINK(flags);
    if (c->sh->lines)
        SHRINK(line);
#undef SHRINK
    c->cap = n;
    return CVM_OK;
}

static int32_t intern_text_slow(chunk *c, cvm_dict *d, bool list, const char *s, size_t len,
                                uint64_t h);

/* Interning a text field in two steps. The lines of an order are
 * contiguous in real exports, so the previous row's id is checked first:
 * most order and customer lookups end there. When it misses, the hash is
 * computed and the dictionary slot prefetched in the first step, and the
 * lookup happens in the second, after the row's dates and numbers are
 * parsed: the slot's cache miss overlaps that work. */
typedef struct pending {
    const char *s;
    size_t len;
    uint64_t k0, k1, h;
    bool hit;
} pending;

static inline void intern_prepare(cvm_dict *d, const last_key *last, const char *s, size_t len,
                                  pending *p)
{
    p->s = s;
    p->len = len;
    cvm_dict_key16(s, len, &p->k0, &p->k1);
    p->hit = last->id >= 0 && last->len == len && last->k0 == p->k0 && last->k1 == p->k1 &&
             (len <= 16 || memcmp(last->tail, s + 16, len - 16) == 0);
    if (!p->hit) {
        p->h = cvm_dict_hash(s, len);
        cvm_dict_prefetch(d, p->h);
    }
}

/* Makes p's string, with id, the previous row's (id < 0: forget). */
static inline void remember(last_key *last, const pending *p, int32_t id)
{
    last->id = -1;
    if (id >= 0 && p->len <= 16 + sizeof last->tail) {
        last->id = id;
        last->len = p->len;
        last->k0 = p->k0;
        last->k1 = p->k1;
        if (p->len > 16)
            memcpy(last->tail, p->s + 16, p->len - 16);
    }
}

/* Interns a text field, re-encoding invalid UTF-8 so outputs stay valid. */
static int32_t intern_finish(chunk *c, cvm_dict *d, bool list, last_key *last, const pending *p)
{
    if (p->hit)
        return last->id;
    int32_t id = intern_text_slow(c, d, list, p->s, p->len, p->h);
    remember(last, p, id);
    return id;
}

/* Adds s to d (list: appended, cvm_dict_new_list; otherwise interned),
 * re-encoding invalid UTF-8 so outputs stay valid. */
static int32_t intern_text_slow(chunk *c, cvm_dict *d, bool list, const char *s, size_t len,
                                uint64_t h)
{
    /* ASCII ids (the usual case) are recognised 8 bytes at a time. */
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ULL)
            break;
    }
    for (; i < len; i++) {
        if ((unsigned char)s[i] >= 0x80) {
            if (cvm_utf8_valid(s, len))
                break;
            if (c->scratch_cap < 2 * len + 1) {
                char *nb = cvm_realloc(c->scratch, 2 * len + 1);
                if (nb == NULL)
                    return -1;
                c->scratch = nb;
                c->scratch_cap = 2 * len + 1;
            }
            size_t n = cvm_utf8_repair(s, len, c->scratch);
            c->utf8_repaired++;
            return list ? cvm_dict_push(d, c->scratch, n, cvm_dict_hash(c->scratch, n))
                        : cvm_dict_intern(d, c->scratch, n);
        }
    }
    return list ? cvm_dict_push(d, s, len, h) : cvm_dict_intern_h(d, s, len, h);
}

static int reject(chunk *c, const cvm_csv_record *rec, int col, cvm_reject_reason why,
                  const char *detail, cvm_err *err)
{
    const ingest_shared *sh = c->sh;
    const char *field = col >= 0 && (size_t)col < sh->n_fields ? sh->header[col] : "";
    return cvm_rejects_add(&c->rej, sh->spec->path, rec->line, col + 1, field, why, detail,
                           rec->raw, rec->raw_len, err);
}

static int parse_num(chunk *c, const cvm_csv_record *rec, int col, bool required, double *out,
                     bool *bad, cvm_err *err)
{
    *bad = false;
    if (col < 0)
        return CVM_OK;
    if (rec->len[col] == 0) {
        if (!required) {
            *out = NAN;
            return CVM_OK;
        }
        *bad = true;
        return reject(c, rec, col, CVM_REJECT_MISSING_NUMBER, "empty", err);
    }
    if (!cvm_parse_double(rec->field[col], rec->len[col], out)) {
        *bad = true;
        char detail[160];
        snprintf(detail, sizeof detail, "'%.*s' is not a number",
                 (int)(rec->len[col] > 120 ? 120 : rec->len[col]), rec->field[col]);
        return reject(c, rec, col, CVM_REJECT_BAD_NUMBER, detail, err);
    }
    return CVM_OK;
}

/* The chunk's number of a customer that is not the previous row's: interned
 * in the thread's dictionary, numbered in the chunk on first sight. */
static int32_t chunk_customer(chunk *c, const pending *p)
{
    thread_cust *tc = c->tcust;
    last_key none = {.id = -1};
    int32_t tid = intern_finish(c, tc->d, false, &none, p);
    if (tid < 0)
        return -1;
    if ((size_t)tid >= tc->cap) {
        size_t cap = tc->cap ? tc->cap * 2 : 4096;
        while (cap <= (size_t)tid)
            cap *= 2;
        struct seen *sn = cvm_reallocarray(tc->seen, cap, sizeof *sn);
        if (sn == NULL)
            return -1;
        tc->seen = sn;
        memset(tc->seen + tc->cap, 0, (cap - tc->cap) * sizeof *sn);
        tc->cap = cap;
    }
    struct seen *e = &tc->seen[tid];
    if (e->epoch != c->epoch) {
        if (c->n_cust == c->cap_cust) {
            size_t cap = c->cap_cust ? c->cap_cust * 2 : 1024;
            int32_t *l = cvm_reallocarray(c->cust_list, cap, sizeof *l);
            if (l == NULL)
                return -1;
            c->cust_list = l;
            c->cap_cust = cap;
        }
        e->epoch = c->epoch;
        e->local = (int32_t)c->n_cust;
        c->cust_list[c->n_cust++] = tid;
    }
    int32_t cid = e->local;
    remember(&c->last[0], p, cid); /* the previous-row cache holds the chunk number */
    return cid;
}

static int on_txn(void *ctx, const cvm_csv_record *rec, cvm_err *err)
{
    chunk *c = ctx;
    const ingest_shared *sh = c->sh;
    const cvm_txn_spec *sp = sh->spec;
    c->rows++;
    if (rec->n != sh->n_fields) {
        char detail[96];
        snprintf(detail, sizeof detail, "expected %zu fields, found %zu", sh->n_fields, rec->n);
        return reject(c, rec, -1, CVM_REJECT_FIELD_COUNT, detail, err);
    }
    const int *col = sh->col;
    if (rec->len[col[R_CUSTOMER]] == 0)
        return reject(c, rec, col[R_CUSTOMER], CVM_REJECT_MISSING_CUSTOMER, "empty", err);
    if (sp->partitions > 1 &&
        !cvm_ingest_in_partition(rec->field[col[R_CUSTOMER]], rec->len[col[R_CUSTOMER]],
                                 sp->partitions, sp->partition)) {
        c->other_partition++;
        return CVM_OK;
    }
    if (col[R_ORDER] >= 0 && rec->len[col[R_ORDER]] == 0)
        return reject(c, rec, col[R_ORDER], CVM_REJECT_MISSING_ORDER, "empty", err);
    pending pc, po, pp;
    intern_prepare(c->tcust->d, &c->last[0], rec->field[col[R_CUSTOMER]], rec->len[col[R_CUSTOMER]], &pc);
    if (col[R_ORDER] >= 0)
        intern_prepare(c->dorder, &c->last[1], rec->field[col[R_ORDER]], rec->len[col[R_ORDER]], &po);
    pcache_entry *pe = NULL;
    int32_t pid = -1;
    if (col[R_PRODUCT] >= 0) {
        const char *ps = rec->field[col[R_PRODUCT]];
        size_t pl = rec->len[col[R_PRODUCT]];
        if (pl <= 16 && c->pcache) {
            uint64_t k0, k1;
            cvm_dict_key16(ps, pl, &k0, &k1);
            pe = &c->pcache[pcache_slot(k0, k1, pl)];
            if (pe->len == pl && pe->k0 == k0 && pe->k1 == k1) {
                pid = pe->id;
            } else {
                pe->k0 = k0;
                pe->k1 = k1;
                pe->len = (uint32_t)pl;
                pe->id = -1; /* filled once interned below */
            }
        }
        if (pid < 0)
            intern_prepare(c->dprod, &c->last[2], ps, pl, &pp);
    }
    int32_t day;
    int dc = col[R_DATE];
    if (rec->len[dc] == 0)
        return reject(c, rec, dc, CVM_REJECT_MISSING_DATE, "empty", err);
    if (rec->len[dc] == c->last_date_len && memcmp(rec->field[dc], c->last_date, c->last_date_len) == 0) {
        day = c->last_day;
    } else if (cvm_date_parse(&sh->fmt, rec->field[dc], rec->len[dc], &day)) {
        if (rec->len[dc] <= sizeof c->last_date) {
            memcpy(c->last_date, rec->field[dc], rec->len[dc]);
            c->last_date_len = rec->len[dc];
            c->last_day = day;
        }
    } else {
        char detail[200];
        snprintf(detail, sizeof detail, "'%.*s' does not match date format '%s'",
                 (int)(rec->len[dc] > 80 ? 80 : rec->len[dc]), rec->field[dc], sh->fmt.text);
        return reject(c, rec, dc, CVM_REJECT_BAD_DATE, detail, err);
    }
    double qty = 1, price = NAN, rev = NAN, ucost = NAN;
    bool bad;
    CVM_TRY(parse_num(c, rec, col[R_QTY], true, &qty, &bad, err));
    if (bad)
        return CVM_OK;
    if (col[R_REVENUE] >= 0) {
        CVM_TRY(parse_num(c, rec, col[R_REVENUE], true, &rev, &bad, err));
    } else {
        CVM_TRY(parse_num(c, rec, col[R_PRICE], true, &price, &bad, err));
        rev = qty * price;
    }
    if (bad)
        return CVM_OK;
    CVM_TRY(parse_num(c, rec, col[R_COST], false, &ucost, &bad, err));
    if (bad)
        return CVM_OK;

    if (c->n == c->cap)
        CVM_TRY(chunk_grow(c, err));
    size_t i = c->n;
    int32_t cid = pc.hit ? c->last[0].id : chunk_customer(c, &pc);
    int32_t oid = -1;
    if (col[R_ORDER] >= 0)
        oid = intern_finish(c, c->dorder, true, &c->last[1], &po);
    if (col[R_PRODUCT] >= 0 && pid < 0) {
        pid = intern_finish(c, c->dprod, false, &c->last[2], &pp);
        if (pe)
            pe->id = pid;
    }
    if (cid < 0 || (col[R_ORDER] >= 0 && oid < 0) || (col[R_PRODUCT] >= 0 && pid < 0))
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory interning ids");
    uint8_t flags = 0;
    if (sp->negative_is_return && (qty < 0 || rev < 0))
        flags |= CVM_TXN_RETURN;
    if (sh->return_prefix_len && col[R_ORDER] >= 0 &&
        rec->len[col[R_ORDER]] >= sh->return_prefix_len) {
        /* Prefixes are a few bytes: a loop beats a call to memcmp. */
        const char *o = rec->field[col[R_ORDER]];
        size_t k = 0;
        while (k < sh->return_prefix_len && o[k] == sp->return_prefix[k])
            k++;
        if (k == sh->return_prefix_len)
            flags |= CVM_TXN_RETURN;
    }
    if (sh->exclude && col[R_PRODUCT] >= 0 &&
        cvm_dict_find(sh->exclude, rec->field[col[R_PRODUCT]], rec->len[col[R_PRODUCT]]) >= 0)
        flags |= CVM_TXN_EXCLUDED;
    if (flags & CVM_TXN_RETURN) {
        /* A return reduces revenue and cost whatever sign it was recorded
         * with (some systems keep positive amounts on return documents). */
        qty = -fabs(qty);
        rev = -fabs(rev);
        ucost = fabs(ucost);
    }
    c->cust[i] = cid;
    c->order[i] = oid;
    c->day[i] = day;
    c->prod[i] = pid;
    c->qty[i] = qty;
    c->rev[i] = rev;
    c->cost[i] = isnan(ucost) ? NAN : ucost * qty;
    c->flags[i] = flags;
    if (sh->lines)
        c->line[i] = (uint32_t)rec->line;
    c->n++;
    return CVM_OK;
}

/* Resolves a configured column (name, or number without header) to an index. */
static int resolve_col(const cvm_txn_spec *sp, char **header, size_t n, const char *want,
                       const char *key, bool required, int *out, cvm_err *err)
{
    *out = -1;
    if (want == NULL || *want == '\0') {
        if (required)
            return CVM_FAIL(err, CVM_ECONFIG, "input.transactions.columns.%s must be set", key);
        return CVM_OK;
    }
    if (!sp->header) {
        long k;
        if (!cvm_parse_long(want, strlen(want), &k) || k < 1 || (size_t)k > n)
            return CVM_FAIL(err, CVM_ECONFIG,
                            "%s: input.transactions.columns.%s = '%s' must be a column "
                            "number 1..%zu (the file has no header)", sp->path, key, want, n);
        *out = (int)(k - 1);
        return CVM_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(header[i], want) == 0) {
            *out = (int)i;
            return CVM_OK;
        }
    if (!required)
        return CVM_FAIL(err, CVM_EDATA,
                        "%s:1: column '%s' (input.transactions.columns.%s) is not in the "
                        "header; set the key to \"\" if the file has no such column",
                        sp->path, want, key);
    return CVM_FAIL(err, CVM_EDATA, "%s:1: required column '%s' (input.transactions.columns.%s) "
                    "is not in the header", sp->path, want, key);
}

typedef struct merge_maps {
    int32_t **cust, **order, **prod;  /* per chunk: local id -> global id */
} merge_maps;

/* Moves chunk column `col` into its final position dest[] (file order ->
 * sorted order) and frees the chunk's copy. */
static int scatter_column(cvm_txn_table *out, chunk **cs, size_t nk, const merge_maps *mm,
                          const uint32_t *dest, size_t total, int col)
{
    size_t n = total ? total : 1;
#define SCATTER(dst, src, type, map)                                        \
    do {                                                                    \
        type *d = cvm_malloc(n * sizeof(type));                             \
        if (d == NULL)                                                      \
            return CVM_ENOMEM;                                              \
        size_t g = 0;                                                       \
        for (size_t k = 0; k < nk; k++) {                                   \
            const type *s = (const type *)cs[k]->src;                       \
            for (size_t i = 0; i < cs[k]->n; i++, g++)                      \
                d[dest[g]] = map;                                           \
            cvm_free(cs[k]->src);                                           \
            cs[k]->src = NULL;                                              \
        }                                                                   \
        out->dst = d;                                                       \
    } while (0)
    switch (col) {
    case 0: SCATTER(customer, cust, int32_t, s[i]); break;
    case 1: SCATTER(order, order, int32_t, mm->order[k] ? mm->order[k][s[i]] : -1); break;
    case 2: SCATTER(day, day, int32_t, s[i]); break;
    case 3: SCATTER(product, prod, int32_t, mm->prod[k] ? mm->prod[k][s[i]] : -1); break;
    case 4: SCATTER(quantity, qty, double, s[i]); break;
    case 5: SCATTER(revenue, rev, double, s[i]); break;
    case 6: SCATTER(cost, cost, double, s[i]); break;
    case 7: SCATTER(flags, flags, uint8_t, s[i]); break;
    case 8: SCATTER(line, line, uint32_t, s[i]); break;
    }
#undef SCATTER
    return CVM_OK;
}

/* Merges the chunks' local dictionaries (which = 0 customers, 1 orders,
 * 2 products) into g with ids in first-appearance order (chunk order, then
 * local order): exactly what interning every string serially would give,
 * but done in parallel over hash partitions. Each string lives in one
 * partition, and a partition visits the chunks in order, so it sees every
 * string's first appearance first. maps[k][l] receives the global id. */
#define MERGE_PARTS 256

static cvm_dict *chunk_dict(chunk *c, size_t which)
{
    return which == 1 ? c->dorder : c->dprod;
}

/* Customers: the thread dictionaries' entries that a kept chunk refers to
 * go into g (which may already hold the customer master's ids; a chunk
 * parse discarded by the boundary repair can have left others). maps[k][l]
 * receives the id in g of chunk k's customer l. Ids in g depend on the
 * thread schedule, but the caller renumbers g in sorted order. */
static int merge_customers(cvm_dict *g, const ingest_shared *sh, chunk **cs, size_t nk,
                           int32_t **maps, cvm_err *err)
{
    int rc = CVM_OK;
    int32_t **gid = cvm_calloc((size_t)sh->n_tc, sizeof *gid);
    if (gid == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory merging ids");
    for (int t = 0; t < sh->n_tc && rc == CVM_OK; t++) {
        size_t n = cvm_dict_size(sh->tc[t].d);
        sh->tc[t].used = cvm_calloc(n ? n : 1, 1);
        gid[t] = cvm_malloc((n ? n : 1) * sizeof **gid);
        if (!sh->tc[t].used || !gid[t])
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory merging ids");
    }
    for (size_t k = 0; k < nk && rc == CVM_OK; k++)
        for (size_t l = 0; l < cs[k]->n_cust; l++)
            cs[k]->tcust->used[cs[k]->cust_list[l]] = 1;
    for (int t = 0; t < sh->n_tc && rc == CVM_OK; t++) {
        const thread_cust *tc = &sh->tc[t];
        size_t n = cvm_dict_size(tc->d);
        for (size_t i = 0; i < n && rc == CVM_OK; i++) {
            gid[t][i] = -1;
            if (!tc->used[i])
                continue;
            gid[t][i] = cvm_dict_intern_h(g, cvm_dict_str(tc->d, (int32_t)i),
                                          cvm_dict_len(tc->d, (int32_t)i),
                                          cvm_dict_hash_at(tc->d, (int32_t)i));
            if (gid[t][i] < 0)
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory merging ids");
        }
    }
    for (size_t k = 0; k < nk && rc == CVM_OK; k++) {
        const int32_t *gt = gid[cs[k]->tcust - sh->tc];
        maps[k] = cvm_malloc((cs[k]->n_cust ? cs[k]->n_cust : 1) * sizeof **maps);
        if (maps[k] == NULL) {
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory merging ids");
            break;
        }
        for (size_t l = 0; l < cs[k]->n_cust; l++)
            maps[k][l] = gt[cs[k]->cust_list[l]];
    }
    for (int t = 0; t < sh->n_tc; t++) {
        cvm_free(gid[t]);
        cvm_free(sh->tc[t].used);
        sh->tc[t].used = NULL;
    }
    cvm_free(gid);
    return rc;
}

static int merge_dict(cvm_dict *g, size_t *n_unique, chunk **cs, size_t nk, size_t which,
                      int32_t **maps, int threads, cvm_err *err)
{
    size_t *base = cvm_calloc(nk + 1, sizeof *base);
    if (base == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory merging ids");
    for (size_t k = 0; k < nk; k++)
        base[k + 1] = base[k] + cvm_dict_size(chunk_dict(cs[k], which));
    size_t total = base[nk];
    uint64_t *hash = cvm_malloc((total ? total : 1) * sizeof *hash);
    uint32_t *ref = cvm_malloc((total ? total : 1) * sizeof *ref);     /* slot of the first appearance */
    uint32_t *bucket = cvm_malloc((total ? total : 1) * sizeof *bucket); /* slots grouped by partition */
    size_t *boff = cvm_calloc(nk * (MERGE_PARTS + 1), sizeof *boff);
    int status = CVM_OK;
    if (!hash || !ref || !bucket || !boff || total > UINT32_MAX)
        status = CVM_ENOMEM;
    long nkl = (long)nk;
    /* Few strings: one partition (the ids do not depend on the count). */
    const int shift = total < 65536 ? 64 : 56;
    const long parts = shift == 64 ? 1 : MERGE_PARTS;
    /* 1. Hash every local string once and group each chunk's slots by partition. */
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) default(none) \
    shared(cs, nk, nkl, which, base, hash, bucket, boff, status, shift)
    for (long k = 0; k < nkl; k++) {
        if (status != CVM_OK)
            continue;
        cvm_dict *d = chunk_dict(cs[k], which);
        size_t m = cvm_dict_size(d), b0 = base[k];
        size_t *off = boff + (size_t)k * (MERGE_PARTS + 1);
        for (size_t l = 0; l < m; l++) {
            uint64_t h = cvm_dict_hash_at(d, (int32_t)l);
            hash[b0 + l] = h;
            off[(shift == 64 ? 0 : h >> shift) + 1]++;
        }
        for (size_t p = 0; p < MERGE_PARTS; p++)
            off[p + 1] += off[p];
        size_t *next = cvm_malloc(MERGE_PARTS * sizeof *next);
        if (next == NULL) {
#pragma omp atomic write
            status = CVM_ENOMEM;
            continue;
        }
        memcpy(next, off, MERGE_PARTS * sizeof *next);
        for (size_t l = 0; l < m; l++)
            bucket[b0 + next[shift == 64 ? 0 : hash[b0 + l] >> shift]++] = (uint32_t)(b0 + l);
        cvm_free(next);
    }
    /* 2. Per partition, in chunk order: the first appearance of each string
     *    owns it; later ones refer to it. A partition keeps a small open-
     *    addressing set of (hash, owner slot) and compares strings in place
     *    in the chunk dictionaries: nothing is copied. */
    if (status == CVM_OK) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 4) default(none) \
    shared(cs, nk, which, base, hash, ref, bucket, boff, status, parts)
        for (long p = 0; p < MERGE_PARTS; p++) {
            if (status != CVM_OK)
                continue;
            if (p >= parts)
                continue;
            size_t expect = 0;
            for (size_t k = 0; k < nk; k++)
                expect += boff[k * (MERGE_PARTS + 1) + (size_t)p + 1] - boff[k * (MERGE_PARTS + 1) + (size_t)p];
            /* Sized for every appearance at load <= 1/2: no growing. */
            size_t cap = 16;
            while (cap < 2 * expect)
                cap <<= 1;
            typedef struct entry {
                uint64_t h;
                uint32_t owner1; /* owner slot + 1; 0 = empty */
            } entry;
            entry *set = malloc(cap * sizeof *set);
            if (set == NULL) {
#pragma omp atomic write
                status = CVM_ENOMEM;
                continue;
            }
            memset(set, 0, cap * sizeof *set);
            const size_t mask = cap - 1;
            size_t ok = 0; /* chunk of the owner being compared */
            for (size_t k = 0; k < nk; k++) {
                cvm_dict *d = chunk_dict(cs[k], which);
                const size_t *off = boff + k * (MERGE_PARTS + 1);
                for (size_t i = off[p]; i < off[p + 1]; i++) {
                    uint32_t slot = bucket[base[k] + i];
                    uint64_t h = hash[slot];
                    const char *sv = NULL;
                    size_t sl = 0;
                    size_t j = (size_t)(h * 0x9E3779B97F4A7C15ULL >> 20) & mask;
                    for (;;) {
                        entry e = set[j];
                        if (e.owner1 == 0) {
                            set[j].h = h;
                            set[j].owner1 = slot + 1;
                            ref[slot] = slot;
                            break;
                        }
                        uint32_t o = e.owner1 - 1;
                        if (e.h == h) {
                            if (sv == NULL) {
                                sv = cvm_dict_str(d, (int32_t)(slot - base[k]));
                                sl = cvm_dict_len(d, (int32_t)(slot - base[k]));
                            }
                            while (o >= base[ok + 1])
                                ok++;
                            while (o < base[ok])
                                ok--;
                            cvm_dict *od = chunk_dict(cs[ok], which);
                            int32_t ol = (int32_t)(o - base[ok]);
                            if (cvm_dict_len(od, ol) == sl && memcmp(cvm_dict_str(od, ol), sv, sl) == 0) {
                                ref[slot] = o;
                                break;
                            }
                        }
                        j = (j + 1) & mask;
                    }
                }
            }
            free(set);
        }
    }
    /* 3. Global ids in slot order of first appearances; strings into g. */
    int32_t *gid = (int32_t *)bucket; /* reused: bucket is no longer needed */
    size_t next_id = 0;
    if (status == CVM_OK && g == NULL) {
        /* Ids only: the rank of each first appearance, by a two-pass
         * parallel prefix count over fixed blocks of slots. */
        enum { NBLK = 64 };
        size_t cnt[NBLK + 1] = {0};
        size_t blk = (total + NBLK - 1) / NBLK;
#pragma omp parallel for num_threads(threads) schedule(static) default(none) shared(ref, cnt, blk, total)
        for (long b = 0; b < NBLK; b++) {
            size_t lo = (size_t)b * blk, hi = lo + blk < total ? lo + blk : total, c = 0;
            for (size_t s = lo; s < hi; s++)
                c += ref[s] == s;
            cnt[b + 1] = c;
        }
        for (int b = 0; b < NBLK; b++)
            cnt[b + 1] += cnt[b];
#pragma omp parallel for num_threads(threads) schedule(static) default(none) shared(ref, cnt, blk, total, gid)
        for (long b = 0; b < NBLK; b++) {
            size_t lo = (size_t)b * blk, hi = lo + blk < total ? lo + blk : total, id = cnt[b];
            for (size_t s = lo; s < hi; s++)
                if (ref[s] == s)
                    gid[s] = (int32_t)id++;
        }
        next_id = cnt[NBLK];
    } else if (status == CVM_OK) {
        /* Strings of first appearances into g, serially (they are few:
         * customers and products, renumbered by sorting afterwards). */
        size_t k = 0;
        for (size_t s = 0; s < total; s++) {
            if (ref[s] != s)
                continue;
            while (s >= base[k + 1])
                k++;
            cvm_dict *d = chunk_dict(cs[k], which);
            int32_t l = (int32_t)(s - base[k]);
            int32_t id = cvm_dict_intern_h(g, cvm_dict_str(d, l), cvm_dict_len(d, l), hash[s]);
            if (id < 0) {
                status = CVM_ENOMEM;
                break;
            }
            gid[s] = id;
        }
        next_id = g ? cvm_dict_size(g) : 0;
    }
    /* Later appearances (in other chunks, or later in the same chunk: the
     * order lists keep repeats) take their first appearance's id, which is
     * set: first appearances own themselves and got theirs above. */
    if (status == CVM_OK) {
        long tl = (long)total;
#pragma omp parallel for num_threads(threads) schedule(static) default(none) shared(ref, gid, tl)
        for (long s = 0; s < tl; s++)
            if (ref[s] != (uint32_t)s)
                gid[s] = gid[ref[s]];
    }
    *n_unique = next_id;
    for (size_t k = 0; status == CVM_OK && k < nk; k++) {
        size_t m = base[k + 1] - base[k];
        maps[k] = cvm_malloc((m ? m : 1) * sizeof(int32_t));
        if (maps[k] == NULL) {
            status = CVM_ENOMEM;
            break;
        }
        memcpy(maps[k], gid + base[k], m * sizeof(int32_t));
    }
    cvm_free(base);
    cvm_free(hash);
    cvm_free(ref);
    cvm_free(bucket);
    cvm_free(boff);
    if (status != CVM_OK)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory merging ids");
    return CVM_OK;
}

/* Renumbers dictionary g in sorted order: returns the sorted dict and a map
 * old id -> new id. */
static int sort_dict(cvm_dict **g, int32_t **rank_out, cvm_err *err)
{
    int32_t *order = cvm_dict_sorted_order(*g);
    size_t n = cvm_dict_size(*g);
    cvm_dict *s = cvm_dict_new(n);
    int32_t *rank = cvm_malloc((n ? n : 1) * sizeof *rank);
    if (!order || !s || !rank) {
        cvm_free(order);
        cvm_dict_free(s);
        cvm_free(rank);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory sorting ids");
    }
    for (size_t r = 0; r < n; r++) {
        int32_t id = order[r];
        if (cvm_dict_intern(s, cvm_dict_str(*g, id), cvm_dict_len(*g, id)) < 0) {
            cvm_free(order);
            cvm_dict_free(s);
            cvm_free(rank);
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory sorting ids");
        }
        rank[id] = (int32_t)r;
    }
    cvm_free(order);
    cvm_dict_free(*g);
    *g = s;
    *rank_out = rank;
    return CVM_OK;
}

/* Rows of one customer sorted by day, stable (file order on ties). */
typedef struct day_pos {
    int32_t day;
    uint32_t pos;
} day_pos;
static int cmp_day_pos(const void *a, const void *b)
{
    const day_pos *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return (x->pos > y->pos) - (x->pos < y->pos);
}

static int sort_within_customers(cvm_txn_table *t, int threads, cvm_err *err)
{
    (void)threads; /* unused without OpenMP */
    int status = CVM_OK;
    long nc = (long)t->n_customers;
#pragma omp parallel num_threads(threads) default(none) shared(t, nc, status)
    {
        day_pos *dp = NULL;
        size_t cap = 0;
        void *tmp = NULL;
#pragma omp for schedule(dynamic, 256)
        for (long c = 0; c < nc; c++) {
            size_t a = t->cust_start[c], b = t->cust_start[c + 1];
            bool sorted = true;
            for (size_t r = a + 1; r < b && sorted; r++)
                sorted = t->day[r - 1] <= t->day[r];
            if (sorted)
                continue;
            size_t m = b - a;
            if (m > cap) {
                day_pos *ndp = realloc(dp, m * sizeof *dp);
                void *nt = realloc(tmp, m * sizeof(double));
                if (ndp)
                    dp = ndp;
                if (nt)
                    tmp = nt;
                if (!ndp || !nt) {
#pragma omp atomic write
                    status = CVM_ENOMEM;
                    continue;
                }
                cap = m;
            }
            for (size_t r = 0; r < m; r++) {
                dp[r].day = t->day[a + r];
                dp[r].pos = (uint32_t)r;
            }
            qsort(dp, m, sizeof *dp, cmp_day_pos);
#define PERMUTE(arr, type)                               \
    do {                                                 \
        type *tt = tmp;                                  \
        for (size_t r = 0; r < m; r++)                   \
            tt[r] = t->arr[a + dp[r].pos];               \
        memcpy(t->arr + a, tt, m * sizeof(type));        \
    } while (0)
            PERMUTE(customer, int32_t);
            PERMUTE(order, int32_t);
            PERMUTE(day, int32_t);
            PERMUTE(product, int32_t);
            PERMUTE(quantity, double);
            PERMUTE(revenue, double);
            PERMUTE(cost, double);
            PERMUTE(flags, uint8_t);
            if (t->line)
                PERMUTE(line, uint32_t);
#undef PERMUTE
        }
        /* Scratch from plain malloc: it never escapes this loop. */
        free(dp);
        free(tmp);
    }
    if (status != CVM_OK)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory sorting rows by date");
    return CVM_OK;
}

/* Duplicate lines: all mapped fields equal (customer, order, day, product,
 * quantity, revenue, cost). Later occurrences are rejected. */
typedef struct dup_key {
    const cvm_txn_table *t;
    uint32_t row;
} dup_key;
static int cmp_rows(const cvm_txn_table *t, uint32_t x, uint32_t y)
{
#define CMP(f)                          \
    if (t->f[x] != t->f[y])             \
        return t->f[x] < t->f[y] ? -1 : 1;
    CMP(order) CMP(day) CMP(product) CMP(quantity) CMP(revenue) CMP(flags)
#undef CMP
    double a = t->cost[x], b = t->cost[y];
    if (!(isnan(a) && isnan(b)) && a != b) {
        if (isnan(a))
            return -1;
        if (isnan(b))
            return 1;
        return a < b ? -1 : 1;
    }
    return (t->line[x] > t->line[y]) - (t->line[x] < t->line[y]);
}
static const cvm_txn_table *dup_table;
static int cmp_dup(const void *a, const void *b)
{
    return cmp_rows(dup_table, *(const uint32_t *)a, *(const uint32_t *)b);
}

static int drop_duplicates(cvm_txn_table *t, const char *path, cvm_rejects *rej,
                           uint64_t *dropped, cvm_err *err)
{
    uint8_t *dead = cvm_calloc(t->n_rows ? t->n_rows : 1, 1);
    uint32_t *idx = cvm_malloc((t->n_rows ? t->n_rows : 1) * sizeof *idx);
    if (!dead || !idx) {
        cvm_free(dead);
        cvm_free(idx);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory finding duplicates");
    }
    size_t nd = 0;
    int rc = CVM_OK;
    dup_table = t;
    for (size_t c = 0; c < t->n_customers && rc == CVM_OK; c++) {
        size_t a = t->cust_start[c], b = t->cust_start[c + 1];
        for (size_t r = a; r < b; r++)
            idx[r - a] = (uint32_t)r;
        qsort(idx, b - a, sizeof *idx, cmp_dup);
        for (size_t r = a + 1; r < b; r++) {
            uint32_t x = idx[r - a - 1], y = idx[r - a];
            /* Equal but for the line number: y is the later copy. */
            uint32_t lx = t->line[x];
            t->line[x] = t->line[y];
            int same = cmp_rows(t, x, y) == 0;
            t->line[x] = lx;
            if (same) {
                dead[y] = 1;
                nd++;
                char detail[64];
                snprintf(detail, sizeof detail, "same as line %u", t->line[x]);
                /* Keep the earlier line as the reference for later copies. */
                idx[r - a] = x;
                rc = cvm_rejects_add(rej, path, t->line[y], 0, "", CVM_REJECT_DUPLICATE, detail,
                                     "", 0, err);
                if (rc != CVM_OK)
                    break;
            }
        }
    }
    dup_table = NULL;
    if (rc == CVM_OK && nd > 0) {
        size_t w = 0;
        size_t c = 0;
        size_t *ns = t->cust_start;
        size_t prev_start = 0;
        for (c = 0; c < t->n_customers; c++) {
            size_t a = prev_start, b = ns[c + 1];
            ns[c] = w;
            for (size_t r = a; r < b; r++) {
                if (dead[r])
                    continue;
                t->customer[w] = t->customer[r];
                t->order[w] = t->order[r];
                t->day[w] = t->day[r];
                t->product[w] = t->product[r];
                t->quantity[w] = t->quantity[r];
                t->revenue[w] = t->revenue[r];
                t->cost[w] = t->cost[r];
                t->flags[w] = t->flags[r];
                t->line[w] = t->line[r];
                w++;
            }
            prev_start = b;
        }
        ns[t->n_customers] = w;
        t->n_rows = w;
    }
    *dropped = nd;
    cvm_free(dead);
    cvm_free(idx);
    return rc;
}

static void progress_fwd(void *user, uint64_t done, uint64_t total)
{
    const ingest_shared *sh = user;
    if (sh->spec->progress)
        sh->spec->progress(sh->spec->progress_ctx, done, total);
}

static void free_thread_customers(ingest_shared *sh)
{
    for (int i = 0; sh->tc && i < sh->n_tc; i++) {
        cvm_dict_free(sh->tc[i].d);
        cvm_free(sh->tc[i].seen);
        cvm_free(sh->tc[i].used);
    }
    cvm_free(sh->tc);
    sh->tc = NULL;
    sh->n_tc = 0;
}

int cvm_ingest_transactions(const cvm_txn_spec *sp, const cvm_dict *extra_customers,
                            cvm_txn_table *out, cvm_rejects *rej, cvm_ingest_stats *stats,
                            cvm_err *err)
{
    memset(out, 0, sizeof *out);
    memset(stats, 0, sizeof *stats);
    ingest_shared sh = {0};
    sh.spec = sp;
    sh.lines = sp->keep_lines || sp->drop_duplicates;
    int rc = cvm_datefmt_compile(sp->date_format, &sh.fmt, err);
    if (rc != CVM_OK)
        return rc;
    uint64_t data_off = 0, data_line = 1;
    char **header = NULL;
    size_t n_fields = 0;
    rc = cvm_csv_read_header(sp->path, sp->delimiter, &header, &n_fields, &data_off, &data_line,
                             err);
    if (rc != CVM_OK)
        return rc;
    if (!sp->header) {
        /* The first line is data: only its field count is used. */
        data_off = 0;
        data_line = 1;
        for (size_t i = 0; i < n_fields; i++) {
            char name[32];
            snprintf(name, sizeof name, "%zu", i + 1);
            cvm_free(header[i]);
            header[i] = cvm_strdup(name);
            if (header[i] == NULL) {
                cvm_csv_free_names(header, n_fields);
                return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
            }
        }
    }
    sh.header = header;
    sh.n_fields = n_fields;
    const char *want[R_COUNT] = {sp->col_customer, sp->col_order, sp->col_date,
                                 sp->col_product, sp->col_quantity, sp->col_unit_price,
                                 sp->col_revenue, sp->col_unit_cost};
    for (int r = 0; r < R_COUNT && rc == CVM_OK; r++) {
        bool required = r == R_CUSTOMER || r == R_DATE;
        if (r == R_PRICE && (sp->col_revenue == NULL || *sp->col_revenue == '\0'))
            required = true;
        if (r == R_PRICE && sp->col_revenue && *sp->col_revenue) {
            sh.col[r] = -1;
            continue;
        }
        rc = resolve_col(sp, header, n_fields, want[r], role_key[r], required, &sh.col[r], err);
    }
    if (rc == CVM_OK && sp->n_exclude > 0) {
        sh.exclude = cvm_dict_new(sp->n_exclude);
        if (sh.exclude == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        for (size_t i = 0; rc == CVM_OK && i < sp->n_exclude; i++)
            if (cvm_dict_intern(sh.exclude, sp->exclude_products[i],
                                strlen(sp->exclude_products[i])) < 0)
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    sh.return_prefix_len = sp->return_prefix ? strlen(sp->return_prefix) : 0;
    if (rc != CVM_OK) {
        cvm_dict_free(sh.exclude);
        cvm_csv_free_names(header, n_fields);
        return rc;
    }

    double t0 = cvm_now();
    cvm_csv_chunk_ops ops = {chunk_begin, on_txn, chunk_discard, chunk_end, sp->libcsv_only};
    cvm_csv_chunks chunks;
#ifdef _OPENMP
    sh.n_threads = sp->threads > 0 ? sp->threads : omp_get_max_threads();
#else
    sh.n_threads = 1;
#endif
    sh.row_hint = cvm_calloc((size_t)sh.n_threads, sizeof *sh.row_hint); /* a hint: may be NULL */
    sh.n_tc = sh.n_threads;
    sh.tc = cvm_calloc((size_t)sh.n_tc, sizeof *sh.tc);
    for (int i = 0; sh.tc && i < sh.n_tc; i++)
        if ((sh.tc[i].d = cvm_dict_new(4096)) == NULL) {
            free_thread_customers(&sh);
            break;
        }
    if (sh.tc == NULL) {
        cvm_free(sh.row_hint);
        cvm_dict_free(sh.exclude);
        cvm_csv_free_names(header, n_fields);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    rc = cvm_csv_read_chunks(sp->path, sp->delimiter, data_off, data_line, sp->chunk_bytes,
                             sp->threads, &ops, &sh, sp->progress ? progress_fwd : NULL,
                             &chunks, err);
    cvm_free(sh.row_hint);
    if (rc != CVM_OK) {
        free_thread_customers(&sh);
        cvm_dict_free(sh.exclude);
        cvm_csv_free_names(header, n_fields);
        return rc;
    }
    double t1 = cvm_now();
    stats->seconds_parse = t1 - t0;
    stats->bytes = chunks.bytes + data_off;
    stats->chunks = chunks.n;
    stats->boundary_repairs = chunks.repaired;
    size_t nk = chunks.n;
    chunk **cs = (chunk **)chunks.ctx;
    int threads = sp->threads > 0 ? sp->threads : 0;
#ifdef _OPENMP
    if (threads == 0)
        threads = omp_get_max_threads();
#else
    threads = 1;
#endif

    /* Rejects and line numbers, in file order. */
    size_t total = 0;
    for (size_t k = 0; k < nk && rc == CVM_OK; k++) {
        for (size_t i = 0; i < cs[k]->rej.n; i++)
            cs[k]->rej.items[i].line += chunks.first_line[k];
        for (size_t i = 0; sh.lines && i < cs[k]->n; i++)
            cs[k]->line[i] += (uint32_t)chunks.first_line[k];
        stats->rows += cs[k]->rows;
        stats->utf8_repaired += cs[k]->utf8_repaired;
        stats->other_partition += cs[k]->other_partition;
        total += cs[k]->n;
        rc = cvm_rejects_append(rej, &cs[k]->rej, err);
    }
    stats->accepted = total;
    stats->rejected = stats->rows - total - stats->other_partition;

    /* Global dictionaries: customers and products sorted bytewise, orders in
     * first-appearance order. */
    merge_maps mm = {0};
    mm.cust = cvm_calloc(nk, sizeof *mm.cust);
    mm.order = cvm_calloc(nk, sizeof *mm.order);
    mm.prod = cvm_calloc(nk, sizeof *mm.prod);
    out->customers = cvm_dict_new(extra_customers ? cvm_dict_size(extra_customers) : 1024);
    size_t n_unique = 0;
    out->orders = sp->keep_order_ids ? cvm_dict_new(total / 4 + 16) : NULL;
    out->products = cvm_dict_new(4096);
    if (rc == CVM_OK && (!mm.cust || !mm.order || !mm.prod || !out->customers ||
                         (sp->keep_order_ids && !out->orders) || !out->products))
        rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory merging ids");
    if (rc == CVM_OK && extra_customers)
        for (size_t i = 0; i < cvm_dict_size(extra_customers) && rc == CVM_OK; i++)
            if ((sp->partitions <= 1 ||
                 cvm_ingest_in_partition(cvm_dict_str(extra_customers, (int32_t)i),
                                         cvm_dict_len(extra_customers, (int32_t)i),
                                         sp->partitions, sp->partition)) &&
                cvm_dict_intern(out->customers, cvm_dict_str(extra_customers, (int32_t)i),
                                cvm_dict_len(extra_customers, (int32_t)i)) < 0)
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory merging ids");
    /* Customers on one thread, orders and products on the other: each side
     * is mostly serial work (the order merge runs its partitions on
     * whatever threads are left, none when both sides are busy). */
    int32_t *crank = NULL, *prank = NULL;
    int rc_c = rc, rc_o = rc;
    cvm_err err_c = {0}, err_o = {0};
    ingest_shared *shp = &sh;
#pragma omp parallel sections num_threads(threads > 1 ? 2 : 1) default(none) \
    shared(rc_c, rc_o, err_c, err_o, out, shp, cs, nk, mm, crank, prank, n_unique, threads)
    {
#pragma omp section
        {
            if (rc_c == CVM_OK)
                rc_c = merge_customers(out->customers, shp, cs, nk, mm.cust, &err_c);
            free_thread_customers(shp);
            if (rc_c == CVM_OK)
                rc_c = sort_dict(&out->customers, &crank, &err_c);
        }
#pragma omp section
        {
            if (rc_o == CVM_OK && shp->col[R_ORDER] >= 0)
                rc_o = merge_dict(out->orders, &out->n_orders, cs, nk, 1, mm.order, threads, &err_o);
            if (rc_o == CVM_OK && shp->col[R_PRODUCT] >= 0)
                rc_o = merge_dict(out->products, &n_unique, cs, nk, 2, mm.prod, threads, &err_o);
            if (rc_o == CVM_OK)
                rc_o = sort_dict(&out->products, &prank, &err_o);
        }
    }
    if (rc == CVM_OK && (rc_c != CVM_OK || rc_o != CVM_OK)) {
        rc = rc_c != CVM_OK ? rc_c : rc_o;
        if (err)
            *err = rc_c != CVM_OK ? err_c : err_o;
    }
    if (rc == CVM_OK) {
        for (size_t k = 0; k < nk; k++) {
            size_t m = cs[k]->n_cust;
            for (size_t i = 0; i < m; i++)
                mm.cust[k][i] = crank[mm.cust[k][i]];
            if (sh.col[R_PRODUCT] >= 0) {
                m = cvm_dict_size(cs[k]->dprod);
                for (size_t i = 0; i < m; i++)
                    mm.prod[k][i] = prank[mm.prod[k][i]];
            }
        }
    }
    cvm_free(crank);
    cvm_free(prank);
    /* The chunk dictionaries are merged: free them before the scatter
     * allocates the final columns. */
    for (size_t k = 0; k < nk; k++) {
        cvm_dict_free(cs[k]->dorder);
        cvm_dict_free(cs[k]->dprod);
        cs[k]->dorder = cs[k]->dprod = NULL;
    }

    double t2 = cvm_now();
    stats->seconds_merge = t2 - t1;
    /* Counting sort by customer, stable in file order. */
    size_t nc = rc == CVM_OK ? cvm_dict_size(out->customers) : 0;
    out->n_customers = nc;
    out->cust_start = cvm_calloc(nc + 1, sizeof *out->cust_start);
    uint32_t *dest = cvm_malloc((total ? total : 1) * sizeof *dest);
    if (rc == CVM_OK && (!out->cust_start || !dest))
        rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory sorting %zu rows", total);
    /* Per-chunk counts per customer turn into per-chunk write positions,
     * so every chunk places its rows in parallel; the order is the serial
     * one (chunk by chunk, file order within). Above 32M counters (many
     * chunks x many customers) the serial pass is used instead. */
    uint32_t *cc = NULL;
    if (rc == CVM_OK && nk * nc <= ((size_t)32 << 20) && total < UINT32_MAX)
        cc = cvm_calloc(nk * nc > 0 ? nk * nc : 1, sizeof *cc);
    if (rc == CVM_OK && cc) {
        size_t *rbase = cvm_malloc((nk + 1) * sizeof *rbase);
        if (rbase == NULL) {
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory sorting rows");
        } else {
            rbase[0] = 0;
            for (size_t k = 0; k < nk; k++)
                rbase[k + 1] = rbase[k] + cs[k]->n;
            long nkl = (long)nk, ncl = (long)nc;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) default(none) shared(cs, mm, cc, nkl, nc)
            for (long k = 0; k < nkl; k++) {
                uint32_t *ck = cc + (size_t)k * nc;
                for (size_t i = 0; i < cs[k]->n; i++) {
                    int32_t c = mm.cust[k][cs[k]->cust[i]];
                    cs[k]->cust[i] = c; /* global from here on */
                    ck[c]++;
                }
            }
            size_t *cnt = out->cust_start;
#pragma omp parallel for num_threads(threads) schedule(static) default(none) shared(cc, cnt, nk, nc, ncl)
            for (long c = 0; c < ncl; c++) {
                size_t sum = 0;
                for (size_t k = 0; k < nk; k++)
                    sum += cc[k * nc + (size_t)c];
                cnt[c + 1] = sum;
            }
            for (size_t c = 0; c < nc; c++)
                cnt[c + 1] += cnt[c];
#pragma omp parallel for num_threads(threads) schedule(static) default(none) shared(cc, cnt, nk, nc, ncl)
            for (long c = 0; c < ncl; c++) {
                size_t run = cnt[c];
                for (size_t k = 0; k < nk; k++) {
                    uint32_t n = cc[k * nc + (size_t)c];
                    cc[k * nc + (size_t)c] = (uint32_t)run;
                    run += n;
                }
            }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) default(none) shared(cs, cc, nkl, nc, rbase, dest)
            for (long k = 0; k < nkl; k++) {
                uint32_t *ck = cc + (size_t)k * nc;
                uint32_t *d = dest + rbase[k];
                for (size_t i = 0; i < cs[k]->n; i++)
                    d[i] = ck[cs[k]->cust[i]]++;
            }
            cvm_free(rbase);
        }
        cvm_free(cc);
    } else if (rc == CVM_OK) {
        size_t *cnt = out->cust_start;
        for (size_t k = 0; k < nk; k++)
            for (size_t i = 0; i < cs[k]->n; i++)
                cnt[mm.cust[k][cs[k]->cust[i]] + 1]++;
        for (size_t c = 0; c < nc; c++)
            cnt[c + 1] += cnt[c];
        size_t *next = cvm_malloc((nc ? nc : 1) * sizeof *next);
        if (next == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory sorting rows");
        else {
            memcpy(next, cnt, nc * sizeof *next);
            size_t g = 0;
            for (size_t k = 0; k < nk; k++)
                for (size_t i = 0; i < cs[k]->n; i++) {
                    int32_t c = mm.cust[k][cs[k]->cust[i]];
                    cs[k]->cust[i] = c; /* global from here on */
                    dest[g++] = (uint32_t)next[c]++;
                }
            cvm_free(next);
        }
    }
    out->n_rows = total;
    /* Scatter column by column, freeing each chunk column as it goes, so the
     * peak is the table plus one column per thread rather than two tables.
     * Columns are independent: one thread each. */
    if (rc == CVM_OK) {
        int bad = 0;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) default(none) \
    shared(out, cs, nk, mm, dest, total, bad, sh)
        for (int j = 0; j < 9; j++) {
            /* Widest columns first (doubles, then 4-byte ids, the byte of
             * flags last), so the threads finish together. */
            static const int by_width[9] = {4, 5, 6, 0, 1, 2, 3, 8, 7};
            int col = by_width[j];
            if (col == 8 && !sh.lines)
                continue;
            if (scatter_column(out, cs, nk, &mm, dest, total, col) != CVM_OK) {
#pragma omp atomic write
                bad = 1;
            }
        }
        if (bad)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory building the table");
    }
    cvm_free(dest);
    for (size_t k = 0; k < nk; k++) {
        if (mm.cust)
            cvm_free(mm.cust[k]);
        if (mm.order)
            cvm_free(mm.order[k]);
        if (mm.prod)
            cvm_free(mm.prod[k]);
        chunk_free(cs[k]);
    }
    cvm_free(mm.cust);
    cvm_free(mm.order);
    cvm_free(mm.prod);
    cvm_csv_chunks_free(&chunks);
    cvm_dict_free(sh.exclude);
    cvm_csv_free_names(header, n_fields);

    if (rc == CVM_OK)
        rc = sort_within_customers(out, threads, err);
    stats->seconds_sort = cvm_now() - t2;
    if (rc == CVM_OK && sp->drop_duplicates)
        rc = drop_duplicates(out, sp->path, rej, &stats->duplicates, err);
    if (!sp->keep_lines) { /* they were only for the duplicates' reports */
        cvm_free(out->line);
        out->line = NULL;
    }
    if (rc == CVM_OK && stats->duplicates)
        stats->accepted -= stats->duplicates;
    if (rc == CVM_OK && sh.col[R_ORDER] < 0) {
        /* No order ids: each distinct purchase day of a customer is one order. */
        stats->orders_synthesized = true;
        int32_t next = 0;
        for (size_t c = 0; c < nc; c++) {
            int32_t last_day = INT32_MIN;
            for (size_t r = out->cust_start[c]; r < out->cust_start[c + 1]; r++) {
                if (out->day[r] != last_day) {
                    last_day = out->day[r];
                    next++;
                }
                out->order[r] = next - 1;
            }
        }
        out->n_orders = (size_t)next;
    }
    if (rc == CVM_OK) {
        uint64_t ret = 0, exc = 0;
        int any_cost = 0;
        long nr = (long)out->n_rows;
        const uint8_t *fl = out->flags;
        const double *co = out->cost;
#pragma omp parallel for num_threads(threads) schedule(static) default(none) \
    shared(nr, fl, co) reduction(+ : ret, exc) reduction(| : any_cost)
        for (long r = 0; r < nr; r++) {
            ret += (fl[r] & CVM_TXN_RETURN) != 0;
            exc += (fl[r] & CVM_TXN_EXCLUDED) != 0;
            any_cost |= !isnan(co[r]);
        }
        stats->returns += ret;
        stats->excluded += exc;
        out->has_cost = any_cost != 0;
    }
    if (rc != CVM_OK)
        cvm_txn_table_clear(out);
    return rc;
}

/* ---------------- master data ---------------- */

typedef struct text_ctx {
    const cvm_table_spec *spec;
    int *col;            /* per wanted column: file column or -1 */
    size_t n_fields;
    char **header;
    cvm_text_table *t;
    cvm_rejects *rej;
    size_t cap;
    bool header_done;
} text_ctx;

static int text_header(text_ctx *x, const cvm_csv_record *rec, cvm_err *err)
{
    const cvm_table_spec *sp = x->spec;
    x->n_fields = rec->n;
    x->header = cvm_calloc(rec->n, sizeof *x->header);
    if (x->header == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    for (size_t i = 0; i < rec->n; i++)
        if ((x->header[i] = cvm_strndup(rec->field[i], rec->len[i])) == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    for (size_t w = 0; w < sp->n_want; w++) {
        x->col[w] = -1;
        const char *name = sp->col[w];
        if (name == NULL || *name == '\0') {
            if (sp->required && sp->required[w])
                return CVM_FAIL(err, CVM_ECONFIG, "%s: the column for '%s' must be configured",
                                sp->path, sp->want[w]);
            continue;
        }
        for (size_t i = 0; i < rec->n; i++)
            if (strcmp(x->header[i], name) == 0)
                x->col[w] = (int)i;
        if (x->col[w] < 0)
            return CVM_FAIL(err, CVM_EDATA, "%s:1: column '%s' (for '%s') is not in the header",
                            sp->path, name, sp->want[w]);
    }
    x->header_done = true;
    return CVM_OK;
}

static int text_record(void *ctx, const cvm_csv_record *rec, cvm_err *err)
{
    text_ctx *x = ctx;
    if (!x->header_done)
        return text_header(x, rec, err);
    const cvm_table_spec *sp = x->spec;
    cvm_text_table *t = x->t;
    if (rec->n != x->n_fields) {
        char detail[96];
        snprintf(detail, sizeof detail, "expected %zu fields, found %zu", x->n_fields, rec->n);
        return cvm_rejects_add(x->rej, sp->path, rec->line, 0, "", CVM_REJECT_FIELD_COUNT, detail,
                               rec->raw, rec->raw_len, err);
    }
    int idc = x->col[0];
    if (rec->len[idc] == 0)
        return cvm_rejects_add(x->rej, sp->path, rec->line, idc + 1, x->header[idc],
                               CVM_REJECT_MISSING_CUSTOMER, "empty id", rec->raw, rec->raw_len,
                               err);
    if (sp->unique) {
        size_t before = cvm_dict_size(t->ids);
        /* Ids are re-encoded exactly like the transactions' ids, so a Latin-1
         * id in a master still finds its customer or product. */
        char idbuf[512];
        const char *idp = rec->field[idc];
        size_t idl = rec->len[idc];
        if (!cvm_utf8_valid(idp, idl) && 2 * idl + 1 <= sizeof idbuf) {
            idl = cvm_utf8_repair(idp, idl, idbuf);
            idp = idbuf;
        }
        int32_t id = cvm_dict_intern(t->ids, idp, idl);
        if (id < 0)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        if ((size_t)id < before) {
            char detail[96];
            snprintf(detail, sizeof detail, "id already on line %llu",
                     (unsigned long long)t->line[id]);
            return cvm_rejects_add(x->rej, sp->path, rec->line, idc + 1, x->header[idc],
                                   CVM_REJECT_DUPLICATE_ID, detail, rec->raw, rec->raw_len, err);
        }
    }
    if (t->n_rows == x->cap) {
        size_t cap = x->cap ? x->cap * 2 : 256;
        char **nc = cvm_reallocarray(t->cell, cap * t->n_cols, sizeof *nc);
        if (nc)
            t->cell = nc;
        uint64_t *nl = cvm_reallocarray(t->line, cap, sizeof *nl);
        if (nl)
            t->line = nl;
        if (!nc || !nl)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        x->cap = cap;
    }
    size_t r = t->n_rows;
    for (size_t w = 0; w < t->n_cols; w++) {
        int c = x->col[w];
        char *v = NULL;
        if (c >= 0 && rec->len[c] > 0) {
            v = cvm_malloc(2 * rec->len[c] + 1);
            if (v == NULL)
                return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
            cvm_utf8_repair(rec->field[c], rec->len[c], v);
        }
        t->cell[r * t->n_cols + w] = v;
    }
    t->line[r] = rec->line;
    t->n_rows++;
    return CVM_OK;
}

int cvm_ingest_text_table(const cvm_table_spec *sp, cvm_text_table *out, cvm_rejects *rej,
                          cvm_err *err)
{
    memset(out, 0, sizeof *out);
    out->n_cols = sp->n_want;
    text_ctx x = {0};
    x.spec = sp;
    x.t = out;
    x.rej = rej;
    x.col = cvm_calloc(sp->n_want, sizeof *x.col);
    if (sp->unique)
        out->ids = cvm_dict_new(1024);
    if (!x.col || (sp->unique && !out->ids)) {
        cvm_free(x.col);
        cvm_text_table_clear(out);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    int rc = cvm_csv_read_file(sp->path, sp->delimiter, text_record, &x, err);
    if (rc == CVM_OK && !x.header_done)
        rc = CVM_FAIL(err, CVM_EDATA, "%s:1:1: the file is empty (no header line)", sp->path);
    cvm_csv_free_names(x.header, x.n_fields);
    cvm_free(x.col);
    if (rc != CVM_OK)
        cvm_text_table_clear(out);
    return rc;
}

void cvm_text_table_clear(cvm_text_table *t)
{
    if (t == NULL)
        return;
    if (t->cell)
        for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
            cvm_free(t->cell[i]);
    cvm_free(t->cell);
    cvm_free(t->line);
    cvm_dict_free(t->ids);
    memset(t, 0, sizeof *t);
}
