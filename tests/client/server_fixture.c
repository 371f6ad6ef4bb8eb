/*
 * server_fixture.c — see server_fixture.h.  run_session_tests is the only
 * part that uses libdafs.
 */
#include "server_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_WAIT_MS 60000 /* a hang, not a speed limit: a loaded machine is slow */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int read_port(const char *ready, unsigned *port)
{
    FILE *f = fopen(ready, "r");
    if (f == NULL)
        return -1;
    int n = fscanf(f, "%u", port);
    fclose(f);
    return n == 1 && *port > 0 && *port < 65536 ? 0 : -1;
}

#define MAX_EXTRA_ARGS 8

static void exec_server(const char *dafsd, const test_server *srv, const char *state,
                        const char *ready, const char *log, const char *const *extra)
{
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd >= 0) {
        (void)dup2(fd, STDOUT_FILENO);
        (void)dup2(fd, STDERR_FILENO);
    }
    const char *args[12 + MAX_EXTRA_ARGS] = {dafsd, "--export", srv->export_dir, "--state-dir",
                                             state, "--listen", "127.0.0.1:0", "--ready-file",
                                             ready};
    size_t n = 9;
    for (size_t i = 0; extra != NULL && extra[i] != NULL && i < MAX_EXTRA_ARGS; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    execv(dafsd, (char *const *)args);
    fprintf(stderr, "exec %s: %s\n", dafsd, strerror(errno));
    _exit(127);
}

int test_server_start(const char *dafsd, test_server *srv)
{
    /* The tests run as root and own the export as root: without this the
     * server's default root squash would make them nobody. */
    static const char *const no_squash[] = {"--no-root-squash", NULL};
    return test_server_start_opts(dafsd, srv, no_squash);
}

/* Start dafsd on srv's directories and wait until it is ready. */
static int launch(const char *dafsd, test_server *srv, const char *const *extra)
{
    char state[320], ready[320], log[320];
    (void)snprintf(state, sizeof state, "%s/state", srv->base);
    (void)snprintf(ready, sizeof ready, "%s/ready", srv->base);
    (void)snprintf(log, sizeof log, "%s/dafsd.log", srv->base);
    (void)unlink(ready);
    fflush(NULL);
    srv->pid = fork();
    if (srv->pid < 0) {
        fprintf(stderr, "fork: %s\n", strerror(errno));
        return -1;
    }
    if (srv->pid == 0)
        exec_server(dafsd, srv, state, ready, log, extra);
    unsigned port = 0;
    for (int waited = 0; waited < READY_WAIT_MS; waited += 20) {
        if (read_port(ready, &port) == 0)
            break;
        int status;
        if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
            fprintf(stderr, "dafsd exited (status %d) before it was ready; log: %s\n", status,
                    log);
            srv->pid = -1;
            return -1;
        }
        sleep_ms(20);
    }
    if (port == 0) {
        fprintf(stderr, "dafsd not ready after %d ms\n", READY_WAIT_MS);
        return -1;
    }
    (void)snprintf(srv->url, sizeof srv->url, "dafs://127.0.0.1:%u", port);
    return 0;
}

int test_server_crash_restart(const char *dafsd, test_server *srv, const char *const *extra)
{
    if (srv->pid > 0) {
        (void)kill(srv->pid, SIGKILL);
        (void)waitpid(srv->pid, NULL, 0);
        srv->pid = -1;
    }
    return launch(dafsd, srv, extra);
}

int test_server_start_opts(const char *dafsd, test_server *srv, const char *const *extra)
{
    memset(srv, 0, sizeof *srv);
    srv->pid = -1;
    const char *tmp = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    (void)snprintf(srv->base, sizeof srv->base, "%s/dafs-client-test.XXXXXX", tmp);
    if (mkdtemp(srv->base) == NULL) {
        fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
        return -1;
    }
    char state[320];
    (void)snprintf(srv->export_dir, sizeof srv->export_dir, "%s/export", srv->base);
    (void)snprintf(state, sizeof state, "%s/state", srv->base);
    if (mkdir(srv->export_dir, 0755) != 0 || mkdir(state, 0700) != 0) {
        fprintf(stderr, "mkdir: %s\n", strerror(errno));
        return -1;
    }
    return launch(dafsd, srv, extra);
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : 0; /* best effort: keep going */
}

void test_server_stop(test_server *srv)
{
    if (srv->pid > 0) {
        (void)kill(srv->pid, SIGTERM);
        int status;
        for (int waited = 0; waited < 5000; waited += 20) {
            if (waitpid(srv->pid, &status, WNOHANG) == srv->pid) {
                srv->pid = -1;
                break;
            }
            sleep_ms(20);
        }
        if (srv->pid > 0) {
            (void)kill(srv->pid, SIGKILL);
            (void)waitpid(srv->pid, &status, 0);
            srv->pid = -1;
        }
    }
    if (srv->base[0] != '\0' && getenv("DAFS_TEST_KEEP") == NULL)
        (void)nftw(srv->base, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- session-based test programs ---- */

int test_failures;

static bool selected(const char *name, int argc, char **argv)
{
    if (argc <= 2)
        return true;
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

int run_session_tests(int argc, char **argv, const test_case *tests, size_t ntests)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DAFSD [TEST...]\n", argv[0]);
        return 2;
    }
    (void)setenv("FI_TCP_IFACE", "lo", 0);
    test_ctx c = {.dafsd = argv[1]};
    if (test_server_start(argv[1], &c.srv) != 0)
        return 1;
    int rc = dafs_connect(c.srv.url, NULL, &c.s);
    if (rc != 0) {
        fprintf(stderr, "dafs_connect %s: %s\n", c.srv.url, dafs_strerror(rc));
        test_server_stop(&c.srv);
        return 1;
    }
    for (size_t i = 0; i < ntests; i++) {
        if (!selected(tests[i].name, argc, argv))
            continue;
        int before = test_failures;
        tests[i].run(&c);
        printf("%s %s\n", test_failures == before ? "ok  " : "FAIL", tests[i].name);
        fflush(stdout);
    }
    rc = dafs_disconnect(c.s);
    if (rc != 0) {
        fprintf(stderr, "dafs_disconnect: %s\n", dafs_strerror(rc));
        test_failures++;
    }
    test_server_stop(&c.srv);
    printf("%d failure(s)\n", test_failures);
    return test_failures == 0 ? 0 : 1;
}
