/*
 * csvread.h - CSV records through libcsv, with physical line numbers and the
 * raw text of each record, serially or in parallel chunks.
 *
 * Serial (small files: customers, products, interactions):
 *     cvm_csv_read_file("customers.csv", ',', on_record, ctx, &err);
 * on_record receives every record, the header included (line 1), and may
 * return a non-OK status to stop the read with that status.
 *
 * Parallel (the transactions file): the data region is cut into chunks of
 * about chunk_bytes at line ends; OpenMP threads parse chunks concurrently,
 * each with its own libcsv parser and a per-chunk context from ops->begin.
 * A chunk boundary that falls inside a quoted field (an embedded newline) is
 * detected from the previous chunk's parser state and repaired: the previous
 * chunk ends before its unfinished record, and the next chunk is re-parsed
 * from that record's first byte with a fresh parser (the parser is between
 * records there, so this is exact), so the records delivered are exactly
 * those of a serial parse, in file order when chunks are read in order.
 * Chunk boundaries depend only on the file and chunk_bytes, never on the
 * thread count.
 *
 * Records: fields are valid only during the callback and are NOT always
 * NUL-terminated (the fast path points into the read buffer): use len;
 * libcsv trims blanks around unquoted fields, skips blank lines and accepts
 * LF or CRLF line ends. A UTF-8 byte-order mark at the start is skipped.
 */
#ifndef CVM_CSVREAD_H
#define CVM_CSVREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct cvm_csv_record {
    const char *const *field;
    const size_t *len;
    size_t n;
    uint64_t line;       /* physical line of the record's first byte; in
                            parallel reads relative to the chunk (add the
                            chunk's first_line) */
    const char *raw;     /* the record's bytes, without the line end */
    size_t raw_len;
} cvm_csv_record;

typedef int (*cvm_csv_record_fn)(void *ctx, const cvm_csv_record *rec, cvm_err *err);

/** @brief Read a whole file serially (line numbers absolute, from 1). */
int cvm_csv_read_file(const char *path, char delim, cvm_csv_record_fn fn, void *ctx,
                      cvm_err *err);

/** @brief The header record: names (array and strings owned by the caller,
 *  free with cvm_csv_free_names), the byte offset just after it and the
 *  physical line number of the first data line. */
int cvm_csv_read_header(const char *path, char delim, char ***names, size_t *n,
                        uint64_t *data_offset, uint64_t *data_line, cvm_err *err);
void cvm_csv_free_names(char **names, size_t n);

typedef struct cvm_csv_chunk_ops {
    void *(*begin)(void *user, size_t chunk);           /* NULL = ENOMEM */
    cvm_csv_record_fn record;                           /* called with the chunk's ctx */
    void (*discard)(void *user, void *chunk_ctx);       /* drop a chunk's partial results */
    int (*end)(void *chunk_ctx, cvm_err *err);          /* optional: the chunk is complete
                                                           (e.g. shrink its buffers) */
    bool libcsv_only;  /* false: lines without a quote or a lone CR are split
                          by a memchr fast path that yields exactly libcsv's
                          fields (blanks trimmed, blank lines skipped); every
                          other line goes through libcsv. tests/test_csvread.c
                          checks the two agree on random input. */
} cvm_csv_chunk_ops;

typedef struct cvm_csv_chunks {
    size_t n;
    void **ctx;            /* per-chunk contexts, in file order (owned by the user) */
    uint64_t *first_line;  /* absolute line number of each chunk's line 0 */
    uint64_t bytes;        /* bytes of the data region */
    int repaired;          /* chunk boundaries repaired (quoted newlines) */
} cvm_csv_chunks;

/**
 * @brief Parse [offset, end of file) in chunks. first_line is the physical line
 * number at offset. threads <= 0 uses the OpenMP default. On error, every
 * chunk context created so far is discarded through ops->discard.
 * @param progress optional callback (bytes done, bytes total), called from the
 * master thread only.
 */
int cvm_csv_read_chunks(const char *path, char delim, uint64_t offset, uint64_t first_line,
                        size_t chunk_bytes, int threads, const cvm_csv_chunk_ops *ops,
                        void *user, void (*progress)(void *, uint64_t, uint64_t),
                        cvm_csv_chunks *out, cvm_err *err);
void cvm_csv_chunks_free(cvm_csv_chunks *c); /* frees the arrays, not the contexts */

#endif
