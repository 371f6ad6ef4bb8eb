/*
 * server_fixture.h — start a real dafsd for a client test and stop it again.
 *
 * The server exports a fresh mkdtemp directory (tests may look at the files
 * it holds directly, to check what the client did independently of the
 * client's own read path), keeps its state in another, listens on
 * 127.0.0.1 with a port it picks and reports through --ready-file.  It is
 * stopped by PID and both directories are removed afterwards.
 *
 * It also holds what the session-based test programs (test_client.c,
 * test_ns.c) share: the CHECK assertions, the context every test gets (the
 * server and one session on it) and the main loop that starts the server,
 * runs the selected tests and counts the failures.
 */
#ifndef DAFS_TEST_SERVER_FIXTURE_H
#define DAFS_TEST_SERVER_FIXTURE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "dafs/dafs.h"

typedef struct test_server {
    pid_t pid;
    char base[256];   /* mkdtemp dir holding export/, state/, ready, log */
    char export_dir[300];
    char url[128];    /* dafs://127.0.0.1:PORT */
} test_server;

/* Returns 0, or -1 with a message on stderr. */
int test_server_start(const char *dafsd, test_server *srv); /* with --no-root-squash */
/* extra: more dafsd options, NULL-terminated (at most 8), e.g. "--read-only". */
int test_server_start_opts(const char *dafsd, test_server *srv, const char *const *extra);
void test_server_stop(test_server *srv);
/* Kill the server with SIGKILL and start it again on the same export and
 * state directory (with options extra, as test_server_start_opts); srv->url
 * names its new port.  Returns 0, or -1 with a message on stderr. */
int test_server_crash_restart(const char *dafsd, test_server *srv, const char *const *extra);

/* ---- session-based test programs ---- */

/* What every test gets: the dafsd binary, the running server, one session. */
typedef struct test_ctx {
    const char *dafsd;
    test_server srv;
    dafs_session *s;
} test_ctx;

typedef struct test_case {
    const char *name;
    void (*run)(test_ctx *c);
} test_case;

/* Failed checks so far, over all tests of the program. */
extern int test_failures;

/* Test assertions: report and leave the test function. */
#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);     \
            test_failures++;                                                             \
            return;                                                                      \
        }                                                                                \
    } while (0)

#define CHECK_EQ(expr, want)                                                             \
    do {                                                                                 \
        long long got_ = (long long)(expr), want_ = (long long)(want);                   \
        if (got_ != want_) {                                                             \
            fprintf(stderr, "%s:%d: %s = %lld (%s), expected %lld (%s)\n", __FILE__,     \
                    __LINE__, #expr, got_, got_ < 0 ? dafs_strerror((int)got_) : "",     \
                    want_, want_ < 0 ? dafs_strerror((int)want_) : "");                  \
            test_failures++;                                                             \
            return;                                                                      \
        }                                                                                \
    } while (0)

/* main() of a test program: "PROG DAFSD [TEST...]".  Starts the server,
 * connects one session, runs every test (or the named ones) printing
 * "ok"/"FAIL" for each, disconnects and stops the server.  Returns the exit
 * status: 0 when nothing failed, 1 otherwise, 2 for a usage error. */
int run_session_tests(int argc, char **argv, const test_case *tests, size_t ntests);

#endif
