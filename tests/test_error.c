#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error.h"

static void test_names_and_messages(void **state)
{
    (void)state;
    assert_string_equal(cvm_strerror_name(CVM_ENOMEM), "ENOMEM");
    assert_string_equal(cvm_strerror(CVM_OK), "success");
    assert_string_equal(cvm_strerror_name(12345), "UNKNOWN");
}

static int raise_it(cvm_err *err) { return CVM_FAIL(err, CVM_EDATA, "bad %s at %d", "x", 3); }

static void test_fail_records_context(void **state)
{
    (void)state;
    cvm_err err = {0};
    assert_int_equal(raise_it(&err), CVM_EDATA);
    assert_int_equal(err.status, CVM_EDATA);
    assert_string_equal(err.msg, "bad x at 3");
    assert_non_null(strstr(err.src_file, "test_error.c"));
    cvm_err_prefix(&err, "file %s", "a.csv");
    assert_string_equal(err.msg, "file a.csv: bad x at 3");
    assert_int_equal(raise_it(NULL), CVM_EDATA); /* NULL err is allowed */
}

static int fail_after;
static void *failing_malloc(size_t n, void *ctx)
{
    (void)ctx;
    return fail_after-- > 0 ? malloc(n) : NULL;
}
static void *failing_realloc(void *p, size_t n, void *ctx)
{
    (void)ctx;
    return fail_after-- > 0 ? realloc(p, n) : NULL;
}
static void plain_free(void *p, void *ctx)
{
    (void)ctx;
    free(p);
}

static void test_allocator_hook(void **state)
{
    (void)state;
    cvm_allocator a = {failing_malloc, failing_realloc, plain_free, NULL};
    cvm_set_allocator(&a);
    fail_after = 1;
    char *s = cvm_strdup("abc");
    assert_non_null(s);
    assert_null(cvm_strdup("def"));
    cvm_free(s);
    cvm_set_allocator(NULL);
    assert_null(cvm_calloc((size_t)-1, 16)); /* overflow is caught */
    void *p = cvm_calloc(3, 4);
    assert_non_null(p);
    assert_int_equal(((int *)p)[2], 0);
    cvm_free(p);
    cvm_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_messages),
        cmocka_unit_test(test_fail_records_context),
        cmocka_unit_test(test_allocator_hook),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
