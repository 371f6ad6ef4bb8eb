/*
 * durable.h — directory entries made durable by the next commit.
 *
 * A name created, linked, renamed or removed reaches stable storage only when
 * its directory is fsynced.  Doing that in every namespace operation (what a
 * "sync" NFS export does) costs a journal commit per create, which untarring
 * a tree would pay thousands of times.  Instead dafsd notes each changed
 * directory here, and whatever acknowledges data as stable — COMMIT, a
 * DATA_SYNC or FILE_SYNC write or append — first fsyncs every directory noted
 * so far.  So once a client's commit is acknowledged, its data and every name
 * changed on the export before it are on stable storage (docs/design.md,
 * "Durability").
 */
#ifndef DAFS_SERVER_DURABLE_H
#define DAFS_SERVER_DURABLE_H

#include <pthread.h>
#include <stdbool.h>

#include "export.h"
#include "proto.h"

/* Beyond this many distinct changed directories the next commit syncs the
 * whole file system (syncfs) instead of each directory. */
#define DURABLE_DIRS_MAX 256

typedef struct durable_dirs {
    pthread_mutex_t mu;    /* the set */
    pthread_mutex_t flush; /* one flush at a time: a commit that finds the set empty
                            * must still wait for a flush taken before it */
    unsigned count;
    bool overflow;         /* more than DURABLE_DIRS_MAX since the last flush */
    dafs_fh dirs[DURABLE_DIRS_MAX];
    dafs_fh flushing[DURABLE_DIRS_MAX]; /* under flush: the set being synced */
    unsigned long long syncs; /* directories fsynced, syncfs counted as one (tests, logs) */
} durable_dirs;

int durable_init(durable_dirs *d);
void durable_destroy(durable_dirs *d);

/* After a successful namespace operation: remember the directories req
 * changed (none for other requests). */
void durable_note_request(durable_dirs *d, const dafs_request *req);

/* Before acknowledging anything as stable: fsync every directory noted
 * (syncfs of the export after an overflow).  0 or -errno of the first failure (the directories
 * not synced stay noted).  The caller runs as root (cred_suspend): it
 * opens directories by handle. */
int durable_flush(durable_dirs *d, const dafs_export *e);

#endif
