#include "fpgrowth.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "alloc.h"
#include "log.h"
#include "parallel.h"

void cvm_fim_params_default(cvm_fim_params *p)
{
    memset(p, 0, sizeof *p);
    p->min_support = 0.001;
    p->min_count = 0;
    p->max_len = 5;
    p->target = CVM_FIM_FREQUENT;
    p->max_itemsets = 2000000;
}

const char *cvm_fim_params_check(const cvm_fim_params *p)
{
    if (!(p->min_support >= 0 && p->min_support <= 1))
        return "minimum support must be a fraction in [0, 1]";
    if (p->max_len < 0 || p->max_len > 1000)
        return "maximum itemset length must be 0 (unbounded) or 1..1000";
    if (p->target != CVM_FIM_FREQUENT && p->target != CVM_FIM_CLOSED && p->target != CVM_FIM_MAXIMAL)
        return "target must be frequent, closed or maximal";
    if (p->max_itemsets > UINT32_MAX - 1)
        return "the itemset bound must be below 2^32";
    return NULL;
}

uint64_t cvm_fim_min_count(const cvm_fim_params *p, uint64_t n_baskets)
{
    double x = p->min_support * (double)n_baskets;
    uint64_t c = (uint64_t)ceil(x);
    /* 0.001 * 1000 may come out as 1.0000000000000002: a product within
     * rounding of an integer is that integer. */
    if (c > 0 && (double)(c - 1) >= x * (1 - 1e-9))
        c--;
    if (c < p->min_count)
        c = p->min_count;
    return c < 1 ? 1 : c;
}

void cvm_itemsets_clear(cvm_itemsets *s)
{
    if (s == NULL)
        return;
    cvm_free(s->start);
    cvm_free(s->item);
    cvm_free(s->count);
    cvm_free(s->in_target);
    cvm_free(s->slot);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ mining */

/* A conditional database: each transaction is its local item codes in
 * descending order followed by -weight; occ[ostart[i] .. ostart[i+1]) are the
 * offsets in a of item i's occurrences, so the items of a transaction below
 * i are read forward from the occurrence to the terminator. Local codes
 * ascend with descending frequency in the parent, so the prefix of a rare
 * item is long and the prefix of a frequent one short, which keeps every
 * projection small (the FP-tree's ordering). */
typedef struct db {
    const int32_t *a;
    size_t na;
    int m;
    const int32_t *gmap;      /* local code -> item number */
    const uint32_t *occ;
    const size_t *ostart;
} db;

/* Scratch of one recursion depth of one thread, plus the storage of the
 * child database it builds. */
typedef struct frame {
    uint32_t *cnt;
    int32_t *code;
    size_t cap_m;
    int32_t *a;
    size_t cap_a;
    int32_t *gmap;
    size_t cap_g;
    uint32_t *occ;
    size_t cap_occ;
    size_t *ostart;
    size_t cap_os;
    uint64_t *ht;             /* transaction hash table: (start + 1) << 32 | length */
    size_t cap_ht;
} frame;

typedef struct outbuf {
    int32_t *item;
    size_t n_item, cap_item;
    uint32_t *count;
    uint16_t *len;
    size_t n, cap;
} outbuf;

typedef struct shared {
    uint32_t minc;
    int maxlen;               /* internal bound (INT_MAX = none) */
    size_t bound;             /* 0 = none */
    bool store;
    size_t total;             /* flushed emissions, all threads */
    int stop;                 /* set when the bound is passed or on ENOMEM */
} shared;

typedef struct ws {
    frame **fr;
    size_t n_fr;
    int32_t *prefix;
    outbuf out;
    size_t pending;
    int status;
} ws;

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *q = cvm_reallocarray(*p, c, elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static void flush(ws *w, shared *sh)
{
    size_t t;
#pragma omp atomic capture
    {
        sh->total += w->pending;
        t = sh->total;
    }
    w->pending = 0;
    if (sh->bound && t > sh->bound) {
#pragma omp atomic write
        sh->stop = 1;
    }
}

static inline int stopped(shared *sh)
{
    int s;
#pragma omp atomic read
    s = sh->stop;
    return s;
}

static void fail_nomem(ws *w, shared *sh)
{
    w->status = CVM_ENOMEM;
#pragma omp atomic write
    sh->stop = 1;
}

/* Itemset prefix[0..d) + {e, i} with its count. */
static void emit(ws *w, shared *sh, int d, int32_t e, int32_t i, uint32_t count)
{
    if (sh->store) {
        outbuf *o = &w->out;
        size_t k = (size_t)d + (e >= 0) + 1;
        if (grow((void **)&o->item, &o->cap_item, o->n_item + k, sizeof *o->item) != 0) {
            fail_nomem(w, sh);
            return;
        }
        if (o->n == o->cap) {
            size_t c = o->cap ? o->cap * 2 : 1024;
            uint32_t *cn = cvm_reallocarray(o->count, c, sizeof *cn);
            if (cn)
                o->count = cn;
            uint16_t *ln = cvm_reallocarray(o->len, c, sizeof *ln);
            if (ln)
                o->len = ln;
            if (!cn || !ln) {
                fail_nomem(w, sh);
                return;
            }
            o->cap = c;
        }
        memcpy(o->item + o->n_item, w->prefix, (size_t)d * sizeof *o->item);
        o->n_item += (size_t)d;
        if (e >= 0)
            o->item[o->n_item++] = e;
        o->item[o->n_item++] = i;
        o->count[o->n] = count;
        o->len[o->n] = (uint16_t)k;
        o->n++;
    }
    if (++w->pending >= 4096)
        flush(w, sh);
}

static frame *get_frame(ws *w, int d)
{
    if (w->fr[d] == NULL)
        w->fr[d] = cvm_calloc(1, sizeof **w->fr);
    return w->fr[d];
}

/* Occurrence lists of D, into storage of frame f (the frame that built D). */
static int build_occ(db *D, uint32_t **occ, size_t *cap_occ, size_t **ostart, size_t *cap_os)
{
    int m = D->m;
    if (grow((void **)ostart, cap_os, (size_t)m + 2, sizeof **ostart) != 0)
        return -1;
    size_t *os = *ostart;
    memset(os, 0, ((size_t)m + 2) * sizeof *os);
    size_t tot = 0;
    for (size_t k = 0; k < D->na; k++)
        if (D->a[k] >= 0) {
            os[D->a[k] + 1]++;
            tot++;
        }
    if (grow((void **)occ, cap_occ, tot ? tot : 1, sizeof **occ) != 0)
        return -1;
    for (int i = 1; i <= m; i++)
        os[i] += os[i - 1];
    uint32_t *oc = *occ;
    for (size_t k = 0; k < D->na; k++)
        if (D->a[k] >= 0)
            oc[os[D->a[k]]++] = (uint32_t)k;
    for (int i = m; i > 0; i--)
        os[i] = os[i - 1];
    os[0] = 0;
    D->occ = oc;
    D->ostart = os;
    return 0;
}

static void mine_db(ws *w, shared *sh, db *D, int d);

#define PREFETCH 12

/* Extensions of prefix[0..d) + {item e of D}: count the items below e in
 * the transactions containing e, emit the frequent pairs, recurse on the
 * projection when it can still yield longer itemsets. */
static void process_item(ws *w, shared *sh, const db *D, int d, int e)
{
    frame *f = get_frame(w, d);
    if (f == NULL || grow((void **)&f->cnt, &f->cap_m, (size_t)D->m, sizeof *f->cnt) != 0) {
        fail_nomem(w, sh);
        return;
    }
    if (f->code == NULL || f->cap_g < f->cap_m) {
        /* code is sized with cnt; gmap of the child needs at most m too. */
        int32_t *c = cvm_reallocarray(f->code, f->cap_m, sizeof *c);
        if (c == NULL) {
            fail_nomem(w, sh);
            return;
        }
        f->code = c;
        int32_t *g = cvm_reallocarray(f->gmap, f->cap_m, sizeof *g);
        if (g == NULL) {
            fail_nomem(w, sh);
            return;
        }
        f->gmap = g;
        f->cap_g = f->cap_m;
    }
    uint32_t *cnt = f->cnt;
    int32_t *code = f->code;
    const int32_t *a = D->a;
    memset(cnt, 0, (size_t)e * sizeof *cnt);
    size_t o0 = D->ostart[e], o1 = D->ostart[e + 1];
    size_t room = 0;
    /* The transactions of e lie all over the database: fetch ahead, or
     * every one costs a full memory latency. */
    for (size_t k = o0; k < o1; k++) {
        if (k + PREFETCH < o1)
            __builtin_prefetch(a + D->occ[k + PREFETCH]);
        size_t q = D->occ[k] + 1, s = q;
        while (a[q] >= 0)
            q++;
        uint32_t wt = (uint32_t)-a[q];
        for (size_t r = s; r < q; r++)
            cnt[a[r]] += wt;
        room += q - s + 1;
    }
    int nf = 0;
    int32_t ge = D->gmap[e];
    for (int i = 0; i < e; i++) {
        if (cnt[i] >= sh->minc) {
            code[i] = nf++;
            emit(w, sh, d, ge, D->gmap[i], cnt[i]);
        } else {
            code[i] = -1;
        }
    }
    if (nf < 2 || d + 3 > sh->maxlen || stopped(sh))
        return;
    if (grow((void **)&f->a, &f->cap_a, room, sizeof *f->a) != 0) {
        fail_nomem(w, sh);
        return;
    }
    int32_t *ca = f->a;
    for (int i = 0; i < e; i++)
        if (code[i] >= 0)
            f->gmap[code[i]] = D->gmap[i];
    /* Identical projected transactions are merged (their weights added),
     * as an FP-tree shares their path: deep projections hold few distinct
     * transactions over few items, so this is where the time goes. */
    size_t nht = 16;
    while (nht < 2 * (o1 - o0))
        nht <<= 1;
    if (grow((void **)&f->ht, &f->cap_ht, nht, sizeof *f->ht) != 0) {
        fail_nomem(w, sh);
        return;
    }
    uint64_t *ht = f->ht;
    memset(ht, 0, nht * sizeof *ht);
    size_t na = 0;
    for (size_t k = o0; k < o1; k++) {
        if (k + PREFETCH < o1)
            __builtin_prefetch(a + D->occ[k + PREFETCH]);
        size_t r = D->occ[k] + 1, s = na;
        uint64_t h = 0x9E3779B97F4A7C15ULL;
        for (; a[r] >= 0; r++)
            if (code[a[r]] >= 0) {
                ca[na++] = code[a[r]];
                h = (h ^ (uint64_t)code[a[r]]) * 0xBF58476D1CE4E5B9ULL;
            }
        size_t len = na - s;
        if (len < 2) {
            na = s;
            continue;
        }
        h ^= h >> 29;
        size_t j = h & (nht - 1);
        for (;;) {
            uint64_t v = ht[j];
            if (v == 0) {
                ht[j] = ((uint64_t)(s + 1) << 32) | len;
                ca[na++] = a[r];
                break;
            }
            size_t vs = (size_t)(v >> 32) - 1, vl = (size_t)(v & 0xFFFFFFFFu);
            if (vl == len && memcmp(ca + vs, ca + s, len * sizeof *ca) == 0) {
                ca[vs + vl] += a[r]; /* both negative: weights add */
                na = s;
                break;
            }
            j = (j + 1) & (nht - 1);
        }
    }
    db C = {ca, na, nf, f->gmap, NULL, NULL};
    if (build_occ(&C, &f->occ, &f->cap_occ, &f->ostart, &f->cap_os) != 0) {
        fail_nomem(w, sh);
        return;
    }
    w->prefix[d] = ge;
    mine_db(w, sh, &C, d + 1);
}

static void mine_db(ws *w, shared *sh, db *D, int d)
{
    for (int e = D->m - 1; e >= 1; e--) {
        if (stopped(sh))
            return;
        process_item(w, sh, D, d, e);
    }
}

static void ws_free(ws *w, size_t n_fr)
{
    for (size_t d = 0; w->fr && d < n_fr; d++) {
        frame *f = w->fr[d];
        if (f == NULL)
            continue;
        cvm_free(f->cnt);
        cvm_free(f->code);
        cvm_free(f->a);
        cvm_free(f->gmap);
        cvm_free(f->occ);
        cvm_free(f->ostart);
        cvm_free(f->ht);
        cvm_free(f);
    }
    cvm_free(w->fr);
    cvm_free(w->prefix);
    cvm_free(w->out.item);
    cvm_free(w->out.count);
    cvm_free(w->out.len);
}

/* The input after the first scan: frequent items ranked, the top database. */
typedef struct prep {
    uint32_t *icount;         /* per item number */
    int32_t *gmap;            /* rank -> item number */
    int m;
    int32_t *a;
    size_t na;
    uint32_t *occ;
    size_t cap_occ;
    size_t *ostart;
    size_t cap_os;
    uint64_t n_baskets;
} prep;

static void prep_clear(prep *P)
{
    cvm_free(P->icount);
    cvm_free(P->gmap);
    cvm_free(P->a);
    cvm_free(P->occ);
    cvm_free(P->ostart);
    memset(P, 0, sizeof *P);
}

static const uint32_t *g_icount; /* qsort has no context argument */

static int cmp_rank(const void *x, const void *y)
{
    int32_t i = *(const int32_t *)x, j = *(const int32_t *)y;
    if (g_icount[i] != g_icount[j])
        return g_icount[i] > g_icount[j] ? -1 : 1;
    return (i > j) - (i < j);
}

static int prepare(const cvm_baskets *b, const uint32_t *subset, size_t n_sub, uint32_t minc,
                   bool pairs, int threads, prep *P, cvm_err *err)
{
    memset(P, 0, sizeof *P);
    size_t nb = subset ? n_sub : b->n_baskets, ni = b->n_items;
    int nt = threads;
    P->n_baskets = nb;
    P->icount = cvm_calloc(ni ? ni : 1, sizeof *P->icount);
    uint32_t *tc = cvm_calloc((size_t)nt * (ni ? ni : 1), sizeof *tc);
    if (P->icount == NULL || tc == NULL) {
        cvm_free(tc);
        return CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
    }
    /* Item counts: per-thread arrays, summed (integers: order-free). */
#pragma omp parallel num_threads(nt) default(none) shared(b, subset, nb, ni, tc)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        uint32_t *c = tc + (size_t)tid * ni;
#pragma omp for schedule(static)
        for (size_t j = 0; j < nb; j++) {
            size_t i = subset ? subset[j] : j;
            for (size_t k = b->start[i]; k < b->start[i + 1]; k++)
                c[b->item[k]]++;
        }
    }
    for (int t = 0; t < nt; t++)
        for (size_t i = 0; i < ni; i++)
            P->icount[i] += tc[(size_t)t * ni + i];
    cvm_free(tc);
    int m = 0;
    for (size_t i = 0; i < ni; i++)
        m += P->icount[i] >= minc;
    P->m = m;
    P->gmap = cvm_malloc((m ? (size_t)m : 1) * sizeof *P->gmap);
    int32_t *rank = cvm_malloc((ni ? ni : 1) * sizeof *rank);
    if (!P->gmap || !rank) {
        cvm_free(rank);
        return CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
    }
    m = 0;
    for (size_t i = 0; i < ni; i++) {
        rank[i] = -1;
        if (P->icount[i] >= minc)
            P->gmap[m++] = (int32_t)i;
    }
    /* Reentrancy: g_icount is only read inside this qsort, under a lock. */
#pragma omp critical(cvm_fim_rank)
    {
        g_icount = P->icount;
        qsort(P->gmap, (size_t)m, sizeof *P->gmap, cmp_rank);
        g_icount = NULL;
    }
    for (int r = 0; r < m; r++)
        rank[P->gmap[r]] = r;
    if (!pairs || m < 2) {
        cvm_free(rank);
        return CVM_OK;
    }
    /* Top database: frequent items of each basket, descending rank, baskets
     * with at least two of them, in basket order (sizes, offsets, fill). */
    size_t *off = cvm_malloc((nb + 1) * sizeof *off);
    if (off == NULL) {
        cvm_free(rank);
        return CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
    }
#pragma omp parallel for num_threads(nt) schedule(static) default(none) shared(b, subset, nb, rank, off)
    for (size_t j = 0; j < nb; j++) {
        size_t i = subset ? subset[j] : j;
        size_t k = 0;
        for (size_t x = b->start[i]; x < b->start[i + 1]; x++)
            k += rank[b->item[x]] >= 0;
        off[j + 1] = k >= 2 ? k + 1 : 0;
    }
    off[0] = 0;
    for (size_t j = 0; j < nb; j++)
        off[j + 1] += off[j];
    size_t cap = off[nb];
    if (cap >= UINT32_MAX) {
        cvm_free(rank);
        cvm_free(off);
        return CVM_FAIL(err, CVM_ELIMIT, "itemsets: more than 2^32 item occurrences");
    }
    P->a = cvm_malloc((cap ? cap : 1) * sizeof *P->a);
    if (P->a == NULL) {
        cvm_free(rank);
        cvm_free(off);
        return CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory for %zu items", cap);
    }
    int32_t *a = P->a;
#pragma omp parallel for num_threads(nt) schedule(static) default(none) shared(b, subset, nb, rank, off, a)
    for (size_t j = 0; j < nb; j++) {
        if (off[j + 1] == off[j])
            continue;
        size_t i = subset ? subset[j] : j;
        size_t s = off[j], na = s;
        for (size_t x = b->start[i]; x < b->start[i + 1]; x++) {
            int32_t r = rank[b->item[x]];
            if (r < 0)
                continue;
            size_t y = na++;
            while (y > s && a[y - 1] < r) {
                a[y] = a[y - 1];
                y--;
            }
            a[y] = r;
        }
        a[na] = -1;
    }
    P->na = cap;
    cvm_free(rank);
    cvm_free(off);
    db D = {P->a, P->na, P->m, P->gmap, NULL, NULL};
    if (build_occ(&D, &P->occ, &P->cap_occ, &P->ostart, &P->cap_os) != 0)
        return CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
    return CVM_OK;
}

/* Mine the prepared input; with store, the itemsets go to the workspaces. */
static int mine(const prep *P, shared *sh, int threads, ws **wsp, int *nws, cvm_err *err)
{
    int nt = threads;
    ws *W = cvm_calloc((size_t)nt, sizeof *W);
    if (W == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
    size_t depth = (size_t)(sh->maxlen < P->m ? sh->maxlen : P->m) + 2;
    int rc = CVM_OK;
    for (int t = 0; t < nt; t++) {
        W[t].fr = cvm_calloc(depth, sizeof *W[t].fr);
        W[t].prefix = cvm_calloc(depth, sizeof *W[t].prefix);
        W[t].n_fr = depth;
        if (!W[t].fr || !W[t].prefix)
            rc = CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
    }
    if (rc == CVM_OK) {
        /* Singletons first (thread 0, in rank order). */
        for (int r = 0; r < P->m; r++)
            emit(&W[0], sh, 0, -1, P->gmap[r], P->icount[P->gmap[r]]);
        db D = {P->a, P->na, P->m, P->gmap, P->occ, P->ostart};
        if (sh->maxlen >= 2 && P->na > 0) {
            int m = P->m;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) default(none) shared(W, sh, D, m)
            for (int k = 1; k < m; k++) {
                int tid = 0;
#ifdef _OPENMP
                tid = omp_get_thread_num();
#endif
                /* Rare items first: their projections are the largest. */
                if (!stopped(sh))
                    process_item(&W[tid], sh, &D, 0, m - k);
            }
        }
        for (int t = 0; t < nt; t++) {
            flush(&W[t], sh);
            if (W[t].status != CVM_OK && rc == CVM_OK)
                rc = CVM_FAIL(err, W[t].status, "itemsets: out of memory");
        }
    }
    if (rc != CVM_OK || wsp == NULL) {
        for (int t = 0; t < nt; t++)
            ws_free(&W[t], W[t].n_fr);
        cvm_free(W);
        return rc;
    }
    *wsp = W;
    *nws = nt;
    return CVM_OK;
}

/* Bounded trial: number of itemsets at min count c, or bound + 1 when over. */
static size_t trial(const cvm_baskets *b, const uint32_t *subset, size_t n_sub, uint32_t c,
                    int maxlen, size_t bound, int threads)
{
    prep P;
    cvm_err e = {0};
    if (prepare(b, subset, n_sub, c, maxlen >= 2, threads, &P, &e) != CVM_OK) {
        prep_clear(&P);
        return bound + 1;
    }
    shared sh = {c, maxlen, bound, false, 0, 0};
    size_t r = mine(&P, &sh, threads, NULL, NULL, &e) == CVM_OK ? sh.total : bound + 1;
    prep_clear(&P);
    return r > bound ? bound + 1 : r;
}

/* ------------------------------------------------------------------ output */

/* Sort entries: length and first two items packed into a key, so most
 * comparisons never touch the item arrays. */
typedef struct sortkey {
    uint64_t key;
    size_t idx;
} sortkey;

static const cvm_itemsets *g_sort; /* qsort context, under a lock */

static int cmp_canon(const void *x, const void *y)
{
    const sortkey *p = x, *q = y;
    if (p->key != q->key)
        return p->key < q->key ? -1 : 1;
    const cvm_itemsets *s = g_sort;
    size_t i = p->idx, j = q->idx;
    size_t l = s->start[i + 1] - s->start[i];
    const int32_t *a = s->item + s->start[i], *b = s->item + s->start[j];
    for (size_t k = 2; k < l; k++)
        if (a[k] != b[k])
            return a[k] < b[k] ? -1 : 1;
    return 0;
}

static uint64_t canon_key(const int32_t *it, size_t len)
{
    /* len < 2^12, items < 2^26 (checked by the caller). */
    return (uint64_t)len << 52 | (uint64_t)it[0] << 26 | (len > 1 ? (uint64_t)it[1] : 0);
}

static uint64_t hash_items(const int32_t *it, size_t k)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ k;
    for (size_t i = 0; i < k; i++) {
        h ^= (uint64_t)(uint32_t)it[i];
        h *= 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    return h;
}

static int build_index(cvm_itemsets *s)
{
    cvm_free(s->slot);
    size_t cap = 16;
    while (cap < 2 * s->n + 2)
        cap <<= 1;
    s->slot = cvm_calloc(cap, sizeof *s->slot);
    if (s->slot == NULL)
        return -1;
    s->mask = cap - 1;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = hash_items(s->item + s->start[i], cvm_itemsets_len(s, i)) & s->mask;
        while (s->slot[j])
            j = (j + 1) & s->mask;
        s->slot[j] = (uint32_t)(i + 1);
    }
    return 0;
}

long cvm_itemsets_find(const cvm_itemsets *s, const int32_t *items, size_t k)
{
    if (s->slot == NULL)
        return -1;
    size_t j = hash_items(items, k) & s->mask;
    for (;;) {
        uint32_t v = s->slot[j];
        if (v == 0)
            return -1;
        size_t i = v - 1;
        if (cvm_itemsets_len(s, i) == k &&
            memcmp(s->item + s->start[i], items, k * sizeof *items) == 0)
            return (long)i;
        j = (j + 1) & s->mask;
    }
}

/* Workspaces' itemsets -> out, in canonical order. */
static int assemble(ws *W, int nt, cvm_itemsets *out, cvm_err *err)
{
    size_t n = 0, ni = 0;
    for (int t = 0; t < nt; t++) {
        n += W[t].out.n;
        ni += W[t].out.n_item;
    }
    cvm_itemsets tmp = {0};
    tmp.start = cvm_malloc((n + 1) * sizeof *tmp.start);
    tmp.item = cvm_malloc((ni ? ni : 1) * sizeof *tmp.item);
    tmp.count = cvm_malloc((n ? n : 1) * sizeof *tmp.count);
    sortkey *perm = cvm_malloc((n ? n : 1) * sizeof *perm);
    int rc = CVM_OK;
    if (!tmp.start || !tmp.item || !tmp.count || !perm) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory for %zu itemsets", n);
        goto done;
    }
    size_t s = 0, x = 0;
    for (int t = 0; t < nt; t++) {
        const outbuf *o = &W[t].out;
        size_t off = 0;
        for (size_t i = 0; i < o->n; i++, s++) {
            tmp.start[s] = x;
            int32_t *it = tmp.item + x;
            memcpy(it, o->item + off, o->len[i] * sizeof *tmp.item);
            for (size_t u = 1; u < o->len[i]; u++) {
                int32_t v = it[u];
                size_t y = u;
                for (; y > 0 && it[y - 1] > v; y--)
                    it[y] = it[y - 1];
                it[y] = v;
            }
            off += o->len[i];
            x += o->len[i];
            tmp.count[s] = o->count[i];
            perm[s].key = canon_key(it, o->len[i]);
            perm[s].idx = s;
        }
        /* Free as we go: the peak holds one copy, not two. */
        cvm_free(W[t].out.item);
        cvm_free(W[t].out.count);
        cvm_free(W[t].out.len);
        memset(&W[t].out, 0, sizeof W[t].out);
    }
    tmp.start[n] = x;
    tmp.n = n;
#pragma omp critical(cvm_fim_sort)
    {
        g_sort = &tmp;
        qsort(perm, n, sizeof *perm, cmp_canon);
        g_sort = NULL;
    }
    out->start = cvm_malloc((n + 1) * sizeof *out->start);
    out->item = cvm_malloc((ni ? ni : 1) * sizeof *out->item);
    out->count = cvm_malloc((n ? n : 1) * sizeof *out->count);
    out->in_target = cvm_malloc((n ? n : 1) * sizeof *out->in_target);
    if (!out->start || !out->item || !out->count || !out->in_target) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory for %zu itemsets", n);
        goto done;
    }
    x = 0;
    for (size_t i = 0; i < n; i++) {
        size_t p = perm[i].idx, l = tmp.start[p + 1] - tmp.start[p];
        out->start[i] = x;
        memcpy(out->item + x, tmp.item + tmp.start[p], l * sizeof *out->item);
        x += l;
        out->count[i] = tmp.count[p];
        out->in_target[i] = 1;
    }
    out->start[n] = x;
    out->n = n;
done:
    cvm_free(tmp.start);
    cvm_free(tmp.item);
    cvm_free(tmp.count);
    cvm_free(perm);
    return rc;
}

/* Closed / maximal flags from the immediate supersets (if any superset has
 * the same count, or is frequent, so has one of one more item), then the
 * itemsets of length max_len + 1, mined only for this, are dropped. */
static int flag_target(cvm_itemsets *s, cvm_fim_target target, int max_len, cvm_err *err)
{
    if (build_index(s) != 0)
        return CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
    int32_t sub[1024];
    for (size_t i = 0; i < s->n; i++) {
        size_t k = cvm_itemsets_len(s, i);
        if (k < 2)
            continue;
        const int32_t *it = s->item + s->start[i];
        for (size_t j = 0; j < k; j++) {
            size_t q = 0;
            for (size_t r = 0; r < k; r++)
                if (r != j)
                    sub[q++] = it[r];
            long y = cvm_itemsets_find(s, sub, k - 1);
            if (y < 0)
                continue; /* cannot happen: subsets of frequent sets are frequent */
            if (target == CVM_FIM_MAXIMAL || s->count[y] == s->count[i])
                s->in_target[y] = 0;
        }
    }
    if (max_len > 0) {
        size_t n = s->n;
        while (n > 0 && cvm_itemsets_len(s, n - 1) > (size_t)max_len)
            n--;
        s->n = n;
    }
    s->n_target = 0;
    for (size_t i = 0; i < s->n; i++)
        s->n_target += s->in_target[i];
    return build_index(s) == 0 ? CVM_OK : CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
}

int cvm_fim_run(const cvm_fim_params *p, const cvm_baskets *b, const uint32_t *subset,
                size_t n_subset, cvm_itemsets *out, cvm_err *err)
{
    memset(out, 0, sizeof *out);
    const char *why = cvm_fim_params_check(p);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "itemsets: %s", why);
    double t0 = cvm_now();
    uint64_t nb = subset ? n_subset : b->n_baskets;
    if (nb >= INT32_MAX)
        return CVM_FAIL(err, CVM_ELIMIT, "itemsets: more than 2^31 baskets");
    if (b->n_items >= ((size_t)1 << 26))
        return CVM_FAIL(err, CVM_ELIMIT, "itemsets: more than 2^26 distinct items");
    uint64_t mc = cvm_fim_min_count(p, nb);
    uint32_t minc = mc > UINT32_MAX ? UINT32_MAX : (uint32_t)mc;
    out->n_baskets = nb;
    out->min_count_used = mc;
    out->n_items = b->n_items;
    /* Closed and maximal look one item beyond max_len. */
    int maxlen = p->max_len == 0 ? INT_MAX : p->max_len;
    if (p->target != CVM_FIM_FREQUENT && p->max_len > 0)
        maxlen = p->max_len + 1;
    if (maxlen > 1000)
        maxlen = 1000; /* labels longer than this are not itemsets anyone reads */
    int threads = cvm_threads(p->threads);
    prep P;
    int rc = prepare(b, subset, n_subset, minc, maxlen >= 2, threads, &P, err);
    out->n_frequent_items = (size_t)P.m;
    ws *W = NULL;
    int nt = 0;
    shared sh = {minc, maxlen, p->max_itemsets, true, 0, 0};
    if (rc == CVM_OK)
        rc = mine(&P, &sh, threads, &W, &nt, err);
    prep_clear(&P);
    if (rc == CVM_OK && sh.bound && sh.total > sh.bound) {
        for (int t = 0; t < nt; t++)
            ws_free(&W[t], W[t].n_fr);
        cvm_free(W);
        W = NULL;
        /* Find a count that stays within the bound: double, then bisect. */
        uint64_t lo = minc, hi = (uint64_t)minc * 2;
        while (hi <= nb && trial(b, subset, n_subset, (uint32_t)hi, maxlen, sh.bound, threads) > sh.bound) {
            lo = hi;
            hi *= 2;
        }
        if (hi > nb + 1)
            hi = nb + 1;
        for (int step = 0; step < 6 && hi - lo > 1; step++) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (trial(b, subset, n_subset, (uint32_t)mid, maxlen, sh.bound, threads) > sh.bound)
                lo = mid;
            else
                hi = mid;
        }
        out->suggest_count = hi;
        out->seconds = cvm_now() - t0;
        return CVM_FAIL(err, CVM_ELIMIT,
                        "more than %zu frequent itemsets at minimum support %.6g%% (count %llu of "
                        "%llu baskets): raise the minimum support to at least %.6g%% (count %llu), "
                        "lower the maximum itemset length, or raise the itemset bound",
                        sh.bound, 100.0 * (double)minc / (double)(nb ? nb : 1),
                        (unsigned long long)minc, (unsigned long long)nb,
                        100.0 * (double)hi / (double)(nb ? nb : 1), (unsigned long long)hi);
    }
    if (rc == CVM_OK)
        rc = assemble(W, nt, out, err);
    for (int t = 0; t < nt; t++)
        ws_free(&W[t], W[t].n_fr);
    cvm_free(W);
    if (rc == CVM_OK) {
        if (p->target != CVM_FIM_FREQUENT) {
            rc = flag_target(out, p->target, p->max_len, err);
        } else {
            out->n_target = out->n;
            if (build_index(out) != 0)
                rc = CVM_FAIL(err, CVM_ENOMEM, "itemsets: out of memory");
        }
    }
    if (rc != CVM_OK) {
        uint64_t keep_nb = out->n_baskets, keep_mc = out->min_count_used;
        cvm_itemsets_clear(out);
        out->n_baskets = keep_nb;
        out->min_count_used = keep_mc;
        return rc;
    }
    for (size_t i = 0; i < out->n; i++)
        if ((int)cvm_itemsets_len(out, i) > out->max_len_used)
            out->max_len_used = (int)cvm_itemsets_len(out, i);
    out->seconds = cvm_now() - t0;
    return CVM_OK;
}
