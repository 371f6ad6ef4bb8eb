/*
 * ops.h — helpers shared by the operation files (ops.c, ops_ns.c,
 * ops_ext.c).  Code that runs ops includes opctx.h, not this.
 */
#ifndef DAFSD_OPS_H
#define DAFSD_OPS_H

#include <stdbool.h>
#include <sys/stat.h>

#include "opctx.h"

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

/* Namespace, attribute and credential ops (ops_ns.c); BADOP if not one. */
int ops_ns_execute(op_ctx *c);
/* APPEND_INLINE / APPEND_DIRECT (ops.c). */
int ops_append(op_ctx *c, bool direct);
/* Sync fd as a write's or commit's `stable` asks (UNSTABLE: nothing), and
 * with it every directory changed before (durable.h); *committed = stable. */
int ops_sync_as_asked(op_ctx *c, int fd, uint32_t stable, uint32_t *committed);

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
