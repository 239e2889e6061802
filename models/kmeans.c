#include "kmeans.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "cluster_metrics.h"
#include "parallel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Rows are processed in blocks whose size depends on n only: sums are
 * reduced within a block in row order and across blocks in block order, so
 * nothing depends on how OpenMP spreads the blocks over threads. */
#define BLOCK_MIN 1024
#define BLOCKS_MAX 4096

/* Every bound test keeps this relative margin. Bounds accumulate a few ulps
 * of rounding per iteration (~1e-16 each); 1e-9 is far above that and far
 * below any distance gap that matters, so a point is skipped only when the
 * exact computation of Lloyd would certainly keep its label. */
#define SLACK 1e-9

struct cvm_kmeans {
    cvm_kmeans_params p;
    size_t n, d;
    double *centers; /* k x d */
    int32_t *labels; /* n */
    double inertia;
    cvm_kmeans_stats st;
    double *trace;
    size_t trace_len;
    double *init; /* k x init_d user centres, or NULL for k-means++ */
    size_t init_d;
    bool fitted;
};

static const char *const alg_names[] = {"lloyd", "hamerly", "elkan", "auto"};
static const char *const crit_names[] = {"silhouette", "calinski_harabasz", "davies_bouldin",
                                         "elbow", "stability"};

const char *cvm_kmeans_algorithm_name(cvm_kmeans_algorithm a)
{
    return (unsigned)a <= CVM_KMEANS_AUTO ? alg_names[a] : "?";
}

bool cvm_kmeans_algorithm_parse(const char *s, cvm_kmeans_algorithm *out)
{
    for (int i = 0; i <= CVM_KMEANS_AUTO; i++)
        if (strcmp(s, alg_names[i]) == 0) {
            *out = (cvm_kmeans_algorithm)i;
            return true;
        }
    return false;
}

const char *cvm_kmeans_criterion_name(cvm_kmeans_criterion c)
{
    return (unsigned)c <= CVM_KMEANS_STABILITY ? crit_names[c] : "?";
}

bool cvm_kmeans_criterion_parse(const char *s, cvm_kmeans_criterion *out)
{
    for (int i = 0; i <= CVM_KMEANS_STABILITY; i++)
        if (strcmp(s, crit_names[i]) == 0) {
            *out = (cvm_kmeans_criterion)i;
            return true;
        }
    return false;
}

void cvm_kmeans_params_default(cvm_kmeans_params *p)
{
    memset(p, 0, sizeof *p);
    p->k = 8;
    p->n_init = 10;
    p->max_iter = 300;
    p->tol = 1e-4;
    p->algorithm = CVM_KMEANS_AUTO;
}

const char *cvm_kmeans_params_check(const cvm_kmeans_params *p)
{
    if (p == NULL)
        return "no parameters";
    if (p->k < 1 || p->k > 100000)
        return "k must be within [1, 100000]";
    if (p->n_init < 1 || p->n_init > 10000)
        return "n_init must be within [1, 10000]";
    if (p->max_iter < 1 || p->max_iter > 1000000)
        return "max_iter must be within [1, 1000000]";
    if (!(p->tol >= 0 && p->tol <= 1))
        return "tol must be within [0, 1]";
    if ((unsigned)p->algorithm > CVM_KMEANS_AUTO)
        return "algorithm must be lloyd, hamerly, elkan or auto";
    if (p->local_trials < 0 || p->local_trials > 1000)
        return "local_trials must be within [0, 1000] (0 = 2 + ln k)";
    return NULL;
}

cvm_kmeans *cvm_kmeans_new(const cvm_kmeans_params *p)
{
    if (cvm_kmeans_params_check(p) != NULL)
        return NULL;
    cvm_kmeans *km = cvm_calloc(1, sizeof *km);
    if (km == NULL)
        return NULL;
    km->p = *p;
    km->inertia = NAN;
    return km;
}

static void unfit(cvm_kmeans *km)
{
    cvm_free(km->centers);
    cvm_free(km->labels);
    cvm_free(km->trace);
    km->centers = NULL;
    km->labels = NULL;
    km->trace = NULL;
    km->trace_len = 0;
    km->fitted = false;
    km->inertia = NAN;
    km->n = km->d = 0;
    memset(&km->st, 0, sizeof km->st);
}

void cvm_kmeans_free(cvm_kmeans *km)
{
    if (km == NULL)
        return;
    unfit(km);
    cvm_free(km->init);
    cvm_free(km);
}

int cvm_kmeans_set_init(cvm_kmeans *km, const double *centers, size_t d, cvm_err *err)
{
    cvm_free(km->init);
    km->init = NULL;
    km->init_d = 0;
    if (centers == NULL)
        return CVM_OK;
    if (d == 0)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: initial centres with d = 0");
    for (size_t i = 0; i < km->p.k * d; i++)
        if (!isfinite(centers[i]))
            return CVM_FAIL(err, CVM_EINVAL, "kmeans: initial centre %zu is not finite", i / d);
    km->init = cvm_malloc(km->p.k * d * sizeof *km->init);
    if (km->init == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory for %zu initial centres", km->p.k);
    memcpy(km->init, centers, km->p.k * d * sizeof *km->init);
    km->init_d = d;
    return CVM_OK;
}

const double *cvm_kmeans_centers(const cvm_kmeans *km) { return km->fitted ? km->centers : NULL; }
const int32_t *cvm_kmeans_labels(const cvm_kmeans *km) { return km->fitted ? km->labels : NULL; }
double cvm_kmeans_inertia(const cvm_kmeans *km) { return km->fitted ? km->inertia : NAN; }
size_t cvm_kmeans_k(const cvm_kmeans *km) { return km->p.k; }
size_t cvm_kmeans_dim(const cvm_kmeans *km) { return km->d; }
void cvm_kmeans_get_stats(const cvm_kmeans *km, cvm_kmeans_stats *out) { *out = km->st; }

const double *cvm_kmeans_trace(const cvm_kmeans *km, size_t *len)
{
    *len = km->fitted ? km->trace_len : 0;
    return *len ? km->trace : NULL;
}

/* ------------------------------------------------------------ workspace */

/* The one formula for a squared distance: every decision that picks a label
 * uses it, whatever the algorithm, so Lloyd, Hamerly and Elkan compare the
 * very same doubles. Four partial sums (columns j mod 4) break the chain of
 * dependent additions, which is what bounds a scalar loop at small d; the
 * order of operations is fixed, so the result is too. A build that enables
 * FMA instructions (-march=native) must keep -ffp-contract=off (GCC's
 * default in C11 mode, not clang's), or a compiler could fuse a
 * multiply-add in one inlined copy and not in another. */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

#if defined(__GNUC__)
/* The same four partial sums as two pairs of lanes: lane arithmetic is
 * IEEE-identical to the scalar code, and compilers do not vectorise it on
 * their own once the function is inlined into the hot loops. */
typedef double v2d __attribute__((vector_size(16)));

static ALWAYS_INLINE v2d load2(const double *p)
{
    v2d v;
    memcpy(&v, p, sizeof v);
    return v;
}

static ALWAYS_INLINE double sqdist(const double *a, const double *b, size_t d)
{
    v2d s01 = {0, 0}, s23 = {0, 0};
    size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        v2d t01 = load2(a + j) - load2(b + j), t23 = load2(a + j + 2) - load2(b + j + 2);
        s01 += t01 * t01;
        s23 += t23 * t23;
    }
    double s0 = s01[0];
    for (; j < d; j++) {
        double t = a[j] - b[j];
        s0 += t * t;
    }
    return (s0 + s01[1]) + (s23[0] + s23[1]);
}

/* s += w * x, two lanes at a time (the same operation per element). */
static ALWAYS_INLINE void add_scaled(double *s, const double *x, double w, size_t d)
{
    size_t j = 0;
    v2d wv = {w, w};
    for (; j + 2 <= d; j += 2) {
        v2d v = load2(s + j) + wv * load2(x + j);
        memcpy(s + j, &v, sizeof v);
    }
    for (; j < d; j++)
        s[j] += w * x[j];
}
#else
static ALWAYS_INLINE void add_scaled(double *s, const double *x, double w, size_t d)
{
    for (size_t j = 0; j < d; j++)
        s[j] += w * x[j];
}

static ALWAYS_INLINE double sqdist(const double *a, const double *b, size_t d)
{
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        double t0 = a[j] - b[j], t1 = a[j + 1] - b[j + 1];
        double t2 = a[j + 2] - b[j + 2], t3 = a[j + 3] - b[j + 3];
        s0 += t0 * t0;
        s1 += t1 * t1;
        s2 += t2 * t2;
        s3 += t3 * t3;
    }
    for (; j < d; j++) {
        double t = a[j] - b[j];
        s0 += t * t;
    }
    return (s0 + s1) + (s2 + s3);
}
#endif

typedef struct ws {
    const double *X, *w;
    size_t n, d, k;
    int nt;
    cvm_kmeans_algorithm alg;
    bool want_trace;
    size_t bs, nblocks;
    double *C, *Cn;      /* k x d: centres of this step, of the next */
    int32_t *lab;        /* n */
    double *u;           /* n upper bounds on the distance to the own centre */
    double *l;           /* Hamerly: n lower bounds on the second nearest; Elkan: n x k */
    double *shift;       /* k: how far each centre moved in the last update */
    double *half_min;    /* k: half the distance to the nearest other centre */
    double *cc;          /* k x k: half centre-centre distances (Elkan) */
    double *bsum;        /* nblocks x k x d partial coordinate sums */
    double *bw;          /* nblocks x k partial weights */
    uint64_t *bcnt;      /* nblocks x k partial member counts (weight > 0) */
    double *bj;          /* nblocks partial inertia */
    uint64_t *bchg;      /* nblocks labels changed */
    uint64_t *bev;       /* nblocks distances computed */
    double *S, *Wt;      /* k x d sums, k weights */
    uint64_t *cnt;       /* k members */
    double *dist;        /* n: seeding D^2; relocation: distance to own centre */
    double *dist2;       /* n: seeding, second smallest D^2 */
    double *E;           /* (trials rounded up to 4) x n: candidates' D^2 in seeding, when it
                            fits in 512 MB (else NULL: recomputed) */
    int32_t *near;       /* n: seeding, index of the nearest centre */
    double *bpot;        /* nblocks x trials partial potentials */
    size_t *cand;        /* trials */
    double *trace;
    size_t trace_len, trace_cap;
    /* maximum shift and the runner-up, for Hamerly's lower bound */
    double smax, smax2;
    size_t smax_j;
    int trials;
    uint64_t evals, relocations;
} ws;

static void ws_free(ws *W)
{
    cvm_free(W->C);
    cvm_free(W->Cn);
    cvm_free(W->lab);
    cvm_free(W->u);
    cvm_free(W->l);
    cvm_free(W->shift);
    cvm_free(W->half_min);
    cvm_free(W->cc);
    cvm_free(W->bsum);
    cvm_free(W->bw);
    cvm_free(W->bcnt);
    cvm_free(W->bj);
    cvm_free(W->bchg);
    cvm_free(W->bev);
    cvm_free(W->S);
    cvm_free(W->Wt);
    cvm_free(W->cnt);
    cvm_free(W->dist);
    cvm_free(W->dist2);
    cvm_free(W->E);
    cvm_free(W->near);
    cvm_free(W->bpot);
    cvm_free(W->cand);
    cvm_free(W->trace);
}

static cvm_kmeans_algorithm resolve(cvm_kmeans_algorithm a, size_t n, size_t k)
{
    if (a != CVM_KMEANS_AUTO)
        return a;
    /* Hamerly's single lower bound wins in the low dimensions of customer
     * features unless k is large; Elkan's n x k bounds must also fit. */
    if (k >= 32 && (double)n * (double)k * 8.0 <= 512.0 * 1024 * 1024)
        return CVM_KMEANS_ELKAN;
    return CVM_KMEANS_HAMERLY;
}

static int ws_alloc(ws *W, cvm_err *err)
{
    size_t n = W->n, d = W->d, k = W->k;
    W->bs = (n + BLOCKS_MAX - 1) / BLOCKS_MAX;
    if (W->bs < BLOCK_MIN)
        W->bs = BLOCK_MIN;
    W->nblocks = (n + W->bs - 1) / W->bs;
    size_t nb = W->nblocks;
    /* No more threads than blocks: a team waiting at a barrier for work it
     * cannot get only costs time (much of it on a busy machine). */
    if ((size_t)W->nt > nb)
        W->nt = (int)nb;
    size_t tr = (size_t)W->trials;
#define A(ptr, cnt) ((ptr) = cvm_calloc((cnt) > 0 ? (cnt) : 1, sizeof *(ptr))) == NULL
    if (A(W->C, k * d) || A(W->Cn, k * d) || A(W->lab, n) || A(W->shift, k) ||
        A(W->half_min, k) || A(W->bsum, nb * k * d) || A(W->bw, nb * k) || A(W->bcnt, nb * k) ||
        A(W->bj, nb) || A(W->bchg, nb) || A(W->bev, nb) || A(W->S, k * d) || A(W->Wt, k) ||
        A(W->cnt, k) || A(W->dist, n) || A(W->dist2, n) || A(W->near, n) ||
        A(W->bpot, nb * tr) || A(W->cand, tr))
        goto nomem;
    /* Optional: without it seeding recomputes the chosen candidate's
     * distances, one more pass over X per centre. */
    size_t tr4 = (tr + 3) / 4 * 4;
    if (k > 1 && (double)n * (double)tr4 * sizeof(double) <= 512.0 * 1024 * 1024)
        W->E = cvm_malloc(n * tr4 * sizeof *W->E);
    if (W->alg == CVM_KMEANS_HAMERLY && (A(W->u, n) || A(W->l, n)))
        goto nomem;
    if (W->alg == CVM_KMEANS_ELKAN && (A(W->u, n) || A(W->l, n * k) || A(W->cc, k * k)))
        goto nomem;
#undef A
    return CVM_OK;
nomem:
    return CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory for %zu points x %zu centres", n, k);
}

static size_t block_end(const ws *W, size_t b)
{
    size_t e = (b + 1) * W->bs;
    return e < W->n ? e : W->n;
}

static double weight(const ws *W, size_t i) { return W->w ? W->w[i] : 1.0; }

/* -------------------------------------------------------------- seeding */

/* Index of the point where the running sum of masses w_i * dist_i first
 * exceeds r, found through the block totals bpot[b * stride + t]. */
static size_t sample_mass(const ws *W, double r, size_t stride, size_t t)
{
    size_t last = W->n;
    double cum = 0;
    for (size_t b = 0; b < W->nblocks; b++) {
        double m = W->bpot[b * stride + t];
        if (r >= cum + m && b + 1 < W->nblocks) {
            cum += m;
            continue;
        }
        for (size_t i = b * W->bs; i < block_end(W, b); i++) {
            double mi = weight(W, i) * W->dist[i];
            if (mi <= 0)
                continue;
            last = i;
            cum += mi;
            if (cum > r)
                return i;
        }
    }
    /* Rounding left r at or above the total: the last point with mass. */
    return last < W->n ? last : W->n - 1;
}

/* Potentials of the seeding candidates over block b: up to four candidates
 * per visit of a point (its row is read once); the sums stay in registers
 * (summed in memory slots, every point would wait for the previous one).
 * Each candidate's distances are kept in E when it was allocated. */
static ALWAYS_INLINE void potential_block_d(ws *W, size_t b, size_t d)
{
    const double *X = W->X;
    const size_t tr = (size_t)W->trials, n = W->n;
    const size_t lo = b * W->bs, hi = block_end(W, b);
    for (size_t t = 0; t < tr; t += 4) {
        /* A short last group repeats candidate t; its sums are dropped and
         * E has rows for it (E is allocated for a multiple of 4). */
        const size_t g = tr - t < 4 ? tr - t : 4;
        const double *c0 = X + W->cand[t] * d;
        const double *c1 = X + W->cand[t + (g > 1 ? 1 : 0)] * d;
        const double *c2 = X + W->cand[t + (g > 2 ? 2 : 0)] * d;
        const double *c3 = X + W->cand[t + (g > 3 ? 3 : 0)] * d;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
#define CVM__POT_POINT(STORE)                                                   \
    do {                                                                        \
        const double *x = X + i * d;                                            \
        double e0 = sqdist(x, c0, d), e1 = sqdist(x, c1, d);                    \
        double e2 = sqdist(x, c2, d), e3 = sqdist(x, c3, d);                    \
        double di = W->dist[i], wi = weight(W, i);                              \
        s0 += wi * (e0 < di ? e0 : di);                                         \
        s1 += wi * (e1 < di ? e1 : di);                                         \
        s2 += wi * (e2 < di ? e2 : di);                                         \
        s3 += wi * (e3 < di ? e3 : di);                                         \
        STORE;                                                                  \
    } while (0)
        if (W->E) {
            double *E0 = W->E + t * n, *E1 = E0 + n, *E2 = E1 + n, *E3 = E2 + n;
            for (size_t i = lo; i < hi; i++)
                CVM__POT_POINT((E0[i] = e0, E1[i] = e1, E2[i] = e2, E3[i] = e3));
        } else {
            for (size_t i = lo; i < hi; i++)
                CVM__POT_POINT((void)0);
        }
#undef CVM__POT_POINT
        double sv[4] = {s0, s1, s2, s3};
        for (size_t q = 0; q < g; q++)
            W->bpot[b * tr + t + q] = sv[q];
    }
}

/* The hot loops with d a constant for the usual feature counts, so the
 * distance is unrolled; same operations in the same order as the generic
 * case, so the same bits. */
#define DISPATCH_D(fn, d, ...)                          \
    switch (d) {                                        \
    case 1: fn(__VA_ARGS__, 1); break;                  \
    case 2: fn(__VA_ARGS__, 2); break;                  \
    case 3: fn(__VA_ARGS__, 3); break;                  \
    case 4: fn(__VA_ARGS__, 4); break;                  \
    case 5: fn(__VA_ARGS__, 5); break;                  \
    case 6: fn(__VA_ARGS__, 6); break;                  \
    case 7: fn(__VA_ARGS__, 7); break;                  \
    case 8: fn(__VA_ARGS__, 8); break;                  \
    default: fn(__VA_ARGS__, d); break;                 \
    }

static void potential_block(ws *W, size_t b) { DISPATCH_D(potential_block_d, W->d, W, b) }

/* Greedy k-means++ (the variant of scikit-learn): each new centre is the
 * best of `trials` candidates drawn by D^2 weighting. Every distance is
 * computed: pruning by the triangle inequality saves arithmetic but its
 * branch is unpredictable (points of all clusters are interleaved), and a
 * mispredicted branch costs more than the 8-dimensional distance it saves.
 *
 * Centres are added in index order and each point's nearest and second
 * nearest are updated exactly as nearest2 does over j = 0..k-1, with the
 * same sqdist of the same doubles (a centre is a copy of its row): the
 * first assignment takes them as they are (ASSIGN_SEEDED), a pass saved. */
static void seed_centers(ws *W, gsl_rng *rng)
{
    const size_t n = W->n, d = W->d, k = W->k, nb = W->nblocks;
    const size_t tr = (size_t)W->trials;
    const double *X = W->X;
    size_t first;
    if (W->w == NULL) {
        first = (size_t)gsl_rng_uniform_int(rng, (unsigned long)n);
    } else {
        /* Probability proportional to weight: masses w_i * 1. */
        for (size_t i = 0; i < n; i++)
            W->dist[i] = 1;
        double tot = 0;
        for (size_t b = 0; b < nb; b++) {
            double s = 0;
            for (size_t i = b * W->bs; i < block_end(W, b); i++)
                s += W->w[i];
            W->bpot[b * tr] = s;
            tot += s;
        }
        first = sample_mass(W, gsl_rng_uniform(rng) * tot, tr, 0);
    }
    memcpy(W->C, X + first * d, d * sizeof *W->C);
    const long lnb = (long)nb;
#pragma omp parallel for schedule(dynamic, 1) num_threads(W->nt) default(none) shared(W, X) \
    firstprivate(lnb, d, tr)
    for (long b = 0; b < lnb; b++) {
        double s = 0;
        for (size_t i = (size_t)b * W->bs; i < block_end(W, (size_t)b); i++) {
            W->dist[i] = sqdist(X + i * d, W->C, d);
            W->dist2[i] = INFINITY;
            W->near[i] = 0;
            s += weight(W, i) * W->dist[i];
        }
        W->bpot[(size_t)b * tr] = s;
    }
    double pot = 0;
    for (size_t b = 0; b < nb; b++)
        pot += W->bpot[b * tr];

    for (size_t c = 1; c < k; c++) {
        for (size_t t = 0; t < tr; t++) {
            double r = gsl_rng_uniform(rng) * pot;
            W->cand[t] = pot > 0 ? sample_mass(W, r, tr, 0)
                                 : (size_t)gsl_rng_uniform_int(rng, (unsigned long)n);
        }
        /* Potential of each candidate, block by block. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(W->nt) default(none) shared(W) \
    firstprivate(lnb)
        for (long b = 0; b < lnb; b++)
            potential_block(W, (size_t)b);
        size_t best = 0;
        double best_pot = INFINITY;
        for (size_t t = 0; t < tr; t++) {
            double s = 0;
            for (size_t b = 0; b < nb; b++)
                s += W->bpot[b * tr + t];
            if (s < best_pot) {
                best_pot = s;
                best = t;
            }
        }
        const double *cb = X + W->cand[best] * d;
        const double *Eb = W->E ? W->E + best * n : NULL;
        memcpy(W->C + c * d, cb, d * sizeof *W->C);
#pragma omp parallel for schedule(dynamic, 1) num_threads(W->nt) default(none) shared(W, X) \
    firstprivate(lnb, d, tr, cb, c, Eb)
        for (long b = 0; b < lnb; b++) {
            double s = 0;
            for (size_t i = (size_t)b * W->bs; i < block_end(W, (size_t)b); i++) {
                double e = Eb ? Eb[i] : sqdist(X + i * d, cb, d), di = W->dist[i];
                double hi = e < di ? di : e;
                W->dist2[i] = hi < W->dist2[i] ? hi : W->dist2[i];
                W->near[i] = e < di ? (int32_t)c : W->near[i];
                W->dist[i] = e < di ? e : di;
                s += weight(W, i) * W->dist[i];
            }
            W->bpot[(size_t)b * tr] = s;
        }
        pot = 0;
        for (size_t b = 0; b < nb; b++)
            pot += W->bpot[b * tr];
    }
}

/* ------------------------------------------------------------ assignment */

/* FULL: every distance; SEEDED: the seeding's nearest two; BOUNDS: Lloyd,
 * or Hamerly / Elkan with their bounds; FINAL: BOUNDS without the sums. */
enum { ASSIGN_FULL, ASSIGN_SEEDED, ASSIGN_BOUNDS, ASSIGN_FINAL };

/* Full scan: nearest (ties: lowest index) and second nearest squared
 * distance. Written as selects, not branches: which centre wins is as good
 * as random from one point to the next, and mispredictions would cost more
 * than the distances. */
static ALWAYS_INLINE size_t nearest2(const ws *W, const double *x, double *b1, double *b2,
                                     size_t d)
{
    size_t best = 0;
    double d1 = INFINITY, d2 = INFINITY;
    for (size_t j = 0; j < W->k; j++) {
        double e = sqdist(x, W->C + j * d, d);
        double hi = e < d1 ? d1 : e; /* the loser of e and d1 */
        d2 = hi < d2 ? hi : d2;
        best = e < d1 ? j : best;
        d1 = e < d1 ? e : d1;
    }
    *b1 = d1;
    *b2 = d2;
    return best;
}

/* Assign the rows of block b and accumulate its partial sums. */
static ALWAYS_INLINE void assign_block_d(ws *W, size_t b, int mode, bool want_j, size_t d)
{
    const size_t k = W->k;
    /* The last pass only labels and measures: no centre update follows. */
    const bool want_sums = mode != ASSIGN_FINAL;
    double *bs = W->bsum + b * k * d, *bw = W->bw + b * k;
    uint64_t *bc = W->bcnt + b * k;
    if (want_sums) {
        memset(bs, 0, k * d * sizeof *bs);
        memset(bw, 0, k * sizeof *bw);
        memset(bc, 0, k * sizeof *bc);
    }
    uint64_t chg = 0, ev = 0;
    double jsum = 0;
    for (size_t i = b * W->bs; i < block_end(W, b); i++) {
        const double *x = W->X + i * d;
        int32_t old = W->lab[i];
        size_t a = (size_t)old;
        double own2 = NAN; /* squared distance to the own centre, when known */
        if (mode == ASSIGN_FULL && W->alg == CVM_KMEANS_ELKAN) {
            /* Elkan keeps every distance as a lower bound; the argmin is
             * Lloyd's (strict <: ties go to the lowest index). */
            double *li = W->l + i * k, d1 = INFINITY;
            a = 0;
            for (size_t j = 0; j < k; j++) {
                double e = sqdist(x, W->C + j * d, d);
                li[j] = sqrt(e);
                if (e < d1) {
                    d1 = e;
                    a = j;
                }
            }
            ev += k;
            own2 = d1;
            W->u[i] = sqrt(d1);
        } else if (mode == ASSIGN_FULL || mode == ASSIGN_SEEDED || W->alg == CVM_KMEANS_LLOYD) {
            double d1, d2;
            if (mode == ASSIGN_SEEDED) {
                a = (size_t)W->near[i];
                d1 = W->dist[i];
                d2 = W->dist2[i];
            } else {
                a = nearest2(W, x, &d1, &d2, d);
                ev += k;
            }
            own2 = d1;
            if (W->alg == CVM_KMEANS_HAMERLY) {
                W->u[i] = sqrt(d1);
                W->l[i] = sqrt(d2);
            }
        } else if (W->alg == CVM_KMEANS_HAMERLY) {
            double ub = W->u[i] + W->shift[a];
            double lb = W->l[i] - (a == W->smax_j ? W->smax2 : W->smax);
            double m = W->half_min[a] > lb ? W->half_min[a] : lb;
            double lim = m * (1 - SLACK);
            if (!(ub < lim)) {
                own2 = sqdist(x, W->C + a * d, d);
                ev++;
                ub = sqrt(own2);
                if (!(ub < lim)) {
                    double d1, d2;
                    a = nearest2(W, x, &d1, &d2, d);
                    ev += k;
                    own2 = d1;
                    ub = sqrt(d1);
                    lb = sqrt(d2);
                }
            }
            W->u[i] = ub;
            W->l[i] = lb;
        } else { /* Elkan */
            double *li = W->l + i * k;
            for (size_t j = 0; j < k; j++) {
                li[j] -= W->shift[j];
                if (li[j] < 0)
                    li[j] = 0;
            }
            double ub = W->u[i] + W->shift[a];
            if (!(ub < W->half_min[a] * (1 - SLACK))) {
                bool stale = true;
                double da2 = NAN;
                for (size_t j = 0; j < k; j++) {
                    if (j == a)
                        continue;
                    double z = li[j] > W->cc[a * k + j] ? li[j] : W->cc[a * k + j];
                    if (ub < z * (1 - SLACK))
                        continue;
                    if (stale) {
                        da2 = sqdist(x, W->C + a * d, d);
                        ev++;
                        ub = sqrt(da2);
                        li[a] = ub;
                        stale = false;
                        if (ub < z * (1 - SLACK))
                            continue;
                    }
                    double e = sqdist(x, W->C + j * d, d);
                    ev++;
                    li[j] = sqrt(e);
                    if (e < da2 || (e == da2 && j < a)) {
                        a = j;
                        da2 = e;
                        ub = li[j];
                    }
                }
                if (!stale)
                    own2 = da2;
            }
            W->u[i] = ub;
        }
        if (want_j) {
            if (isnan(own2)) {
                own2 = sqdist(x, W->C + a * d, d);
            }
            jsum += weight(W, i) * own2;
        }
        if ((int32_t)a != old)
            chg++;
        W->lab[i] = (int32_t)a;
        double wi = weight(W, i);
        if (want_sums && wi > 0) {
            add_scaled(bs + a * d, x, wi, d);
            bw[a] += wi;
            bc[a]++;
        }
    }
    W->bchg[b] = chg;
    W->bev[b] = ev;
    W->bj[b] = jsum;
}

static void assign_block(ws *W, size_t b, int mode, bool want_j)
{
    DISPATCH_D(assign_block_d, W->d, W, b, mode, want_j)
}

/* One assignment pass over every block; returns the labels changed. */
static uint64_t assign(ws *W, int mode, bool want_j, double *inertia)
{
    const long lnb = (long)W->nblocks;
    if ((mode == ASSIGN_BOUNDS || mode == ASSIGN_FINAL) && W->alg != CVM_KMEANS_LLOYD) {
        /* Hamerly's lower bound drops by the largest shift of another centre. */
        W->smax = W->smax2 = 0;
        W->smax_j = 0;
        for (size_t j = 0; j < W->k; j++) {
            if (W->shift[j] > W->smax) {
                W->smax2 = W->smax;
                W->smax = W->shift[j];
                W->smax_j = j;
            } else if (W->shift[j] > W->smax2) {
                W->smax2 = W->shift[j];
            }
        }
        /* Half the distance to the nearest other centre (and Elkan's pairs). */
        for (size_t a = 0; a < W->k; a++)
            W->half_min[a] = INFINITY;
        for (size_t a = 0; a < W->k; a++)
            for (size_t b = a + 1; b < W->k; b++) {
                double h = 0.5 * sqrt(sqdist(W->C + a * W->d, W->C + b * W->d, W->d));
                if (h < W->half_min[a])
                    W->half_min[a] = h;
                if (h < W->half_min[b])
                    W->half_min[b] = h;
                if (W->cc) {
                    W->cc[a * W->k + b] = h;
                    W->cc[b * W->k + a] = h;
                }
            }
    }
#pragma omp parallel for schedule(dynamic, 1) num_threads(W->nt) default(none) shared(W) \
    firstprivate(lnb, mode, want_j)
    for (long b = 0; b < lnb; b++)
        assign_block(W, (size_t)b, mode, want_j);
    uint64_t chg = 0;
    double j = 0;
    for (size_t b = 0; b < W->nblocks; b++) {
        chg += W->bchg[b];
        W->evals += W->bev[b];
        j += W->bj[b];
    }
    if (inertia)
        *inertia = j;
    return chg;
}

/* ---------------------------------------------------------------- update */

/* Re-seed empty clusters with the points farthest from their own centre
 * (taken from clusters that keep a member); returns how many moved. */
static size_t relocate(ws *W)
{
    const size_t n = W->n, d = W->d, k = W->k;
    size_t moved = 0;
    bool have_dist = false;
    for (size_t j = 0; j < k; j++) {
        if (W->cnt[j] > 0)
            continue;
        if (!have_dist) {
            const long lnb = (long)W->nblocks;
#pragma omp parallel for schedule(dynamic, 1) num_threads(W->nt) default(none) shared(W) \
    firstprivate(lnb, d)
            for (long b = 0; b < lnb; b++)
                for (size_t i = (size_t)b * W->bs; i < block_end(W, (size_t)b); i++)
                    W->dist[i] = weight(W, i) > 0
                                     ? sqdist(W->X + i * d, W->C + (size_t)W->lab[i] * d, d)
                                     : -1;
            have_dist = true;
        }
        /* A point on its centre would leave the inertia as it is and come
         * straight back: only a positive distance is worth a move. */
        size_t far = n;
        for (size_t i = 0; i < n; i++)
            if (W->dist[i] > 0 && W->cnt[W->lab[i]] > 1 && (far == n || W->dist[i] > W->dist[far]))
                far = i;
        if (far == n)
            continue; /* the centre stays where it was */
        size_t old = (size_t)W->lab[far];
        const double *x = W->X + far * d;
        double wi = weight(W, far);
        for (size_t c = 0; c < d; c++) {
            W->S[old * d + c] -= wi * x[c];
            W->S[j * d + c] = wi * x[c];
        }
        W->Wt[old] -= wi;
        W->Wt[j] = wi;
        W->cnt[old]--;
        W->cnt[j] = 1;
        W->lab[far] = (int32_t)j;
        W->dist[far] = -1;
        /* The moved point's bounds say nothing any more: force a full look. */
        if (W->alg == CVM_KMEANS_HAMERLY) {
            W->u[far] = INFINITY;
            W->l[far] = 0;
        } else if (W->alg == CVM_KMEANS_ELKAN) {
            W->u[far] = INFINITY;
            memset(W->l + far * k, 0, k * sizeof *W->l);
        }
        moved++;
    }
    return moved;
}

/* New centres from the block sums; returns the total squared shift. */
static double update(ws *W, size_t *moved)
{
    const size_t d = W->d, k = W->k, nb = W->nblocks;
    memset(W->S, 0, k * d * sizeof *W->S);
    memset(W->Wt, 0, k * sizeof *W->Wt);
    memset(W->cnt, 0, k * sizeof *W->cnt);
    for (size_t b = 0; b < nb; b++) {
        const double *bs = W->bsum + b * k * d;
        for (size_t j = 0; j < k * d; j++)
            W->S[j] += bs[j];
        for (size_t j = 0; j < k; j++) {
            W->Wt[j] += W->bw[b * k + j];
            W->cnt[j] += W->bcnt[b * k + j];
        }
    }
    *moved = relocate(W);
    W->relocations += *moved;
    double tot = 0;
    for (size_t j = 0; j < k; j++) {
        double *cn = W->Cn + j * d;
        const double *c = W->C + j * d;
        if (W->cnt[j] == 0) {
            memcpy(cn, c, d * sizeof *cn); /* nothing to re-seed it with */
        } else {
            for (size_t q = 0; q < d; q++)
                cn[q] = W->S[j * d + q] / W->Wt[j];
        }
        double s2 = sqdist(cn, c, d);
        W->shift[j] = sqrt(s2);
        tot += s2;
    }
    double *t = W->C;
    W->C = W->Cn;
    W->Cn = t;
    return tot;
}

static int trace_push(ws *W, double v)
{
    if (W->trace_len == W->trace_cap) {
        size_t cap = W->trace_cap ? 2 * W->trace_cap : 64;
        double *t = cvm_reallocarray(W->trace, cap, sizeof *t);
        if (t == NULL)
            return CVM_ENOMEM;
        W->trace = t;
        W->trace_cap = cap;
    }
    W->trace[W->trace_len++] = v;
    return CVM_OK;
}

/* One restart: seed, iterate, final labels against the final centres. */
static int run_once(ws *W, gsl_rng *rng, const double *init, int max_iter, double tol_abs,
                    double *inertia, int *n_iter, bool *converged, cvm_err *err)
{
    if (init)
        memcpy(W->C, init, W->k * W->d * sizeof *W->C);
    else
        seed_centers(W, rng);
    W->trace_len = 0;
    for (size_t i = 0; i < W->n; i++)
        W->lab[i] = -1;
    /* Iterations are counted as scikit-learn does: one per assignment +
     * update, including the one that finds the labels unchanged. */
    *converged = false;
    *n_iter = max_iter;
    for (int it = 0; it < max_iter; it++) {
        double j = 0;
        int mode = it > 0 ? ASSIGN_BOUNDS
                   : init || W->alg == CVM_KMEANS_ELKAN ? ASSIGN_FULL : ASSIGN_SEEDED;
        uint64_t chg = assign(W, mode, W->want_trace, &j);
        if (W->want_trace && trace_push(W, j) != CVM_OK)
            return CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory for the trace");
        if (chg == 0 && it > 0) {
            /* Same labels as the step before: the centres are already their
             * means, a fixed point. The bounds have taken in the last
             * shifts; the final pass below must not apply them twice. */
            memset(W->shift, 0, W->k * sizeof *W->shift);
            *converged = true;
            *n_iter = it + 1;
            break;
        }
        size_t moved;
        double shift2 = update(W, &moved);
        if (moved == 0 && shift2 <= tol_abs) {
            *converged = true;
            *n_iter = it + 1;
            break;
        }
    }
    /* Labels consistent with the final centres, and the exact inertia. */
    double j = 0;
    assign(W, ASSIGN_FINAL, true, &j);
    if (W->want_trace && (W->trace_len == 0 || W->trace[W->trace_len - 1] != j) &&
        trace_push(W, j) != CVM_OK)
        return CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory for the trace");
    *inertia = j;
    return CVM_OK;
}

/* One thread's share of the restarts: its workspace and its best run. */
typedef struct worker {
    ws W;
    gsl_rng *rng;
    int32_t *best_lab;
    double *best_C;
    double best;
    int best_r; /* restart number of best, -1 before the first */
    int it;
    bool conv;
    double *trace;
    size_t trace_len;
    int rc;
    cvm_err err;
} worker;

#ifdef _OPENMP
static int thread_id(void) { return omp_get_thread_num(); }
#else
static int thread_id(void) { return 0; }
#endif

int cvm_kmeans_fit(cvm_kmeans *km, const double *X, size_t n, size_t d, const double *w,
                   cvm_err *err)
{
    unfit(km);
    const size_t k = km->p.k;
    if (d == 0)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: no features (d = 0)");
    if (n < k)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: %zu points for k = %zu clusters", n, k);
    if (n > (size_t)INT32_MAX)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: %zu points, at most %d", n, INT32_MAX);
    double wsum = 0;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            if (!isfinite(X[i * d + j]))
                return CVM_FAIL(err, CVM_EINVAL, "kmeans: row %zu column %zu is not a finite number",
                                i, j);
        if (w) {
            if (!(w[i] >= 0) || !isfinite(w[i]))
                return CVM_FAIL(err, CVM_EINVAL, "kmeans: weight of row %zu is %g", i, w[i]);
            wsum += w[i];
        }
    }
    if (w && !(wsum > 0))
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: all weights are zero");

    /* tol is relative to the data's spread, as in scikit-learn: the mean
     * over columns of the (unweighted) variance. */
    double tol_abs = 0;
    for (size_t j = 0; j < d; j++) {
        double mean = 0, m2 = 0;
        for (size_t i = 0; i < n; i++)
            mean += X[i * d + j];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) {
            double t = X[i * d + j] - mean;
            m2 += t * t;
        }
        tol_abs += m2 / (double)n;
    }
    tol_abs = tol_abs / (double)d * km->p.tol;
    if (km->init && km->init_d != d)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: initial centres have %zu columns, X has %zu",
                        km->init_d, d);

    /* Restarts are independent: with enough of them, each thread runs whole
     * restarts (no barrier at all, which matters on a busy machine);
     * otherwise one restart at a time uses every thread over blocks. Either
     * way every restart computes the same bits, and the best is the lowest
     * (inertia, restart number), so the result does not depend on it. The
     * trace is kept by one worker only. */
    const int runs = km->init ? 1 : km->p.n_init;
    const int nt = cvm_threads(km->p.threads);
    const int par = (!km->p.trace && runs >= 2 && nt >= 2) ? (runs < nt ? runs : nt) : 1;
    worker *wk = cvm_calloc((size_t)par, sizeof *wk);
    uint64_t *seeds = cvm_malloc((size_t)runs * sizeof *seeds);
    gsl_rng *master = gsl_rng_alloc(gsl_rng_mt19937);
    km->centers = cvm_malloc(k * d * sizeof *km->centers);
    km->labels = cvm_malloc(n * sizeof *km->labels);
    int rc = CVM_OK;
    if (!wk || !seeds || !master || !km->centers || !km->labels) {
        rc = CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory for %zu points", n);
        goto done;
    }
    for (int q = 0; q < par && rc == CVM_OK; q++) {
        worker *o = &wk[q];
        o->W.X = X;
        o->W.w = w;
        o->W.n = n;
        o->W.d = d;
        o->W.k = k;
        o->W.nt = par > 1 ? 1 : nt;
        o->W.alg = resolve(km->p.algorithm, n, k);
        o->W.want_trace = km->p.trace;
        o->W.trials = km->p.local_trials > 0 ? km->p.local_trials : 2 + (int)floor(log((double)k));
        o->best_r = -1;
        o->rng = gsl_rng_alloc(gsl_rng_mt19937);
        o->best_lab = cvm_malloc(n * sizeof *o->best_lab);
        o->best_C = cvm_malloc(k * d * sizeof *o->best_C);
        if (!o->rng || !o->best_lab || !o->best_C)
            rc = CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory for %zu points", n);
        else
            rc = ws_alloc(&o->W, err);
    }
    if (rc != CVM_OK)
        goto done;
    gsl_rng_set(master, (unsigned long)km->p.seed);
    for (int r = 0; r < runs; r++)
        seeds[r] = gsl_rng_get(master);

    const cvm_kmeans *ckm = km;
#pragma omp parallel for schedule(dynamic, 1) num_threads(par) default(none) \
    shared(wk, seeds, ckm) firstprivate(runs, tol_abs, n, k, d)
    for (int r = 0; r < runs; r++) {
        worker *o = &wk[thread_id()];
        if (o->rc != CVM_OK)
            continue;
        gsl_rng_set(o->rng, (unsigned long)seeds[r]);
        double inertia = INFINITY;
        int it = 0;
        bool conv = false;
        o->rc = run_once(&o->W, o->rng, ckm->init, ckm->p.max_iter, tol_abs, &inertia, &it, &conv,
                         &o->err);
        if (o->rc != CVM_OK)
            continue;
        if (o->best_r < 0 || inertia < o->best || (inertia == o->best && r < o->best_r)) {
            /* Keep the labels by swapping buffers: the next restart
             * overwrites the other one anyway. */
            int32_t *t = o->best_lab;
            o->best_lab = o->W.lab;
            o->W.lab = t;
            memcpy(o->best_C, o->W.C, k * d * sizeof *o->best_C);
            o->best = inertia;
            o->best_r = r;
            o->it = it;
            o->conv = conv;
            if (o->W.want_trace) {
                cvm_free(o->trace);
                o->trace = o->W.trace;
                o->trace_len = o->W.trace_len;
                o->W.trace = NULL;
                o->W.trace_len = o->W.trace_cap = 0;
            }
        }
    }
    worker *b = NULL;
    for (int q = 0; q < par; q++) {
        worker *o = &wk[q];
        if (o->rc != CVM_OK) {
            if (rc == CVM_OK) {
                rc = o->rc;
                if (err)
                    *err = o->err;
            }
            continue;
        }
        km->st.distance_evals += o->W.evals;
        km->st.relocations += o->W.relocations;
        if (o->best_r >= 0 && (b == NULL || o->best < b->best ||
                               (o->best == b->best && o->best_r < b->best_r)))
            b = o;
    }
    if (rc != CVM_OK)
        goto done;
    memcpy(km->centers, b->best_C, k * d * sizeof *km->centers);
    memcpy(km->labels, b->best_lab, n * sizeof *km->labels);
    km->inertia = b->best;
    km->st.n_iter = b->it;
    km->st.converged = b->conv;
    km->st.algorithm = b->W.alg;
    km->trace = b->trace;
    km->trace_len = b->trace_len;
    b->trace = NULL;
    km->n = n;
    km->d = d;
    km->fitted = true;
done:
    for (int q = 0; wk && q < par; q++) {
        ws_free(&wk[q].W);
        gsl_rng_free(wk[q].rng);
        cvm_free(wk[q].best_lab);
        cvm_free(wk[q].best_C);
        cvm_free(wk[q].trace);
    }
    cvm_free(wk);
    cvm_free(seeds);
    gsl_rng_free(master);
    if (rc != CVM_OK)
        unfit(km);
    return rc;
}

int cvm_kmeans_predict(const cvm_kmeans *km, const double *Y, size_t m, size_t d,
                       int32_t *labels, double *sqd, cvm_err *err)
{
    if (!km->fitted)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: predict before a successful fit");
    if (d != km->d)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: predict with %zu columns, fitted with %zu", d,
                        km->d);
    const size_t k = km->p.k;
    const double *C = km->centers;
    const long lm = (long)m;
#pragma omp parallel for schedule(static) num_threads(cvm_threads(km->p.threads)) default(none) \
    shared(Y, labels, sqd, C) firstprivate(lm, d, k)
    for (long i = 0; i < lm; i++) {
        const double *y = Y + (size_t)i * d;
        size_t best = 0;
        double b = INFINITY;
        for (size_t j = 0; j < k; j++) {
            double e = sqdist(y, C + j * d, d);
            if (e < b) {
                b = e;
                best = j;
            }
        }
        labels[i] = (int32_t)best;
        if (sqd)
            sqd[i] = b;
    }
    return CVM_OK;
}

/* ------------------------------------------------------------ choosing k */

void cvm_kmeans_select_params_default(cvm_kmeans_select_params *p)
{
    p->k_min = 2;
    p->k_max = 8;
    p->criterion = CVM_KMEANS_SILHOUETTE;
    p->silhouette_sample = 10000;
    p->stability_runs = 3;
}

const char *cvm_kmeans_select_params_check(const cvm_kmeans_select_params *p)
{
    if (p->k_min < 1 || p->k_max < p->k_min)
        return "k range must have 1 <= k_min <= k_max";
    if (p->k_max - p->k_min >= 1000)
        return "at most 1000 values of k";
    if ((unsigned)p->criterion > CVM_KMEANS_STABILITY)
        return "unknown k criterion";
    if (p->silhouette_sample != 0 && p->silhouette_sample < 2)
        return "silhouette_sample must be 0 (exact) or at least 2";
    if (p->stability_runs < 0 || p->stability_runs > 100)
        return "stability_runs must be within [0, 100]";
    if (p->criterion == CVM_KMEANS_STABILITY && p->stability_runs < 1)
        return "the stability criterion needs stability_runs >= 1";
    if (p->criterion != CVM_KMEANS_ELBOW && p->k_max < 2)
        return "every criterion but elbow needs k >= 2";
    return NULL;
}

int cvm_kmeans_pick(const cvm_kmeans_kscore *t, size_t m, cvm_kmeans_criterion c)
{
    int best = -1;
    if (c == CVM_KMEANS_ELBOW) {
        if (m == 0)
            return -1;
        double j0 = t[0].inertia, j1 = t[m - 1].inertia;
        double k0 = (double)t[0].k, k1 = (double)t[m - 1].k;
        if (!(j0 > j1) || m < 3)
            return 0;
        double gap = -INFINITY;
        for (size_t i = 0; i < m; i++) {
            double x = (t[i].k - k0) / (k1 - k0);
            double y = (t[i].inertia - j1) / (j0 - j1);
            double g = (1 - x) - y; /* how far below the chord */
            if (g > gap) {
                gap = g;
                best = (int)i;
            }
        }
        return best;
    }
    if (c == CVM_KMEANS_STABILITY)
        for (size_t i = m; i-- > 0;)
            if (t[i].stability >= CVM_KMEANS_STABLE_ARI)
                return (int)i;
    double bv = 0;
    for (size_t i = 0; i < m; i++) {
        double v = c == CVM_KMEANS_SILHOUETTE        ? t[i].silhouette
                   : c == CVM_KMEANS_CALINSKI_HARABASZ ? t[i].calinski_harabasz
                   : c == CVM_KMEANS_DAVIES_BOULDIN    ? -t[i].davies_bouldin
                                                       : t[i].stability;
        if (isnan(v))
            continue;
        if (best < 0 || v > bv) {
            best = (int)i;
            bv = v;
        }
    }
    return best;
}

/* Seeds of the stability fits: far from the main seed, distinct per run. */
static uint64_t stability_seed(uint64_t seed, int r)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (uint64_t)(r + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return (z ^ (z >> 31)) & 0xffffffffULL;
}

int cvm_kmeans_select(const cvm_kmeans_params *base, const cvm_kmeans_select_params *sp,
                      const double *X, size_t n, size_t d, cvm_kmeans_kscore *table,
                      cvm_kmeans **best, cvm_err *err)
{
    *best = NULL;
    const char *why = cvm_kmeans_select_params_check(sp);
    if (why)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: %s", why);
    if (sp->k_max > n)
        return CVM_FAIL(err, CVM_EINVAL, "kmeans: k up to %zu needs at least as many points, got %zu",
                        sp->k_max, n);
    size_t m = sp->k_max - sp->k_min + 1;
    cvm_kmeans **models = cvm_calloc(m, sizeof *models);
    if (models == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory");
    int rc = CVM_OK;
    for (size_t i = 0; i < m && rc == CVM_OK; i++) {
        cvm_kmeans_params p = *base;
        p.k = sp->k_min + i;
        cvm_kmeans_kscore *row = &table[i];
        memset(row, 0, sizeof *row);
        row->k = p.k;
        row->silhouette = row->calinski_harabasz = row->davies_bouldin = row->stability = NAN;
        models[i] = cvm_kmeans_new(&p);
        if (models[i] == NULL) {
            rc = cvm_kmeans_params_check(&p)
                     ? CVM_FAIL(err, CVM_EINVAL, "kmeans: %s", cvm_kmeans_params_check(&p))
                     : CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory");
            break;
        }
        rc = cvm_kmeans_fit(models[i], X, n, d, NULL, err);
        if (rc != CVM_OK)
            break;
        const int32_t *lab = cvm_kmeans_labels(models[i]);
        row->inertia = cvm_kmeans_inertia(models[i]);
        row->n_iter = models[i]->st.n_iter;
        /* The same sample for every k, so the values compare. */
        rc = cvm_cluster_silhouette(X, n, d, lab, p.k, sp->silhouette_sample, base->seed,
                                    base->threads, &row->silhouette, err);
        if (rc == CVM_OK)
            rc = cvm_cluster_calinski_harabasz(X, n, d, lab, p.k, &row->calinski_harabasz, err);
        if (rc == CVM_OK)
            rc = cvm_cluster_davies_bouldin(X, n, d, lab, p.k, &row->davies_bouldin, err);
        if (rc == CVM_OK && sp->stability_runs > 0 && p.k >= 2) {
            double sum = 0;
            cvm_kmeans_params q = p;
            q.n_init = 1;
            q.trace = false;
            for (int r = 0; r < sp->stability_runs && rc == CVM_OK; r++) {
                q.seed = stability_seed(base->seed, r);
                cvm_kmeans *other = cvm_kmeans_new(&q);
                if (other == NULL) {
                    rc = CVM_FAIL(err, CVM_ENOMEM, "kmeans: out of memory");
                    break;
                }
                double ari = NAN;
                rc = cvm_kmeans_fit(other, X, n, d, NULL, err);
                if (rc == CVM_OK)
                    rc = cvm_cluster_ari(lab, cvm_kmeans_labels(other), n, &ari, err);
                sum += ari;
                cvm_kmeans_free(other);
            }
            row->stability = sum / sp->stability_runs;
        }
    }
    int pick = rc == CVM_OK ? cvm_kmeans_pick(table, m, sp->criterion) : -1;
    if (rc == CVM_OK && pick < 0)
        rc = CVM_FAIL(err, CVM_EINVAL, "kmeans: no k in [%zu, %zu] has a %s value", sp->k_min,
                      sp->k_max, cvm_kmeans_criterion_name(sp->criterion));
    for (size_t i = 0; i < m; i++) {
        if (rc == CVM_OK && (int)i == pick) {
            table[i].chosen = true;
            *best = models[i];
        } else {
            cvm_kmeans_free(models[i]);
        }
    }
    cvm_free(models);
    return rc;
}
