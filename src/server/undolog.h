/*
 * undolog.h — the undo log of AUTORECOVER locks (DAFS draft §4.4.1.4).
 *
 * Before a write (or a truncation) under an AUTORECOVER lock is applied, the
 * bytes it will overwrite (only the part below the file's current size) and
 * the file's current size are appended to the object's undo log and made
 * durable (fdatasync).  Only then does the caller apply the write.  A clean
 * unlock discards the log (undolog_commit); a holder that dies, whose lease
 * expires or that calls ABORT gets its writes undone (undolog_rollback): the
 * pre-images are written back newest first, each followed by an ftruncate
 * to the size saved with it, the file is fsync'd, and the log removed.
 *
 * Crash safety.  The log is the only truth: a log on disk means "not
 * committed".  dafsd runs undolog_recover at start, before it serves
 * anything, and that rolls back every log it finds.  That ends in the
 * pre-lock state from any crash point, because
 *  - a write is applied only after its record is durable, so a torn last
 *    record (bad length or checksum: reading stops there) belongs to a write
 *    that never happened, and a complete record of a write that never
 *    happened restores bytes equal to the current ones;
 *  - rollback is idempotent: for every byte the oldest record that covers it
 *    holds its pre-lock value, and is applied last; a byte no record covers
 *    was never written and never cut (a cut below it would have recorded
 *    it), so replaying a rollback that was cut short by a crash, in the
 *    middle of any record, gives the same result;
 *  - the last step of a rollback is the ftruncate to the oldest record's
 *    saved size, the pre-lock size;
 *  - the log's creation is durable (file and directory fsync'd) before its
 *    first record is written; a log with a bad header has no records, so no
 *    write was applied under it, and is simply removed.
 *
 * Concurrency: records of one log are serialized by a mutex (pre-image read
 * and append under it), so of two concurrent writes the one recorded first
 * read its pre-image before either write was applied.  The caller must not
 * apply a write before undolog_before_write returned 0, and writes to the
 * object that bypass the log (another client's, while the lock is only
 * advisory) are not undone.
 *
 * A write larger than UNDOLOG_CHUNK is saved as several records (each with
 * its own checksum) and made durable with one fdatasync.
 *
 * On-disk layout (little-endian): docs/design.md, "Locks".
 */
#ifndef DAFSD_UNDOLOG_H
#define DAFSD_UNDOLOG_H

#include <stddef.h>
#include <stdint.h>

#define UNDOLOG_ID_MAX 64u        /* object id bytes (a file handle fits) */
#define UNDOLOG_CHUNK  (1u << 20) /* pre-image bytes per record */
#define UNDOLOG_DIR    "undo"     /* under the state directory */

typedef struct undolog undolog;

/* Open (creating it, mode 0700) STATE_DIR/undo; *dirfd is an O_DIRECTORY fd
 * for the calls below.  0 or -errno. */
int undolog_dir_open(const char *state_dir, int *dirfd);

/* Start the undo log of the object named by id (the caller's stable object
 * id: dafsd uses the file handle), whose data is reached through data_fd
 * (duplicated; must be open for reading and writing).  The log is durable
 * when this returns 0.  -EEXIST if a log for id exists already (it must be
 * recovered first), -EINVAL for a bad id, other -errno. */
int undolog_create(int dirfd, const void *id, size_t id_len, int data_fd, undolog **out);

/* Save what a write of len bytes at off will overwrite, and the size.
 * Durable on return 0; -errno otherwise (then the write must not be done). */
int undolog_before_write(undolog *u, uint64_t off, uint64_t len);

/* Save what a truncation to new_size will cut, and the size. */
int undolog_before_truncate(undolog *u, uint64_t new_size);

/* Clean unlock: remove the log (unlink, directory fsync'd) and free u. */
int undolog_commit(undolog *u);

/* Undo every recorded change, fsync the file, remove the log, free u.  On
 * failure the log stays on disk (recovery at the next start retries it) and
 * u is freed all the same. */
int undolog_rollback(undolog *u);

/* Free u and leave the log on disk (shutdown: recovery at start undoes). */
void undolog_close(undolog *u);

/* Records in the log so far (tests, statistics). */
uint64_t undolog_records(const undolog *u);

/* Open the object id for reading and writing: an fd, or -errno.  -ENOENT
 * or -ESTALE mean the object is gone (its log is then dropped). */
typedef int (*undolog_open_fn)(void *ctx, const uint8_t *id, size_t id_len);

/* At start: roll back every log in dirfd.  *rolled counts the logs undone
 * (NULL allowed).  0, or the first -errno met (the logs that failed stay on
 * disk; the others are still processed). */
int undolog_recover(int dirfd, undolog_open_fn open_fn, void *ctx, unsigned *rolled);

/*
 * The set of open logs, by object id: what dafsd's write path and the lock
 * table's rollback/commit callbacks share.  A log is created at the first
 * write or truncation of its object; rollback and commit of an object that
 * has none succeed (nothing was written under the lock).  Thread-safe: a
 * rollback or commit takes the log out of the set, then waits for records
 * being written to it.  dirfd is not owned.
 */
typedef struct undo_set undo_set;

int undoset_open(int dirfd, undo_set **out);
/* Free the set; the logs stay on disk (recovery at the next start). */
void undoset_close(undo_set *s);
int undoset_before_write(undo_set *s, const void *id, size_t id_len, int data_fd, uint64_t off,
                         uint64_t len);
int undoset_before_truncate(undo_set *s, const void *id, size_t id_len, int data_fd,
                            uint64_t new_size);
int undoset_rollback(undo_set *s, const void *id, size_t id_len);
int undoset_commit(undo_set *s, const void *id, size_t id_len);

/* CRC-32C (Castagnoli), exposed for the tests and the lock database. */
uint32_t undolog_crc32c(uint32_t crc, const void *data, size_t len);

#endif
