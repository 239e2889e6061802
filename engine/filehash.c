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
    int rc;
    void *p = MAP_FAILED;
    if (S_ISREG(sb.st_mode) && sb.st_size > 0)
        /* MAP_POPULATE maps every page in one call: far cheaper than a
         * fault per 64 KiB while hashing. */
        p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
    if (p != MAP_FAILED) {
        *hash = XXH3_64bits(p, (size_t)sb.st_size);
        *size = (uint64_t)sb.st_size;
        munmap(p, (size_t)sb.st_size);
        rc = CVM_OK;
    } else {
        rc = hash_by_reading(fd, path, hash, size, err);
    }
    close(fd);
    return rc;
}
