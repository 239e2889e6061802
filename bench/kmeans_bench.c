/* kmeans_bench - cvm's k-means on a numeric CSV matrix, timed like the
 * scikit-learn peer (../shared/peers/kmeans_sklearn.py): only the fit.
 *
 *   kmeans_bench --gen N --d 8 --k 8 --seed S --out M.csv   write a matrix
 *   kmeans_bench M.csv --k 8 [--n-init 10] [--tol 1e-4] [--max-iter 300]
 *                [--seed 0] [--algorithm auto|lloyd|hamerly|elkan] [--threads N]
 *
 * The generated matrix: k Gaussian blobs (unit sd) around centres drawn
 * N(0, 5^2) per coordinate, rows in random cluster order, then every column
 * z-scored, the "scaled matrix" a customer job clusters. Written with %.17g,
 * so both tools read the very same doubles.
 *
 * Built by bench/kmeans_bench.sh against the static libraries of a build
 * directory; not part of the CMake build. Prints one line like the peer:
 *   n=... d=... k=... inertia=... iterations=... fit_seconds=...
 */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmeans.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int usage(void)
{
    fputs("usage: kmeans_bench --gen N [--d 8] [--k 8] [--seed S] --out M.csv\n"
          "       kmeans_bench M.csv --k K [--n-init 10] [--tol 1e-4] [--max-iter 300]\n"
          "                    [--seed 0] [--algorithm auto|lloyd|hamerly|elkan] [--threads N]\n",
          stderr);
    return 2;
}

static int generate(size_t n, size_t d, size_t k, unsigned long seed, const char *out)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    double *C = malloc(k * d * sizeof *C), *X = malloc(n * d * sizeof *X);
    if (!r || !C || !X) {
        fputs("kmeans_bench: out of memory\n", stderr);
        return 1;
    }
    gsl_rng_set(r, seed);
    for (size_t j = 0; j < k * d; j++)
        C[j] = gsl_ran_gaussian(r, 5);
    for (size_t i = 0; i < n; i++) {
        size_t c = gsl_rng_uniform_int(r, k);
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = C[c * d + j] + gsl_ran_gaussian(r, 1);
    }
    for (size_t j = 0; j < d; j++) {
        double m = 0, s = 0;
        for (size_t i = 0; i < n; i++)
            m += X[i * d + j];
        m /= (double)n;
        for (size_t i = 0; i < n; i++)
            s += (X[i * d + j] - m) * (X[i * d + j] - m);
        s = sqrt(s / (double)n);
        for (size_t i = 0; i < n; i++)
            X[i * d + j] = (X[i * d + j] - m) / s;
    }
    FILE *f = fopen(out, "w");
    if (f == NULL) {
        perror(out);
        return 1;
    }
    for (size_t j = 0; j < d; j++)
        fprintf(f, "%sx%zu", j ? "," : "", j + 1);
    fputc('\n', f);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            fprintf(f, "%.17g%c", X[i * d + j], j + 1 < d ? ',' : '\n');
    if (fclose(f) != 0) {
        perror(out);
        return 1;
    }
    free(C);
    free(X);
    gsl_rng_free(r);
    return 0;
}

static double *load(const char *path, size_t *n_out, size_t *d_out)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    if (getline(&line, &cap, f) < 0) {
        fprintf(stderr, "%s: empty\n", path);
        return NULL;
    }
    size_t d = 1;
    for (char *p = line; *p; p++)
        d += *p == ',';
    size_t n = 0, room = 1 << 16;
    double *X = malloc(room * d * sizeof *X);
    while (X && getline(&line, &cap, f) > 0) {
        if (n == room) {
            room *= 2;
            X = realloc(X, room * d * sizeof *X);
            if (X == NULL)
                break;
        }
        char *p = line;
        for (size_t j = 0; j < d; j++) {
            char *e;
            X[n * d + j] = strtod(p, &e);
            if (e == p) {
                fprintf(stderr, "%s:%zu: not a number\n", path, n + 2);
                return NULL;
            }
            p = e + 1;
        }
        n++;
    }
    free(line);
    fclose(f);
    *n_out = n;
    *d_out = d;
    return X;
}

int main(int argc, char **argv)
{
    gsl_set_error_handler_off();
    cvm_kmeans_params p;
    cvm_kmeans_params_default(&p);
    const char *csv = NULL, *out = NULL;
    size_t gen = 0, d = 8;
    p.seed = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            csv = a;
            continue;
        }
        if (v == NULL)
            return usage();
        i++;
        if (strcmp(a, "--gen") == 0)
            gen = strtoul(v, NULL, 10);
        else if (strcmp(a, "--d") == 0)
            d = strtoul(v, NULL, 10);
        else if (strcmp(a, "--out") == 0)
            out = v;
        else if (strcmp(a, "--k") == 0)
            p.k = strtoul(v, NULL, 10);
        else if (strcmp(a, "--n-init") == 0)
            p.n_init = atoi(v);
        else if (strcmp(a, "--tol") == 0)
            p.tol = atof(v);
        else if (strcmp(a, "--max-iter") == 0)
            p.max_iter = atoi(v);
        else if (strcmp(a, "--seed") == 0)
            p.seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--threads") == 0)
            p.threads = atoi(v);
        else if (strcmp(a, "--algorithm") == 0) {
            if (!cvm_kmeans_algorithm_parse(v, &p.algorithm))
                return usage();
        } else
            return usage();
    }
    if (gen)
        return out ? generate(gen, d, p.k, (unsigned long)p.seed, out) : usage();
    if (csv == NULL)
        return usage();
    size_t n;
    double *X = load(csv, &n, &d);
    if (X == NULL)
        return 1;
    cvm_kmeans *km = cvm_kmeans_new(&p);
    if (km == NULL) {
        fprintf(stderr, "kmeans_bench: %s\n", cvm_kmeans_params_check(&p));
        return 2;
    }
    cvm_err err = {0};
    double t = now();
    int rc = cvm_kmeans_fit(km, X, n, d, NULL, &err);
    t = now() - t;
    if (rc != CVM_OK) {
        fprintf(stderr, "kmeans_bench: %s\n", err.msg);
        return 1;
    }
    cvm_kmeans_stats st;
    cvm_kmeans_get_stats(km, &st);
    printf("n=%zu d=%zu k=%zu inertia=%.6f iterations=%d fit_seconds=%.3f algorithm=%s "
           "distance_evals=%llu\n", n, d, p.k, cvm_kmeans_inertia(km), st.n_iter, t,
           cvm_kmeans_algorithm_name(st.algorithm), (unsigned long long)st.distance_evals);
    cvm_kmeans_free(km);
    free(X);
    return 0;
}
