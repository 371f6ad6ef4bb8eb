/*
 * batch.c — BATCH_SUBMIT (DAFS §4.2.3, §6.5.5): many reads, writes, appends
 * and commits in one request, run by one worker job.
 *
 * How a batch runs: the entries are taken in order.  Consecutive READs (and
 * consecutive WRITEs whose data is in client memory) form a group of up to
 * OPCTX_RMA_GROUP entries and max_io bytes: for a read group every entry's
 * data is read from its file into its own slice of the worker's bounce
 * buffer, then all the RMA writes into the client are posted together and
 * waited for together (opctx_rma_many); a write group RMA-reads every
 * entry's data first, then writes the files.  Inline writes, appends and
 * commits run one by one.  So a batch of 32 4 KiB reads costs one worker
 * hand-off, 32 file reads, one burst of 32 RMA writes and one reply.
 *
 * Errors are per entry: a bad handle, a stateid that is not this session's,
 * a range out of bounds or a segment the client's NIC refuses fails that
 * entry's completion only; the other entries run.  Only a malformed request
 * (refused by the codec) or one whose reply could not hold a completion per
 * entry fails as a whole.
 *
 * Completions are encoded straight into the reply buffer, in entry order
 * (dafs_batch_enc_*): nothing is sized by the peer beyond the codec's
 * DAFS_BATCH_MAX, and the reply's size is checked before any entry runs.
 */
#include "batch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "ops.h"
#include "ops_lock.h"

/* One entry of the group being gathered. */
typedef struct bgroup {
    bool write;
    unsigned n;
    size_t bytes; /* bounce buffer used */
    dafs_batch_entry ent[OPCTX_RMA_GROUP];
    size_t off[OPCTX_RMA_GROUP];
    dafs_batch_cpl cpl[OPCTX_RMA_GROUP];
} bgroup;

typedef struct batch_sess batch_sess;

typedef struct brun {
    op_ctx *c;
    dafs_batch_enc enc;
    batch_sess *async; /* asynchronous: completions go to its queue, not the reply */
    bool failed; /* the client stopped progressing: give up */
    bgroup g;
} brun;

static void queue_completion(batch_sess *bs, const dafs_batch_cpl *cpl);

static void emit(brun *b, const dafs_batch_cpl *cpl)
{
    if (b->async != NULL) {
        queue_completion(b->async, cpl);
        return;
    }
    /* cannot overflow: the size was checked against the entry count first */
    if (dafs_batch_enc_add(&b->enc, cpl) != 0)
        b->failed = true;
}

static void cpl_init(dafs_batch_cpl *cpl, const dafs_batch_entry *e)
{
    cpl->request_id = e->request_id;
    cpl->status = DAFS_ST_OK;
    cpl->count = 0;
    cpl->offset = e->offset;
}

static int check_write_allowed(const op_ctx *c)
{
    return c->srv->cfg.read_only ? DAFS_ST_ROFS : DAFS_ST_OK;
}

/* Range, size and segment checks shared by every data entry. */
static int check_data_entry(const op_ctx *c, const dafs_batch_entry *e)
{
    int st = ops_check_range(e->offset, e->count);
    if (st != DAFS_ST_OK)
        return st;
    if (e->flags & DAFS_BENT_INLINE)
        return e->count <= c->sess->limits.inline_max ? DAFS_ST_OK : DAFS_ST_INVAL;
    return ops_check_segs(c, &e->seg, 1, e->count);
}

static int sync_fd(op_ctx *c, int fd, uint32_t stable)
{
    uint32_t committed;
    return ops_sync_as_asked(c, fd, stable, &committed);
}

/* ---- groups ------------------------------------------------------------- */

/* One entry's write through the lock gate (ops_lock.h); a DAFS_ST_* status. */
static int gated_write(op_ctx *c, const dafs_batch_entry *e, int fd, const uint8_t *data)
{
    if (e->count == 0)
        return DAFS_ST_OK;
    locks_io lio;
    int st = locks_io_begin(c->srv, c->sess->id, &e->fh, LOCKS_IO_WRITE, e->offset, e->count,
                            &lio);
    if (st != DAFS_ST_OK)
        return st;
    int rc = opctx_file_write(c, fd, data, e->count, e->offset);
    locks_io_end(c->srv, &lio);
    return rc < 0 ? export_errno_status(-rc) : DAFS_ST_OK;
}

/* One entry's data: page-cache hits straight from this thread (one
 * preadv2(RWF_NOWAIT), no ring round trip); what that does not return at
 * once (not cached, or RWF_NOWAIT unsupported) goes through the ring. */
static int read_entry(op_ctx *c, int fd, uint8_t *buf, size_t len, uint64_t off, size_t *got)
{
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    ssize_t n = preadv2(fd, &iov, 1, (off_t)off, RWF_NOWAIT);
    size_t done = n > 0 ? (size_t)n : 0;
    if (n == 0 || done == len) { /* end of file, or all of it */
        *got = done;
        return 0;
    }
    size_t more = 0;
    int rc = opctx_file_read(c, fd, buf + done, len - done, off + done, &more);
    *got = done + more;
    return rc;
}

static void run_read_group(brun *b)
{
    op_ctx *c = b->c;
    bgroup *g = &b->g;
    op_rma_part parts[OPCTX_RMA_GROUP];
    unsigned who[OPCTX_RMA_GROUP];
    unsigned np = 0;
    for (unsigned i = 0; i < g->n; i++) {
        const dafs_batch_entry *e = &g->ent[i];
        dafs_batch_cpl *cpl = &g->cpl[i];
        if (cpl->status != DAFS_ST_OK || e->count == 0)
            continue;
        ops_data_fd d;
        cpl->status = ops_data_for(c, &e->fh, e->stateid, FDC_READ, &d);
        if (cpl->status != DAFS_ST_OK)
            continue;
        size_t got = 0;
        locks_io lio;
        int rc = 0;
        cpl->status = locks_io_begin(c->srv, c->sess->id, &e->fh, LOCKS_IO_READ, e->offset,
                                     e->count, &lio);
        if (cpl->status == DAFS_ST_OK) {
            rc = read_entry(c, d.fd, c->bounce + g->off[i], e->count, e->offset, &got);
            locks_io_end(c->srv, &lio);
        }
        ops_data_close(c, &d);
        if (cpl->status != DAFS_ST_OK)
            continue;
        if (rc < 0) {
            cpl->status = export_errno_status(-rc);
            continue;
        }
        cpl->count = (uint32_t)got;
        if (got > 0) {
            parts[np] = (op_rma_part){.off = g->off[i], .len = got, .seg = e->seg};
            who[np++] = i;
        }
    }
    if (np > 0) {
        int status[OPCTX_RMA_GROUP];
        if (opctx_rma_many(c, true, parts, np, status) != 0) {
            b->failed = true;
            return;
        }
        for (unsigned k = 0; k < np; k++)
            if (status[k] != 0) {
                g->cpl[who[k]].status = DAFS_ST_IO;
                g->cpl[who[k]].count = 0;
            }
    }
}

static void run_write_group(brun *b)
{
    op_ctx *c = b->c;
    bgroup *g = &b->g;
    op_rma_part parts[OPCTX_RMA_GROUP];
    unsigned who[OPCTX_RMA_GROUP];
    unsigned np = 0;
    for (unsigned i = 0; i < g->n; i++)
        if (g->cpl[i].status == DAFS_ST_OK && g->ent[i].count > 0) {
            parts[np] = (op_rma_part){.off = g->off[i], .len = g->ent[i].count,
                                         .seg = g->ent[i].seg};
            who[np++] = i;
        }
    if (np > 0) {
        int status[OPCTX_RMA_GROUP];
        if (opctx_rma_many(c, false, parts, np, status) != 0) {
            b->failed = true;
            return;
        }
        for (unsigned k = 0; k < np; k++)
            if (status[k] != 0)
                g->cpl[who[k]].status = DAFS_ST_IO;
    }
    for (unsigned i = 0; i < g->n; i++) {
        const dafs_batch_entry *e = &g->ent[i];
        dafs_batch_cpl *cpl = &g->cpl[i];
        if (cpl->status != DAFS_ST_OK)
            continue;
        ops_data_fd d;
        cpl->status = ops_data_for(c, &e->fh, e->stateid, FDC_WRITE, &d);
        if (cpl->status != DAFS_ST_OK)
            continue;
        cpl->status = gated_write(c, e, d.fd, c->bounce + g->off[i]);
        if (cpl->status == DAFS_ST_OK)
            cpl->status = sync_fd(c, d.fd, e->stable);
        ops_data_close(c, &d);
        if (cpl->status == DAFS_ST_OK)
            cpl->count = e->count;
    }
}

static void flush_group(brun *b)
{
    bgroup *g = &b->g;
    if (g->n == 0)
        return;
    if (!b->failed) {
        if (g->write)
            run_write_group(b);
        else
            run_read_group(b);
    }
    for (unsigned i = 0; i < g->n && !b->failed; i++)
        emit(b, &g->cpl[i]);
    g->n = 0;
    g->bytes = 0;
}

static void add_to_group(brun *b, bool write, const dafs_batch_entry *e)
{
    bgroup *g = &b->g;
    size_t max_io = b->c->srv->cfg.max_io;
    if (g->n > 0 && (g->write != write || g->n == OPCTX_RMA_GROUP || e->count > max_io - g->bytes))
        flush_group(b);
    g->write = write;
    unsigned i = g->n++;
    g->ent[i] = *e;
    cpl_init(&g->cpl[i], e);
    int st = check_data_entry(b->c, e);
    if (st == DAFS_ST_OK && write)
        st = check_write_allowed(b->c);
    if (st == DAFS_ST_OK && write && e->stable > DAFS_FILE_SYNC)
        st = DAFS_ST_INVAL;
    g->cpl[i].status = st;
    g->off[i] = g->bytes;
    if (st == DAFS_ST_OK)
        g->bytes += e->count; /* count <= max_io - bytes: checked above (or a fresh group) */
}

/* ---- single entries ----------------------------------------------------- */

static int run_inline_write(op_ctx *c, const dafs_batch_entry *e, dafs_batch_cpl *cpl)
{
    int st = check_data_entry(c, e);
    if (st == DAFS_ST_OK)
        st = check_write_allowed(c);
    if (st == DAFS_ST_OK && e->stable > DAFS_FILE_SYNC)
        st = DAFS_ST_INVAL;
    if (st != DAFS_ST_OK)
        return st;
    ops_data_fd d;
    st = ops_data_for(c, &e->fh, e->stateid, FDC_WRITE, &d);
    if (st != DAFS_ST_OK)
        return st;
    st = gated_write(c, e, d.fd, e->data.ptr);
    if (st == DAFS_ST_OK)
        st = sync_fd(c, d.fd, e->stable);
    ops_data_close(c, &d);
    if (st == DAFS_ST_OK)
        cpl->count = e->count;
    return st;
}

/* APPEND through ops_append, on a request made from the entry. */
static int run_append(op_ctx *c, const dafs_batch_entry *e, dafs_batch_cpl *cpl)
{
    int st = check_write_allowed(c);
    if (st != DAFS_ST_OK)
        return st;
    bool direct = !(e->flags & DAFS_BENT_INLINE);
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr = c->req->hdr;
    req.hdr.opcode = direct ? DAFS_OP_APPEND_DIRECT : DAFS_OP_APPEND_INLINE;
    dafs_write_req *w = &req.u.write;
    w->fh = e->fh;
    w->stateid = e->stateid;
    w->offset = 0;
    w->count = e->count;
    w->stable = e->stable;
    w->hints = e->hint;
    if (direct) {
        w->nsegs = 1;
        w->segs[0] = e->seg;
    } else {
        w->data = e->data;
    }
    op_ctx sub = *c;
    sub.req = &req;
    memset(&sub.rep, 0, sizeof sub.rep);
    sub.encoded_len = 0;
    st = ops_append(&sub, direct);
    c->rma_timed_out |= sub.rma_timed_out;
    if (st == DAFS_ST_OK) {
        cpl->count = sub.rep.u.write.count;
        cpl->offset = sub.rep.u.write.offset;
    }
    return st;
}

/* COMMIT: under the open state, or (stateid 0) on a fresh open as root, as
 * the single COMMIT does: durability is not an access. */
static int run_commit(op_ctx *c, const dafs_batch_entry *e)
{
    if (e->stable != DAFS_DATA_SYNC && e->stable != DAFS_FILE_SYNC)
        return DAFS_ST_INVAL;
    ops_data_fd d;
    if (e->stateid != 0) {
        int st = ops_data_state(c, &e->fh, e->stateid, 0, &d);
        if (st != DAFS_ST_OK)
            return st;
        st = sync_fd(c, d.fd, e->stable);
        ops_data_close(c, &d);
        return st;
    }
    int pfd, fd;
    struct stat st;
    int status = ops_fh_open(c, &e->fh, &pfd, &st);
    if (status != DAFS_ST_OK)
        return status;
    if (!S_ISREG(st.st_mode)) {
        close(pfd);
        return S_ISDIR(st.st_mode) ? DAFS_ST_ISDIR : DAFS_ST_INVAL;
    }
    cred_suspend();
    status = ops_reopen(pfd, O_RDONLY | O_NONBLOCK, &fd);
    cred_resume();
    close(pfd);
    if (status != DAFS_ST_OK)
        return status;
    status = sync_fd(c, fd, e->stable);
    close(fd);
    return status;
}

static void run_single(brun *b, const dafs_batch_entry *e)
{
    flush_group(b);
    if (b->failed)
        return;
    dafs_batch_cpl cpl;
    cpl_init(&cpl, e);
    switch (e->op) {
    case DAFS_BATCH_WRITE: cpl.status = run_inline_write(b->c, e, &cpl); break;
    case DAFS_BATCH_APPEND: cpl.status = run_append(b->c, e, &cpl); break;
    case DAFS_BATCH_COMMIT: cpl.status = run_commit(b->c, e); break;
    default: cpl.status = DAFS_ST_INVAL; break;
    }
    if (b->c->rma_timed_out)
        b->failed = true;
    else
        emit(b, &cpl);
}

/* Run every entry of q, encoding a completion for each. */
static void run_entries(brun *b, const dafs_batch_req *q)
{
    dafs_bytes it = q->entries_wire;
    dafs_batch_entry e;
    while (!b->failed && dafs_batch_next(&it, &e) == 1) {
        if (e.op == DAFS_BATCH_READ)
            add_to_group(b, false, &e);
        else if (e.op == DAFS_BATCH_WRITE && !(e.flags & DAFS_BENT_INLINE))
            add_to_group(b, true, &e);
        else
            run_single(b, &e);
    }
    flush_group(b);
}

/* ---- synchronous mode ---------------------------------------------------- */

static int submit_sync(op_ctx *c, const dafs_batch_req *q)
{
    if (q->nentries == 0)
        return DAFS_ST_INVAL;
    size_t need = DAFS_HDR_SIZE + DAFS_BATCH_REP_FIXED + (size_t)q->nentries * DAFS_BATCH_CPL_SIZE;
    if (need > c->reply_cap)
        return DAFS_ST_TOOBIG; /* the client must split it */
    brun *b = calloc(1, sizeof *b); /* the group is ~20 KiB: not on a worker's stack */
    if (b == NULL)
        return DAFS_ST_NOMEM;
    b->c = c;
    int st = dafs_batch_enc_begin(&b->enc, c->reply_buf, c->reply_cap, &c->rep.hdr);
    if (st == 0)
        run_entries(b, q);
    int len = st == 0 && !b->failed ? dafs_batch_enc_finish(&b->enc, 0) : -1;
    free(b);
    if (len < 0)
        return c->rma_timed_out ? DAFS_ST_IO : DAFS_ST_SERVERFAULT;
    c->encoded_len = len;
    return DAFS_ST_OK;
}

/* ---- asynchronous mode ---------------------------------------------------
 *
 * The worker that accepts an asynchronous batch runs its entries at once,
 * like a synchronous one, but queues the completions on the session
 * (batch_sess) and replies with an acknowledgement.  Queued completions
 * leave as BATCH_COMPLETION messages (flag NOTIFY) when the session's
 * num_completions are queued (in messages of that many), when the session's
 * accepted entries have all run and num_completions is NOTIFY_ALL, when the
 * oldest queued one has waited usec_window, or on HURRY_UP; never more
 * messages than the client granted (bc_credits).  The window is checked by
 * the network thread (batch_tick) after every progress call, so at least
 * every 100 ms.  A session holds at most BATCH_ASYNC_MAX accepted, unreported
 * entries; a batch beyond that is refused whole with WHOA.
 */
#define BATCH_ASYNC_MAX 1024u
#define BATCH_NOTIFY_BUFS 4u
#define BATCH_DEFAULT_WINDOW_US 10000u

struct batch_sess;
typedef struct notify_buf {
    dfab_op op; /* first: the send completion casts back */
    struct batch_sess *bs;
    uint8_t *mem;
    atomic_bool busy;
    session *held; /* the session reference the send holds */
} notify_buf;

struct batch_sess {
    pthread_mutex_t mu;
    session_table *table;
    uint64_t session_id;
    dfab_addr addr;
    uint32_t num_completions; /* DAFS_BATCH_NOTIFY_ALL: when nothing runs */
    uint32_t usec_window;
    uint32_t bc_granted;      /* cumulative grant from the client */
    uint32_t bc_sent;         /* notifications sent (their xids) */
    uint32_t accepted;        /* accepted and not yet reported */
    uint32_t running;         /* accepted and not yet run */
    dafs_batch_cpl pend[BATCH_ASYNC_MAX];
    uint32_t npend;
    int64_t oldest_us;        /* when pend[0] was queued */
    size_t buf_size;
    uint8_t *mem;
    dfab_mr *mr;
    notify_buf bufs[BATCH_NOTIFY_BUFS];
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sessions with queued completions, for batch_tick (ids, not pointers: the
 * tick takes its own reference). */
static pthread_mutex_t waiting_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t waiting[64];
static unsigned nwaiting;

static void note_waiting(uint64_t id)
{
    pthread_mutex_lock(&waiting_mu);
    bool have = false;
    for (unsigned i = 0; i < nwaiting && !have; i++)
        have = waiting[i] == id;
    if (!have && nwaiting < sizeof waiting / sizeof waiting[0])
        waiting[nwaiting++] = id;
    pthread_mutex_unlock(&waiting_mu);
}

static void queue_completion(batch_sess *bs, const dafs_batch_cpl *cpl)
{
    pthread_mutex_lock(&bs->mu);
    if (bs->npend == 0)
        bs->oldest_us = now_us();
    if (bs->npend < BATCH_ASYNC_MAX) /* accepted <= BATCH_ASYNC_MAX bounds it */
        bs->pend[bs->npend++] = *cpl;
    if (bs->running > 0)
        bs->running--;
    pthread_mutex_unlock(&bs->mu);
}

static void notify_sent(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)status;
    (void)len;
    (void)src;
    notify_buf *nb = (notify_buf *)op;
    session *s = nb->held;
    session_table *t = nb->bs->table;
    nb->held = NULL;
    atomic_store(&nb->busy, false);
    if (s != NULL)
        session_release(t, s); /* may free nb's session, and nb with it: last */
}

/* Should queued completions leave now?  bs->mu held. */
static bool due_locked(const batch_sess *bs, bool hurry, int64_t now)
{
    if (bs->npend == 0)
        return false;
    if (hurry)
        return true;
    if (bs->num_completions == DAFS_BATCH_NOTIFY_ALL)
        return bs->running == 0;
    if (bs->npend >= bs->num_completions)
        return true;
    uint32_t win = bs->usec_window ? bs->usec_window : BATCH_DEFAULT_WINDOW_US;
    return now - bs->oldest_us >= (int64_t)win;
}

/* Send what is due, as far as the back-channel grant and free buffers allow.
 * The caller holds a reference on s. */
static void flush(server *srv, session *s, batch_sess *bs, bool hurry)
{
    for (;;) {
        pthread_mutex_lock(&bs->mu);
        int64_t now = now_us();
        bool more = due_locked(bs, hurry, now) && (int32_t)(bs->bc_granted - bs->bc_sent) > 0;
        notify_buf *nb = NULL;
        for (unsigned i = 0; more && i < BATCH_NOTIFY_BUFS && nb == NULL; i++)
            if (!atomic_load(&bs->bufs[i].busy))
                nb = &bs->bufs[i];
        if (nb == NULL || session_is_closed(&srv->sessions, s)) {
            bool left = bs->npend > 0;
            pthread_mutex_unlock(&bs->mu);
            if (left) /* batch_tick tries again */
                note_waiting(bs->session_id);
            return;
        }
        uint32_t room = (uint32_t)((bs->buf_size - DAFS_HDR_SIZE - DAFS_BATCH_REP_FIXED) /
                                   DAFS_BATCH_CPL_SIZE);
        uint32_t n = bs->npend < room ? bs->npend : room;
        if (!hurry && bs->num_completions != DAFS_BATCH_NOTIFY_ALL && n >= bs->num_completions &&
            bs->num_completions > 0)
            n = bs->num_completions; /* "notify after N": messages of N */
        session *held = session_acquire(&srv->sessions, s->id); /* for the send */
        if (held == NULL) {
            pthread_mutex_unlock(&bs->mu);
            return;
        }
        dafs_hdr h;
        memset(&h, 0, sizeof h);
        h.opcode = DAFS_OP_BATCH_COMPLETION;
        h.flags = DAFS_HDR_NOTIFY;
        h.session_id = bs->session_id;
        h.xid = (uint64_t)bs->bc_sent + 1;
        h.credits = session_grant_for_reply(&srv->sessions, s);
        dafs_batch_enc e;
        int len = dafs_batch_enc_begin(&e, nb->mem, bs->buf_size, &h);
        for (uint32_t i = 0; i < n && len == 0; i++)
            len = dafs_batch_enc_add(&e, &bs->pend[i]);
        if (len == 0)
            len = dafs_batch_enc_finish(&e, bs->accepted - n);
        if (len < 0) {
            pthread_mutex_unlock(&bs->mu);
            session_release(&srv->sessions, held);
            log_error("cannot encode BATCH_COMPLETION: %d", -len);
            return;
        }
        memmove(bs->pend, bs->pend + n, (size_t)(bs->npend - n) * sizeof bs->pend[0]);
        bs->npend -= n;
        bs->accepted -= n;
        bs->bc_sent++;
        bs->oldest_us = now;
        atomic_store(&nb->busy, true);
        nb->held = held;
        memset(&nb->op, 0, sizeof nb->op);
        nb->op.done = notify_sent;
        pthread_mutex_unlock(&bs->mu);
        int rc = dfab_send(srv->fabric, bs->addr, nb->mem, (size_t)len, bs->mr, &nb->op);
        if (rc != 0) {
            log_error("BATCH_COMPLETION to session %016llx failed: %s",
                      (unsigned long long)bs->session_id, strerror(-rc));
            nb->held = NULL;
            atomic_store(&nb->busy, false);
            session_release(&srv->sessions, held);
            return;
        }
    }
}

static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

static batch_sess *sess_get(op_ctx *c)
{
    session *s = c->sess;
    pthread_mutex_lock(&create_mu);
    batch_sess *bs = s->batch;
    if (bs == NULL) {
        bs = calloc(1, sizeof *bs);
        if (bs != NULL) {
            pthread_mutex_init(&bs->mu, NULL);
            bs->table = &c->srv->sessions;
            bs->session_id = s->id;
            bs->addr = s->addr;
            bs->num_completions = DAFS_BATCH_NOTIFY_ALL;
            bs->buf_size = c->sess->limits.max_response;
            size_t total = bs->buf_size * BATCH_NOTIFY_BUFS;
            bs->mem = aligned_alloc(4096, (total + 4095) & ~(size_t)4095);
            if (bs->mem == NULL ||
                dfab_mr_reg(c->srv->fabric, bs->mem, total, DFAB_ACCESS_LOCAL, &bs->mr) != 0) {
                free(bs->mem);
                pthread_mutex_destroy(&bs->mu);
                free(bs);
                bs = NULL;
            } else {
                for (unsigned i = 0; i < BATCH_NOTIFY_BUFS; i++) {
                    bs->bufs[i].bs = bs;
                    bs->bufs[i].mem = bs->mem + i * bs->buf_size;
                }
                s->batch = bs;
            }
        }
    }
    pthread_mutex_unlock(&create_mu);
    return bs;
}

void batch_session_free(session *s)
{
    batch_sess *bs = s->batch;
    if (bs == NULL)
        return;
    s->batch = NULL;
    dfab_mr_close(bs->mr); /* no send is in flight: each holds a session reference */
    free(bs->mem);
    pthread_mutex_destroy(&bs->mu);
    free(bs);
}

/* The session's settings from a BATCH_SUBMIT or HURRY_UP; bs->mu held. */
static void take_grant_locked(batch_sess *bs, uint32_t bc_credits)
{
    if ((int32_t)(bc_credits - bs->bc_granted) > 0)
        bs->bc_granted = bc_credits;
}

static int submit_async(op_ctx *c, const dafs_batch_req *q)
{
    batch_sess *bs = sess_get(c);
    if (bs == NULL)
        return DAFS_ST_NOMEM;
    pthread_mutex_lock(&bs->mu);
    take_grant_locked(bs, q->bc_credits);
    if (q->num_completions != 0)
        bs->num_completions = q->num_completions;
    if (q->usec_window != 0)
        bs->usec_window = q->usec_window;
    bool whoa = q->nentries > BATCH_ASYNC_MAX - bs->accepted;
    if (!whoa) {
        bs->accepted += q->nentries;
        bs->running += q->nentries;
    }
    pthread_mutex_unlock(&bs->mu);
    if (whoa) {
        flush(c->srv, c->sess, bs, true); /* make room: what is done goes out now */
        return DAFS_ST_WHOA;
    }
    brun *b = calloc(1, sizeof *b);
    if (b == NULL) {
        pthread_mutex_lock(&bs->mu);
        bs->accepted -= q->nentries;
        bs->running -= q->nentries;
        pthread_mutex_unlock(&bs->mu);
        return DAFS_ST_NOMEM;
    }
    b->c = c;
    b->async = bs;
    run_entries(b, q);
    bool failed = b->failed;
    free(b);
    if (failed) /* the client stopped progressing: the session is closed */
        return DAFS_ST_IO;
    c->rep.u.batch.ncompl = 0;
    pthread_mutex_lock(&bs->mu);
    c->rep.u.batch.outstanding = bs->accepted;
    pthread_mutex_unlock(&bs->mu);
    flush(c->srv, c->sess, bs, false);
    return DAFS_ST_OK;
}

static int hurry_up(op_ctx *c)
{
    batch_sess *bs = c->sess->batch;
    if (bs == NULL)
        return DAFS_ST_OK; /* nothing asynchronous ever: nothing to send */
    pthread_mutex_lock(&bs->mu);
    take_grant_locked(bs, c->req->u.hurry.bc_credits);
    pthread_mutex_unlock(&bs->mu);
    flush(c->srv, c->sess, bs, true);
    return DAFS_ST_OK;
}

void batch_tick(server *srv)
{
    uint64_t ids[64];
    pthread_mutex_lock(&waiting_mu);
    unsigned n = nwaiting;
    memcpy(ids, waiting, n * sizeof ids[0]);
    nwaiting = 0;
    pthread_mutex_unlock(&waiting_mu);
    for (unsigned i = 0; i < n; i++) {
        session *s = session_acquire(&srv->sessions, ids[i]);
        if (s == NULL)
            continue;
        batch_sess *bs = s->batch;
        if (bs != NULL)
            flush(srv, s, bs, false);
        session_release(&srv->sessions, s);
    }
}

int batch_execute(op_ctx *c)
{
    switch (c->req->hdr.opcode) {
    case DAFS_OP_BATCH_SUBMIT:
        return c->req->u.batch.mode == DAFS_BATCH_SYNC ? submit_sync(c, &c->req->u.batch)
                                                        : submit_async(c, &c->req->u.batch);
    case DAFS_OP_HURRY_UP: return hurry_up(c);
    default: return DAFS_ST_BADOP;
    }
}
