#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void cvm_test_assert_close(double a, double b, double rel, double abs_,
                           const char *file, int line, const char *fmt, ...)
{
    double scale = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
    if (isnan(a) || isnan(b) || fabs(a - b) > rel * scale + abs_) {
        char ctx[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx, sizeof ctx, fmt, ap);
        va_end(ap);
        print_error("%s:%d: %s: %.17g != %.17g (rel %.3g, abs %.3g)\n", file,
                    line, ctx, a, b, rel, abs_);
        fail();
    }
}

static const char *tmp_root(void)
{
    const char *t = getenv("TMPDIR");
    return (t && *t) ? t : "/tmp";
}

char *cvm_test_mkdtemp(const char *tag)
{
    char *p = malloc(4096);
    assert_non_null(p);
    snprintf(p, 4096, "%s/cvm-test-%s-XXXXXX", tmp_root(), tag);
    assert_non_null(mkdtemp(p));
    return p;
}

void cvm_test_rmtree(const char *path)
{
    if (path == NULL)
        return;
    assert_true(strncmp(path, tmp_root(), strlen(tmp_root())) == 0 ||
                strncmp(path, "/tmp/", 5) == 0);
    cvm_test_system("rm -rf '%s'", path);
}

void cvm_test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    size_t n = strlen(text);
    assert_int_equal(fwrite(text, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

char *cvm_test_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

char *cvm_test_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

const char *cvm_test_source_dir(void)
{
    const char *s = getenv("CVM_SOURCE_DIR");
    return (s && *s) ? s : ".";
}

const char *cvm_test_binary(void)
{
    const char *s = getenv("CVM_BINARY");
    return (s && *s) ? s : "./cvm";
}

int cvm_test_system(const char *fmt, ...)
{
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}
