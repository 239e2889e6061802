/* CSV reading: the quote-free fast path agrees with libcsv on random input,
 * and a parallel chunked read equals a serial one on tricky files (quoted
 * newlines across chunk boundaries, CRLF, BOM, blank lines). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "csvread.h"

/* Records flattened to text: "line|f1|f2|...\n" with raw appended. */
typedef struct sink {
    char *buf;
    size_t len, cap;
} sink;

static void sink_put(sink *s, const char *p, size_t n)
{
    if (s->len + n + 1 > s->cap) {
        s->cap = (s->len + n + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        assert_non_null(s->buf);
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->buf[s->len] = '\0';
}

static int sink_rec(void *ctx, const cvm_csv_record *r, cvm_err *err)
{
    (void)err;
    sink *s = ctx;
    char head[64];
    snprintf(head, sizeof head, "%llu:%zu", (unsigned long long)r->line, r->n);
    sink_put(s, head, strlen(head));
    for (size_t i = 0; i < r->n; i++) {
        sink_put(s, "|", 1);
        sink_put(s, r->field[i], r->len[i]);
    }
    sink_put(s, "\x1e", 1); /* record separator: fields may hold newlines */
    return CVM_OK;
}

typedef struct chunked {
    int dummy;
} chunked;

static void *begin(void *user, size_t k)
{
    (void)user;
    (void)k;
    return calloc(1, sizeof(sink));
}

static void discard(void *user, void *ctx)
{
    (void)user;
    sink *s = ctx;
    free(s->buf);
    free(s);
}

/* Reads path in chunks and returns the records with absolute line numbers. */
static char *read_chunked(const char *path, size_t chunk, int threads, bool libcsv_only,
                          int *repaired)
{
    cvm_csv_chunk_ops ops = {begin, sink_rec, discard, NULL, libcsv_only};
    cvm_csv_chunks ch;
    cvm_err err = {0};
    assert_int_equal(cvm_csv_read_chunks(path, ',', 0, 1, chunk, threads, &ops, NULL, NULL, &ch, &err),
                     CVM_OK);
    sink all = {0};
    sink_put(&all, "", 0);
    for (size_t k = 0; k < ch.n; k++) {
        sink *s = ch.ctx[k];
        /* Re-base the chunk-relative line numbers. */
        char *p = s->buf;
        while (p && *p) {
            char *nl = strchr(p, '\x1e');
            unsigned long long rel = strtoull(p, NULL, 10);
            char *colon = strchr(p, ':');
            char head[64];
            snprintf(head, sizeof head, "%llu", rel + (unsigned long long)ch.first_line[k]);
            sink_put(&all, head, strlen(head));
            sink_put(&all, colon, (size_t)(nl - colon) + 1);
            p = nl + 1;
        }
        discard(NULL, s);
    }
    if (repaired)
        *repaired = ch.repaired;
    cvm_csv_chunks_free(&ch);
    return all.buf;
}

static char *read_serial(const char *path)
{
    sink s = {0};
    sink_put(&s, "", 0);
    cvm_err err = {0};
    assert_int_equal(cvm_csv_read_file(path, ',', sink_rec, &s, &err), CVM_OK);
    return s.buf;
}

static uint64_t rng = 88172645463325252ULL;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static void test_fast_path_equals_libcsv(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("csv");
    char *path = cvm_test_path(dir, "r.csv");
    /* Lines mostly without quotes (the fast path) and some with, from an
     * alphabet full of edge cases: blanks around fields, empty fields,
     * blank lines, CRLF, lone CR, quotes inside and around fields. */
    static const char alpha[] = "ab,, \t\"\r1.5x";
    for (int round = 0; round < 200; round++) {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        int lines = 1 + (int)rnd(40);
        for (int l = 0; l < lines; l++) {
            int len = (int)rnd(12);
            for (int i = 0; i < len; i++)
                fputc(alpha[rnd(sizeof alpha - 1)], f);
            if (rnd(4) == 0)
                fputc('\r', f);
            if (l + 1 < lines || rnd(2))
                fputc('\n', f);
        }
        fclose(f);
        char *fast = read_chunked(path, 1 << 20, 1, false, NULL);
        char *slow = read_chunked(path, 1 << 20, 1, true, NULL);
        char *ser = read_serial(path);
        if (strcmp(fast, slow) != 0 || strcmp(slow, ser) != 0) {
            char *text = cvm_test_read_file(path, NULL);
            print_error("round %d input:\n[%s]\nfast:\n%s\nlibcsv:\n%s\nserial:\n%s\n", round, text,
                        fast, slow, ser);
            free(text);
            fail();
        }
        free(fast);
        free(slow);
        free(ser);
    }
    free(path);
    cvm_test_rmtree(dir);
    free(dir);
}

static void test_parallel_equals_serial(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("csvpar");
    char *path = cvm_test_path(dir, "t.csv");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("\xEF\xBB\xBFid,name,amount\r\n", f); /* BOM and CRLF header */
    for (int i = 0; i < 20000; i++) {
        switch (i % 7) {
        case 0: /* a quoted field with embedded newlines, often across a boundary */
            fprintf(f, "C%05d,\"multi\nline\n\"\"quoted\"\" name, %d\",%d.5\n", i, i, i);
            break;
        case 1:
            fprintf(f, "C%05d,plain,%d\r\n", i, i);
            break;
        case 2:
            fputs("\n", f); /* blank line */
            fprintf(f, "C%05d,  spaced  ,%d\n", i, i);
            break;
        case 3:
            fprintf(f, "C%05d,\"a,b\",%d\n", i, i);
            break;
        default:
            fprintf(f, "C%05d,name%d,%d\n", i, i, i);
        }
    }
    fputs("last,no newline,1", f);
    fclose(f);
    char *ser = read_serial(path);
    int repaired_total = 0;
    /* Many chunk sizes, so boundaries land everywhere, including inside the
     * quoted newlines; 1 and 2 threads. */
    for (size_t chunk = 4096; chunk < 70000; chunk = chunk * 3 / 2 + 7) {
        for (int threads = 1; threads <= 2; threads++) {
            int rep = 0;
            for (int fast = 0; fast < 2; fast++) {
                char *par = read_chunked(path, chunk, threads, fast == 0, &rep);
                if (strcmp(par, ser) != 0) {
                    size_t k = 0;
                    while (par[k] && par[k] == ser[k])
                        k++;
                    print_error("chunk %zu threads %d fast %d: differs at byte %zu:\n%.200s\n---\n%.200s\n",
                                chunk, threads, fast, k, par + k, ser + k);
                    fail();
                }
                free(par);
            }
            repaired_total += rep;
        }
    }
    /* The test is only meaningful if some boundaries fell inside quotes. */
    assert_true(repaired_total > 0);
    /* Spot checks of the serial truth itself. */
    assert_non_null(strstr(ser, "|multi\nline\n\"quoted\" name, 0|0.5\x1e"));
    assert_non_null(strstr(ser, "|spaced|"));
    assert_non_null(strstr(ser, "|a,b|"));
    assert_non_null(strstr(ser, "|last|no newline|1\x1e"));
    assert_true(strncmp(ser, "1:3|id|name|amount\x1e", 19) == 0); /* BOM gone, line 1 */
    free(ser);
    free(path);
    cvm_test_rmtree(dir);
    free(dir);
}

static int header_only(void **state)
{
    (void)state;
    return 0;
}

static void test_header(void **state)
{
    (void)state;
    char *dir = cvm_test_mkdtemp("csvhdr");
    char *path = cvm_test_path(dir, "h.csv");
    cvm_test_write_file(path, "\xEF\xBB\xBF\"a\nb\",c\r\n1,2\n");
    char **names;
    size_t n;
    uint64_t off, line;
    cvm_err err = {0};
    assert_int_equal(cvm_csv_read_header(path, ',', &names, &n, &off, &line, &err), CVM_OK);
    assert_int_equal(n, 2);
    assert_string_equal(names[0], "a\nb");
    assert_string_equal(names[1], "c");
    assert_int_equal(line, 3);
    assert_int_equal(off, strlen("\xEF\xBB\xBF\"a\nb\",c\r\n"));
    cvm_csv_free_names(names, n);
    cvm_test_write_file(path, "");
    assert_int_equal(cvm_csv_read_header(path, ',', &names, &n, &off, &line, &err), CVM_EDATA);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(cvm_csv_read_header("/nonexistent/x.csv", ',', &names, &n, &off, &line, &err),
                     CVM_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/x.csv"));
    free(path);
    cvm_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fast_path_equals_libcsv),
        cmocka_unit_test(test_parallel_equals_serial),
        cmocka_unit_test(test_header),
    };
    (void)header_only;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
