/*
 * run_with_server.c — run a program against a fresh dafsd.
 *
 * Usage: run_with_server DAFSD PROGRAM [ARGS...]
 * Starts dafsd (server_fixture.c), runs PROGRAM ARGS... URL with the
 * server's dafs:// URL appended, stops the server and exits with the
 * program's status.  Used to test the man page's example program.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server_fixture.h"

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s DAFSD PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    (void)setenv("FI_TCP_IFACE", "lo", 0);
    test_server srv;
    if (test_server_start(argv[1], &srv) != 0)
        return 1;
    char **args = calloc((size_t)argc, sizeof *args);
    if (args == NULL) {
        test_server_stop(&srv);
        return 1;
    }
    for (int i = 2; i < argc; i++)
        args[i - 2] = argv[i];
    args[argc - 2] = srv.url;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv(args[0], args);
        fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    int status = 0, rc = 1;
    if (pid > 0 && waitpid(pid, &status, 0) == pid)
        rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    free(args);
    test_server_stop(&srv);
    return rc;
}
