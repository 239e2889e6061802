#include "datetime.h"

#include <stdio.h>
#include <string.h>

/* Howard Hinnant's days_from_civil / civil_from_days: exact for the whole
 * proleptic Gregorian calendar, no tables, no time zone. */
int32_t cvm_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    const int era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (unsigned)((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int32_t)(era * 146097 + (int)doe - 719468);
}

void cvm_civil_from_days(int32_t z0, int *y, int *m, int *d)
{
    int z = z0 + 719468;
    const int era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int yy = (int)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yy + (*m <= 2);
}

bool cvm_date_valid(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
        return false;
    int lim = mdays[m - 1];
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        lim = 29;
    return d <= lim;
}

void cvm_date_format(int32_t day, char buf[11])
{
    int y, m, d;
    cvm_civil_from_days(day, &y, &m, &d);
    buf[0] = (char)('0' + (y / 1000) % 10);
    buf[1] = (char)('0' + (y / 100) % 10);
    buf[2] = (char)('0' + (y / 10) % 10);
    buf[3] = (char)('0' + y % 10);
    buf[4] = '-';
    buf[5] = (char)('0' + m / 10);
    buf[6] = (char)('0' + m % 10);
    buf[7] = '-';
    buf[8] = (char)('0' + d / 10);
    buf[9] = (char)('0' + d % 10);
    buf[10] = '\0';
}

int cvm_datefmt_compile(const char *format, cvm_datefmt *out, cvm_err *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->text, sizeof out->text, "%s", format ? format : "auto");
    if (format == NULL || *format == '\0' || strcmp(format, "auto") == 0) {
        out->is_auto = true;
        return CVM_OK;
    }
    bool have_y = false, have_m = false, have_d = false;
    for (const char *p = format; *p; p++) {
        if (out->n >= CVM_DATEFMT_MAX)
            return CVM_FAIL(err, CVM_ECONFIG, "date format '%s' is too long", format);
        if (*p != '%') {
            out->item[out->n] = 0;
            out->lit[out->n++] = *p;
            continue;
        }
        p++;
        switch (*p) {
        case 'Y': case 'y': have_y = true; break;
        case 'm': case 'b': have_m = true; break;
        case 'd': have_d = true; break;
        case 'H': case 'M': case 'S': break;
        case '%':
            out->item[out->n] = 0;
            out->lit[out->n++] = '%';
            continue;
        default:
            return CVM_FAIL(err, CVM_ECONFIG,
                            "date format '%s': unsupported conversion '%%%c' "
                            "(supported: %%Y %%y %%m %%d %%b %%H %%M %%S %%%%)",
                            format, *p ? *p : ' ');
        }
        out->item[out->n++] = *p;
    }
    if (!have_y || !have_m || !have_d)
        return CVM_FAIL(err, CVM_ECONFIG,
                        "date format '%s' must contain a year, a month and a day", format);
    return CVM_OK;
}

/* Reads 1..maxd digits; returns digits consumed (0 = none). */
static int digits(const char *s, size_t len, size_t *pos, int mind, int maxd, int *val)
{
    int v = 0, k = 0;
    while (k < maxd && *pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
        v = v * 10 + (s[*pos] - '0');
        (*pos)++;
        k++;
    }
    if (k < mind)
        return 0;
    *val = v;
    return k;
}

static bool time_ok(int hh, int mm, int ss)
{
    return hh >= 0 && hh <= 24 && mm >= 0 && mm <= 59 && ss >= 0 && ss <= 60;
}

/* ISO 8601 subset: YYYY-MM-DD or YYYYMMDD, optional [T ]HH:MM[:SS[.f]][Z|±HH[:MM]]. */
static bool parse_auto(const char *s, size_t len, int32_t *day)
{
    size_t p = 0;
    int y, m, d;
    if (!digits(s, len, &p, 4, 4, &y))
        return false;
    if (p < len && s[p] == '-') {
        p++;
        if (!digits(s, len, &p, 2, 2, &m) || p >= len || s[p] != '-')
            return false;
        p++;
        if (!digits(s, len, &p, 2, 2, &d))
            return false;
    } else {
        if (!digits(s, len, &p, 2, 2, &m) || !digits(s, len, &p, 2, 2, &d))
            return false;
    }
    if (!cvm_date_valid(y, m, d))
        return false;
    if (p < len) {
        if (s[p] != 'T' && s[p] != ' ')
            return false;
        p++;
        int hh, mm, ss = 0;
        if (!digits(s, len, &p, 2, 2, &hh) || p >= len || s[p] != ':')
            return false;
        p++;
        if (!digits(s, len, &p, 2, 2, &mm))
            return false;
        if (p < len && s[p] == ':') {
            p++;
            if (!digits(s, len, &p, 2, 2, &ss))
                return false;
            if (p < len && (s[p] == '.' || s[p] == ',')) {
                p++;
                int frac;
                if (!digits(s, len, &p, 1, 9, &frac))
                    return false;
            }
        }
        if (!time_ok(hh, mm, ss))
            return false;
        if (p < len && s[p] == 'Z')
            p++;
        else if (p < len && (s[p] == '+' || s[p] == '-')) {
            /* The offset is validated, not applied: days are local calendar days. */
            p++;
            int oh, om = 0;
            if (!digits(s, len, &p, 2, 2, &oh))
                return false;
            if (p < len && s[p] == ':')
                p++;
            if (p < len && !digits(s, len, &p, 2, 2, &om))
                return false;
            if (oh > 14 || om > 59)
                return false;
        }
    }
    if (p != len)
        return false;
    *day = cvm_days_from_civil(y, m, d);
    return true;
}

static const char *const month_abbr[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                           "jul", "aug", "sep", "oct", "nov", "dec"};

bool cvm_date_parse(const cvm_datefmt *f, const char *s, size_t len, int32_t *day)
{
    if (f->is_auto)
        return parse_auto(s, len, day);
    size_t p = 0;
    int y = -1, m = -1, d = -1, hh = 0, mm = 0, ss = 0;
    for (int i = 0; i < f->n; i++) {
        switch (f->item[i]) {
        case 0:
            if (p >= len || s[p] != f->lit[i])
                return false;
            p++;
            break;
        case 'Y':
            if (!digits(s, len, &p, 4, 4, &y))
                return false;
            break;
        case 'y':
            if (!digits(s, len, &p, 2, 2, &y))
                return false;
            y += y < 69 ? 2000 : 1900;
            break;
        case 'm':
            if (!digits(s, len, &p, 1, 2, &m))
                return false;
            break;
        case 'd':
            if (!digits(s, len, &p, 1, 2, &d))
                return false;
            break;
        case 'H':
            if (!digits(s, len, &p, 1, 2, &hh))
                return false;
            break;
        case 'M':
            if (!digits(s, len, &p, 1, 2, &mm))
                return false;
            break;
        case 'S':
            if (!digits(s, len, &p, 1, 2, &ss))
                return false;
            break;
        case 'b': {
            if (p + 3 > len)
                return false;
            char a[4] = {(char)(s[p] | 0x20), (char)(s[p + 1] | 0x20), (char)(s[p + 2] | 0x20), 0};
            m = -1;
            for (int k = 0; k < 12; k++)
                if (memcmp(a, month_abbr[k], 3) == 0)
                    m = k + 1;
            if (m < 0)
                return false;
            p += 3;
            break;
        }
        default:
            return false;
        }
    }
    if (p != len || !cvm_date_valid(y, m, d) || !time_ok(hh, mm, ss))
        return false;
    *day = cvm_days_from_civil(y, m, d);
    return true;
}

bool cvm_date_parse_iso(const char *s, int32_t *day)
{
    size_t len = strlen(s);
    if (len != 10)
        return false;
    return parse_auto(s, len, day);
}
