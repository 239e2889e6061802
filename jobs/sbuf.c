#include "sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static bool reserve(cvm_sbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = cvm_realloc(b->s, cap);
    if (p == NULL) {
        b->oom = true;
        return false;
    }
    b->s = p;
    b->cap = cap;
    return true;
}

void cvm_sbuf_put(cvm_sbuf *b, const char *s, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void cvm_sbuf_puts(cvm_sbuf *b, const char *s)
{
    cvm_sbuf_put(b, s, strlen(s));
}

void cvm_sbuf_printf(cvm_sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        cvm_sbuf_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void quoted(cvm_sbuf *b, const char *s, char q)
{
    cvm_sbuf_put(b, &q, 1);
    for (const char *p = s; *p; p++) {
        if (*p == q)
            cvm_sbuf_put(b, &q, 1);
        cvm_sbuf_put(b, p, 1);
    }
    cvm_sbuf_put(b, &q, 1);
}

void cvm_sbuf_ident(cvm_sbuf *b, const char *name)
{
    quoted(b, name, '"');
}

void cvm_sbuf_literal(cvm_sbuf *b, const char *s)
{
    quoted(b, s, '\'');
}

void cvm_sbuf_html(cvm_sbuf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            cvm_sbuf_put(b, s + start, i - start);
            cvm_sbuf_puts(b, rep);
            start = i + 1;
        }
    }
    cvm_sbuf_put(b, s + start, n - start);
}

void cvm_sbuf_reset(cvm_sbuf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

const char *cvm_sbuf_str(const cvm_sbuf *b)
{
    return b->s ? b->s : "";
}

void cvm_sbuf_free(cvm_sbuf *b)
{
    cvm_free(b->s);
    memset(b, 0, sizeof *b);
}
