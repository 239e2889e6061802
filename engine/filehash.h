/*
 * filehash.h - checksums of input files for the run manifest and the parse
 * cache key.
 *
 * The checksum is XXH3-64 (seed 0) of the whole file, from libxxhash: a
 * fast, well-tested non-cryptographic hash that anyone can recompute with
 * `xxhsum -H3 FILE`. It detects changed inputs; it is not a digest against
 * tampering. The file is memory-mapped and hashed in place (no copy), which
 * is about 0.1 s for a 650 MB file in the page cache.
 */
#ifndef CVM_FILEHASH_H
#define CVM_FILEHASH_H

#include <stdint.h>

#include "error.h"

/** @brief XXH3-64 of the file at path and its size in bytes. */
int cvm_file_checksum(const char *path, uint64_t *hash, uint64_t *size, cvm_err *err);

#endif
