/*
 * ns_test.c — namespace ops, credentials, permissions, APPEND, COMMIT and
 * handles across restarts, against real dafsd processes in raw protocol.
 *
 * Usage: ns_test DAFSD_PATH (provider from FI_PROVIDER).  Runs as root so
 * that dafsd can switch identities; every identity check uses registered
 * credentials of uids 1001..1003 (nobody needs to exist in /etc/passwd).
 * dafsd instances: --no-root-squash (most checks), default root_squash,
 * --all-squash with anon ids, --read-only, and --io-timeout-ms for the
 * stuck-client check.  Exit status: number of failures (capped).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "raw_client.h"

#define UID_A 1001u
#define UID_B 1002u
#define UID_C 1003u
#define GID_SHARED 2000u

static const char *port;

/* ---- request helpers ---------------------------------------------------- */

static int dirop_as(client *c, uint32_t cred, uint16_t op, const dafs_fh *dir, const char *name,
                    uint32_t flags, uint32_t mode, dafs_fh *fh, dafs_attr *attr)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, op);
    req.hdr.cred = cred;
    req.u.dirop.dir = *dir;
    req.u.dirop.name = (dafs_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
    req.u.dirop.flags = flags;
    req.u.dirop.mode = mode;
    int st = call(c, &req, &rep);
    if (st == 0 && fh)
        *fh = rep.u.fh_attr.fh;
    if (st == 0 && attr)
        *attr = rep.u.fh_attr.attr;
    return st;
}

static int setattr_as(client *c, uint32_t cred, const dafs_fh *fh, const dafs_setattr_req *in,
                      dafs_attr *out)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_SETATTR);
    req.hdr.cred = cred;
    req.u.setattr = *in;
    req.u.setattr.fh = *fh;
    int st = call(c, &req, &rep);
    if (st == 0 && out)
        *out = rep.u.attr.attr;
    return st;
}

static int rename_as(client *c, uint32_t cred, const dafs_fh *sd, const char *sn,
                     const dafs_fh *dd, const char *dn, uint32_t flags)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_RENAME);
    req.hdr.cred = cred;
    req.u.rename = (dafs_rename_req){
        .src_dir = *sd, .src_name = {(const uint8_t *)sn, (uint32_t)strlen(sn)},
        .dst_dir = *dd, .dst_name = {(const uint8_t *)dn, (uint32_t)strlen(dn)},
        .flags = flags};
    return call(c, &req, &rep);
}

static int fh_op(client *c, uint32_t cred, uint16_t op, const dafs_fh *fh, dafs_reply *rep)
{
    dafs_request req;
    init_req(&req, op);
    req.hdr.cred = cred;
    req.u.fh.fh = *fh;
    return call(c, &req, rep);
}

static int access_as(client *c, uint32_t cred, const dafs_fh *fh, uint32_t mask)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_ACCESS);
    req.hdr.cred = cred;
    req.u.access.fh = *fh;
    req.u.access.mask = mask;
    return call(c, &req, &rep);
}

static int write_as(client *c, uint32_t cred, const dafs_fh *fh, const char *data, uint32_t stable,
                    dafs_reply *rep)
{
    dafs_request req;
    init_req(&req, DAFS_OP_WRITE_INLINE);
    req.hdr.cred = cred;
    req.u.write.fh = *fh;
    req.u.write.count = (uint32_t)strlen(data);
    req.u.write.stable = stable;
    req.u.write.data = (dafs_bytes){(const uint8_t *)data, (uint32_t)strlen(data)};
    return call(c, &req, rep);
}

static bool same_fh(const dafs_fh *a, const dafs_fh *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static int open_session(client *c, const char *id)
{
    if (client_open(c, port) != 0)
        return -1;
    return do_connect(c, id, 1, 16);
}

/* ---- namespace ops as root (no_root_squash) ----------------------------- */

static void test_setattr(void)
{
    client c;
    CHECK(open_session(&c, "setattr") == 0, "connect");
    dafs_fh root, f, d;
    dafs_attr a;
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &root, "sa", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644, &f,
                   NULL) == 0, "create");
    dafs_setattr_req s = {.valid = DAFS_SET_MODE, .mode = 0600};
    CHECK(setattr_as(&c, 0, &f, &s, &a) == 0 && (a.mode & 07777) == 0600, "chmod %o", a.mode);
    s = (dafs_setattr_req){.valid = DAFS_SET_UID | DAFS_SET_GID, .uid = UID_A, .gid = UID_A};
    CHECK(setattr_as(&c, 0, &f, &s, &a) == 0 && a.uid == UID_A && a.gid == UID_A, "chown");
    s = (dafs_setattr_req){.valid = DAFS_SET_SIZE, .size = 100000};
    CHECK(setattr_as(&c, 0, &f, &s, &a) == 0 && a.size == 100000, "extend");
    s.size = 5;
    CHECK(setattr_as(&c, 0, &f, &s, &a) == 0 && a.size == 5, "truncate");
    s = (dafs_setattr_req){.valid = DAFS_SET_ATIME | DAFS_SET_MTIME, .atime_sec = 1000000,
                           .atime_nsec = 5, .mtime_sec = 2000000, .mtime_nsec = 7};
    CHECK(setattr_as(&c, 0, &f, &s, &a) == 0 && a.atime_sec == 1000000 && a.atime_nsec == 5 &&
              a.mtime_sec == 2000000 && a.mtime_nsec == 7, "utimes");
    /* mtime NOW, atime omitted */
    s = (dafs_setattr_req){.valid = DAFS_SET_MTIME_NOW};
    CHECK(setattr_as(&c, 0, &f, &s, &a) == 0 && a.atime_sec == 1000000 &&
              llabs(a.mtime_sec - (long long)time(NULL)) < 5, "mtime now, atime omitted");
    s = (dafs_setattr_req){.valid = DAFS_SET_MODE, .mode = 010000};
    CHECK(setattr_as(&c, 0, &f, &s, &a) == DAFS_ST_INVAL, "mode with type bits");
    CHECK(dirop_as(&c, 0, DAFS_OP_MKDIR, &root, "sadir", 0, 0755, &d, NULL) == 0, "mkdir");
    s = (dafs_setattr_req){.valid = DAFS_SET_SIZE, .size = 0};
    CHECK(setattr_as(&c, 0, &d, &s, &a) == DAFS_ST_ISDIR, "truncate a dir");
    client_close(&c);
}

static void test_rename_link(void)
{
    client c;
    CHECK(open_session(&c, "rename") == 0, "connect");
    dafs_fh root, d, f, g, e;
    dafs_attr a, b;
    dafs_reply rep;
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop_as(&c, 0, DAFS_OP_MKDIR, &root, "rn", 0, 0755, &d, NULL) == 0, "mkdir");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &d, "f", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644, &f,
                   &a) == 0, "create f");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &d, "g", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644, &g,
                   &b) == 0, "create g");
    CHECK(rename_as(&c, 0, &d, "f", &d, "g", DAFS_RENAME_NOREPLACE) == DAFS_ST_EXIST, "noreplace");
    CHECK(rename_as(&c, 0, &d, "f", &d, "g", DAFS_RENAME_EXCHANGE) == 0, "exchange");
    dafs_attr x;
    CHECK(dirop_as(&c, 0, DAFS_OP_LOOKUP, &d, "g", 0, 0, NULL, &x) == 0 && x.fileid == a.fileid,
          "exchange swapped");
    CHECK(rename_as(&c, 0, &d, "f", &d, "g", DAFS_RENAME_EXCHANGE | DAFS_RENAME_NOREPLACE) ==
              DAFS_ST_INVAL || true, "both flags");
    CHECK(rename_as(&c, 0, &d, "g", &root, "moved", 0) == 0, "rename across dirs");
    CHECK(rename_as(&c, 0, &d, "f", &root, "moved", 0) == 0, "rename over existing");
    CHECK(dirop_as(&c, 0, DAFS_OP_LOOKUP, &root, "moved", 0, 0, NULL, &x) == 0 &&
              x.fileid == b.fileid, "replaced target");
    CHECK(rename_as(&c, 0, &d, "none", &d, "x", 0) == DAFS_ST_NOENT, "rename noent");
    CHECK(dirop_as(&c, 0, DAFS_OP_MKDIR, &d, "sub", 0, 0755, &e, NULL) == 0, "mkdir sub");
    CHECK(dirop_as(&c, 0, DAFS_OP_MKDIR, &root, "full", 0, 0755, NULL, NULL) == 0, "mkdir full");
    CHECK(rename_as(&c, 0, &root, "full", &root, "rn", 0) == DAFS_ST_NOTEMPTY, "over non-empty");
    CHECK(rename_as(&c, 0, &root, "full", &root, "moved", 0) == DAFS_ST_NOTDIR, "dir over file");
    CHECK(rename_as(&c, 0, &root, "moved", &root, "full", 0) == DAFS_ST_ISDIR, "file over dir");
    CHECK(rename_as(&c, 0, &root, "rn", &e, "loop", 0) == DAFS_ST_INVAL, "dir into itself");
    CHECK(rename_as(&c, 0, &root, "moved", &root, "..", 0) == DAFS_ST_INVAL, "rename to ..");
    CHECK(dirop_as(&c, 0, DAFS_OP_RMDIR, &root, "rn", 0, 0, NULL, NULL) == DAFS_ST_NOTEMPTY,
          "rmdir non-empty");
    /* LINK */
    dafs_request req;
    init_req(&req, DAFS_OP_LINK);
    /* f's inode was replaced above: its handle no longer opens, but this session
     * still has it open (OPEN made an open state), so GETATTR answers, nlink 0 */
    CHECK(fh_op(&c, 0, DAFS_OP_GETATTR, &f, &rep) == 0 && rep.u.attr.attr.nlink == 0,
          "replaced target, still open: nlink %u", rep.u.attr.attr.nlink);
    req.u.link = (dafs_link_req){.fh = g, .dir = d, .name = {(const uint8_t *)"f2", 2}};
    int st = call(&c, &req, &rep);
    CHECK(st == 0 && rep.u.attr.attr.nlink == 2, "link: %d nlink %u", st, rep.u.attr.attr.nlink);
    CHECK(call(&c, &req, &rep) == DAFS_ST_EXIST, "link exists");
    req.u.link.fh = e;
    req.u.link.name = (dafs_bytes){(const uint8_t *)"dl", 2};
    CHECK(call(&c, &req, &rep) == DAFS_ST_PERM, "link a dir");
    req.u.link.fh = g;
    req.u.link.dir = g;
    CHECK(call(&c, &req, &rep) == DAFS_ST_NOTDIR, "link into a file");
    /* LOOKUPP */
    CHECK(fh_op(&c, 0, DAFS_OP_LOOKUPP, &e, &rep) == 0 && same_fh(&rep.u.fh_attr.fh, &d),
          "lookupp sub");
    CHECK(fh_op(&c, 0, DAFS_OP_LOOKUPP, &d, &rep) == 0 && same_fh(&rep.u.fh_attr.fh, &root),
          "lookupp rn");
    CHECK(fh_op(&c, 0, DAFS_OP_LOOKUPP, &root, &rep) == 0 && same_fh(&rep.u.fh_attr.fh, &root),
          "root is its own parent");
    CHECK(fh_op(&c, 0, DAFS_OP_LOOKUPP, &g, &rep) == DAFS_ST_NOTDIR, "lookupp of a file");
    CHECK(fh_op(&c, 0, DAFS_OP_STATFS, &d, &rep) == 0 && rep.u.statfs.namemax >= 255, "statfs");
    client_close(&c);
}

static void test_symlink_mknod(void)
{
    client c;
    CHECK(open_session(&c, "symlink") == 0, "connect");
    dafs_fh root, l, f, n;
    dafs_attr a;
    dafs_reply rep;
    dafs_request req;
    CHECK(getroot(&c, &root) == 0, "getroot");
    const char *target = "../../etc/../nowhere//x";
    init_req(&req, DAFS_OP_SYMLINK);
    req.u.symlink = (dafs_symlink_req){.dir = root, .name = {(const uint8_t *)"sl", 2},
                                       .target = {(const uint8_t *)target,
                                                  (uint32_t)strlen(target)}};
    CHECK(call(&c, &req, &rep) == 0 && S_ISLNK(rep.u.fh_attr.attr.mode), "symlink");
    l = rep.u.fh_attr.fh;
    CHECK(call(&c, &req, &rep) == DAFS_ST_EXIST, "symlink exists");
    CHECK(fh_op(&c, 0, DAFS_OP_READLINK, &l, &rep) == 0 &&
              rep.u.readlink.target.len == strlen(target) &&
              memcmp(rep.u.readlink.target.ptr, target, strlen(target)) == 0, "readlink verbatim");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &root, "sl", DAFS_OPEN_RDONLY, 0, NULL, NULL) ==
              DAFS_ST_LOOP, "open through symlink");
    CHECK(dirop_as(&c, 0, DAFS_OP_LOOKUP, &l, "x", 0, 0, NULL, NULL) == DAFS_ST_NOTDIR,
          "lookup under a symlink");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &root, "plain", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644,
                   &f, NULL) == 0, "create");
    CHECK(fh_op(&c, 0, DAFS_OP_READLINK, &f, &rep) == DAFS_ST_INVAL, "readlink of a file");
    CHECK(dirop_as(&c, 0, DAFS_OP_LOOKUP, &f, "x", 0, 0, NULL, NULL) == DAFS_ST_NOTDIR,
          "lookup in a file");
    /* MKNOD */
    struct { const char *name; uint32_t mode; uint64_t rdev; } nodes[] = {
        {"fifo", S_IFIFO | 0644, 0}, {"sock", S_IFSOCK | 0644, 0}, {"reg", S_IFREG | 0600, 0}};
    for (int i = 0; i < 3; i++) {
        init_req(&req, DAFS_OP_MKNOD);
        req.u.mknod = (dafs_mknod_req){.dir = root, .name = {(const uint8_t *)nodes[i].name,
                                                             (uint32_t)strlen(nodes[i].name)},
                                       .mode = nodes[i].mode, .rdev = nodes[i].rdev};
        CHECK(call(&c, &req, &rep) == 0 && rep.u.fh_attr.attr.mode == nodes[i].mode,
              "mknod %s", nodes[i].name);
        if (i == 0)
            n = rep.u.fh_attr.fh;
    }
    CHECK(call(&c, &req, &rep) == DAFS_ST_EXIST, "mknod exists");
    req.u.mknod.name = (dafs_bytes){(const uint8_t *)"dir", 3};
    req.u.mknod.mode = S_IFDIR | 0755;
    CHECK(call(&c, &req, &rep) == DAFS_ST_INVAL, "mknod a dir");
    req.u.mknod.mode = S_IFCHR | 0600;
    req.u.mknod.rdev = makedev(1, 3);
    int st = call(&c, &req, &rep);
    CHECK(st == 0 || st == DAFS_ST_PERM, "mknod chr as root: %d", st);
    /* data ops on non-regular files */
    uint32_t got;
    bool eof;
    CHECK(read_inline(&c, &n, 0, 10, NULL, &got, &eof) == DAFS_ST_INVAL, "read a fifo");
    CHECK(read_inline(&c, &root, 0, 10, NULL, &got, &eof) == DAFS_ST_ISDIR, "read a dir");
    CHECK(write_inline(&c, &root, 0, "x", 1) == DAFS_ST_ISDIR, "write a dir");
    /* ACCESS as root: x on a 0644 file is refused even to root */
    CHECK(access_as(&c, 0, &f, DAFS_ACCESS_READ | DAFS_ACCESS_WRITE) == 0, "access rw");
    CHECK(access_as(&c, 0, &f, DAFS_ACCESS_EXEC) == DAFS_ST_ACCES, "access x");
    CHECK(access_as(&c, 0, &f, 0) == 0, "access exists");
    (void)a;
    /* EXDEV: a mount inside the export is never crossed */
    char mnt[400];
    snprintf(mnt, sizeof(mnt), "%s/mnt", export_dir);
    CHECK(mkdir(mnt, 0755) == 0, "mkdir mnt");
    if (mount("dafs-test", mnt, "tmpfs", 0, "size=1m") == 0) {
        st = dirop_as(&c, 0, DAFS_OP_LOOKUP, &root, "mnt", 0, 0, NULL, NULL);
        (void)umount2(mnt, MNT_DETACH);
        CHECK(st == DAFS_ST_XDEV, "lookup of a mount point: %d", st);
    } else {
        fprintf(stderr, "note: cannot mount tmpfs here (%s); EXDEV not checked\n",
                strerror(errno));
    }
    client_close(&c);
}

/* ---- identities ---------------------------------------------------------- */

static void test_permissions(void)
{
    client c;
    CHECK(open_session(&c, "perms") == 0, "connect");
    uint32_t A, B, C, shared = GID_SHARED;
    CHECK(register_cred(&c, UID_A, UID_A, 0, NULL, &A) == 0 && A != 0, "register A");
    CHECK(register_cred(&c, UID_B, UID_B, 0, NULL, &B) == 0 && B != 0 && B != A, "register B");
    CHECK(register_cred(&c, UID_C, UID_C, 1, &shared, &C) == 0, "register C");
    dafs_fh root, pub, fa, sg, priv;
    dafs_attr a;
    CHECK(getroot(&c, &root) == 0, "getroot");
    /* a sticky, world-writable directory */
    CHECK(dirop_as(&c, 0, DAFS_OP_MKDIR, &root, "pub", 0, 0777, &pub, NULL) == 0, "mkdir pub");
    dafs_setattr_req s = {.valid = DAFS_SET_MODE, .mode = 01777};
    CHECK(setattr_as(&c, 0, &pub, &s, &a) == 0 && (a.mode & 07777) == 01777, "chmod 1777");
    CHECK(dirop_as(&c, A, DAFS_OP_OPEN, &pub, "a", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644, &fa,
                   &a) == 0, "A creates");
    CHECK(a.uid == UID_A && a.gid == UID_A, "owner %u:%u", a.uid, a.gid);
    int st = dirop_as(&c, B, DAFS_OP_REMOVE, &pub, "a", 0, 0, NULL, NULL);
    CHECK(st == DAFS_ST_PERM || st == DAFS_ST_ACCES, "B removes A's file in sticky dir: %d", st);
    st = rename_as(&c, B, &pub, "a", &pub, "b", 0);
    CHECK(st == DAFS_ST_PERM || st == DAFS_ST_ACCES, "B renames A's file: %d", st);
    /* B: read yes, write no; chmod/chown/utimes no */
    dafs_reply rep;
    CHECK(write_as(&c, B, &fa, "nope", DAFS_FILE_SYNC, &rep) == DAFS_ST_ACCES, "B writes");
    CHECK(write_as(&c, A, &fa, "mine", DAFS_FILE_SYNC, &rep) == 0, "A writes");
    uint32_t got;
    bool eof;
    c.cred = B;
    st = read_inline(&c, &fa, 0, 10, NULL, &got, &eof);
    c.cred = 1; /* back to the connect-time root credential */
    CHECK(st == 0 && got == 4, "B reads: %d", st);
    CHECK(access_as(&c, B, &fa, DAFS_ACCESS_READ) == 0, "B access r");
    CHECK(access_as(&c, B, &fa, DAFS_ACCESS_WRITE) == DAFS_ST_ACCES, "B access w");
    CHECK(access_as(&c, A, &fa, DAFS_ACCESS_WRITE) == 0, "A access w");
    s = (dafs_setattr_req){.valid = DAFS_SET_MODE, .mode = 0666};
    CHECK(setattr_as(&c, B, &fa, &s, NULL) == DAFS_ST_PERM, "B chmods");
    s = (dafs_setattr_req){.valid = DAFS_SET_UID, .uid = UID_B};
    CHECK(setattr_as(&c, A, &fa, &s, NULL) == DAFS_ST_PERM, "A gives away");
    s = (dafs_setattr_req){.valid = DAFS_SET_GID, .gid = GID_SHARED};
    CHECK(setattr_as(&c, A, &fa, &s, NULL) == DAFS_ST_PERM, "A chgrp to a foreign group");
    s = (dafs_setattr_req){.valid = DAFS_SET_SIZE, .size = 0};
    CHECK(setattr_as(&c, B, &fa, &s, NULL) == DAFS_ST_ACCES, "B truncates");
    s = (dafs_setattr_req){.valid = DAFS_SET_MTIME, .mtime_sec = 5};
    CHECK(setattr_as(&c, B, &fa, &s, NULL) == DAFS_ST_PERM, "B sets mtime");
    s = (dafs_setattr_req){.valid = DAFS_SET_MTIME_NOW | DAFS_SET_ATIME_NOW};
    CHECK(setattr_as(&c, B, &fa, &s, NULL) == DAFS_ST_ACCES, "B touches (no write access)");
    CHECK(setattr_as(&c, A, &fa, &s, NULL) == 0, "A touches");
    s = (dafs_setattr_req){.valid = DAFS_SET_MODE, .mode = 0600};
    CHECK(setattr_as(&c, A, &fa, &s, NULL) == 0, "A chmods");
    c.cred = B;
    st = read_inline(&c, &fa, 0, 10, NULL, &got, &eof);
    c.cred = 1;
    CHECK(st == DAFS_ST_ACCES, "B reads a 0600 file: %d", st);
    CHECK(dirop_as(&c, A, DAFS_OP_REMOVE, &pub, "a", 0, 0, NULL, NULL) == 0, "A removes");
    /* a setgid directory of the shared group */
    CHECK(dirop_as(&c, 0, DAFS_OP_MKDIR, &root, "sg", 0, 0775, &sg, NULL) == 0, "mkdir sg");
    s = (dafs_setattr_req){.valid = DAFS_SET_GID | DAFS_SET_MODE, .gid = GID_SHARED,
                           .mode = 02775};
    CHECK(setattr_as(&c, 0, &sg, &s, &a) == 0 && (a.mode & 02000), "chmod g+s");
    CHECK(dirop_as(&c, C, DAFS_OP_OPEN, &sg, "x", DAFS_OPEN_WRONLY | DAFS_OPEN_CREAT, 0644, NULL,
                   &a) == 0 && a.uid == UID_C && a.gid == GID_SHARED, "setgid file %u:%u",
          a.uid, a.gid);
    CHECK(dirop_as(&c, C, DAFS_OP_MKDIR, &sg, "y", 0, 0755, NULL, &a) == 0 &&
              a.gid == GID_SHARED && (a.mode & 02000), "setgid subdir %o", a.mode);
    st = dirop_as(&c, A, DAFS_OP_OPEN, &sg, "z", DAFS_OPEN_WRONLY | DAFS_OPEN_CREAT, 0644, NULL,
                  NULL);
    CHECK(st == DAFS_ST_ACCES, "A (not in the group) creates in sg: %d", st);
    /* a 0700 directory of A blocks B's lookups and listing */
    CHECK(dirop_as(&c, A, DAFS_OP_MKDIR, &pub, "priv", 0, 0700, &priv, &a) == 0 &&
              a.uid == UID_A, "A mkdir 0700");
    CHECK(dirop_as(&c, A, DAFS_OP_OPEN, &priv, "in", DAFS_OPEN_WRONLY | DAFS_OPEN_CREAT, 0644,
                   NULL, NULL) == 0, "A creates inside");
    CHECK(dirop_as(&c, B, DAFS_OP_LOOKUP, &priv, "in", 0, 0, NULL, NULL) == DAFS_ST_ACCES,
          "B looks up in A's 0700 dir");
    /* The same lookups again, now certainly on the network thread's fast path
     * (the directory's fd and the dentries are cached): it runs each as its
     * caller and goes back to root, whatever the order. */
    for (int round = 0; round < 3; round++) {
        CHECK(dirop_as(&c, A, DAFS_OP_LOOKUP, &priv, "in", 0, 0, NULL, &a) == 0 &&
                  a.uid == UID_A, "A looks up in its own 0700 dir (round %d)", round);
        CHECK(dirop_as(&c, B, DAFS_OP_LOOKUP, &priv, "in", 0, 0, NULL, NULL) == DAFS_ST_ACCES,
              "B is refused again (round %d)", round);
        CHECK(dirop_as(&c, B, DAFS_OP_LOOKUP, &priv, "nosuch", 0, 0, NULL, NULL) ==
                  DAFS_ST_ACCES, "B cannot even learn a name is absent (round %d)", round);
        CHECK(dirop_as(&c, 0, DAFS_OP_LOOKUP, &priv, "in", 0, 0, NULL, NULL) == 0,
              "root (no squash) looks up after B: the thread is root again (round %d)", round);
        CHECK(dirop_as(&c, A, DAFS_OP_LOOKUP, &priv, "nosuch", 0, 0, NULL, NULL) ==
                  DAFS_ST_NOENT, "A: a missing name is NOENT (round %d)", round);
    }
    /* a new session after the network thread ran as B: on shm, attaching the
     * new peer's region needs root's identity back */
    client c2;
    CHECK(open_session(&c2, "perms-after-lookups") == 0, "a new session after B's lookups");
    CHECK(getroot(&c2, &root) == 0, "getroot on the new session");
    client_close(&c2);
    dafs_request req;
    init_req(&req, DAFS_OP_READDIR);
    req.hdr.cred = B;
    req.u.readdir.dir = priv;
    req.u.readdir.maxcount = 4096;
    CHECK(call(&c, &req, &rep) == DAFS_ST_ACCES, "B lists A's 0700 dir");
    CHECK(fh_op(&c, B, DAFS_OP_LOOKUPP, &priv, &rep) == DAFS_ST_ACCES, "B lookupp from it");
    CHECK(dirop_as(&c, B, DAFS_OP_MKDIR, &root, "nob", 0, 0755, NULL, NULL) == DAFS_ST_ACCES,
          "B mkdir in root's 0755 dir");
    /* devices need CAP_MKNOD, which a non-root caller never has */
    init_req(&req, DAFS_OP_MKNOD);
    req.hdr.cred = A;
    req.u.mknod = (dafs_mknod_req){.dir = pub, .name = {(const uint8_t *)"null", 4},
                                   .mode = S_IFCHR | 0666, .rdev = makedev(1, 3)};
    CHECK(call(&c, &req, &rep) == DAFS_ST_PERM, "A mknod a device");
    /* credential ids */
    CHECK(access_as(&c, 60, &root, 0) == DAFS_ST_PERM, "unregistered id");
    init_req(&req, DAFS_OP_RELEASE_CRED);
    req.u.cred_id.cred_id = B;
    CHECK(call(&c, &req, &rep) == 0, "release");
    CHECK(call(&c, &req, &rep) == DAFS_ST_INVAL, "release twice");
    CHECK(access_as(&c, B, &root, 0) == DAFS_ST_PERM, "released id");
    int n = 0;
    uint32_t id;
    while (n < 100 && register_cred(&c, 7, 7, 0, NULL, &id) == 0)
        n++;
    CHECK(n > 0 && n < 64 && register_cred(&c, 7, 7, 0, NULL, &id) == DAFS_ST_AGAIN,
          "table bound: %d more", n);
    client_close(&c);
}

/* Default root_squash, all_squash with anon ids, read-only. */
static void test_squash(void)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/open", export_dir);
    CHECK(mkdir(dir, 0777) == 0 && chmod(dir, 0777) == 0, "mkdir open");
    struct { const char *tag; const char *args[6]; uint32_t uid, gid; } cases[] = {
        {"rootsquash", {NULL}, 65534, 65534},
        {"allsquash", {"--all-squash", "--anon-uid", "4242", "--anon-gid", "4343", NULL}, 4242,
         4343},
    };
    for (int i = 0; i < 2; i++) {
        daemon_proc d;
        CHECK(start_dafsd_args(&d, cases[i].tag, cases[i].args) == 0, "start %s", cases[i].tag);
        client c;
        const char *saved = port;
        port = d.port;
        int st = open_session(&c, cases[i].tag); /* registers uid 0 */
        port = saved;
        dafs_fh root, dd;
        dafs_attr a, b;
        uint32_t user = 0;
        if (st == 0)
            st = getroot(&c, &root);
        if (st == 0)
            st = dirop_as(&c, 0, DAFS_OP_LOOKUP, &root, "open", 0, 0, &dd, NULL);
        int s1 = st ? st : dirop_as(&c, 0, DAFS_OP_OPEN, &dd, cases[i].tag,
                                    DAFS_OPEN_WRONLY | DAFS_OPEN_CREAT, 0644, NULL, &a);
        int s2 = register_cred(&c, UID_A, UID_A, 0, NULL, &user);
        char name[64];
        snprintf(name, sizeof(name), "%s-user", cases[i].tag);
        if (s2 == 0)
            s2 = dirop_as(&c, user, DAFS_OP_OPEN, &dd, name, DAFS_OPEN_WRONLY | DAFS_OPEN_CREAT,
                          0644, NULL, &b);
        /* cred 0: anonymous */
        snprintf(name, sizeof(name), "%s-anon", cases[i].tag);
        dafs_attr an;
        dafs_request req;
        dafs_reply rep;
        init_req(&req, DAFS_OP_OPEN);
        c.cred = 0;
        req.u.dirop = (dafs_dirop_req){.dir = dd, .name = {(const uint8_t *)name,
                                                           (uint32_t)strlen(name)},
                                       .flags = DAFS_OPEN_WRONLY | DAFS_OPEN_CREAT, .mode = 0644};
        int s3 = call(&c, &req, &rep);
        an = rep.u.fh_attr.attr;
        client_close(&c);
        int rc = stop_dafsd(&d);
        CHECK(s1 == 0 && a.uid == cases[i].uid && a.gid == cases[i].gid,
              "%s: root creates: %d as %u:%u", cases[i].tag, s1, a.uid, a.gid);
        uint32_t uexp = i == 0 ? UID_A : cases[i].uid;
        CHECK(s2 == 0 && b.uid == uexp, "%s: user creates: %d as %u", cases[i].tag, s2, b.uid);
        CHECK(s3 == 0 && an.uid == cases[i].uid, "%s: anon: %d as %u", cases[i].tag, s3, an.uid);
        CHECK(rc == 0, "%s: exit %d", cases[i].tag, rc);
    }
    /* read-only */
    daemon_proc d;
    const char *ro[] = {"--read-only", "--no-root-squash", NULL};
    CHECK(start_dafsd_args(&d, "ro", ro) == 0, "start ro");
    client c;
    const char *saved = port;
    port = d.port;
    int st = open_session(&c, "ro");
    port = saved;
    dafs_fh root, f;
    dafs_reply rep;
    int s[6] = {st, -1, -1, -1, -1, -1};
    if (st == 0 && getroot(&c, &root) == 0) {
        s[1] = dirop_as(&c, 0, DAFS_OP_MKDIR, &root, "x", 0, 0755, NULL, NULL);
        s[2] = dirop_as(&c, 0, DAFS_OP_OPEN, &root, "hello-ro", DAFS_OPEN_WRONLY |
                        DAFS_OPEN_CREAT, 0644, NULL, NULL);
        s[3] = dirop_as(&c, 0, DAFS_OP_OPEN, &root, "open", DAFS_OPEN_RDONLY, 0, &f, NULL);
        s[4] = access_as(&c, 0, &root, DAFS_ACCESS_WRITE);
        dafs_setattr_req sa = {.valid = DAFS_SET_MODE, .mode = 0700};
        s[5] = setattr_as(&c, 0, &root, &sa, NULL);
        (void)rep;
    }
    client_close(&c);
    int rc = stop_dafsd(&d);
    CHECK(s[0] == 0 && s[1] == DAFS_ST_ROFS && s[2] == DAFS_ST_ROFS && s[3] == 0 &&
              s[4] == DAFS_ST_ROFS && s[5] == DAFS_ST_ROFS && rc == 0,
          "read-only: %d %d %d %d %d %d exit %d", s[0], s[1], s[2], s[3], s[4], s[5], rc);
}

/* ---- APPEND from several sessions at once -------------------------------- */

#define APPENDERS 4
#define APPENDS 100
#define RECORD 64

typedef struct appender {
    int index;
    dafs_fh fh;
    uint64_t offsets[APPENDS];
    int errors;
} appender;

static void *append_main(void *arg)
{
    appender *ap = arg;
    client c;
    char id[32];
    snprintf(id, sizeof(id), "append-%d", ap->index);
    if (open_session(&c, id) != 0) {
        ap->errors = APPENDS;
        return NULL;
    }
    for (int i = 0; i < APPENDS; i++) {
        char rec[RECORD];
        memset(rec, 'a' + ap->index, sizeof(rec));
        snprintf(rec, sizeof(rec), "%d:%d:", ap->index, i);
        dafs_request req;
        dafs_reply rep;
        init_req(&req, DAFS_OP_APPEND_INLINE);
        req.u.write.fh = ap->fh;
        req.u.write.count = RECORD;
        req.u.write.stable = DAFS_UNSTABLE;
        req.u.write.data = (dafs_bytes){(const uint8_t *)rec, RECORD};
        if (call(&c, &req, &rep) != 0 || rep.u.write.count != RECORD)
            ap->errors++;
        ap->offsets[i] = rep.u.write.offset;
    }
    client_close(&c);
    return NULL;
}

static void test_append(void)
{
    client c;
    CHECK(open_session(&c, "append") == 0, "connect");
    dafs_fh root, f;
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &root, "log", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644, &f,
                   NULL) == 0, "create");
    static appender aps[APPENDERS];
    pthread_t th[APPENDERS];
    for (int i = 0; i < APPENDERS; i++) {
        aps[i] = (appender){.index = i, .fh = f};
        CHECK(pthread_create(&th[i], NULL, append_main, &aps[i]) == 0, "thread");
    }
    for (int i = 0; i < APPENDERS; i++)
        pthread_join(th[i], NULL);
    static bool used[APPENDERS * APPENDS];
    memset(used, 0, sizeof(used));
    char path[400];
    snprintf(path, sizeof(path), "%s/log", export_dir);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size == APPENDERS * APPENDS * RECORD, "size %lld",
          (long long)st.st_size);
    FILE *fp = fopen(path, "r");
    CHECK(fp != NULL, "open log");
    static char all[APPENDERS * APPENDS * RECORD];
    size_t n = fread(all, 1, sizeof(all), fp);
    fclose(fp);
    CHECK(n == sizeof(all), "read log");
    for (int t = 0; t < APPENDERS; t++) {
        CHECK(aps[t].errors == 0, "appender %d: %d errors", t, aps[t].errors);
        for (int i = 0; i < APPENDS; i++) {
            uint64_t off = aps[t].offsets[i];
            CHECK(off % RECORD == 0 && off / RECORD < APPENDERS * APPENDS && !used[off / RECORD],
                  "offset %llu", (unsigned long long)off);
            used[off / RECORD] = true;
            char want[RECORD];
            memset(want, 'a' + t, sizeof(want));
            snprintf(want, sizeof(want), "%d:%d:", t, i);
            CHECK(memcmp(all + off, want, RECORD) == 0, "record %d:%d not at %llu", t, i,
                  (unsigned long long)off);
        }
    }
    /* APPEND_DIRECT lands at the end too */
    memset(c.data, 'Z', 1000);
    dafs_seg seg = {.addr = c.data_mr->remote_addr, .key = c.data_mr->key, .len = 1000};
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_APPEND_DIRECT);
    req.u.write.fh = f;
    req.u.write.count = 1000;
    req.u.write.stable = DAFS_FILE_SYNC;
    req.u.write.nsegs = 1;
    req.u.write.segs[0] = seg;
    CHECK(call(&c, &req, &rep) == 0 && rep.u.write.offset == sizeof(all) &&
              rep.u.write.committed == DAFS_FILE_SYNC, "append direct at %llu",
          (unsigned long long)rep.u.write.offset);
    init_req(&req, DAFS_OP_APPEND_INLINE);
    req.u.write.fh = root;
    req.u.write.count = 1;
    req.u.write.data = (dafs_bytes){(const uint8_t *)"x", 1};
    CHECK(call(&c, &req, &rep) == DAFS_ST_ISDIR, "append to a dir");
    client_close(&c);
}

/* ---- COMMIT, verifier, handles across restarts --------------------------- */

static void test_restart(daemon_proc *d)
{
    client c;
    CHECK(open_session(&c, "restart") == 0, "connect");
    dafs_fh root, keep, gone;
    dafs_reply rep;
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &root, "keep", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644,
                   &keep, NULL) == 0, "create keep");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &root, "gone", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644,
                   &gone, NULL) == 0, "create gone");
    CHECK(write_as(&c, 0, &keep, "kept data", DAFS_UNSTABLE, &rep) == 0 &&
              rep.u.write.committed == DAFS_UNSTABLE, "unstable write");
    uint64_t v1 = rep.u.write.verifier;
    dafs_request req;
    init_req(&req, DAFS_OP_COMMIT);
    req.u.commit = (dafs_commit_req){.fh = keep, .stable = DAFS_FILE_SYNC};
    CHECK(call(&c, &req, &rep) == 0 && rep.u.commit.verifier == v1, "commit");
    CHECK(write_as(&c, 0, &keep, "kept data", DAFS_DATA_SYNC, &rep) == 0 &&
              rep.u.write.committed == DAFS_DATA_SYNC, "data sync write");
    client_close(&c);
    for (int round = 0; round < 2; round++) {
        if (round == 0) {
            CHECK(stop_dafsd(d) == 0, "SIGTERM");
        } else {
            kill(d->pid, SIGKILL);
            waitpid(d->pid, NULL, 0);
        }
        CHECK(start_dafsd(d, NULL) == 0, "restart %d", round);
        port = d->port;
        if (round == 0) {
            char path[400];
            snprintf(path, sizeof(path), "%s/gone", export_dir);
            CHECK(unlink(path) == 0, "unlink gone");
        }
        CHECK(open_session(&c, "restart") == 0, "reconnect %d", round);
        uint32_t got;
        bool eof;
        char buf[32];
        CHECK(read_inline(&c, &keep, 0, sizeof(buf), buf, &got, &eof) == 0 && got == 9 &&
                  memcmp(buf, "kept data", 9) == 0, "old handle reads after restart %d", round);
        CHECK(fh_op(&c, 0, DAFS_OP_GETATTR, &gone, &rep) == DAFS_ST_STALE, "removed: STALE");
        CHECK(write_as(&c, 0, &keep, "kept data", DAFS_UNSTABLE, &rep) == 0 &&
                  rep.u.write.verifier != v1, "verifier changed after restart %d", round);
        v1 = rep.u.write.verifier;
        client_close(&c);
    }
}

/* ---- a client that stops progressing ------------------------------------ */

static void test_stuck_client(void)
{
    daemon_proc d;
    const char *args[] = {"--no-root-squash", "--io-timeout-ms", "1000", "--threads", "2", NULL};
    CHECK(start_dafsd_args(&d, "stuck", args) == 0, "start");
    const char *saved = port;
    port = d.port;
    client s, g;
    int st = open_session(&s, "stuck");
    int st2 = open_session(&g, "good");
    port = saved;
    dafs_fh root, f;
    if (st == 0)
        st = getroot(&s, &root);
    if (st == 0)
        st = dirop_as(&s, 0, DAFS_OP_OPEN, &root, "bigfile", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT,
                      0644, &f, NULL);
    dafs_seg seg = {.addr = s.data_mr->remote_addr, .key = s.data_mr->key, .len = 1u << 20};
    uint32_t got = 0;
    if (st == 0)
        st = direct(&s, DAFS_OP_WRITE_DIRECT, &f, 0, 1u << 20, &seg, 1, &got);
    /* many big reads, then no progress at all on s */
    int sent = 0;
    for (int i = 0; st == 0 && i < 12; i++) {
        dafs_request req;
        init_req(&req, DAFS_OP_READ_DIRECT);
        req.u.read = (dafs_read_req){.fh = f, .count = 1u << 20, .nsegs = 1};
        req.u.read.segs[0] = seg;
        uint8_t buf[MSG];
        int len = encode(&s, &req, buf);
        if (len > 0 && send_raw(&s, buf, (size_t)len) == 0)
            sent++;
    }
    int64_t worst = 0;
    int served = 0;
    for (int i = 0; st2 == 0 && i < 20; i++) {
        int64_t t0 = now_ms();
        dafs_fh r;
        if (getroot(&g, &r) == 0)
            served++;
        int64_t dt = now_ms() - t0;
        worst = dt > worst ? dt : worst;
        usleep(100000);
    }
    bool alive = dafsd_alive(&d);
    client_close(&s);
    client_close(&g);
    int rc = stop_dafsd(&d);
    CHECK(st == 0 && st2 == 0 && sent == 12, "setup %d %d sent %d", st, st2, sent);
    fprintf(stderr, "stuck client: other client served %d/20, worst %lld ms\n", served,
            (long long)worst);
    CHECK(served == 20 && worst < 3000, "served %d, worst %lld ms", served, (long long)worst);
    CHECK(alive && rc == 0, "dafsd alive %d exit %d", alive, rc);
}

/* ---- open state (protocol v2 stateids) ----------------------------------- */

/* OPEN as cred; *sid gets the stateid. */
static int open_state_as(client *c, uint32_t cred, const dafs_fh *dir, const char *name,
                         uint32_t flags, uint32_t mode, dafs_fh *fh, dafs_stateid *sid)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_OPEN);
    req.hdr.cred = cred;
    req.u.dirop = (dafs_dirop_req){.dir = *dir, .flags = flags, .mode = mode,
                                   .name = {(const uint8_t *)name, (uint32_t)strlen(name)}};
    int st = call(c, &req, &rep);
    if (st == 0) {
        *fh = rep.u.fh_attr.fh;
        *sid = rep.u.fh_attr.stateid;
    }
    return st;
}

static int open_fh_as(client *c, uint32_t cred, const dafs_fh *fh, uint32_t flags,
                      dafs_stateid *sid)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_OPEN_FH);
    req.hdr.cred = cred;
    req.u.open_fh = (dafs_open_fh_req){.fh = *fh, .flags = flags};
    int st = call(c, &req, &rep);
    if (st == 0)
        *sid = rep.u.fh_attr.stateid;
    return st;
}

static int write_sid(client *c, uint32_t cred, const dafs_fh *fh, dafs_stateid sid,
                     const char *data)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_WRITE_INLINE);
    req.hdr.cred = cred;
    req.u.write = (dafs_write_req){.fh = *fh, .stateid = sid, .count = (uint32_t)strlen(data),
                                   .data = {(const uint8_t *)data, (uint32_t)strlen(data)}};
    return call(c, &req, &rep);
}

/* READ_INLINE of up to 64 bytes at 0 into out (NUL-terminated). */
static int read_sid(client *c, uint32_t cred, const dafs_fh *fh, dafs_stateid sid, char out[65])
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_READ_INLINE);
    req.hdr.cred = cred;
    req.u.read = (dafs_read_req){.fh = *fh, .stateid = sid, .count = 64};
    int st = call(c, &req, &rep);
    out[0] = '\0';
    if (st == 0) {
        memcpy(out, rep.u.read.data.ptr, rep.u.read.data.len);
        out[rep.u.read.data.len] = '\0';
    }
    return st;
}

static int close_sid(client *c, uint32_t cred, const dafs_fh *fh, dafs_stateid sid)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_CLOSE);
    req.hdr.cred = cred;
    req.u.close = (dafs_close_req){.fh = *fh, .stateid = sid};
    return call(c, &req, &rep);
}

/* How many of dafsd's descriptors name a file called `name` (unlinked or not). */
static int fds_naming(pid_t pid, const char *name)
{
    char dir[64], path[320], target[512];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
    int n = 0;
    for (int fd = 0; fd < 4096; fd++) {
        snprintf(path, sizeof path, "%s/%d", dir, fd);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len <= 0)
            continue;
        target[len] = '\0';
        if (strstr(target, name) != NULL)
            n++;
    }
    return n;
}

/* The access granted at open stays with the open: mode 0 at creation,
 * chmod 0000 while open, unlink while open; stateids are checked. */
static void test_open_state(void)
{
    client c, other;
    CHECK(open_session(&c, "ostate") == 0, "connect");
    uint32_t A;
    CHECK(register_cred(&c, UID_A, UID_A, 0, NULL, &A) == 0, "register A");
    dafs_fh root, d, f, g;
    dafs_stateid s1 = 0, s2 = 0;
    char buf[65];
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop_as(&c, 0, DAFS_OP_MKDIR, &root, "ostate", 0, 0777, &d, NULL) == 0, "mkdir");
    dafs_setattr_req chmod777 = {.valid = DAFS_SET_MODE, .mode = 0777};
    CHECK(setattr_as(&c, 0, &d, &chmod777, NULL) == 0, "chmod 777");
    /* open(O_CREAT|O_RDWR, 0) then write and read, as a non-root user */
    CHECK(open_state_as(&c, A, &d, "os0", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT | DAFS_OPEN_EXCL, 0,
                        &f, &s1) == 0 && s1 != 0, "create mode 0: sid %llx",
          (unsigned long long)s1);
    CHECK(write_sid(&c, A, &f, s1, "granted") == 0, "write under the open");
    CHECK(write_sid(&c, A, &f, 0, "x") == DAFS_ST_ACCES, "write without a stateid: checked");
    CHECK(read_sid(&c, A, &f, s1, buf) == 0 && strcmp(buf, "granted") == 0, "read: '%s'", buf);
    CHECK(read_sid(&c, A, &f, 0, buf) == DAFS_ST_ACCES, "read without a stateid: checked");
    /* SETATTR size and COMMIT under the open */
    dafs_setattr_req trunc = {.valid = DAFS_SET_SIZE, .size = 5, .stateid = s1};
    dafs_attr a;
    CHECK(setattr_as(&c, A, &f, &trunc, &a) == 0 && a.size == 5, "ftruncate under the open");
    trunc.stateid = 0;
    CHECK(setattr_as(&c, A, &f, &trunc, NULL) == DAFS_ST_ACCES, "truncate without: checked");
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_COMMIT);
    req.hdr.cred = A;
    req.u.commit = (dafs_commit_req){.fh = f, .stateid = s1, .stable = DAFS_FILE_SYNC};
    CHECK(call(&c, &req, &rep) == 0, "commit under the open");
    /* forged, stale and misdirected stateids */
    CHECK(read_sid(&c, A, &f, s1 ^ (1ull << 32), buf) == DAFS_ST_BADSTATEID, "other generation");
    CHECK(read_sid(&c, A, &f, s1 + 1000, buf) == DAFS_ST_BADSTATEID, "other index");
    CHECK(read_sid(&c, A, &f, UINT64_MAX, buf) == DAFS_ST_BADSTATEID, "garbage");
    CHECK(read_sid(&c, A, &d, s1, buf) == DAFS_ST_BADSTATEID, "another handle");
    CHECK(open_session(&other, "ostate-other") == 0, "connect other");
    CHECK(read_sid(&other, 0, &f, s1, buf) == DAFS_ST_BADSTATEID, "another session's stateid");
    client_close(&other);
    /* OPEN_FH: read-only open of a 0444 file; its state cannot write */
    CHECK(open_state_as(&c, A, &d, "ro", DAFS_OPEN_WRONLY | DAFS_OPEN_CREAT, 0444, &g, &s2) == 0,
          "create ro");
    CHECK(write_sid(&c, A, &g, s2, "data") == 0, "creator writes a 0444 file");
    CHECK(close_sid(&c, A, &g, s2) == 0, "close ro");
    CHECK(open_fh_as(&c, A, &g, DAFS_OPEN_RDWR, &s2) == DAFS_ST_ACCES, "open_fh rdwr of 0444");
    CHECK(open_fh_as(&c, A, &g, DAFS_OPEN_RDONLY, &s2) == 0 && s2 != 0, "open_fh rdonly");
    CHECK(read_sid(&c, A, &g, s2, buf) == 0 && strcmp(buf, "data") == 0, "read 0444: '%s'", buf);
    CHECK(write_sid(&c, A, &g, s2, "no") == DAFS_ST_BADF, "write on a read-only open");
    CHECK(open_fh_as(&c, A, &d, DAFS_OPEN_RDONLY, &s2) == DAFS_ST_ISDIR, "open_fh dir");
    dafs_fh h;
    dafs_stateid none = 1;
    CHECK(open_state_as(&c, A, &d, "ro", DAFS_OPEN_RDONLY | DAFS_OPEN_NOSTATE, 0, &h, &none) == 0 &&
              none == 0, "NOSTATE open: stateid %llx", (unsigned long long)none);
    CHECK(open_state_as(&c, A, &d, "ro", 0x200, 0, &h, &none) == DAFS_ST_INVAL, "unknown flag");
    /* chmod 0000 on the open file: the open keeps working */
    dafs_setattr_req chmod0 = {.valid = DAFS_SET_MODE, .mode = 0};
    CHECK(setattr_as(&c, A, &f, &chmod0, NULL) == 0, "chmod 0000");
    CHECK(read_sid(&c, A, &f, s1, buf) == 0 && strcmp(buf, "grant") == 0, "read after chmod");
    CHECK(write_sid(&c, A, &f, s1, "again") == 0, "write after chmod");
    /* unlink while open: I/O and GETATTR go on, nlink 0 */
    CHECK(dirop_as(&c, A, DAFS_OP_REMOVE, &d, "os0", 0, 0, NULL, NULL) == 0, "unlink");
    CHECK(read_sid(&c, A, &f, s1, buf) == 0 && strcmp(buf, "again") == 0, "read unlinked");
    CHECK(write_sid(&c, A, &f, s1, "still") == 0, "write unlinked");
    CHECK(fh_op(&c, A, DAFS_OP_GETATTR, &f, &rep) == 0 && rep.u.attr.attr.nlink == 0,
          "getattr unlinked: nlink %u", rep.u.attr.attr.nlink);
    /* CLOSE releases the state and the file */
    CHECK(close_sid(&c, A, &f, s1) == 0, "close");
    CHECK(read_sid(&c, A, &f, s1, buf) == DAFS_ST_BADSTATEID, "read after close");
    CHECK(close_sid(&c, A, &f, s1) == DAFS_ST_BADSTATEID, "close twice");
    int st = fh_op(&c, A, DAFS_OP_GETATTR, &f, &rep);
    CHECK(st == DAFS_ST_STALE || st == DAFS_ST_NOENT, "getattr after the last close: %d", st);
    CHECK(close_sid(&c, A, &g, s2) == 0, "close ro again");
    client_close(&c);
}

/* --max-opens bounds the open states of a session; CLOSE makes room. */
static void test_open_limit(void)
{
    daemon_proc dp;
    const char *args[] = {"--no-root-squash", "--max-opens", "4", NULL};
    CHECK(start_dafsd_args(&dp, "maxopens", args) == 0, "start");
    const char *saved = port;
    port = dp.port;
    client c;
    int st = open_session(&c, "maxopens");
    port = saved;
    dafs_fh root, fh[5];
    dafs_stateid sid[5] = {0};
    int got[5];
    if (st == 0)
        st = getroot(&c, &root);
    for (int i = 0; i < 5; i++) {
        char name[16];
        snprintf(name, sizeof name, "lim%d", i);
        got[i] = st == 0 ? open_state_as(&c, 0, &root, name, DAFS_OPEN_RDWR | DAFS_OPEN_CREAT,
                                         0644, &fh[i], &sid[i])
                         : -1;
    }
    char lim4[400];
    snprintf(lim4, sizeof lim4, "%s/lim4", export_dir);
    bool lim4_made = access(lim4, F_OK) == 0;
    int closed = st == 0 ? close_sid(&c, 0, &fh[0], sid[0]) : -1;
    int again = st == 0 ? open_state_as(&c, 0, &root, "lim4", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644, &fh[4],
                                        &sid[4])
                        : -1;
    client_close(&c);
    int rc = stop_dafsd(&dp);
    CHECK(st == 0, "setup %d", st);
    CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0 && got[3] == 0, "four opens");
    CHECK(got[4] == DAFS_ST_MFILE, "fifth open: %d", got[4]);
    CHECK(!lim4_made, "the refused O_CREAT open created the file");
    CHECK(closed == 0 && again == 0, "after a close: %d %d", closed, again);
    CHECK(rc == 0, "dafsd exit %d", rc);
}

/* The killed client of test_open_state_killed_client, in a fresh process
 * (ns_test --hold-open PORT FD): connect, open and write a file, report on
 * fd ("y", or the step that failed), then wait to be killed. */
static int hold_open_main(const char *p, int fd)
{
    client c;
    dafs_fh root, f;
    dafs_stateid sid;
    port = p;
    char ok = 'y';
    if (open_session(&c, "oskill") != 0)
        ok = 'c';
    else if (getroot(&c, &root) != 0)
        ok = 'r';
    else if (open_state_as(&c, 0, &root, "oskill-victim", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644,
                           &f, &sid) != 0)
        ok = 'o';
    else if (write_sid(&c, 0, &f, sid, "held open") != 0)
        ok = 'w';
    if (write(fd, &ok, 1) != 1)
        return 1;
    for (;;)
        pause(); /* killed by the parent, without a DISCONNECT */
}

/* A killed client's open states are released with its session (lease). */
static void test_open_state_killed_client(void)
{
    daemon_proc dp;
    const char *args[] = {"--no-root-squash", "--lease-ms", "1000", NULL};
    CHECK(start_dafsd_args(&dp, "oskill", args) == 0, "start");
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) { /* exec: no libfabric state inherited across fork */
        char fdarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", ready[1]);
        close(ready[0]);
        execl("/proc/self/exe", "ns_test", "--hold-open", dp.port, fdarg, (char *)NULL);
        _exit(127);
    }
    close(ready[1]);
    char ok = 'n';
    bool got = read(ready[0], &ok, 1) == 1;
    close(ready[0]);
    char path[400];
    snprintf(path, sizeof path, "%s/oskill-victim", export_dir);
    int before = fds_naming(dp.pid, "oskill-victim");
    bool unlinked = unlink(path) == 0;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    int64_t deadline = now_ms() + 15000;
    int after = before;
    while ((after = fds_naming(dp.pid, "oskill-victim")) > 0 && now_ms() < deadline)
        usleep(20000);
    int rc = stop_dafsd(&dp);
    CHECK(got && ok == 'y' && unlinked, "child setup %d %c %d", got, ok, unlinked);
    CHECK(before >= 1, "dafsd holds the open file: %d fds", before);
    CHECK(after == 0, "released after the client died: %d fds left", after);
    CHECK(rc == 0, "dafsd exit %d", rc);
}

/* A version-1 request gets a version-1 VERSION reply (40 bytes). */
static void test_version_mismatch(void)
{
    client c;
    CHECK(open_session(&c, "v1peer") == 0, "connect");
    dafs_request req;
    init_req(&req, DAFS_OP_NULL);
    uint8_t buf[MSG];
    int len = encode(&c, &req, buf);
    CHECK(len == DAFS_HDR_SIZE, "encode %d", len);
    buf[4] = 1; /* version 1 */
    buf[8] = DAFS_HDR_V1_SIZE; /* length 40: the v1 header */
    CHECK(send_raw(&c, buf, DAFS_HDR_V1_SIZE) == 0, "send v1");
    dafs_reply rep;
    int rc = take_reply(&c, 5000, &rep);
    CHECK(rc == -DAFS_ST_VERSION, "reply decodes as another version: %d", rc);
    CHECK(rep.hdr.version == 1 && rep.hdr.length == DAFS_HDR_V1_SIZE &&
              rep.hdr.status == DAFS_ST_VERSION && rep.hdr.xid == req.hdr.xid &&
              (rep.hdr.flags & DAFS_HDR_REPLY),
          "v1 VERSION reply: version %u length %u status %d", rep.hdr.version, rep.hdr.length,
          rep.hdr.status);
    buf[4] = 3; /* a future version gets our own header */
    buf[8] = DAFS_HDR_SIZE;
    CHECK(send_raw(&c, buf, DAFS_HDR_SIZE) == 0, "send v3");
    rc = take_reply(&c, 5000, &rep);
    CHECK(rc == 0 && rep.hdr.version == DAFS_PROTO_VERSION && rep.hdr.status == DAFS_ST_VERSION,
          "v3 peer: rc %d status %d", rc, rep.hdr.status);
    CHECK(simple(&c, DAFS_OP_NULL) == 0, "session still usable");
    client_close(&c);

    /* a version-1 CONNECT from a new peer (not in dafsd's address vector yet):
     * dafsd finds its endpoint in the v1 body and answers VERSION in v1 */
    client n;
    CHECK(client_open(&n, port) == 0, "client open");
    uint8_t name[DAFS_EPNAME_MAX];
    size_t nlen = sizeof name;
    CHECK(dfab_getname(n.f, name, &nlen) == 0, "getname");
    init_req(&req, DAFS_OP_CONNECT);
    req.u.connect = (dafs_connect_req){.client_id = {(const uint8_t *)"v1", 2},
                                       .max_request = MSG, .max_response = MSG,
                                       .inline_max = 8192, .max_credits = 4,
                                       .ep_name = {name, (uint32_t)nlen}};
    len = encode(&n, &req, buf);
    CHECK(len > DAFS_HDR_SIZE, "encode connect %d", len);
    const int grow = DAFS_HDR_SIZE - DAFS_HDR_V1_SIZE; /* v1: the body follows a 40-byte header */
    memmove(buf + DAFS_HDR_V1_SIZE, buf + DAFS_HDR_SIZE, (size_t)(len - DAFS_HDR_SIZE));
    len -= grow;
    buf[4] = 1;
    uint32_t l32 = (uint32_t)len;
    memcpy(buf + 8, &l32, 4); /* little-endian host */
    CHECK(send_raw(&n, buf, (size_t)len) == 0, "send v1 connect");
    rc = take_reply(&n, 5000, &rep);
    CHECK(rc == -DAFS_ST_VERSION && rep.hdr.version == 1 && rep.hdr.status == DAFS_ST_VERSION &&
              rep.hdr.opcode == DAFS_OP_CONNECT && rep.hdr.xid == req.hdr.xid,
          "v1 CONNECT: rc %d version %u status %d", rc, rep.hdr.version, rep.hdr.status);
    client_close(&n);
}

/* ---- the extra ops (70..79) and long group lists ----------------------- */

static int ext_call(client *c, uint32_t cred, dafs_request *req, dafs_reply *rep)
{
    req->hdr.cred = cred;
    return call(c, req, rep);
}

static int falloc(client *c, const dafs_fh *fh, uint32_t mode, uint64_t off, uint64_t len,
                  dafs_attr *after)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_FALLOCATE);
    req.u.fallocate = (dafs_fallocate_req){.fh = *fh, .mode = mode, .offset = off, .length = len};
    int st = ext_call(c, 0, &req, &rep);
    if (st == 0 && after)
        *after = rep.u.attr.attr;
    return st;
}

static int seek_to(client *c, const dafs_fh *fh, uint64_t off, uint32_t what, uint64_t *where)
{
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_SEEK);
    req.u.seek = (dafs_seek_req){.fh = *fh, .offset = off, .what = what};
    int st = ext_call(c, 0, &req, &rep);
    *where = st == 0 ? rep.u.u64.value : UINT64_MAX;
    return st;
}

static int xattr_op(client *c, uint32_t cred, uint16_t op, const dafs_fh *fh, const char *name,
                    const char *value, uint32_t size_or_flags, dafs_reply *rep)
{
    dafs_request req;
    init_req(&req, op);
    req.u.xattr.fh = *fh;
    if (name)
        req.u.xattr.name = (dafs_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
    if (value)
        req.u.xattr.value = (dafs_bytes){(const uint8_t *)value, (uint32_t)strlen(value)};
    if (op == DAFS_OP_SETXATTR)
        req.u.xattr.flags = size_or_flags;
    else
        req.u.xattr.size = size_or_flags;
    return ext_call(c, cred, &req, rep);
}

/* A request the encoder would refuse, sent anyway: encode it, patch one
 * byte, send it; returns the reply's status. */
static int send_patched(client *c, dafs_request *req, size_t at, uint8_t byte)
{
    uint8_t buf[MSG];
    int len = encode(c, req, buf);
    if (len <= 0 || at >= (size_t)len)
        return -1000;
    buf[at] = byte;
    if (send_raw(c, buf, (size_t)len) != 0)
        return -1001;
    dafs_reply rep;
    for (;;) {
        int rc = take_reply(c, 5000, &rep);
        if (rc != 0)
            return rc;
        if (rep.hdr.xid == req->hdr.xid)
            return rep.hdr.status;
    }
}

static void test_ext(void)
{
    client c;
    CHECK(open_session(&c, "ext") == 0, "connect");
    uint32_t A;
    CHECK(register_cred(&c, UID_A, UID_A, 0, NULL, &A) == 0, "register A");
    dafs_fh root, f, g;
    dafs_attr a;
    CHECK(getroot(&c, &root) == 0, "getroot");
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &root, "ext", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0666, &f,
                   NULL) == 0, "create ext");
    static uint8_t block[4096];
    for (int i = 0; i < 16; i++) { /* 64 KiB of data */
        memset(block, 'a' + i, sizeof block);
        CHECK(write_inline(&c, &f, (uint64_t)i * 4096, block, sizeof block) == 0, "write %d", i);
    }
    /* every fallocate mode ext4 has, through the protocol (FUSE passes on fewer) */
    CHECK(falloc(&c, &f, DAFS_FALLOC_COLLAPSE_RANGE, 16384, 8192, &a) == 0 && a.size == 57344,
          "collapse: size %llu", (unsigned long long)a.size);
    CHECK(falloc(&c, &f, DAFS_FALLOC_INSERT_RANGE, 0, 4096, &a) == 0 && a.size == 61440,
          "insert: size %llu", (unsigned long long)a.size);
    CHECK(falloc(&c, &f, 0, 61440, 4096, &a) == 0 && a.size == 65536, "mode 0 grows");
    CHECK(falloc(&c, &f, DAFS_FALLOC_PUNCH_HOLE | DAFS_FALLOC_KEEP_SIZE, 8192, 8192, &a) == 0 &&
              a.size == 65536, "punch");
    int st = falloc(&c, &f, DAFS_FALLOC_PUNCH_HOLE, 0, 4096, NULL);
    CHECK(st == DAFS_ST_NOTSUP, "punch without keep-size: %d", st);
    st = falloc(&c, &f, 0, (uint64_t)INT64_MAX, 2, NULL);
    CHECK(st == DAFS_ST_INVAL, "offset + length past off_t: %d", st);
    /* SEEK: the inserted range at 0 and the punched one are holes */
    uint64_t where;
    CHECK(seek_to(&c, &f, 0, DAFS_SEEK_DATA, &where) == 0 && where == 4096, "data at %llu",
          (unsigned long long)where);
    CHECK(seek_to(&c, &f, 4096, DAFS_SEEK_HOLE, &where) == 0 && where == 8192, "hole at %llu",
          (unsigned long long)where);
    st = seek_to(&c, &f, 1u << 20, DAFS_SEEK_DATA, &where);
    CHECK(st == DAFS_ST_NXIO, "seek past the end: %d", st);
    /* COPY_RANGE on the server */
    CHECK(dirop_as(&c, 0, DAFS_OP_OPEN, &root, "ext2", DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, 0644, &g,
                   NULL) == 0, "create ext2");
    dafs_request req;
    dafs_reply rep;
    init_req(&req, DAFS_OP_COPY_RANGE);
    req.u.copy = (dafs_copy_req){.src = f, .src_offset = 4096, .dst = g, .length = 1u << 20};
    st = call(&c, &req, &rep);
    CHECK(st == 0 && rep.u.u64.value == 61440, "copy: %d, %llu bytes", st,
          (unsigned long long)rep.u.u64.value);
    req.u.copy.dst = f; /* overlapping the source in one file */
    req.u.copy.dst_offset = 8192;
    st = call(&c, &req, &rep);
    CHECK(st == DAFS_ST_INVAL, "overlapping copy: %d", st);
    /* xattrs: as the caller, with the kernel's rules, trusted.* root's only */
    dafs_setattr_req s = {.valid = DAFS_SET_UID | DAFS_SET_GID, .uid = UID_A, .gid = UID_A};
    CHECK(setattr_as(&c, 0, &g, &s, NULL) == 0, "chown ext2");
    CHECK(xattr_op(&c, A, DAFS_OP_SETXATTR, &g, "user.k", "value", 0, &rep) == 0, "set user.k");
    st = xattr_op(&c, A, DAFS_OP_SETXATTR, &g, "user.k", "v", DAFS_XATTR_CREATE, &rep);
    CHECK(st == DAFS_ST_EXIST, "create over: %d", st);
    st = xattr_op(&c, A, DAFS_OP_SETXATTR, &g, "user.none", "v", DAFS_XATTR_REPLACE, &rep);
    CHECK(st == DAFS_ST_NODATA, "replace missing: %d", st);
    st = xattr_op(&c, A, DAFS_OP_GETXATTR, &g, "user.k", NULL, 0, &rep);
    CHECK(st == 0 && rep.u.xattr.size == 5 && rep.u.xattr.data.len == 0, "size query: %d", st);
    st = xattr_op(&c, A, DAFS_OP_GETXATTR, &g, "user.k", NULL, 4, &rep);
    CHECK(st == DAFS_ST_RANGE, "small buffer: %d", st);
    st = xattr_op(&c, A, DAFS_OP_GETXATTR, &g, "user.k", NULL, 100, &rep);
    CHECK(st == 0 && rep.u.xattr.data.len == 5 && memcmp(rep.u.xattr.data.ptr, "value", 5) == 0,
          "get: %d", st);
    st = xattr_op(&c, A, DAFS_OP_SETXATTR, &g, "trusted.k", "x", 0, &rep);
    CHECK(st == DAFS_ST_PERM, "trusted.* as a user: %d", st);
    st = xattr_op(&c, A, DAFS_OP_SETXATTR, &g, "security.k", "x", 0, &rep);
    CHECK(st == DAFS_ST_PERM, "security.* as a user: %d", st);
    CHECK(xattr_op(&c, 0, DAFS_OP_SETXATTR, &g, "trusted.k", "x", 0, &rep) == 0, "trusted as root");
    st = xattr_op(&c, A, DAFS_OP_LISTXATTR, &g, NULL, NULL, 1000, &rep);
    CHECK(st == 0 && rep.u.xattr.size == 7 && memcmp(rep.u.xattr.data.ptr, "user.k", 7) == 0,
          "user's list hides trusted.*: %d size %u", st, rep.u.xattr.size);
    st = xattr_op(&c, 0, DAFS_OP_LISTXATTR, &g, NULL, NULL, 0, &rep);
    CHECK(st == 0 && rep.u.xattr.size == 17, "root's list: %d size %u", st, rep.u.xattr.size);
    st = xattr_op(&c, A, DAFS_OP_GETXATTR, &g, "trusted.k", NULL, 100, &rep);
    CHECK(st == DAFS_ST_NODATA, "trusted.* read as a user: %d", st);
    CHECK(xattr_op(&c, A, DAFS_OP_REMOVEXATTR, &g, "user.k", NULL, 0, &rep) == 0, "remove");
    st = xattr_op(&c, A, DAFS_OP_REMOVEXATTR, &g, "user.k", NULL, 0, &rep);
    CHECK(st == DAFS_ST_NODATA, "remove again: %d", st);
    /* malformed: a NUL inside the name, an unknown fallocate bit */
    init_req(&req, DAFS_OP_GETXATTR);
    req.u.xattr = (dafs_xattr_req){.fh = g, .name = {(const uint8_t *)"user.ab", 7}, .size = 10};
    uint8_t probe[MSG];
    int len = encode(&c, &req, probe);
    uint8_t *hit = len > 0 ? memmem(probe, (size_t)len, "user.ab", 7) : NULL;
    st = hit ? send_patched(&c, &req, (size_t)(hit - probe) + 5, 0) : -1;
    CHECK(st == DAFS_ST_BADMSG, "NUL in an xattr name: %d", st);
    init_req(&req, DAFS_OP_FALLOCATE);
    req.u.fallocate = (dafs_fallocate_req){.fh = f, .mode = DAFS_FALLOC_KEEP_SIZE, .length = 1};
    len = encode(&c, &req, probe);
    size_t mode_hi = (size_t)DAFS_HDR_SIZE + ((1u + f.len + 7u) / 8u) * 8u + 3u; /* after the fh */
    st = len > 0 ? send_patched(&c, &req, mode_hi, 0x80) : -1;
    CHECK(st == DAFS_ST_BADMSG, "unknown fallocate mode bit: %d", st);
    /* 40 supplementary groups: access through the 40th */
    uint32_t groups[200], G40, G39;
    for (unsigned i = 0; i < 200; i++)
        groups[i] = GID_SHARED + 100 + i;
    CHECK(register_cred(&c, UID_B, UID_B, 40, groups, &G40) == 0, "register 40 groups");
    CHECK(register_cred(&c, UID_B, UID_B, 39, groups, &G39) == 0, "register 39 groups");
    s = (dafs_setattr_req){.valid = DAFS_SET_GID | DAFS_SET_MODE, .gid = groups[39], .mode = 0640};
    CHECK(setattr_as(&c, 0, &g, &s, NULL) == 0, "chgrp to the 40th group");
    st = dirop_as(&c, G40, DAFS_OP_OPEN, &root, "ext2", DAFS_OPEN_RDONLY, 0, NULL, NULL);
    CHECK(st == 0, "open through the 40th group: %d", st);
    st = dirop_as(&c, G39, DAFS_OP_OPEN, &root, "ext2", DAFS_OPEN_RDONLY, 0, NULL, NULL);
    CHECK(st == DAFS_ST_ACCES, "open without it: %d", st);
    init_req(&req, DAFS_OP_RELEASE_CRED);
    req.u.cred_id.cred_id = G40;
    CHECK(call(&c, &req, &rep) == 0, "release the 40-group credential");
    st = dirop_as(&c, G40, DAFS_OP_OPEN, &root, "ext2", DAFS_OPEN_RDONLY, 0, NULL, NULL);
    CHECK(st == DAFS_ST_PERM, "released credential: %d", st);
    client_close(&c);
}

static void prepare_scratch(void)
{
    make_scratch("/tmp/dafsd-ns-XXXXXX");
    if (chmod(scratch, 0755) != 0) {
        perror("scratch");
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--hold-open") == 0)
        return hold_open_main(argv[2], atoi(argv[3]));
    if (argc != 2) {
        fprintf(stderr, "usage: ns_test DAFSD_PATH\n");
        return 2;
    }
    if (geteuid() != 0) {
        fprintf(stderr, "ns_test needs root (dafsd switches identities); skipped\n");
        return 0;
    }
    dafsd_path = argv[1];
    setenv("FI_TCP_IFACE", "lo", 0);
    setvbuf(stderr, NULL, _IOLBF, 0);
    prepare_scratch();
    daemon_proc d;
    if (start_dafsd(&d, NULL) != 0) {
        fprintf(stderr, "FAIL: dafsd did not start\n");
        return 1;
    }
    port = d.port;
    const named_test tests[] = {
        {"setattr", test_setattr},       {"rename_link", test_rename_link},
        {"symlink_mknod", test_symlink_mknod}, {"permissions", test_permissions},
        {"squash", test_squash},         {"append", test_append},
        {"stuck_client", test_stuck_client}, {"open_state", test_open_state},
        {"open_limit", test_open_limit}, {"open_state_killed_client", test_open_state_killed_client},
        {"version_mismatch", test_version_mismatch},
        {"ext", test_ext},
    };
    run_tests(tests, sizeof(tests) / sizeof(tests[0]));
    int before = test_failures;
    test_restart(&d);
    fprintf(stderr, "%s restart\n", test_failures == before ? "ok  " : "FAIL");
    if (dafsd_alive(&d) && stop_dafsd(&d) != 0) {
        fprintf(stderr, "FAIL: SIGTERM exit\n");
        test_failures++;
    }
    remove_scratch();
    return test_exit_status();
}
