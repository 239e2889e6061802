/*
 * cache.h - the ingested transaction table saved in a binary file, so that a
 * re-run that changes only model settings skips the CSV parse.
 *
 *     uint64_t key = ...;  // cvm_cache_key over everything the ingest read
 *     if (cvm_cache_load(path, key, &t, &rej, &stats, txn_path, &err) == CVM_OK) ... hit
 *     else { ...ingest...; cvm_cache_save(path, key, &t, &rej, &stats, &err); }
 *
 * The file holds a magic, a format version, the key, the table's columns,
 * dictionaries, rejects and ingest statistics, and a trailing checksum of
 * everything before it. A load returns CVM_ENOTFOUND when the file is absent
 * or its key differs (the inputs or the ingest config changed), CVM_EDATA
 * when it is corrupt or truncated (the caller re-parses and warns), and
 * never returns a partial table. Saving writes NAME.tmp and renames it, so a
 * killed run never leaves a half-written cache.
 */
#ifndef CVM_CACHE_H
#define CVM_CACHE_H

#include <stdint.h>

#include "error.h"
#include "ingest.h"
#include "rejects.h"
#include "table.h"

/** @brief Fold more bytes into a cache key (start from 0). */
uint64_t cvm_cache_key(uint64_t key, const void *bytes, size_t len);

/**
 * @brief Save the table. The rejects' `file` pointers are not stored: on
 * load they all point to `txn_path`.
 */
int cvm_cache_save(const char *path, uint64_t key, const cvm_txn_table *t, const cvm_rejects *rej,
                   const cvm_ingest_stats *st, cvm_err *err);
/** @brief Load a table saved with the same key. On any error *t, *rej and
 *  *st are left empty. */
int cvm_cache_load(const char *path, uint64_t key, cvm_txn_table *t, cvm_rejects *rej,
                   cvm_ingest_stats *st, const char *txn_path, cvm_err *err);

/* The same in two steps, for callers that compute the key while the file
 * is mapped and verified (the job runner checksums the input meanwhile):
 *
 *     cvm_cache_file *f; uint64_t k;
 *     if (cvm_cache_open(path, &f, &k, &err) == CVM_OK) {
 *         if (k == key) rc = cvm_cache_take(f, &t, &rej, &st, txn_path, &err);
 *         else cvm_cache_close(f);
 *     }
 */
typedef struct cvm_cache_file cvm_cache_file;
/** @brief Map the file and verify its checksum; *stored_key is the key it was
 *  saved with. CVM_ENOTFOUND when absent, CVM_EDATA when corrupt. */
int cvm_cache_open(const char *path, cvm_cache_file **out, uint64_t *stored_key, cvm_err *err);
/** @brief Build the table from an opened file (the table takes the mapping);
 *  always consumes f. */
int cvm_cache_take(cvm_cache_file *f, cvm_txn_table *t, cvm_rejects *rej, cvm_ingest_stats *st,
                   const char *txn_path, cvm_err *err);
void cvm_cache_close(cvm_cache_file *f);

#endif
