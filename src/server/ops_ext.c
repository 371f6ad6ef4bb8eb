/*
 * ops_ext.c — worker-thread setup for file creation, and (later in this
 * file) the extension operations of the 70..79 opcode range.
 *
 * Creation modes.  A client (the kernel under dafs-fuse, or a libdafs
 * caller) sends the mode it wants a new file, directory or node to have,
 * with its own umask already applied.  dafsd must therefore create with
 * exactly that mode: applying dafsd's own umask on top would turn
 * mkdir(0777) into 0755 when dafsd was started from a shell with umask 022.
 * Each worker thread unshares its file-system attributes (CLONE_FS: root,
 * cwd and umask; dafsd uses no cwd-relative paths after startup) and sets
 * its own umask to 0, so dafsd's own files (state directory, ready file)
 * keep the operator's umask.  When the parent directory has a default ACL
 * the kernel ignores the umask anyway and applies the ACL, as locally.
 */
#include "ops.h"
#include "ops_lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"

void ops_worker_thread_init(void)
{
    if (unshare(CLONE_FS) != 0) {
        log_error("cannot give a worker its own umask (unshare CLONE_FS): %s; aborting",
                  strerror(errno));
        abort();
    }
    (void)umask(0); /* umask() cannot fail */
}

/*
 * Set-id bits and writers.  When a user who is not the owner writes to or
 * truncates a set-user-ID or set-group-ID file, a local file system clears
 * those bits itself.  Through FUSE the kernel does it as a separate SETATTR
 * of the mode, sent as the writer (libfuse 3.14 never passes on
 * FUSE_HANDLE_KILLPRIV), and chmod as a non-owner fails with EPERM, which
 * failed the write.  Clearing set-id bits is something every writer does
 * anyway by writing, so a mode change that does nothing else is done as
 * root once the caller has shown it may write the file (an O_WRONLY open
 * as the caller succeeds).
 */
int ops_clear_setid(int pfd, uint32_t mode)
{
    const uint32_t setid = S_ISUID | S_ISGID;
    struct stat st;
    if (fstat(pfd, &st) != 0)
        return export_errno_status(errno);
    uint32_t cur = st.st_mode & 07777;
    mode &= 07777;
    bool only_clears = S_ISREG(st.st_mode) && (cur & ~setid) == (mode & ~setid) &&
                       (mode & ~cur) == 0 && mode != cur;
    if (!only_clears)
        return DAFS_ST_PERM;
    int fd;
    int status = ops_reopen(pfd, O_WRONLY | O_NONBLOCK, &fd);
    if (status != DAFS_ST_OK)
        return status == DAFS_ST_ACCES ? DAFS_ST_PERM : status;
    cred_suspend();
    int rc = fchmod(fd, mode);
    int err = errno;
    cred_resume();
    close(fd);
    return rc == 0 ? DAFS_ST_OK : export_errno_status(err);
}

/* ---- the extra operations (70..79) --------------------------------------
 *
 * FALLOCATE, COPY_RANGE and SEEK open their file(s) by handle and then
 * again as the caller (ops_reopen), like READ and WRITE, so the kernel
 * checks the caller's access: FALLOCATE and the destination of COPY_RANGE
 * need write access, SEEK and the source read access.  COPY_RANGE is one
 * copy_file_range(2) loop on the server (no data crosses the network), at
 * most COPY_CHUNK_MAX bytes per request; the reply says how much was copied.
 *
 * Extended attributes go through the object's /proc/self/fd path (the
 * *xattr calls have no O_PATH form), as the caller: the kernel applies its
 * rules (read/write permission for user.*, ownership for POSIX ACLs, no
 * user.* on symlinks and special files).  Workers keep CAP_SYS_ADMIN, which
 * is not a file-system capability, so trusted.* names and changes to
 * security.* are refused here to every caller but root.
 *
 * READDIRPLUS is READDIR whose entries also carry a handle and attributes,
 * so a client need not LOOKUP each name; an entry whose object vanished in
 * between is sent without them.
 */
#define COPY_CHUNK_MAX (64u << 20)

static int falloc_mode_from_wire(uint32_t w)
{
    int mode = 0;
    if (w & DAFS_FALLOC_KEEP_SIZE)
        mode |= FALLOC_FL_KEEP_SIZE;
    if (w & DAFS_FALLOC_PUNCH_HOLE)
        mode |= FALLOC_FL_PUNCH_HOLE;
    if (w & DAFS_FALLOC_ZERO_RANGE)
        mode |= FALLOC_FL_ZERO_RANGE;
    if (w & DAFS_FALLOC_COLLAPSE_RANGE)
        mode |= FALLOC_FL_COLLAPSE_RANGE;
    if (w & DAFS_FALLOC_INSERT_RANGE)
        mode |= FALLOC_FL_INSERT_RANGE;
    if (w & DAFS_FALLOC_UNSHARE_RANGE)
        mode |= FALLOC_FL_UNSHARE_RANGE;
    return mode;
}

static int op_fallocate(op_ctx *c)
{
    const dafs_fallocate_req *r = &c->req->u.fallocate;
    if ((r->mode & ~DAFS_FALLOC_ALL) != 0 || r->length == 0 ||
        ops_check_range(r->offset, r->length) != DAFS_ST_OK)
        return DAFS_ST_INVAL;
    ops_data_fd e;
    int status = ops_data_for(c, &r->fh, r->stateid, FDC_WRITE, &e);
    if (status != DAFS_ST_OK)
        return status;
    struct stat st;
    locks_io lio; /* the undo log cannot record it: NOTSUP under AUTORECOVER */
    status = locks_io_begin(c->srv, c->sess->id, &r->fh, LOCKS_IO_OTHER, r->offset, r->length,
                            &lio);
    if (status == DAFS_ST_OK &&
        (fallocate(e.fd, falloc_mode_from_wire(r->mode), (off_t)r->offset, (off_t)r->length) != 0 ||
         fstat(e.fd, &st) != 0))
        status = export_errno_status(errno);
    else if (status == DAFS_ST_OK)
        export_fill_attr(&st, &c->rep.u.attr.attr);
    locks_io_end(c->srv, &lio);
    ops_data_close(c, &e);
    return status;
}

static int op_copy_range(op_ctx *c)
{
    const dafs_copy_req *r = &c->req->u.copy;
    if (r->flags != 0 || ops_check_range(r->src_offset, r->length) != DAFS_ST_OK ||
        ops_check_range(r->dst_offset, r->length) != DAFS_ST_OK)
        return DAFS_ST_INVAL;
    ops_data_fd in, out;
    int status = ops_data_for(c, &r->src, r->src_stateid, FDC_READ, &in);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_data_for(c, &r->dst, r->dst_stateid, FDC_WRITE, &out);
    if (status != DAFS_ST_OK) {
        ops_data_close(c, &in);
        return status;
    }
    loff_t off_in = (loff_t)r->src_offset, off_out = (loff_t)r->dst_offset;
    uint64_t want = r->length < COPY_CHUNK_MAX ? r->length : COPY_CHUNK_MAX;
    uint64_t done = 0;
    locks_io lio; /* a copy into a file under AUTORECOVER: NOTSUP, as fallocate */
    status = locks_io_begin(c->srv, c->sess->id, &r->dst, LOCKS_IO_OTHER, r->dst_offset, want,
                            &lio);
    if (status != DAFS_ST_OK)
        want = 0;
    while (done < want) {
        ssize_t n = copy_file_range(in.fd, &off_in, out.fd, &off_out, (size_t)(want - done), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            if (done == 0)
                status = export_errno_status(errno);
            break; /* a partial copy is reported as such */
        }
        if (n == 0)
            break; /* end of the source */
        done += (uint64_t)n;
    }
    locks_io_end(c->srv, &lio);
    ops_data_close(c, &in);
    ops_data_close(c, &out);
    c->rep.u.u64.value = done;
    return status;
}

static int op_seek(op_ctx *c)
{
    const dafs_seek_req *r = &c->req->u.seek;
    if (r->what > DAFS_SEEK_HOLE || r->offset > (uint64_t)INT64_MAX)
        return DAFS_ST_INVAL;
    ops_data_fd e; /* any access may seek: an open state of either kind, or read then write */
    int status = r->stateid != 0 ? ops_data_state(c, &r->fh, r->stateid, 0, &e)
                                 : ops_data_cached(c, &r->fh, FDC_READ, &e);
    if (status == DAFS_ST_ACCES && r->stateid == 0)
        status = ops_data_cached(c, &r->fh, FDC_WRITE, &e);
    if (status != DAFS_ST_OK)
        return status;
    off_t where = lseek(e.fd, (off_t)r->offset, r->what == DAFS_SEEK_DATA ? SEEK_DATA : SEEK_HOLE);
    if (where < 0)
        status = export_errno_status(errno);
    else
        c->rep.u.u64.value = (uint64_t)where;
    ops_data_close(c, &e);
    return status;
}

/* ---- extended attributes ---- */

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* trusted.* is root's only; security.* may be read by all, changed by root. */
static bool xattr_allowed(const op_ctx *c, const char *name, bool change)
{
    if (c->cred.uid == 0)
        return true;
    if (has_prefix(name, "trusted."))
        return false;
    return !(change && has_prefix(name, "security."));
}

/* The request's name as a C string; INVAL for a NUL inside (the codec
 * checks it too). */
static int xattr_cname(const dafs_bytes *name, char out[DAFS_XATTR_NAME_MAX + 1])
{
    if (name->len == 0 || name->len > DAFS_XATTR_NAME_MAX || memchr(name->ptr, 0, name->len))
        return DAFS_ST_INVAL;
    memcpy(out, name->ptr, name->len);
    out[name->len] = '\0';
    return DAFS_ST_OK;
}

/* The object's /proc/self/fd path, with its O_PATH fd (closed by the caller). */
static int xattr_target(op_ctx *c, const dafs_fh *fh, int *pfd, char path[64])
{
    struct stat st;
    int status = ops_fh_open(c, fh, pfd, &st);
    if (status == DAFS_ST_OK)
        ops_proc_path(*pfd, path);
    return status;
}

/* Largest GETXATTR/LISTXATTR data that fits the session's replies. */
static uint32_t xattr_reply_room(const op_ctx *c, uint32_t protocol_max)
{
    size_t room = c->reply_cap > DAFS_HDR_SIZE + 16 ? c->reply_cap - DAFS_HDR_SIZE - 16 : 0;
    if (room > c->sess->limits.max_io) /* the bounce buffer's size */
        room = c->sess->limits.max_io;
    return room < protocol_max ? (uint32_t)room : protocol_max;
}

static int xattr_errno_status(int err)
{
    switch (err) {
    case ENODATA: return DAFS_ST_NODATA;
    case ERANGE: return DAFS_ST_RANGE;
    case E2BIG: return DAFS_ST_TOOBIG;
    default: return export_errno_status(err);
    }
}

static int op_getxattr(op_ctx *c)
{
    const dafs_xattr_req *r = &c->req->u.xattr;
    char name[DAFS_XATTR_NAME_MAX + 1], path[64];
    int pfd;
    int status = xattr_cname(&r->name, name);
    if (status == DAFS_ST_OK && !xattr_allowed(c, name, false))
        status = DAFS_ST_NODATA; /* as for an unprivileged local caller */
    if (status == DAFS_ST_OK)
        status = xattr_target(c, &r->fh, &pfd, path);
    if (status != DAFS_ST_OK)
        return status;
    uint32_t room = xattr_reply_room(c, DAFS_XATTR_VALUE_MAX);
    uint32_t ask = r->size == 0 ? 0 : (r->size < room ? r->size : room);
    ssize_t n = getxattr(path, name, ask ? c->bounce : NULL, ask);
    int err = errno;
    if (n < 0 && err == ERANGE && ask < r->size)
        err = E2BIG; /* it would fit what the caller asked for, not a reply */
    close(pfd);
    if (n < 0)
        return xattr_errno_status(err);
    if ((size_t)n > DAFS_XATTR_VALUE_MAX)
        return DAFS_ST_TOOBIG;
    c->rep.u.xattr.size = (uint32_t)n;
    if (ask > 0)
        c->rep.u.xattr.data = (dafs_bytes){.ptr = c->bounce, .len = (uint32_t)n};
    return DAFS_ST_OK;
}

/* Drop trusted.* names from a list (in place) for a caller who is not root;
 * returns the new length. */
static size_t filter_list(const op_ctx *c, char *list, size_t len)
{
    size_t out = 0;
    for (size_t i = 0; i < len;) {
        size_t n = strnlen(list + i, len - i);
        size_t entry = n < len - i ? n + 1 : n; /* with its NUL, when there is one */
        if (xattr_allowed(c, list + i, false)) {
            memmove(list + out, list + i, entry);
            out += entry;
        }
        i += entry;
    }
    return out;
}

static int op_listxattr(op_ctx *c)
{
    const dafs_xattr_req *r = &c->req->u.xattr;
    char path[64];
    int pfd;
    int status = xattr_target(c, &r->fh, &pfd, path);
    if (status != DAFS_ST_OK)
        return status;
    /* Always fetch the whole list: filtering can only shrink it, and the
     * size answer must be the filtered one. */
    uint32_t room = xattr_reply_room(c, DAFS_XATTR_LIST_MAX);
    char *buf = (char *)c->bounce;
    ssize_t n = listxattr(path, buf, room);
    int err = errno;
    close(pfd);
    if (n < 0)
        return err == ERANGE ? DAFS_ST_TOOBIG : xattr_errno_status(err);
    size_t len = filter_list(c, buf, (size_t)n);
    if (r->size != 0 && len > r->size)
        return DAFS_ST_RANGE;
    c->rep.u.xattr.size = (uint32_t)len;
    if (r->size != 0)
        c->rep.u.xattr.data = (dafs_bytes){.ptr = c->bounce, .len = (uint32_t)len};
    return DAFS_ST_OK;
}

static int op_setxattr(op_ctx *c, bool remove)
{
    const dafs_xattr_req *r = &c->req->u.xattr;
    char name[DAFS_XATTR_NAME_MAX + 1], path[64];
    int pfd;
    int status = xattr_cname(&r->name, name);
    if (status == DAFS_ST_OK && (r->flags > DAFS_XATTR_REPLACE ||
                                 r->value.len > DAFS_XATTR_VALUE_MAX))
        status = DAFS_ST_INVAL;
    if (status == DAFS_ST_OK && !xattr_allowed(c, name, true))
        status = DAFS_ST_PERM;
    if (status == DAFS_ST_OK)
        status = xattr_target(c, &r->fh, &pfd, path);
    if (status != DAFS_ST_OK)
        return status;
    int flags = r->flags == DAFS_XATTR_CREATE ? XATTR_CREATE
                : r->flags == DAFS_XATTR_REPLACE ? XATTR_REPLACE : 0;
    int rc = remove ? removexattr(path, name)
                    : setxattr(path, name, r->value.ptr, r->value.len, flags);
    int err = errno;
    close(pfd);
    return rc == 0 ? DAFS_ST_OK : xattr_errno_status(err);
}

int ops_ext_execute(op_ctx *c)
{
    switch (c->req->hdr.opcode) {
    case DAFS_OP_FALLOCATE: return op_fallocate(c);
    case DAFS_OP_COPY_RANGE: return op_copy_range(c);
    case DAFS_OP_SEEK: return op_seek(c);
    case DAFS_OP_GETXATTR: return op_getxattr(c);
    case DAFS_OP_SETXATTR: return op_setxattr(c, false);
    case DAFS_OP_LISTXATTR: return op_listxattr(c);
    case DAFS_OP_REMOVEXATTR: return op_setxattr(c, true);
    case DAFS_OP_READDIRPLUS: return ops_readdirplus(c);
    case DAFS_OP_CACHE_HINT: return ops_cache_hint(c);
    default: return DAFS_ST_BADOP;
    }
}

/* ---- READDIRPLUS ---- */

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    unsigned short d_reclen;
    unsigned char d_type;
    char d_name[];
};

static uint32_t dtype_mode(unsigned char t)
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

/* Handle and attributes of dir/name, looked up as the caller, and whether
 * it has no xattrs at all (*flags DAFS_PLUS_NO_XATTRS: a client then need
 * not ask for ACLs or labels); false when the entry is gone (or is "." /
 * "..", which carry none). */
static bool plus_attrs(op_ctx *c, int dirfd, const char *name, dafs_fh *fh, dafs_attr *attr,
                       unsigned *flags)
{
    *flags = 0;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    dafs_bytes b = {.ptr = (const uint8_t *)name, .len = (uint32_t)strlen(name)};
    int fd;
    struct stat st;
    if (export_openat(&c->srv->exp, dirfd, &b, O_PATH, 0, &fd) != DAFS_ST_OK)
        return false;
    bool ok = fstat(fd, &st) == 0 && export_make_fh(&c->srv->exp, fd, fh) == DAFS_ST_OK;
    if (ok) {
        export_fill_attr(&st, attr);
        char path[64];
        ops_proc_path(fd, path);
        ssize_t n = S_ISLNK(st.st_mode) ? -1 : listxattr(path, NULL, 0);
        if (n == 0 || (n < 0 && errno == EOPNOTSUPP))
            *flags = DAFS_PLUS_NO_XATTRS;
    }
    close(fd);
    return ok;
}

/* Add one getdents64 batch; 1 when the reply is full, 0 to go on. */
static int plus_add_batch(op_ctx *c, int dirfd, dafs_readdir_enc *e, const uint8_t *buf, long n)
{
    for (long pos = 0; pos + (long)sizeof(struct linux_dirent64) <= n;) {
        const struct linux_dirent64 *d = (const struct linux_dirent64 *)(buf + pos);
        if (d->d_reclen == 0 || pos + d->d_reclen > n)
            break;
        pos += d->d_reclen;
        dafs_dirent_wire ent = {
            .fileid = d->d_ino,
            .cookie = (uint64_t)d->d_off,
            .type = dtype_mode(d->d_type),
            .name = {.ptr = (const uint8_t *)d->d_name, .len = (uint32_t)strlen(d->d_name)},
        };
        dafs_fh fh;
        dafs_attr attr;
        unsigned flags;
        bool has = plus_attrs(c, dirfd, d->d_name, &fh, &attr, &flags);
        if (dafs_readdir_enc_add_plus(e, &ent, has ? &fh : NULL, has ? &attr : NULL, flags) != 0)
            return 1;
    }
    return 0;
}

/* Unlike READDIR, "." and ".." are listed (without attributes), with the
 * cookies the file system gives them, so a client can show them. */
int ops_readdirplus(op_ctx *c)
{
    const dafs_readdir_req *r = &c->req->u.readdir;
    if (r->cookie > (uint64_t)INT64_MAX)
        return DAFS_ST_INVAL;
    int pfd, fd;
    int status = ops_open_dir(c, &r->dir, &pfd);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_reopen(pfd, O_RDONLY | O_DIRECTORY, &fd);
    if (status == DAFS_ST_OK && lseek(fd, (off_t)r->cookie, SEEK_SET) < 0) {
        status = export_errno_status(errno);
        close(fd);
    }
    if (status != DAFS_ST_OK) {
        close(pfd);
        return status;
    }
    size_t cap = (size_t)DAFS_HDR_SIZE + r->maxcount;
    if (cap > c->reply_cap)
        cap = c->reply_cap;
    dafs_readdir_enc e;
    if (dafs_readdir_enc_begin(&e, c->reply_buf, cap, &c->rep.hdr) != 0) {
        close(fd);
        close(pfd);
        return DAFS_ST_INVAL;
    }
    uint64_t space[1024]; /* 8-byte aligned for struct linux_dirent64 */
    bool eof = false, full = false;
    while (!eof && !full) {
        long n = getdents64(fd, space, sizeof(space));
        if (n < 0) {
            status = export_errno_status(errno);
            break;
        }
        if (n == 0)
            eof = true;
        else
            full = plus_add_batch(c, pfd, &e, (const uint8_t *)space, n) != 0;
    }
    close(fd);
    close(pfd);
    if (status != DAFS_ST_OK)
        return status;
    if (full && e.nentries == 0)
        return DAFS_ST_INVAL; /* maxcount too small for one entry */
    int len = dafs_readdir_enc_finish(&e, eof);
    if (len < 0)
        return DAFS_ST_SERVERFAULT;
    c->encoded_len = len;
    return DAFS_ST_OK;
}
