/*
 * ops_lock.c — fcntl (POSIX and OFD) and flock locks held by the server, so
 * that they exclude processes on every client of the export, not only on
 * this mount.
 *
 * The kernel sends GETLK/SETLK/SETLKW with a lock owner it derives from the
 * locker: the process's file table for POSIX locks, the open file (struct
 * file) for OFD and flock locks.  That owner goes to the server as is
 * (dafs_lock's owner); the server tells owners of different sessions apart,
 * so two mounts never share one.  Each lock is taken through the open's
 * server open state (fi->fh), and the server releases an open's locks when
 * it is closed (RELEASE, op_release in ops.c): that is how OFD and flock
 * locks go at the last close of their open file.  POSIX locks go at any
 * close by their owner: the kernel sends FLUSH with the owner
 * (dfuse_flush_locks below), and dafs-fuse therefore no longer opens files
 * with noflush, unless -o local_locks leaves all locks to the kernel (local
 * to the mount, as NFS's local_lock=all).
 *
 * flock(2) is emulated, as NFS does, as a lock of the whole file [0, EOF)
 * by the open file's owner: it conflicts with fcntl locks of other owners
 * on any part of the file (locally Linux keeps the two kinds apart), and an
 * OFD lock and a flock on the same open file are one owner's locks.
 *
 * A lock is a cache coherence point, as on NFS: taking one drops the
 * kernel's cached pages and attributes of the file, so what is read under
 * the lock is what the previous holder (on any client) wrote, and fstat's
 * size is the server's.  Writes reach the server before write() returns
 * (without writeback_cache), so an unlock has nothing to flush; with
 * writeback_cache an unlock first has the kernel write the file's dirty
 * pages back (lock_writeback), as NFS does, so the next holder reads them.
 *
 * Blocking requests (F_SETLKW, flock without LOCK_NB) wait in the server's
 * queue (DAFS_LOCK_WAIT): granted in arrival order, a wait that would close
 * a cycle refused with EDEADLK, and answered the moment the lock is free.
 * A signal to the waiting process (FUSE INTERRUPT) ends the wait with
 * dafs_lock_cancel (EINTR).  Each waiter holds a daemon thread and one of
 * the session's credits, which every request of the mount shares: at most
 * LOCK_MAX_WAITERS wait at once (ENOLCK past that), so that threads and
 * credits remain for the requests that end the waits (the holder's unlock,
 * FLUSH or RELEASE).  A grace period after a server restart is waited out
 * by asking again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>

#include "dafs_fuse.h"

#define LOCK_MAX_WAITERS (DFUSE_MAX_THREADS / 2)

/* The byte count of a kernel lock range (libfuse gives l_len 0 for "to the
 * end of the file", never a negative one). */
static uint64_t range_len(const struct flock *l)
{
    return l->l_len <= 0 ? DAFS_LOCK_TO_EOF : (uint64_t)l->l_len;
}

static int dafs_type_of(short l_type)
{
    return l_type == F_RDLCK ? DAFS_LOCK_SHARED : DAFS_LOCK_EXCLUSIVE;
}

/* libdafs lock error (negative) -> positive errno for the kernel.  getlk:
 * a test, where a grace period is no conflict to report. */
static int lock_errno(int rc, int getlk)
{
    switch (rc) {
    case -DAFS_EGRACE:
        /* the server restarted and serves only reclaims for a while: a
         * non-blocking lock is refused as if held; a test cannot answer */
        return getlk ? ENOLCK : EAGAIN;
    case -DAFS_ELOCKBROKEN:
        /* a PERSIST lock (never taken by this mount: another libdafs
         * client's) whose holder died: its data may be half written.
         * fcntl has no errno for that; EIO says "do not trust the file" */
        return EIO;
    case -EOPNOTSUPP:
    case -DAFS_EBADOP:
        return ENOLCK; /* a server without locks: what NFS's nolock gives */
    default:
        return dfuse_errno(rc);
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)ms * 1000000L};
    /* an early wake-up (EINTR) only makes the next try sooner */
    (void)nanosleep(&ts, NULL);
}

/* A waiting request and its INTERRUPT: the callback runs on another daemon
 * thread, under the request's lock, which the waiter's final
 * fuse_req_interrupt_func(NULL) takes too, so the waiter's stack outlives
 * every call of it. */
typedef struct lock_wait {
    dafs_file *f;
    uint64_t owner;
    pthread_mutex_t mu;
    bool interrupted; /* the kernel interrupted the request */
    bool sent;        /* the LOCK with WAIT is on its way (or answered) */
    atomic_bool done; /* the LOCK was answered */
} lock_wait;

/* INTERRUPT: end the server-side wait.  Before the LOCK is sent, the flag
 * is enough (the waiter looks at it).  After, LOCK_CANCEL answers NOENT
 * until the LOCK has reached the server's queue, and also once it has been
 * answered: so ask again until it cancels or the waiter has its answer. */
static void lock_interrupted(fuse_req_t req, void *data)
{
    (void)req;
    lock_wait *w = data;
    pthread_mutex_lock(&w->mu);
    w->interrupted = true;
    bool sent = w->sent;
    pthread_mutex_unlock(&w->mu);
    while (sent && !atomic_load(&w->done) && dafs_lock_cancel(w->f, w->owner) == -ENOENT)
        sleep_ms(1);
}

/* Wait in the server's queue for the lock (see the top comment). */
static int lock_wait_queued(fuse_req_t req, dafs_file *f, uint64_t owner, int type, uint64_t off,
                            uint64_t len)
{
    lock_wait w = {.f = f, .owner = owner};
    pthread_mutex_init(&w.mu, NULL);
    atomic_init(&w.done, false);
    fuse_req_interrupt_func(req, lock_interrupted, &w); /* may call it at once */
    int rc = -DAFS_EGRACE;
    unsigned delay = 1;
    while (rc == -DAFS_EGRACE) {
        pthread_mutex_lock(&w.mu);
        bool stop = w.interrupted;
        w.sent = !stop;
        pthread_mutex_unlock(&w.mu);
        if (stop) {
            rc = -EINTR;
            break;
        }
        rc = dafs_lock(f, owner, type, DAFS_LOCK_WAIT, off, len);
        if (rc == -DAFS_EGRACE) { /* the server restarted: only reclaims for a while */
            sleep_ms(delay);
            delay = delay * 2 > 50 ? 50 : delay * 2;
        }
    }
    atomic_store(&w.done, true);
    fuse_req_interrupt_func(req, NULL, NULL); /* waits out a callback under way */
    pthread_mutex_destroy(&w.mu);
    return rc;
}

/* Take the lock; with wait, a conflict (or grace period) is waited out in
 * the server's queue, by at most LOCK_MAX_WAITERS requests at a time. */
static int lock_acquire(fuse_req_t req, dafs_file *f, uint64_t owner, int type, uint64_t off,
                        uint64_t len, int wait)
{
    int rc = dafs_lock(f, owner, type, 0, off, len);
    if (!wait || (rc != -EAGAIN && rc != -DAFS_EGRACE))
        return rc;
    struct dfuse *fs = fs_of(req);
    if (atomic_fetch_add(&fs->lock_waiters, 1) >= LOCK_MAX_WAITERS)
        rc = -ENOLCK;
    else if (fuse_req_interrupted(req))
        rc = -EINTR;
    else
        rc = lock_wait_queued(req, f, owner, type, off, len);
    atomic_fetch_sub(&fs->lock_waiters, 1);
    return rc;
}

/* A lock was just taken: drop the kernel's cached pages and attributes of
 * ino (see the top comment), before the locker sees the reply. */
static void lock_revalidate(struct dfuse *fs, fuse_ino_t ino)
{
    /* -ENOENT: the kernel holds no such inode; anything else leaves the
     * cache as it was, which close-to-open still bounds */
    int rc = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
    if (rc < 0 && rc != -ENOENT && fs->cfg.debug)
        fprintf(stderr, "dafs-fuse: invalidating a locked file's cache: %d\n", rc);
}

/* Before an unlock with writeback_cache: the kernel writes the file's dirty
 * pages back (invalidating them does that first, and waits for it) and
 * drops them.  A failure does not stop the unlock: a lock kept because its
 * data could not be written would only add a hang to the lost write, which
 * is reported as any failed writeback is (fsync, close). */
static void lock_writeback(struct dfuse *fs, fuse_ino_t ino)
{
    if (!fs->cfg.writeback_cache)
        return;
    int rc = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
    if (rc < 0 && rc != -ENOENT && fs->cfg.debug) /* -ENOENT: not cached */
        fprintf(stderr, "dafs-fuse: writing back before an unlock: %d\n", rc);
}

/* The open's server state; NULL (the request answered) when there is none:
 * the kernel sends lock requests only for regular files, which have one. */
static dafs_file *lock_file(fuse_req_t req, struct fuse_file_info *fi)
{
    dafs_file *f = dfuse_file_state(fi);
    if (f == NULL)
        fuse_reply_err(req, ENOLCK);
    return f;
}

/* l_pid is 0: the holder may be on another client, and the kernel turns
 * any pid it cannot find in the caller's namespace into 0 anyway. */
static void conflict_to_flock(const dafs_lock_conflict *c, struct flock *lock)
{
    lock->l_type = c->type == DAFS_LOCK_SHARED ? F_RDLCK : F_WRLCK;
    lock->l_whence = SEEK_SET;
    lock->l_pid = 0;
    if (c->offset > (uint64_t)INT64_MAX) { /* past what fcntl can name */
        lock->l_start = INT64_MAX;
        lock->l_len = 0;
        return;
    }
    lock->l_start = (off_t)c->offset;
    /* a range reaching past the largest offset is reported to the end */
    int to_eof = c->length == DAFS_LOCK_TO_EOF || c->length == 0 ||
                 c->length - 1 > (uint64_t)INT64_MAX - c->offset;
    lock->l_len = to_eof ? 0 : (off_t)c->length;
}

void dfuse_op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct flock *lock)
{
    (void)ino;
    dafs_file *f = lock_file(req, fi);
    if (f == NULL)
        return;
    if (lock->l_type != F_RDLCK && lock->l_type != F_WRLCK) {
        fuse_reply_err(req, EINVAL); /* the kernel refuses F_UNLCK itself */
        return;
    }
    dafs_lock_conflict c;
    int rc = dafs_lock_test(f, fi->lock_owner, dafs_type_of(lock->l_type),
                            (uint64_t)lock->l_start, range_len(lock), &c);
    if (rc < 0) {
        fuse_reply_err(req, lock_errno(rc, 1));
        return;
    }
    if (rc == 0)
        lock->l_type = F_UNLCK;
    else
        conflict_to_flock(&c, lock);
    fuse_reply_lock(req, lock);
}

void dfuse_op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct flock *lock, int sleep)
{
    struct dfuse *fs = fs_of(req);
    dafs_file *f = lock_file(req, fi);
    if (f == NULL)
        return;
    uint64_t off = (uint64_t)lock->l_start, len = range_len(lock);
    if (lock->l_type == F_UNLCK) {
        lock_writeback(fs, ino);
        int rc = dafs_unlock(f, fi->lock_owner, off, len);
        fuse_reply_err(req, rc < 0 ? lock_errno(rc, 0) : 0);
        return;
    }
    int rc = lock_acquire(req, f, fi->lock_owner, dafs_type_of(lock->l_type), off, len, sleep);
    if (rc == 0) {
        /* FLUSH must now unlock this node's POSIX locks (OFD ones too are
         * indistinguishable here; unlocking one of those at FLUSH finds
         * nothing: the owners differ) */
        nodes_note_locked(&fs->nodes, ino);
        lock_revalidate(fs, ino);
    }
    fuse_reply_err(req, rc < 0 ? lock_errno(rc, 0) : 0);
}

/* A blocking flock that found the file locked (or the server in its grace
 * period): as Linux does for flock, a
 * lock this open file already holds (a conversion) goes before the wait, or
 * two holders of shared locks both converting to exclusive would wait for
 * each other forever (no atomic conversion: flock(2) does not promise one). */
static int flock_wait(fuse_req_t req, dafs_file *f, uint64_t owner, int type)
{
    int rc = dafs_unlock(f, owner, 0, DAFS_LOCK_TO_EOF);
    return rc < 0 ? rc : lock_acquire(req, f, owner, type, 0, DAFS_LOCK_TO_EOF, 1);
}

void dfuse_op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op)
{
    struct dfuse *fs = fs_of(req);
    dafs_file *f = lock_file(req, fi);
    if (f == NULL)
        return;
    int wait = !(op & LOCK_NB);
    op &= ~LOCK_NB;
    int rc;
    if (op == LOCK_UN) {
        lock_writeback(fs, ino);
        rc = dafs_unlock(f, fi->lock_owner, 0, DAFS_LOCK_TO_EOF);
    } else if (op == LOCK_SH || op == LOCK_EX) {
        int type = op == LOCK_SH ? DAFS_LOCK_SHARED : DAFS_LOCK_EXCLUSIVE;
        rc = lock_acquire(req, f, fi->lock_owner, type, 0, DAFS_LOCK_TO_EOF, 0);
        if (wait && (rc == -EAGAIN || rc == -DAFS_EGRACE))
            rc = flock_wait(req, f, fi->lock_owner, type);
        if (rc == 0)
            lock_revalidate(fs, ino);
    } else {
        rc = -EINVAL;
    }
    /* EAGAIN is EWOULDBLOCK, what flock(LOCK_NB) reports */
    fuse_reply_err(req, rc < 0 ? lock_errno(rc, 0) : 0);
}

int dfuse_flush_locks(struct dfuse *fs, fuse_ino_t ino, struct fuse_file_info *fi)
{
    dafs_file *f = dfuse_file_state(fi);
    /* most files are never locked here: no round trip for their close */
    if (f == NULL || !nodes_locked(&fs->nodes, ino))
        return 0;
    return dafs_unlock(f, fi->lock_owner, 0, DAFS_LOCK_TO_EOF);
}

void dfuse_lock_init(struct dfuse *fs, struct fuse_conn_info *conn)
{
    /* libfuse asks for both when the handlers exist; say so, and warn when
     * the kernel cannot route locks to us (they would be local again) */
    unsigned need = FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS;
    if (fs->cfg.local_locks) { /* asked for: the kernel keeps them */
        conn->want &= ~need;
        return;
    }
    if ((conn->capable & need) != need)
        fprintf(stderr, "dafs-fuse: the kernel keeps %s locks local to this mount\n",
                (conn->capable & FUSE_CAP_POSIX_LOCKS) ? "flock" : "fcntl");
    conn->want |= conn->capable & need;
    if (fs->cfg.debug)
        fprintf(stderr, "dafs-fuse: locks through the server: fcntl %s, flock %s\n",
                (conn->want & FUSE_CAP_POSIX_LOCKS) ? "yes" : "no",
                (conn->want & FUSE_CAP_FLOCK_LOCKS) ? "yes" : "no");
}
