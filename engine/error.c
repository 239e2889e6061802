#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *cvm_strerror_name(int status)
{
    switch (status) {
#define CVM__ERR_NAME(name, val, msg) \
    case val:                         \
        return #name;
        CVM_ERRNO_MAP(CVM__ERR_NAME)
#undef CVM__ERR_NAME
    }
    return "UNKNOWN";
}

const char *cvm_strerror(int status)
{
    switch (status) {
#define CVM__ERR_TEXT(name, val, msg) \
    case val:                         \
        return msg;
        CVM_ERRNO_MAP(CVM__ERR_TEXT)
#undef CVM__ERR_TEXT
    }
    return "unknown error";
}

int cvm_err_set(cvm_err *err, int status, const char *src_file, int src_line,
                const char *fmt, ...)
{
    if (err == NULL)
        return status;
    err->status = status;
    err->src_file = src_file;
    err->src_line = src_line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return status;
}

int cvm_err_prefix(cvm_err *err, const char *fmt, ...)
{
    if (err == NULL)
        return CVM_OK;
    char head[CVM_ERR_MSG_MAX];
    char old[CVM_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    /* Truncation is intended: a long message keeps its head. */
    size_t n = strlen(head);
    if (n > sizeof err->msg - 3)
        n = sizeof err->msg - 3;
    memcpy(err->msg, head, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3;
    size_t m = strnlen(old, room);
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
    return err->status;
}
