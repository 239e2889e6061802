/* nftw() is an XSI extension. */
#define _XOPEN_SOURCE 700
#include "publish.h"

#include <csv.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/file.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "datetime.h"

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = cvm_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int mkdir_p(const char *path, cvm_err *err)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return CVM_FAIL(err, CVM_EIO, "%s: path too long", path);
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0775) != 0 && errno != EEXIST)
            return CVM_FAIL(err, CVM_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0775) != 0 && errno != EEXIST)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot create directory: %s", buf, strerror(errno));
    return CVM_OK;
}

int cvm_rundir_begin(const char *out_dir, const char *job_name, cvm_rundir *rd, cvm_err *err)
{
    memset(rd, 0, sizeof *rd);
    CVM_TRY(mkdir_p(out_dir, err));
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    char id[256], name[300];
    for (int k = 1; k < 1000; k++) {
        if (k == 1)
            snprintf(id, sizeof id, "%s-%s", job_name, stamp);
        else
            snprintf(id, sizeof id, "%s-%s-%d", job_name, stamp, k);
        snprintf(name, sizeof name, ".tmp-%s", id);
        char *fin = join(out_dir, id), *tmp = join(out_dir, name);
        if (!fin || !tmp) {
            cvm_free(fin);
            cvm_free(tmp);
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        }
        struct stat sb;
        if (stat(fin, &sb) != 0 && mkdir(tmp, 0775) == 0) {
            rd->out_dir = cvm_strdup(out_dir);
            rd->run_id = cvm_strdup(id);
            rd->tmp_path = tmp;
            rd->final_path = fin;
            if (!rd->out_dir || !rd->run_id) {
                cvm_rundir_abort(rd);
                cvm_rundir_clear(rd);
                return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
            }
            return CVM_OK;
        }
        int e = errno;
        cvm_free(fin);
        cvm_free(tmp);
        if (e != EEXIST && e != 0)
            return CVM_FAIL(err, CVM_EIO, "%s: cannot create the run directory: %s", out_dir,
                            strerror(e));
    }
    return CVM_FAIL(err, CVM_EIO, "%s: too many runs in the same second", out_dir);
}

char *cvm_rundir_path(const cvm_rundir *rd, const char *name)
{
    return join(rd->tmp_path, name);
}

FILE *cvm_rundir_create(const cvm_rundir *rd, const char *name, char **path, cvm_err *err)
{
    *path = cvm_rundir_path(rd, name);
    if (*path == NULL) {
        CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        return NULL;
    }
    FILE *f = fopen(*path, "wb");
    if (f == NULL) {
        CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", *path, strerror(errno));
        cvm_free(*path);
        *path = NULL;
        return NULL;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 16);
    return f;
}

static void fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int cvm_rundir_commit(cvm_rundir *rd, cvm_err *err)
{
    fsync_dir(rd->tmp_path);
    if (rename(rd->tmp_path, rd->final_path) != 0)
        return CVM_FAIL(err, CVM_EIO, "cannot publish %s as %s: %s", rd->tmp_path,
                        rd->final_path, strerror(errno));
    rd->committed = true;
    if (rd->keep_latest)
        return CVM_OK;
    /* latest -> RUNID, swapped in with one rename so readers never see it missing. */
    char *link = join(rd->out_dir, "latest");
    char *tmp = join(rd->out_dir, ".latest.tmp");
    if (!link || !tmp) {
        cvm_free(link);
        cvm_free(tmp);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    unlink(tmp);
    int rc = CVM_OK;
    if (symlink(rd->run_id, tmp) != 0 || rename(tmp, link) != 0)
        rc = CVM_FAIL(err, CVM_EIO, "run published as %s, but %s could not be updated: %s",
                      rd->final_path, link, strerror(errno));
    fsync_dir(rd->out_dir);
    cvm_free(link);
    cvm_free(tmp);
    return rc;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void cvm_rundir_abort(cvm_rundir *rd)
{
    if (rd->tmp_path && !rd->committed)
        nftw(rd->tmp_path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void cvm_rundir_clear(cvm_rundir *rd)
{
    cvm_free(rd->out_dir);
    cvm_free(rd->run_id);
    cvm_free(rd->tmp_path);
    cvm_free(rd->final_path);
    memset(rd, 0, sizeof *rd);
}

int cvm_rundir_lock(const char *out_dir, const char *job_name, int *fd, cvm_err *err)
{
    *fd = -1;
    CVM_TRY(mkdir_p(out_dir, err));
    char path[4200];
    snprintf(path, sizeof path, "%s/.lock-%s", out_dir, job_name);
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0664);
    if (f < 0)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot open the lock file: %s", path, strerror(errno));
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        char who[256] = "";
        ssize_t k = pread(f, who, sizeof who - 1, 0);
        who[k > 0 ? k : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        close(f);
        return CVM_FAIL(err, CVM_EBUSY,
                        "another run of job '%s' is in progress (%s); lock %s", job_name,
                        who[0] ? who : "holder unknown", path);
    }
    char who[256];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(who, sizeof who, "pid %ld, started %s\n", (long)getpid(), stamp);
    if (ftruncate(f, 0) != 0 || pwrite(f, who, (size_t)n, 0) != n) {
        /* The lock holds even if the note cannot be written. */
    }
    *fd = f;
    return CVM_OK;
}

void cvm_rundir_unlock(int fd)
{
    if (fd >= 0)
        close(fd); /* releases the flock */
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Removes the oldest entries of names[0..n) (sorted ascending) beyond keep. */
static size_t remove_oldest(const char *out_dir, char **names, size_t n, size_t keep,
                            const char *latest)
{
    size_t removed = 0;
    if (n == 0)
        return 0; /* names may be NULL: qsort(NULL, 0) is undefined */
    qsort(names, n, sizeof *names, cmp_names);
    for (size_t i = 0; keep > 0 && i + keep < n; i++) {
        if (latest && strcmp(names[i], latest) == 0)
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", out_dir, names[i]);
        if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
            removed++;
    }
    return removed;
}

size_t cvm_rundir_retain(const char *out_dir, const char *job_name, size_t keep)
{
    DIR *d = opendir(out_dir);
    if (d == NULL)
        return 0;
    char latest[1024] = "";
    char link[4200];
    snprintf(link, sizeof link, "%s/latest", out_dir);
    ssize_t k = readlink(link, latest, sizeof latest - 1);
    latest[k > 0 ? k : 0] = '\0';
    size_t jl = strlen(job_name), removed = 0;
    char **runs = NULL, **failed = NULL;
    size_t nr = 0, nf = 0, cr = 0, cf = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *nm = e->d_name;
        /* NAME-YYYYMMDDTHHMMSSZ[-k]: the job's runs, and not another job whose
         * name merely starts with this one (the stamp must follow). */
        char path[4200];
        if (strncmp(nm, ".tmp-", 5) == 0 && strncmp(nm + 5, job_name, jl) == 0 && nm[5 + jl] == '-' &&
            nm[6 + jl] >= '0' && nm[6 + jl] <= '9') {
            snprintf(path, sizeof path, "%s/%s", out_dir, nm);
            if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0)
                removed++;
            continue;
        }
        bool is_failed = strncmp(nm, "failed-", 7) == 0;
        const char *base = is_failed ? nm + 7 : nm;
        if (strncmp(base, job_name, jl) != 0 || base[jl] != '-' || base[jl + 1] < '0' || base[jl + 1] > '9')
            continue;
        char ***arr = is_failed ? &failed : &runs;
        size_t *cnt = is_failed ? &nf : &nr, *cap = is_failed ? &cf : &cr;
        if (*cnt == *cap) {
            size_t nc = *cap ? *cap * 2 : 32;
            char **na = realloc(*arr, nc * sizeof *na);
            if (na == NULL)
                break;
            *arr = na;
            *cap = nc;
        }
        (*arr)[(*cnt)++] = strdup(nm);
    }
    closedir(d);
    if (keep > 0) {
        removed += remove_oldest(out_dir, runs, nr, keep, latest);
        removed += remove_oldest(out_dir, failed, nf, keep, NULL);
    }
    for (size_t i = 0; i < nr; i++)
        free(runs[i]);
    for (size_t i = 0; i < nf; i++)
        free(failed[i]);
    free(runs);
    free(failed);
    return removed;
}

/* Whether a CSV field needs quotes: a delimiter, quote or line break in it,
 * or blanks at its ends (which readers like libcsv would trim). */
static bool needs_quotes(const char *s, size_t len)
{
    bool quote = len > 0 && (s[0] == ' ' || s[len - 1] == ' ' || s[0] == '\t');
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    return quote;
}

void cvm_csv_put(FILE *f, const char *s, size_t len)
{
    if (needs_quotes(s, len))
        csv_fwrite(f, s, len);
    else
        fwrite(s, 1, len, f);
}

int cvm_publish_close(FILE *f, const char *path, cvm_err *err)
{
    int bad = ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad)
        return CVM_FAIL(err, CVM_EIO, "%s: write error: %s", path, strerror(e));
    return CVM_OK;
}

/* Unsigned integer to decimal text, two digits per step; returns the length. */
static int fmt_u64(uint64_t u, char *buf)
{
    static const char d2[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                "8081828384858687888990919293949596979899";
    char tmp[24];
    int n = 24;
    while (u >= 100) {
        unsigned q = (unsigned)(u % 100);
        u /= 100;
        n -= 2;
        memcpy(tmp + n, d2 + 2 * q, 2);
    }
    if (u >= 10) {
        n -= 2;
        memcpy(tmp + n, d2 + 2 * u, 2);
    } else {
        tmp[--n] = (char)('0' + u);
    }
    memcpy(buf, tmp + n, (size_t)(24 - n));
    buf[24 - n] = '\0';
    return 24 - n;
}

/* Integer to decimal text; returns the length. */
static int fmt_int(int64_t v, char *buf)
{
    if (v < 0) {
        buf[0] = '-';
        return 1 + fmt_u64((uint64_t)0 - (uint64_t)v, buf + 1);
    }
    return fmt_u64((uint64_t)v, buf);
}

/* Fixed-point text with `dec` decimals, as printf("%.*f") but several times
 * faster: the value is scaled and rounded to an integer, which agrees with
 * printf except possibly on exact binary ties. "-0.00" is never written. */
static int fmt_fixed(double v, int dec, char *buf)
{
    static const double p10[7] = {1, 10, 100, 1000, 1e4, 1e5, 1e6};
    if (dec > 6 || !(fabs(v) < 1e15 / p10[dec > 6 ? 6 : dec]))
        return snprintf(buf, 64, "%.*f", dec, v);
    double scaled = nearbyint(v * p10[dec]);
    int64_t r = (int64_t)scaled;
    int k = 0;
    if (r < 0) {
        buf[k++] = '-';
        r = -r;
    }
    uint64_t u = (uint64_t)r, ip, fp;
    /* Constant divisors: a multiply each instead of a division. */
    switch (dec) {
    case 0: ip = u; fp = 0; break;
    case 1: ip = u / 10; fp = u % 10; break;
    case 2: ip = u / 100; fp = u % 100; break;
    case 3: ip = u / 1000; fp = u % 1000; break;
    case 4: ip = u / 10000; fp = u % 10000; break;
    case 5: ip = u / 100000; fp = u % 100000; break;
    default: ip = u / 1000000; fp = u % 1000000; break;
    }
    k += fmt_u64(ip, buf + k);
    if (dec > 0) {
        buf[k++] = '.';
        for (int i = dec - 1; i >= 0; i--) {
            buf[k + i] = (char)('0' + fp % 10);
            fp /= 10;
        }
        k += dec;
    }
    buf[k] = '\0';
    return k;
}

/* A block of formatted rows in memory. Cells are appended with plain
 * stores: going through stdio per cell cost more than the formatting. */
typedef struct rowbuf {
    char *p;
    size_t n, cap;
    int bad;
} rowbuf;

/* Room for `need` more bytes; false (and bad) when out of memory. */
static bool rb_room(rowbuf *b, size_t need)
{
    if (b->n + need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->n + need)
        cap *= 2;
    char *np = cvm_realloc(b->p, cap);
    if (np == NULL) {
        b->bad = 1;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

static void rb_str(rowbuf *b, const char *s, size_t len)
{
    bool quote = needs_quotes(s, len);
    /* Quoted: libcsv's writer (every quote doubled: at most 2 len + 2). */
    if (!rb_room(b, quote ? 2 * len + 2 : len))
        return;
    if (quote) {
        b->n += csv_write(b->p + b->n, b->cap - b->n, s, len);
    } else {
        memcpy(b->p + b->n, s, len);
        b->n += len;
    }
}

static void put_cell(rowbuf *b, const cvm_column *c, size_t r)
{
    if (c->type == CVM_COL_STR) {
        const char *s = ((char *const *)c->data)[r];
        if (s)
            rb_str(b, s, strlen(s));
        return;
    }
    if (!rb_room(b, 64))
        return;
    char *buf = b->p + b->n;
    switch (c->type) {
    case CVM_COL_INT: {
        int64_t v = ((const int64_t *)c->data)[r];
        if (v != CVM_INT_NONE)
            b->n += (size_t)fmt_int(v, buf);
        break;
    }
    case CVM_COL_DOUBLE: {
        double v = ((const double *)c->data)[r];
        if (isnan(v) || isinf(v))
            break;
        if (c->decimals >= 0)
            b->n += (size_t)fmt_fixed(v, c->decimals, buf);
        else
            b->n += (size_t)snprintf(buf, 64, "%.17g", v);
        break;
    }
    case CVM_COL_DATE: {
        int32_t d = ((const int32_t *)c->data)[r];
        if (d != CVM_DATE_NONE) {
            cvm_date_format(d, buf);
            b->n += 10;
        }
        break;
    }
    case CVM_COL_STR:
        break;
    }
}

static void put_row(rowbuf *b, const cvm_custtab *ct, size_t r)
{
    for (size_t c = 0; c < ct->n_cols; c++) {
        if (c && rb_room(b, 1))
            b->p[b->n++] = ',';
        put_cell(b, ct->cols[c], r);
    }
    if (rb_room(b, 1))
        b->p[b->n++] = '\n';
}

int cvm_publish_custtab_csv(const cvm_custtab *ct, const char *path, cvm_err *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", path, strerror(errno));
    setvbuf(f, NULL, _IOFBF, 1 << 16);
    for (size_t c = 0; c < ct->n_cols; c++) {
        if (c)
            fputc(',', f);
        cvm_csv_put(f, ct->cols[c]->name, strlen(ct->cols[c]->name));
    }
    fputc('\n', f);
    /* Rows are formatted in parallel blocks into memory and written in
     * order, so the file is the same for any thread count. */
    enum { BLOCK = 2048, BATCH = 16 };
    rowbuf rb[BATCH] = {{0}};
    int bad = 0;
    for (size_t base = 0; base < ct->n_rows && !bad; base += (size_t)BLOCK * BATCH) {
        long nb = (long)((ct->n_rows - base + BLOCK - 1) / BLOCK);
        if (nb > BATCH)
            nb = BATCH;
#pragma omp parallel for schedule(dynamic, 1) default(none) shared(ct, rb, nb, base)
        for (long b = 0; b < nb; b++) {
            size_t lo = base + (size_t)b * BLOCK, hi = lo + BLOCK;
            if (hi > ct->n_rows)
                hi = ct->n_rows;
            rb[b].n = 0;
            for (size_t r = lo; r < hi && !rb[b].bad; r++)
                put_row(&rb[b], ct, r);
        }
        for (long b = 0; b < nb; b++) {
            bad |= rb[b].bad;
            if (!bad)
                fwrite(rb[b].p, 1, rb[b].n, f);
        }
    }
    for (int b = 0; b < BATCH; b++)
        cvm_free(rb[b].p);
    if (bad) {
        fclose(f);
        return CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory formatting rows", path);
    }
    return cvm_publish_close(f, path, err);
}

int cvm_publish_rejects_csv(const cvm_rejects *r, const char *path, cvm_err *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", path, strerror(errno));
    fputs("file,line,column,field,reason,detail,raw\n", f);
    for (size_t i = 0; i < r->n; i++) {
        const cvm_reject *x = &r->items[i];
        cvm_csv_put(f, x->file, strlen(x->file));
        fprintf(f, ",%llu,%d,", (unsigned long long)x->line, x->column);
        cvm_csv_put(f, x->field, strlen(x->field));
        fputc(',', f);
        const char *rn = cvm_reject_name(x->reason);
        cvm_csv_put(f, rn, strlen(rn));
        fputc(',', f);
        cvm_csv_put(f, x->detail, strlen(x->detail));
        fputc(',', f);
        cvm_csv_put(f, x->raw, strlen(x->raw));
        fputc('\n', f);
    }
    return cvm_publish_close(f, path, err);
}

int cvm_publish_json(const void *json, const char *path, cvm_err *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", path, strerror(errno));
    if (json_dumpf((const json_t *)json, f, JSON_INDENT(2) | JSON_REAL_PRECISION(17)) != 0) {
        fclose(f);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot write JSON", path);
    }
    fputc('\n', f);
    return cvm_publish_close(f, path, err);
}
