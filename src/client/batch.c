/*
 * batch.c — dafs_batch(): many I/Os in few BATCH_SUBMIT requests.
 *
 * The I/Os are cut into messages: an entry joins the current message while
 * the message stays within the negotiated max_request (each entry's size is
 * bounded from above before it is added), its reply (a 24-byte completion
 * per entry) within max_response, the protocol's DAFS_BATCH_MAX entries, and
 * while the entries share one credential (the header carries one).  Up to
 * CLIENT_PIPELINE_DEPTH messages are in flight, never more than the credit
 * grant (engine_acquire waits for a credit), and replies are taken in order.
 *
 * Memory: a buffer inside a dafs_mem_register'ed region is used as is;
 * another one is registered for the call (one registration per entry; see
 * file.c for why there is no bounce pool), except writes of at most
 * BATCH_INLINE_MAX bytes, which travel in the request.
 *
 * Results: every entry gets exactly one result.  An entry the library
 * refuses (bad op, file of another session, len above max_io, a read on a
 * write-only file) fails alone without being sent; an entry the server
 * refuses fails alone; a message the server refuses as a whole, or a
 * session that breaks, fails that message's entries (and the ones not yet
 * sent) with that error, and dafs_batch then returns it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"

#define BATCH_INLINE_MAX 256u  /* writes this small travel in the request */
#define BATCH_REQ_FIXED 24u    /* mode, usec_window, num_completions, bc_credits, nentries */

/* One message being built or in flight. */
typedef struct bmsg {
    client_slot *slot;
    unsigned first, n;  /* entries ios[first .. first+n) (refused ones included) */
    unsigned nsent;     /* entries carried */
} bmsg;

typedef struct bcall {
    dafs_session *s;
    const dafs_io *ios;
    dafs_cqe *res;
    unsigned n;
    dfab_mr **own;      /* per entry: registered for this call, or NULL */
    uint8_t *sent;      /* per entry: 0 not carried, 1 carried (its result comes from the
                         * reply), 2 its completion was seen */
    dafs_batch_entry *ent; /* the message being built */
    bmsg q[CLIENT_PIPELINE_DEPTH];
    unsigned head, count;
    int err;            /* first whole-message error */
} bcall;

static size_t round8(size_t n) { return (n + 7u) & ~(size_t)7u; }

/* Upper bound of one entry's encoded size. */
size_t batch_entry_size(const dafs_batch_entry *e)
{
    size_t n = 24 + round8(1u + e->fh.len) + 16;
    if (e->flags & DAFS_BENT_INLINE)
        n += 8 + round8(e->count);
    else if (e->op != DAFS_BATCH_COMMIT)
        n += 24;
    return n;
}

size_t batch_req_room(const dafs_session *s)
{
    return s->max_request - DAFS_HDR_SIZE - BATCH_REQ_FIXED;
}

unsigned batch_max_entries(const dafs_session *s)
{
    size_t rep_room = (s->max_response - DAFS_HDR_SIZE - DAFS_BATCH_REP_FIXED) / DAFS_BATCH_CPL_SIZE;
    return rep_room < DAFS_BATCH_MAX ? (unsigned)rep_room : DAFS_BATCH_MAX;
}

static void set_result(bcall *b, unsigned i, int64_t res, uint64_t offset)
{
    b->res[i].user_data = b->ios[i].user_data;
    b->res[i].res = res;
    b->res[i].offset = offset;
}

int batch_entry_describe(const dafs_session *s, const dafs_io *io, size_t inline_max,
                         dafs_batch_entry *e)
{
    dafs_file *f = io->file;
    if (f == NULL || f->s != s)
        return -EINVAL;
    memset(e, 0, sizeof *e);
    e->fh = f->fh;
    e->stateid = f->stateid;
    e->hint = io->hint;
    e->offset = io->offset;
    int acc = f->flags & O_ACCMODE;
    bool write = io->op == DAFS_IO_WRITE || io->op == DAFS_IO_APPEND;
    switch (io->op) {
    case DAFS_IO_READ: e->op = DAFS_BATCH_READ; break;
    case DAFS_IO_WRITE: e->op = DAFS_BATCH_WRITE; break;
    case DAFS_IO_APPEND: e->op = DAFS_BATCH_APPEND; e->offset = 0; break;
    case DAFS_IO_COMMIT:
        e->op = DAFS_BATCH_COMMIT;
        e->stable = (io->flags & DAFS_IO_DATASYNC) ? DAFS_DATA_SYNC : DAFS_FILE_SYNC;
        return (io->flags & ~DAFS_IO_DATASYNC) ? -EINVAL : 0;
    default: return -EINVAL;
    }
    if ((io->flags & ~DAFS_IO_STABLE) || (!write && (io->flags & DAFS_IO_STABLE)))
        return -EINVAL;
    if ((write && acc == O_RDONLY) || (!write && acc == O_WRONLY))
        return -EBADF;
    if (io->len > s->max_io || (io->buf == NULL && io->len > 0))
        return -EINVAL;
    if (io->offset > (uint64_t)INT64_MAX || (uint64_t)io->len > (uint64_t)INT64_MAX - io->offset)
        return -EFBIG;
    e->count = (uint32_t)io->len;
    e->stable = (io->flags & DAFS_IO_STABLE) ? DAFS_FILE_SYNC : DAFS_UNSTABLE;
    if (write && io->len <= inline_max && io->len <= s->inline_max) {
        e->flags = DAFS_BENT_INLINE;
        e->data = (dafs_bytes){io->buf, (uint32_t)io->len};
    }
    return 0;
}

int batch_entry_seg(dafs_session *s, const dafs_io *io, dfab_mr *mr, dafs_batch_entry *e,
                    dfab_mr **own)
{
    *own = NULL;
    if ((e->flags & DAFS_BENT_INLINE) || e->op == DAFS_BATCH_COMMIT)
        return 0;
    bool write = io->op == DAFS_IO_WRITE || io->op == DAFS_IO_APPEND;
    if (mr == NULL && io->len > 0)
        mr = mem_find_region(s, io->buf, io->len);
    if (mr == NULL && io->len > 0) {
        unsigned access = DFAB_ACCESS_LOCAL |
                          (write ? DFAB_ACCESS_REMOTE_READ : DFAB_ACCESS_REMOTE_WRITE);
        int rc = dfab_mr_reg(s->fab, io->buf, io->len, access, &mr);
        if (rc < 0)
            return rc;
        *own = mr;
    }
    if (mr != NULL) {
        e->seg.addr = mr->remote_addr + (uint64_t)((uint8_t *)io->buf - (uint8_t *)mr->base);
        e->seg.key = mr->key;
    }
    e->seg.len = io->len;
    return 0;
}

/* Check one I/O and describe it as an entry (registering its buffer when
 * needed).  Returns 0 or the error the entry fails with. */
static int make_entry(bcall *b, unsigned i, dafs_batch_entry *e)
{
    const dafs_io *io = &b->ios[i];
    b->res[i].user_data = io->user_data;
    int rc = batch_entry_describe(b->s, io, BATCH_INLINE_MAX, e);
    if (rc == 0)
        rc = batch_entry_seg(b->s, io, NULL, e, &b->own[i]);
    e->request_id = i;
    return rc;
}

/* Every carried entry of m fails with err (a whole-message failure). */
static void fail_message(bcall *b, const bmsg *m, int err)
{
    if (b->err == 0)
        b->err = err;
    for (unsigned i = m->first; i < m->first + m->n; i++)
        if (b->sent[i])
            set_result(b, i, err, b->ios[i].offset);
}

static int take_reply(bcall *b, const bmsg *m, const dafs_reply *rep)
{
    const dafs_batch_rep *r = &rep->u.batch;
    if (r->ncompl != m->nsent)
        return -DAFS_EPROTO;
    /* check all before using any: a bad reply fails the message as a whole */
    for (uint32_t k = 0; k < r->ncompl; k++) {
        dafs_batch_cpl c;
        dafs_batch_cpl_get(r, k, &c);
        if (c.request_id < m->first || c.request_id >= m->first + m->n ||
            b->sent[c.request_id] != 1)
            return -DAFS_EPROTO; /* not ours, or twice */
        b->sent[c.request_id] = 2;
        if (c.status == 0 && c.count > b->ios[c.request_id].len &&
            b->ios[c.request_id].op != DAFS_IO_COMMIT)
            return -DAFS_EPROTO;
    }
    for (uint32_t k = 0; k < r->ncompl; k++) {
        dafs_batch_cpl c;
        dafs_batch_cpl_get(r, k, &c);
        unsigned i = (unsigned)c.request_id;
        int64_t res = c.status != 0 ? client_map_status(c.status)
                      : b->ios[i].op == DAFS_IO_COMMIT ? 0 : (int64_t)c.count;
        set_result(b, i, res, c.offset);
    }
    return 0;
}

static void complete_oldest(bcall *b)
{
    bmsg m = b->q[b->head];
    b->head = (b->head + 1) % CLIENT_PIPELINE_DEPTH;
    b->count--;
    dafs_reply rep;
    int rc = engine_wait(m.slot, &rep);
    if (rc == 0)
        rc = take_reply(b, &m, &rep);
    engine_release(m.slot);
    if (rc < 0)
        fail_message(b, &m, rc);
}

/* Send entries ent[0..nent) (ios[first..first+n)) as one message. */
static void send_message(bcall *b, unsigned first, unsigned n, unsigned nent, uint32_t cred)
{
    bmsg m = {.first = first, .n = n, .nsent = nent};
    if (nent == 0)
        return;
    /* wait for credits by completing our own oldest message first */
    int rc;
    while ((rc = engine_acquire(b->s, b->count == 0, &m.slot)) == -EAGAIN ||
           (rc == 0 && b->count == CLIENT_PIPELINE_DEPTH)) {
        if (rc == 0) {
            engine_release(m.slot);
            m.slot = NULL;
        }
        complete_oldest(b);
    }
    if (rc == 0 && b->err == 0) {
        dafs_request req;
        batch_request_init(&req, DAFS_BATCH_SYNC, cred, b->ent, nent);
        rc = engine_send(m.slot, &req);
        if (rc < 0)
            engine_release(m.slot);
    } else if (rc == 0) {
        engine_release(m.slot);
        rc = b->err; /* an earlier message failed as a whole: send no more */
    }
    if (rc < 0) {
        fail_message(b, &m, rc);
        return;
    }
    b->q[(b->head + b->count) % CLIENT_PIPELINE_DEPTH] = m;
    b->count++;
}

static void run_batch(bcall *b)
{
    dafs_session *s = b->s;
    size_t req_room = batch_req_room(s);
    unsigned max_entries = batch_max_entries(s);
    unsigned first = 0, nent = 0;
    size_t used = 0;
    uint32_t cred = 0;
    for (unsigned i = 0; i < b->n; i++) {
        dafs_batch_entry e;
        int rc = make_entry(b, i, &e);
        if (rc < 0) {
            set_result(b, i, rc, b->ios[i].offset);
            continue;
        }
        size_t sz = batch_entry_size(&e);
        uint32_t ecred = b->ios[i].file->cred;
        if (nent > 0 && (sz > req_room - used || nent == max_entries || ecred != cred)) {
            send_message(b, first, i - first, nent, cred);
            first = i;
            nent = 0;
            used = 0;
        }
        if (nent == 0)
            first = i;
        cred = ecred;
        b->ent[nent++] = e;
        b->sent[i] = 1;
        used += sz;
    }
    if (nent > 0)
        send_message(b, first, b->n - first, nent, cred);
    while (b->count > 0)
        complete_oldest(b);
}

int dafs_batch(dafs_session *s, const dafs_io *ios, dafs_cqe *results, unsigned n)
{
    if (s == NULL || (n > 0 && (ios == NULL || results == NULL)))
        return -EINVAL;
    if (n == 0)
        return 0;
    int broken = atomic_load(&s->broken);
    if (broken != 0)
        return broken;
    bcall b = {.s = s, .ios = ios, .res = results, .n = n};
    unsigned per_msg = DAFS_BATCH_MAX;
    b.own = calloc(n, sizeof *b.own);
    b.sent = calloc(n, sizeof *b.sent);
    b.ent = calloc(per_msg, sizeof *b.ent);
    if (b.own == NULL || b.sent == NULL || b.ent == NULL) {
        free(b.own);
        free(b.sent);
        free(b.ent);
        return -ENOMEM;
    }
    run_batch(&b);
    for (unsigned i = 0; i < n; i++)
        dfab_mr_close(b.own[i]);
    free(b.own);
    free(b.sent);
    free(b.ent);
    return b.err;
}

/* ==== asynchronous batches: the internal API of client.h ===================
 *
 * Each entry in flight has a record in the session's table; its request_id
 * is generation << 32 | index, so a completion for an older use of a record
 * (or a forged one) is dropped.  A record leaves the table under the table's
 * lock exactly once — by its completion, or by batch_async_fail_all when the
 * session breaks — and its callback runs after that, without the lock.
 *
 * Back channel: the engine posts CLIENT_NOTIFY_RECVS receives more than it
 * needs for replies and grants them in bc_granted (cumulative, +1 each time
 * a notification's buffer is reposted); every BATCH_SUBMIT and HURRY_UP
 * carries it.  A waiter that has used up half the grant the server knows
 * sends an empty asynchronous BATCH_SUBMIT (which only renews the grant), so
 * the server never waits for buffers the client has.  The same empty submit
 * after a second of silence with entries in flight finds a dead server.
 */
typedef struct async_rec {
    uint32_t gen;
    bool live;
    int op;
    uint64_t offset;
    void *user_data;
    dfab_mr *own;
    batch_async_cb cb;
    void *arg;
} async_rec;

struct batch_async {
    pthread_mutex_t mu;
    async_rec rec[CLIENT_ASYNC_MAX];
    uint32_t free_idx[CLIENT_ASYNC_MAX];
    uint32_t nfree;
    uint32_t live;
    atomic_uint notifications;
    atomic_uint pushbacks; /* WHOA answers waited out */
};

static struct batch_async *async_get(dafs_session *s)
{
    pthread_mutex_lock(&s->async_lock);
    struct batch_async *a = atomic_load(&s->async);
    if (a == NULL) {
        a = calloc(1, sizeof *a);
        if (a != NULL && pthread_mutex_init(&a->mu, NULL) == 0) {
            for (uint32_t i = 0; i < CLIENT_ASYNC_MAX; i++)
                a->free_idx[i] = CLIENT_ASYNC_MAX - 1 - i;
            a->nfree = CLIENT_ASYNC_MAX;
            atomic_store(&s->async, a);
        } else {
            free(a);
            a = NULL;
        }
    }
    pthread_mutex_unlock(&s->async_lock);
    return a;
}

/* Take record id out of the table (if still there): its fields in *out. */
static bool rec_take(struct batch_async *a, uint64_t id, async_rec *out)
{
    uint32_t idx = (uint32_t)(id & 0xffffffffu), gen = (uint32_t)(id >> 32);
    bool ok = false;
    pthread_mutex_lock(&a->mu);
    if (idx < CLIENT_ASYNC_MAX && a->rec[idx].live && a->rec[idx].gen == gen) {
        *out = a->rec[idx];
        a->rec[idx].live = false;
        a->free_idx[a->nfree++] = idx;
        a->live--;
        ok = true;
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

static void rec_finish(const async_rec *r, int64_t res, uint64_t offset)
{
    dfab_mr_close(r->own); /* the server is done with the buffer */
    dafs_cqe cqe = {.user_data = r->user_data, .res = res, .offset = offset};
    r->cb(r->arg, &cqe);
}

void batch_notify(dafs_session *s, const uint8_t *buf, size_t len)
{
    struct batch_async *a = atomic_load(&s->async);
    dafs_notify m;
    if (a == NULL || dafs_decode_notify(buf, len, &m) != 0)
        return; /* nothing of ours can be in it: drop */
    atomic_fetch_add(&a->notifications, 1u);
    for (uint32_t k = 0; k < m.batch.ncompl; k++) {
        dafs_batch_cpl c;
        dafs_batch_cpl_get(&m.batch, k, &c);
        async_rec r;
        if (!rec_take(a, c.request_id, &r))
            continue; /* unknown or already completed: never twice */
        int64_t res = c.status != 0 ? client_map_status(c.status)
                      : r.op == DAFS_IO_COMMIT ? 0 : (int64_t)c.count;
        rec_finish(&r, res, c.offset);
    }
}

void batch_async_fail_all(dafs_session *s, int err)
{
    struct batch_async *a = atomic_load(&s->async);
    if (a == NULL)
        return;
    for (uint32_t idx = 0; idx < CLIENT_ASYNC_MAX; idx++) {
        pthread_mutex_lock(&a->mu);
        bool live = a->rec[idx].live;
        uint64_t id = ((uint64_t)a->rec[idx].gen << 32) | idx;
        pthread_mutex_unlock(&a->mu);
        async_rec r;
        if (live && rec_take(a, id, &r))
            rec_finish(&r, err != 0 ? err : -DAFS_ETRANSPORT, r.offset);
    }
}

void batch_async_free(dafs_session *s)
{
    struct batch_async *a = atomic_load(&s->async);
    if (a == NULL)
        return;
    batch_async_fail_all(s, -DAFS_EBADSESSION);
    atomic_store(&s->async, NULL);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

unsigned batch_async_in_flight(dafs_session *s)
{
    struct batch_async *a = atomic_load(&s->async);
    if (a == NULL)
        return 0;
    pthread_mutex_lock(&a->mu);
    unsigned n = a->live;
    pthread_mutex_unlock(&a->mu);
    return n;
}

unsigned batch_async_pushbacks(dafs_session *s)
{
    struct batch_async *a = atomic_load(&s->async);
    return a != NULL ? atomic_load(&a->pushbacks) : 0;
}

unsigned batch_async_notifications(dafs_session *s)
{
    struct batch_async *a = atomic_load(&s->async);
    return a != NULL ? atomic_load(&a->notifications) : 0;
}

void batch_request_init(dafs_request *req, uint32_t mode, uint32_t cred,
                        const dafs_batch_entry *ent, unsigned n)
{
    memset(req, 0, sizeof *req);
    req->hdr.opcode = DAFS_OP_BATCH_SUBMIT;
    req->hdr.cred = cred;
    req->u.batch.mode = mode;
    req->u.batch.nentries = n;
    req->u.batch.entries = ent;
}

/* One asynchronous BATCH_SUBMIT (possibly empty); waits for its ack. */
static int send_async(dafs_session *s, const dafs_batch_entry *ent, unsigned n, uint32_t cred,
                      uint32_t num_completions, uint32_t usec_window)
{
    dafs_request req;
    batch_request_init(&req, DAFS_BATCH_ASYNC, cred, ent, n);
    req.u.batch.usec_window = usec_window;
    req.u.batch.num_completions = num_completions;
    uint32_t grant = atomic_load(&s->bc_granted);
    req.u.batch.bc_credits = grant;
    int rc = engine_call_simple(s, &req);
    if (rc == 0)
        atomic_store(&s->bc_told, grant);
    return rc;
}

/* Renew the grant the server knows when half of it is used up. */
static int renew_grant(dafs_session *s, bool force)
{
    uint32_t used = atomic_load(&s->bc_granted) - atomic_load(&s->bc_told);
    if (!force && used < CLIENT_NOTIFY_RECVS / 2)
        return 0;
    return send_async(s, NULL, 0, 0, 0, 0);
}

int batch_async_wait(dafs_session *s, unsigned left, int timeout_ms)
{
    uint64_t start = engine_now_ms(), last_seen = start;
    unsigned seen = batch_async_notifications(s);
    for (;;) {
        int err = atomic_load(&s->broken);
        if (err != 0) {
            batch_async_fail_all(s, err);
            return err;
        }
        if (batch_async_in_flight(s) <= left)
            return 0;
        uint64_t now = engine_now_ms();
        if (timeout_ms >= 0 && now - start >= (uint64_t)timeout_ms)
            return -ETIMEDOUT;
        unsigned n = batch_async_notifications(s);
        if (n != seen) {
            seen = n;
            last_seen = now;
        }
        /* a second of silence: renew the grant anyway (and learn if the server is gone) */
        int rc = renew_grant(s, now - last_seen >= 1000);
        if (now - last_seen >= 1000)
            last_seen = now;
        if (rc == 0)
            rc = engine_progress_wait(s, 10);
        if (rc < 0) {
            batch_async_fail_all(s, rc);
            return rc;
        }
    }
}

int batch_async_hurry(dafs_session *s)
{
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_HURRY_UP;
    uint32_t grant = atomic_load(&s->bc_granted);
    req.u.hurry.bc_credits = grant;
    int rc = engine_call_simple(s, &req);
    if (rc == 0)
        atomic_store(&s->bc_told, grant);
    else if (atomic_load(&s->broken) != 0)
        batch_async_fail_all(s, atomic_load(&s->broken));
    return rc;
}

/* Send a message of asynchronous entries; on WHOA wait for completions and
 * send it again.  On another error its entries complete with that error. */
static int submit_message(dafs_session *s, struct batch_async *a, const dafs_batch_entry *ent,
                          unsigned n, uint32_t cred, uint32_t num_completions,
                          uint32_t usec_window)
{
    for (;;) {
        unsigned before = batch_async_notifications(s);
        unsigned in_flight = batch_async_in_flight(s);
        int rc = send_async(s, ent, n, cred, num_completions, usec_window);
        if (rc != -EBUSY) { /* EBUSY: the server's WHOA */
            if (rc < 0)
                for (unsigned i = 0; i < n; i++) {
                    async_rec r;
                    if (rec_take(a, ent[i].request_id, &r))
                        rec_finish(&r, rc, r.offset);
                }
            return rc;
        }
        /* pushed back: nothing was accepted; wait for a completion, then again */
        (void)in_flight;
        atomic_fetch_add(&a->pushbacks, 1u);
        uint64_t until = engine_now_ms() + s->timeout_ms;
        rc = 0; /* (the server sends what it has before its WHOA: maybe already here) */
        while (batch_async_notifications(s) == before && engine_now_ms() < until) {
            rc = renew_grant(s, false);
            if (rc == 0)
                rc = engine_progress_wait(s, 10);
            if (rc < 0)
                break;
        }
        if (rc < 0 || batch_async_notifications(s) == before) {
            rc = rc < 0 ? rc : -ETIMEDOUT;
            for (unsigned i = 0; i < n; i++) {
                async_rec r;
                if (rec_take(a, ent[i].request_id, &r))
                    rec_finish(&r, rc, r.offset);
            }
            return rc;
        }
    }
}

int batch_async_submit(dafs_session *s, const dafs_io *ios, unsigned n, uint32_t num_completions,
                       uint32_t usec_window, batch_async_cb cb, void *arg)
{
    if (s == NULL || cb == NULL || (n > 0 && ios == NULL))
        return -EINVAL;
    int broken = atomic_load(&s->broken);
    if (broken != 0)
        return broken;
    struct batch_async *a = async_get(s);
    if (a == NULL)
        return -ENOMEM;
    pthread_mutex_lock(&a->mu);
    unsigned room = a->nfree;
    pthread_mutex_unlock(&a->mu);
    if (n > room)
        n = room; /* a prefix: the caller submits the rest later */
    if (n == 0)
        return room == 0 ? -EAGAIN : send_async(s, NULL, 0, 0, num_completions, usec_window);
    dafs_cqe *res = calloc(n, sizeof *res);
    dfab_mr **own = calloc(n, sizeof *own);
    dafs_batch_entry *ent = calloc(DAFS_BATCH_MAX, sizeof *ent);
    if (res == NULL || own == NULL || ent == NULL) {
        free(res);
        free(own);
        free(ent);
        return -ENOMEM;
    }
    bcall b = {.s = s, .ios = ios, .res = res, .n = n, .own = own};
    size_t req_room = batch_req_room(s);
    unsigned nent = 0;
    size_t used = 0;
    uint32_t cred = 0;
    int err = 0;
    for (unsigned i = 0; i < n; i++) {
        dafs_batch_entry e;
        int rc = err != 0 ? err : make_entry(&b, i, &e);
        if (rc < 0) { /* fails alone, through its callback like the others */
            dafs_cqe cqe = {.user_data = ios[i].user_data, .res = rc, .offset = ios[i].offset};
            dfab_mr_close(own[i]);
            cb(arg, &cqe);
            continue;
        }
        size_t sz = batch_entry_size(&e);
        uint32_t ecred = ios[i].file->cred;
        if (nent > 0 && (sz > req_room - used || nent == DAFS_BATCH_MAX || ecred != cred)) {
            int src = submit_message(s, a, ent, nent, cred, num_completions, usec_window);
            if (src < 0 && atomic_load(&s->broken) != 0)
                err = src;
            nent = 0;
            used = 0;
        }
        cred = ecred;
        pthread_mutex_lock(&a->mu);
        uint32_t idx = a->free_idx[--a->nfree];
        async_rec *r = &a->rec[idx];
        r->gen++;
        r->live = true;
        r->op = ios[i].op;
        r->offset = ios[i].offset;
        r->user_data = ios[i].user_data;
        r->own = own[i];
        r->cb = cb;
        r->arg = arg;
        a->live++;
        e.request_id = ((uint64_t)r->gen << 32) | idx;
        pthread_mutex_unlock(&a->mu);
        ent[nent++] = e;
        used += sz;
    }
    if (nent > 0) {
        int src = submit_message(s, a, ent, nent, cred, num_completions, usec_window);
        if (src < 0 && atomic_load(&s->broken) != 0)
            err = src;
    }
    free(res);
    free(own);
    free(ent);
    return (int)n;
}
