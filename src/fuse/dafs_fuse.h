/*
 * dafs_fuse.h — internal interfaces of dafs-fuse, the transparent mount.
 *
 * dafs-fuse is a libfuse3 low-level file system that forwards every kernel
 * request to dafsd through libdafs's handle-level API (dafs_h_*).  The pieces:
 *   nodes.c  FUSE node ids <-> dafs_handle table (lookup counts, forget)
 *   creds.c  calling user (uid, gid, groups) -> registered dafs_cred, cached
 *   ops.c    the fuse_lowlevel_ops handlers
 *   ops_ext.c fallocate, copy_file_range, lseek, xattrs, readdirplus
 *   ops_lock.c fcntl and flock locks, held by the server
 *   main.c   command line (dafs-fuse and mount.dafs forms), mount, loop
 */
#ifndef DAFS_FUSE_H
#define DAFS_FUSE_H

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>

#include <dafs/dafs.h>

/* ---- node table ---------------------------------------------------------
 * A node id handed to the kernel is the address of a struct dfuse_node, except
 * the root, which is FUSE_ROOT_ID.  A node lives while the kernel holds
 * lookups on it (nlookup > 0); its handle never changes, so handlers read
 * node->handle without the table lock. */
struct dfuse_node {
    dafs_handle handle;
    uint64_t nlookup;
    struct dfuse_node *next; /* hash chain */
    /* under the table lock: the directory and name the kernel last reached
     * it by (for the search-permission check of by-node operations), and the
     * size and times last given to the kernel (an open compares them with
     * the server's: close-to-open) */
    int has_parent;
    dafs_handle parent;
    char name[256];
    int seen, moved_told;
    uint32_t seen_mode, seen_uid, seen_gid;
    uint64_t seen_size;
    struct timespec_dafs seen_mtime, seen_ctime;
    /* when a lookup of this node's name through its parent last succeeded
     * for credential srch_serial */
    uint64_t srch_serial, srch_ns;
    /* open files on this node per credential (the first few) */
    struct { uint64_t serial; unsigned count; } holders[4];
    /* a fcntl lock was taken on it through this mount (ops_lock.c): a
     * close must unlock the closer's locks */
    int locked;
};

struct dfuse_nodes {
    pthread_mutex_t lock;
    struct dfuse_node **buckets;
    size_t nbuckets;
    size_t count;
    struct dfuse_node root;
};

int nodes_init(struct dfuse_nodes *t, const dafs_handle *root);
void nodes_destroy(struct dfuse_nodes *t);
/* The node behind a kernel node id (never NULL for ids we handed out). */
const struct dfuse_node *nodes_get(struct dfuse_nodes *t, fuse_ino_t ino);
/* Find or add the node for h and count one kernel lookup on it.
 * Returns its node id, or 0 when out of memory. */
fuse_ino_t nodes_ref(struct dfuse_nodes *t, const dafs_handle *h);
/* The kernel forgot n lookups of ino; the node is freed at zero. */
void nodes_forget(struct dfuse_nodes *t, fuse_ino_t ino, uint64_t n);
size_t nodes_count(struct dfuse_nodes *t);
/* Remember that the kernel reached ino as name in the directory parent. */
void nodes_set_parent(struct dfuse_nodes *t, fuse_ino_t ino, const dafs_handle *parent,
                      const char *name);
/* A rename on this mount: the node last reached as olddir/oldname is now
 * newdir/newname (and, with exchange, the other way round too). */
void nodes_rename(struct dfuse_nodes *t, const dafs_handle *olddir, const char *oldname,
                  const dafs_handle *newdir, const char *newname, int exchange);
/* An open file on ino under credential serial came (delta 1) or went (-1). */
void nodes_hold(struct dfuse_nodes *t, fuse_ino_t ino, uint64_t serial, int delta);
/* 1 if credential serial has ino open here (0 also when not tracked). */
int nodes_held(struct dfuse_nodes *t, fuse_ino_t ino, uint64_t serial);
/* The mode, owner and group last given to the kernel for ino; 1, or 0 if
 * none was given yet. */
int nodes_seen_perm(struct dfuse_nodes *t, fuse_ino_t ino, uint32_t *mode, uint32_t *uid,
                    uint32_t *gid);
/* 1 if the kernel knows ino as a regular file. */
int nodes_is_reg(struct dfuse_nodes *t, fuse_ino_t ino);
/* Where ino was last reached; 1 (parent and name filled) or 0 if unknown. */
int nodes_get_parent(struct dfuse_nodes *t, fuse_ino_t ino, dafs_handle *parent, char *name,
                     size_t len);
/* moved: ino's name was found removed or replaced.  Returns 1 if the
 * kernel is to be told (ESTALE) now: the first time after the name was last
 * found good (or looked up); 0 otherwise. */
int nodes_moved(struct dfuse_nodes *t, fuse_ino_t ino, int moved);
/* For the directory with handle dir: where it was last reached (its parent
 * and name).  Returns 0 when unknown (or the root), else 1, with *fresh 1
 * if credential serial looked it up there successfully at or after
 * now_ns - ttl_ns. */
int nodes_dir_parent(struct dfuse_nodes *t, const dafs_handle *dir, dafs_handle *parent,
                     char *name, size_t len, uint64_t serial, uint64_t now_ns, uint64_t ttl_ns,
                     int *fresh);
void nodes_dir_searched(struct dfuse_nodes *t, const dafs_handle *dir, uint64_t serial,
                        uint64_t now_ns);
/* Record the attributes just given to the kernel for ino. */
void nodes_note_attr(struct dfuse_nodes *t, fuse_ino_t ino, const struct dafs_stat *st);
/* 1 if st's size, mtime or ctime differ from what the kernel was last given
 * for ino (or nothing was given yet); records st as given either way. */
int nodes_attr_changed(struct dfuse_nodes *t, fuse_ino_t ino, const struct dafs_stat *st);
/* A fcntl lock was taken on ino (kept while the node lives). */
void nodes_note_locked(struct dfuse_nodes *t, fuse_ino_t ino);
/* 1 if a fcntl lock was ever taken on ino while it was in the table. */
int nodes_locked(struct dfuse_nodes *t, fuse_ino_t ino);
/* Names of the nodes last reached through directory dir, as one buffer of
 * NUL-terminated strings (*count of them); NULL when none or out of memory.
 * The caller frees it. */
char *nodes_children(struct dfuse_nodes *t, const dafs_handle *dir, size_t *count);

/* ---- credential cache ----------------------------------------------------
 * One registered dafs_cred per distinct (uid, gid, sorted groups), at most
 * `max` cached; entries in use are reference counted and never released
 * under a user.  Any number of groups (up to NGROUPS_MAX), as far as the
 * server's message size allows. */
#define DFUSE_GROUPS_MAX 65536

struct dfuse_cred {
    uint32_t uid, gid;
    dafs_cred *cred;
    unsigned refs;
    uint64_t last_use;
    uint64_t serial; /* never reused: names this identity in caches */
    int cached; /* 0: over the bound, released at the last put */
    struct dfuse_cred *next;
    unsigned ngroups;
    uint32_t groups[]; /* sorted */
};

struct dfuse_creds {
    pthread_mutex_t lock;
    dafs_session *session;
    struct dfuse_cred *list;
    unsigned count, max;
    uint64_t clock;
};

int creds_init(struct dfuse_creds *cc, dafs_session *s, unsigned max);
void creds_destroy(struct dfuse_creds *cc);
/* A credential for the identity; groups need not be sorted (at most
 * DFUSE_GROUPS_MAX).  0 or a negative libdafs error. */
int creds_get(struct dfuse_creds *cc, uint32_t uid, uint32_t gid, unsigned ngroups,
              const uint32_t *groups, struct dfuse_cred **out);
void creds_put(struct dfuse_creds *cc, struct dfuse_cred *c);
/* The credential of the user making req (uid, gid and all its supplementary
 * groups, read from /proc by libfuse).  0 or a negative libdafs error. */
int dfuse_caller_cred(fuse_req_t req, struct dfuse_cred **out);

/* ---- the mounted file system --------------------------------------------- */
struct dfuse_config {
    const char *url;
    const char *mountpoint;
    char *provider;
    double attr_timeout;  /* seconds; default 60 */
    double entry_timeout; /* seconds; default 60 */
    unsigned timeout_ms;  /* libdafs per-request timeout; 0 = library default */
    unsigned read_ahead_kb; /* the mount's kernel read-ahead; 0 = the kernel's */
    int direct_io;
    int writeback_cache;
    int local_locks; /* the kernel's locks, local to the mount (ops_lock.c) */
    int foreground;
    int debug;
};

struct dfuse {
    struct dfuse_config cfg;
    dafs_session *session;
    struct fuse_session *se; /* for cache invalidation notices */
    struct dfuse_nodes nodes;
    struct dfuse_creds creds;
    pthread_key_t iobuf_key; /* per-thread registered read buffer */
    size_t iobuf_size;
    atomic_uint lock_waiters; /* blocking lock requests polling (ops_lock.c) */
};

extern const struct fuse_lowlevel_ops dfuse_ops;

/* The daemon's worker threads at most (libfuse's multi-threaded loop). */
#define DFUSE_MAX_THREADS 16

/* The kernel reads ahead 128 KiB on a FUSE mount unless told otherwise, one
 * round trip per 128 KiB of a sequential read; 4 MiB keeps several 1 MiB
 * reads in flight.  Measured (dd bs=1M of 512 MiB, tcp;ofi_rxm, load ~9):
 * 128 KiB 348-450 MB/s, 1 MiB 332-710, 4 MiB 626-1300. */
#define DFUSE_READ_AHEAD_KB 4096u
/* Set the read-ahead of the FUSE mount at mnt (its backing device's
 * read_ahead_kb in sysfs: needs root).  0 or -errno. */
int dfuse_set_readahead(const char *mnt, unsigned kb);

/* ops.c helpers the handlers of ops_ext.c share. */
const dafs_cred *dfuse_file_cred(const struct fuse_file_info *fi); /* the open's */
/* The open file's server open state (NULL for none, or fi NULL): I/O on it
 * runs with the access granted at open. */
dafs_file *dfuse_file_state(const struct fuse_file_info *fi);
/* The kernel's view of d (st_blksize: the preferred I/O size). */
void dfuse_to_stat(const struct dafs_stat *d, struct stat *st);

/* Shared by the handler files. */
static inline struct dfuse *fs_of(fuse_req_t req) { return fuse_req_userdata(req); }

static inline const dafs_handle *handle_of(struct dfuse *fs, fuse_ino_t ino)
{
    return &nodes_get(&fs->nodes, ino)->handle;
}

/* ops_ext.c: fallocate, copy_file_range, lseek (SEEK_DATA/HOLE), xattrs and
 * readdirplus, and what they need at init. */
void dfuse_ext_init(struct dfuse *fs, struct fuse_conn_info *conn);
void dfuse_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                        struct fuse_file_info *fi);
void dfuse_op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                              struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                              struct fuse_file_info *fi_out, size_t len, int flags);
void dfuse_op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                    struct fuse_file_info *fi);
void dfuse_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                       size_t size, int flags);
void dfuse_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void dfuse_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void dfuse_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void dfuse_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                          struct fuse_file_info *fi);

/* ops_lock.c: fcntl (POSIX, OFD) and flock locks through the server. */
void dfuse_lock_init(struct dfuse *fs, struct fuse_conn_info *conn);
void dfuse_op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct flock *lock);
void dfuse_op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
                    struct flock *lock, int sleep);
void dfuse_op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
/* FLUSH: release fi->lock_owner's POSIX locks on ino.  0 or a libdafs error. */
int dfuse_flush_locks(struct dfuse *fs, fuse_ino_t ino, struct fuse_file_info *fi);

/* Resolve the URL's path below the export root; 0 or a negative error. */
int dfuse_resolve_root(dafs_session *s, const char *path, dafs_handle *out);
/* libdafs error (negative) -> positive errno for the kernel. */
int dfuse_errno(int rc);
int dfuse_iobuf_init(struct dfuse *fs);

#endif
