/*
 * dispatch.h — dafsd's network thread: receive pool, header decode,
 * session and credit checks, session ops, hand-off to workers.
 */
#ifndef DAFSD_DISPATCH_H
#define DAFSD_DISPATCH_H

#include "server.h"

/* Reply header for request header req. */
void reply_hdr_init(dafs_hdr *h, const dafs_hdr *req, uint64_t session_id, uint16_t credits,
                    int status);

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
