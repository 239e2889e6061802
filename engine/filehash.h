/*
 * filehash.h - a fast checksum of input files for the run manifest.
 *
 * "cvm64": the file is cut into 4 MiB blocks; each block is hashed with a
 * 64-bit multiply-fold hash over 8-byte little-endian words (seeded with the
 * block's index and length), and the block hashes are folded in file order.
 * Blocks are hashed in parallel, so the checksum costs a fraction of the
 * parse; it detects changed inputs, it is not a cryptographic digest.
 */
#ifndef CVM_FILEHASH_H
#define CVM_FILEHASH_H

#include <stdint.h>

#include "error.h"

int cvm_file_checksum(const char *path, int threads, uint64_t *hash, uint64_t *size,
                      cvm_err *err);

#endif
