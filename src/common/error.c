/* The thread-local last error behind cellar_error_last(). */
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define ERROR_MAX 1024

static _Thread_local char error_msg[ERROR_MAX];
static _Thread_local int error_code;

const char *cellar_error_last(void)
{
    return error_msg;
}

int cellar_error_code(void)
{
    return error_code;
}

void cellar_error_clear(void)
{
    error_msg[0] = '\0';
    error_code = 0;
}

const char *cellar_error_name(int code)
{
    static const char *const names[] = {
        "OK",     "EIO",      "ENOMEM",  "EINVAL", "EFORMAT",      "ENOTFOUND",
        "EEXISTS", "EMISMATCH", "ECHANGED", "ENET", "EAUTH", "EUNSUPPORTED",
        "EBUSY",  "EDB",      "ERANGE",  "EUSER",
    };
    if (code > 0 || (size_t)-code >= sizeof names / sizeof names[0])
        return "EUNKNOWN";
    return names[-code];
}

void cellar_free(void *p)
{
    free(p);
}

unsigned cellar_version_number(void)
{
    return CELLAR_VERSION_NUMBER;
}

const char *cellar_version(void)
{
    return CELLAR_VERSION_STRING;
}

static int fail_v(int code, const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static int fail_v(int code, const char *suffix, const char *fmt, va_list ap)
{
    /* Format into a local first: fmt's arguments may point into error_msg. */
    char tmp[ERROR_MAX];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    if (suffix)
        snprintf(error_msg, sizeof error_msg, "%s: %s", tmp, suffix);
    else
        memcpy(error_msg, tmp, sizeof tmp);
    error_code = code;
    return code;
}

int cellar_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_v(code, NULL, fmt, ap);
    va_end(ap);
    return code;
}

int cellar_fail_errno(int err, const char *fmt, ...)
{
    int code;
    switch (err) {
    case ENOENT:
    case ENOTDIR:
        code = CELLAR_ENOTFOUND;
        break;
    case EEXIST:
        code = CELLAR_EEXISTS;
        break;
    case ENOMEM:
        code = CELLAR_ENOMEM;
        break;
    default:
        code = CELLAR_EIO;
    }
    va_list ap;
    va_start(ap, fmt);
    fail_v(code, strerror(err), fmt, ap);
    va_end(ap);
    return code;
}

int cellar_fail_prefix(const char *fmt, ...)
{
    char prefix[ERROR_MAX], tmp[ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(tmp, sizeof tmp, "%s: %s", prefix, error_msg);
    memcpy(error_msg, tmp, sizeof tmp);
    return error_code;
}
