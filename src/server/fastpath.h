/*
 * fastpath.h — small reads, GETATTR, LOOKUP and REMOVE answered on the network thread.
 *
 * On this kind of machine each hand-off between threads costs 10-30 us, more
 * than the whole transport round trip.  A READ whose fd is already in the
 * fd cache (opened by the same identity), and whose data is in the page
 * cache, needs no worker (and so does a READ under an open state, whose fd the
 * state holds): the network thread reads it with
 * preadv2(RWF_NOWAIT) (which never blocks: it fails with EAGAIN instead of
 * waiting for the disk), RMA-writes it from a registered slot, sends the
 * reply from the write's completion callback, and frees the slot when the
 * reply completes — the same shape as the transport floor.  GETATTR is an
 * fstat of a cached O_PATH fd.  LOOKUP (what stat and path walks cost) runs
 * in a cached directory fd with openat2(RESOLVE_CACHED), which fails with
 * EAGAIN rather than read a directory block from disk; the thread takes the
 * caller's identity for it and returns to root at once.  REMOVE of an empty
 * regular file or a symlink (no data blocks to free) whose name resolves the
 * same way runs here in full: ops_execute with an op_io that offers no file
 * I/O or RMA, then back to root.  Anything else (a cache miss, data not in
 * memory, no free slot, a check that fails) goes to the worker pool as
 * before, which also produces every error reply.
 *
 * A client that stops progressing only holds a slot; slots are bounded
 * (FAST_SLOTS), and when none is free requests take the worker path with its
 * timed waits.
 */
#ifndef DAFSD_FASTPATH_H
#define DAFSD_FASTPATH_H

#include <stdbool.h>

#include "server.h"

#define FAST_SLOTS 64
#define FAST_IO_MAX 65536u

int fastpath_start(server *srv, const char **why);
/* Try to answer slot's request here.  True: answered (or being answered);
 * the caller reposts the receive buffer and keeps no session reference. */
bool fastpath_try(server *srv, rx_slot *slot, session *s);
/* Replies still in flight. */
unsigned fastpath_busy(const server *srv);
void fastpath_close_mr(server *srv);
void fastpath_free(server *srv);

#endif
