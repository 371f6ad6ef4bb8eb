/*
 * fabric_peer.c — is anybody there?  A quick check of the server's address
 * before the first message, so that a client learns in milliseconds what
 * libfabric would only let it find out by waiting.
 *
 * Why: tcp;ofi_rxm (libfabric 1.17) connects on the first send; when the
 * connection is refused it logs the error and reconnects, over and over,
 * while the send keeps returning -FI_EAGAIN — nothing reaches the caller's
 * CQ, so "nothing listens there" looked like a 5 s timeout.  shm accepts an
 * address whose region does not exist and the send waits the same way.  So,
 * before CONNECT:
 *
 *  - tcp (core provider "tcp"): a plain non-blocking TCP connect to
 *    node:service.  Refused, no route, network unreachable and an unusable
 *    address family come back from the kernel at once; a connection that
 *    opens is closed again (the server's tcp provider drops a peer that
 *    closes before its connection request, silently).
 *  - shm: the host must be this machine (an address a socket can bind to);
 *    the server's region name is locked (flock on "<name>.lock") for its
 *    lifetime; an absent or unlocked lock file means no live server.
 *  - Both: when nothing is there, look whether the other one is — a live shm
 *    server with that port, or a TCP listener on it — and say that the
 *    server uses another provider.  A refused loopback address also tries
 *    the other family (127.0.0.1 vs ::1): a server bound to IPv4 only that
 *    is asked over IPv6 is an address family problem, and says so.
 *  - Other providers (verbs, efa, ...): no check; their own errors stand.
 */
#include "fabric_internal.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

static _Thread_local char peer_err[256];

/* Connect one address; 0 when the connection opens, else -errno. */
static int tcp_connect_once(const struct addrinfo *ai, int64_t deadline_ns)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno == EAFNOSUPPORT ? -EAFNOSUPPORT : -errno;
    int rc = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        rc = -errno;
        while (rc == -EINPROGRESS || rc == -EINTR) {
            int64_t left = deadline_ns - fabric_now_ns();
            if (left <= 0) {
                rc = -ETIMEDOUT;
                break;
            }
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int n = poll(&p, 1, (int)((left + 999999) / 1000000));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = -errno;
                break;
            }
            if (n == 0)
                continue; /* the deadline check above ends it */
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
                rc = -errno;
            else
                rc = -soerr;
        }
    }
    close(fd);
    if (rc == -EADDRNOTAVAIL) /* e.g. ::1 with IPv6 off on this host */
        rc = -EAFNOSUPPORT;
    return rc;
}

/* 0 if a TCP connection to node:service opens within timeout_ms. */
static int tcp_probe(const char *node, const char *service, int timeout_ms)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(node, service, &hints, &res);
    if (gai != 0)
        return gai == EAI_FAMILY ? -EAFNOSUPPORT : -EHOSTUNREACH;
    int64_t deadline = fabric_now_ns() + (int64_t)timeout_ms * 1000000LL;
    int rc = -EHOSTUNREACH;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = tcp_connect_once(ai, deadline);
        if (rc == 0 || rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    return rc;
}

/* The open lock file of the shm server named service, or -1 when there is
 * none or nobody holds it (no live server). */
static int shm_server_lock_fd(const char *service)
{
    char lock[128];
    if (!service || strpbrk(service, "/:") ||
        snprintf(lock, sizeof lock, "/dev/shm/" SHM_NAME_PREFIX "%s.lock", service) >=
            (int)sizeof lock)
        return -1;
    int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        return fd; /* the server's exclusive lock */
    close(fd);     /* got it (closing releases it), or cannot tell: nobody there */
    return -1;
}

/* 1 if a live dafs shm server holds the name for service, else 0. */
static int shm_server_alive(const char *service)
{
    int fd = shm_server_lock_fd(service);
    if (fd < 0)
        return 0;
    close(fd);
    return 1;
}

/* Keep the live server's lock file open, for dfab_peer_lost. */
static void shm_watch_server(dfab *f, const char *service)
{
    if (f->peer_lock_fd >= 0)
        close(f->peer_lock_fd);
    f->peer_lock_fd = shm_server_lock_fd(service);
    atomic_store(&f->peer_lost, false);
}

bool dfab_peer_lost(dfab *f)
{
    if (f->peer_lock_fd < 0)
        return false;
    if (atomic_load(&f->peer_lost))
        return true;
    /* Free means its holder has exited (the kernel drops flocks of the dead);
     * a stale-region sweep by another opener may hold it for microseconds,
     * which only makes a dead server look alive a little longer. */
    if (flock(f->peer_lock_fd, LOCK_SH | LOCK_NB) != 0)
        return false;
    (void)flock(f->peer_lock_fd, LOCK_UN);
    atomic_store(&f->peer_lost, true);
    return true;
}

/* shm reaches this machine only: 0 if node names one of its addresses (an
 * address is local when a socket can bind to it), else -EHOSTUNREACH. */
static int shm_node_local(const char *node)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    if (getaddrinfo(node, "0", &hints, &res) != 0)
        return -EHOSTUNREACH;
    int rc = -EHOSTUNREACH;
    for (const struct addrinfo *ai = res; ai && rc != 0; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            rc = 0;
        close(fd);
    }
    freeaddrinfo(res);
    return rc;
}

static bool is_loopback(const char *node)
{
    return !node || strcmp(node, "localhost") == 0 || strncmp(node, "127.", 4) == 0 ||
           strcmp(node, "::1") == 0;
}

static const char *describe(int rc, const char *node, const char *service)
{
    switch (rc) {
    case -ECONNREFUSED:
        snprintf(peer_err, sizeof peer_err, "nothing listens at %s port %s", node, service);
        break;
    case -ETIMEDOUT:
        snprintf(peer_err, sizeof peer_err, "no answer from %s port %s", node, service);
        break;
    default:
        snprintf(peer_err, sizeof peer_err, "%s port %s: %s", node, service, strerror(-rc));
        break;
    }
    return peer_err;
}

int dfab_check_peer(dfab *f, const char *node, const char *service, int timeout_ms,
                    const char **errmsg)
{
    const char *dummy;
    if (!errmsg)
        errmsg = &dummy;
    *errmsg = NULL;
    if (!service)
        return -EINVAL;
    if (!node)
        node = "127.0.0.1";
    if (timeout_ms <= 0)
        timeout_ms = 1;
    if (f->is_shm) {
        if (shm_node_local(node) != 0) {
            snprintf(peer_err, sizeof peer_err,
                     "'%s' is not an address of this machine (or does not resolve), and shm "
                     "reaches only this machine",
                     node);
            *errmsg = peer_err;
            return -EHOSTUNREACH;
        }
        shm_watch_server(f, service);
        if (f->peer_lock_fd >= 0)
            return 0;
        /* a tcp dafsd on this port?  Only a local listener can be seen. */
        if (tcp_probe("127.0.0.1", service, timeout_ms < 1000 ? timeout_ms : 1000) == 0) {
            snprintf(peer_err, sizeof peer_err,
                     "no shm server with port %s, but something listens on TCP port %s: "
                     "is the server using tcp;ofi_rxm?",
                     service, service);
            *errmsg = peer_err;
            return -EPROTOTYPE;
        }
        snprintf(peer_err, sizeof peer_err, "no shm server with port %s on this machine", service);
        *errmsg = peer_err;
        return -ECONNREFUSED;
    }
    if (strncmp(f->limits.provider, "tcp", 3) != 0 ||
        (f->limits.provider[3] != '\0' && f->limits.provider[3] != ';'))
        return 0;
    int rc = tcp_probe(node, service, timeout_ms);
    if (rc == -ECONNREFUSED && is_loopback(node) && shm_server_alive(service)) {
        snprintf(peer_err, sizeof peer_err,
                 "nothing listens on TCP port %s, but a dafs server on this machine serves "
                 "port %s over shm",
                 service, service);
        *errmsg = peer_err;
        return -EPROTOTYPE;
    }
    if (rc == -ECONNREFUSED && is_loopback(node)) {
        /* the same port on the other loopback family: a server bound to
         * IPv4 only, asked over IPv6 (or the reverse) */
        const char *other = strchr(node, ':') ? "127.0.0.1" : "::1";
        if (tcp_probe(other, service, timeout_ms < 1000 ? timeout_ms : 1000) == 0) {
            snprintf(peer_err, sizeof peer_err,
                     "nothing listens at %s port %s, but %s port %s answers: the server "
                     "listens on %s only",
                     node, service, other, service, strchr(node, ':') ? "IPv4" : "IPv6");
            *errmsg = peer_err;
            return -EAFNOSUPPORT;
        }
    }
    if (rc != 0)
        *errmsg = describe(rc, node, service);
    return rc;
}
