/*
 * batch.c — BATCH_SUBMIT (DAFS §4.2.3, §6.5.5): many reads, writes, appends
 * and commits in one request, run by one worker job.
 *
 * How a batch runs: the entries are taken in order.  Consecutive READs (and
 * consecutive WRITEs whose data is in client memory) form a group of up to
 * WORKER_RMA_GROUP entries and max_io bytes: for a read group every entry's
 * data is read from its file into its own slice of the worker's bounce
 * buffer, then all the RMA writes into the client are posted together and
 * waited for together (worker_rma_many); a write group RMA-reads every
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
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops.h"
#include "worker.h"

/* One entry of the group being gathered. */
typedef struct bgroup {
    bool write;
    unsigned n;
    size_t bytes; /* bounce buffer used */
    dafs_batch_entry ent[WORKER_RMA_GROUP];
    size_t off[WORKER_RMA_GROUP];
    dafs_batch_cpl cpl[WORKER_RMA_GROUP];
} bgroup;

typedef struct brun {
    op_ctx *c;
    dafs_batch_enc enc;
    bool failed; /* the client stopped progressing: give up */
    bgroup g;
} brun;

static void emit(brun *b, const dafs_batch_cpl *cpl)
{
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
    int rc = 0;
    if (stable == DAFS_DATA_SYNC)
        rc = worker_file_sync(c->w, fd, true);
    else if (stable == DAFS_FILE_SYNC)
        rc = worker_file_sync(c->w, fd, false);
    return rc < 0 ? export_errno_status(-rc) : DAFS_ST_OK;
}

/* ---- groups ------------------------------------------------------------- */

static void run_read_group(brun *b)
{
    op_ctx *c = b->c;
    bgroup *g = &b->g;
    worker_rma_req parts[WORKER_RMA_GROUP];
    unsigned who[WORKER_RMA_GROUP];
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
        int rc = worker_file_read(c->w, d.fd, c->w->bounce + g->off[i], e->count, e->offset, &got);
        ops_data_close(c, &d);
        if (rc < 0) {
            cpl->status = export_errno_status(-rc);
            continue;
        }
        cpl->count = (uint32_t)got;
        if (got > 0) {
            parts[np] = (worker_rma_req){.off = g->off[i], .len = got, .seg = e->seg};
            who[np++] = i;
        }
    }
    if (np > 0) {
        int status[WORKER_RMA_GROUP];
        if (worker_rma_many(c->w, true, c->sess->addr, parts, np, status) != 0) {
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
    worker_rma_req parts[WORKER_RMA_GROUP];
    unsigned who[WORKER_RMA_GROUP];
    unsigned np = 0;
    for (unsigned i = 0; i < g->n; i++)
        if (g->cpl[i].status == DAFS_ST_OK && g->ent[i].count > 0) {
            parts[np] = (worker_rma_req){.off = g->off[i], .len = g->ent[i].count,
                                         .seg = g->ent[i].seg};
            who[np++] = i;
        }
    if (np > 0) {
        int status[WORKER_RMA_GROUP];
        if (worker_rma_many(c->w, false, c->sess->addr, parts, np, status) != 0) {
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
        int rc = e->count > 0 ? worker_file_write(c->w, d.fd, c->w->bounce + g->off[i], e->count,
                                                  e->offset)
                              : 0;
        cpl->status = rc < 0 ? export_errno_status(-rc) : sync_fd(c, d.fd, e->stable);
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
    if (g->n > 0 && (g->write != write || g->n == WORKER_RMA_GROUP || e->count > max_io - g->bytes))
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
    int rc = e->count > 0 ? worker_file_write(c->w, d.fd, e->data.ptr, e->count, e->offset) : 0;
    st = rc < 0 ? export_errno_status(-rc) : sync_fd(c, d.fd, e->stable);
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
    if (b->c->w->timed_out)
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

static int batch_submit(op_ctx *c)
{
    const dafs_batch_req *q = &c->req->u.batch;
    if (q->mode != DAFS_BATCH_SYNC)
        return DAFS_ST_NOTSUP;
    if (q->nentries == 0)
        return DAFS_ST_INVAL;
    size_t need = DAFS_HDR_SIZE + DAFS_BATCH_REP_FIXED + (size_t)q->nentries * DAFS_BATCH_CPL_SIZE;
    if (need > c->reply_cap)
        return DAFS_ST_TOOBIG; /* the client must split it */
    brun *b = malloc(sizeof *b); /* the group is ~20 KiB: not on a worker's stack */
    if (b == NULL)
        return DAFS_ST_NOMEM;
    b->c = c;
    b->failed = false;
    b->g.n = 0;
    b->g.bytes = 0;
    int st = dafs_batch_enc_begin(&b->enc, c->reply_buf, c->reply_cap, &c->rep.hdr);
    if (st == 0)
        run_entries(b, q);
    int len = st == 0 && !b->failed ? dafs_batch_enc_finish(&b->enc, 0) : -1;
    free(b);
    if (len < 0)
        return c->w->timed_out ? DAFS_ST_IO : DAFS_ST_SERVERFAULT;
    c->encoded_len = len;
    return DAFS_ST_OK;
}

int batch_execute(op_ctx *c)
{
    switch (c->req->hdr.opcode) {
    case DAFS_OP_BATCH_SUBMIT: return batch_submit(c);
    case DAFS_OP_HURRY_UP: return DAFS_ST_OK; /* nothing is held back in synchronous mode */
    default: return DAFS_ST_BADOP;
    }
}
