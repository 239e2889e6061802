#include "filehash.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* Files that cannot be mapped (pipes, some network file systems) are read
 * through a buffer into the streaming state: same hash, one copy more. */
static int hash_by_reading(int fd, const char *path, uint64_t *hash, uint64_t *size, cvm_err *err)
{
    XXH3_state_t *st = XXH3_createState();
    if (st == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    XXH3_64bits_reset(st);
    char buf[1 << 16];
    uint64_t total = 0;
    for (;;) {
        ssize_t k = read(fd, buf, sizeof buf);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            int e = errno;
            XXH3_freeState(st);
            return CVM_FAIL(err, CVM_EIO, "%s: cannot read for the checksum: %s", path, strerror(e));
        }
        if (k == 0)
            break;
        XXH3_64bits_update(st, buf, (size_t)k);
        total += (uint64_t)k;
    }
    *hash = XXH3_64bits_digest(st);
    *size = total;
    XXH3_freeState(st);
    return CVM_OK;
}

/* The file is mapped a window at a time: hashing in place avoids a copy,
 * and the window bounds what the mapping adds to the resident set. */
#define WINDOW ((size_t)64 << 20)

int cvm_file_checksum(const char *path, uint64_t *hash, uint64_t *size, cvm_err *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode) || sb.st_size == 0) {
        int rc = hash_by_reading(fd, path, hash, size, err);
        close(fd);
        return rc;
    }
    XXH3_state_t *st = XXH3_createState();
    if (st == NULL) {
        close(fd);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    XXH3_64bits_reset(st);
    size_t total = (size_t)sb.st_size;
    int rc = CVM_OK;
    for (size_t off = 0; off < total && rc == CVM_OK; off += WINDOW) {
        size_t n = total - off < WINDOW ? total - off : WINDOW;
        /* MAP_POPULATE maps the window's pages in one call: far cheaper
         * than a fault per 64 KiB while hashing. */
        void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)off);
        if (p == MAP_FAILED) {
            if (off == 0) { /* not mappable at all: read it */
                XXH3_freeState(st);
                rc = hash_by_reading(fd, path, hash, size, err);
                close(fd);
                return rc;
            }
            rc = CVM_FAIL(err, CVM_EIO, "%s: cannot map for the checksum: %s", path, strerror(errno));
            break;
        }
        XXH3_64bits_update(st, p, n);
        munmap(p, n);
    }
    if (rc == CVM_OK) {
        *hash = XXH3_64bits_digest(st);
        *size = (uint64_t)total;
    }
    XXH3_freeState(st);
    close(fd);
    return rc;
}
