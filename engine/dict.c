#include "dict.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

#define ARENA_BLOCK (1u << 20)

typedef struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    char data[];
} arena_block;

typedef struct slot {
    uint64_t k0, k1; /* cvm_dict_key16: ids are short, so most compares end
                        here without touching the string */
    const char *s;   /* string in the arena, NULL = empty slot */
    uint32_t id;
    uint32_t len;
} slot;

struct cvm_dict {
    /* Open addressing with linear probing at load <= 0.5. */
    slot *slots;
    size_t mask;
    size_t n;
    const char **str;
    uint64_t *hash;  /* cvm_dict_hash of each string, by id: growing and
                        merging never go back to the (cold) strings */
    size_t cap;      /* entries before the table grows */
    arena_block *arena;
    size_t bytes;
};

static inline uint32_t str_len(const char *p)
{
    uint32_t n;
    memcpy(&n, p - sizeof n, sizeof n);
    return n;
}

static inline uint64_t mix64(uint64_t a, uint64_t b)
{
    /* Fold of a 64x64->128 multiply (as in wyhash): every input bit reaches
     * every output bit, so ids differing only in their last digits spread. */
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t hash_head(uint64_t k0, uint64_t k1, size_t len)
{
    return mix64(mix64(k0 ^ 0x243F6A8885A308D3ULL ^ len, k1 ^ 0x9E3779B97F4A7C15ULL),
                 0x94D049BB133111EBULL);
}

uint64_t cvm_dict_hash(const char *s, size_t len)
{
    uint64_t k0, k1;
    cvm_dict_key16(s, len, &k0, &k1);
    uint64_t h = hash_head(k0, k1, len);
    for (size_t i = 16; i < len; i += 8) {
        uint64_t w = 0;
        memcpy(&w, s + i, len - i < 8 ? len - i : 8);
        h = mix64(h ^ w, 0xBF58476D1CE4E5B9ULL);
    }
    return h;
}

cvm_dict *cvm_dict_new(size_t expected)
{
    cvm_dict *d = cvm_calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    size_t cap = 64;
    while (cap < expected * 2)
        cap <<= 1;
    d->slots = cvm_calloc(cap, sizeof *d->slots);
    d->cap = cap / 2;
    d->str = cvm_malloc(d->cap * sizeof *d->str);
    d->hash = cvm_malloc(d->cap * sizeof *d->hash);
    d->mask = cap - 1;
    if (!d->slots || !d->str || !d->hash) {
        cvm_dict_free(d);
        return NULL;
    }
    return d;
}

void cvm_dict_free(cvm_dict *d)
{
    if (d == NULL)
        return;
    arena_block *b = d->arena;
    while (b) {
        arena_block *next = b->next;
        cvm_free(b);
        b = next;
    }
    cvm_free(d->slots);
    cvm_free(d->str);
    cvm_free(d->hash);
    cvm_free(d);
}

static char *arena_put(cvm_dict *d, const char *s, size_t len)
{
    size_t need = len + 1 + 4 + 3; /* length prefix, NUL, alignment slack */
    arena_block *b = d->arena;
    if (b == NULL || b->cap - b->used < need) {
        size_t cap = need > ARENA_BLOCK ? need : ARENA_BLOCK;
        arena_block *nb = cvm_malloc(sizeof *nb + cap);
        if (nb == NULL)
            return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        d->arena = nb;
        d->bytes += sizeof *nb + cap;
        b = nb;
    }
    char *p = b->data + b->used;
    uint32_t n32 = (uint32_t)len;
    memcpy(p, &n32, 4);
    memcpy(p + 4, s, len);
    p[4 + len] = '\0';
    b->used += (4 + len + 1 + 3) & ~(size_t)3;
    return p + 4;
}

static int grow(cvm_dict *d)
{
    size_t nslots = (d->mask + 1) * 2;
    slot *ns = cvm_calloc(nslots, sizeof *ns);
    const char **str = cvm_reallocarray((void *)d->str, nslots / 2, sizeof *str);
    if (str)
        d->str = str;
    uint64_t *hash = str ? cvm_reallocarray(d->hash, nslots / 2, sizeof *hash) : NULL;
    if (hash)
        d->hash = hash;
    if (!ns || !str || !hash) {
        cvm_free(ns);
        return -1;
    }
    size_t mask = nslots - 1;
    for (size_t i = 0; i <= d->mask; i++) {
        if (d->slots[i].s == NULL)
            continue;
        uint64_t h = d->hash[d->slots[i].id];
        size_t j = h & mask;
        while (ns[j].s)
            j = (j + 1) & mask;
        ns[j] = d->slots[i];
    }
    cvm_free(d->slots);
    d->slots = ns;
    d->mask = mask;
    d->cap = nslots / 2;
    return 0;
}

static inline bool slot_eq(const slot *sl, uint64_t k0, uint64_t k1, const char *s, size_t len)
{
    return sl->k0 == k0 && sl->k1 == k1 && sl->len == len &&
           (len <= 16 || memcmp(sl->s + 16, s + 16, len - 16) == 0);
}

int32_t cvm_dict_intern_h(cvm_dict *d, const char *s, size_t len, uint64_t h)
{
    assert(d->slots != NULL); /* not frozen */
    uint64_t k0, k1;
    cvm_dict_key16(s, len, &k0, &k1);
    size_t j = h & d->mask;
    for (;;) {
        const slot *sl = &d->slots[j];
        if (sl->s == NULL)
            break;
        if (slot_eq(sl, k0, k1, s, len))
            return (int32_t)sl->id;
        j = (j + 1) & d->mask;
    }
    if (d->n >= INT32_MAX - 1 || len > UINT32_MAX)
        return -1;
    if (d->n + 1 > d->cap) {
        if (grow(d) != 0)
            return -1;
        j = h & d->mask;
        while (d->slots[j].s)
            j = (j + 1) & d->mask;
    }
    char *copy = arena_put(d, s, len);
    if (copy == NULL)
        return -1;
    d->str[d->n] = copy;
    d->hash[d->n] = h;
    slot *sl = &d->slots[j];
    sl->s = copy;
    sl->k0 = k0;
    sl->k1 = k1;
    sl->id = (uint32_t)d->n;
    sl->len = (uint32_t)len;
    return (int32_t)d->n++;
}

cvm_dict *cvm_dict_new_list(size_t expected)
{
    cvm_dict *d = cvm_calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->cap = expected > 16 ? expected : 16;
    d->str = cvm_malloc(d->cap * sizeof *d->str);
    d->hash = cvm_malloc(d->cap * sizeof *d->hash);
    if (!d->str || !d->hash) {
        cvm_dict_free(d);
        return NULL;
    }
    return d;
}

int32_t cvm_dict_push(cvm_dict *d, const char *s, size_t len, uint64_t h)
{
    assert(d->slots == NULL); /* a list */
    if (d->n >= INT32_MAX - 1 || len > UINT32_MAX)
        return -1;
    if (d->n == d->cap) {
        size_t cap = d->cap * 2;
        const char **str = cvm_reallocarray((void *)d->str, cap, sizeof *str);
        if (str == NULL)
            return -1;
        d->str = str;
        uint64_t *hash = cvm_reallocarray(d->hash, cap, sizeof *hash);
        if (hash == NULL)
            return -1;
        d->hash = hash;
        d->cap = cap;
    }
    char *copy = arena_put(d, s, len);
    if (copy == NULL)
        return -1;
    d->str[d->n] = copy;
    d->hash[d->n] = h;
    return (int32_t)d->n++;
}

int32_t cvm_dict_intern(cvm_dict *d, const char *s, size_t len)
{
    return cvm_dict_intern_h(d, s, len, cvm_dict_hash(s, len));
}

int32_t cvm_dict_find(const cvm_dict *d, const char *s, size_t len)
{
    assert(d->slots != NULL); /* not frozen */
    uint64_t k0, k1;
    cvm_dict_key16(s, len, &k0, &k1);
    size_t j = cvm_dict_hash(s, len) & d->mask;
    for (;;) {
        const slot *sl = &d->slots[j];
        if (sl->s == NULL)
            return -1;
        if (slot_eq(sl, k0, k1, s, len))
            return (int32_t)sl->id;
        j = (j + 1) & d->mask;
    }
}

void cvm_dict_freeze(cvm_dict *d)
{
    cvm_free(d->slots);
    d->slots = NULL;
    d->mask = 0;
    const char **str = cvm_reallocarray((void *)d->str, d->n ? d->n : 1, sizeof *str);
    uint64_t *hash = cvm_reallocarray(d->hash, d->n ? d->n : 1, sizeof *hash);
    if (str)
        d->str = str;
    if (hash)
        d->hash = hash;
    if (str && hash)
        d->cap = d->n;
}

size_t cvm_dict_size(const cvm_dict *d) { return d->n; }
const char *cvm_dict_str(const cvm_dict *d, int32_t id) { return d->str[id]; }
size_t cvm_dict_len(const cvm_dict *d, int32_t id) { return str_len(d->str[id]); }
uint64_t cvm_dict_hash_at(const cvm_dict *d, int32_t id) { return d->hash[id]; }

void cvm_dict_prefetch(const cvm_dict *d, uint64_t h)
{
    if (d->slots)
        __builtin_prefetch(&d->slots[h & d->mask]);
}
size_t cvm_dict_bytes(const cvm_dict *d)
{
    return d->bytes + (d->slots ? (d->mask + 1) * sizeof(slot) : 0) +
           d->cap * (sizeof(char *) + sizeof(uint64_t));
}

/* Sort keys: the first 16 bytes big-endian (zero-padded), so most
 * comparisons are two integer compares on data in the array, not two
 * pointer chases into the arena. */
typedef struct sort_key {
    uint64_t a, b;
    const char *s;
    uint32_t len;
    int32_t id;
} sort_key;

static int cmp_keys(const void *x_, const void *y_)
{
    const sort_key *x = x_, *y = y_;
    if (x->a != y->a)
        return x->a < y->a ? -1 : 1;
    if (x->b != y->b)
        return x->b < y->b ? -1 : 1;
    if (x->len > 16 || y->len > 16) { /* bytewise, then shorter first */
        size_t m = x->len < y->len ? x->len : y->len;
        int c = memcmp(x->s, y->s, m);
        if (c)
            return c;
    }
    return (x->len > y->len) - (x->len < y->len);
}

static uint64_t be_prefix(const char *s, size_t len, size_t from)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (from + i < len ? (unsigned char)s[from + i] : 0u);
    return v;
}

int32_t *cvm_dict_sorted_order(const cvm_dict *d)
{
    int32_t *order = cvm_malloc((d->n ? d->n : 1) * sizeof *order);
    sort_key *k = cvm_malloc((d->n ? d->n : 1) * sizeof *k);
    if (order == NULL || k == NULL) {
        cvm_free(order);
        cvm_free(k);
        return NULL;
    }
    for (size_t i = 0; i < d->n; i++) {
        const char *p = d->str[i];
        size_t len = str_len(p);
        k[i] = (sort_key){be_prefix(p, len, 0), be_prefix(p, len, 8), p, (uint32_t)len, (int32_t)i};
    }
    qsort(k, d->n, sizeof *k, cmp_keys);
    for (size_t i = 0; i < d->n; i++)
        order[i] = k[i].id;
    cvm_free(k);
    return order;
}
