/*
 * ops.c — the FUSE low-level handlers: each kernel request becomes one (or a
 * few) libdafs handle-level calls made as the calling user.
 *
 * Identity: every handler takes the request's uid/gid/groups and gets a
 * registered credential from the cache (creds.c), so the server decides
 * permissions; the kernel checks mode bits first (default_permissions, see
 * main.c), which is the only check FIFOs and device nodes get.  Open files and
 * directories keep the credential of the open, as POSIX checks access at
 * open time.  A file open is a libdafs dafs_file holding the server's open
 * state (protocol v2 stateid, dafs_h_open_file / dafs_h_open_fh): its reads,
 * writes, fsyncs, ftruncates and fstats run with the access granted at open,
 * so a file created 0444 or mode 0 stays writable through the open that
 * created it, chmod 0000 does not break an open fd, and a file unlinked
 * while open stays usable (nlink 0) with no hidden rename.
 *
 * Caching: attributes and entries are cached by the kernel for
 * attr_timeout/entry_timeout; no negative entries are cached.  Close-to-open:
 * every open fetches fresh attributes and, if size, mtime or ctime differ
 * from those last given to the kernel (kept per node), invalidates the
 * kernel's attributes and drops the file's pages; otherwise the pages are
 * kept (keep_cache).  Open, setattr by path and link first look the node's
 * name up again as the caller (lookup_again), so a directory that lost
 * search permission stops access through names the kernel has cached.
 * Writes go to the server synchronously unless writeback_cache is on.
 * O_APPEND files are opened direct_io, so each write() arrives whole and is
 * one atomic APPEND on the server (without writeback cache).
 *
 * Locks: getlk/setlk/flock are in ops_lock.c (held by the server, so they
 * work across mounts); FLUSH releases the closer's POSIX locks.
 *
 * Not implemented on purpose: ioctl, poll.  fallocate,
 * copy_file_range, lseek SEEK_DATA/HOLE, xattrs and readdirplus (which lists
 * "." and "..") are in ops_ext.c; the kernel always uses readdirplus, so
 * op_readdir below only serves a kernel that will not.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dafs_fuse.h"

#define DFUSE_BLKSIZE 131072

struct dfuse_file {
    struct dfuse_cred *cred;
    dafs_handle handle;
    dafs_file *file; /* the open state; NULL for directories */
    fuse_ino_t ino;
    int append;
};


int dfuse_errno(int rc)
{
    if (rc >= 0)
        return 0;
    int e = -rc;
    if (e < 4096)
        return e;
    switch (e) {
    case DAFS_EBADHANDLE: return ESTALE;
    case DAFS_EBADSTATEID: return EBADF; /* the open is gone on the server */
    case DAFS_EBADOP: return EOPNOTSUPP;
    default: return EIO; /* transport failure, dead server, protocol error */
    }
}

/* Answer with rc's errno (0 = success); with -d, say what libdafs said. */
static void reply_err(fuse_req_t req, int rc)
{
    if (rc < 0 && fs_of(req)->cfg.debug)
        fprintf(stderr, "dafs-fuse: request failed: %s\n", dafs_strerror(rc));
    fuse_reply_err(req, dfuse_errno(rc));
}

/* The calling user's credential; on failure the request is answered. */
static struct dfuse_cred *req_cred(fuse_req_t req)
{
    struct dfuse_cred *c = NULL;
    int rc = dfuse_caller_cred(req, &c);
    if (rc < 0) {
        reply_err(req, rc);
        return NULL;
    }
    return c;
}

void dfuse_to_stat(const struct dafs_stat *d, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = d->ino;
    st->st_mode = d->mode;
    st->st_nlink = d->nlink;
    st->st_uid = d->uid;
    st->st_gid = d->gid;
    st->st_size = (off_t)d->size;
    st->st_blocks = (blkcnt_t)d->blocks;
    st->st_blksize = DFUSE_BLKSIZE;
    st->st_rdev = d->rdev;
    st->st_atim.tv_sec = d->atime.tv_sec;
    st->st_atim.tv_nsec = d->atime.tv_nsec;
    st->st_mtim.tv_sec = d->mtime.tv_sec;
    st->st_mtim.tv_nsec = d->mtime.tv_nsec;
    st->st_ctim.tv_sec = d->ctime.tv_sec;
    st->st_ctim.tv_nsec = d->ctime.tv_nsec;
}

/* Fill e for a new kernel reference to h; 0 or an errno. */
static int make_entry(struct dfuse *fs, const dafs_handle *h, const struct dafs_stat *st,
                      struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    e->ino = nodes_ref(&fs->nodes, h);
    if (e->ino == 0)
        return ENOMEM;
    e->attr_timeout = fs->cfg.attr_timeout;
    e->entry_timeout = fs->cfg.entry_timeout;
    dfuse_to_stat(st, &e->attr);
    nodes_note_attr(&fs->nodes, e->ino, st);
    return 0;
}

/* Answer with a new entry for h, reached as name in the directory parent,
 * or with rc's errno when rc < 0. */
static void reply_entry(fuse_req_t req, int rc, const dafs_handle *parent, const char *name,
                        const dafs_handle *h, const struct dafs_stat *st)
{
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    struct dfuse *fs = fs_of(req);
    struct fuse_entry_param e;
    int err = make_entry(fs, h, st, &e);
    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    nodes_set_parent(&fs->nodes, e.ino, parent, name);
    if (fuse_reply_entry(req, &e) != 0)
        nodes_forget(&fs->nodes, e.ino, 1); /* interrupted: the kernel never saw it */
}

/* Answer with ino's attributes d, or with rc's errno when rc < 0. */
static void reply_attr(fuse_req_t req, fuse_ino_t ino, int rc, const struct dafs_stat *d)
{
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    struct stat st;
    dfuse_to_stat(d, &st);
    nodes_note_attr(&fs_of(req)->nodes, ino, d);
    fuse_reply_attr(req, &st, fs_of(req)->cfg.attr_timeout);
}

/* ---- coherence ------------------------------------------------------------ */

static int handle_same(const dafs_handle *a, const dafs_handle *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

#define LOOKUP_MOVED 2
/* How long a successful lookup through a directory above the parent stands
 * for its search permission (per credential): the window in which another
 * client's chmod of a grandparent goes unnoticed. */
#define SEARCH_TTL_NS 1000000000ull

static uint64_t now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0; /* cannot fail for CLOCK_MONOTONIC; 0 makes nothing fresh */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Search permission above the parent: walk up the directories the kernel
 * reached dir through, looking each one up again in its own parent as the
 * caller (the server checks search permission there), skipping the levels
 * this credential passed within SEARCH_TTL_NS.  -EACCES or 0. */
static int check_ancestors(struct dfuse *fs, const struct dfuse_cred *c, const dafs_handle *dir)
{
    dafs_handle cur = *dir, up, h;
    char name[256];
    struct dafs_stat st;
    uint64_t now = now_ns();
    for (int depth = 0; depth < 4096; depth++) {
        int fresh = 0;
        if (!nodes_dir_parent(&fs->nodes, &cur, &up, name, sizeof name, c->serial, now,
                              SEARCH_TTL_NS, &fresh))
            return 0; /* the root, or a directory the kernel no longer holds */
        if (!fresh) {
            int rc = dafs_h_lookup(fs->session, c->cred, &up, name, &h, &st);
            if (rc == -EACCES)
                return rc;
            if (rc == 0 && handle_same(&h, &cur))
                nodes_dir_searched(&fs->nodes, &cur, c->serial, now);
        }
        cur = up;
    }
    return 0;
}

/* The kernel reaches a cached name without asking us, and operations on a
 * node (open, setattr, link) carry no path: before one of them, look ino's
 * name up again, as the caller, in the directory the kernel last reached it
 * through.  The server then checks the caller's search permission on that
 * directory, as a path walk would, and returns fresh attributes.
 * Returns -EACCES when the directory may not be searched, 1 with *st filled
 * when the name still leads to ino, 2 when the name was removed or now names
 * another object (LOOKUP_MOVED), 0 when no name is known. */
static int lookup_again(struct dfuse *fs, const struct dfuse_cred *c, fuse_ino_t ino,
                        struct dafs_stat *st)
{
    dafs_handle dir, h;
    char name[256];
    if (!nodes_get_parent(&fs->nodes, ino, &dir, name, sizeof name))
        return 0;
    int rc = dafs_h_lookup(fs->session, c->cred, &dir, name, &h, st);
    if (rc == -EACCES)
        return rc;
    int found = rc == 0 && handle_same(&h, handle_of(fs, ino));
    rc = check_ancestors(fs, c, &dir);
    if (rc < 0)
        return rc;
    return found ? 1 : LOOKUP_MOVED;
}

/* The common case of an open in one request: OPEN (with open state) of the
 * name the kernel reached ino by, as the caller, for regular files only
 * (opening anything else on the server could block or reach a device) and
 * without O_TRUNC (which must not reach a file that replaced ino).  The
 * server's openat checks search permission on the directory and the
 * caller's access to the file, and the reply carries the handle (is it
 * still ino?), fresh attributes and the stateid.  Returns 1 when that
 * settled it (*file open, *st fresh), 0 to take the long way (LOOKUP, then
 * OPEN_FH), or a negative error for the open. */
static int open_by_name(struct dfuse *fs, const struct dfuse_cred *c, fuse_ino_t ino, int oflags,
                        dafs_file **file, struct dafs_stat *st)
{
    dafs_handle dir, h;
    char name[256];
    if ((oflags & O_TRUNC) || !nodes_is_reg(&fs->nodes, ino) ||
        !nodes_get_parent(&fs->nodes, ino, &dir, name, sizeof name))
        return 0;
    int created = 0;
    int rc = dafs_h_open_file(fs->session, c->cred, &dir, name, oflags, 0, file, &h, st, &created);
    if (rc == -EACCES || rc == -EPERM || rc == -EROFS || rc == -ETXTBSY)
        return rc;
    if (rc < 0)
        return 0; /* gone, not a file any more: the long way tells */
    if (!handle_same(&h, handle_of(fs, ino))) {
        (void)dafs_close(*file); /* replaced: the long way tells */
        *file = NULL;
        return 0;
    }
    rc = check_ancestors(fs, c, &dir);
    if (rc < 0) {
        (void)dafs_close(*file);
        *file = NULL;
        return rc;
    }
    (void)nodes_moved(&fs->nodes, ino, 0);
    return 1;
}

/* After a directory's mode or owner changed here: drop the kernel's cached
 * names in it, so the next path walk through it asks the server (which
 * checks search permission) instead of using them.  Called after the reply:
 * the kernel holds the directory's lock during SETATTR. */
static void forget_children(struct dfuse *fs, fuse_ino_t dir, const dafs_handle *dir_handle)
{
    size_t count = 0;
    char *names = nodes_children(&fs->nodes, dir_handle, &count);
    const char *name = names;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(name);
        /* -ENOENT: the kernel had already dropped it */
        (void)fuse_lowlevel_notify_inval_entry(fs->se, dir, name, len);
        name += len + 1;
    }
    free(names);
}

/* ---- names ---------------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    dafs_handle h;
    struct dafs_stat st;
    int rc;
    if (strcmp(name, "..") == 0)
        rc = dafs_h_lookupp(fs->session, c->cred, handle_of(fs, parent), &h, &st);
    else if (strcmp(name, ".") == 0)
        rc = (h = *handle_of(fs, parent),
              dafs_h_getattr(fs->session, c->cred, handle_of(fs, parent), &st));
    else
        rc = dafs_h_lookup(fs->session, c->cred, handle_of(fs, parent), name, &h, &st);
    creds_put(&fs->creds, c);
    if (strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
        name = ""; /* not a name to look up again (see lookup_again) */
    reply_entry(req, rc, handle_of(fs, parent), name, &h, &st);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    nodes_forget(&fs_of(req)->nodes, ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    struct dfuse *fs = fs_of(req);
    for (size_t i = 0; i < count; i++)
        nodes_forget(&fs->nodes, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static struct dfuse_file *file_of(struct fuse_file_info *fi)
{
    return (struct dfuse_file *)(uintptr_t)fi->fh;
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    struct dafs_stat st;
    struct dfuse_file *f = fi != NULL ? file_of(fi) : NULL;
    int rc = f != NULL && f->file != NULL
                 ? dafs_fstat(f->file, &st) /* through the open (works once unlinked) */
                 : dafs_h_getattr(fs->session, c->cred, handle_of(fs, ino), &st);
    creds_put(&fs->creds, c);
    reply_attr(req, ino, rc, &st);
}

static void setattr_times(const struct stat *attr, int to_set, dafs_setattr *sa)
{
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
        sa->valid |= DAFS_SETATTR_ATIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
        sa->valid |= DAFS_SETATTR_ATIME;
        sa->atime.tv_sec = attr->st_atim.tv_sec;
        sa->atime.tv_nsec = (uint32_t)attr->st_atim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
        sa->valid |= DAFS_SETATTR_MTIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
        sa->valid |= DAFS_SETATTR_MTIME;
        sa->mtime.tv_sec = attr->st_mtim.tv_sec;
        sa->mtime.tv_nsec = (uint32_t)attr->st_mtim.tv_nsec;
    }
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    dafs_setattr sa;
    memset(&sa, 0, sizeof sa);
    if (to_set & FUSE_SET_ATTR_MODE) {
        sa.valid |= DAFS_SETATTR_MODE;
        sa.mode = attr->st_mode & 07777;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        sa.valid |= DAFS_SETATTR_UID;
        sa.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        sa.valid |= DAFS_SETATTR_GID;
        sa.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        sa.valid |= DAFS_SETATTR_SIZE;
        sa.size = (uint64_t)attr->st_size;
    }
    setattr_times(attr, to_set, &sa);

    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    struct dafs_stat st;
    uint32_t old_mode = 0, old_uid = 0, old_gid = 0;
    int old_known = nodes_seen_perm(&fs->nodes, ino, &old_mode, &old_uid, &old_gid);
    int rc = 0;
    struct dfuse_file *f = fi != NULL ? file_of(fi) : NULL;
    /* by path (not ftruncate on an open file): the directory must still be
     * searchable by the caller.  Not needed when this user has the file open
     * here: fchmod, fchown and futimens on that open file (which FUSE does
     * not tell from chmod and friends) need no search permission, and that
     * is how tar and cp set what they extract; a truncate is checked */
    if (fi == NULL && sa.valid != 0 &&
        ((sa.valid & DAFS_SETATTR_SIZE) || !nodes_held(&fs->nodes, ino, c->serial)))
        rc = lookup_again(fs, c, ino, &st);
    /* ftruncate (and open's O_TRUNC: no atomic_o_trunc) on an open file: under
     * its open state, with the access granted at open */
    if (rc >= 0 && (sa.valid & DAFS_SETATTR_SIZE) && f != NULL && f->file != NULL) {
        rc = dafs_ftruncate(f->file, sa.size);
        if (rc != -EBADF) /* EBADF: not open for writing, try as the caller */
            sa.valid &= ~DAFS_SETATTR_SIZE;
        if (rc == -EBADF)
            rc = 0;
    }
    if (rc >= 0 && sa.valid == 0)
        rc = f != NULL && f->file != NULL
                 ? dafs_fstat(f->file, &st)
                 : dafs_h_getattr(fs->session, c->cred, handle_of(fs, ino), &st);
    else if (rc >= 0)
        rc = dafs_h_setattr(fs->session, c->cred, handle_of(fs, ino), &sa, &st);
    creds_put(&fs->creds, c);
    /* copied before the reply: once the kernel has it, it may FORGET ino */
    dafs_handle dir_handle = *handle_of(fs, ino);
    reply_attr(req, ino, rc, &st);
    /* a directory that may have lost search permission for someone: a
     * search bit went, or the owner or group changed while one is missing */
    if (rc == 0 && S_ISDIR(st.mode) &&
        (!old_known || (old_mode & 0111 & ~st.mode) != 0 ||
         ((old_uid != st.uid || old_gid != st.gid) && (st.mode & 0111) != 0111)))
        forget_children(fs, ino, &dir_handle);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    char target[PATH_MAX + 1];
    ssize_t n = dafs_h_readlink(fs->session, c->cred, handle_of(fs, ino), target, PATH_MAX);
    creds_put(&fs->creds, c);
    if (n < 0) {
        reply_err(req, (int)n);
        return;
    }
    target[n] = '\0';
    fuse_reply_readlink(req, target);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    dafs_handle h;
    struct dafs_stat st;
    int rc = dafs_h_mknod(fs->session, c->cred, handle_of(fs, parent), name, mode, rdev, &h, &st);
    creds_put(&fs->creds, c);
    reply_entry(req, rc, handle_of(fs, parent), name, &h, &st);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    dafs_handle h;
    struct dafs_stat st;
    int rc = dafs_h_mkdir(fs->session, c->cred, handle_of(fs, parent), name, mode, &h, &st);
    creds_put(&fs->creds, c);
    reply_entry(req, rc, handle_of(fs, parent), name, &h, &st);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    dafs_handle h;
    struct dafs_stat st;
    int rc = dafs_h_symlink(fs->session, c->cred, handle_of(fs, parent), name, target, &h, &st);
    creds_put(&fs->creds, c);
    reply_entry(req, rc, handle_of(fs, parent), name, &h, &st);
}

/* A file unlinked while open stays usable through its open state (the
 * server holds the open fd), so unlink is always a real unlink. */
static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    int rc = dafs_h_unlink(fs->session, c->cred, handle_of(fs, parent), name);
    creds_put(&fs->creds, c);
    reply_err(req, rc);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    int rc = dafs_h_rmdir(fs->session, c->cred, handle_of(fs, parent), name);
    creds_put(&fs->creds, c);
    reply_err(req, rc);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    struct dfuse *fs = fs_of(req);
    unsigned dflags = 0;
    if (flags & RENAME_NOREPLACE)
        dflags |= DAFS_RENAME_NOREPLACE;
    if (flags & RENAME_EXCHANGE)
        dflags |= DAFS_RENAME_EXCHANGE;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT: overlayfs only */
        return;
    }
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    int rc = dafs_h_rename(fs->session, c->cred, handle_of(fs, parent), name,
                           handle_of(fs, newparent), newname, dflags);
    creds_put(&fs->creds, c);
    if (rc == 0) /* the kernel moves its entry: so do we (see lookup_again) */
        nodes_rename(&fs->nodes, handle_of(fs, parent), name, handle_of(fs, newparent), newname,
                     (dflags & DAFS_RENAME_EXCHANGE) != 0);
    reply_err(req, rc);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    struct dafs_stat st;
    const dafs_handle *h = handle_of(fs, ino);
    int rc = lookup_again(fs, c, ino, &st);
    if (rc >= 0)
        rc = dafs_h_link(fs->session, c->cred, h, handle_of(fs, newparent), newname, &st);
    creds_put(&fs->creds, c);
    reply_entry(req, rc, handle_of(fs, newparent), newname, h, &st);
}

/* ---- files ---------------------------------------------------------------- */

/* With writeback caching the kernel reads around partial page writes and
 * handles O_APPEND itself: open for read and write, without append. */
static int adjust_open_flags(const struct dfuse *fs, int flags)
{
    if (fs->cfg.writeback_cache) {
        if ((flags & O_ACCMODE) == O_WRONLY)
            flags = (flags & ~O_ACCMODE) | O_RDWR;
        flags &= ~O_APPEND;
    }
    return flags;
}

static struct dfuse_file *file_new(struct dfuse_cred *c, const dafs_handle *h, int flags)
{
    struct dfuse_file *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->cred = c;
    f->handle = *h;
    f->append = (flags & O_APPEND) != 0;
    return f;
}

/* Drop an open file or directory: a file's open state is closed on the server. */
static void file_release(struct dfuse *fs, struct dfuse_file *f)
{
    if (f->ino != 0) /* a file, not a directory */
        nodes_hold(&fs->nodes, f->ino, f->cred->serial, -1);
    if (f->file != NULL)
        (void)dafs_close(f->file); /* best effort: the session's end releases it too */
    creds_put(&fs->creds, f->cred);
    free(f);
}

/* keep: the file did not change since the kernel last saw its attributes,
 * so its cached pages are still good.  O_APPEND files bypass the page cache:
 * through it the kernel splits a write at the first partial page, and each
 * piece would be appended separately; direct, one write() arrives whole (up
 * to max_write) and goes to the server as one atomic APPEND. */
static void file_set_info(const struct dfuse *fs, struct dfuse_file *f, struct fuse_file_info *fi,
                          int keep)
{
    fi->fh = (uint64_t)(uintptr_t)f;
    fi->direct_io = fs->cfg.direct_io || f->append ? 1 : 0;
    fi->keep_cache = keep ? 1 : 0;
    /* every write is on the server before it returns (no writeback cache),
     * but a close must still reach us: the kernel releases POSIX locks held
     * through the server only by FLUSH (ops_lock.c), and whether the
     * closer holds any is not known when the file is opened.  With the
     * kernel's own locks (local_locks) close has nothing for us: no FLUSH
     * round trip through the daemon per close. */
    fi->noflush = fs->cfg.local_locks && !fs->cfg.writeback_cache ? 1 : 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    int flags = adjust_open_flags(fs, fi->flags);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    const dafs_handle *h = handle_of(fs, ino);
    /* close-to-open for names: the directory must still be searchable, and
     * when the name the kernel reached the file by was removed or replaced
     * (by another client; the kernel's entry is cached), the open fails once
     * with ESTALE, on which the kernel walks the path again with
     * LOOKUP_REVAL and opens what the name leads to now (or fails with
     * ENOENT).  A second such open of the node (one reached without a path
     * walk: /proc/PID/fd) goes on by handle. */
    struct dafs_stat st;
    /* the server checks access as the caller once, here, keeps the open and
     * returns fresh attributes */
    int oflags = flags & O_ACCMODE;
    if ((flags & O_TRUNC) && oflags != O_RDONLY)
        oflags |= O_TRUNC;
    struct dfuse_file *f = file_new(c, h, flags);
    int rc = f == NULL ? -ENOMEM : open_by_name(fs, c, ino, oflags, &f->file, &st);
    if (rc == 0) { /* the long way: name and search permission, then OPEN_FH */
        rc = lookup_again(fs, c, ino, &st);
        if (rc >= 0 && nodes_moved(&fs->nodes, ino, rc == LOOKUP_MOVED))
            rc = -ESTALE;
        if (rc >= 0)
            rc = dafs_h_open_fh(fs->session, c->cred, h, oflags, &f->file, &st);
    } else if (rc == 1) {
        rc = 0;
    }
    /* close-to-open for data: if the file changed since the kernel last saw
     * it, its cached attributes and pages go */
    int keep = rc == 0 && !(oflags & O_TRUNC) && !nodes_attr_changed(&fs->nodes, ino, &st);
    if (rc == 0 && !keep) /* -ENOENT: the kernel holds no such inode (not an error) */
        (void)fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
    if (rc < 0) {
        free(f);
        creds_put(&fs->creds, c);
        reply_err(req, rc);
        return;
    }
    file_set_info(fs, f, fi, keep);
    f->ino = ino;
    nodes_hold(&fs->nodes, ino, c->serial, 1);
    if (fuse_reply_open(req, fi) != 0)
        file_release(fs, f);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    int flags = adjust_open_flags(fs, fi->flags);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    dafs_handle h;
    struct dafs_stat st;
    int created = 0;
    int open_flags = (flags & (O_ACCMODE | O_EXCL | O_TRUNC)) | O_CREAT;
    dafs_file *file = NULL;
    /* the creator keeps the access it asked for, whatever the new mode */
    int rc = dafs_h_open_file(fs->session, c->cred, handle_of(fs, parent), name, open_flags,
                              mode, &file, &h, &st, &created);
    struct dfuse_file *f = rc == 0 ? file_new(c, &h, flags) : NULL;
    struct fuse_entry_param e;
    if (rc == 0)
        rc = f == NULL ? -ENOMEM : -make_entry(fs, &h, &st, &e);
    if (rc < 0) {
        if (file != NULL)
            (void)dafs_close(file);
        free(f);
        creds_put(&fs->creds, c);
        reply_err(req, rc);
        return;
    }
    f->file = file;
    file_set_info(fs, f, fi, 0);
    nodes_set_parent(&fs->nodes, e.ino, handle_of(fs, parent), name);
    f->ino = e.ino;
    nodes_hold(&fs->nodes, e.ino, c->serial, 1);
    if (fuse_reply_create(req, &e, fi) != 0) {
        file_release(fs, f);
        nodes_forget(&fs->nodes, e.ino, 1);
    }
}

const dafs_cred *dfuse_file_cred(const struct fuse_file_info *fi)
{
    return ((const struct dfuse_file *)(uintptr_t)fi->fh)->cred->cred;
}

dafs_file *dfuse_file_state(const struct fuse_file_info *fi)
{
    return fi != NULL ? ((const struct dfuse_file *)(uintptr_t)fi->fh)->file : NULL;
}

/* Per-thread read buffer, registered with libdafs once so the server can
 * RMA file data straight into it; freed (and deregistered) at thread exit. */
struct iobuf {
    struct dfuse *fs;
    dafs_mr *mr;
    char data[];
};

static void iobuf_free(void *p)
{
    struct iobuf *b = p;
    if (b->mr != NULL)
        (void)dafs_mem_deregister(b->mr);
    free(b);
}

int dfuse_iobuf_init(struct dfuse *fs)
{
    fs->iobuf_size = 1u << 20;
    return pthread_key_create(&fs->iobuf_key, iobuf_free) == 0 ? 0 : -1;
}

static char *iobuf_get(struct dfuse *fs, size_t len)
{
    if (len > fs->iobuf_size)
        return NULL;
    struct iobuf *b = pthread_getspecific(fs->iobuf_key);
    if (b == NULL) {
        b = malloc(sizeof *b + fs->iobuf_size);
        if (b == NULL)
            return NULL;
        b->fs = fs;
        if (dafs_mem_register(fs->session, b->data, fs->iobuf_size, &b->mr) < 0)
            b->mr = NULL; /* still usable, only not zero copy */
        if (pthread_setspecific(fs->iobuf_key, b) != 0) {
            iobuf_free(b);
            return NULL;
        }
    }
    return b->data;
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)ino;
    struct dfuse *fs = fs_of(req);
    struct dfuse_file *f = file_of(fi);
    char *buf = iobuf_get(fs, size);
    char *heap = NULL;
    if (buf == NULL) {
        buf = heap = malloc(size ? size : 1);
        if (buf == NULL) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
    }
    ssize_t n = dafs_pread(f->file, buf, size, (uint64_t)off);
    if (n < 0)
        reply_err(req, (int)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(heap);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino;
    struct dfuse_file *f = file_of(fi);
    ssize_t n;
    if (f->append)
        n = dafs_append(f->file, buf, size, NULL);
    else
        n = dafs_pwrite(f->file, buf, size, (uint64_t)off);
    if (n < 0)
        reply_err(req, (int)n);
    else
        fuse_reply_write(req, (size_t)n);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    /* writes are already on the server (or, with writeback_cache, the
     * kernel wrote them back before FLUSH); what is left is close()'s
     * release of the closer's POSIX locks on the file */
    reply_err(req, dfuse_flush_locks(fs_of(req), ino, fi));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    struct dfuse *fs = fs_of(req);
    struct dfuse_file *f = file_of(fi);
    /* before the reply: once the kernel has it, it may FORGET the node */
    if (f->ino != 0)
        nodes_hold(&fs->nodes, f->ino, f->cred->serial, -1);
    f->ino = 0;
    fuse_reply_err(req, 0); /* the kernel need not wait for the server's CLOSE */
    file_release(fs, f);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    (void)ino;
    struct dfuse_file *f = file_of(fi);
    reply_err(req, datasync ? dafs_fdatasync(f->file) : dafs_fsync(f->file));
}

/* ---- directories ---------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    const dafs_handle *h = handle_of(fs, ino);
    int rc = dafs_h_access(fs->session, c->cred, h, R_OK);
    struct dfuse_file *d = rc == 0 ? file_new(c, h, 0) : NULL;
    if (rc == 0 && d == NULL)
        rc = -ENOMEM;
    if (rc < 0) {
        creds_put(&fs->creds, c);
        reply_err(req, rc);
        return;
    }
    fi->fh = (uint64_t)(uintptr_t)d;
    if (fuse_reply_open(req, fi) != 0) {
        creds_put(&fs->creds, c);
        free(d);
    }
}

struct dir_fill {
    fuse_req_t req;
    char *buf;
    size_t size, used;
};

static int dir_fill_entry(void *arg, const dafs_dirent *ent, uint64_t next_cookie)
{
    struct dir_fill *df = arg;
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = ent->ino;
    st.st_mode = ent->type;
    size_t need = fuse_add_direntry(df->req, df->buf + df->used, df->size - df->used, ent->name,
                                    &st, (off_t)next_cookie);
    if (need > df->size - df->used)
        return 1; /* full: this entry starts the next readdir */
    df->used += need;
    return 0;
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    (void)ino;
    struct dfuse *fs = fs_of(req);
    struct dfuse_file *d = file_of(fi);
    struct dir_fill df = {.req = req, .buf = malloc(size ? size : 1), .size = size};
    if (df.buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    uint64_t cookie = (uint64_t)off;
    int eof = 0;
    int rc = dafs_h_readdir(fs->session, d->cred->cred, &d->handle, &cookie, dir_fill_entry, &df,
                            &eof);
    if (rc < 0 && df.used == 0)
        reply_err(req, rc);
    else
        fuse_reply_buf(req, df.buf, df.used);
    free(df.buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    op_release(req, ino, fi);
}

/* fsync(2) of a directory: its entries, and every other name changed on the
 * export before it, reach stable storage (COMMIT of the directory). */
static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_file *f = file_of(fi);
    reply_err(req, dafs_h_commit(fs->session, f->cred->cred, handle_of(fs, ino), datasync));
}

/* ---- whole file system ---------------------------------------------------- */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    struct dafs_statfs d;
    int rc = dafs_h_statfs(fs->session, c->cred, handle_of(fs, ino), &d);
    creds_put(&fs->creds, c);
    if (rc < 0) {
        reply_err(req, rc);
        return;
    }
    struct statvfs sv;
    memset(&sv, 0, sizeof sv);
    sv.f_bsize = d.bsize;
    sv.f_frsize = d.frsize;
    sv.f_blocks = d.blocks;
    sv.f_bfree = d.bfree;
    sv.f_bavail = d.bavail;
    sv.f_files = d.files;
    sv.f_ffree = d.ffree;
    sv.f_favail = d.ffree;
    sv.f_namemax = d.namemax;
    fuse_reply_statfs(req, &sv);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = req_cred(req);
    if (c == NULL)
        return;
    int rc = dafs_h_access(fs->session, c->cred, handle_of(fs, ino), mask);
    creds_put(&fs->creds, c);
    reply_err(req, rc);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    struct dfuse *fs = userdata;
    dafs_session_info info;
    conn->max_write = 1u << 20;
    /* an O_APPEND write arrives whole up to max_write and must fit one
     * APPEND request */
    if (dafs_session_get_info(fs->session, &info) == 0 && info.max_io > 0 &&
        info.max_io < conn->max_write)
        conn->max_write = info.max_io;
    /* The kernel takes the smaller of the device's read-ahead and this, so
     * raise the device's first (the mount exists: mount(2) has returned). */
    if (fs->cfg.read_ahead_kb > 0 &&
        dfuse_set_readahead(fs->cfg.mountpoint, fs->cfg.read_ahead_kb) == 0)
        conn->max_readahead = fs->cfg.read_ahead_kb * 1024u;
    else
        conn->max_readahead = 1u << 20;
    if (fs->cfg.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    else
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
    conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
    dfuse_lock_init(fs, conn);
    dfuse_ext_init(fs, conn);
}

const struct fuse_lowlevel_ops dfuse_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .forget = op_forget,
    .forget_multi = op_forget_multi,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .readlink = op_readlink,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_rmdir,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .open = op_open,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .release = op_release,
    .fsync = op_fsync,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .fsyncdir = op_fsyncdir,
    .statfs = op_statfs,
    .access = op_access,
    .create = op_create,
    .fallocate = dfuse_op_fallocate,
    .copy_file_range = dfuse_op_copy_file_range,
    .lseek = dfuse_op_lseek,
    .setxattr = dfuse_op_setxattr,
    .getxattr = dfuse_op_getxattr,
    .listxattr = dfuse_op_listxattr,
    .removexattr = dfuse_op_removexattr,
    .readdirplus = dfuse_op_readdirplus,
    .getlk = dfuse_op_getlk,
    .setlk = dfuse_op_setlk,
    .flock = dfuse_op_flock,
};
