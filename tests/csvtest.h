/*
 * csvtest.h - a plain, independent RFC 4180 reader for the publisher tests
 * (test_sqlite, test_diff, test_report, test_postgres): the whole file in
 * memory as rows of NUL-terminated fields, written without looking at
 * jobs/runcsv.c so that it can serve as an oracle. Header-only (static).
 */
#ifndef CVM_CSVTEST_H
#define CVM_CSVTEST_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

typedef struct tcsv {
    size_t n_rows, n_cols;  /* data rows; columns of the header */
    char **names;
    char ***cell;           /* cell[row][col] */
    bool **quoted;          /* quoted[row][col]: the field was quoted */
} tcsv;

static inline char **tcsv_record(const char **pp, size_t *n, bool **q)
{
    const char *p = *pp;
    size_t cap = 8, k = 0;
    char **f = malloc(cap * sizeof *f);
    bool *qq = malloc(cap * sizeof *qq);
    for (;;) {
        size_t bcap = 64, bl = 0;
        char *b = malloc(bcap);
        bool quoted = false;
        if (*p == '"') {
            quoted = true;
            p++;
            for (;;) {
                assert_true(*p != '\0'); /* unterminated quote */
                if (*p == '"' && p[1] == '"') {
                    p += 2;
                    if (bl + 2 > bcap)
                        b = realloc(b, bcap *= 2);
                    b[bl++] = '"';
                    continue;
                }
                if (*p == '"') {
                    p++;
                    break;
                }
                if (bl + 2 > bcap)
                    b = realloc(b, bcap *= 2);
                b[bl++] = *p++;
            }
        } else {
            while (*p && *p != ',' && *p != '\n' && *p != '\r') {
                if (bl + 2 > bcap)
                    b = realloc(b, bcap *= 2);
                b[bl++] = *p++;
            }
        }
        b[bl] = '\0';
        if (k == cap) {
            cap *= 2;
            f = realloc(f, cap * sizeof *f);
            qq = realloc(qq, cap * sizeof *qq);
        }
        qq[k] = quoted;
        f[k++] = b;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '\r')
            p++;
        if (*p == '\n')
            p++;
        break;
    }
    *pp = p;
    *n = k;
    *q = qq;
    return f;
}

/** Load a CSV file; asserts it exists and every row has the header's width. */
static inline void tcsv_load(const char *path, tcsv *t)
{
    memset(t, 0, sizeof *t);
    char *text = cvm_test_read_file(path, NULL);
    if (text == NULL)
        print_error("cannot read %s\n", path);
    assert_non_null(text);
    const char *p = text;
    bool *q;
    t->names = tcsv_record(&p, &t->n_cols, &q);
    free(q);
    size_t cap = 64;
    t->cell = malloc(cap * sizeof *t->cell);
    t->quoted = malloc(cap * sizeof *t->quoted);
    while (*p) {
        size_t n;
        char **f = tcsv_record(&p, &n, &q);
        if (n != t->n_cols)
            print_error("%s: row %zu has %zu fields, header %zu\n", path, t->n_rows + 1, n,
                        t->n_cols);
        assert_int_equal(n, t->n_cols);
        if (t->n_rows == cap) {
            cap *= 2;
            t->cell = realloc(t->cell, cap * sizeof *t->cell);
            t->quoted = realloc(t->quoted, cap * sizeof *t->quoted);
        }
        t->quoted[t->n_rows] = q;
        t->cell[t->n_rows++] = f;
    }
    free(text);
}

static inline int tcsv_col(const tcsv *t, const char *name)
{
    for (size_t i = 0; i < t->n_cols; i++)
        if (strcmp(t->names[i], name) == 0)
            return (int)i;
    return -1;
}

/** Row index of a customer_id (linear search), -1 when absent. */
static inline long tcsv_find(const tcsv *t, int col, const char *value)
{
    for (size_t r = 0; r < t->n_rows; r++)
        if (strcmp(t->cell[r][col], value) == 0)
            return (long)r;
    return -1;
}

static inline void tcsv_free(tcsv *t)
{
    for (size_t r = 0; r < t->n_rows; r++) {
        for (size_t c = 0; c < t->n_cols; c++)
            free(t->cell[r][c]);
        free(t->cell[r]);
        free(t->quoted[r]);
    }
    for (size_t c = 0; c < t->n_cols; c++)
        free(t->names[c]);
    free(t->names);
    free(t->cell);
    free(t->quoted);
    memset(t, 0, sizeof *t);
}

#endif
