#include "textparse.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t cvm_trim(const char **s, size_t len)
{
    const char *p = *s;
    while (len > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
        len--;
    *s = p;
    return len;
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The common case of data files: [-]digits[.digits], at most 15 digits.
 * The mantissa and the power of ten are exact doubles, so one division is
 * correctly rounded (the same value strtod gives). */
static inline int parse_plain(const char *s, size_t len, double *out)
{
    static const double p10[16] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    size_t i = 0;
    int neg = 0;
    if (len && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    uint64_t m = 0;
    int nd = 0, frac = -1;
    for (; i < len; i++) {
        unsigned c = (unsigned)(unsigned char)s[i] - '0';
        if (c < 10) {
            m = m * 10 + c;
            nd++;
            frac += frac >= 0;
        } else if (s[i] == '.' && frac < 0) {
            frac = 0;
        } else {
            return 0;
        }
    }
    if (nd == 0 || nd > 15)
        return 0;
    double v = (double)m;
    if (frac > 0)
        v /= p10[frac];
    *out = neg ? -v : v;
    return 1;
}

bool cvm_parse_double(const char *s, size_t len, double *out)
{
    if (parse_plain(s, len, out))
        return true;
    /* Fields arrive trimmed from the CSV reader; trim only when needed. */
    if (len && (s[0] == ' ' || s[0] == '\t' || s[len - 1] == ' ' || s[len - 1] == '\t' ||
                s[len - 1] == '\r'))
        len = cvm_trim(&s, len);
    if (len == 0 || len > 300)
        return false;
    size_t p = 0;
    bool neg = false;
    if (s[p] == '+' || s[p] == '-') {
        neg = s[p] == '-';
        p++;
    }
    uint64_t mant = 0;
    int sig = 0, exp10 = 0, ndig = 0;
    bool slow = false;
    while (p < len && s[p] >= '0' && s[p] <= '9') {
        if (sig < 19) {
            mant = mant * 10 + (uint64_t)(s[p] - '0');
            if (mant)
                sig++;
        } else {
            slow = true;
        }
        ndig++;
        p++;
    }
    if (p < len && s[p] == '.') {
        p++;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (sig < 19) {
                mant = mant * 10 + (uint64_t)(s[p] - '0');
                if (mant)
                    sig++;
                exp10--;
            } else {
                slow = true;
            }
            ndig++;
            p++;
        }
    }
    if (ndig == 0)
        return false;
    if (p < len && (s[p] == 'e' || s[p] == 'E')) {
        p++;
        bool eneg = false;
        if (p < len && (s[p] == '+' || s[p] == '-')) {
            eneg = s[p] == '-';
            p++;
        }
        int e = 0, ed = 0;
        while (p < len && s[p] >= '0' && s[p] <= '9') {
            if (e < 100000)
                e = e * 10 + (s[p] - '0');
            ed++;
            p++;
        }
        if (ed == 0)
            return false;
        exp10 += eneg ? -e : e;
    }
    if (p != len)
        return false;
    double v;
    if (!slow && mant < (UINT64_C(1) << 53) && exp10 >= -22 && exp10 <= 22) {
        /* Both operands exact: one correctly rounded operation. */
        v = (double)mant;
        v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
    } else {
        char buf[320];
        memcpy(buf, s, len);
        buf[len] = '\0';
        errno = 0;
        v = strtod(buf, NULL);
        if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
            return false;
        *out = v;
        return isfinite(v);
    }
    *out = neg ? -v : v;
    return true;
}

bool cvm_parse_long(const char *s, size_t len, long *out)
{
    len = cvm_trim(&s, len);
    if (len == 0)
        return false;
    size_t p = 0;
    bool neg = false;
    if (s[p] == '+' || s[p] == '-') {
        neg = s[p] == '-';
        p++;
    }
    if (p == len)
        return false;
    unsigned long v = 0;
    for (; p < len; p++) {
        if (s[p] < '0' || s[p] > '9')
            return false;
        unsigned d = (unsigned)(s[p] - '0');
        if (v > (0x7fffffffffffffffUL - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = neg ? -(long)v : (long)v;
    return true;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    if ((c & 0xE0) == 0xC0) {
        n = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        n = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    if (n > len)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return n;
}

bool cvm_utf8_valid(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

size_t cvm_utf8_repair(const char *s, size_t len, char *dst)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = u[i] < 0x80 ? 1 : utf8_seq(u + i, len - i);
        if (n == 0) {
            dst[o++] = (char)(0xC0 | (u[i] >> 6));
            dst[o++] = (char)(0x80 | (u[i] & 0x3F));
            i++;
        } else {
            memcpy(dst + o, s + i, n);
            o += n;
            i += n;
        }
    }
    dst[o] = '\0';
    return o;
}
