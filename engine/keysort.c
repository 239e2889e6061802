#include "keysort.h"

#include <stdint.h>
#include <string.h>

#include "alloc.h"

/* Doubles to unsigned integers in the same order: flip every bit of the
 * negatives, the sign bit of the rest. */
static inline uint64_t key_of(double v, bool desc)
{
    if (v != v)
        return UINT64_MAX;
    if (v == 0)
        v = 0.0; /* -0 ties with +0 */
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    u = (u >> 63) ? ~u : (u | (UINT64_C(1) << 63));
    return desc ? ~u : u; /* both below UINT64_MAX: NaN stays last */
}

int cvm_sort_vi(cvm_vi *a, size_t n, bool desc)
{
    if (n < 2)
        return CVM_OK;
    uint64_t *k = cvm_malloc(2 * n * sizeof *k);
    cvm_vi *b = cvm_malloc(n * sizeof *b);
    if (k == NULL || b == NULL) {
        cvm_free(k);
        cvm_free(b);
        return CVM_ENOMEM;
    }
    uint64_t *k2 = k + n;
    for (size_t j = 0; j < n; j++)
        k[j] = key_of(a[j].v, desc);
    cvm_vi *src = a, *dst = b;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t cnt[256] = {0};
        for (size_t j = 0; j < n; j++)
            cnt[(k[j] >> shift) & 255]++;
        if (cnt[(k[0] >> shift) & 255] == n)
            continue; /* every key has this byte: the pass would not move anything */
        size_t run = 0;
        for (int d = 0; d < 256; d++) {
            size_t c = cnt[d];
            cnt[d] = run;
            run += c;
        }
        for (size_t j = 0; j < n; j++) {
            size_t to = cnt[(k[j] >> shift) & 255]++;
            k2[to] = k[j];
            dst[to] = src[j];
        }
        uint64_t *tk = k;
        k = k2;
        k2 = tk;
        cvm_vi *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
    /* k and k2 are the two halves of one block: free the lower one. */
    cvm_free(k < k2 ? k : k2);
    cvm_free(b);
    return CVM_OK;
}
