/* Helpers shared by the verbs: error printing, JSON strings, sizes. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int cli_error_last(void)
{
    const char *m = cellar_error_last();
    fprintf(stderr, "cellar: %s\n", *m ? m : "unknown error");
    return CLI_FAIL;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("cellar: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return CLI_FAIL;
}

int cli_usage(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cellar %s: ", verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'cellar %s --help' for usage.\n", verb);
    return CLI_USAGE;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    fputs("cellar: warning: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_json_string(FILE *f, const char *s, size_t len)
{
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
    }
    fputc('"', f);
}

bool cli_parse_size(const char *s, unsigned long long *out)
{
    static const struct {
        const char *suffix;
        unsigned long long mul;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1000ULL},
        {"MB", 1000ULL * 1000},
        {"GB", 1000ULL * 1000 * 1000},
        {"TB", 1000ULL * 1000 * 1000 * 1000},
        {"K", 1024ULL},
        {"M", 1024ULL * 1024},
        {"G", 1024ULL * 1024 * 1024},
        {"KiB", 1024ULL},
        {"MiB", 1024ULL * 1024},
        {"GiB", 1024ULL * 1024 * 1024},
        {"TiB", 1024ULL * 1024 * 1024 * 1024},
    };
    if (!s || !isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s)
        return false;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].suffix) == 0) {
            double r = v * (double)units[i].mul;
            if (r < 0 || r >= 18446744073709551616.0)
                return false;
            *out = (unsigned long long)r;
            return true;
        }
    }
    return false;
}
