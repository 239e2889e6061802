#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double cvm_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cvm_log_init(cvm_log *l, bool quiet, bool json)
{
    memset(l, 0, sizeof *l);
    l->min_level = quiet ? CVM_LOG_WARN : CVM_LOG_INFO;
    l->json = json;
    l->progress = !quiet && !json && isatty(STDERR_FILENO);
    l->t0 = cvm_now();
    l->bar_width = 30;
    l->last_pct = -1;
}

static const char *level_name[] = {"debug", "info", "warn", "error"};

static void timestamp(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + k, len - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void clear_bar(cvm_log *l)
{
    if (l->progress && l->last_pct >= 0) {
        fputs("\r\033[K", stderr);
        l->last_pct = -1;
    }
}

static void emit(cvm_log *l, cvm_log_level level, const char *msg, const char *stage,
                 double seconds, const char *extra)
{
    if (level < l->min_level)
        return;
    clear_bar(l);
    char ts[40];
    timestamp(ts, sizeof ts);
    if (l->json) {
        json_t *o = json_object();
        json_object_set_new(o, "time", json_string(ts));
        json_object_set_new(o, "level", json_string(level_name[level]));
        json_object_set_new(o, "elapsed", json_real(cvm_now() - l->t0));
        if (stage) {
            json_object_set_new(o, "stage", json_string(stage));
            json_object_set_new(o, "seconds", json_real(seconds));
            if (extra)
                json_object_set_new(o, "detail", json_string(extra));
        }
        if (msg)
            json_object_set_new(o, "msg", json_string(msg));
        char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
        if (s) {
            fprintf(stderr, "%s\n", s);
            free(s);
        }
        json_decref(o);
    } else if (stage) {
        fprintf(stderr, "%s %-5s stage %-10s %8.3f s%s%s\n", ts, level_name[level], stage,
                seconds, extra ? "  " : "", extra ? extra : "");
    } else {
        fprintf(stderr, "%s %-5s %s\n", ts, level_name[level], msg);
    }
    fflush(stderr);
}

void cvm_log_msg(cvm_log *l, cvm_log_level level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(l, level, msg, NULL, 0, NULL);
}

void cvm_log_stage(cvm_log *l, const char *stage, double seconds, const char *extra)
{
    emit(l, CVM_LOG_INFO, NULL, stage, seconds, extra);
}

void cvm_log_progress(cvm_log *l, const char *stage, uint64_t done, uint64_t total)
{
    if (!l->progress || total == 0)
        return;
    int pct = (int)(100.0 * (double)done / (double)total);
    if (pct == l->last_pct)
        return;
    l->last_pct = pct;
    int fill = pct * l->bar_width / 100;
    char bar[128];
    int i = 0;
    for (; i < fill && i < 100; i++)
        bar[i] = '#';
    for (; i < l->bar_width && i < 100; i++)
        bar[i] = '.';
    bar[i] = '\0';
    fprintf(stderr, "\r%-10s [%s] %3d%%", stage, bar, pct);
    fflush(stderr);
}
