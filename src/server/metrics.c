/*
 * metrics.c — Prometheus text exposition (format 0.0.4) of dafsd's
 * statistics at http://HOST:PORT/metrics (docs/man/dafsd.8).
 *
 * libmicrohttpd does the HTTP (never a hand-written server): dafsd binds the
 * listening socket itself, so that a bad address or a port in use is
 * reported at start-up in dafsd's words and port 0 works (the bound port is
 * read back and shown by `dafsctl version`), and hands it to MHD, whose own
 * thread answers requests.  A scrape sums the per-thread counters (no lock)
 * and the session table's gauges (its lock, for a copy).  Only GET and HEAD
 * of /metrics are served; at most 16 connections, 10 s idle timeout.
 *
 * Built only when CMake finds libmicrohttpd (DAFS_HAVE_MHD); otherwise
 * --metrics-listen is refused at start-up with a message saying so.
 */
#include "metrics.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"
#include "stats.h"

#ifdef DAFS_HAVE_MHD
#include <microhttpd.h>

#define METRICS_BODY_LIMIT (8u << 20)

static struct {
    server *srv;
    struct MHD_Daemon *mhd;
    int fd;
    char url[320];
} metrics = {.fd = -1};

bool metrics_available(void)
{
    return true;
}

const char *metrics_url(void)
{
    return metrics.mhd ? metrics.url : NULL;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned code, const char *type,
                              char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    enum MHD_Result ok = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (ok == MHD_YES)
        ok = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result answer_text(struct MHD_Connection *conn, unsigned code, const char *text)
{
    char *body = strdup(text);
    return body ? answer(conn, code, "text/plain; charset=utf-8", body, strlen(body)) : MHD_NO;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)cls;
    (void)version;
    (void)upload;
    if (*state == NULL) { /* first call: headers only; answer on the next */
        *state = &metrics;
        return MHD_YES;
    }
    if (*upload_size != 0)
        return answer_text(conn, 413, "no request body expected\n");
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return answer_text(conn, 405, "only GET and HEAD\n");
    if (strcmp(url, "/metrics") != 0)
        return answer_text(conn, 404, "dafsd serves its statistics at /metrics\n");
    stats_totals *t = malloc(sizeof(*t));
    if (!t)
        return answer_text(conn, 500, "out of memory\n");
    stats_collect(t);
    stats_gauges g;
    admin_gauges(metrics.srv, &g);
    strbuf b;
    sb_init(&b, METRICS_BODY_LIMIT);
    stats_format_prometheus(&b, t, &g);
    free(t);
    if (b.failed || !b.p) {
        sb_free(&b);
        return answer_text(conn, 500, "out of memory\n");
    }
    return answer(conn, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
}

/* HOST:PORT or [V6]:PORT into host and port. */
static int split_address(const char *arg, char *host, size_t hlen, char *port, size_t plen)
{
    const char *h = arg, *colon;
    size_t n;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (!close || close[1] != ':')
            return -1;
        h = arg + 1;
        n = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(arg, ':');
        if (!colon)
            return -1;
        n = (size_t)(colon - arg);
    }
    if (n == 0 || n >= hlen || strlen(colon + 1) == 0 || strlen(colon + 1) >= plen)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    strcpy(port, colon + 1);
    for (const char *p = port; *p; p++)
        if (*p < '0' || *p > '9')
            return -1;
    return 0;
}

static int listen_on(const char *host, const char *port, const char **why)
{
    static char msg[512];
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(msg, sizeof(msg), "--metrics-listen %s:%s: %s", host, port, gai_strerror(rc));
        *why = msg;
        return -1;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1, err = 0;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 16) != 0)
        err = errno;
    freeaddrinfo(ai);
    if (err) {
        snprintf(msg, sizeof(msg), "--metrics-listen %s:%s: %s", host, port, strerror(err));
        *why = msg;
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

int metrics_start(server *srv, const char **why)
{
    const char *arg = srv->cfg.metrics_listen;
    if (!arg)
        return 0;
    char host[256], port[16];
    if (split_address(arg, host, sizeof(host), port, sizeof(port)) != 0) {
        *why = "--metrics-listen wants HOST:PORT or [V6ADDR]:PORT";
        return -1;
    }
    int fd = listen_on(host, port, why);
    if (fd < 0)
        return -1;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char bound[NI_MAXSERV] = "?", numeric[NI_MAXHOST] = "";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        (void)getnameinfo((struct sockaddr *)&ss, sl, numeric, sizeof(numeric), bound,
                          sizeof(bound), NI_NUMERICHOST | NI_NUMERICSERV);
    bool v6 = strchr(numeric, ':') != NULL;
    snprintf(metrics.url, sizeof(metrics.url), "http://%s%s%s:%s/metrics", v6 ? "[" : "", numeric,
             v6 ? "]" : "", bound);
    metrics.srv = srv;
    metrics.fd = fd;
    metrics.mhd =
        MHD_start_daemon(MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request,
                         NULL, MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, 16u,
                         MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!metrics.mhd) {
        close(fd);
        metrics.fd = -1;
        *why = "--metrics-listen: libmicrohttpd could not start";
        return -1;
    }
    log_notice("dafsd: metrics at %s", metrics.url);
    return 0;
}

void metrics_stop(void)
{
    if (metrics.mhd)
        MHD_stop_daemon(metrics.mhd); /* closes the listening socket too */
    else if (metrics.fd >= 0)
        close(metrics.fd);
    metrics.mhd = NULL;
    metrics.fd = -1;
}

#else /* !DAFS_HAVE_MHD */

bool metrics_available(void)
{
    return false;
}

const char *metrics_url(void)
{
    return NULL;
}

int metrics_start(server *srv, const char **why)
{
    if (!srv->cfg.metrics_listen)
        return 0;
    *why = "--metrics-listen: this dafsd was built without libmicrohttpd "
           "(install libmicrohttpd-dev and rebuild)";
    return -1;
}

void metrics_stop(void) {}

#endif
