/*
 * lockdb.h — the lock state that must survive a server restart: PERSIST
 * locks (held, breakable, broken) and locks taken over with REPAIR, in an
 * LMDB environment STATE_DIR/locks.mdb (DAFS draft §4.4.1.3: "The state of
 * a broken lock MUST survive client failures, server failures, and network
 * partitions").
 *
 * The lock table (locktab.c) owns the truth in memory and writes a file's
 * whole persistent set in one transaction whenever it changes
 * (lockdb_replace_file), so the database always holds a state the table
 * was in; a commit is durable (LMDB syncs on commit) before the lock call
 * returns.  At start the table loads every record (lockdb_load).
 *
 * Keys and values (big-endian keys sort by file, then start):
 *   key   = u8 fid_len | fid bytes | u64 BE start | u64 BE session | u64 BE owner
 *   value = u32 LE version (1) | u32 LE type | u32 LE flags | u32 LE state
 *           | u64 LE end (inclusive; 2^64-1 = to end of file) | u64 LE stateid
 */
#ifndef DAFSD_LOCKDB_H
#define DAFSD_LOCKDB_H

#include <stddef.h>
#include <stdint.h>

#define LOCKDB_FID_MAX  64u
#define LOCKDB_FILE     "locks.mdb"
#define LOCKDB_MAP_SIZE (256u << 20) /* bytes of address space; the caps bound the use */

/* Persistent states (a lock's state in locktab.h has the same values). */
enum lockdb_state {
    LOCKDB_HELD = 1, /* owner alive when written: breakable after a restart */
    LOCKDB_BREAKABLE = 2,
    LOCKDB_BROKEN = 3,
    LOCKDB_REPAIRING = 4, /* taken over with REPAIR: broken again after a restart */
};

typedef struct lockdb_rec {
    uint64_t start, end; /* inclusive */
    uint64_t session, owner, stateid;
    uint32_t type, flags, state;
} lockdb_rec;

typedef struct lockdb lockdb;

/* Open (creating) STATE_DIR/locks.mdb.  0 or -errno (LMDB's own error codes
 * are reported as -EIO, with the reason in the log). */
int lockdb_open(const char *state_dir, lockdb **out);
void lockdb_close(lockdb *db);

/* Make recs[0..n) the whole persistent set of file fid (n = 0 deletes it),
 * in one durable transaction.  0 or -errno. */
int lockdb_replace_file(lockdb *db, const uint8_t *fid, size_t fid_len, const lockdb_rec *recs,
                        size_t n);

/* Call cb for every record (stops at cb's first non-zero return, which is
 * returned).  A record that does not decode is skipped and counted in
 * *bad (NULL allowed). */
typedef int (*lockdb_load_fn)(void *ctx, const uint8_t *fid, size_t fid_len, const lockdb_rec *rec);
int lockdb_load(lockdb *db, lockdb_load_fn cb, void *ctx, unsigned *bad);

#endif
