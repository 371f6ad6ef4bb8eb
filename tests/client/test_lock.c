/*
 * test_lock.c — byte-range locks through libdafs against a real dafsd
 * (dafs_lock, dafs_lock_test, dafs_unlock; DAFS LOCK, LOCKT, LOCKU):
 *
 *  - conflicts: shared with shared, shared/exclusive across sessions and
 *    across owners of one session, and LOCKT naming the lock in the way;
 *  - unlocking the middle of a range splits it, relocking merges it;
 *  - a lock goes with its open (dafs_close) and with its session
 *    (dafs_disconnect) at once;
 *  - DAFS_LOCK_WAIT queues on the server: answered once the holder unlocks,
 *    in order (a later shared request waits behind a queued exclusive one),
 *    cancelled by dafs_lock_cancel (-EINTR); a wait that would close a
 *    cycle is refused (-EDEADLK); dafsd stopped with a waiter queued exits
 *    cleanly and the waiter gets an error;
 *  - a client killed with SIGKILL while holding a lock: it is released when
 *    the lease (1 s here) expires; a PERSIST one is broken instead, the next
 *    locker gets -DAFS_ELOCKBROKEN until it repairs (DAFS_LOCK_REPAIR) and
 *    unlocks, after which the range is clean; a write into the broken range
 *    is refused too;
 *  - PERSIST state across dafsd crashes (SIGKILL, restart on the same state
 *    directory): held at the crash -> breakable, broken -> still broken,
 *    repaired -> clean;
 *  - AUTORECOVER (whole file, exclusive; anything else -EOPNOTSUPP): the
 *    holder overwrites, extends past a hole, writes more than 1 MiB at
 *    once and truncates; killed, the file is byte for byte its pre-lock self
 *    once the lease expires (read from the export directory, not through
 *    dafs); a clean unlock keeps the changes and leaves no undo log; an
 *    append under it is refused; dafs_lock_abort rolls back on request;
 *    dafsd killed, the next start rolls the file
 *    back, and killed again in the middle of that rollback (DAFS_FAULT), the
 *    start after that finishes it;
 *  - bad input: unknown type or flag.
 *
 * The killed holders are this program run again (child_main).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dafs/dafs.h"
#include "server_fixture.h"

typedef test_ctx ctx;

#define EOFLEN DAFS_LOCK_TO_EOF
#define DEADLINE_MS 30000

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int create_file(dafs_session *s, const char *name, dafs_file **f)
{
    return dafs_open(s, name, O_RDWR | O_CREAT, 0644, f);
}

static void test_conflicts(ctx *c)
{
    dafs_session *s2 = NULL;
    dafs_file *a = NULL, *b = NULL;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    CHECK_EQ(create_file(c->s, "conflicts", &a), 0);
    CHECK_EQ(dafs_open(s2, "conflicts", O_RDWR, 0, &b), 0);

    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_SHARED, 0, 0, 100), 0);
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_SHARED, 0, 50, 100), 0);      /* shared + shared */
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_EXCLUSIVE, 0, 0, 10), -EAGAIN); /* other session */
    CHECK_EQ(dafs_lock(a, 2, DAFS_LOCK_EXCLUSIVE, 0, 0, 10), -EAGAIN); /* other owner */
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_EXCLUSIVE, 0, 200, 100), 0);
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_EXCLUSIVE, 0, 300, EOFLEN), 0); /* touches, no overlap */

    dafs_lock_conflict k;
    memset(&k, 0, sizeof k);
    CHECK_EQ(dafs_lock_test(b, 1, DAFS_LOCK_SHARED, 250, 10, &k), 1);
    CHECK_EQ(k.owner, 1);
    CHECK_EQ(k.type, DAFS_LOCK_EXCLUSIVE);
    CHECK_EQ(k.offset, 200);
    CHECK_EQ(k.length, 100);
    CHECK_EQ(k.broken, 0);
    CHECK(k.session != 0);
    CHECK_EQ(dafs_lock_test(b, 1, DAFS_LOCK_SHARED, 0, 40, NULL), 0); /* shared with shared */
    CHECK_EQ(dafs_lock_test(a, 1, DAFS_LOCK_EXCLUSIVE, 1000, 1, &k), 1);
    CHECK_EQ(k.length, EOFLEN);                                      /* to the end of file */
    CHECK_EQ(dafs_lock_test(b, 1, DAFS_LOCK_EXCLUSIVE, 100000, 1, NULL), 0); /* its own */

    CHECK_EQ(dafs_unlock(a, 1, 0, EOFLEN), 0);
    CHECK_EQ(dafs_unlock(a, 1, 0, EOFLEN), 0); /* nothing locked: no error */
    CHECK_EQ(dafs_lock(a, 2, DAFS_LOCK_EXCLUSIVE, 0, 40, 20), -EAGAIN); /* b's shared [50,150) */
    CHECK_EQ(dafs_lock(a, 2, DAFS_LOCK_EXCLUSIVE, 0, 0, 50), 0);
    CHECK_EQ(dafs_close(b), 0);
    b = NULL;
    CHECK_EQ(dafs_close(a), 0);
    a = NULL;
    CHECK_EQ(dafs_disconnect(s2), 0);
}

static void test_split_merge(ctx *c)
{
    dafs_session *s2 = NULL;
    dafs_file *a = NULL, *b = NULL;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    CHECK_EQ(create_file(c->s, "split", &a), 0);
    CHECK_EQ(dafs_open(s2, "split", O_RDWR, 0, &b), 0);
    CHECK_EQ(dafs_lock(a, 7, DAFS_LOCK_EXCLUSIVE, 0, 0, EOFLEN), 0);
    CHECK_EQ(dafs_unlock(a, 7, 100, 100), 0); /* [0,100) and [200,EOF) left */
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_EXCLUSIVE, 0, 100, 100), 0);
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_SHARED, 0, 99, 1), -EAGAIN);
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_SHARED, 0, 200, 1), -EAGAIN);
    dafs_lock_conflict k;
    CHECK_EQ(dafs_lock_test(b, 1, DAFS_LOCK_SHARED, 150, 100, &k), 1);
    CHECK_EQ(k.offset, 200);
    CHECK_EQ(k.length, EOFLEN);
    CHECK_EQ(dafs_unlock(b, 1, 0, EOFLEN), 0);
    CHECK_EQ(dafs_lock(a, 7, DAFS_LOCK_EXCLUSIVE, 0, 100, 100), 0); /* merges back */
    CHECK_EQ(dafs_lock_test(b, 1, DAFS_LOCK_SHARED, 0, EOFLEN, &k), 1);
    CHECK_EQ(k.offset, 0);
    CHECK_EQ(k.length, EOFLEN);
    CHECK_EQ(dafs_lock(a, 7, DAFS_LOCK_SHARED, 0, 0, 10), 0); /* converts a part */
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_SHARED, 0, 0, 10), 0);
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_SHARED, 0, 0, 11), -EAGAIN);
    CHECK_EQ(dafs_close(b), 0);
    CHECK_EQ(dafs_close(a), 0);
    CHECK_EQ(dafs_disconnect(s2), 0);
}

/* ---- lock holders in processes of their own -------------------------------
 *
 * This program run again as "test_lock --child MODE URL FILE": it locks
 * FILE (exclusive, whole file) in a session of its own and then
 *   hold, persist: says "locked" on stdout and waits to be killed (with
 *                  DAFS_LOCK_PERSIST for persist);
 *   autorecover:   locks AUTORECOVER, makes ar_changes, says "locked", waits;
 *   disconnect:    ends its session with the file still open and exits at
 *                  once (_exit: the open file is not freed). */
static int ar_changes(dafs_file *f);

static int child_main(const char *mode, const char *url, const char *name)
{
    unsigned flags = strcmp(mode, "persist") == 0       ? DAFS_LOCK_PERSIST
                     : strcmp(mode, "autorecover") == 0 ? DAFS_LOCK_AUTORECOVER
                                                        : 0;
    dafs_session *s = NULL;
    dafs_file *f = NULL;
    int rc = dafs_connect(url, NULL, &s);
    if (rc == 0)
        rc = dafs_open(s, name, O_RDWR, 0, &f);
    if (rc == 0)
        rc = dafs_lock(f, 1, DAFS_LOCK_EXCLUSIVE, flags, 0, EOFLEN);
    if (rc == 0 && flags == DAFS_LOCK_AUTORECOVER)
        rc = ar_changes(f);
    if (rc == 0 && strcmp(mode, "disconnect") == 0)
        _exit(dafs_disconnect(s) == 0 ? 0 : 1);
    if (rc != 0) {
        fprintf(stderr, "child %s: %d (%s)\n", mode, rc, dafs_strerror(rc));
        return 1;
    }
    printf("locked\n");
    fflush(stdout);
    for (;;)
        pause();
}

/* Start a child in mode on srv's name; 0 once it said "locked" (*pid: the
 * child, to be killed), or for "disconnect" once it exited with 0. */
static int start_child(const test_server *srv, const char *mode, const char *name, pid_t *pid)
{
    int out[2];
    if (pipe(out) != 0)
        return -1;
    fflush(NULL);
    *pid = fork();
    if (*pid == 0) {
        dup2(out[1], 1);
        close(out[0]);
        execl("/proc/self/exe", "test_lock", "--child", mode, srv->url, name, (char *)NULL);
        _exit(127);
    }
    close(out[1]);
    char line[16] = {0};
    ssize_t n = *pid > 0 ? read(out[0], line, sizeof line - 1) : -1;
    close(out[0]);
    if (strcmp(mode, "disconnect") == 0) {
        int status = 1;
        if (*pid > 0 && waitpid(*pid, &status, 0) == *pid)
            *pid = -1;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
    }
    return n > 0 && strncmp(line, "locked", 6) == 0 ? 0 : -1;
}

static void kill_child(pid_t pid)
{
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
}

/* A child of mode that takes the lock and is killed: 0 when it held it. */
static int kill_holder(const test_server *srv, const char *name, const char *mode)
{
    pid_t pid = -1;
    int rc = start_child(srv, mode, name, &pid);
    kill_child(pid);
    return rc;
}

/* A lock goes with its open, and with its session. */
static void test_release(ctx *c)
{
    dafs_session *s2 = NULL;
    dafs_file *a = NULL, *b = NULL, *a2 = NULL;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    CHECK_EQ(create_file(c->s, "release", &a), 0);
    CHECK_EQ(dafs_open(c->s, "release", O_RDONLY, 0, &a2), 0);
    CHECK_EQ(dafs_open(s2, "release", O_RDWR, 0, &b), 0);
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_EXCLUSIVE, 0, 0, EOFLEN), 0);
    CHECK_EQ(dafs_lock(a2, 2, DAFS_LOCK_SHARED, 0, 0, EOFLEN), -EAGAIN);
    CHECK_EQ(dafs_close(a), 0); /* its open's locks go */
    CHECK_EQ(dafs_lock(a2, 2, DAFS_LOCK_SHARED, 0, 0, EOFLEN), 0); /* read-only open */
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_EXCLUSIVE, 0, 0, 1), -EAGAIN);
    CHECK_EQ(dafs_close(a2), 0);
    CHECK_EQ(dafs_close(b), 0);
    CHECK_EQ(dafs_disconnect(s2), 0);
    /* a session that ends (DISCONNECT) with the file still open: its locks
     * go at once (another process: the file it leaves open is its leak) */
    pid_t pid = -1;
    CHECK_EQ(start_child(&c->srv, "disconnect", "release", &pid), 0);
    CHECK_EQ(dafs_open(c->s, "release", O_RDWR, 0, &a), 0);
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_EXCLUSIVE, 0, 0, EOFLEN), 0);
    CHECK_EQ(dafs_close(a), 0);
}

typedef struct waiter {
    dafs_file *f;
    uint64_t owner;
    int type;
    uint64_t offset;
    int rc;
    pthread_t thread;
} waiter;

static void *wait_for_lock(void *arg)
{
    waiter *w = arg;
    w->rc = dafs_lock(w->f, w->owner, w->type, DAFS_LOCK_WAIT, w->offset, 1);
    return NULL;
}

static int start_waiter(waiter *w, dafs_file *f, uint64_t owner, int type, uint64_t offset)
{
    *w = (waiter){.f = f, .owner = owner, .type = type, .offset = offset, .rc = 1};
    return pthread_create(&w->thread, NULL, wait_for_lock, w);
}

/* Until a shared request of a fresh owner on [0,1) is refused: with only
 * shared locks held there, that means an exclusive request is queued
 * (queued requests stand in the way of later ones).  0, or -1 at the
 * deadline. */
static int until_queued(dafs_file *probe)
{
    int64_t until = now_ms() + DEADLINE_MS;
    while (now_ms() < until) {
        int rc = dafs_lock(probe, 99, DAFS_LOCK_SHARED, 0, 0, 1);
        if (rc == -EAGAIN)
            return 0;
        if (rc != 0 || dafs_unlock(probe, 99, 0, 1) != 0)
            return -1;
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return -1;
}

/* DAFS_LOCK_WAIT queues on the server: a waiter is answered when the lock
 * is released, in order (a shared request arriving after a queued
 * exclusive one waits too), and a queued request can be cancelled. */
static void test_wait(ctx *c)
{
    dafs_session *s2 = NULL;
    dafs_file *a = NULL, *b = NULL, *p = NULL;
    waiter w1, w2;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    CHECK_EQ(create_file(c->s, "wait", &a), 0);
    CHECK_EQ(dafs_open(c->s, "wait", O_RDWR, 0, &p), 0);
    CHECK_EQ(dafs_open(s2, "wait", O_RDWR, 0, &b), 0);
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_SHARED, 0, 0, 1), 0);
    CHECK_EQ(start_waiter(&w1, b, 9, DAFS_LOCK_EXCLUSIVE, 0), 0);
    int queued = until_queued(p);
    CHECK_EQ(dafs_unlock(a, 1, 0, EOFLEN), 0); /* w1's turn */
    pthread_join(w1.thread, NULL);
    CHECK_EQ(queued, 0);
    CHECK_EQ(w1.rc, 0);
    CHECK_EQ(dafs_lock(p, 99, DAFS_LOCK_SHARED, 0, 0, 1), -EAGAIN); /* w1 holds it */

    /* a second waiter, cancelled while it waits behind w1's lock */
    CHECK_EQ(start_waiter(&w2, a, 5, DAFS_LOCK_SHARED, 0), 0);
    int cancelled = -ENOENT;
    int64_t until = now_ms() + DEADLINE_MS;
    while (cancelled == -ENOENT && now_ms() < until) /* until it is queued */
        cancelled = dafs_lock_cancel(a, 5);
    pthread_join(w2.thread, NULL);
    CHECK_EQ(cancelled, 0);
    CHECK_EQ(w2.rc, -EINTR);
    CHECK_EQ(dafs_lock_cancel(a, 5), -ENOENT);
    CHECK_EQ(dafs_close(b), 0); /* w1's lock goes with its open */
    CHECK_EQ(dafs_lock(a, 5, DAFS_LOCK_EXCLUSIVE, DAFS_LOCK_WAIT, 0, EOFLEN), 0);
    CHECK_EQ(dafs_close(p), 0);
    CHECK_EQ(dafs_close(a), 0);
    CHECK_EQ(dafs_disconnect(s2), 0);
}

/* Two owners each holding what the other waits for: the second wait is
 * refused with -EDEADLK instead of hanging both. */
static void test_deadlock(ctx *c)
{
    dafs_session *s2 = NULL;
    dafs_file *a = NULL, *b = NULL, *p = NULL;
    waiter w;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    CHECK_EQ(create_file(c->s, "deadlock", &a), 0);
    CHECK_EQ(dafs_open(c->s, "deadlock", O_RDWR, 0, &p), 0);
    CHECK_EQ(dafs_open(s2, "deadlock", O_RDWR, 0, &b), 0);
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_SHARED, 0, 0, 1), 0);    /* [0,1): a's */
    CHECK_EQ(dafs_lock(b, 1, DAFS_LOCK_EXCLUSIVE, 0, 1, 1), 0); /* [1,2): b's */
    CHECK_EQ(start_waiter(&w, b, 1, DAFS_LOCK_EXCLUSIVE, 0), 0); /* b waits for a */
    int queued = until_queued(p);
    int dead = dafs_lock(a, 1, DAFS_LOCK_EXCLUSIVE, DAFS_LOCK_WAIT, 1, 1); /* a for b */
    CHECK_EQ(dafs_unlock(a, 1, 0, EOFLEN), 0);
    pthread_join(w.thread, NULL);
    CHECK_EQ(queued, 0);
    CHECK_EQ(dead, -EDEADLK);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(dafs_close(b), 0);
    CHECK_EQ(dafs_close(p), 0);
    CHECK_EQ(dafs_close(a), 0);
    CHECK_EQ(dafs_disconnect(s2), 0);
}

/* dafsd stopped (SIGTERM) with a LOCK queued: it exits cleanly, without
 * waiting for the waiter, and the waiter's call ends with an error. */
static void test_shutdown_with_waiter(ctx *c)
{
    test_server srv;
    CHECK_EQ(test_server_start(c->dafsd, &srv), 0);
    dafs_session *s = NULL;
    dafs_file *a = NULL, *b = NULL, *p = NULL;
    waiter w = {.rc = 1};
    bool started = false;
    int rc = dafs_connect(srv.url, NULL, &s);
    if (rc == 0)
        rc = create_file(s, "shutdown", &a);
    if (rc == 0)
        rc = dafs_open(s, "shutdown", O_RDWR, 0, &b);
    if (rc == 0)
        rc = dafs_open(s, "shutdown", O_RDWR, 0, &p);
    if (rc == 0)
        rc = dafs_lock(a, 1, DAFS_LOCK_SHARED, 0, 0, 1);
    if (rc == 0)
        started = (rc = start_waiter(&w, b, 2, DAFS_LOCK_EXCLUSIVE, 0)) == 0;
    if (rc == 0)
        rc = until_queued(p);
    int status = -1;
    pid_t pid = srv.pid;
    if (rc == 0 && kill(pid, SIGTERM) == 0 && waitpid(pid, &status, 0) == pid)
        srv.pid = -1;
    if (started)
        pthread_join(w.thread, NULL);
    /* the session is broken: closing and disconnecting fail, and free */
    if (p)
        (void)dafs_close(p);
    if (b)
        (void)dafs_close(b);
    if (a)
        (void)dafs_close(a);
    if (s)
        (void)dafs_disconnect(s);
    test_server_stop(&srv);
    CHECK_EQ(rc, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(w.rc < 0);
}

static void test_bad_input(ctx *c)
{
    dafs_file *a = NULL;
    CHECK_EQ(create_file(c->s, "bad", &a), 0);
    CHECK_EQ(dafs_lock(a, 1, 3, 0, 0, 1), -EINVAL);
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_SHARED, 0x100, 0, 1), -EINVAL);
    CHECK_EQ(dafs_lock_test(a, 1, 0, 0, 1, NULL), -EINVAL);
    CHECK_EQ(dafs_lock(NULL, 1, DAFS_LOCK_SHARED, 0, 0, 1), -EINVAL);
    /* AUTORECOVER: whole-file exclusive only */
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_EXCLUSIVE, DAFS_LOCK_AUTORECOVER, 0, 100), -EOPNOTSUPP);
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_SHARED, DAFS_LOCK_AUTORECOVER, 0, EOFLEN), -EOPNOTSUPP);
    CHECK_EQ(dafs_lock(a, 1, DAFS_LOCK_EXCLUSIVE, 0, UINT64_MAX - 5, 100), -EINVAL); /* past 2^64 */
    CHECK_EQ(dafs_close(a), 0);
}

/* ---- a holder killed with SIGKILL ---------------------------------------- */

/* The result of LOCK once the dead holder's lock is no longer plain
 * "in the way" (its lease ran out), or -EAGAIN at the deadline. */
static int lock_after_lease(dafs_file *f, unsigned flags)
{
    int64_t until = now_ms() + DEADLINE_MS;
    int rc;
    while ((rc = dafs_lock(f, 3, DAFS_LOCK_EXCLUSIVE, flags, 0, EOFLEN)) == -EAGAIN &&
           now_ms() < until) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return rc;
}

static void test_killed_holder(ctx *c)
{
    test_server srv;
    const char *opts[] = {"--no-root-squash", "--lease-ms", "1000", NULL};
    CHECK_EQ(test_server_start_opts(c->dafsd, &srv, opts), 0);
    dafs_session *s = NULL;
    dafs_file *f = NULL;
    int rc = dafs_connect(srv.url, NULL, &s);
    if (rc == 0)
        rc = create_file(s, "plain", &f);
    if (rc == 0)
        rc = kill_holder(&srv, "plain", "hold");
    int after = rc == 0 ? lock_after_lease(f, 0) : rc; /* released: granted */
    int persist_rc = rc, broken = 1, repaired = 1, clean = 1;
    dafs_file *g = NULL;
    if (rc == 0)
        persist_rc = create_file(s, "persist", &g);
    if (persist_rc == 0)
        persist_rc = kill_holder(&srv, "persist", "persist");
    if (persist_rc == 0) {
        broken = lock_after_lease(g, 0);                 /* breaks it: LOCK_BROKEN */
        dafs_lock_conflict k = {0};
        int t = dafs_lock_test(g, 3, DAFS_LOCK_SHARED, 0, 1, &k);
        if (t != 1 || !k.broken || !(k.flags & DAFS_LOCK_PERSIST))
            broken = 1000 + t;
        int again = dafs_lock(g, 3, DAFS_LOCK_SHARED, 0, 0, 1); /* still broken */
        if (again != -DAFS_ELOCKBROKEN)
            broken = 2000;
        if (dafs_pwrite(g, "x", 1, 10) != -DAFS_ELOCKBROKEN) /* no write into it either */
            broken = 3000;
        repaired = dafs_lock(g, 3, DAFS_LOCK_EXCLUSIVE, DAFS_LOCK_REPAIR, 0, EOFLEN);
        if (repaired == 0)
            repaired = dafs_unlock(g, 3, 0, EOFLEN);
        clean = dafs_lock(g, 4, DAFS_LOCK_SHARED, 0, 0, EOFLEN); /* clean again */
    }
    if (g)
        dafs_close(g);
    if (f)
        dafs_close(f);
    if (s)
        dafs_disconnect(s);
    test_server_stop(&srv);
    CHECK_EQ(rc, 0);
    CHECK_EQ(after, 0);
    CHECK_EQ(persist_rc, 0);
    CHECK_EQ(broken, -DAFS_ELOCKBROKEN);
    CHECK_EQ(repaired, 0);
    CHECK_EQ(clean, 0);
}

/* One session on srv and file name opened in it. */
static int session_on(const test_server *srv, const char *name, dafs_session **s, dafs_file **f)
{
    *s = NULL;
    *f = NULL;
    int rc = dafs_connect(srv->url, NULL, s);
    if (rc == 0)
        rc = create_file(*s, name, f);
    return rc;
}

static void session_off(dafs_session *s, dafs_file *f)
{
    if (f != NULL)
        (void)dafs_close(f);
    if (s != NULL)
        (void)dafs_disconnect(s);
}

/* A PERSIST lock held when the server crashes is breakable after its
 * restart; the broken state, and then the repaired (clean) one, survive
 * further crashes. */
static int persist_across_restarts(const char *dafsd, test_server *srv, const char *const *opts)
{
    dafs_session *s;
    dafs_file *f;
    int rc = session_on(srv, "pr", &s, &f);
    session_off(s, f);
    if (rc == 0)
        rc = kill_holder(srv, "pr", "persist");
    if (rc == 0)
        rc = test_server_crash_restart(dafsd, srv, opts); /* the lock was held */
    if (rc != 0)
        return 1;
    rc = session_on(srv, "pr", &s, &f);
    int first = rc == 0 ? dafs_lock(f, 1, DAFS_LOCK_SHARED, 0, 0, 1) : rc; /* breaks it */
    session_off(s, f);
    if (first != -DAFS_ELOCKBROKEN) {
        fprintf(stderr, "after a restart: %s\n", dafs_strerror(first));
        return 2;
    }
    if (test_server_crash_restart(dafsd, srv, opts) != 0)
        return 3;
    rc = session_on(srv, "pr", &s, &f);
    int second = rc == 0 ? dafs_lock(f, 1, DAFS_LOCK_SHARED, 0, 0, 1) : rc; /* still broken */
    int repair = rc == 0 ? dafs_lock(f, 1, DAFS_LOCK_EXCLUSIVE, DAFS_LOCK_REPAIR, 0, EOFLEN) : rc;
    int unlock = repair == 0 ? dafs_unlock(f, 1, 0, EOFLEN) : repair;
    session_off(s, f);
    if (second != -DAFS_ELOCKBROKEN || repair != 0 || unlock != 0) {
        fprintf(stderr, "second restart: %d %d %d\n", second, repair, unlock);
        return 4;
    }
    if (test_server_crash_restart(dafsd, srv, opts) != 0)
        return 5;
    rc = session_on(srv, "pr", &s, &f);
    int clean = rc == 0 ? dafs_lock(f, 2, DAFS_LOCK_EXCLUSIVE, 0, 0, EOFLEN) : rc;
    session_off(s, f);
    return clean == 0 ? 0 : 6;
}

static void test_persist_restart(ctx *c)
{
    test_server srv;
    const char *opts[] = {"--no-root-squash", "--lease-ms", "1000", NULL};
    CHECK_EQ(test_server_start_opts(c->dafsd, &srv, opts), 0);
    int rc = persist_across_restarts(c->dafsd, &srv, opts);
    test_server_stop(&srv);
    CHECK_EQ(rc, 0);
}

/* ---- AUTORECOVER ---------------------------------------------------------- */

#define AR_SIZE (3u << 20)

/* The file's bytes at the start of each AUTORECOVER test: a pattern that
 * differs at every offset, so a byte restored to the wrong place shows. */
static void ar_pattern(uint8_t *buf, size_t n, unsigned seed)
{
    uint32_t x = 2463534242u ^ seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
}

/* The changes a holder makes under its lock: an overwrite, a write that
 * extends the file past a hole, writes larger than 1 MiB, a truncation
 * that cuts what was written, and a last small write. */
static int ar_changes(dafs_file *f)
{
    static uint8_t junk[(2u << 20) + 4096];
    memset(junk, 0xa5, sizeof junk);
    struct { uint64_t off; size_t len; } w[] = {
        {100, 5000}, {AR_SIZE + 4096, (3u << 19)}, {1u << 20, 2u << 20}, {7, 1}};
    for (size_t i = 0; i < 3; i++)
        if (dafs_pwrite(f, junk, w[i].len, w[i].off) != (ssize_t)w[i].len)
            return -1;
    if (dafs_ftruncate(f, (2u << 20) + 123) != 0)
        return -2;
    if (dafs_pwrite(f, junk, w[3].len, w[3].off) != (ssize_t)w[3].len)
        return -3;
    return 0;
}

/* Create name in the export with the pattern (through the file system,
 * not dafs: the check below reads it back the same way). */
static int ar_create(const test_server *srv, const char *name, uint8_t *want)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", srv->export_dir, name);
    ar_pattern(want, AR_SIZE, (unsigned)strlen(name));
    FILE *fp = fopen(path, "wb");
    if (fp == NULL)
        return -1;
    size_t n = fwrite(want, 1, AR_SIZE, fp);
    return fclose(fp) == 0 && n == AR_SIZE ? 0 : -1;
}

/* 0 when the exported file is exactly want (AR_SIZE bytes), read from the
 * export directory itself. */
static int ar_same(const test_server *srv, const char *name, const uint8_t *want)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", srv->export_dir, name);
    static uint8_t got[AR_SIZE + 1];
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -1;
    size_t n = fread(got, 1, sizeof got, fp);
    fclose(fp);
    if (n != AR_SIZE) {
        fprintf(stderr, "%s: %zu bytes, expected %u\n", name, n, AR_SIZE);
        return -2;
    }
    return memcmp(got, want, AR_SIZE) == 0 ? 0 : -3;
}

/* The holder killed: once its lease has expired the file is exactly what
 * it was before the lock (content and size), and the lock is free. */
static void test_autorecover_killed(ctx *c)
{
    test_server srv;
    const char *opts[] = {"--no-root-squash", "--lease-ms", "1000", NULL};
    CHECK_EQ(test_server_start_opts(c->dafsd, &srv, opts), 0);
    static uint8_t want[AR_SIZE];
    pid_t pid = -1;
    dafs_session *s = NULL;
    dafs_file *f = NULL;
    int rc = ar_create(&srv, "ar", want);
    if (rc == 0)
        rc = start_child(&srv, "autorecover", "ar", &pid);
    kill_child(pid);
    if (rc == 0)
        rc = session_on(&srv, "ar", &s, &f);
    int relock = rc == 0 ? lock_after_lease(f, 0) : rc; /* after the rollback */
    int same = relock == 0 ? ar_same(&srv, "ar", want) : -10;
    session_off(s, f);
    test_server_stop(&srv);
    CHECK_EQ(rc, 0);
    CHECK_EQ(relock, 0);
    CHECK_EQ(same, 0);
}

/* A clean unlock keeps the changes (and drops the undo log). */
static void test_autorecover_commit(ctx *c)
{
    static uint8_t want[AR_SIZE];
    CHECK_EQ(ar_create(&c->srv, "arc", want), 0);
    dafs_file *f = NULL;
    CHECK_EQ(dafs_open(c->s, "arc", O_RDWR, 0, &f), 0);
    CHECK_EQ(dafs_lock(f, 1, DAFS_LOCK_EXCLUSIVE, DAFS_LOCK_AUTORECOVER, 0, EOFLEN), 0);
    CHECK_EQ(ar_changes(f), 0);
    CHECK_EQ(dafs_append(f, "x", 1, NULL), -EOPNOTSUPP); /* the log cannot record it */
    CHECK_EQ(dafs_unlock(f, 1, 0, EOFLEN), 0);
    struct dafs_stat st;
    CHECK_EQ(dafs_fstat(f, &st), 0);
    CHECK_EQ(st.size, (2u << 20) + 123);
    char undo[400];
    snprintf(undo, sizeof undo, "%s/state/undo", c->srv.base);
    DIR *d = opendir(undo);
    int logs = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        logs += e->d_name[0] != '.';
    if (d)
        closedir(d);
    CHECK_EQ(logs, 0);
    CHECK(ar_same(&c->srv, "arc", want) != 0);
    CHECK_EQ(dafs_close(f), 0);
}

/* ABORT: the holder asks for the rollback itself. */
static void test_autorecover_abort(ctx *c)
{
    static uint8_t want[AR_SIZE];
    CHECK_EQ(ar_create(&c->srv, "ara", want), 0);
    dafs_file *f = NULL;
    CHECK_EQ(dafs_open(c->s, "ara", O_RDWR, 0, &f), 0);
    CHECK_EQ(dafs_lock_abort(f, 1), -ENOENT); /* no AUTORECOVER lock yet */
    CHECK_EQ(dafs_lock(f, 1, DAFS_LOCK_EXCLUSIVE, DAFS_LOCK_AUTORECOVER, 0, EOFLEN), 0);
    CHECK_EQ(ar_changes(f), 0);
    CHECK_EQ(dafs_lock_abort(f, 1), 0);
    CHECK_EQ(ar_same(&c->srv, "ara", want), 0);
    CHECK_EQ(dafs_lock_abort(f, 1), -ENOENT); /* released with the rollback */
    CHECK_EQ(dafs_lock(f, 2, DAFS_LOCK_EXCLUSIVE, 0, 0, EOFLEN), 0);
    CHECK_EQ(dafs_close(f), 0);
}

/* dafsd killed while a holder has changed the file: the next start rolls
 * it back before serving; and killed in the middle of that rollback
 * (DAFS_FAULT=rollback:after_apply), the start after that finishes it. */
static void test_autorecover_server_crash(ctx *c)
{
    test_server srv;
    const char *opts[] = {"--no-root-squash", "--lease-ms", "1000", NULL};
    CHECK_EQ(test_server_start_opts(c->dafsd, &srv, opts), 0);
    static uint8_t want[AR_SIZE];
    pid_t pid = -1;
    int rc = ar_create(&srv, "arx", want);
    if (rc == 0)
        rc = start_child(&srv, "autorecover", "arx", &pid);
    if (rc == 0) { /* the first start after the crash dies in its rollback */
        setenv("DAFS_FAULT", "rollback:after_apply:2", 1);
        int crashed = test_server_crash_restart(c->dafsd, &srv, opts);
        unsetenv("DAFS_FAULT");
        rc = crashed == 0 ? -20 : 0; /* it must not have come up */
        srv.pid = -1;
    }
    kill_child(pid);
    int same_mid = rc == 0 ? ar_same(&srv, "arx", want) : -10; /* half rolled back */
    if (rc == 0)
        rc = test_server_crash_restart(c->dafsd, &srv, opts);
    int same = rc == 0 ? ar_same(&srv, "arx", want) : -10;
    test_server_stop(&srv);
    CHECK_EQ(rc, 0);
    CHECK(same_mid != 0);
    CHECK_EQ(same, 0);
}

static const test_case tests[] = {
    {"conflicts", test_conflicts},     {"split_merge", test_split_merge},
    {"release", test_release},         {"wait", test_wait},
    {"deadlock", test_deadlock},      {"shutdown_with_waiter", test_shutdown_with_waiter},
    {"bad_input", test_bad_input},     {"killed_holder", test_killed_holder},
    {"persist_restart", test_persist_restart},
    {"autorecover_killed", test_autorecover_killed},
    {"autorecover_commit", test_autorecover_commit},
    {"autorecover_abort", test_autorecover_abort},
    {"autorecover_server_crash", test_autorecover_server_crash},
};

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], argv[3], argv[4]);
    return run_session_tests(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
