/*
 * cq.c — asynchronous I/O: completion groups, dafs_submit, dafs_cq_reap.
 *
 * An I/O submitted to a group becomes a client_aio, taken from the group's
 * own array of `entries` records (no allocation per I/O), and goes out at
 * once on a free engine slot when the credit grant allows, else it joins the
 * session's FIFO of queued submissions (s->aio_head) and is sent as soon as
 * a slot frees: by a reply of any request, a synchronous call's release or a
 * raised grant (aio_kick).  A submission is never failed for want of credits.
 *
 * Each request is one of the existing single-request messages, built as
 * file.c builds them: READ/WRITE inline up to the inline limit (for reads,
 * the provider's one-copy size, see file.c), DIRECT above it into the
 * caller's registered region (mem_find_region) or a registration made for
 * this I/O and closed at its completion; APPEND_INLINE / APPEND_DIRECT;
 * COMMIT.  Every request carries the file's stateid and credential.  An I/O
 * longer than the session's max_io is refused (-EINVAL): it would not be one
 * request, and an async I/O is one request.
 *
 * Batches: every submission joins the FIFO and aio_kick sends from its head.
 * When the head and the I/Os after it are READ/WRITEs of one credential, a
 * run of them (at most AIO_BATCH_MAX, within the request and reply limits
 * dafs_batch also uses, batch.c) goes as ONE synchronous BATCH_SUBMIT on one
 * slot: entries built by batch.c's helpers, writes up to the session's
 * inline limit in the request as the single path sends them (so fewer fit
 * one request), reads by RMA (the I/O's region or a registration for it).
 * The I/Os are chained from the first (bnext, bn), the slot points at it,
 * and its reply (a completion per entry, request_id = position) becomes one
 * completion per I/O; a failed send, a refused request or a broken session
 * completes every one of them with the error, exactly once.
 *
 * Completions: whichever thread progresses the endpoint runs the reply's
 * callback, which claims the slot's request (engine_aio_claim_locked: the
 * reply, a failed send or a broken session, exactly once), copies inline
 * read data into the caller's buffer, frees the slot and appends a dafs_cqe
 * to the group's ring; a reaper asleep on the group is signalled, and the
 * group's eventfd (when dafs_cq_fd asked for one) goes readable as the ring
 * stops being empty and is drained when a reap empties it.
 *
 * Who progresses (see engine.c): a reaper that must wait takes the progress
 * role itself when it is free, so one thread submitting and reaping drives
 * libfabric with no thread switch per completion; otherwise it sleeps on the
 * group's condition variable and the role holder (a synchronous caller, a
 * reaper of another group, the helper) fills its ring.  A synchronous call
 * on the same session progresses async replies the same way, and a reaper
 * progresses the replies synchronous callers sleep on.  dafs_cq_reap with a
 * zero timeout polls the CQ once (dfab_poll) when the role is free.
 *
 * The helper: an event loop waiting on dafs_cq_fd calls no blocking dafs
 * function, so nobody would progress libfabric (tcp needs the client inside
 * libfabric for the server's RMA to move, and no reply becomes a completion
 * without a callback).  The first dafs_cq_fd on a session therefore starts
 * one helper thread for it: while async I/O is in flight and no application
 * thread holds the progress role, it takes the role and blocks in
 * dfab_progress; when an application thread comes to wait it wakes the
 * helper (dfab_wake), which hands the role over and steps back.  Sessions
 * that never ask for an fd never have the thread.
 *
 * Timeouts: a reaper (or the helper) that finds async requests outstanding
 * with no reply from the server for the session timeout breaks the session,
 * as a synchronous caller would.  A broken session completes every async
 * I/O in flight or queued with its error (-DAFS_ETRANSPORT), exactly once
 * (aio_fail_all), and dafs_submit then refuses new ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

#define CQ_TIMEOUT_CHECK_MS 100u /* how often a waiting reaper checks for a dead server */
#define HELPER_BACKOFF_MS 20     /* the helper's sleep after handing the role over */
#define SUBMIT_CHUNK 64u         /* I/Os taken through the locks at once by dafs_submit */
#define AIO_BATCH_MAX 16u        /* queued I/Os one BATCH_SUBMIT carries at most */

typedef struct client_aio {
    struct client_aio *next; /* the group's free list, or the session's FIFO */
    struct dafs_cq *cq;
    dafs_io io;
    dafs_file *file;
    dafs_fh fh;
    dafs_stateid stateid;
    uint32_t cred;
    bool direct;
    dfab_mr *mr;     /* DIRECT: the region used */
    bool own_mr;     /* registered for this I/O, closed at its completion */
    struct client_aio *bnext; /* the next I/O of the same BATCH_SUBMIT */
    unsigned bn;     /* the first I/O of a BATCH_SUBMIT: how many it carries; else 0 */
} client_aio;

struct dafs_cq {
    dafs_session *s;
    struct dafs_cq *next; /* the session's groups, under s->lock */
    unsigned entries;
    client_aio *aios;
    dafs_cqe *ring;       /* completions ready to reap */
    pthread_mutex_t mtx;  /* guards what follows */
    pthread_cond_t cond;  /* reapers sleep here */
    client_aio *free;
    unsigned head, ready; /* ring[head .. head+ready) */
    unsigned inflight;    /* submitted, not yet completed */
    unsigned waiters;     /* reapers asleep on cond */
    bool destroying;
    int efd;              /* eventfd of dafs_cq_fd, -1 until asked for */
};

static void deadline_ts(uint64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000u);
    ts->tv_nsec = (long)(ms % 1000u) * 1000000L;
}

static void efd_set(struct dafs_cq *cq) /* cq->mtx held */
{
    uint64_t one = 1;
    if (cq->efd >= 0 && write(cq->efd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is already non-zero, so the fd is readable */
    }
}

static void efd_clear(struct dafs_cq *cq) /* cq->mtx held */
{
    uint64_t v;
    if (cq->efd >= 0 && read(cq->efd, &v, sizeof v) < 0) {
        /* EAGAIN: already clear */
    }
}

/* Append a completion to the group and recycle the record. */
static void aio_complete(client_aio *a, int64_t res, uint64_t offset)
{
    struct dafs_cq *cq = a->cq;
    dafs_session *s = cq->s;
    if (a->own_mr)
        dfab_mr_close(a->mr);
    a->mr = NULL;
    a->own_mr = false;
    if (a->file != NULL)
        atomic_fetch_sub(&a->file->aio_inflight, 1u);
    dafs_cqe e = {.user_data = a->io.user_data, .res = res, .offset = offset};
    pthread_mutex_lock(&cq->mtx);
    cq->ring[(cq->head + cq->ready) % cq->entries] = e;
    if (cq->ready++ == 0)
        efd_set(cq);
    cq->inflight--;
    a->next = cq->free;
    cq->free = a;
    if (cq->waiters > 0)
        pthread_cond_broadcast(&cq->cond);
    pthread_mutex_unlock(&cq->mtx);
    atomic_fetch_sub(&s->aio_inflight, 1u);
}

/* The result of a finished request from its reply. */
static int64_t aio_result(client_aio *a, client_slot *slot, uint64_t *offset)
{
    dafs_session *s = slot->s;
    if (slot->send_done && slot->send_status < 0)
        return -DAFS_ETRANSPORT;
    if (!slot->replied || slot->rx == NULL) {
        int err = atomic_load(&s->broken);
        return err != 0 ? err : -DAFS_ETRANSPORT;
    }
    dafs_reply rep;
    int drc = dafs_decode_reply(slot->rx->buf, slot->rx_len, &rep);
    if (drc == -DAFS_ST_VERSION)
        return -DAFS_EVERSION;
    if (drc != 0 || rep.hdr.opcode != slot->opcode)
        return -DAFS_EPROTO;
    if (rep.hdr.status != DAFS_ST_OK)
        return client_map_status(rep.hdr.status);
    switch (a->io.op) {
    case DAFS_IO_READ: {
        uint32_t count = rep.u.read.count;
        if (count > a->io.len)
            return -DAFS_EPROTO;
        if (rep.hdr.opcode == DAFS_OP_READ_INLINE) {
            if (rep.u.read.data.len != count)
                return -DAFS_EPROTO;
            if (count > 0)
                memcpy(a->io.buf, rep.u.read.data.ptr, count);
        }
        return count;
    }
    case DAFS_IO_WRITE:
    case DAFS_IO_APPEND:
        if (rep.u.write.count > a->io.len)
            return -DAFS_EPROTO;
        if (a->io.op == DAFS_IO_APPEND)
            *offset = rep.u.write.offset;
        return rep.u.write.count;
    default:
        return 0;
    }
}

/* The results of a finished BATCH_SUBMIT carrying the n I/Os chained from
 * as[0]: one per I/O in res[], or a whole-request error for all of them. */
static void batch_results(client_aio **as, unsigned n, client_slot *slot, int64_t *res)
{
    dafs_session *s = slot->s;
    int64_t err = 0;
    dafs_reply rep;
    if (slot->send_done && slot->send_status < 0) {
        err = -DAFS_ETRANSPORT;
    } else if (!slot->replied || slot->rx == NULL) {
        err = atomic_load(&s->broken);
        if (err == 0)
            err = -DAFS_ETRANSPORT;
    } else {
        int drc = dafs_decode_reply(slot->rx->buf, slot->rx_len, &rep);
        if (drc == -DAFS_ST_VERSION)
            err = -DAFS_EVERSION;
        else if (drc != 0 || rep.hdr.opcode != slot->opcode)
            err = -DAFS_EPROTO;
        else if (rep.hdr.status != DAFS_ST_OK)
            err = client_map_status(rep.hdr.status);
        else if (rep.u.batch.ncompl != n)
            err = -DAFS_EPROTO;
    }
    if (err == 0) {
        bool seen[AIO_BATCH_MAX] = {false};
        /* check all before using any: a bad reply fails the request as a whole */
        for (uint32_t k = 0; k < n && err == 0; k++) {
            dafs_batch_cpl c;
            dafs_batch_cpl_get(&rep.u.batch, k, &c);
            if (c.request_id >= n || seen[c.request_id] ||
                (c.status == 0 && c.count > as[c.request_id]->io.len))
                err = -DAFS_EPROTO; /* not ours, twice, or more than asked */
            else
                seen[c.request_id] = true;
        }
        for (uint32_t k = 0; k < n && err == 0; k++) {
            dafs_batch_cpl c;
            dafs_batch_cpl_get(&rep.u.batch, k, &c);
            res[c.request_id] = c.status != 0 ? client_map_status(c.status) : (int64_t)c.count;
        }
    }
    if (err != 0)
        for (unsigned i = 0; i < n; i++)
            res[i] = err;
}

static void batch_slot_done(client_slot *slot, client_aio *a)
{
    dafs_session *s = slot->s;
    client_aio *as[AIO_BATCH_MAX];
    int64_t res[AIO_BATCH_MAX];
    unsigned n = a->bn;
    for (unsigned i = 0; i < n; i++, a = a->bnext)
        as[i] = a;
    pthread_mutex_lock(&slot->mtx); /* a late send completion may still write */
    batch_results(as, n, slot, res);
    pthread_mutex_unlock(&slot->mtx);
    engine_free_slot(slot);
    for (unsigned i = 0; i < n; i++) {
        as[i]->bn = 0;
        as[i]->bnext = NULL;
        aio_complete(as[i], res[i], as[i]->io.offset);
    }
    if (atomic_load(&s->aio_pending) > 0)
        aio_kick(s);
}

void aio_slot_done(client_slot *slot)
{
    dafs_session *s = slot->s;
    client_aio *a = slot->aio;
    if (a->bn > 0) {
        batch_slot_done(slot, a);
        return;
    }
    uint64_t offset = a->io.offset;
    pthread_mutex_lock(&slot->mtx); /* a late send completion may still write */
    int64_t res = aio_result(a, slot, &offset);
    pthread_mutex_unlock(&slot->mtx);
    engine_free_slot(slot);
    aio_complete(a, res, offset);
    if (atomic_load(&s->aio_pending) > 0)
        aio_kick(s);
}

static void build_request(const client_aio *a, dafs_request *req)
{
    const dafs_io *io = &a->io;
    memset(req, 0, sizeof *req);
    req->hdr.cred = a->cred;
    dafs_seg seg = {0};
    if (a->direct) {
        seg.addr = a->mr->remote_addr + (uint64_t)((uint8_t *)io->buf - (uint8_t *)a->mr->base);
        seg.key = a->mr->key;
        seg.len = io->len;
    }
    if (io->op == DAFS_IO_COMMIT) {
        req->hdr.opcode = DAFS_OP_COMMIT;
        req->u.commit.fh = a->fh;
        req->u.commit.stateid = a->stateid;
        req->u.commit.stable = (io->flags & DAFS_IO_DATASYNC) ? DAFS_DATA_SYNC : DAFS_FILE_SYNC;
        return;
    }
    if (io->op == DAFS_IO_READ) {
        dafs_read_req *r = &req->u.read;
        req->hdr.opcode = a->direct ? DAFS_OP_READ_DIRECT : DAFS_OP_READ_INLINE;
        r->fh = a->fh;
        r->stateid = a->stateid;
        r->offset = io->offset;
        r->count = (uint32_t)io->len;
        r->hints = io->hint;
        if (a->direct) {
            r->nsegs = 1;
            r->segs[0] = seg;
        }
        return;
    }
    dafs_write_req *w = &req->u.write;
    bool append = io->op == DAFS_IO_APPEND;
    req->hdr.opcode = append ? (a->direct ? DAFS_OP_APPEND_DIRECT : DAFS_OP_APPEND_INLINE)
                             : (a->direct ? DAFS_OP_WRITE_DIRECT : DAFS_OP_WRITE_INLINE);
    w->fh = a->fh;
    w->stateid = a->stateid;
    w->offset = append ? 0 : io->offset;
    w->count = (uint32_t)io->len;
    w->stable = (io->flags & DAFS_IO_STABLE) ? DAFS_FILE_SYNC : DAFS_UNSTABLE;
    w->hints = io->hint;
    if (a->direct) {
        w->nsegs = 1;
        w->segs[0] = seg;
    } else {
        w->data = (dafs_bytes){io->buf, (uint32_t)io->len};
    }
}

/* Send req for a (with a->bn > 0: the BATCH_SUBMIT of the I/Os chained
 * from a) on slot (taken for it).  Whatever happens, each I/O completes
 * exactly once later (or here, when the send cannot be posted). */
static void aio_send(client_aio *a, client_slot *slot, dafs_request *req)
{
    dafs_session *s = slot->s;
    pthread_mutex_lock(&slot->mtx);
    slot->aio = a;
    pthread_mutex_unlock(&slot->mtx);
    int rc = engine_send(slot, req);
    pthread_mutex_lock(&slot->mtx);
    slot->aio_armed = true;
    slot->sent_ms = atomic_load(&s->last_send_ms); /* engine_send's clock reading */
    bool fire = rc < 0 ? (slot->aio_finished = true) : engine_aio_claim_locked(slot);
    pthread_mutex_unlock(&slot->mtx);
    if (!fire)
        return;
    if (rc < 0) { /* never went out: no reply will come */
        engine_free_slot(slot);
        unsigned n = a->bn > 0 ? a->bn : 1;
        for (unsigned i = 0; i < n; i++) {
            client_aio *next = a->bnext;
            a->bn = 0;
            a->bnext = NULL;
            aio_complete(a, rc == -DAFS_ETRANSPORT ? rc : -EINVAL, a->io.offset);
            a = next;
        }
        /* the transport gave up on a send (a dead peer; dfab_send retried
         * for seconds): the session is gone, and so is what is queued,
         * rather than seconds more for each queued request */
        if (rc == -DAFS_ETRANSPORT)
            engine_break(s, -DAFS_ETRANSPORT);
        return;
    }
    aio_slot_done(slot); /* done already (or the session broke meanwhile) */
}

static void aio_start(client_aio *a, client_slot *slot)
{
    dafs_request req;
    build_request(a, &req);
    aio_send(a, slot, &req);
}

/* Can a go out as an entry of a BATCH_SUBMIT?  READ and WRITE only (APPEND
 * and COMMIT keep their own requests), with the flags an entry takes. */
static bool batchable(const client_aio *a)
{
    const dafs_io *io = &a->io;
    if (io->op == DAFS_IO_READ)
        return io->flags == 0;
    return io->op == DAFS_IO_WRITE && (io->flags & ~DAFS_IO_STABLE) == 0;
}

/* With s->lock held and a slot taken: pop the queue's head and, when the
 * I/Os after it can join it, a run of them (same credential, within the
 * request's room, the reply's and AIO_BATCH_MAX).  Their entries (but for
 * the segments) go into ent.  Returns how many were popped; 1: send the
 * head alone. */
static unsigned pop_run_locked(dafs_session *s, dafs_batch_entry *ent)
{
    client_aio *a = s->aio_head, *last = a;
    unsigned n = 1;
    a->bn = 0;
    a->bnext = NULL;
    if (batchable(a) && a->next != NULL && batchable(a->next) &&
        batch_entry_describe(s, &a->io, s->inline_max, &ent[0]) == 0) {
        unsigned max = batch_max_entries(s);
        if (max > AIO_BATCH_MAX)
            max = AIO_BATCH_MAX;
        size_t room = batch_req_room(s), used = batch_entry_size(&ent[0]);
        for (client_aio *b = a->next; b != NULL && n < max && used <= room; b = b->next) {
            if (!batchable(b) || b->cred != a->cred ||
                batch_entry_describe(s, &b->io, s->inline_max, &ent[n]) != 0)
                break;
            size_t sz = batch_entry_size(&ent[n]);
            if (sz > room - used)
                break;
            used += sz;
            last->bnext = b;
            last = b;
            n++;
        }
    }
    s->aio_head = last->next;
    if (s->aio_head == NULL)
        s->aio_tail = NULL;
    last->bnext = NULL;
    atomic_fetch_sub(&s->aio_pending, n);
    return n;
}

/* Send the n I/Os chained from a (entries ent, segments still to fill) as
 * one synchronous BATCH_SUBMIT on slot. */
static void batch_start(client_aio *a, unsigned n, dafs_batch_entry *ent, client_slot *slot)
{
    dafs_session *s = slot->s;
    client_aio *head = NULL, **tail = &head;
    unsigned k = 0;
    uint32_t cred = a->cred;
    for (unsigned i = 0; a != NULL; i++) {
        client_aio *next = a->bnext;
        dafs_batch_entry *e = &ent[i];
        dfab_mr *own = NULL;
        int rc = batch_entry_seg(s, &a->io, a->mr, e, &own);
        if (rc < 0) { /* cannot be described: fails alone */
            a->bnext = NULL;
            aio_complete(a, rc, a->io.offset);
        } else {
            if (own != NULL) {
                a->mr = own;
                a->own_mr = true;
            }
            ent[k] = *e;
            ent[k].request_id = k;
            k++;
            *tail = a;
            tail = &a->bnext;
        }
        a = next;
    }
    *tail = NULL;
    if (k > n) /* (cannot happen: k counts a subset of the n) */
        k = n;
    if (head == NULL) {
        engine_free_slot(slot);
        return;
    }
    head->bn = k;
    atomic_fetch_add(&s->aio_batches, 1u);
    atomic_fetch_add(&s->aio_batched, k);
    dafs_request req;
    batch_request_init(&req, DAFS_BATCH_SYNC, cred, ent, k);
    aio_send(head, slot, &req);
}

void aio_kick(dafs_session *s)
{
    while (atomic_load(&s->aio_pending) > 0) {
        pthread_mutex_lock(&s->lock);
        client_aio *a = s->aio_head;
        /* a synchronous caller waiting for a credit gets the next one */
        client_slot *slot = a != NULL && atomic_load(&s->broken) == 0 &&
                                    atomic_load(&s->credit_waiters) == 0
                                ? engine_take_slot_locked(s)
                                : NULL;
        if (slot == NULL) {
            pthread_mutex_unlock(&s->lock);
            return;
        }
        dafs_batch_entry ent[AIO_BATCH_MAX];
        unsigned n = pop_run_locked(s, ent);
        pthread_mutex_unlock(&s->lock);
        if (n > 1)
            batch_start(a, n, ent, slot);
        else
            aio_start(a, slot);
    }
}

void aio_fail_all(dafs_session *s)
{
    if (s->slots == NULL || atomic_load(&s->aio_inflight) == 0)
        return;
    for (uint32_t i = 0; i < s->nslots; i++) {
        client_slot *slot = &s->slots[i];
        pthread_mutex_lock(&slot->mtx);
        bool fire = engine_aio_claim_locked(slot);
        pthread_mutex_unlock(&slot->mtx);
        if (fire)
            aio_slot_done(slot);
    }
    pthread_mutex_lock(&s->lock);
    client_aio *a = s->aio_head;
    s->aio_head = s->aio_tail = NULL;
    atomic_store(&s->aio_pending, 0u);
    int err = atomic_load(&s->broken);
    pthread_mutex_unlock(&s->lock);
    while (a != NULL) {
        client_aio *next = a->next;
        aio_complete(a, err != 0 ? err : -DAFS_ETRANSPORT, a->io.offset);
        a = next;
    }
}

/* No reply for the session timeout while async requests are outstanding:
 * break the session (which completes them with the error). */
static void check_timeout(dafs_session *s)
{
    if (atomic_load(&s->aio_inflight) == 0 || atomic_load(&s->broken) != 0)
        return;
    uint64_t now = engine_now_ms(), oldest = UINT64_MAX;
    for (uint32_t i = 0; i < s->nslots; i++) {
        client_slot *slot = &s->slots[i];
        pthread_mutex_lock(&slot->mtx);
        if (slot->aio != NULL && slot->aio_armed && !slot->aio_finished && slot->sent_ms < oldest)
            oldest = slot->sent_ms;
        pthread_mutex_unlock(&slot->mtx);
    }
    if (oldest == UINT64_MAX)
        return;
    uint64_t last = atomic_load(&s->last_reply_ms);
    uint64_t since = last > oldest ? last : oldest;
    if (now > since && now - since >= s->timeout_ms)
        engine_break(s, -DAFS_ETRANSPORT);
}

void aio_pass_role(dafs_session *s)
{
    if (atomic_load(&s->aio_inflight) == 0)
        return;
    if (atomic_load(&s->reap_waiters) > 0) {
        pthread_mutex_lock(&s->lock);
        for (struct dafs_cq *cq = s->cqs; cq != NULL; cq = cq->next) {
            pthread_mutex_lock(&cq->mtx);
            if (cq->waiters > 0)
                pthread_cond_broadcast(&cq->cond);
            pthread_mutex_unlock(&cq->mtx);
        }
        pthread_mutex_unlock(&s->lock);
        return;
    }
    if (atomic_load(&s->helper_idle)) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_signal(&s->helper_cond);
        pthread_mutex_unlock(&s->lock);
    }
}

/* ---- the progress helper (dafs_cq_fd) ---- */

static void *helper_main(void *arg)
{
    dafs_session *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->helper_stop) {
        int wait_ms = CLIENT_PROGRESS_SLICE_MS;
        bool busy = atomic_load(&s->aio_inflight) > 0 && atomic_load(&s->broken) == 0;
        /* idle before trying the role: whoever frees it after our try sees
         * the flag and signals (under s->lock, which we hold until we sleep) */
        atomic_store(&s->helper_idle, true);
        if (busy && engine_take_role(s)) {
            atomic_store(&s->helper_idle, false);
            atomic_store(&s->helper_role, true);
            pthread_mutex_unlock(&s->lock);
            engine_progress(s, CLIENT_PROGRESS_SLICE_MS);
            atomic_store(&s->helper_role, false);
            check_timeout(s);
            /* application threads waiting come first: hand over, step back */
            bool others = atomic_load(&s->reply_sleepers) + atomic_load(&s->credit_waiters) +
                              atomic_load(&s->reap_waiters) > 0;
            if (others)
                engine_pass_role(s);
            pthread_mutex_lock(&s->lock);
            if (!others)
                continue;
            wait_ms = HELPER_BACKOFF_MS;
        }
        struct timespec ts;
        deadline_ts(engine_now_ms() + (uint64_t)wait_ms, &ts);
        (void)pthread_cond_timedwait(&s->helper_cond, &s->lock, &ts);
        atomic_store(&s->helper_idle, false);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int start_helper(dafs_session *s) /* s->lock held */
{
    if (s->helper_running)
        return 0;
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -ENOMEM;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&s->helper_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return -rc;
    s->helper_stop = false;
    rc = pthread_create(&s->helper, NULL, helper_main, s);
    if (rc != 0) {
        pthread_cond_destroy(&s->helper_cond);
        return -rc;
    }
    s->helper_running = true;
    return 0;
}

/* ---- the public calls ---- */

int dafs_cq_create(dafs_session *s, unsigned entries, dafs_cq **out)
{
    if (s == NULL || out == NULL || entries == 0 || entries > (1u << 20))
        return -EINVAL;
    *out = NULL;
    struct dafs_cq *cq = calloc(1, sizeof *cq);
    if (cq == NULL)
        return -ENOMEM;
    cq->aios = calloc(entries, sizeof *cq->aios);
    cq->ring = calloc(entries, sizeof *cq->ring);
    pthread_condattr_t attr;
    int rc = cq->aios == NULL || cq->ring == NULL ? ENOMEM : pthread_condattr_init(&attr);
    if (rc == 0) {
        rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        if (rc == 0)
            rc = pthread_cond_init(&cq->cond, &attr);
        pthread_condattr_destroy(&attr);
        if (rc == 0 && (rc = pthread_mutex_init(&cq->mtx, NULL)) != 0)
            pthread_cond_destroy(&cq->cond);
    }
    if (rc != 0) {
        free(cq->aios);
        free(cq->ring);
        free(cq);
        return -rc;
    }
    cq->s = s;
    cq->entries = entries;
    cq->efd = -1;
    for (unsigned i = 0; i < entries; i++) {
        cq->aios[i].cq = cq;
        cq->aios[i].next = i + 1 < entries ? &cq->aios[i + 1] : NULL;
    }
    cq->free = &cq->aios[0];
    pthread_mutex_lock(&s->lock);
    cq->next = s->cqs;
    s->cqs = cq;
    pthread_mutex_unlock(&s->lock);
    *out = cq;
    return 0;
}

int dafs_cq_fd(dafs_cq *cq)
{
    if (cq == NULL)
        return -EINVAL;
    dafs_session *s = cq->s;
    pthread_mutex_lock(&s->lock);
    int rc = start_helper(s);
    pthread_mutex_unlock(&s->lock);
    if (rc < 0)
        return rc;
    pthread_mutex_lock(&cq->mtx);
    if (cq->efd < 0) {
        cq->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (cq->efd >= 0 && cq->ready > 0)
            efd_set(cq);
    }
    int fd = cq->efd >= 0 ? cq->efd : -errno;
    pthread_mutex_unlock(&cq->mtx);
    return fd;
}

/* Check io and fill a's request fields.  Registers the buffer when it goes
 * direct and lies in no registered region. */
static int prepare(dafs_session *s, const dafs_io *io, client_aio *a)
{
    dafs_file *f = io->file;
    if (f == NULL || f->s != s || io->hint > DAFS_HINT_DONTNEED)
        return -EINVAL;
    int acc = f->flags & O_ACCMODE;
    bool write = io->op == DAFS_IO_WRITE || io->op == DAFS_IO_APPEND;
    switch (io->op) {
    case DAFS_IO_READ:
    case DAFS_IO_WRITE:
    case DAFS_IO_APPEND:
        if ((io->buf == NULL && io->len != 0) || io->len > s->max_io || io->len > UINT32_MAX)
            return -EINVAL;
        if (io->op != DAFS_IO_APPEND &&
            (io->offset > (uint64_t)INT64_MAX || io->len > (uint64_t)INT64_MAX - io->offset))
            return -EINVAL;
        if ((write && acc == O_RDONLY) || (!write && acc == O_WRONLY))
            return -EBADF;
        break;
    case DAFS_IO_COMMIT:
        break;
    default:
        return -EINVAL;
    }
    a->io = *io;
    a->file = f;
    a->fh = f->fh;
    a->stateid = f->stateid;
    a->cred = f->cred;
    a->direct = false;
    a->mr = NULL;
    a->own_mr = false;
    if (io->op == DAFS_IO_COMMIT || io->len == 0)
        return 0;
    size_t limit = io->op == DAFS_IO_READ ? file_read_inline_limit(s) : s->inline_max;
    if (io->len <= limit)
        return 0;
    a->direct = true;
    a->mr = mem_find_region(s, io->buf, io->len);
    if (a->mr == NULL) {
        unsigned access = DFAB_ACCESS_LOCAL |
                          (write ? DFAB_ACCESS_REMOTE_READ : DFAB_ACCESS_REMOTE_WRITE);
        if (dfab_mr_reg(s->fab, io->buf, io->len, access, &a->mr) < 0) {
            a->mr = NULL;
            if (io->len > s->inline_max)
                return -ENOMEM;
            a->direct = false; /* cannot register: it still fits a message */
            return 0;
        }
        a->own_mr = true;
    }
    return 0;
}

/* Submit up to SUBMIT_CHUNK I/Os with one pass over each lock: the group's
 * records, then the session's slots.  Returns how many were accepted
 * (*err set when it stopped short). */
static unsigned submit_chunk(struct dafs_cq *cq, const dafs_io *ios, unsigned n, int *err)
{
    dafs_session *s = cq->s;
    client_aio *as[SUBMIT_CHUNK];
    unsigned got = 0, ok = 0;
    pthread_mutex_lock(&cq->mtx);
    bool destroying = cq->destroying;
    /* room for each completion too: the ring holds entries */
    while (!destroying && got < n && cq->inflight + cq->ready < cq->entries) {
        as[got] = cq->free;
        cq->free = as[got]->next;
        cq->inflight++;
        got++;
    }
    pthread_mutex_unlock(&cq->mtx);
    if (got == 0) {
        *err = destroying ? -EINVAL : -EAGAIN;
        return 0;
    }
    for (; ok < got; ok++) {
        int rc = prepare(s, &ios[ok], as[ok]);
        if (rc < 0) {
            *err = rc;
            break;
        }
        atomic_fetch_add(&as[ok]->file->aio_inflight, 1u);
    }
    if (ok < got) { /* give back the records of the refused one and those after it */
        pthread_mutex_lock(&cq->mtx);
        for (unsigned i = ok; i < got; i++) {
            as[i]->next = cq->free;
            cq->free = as[i];
            cq->inflight--;
        }
        pthread_mutex_unlock(&cq->mtx);
    }
    if (ok == 0)
        return 0;
    atomic_fetch_add(&s->aio_inflight, ok);
    /* every I/O joins the session's FIFO, and aio_kick sends from its head
     * on the free slots: alone, or several READ/WRITEs in one BATCH_SUBMIT */
    pthread_mutex_lock(&s->lock);
    int broken = atomic_load(&s->broken);
    unsigned queued = 0;
    for (unsigned i = 0; i < ok; i++) {
        client_aio *a = as[i];
        if (broken != 0 || (a->io.op != DAFS_IO_COMMIT && a->io.len == 0))
            continue;
        a->next = NULL;
        if (s->aio_tail != NULL)
            s->aio_tail->next = a;
        else
            s->aio_head = a;
        s->aio_tail = a;
        queued++;
    }
    if (queued > 0)
        atomic_fetch_add(&s->aio_pending, queued);
    pthread_mutex_unlock(&s->lock);
    for (unsigned i = 0; i < ok; i++) {
        client_aio *a = as[i];
        if (a->io.op != DAFS_IO_COMMIT && a->io.len == 0)
            aio_complete(a, 0, a->io.offset); /* nothing to move */
        else if (broken != 0)
            aio_complete(a, broken, a->io.offset);
    }
    if (queued > 0)
        aio_kick(s);
    return ok;
}

int dafs_submit(dafs_cq *cq, const dafs_io *ios, unsigned n)
{
    if (cq == NULL || (ios == NULL && n > 0))
        return -EINVAL;
    dafs_session *s = cq->s;
    unsigned done = 0;
    int err = 0;
    while (done < n && err == 0) {
        err = atomic_load(&s->broken);
        if (err != 0)
            break;
        unsigned want = n - done < SUBMIT_CHUNK ? n - done : SUBMIT_CHUNK;
        done += submit_chunk(cq, ios + done, want, &err);
    }
    if (done > 0 && atomic_load(&s->helper_idle) && !atomic_load(&s->progressing)) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_signal(&s->helper_cond);
        pthread_mutex_unlock(&s->lock);
    }
    if (done > 0)
        return (int)done;
    return err == -EAGAIN ? 0 : err;
}

/* Move up to max ready completions to out; cq->mtx held. */
static unsigned take_ready(struct dafs_cq *cq, dafs_cqe *out, unsigned max)
{
    unsigned k = 0;
    while (k < max && cq->ready > 0) {
        out[k++] = cq->ring[cq->head];
        cq->head = (cq->head + 1) % cq->entries;
        cq->ready--;
    }
    if (k > 0 && cq->ready == 0)
        efd_clear(cq);
    return k;
}

/* Poll the CQ once if nobody progresses now (reap with a zero timeout). */
static void poll_once(dafs_session *s)
{
    if (!engine_take_role(s))
        return;
    int rc = dfab_poll(s->fab);
    atomic_store(&s->progressing, false);
    if (rc < 0)
        engine_break(s, -DAFS_ETRANSPORT);
    engine_pass_role(s);
}

static int reap_locked(struct dafs_cq *cq, dafs_cqe *out, unsigned max, unsigned min,
                       int timeout_ms)
{
    dafs_session *s = cq->s;
    uint64_t start = engine_now_ms(), next_check = start + CQ_TIMEOUT_CHECK_MS;
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms;
    unsigned got = 0;
    bool polled = false;
    for (;;) {
        got += take_ready(cq, out + got, max - got);
        if (got >= max || (got >= min && (got > 0 || polled)))
            return (int)got;
        uint64_t now = engine_now_ms();
        if (timeout_ms == 0 || min == 0 || now >= deadline) {
            if (polled)
                return (int)got;
            polled = true;
            pthread_mutex_unlock(&cq->mtx);
            poll_once(s);
            pthread_mutex_lock(&cq->mtx);
            continue;
        }
        polled = true;
        if (now >= next_check) {
            next_check = now + CQ_TIMEOUT_CHECK_MS;
            pthread_mutex_unlock(&cq->mtx);
            check_timeout(s);
            pthread_mutex_lock(&cq->mtx);
            continue;
        }
        uint64_t left = deadline - now;
        int slice = left < (uint64_t)CLIENT_PROGRESS_SLICE_MS ? (int)left : CLIENT_PROGRESS_SLICE_MS;
        if ((uint64_t)slice > next_check - now)
            slice = (int)(next_check - now);
        cq->waiters++;
        atomic_fetch_add(&s->reap_waiters, 1u);
        bool work = atomic_load(&s->aio_inflight) > 0 && atomic_load(&s->broken) == 0;
        if (work && engine_take_role(s)) {
            cq->waiters--;
            atomic_fetch_sub(&s->reap_waiters, 1u);
            pthread_mutex_unlock(&cq->mtx);
            engine_progress(s, slice);
            pthread_mutex_lock(&cq->mtx);
            continue;
        }
        if (work && atomic_load(&s->helper_role))
            dfab_wake(s->fab); /* the helper steps back for us */
        struct timespec ts;
        deadline_ts(now + (uint64_t)slice, &ts);
        (void)pthread_cond_timedwait(&cq->cond, &cq->mtx, &ts);
        cq->waiters--;
        atomic_fetch_sub(&s->reap_waiters, 1u);
    }
}

int dafs_cq_reap(dafs_cq *cq, dafs_cqe *out, unsigned max, unsigned min, int timeout_ms)
{
    if (cq == NULL || (out == NULL && max > 0) || min > max || timeout_ms < -1)
        return -EINVAL;
    if (max == 0)
        return 0;
    pthread_mutex_lock(&cq->mtx);
    int rc = reap_locked(cq, out, max, min, timeout_ms);
    pthread_mutex_unlock(&cq->mtx);
    engine_pass_role(cq->s); /* we stop waiting: someone else may need the role */
    return rc;
}

int dafs_cq_destroy(dafs_cq *cq)
{
    if (cq == NULL)
        return -EINVAL;
    dafs_session *s = cq->s;
    dafs_cqe sink[32];
    pthread_mutex_lock(&cq->mtx);
    cq->destroying = true;
    while (cq->inflight > 0) /* its completions are discarded */
        (void)reap_locked(cq, sink, 32, 1, CLIENT_PROGRESS_SLICE_MS);
    pthread_mutex_unlock(&cq->mtx);
    engine_pass_role(s);
    pthread_mutex_lock(&s->lock);
    for (struct dafs_cq **pp = &s->cqs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == cq) {
            *pp = cq->next;
            break;
        }
    }
    pthread_mutex_unlock(&s->lock);
    if (cq->efd >= 0)
        (void)close(cq->efd);
    pthread_cond_destroy(&cq->cond);
    pthread_mutex_destroy(&cq->mtx);
    free(cq->aios);
    free(cq->ring);
    free(cq);
    return 0;
}

void aio_session_end(dafs_session *s)
{
    for (;;) {
        pthread_mutex_lock(&s->lock);
        struct dafs_cq *cq = s->cqs;
        pthread_mutex_unlock(&s->lock);
        if (cq == NULL)
            break;
        (void)dafs_cq_destroy(cq);
    }
    pthread_mutex_lock(&s->lock);
    bool running = s->helper_running;
    s->helper_stop = true;
    if (running)
        pthread_cond_broadcast(&s->helper_cond);
    pthread_mutex_unlock(&s->lock);
    if (!running)
        return;
    dfab_wake(s->fab);
    (void)pthread_join(s->helper, NULL);
    pthread_cond_destroy(&s->helper_cond);
    s->helper_running = false;
}
