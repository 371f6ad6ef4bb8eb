/*
 * session.c — opening and closing a session, and keeping its lease alive.
 *
 * dafs_connect: parse the URL, open a libfabric endpoint, resolve the server,
 * set up the request engine (registered send/receive buffers, receives
 * posted), send CONNECT with our proposed limits and take the negotiated
 * ones from the reply, then GETROOT for the export's root handle.
 *
 * Identity: the client id defaults to "<hostname>:<pid>:<n>" (n counts the
 * sessions of this process); the boot verifier is random, drawn once per
 * process, so every session of one incarnation carries the same value and a
 * restarted process a new one (the server then drops the old state).
 *
 * Lease: a small thread sends NULL whenever the session has sent nothing for
 * a third of the lease.  The same thread probes a server that has been
 * silent for CLIENT_PROBE_MS while requests are outstanding (see
 * probe_server).  It sleeps on a condition variable, so it costs nothing in
 * between and stops at once on dafs_disconnect.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "client.h"

static pthread_once_t verifier_once = PTHREAD_ONCE_INIT;
static uint64_t process_boot_verifier;
static atomic_uint session_counter;

static void draw_boot_verifier(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    }
    process_boot_verifier = v == 0 ? 1 : v;
}

static void default_client_id(char *buf, size_t len)
{
    char host[64];
    if (gethostname(host, sizeof host) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    unsigned n = atomic_fetch_add(&session_counter, 1u);
    (void)snprintf(buf, len, "%s:%ld:%u", host, (long)getpid(), n);
}

static int init_sync(dafs_session *s)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -ENOMEM;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&s->cond, &attr);
    if (rc == 0)
        rc = pthread_cond_init(&s->keepalive_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc == 0)
        rc = pthread_mutex_init(&s->lock, NULL);
    if (rc == 0)
        rc = pthread_mutex_init(&s->regions_lock, NULL);
    if (rc == 0)
        rc = pthread_mutex_init(&s->async_lock, NULL);
    return -rc;
}

static size_t clamp_size(size_t v, size_t lo, size_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int send_connect(dafs_session *s, const char *client_id)
{
    uint8_t ep_name[DAFS_EPNAME_MAX];
    size_t ep_len = sizeof ep_name;
    if (dfab_getname(s->fab, ep_name, &ep_len) < 0 || ep_len == 0 || ep_len > DAFS_EPNAME_MAX)
        return -DAFS_ETRANSPORT;
    size_t id_len = strlen(client_id);
    if (id_len == 0 || id_len > DAFS_CLIENT_ID_MAX)
        return -EINVAL;

    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_CONNECT;
    dafs_connect_req *c = &req.u.connect;
    c->client_id = (dafs_bytes){(const uint8_t *)client_id, (uint32_t)id_len};
    c->boot_verifier = process_boot_verifier;
    c->max_request = (uint32_t)s->send_size;
    c->max_response = (uint32_t)s->recv_size;
    c->inline_max = CLIENT_INLINE_MAX;
    c->max_credits = (uint16_t)s->nslots;
    c->ep_name = (dafs_bytes){ep_name, (uint32_t)ep_len};

    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    const dafs_connect_rep *r = &rep.u.connect;
    if (rep.hdr.session_id == 0 || r->max_request < DAFS_MSG_MIN ||
        r->max_request > s->send_size || r->max_response < DAFS_MSG_MIN ||
        r->max_response > s->recv_size || r->max_segs == 0) {
        engine_release(slot);
        return -DAFS_EPROTO;
    }
    s->session_id = rep.hdr.session_id;
    s->server_instance = r->server_instance;
    s->max_request = r->max_request;
    s->max_response = r->max_response;
    uint32_t room = (s->max_request < s->max_response ? s->max_request : s->max_response) -
                    CLIENT_MSG_OVERHEAD;
    s->inline_max = r->inline_max < room ? r->inline_max : room;
    s->max_io = r->max_io;
    s->lease_ms = r->lease_ms;
    s->max_segs = r->max_segs;
    engine_release(slot);
    return 0;
}

static int get_root(dafs_session *s)
{
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_GETROOT;
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    s->root = rep.u.fh_attr.fh;
    engine_release(slot);
    return 0;
}

/* Probe a silent server: a NULL whose send fails (the tcp provider reports
 * a dead peer at once) or that gets no reply within CLIENT_PROBE_REPLY_MS
 * (shm reports nothing: the message just sits in a dead peer's queue) breaks
 * the session, so callers waiting for replies from a killed server fail in
 * seconds instead of the full timeout.  A busy server still answers in time:
 * dafsd's network thread replies to NULL itself, never behind disk work.
 * Uses a spare credit only; with none free there is nothing to probe with
 * (and those callers fall back on the request timeout). */
static void probe_server(dafs_session *s)
{
    if (dfab_peer_lost(s->fab)) { /* shm: the server's lock is free, it is gone */
        engine_break(s, -DAFS_ETRANSPORT);
        return;
    }
    client_slot *slot;
    if (engine_acquire(s, false, &slot) != 0)
        return;
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_NULL;
    int rc = engine_send(slot, &req);
    if (rc == 0) {
        dafs_reply rep;
        unsigned wait_ms = CLIENT_PROBE_REPLY_MS < s->timeout_ms ? CLIENT_PROBE_REPLY_MS
                                                                 : s->timeout_ms;
        rc = engine_wait_for(slot, &rep, wait_ms);
    }
    engine_release(slot);
    if (rc == -DAFS_ETRANSPORT)
        engine_break(s, rc);
}

/* When is the next renewal (idle for a third of the lease) or probe (requests
 * outstanding, no reply for CLIENT_PROBE_MS) due?  Asynchronous I/O counts as
 * outstanding even when no slot is busy: a batch the server accepted waits
 * for its BATCH_COMPLETION with no request of its own to time out.  Lock held. */
static uint64_t next_duty_locked(const dafs_session *s, bool *probe)
{
    uint64_t renew = s->lease_ms >= 3u ? s->last_send_ms + s->lease_ms / 3u : UINT64_MAX;
    bool waiting = s->outstanding > 0 || atomic_load(&s->aio_inflight) > 0;
    uint64_t check = waiting ? s->last_reply_ms + CLIENT_PROBE_MS : UINT64_MAX;
    *probe = check < renew;
    uint64_t due = check < renew ? check : renew;
    return due == UINT64_MAX ? engine_now_ms() + CLIENT_PROBE_MS : due;
}

static void *keepalive_main(void *arg)
{
    dafs_session *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->keepalive_stop && s->broken == 0) {
        bool probe;
        uint64_t now = engine_now_ms(), due = next_duty_locked(s, &probe);
        if (now >= due) {
            pthread_mutex_unlock(&s->lock);
            if (probe)
                probe_server(s);
            else
                (void)dafs_null(s); /* a failure breaks the session; the loop then ends */
            pthread_mutex_lock(&s->lock);
            if (probe)
                s->last_reply_ms = engine_now_ms(); /* next probe after another period */
            continue;
        }
        if (due > now + CLIENT_PROBE_MS)
            due = now + CLIENT_PROBE_MS; /* requests may start meanwhile */
        struct timespec ts = {(time_t)(due / 1000u), (long)(due % 1000u) * 1000000L};
        (void)pthread_cond_timedwait(&s->keepalive_cond, &s->lock, &ts);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int start_keepalive(dafs_session *s)
{
    int rc = pthread_create(&s->keepalive, NULL, keepalive_main, s);
    if (rc != 0)
        return -rc;
    s->keepalive_running = true;
    return 0;
}

static void stop_keepalive(dafs_session *s)
{
    if (!s->keepalive_running)
        return;
    pthread_mutex_lock(&s->lock);
    s->keepalive_stop = true;
    pthread_cond_broadcast(&s->keepalive_cond);
    pthread_mutex_unlock(&s->lock);
    (void)pthread_join(s->keepalive, NULL);
    s->keepalive_running = false;
}

/* Release everything; the session must have no calls in progress. */
static void destroy_session(dafs_session *s)
{
    stop_keepalive(s);
    if (s->fab != NULL) {
        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        pthread_mutex_unlock(&s->lock);
        batch_async_free(s); /* entries still in flight complete with an error */
        mem_free_all(s);
        dfab_mr_close(s->send_mr);
        dfab_mr_close(s->recv_mr);
        dfab_close(s->fab);
    }
    engine_fini(s);
    pthread_cond_destroy(&s->cond);
    pthread_cond_destroy(&s->keepalive_cond);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->regions_lock);
    pthread_mutex_destroy(&s->async_lock);
    free(s);
}

/* The longest wait for the check before CONNECT (a TCP handshake): what
 * the transport itself would wait for a first send to go out (5 s). */
#define CLIENT_PEER_CHECK_MS 5000u

/* What dafs_connect reports for a transport failure before the session
 * exists: the causes a user can act on keep their errno (dafs_strerror
 * names them), the rest is a transport error. */
static int connect_error(int rc)
{
    switch (rc) {
    case -ECONNREFUSED:
    case -EHOSTUNREACH:
    case -ENETUNREACH:
    case -EAFNOSUPPORT:
    case -EPROTONOSUPPORT:
    case -EPROTOTYPE:
    case -ETIMEDOUT:
    case -ELIBACC: /* libfabric.so.1 cannot be loaded */
    case -ELIBBAD:
    case -ENOMEM:
        return rc;
    default:
        return -DAFS_ETRANSPORT;
    }
}

static int open_endpoint(dafs_session *s, const dafs_options *opts, const char *host,
                         unsigned port)
{
    dfab_config cfg = {.provider = opts != NULL ? opts->provider : NULL,
                       .node = host,
                       .service = NULL,
                       .listen = false};
    const char *errmsg = NULL;
    int rc = dfab_open(&cfg, &s->fab, &errmsg);
    if (rc < 0) {
        s->fab = NULL;
        return connect_error(rc);
    }
    const dfab_limits *lim = dfab_get_limits(s->fab);
    (void)snprintf(s->provider, sizeof s->provider, "%s", lim->provider);
    char service[16];
    (void)snprintf(service, sizeof service, "%u", port);
    rc = dfab_resolve(s->fab, host, service, &s->server);
    if (rc < 0)
        return connect_error(rc);
    /* Nobody there?  Known in milliseconds here, where the provider would
     * retry its connection until the send gave up (see fabric_peer.c). */
    unsigned check_ms = s->timeout_ms < CLIENT_PEER_CHECK_MS ? s->timeout_ms : CLIENT_PEER_CHECK_MS;
    rc = dfab_check_peer(s->fab, host, service, (int)check_ms, &errmsg);
    return rc < 0 ? connect_error(rc) : 0;
}

static int setup_session(dafs_session *s, const char *url, const dafs_options *opts)
{
    char host[256];
    unsigned port;
    char full_path[4096];
    int rc = dafs_url_parse(url, host, sizeof host, &port, full_path, sizeof full_path);
    if (rc < 0)
        return rc;
    rc = open_endpoint(s, opts, host, port);
    if (rc < 0)
        return rc;
    const dfab_limits *lim = dfab_get_limits(s->fab);
    uint32_t credits = opts != NULL && opts->max_credits != 0 ? opts->max_credits
                                                               : CLIENT_DEFAULT_CREDITS;
    if (credits > CLIENT_MAX_SLOTS)
        credits = CLIENT_MAX_SLOTS;
    if (lim->rx_size > CLIENT_EXTRA_RECVS && credits > lim->rx_size - CLIENT_EXTRA_RECVS)
        credits = (uint32_t)(lim->rx_size - CLIENT_EXTRA_RECVS);
    size_t msg = clamp_size(CLIENT_INLINE_MAX + CLIENT_MSG_OVERHEAD, DAFS_MSG_MIN, DAFS_MSG_LIMIT);
    if (lim->max_msg_size != 0 && msg > lim->max_msg_size)
        msg = lim->max_msg_size;
    rc = engine_init(s, credits, msg, msg);
    if (rc < 0)
        return rc;
    char id[DAFS_CLIENT_ID_MAX + 1];
    if (opts != NULL && opts->client_id != NULL) {
        if (strlen(opts->client_id) > DAFS_CLIENT_ID_MAX)
            return -EINVAL;
        strcpy(id, opts->client_id);
    } else {
        default_client_id(id, sizeof id);
    }
    rc = send_connect(s, id);
    if (rc == 0)
        rc = cred_register_process(s);
    if (rc == 0)
        rc = get_root(s);
    if (rc == 0)
        rc = start_keepalive(s);
    return rc;
}

int dafs_connect(const char *url, const dafs_options *opts, dafs_session **out)
{
    if (url == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    (void)pthread_once(&verifier_once, draw_boot_verifier);
    dafs_session *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -ENOMEM;
    int rc = init_sync(s);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->timeout_ms = opts != NULL && opts->timeout_ms != 0 ? opts->timeout_ms
                                                          : CLIENT_DEFAULT_TIMEOUT_MS;
    s->last_send_ms = s->last_reply_ms = engine_now_ms();
    rc = setup_session(s, url, opts);
    if (rc < 0) {
        destroy_session(s);
        return rc;
    }
    *out = s;
    return 0;
}

int dafs_disconnect(dafs_session *s)
{
    if (s == NULL)
        return -EINVAL;
    aio_session_end(s); /* groups left are destroyed: their I/O completes first */
    stop_keepalive(s);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    int broken = s->broken;
    pthread_mutex_unlock(&s->lock);
    if (broken == 0) {
        dafs_request req;
        memset(&req, 0, sizeof req);
        req.hdr.opcode = DAFS_OP_DISCONNECT;
        rc = engine_call_simple(s, &req);
    }
    destroy_session(s);
    return rc;
}

int dafs_null(dafs_session *s)
{
    if (s == NULL)
        return -EINVAL;
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_NULL;
    return engine_call_simple(s, &req);
}

int dafs_session_get_info(dafs_session *s, dafs_session_info *info)
{
    if (s == NULL || info == NULL)
        return -EINVAL;
    memset(info, 0, sizeof *info);
    (void)snprintf(info->provider, sizeof info->provider, "%s", s->provider);
    pthread_mutex_lock(&s->lock);
    info->credits = s->grant;
    pthread_mutex_unlock(&s->lock);
    info->max_request = s->max_request;
    info->max_response = s->max_response;
    info->inline_max = s->inline_max;
    info->max_io = s->max_io;
    info->lease_ms = s->lease_ms;
    info->session_id = s->session_id;
    info->server_instance = s->server_instance;
    return 0;
}
