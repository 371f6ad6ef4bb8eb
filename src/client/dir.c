/*
 * dir.c — directory listing: dafs_opendir / dafs_readdir / dafs_closedir.
 *
 * A dafs_dir holds the directory's handle, the cookie to continue from and a
 * copy of the last READDIR reply's entries (the receive buffer goes back to
 * the engine at once).  readdir walks that copy and fetches the next batch
 * when it runs out.  "." and ".." are skipped if a server sends them.  A
 * reply with no entries that does not say EOF, or whose cookies do not move
 * on, is a protocol error rather than an endless loop.
 *
 * dafs_h_readdir is the stateless form for stacking layers (FUSE): the
 * caller keeps the cookie.  Each batch is copied out of the receive buffer
 * and its slot released before the callback runs, so a callback may call
 * into the session itself.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"

struct dafs_dir {
    dafs_session *s;
    dafs_fh fh;
    uint64_t cookie;  /* continue after this entry */
    bool eof;         /* the server said no more after the buffered entries */
    uint8_t *buf;     /* copy of the last reply's encoded entries */
    dafs_readdir_iter iter;
};

/* Copy a READDIR reply's entries into buf (s->max_response bytes). */
static int readdir_batch(dafs_session *s, uint32_t cred, const dafs_fh *dir, uint64_t cookie,
                         uint8_t *buf, dafs_readdir_iter *it, bool *eof)
{
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_READDIR;
    req.hdr.cred = cred;
    req.u.readdir.dir = *dir;
    req.u.readdir.cookie = cookie;
    req.u.readdir.maxcount = s->max_response - DAFS_HDR_SIZE;
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    const dafs_readdir_rep *r = &rep.u.readdir;
    if ((r->nentries == 0 && !r->eof) || r->entries.len > s->max_response) {
        engine_release(slot);
        return -DAFS_EPROTO;
    }
    memcpy(buf, r->entries.ptr, r->entries.len);
    dafs_readdir_rep copy = *r;
    copy.entries.ptr = buf;
    dafs_readdir_iter_init(it, &copy);
    *eof = r->eof != 0;
    engine_release(slot);
    return 0;
}

/* The next batch of an open directory (cred 0: the session's default). */
static int fetch_batch(dafs_dir *d)
{
    return readdir_batch(d->s, 0, &d->fh, d->cookie, d->buf, &d->iter, &d->eof);
}

int dafs_opendir(dafs_session *s, const char *path, dafs_dir **out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    dafs_fh fh;
    dafs_attr attr;
    int rc = path_resolve(s, path, true, &fh, &attr);
    if (rc < 0)
        return rc;
    if (!S_ISDIR(attr.mode))
        return -ENOTDIR;
    dafs_dir *d = calloc(1, sizeof *d);
    if (d != NULL)
        d->buf = malloc(s->max_response);
    if (d == NULL || d->buf == NULL) {
        free(d);
        return -ENOMEM;
    }
    d->s = s;
    d->fh = fh;
    rc = fetch_batch(d);
    if (rc < 0) {
        free(d->buf);
        free(d);
        return rc;
    }
    *out = d;
    return 0;
}

static bool is_dot_or_dotdot(const dafs_bytes *name)
{
    return (name->len == 1 && name->ptr[0] == '.') ||
           (name->len == 2 && name->ptr[0] == '.' && name->ptr[1] == '.');
}

int dafs_readdir(dafs_dir *d, dafs_dirent *ent)
{
    if (d == NULL || ent == NULL)
        return -EINVAL;
    for (;;) {
        dafs_dirent_wire w;
        if (dafs_readdir_next(&d->iter, &w) == 1) {
            if (w.cookie == d->cookie && w.cookie != 0)
                return -DAFS_EPROTO; /* cookies must move on */
            d->cookie = w.cookie;
            if (is_dot_or_dotdot(&w.name))
                continue;
            if (w.name.len == 0 || w.name.len > DAFS_NAME_MAX)
                return -DAFS_EPROTO;
            ent->ino = w.fileid;
            ent->type = w.type;
            memcpy(ent->name, w.name.ptr, w.name.len);
            ent->name[w.name.len] = '\0';
            return 1;
        }
        if (d->eof)
            return 0;
        int rc = fetch_batch(d);
        if (rc < 0)
            return rc;
    }
}

int dafs_closedir(dafs_dir *d)
{
    if (d == NULL)
        return -EINVAL;
    free(d->buf);
    free(d);
    return 0;
}


/* Hand one batch to the callback.  Returns 1 when it stopped, 0 when the
 * batch was consumed, or a negative error. */
static int deliver_batch(dafs_readdir_iter *it, uint64_t *cookie, dafs_readdir_cb cb, void *arg)
{
    dafs_dirent_wire w;
    while (dafs_readdir_next(it, &w) == 1) {
        if (w.cookie == *cookie && w.cookie != 0)
            return -DAFS_EPROTO;
        if (is_dot_or_dotdot(&w.name)) {
            *cookie = w.cookie;
            continue;
        }
        if (w.name.len == 0 || w.name.len > DAFS_NAME_MAX)
            return -DAFS_EPROTO;
        dafs_dirent ent = {.ino = w.fileid, .type = w.type};
        memcpy(ent.name, w.name.ptr, w.name.len);
        ent.name[w.name.len] = '\0';
        if (cb(arg, &ent, w.cookie) != 0)
            return 1;
        *cookie = w.cookie;
    }
    return 0;
}

int dafs_h_readdir(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, uint64_t *cookie,
                   dafs_readdir_cb cb, void *arg, int *eof)
{
    uint32_t cred;
    if (s == NULL || cookie == NULL || cb == NULL || eof == NULL || check_handle(dir) < 0 ||
        cred_id_for(s, c, &cred) < 0)
        return -EINVAL;
    *eof = 0;
    dafs_fh fh;
    fh_from_handle(dir, &fh);
    uint8_t *buf = malloc(s->max_response);
    if (buf == NULL)
        return -ENOMEM;
    int rc;
    for (;;) {
        dafs_readdir_iter it;
        bool end;
        rc = readdir_batch(s, cred, &fh, *cookie, buf, &it, &end);
        if (rc == 0)
            rc = deliver_batch(&it, cookie, cb, arg);
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
