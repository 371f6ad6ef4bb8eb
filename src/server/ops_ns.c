/*
 * ops_ns.c — namespace, attribute and credential operations: SETATTR,
 * RENAME, LINK, SYMLINK, READLINK, MKNOD, ACCESS, LOOKUPP, REGISTER_CRED,
 * RELEASE_CRED.
 *
 * All of them (except the credential ops) run with the worker switched to
 * the caller's identity (ops.c), and act through directory fds and O_PATH
 * fds with *at() calls, so the kernel applies the caller's permissions:
 * search and write permission on directories, sticky directories, setgid
 * inheritance, ownership rules for chmod/chown/utimes, CAP_MKNOD for device
 * nodes, protected_hardlinks for LINK.  Calls that take an object (not a
 * name) use the O_PATH fd through AT_EMPTY_PATH, or its /proc/self/fd path
 * where the call has no AT_EMPTY_PATH form (chmod, link, truncate); the
 * /proc magic link resolves to the same inode, never to a path a client
 * could influence.  Names are single components checked by
 * export_check_name.  A symlink target is stored verbatim and never
 * followed by the server.
 *
 * SETATTR applies size, then owner/group, then mode, then times, and stops
 * at the first failure (earlier changes stay); the reply carries the
 * attributes afterwards.  A size change under a stateid (ftruncate on an
 * open file) truncates the open state's fd, which must be open for writing,
 * with no new permission check; without one the file is reopened as the
 * caller.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ops.h"
#include "ops_lock.h"

#define LOOKUPP_MAX_DEPTH 4096

static int errno_status(void)
{
    return export_errno_status(errno);
}

/* ---- credentials ------------------------------------------------------- */

static int op_register_cred(op_ctx *c)
{
    return cred_register(&c->sess->creds, &c->srv->cfg.policy, &c->req->u.cred,
                         &c->rep.u.cred.cred_id);
}

static int op_release_cred(op_ctx *c)
{
    return cred_release(&c->sess->creds, c->req->u.cred_id.cred_id);
}

/* ---- SETATTR ----------------------------------------------------------- */

static int set_size(int pfd, const struct stat *st, uint64_t size)
{
    if (S_ISDIR(st->st_mode))
        return DAFS_ST_ISDIR;
    if (!S_ISREG(st->st_mode))
        return DAFS_ST_INVAL;
    if (size > (uint64_t)INT64_MAX)
        return DAFS_ST_FBIG;
    int fd;
    int status = ops_reopen(pfd, O_WRONLY | O_NONBLOCK, &fd);
    if (status != DAFS_ST_OK)
        return status;
    if (ftruncate(fd, (off_t)size) != 0)
        status = errno_status();
    close(fd);
    return status;
}

/* ftruncate on the fd of open state r->stateid. */
static int set_size_state(op_ctx *c, const dafs_setattr_req *r)
{
    if (r->size > (uint64_t)INT64_MAX)
        return DAFS_ST_FBIG;
    open_ref ref;
    int status = opens_get(&c->sess->opens, r->stateid, &r->fh, OPENS_ACCESS_WRITE, &ref);
    if (status != DAFS_ST_OK)
        return status;
    if (ftruncate(ref.fd, (off_t)r->size) != 0)
        status = errno_status();
    opens_put(&c->sess->opens, &ref);
    return status;
}

static int set_owner(int pfd, const dafs_setattr_req *r)
{
    uid_t uid = (r->valid & DAFS_SET_UID) ? (uid_t)r->uid : (uid_t)-1;
    gid_t gid = (r->valid & DAFS_SET_GID) ? (gid_t)r->gid : (gid_t)-1;
    if (fchownat(pfd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
        return errno_status();
    return DAFS_ST_OK;
}

static int set_mode(int pfd, const struct stat *st, uint32_t mode)
{
    if (S_ISLNK(st->st_mode))
        return DAFS_ST_NOTSUP; /* Linux symlinks have no mode of their own */
    char path[64];
    ops_proc_path(pfd, path);
    if (chmod(path, mode & 07777) == 0)
        return DAFS_ST_OK;
    if (errno == EPERM) /* perhaps the kernel clearing set-id bits for a writer */
        return ops_clear_setid(pfd, mode);
    return errno_status();
}

static struct timespec wire_time(uint32_t valid, uint32_t set, uint32_t now, int64_t sec,
                                 uint32_t nsec)
{
    if (valid & now)
        return (struct timespec){.tv_sec = 0, .tv_nsec = UTIME_NOW};
    if (valid & set)
        return (struct timespec){.tv_sec = (time_t)sec, .tv_nsec = (long)nsec};
    return (struct timespec){.tv_sec = 0, .tv_nsec = UTIME_OMIT};
}

static int set_times(int pfd, const dafs_setattr_req *r)
{
    if (((r->valid & DAFS_SET_ATIME) && r->atime_nsec >= 1000000000u) ||
        ((r->valid & DAFS_SET_MTIME) && r->mtime_nsec >= 1000000000u))
        return DAFS_ST_INVAL;
    struct timespec ts[2] = {
        wire_time(r->valid, DAFS_SET_ATIME, DAFS_SET_ATIME_NOW, r->atime_sec, r->atime_nsec),
        wire_time(r->valid, DAFS_SET_MTIME, DAFS_SET_MTIME_NOW, r->mtime_sec, r->mtime_nsec),
    };
    if (utimensat(pfd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0)
        return errno_status();
    return DAFS_ST_OK;
}

static int setattr_locked(op_ctx *c);

/* A size change is a data change: it goes through the lock gate (the undo
 * log of an AUTORECOVER holder saves what it cuts). */
static int op_setattr(op_ctx *c)
{
    const dafs_setattr_req *r = &c->req->u.setattr;
    if (!(r->valid & DAFS_SET_SIZE))
        return setattr_locked(c);
    if (r->size > (uint64_t)INT64_MAX)
        return DAFS_ST_FBIG;
    locks_io lio;
    int status = locks_io_begin(c->srv, c->sess->id, &r->fh, LOCKS_IO_TRUNCATE, r->size, 0, &lio);
    if (status == DAFS_ST_OK)
        status = setattr_locked(c);
    locks_io_end(c->srv, &lio);
    return status;
}

static int setattr_locked(op_ctx *c)
{
    const dafs_setattr_req *r = &c->req->u.setattr;
    if ((r->valid & ~DAFS_SET_ALL) != 0 || (r->mode & ~07777u) != 0)
        return DAFS_ST_INVAL;
    int pfd;
    struct stat st;
    int status = DAFS_ST_OK;
    bool by_state = (r->valid & DAFS_SET_SIZE) && r->stateid != 0;
    if (by_state) /* first: the handle may no longer open (unlinked) */
        status = set_size_state(c, r);
    if (status != DAFS_ST_OK)
        return status;
    if ((r->valid & ~DAFS_SET_SIZE) == 0 && by_state) { /* ftruncate alone */
        status = opens_fstat_fh(&c->sess->opens, &r->fh, &st);
        if (status == DAFS_ST_OK)
            export_fill_attr(&st, &c->rep.u.attr.attr);
        return status;
    }
    status = ops_fh_open(c, &r->fh, &pfd, &st);
    if (status != DAFS_ST_OK)
        return status;
    if ((r->valid & DAFS_SET_SIZE) && !by_state)
        status = set_size(pfd, &st, r->size);
    if (status == DAFS_ST_OK && (r->valid & (DAFS_SET_UID | DAFS_SET_GID)))
        status = set_owner(pfd, r);
    if (status == DAFS_ST_OK && (r->valid & DAFS_SET_MODE))
        status = set_mode(pfd, &st, r->mode);
    if (status == DAFS_ST_OK && (r->valid & (DAFS_SET_ATIME | DAFS_SET_MTIME |
                                             DAFS_SET_ATIME_NOW | DAFS_SET_MTIME_NOW)))
        status = set_times(pfd, r);
    if (status == DAFS_ST_OK && fstat(pfd, &st) != 0)
        status = errno_status();
    close(pfd);
    if (status == DAFS_ST_OK)
        export_fill_attr(&st, &c->rep.u.attr.attr);
    return status;
}

/* ---- RENAME, LINK ------------------------------------------------------ */

static int op_rename(op_ctx *c)
{
    const dafs_rename_req *r = &c->req->u.rename;
    unsigned flags = 0;
    if ((r->flags & ~(DAFS_RENAME_NOREPLACE | DAFS_RENAME_EXCHANGE)) != 0 ||
        r->flags == (DAFS_RENAME_NOREPLACE | DAFS_RENAME_EXCHANGE))
        return DAFS_ST_INVAL;
    if (r->flags & DAFS_RENAME_NOREPLACE)
        flags |= RENAME_NOREPLACE;
    if (r->flags & DAFS_RENAME_EXCHANGE)
        flags |= RENAME_EXCHANGE;
    int status = export_check_name(&r->src_name);
    if (status == DAFS_ST_OK)
        status = export_check_name(&r->dst_name);
    if (status != DAFS_ST_OK)
        return status;
    int sfd, dfd;
    status = ops_open_dir(c, &r->src_dir, &sfd);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_open_dir(c, &r->dst_dir, &dfd);
    if (status != DAFS_ST_OK) {
        close(sfd);
        return status;
    }
    char sname[DAFS_NAME_MAX + 1], dname[DAFS_NAME_MAX + 1];
    ops_cname(&r->src_name, sname);
    ops_cname(&r->dst_name, dname);
    if (renameat2(sfd, sname, dfd, dname, flags) != 0)
        status = errno_status();
    close(sfd);
    close(dfd);
    return status;
}

static int op_link(op_ctx *c)
{
    const dafs_link_req *r = &c->req->u.link;
    int status = export_check_name(&r->name);
    if (status != DAFS_ST_OK)
        return status;
    int pfd, dfd;
    struct stat st;
    status = ops_fh_open(c, &r->fh, &pfd, &st);
    if (status != DAFS_ST_OK)
        return status;
    if (S_ISDIR(st.st_mode)) {
        close(pfd);
        return DAFS_ST_PERM; /* as link(2) */
    }
    status = ops_open_dir(c, &r->dir, &dfd);
    if (status != DAFS_ST_OK) {
        close(pfd);
        return status;
    }
    char path[64], name[DAFS_NAME_MAX + 1];
    ops_proc_path(pfd, path);
    ops_cname(&r->name, name);
    /* following the /proc magic link links the inode itself (no
     * CAP_DAC_READ_SEARCH needed, unlike AT_EMPTY_PATH) */
    if (linkat(AT_FDCWD, path, dfd, name, AT_SYMLINK_FOLLOW) != 0)
        status = errno_status();
    if (status == DAFS_ST_OK && fstat(pfd, &st) != 0)
        status = errno_status();
    if (status == DAFS_ST_OK)
        export_fill_attr(&st, &c->rep.u.attr.attr);
    close(pfd);
    close(dfd);
    return status;
}

/* ---- SYMLINK, MKNOD: create a name, reply its handle ------------------- */

/* After a successful create of r_name in dfd: look it up and reply. */
static int reply_created(op_ctx *c, int dfd, const dafs_bytes *name)
{
    int fd;
    int status = export_openat(&c->srv->exp, dfd, name, O_PATH, 0, &fd);
    if (status != DAFS_ST_OK)
        return status;
    status = ops_reply_fh_attr(c, fd);
    close(fd);
    c->rep.u.fh_attr.created = status == DAFS_ST_OK;
    return status;
}

static int op_symlink(op_ctx *c)
{
    const dafs_symlink_req *r = &c->req->u.symlink;
    int status = export_check_name(&r->name);
    if (status != DAFS_ST_OK)
        return status;
    if (r->target.len == 0 || memchr(r->target.ptr, '\0', r->target.len))
        return DAFS_ST_INVAL;
    if (r->target.len > DAFS_PATH_MAX)
        return DAFS_ST_NAMETOOLONG;
    int dfd;
    status = ops_open_dir(c, &r->dir, &dfd);
    if (status != DAFS_ST_OK)
        return status;
    char name[DAFS_NAME_MAX + 1], target[DAFS_PATH_MAX + 1];
    ops_cname(&r->name, name);
    memcpy(target, r->target.ptr, r->target.len);
    target[r->target.len] = '\0';
    if (symlinkat(target, dfd, name) != 0)
        status = errno_status();
    else
        status = reply_created(c, dfd, &r->name);
    close(dfd);
    return status;
}

static int op_readlink(op_ctx *c)
{
    int pfd;
    struct stat st;
    int status = ops_fh_open(c, &c->req->u.fh.fh, &pfd, &st);
    if (status != DAFS_ST_OK)
        return status;
    if (!S_ISLNK(st.st_mode)) {
        close(pfd);
        return DAFS_ST_INVAL;
    }
    char *buf = (char *)c->bounce; /* max_io bytes, >= DAFS_PATH_MAX */
    ssize_t n = readlinkat(pfd, "", buf, DAFS_PATH_MAX + 1);
    if (n < 0)
        status = errno_status();
    else if (n > DAFS_PATH_MAX)
        status = DAFS_ST_NAMETOOLONG;
    close(pfd);
    if (status == DAFS_ST_OK)
        c->rep.u.readlink.target = (dafs_bytes){.ptr = (const uint8_t *)buf, .len = (uint32_t)n};
    return status;
}

static int op_mknod(op_ctx *c)
{
    const dafs_mknod_req *r = &c->req->u.mknod;
    int status = export_check_name(&r->name);
    if (status != DAFS_ST_OK)
        return status;
    switch (r->mode & S_IFMT) {
    case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK: case S_IFREG: break;
    default: return DAFS_ST_INVAL;
    }
    if ((r->mode & ~(uint32_t)(S_IFMT | 07777)) != 0)
        return DAFS_ST_INVAL;
    dev_t rdev = makedev(major((dev_t)r->rdev), minor((dev_t)r->rdev));
    if ((uint64_t)rdev != r->rdev)
        return DAFS_ST_INVAL;
    int dfd;
    status = ops_open_dir(c, &r->dir, &dfd);
    if (status != DAFS_ST_OK)
        return status;
    char name[DAFS_NAME_MAX + 1];
    ops_cname(&r->name, name);
    if (mknodat(dfd, name, (mode_t)r->mode, rdev) != 0)
        status = errno_status();
    else
        status = reply_created(c, dfd, &r->name);
    close(dfd);
    return status;
}

/* ---- ACCESS, LOOKUPP --------------------------------------------------- */

static int op_access(op_ctx *c)
{
    const dafs_access_req *r = &c->req->u.access;
    const uint32_t all = DAFS_ACCESS_READ | DAFS_ACCESS_WRITE | DAFS_ACCESS_EXEC;
    if ((r->mask & ~all) != 0)
        return DAFS_ST_INVAL;
    int pfd;
    struct stat st;
    int status = ops_fh_open(c, &r->fh, &pfd, &st);
    if (status != DAFS_ST_OK)
        return status;
    if ((r->mask & DAFS_ACCESS_WRITE) && c->srv->cfg.read_only) {
        close(pfd);
        return DAFS_ST_ROFS;
    }
    int mode = (r->mask & DAFS_ACCESS_READ ? R_OK : 0) | (r->mask & DAFS_ACCESS_WRITE ? W_OK : 0) |
               (r->mask & DAFS_ACCESS_EXEC ? X_OK : 0);
    /* AT_EACCESS: check with the thread's fs ids, not the real uid (root) */
    if (faccessat(pfd, "", mode ? mode : F_OK, AT_EACCESS | AT_EMPTY_PATH) != 0)
        status = errno_status();
    close(pfd);
    return status;
}

static bool same_object(const struct stat *a, dev_t dev, ino_t ino)
{
    return a->st_dev == dev && a->st_ino == ino;
}

/* Is directory fd inside the export?  Walks ".." (as root) up to the root. */
static int inside_export(op_ctx *c, int fd)
{
    const dafs_export *e = &c->srv->exp;
    int cur = dup(fd);
    if (cur < 0)
        return errno_status();
    int status = DAFS_ST_STALE; /* moved out of the export */
    cred_suspend();
    for (int depth = 0; depth < LOOKUPP_MAX_DEPTH; depth++) {
        struct stat st, up_st;
        if (fstat(cur, &st) != 0) {
            status = errno_status();
            break;
        }
        if (same_object(&st, e->dev, e->root_ino)) {
            status = DAFS_ST_OK;
            break;
        }
        int up = openat(cur, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (up < 0 || fstat(up, &up_st) != 0 || same_object(&up_st, st.st_dev, st.st_ino) ||
            up_st.st_dev != e->dev) {
            if (up >= 0)
                close(up);
            break; /* reached the top of the file system without meeting the root */
        }
        close(cur);
        cur = up;
    }
    cred_resume();
    close(cur);
    return status;
}

static int op_lookupp(op_ctx *c)
{
    int dfd;
    int status = ops_open_dir(c, &c->req->u.fh.fh, &dfd);
    if (status != DAFS_ST_OK)
        return status;
    struct stat st;
    if (fstat(dfd, &st) != 0) {
        status = errno_status();
        close(dfd);
        return status;
    }
    if (same_object(&st, c->srv->exp.dev, c->srv->exp.root_ino)) { /* root: its own parent */
        status = ops_reply_fh_attr(c, dfd);
        close(dfd);
        return status;
    }
    /* as the caller: looking up ".." needs search permission on the dir */
    int up = openat(dfd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
    close(dfd);
    if (up < 0)
        return errno_status();
    status = inside_export(c, up);
    if (status == DAFS_ST_OK)
        status = ops_reply_fh_attr(c, up);
    close(up);
    return status;
}

int ops_ns_execute(op_ctx *c)
{
    switch (c->req->hdr.opcode) {
    case DAFS_OP_SETATTR: return op_setattr(c);
    case DAFS_OP_RENAME: return op_rename(c);
    case DAFS_OP_LINK: return op_link(c);
    case DAFS_OP_SYMLINK: return op_symlink(c);
    case DAFS_OP_READLINK: return op_readlink(c);
    case DAFS_OP_MKNOD: return op_mknod(c);
    case DAFS_OP_ACCESS: return op_access(c);
    case DAFS_OP_LOOKUPP: return op_lookupp(c);
    case DAFS_OP_REGISTER_CRED: return op_register_cred(c);
    case DAFS_OP_RELEASE_CRED: return op_release_cred(c);
    default: return ops_ext_execute(c);
    }
}
