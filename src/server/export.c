/*
 * export.c — path safety and file handles for the one exported tree.
 *
 * Confinement rests on two rules:
 *  1. Names from the wire are single components (no '/', no NUL, not "." or
 *     "..") and are resolved with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS
 *     | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV) relative to a directory the
 *     server already trusts.  A symlink is never followed: a lookup returns
 *     the link itself (O_PATH | O_NOFOLLOW), an open of one fails with ELOOP.
 *     A mount point inside the export is refused with EXDEV.
 *  2. File handles are minted only by the server.  A handle is
 *         version(1) | handle_type(4, LE) | kernel handle bytes | MAC(16)
 *     where MAC = BLAKE2b-128 keyed with a 32-byte secret kept in
 *     STATE_DIR/handle.key, over the first part plus the export's identity
 *     (st_dev and inode of the root).  A client cannot forge a handle for an
 *     object outside the export, or for another export.  Handles survive a
 *     restart because the kernel handle (name_to_handle_at) and the key do.
 *     Decoding checks the MAC in constant time before open_by_handle_at, and
 *     refuses objects whose st_dev is not the export's.
 *
 * open_by_handle_at needs CAP_DAC_READ_SEARCH; dafsd therefore runs as root
 * (per-request credentials come with the permissions work).
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FH_VERSION 1
#define FH_MAC_BYTES 16
#define FH_PREFIX 5 /* version + handle_type */
#define FH_KERNEL_MAX (DAFS_FH_MAX - FH_PREFIX - FH_MAC_BYTES)

static int read_or_create_key(int dirfd, uint8_t key[EXPORT_KEY_BYTES], const char **why)
{
    int fd = openat(dirfd, "handle.key", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
        ssize_t n = read(fd, key, EXPORT_KEY_BYTES);
        int err = errno;
        close(fd);
        if (n != EXPORT_KEY_BYTES) {
            *why = "handle.key in the state directory is unreadable or not 32 bytes";
            return n < 0 ? -err : -EINVAL;
        }
        return 0;
    }
    if (errno != ENOENT) {
        *why = "cannot open handle.key in the state directory";
        return -errno;
    }
    randombytes_buf(key, EXPORT_KEY_BYTES);
    fd = openat(dirfd, "handle.key.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                0600);
    if (fd < 0) {
        *why = "cannot create handle.key in the state directory";
        return -errno;
    }
    ssize_t n = write(fd, key, EXPORT_KEY_BYTES);
    int err = errno;
    if (n != EXPORT_KEY_BYTES || fsync(fd) != 0) {
        close(fd);
        *why = "cannot write handle.key";
        return n < 0 ? -err : -EIO;
    }
    close(fd);
    if (renameat(dirfd, "handle.key.tmp", dirfd, "handle.key") != 0) {
        *why = "cannot rename handle.key.tmp";
        return -errno;
    }
    return 0;
}

static int open_state_key(dafs_export *e, const char *state_dir, const char **why)
{
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        *why = "cannot create the state directory";
        return -errno;
    }
    int sfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sfd < 0) {
        *why = "cannot open the state directory";
        return -errno;
    }
    int rc = read_or_create_key(sfd, e->key, why);
    close(sfd);
    return rc;
}

int export_open(dafs_export *e, const char *root, const char *state_dir, const char **why)
{
    memset(e, 0, sizeof(*e));
    e->root_fd = e->mount_fd = -1;
    if (sodium_init() < 0) {
        *why = "libsodium initialisation failed";
        return -EIO;
    }
    /* the export first: a typo in --export must not create a state dir */
    struct stat st;
    e->root_fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (e->root_fd < 0 || fstat(e->root_fd, &st) != 0) {
        *why = "cannot open the export directory";
        return -errno;
    }
    e->mount_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (e->mount_fd < 0) {
        *why = "cannot open the export directory for reading";
        return -errno;
    }
    e->dev = st.st_dev;
    e->root_ino = st.st_ino;
    return open_state_key(e, state_dir, why);
}

void export_close(dafs_export *e)
{
    if (e->root_fd >= 0)
        close(e->root_fd);
    if (e->mount_fd >= 0)
        close(e->mount_fd);
    e->root_fd = e->mount_fd = -1;
    sodium_memzero(e->key, sizeof(e->key));
}

int export_errno_status(int err)
{
    switch (err) {
    case 0: return DAFS_ST_OK;
    case EPERM: case ENOENT: case EIO: case EBADF: case EAGAIN: case ENOMEM: case EACCES:
    case EEXIST: case EXDEV: case ENOTDIR: case EISDIR: case EINVAL: case EFBIG: case ENOSPC:
    case EROFS: case EMLINK: case ENAMETOOLONG: case ENOSYS: case ENOTEMPTY: case ELOOP:
    case EOVERFLOW: case EBADMSG: case EOPNOTSUPP: case ESTALE: case EDQUOT: case ENXIO:
    case E2BIG: case ERANGE: case ENODATA:
        return err; /* the wire values are Linux's errno numbers */
    case EMFILE: case ENFILE: case EBUSY: case ETXTBSY: return DAFS_ST_AGAIN;
    default: return DAFS_ST_IO;
    }
}

int export_check_name(const dafs_bytes *name)
{
    if (name->len == 0)
        return DAFS_ST_INVAL;
    if (name->len > DAFS_NAME_MAX)
        return DAFS_ST_NAMETOOLONG;
    if (memchr(name->ptr, '/', name->len) || memchr(name->ptr, '\0', name->len))
        return DAFS_ST_INVAL;
    if ((name->len == 1 && name->ptr[0] == '.') ||
        (name->len == 2 && name->ptr[0] == '.' && name->ptr[1] == '.'))
        return DAFS_ST_INVAL;
    return DAFS_ST_OK;
}

static void fh_mac(const dafs_export *e, const uint8_t *data, size_t len, uint8_t out[FH_MAC_BYTES])
{
    crypto_generichash_state st;
    uint64_t ident[2] = {(uint64_t)e->dev, (uint64_t)e->root_ino};
    crypto_generichash_init(&st, e->key, sizeof(e->key), FH_MAC_BYTES);
    crypto_generichash_update(&st, data, len);
    crypto_generichash_update(&st, (const uint8_t *)ident, sizeof(ident));
    crypto_generichash_final(&st, out, FH_MAC_BYTES);
}

typedef union kernel_handle {
    struct file_handle fh;
    uint8_t space[sizeof(struct file_handle) + MAX_HANDLE_SZ];
} kernel_handle;

int export_make_fh(const dafs_export *e, int fd, dafs_fh *out)
{
    kernel_handle kh;
    int mount_id;
    kh.fh.handle_bytes = MAX_HANDLE_SZ;
    if (name_to_handle_at(fd, "", &kh.fh, &mount_id, AT_EMPTY_PATH) != 0)
        return export_errno_status(errno);
    if (kh.fh.handle_bytes == 0 || kh.fh.handle_bytes > FH_KERNEL_MAX)
        return DAFS_ST_NOTSUP; /* this file system's handles do not fit in 64 bytes */
    uint32_t type = (uint32_t)kh.fh.handle_type;
    out->data[0] = FH_VERSION;
    out->data[1] = (uint8_t)type;
    out->data[2] = (uint8_t)(type >> 8);
    out->data[3] = (uint8_t)(type >> 16);
    out->data[4] = (uint8_t)(type >> 24);
    memcpy(out->data + FH_PREFIX, kh.fh.f_handle, kh.fh.handle_bytes);
    size_t body = FH_PREFIX + kh.fh.handle_bytes;
    fh_mac(e, out->data, body, out->data + body);
    out->len = (uint8_t)(body + FH_MAC_BYTES);
    return DAFS_ST_OK;
}

int export_open_fh(const dafs_export *e, const dafs_fh *fh, int flags, int *fd, struct stat *st)
{
    *fd = -1;
    if (fh->len < FH_PREFIX + 1 + FH_MAC_BYTES || fh->len > DAFS_FH_MAX ||
        fh->data[0] != FH_VERSION)
        return DAFS_ST_BADHANDLE;
    size_t body = (size_t)fh->len - FH_MAC_BYTES;
    uint8_t mac[FH_MAC_BYTES];
    fh_mac(e, fh->data, body, mac);
    if (sodium_memcmp(mac, fh->data + body, FH_MAC_BYTES) != 0)
        return DAFS_ST_BADHANDLE;
    kernel_handle kh;
    kh.fh.handle_bytes = (unsigned)(body - FH_PREFIX);
    kh.fh.handle_type = (int)((uint32_t)fh->data[1] | (uint32_t)fh->data[2] << 8 |
                              (uint32_t)fh->data[3] << 16 | (uint32_t)fh->data[4] << 24);
    memcpy(kh.fh.f_handle, fh->data + FH_PREFIX, kh.fh.handle_bytes);
    int f = open_by_handle_at(e->mount_fd, &kh.fh, flags | O_CLOEXEC | O_NOCTTY);
    if (f < 0)
        return errno == ESTALE || errno == ENOENT ? DAFS_ST_STALE : export_errno_status(errno);
    if (fstat(f, st) != 0) {
        int err = errno;
        close(f);
        return export_errno_status(err);
    }
    if (st->st_dev != e->dev) {
        close(f);
        return DAFS_ST_XDEV;
    }
    *fd = f;
    return DAFS_ST_OK;
}

/* openat2 of one checked component, never following symlinks or leaving the
 * export's file system; extra_resolve adds RESOLVE_* bits. */
static int openat_beneath(const dafs_export *e, int dirfd, const dafs_bytes *name, int flags,
                          unsigned mode, uint64_t extra_resolve, int *fd, struct stat *st_out)
{
    char cname[DAFS_NAME_MAX + 1];
    *fd = -1;
    int st = export_check_name(name);
    if (st != DAFS_ST_OK)
        return st;
    memcpy(cname, name->ptr, name->len);
    cname[name->len] = '\0';
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW | ((flags & O_PATH) ? 0 : O_NOCTTY)),
        .mode = (flags & O_CREAT) ? (mode & 07777) : 0,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS |
                   RESOLVE_NO_XDEV | extra_resolve,
    };
    long f = syscall(SYS_openat2, dirfd, cname, &how, sizeof(how));
    if (f < 0) {
        int err = errno;
        struct stat ls;
        if (err == EAGAIN && (extra_resolve & RESOLVE_CACHED))
            return DAFS_ST_AGAIN;
        /* O_DIRECTORY on a symlink says ENOTDIR; report the link as such */
        if (err == ENOTDIR && fstatat(dirfd, cname, &ls, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(ls.st_mode))
            err = ELOOP;
        return export_errno_status(err);
    }
    struct stat sb;
    if (fstat((int)f, &sb) != 0 || sb.st_dev != e->dev) {
        close((int)f);
        return DAFS_ST_XDEV;
    }
    *fd = (int)f;
    if (st_out)
        *st_out = sb;
    return DAFS_ST_OK;
}

int export_openat(const dafs_export *e, int dirfd, const dafs_bytes *name, int flags,
                  unsigned mode, int *fd)
{
    return openat_beneath(e, dirfd, name, flags, mode, 0, fd, NULL);
}

int export_lookup_cached(const dafs_export *e, int dirfd, const dafs_bytes *name, int *fd,
                         struct stat *st)
{
    return openat_beneath(e, dirfd, name, O_PATH, 0, RESOLVE_CACHED, fd, st);
}

void export_fill_attr(const struct stat *st, dafs_attr *a)
{
    memset(a, 0, sizeof(*a));
    a->mode = st->st_mode;
    a->nlink = (uint32_t)st->st_nlink;
    a->uid = st->st_uid;
    a->gid = st->st_gid;
    a->size = (uint64_t)st->st_size;
    a->used = (uint64_t)st->st_blocks * 512u;
    a->fileid = st->st_ino;
    a->rdev = st->st_rdev;
    a->atime_sec = st->st_atim.tv_sec;
    a->atime_nsec = (uint32_t)st->st_atim.tv_nsec;
    a->mtime_sec = st->st_mtim.tv_sec;
    a->mtime_nsec = (uint32_t)st->st_mtim.tv_nsec;
    a->ctime_sec = st->st_ctim.tv_sec;
    a->ctime_nsec = (uint32_t)st->st_ctim.tv_nsec;
}
