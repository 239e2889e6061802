/*
 * config.c - typed configuration registry filled from YAML files and --set.
 *
 * Design notes (the why):
 * - Loading is transactional. A file's values are parsed into a staging array
 *   and swapped into the config only when the whole file is valid, so a failed
 *   load (syntax, validation or ENOMEM) leaves the previous values untouched
 *   and the caller can report the error without worrying about half-applied
 *   files. The swap itself allocates nothing, so it cannot fail.
 * - YAML is read with libyaml's document API. Its loader registers an anchor
 *   before loading the node's children, so aliases can form cycles; the walk
 *   below only recurses into mappings whose dotted name is a schema section,
 *   and every step makes the name longer, so recursion depth is bounded by the
 *   schema, never by the input.
 * - Scalars are never resolved with YAML 1.1 type rules: each key parses the
 *   text by its own type ("5" quoted is still 5 for an INT key). Only plain
 *   ~, null, Null, NULL and the empty plain scalar are null.
 * - All text is valid UTF-8 without NUL bytes (libyaml guarantees the former
 *   for files, --set values are checked), so every value can be written back
 *   as YAML and as JSON.
 */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <yaml.h>

#include "alloc.h"

typedef struct {
    char *name;
    double v;
} cfg_ent;

typedef struct {
    char *col;
    char *val;
} cfg_cell;

typedef struct {
    cfg_cell *cells;
    size_t n;
    int line;
} cfg_row;

typedef struct {
    bool set; /* false only for a NULL-default key that holds no value */
    cvm_cfg_origin origin;
    bool b;
    long i;
    double d;
    char *s;
    char **items;
    size_t n_items;
    cfg_ent *ents;
    size_t n_ents;
    cfg_row *rows;
    size_t n_rows;
} cfg_val;

struct cvm_config {
    const cvm_cfg_key *schema;
    size_t n;
    cfg_val *vals;
    char *path;
    char *dir;
};

/* Where values come from, for error messages. */
typedef struct {
    const char *pre;  /* "" or "--set " */
    const char *name; /* file name, or the whole assignment for --set */
    bool marks;       /* positions come from YAML marks */
    bool lines;       /* record TABLE row lines (files only) */
    cvm_err *err;
    yaml_document_t *doc;
} cfg_cx;

/* Staged value of one key while a file is loaded. */
typedef struct {
    cfg_val v;
    bool touched;
    yaml_mark_t first;
} cfg_pend;

#define CFG_SHOW_MAX 60
typedef struct {
    char s[CFG_SHOW_MAX + 16];
} cfg_shown;

/* ------------------------------------------------------------------ */
/* Errors                                                              */

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int cfg_fail(const cfg_cx *cx, const yaml_mark_t *m, int src_line,
                    const char *fmt, ...)
{
    char msg[CVM_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cx->marks && m != NULL)
        return cvm_err_set(cx->err, CVM_ECONFIG, __FILE__, src_line,
                           "%s%s:%zu:%zu: %s", cx->pre, cx->name, m->line + 1,
                           m->column + 1, msg);
    return cvm_err_set(cx->err, CVM_ECONFIG, __FILE__, src_line, "%s%s: %s",
                       cx->pre, cx->name, msg);
}
#define CFG_FAIL(cx, m, ...) cfg_fail((cx), (m), __LINE__, __VA_ARGS__)

static int cfg_nomem(const cfg_cx *cx)
{
    return CVM_FAIL(cx->err, CVM_ENOMEM, "out of memory reading %s%s", cx->pre,
                    cx->name);
}

/* Quoted, shortened, single-line rendering of user text for messages. */
static cfg_shown show_text(const char *p, size_t len)
{
    cfg_shown r;
    size_t n = len, o = 0;
    if (len > CFG_SHOW_MAX) {
        n = CFG_SHOW_MAX - 3;
        while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
            n--; /* do not cut a UTF-8 sequence */
    }
    r.s[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        r.s[o++] = (ch < 0x20 || ch == 0x7F) ? '?' : (char)ch;
    }
    if (n < len) {
        memcpy(r.s + o, "...", 3);
        o += 3;
    }
    r.s[o++] = '\'';
    r.s[o] = '\0';
    return r;
}

static bool null_word(const char *s, size_t len)
{
    return len == 0 || (len == 1 && s[0] == '~') ||
           (len == 4 && (memcmp(s, "null", 4) == 0 || memcmp(s, "Null", 4) == 0 ||
                         memcmp(s, "NULL", 4) == 0));
}

static bool node_is_null(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE &&
           n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           null_word((const char *)n->data.scalar.value, n->data.scalar.length);
}

static cfg_shown show_node(const yaml_node_t *n)
{
    cfg_shown r;
    const char *what = "nothing";
    if (n != NULL && n->type == YAML_SCALAR_NODE) {
        if (!node_is_null(n))
            return show_text((const char *)n->data.scalar.value,
                             n->data.scalar.length);
        what = "null";
    } else if (n != NULL && n->type == YAML_SEQUENCE_NODE) {
        what = "a sequence";
    } else if (n != NULL && n->type == YAML_MAPPING_NODE) {
        what = "a mapping";
    }
    snprintf(r.s, sizeof r.s, "%s", what);
    return r;
}

static const char *type_phrase(cvm_cfg_type t)
{
    switch (t) {
    case CVM_CFG_BOOL: return "a boolean (true/false)";
    case CVM_CFG_INT: return "an integer";
    case CVM_CFG_DOUBLE: return "a number";
    case CVM_CFG_STRING: return "a string";
    case CVM_CFG_ENUM: return "one of its choices";
    case CVM_CFG_DATE: return "a date YYYY-MM-DD";
    case CVM_CFG_LIST: return "a list";
    case CVM_CFG_MAP: return "a mapping of names to numbers";
    case CVM_CFG_TABLE: return "a sequence of mappings";
    }
    return "a value";
}

static const char *type_word(cvm_cfg_type t)
{
    switch (t) {
    case CVM_CFG_BOOL: return "bool";
    case CVM_CFG_INT: return "int";
    case CVM_CFG_DOUBLE: return "double";
    case CVM_CFG_STRING: return "string";
    case CVM_CFG_ENUM: return "enum";
    case CVM_CFG_DATE: return "date";
    case CVM_CFG_LIST: return "list";
    case CVM_CFG_MAP: return "map";
    case CVM_CFG_TABLE: return "table";
    }
    return "?";
}

static int expect_fail(const cfg_cx *cx, const cvm_cfg_key *k, const yaml_mark_t *m,
                       const char *got)
{
    if (k->type == CVM_CFG_ENUM)
        return CFG_FAIL(cx, m, "'%s' must be one of %s, got %s", k->name,
                        k->choices, got);
    return CFG_FAIL(cx, m, "'%s' expects %s, got %s", k->name, type_phrase(k->type),
                    got);
}

/* Integral bounds print without exponent ("[2, 10]"), others with %.15g. */
static const char *fmt_num(char *buf, size_t size, double d)
{
    if (d == floor(d) && fabs(d) < 1e15)
        snprintf(buf, size, "%.0f", d);
    else
        snprintf(buf, size, "%.15g", d);
    return buf;
}

static bool in_range(const cvm_cfg_key *k, double v)
{
    return k->min > k->max || (v >= k->min && v <= k->max);
}

static int range_fail(const cfg_cx *cx, const yaml_mark_t *m, const char *name,
                      const char *shown, const cvm_cfg_key *k)
{
    char lo[64], hi[64];
    return CFG_FAIL(cx, m, "'%s' = %s is out of range [%s, %s]", name, shown,
                    fmt_num(lo, sizeof lo, k->min), fmt_num(hi, sizeof hi, k->max));
}

/* ------------------------------------------------------------------ */
/* Text checks                                                         */

static bool utf8_ok(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (len - i <= n)
            return false;
        for (size_t j = 1; j <= n; j++) {
            if ((p[i + j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool parse_long(const char *s, long *out)
{
    if (!((s[0] >= '0' && s[0] <= '9') || s[0] == '+' || s[0] == '-'))
        return false; /* strtol would skip leading blanks */
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    /* Restricting the alphabet keeps out strtod's hex floats, inf and nan. */
    if (s[0] == '\0' || s[strspn(s, "0123456789+-.eE")] != '\0')
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool date_ok(const char *s, size_t len)
{
    if (len == 0)
        return true;
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (size_t i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || m < 1 || m > 12 || d < 1)
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap ? 1 : 0);
}

/* Is s (len bytes) one of the '|'-separated choices? */
static bool choice_ok(const char *choices, const char *s, size_t len)
{
    if (choices == NULL)
        return false;
    const char *p = choices;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && memcmp(p, s, len) == 0)
            return true;
        if (bar == NULL)
            return false;
        p = bar + 1;
    }
}

/* ------------------------------------------------------------------ */
/* Suggestions                                                         */

#define CFG_DIST_MAX 256

/* Optimal string alignment distance (edits plus adjacent swaps); SIZE_MAX
 * when either string is too long to bother, which keeps this allocation-free. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    if (la > CFG_DIST_MAX || lb > CFG_DIST_MAX)
        return SIZE_MAX;
    size_t r0[CFG_DIST_MAX + 1], r1[CFG_DIST_MAX + 1], r2[CFG_DIST_MAX + 1];
    size_t *pp = r0, *p = r1, *c = r2;
    for (size_t j = 0; j <= lb; j++)
        p[j] = j;
    for (size_t i = 1; i <= la; i++) {
        c[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = p[j] + 1;
            if (c[j - 1] + 1 < v)
                v = c[j - 1] + 1;
            if (p[j - 1] + cost < v)
                v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            c[j] = v;
        }
        size_t *t = pp;
        pp = p;
        p = c;
        c = t;
    }
    return p[lb];
}

typedef struct {
    const char *p;
    size_t len;
    size_t dist;
} cfg_guess;

static void guess_try(cfg_guess *g, const char *name, size_t nlen, const char *cand,
                      size_t clen)
{
    /* The distance is at least the length difference and never accepted
     * above 3, so most candidates are ruled out without the O(n*m) pass. */
    if ((nlen > clen ? nlen - clen : clen - nlen) > 3)
        return;
    size_t d = edit_distance(name, nlen, cand, clen);
    if (d < g->dist) {
        g->dist = d;
        g->p = cand;
        g->len = clen;
    }
}

static size_t guess_limit(size_t nlen)
{
    size_t lim = nlen / 3;
    return lim < 1 ? 1 : lim > 3 ? 3 : lim;
}

/* Closest schema key (and, with sections, section name) to name. */
static cfg_guess guess_key(const cvm_cfg_key *schema, size_t n, const char *name,
                           bool sections)
{
    cfg_guess g = {NULL, 0, SIZE_MAX};
    size_t nlen = strlen(name);
    for (size_t i = 0; i < n; i++) {
        const char *k = schema[i].name;
        if (sections)
            for (const char *dot = strchr(k, '.'); dot; dot = strchr(dot + 1, '.'))
                guess_try(&g, name, nlen, k, (size_t)(dot - k));
        guess_try(&g, name, nlen, k, strlen(k));
    }
    if (g.dist == 0 || g.dist > guess_limit(nlen))
        g.p = NULL;
    return g;
}

static cfg_guess guess_choice(const char *choices, const char *name, size_t nlen)
{
    cfg_guess g = {NULL, 0, SIZE_MAX};
    for (const char *p = choices; p != NULL;) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        guess_try(&g, name, nlen, p, n);
        p = bar ? bar + 1 : NULL;
    }
    if (g.dist == 0 || g.dist > guess_limit(nlen))
        g.p = NULL;
    return g;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */

static void row_clear(cfg_row *r)
{
    for (size_t j = 0; j < r->n; j++) {
        cvm_free(r->cells[j].col);
        cvm_free(r->cells[j].val);
    }
    cvm_free(r->cells);
}

static void val_clear(cfg_val *v)
{
    cvm_free(v->s);
    for (size_t i = 0; i < v->n_items; i++)
        cvm_free(v->items[i]);
    cvm_free(v->items);
    for (size_t i = 0; i < v->n_ents; i++)
        cvm_free(v->ents[i].name);
    cvm_free(v->ents);
    for (size_t i = 0; i < v->n_rows; i++)
        row_clear(&v->rows[i]);
    cvm_free(v->rows);
    memset(v, 0, sizeof *v);
}

static ptrdiff_t find_key(const cvm_cfg_key *schema, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(schema[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

/* Is name (len bytes) a section, i.e. a proper dotted prefix of some key? */
static bool is_section(const cvm_cfg_key *schema, size_t n, const char *name,
                       size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strncmp(schema[i].name, name, len) == 0 && schema[i].name[len] == '.')
            return true;
    return false;
}

static int apply_null(const cfg_cx *cx, const cvm_cfg_key *k, const yaml_mark_t *m,
                      cfg_val *out)
{
    if (k->def != NULL)
        return expect_fail(cx, k, m, "null");
    out->set = false;
    return CVM_OK;
}

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

/* "a, b ,c" -> [a, b, c]; empty items are dropped so "" is the empty list. */
static int split_list(const cfg_cx *cx, const char *s, size_t len, cfg_val *out)
{
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += s[i] == ',';
    out->set = true;
    const char *end = s + len;
    for (const char *p = s; p <= end;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *q = comma ? comma : end;
        const char *a = p, *b = q;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (b > a) {
            if (out->items == NULL) {
                out->items = cvm_calloc(cap, sizeof *out->items);
                if (out->items == NULL)
                    return cfg_nomem(cx);
            }
            char *item = cvm_strndup(a, (size_t)(b - a));
            if (item == NULL)
                return cfg_nomem(cx);
            out->items[out->n_items++] = item;
        }
        p = q + 1;
    }
    return CVM_OK;
}

/* A non-null scalar for key k. */
static int apply_scalar(const cfg_cx *cx, const cvm_cfg_key *k, const char *s,
                        size_t len, const yaml_mark_t *m, cfg_val *out)
{
    if (memchr(s, '\0', len) != NULL)
        return CFG_FAIL(cx, m, "'%s' contains a NUL character", k->name);
    switch (k->type) {
    case CVM_CFG_BOOL:
        if (!parse_bool(s, &out->b))
            return expect_fail(cx, k, m, show_text(s, len).s);
        break;
    case CVM_CFG_INT:
        if (!parse_long(s, &out->i))
            return expect_fail(cx, k, m, show_text(s, len).s);
        if (!in_range(k, (double)out->i))
            return range_fail(cx, m, k->name, s, k);
        break;
    case CVM_CFG_DOUBLE:
        if (!parse_double(s, &out->d))
            return expect_fail(cx, k, m, show_text(s, len).s);
        if (!in_range(k, out->d))
            return range_fail(cx, m, k->name, s, k);
        break;
    case CVM_CFG_ENUM:
        if (!choice_ok(k->choices, s, len))
            return expect_fail(cx, k, m, show_text(s, len).s);
        /* fall through */
    case CVM_CFG_STRING:
    case CVM_CFG_DATE:
        if (k->type == CVM_CFG_DATE && !date_ok(s, len))
            return expect_fail(cx, k, m, show_text(s, len).s);
        out->s = cvm_strndup(s, len);
        if (out->s == NULL)
            return cfg_nomem(cx);
        break;
    case CVM_CFG_LIST:
        return split_list(cx, s, len, out);
    case CVM_CFG_MAP:
    case CVM_CFG_TABLE:
        /* "" is the empty map/table, like "" is the empty list. */
        if (len != 0)
            return expect_fail(cx, k, m, show_text(s, len).s);
        break;
    }
    out->set = true;
    return CVM_OK;
}

static yaml_node_t *cx_node(const cfg_cx *cx, int id)
{
    return yaml_document_get_node(cx->doc, id);
}

static const char *scalar_text(const yaml_node_t *n, size_t *len)
{
    *len = n->data.scalar.length;
    return (const char *)n->data.scalar.value;
}

/* Index of an earlier pair of map whose key text equals pair i's, or -1. */
static ptrdiff_t earlier_key(const cfg_cx *cx, const yaml_node_t *map, size_t i)
{
    yaml_node_pair_t *pairs = map->data.mapping.pairs.start;
    yaml_node_t *ki = cx_node(cx, pairs[i].key);
    if (ki == NULL || ki->type != YAML_SCALAR_NODE)
        return -1;
    for (size_t j = 0; j < i; j++) {
        yaml_node_t *kj = cx_node(cx, pairs[j].key);
        if (kj != NULL && kj->type == YAML_SCALAR_NODE &&
            kj->data.scalar.length == ki->data.scalar.length &&
            memcmp(kj->data.scalar.value, ki->data.scalar.value,
                   ki->data.scalar.length) == 0)
            return (ptrdiff_t)j;
    }
    return -1;
}

static int apply_node(cfg_cx *cx, const cvm_cfg_key *k, yaml_node_t *node,
                      cfg_val *out);

static int seq_list(cfg_cx *cx, const cvm_cfg_key *k, yaml_node_t *node, cfg_val *out)
{
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    out->set = true;
    if (n == 0)
        return CVM_OK;
    out->items = cvm_calloc(n, sizeof *out->items);
    if (out->items == NULL)
        return cfg_nomem(cx);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *it = cx_node(cx, node->data.sequence.items.start[i]);
        if (it == NULL || it->type != YAML_SCALAR_NODE || node_is_null(it))
            return CFG_FAIL(cx, it ? &it->start_mark : &node->start_mark,
                            "'%s' item %zu expects a scalar, got %s", k->name, i + 1,
                            show_node(it).s);
        size_t len;
        const char *s = scalar_text(it, &len);
        if (memchr(s, '\0', len) != NULL)
            return CFG_FAIL(cx, &it->start_mark, "'%s' contains a NUL character",
                            k->name);
        out->items[i] = cvm_strndup(s, len);
        if (out->items[i] == NULL)
            return cfg_nomem(cx);
        out->n_items++;
    }
    return CVM_OK;
}

static int map_entries(cfg_cx *cx, const cvm_cfg_key *k, yaml_node_t *node,
                       cfg_val *out)
{
    size_t n = (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    out->set = true;
    if (n == 0)
        return CVM_OK;
    out->ents = cvm_calloc(n, sizeof *out->ents);
    if (out->ents == NULL)
        return cfg_nomem(cx);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *pair = &node->data.mapping.pairs.start[i];
        yaml_node_t *kn = cx_node(cx, pair->key), *vn = cx_node(cx, pair->value);
        if (kn == NULL || vn == NULL)
            return CFG_FAIL(cx, &node->start_mark, "'%s' has a broken entry", k->name);
        size_t len;
        const char *s = kn->type == YAML_SCALAR_NODE ? scalar_text(kn, &len) : NULL;
        if (s == NULL || node_is_null(kn) || memchr(s, '\0', len) != NULL)
            return CFG_FAIL(cx, &kn->start_mark,
                            "'%s' entry names must be non-empty scalars, got %s",
                            k->name, show_node(kn).s);
        ptrdiff_t j = earlier_key(cx, node, i);
        if (j >= 0)
            return CFG_FAIL(cx, &kn->start_mark,
                            "duplicate key '%s.%s' (first at line %zu)", k->name, s,
                            cx_node(cx, node->data.mapping.pairs.start[j].key)
                                    ->start_mark.line + 1);
        out->ents[i].name = cvm_strndup(s, len);
        if (out->ents[i].name == NULL)
            return cfg_nomem(cx);
        out->n_ents++;
        /* The entry is parsed as a DOUBLE key of its own so that messages
         * name it ("'cost.per_type.hospital' = -5 is out of range ..."). */
        size_t full_len = strlen(k->name) + 1 + len + 1;
        char *full = cvm_malloc(full_len);
        if (full == NULL)
            return cfg_nomem(cx);
        snprintf(full, full_len, "%s.%s", k->name, s);
        cvm_cfg_key ek = {full, CVM_CFG_DOUBLE, "0", k->min, k->max, NULL, NULL};
        cfg_val tmp = {0};
        int rc = apply_node(cx, &ek, vn, &tmp);
        cvm_free(full);
        out->ents[i].v = tmp.d;
        val_clear(&tmp);
        if (rc != CVM_OK)
            return rc;
    }
    return CVM_OK;
}

static int table_row(cfg_cx *cx, const cvm_cfg_key *k, size_t r, yaml_node_t *rn,
                     cfg_row *row)
{
    size_t n = (size_t)(rn->data.mapping.pairs.top - rn->data.mapping.pairs.start);
    row->line = cx->lines ? (int)rn->start_mark.line + 1 : 0;
    if (n == 0)
        return CVM_OK;
    row->cells = cvm_calloc(n, sizeof *row->cells);
    if (row->cells == NULL)
        return cfg_nomem(cx);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *pair = &rn->data.mapping.pairs.start[i];
        yaml_node_t *kn = cx_node(cx, pair->key), *vn = cx_node(cx, pair->value);
        if (kn == NULL || vn == NULL)
            return CFG_FAIL(cx, &rn->start_mark, "'%s' row %zu is broken", k->name, r);
        size_t len;
        const char *s = kn->type == YAML_SCALAR_NODE ? scalar_text(kn, &len) : NULL;
        if (s == NULL || node_is_null(kn) || memchr(s, '\0', len) != NULL)
            return CFG_FAIL(cx, &kn->start_mark,
                            "'%s' row %zu: column names must be scalars, got %s",
                            k->name, r, show_node(kn).s);
        if (k->choices != NULL && !choice_ok(k->choices, s, len)) {
            cfg_guess g = guess_choice(k->choices, s, len);
            if (g.p != NULL)
                return CFG_FAIL(cx, &kn->start_mark,
                                "'%s' row %zu has unknown column %s (did you mean "
                                "'%.*s'?)",
                                k->name, r, show_text(s, len).s, (int)g.len, g.p);
            return CFG_FAIL(cx, &kn->start_mark,
                            "'%s' row %zu has unknown column %s (allowed: %s)", k->name,
                            r, show_text(s, len).s, k->choices);
        }
        if (earlier_key(cx, rn, i) >= 0)
            return CFG_FAIL(cx, &kn->start_mark, "'%s' row %zu has duplicate column %s",
                            k->name, r, show_text(s, len).s);
        if (node_is_null(vn))
            continue; /* a null cell is an absent cell */
        if (vn->type != YAML_SCALAR_NODE)
            return CFG_FAIL(cx, &vn->start_mark,
                            "'%s' row %zu column %s expects a scalar, got %s", k->name,
                            r, show_text(s, len).s, show_node(vn).s);
        size_t vlen;
        const char *v = scalar_text(vn, &vlen);
        if (memchr(v, '\0', vlen) != NULL)
            return CFG_FAIL(cx, &vn->start_mark, "'%s' contains a NUL character",
                            k->name);
        cfg_cell *cell = &row->cells[row->n];
        cell->col = cvm_strndup(s, len);
        cell->val = cell->col ? cvm_strndup(v, vlen) : NULL;
        if (cell->val == NULL) {
            cvm_free(cell->col);
            cell->col = NULL;
            return cfg_nomem(cx);
        }
        row->n++;
    }
    return CVM_OK;
}

static int seq_table(cfg_cx *cx, const cvm_cfg_key *k, yaml_node_t *node, cfg_val *out)
{
    size_t n = (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
    out->set = true;
    if (n == 0)
        return CVM_OK;
    out->rows = cvm_calloc(n, sizeof *out->rows);
    if (out->rows == NULL)
        return cfg_nomem(cx);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *rn = cx_node(cx, node->data.sequence.items.start[i]);
        if (rn == NULL || rn->type != YAML_MAPPING_NODE)
            return CFG_FAIL(cx, rn ? &rn->start_mark : &node->start_mark,
                            "'%s' row %zu expects a mapping, got %s", k->name, i + 1,
                            show_node(rn).s);
        out->n_rows++; /* counted first so val_clear frees a half-built row */
        int rc = table_row(cx, k, i + 1, rn, &out->rows[i]);
        if (rc != CVM_OK)
            return rc;
    }
    return CVM_OK;
}

static int apply_node(cfg_cx *cx, const cvm_cfg_key *k, yaml_node_t *node,
                      cfg_val *out)
{
    switch (node->type) {
    case YAML_SCALAR_NODE:
        if (node_is_null(node))
            return apply_null(cx, k, &node->start_mark, out);
        return apply_scalar(cx, k, (const char *)node->data.scalar.value,
                            node->data.scalar.length, &node->start_mark, out);
    case YAML_SEQUENCE_NODE:
        if (k->type == CVM_CFG_LIST)
            return seq_list(cx, k, node, out);
        if (k->type == CVM_CFG_TABLE)
            return seq_table(cx, k, node, out);
        break;
    case YAML_MAPPING_NODE:
        if (k->type == CVM_CFG_MAP)
            return map_entries(cx, k, node, out);
        break;
    default:
        break;
    }
    return expect_fail(cx, k, &node->start_mark, show_node(node).s);
}

/* ------------------------------------------------------------------ */
/* YAML documents                                                      */

/* libyaml reports reader errors (bad UTF-8, control characters) as a byte
 * offset only; turn it into line:column like the other errors. */
static yaml_mark_t offset_mark(const char *buf, size_t len, size_t off)
{
    yaml_mark_t m = {off, 0, 0};
    if (off > len)
        off = len;
    for (size_t i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n' || (ch == '\r' && (i + 1 >= len || buf[i + 1] != '\n'))) {
            m.line++;
            m.column = 0;
        } else if ((ch & 0xC0) != 0x80 && ch != '\r') {
            m.column++;
        }
    }
    return m;
}

static int parser_fail(const cfg_cx *cx, const yaml_parser_t *p, const char *buf,
                       size_t len)
{
    if (p->error == YAML_MEMORY_ERROR)
        return cfg_nomem(cx);
    yaml_mark_t m = p->problem_mark;
    char extra[48] = "";
    if (p->error == YAML_READER_ERROR) {
        m = offset_mark(buf, len, p->problem_offset);
        if (p->problem_value != -1)
            snprintf(extra, sizeof extra, " (#%02X)", (unsigned)p->problem_value);
    }
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->context != NULL)
        return CFG_FAIL(cx, &m, "YAML syntax error: %s%s (%s at %zu:%zu)", problem,
                        extra, p->context, p->context_mark.line + 1,
                        p->context_mark.column + 1);
    return CFG_FAIL(cx, &m, "YAML syntax error: %s%s", problem, extra);
}

/* Parse buf as exactly one YAML document; on success the caller owns doc. */
static int load_single(const cfg_cx *cx, const char *buf, size_t len,
                       yaml_document_t *doc)
{
    yaml_parser_t p;
    if (buf == NULL)
        buf = "", len = 0;
    if (!yaml_parser_initialize(&p))
        return cfg_nomem(cx);
    yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&p, doc)) {
        int rc = parser_fail(cx, &p, buf, len);
        yaml_parser_delete(&p);
        return rc;
    }
    int rc = CVM_OK;
    yaml_document_t more;
    if (!yaml_parser_load(&p, &more)) {
        rc = parser_fail(cx, &p, buf, len);
    } else {
        if (yaml_document_get_root_node(&more) != NULL)
            rc = CFG_FAIL(cx, &more.start_mark, "only one YAML document is allowed");
        yaml_document_delete(&more);
    }
    yaml_parser_delete(&p);
    if (rc != CVM_OK)
        yaml_document_delete(doc);
    return rc;
}

static int walk_mapping(cfg_cx *cx, const cvm_config *c, cfg_pend *pend,
                        yaml_node_t *map, const char *prefix, size_t plen)
{
    size_t n = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        yaml_node_t *kn = cx_node(cx, pair->key), *vn = cx_node(cx, pair->value);
        if (kn == NULL || vn == NULL)
            return CFG_FAIL(cx, &map->start_mark, "broken mapping");
        if (kn->type != YAML_SCALAR_NODE || node_is_null(kn))
            return CFG_FAIL(cx, &kn->start_mark, "keys must be names, got %s",
                            show_node(kn).s);
        size_t klen;
        const char *ks = scalar_text(kn, &klen);
        char *full = cvm_malloc(plen + klen + 2);
        if (full == NULL)
            return cfg_nomem(cx);
        memcpy(full, prefix, plen);
        memcpy(full + plen, ks, klen);
        full[plen + klen] = '\0';
        size_t flen = plen + klen;
        int rc = CVM_OK;
        ptrdiff_t dup = earlier_key(cx, map, i);
        ptrdiff_t idx = memchr(ks, '\0', klen) ? -1 : find_key(c->schema, c->n, full);
        if (dup >= 0) {
            rc = CFG_FAIL(cx, &kn->start_mark, "duplicate key %s (first at line %zu)",
                          show_text(full, flen).s,
                          cx_node(cx, map->data.mapping.pairs.start[dup].key)
                                  ->start_mark.line + 1);
        } else if (idx >= 0) {
            cfg_pend *pe = &pend[idx];
            if (pe->touched) {
                rc = CFG_FAIL(cx, &kn->start_mark,
                              "duplicate key '%s' (first at line %zu)", full,
                              pe->first.line + 1);
            } else {
                cfg_val v = {0};
                rc = apply_node(cx, &c->schema[idx], vn, &v);
                if (rc == CVM_OK) {
                    v.origin = CVM_CFG_FROM_FILE;
                    pe->v = v;
                    pe->touched = true;
                    pe->first = kn->start_mark;
                } else {
                    val_clear(&v);
                }
            }
        } else if (memchr(ks, '\0', klen) == NULL &&
                   is_section(c->schema, c->n, full, flen)) {
            if (vn->type == YAML_MAPPING_NODE) {
                full[flen] = '.';
                rc = walk_mapping(cx, c, pend, vn, full, flen + 1);
            } else if (!node_is_null(vn)) { /* "rfm:" alone is an empty section */
                rc = CFG_FAIL(cx, &vn->start_mark,
                              "'%s' is a section and expects a mapping, got %s", full,
                              show_node(vn).s);
            }
        } else {
            const char *what = vn->type == YAML_MAPPING_NODE ? "section" : "key";
            cfg_guess g = guess_key(c->schema, c->n, full, true);
            if (g.p != NULL)
                rc = CFG_FAIL(cx, &kn->start_mark, "unknown %s %s (did you mean '%.*s'?)",
                              what, show_text(full, flen).s, (int)g.len, g.p);
            else
                rc = CFG_FAIL(cx, &kn->start_mark, "unknown %s %s", what,
                              show_text(full, flen).s);
        }
        cvm_free(full);
        if (rc != CVM_OK)
            return rc;
    }
    return CVM_OK;
}

static int load_into(cvm_config *c, cfg_cx *cx, const char *buf, size_t len)
{
    yaml_document_t doc;
    int rc = load_single(cx, buf, len, &doc);
    if (rc != CVM_OK)
        return rc;
    cx->doc = &doc;
    cfg_pend *pend = cvm_calloc(c->n, sizeof *pend);
    if (pend == NULL) {
        yaml_document_delete(&doc);
        return cfg_nomem(cx);
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root != NULL && root->type == YAML_MAPPING_NODE)
        rc = walk_mapping(cx, c, pend, root, "", 0);
    else if (root != NULL && !node_is_null(root))
        rc = CFG_FAIL(cx, &root->start_mark,
                      "the top level must be a mapping of sections, got %s",
                      show_node(root).s);
    for (size_t i = 0; i < c->n; i++) {
        if (!pend[i].touched)
            continue;
        if (rc == CVM_OK) {
            val_clear(&c->vals[i]);
            c->vals[i] = pend[i].v;
        } else {
            val_clear(&pend[i].v);
        }
    }
    cvm_free(pend);
    yaml_document_delete(&doc);
    cx->doc = NULL;
    return rc;
}

/* A value given as text (--set, schema defaults): quoted scalars and flow
 * collections are parsed as YAML, anything else is taken literally so that
 * `--set title=a: b` does not turn into a mapping. The empty text is the
 * empty string, not null: a shell user cannot easily type "" otherwise. */
static int apply_text(cfg_cx *cx, const cvm_cfg_key *k, const char *text, cfg_val *out)
{
    size_t len = strlen(text);
    if (!utf8_ok(text, len))
        return CFG_FAIL(cx, NULL, "'%s' value is not valid UTF-8", k->name);
    if (text[0] == '"' || text[0] == '\'' || text[0] == '[' || text[0] == '{') {
        yaml_document_t doc;
        int rc = load_single(cx, text, len, &doc);
        if (rc != CVM_OK)
            return rc;
        yaml_document_t *saved = cx->doc;
        cx->doc = &doc;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        rc = root ? apply_node(cx, k, root, out) : apply_null(cx, k, NULL, out);
        cx->doc = saved;
        yaml_document_delete(&doc);
        return rc;
    }
    if (len > 0 && null_word(text, len))
        return apply_null(cx, k, NULL, out);
    return apply_scalar(cx, k, text, len, NULL, out);
}

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

static bool schema_ok(const cvm_cfg_key *schema, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cvm_cfg_key *k = &schema[i];
        const char *nm = k->name;
        size_t len = nm ? strlen(nm) : 0;
        if (len == 0 || nm[0] == '.' || nm[len - 1] == '.' || strstr(nm, "..") ||
            !utf8_ok(nm, len) || (unsigned)k->type > CVM_CFG_TABLE)
            return false;
        if (k->type == CVM_CFG_ENUM && (k->choices == NULL || k->choices[0] == '\0'))
            return false;
        if (find_key(schema, n, nm) != (ptrdiff_t)i || is_section(schema, n, nm, len))
            return false; /* duplicate, or both a key and a section */
    }
    return true;
}

cvm_config *cvm_config_new(const cvm_cfg_key *schema, size_t n_keys)
{
    if ((schema == NULL && n_keys > 0) || !schema_ok(schema, n_keys))
        return NULL;
    cvm_config *c = cvm_calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->schema = schema;
    c->n = n_keys;
    c->vals = cvm_calloc(n_keys ? n_keys : 1, sizeof *c->vals);
    if (c->vals == NULL) {
        cvm_free(c);
        return NULL;
    }
    for (size_t i = 0; i < n_keys; i++) {
        if (schema[i].def == NULL)
            continue;
        cfg_cx cx = {"default of ", schema[i].name, false, false, NULL, NULL};
        cfg_val v = {0};
        if (apply_text(&cx, &schema[i], schema[i].def, &v) != CVM_OK) {
            val_clear(&v);
            cvm_config_free(c);
            return NULL;
        }
        v.origin = CVM_CFG_FROM_DEFAULT;
        c->vals[i] = v;
    }
    return c;
}

void cvm_config_free(cvm_config *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        val_clear(&c->vals[i]);
    cvm_free(c->vals);
    cvm_free(c->path);
    cvm_free(c->dir);
    cvm_free(c);
}

int cvm_config_load_buffer(cvm_config *c, const char *name, const char *buf,
                           size_t len, cvm_err *err)
{
    assert(c != NULL);
    cfg_cx cx = {"", name ? name : "<buffer>", true, true, err, NULL};
    return load_into(c, &cx, buf, len);
}

int cvm_config_load_file(cvm_config *c, const char *path, cvm_err *err)
{
    assert(c != NULL && path != NULL);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return CVM_FAIL(err, CVM_EIO, "cannot read %s: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = cvm_malloc(cap);
    if (buf == NULL) {
        fclose(f);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory reading %s", path);
    }
    for (;;) {
        if (n == cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : cvm_realloc(buf, cap * 2);
            if (nb == NULL) {
                cvm_free(buf);
                fclose(f);
                return CVM_FAIL(err, CVM_ENOMEM, "out of memory reading %s", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        int e = errno;
        cvm_free(buf);
        fclose(f);
        return CVM_FAIL(err, CVM_EIO, "cannot read %s: %s", path, strerror(e));
    }
    fclose(f);

    /* Path and directory are copied before loading so that nothing can fail
     * after the values have been swapped in. */
    const char *slash = strrchr(path, '/');
    char *np = cvm_strdup(path);
    char *nd = slash == NULL    ? cvm_strdup(".")
               : slash == path ? cvm_strdup("/")
                               : cvm_strndup(path, (size_t)(slash - path));
    if (np == NULL || nd == NULL) {
        cvm_free(np);
        cvm_free(nd);
        cvm_free(buf);
        return CVM_FAIL(err, CVM_ENOMEM, "out of memory reading %s", path);
    }
    int rc = cvm_config_load_buffer(c, path, buf, n, err);
    cvm_free(buf);
    if (rc != CVM_OK) {
        cvm_free(np);
        cvm_free(nd);
        return rc;
    }
    cvm_free(c->path);
    cvm_free(c->dir);
    c->path = np;
    c->dir = nd;
    return CVM_OK;
}

/* --set a.map.name=v: set or add one entry of a MAP key. */
static int set_map_entry(cvm_config *c, cfg_cx *cx, size_t idx, const char *full,
                         const char *entry, const char *text)
{
    const cvm_cfg_key *k = &c->schema[idx];
    cvm_cfg_key ek = {full, CVM_CFG_DOUBLE, "0", k->min, k->max, NULL, NULL};
    cfg_val tmp = {0};
    int rc = apply_text(cx, &ek, text, &tmp);
    double v = tmp.d;
    val_clear(&tmp);
    if (rc != CVM_OK)
        return rc;
    cfg_val *mv = &c->vals[idx];
    for (size_t i = 0; i < mv->n_ents; i++) {
        if (strcmp(mv->ents[i].name, entry) == 0) {
            mv->ents[i].v = v;
            mv->set = true;
            mv->origin = CVM_CFG_FROM_SET;
            return CVM_OK;
        }
    }
    char *name = cvm_strdup(entry);
    if (name == NULL)
        return cfg_nomem(cx);
    cfg_ent *ne = cvm_reallocarray(mv->ents, mv->n_ents + 1, sizeof *ne);
    if (ne == NULL) {
        cvm_free(name);
        return cfg_nomem(cx);
    }
    mv->ents = ne;
    ne[mv->n_ents].name = name;
    ne[mv->n_ents].v = v;
    mv->n_ents++;
    mv->set = true;
    mv->origin = CVM_CFG_FROM_SET;
    return CVM_OK;
}

int cvm_config_set(cvm_config *c, const char *assignment, cvm_err *err)
{
    assert(c != NULL && assignment != NULL);
    cfg_cx cx = {"--set ", assignment, false, false, err, NULL};
    const char *eq = strchr(assignment, '=');
    if (eq == NULL || eq == assignment)
        return CFG_FAIL(&cx, NULL, "expected section.key=value");
    char *key = cvm_strndup(assignment, (size_t)(eq - assignment));
    if (key == NULL)
        return cfg_nomem(&cx);
    const char *text = eq + 1;
    int rc;
    ptrdiff_t idx = find_key(c->schema, c->n, key);
    if (idx >= 0) {
        const cvm_cfg_key *k = &c->schema[idx];
        if (k->type == CVM_CFG_TABLE) {
            rc = CFG_FAIL(&cx, NULL,
                          "'%s' is a table and cannot be set with --set; put it in "
                          "the YAML file",
                          key);
        } else {
            cfg_val v = {0};
            rc = apply_text(&cx, k, text, &v);
            if (rc == CVM_OK) {
                v.origin = CVM_CFG_FROM_SET;
                val_clear(&c->vals[idx]);
                c->vals[idx] = v;
            } else {
                val_clear(&v);
            }
        }
        cvm_free(key);
        return rc;
    }
    for (size_t i = 0; i < c->n; i++) {
        const cvm_cfg_key *k = &c->schema[i];
        size_t kl = strlen(k->name);
        if (k->type == CVM_CFG_MAP && strncmp(key, k->name, kl) == 0 &&
            key[kl] == '.' && key[kl + 1] != '\0') {
            if (!utf8_ok(key, strlen(key)))
                rc = CFG_FAIL(&cx, NULL, "'%s' entry name is not valid UTF-8", k->name);
            else
                rc = set_map_entry(c, &cx, i, key, key + kl + 1, text);
            cvm_free(key);
            return rc;
        }
    }
    cfg_guess g = guess_key(c->schema, c->n, key, false);
    size_t klen = strlen(key);
    if (is_section(c->schema, c->n, key, klen))
        rc = CFG_FAIL(&cx, NULL, "'%s' is a section, not a key", key);
    else if (g.p != NULL)
        rc = CFG_FAIL(&cx, NULL, "unknown key %s (did you mean '%.*s'?)",
                      show_text(key, klen).s, (int)g.len, g.p);
    else
        rc = CFG_FAIL(&cx, NULL, "unknown key %s", show_text(key, klen).s);
    cvm_free(key);
    return rc;
}

int cvm_config_check(const cvm_config *c, cvm_err *err)
{
    assert(c != NULL);
    cfg_cx cx = {"", "config", false, false, err, NULL};
    char num[64];
    for (size_t i = 0; i < c->n; i++) {
        const cvm_cfg_key *k = &c->schema[i];
        const cfg_val *v = &c->vals[i];
        if (!v->set)
            continue;
        switch (k->type) {
        case CVM_CFG_INT:
            if (!in_range(k, (double)v->i)) {
                snprintf(num, sizeof num, "%ld", v->i);
                return range_fail(&cx, NULL, k->name, num, k);
            }
            break;
        case CVM_CFG_DOUBLE:
            if (!isfinite(v->d) || !in_range(k, v->d))
                return range_fail(&cx, NULL, k->name, fmt_num(num, sizeof num, v->d), k);
            break;
        case CVM_CFG_ENUM:
            if (!choice_ok(k->choices, v->s, strlen(v->s)))
                return expect_fail(&cx, k, NULL, show_text(v->s, strlen(v->s)).s);
            break;
        case CVM_CFG_DATE:
            if (!date_ok(v->s, strlen(v->s)))
                return expect_fail(&cx, k, NULL, show_text(v->s, strlen(v->s)).s);
            break;
        case CVM_CFG_MAP:
            for (size_t j = 0; j < v->n_ents; j++) {
                if (!isfinite(v->ents[j].v) || !in_range(k, v->ents[j].v)) {
                    char name[256];
                    snprintf(name, sizeof name, "%s.%s", k->name, v->ents[j].name);
                    return range_fail(&cx, NULL, name,
                                      fmt_num(num, sizeof num, v->ents[j].v), k);
                }
            }
            break;
        case CVM_CFG_TABLE:
            for (size_t r = 0; r < v->n_rows; r++)
                for (size_t j = 0; j < v->rows[r].n; j++) {
                    const char *col = v->rows[r].cells[j].col;
                    if (k->choices != NULL && !choice_ok(k->choices, col, strlen(col)))
                        return CFG_FAIL(&cx, NULL,
                                        "'%s' row %zu has unknown column %s (allowed: %s)",
                                        k->name, r + 1, show_text(col, strlen(col)).s,
                                        k->choices);
                }
            break;
        default:
            break;
        }
    }
    return CVM_OK;
}

/* ------------------------------------------------------------------ */
/* Getters                                                             */

static const cfg_val cfg_zero; /* answer for misuse when asserts are off */

static const cfg_val *get_val(const cvm_config *c, const char *key, int type)
{
    assert(c != NULL && key != NULL);
    ptrdiff_t i = find_key(c->schema, c->n, key);
    assert(i >= 0 && "unknown config key");
    if (i < 0)
        return &cfg_zero;
    assert((type < 0 || (int)c->schema[i].type == type) && "wrong config key type");
    if (type >= 0 && (int)c->schema[i].type != type)
        return &cfg_zero;
    return &c->vals[i];
}

bool cvm_config_is_set(const cvm_config *c, const char *key)
{
    return get_val(c, key, -1)->set;
}

bool cvm_config_bool(const cvm_config *c, const char *key)
{
    return get_val(c, key, CVM_CFG_BOOL)->b;
}

long cvm_config_int(const cvm_config *c, const char *key)
{
    return get_val(c, key, CVM_CFG_INT)->i;
}

double cvm_config_double(const cvm_config *c, const char *key)
{
    return get_val(c, key, CVM_CFG_DOUBLE)->d;
}

const char *cvm_config_str(const cvm_config *c, const char *key)
{
    const cfg_val *v = get_val(c, key, -1);
    ptrdiff_t i = find_key(c->schema, c->n, key);
    assert(i < 0 || c->schema[i].type == CVM_CFG_STRING ||
           c->schema[i].type == CVM_CFG_ENUM || c->schema[i].type == CVM_CFG_DATE);
    if (i < 0 || !(c->schema[i].type == CVM_CFG_STRING ||
                   c->schema[i].type == CVM_CFG_ENUM || c->schema[i].type == CVM_CFG_DATE))
        return "";
    return v->set && v->s ? v->s : "";
}

size_t cvm_config_list_len(const cvm_config *c, const char *key)
{
    return get_val(c, key, CVM_CFG_LIST)->n_items;
}

const char *cvm_config_list_at(const cvm_config *c, const char *key, size_t i)
{
    const cfg_val *v = get_val(c, key, CVM_CFG_LIST);
    assert(i < v->n_items);
    return i < v->n_items ? v->items[i] : NULL;
}

size_t cvm_config_map_len(const cvm_config *c, const char *key)
{
    return get_val(c, key, CVM_CFG_MAP)->n_ents;
}

const char *cvm_config_map_name(const cvm_config *c, const char *key, size_t i)
{
    const cfg_val *v = get_val(c, key, CVM_CFG_MAP);
    assert(i < v->n_ents);
    return i < v->n_ents ? v->ents[i].name : NULL;
}

double cvm_config_map_value(const cvm_config *c, const char *key, size_t i)
{
    const cfg_val *v = get_val(c, key, CVM_CFG_MAP);
    assert(i < v->n_ents);
    return i < v->n_ents ? v->ents[i].v : 0.0;
}

bool cvm_config_map_get(const cvm_config *c, const char *key, const char *name,
                        double *out)
{
    const cfg_val *v = get_val(c, key, CVM_CFG_MAP);
    for (size_t i = 0; i < v->n_ents; i++) {
        if (strcmp(v->ents[i].name, name) == 0) {
            if (out != NULL)
                *out = v->ents[i].v;
            return true;
        }
    }
    return false;
}

size_t cvm_config_table_rows(const cvm_config *c, const char *key)
{
    return get_val(c, key, CVM_CFG_TABLE)->n_rows;
}

const char *cvm_config_table_cell(const cvm_config *c, const char *key, size_t row,
                                  const char *column)
{
    const cfg_val *v = get_val(c, key, CVM_CFG_TABLE);
    assert(row < v->n_rows);
    if (row >= v->n_rows)
        return NULL;
    for (size_t j = 0; j < v->rows[row].n; j++)
        if (strcmp(v->rows[row].cells[j].col, column) == 0)
            return v->rows[row].cells[j].val;
    return NULL;
}

int cvm_config_table_row_line(const cvm_config *c, const char *key, size_t row)
{
    const cfg_val *v = get_val(c, key, CVM_CFG_TABLE);
    assert(row < v->n_rows);
    return row < v->n_rows ? v->rows[row].line : 0;
}

cvm_cfg_origin cvm_config_origin(const cvm_config *c, const char *key)
{
    return get_val(c, key, -1)->origin;
}

const char *cvm_config_dir(const cvm_config *c)
{
    return c->dir ? c->dir : ".";
}

const char *cvm_config_path(const cvm_config *c)
{
    return c->path;
}

/* ------------------------------------------------------------------ */
/* YAML output                                                         */

/* Plain only when the text cannot be mistaken for anything but itself, in
 * block and flow context alike; everything else is double-quoted. */
static bool plain_ok(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || null_word(s, len) || s[0] == ' ' || s[len - 1] == ' ')
        return false;
    if (s[0] == '-' && !(len > 1 && ((s[1] >= '0' && s[1] <= '9') || s[1] == '.')))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '/' ||
              ch == '+' || ch == '-' || ch == ' '))
            return false;
    }
    return true;
}

static void put_scalar(FILE *out, const char *s)
{
    if (plain_ok(s)) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned ch = *p;
        size_t n = ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
        uint32_t cp = n == 1 ? ch : n == 2 ? ch & 0x1F : n == 3 ? ch & 0x0F : ch & 0x07;
        for (size_t j = 1; j < n && p[j]; j++)
            cp = (cp << 6) | (p[j] & 0x3F);
        /* libyaml rejects non-printable characters and folds the Unicode line
         * breaks, so those must be escaped to survive a round trip. */
        if (cp == '"' || cp == '\\')
            fprintf(out, "\\%c", (char)cp);
        else if (cp == '\n')
            fputs("\\n", out);
        else if (cp == '\t')
            fputs("\\t", out);
        else if (cp == '\r')
            fputs("\\r", out);
        else if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            fprintf(out, "\\x%02X", (unsigned)cp);
        else if (cp == 0x2028)
            fputs("\\L", out);
        else if (cp == 0x2029)
            fputs("\\P", out);
        else if (cp == 0xFEFF || cp == 0xFFFE || cp == 0xFFFF)
            fprintf(out, "\\u%04X", (unsigned)cp);
        else
            fwrite(p, 1, n, out);
        for (size_t j = 0; j < n && *p; j++)
            p++;
    }
    fputc('"', out);
}

static void put_double(FILE *out, double d)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", d);
    if (strtod(buf, NULL) != d)
        snprintf(buf, sizeof buf, "%.17g", d);
    fputs(buf, out);
}

static void put_indent(FILE *out, int depth)
{
    for (int i = 0; i < depth; i++)
        fputs("  ", out);
}

#define CFG_DOC_WIDTH 88

static void put_doc(FILE *out, const char *doc, int depth)
{
    int width = CFG_DOC_WIDTH - 2 * depth - 2;
    if (width < 20)
        width = 20;
    const char *p = doc;
    while (*p) {
        while (*p && is_blank(*p))
            p++;
        if (!*p)
            break;
        put_indent(out, depth);
        fputc('#', out);
        int col = 0;
        while (*p) {
            const char *w = p;
            while (*p && !is_blank(*p))
                p++;
            int wl = (int)(p - w);
            if (col > 0 && col + 1 + wl > width) {
                p = w;
                break;
            }
            fputc(' ', out);
            fwrite(w, 1, (size_t)wl, out);
            col += 1 + wl;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p == '\n' || *p == '\r')
                break; /* keep the author's line breaks */
        }
        fputc('\n', out);
    }
}

static void put_value(FILE *out, const cvm_cfg_key *k, const cfg_val *v, int depth,
                      const char *note)
{
    if (!v->set) {
        fprintf(out, " ~%s\n", note);
        return;
    }
    switch (k->type) {
    case CVM_CFG_BOOL:
        fprintf(out, " %s%s\n", v->b ? "true" : "false", note);
        return;
    case CVM_CFG_INT:
        fprintf(out, " %ld%s\n", v->i, note);
        return;
    case CVM_CFG_DOUBLE:
        fputc(' ', out);
        put_double(out, v->d);
        break;
    case CVM_CFG_STRING:
    case CVM_CFG_ENUM:
    case CVM_CFG_DATE:
        fputc(' ', out);
        put_scalar(out, v->s);
        break;
    case CVM_CFG_LIST:
        fputs(" [", out);
        for (size_t i = 0; i < v->n_items; i++) {
            if (i)
                fputs(", ", out);
            put_scalar(out, v->items[i]);
        }
        fputc(']', out);
        break;
    case CVM_CFG_MAP:
        fputs(" {", out);
        for (size_t i = 0; i < v->n_ents; i++) {
            if (i)
                fputs(", ", out);
            put_scalar(out, v->ents[i].name);
            fputs(": ", out);
            put_double(out, v->ents[i].v);
        }
        fputc('}', out);
        break;
    case CVM_CFG_TABLE:
        if (v->n_rows == 0) {
            fprintf(out, " []%s\n", note);
            return;
        }
        fprintf(out, "%s\n", note);
        for (size_t r = 0; r < v->n_rows; r++) {
            put_indent(out, depth + 1);
            fputs("- {", out);
            for (size_t j = 0; j < v->rows[r].n; j++) {
                if (j)
                    fputs(", ", out);
                put_scalar(out, v->rows[r].cells[j].col);
                fputs(": ", out);
                put_scalar(out, v->rows[r].cells[j].val);
            }
            fputs("}\n", out);
        }
        return;
    }
    fprintf(out, "%s\n", note);
}

/* Writes the keys under prefix (name[0..plen) of some key), sections in the
 * order of their first key so a schema listing a.x, b.y, a.z still yields a
 * single "a:" mapping. */
static void write_level(const cvm_config *c, FILE *out, const char *prefix, size_t plen,
                        int depth, bool docs)
{
    bool first = true;
    for (size_t i = 0; i < c->n; i++) {
        const cvm_cfg_key *k = &c->schema[i];
        if (strncmp(k->name, prefix, plen) != 0)
            continue;
        const char *rest = k->name + plen;
        const char *dot = strchr(rest, '.');
        if (dot == NULL) {
            if (docs && k->doc != NULL && k->doc[0] != '\0')
                put_doc(out, k->doc, depth);
            put_indent(out, depth);
            put_scalar(out, rest);
            fputc(':', out);
            put_value(out, k, &c->vals[i], depth,
                      docs && c->vals[i].origin != CVM_CFG_FROM_DEFAULT ? "  # changed"
                                                                       : "");
            first = false;
            continue;
        }
        size_t slen = (size_t)(dot - k->name) + 1; /* through the dot */
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strncmp(c->schema[j].name, k->name, slen) == 0;
        if (seen)
            continue;
        if (docs && depth == 0 && !first)
            fputc('\n', out);
        put_indent(out, depth);
        fwrite(rest, 1, (size_t)(dot - rest), out);
        fputs(":\n", out);
        write_level(c, out, k->name, slen, depth + 1, docs);
        first = false;
    }
}

int cvm_config_write_yaml(const cvm_config *c, FILE *out, bool with_docs)
{
    assert(c != NULL && out != NULL);
    if (c->n == 0)
        fputs("{}\n", out);
    else
        write_level(c, out, "", 0, 0, with_docs);
    return ferror(out) ? CVM_EIO : CVM_OK;
}

/* ------------------------------------------------------------------ */
/* JSON output                                                         */

static json_t *val_json(const cvm_cfg_key *k, const cfg_val *v)
{
    if (!v->set)
        return json_null();
    json_t *j = NULL;
    switch (k->type) {
    case CVM_CFG_BOOL: return json_boolean(v->b);
    case CVM_CFG_INT: return json_integer((json_int_t)v->i);
    case CVM_CFG_DOUBLE: return json_real(v->d);
    case CVM_CFG_STRING:
    case CVM_CFG_ENUM:
    case CVM_CFG_DATE: return json_string(v->s);
    case CVM_CFG_LIST:
        j = json_array();
        for (size_t i = 0; j && i < v->n_items; i++)
            if (json_array_append_new(j, json_string(v->items[i])) != 0) {
                json_decref(j);
                j = NULL;
            }
        return j;
    case CVM_CFG_MAP:
        j = json_object();
        for (size_t i = 0; j && i < v->n_ents; i++)
            if (json_object_set_new(j, v->ents[i].name, json_real(v->ents[i].v)) != 0) {
                json_decref(j);
                j = NULL;
            }
        return j;
    case CVM_CFG_TABLE:
        j = json_array();
        for (size_t r = 0; j && r < v->n_rows; r++) {
            json_t *row = json_object();
            for (size_t c = 0; row && c < v->rows[r].n; c++)
                if (json_object_set_new(row, v->rows[r].cells[c].col,
                                        json_string(v->rows[r].cells[c].val)) != 0) {
                    json_decref(row);
                    row = NULL;
                }
            if (json_array_append_new(j, row) != 0) {
                json_decref(j);
                j = NULL;
            }
        }
        return j;
    }
    return NULL;
}

void *cvm_config_to_json(const cvm_config *c)
{
    assert(c != NULL);
    json_t *root = json_object();
    for (size_t i = 0; root && i < c->n; i++) {
        char *name = cvm_strdup(c->schema[i].name);
        json_t *obj = root, *v = NULL;
        if (name == NULL)
            goto fail;
        char *seg = name;
        for (char *dot = strchr(seg, '.'); dot; dot = strchr(seg, '.')) {
            *dot = '\0';
            json_t *sub = json_object_get(obj, seg);
            if (sub == NULL) {
                sub = json_object();
                if (json_object_set_new(obj, seg, sub) != 0)
                    goto fail;
            }
            obj = sub;
            seg = dot + 1;
        }
        v = val_json(&c->schema[i], &c->vals[i]);
        if (json_object_set_new(obj, seg, v) != 0)
            goto fail;
        cvm_free(name);
        continue;
    fail:
        cvm_free(name);
        json_decref(root);
        return NULL;
    }
    return root;
}

/* ------------------------------------------------------------------ */
/* Markdown                                                            */

/* Table cells: pipes escaped, line breaks flattened. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
}

int cvm_config_write_markdown(const cvm_cfg_key *schema, size_t n_keys, FILE *out)
{
    assert(out != NULL && (schema != NULL || n_keys == 0));
    for (size_t i = 0; i < n_keys; i++) {
        const char *dot = strchr(schema[i].name, '.');
        size_t slen = dot ? (size_t)(dot - schema[i].name) : 0;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *dj = strchr(schema[j].name, '.');
            size_t lj = dj ? (size_t)(dj - schema[j].name) : 0;
            seen = lj == slen && strncmp(schema[j].name, schema[i].name, slen) == 0;
        }
        if (seen)
            continue;
        if (slen)
            fprintf(out, "%s## %.*s\n\n", i ? "\n" : "", (int)slen, schema[i].name);
        else
            fprintf(out, "%s## general\n\n", i ? "\n" : "");
        fputs("| key | type | default | allowed | description |\n"
              "| --- | --- | --- | --- | --- |\n",
              out);
        for (size_t j = i; j < n_keys; j++) {
            const cvm_cfg_key *k = &schema[j];
            const char *dj = strchr(k->name, '.');
            size_t lj = dj ? (size_t)(dj - k->name) : 0;
            if (lj != slen || strncmp(k->name, schema[i].name, slen) != 0)
                continue;
            fprintf(out, "| `%s` | %s | ", k->name, type_word(k->type));
            if (k->def == NULL) {
                fputs("(unset)", out);
            } else if (k->def[0] == '\0') {
                fputs("\"\"", out);
            } else {
                fputc('`', out);
                md_cell(out, k->def);
                fputc('`', out);
            }
            fputs(" | ", out);
            char lo[64], hi[64];
            switch (k->type) {
            case CVM_CFG_BOOL: fputs("true, false", out); break;
            case CVM_CFG_INT:
            case CVM_CFG_DOUBLE:
            case CVM_CFG_MAP:
                if (k->min <= k->max)
                    fprintf(out, "[%s, %s]", fmt_num(lo, sizeof lo, k->min),
                            fmt_num(hi, sizeof hi, k->max));
                else
                    fputs("any", out);
                break;
            case CVM_CFG_ENUM: md_cell(out, k->choices ? k->choices : ""); break;
            case CVM_CFG_DATE: fputs("YYYY-MM-DD or empty", out); break;
            case CVM_CFG_TABLE:
                fputs("columns: ", out);
                md_cell(out, k->choices ? k->choices : "any");
                break;
            default: fputs("any", out); break;
            }
            fputs(" | ", out);
            md_cell(out, k->doc ? k->doc : "");
            fputs(" |\n", out);
        }
    }
    return ferror(out) ? CVM_EIO : CVM_OK;
}
