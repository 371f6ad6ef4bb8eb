/*
 * worker.c — the worker pool.
 *
 * The network thread never touches files: it queues each admitted request
 * (with its receive buffer) on one shared FIFO, and a worker takes it,
 * executes it (ops_execute, opctx.h, with this worker's io_uring, bounce
 * buffer and RMA waits as the op's op_io), encodes the reply into one of
 * its REPLY_BUFS registered reply buffers, posts the send without waiting
 * for it (a cross-thread wakeup per reply cost more than the request
 * itself), then gives the receive buffer back through the queue's done
 * callback (dispatch.c's rx_repost; the pool never calls the dispatcher).  The send's completion returns the buffer to
 * the worker's free list; only when all are in flight does the worker wait.
 * The queue can never hold more than the receive pool, so it needs no bound
 * of its own.
 *
 * Each worker owns an io_uring for file data (read/write/fsync: submit one
 * SQE and wait, looping over short transfers) and a registered bounce buffer
 * of max_io bytes for RMA.  Fabric operations a worker posts (reply sends,
 * RMA) complete in the network thread's dfab_progress(); the completion
 * callback signals the worker's condition variable.  A worker therefore has
 * at most one RMA outstanding (its reply follows the RMA's completion), plus
 * replies in flight, each in its own buffer.
 *
 * Stuck clients.  A client that stops progressing would hold a worker
 * forever (its RMA or reply never completes).  The wait is therefore bounded
 * by --io-timeout-ms: on timeout the request fails, the session is closed
 * (later requests get BADSESSION), and the worker continues with a fresh
 * buffer set, keeping the old one (still owned by the provider) on an orphan
 * list that is freed once its completion arrives.  At most MAX_ORPHANS sets
 * per worker; beyond that the worker waits for the oldest one.  Replies
 * follow the same rule: when no reply buffer comes back within the timeout,
 * the sessions of the buffers in flight are closed and those buffers are
 * retired (freed when their completion arrives) and replaced.
 */
#include "worker.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "opctx.h"
#include "stats.h"

#define URING_DEPTH 8
#define MAX_ORPHANS 8

/* ---- waiting for fabric completions ---------------------------------- */

static void fabric_wait_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)len;
    (void)src;
    fabric_wait *fw = (fabric_wait *)((char *)op - offsetof(fabric_wait, op));
    pthread_mutex_lock(&fw->mu);
    fw->status = status;
    fw->done = true;
    pthread_cond_signal(&fw->cv);
    pthread_mutex_unlock(&fw->mu);
}

static void fabric_wait_arm(fabric_wait *fw)
{
    memset(&fw->op, 0, sizeof(fw->op));
    fw->op.done = fabric_wait_done;
    fw->done = false;
    fw->status = 0;
}

static struct timespec deadline_in(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Wait for the worker's current fabric operation, at most io_timeout_ms. */
static int fabric_wait_for(worker *w)
{
    fabric_wait *fw = &w->bufs->wait;
    struct timespec until = deadline_in(w->srv->cfg.io_timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&fw->mu);
    while (!fw->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&fw->cv, &fw->mu, &until);
    bool done = fw->done;
    int st = fw->status;
    pthread_mutex_unlock(&fw->mu);
    if (done)
        return st;
    w->timed_out = true;
    return -ETIMEDOUT;
}

/* RMA between the bounce buffer and the client's segments, then wait for it.
 * (A full send queue is retried inside the transport, so a post either
 * starts or fails for good.) */
static int bounce_rma(worker *w, bool write, dfab_addr peer, size_t len, const dafs_seg *segs,
                      unsigned nsegs)
{
    dfab_rseg rs[DAFS_SEG_MAX];
    for (unsigned i = 0; i < nsegs; i++)
        rs[i] = (dfab_rseg){.addr = segs[i].addr, .key = segs[i].key, .len = segs[i].len};
    fabric_wait_arm(&w->bufs->wait);
    dfab_mr *mr = w->bufs->bounce_mr;
    int rc = write ? dfab_rma_write(w->srv->fabric, peer, w->bounce, len, mr, rs, nsegs, true,
                                    &w->bufs->wait.op)
                   : dfab_rma_read(w->srv->fabric, peer, w->bounce, len, mr, rs, nsegs,
                                   &w->bufs->wait.op);
    return rc != 0 ? rc : fabric_wait_for(w);
}

static int io_rma_write(void *self, dfab_addr dst, size_t len, const dafs_seg *segs,
                        unsigned nsegs)
{
    return bounce_rma(self, true, dst, len, segs, nsegs);
}

static int io_rma_read(void *self, dfab_addr src, size_t len, const dafs_seg *segs,
                       unsigned nsegs)
{
    return bounce_rma(self, false, src, len, segs, nsegs);
}

/* Batches: the parts of a group complete into the buffer set's one wait,
 * which is done when the last part is, so a timed-out group is orphaned and
 * reaped exactly like a single RMA. */
static void rma_part_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    worker_rma_part_op *p = (worker_rma_part_op *)op;
    worker_bufs *b = p->b;
    pthread_mutex_lock(&b->wait.mu);
    b->part_status[p->index] = status;
    if (--b->parts_left == 0) {
        pthread_mutex_unlock(&b->wait.mu);
        fabric_wait_done(&b->wait.op, 0, len, src);
        return;
    }
    pthread_mutex_unlock(&b->wait.mu);
}

static int io_rma_many(void *self, bool write, dfab_addr peer, const op_rma_part *parts,
                       unsigned n, int *status)
{
    worker *w = self;
    if (n == 0 || n > OPCTX_RMA_GROUP)
        return -EINVAL;
    worker_bufs *b = w->bufs;
    fabric_wait_arm(&b->wait);
    pthread_mutex_lock(&b->wait.mu);
    b->parts_left = n;
    pthread_mutex_unlock(&b->wait.mu);
    unsigned posted = 0;
    int rc = 0;
    for (; posted < n; posted++) {
        const op_rma_part *q = &parts[posted];
        dfab_rseg rs = {.addr = q->seg.addr, .key = q->seg.key, .len = q->seg.len};
        worker_rma_part_op *p = &b->parts[posted];
        memset(p, 0, sizeof *p);
        p->op.done = rma_part_done;
        p->b = b;
        p->index = posted;
        b->part_status[posted] = 0;
        uint8_t *at = w->bounce + q->off;
        rc = write ? dfab_rma_write(w->srv->fabric, peer, at, q->len, b->bounce_mr, &rs, 1, true,
                                    &p->op)
                   : dfab_rma_read(w->srv->fabric, peer, at, q->len, b->bounce_mr, &rs, 1, &p->op);
        if (rc != 0)
            break;
    }
    if (posted < n) { /* the rest was never posted: they count as done, failed */
        pthread_mutex_lock(&b->wait.mu);
        for (unsigned i = posted; i < n; i++)
            b->part_status[i] = rc;
        b->parts_left -= n - posted;
        bool none = b->parts_left == 0;
        pthread_mutex_unlock(&b->wait.mu);
        if (none) {
            for (unsigned i = 0; i < n; i++)
                status[i] = b->part_status[i];
            return 0;
        }
    }
    int wrc = fabric_wait_for(w);
    if (wrc == -ETIMEDOUT)
        return wrc;
    pthread_mutex_lock(&b->wait.mu);
    for (unsigned i = 0; i < n; i++)
        status[i] = b->part_status[i];
    pthread_mutex_unlock(&b->wait.mu);
    return 0;
}

/* ---- reply buffers --------------------------------------------------- */

#define MAX_RETIRED_REPLIES 16

static void reply_sent(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)len;
    (void)src;
    reply_buf *rb = (reply_buf *)((char *)op - offsetof(reply_buf, op));
    worker *w = rb->w;
    pthread_mutex_lock(&w->reply_mu);
    session *s = rb->sess;
    rb->sess = NULL;
    rb->in_flight = false;
    if (!rb->retired) {
        rb->next = w->reply_free;
        w->reply_free = rb;
        w->replies_in_flight--;
        pthread_cond_signal(&w->reply_cv);
    }
    pthread_mutex_unlock(&w->reply_mu);
    if (status != 0 && s)
        log_error("reply to session %016llx failed: %s", (unsigned long long)s->id,
                  strerror(-status));
    if (s)
        session_release(&w->srv->sessions, s);
}

static void reply_buf_free(reply_buf *rb)
{
    if (!rb)
        return;
    dfab_mr_close(rb->mr);
    free(rb->mem);
    free(rb);
}

static reply_buf *reply_buf_new(worker *w)
{
    reply_buf *rb = calloc(1, sizeof(*rb));
    if (!rb)
        return NULL;
    rb->w = w;
    rb->mem = aligned_alloc(4096, w->srv->cfg.max_response);
    if (!rb->mem || dfab_mr_reg(w->srv->fabric, rb->mem, w->srv->cfg.max_response,
                                DFAB_ACCESS_LOCAL, &rb->mr) != 0) {
        reply_buf_free(rb);
        return NULL;
    }
    return rb;
}

/* Free retired buffers whose completion has arrived. */
static void reap_retired_replies(worker *w)
{
    reply_buf *done = NULL;
    pthread_mutex_lock(&w->reply_mu);
    reply_buf **pp = &w->reply_retired;
    while (*pp) {
        reply_buf *rb = *pp;
        if (!rb->in_flight) {
            *pp = rb->next;
            rb->next = done;
            done = rb;
            w->nreply_retired--;
        } else {
            pp = &rb->next;
        }
    }
    pthread_mutex_unlock(&w->reply_mu);
    while (done) {
        reply_buf *rb = done;
        done = rb->next;
        reply_buf_free(rb);
    }
}

/* No reply completed within io_timeout_ms: every buffer in flight belongs to
 * a client that stopped progressing.  Close those sessions and replace the
 * buffers (the provider still owns them) with fresh ones.  Returns false
 * when no more buffers may be retired. */
static bool retire_stuck_replies(worker *w)
{
    session *stuck[REPLY_BUFS];
    unsigned nstuck = 0;
    pthread_mutex_lock(&w->reply_mu);
    bool room = w->nreply_retired + REPLY_BUFS <= MAX_RETIRED_REPLIES;
    for (unsigned i = 0; room && i < REPLY_BUFS; i++) {
        reply_buf *rb = w->reply_all[i];
        if (!rb || !rb->in_flight)
            continue;
        rb->retired = true;
        if (rb->sess)
            stuck[nstuck++] = rb->sess;
        rb->sess = NULL;
        rb->next = w->reply_retired;
        w->reply_retired = rb;
        w->nreply_retired++;
        w->replies_in_flight--;
        w->reply_all[i] = NULL;
    }
    pthread_mutex_unlock(&w->reply_mu);
    for (unsigned i = 0; i < nstuck; i++) {
        log_error("session %016llx: client did not take a reply within %u ms; closing it",
                  (unsigned long long)stuck[i]->id, w->srv->cfg.io_timeout_ms);
        session_close(&w->srv->sessions, stuck[i], SESSION_END_LEASE,
                      "closed: client stopped progressing");
        session_release(&w->srv->sessions, stuck[i]);
    }
    for (unsigned i = 0; room && i < REPLY_BUFS; i++) {
        if (w->reply_all[i])
            continue;
        reply_buf *rb = reply_buf_new(w);
        pthread_mutex_lock(&w->reply_mu);
        w->reply_all[i] = rb;
        if (rb) {
            rb->next = w->reply_free;
            w->reply_free = rb;
            pthread_cond_signal(&w->reply_cv);
        }
        pthread_mutex_unlock(&w->reply_mu);
    }
    return room;
}

/* Take a free reply buffer, waiting (bounded) for a send to complete. */
static reply_buf *reply_acquire(worker *w)
{
    for (;;) {
        struct timespec until = deadline_in(w->srv->cfg.io_timeout_ms);
        bool bounded = true;
        int rc = 0;
        pthread_mutex_lock(&w->reply_mu);
        while (!w->reply_free && rc != ETIMEDOUT) {
            if (bounded)
                rc = pthread_cond_timedwait(&w->reply_cv, &w->reply_mu, &until);
            else
                pthread_cond_wait(&w->reply_cv, &w->reply_mu);
        }
        reply_buf *rb = w->reply_free;
        if (rb)
            w->reply_free = rb->next;
        pthread_mutex_unlock(&w->reply_mu);
        if (rb)
            return rb;
        if (!retire_stuck_replies(w)) {
            /* too many retired already: wait for a completion after all */
            pthread_mutex_lock(&w->reply_mu);
            while (!w->reply_free)
                pthread_cond_wait(&w->reply_cv, &w->reply_mu);
            rb = w->reply_free;
            w->reply_free = rb->next;
            pthread_mutex_unlock(&w->reply_mu);
            return rb;
        }
    }
}

/* Give back a buffer that was not posted. */
static void reply_unused(worker *w, reply_buf *rb)
{
    pthread_mutex_lock(&w->reply_mu);
    rb->next = w->reply_free;
    w->reply_free = rb;
    pthread_mutex_unlock(&w->reply_mu);
}

/* Post the reply in rb without waiting.  On success the caller's reference
 * on s passes to the buffer, which drops it at completion. */
static int send_reply(worker *w, reply_buf *rb, session *s, size_t len)
{
    pthread_mutex_lock(&w->reply_mu);
    rb->in_flight = true;
    rb->sess = s;
    w->replies_in_flight++;
    pthread_mutex_unlock(&w->reply_mu);
    memset(&rb->op, 0, sizeof(rb->op));
    rb->op.done = reply_sent;
    int rc = dfab_send(w->srv->fabric, s->addr, rb->mem, len, rb->mr, &rb->op);
    if (rc != 0) {
        pthread_mutex_lock(&w->reply_mu);
        rb->in_flight = false;
        rb->sess = NULL;
        w->replies_in_flight--;
        rb->next = w->reply_free;
        w->reply_free = rb;
        pthread_mutex_unlock(&w->reply_mu);
    }
    return rc;
}

/* ---- file I/O ---------------------------------------------------------- */

enum file_op { FILE_READ, FILE_WRITE, FILE_FSYNC, FILE_FDATASYNC };

/* One read through the worker's ring. */
static int uring_read(worker *w, int fd, void *buf, unsigned len, uint64_t off)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, fd, buf, len, off);
    int rc = io_uring_submit(&w->ring);
    if (rc < 0)
        return rc;
    struct io_uring_cqe *cqe;
    do {
        rc = io_uring_wait_cqe(&w->ring, &cqe);
    } while (rc == -EINTR);
    if (rc < 0)
        return rc;
    int res = cqe->res;
    io_uring_cqe_seen(&w->ring, cqe);
    return res;
}

/*
 * One transfer or sync.  Only reads go through the ring: they are served
 * inline from the page cache, and asynchronously when they must wait for the
 * disk.  Buffered writes and syncs are plain syscalls, because a file system
 * without RWF_NOWAIT buffered writes (ext4 here: pwritev2 says EOPNOTSUPP)
 * makes io_uring hand every one to an io-wq kernel thread — a context switch
 * and wakeup per write, for nothing, since a worker is a blocking thread.
 */
static int file_one(worker *w, enum file_op what, int fd, void *buf, unsigned len, uint64_t off)
{
    ssize_t n;
    if (what == FILE_READ)
        return uring_read(w, fd, buf, len, off);
    if (what == FILE_WRITE)
        n = pwrite(fd, buf, len, (off_t)off);
    else
        n = what == FILE_FSYNC ? fsync(fd) : fdatasync(fd);
    return n < 0 ? -errno : (int)n;
}

/*
 * Move len bytes at off through file_one, resubmitting after short transfers
 * and a bounded number of EINTR/EAGAIN.  Stops early only when the kernel
 * transfers 0 bytes; *done says how far it got.
 */
static int file_full(worker *w, enum file_op kind, int fd, uint8_t *buf, size_t len, uint64_t off,
                     size_t *done)
{
    int again = 0;
    *done = 0;
    while (*done < len) {
        int r = file_one(w, kind, fd, buf + *done, (unsigned)(len - *done), off + *done);
        if ((r == -EINTR || r == -EAGAIN) && ++again < 100)
            continue;
        if (r < 0)
            return r;
        if (r == 0)
            break;
        *done += (size_t)r;
    }
    return 0;
}

static int io_file_read(void *self, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    return file_full(self, FILE_READ, fd, buf, len, off, got); /* 0 bytes = end of file */
}

static int io_file_write(void *self, int fd, const void *buf, size_t len, uint64_t off)
{
    worker *w = self;
    size_t done;
    /* file_one only reads from buf for a write */
    int rc = file_full(w, FILE_WRITE, fd, (uint8_t *)(uintptr_t)buf, len, off, &done);
    if (rc == 0 && done < len)
        rc = -EIO; /* the kernel wrote nothing and reported no error */
    return rc;
}

static int io_file_sync(void *self, int fd, bool datasync)
{
    int r = file_one(self, datasync ? FILE_FDATASYNC : FILE_FSYNC, fd, NULL, 0, 0);
    return r < 0 ? r : 0;
}

/* What ops see of a worker (opctx.h). */
static const op_io worker_io = {
    .file_read = io_file_read,
    .file_write = io_file_write,
    .file_sync = io_file_sync,
    .rma_write = io_rma_write,
    .rma_read = io_rma_read,
    .rma_many = io_rma_many,
};

/* ---- the queue -------------------------------------------------------- */

void workers_submit(server *srv, rx_slot *slot)
{
    work_queue *q = &srv->queue;
    slot->next = NULL;
    pthread_mutex_lock(&q->mu);
    if (q->tail)
        q->tail->next = slot;
    else
        q->head = slot;
    q->tail = slot;
    q->busy++;
    pthread_mutex_unlock(&q->mu);
    /* after the unlock, so the woken worker does not block on q->mu at once */
    pthread_cond_signal(&q->cv);
}

static rx_slot *queue_pop(work_queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (!q->head && !q->stop)
        pthread_cond_wait(&q->cv, &q->mu);
    rx_slot *slot = q->head;
    if (slot) {
        q->head = slot->next;
        if (!q->head)
            q->tail = NULL;
    }
    pthread_mutex_unlock(&q->mu);
    return slot;
}

static void queue_finished_one(work_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->busy--;
    pthread_mutex_unlock(&q->mu);
}

unsigned workers_busy(server *srv)
{
    pthread_mutex_lock(&srv->queue.mu);
    unsigned n = srv->queue.busy;
    pthread_mutex_unlock(&srv->queue.mu);
    /* replies still leaving count too: draining waits for them */
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        if (!w->reply_ready)
            continue;
        pthread_mutex_lock(&w->reply_mu);
        n += w->replies_in_flight;
        pthread_mutex_unlock(&w->reply_mu);
    }
    return n;
}

/* ---- buffer sets and stuck clients ------------------------------------ */

static void bufs_free(worker_bufs *b)
{
    dfab_mr_close(b->bounce_mr);
    free(b->bounce);
    pthread_mutex_destroy(&b->wait.mu);
    pthread_cond_destroy(&b->wait.cv);
    free(b);
}

static worker_bufs *bufs_new(server *srv)
{
    worker_bufs *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&b->wait.mu, NULL);
    pthread_cond_init(&b->wait.cv, &ca);
    pthread_condattr_destroy(&ca);
    b->bounce = aligned_alloc(4096, srv->cfg.max_io);
    if (!b->bounce ||
        dfab_mr_reg(srv->fabric, b->bounce, srv->cfg.max_io, DFAB_ACCESS_LOCAL, &b->bounce_mr)) {
        bufs_free(b);
        return NULL;
    }
    return b;
}

static bool bufs_done(worker_bufs *b)
{
    pthread_mutex_lock(&b->wait.mu);
    bool done = b->wait.done;
    pthread_mutex_unlock(&b->wait.mu);
    return done;
}

/* Free orphaned sets whose completion has arrived. */
static void reap_orphans(worker *w)
{
    worker_bufs **pp = &w->orphans;
    while (*pp) {
        worker_bufs *b = *pp;
        if (bufs_done(b)) {
            *pp = b->next_orphan;
            bufs_free(b);
            w->norphans--;
        } else {
            pp = &b->next_orphan;
        }
    }
}

/* The current request timed out on its client: retire the buffer set. */
static void retire_bufs(worker *w, session *s)
{
    w->timed_out = false;
    log_error("session %016llx: client did not complete a transfer within %u ms; closing it",
              (unsigned long long)s->id, w->srv->cfg.io_timeout_ms);
    session_close(&w->srv->sessions, s, SESSION_END_LEASE, "closed: client stopped progressing");
    worker_bufs *fresh = w->norphans < MAX_ORPHANS ? bufs_new(w->srv) : NULL;
    if (!fresh) {
        /* no room for another orphan: wait for this set after all */
        fabric_wait *fw = &w->bufs->wait;
        pthread_mutex_lock(&fw->mu);
        while (!fw->done)
            pthread_cond_wait(&fw->cv, &fw->mu);
        pthread_mutex_unlock(&fw->mu);
        return;
    }
    w->bufs->next_orphan = w->orphans;
    w->orphans = w->bufs;
    w->norphans++;
    w->bufs = fresh;
    w->bounce = fresh->bounce;
}

/* ---- executing one request -------------------------------------------- */

static void execute_request(worker *w, rx_slot *slot)
{
    server *srv = w->srv;
    session *s = slot->sess;
    op_ctx c;
    memset(&c, 0, sizeof(c));
    c.srv = srv;
    c.sess = s;
    c.req = &slot->req;
    c.bounce = w->bounce;
    c.io = &worker_io;
    c.io_self = w;
    reply_buf *rb = reply_acquire(w);
    c.reply_buf = rb->mem;
    c.reply_cap = s->limits.max_response;
    reply_hdr_init(&c.rep.hdr, &slot->req.hdr, s->id, 0, DAFS_ST_OK);
    c.rep.hdr.credits = session_grant_for_reply(&srv->sessions, s);

    /* A session closed while this request queued (a stuck client): drop
     * it unanswered rather than risk another wait on that client. */
    int status = session_is_closed(&srv->sessions, s) ? DAFS_ST_BADSESSION : ops_execute(&c);
    if (status == DAFS_ST_BADSESSION || status == OPCTX_REPLY_LATER || w->timed_out) {
        /* a queued LOCK counts as served: its reply leaves when it is granted */
        stats_reply(&slot->req, &c.rep, status == OPCTX_REPLY_LATER ? DAFS_ST_OK : status,
                    slot->len, 0, slot->t_recv);
        if (w->timed_out)
            retire_bufs(w, s); /* the session is closed: no reply */
        reply_unused(w, rb);
        session_request_done(&srv->sessions, s);
        session_release(&srv->sessions, s);
        slot->sess = NULL;
        return;
    }
    int len = c.encoded_len;
    if (status != DAFS_ST_OK || len <= 0) {
        c.rep.hdr.status = status;
        len = dafs_encode_reply(rb->mem, c.reply_cap, &c.rep);
    }
    if (len < 0) {
        log_error("cannot encode %s reply (status %d)", dafs_op_name(slot->req.hdr.opcode), -len);
        c.rep.hdr.status = DAFS_ST_SERVERFAULT;
        len = dafs_encode_reply(rb->mem, c.reply_cap, &c.rep);
    }
    /* The request is finished before the reply leaves, so a client that
     * sends its next request the moment it sees the reply is within credits. */
    session_request_done(&srv->sessions, s);
    stats_reply(&slot->req, &c.rep, c.rep.hdr.status, slot->len, len > 0 ? (size_t)len : 0,
                slot->t_recv);
    int rc = len > 0 ? send_reply(w, rb, s, (size_t)len) : -EINVAL;
    if (rc != 0) {
        if (len > 0)
            log_error("reply to session %016llx failed: %s", (unsigned long long)s->id,
                      strerror(-rc));
        else
            reply_unused(w, rb);
        session_release(&srv->sessions, s);
    }
    slot->sess = NULL;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    server *srv = w->srv;
    rx_slot *slot;
    ops_worker_thread_init();
    while ((slot = queue_pop(&srv->queue)) != NULL) {
        if (w->orphans)
            reap_orphans(w);
        if (w->reply_retired)
            reap_retired_replies(w);
        execute_request(w, slot);
        srv->queue.done(srv, slot);
        queue_finished_one(&srv->queue);
    }
    return NULL;
}

/* ---- start and stop --------------------------------------------------- */

static int worker_init(server *srv, worker *w, unsigned index, const char **why)
{
    w->srv = srv;
    w->index = index;
    if (io_uring_queue_init(URING_DEPTH, &w->ring, 0) < 0) {
        *why = "io_uring_queue_init failed";
        return -1;
    }
    w->ring_ready = true;
    w->bufs = bufs_new(srv);
    if (!w->bufs) {
        *why = "cannot allocate and register worker buffers";
        return -1;
    }
    w->bounce = w->bufs->bounce;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->reply_mu, NULL);
    pthread_cond_init(&w->reply_cv, &ca);
    pthread_condattr_destroy(&ca);
    w->reply_ready = true;
    for (unsigned i = 0; i < REPLY_BUFS; i++) {
        reply_buf *rb = reply_buf_new(w);
        if (!rb) {
            *why = "cannot allocate and register reply buffers";
            return -1;
        }
        w->reply_all[i] = rb;
        rb->next = w->reply_free;
        w->reply_free = rb;
    }
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        *why = "cannot create worker thread";
        return -1;
    }
    w->started = true;
    return 0;
}

int workers_start(server *srv, void (*done)(server *srv, rx_slot *slot), const char **why)
{
    srv->queue.done = done;
    pthread_mutex_init(&srv->queue.mu, NULL);
    pthread_cond_init(&srv->queue.cv, NULL);
    srv->workers = calloc(srv->cfg.threads, sizeof(worker));
    if (!srv->workers) {
        *why = "out of memory";
        return -1;
    }
    srv->nworkers = srv->cfg.threads;
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (worker_init(srv, &srv->workers[i], i, why) != 0)
            return -1;
    return 0;
}

/* After the join: free the reply buffers that are back; close the
 * registrations of those still posted and keep their memory (and the mutex
 * their completion takes) until free_replies, after dfab_close. */
static void stop_replies(worker *w)
{
    reap_retired_replies(w);
    pthread_mutex_lock(&w->reply_mu);
    w->reply_free = NULL;
    for (unsigned i = 0; i < REPLY_BUFS; i++) {
        reply_buf *rb = w->reply_all[i];
        if (rb && !rb->in_flight) {
            reply_buf_free(rb);
            w->reply_all[i] = NULL;
        }
    }
    pthread_mutex_unlock(&w->reply_mu);
    for (unsigned i = 0; i < REPLY_BUFS; i++)
        if (w->reply_all[i]) {
            dfab_mr_close(w->reply_all[i]->mr);
            w->reply_all[i]->mr = NULL;
        }
    for (reply_buf *rb = w->reply_retired; rb; rb = rb->next) {
        dfab_mr_close(rb->mr);
        rb->mr = NULL;
    }
}

static void free_replies(worker *w)
{
    for (unsigned i = 0; i < REPLY_BUFS; i++) {
        reply_buf_free(w->reply_all[i]);
        w->reply_all[i] = NULL;
    }
    while (w->reply_retired) {
        reply_buf *rb = w->reply_retired;
        w->reply_retired = rb->next;
        reply_buf_free(rb);
    }
    w->reply_free = NULL;
    pthread_mutex_destroy(&w->reply_mu);
    pthread_cond_destroy(&w->reply_cv);
    w->reply_ready = false;
}

void workers_stop(server *srv)
{
    if (!srv->workers)
        return;
    pthread_mutex_lock(&srv->queue.mu);
    srv->queue.stop = true;
    pthread_cond_broadcast(&srv->queue.cv);
    pthread_mutex_unlock(&srv->queue.mu);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        if (w->started)
            pthread_join(w->thread, NULL);
        if (w->bufs)
            bufs_free(w->bufs);
        w->bufs = NULL;
        reap_orphans(w);
        /* Orphans whose completion never came: close their registrations
         * now (before the domain), keep the memory until workers_free runs
         * after dfab_close has cancelled the operations that point at it
         * (the same order dispatch uses for its receive buffers). */
        for (worker_bufs *b = w->orphans; b; b = b->next_orphan) {
            dfab_mr_close(b->bounce_mr);
            b->bounce_mr = NULL;
        }
        if (w->reply_ready)
            stop_replies(w);
        if (w->ring_ready)
            io_uring_queue_exit(&w->ring);
        w->ring_ready = false;
    }
}

void workers_free(server *srv)
{
    if (!srv->workers)
        return;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        while (w->orphans) {
            worker_bufs *b = w->orphans;
            w->orphans = b->next_orphan;
            bufs_free(b);
        }
        w->norphans = 0;
        if (w->reply_ready)
            free_replies(w);
    }
    free(srv->workers);
    srv->workers = NULL;
}
