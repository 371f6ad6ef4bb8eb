/*
 * handle.c — the handle-level API (dafs_h_*), for FUSE and other stacking
 * layers that keep their own handle cache and act for many users.
 *
 * Each call is one request (ops.c) on handles the server issued, under an
 * explicit credential (NULL = the session default), with no path walking
 * and no symlink following.  The public dafs_handle has the wire handle's
 * layout but is its own type, so both sides are checked (1..64 bytes) and
 * copied explicitly.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <string.h>

#include "client.h"

/* Common argument checks: session, credential, a handle, a name. */
static int prepare(dafs_session *s, const dafs_cred *c, const dafs_handle *h, const char *name,
                   uint32_t *cred, dafs_fh *fh)
{
    if (s == NULL || check_handle(h) < 0 || cred_id_for(s, c, cred) < 0)
        return -EINVAL;
    fh_from_handle(h, fh);
    return name != NULL ? check_name(name) : 0;
}

/* Fill the optional outputs from a handle and attributes. */
static void put_result(const dafs_fh *fh, const dafs_attr *attr, dafs_handle *out,
                       struct dafs_stat *st)
{
    if (out != NULL)
        fh_to_handle(fh, out);
    if (st != NULL)
        attr_to_stat(attr, st);
}

int dafs_h_root(dafs_session *s, dafs_handle *out, struct dafs_stat *st)
{
    if (s == NULL)
        return -EINVAL;
    dafs_attr attr;
    int rc = op_getattr(s, 0, &s->root, &attr);
    if (rc == 0)
        put_result(&s->root, &attr, out, st);
    return rc;
}

int dafs_h_lookup(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                  dafs_handle *out, struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh d, fh;
    dafs_attr attr;
    int rc = name == NULL ? -EINVAL : prepare(s, c, dir, name, &cred, &d);
    if (rc == 0)
        rc = op_lookup(s, cred, &d, name, &fh, &attr);
    if (rc == 0)
        put_result(&fh, &attr, out, st);
    return rc;
}

int dafs_h_lookupp(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, dafs_handle *out,
                   struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh d, fh;
    dafs_attr attr;
    int rc = prepare(s, c, dir, NULL, &cred, &d);
    if (rc == 0)
        rc = op_lookupp(s, cred, &d, &fh, &attr);
    if (rc == 0)
        put_result(&fh, &attr, out, st);
    return rc;
}

int dafs_h_getattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                   struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh f;
    dafs_attr attr;
    int rc = st == NULL ? -EINVAL : prepare(s, c, fh, NULL, &cred, &f);
    if (rc == 0)
        rc = op_getattr(s, cred, &f, &attr);
    if (rc == 0)
        attr_to_stat(&attr, st);
    return rc;
}

int dafs_h_setattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                   const dafs_setattr *sa, struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh f;
    dafs_attr attr;
    int rc = sa == NULL ? -EINVAL : prepare(s, c, fh, NULL, &cred, &f);
    if (rc < 0)
        return rc;
    /* The public DAFS_SETATTR_* bits are the wire's DAFS_SET_* values. */
    dafs_setattr_req req = {.valid = sa->valid, .mode = sa->mode & 07777u, .uid = sa->uid,
                            .gid = sa->gid, .size = sa->size,
                            .atime_sec = sa->atime.tv_sec, .atime_nsec = sa->atime.tv_nsec,
                            .mtime_sec = sa->mtime.tv_sec, .mtime_nsec = sa->mtime.tv_nsec};
    if ((sa->valid & DAFS_SETATTR_SIZE) && sa->size > (uint64_t)INT64_MAX)
        return -EINVAL;
    rc = op_setattr(s, cred, &f, &req, &attr);
    if (rc == 0 && st != NULL)
        attr_to_stat(&attr, st);
    return rc;
}

int dafs_h_access(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, int mask)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare(s, c, fh, NULL, &cred, &f);
    return rc == 0 ? op_access(s, cred, &f, mask) : rc;
}

static int map_h_open_flags(int flags, uint32_t *w)
{
    switch (flags & O_ACCMODE) {
    case O_RDONLY: *w = DAFS_OPEN_RDONLY; break;
    case O_WRONLY: *w = DAFS_OPEN_WRONLY; break;
    case O_RDWR: *w = DAFS_OPEN_RDWR; break;
    default: return -EINVAL;
    }
    if (flags & O_CREAT)
        *w |= DAFS_OPEN_CREAT;
    if (flags & O_EXCL)
        *w |= DAFS_OPEN_EXCL;
    if (flags & O_TRUNC)
        *w |= DAFS_OPEN_TRUNC;
    return 0;
}

int dafs_h_open(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                int flags, mode_t mode, dafs_handle *out, struct dafs_stat *st, int *created)
{
    uint32_t cred, wflags;
    dafs_fh d, fh;
    dafs_attr attr;
    int made = 0;
    int rc = name == NULL ? -EINVAL : prepare(s, c, dir, name, &cred, &d);
    if (rc == 0)
        rc = map_h_open_flags(flags, &wflags);
    if (rc == 0)
        rc = op_dirop(s, cred, DAFS_OP_OPEN, &d, name, wflags, (uint32_t)mode & 07777u, &fh,
                      &attr, &made, NULL);
    if (rc < 0)
        return rc;
    put_result(&fh, &attr, out, st);
    if (created != NULL)
        *created = made;
    return 0;
}

int dafs_h_open_file(dafs_session *s, const dafs_cred *c, const dafs_handle *dir,
                     const char *name, int flags, mode_t mode, dafs_file **file,
                     dafs_handle *out, struct dafs_stat *st, int *created)
{
    uint32_t cred, wflags;
    dafs_fh d, fh;
    dafs_attr attr;
    dafs_stateid stateid = 0;
    int made = 0;
    if (file == NULL)
        return -EINVAL;
    *file = NULL;
    int rc = name == NULL ? -EINVAL : prepare(s, c, dir, name, &cred, &d);
    if (rc == 0)
        rc = map_h_open_flags(flags, &wflags);
    if (rc == 0)
        rc = op_dirop(s, cred, DAFS_OP_OPEN, &d, name, wflags, (uint32_t)mode & 07777u, &fh,
                      &attr, &made, &stateid);
    if (rc < 0)
        return rc;
    if (!S_ISREG(attr.mode)) { /* data I/O is for regular files only */
        (void)op_close(s, cred, &fh, stateid);
        return S_ISDIR(attr.mode) ? -EISDIR : S_ISLNK(attr.mode) ? -ELOOP : -EINVAL;
    }
    rc = file_new(s, cred, &fh, flags & O_ACCMODE, stateid, file);
    if (rc < 0)
        return rc;
    put_result(&fh, &attr, out, st);
    if (created != NULL)
        *created = made;
    return 0;
}

int dafs_h_open_fh(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, int flags,
                   dafs_file **file, struct dafs_stat *st)
{
    uint32_t cred, wflags;
    dafs_fh f;
    dafs_attr attr;
    dafs_stateid stateid = 0;
    if (file == NULL)
        return -EINVAL;
    *file = NULL;
    if ((flags & (O_CREAT | O_EXCL)) != 0)
        return -EINVAL; /* the file exists: create it with dafs_h_open_file */
    int rc = prepare(s, c, fh, NULL, &cred, &f);
    if (rc == 0)
        rc = map_h_open_flags(flags, &wflags);
    if (rc == 0)
        rc = op_open_fh(s, cred, &f, wflags, &attr, &stateid);
    if (rc < 0)
        return rc;
    rc = file_new(s, cred, &f, flags & O_ACCMODE, stateid, file);
    if (rc == 0 && st != NULL)
        attr_to_stat(&attr, st);
    return rc;
}

int dafs_h_mkdir(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                 mode_t mode, dafs_handle *out, struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh d, fh;
    dafs_attr attr;
    int rc = name == NULL ? -EINVAL : prepare(s, c, dir, name, &cred, &d);
    if (rc == 0)
        rc = op_dirop(s, cred, DAFS_OP_MKDIR, &d, name, 0, (uint32_t)mode & 07777u, &fh, &attr,
                      NULL, NULL);
    if (rc == 0)
        put_result(&fh, &attr, out, st);
    return rc;
}

int dafs_h_mknod(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                 mode_t mode, uint64_t rdev, dafs_handle *out, struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh d, fh;
    dafs_attr attr;
    int rc = name == NULL ? -EINVAL : prepare(s, c, dir, name, &cred, &d);
    if (rc == 0)
        rc = op_mknod(s, cred, &d, name, (uint32_t)mode, rdev, &fh, &attr);
    if (rc == 0)
        put_result(&fh, &attr, out, st);
    return rc;
}

int dafs_h_symlink(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                   const char *target, dafs_handle *out, struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh d, fh;
    dafs_attr attr;
    int rc = name == NULL || target == NULL ? -EINVAL : prepare(s, c, dir, name, &cred, &d);
    if (rc == 0)
        rc = op_symlink(s, cred, &d, name, target, &fh, &attr);
    if (rc == 0)
        put_result(&fh, &attr, out, st);
    return rc;
}

ssize_t dafs_h_readlink(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, char *buf,
                        size_t len)
{
    uint32_t cred;
    dafs_fh f;
    int rc = buf == NULL || len == 0 ? -EINVAL : prepare(s, c, fh, NULL, &cred, &f);
    if (rc < 0)
        return rc;
    char target[DAFS_PATH_MAX + 1];
    size_t tlen;
    rc = op_readlink(s, cred, &f, target, sizeof target, &tlen);
    if (rc < 0)
        return rc;
    size_t n = tlen < len ? tlen : len;
    memcpy(buf, target, n);
    if (n < len)
        buf[n] = '\0';
    return (ssize_t)n;
}

int dafs_h_link(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                const dafs_handle *newdir, const char *newname, struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh f, d;
    dafs_attr attr;
    int rc = newname == NULL || check_handle(fh) < 0 ? -EINVAL
                                                    : prepare(s, c, newdir, newname, &cred, &d);
    if (rc < 0)
        return rc;
    fh_from_handle(fh, &f);
    rc = op_link(s, cred, &f, &d, newname, &attr);
    if (rc == 0 && st != NULL)
        attr_to_stat(&attr, st);
    return rc;
}

static int h_remove(dafs_session *s, const dafs_cred *c, const dafs_handle *dir,
                    const char *name, uint16_t opcode)
{
    uint32_t cred;
    dafs_fh d;
    int rc = name == NULL ? -EINVAL : prepare(s, c, dir, name, &cred, &d);
    if (rc == 0)
        rc = op_dirop(s, cred, opcode, &d, name, 0, 0, NULL, NULL, NULL, NULL);
    return rc;
}

int dafs_h_unlink(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name)
{
    return h_remove(s, c, dir, name, DAFS_OP_REMOVE);
}

int dafs_h_rmdir(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name)
{
    return h_remove(s, c, dir, name, DAFS_OP_RMDIR);
}

int dafs_h_rename(dafs_session *s, const dafs_cred *c, const dafs_handle *olddir,
                  const char *oldname, const dafs_handle *newdir, const char *newname,
                  unsigned flags)
{
    uint32_t cred;
    dafs_fh sd, dd;
    int rc = oldname == NULL || newname == NULL ? -EINVAL
                                                : prepare(s, c, olddir, oldname, &cred, &sd);
    if (rc == 0)
        rc = prepare(s, c, newdir, newname, &cred, &dd);
    if (rc == 0)
        rc = op_rename(s, cred, &sd, oldname, &dd, newname, flags);
    return rc;
}

ssize_t dafs_h_pread(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, void *buf,
                     size_t len, uint64_t offset)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare(s, c, fh, NULL, &cred, &f);
    return rc == 0 ? file_io(s, cred, &f, 0, false, buf, len, offset) : rc;
}

ssize_t dafs_h_pwrite(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                      const void *buf, size_t len, uint64_t offset)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare(s, c, fh, NULL, &cred, &f);
    /* The buffer is only read (RMA-read by the server, or copied inline). */
    return rc == 0 ? file_io(s, cred, &f, 0, true, (void *)(uintptr_t)buf, len, offset) : rc;
}

ssize_t dafs_h_append(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                      const void *buf, size_t len, uint64_t *offset)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare(s, c, fh, NULL, &cred, &f);
    return rc == 0 ? file_append(s, cred, &f, 0, buf, len, offset) : rc;
}

int dafs_h_commit(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, int datasync)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare(s, c, fh, NULL, &cred, &f);
    return rc == 0 ? op_commit(s, cred, &f, datasync ? DAFS_DATA_SYNC : DAFS_FILE_SYNC, 0) : rc;
}

int dafs_h_statfs(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                  struct dafs_statfs *st)
{
    uint32_t cred;
    dafs_fh f;
    int rc = st == NULL ? -EINVAL : prepare(s, c, fh, NULL, &cred, &f);
    return rc == 0 ? op_statfs(s, cred, &f, st) : rc;
}
