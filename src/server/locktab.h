/*
 * locktab.h — the server's byte-range lock table (DAFS draft §4.4.1,
 * §6.5.18-20; BRIEF §3): shared and exclusive locks on any range of a file,
 * blocking and non-blocking, test, unlock of any sub-range, PERSIST locks
 * (breakable, broken, REPAIR) and AUTORECOVER locks (rollback through the
 * caller's undo log, undolog.h).  The protocol, libdafs and dafs-fuse are
 * not wired to it yet: see docs/design.md, "Locks".
 *
 * Files are named by an opaque id of up to LOCKTAB_FID_MAX bytes (dafsd
 * uses the file handle, which is the same for every lookup of one file and
 * across restarts).  A lock owner is (session id, owner id); each lock also
 * records the open state (stateid) it was taken under, so CLOSE can release
 * the locks of that open.
 *
 * Semantics (POSIX-like, per owner):
 *  - Two locks conflict when their ranges overlap, their owners differ and
 *    one is exclusive.  A lock of a dead owner (breakable, broken, being
 *    rolled back) never counts as the requester's own.
 *  - A new lock by an owner replaces that owner's locks on the range
 *    (conversion shared <-> exclusive, change of flags); the owner's ranges
 *    with identical attributes that touch or overlap are merged.  Unlock
 *    of any sub-range splits.  Unlocking what is not locked is not an error.
 *  - Fairness: a request (blocking or not) also conflicts with a queued
 *    waiter of another owner, so a stream of shared locks cannot starve a
 *    waiting exclusive one.  Waiters are granted in FIFO order: a waiter is
 *    granted when it conflicts with no holder and with no earlier waiter.
 *    A blocking request that would close a cycle (A waits for B, who
 *    waits for ... A) is refused with LT_DEADLK, as POSIX F_SETLKW does; the
 *    check follows the first blocker of each wait, like Linux, up to
 *    LOCKTAB_DEADLK_DEPTH steps, so a longer cycle goes unnoticed.
 *  - Grace period and RECLAIM: see locktab_grace_begin.
 *  - PERSIST: when the holder's lease expires its PERSIST locks become
 *    BREAKABLE; on a client re-initialization (new boot verifier) they
 *    become BROKEN at once.  A conflicting request breaks breakable locks
 *    and gets LT_BROKEN, as does every later conflicting request, LOCKT
 *    included.  A request with LT_REPAIR takes the broken parts of its range
 *    over (the rest stays broken); when its owner unlocks them they are
 *    clean.  If the repairer's session dies first they are broken again.
 *    PERSIST and repair state is written to the lock database (lockdb.h)
 *    before the call returns and reloaded by locktab_open: a lock held at a
 *    crash is breakable after the restart (during a grace period it only
 *    conflicts: nothing breaks it then), a broken
 *    or repairing one is broken.
 *  - AUTORECOVER: only exclusive locks of the whole file (0 to end);
 *    anything else is LT_NOTSUPP, as §4.4.1.4 allows.  Unlocking a part of
 *    one, or converting it, is LT_RANGE.  A clean unlock (LOCKU, CLOSE,
 *    release of the owner, clean end of the session) calls cfg.commit
 *    (discard the undo log).  Lease expiry, re-initialization and ABORT call
 *    cfg.rollback before the lock goes; while the rollback runs the lock
 *    still conflicts with everyone and locktab_io_allowed answers LT_BUSY,
 *    so nobody locks or reads the file before it is rolled back.
 *    PERSIST|AUTORECOVER: breakable on lease expiry (no rollback yet), rolled
 *    back when broken.  A failed rollback keeps the file locked (LT_BUSY)
 *    until a restart, whose recovery retries the undo log.
 *
 * Threads: one mutex for the whole table.  Lock operations are rare next to
 * reads and writes, each is a short walk of one file's locks (or one LMDB
 * commit for PERSIST locks), and the I/O checks take the mutex once per
 * request; the one long operation, a rollback, runs without the mutex.
 * One mutex also makes session-wide operations (release of a session: all
 * files) atomic and trivially free of lock-order deadlocks.  Callbacks
 * (grant, rollback, commit) are called without the mutex held and may call
 * back into the table (not locktab_close).  Grant notifications are queued
 * under the mutex and delivered by the thread whose call caused them,
 * before that call returns.  So a waiter's grant can be delivered by another
 * thread before its own locktab_lock has returned LT_QUEUED: match grants
 * by waiter id, and be ready for an id not yet seen.
 *
 * Bounds: cfg.max_locks_per_session lock records per session (a split
 * counts), cfg.max_waiters queued waiters in all and
 * cfg.max_waiters_per_session per session; past them, LT_RESOURCE.  Memory
 * is O(locks + waiters + files that have either).
 */
#ifndef DAFSD_LOCKTAB_H
#define DAFSD_LOCKTAB_H

#include <stdbool.h>
#include <stdint.h>

#include "lockdb.h"

#define LOCKTAB_FID_MAX LOCKDB_FID_MAX
#define LT_TO_EOF       UINT64_MAX /* length: to the end of the file (0 means the same) */

#define LOCKTAB_DEFAULT_MAX_LOCKS               4096u /* per session */
#define LOCKTAB_DEFAULT_MAX_WAITERS             4096u /* in all */
#define LOCKTAB_DEFAULT_MAX_WAITERS_PER_SESSION 256u
#define LOCKTAB_DEADLK_DEPTH                    16u

enum lt_type { LT_SHARED = 1, LT_EXCL = 2 };

/* Request flags: the draft's option bits, plus REPAIR. */
#define LT_RECLAIM     0x1u /* only in the grace period (locktab_grace_begin) */
#define LT_PERSIST     0x2u
#define LT_AUTORECOVER 0x4u
#define LT_REPAIR      0x8u

enum lt_status {
    LT_OK = 0,
    LT_DENIED,   /* conflict (*conflict filled) */
    LT_QUEUED,   /* blocking request queued (*waiter_id); the grant callback follows */
    LT_BROKEN,   /* a broken PERSIST lock is in the way (*conflict filled) */
    LT_NOTSUPP,  /* AUTORECOVER on a part of the file or shared, RECLAIM, PERSIST without db */
    LT_INVAL,    /* bad type, flags, file id, or range past 2^64 */
    LT_RANGE,    /* part of an AUTORECOVER lock */
    LT_RESOURCE, /* a cap was reached */
    LT_SHUTDOWN, /* the table is closing; also the status of cancelled waiters */
    LT_BUSY,     /* I/O while the file is being rolled back */
    LT_IO,       /* the lock database failed */
    LT_NOENT,    /* no such waiter (granted, cancelled, or never queued) */
    LT_DEADLK,   /* blocking request would wait for its own owner (POSIX EDEADLK) */
    LT_GRACE,    /* grace period: only RECLAIM requests (DAFSERR_GRACE) */
    LT_NOGRACE,  /* RECLAIM outside the grace period */
};

typedef struct lt_fid {
    uint8_t len; /* 1..LOCKTAB_FID_MAX */
    uint8_t b[LOCKTAB_FID_MAX];
} lt_fid;

typedef struct lt_owner {
    uint64_t session, owner;
} lt_owner;

typedef struct lt_req {
    lt_fid fid;
    lt_owner who;
    uint64_t stateid;
    uint32_t type;           /* enum lt_type (ignored by unlock) */
    uint32_t flags;          /* LT_PERSIST | LT_AUTORECOVER | LT_REPAIR */
    uint64_t offset, length; /* length 0 or LT_TO_EOF: to the end of the file */
} lt_req;

/* Lock states, as reported in a conflict. */
enum lt_state { LT_HELD = 1, LT_BREAKABLE = 2, LT_BROKEN_STATE = 3, LT_ROLLBACK = 4 };

typedef struct lt_conflict {
    lt_owner who;
    uint64_t offset, length; /* length LT_TO_EOF: to the end */
    uint32_t type, flags, state;
    bool waiter; /* the conflict is a queued request, not a lock */
} lt_conflict;

/* status LT_OK: the waiter holds its lock now; LT_BROKEN: it met a broken
 * PERSIST lock (c filled) and is no longer queued; LT_SHUTDOWN: cancelled by
 * shutdown, its session's end or its open state's close.  Called once per
 * waiter, never for one removed by locktab_cancel. */
typedef void (*lt_grant_fn)(void *ctx, uint64_t waiter_id, int status, const lt_req *req,
                            const lt_conflict *c);
/* Undo the AUTORECOVER changes of file fid (undolog_rollback); 0 or -errno. */
typedef int (*lt_rollback_fn)(void *ctx, const lt_fid *fid);
/* Discard the undo log of fid (undolog_commit); 0 or -errno. */
typedef int (*lt_commit_fn)(void *ctx, const lt_fid *fid);

typedef struct locktab_config {
    uint32_t max_locks_per_session;   /* 0: default */
    uint32_t max_waiters;             /* 0: default */
    uint32_t max_waiters_per_session; /* 0: default */
    lockdb *db;                       /* NULL: PERSIST is LT_NOTSUPP */
    lt_grant_fn on_grant;             /* required for blocking requests */
    lt_rollback_fn rollback;          /* NULL: AUTORECOVER is LT_NOTSUPP */
    lt_commit_fn commit;
    void *ctx;
} locktab_config;

typedef struct locktab locktab;

/* Create the table and load the persistent locks of cfg->db.  0 or -errno. */
int locktab_open(const locktab_config *cfg, locktab **out);

/* Shutdown: every queued waiter gets LT_SHUTDOWN, calls and rollbacks under
 * way are waited for (pending ones are left to the next start's undo
 * recovery), everything is freed.  The database is left as it is.  Calls
 * made from callbacks meanwhile get LT_SHUTDOWN; no new call may start
 * from elsewhere once close has begun (the server stops its workers
 * first). */
void locktab_close(locktab *t);

/* LOCK.  LT_OK, LT_DENIED (conflict filled), LT_BROKEN (conflict filled),
 * LT_QUEUED (blocking: *waiter_id; conflict filled with what it waits
 * for), or an error status. */
int locktab_lock(locktab *t, const lt_req *r, bool blocking, uint64_t *waiter_id,
                 lt_conflict *conflict);

/* LOCKT: LT_OK, LT_DENIED or LT_BROKEN with *conflict, or an error. */
int locktab_test(locktab *t, const lt_req *r, lt_conflict *conflict);

/* LOCKU of r->offset/length for r->who (type and flags ignored).  For an
 * AUTORECOVER lock, LT_IO when its undo log could not be removed (the file
 * then stays locked, and the next start rolls it back). */
int locktab_unlock(locktab *t, const lt_req *r);

/* Remove a queued waiter (no callback).  LT_OK or LT_NOENT. */
int locktab_cancel(locktab *t, uint64_t waiter_id);

/* ABORT_LT: roll back r->who's AUTORECOVER lock on r->fid and release it.
 * LT_OK (rolled back), LT_NOENT (no such lock), LT_IO (rollback failed: the
 * file stays locked until a restart). */
int locktab_abort(locktab *t, const lt_req *r);

/* CLOSE of an open state: its locks are released cleanly, its waiters
 * cancelled. */
void locktab_release_open(locktab *t, uint64_t session, uint64_t stateid);

/* Everything of one owner (all files), cleanly. */
void locktab_release_owner(locktab *t, lt_owner who);

enum lt_end {
    LT_END_CLEAN = 1,  /* the client ended its session: release (commit) everything */
    LT_END_LEASE = 2,  /* lease expired: normal released, AUTORECOVER rolled back,
                        * PERSIST breakable */
    LT_END_REINIT = 3, /* the client came back with a new verifier: as LEASE, but
                        * PERSIST broken at once (and rolled back if AUTORECOVER) */
};
/* A session ends: its waiters are cancelled (LT_SHUTDOWN), its locks go as
 * `how` says, and waiters that can go now are granted. */
void locktab_release_session(locktab *t, uint64_t session, enum lt_end how);

/* READ/WRITE check for `session` on [offset, offset+length) (length 0: to
 * the end).  LT_OK; LT_BROKEN when a broken PERSIST lock covers part of it
 * (any broken lock for a write, an exclusive one for a read); LT_BUSY while
 * the file is being rolled back.  *undo (may be NULL) is set when the
 * session holds an AUTORECOVER lock on the file, i.e. the write must go
 * through the undo log first. */
int locktab_io_allowed(locktab *t, const lt_fid *fid, uint64_t session, uint64_t offset,
                       uint64_t length, bool write, bool *undo);

/* The same check for an I/O about to run: when it answers LT_OK and the
 * file has locks, the I/O is counted (*counted) until locktab_io_end, and a
 * rollback or undo-log removal of the file waits for every counted I/O, so
 * a write that passed the check (and was undo-logged) is never torn by a
 * rollback starting in the middle of it; I/O that comes later is LT_BUSY.
 * Call locktab_io_end(t, fid) exactly when *counted is true, and make no
 * other call into the table in between on that thread (a rollback started
 * by it would wait for that thread's own I/O). */
/* No file has a lock or a waiter: an I/O may skip locktab_io_begin.  One
 * atomic load.  An I/O that starts after a lock was granted sees it; a lock
 * granted meanwhile cannot have been written under yet. */
bool locktab_empty(locktab *t);

int locktab_io_begin(locktab *t, const lt_fid *fid, uint64_t session, uint64_t offset,
                     uint64_t length, bool write, bool *undo, bool *counted);
void locktab_io_end(locktab *t, const lt_fid *fid);

/*
 * Grace period after a restart (draft §4.4.1.6, RFC 3010 8.5.2), for the
 * server to begin before it serves and end one lease later.  Meanwhile
 * LOCK without LT_RECLAIM and LOCKT answer LT_GRACE, and so do
 * locktab_io_allowed/io_begin for every file (READ and WRITE must wait for
 * the locks protecting them to be reclaimed).  A RECLAIM request is granted
 * when nothing reclaimed conflicts (the server keeps no normal locks on
 * disk, so it trusts reclaims, as NFSv4 does); it never waits, and never
 * breaks anything.  PERSIST locks held at the crash are not reclaimable:
 * they conflict with reclaims, and are breakable after the grace period.
 * RECLAIM|AUTORECOVER is LT_NOTSUPP: every undo log was rolled back at start.
 * After the grace period RECLAIM answers LT_NOGRACE.
 */
void locktab_grace_begin(locktab *t);
void locktab_grace_end(locktab *t);

/* Counters, for tests and statistics. */
typedef struct locktab_stats {
    uint64_t files, locks, waiters, broken, rollbacks, rollback_failures;
    uint64_t io_waits; /* rollbacks or commits that waited for I/O in flight */
} locktab_stats;
void locktab_get_stats(locktab *t, locktab_stats *st);

const char *locktab_status_name(int status);

#endif
