/*
 * admin.c — the administration socket: a Unix stream socket that dafsctl
 * talks to (docs/protocol.md, "Administration").
 *
 * Who may connect: the socket is created mode 0600 (chmod right after
 * bind), and every connection's peer credentials (SO_PEERCRED) are checked:
 * root, or the user dafsd runs as, else the connection gets one "ERR
 * permission denied ..." line and is closed.
 *
 * Protocol: one request per connection.  The client sends one line of text
 * (at most ADMIN_REQUEST_MAX bytes with its newline): words separated by
 * blanks, "--json" anywhere asks for JSON.  The server answers "OK\n" and a
 * body, or one "ERR message\n" line, then closes the connection.  Commands
 * are looked up in one table (commands[] below); later ones (locks, fence,
 * keys) go there.
 *
 * Threads: one thread of its own serves connections one after another with
 * 2 s send/receive timeouts, so a slow or hostile local client can delay
 * other administrators, never the data path.  What it reads of the server
 * it reads through the session table's lock (held for a copy, no I/O) and
 * the per-thread statistics (no lock).
 */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dafs_version.h"
#include "locktab.h"
#include "log.h"
#include "metrics.h"

#define ADMIN_IO_TIMEOUT_S 2
#define ADMIN_REPLY_LIMIT  (16u << 20)
#define ADMIN_MAX_WORDS    8

static struct {
    server *srv;
    int listen_fd;
    int wake_fd;
    pthread_t thread;
    bool running;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int64_t start_ms;
} admin = {.listen_fd = -1, .wake_fd = -1};

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void admin_gauges(server *srv, stats_gauges *g)
{
    memset(g, 0, sizeof(*g));
    session_totals(&srv->sessions, &g->sessions, &g->credits_granted, &g->credits_in_use);
    g->max_sessions = srv->cfg.max_sessions;
    g->uptime_s = (double)(monotonic_ms() - admin.start_ms) / 1000.0;
    if (srv->locks != NULL) {
        locktab_stats ls;
        locktab_get_stats(srv->locks, &ls);
        g->locks = ls.locks;
        g->lock_waiters = ls.waiters;
        g->locks_broken = ls.broken;
        g->lock_rollbacks = ls.rollbacks;
    }
}

/* ---- commands ------------------------------------------------------------ */

typedef struct admin_cmd {
    const char *name;
    const char *usage;
    /* argv[0] is the command; out already holds "OK\n" on entry.  Return 0,
     * or -1 after writing the error message into err. */
    int (*run)(server *srv, int argc, char **argv, bool json, strbuf *out, char *err,
               size_t errlen);
} admin_cmd;

static int cmd_version(server *srv, int argc, char **argv, bool json, strbuf *out, char *err,
                       size_t errlen)
{
    (void)argv;
    if (argc != 1) {
        snprintf(err, errlen, "usage: version");
        return -1;
    }
    double up = (double)(monotonic_ms() - admin.start_ms) / 1000.0;
    const char *metrics = metrics_url();
    if (json) {
        sb_printf(out,
                  "{\"version\":\"%s\",\"admin_protocol\":%d,\"instance\":\"%016" PRIx64
                  "\",\"pid\":%ld,\"uptime_s\":%.3f,\"export\":",
                  DAFS_VERSION_STRING, ADMIN_PROTOCOL_VERSION, srv->instance, (long)getpid(), up);
        sb_json_string(out, srv->cfg.export_dir, strlen(srv->cfg.export_dir));
        sb_printf(out, ",\"provider\":");
        sb_json_string(out, srv->limits->provider, strlen(srv->limits->provider));
        sb_printf(out, ",\"metrics\":");
        if (metrics)
            sb_json_string(out, metrics, strlen(metrics));
        else
            sb_printf(out, "null");
        sb_printf(out, "}\n");
    } else {
        sb_printf(out,
                  "dafsd %s\nadmin protocol %d\ninstance %016" PRIx64 "\npid %ld\n"
                  "uptime %.0f s\nexport %s\nprovider %s\nmetrics %s\n",
                  DAFS_VERSION_STRING, ADMIN_PROTOCOL_VERSION, srv->instance, (long)getpid(), up,
                  srv->cfg.export_dir, srv->limits->provider, metrics ? metrics : "off");
    }
    return 0;
}

static int sessions_list(server *srv, bool json, strbuf *out)
{
    unsigned max = srv->cfg.max_sessions ? srv->cfg.max_sessions : 1;
    session_info *info = calloc(max, sizeof(*info));
    if (!info)
        return -1;
    unsigned total;
    unsigned n = session_list(&srv->sessions, info, max, &total, session_now_ms());
    if (json)
        sb_printf(out, "{\"total\":%u,\"sessions\":[", total);
    else
        sb_printf(out, "%-16s  %-32s %7s %6s %5s %9s\n", "SESSION", "CLIENT", "CREDITS", "IN_USE",
                  "OPENS", "IDLE_MS");
    for (unsigned i = 0; i < n; i++) {
        const session_info *s = &info[i];
        if (json) {
            sb_printf(out, "%s{\"id\":\"%016" PRIx64 "\",\"client\":", i ? "," : "", s->id);
            sb_json_string(out, s->client_id, s->client_id_len);
            sb_printf(out,
                      ",\"credits\":%u,\"in_use\":%u,\"opens\":%u,\"idle_ms\":%lld,"
                      "\"lease_ms\":%u}",
                      s->grant, s->outstanding, s->opens, (long long)s->idle_ms, s->lease_ms);
        } else {
            char client[DAFS_CLIENT_ID_MAX + 1];
            for (uint32_t k = 0; k < s->client_id_len; k++) {
                unsigned char c = (unsigned char)s->client_id[k];
                client[k] = c > 0x20 && c < 0x7f ? (char)c : '?';
            }
            client[s->client_id_len] = '\0';
            sb_printf(out, "%016" PRIx64 "  %-32s %7u %6u %5u %9lld\n", s->id, client, s->grant,
                      s->outstanding, s->opens, (long long)s->idle_ms);
        }
    }
    if (json)
        sb_printf(out, "]}\n");
    free(info);
    return 0;
}

static bool parse_session_id(const char *s, uint64_t *id)
{
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
        s += 2;
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d > 15)
            return false;
        v = v << 4 | d;
    }
    *id = v;
    return v != 0;
}

static int cmd_sessions(server *srv, int argc, char **argv, bool json, strbuf *out, char *err,
                        size_t errlen)
{
    if (argc == 1 || (argc == 2 && strcmp(argv[1], "list") == 0)) {
        if (sessions_list(srv, json, out) == 0)
            return 0;
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (argc == 3 && strcmp(argv[1], "evict") == 0) {
        uint64_t id;
        if (!parse_session_id(argv[2], &id)) {
            snprintf(err, errlen, "invalid session id '%.40s' (expected up to 16 hex digits)",
                     argv[2]);
            return -1;
        }
        if (!session_evict(&srv->sessions, id)) {
            snprintf(err, errlen, "no open session %016" PRIx64, id);
            return -1;
        }
        log_notice("dafsd: session %016" PRIx64 " evicted by the administrator", id);
        if (json)
            sb_printf(out, "{\"evicted\":\"%016" PRIx64 "\"}\n", id);
        else
            sb_printf(out, "evicted session %016" PRIx64 "\n", id);
        return 0;
    }
    snprintf(err, errlen, "usage: sessions [list | evict ID]");
    return -1;
}

static int cmd_stats(server *srv, int argc, char **argv, bool json, strbuf *out, char *err,
                     size_t errlen)
{
    (void)argv;
    if (argc != 1) {
        snprintf(err, errlen, "usage: stats");
        return -1;
    }
    stats_totals *t = malloc(sizeof(*t));
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    stats_collect(t);
    stats_gauges g;
    admin_gauges(srv, &g);
    if (json)
        stats_format_json(out, t, &g);
    else
        stats_format_text(out, t, &g);
    free(t);
    return 0;
}

/* Every command; later issues add locks, fence and keys here. */
static const admin_cmd commands[] = {
    {"version", "version", cmd_version},
    {"sessions", "sessions [list | evict ID]", cmd_sessions},
    {"stats", "stats", cmd_stats},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void reply_error(strbuf *out, const char *msg)
{
    out->len = 0;
    out->failed = false;
    sb_printf(out, "ERR %s\n", msg);
}

void admin_handle(server *srv, const char *line, strbuf *out)
{
    char buf[ADMIN_REQUEST_MAX + 1];
    size_t len = strlen(line);
    if (len > ADMIN_REQUEST_MAX) {
        reply_error(out, "request too long");
        return;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) {
            reply_error(out, "request is not a line of text");
            return;
        }
    }
    memcpy(buf, line, len + 1);
    char *argv[ADMIN_MAX_WORDS];
    int argc = 0;
    bool json = false;
    char *save = NULL;
    for (char *w = strtok_r(buf, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
        if (strcmp(w, "--json") == 0) {
            json = true;
            continue;
        }
        if (argc == ADMIN_MAX_WORDS) {
            reply_error(out, "too many words in the request");
            return;
        }
        argv[argc++] = w;
    }
    if (argc == 0) {
        reply_error(out, "empty request (commands: version, sessions, stats)");
        return;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(argv[0], commands[i].name) != 0)
            continue;
        char err[256];
        sb_printf(out, "OK\n");
        if (commands[i].run(srv, argc, argv, json, out, err, sizeof(err)) != 0)
            reply_error(out, err);
        else if (out->failed)
            reply_error(out, "reply too large or out of memory");
        return;
    }
    char msg[128];
    snprintf(msg, sizeof(msg), "unknown command '%.32s' (commands: version, sessions, stats)",
             argv[0]);
    reply_error(out, msg);
}

/* ---- the socket ------------------------------------------------------------ */

static bool send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void send_line(int fd, const char *msg)
{
    (void)send_all(fd, msg, strlen(msg));
}

/* Read one request line into buf (NUL-terminated, newline removed).
 * 0, or -1 with the error already sent to the client. */
static int read_request(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            send_line(fd, errno == EAGAIN || errno == EWOULDBLOCK
                              ? "ERR timed out waiting for the request line\n"
                              : "ERR cannot read the request\n");
            return -1;
        }
        if (n == 0) {
            if (len == 0)
                return -1; /* connected and left: nothing to answer */
            break;         /* a last line without its newline */
        }
        char *nl = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (nl) {
            len = (size_t)(nl - buf);
            break;
        }
        if (len >= cap - 1) {
            send_line(fd, "ERR request too long (a request is one line of at most 1024 bytes)\n");
            return -1;
        }
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        send_line(fd, "ERR request is not a line of text\n");
        return -1;
    }
    return 0;
}

static bool peer_allowed(int fd, struct ucred *uc)
{
    socklen_t l = sizeof(*uc);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, uc, &l) != 0)
        return false;
    return uc->uid == 0 || uc->uid == geteuid();
}

/* Closing a Unix socket with unread input resets the connection, and the
 * client may then lose the reply: say we are done, then read what is left
 * (bounded in bytes and time) before the caller closes. */
static void finish_connection(int fd)
{
    char sink[4096];
    struct timeval tv = {.tv_usec = 200000};
    (void)shutdown(fd, SHUT_WR);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    for (int i = 0; i < 16; i++)
        if (recv(fd, sink, sizeof(sink), 0) <= 0)
            break;
}

static void serve_connection(int fd)
{
    struct timeval tv = {.tv_sec = ADMIN_IO_TIMEOUT_S};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct ucred uc = {.uid = (uid_t)-1};
    if (!peer_allowed(fd, &uc)) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "ERR permission denied: the dafsd admin socket is for root only (you are uid "
                 "%ld)\n",
                 (long)(int)uc.uid);
        send_line(fd, msg);
        log_error("admin socket: refused uid %ld (pid %ld)", (long)(int)uc.uid, (long)uc.pid);
        return;
    }
    char line[ADMIN_REQUEST_MAX + 1];
    if (read_request(fd, line, sizeof(line)) != 0)
        return;
    strbuf out;
    sb_init(&out, ADMIN_REPLY_LIMIT);
    admin_handle(admin.srv, line, &out);
    if (!out.failed && out.p)
        (void)send_all(fd, out.p, out.len);
    sb_free(&out);
}

static void *admin_main(void *arg)
{
    (void)arg;
    struct pollfd p[2] = {{.fd = admin.listen_fd, .events = POLLIN},
                          {.fd = admin.wake_fd, .events = POLLIN}};
    for (;;) {
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            log_error("admin socket: poll: %s", strerror(errno));
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(admin.listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue; /* ECONNABORTED, EMFILE, ...: try the next one */
        serve_connection(fd);
        finish_connection(fd);
        close(fd);
    }
}

/* Is someone serving path?  (A stale socket of a dead dafsd is not.) */
static bool socket_in_use(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool used = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0;
    close(fd);
    return used;
}

int admin_start(server *srv, const char **why)
{
    static char msg[PATH_MAX + 128];
    admin.srv = srv;
    admin.start_ms = monotonic_ms();
    const char *path = srv->cfg.admin_socket;
    bool explicit_path = path != NULL;
    char def[PATH_MAX];
    if (!path) {
        snprintf(def, sizeof(def), "%s/admin.sock", srv->cfg.state_dir);
        path = def;
    }
    if (strcmp(path, "none") == 0)
        return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(msg, sizeof(msg), "admin socket path %s is longer than %zu bytes%s", path,
                 sizeof(sa.sun_path) - 1,
                 explicit_path ? "" : "; running without one (see --admin-socket)");
        if (!explicit_path) { /* a long --state-dir must not stop the server */
            log_error("%s", msg);
            return 0;
        }
        *why = msg;
        return -1;
    }
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(msg, sizeof(msg), "admin socket %s: exists and is not a socket", path);
            *why = msg;
            return -1;
        }
        if (socket_in_use(&sa)) {
            if (explicit_path) {
                snprintf(msg, sizeof(msg), "admin socket %s: another dafsd is serving it", path);
                *why = msg;
                return -1;
            }
            log_error("admin socket %s: another dafsd is serving it; running without one", path);
            return 0;
        }
        if (unlink(path) != 0) {
            snprintf(msg, sizeof(msg), "admin socket %s: cannot remove the stale one: %s", path,
                     strerror(errno));
            *why = msg;
            return -1;
        }
    }
    admin.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int err = 0;
    if (admin.listen_fd < 0 || bind(admin.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        err = errno;
    else if ((strcpy(admin.path, path), chmod(path, 0600)) != 0 || listen(admin.listen_fd, 8) != 0)
        err = errno; /* admin_stop removes the socket file */
    if (err) {
        snprintf(msg, sizeof(msg), "admin socket %s: %s", path, strerror(err));
        *why = msg;
        admin_stop();
        return -1;
    }
    admin.wake_fd = eventfd(0, EFD_CLOEXEC);
    if (admin.wake_fd < 0 || pthread_create(&admin.thread, NULL, admin_main, NULL) != 0) {
        *why = "admin socket: cannot start its thread";
        admin_stop();
        return -1;
    }
    admin.running = true;
    log_info("admin socket %s", path);
    return 0;
}

void admin_stop(void)
{
    if (admin.running) {
        uint64_t one = 1;
        if (write(admin.wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
            log_error("admin socket: cannot wake its thread: %s", strerror(errno));
        else
            pthread_join(admin.thread, NULL);
        admin.running = false;
    }
    if (admin.listen_fd >= 0)
        close(admin.listen_fd);
    if (admin.wake_fd >= 0)
        close(admin.wake_fd);
    admin.listen_fd = admin.wake_fd = -1;
    if (admin.path[0])
        (void)unlink(admin.path);
    admin.path[0] = '\0';
}
