/*
 * export.h — the exported directory tree and its file handles.
 *
 * Everything the server touches is reached from one root directory fd, by
 * single-component lookups that never follow symlinks and never leave the
 * export's file system, or by file handles that the server itself minted
 * (keyed MAC) and that name an object on the export's file system.
 */
#ifndef DAFSD_EXPORT_H
#define DAFSD_EXPORT_H

#include <stdint.h>
#include <sys/stat.h>

#include "proto.h"

#define EXPORT_KEY_BYTES 32

typedef struct dafs_export {
    int root_fd;                  /* O_PATH | O_DIRECTORY */
    int mount_fd;                 /* O_RDONLY root: open_by_handle_at refuses O_PATH fds */
    dev_t dev;                    /* st_dev of the root: objects elsewhere are refused */
    ino_t root_ino;
    uint8_t key[EXPORT_KEY_BYTES];/* MAC key of file handles, from STATE_DIR/handle.key */
} dafs_export;

/* Open the export root and load (or create) the handle key in state_dir.
 * Returns 0 or -errno, with a one-line reason in *why. */
int export_open(dafs_export *e, const char *root, const char *state_dir, const char **why);
void export_close(dafs_export *e);

/* errno (positive) -> wire status. */
int export_errno_status(int err);

/* Name check for one path component: DAFS_ST_OK or DAFS_ST_INVAL/NAMETOOLONG. */
int export_check_name(const dafs_bytes *name);

/* File handle of the object open as fd (any open mode, O_PATH fine). */
int export_make_fh(const dafs_export *e, int fd, dafs_fh *out);

/* Open the object named by fh with open(2) flags (O_PATH, O_RDONLY, ...).
 * Verifies the handle's MAC and the object's device.  On success *fd is the
 * open descriptor and *st its attributes.  Returns a DAFS_ST_* value. */
int export_open_fh(const dafs_export *e, const dafs_fh *fh, int flags, int *fd, struct stat *st);

/* Look up (or create, with O_CREAT in flags) name in directory dirfd without
 * following symlinks or crossing mounts.  Returns DAFS_ST_* and *fd. */
int export_openat(const dafs_export *e, int dirfd, const dafs_bytes *name, int flags,
                  unsigned mode, int *fd);

/* export_openat(..., O_PATH, ...) that never blocks: it uses only the
 * dentry and inode caches (RESOLVE_CACHED) and returns DAFS_ST_AGAIN when the
 * lookup would have to wait for the disk.  *st: the object's attributes.
 * For the network thread. */
int export_lookup_cached(const dafs_export *e, int dirfd, const dafs_bytes *name, int *fd,
                         struct stat *st);

void export_fill_attr(const struct stat *st, dafs_attr *a);

#endif
