/*
 * fimi.h - read baskets in the FIMI format (the format of the Frequent
 * Itemset Mining Implementations repository, of Borgelt's miners and of
 * R arules' read.transactions(format = "basket")). Part of the rules model.
 *
 *     cvm_baskets b = {0};
 *     if (cvm_fimi_read("retail.dat", 0, &b, &err) != CVM_OK) ...report err.msg...
 *     ...
 *     cvm_baskets_clear(&b);
 *
 * Format: one basket per line ('\n', an optional '\r' before it is ignored);
 * items separated by any run of blanks (space, tab) and/or commas, so labels
 * come out trimmed; items are arbitrary strings (no quoting), interned and
 * then numbered in bytewise order of their labels. A repeated item on a line
 * counts once. An empty line is an empty basket (it counts in the number of
 * baskets, as in Borgelt's tools); a final line without '\n' is read; a file
 * ending in '\n' has no extra empty basket after it. The labels are both
 * item_id and item_name; customer is NULL.
 * Errors: CVM_EIO when the file cannot be read, CVM_EDATA naming the line for
 * a NUL byte, CVM_ELIMIT past 2^31-1 distinct items, CVM_ENOMEM. Reentrant.
 */
#ifndef CVM_FIMI_H
#define CVM_FIMI_H

#include <stddef.h>

#include "baskets.h"
#include "error.h"

/** @brief Read a FIMI file into out (cleared first; the caller frees it with
 *  cvm_baskets_clear). Inputs of 1 MiB and more are parsed in `threads`
 *  chunks of lines (<= 0: OpenMP default); the result does not depend on it. */
int cvm_fimi_read(const char *path, int threads, cvm_baskets *out, cvm_err *err);

/** @brief Same from a buffer; name is used in messages. */
int cvm_fimi_parse(const char *buf, size_t len, const char *name, int threads, cvm_baskets *out,
                   cvm_err *err);

#endif
