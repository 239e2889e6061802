/*
 * sbuf.h - a growable string for building SQL, HTML fragments and messages
 * in the publishers.
 *
 *     cvm_sbuf b = {0};
 *     cvm_sbuf_printf(&b, "CREATE TABLE %s (", name);
 *     cvm_sbuf_ident(&b, col);               // "col" with quotes doubled
 *     if (b.oom) ... CVM_ENOMEM ...
 *     use(b.s);                               // NUL-terminated ("" when empty)
 *     cvm_sbuf_free(&b);
 *
 * Allocation failures are sticky (oom) so a sequence of appends is checked
 * once. Memory through cvm_malloc. One buffer per thread.
 */
#ifndef CVM_SBUF_H
#define CVM_SBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct cvm_sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} cvm_sbuf;

void cvm_sbuf_put(cvm_sbuf *b, const char *s, size_t n);
void cvm_sbuf_puts(cvm_sbuf *b, const char *s);
void cvm_sbuf_printf(cvm_sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/** @brief An SQL identifier in double quotes, inner quotes doubled. */
void cvm_sbuf_ident(cvm_sbuf *b, const char *name);
/** @brief An SQL string literal in single quotes, inner quotes doubled. */
void cvm_sbuf_literal(cvm_sbuf *b, const char *s);
/** @brief Text escaped for HTML (& < > " '). */
void cvm_sbuf_html(cvm_sbuf *b, const char *s, size_t n);
/** @brief Empty the string, keeping its memory. */
void cvm_sbuf_reset(cvm_sbuf *b);
/** @brief The string ("" when nothing was appended). */
const char *cvm_sbuf_str(const cvm_sbuf *b);
void cvm_sbuf_free(cvm_sbuf *b);

#endif
