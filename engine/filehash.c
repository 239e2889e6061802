#include "filehash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "parallel.h"

#define BLOCK ((size_t)4 << 20)

static inline uint64_t fold(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static uint64_t hash_block(const unsigned char *p, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ 0x243F6A8885A308D3ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = fold(h ^ w, 0x9E3779B97F4A7C15ULL);
    }
    uint64_t w = 0;
    memcpy(&w, p + i, n - i);
    return fold(h ^ w ^ n, 0xBF58476D1CE4E5B9ULL);
}

int cvm_file_checksum(const char *path, int threads, uint64_t *hash, uint64_t *size, cvm_err *err)
{
    (void)threads; /* unused without OpenMP */
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    size_t nb = ((size_t)sb.st_size + BLOCK - 1) / BLOCK;
    uint64_t *bh = cvm_calloc(nb ? nb : 1, sizeof *bh);
    if (bh == NULL) {
        close(fd);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    int bad = 0;
    long n = (long)nb;
#pragma omp parallel num_threads(cvm_threads(threads)) default(none) shared(fd, bh, n, bad, sb)
    {
        unsigned char *buf = malloc(BLOCK);
        if (buf == NULL) {
#pragma omp atomic write
            bad = ENOMEM;
        }
#pragma omp for schedule(dynamic, 1)
        for (long b = 0; b < n; b++) {
            if (buf == NULL)
                continue;
            off_t off = (off_t)b * (off_t)BLOCK;
            size_t want = (size_t)(sb.st_size - off) < BLOCK ? (size_t)(sb.st_size - off) : BLOCK;
            size_t got = 0;
            while (got < want) {
                ssize_t k = pread(fd, buf + got, want - got, off + (off_t)got);
                if (k <= 0) {
#pragma omp atomic write
                    bad = k < 0 ? errno : EIO;
                    break;
                }
                got += (size_t)k;
            }
            bh[b] = hash_block(buf, got, (uint64_t)b);
        }
        free(buf);
    }
    close(fd);
    uint64_t h = 0xCBF29CE484222325ULL ^ (uint64_t)sb.st_size;
    for (size_t b = 0; b < nb; b++)
        h = fold(h ^ bh[b], 0x94D049BB133111EBULL);
    cvm_free(bh);
    if (bad)
        return CVM_FAIL(err, bad == ENOMEM ? CVM_ENOMEM : CVM_EIO, "%s: cannot read for the checksum: %s",
                        path, strerror(bad));
    *hash = h;
    *size = (uint64_t)sb.st_size;
    return CVM_OK;
}
