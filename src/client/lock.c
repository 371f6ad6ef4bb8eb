/*
 * lock.c — byte-range locks (DAFS LOCK, LOCKT, LOCKU, LOCK_CANCEL, ABORT_LT:
 * protocol ops 50-54): dafs_lock, dafs_lock_test, dafs_unlock,
 * dafs_lock_cancel, dafs_lock_abort on an open file.  Locks are tied to the file's open state, so dafs_close
 * releases them on the server.
 *
 * DAFS_LOCK_WAIT: the server queues the LOCK (in order with other waiters)
 * and answers it when it is granted, so the call waits for its reply with no
 * deadline; the session's keepalive ends the wait if the server goes away.
 * While it waits the request holds one of the session's credits.  Only a
 * grace period after a server restart is waited out here, by asking again.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "client.h"

#define GRACE_RETRY_FIRST_US 1000L
#define GRACE_RETRY_MAX_US 500000L
#define LOCK_WAIT_FOREVER_MS 0x7fffffffu /* 24 days: the keepalive ends it sooner */

static int lock_call(dafs_file *f, uint16_t op, uint64_t owner, int type, unsigned flags,
                     uint64_t offset, uint64_t length, dafs_reply *rep)
{
    if (f == NULL)
        return -EINVAL;
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = op;
    req.hdr.cred = f->cred;
    req.u.lock = (dafs_lock_req){.fh = f->fh, .stateid = f->stateid, .owner = owner,
                                 .offset = offset, .length = length, .type = (uint32_t)type,
                                 .flags = flags};
    client_slot *slot = NULL;
    int rc = engine_acquire(f->s, true, &slot);
    if (rc < 0)
        return rc;
    rc = engine_send(slot, &req);
    if (rc == 0)
        rc = engine_wait_for(slot, rep, (flags & DAFS_WIRE_LOCK_WAIT) ? LOCK_WAIT_FOREVER_MS
                                                                       : f->s->timeout_ms);
    engine_release(slot); /* the LOCKT reply body has no pointers into the buffer */
    return rc;
}

static bool type_ok(int type)
{
    return type == DAFS_LOCK_SHARED || type == DAFS_LOCK_EXCLUSIVE;
}

static void pause_us(long us)
{
    struct timespec ts = {.tv_sec = us / 1000000L, .tv_nsec = (us % 1000000L) * 1000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int dafs_lock(dafs_file *f, uint64_t owner, int type, unsigned flags, uint64_t offset,
              uint64_t length)
{
    const unsigned known = DAFS_LOCK_WAIT | DAFS_LOCK_PERSIST | DAFS_LOCK_AUTORECOVER |
                           DAFS_LOCK_REPAIR;
    if (!type_ok(type) || (flags & ~known) != 0)
        return -EINVAL;
    /* the wire's bits are the public ones but WAIT (the public WAIT bit is
     * the wire's RECLAIM) */
    unsigned wire = (flags & (DAFS_LOCK_PERSIST | DAFS_LOCK_AUTORECOVER | DAFS_LOCK_REPAIR)) |
                    ((flags & DAFS_LOCK_WAIT) ? DAFS_WIRE_LOCK_WAIT : 0);
    long pause = GRACE_RETRY_FIRST_US;
    for (;;) {
        dafs_reply rep;
        int rc = lock_call(f, DAFS_OP_LOCK, owner, type, wire, offset, length, &rep);
        if (!(flags & DAFS_LOCK_WAIT) || rc != -DAFS_EGRACE)
            return rc;
        pause_us(pause);
        pause = pause * 2 > GRACE_RETRY_MAX_US ? GRACE_RETRY_MAX_US : pause * 2;
    }
}

int dafs_lock_abort(dafs_file *f, uint64_t owner)
{
    dafs_reply rep;
    return lock_call(f, DAFS_OP_LOCK_ABORT, owner, 0, 0, 0, 0, &rep);
}

int dafs_lock_cancel(dafs_file *f, uint64_t owner)
{
    dafs_reply rep;
    return lock_call(f, DAFS_OP_LOCK_CANCEL, owner, 0, 0, 0, 0, &rep);
}

int dafs_lock_test(dafs_file *f, uint64_t owner, int type, uint64_t offset, uint64_t length,
                   dafs_lock_conflict *c)
{
    if (!type_ok(type))
        return -EINVAL;
    dafs_reply rep;
    int rc = lock_call(f, DAFS_OP_LOCKT, owner, type, 0, offset, length, &rep);
    if (rc < 0)
        return rc;
    const dafs_lockt_rep *k = &rep.u.lockt;
    if (!k->found)
        return 0;
    if (c != NULL)
        *c = (dafs_lock_conflict){
            .owner = k->owner, .session = k->session, .offset = k->offset,
            .length = k->length, .type = (int)k->type,
            .flags = k->flags & (DAFS_LOCK_PERSIST | DAFS_LOCK_AUTORECOVER),
            .broken = k->state == DAFS_LOCK_STATE_BREAKABLE ||
                      k->state == DAFS_LOCK_STATE_BROKEN};
    return 1;
}

int dafs_unlock(dafs_file *f, uint64_t owner, uint64_t offset, uint64_t length)
{
    dafs_reply rep;
    return lock_call(f, DAFS_OP_LOCKU, owner, 0, 0, offset, length, &rep);
}
