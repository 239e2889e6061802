/*
 * alloc.h - the one allocation hook of cvm.
 *
 * All library memory goes through cvm_malloc / cvm_calloc / cvm_realloc /
 * cvm_free so that tests can install a failing allocator and prove that every
 * allocation failure comes back as CVM_ENOMEM without leaks. The hook is
 * process-wide; set it before any other cvm call, never from several threads.
 */
#ifndef CVM_ALLOC_H
#define CVM_ALLOC_H

#include <stddef.h>

typedef struct cvm_allocator {
    void *(*malloc_fn)(size_t size, void *ctx);
    void *(*realloc_fn)(void *ptr, size_t size, void *ctx);
    void (*free_fn)(void *ptr, void *ctx);
    void *ctx;
} cvm_allocator;

/** @brief Install a custom allocator; NULL restores the C library's. */
void cvm_set_allocator(const cvm_allocator *a);

void *cvm_malloc(size_t size);
void *cvm_calloc(size_t n, size_t size); /* checks n*size overflow */
void *cvm_realloc(void *ptr, size_t size);
/** @brief Grow-by-realloc for arrays; checks n*size overflow. */
void *cvm_reallocarray(void *ptr, size_t n, size_t size);
void cvm_free(void *ptr);
/** @brief Copy of a string (or of its first n bytes with cvm_strndup). */
char *cvm_strdup(const char *s);
char *cvm_strndup(const char *s, size_t n);

#endif /* CVM_ALLOC_H */
