/*
 * dispatch.h — dafsd's network thread: receive pool, header decode,
 * session and credit checks, session ops, hand-off to workers.
 */
#ifndef DAFSD_DISPATCH_H
#define DAFSD_DISPATCH_H

#include "server.h"

/* Allocate, register and post the receive buffers and control-reply slots. */
int dispatch_start(server *srv, const char **why);
/* Give a receive buffer back to the provider (any thread). */
void rx_repost(server *srv, rx_slot *slot);
/* Run the network loop until srv->stopping, then drain in-flight requests
 * (at most drain_ms).  Returns 0 if everything in flight finished. */
int dispatch_run(server *srv, int drain_ms);
/* Deregister the pools (before dfab_close), then free them (after). */
void dispatch_close_mrs(server *srv);
void dispatch_free(server *srv);

#endif
