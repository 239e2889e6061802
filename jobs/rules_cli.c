#include "rules_cli.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "alloc.h"
#include "baskets.h"
#include "fimi.h"
#include "fpgrowth.h"
#include "log.h"
#include "publish.h"
#include "rules.h"
#include "textparse.h"

static const char *const usage =
    "Usage: cvm rules --baskets FILE [options]\n"
    "Frequent itemsets and association rules from a basket file in the FIMI format:\n"
    "one basket per line, items separated by blanks and/or commas.\n"
    "  --baskets FILE       the basket file (required)\n"
    "  --min-support S      minimum support as a fraction of baskets (default 0.001),\n"
    "                       or a percentage with '%' (0.1%)\n"
    "  --min-count N        minimum count; the larger threshold wins (default 0)\n"
    "  --max-len L          longest itemset (default 5; 0 = no limit)\n"
    "  --target T           itemsets and rule sources: frequent (default), closed, maximal\n"
    "  --min-confidence C   minimum rule confidence (default 0.2)\n"
    "  --min-lift L         minimum rule lift (default 1)\n"
    "  --max-rules N        rules kept, best lift first (default 10000; 0 = all)\n"
    "  --no-prune           keep redundant rules (default: remove them)\n"
    "  --max-itemsets N     explosion guard (default 2000000; 0 = none)\n"
    "  --out DIR            where rules.csv and itemsets.csv go (default .)\n"
    "  --threads N          worker threads (default: all cores)\n"
    "Writes DIR/rules.csv and DIR/itemsets.csv; a summary with timings on stderr.\n";

static int num_arg(const char *opt, const char *v, double lo, double hi, bool pct_ok, double *out,
                   cvm_err *err)
{
    size_t n = strlen(v);
    bool pct = pct_ok && n > 1 && v[n - 1] == '%';
    double x;
    if (!cvm_parse_double(v, pct ? n - 1 : n, &x))
        return CVM_FAIL(err, CVM_EINVAL, "%s expects a number, got '%s'", opt, v);
    if (pct)
        x /= 100.0;
    if (!(x >= lo && x <= hi))
        return CVM_FAIL(err, CVM_EINVAL, "%s must be in [%g, %g], got '%s'", opt, lo, hi, v);
    *out = x;
    return CVM_OK;
}

static int write_file(const char *dir, const char *name, const cvm_baskets *b,
                      const cvm_itemsets *s, const cvm_rules *r, cvm_err *err)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = cvm_malloc(n);
    if (path == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    snprintf(path, n, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        int rc = CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", path, strerror(errno));
        cvm_free(path);
        return rc;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 16);
    if (r) {
        cvm_rules_csv_header(f);
        cvm_rules_csv_rows(f, b, s, r, "(all)");
    } else {
        cvm_itemsets_csv_header(f);
        cvm_itemsets_csv_rows(f, b, s, "(all)");
    }
    int rc = cvm_publish_close(f, path, err);
    cvm_free(path);
    return rc;
}

int cvm_rules_cli(int argc, char **argv, cvm_err *err)
{
    const char *path = NULL, *out = ".";
    cvm_fim_params fp;
    cvm_fim_params_default(&fp);
    cvm_rules_params rp;
    cvm_rules_params_default(&rp);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return CVM_OK;
        }
        if (strcmp(a, "--no-prune") == 0) {
            rp.prune_redundant = false;
            continue;
        }
        static const char *const with_value[] = {
            "--baskets", "--min-support", "--min-count", "--max-len", "--target", "--min-confidence",
            "--min-lift", "--max-rules", "--max-itemsets", "--out", "--threads"};
        bool known = false;
        for (size_t k = 0; k < sizeof with_value / sizeof *with_value; k++)
            known |= strcmp(a, with_value[k]) == 0;
        if (!known)
            return CVM_FAIL(err, CVM_EINVAL, "unknown argument '%s' (see cvm rules --help)", a);
        if (i + 1 >= argc)
            return CVM_FAIL(err, CVM_EINVAL, "%s needs a value", a);
        const char *v = argv[++i];
        if (strcmp(a, "--baskets") == 0) {
            path = v;
        } else if (strcmp(a, "--out") == 0) {
            out = v;
        } else if (strcmp(a, "--target") == 0) {
            if (strcmp(v, "frequent") == 0)
                fp.target = CVM_FIM_FREQUENT;
            else if (strcmp(v, "closed") == 0)
                fp.target = CVM_FIM_CLOSED;
            else if (strcmp(v, "maximal") == 0)
                fp.target = CVM_FIM_MAXIMAL;
            else
                return CVM_FAIL(err, CVM_EINVAL,
                                "--target must be frequent, closed or maximal, got '%s'", v);
        } else if (strcmp(a, "--min-support") == 0) {
            CVM_TRY(num_arg(a, v, 0, 1, true, &fp.min_support, err));
        } else if (strcmp(a, "--min-confidence") == 0) {
            CVM_TRY(num_arg(a, v, 0, 1, true, &rp.min_confidence, err));
        } else if (strcmp(a, "--min-lift") == 0) {
            CVM_TRY(num_arg(a, v, 0, 1e300, false, &rp.min_lift, err));
        } else {
            long n;
            if (!cvm_parse_long(v, strlen(v), &n) || n < 0)
                return CVM_FAIL(err, CVM_EINVAL, "%s expects a whole number >= 0, got '%s'", a, v);
            if (strcmp(a, "--min-count") == 0) {
                fp.min_count = (uint64_t)n;
            } else if (strcmp(a, "--max-len") == 0) {
                if (n > 1000)
                    return CVM_FAIL(err, CVM_EINVAL, "--max-len must be 0..1000, got '%s'", v);
                fp.max_len = (int)n;
            } else if (strcmp(a, "--max-rules") == 0) {
                rp.max_rules = (size_t)n;
            } else if (strcmp(a, "--max-itemsets") == 0) {
                if (n > 4000000000L)
                    return CVM_FAIL(err, CVM_EINVAL, "--max-itemsets must be below 4e9");
                fp.max_itemsets = (size_t)n;
            } else {
                if (n < 1 || n > 1024)
                    return CVM_FAIL(err, CVM_EINVAL, "--threads must be 1..1024, got '%s'", v);
                fp.threads = (int)n;
                rp.threads = (int)n;
            }
        }
    }
    if (path == NULL)
        return CVM_FAIL(err, CVM_EINVAL, "--baskets FILE is required (see cvm rules --help)");
    if (mkdir(out, 0777) != 0 && errno != EEXIST)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", out, strerror(errno));

    double t0 = cvm_now();
    cvm_baskets b;
    CVM_TRY(cvm_fimi_read(path, fp.threads, &b, err));
    double t_read = cvm_now() - t0;
    cvm_itemsets s;
    int rc = cvm_fim_run(&fp, &b, NULL, 0, &s, err);
    if (rc == CVM_ELIMIT)
        cvm_err_prefix(err, "%s", path);
    cvm_rules r = {0};
    if (rc == CVM_OK)
        rc = cvm_rules_generate(&rp, &s, &r, err);
    double t1 = cvm_now();
    if (rc == CVM_OK)
        rc = write_file(out, "rules.csv", &b, &s, &r, err);
    if (rc == CVM_OK)
        rc = write_file(out, "itemsets.csv", &b, &s, NULL, err);
    if (rc == CVM_OK) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        fprintf(stderr,
                "cvm rules: %zu baskets, %zu items (%zu frequent), min count %llu: %zu itemsets "
                "(%zu %s), %zu rules (%zu passing); read %.3f s, mine %.3f s, rules %.3f s, write %.3f s, "
                "total %.3f s, peak %.1f MB\n",
                b.n_baskets, b.n_items, s.n_frequent_items, (unsigned long long)s.min_count_used,
                s.n, s.n_target,
                fp.target == CVM_FIM_CLOSED ? "closed" : fp.target == CVM_FIM_MAXIMAL ? "maximal" : "frequent",
                r.n, r.n_passing, t_read, s.seconds, r.seconds, cvm_now() - t1, cvm_now() - t0,
                (double)ru.ru_maxrss / 1024.0);
    }
    cvm_rules_clear(&r);
    cvm_itemsets_clear(&s);
    cvm_baskets_clear(&b);
    return rc;
}
