#include "job.h"

#include <jansson.h>
#include <stdarg.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "actions.h"
#include "alloc.h"
#include "cache.h"
#include "csvread.h"
#include "datetime.h"
#include "filehash.h"
#include "grading.h"
#include "ingest.h"
#include "parallel.h"
#include "profit.h"
#include "publish.h"
#include "purchases.h"
#include "rejects.h"
#include "rfm.h"
#include "schema.h"
#include "publisher.h"
#include "stage.h"
#include "table.h"
#include "textparse.h"

int cvm_job_exit_code(int status, bool output_phase)
{
    switch (status) {
    case CVM_OK:
        return CVM_EXIT_OK;
    case CVM_ECONFIG:
    case CVM_EINVAL:
        return CVM_EXIT_USAGE;
    case CVM_EDATA:
    case CVM_ELIMIT:
        return CVM_EXIT_DATA;
    case CVM_EIO:
        return output_phase ? CVM_EXIT_OUTPUT : CVM_EXIT_DATA;
    case CVM_EBUSY:
        return CVM_EXIT_LOCKED;
    default:
        return CVM_EXIT_INTERNAL;
    }
}

/* ------------------------------------------------------------------ config */

static const char *cfg_source(const cvm_config *c)
{
    const char *p = cvm_config_path(c);
    return p ? p : "<config>";
}

static int parse_delim(const cvm_config *c, const char *key, char *out, cvm_err *err)
{
    const char *d = cvm_config_str(c, key);
    if (strcmp(d, "tab") == 0 || strcmp(d, "\\t") == 0 || strcmp(d, "\t") == 0) {
        *out = '\t';
        return CVM_OK;
    }
    if (strlen(d) != 1 || d[0] == '"' || d[0] == '\n' || d[0] == '\r')
        return CVM_FAIL(err, CVM_ECONFIG, "%s: %s must be one character or \"tab\", got '%s'",
                        cfg_source(c), key, d);
    *out = d[0];
    return CVM_OK;
}

/* Reads the bins-1 ascending numbers of a *_breaks list. */
static int parse_breaks(const cvm_config *c, const char *key, int bins, double *out, cvm_err *err)
{
    size_t n = cvm_config_list_len(c, key);
    if ((int)n != bins - 1)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: %s needs rfm.bins - 1 = %d break points, got %zu",
                        cfg_source(c), key, bins - 1, n);
    for (size_t i = 0; i < n; i++) {
        const char *s = cvm_config_list_at(c, key, i);
        if (!cvm_parse_double(s, strlen(s), &out[i]))
            return CVM_FAIL(err, CVM_ECONFIG, "%s: %s[%zu] = '%s' is not a number", cfg_source(c),
                            key, i, s);
        if (i > 0 && !(out[i] > out[i - 1]))
            return CVM_FAIL(err, CVM_ECONFIG, "%s: %s must be strictly ascending", cfg_source(c), key);
    }
    return CVM_OK;
}

static int parse_range(const char *s, int bins, int *lo, int *hi)
{
    if (s == NULL || *s == '\0') {
        *lo = 1;
        *hi = bins;
        return 0;
    }
    long a, b;
    const char *dash = strchr(s, '-');
    if (dash == NULL) {
        if (!cvm_parse_long(s, strlen(s), &a))
            return -1;
        b = a;
    } else if (!cvm_parse_long(s, (size_t)(dash - s), &a) ||
               !cvm_parse_long(dash + 1, strlen(dash + 1), &b)) {
        return -1;
    }
    if (a < 1 || b > bins || a > b)
        return -1;
    *lo = (int)a;
    *hi = (int)b;
    return 0;
}

typedef struct job_params {
    cvm_rfm_segment_rule *segments;
    size_t n_segments;
    cvm_action_rule *rules;
    size_t n_rules;
    char grade_matrix[3][3];
    cvm_rfm_params rfm;
} job_params;

static void job_params_clear(job_params *jp)
{
    cvm_free(jp->segments);
    cvm_free(jp->rules);
    memset(jp, 0, sizeof *jp);
}

/* Cross-key checks and structured keys, before any data is read. */
static int build_params(const cvm_config *c, job_params *jp, cvm_err *err)
{
    memset(jp, 0, sizeof *jp);
    const char *src = cfg_source(c);
    if (!cvm_config_is_set(c, "input.transactions.path") ||
        *cvm_config_str(c, "input.transactions.path") == '\0')
        return CVM_FAIL(err, CVM_ECONFIG, "%s: input.transactions.path must be set", src);
    char d;
    static const char *const delims[] = {"input.transactions.delimiter", "input.customers.delimiter",
                                         "input.products.delimiter", "input.interactions.delimiter"};
    for (size_t i = 0; i < 4; i++)
        CVM_TRY(parse_delim(c, delims[i], &d, err));
    cvm_datefmt f;
    static const char *const fmts[] = {"input.transactions.date_format",
                                       "input.interactions.date_format"};
    for (size_t i = 0; i < 2; i++)
        if (cvm_datefmt_compile(cvm_config_str(c, fmts[i]), &f, err) != CVM_OK)
            return cvm_err_prefix(err, "%s: %s", src, fmts[i]);
    const char *tcol = cvm_config_str(c, "input.transactions.columns.customer");
    if (*tcol == '\0')
        return CVM_FAIL(err, CVM_ECONFIG, "%s: input.transactions.columns.customer must be set", src);
    if (*cvm_config_str(c, "input.transactions.columns.date") == '\0')
        return CVM_FAIL(err, CVM_ECONFIG, "%s: input.transactions.columns.date must be set", src);
    if (*cvm_config_str(c, "input.transactions.columns.unit_price") == '\0' &&
        *cvm_config_str(c, "input.transactions.columns.revenue") == '\0')
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: set input.transactions.columns.unit_price or .revenue", src);

    if (cvm_config_int(c, "job.partition") >= cvm_config_int(c, "job.partitions"))
        return CVM_FAIL(err, CVM_ECONFIG, "%s: job.partition must be below job.partitions (%ld)",
                        src, cvm_config_int(c, "job.partitions"));

    /* RFM. */
    cvm_rfm_params_default(&jp->rfm);
    jp->rfm.bins = (int)cvm_config_int(c, "rfm.bins");
    const char *method = cvm_config_str(c, "rfm.method");
    if (strcmp(method, "breaks") == 0) {
        jp->rfm.use_breaks = true;
        static const char *const bk[3] = {"rfm.recency_breaks", "rfm.frequency_breaks",
                                          "rfm.monetary_breaks"};
        for (int m = 0; m < 3; m++)
            CVM_TRY(parse_breaks(c, bk[m], jp->rfm.bins, jp->rfm.breaks[m], err));
    } else if (strcmp(method, "frozen") == 0 && *cvm_config_str(c, "rfm.freeze_from") == '\0') {
        return CVM_FAIL(err, CVM_ECONFIG, "%s: rfm.method = frozen needs rfm.freeze_from", src);
    }
    size_t ns = cvm_config_table_rows(c, "rfm.segments");
    if (ns > 31)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: rfm.segments has %zu rows, at most 31", src, ns);
    if (ns > 0) {
        jp->segments = cvm_calloc(ns, sizeof *jp->segments);
        if (jp->segments == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        jp->n_segments = ns;
        for (size_t i = 0; i < ns; i++) {
            cvm_rfm_segment_rule *g = &jp->segments[i];
            g->name = cvm_config_table_cell(c, "rfm.segments", i, "name");
            int line = cvm_config_table_row_line(c, "rfm.segments", i);
            if (g->name == NULL || *g->name == '\0')
                return CVM_FAIL(err, CVM_ECONFIG, "%s:%d: rfm.segments[%zu] needs a name", src,
                                line, i);
            static const char *const col[3] = {"r", "f", "m"};
            int *lo[3] = {&g->r_lo, &g->f_lo, &g->m_lo}, *hi[3] = {&g->r_hi, &g->f_hi, &g->m_hi};
            for (int m = 0; m < 3; m++) {
                const char *v = cvm_config_table_cell(c, "rfm.segments", i, col[m]);
                if (parse_range(v, jp->rfm.bins, lo[m], hi[m]) != 0)
                    return CVM_FAIL(err, CVM_ECONFIG,
                                    "%s:%d: rfm.segments[%zu].%s = '%s' must be a score or a "
                                    "range like 4-5 within 1..%d", src, line, i, col[m], v,
                                    jp->rfm.bins);
            }
        }
        jp->rfm.segments = jp->segments;
        jp->rfm.n_segments = ns;
    }
    const char *why = cvm_rfm_params_check(&jp->rfm);
    if (why)
        return CVM_FAIL(err, CVM_ECONFIG, "%s: %s", src, why);

    /* Grading. */
    const char *m = cvm_config_str(c, "grading.matrix");
    if (strlen(m) != 11 || m[3] != '/' || m[7] != '/')
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: grading.matrix must be three rows of three letters like "
                        "\"AAB/ABC/BCC\", got '%s'", src, m);
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++) {
            char g = m[r * 4 + k];
            if (g < 'A' || g > 'Z')
                return CVM_FAIL(err, CVM_ECONFIG, "%s: grading.matrix letters must be A-Z, got '%s'",
                                src, m);
            jp->grade_matrix[r][k] = g;
        }
    if (!(cvm_config_double(c, "grading.tier_mid") < cvm_config_double(c, "grading.tier_high")))
        return CVM_FAIL(err, CVM_ECONFIG, "%s: grading.tier_mid must be below grading.tier_high", src);
    if (!(cvm_config_double(c, "grid.volume_medium") < cvm_config_double(c, "grid.volume_large")))
        return CVM_FAIL(err, CVM_ECONFIG, "%s: grid.volume_medium must be below grid.volume_large", src);
    if (!(cvm_config_double(c, "grid.satisfaction_medium") <
          cvm_config_double(c, "grid.satisfaction_high")))
        return CVM_FAIL(err, CVM_ECONFIG,
                        "%s: grid.satisfaction_medium must be below grid.satisfaction_high", src);

    /* Actions. */
    size_t nr = cvm_config_table_rows(c, "actions.rules");
    jp->rules = cvm_calloc(nr ? nr : 1, sizeof *jp->rules);
    if (jp->rules == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    jp->n_rules = nr;
    for (size_t i = 0; i < nr; i++) {
        cvm_action_rule *r = &jp->rules[i];
        r->when = cvm_config_table_cell(c, "actions.rules", i, "when");
        r->action = cvm_config_table_cell(c, "actions.rules", i, "action");
        r->text = cvm_config_table_cell(c, "actions.rules", i, "text");
        r->source_line = cvm_config_table_row_line(c, "actions.rules", i);
        const char *pr = cvm_config_table_cell(c, "actions.rules", i, "priority");
        long pv = 3;
        if (pr && (!cvm_parse_long(pr, strlen(pr), &pv) || pv < 1 || pv > 9))
            return CVM_FAIL(err, CVM_ECONFIG, "%s:%d: actions.rules[%zu].priority must be 1..9, got '%s'",
                            src, r->source_line, i, pr);
        r->priority = (int)pv;
    }
    for (const cvm_stage *const *st = cvm_job_stages; *st; st++)
        if ((*st)->check)
            CVM_TRY((*st)->check(c, src, err));
    for (const cvm_publisher *const *pb = cvm_job_publishers; *pb; pb++)
        if ((*pb)->check)
            CVM_TRY((*pb)->check(c, src, err));
    cvm_actions_params ap = {jp->rules, jp->n_rules, src, 0};
    char buf[600];
    why = cvm_actions_params_check(&ap, buf, sizeof buf);
    if (why)
        return CVM_FAIL(err, CVM_ECONFIG, "%s", why);
    return CVM_OK;
}

int cvm_job_config(const cvm_job_opts *o, cvm_config **out, cvm_err *err)
{
    *out = NULL;
    size_t nschema;
    const cvm_cfg_key *schema = cvm_job_schema(&nschema);
    cvm_config *c = cvm_config_new(schema, nschema);
    if (c == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory creating the configuration");
    int rc = CVM_OK;
    if (o->job_path)
        rc = cvm_config_load_file(c, o->job_path, err);
    for (size_t i = 0; rc == CVM_OK && i < o->n_sets; i++)
        rc = cvm_config_set(c, o->sets[i], err);
    char buf[4200];
    if (rc == CVM_OK && o->threads > 0) {
        snprintf(buf, sizeof buf, "job.threads=%d", o->threads);
        rc = cvm_config_set(c, buf, err);
    }
    if (rc == CVM_OK && o->out_dir) {
        snprintf(buf, sizeof buf, "output.dir=%s", o->out_dir);
        rc = cvm_config_set(c, buf, err);
    }
    if (rc == CVM_OK && o->as_of) {
        snprintf(buf, sizeof buf, "value.as_of=%s", o->as_of);
        rc = cvm_config_set(c, buf, err);
    }
    if (rc == CVM_OK)
        rc = cvm_config_check(c, err);
    job_params jp;
    if (rc == CVM_OK) {
        rc = build_params(c, &jp, err);
        job_params_clear(&jp);
    }
    if (rc != CVM_OK) {
        cvm_config_free(c);
        return rc;
    }
    *out = c;
    return CVM_OK;
}

/* ------------------------------------------------------------------- run */

typedef struct run {
    const cvm_job_opts *o;
    cvm_log *log;
    cvm_config *cfg;
    job_params jp;
    int threads;
    char *path_txn, *path_cust, *path_prod, *path_int;
    cvm_txn_table txn;
    cvm_text_table cust, prod, inter;
    bool cust_has[7];   /* which customer-master columns the file has */
    cvm_rejects rej;
    cvm_ingest_stats ist;
    cvm_custtab *ct;
    json_t *summary;
    json_t *timings;
    json_t *degraded;
    json_t *inputs;
    cvm_rundir rd;
    double t_stage;
    int32_t as_of;
    uint64_t input_key;   /* what the transaction table depends on: files and ingest config */
    json_t *cache_json;
} run;

static char *resolve_path(const cvm_config *c, const char *key)
{
    if (!cvm_config_is_set(c, key))
        return NULL;
    const char *p = cvm_config_str(c, key);
    if (*p == '\0')
        return NULL;
    if (p[0] == '/' || cvm_config_origin(c, key) == CVM_CFG_FROM_SET)
        return cvm_strdup(p);
    const char *dir = cvm_config_dir(c);
    size_t n = strlen(dir) + strlen(p) + 2;
    char *r = cvm_malloc(n);
    if (r)
        snprintf(r, n, "%s/%s", dir, p);
    return r;
}

static void stage_done(run *R, const char *name, const char *detail)
{
    double now = cvm_now();
    double s = now - R->t_stage;
    R->t_stage = now;
    json_object_set_new(R->timings, name, json_real(round(s * 1e4) / 1e4));
    cvm_log_stage(R->log, name, s, detail);
}

static void on_progress(void *ctx, uint64_t done, uint64_t total)
{
    run *R = ctx;
    cvm_log_progress(R->log, "ingest", done, total);
}

static void degraded(run *R, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    json_array_append_new(R->degraded, json_string(buf));
    cvm_log_msg(R->log, CVM_LOG_INFO, "%s", buf);
}

/* Optional columns left at their default name may be absent from the file:
 * that is "not present", not an error. A name the user set must exist. */
static const char *opt_col(run *R, const char *key, char **header, size_t n)
{
    const char *v = cvm_config_str(R->cfg, key);
    if (*v == '\0' || cvm_config_origin(R->cfg, key) != CVM_CFG_FROM_DEFAULT)
        return v;
    for (size_t i = 0; i < n; i++)
        if (strcmp(header[i], v) == 0)
            return v;
    return "";
}

/* Records an input with its checksum in the manifest and, for the files the
 * transaction table depends on, in the parse cache key. */
static void note_input(run *R, const char *role, const char *path, uint64_t h, uint64_t size)
{
    char hex[17];
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    json_t *o = json_object();
    json_object_set_new(o, "role", json_string(role));
    json_object_set_new(o, "path", json_string(path));
    json_object_set_new(o, "bytes", json_integer((json_int_t)size));
    json_object_set_new(o, "checksum", json_string(hex));
    json_object_set_new(o, "checksum_algorithm", json_string("xxh3-64"));
    json_array_append_new(R->inputs, o);
    /* The customer numbering depends on the master's ids too. */
    if (strcmp(role, "transactions") == 0 || strcmp(role, "customers") == 0) {
        struct stat sb;
        int64_t mtime = stat(path, &sb) == 0 ? (int64_t)sb.st_mtime : 0;
        R->input_key = cvm_cache_key(R->input_key, role, strlen(role));
        R->input_key = cvm_cache_key(R->input_key, path, strlen(path));
        R->input_key = cvm_cache_key(R->input_key, &size, sizeof size);
        R->input_key = cvm_cache_key(R->input_key, &mtime, sizeof mtime);
        R->input_key = cvm_cache_key(R->input_key, &h, sizeof h);
    }
}

static int add_input(run *R, const char *role, const char *path, cvm_err *err)
{
    uint64_t h, size;
    CVM_TRY(cvm_file_checksum(path, &h, &size, err));
    note_input(R, role, path, h, size);
    return CVM_OK;
}

/* The ingest settings the table depends on, folded into the cache key. */
static uint64_t ingest_config_key(const run *R, uint64_t key)
{
    json_t *all = cvm_config_to_json(R->cfg);
    json_t *part = json_object();
    json_object_set(part, "transactions", json_object_get(json_object_get(all, "input"), "transactions"));
    json_object_set(part, "cleaning", json_object_get(all, "cleaning"));
    json_object_set(part, "partitions", json_object_get(json_object_get(all, "job"), "partitions"));
    json_object_set(part, "partition", json_object_get(json_object_get(all, "job"), "partition"));
    /* threads and chunk sizes do not change the table, but the cache is
     * about correctness first: chunk_mb stays in the key. */
    json_object_set_new(part, "cvm", json_string(CVM_VERSION));
    char *text = json_dumps(part, JSON_COMPACT | JSON_SORT_KEYS);
    if (text)
        key = cvm_cache_key(key, text, strlen(text));
    free(text);
    json_decref(part);
    json_decref(all);
    return key;
}

typedef struct sum_job {
    const char *path;
    uint64_t h, size;
    int rc;
    cvm_err err;
} sum_job;

static void *sum_thread(void *arg)
{
    sum_job *j = arg;
    j->rc = cvm_file_checksum(j->path, &j->h, &j->size, &j->err);
    return NULL;
}

/* Transactions from the parse cache when input.cache is on and the key
 * matches; otherwise parsed, and saved for the next run. The input's
 * checksum (part of the key) is computed while the cache file is mapped and
 * verified: the two take about as long, and a re-run is mostly these two. */
static int ingest_cached(run *R, const cvm_txn_spec *sp, cvm_err *err)
{
    const cvm_config *c = R->cfg;
    R->cache_json = json_object();
    json_object_set_new(R->summary, "cache", R->cache_json);
    if (!cvm_config_bool(c, "input.cache")) {
        json_object_set_new(R->cache_json, "status", json_string("off"));
        /* The checksum on a thread of its own while the CSV is parsed: it is
         * a tenth of the parse's work and would otherwise add to the wall
         * time (the parse keeps every core busy, so this only overlaps it). */
        sum_job sj = {sp->path, 0, 0, CVM_OK, {0}};
        pthread_t th;
        bool threaded = pthread_create(&th, NULL, sum_thread, &sj) == 0;
        if (!threaded)
            sum_thread(&sj);
        int rc = cvm_ingest_transactions(sp, R->cust.ids, &R->txn, &R->rej, &R->ist, err);
        if (threaded)
            pthread_join(th, NULL);
        if (sj.rc != CVM_OK) {
            cvm_txn_table_clear(&R->txn);
            *err = sj.err;
            return sj.rc;
        }
        note_input(R, "transactions", sp->path, sj.h, sj.size);
        return rc;
    }
    const char *dir = cvm_config_str(c, "input.cache_dir");
    char cdir[4200], path[4400];
    if (*dir)
        snprintf(cdir, sizeof cdir, "%s", dir);
    else
        snprintf(cdir, sizeof cdir, "%s/.cache", cvm_config_str(c, "output.dir"));
    mkdir(cdir, 0775);
    snprintf(path, sizeof path, "%s/%s.cvmcache", cdir, cvm_config_str(c, "job.name"));
    json_object_set_new(R->cache_json, "path", json_string(path));

    uint64_t h = 0, size = 0, stored = 0;
    cvm_cache_file *cf = NULL;
    cvm_err sum_err = {0}, cerr = {0};
    int rc_sum = CVM_OK, rc_open = CVM_OK;
#pragma omp parallel sections num_threads(2) default(none) \
    shared(sp, path, h, size, stored, cf, sum_err, cerr, rc_sum, rc_open)
    {
#pragma omp section
        rc_sum = cvm_file_checksum(sp->path, &h, &size, &sum_err);
#pragma omp section
        rc_open = cvm_cache_open(path, &cf, &stored, &cerr);
    }
    if (rc_sum != CVM_OK) {
        cvm_cache_close(cf);
        *err = sum_err;
        return rc_sum;
    }
    note_input(R, "transactions", sp->path, h, size);
    uint64_t key = ingest_config_key(R, R->input_key);
    int rc = rc_open;
    if (rc == CVM_OK && stored != key) {
        cvm_cache_close(cf);
        rc = CVM_FAIL(&cerr, CVM_ENOTFOUND, "%s: the inputs or the ingest settings changed", path);
    } else if (rc == CVM_OK) {
        rc = cvm_cache_take(cf, &R->txn, &R->rej, &R->ist, R->path_txn, &cerr);
    }
    if (rc == CVM_OK) {
        json_object_set_new(R->cache_json, "status", json_string("hit"));
        cvm_log_msg(R->log, CVM_LOG_INFO, "parse cache hit: %s (CSV parse skipped)", path);
        return CVM_OK;
    }
    if (rc == CVM_ENOMEM)
        return CVM_FAIL(err, CVM_ENOMEM, "%s", cerr.msg);
    const char *why = rc == CVM_ENOTFOUND ? "miss" : "corrupt";
    if (rc != CVM_ENOTFOUND)
        cvm_log_msg(R->log, CVM_LOG_WARN, "%s; parsing the CSV again", cerr.msg);
    json_object_set_new(R->cache_json, "status", json_string(why));
    CVM_TRY(cvm_ingest_transactions(sp, R->cust.ids, &R->txn, &R->rej, &R->ist, err));
    double t0 = cvm_now();
    if (cvm_cache_save(path, key, &R->txn, &R->rej, &R->ist, &cerr) != CVM_OK) {
        /* The run goes on without a cache. */
        cvm_log_msg(R->log, CVM_LOG_WARN, "%s", cerr.msg);
    } else {
        json_object_set_new(R->cache_json, "written_seconds", json_real(cvm_now() - t0));
    }
    return CVM_OK;
}

static int load_master(run *R, const char *path, const char *prefix, const char *const *want,
                       size_t n, bool unique, cvm_text_table *out, bool *present, cvm_err *err)
{
    char key[128];
    snprintf(key, sizeof key, "%s.delimiter", prefix);
    char delim;
    CVM_TRY(parse_delim(R->cfg, key, &delim, err));
    char **header = NULL;
    size_t nh = 0;
    uint64_t off, line;
    CVM_TRY(cvm_csv_read_header(path, delim, &header, &nh, &off, &line, err));
    const char *cols[16];
    int required[16] = {0};
    required[0] = 1;
    for (size_t i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s.columns.%s", prefix, want[i]);
        cols[i] = i == 0 ? cvm_config_str(R->cfg, key) : opt_col(R, key, header, nh);
    }
    cvm_csv_free_names(header, nh);
    cvm_table_spec sp = {path, delim, want, cols, n, required, unique};
    CVM_TRY(cvm_ingest_text_table(&sp, out, &R->rej, err));
    for (size_t i = 0; i < n; i++) {
        if (present)
            present[i] = *cols[i] != '\0';
        if (*cols[i] == '\0')
            degraded(R, "%s: no '%s' column", path, want[i]);
    }
    return add_input(R, prefix + strlen("input."), path, err);
}

static int ingest(run *R, cvm_err *err)
{
    const cvm_config *c = R->cfg;
    static const char *const cust_want[] = {"id", "name", "type", "region", "satisfaction",
                                            "complaints", "influence"};
    static const char *const prod_want[] = {"id", "name", "category", "unit_cost"};
    static const char *const int_want[] = {"customer", "date", "kind", "cost"};
    if (R->path_cust)
        CVM_TRY(load_master(R, R->path_cust, "input.customers", cust_want, 7, true, &R->cust, R->cust_has, err));
    else
        degraded(R, "no customer master: no types, regions, satisfaction or influence; grades "
                    "from value only, no satisfaction x volume class");
    if (R->path_prod)
        CVM_TRY(load_master(R, R->path_prod, "input.products", prod_want, 4, true, &R->prod, NULL, err));
    if (R->path_int)
        CVM_TRY(load_master(R, R->path_int, "input.interactions", int_want, 4, false, &R->inter, NULL, err));
    else
        degraded(R, "no interactions: cost to serve without visits, calls and complaint handling");

    cvm_txn_spec sp;
    cvm_txn_spec_default(&sp);
    sp.path = R->path_txn;
    CVM_TRY(parse_delim(c, "input.transactions.delimiter", &sp.delimiter, err));
    sp.header = cvm_config_bool(c, "input.transactions.header");
    char **header = NULL;
    size_t nh = 0;
    uint64_t off, line;
    CVM_TRY(cvm_csv_read_header(sp.path, sp.delimiter, &header, &nh, &off, &line, err));
    if (!sp.header)
        nh = 0; /* numbers, nothing to look up */
    sp.col_customer = cvm_config_str(c, "input.transactions.columns.customer");
    sp.col_date = cvm_config_str(c, "input.transactions.columns.date");
    sp.col_order = opt_col(R, "input.transactions.columns.order", header, nh);
    sp.col_product = opt_col(R, "input.transactions.columns.product", header, nh);
    sp.col_quantity = opt_col(R, "input.transactions.columns.quantity", header, nh);
    sp.col_unit_price = cvm_config_str(c, "input.transactions.columns.unit_price");
    sp.col_revenue = cvm_config_str(c, "input.transactions.columns.revenue");
    sp.col_unit_cost = opt_col(R, "input.transactions.columns.unit_cost", header, nh);
    cvm_csv_free_names(header, nh);
    sp.date_format = cvm_config_str(c, "input.transactions.date_format");
    sp.return_prefix = cvm_config_str(c, "cleaning.return_order_prefix");
    sp.negative_is_return = cvm_config_bool(c, "cleaning.negative_is_return");
    size_t nx = cvm_config_list_len(c, "cleaning.exclude_products");
    const char **ex = cvm_calloc(nx ? nx : 1, sizeof *ex);
    if (ex == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    for (size_t i = 0; i < nx; i++)
        ex[i] = cvm_config_list_at(c, "cleaning.exclude_products", i);
    sp.exclude_products = ex;
    sp.n_exclude = nx;
    sp.drop_duplicates = cvm_config_bool(c, "cleaning.drop_duplicates");
    sp.keep_lines = false; /* no stage reads the line numbers */
    sp.chunk_bytes = (size_t)cvm_config_int(c, "input.transactions.chunk_mb") << 20;
    sp.threads = R->threads;
    sp.partitions = (unsigned)cvm_config_int(c, "job.partitions");
    sp.partition = (unsigned)cvm_config_int(c, "job.partition");
    sp.progress = on_progress;
    sp.progress_ctx = R;
    int rc = ingest_cached(R, &sp, err);
    cvm_free(ex);
    if (rc != CVM_OK)
        return rc;
    if (*sp.col_order == '\0')
        degraded(R, "no order column: each purchase day of a customer counts as one order");
    if (*sp.col_product == '\0')
        degraded(R, "no product column: no exclusions or product costs");

    /* Product master costs fill lines without their own cost. */
    if (R->path_prod && R->txn.products) {
        size_t np = cvm_dict_size(R->txn.products);
        double *pc = cvm_malloc((np ? np : 1) * sizeof *pc);
        if (pc == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        size_t bad = 0;
        for (size_t p = 0; p < np; p++) {
            pc[p] = NAN;
            int32_t row = cvm_dict_find(R->prod.ids, cvm_dict_str(R->txn.products, (int32_t)p),
                                        cvm_dict_len(R->txn.products, (int32_t)p));
            const char *v = row >= 0 ? cvm_text_cell(&R->prod, (size_t)row, 3) : NULL;
            if (v && !cvm_parse_double(v, strlen(v), &pc[p])) {
                pc[p] = NAN;
                bad++;
                rc = cvm_rejects_add(&R->rej, R->path_prod, R->prod.line[row], 0, "unit_cost",
                                     CVM_REJECT_BAD_NUMBER, "unit_cost is not a number", v,
                                     strlen(v), err);
                if (rc != CVM_OK)
                    break;
            }
        }
        size_t filled = 0;
        for (size_t r = 0; rc == CVM_OK && r < R->txn.n_rows; r++) {
            int32_t p = R->txn.product[r];
            if (isnan(R->txn.cost[r]) && p >= 0 && !isnan(pc[p])) {
                R->txn.cost[r] = pc[p] * R->txn.quantity[r];
                filled++;
                R->txn.has_cost = true;
            }
        }
        cvm_free(pc);
        if (rc != CVM_OK)
            return rc;
        cvm_log_msg(R->log, CVM_LOG_INFO, "product master: cost filled on %zu lines", filled);
    }
    if (!R->txn.has_cost)
        degraded(R, "no cost of goods (no unit_cost column or product costs): margin estimated "
                    "with value.default_margin = %g", cvm_config_double(c, "value.default_margin"));
    return CVM_OK;
}

static int check_rejects(run *R, cvm_err *err)
{
    double max = cvm_config_double(R->cfg, "cleaning.max_reject_ratio");
    uint64_t rows = R->ist.rows - R->ist.other_partition;
    uint64_t bad = R->ist.rejected;
    double ratio = rows ? (double)bad / (double)rows : 0;
    if (rows == 0)
        return CVM_FAIL(err, CVM_EDATA, "%s: no data rows", R->path_txn);
    if (ratio > max)
        return CVM_FAIL(err, CVM_EDATA,
                        "%s: %llu of %llu rows rejected (%.2f%%), above cleaning.max_reject_ratio "
                        "= %.2f%%; see rejects.csv", R->path_txn, (unsigned long long)bad,
                        (unsigned long long)rows, 100 * ratio, 100 * max);
    if (bad)
        cvm_log_msg(R->log, CVM_LOG_WARN, "%s: %llu of %llu rows rejected (%.3f%%), see rejects.csv",
                    R->path_txn, (unsigned long long)bad, (unsigned long long)rows, 100 * ratio);
    return CVM_OK;
}

/* Customer master and interactions become columns of the customer table. */
static int master_columns(run *R, cvm_err *err)
{
    cvm_custtab *ct = R->ct;
    size_t n = ct->n_rows;
    if (R->path_cust) {
        /* Only the columns the master has: a model then sees "no satisfaction"
         * and degrades, instead of reading an all-empty column. */
        static const char *const sname[3] = {"name", "customer_type", "region"};
        static const char *const sdoc[3] = {"Customer name from the master.",
                                            "Type from the master (hospital, doctor, pharmacy, ...).",
                                            "Region from the master."};
        static const char *const nname[3] = {"satisfaction", "complaints", "influence"};
        static const char *const nunit[3] = {"score", "count", "score"};
        static const char *const ndoc[3] = {"Satisfaction from the master (1-5).",
                                            "Complaints from the master.",
                                            "Market influence from the master."};
        static const int ndec[3] = {1, 0, 2};
        char **sv[3] = {NULL, NULL, NULL};
        double *nv[3] = {NULL, NULL, NULL};
        for (int k = 0; k < 3; k++) {
            if (R->cust_has[k + 1] && (sv[k] = cvm_custtab_add_str(ct, sname[k], sdoc[k], err)) == NULL)
                return err->status;
        }
        for (int k = 0; k < 3; k++) {
            if (R->cust_has[k + 4] &&
                (nv[k] = cvm_custtab_add_double(ct, nname[k], nunit[k], ndoc[k], ndec[k], err)) == NULL)
                return err->status;
        }
        for (size_t r = 0; r < R->cust.n_rows; r++) {
            const char *id = cvm_dict_str(R->cust.ids, (int32_t)r);
            int32_t ci = cvm_dict_find(R->txn.customers, id, strlen(id));
            if (ci < 0)
                continue;
            for (int k = 0; k < 3; k++) {
                const char *v = sv[k] ? cvm_text_cell(&R->cust, r, (size_t)k + 1) : NULL;
                if (v && (sv[k][ci] = cvm_strdup(v)) == NULL)
                    return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
            }
            for (int k = 0; k < 3; k++) {
                const char *v = nv[k] ? cvm_text_cell(&R->cust, r, (size_t)k + 4) : NULL;
                double x;
                if (v == NULL)
                    continue;
                if (cvm_parse_double(v, strlen(v), &x) && k == 1 && x < 0) {
                    char detail[160];
                    snprintf(detail, sizeof detail, "complaints %.100s is negative", v);
                    CVM_TRY(cvm_rejects_add(&R->rej, R->path_cust, R->cust.line[r], 0, nname[k],
                                            CVM_REJECT_OUT_OF_RANGE, detail, v, strlen(v), err));
                } else if (cvm_parse_double(v, strlen(v), &x)) {
                    nv[k][ci] = x;
                } else {
                    char detail[160];
                    snprintf(detail, sizeof detail, "%s '%.100s' is not a number", nname[k], v);
                    CVM_TRY(cvm_rejects_add(&R->rej, R->path_cust, R->cust.line[r], 0, nname[k],
                                            CVM_REJECT_BAD_NUMBER, detail, v, strlen(v), err));
                }
            }
        }
    }
    if (R->path_int) {
        double *cost = cvm_custtab_add_double(ct, "interaction_cost", "currency",
            "Cost of interactions before as_of (visits, calls, complaint handling, samples).", 2, err);
        int64_t *cnt = cost ? cvm_custtab_add_int(ct, "interactions", "count", "Interactions before as_of.", err) : NULL;
        int64_t *visits = cnt ? cvm_custtab_add_int(ct, "visits", "count", "Interactions of kind visit.", err) : NULL;
        int64_t *calls = visits ? cvm_custtab_add_int(ct, "calls", "count", "Interactions of kind call.", err) : NULL;
        if (!calls)
            return err->status;
        for (size_t i = 0; i < n; i++) {
            cost[i] = 0;
            cnt[i] = visits[i] = calls[i] = 0;
        }
        cvm_datefmt fmt;
        CVM_TRY(cvm_datefmt_compile(cvm_config_str(R->cfg, "input.interactions.date_format"), &fmt, err));
        for (size_t r = 0; r < R->inter.n_rows; r++) {
            const char *id = cvm_text_cell(&R->inter, r, 0);
            const char *ds = cvm_text_cell(&R->inter, r, 1);
            const char *kind = cvm_text_cell(&R->inter, r, 2);
            const char *cs = cvm_text_cell(&R->inter, r, 3);
            uint64_t line = R->inter.line[r];
            int32_t ci = cvm_dict_find(R->txn.customers, id, strlen(id));
            if (ci < 0 && !cvm_ingest_in_partition(id, strlen(id),
                                                   (unsigned)cvm_config_int(R->cfg, "job.partitions"),
                                                   (unsigned)cvm_config_int(R->cfg, "job.partition")))
                continue; /* another partition's customer */
            if (ci < 0) {
                CVM_TRY(cvm_rejects_add(&R->rej, R->path_int, line, 1, "customer", CVM_REJECT_UNKNOWN_CUSTOMER,
                                        "no such customer in transactions or master", id, strlen(id), err));
                continue;
            }
            int32_t day = 0;
            if (ds && !cvm_date_parse(&fmt, ds, strlen(ds), &day)) {
                CVM_TRY(cvm_rejects_add(&R->rej, R->path_int, line, 2, "date", CVM_REJECT_BAD_DATE,
                                        "not a date in the configured format", ds, strlen(ds), err));
                continue;
            }
            if (ds && day >= R->as_of)
                continue;
            double x = NAN;
            if (cs && !cvm_parse_double(cs, strlen(cs), &x)) {
                CVM_TRY(cvm_rejects_add(&R->rej, R->path_int, line, 4, "cost", CVM_REJECT_BAD_NUMBER,
                                        "cost is not a number", cs, strlen(cs), err));
                continue;
            }
            if (isnan(x) && kind && !cvm_config_map_get(R->cfg, "cost.per_interaction", kind, &x))
                x = 0;
            if (isnan(x))
                x = 0;
            cost[ci] += x;
            cnt[ci]++;
            if (kind && strcmp(kind, "visit") == 0)
                visits[ci]++;
            if (kind && strcmp(kind, "call") == 0)
                calls[ci]++;
        }
    }
    return CVM_OK;
}

/* The customer table of a run: one row per customer, the id first, then the
 * master-data and interaction columns; the models add the rest. */
static int customer_table(run *R, cvm_err *err)
{
    R->ct = cvm_custtab_new(R->txn.n_customers);
    char **ids = R->ct ? cvm_custtab_add_str(R->ct, "customer_id", "Customer id as in the input.", err) : NULL;
    if (ids == NULL)
        return R->ct ? err->status : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    for (size_t i = 0; i < R->txn.n_customers; i++)
        if ((ids[i] = cvm_strdup(cvm_dict_str(R->txn.customers, (int32_t)i))) == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    return master_columns(R, err);
}

/* value.as_of when set, else `fallback` (the day after the last purchase). */
static int resolve_as_of(run *R, const cvm_config *c, int32_t fallback, cvm_err *err)
{
    if (!cvm_config_is_set(c, "value.as_of")) {
        R->as_of = fallback;
        return CVM_OK;
    }
    if (!cvm_date_parse_iso(cvm_config_str(c, "value.as_of"), &R->as_of))
        return CVM_FAIL(err, CVM_ECONFIG, "value.as_of: not a date");
    return CVM_OK;
}

/* rfm.method = frozen: cut-offs from an earlier run's summary.json. */
static int load_frozen(run *R, cvm_err *err)
{
    const char *from = cvm_config_str(R->cfg, "rfm.freeze_from");
    char path[4200];
    size_t n = strlen(from);
    if (n > 5 && strcmp(from + n - 5, ".json") == 0)
        snprintf(path, sizeof path, "%s", from);
    else
        snprintf(path, sizeof path, "%s/summary.json", from);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (j == NULL)
        return CVM_FAIL(err, CVM_ECONFIG, "rfm.freeze_from: %s:%d: %s", path, je.line, je.text);
    json_t *cut = json_object_get(json_object_get(j, "rfm"), "cutoffs");
    static const char *const names[3] = {"recency", "frequency", "monetary"};
    int rc = CVM_OK;
    for (int m = 0; m < 3 && rc == CVM_OK; m++) {
        json_t *a = json_object_get(cut, names[m]);
        if (!json_is_array(a) || (int)json_array_size(a) != R->jp.rfm.bins - 1) {
            rc = CVM_FAIL(err, CVM_ECONFIG, "rfm.freeze_from: %s has no rfm.cutoffs.%s with %d values "
                          "(was it run with rfm.bins = %d?)", path, names[m], R->jp.rfm.bins - 1,
                          R->jp.rfm.bins);
            break;
        }
        for (size_t i = 0; i < json_array_size(a); i++)
            R->jp.rfm.breaks[m][i] = json_number_value(json_array_get(a, i));
    }
    json_decref(j);
    if (rc == CVM_OK)
        R->jp.rfm.use_breaks = true;
    return rc;
}

static json_t *num_array(const double *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_real(v[i]));
    return a;
}

static int models(run *R, cvm_err *err)
{
    const cvm_config *c = R->cfg;
    json_t *S = R->summary;

    cvm_purchases_params pp;
    cvm_purchases_params_default(&pp);
    pp.as_of = R->as_of;
    pp.window_days = (int)cvm_config_int(c, "value.window_days");
    pp.default_margin = cvm_config_double(c, "value.default_margin");
    pp.threads = R->threads;
    CVM_TRY(cvm_purchases_run(&pp, &R->txn, R->ct, err));
    stage_done(R, "features", NULL);

    /* Checks shared with the pandas and DuckDB peers (bench/). */
    const cvm_column *rec = cvm_custtab_find(R->ct, "recency_days");
    const cvm_column *fr = cvm_custtab_find(R->ct, "frequency");
    const cvm_column *mo = cvm_custtab_find(R->ct, "monetary");
    long long nbuy = 0, srec = 0, sfreq = 0;
    long double smon = 0;
    for (size_t i = 0; i < R->ct->n_rows; i++) {
        double r = cvm_column_number(rec, i);
        if (isnan(r))
            continue;
        nbuy++;
        srec += (long long)r;
        sfreq += (long long)cvm_column_number(fr, i);
        smon += cvm_column_number(mo, i);
    }
    json_t *chk = json_object();
    json_object_set_new(chk, "customers", json_integer(nbuy));
    json_object_set_new(chk, "sum_recency", json_integer(srec));
    json_object_set_new(chk, "sum_frequency", json_integer(sfreq));
    char ms[64];
    snprintf(ms, sizeof ms, "%.2Lf", smon);
    json_object_set_new(chk, "sum_monetary", json_string(ms));
    json_object_set_new(S, "checks", chk);

    cvm_profit_params fp;
    cvm_profit_params_default(&fp);
    fp.per_order = cvm_config_double(c, "cost.per_order");
    fp.per_line = cvm_config_double(c, "cost.per_line");
    fp.per_return_line = cvm_config_double(c, "cost.per_return_line");
    fp.type_default = cvm_config_double(c, "cost.per_type_default");
    fp.pareto_share = cvm_config_double(c, "value.pareto_share");
    size_t nt = cvm_config_map_len(c, "cost.per_type");
    const char **tn = cvm_calloc(nt ? nt : 1, sizeof *tn);
    double *tc = cvm_calloc(nt ? nt : 1, sizeof *tc);
    if (!tn || !tc) {
        cvm_free(tn);
        cvm_free(tc);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < nt; i++) {
        tn[i] = cvm_config_map_name(c, "cost.per_type", i);
        tc[i] = cvm_config_map_value(c, "cost.per_type", i);
    }
    fp.type_names = tn;
    fp.type_costs = tc;
    fp.n_types = nt;
    cvm_profit_result pr;
    int rc = cvm_profit_run(&fp, R->ct, &pr, err);
    cvm_free(tn);
    cvm_free(tc);
    if (rc != CVM_OK)
        return rc;
    json_t *pj = json_object();
    json_object_set_new(pj, "total_profit", json_real(pr.total_profit));
    json_object_set_new(pj, "total_gross_margin", json_real(pr.total_margin));
    json_object_set_new(pj, "total_cost_to_serve", json_real(pr.total_cost_to_serve));
    json_object_set_new(pj, "pareto_share", json_real(fp.pareto_share));
    json_object_set_new(pj, "pareto_top_customers", json_integer((json_int_t)pr.top_customers));
    json_object_set_new(pj, "pareto_top_customer_share", json_real(pr.top_customer_share));
    json_object_set_new(pj, "negative_profit_customers", json_integer((json_int_t)pr.negative_profit));
    json_object_set_new(S, "profit", pj);
    stage_done(R, "profit", NULL);

    if (strcmp(cvm_config_str(c, "rfm.method"), "frozen") == 0)
        CVM_TRY(load_frozen(R, err));
    cvm_rfm_result rr;
    R->jp.rfm.threads = R->threads;
    CVM_TRY(cvm_rfm_run(&R->jp.rfm, R->ct, &rr, err));
    json_t *rj = json_object();
    json_object_set_new(rj, "bins", json_integer(R->jp.rfm.bins));
    json_object_set_new(rj, "method", json_string(cvm_config_str(c, "rfm.method")));
    json_object_set_new(rj, "scored_customers", json_integer((json_int_t)rr.scored));
    json_t *cj = json_object();
    json_object_set_new(cj, "recency", num_array(rr.cutoffs[0], (size_t)R->jp.rfm.bins - 1));
    json_object_set_new(cj, "frequency", num_array(rr.cutoffs[1], (size_t)R->jp.rfm.bins - 1));
    json_object_set_new(cj, "monetary", num_array(rr.cutoffs[2], (size_t)R->jp.rfm.bins - 1));
    json_object_set_new(rj, "cutoffs", cj);
    json_t *sj = json_object();
    for (size_t i = 0; i < rr.n_segment_names; i++)
        json_object_set_new(sj, rr.segment_names[i], json_integer((json_int_t)rr.segment_counts[i]));
    json_object_set_new(rj, "segments", sj);
    json_object_set_new(S, "rfm", rj);
    stage_done(R, "rfm", NULL);

    cvm_grading_params gp;
    cvm_grading_params_default(&gp);
    gp.one_vote_revenue = cvm_config_double(c, "grading.one_vote_revenue");
    gp.basis_profit = strcmp(cvm_config_str(c, "grading.basis"), "profit") == 0;
    gp.tier_high = cvm_config_double(c, "grading.tier_high");
    gp.tier_mid = cvm_config_double(c, "grading.tier_mid");
    memcpy(gp.matrix, R->jp.grade_matrix, sizeof gp.matrix);
    gp.volume_large = cvm_config_double(c, "grid.volume_large");
    gp.volume_medium = cvm_config_double(c, "grid.volume_medium");
    gp.sat_high = cvm_config_double(c, "grid.satisfaction_high");
    gp.sat_medium = cvm_config_double(c, "grid.satisfaction_medium");
    cvm_grading_result gr;
    gp.threads = R->threads;
    CVM_TRY(cvm_grading_run(&gp, R->ct, &gr, err));
    json_t *gj = json_object(), *gc = json_object(), *cc = json_object();
    for (int i = 0; i < 4; i++) {
        char k[2] = {(char)('A' + i), 0};
        json_object_set_new(gc, k, json_integer((json_int_t)gr.grade_counts[i]));
    }
    for (int i = 0; i < 9; i++) {
        char k[2] = {(char)('A' + i), 0};
        json_object_set_new(cc, k, json_integer((json_int_t)gr.class_counts[i]));
    }
    json_object_set_new(gj, "grades", gc);
    json_object_set_new(gj, "one_vote_grade_a", json_integer((json_int_t)gr.one_vote));
    json_object_set_new(gj, "grid_classes", cc);
    json_object_set_new(gj, "used_influence", json_boolean(gr.used_influence));
    json_object_set_new(gj, "used_satisfaction", json_boolean(gr.used_satisfaction));
    json_object_set_new(gj, "buyers_without_satisfaction", json_integer((json_int_t)gr.no_satisfaction));
    json_object_set_new(S, "grading", gj);
    if (R->path_cust && !gr.used_influence)
        degraded(R, "customer master has no influence: grades from value only");
    if (R->path_cust && !gr.used_satisfaction)
        degraded(R, "customer master has no satisfaction: no satisfaction x volume class "
                    "(grid_class empty), volume strategy only");
    stage_done(R, "grading", NULL);

    /* Mining stages (stage.h), each behind its NAME.enabled switch. */
    json_t *models_json = json_object();
    json_object_set_new(S, "models", models_json);
    for (const cvm_stage *const *st = cvm_job_stages; *st; st++) {
        char key[96];
        snprintf(key, sizeof key, "%s.enabled", (*st)->name);
        if (!cvm_config_bool(c, key))
            continue;
        cvm_stage_ctx sc = {c, cfg_source(c), &R->txn, R->path_prod ? &R->prod : NULL, R->ct,
                            models_json, &R->rd, R->log, R->threads,
                            (uint64_t)cvm_config_int(c, "job.seed"), R->as_of};
        rc = (*st)->run(&sc, err);
        if (rc != CVM_OK)
            return rc;
        stage_done(R, (*st)->name, NULL);
    }

    cvm_actions_params ap = {R->jp.rules, R->jp.n_rules, cfg_source(c), R->threads};
    cvm_actions_result ar;
    CVM_TRY(cvm_actions_run(&ap, R->ct, &ar, err));
    json_t *aj = json_object(), *counts = json_object();
    for (size_t i = 0; i < ar.n_rules; i++) {
        const char *code = R->jp.rules[i].action;
        json_t *old = json_object_get(counts, code);
        json_int_t prev = old ? json_integer_value(old) : 0;
        json_object_set_new(counts, code, json_integer(prev + (json_int_t)ar.rule_hits[i]));
    }
    json_object_set_new(aj, "counts", counts);
    json_object_set_new(aj, "unmatched", json_integer((json_int_t)ar.unmatched));
    json_object_set_new(aj, "rules_on_missing_columns", json_integer((json_int_t)ar.rules_on_missing_columns));
    json_object_set_new(S, "actions", aj);
    cvm_actions_result_clear(&ar);
    stage_done(R, "actions", NULL);
    return CVM_OK;
}

static json_t *rejects_json(const cvm_rejects *r, const cvm_ingest_stats *st)
{
    json_t *o = json_object(), *by = json_object();
    for (int i = 0; i < CVM_REJECT_COUNT; i++)
        if (r->by_reason[i])
            json_object_set_new(by, cvm_reject_name((cvm_reject_reason)i),
                                json_integer((json_int_t)r->by_reason[i]));
    json_object_set_new(o, "total", json_integer((json_int_t)r->n));
    json_object_set_new(o, "by_reason", by);
    /* Under job.partitions the ratio is over this partition's rows (plus
     * the rows no partition can claim), exactly as cleaning checks it. */
    uint64_t rows = st->rows - st->other_partition;
    json_object_set_new(o, "transaction_rows", json_integer((json_int_t)rows));
    json_object_set_new(o, "transaction_rows_rejected", json_integer((json_int_t)st->rejected));
    json_object_set_new(o, "transaction_reject_ratio",
                        json_real(rows ? (double)st->rejected / (double)rows : 0));
    return o;
}

static void timestamp_now(char *buf, size_t len)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int publish(run *R, const char *status, cvm_err *err)
{
    json_t *S = R->summary;
    char ts[32];
    timestamp_now(ts, sizeof ts);
    json_object_set_new(S, "finished_at", json_string(ts));
    json_object_set_new(S, "status", json_string(status));
    json_object_set_new(S, "rejects", rejects_json(&R->rej, &R->ist));
    json_t *rows = json_object();
    json_object_set_new(rows, "read", json_integer((json_int_t)R->ist.rows));
    json_object_set_new(rows, "accepted", json_integer((json_int_t)R->ist.accepted));
    json_object_set_new(rows, "returns", json_integer((json_int_t)R->ist.returns));
    json_object_set_new(rows, "excluded", json_integer((json_int_t)R->ist.excluded));
    json_object_set_new(rows, "duplicates_dropped", json_integer((json_int_t)R->ist.duplicates));
    json_object_set_new(rows, "text_fields_reencoded", json_integer((json_int_t)R->ist.utf8_repaired));
    json_object_set_new(rows, "other_partition", json_integer((json_int_t)R->ist.other_partition));
    json_object_set_new(rows, "customers", json_integer((json_int_t)R->txn.n_customers));
    json_object_set_new(rows, "orders", json_integer((json_int_t)R->txn.n_orders));
    json_object_set_new(rows, "products", json_integer(R->txn.products ? (json_int_t)cvm_dict_size(R->txn.products) : 0));
    json_object_set_new(rows, "chunks", json_integer((json_int_t)R->ist.chunks));
    json_object_set_new(R->timings, "ingest_parse", json_real(round(R->ist.seconds_parse * 1e4) / 1e4));
    json_object_set_new(R->timings, "ingest_merge", json_real(round(R->ist.seconds_merge * 1e4) / 1e4));
    json_object_set_new(R->timings, "ingest_sort", json_real(round(R->ist.seconds_sort * 1e4) / 1e4));
    json_object_set_new(rows, "chunk_boundaries_repaired", json_integer(R->ist.boundary_repairs));
    json_object_set_new(S, "rows", rows);
    json_object_set_new(S, "degraded", json_incref(R->degraded));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    json_object_set_new(S, "peak_rss_mb", json_real(round((double)ru.ru_maxrss / 1024.0 * 10) / 10));

    int rc = CVM_OK;
    char *p = NULL;
    if (R->ct) {
        p = cvm_rundir_path(&R->rd, "segments.csv");
        rc = p ? cvm_publish_custtab_csv(R->ct, p, err) : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        cvm_free(p);
        /* The schema of segments.csv travels with the data, for BI tools. */
        static const char *const type_name[] = {"integer", "number", "string", "date"};
        json_t *cols = json_array();
        for (size_t i = 0; i < R->ct->n_cols; i++) {
            const cvm_column *col = R->ct->cols[i];
            json_t *cj = json_object();
            json_object_set_new(cj, "name", json_string(col->name));
            json_object_set_new(cj, "type", json_string(type_name[col->type]));
            json_object_set_new(cj, "unit", json_string(col->unit));
            json_object_set_new(cj, "doc", json_string(col->doc));
            json_array_append_new(cols, cj);
        }
        json_t *seg = json_object();
        json_object_set_new(seg, "rows", json_integer((json_int_t)R->ct->n_rows));
        json_object_set_new(seg, "columns", cols);
        json_t *out = json_object();
        json_object_set_new(out, "segments.csv", seg);
        json_object_set_new(S, "outputs", out);
    }
    if (rc == CVM_OK) {
        p = cvm_rundir_path(&R->rd, "rejects.csv");
        rc = p ? cvm_publish_rejects_csv(&R->rej, p, err) : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        cvm_free(p);
    }
    stage_done(R, "publish", NULL);
    /* Output formats and loads (publisher.h), for successful runs only. */
    if (rc == CVM_OK && R->ct) {
        char prev[4096];
        const char *prev_dir = NULL;
        char link[8400];
        snprintf(link, sizeof link, "%s/latest", R->rd.out_dir);
        ssize_t k = readlink(link, prev, sizeof prev - 1);
        if (k > 0) {
            prev[k] = '\0';
            snprintf(link, sizeof link, "%s/%s", R->rd.out_dir, prev);
            prev_dir = link;
        }
        for (const cvm_publisher *const *pb = cvm_job_publishers; rc == CVM_OK && *pb; pb++) {
            if ((*pb)->enabled_key && !cvm_config_bool(R->cfg, (*pb)->enabled_key))
                continue;
            cvm_publish_ctx pc = {R->cfg, cfg_source(R->cfg), R->rd.tmp_path, R->rd.run_id,
                                  R->rd.out_dir, prev_dir, S, R->log, R->threads};
            rc = (*pb)->run(&pc, err);
            if (rc == CVM_OK)
                stage_done(R, (*pb)->name, NULL);
        }
    }
    if (rc == CVM_OK) {
        p = cvm_rundir_path(&R->rd, "summary.json");
        rc = p ? cvm_publish_json(S, p, err) : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        cvm_free(p);
    }
    return rc;
}

static void run_clear(run *R)
{
    cvm_free(R->path_txn);
    cvm_free(R->path_cust);
    cvm_free(R->path_prod);
    cvm_free(R->path_int);
    cvm_txn_table_clear(&R->txn);
    cvm_text_table_clear(&R->cust);
    cvm_text_table_clear(&R->prod);
    cvm_text_table_clear(&R->inter);
    cvm_rejects_clear(&R->rej);
    cvm_custtab_free(R->ct);
    json_decref(R->summary);
    json_decref(R->degraded);
    job_params_clear(&R->jp);
    cvm_config_free(R->cfg);
}

/* ------------------------------------------------------------------ sweep */

/* Numeric leaves of j, flattened as prefix.key.sub, appended to names/values
 * (arrays are skipped: cut-offs and tables are not one figure). */
static void flatten(json_t *j, const char *prefix, json_t *out)
{
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v) {
        char name[512];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", k);
        if (json_is_object(v))
            flatten(v, name, out);
        else if (json_is_number(v))
            json_object_set(out, name, v);
        else if (json_is_boolean(v))
            json_object_set_new(out, name, json_integer(json_is_true(v)));
    }
}

static bool ingest_key(const char *key)
{
    static const char *const prefixes[] = {"input.", "cleaning.", "job.partition", "output.",
                                           "job.name"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

/* Evaluates every point of the grid on the tables ingested once: for each
 * point a config (the job file, --set, then the point's values), the
 * customer table rebuilt and every model run, its summary in
 * points/NNN/summary.json (with the stages' files), and one row of key
 * figures in sweep.csv. */
static int sweep(run *R, cvm_err *err)
{
    const cvm_job_opts *o = R->o;
    size_t nk = o->n_grid;
    char **keys = cvm_calloc(nk, sizeof *keys);
    char ***vals = cvm_calloc(nk, sizeof *vals);
    size_t *nv = cvm_calloc(nk, sizeof *nv);
    int rc = (keys && vals && nv) ? CVM_OK : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    size_t npoints = 1;
    for (size_t g = 0; rc == CVM_OK && g < nk; g++) {
        const char *eq = strchr(o->grid[g], '=');
        if (eq == NULL || eq == o->grid[g] || eq[1] == '\0') {
            rc = CVM_FAIL(err, CVM_ECONFIG, "--grid %s: expected key=v1,v2,...", o->grid[g]);
            break;
        }
        keys[g] = cvm_strndup(o->grid[g], (size_t)(eq - o->grid[g]));
        if (ingest_key(keys[g])) {
            rc = CVM_FAIL(err, CVM_ECONFIG,
                          "--grid %s: a sweep varies model settings on one parse; '%s' changes the "
                          "ingest or the output (run separate jobs for it)", o->grid[g], keys[g]);
            break;
        }
        const char *p = eq + 1;
        while (rc == CVM_OK) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            char **nvv = cvm_reallocarray(vals[g], nv[g] + 1, sizeof *nvv);
            if (nvv == NULL) {
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
                break;
            }
            vals[g] = nvv;
            vals[g][nv[g]++] = cvm_strndup(p, len);
            if (!comma)
                break;
            p = comma + 1;
        }
        npoints *= nv[g];
        if (npoints > 10000)
            rc = CVM_FAIL(err, CVM_ECONFIG, "--grid: %zu points or more; at most 10000", npoints);
    }
    json_t *figures = json_array();
    json_t *names = json_object(); /* figure name -> order */
    json_t *points_json = json_array();
    size_t nsets = o->n_sets + nk;
    const char **sets = cvm_calloc(nsets + 1, sizeof *sets);
    char **own = cvm_calloc(nk + 1, sizeof *own);
    if (rc == CVM_OK && (!sets || !own))
        rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    /* The base run's pieces, restored after each point. */
    cvm_config *base_cfg = R->cfg;
    job_params base_jp = R->jp;
    json_t *base_summary = R->summary, *base_timings = R->timings;
    cvm_rundir base_rd = R->rd;
    int32_t base_as_of = R->as_of;
    for (size_t pt = 0; rc == CVM_OK && pt < npoints; pt++) {
        /* Point pt in mixed radix over the keys, the last key fastest. */
        size_t rest = pt;
        for (size_t g = 0; g < o->n_sets; g++)
            sets[g] = o->sets[g];
        json_t *values = json_object();
        for (size_t g = nk; g-- > 0;) {
            size_t i = rest % nv[g];
            rest /= nv[g];
            size_t len = strlen(keys[g]) + strlen(vals[g][i]) + 2;
            own[g] = cvm_malloc(len);
            if (own[g] == NULL) {
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
                break;
            }
            snprintf(own[g], len, "%s=%s", keys[g], vals[g][i]);
            sets[o->n_sets + g] = own[g];
            json_object_set_new(values, keys[g], json_string(vals[g][i]));
        }
        cvm_job_opts po = *o;
        po.sets = sets;
        po.n_sets = nsets;
        po.n_grid = 0;
        cvm_config *pc = NULL;
        if (rc == CVM_OK)
            rc = cvm_job_config(&po, &pc, err);
        if (rc != CVM_OK) {
            cvm_err_prefix(err, "sweep point %zu", pt + 1);
            json_decref(values);
            for (size_t g = 0; g < nk; g++) {
                cvm_free(own[g]);
                own[g] = NULL;
            }
            break;
        }
        /* The point's own run directory inside the sweep's. */
        char sub[64];
        snprintf(sub, sizeof sub, "points/%03zu", pt + 1);
        char *pdir = cvm_rundir_path(&base_rd, sub);
        char *points = cvm_rundir_path(&base_rd, "points");
        if (points)
            mkdir(points, 0775);
        cvm_free(points);
        if (pdir == NULL || (mkdir(pdir, 0775) != 0 && errno != EEXIST))
            rc = CVM_FAIL(err, CVM_EIO, "cannot create %s", pdir ? pdir : sub);
        R->cfg = pc;
        memset(&R->jp, 0, sizeof R->jp);
        R->summary = json_object();
        R->timings = json_object();
        json_object_set_new(R->summary, "timings", R->timings);
        json_object_set_new(R->summary, "point", json_integer((json_int_t)pt + 1));
        json_object_set(R->summary, "grid", values);
        R->rd = base_rd;
        R->rd.tmp_path = pdir;
        if (rc == CVM_OK)
            rc = build_params(pc, &R->jp, err);
        if (rc == CVM_OK)
            rc = resolve_as_of(R, pc, base_as_of, err);
        if (rc == CVM_OK) {
            char d[11];
            cvm_date_format(R->as_of, d);
            json_object_set_new(R->summary, "as_of", json_string(d));
            rc = customer_table(R, err);
        }
        if (rc == CVM_OK)
            rc = models(R, err);
        if (rc == CVM_OK) {
            json_t *fig = json_object();
            static const char *const sections[] = {"checks", "profit", "rfm", "grading", "actions", "models"};
            for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++) {
                json_t *sec = json_object_get(R->summary, sections[k]);
                if (sec)
                    flatten(sec, sections[k], fig);
            }
            const char *fk;
            json_t *fv;
            json_object_foreach(fig, fk, fv) {
                if (!json_object_get(names, fk))
                    json_object_set_new(names, fk, json_integer((json_int_t)json_object_size(names)));
            }
            json_t *row = json_object();
            json_object_set(row, "grid", values);
            json_object_set_new(row, "figures", fig);
            json_array_append_new(figures, row);
            json_t *cj = cvm_config_to_json(pc);
            json_object_set_new(R->summary, "config", cj ? cj : json_null());
            char *sp = pdir ? cvm_rundir_path(&R->rd, "summary.json") : NULL;
            rc = sp ? cvm_publish_json(R->summary, sp, err) : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
            cvm_free(sp);
            json_t *pj = json_object();
            json_object_set_new(pj, "point", json_integer((json_int_t)pt + 1));
            json_object_set(pj, "grid", values);
            json_object_set_new(pj, "dir", json_string(sub));
            json_array_append_new(points_json, pj);
            cvm_log_msg(R->log, CVM_LOG_INFO, "sweep point %zu of %zu done", pt + 1, npoints);
        } else {
            cvm_err_prefix(err, "sweep point %zu", pt + 1);
        }
        json_decref(values);
        cvm_custtab_free(R->ct);
        R->ct = NULL;
        job_params_clear(&R->jp);
        cvm_config_free(pc);
        json_decref(R->summary);
        cvm_free(pdir);
        for (size_t g = 0; g < nk; g++) {
            cvm_free(own[g]);
            own[g] = NULL;
        }
    }
    R->cfg = base_cfg;
    R->jp = base_jp;
    R->summary = base_summary;
    R->timings = base_timings;
    R->rd = base_rd;
    R->as_of = base_as_of;
    /* sweep.csv: the grid values, then every figure seen, in first-seen order. */
    if (rc == CVM_OK) {
        char *path;
        FILE *f = cvm_rundir_create(&R->rd, "sweep.csv", &path, err);
        if (f == NULL) {
            rc = err->status;
        } else {
            size_t nf = json_object_size(names);
            const char **order = cvm_calloc(nf ? nf : 1, sizeof *order);
            const char *fk;
            json_t *fv;
            json_object_foreach(names, fk, fv) order[json_integer_value(fv)] = fk;
            fputs("point", f);
            for (size_t g = 0; g < nk; g++) {
                fputc(',', f);
                cvm_csv_put(f, keys[g], strlen(keys[g]));
            }
            for (size_t i = 0; i < nf; i++) {
                fputc(',', f);
                cvm_csv_put(f, order[i], strlen(order[i]));
            }
            fputc('\n', f);
            for (size_t r = 0; r < json_array_size(figures); r++) {
                json_t *row = json_array_get(figures, r);
                fprintf(f, "%zu", r + 1);
                for (size_t g = 0; g < nk; g++) {
                    const char *v = json_string_value(json_object_get(json_object_get(row, "grid"), keys[g]));
                    fputc(',', f);
                    cvm_csv_put(f, v, strlen(v));
                }
                json_t *fig = json_object_get(row, "figures");
                for (size_t i = 0; i < nf; i++) {
                    json_t *v = json_object_get(fig, order[i]);
                    fputc(',', f);
                    if (json_is_integer(v))
                        fprintf(f, "%lld", (long long)json_integer_value(v));
                    else if (json_is_real(v))
                        fprintf(f, "%.10g", json_real_value(v));
                }
                fputc('\n', f);
            }
            cvm_free(order);
            rc = cvm_publish_close(f, path, err);
        }
        cvm_free(path);
        json_t *sj = json_object();
        json_t *grid = json_object();
        for (size_t g = 0; g < nk; g++) {
            json_t *a = json_array();
            for (size_t i = 0; i < nv[g]; i++)
                json_array_append_new(a, json_string(vals[g][i]));
            json_object_set_new(grid, keys[g], a);
        }
        json_object_set_new(sj, "grid", grid);
        json_object_set_new(sj, "points", points_json);
        points_json = NULL;
        json_object_set_new(R->summary, "sweep", sj);
    }
    json_decref(points_json);
    json_decref(figures);
    json_decref(names);
    cvm_free(sets);
    cvm_free(own);
    for (size_t g = 0; g < nk; g++) {
        cvm_free(keys ? keys[g] : NULL);
        for (size_t i = 0; vals && i < nv[g]; i++)
            cvm_free(vals[g][i]);
        if (vals)
            cvm_free(vals[g]);
    }
    cvm_free(keys);
    cvm_free(vals);
    cvm_free(nv);
    return rc;
}

int cvm_job_run(const cvm_job_opts *o, cvm_log *log, cvm_job_report *rep, cvm_err *err)
{
    memset(rep, 0, sizeof *rep);
    run R;
    memset(&R, 0, sizeof R);
    R.o = o;
    R.log = log;
    R.t_stage = cvm_now();
    int rc = cvm_job_config(o, &R.cfg, err);
    if (rc != CVM_OK) {
        /* An unreadable job file is a usage error, not an input-data one. */
        rep->exit_code = rc == CVM_ENOMEM ? CVM_EXIT_INTERNAL : CVM_EXIT_USAGE;
        return rc;
    }
    const cvm_config *c = R.cfg;
    rc = build_params(c, &R.jp, err);
    R.threads = cvm_threads((int)cvm_config_int(c, "job.threads"));
#ifdef _OPENMP
    /* Loops that take OpenMP's default team (checksums of cache sections,
     * reductions over the table) follow the job's thread count too. */
    omp_set_num_threads(R.threads);
#endif
    R.path_txn = resolve_path(c, "input.transactions.path");
    R.path_cust = resolve_path(c, "input.customers.path");
    R.path_prod = resolve_path(c, "input.products.path");
    R.path_int = resolve_path(c, "input.interactions.path");
    R.summary = json_object();
    R.timings = json_object();
    R.degraded = json_array();
    R.inputs = json_array();
    if (rc == CVM_OK && (!R.path_txn || !R.summary || !R.timings || !R.degraded || !R.inputs))
        rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    if (rc != CVM_OK) {
        rep->exit_code = cvm_job_exit_code(rc, false);
        json_decref(R.timings);
        json_decref(R.inputs);
        run_clear(&R);
        return rc;
    }
    char ts[32];
    timestamp_now(ts, sizeof ts);
    json_object_set_new(R.summary, "cvm_version", json_string(CVM_VERSION));
    json_object_set_new(R.summary, "job", json_string(cvm_config_str(c, "job.name")));
    json_object_set_new(R.summary, "job_file", o->job_path ? json_string(o->job_path) : json_null());
    json_object_set_new(R.summary, "mode",
                        json_string(o->validate_only ? "validate" : o->n_grid ? "sweep" : "run"));
    json_object_set_new(R.summary, "started_at", json_string(ts));
    json_object_set_new(R.summary, "threads", json_integer(R.threads));
    json_object_set_new(R.summary, "inputs", R.inputs);
    json_object_set_new(R.summary, "timings", R.timings);
    json_t *cfg_json = cvm_config_to_json(c);
    json_object_set_new(R.summary, "config", cfg_json ? cfg_json : json_null());
    cvm_log_msg(log, CVM_LOG_INFO, "job %s: %s, %d thread%s", cvm_config_str(c, "job.name"),
                o->validate_only ? "validate" : "run", R.threads, R.threads == 1 ? "" : "s");

    /* Output directory first: a run that could not publish should fail
     * before the heavy work, not after. */
    char name[300];
    snprintf(name, sizeof name, "%s%s", cvm_config_str(c, "job.name"),
             o->validate_only ? "-validate" : o->n_grid ? "-sweep" : "");
    /* One run of a job at a time: two nightly runs overlapping would race
     * on `latest`. The lock also makes cleaning up after killed runs safe. */
    int lock_fd = -1;
    rc = cvm_rundir_lock(cvm_config_str(c, "output.dir"), cvm_config_str(c, "job.name"), &lock_fd, err);
    if (rc == CVM_OK)
        rc = cvm_rundir_begin(cvm_config_str(c, "output.dir"), name, &R.rd, err);
    if (rc != CVM_OK) {
        rep->exit_code = cvm_job_exit_code(rc, true);
        cvm_rundir_unlock(lock_fd);
        run_clear(&R);
        return rc;
    }
    json_object_set_new(R.summary, "run_id", json_string(R.rd.run_id));
    bool output_phase = false;
    rc = ingest(&R, err);
    if (rc == CVM_OK) {
        char detail[160];
        snprintf(detail, sizeof detail, "%llu rows, %llu rejected, %zu customers, %.1f MB",
                 (unsigned long long)R.ist.rows, (unsigned long long)R.ist.rejected,
                 R.txn.n_customers, (double)R.ist.bytes / 1e6);
        stage_done(&R, "ingest", detail);
        rc = check_rejects(&R, err);
    }
    if (rc == CVM_OK) {
        rc = resolve_as_of(&R, c, CVM_DATE_NONE, err);
        if (rc == CVM_OK && R.as_of == CVM_DATE_NONE)
            R.as_of = cvm_purchases_default_as_of(&R.txn);
        if (rc == CVM_OK && R.as_of == CVM_DATE_NONE)
            rc = CVM_FAIL(err, CVM_EDATA, "%s: no purchase lines (only returns or excluded codes)",
                          R.path_txn);
    }
    if (rc == CVM_OK && o->n_grid) {
        rc = sweep(&R, err);
        if (rc == CVM_OK) {
            output_phase = true;
            R.rd.keep_latest = true;
            rc = publish(&R, "ok", err);
            if (rc == CVM_OK)
                rc = cvm_rundir_commit(&R.rd, err);
            if (rc == CVM_OK)
                snprintf(rep->run_dir, sizeof rep->run_dir, "%s", R.rd.final_path);
        }
    } else if (rc == CVM_OK) {
        char d[11];
        cvm_date_format(R.as_of, d);
        json_object_set_new(R.summary, "as_of", json_string(d));
        rc = customer_table(&R, err);
        if (rc == CVM_OK && !o->validate_only)
            rc = models(&R, err);
        if (rc == CVM_OK)
            output_phase = true;
        if (rc == CVM_OK && o->validate_only) {
            cvm_custtab_free(R.ct);
            R.ct = NULL;
            R.rd.keep_latest = true;
        }
        if (rc == CVM_OK) {
            rc = publish(&R, "ok", err);
            if (rc == CVM_OK)
                rc = cvm_rundir_commit(&R.rd, err);
            if (rc == CVM_OK)
                snprintf(rep->run_dir, sizeof rep->run_dir, "%s", R.rd.final_path);
        }
    }
    if (rc == CVM_EDATA && R.ist.rows > 0 && !R.rd.committed) {
        /* Data errors keep their evidence: rejects and summary go to a
         * failed-* directory beside the runs; `latest` does not move. */
        cvm_err perr = {0};
        json_object_set_new(R.summary, "error", json_string(err->msg));
        cvm_custtab_free(R.ct);
        R.ct = NULL;
        if (publish(&R, "failed", &perr) == CVM_OK) {
            char failed[4200];
            snprintf(failed, sizeof failed, "%s/failed-%s", R.rd.out_dir, R.rd.run_id);
            if (rename(R.rd.tmp_path, failed) == 0) {
                R.rd.committed = true;
                snprintf(rep->run_dir, sizeof rep->run_dir, "%s", failed);
            }
        }
    }
    if (!R.rd.committed)
        cvm_rundir_abort(&R.rd);
    if (!o->validate_only) {
        size_t gone = cvm_rundir_retain(cvm_config_str(c, "output.dir"), cvm_config_str(c, "job.name"),
                                        (size_t)cvm_config_int(c, "output.keep_runs"));
        if (gone)
            cvm_log_msg(log, CVM_LOG_INFO, "retention: removed %zu old run director%s (output.keep_runs = %ld)",
                        gone, gone == 1 ? "y" : "ies", cvm_config_int(c, "output.keep_runs"));
    }
    cvm_rundir_unlock(lock_fd);
    rep->exit_code = cvm_job_exit_code(rc, output_phase);
    rep->customers = R.txn.n_customers;
    rep->rows = R.ist.rows;
    rep->rejected = R.ist.rejected;
    cvm_rundir_clear(&R.rd);
    run_clear(&R);
    return rc;
}
