/*
 * textparse.h - strict number parsing and UTF-8 repair for input fields.
 *
 * Numbers: optional surrounding blanks, optional sign, digits with an
 * optional decimal point and exponent. No thousands separators, no hex, no
 * "nan"/"inf": a field that is not a plain decimal number is a reject, never
 * a silent zero. The fast path (up to 19 significant digits, exponent within
 * ±22) is exact (Clinger's method); anything else goes through strtod.
 */
#ifndef CVM_TEXTPARSE_H
#define CVM_TEXTPARSE_H

#include <stdbool.h>
#include <stddef.h>

/** @brief Parse s[0..len) as a decimal number; false when it is not one. */
bool cvm_parse_double(const char *s, size_t len, double *out);
/** @brief Parse s[0..len) as a decimal integer (no fraction); false otherwise. */
bool cvm_parse_long(const char *s, size_t len, long *out);

/** @brief true when s[0..len) is valid UTF-8. */
bool cvm_utf8_valid(const char *s, size_t len);
/** @brief Copy s into dst, re-encoding every byte that is not part of a valid
 *  UTF-8 sequence as its Latin-1 code point (so "caf\xe9" becomes "café"),
 *  which is unique and reversible for Windows-1252/Latin-1 exports. dst must
 *  hold 2*len+1 bytes. @return bytes written (without the NUL). */
size_t cvm_utf8_repair(const char *s, size_t len, char *dst);
/** @brief Trim ASCII blanks; returns the new length and moves *s. */
size_t cvm_trim(const char **s, size_t len);

#endif
