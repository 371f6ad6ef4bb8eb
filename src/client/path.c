/*
 * path.c — path walking and the path-based metadata calls.
 *
 * Paths are relative to the export root (a leading '/' is optional) and are
 * walked one LOOKUP per component, from the root handle, so the server checks
 * every step (it never sees a multi-component path).  Rules:
 *   - repeated slashes are one separator, a trailing slash requires a
 *     directory, "." is skipped, "" is -ENOENT (as in POSIX);
 *   - ".." is -EINVAL (there is no LOOKUPP in protocol v1);
 *   - a component longer than 255 bytes is -ENAMETOOLONG;
 *   - a symlink in the middle of a path is not followed: -ELOOP (no READLINK
 *     in protocol v1); a non-directory in the middle is -ENOTDIR.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"

#define PATH_MAX_LEN 4096

/* Copy the next component of *p into name.  Returns its length, 0 at the end,
 * or -ENAMETOOLONG. */
static int next_component(const char **p, char name[DAFS_NAME_MAX + 1])
{
    const char *c = *p;
    while (*c == '/')
        c++;
    const char *end = c;
    while (*end != '\0' && *end != '/')
        end++;
    size_t n = (size_t)(end - c);
    *p = end;
    if (n > DAFS_NAME_MAX)
        return -ENAMETOOLONG;
    memcpy(name, c, n);
    name[n] = '\0';
    return (int)n;
}

static int lookup(dafs_session *s, const dafs_fh *dir, const char *name, dafs_fh *fh,
                  dafs_attr *attr)
{
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_LOOKUP;
    req.u.dirop.dir = *dir;
    req.u.dirop.name = (dafs_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    *fh = rep.u.fh_attr.fh;
    *attr = rep.u.fh_attr.attr;
    engine_release(slot);
    return 0;
}

static int getattr(dafs_session *s, const dafs_fh *fh, dafs_attr *attr)
{
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_GETATTR;
    req.u.fh.fh = *fh;
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    *attr = rep.u.attr.attr;
    engine_release(slot);
    return 0;
}

int client_getattr(dafs_session *s, const dafs_fh *fh, dafs_attr *attr)
{
    return getattr(s, fh, attr);
}

/* Reject bad components before any LOOKUP is sent, so that the answer does
 * not depend on how far the walk gets. */
static int check_path(const char *path)
{
    if (path[0] == '\0')
        return -ENOENT;
    const char *p = path;
    char name[DAFS_NAME_MAX + 1];
    int n;
    while ((n = next_component(&p, name)) != 0) {
        if (n < 0)
            return n;
        if (strcmp(name, "..") == 0)
            return -EINVAL;
    }
    return 0;
}

int path_resolve(dafs_session *s, const char *path, dafs_fh *fh, dafs_attr *attr)
{
    if (s == NULL || path == NULL)
        return -EINVAL;
    int bad = check_path(path);
    if (bad < 0)
        return bad;
    dafs_fh cur = s->root;
    dafs_attr cur_attr;
    bool have_attr = false;
    const char *p = path;
    char name[DAFS_NAME_MAX + 1];
    int n;
    while ((n = next_component(&p, name)) != 0) {
        if (n < 0)
            return n;
        if (strcmp(name, ".") == 0)
            continue;
        if (strcmp(name, "..") == 0)
            return -EINVAL;
        if (have_attr && S_ISLNK(cur_attr.mode))
            return -ELOOP;
        if (have_attr && !S_ISDIR(cur_attr.mode))
            return -ENOTDIR;
        int rc = lookup(s, &cur, name, &cur, &cur_attr);
        if (rc < 0)
            return rc;
        have_attr = true;
    }
    if (!have_attr) {
        int rc = getattr(s, &cur, &cur_attr);
        if (rc < 0)
            return rc;
    }
    if (path[strlen(path) - 1] == '/' && !S_ISDIR(cur_attr.mode))
        return -ENOTDIR;
    *fh = cur;
    if (attr != NULL)
        *attr = cur_attr;
    return 0;
}

int path_resolve_parent(dafs_session *s, const char *path, dafs_fh *dir, char *name,
                        bool *has_name)
{
    if (s == NULL || path == NULL)
        return -EINVAL;
    int bad = check_path(path);
    if (bad < 0)
        return bad;
    size_t len = strlen(path);
    if (len >= PATH_MAX_LEN)
        return -ENAMETOOLONG;
    char parent[PATH_MAX_LEN];
    memcpy(parent, path, len + 1);
    while (len > 0 && parent[len - 1] == '/')
        parent[--len] = '\0';
    char *slash = strrchr(parent, '/');
    const char *last = slash != NULL ? slash + 1 : parent;
    size_t name_len = strlen(last);
    if (name_len == 0) { /* the root itself */
        *has_name = false;
        *dir = s->root;
        return 0;
    }
    if (name_len > DAFS_NAME_MAX)
        return -ENAMETOOLONG;
    if (strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
        return -EINVAL;
    memcpy(name, last, name_len + 1);
    *has_name = true;
    if (slash == NULL) {
        *dir = s->root;
        return 0;
    }
    slash[1] = '\0'; /* keep the slash: the parent must be a directory */
    dafs_attr attr;
    int rc = path_resolve(s, parent, dir, &attr);
    if (rc < 0)
        return rc;
    return S_ISDIR(attr.mode) ? 0 : -ENOTDIR;
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

int dafs_stat(dafs_session *s, const char *path, struct dafs_stat *st)
{
    if (st == NULL)
        return -EINVAL;
    dafs_fh fh;
    dafs_attr attr;
    int rc = path_resolve(s, path, &fh, &attr);
    if (rc < 0)
        return rc;
    attr_to_stat(&attr, st);
    return 0;
}

int dafs_statfs(dafs_session *s, const char *path, struct dafs_statfs *st)
{
    if (st == NULL)
        return -EINVAL;
    dafs_fh fh;
    int rc = path_resolve(s, path, &fh, NULL);
    if (rc < 0)
        return rc;
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_STATFS;
    req.u.fh.fh = fh;
    dafs_reply rep;
    client_slot *slot;
    rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    const dafs_statfs_rep *r = &rep.u.statfs;
    *st = (struct dafs_statfs){.bsize = r->bsize, .frsize = r->frsize, .blocks = r->blocks,
                        .bfree = r->bfree, .bavail = r->bavail, .files = r->files,
                        .ffree = r->ffree, .namemax = r->namemax};
    engine_release(slot);
    return 0;
}

/* MKDIR, RMDIR or REMOVE of the last component of path. */
static int dirop(dafs_session *s, const char *path, uint16_t opcode, uint32_t mode,
                 int root_error)
{
    dafs_request req;
    memset(&req, 0, sizeof req);
    char name[DAFS_NAME_MAX + 1];
    bool has_name;
    int rc = path_resolve_parent(s, path, &req.u.dirop.dir, name, &has_name);
    if (rc < 0)
        return rc;
    if (!has_name)
        return root_error;
    req.hdr.opcode = opcode;
    req.u.dirop.name = (dafs_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
    req.u.dirop.mode = mode;
    return engine_call_simple(s, &req);
}

int dafs_mkdir(dafs_session *s, const char *path, mode_t mode)
{
    return dirop(s, path, DAFS_OP_MKDIR, (uint32_t)mode & 07777u, -EEXIST);
}

int dafs_rmdir(dafs_session *s, const char *path)
{
    return dirop(s, path, DAFS_OP_RMDIR, 0, -EBUSY);
}

int dafs_unlink(dafs_session *s, const char *path)
{
    return dirop(s, path, DAFS_OP_REMOVE, 0, -EISDIR);
}
