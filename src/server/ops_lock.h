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

/*
 * The I/O gate: every read and every change of a file's data or size asks
 * it first, and calls locks_io_end after (when it answered OK).  With no
 * lock on any file it costs one atomic load.  Otherwise:
 *  - AGAIN while the file is being rolled back (AUTORECOVER: nobody reads
 *    it before it is whole again);
 *  - LOCK_BROKEN for a write to (or a read under an exclusive) broken
 *    PERSIST range;
 *  - a change by the holder of an AUTORECOVER lock first saves what it will
 *    overwrite (WRITE: the range; TRUNCATE: what the new size cuts) in the
 *    undo log, durably (IO if that fails: nothing is written); a change the
 *    log cannot record (OTHER: append, fallocate, copy) is NOTSUP for it.
 * The I/O is counted while it runs, so a rollback waits for it.
 */
/* Some file has a lock or a waiter (one atomic load): the network thread's
 * fast path then leaves reads to the workers, which pass the gate. */
bool locks_any(server *srv);

enum locks_io_kind { LOCKS_IO_READ, LOCKS_IO_WRITE, LOCKS_IO_TRUNCATE, LOCKS_IO_OTHER };
typedef struct locks_io {
    bool counted;
    uint8_t fid_len;
    uint8_t fid[DAFS_FH_MAX];
} locks_io;
/* off, len: the range (len 0: to the end); TRUNCATE: off is the new size. */
int locks_io_begin(server *srv, uint64_t session_id, const dafs_fh *fh, int kind, uint64_t off,
                   uint64_t len, locks_io *io);
void locks_io_end(server *srv, locks_io *io);

#endif
