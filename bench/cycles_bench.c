/*
 * cycles_bench.c - BG/NBD + Gamma-Gamma fit and scoring on customers
 * simulated from known parameters (bench/cycles_bench.sh builds and runs it).
 *
 *   cycles_bench [--customers N] [--seed S] [--threads T] [--summary FILE]
 *   cycles_bench --input FILE [--threads T]
 *
 * Simulation (one time unit = a week, like the CDNOW benchmark): first
 * purchases uniform over the first 12 weeks, calibration to week 39, so
 * T = 39 - first; while alive a customer buys at rate lambda ~ Gamma(r, alpha)
 * and after each repeat purchase drops out with probability p ~ Beta(a, b);
 * each transaction is worth Gamma(p_gg, nu), nu ~ Gamma(q, v). The
 * parameters are the CDNOW estimates. With --summary the customer summary is
 * written as x,t_x,T,m_x for shared/peers/bgnbd_scipy.py. With --input such a
 * file (e.g. the CDNOW summary) is fitted instead of simulated data.
 *
 * Prints one line per phase with wall seconds, the estimates and their
 * standard errors, and a checksum of the scores (equal for any thread count).
 */
#include <gsl/gsl_errno.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgnbd.h"
#include "gammagamma.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const cvm_bgnbd_params TRUE_BG = {0.243, 4.414, 0.793, 2.426};
static const cvm_gammagamma_params TRUE_GG = {6.25, 3.74, 15.44};

/* FNV-1a over the bytes of the scores: equal checksums, equal bits. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ull;
    }
    return h;
}

int main(int argc, char **argv)
{
    size_t n = 1000000;
    unsigned long seed = 1;
    int threads = 0;
    const char *summary = NULL, *input = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--customers") == 0 && i + 1 < argc)
            n = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
            seed = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--summary") == 0 && i + 1 < argc)
            summary = argv[++i];
        else if (strcmp(argv[i], "--input") == 0 && i + 1 < argc)
            input = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--customers N] [--seed S] [--threads T] [--summary FILE] "
                    "[--input FILE]\n", argv[0]);
            return 2;
        }
    }
    gsl_set_error_handler_off();
    FILE *in = NULL;
    if (input) {
        in = fopen(input, "r");
        if (in == NULL) {
            perror(input);
            return 1;
        }
        n = 0;
        int ch, prev = '\n';
        while ((ch = fgetc(in)) != EOF) {
            n += ch == '\n';
            prev = ch;
        }
        n = n - 1 + (prev != '\n'); /* data lines after the header */
        rewind(in);
    }
    double *x = malloc(n * sizeof *x), *tx = malloc(n * sizeof *tx), *T = malloc(n * sizeof *T);
    double *m = malloc(n * sizeof *m);
    double *pa = malloc(n * sizeof *pa), *ex = malloc(n * sizeof *ex);
    double *det = malloc(n * sizeof *det), *ev = malloc(n * sizeof *ev), *clv = malloc(n * sizeof *clv);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!x || !tx || !T || !m || !pa || !ex || !det || !ev || !clv || !rng) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    gsl_rng_set(rng, seed);
    double t0 = now();
    size_t repeaters = 0;
    if (in) {
        /* x,t_x,T[,m_x]: the peer's input format. */
        char line[512];
        if (fgets(line, sizeof line, in) == NULL) {
            fprintf(stderr, "%s: empty\n", input);
            return 1;
        }
        bool has_m = strstr(line, "m_x") != NULL;
        for (size_t i = 0; i < n; i++) {
            if (fgets(line, sizeof line, in) == NULL) {
                fprintf(stderr, "%s: short file\n", input);
                return 1;
            }
            m[i] = 0;
            int k = sscanf(line, "%lf,%lf,%lf,%lf", &x[i], &tx[i], &T[i], &m[i]);
            if (k < 3 || (has_m && k < 4)) {
                fprintf(stderr, "%s: bad line %zu\n", input, i + 2);
                return 1;
            }
            repeaters += x[i] > 0;
        }
        fclose(in);
        printf("input %s customers=%zu repeaters=%zu\n", input, n, repeaters);
    }
    for (size_t i = 0; i < n && !in; i++) {
        double first = 12 * gsl_rng_uniform(rng);
        double age = 39 - first;
        double lambda = gsl_ran_gamma(rng, TRUE_BG.r, 1 / TRUE_BG.alpha);
        double p = gsl_ran_beta(rng, TRUE_BG.a, TRUE_BG.b);
        double nu = gsl_ran_gamma(rng, TRUE_GG.q, 1 / TRUE_GG.v);
        double t = 0, last = 0, k = 0, sum = 0;
        for (;;) {
            t += gsl_ran_exponential(rng, 1 / lambda);
            if (t > age)
                break;
            k++;
            last = t;
            sum += gsl_ran_gamma(rng, TRUE_GG.p, 1 / nu);
            if (gsl_rng_uniform(rng) < p)
                break;
        }
        x[i] = k;
        tx[i] = last;
        T[i] = age;
        m[i] = k > 0 ? sum / k : 0;
        repeaters += k > 0;
    }
    if (!in)
        printf("simulate customers=%zu repeaters=%zu seconds=%.3f\n", n, repeaters, now() - t0);
    if (summary) {
        FILE *f = fopen(summary, "w");
        if (f == NULL) {
            perror(summary);
            return 1;
        }
        fprintf(f, "x,t_x,T,m_x\n");
        for (size_t i = 0; i < n; i++)
            fprintf(f, "%.0f,%.17g,%.17g,%.17g\n", x[i], tx[i], T[i], m[i]);
        fclose(f);
    }

    cvm_err err = {0};
    cvm_bgnbd_data bd = {n, x, tx, T};
    cvm_gammagamma_data gd = {n, x, m};
    cvm_bgnbd_opts bo;
    cvm_bgnbd_opts_default(&bo);
    bo.threads = threads;
    cvm_gammagamma_opts go;
    cvm_gammagamma_opts_default(&go);
    go.threads = threads;
    cvm_bgnbd_result br;
    cvm_gammagamma_result gr;

    double t_start = now();
    if (cvm_bgnbd_fit(&bo, &bd, &br, &err) != CVM_OK) {
        fprintf(stderr, "bgnbd: %s\n", err.msg);
        return 1;
    }
    double t_bg = now();
    if (cvm_gammagamma_fit(&go, &gd, &gr, &err) != CVM_OK) {
        fprintf(stderr, "gammagamma: %s\n", err.msg);
        return 1;
    }
    double t_gg = now();
    /* Scoring: P(alive), purchases in the next 52 weeks, their value
     * discounted at 10% a year, the expected average value, CLV at 30% margin. */
    double weekly = pow(1.10, 7 / 365.25) - 1;
    cvm_bgnbd_score(&br.params, &bd, 52, weekly, threads, pa, ex, det);
    cvm_gammagamma_score(&gr.params, &gd, threads, ev);
    for (size_t i = 0; i < n; i++)
        clv[i] = 0.30 * ev[i] * det[i];
    double t_sc = now();

    printf("bgnbd r=%.6g alpha=%.6g a=%.6g b=%.6g se=%.3g,%.3g,%.3g,%.3g loglik=%.4f "
           "iterations=%d status=%s seconds=%.3f\n",
           br.params.r, br.params.alpha, br.params.a, br.params.b, br.se[0], br.se[1], br.se[2],
           br.se[3], br.loglik, br.iterations, br.status, t_bg - t_start);
    printf("gamma_gamma p=%.6g q=%.6g v=%.6g se=%.3g,%.3g,%.3g loglik=%.4f iterations=%d "
           "status=%s used=%zu seconds=%.3f\n",
           gr.params.p, gr.params.q, gr.params.v, gr.se[0], gr.se[1], gr.se[2], gr.loglik,
           gr.iterations, gr.status, gr.n_used, t_gg - t_bg);
    uint64_t h = 1469598103934665603ull;
    h = fnv(h, pa, n * sizeof *pa);
    h = fnv(h, ex, n * sizeof *ex);
    h = fnv(h, clv, n * sizeof *clv);
    double s_ex = 0, s_clv = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        s_ex += ex[i];
        s_clv += clv[i];
        bad += !isfinite(pa[i]) || !isfinite(ex[i]) || !isfinite(clv[i]);
    }
    printf("score sum_expected_52w=%.2f sum_clv=%.2f nonfinite=%zu checksum=%016llx seconds=%.3f\n",
           s_ex, s_clv, bad, (unsigned long long)h, t_sc - t_gg);
    printf("total fit_and_score_seconds=%.3f threads=%d\n", t_sc - t_start, threads);
    gsl_rng_free(rng);
    free(x);
    free(tx);
    free(T);
    free(m);
    free(pa);
    free(ex);
    free(det);
    free(ev);
    free(clv);
    return 0;
}
