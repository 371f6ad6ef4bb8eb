/*
 * ops.c — the file operations, one function each, run on worker threads.
 *
 * Open state (protocol v2, openstate.h): OPEN and OPEN_FH open the file as
 * the caller, keep that fd in the session's open-state table and return its
 * stateid; READ/WRITE/APPEND/COMMIT (and SETATTR's truncate) that name a
 * stateid do their I/O on that fd, with no new permission check, and CLOSE
 * releases it.  Requests with stateid 0 keep the version-1 behaviour: they
 * open the object by handle (open_by_handle_at, then a reopen as the caller)
 * or take an fd that the same identity opened recently from the fd cache
 * (fdcache.h, invalidated by REMOVE/RMDIR/RENAME/SETATTR/LINK), and do their
 * I/O through the executor's op_io (opctx.h: the worker's io_uring and
 * bounce buffer).  GETATTR fstats a cached O_PATH fd, and
 * for a handle that no longer opens (a file unlinked while open) the fd of
 * one of the session's open states for it.
 *
 * Identity: every op but the handle opens runs as the caller (see ops.h);
 * data opens go through ops_reopen, so read/write permission is the
 * kernel's decision for that user.  Non-regular files are never opened for
 * data (a FIFO would block a worker): READ/WRITE on a directory is ISDIR,
 * on anything else INVAL.
 *
 * APPEND writes at end of file atomically with respect to every other
 * dafs APPEND: under a mutex striped by inode number the worker takes the
 * size with fstat and writes at exactly that offset, which the reply names.
 *
 * Every count from the wire is bounded before use: inline transfers by the
 * session's inline_max, direct ones by max_io (the bounce buffer) and by the
 * total length of the client's segments; offset + count must not overflow
 * a signed 64-bit file offset.  Reads at or past end of file return count 0
 * and eof.
 */
#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "batch.h"
#include "ops_lock.h"

void reply_hdr_init(dafs_hdr *h, const dafs_hdr *req, uint64_t session_id, uint16_t credits,
                    int status)
{
    memset(h, 0, sizeof(*h));
    h->magic = DAFS_PROTO_MAGIC;
    h->version = DAFS_PROTO_VERSION;
    h->opcode = req->opcode;
    h->flags = DAFS_HDR_REPLY;
    h->credits = credits;
    h->session_id = session_id;
    h->xid = req->xid;
    h->status = status;
}

/* Read/write counts must keep offset + count within off_t. */
int ops_check_range(uint64_t offset, uint64_t count)
{
    if (offset > (uint64_t)INT64_MAX || count > (uint64_t)INT64_MAX - offset)
        return DAFS_ST_INVAL;
    return DAFS_ST_OK;
}

int ops_check_segs(const op_ctx *c, const dafs_seg *segs, unsigned nsegs, uint32_t count)
{
    if (nsegs == 0 || nsegs > DAFS_SEG_MAX || nsegs > c->sess->limits.max_segs)
        return DAFS_ST_INVAL;
    if (count > c->sess->limits.max_io)
        return DAFS_ST_INVAL;
    uint64_t total = 0;
    for (unsigned i = 0; i < nsegs; i++) {
        if (segs[i].len > UINT64_MAX - total)
            return DAFS_ST_INVAL;
        total += segs[i].len;
    }
    return total >= count ? DAFS_ST_OK : DAFS_ST_INVAL;
}

int ops_reply_fh_attr(op_ctx *c, int fd)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return export_errno_status(errno);
    export_fill_attr(&st, &c->rep.u.fh_attr.attr);
    return export_make_fh(&c->srv->exp, fd, &c->rep.u.fh_attr.fh);
}

int ops_fh_open(op_ctx *c, const dafs_fh *fh, int *fd, struct stat *st)
{
    cred_suspend();
    int status = export_open_fh(&c->srv->exp, fh, O_PATH, fd, st);
    cred_resume();
    return status;
}

/* A directory's O_PATH fd from the cache, duplicated for the caller. */
static bool open_dir_cached(op_ctx *c, const dafs_fh *fh, int *fd)
{
    fdc_entry *e = fdcache_get(&c->srv->fds, FDC_PATH, fh, NULL);
    if (!e)
        return false;
    *fd = S_ISDIR(e->mode) ? fcntl(e->fd, F_DUPFD_CLOEXEC, 0) : -1;
    fdcache_put(&c->srv->fds, e, true);
    return *fd >= 0;
}

/* Offer a duplicate of O_PATH fd (fh's object, opened at generation gen)
 * to the fd cache; the caller keeps fd. */
static void cache_path_fd(op_ctx *c, const dafs_fh *fh, int fd, const struct stat *st,
                          fdc_gen gen)
{
    if (st->st_nlink == 0)
        return; /* unlinked: a cached fd would keep it alive after its last close */
    fdc_entry *e;
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup >= 0 && fdcache_add(&c->srv->fds, FDC_PATH, fh, NULL, dup, st->st_mode, st->st_ino,
                                gen, &e))
        fdcache_put(&c->srv->fds, e, true);
    else if (dup >= 0)
        close(dup);
}

int ops_open_dir(op_ctx *c, const dafs_fh *fh, int *fd)
{
    if (open_dir_cached(c, fh, fd))
        return DAFS_ST_OK;
    struct stat st;
    fdc_gen gen = fdcache_gen(&c->srv->fds);
    int status = ops_fh_open(c, fh, fd, &st);
    if (status == DAFS_ST_OK && S_ISDIR(st.st_mode))
        cache_path_fd(c, fh, *fd, &st, gen);
    if (status == DAFS_ST_OK && !S_ISDIR(st.st_mode)) {
        close(*fd);
        *fd = -1;
        status = DAFS_ST_NOTDIR;
    }
    return status;
}

void ops_proc_path(int fd, char out[64])
{
    snprintf(out, 64, "/proc/self/fd/%d", fd);
}

int ops_reopen(int pathfd, int flags, int *fd)
{
    char path[64];
    ops_proc_path(pathfd, path);
    *fd = open(path, flags | O_CLOEXEC | O_NOCTTY);
    return *fd < 0 ? export_errno_status(errno) : DAFS_ST_OK;
}

void ops_cname(const dafs_bytes *name, char out[DAFS_NAME_MAX + 1])
{
    size_t n = name->len > DAFS_NAME_MAX ? DAFS_NAME_MAX : name->len;
    memcpy(out, name->ptr, n);
    out[n] = '\0';
}

/* Open a regular file by handle for data I/O, as the caller. */
static int open_data(op_ctx *c, const dafs_fh *fh, int oflags, int *fd, struct stat *st)
{
    int pfd;
    int status = ops_fh_open(c, fh, &pfd, st);
    if (status != DAFS_ST_OK)
        return status;
    if (!S_ISREG(st->st_mode))
        status = S_ISDIR(st->st_mode) ? DAFS_ST_ISDIR : DAFS_ST_INVAL;
    else
        status = ops_reopen(pfd, oflags | O_NONBLOCK, fd);
    close(pfd);
    return status;
}

/* The fd of open state stateid (for fh, allowing need). */
int ops_data_state(op_ctx *c, const dafs_fh *fh, dafs_stateid stateid, unsigned need,
                   ops_data_fd *d)
{
    d->ent = NULL;
    d->state = false;
    int status = opens_get(&c->sess->opens, stateid, fh, need, &d->ref);
    if (status != DAFS_ST_OK)
        return status;
    d->state = true;
    d->fd = d->ref.fd;
    return DAFS_ST_OK;
}

/* open_data through the fd cache: kind FDC_READ (O_RDONLY) or FDC_WRITE
 * (O_WRONLY), for exactly the caller's identity. */
int ops_data_cached(op_ctx *c, const dafs_fh *fh, int kind, ops_data_fd *d)
{
    fdcache *fc = &c->srv->fds;
    d->state = false;
    d->ent = fdcache_get(fc, kind, fh, &c->cred);
    if (d->ent) {
        d->fd = d->ent->fd;
        return DAFS_ST_OK;
    }
    fdc_gen gen = fdcache_gen(fc);
    struct stat st;
    int status = open_data(c, fh, kind == FDC_READ ? O_RDONLY : O_WRONLY, &d->fd, &st);
    if (status == DAFS_ST_OK)
        (void)fdcache_add(fc, kind, fh, &c->cred, d->fd, st.st_mode, st.st_ino, gen, &d->ent);
    return status;
}

/* Under stateid when it is not 0, else through the fd cache as the caller. */
int ops_data_for(op_ctx *c, const dafs_fh *fh, dafs_stateid stateid, int kind, ops_data_fd *d)
{
    if (stateid != 0)
        return ops_data_state(c, fh, stateid,
                               kind == FDC_READ ? OPENS_ACCESS_READ : OPENS_ACCESS_WRITE, d);
    return ops_data_cached(c, fh, kind, d);
}

void ops_data_close(op_ctx *c, ops_data_fd *d)
{
    if (d->state)
        opens_put(&c->sess->opens, &d->ref);
    else if (d->ent)
        fdcache_put(&c->srv->fds, d->ent, true);
    else
        close(d->fd);
    d->fd = -1;
    d->ent = NULL;
    d->state = false;
}

static int op_getroot(op_ctx *c)
{
    return ops_reply_fh_attr(c, c->srv->exp.root_fd);
}

static int reply_attr(op_ctx *c, const struct stat *st)
{
    export_fill_attr(st, &c->rep.u.attr.attr);
    return DAFS_ST_OK;
}

static int op_getattr(op_ctx *c)
{
    const dafs_fh *fh = &c->req->u.fh.fh;
    fdcache *fc = &c->srv->fds;
    struct stat st;
    fdc_entry *e = fdcache_get(fc, FDC_PATH, fh, NULL);
    if (e) {
        int rc = fstat(e->fd, &st);
        int err = errno;
        fdcache_put(fc, e, true);
        if (rc != 0)
            return export_errno_status(err);
    } else {
        int fd;
        fdc_gen gen = fdcache_gen(fc);
        int status = ops_fh_open(c, fh, &fd, &st);
        if (status != DAFS_ST_OK) /* unlinked, but perhaps open in this session */
            return opens_fstat_fh(&c->sess->opens, fh, &st) == DAFS_ST_OK
                       ? reply_attr(c, &st)
                       : status;
        cache_path_fd(c, fh, fd, &st, gen);
        close(fd);
    }
    export_fill_attr(&st, &c->rep.u.attr.attr);
    return DAFS_ST_OK;
}

/* CLOSE: release the open state; without one, only check the handle (v1). */
static int op_close(op_ctx *c)
{
    const dafs_close_req *r = &c->req->u.close;
    if (r->stateid != 0) {
        int status = opens_close(&c->sess->opens, r->stateid, &r->fh);
        if (status == DAFS_ST_OK)
            locks_release_open(c->srv, c->sess->id, r->stateid);
        return status;
    }
    int fd;
    struct stat st;
    int status = ops_fh_open(c, &r->fh, &fd, &st);
    if (status == DAFS_ST_OK)
        close(fd);
    return status;
}

static int op_lookup(op_ctx *c)
{
    const dafs_dirop_req *r = &c->req->u.dirop;
    int dirfd, fd;
    int status = ops_open_dir(c, &r->dir, &dirfd);
    if (status != DAFS_ST_OK)
        return status;
    if (r->name.len == 1 && r->name.ptr[0] == '.') { /* "." is the directory itself */
        status = ops_reply_fh_attr(c, dirfd);
        close(dirfd);
        return status;
    }
    status = export_openat(&c->srv->exp, dirfd, &r->name, O_PATH, 0, &fd);
    close(dirfd);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_reply_fh_attr(c, fd);
    close(fd);
    return status;
}

static int open_flags_from_wire(uint32_t w, int *oflags)
{
    if ((w & ~DAFS_OPEN_ALL) != 0)
        return DAFS_ST_INVAL;
    switch (w & DAFS_OPEN_ACCMODE) {
    case DAFS_OPEN_RDONLY: *oflags = O_RDONLY; break;
    case DAFS_OPEN_WRONLY: *oflags = O_WRONLY; break;
    case DAFS_OPEN_RDWR: *oflags = O_RDWR; break;
    default: return DAFS_ST_INVAL;
    }
    if (w & DAFS_OPEN_CREAT)
        *oflags |= O_CREAT;
    if (w & DAFS_OPEN_EXCL)
        *oflags |= O_EXCL;
    if (w & DAFS_OPEN_TRUNC)
        *oflags |= O_TRUNC;
    if (w & DAFS_OPEN_DIRECTORY)
        *oflags |= O_DIRECTORY;
    return DAFS_ST_OK;
}

/*
 * O_CREAT without O_EXCL: try an exclusive create first so that we know
 * whether this call created the file, and fall back to opening an existing
 * one (a few rounds, in case of a concurrent unlink).
 */
static int open_maybe_create(op_ctx *c, int dirfd, int oflags, unsigned mode, int *fd)
{
    const dafs_bytes *name = &c->req->u.dirop.name;
    const dafs_export *e = &c->srv->exp;
    if (!(oflags & O_CREAT) || (oflags & O_EXCL)) {
        int status = export_openat(e, dirfd, name, oflags | O_NONBLOCK, mode, fd);
        c->rep.u.fh_attr.created = status == DAFS_ST_OK && (oflags & O_CREAT);
        return status;
    }
    for (int round = 0; round < 4; round++) {
        int status = export_openat(e, dirfd, name, oflags | O_EXCL | O_NONBLOCK, mode, fd);
        if (status != DAFS_ST_EXIST) {
            c->rep.u.fh_attr.created = status == DAFS_ST_OK;
            return status;
        }
        status = export_openat(e, dirfd, name, (oflags & ~O_CREAT) | O_NONBLOCK, 0, fd);
        if (status != DAFS_ST_NOENT)
            return status;
    }
    return DAFS_ST_AGAIN;
}

static unsigned access_of(int oflags)
{
    switch (oflags & O_ACCMODE) {
    case O_WRONLY: return OPENS_ACCESS_WRITE;
    case O_RDWR: return OPENS_ACCESS_READ | OPENS_ACCESS_WRITE;
    default: return OPENS_ACCESS_READ;
    }
}

/*
 * Reply fh + attr of fd, an open of the object made as the caller, and keep
 * fd as the request's open state when it is a regular file (stateid 0 for
 * anything else: no data I/O happens on those; and when !keep, for an OPEN
 * with DAFS_OPEN_NOSTATE).  Consumes fd.
 */
static int reply_open_state(op_ctx *c, int fd, int oflags, bool keep)
{
    struct stat st;
    int status = fstat(fd, &st) == 0 ? DAFS_ST_OK : export_errno_status(errno);
    if (status == DAFS_ST_OK) {
        export_fill_attr(&st, &c->rep.u.fh_attr.attr);
        status = export_make_fh(&c->srv->exp, fd, &c->rep.u.fh_attr.fh);
    }
    c->rep.u.fh_attr.stateid = 0;
    if (status == DAFS_ST_OK && S_ISREG(st.st_mode) && keep) {
        status = opens_add(&c->sess->opens, fd, access_of(oflags), &c->rep.u.fh_attr.fh,
                           &c->rep.u.fh_attr.stateid);
        if (status == DAFS_ST_OK)
            return DAFS_ST_OK; /* the state owns fd now */
    }
    close(fd);
    return status;
}

static int op_open(op_ctx *c)
{
    const dafs_dirop_req *r = &c->req->u.dirop;
    int oflags, dirfd, fd;
    int status = open_flags_from_wire(r->flags, &oflags);
    if (status != DAFS_ST_OK)
        return status;
    status = export_check_name(&r->name);
    if (status != DAFS_ST_OK)
        return status;
    bool keep = !(r->flags & DAFS_OPEN_NOSTATE);
    if (keep && opens_count(&c->sess->opens) >= c->sess->opens.limit)
        return DAFS_ST_MFILE; /* before creating anything */
    status = ops_open_dir(c, &r->dir, &dirfd);
    if (status != DAFS_ST_OK)
        return status;
    status = open_maybe_create(c, dirfd, oflags, r->mode, &fd);
    close(dirfd);
    if (status != DAFS_ST_OK)
        return status;
    uint8_t created = c->rep.u.fh_attr.created;
    status = reply_open_state(c, fd, oflags, keep);
    c->rep.u.fh_attr.created = created;
    return status;
}

/*
 * OPEN_FH: open an existing regular file by handle, as the caller (the
 * kernel checks access, and TRUNC truncates as part of the open), and keep
 * it as an open state.
 */
static int op_open_fh(op_ctx *c)
{
    const dafs_open_fh_req *r = &c->req->u.open_fh;
    int oflags;
    if ((r->flags & ~DAFS_OPEN_FH_ALL) != 0)
        return DAFS_ST_INVAL;
    int status = open_flags_from_wire(r->flags, &oflags);
    if (status != DAFS_ST_OK)
        return status;
    if (opens_count(&c->sess->opens) >= c->sess->opens.limit)
        return DAFS_ST_MFILE;
    int fd;
    struct stat st;
    status = open_data(c, &r->fh, oflags, &fd, &st);
    if (status != DAFS_ST_OK)
        return status;
    return reply_open_state(c, fd, oflags, true);
}

static int op_mkdir(op_ctx *c)
{
    const dafs_dirop_req *r = &c->req->u.dirop;
    int dirfd, fd;
    int status = export_check_name(&r->name);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_open_dir(c, &r->dir, &dirfd);
    if (status != DAFS_ST_OK)
        return status;
    char cname[DAFS_NAME_MAX + 1];
    ops_cname(&r->name, cname);
    if (mkdirat(dirfd, cname, r->mode & 07777) != 0) {
        status = export_errno_status(errno);
        close(dirfd);
        return status;
    }
    status = export_openat(&c->srv->exp, dirfd, &r->name, O_PATH | O_DIRECTORY, 0, &fd);
    close(dirfd);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_reply_fh_attr(c, fd);
    close(fd);
    return status;
}

static int unlink_name(op_ctx *c, int atflags)
{
    const dafs_dirop_req *r = &c->req->u.dirop;
    int dirfd;
    int status = export_check_name(&r->name);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_open_dir(c, &r->dir, &dirfd);
    if (status != DAFS_ST_OK)
        return status;
    char cname[DAFS_NAME_MAX + 1];
    ops_cname(&r->name, cname);
    if (unlinkat(dirfd, cname, atflags) != 0)
        status = export_errno_status(errno);
    close(dirfd);
    return status;
}

static int op_remove(op_ctx *c) { return unlink_name(c, 0); }
static int op_rmdir(op_ctx *c) { return unlink_name(c, AT_REMOVEDIR); }

/* READ_INLINE and READ_DIRECT (opctx.h). */
int ops_read(op_ctx *c, const dafs_read_req *r, bool direct)
{
    int status = ops_check_range(r->offset, r->count);
    if (status == DAFS_ST_OK && direct)
        status = ops_check_segs(c, r->segs, r->nsegs, r->count);
    if (status == DAFS_ST_OK && !direct && r->count > c->sess->limits.inline_max)
        status = DAFS_ST_INVAL;
    if (status != DAFS_ST_OK)
        return status;
    locks_io lio;
    status = locks_io_begin(c->srv, c->sess->id, &r->fh, LOCKS_IO_READ, r->offset, r->count,
                            &lio);
    if (status != DAFS_ST_OK)
        return status;
    ops_data_fd d;
    status = ops_data_for(c, &r->fh, r->stateid, FDC_READ, &d);
    if (status != DAFS_ST_OK) {
        locks_io_end(c->srv, &lio);
        return status;
    }
    size_t got = 0;
    struct stat st;
    memset(&st, 0, sizeof(st));
    int rc = opctx_file_read(c, d.fd, c->bounce, r->count, r->offset, &got);
    if (rc == 0 && got == r->count && fstat(d.fd, &st) != 0)
        rc = -errno;
    if (rc == 0 && r->hints != DAFS_WIRE_HINT_NORMAL)
        ops_hint_after_io(d.fd, r->hints, true, r->offset, got);
    ops_data_close(c, &d);
    locks_io_end(c->srv, &lio);
    if (rc < 0)
        return export_errno_status(-rc);
    if (direct && got > 0) {
        rc = opctx_rma_write(c, got, r->segs, r->nsegs);
        if (rc < 0)
            return DAFS_ST_IO;
    }
    c->rep.u.read.count = (uint32_t)got;
    c->rep.u.read.eof = got < r->count || r->offset + got >= (uint64_t)st.st_size;
    if (!direct)
        c->rep.u.read.data = (dafs_bytes){.ptr = c->bounce, .len = (uint32_t)got};
    return DAFS_ST_OK;
}

/* Stable means the data and, through durable.h, every name changed on the
 * export before it (the file's own directory entry included). */
int ops_sync_as_asked(op_ctx *c, int fd, uint32_t stable, uint32_t *committed)
{
    int rc = 0;
    if (stable == DAFS_DATA_SYNC)
        rc = opctx_file_sync(c, fd, true);
    else if (stable == DAFS_FILE_SYNC)
        rc = opctx_file_sync(c, fd, false);
    if (rc == 0 && stable != DAFS_UNSTABLE) {
        cred_suspend();
        rc = durable_flush(&c->srv->durable, &c->srv->exp);
        cred_resume();
    }
    if (rc < 0)
        return export_errno_status(-rc);
    *committed = stable;
    return DAFS_ST_OK;
}

/* WRITE_INLINE and WRITE_DIRECT (opctx.h). */
int ops_write(op_ctx *c, const dafs_write_req *r, bool direct)
{
    int status = ops_check_range(r->offset, r->count);
    if (status == DAFS_ST_OK && r->stable > DAFS_FILE_SYNC)
        status = DAFS_ST_INVAL;
    if (status == DAFS_ST_OK && direct)
        status = ops_check_segs(c, r->segs, r->nsegs, r->count);
    if (status == DAFS_ST_OK && !direct &&
        (r->count > c->sess->limits.inline_max || r->data.len != r->count))
        status = DAFS_ST_INVAL;
    if (status != DAFS_ST_OK)
        return status;
    ops_data_fd d;
    status = ops_data_for(c, &r->fh, r->stateid, FDC_WRITE, &d);
    if (status != DAFS_ST_OK)
        return status;
    int fd = d.fd;
    const uint8_t *data = r->data.ptr;
    int rc = 0;
    if (direct && r->count > 0) {
        rc = opctx_rma_read(c, r->count, r->segs, r->nsegs);
        data = c->bounce;
        if (rc < 0)
            status = DAFS_ST_IO;
    }
    locks_io lio = {.counted = false};
    if (status == DAFS_ST_OK && r->count > 0) /* after the RMA: the gate holds rollbacks */
        status = locks_io_begin(c->srv, c->sess->id, &r->fh, LOCKS_IO_WRITE, r->offset,
                                r->count, &lio);
    if (status == DAFS_ST_OK && r->count > 0) {
        rc = opctx_file_write(c, fd, data, r->count, r->offset);
        if (rc < 0)
            status = export_errno_status(-rc);
    }
    locks_io_end(c->srv, &lio);
    if (status == DAFS_ST_OK)
        status = ops_sync_as_asked(c, fd, r->stable, &c->rep.u.write.committed);
    if (status == DAFS_ST_OK && r->hints != DAFS_WIRE_HINT_NORMAL)
        ops_hint_after_io(fd, r->hints, false, r->offset, r->count);
    ops_data_close(c, &d);
    c->rep.u.write.count = r->count;
    c->rep.u.write.verifier = c->srv->instance;
    return status;
}

static int op_commit(op_ctx *c)
{
    const dafs_commit_req *r = &c->req->u.commit;
    if (r->stable != DAFS_DATA_SYNC && r->stable != DAFS_FILE_SYNC)
        return DAFS_ST_INVAL;
    uint32_t committed;
    if (r->stateid != 0) { /* any open state may be synced, whatever its access */
        ops_data_fd d;
        int status = ops_data_state(c, &r->fh, r->stateid, 0, &d);
        if (status == DAFS_ST_OK)
            status = ops_sync_as_asked(c, d.fd, r->stable, &committed);
        if (d.state)
            ops_data_close(c, &d);
        c->rep.u.commit.verifier = c->srv->instance;
        return status;
    }
    int fd;
    struct stat st;
    cred_suspend(); /* durability is not an access: any caller may commit */
    int status = open_data(c, &r->fh, O_RDONLY, &fd, &st);
    if (status == DAFS_ST_ISDIR) /* a directory's entries (fsync(2) of a directory) */
        status = export_open_fh(&c->srv->exp, &r->fh, O_RDONLY | O_DIRECTORY, &fd, &st);
    cred_resume();
    if (status != DAFS_ST_OK)
        return status;
    status = ops_sync_as_asked(c, fd, r->stable, &committed);
    close(fd);
    c->rep.u.commit.verifier = c->srv->instance;
    return status;
}

static int op_statfs(op_ctx *c)
{
    int fd;
    struct stat st;
    int status = ops_fh_open(c, &c->req->u.fh.fh, &fd, &st);
    if (status != DAFS_ST_OK)
        return status;
    struct statvfs vfs;
    int rc = fstatvfs(fd, &vfs);
    int err = errno;
    close(fd);
    if (rc != 0)
        return export_errno_status(err);
    dafs_statfs_rep *o = &c->rep.u.statfs;
    o->bsize = vfs.f_bsize;
    o->frsize = vfs.f_frsize;
    o->blocks = vfs.f_blocks;
    o->bfree = vfs.f_bfree;
    o->bavail = vfs.f_bavail;
    o->files = vfs.f_files;
    o->ffree = vfs.f_ffree;
    o->namemax = (uint32_t)vfs.f_namemax;
    return DAFS_ST_OK;
}

/* ---- READDIR ---------------------------------------------------------- */

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static uint32_t dtype_to_mode(unsigned char t)
{
    switch (t) {
    case DT_REG: return S_IFREG;
    case DT_DIR: return S_IFDIR;
    case DT_LNK: return S_IFLNK;
    case DT_CHR: return S_IFCHR;
    case DT_BLK: return S_IFBLK;
    case DT_FIFO: return S_IFIFO;
    case DT_SOCK: return S_IFSOCK;
    default: return 0;
    }
}

static bool is_dot_or_dotdot(const char *n)
{
    return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

/* Add the entries of one getdents64 batch.  Returns 1 if the reply is full,
 * 0 to continue. */
static int readdir_add_batch(dafs_readdir_enc *e, const uint8_t *buf, long n)
{
    for (long pos = 0; pos + (long)sizeof(struct linux_dirent64) <= n;) {
        const struct linux_dirent64 *d = (const struct linux_dirent64 *)(buf + pos);
        if (d->d_reclen == 0 || pos + d->d_reclen > n)
            break;
        pos += d->d_reclen;
        if (is_dot_or_dotdot(d->d_name))
            continue;
        dafs_dirent_wire ent = {
            .fileid = d->d_ino,
            .cookie = (uint64_t)d->d_off,
            .type = dtype_to_mode(d->d_type),
            .name = {.ptr = (const uint8_t *)d->d_name, .len = (uint32_t)strlen(d->d_name)},
        };
        if (dafs_readdir_enc_add(e, &ent) != 0)
            return 1;
    }
    return 0;
}

static int op_readdir(op_ctx *c)
{
    const dafs_readdir_req *r = &c->req->u.readdir;
    if (r->cookie > (uint64_t)INT64_MAX)
        return DAFS_ST_INVAL;
    int pfd, fd;
    int status = ops_open_dir(c, &r->dir, &pfd);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_reopen(pfd, O_RDONLY | O_DIRECTORY, &fd);
    close(pfd);
    if (status != DAFS_ST_OK)
        return status;
    if (lseek(fd, (off_t)r->cookie, SEEK_SET) < 0) {
        status = export_errno_status(errno);
        close(fd);
        return status;
    }
    size_t cap = (size_t)DAFS_HDR_SIZE + r->maxcount;
    if (cap > c->reply_cap)
        cap = c->reply_cap;
    dafs_readdir_enc e;
    if (dafs_readdir_enc_begin(&e, c->reply_buf, cap, &c->rep.hdr) != 0) {
        close(fd);
        return DAFS_ST_INVAL;
    }
    /* 8-byte alignment for struct linux_dirent64 */
    uint64_t space[2048];
    uint8_t *buf = (uint8_t *)space;
    bool eof = false, full = false;
    while (!eof && !full) {
        long n = getdents64(fd, buf, sizeof(space));
        if (n < 0) {
            status = export_errno_status(errno);
            break;
        }
        if (n == 0)
            eof = true;
        else
            full = readdir_add_batch(&e, buf, n) != 0;
    }
    close(fd);
    if (status != DAFS_ST_OK)
        return status;
    if (full && e.nentries == 0)
        return DAFS_ST_INVAL; /* maxcount too small for even one entry */
    int len = dafs_readdir_enc_finish(&e, eof);
    if (len < 0)
        return DAFS_ST_SERVERFAULT;
    c->encoded_len = len;
    return DAFS_ST_OK;
}

/* ---- APPEND ------------------------------------------------------------- */

#define APPEND_STRIPES 64
static pthread_mutex_t append_locks[APPEND_STRIPES] = {[0 ... APPEND_STRIPES - 1] =
                                                           PTHREAD_MUTEX_INITIALIZER};

/* Write count bytes at the current end of fd; *where gets the offset. */
static int append_at_eof(op_ctx *c, int fd, ino_t ino, const uint8_t *data, uint32_t count,
                         uint64_t *where)
{
    pthread_mutex_t *mu = &append_locks[ino % APPEND_STRIPES];
    struct stat st;
    int status = DAFS_ST_OK;
    pthread_mutex_lock(mu);
    if (fstat(fd, &st) != 0)
        status = export_errno_status(errno);
    else if (ops_check_range((uint64_t)st.st_size, count) != DAFS_ST_OK)
        status = DAFS_ST_FBIG;
    if (status == DAFS_ST_OK && count > 0) {
        int rc = opctx_file_write(c, fd, data, count, (uint64_t)st.st_size);
        if (rc < 0)
            status = export_errno_status(-rc);
    }
    pthread_mutex_unlock(mu);
    *where = (uint64_t)st.st_size;
    return status;
}

int ops_append(op_ctx *c, bool direct)
{
    const dafs_write_req *r = &c->req->u.write;
    int status = DAFS_ST_OK;
    if (r->offset != 0 || r->stable > DAFS_FILE_SYNC)
        status = DAFS_ST_INVAL;
    else if (direct)
        status = ops_check_segs(c, r->segs, r->nsegs, r->count);
    else if (r->count > c->sess->limits.inline_max || r->data.len != r->count)
        status = DAFS_ST_INVAL;
    if (status != DAFS_ST_OK)
        return status;
    int fd;
    struct stat st;
    ops_data_fd d = {.fd = -1};
    if (r->stateid != 0) {
        status = ops_data_state(c, &r->fh, r->stateid, OPENS_ACCESS_WRITE, &d);
        fd = d.fd;
        if (status == DAFS_ST_OK && fstat(fd, &st) != 0)
            status = export_errno_status(errno);
        if (status != DAFS_ST_OK && d.state)
            ops_data_close(c, &d);
    } else {
        status = open_data(c, &r->fh, O_WRONLY, &fd, &st);
    }
    if (status != DAFS_ST_OK)
        return status;
    const uint8_t *data = r->data.ptr;
    if (direct && r->count > 0) {
        if (opctx_rma_read(c, r->count, r->segs, r->nsegs) < 0)
            status = DAFS_ST_IO;
        data = c->bounce;
    }
    uint64_t where = 0;
    locks_io lio = {.counted = false};
    if (status == DAFS_ST_OK) /* the undo log cannot record an append: NOTSUP under one */
        status = locks_io_begin(c->srv, c->sess->id, &r->fh, LOCKS_IO_OTHER, 0, 0, &lio);
    if (status == DAFS_ST_OK)
        status = append_at_eof(c, fd, st.st_ino, data, r->count, &where);
    locks_io_end(c->srv, &lio);
    if (status == DAFS_ST_OK)
        status = ops_sync_as_asked(c, fd, r->stable, &c->rep.u.write.committed);
    if (d.state)
        ops_data_close(c, &d);
    else
        close(fd);
    c->rep.u.write.count = r->count;
    c->rep.u.write.offset = where;
    c->rep.u.write.verifier = c->srv->instance;
    return status;
}

/* ---- dispatch ----------------------------------------------------------- */

/* Requests a read-only export refuses with ROFS. */
static bool modifies(const dafs_request *req)
{
    switch (req->hdr.opcode) {
    case DAFS_OP_OPEN:
        return (req->u.dirop.flags & (DAFS_OPEN_ACCMODE | DAFS_OPEN_CREAT | DAFS_OPEN_TRUNC)) != 0;
    case DAFS_OP_OPEN_FH:
        return (req->u.open_fh.flags & (DAFS_OPEN_ACCMODE | DAFS_OPEN_TRUNC)) != 0;
    case DAFS_OP_WRITE_INLINE: case DAFS_OP_WRITE_DIRECT: case DAFS_OP_APPEND_INLINE:
    case DAFS_OP_APPEND_DIRECT: case DAFS_OP_REMOVE: case DAFS_OP_MKDIR: case DAFS_OP_RMDIR:
    case DAFS_OP_SETATTR: case DAFS_OP_RENAME: case DAFS_OP_LINK: case DAFS_OP_SYMLINK:
    case DAFS_OP_MKNOD: case DAFS_OP_FALLOCATE: case DAFS_OP_COPY_RANGE: case DAFS_OP_SETXATTR:
    case DAFS_OP_REMOVEXATTR:
        return true;
    default:
        return false;
    }
}

/* Requests after which a cached fd may no longer be what a fresh open by
 * handle, as that caller, would give (see fdcache.h). */
static bool invalidates_fds(uint16_t opcode)
{
    switch (opcode) {
    case DAFS_OP_RMDIR: case DAFS_OP_RENAME: case DAFS_OP_SETATTR: case DAFS_OP_LINK:
    case DAFS_OP_SETXATTR: case DAFS_OP_REMOVEXATTR: /* an ACL changes who may open */
        return true;
    default:
        return false;
    }
}

static int run_op(op_ctx *c)
{
    switch (c->req->hdr.opcode) {
    case DAFS_OP_GETROOT: return op_getroot(c);
    case DAFS_OP_LOOKUP: return op_lookup(c);
    case DAFS_OP_GETATTR: return op_getattr(c);
    case DAFS_OP_OPEN: return op_open(c);
    case DAFS_OP_OPEN_FH: return op_open_fh(c);
    case DAFS_OP_CLOSE: return op_close(c);
    case DAFS_OP_READ_INLINE: return ops_read(c, &c->req->u.read, false);
    case DAFS_OP_READ_DIRECT: return ops_read(c, &c->req->u.read, true);
    case DAFS_OP_WRITE_INLINE: return ops_write(c, &c->req->u.write, false);
    case DAFS_OP_WRITE_DIRECT: return ops_write(c, &c->req->u.write, true);
    case DAFS_OP_APPEND_INLINE: return ops_append(c, false);
    case DAFS_OP_APPEND_DIRECT: return ops_append(c, true);
    case DAFS_OP_COMMIT: return op_commit(c);
    case DAFS_OP_REMOVE: return op_remove(c);
    case DAFS_OP_MKDIR: return op_mkdir(c);
    case DAFS_OP_RMDIR: return op_rmdir(c);
    case DAFS_OP_READDIR: return op_readdir(c);
    case DAFS_OP_STATFS: return op_statfs(c);
    case DAFS_OP_BATCH_SUBMIT: case DAFS_OP_HURRY_UP: return batch_execute(c); /* batch.c */
    case DAFS_OP_LOCK: case DAFS_OP_LOCKT: case DAFS_OP_LOCKU: case DAFS_OP_LOCK_CANCEL:
    case DAFS_OP_LOCK_ABORT:
        return ops_lock(c);
    default: return ops_ns_execute(c);
    }
}

int ops_cred_enter(op_ctx *c, uint32_t cred)
{
    int status = cred_lookup(&c->sess->creds, &c->srv->cfg.policy, cred, &c->cred);
    if (status != DAFS_ST_OK)
        return status;
    if (cred_enter(&c->cred) != 0) {
        cred_leave();
        cred_put(&c->cred);
        return DAFS_ST_SERVERFAULT;
    }
    return DAFS_ST_OK;
}

void ops_cred_leave(op_ctx *c)
{
    cred_leave();
    cred_put(&c->cred);
}

/*
 * Credential ops need no identity; everything else runs as the header's
 * credential (an id not registered on this session: PERM).
 */
int ops_execute(op_ctx *c)
{
    uint16_t op = c->req->hdr.opcode;
    if (op == DAFS_OP_REGISTER_CRED || op == DAFS_OP_RELEASE_CRED)
        return ops_ns_execute(c);
    if (c->srv->cfg.read_only && modifies(c->req))
        return DAFS_ST_ROFS;
    int status = ops_cred_enter(c, c->req->hdr.cred);
    if (status != DAFS_ST_OK)
        return status;
    status = run_op(c);
    ops_cred_leave(c);
    if (status == DAFS_ST_OK)
        durable_note_request(&c->srv->durable, c->req);
    if (op == DAFS_OP_REMOVE)
        fdcache_invalidate(&c->srv->fds, true);
    else if (invalidates_fds(op))
        fdcache_invalidate(&c->srv->fds, false);
    return status;
}
