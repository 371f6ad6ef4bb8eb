/*
 * fdcache.h — open file descriptors kept between requests, keyed by file
 * handle, the caller's identity and the access mode.
 *
 * Without it every READ/WRITE costs open_by_handle_at, a reopen through
 * /proc/self/fd as the caller, and two closes.  An entry is only ever used
 * for exactly the identity (uid, gid, groups, after squashing) that opened
 * it, so the kernel's permission check at open time still decides for that
 * caller; a cached fd opened by user A never serves user B.
 *
 * Staleness: every operation that can change who may open an object or
 * whether its handle is still valid (REMOVE, RMDIR, RENAME, SETATTR, LINK)
 * calls fdcache_invalidate(), which bumps a generation; entries from an
 * older generation, or older than FDC_TTL_MS (changes made outside dafs),
 * are never returned.  A worker reads the generation before it opens, so an
 * entry opened across an invalidation is born stale.  REMOVE cannot remove
 * a directory, so it bumps only the file generation, which O_PATH entries
 * of directories ignore (LOOKUP's parent stays cached).
 *
 * Threads: one mutex; the network thread only gets and puts references, and
 * never closes an fd (closing the last reference to an unlinked file can
 * block); workers insert, evict and close.
 */
#ifndef DAFSD_FDCACHE_H
#define DAFSD_FDCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cred.h"
#include "proto.h"

#define FDC_WAYS 8
#define FDC_SETS 64
#define FDC_TTL_MS 1000

enum fdc_kind { FDC_READ = 1, FDC_WRITE = 2, FDC_PATH = 3 };

typedef struct fdc_entry {
    bool used;
    bool dead;           /* no longer returned; closed once unreferenced */
    uint8_t kind;
    unsigned refs;
    uint64_t gen;
    uint64_t fgen;
    int64_t born_ms;
    uint64_t last_use;
    dafs_fh fh;
    op_cred cred;        /* zeroed for FDC_PATH (opened as root) */
    int fd;
    mode_t mode;         /* st_mode at open */
    ino_t ino;
} fdc_entry;

typedef struct fdcache {
    pthread_mutex_t mu;
    uint64_t gen;
    uint64_t fgen;       /* bumped by REMOVE (files only) */
    uint64_t tick;
    fdc_entry sets[FDC_SETS][FDC_WAYS];
} fdcache;

int fdcache_init(fdcache *c);
void fdcache_destroy(fdcache *c); /* closes every fd */

typedef struct fdc_gen {
    uint64_t all, files;
} fdc_gen;

/* The generation to pass to fdcache_add; read it before opening. */
fdc_gen fdcache_gen(fdcache *c);

/* A live entry for (kind, fh, cred) with a reference taken, or NULL.
 * cred is ignored for FDC_PATH. */
fdc_entry *fdcache_get(fdcache *c, int kind, const dafs_fh *fh, const op_cred *cred);
/* Drop a reference.  may_close: false on the network thread. */
void fdcache_put(fdcache *c, fdc_entry *e, bool may_close);

/* Offer fd (opened at generation gen) to the cache.  On success the cache
 * owns fd and the caller holds a reference (*out); false: not cached, the
 * caller still owns fd. */
bool fdcache_add(fdcache *c, int kind, const dafs_fh *fh, const op_cred *cred, int fd,
                 mode_t mode, ino_t ino, fdc_gen gen, fdc_entry **out);

/* Forget every entry (see the top of this file); files_only: every entry
 * but directories. */
void fdcache_invalidate(fdcache *c, bool files_only);

#endif
