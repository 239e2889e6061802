#include "cache.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "alloc.h"

/*
 * File layout (format 3), all integers little-endian as in memory:
 *
 *   header   192 bytes: magic, version, key, row/customer/order counts,
 *            has_cost, the offset of each of the 11 sections and the
 *            length of everything before the trailer
 *   columns  customer, order, day, product, quantity, revenue, cost, flags,
 *            line, cust_start: raw arrays, each starting on a 64-byte
 *            boundary, so a load maps the file and points the table's
 *            columns into the mapping instead of copying 450 MB
 *   meta     dictionaries, ingest statistics and rejects, serialised
 *   trailer  8 bytes: XXH3-64 over the XXH3-64 of each section, where a
 *            large section is hashed as 4 MiB blocks in parallel and the
 *            block hashes folded in order (equal for any thread count)
 */

#define MAGIC "CVMCACHE"
#define VERSION 3u
#define HEADER_BYTES 192u
#define ALIGN 64u
enum { N_COLS = 10, S_META = N_COLS, N_SECTIONS = N_COLS + 1 };

typedef struct header {
    char magic[8];
    uint32_t version, header_bytes;
    uint64_t key;
    uint64_t n_rows, n_customers, n_orders;
    uint64_t has_cost;
    uint64_t has_lines;       /* 0: the line section is empty (not kept) */
    uint64_t off[N_SECTIONS]; /* section starts */
    uint64_t end;             /* first byte of the trailer */
} header;
_Static_assert(sizeof(header) <= HEADER_BYTES, "cache header too large");

uint64_t cvm_cache_key(uint64_t key, const void *bytes, size_t len)
{
    return XXH3_64bits_withSeed(bytes, len, key);
}

#define HASH_BLOCK ((size_t)4 << 20)

/* XXH3 of a section: 4 MiB blocks hashed in parallel, then the block hashes. */
static uint64_t hash_section(const void *p, size_t len)
{
    if (len < 2 * HASH_BLOCK)
        return XXH3_64bits(p, len);
    long nb = (long)((len + HASH_BLOCK - 1) / HASH_BLOCK);
    uint64_t *bh = malloc((size_t)nb * sizeof *bh);
    if (bh == NULL)
        return XXH3_64bits(p, len) ^ 1; /* never matches: a reload re-parses */
    const unsigned char *b = p;
#pragma omp parallel for schedule(static) default(none) shared(bh, b, nb, len)
    for (long i = 0; i < nb; i++) {
        size_t off = (size_t)i * HASH_BLOCK;
        size_t n = len - off < HASH_BLOCK ? len - off : HASH_BLOCK;
        bh[i] = XXH3_64bits(b + off, n);
    }
    uint64_t h = XXH3_64bits(bh, (size_t)nb * sizeof *bh);
    free(bh);
    return h;
}

static uint64_t fold_sections(const uint64_t *sh)
{
    return XXH3_64bits(sh, (N_SECTIONS + 1) * sizeof *sh);
}

/* ---------------- the meta section: a growable byte buffer ---------------- */

typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
    int bad;
} wbuf;

static void put(wbuf *w, const void *p, size_t len)
{
    if (w->bad || len == 0)
        return;
    if (w->n + len > w->cap) {
        size_t cap = w->cap ? w->cap : 4096;
        while (cap < w->n + len)
            cap *= 2;
        unsigned char *np = cvm_realloc(w->p, cap);
        if (np == NULL) {
            w->bad = 1;
            return;
        }
        w->p = np;
        w->cap = cap;
    }
    memcpy(w->p + w->n, p, len);
    w->n += len;
}

static void put_u64(wbuf *w, uint64_t v) { put(w, &v, sizeof v); }

static void put_str(wbuf *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u64(w, n);
    put(w, s, n);
}

static void put_dict(wbuf *w, const cvm_dict *d)
{
    size_t n = d ? cvm_dict_size(d) : 0;
    put_u64(w, n);
    for (size_t i = 0; i < n; i++) {
        size_t len = cvm_dict_len(d, (int32_t)i);
        put_u64(w, len);
        put(w, cvm_dict_str(d, (int32_t)i), len);
    }
}

/* Reading never goes past the end: a short section sets bad = 1. */
typedef struct rbuf {
    const unsigned char *p;
    size_t n, at;
    int bad; /* 1 corrupt, 2 out of memory */
} rbuf;

static const void *take(rbuf *r, size_t len)
{
    if (r->bad || len > r->n - r->at) {
        r->bad = r->bad ? r->bad : 1;
        return NULL;
    }
    const void *p = r->p + r->at;
    r->at += len;
    return p;
}

static uint64_t get_u64(rbuf *r)
{
    uint64_t v = 0;
    const void *p = take(r, sizeof v);
    if (p)
        memcpy(&v, p, sizeof v);
    return v;
}

/* A string of at most `max` bytes, allocated; NULL (and r->bad) on error. */
static char *get_str(rbuf *r, size_t max)
{
    uint64_t n = get_u64(r);
    if (r->bad || n > max) {
        r->bad = r->bad ? r->bad : 1;
        return NULL;
    }
    const char *s = take(r, (size_t)n);
    if (s == NULL)
        return NULL;
    char *d = cvm_strndup(s, (size_t)n);
    if (d == NULL)
        r->bad = 2;
    return d;
}

static cvm_dict *get_dict(rbuf *r)
{
    uint64_t n = get_u64(r);
    if (r->bad || n > INT32_MAX || n > r->n - r->at) {
        r->bad = r->bad ? r->bad : 1;
        return NULL;
    }
    cvm_dict *d = cvm_dict_new((size_t)n);
    if (d == NULL) {
        r->bad = 2;
        return NULL;
    }
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        uint64_t len = get_u64(r);
        const char *s = len > UINT32_MAX ? NULL : take(r, (size_t)len);
        if (s == NULL) {
            r->bad = r->bad ? r->bad : 1;
            break;
        }
        /* Strings were unique when saved: a repeat means corruption. */
        if (cvm_dict_intern(d, s, (size_t)len) != (int32_t)i)
            r->bad = cvm_dict_size(d) == i ? 2 : 1;
    }
    return d;
}

#define STATS_U64(X)                                                                              \
    X(bytes) X(rows) X(accepted) X(rejected) X(returns) X(excluded) X(duplicates)                 \
    X(utf8_repaired) X(other_partition) X(chunks)

static void put_meta(wbuf *w, const cvm_txn_table *t, const cvm_rejects *rej,
                     const cvm_ingest_stats *st)
{
    put_dict(w, t->customers);
    put_dict(w, t->products);
#define PUT_STAT(f) put_u64(w, (uint64_t)st->f);
    STATS_U64(PUT_STAT)
#undef PUT_STAT
    put_u64(w, (uint64_t)st->boundary_repairs);
    put_u64(w, st->orders_synthesized);
    put_u64(w, rej->n);
    for (size_t i = 0; i < rej->n; i++) {
        const cvm_reject *r = &rej->items[i];
        put_u64(w, r->line);
        put_u64(w, (uint64_t)(int64_t)r->column);
        put_u64(w, (uint64_t)r->reason);
        put_str(w, r->field);
        put_str(w, r->detail);
        put_str(w, r->raw);
    }
}

/* ---------------- save ---------------- */

static int write_all(int fd, const void *p, size_t len)
{
    const char *b = p;
    while (len > 0) {
        ssize_t k = write(fd, b, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        len -= (size_t)k;
    }
    return 0;
}

int cvm_cache_save(const char *path, uint64_t key, const cvm_txn_table *t, const cvm_rejects *rej,
                   const cvm_ingest_stats *st, cvm_err *err)
{
    size_t n = t->n_rows, nc = t->n_customers;
    const void *col[N_COLS] = {t->customer, t->order,   t->day,   t->product, t->quantity,
                               t->revenue,  t->cost,    t->flags, t->line,    t->cust_start};
    const size_t len[N_COLS] = {n * sizeof *t->customer, n * sizeof *t->order,
                                n * sizeof *t->day,      n * sizeof *t->product,
                                n * sizeof *t->quantity, n * sizeof *t->revenue,
                                n * sizeof *t->cost,     n * sizeof *t->flags,
                                t->line ? n * sizeof *t->line : 0, (nc + 1) * sizeof *t->cust_start};
    wbuf meta = {0};
    put_meta(&meta, t, rej, st);
    if (meta.bad) {
        cvm_free(meta.p);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory writing the parse cache");
    }
    header h;
    unsigned char hb[HEADER_BYTES] = {0};
    memset(&h, 0, sizeof h);
    memcpy(h.magic, MAGIC, 8);
    h.version = VERSION;
    h.header_bytes = HEADER_BYTES;
    h.key = key;
    h.n_rows = n;
    h.n_customers = nc;
    h.n_orders = t->n_orders;
    h.has_cost = t->has_cost;
    h.has_lines = t->line != NULL;
    uint64_t at = HEADER_BYTES;
    for (int s = 0; s < N_SECTIONS; s++) {
        at = (at + ALIGN - 1) / ALIGN * ALIGN;
        h.off[s] = at;
        at += s < N_COLS ? len[s] : meta.n;
    }
    h.end = at;
    memcpy(hb, &h, sizeof h);
    uint64_t sh[N_SECTIONS + 1];
    sh[0] = XXH3_64bits(hb, HEADER_BYTES);
    for (int s = 0; s < N_COLS; s++)
        sh[s + 1] = hash_section(col[s], len[s]);
    sh[N_SECTIONS] = hash_section(meta.p, meta.n);
    uint64_t sum = fold_sections(sh);

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        cvm_free(meta.p);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot create the parse cache: %s", tmp, strerror(e));
    }
    static const unsigned char zeros[ALIGN];
    int bad = write_all(fd, hb, HEADER_BYTES);
    uint64_t pos = HEADER_BYTES;
    for (int s = 0; s < N_SECTIONS && !bad; s++) {
        bad = write_all(fd, zeros, (size_t)(h.off[s] - pos));
        const void *p = s < N_COLS ? col[s] : meta.p;
        size_t l = s < N_COLS ? len[s] : meta.n;
        if (!bad && l > 0)
            bad = write_all(fd, p, l);
        pos = h.off[s] + l;
    }
    if (!bad)
        bad = write_all(fd, &sum, sizeof sum);
    int e = errno;
    cvm_free(meta.p);
    /* No fsync: a cache lost or torn by a crash fails its checksum and is
     * rebuilt, and syncing half a gigabyte would double the first run. */
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        unlink(tmp);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot write the parse cache: %s", tmp, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        unlink(tmp);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot rename the parse cache: %s", path, strerror(e));
    }
    return CVM_OK;
}

/* ---------------- load ---------------- */

struct cvm_cache_file {
    char *path;
    unsigned char *base;
    size_t size;
    header h;
    size_t len[N_COLS];
};

void cvm_cache_close(cvm_cache_file *f)
{
    if (f == NULL)
        return;
    if (f->base)
        munmap(f->base, f->size);
    cvm_free(f->path);
    cvm_free(f);
}

static int corrupt(const char *path, cvm_err *err)
{
    return CVM_FAIL(err, CVM_EDATA, "%s: the parse cache is corrupt or truncated", path);
}

/* The header, checked for magic and version. */
static int read_header(int fd, const char *path, header *h, size_t *size, cvm_err *err)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < HEADER_BYTES + 8)
        return corrupt(path, err);
    *size = (size_t)sb.st_size;
    if (pread(fd, h, sizeof *h, 0) != (ssize_t)sizeof *h || memcmp(h->magic, MAGIC, 8) != 0 ||
        h->version != VERSION || h->header_bytes != HEADER_BYTES)
        return CVM_FAIL(err, CVM_EDATA, "%s: not a cvm parse cache of format %u", path, VERSION);
    return CVM_OK;
}

static int map_and_verify(int fd, cvm_cache_file *f, cvm_err *err)
{
    const header *h = &f->h;
    uint64_t n = h->n_rows, nc = h->n_customers;
    if (n > ((uint64_t)1 << 40) || nc > INT32_MAX || h->n_orders > INT32_MAX || h->end + 8 != f->size)
        return corrupt(f->path, err);
    const size_t w[N_COLS] = {4, 4, 4, 4, 8, 8, 8, 1, 4, sizeof(size_t)};
    if (h->has_lines > 1)
        return corrupt(f->path, err);
    for (int s = 0; s < N_COLS; s++)
        f->len[s] = (size_t)(s < N_COLS - 1 ? n : nc + 1) * w[s];
    if (!h->has_lines)
        f->len[8] = 0;
    uint64_t at = HEADER_BYTES;
    for (int s = 0; s < N_SECTIONS; s++) {
        at = (at + ALIGN - 1) / ALIGN * ALIGN;
        if (h->off[s] != at)
            return corrupt(f->path, err);
        at += s < N_COLS ? f->len[s] : 0;
    }
    if (h->off[S_META] > h->end)
        return corrupt(f->path, err);
    /* A private writable mapping: the columns live in it (no copy), and a
     * stage that adjusts a column (product costs) gets its own pages. The
     * cache file itself is only ever replaced by rename, never rewritten,
     * so the mapping stays valid while the run uses it. Populated
     * read-only (a writable populate would copy every page), then made
     * writable: only pages actually written are copied. */
    unsigned char *base = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (base == MAP_FAILED)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot map the parse cache: %s", f->path, strerror(errno));
    f->base = base;
    if (mprotect(base, f->size, PROT_READ | PROT_WRITE) != 0)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot map the parse cache: %s", f->path, strerror(errno));
    /* The checksum before anything reads the sections. */
    uint64_t sh[N_SECTIONS + 1];
    sh[0] = XXH3_64bits(base, HEADER_BYTES);
    for (int s = 0; s < N_COLS; s++)
        sh[s + 1] = hash_section(base + h->off[s], f->len[s]);
    sh[N_SECTIONS] = hash_section(base + h->off[S_META], (size_t)(h->end - h->off[S_META]));
    uint64_t sum;
    memcpy(&sum, base + h->end, sizeof sum);
    if (fold_sections(sh) != sum)
        return corrupt(f->path, err);
    /* The alignment padding is outside the section hashes: it must be the
     * zeros the save wrote. */
    uint64_t from = HEADER_BYTES;
    for (int s = 0; s < N_SECTIONS; s++) {
        for (uint64_t i = from; i < h->off[s]; i++)
            if (base[i] != 0)
                return corrupt(f->path, err);
        from = h->off[s] + (s < N_COLS ? f->len[s] : 0);
    }
    return CVM_OK;
}

int cvm_cache_open(const char *path, cvm_cache_file **out, uint64_t *stored_key, cvm_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CVM_FAIL(err, CVM_ENOTFOUND, "%s: no parse cache", path);
    cvm_cache_file *f = cvm_calloc(1, sizeof *f);
    if (f == NULL || (f->path = cvm_strdup(path)) == NULL) {
        cvm_free(f);
        close(fd);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    int rc = read_header(fd, path, &f->h, &f->size, err);
    if (rc == CVM_OK)
        rc = map_and_verify(fd, f, err);
    close(fd);
    if (rc != CVM_OK) {
        cvm_cache_close(f);
        return rc;
    }
    *stored_key = f->h.key;
    *out = f;
    return CVM_OK;
}

int cvm_cache_take(cvm_cache_file *f, cvm_txn_table *t, cvm_rejects *rej, cvm_ingest_stats *st,
                   const char *txn_path, cvm_err *err)
{
    memset(t, 0, sizeof *t);
    memset(rej, 0, sizeof *rej);
    memset(st, 0, sizeof *st);
    const header *h = &f->h;
    unsigned char *base = f->base;
    uint64_t n = h->n_rows, nc = h->n_customers;
    t->map_base = base;
    t->map_len = f->size;
    f->base = NULL; /* the table owns the mapping now */
    t->n_rows = (size_t)n;
    t->n_customers = (size_t)nc;
    t->n_orders = (size_t)h->n_orders;
    t->has_cost = h->has_cost != 0;
    t->customer = (int32_t *)(base + h->off[0]);
    t->order = (int32_t *)(base + h->off[1]);
    t->day = (int32_t *)(base + h->off[2]);
    t->product = (int32_t *)(base + h->off[3]);
    t->quantity = (double *)(base + h->off[4]);
    t->revenue = (double *)(base + h->off[5]);
    t->cost = (double *)(base + h->off[6]);
    t->flags = base + h->off[7];
    t->line = h->has_lines ? (uint32_t *)(base + h->off[8]) : NULL;
    t->cust_start = (size_t *)(base + h->off[9]);
    rbuf r = {base + h->off[S_META], (size_t)(h->end - h->off[S_META]), 0, 0};
    t->customers = get_dict(&r);
    t->products = get_dict(&r);
#define GET_STAT(f) st->f = get_u64(&r);
    STATS_U64(GET_STAT)
#undef GET_STAT
    st->boundary_repairs = (int)get_u64(&r);
    st->orders_synthesized = get_u64(&r) != 0;
    uint64_t nr = get_u64(&r);
    if (nr > n + (uint64_t)1e9)
        r.bad = 1;
    for (uint64_t i = 0; i < nr && !r.bad; i++) {
        uint64_t line = get_u64(&r);
        int column = (int)(int64_t)get_u64(&r);
        uint64_t reason = get_u64(&r);
        char *field = get_str(&r, 1 << 20), *detail = get_str(&r, 1 << 20),
             *raw = get_str(&r, 1 << 20);
        if (!r.bad && reason >= CVM_REJECT_COUNT)
            r.bad = 1;
        if (!r.bad && cvm_rejects_add(rej, txn_path, line, column, field, (cvm_reject_reason)reason,
                                      detail, raw, strlen(raw), err) != CVM_OK)
            r.bad = 2;
        cvm_free(field);
        cvm_free(detail);
        cvm_free(raw);
    }
    int bad = r.bad;
    /* Cheap structural checks on top of the checksum: offsets ascend and
     * counts agree, so a model can never read out of bounds. */
    if (!bad && (t->cust_start[0] != 0 || t->cust_start[nc] != n ||
                 cvm_dict_size(t->customers) != (size_t)nc))
        bad = 1;
    for (size_t c = 0; !bad && c < (size_t)nc; c++)
        if (t->cust_start[c] > t->cust_start[c + 1])
            bad = 1;
    if (bad) {
        cvm_txn_table_clear(t);
        cvm_rejects_clear(rej);
        memset(st, 0, sizeof *st);
    }
    int rc = bad == 2 ? CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory loading the parse cache", f->path)
             : bad    ? corrupt(f->path, err)
                      : CVM_OK;
    cvm_cache_close(f);
    return rc;
}

int cvm_cache_load(const char *path, uint64_t key, cvm_txn_table *t, cvm_rejects *rej,
                   cvm_ingest_stats *st, const char *txn_path, cvm_err *err)
{
    memset(t, 0, sizeof *t);
    memset(rej, 0, sizeof *rej);
    memset(st, 0, sizeof *st);
    /* The key first, from the header alone: a changed input costs no map. */
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return CVM_FAIL(err, CVM_ENOTFOUND, "%s: no parse cache", path);
    header h;
    size_t size;
    int rc = read_header(fd, path, &h, &size, err);
    close(fd);
    if (rc != CVM_OK)
        return rc;
    if (h.key != key)
        return CVM_FAIL(err, CVM_ENOTFOUND, "%s: the inputs or the ingest settings changed", path);
    cvm_cache_file *f;
    uint64_t stored;
    CVM_TRY(cvm_cache_open(path, &f, &stored, err));
    if (stored != key) { /* replaced in between */
        cvm_cache_close(f);
        return CVM_FAIL(err, CVM_ENOTFOUND, "%s: the inputs or the ingest settings changed", path);
    }
    return cvm_cache_take(f, t, rej, st, txn_path, err);
}
