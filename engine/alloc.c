#include "alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void *cvm__sys_malloc(size_t size, void *ctx)
{
    (void)ctx;
    return malloc(size);
}
static void *cvm__sys_realloc(void *p, size_t size, void *ctx)
{
    (void)ctx;
    return realloc(p, size);
}
static void cvm__sys_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static cvm_allocator cvm__alloc = {cvm__sys_malloc, cvm__sys_realloc,
                                   cvm__sys_free, NULL};

void cvm_set_allocator(const cvm_allocator *a)
{
    if (a == NULL) {
        cvm__alloc.malloc_fn = cvm__sys_malloc;
        cvm__alloc.realloc_fn = cvm__sys_realloc;
        cvm__alloc.free_fn = cvm__sys_free;
        cvm__alloc.ctx = NULL;
    } else {
        cvm__alloc = *a;
    }
}

void *cvm_malloc(size_t size)
{
    return cvm__alloc.malloc_fn(size ? size : 1, cvm__alloc.ctx);
}

void *cvm_calloc(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    size_t total = n * size;
    void *p = cvm_malloc(total);
    if (p != NULL)
        memset(p, 0, total ? total : 1);
    return p;
}

void *cvm_realloc(void *ptr, size_t size)
{
    return cvm__alloc.realloc_fn(ptr, size ? size : 1, cvm__alloc.ctx);
}

void *cvm_reallocarray(void *ptr, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return cvm_realloc(ptr, n * size);
}

void cvm_free(void *ptr)
{
    if (ptr != NULL)
        cvm__alloc.free_fn(ptr, cvm__alloc.ctx);
}

char *cvm_strndup(const char *s, size_t n)
{
    char *d = cvm_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cvm_strdup(const char *s)
{
    return cvm_strndup(s, strlen(s));
}
