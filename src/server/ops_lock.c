/*
 * ops_lock.c — LOCK, LOCKT and LOCKU (DAFS draft §6.5.18-20), and the
 * server's lock table around them: opened at start with its database
 * (STATE_DIR/locks.mdb, so PERSIST state outlives a restart), told when a
 * session ends (session.h's on_close), closed at shutdown.
 *
 * The table (locktab.h) does the semantics; this file only names things for
 * it: a file is its handle (the same for every lookup and across restarts),
 * an owner is (session id, the client's owner number), and a lock records
 * the open state it was taken under so that CLOSE releases it.
 *
 * A LOCK with WAIT that must wait is queued in the table and answered when
 * it is granted: the worker sends nothing (OPCTX_REPLY_LATER), the waiter is
 * remembered here (waiter id -> session, xid), and the table's grant
 * callback puts the answer on a list that the network thread sends
 * (locks_next_answer, from dispatch.c).  Not from the callback itself: the
 * table grants from whatever call freed the range, session ends included,
 * and those run under the session table's mutex.  A waiter's answer can
 * come before its own LOCK has seen LT_QUEUED (another thread unlocked in
 * between): it then waits here, as "early", for that LOCK to pick it up.
 *
 * AUTORECOVER: at start every undo log left by a crash is rolled back
 * before anything is served; the table's rollback and commit callbacks act
 * on the undo logs; and every read and change of a file passes the I/O gate
 * at the end of this file (locks_io_begin), which saves the holder's
 * changes in the undo log first.
 *
 * Not wired yet (docs/design.md §12): the grace period and RECLAIM after a
 * restart.
 */
#include "ops_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "locktab.h"
#include "log.h"
#include "ops.h"
#include "undolog.h"

/* A queued LOCK, or the early answer of one. */
typedef struct lock_wait {
    uint64_t waiter_id;
    uint64_t session, xid, owner; /* the LOCK to answer (not set while early) */
    lt_fid fid;
    bool early;                   /* the answer came before the LOCK was queued */
    int status;                   /* early: the wire status to answer */
    struct lock_wait *next;
} lock_wait;

static struct {
    pthread_mutex_t mu;
    lock_wait *waits;             /* queued LOCKs and early answers */
    lock_answer *answers;         /* to send (FIFO: answers_tail) */
    lock_answer **answers_tail;
    dfab *fabric;                 /* woken when an answer is queued */
} reg = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int wire_status(int lt);

/* reg.mu held: unlink and return the entry for waiter_id, or NULL. */
static lock_wait *take_wait_locked(uint64_t waiter_id)
{
    for (lock_wait **pp = &reg.waits; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->waiter_id == waiter_id) {
            lock_wait *w = *pp;
            *pp = w->next;
            return w;
        }
    return NULL;
}

/* reg.mu held: queue the answer to a LOCK (dropped if out of memory: the
 * client's wait then ends with its session). */
static void answer_locked(uint64_t session, uint64_t xid, int status)
{
    lock_answer *a = malloc(sizeof *a);
    if (a == NULL)
        return;
    *a = (lock_answer){.session = session, .xid = xid, .status = status};
    *reg.answers_tail = a;
    reg.answers_tail = &a->next;
}

static void granted(void *ctx, uint64_t waiter_id, int status, const lt_req *req,
                    const lt_conflict *c)
{
    (void)ctx;
    (void)req;
    (void)c;
    int st = status == LT_SHUTDOWN ? DAFS_ST_INTR : wire_status(status);
    pthread_mutex_lock(&reg.mu);
    lock_wait *w = take_wait_locked(waiter_id);
    if (w != NULL) {
        answer_locked(w->session, w->xid, st);
        free(w);
    } else if ((w = calloc(1, sizeof *w)) != NULL) {
        *w = (lock_wait){.waiter_id = waiter_id, .early = true, .status = st, .next = reg.waits};
        reg.waits = w;
    }
    dfab *f = reg.fabric;
    pthread_mutex_unlock(&reg.mu);
    if (f != NULL)
        dfab_wake(f);
}

bool locks_next_answer(lock_answer *out)
{
    pthread_mutex_lock(&reg.mu);
    lock_answer *a = reg.answers;
    bool have = a != NULL;
    if (have) {
        reg.answers = a->next;
        if (reg.answers == NULL)
            reg.answers_tail = &reg.answers;
        *out = *a;
        free(a);
    }
    pthread_mutex_unlock(&reg.mu);
    return have;
}

void locks_requeue_answer(const lock_answer *a)
{
    pthread_mutex_lock(&reg.mu);
    lock_answer *copy = malloc(sizeof *copy);
    if (copy != NULL) {
        *copy = *a;
        copy->next = reg.answers;
        reg.answers = copy;
        if (copy->next == NULL)
            reg.answers_tail = &copy->next;
    }
    pthread_mutex_unlock(&reg.mu);
}

/* ---- session ends ------------------------------------------------------
 *
 * The session table reports an end under its own mutex, and releasing a
 * session's locks can take long (an AUTORECOVER rollback rewrites the file;
 * PERSIST state is an LMDB commit): so the end is queued here and a thread
 * of its own does the release. */
typedef struct ended {
    uint64_t id;
    int how;
    struct ended *next;
} ended;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ended *head, **tail;
    bool stop, running;
    pthread_t thread;
} reaper = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void session_ended(void *ctx, uint64_t id, int how)
{
    ended *e = malloc(sizeof *e);
    if (e == NULL) { /* no memory to defer it: do it now */
        locktab_release_session(ctx, id, (enum lt_end)how);
        return;
    }
    *e = (ended){.id = id, .how = how};
    pthread_mutex_lock(&reaper.mu);
    *reaper.tail = e;
    reaper.tail = &e->next;
    pthread_cond_signal(&reaper.cv);
    pthread_mutex_unlock(&reaper.mu);
}

static void *reaper_main(void *arg)
{
    locktab *t = arg;
    pthread_mutex_lock(&reaper.mu);
    for (;;) {
        while (reaper.head == NULL && !reaper.stop)
            pthread_cond_wait(&reaper.cv, &reaper.mu);
        ended *e = reaper.head;
        if (e == NULL)
            break; /* stopping, and nothing left */
        reaper.head = e->next;
        if (reaper.head == NULL)
            reaper.tail = &reaper.head;
        pthread_mutex_unlock(&reaper.mu);
        locktab_release_session(t, e->id, (enum lt_end)e->how);
        free(e);
        pthread_mutex_lock(&reaper.mu);
    }
    pthread_mutex_unlock(&reaper.mu);
    return NULL;
}

/* ---- AUTORECOVER: the table's callbacks into the undo logs --------------- */

static int undo_rollback(void *ctx, const lt_fid *fid)
{
    server *srv = ctx;
    return undoset_rollback(srv->undo, fid->b, fid->len);
}

static int undo_commit(void *ctx, const lt_fid *fid)
{
    server *srv = ctx;
    return undoset_commit(srv->undo, fid->b, fid->len);
}

/* The object of an undo log, by its id (the file handle), for writing. */
static int undo_open_object(void *ctx, const uint8_t *id, size_t id_len)
{
    server *srv = ctx;
    if (id_len == 0 || id_len > DAFS_FH_MAX)
        return -EINVAL;
    dafs_fh fh = {.len = (uint8_t)id_len};
    memcpy(fh.data, id, id_len);
    int fd;
    struct stat st;
    int status = export_open_fh(&srv->exp, &fh, O_RDWR, &fd, &st);
    return status == DAFS_ST_OK ? fd : -ESTALE; /* gone: its log is dropped */
}

/* Roll back what crashed holders left, before anything is served. */
static int undo_open(server *srv, const char **why)
{
    int rc = undolog_dir_open(srv->cfg.state_dir, &srv->undo_dirfd);
    if (rc != 0) {
        *why = "cannot open the undo log directory (STATE_DIR/undo)";
        return rc;
    }
    unsigned rolled = 0;
    rc = undolog_recover(srv->undo_dirfd, undo_open_object, srv, &rolled);
    if (rolled > 0)
        log_info("rolled back %u file(s) left under AUTORECOVER locks", rolled);
    if (rc != 0)
        log_error("undo recovery: %s (those logs stay for the next start)", strerror(-rc));
    rc = undoset_open(srv->undo_dirfd, &srv->undo);
    if (rc != 0)
        *why = "cannot set up the undo logs";
    return rc;
}

int locks_open(server *srv, const char **why)
{
    srv->undo_dirfd = -1;
    int rc = undo_open(srv, why);
    if (rc != 0)
        return rc;
    rc = lockdb_open(srv->cfg.state_dir, &srv->lockdb);
    if (rc != 0) {
        *why = "cannot open the lock database (STATE_DIR/locks.mdb)";
        return rc;
    }
    pthread_mutex_lock(&reg.mu);
    reg.answers_tail = &reg.answers;
    reg.fabric = srv->fabric;
    pthread_mutex_unlock(&reg.mu);
    locktab_config cfg = {.db = srv->lockdb, .on_grant = granted, .rollback = undo_rollback,
                          .commit = undo_commit, .ctx = srv};
    rc = locktab_open(&cfg, &srv->locks);
    if (rc != 0) {
        *why = "cannot load the lock table";
        lockdb_close(srv->lockdb);
        srv->lockdb = NULL;
        return rc;
    }
    reaper.tail = &reaper.head;
    reaper.stop = false;
    rc = -pthread_create(&reaper.thread, NULL, reaper_main, srv->locks);
    if (rc != 0) {
        *why = "cannot start the lock reaper thread";
        return rc;
    }
    reaper.running = true;
    srv->sessions.on_close = session_ended;
    srv->sessions.on_close_ctx = srv->locks;
    return 0;
}

/* After the workers have stopped and the session table is gone. */
void locks_close(server *srv)
{
    srv->sessions.on_close = NULL;
    if (reaper.running) { /* the ends reported so far are released first */
        pthread_mutex_lock(&reaper.mu);
        reaper.stop = true;
        pthread_cond_signal(&reaper.cv);
        pthread_mutex_unlock(&reaper.mu);
        pthread_join(reaper.thread, NULL);
        reaper.running = false;
    }
    if (srv->locks != NULL)
        locktab_close(srv->locks); /* waiters answered INTR: dropped below */
    pthread_mutex_lock(&reg.mu);
    reg.fabric = NULL;
    while (reg.waits != NULL) {
        lock_wait *w = reg.waits;
        reg.waits = w->next;
        free(w);
    }
    pthread_mutex_unlock(&reg.mu);
    lock_answer a;
    while (locks_next_answer(&a))
        ;
    if (srv->lockdb != NULL)
        lockdb_close(srv->lockdb);
    if (srv->undo != NULL)
        undoset_close(srv->undo); /* logs left are rolled back at the next start */
    if (srv->undo_dirfd >= 0)
        close(srv->undo_dirfd);
    srv->locks = NULL;
    srv->lockdb = NULL;
    srv->undo = NULL;
    srv->undo_dirfd = -1;
}

void locks_release_open(server *srv, uint64_t session_id, uint64_t stateid)
{
    if (srv->locks != NULL && stateid != 0)
        locktab_release_open(srv->locks, session_id, stateid);
}

static int wire_status(int lt)
{
    switch (lt) {
    case LT_OK: return DAFS_ST_OK;
    case LT_DENIED: return DAFS_ST_AGAIN;
    case LT_BROKEN: return DAFS_ST_LOCK_BROKEN;
    case LT_NOTSUPP: return DAFS_ST_NOTSUP;
    case LT_INVAL: return DAFS_ST_INVAL;
    case LT_RANGE: return DAFS_ST_RANGE;
    case LT_RESOURCE: return DAFS_ST_NOLCK;
    case LT_BUSY: return DAFS_ST_AGAIN; /* a rollback is under way: it ends */
    case LT_IO: return DAFS_ST_IO;
    case LT_DEADLK: return DAFS_ST_DEADLK;
    case LT_GRACE: return DAFS_ST_GRACE;
    case LT_NOGRACE: return DAFS_ST_INVAL; /* RECLAIM outside a grace period */
    default: return DAFS_ST_SERVERFAULT; /* LT_SHUTDOWN, LT_NOENT: not for these ops */
    }
}

/* The request as the table sees it, once its target is checked: a regular
 * file of the export, and (when it names one) an open state of this session
 * for that very handle.  Locking needs no particular access (flock(2) locks
 * a read-only descriptor exclusively); the kernel on the client checks what
 * fcntl(2) requires. */
static int make_req(op_ctx *c, const dafs_lock_req *r, lt_req *out)
{
    int status;
    if (r->stateid != 0) {
        ops_data_fd d;
        status = ops_data_state(c, &r->fh, r->stateid, 0, &d);
        if (status == DAFS_ST_OK)
            ops_data_close(c, &d);
    } else {
        int fd;
        struct stat st;
        status = ops_fh_open(c, &r->fh, &fd, &st);
        if (status == DAFS_ST_OK) {
            close(fd);
            if (S_ISDIR(st.st_mode))
                status = DAFS_ST_ISDIR;
            else if (!S_ISREG(st.st_mode))
                status = DAFS_ST_INVAL;
        }
    }
    if (status != DAFS_ST_OK)
        return status;
    memset(out, 0, sizeof *out);
    out->fid.len = r->fh.len;
    memcpy(out->fid.b, r->fh.data, r->fh.len);
    out->who = (lt_owner){.session = c->sess->id, .owner = r->owner};
    out->stateid = r->stateid;
    out->type = r->type;
    out->flags = r->flags;
    out->offset = r->offset;
    out->length = r->length;
    return DAFS_ST_OK;
}

/* A queued LOCK: answer it now if its answer came first, else remember it. */
static int queued(op_ctx *c, const lt_req *q, uint64_t waiter_id)
{
    lock_wait *mine = calloc(1, sizeof *mine);
    bool remembered = false;
    pthread_mutex_lock(&reg.mu);
    lock_wait *early = take_wait_locked(waiter_id);
    if (early == NULL && mine != NULL) {
        *mine = (lock_wait){.waiter_id = waiter_id, .session = c->sess->id,
                            .xid = c->req->hdr.xid, .owner = q->who.owner, .fid = q->fid,
                            .next = reg.waits};
        reg.waits = mine;
        remembered = true;
    }
    pthread_mutex_unlock(&reg.mu);
    if (early != NULL) {
        int st = early->status;
        free(early);
        free(mine);
        return st;
    }
    if (!remembered) {
        /* no memory to remember it: give the place up.  (Granted in the
         * meantime, the lock stays with the session until it unlocks,
         * closes or ends; its early answer is dropped at shutdown.) */
        (void)locktab_cancel(c->srv->locks, waiter_id);
        return DAFS_ST_NOLCK;
    }
    return OPCTX_REPLY_LATER;
}

static int op_lock(op_ctx *c, const lt_req *q, bool wait)
{
    uint64_t waiter = 0;
    lt_conflict conflict;
    int lt = locktab_lock(c->srv->locks, q, wait, &waiter, &conflict);
    if (lt == LT_QUEUED && session_is_closed(&c->srv->sessions, c->sess)) {
        /* queued after the session's end released its waiters: it would
         * stand in everyone's way, answered to nobody */
        if (locktab_cancel(c->srv->locks, waiter) != LT_OK) {
            pthread_mutex_lock(&reg.mu);
            free(take_wait_locked(waiter)); /* its early answer */
            pthread_mutex_unlock(&reg.mu);
        }
        return DAFS_ST_INTR;
    }
    if (lt == LT_QUEUED)
        return queued(c, q, waiter);
    /* The session may have closed while this request ran, after its locks
     * were released: what was just granted would be held by nobody. */
    if (lt == LT_OK && session_is_closed(&c->srv->sessions, c->sess))
        locktab_release_session(c->srv->locks, c->sess->id, LT_END_LEASE);
    return wire_status(lt);
}

/* LOCK_CANCEL: end the owner's queued LOCK on the file (answered INTR).
 * NOENT when there is none: it was granted or refused meanwhile, and its
 * answer is on the way. */
static int op_cancel(op_ctx *c, const lt_req *q)
{
    pthread_mutex_lock(&reg.mu);
    lock_wait *w = reg.waits;
    while (w != NULL && (w->early || w->session != c->sess->id || w->owner != q->who.owner ||
                         w->fid.len != q->fid.len || memcmp(w->fid.b, q->fid.b, q->fid.len) != 0))
        w = w->next;
    uint64_t waiter = w != NULL ? w->waiter_id : 0;
    pthread_mutex_unlock(&reg.mu);
    if (w == NULL || locktab_cancel(c->srv->locks, waiter) != LT_OK)
        return DAFS_ST_NOENT;
    pthread_mutex_lock(&reg.mu);
    w = take_wait_locked(waiter); /* cancelled: no grant will come for it */
    if (w != NULL)
        answer_locked(w->session, w->xid, DAFS_ST_INTR);
    dfab *f = reg.fabric;
    pthread_mutex_unlock(&reg.mu);
    free(w);
    if (f != NULL)
        dfab_wake(f);
    return DAFS_ST_OK;
}

static int op_lockt(op_ctx *c, const lt_req *q)
{
    lt_conflict k;
    int lt = locktab_test(c->srv->locks, q, &k);
    dafs_lockt_rep *rep = &c->rep.u.lockt;
    memset(rep, 0, sizeof *rep);
    if (lt == LT_DENIED || lt == LT_BROKEN) {
        rep->found = 1;
        rep->type = k.type;
        rep->flags = k.flags & (DAFS_WIRE_LOCK_PERSIST | DAFS_WIRE_LOCK_AUTORECOVER);
        rep->state = lt == LT_BROKEN && k.state == LT_HELD ? LT_BROKEN_STATE : k.state;
        rep->session = k.who.session;
        rep->owner = k.who.owner;
        rep->offset = k.offset;
        rep->length = k.length;
        return DAFS_ST_OK;
    }
    return wire_status(lt);
}

int ops_lock(op_ctx *c)
{
    if (c->srv->locks == NULL)
        return DAFS_ST_NOTSUP;
    lt_req q;
    int status = make_req(c, &c->req->u.lock, &q);
    if (status != DAFS_ST_OK)
        return status;
    q.flags &= ~DAFS_WIRE_LOCK_WAIT; /* the table's flags are the other bits */
    switch (c->req->hdr.opcode) {
    case DAFS_OP_LOCK: return op_lock(c, &q, (c->req->u.lock.flags & DAFS_WIRE_LOCK_WAIT) != 0);
    case DAFS_OP_LOCK_CANCEL: return op_cancel(c, &q);
    case DAFS_OP_LOCK_ABORT: {
        int lt = locktab_abort(c->srv->locks, &q);
        return lt == LT_NOENT ? DAFS_ST_NOENT : wire_status(lt);
    }
    case DAFS_OP_LOCKT: return op_lockt(c, &q);
    case DAFS_OP_LOCKU: return wire_status(locktab_unlock(c->srv->locks, &q));
    default: return DAFS_ST_BADOP;
    }
}

/* ---- the I/O gate ------------------------------------------------------- */

bool locks_any(server *srv)
{
    return srv->locks != NULL && !locktab_empty(srv->locks);
}

/* Save what a change by the AUTORECOVER holder will overwrite, through a
 * descriptor of the server's own (the caller's may be write-only). */
static int save_undo(server *srv, const dafs_fh *fh, int kind, uint64_t off, uint64_t len)
{
    int fd;
    struct stat st;
    cred_suspend();
    int status = export_open_fh(&srv->exp, fh, O_RDWR, &fd, &st);
    cred_resume();
    if (status != DAFS_ST_OK)
        return status;
    int rc = kind == LOCKS_IO_TRUNCATE
                 ? undoset_before_truncate(srv->undo, fh->data, fh->len, fd, off)
                 : undoset_before_write(srv->undo, fh->data, fh->len, fd, off, len);
    close(fd);
    if (rc != 0)
        log_error("undo log of an AUTORECOVER write: %s (write refused)", strerror(-rc));
    return rc == 0 ? DAFS_ST_OK : DAFS_ST_IO;
}

int locks_io_begin(server *srv, uint64_t session_id, const dafs_fh *fh, int kind, uint64_t off,
                   uint64_t len, locks_io *io)
{
    io->counted = false;
    if (!locks_any(srv))
        return DAFS_ST_OK;
    lt_fid fid = {.len = fh->len};
    memcpy(fid.b, fh->data, fh->len);
    bool write = kind != LOCKS_IO_READ, undo = false;
    /* a truncation touches everything from the new size on */
    uint64_t check_len = kind == LOCKS_IO_TRUNCATE ? 0 : len;
    int lt = locktab_io_begin(srv->locks, &fid, session_id, off, check_len, write, &undo,
                              &io->counted);
    if (lt != LT_OK)
        return wire_status(lt);
    io->fid_len = fid.len;
    memcpy(io->fid, fid.b, fid.len);
    int status = DAFS_ST_OK;
    if (undo && kind == LOCKS_IO_OTHER)
        status = DAFS_ST_NOTSUP;
    else if (undo)
        status = save_undo(srv, fh, kind, off, len);
    if (status != DAFS_ST_OK)
        locks_io_end(srv, io);
    return status;
}

void locks_io_end(server *srv, locks_io *io)
{
    if (!io->counted)
        return;
    lt_fid fid = {.len = io->fid_len};
    memcpy(fid.b, io->fid, io->fid_len);
    locktab_io_end(srv->locks, &fid);
    io->counted = false;
}
