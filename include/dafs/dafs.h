/*
 * dafs.h — libdafs, the user-level DAFS client library.
 *
 * A session (dafs_session) is a connection to one dafsd export.  Every call
 * returns 0 (or a byte count) on success and a negative error code on
 * failure: -errno values (-ENOENT, -EACCES, ...) or the dafs-specific
 * -DAFS_E* codes below; dafs_strerror() describes either.  All calls on a
 * session are safe from many threads at once.
 *
 * Zero copy: memory registered with dafs_mem_register() is used directly by
 * the server's RDMA for any pread/pwrite whose buffer lies inside it.  Other
 * buffers work too: small transfers travel inline in the messages, large ones
 * are registered for the duration of the call.
 */
#ifndef DAFS_DAFS_H
#define DAFS_DAFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DAFS_VERSION_MAJOR 0
#define DAFS_VERSION_MINOR 1
#define DAFS_DEFAULT_PORT 7070

/* dafs-specific error codes (returned negated). */
#define DAFS_EBADSESSION 10001 /* session unknown to the server (expired, closed) */
#define DAFS_ECREDIT 10002     /* server refused a request beyond the credit grant */
#define DAFS_EVERSION 10003    /* protocol version mismatch */
#define DAFS_EBADHANDLE 10004  /* malformed or forged file handle */
#define DAFS_ESERVERFAULT 10005 /* unexpected server-side failure */
#define DAFS_EBADOP 10006      /* server does not know the operation */
#define DAFS_EPROTO 10007      /* malformed reply from the server */
#define DAFS_ETRANSPORT 10008  /* fabric error: connection lost, timeout */
#define DAFS_EURL 10009        /* malformed dafs:// URL */
#define DAFS_EBADSTATEID 10010 /* open file (stateid) unknown to the server: closed, or
                                * its session ended */
#define DAFS_ELOCKBROKEN 10012 /* a PERSIST lock in the way was broken: its holder died
                                * holding it (take it over with DAFS_LOCK_REPAIR) */
#define DAFS_EGRACE 10013      /* the server restarted and is in its grace period, when
                                * only reclaims are served: try again later */

const char *dafs_strerror(int err); /* accepts err or -err */

typedef struct dafs_session dafs_session;
typedef struct dafs_file dafs_file;
typedef struct dafs_dir dafs_dir;
typedef struct dafs_mr dafs_mr;

typedef struct dafs_options {
    const char *provider;  /* NULL: $DAFS_PROVIDER, $FI_PROVIDER, libfabric's default */
    const char *client_id; /* NULL: "<hostname>:<pid>:<n>" */
    unsigned max_credits;  /* 0: library default (32) */
    unsigned timeout_ms;   /* per-request reply timeout; 0: default (30000) */
} dafs_options;

/* Like POSIX stat/struct stat, the attribute types are used with their
 * struct tags (a typedef would clash with the functions of the same name). */
struct dafs_stat {
    uint64_t ino;
    uint32_t mode;  /* S_IF* | permission bits */
    uint32_t nlink;
    uint32_t uid, gid;
    uint64_t size;
    uint64_t blocks; /* 512-byte blocks allocated */
    uint64_t rdev;
    struct timespec_dafs { int64_t tv_sec; uint32_t tv_nsec; } atime, mtime, ctime;
};

struct dafs_statfs {
    uint64_t bsize, frsize, blocks, bfree, bavail, files, ffree;
    uint32_t namemax;
};

typedef struct dafs_dirent {
    uint64_t ino;
    uint32_t type; /* S_IF* bits, 0 if unknown */
    char name[256];
} dafs_dirent;

/* Negotiated session parameters, for tools and benchmarks. */
typedef struct dafs_session_info {
    char provider[64];
    uint32_t credits;     /* current grant */
    uint32_t max_request, max_response, inline_max, max_io, lease_ms;
    uint64_t session_id;
    uint64_t server_instance;
} dafs_session_info;

/* Sessions. url: dafs://HOST[:PORT][/PATH]; PATH is ignored by dafs_connect
 * (use dafs_url_path() to get it).  A server that cannot be reached gives,
 * as soon as the cause is known: -ECONNREFUSED (nothing listens there),
 * -EHOSTUNREACH (no route, or the name does not resolve), -ENETUNREACH,
 * -EAFNOSUPPORT (address family not usable by the provider), -ETIMEDOUT (no
 * answer), -EPROTONOSUPPORT (no such libfabric provider here), -EPROTOTYPE
 * (the server uses another provider, e.g. shm vs tcp); any other transport
 * failure is -DAFS_ETRANSPORT. */
int dafs_connect(const char *url, const dafs_options *opts, dafs_session **out);
int dafs_disconnect(dafs_session *s); /* frees s even on error */
int dafs_session_get_info(dafs_session *s, dafs_session_info *info);
/* Split a URL: host and port into the given buffers, path (always starting
 * with '/') into path.  Returns 0 or -DAFS_EURL. */
int dafs_url_parse(const char *url, char *host, size_t hostlen, unsigned *port, char *path,
                   size_t pathlen);
/* What is wrong with a URL, for messages ("empty host", "bad port (not a
 * number)", ...), or NULL if it parses (with buffers of the sizes below). */
#define DAFS_URL_HOST_MAX 256
#define DAFS_URL_PATH_MAX 4096
const char *dafs_url_error(const char *url);
int dafs_null(dafs_session *s); /* round trip that does nothing (renews the lease) */

/* Paths are relative to the export root; leading '/' optional. */
int dafs_stat(dafs_session *s, const char *path, struct dafs_stat *st); /* does not follow a final symlink */
int dafs_statfs(dafs_session *s, const char *path, struct dafs_statfs *st);
int dafs_mkdir(dafs_session *s, const char *path, mode_t mode);
int dafs_rmdir(dafs_session *s, const char *path);
int dafs_unlink(dafs_session *s, const char *path);

/* Files. flags: O_RDONLY/O_WRONLY/O_RDWR | O_CREAT | O_EXCL | O_TRUNC. */
int dafs_open(dafs_session *s, const char *path, int flags, mode_t mode, dafs_file **out);
int dafs_close(dafs_file *f); /* frees f even on error */
ssize_t dafs_pread(dafs_file *f, void *buf, size_t len, uint64_t offset);
ssize_t dafs_pwrite(dafs_file *f, const void *buf, size_t len, uint64_t offset);
int dafs_fsync(dafs_file *f);
int dafs_fdatasync(dafs_file *f);
int dafs_fstat(dafs_file *f, struct dafs_stat *st);

/* Directories: entries in server order, "." and ".." not included.
 * dafs_readdir returns 1 with *ent filled, 0 at the end, or negative. */
int dafs_opendir(dafs_session *s, const char *path, dafs_dir **out);
int dafs_readdir(dafs_dir *d, dafs_dirent *ent);
int dafs_closedir(dafs_dir *d);

/* Memory registration for zero-copy: register once, use for many I/Os. */
int dafs_mem_register(dafs_session *s, void *buf, size_t len, dafs_mr **out);
int dafs_mem_deregister(dafs_mr *mr);

/* ---- path-based namespace and attribute calls --------------------------
 * Like their POSIX namesakes; calls run as the session's default credential
 * (see dafs_set_cred).  A final symlink is never followed except where said. */
int dafs_chmod(dafs_session *s, const char *path, mode_t mode);
int dafs_lchown(dafs_session *s, const char *path, uint32_t uid, uint32_t gid);
int dafs_truncate(dafs_session *s, const char *path, uint64_t size);
int dafs_ftruncate(dafs_file *f, uint64_t size);
/* times[0] = atime, times[1] = mtime; tv_nsec may be DAFS_UTIME_NOW or
 * DAFS_UTIME_OMIT as with utimensat(2).  NULL = both to now. */
#define DAFS_UTIME_NOW ((uint32_t)((1u << 30) - 1u))
#define DAFS_UTIME_OMIT ((uint32_t)((1u << 30) - 2u))
int dafs_utimens(dafs_session *s, const char *path, const struct timespec_dafs times[2]);
#define DAFS_RENAME_NOREPLACE 0x1u
#define DAFS_RENAME_EXCHANGE 0x2u
int dafs_rename(dafs_session *s, const char *from, const char *to, unsigned flags);
int dafs_link(dafs_session *s, const char *existing, const char *newpath);
int dafs_symlink(dafs_session *s, const char *target, const char *linkpath);
/* Returns the target length (not NUL-terminated when it fills buf), or < 0. */
ssize_t dafs_readlink(dafs_session *s, const char *path, char *buf, size_t len);
int dafs_mknod(dafs_session *s, const char *path, mode_t mode, uint64_t rdev);
int dafs_access(dafs_session *s, const char *path, int mask); /* R_OK|W_OK|X_OK or F_OK */
/* Atomic write at end of file; *offset (if not NULL) gets where it landed. */
ssize_t dafs_append(dafs_file *f, const void *buf, size_t len, uint64_t *offset);

/* ---- credentials ---------------------------------------------------------
 * The server runs every request as a registered credential (uid, gid,
 * supplementary groups), subject to the export's squash options.  At connect
 * the session registers the calling process's own identity and uses it by
 * default; dafs_cred_register adds others (e.g. a FUSE daemon serving many
 * users) to pass to the handle-level calls below. */
typedef struct dafs_cred dafs_cred;
int dafs_cred_register(dafs_session *s, uint32_t uid, uint32_t gid, unsigned ngroups,
                       const uint32_t *groups, dafs_cred **out);
/* ngroups up to 65536 (NGROUPS_MAX), and what one negotiated request holds
 * (about (max_request - 128) / 4 groups), else -E2BIG. */
int dafs_cred_release(dafs_cred *c);
/* Make c the default for this session's path-based calls (NULL = the
 * process identity registered at connect).  c must outlive that use. */
int dafs_set_cred(dafs_session *s, dafs_cred *c);

/* ---- handle-level API (for FUSE and other stacking layers) ---------------
 * Object handles as the server issues them: opaque, at most 64 bytes,
 * stable across server restarts.  cred NULL = the session's default. */
typedef struct dafs_handle {
    uint8_t len;
    uint8_t data[64];
} dafs_handle;

typedef struct dafs_setattr {
    uint32_t valid; /* DAFS_SETATTR_* */
    uint32_t mode, uid, gid;
    uint64_t size;
    struct timespec_dafs atime, mtime;
} dafs_setattr;
#define DAFS_SETATTR_MODE 0x01u
#define DAFS_SETATTR_UID 0x02u
#define DAFS_SETATTR_GID 0x04u
#define DAFS_SETATTR_SIZE 0x08u
#define DAFS_SETATTR_ATIME 0x10u
#define DAFS_SETATTR_MTIME 0x20u
#define DAFS_SETATTR_ATIME_NOW 0x40u
#define DAFS_SETATTR_MTIME_NOW 0x80u

/* Called per entry; return non-zero to stop (the entry is then not consumed:
 * *cookie stays before it). */
typedef int (*dafs_readdir_cb)(void *arg, const dafs_dirent *ent, uint64_t next_cookie);

int dafs_h_root(dafs_session *s, dafs_handle *out, struct dafs_stat *st);
int dafs_h_lookup(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                  dafs_handle *out, struct dafs_stat *st);
int dafs_h_lookupp(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, dafs_handle *out,
                   struct dafs_stat *st);
int dafs_h_getattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                   struct dafs_stat *st);
int dafs_h_setattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                   const dafs_setattr *sa, struct dafs_stat *st); /* st: attributes after */
int dafs_h_access(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, int mask);
/* flags: O_ACCMODE | O_CREAT | O_EXCL | O_TRUNC; *created tells whether it was made. */
int dafs_h_open(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                int flags, mode_t mode, dafs_handle *out, struct dafs_stat *st, int *created);
int dafs_h_mkdir(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                 mode_t mode, dafs_handle *out, struct dafs_stat *st);
int dafs_h_mknod(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                 mode_t mode, uint64_t rdev, dafs_handle *out, struct dafs_stat *st);
int dafs_h_symlink(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name,
                   const char *target, dafs_handle *out, struct dafs_stat *st);
ssize_t dafs_h_readlink(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, char *buf,
                        size_t len);
int dafs_h_link(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                const dafs_handle *newdir, const char *newname, struct dafs_stat *st);
int dafs_h_unlink(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name);
int dafs_h_rmdir(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, const char *name);
int dafs_h_rename(dafs_session *s, const dafs_cred *c, const dafs_handle *olddir,
                  const char *oldname, const dafs_handle *newdir, const char *newname,
                  unsigned flags);
/* Data I/O on a handle: same inline/direct/registered-memory rules as dafs_pread. */
ssize_t dafs_h_pread(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, void *buf,
                     size_t len, uint64_t offset);
ssize_t dafs_h_pwrite(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                      const void *buf, size_t len, uint64_t offset);
ssize_t dafs_h_append(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                      const void *buf, size_t len, uint64_t *offset);
int dafs_h_commit(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, int datasync);
/* Reads entries from *cookie (0 = start) until the callback stops or the
 * directory ends (*eof = 1); *cookie is advanced past consumed entries. */
int dafs_h_readdir(dafs_session *s, const dafs_cred *c, const dafs_handle *dir, uint64_t *cookie,
                   dafs_readdir_cb cb, void *arg, int *eof);
int dafs_h_statfs(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                  struct dafs_statfs *st);
/* The handle behind an open file. */
int dafs_file_handle(dafs_file *f, dafs_handle *out);

/* Opens that keep the server's open state (for FUSE and other stacking
 * layers): like dafs_h_open (dafs_h_open_file) or an open of an existing
 * file by handle (dafs_h_open_fh, flags O_ACCMODE | O_TRUNC), but they return
 * a dafs_file, used with dafs_pread/dafs_pwrite/dafs_append/dafs_fsync/
 * dafs_ftruncate/dafs_fstat/dafs_close.  Its I/O runs with the access
 * checked once, at open, as c (as on a local file system: the file may be
 * chmodded or unlinked meanwhile).  Regular files only.  dafs_h_open itself
 * keeps no open state. */
int dafs_h_open_file(dafs_session *s, const dafs_cred *c, const dafs_handle *dir,
                     const char *name, int flags, mode_t mode, dafs_file **file,
                     dafs_handle *out, struct dafs_stat *st, int *created);
int dafs_h_open_fh(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, int flags,
                   dafs_file **file, struct dafs_stat *st);

/* ---- space, copy, holes, extended attributes ---------------------------
 * Done on the server's file system, as the calling credential.
 * dafs_fallocate: mode is fallocate(2)'s (0, FALLOC_FL_KEEP_SIZE,
 * _PUNCH_HOLE, _ZERO_RANGE, _COLLAPSE_RANGE, _INSERT_RANGE, _UNSHARE_RANGE);
 * which work depends on the server's file system (else -EOPNOTSUPP).
 * dafs_copy_range: copy_file_range(2) on the server, no data through the
 * client; returns the bytes copied (at most 64 MiB per call, 0 at the end of
 * the source).  dafs_seek: whence SEEK_DATA or SEEK_HOLE; the offset found,
 * or -ENXIO.  Extended attributes: names of 1..255 bytes, values up to
 * 64 KiB (and what one negotiated message holds, else -E2BIG); flags
 * XATTR_CREATE / XATTR_REPLACE; size 0 asks for the size; -ENODATA, -ERANGE
 * as getxattr(2).  The path forms do not follow a final symlink
 * (lgetxattr(2) and friends). */
int dafs_fallocate(dafs_file *f, int mode, uint64_t offset, uint64_t len);
ssize_t dafs_copy_range(dafs_file *in, uint64_t off_in, dafs_file *out, uint64_t off_out,
                        size_t len);
int64_t dafs_seek(dafs_file *f, uint64_t offset, int whence);
ssize_t dafs_getxattr(dafs_session *s, const char *path, const char *name, void *buf,
                      size_t size);
int dafs_setxattr(dafs_session *s, const char *path, const char *name, const void *value,
                  size_t size, int flags);
ssize_t dafs_listxattr(dafs_session *s, const char *path, char *buf, size_t size);
int dafs_removexattr(dafs_session *s, const char *path, const char *name);

int dafs_h_fallocate(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, int mode,
                     uint64_t offset, uint64_t len, struct dafs_stat *st); /* st: after */
ssize_t dafs_h_copy_range(dafs_session *s, const dafs_cred *c, const dafs_handle *src,
                          uint64_t off_in, const dafs_handle *dst, uint64_t off_out, size_t len);
int64_t dafs_h_seek(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, uint64_t offset,
                    int whence);
ssize_t dafs_h_getxattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                        const char *name, void *buf, size_t size);
int dafs_h_setxattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, const char *name,
                    const void *value, size_t size, int flags);
ssize_t dafs_h_listxattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh, char *buf,
                         size_t size);
int dafs_h_removexattr(dafs_session *s, const dafs_cred *c, const dafs_handle *fh,
                       const char *name);

/* READDIRPLUS: like dafs_h_readdir, but every entry also comes with its
 * handle and attributes (h and st NULL when the server could not get them),
 * and "." and ".." are included (without them).  flags may hold
 * DAFS_DIRENT_NO_XATTRS: the object had no extended attributes when listed
 * (so no ACL either). */
#define DAFS_DIRENT_NO_XATTRS 0x1u
typedef int (*dafs_readdirplus_cb)(void *arg, const dafs_dirent *ent, const dafs_handle *h,
                                   const struct dafs_stat *st, unsigned flags,
                                   uint64_t next_cookie);
int dafs_h_readdirplus(dafs_session *s, const dafs_cred *c, const dafs_handle *dir,
                       uint64_t *cookie, dafs_readdirplus_cb cb, void *arg, int *eof);


/* ---- asynchronous I/O, batches and cache hints ---------------------------
 * (dafs_cq_create(3), dafs_submit(3), dafs_cq_reap(3), dafs_batch(3),
 * dafs_cache_hint(3).)  An I/O is described by a dafs_io; its result comes
 * back as a dafs_cqe carrying the same user_data.  Buffers inside a region
 * from dafs_mem_register() move by RMA with no copy; others are registered
 * (or sent inline) by the library.  A buffer must stay valid until its
 * completion has been reaped. */
enum dafs_io_op {
    DAFS_IO_READ = 1,   /* buf <- file[offset, offset+len) */
    DAFS_IO_WRITE = 2,  /* file[offset, offset+len) <- buf */
    DAFS_IO_APPEND = 3, /* atomically at end of file; cqe.offset tells where */
    DAFS_IO_COMMIT = 4, /* fsync (fdatasync with DAFS_IO_DATASYNC); buf, len unused */
};
#define DAFS_IO_DATASYNC 0x1u /* COMMIT: data only, like fdatasync */
#define DAFS_IO_STABLE 0x2u   /* WRITE/APPEND: on stable storage before it completes */

typedef struct dafs_io {
    int op;          /* enum dafs_io_op */
    unsigned flags;  /* DAFS_IO_* */
    unsigned hint;   /* per-request cache hint, enum dafs_cache_hint (0 = normal) */
    dafs_file *file;
    void *buf;
    size_t len;      /* at most dafs_session_info.max_io */
    uint64_t offset; /* READ and WRITE */
    void *user_data; /* returned in the completion */
} dafs_io;

typedef struct dafs_cqe {
    void *user_data;
    int64_t res;     /* bytes moved (short READ at end of file), 0 for COMMIT, or -error */
    uint64_t offset; /* APPEND: where the data landed; otherwise the io's offset */
} dafs_cqe;

/* Completion groups.  entries bounds the I/Os in flight on the group (beyond
 * it dafs_submit accepts fewer).  Submissions beyond the session's credits
 * queue in the library.  All calls are thread-safe. */
typedef struct dafs_cq dafs_cq;
int dafs_cq_create(dafs_session *s, unsigned entries, dafs_cq **out);
/* Waits for the group's I/Os in flight (their completions are discarded),
 * then frees it. */
int dafs_cq_destroy(dafs_cq *cq);
/* A file descriptor that polls readable while completions are ready to reap
 * (for epoll, libuv, ...).  Owned by the group: do not close it. */
int dafs_cq_fd(dafs_cq *cq);
/* Submit n I/Os without waiting; returns how many were accepted (a prefix of
 * ios, fewer than n when the group is full) or -error if none was. */
int dafs_submit(dafs_cq *cq, const dafs_io *ios, unsigned n);
/* Reap up to max completions into out, waiting until at least min are ready
 * or timeout_ms passes (0: never block; -1: no timeout).  Returns how many
 * were reaped (possibly fewer than min at the timeout) or -error. */
int dafs_cq_reap(dafs_cq *cq, dafs_cqe *out, unsigned max, unsigned min, int timeout_ms);

/* Synchronous batch (DAFS BATCH_SUBMIT): n I/Os in one request when they fit,
 * each with its own result in results[i] (a bad entry fails alone).  Returns
 * 0 when every entry was carried out (look at each res), or -error when the
 * batch as a whole could not be. */
int dafs_batch(dafs_session *s, const dafs_io *ios, dafs_cqe *results, unsigned n);

/* Cache hints (DAFS CACHE_HINT) on a range of an open file; len 0 = to the
 * end of the file.  They act on the server's page cache. */
enum dafs_cache_hint {
    DAFS_HINT_NORMAL = 0,
    DAFS_HINT_RANDOM = 1,
    DAFS_HINT_SEQUENTIAL = 2,
    DAFS_HINT_WILLNEED = 3, /* prefetch the range into the server's cache */
    DAFS_HINT_DONTNEED = 4, /* drop the range from the server's cache */
};
int dafs_cache_hint(dafs_file *f, uint64_t offset, uint64_t len, int hint);

/* ---- byte-range locks (dafs_lock(3)) -------------------------------------
 * Locks held by the server for every client of the export (DAFS LOCK, LOCKT,
 * LOCKU), with fcntl(2)'s POSIX semantics per owner: a lock owner is any
 * 64-bit number the caller picks (a process, a thread, an open file...), two
 * locks conflict when their ranges overlap, their owners differ and one is
 * exclusive; a new lock replaces the owner's locks on its range; unlocking
 * any part of a range splits it.  length 0 or DAFS_LOCK_TO_EOF: to the end of
 * the file, however it grows.  The locks of an open file are released when
 * it is closed (by any owner: the server ties them to the open) and when the
 * session ends or its lease expires (a killed client).  Locks are advisory:
 * reads and writes do not check them (except a broken PERSIST range, and a
 * file being rolled back: -EAGAIN). */
enum dafs_lock_type { DAFS_LOCK_SHARED = 1, DAFS_LOCK_EXCLUSIVE = 2 };
#define DAFS_LOCK_WAIT 0x1u        /* wait in the server's queue until granted (else -EAGAIN) */
#define DAFS_LOCK_PERSIST 0x2u     /* if the holder dies holding it, the lock is broken:
                                    * the next locker gets -DAFS_ELOCKBROKEN (DAFS §4.4.1.3) */
#define DAFS_LOCK_AUTORECOVER 0x4u /* whole file, exclusive: if the holder dies, the server
                                    * rolls the file back to its state before the lock */
#define DAFS_LOCK_REPAIR 0x8u      /* take over the broken PERSIST parts of the range */
#define DAFS_LOCK_TO_EOF UINT64_MAX

typedef struct dafs_lock_conflict {
    uint64_t owner;          /* the holder's owner id ... */
    uint64_t session;        /* ... in this session (the holder's, as the server names it) */
    uint64_t offset, length; /* length DAFS_LOCK_TO_EOF: to the end of the file */
    int type;                /* enum dafs_lock_type */
    unsigned flags;          /* DAFS_LOCK_PERSIST, DAFS_LOCK_AUTORECOVER */
    int broken;              /* 1: a broken (or breakable) PERSIST lock */
} dafs_lock_conflict;

/* Lock [offset, offset+length) of f for owner.  0, -EAGAIN (a conflicting lock;
 * never with DAFS_LOCK_WAIT), -EDEADLK (waiting would deadlock), -ENOLCK (the
 * server's lock limits), -DAFS_ELOCKBROKEN, -DAFS_EGRACE, -EINVAL, -EOPNOTSUPP.
 * DAFS_LOCK_WAIT waits in the server's queue, in order, as long as it takes
 * (while the session lives), or until dafs_lock_cancel: then -EINTR. */
int dafs_lock(dafs_file *f, uint64_t owner, int type, unsigned flags, uint64_t offset,
              uint64_t length);
/* End owner's waiting dafs_lock on f (from another thread): it returns -EINTR.
 * -ENOENT when none waits (it was granted or refused meanwhile). */
int dafs_lock_cancel(dafs_file *f, uint64_t owner);
/* Roll f back to its state before owner's AUTORECOVER lock and release the
 * lock (DAFS ABORT_LT).  -ENOENT when owner holds no AUTORECOVER lock on it;
 * -EIO when the rollback failed (the file then stays locked until the
 * server's next start rolls it back). */
int dafs_lock_abort(dafs_file *f, uint64_t owner);
/* Would dafs_lock succeed?  0: yes; 1: no, and *c (if not NULL) describes one
 * lock in the way; or -error.  Takes nothing and breaks nothing. */
int dafs_lock_test(dafs_file *f, uint64_t owner, int type, uint64_t offset, uint64_t length,
                   dafs_lock_conflict *c);
/* Release owner's locks on the range (what is not locked is no error). */
int dafs_unlock(dafs_file *f, uint64_t owner, uint64_t offset, uint64_t length);

#ifdef __cplusplus
}
#endif
#endif
