/*
 * rules_bench.c - basket data for the rules benchmark, and a driver for
 * `cvm rules` until the CLI dispatches it (bench/rules_bench.sh builds this
 * against a cvm build directory).
 *
 *   rules_bench quest N T I L NITEMS SEED OUT   IBM Quest-style synthetic baskets
 *       (Agrawal & Srikant 1994: N baskets of Poisson(T) items built from L
 *       potential patterns of Poisson(I) items over NITEMS items, pattern
 *       weights exponential, correlation 0.5 between consecutive patterns,
 *       corruption level N(0.5, 0.1)); T10I4D100K = quest 100000 10 4 2000 1000
 *   rules_bench retail N NITEMS SEED OUT        baskets shaped like the public
 *       retail set (Brijs et al.): a few very popular items (57%, 48%, 18% ...
 *       of baskets), Zipf-distributed long tail over NITEMS items, basket
 *       sizes negative-binomial with mean ~10, plus co-purchase patterns
 *   rules_bench rules ARGS...                   = cvm rules ARGS...
 *
 * Output is FIMI: one basket per line, item numbers separated by spaces.
 * Same arguments, same bytes (GSL mt19937 seeded from SEED).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "error.h"
#include "rules_cli.h"

typedef struct pattern {
    int *item;
    int n;
    double corrupt;
} pattern;

/* The pool of potential patterns over nitems items. */
static pattern *make_patterns(gsl_rng *r, int L, double I, int nitems, const gsl_ran_discrete_t *pick,
                              gsl_ran_discrete_t **weights)
{
    pattern *p = calloc((size_t)L, sizeof *p);
    double *w = malloc((size_t)L * sizeof *w);
    if (!p || !w)
        exit(1);
    for (int k = 0; k < L; k++) {
        int n = (int)gsl_ran_poisson(r, I);
        if (n < 1)
            n = 1;
        p[k].item = malloc((size_t)n * sizeof *p[k].item);
        p[k].n = n;
        /* Some items from the previous pattern: fraction exponential(0.5). */
        int from_prev = 0;
        if (k > 0) {
            double f = gsl_ran_exponential(r, 0.5);
            from_prev = (int)(f * n + 0.5);
            if (from_prev > n)
                from_prev = n;
            if (from_prev > p[k - 1].n)
                from_prev = p[k - 1].n;
        }
        for (int j = 0; j < n; j++) {
            int it;
            for (;;) {
                it = j < from_prev ? p[k - 1].item[gsl_rng_uniform_int(r, (unsigned long)p[k - 1].n)]
                                   : (pick ? (int)gsl_ran_discrete(r, pick)
                                           : (int)gsl_rng_uniform_int(r, (unsigned long)nitems));
                int dup = 0;
                for (int q = 0; q < j; q++)
                    dup |= p[k].item[q] == it;
                if (!dup)
                    break;
                if (j < from_prev)
                    from_prev = j; /* previous pattern exhausted: random items */
            }
            p[k].item[j] = it;
        }
        double c = 0.5 + gsl_ran_gaussian(r, 0.1);
        p[k].corrupt = c < 0 ? 0 : c > 1 ? 1 : c;
        w[k] = gsl_ran_exponential(r, 1.0);
    }
    *weights = gsl_ran_discrete_preproc((size_t)L, w);
    free(w);
    return p;
}

static void put_basket(FILE *f, const int *b, int n)
{
    for (int j = 0; j < n; j++)
        fprintf(f, j ? " %d" : "%d", b[j]);
    fputc('\n', f);
}

/* Adds pattern k (corrupted) to the basket unless present; returns new size. */
static int add_pattern(gsl_rng *r, const pattern *p, int *b, int n, int cap)
{
    int keep[256], m = 0;
    for (int j = 0; j < p->n && m < 256; j++)
        keep[m++] = p->item[j];
    /* Corruption: drop items while a uniform draw is below the level. */
    while (m > 0 && gsl_rng_uniform(r) < p->corrupt) {
        int d = (int)gsl_rng_uniform_int(r, (unsigned long)m);
        keep[d] = keep[--m];
    }
    for (int j = 0; j < m && n < cap; j++) {
        int dup = 0;
        for (int q = 0; q < n; q++)
            dup |= b[q] == keep[j];
        if (!dup)
            b[n++] = keep[j];
    }
    return n;
}

static int quest(int argc, char **argv)
{
    if (argc != 8) {
        fprintf(stderr, "usage: rules_bench quest N T I L NITEMS SEED OUT\n");
        return 2;
    }
    long N = atol(argv[1]);
    double T = atof(argv[2]), I = atof(argv[3]);
    int L = atoi(argv[4]), nitems = atoi(argv[5]);
    unsigned long seed = strtoul(argv[6], NULL, 10);
    FILE *f = fopen(argv[7], "w");
    if (!f)
        return 1;
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    gsl_ran_discrete_t *wt;
    pattern *p = make_patterns(r, L, I, nitems, NULL, &wt);
    int b[1024];
    int pending = -1; /* a pattern that did not fit goes into the next basket */
    for (long t = 0; t < N; t++) {
        int size = (int)gsl_ran_poisson(r, T);
        if (size < 1)
            size = 1;
        int n = 0;
        while (n < size) {
            int k = pending >= 0 ? pending : (int)gsl_ran_discrete(r, wt);
            pending = -1;
            if (n + p[k].n > size && n > 0 && gsl_rng_uniform(r) < 0.5) {
                pending = k;
                break;
            }
            n = add_pattern(r, &p[k], b, n, 1024);
            if (p[k].n == 0)
                break;
        }
        put_basket(f, b, n);
    }
    gsl_ran_discrete_free(wt);
    for (int k = 0; k < L; k++)
        free(p[k].item);
    free(p);
    gsl_rng_free(r);
    return fclose(f) == 0 ? 0 : 1;
}

static int retail(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: rules_bench retail N NITEMS SEED OUT\n");
        return 2;
    }
    long N = atol(argv[1]);
    int nitems = atoi(argv[2]);
    unsigned long seed = strtoul(argv[3], NULL, 10);
    FILE *f = fopen(argv[4], "w");
    if (!f)
        return 1;
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, seed);
    /* The very popular items of retail (shares of baskets). */
    static const double top[] = {0.57, 0.48, 0.18, 0.17, 0.12, 0.09, 0.07};
    const int ntop = (int)(sizeof top / sizeof *top);
    /* Zipf(1.05) over the rest, in a shuffled order of item numbers. */
    double *w = malloc((size_t)nitems * sizeof *w);
    int *label = malloc((size_t)nitems * sizeof *label);
    if (!w || !label)
        return 1;
    for (int i = 0; i < nitems; i++) {
        w[i] = i < ntop ? 0 : 1.0 / ((double)(i - ntop + 1) * 1.0) / (i < 2000 ? 1.0 : 1.0 + (i - 2000) / 4000.0);
        label[i] = i;
    }
    gsl_ran_shuffle(r, label, (size_t)nitems, sizeof *label);
    gsl_ran_discrete_t *zipf = gsl_ran_discrete_preproc((size_t)nitems, w);
    gsl_ran_discrete_t *wt;
    pattern *p = make_patterns(r, 3000, 3, nitems, zipf, &wt);
    int b[1024];
    for (long t = 0; t < N; t++) {
        int n = 0;
        for (int k = 0; k < ntop; k++)
            if (gsl_rng_uniform(r) < top[k])
                b[n++] = k;
        /* Negative binomial (gamma-Poisson) size of the rest: mean ~8.5. */
        int rest = (int)gsl_ran_negative_binomial(r, 1.5 / (1.5 + 8.5), 1.5);
        int size = n + rest;
        if (size < 1)
            size = 1;
        if (size > 1000)
            size = 1000;
        int guard = 0;
        while (n < size && guard++ < 4 * size + 16) {
            if (gsl_rng_uniform(r) < 0.25)
                n = add_pattern(r, &p[gsl_ran_discrete(r, wt)], b, n, size);
            else {
                int it = (int)gsl_ran_discrete(r, zipf), dup = 0;
                for (int q = 0; q < n; q++)
                    dup |= b[q] == it;
                if (!dup)
                    b[n++] = it;
            }
        }
        for (int j = 0; j < n; j++)
            b[j] = label[b[j]];
        put_basket(f, b, n);
    }
    gsl_ran_discrete_free(wt);
    gsl_ran_discrete_free(zipf);
    for (int k = 0; k < 3000; k++)
        free(p[k].item);
    free(p);
    free(w);
    free(label);
    gsl_rng_free(r);
    return fclose(f) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    if (argc >= 2 && strcmp(argv[1], "quest") == 0)
        return quest(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "retail") == 0)
        return retail(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "rules") == 0) {
        cvm_err err = {0};
        int rc = cvm_rules_cli(argc - 1, argv + 1, &err);
        if (rc != CVM_OK) {
            fprintf(stderr, "cvm: %s\n", err.msg);
            return rc == CVM_ELIMIT ? 3 : 2;
        }
        return 0;
    }
    fprintf(stderr, "usage: rules_bench quest|retail|rules ...\n");
    return 2;
}
