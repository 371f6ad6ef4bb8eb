/*
 * admin.h — dafsd's administration socket (dafsctl's way in) and the
 * statistics snapshot it shares with the metrics endpoint.
 */
#ifndef DAFSD_ADMIN_H
#define DAFSD_ADMIN_H

#include "server.h"
#include "stats.h"

#define ADMIN_PROTOCOL_VERSION 1
#define ADMIN_REQUEST_MAX      1024 /* bytes in one request line, newline included */

/* Create the socket (path: --admin-socket, else STATE_DIR/admin.sock) and
 * start its thread.  0, or -1 with *why set (a fatal error for dafsd). */
int admin_start(server *srv, const char **why);
/* Stop the thread and remove the socket (safe if never started). */
void admin_stop(void);

/* Gauges of the running server, for stats_format_*(). */
void admin_gauges(server *srv, stats_gauges *g);

/* Answer one request line (no newline) into out: "OK\n" and a body, or
 * "ERR message\n".  Exposed for the tests' sake; the thread calls it. */
void admin_handle(server *srv, const char *line, strbuf *out);

#endif
