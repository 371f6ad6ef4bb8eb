/*
 * metrics.h — dafsd's optional Prometheus endpoint (--metrics-listen
 * HOST:PORT): the admin socket's statistics as Prometheus text at /metrics,
 * served by libmicrohttpd from a thread of its own.
 */
#ifndef DAFSD_METRICS_H
#define DAFSD_METRICS_H

#include "server.h"

/* Start serving on srv->cfg.metrics_listen (nothing to do when NULL).
 * 0, or -1 with *why set; -1 also when dafsd was built without
 * libmicrohttpd. */
int metrics_start(server *srv, const char **why);
void metrics_stop(void); /* safe if never started */
/* "http://HOST:PORT/metrics" while serving, else NULL. */
const char *metrics_url(void);
/* False when built without libmicrohttpd. */
bool metrics_available(void);

#endif
