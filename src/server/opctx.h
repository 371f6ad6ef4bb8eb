/*
 * opctx.h — what an operation sees: the request/I-O interface between the
 * code that decides where a request runs and the code that does it.
 *
 * The request pipeline has one direction:
 *
 *   dispatch.c (network thread: decode, session, credits; decides where)
 *      ├──► fastpath.c (answers a few requests on the network thread)
 *      └──► worker.c   (the pool: a thread per request, its reply buffers)
 *              └──► ops.c / ops_ns.c / ops_ext.c, through this header
 *
 * An operation gets an op_ctx: the decoded request, the reply it fills in,
 * the session and credential it runs for, a registered scratch buffer, and
 * an op_io — the executor's file I/O and RMA into the client's memory.  It
 * never includes dispatch.h, worker.h or fastpath.h, and never calls back
 * into the dispatcher or the worker pool (scripts/check-layering.sh, run by
 * ctest as server_layering, keeps it so).  Whoever runs ops (worker.c
 * today, batch.c for the entries of a BATCH_SUBMIT) fills an op_ctx and an
 * op_io of its own.
 */
#ifndef DAFSD_OPCTX_H
#define DAFSD_OPCTX_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openstate.h"
#include "server.h"

/*
 * The executor's I/O, called through the op_ctx (opctx_* below); self is
 * op_ctx.io_self.  All return 0 or -errno; each call completes (or fails)
 * before it returns.
 *
 *   file_read   read len bytes at off into buf, looping over short reads;
 *               *got < len only at end of file
 *   file_write  write all len bytes at off (short: -EIO)
 *   file_sync   fsync, or fdatasync when datasync
 *   rma_write   copy the first len bytes of op_ctx.bounce into the client's
 *               segments (a READ_DIRECT's data)
 *   rma_read    copy len bytes from the client's segments into op_ctx.bounce
 *               (a WRITE_DIRECT's or APPEND_DIRECT's data)
 *
 *   rma_many    n (<= OPCTX_RMA_GROUP) RMAs between slices of op_ctx.bounce
 *               and one client segment each (write: to the client), all
 *               posted before waiting for all of them; status[i] gets each
 *               part's 0 or -errno, and the call returns 0 once the group is
 *               done (the entries of a batch: batch.c)
 *
 * An RMA that the client does not complete within --io-timeout-ms returns
 * -ETIMEDOUT; the executor then closes the session and sends no reply.
 */
#define OPCTX_RMA_GROUP 64
typedef struct op_rma_part {
    size_t off;   /* in op_ctx.bounce */
    size_t len;
    dafs_seg seg; /* seg.len >= len */
} op_rma_part;

typedef struct op_io {
    int (*file_read)(void *self, int fd, void *buf, size_t len, uint64_t off, size_t *got);
    int (*file_write)(void *self, int fd, const void *buf, size_t len, uint64_t off);
    int (*file_sync)(void *self, int fd, bool datasync);
    int (*rma_write)(void *self, dfab_addr dst, size_t len, const dafs_seg *segs, unsigned nsegs);
    int (*rma_read)(void *self, dfab_addr src, size_t len, const dafs_seg *segs, unsigned nsegs);
    int (*rma_many)(void *self, bool write, dfab_addr peer, const op_rma_part *parts, unsigned n,
                    int *status);
} op_io;

/*
 * Everything one operation needs.  The executor prepares the reply header
 * (xid, session, grant: reply_hdr_init); the op fills the body of `rep` and
 * returns a DAFS_ST_* status, or encodes the whole reply itself into
 * reply_buf and sets encoded_len (READDIR, READDIRPLUS).
 *
 * Credentials: ops_execute looks up the header's credential and runs the
 * operation with the thread switched to it (cred.h); only opening a handle
 * (open_by_handle_at) happens as root, and every data open is then redone
 * as the caller (ops_reopen), so the kernel checks permissions.
 */
typedef struct op_ctx {
    server *srv;
    session *sess;
    const dafs_request *req;
    dafs_reply rep;
    uint8_t *reply_buf;
    size_t reply_cap;   /* the session's max_response */
    int encoded_len;
    op_cred cred;       /* who the request runs as */
    uint8_t *bounce;    /* srv->cfg.max_io registered bytes: RMA data, scratch */
    const op_io *io;    /* the executor's I/O */
    void *io_self;
    bool rma_timed_out; /* an RMA through the wrappers below gave -ETIMEDOUT */
} op_ctx;

static inline int opctx_file_read(op_ctx *c, int fd, void *buf, size_t len, uint64_t off,
                                  size_t *got)
{
    return c->io->file_read(c->io_self, fd, buf, len, off, got);
}
static inline int opctx_file_write(op_ctx *c, int fd, const void *buf, size_t len, uint64_t off)
{
    return c->io->file_write(c->io_self, fd, buf, len, off);
}
static inline int opctx_file_sync(op_ctx *c, int fd, bool datasync)
{
    return c->io->file_sync(c->io_self, fd, datasync);
}
/* RMA with the session's client. */
static inline int opctx_rma_done(op_ctx *c, int rc)
{
    if (rc == -ETIMEDOUT)
        c->rma_timed_out = true;
    return rc;
}
static inline int opctx_rma_write(op_ctx *c, size_t len, const dafs_seg *segs, unsigned nsegs)
{
    return opctx_rma_done(c, c->io->rma_write(c->io_self, c->sess->addr, len, segs, nsegs));
}
static inline int opctx_rma_read(op_ctx *c, size_t len, const dafs_seg *segs, unsigned nsegs)
{
    return opctx_rma_done(c, c->io->rma_read(c->io_self, c->sess->addr, len, segs, nsegs));
}

static inline int opctx_rma_many(op_ctx *c, bool write, const op_rma_part *parts, unsigned n,
                                 int *status)
{
    return opctx_rma_done(c, c->io->rma_many(c->io_self, write, c->sess->addr, parts, n, status));
}

/* Reply header for request header req. */
void reply_hdr_init(dafs_hdr *h, const dafs_hdr *req, uint64_t session_id, uint16_t credits,
                    int status);

/* Not a wire status: what an op returns when it answers later by other
 * means (a queued LOCK: ops_lock.c), so the executor sends no reply. */
#define OPCTX_REPLY_LATER 0x7fff0001

/* ---- entry points ------------------------------------------------------- */

/* Execute c->req (any opcode the network thread does not answer itself),
 * as the header's credential.  Returns a DAFS_ST_* status. */
int ops_execute(op_ctx *c);

/*
 * One READ or WRITE, for callers that run many under one credential (the
 * entries of a batch): switch with ops_cred_enter (looks up credential id
 * `cred` on c->sess, fills c->cred; DAFS_ST_* status, and on failure nothing
 * to leave), run any number of ops_read/ops_write, then ops_cred_leave.
 *
 * ops_read: READ_INLINE (direct false: the data is left in c->bounce and
 * c->rep.u.read.data points at it) or READ_DIRECT (the data is RMA-written
 * to r's segments).  Fills c->rep.u.read (count, eof).
 * ops_write: WRITE_INLINE (r->data) or WRITE_DIRECT (RMA-read from r's
 * segments into c->bounce).  Fills c->rep.u.write (count, committed,
 * verifier).
 * Both check r against c->sess's limits, use r->stateid's open state when
 * it is not 0 (else the fd cache, as the caller), and return a DAFS_ST_*
 * status; neither touches c->req.
 */
int ops_cred_enter(op_ctx *c, uint32_t cred);
void ops_cred_leave(op_ctx *c);
int ops_read(op_ctx *c, const dafs_read_req *r, bool direct);
int ops_write(op_ctx *c, const dafs_write_req *r, bool direct);

/* Once at the start of each thread that runs ops (ops_ext.c): its own umask
 * of 0, so new objects get exactly the mode the client asked for.  Aborts if
 * the thread cannot have a umask of its own. */
void ops_worker_thread_init(void);

/* ---- checks and fds, shared with the fast path -------------------------- */

/* Range check for offset + count within off_t. */
int ops_check_range(uint64_t offset, uint64_t count);
/* Direct-I/O segments against c->sess's limits: 1..max_segs, count <= max_io,
 * total length >= count (only c->sess is read). */
int ops_check_segs(const op_ctx *c, const dafs_seg *segs, unsigned nsegs, uint32_t count);

/* A regular file's fd for data I/O: an open state's (state), from the fd
 * cache (ent != NULL), or private to this request.  Released with
 * ops_data_close. */
typedef struct ops_data_fd {
    int fd;
    fdc_entry *ent;
    bool state;
    open_ref ref;
} ops_data_fd;
/* The fd of open state stateid (for fh, allowing need: OPENS_ACCESS_*, 0 = any). */
int ops_data_state(op_ctx *c, const dafs_fh *fh, dafs_stateid stateid, unsigned need,
                   ops_data_fd *d);
/* Through the fd cache, as the caller: kind FDC_READ (O_RDONLY) or FDC_WRITE (O_WRONLY). */
int ops_data_cached(op_ctx *c, const dafs_fh *fh, int kind, ops_data_fd *d);
/* Under stateid when it is not 0, else ops_data_cached. */
int ops_data_for(op_ctx *c, const dafs_fh *fh, dafs_stateid stateid, int kind, ops_data_fd *d);
void ops_data_close(op_ctx *c, ops_data_fd *d);

#endif
