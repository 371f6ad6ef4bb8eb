/*
 * log.h — dafsd's stderr log: one line per notable event.  Errors and
 * notices (the start line: export, address, provider, squash) always print;
 * informational lines (session open/close/expire) only with --verbose, so a
 * quiet server prints one line at start and nothing while it works.
 */
#ifndef DAFSD_LOG_H
#define DAFSD_LOG_H

#include <stdbool.h>

extern bool dafsd_verbose;

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Always printed, without the "dafsd: " prefix (the caller writes its own). */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
