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
 * Not wired yet (docs/design.md §12): blocking requests queued on the server
 * with a back-channel grant (the client retries instead), AUTORECOVER (no
 * undo log on the write path: NOTSUP), the grace period and RECLAIM after a
 * restart, and I/O checks against broken PERSIST ranges.
 */
#include "ops_lock.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "locktab.h"
#include "log.h"
#include "ops.h"

static void session_ended(void *ctx, uint64_t id, int how)
{
    locktab_release_session(ctx, id, (enum lt_end)how);
}

int locks_open(server *srv, const char **why)
{
    int rc = lockdb_open(srv->cfg.state_dir, &srv->lockdb);
    if (rc != 0) {
        *why = "cannot open the lock database (STATE_DIR/locks.mdb)";
        return rc;
    }
    locktab_config cfg = {.db = srv->lockdb};
    rc = locktab_open(&cfg, &srv->locks);
    if (rc != 0) {
        *why = "cannot load the lock table";
        lockdb_close(srv->lockdb);
        srv->lockdb = NULL;
        return rc;
    }
    srv->sessions.on_close = session_ended;
    srv->sessions.on_close_ctx = srv->locks;
    return 0;
}

/* After the workers have stopped and the session table is gone. */
void locks_close(server *srv)
{
    srv->sessions.on_close = NULL;
    if (srv->locks != NULL)
        locktab_close(srv->locks);
    if (srv->lockdb != NULL)
        lockdb_close(srv->lockdb);
    srv->locks = NULL;
    srv->lockdb = NULL;
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

static int op_lock(op_ctx *c, const lt_req *q)
{
    uint64_t waiter = 0;
    lt_conflict conflict;
    int lt = locktab_lock(c->srv->locks, q, false, &waiter, &conflict);
    /* The session may have closed while this request ran, after its locks
     * were released: what was just granted would be held by nobody. */
    if (lt == LT_OK && session_is_closed(&c->srv->sessions, c->sess))
        locktab_release_session(c->srv->locks, c->sess->id, LT_END_LEASE);
    return wire_status(lt);
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
    switch (c->req->hdr.opcode) {
    case DAFS_OP_LOCK: return op_lock(c, &q);
    case DAFS_OP_LOCKT: return op_lockt(c, &q);
    case DAFS_OP_LOCKU: return wire_status(locktab_unlock(c->srv->locks, &q));
    default: return DAFS_ST_BADOP;
    }
}
