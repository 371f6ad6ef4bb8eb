/*
 * log.c — see log.h.  Each line is formatted first and written with a single
 * write(2) so lines from different threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

bool dafsd_verbose;

static void log_line(const char *prefix, const char *fmt, va_list ap)
{
    char line[8192]; /* room for a PATH_MAX export path in the start line */
    int n = snprintf(line, sizeof(line), "%s", prefix);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w; /* nowhere left to report a failing stderr */
}

void log_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("dafsd: ", fmt, ap);
    va_end(ap);
}

void log_notice(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_line("", fmt, ap);
    va_end(ap);
}

void log_info(const char *fmt, ...)
{
    if (!dafsd_verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_line("dafsd: ", fmt, ap);
    va_end(ap);
}
