/* The radix sort of (value, index) pairs against qsort with the comparators
 * the stages used before: value, then index, ascending and descending, on
 * values with many ties, negatives, -0 and +0, infinities and NaN. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "keysort.h"

static int nan_last(double a, double b)
{
    return isnan(a) - isnan(b);
}

static int cmp_asc(const void *x_, const void *y_)
{
    const cvm_vi *x = x_, *y = y_;
    if (nan_last(x->v, y->v))
        return nan_last(x->v, y->v);
    if (!isnan(x->v) && x->v != y->v)
        return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int cmp_desc(const void *x_, const void *y_)
{
    const cvm_vi *x = x_, *y = y_;
    if (nan_last(x->v, y->v))
        return nan_last(x->v, y->v);
    if (!isnan(x->v) && x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

static void test_equals_comparison_sort(void **state)
{
    (void)state;
    uint64_t s = 99;
    size_t sizes[] = {0, 1, 2, 5, 63, 64, 1000, 50000};
    for (size_t z = 0; z < sizeof sizes / sizeof *sizes; z++) {
        size_t n = sizes[z];
        cvm_vi *a = malloc((n ? n : 1) * sizeof *a), *b = malloc((n ? n : 1) * sizeof *b);
        assert_non_null(a);
        assert_non_null(b);
        for (int desc = 0; desc < 2; desc++) {
            for (size_t j = 0; j < n; j++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                unsigned r = (unsigned)(s >> 33);
                double v;
                switch (r % 10) {
                case 0: v = 0.0; break;
                case 1: v = -0.0; break;
                case 2: v = NAN; break;
                case 3: v = r % 20 == 3 ? INFINITY : -INFINITY; break;
                case 4: v = -(double)(r % 7); break;                 /* ties */
                case 5: v = 1e-300 * (double)(r % 5); break;          /* tiny */
                default: v = (double)(r % 1000) / 8.0 - 60.0; break; /* ties too */
                }
                a[j] = (cvm_vi){v, j};
            }
            memcpy(b, a, n * sizeof *a);
            assert_int_equal(cvm_sort_vi(a, n, desc), CVM_OK);
            qsort(b, n, sizeof *b, desc ? cmp_desc : cmp_asc);
            for (size_t j = 0; j < n; j++) {
                if (a[j].i != b[j].i)
                    fail_msg("n %zu desc %d position %zu: index %zu, expected %zu", n, desc, j,
                             a[j].i, b[j].i);
            }
        }
        free(a);
        free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_equals_comparison_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
