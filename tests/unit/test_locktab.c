/*
 * test_locktab.c — unit tests of the lock table (src/server/locktab.c), its
 * database (lockdb.c, a real LMDB in a temporary state directory) and its
 * AUTORECOVER hooks wired to the real undo log (undolog.c) on real files.
 *
 *  - the conflict matrix (shared/exclusive x same/other owner x overlapping,
 *    adjacent, to end of file) and the conflict reported (range, type,
 *    owner);
 *  - split on unlock, merge of touching ranges, conversion of a part of a
 *    lock (POSIX replacement), unlock of what is not locked; 4000 random
 *    steps of three owners checked against a byte map after every step;
 *  - deadlock detection of blocking requests (two- and three-owner cycles);
 *  - blocking waiters: FIFO order, no starvation of an exclusive waiter by
 *    later shared requests, cancel, a waiter whose session dies (the ones
 *    behind it go), release of an open state / owner / session;
 *  - shutdown with waiters queued: every waiter gets LT_SHUTDOWN once, a
 *    callback calling back into the table does not deadlock; threads
 *    contending for one exclusive lock never overlap;
 *  - caps on locks per session (a split counts) and on waiters;
 *  - PERSIST: breakable after lease expiry, broken by a conflicting
 *    request, LOCK_BROKEN for later requests, LOCKT and I/O, REPAIR of the
 *    whole or a part, clean after the repairer's unlock; broken at once on
 *    re-initialization; all of it surviving a reopen of the database (a
 *    held lock is breakable after it, a repair cut short is broken again);
 *  - AUTORECOVER with the real undo log: whole-file only, rollback on lease
 *    expiry and ABORT (file exactly as before the lock), commit on unlock,
 *    PERSIST|AUTORECOVER rolled back only when broken, I/O refused (BUSY)
 *    and locks denied while the rollback runs, a rollback waiting for a
 *    write in flight, a failed rollback or undo-log removal keeping the file
 *    locked, shutdown during a rollback;
 *  - crashes: a forked "server" dies at every undo/rollback crash point of
 *    an AUTORECOVER lock whose lease expires (recovery then gives the exact
 *    pre-lock file), and one dies holding a PERSIST lock (breakable after
 *    the restart).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "lockdb.h"
#include "locktab.h"
#include "undolog.h"

/* ---- fixture: a table, a state dir, grant notifications recorded ------------- */

#define MAX_GRANTS 256

typedef struct grant_rec {
    uint64_t id;
    int status;
} grant_rec;

typedef struct fixture {
    char dir[256];
    char state[300];
    lockdb *db;
    locktab *t;
    locktab_config cfg;
    pthread_mutex_t mu;
    grant_rec grants[MAX_GRANTS];
    unsigned ngrants;
    /* AUTORECOVER: one data file, its undo log */
    int undo_dirfd;
    int datafd;
    undolog *log;
    unsigned rollbacks, commits;
    bool check_busy_in_rollback;
    int busy_seen, denied_seen;
} fixture;

static void on_grant(void *ctx, uint64_t id, int status, const lt_req *req, const lt_conflict *c)
{
    (void)req;
    (void)c;
    fixture *f = ctx;
    pthread_mutex_lock(&f->mu);
    if (f->ngrants < MAX_GRANTS)
        f->grants[f->ngrants++] = (grant_rec){id, status};
    pthread_mutex_unlock(&f->mu);
}

static lt_fid FID(const char *name)
{
    lt_fid fid = {.len = (uint8_t)strlen(name)};
    memcpy(fid.b, name, fid.len);
    return fid;
}

static lt_req R(uint64_t sess, uint64_t owner, const char *fid, uint32_t type, uint64_t off,
                uint64_t len)
{
    lt_req r = {.fid = FID(fid),
                .who = {sess, owner},
                .stateid = 100 + sess,
                .type = type,
                .offset = off,
                .length = len};
    return r;
}

static int rollback_cb(void *ctx, const lt_fid *fid)
{
    fixture *f = ctx;
    (void)fid;
    f->rollbacks++;
    if (f->check_busy_in_rollback) {
        f->busy_seen = locktab_io_allowed(f->t, fid, 99, 0, 10, false, NULL);
        lt_req r = R(99, 1, "ar", LT_SHARED, 0, 10);
        r.fid = *fid;
        lt_conflict c;
        f->denied_seen = locktab_lock(f->t, &r, false, NULL, &c);
    }
    if (!f->log)
        return 0; /* nothing was written under the lock */
    int rc = undolog_rollback(f->log);
    f->log = NULL;
    return rc;
}

static int commit_cb(void *ctx, const lt_fid *fid)
{
    fixture *f = ctx;
    (void)fid;
    f->commits++;
    if (!f->log)
        return 0;
    int rc = undolog_commit(f->log);
    f->log = NULL;
    return rc;
}

static void open_table(fixture *f)
{
    assert_int_equal(lockdb_open(f->state, &f->db), 0);
    f->cfg.db = f->db;
    f->cfg.ctx = f;
    if (!f->cfg.on_grant)
        f->cfg.on_grant = on_grant;
    if (!f->cfg.rollback)
        f->cfg.rollback = rollback_cb;
    if (!f->cfg.commit)
        f->cfg.commit = commit_cb;
    assert_int_equal(locktab_open(&f->cfg, &f->t), 0);
}

static void close_table(fixture *f)
{
    locktab_close(f->t);
    f->t = NULL;
    lockdb_close(f->db);
    f->db = NULL;
}

/* A server restart, as far as the lock state goes. */
static void reopen_table(fixture *f)
{
    close_table(f);
    open_table(f);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(f->dir, sizeof(f->dir), "%s/dafs-locktab-XXXXXX", tmp);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
    assert_int_equal(mkdir(f->state, 0700), 0);
    assert_int_equal(pthread_mutex_init(&f->mu, NULL), 0);
    f->undo_dirfd = -1;
    f->datafd = -1;
    open_table(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->t)
        close_table(f);
    if (f->log)
        undolog_close(f->log);
    if (f->undo_dirfd >= 0)
        close(f->undo_dirfd);
    if (f->datafd >= 0)
        close(f->datafd);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return 0;
}

static int lock_nb(fixture *f, lt_req r, lt_conflict *c)
{
    lt_conflict dummy;
    return locktab_lock(f->t, &r, false, NULL, c ? c : &dummy);
}

static uint64_t lock_wait(fixture *f, lt_req r, int expect)
{
    uint64_t id = 0;
    lt_conflict c;
    assert_int_equal(locktab_lock(f->t, &r, true, &id, &c), expect);
    return id;
}

static int test_lock(fixture *f, lt_req r, lt_conflict *c)
{
    lt_conflict dummy;
    return locktab_test(f->t, &r, c ? c : &dummy);
}

static uint64_t nlocks(fixture *f)
{
    locktab_stats st;
    locktab_get_stats(f->t, &st);
    return st.locks;
}

/* ---- conflict matrix ------------------------------------------------------------ */

static void test_conflict_matrix(void **state)
{
    fixture *f = *state;
    static const struct {
        uint32_t held, want;
        bool same_owner;
        int expect;
    } cases[] = {
        {LT_SHARED, LT_SHARED, false, LT_OK},   {LT_SHARED, LT_EXCL, false, LT_DENIED},
        {LT_EXCL, LT_SHARED, false, LT_DENIED}, {LT_EXCL, LT_EXCL, false, LT_DENIED},
        {LT_SHARED, LT_SHARED, true, LT_OK},    {LT_SHARED, LT_EXCL, true, LT_OK},
        {LT_EXCL, LT_SHARED, true, LT_OK},      {LT_EXCL, LT_EXCL, true, LT_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(lock_nb(f, R(1, 1, "m", cases[i].held, 100, 50), NULL), LT_OK);
        uint64_t s = cases[i].same_owner ? 1 : 2;
        lt_conflict c;
        /* overlapping at either end, inside, around */
        uint64_t ranges[][2] = {{90, 11}, {149, 10}, {120, 5}, {0, 0}, {149, LT_TO_EOF}};
        for (size_t k = 0; k < 5; k++) {
            int rc = test_lock(f, R(s, 1, "m", cases[i].want, ranges[k][0], ranges[k][1]), &c);
            assert_int_equal(rc, cases[i].expect);
            if (rc == LT_DENIED) {
                assert_int_equal(c.who.session, 1);
                assert_int_equal(c.who.owner, 1);
                assert_int_equal(c.offset, 100);
                assert_int_equal(c.length, 50);
                assert_int_equal(c.type, cases[i].held);
                assert_false(c.waiter);
            }
            assert_int_equal(
                lock_nb(f, R(s, 1, "m", cases[i].want, ranges[k][0], ranges[k][1]), &c),
                cases[i].expect);
            if (cases[i].expect == LT_OK && !cases[i].same_owner)
                assert_int_equal(
                    locktab_unlock(
                        f->t, &(lt_req){.fid = FID("m"), .who = {s, 1}, .offset = 0, .length = 0}),
                    LT_OK);
            if (cases[i].same_owner) /* the owner converted its lock: put it back */
                assert_int_equal(lock_nb(f, R(1, 1, "m", cases[i].held, 100, 50), NULL), LT_OK);
        }
        /* adjacent ranges and other files never conflict */
        locktab_release_session(f->t, 1, LT_END_CLEAN);
        locktab_release_session(f->t, 2, LT_END_CLEAN);
        assert_int_equal(lock_nb(f, R(1, 1, "m", cases[i].held, 100, 50), NULL), LT_OK);
        assert_int_equal(test_lock(f, R(2, 1, "m", LT_EXCL, 0, 100), NULL), LT_OK);
        assert_int_equal(test_lock(f, R(2, 1, "m", LT_EXCL, 150, LT_TO_EOF), NULL), LT_OK);
        assert_int_equal(test_lock(f, R(2, 1, "other", LT_EXCL, 0, 0), NULL), LT_OK);
        /* another owner of the same session is another owner */
        assert_int_equal(test_lock(f, R(1, 2, "m", LT_EXCL, 100, 1), NULL), LT_DENIED);
        locktab_release_session(f->t, 1, LT_END_CLEAN);
        locktab_release_session(f->t, 2, LT_END_CLEAN);
        assert_int_equal(nlocks(f), 0);
    }
    /* bad requests */
    assert_int_equal(lock_nb(f, R(1, 1, "m", 7, 0, 1), NULL), LT_INVAL);
    assert_int_equal(lock_nb(f, R(1, 1, "m", LT_EXCL, UINT64_MAX, 2), NULL), LT_INVAL);
    assert_int_equal(lock_nb(f, R(1, 1, "m", LT_EXCL, UINT64_MAX, 1), NULL), LT_OK);
    lt_req bad = R(1, 1, "m", LT_EXCL, 0, 1);
    bad.fid.len = 0;
    assert_int_equal(lock_nb(f, bad, NULL), LT_INVAL);
    bad = R(1, 1, "m", LT_EXCL, 0, 1);
    bad.flags = 0x80;
    assert_int_equal(lock_nb(f, bad, NULL), LT_INVAL);
    bad.flags = LT_RECLAIM;
    assert_int_equal(lock_nb(f, bad, NULL), LT_NOGRACE); /* no grace period */
}

/* ---- split and merge ------------------------------------------------------------- */

/* The lock another owner sees at `at`, as [offset, length, type]. */
static void expect_lock_at(fixture *f, uint64_t at, uint64_t off, uint64_t len, uint32_t type)
{
    lt_conflict c;
    assert_int_equal(test_lock(f, R(9, 9, "s", LT_EXCL, at, 1), &c), LT_DENIED);
    assert_int_equal(c.offset, off);
    assert_int_equal(c.length, len);
    assert_int_equal(c.type, type);
}

static void expect_free_at(fixture *f, uint64_t at)
{
    assert_int_equal(test_lock(f, R(9, 9, "s", LT_EXCL, at, 1), NULL), LT_OK);
}

static void unlock_range(fixture *f, uint64_t sess, uint64_t owner, const char *fid, uint64_t off,
                         uint64_t len, int expect)
{
    lt_req r = R(sess, owner, fid, LT_SHARED, off, len);
    assert_int_equal(locktab_unlock(f->t, &r), expect);
}

static void test_split_merge(void **state)
{
    fixture *f = *state;
    assert_int_equal(lock_nb(f, R(1, 1, "s", LT_EXCL, 0, 100), NULL), LT_OK);
    unlock_range(f, 1, 1, "s", 40, 20, LT_OK); /* split */
    assert_int_equal(nlocks(f), 2);
    expect_lock_at(f, 10, 0, 40, LT_EXCL);
    expect_free_at(f, 40);
    expect_free_at(f, 59);
    expect_lock_at(f, 60, 60, 40, LT_EXCL);
    assert_int_equal(lock_nb(f, R(1, 1, "s", LT_EXCL, 40, 20), NULL), LT_OK); /* merge back */
    assert_int_equal(nlocks(f), 1);
    expect_lock_at(f, 50, 0, 100, LT_EXCL);
    /* conversion of a middle part: three pieces */
    assert_int_equal(lock_nb(f, R(1, 1, "s", LT_SHARED, 20, 10), NULL), LT_OK);
    assert_int_equal(nlocks(f), 3);
    expect_lock_at(f, 5, 0, 20, LT_EXCL);
    expect_lock_at(f, 25, 20, 10, LT_SHARED);
    expect_lock_at(f, 99, 30, 70, LT_EXCL);
    assert_int_equal(test_lock(f, R(9, 9, "s", LT_SHARED, 20, 10), NULL), LT_OK);
    /* converting it back merges everything */
    assert_int_equal(lock_nb(f, R(1, 1, "s", LT_EXCL, 20, 10), NULL), LT_OK);
    assert_int_equal(nlocks(f), 1);
    /* adjacent after, overlapping, to end of file */
    assert_int_equal(lock_nb(f, R(1, 1, "s", LT_EXCL, 100, 50), NULL), LT_OK);
    assert_int_equal(nlocks(f), 1);
    expect_lock_at(f, 0, 0, 150, LT_EXCL);
    assert_int_equal(lock_nb(f, R(1, 1, "s", LT_EXCL, 140, LT_TO_EOF), NULL), LT_OK);
    expect_lock_at(f, 1u << 30, 0, LT_TO_EOF, LT_EXCL);
    unlock_range(f, 1, 1, "s", 500, 0, LT_OK); /* cut the tail off */
    expect_lock_at(f, 499, 0, 500, LT_EXCL);
    expect_free_at(f, 500);
    /* different stateids do not merge; unlock covers both */
    lt_req r = R(1, 1, "s", LT_EXCL, 500, 10);
    r.stateid = 777;
    assert_int_equal(lock_nb(f, r, NULL), LT_OK);
    assert_int_equal(nlocks(f), 2);
    /* unlock of nothing, of a range bigger than what is held */
    unlock_range(f, 1, 1, "s", 10000, 5, LT_OK);
    unlock_range(f, 2, 1, "s", 0, 0, LT_OK); /* another owner: nothing of its own */
    assert_int_equal(nlocks(f), 2);
    unlock_range(f, 1, 1, "s", 0, 0, LT_OK);
    assert_int_equal(nlocks(f), 0);
    locktab_stats st;
    locktab_get_stats(f->t, &st);
    assert_int_equal(st.files, 0);
    /* two owners' shared locks side by side never merge with each other */
    assert_int_equal(lock_nb(f, R(1, 1, "s", LT_SHARED, 0, 10), NULL), LT_OK);
    assert_int_equal(lock_nb(f, R(2, 1, "s", LT_SHARED, 5, 10), NULL), LT_OK);
    assert_int_equal(nlocks(f), 2);
    unlock_range(f, 1, 1, "s", 0, 0, LT_OK);
    expect_lock_at(f, 5, 5, 10, LT_SHARED);
}

/* Random locks and unlocks of three owners on bytes 0..63 (and "64" for
 * 64..end of file), checked after every step against a byte map: the
 * answer of a lock request, what LOCKT reports at every byte, and the
 * number of lock records (each owner's maximal runs of one type: proof
 * that touching ranges are merged and splits leave nothing behind). */
static void test_random_against_model(void **state)
{
    fixture *f = *state;
    enum { BYTES = 65, OWNERS = 3 };
    uint8_t model[OWNERS][BYTES];
    memset(model, 0, sizeof(model));
    uint64_t rng = 12345;
    for (unsigned step = 0; step < 4000; step++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        unsigned o = (unsigned)(rng % OWNERS), op = (unsigned)(rng >> 8) % 3;
        unsigned s = (unsigned)(rng >> 16) % 64, n = 1 + (unsigned)(rng >> 24) % 16;
        bool to_eof = (rng >> 32) % 8 == 0;
        unsigned e = to_eof ? 64 : (s + n - 1 > 63 ? 63 : s + n - 1);
        uint64_t len = to_eof ? 0 : (uint64_t)(e - s + 1);
        if (op == 2) {
            lt_req r = R(o + 1, 1, "rm", LT_SHARED, s, len);
            assert_int_equal(locktab_unlock(f->t, &r), LT_OK);
            for (unsigned b = s; b <= e; b++)
                model[o][b] = 0;
        } else {
            uint32_t type = op == 0 ? LT_SHARED : LT_EXCL;
            bool conflict = false;
            for (unsigned b = s; b <= e; b++)
                for (unsigned k = 0; k < OWNERS; k++)
                    if (k != o && model[k][b] && (type == LT_EXCL || model[k][b] == LT_EXCL))
                        conflict = true;
            assert_int_equal(lock_nb(f, R(o + 1, 1, "rm", type, s, len), NULL),
                             conflict ? LT_DENIED : LT_OK);
            if (!conflict)
                for (unsigned b = s; b <= e; b++)
                    model[o][b] = (uint8_t)type;
        }
        /* what an observer sees at every byte */
        for (unsigned b = 0; b < BYTES; b++) {
            bool any = false, excl = false;
            for (unsigned k = 0; k < OWNERS; k++) {
                any |= model[k][b] != 0;
                excl |= model[k][b] == LT_EXCL;
            }
            lt_conflict c;
            uint64_t at = b == 64 ? 1000000 : b;
            int rc = test_lock(f, R(9, 9, "rm", LT_EXCL, at, 1), &c);
            assert_int_equal(rc, any ? LT_DENIED : LT_OK);
            if (any) {
                unsigned k = (unsigned)c.who.session - 1;
                assert_true(k < OWNERS);
                assert_int_equal(model[k][b], c.type);
                assert_true(c.offset <= at);
                assert_true(c.length == LT_TO_EOF || c.offset + c.length > at);
            }
            assert_int_equal(test_lock(f, R(9, 9, "rm", LT_SHARED, at, 1), NULL),
                             excl ? LT_DENIED : LT_OK);
        }
        uint64_t runs = 0;
        for (unsigned k = 0; k < OWNERS; k++)
            for (unsigned b = 0; b < BYTES; b++)
                runs += model[k][b] && (b == 0 || model[k][b - 1] != model[k][b]);
        if (nlocks(f) != runs)
            fail_msg("step %u: %llu lock records, the model has %llu runs", step,
                     (unsigned long long)nlocks(f), (unsigned long long)runs);
    }
}

/* ---- waiters -------------------------------------------------------------------- */

static void test_fifo_no_starvation(void **state)
{
    fixture *f = *state;
    assert_int_equal(lock_nb(f, R(1, 1, "w", LT_SHARED, 0, 0), NULL), LT_OK);
    uint64_t w1 = lock_wait(f, R(2, 1, "w", LT_EXCL, 0, 100), LT_QUEUED);
    /* a later shared request must not overtake the waiting exclusive one */
    lt_conflict c;
    assert_int_equal(lock_nb(f, R(3, 1, "w", LT_SHARED, 50, 10), &c), LT_DENIED);
    assert_true(c.waiter);
    assert_int_equal(c.who.session, 2);
    assert_int_equal(test_lock(f, R(3, 1, "w", LT_SHARED, 50, 10), NULL), LT_DENIED);
    uint64_t w2 = lock_wait(f, R(3, 1, "w", LT_SHARED, 50, 10), LT_QUEUED);
    uint64_t w3 = lock_wait(f, R(4, 1, "w", LT_EXCL, 0, 10), LT_QUEUED);
    uint64_t w4 = lock_wait(f, R(5, 1, "w", LT_EXCL, 1000, 10), LT_QUEUED); /* held by 1 only */
    /* but a request that conflicts with nobody goes at once */
    assert_int_equal(lock_nb(f, R(6, 1, "w", LT_SHARED, 5000, 0), NULL), LT_OK);
    assert_int_equal(f->ngrants, 0);
    unlock_range(f, 1, 1, "w", 0, 0, LT_OK);
    /* w1 goes; w2 and w3 conflict with w1; w4 with nobody left */
    assert_int_equal(f->ngrants, 2);
    assert_int_equal(f->grants[0].id, w1);
    assert_int_equal(f->grants[0].status, LT_OK);
    assert_int_equal(f->grants[1].id, w4);
    unlock_range(f, 2, 1, "w", 0, 0, LT_OK);
    /* w2 (shared 50..59) goes; w3 (exclusive 0..9) does not conflict with
     * w2: it goes as well, in order */
    assert_int_equal(f->ngrants, 4);
    assert_int_equal(f->grants[2].id, w2);
    assert_int_equal(f->grants[3].id, w3);
    assert_int_equal(locktab_cancel(f->t, w3), LT_NOENT); /* already granted */
    locktab_stats st;
    locktab_get_stats(f->t, &st);
    assert_int_equal(st.waiters, 0);
}

static void test_fifo_exclusive_chain(void **state)
{
    fixture *f = *state;
    assert_int_equal(lock_nb(f, R(1, 1, "x", LT_EXCL, 0, 0), NULL), LT_OK);
    uint64_t ids[8];
    for (unsigned i = 0; i < 8; i++)
        ids[i] = lock_wait(f, R(10 + i, 1, "x", LT_EXCL, 0, 0), LT_QUEUED);
    /* cancel one in the middle */
    assert_int_equal(locktab_cancel(f->t, ids[3]), LT_OK);
    assert_int_equal(locktab_cancel(f->t, ids[3]), LT_NOENT);
    unlock_range(f, 1, 1, "x", 0, 0, LT_OK);
    for (unsigned i = 0; i < 8; i++) {
        if (i == 3)
            continue;
        unsigned k = f->ngrants;
        assert_int_equal(f->grants[k - 1].id, ids[i]);
        assert_int_equal(f->grants[k - 1].status, LT_OK);
        unlock_range(f, 10 + i, 1, "x", 0, 0, LT_OK);
    }
    assert_int_equal(f->ngrants, 7);
    assert_int_equal(nlocks(f), 0);
}

static void test_waiter_session_dies(void **state)
{
    fixture *f = *state;
    assert_int_equal(lock_nb(f, R(1, 1, "d", LT_SHARED, 0, 0), NULL), LT_OK);
    uint64_t w1 = lock_wait(f, R(2, 1, "d", LT_EXCL, 0, 0), LT_QUEUED);
    uint64_t w2 = lock_wait(f, R(3, 1, "d", LT_SHARED, 0, 0), LT_QUEUED); /* behind w1 */
    assert_int_equal(f->ngrants, 0);
    locktab_release_session(f->t, 2, LT_END_LEASE);
    assert_int_equal(f->ngrants, 2);
    assert_int_equal(f->grants[0].id, w1);
    assert_int_equal(f->grants[0].status, LT_SHUTDOWN);
    assert_int_equal(f->grants[1].id, w2);
    assert_int_equal(f->grants[1].status, LT_OK);
    /* the holder's session dies: its lock goes, a waiter gets it */
    uint64_t w3 = lock_wait(f, R(4, 1, "d", LT_EXCL, 0, 0), LT_QUEUED);
    locktab_release_session(f->t, 1, LT_END_LEASE);
    assert_int_equal(f->ngrants, 2); /* session 3 still holds shared */
    locktab_release_session(f->t, 3, LT_END_LEASE);
    assert_int_equal(f->ngrants, 3);
    assert_int_equal(f->grants[2].id, w3);
    assert_int_equal(f->grants[2].status, LT_OK);
}

static void test_deadlock(void **state)
{
    fixture *f = *state;
    /* two owners: A holds 0..9 and waits for 10..19, B holds 10..19 */
    assert_int_equal(lock_nb(f, R(1, 1, "dl", LT_EXCL, 0, 10), NULL), LT_OK);
    assert_int_equal(lock_nb(f, R(2, 1, "dl", LT_EXCL, 10, 10), NULL), LT_OK);
    uint64_t wa = lock_wait(f, R(1, 1, "dl", LT_EXCL, 10, 10), LT_QUEUED);
    lock_wait(f, R(2, 1, "dl", LT_EXCL, 0, 10), LT_DEADLK);
    /* a third owner waiting for B is no cycle */
    lock_wait(f, R(3, 1, "dl", LT_SHARED, 15, 1), LT_QUEUED);
    /* three owners across two files: C holds x, waits for A's 0..9 ... */
    assert_int_equal(lock_nb(f, R(4, 1, "dl2", LT_EXCL, 0, 0), NULL), LT_OK);
    assert_int_equal(locktab_cancel(f->t, wa), LT_OK);
    lock_wait(f, R(1, 1, "dl2", LT_SHARED, 0, 1), LT_QUEUED); /* A waits for C */
    lock_wait(f, R(4, 1, "dl", LT_SHARED, 12, 1), LT_QUEUED); /* C waits for B */
    lock_wait(f, R(2, 1, "dl", LT_EXCL, 5, 1), LT_DEADLK);    /* B -> A -> C -> B */
    assert_int_equal(lock_nb(f, R(2, 1, "dl", LT_EXCL, 5, 1), NULL),
                     LT_DENIED); /* not blocking: fine */
}

static void test_release_open_owner_session(void **state)
{
    fixture *f = *state;
    lt_req a = R(1, 1, "r1", LT_EXCL, 0, 10), b = R(1, 1, "r2", LT_EXCL, 0, 10);
    a.stateid = 5;
    b.stateid = 6;
    assert_int_equal(lock_nb(f, a, NULL), LT_OK);
    assert_int_equal(lock_nb(f, b, NULL), LT_OK);
    assert_int_equal(lock_nb(f, R(1, 2, "r1", LT_EXCL, 100, 10), NULL), LT_OK);
    assert_int_equal(lock_nb(f, R(1, 3, "r3", LT_SHARED, 0, 0), NULL), LT_OK);
    uint64_t w = lock_wait(f, R(2, 1, "r1", LT_EXCL, 0, 0), LT_QUEUED);
    locktab_release_open(f->t, 1, 5); /* close of open state 5 */
    assert_int_equal(nlocks(f), 3);
    lt_conflict c;
    assert_int_equal(test_lock(f, R(3, 1, "r1", LT_EXCL, 0, 10), &c), LT_DENIED);
    assert_true(c.waiter); /* no lock there any more: only session 2's waiter */
    assert_int_equal(test_lock(f, R(3, 1, "r2", LT_EXCL, 0, 10), NULL), LT_DENIED);
    locktab_release_owner(f->t, (lt_owner){1, 2});
    assert_int_equal(nlocks(f), 3);  /* r2, r3, and r1 now session 2's */
    assert_int_equal(f->ngrants, 1); /* nothing of session 1 on r1 any more */
    assert_int_equal(f->grants[0].id, w);
    locktab_release_session(f->t, 1, LT_END_CLEAN);
    locktab_release_session(f->t, 2, LT_END_CLEAN);
    assert_int_equal(nlocks(f), 0);
    locktab_stats st;
    locktab_get_stats(f->t, &st);
    assert_int_equal(st.files, 0);
    assert_int_equal(st.waiters, 0);
}

/* A callback that calls back into the table (as dafsd's would, to reply). */
static locktab *reenter_table;
static unsigned reenter_calls;
static int reenter_status[64];
static void reentrant_grant(void *ctx, uint64_t id, int status, const lt_req *req,
                            const lt_conflict *c)
{
    (void)c;
    on_grant(ctx, id, status, req, c);
    lt_conflict cc;
    lt_req r = *req;
    r.length = 1;
    int rc = locktab_lock(reenter_table, &r, false, NULL, &cc);
    if (reenter_calls < 64)
        reenter_status[reenter_calls++] = rc;
}

static void test_shutdown_with_waiters(void **state)
{
    fixture *f = *state;
    close_table(f);
    f->cfg.on_grant = reentrant_grant;
    assert_int_equal(lockdb_open(f->state, &f->db), 0);
    f->cfg.db = f->db;
    f->cfg.ctx = f;
    assert_int_equal(locktab_open(&f->cfg, &f->t), 0);
    reenter_table = f->t;
    reenter_calls = 0;
    assert_int_equal(lock_nb(f, R(1, 1, "q", LT_EXCL, 0, 0), NULL), LT_OK);
    uint64_t ids[20];
    for (unsigned i = 0; i < 20; i++)
        ids[i] = lock_wait(f, R(2 + i, 1, i % 2 ? "q" : "q2", LT_EXCL, 0, 0),
                           i == 0 ? LT_OK : LT_QUEUED);
    locktab_close(f->t);
    f->t = NULL;
    lockdb_close(f->db);
    f->db = NULL;
    assert_int_equal(f->ngrants, 19);
    for (unsigned i = 0; i < 19; i++) {
        assert_int_equal(f->grants[i].status, LT_SHUTDOWN);
        assert_int_equal(reenter_status[i], LT_SHUTDOWN);
        bool found = false;
        for (unsigned k = 1; k < 20; k++)
            found |= f->grants[i].id == ids[k];
        assert_true(found);
    }
}

/* ---- threads ------------------------------------------------------------------------ */

typedef struct thr_ctx {
    fixture *f;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t granted[64]; /* per session: waiter id granted */
    int inside, max_inside;
    unsigned done;
} thr_ctx;

static thr_ctx *tc;

static void thr_grant(void *ctx, uint64_t id, int status, const lt_req *req, const lt_conflict *c)
{
    (void)ctx;
    (void)c;
    if (status != LT_OK)
        abort();
    pthread_mutex_lock(&tc->mu);
    tc->granted[req->who.session] = id;
    pthread_cond_broadcast(&tc->cv);
    pthread_mutex_unlock(&tc->mu);
}

static void *thr_main(void *arg)
{
    uint64_t sess = (uint64_t)(uintptr_t)arg;
    for (unsigned i = 0; i < 300; i++) {
        uint64_t id = 0;
        lt_conflict c;
        lt_req r = R(sess, 1, "t", LT_EXCL, 0, 0);
        int rc = locktab_lock(tc->f->t, &r, true, &id, &c);
        if (rc == LT_QUEUED) {
            pthread_mutex_lock(&tc->mu);
            while (tc->granted[sess] != id)
                pthread_cond_wait(&tc->cv, &tc->mu);
            pthread_mutex_unlock(&tc->mu);
        } else if (rc != LT_OK) {
            return (void *)1;
        }
        pthread_mutex_lock(&tc->mu);
        if (++tc->inside > tc->max_inside)
            tc->max_inside = tc->inside;
        pthread_mutex_unlock(&tc->mu);
        sched_yield();
        pthread_mutex_lock(&tc->mu);
        tc->inside--;
        pthread_mutex_unlock(&tc->mu);
        if (locktab_unlock(tc->f->t, &r) != LT_OK)
            return (void *)1;
    }
    return NULL;
}

static void test_threads_exclusive(void **state)
{
    fixture *f = *state;
    close_table(f);
    f->cfg.on_grant = thr_grant;
    open_table(f);
    f->cfg.on_grant = on_grant;
    thr_ctx ctx = {.f = f};
    pthread_mutex_init(&ctx.mu, NULL);
    pthread_cond_init(&ctx.cv, NULL);
    tc = &ctx;
    pthread_t th[6];
    for (uintptr_t i = 0; i < 6; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, (void *)(i + 1)), 0);
    for (unsigned i = 0; i < 6; i++) {
        void *ret;
        assert_int_equal(pthread_join(th[i], &ret), 0);
        assert_null(ret);
    }
    assert_int_equal(ctx.max_inside, 1);
    assert_int_equal(nlocks(f), 0);
    pthread_cond_destroy(&ctx.cv);
    pthread_mutex_destroy(&ctx.mu);
}

/* ---- caps ---------------------------------------------------------------------------- */

static void test_caps(void **state)
{
    fixture *f = *state;
    close_table(f);
    f->cfg.max_locks_per_session = 3;
    f->cfg.max_waiters = 3;
    f->cfg.max_waiters_per_session = 2;
    open_table(f);
    assert_int_equal(lock_nb(f, R(1, 1, "c", LT_EXCL, 0, 10), NULL), LT_OK);
    assert_int_equal(lock_nb(f, R(1, 1, "c", LT_EXCL, 20, 10), NULL), LT_OK);
    assert_int_equal(lock_nb(f, R(1, 2, "c2", LT_EXCL, 20, 10), NULL), LT_OK);
    assert_int_equal(lock_nb(f, R(1, 1, "c", LT_EXCL, 40, 10), NULL), LT_RESOURCE);
    assert_int_equal(nlocks(f), 3); /* nothing changed by the refused one */
    /* a merge does not add a record: allowed at the cap */
    assert_int_equal(lock_nb(f, R(1, 1, "c", LT_EXCL, 10, 5), NULL), LT_OK);
    lt_conflict c;
    assert_int_equal(test_lock(f, R(9, 9, "c", LT_EXCL, 12, 1), &c), LT_DENIED);
    assert_int_equal(c.offset, 0);
    assert_int_equal(c.length, 15);
    /* an unlock that splits past the cap is refused and changes nothing */
    unlock_range(f, 1, 1, "c", 22, 2, LT_RESOURCE);
    assert_int_equal(test_lock(f, R(9, 9, "c", LT_EXCL, 22, 1), NULL), LT_DENIED);
    unlock_range(f, 1, 1, "c", 20, 10, LT_OK);
    unlock_range(f, 1, 1, "c", 5, 2, LT_OK); /* now the split fits */
    assert_int_equal(nlocks(f), 3);
    /* waiters: 2 per session, 3 in all */
    lock_wait(f, R(2, 1, "c", LT_EXCL, 0, 0), LT_QUEUED);
    lock_wait(f, R(2, 2, "c", LT_EXCL, 0, 0), LT_QUEUED);
    lock_wait(f, R(2, 3, "c", LT_EXCL, 0, 0), LT_RESOURCE);
    lock_wait(f, R(3, 1, "c", LT_EXCL, 0, 0), LT_QUEUED);
    lock_wait(f, R(4, 1, "c", LT_EXCL, 0, 0), LT_RESOURCE);
    locktab_release_session(f->t, 2, LT_END_CLEAN);
    lock_wait(f, R(4, 1, "c", LT_EXCL, 0, 0), LT_QUEUED);
}

/* ---- PERSIST ----------------------------------------------------------------------------- */

static void test_persist_break_repair(void **state)
{
    fixture *f = *state;
    lt_req a = R(1, 7, "p", LT_EXCL, 0, 100);
    a.flags = LT_PERSIST;
    assert_int_equal(lock_nb(f, a, NULL), LT_OK);
    assert_int_equal(lock_nb(f, R(2, 1, "p", LT_SHARED, 50, 1), NULL), LT_DENIED);
    locktab_release_session(f->t, 1, LT_END_LEASE);
    /* breakable: LOCKT reports it, breaks nothing */
    lt_conflict c;
    assert_int_equal(test_lock(f, R(2, 1, "p", LT_SHARED, 50, 1), &c), LT_DENIED);
    assert_int_equal(c.state, LT_BREAKABLE);
    bool undo;
    assert_int_equal(locktab_io_allowed(f->t, &a.fid, 2, 0, 10, true, &undo), LT_OK);
    /* a non-conflicting request does not break it */
    assert_int_equal(lock_nb(f, R(2, 1, "p", LT_SHARED, 100, 10), NULL), LT_OK);
    /* the first conflicting request breaks it and is told so */
    assert_int_equal(lock_nb(f, R(3, 1, "p", LT_SHARED, 50, 1), &c), LT_BROKEN);
    assert_int_equal(c.who.session, 1);
    assert_int_equal(c.who.owner, 7);
    assert_int_equal(c.offset, 0);
    assert_int_equal(c.length, 100);
    assert_int_equal(c.state, LT_BROKEN_STATE);
    assert_int_equal(lock_nb(f, R(3, 1, "p", LT_EXCL, 99, 5), NULL), LT_BROKEN);
    assert_int_equal(test_lock(f, R(4, 1, "p", LT_SHARED, 0, 0), NULL), LT_BROKEN);
    lock_wait(f, R(4, 1, "p", LT_EXCL, 0, 1), LT_BROKEN); /* blocking: not queued */
    assert_int_equal(locktab_io_allowed(f->t, &a.fid, 4, 0, 10, true, NULL), LT_BROKEN);
    assert_int_equal(locktab_io_allowed(f->t, &a.fid, 4, 0, 10, false, NULL), LT_BROKEN);
    assert_int_equal(locktab_io_allowed(f->t, &a.fid, 4, 100, 10, true, NULL), LT_OK);
    /* a server restart: still broken */
    reopen_table(f);
    assert_int_equal(lock_nb(f, R(3, 1, "p", LT_SHARED, 10, 1), NULL), LT_BROKEN);
    assert_int_equal(locktab_io_allowed(f->t, &a.fid, 4, 0, 10, true, NULL), LT_BROKEN);
    /* REPAIR of a part: that part is taken over, the rest stays broken */
    lt_req rep = R(5, 1, "p", LT_EXCL, 0, 50);
    rep.flags = LT_REPAIR;
    assert_int_equal(lock_nb(f, rep, &c), LT_OK);
    assert_int_equal(test_lock(f, R(6, 1, "p", LT_SHARED, 10, 1), &c), LT_DENIED);
    assert_int_equal(c.who.session, 5);
    assert_int_equal(c.flags & LT_REPAIR, LT_REPAIR);
    assert_int_equal(test_lock(f, R(6, 1, "p", LT_SHARED, 60, 1), &c), LT_BROKEN);
    assert_int_equal(c.offset, 50);
    assert_int_equal(c.length, 50);
    assert_int_equal(locktab_io_allowed(f->t, &a.fid, 5, 0, 50, true, NULL), LT_OK);
    /* a restart in the middle of the repair: broken again */
    reopen_table(f);
    assert_int_equal(test_lock(f, R(6, 1, "p", LT_SHARED, 10, 1), &c), LT_BROKEN);
    assert_int_equal(c.who.session, 5);
    /* repair of the whole, then unlock: clean, also after a restart */
    rep = R(8, 1, "p", LT_EXCL, 0, 0);
    rep.flags = LT_REPAIR;
    assert_int_equal(lock_nb(f, rep, &c), LT_OK);
    assert_int_equal(test_lock(f, R(6, 1, "p", LT_SHARED, 60, 1), &c), LT_DENIED);
    unlock_range(f, 8, 1, "p", 0, 0, LT_OK);
    assert_int_equal(lock_nb(f, R(6, 1, "p", LT_EXCL, 0, 0), NULL), LT_OK);
    unlock_range(f, 6, 1, "p", 0, 0, LT_OK);
    reopen_table(f);
    assert_int_equal(nlocks(f), 0);
    assert_int_equal(lock_nb(f, R(6, 1, "p", LT_EXCL, 0, 0), NULL), LT_OK);
}

static void test_persist_reinit_restart_waiter(void **state)
{
    fixture *f = *state;
    lt_req a = R(1, 1, "pr", LT_EXCL, 0, 0);
    a.flags = LT_PERSIST;
    assert_int_equal(lock_nb(f, a, NULL), LT_OK);
    /* a waiter behind a PERSIST lock whose client re-initializes: broken at
     * once, the waiter is told LOCK_BROKEN */
    uint64_t w = lock_wait(f, R(2, 1, "pr", LT_SHARED, 0, 1), LT_QUEUED);
    locktab_release_session(f->t, 1, LT_END_REINIT);
    assert_int_equal(f->ngrants, 1);
    assert_int_equal(f->grants[0].id, w);
    assert_int_equal(f->grants[0].status, LT_BROKEN);
    lt_conflict c;
    assert_int_equal(test_lock(f, R(2, 1, "pr", LT_SHARED, 0, 1), &c), LT_BROKEN);
    /* a REPAIR waiter behind a live lock gets it when that goes */
    lt_req rep = R(3, 1, "pr2", LT_EXCL, 0, 0);
    rep.flags = LT_REPAIR | LT_PERSIST;
    lt_req held = R(4, 1, "pr2", LT_SHARED, 0, 10);
    held.flags = LT_PERSIST;
    assert_int_equal(lock_nb(f, held, NULL), LT_OK);
    /* a PERSIST lock held at a crash is breakable after the restart */
    reopen_table(f);
    assert_int_equal(test_lock(f, R(5, 1, "pr2", LT_EXCL, 0, 1), &c), LT_DENIED);
    assert_int_equal(c.state, LT_BREAKABLE);
    assert_int_equal(test_lock(f, R(5, 1, "pr2", LT_SHARED, 0, 1), &c), LT_OK); /* shared: fine */
    assert_int_equal(lock_nb(f, R(5, 1, "pr2", LT_SHARED, 0, 1), NULL), LT_OK);
    w = lock_wait(f, rep, LT_QUEUED); /* behind session 5's shared lock */
    unlock_range(f, 5, 1, "pr2", 0, 0, LT_OK);
    /* the REPAIR waiter broke the breakable lock and took it over */
    assert_int_equal(f->grants[f->ngrants - 1].id, w);
    assert_int_equal(f->grants[f->ngrants - 1].status, LT_OK);
    locktab_stats st;
    locktab_get_stats(f->t, &st);
    assert_int_equal(st.broken, 1);
    /* and the file "pr" is still broken after all that */
    assert_int_equal(test_lock(f, R(2, 1, "pr", LT_SHARED, 0, 1), &c), LT_BROKEN);
}

/* The grace period after a restart: only reclaims; PERSIST locks held at
 * the crash are neither reclaimable nor breakable until it ends. */
static void test_grace_reclaim(void **state)
{
    fixture *f = *state;
    lt_req p = R(1, 1, "g", LT_EXCL, 0, 10);
    p.flags = LT_PERSIST;
    assert_int_equal(lock_nb(f, p, NULL), LT_OK);
    reopen_table(f);
    locktab_grace_begin(f->t);
    lt_conflict c;
    assert_int_equal(lock_nb(f, R(2, 1, "g2", LT_EXCL, 0, 100), NULL), LT_GRACE);
    assert_int_equal(test_lock(f, R(2, 1, "g2", LT_EXCL, 0, 100), NULL), LT_GRACE);
    lt_fid g2 = FID("g2");
    assert_int_equal(locktab_io_allowed(f->t, &g2, 2, 0, 1, false, NULL), LT_GRACE);
    lt_req rc1 = R(2, 1, "g2", LT_EXCL, 0, 100);
    rc1.flags = LT_RECLAIM;
    assert_int_equal(lock_nb(f, rc1, NULL), LT_OK);
    lt_req rc2 = R(3, 1, "g2", LT_SHARED, 50, 1);
    rc2.flags = LT_RECLAIM;
    assert_int_equal(lock_nb(f, rc2, &c), LT_DENIED);
    assert_int_equal(c.who.session, 2);
    assert_int_equal(lock_wait(f, rc2, LT_DENIED), 0); /* a reclaim never waits */
    lt_req rc3 = R(3, 1, "g", LT_SHARED, 5, 1);
    rc3.flags = LT_RECLAIM;
    assert_int_equal(lock_nb(f, rc3, &c), LT_DENIED); /* not broken during the grace period */
    assert_int_equal(c.state, LT_BREAKABLE);
    lt_req rc4 = R(3, 1, "g3", LT_EXCL, 0, 0);
    rc4.flags = LT_RECLAIM | LT_AUTORECOVER;
    assert_int_equal(lock_nb(f, rc4, NULL), LT_NOTSUPP);
    locktab_grace_end(f->t);
    assert_int_equal(lock_nb(f, R(4, 1, "g2", LT_SHARED, 0, 1), &c), LT_DENIED);
    assert_int_equal(c.who.session, 2);
    assert_int_equal(lock_nb(f, R(4, 1, "g", LT_SHARED, 5, 1), &c), LT_BROKEN);
    assert_int_equal(lock_nb(f, rc2, NULL), LT_NOGRACE);
    assert_int_equal(locktab_io_allowed(f->t, &g2, 2, 0, 1, false, NULL), LT_OK);
}

/* ---- AUTORECOVER ----------------------------------------------------------------------------- */

static void ar_setup(fixture *f, const char *content)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/ar.data", f->dir);
    f->datafd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(f->datafd >= 0);
    assert_int_equal(pwrite(f->datafd, content, strlen(content), 0), (ssize_t)strlen(content));
    if (f->undo_dirfd < 0)
        assert_int_equal(undolog_dir_open(f->state, &f->undo_dirfd), 0);
}

/* The server's write path: check, log, write. */
static void ar_write(fixture *f, uint64_t sess, const char *data, uint64_t off)
{
    lt_fid fid = FID("ar");
    bool undo = false;
    assert_int_equal(locktab_io_allowed(f->t, &fid, sess, off, strlen(data), true, &undo), LT_OK);
    assert_true(undo);
    if (!f->log)
        assert_int_equal(undolog_create(f->undo_dirfd, "ar", 2, f->datafd, &f->log), 0);
    assert_int_equal(undolog_before_write(f->log, off, strlen(data)), 0);
    assert_int_equal(pwrite(f->datafd, data, strlen(data), (off_t)off), (ssize_t)strlen(data));
}

static void ar_truncate(fixture *f, uint64_t size)
{
    assert_int_equal(undolog_before_truncate(f->log, size), 0);
    assert_int_equal(ftruncate(f->datafd, (off_t)size), 0);
}

static void expect_content(fixture *f, const char *want)
{
    char buf[256];
    struct stat st;
    assert_int_equal(fstat(f->datafd, &st), 0);
    assert_int_equal(st.st_size, strlen(want));
    assert_int_equal(pread(f->datafd, buf, sizeof(buf), 0), (ssize_t)strlen(want));
    assert_memory_equal(buf, want, strlen(want));
}

static void test_autorecover(void **state)
{
    fixture *f = *state;
    ar_setup(f, "original content");
    /* only exclusive whole-file locks */
    lt_req ar = R(1, 1, "ar", LT_EXCL, 0, 10);
    ar.flags = LT_AUTORECOVER;
    assert_int_equal(lock_nb(f, ar, NULL), LT_NOTSUPP);
    ar = R(1, 1, "ar", LT_SHARED, 0, 0);
    ar.flags = LT_AUTORECOVER;
    assert_int_equal(lock_nb(f, ar, NULL), LT_NOTSUPP);
    ar = R(1, 1, "ar", LT_EXCL, 0, 0);
    ar.flags = LT_AUTORECOVER;
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK);
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK); /* again: no-op */
    lt_req part = R(1, 1, "ar", LT_SHARED, 0, 5);
    assert_int_equal(lock_nb(f, part, NULL), LT_RANGE);
    unlock_range(f, 1, 1, "ar", 0, 5, LT_RANGE);
    bool undo = true;
    lt_fid fid = FID("ar");
    assert_int_equal(locktab_io_allowed(f->t, &fid, 2, 0, 5, true, &undo), LT_OK);
    assert_false(undo); /* another session's write is not logged */
    /* writes, an extension, a truncation; then the lease expires */
    ar_write(f, 1, "CHANGED", 0);
    ar_write(f, 1, "and a longer tail that extends the file", 10);
    ar_truncate(f, 20);
    uint64_t w = lock_wait(f, R(2, 1, "ar", LT_SHARED, 0, 0), LT_QUEUED);
    f->check_busy_in_rollback = true;
    locktab_release_session(f->t, 1, LT_END_LEASE);
    assert_int_equal(f->rollbacks, 1);
    assert_int_equal(f->busy_seen, LT_BUSY);
    assert_int_equal(f->denied_seen, LT_DENIED);
    f->check_busy_in_rollback = false;
    expect_content(f, "original content");
    assert_int_equal(f->grants[f->ngrants - 1].id, w);
    assert_int_equal(f->grants[f->ngrants - 1].status, LT_OK);
    unlock_range(f, 2, 1, "ar", 0, 0, LT_OK);

    /* clean unlock: the changes stay, the log goes */
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK);
    ar_write(f, 1, "KEPT", 0);
    unlock_range(f, 1, 1, "ar", 0, 0, LT_OK);
    assert_int_equal(f->commits, 1);
    assert_null(f->log);
    expect_content(f, "KEPTinal content");

    /* ABORT */
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK);
    ar_write(f, 1, "ABORTED", 3);
    assert_int_equal(locktab_abort(f->t, &ar), LT_OK);
    expect_content(f, "KEPTinal content");
    assert_int_equal(locktab_abort(f->t, &ar), LT_NOENT);
    assert_int_equal(nlocks(f), 0);

    /* close of the open state: a clean release */
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK);
    ar_write(f, 1, "CLOSED", 0);
    locktab_release_open(f->t, 1, ar.stateid);
    expect_content(f, "CLOSEDal content");
    assert_null(f->log);

    /* PERSIST|AUTORECOVER: breakable on lease expiry, rolled back when broken */
    lt_req pa = ar;
    pa.flags = LT_AUTORECOVER | LT_PERSIST;
    assert_int_equal(lock_nb(f, pa, NULL), LT_OK);
    ar_write(f, 1, "PERSISTENT WRITE", 0);
    unsigned before = f->rollbacks;
    locktab_release_session(f->t, 1, LT_END_LEASE);
    assert_int_equal(f->rollbacks, before);
    expect_content(f, "PERSISTENT WRITE");
    lt_conflict c;
    assert_int_equal(lock_nb(f, R(3, 1, "ar", LT_SHARED, 0, 1), &c), LT_BROKEN);
    assert_int_equal(f->rollbacks, before + 1);
    expect_content(f, "CLOSEDal content");
    assert_int_equal(locktab_io_allowed(f->t, &fid, 3, 0, 1, false, NULL), LT_BROKEN);
    reopen_table(f);
    assert_int_equal(lock_nb(f, R(3, 1, "ar", LT_SHARED, 0, 1), &c), LT_BROKEN);
}

static int failing_rollback(void *ctx, const lt_fid *fid)
{
    (void)fid;
    ((fixture *)ctx)->rollbacks++;
    return -EIO;
}

static int recover_open(void *ctx, const uint8_t *id, size_t id_len)
{
    fixture *f = ctx;
    assert_int_equal(id_len, 2);
    assert_memory_equal(id, "ar", 2);
    return fcntl(f->datafd, F_DUPFD_CLOEXEC, 0);
}

static void test_autorecover_rollback_failure(void **state)
{
    fixture *f = *state;
    close_table(f);
    f->cfg.rollback = failing_rollback;
    open_table(f);
    ar_setup(f, "before the lock");
    lt_req ar = R(1, 1, "ar", LT_EXCL, 0, 0);
    ar.flags = LT_AUTORECOVER;
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK);
    ar_write(f, 1, "AFTER", 0);
    locktab_release_session(f->t, 1, LT_END_LEASE);
    assert_int_equal(f->rollbacks, 1);
    /* the file stays unavailable: no lock, no I/O */
    lt_fid fid = FID("ar");
    assert_int_equal(locktab_io_allowed(f->t, &fid, 2, 0, 1, false, NULL), LT_BUSY);
    lt_conflict c;
    assert_int_equal(lock_nb(f, R(2, 1, "ar", LT_SHARED, 0, 1), &c), LT_DENIED);
    assert_int_equal(c.state, LT_ROLLBACK);
    locktab_stats st;
    locktab_get_stats(f->t, &st);
    assert_int_equal(st.rollback_failures, 1);
    /* the restart: recovery of the undo log, then a table without it */
    close_table(f);
    undolog_close(f->log);
    f->log = NULL;
    unsigned rolled = 0;
    assert_int_equal(undolog_recover(f->undo_dirfd, recover_open, f, &rolled), 0);
    assert_int_equal(rolled, 1);
    expect_content(f, "before the lock");
    open_table(f);
    assert_int_equal(lock_nb(f, R(2, 1, "ar", LT_SHARED, 0, 1), NULL), LT_OK);
}

static int failing_commit(void *ctx, const lt_fid *fid)
{
    (void)fid;
    ((fixture *)ctx)->commits++;
    return -EIO;
}

/* An undo log that cannot be removed: the unlock says so, and the file
 * stays locked (a restart would roll it back, not leave half a state). */
static void test_autorecover_commit_failure(void **state)
{
    fixture *f = *state;
    close_table(f);
    f->cfg.commit = failing_commit;
    open_table(f);
    lt_req ar = R(1, 1, "cf", LT_EXCL, 0, 0);
    ar.flags = LT_AUTORECOVER;
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK);
    assert_int_equal(locktab_unlock(f->t, &ar), LT_IO);
    assert_int_equal(f->commits, 1);
    assert_int_equal(locktab_io_allowed(f->t, &ar.fid, 2, 0, 1, false, NULL), LT_BUSY);
    assert_int_equal(lock_nb(f, R(2, 1, "cf", LT_SHARED, 0, 1), NULL), LT_DENIED);
}

/* Shutdown while a rollback runs on another thread: close waits for it. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool started, done;
    int io_during;
    locktab *t;
} slow;

static int slow_rollback(void *ctx, const lt_fid *fid)
{
    (void)ctx;
    pthread_mutex_lock(&slow.mu);
    slow.started = true;
    pthread_cond_broadcast(&slow.cv);
    pthread_mutex_unlock(&slow.mu);
    for (int i = 0; i < 1000; i++) /* keeps going into close */
        slow.io_during = locktab_io_allowed(slow.t, fid, 5, 0, 1, true, NULL);
    slow.done = true;
    return 0;
}

static void *expire_session(void *arg)
{
    locktab_release_session(arg, 1, LT_END_LEASE);
    return NULL;
}

static void test_shutdown_during_rollback(void **state)
{
    fixture *f = *state;
    close_table(f);
    f->cfg.rollback = slow_rollback;
    open_table(f);
    pthread_mutex_init(&slow.mu, NULL);
    pthread_cond_init(&slow.cv, NULL);
    slow.t = f->t;
    lt_req ar = R(1, 1, "sd", LT_EXCL, 0, 0);
    ar.flags = LT_AUTORECOVER;
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK);
    lock_wait(f, R(2, 1, "sd", LT_EXCL, 0, 0), LT_QUEUED);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, expire_session, f->t), 0);
    pthread_mutex_lock(&slow.mu);
    while (!slow.started)
        pthread_cond_wait(&slow.cv, &slow.mu);
    pthread_mutex_unlock(&slow.mu);
    close_table(f); /* must wait for the rollback, not deadlock */
    assert_true(slow.done);
    assert_int_equal(slow.io_during, LT_BUSY);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(f->ngrants, 1); /* the waiter: cancelled by the shutdown, or granted */
    assert_true(f->grants[0].status == LT_SHUTDOWN || f->grants[0].status == LT_OK);
    pthread_cond_destroy(&slow.cv);
    pthread_mutex_destroy(&slow.mu);
}

/* A write that passed its check before the lease expired is not torn by
 * the rollback: the rollback waits for it. */
static struct {
    bool write_done;
    bool order_ok;
} inflight;

static int ordered_rollback(void *ctx, const lt_fid *fid)
{
    (void)fid;
    fixture *f = ctx;
    inflight.order_ok = inflight.write_done;
    int rc = f->log ? undolog_rollback(f->log) : 0;
    f->log = NULL;
    return rc;
}

static void test_rollback_waits_for_io(void **state)
{
    fixture *f = *state;
    close_table(f);
    f->cfg.rollback = ordered_rollback;
    open_table(f);
    ar_setup(f, "pre-lock bytes");
    lt_req ar = R(1, 1, "ar", LT_EXCL, 0, 0);
    ar.flags = LT_AUTORECOVER;
    assert_int_equal(lock_nb(f, ar, NULL), LT_OK);
    /* the write path: begin (counted), undo record, then the lease expires
     * on another thread before the data is written */
    bool undo = false, counted = false;
    assert_int_equal(locktab_io_begin(f->t, &ar.fid, 1, 0, 4, true, &undo, &counted), LT_OK);
    assert_true(undo);
    assert_true(counted);
    assert_int_equal(undolog_create(f->undo_dirfd, "ar", 2, f->datafd, &f->log), 0);
    assert_int_equal(undolog_before_write(f->log, 0, 4), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, expire_session, f->t), 0);
    for (int i = 0; i < 20000; i++) { /* bounded: up to ~20 s */
        locktab_stats st;
        locktab_get_stats(f->t, &st);
        if (st.io_waits == 1)
            break;
        usleep(1000);
    }
    locktab_stats st;
    locktab_get_stats(f->t, &st);
    assert_int_equal(st.io_waits, 1);
    /* meanwhile new I/O is refused */
    bool c2 = true;
    assert_int_equal(locktab_io_begin(f->t, &ar.fid, 2, 0, 1, false, NULL, &c2), LT_BUSY);
    assert_false(c2);
    assert_int_equal(pwrite(f->datafd, "POST", 4, 0), 4);
    inflight.write_done = true;
    locktab_io_end(f->t, &ar.fid);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_true(inflight.order_ok);
    expect_content(f, "pre-lock bytes");
    /* no lock, no count: I/O on a file without locks is not counted */
    assert_int_equal(locktab_io_begin(f->t, &ar.fid, 2, 0, 1, true, NULL, &counted), LT_OK);
    assert_false(counted);
    locktab_stats st2;
    locktab_get_stats(f->t, &st2);
    assert_int_equal(st2.files, 0);
}

/* ---- crashes through the table ----------------------------------------------------- */

/* In a forked child: the lock table of a "server" that takes an
 * AUTORECOVER lock, writes under it (> 1 MiB, an extension, a truncation),
 * then sees the lease expire and rolls back, dying at the crash point. */
static void crash_child(fixture *f, const char *spec)
{
    setenv("DAFS_FAULT", spec, 1);
    fault_reset();
    lockdb *db;
    locktab *t;
    if (lockdb_open(f->state, &db) != 0)
        _exit(2);
    f->cfg.db = db;
    f->cfg.rollback = rollback_cb;
    f->cfg.commit = commit_cb;
    if (locktab_open(&f->cfg, &t) != 0)
        _exit(3);
    f->t = t;
    lt_req ar = R(1, 1, "ar", LT_EXCL, 0, 0);
    ar.flags = LT_AUTORECOVER;
    if (locktab_lock(t, &ar, false, NULL, NULL) != LT_OK)
        _exit(4);
    static const struct {
        uint64_t off, len;
    } w[] = {{100, 3u << 20}, {5u << 20, 4096}, {10, 10}};
    uint8_t *buf = malloc(3u << 20);
    if (!buf)
        _exit(5);
    memset(buf, 0x5a, 3u << 20);
    if (undolog_create(f->undo_dirfd, "ar", 2, f->datafd, &f->log) != 0)
        _exit(6);
    for (size_t i = 0; i < 3; i++) {
        bool undo = false;
        if (locktab_io_allowed(t, &ar.fid, 1, w[i].off, w[i].len, true, &undo) != LT_OK || !undo)
            _exit(7);
        if (undolog_before_write(f->log, w[i].off, w[i].len) != 0 ||
            pwrite(f->datafd, buf, w[i].len, (off_t)w[i].off) != (ssize_t)w[i].len)
            _exit(8);
    }
    if (undolog_before_truncate(f->log, 1000) != 0 || ftruncate(f->datafd, 1000) != 0)
        _exit(9);
    locktab_release_session(t, 1, LT_END_LEASE); /* the rollback */
    if (f->log || f->rollbacks != 1)
        _exit(10);
    _exit(0);
}

static void test_crash_through_table(void **state)
{
    fixture *f = *state;
    static const char *const specs[] = {
        "undo:after_create:1",      "undo:before_record:1",
        "undo:mid_record:2",        "undo:after_record:3",
        "undo:after_record:4",      "rollback:after_apply:1",
        "rollback:after_apply:3",   "rollback:after_apply:5",
        "rollback:before_unlink:1", "none:1",
    };
    assert_int_equal(undolog_dir_open(f->state, &f->undo_dirfd), 0);
    char path[600];
    snprintf(path, sizeof(path), "%s/ar.data", f->dir);
    for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
        f->datafd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(f->datafd >= 0);
        size_t size = (2u << 20) + 12345;
        uint8_t *orig = malloc(size);
        assert_non_null(orig);
        for (size_t k = 0; k < size; k++)
            orig[k] = (uint8_t)(k * 31 + i);
        assert_int_equal(pwrite(f->datafd, orig, size, 0), (ssize_t)size);
        close_table(f); /* no LMDB environment across fork() */
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
            crash_child(f, specs[i]);
        int ws;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        assert_true(WIFEXITED(ws));
        bool never = strncmp(specs[i], "none", 4) == 0;
        if (WEXITSTATUS(ws) != (never ? 0 : FAULT_EXIT_CODE))
            fail_msg("%s: child exited %d", specs[i], WEXITSTATUS(ws));
        /* the restart: undo recovery first, then the table */
        unsigned rolled = 0;
        assert_int_equal(undolog_recover(f->undo_dirfd, recover_open, f, &rolled), 0);
        struct stat st;
        assert_int_equal(fstat(f->datafd, &st), 0);
        assert_int_equal(st.st_size, size);
        uint8_t *now = malloc(size);
        assert_non_null(now);
        assert_int_equal(pread(f->datafd, now, size, 0), (ssize_t)size);
        assert_memory_equal(now, orig, size);
        free(now);
        free(orig);
        open_table(f);
        assert_int_equal(lock_nb(f, R(2, 1, "ar", LT_EXCL, 0, 0), NULL), LT_OK);
        unlock_range(f, 2, 1, "ar", 0, 0, LT_OK);
        close(f->datafd);
        f->datafd = -1;
    }
}

/* A "server" killed while a PERSIST lock is held: breakable after the
 * restart, broken by the next conflicting request. */
static void test_persist_server_crash(void **state)
{
    fixture *f = *state;
    close_table(f);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        lockdb *db;
        locktab *t;
        if (lockdb_open(f->state, &db) != 0)
            _exit(2);
        f->cfg.db = db;
        if (locktab_open(&f->cfg, &t) != 0)
            _exit(3);
        lt_req p = R(1, 1, "pc", LT_EXCL, 10, 20);
        p.flags = LT_PERSIST;
        if (locktab_lock(t, &p, false, NULL, NULL) != LT_OK)
            _exit(4);
        _exit(FAULT_EXIT_CODE); /* no close, no sync: as a crash */
    }
    int ws;
    assert_int_equal(waitpid(pid, &ws, 0), pid);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), FAULT_EXIT_CODE);
    open_table(f);
    lt_conflict c;
    assert_int_equal(test_lock(f, R(2, 1, "pc", LT_EXCL, 0, 0), &c), LT_DENIED);
    assert_int_equal(c.state, LT_BREAKABLE);
    assert_int_equal(c.offset, 10);
    assert_int_equal(c.length, 20);
    assert_int_equal(lock_nb(f, R(2, 1, "pc", LT_EXCL, 0, 0), &c), LT_BROKEN);
    reopen_table(f);
    assert_int_equal(lock_nb(f, R(3, 1, "pc", LT_SHARED, 15, 1), &c), LT_BROKEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conflict_matrix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_split_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_random_against_model, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_no_starvation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo_exclusive_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiter_session_dies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadlock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_open_owner_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_with_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_exclusive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_break_repair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_reinit_restart_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grace_reclaim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autorecover, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autorecover_rollback_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_autorecover_commit_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_during_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollback_waits_for_io, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_through_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persist_server_crash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
