/*
 * dafsctl.c — administer a running dafsd through its admin socket
 * (docs/man/dafsctl.8; the protocol is in docs/protocol.md,
 * "Administration").
 *
 *   dafsctl [--socket PATH | --state-dir DIR] [--json] COMMAND [ARGS]
 *
 * A thin client: each command becomes one request line, the server does the
 * work and the formatting ("OK" and a body, or "ERR message"), and dafsctl
 * prints the body or the error.  Commands live in one table (commands[]);
 * the ones later issues bring (locks, fence, keys) are added there.
 *
 * Exit status: 0 success, 1 the server refused or failed (one "dafsctl: "
 * line on stderr), 2 usage error or no server to talk to.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dafs_version.h"

#define DEFAULT_STATE_DIR "/var/lib/dafs"
#define REQUEST_MAX       1024
#define REPLY_LIMIT       (64u << 20)
#define IO_TIMEOUT_S      10

typedef struct command {
    const char *name;
    const char *usage; /* for --help */
    /* Check the arguments (argv[0] is the command) and write the request
     * line into req.  0, or -1 after printing a usage error. */
    int (*build)(int argc, char **argv, char *req, size_t len);
} command;

static void usage(FILE *out);

static int usage_error(const char *msg, const char *arg)
{
    fprintf(stderr, "dafsctl: ");
    fprintf(stderr, msg, arg);
    fprintf(stderr, " (see dafsctl --help)\n");
    return -1;
}

static int build_version(int argc, char **argv, char *req, size_t len)
{
    if (argc != 1)
        return usage_error("version takes no arguments, got '%s'", argv[1]);
    snprintf(req, len, "version");
    return 0;
}

static bool is_session_id(const char *s)
{
    size_t n = strspn(s, "0123456789abcdefABCDEF");
    return n > 0 && n <= 16 && s[n] == '\0';
}

static int build_sessions(int argc, char **argv, char *req, size_t len)
{
    if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0)) {
        snprintf(req, len, "sessions list");
        return 0;
    }
    if (strcmp(argv[1], "evict") == 0) {
        if (argc != 3)
            return usage_error("%s", "sessions evict takes one session id");
        if (!is_session_id(argv[2]))
            return usage_error("invalid session id '%s' (up to 16 hex digits, as "
                               "'dafsctl sessions list' shows them)",
                               argv[2]);
        snprintf(req, len, "sessions evict %s", argv[2]);
        return 0;
    }
    return usage_error("unknown sessions subcommand '%s' (list, evict)", argv[1]);
}

static int build_stats(int argc, char **argv, char *req, size_t len)
{
    if (argc != 1)
        return usage_error("stats takes no arguments, got '%s'", argv[1]);
    snprintf(req, len, "stats");
    return 0;
}

static const command commands[] = {
    {"sessions",
     "sessions [list]          list open sessions\n"
     "  sessions evict ID        close session ID (its client gets BADSESSION)",
     build_sessions},
    {"stats",
     "stats                    requests, errors, bytes and latency per operation,\n"
     "                           sessions and credits in use",
     build_stats},
    {"version", "version                  dafsd's version, instance and uptime", build_version},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: dafsctl [--socket PATH | --state-dir DIR] [--json] COMMAND [ARGS]\n"
                 "\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %s\n", commands[i].usage);
    fprintf(out,
            "\noptions:\n"
            "  --socket PATH     dafsd's admin socket\n"
            "  --state-dir DIR   the socket is DIR/admin.sock (default %s)\n"
            "  --json            JSON instead of text\n"
            "  -h, --help        this text\n"
            "  -V, --version     dafsctl's version\n"
            "\nThe admin socket is for root (and dafsd's own user) only.\n"
            "Exit status: 0 success, 1 the server refused or failed, 2 usage or no server.\n",
            DEFAULT_STATE_DIR);
}

static int connect_admin(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "dafsctl: socket path %s is too long\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "dafsctl: socket: %s\n", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        int err = errno;
        if (err == EACCES || err == EPERM)
            fprintf(stderr,
                    "dafsctl: %s: permission denied (the dafsd admin socket is for root "
                    "only)\n",
                    path);
        else if (err == ENOENT || err == ECONNREFUSED)
            fprintf(stderr,
                    "dafsctl: cannot connect to %s: %s (is dafsd running with this "
                    "state dir? see --state-dir, --socket)\n",
                    path, strerror(err));
        else
            fprintf(stderr, "dafsctl: cannot connect to %s: %s\n", path, strerror(err));
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Send the request, read the whole reply (the server closes after it). */
static int exchange(int fd, const char *req, char **reply, size_t *len)
{
    char line[REQUEST_MAX + 2];
    int n = snprintf(line, sizeof(line), "%s\n", req);
    if (n < 0 || (size_t)n >= sizeof(line))
        return -EMSGSIZE;
    if (send(fd, line, (size_t)n, MSG_NOSIGNAL) != n && errno != EPIPE && errno != ECONNRESET)
        return -errno; /* (a refusal may come before the request is read: read it) */
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (got + 1 == cap) {
            if (cap >= REPLY_LIMIT) {
                free(buf);
                return -EMSGSIZE;
            }
            char *p = realloc(buf, cap * 2);
            if (!p) {
                free(buf);
                return -ENOMEM;
            }
            buf = p;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + got, cap - 1 - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int err = errno == EAGAIN ? ETIMEDOUT : errno;
            free(buf);
            return -err;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    *reply = buf;
    *len = got;
    return 0;
}

int main(int argc, char **argv)
{
    const char *socket_path = NULL, *state_dir = NULL;
    bool json = false;
    enum { O_SOCKET = 256, O_STATE_DIR, O_JSON };
    static const struct option opts[] = {
        {"socket", required_argument, NULL, O_SOCKET},
        {"state-dir", required_argument, NULL, O_STATE_DIR},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    /* GNU getopt permutes: --json may also come after the command */
    while ((c = getopt_long(argc, argv, ":hV", opts, NULL)) != -1) {
        switch (c) {
        case O_SOCKET:
            socket_path = optarg;
            break;
        case O_STATE_DIR:
            state_dir = optarg;
            break;
        case O_JSON:
            json = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("dafsctl (dafs) %s\n", DAFS_VERSION_STRING);
            return 0;
        case ':':
            usage_error("option '%s' needs an argument", argv[optind - 1]);
            return 2;
        default:
            usage_error("unknown option '%s'", argv[optind - 1]);
            return 2;
        }
    }
    if (socket_path && state_dir) {
        usage_error("%s", "--socket and --state-dir are alternatives");
        return 2;
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const command *cmd = NULL;
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(argv[optind], commands[i].name) == 0)
            cmd = &commands[i];
    if (!cmd) {
        usage_error("unknown command '%s'", argv[optind]);
        return 2;
    }
    char req[REQUEST_MAX];
    if (cmd->build(argc - optind, argv + optind, req, sizeof(req) - 8) != 0)
        return 2;
    if (json)
        strcat(req, " --json");
    char path[PATH_MAX];
    if (!socket_path) {
        snprintf(path, sizeof(path), "%s/admin.sock", state_dir ? state_dir : DEFAULT_STATE_DIR);
        socket_path = path;
    }
    int fd = connect_admin(socket_path);
    if (fd < 0)
        return 2;
    char *reply = NULL;
    size_t len = 0;
    int rc = exchange(fd, req, &reply, &len);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "dafsctl: %s: %s\n", socket_path,
                rc == -ETIMEDOUT ? "no reply from dafsd (timed out)" : strerror(-rc));
        return 1;
    }
    int status = 1;
    if (strncmp(reply, "OK\n", 3) == 0) {
        if (strcmp(cmd->name, "version") == 0 && !json)
            printf("dafsctl %s\n", DAFS_VERSION_STRING);
        fwrite(reply + 3, 1, len - 3, stdout);
        status = fflush(stdout) == 0 ? 0 : 1;
    } else if (strncmp(reply, "ERR ", 4) == 0) {
        fprintf(stderr, "dafsctl: %.*s\n", (int)strcspn(reply + 4, "\n"), reply + 4);
    } else if (len == 0) {
        fprintf(stderr, "dafsctl: %s: dafsd closed the connection without a reply\n", socket_path);
    } else {
        fprintf(stderr, "dafsctl: %s: unexpected reply '%.*s'\n", socket_path,
                (int)strcspn(reply, "\n"), reply);
    }
    free(reply);
    return status;
}
