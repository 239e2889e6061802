/*
 * datetime.h - calendar dates as day numbers, and strptime-style parsing fast
 * enough for ten million lines.
 *
 * A day number is the count of days since 1970-01-01 (proleptic Gregorian),
 * so differences are whole calendar days and no time zone enters. Times of
 * day are parsed (and checked) but only the date is kept: every cvm measure
 * is in whole days.
 *
 *     cvm_datefmt f;
 *     if (cvm_datefmt_compile("%m/%d/%Y %H:%M", &f, &err) != CVM_OK) ...
 *     int32_t day;
 *     if (cvm_date_parse(&f, "3/7/2024 9:05", 13, &day)) ...   // true on success
 *
 * Formats: %Y (4 digits), %y (2 digits, 69-99 -> 19xx), %m and %d (1 or 2
 * digits), %H %M %S (1 or 2 digits), %b (English month abbreviation, any
 * case), %j is not supported, %% a literal percent, any other character must
 * match itself; "auto" accepts YYYY-MM-DD, YYYYMMDD, and either followed by
 * [T ]HH:MM[:SS[.fff]][Z|±HH:MM]. Trailing text after a complete format is an error.
 */
#ifndef CVM_DATETIME_H
#define CVM_DATETIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define CVM_DATEFMT_MAX 32

typedef struct cvm_datefmt {
    bool is_auto;
    int n;                       /* number of items */
    char item[CVM_DATEFMT_MAX];  /* conversion letter, or 0 for a literal */
    char lit[CVM_DATEFMT_MAX];   /* the literal character when item == 0 */
    char text[64];               /* the format as given, for messages */
} cvm_datefmt;

/** @brief Compile a format ("auto" or strptime-style); CVM_ECONFIG on an
 *  unsupported conversion. */
int cvm_datefmt_compile(const char *format, cvm_datefmt *out, cvm_err *err);
/** @brief Parse s[0..len) into a day number; false when it does not match or
 *  is not a real calendar date/time. */
bool cvm_date_parse(const cvm_datefmt *f, const char *s, size_t len, int32_t *day);

int32_t cvm_days_from_civil(int y, int m, int d);
void cvm_civil_from_days(int32_t day, int *y, int *m, int *d);
/** @brief true when y-m-d is a real date. */
bool cvm_date_valid(int y, int m, int d);
/** @brief Write YYYY-MM-DD and a NUL into buf (11 bytes). */
void cvm_date_format(int32_t day, char buf[11]);
/** @brief Parse exactly YYYY-MM-DD (config values); false otherwise. */
bool cvm_date_parse_iso(const char *s, int32_t *day);

#endif /* CVM_DATETIME_H */
