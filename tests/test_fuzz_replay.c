/* Replays the ingest fuzz corpus through the fuzz target itself, so CI
 * checks every seed (and every crash once added to the corpus) as a test. */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz_ingest.c"

static void test_replay_ingest_corpus(void **state)
{
    (void)state;
    char *dir = cvm_test_path(cvm_test_source_dir(), "tests/fuzz/corpus_ingest");
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char *p = cvm_test_path(dir, e->d_name);
        size_t len;
        char *buf = cvm_test_read_file(p, &len);
        assert_non_null(buf);
        LLVMFuzzerTestOneInput((const uint8_t *)buf, len); /* aborts on a mismatch */
        free(buf);
        free(p);
        n++;
    }
    closedir(d);
    free(dir);
    assert_true(n >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_ingest_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
