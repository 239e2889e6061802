/*
 * testutil.h - helpers shared by the cmocka tests. Include after cmocka.h's
 * prerequisites (stdarg.h, stddef.h, stdint.h, setjmp.h).
 */
#ifndef CVM_TESTUTIL_H
#define CVM_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdbool.h>

/** Relative-tolerance check that prints its context: fails when
 *  |a-b| > rel*max(|a|,|b|) + abs. */
#define assert_close(a, b, rel, abs_, ...) \
    cvm_test_assert_close((a), (b), (rel), (abs_), __FILE__, __LINE__, __VA_ARGS__)
void cvm_test_assert_close(double a, double b, double rel, double abs_,
                           const char *file, int line, const char *fmt, ...);

/** A fresh empty directory under $TMPDIR (or /tmp), removed by cvm_test_rmtree. */
char *cvm_test_mkdtemp(const char *tag);
/** rm -rf path (path must be under /tmp or $TMPDIR; asserts otherwise). */
void cvm_test_rmtree(const char *path);
/** Write a string to a file (asserts on failure). */
void cvm_test_write_file(const char *path, const char *text);
/** Whole file as a NUL-terminated string, NULL when missing; *len optional. */
char *cvm_test_read_file(const char *path, size_t *len);
/** Path join into a malloc'd string. */
char *cvm_test_path(const char *dir, const char *name);
/** $CVM_SOURCE_DIR (set by CTest), or "." */
const char *cvm_test_source_dir(void);
/** $CVM_BINARY: the cvm executable under test. */
const char *cvm_test_binary(void);
/** Run a shell command, return its exit status (0..255), or -1 when it died. */
int cvm_test_system(const char *fmt, ...);

#endif
