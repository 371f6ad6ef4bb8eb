/*
 * ops.h — one function per protocol operation, run on a worker thread.
 */
#ifndef DAFSD_OPS_H
#define DAFSD_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "openstate.h"
#include "server.h"

struct worker;

/*
 * Everything one operation needs.  The reply header (xid, session, grant)
 * is prepared by the caller; the op fills the body of `rep` and returns a
 * DAFS_ST_* status, or encodes the whole reply itself into reply_buf and
 * sets encoded_len (READDIR).
 *
 * Credentials: ops_execute looks up the header's credential and runs the
 * operation with the worker thread switched to it (cred.h); only opening a
 * handle (open_by_handle_at) happens as root, and every data open is then
 * redone as the caller (ops_reopen), so the kernel checks permissions.
 */
typedef struct op_ctx {
    server *srv;
    struct worker *w;
    session *sess;
    const dafs_request *req;
    dafs_reply rep;
    uint8_t *reply_buf;
    size_t reply_cap;   /* the session's max_response */
    int encoded_len;
    op_cred cred;       /* who the request runs as */
} op_ctx;

/* Execute c->req (a worker-side opcode).  Returns a DAFS_ST_* status. */
int ops_execute(op_ctx *c);

/* ---- shared by ops.c and ops_ns.c ---------------------------------------- */

/* Open the object named by fh as O_PATH (as root: handles need it). */
int ops_fh_open(op_ctx *c, const dafs_fh *fh, int *fd, struct stat *st);
/* Same, and it must be a directory (else NOTDIR). */
int ops_open_dir(op_ctx *c, const dafs_fh *fh, int *fd);
/* The /proc/self/fd path of fd: reopens or names the same inode, as the caller. */
void ops_proc_path(int fd, char out[64]);
/* Open the object behind O_PATH fd pathfd again with open(2) flags, as the
 * current (caller's) identity, so the kernel checks the caller's access. */
int ops_reopen(int pathfd, int flags, int *fd);
/* Reply fh + attr of the object open as fd. */
int ops_reply_fh_attr(op_ctx *c, int fd);
/* Copy a checked name into a NUL-terminated buffer. */
void ops_cname(const dafs_bytes *name, char out[DAFS_NAME_MAX + 1]);
/* Range check for offset + count within off_t. */
int ops_check_range(uint64_t offset, uint64_t count);
int ops_check_segs(const op_ctx *c, const dafs_seg *segs, unsigned nsegs, uint32_t count);

/* A regular file's fd for data I/O: an open state's (state), from the fd
 * cache (ent != NULL), or private to this request.  Released with
 * ops_data_close. */
typedef struct ops_data_fd {
    int fd;
    fdc_entry *ent;
    bool state;
    open_ref ref;
} ops_data_fd;
/* The fd of open state stateid (for fh, allowing need: OPENS_ACCESS_*, 0 = any). */
int ops_data_state(op_ctx *c, const dafs_fh *fh, dafs_stateid stateid, unsigned need,
                   ops_data_fd *d);
/* Through the fd cache, as the caller: kind FDC_READ (O_RDONLY) or FDC_WRITE (O_WRONLY). */
int ops_data_cached(op_ctx *c, const dafs_fh *fh, int kind, ops_data_fd *d);
/* Under stateid when it is not 0, else ops_data_cached. */
int ops_data_for(op_ctx *c, const dafs_fh *fh, dafs_stateid stateid, int kind, ops_data_fd *d);
void ops_data_close(op_ctx *c, ops_data_fd *d);

/* Namespace, attribute and credential ops (ops_ns.c); BADOP if not one. */
int ops_ns_execute(op_ctx *c);
/* APPEND_INLINE / APPEND_DIRECT (ops.c). */
int ops_append(op_ctx *c, bool direct);

/* Once at the start of each worker thread (ops_ext.c): its own umask of 0,
 * so new objects get exactly the mode the client asked for.  Aborts if the
 * thread cannot have a umask of its own. */
void ops_worker_thread_init(void);
/* SETATTR mode that chmod refused (EPERM) to the caller: allowed anyway when
 * it only clears set-user-ID/set-group-ID bits of a regular file the caller
 * may write (ops_ext.c), as the kernel clears them on such a write. */
int ops_clear_setid(int pfd, uint32_t mode);
/* The 70..79 ops (ops_ext.c): FALLOCATE, COPY_RANGE, SEEK, the xattr ops,
 * READDIRPLUS; BADOP if not one. */
int ops_ext_execute(op_ctx *c);
int ops_readdirplus(op_ctx *c);

/* CACHE_HINT (ops_hint.c). */
int ops_cache_hint(op_ctx *c);
/* A READ's or WRITE's per-request hint (DAFS_WIRE_HINT_*), applied after it
 * moved len bytes at offset through fd: DONTNEED drops them from the page
 * cache, WILLNEED/SEQUENTIAL on a read read ahead past them.  Best effort. */
void ops_hint_after_io(int fd, uint32_t hint, bool read, uint64_t offset, uint64_t len);

#endif
