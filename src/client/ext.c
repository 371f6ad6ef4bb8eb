/*
 * ext.c — the extra operations (protocol ops 70..79): fallocate, server-side
 * copy, SEEK_DATA/SEEK_HOLE, extended attributes and READDIRPLUS, each in a
 * file form (dafs_file), a path form where POSIX has one, and a handle form
 * (dafs_h_*) for stacking layers.
 *
 * Every length is checked here before anything is sent: xattr names
 * (1..255 bytes, else -ERANGE as in xattr(7)), values (at most 64 KiB and
 * what fits one negotiated request, else -E2BIG), and reply sizes, which are
 * clamped to what one negotiated reply can carry.  A value larger than that
 * clamp, though it would fit the caller's buffer, is -E2BIG, not -ERANGE, so
 * the caller does not retry with a larger buffer forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "client.h"

#define EXT_REQUEST_OVERHEAD 256u /* header + fh + fixed fields around a name/value */

static void init_ext(dafs_request *req, uint16_t opcode, uint32_t cred)
{
    memset(req, 0, sizeof *req);
    req->hdr.opcode = opcode;
    req->hdr.cred = cred;
}

/* Session, credential and handle checks shared by the handle forms. */
static int prepare_h(dafs_session *s, const dafs_cred *c, const dafs_handle *h, uint32_t *cred,
                     dafs_fh *fh)
{
    if (s == NULL || check_handle(h) < 0 || cred_id_for(s, c, cred) < 0)
        return -EINVAL;
    fh_from_handle(h, fh);
    return 0;
}

/* ---- fallocate ---------------------------------------------------------- */

static int falloc_to_wire(int mode, uint32_t *w)
{
    const int known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE |
                      FALLOC_FL_COLLAPSE_RANGE | FALLOC_FL_INSERT_RANGE |
                      FALLOC_FL_UNSHARE_RANGE;
    if (mode & ~known)
        return -EOPNOTSUPP; /* what fallocate(2) says for a mode it does not know */
    *w = 0;
    if (mode & FALLOC_FL_KEEP_SIZE)
        *w |= DAFS_FALLOC_KEEP_SIZE;
    if (mode & FALLOC_FL_PUNCH_HOLE)
        *w |= DAFS_FALLOC_PUNCH_HOLE;
    if (mode & FALLOC_FL_ZERO_RANGE)
        *w |= DAFS_FALLOC_ZERO_RANGE;
    if (mode & FALLOC_FL_COLLAPSE_RANGE)
        *w |= DAFS_FALLOC_COLLAPSE_RANGE;
    if (mode & FALLOC_FL_INSERT_RANGE)
        *w |= DAFS_FALLOC_INSERT_RANGE;
    if (mode & FALLOC_FL_UNSHARE_RANGE)
        *w |= DAFS_FALLOC_UNSHARE_RANGE;
    return 0;
}

static int do_fallocate(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid sid,
                        int mode, uint64_t offset, uint64_t len, struct dafs_stat *st)
{
    uint32_t wmode;
    int rc = falloc_to_wire(mode, &wmode);
    if (rc < 0)
        return rc;
    if (len == 0 || offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - offset)
        return -EINVAL;
    dafs_request req;
    init_ext(&req, DAFS_OP_FALLOCATE, cred);
    req.u.fallocate = (dafs_fallocate_req){.fh = *fh, .mode = wmode, .offset = offset,
                                           .length = len, .stateid = sid};
    dafs_reply rep;
    client_slot *slot;
    rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    if (st != NULL)
        attr_to_stat(&rep.u.attr.attr, st);
    engine_release(slot);
    return 0;
}

int dafs_fallocate(dafs_file *f, int mode, uint64_t offset, uint64_t len)
{
    if (f == NULL)
        return -EINVAL;
    if ((f->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    return do_fallocate(f->s, f->cred, &f->fh, f->stateid, mode, offset, len, NULL);
}

int dafs_h_fallocate(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, int mode,
                     uint64_t offset, uint64_t len, struct dafs_stat *st)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare_h(s, c, fh, &cred, &f);
    return rc == 0 ? do_fallocate(s, cred, &f, 0, mode, offset, len, st) : rc;
}

/* ---- copy_range --------------------------------------------------------- */

static ssize_t do_copy(dafs_session *s, uint32_t cred, const dafs_fh *src, dafs_stateid src_sid,
                       uint64_t off_in, const dafs_fh *dst, dafs_stateid dst_sid,
                       uint64_t off_out, size_t len)
{
    if (off_in > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off_in ||
        off_out > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - off_out)
        return -EINVAL;
    if (len == 0)
        return 0;
    dafs_request req;
    init_ext(&req, DAFS_OP_COPY_RANGE, cred);
    req.u.copy = (dafs_copy_req){.src = *src, .src_offset = off_in, .dst = *dst,
                                 .dst_offset = off_out, .length = len,
                                 .src_stateid = src_sid, .dst_stateid = dst_sid};
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    uint64_t done = rep.u.u64.value;
    engine_release(slot);
    return done > len ? -DAFS_EPROTO : (ssize_t)done;
}

ssize_t dafs_copy_range(dafs_file *in, uint64_t off_in, dafs_file *out, uint64_t off_out,
                        size_t len)
{
    if (in == NULL || out == NULL || in->s != out->s)
        return -EINVAL;
    if ((in->flags & O_ACCMODE) == O_WRONLY || (out->flags & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    return do_copy(out->s, out->cred, &in->fh, in->stateid, off_in, &out->fh, out->stateid,
                   off_out, len);
}

ssize_t dafs_h_copy_range(dafs_session *s, const dafs_cred *c, const dafs_handle *src,
                          uint64_t off_in, const dafs_handle *dst, uint64_t off_out, size_t len)
{
    uint32_t cred;
    dafs_fh fin, fout;
    int rc = prepare_h(s, c, src, &cred, &fin);
    if (rc == 0)
        rc = prepare_h(s, c, dst, &cred, &fout);
    return rc == 0 ? do_copy(s, cred, &fin, 0, off_in, &fout, 0, off_out, len) : rc;
}

/* ---- seek --------------------------------------------------------------- */

static int64_t do_seek(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid sid,
                       uint64_t offset, int whence)
{
    if ((whence != SEEK_DATA && whence != SEEK_HOLE) || offset > (uint64_t)INT64_MAX)
        return -EINVAL;
    dafs_request req;
    init_ext(&req, DAFS_OP_SEEK, cred);
    req.u.seek = (dafs_seek_req){.fh = *fh, .offset = offset,
                                 .what = whence == SEEK_DATA ? DAFS_SEEK_DATA : DAFS_SEEK_HOLE,
                                 .stateid = sid};
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    uint64_t where = rep.u.u64.value;
    engine_release(slot);
    return where > (uint64_t)INT64_MAX ? -DAFS_EPROTO : (int64_t)where;
}

int64_t dafs_seek(dafs_file *f, uint64_t offset, int whence)
{
    return f == NULL ? -EINVAL : do_seek(f->s, f->cred, &f->fh, f->stateid, offset, whence);
}

int64_t dafs_h_seek(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, uint64_t offset,
                    int whence)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare_h(s, c, fh, &cred, &f);
    return rc == 0 ? do_seek(s, cred, &f, 0, offset, whence) : rc;
}

/* ---- extended attributes ----------------------------------------------- */

static int xattr_name(const char *name, dafs_bytes *out)
{
    if (name == NULL)
        return -EINVAL;
    size_t len = strnlen(name, DAFS_XATTR_NAME_MAX + 1);
    if (len == 0 || len > DAFS_XATTR_NAME_MAX)
        return -ERANGE; /* as getxattr(2) for a bad name length */
    *out = (dafs_bytes){(const uint8_t *)name, (uint32_t)len};
    return 0;
}

/* The most value (or list) bytes one reply of this session can carry. */
static uint32_t reply_room(const dafs_session *s, uint32_t protocol_max)
{
    uint32_t room = s->max_response > EXT_REQUEST_OVERHEAD ? s->max_response - EXT_REQUEST_OVERHEAD
                                                          : 0;
    return room < protocol_max ? room : protocol_max;
}

/* GETXATTR and LISTXATTR: name NULL for LIST. */
static ssize_t get_or_list(dafs_session *s, uint32_t cred, const dafs_fh *fh, const char *name,
                           void *buf, size_t size)
{
    bool list = name == NULL;
    dafs_request req;
    init_ext(&req, list ? DAFS_OP_LISTXATTR : DAFS_OP_GETXATTR, cred);
    req.u.xattr.fh = *fh;
    if (!list) {
        int rc = xattr_name(name, &req.u.xattr.name);
        if (rc < 0)
            return rc;
    }
    if (size > 0 && buf == NULL)
        return -EINVAL;
    uint32_t room = reply_room(s, list ? DAFS_XATTR_LIST_MAX : DAFS_XATTR_VALUE_MAX);
    req.u.xattr.size = size < room ? (uint32_t)size : room;
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc == -ERANGE && size > req.u.xattr.size)
        return -E2BIG; /* larger than a reply can carry, not than the buffer */
    if (rc < 0)
        return rc;
    uint32_t n = rep.u.xattr.size;
    if (size > 0 && (n > size || rep.u.xattr.data.len != n))
        rc = -DAFS_EPROTO;
    else if (size > 0 && n > 0)
        memcpy(buf, rep.u.xattr.data.ptr, n);
    engine_release(slot);
    return rc < 0 ? rc : (ssize_t)n;
}

static int set_or_remove(dafs_session *s, uint32_t cred, const dafs_fh *fh, const char *name,
                         const void *value, size_t size, int flags, bool remove)
{
    dafs_request req;
    init_ext(&req, remove ? DAFS_OP_REMOVEXATTR : DAFS_OP_SETXATTR, cred);
    req.u.xattr.fh = *fh;
    int rc = xattr_name(name, &req.u.xattr.name);
    if (rc < 0)
        return rc;
    if (!remove) {
        if (flags != 0 && flags != XATTR_CREATE && flags != XATTR_REPLACE)
            return -EINVAL;
        if (size > 0 && value == NULL)
            return -EINVAL;
        if (size > DAFS_XATTR_VALUE_MAX ||
            size + req.u.xattr.name.len + EXT_REQUEST_OVERHEAD > s->max_request)
            return -E2BIG;
        req.u.xattr.value = (dafs_bytes){value, (uint32_t)size};
        req.u.xattr.flags = flags == XATTR_CREATE    ? DAFS_XATTR_CREATE
                            : flags == XATTR_REPLACE ? DAFS_XATTR_REPLACE
                                                          : 0;
    }
    return engine_call_simple(s, &req);
}

ssize_t dafs_h_getxattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                        const char *name, void *buf, size_t size)
{
    uint32_t cred;
    dafs_fh f;
    int rc = name == NULL ? -EINVAL : prepare_h(s, c, fh, &cred, &f);
    return rc == 0 ? get_or_list(s, cred, &f, name, buf, size) : rc;
}

ssize_t dafs_h_listxattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, char *buf,
                         size_t size)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare_h(s, c, fh, &cred, &f);
    return rc == 0 ? get_or_list(s, cred, &f, NULL, buf, size) : rc;
}

int dafs_h_setxattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, const char *name,
                    const void *value, size_t size, int flags)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare_h(s, c, fh, &cred, &f);
    return rc == 0 ? set_or_remove(s, cred, &f, name, value, size, flags, false) : rc;
}

int dafs_h_removexattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                       const char *name)
{
    uint32_t cred;
    dafs_fh f;
    int rc = prepare_h(s, c, fh, &cred, &f);
    return rc == 0 ? set_or_remove(s, cred, &f, name, NULL, 0, 0, true) : rc;
}

/* Path forms: like lgetxattr(2) and friends, a final symlink is not followed. */
static int resolve(dafs_session *s, const char *path, dafs_fh *fh)
{
    return s == NULL ? -EINVAL : path_resolve(s, path, false, fh, NULL);
}

ssize_t dafs_getxattr(dafs_session *s, const char *path, const char *name, void *buf,
                      size_t size)
{
    dafs_fh fh;
    int rc = name == NULL ? -EINVAL : resolve(s, path, &fh);
    return rc < 0 ? rc : get_or_list(s, 0, &fh, name, buf, size);
}

ssize_t dafs_listxattr(dafs_session *s, const char *path, char *buf, size_t size)
{
    dafs_fh fh;
    int rc = resolve(s, path, &fh);
    return rc < 0 ? rc : get_or_list(s, 0, &fh, NULL, buf, size);
}

int dafs_setxattr(dafs_session *s, const char *path, const char *name, const void *value,
                  size_t size, int flags)
{
    dafs_fh fh;
    int rc = resolve(s, path, &fh);
    return rc < 0 ? rc : set_or_remove(s, 0, &fh, name, value, size, flags, false);
}

int dafs_removexattr(dafs_session *s, const char *path, const char *name)
{
    dafs_fh fh;
    int rc = resolve(s, path, &fh);
    return rc < 0 ? rc : set_or_remove(s, 0, &fh, name, NULL, 0, 0, true);
}

/* ---- READDIRPLUS -------------------------------------------------------- */

/* Hand one batch to the callback; 1 when it stopped, 0 when consumed. */
static int deliver_plus(dafs_readdir_iter *it, uint64_t *cookie, dafs_readdirplus_cb cb,
                        void *arg)
{
    dafs_dirent_wire w;
    dafs_fh fh;
    dafs_attr attr;
    int has;
    while (dafs_readdirplus_next(it, &w, &fh, &attr, &has) == 1) {
        if ((w.cookie == *cookie && w.cookie != 0) || w.name.len == 0 ||
            w.name.len > DAFS_NAME_MAX)
            return -DAFS_EPROTO;
        dafs_dirent ent = {.ino = w.fileid, .type = w.type};
        memcpy(ent.name, w.name.ptr, w.name.len);
        ent.name[w.name.len] = '\0';
        dafs_handle h;
        struct dafs_stat st;
        bool with = (has & DAFS_PLUS_ATTR) != 0;
        if (with) {
            fh_to_handle(&fh, &h);
            attr_to_stat(&attr, &st);
        }
        unsigned flags = with && (has & DAFS_PLUS_NO_XATTRS) ? DAFS_DIRENT_NO_XATTRS : 0;
        if (cb(arg, &ent, with ? &h : NULL, with ? &st : NULL, flags, w.cookie) != 0)
            return 1;
        *cookie = w.cookie;
    }
    return 0;
}

int dafs_h_readdirplus(dafs_session *s, const dafs_cred *c, const dafs_handle *dir,
                       uint64_t *cookie, dafs_readdirplus_cb cb, void *arg, int *eof)
{
    uint32_t cred;
    dafs_fh fh;
    if (cookie == NULL || cb == NULL || eof == NULL || prepare_h(s, c, dir, &cred, &fh) < 0)
        return -EINVAL;
    *eof = 0;
    /* Each batch is copied out and its slot released before the callback
     * runs, so a callback may call into the session (as dafs_h_readdir). */
    uint8_t *buf = malloc(s->max_response);
    if (buf == NULL)
        return -ENOMEM;
    int rc;
    for (;;) {
        dafs_request req;
        init_ext(&req, DAFS_OP_READDIRPLUS, cred);
        req.u.readdir = (dafs_readdir_req){.dir = fh, .cookie = *cookie,
                                           .maxcount = s->max_response - DAFS_HDR_SIZE};
        dafs_reply rep;
        client_slot *slot;
        rc = engine_call(s, &req, &rep, &slot);
        if (rc < 0)
            break;
        dafs_readdir_rep r = rep.u.readdir;
        bool end = r.eof != 0;
        if ((r.nentries == 0 && !end) || r.entries.len > s->max_response) {
            engine_release(slot);
            rc = -DAFS_EPROTO;
            break;
        }
        memcpy(buf, r.entries.ptr, r.entries.len);
        r.entries.ptr = buf;
        engine_release(slot);
        dafs_readdir_iter it;
        dafs_readdir_iter_init(&it, &r);
        rc = deliver_plus(&it, cookie, cb, arg);
        if (rc != 0)
            break;
        if (end) {
            *eof = 1;
            break;
        }
    }
    free(buf);
    return rc < 0 ? rc : 0;
}
