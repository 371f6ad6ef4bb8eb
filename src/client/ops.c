/*
 * ops.c — one function per namespace/attribute request.
 *
 * Each builds one request on a handle (plus a name), runs it through the
 * engine under the given credential id (0 = the session default) and copies
 * what the caller wants out of the reply before the slot is released.  Path
 * walking (path.c) and the handle-level API (handle.c) are both built on
 * these, so every request of a kind is encoded in exactly one place.
 */
#include <errno.h>
#include <string.h>

#include "client.h"

static dafs_bytes name_bytes(const char *name)
{
    return (dafs_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
}

static void init_request(dafs_request *req, uint16_t opcode, uint32_t cred)
{
    memset(req, 0, sizeof *req);
    req->hdr.opcode = opcode;
    req->hdr.cred = cred;
}

int check_name(const char *name)
{
    if (name == NULL)
        return -EINVAL;
    size_t len = strnlen(name, DAFS_NAME_MAX + 1);
    if (len == 0)
        return -ENOENT;
    if (len > DAFS_NAME_MAX)
        return -ENAMETOOLONG;
    return strchr(name, '/') != NULL ? -EINVAL : 0;
}

/* Run a request whose reply carries a handle and attributes. */
static int call_fh_attr(dafs_session *s, dafs_request *req, dafs_fh *fh, dafs_attr *attr,
                        int *created, dafs_stateid *stateid)
{
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, req, &rep, &slot);
    if (rc < 0)
        return rc;
    if (fh != NULL)
        *fh = rep.u.fh_attr.fh;
    if (attr != NULL)
        *attr = rep.u.fh_attr.attr;
    if (created != NULL)
        *created = rep.u.fh_attr.created != 0;
    if (stateid != NULL)
        *stateid = rep.u.fh_attr.stateid;
    engine_release(slot);
    return 0;
}

/* Run a request whose reply carries attributes only. */
static int call_attr(dafs_session *s, dafs_request *req, dafs_attr *attr)
{
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, req, &rep, &slot);
    if (rc < 0)
        return rc;
    if (attr != NULL)
        *attr = rep.u.attr.attr;
    engine_release(slot);
    return 0;
}

int op_lookup(dafs_session *s, uint32_t cred, const dafs_fh *dir, const char *name,
              dafs_fh *fh, dafs_attr *attr)
{
    dafs_request req;
    init_request(&req, DAFS_OP_LOOKUP, cred);
    req.u.dirop.dir = *dir;
    req.u.dirop.name = name_bytes(name);
    return call_fh_attr(s, &req, fh, attr, NULL, NULL);
}

int op_lookupp(dafs_session *s, uint32_t cred, const dafs_fh *dir, dafs_fh *fh,
               dafs_attr *attr)
{
    dafs_request req;
    init_request(&req, DAFS_OP_LOOKUPP, cred);
    req.u.fh.fh = *dir;
    return call_fh_attr(s, &req, fh, attr, NULL, NULL);
}

int op_getattr(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_attr *attr)
{
    dafs_request req;
    init_request(&req, DAFS_OP_GETATTR, cred);
    req.u.fh.fh = *fh;
    return call_attr(s, &req, attr);
}

int client_getattr(dafs_session *s, const dafs_fh *fh, dafs_attr *attr)
{
    return op_getattr(s, 0, fh, attr);
}

int op_setattr(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_setattr_req *sa,
               dafs_attr *attr)
{
    if ((sa->valid & ~DAFS_SET_ALL) != 0 || sa->atime_nsec >= 1000000000u ||
        sa->mtime_nsec >= 1000000000u)
        return -EINVAL;
    dafs_request req;
    init_request(&req, DAFS_OP_SETATTR, cred);
    sa->fh = *fh;
    req.u.setattr = *sa;
    return call_attr(s, &req, attr);
}

int op_readlink(dafs_session *s, uint32_t cred, const dafs_fh *fh, char *buf, size_t len,
                size_t *target_len)
{
    dafs_request req;
    init_request(&req, DAFS_OP_READLINK, cred);
    req.u.fh.fh = *fh;
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    const dafs_bytes *t = &rep.u.readlink.target;
    if (t->len == 0 || t->len > DAFS_PATH_MAX || t->len >= len) {
        engine_release(slot);
        return -DAFS_EPROTO;
    }
    memcpy(buf, t->ptr, t->len);
    buf[t->len] = '\0';
    *target_len = t->len;
    engine_release(slot);
    return memchr(buf, '\0', *target_len) != NULL ? -DAFS_EPROTO : 0;
}

int op_dirop(dafs_session *s, uint32_t cred, uint16_t opcode, const dafs_fh *dir,
             const char *name, uint32_t flags, uint32_t mode, dafs_fh *fh, dafs_attr *attr,
             int *created, dafs_stateid *stateid)
{
    dafs_request req;
    init_request(&req, opcode, cred);
    req.u.dirop.dir = *dir;
    req.u.dirop.name = name_bytes(name);
    req.u.dirop.flags = flags;
    if (opcode == DAFS_OP_OPEN && stateid == NULL)
        req.u.dirop.flags |= DAFS_OPEN_NOSTATE; /* the caller keeps no open state */
    req.u.dirop.mode = mode;
    if (opcode == DAFS_OP_REMOVE || opcode == DAFS_OP_RMDIR)
        return engine_call_simple(s, &req);
    dafs_stateid sid = 0;
    int rc = call_fh_attr(s, &req, fh, attr, created, &sid);
    if (stateid != NULL)
        *stateid = rc == 0 ? sid : 0;
    return rc;
}

int op_open_fh(dafs_session *s, uint32_t cred, const dafs_fh *fh, uint32_t flags,
               dafs_attr *attr, dafs_stateid *stateid)
{
    dafs_request req;
    init_request(&req, DAFS_OP_OPEN_FH, cred);
    req.u.open_fh.fh = *fh;
    req.u.open_fh.flags = flags;
    return call_fh_attr(s, &req, NULL, attr, NULL, stateid);
}

int op_symlink(dafs_session *s, uint32_t cred, const dafs_fh *dir, const char *name,
               const char *target, dafs_fh *fh, dafs_attr *attr)
{
    size_t tlen = strnlen(target, DAFS_PATH_MAX + 1);
    if (tlen == 0)
        return -ENOENT;
    if (tlen > DAFS_PATH_MAX)
        return -ENAMETOOLONG;
    dafs_request req;
    init_request(&req, DAFS_OP_SYMLINK, cred);
    req.u.symlink.dir = *dir;
    req.u.symlink.name = name_bytes(name);
    req.u.symlink.target = (dafs_bytes){(const uint8_t *)target, (uint32_t)tlen};
    return call_fh_attr(s, &req, fh, attr, NULL, NULL);
}

int op_mknod(dafs_session *s, uint32_t cred, const dafs_fh *dir, const char *name,
             uint32_t mode, uint64_t rdev, dafs_fh *fh, dafs_attr *attr)
{
    dafs_request req;
    init_request(&req, DAFS_OP_MKNOD, cred);
    req.u.mknod.dir = *dir;
    req.u.mknod.name = name_bytes(name);
    req.u.mknod.mode = mode;
    req.u.mknod.rdev = rdev;
    return call_fh_attr(s, &req, fh, attr, NULL, NULL);
}

int op_link(dafs_session *s, uint32_t cred, const dafs_fh *fh, const dafs_fh *dir,
            const char *name, dafs_attr *attr)
{
    dafs_request req;
    init_request(&req, DAFS_OP_LINK, cred);
    req.u.link.fh = *fh;
    req.u.link.dir = *dir;
    req.u.link.name = name_bytes(name);
    return call_attr(s, &req, attr);
}

int op_rename(dafs_session *s, uint32_t cred, const dafs_fh *sdir, const char *sname,
              const dafs_fh *ddir, const char *dname, unsigned flags)
{
    unsigned both = DAFS_RENAME_NOREPLACE | DAFS_RENAME_EXCHANGE;
    if ((flags & ~both) != 0 || flags == both)
        return -EINVAL;
    dafs_request req;
    init_request(&req, DAFS_OP_RENAME, cred);
    req.u.rename.src_dir = *sdir;
    req.u.rename.src_name = name_bytes(sname);
    req.u.rename.dst_dir = *ddir;
    req.u.rename.dst_name = name_bytes(dname);
    req.u.rename.flags = flags;
    return engine_call_simple(s, &req);
}

int op_access(dafs_session *s, uint32_t cred, const dafs_fh *fh, int mask)
{
    if ((mask & ~7) != 0)
        return -EINVAL;
    dafs_request req;
    init_request(&req, DAFS_OP_ACCESS, cred);
    req.u.access.fh = *fh;
    req.u.access.mask = (uint32_t)mask; /* R_OK/W_OK/X_OK are 4/2/1 as on the wire */
    return engine_call_simple(s, &req);
}

int op_close(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid stateid)
{
    dafs_request req;
    init_request(&req, DAFS_OP_CLOSE, cred);
    req.u.close.fh = *fh;
    req.u.close.stateid = stateid;
    return engine_call_simple(s, &req);
}

int op_commit(dafs_session *s, uint32_t cred, const dafs_fh *fh, uint32_t stable,
              dafs_stateid stateid)
{
    dafs_request req;
    init_request(&req, DAFS_OP_COMMIT, cred);
    req.u.commit.fh = *fh;
    req.u.commit.stateid = stateid;
    req.u.commit.stable = stable;
    return engine_call_simple(s, &req);
}

int op_statfs(dafs_session *s, uint32_t cred, const dafs_fh *fh, struct dafs_statfs *st)
{
    dafs_request req;
    init_request(&req, DAFS_OP_STATFS, cred);
    req.u.fh.fh = *fh;
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    const dafs_statfs_rep *r = &rep.u.statfs;
    *st = (struct dafs_statfs){.bsize = r->bsize, .frsize = r->frsize, .blocks = r->blocks,
                               .bfree = r->bfree, .bavail = r->bavail, .files = r->files,
                               .ffree = r->ffree, .namemax = r->namemax};
    engine_release(slot);
    return 0;
}

void attr_to_stat(const dafs_attr *a, struct dafs_stat *st)
{
    memset(st, 0, sizeof *st);
    st->ino = a->fileid;
    st->mode = a->mode;
    st->nlink = a->nlink;
    st->uid = a->uid;
    st->gid = a->gid;
    st->size = a->size;
    st->blocks = a->used / 512u + (a->used % 512u != 0);
    st->rdev = a->rdev;
    st->atime.tv_sec = a->atime_sec;
    st->atime.tv_nsec = a->atime_nsec;
    st->mtime.tv_sec = a->mtime_sec;
    st->mtime.tv_nsec = a->mtime_nsec;
    st->ctime.tv_sec = a->ctime_sec;
    st->ctime.tv_nsec = a->ctime_nsec;
}

int check_handle(const dafs_handle *h)
{
    if (h == NULL || h->len == 0 || h->len > DAFS_FH_MAX)
        return -EINVAL;
    return 0;
}

void fh_from_handle(const dafs_handle *h, dafs_fh *fh)
{
    memset(fh, 0, sizeof *fh);
    fh->len = h->len;
    memcpy(fh->data, h->data, h->len);
}

void fh_to_handle(const dafs_fh *fh, dafs_handle *h)
{
    memset(h, 0, sizeof *h);
    h->len = fh->len;
    memcpy(h->data, fh->data, fh->len <= DAFS_FH_MAX ? fh->len : DAFS_FH_MAX);
}
