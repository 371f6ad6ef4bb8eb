/*
 * ops_lock.h — byte-range locks in dafsd: LOCK, LOCKT, LOCKU, and the lock
 * table's life in the server (ops_lock.c).
 */
#ifndef DAFSD_OPS_LOCK_H
#define DAFSD_OPS_LOCK_H

#include <stdbool.h>
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
/* LOCK, LOCKT, LOCKU, LOCK_CANCEL.  A LOCK that waits returns
 * OPCTX_REPLY_LATER: its answer comes out of locks_next_answer. */
int ops_lock(op_ctx *c);

/* The answer to a queued LOCK, for the network thread to send (a reply
 * header for session, xid, with status).  locks_next_answer takes the
 * oldest (false when there is none); a sender short of buffers puts it
 * back with locks_requeue_answer. */
typedef struct lock_answer {
    uint64_t session, xid;
    int status;
    struct lock_answer *next;
} lock_answer;
bool locks_next_answer(lock_answer *out);
void locks_requeue_answer(const lock_answer *a);

#endif
