#include "csvread.h"

#include <csv.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "alloc.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* libcsv's parser state between records (ROW_NOT_BEGUN in libcsv.c). */
#define CVM__CSV_ROW_NOT_BEGUN 0

typedef struct rec_state {
    struct csv_parser p;
    char *fbuf;
    size_t fbuf_len, fbuf_cap;
    size_t *foff, *flen;
    const char **fptr;
    size_t nf, fcap;
    const char *buf;          /* bytes of the region being parsed */
    const char *buf_end;      /* its end: loads up to there are safe */
    uint64_t buf_off;         /* file offset of buf[0] */
    uint64_t rec_start_off;   /* file offset where the current record began */
    uint64_t rec_line;        /* local line number of that byte */
    uint64_t line_base;       /* added to rec_line in records */
    const char *line_end;     /* end of the current line's content */
    cvm_csv_record_fn fn;
    void *ctx;
    cvm_err *err;
    int status;
    bool fast;                /* quote-free lines bypass libcsv */
    char delim;
} rec_state;

static void on_field(void *s, size_t len, void *data)
{
    rec_state *st = data;
    if (st->status != CVM_OK)
        return;
    if (st->nf == st->fcap) {
        size_t cap = st->fcap ? st->fcap * 2 : 16;
        size_t *fo = cvm_reallocarray(st->foff, cap, sizeof *fo);
        if (fo)
            st->foff = fo;
        size_t *fl = cvm_reallocarray(st->flen, cap, sizeof *fl);
        if (fl)
            st->flen = fl;
        const char **fp = cvm_reallocarray((void *)st->fptr, cap, sizeof *fp);
        if (fp)
            st->fptr = fp;
        if (!fo || !fl || !fp) {
            st->status = CVM_FAIL(st->err, CVM_ENOMEM, "out of memory reading CSV fields");
            return;
        }
        st->fcap = cap;
    }
    if (st->fbuf_len + len + 1 > st->fbuf_cap) {
        size_t cap = st->fbuf_cap ? st->fbuf_cap : 256;
        while (cap < st->fbuf_len + len + 1)
            cap *= 2;
        char *nb = cvm_realloc(st->fbuf, cap);
        if (nb == NULL) {
            st->status = CVM_FAIL(st->err, CVM_ENOMEM, "out of memory reading CSV fields");
            return;
        }
        st->fbuf = nb;
        st->fbuf_cap = cap;
    }
    if (len)
        memcpy(st->fbuf + st->fbuf_len, s, len);
    st->fbuf[st->fbuf_len + len] = '\0';
    st->foff[st->nf] = st->fbuf_len;
    st->flen[st->nf] = len;
    st->nf++;
    st->fbuf_len += len + 1;
}

static void on_record(int c, void *data)
{
    (void)c;
    rec_state *st = data;
    if (st->status == CVM_OK && st->nf > 0) {
        for (size_t i = 0; i < st->nf; i++)
            st->fptr[i] = st->fbuf + st->foff[i];
        cvm_csv_record rec;
        rec.field = st->fptr;
        rec.len = st->flen;
        rec.n = st->nf;
        rec.line = st->line_base + st->rec_line;
        /* A record that began before this buffer (never in practice: regions
         * start at record boundaries) is reported from the buffer start. */
        const char *rs = st->rec_start_off >= st->buf_off
                             ? st->buf + (st->rec_start_off - st->buf_off)
                             : st->buf;
        rec.raw = rs;
        rec.raw_len = st->line_end > rs ? (size_t)(st->line_end - rs) : 0;
        st->status = st->fn(st->ctx, &rec, st->err);
    }
    st->nf = 0;
    st->fbuf_len = 0;
}

static int state_init(rec_state *st, char delim, cvm_csv_record_fn fn, void *ctx, cvm_err *err)
{
    memset(st, 0, sizeof *st);
    if (csv_init(&st->p, CSV_APPEND_NULL) != 0)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory creating a CSV parser");
    csv_set_delim(&st->p, (unsigned char)delim);
    csv_set_realloc_func(&st->p, cvm_realloc);
    csv_set_free_func(&st->p, cvm_free);
    st->fn = fn;
    st->ctx = ctx;
    st->err = err;
    st->delim = delim;
    return CVM_OK;
}

static void state_free(rec_state *st)
{
    csv_free(&st->p);
    cvm_free(st->fbuf);
    cvm_free(st->foff);
    cvm_free(st->flen);
    cvm_free((void *)st->fptr);
}

typedef struct region_result {
    int status;
    bool open;            /* ended inside a record (a quoted newline at the end) */
    uint64_t open_off;    /* file offset where that record began */
    uint64_t open_line;   /* its local line number */
    uint64_t nl;          /* newlines in the region */
} region_result;

static inline bool is_blank(char c, char delim)
{
    return (c == ' ' || c == '\t') && c != delim;
}

static int grow_fields(rec_state *st)
{
    size_t cap = st->fcap ? st->fcap * 2 : 16;
    size_t *fl = cvm_reallocarray(st->flen, cap, sizeof *fl);
    if (fl)
        st->flen = fl;
    size_t *fo = cvm_reallocarray(st->foff, cap, sizeof *fo);
    if (fo)
        st->foff = fo;
    const char **fp = cvm_reallocarray((void *)st->fptr, cap, sizeof *fp);
    if (fp)
        st->fptr = fp;
    if (!fl || !fo || !fp) {
        st->status = CVM_FAIL(st->err, CVM_ENOMEM, "out of memory reading CSV fields");
        return -1;
    }
    st->fcap = cap;
    return 0;
}

#define SWAR_LO7 0x7F7F7F7F7F7F7F7FULL
#define SWAR_ONES 0x0101010101010101ULL

/* High bit of each byte of x that is zero, exactly (no carries between
 * bytes, unlike the classic (x - 0x01..) & ~x trick). */
static inline uint64_t zero_bytes(uint64_t x)
{
    uint64_t t = (x & SWAR_LO7) + SWAR_LO7;
    return ~(t | x | SWAR_LO7);
}

static inline void add_field(rec_state *st, const char *q, size_t b, size_t e, size_t nf)
{
    const char d = st->delim;
    while (b < e && is_blank(q[b], d))
        b++;
    while (e > b && is_blank(q[e - 1], d))
        e--;
    st->fptr[nf] = q + b;
    st->flen[nf] = e - b;
}

/* Splits one line q[0..len) (no line end) the way libcsv does with its
 * default options, when the line has no quote and no CR: fields at the
 * delimiter, blanks around each field trimmed, a line of blanks only is no
 * record. Eight bytes at a time: one pass finds delimiters and rules the
 * line out (returns false) if it holds a quote or a CR, which libcsv then
 * parses. Fields point into the buffer (not NUL-terminated), so the raw
 * text stays intact. */
static bool fast_line(rec_state *st, const char *q, size_t len)
{
    size_t nf = 0, start = 0, pos = 0;
#ifdef __SSE2__
    /* Sixteen bytes at a time: compare with the delimiter, the quote and CR. */
    const __m128i vd = _mm_set1_epi8(st->delim), vq = _mm_set1_epi8('"'), vr = _mm_set1_epi8('\r');
    for (; pos < len; pos += 16) {
        __m128i w;
        unsigned keep = 0xFFFF; /* bytes of this line in w */
        if (len - pos >= 16) {
            w = _mm_loadu_si128((const __m128i *)(const void *)(q + pos));
        } else if (st->buf_end - (q + pos) >= 16) {
            /* The line's last bytes: load 16 anyway (the buffer goes on)
             * and ignore what follows the line. */
            w = _mm_loadu_si128((const __m128i *)(const void *)(q + pos));
            keep = (1u << (len - pos)) - 1;
        } else {
            /* Zero padding matches none of the three characters. */
            char tail[16] = {0};
            memcpy(tail, q + pos, len - pos);
            w = _mm_loadu_si128((const __m128i *)(const void *)tail);
        }
        if ((unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(w, vq), _mm_cmpeq_epi8(w, vr))) & keep)
            return false;
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(w, vd)) & keep;
        while (m) {
            size_t at = pos + (size_t)__builtin_ctz(m);
            m &= m - 1;
            if (nf + 1 >= st->fcap && grow_fields(st) != 0)
                return true;
            add_field(st, q, start, at, nf++);
            start = at + 1;
        }
    }
#else
    const uint64_t pd = SWAR_ONES * (unsigned char)st->delim;
    const uint64_t pq = SWAR_ONES * (unsigned char)'"';
    const uint64_t pr = SWAR_ONES * (unsigned char)'\r';
    for (; pos < len; pos += 8) {
        uint64_t w;
        if (len - pos >= 8) {
            memcpy(&w, q + pos, 8);
        } else {
            w = 0;
            memcpy(&w, q + pos, len - pos);
        }
        if (zero_bytes(w ^ pq) | zero_bytes(w ^ pr))
            return false;
        uint64_t m = zero_bytes(w ^ pd);
        while (m) {
            size_t at = pos + (size_t)(__builtin_ctzll(m) >> 3);
            m &= m - 1;
            if (nf + 1 >= st->fcap && grow_fields(st) != 0)
                return true;
            add_field(st, q, start, at, nf++);
            start = at + 1;
        }
    }
#endif
    if (nf + 1 >= st->fcap && grow_fields(st) != 0)
        return true;
    add_field(st, q, start, len, nf++);
    if (nf == 1 && st->flen[0] == 0)
        return true; /* blank line: libcsv reports nothing */
    cvm_csv_record rec;
    rec.field = st->fptr;
    rec.len = st->flen;
    rec.n = nf;
    rec.line = st->line_base + st->rec_line;
    rec.raw = q;
    rec.raw_len = len;
    st->status = st->fn(st->ctx, &rec, st->err);
    return true;
}

/* Parse buf[0..len) (file offset off) line by line; at_eof finishes the parser. */
static region_result parse_buffer(rec_state *st, const char *buf, size_t len, uint64_t off,
                                  bool at_eof)
{
    region_result r = {CVM_OK, false, 0, 0, 0};
    st->buf = buf;
    st->buf_end = buf + len;
    st->buf_off = off;
    const char *q = buf, *e = buf + len;
    uint64_t line = 0;
    while (q < e) {
        const char *nl = memchr(q, '\n', (size_t)(e - q));
        const char *next = nl ? nl + 1 : e;
        const char *le = nl ? nl : e;
        if (le > q && le[-1] == '\r')
            le--;
        st->line_end = le;
        if (st->p.pstate == CVM__CSV_ROW_NOT_BEGUN && st->nf == 0) {
            st->rec_start_off = off + (uint64_t)(q - buf);
            st->rec_line = line;
            size_t ll = (size_t)(le - q);
            st->line_end = le;
            if (st->fast && fast_line(st, q, ll)) {
                if (st->status != CVM_OK)
                    break;
                if (nl)
                    line++;
                q = next;
                continue;
            }
        }
        if (csv_parse(&st->p, q, (size_t)(next - q), on_field, on_record, st) !=
                (size_t)(next - q) && st->status == CVM_OK)
            st->status = CVM_FAIL(st->err, CVM_ENOMEM, "CSV parser: %s",
                                  csv_strerror(csv_error(&st->p)));
        if (st->status != CVM_OK)
            break;
        if (nl)
            line++;
        q = next;
    }
    r.nl = line;
    if (st->status == CVM_OK) {
        if (at_eof) {
            st->line_end = e;
            csv_fini(&st->p, on_field, on_record, st);
        } else if (st->p.pstate != CVM__CSV_ROW_NOT_BEGUN || st->nf != 0) {
            r.open = true;
            r.open_off = st->rec_start_off;
            r.open_line = st->rec_line;
        }
    }
    r.status = st->status;
    return r;
}

static int read_all(const char *path, char **buf, size_t *len, cvm_err *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return CVM_FAIL(err, CVM_EIO, "%s: not a regular file", path);
    }
    char *b = cvm_malloc((size_t)sb.st_size + 1);
    if (b == NULL) {
        close(fd);
        return CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory reading %lld bytes", path,
                        (long long)sb.st_size);
    }
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t k = read(fd, b + got, (size_t)sb.st_size - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            int e = errno;
            close(fd);
            cvm_free(b);
            return CVM_FAIL(err, CVM_EIO, "%s: read error: %s", path,
                            k < 0 ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)k;
    }
    close(fd);
    b[got] = '\0';
    *buf = b;
    *len = got;
    return CVM_OK;
}

static size_t bom_len(const char *b, size_t len)
{
    return (len >= 3 && (unsigned char)b[0] == 0xEF && (unsigned char)b[1] == 0xBB &&
            (unsigned char)b[2] == 0xBF) ? 3 : 0;
}

int cvm_csv_read_file(const char *path, char delim, cvm_csv_record_fn fn, void *ctx,
                      cvm_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    CVM_TRY(read_all(path, &buf, &len, err));
    rec_state st;
    int rc = state_init(&st, delim, fn, ctx, err);
    if (rc == CVM_OK) {
        size_t b = bom_len(buf, len);
        st.line_base = 1; /* parse_buffer counts lines from 0 */
        region_result r = parse_buffer(&st, buf + b, len - b, b, true);
        rc = r.status;
        state_free(&st);
    }
    cvm_free(buf);
    return rc;
}

typedef struct header_ctx {
    char **names;
    size_t n;
    bool done;
    uint64_t end_line;
} header_ctx;

static int header_rec(void *ctx, const cvm_csv_record *rec, cvm_err *err)
{
    header_ctx *h = ctx;
    h->names = cvm_calloc(rec->n, sizeof *h->names);
    if (h->names == NULL)
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory reading a header");
    h->n = rec->n;
    for (size_t i = 0; i < rec->n; i++) {
        h->names[i] = cvm_strndup(rec->field[i], rec->len[i]);
        if (h->names[i] == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory reading a header");
    }
    h->done = true;
    return CVM_ELIMIT; /* stop after the first record */
}

void cvm_csv_free_names(char **names, size_t n)
{
    if (names == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cvm_free(names[i]);
    cvm_free(names);
}

int cvm_csv_read_header(const char *path, char delim, char ***names, size_t *n,
                        uint64_t *data_offset, uint64_t *data_line, cvm_err *err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot open: %s", path, strerror(errno));
    /* The header is read line by line until a record completes, so a quoted
     * header name with a newline works too. */
    size_t cap = 1 << 16, len = 0;
    char *buf = NULL;
    int rc = CVM_OK;
    header_ctx h = {0};
    for (;;) {
        char *nb = cvm_realloc(buf, cap);
        if (nb == NULL) {
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory reading a header");
            break;
        }
        buf = nb;
        ssize_t k = pread(fd, buf + len, cap - len, (off_t)len);
        if (k < 0) {
            rc = CVM_FAIL(err, CVM_EIO, "%s: read error: %s", path, strerror(errno));
            break;
        }
        len += (size_t)k;
        bool eof = len < cap;
        rec_state st;
        rc = state_init(&st, delim, header_rec, &h, err);
        if (rc != CVM_OK)
            break;
        size_t b = bom_len(buf, len);
        const char *q = buf + b, *e = buf + len;
        uint64_t line = 1;
        st.buf = buf;
        st.buf_off = 0;
        while (q < e && !h.done && st.status == CVM_OK) {
            const char *nl = memchr(q, '\n', (size_t)(e - q));
            const char *next = nl ? nl + 1 : e;
            if (!nl && !eof)
                break; /* need more bytes */
            st.line_end = next;
            if (st.p.pstate == CVM__CSV_ROW_NOT_BEGUN && st.nf == 0) {
                st.rec_start_off = (uint64_t)(q - buf);
                st.rec_line = line;
            }
            if (csv_parse(&st.p, q, (size_t)(next - q), on_field, on_record, &st) !=
                    (size_t)(next - q) && st.status == CVM_OK)
                st.status = CVM_FAIL(err, CVM_ENOMEM, "%s: out of memory reading the header", path);
            if (nl)
                line++;
            q = next;
        }
        if (!h.done && eof && st.status == CVM_OK) {
            st.line_end = e;
            csv_fini(&st.p, on_field, on_record, &st);
        }
        int s = st.status;
        state_free(&st);
        if (h.done) {
            if (s != CVM_ELIMIT) {
                rc = s;
                break;
            }
            *names = h.names;
            *n = h.n;
            *data_offset = (uint64_t)(q - buf);
            *data_line = line;
            h.names = NULL;
            rc = CVM_OK;
            break;
        }
        if (s != CVM_OK) {
            rc = s;
            break;
        }
        if (eof) {
            rc = CVM_FAIL(err, CVM_EDATA, "%s:1:1: the file is empty (no header line)", path);
            break;
        }
        cvm_csv_free_names(h.names, h.n);
        h = (header_ctx){0};
        cap *= 2;
    }
    cvm_csv_free_names(h.names, h.n);
    cvm_free(buf);
    close(fd);
    return rc;
}

/* First byte after the first '\n' at or after pos-1 (pos itself when
 * buf[pos-1] is a line end); size when there is none. */
static int find_line_start(int fd, uint64_t pos, uint64_t lo, uint64_t size, uint64_t *out,
                           cvm_err *err, const char *path)
{
    if (pos <= lo) {
        *out = lo;
        return CVM_OK;
    }
    char tmp[65536];
    uint64_t at = pos - 1;
    while (at < size) {
        ssize_t k = pread(fd, tmp, sizeof tmp, (off_t)at);
        if (k < 0)
            return CVM_FAIL(err, CVM_EIO, "%s: read error: %s", path, strerror(errno));
        if (k == 0)
            break;
        char *nl = memchr(tmp, '\n', (size_t)k);
        if (nl) {
            *out = at + (uint64_t)(nl - tmp) + 1;
            return CVM_OK;
        }
        at += (uint64_t)k;
    }
    *out = size;
    return CVM_OK;
}

typedef struct chunk_info {
    uint64_t start, end;
    region_result res;
} chunk_info;

static int parse_region(int fd, const char *path, char delim, uint64_t start, uint64_t end,
                        bool at_eof, const cvm_csv_chunk_ops *ops, void *ctx,
                        char **buf, size_t *cap, region_result *res, cvm_err *err)
{
    size_t len = (size_t)(end - start);
    if (len + 1 > *cap) {
        char *nb = cvm_realloc(*buf, len + 1);
        if (nb == NULL)
            return CVM_FAIL(err, CVM_ENOMEM, "out of memory for a %zu-byte read buffer", len);
        *buf = nb;
        *cap = len + 1;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t k = pread(fd, *buf + got, len - got, (off_t)(start + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return CVM_FAIL(err, CVM_EIO, "%s: read error at byte %llu: %s", path,
                            (unsigned long long)(start + got),
                            k < 0 ? strerror(errno) : "file shrank while reading");
        got += (size_t)k;
    }
    rec_state st;
    CVM_TRY(state_init(&st, delim, ops->record, ctx, err));
    /* The word-at-a-time splitter assumes little-endian byte order. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    st.fast = false;
#else
    st.fast = !ops->libcsv_only;
#endif
    *res = parse_buffer(&st, *buf, len, start, at_eof);
    state_free(&st);
    if (res->status == CVM_OK && ops->end)
        res->status = ops->end(ctx, err);
    return res->status;
}

int cvm_csv_read_chunks(const char *path, char delim, uint64_t offset, uint64_t first_line,
                        size_t chunk_bytes, int threads, const cvm_csv_chunk_ops *ops,
                        void *user, void (*progress)(void *, uint64_t, uint64_t),
                        cvm_csv_chunks *out, cvm_err *err)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return CVM_FAIL(err, CVM_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        close(fd);
        return CVM_FAIL(err, CVM_EIO, "%s: cannot stat: %s", path, strerror(errno));
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (offset > size)
        offset = size;
    if (offset == 0) {
        /* A byte-order mark is not data (as in cvm_csv_read_file). */
        char bom[3];
        if (pread(fd, bom, 3, 0) == 3 && bom_len(bom, 3) == 3)
            offset = 3;
    }
    if (chunk_bytes < 4096)
        chunk_bytes = 4096;
    uint64_t data = size - offset;
    size_t n = data == 0 ? 1 : (size_t)((data + chunk_bytes - 1) / chunk_bytes);
    chunk_info *ci = cvm_calloc(n, sizeof *ci);
    out->ctx = cvm_calloc(n, sizeof *out->ctx);
    out->first_line = cvm_calloc(n, sizeof *out->first_line);
    if (!ci || !out->ctx || !out->first_line) {
        cvm_free(ci);
        cvm_csv_chunks_free(out);
        close(fd);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory planning %zu chunks", n);
    }
    out->n = n;
    out->bytes = data;
    if (threads <= 0) {
#ifdef _OPENMP
        threads = omp_get_max_threads();
#else
        threads = 1;
#endif
    }
    int status = CVM_OK;
    cvm_err first_err = {0};
    size_t first_bad = n;
    uint64_t done_bytes = 0;

#pragma omp parallel num_threads(threads) default(none)                              \
    shared(ci, n, fd, path, delim, offset, chunk_bytes, size, ops, user, out, status,  \
           first_err, first_bad, done_bytes, progress)
    {
        char *buf = NULL;
        size_t cap = 0;
        cvm_err terr = {0};
#pragma omp for schedule(dynamic, 1)
        for (size_t k = 0; k < n; k++) {
            int rc = CVM_OK;
            int bad;
#pragma omp atomic read
            bad = status;
            if (bad != CVM_OK)
                continue;
            uint64_t s = 0, e = 0;
            rc = find_line_start(fd, offset + k * chunk_bytes, offset, size, &s, &terr, path);
            if (rc == CVM_OK)
                rc = k + 1 < n ? find_line_start(fd, offset + (k + 1) * chunk_bytes, offset,
                                                 size, &e, &terr, path)
                               : (e = size, CVM_OK);
            ci[k].start = s;
            ci[k].end = e;
            if (rc == CVM_OK) {
                out->ctx[k] = ops->begin(user, k);
                if (out->ctx[k] == NULL)
                    rc = CVM_FAIL(&terr, CVM_ENOMEM, "out of memory starting chunk %zu", k);
            }
            if (rc == CVM_OK && e > s)
                rc = parse_region(fd, path, delim, s, e, e >= size, ops, out->ctx[k], &buf,
                                  &cap, &ci[k].res, &terr);
            if (rc != CVM_OK) {
#pragma omp critical(cvm_csv_err)
                {
                    /* Keep the error of the earliest chunk: what a serial read reports. */
                    if (k < first_bad) {
                        first_bad = k;
                        first_err = terr;
                        status = rc;
                    }
                }
            }
#pragma omp atomic
            done_bytes += e > s ? e - s : 0;
#ifdef _OPENMP
            if (progress && omp_get_thread_num() == 0)
#else
            if (progress)
#endif
            {
                uint64_t d;
#pragma omp atomic read
                d = done_bytes;
                progress(user, d, size - offset);
            }
        }
        cvm_free(buf);
    }

    /* Repair boundaries that fell inside a quoted field: the previous chunk
     * ends before its unfinished record, and this chunk is re-parsed from
     * that record's first byte with a fresh parser (equivalent, since the
     * parser was between records there). Serial and rare. */
    char *buf = NULL;
    size_t cap = 0;
    for (size_t k = 1; k < n && status == CVM_OK; k++) {
        if (!ci[k - 1].res.open)
            continue;
        out->repaired++;
        uint64_t from = ci[k - 1].res.open_off;
        ci[k - 1].end = from;
        ci[k - 1].res.nl = ci[k - 1].res.open_line;
        ci[k - 1].res.open = false;
        ops->discard(user, out->ctx[k]);
        out->ctx[k] = ops->begin(user, k);
        if (out->ctx[k] == NULL) {
            status = CVM_FAIL(&first_err, CVM_ENOMEM, "out of memory re-reading chunk %zu", k);
            break;
        }
        ci[k].start = from;
        memset(&ci[k].res, 0, sizeof ci[k].res);
        if (ci[k].end > from)
            status = parse_region(fd, path, delim, from, ci[k].end, ci[k].end >= size, ops,
                                  out->ctx[k], &buf, &cap, &ci[k].res, &first_err);
    }
    cvm_free(buf);
    close(fd);

    uint64_t line = first_line;
    for (size_t k = 0; k < n; k++) {
        out->first_line[k] = line;
        line += ci[k].res.nl;
    }
    cvm_free(ci);
    if (status != CVM_OK) {
        for (size_t k = 0; k < n; k++)
            if (out->ctx[k])
                ops->discard(user, out->ctx[k]);
        cvm_csv_chunks_free(out);
        if (err)
            *err = first_err;
        return status;
    }
    return CVM_OK;
}

void cvm_csv_chunks_free(cvm_csv_chunks *c)
{
    cvm_free(c->ctx);
    cvm_free(c->first_line);
    c->ctx = NULL;
    c->first_line = NULL;
    c->n = 0;
}
