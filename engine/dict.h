/*
 * dict.h - string interning: each distinct string gets a dense index 0..n-1
 * in order of first insertion. Used for customer, order and product ids.
 *
 *     cvm_dict *d = cvm_dict_new(0);
 *     int32_t id = cvm_dict_intern(d, "C001", 4);   // -1 on ENOMEM
 *     const char *s = cvm_dict_str(d, id);           // NUL-terminated, owned by d
 *     cvm_dict_free(d);
 *
 * Strings are copied into arenas owned by the dict, so pointers returned by
 * cvm_dict_str stay valid until cvm_dict_free. Not thread-safe: ingest gives
 * each thread its own dict and merges them in a fixed order.
 */
#ifndef CVM_DICT_H
#define CVM_DICT_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

typedef struct cvm_dict cvm_dict;

/** @brief Two words that, with the length, identify the first 16 bytes of
 *  a string (all of it when len <= 16): overlapping fixed-size loads, no
 *  loop, no call, no read outside s[0..len). Used for the dictionary's
 *  slots and by callers that cache a key. */
static inline void cvm_dict_key16(const char *s, size_t len, uint64_t *k0, uint64_t *k1)
{
    uint64_t a = 0, b = 0;
    if (len >= 8) {
        memcpy(&a, s, 8);
        memcpy(&b, len >= 16 ? s + 8 : s + len - 8, 8);
    } else if (len >= 4) {
        uint32_t x, y;
        memcpy(&x, s, 4);
        memcpy(&y, s + len - 4, 4);
        a = (uint64_t)x | (uint64_t)y << 32;
    } else if (len > 0) {
        a = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[len >> 1] << 8 |
            (uint64_t)(unsigned char)s[len - 1] << 16;
    }
    *k0 = a;
    *k1 = b;
}

cvm_dict *cvm_dict_new(size_t expected);
void cvm_dict_free(cvm_dict *d);
/** @brief Index of s, inserting it when new; -1 on allocation failure. */
int32_t cvm_dict_intern(cvm_dict *d, const char *s, size_t len);
/** @brief Same, with a hash from cvm_dict_hash (lets callers hash once). */
int32_t cvm_dict_intern_h(cvm_dict *d, const char *s, size_t len, uint64_t h);
/** @brief A dictionary without a lookup table: strings are only appended
 *  (cvm_dict_push), repeats included, and read back by id like a frozen
 *  dictionary. For ids that arrive grouped (an order's lines are adjacent):
 *  the caller compares with the previous string, and whoever needs unique
 *  strings (the ingest merge) removes the rare repeats later. */
cvm_dict *cvm_dict_new_list(size_t expected);
/** @brief Append s (h = cvm_dict_hash(s, len)) to a list; its new id, or -1
 *  on allocation failure. */
int32_t cvm_dict_push(cvm_dict *d, const char *s, size_t len, uint64_t h);
/** @brief Index of s, or -1 when absent. */
int32_t cvm_dict_find(const cvm_dict *d, const char *s, size_t len);
size_t cvm_dict_size(const cvm_dict *d);
const char *cvm_dict_str(const cvm_dict *d, int32_t id);
size_t cvm_dict_len(const cvm_dict *d, int32_t id);
uint64_t cvm_dict_hash(const char *s, size_t len);
/** @brief cvm_dict_hash of string id, kept from interning (no string access). */
uint64_t cvm_dict_hash_at(const cvm_dict *d, int32_t id);
/** @brief Start loading the lookup slot of hash h (cvm_dict_hash) into the
 *  cache, ahead of a cvm_dict_intern_h with it. */
void cvm_dict_prefetch(const cvm_dict *d, uint64_t h);
/** @brief Permutation that sorts the strings bytewise (strcmp order):
 *  order[rank] = id. Caller frees with cvm_free. NULL on ENOMEM. */
int32_t *cvm_dict_sorted_order(const cvm_dict *d);
/** @brief Drop the lookup table, keeping the strings: after this only
 *  cvm_dict_size/str/len/sorted_order may be called (ingest freezes the
 *  per-chunk dictionaries once a chunk is parsed, to save memory). */
void cvm_dict_freeze(cvm_dict *d);
/** @brief Approximate bytes held, for memory reports. */
size_t cvm_dict_bytes(const cvm_dict *d);

#endif
