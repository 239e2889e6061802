/*
 * gen.c - synthetic pharmaceutical wholesaler data with a planted truth.
 *
 * How the data comes about, and why it is built this way:
 *
 * - Every customer owns independent random streams (seed, purpose, customer),
 *   so customers can be generated in any order on any number of threads and
 *   the bytes stay the same. Customers are processed in fixed blocks; a block's
 *   output depends only on its customers.
 * - A customer's orders are a renewal process: a planted segment fixes the
 *   number of orders (so frequency separates segments cleanly), the type fixes
 *   the natural cycle and the order size, and the segment places the last order
 *   (recency). The first and last order are pinned so that the mean gap between
 *   orders is exactly the planted cycle_days; the gaps in between are jittered
 *   and time-warped so that winter months get 30% more orders.
 * - Pharmacies reorder their 2-4 core products on their own schedule (every
 *   order or every other order), which is what truth_cycles.csv records.
 * - Orders are generated per customer, then sorted by time into an ERP-like
 *   export. Order numbers are handed out in that order.
 * - Bad rows are extra, damaged copies of good lines, so that dropping them
 *   gives back exactly the good data.
 * - Transactions are formatted by hand into chunk buffers in parallel and
 *   written in chunk order; printf is far too slow for a gigabyte.
 */
#include "gen.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "alloc.h"

/* ------------------------------------------------------------------------ */
/* Model constants                                                          */

enum { T_HOS, T_DOC, T_PHA, T_CON, T_DIS, T_PAT, N_TYPES };
enum { S_CHAMP, S_STEADY, S_OCC, S_LAPSED, N_SEGS };

static const char *const type_prefix[N_TYPES] = {"HOS", "DOC", "PHA",
                                                  "CON", "DIS", "PAT"};
static const char *const type_name[N_TYPES] = {
    "hospital", "doctor", "pharmacy", "contact", "distributor", "patient"};
static const double type_mix[N_TYPES] = {0.08, 0.25, 0.35, 0.07, 0.05, 0.20};
/* Natural reorder cycle in days; pharmacies draw theirs from 7-28. */
static const double type_cycle[N_TYPES] = {14, 45, 0, 120, 7, 90};
/* Mean lines per order and units per line. The spread between types is kept
 * moderate on purpose: monetary is one of the three k-means axes, and a
 * hundredfold spread between types would drown the planted segments. */
static const double type_lines[N_TYPES] = {7, 2.5, 5, 2, 9, 1.8};
static const double type_qty[N_TYPES] = {6, 2, 4, 2, 10, 1.5};

static const char *const seg_name[N_SEGS] = {"champion", "steady",
                                             "occasional", "lapsed"};
static const double seg_mix[N_SEGS] = {0.15, 0.35, 0.30, 0.20};
/* Orders over the history, lines and units factors: the gaps between
 * neighbouring segments are wide in log space (4x orders between champion and
 * steady, 3-5x spend per order) so that log1p + z-scored RFM separates them. */
static const double seg_orders[N_SEGS] = {60, 15, 3, 6};
static const double seg_lines[N_SEGS] = {2.0, 1.0, 0.6, 0.8};
static const double seg_qty[N_SEGS] = {2.5, 1.0, 0.45, 0.75};

#define N_REGIONS 8
static const char *const region_name[N_REGIONS] = {
    "North", "South", "East", "West", "Central", "Alpine", "Coastal", "Capital"};

#define N_CAT 12
static const char *const cat_name[N_CAT] = {
    "Analgesics", "Antibiotics", "Cardio", "Diabetes", "Oncology", "Vaccines",
    "Dermatology", "OTC", "Devices", "Respiratory", "Gastro", "Neurology"};
static const double cat_weight[N_CAT] = {0.10, 0.09, 0.11, 0.07, 0.06, 0.04,
                                         0.08, 0.14, 0.09, 0.08, 0.07, 0.07};
/* Median list price in euros. */
static const double cat_price[N_CAT] = {6, 15, 20, 35, 180, 40,
                                        12, 5, 60, 25, 10, 30};
/* How much each type prefers each category (multiplies popularity). */
static const double type_affinity[N_TYPES][N_CAT] = {
    /* HOS */ {1.0, 2.0, 1.0, 1.0, 2.0, 1.5, 0.7, 0.3, 2.0, 1.2, 1.0, 1.2},
    /* DOC */ {1.0, 1.0, 1.5, 1.5, 0.2, 3.0, 1.0, 0.5, 1.2, 1.0, 1.0, 1.0},
    /* PHA */ {2.0, 1.0, 1.2, 1.2, 0.3, 0.8, 1.5, 3.0, 0.8, 1.2, 1.2, 0.8},
    /* CON */ {1.2, 0.8, 0.8, 1.0, 0.2, 0.5, 1.2, 1.5, 2.0, 0.8, 1.0, 0.6},
    /* DIS */ {1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0},
    /* PAT */ {2.0, 0.5, 0.8, 1.5, 0.1, 0.2, 2.0, 4.0, 0.8, 1.0, 1.2, 0.6},
};

#define N_PRODUCTS 1200
#define P_POSTAGE (N_PRODUCTS + 0)
#define P_FEE (N_PRODUCTS + 1)
#define P_ADJ (N_PRODUCTS + 2)
#define N_ITEMS (N_PRODUCTS + 3)
#define N_BUNDLES 6
#define BUNDLE_P 0.85    /* chance the partners follow the first product */
#define CORE_POOL_RANK 150
#define BUNDLE_RANK_LO 60
#define BUNDLE_RANK_HI 360
#define ORDER_BASE 100000000u /* order numbers look like an ERP's */

/* Random streams: purpose tags of (seed, purpose, index). */
enum {
    ST_CATALOGUE = 1,
    ST_CUSTOMER,
    ST_ORDERS,
    ST_PROFILE,
    ST_NAMES,
    ST_INTERACTIONS,
    ST_BADROWS
};

/* ------------------------------------------------------------------------ */
/* Random numbers: xoshiro256** seeded through splitmix64.                  */

typedef struct rng_t {
    uint64_t s[4];
} rng_t;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void rng_seed(rng_t *r, uint64_t seed, uint64_t purpose, uint64_t index)
{
    uint64_t x = seed;
    uint64_t h = splitmix64(&x);
    x = h ^ (purpose * 0xD1B54A32D192ED03ull);
    h = splitmix64(&x);
    x = h ^ (index * 0x9E6C63D0676A9A99ull);
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static inline double rng_u01(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

static inline double rng_uniform(rng_t *r, double lo, double hi)
{
    return lo + (hi - lo) * rng_u01(r);
}

/* Integer in [0, n), n < 2^32. */
static inline uint32_t rng_below(rng_t *r, uint32_t n)
{
    return (uint32_t)(((rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

static double rng_normal(rng_t *r)
{
    double u, v, s;
    do {
        u = 2.0 * rng_u01(r) - 1.0;
        v = 2.0 * rng_u01(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    return u * sqrt(-2.0 * log(s) / s);
}

/* Lognormal with mean 1 and coefficient of variation cv. */
static double rng_jitter(rng_t *r, double cv)
{
    double sigma = sqrt(log1p(cv * cv));
    return exp(sigma * rng_normal(r) - 0.5 * sigma * sigma);
}

static uint32_t rng_poisson(rng_t *r, double lambda)
{
    if (lambda <= 0)
        return 0;
    if (lambda < 30) {
        double l = exp(-lambda), p = 1.0;
        uint32_t k = 0;
        do {
            k++;
            p *= rng_u01(r);
        } while (p > l);
        return k - 1;
    }
    double x = floor(lambda + sqrt(lambda) * rng_normal(r) + 0.5);
    return x < 0 ? 0 : (uint32_t)x;
}

static int rng_pick(rng_t *r, const double *w, int n)
{
    double tot = 0;
    for (int i = 0; i < n; i++)
        tot += w[i];
    double u = rng_u01(r) * tot;
    for (int i = 0; i < n; i++) {
        if (u < w[i])
            return i;
        u -= w[i];
    }
    return n - 1;
}

/* ------------------------------------------------------------------------ */
/* Calendar                                                                 */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)((int64_t)yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

/* Strict YYYY-MM-DD; 0 on success. */
static int parse_date(const char *s, int64_t *out)
{
    if (s == NULL || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return -1;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (y < 1900 || y > 9000 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return -1;
    *out = days_from_civil(y, (unsigned)m, (unsigned)d);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Hand formatting                                                          */

static inline char *put_u64(char *p, uint64_t v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static inline char *put_i64(char *p, int64_t v)
{
    if (v < 0) {
        *p++ = '-';
        return put_u64(p, (uint64_t)0 - (uint64_t)v);
    }
    return put_u64(p, (uint64_t)v);
}

static inline char *put_pad(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

/* Fixed point with two decimals, cents in. */
static inline char *put_cents(char *p, int64_t c)
{
    uint64_t u;
    if (c < 0) {
        *p++ = '-';
        u = (uint64_t)0 - (uint64_t)c;
    } else {
        u = (uint64_t)c;
    }
    p = put_u64(p, u / 100);
    *p++ = '.';
    return put_pad(p, u % 100, 2);
}

static inline char *put_str(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* RFC 4180 field: quoted only when it must be, inner quotes doubled. */
static char *put_csv(char *p, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL)
        return put_str(p, s, strlen(s));
    *p++ = '"';
    for (; *s; s++) {
        if (*s == '"')
            *p++ = '"';
        *p++ = *s;
    }
    *p++ = '"';
    return p;
}

/* ------------------------------------------------------------------------ */
/* Data structures                                                          */

typedef struct gen_line {
    int32_t qty;
    int32_t price; /* cents */
    uint16_t prod;
    uint16_t pad_;
} gen_line;

typedef struct gen_order {
    union {
        uint64_t off;          /* while generating: first line in its block */
        const gen_line *lines; /* afterwards */
    } u;
    uint32_t secs; /* seconds since the first day 00:00:00 */
    uint32_t cust;
    uint32_t nlines;
    uint32_t is_return;
} gen_order;

typedef struct gen_cust {
    uint8_t type, seg, region, prospect, bomb, ncore;
    uint8_t core_m[4];   /* core product j is in every core_m[j]-th order */
    uint8_t core_m2[4];  /* would like every other order (if it fits) */
    uint16_t core[4];
    uint16_t core_qty[4];
    int16_t sat10;       /* satisfaction x10, -1 when empty */
    int16_t influence;   /* -1 when empty */
    uint16_t complaints;
    double disc;         /* price factor on list price; for distributors the
                            share of the list margin they leave us */
    double cbase;        /* natural cycle before span limits and scaling */
    double f0;           /* planted order count before scaling */
    double u_r, u_s;     /* where the last order falls; how much span is used */
    double size;         /* customer's own order size factor */
    /* set by the order pass */
    double cycle, t0, t1;
    uint32_t norders;
} gen_cust;

typedef struct gen_product {
    int32_t list; /* cents */
    int32_t cost; /* cents */
    uint16_t rank;
    uint8_t cat;
    uint8_t in_bundle;
    int8_t bundle_first; /* bundle index when this product opens a bundle */
    int8_t bundle_slot;  /* 1 + position within its bundle, 0 when none */
    int8_t bundle_of;    /* bundle index of a member, -1 none */
} gen_product;

typedef struct gen_bundle {
    int n;
    uint16_t p[3];
    double support, lift;
} gen_bundle;

typedef struct gen_alias {
    double prob[N_PRODUCTS];
    uint16_t alias[N_PRODUCTS];
} gen_alias;

typedef struct gen_block {
    gen_order *orders;
    size_t norders, cap_o;
    gen_line *lines;
    size_t nlines, cap_l;
    double *scratch;
    size_t cap_s;
    int status;
} gen_block;

typedef struct gen_bad {
    uint64_t good;  /* index of the good line it copies, in output order */
    uint64_t phys;  /* its own physical line number in transactions.csv */
    uint8_t kind, variant;
} gen_bad;

enum { BAD_MISSING_CUSTOMER, BAD_NUMBER, BAD_DATE, BAD_FIELD_COUNT, N_BAD_KINDS };
static const char *const bad_reason[N_BAD_KINDS] = {"missing_customer", "bad_number",
                                                    "bad_date", "field_count"};
static const int bad_variants[N_BAD_KINDS] = {1, 3, 4, 3};

typedef struct gen_chunk {
    size_t o_begin, o_end;
    uint64_t good_begin;
    size_t bad_begin;
    uint32_t so_begin, rt_begin;
    size_t cap;
} gen_chunk;

/* Customers per unit of work: the output never depends on it, only the
 * balance between threads does. */
#define BLOCK_CUSTOMERS 64
#define CHUNK_LINES 32768
#define MAX_LINE_BYTES 192 /* longest possible line, damaged ones included */

typedef struct gen_ctx {
    const cvm_gen_params *p;
    uint64_t seed;
    int days;
    int64_t day0;
    int nthreads;
    /* calendar */
    char (*dstr)[11];
    uint8_t *wday; /* 0 = Monday */
    double *lam;   /* order intensity of the day */
    double *lcum;  /* lcum[d] = sum of lam before day d */
    /* catalogue */
    gen_product prod[N_ITEMS];
    char pid[N_ITEMS][16];
    uint8_t pidlen[N_ITEMS];
    char *pname[N_ITEMS];
    gen_bundle bundle[N_BUNDLES];
    uint16_t core_pool[N_PRODUCTS];
    int ncore_pool;
    gen_alias *alias; /* one per type */
    /* customers */
    size_t ncust;
    gen_cust *cust;
    char (*cid)[12];
    /* orders of the current pass */
    size_t nblocks;
    gen_block *blocks;
    double scale;
    /* assembled */
    size_t norders;
    gen_order *orders;
    uint64_t *keys; /* (secs << 32 | order index), sorted */
    uint64_t good_lines;
    size_t nbad;
    gen_bad *bad;
    size_t nreturns;
} gen_ctx;

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */

void cvm_gen_params_default(cvm_gen_params *p)
{
    memset(p, 0, sizeof *p);
    p->customers = 2000;
    p->target_lines = 0;
    p->seed = 1;
    p->out_dir = NULL;
    p->start = "2023-01-01";
    p->days = 730;
    p->bad_row_share = 0.002;
    p->return_share = 0.02;
    p->threads = 0;
}

const char *cvm_gen_params_check(const cvm_gen_params *p)
{
    int64_t d;
    if (p == NULL)
        return "no parameters";
    if (p->out_dir == NULL || p->out_dir[0] == '\0')
        return "out_dir is required";
    if (p->customers < 1)
        return "customers must be at least 1";
    if (p->customers > 999999)
        return "customers must be at most 999999 (ids have 6 digits)";
    if (p->start == NULL || parse_date(p->start, &d) != 0)
        return "start must be a valid date YYYY-MM-DD (years 1900-9000)";
    if (p->days < 90 || p->days > 36500)
        return "days must be between 90 and 36500";
    if (!(p->bad_row_share >= 0.0 && p->bad_row_share <= 0.5))
        return "bad_row_share must be between 0 and 0.5";
    if (!(p->return_share >= 0.0 && p->return_share <= 0.5))
        return "return_share must be between 0 and 0.5";
    if (p->threads < 0 || p->threads > 1024)
        return "threads must be between 0 (default) and 1024";
    if (p->target_lines > 2000000000u)
        return "target_lines must be at most 2000000000";
    if (p->target_lines > 0 && p->target_lines < p->customers)
        return "target_lines must be 0 or at least one line per customer";
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Calendar tables and seasonality                                          */

static int setup_calendar(gen_ctx *g, cvm_err *err)
{
    int D = g->days;
    g->dstr = cvm_malloc((size_t)D * sizeof *g->dstr);
    g->wday = cvm_malloc((size_t)D);
    g->lam = cvm_malloc((size_t)D * sizeof *g->lam);
    g->lcum = cvm_malloc(((size_t)D + 1) * sizeof *g->lcum);
    if (!g->dstr || !g->wday || !g->lam || !g->lcum)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory for %d days", D);
    g->lcum[0] = 0;
    for (int d = 0; d < D; d++) {
        int y, m, dd;
        int64_t z = g->day0 + d;
        civil_from_days(z, &y, &m, &dd);
        char *s = g->dstr[d];
        put_pad(s, (uint64_t)y, 4);
        s[4] = '-';
        put_pad(s + 5, (uint64_t)m, 2);
        s[7] = '-';
        put_pad(s + 8, (uint64_t)dd, 2);
        s[10] = '\0';
        /* 1970-01-01 was a Thursday (3 with Monday = 0). */
        int64_t w = (z + 3) % 7;
        g->wday[d] = (uint8_t)(w < 0 ? w + 7 : w);
        g->lam[d] = (m == 11 || m == 12 || m == 1 || m == 2) ? 1.3 : 1.0;
        g->lcum[d + 1] = g->lcum[d] + g->lam[d];
    }
    return CVM_OK;
}

/* Operational time: orders are evenly spread in it, so the calendar sees
 * more of them where the intensity is higher. */
static double cal_to_op(const gen_ctx *g, double t)
{
    if (t <= 0)
        return 0;
    if (t >= g->days)
        return g->lcum[g->days];
    int d = (int)t;
    return g->lcum[d] + g->lam[d] * (t - d);
}

static double op_to_cal(const gen_ctx *g, double u)
{
    if (u <= 0)
        return 0;
    if (u >= g->lcum[g->days])
        return g->days;
    int lo = 0, hi = g->days; /* lcum[lo] <= u < lcum[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (g->lcum[mid] <= u)
            lo = mid;
        else
            hi = mid;
    }
    return lo + (u - g->lcum[lo]) / g->lam[lo];
}

/* ------------------------------------------------------------------------ */
/* Catalogue                                                                */

static const char *const substance[N_CAT][6] = {
    {"Ibuprofen", "Paracétamol", "Diclofenac", "Naproxen", "Metamizol", "Acetylsalicylsäure"},
    {"Amoxicillin", "Cefuroxim", "Ciprofloxacin", "Doxycyclin", "Azithromycin", "Clarithromycin"},
    {"Bisoprolol", "Ramipril", "Amlodipin", "Atorvastatin", "Metoprolol", "Candesartan"},
    {"Metformin", "Insulin glargin", "Sitagliptin", "Empagliflozin", "Glimepirid", "Dapagliflozin"},
    {"Tamoxifen", "Capecitabin", "Imatinib", "Letrozol", "Anastrozol", "Méthotrexate"},
    {"Influvac Tetra", "Boostrix", "Gardasil 9", "Twinrix", "Priorix", "Vaxigrip"},
    {"Hydrocortison", "Clotrimazol", "Dexpanthenol", "Bétaméthasone", "Aciclovir", "Urea"},
    {"Vitamin C", "Magnesium", "Zink", "Meersalz-Nasenspray", "Halstabletten", "Multivitamin"},
    {"Blutdruckmessgerät", "Einmalspritze 5 ml", "Verbandset", "Fieberthermometer",
     "Inhalationsgerät", "Teststreifen"},
    {"Salbutamol", "Budesonid", "Montelukast", "Tiotropium", "Acetylcystein", "Ambroxol"},
    {"Omeprazol", "Pantoprazol", "Loperamid", "Macrogol", "Ondansetron", "Mesalazin"},
    {"Levetiracetam", "Gabapentin", "Pregabalin", "Sumatriptan", "Lamotrigin", "Topiramat"},
};

static void product_name(rng_t *r, int cat, char *out, size_t cap)
{
    static const int strengths[] = {5, 10, 20, 25, 40, 50, 100, 200, 250, 400, 500, 600, 1000};
    static const int packs[] = {10, 20, 30, 50, 60, 100};
    static const char *const pill_form[] = {"tabs", "caps", "Filmtabl.", "Brausetabl."};
    const char *sub = substance[cat][rng_below(r, 6)];
    int st = strengths[rng_below(r, 13)];
    int pk = packs[rng_below(r, 6)];
    const char *brand = rng_u01(r) < 0.08 ? "®" : "";
    switch (cat) {
    case 5: /* vaccines */
        if (rng_u01(r) < 0.5)
            snprintf(out, cap, "%s%s, %d× Fertigspritze", sub, brand, 1 + (int)rng_below(r, 10));
        else
            snprintf(out, cap, "%s%s Impfstoff (%d Dosen)", sub, brand, 1 + (int)rng_below(r, 10));
        break;
    case 6: /* dermatology */
        if (rng_u01(r) < 0.4)
            snprintf(out, cap, "%s Crème \"forte\" %d%%, %d g", sub, 1 + (int)rng_below(r, 5),
                     pk);
        else
            snprintf(out, cap, "%s%s Salbe %d%%, %d g", sub, brand, 1 + (int)rng_below(r, 5), pk);
        break;
    case 8: /* devices */
        snprintf(out, cap, "%s%s, %d Stk.", sub, brand, 1 + (int)rng_below(r, 50));
        break;
    case 9: /* respiratory */
        if (rng_u01(r) < 0.5)
            snprintf(out, cap, "%s %dµg Dosieraerosol, %d Hübe", sub, st, 100 + 100 * (int)rng_below(r, 2));
        else
            snprintf(out, cap, "%s%s %dmg, %d %s", sub, brand, st, pk, pill_form[rng_below(r, 4)]);
        break;
    default:
        if (rng_u01(r) < 0.1)
            snprintf(out, cap, "%s \"%s\" %dmg", sub, rng_u01(r) < 0.5 ? "retard" : "forte", st);
        else
            snprintf(out, cap, "%s%s %dmg, %d %s", sub, brand, st, pk, pill_form[rng_below(r, 4)]);
        break;
    }
}

/* Vose's alias method: O(1) draws from the Zipf-like popularity. */
static void build_alias(gen_alias *a, const double *w)
{
    double tot = 0, pr[N_PRODUCTS];
    int small[N_PRODUCTS], large[N_PRODUCTS], ns = 0, nl = 0;
    for (int i = 0; i < N_PRODUCTS; i++)
        tot += w[i];
    for (int i = 0; i < N_PRODUCTS; i++) {
        pr[i] = w[i] * N_PRODUCTS / tot;
        if (pr[i] < 1.0)
            small[ns++] = i;
        else
            large[nl++] = i;
        a->alias[i] = (uint16_t)i;
    }
    while (ns > 0 && nl > 0) {
        int s = small[--ns], l = large[--nl];
        a->prob[s] = pr[s];
        a->alias[s] = (uint16_t)l;
        pr[l] = (pr[l] + pr[s]) - 1.0;
        if (pr[l] < 1.0)
            small[ns++] = l;
        else
            large[nl++] = l;
    }
    while (nl > 0)
        a->prob[large[--nl]] = 1.0;
    while (ns > 0)
        a->prob[small[--ns]] = 1.0;
}

static inline uint16_t alias_draw(const gen_alias *a, rng_t *r)
{
    uint64_t x = rng_next(r);
    uint32_t i = (uint32_t)(((x >> 32) * (uint64_t)N_PRODUCTS) >> 32);
    double f = (double)(x & 0xFFFFFFFFu) * 0x1.0p-32;
    return f < a->prob[i] ? (uint16_t)i : a->alias[i];
}

static int setup_catalogue(gen_ctx *g, cvm_err *err)
{
    rng_t r;
    rng_seed(&r, g->seed, ST_CATALOGUE, 0);
    char name[160];
    for (int i = 0; i < N_PRODUCTS; i++) {
        gen_product *pr = &g->prod[i];
        int cat = rng_pick(&r, cat_weight, N_CAT);
        double list = cat_price[cat] * exp(0.6 * rng_normal(&r));
        if (list < 0.5)
            list = 0.5;
        double margin = rng_uniform(&r, 0.10, 0.60);
        pr->cat = (uint8_t)cat;
        pr->list = (int32_t)llround(list * 100);
        pr->cost = (int32_t)llround(list * 100 * (1.0 - margin));
        if (pr->cost < 1)
            pr->cost = 1;
        if (pr->cost >= pr->list)
            pr->list = pr->cost + 1;
        pr->bundle_first = -1;
        pr->bundle_of = -1;
        snprintf(g->pid[i], sizeof g->pid[i], "P%05d", i + 1);
        product_name(&r, cat, name, sizeof name);
        g->pname[i] = cvm_strdup(name);
        if (g->pname[i] == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory for product names");
    }
    static const char *const code_id[3] = {"POSTAGE", "FEE-HANDLING", "ADJ"};
    static const char *const code_name[3] = {"Postage and packing", "Handling fee, small orders",
                                             "Price adjustment"};
    for (int i = 0; i < 3; i++) {
        gen_product *pr = &g->prod[N_PRODUCTS + i];
        memset(pr, 0, sizeof *pr);
        pr->bundle_first = -1;
        pr->bundle_of = -1;
        pr->cat = N_CAT; /* non-product */
        snprintf(g->pid[N_PRODUCTS + i], sizeof g->pid[0], "%s", code_id[i]);
        g->pname[N_PRODUCTS + i] = cvm_strdup(code_name[i]);
        if (g->pname[N_PRODUCTS + i] == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory for product names");
    }
    for (int i = 0; i < N_ITEMS; i++)
        g->pidlen[i] = (uint8_t)strlen(g->pid[i]);

    /* Popularity rank is a random permutation, independent of the id. */
    uint16_t by_rank[N_PRODUCTS];
    for (int i = 0; i < N_PRODUCTS; i++)
        by_rank[i] = (uint16_t)i;
    for (int i = N_PRODUCTS - 1; i > 0; i--) {
        uint32_t j = rng_below(&r, (uint32_t)i + 1);
        uint16_t t = by_rank[i];
        by_rank[i] = by_rank[j];
        by_rank[j] = t;
    }
    for (int k = 0; k < N_PRODUCTS; k++)
        g->prod[by_rank[k]].rank = (uint16_t)k;

    /* Bundles from mid-popularity products, disjoint. */
    for (int b = 0; b < N_BUNDLES; b++) {
        gen_bundle *bu = &g->bundle[b];
        bu->n = 2 + (rng_u01(&r) < 0.5);
        for (int k = 0; k < bu->n; k++) {
            uint16_t p;
            do {
                p = by_rank[BUNDLE_RANK_LO + rng_below(&r, BUNDLE_RANK_HI - BUNDLE_RANK_LO)];
            } while (g->prod[p].in_bundle);
            g->prod[p].in_bundle = 1;
            g->prod[p].bundle_slot = (int8_t)(k + 1);
            g->prod[p].bundle_of = (int8_t)b;
            bu->p[k] = p;
        }
        g->prod[bu->p[0]].bundle_first = (int8_t)b;
    }
    g->ncore_pool = 0;
    for (int k = 0; k < CORE_POOL_RANK; k++)
        if (!g->prod[by_rank[k]].in_bundle)
            g->core_pool[g->ncore_pool++] = by_rank[k];

    g->alias = cvm_malloc(N_TYPES * sizeof *g->alias);
    if (g->alias == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory for popularity tables");
    for (int t = 0; t < N_TYPES; t++) {
        double w[N_PRODUCTS];
        for (int i = 0; i < N_PRODUCTS; i++)
            w[i] = type_affinity[t][g->prod[i].cat] / (g->prod[i].rank + 2.0);
        build_alias(&g->alias[t], w);
    }
    return CVM_OK;
}

/* ------------------------------------------------------------------------ */
/* Customers: everything that does not depend on the rate scale.            */

static void setup_customer(const gen_ctx *g, size_t i)
{
    gen_cust *c = &g->cust[i];
    rng_t r;
    rng_seed(&r, g->seed, ST_CUSTOMER, i);
    memset(c, 0, sizeof *c);
    c->prospect = rng_u01(&r) < 0.02;
    c->type = (uint8_t)rng_pick(&r, type_mix, N_TYPES);
    c->seg = (uint8_t)rng_pick(&r, seg_mix, N_SEGS);
    c->region = (uint8_t)rng_below(&r, N_REGIONS);
    char *id = g->cid[i];
    memcpy(id, type_prefix[c->type], 3);
    id[3] = '-';
    put_pad(id + 4, (uint64_t)i + 1, 6);
    id[10] = '\0';
    switch (c->type) {
    case T_HOS: c->disc = rng_uniform(&r, 0.88, 0.95); break;
    case T_PHA: c->disc = rng_uniform(&r, 0.93, 1.00); break;
    case T_DIS: c->disc = 0.35; break; /* share of the list margin kept */
    default: c->disc = 1.0; break;
    }
    if (c->type == T_PHA)
        c->cbase = rng_uniform(&r, 7.0, 28.0);
    else
        c->cbase = type_cycle[c->type] * rng_jitter(&r, 0.2);
    c->f0 = seg_orders[c->seg] * exp(0.1 * rng_normal(&r));
    c->u_r = rng_u01(&r);
    c->u_s = rng_uniform(&r, 0.8, 1.0);
    c->size = exp(0.2 * rng_normal(&r));
    if (c->type == T_PHA) {
        c->ncore = (uint8_t)(2 + rng_below(&r, 3));
        for (int j = 0; j < c->ncore; j++) {
            uint16_t p;
            int dup;
            do {
                p = g->core_pool[rng_below(&r, (uint32_t)g->ncore_pool)];
                dup = 0;
                for (int k = 0; k < j; k++)
                    dup |= c->core[k] == p;
            } while (dup);
            c->core[j] = p;
            c->core_qty[j] = (uint16_t)(2 + rng_below(&r, 10));
            c->core_m2[j] = rng_u01(&r) < 0.4;
        }
    }

    /* Profile: the "time bomb" class is big buyers (champions) who are
     * deliberately unhappy; nobody else is both unhappy and complaining. */
    rng_t q;
    rng_seed(&q, g->seed, ST_PROFILE, i);
    c->bomb = !c->prospect && c->seg == S_CHAMP && rng_u01(&q) < 0.10;
    if (c->bomb) {
        c->sat10 = (int16_t)(10 + rng_below(&q, 16));
        c->complaints = (uint16_t)(3 + rng_below(&q, 6));
    } else {
        uint32_t n = c->prospect ? 0 : rng_poisson(&q, c->type == T_HOS ? 0.8 : 0.4);
        double s = 4.0 - 0.35 * n + 0.55 * rng_normal(&q);
        s = s < 1.0 ? 1.0 : s > 5.0 ? 5.0 : s;
        int s10 = (int)lround(s * 10);
        if (n >= 3 && s10 <= 25)
            s10 = 26 + (int)rng_below(&q, 10);
        c->sat10 = (int16_t)s10;
        c->complaints = (uint16_t)n;
        if (rng_u01(&q) < 0.03)
            c->sat10 = -1;
    }
    int inf;
    switch (c->type) {
    case T_HOS: inf = 60 + (int)rng_below(&q, 41); break;
    case T_DIS: inf = 40 + (int)rng_below(&q, 41); break;
    case T_DOC:
        inf = (c->seg == S_CHAMP || rng_u01(&q) < 0.2) ? 60 + (int)rng_below(&q, 36)
                                                        : 15 + (int)rng_below(&q, 46);
        break;
    case T_PHA: inf = 20 + (int)rng_below(&q, 41); break;
    case T_CON: inf = 5 + (int)rng_below(&q, 36); break;
    default: inf = (int)rng_below(&q, 16); break;
    }
    c->influence = (int16_t)inf;
    if (rng_u01(&q) < 0.03)
        c->influence = -1;
}

/* ------------------------------------------------------------------------ */
/* Orders                                                                   */

static int block_reserve(gen_block *b, size_t orders, size_t lines)
{
    if (b->norders + orders > b->cap_o) {
        size_t cap = b->cap_o ? b->cap_o : 256;
        while (cap < b->norders + orders)
            cap *= 2;
        gen_order *o = cvm_reallocarray(b->orders, cap, sizeof *o);
        if (o == NULL)
            return CVM_ENOMEM;
        b->orders = o;
        b->cap_o = cap;
    }
    if (b->nlines + lines > b->cap_l) {
        size_t cap = b->cap_l ? b->cap_l : 2048;
        while (cap < b->nlines + lines)
            cap *= 2;
        gen_line *l = cvm_reallocarray(b->lines, cap, sizeof *l);
        if (l == NULL)
            return CVM_ENOMEM;
        b->lines = l;
        b->cap_l = cap;
    }
    return CVM_OK;
}

static inline int32_t price_for(const gen_ctx *g, const gen_cust *c, uint16_t p)
{
    const gen_product *pr = &g->prod[p];
    double v;
    if (c->type == T_DIS)
        v = pr->cost + (pr->list - pr->cost) * c->disc;
    else
        v = pr->list * c->disc;
    int32_t cents = (int32_t)llround(v);
    return cents <= pr->cost ? pr->cost + 1 : cents;
}

static inline int in_order(const gen_line *l, size_t n, uint16_t p)
{
    for (size_t i = 0; i < n; i++)
        if (l[i].prod == p)
            return 1;
    return 0;
}

static inline int is_core(const gen_cust *c, uint16_t p)
{
    for (int j = 0; j < c->ncore; j++)
        if (c->core[j] == p)
            return 1;
    return 0;
}

static uint32_t business_tod(rng_t *r, int weekend)
{
    static const double hour_w[10] = {6, 10, 12, 11, 7, 8, 10, 9, 6, 3};
    int h = weekend ? 9 + (int)rng_below(r, 4) : 8 + rng_pick(r, hour_w, 10);
    return (uint32_t)h * 3600u + rng_below(r, 3600);
}

/* Weekend orders are mostly moved to the next Monday (never backwards, so a
 * schedule's span can only grow by two days at most). */
static int shift_weekday(const gen_ctx *g, rng_t *r, int day, double keep_weekend)
{
    int w = g->wday[day];
    if (w >= 5 && rng_u01(r) >= keep_weekend) {
        int nd = day + (7 - w);
        if (nd < g->days)
            return nd;
    }
    return day;
}

static void push_line(gen_block *b, uint16_t p, int32_t qty, int32_t price)
{
    gen_line *l = &b->lines[b->nlines++];
    l->prod = p;
    l->qty = qty;
    l->price = price;
    l->pad_ = 0;
}

/* One order of customer ci. kind: 0 scheduled order k of n, 1 a same-day
 * extra order. Lines go to the end of the block. */
static int make_order(const gen_ctx *g, uint32_t ci, gen_block *b, rng_t *r, int day,
                      uint32_t tod, uint32_t k, uint32_t n, int extra)
{
    const gen_cust *c = &g->cust[ci];
    double lam = type_lines[c->type] * seg_lines[c->seg] * c->size;
    uint32_t nl = extra ? 1 + rng_poisson(r, 0.5) : 1 + rng_poisson(r, lam > 1 ? lam - 1 : 0);
    if (nl > 200)
        nl = 200;
    /* Upper bound on lines: regular + bundle partners + core + codes. */
    if (block_reserve(b, 1, (size_t)nl * 3 + 8) != CVM_OK)
        return CVM_ENOMEM;
    size_t start = b->nlines;
    double qmean = type_qty[c->type] * seg_qty[c->seg] * c->size;
    const gen_alias *al = &g->alias[c->type];
    for (uint32_t i = 0; i < nl; i++) {
        uint16_t p = 0;
        int ok = 0;
        for (int tries = 0; tries < 10 && !ok; tries++) {
            p = alias_draw(al, r);
            ok = !is_core(c, p) && !in_order(b->lines + start, b->nlines - start, p);
        }
        if (!ok)
            continue;
        double q = qmean * exp(0.5 * rng_normal(r) - 0.125);
        int32_t qty = q < 1.0 ? 1 : (int32_t)llround(q);
        push_line(b, p, qty, price_for(g, c, p));
        int bi = g->prod[p].bundle_first;
        if (bi >= 0 && rng_u01(r) < BUNDLE_P) {
            const gen_bundle *bu = &g->bundle[bi];
            for (int j = 1; j < bu->n; j++) {
                uint16_t q2 = bu->p[j];
                if (!in_order(b->lines + start, b->nlines - start, q2))
                    push_line(b, q2, qty, price_for(g, c, q2));
            }
        }
    }
    if (!extra) {
        for (int j = 0; j < c->ncore; j++) {
            if ((n - 1 - k) % c->core_m[j] != 0)
                continue;
            double q = c->core_qty[j] * seg_qty[c->seg] * c->size * rng_jitter(r, 0.2);
            int32_t qty = q < 1.0 ? 1 : (int32_t)llround(q);
            push_line(b, c->core[j], qty, price_for(g, c, c->core[j]));
        }
    }
    if (b->nlines == start) { /* every order has at least one product */
        uint16_t p = alias_draw(al, r);
        push_line(b, p, 1, price_for(g, c, p));
    }
    int64_t sub = 0;
    for (size_t i = start; i < b->nlines; i++)
        sub += (int64_t)b->lines[i].qty * b->lines[i].price;
    if (sub < 15000 && rng_u01(r) < 0.75) {
        static const int32_t postage[3] = {490, 590, 790};
        push_line(b, P_POSTAGE, 1, postage[rng_below(r, 3)]);
    }
    if (rng_u01(r) < 0.03)
        push_line(b, P_FEE, 1, rng_u01(r) < 0.5 ? 1250 : 2500);
    if (rng_u01(r) < 0.015) {
        int64_t a = llround((double)sub * rng_uniform(r, 0.01, 0.05));
        if (a < 1)
            a = 1;
        if (a > 100000000)
            a = 100000000;
        push_line(b, P_ADJ, 1, (int32_t)(rng_u01(r) < 0.8 ? -a : a));
    }
    gen_order *o = &b->orders[b->norders++];
    o->u.off = start;
    o->secs = (uint32_t)day * 86400u + tod;
    o->cust = ci;
    o->nlines = (uint32_t)(b->nlines - start);
    o->is_return = 0;
    return CVM_OK;
}

/* A later, partial return of the order just made (the last in the block). */
static int make_return(const gen_ctx *g, gen_block *b, rng_t *r, int day)
{
    const gen_order *src = &b->orders[b->norders - 1];
    size_t off = src->u.off;
    uint32_t n = src->nlines, nprod = 0;
    for (uint32_t i = 0; i < n; i++)
        nprod += b->lines[off + i].prod < N_PRODUCTS;
    int rday = day + 2 + (int)rng_below(r, 9);
    if (nprod == 0 || rday >= g->days)
        return CVM_OK; /* would fall after the export */
    rday = shift_weekday(g, r, rday, 0.02);
    uint32_t want = 1 + (rng_u01(r) < 0.3) + (rng_u01(r) < 0.1);
    if (want > nprod)
        want = nprod;
    if (block_reserve(b, 1, want) != CVM_OK)
        return CVM_ENOMEM;
    src = &b->orders[b->norders - 1]; /* reserve may have moved it */
    uint32_t cust = src->cust;
    size_t start = b->nlines;
    /* Selection sampling keeps the original line order. */
    uint32_t seen = 0, taken = 0;
    for (uint32_t i = 0; i < n && taken < want; i++) {
        const gen_line *l = &b->lines[off + i];
        if (l->prod >= N_PRODUCTS)
            continue;
        if (rng_u01(r) * (nprod - seen) < want - taken) {
            int32_t q = l->qty > 1 ? 1 + (int32_t)rng_below(r, (uint32_t)l->qty) : 1;
            push_line(b, l->prod, -q, l->price);
            taken++;
        }
        seen++;
    }
    gen_order *o = &b->orders[b->norders++];
    o->u.off = start;
    o->secs = (uint32_t)rday * 86400u + business_tod(r, g->wday[rday] >= 5);
    o->cust = cust;
    o->nlines = (uint32_t)(b->nlines - start);
    o->is_return = 1;
    return CVM_OK;
}

static int gen_customer(const gen_ctx *g, uint32_t ci, gen_block *b, double s)
{
    gen_cust *c = &g->cust[ci];
    c->norders = 0;
    c->cycle = c->t0 = c->t1 = 0;
    if (c->prospect)
        return CVM_OK;
    rng_t r;
    rng_seed(&r, g->seed, ST_ORDERS, ci);
    const double D = g->days;
    double f = floor(c->f0 * s + 0.5);
    if (f < 1)
        f = 1;
    /* Pharmacies need three orders so that every core product has a cycle. */
    if (c->type == T_PHA && f < 3)
        f = 3;
    if (f > 1e7)
        f = 1e7;
    uint32_t n = (uint32_t)f;
    double cyc = c->cbase / s, t1;
    switch (c->seg) {
    case S_CHAMP: t1 = D - 1e-6 - c->u_r * fmin(cyc, 0.03 * D); break;
    case S_STEADY: t1 = D - 1e-6 - c->u_r * fmin(cyc, 0.06 * D); break;
    case S_OCC: t1 = D - (0.06 + 0.10 * c->u_r) * D; break;
    default: { /* lapsed: stopped in the first third, returns included */
        double lo = 0.10 * D, hi = D / 3.0 - 16.0;
        t1 = lo + c->u_r * (hi - lo);
        break;
    }
    }
    if (n > 1 && cyc * (n - 1) > t1 * c->u_s)
        cyc = t1 * c->u_s / (n - 1);
    double t0 = t1 - cyc * (n > 1 ? n - 1 : 0);
    c->cycle = cyc;
    c->t0 = t0;
    c->t1 = t1;
    for (int j = 0; j < c->ncore; j++)
        c->core_m[j] = (c->core_m2[j] && n >= 5 && 2 * cyc <= 28.0) ? 2 : 1;

    double cv = c->type == T_PHA ? 0.15 : 0.25;
    double u0 = cal_to_op(g, t0), u1 = cal_to_op(g, t1);
    double mean = n > 1 ? (u1 - u0) / (n - 1) : 0;
    double fl = fmin(1.3, 0.3 * mean); /* about a calendar day at least */
    if (n > 1) {
        if (b->cap_s < n) {
            double *sc = cvm_reallocarray(b->scratch, n, sizeof *sc);
            if (sc == NULL)
                return CVM_ENOMEM;
            b->scratch = sc;
            b->cap_s = n;
        }
        double sw = 0;
        for (uint32_t j = 0; j + 1 < n; j++)
            sw += b->scratch[j] = rng_jitter(&r, cv * mean / (mean - fl));
        double k = (mean - fl) * (n - 1) / sw;
        for (uint32_t j = 0; j + 1 < n; j++)
            b->scratch[j] = fl + b->scratch[j] * k;
    }
    double u = u0;
    for (uint32_t k = 0; k < n; k++) {
        double t = k + 1 == n ? t1 : (k == 0 ? t0 : op_to_cal(g, u));
        if (k + 1 < n)
            u += b->scratch[k];
        int day = (int)floor(t);
        if (day < 0)
            day = 0;
        if (day >= g->days)
            day = g->days - 1;
        day = shift_weekday(g, &r, day, 0.08);
        uint32_t tod = business_tod(&r, g->wday[day] >= 5);
        if (make_order(g, ci, b, &r, day, tod, k, n, 0) != CVM_OK)
            return CVM_ENOMEM;
        c->norders++;
        if (rng_u01(&r) < g->p->return_share && make_return(g, b, &r, day) != CVM_OK)
            return CVM_ENOMEM;
        if (rng_u01(&r) < 0.01) {
            uint32_t tod2 = tod + 300 + rng_below(&r, 3 * 3600);
            if (tod2 < 86400) {
                if (make_order(g, ci, b, &r, day, tod2, 0, 1, 1) != CVM_OK)
                    return CVM_ENOMEM;
                c->norders++;
            }
        }
    }
    return CVM_OK;
}

static void free_blocks(gen_ctx *g)
{
    if (g->blocks == NULL)
        return;
    for (size_t i = 0; i < g->nblocks; i++) {
        cvm_free(g->blocks[i].orders);
        cvm_free(g->blocks[i].lines);
        cvm_free(g->blocks[i].scratch);
    }
    cvm_free(g->blocks);
    g->blocks = NULL;
}

static size_t bad_count(uint64_t good, double share)
{
    if (share <= 0)
        return 0;
    return (size_t)llround((double)good * share / (1.0 - share));
}

/* Generates every customer's orders at rate scale s; *lines gets the number
 * of data lines transactions.csv would have. */
static int gen_pass(gen_ctx *g, double s, uint64_t *lines, cvm_err *err)
{
    free_blocks(g);
    g->nblocks = (g->ncust + BLOCK_CUSTOMERS - 1) / BLOCK_CUSTOMERS;
    g->blocks = cvm_calloc(g->nblocks, sizeof *g->blocks);
    if (g->blocks == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory for %zu blocks", g->nblocks);
    g->scale = s;
    long nb = (long)g->nblocks;
    const gen_ctx *cg = g;
    gen_block *blocks = g->blocks;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 4) num_threads(g->nthreads) default(none) \
    shared(cg, blocks, nb, s)
#endif
    for (long bi = 0; bi < nb; bi++) {
        gen_block *b = &blocks[bi];
        size_t lo = (size_t)bi * BLOCK_CUSTOMERS, hi = lo + BLOCK_CUSTOMERS;
        if (hi > cg->ncust)
            hi = cg->ncust;
        for (size_t i = lo; i < hi && b->status == CVM_OK; i++)
            b->status = gen_customer(cg, (uint32_t)i, b, s);
    }
    uint64_t good = 0;
    for (size_t i = 0; i < g->nblocks; i++) {
        if (g->blocks[i].status != CVM_OK)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory generating orders");
        good += g->blocks[i].nlines;
    }
    *lines = good + bad_count(good, g->p->bad_row_share);
    return CVM_OK;
}

/* ------------------------------------------------------------------------ */
/* Assembly: chronological order, bundles' truth, bad rows                  */

static int radix_sort_u64(uint64_t *a, size_t n)
{
    uint64_t *tmp = cvm_malloc((n ? n : 1) * sizeof *tmp);
    if (tmp == NULL)
        return CVM_ENOMEM;
    uint64_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 64; shift += 8) {
        size_t count[256] = {0};
        for (size_t i = 0; i < n; i++)
            count[(src[i] >> shift) & 0xFF]++;
        int trivial = 0;
        for (int d = 0; d < 256; d++)
            trivial |= count[d] == n;
        if (trivial)
            continue;
        size_t pos = 0;
        for (int d = 0; d < 256; d++) {
            size_t c = count[d];
            count[d] = pos;
            pos += c;
        }
        for (size_t i = 0; i < n; i++)
            dst[count[(src[i] >> shift) & 0xFF]++] = src[i];
        uint64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, n * sizeof *a);
    cvm_free(tmp);
    return CVM_OK;
}

static int assemble(gen_ctx *g, cvm_err *err)
{
    size_t n = 0;
    for (size_t i = 0; i < g->nblocks; i++)
        n += g->blocks[i].norders;
    if (n >= UINT32_MAX)
        return CVM_FAIL(err, CVM_ELIMIT, "too many orders (%zu)", n);
    g->norders = n;
    g->orders = cvm_malloc((n ? n : 1) * sizeof *g->orders);
    g->keys = cvm_malloc((n ? n : 1) * sizeof *g->keys);
    if (g->orders == NULL || g->keys == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory for %zu orders", n);
    size_t k = 0;
    g->nreturns = 0;
    g->good_lines = 0;
    for (size_t i = 0; i < g->nblocks; i++) {
        const gen_block *b = &g->blocks[i];
        for (size_t j = 0; j < b->norders; j++, k++) {
            g->orders[k] = b->orders[j];
            g->orders[k].u.lines = b->lines + b->orders[j].u.off;
            g->keys[k] = ((uint64_t)b->orders[j].secs << 32) | k;
            g->nreturns += b->orders[j].is_return;
        }
        g->good_lines += b->nlines;
    }
    if (radix_sort_u64(g->keys, n) != CVM_OK)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory sorting orders");

    /* Bundles' truth over the SO orders, exactly as a miner would see them. */
    uint64_t n_first[N_BUNDLES] = {0}, n_rest[N_BUNDLES] = {0}, n_all[N_BUNDLES] = {0};
    uint64_t n_baskets = 0;
    for (size_t i = 0; i < n; i++) {
        const gen_order *o = &g->orders[i];
        if (o->is_return)
            continue;
        n_baskets++;
        uint32_t have[N_BUNDLES] = {0};
        int any = 0;
        for (uint32_t l = 0; l < o->nlines; l++) {
            const gen_product *pr = &g->prod[o->u.lines[l].prod];
            if (pr->bundle_slot) {
                have[pr->bundle_of] |= 1u << (pr->bundle_slot - 1);
                any = 1;
            }
        }
        if (!any)
            continue;
        for (int b = 0; b < N_BUNDLES; b++) {
            uint32_t full = (1u << g->bundle[b].n) - 1;
            int first = (have[b] & 1u) != 0, rest = (have[b] | 1u) == full;
            n_first[b] += first;
            n_rest[b] += rest;
            n_all[b] += first && rest;
        }
    }
    for (int b = 0; b < N_BUNDLES; b++) {
        gen_bundle *bu = &g->bundle[b];
        double N = (double)n_baskets;
        bu->support = n_baskets ? (double)n_all[b] / N : 0.0;
        bu->lift = (n_first[b] && n_rest[b])
                       ? ((double)n_all[b] / N) /
                             (((double)n_first[b] / N) * ((double)n_rest[b] / N))
                       : 0.0;
    }

    /* Bad rows: a uniform sample of good lines (selection sampling, in
     * output order) each followed by a damaged copy. */
    g->nbad = bad_count(g->good_lines, g->p->bad_row_share);
    if (g->nbad > g->good_lines)
        g->nbad = (size_t)g->good_lines;
    g->bad = cvm_malloc((g->nbad ? g->nbad : 1) * sizeof *g->bad);
    if (g->bad == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory for %zu bad rows", g->nbad);
    rng_t r;
    rng_seed(&r, g->seed, ST_BADROWS, 0);
    size_t need = g->nbad, got = 0;
    for (uint64_t i = 0; i < g->good_lines && need > 0; i++) {
        if (rng_u01(&r) * (double)(g->good_lines - i) < (double)need) {
            gen_bad *bd = &g->bad[got];
            bd->good = i;
            bd->phys = i + got + 3; /* header, the good lines so far, bads so far */
            bd->kind = (uint8_t)rng_below(&r, N_BAD_KINDS);
            bd->variant = (uint8_t)rng_below(&r, (uint32_t)bad_variants[bd->kind]);
            got++;
            need--;
        }
    }
    g->nbad = got;
    return CVM_OK;
}

/* ------------------------------------------------------------------------ */
/* Output files                                                             */

typedef struct gen_out {
    FILE *f;
    char *path, *tmp;
} gen_out;

static int out_open(gen_out *o, const char *dir, const char *name, cvm_err *err)
{
    size_t n = strlen(dir) + strlen(name) + 8;
    o->path = cvm_malloc(n);
    o->tmp = cvm_malloc(n);
    if (o->path == NULL || o->tmp == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    snprintf(o->path, n, "%s/%s", dir, name);
    snprintf(o->tmp, n, "%s/%s.tmp", dir, name);
    o->f = fopen(o->tmp, "wb");
    if (o->f == NULL)
        return CVM_FAIL(err, CVM_EIO, "cannot create %s: %s", o->tmp, strerror(errno));
    return CVM_OK;
}

static int out_close(gen_out *o, cvm_err *err)
{
    int bad = ferror(o->f);
    int e = errno;
    if (fclose(o->f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    o->f = NULL;
    if (bad) {
        unlink(o->tmp);
        return CVM_FAIL(err, CVM_EIO, "cannot write %s: %s", o->tmp, strerror(e));
    }
    if (rename(o->tmp, o->path) != 0) {
        e = errno;
        unlink(o->tmp);
        return CVM_FAIL(err, CVM_EIO, "cannot rename %s to %s: %s", o->tmp, o->path,
                        strerror(e));
    }
    return CVM_OK;
}

static void out_release(gen_out *o)
{
    if (o->f != NULL) {
        fclose(o->f);
        unlink(o->tmp);
        o->f = NULL;
    }
    cvm_free(o->path);
    cvm_free(o->tmp);
    o->path = o->tmp = NULL;
}

static int out_write(gen_out *o, const char *buf, size_t n, cvm_err *err)
{
    if (n && fwrite(buf, 1, n, o->f) != n)
        return CVM_FAIL(err, CVM_EIO, "cannot write %s: %s", o->tmp, strerror(errno));
    return CVM_OK;
}

static int make_dirs(const char *dir, cvm_err *err)
{
    char *d = cvm_strdup(dir);
    if (d == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/')
        d[--n] = '\0';
    for (char *s = d + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(d, 0777) != 0 && errno != EEXIST) {
                int e = errno;
                int rc = CVM_FAIL(err, CVM_EIO, "cannot create directory %s: %s", d, strerror(e));
                cvm_free(d);
                return rc;
            }
            *s = c;
            if (c == '\0')
                break;
        }
    }
    struct stat st;
    int ok = stat(d, &st) == 0 && S_ISDIR(st.st_mode);
    cvm_free(d);
    if (!ok)
        return CVM_FAIL(err, CVM_EIO, "cannot use %s as output directory: not a directory", dir);
    return CVM_OK;
}

/* The damaged copy of one line. Rare, so clarity beats speed here. */
static char *emit_bad(char *p, const char *oid, uint32_t lineno, const char *cid, const char *dstr,
                      uint32_t tod, const char *pid, const gen_line *l, int32_t cost, int kind,
                      int variant)
{
    char f[8][64];
    int nf = 8;
    snprintf(f[0], 64, "%.11s", oid);
    snprintf(f[1], 64, "%u", (unsigned)lineno);
    snprintf(f[2], 64, "%s", kind == BAD_MISSING_CUSTOMER ? "" : cid);
    snprintf(f[3], 64, "%.10s %02u:%02u:%02u", dstr, (unsigned)(tod / 3600),
             (unsigned)(tod / 60 % 60), (unsigned)(tod % 60));
    snprintf(f[4], 64, "%s", pid);
    snprintf(f[5], 64, "%d", (int)l->qty);
    *put_cents(f[6], l->price) = '\0';
    *put_cents(f[7], cost) = '\0';
    if (kind == BAD_NUMBER) {
        if (variant == 0) {
            strcat(f[5], "x");
        } else if (variant == 1) { /* decimal comma, quoted as a spreadsheet would */
            size_t n = strlen(f[6]);
            *strchr(f[6], '.') = ',';
            memmove(f[6] + 1, f[6], n);
            f[6][0] = '"';
            f[6][n + 1] = '"';
            f[6][n + 2] = '\0';
        } else {
            strcat(f[7], " EUR");
        }
    } else if (kind == BAD_DATE) {
        switch (variant) {
        case 0: memcpy(f[3] + 5, "13-45", 5); break;
        case 1: snprintf(f[3], 64, "yesterday"); break;
        case 2: memcpy(f[3] + 5, "02-30", 5); break;
        default:
            snprintf(f[3], 64, "%.2s/%.2s/%.4s %02u:%02u", dstr + 8, dstr + 5, dstr,
                     (unsigned)(tod / 3600), (unsigned)(tod / 60 % 60));
            break;
        }
    } else if (kind == BAD_FIELD_COUNT) {
        if (variant == 0) { /* product_id lost */
            for (int i = 4; i < 7; i++)
                memcpy(f[i], f[i + 1], 64);
            nf = 7;
        } else if (variant == 1) { /* line number lost */
            for (int i = 1; i < 7; i++)
                memcpy(f[i], f[i + 1], 64);
            nf = 7;
        }
    }
    for (int i = 0; i < nf; i++) {
        if (i)
            *p++ = ',';
        p = put_str(p, f[i], strlen(f[i]));
    }
    if (kind == BAD_FIELD_COUNT && variant == 2)
        p = put_str(p, ",1", 2); /* a trailing extra field */
    *p++ = '\n';
    return p;
}

static size_t format_chunk(const gen_ctx *g, const gen_chunk *ch, char *buf)
{
    char *p = buf;
    uint64_t good = ch->good_begin;
    size_t bi = ch->bad_begin;
    uint32_t so = ch->so_begin, rt = ch->rt_begin;
    char oid[12], mid[48];
    for (size_t j = ch->o_begin; j < ch->o_end; j++) {
        const gen_order *o = &g->orders[g->keys[j] & 0xFFFFFFFFu];
        uint32_t num = o->is_return ? ++rt : ++so;
        oid[0] = o->is_return ? 'R' : 'S';
        oid[1] = o->is_return ? 'T' : 'O';
        put_pad(oid + 2, ORDER_BASE + num, 9);
        /* ",CUSTOMER,YYYY-MM-DD HH:MM:SS," is the same for all lines */
        uint32_t day = o->secs / 86400u, tod = o->secs % 86400u;
        char *m = mid;
        *m++ = ',';
        m = put_str(m, g->cid[o->cust], 10);
        *m++ = ',';
        m = put_str(m, g->dstr[day], 10);
        *m++ = ' ';
        m = put_pad(m, tod / 3600, 2);
        *m++ = ':';
        m = put_pad(m, tod / 60 % 60, 2);
        *m++ = ':';
        m = put_pad(m, tod % 60, 2);
        *m++ = ',';
        size_t midlen = (size_t)(m - mid);
        for (uint32_t li = 0; li < o->nlines; li++, good++) {
            const gen_line *l = &o->u.lines[li];
            int32_t cost = g->prod[l->prod].cost;
            p = put_str(p, oid, 11);
            *p++ = ',';
            p = put_u64(p, li + 1);
            p = put_str(p, mid, midlen);
            p = put_str(p, g->pid[l->prod], g->pidlen[l->prod]);
            *p++ = ',';
            p = put_i64(p, l->qty);
            *p++ = ',';
            p = put_cents(p, l->price);
            *p++ = ',';
            p = put_cents(p, cost);
            *p++ = '\n';
            if (bi < g->nbad && g->bad[bi].good == good) {
                p = emit_bad(p, oid, li + 1, g->cid[o->cust], g->dstr[day], tod,
                             g->pid[l->prod], l, cost, g->bad[bi].kind, g->bad[bi].variant);
                bi++;
            }
        }
    }
    return (size_t)(p - buf);
}

static const char tx_header[] =
    "order_id,line,customer_id,date,product_id,quantity,unit_price,unit_cost\n";

static int write_transactions(gen_ctx *g, const char *dir, size_t *bytes, cvm_err *err)
{
    /* Chunks: runs of whole orders of about CHUNK_LINES lines. */
    size_t cap_chunks = 16, nch = 0;
    gen_chunk *ch = cvm_malloc(cap_chunks * sizeof *ch);
    if (ch == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    uint64_t good = 0;
    size_t bi = 0, maxcap = 0;
    uint32_t so = 0, rt = 0;
    for (size_t j = 0; j < g->norders;) {
        if (nch == cap_chunks) {
            gen_chunk *t = cvm_reallocarray(ch, cap_chunks * 2, sizeof *ch);
            if (t == NULL) {
                cvm_free(ch);
                return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
            }
            ch = t;
            cap_chunks *= 2;
        }
        gen_chunk *c = &ch[nch++];
        c->o_begin = j;
        c->good_begin = good;
        c->bad_begin = bi;
        c->so_begin = so;
        c->rt_begin = rt;
        uint64_t lines = 0;
        while (j < g->norders && lines < CHUNK_LINES) {
            const gen_order *o = &g->orders[g->keys[j] & 0xFFFFFFFFu];
            lines += o->nlines;
            if (o->is_return)
                rt++;
            else
                so++;
            j++;
        }
        good += lines;
        size_t b0 = bi;
        while (bi < g->nbad && g->bad[bi].good < good)
            bi++;
        c->o_end = j;
        c->cap = (size_t)(lines + (bi - b0)) * MAX_LINE_BYTES;
        if (c->cap > maxcap)
            maxcap = c->cap;
    }

    gen_out out = {0};
    int rc = out_open(&out, dir, "transactions.csv", err);
    if (rc == CVM_OK)
        rc = out_write(&out, tx_header, sizeof tx_header - 1, err);
    int nt = g->nthreads;
    char **bufs = NULL;
    if (rc == CVM_OK) {
        bufs = cvm_calloc((size_t)nt, sizeof *bufs);
        if (bufs == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        for (int t = 0; rc == CVM_OK && t < nt; t++)
            if ((bufs[t] = cvm_malloc(maxcap ? maxcap : 1)) == NULL)
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory for output buffers");
    }
    size_t total = sizeof tx_header - 1;
    if (rc == CVM_OK) {
        int werr = 0, wno = 0;
        long n = (long)nch;
        const gen_ctx *cg = g;
        FILE *f = out.f;
#ifdef _OPENMP
#pragma omp parallel for ordered schedule(static, 1) num_threads(nt) default(none) \
    shared(cg, ch, bufs, n, f, werr, wno, total)
#endif
        for (long c = 0; c < n; c++) {
#ifdef _OPENMP
            char *buf = bufs[omp_get_thread_num()];
#else
            char *buf = bufs[0];
#endif
            size_t len = format_chunk(cg, &ch[c], buf);
#ifdef _OPENMP
#pragma omp ordered
#endif
            {
                if (!werr && fwrite(buf, 1, len, f) != len) {
                    werr = 1;
                    wno = errno;
                }
                total += len;
            }
        }
        if (werr)
            rc = CVM_FAIL(err, CVM_EIO, "cannot write %s: %s", out.tmp, strerror(wno));
    }
    if (bufs != NULL)
        for (int t = 0; t < nt; t++)
            cvm_free(bufs[t]);
    cvm_free(bufs);
    cvm_free(ch);
    if (rc == CVM_OK)
        rc = out_close(&out, err);
    out_release(&out);
    *bytes = total;
    return rc;
}

/* A growable text buffer for the small files. */
typedef struct gen_text {
    char *buf;
    size_t len, cap;
    int oom;
} gen_text;

static char *text_room(gen_text *t, size_t need)
{
    if (t->len + need > t->cap) {
        size_t cap = t->cap ? t->cap : 1 << 16;
        while (cap < t->len + need)
            cap *= 2;
        char *b = cvm_realloc(t->buf, cap);
        if (b == NULL) {
            t->oom = 1;
            return NULL;
        }
        t->buf = b;
        t->cap = cap;
    }
    return t->buf + t->len;
}

static int text_flush(gen_text *t, gen_out *o, cvm_err *err)
{
    if (t->oom)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory writing %s", o->path);
    int rc = out_write(o, t->buf, t->len, err);
    t->len = 0;
    return rc;
}

/* Appends a line of n bytes to t, writing t out past 1 MiB. */
static int text_line(gen_text *t, gen_out *o, const char *line, size_t n, cvm_err *err)
{
    char *p = text_room(t, n);
    if (p == NULL)
        return text_flush(t, o, err); /* reports the out-of-memory */
    memcpy(p, line, n);
    t->len += n;
    return t->len > (1u << 20) ? text_flush(t, o, err) : CVM_OK;
}

/* Writes out what t holds, closes o when everything went well (rc) and
 * releases it either way; returns the file's status. */
static int text_finish(gen_text *t, gen_out *o, int rc, cvm_err *err)
{
    if (rc == CVM_OK)
        rc = text_flush(t, o, err);
    if (rc == CVM_OK)
        rc = out_close(o, err);
    out_release(o);
    return rc;
}

static void customer_name(const gen_ctx *g, size_t i, char *out, size_t cap)
{
    static const char *const first[] = {"Anna", "Jean", "Marie", "Lukas", "Sophie", "François",
                                        "Jürgen", "Élodie", "Paul", "Chloé", "Thomas", "Lea",
                                        "Karl", "Zoë", "Mehmet", "Ana"};
    static const char *const last[] = {"Müller", "Dupont", "Schmidt", "Lefèvre", "Meier",
                                       "Martin", "Weiß", "Bernard", "Schneider", "O'Brien",
                                       "Fischer", "Moreau", "Keller", "García", "Huber",
                                       "Lambert"};
    static const char *const city[] = {"Lyon", "München", "Zürich", "Köln", "Genève", "Graz",
                                       "Lille", "Nürnberg", "Bordeaux", "Linz", "Bern",
                                       "Strasbourg"};
    rng_t r;
    rng_seed(&r, g->seed, ST_NAMES, i);
    const char *fn = first[rng_below(&r, 16)], *ln = last[rng_below(&r, 16)];
    const char *ct = city[rng_below(&r, 12)];
    uint32_t v = rng_below(&r, 4);
    switch (g->cust[i].type) {
    case T_HOS: {
        static const char *const site[] = {"Nord", "Est", "Sud", "Ouest"};
        if (v == 0)
            snprintf(out, cap, "Klinikum %s", ct);
        else if (v == 1)
            snprintf(out, cap, "Hôpital Saint-%s, %s", fn, ct);
        else if (v == 2)
            snprintf(out, cap, "Centre Hospitalier de %s, site %s", ct, site[rng_below(&r, 4)]);
        else
            snprintf(out, cap, "Clinique \"Les Cèdres\" %s", ct);
        break;
    }
    case T_DOC:
        if (v == 0)
            snprintf(out, cap, "Dr. %s %s", fn, ln);
        else if (v == 1)
            snprintf(out, cap, "Dr. med. %s %s", fn, ln);
        else if (v == 2)
            snprintf(out, cap, "%s, %s (Dr.)", ln, fn);
        else
            snprintf(out, cap, "Dr. %s \"%.3s\" %s", fn, fn, ln);
        break;
    case T_PHA:
        if (v == 0)
            snprintf(out, cap, "Apotheke am Markt %s", ct);
        else if (v == 1)
            snprintf(out, cap, "Pharmacie du Centre, %s", ct);
        else if (v == 2)
            snprintf(out, cap, "Löwen-Apotheke %s", ct);
        else
            snprintf(out, cap, "Pharmacie %s", ln);
        break;
    case T_CON:
        if (v == 0)
            snprintf(out, cap, "Pflegeheim Sonnenhof %s", ct);
        else if (v == 1)
            snprintf(out, cap, "EHPAD Les Tilleuls, %s", ct);
        else if (v == 2)
            snprintf(out, cap, "Praxisgemeinschaft %s", ct);
        else
            snprintf(out, cap, "%s %s", fn, ln);
        break;
    case T_DIS:
        if (v == 0)
            snprintf(out, cap, "%s & Söhne Distribution GmbH", ln);
        else if (v == 1)
            snprintf(out, cap, "PharmaLog %s S.A.", ct);
        else if (v == 2)
            snprintf(out, cap, "MedSupply %s, Inc.", ct);
        else
            snprintf(out, cap, "Grossiste \"Santé Plus\" %s SARL", ct);
        break;
    default:
        snprintf(out, cap, "%s %s", fn, ln);
        break;
    }
}

static int write_customers(const gen_ctx *g, const char *dir, cvm_err *err)
{
    gen_out o = {0};
    gen_text t = {0};
    int rc = out_open(&o, dir, "customers.csv", err);
    static const char hdr[] = "customer_id,name,type,region,satisfaction,complaints,influence\n";
    char name[160];
    if (rc == CVM_OK && text_room(&t, sizeof hdr)) {
        memcpy(t.buf, hdr, sizeof hdr - 1);
        t.len = sizeof hdr - 1;
    }
    for (size_t i = 0; rc == CVM_OK && i < g->ncust; i++) {
        const gen_cust *c = &g->cust[i];
        customer_name(g, i, name, sizeof name);
        char *p = text_room(&t, 512);
        if (p == NULL)
            break;
        p = put_str(p, g->cid[i], 10);
        *p++ = ',';
        p = put_csv(p, name);
        *p++ = ',';
        p = put_str(p, type_name[c->type], strlen(type_name[c->type]));
        *p++ = ',';
        p = put_str(p, region_name[c->region], strlen(region_name[c->region]));
        *p++ = ',';
        if (c->sat10 >= 0) {
            p = put_u64(p, (uint64_t)c->sat10 / 10);
            *p++ = '.';
            *p++ = (char)('0' + c->sat10 % 10);
        }
        *p++ = ',';
        p = put_u64(p, c->complaints);
        *p++ = ',';
        if (c->influence >= 0)
            p = put_u64(p, (uint64_t)c->influence);
        *p++ = '\n';
        t.len = (size_t)(p - t.buf);
        if (t.len > (1u << 20))
            rc = text_flush(&t, &o, err);
    }
    rc = text_finish(&t, &o, rc, err);
    cvm_free(t.buf);
    return rc;
}

static int write_products(const gen_ctx *g, const char *dir, cvm_err *err)
{
    gen_out o = {0};
    gen_text t = {0};
    int rc = out_open(&o, dir, "products.csv", err);
    static const char hdr[] = "product_id,name,category,unit_cost\n";
    if (rc == CVM_OK && text_room(&t, sizeof hdr)) {
        memcpy(t.buf, hdr, sizeof hdr - 1);
        t.len = sizeof hdr - 1;
    }
    for (int i = 0; rc == CVM_OK && i < N_ITEMS; i++) {
        char *p = text_room(&t, 512);
        if (p == NULL)
            break;
        const char *cat = g->prod[i].cat < N_CAT ? cat_name[g->prod[i].cat] : "Non-product";
        p = put_str(p, g->pid[i], g->pidlen[i]);
        *p++ = ',';
        p = put_csv(p, g->pname[i]);
        *p++ = ',';
        p = put_str(p, cat, strlen(cat));
        *p++ = ',';
        p = put_cents(p, g->prod[i].cost);
        *p++ = '\n';
        t.len = (size_t)(p - t.buf);
    }
    rc = text_finish(&t, &o, rc, err);
    cvm_free(t.buf);
    return rc;
}

/* Interactions of one customer, in date order. Key accounts are visited
 * about monthly while they buy; every complaint counted in customers.csv has
 * its row. */
typedef struct gen_event {
    uint32_t day;
    uint8_t kind;
    int32_t cost;
} gen_event;

enum { EV_VISIT, EV_CALL, EV_COMPLAINT, EV_SAMPLE };
static const char *const ev_name[4] = {"visit", "call", "complaint", "sample"};

static int cmp_event(const void *a, const void *b)
{
    const gen_event *x = a, *y = b;
    if (x->day != y->day)
        return x->day < y->day ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

static int interactions_of(const gen_ctx *g, size_t i, gen_text *t, gen_event **ev, size_t *cap)
{
    const gen_cust *c = &g->cust[i];
    rng_t r;
    rng_seed(&r, g->seed, ST_INTERACTIONS, i);
    int d0, d1;
    if (c->prospect) {
        d0 = 0;
        d1 = g->days - 1;
    } else {
        d0 = (int)floor(c->t0);
        d1 = (int)floor(c->t1) + 30;
        if (d0 < 0)
            d0 = 0;
        if (d1 > g->days - 1)
            d1 = g->days - 1;
    }
    double span = d1 - d0 + 1;
    int key = !c->prospect && (c->type == T_HOS || c->type == T_DIS || c->seg == S_CHAMP ||
                               (c->type == T_DOC && c->influence >= 70));
    uint32_t nv = c->prospect ? rng_poisson(&r, 1.0)
                  : key       ? (uint32_t)(span / rng_uniform(&r, 20, 40)) + 1
                              : rng_poisson(&r, 0.5 + 0.5 * span / 365.0);
    uint32_t nc = rng_poisson(&r, (c->prospect ? 1.0 : 1.0 + span / 60.0));
    uint32_t ns = c->type == T_DOC ? rng_poisson(&r, 1.0 + span / 90.0) : rng_poisson(&r, 0.2);
    uint32_t nq = c->complaints;
    size_t n = (size_t)nv + nc + ns + nq;
    if (n > 100000)
        n = 100000;
    if (n > *cap) {
        gen_event *e = cvm_reallocarray(*ev, n, sizeof *e);
        if (e == NULL)
            return CVM_ENOMEM;
        *ev = e;
        *cap = n;
    }
    size_t k = 0;
    const uint32_t counts[4] = {nv, nc, nq, ns};
    for (int kind = 0; kind < 4; kind++) {
        for (uint32_t j = 0; j < counts[kind] && k < n; j++, k++) {
            int day = d0 + (int)rng_below(&r, (uint32_t)span);
            day = shift_weekday(g, &r, day, 0.03);
            if (g->wday[day] >= 5 && day >= 2)
                day -= g->wday[day] - 4; /* no weekend visits at the end either */
            double cost;
            switch (kind) {
            case EV_VISIT: cost = rng_uniform(&r, 80, 150); break;
            case EV_CALL: cost = rng_uniform(&r, 5, 15); break;
            case EV_COMPLAINT: cost = rng_uniform(&r, 40, 200); break;
            default: cost = rng_uniform(&r, 18, 22); break;
            }
            (*ev)[k].day = (uint32_t)day;
            (*ev)[k].kind = (uint8_t)kind;
            (*ev)[k].cost = (int32_t)llround(cost * 100);
        }
    }
    qsort(*ev, k, sizeof **ev, cmp_event);
    for (size_t j = 0; j < k; j++) {
        char *p = text_room(t, 64);
        if (p == NULL)
            return CVM_ENOMEM;
        p = put_str(p, g->cid[i], 10);
        *p++ = ',';
        p = put_str(p, g->dstr[(*ev)[j].day], 10);
        *p++ = ',';
        const char *kn = ev_name[(*ev)[j].kind];
        p = put_str(p, kn, strlen(kn));
        *p++ = ',';
        p = put_cents(p, (*ev)[j].cost);
        *p++ = '\n';
        t->len = (size_t)(p - t->buf);
    }
    return CVM_OK;
}

static int write_interactions(const gen_ctx *g, const char *dir, cvm_err *err)
{
    gen_out o = {0};
    int rc = out_open(&o, dir, "interactions.csv", err);
    static const char hdr[] = "customer_id,date,kind,cost\n";
    if (rc == CVM_OK)
        rc = out_write(&o, hdr, sizeof hdr - 1, err);
    if (rc != CVM_OK) {
        out_release(&o);
        return rc;
    }
    long nb = (long)((g->ncust + 255) / 256);
    int werr = 0, wno = 0, oom = 0;
    FILE *f = o.f;
#ifdef _OPENMP
#pragma omp parallel num_threads(g->nthreads) default(none) shared(g, nb, f, werr, wno, oom)
#endif
    {
        gen_text t = {0};
        gen_event *ev = NULL;
        size_t cap = 0;
#ifdef _OPENMP
#pragma omp for ordered schedule(static, 1)
#endif
        for (long b = 0; b < nb; b++) {
            size_t lo = (size_t)b * 256, hi = lo + 256;
            if (hi > g->ncust)
                hi = g->ncust;
            t.len = 0;
            int bad = 0;
            for (size_t i = lo; i < hi && !bad; i++)
                bad = interactions_of(g, i, &t, &ev, &cap) != CVM_OK;
#ifdef _OPENMP
#pragma omp ordered
#endif
            {
                if (bad)
                    oom = 1;
                if (!werr && !oom && t.len && fwrite(t.buf, 1, t.len, f) != t.len) {
                    werr = 1;
                    wno = errno;
                }
            }
        }
        cvm_free(t.buf);
        cvm_free(ev);
    }
    if (oom)
        rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory writing %s", o.tmp);
    else if (werr)
        rc = CVM_FAIL(err, CVM_EIO, "cannot write %s: %s", o.tmp, strerror(wno));
    if (rc == CVM_OK)
        rc = out_close(&o, err);
    out_release(&o);
    return rc;
}

static int write_truth(const gen_ctx *g, const char *dir, cvm_err *err)
{
    gen_out o = {0};
    gen_text t = {0};
    int rc;
    char line[256];

    /* truth_customers.csv */
    rc = out_open(&o, dir, "truth_customers.csv", err);
    if (rc == CVM_OK)
        rc = out_write(&o, "customer_id,type,segment,cycle_days,churned\n", 44, err);
    for (size_t i = 0; rc == CVM_OK && i < g->ncust; i++) {
        const gen_cust *c = &g->cust[i];
        if (c->prospect)
            continue;
        int n = snprintf(line, sizeof line, "%s,%s,%s,%.2f,%d\n", g->cid[i], type_name[c->type],
                         seg_name[c->seg], c->cycle, c->seg == S_LAPSED);
        rc = text_line(&t, &o, line, (size_t)n, err);
    }
    rc = text_finish(&t, &o, rc, err);

    /* truth_bundles.csv */
    if (rc == CVM_OK)
        rc = out_open(&o, dir, "truth_bundles.csv", err);
    if (rc == CVM_OK)
        rc = out_write(&o, "bundle_id,products,support,lift\n", 32, err);
    for (int b = 0; rc == CVM_OK && b < N_BUNDLES; b++) {
        const gen_bundle *bu = &g->bundle[b];
        char prods[64] = "";
        for (int k = 0; k < bu->n; k++) {
            strcat(prods, k ? " " : "");
            strcat(prods, g->pid[bu->p[k]]);
        }
        int n = snprintf(line, sizeof line, "B%d,%s,%.17g,%.17g\n", b + 1, prods, bu->support,
                         bu->lift);
        rc = text_line(&t, &o, line, (size_t)n, err);
    }
    rc = text_finish(&t, &o, rc, err);

    /* truth_cycles.csv */
    if (rc == CVM_OK)
        rc = out_open(&o, dir, "truth_cycles.csv", err);
    if (rc == CVM_OK)
        rc = out_write(&o, "customer_id,product_id,cycle_days\n", 34, err);
    for (size_t i = 0; rc == CVM_OK && i < g->ncust; i++) {
        const gen_cust *c = &g->cust[i];
        if (c->prospect || c->type != T_PHA)
            continue;
        /* in product id order, like an export sorted by key */
        int idx[4] = {0, 1, 2, 3};
        for (int a = 0; a < c->ncore; a++)
            for (int b = a + 1; b < c->ncore; b++)
                if (c->core[idx[b]] < c->core[idx[a]]) {
                    int tmp = idx[a];
                    idx[a] = idx[b];
                    idx[b] = tmp;
                }
        for (int k = 0; rc == CVM_OK && k < c->ncore; k++) {
            int j = idx[k];
            int n = snprintf(line, sizeof line, "%s,%s,%.2f\n", g->cid[i], g->pid[c->core[j]],
                             c->cycle * c->core_m[j]);
            rc = text_line(&t, &o, line, (size_t)n, err);
        }
    }
    rc = text_finish(&t, &o, rc, err);

    /* truth_bad_rows.csv */
    if (rc == CVM_OK)
        rc = out_open(&o, dir, "truth_bad_rows.csv", err);
    if (rc == CVM_OK)
        rc = out_write(&o, "line,reason\n", 12, err);
    for (size_t i = 0; rc == CVM_OK && i < g->nbad; i++) {
        char *p = text_room(&t, 64);
        if (p == NULL)
            break;
        p = put_u64(p, g->bad[i].phys);
        *p++ = ',';
        const char *rs = bad_reason[g->bad[i].kind];
        p = put_str(p, rs, strlen(rs));
        *p++ = '\n';
        t.len = (size_t)(p - t.buf);
    }
    rc = text_finish(&t, &o, rc, err);
    cvm_free(t.buf);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Driver                                                                   */

static void ctx_free(gen_ctx *g)
{
    free_blocks(g);
    cvm_free(g->dstr);
    cvm_free(g->wday);
    cvm_free(g->lam);
    cvm_free(g->lcum);
    for (int i = 0; i < N_ITEMS; i++)
        cvm_free(g->pname[i]);
    cvm_free(g->alias);
    cvm_free(g->cust);
    cvm_free(g->cid);
    cvm_free(g->orders);
    cvm_free(g->keys);
    cvm_free(g->bad);
}

/* Finds the rate scale that gives target lines (lines grow about linearly
 * with the scale, with a floor of one order per customer), keeping the last
 * pass's orders. */
static int scale_to_target(gen_ctx *g, uint64_t target, cvm_err *err)
{
    double s = 1.0, s_prev = 0, l_prev = 0;
    uint64_t lines = 0;
    double tol = 0.003 * (double)target;
    for (int it = 0; it < 16; it++) {
        CVM_TRY(gen_pass(g, s, &lines, err));
        double l = (double)lines;
        if (fabs(l - (double)target) <= tol)
            return CVM_OK;
        double next;
        if (it == 0 || l == l_prev)
            next = s * (double)target / l;
        else
            next = s + (s - s_prev) * ((double)target - l) / (l - l_prev);
        if (!(next > 0) || !isfinite(next))
            next = s * (double)target / l;
        if (next < s / 8)
            next = s / 8;
        if (next > s * 8)
            next = s * 8;
        s_prev = s;
        l_prev = l;
        s = next;
        if (s < 1e-6 || s > 1e6)
            break;
    }
    if (fabs((double)lines - (double)target) <= 0.01 * (double)target)
        return CVM_OK;
    return CVM_FAIL(err, CVM_EINVAL,
                    "target_lines %llu cannot be reached with %zu customers "
                    "(closest: %llu lines); change customers",
                    (unsigned long long)target, g->ncust, (unsigned long long)lines);
}

int cvm_gen_run(const cvm_gen_params *p, cvm_gen_stats *stats, cvm_err *err)
{
    const char *why = cvm_gen_params_check(p);
    if (why != NULL)
        return CVM_FAIL(err, CVM_EINVAL, "%s", why);
    gen_ctx *g = cvm_calloc(1, sizeof *g);
    if (g == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    int rc;
    g->p = p;
    g->seed = p->seed;
    g->days = p->days;
    parse_date(p->start, &g->day0);
#ifdef _OPENMP
    g->nthreads = p->threads > 0 ? p->threads : omp_get_max_threads();
#else
    g->nthreads = 1;
#endif
    if (g->nthreads < 1)
        g->nthreads = 1;
    g->ncust = p->customers;

    rc = setup_calendar(g, err);
    if (rc == CVM_OK)
        rc = setup_catalogue(g, err);
    if (rc == CVM_OK) {
        g->cust = cvm_calloc(g->ncust, sizeof *g->cust);
        g->cid = cvm_calloc(g->ncust, sizeof *g->cid);
        if (g->cust == NULL || g->cid == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory for %zu customers", g->ncust);
    }
    if (rc == CVM_OK) {
        long n = (long)g->ncust;
        const gen_ctx *cg = g;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(g->nthreads) default(none) shared(cg, n)
#endif
        for (long i = 0; i < n; i++) {
            setup_customer(cg, (size_t)i);
        }
    }
    if (rc == CVM_OK) {
        if (p->target_lines > 0) {
            rc = scale_to_target(g, p->target_lines, err);
        } else {
            uint64_t lines;
            rc = gen_pass(g, 1.0, &lines, err);
        }
    }
    if (rc == CVM_OK)
        rc = assemble(g, err);
    if (rc == CVM_OK)
        rc = make_dirs(p->out_dir, err);
    if (rc == CVM_OK)
        rc = write_products(g, p->out_dir, err);
    if (rc == CVM_OK)
        rc = write_customers(g, p->out_dir, err);
    size_t bytes = 0;
    if (rc == CVM_OK)
        rc = write_transactions(g, p->out_dir, &bytes, err);
    if (rc == CVM_OK)
        rc = write_interactions(g, p->out_dir, err);
    if (rc == CVM_OK)
        rc = write_truth(g, p->out_dir, err);
    if (rc == CVM_OK && stats != NULL) {
        memset(stats, 0, sizeof *stats);
        stats->lines = (size_t)(g->good_lines + g->nbad);
        stats->orders = g->norders;
        stats->bad_rows = g->nbad;
        stats->bytes = bytes;
        stats->returns = g->nreturns;
        stats->scale = g->scale;
    }
    ctx_free(g);
    cvm_free(g);
    return rc;
}
