/*
 * file.c — open/close and the data path: pread, pwrite, fsync, fstat.
 *
 * A call is cut into chunks.  Chunks up to the negotiated inline limit travel
 * in the messages (READ_INLINE / WRITE_INLINE): for small I/O one message
 * each way beats a registration plus an RMA.  Larger calls go DIRECT in
 * chunks of up to max_io: the server RMA-writes into (READ) or RMA-reads from
 * (WRITE) the caller's buffer.  That buffer is
 *   - the caller's own registration when it lies inside a region from
 *     dafs_mem_register (true zero copy, nothing on the I/O path), or
 *   - registered for the duration of the call otherwise (one registration per
 *     call, covering every chunk).  Pre-registered bounce buffers would trade
 *     that registration for a memcpy, and lose at every size that goes
 *     direct: measured here, fi_mr_reg + fi_close costs 0.10-0.15 us on both
 *     tcp;ofi_rxm and shm whatever the length (neither pins memory), while a
 *     copy costs 0.16 us at 16 KiB, 0.6-1.0 us at 64 KiB, 2.7 us at 256 KiB
 *     and 22 us at 1 MiB (hot cache).  So there is no bounce pool and no
 *     registration cache (which would also have to notice freed and reused
 *     memory).  A pinning provider (verbs) would change this; revisit then.
 * Inline vs direct at 4 KiB (the server caps inline at 8 KiB today): a 4 KiB
 * read inline was 1.2-1.8x faster than the same read direct into a
 * registered buffer (tcp;ofi_rxm, QD1), so the client keeps proposing a large
 * inline limit and lets the server's cap decide.  Except for reads whose
 * inline reply would be longer than what the provider sends in one copy
 * (dfab_limits.eager_msg_max: shm's 4 KiB inject size; above it shm makes
 * the receiver fetch the message with process_vm_readv, ~1.5 us): those go
 * direct, because a small RMA write and a short reply stay within it (4 KiB
 * read QD1 on shm: ~6.5 -> ~4.5 us mean, same build).
 * Up to CLIENT_PIPELINE_DEPTH chunks of one call are in flight at once (never
 * more than the credit grant: the engine enforces it), and replies are taken
 * in order, so the byte count returned is always a contiguous prefix.  A
 * short read (EOF) or short write ends the call with what was done.
 *
 * Appends (dafs_append, dafs_h_append) are one request each, so each is
 * atomic on the server: APPEND_INLINE when the data fits a message,
 * APPEND_DIRECT (one RMA read of at most max_io bytes) otherwise; a longer
 * append is -EINVAL rather than a split that would not be atomic.  O_APPEND
 * itself is refused with -EINVAL: use dafs_append.
 *
 * Open state (protocol v2): dafs_open, dafs_h_open_file and dafs_h_open_fh
 * keep the stateid the server returns in the dafs_file, and every request on
 * that file (read, write, append, commit, ftruncate, close) carries it, so
 * the server uses the access granted at open (a 0444 file opened for
 * writing at creation stays writable, an unlinked file stays readable)
 * instead of checking the caller again.  The handle-level dafs_h_* calls
 * carry no stateid and keep the version-1 behaviour.
 *
 * dafs_open follows a final symlink like open(2) (O_NOFOLLOW: -ELOOP): the
 * OPEN is sent for the name; if the server answers ELOOP or with a symlink's
 * attributes, the target is read and the open retried there, resolved from
 * the link's directory (or the export root), at most CLIENT_SYMLINK_HOPS
 * times.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"

#define OPEN_IGNORED_FLAGS (O_CLOEXEC | O_LARGEFILE | O_NOCTTY | O_NOFOLLOW)

static int map_open_flags(int flags, uint32_t *out)
{
    uint32_t w;
    switch (flags & O_ACCMODE) {
    case O_RDONLY: w = DAFS_OPEN_RDONLY; break;
    case O_WRONLY: w = DAFS_OPEN_WRONLY; break;
    case O_RDWR: w = DAFS_OPEN_RDWR; break;
    default: return -EINVAL;
    }
    int rest = flags & ~(O_ACCMODE | OPEN_IGNORED_FLAGS);
    if (rest & O_CREAT)
        w |= DAFS_OPEN_CREAT;
    if (rest & O_EXCL)
        w |= DAFS_OPEN_EXCL;
    if (rest & O_TRUNC)
        w |= DAFS_OPEN_TRUNC;
    if ((rest & ~(O_CREAT | O_EXCL | O_TRUNC)) != 0)
        return -EINVAL; /* O_APPEND, O_DIRECTORY, O_NOFOLLOW, ...: not supported */
    *out = w;
    return 0;
}

/* OPEN name in dir.  Returns 1 (with *link filled) when name is a symlink
 * that OPEN did not follow, else 0 or a negative error. */
static int open_once(dafs_session *s, const dafs_fh *dir, const char *name, uint32_t wflags,
                     uint32_t mode, dafs_fh *fh, dafs_attr *attr, dafs_stateid *stateid,
                     dafs_fh *link)
{
    int rc = op_dirop(s, 0, DAFS_OP_OPEN, dir, name, wflags, mode, fh, attr, NULL, stateid);
    if (rc == 0 && S_ISLNK(attr->mode)) {
        (void)op_close(s, 0, fh, *stateid);
        *stateid = 0;
        *link = *fh;
        return 1;
    }
    if (rc != -ELOOP)
        return rc;
    /* ELOOP: a symlink refused by the server, or a real loop further on. */
    dafs_attr la;
    rc = op_lookup(s, 0, dir, name, link, &la);
    if (rc < 0)
        return rc;
    return S_ISLNK(la.mode) ? 1 : -ELOOP;
}

/* Open path, following symlinks (the final one too unless O_NOFOLLOW). */
static int open_path(dafs_session *s, const char *path, int flags, uint32_t wflags,
                     uint32_t mode, dafs_fh *fh, dafs_attr *attr, dafs_stateid *stateid)
{
    char name[DAFS_NAME_MAX + 1];
    char target[DAFS_PATH_MAX + 1];
    bool has_name;
    unsigned hops = 0;
    dafs_fh dir, link;
    int rc = path_resolve_parent_at(s, NULL, &hops, path, &dir, name, &has_name);
    for (;;) {
        if (rc < 0)
            return rc;
        if (!has_name)
            return -EISDIR;
        rc = open_once(s, &dir, name, wflags, mode, fh, attr, stateid, &link);
        if (rc <= 0)
            return rc;
        if ((flags & O_NOFOLLOW) || ++hops > CLIENT_SYMLINK_HOPS)
            return -ELOOP;
        size_t tlen;
        rc = op_readlink(s, 0, &link, target, sizeof target, &tlen);
        if (rc < 0)
            return rc;
        dafs_fh from = dir;
        rc = path_resolve_parent_at(s, &from, &hops, target, &dir, name, &has_name);
    }
}

int dafs_open(dafs_session *s, const char *path, int flags, mode_t mode, dafs_file **out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    uint32_t wflags;
    int rc = map_open_flags(flags, &wflags);
    if (rc < 0)
        return rc;
    dafs_fh fh;
    dafs_attr attr;
    dafs_stateid stateid = 0;
    rc = open_path(s, path, flags, wflags, (uint32_t)mode & 07777u, &fh, &attr, &stateid);
    if (rc < 0)
        return rc;
    if (S_ISDIR(attr.mode)) { /* directories are read with dafs_opendir */
        (void)op_close(s, 0, &fh, stateid);
        return -EISDIR;
    }
    return file_new(s, atomic_load(&s->default_cred), &fh, flags, stateid, out);
}

int file_new(dafs_session *s, uint32_t cred, const dafs_fh *fh, int flags,
             dafs_stateid stateid, dafs_file **out)
{
    dafs_file *f = calloc(1, sizeof *f);
    if (f == NULL) {
        (void)op_close(s, cred, fh, stateid);
        return -ENOMEM;
    }
    f->s = s;
    f->fh = *fh;
    f->flags = flags;
    f->cred = cred;
    f->stateid = stateid;
    *out = f;
    return 0;
}

int dafs_close(dafs_file *f)
{
    if (f == NULL)
        return -EINVAL;
    if (atomic_load(&f->aio_inflight) > 0)
        return -EBUSY; /* asynchronous I/O still uses it: reap first (dafs_submit(3)) */
    int rc = op_close(f->s, f->cred, &f->fh, f->stateid);
    free(f);
    return rc;
}

/* ---- the chunked data path ---- */

typedef struct io_chunk {
    client_slot *slot;
    size_t pos; /* offset in the caller's buffer */
    size_t len;
} io_chunk;

typedef struct io_call {
    dafs_session *s;
    const dafs_fh *fh;
    dafs_stateid stateid;
    uint32_t cred;
    uint32_t hint;     /* DAFS_WIRE_HINT_* in every request */
    bool write;
    uint8_t *buf;
    size_t len;
    uint64_t offset;
    dfab_mr *mr;       /* NULL: inline chunks only */
    bool own_mr;       /* registered for this call */
    size_t chunk_max;
    size_t inline_limit; /* chunks up to this size travel inline */
    io_chunk queue[CLIENT_PIPELINE_DEPTH];
    unsigned head, count;
    size_t next;       /* next byte of buf to submit */
    size_t done;       /* contiguous bytes completed */
    bool stop;         /* short transfer or error: submit no more */
    int err;
} io_call;

static void build_request(io_call *io, const io_chunk *c, dafs_request *req)
{
    bool direct = c->len > io->inline_limit;
    memset(req, 0, sizeof *req);
    req->hdr.cred = io->cred;
    dafs_seg seg = {0};
    if (direct) {
        seg.addr = io->mr->remote_addr + (uint64_t)(io->buf + c->pos - (uint8_t *)io->mr->base);
        seg.key = io->mr->key;
        seg.len = c->len;
    }
    if (io->write) {
        dafs_write_req *w = &req->u.write;
        req->hdr.opcode = direct ? DAFS_OP_WRITE_DIRECT : DAFS_OP_WRITE_INLINE;
        w->fh = *io->fh;
        w->stateid = io->stateid;
        w->offset = io->offset + c->pos;
        w->count = (uint32_t)c->len;
        w->stable = DAFS_UNSTABLE;
        w->hints = io->hint;
        if (direct) {
            w->nsegs = 1;
            w->segs[0] = seg;
        } else {
            w->data = (dafs_bytes){io->buf + c->pos, (uint32_t)c->len};
        }
    } else {
        dafs_read_req *r = &req->u.read;
        req->hdr.opcode = direct ? DAFS_OP_READ_DIRECT : DAFS_OP_READ_INLINE;
        r->fh = *io->fh;
        r->stateid = io->stateid;
        r->offset = io->offset + c->pos;
        r->count = (uint32_t)c->len;
        r->hints = io->hint;
        if (direct) {
            r->nsegs = 1;
            r->segs[0] = seg;
        }
    }
}

static void fail_io(io_call *io, int err)
{
    if (io->err == 0)
        io->err = err;
    io->stop = true;
}

/* Submit the next chunk.  Returns -EAGAIN when no credit is free right now. */
static int submit_chunk(io_call *io, bool blocking)
{
    io_chunk c = {.pos = io->next, .len = io->len - io->next};
    if (c.len > io->chunk_max)
        c.len = io->chunk_max;
    int rc = engine_acquire(io->s, blocking, &c.slot);
    if (rc == -EAGAIN)
        return rc;
    if (rc < 0) {
        fail_io(io, rc);
        return rc;
    }
    dafs_request req;
    build_request(io, &c, &req);
    rc = engine_send(c.slot, &req);
    if (rc < 0) {
        engine_release(c.slot);
        fail_io(io, rc);
        return rc;
    }
    io->queue[(io->head + io->count) % CLIENT_PIPELINE_DEPTH] = c;
    io->count++;
    io->next += c.len;
    return 0;
}

/* Check a reply's count and, for inline reads, copy the data out. */
static int take_reply(io_call *io, const io_chunk *c, const dafs_reply *rep, size_t *count)
{
    if (io->write) {
        *count = rep->u.write.count;
    } else {
        *count = rep->u.read.count;
        bool inline_read = rep->hdr.opcode == DAFS_OP_READ_INLINE;
        if (inline_read && rep->u.read.data.len != *count)
            return -DAFS_EPROTO;
        if (inline_read && *count <= c->len)
            memcpy(io->buf + c->pos, rep->u.read.data.ptr, *count);
    }
    return *count > c->len ? -DAFS_EPROTO : 0;
}

static void complete_oldest(io_call *io)
{
    io_chunk c = io->queue[io->head];
    io->head = (io->head + 1) % CLIENT_PIPELINE_DEPTH;
    io->count--;
    dafs_reply rep;
    size_t count = 0;
    int rc = engine_wait(c.slot, &rep);
    if (rc == 0)
        rc = take_reply(io, &c, &rep, &count);
    engine_release(c.slot);
    if (rc < 0) {
        fail_io(io, rc);
        return;
    }
    if (io->err != 0 || io->done != c.pos)
        return; /* an earlier chunk fell short: this one does not count */
    io->done += count;
    if (count < c.len)
        io->stop = true; /* EOF, or the server wrote less */
}

static void run_io(io_call *io)
{
    while ((io->next < io->len && !io->stop) || io->count > 0) {
        bool can_submit = io->next < io->len && !io->stop && io->count < CLIENT_PIPELINE_DEPTH;
        if (can_submit && submit_chunk(io, io->count == 0) != -EAGAIN)
            continue;
        if (io->count > 0)
            complete_oldest(io);
    }
}

/* The largest read that should travel inline: the negotiated limit, or less
 * when such a reply would not fit the provider's one-copy send size. */
size_t file_read_inline_limit(const dafs_session *s)
{
    size_t eager = dfab_get_limits(s->fab)->eager_msg_max;
    if (eager <= CLIENT_READ_REPLY_OVERHEAD || eager - CLIENT_READ_REPLY_OVERHEAD >= s->inline_max)
        return s->inline_max;
    return eager - CLIENT_READ_REPLY_OVERHEAD;
}

/* Pick the transfer mode and registration for a call. */
static void setup_io(io_call *io)
{
    dafs_session *s = io->s;
    io->chunk_max = s->inline_max;
    io->inline_limit = s->inline_max;
    size_t limit = io->write ? s->inline_max : file_read_inline_limit(s);
    if (io->len <= limit || s->max_io <= limit)
        return;
    io->mr = mem_find_region(s, io->buf, io->len);
    if (io->mr == NULL) {
        unsigned access = DFAB_ACCESS_LOCAL |
                          (io->write ? DFAB_ACCESS_REMOTE_READ : DFAB_ACCESS_REMOTE_WRITE);
        if (dfab_mr_reg(s->fab, io->buf, io->len, access, &io->mr) < 0) {
            io->mr = NULL; /* cannot register: inline chunks still work */
            return;
        }
        io->own_mr = true;
    }
    io->inline_limit = limit;
    io->chunk_max = s->max_io;
}

ssize_t file_io(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid stateid,
                bool write, void *buf, size_t len, uint64_t offset)
{
    return file_io_hint(s, cred, fh, stateid, write, buf, len, offset, DAFS_WIRE_HINT_NORMAL);
}

ssize_t file_io_hint(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid stateid,
                     bool write, void *buf, size_t len, uint64_t offset, uint32_t hint)
{
    if (hint > DAFS_WIRE_HINT_DONTNEED)
        return -EINVAL;
    if (buf == NULL && len != 0)
        return -EINVAL;
    if (offset > (uint64_t)INT64_MAX)
        return -EINVAL;
    if (len > (size_t)SSIZE_MAX)
        len = (size_t)SSIZE_MAX;
    if ((uint64_t)len > (uint64_t)INT64_MAX - offset)
        return -EFBIG;
    if (len == 0)
        return 0;
    io_call io = {.s = s, .fh = fh, .stateid = stateid, .cred = cred, .hint = hint,
                  .write = write, .buf = buf, .len = len, .offset = offset};
    setup_io(&io);
    if (io.chunk_max == 0)
        return -DAFS_EPROTO; /* the server allows neither inline nor direct I/O */
    run_io(&io);
    if (io.own_mr)
        dfab_mr_close(io.mr);
    if (io.done > 0 || io.err == 0)
        return (ssize_t)io.done;
    return io.err;
}

static ssize_t do_io(dafs_file *f, bool write, void *buf, size_t len, uint64_t offset)
{
    if (f == NULL)
        return -EINVAL;
    int acc = f->flags & O_ACCMODE;
    if ((write && acc == O_RDONLY) || (!write && acc == O_WRONLY))
        return -EBADF;
    return file_io(f->s, f->cred, &f->fh, f->stateid, write, buf, len, offset);
}

ssize_t dafs_pread(dafs_file *f, void *buf, size_t len, uint64_t offset)
{
    return do_io(f, false, buf, len, offset);
}

ssize_t dafs_pwrite(dafs_file *f, const void *buf, size_t len, uint64_t offset)
{
    /* The buffer is only read (RMA-read by the server, or copied inline). */
    return do_io(f, true, (void *)(uintptr_t)buf, len, offset);
}

/* ---- append: one request, so atomic ---- */

static void append_request(dafs_request *req, uint32_t cred, const dafs_fh *fh,
                           dafs_stateid stateid, const void *buf, size_t len, const dfab_mr *mr)
{
    memset(req, 0, sizeof *req);
    req->hdr.cred = cred;
    dafs_write_req *w = &req->u.write;
    w->fh = *fh;
    w->stateid = stateid;
    w->count = (uint32_t)len;
    w->stable = DAFS_UNSTABLE;
    if (mr == NULL) {
        req->hdr.opcode = DAFS_OP_APPEND_INLINE;
        w->data = (dafs_bytes){buf, (uint32_t)len};
        return;
    }
    req->hdr.opcode = DAFS_OP_APPEND_DIRECT;
    w->nsegs = 1;
    w->segs[0].addr = mr->remote_addr + (uint64_t)((const uint8_t *)buf - (uint8_t *)mr->base);
    w->segs[0].key = mr->key;
    w->segs[0].len = len;
}

ssize_t file_append(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid stateid,
                    const void *buf, size_t len, uint64_t *offset)
{
    if (buf == NULL && len != 0)
        return -EINVAL;
    bool direct = len > s->inline_max;
    if (len > UINT32_MAX || (direct && len > s->max_io))
        return -EINVAL; /* one request only: a split append would not be atomic */
    dfab_mr *mr = NULL;
    bool own_mr = false;
    if (direct) {
        mr = mem_find_region(s, buf, len);
        if (mr == NULL) {
            unsigned access = DFAB_ACCESS_LOCAL | DFAB_ACCESS_REMOTE_READ;
            if (dfab_mr_reg(s->fab, (void *)(uintptr_t)buf, len, access, &mr) < 0)
                return -ENOMEM;
            own_mr = true;
        }
    }
    dafs_request req;
    append_request(&req, cred, fh, stateid, buf, len, mr);
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (own_mr)
        dfab_mr_close(mr);
    if (rc < 0)
        return rc;
    uint32_t count = rep.u.write.count;
    uint64_t where = rep.u.write.offset;
    engine_release(slot);
    if (count > len)
        return -DAFS_EPROTO;
    if (offset != NULL)
        *offset = where;
    return (ssize_t)count;
}

ssize_t dafs_append(dafs_file *f, const void *buf, size_t len, uint64_t *offset)
{
    if (f == NULL)
        return -EINVAL;
    if ((f->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    return file_append(f->s, f->cred, &f->fh, f->stateid, buf, len, offset);
}

int dafs_ftruncate(dafs_file *f, uint64_t size)
{
    if (f == NULL || size > (uint64_t)INT64_MAX)
        return -EINVAL;
    if ((f->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF; /* like ftruncate(2) on a read-only descriptor (EINVAL there) */
    dafs_setattr_req sa = {.valid = DAFS_SET_SIZE, .size = size, .stateid = f->stateid};
    return op_setattr(f->s, f->cred, &f->fh, &sa, NULL);
}

int dafs_file_handle(dafs_file *f, dafs_handle *out)
{
    if (f == NULL || out == NULL)
        return -EINVAL;
    fh_to_handle(&f->fh, out);
    return 0;
}

static int commit(dafs_file *f, uint32_t stable)
{
    if (f == NULL)
        return -EINVAL;
    return op_commit(f->s, f->cred, &f->fh, stable, f->stateid);
}

int dafs_fsync(dafs_file *f)
{
    return commit(f, DAFS_FILE_SYNC);
}

int dafs_fdatasync(dafs_file *f)
{
    return commit(f, DAFS_DATA_SYNC);
}

int dafs_fstat(dafs_file *f, struct dafs_stat *st)
{
    if (f == NULL || st == NULL)
        return -EINVAL;
    dafs_attr attr;
    int rc = op_getattr(f->s, f->cred, &f->fh, &attr);
    if (rc < 0)
        return rc;
    attr_to_stat(&attr, st);
    return 0;
}
