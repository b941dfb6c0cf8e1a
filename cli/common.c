/* Helpers shared by the verbs: error printing, JSON strings, sizes. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Messages quote names from files, archives and servers: their control
 * bytes are shown escaped, so they cannot drive the terminal. */
void cli_put_escaped_n(FILE *f, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

void cli_put_escaped(FILE *f, const char *m)
{
    cli_put_escaped_n(f, m, strlen(m));
}

/* prefix, then fmt formatted and escaped, then a newline, on stderr. */
__attribute__((format(printf, 2, 0))) static void vmessage(const char *prefix, const char *fmt,
                                                          va_list ap)
{
    char small[1024];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    char *big = NULL;
    if (n >= (int)sizeof small && (big = malloc((size_t)n + 1)) != NULL)
        vsnprintf(big, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    fputs(prefix, stderr);
    cli_put_escaped(stderr, big ? big : small);
    fputc('\n', stderr);
    free(big);
}

int cli_error_last(void)
{
    const char *m = cellar_error_last();
    fputs("cellar: ", stderr);
    cli_put_escaped(stderr, *m ? m : "unknown error");
    fputc('\n', stderr);
    return CLI_FAIL;
}

int cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("cellar: ", fmt, ap);
    va_end(ap);
    return CLI_FAIL;
}

int cli_usage(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "cellar %s: ", verb);
    va_start(ap, fmt);
    vmessage("", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Run 'cellar %s --help' for usage.\n", verb);
    return CLI_USAGE;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("cellar: warning: ", fmt, ap);
    va_end(ap);
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

const char *cli_human_size(char buf[32], uint64_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, 32, "%llu B", (unsigned long long)bytes);
    else
        snprintf(buf, 32, "%.1f %s", v, units[u]);
    return buf;
}

bool cli_parse_duration(const char *s, uint64_t *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return false;
    unsigned long long mul = !*end || !strcmp(end, "s") ? 1
                             : !strcmp(end, "m")       ? 60
                             : !strcmp(end, "h")       ? 3600
                             : !strcmp(end, "d")       ? 86400
                                                       : 0;
    if (!mul || v > UINT64_MAX / mul)
        return false;
    *out = v * mul;
    return true;
}

int cli_bad_option(const char *verb, int opt, char **argv)
{
    if (opt == ':')
        return cli_usage(verb, "option '%s' needs a value", argv[optind - 1]);
    if (optopt)
        return cli_usage(verb, "unknown option '-%c'", optopt);
    return cli_usage(verb, "unknown option '%s'", argv[optind - 1]);
}

bool cli_options_first(int argc, char **argv, const char *const *with_value)
{
    if (argc < 3)
        return true;
    char **ops = malloc((size_t)argc * sizeof *ops);
    if (!ops)
        return false;
    int nopt = 1, nops = 0;
    bool dashdash = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || a[1] == '\0') {
            ops[nops++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--")) {
            dashdash = true;
            continue;
        }
        argv[nopt++] = argv[i];
        for (const char *const *v = with_value; v && *v; v++)
            if (!strcmp(a, *v) && i + 1 < argc) {
                argv[nopt++] = argv[++i];
                break;
            }
    }
    if (dashdash)
        argv[nopt++] = (char *)"--";
    memcpy(argv + nopt, ops, (size_t)nops * sizeof *ops);
    free(ops);
    return true;
}

int cli_store_open(cellar_store **out)
{
    *out = NULL;
    char *home;
    int rc = cellar_store_home_from_env(&home);
    if (rc)
        return rc;
    rc = cellar_store_open(out, home);
    cellar_free(home);
    return rc;
}

/* ---- Ctrl-C and progress ---------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
    interrupted = 1;
    /* A second one is not asked politely. */
    signal(sig, SIG_DFL);
}

void cli_catch_interrupt(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

bool cli_interrupted(void)
{
    return interrupted != 0;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void cli_progress_init(cli_progress *p, const char *verb, bool show_with_stdout)
{
    memset(p, 0, sizeof *p);
    p->verb = verb;
    p->on = isatty(STDERR_FILENO) && (show_with_stdout || !isatty(STDOUT_FILENO));
    p->started = mono_now();
}

static void duration(char *buf, size_t n, double s)
{
    if (s < 60)
        snprintf(buf, n, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

int cli_progress_show(cli_progress *p, const cellar_progress *pr)
{
    if (!p->on)
        return cli_interrupted();
    double t = mono_now();
    if (p->drawn && t - p->last < 0.1)
        return cli_interrupted();
    p->last = t;
    double el = t - p->started;
    char line[256], done[32], total[32], rate[32], left[32] = "";
    int n = snprintf(line, sizeof line, "%s:", p->verb);
    if (pr->files_total)
        n += snprintf(line + n, sizeof line - (size_t)n, " %llu/%llu files",
                      (unsigned long long)pr->files_done, (unsigned long long)pr->files_total);
    else if (pr->files_done)
        n += snprintf(line + n, sizeof line - (size_t)n, " %llu files",
                      (unsigned long long)pr->files_done);
    if (pr->bytes_done || pr->bytes_total) {
        cli_human_size(done, pr->bytes_done);
        cli_human_size(rate, el > 0.05 ? (uint64_t)((double)pr->bytes_done / el) : 0);
        if (pr->bytes_total) {
            cli_human_size(total, pr->bytes_total);
            n += snprintf(line + n, sizeof line - (size_t)n, "  %s / %s  %s/s", done, total, rate);
        } else {
            n += snprintf(line + n, sizeof line - (size_t)n, "  %s  %s/s", done, rate);
        }
    }
    /* Time left from whichever fraction is known: bytes, else files. */
    double frac = pr->bytes_total ? (double)pr->bytes_done / (double)pr->bytes_total
                  : pr->files_total ? (double)pr->files_done / (double)pr->files_total
                                    : 0;
    if (frac > 0.01 && frac < 1 && el > 1) {
        duration(left, sizeof left, el / frac - el);
        n += snprintf(line + n, sizeof line - (size_t)n, "  %s left", left);
    }
    (void)n;
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    p->drawn = true;
    return cli_interrupted();
}

void cli_progress_clear(cli_progress *p)
{
    if (p->on && p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->drawn = false;
    }
}

int cli_progress_cb(const cellar_progress *pr, void *ctx)
{
    return cli_progress_show(ctx, pr);
}
