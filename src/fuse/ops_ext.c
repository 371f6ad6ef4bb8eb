/*
 * ops_ext.c — the FUSE handlers for the protocol's extra operations:
 * fallocate, copy_file_range (done on the server: no data passes through
 * this process), lseek SEEK_DATA/SEEK_HOLE, extended attributes (user.*,
 * security.*, and POSIX ACLs, which the kernel then enforces itself:
 * FUSE_CAP_POSIX_ACL) and readdirplus (entries with handle and attributes,
 * so listing a directory needs no LOOKUP per name; "." and ".." included).
 *
 * Identity: the file handlers act with the credential of the open (as
 * reads and writes do); the others with the caller's.
 *
 * Readdirplus and lookup counts: every entry handed to the kernel with a
 * node id counts one lookup (nodes_ref) except "." and "..", which the
 * kernel never instantiates; an entry that no longer fits the buffer is
 * not handed over and its count is dropped again.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dafs_fuse.h"


static void reply_rc(fuse_req_t req, int rc)
{
    if (rc < 0 && fs_of(req)->cfg.debug)
        fprintf(stderr, "dafs-fuse: request failed: %s\n", dafs_strerror(rc));
    fuse_reply_err(req, dfuse_errno(rc));
}

void dfuse_ext_init(struct dfuse *fs, struct fuse_conn_info *conn)
{
    (void)fs;
    /* The kernel checks ACLs (with default_permissions, see main.c) from
     * the system.posix_acl_* attributes it reads through getxattr. */
    if (conn->capable & FUSE_CAP_POSIX_ACL)
        conn->want |= FUSE_CAP_POSIX_ACL;
    /* Always readdirplus: it is the listing that carries "." and "..". */
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

/* ---- files ---------------------------------------------------------------- */

void dfuse_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                        struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    dafs_file *f = dfuse_file_state(fi); /* under the open's access, as a write */
    int rc = offset < 0 || length <= 0 ? -EINVAL
             : f != NULL ? dafs_fallocate(f, mode, (uint64_t)offset, (uint64_t)length)
                         : dafs_h_fallocate(fs->session, dfuse_file_cred(fi), handle_of(fs, ino),
                                            mode, (uint64_t)offset, (uint64_t)length, NULL);
    reply_rc(req, rc);
}

void dfuse_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                              struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                              struct fuse_file_info *fi_out, size_t len, int flags)
{
    struct dfuse *fs = fs_of(req);
    if (flags != 0 || off_in < 0 || off_out < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    /* under both opens' access (a 0444 copy target stays writable through
     * the open that created it, as for write) */
    dafs_file *in = dfuse_file_state(fi_in), *out = dfuse_file_state(fi_out);
    ssize_t n = in != NULL && out != NULL
                    ? dafs_copy_range(in, (uint64_t)off_in, out, (uint64_t)off_out, len)
                    : dafs_h_copy_range(fs->session, dfuse_file_cred(fi_out),
                                        handle_of(fs, ino_in), (uint64_t)off_in,
                                        handle_of(fs, ino_out), (uint64_t)off_out, len);
    if (n < 0)
        reply_rc(req, (int)n);
    else
        fuse_reply_write(req, (size_t)n);
}

void dfuse_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                    struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
        fuse_reply_err(req, EINVAL); /* the kernel handles the others itself */
        return;
    }
    dafs_file *f = dfuse_file_state(fi);
    int64_t where = f != NULL ? dafs_seek(f, (uint64_t)off, whence)
                              : dafs_h_seek(fs->session, dfuse_file_cred(fi), handle_of(fs, ino),
                                            (uint64_t)off, whence);
    if (where < 0)
        reply_rc(req, (int)where);
    else
        fuse_reply_lseek(req, (off_t)where);
}

/* ---- extended attributes ------------------------------------------------- */

static int is_acl_name(const char *name)
{
    return strncmp(name, "system.posix_acl_", 17) == 0;
}

/*
 * "This object has no extended attributes", remembered for attr_timeout.
 * The kernel asks for system.posix_acl_access at the first permission check
 * of every object a non-owner touches, and ls -l asks for security.selinux
 * and the ACL of every file it lists: nearly always for nothing.  So the
 * first question about an object is answered with one LISTXATTR; when the
 * list is empty that is remembered (keyed by node id and handle, so a node
 * id reused for another object does not match), and questions within
 * attr_timeout are answered here.  Changes through this mount forget the
 * entry; changes by other clients show after attr_timeout, as attributes do.
 */
#define NOXATTR_SLOTS 4096

struct noxattr_slot {
    fuse_ino_t ino;
    uint64_t handle_hash;
    struct timespec until;
};

static struct noxattr_slot noxattr[NOXATTR_SLOTS];
static pthread_mutex_t noxattr_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t handle_hash(const dafs_handle *h)
{
    uint64_t x = 1469598103934665603ull;
    for (unsigned i = 0; i < h->len && i < sizeof h->data; i++)
        x = (x ^ h->data[i]) * 1099511628211ull;
    return x;
}

static struct noxattr_slot *noxattr_slot_of(fuse_ino_t ino)
{
    return &noxattr[(ino / 8) % NOXATTR_SLOTS]; /* node ids are addresses */
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int noxattr_known(struct dfuse *fs, fuse_ino_t ino)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t hh = handle_hash(handle_of(fs, ino));
    pthread_mutex_lock(&noxattr_lock);
    struct noxattr_slot *e = noxattr_slot_of(ino);
    int known = e->ino == ino && e->handle_hash == hh && ts_before(&now, &e->until);
    pthread_mutex_unlock(&noxattr_lock);
    return known;
}

static void noxattr_set(struct dfuse *fs, fuse_ino_t ino, int empty)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    double t = fs->cfg.attr_timeout;
    until.tv_sec += (time_t)t;
    until.tv_nsec += (long)((t - (double)(time_t)t) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    uint64_t hh = handle_hash(handle_of(fs, ino));
    pthread_mutex_lock(&noxattr_lock);
    struct noxattr_slot *e = noxattr_slot_of(ino);
    if (empty && t > 0)
        *e = (struct noxattr_slot){.ino = ino, .handle_hash = hh, .until = until};
    else if (e->ino == ino)
        e->ino = 0;
    pthread_mutex_unlock(&noxattr_lock);
}

/* Whether ino has no xattrs at all: from the memo, else from one LISTXATTR
 * as the caller (which is then remembered).  0 when it has some, or when
 * the list could not be read (the real question then goes to the server). */
static int has_no_xattrs(struct dfuse *fs, const dafs_cred *cred, fuse_ino_t ino)
{
    if (noxattr_known(fs, ino))
        return 1;
    ssize_t n = dafs_h_listxattr(fs->session, cred, handle_of(fs, ino), NULL, 0);
    if (n == 0 || n == -EOPNOTSUPP) {
        noxattr_set(fs, ino, 1);
        return 1;
    }
    return 0;
}

void dfuse_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                       size_t size, int flags)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = NULL;
    int rc = dfuse_caller_cred(req, &c);
    if (rc == 0)
        rc = dafs_h_setxattr(fs->session, c->cred, handle_of(fs, ino), name, value, size, flags);
    creds_put(&fs->creds, c);
    noxattr_set(fs, ino, 0);
    reply_rc(req, rc);
}

void dfuse_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
    struct dfuse *fs = fs_of(req);
    if (fs->cfg.debug)
        fprintf(stderr, "dafs-fuse: getxattr %s size %zu\n", name, size);
    char *buf = size > 0 ? malloc(size) : NULL;
    if (size > 0 && buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct dfuse_cred *c = NULL;
    ssize_t n = dfuse_caller_cred(req, &c);
    if (n == 0)
        n = has_no_xattrs(fs, c->cred, ino)
                ? -ENODATA
                : dafs_h_getxattr(fs->session, c->cred, handle_of(fs, ino), name, buf, size);
    creds_put(&fs->creds, c);
    /* An export without ACL support: the kernel asks for ACLs on every
     * permission check, and "none" is the right answer. */
    if (n == -EOPNOTSUPP && is_acl_name(name))
        n = -ENODATA;
    if (n < 0)
        reply_rc(req, (int)n);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

void dfuse_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    struct dfuse *fs = fs_of(req);
    char *buf = size > 0 ? malloc(size) : NULL;
    if (size > 0 && buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    struct dfuse_cred *c = NULL;
    ssize_t n = dfuse_caller_cred(req, &c);
    if (n == 0)
        n = noxattr_known(fs, ino)
                ? 0
                : dafs_h_listxattr(fs->session, c->cred, handle_of(fs, ino), buf, size);
    if (n >= 0)
        noxattr_set(fs, ino, n == 0);
    creds_put(&fs->creds, c);
    if (n < 0)
        reply_rc(req, (int)n);
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

void dfuse_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    struct dfuse *fs = fs_of(req);
    struct dfuse_cred *c = NULL;
    int rc = dfuse_caller_cred(req, &c);
    if (rc == 0)
        rc = dafs_h_removexattr(fs->session, c->cred, handle_of(fs, ino), name);
    creds_put(&fs->creds, c);
    noxattr_set(fs, ino, 0);
    reply_rc(req, rc);
}

/* ---- readdirplus ----------------------------------------------------------- */

struct plus_fill {
    fuse_req_t req;
    struct dfuse *fs;
    const dafs_handle *dir; /* the directory listed */
    char *buf;
    size_t size, used;
};

static int is_dot(const char *name)
{
    return name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'));
}

static int plus_fill_entry(void *arg, const dafs_dirent *ent, const dafs_handle *h,
                           const struct dafs_stat *st, unsigned flags, uint64_t next_cookie)
{
    struct plus_fill *pf = arg;
    struct fuse_entry_param e;
    memset(&e, 0, sizeof e);
    e.attr.st_ino = ent->ino;
    e.attr.st_mode = ent->type;
    if (h != NULL && st != NULL && !is_dot(ent->name)) {
        e.ino = nodes_ref(&pf->fs->nodes, h);
        if (e.ino != 0) { /* out of memory: hand it over as a plain entry */
            e.attr_timeout = pf->fs->cfg.attr_timeout;
            e.entry_timeout = pf->fs->cfg.entry_timeout;
            dfuse_to_stat(st, &e.attr);
        }
    }
    size_t need = fuse_add_direntry_plus(pf->req, pf->buf + pf->used, pf->size - pf->used,
                                         ent->name, &e, (off_t)next_cookie);
    if (need > pf->size - pf->used) {
        if (e.ino != 0)
            nodes_forget(&pf->fs->nodes, e.ino, 1); /* not handed over */
        return 1; /* full: this entry starts the next call */
    }
    if (e.ino != 0 && (flags & DAFS_DIRENT_NO_XATTRS))
        noxattr_set(pf->fs, e.ino, 1); /* spares ls -l and ACL checks a round trip */
    if (e.ino != 0) {
        /* as a LOOKUP would: where the kernel reached the node (an open
         * checks that name and its directory's search permission again) and
         * the attributes it was given (close-to-open compares with them) */
        nodes_set_parent(&pf->fs->nodes, e.ino, pf->dir, ent->name);
        nodes_note_attr(&pf->fs->nodes, e.ino, st);
    }
    pf->used += need;
    return 0;
}

void dfuse_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          struct fuse_file_info *fi)
{
    struct dfuse *fs = fs_of(req);
    struct plus_fill pf = {.req = req, .fs = fs, .dir = handle_of(fs, ino),
                           .buf = malloc(size ? size : 1), .size = size};
    if (pf.buf == NULL) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    uint64_t cookie = (uint64_t)off;
    int eof = 0;
    /* the credential of the opendir, as for readdir */
    int rc = dafs_h_readdirplus(fs->session, dfuse_file_cred(fi), handle_of(fs, ino), &cookie,
                                plus_fill_entry, &pf, &eof);
    if (rc < 0 && pf.used == 0)
        reply_rc(req, rc);
    else
        fuse_reply_buf(req, pf.buf, pf.used);
    free(pf.buf);
}
