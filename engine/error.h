/*
 * error.h - status codes and error context for every cvm function.
 *
 * Every fallible function returns an int status: CVM_OK (0) or a negative
 * CVM_E* code from the table below, and fills a caller-supplied cvm_err with a
 * readable message (already naming file:line:column where input is at fault)
 * plus the source location that raised it. The library never prints or exits;
 * the job runner turns a status into a message and an exit code.
 *
 *     cvm_err err = {0};
 *     if (cvm_ingest_run(&opts, &table, &err) != CVM_OK)
 *         fprintf(stderr, "cvm: %s\n", err.msg);
 *
 * cvm_err is plain data, so each OpenMP thread can own one and the first
 * failure (in a fixed order) is copied into the caller's.
 */
#ifndef CVM_ERROR_H
#define CVM_ERROR_H

#include <stddef.h>

/* X-macro: name, value, message. Add new codes at the end. */
#define CVM_ERRNO_MAP(X)                                              \
    X(OK, 0, "success")                                               \
    X(ENOMEM, -1, "out of memory")                                    \
    X(EINVAL, -2, "invalid argument")                                 \
    X(ECONFIG, -3, "invalid configuration")                           \
    X(EDATA, -4, "invalid input data")                                \
    X(EIO, -5, "input/output error")                                  \
    X(ELIMIT, -6, "limit exceeded")                                   \
    X(EINTERNAL, -7, "internal error")                                \
    X(ENOTFOUND, -8, "not found")                                     \
    X(EBUSY, -9, "resource busy")

typedef enum {
#define CVM__ERR_ENUM(name, val, msg) CVM_##name = val,
    CVM_ERRNO_MAP(CVM__ERR_ENUM)
#undef CVM__ERR_ENUM
} cvm_status;

#define CVM_ERR_MSG_MAX 1024

typedef struct cvm_err {
    int status;                 /* last status recorded, CVM_OK when none */
    char msg[CVM_ERR_MSG_MAX];  /* human-readable, no trailing newline */
    const char *src_file;       /* where in cvm the error was raised */
    int src_line;
} cvm_err;

/** @brief Symbolic name of a status ("ENOMEM"), "UNKNOWN" for others. */
const char *cvm_strerror_name(int status);
/** @brief Generic message of a status ("out of memory"). */
const char *cvm_strerror(int status);

/**
 * @brief Record an error in err (may be NULL) and return status.
 * The message is printf-formatted; it is truncated at CVM_ERR_MSG_MAX.
 */
int cvm_err_set(cvm_err *err, int status, const char *src_file, int src_line,
                const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

/** @brief Prefix the existing message with more context ("loading x: ..."). */
int cvm_err_prefix(cvm_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/** Record and return: `return CVM_FAIL(err, CVM_EDATA, "bad %s", x);` */
#define CVM_FAIL(err, status, ...) \
    cvm_err_set((err), (status), __FILE__, __LINE__, __VA_ARGS__)

/** Propagate a non-OK status from an expression. */
#define CVM_TRY(expr)                    \
    do {                                 \
        int cvm__rc = (expr);            \
        if (cvm__rc != CVM_OK)           \
            return cvm__rc;              \
    } while (0)

#endif /* CVM_ERROR_H */
