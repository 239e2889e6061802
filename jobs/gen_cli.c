#include "gen_cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static const char gen_usage[] =
    "Usage: cvm gen --out DIR [--customers N] [--seed S] [options]\n"
    "\n"
    "Write synthetic pharmaceutical wholesale data with a known truth into DIR:\n"
    "transactions.csv, customers.csv, products.csv, interactions.csv and\n"
    "truth_customers.csv, truth_bundles.csv, truth_cycles.csv, truth_bad_rows.csv.\n"
    "The same options give the same bytes, whatever the thread count.\n"
    "\n"
    "Options:\n"
    "  --customers N     number of customers (default 2000, at most 999999)\n"
    "  --seed S          random seed (default 1)\n"
    "  --out DIR         output directory, created if missing (required)\n"
    "  --lines N         scale the order rates so that transactions.csv has\n"
    "                    N data lines (within 1%)\n"
    "  --start DATE      first day of the history, YYYY-MM-DD (default 2023-01-01)\n"
    "  --days N          length of the history in days (default 730)\n"
    "  --bad-rows SHARE  share of deliberately malformed rows, 0-0.5 (default 0.002)\n"
    "  --returns SHARE   share of orders later partly returned, 0-0.5 (default 0.02)\n"
    "  --threads N       worker threads (default: all cores)\n"
    "  --help            show this help\n";

static int parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out, cvm_err *err)
{
    char *end;
    if (s[0] < '0' || s[0] > '9')
        return CVM_FAIL(err, CVM_EINVAL, "%s expects a non-negative integer, got '%s'", opt,
                        s);
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        return CVM_FAIL(err, CVM_EINVAL, "%s expects an integer from 0 to %llu, got '%s'",
                        opt, (unsigned long long)max, s);
    *out = v;
    return CVM_OK;
}

static int parse_share(const char *opt, const char *s, double *out, cvm_err *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || !isfinite(v) || v < 0 || v > 0.5)
        return CVM_FAIL(err, CVM_EINVAL, "%s expects a share from 0 to 0.5, got '%s'", opt,
                        s);
    *out = v;
    return CVM_OK;
}

int cvm_gen_cli(int argc, char **argv, cvm_err *err)
{
    cvm_gen_params p;
    cvm_gen_params_default(&p);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(gen_usage, stdout);
            return CVM_OK;
        }
        if (strncmp(a, "--", 2) != 0)
            return CVM_FAIL(err, CVM_EINVAL, "unexpected argument '%s' (see cvm gen --help)",
                            a);
        /* --opt value and --opt=value */
        char name[32];
        const char *val = NULL, *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof name)
            return CVM_FAIL(err, CVM_EINVAL, "unknown option '%s' (see cvm gen --help)", a);
        memcpy(name, a, nlen);
        name[nlen] = '\0';
        static const char *const known[] = {"--customers", "--seed",     "--out",
                                            "--lines",     "--start",    "--days",
                                            "--bad-rows",  "--returns",  "--threads"};
        int k = -1;
        for (int j = 0; j < (int)(sizeof known / sizeof known[0]); j++)
            if (strcmp(name, known[j]) == 0)
                k = j;
        if (k < 0)
            return CVM_FAIL(err, CVM_EINVAL, "unknown option '%s' (see cvm gen --help)",
                            name);
        if (eq != NULL) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                return CVM_FAIL(err, CVM_EINVAL, "option %s needs a value", name);
            val = argv[++i];
        }
        uint64_t u = 0;
        switch (k) {
        case 0:
            CVM_TRY(parse_u64(name, val, 999999, &u, err));
            p.customers = (size_t)u;
            break;
        case 1:
            CVM_TRY(parse_u64(name, val, UINT64_MAX, &u, err));
            p.seed = u;
            break;
        case 2:
            if (val[0] == '\0')
                return CVM_FAIL(err, CVM_EINVAL, "--out expects a directory");
            p.out_dir = val;
            break;
        case 3:
            CVM_TRY(parse_u64(name, val, 2000000000, &u, err));
            p.target_lines = (size_t)u;
            break;
        case 4:
            p.start = val;
            break;
        case 5:
            CVM_TRY(parse_u64(name, val, 36500, &u, err));
            p.days = (int)u;
            break;
        case 6:
            CVM_TRY(parse_share(name, val, &p.bad_row_share, err));
            break;
        case 7:
            CVM_TRY(parse_share(name, val, &p.return_share, err));
            break;
        default:
            CVM_TRY(parse_u64(name, val, 1024, &u, err));
            p.threads = (int)u;
            break;
        }
    }
    if (p.out_dir == NULL)
        return CVM_FAIL(err, CVM_EINVAL, "--out DIR is required (see cvm gen --help)");
    const char *why = cvm_gen_params_check(&p);
    if (why != NULL) {
        /* the reasons start with the parameter's name; say which option */
        static const char *const map[][2] = {{"customers", "--customers"}, {"start", "--start"},
                                             {"days", "--days"},           {"target_lines", "--lines"},
                                             {"threads", "--threads"},     {"bad_row", "--bad-rows"},
                                             {"return", "--returns"},      {"out_dir", "--out"}};
        for (size_t j = 0; j < sizeof map / sizeof map[0]; j++)
            if (strncmp(why, map[j][0], strlen(map[j][0])) == 0)
                return CVM_FAIL(err, CVM_EINVAL, "%s: %s", map[j][1], why);
        return CVM_FAIL(err, CVM_EINVAL, "%s", why);
    }
    cvm_gen_stats st;
    CVM_TRY(cvm_gen_run(&p, &st, err));
    fprintf(stderr, "cvm gen: wrote %zu lines (%.1f MB) to %s\n", st.lines,
            (double)st.bytes / 1e6, p.out_dir);
    return CVM_OK;
}
