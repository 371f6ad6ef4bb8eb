/*
 * ops_lock.h — byte-range locks in dafsd: LOCK, LOCKT, LOCKU, and the lock
 * table's life in the server (ops_lock.c).
 */
#ifndef DAFSD_OPS_LOCK_H
#define DAFSD_OPS_LOCK_H

#include <stdint.h>

#include "opctx.h"

/* At start, once the session table exists: open the lock database and the
 * table, and have the session table report ends.  0 or -errno (*why says
 * what failed). */
int locks_open(server *srv, const char **why);
/* At shutdown, after the workers and the session table. */
void locks_close(server *srv);
/* CLOSE of open state stateid: the locks taken under it go. */
void locks_release_open(server *srv, uint64_t session_id, uint64_t stateid);
/* LOCK, LOCKT, LOCKU. */
int ops_lock(op_ctx *c);

#endif
