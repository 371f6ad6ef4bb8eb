/*
 * openstate.h — open state (protocol v2 stateids): the files a session has
 * open, each holding the fd that OPEN or OPEN_FH opened as the caller.
 *
 * Why: an open file keeps the access it was granted at open, as on a local
 * file system (cp of a 0444 file, open(O_CREAT|O_RDWR, 0) then write, fchmod
 * 0000 on an open fd, a file unlinked while open).  I/O under a stateid runs
 * on the state's fd with no new permission check; stateid 0 keeps the v1
 * behaviour (open by handle as the caller for each request).
 *
 * A stateid is (generation << 32) | slot index.  Each slot's generation
 * starts at a random value and moves on every time the slot is reused, so a
 * stale or guessed id does not alias a later open; a stateid also names the
 * file handle it was opened for, and a request naming another handle is
 * refused.  Tables are per session: another session's stateid is unknown.
 *
 * Bounds: at most `limit` states per session (--max-opens) and at most
 * RLIMIT_NOFILE - 512 over all sessions (so open
 * states can never starve the server of descriptors).  Past either, OPEN
 * answers DAFS_ST_MFILE.  The slot array grows on demand up to the limit.
 *
 * Threads: one mutex per table.  I/O takes a reference on a state (by slot
 * index, so the array may grow meanwhile) and drops it when done; the network
 * thread only ever takes and drops references.  CLOSE marks the state closing
 * (no new references), waits until the last reference is dropped (they are
 * held only for one system call or one request), then closes the fd.  When a
 * session ends, its remaining fds go to a reaper thread, because closing the
 * last fd of an unlinked file can take a while and sessions may end on the
 * network thread.
 */
#ifndef DAFSD_OPENSTATE_H
#define DAFSD_OPENSTATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "proto.h"

#define OPENS_DEFAULT_LIMIT 4096u /* per session */
#define OPENS_ACCESS_READ   1u
#define OPENS_ACCESS_WRITE  2u

typedef struct open_state {
    uint32_t gen; /* generation of the current (or last) use */
    bool used;
    bool closing;
    unsigned access; /* OPENS_ACCESS_* */
    unsigned refs;
    int fd;
    dafs_fh fh;
} open_state;

typedef struct open_table {
    pthread_mutex_t mu;
    pthread_cond_t idle; /* a reference was dropped (CLOSE waits on it) */
    open_state *slots;
    uint32_t cap, used, limit;
    uint32_t next_free; /* search start */
} open_table;

/* A referenced state, for the duration of one request. */
typedef struct open_ref {
    int fd;
    uint32_t index;
    unsigned access;
} open_ref;

/* Once at startup: the global bound from RLIMIT_NOFILE (raising the soft
 * limit to the hard one first), and the reaper thread.  0 or -errno. */
int opens_start(void);
void opens_stop(void); /* after every session is gone: closes what is left */

int opens_init(open_table *t, uint32_t limit);
/* Hand every remaining fd to the reaper and free the table (no references
 * may be held). */
void opens_discard(open_table *t);

/* Add a state owning fd.  DAFS_ST_OK with *stateid; DAFS_ST_MFILE (limit) or
 * DAFS_ST_NOMEM, in which case the caller still owns fd. */
int opens_add(open_table *t, int fd, unsigned access, const dafs_fh *fh, dafs_stateid *stateid);
/* Reference the state stateid, which must be open for fh and allow `need`
 * (OPENS_ACCESS_*, 0 = any).  DAFS_ST_OK, DAFS_ST_BADSTATEID or
 * DAFS_ST_BADF (not open for that access). */
int opens_get(open_table *t, dafs_stateid stateid, const dafs_fh *fh, unsigned need, open_ref *out);
void opens_put(open_table *t, const open_ref *ref);
/* Release a state (CLOSE): waits for its references, closes its fd. */
int opens_close(open_table *t, dafs_stateid stateid, const dafs_fh *fh);
/* fstat the fd of some open state for fh (a file unlinked while open has
 * no handle to open any more).  DAFS_ST_OK or DAFS_ST_STALE. */
int opens_fstat_fh(open_table *t, const dafs_fh *fh, struct stat *st);
uint32_t opens_count(open_table *t);

#endif
