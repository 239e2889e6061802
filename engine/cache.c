#include "cache.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

#define MAGIC "CVMCACHE"
#define VERSION 1u

static inline uint64_t fold(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t cvm_cache_key(uint64_t key, const void *bytes, size_t len)
{
    const unsigned char *p = bytes;
    /* Four independent lanes keep the multiplier busy on the large column
     * arrays (the hash is a third of a cache load otherwise). */
    uint64_t h0 = key ^ 0x243F6A8885A308D3ULL ^ len, h1 = 0x13198A2E03707344ULL,
             h2 = 0xA4093822299F31D0ULL, h3 = 0x082EFA98EC4E6C89ULL;
    size_t i = 0;
    for (; i + 32 <= len; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        h0 = fold(h0 ^ w[0], 0x9E3779B97F4A7C15ULL);
        h1 = fold(h1 ^ w[1], 0xC2B2AE3D27D4EB4FULL);
        h2 = fold(h2 ^ w[2], 0x165667B19E3779F9ULL);
        h3 = fold(h3 ^ w[3], 0x27D4EB2F165667C5ULL);
    }
    uint64_t h = fold(h0 ^ h1, 0x9E3779B97F4A7C15ULL) ^ fold(h2 ^ h3, 0xC2B2AE3D27D4EB4FULL);
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = fold(h ^ w, 0x9E3779B97F4A7C15ULL);
    }
    uint64_t w = 0;
    memcpy(&w, p + i, len - i);
    return fold(h ^ w, 0xBF58476D1CE4E5B9ULL);
}

/* Every byte written or read goes through these, which keep the running
 * checksum, so save and load hash exactly the same pieces. */
typedef struct io {
    FILE *f;
    uint64_t h;
    int bad;
} io;

/* Large arrays are hashed in 4 MiB blocks in parallel, folded in order:
 * the result does not depend on the thread count. */
#define HASH_BLOCK ((size_t)4 << 20)
static uint64_t hash_bytes(uint64_t h, const void *p, size_t len)
{
    if (len < 2 * HASH_BLOCK)
        return cvm_cache_key(h, p, len);
    long nb = (long)((len + HASH_BLOCK - 1) / HASH_BLOCK);
    uint64_t *bh = malloc((size_t)nb * sizeof *bh);
    if (bh == NULL)
        return cvm_cache_key(h, p, len) ^ 1; /* never matches: a reload re-parses */
    const unsigned char *b = p;
#pragma omp parallel for schedule(static) default(none) shared(bh, b, nb, len)
    for (long i = 0; i < nb; i++) {
        size_t off = (size_t)i * HASH_BLOCK;
        size_t n = len - off < HASH_BLOCK ? len - off : HASH_BLOCK;
        bh[i] = cvm_cache_key(0, b + off, n);
    }
    h = cvm_cache_key(h, bh, (size_t)nb * sizeof *bh);
    free(bh);
    return h;
}

static void put(io *x, const void *p, size_t len)
{
    if (x->bad || len == 0)
        return;
    if (fwrite(p, 1, len, x->f) != len)
        x->bad = 1;
    x->h = hash_bytes(x->h, p, len);
}

static void get(io *x, void *p, size_t len)
{
    if (x->bad || len == 0)
        return;
    if (fread(p, 1, len, x->f) != len) {
        x->bad = 1;
        memset(p, 0, len);
        return;
    }
    x->h = hash_bytes(x->h, p, len);
}

static void put_u64(io *x, uint64_t v) { put(x, &v, sizeof v); }
static uint64_t get_u64(io *x)
{
    uint64_t v = 0;
    get(x, &v, sizeof v);
    return v;
}

static void put_str(io *x, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u64(x, n);
    put(x, s, n);
}

/* A string of at most `max` bytes, allocated; NULL (and x->bad) on error. */
static char *get_str(io *x, size_t max)
{
    uint64_t n = get_u64(x);
    if (x->bad || n > max) {
        x->bad = 1;
        return NULL;
    }
    char *s = cvm_malloc((size_t)n + 1);
    if (s == NULL) {
        x->bad = 2;
        return NULL;
    }
    get(x, s, (size_t)n);
    s[n] = '\0';
    return s;
}

static void put_dict(io *x, const cvm_dict *d)
{
    size_t n = d ? cvm_dict_size(d) : 0;
    put_u64(x, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = cvm_dict_len(d, (int32_t)i);
        put_u64(x, len);
        put(x, cvm_dict_str(d, (int32_t)i), len);
    }
}

static cvm_dict *get_dict(io *x)
{
    uint64_t n = get_u64(x);
    if (x->bad || n > INT32_MAX) {
        x->bad = 1;
        return NULL;
    }
    cvm_dict *d = cvm_dict_new((size_t)n);
    if (d == NULL) {
        x->bad = 2;
        return NULL;
    }
    char buf[4096];
    for (uint64_t i = 0; i < n && !x->bad; i++) {
        uint64_t len = get_u64(x);
        if (len > sizeof buf) {
            x->bad = 1;
            break;
        }
        get(x, buf, (size_t)len);
        /* Strings were unique when saved: a repeat means corruption. */
        if (!x->bad && cvm_dict_intern(d, buf, (size_t)len) != (int32_t)i)
            x->bad = cvm_dict_size(d) == i ? 2 : 1;
    }
    return d;
}

#define STATS_U64(X)                                                                              \
    X(bytes) X(rows) X(accepted) X(rejected) X(returns) X(excluded) X(duplicates)                 \
    X(utf8_repaired) X(other_partition) X(chunks)

int cvm_cache_save(const char *path, uint64_t key, const cvm_txn_table *t, const cvm_rejects *rej,
                   const cvm_ingest_stats *st, cvm_err *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (f == NULL)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot create the parse cache: %s", tmp, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    io x = {f, 0, 0};
    put(&x, MAGIC, 8);
    uint32_t v = VERSION;
    put(&x, &v, sizeof v);
    put_u64(&x, key);
    size_t n = t->n_rows, nc = t->n_customers;
    put_u64(&x, n);
    put_u64(&x, nc);
    put_u64(&x, t->n_orders);
    uint8_t hc = t->has_cost;
    put(&x, &hc, 1);
    put(&x, t->customer, n * sizeof *t->customer);
    put(&x, t->order, n * sizeof *t->order);
    put(&x, t->day, n * sizeof *t->day);
    put(&x, t->product, n * sizeof *t->product);
    put(&x, t->quantity, n * sizeof *t->quantity);
    put(&x, t->revenue, n * sizeof *t->revenue);
    put(&x, t->cost, n * sizeof *t->cost);
    put(&x, t->flags, n * sizeof *t->flags);
    put(&x, t->line, n * sizeof *t->line);
    put(&x, t->cust_start, (nc + 1) * sizeof *t->cust_start);
    put_dict(&x, t->customers);
    put_dict(&x, t->products);
#define PUT_STAT(f) put_u64(&x, (uint64_t)st->f);
    STATS_U64(PUT_STAT)
#undef PUT_STAT
    put_u64(&x, (uint64_t)st->boundary_repairs);
    put_u64(&x, st->orders_synthesized);
    put_u64(&x, rej->n);
    for (size_t i = 0; i < rej->n; i++) {
        const cvm_reject *r = &rej->items[i];
        put_u64(&x, r->line);
        put_u64(&x, (uint64_t)(int64_t)r->column);
        put_u64(&x, (uint64_t)r->reason);
        put_str(&x, r->field);
        put_str(&x, r->detail);
        put_str(&x, r->raw);
    }
    uint64_t sum = x.h;
    if (!x.bad && fwrite(&sum, sizeof sum, 1, f) != 1)
        x.bad = 1;
    /* No fsync: a cache lost or torn by a crash fails its checksum and is
     * rebuilt, and syncing half a gigabyte would double the first run. */
    int close_bad = fflush(f) != 0;
    close_bad |= fclose(f) != 0;
    if (x.bad || close_bad) {
        unlink(tmp);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot write the parse cache: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        unlink(tmp);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot rename the parse cache: %s", path, strerror(errno));
    }
    return CVM_OK;
}

static void *get_array(io *x, size_t n, size_t size)
{
    void *p = cvm_malloc(n ? n * size : 1);
    if (p == NULL) {
        x->bad = 2;
        return NULL;
    }
    get(x, p, n * size);
    return p;
}

int cvm_cache_load(const char *path, uint64_t key, cvm_txn_table *t, cvm_rejects *rej,
                   cvm_ingest_stats *st, const char *txn_path, cvm_err *err)
{
    memset(t, 0, sizeof *t);
    memset(rej, 0, sizeof *rej);
    memset(st, 0, sizeof *st);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return CVM_FAIL(err, CVM_ENOTFOUND, "%s: no parse cache", path);
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    io x = {f, 0, 0};
    char magic[8];
    uint32_t v = 0;
    get(&x, magic, 8);
    get(&x, &v, sizeof v);
    uint64_t k = get_u64(&x);
    if (x.bad || memcmp(magic, MAGIC, 8) != 0 || v != VERSION) {
        fclose(f);
        return CVM_FAIL(err, CVM_EDATA, "%s: not a cvm parse cache of format %u", path, VERSION);
    }
    if (k != key) {
        fclose(f);
        return CVM_FAIL(err, CVM_ENOTFOUND, "%s: the inputs or the ingest settings changed", path);
    }
    uint64_t n = get_u64(&x), nc = get_u64(&x), no = get_u64(&x);
    uint8_t hc = 0;
    get(&x, &hc, 1);
    if (x.bad || n > ((uint64_t)1 << 40) || nc > INT32_MAX || no > INT32_MAX)
        x.bad = 1;
    if (!x.bad) {
        t->n_rows = (size_t)n;
        t->n_customers = (size_t)nc;
        t->n_orders = (size_t)no;
        t->has_cost = hc != 0;
        t->customer = get_array(&x, (size_t)n, sizeof *t->customer);
        t->order = get_array(&x, (size_t)n, sizeof *t->order);
        t->day = get_array(&x, (size_t)n, sizeof *t->day);
        t->product = get_array(&x, (size_t)n, sizeof *t->product);
        t->quantity = get_array(&x, (size_t)n, sizeof *t->quantity);
        t->revenue = get_array(&x, (size_t)n, sizeof *t->revenue);
        t->cost = get_array(&x, (size_t)n, sizeof *t->cost);
        t->flags = get_array(&x, (size_t)n, sizeof *t->flags);
        t->line = get_array(&x, (size_t)n, sizeof *t->line);
        t->cust_start = get_array(&x, (size_t)nc + 1, sizeof *t->cust_start);
        t->customers = get_dict(&x);
        t->products = get_dict(&x);
    }
#define GET_STAT(f) st->f = get_u64(&x);
    STATS_U64(GET_STAT)
#undef GET_STAT
    st->boundary_repairs = (int)get_u64(&x);
    st->orders_synthesized = get_u64(&x) != 0;
    uint64_t nr = get_u64(&x);
    if (nr > n + (uint64_t)1e9)
        x.bad = 1;
    for (uint64_t i = 0; i < nr && !x.bad; i++) {
        uint64_t line = get_u64(&x);
        int column = (int)(int64_t)get_u64(&x);
        uint64_t reason = get_u64(&x);
        char *field = get_str(&x, 1 << 20), *detail = get_str(&x, 1 << 20), *raw = get_str(&x, 1 << 20);
        if (!x.bad && reason >= CVM_REJECT_COUNT)
            x.bad = 1;
        if (!x.bad && cvm_rejects_add(rej, txn_path, line, column, field, (cvm_reject_reason)reason,
                                      detail, raw, strlen(raw), err) != CVM_OK)
            x.bad = 2;
        cvm_free(field);
        cvm_free(detail);
        cvm_free(raw);
    }
    uint64_t want = x.h, sum = 0;
    if (!x.bad && fread(&sum, sizeof sum, 1, f) != 1)
        x.bad = 1;
    fclose(f);
    /* Cheap structural checks on top of the checksum: offsets ascend and
     * ids are in range, so a model can never read out of bounds. */
    if (!x.bad && (sum != want || t->cust_start[0] != 0 || t->cust_start[nc] != n))
        x.bad = 1;
    for (size_t c = 0; !x.bad && c < (size_t)nc; c++)
        if (t->cust_start[c] > t->cust_start[c + 1])
            x.bad = 1;
    if (!x.bad && (cvm_dict_size(t->customers) != (size_t)nc))
        x.bad = 1;
    if (x.bad) {
        int nomem = x.bad == 2;
        cvm_txn_table_clear(t);
        cvm_rejects_clear(rej);
        memset(st, 0, sizeof *st);
        if (nomem)
            return CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory loading the parse cache", path);
        return CVM_FAIL(err, CVM_EDATA, "%s: the parse cache is corrupt or truncated", path);
    }
    return CVM_OK;
}
