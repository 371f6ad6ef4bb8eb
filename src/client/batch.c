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
static size_t entry_size(const dafs_batch_entry *e)
{
    size_t n = 24 + round8(1u + e->fh.len) + 16;
    if (e->flags & DAFS_BENT_INLINE)
        n += 8 + round8(e->count);
    else if (e->op != DAFS_BATCH_COMMIT)
        n += 24;
    return n;
}

static void set_result(bcall *b, unsigned i, int64_t res, uint64_t offset)
{
    b->res[i].user_data = b->ios[i].user_data;
    b->res[i].res = res;
    b->res[i].offset = offset;
}

/* Check one I/O and describe it as an entry (registering its buffer when
 * needed).  Returns 0 or the error the entry fails with. */
static int make_entry(bcall *b, unsigned i, dafs_batch_entry *e)
{
    dafs_session *s = b->s;
    const dafs_io *io = &b->ios[i];
    dafs_file *f = io->file;
    if (f == NULL || f->s != s)
        return -EINVAL;
    memset(e, 0, sizeof *e);
    e->request_id = i;
    e->fh = f->fh;
    e->stateid = f->stateid;
    e->hint = io->hint;
    e->offset = io->offset;
    int acc = f->flags & O_ACCMODE;
    bool write = io->op == DAFS_IO_WRITE || io->op == DAFS_IO_APPEND;
    b->res[i].user_data = io->user_data;
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
    if (write && io->len <= BATCH_INLINE_MAX && io->len <= s->inline_max) {
        e->flags = DAFS_BENT_INLINE;
        e->data = (dafs_bytes){io->buf, (uint32_t)io->len};
        return 0;
    }
    dfab_mr *mr = io->len > 0 ? mem_find_region(s, io->buf, io->len) : NULL;
    if (mr == NULL && io->len > 0) {
        unsigned access = DFAB_ACCESS_LOCAL |
                          (write ? DFAB_ACCESS_REMOTE_READ : DFAB_ACCESS_REMOTE_WRITE);
        int rc = dfab_mr_reg(s->fab, io->buf, io->len, access, &mr);
        if (rc < 0)
            return rc;
        b->own[i] = mr;
    }
    if (mr != NULL) {
        e->seg.addr = mr->remote_addr + (uint64_t)((uint8_t *)io->buf - (uint8_t *)mr->base);
        e->seg.key = mr->key;
    }
    e->seg.len = io->len;
    return 0;
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
        memset(&req, 0, sizeof req);
        req.hdr.opcode = DAFS_OP_BATCH_SUBMIT;
        req.hdr.cred = cred;
        req.u.batch.mode = DAFS_BATCH_SYNC;
        req.u.batch.nentries = nent;
        req.u.batch.entries = b->ent;
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
    size_t req_room = s->max_request - DAFS_HDR_SIZE - BATCH_REQ_FIXED;
    size_t rep_room = (s->max_response - DAFS_HDR_SIZE - DAFS_BATCH_REP_FIXED) / DAFS_BATCH_CPL_SIZE;
    unsigned max_entries = rep_room < DAFS_BATCH_MAX ? (unsigned)rep_room : DAFS_BATCH_MAX;
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
        size_t sz = entry_size(&e);
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
