/*
 * cli_common.c — the parts of the `dafs` client every command uses: the one
 * error line, sessions, signal handling and a few string helpers.
 *
 * Signals.  SIGINT, SIGTERM and SIGHUP are caught (Debian's libfabric pulls
 * in libraries whose constructors install handlers that exit 1 without a
 * word, or 0 when the process leads its session; ours replace them, and are
 * installed again after connecting in case the fabric libraries were loaded
 * late).  The handler either exits at once — one line, 128+signal — or,
 * while a transfer owns temporary files, only records the signal so that
 * the transfer can stop between two chunks and remove them.  Everything the
 * handler touches is prepared beforehand (the message prefix, the local
 * temporary name) and it uses only async-signal-safe calls (write, unlink,
 * _exit).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

const char *cli_progname = "dafs";

volatile sig_atomic_t cli_progress_open; /* a progress line is drawn, no newline yet */

/* ---- the one error line ---- */

/* A progress line still open on stderr is ended first, so the error line
 * starts at the left margin. */
static void end_progress_line(void)
{
    if (cli_progress_open) {
        fputc('\n', stderr);
        cli_progress_open = 0;
    }
}

int cli_fail(const cli *c, const char *object, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    end_progress_line();
    if (object != NULL && object[0] != '\0')
        fprintf(stderr, "%s: %s %s: %s\n", cli_progname, c->cmd, object, msg);
    else
        fprintf(stderr, "%s: %s: %s\n", cli_progname, c->cmd, msg);
    return 1;
}

int cli_fail_dafs(const cli *c, const char *object, int err)
{
    if (err > 0)
        err = -err;
    /* The server's default root squash runs uid 0 as the anonymous user; a
     * bare "Permission denied" leaves root guessing why. */
    if ((err == -EACCES || err == -EPERM) && geteuid() == 0)
        return cli_fail(c, object, "%s (root is mapped to the anonymous user unless dafsd "
                        "runs with --no-root-squash)", dafs_strerror(err));
    return cli_fail(c, object, "%s", dafs_strerror(err));
}

int cli_fail_url(const cli *c, const char *url)
{
    const char *why = dafs_url_error(url);
    return cli_fail(c, url[0] ? url : "\"\"", "%s%s%s", dafs_strerror(-DAFS_EURL),
                    why != NULL ? ": " : "", why != NULL ? why : "");
}

int cli_bad_usage(const cli *c)
{
    end_progress_line();
    fprintf(stderr, "%s: usage: dafs %s %s\n", cli_progname, c->cmd, cli_command_usage(c->cmd));
    return 2;
}

/* ---- sessions ---- */

int cli_open(cli *c, const char *url)
{
    char host[sizeof c->host];
    unsigned port;
    int rc = dafs_url_parse(url, host, sizeof host, &port, c->path, sizeof c->path);
    if (rc < 0)
        return cli_fail_url(c, url);
    cli_set_object(c, url);
    if (c->s != NULL && strcmp(host, c->host) == 0 && port == c->port)
        return 0;
    if (c->s != NULL && cli_close_session(c, url, 0) != 0)
        return 1;
    dafs_options opts = {.provider = c->provider};
    rc = dafs_connect(url, &opts, &c->s);
    cli_signals_install(); /* again: the fabric libraries may have just been loaded */
    if (rc < 0) {
        c->s = NULL;
        return cli_fail_dafs(c, url, rc);
    }
    (void)snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    return 0;
}

int cli_close_session(cli *c, const char *url, int status)
{
    if (c->s == NULL)
        return status;
    int rc = dafs_disconnect(c->s);
    c->s = NULL;
    if (rc < 0 && status == 0)
        return cli_fail_dafs(c, url, rc);
    return status;
}

int cli_second_path(cli *c, const char *src_url, const char *dst, char *out, size_t outlen)
{
    if (dst[0] == '/') {
        if (strlen(dst) >= outlen)
            return cli_fail_dafs(c, dst, -ENAMETOOLONG);
        strcpy(out, dst);
        return 0;
    }
    char h2[256];
    unsigned port2;
    int rc = dafs_url_parse(dst, h2, sizeof h2, &port2, out, outlen);
    if (rc < 0)
        return cli_fail_url(c, dst);
    if (strcmp(c->host, h2) != 0 || c->port != port2)
        return cli_fail(c, dst, "not on the same server as %s", src_url);
    return 0;
}

/* ---- signals ---- */

#define PREFIX_MAX 600
static char handler_prefix[2][PREFIX_MAX]; /* "dafs: get dafs://h/x: " */
static volatile sig_atomic_t handler_prefix_index;
static char handler_temp[2][CLI_PATH_BUF]; /* the local temporary file, "" if none */
static volatile sig_atomic_t handler_temp_index;
static volatile sig_atomic_t signals_deferred;
static volatile sig_atomic_t pending_signal;

static const char *signal_word(int sig)
{
    switch (sig) {
    case SIGINT: return "interrupted";
    case SIGTERM: return "terminated";
    case SIGHUP: return "hangup";
    default: return "killed";
    }
}

static void write_str(const char *s)
{
    size_t len = strlen(s);
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, s, len);
        if (n <= 0 && errno != EINTR)
            return;
        if (n > 0) {
            s += n;
            len -= (size_t)n;
        }
    }
}

static void on_signal(int sig)
{
    int saved_errno = errno;
    if (signals_deferred && pending_signal == 0) {
        pending_signal = sig; /* the transfer stops at its next chunk */
        errno = saved_errno;
        return;
    }
    const char *temp = handler_temp[handler_temp_index];
    if (temp[0] != '\0')
        (void)unlink(temp);
    if (cli_progress_open)
        write_str("\n");
    write_str(handler_prefix[handler_prefix_index]);
    write_str(signal_word(sig));
    write_str("\n");
    _exit(128 + sig);
}

void cli_signals_install(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    (void)sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        (void)sigaddset(&sa.sa_mask, sigs[i]);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        (void)sigaction(sigs[i], &sa, NULL);
}

void cli_signals_deferred(bool on)
{
    signals_deferred = on;
}

int cli_pending_signal(void)
{
    return pending_signal;
}

/* Double buffering: the handler reads one copy while the other is written. */
void cli_set_local_temp(const char *path)
{
    int next = !handler_temp_index;
    (void)snprintf(handler_temp[next], sizeof handler_temp[next], "%s", path ? path : "");
    handler_temp_index = next;
}

void cli_set_object(const cli *c, const char *object)
{
    int next = !handler_prefix_index;
    if (object != NULL && object[0] != '\0')
        (void)snprintf(handler_prefix[next], PREFIX_MAX, "%s: %s %.500s: ", cli_progname,
                       c->cmd, object);
    else
        (void)snprintf(handler_prefix[next], PREFIX_MAX, "%s: %s: ", cli_progname, c->cmd);
    handler_prefix_index = next;
}

int cli_interrupted(const cli *c, const char *object)
{
    int sig = pending_signal;
    (void)cli_fail(c, object, "%s", signal_word(sig));
    return 128 + sig;
}

/* ---- helpers ---- */

const char *cli_base_name(const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    static char buf[4096];
    (void)snprintf(buf, sizeof buf, "%.*s", (int)len, path);
    char *slash = strrchr(buf, '/');
    return slash != NULL && slash[1] != '\0' ? slash + 1 : buf;
}

void cli_join(char *out, size_t outlen, const char *dir, const char *name)
{
    size_t len = strlen(dir);
    const char *sep = len > 0 && dir[len - 1] == '/' ? "" : "/";
    (void)snprintf(out, outlen, "%s%s%s", dir, sep, name);
}

void cli_human_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        (void)snprintf(buf, len, "%" PRIu64 " B", bytes);
    else
        (void)snprintf(buf, len, "%.1f %s", v, units[u]);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
