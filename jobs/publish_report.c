#include "publish_report.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"
#include "publish.h"
#include "runcsv.h"
#include "sbuf.h"

#define NR 1, 0 /* no range */
#define MAX_BINS 10
#define MAX_LABELS 32
#define TOP_RULES 15
#define HIST_BINS 20

typedef struct rep {
    cvm_sbuf h;
    const json_t *S;
    const char *dir;
} rep;

/* ------------------------------------------------------------ formatting */

static void put(rep *R, const char *s)
{
    cvm_sbuf_puts(&R->h, s);
}

static void esc(rep *R, const char *s)
{
    cvm_sbuf_html(&R->h, s, strlen(s));
}

#define P(...) cvm_sbuf_printf(&R->h, __VA_ARGS__)

/* Thousands separators in the integer part of a formatted number. */
static const char *group3(const char *in, char *out, size_t cap)
{
    const char *s = in;
    size_t k = 0;
    if (*s == '-')
        out[k++] = *s++;
    size_t ndig = strspn(s, "0123456789");
    for (size_t i = 0; i < ndig && k + 2 < cap; i++) {
        if (i > 0 && (ndig - i) % 3 == 0)
            out[k++] = ',';
        out[k++] = s[i];
    }
    snprintf(out + k, cap - k, "%s", s + ndig);
    return out;
}

static const char *fmt_fixed(double v, int dec, char *buf, size_t cap)
{
    char t[64];
    if (fabs(v) < 0.5 * pow(10, -dec))
        v = 0; /* no "-0.00" */
    snprintf(t, sizeof t, "%.*f", dec, v);
    return group3(t, buf, cap);
}

static const char *fmt_int(long long v, char *buf, size_t cap)
{
    char t[32];
    snprintf(t, sizeof t, "%lld", v);
    return group3(t, buf, cap);
}

static const char *fmt_compact(double v, char *buf, size_t cap)
{
    double a = fabs(v);
    if (a >= 1e9)
        snprintf(buf, cap, "%.2f G", v / 1e9);
    else if (a >= 1e6)
        snprintf(buf, cap, "%.2f M", v / 1e6);
    else if (a >= 1e4)
        snprintf(buf, cap, "%.1f k", v / 1e3);
    else
        fmt_fixed(v, a >= 100 ? 0 : 2, buf, cap);
    return buf;
}

/* Text of a value in a format the test re-derives: int, money (2 decimals),
 * pct and pct2 (a share as a percentage), sec (3 decimals), compact. */
static const char *fmt_value(double v, const char *format, char *buf, size_t cap)
{
    char t[64];
    if (strcmp(format, "int") == 0)
        return fmt_int((long long)llround(v), buf, cap);
    if (strcmp(format, "money") == 0)
        return fmt_fixed(v, 2, buf, cap);
    if (strcmp(format, "pct") == 0 || strcmp(format, "pct2") == 0) {
        fmt_fixed(v * 100, format[3] ? 2 : 1, t, sizeof t);
        snprintf(buf, cap, "%s%%", t);
        return buf;
    }
    if (strcmp(format, "sec") == 0) {
        snprintf(buf, cap, "%.3f s", v);
        return buf;
    }
    if (strcmp(format, "num") == 0) {
        snprintf(buf, cap, "%.4g", v);
        return buf;
    }
    return fmt_compact(v, buf, cap);
}

/* JSON pointer (RFC 6901) of the NULL-terminated segments. */
static const char *pointer(char *buf, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    size_t k = 0;
    const char *seg;
    buf[0] = '\0';
    while ((seg = va_arg(ap, const char *)) != NULL) {
        if (k + 1 < cap)
            buf[k++] = '/';
        for (const char *s = seg; *s && k + 2 < cap; s++) {
            if (*s == '~' || *s == '/') {
                buf[k++] = '~';
                buf[k++] = *s == '~' ? '0' : '1';
            } else {
                buf[k++] = *s;
            }
        }
        buf[k] = '\0';
    }
    va_end(ap);
    return buf;
}

static const json_t *jget(const json_t *o, const char *ptr)
{
    char seg[512];
    const char *p = ptr;
    while (o && *p == '/') {
        p++;
        size_t k = 0;
        while (*p && *p != '/' && k + 1 < sizeof seg) {
            if (*p == '~' && (p[1] == '0' || p[1] == '1')) {
                seg[k++] = p[1] == '0' ? '~' : '/';
                p += 2;
            } else {
                seg[k++] = *p++;
            }
        }
        seg[k] = '\0';
        o = json_is_array(o) ? json_array_get(o, strtoul(seg, NULL, 10)) : json_object_get(o, seg);
    }
    return o;
}

/* A figure from summary.json: the element carries the pointer, the exact
 * value and the format of its text. */
static void fig(rep *R, const char *tag, const char *cls, const char *ptr, const char *format)
{
    const json_t *v = jget(R->S, ptr);
    char val[64] = "", txt[96] = "–";
    if (json_is_integer(v)) {
        snprintf(val, sizeof val, "%lld", (long long)json_integer_value(v));
        fmt_value((double)json_integer_value(v), format, txt, sizeof txt);
    } else if (json_is_real(v)) {
        snprintf(val, sizeof val, "%.17g", json_real_value(v));
        fmt_value(json_real_value(v), format, txt, sizeof txt);
    }
    double x = json_number_value(v);
    P("<%s class=\"%s%s\" data-key=\"", tag, cls, x < 0 ? " neg" : "");
    esc(R, ptr);
    P("\" data-value=\"%s\" data-format=\"%s\">%s</%s>", val, format, txt, tag);
}

/* A figure the report computes from the run's CSV files. */
static void calc(rep *R, const char *tag, const char *cls, double v, const char *name,
                 const char *format)
{
    char txt[96];
    fmt_value(v, format, txt, sizeof txt);
    P("<%s class=\"%s%s\" data-calc=\"", tag, cls, v < 0 ? " neg" : "");
    esc(R, name);
    P("\" data-value=\"%.17g\" data-format=\"%s\">%s</%s>", v, format, txt, tag);
}

static double jnum(const json_t *S, const char *ptr)
{
    return json_number_value(jget(S, ptr));
}

/* A horizontal bar for a table cell, as wide as v/max. */
static void bar(rep *R, double v, double max, const char *cls)
{
    double w = max > 0 && v > 0 ? 100.0 * v / max : 0;
    P("<td class=\"barcell\"><span class=\"bar %s\" style=\"width:%.1f%%\"></span></td>", cls, w);
}

/* Sequential blue scale, t in [0, 1]. */
static void blue(double t, char *buf, size_t cap)
{
    static const double stops[3][3] = {{239, 245, 252}, {78, 146, 200}, {12, 52, 110}};
    if (!(t >= 0))
        t = 0;
    if (t > 1)
        t = 1;
    int k = t < 0.5 ? 0 : 1;
    double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = (int)lround(stops[k][i] + (stops[k + 1][i] - stops[k][i]) * u);
    snprintf(buf, cap, "#%02x%02x%02x", c[0], c[1], c[2]);
}

/* ------------------------------------------------------- the CSV figures */

typedef struct labelstat {
    char *name;
    long long n;
    double profit, monetary;
} labelstat;

typedef struct labels {
    labelstat v[MAX_LABELS];
    size_t n;
} labels;

static labelstat *label_get(labels *L, const char *s, size_t len)
{
    for (size_t i = 0; i < L->n; i++)
        if (strlen(L->v[i].name) == len && memcmp(L->v[i].name, s, len) == 0)
            return &L->v[i];
    if (L->n == MAX_LABELS)
        return NULL;
    labelstat *e = &L->v[L->n];
    if ((e->name = cvm_strndup(s, len)) == NULL)
        return NULL;
    L->n++;
    return e;
}

static void labels_free(labels *L)
{
    for (size_t i = 0; i < L->n; i++)
        cvm_free(L->v[i].name);
    L->n = 0;
}

typedef struct vec {
    double *v;
    size_t n, cap;
} vec;

static bool vec_push(vec *a, double x)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 1024;
        double *p = cvm_reallocarray(a->v, cap, sizeof *p);
        if (p == NULL)
            return false;
        a->v = p;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return true;
}

typedef struct segfig {
    size_t rows;
    /* Pareto: cum_profit_share by pareto_rank */
    double *cum;
    size_t n_rank;
    /* RFM heat map */
    int bins;
    long long rfm_n[MAX_BINS][MAX_BINS];
    double rfm_mon[MAX_BINS][MAX_BINS];
    labels grade, grid, churn;
    bool has_grid, has_churn;
    vec clv, alive;
    bool has_clv, has_alive;
} segfig;

static void segfig_clear(segfig *F)
{
    cvm_free(F->cum);
    labels_free(&F->grade);
    labels_free(&F->grid);
    labels_free(&F->churn);
    cvm_free(F->clv.v);
    cvm_free(F->alive.v);
}

static int read_segments(const char *dir, int bins, segfig *F, cvm_err *err)
{
    memset(F, 0, sizeof *F);
    F->bins = bins > 0 && bins <= MAX_BINS ? bins : 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/segments.csv", dir);
    cvm_runcsv r;
    CVM_TRY(cvm_runcsv_open(&r, path, err));
    int c_rank = cvm_runcsv_col(&r, "pareto_rank"), c_cum = cvm_runcsv_col(&r, "cum_profit_share");
    int c_prof = cvm_runcsv_col(&r, "profit"), c_mon = cvm_runcsv_col(&r, "monetary");
    int c_r = cvm_runcsv_col(&r, "r_score"), c_f = cvm_runcsv_col(&r, "f_score");
    int c_grade = cvm_runcsv_col(&r, "grade"), c_grid = cvm_runcsv_col(&r, "grid_class");
    int c_churn = cvm_runcsv_col(&r, "churn_risk");
    int c_clv = cvm_runcsv_col(&r, "clv"), c_alive = cvm_runcsv_col(&r, "p_alive");
    F->has_grid = c_grid >= 0;
    F->has_churn = c_churn >= 0;
    F->has_clv = c_clv >= 0;
    F->has_alive = c_alive >= 0;
    size_t cap = 0;
    int rc = CVM_OK, st;
    while (rc == CVM_OK && (st = cvm_runcsv_next(&r, err)) > 0) {
        F->rows++;
        double profit = 0, mon = 0, x, y;
        if (c_prof >= 0 && cvm_runcsv_num(&r, (size_t)c_prof, &x))
            profit = x;
        if (c_mon >= 0 && cvm_runcsv_num(&r, (size_t)c_mon, &x))
            mon = x;
        if (c_rank >= 0 && c_cum >= 0 && cvm_runcsv_num(&r, (size_t)c_rank, &x) &&
            cvm_runcsv_num(&r, (size_t)c_cum, &y) && x >= 1 && x <= 1e9) {
            size_t k = (size_t)x;
            if (k > cap) {
                size_t nc = cap ? cap : 1024;
                while (nc < k)
                    nc *= 2;
                double *p = cvm_reallocarray(F->cum, nc, sizeof *p);
                if (p == NULL) {
                    rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
                    break;
                }
                for (size_t i = cap; i < nc; i++)
                    p[i] = NAN;
                F->cum = p;
                cap = nc;
            }
            F->cum[k - 1] = y;
            if (k > F->n_rank)
                F->n_rank = k;
        }
        if (F->bins && c_r >= 0 && c_f >= 0 && cvm_runcsv_num(&r, (size_t)c_r, &x) &&
            cvm_runcsv_num(&r, (size_t)c_f, &y) && x >= 1 && x <= F->bins && y >= 1 &&
            y <= F->bins) {
            F->rfm_n[(int)x - 1][(int)y - 1]++;
            F->rfm_mon[(int)x - 1][(int)y - 1] += mon;
        }
        const int cols[3] = {c_grade, c_grid, c_churn};
        labels *ls[3] = {&F->grade, &F->grid, &F->churn};
        for (int k = 0; k < 3; k++) {
            if (cols[k] < 0 || r.len[cols[k]] == 0)
                continue;
            labelstat *e = label_get(ls[k], r.field[cols[k]], r.len[cols[k]]);
            if (e) {
                e->n++;
                e->profit += profit;
                e->monetary += mon;
            }
        }
        if (c_clv >= 0 && cvm_runcsv_num(&r, (size_t)c_clv, &x) && !vec_push(&F->clv, x))
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        if (c_alive >= 0 && cvm_runcsv_num(&r, (size_t)c_alive, &x) && !vec_push(&F->alive, x))
            rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
    }
    if (rc == CVM_OK && st < 0)
        rc = st;
    cvm_runcsv_close(&r);
    return rc;
}

/* ------------------------------------------------------------- sections */

static void kpi(rep *R, const char *label, const char *ptr, const char *format)
{
    put(R, "<div class=\"kpi\">");
    fig(R, "div", "v", ptr, format);
    put(R, "<div class=\"l\">");
    esc(R, label);
    put(R, "</div></div>");
}

static void section_overview(rep *R)
{
    put(R, "<section class=\"wide\" id=\"overview\"><h2>Key figures</h2><div class=\"kpis\">");
    kpi(R, "customers", "/rows/customers", "int");
    kpi(R, "customers with purchases", "/rfm/scored_customers", "int");
    kpi(R, "total profit", "/profit/total_profit", "money");
    kpi(R, "gross margin", "/profit/total_gross_margin", "money");
    kpi(R, "cost to serve", "/profit/total_cost_to_serve", "money");
    kpi(R, "customers making the Pareto share of profit", "/profit/pareto_top_customer_share",
        "pct");
    kpi(R, "customers with negative profit", "/profit/negative_profit_customers", "int");
    kpi(R, "transaction lines read", "/rows/read", "int");
    kpi(R, "rows rejected", "/rejects/total", "int");
    put(R, "</div></section>\n");
}

/* Axes of a plot: x ticks at fractions of [0,1], y ticks at the given values. */
static void pareto_svg(rep *R, const segfig *F)
{
    const double X0 = 56, X1 = 620, Y0 = 16, Y1 = 286;
    double lo = 0, hi = 1;
    for (size_t i = 0; i < F->n_rank; i++)
        if (!isnan(F->cum[i])) {
            if (F->cum[i] < lo)
                lo = F->cum[i];
            if (F->cum[i] > hi)
                hi = F->cum[i];
        }
    hi = ceil(hi * 10) / 10;
    lo = floor(lo * 10) / 10;
#define PX(x) (X0 + (X1 - X0) * (x))
#define PY(y) (Y1 - (Y1 - Y0) * ((y) - lo) / (hi - lo))
    put(R, "<svg class=\"chart\" viewBox=\"0 0 640 330\" role=\"img\" "
           "aria-label=\"Pareto curve of profit\">");
    for (double t = lo; t <= hi + 1e-9; t += 0.2) {
        P("<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", X0, X1, PY(t),
          PY(t));
        P("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.0f%%</text>", X0 - 6,
          PY(t) + 4, t * 100);
    }
    for (int i = 0; i <= 10; i += 2) {
        double x = i / 10.0;
        P("<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", PX(x), PX(x), Y0,
          Y1);
        P("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d%%</text>", PX(x),
          Y1 + 16, i * 10);
    }
    P("<text class=\"axis\" x=\"%.1f\" y=\"326\" text-anchor=\"middle\">customers ranked by "
      "profit</text>", (X0 + X1) / 2);
    P("<text class=\"axis\" x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 "
      "%.1f)\">cumulative share of profit</text>", (Y0 + Y1) / 2, (Y0 + Y1) / 2);
    double share = jnum(R->S, "/profit/pareto_share");
    if (share > lo && share < hi) {
        P("<line class=\"ref\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", X0, X1,
          PY(share), PY(share));
    }
    /* At most ~600 points: every k-th rank, and always the last. */
    size_t step = F->n_rank > 600 ? F->n_rank / 600 : 1;
    put(R, "<polyline class=\"curve\" points=\"");
    P("%.1f,%.1f", PX(0), PY(0));
    for (size_t i = 0; i < F->n_rank; i++) {
        if (isnan(F->cum[i]) || (i % step != 0 && i + 1 != F->n_rank))
            continue;
        P(" %.1f,%.1f", PX((double)(i + 1) / (double)F->n_rank), PY(F->cum[i]));
    }
    put(R, "\"/>");
    double top = jnum(R->S, "/profit/pareto_top_customers");
    if (top >= 1 && top <= (double)F->n_rank && !isnan(F->cum[(size_t)top - 1])) {
        double x = top / (double)F->n_rank, y = F->cum[(size_t)top - 1];
        P("<circle class=\"mark\" cx=\"%.1f\" cy=\"%.1f\" r=\"4.5\"/>", PX(x), PY(y));
        P("<text class=\"lbl\" x=\"%.1f\" y=\"%.1f\">%.0f customers</text>", PX(x) + 8,
          PY(y) + 16, top);
    }
    put(R, "</svg>");
#undef PX
#undef PY
}

static void section_pareto(rep *R, const segfig *F)
{
    if (F->n_rank == 0)
        return;
    put(R, "<section id=\"pareto\"><h2>Pareto curve of profit</h2><p class=\"note\">");
    fig(R, "b", "", "/profit/pareto_top_customers", "int");
    put(R, " customers (");
    fig(R, "b", "", "/profit/pareto_top_customer_share", "pct");
    put(R, " of those with a purchase line) make ");
    fig(R, "b", "", "/profit/pareto_share", "pct");
    put(R, " of the profit. A curve above 100% means that some customers lose money.</p>");
    pareto_svg(R, F);
    put(R, "</section>\n");
}

static void section_rfm(rep *R, const segfig *F)
{
    int b = F->bins;
    if (b == 0)
        return;
    put(R, "<section id=\"rfm\"><h2>RFM heat map</h2><p class=\"note\">Customers by recency score "
           "(rows, high = bought recently) and frequency score (columns); colour: mean monetary "
           "value of the cell (log scale).</p>");
    double mn = INFINITY, mx = -INFINITY;
    for (int i = 0; i < b; i++)
        for (int j = 0; j < b; j++)
            if (F->rfm_n[i][j]) {
                double m = F->rfm_mon[i][j] / (double)F->rfm_n[i][j];
                mn = fmin(mn, m);
                mx = fmax(mx, m);
            }
    const double X0 = 70, Y0 = 10, W = 500, H = 300;
    double cw = W / b, ch = H / b;
    P("<svg class=\"chart\" viewBox=\"0 0 600 %.0f\" role=\"img\" aria-label=\"RFM heat map\">",
      Y0 + H + 62);
    for (int i = 0; i < b; i++) {       /* r score, top row = b */
        for (int j = 0; j < b; j++) {   /* f score */
            int rs = b - i;
            long long n = F->rfm_n[rs - 1][j];
            double m = n ? F->rfm_mon[rs - 1][j] / (double)n : 0;
            double t = n && mx > mn ? (log1p(fmax(m, 0)) - log1p(fmax(mn, 0))) /
                                          (log1p(fmax(mx, 0)) - log1p(fmax(mn, 0)))
                                    : (n ? 1 : 0);
            char col[8];
            if (n)
                blue(t, col, sizeof col);
            else
                snprintf(col, sizeof col, "#f4f4f4");
            double x = X0 + j * cw, y = Y0 + i * ch;
            P("<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" "
              "stroke=\"#fff\"/>", x, y, cw, ch, col);
            const char *ink = t > 0.55 ? "#fff" : "#1f2933";
            char name[64], txt[64];
            snprintf(name, sizeof name, "rfm_count:r%d:f%d", rs, j + 1);
            P("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"cellv\" fill=\"%s\" "
              "data-calc=\"%s\" data-value=\"%lld\" data-format=\"int\">%s</text>",
              x + cw / 2, y + ch / 2, ink, name, n, fmt_int(n, txt, sizeof txt));
            if (n)
                P("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"cells\" "
                  "fill=\"%s\">%s</text>", x + cw / 2, y + ch / 2 + 15, ink,
                  fmt_compact(m, txt, sizeof txt));
        }
        P("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">R %d</text>", X0 - 8,
          Y0 + i * ch + ch / 2 + 4, b - i);
    }
    for (int j = 0; j < b; j++)
        P("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">F %d</text>",
          X0 + j * cw + cw / 2, Y0 + H + 16, j + 1);
    /* Legend: the colour ramp from the smallest to the largest cell mean. */
    put(R, "<defs><linearGradient id=\"ramp\">");
    for (int k = 0; k <= 4; k++) {
        char col[8];
        blue(k / 4.0, col, sizeof col);
        P("<stop offset=\"%d%%\" stop-color=\"%s\"/>", k * 25, col);
    }
    put(R, "</linearGradient></defs>");
    char a[32], z[32];
    P("<rect x=\"%.1f\" y=\"%.1f\" width=\"200\" height=\"10\" fill=\"url(#ramp)\"/>", X0,
      Y0 + H + 30);
    P("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\">mean monetary %s</text>", X0 + 210, Y0 + H + 39,
      isfinite(mn) ? fmt_compact(mn, a, sizeof a) : "-");
    P("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\">… %s</text>", X0 + 210, Y0 + H + 54,
      isfinite(mx) ? fmt_compact(mx, z, sizeof z) : "-");
    put(R, "</svg></section>\n");
}

static void section_segments(rep *R)
{
    const json_t *segs = jget(R->S, "/rfm/segments");
    if (json_object_size(segs)) {
        put(R, "<section id=\"segments\"><h2>RFM segments</h2><p class=\"note\">Customers per "
               "named segment (rfm.segments, first matching rule).</p>");
        double max = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)segs, k, v)
            max = fmax(max, json_number_value(v));
        put(R, "<table><thead><tr><th>RFM segment</th><th class=\"num\">customers</th><th>"
               "</th></tr></thead><tbody>");
        json_object_foreach((json_t *)segs, k, v) {
            char ptr[512];
            put(R, "<tr><td>");
            esc(R, k);
            put(R, "</td>");
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "rfm", "segments", k, NULL), "int");
            bar(R, json_number_value(v), max, "");
            put(R, "</tr>");
        }
        put(R, "</tbody></table></section>\n");
    }
}

static const labelstat *find_label(const labels *L, const char *name)
{
    for (size_t i = 0; i < L->n; i++)
        if (strcmp(L->v[i].name, name) == 0)
            return &L->v[i];
    return NULL;
}

static void section_grades(rep *R, const segfig *F)
{
    const json_t *g = jget(R->S, "/grading/grades");
    if (json_object_size(g) == 0)
        return;
    put(R, "<section id=\"grades\"><h2>Value grades</h2><p class=\"note\">A: key accounts (by "
           "value and influence, or the one-vote rule: ");
    fig(R, "b", "", "/grading/one_vote_grade_a", "int");
    put(R, " customers); D: no purchases.</p><table><thead><tr><th>grade</th><th class=\"num\">"
           "customers</th><th></th><th class=\"num\">monetary</th><th class=\"num\">profit</th>"
           "<th class=\"num\">profit per customer</th></tr></thead><tbody>");
    double max = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)g, k, v)
        max = fmax(max, json_number_value(v));
    json_object_foreach((json_t *)g, k, v) {
        char ptr[64], name[64];
        const labelstat *s = find_label(&F->grade, k);
        put(R, "<tr><td><span class=\"badge\">");
        esc(R, k);
        put(R, "</span></td>");
        fig(R, "td", "num", pointer(ptr, sizeof ptr, "grading", "grades", k, NULL), "int");
        bar(R, json_number_value(v), max, "");
        snprintf(name, sizeof name, "grade_monetary:%s", k);
        calc(R, "td", "num", s ? s->monetary : 0, name, "money");
        snprintf(name, sizeof name, "grade_profit:%s", k);
        calc(R, "td", "num", s ? s->profit : 0, name, "money");
        snprintf(name, sizeof name, "grade_profit_per_customer:%s", k);
        calc(R, "td", "num", s && s->n ? s->profit / (double)s->n : 0, name, "money");
        put(R, "</tr>");
    }
    put(R, "</tbody></table></section>\n");
}

static void section_grid(rep *R, const segfig *F)
{
    const json_t *gc = jget(R->S, "/grading/grid_classes");
    if (json_object_size(gc) == 0 || !F->has_grid)
        return;
    put(R, "<section id=\"grid\"><h2>Satisfaction × volume</h2><p class=\"note\">Customers and "
           "profit per class; G is large and unhappy: fix first. Colour: profit of the class.");
    if (json_is_false(jget(R->S, "/grading/used_satisfaction")))
        put(R, " The customer master has no satisfaction: no class.");
    put(R, "</p><table class=\"grid3\"><thead><tr><th></th><th>large volume</th><th>medium "
           "volume</th><th>small volume</th></tr></thead><tbody>");
    static const char *const rows[3] = {"high satisfaction", "medium satisfaction",
                                        "low satisfaction"};
    double maxp = 0;
    for (size_t i = 0; i < F->grid.n; i++)
        maxp = fmax(maxp, fabs(F->grid.v[i].profit));
    for (int i = 0; i < 3; i++) {
        P("<tr><th>%s</th>", rows[i]);
        for (int j = 0; j < 3; j++) {
            char k[2] = {(char)('A' + i * 3 + j), 0}, ptr[64], name[64], txt[64];
            const labelstat *s = find_label(&F->grid, k);
            double p = s ? s->profit : 0;
            char col[8];
            if (p >= 0)
                blue(maxp > 0 ? 0.1 + 0.6 * p / maxp : 0, col, sizeof col);
            else
                snprintf(col, sizeof col, "%s", maxp > 0 && -p / maxp > 0.2 ? "#f3b7b7" : "#fbe3e3");
            bool dark = p >= 0 && maxp > 0 && 0.1 + 0.6 * p / maxp > 0.55;
            P("<td class=\"cell%s\" style=\"background:%s\"><div class=\"cls\">%s</div>",
              dark ? " dark" : "", col, k);
            fig(R, "div", "cnt", pointer(ptr, sizeof ptr, "grading", "grid_classes", k, NULL),
                "int");
            snprintf(name, sizeof name, "grid_profit:%s", k);
            P("<div class=\"sub\">profit <span data-calc=\"%s\" data-value=\"%.17g\" "
              "data-format=\"compact\">%s</span></div></td>", name, p,
              fmt_compact(p, txt, sizeof txt));
        }
        put(R, "</tr>");
    }
    put(R, "</tbody></table>");
    if (json_is_integer(jget(R->S, "/grading/buyers_without_satisfaction"))) {
        put(R, "<p class=\"note\">");
        fig(R, "b", "", "/grading/buyers_without_satisfaction", "int");
        put(R, " customers with purchases have no satisfaction value and no class.</p>");
    }
    put(R, "</section>\n");
}

/* Shares written as fractions (0..1) are shown as percentages. */
static void csv_cell(rep *R, const cvm_runcsv *r, size_t c)
{
    const char *name = r->names[c];
    double x;
    char buf[64];
    if (strncmp(name, "share_", 6) == 0 && cvm_runcsv_num(r, c, &x)) {
        fmt_value(x, "pct", buf, sizeof buf);
        P("<td class=\"num\">%s</td>", buf);
    } else if (cvm_runcsv_num(r, c, &x)) {
        if (fabs(x) >= 1000)
            fmt_fixed(x, 0, buf, sizeof buf);
        else
            snprintf(buf, sizeof buf, "%.4g", x);
        P("<td class=\"num\">%s</td>", buf);
    } else {
        put(R, "<td>");
        cvm_sbuf_html(&R->h, r->field[c], r->len[c]);
        put(R, "</td>");
    }
}

static int section_clusters(rep *R, cvm_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/clusters.csv", R->dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return CVM_OK;
    cvm_runcsv r;
    CVM_TRY(cvm_runcsv_open(&r, path, err));
    static const char *const want[] = {"cluster", "label", "size", "share_customers",
                                       "share_revenue", "share_profit", "mean_recency_days",
                                       "mean_frequency", "mean_monetary", "distinguishing"};
    int cols[16];
    size_t nc = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        int c = cvm_runcsv_col(&r, want[i]);
        if (c >= 0)
            cols[nc++] = c;
    }
    if (nc < 3) /* an unknown layout: its first columns as they are */
        for (nc = 0; nc < r.n_cols && nc < 10; nc++)
            cols[nc] = (int)nc;
    int sc = cvm_runcsv_col(&r, "share_customers"), sr = cvm_runcsv_col(&r, "share_revenue");
    put(R, "<section class=\"wide\" id=\"clusters\"><h2>Cluster profiles</h2><p class=\"note\">"
           "From clusters.csv: the k-means segments, their size and value");
    if (sc >= 0 && sr >= 0)
        put(R, "; bars: share of customers (grey) and of revenue (blue)");
    put(R, ".</p><table><thead><tr>");
    for (size_t i = 0; i < nc; i++) {
        const char *n = r.names[cols[i]];
        bool text = strcmp(n, "label") == 0 || strcmp(n, "distinguishing") == 0;
        P("<th%s>", text ? (n[0] == 'l' ? " class=\"lab\"" : " class=\"dist\"") : " class=\"num wrap\"");
        for (const char *c = n; *c; c++)
            cvm_sbuf_html(&R->h, *c == '_' ? " " : c, 1);
        put(R, "</th>");
    }
    if (sc >= 0 && sr >= 0)
        put(R, "<th>customers / revenue</th>");
    put(R, "</tr></thead><tbody>");
    int s, rows = 0;
    while ((s = cvm_runcsv_next(&r, err)) > 0 && rows < 50) {
        rows++;
        put(R, "<tr>");
        for (size_t i = 0; i < nc; i++)
            csv_cell(R, &r, (size_t)cols[i]);
        double a, b;
        if (sc >= 0 && sr >= 0 && cvm_runcsv_num(&r, (size_t)sc, &a) &&
            cvm_runcsv_num(&r, (size_t)sr, &b))
            P("<td class=\"barcell\"><span class=\"bar grey\" style=\"width:%.1f%%\"></span><br>"
              "<span class=\"bar\" style=\"width:%.1f%%\"></span></td>",
              fmax(0, fmin(100, a * 100)), fmax(0, fmin(100, b * 100)));
        else if (sc >= 0 && sr >= 0)
            put(R, "<td></td>");
        put(R, "</tr>");
    }
    P("</tbody></table><p class=\"note\" data-calc=\"clusters\" data-value=\"%d\" "
      "data-format=\"int\">%d clusters</p></section>\n", rows, rows);
    cvm_runcsv_close(&r);
    return s < 0 ? s : CVM_OK;
}

typedef struct rule_row {
    double lift, support, confidence;
    char *ante, *cons;
    long long count;
} rule_row;

static int section_rules(rep *R, cvm_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/rules.csv", R->dir);
    struct stat st;
    if (stat(path, &st) != 0)
        return CVM_OK;
    cvm_runcsv r;
    CVM_TRY(cvm_runcsv_open(&r, path, err));
    int cl = cvm_runcsv_col(&r, "lift"), cs = cvm_runcsv_col(&r, "support");
    int cc = cvm_runcsv_col(&r, "confidence"), cn = cvm_runcsv_col(&r, "count");
    int ca = cvm_runcsv_col(&r, "antecedent_names"), cq = cvm_runcsv_col(&r, "consequent_name");
    int seg = cvm_runcsv_col(&r, "segment");
    if (ca < 0)
        ca = cvm_runcsv_col(&r, "antecedent_ids");
    if (cq < 0)
        cq = cvm_runcsv_col(&r, "consequent_id");
    if (cl < 0 || ca < 0 || cq < 0) {
        cvm_runcsv_close(&r);
        return CVM_OK;
    }
    rule_row top[TOP_RULES];
    size_t nt = 0;
    long long total = 0;
    int s, rc = CVM_OK;
    /* Rules mined over all customers only, when the file also has per-segment rules. */
    for (int pass = 0; pass < 2 && rc == CVM_OK; pass++) {
        cvm_runcsv_rewind(&r);
        while (rc == CVM_OK && (s = cvm_runcsv_next(&r, err)) > 0) {
            if (pass == 0 && seg >= 0 &&
                !(r.len[seg] == 5 && memcmp(r.field[seg], "(all)", 5) == 0))
                continue;
            double lift;
            if (!cvm_runcsv_num(&r, (size_t)cl, &lift))
                continue;
            total++;
            size_t pos = nt;
            while (pos > 0 && top[pos - 1].lift < lift)
                pos--;
            if (pos >= TOP_RULES)
                continue;
            if (nt == TOP_RULES) {
                cvm_free(top[nt - 1].ante);
                cvm_free(top[nt - 1].cons);
                nt--;
            }
            memmove(&top[pos + 1], &top[pos], (nt - pos) * sizeof *top);
            nt++;
            rule_row *e = &top[pos];
            e->lift = lift;
            e->support = e->confidence = NAN;
            e->count = -1;
            double x;
            if (cs >= 0 && cvm_runcsv_num(&r, (size_t)cs, &x))
                e->support = x;
            if (cc >= 0 && cvm_runcsv_num(&r, (size_t)cc, &x))
                e->confidence = x;
            if (cn >= 0 && cvm_runcsv_num(&r, (size_t)cn, &x))
                e->count = (long long)x;
            e->ante = cvm_strndup(r.field[ca], r.len[ca]);
            e->cons = cvm_strndup(r.field[cq], r.len[cq]);
            if (!e->ante || !e->cons)
                rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory");
        }
        if (rc == CVM_OK && s < 0)
            rc = s;
        if (total > 0 || seg < 0)
            break;
    }
    if (rc == CVM_OK) {
        put(R, "<section class=\"wide\" id=\"rules\"><h2>Top rules by lift</h2><p class=\"note\">"
               "From rules.csv: customers who buy the left side also buy the right side, "
               "lift times more often than chance.</p><table><thead><tr><th>if the order has</th>"
               "<th>then also</th><th class=\"num\">support</th><th class=\"num\">confidence</th>"
               "<th class=\"num\">lift</th><th class=\"num\">orders</th></tr></thead><tbody>");
        for (size_t i = 0; i < nt; i++) {
            char a[64], b[64], c[64];
            put(R, "<tr><td>");
            esc(R, top[i].ante);
            put(R, "</td><td>");
            esc(R, top[i].cons);
            P("</td><td class=\"num\">%s</td><td class=\"num\">%s</td><td class=\"num\" "
              "data-calc=\"rule_lift:%zu\" data-value=\"%.17g\" data-format=\"num\">%.4g</td>"
              "<td class=\"num\">%s</td></tr>",
              isnan(top[i].support) ? "" : fmt_value(top[i].support, "pct2", a, sizeof a),
              isnan(top[i].confidence) ? "" : fmt_value(top[i].confidence, "pct", b, sizeof b),
              i + 1, top[i].lift, top[i].lift,
              top[i].count < 0 ? "" : fmt_int(top[i].count, c, sizeof c));
        }
        P("</tbody></table><p class=\"note\"><span data-calc=\"rules\" data-value=\"%lld\" "
          "data-format=\"int\">%lld</span> rules in all.</p></section>\n", total, total);
    }
    for (size_t i = 0; i < nt; i++) {
        cvm_free(top[i].ante);
        cvm_free(top[i].cons);
    }
    cvm_runcsv_close(&r);
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double quantile(const double *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

/* Histogram of sorted values on [lo, hi]; values above hi go to the last bin. */
static void histogram(rep *R, const char *name, vec *a, double lo, double hi, bool share_axis)
{
    qsort(a->v, a->n, sizeof *a->v, cmp_double);
    long long cnt[HIST_BINS] = {0};
    for (size_t i = 0; i < a->n; i++) {
        int k = hi > lo ? (int)floor((a->v[i] - lo) / (hi - lo) * HIST_BINS) : 0;
        if (k < 0)
            k = 0;
        if (k >= HIST_BINS)
            k = HIST_BINS - 1;
        cnt[k]++;
    }
    long long mx = 1;
    for (int k = 0; k < HIST_BINS; k++)
        if (cnt[k] > mx)
            mx = cnt[k];
    const double X0 = 50, X1 = 590, Y0 = 10, Y1 = 170;
    double w = (X1 - X0) / HIST_BINS;
    put(R, "<svg class=\"chart\" viewBox=\"0 0 600 200\" role=\"img\" aria-label=\"");
    esc(R, name);
    put(R, " distribution\">");
    for (int k = 0; k < HIST_BINS; k++) {
        double h = (Y1 - Y0) * (double)cnt[k] / (double)mx;
        P("<rect class=\"hbar\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
          "data-calc=\"%s_bin:%d\" data-value=\"%lld\" data-format=\"int\"><title>%lld</title>"
          "</rect>", X0 + k * w + 1, Y1 - h, w - 2, h, name, k, cnt[k], cnt[k]);
    }
    P("<line class=\"axisl\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", X0, X1, Y1, Y1);
    for (int k = 0; k <= HIST_BINS; k += 5) {
        char t[32];
        double v = lo + (hi - lo) * k / HIST_BINS;
        if (share_axis)
            snprintf(t, sizeof t, "%.2f", v);
        else
            fmt_compact(v, t, sizeof t);
        P("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s%s</text>",
          X0 + k * w, Y1 + 16, t, k == HIST_BINS && !share_axis ? "+" : "");
    }
    P("<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%lld</text>", X0 - 6,
      Y0 + 8, mx);
    put(R, "</svg>");
}

static void dist_stats(rep *R, const char *name, const vec *a, const char *format)
{
    double sum = 0;
    for (size_t i = 0; i < a->n; i++)
        sum += a->v[i];
    bool money = strcmp(format, "money") == 0;
    char key[96];
    if (a->n == 0) {
        put(R, "<p class=\"note\">No customer has a value.</p>");
        return;
    }
    P("<table class=\"stats\"><thead><tr><th class=\"num\">customers</th><th class=\"num\">mean"
      "</th><th class=\"num\">median</th><th class=\"num\">90th percentile</th>%s</tr></thead>"
      "<tbody><tr>", money ? "<th class=\"num\">total</th>" : "");
    snprintf(key, sizeof key, "%s_count", name);
    calc(R, "td", "num", (double)a->n, key, "int");
    snprintf(key, sizeof key, "%s_mean", name);
    calc(R, "td", "num", a->n ? sum / (double)a->n : 0, key, format);
    snprintf(key, sizeof key, "%s_median", name);
    calc(R, "td", "num", quantile(a->v, a->n, 0.5), key, format);
    snprintf(key, sizeof key, "%s_p90", name);
    calc(R, "td", "num", quantile(a->v, a->n, 0.9), key, format);
    if (money) {
        snprintf(key, sizeof key, "%s_total", name);
        calc(R, "td", "num", sum, key, format);
    }
    put(R, "</tr></tbody></table>");
}

static void section_dist(rep *R, segfig *F)
{
    if (!F->has_clv && !F->has_alive)
        return;
    put(R, "<section id=\"clv\"><h2>CLV and P(alive)</h2>");
    if (F->has_clv) {
        put(R, "<h3>Customer lifetime value (clv)</h3>");
        if (F->clv.n) {
            qsort(F->clv.v, F->clv.n, sizeof *F->clv.v, cmp_double);
            double lo = fmin(0, F->clv.v[0]), hi = quantile(F->clv.v, F->clv.n, 0.99);
            if (!(hi > lo))
                hi = F->clv.v[F->clv.n - 1] > lo ? F->clv.v[F->clv.n - 1] : lo + 1;
            histogram(R, "clv", &F->clv, lo, hi, false);
            put(R, "<p class=\"note\">The last bar holds every value from the 99th percentile "
                   "up.</p>");
        }
        dist_stats(R, "clv", &F->clv, "money");
    }
    if (F->has_alive) {
        put(R, "<h3>Probability that the customer is still active (p_alive)</h3>");
        if (F->alive.n)
            histogram(R, "p_alive", &F->alive, 0, 1, true);
        dist_stats(R, "p_alive", &F->alive, "num");
    }
    put(R, "</section>\n");
}

static int churn_rank(const char *s)
{
    return strcmp(s, "high") == 0 ? 0 : strcmp(s, "medium") == 0 ? 1 : strcmp(s, "low") == 0 ? 2 : 3;
}

static int cmp_churn(const void *a, const void *b)
{
    const labelstat *x = a, *y = b;
    int d = churn_rank(x->name) - churn_rank(y->name);
    return d ? d : strcmp(x->name, y->name);
}

static void section_actions(rep *R, segfig *F)
{
    const json_t *counts = jget(R->S, "/actions/counts");
    put(R, "<section id=\"actions\"><h2>Actions and churn risk</h2>");
    if (json_object_size(counts)) {
        double max = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)counts, k, v)
            max = fmax(max, json_number_value(v));
        put(R, "<table><thead><tr><th>action</th><th class=\"num\">customers</th><th></th></tr>"
               "</thead><tbody>");
        json_object_foreach((json_t *)counts, k, v) {
            char ptr[512];
            put(R, "<tr><td><code>");
            esc(R, k);
            put(R, "</code></td>");
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "actions", "counts", k, NULL), "int");
            bar(R, json_number_value(v), max, "");
            put(R, "</tr>");
        }
        put(R, "<tr><td>no rule matched</td>");
        fig(R, "td", "num", "/actions/unmatched", "int");
        put(R, "<td></td></tr></tbody></table>");
    }
    if (F->has_churn) {
        qsort(F->churn.v, F->churn.n, sizeof *F->churn.v, cmp_churn);
        double max = 0;
        for (size_t i = 0; i < F->churn.n; i++)
            max = fmax(max, (double)F->churn.v[i].n);
        put(R, "<table><thead><tr><th>churn risk</th><th class=\"num\">customers</th><th></th>"
               "<th class=\"num\">monetary</th></tr></thead><tbody>");
        for (size_t i = 0; i < F->churn.n; i++) {
            char key[96];
            put(R, "<tr><td>");
            esc(R, F->churn.v[i].name);
            put(R, "</td>");
            snprintf(key, sizeof key, "churn_risk:%s", F->churn.v[i].name);
            calc(R, "td", "num", (double)F->churn.v[i].n, key, "int");
            bar(R, (double)F->churn.v[i].n, max, churn_rank(F->churn.v[i].name) == 0 ? "red" : "");
            snprintf(key, sizeof key, "churn_risk_monetary:%s", F->churn.v[i].name);
            calc(R, "td", "num", F->churn.v[i].monetary, key, "money");
            put(R, "</tr>");
        }
        put(R, "</tbody></table>");
    }
    put(R, "</section>\n");
}

static void section_changes(rep *R)
{
    const json_t *C = jget(R->S, "/changes");
    if (C == NULL)
        return;
    put(R, "<section class=\"wide\" id=\"changes\"><h2>Since the previous run</h2>");
    const char *prev = json_string_value(json_object_get(C, "previous_run"));
    if (prev == NULL) {
        put(R, "<p class=\"note\">No previous run in this output directory: nothing to compare "
               "yet.</p></section>\n");
        return;
    }
    const char *e = json_string_value(json_object_get(C, "error"));
    put(R, "<p class=\"note\">Compared with <code>");
    esc(R, prev);
    put(R, "</code>");
    const char *pa = json_string_value(json_object_get(C, "previous_as_of"));
    if (pa) {
        put(R, " (as of ");
        esc(R, pa);
        put(R, ")");
    }
    put(R, ". Every change per customer is in changes.csv.</p>");
    if (e) {
        put(R, "<p class=\"note\">No comparison: ");
        esc(R, e);
        put(R, "</p></section>\n");
        return;
    }
    put(R, "<div class=\"kpis\">");
    kpi(R, "customers in both runs", "/changes/customers/both", "int");
    kpi(R, "new customers", "/changes/customers/new", "int");
    kpi(R, "customers gone", "/changes/customers/gone", "int");
    kpi(R, "customers newly at risk", "/changes/newly_at_risk/customers", "int");
    kpi(R, "their monetary value", "/changes/newly_at_risk/monetary", "money");
    put(R, "</div><div class=\"two\">");

    const json_t *m = json_object_get(json_object_get(C, "migrations"), "grade");
    if (json_object_size(m)) {
        const char *cols[64];
        size_t nc = 0;
        const char *from, *to;
        json_t *row, *v;
        json_object_foreach((json_t *)m, from, row)
            json_object_foreach(row, to, v) {
                size_t i = 0;
                while (i < nc && strcmp(cols[i], to) != 0)
                    i++;
                if (i == nc && nc < 64)
                    cols[nc++] = to;
            }
        put(R, "<div><h3>Grade migration</h3><table class=\"matrix\"><thead><tr><th>before \\ "
               "after</th>");
        for (size_t i = 0; i < nc; i++) {
            put(R, "<th class=\"num\">");
            esc(R, cols[i]);
            put(R, "</th>");
        }
        put(R, "</tr></thead><tbody>");
        json_object_foreach((json_t *)m, from, row) {
            put(R, "<tr><th>");
            esc(R, from);
            put(R, "</th>");
            for (size_t i = 0; i < nc; i++) {
                char ptr[512];
                if (json_object_get(row, cols[i]) == NULL) {
                    put(R, "<td class=\"num zero\">·</td>");
                    continue;
                }
                fig(R, "td", strcmp(from, cols[i]) == 0 ? "num diag" : "num moved",
                    pointer(ptr, sizeof ptr, "changes", "migrations", "grade", from, cols[i], NULL),
                    "int");
            }
            put(R, "</tr>");
        }
        put(R, "</tbody></table></div>");
    }
    const json_t *sz = json_object_get(json_object_get(C, "sizes"), "rfm_segment");
    if (json_object_size(sz)) {
        put(R, "<div><h3>RFM segment sizes</h3><table><thead><tr><th>segment</th><th class=\"num\">"
               "before</th><th class=\"num\">after</th><th class=\"num\">change</th><th class="
               "\"num\">monetary after</th></tr></thead><tbody>");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)sz, k, v) {
            char ptr[512];
            put(R, "<tr><td>");
            esc(R, k);
            put(R, "</td>");
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "changes", "sizes", "rfm_segment", k, "old", NULL), "int");
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "changes", "sizes", "rfm_segment", k, "new", NULL), "int");
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "changes", "sizes", "rfm_segment", k, "delta", NULL), "int");
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "changes", "sizes", "rfm_segment", k, "new_monetary", NULL), "money");
            put(R, "</tr>");
        }
        put(R, "</tbody></table></div>");
    }
    put(R, "</div>");
    const json_t *top = json_object_get(json_object_get(C, "newly_at_risk"), "top");
    if (json_array_size(top)) {
        put(R, "<h3>Most valuable customers newly at risk</h3><table><thead><tr><th>customer"
               "</th><th>segment before</th><th>segment now</th><th>grade</th><th class=\"num\">"
               "monetary</th><th class=\"num\">profit</th></tr></thead><tbody>");
        size_t i;
        json_t *t;
        json_array_foreach(top, i, t) {
            char ptr[128], idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            static const char *const f[4] = {"customer_id", "old_segment", "new_segment", "grade"};
            put(R, "<tr>");
            for (int k = 0; k < 4; k++) {
                put(R, "<td>");
                esc(R, json_string_value(json_object_get(t, f[k])) ? json_string_value(json_object_get(t, f[k])) : "");
                put(R, "</td>");
            }
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "changes", "newly_at_risk", "top", idx, "monetary", NULL), "money");
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "changes", "newly_at_risk", "top", idx, "profit", NULL), "money");
            put(R, "</tr>");
        }
        put(R, "</tbody></table>");
    }
    put(R, "</section>\n");
}

static void section_rejects(rep *R)
{
    put(R, "<section id=\"rejects\"><h2>Rejects</h2><p class=\"note\">");
    fig(R, "b", "", "/rejects/total", "int");
    put(R, " rows in rejects.csv; ");
    fig(R, "b", "", "/rejects/transaction_reject_ratio", "pct2");
    put(R, " of the transaction rows were rejected.</p>");
    const json_t *by = jget(R->S, "/rejects/by_reason");
    if (json_object_size(by)) {
        double max = 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)by, k, v)
            max = fmax(max, json_number_value(v));
        put(R, "<table><thead><tr><th>reason</th><th class=\"num\">rows</th><th></th></tr>"
               "</thead><tbody>");
        json_object_foreach((json_t *)by, k, v) {
            char ptr[512];
            put(R, "<tr><td><code>");
            esc(R, k);
            put(R, "</code></td>");
            fig(R, "td", "num", pointer(ptr, sizeof ptr, "rejects", "by_reason", k, NULL), "int");
            bar(R, json_number_value(v), max, "red");
            put(R, "</tr>");
        }
        put(R, "</tbody></table>");
    }
    put(R, "</section>\n");
}

static void section_timings(rep *R)
{
    const json_t *t = jget(R->S, "/timings");
    if (json_object_size(t) == 0)
        return;
    put(R, "<section id=\"timings\"><h2>Stage timings</h2><p class=\"note\">Wall-clock seconds "
           "per stage of this run (ingest_* are parts of ingest; the report and later "
           "publishers finish after this page was written). Peak memory: ");
    fig(R, "b", "", "/peak_rss_mb", "num");
    put(R, " MiB.</p><table><thead><tr><th>stage</th><th class=\"num\">seconds</th><th></th>"
           "</tr></thead><tbody>");
    double max = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)t, k, v)
        max = fmax(max, json_number_value(v));
    json_object_foreach((json_t *)t, k, v) {
        char ptr[512];
        put(R, "<tr><td>");
        esc(R, k);
        put(R, "</td>");
        fig(R, "td", "num", pointer(ptr, sizeof ptr, "timings", k, NULL), "sec");
        bar(R, json_number_value(v), max, strncmp(k, "ingest_", 7) == 0 ? "grey" : "");
        put(R, "</tr>");
    }
    put(R, "</tbody></table></section>\n");
}

static void section_degraded(rep *R)
{
    const json_t *d = jget(R->S, "/degraded");
    if (json_array_size(d) == 0)
        return;
    put(R, "<section id=\"degraded\"><h2>What this run did without</h2><ul>");
    size_t i;
    json_t *v;
    json_array_foreach(d, i, v) {
        put(R, "<li>");
        esc(R, json_string_value(v) ? json_string_value(v) : "");
        put(R, "</li>");
    }
    put(R, "</ul></section>\n");
}

static const char css[] =
    ":root{--ink:#1f2933;--muted:#5a6b7b;--line:#dde3ea;--bg:#f3f5f8;--card:#fff;"
    "--accent:#2f6fb0;--neg:#b83232}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',"
    "Arial,sans-serif;color:var(--ink);background:var(--bg)}"
    "header{background:#153a63;color:#fff;padding:18px 28px}"
    "header h1{margin:0 0 4px;font-size:22px;font-weight:600}"
    "header p{margin:0;color:#c9d7e6}header code{color:#fff}"
    "main{display:grid;grid-template-columns:repeat(auto-fit,minmax(560px,1fr));gap:16px;"
    "grid-auto-flow:row dense;"
    "padding:16px 28px}"
    "section{background:var(--card);border:1px solid var(--line);border-radius:6px;"
    "padding:14px 18px;min-width:0;overflow-x:auto}"
    "section.wide{grid-column:1/-1}"
    "h2{font-size:16px;margin:0 0 8px;color:#153a63}h3{font-size:14px;margin:14px 0 6px}"
    "p.note{color:var(--muted);margin:2px 0 10px;font-size:13px}"
    "table{border-collapse:collapse;width:100%;font-size:13px;margin:4px 0 8px}"
    "th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;"
    "vertical-align:middle}"
    "th{color:var(--muted);font-weight:600}th.wrap{white-space:normal}"
    "th.lab{min-width:150px}th.dist{min-width:240px}"
    ".num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}"
    ".neg{color:var(--neg)}"
    ".kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:10px;"
    "margin-bottom:6px}"
    ".kpi{border:1px solid var(--line);border-radius:6px;padding:8px 12px;background:#fafbfc}"
    ".kpi .v{font-size:19px;font-weight:600;font-variant-numeric:tabular-nums}"
    ".kpi .l{color:var(--muted);font-size:12px}"
    ".barcell{width:32%}"
    ".bar{display:inline-block;height:10px;min-width:1px;background:var(--accent);"
    "border-radius:2px}"
    ".bar.grey{background:#a9b4c0}.bar.red{background:#d05b5b}"
    ".badge{display:inline-block;min-width:22px;text-align:center;border-radius:4px;"
    "background:#153a63;color:#fff;font-weight:600}"
    ".grid3 td.cell{text-align:center;width:28%;border:2px solid #fff;padding:8px}"
    ".grid3 .cls{font-size:18px;font-weight:700}.grid3 .cnt{font-size:16px}"
    ".grid3 .sub{font-size:12px}.grid3 td.dark{color:#fff}"
    ".matrix td.diag{color:var(--muted)}.matrix td.moved{font-weight:600;background:#fff6e0}"
    ".matrix td.zero{color:#c0c8d0}"
    ".two{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:16px}"
    "svg.chart{width:100%;height:auto;max-width:720px;display:block}"
    "svg .grid{stroke:#e6eaef;stroke-width:1}svg .axisl{stroke:#8795a1}"
    "svg .ref{stroke:#d05b5b;stroke-dasharray:5 4;stroke-width:1.2}"
    "svg .curve{fill:none;stroke:var(--accent);stroke-width:2.2}"
    "svg .mark{fill:#d05b5b}svg .hbar{fill:var(--accent)}"
    "svg text{font-family:inherit}svg .tick{font-size:11px;fill:var(--muted)}"
    "svg .axis{font-size:12px;fill:var(--ink)}svg .lbl{font-size:12px;fill:#b83232}"
    "svg .cellv{font-size:13px;font-weight:600}svg .cells{font-size:10px}"
    "code{font-size:12px}ul{margin:4px 0 0 18px;padding:0}"
    "footer{padding:6px 28px 24px;color:var(--muted);font-size:12px}";

static int build(rep *R, cvm_err *err)
{
    const json_t *S = R->S;
    const char *job = json_string_value(json_object_get(S, "job"));
    const char *run_id = json_string_value(json_object_get(S, "run_id"));
    const char *as_of = json_string_value(json_object_get(S, "as_of"));
    const char *started = json_string_value(json_object_get(S, "started_at"));
    const char *ver = json_string_value(json_object_get(S, "cvm_version"));
    segfig F;
    int bins = (int)json_integer_value(jget(S, "/rfm/bins"));
    int rc = read_segments(R->dir, bins, &F, err);
    if (rc != CVM_OK) {
        segfig_clear(&F);
        return rc;
    }
    put(R, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>"
           "Customer value report: ");
    esc(R, job ? job : "");
    put(R, " ");
    esc(R, run_id ? run_id : "");
    put(R, "</title><style>");
    put(R, css);
    put(R, "</style></head><body><header><h1>Customer value report</h1><p>job <b>");
    esc(R, job ? job : "");
    put(R, "</b> · run <code>");
    esc(R, run_id ? run_id : "");
    put(R, "</code> · as of <b>");
    esc(R, as_of ? as_of : "");
    put(R, "</b> · started ");
    esc(R, started ? started : "");
    put(R, "</p></header><main>\n");
    section_overview(R);
    section_pareto(R, &F);
    section_rfm(R, &F);
    section_grid(R, &F);
    section_grades(R, &F);
    section_segments(R);
    rc = section_clusters(R, err);
    if (rc == CVM_OK)
        rc = section_rules(R, err);
    if (rc == CVM_OK) {
        section_dist(R, &F);
        section_actions(R, &F);
        section_changes(R);
        section_rejects(R);
        section_timings(R);
        section_degraded(R);
        put(R, "</main><footer id=\"end\">Written by cvm ");
        esc(R, ver ? ver : "");
        P(" from segments.csv (<span data-calc=\"segments_rows\" data-value=\"%zu\" "
          "data-format=\"int\">%zu</span> customers) and summary.json of this run directory. "
          "Self-contained: no scripts, no network.</footer></body></html>\n", F.rows, F.rows);
    }
    segfig_clear(&F);
    if (rc == CVM_OK && R->h.oom)
        rc = CVM_FAIL(err, CVM_ENOMEM, "out of memory writing the report");
    return rc;
}

int cvm_report_write(const char *run_dir, const void *summary, const char *out_path,
                     cvm_err *err)
{
    rep R = {{0}, summary, run_dir};
    int rc = build(&R, err);
    if (rc == CVM_OK) {
        FILE *f = fopen(out_path, "wb");
        if (f == NULL) {
            rc = CVM_FAIL(err, CVM_EIO, "%s: cannot create: %s", out_path, strerror(errno));
        } else {
            fwrite(R.h.s, 1, R.h.len, f);
            rc = cvm_publish_close(f, out_path, err);
        }
    }
    cvm_sbuf_free(&R.h);
    return rc;
}

/* ------------------------------------------------------------- publisher */

static const cvm_cfg_key report_schema[] = {
    {"output.report", CVM_CFG_BOOL, "true", NR, NULL,
     "Write report.html into every run directory: one self-contained page (inline SVG and CSS, "
     "no network) with the key figures, Pareto curve, RFM heat map, grades, grid, clusters, "
     "rules, CLV, actions, night-to-night changes, rejects and timings."},
};

static int report_run(cvm_publish_ctx *ctx, cvm_err *err)
{
    if (!cvm_config_bool(ctx->cfg, "output.report"))
        return CVM_OK;
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", ctx->run_dir);
    CVM_TRY(cvm_report_write(ctx->run_dir, ctx->summary, path, err));
    struct stat st;
    json_t *o = json_object();
    json_object_set_new(o, "bytes", json_integer(stat(path, &st) == 0 ? (json_int_t)st.st_size : 0));
    json_t *outputs = json_object_get(ctx->summary, "outputs");
    if (outputs)
        json_object_set_new(outputs, "report.html", o);
    else
        json_decref(o);
    return CVM_OK;
}

const cvm_publisher cvm_publisher_report = {
    "report", report_schema, sizeof report_schema / sizeof report_schema[0], NULL, report_run,
    "output.report",
};
