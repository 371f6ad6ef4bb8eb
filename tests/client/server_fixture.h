/*
 * server_fixture.h — start a real dafsd for a client test and stop it again.
 *
 * The server exports a fresh mkdtemp directory (tests may look at the files
 * it holds directly, to check what the client did independently of the
 * client's own read path), keeps its state in another, listens on
 * 127.0.0.1 with a port it picks and reports through --ready-file.  It is
 * stopped by PID and both directories are removed afterwards.
 */
#ifndef DAFS_TEST_SERVER_FIXTURE_H
#define DAFS_TEST_SERVER_FIXTURE_H

#include <sys/types.h>

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

#endif
