#include "runcsv.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "datetime.h"
#include "textparse.h"

static int grow(cvm_runcsv *r, size_t need, cvm_err *err)
{
    if (need <= r->cap)
        return CVM_OK;
    size_t cap = r->cap ? r->cap * 2 : 64;
    while (cap < need)
        cap *= 2;
    const char **f = cvm_reallocarray(r->field, cap, sizeof *f);
    if (f)
        r->field = f;
    size_t *l = cvm_reallocarray(r->len, cap, sizeof *l);
    if (l)
        r->len = l;
    size_t *o = cvm_reallocarray(r->off, cap, sizeof *o);
    if (o)
        r->off = o;
    bool *q = cvm_reallocarray(r->quoted, cap, sizeof *q);
    if (q)
        r->quoted = q;
    if (!f || !l || !o || !q)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory reading %s", r->path);
    r->cap = cap;
    return CVM_OK;
}

static int scratch_put(cvm_runcsv *r, size_t *used, const char *s, size_t n, cvm_err *err)
{
    if (*used + n + 1 > r->scratch_cap) {
        size_t cap = r->scratch_cap ? r->scratch_cap * 2 : 4096;
        while (cap < *used + n + 1)
            cap *= 2;
        char *p = cvm_realloc(r->scratch, cap);
        if (p == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory reading %s", r->path);
        r->scratch = p;
        r->scratch_cap = cap;
    }
    memcpy(r->scratch + *used, s, n);
    *used += n;
    return CVM_OK;
}

/* Bytes that end an unquoted field. */
static const bool stop[256] = {[','] = true, ['\n'] = true, ['\r'] = true};

/* Parses one record starting at r->pos into r->field/len (n fields). */
static int parse_record(cvm_runcsv *r, cvm_err *err)
{
    const char *d = r->data;
    size_t end = r->size, p = r->pos, used = 0;
    r->n = 0;
    r->line = r->next_line;
    r->raw = d + p;
    for (;;) {
        CVM_TRY(grow(r, r->n + 1, err));
        size_t k = r->n++;
        r->off[k] = SIZE_MAX;
        r->quoted[k] = false;
        if (p < end && d[p] == '"') {
            r->quoted[k] = true;
            size_t s = ++p;
            bool escaped = false;
            for (;;) {
                if (p >= end)
                    return CVM_FAIL(err, CVM_EDATA, "%s:%llu: quoted field not closed",
                                    r->path, (unsigned long long)r->line);
                if (d[p] == '"') {
                    if (p + 1 < end && d[p + 1] == '"') {
                        escaped = true;
                        p += 2;
                        continue;
                    }
                    break;
                }
                if (d[p] == '\n')
                    r->next_line++;
                p++;
            }
            if (escaped) {
                size_t start = used;
                for (size_t i = s; i < p; i++) {
                    CVM_TRY(scratch_put(r, &used, d + i, 1, err));
                    if (d[i] == '"')
                        i++;
                }
                r->off[k] = start;
                r->len[k] = used - start;
            } else {
                r->field[k] = d + s;
                r->len[k] = p - s;
            }
            p++; /* closing quote */
            if (p < end && d[p] != ',' && d[p] != '\n' && d[p] != '\r')
                return CVM_FAIL(err, CVM_EDATA, "%s:%llu: text after a closing quote in field %zu",
                                r->path, (unsigned long long)r->next_line, k + 1);
        } else {
            size_t s = p;
            /* Unrolled: most fields are a few bytes, and this loop is the
             * reader's hot spot. */
            while (p + 4 <= end && !stop[(unsigned char)d[p]] && !stop[(unsigned char)d[p + 1]] &&
                   !stop[(unsigned char)d[p + 2]] && !stop[(unsigned char)d[p + 3]])
                p += 4;
            while (p < end && !stop[(unsigned char)d[p]])
                p++;
            r->field[k] = d + s;
            r->len[k] = p - s;
        }
        if (p < end && d[p] == ',') {
            p++;
            continue;
        }
        break;
    }
    r->raw_len = (size_t)(d + p - r->raw);
    if (p < end && d[p] == '\r')
        p++;
    if (p < end && d[p] == '\n') {
        p++;
        r->next_line++;
    }
    r->pos = p;
    for (size_t k = 0; k < r->n; k++)
        if (r->off[k] != SIZE_MAX)
            r->field[k] = r->scratch + r->off[k];
    return CVM_OK;
}

static void skip_blank_lines(cvm_runcsv *r)
{
    while (r->pos < r->size && (r->data[r->pos] == '\n' || r->data[r->pos] == '\r')) {
        if (r->data[r->pos] == '\n')
            r->next_line++;
        r->pos++;
    }
}

int cvm_runcsv_open(cvm_runcsv *r, const char *path, cvm_err *err)
{
    memset(r, 0, sizeof *r);
    r->path = cvm_strdup(path);
    if (r->path == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        cvm_free(r->path);
        r->path = NULL;
        return CVM_FAIL(err, CVM_EIO, "%s: cannot read: %s", path, strerror(e));
    }
    r->size = (size_t)st.st_size;
    if (r->size > 0) {
        void *m = mmap(NULL, r->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int e = errno;
            close(fd);
            cvm_free(r->path);
            r->path = NULL;
            return CVM_FAIL(err, CVM_EIO, "%s: cannot map: %s", path, strerror(e));
        }
        madvise(m, r->size, MADV_SEQUENTIAL);
        r->data = m;
    }
    close(fd);
    r->next_line = 1;
    size_t skip = r->size >= 3 && memcmp(r->data, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    r->pos = skip;
    skip_blank_lines(r);
    if (r->pos >= r->size) {
        int rc = CVM_FAIL(err, CVM_EDATA, "%s: empty file, no header line", path);
        cvm_runcsv_close(r);
        return rc;
    }
    int rc = parse_record(r, err);
    if (rc == CVM_OK) {
        r->n_cols = r->n;
        r->names = cvm_calloc(r->n_cols, sizeof *r->names);
        if (r->names == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        for (size_t i = 0; rc == CVM_OK && i < r->n_cols; i++)
            if ((r->names[i] = cvm_strndup(r->field[i], r->len[i])) == NULL)
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    if (rc != CVM_OK) {
        cvm_runcsv_close(r);
        return rc;
    }
    r->data_start = r->pos;
    r->row = 0;
    return CVM_OK;
}

int cvm_runcsv_next(cvm_runcsv *r, cvm_err *err)
{
    skip_blank_lines(r);
    if (r->pos >= r->size)
        return 0;
    CVM_TRY(parse_record(r, err));
    if (r->n != r->n_cols)
        return CVM_FAIL(err, CVM_EDATA, "%s:%llu: expected %zu fields, found %zu", r->path,
                        (unsigned long long)r->line, r->n_cols, r->n);
    r->row++;
    return 1;
}

void cvm_runcsv_rewind(cvm_runcsv *r)
{
    r->pos = r->data_start;
    r->row = 0;
    /* Line numbers restart after the header; the header is one record. */
    r->next_line = 1;
    for (size_t i = 0; i < r->data_start; i++)
        if (r->data[i] == '\n')
            r->next_line++;
}

void cvm_runcsv_close(cvm_runcsv *r)
{
    if (r->data)
        munmap((void *)r->data, r->size);
    for (size_t i = 0; r->names && i < r->n_cols; i++)
        cvm_free(r->names[i]);
    cvm_free(r->names);
    cvm_free(r->field);
    cvm_free(r->len);
    cvm_free(r->off);
    cvm_free(r->quoted);
    cvm_free(r->scratch);
    cvm_free(r->path);
    memset(r, 0, sizeof *r);
}

int cvm_runcsv_col(const cvm_runcsv *r, const char *name)
{
    for (size_t i = 0; i < r->n_cols; i++)
        if (strcmp(r->names[i], name) == 0)
            return (int)i;
    return -1;
}

const char *cvm_runcsv_str(const cvm_runcsv *r, size_t i, char *buf, size_t cap)
{
    size_t n = r->len[i] < cap - 1 ? r->len[i] : cap - 1;
    memcpy(buf, r->field[i], n);
    buf[n] = '\0';
    return buf;
}

bool cvm_runcsv_num(const cvm_runcsv *r, size_t i, double *out)
{
    return r->len[i] > 0 && cvm_parse_double(r->field[i], r->len[i], out);
}

bool cvm_runcsv_is_integer(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    size_t digits = len - i;
    if (digits == 0 || digits > 18)
        return false;
    if (s[i] == '0' && digits > 1)
        return false;
    for (; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool cvm_runcsv_is_number(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    size_t d0 = i;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    size_t nint = i - d0;
    if (nint == 0 || (nint > 1 && s[d0] == '0'))
        return false;
    if (i < len && s[i] == '.') {
        size_t f0 = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f0)
            return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t e0 = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == e0)
            return false;
    }
    double x;
    return i == len && cvm_parse_double(s, len, &x);
}

bool cvm_runcsv_is_date(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    return cvm_date_valid(y, m, d);
}

static bool id_name(const char *n)
{
    size_t l = strlen(n);
    return strcmp(n, "id") == 0 || (l > 3 && strcmp(n + l - 3, "_id") == 0) ||
           (l > 4 && strcmp(n + l - 4, "_ids") == 0);
}

int cvm_runcsv_infer(cvm_runcsv *r, cvm_runcsv_type *types, cvm_err *err)
{
    /* Bit set of the types every value so far is compatible with. */
    enum { I = 1, N = 2, D = 4 };
    unsigned *ok = cvm_calloc(r->n_cols ? r->n_cols : 1, sizeof *ok);
    bool *seen = cvm_calloc(r->n_cols ? r->n_cols : 1, sizeof *seen);
    if (ok == NULL || seen == NULL) {
        cvm_free(ok);
        cvm_free(seen);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    for (size_t c = 0; c < r->n_cols; c++)
        ok[c] = id_name(r->names[c]) ? 0 : (I | N | D);
    cvm_runcsv_rewind(r);
    int st;
    while ((st = cvm_runcsv_next(r, err)) > 0) {
        for (size_t c = 0; c < r->n_cols; c++) {
            if (ok[c] == 0 || r->len[c] == 0)
                continue;
            seen[c] = true;
            const char *s = r->field[c];
            size_t n = r->len[c];
            if ((ok[c] & I) && !cvm_runcsv_is_integer(s, n))
                ok[c] &= ~(unsigned)I;
            if ((ok[c] & N) && !cvm_runcsv_is_number(s, n))
                ok[c] &= ~(unsigned)N;
            if ((ok[c] & D) && !cvm_runcsv_is_date(s, n))
                ok[c] &= ~(unsigned)D;
        }
    }
    cvm_runcsv_rewind(r);
    for (size_t c = 0; c < r->n_cols; c++) {
        if (!seen[c] || ok[c] == 0)
            types[c] = CVM_RUNCSV_STRING;
        else if (ok[c] & I)
            types[c] = CVM_RUNCSV_INTEGER;
        else if (ok[c] & N)
            types[c] = CVM_RUNCSV_NUMBER;
        else
            types[c] = CVM_RUNCSV_DATE;
    }
    cvm_free(ok);
    cvm_free(seen);
    return st < 0 ? st : CVM_OK;
}

int cvm_runcsv_types(cvm_runcsv *r, const void *columns_json, cvm_runcsv_type *types,
                     const void **meta, cvm_err *err)
{
    const json_t *cols = columns_json;
    size_t nc = r->n_cols, found = 0;
    bool *known = cvm_calloc(nc ? nc : 1, sizeof *known);
    if (known == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    for (size_t c = 0; c < nc; c++) {
        if (meta)
            meta[c] = NULL;
        size_t i;
        const json_t *cj;
        json_array_foreach(json_is_array(cols) ? cols : NULL, i, cj) {
            const char *name = json_string_value(json_object_get(cj, "name"));
            const char *type = json_string_value(json_object_get(cj, "type"));
            if (name && type && strcmp(name, r->names[c]) == 0 &&
                cvm_runcsv_type_parse(type, &types[c])) {
                known[c] = true;
                if (meta)
                    meta[c] = cj;
                found++;
                break;
            }
        }
    }
    int rc = CVM_OK;
    if (found < nc) {
        cvm_runcsv_type *inf = cvm_calloc(nc, sizeof *inf);
        rc = inf ? cvm_runcsv_infer(r, inf, err) : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        for (size_t c = 0; rc == CVM_OK && c < nc; c++)
            if (!known[c])
                types[c] = inf[c];
        cvm_free(inf);
    }
    cvm_free(known);
    cvm_runcsv_rewind(r);
    return rc;
}

static const char *const type_names[] = {"integer", "number", "string", "date"};

const char *cvm_runcsv_type_name(cvm_runcsv_type t)
{
    return type_names[t];
}

bool cvm_runcsv_type_parse(const char *name, cvm_runcsv_type *out)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, type_names[i]) == 0) {
            *out = (cvm_runcsv_type)i;
            return true;
        }
    return false;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cvm_runcsv_list(const char *dir, char ***names, size_t *n, cvm_err *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot list: %s", dir, strerror(errno));
    size_t cap = 16, k = 0;
    char **v = cvm_calloc(cap + 1, sizeof *v);
    int rc = v ? CVM_OK : CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    struct dirent *e;
    while (rc == CVM_OK && (e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l <= 4 || strcmp(e->d_name + l - 4, ".csv") != 0)
            continue;
        char full[4200];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (k == cap) {
            char **w = cvm_reallocarray(v, cap * 2 + 1, sizeof *v);
            if (w == NULL) {
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
                break;
            }
            v = w;
            cap *= 2;
        }
        if ((v[k] = cvm_strdup(e->d_name)) == NULL)
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        else
            v[++k] = NULL;
    }
    closedir(d);
    if (rc != CVM_OK) {
        cvm_runcsv_free_list(v, k);
        return rc;
    }
    qsort(v, k, sizeof *v, cmp_names);
    *names = v;
    *n = k;
    return CVM_OK;
}

void cvm_runcsv_free_list(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        cvm_free(names[i]);
    cvm_free(names);
}

void cvm_runcsv_table_name(const char *file, char *out, size_t cap)
{
    size_t l = strlen(file);
    if (l > 4 && strcmp(file + l - 4, ".csv") == 0)
        l -= 4;
    size_t k = 0;
    if (l > 0 && isdigit((unsigned char)file[0]) && k + 1 < cap)
        out[k++] = '_';
    for (size_t i = 0; i < l && k + 1 < cap; i++) {
        unsigned char ch = (unsigned char)file[i];
        out[k++] = isalnum(ch) && ch < 128 ? (char)tolower(ch) : '_';
    }
    out[k] = '\0';
}
