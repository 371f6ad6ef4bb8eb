/*
 * fastpath.c — READ_INLINE, READ_DIRECT, GETATTR, LOOKUP and REMOVE on the network thread
 * (see fastpath.h for when and why).
 *
 * A slot is one registered region: FAST_IO_MAX bytes of data followed by a
 * max_response reply buffer.  Slots and their free list are
 * touched only by the network thread (completion callbacks run there too),
 * so they need no lock.  A slot keeps its session referenced until the reply
 * has completed.
 */
#include "fastpath.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "log.h"
#include "opctx.h"
#include "ops_lock.h"
#include "stats.h"

typedef struct fast_slot {
    dfab_op op;
    server *srv;
    session *sess;
    uint8_t *data;
    uint8_t *reply;
    size_t reply_len;
    dafs_reply rep;            /* kept to re-encode an error after a failed write */
    uint64_t t_recv;           /* the request's arrival and length, for stats */
    size_t req_len;
    struct fast_slot *next;    /* free list */
} fast_slot;

typedef struct fast_pool {
    uint8_t *mem;
    dfab_mr *mr;
    fast_slot *slots;
    fast_slot *free;
    unsigned busy;
    bool reads_off;            /* RWF_NOWAIT unsupported here */
} fast_pool;

static fast_pool pool;

int fastpath_start(server *srv, const char **why)
{
    size_t stride = FAST_IO_MAX + srv->cfg.max_response;
    size_t bytes = (size_t)FAST_SLOTS * stride;
    pool.mem = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
    pool.slots = calloc(FAST_SLOTS, sizeof(fast_slot));
    if (!pool.mem || !pool.slots) {
        *why = "out of memory for fast-path slots";
        return -1;
    }
    if (dfab_mr_reg(srv->fabric, pool.mem, bytes, DFAB_ACCESS_LOCAL, &pool.mr) != 0) {
        *why = "cannot register fast-path slots";
        return -1;
    }
    for (unsigned i = 0; i < FAST_SLOTS; i++) {
        fast_slot *f = &pool.slots[i];
        f->srv = srv;
        f->data = pool.mem + (size_t)i * stride;
        f->reply = f->data + FAST_IO_MAX;
        f->next = pool.free;
        pool.free = f;
    }
    return 0;
}

unsigned fastpath_busy(const server *srv)
{
    (void)srv;
    return pool.busy;
}

void fastpath_close_mr(server *srv)
{
    (void)srv;
    dfab_mr_close(pool.mr);
    pool.mr = NULL;
}

void fastpath_free(server *srv)
{
    (void)srv;
    free(pool.mem);
    free(pool.slots);
    memset(&pool, 0, sizeof(pool));
}

/* ---- slot life cycle --------------------------------------------------- */

static void slot_release(fast_slot *f)
{
    session_release(&f->srv->sessions, f->sess);
    f->sess = NULL;
    f->next = pool.free;
    pool.free = f;
    pool.busy--;
}

static void reply_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)len;
    (void)src;
    fast_slot *f = (fast_slot *)((char *)op - offsetof(fast_slot, op));
    if (status != 0)
        log_error("reply to session %016llx failed: %s", (unsigned long long)f->sess->id,
                  strerror(-status));
    slot_release(f);
}

/* Post the encoded reply (the transport retries a full send queue itself). */
static void send_reply(fast_slot *f)
{
    memset(&f->op, 0, sizeof(f->op));
    f->op.done = reply_done;
    int rc = dfab_send(f->srv->fabric, f->sess->addr, f->reply, f->reply_len, pool.mr, &f->op);
    if (rc != 0) {
        log_error("reply to session %016llx failed: %s", (unsigned long long)f->sess->id,
                  strerror(-rc));
        slot_release(f);
    }
}

/* Encode f->rep (status and credits filled here) and send it.  The request
 * counts as finished before the reply leaves, as on the worker path. */
static void finish(fast_slot *f, int status)
{
    server *srv = f->srv;
    f->rep.hdr.status = status;
    f->rep.hdr.credits = session_grant_for_reply(&srv->sessions, f->sess);
    int len = dafs_encode_reply(f->reply, f->sess->limits.max_response, &f->rep);
    if (len < 0) {
        f->rep.hdr.status = DAFS_ST_SERVERFAULT;
        len = dafs_encode_reply(f->reply, f->sess->limits.max_response, &f->rep);
    }
    session_request_done(&srv->sessions, f->sess);
    stats_reply(NULL, &f->rep, f->rep.hdr.status, f->req_len, len > 0 ? (size_t)len : 0, f->t_recv);
    if (len <= 0) {
        slot_release(f);
        return;
    }
    f->reply_len = (size_t)len;
    send_reply(f);
}

static void rma_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)len;
    (void)src;
    fast_slot *f = (fast_slot *)((char *)op - offsetof(fast_slot, op));
    if (status != 0)
        memset(&f->rep.u, 0, sizeof(f->rep.u));
    finish(f, status != 0 ? DAFS_ST_IO : DAFS_ST_OK);
}

/* ---- the operations ---------------------------------------------------- */

/* Read count bytes at off without blocking, plus one probe byte past them:
 * getting the probe byte proves the file goes on (not at EOF) without an
 * fstat, which cost ~0.35 us of a ~5 us 4 KiB read on shm.  0 with *got and
 * *eof, -EAGAIN when any of the range is not in memory, or another -errno.
 * When only the probe byte is not in memory, *eof comes from fstat. */
static int read_nowait(int fd, uint8_t *buf, size_t count, uint64_t off, size_t *got, bool *eof)
{
    uint8_t probe;
    size_t done = 0;
    while (done <= count) {
        struct iovec iov[2] = {{.iov_base = buf + done, .iov_len = count - done},
                               {.iov_base = &probe, .iov_len = 1}};
        int first = done == count; /* only the probe is left */
        ssize_t n = preadv2(fd, iov + first, 2 - first, (off_t)(off + done), RWF_NOWAIT);
        if (n < 0 && errno == EAGAIN && done == count)
            break; /* the range is read; the page after it is not cached */
        if (n < 0)
            return errno == EINTR ? -EAGAIN : -errno;
        if (n == 0) { /* end of file at off + done */
            *got = done;
            *eof = true;
            return 0;
        }
        done += (size_t)n;
    }
    *got = count;
    if (done > count) {
        *eof = false;
        return 0;
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    *eof = off + count >= (uint64_t)st.st_size;
    return 0;
}

/* Checks of op_read that, failing, leave the request to the worker (which
 * answers with the error). */
static bool read_acceptable(session *s, const dafs_request *req, bool direct)
{
    const dafs_read_req *r = &req->u.read;
    op_ctx c = {.sess = s};
    if (r->count > FAST_IO_MAX || ops_check_range(r->offset, r->count) != DAFS_ST_OK)
        return false;
    if (r->hints != DAFS_WIRE_HINT_NORMAL && r->hints != DAFS_WIRE_HINT_RANDOM)
        return false; /* the worker applies the hint (page-cache work, may block) */
    if (direct)
        return ops_check_segs(&c, r->segs, r->nsegs, r->count) == DAFS_ST_OK;
    return r->count <= s->limits.inline_max;
}

/* READ: true when answered (or in flight) from slot f. */
static bool fast_read(server *srv, fast_slot *f, const dafs_request *req, const op_cred *cred,
                      bool direct)
{
    const dafs_read_req *r = &req->u.read;
    if (pool.reads_off || locks_any(srv) || !read_acceptable(f->sess, req, direct))
        return false; /* locks: the worker's reads pass the lock gate (ops_lock.h) */
    /* under an open state: its fd; else a cached fd of the same identity */
    fdc_entry *e = NULL;
    open_ref ref;
    if (r->stateid != 0) {
        if (opens_get(&f->sess->opens, r->stateid, &r->fh, OPENS_ACCESS_READ, &ref) != DAFS_ST_OK)
            return false; /* the worker answers the error */
    } else {
        e = fdcache_get(&srv->fds, FDC_READ, &r->fh, cred);
        if (!e)
            return false;
        ref.fd = e->fd;
    }
    size_t got = 0;
    bool eof = false;
    int rc = read_nowait(ref.fd, f->data, r->count, r->offset, &got, &eof);
    if (e)
        fdcache_put(&srv->fds, e, false);
    else
        opens_put(&f->sess->opens, &ref); /* never closes: CLOSE waits for this */
    if (rc == -EOPNOTSUPP) {
        pool.reads_off = true;
        log_info("file system without RWF_NOWAIT: reads go to the worker pool");
    }
    if (rc < 0)
        return false; /* the worker retries it and reports any error */
    f->rep.u.read.count = (uint32_t)got;
    f->rep.u.read.eof = eof;
    if (!direct || got == 0) {
        if (!direct)
            f->rep.u.read.data = (dafs_bytes){.ptr = f->data, .len = (uint32_t)got};
        finish(f, DAFS_ST_OK);
        return true;
    }
    dfab_rseg rs[DAFS_SEG_MAX];
    for (unsigned i = 0; i < r->nsegs; i++)
        rs[i] = (dfab_rseg){.addr = r->segs[i].addr, .key = r->segs[i].key, .len = r->segs[i].len};
    memset(&f->op, 0, sizeof(f->op));
    f->op.done = rma_done;
    rc = dfab_rma_write(srv->fabric, f->sess->addr, f->data, got, pool.mr, rs, r->nsegs, true,
                        &f->op);
    return rc == 0; /* not posted: nothing happened yet, the worker redoes it */
}

static bool fast_getattr(server *srv, fast_slot *f, const dafs_request *req)
{
    fdc_entry *e = fdcache_get(&srv->fds, FDC_PATH, &req->u.fh.fh, NULL);
    if (!e)
        return false;
    struct stat st;
    int rc = fstat(e->fd, &st);
    fdcache_put(&srv->fds, e, false);
    if (rc != 0)
        return false;
    export_fill_attr(&st, &f->rep.u.attr.attr);
    finish(f, DAFS_ST_OK);
    return true;
}

/* LOOKUP in a directory whose O_PATH fd is cached, when the name is in the
 * dentry cache: the lookup runs as the caller (search permission is the
 * kernel's decision) and the thread returns to root before anything else. */
static bool fast_lookup(server *srv, fast_slot *f, const dafs_request *req, const op_cred *cred)
{
    const dafs_dirop_req *r = &req->u.dirop;
    if (r->name.len == 1 && r->name.ptr[0] == '.')
        return false; /* the worker answers "." with the directory itself */
    fdc_entry *e = fdcache_get(&srv->fds, FDC_PATH, &r->dir, NULL);
    if (!e)
        return false;
    int fd = -1, status = DAFS_ST_AGAIN;
    struct stat st;
    if (S_ISDIR(e->mode) && cred_enter(cred) == 0)
        status = export_lookup_cached(&srv->exp, e->fd, &r->name, &fd, &st);
    cred_return_to_root();
    fdcache_put(&srv->fds, e, false);
    if (status != DAFS_ST_OK && status != DAFS_ST_NOENT && status != DAFS_ST_ACCES)
        return false; /* would block, or an unusual error: the worker redoes it */
    if (status == DAFS_ST_OK) {
        export_fill_attr(&st, &f->rep.u.fh_attr.attr);
        status = export_make_fh(&srv->exp, fd, &f->rep.u.fh_attr.fh);
        close(fd);
    }
    finish(f, status);
    return true;
}

/* ---- REMOVE, run in full ---------------------------------------------- */

/* The op_io of an op run on this thread: no file data, no RMA (REMOVE
 * uses none; an op that would is never run here). */
static int nt_read(void *self, int fd, void *buf, size_t len, uint64_t off, size_t *got)
{
    (void)self, (void)fd, (void)buf, (void)len, (void)off;
    *got = 0;
    return -EOPNOTSUPP;
}
static int nt_write(void *self, int fd, const void *buf, size_t len, uint64_t off)
{
    (void)self, (void)fd, (void)buf, (void)len, (void)off;
    return -EOPNOTSUPP;
}
static int nt_sync(void *self, int fd, bool datasync)
{
    (void)self, (void)fd, (void)datasync;
    return -EOPNOTSUPP;
}
static int nt_rma(void *self, dfab_addr peer, size_t len, const dafs_seg *segs, unsigned nsegs)
{
    (void)self, (void)peer, (void)len, (void)segs, (void)nsegs;
    return -EOPNOTSUPP;
}
static int nt_rma_many(void *self, bool write, dfab_addr peer, const op_rma_part *parts,
                       unsigned n, int *status)
{
    (void)self, (void)write, (void)peer, (void)parts, (void)n, (void)status;
    return -EOPNOTSUPP;
}
static const op_io nt_io = {nt_read, nt_write, nt_sync, nt_rma, nt_rma, nt_rma_many};

/* REMOVE of an empty regular file or a symbolic link (no data blocks to
 * free: the unlink is a directory-entry and inode update), in a directory
 * whose O_PATH fd is cached, when the name resolves from the dentry cache
 * as the caller: the whole op (ops_execute, the same code a worker runs)
 * runs here, and the thread returns to root after it.  Anything else goes
 * to the worker pool. */
static bool fast_remove(server *srv, fast_slot *f, rx_slot *slot, const op_cred *cred)
{
    const dafs_dirop_req *r = &slot->req.u.dirop;
    if (srv->cfg.read_only)
        return false;
    fdc_entry *e = fdcache_get(&srv->fds, FDC_PATH, &r->dir, NULL);
    if (!e)
        return false;
    int fd = -1, status = DAFS_ST_AGAIN;
    struct stat st;
    if (S_ISDIR(e->mode) && cred_enter(cred) == 0)
        status = export_lookup_cached(&srv->exp, e->fd, &r->name, &fd, &st);
    cred_return_to_root();
    fdcache_put(&srv->fds, e, false);
    if (fd >= 0)
        close(fd);
    if (status != DAFS_ST_OK || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) || st.st_blocks != 0)
        return false; /* not cached, has data, or an error: the worker does it */
    op_ctx c;
    memset(&c, 0, sizeof(c));
    c.srv = srv;
    c.sess = f->sess;
    c.req = &slot->req;
    c.rep = f->rep;
    c.reply_buf = f->reply;
    c.reply_cap = f->sess->limits.max_response;
    c.bounce = f->data;
    c.io = &nt_io;
    status = ops_execute(&c);
    cred_return_to_root();
    f->rep = c.rep;
    finish(f, status);
    return true;
}

bool fastpath_try(server *srv, rx_slot *slot, session *s)
{
    const dafs_request *req = &slot->req;
    uint16_t op = req->hdr.opcode;
    bool removal = op == DAFS_OP_REMOVE;
    if (op != DAFS_OP_READ_INLINE && op != DAFS_OP_READ_DIRECT && op != DAFS_OP_GETATTR &&
        op != DAFS_OP_LOOKUP && !removal)
        return false;
    fast_slot *f = pool.free;
    if (!f || srv->draining)
        return false;
    op_cred cred;
    if (cred_lookup(&s->creds, &srv->cfg.policy, req->hdr.cred, &cred) != DAFS_ST_OK)
        return false;
    pool.free = f->next;
    pool.busy++;
    f->sess = s;
    f->t_recv = slot->t_recv;
    f->req_len = slot->len;
    memset(&f->rep, 0, sizeof(f->rep));
    reply_hdr_init(&f->rep.hdr, &req->hdr, s->id, 0, DAFS_ST_OK);
    bool done;
    if (op == DAFS_OP_GETATTR)
        done = fast_getattr(srv, f, req);
    else if (op == DAFS_OP_LOOKUP)
        done = fast_lookup(srv, f, req, &cred);
    else if (removal)
        done = fast_remove(srv, f, slot, &cred);
    else
        done = fast_read(srv, f, req, &cred, op == DAFS_OP_READ_DIRECT);
    cred_put(&cred);
    if (!done) {
        f->sess = NULL;
        f->next = pool.free;
        pool.free = f;
        pool.busy--;
    }
    return done;
}
