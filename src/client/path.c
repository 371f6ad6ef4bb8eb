/*
 * path.c — path walking and the path-based namespace calls.
 *
 * Paths are relative to the export root (a leading '/' is optional) and are
 * walked one request per component, from the root handle, so the server
 * checks every step (it never sees a multi-component path).  Rules:
 *   - repeated slashes are one separator, a trailing slash requires a
 *     directory (and follows a final symlink), "." is skipped, "" is -ENOENT;
 *   - ".." is LOOKUPP on the directory reached so far (the root is its own
 *     parent, so no path leaves the export);
 *   - a symlink in the middle of a path is followed here, on the client:
 *     READLINK, then the target is walked from the link's directory, or from
 *     the export root when it is absolute ("/x" in a link means the export's
 *     /x, never the server's).  After CLIENT_SYMLINK_HOPS links: -ELOOP;
 *   - a final symlink is followed only where the call says so (dafs_open);
 *   - a component longer than 255 bytes or a path longer than 4095 bytes is
 *     -ENAMETOOLONG before any request; a non-directory in the middle is
 *     -ENOTDIR.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "client.h"

/* Holds a path being walked, with symlink targets spliced in. */
#define WALK_BUF (2u * CLIENT_PATH_MAX + 8u)

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

static bool only_slashes(const char *p)
{
    while (*p == '/')
        p++;
    return *p == '\0';
}

/* Reject bad paths before any request is sent, so that the answer does not
 * depend on how far the walk gets. */
static int check_path(const char *path)
{
    if (path == NULL)
        return -EINVAL;
    size_t len = strnlen(path, CLIENT_PATH_MAX);
    if (len == 0)
        return -ENOENT;
    if (len >= CLIENT_PATH_MAX)
        return -ENAMETOOLONG;
    const char *p = path;
    char name[DAFS_NAME_MAX + 1];
    int n;
    while ((n = next_component(&p, name)) != 0)
        if (n < 0)
            return n;
    return 0;
}

/* Where a walk is: the handle reached and (when known) its attributes. */
typedef struct walk_pos {
    dafs_fh fh;
    dafs_attr attr;
    bool have_attr;
} walk_pos;

/*
 * Replace the walk's remaining path by target + rest, and move the position
 * to the root for an absolute target (else it stays at the link's directory).
 */
static int splice_symlink(dafs_session *s, walk_pos *pos, const dafs_fh *link, unsigned *hops,
                          char *buf, const char **p)
{
    if (++*hops > CLIENT_SYMLINK_HOPS)
        return -ELOOP;
    char target[DAFS_PATH_MAX + 1];
    size_t tlen;
    int rc = op_readlink(s, 0, link, target, sizeof target, &tlen);
    if (rc < 0)
        return rc;
    size_t rest = strlen(*p);
    if (tlen + rest + 1 > WALK_BUF)
        return -ENAMETOOLONG;
    memmove(buf + tlen, *p, rest + 1); /* *p points into buf: move it first */
    memcpy(buf, target, tlen);
    *p = buf;
    if (target[0] == '/') {
        pos->fh = s->root;
        pos->have_attr = false;
    }
    return 0;
}

/* Walk path (copied into buf) from pos. */
static int walk(dafs_session *s, walk_pos *pos, unsigned *hops, char *buf, bool follow_final)
{
    const char *p = buf;
    char name[DAFS_NAME_MAX + 1];
    int n;
    while ((n = next_component(&p, name)) != 0) {
        if (n < 0)
            return n;
        if (pos->have_attr && !S_ISDIR(pos->attr.mode))
            return -ENOTDIR;
        if (strcmp(name, ".") == 0)
            continue;
        int rc;
        if (strcmp(name, "..") == 0) {
            rc = op_lookupp(s, 0, &pos->fh, &pos->fh, &pos->attr);
            pos->have_attr = rc == 0;
            if (rc < 0)
                return rc;
            continue;
        }
        dafs_fh child;
        dafs_attr child_attr;
        rc = op_lookup(s, 0, &pos->fh, name, &child, &child_attr);
        if (rc < 0)
            return rc;
        bool last = only_slashes(p), trailing = last && *p == '/';
        if (S_ISLNK(child_attr.mode) && (!last || follow_final || trailing)) {
            rc = splice_symlink(s, pos, &child, hops, buf, &p);
            if (rc < 0)
                return rc;
            continue;
        }
        pos->fh = child;
        pos->attr = child_attr;
        pos->have_attr = true;
    }
    if (!pos->have_attr) {
        int rc = op_getattr(s, 0, &pos->fh, &pos->attr);
        if (rc < 0)
            return rc;
        pos->have_attr = true;
    }
    return 0;
}

static int resolve_at(dafs_session *s, const dafs_fh *start, unsigned *hops, const char *path,
                      bool follow_final, dafs_fh *fh, dafs_attr *attr)
{
    int rc = check_path(path);
    if (rc < 0)
        return rc;
    char buf[WALK_BUF];
    size_t len = strlen(path);
    memcpy(buf, path, len + 1);
    walk_pos pos = {.fh = path[0] == '/' || start == NULL ? s->root : *start};
    rc = walk(s, &pos, hops, buf, follow_final);
    if (rc < 0)
        return rc;
    if (path[len - 1] == '/' && !S_ISDIR(pos.attr.mode))
        return -ENOTDIR;
    *fh = pos.fh;
    if (attr != NULL)
        *attr = pos.attr;
    return 0;
}

int path_resolve(dafs_session *s, const char *path, bool follow_final, dafs_fh *fh,
                 dafs_attr *attr)
{
    if (s == NULL)
        return -EINVAL;
    unsigned hops = 0;
    return resolve_at(s, NULL, &hops, path, follow_final, fh, attr);
}

int path_resolve_parent_at(dafs_session *s, const dafs_fh *start, unsigned *hops,
                           const char *path, dafs_fh *dir, char *name, bool *has_name)
{
    if (s == NULL)
        return -EINVAL;
    int bad = check_path(path);
    if (bad < 0)
        return bad;
    size_t len = strlen(path);
    char parent[CLIENT_PATH_MAX];
    memcpy(parent, path, len + 1);
    while (len > 0 && parent[len - 1] == '/')
        parent[--len] = '\0';
    char *slash = strrchr(parent, '/');
    const char *last = slash != NULL ? slash + 1 : parent;
    size_t name_len = strlen(last);
    const dafs_fh *from = path[0] == '/' || start == NULL ? &s->root : start;
    if (name_len == 0) { /* the root itself */
        *has_name = false;
        *dir = s->root;
        return 0;
    }
    if (strcmp(last, ".") == 0 || strcmp(last, "..") == 0)
        return -EINVAL;
    memcpy(name, last, name_len + 1);
    *has_name = true;
    if (slash == NULL) {
        *dir = *from;
        return 0;
    }
    slash[1] = '\0'; /* keep the slash: the parent must be a directory */
    dafs_attr attr;
    int rc = resolve_at(s, from, hops, parent, true, dir, &attr);
    if (rc < 0)
        return rc;
    return S_ISDIR(attr.mode) ? 0 : -ENOTDIR;
}

int path_resolve_parent(dafs_session *s, const char *path, dafs_fh *dir, char *name,
                        bool *has_name)
{
    unsigned hops = 0;
    return path_resolve_parent_at(s, NULL, &hops, path, dir, name, has_name);
}

/* ---- the path-based calls ---- */

int dafs_stat(dafs_session *s, const char *path, struct dafs_stat *st)
{
    if (st == NULL)
        return -EINVAL;
    dafs_fh fh;
    dafs_attr attr;
    int rc = path_resolve(s, path, false, &fh, &attr);
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
    int rc = path_resolve(s, path, true, &fh, NULL);
    if (rc < 0)
        return rc;
    return op_statfs(s, 0, &fh, st);
}

/* MKDIR, RMDIR or REMOVE of the last component of path. */
static int dirop(dafs_session *s, const char *path, uint16_t opcode, uint32_t mode,
                 int root_error)
{
    char name[DAFS_NAME_MAX + 1];
    bool has_name;
    dafs_fh dir;
    int rc = path_resolve_parent(s, path, &dir, name, &has_name);
    if (rc < 0)
        return rc;
    if (!has_name)
        return root_error;
    return op_dirop(s, 0, opcode, &dir, name, 0, mode, NULL, NULL, NULL, NULL);
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

/* SETATTR on path (a final symlink itself, not its target). */
static int setattr_path(dafs_session *s, const char *path, dafs_setattr_req *sa)
{
    dafs_fh fh;
    int rc = path_resolve(s, path, false, &fh, NULL);
    if (rc < 0)
        return rc;
    if (sa->valid == 0)
        return 0; /* nothing to change; the path exists */
    return op_setattr(s, 0, &fh, sa, NULL);
}

int dafs_chmod(dafs_session *s, const char *path, mode_t mode)
{
    dafs_setattr_req sa = {.valid = DAFS_SET_MODE, .mode = (uint32_t)mode & 07777u};
    return setattr_path(s, path, &sa);
}

int dafs_lchown(dafs_session *s, const char *path, uint32_t uid, uint32_t gid)
{
    /* (uint32_t)-1 leaves that id alone, as with chown(2). */
    dafs_setattr_req sa = {.uid = uid, .gid = gid};
    if (uid != UINT32_MAX)
        sa.valid |= DAFS_SET_UID;
    if (gid != UINT32_MAX)
        sa.valid |= DAFS_SET_GID;
    return setattr_path(s, path, &sa);
}

int dafs_truncate(dafs_session *s, const char *path, uint64_t size)
{
    if (size > (uint64_t)INT64_MAX)
        return -EINVAL;
    dafs_setattr_req sa = {.valid = DAFS_SET_SIZE, .size = size};
    return setattr_path(s, path, &sa);
}

/* One of utimens's times into the SETATTR bits. */
static int map_time(const struct timespec_dafs *t, uint32_t set, uint32_t set_now,
                    uint32_t *valid, int64_t *sec, uint32_t *nsec)
{
    if (t->tv_nsec == DAFS_UTIME_OMIT)
        return 0;
    if (t->tv_nsec == DAFS_UTIME_NOW) {
        *valid |= set_now;
        return 0;
    }
    if (t->tv_nsec >= 1000000000u)
        return -EINVAL;
    *valid |= set;
    *sec = t->tv_sec;
    *nsec = t->tv_nsec;
    return 0;
}

int dafs_utimens(dafs_session *s, const char *path, const struct timespec_dafs times[2])
{
    dafs_setattr_req sa = {0};
    if (times == NULL) {
        sa.valid = DAFS_SET_ATIME_NOW | DAFS_SET_MTIME_NOW;
    } else {
        int rc = map_time(&times[0], DAFS_SET_ATIME, DAFS_SET_ATIME_NOW, &sa.valid,
                          &sa.atime_sec, &sa.atime_nsec);
        if (rc == 0)
            rc = map_time(&times[1], DAFS_SET_MTIME, DAFS_SET_MTIME_NOW, &sa.valid,
                          &sa.mtime_sec, &sa.mtime_nsec);
        if (rc < 0)
            return rc;
    }
    return setattr_path(s, path, &sa);
}

int dafs_rename(dafs_session *s, const char *from, const char *to, unsigned flags)
{
    char sname[DAFS_NAME_MAX + 1], dname[DAFS_NAME_MAX + 1];
    bool shas, dhas;
    dafs_fh sdir, ddir;
    int rc = path_resolve_parent(s, from, &sdir, sname, &shas);
    if (rc == 0)
        rc = path_resolve_parent(s, to, &ddir, dname, &dhas);
    if (rc < 0)
        return rc;
    if (!shas || !dhas)
        return -EBUSY; /* the root cannot move, nor be replaced */
    return op_rename(s, 0, &sdir, sname, &ddir, dname, flags);
}

int dafs_link(dafs_session *s, const char *existing, const char *newpath)
{
    dafs_fh fh, dir;
    char name[DAFS_NAME_MAX + 1];
    bool has_name;
    int rc = path_resolve(s, existing, false, &fh, NULL);
    if (rc == 0)
        rc = path_resolve_parent(s, newpath, &dir, name, &has_name);
    if (rc < 0)
        return rc;
    if (!has_name)
        return -EEXIST;
    return op_link(s, 0, &fh, &dir, name, NULL);
}

int dafs_symlink(dafs_session *s, const char *target, const char *linkpath)
{
    if (target == NULL)
        return -EINVAL;
    dafs_fh dir;
    char name[DAFS_NAME_MAX + 1];
    bool has_name;
    int rc = path_resolve_parent(s, linkpath, &dir, name, &has_name);
    if (rc < 0)
        return rc;
    if (!has_name)
        return -EEXIST;
    return op_symlink(s, 0, &dir, name, target, NULL, NULL);
}

ssize_t dafs_readlink(dafs_session *s, const char *path, char *buf, size_t len)
{
    if (buf == NULL || len == 0)
        return -EINVAL;
    dafs_fh fh;
    dafs_attr attr;
    int rc = path_resolve(s, path, false, &fh, &attr);
    if (rc < 0)
        return rc;
    if (!S_ISLNK(attr.mode))
        return -EINVAL;
    char target[DAFS_PATH_MAX + 1];
    size_t tlen;
    rc = op_readlink(s, 0, &fh, target, sizeof target, &tlen);
    if (rc < 0)
        return rc;
    size_t n = tlen < len ? tlen : len;
    memcpy(buf, target, n);
    if (n < len)
        buf[n] = '\0';
    return (ssize_t)n;
}

int dafs_mknod(dafs_session *s, const char *path, mode_t mode, uint64_t rdev)
{
    dafs_fh dir;
    char name[DAFS_NAME_MAX + 1];
    bool has_name;
    int rc = path_resolve_parent(s, path, &dir, name, &has_name);
    if (rc < 0)
        return rc;
    if (!has_name)
        return -EEXIST;
    return op_mknod(s, 0, &dir, name, (uint32_t)mode, rdev, NULL, NULL);
}

int dafs_access(dafs_session *s, const char *path, int mask)
{
    if ((mask & ~7) != 0)
        return -EINVAL;
    dafs_fh fh;
    int rc = path_resolve(s, path, false, &fh, NULL);
    if (rc < 0)
        return rc;
    return op_access(s, 0, &fh, mask);
}
