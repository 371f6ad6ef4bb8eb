/*
 * bench_floor.c — the raw libfabric floor for dafs-bench.
 *
 * What a dafs operation costs with no file system in the way: a request
 * message, then (for a read) a server-initiated RMA write of `size` bytes
 * into the client's registered buffer, visible before the reply as dafsd does
 * it, or (for a write) a server-initiated RMA read from the client's buffer,
 * or (for metadata) nothing, and a reply message.  Server and client(s) are
 * separate processes on this machine using the same transport module as
 * dafsd and libdafs, so every dafs figure can be read as a ratio to this one.
 * The server serves up to FLOOR_MAX_CLIENTS client processes at once (each
 * says HELLO and gets an index), for the multi-process floor.
 *
 * The wire format here is private to the benchmark (a few fixed structs), not
 * the dafs protocol: the point is to measure the fabric, not our codec.
 */
#include "bench.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

enum { FLOOR_HELLO = 1, FLOOR_OP = 2, FLOOR_BYE = 3 };
/* Server CPU is read from /proc by the parent (bench_proc_cpu_us), so the
 * floor server needs no accounting of its own. */
#define FLOOR_MSG_SIZE 512
#define FLOOR_RX_COUNT 64
#define FLOOR_MAX_OUTSTANDING BENCH_QD
#define FLOOR_MAX_CLIENTS 64
#define FLOOR_SLOTS (FLOOR_MAX_CLIENTS * FLOOR_MAX_OUTSTANDING)

typedef struct floor_msg {
    uint32_t type;
    uint32_t size;      /* OP: bytes to move (0: none) */
    uint32_t kind;      /* OP: enum bench_floor_kind */
    uint32_t client;    /* OP, BYE: index the server gave in its HELLO reply */
    uint64_t tag;       /* echoed */
    uint64_t addr, key; /* OP: client segment */
    uint32_t name_len;  /* HELLO: client endpoint name */
    uint8_t name[256];
} floor_msg;

/* ---- server side ------------------------------------------------------- */

typedef struct floor_server {
    dfab *fab;
    dfab_mr *rx_mr, *tx_mr, *data_mr;
    uint8_t *rx, *tx, *data;
    dfab_addr clients[FLOOR_MAX_CLIENTS];
    bool in_use[FLOOR_MAX_CLIENTS];
    size_t max_size;
    int done;
} floor_server;

typedef struct floor_rx {
    dfab_op op;
    floor_server *srv;
    int index;
} floor_rx;

static void floor_send_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)op, (void)len, (void)src;
    if (status != 0)
        fprintf(stderr, "dafs-bench floor: send: %s\n", strerror(-status));
}

/* Bytes of a message on the wire: the name only travels in HELLO. */
static size_t floor_msg_len(const floor_msg *m)
{
    return m->type == FLOOR_HELLO ? offsetof(floor_msg, name) + m->name_len
                                  : offsetof(floor_msg, name_len);
}

typedef struct floor_work {
    dfab_op op;
    dfab_op send_op;
    floor_server *srv;
    int slot; /* reply buffer slot */
    dfab_addr client;
    floor_msg reply;
} floor_work;

static floor_work server_work[FLOOR_SLOTS];
static floor_rx server_rx[FLOOR_RX_COUNT];

static int floor_post_rx(floor_server *srv, floor_rx *rx)
{
    return dfab_post_recv(srv->fab, srv->rx + (size_t)rx->index * FLOOR_MSG_SIZE, FLOOR_MSG_SIZE,
                          srv->rx_mr, &rx->op);
}

static void floor_send_reply(floor_server *srv, floor_work *w)
{
    uint8_t *buf = srv->tx + (size_t)w->slot * FLOOR_MSG_SIZE;
    memcpy(buf, &w->reply, sizeof(w->reply));
    w->send_op.done = floor_send_done;
    int rc = dfab_send(srv->fab, w->client, buf, floor_msg_len(&w->reply), srv->tx_mr,
                       &w->send_op);
    if (rc != 0)
        fprintf(stderr, "dafs-bench floor server: send: %s\n", strerror(-rc));
}

static void floor_rma_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)len, (void)src;
    floor_work *w = (floor_work *)op;
    if (status != 0)
        fprintf(stderr, "dafs-bench floor server: rma: %s\n", strerror(-status));
    floor_send_reply(w->srv, w);
}

static void floor_hello(floor_server *srv, const floor_msg *m)
{
    dfab_addr addr;
    int index = 0;
    while (index < FLOOR_MAX_CLIENTS && srv->in_use[index])
        index++;
    if (index == FLOOR_MAX_CLIENTS || m->name_len > sizeof(m->name) ||
        dfab_insert_name(srv->fab, m->name, m->name_len, &addr) != 0) {
        fprintf(stderr, "dafs-bench floor server: bad hello\n");
        srv->done = 1;
        return;
    }
    srv->in_use[index] = true;
    srv->clients[index] = addr;
    floor_work *w = &server_work[index * FLOOR_MAX_OUTSTANDING];
    memset(w, 0, sizeof(*w));
    w->srv = srv;
    w->slot = index * FLOOR_MAX_OUTSTANDING;
    w->client = addr;
    w->reply.type = FLOOR_HELLO;
    w->reply.tag = m->tag;
    w->reply.client = (uint32_t)index;
    floor_send_reply(srv, w);
}

static void floor_handle(floor_server *srv, const floor_msg *m)
{
    if (m->type == FLOOR_HELLO) {
        floor_hello(srv, m);
        return;
    }
    if (m->client >= FLOOR_MAX_CLIENTS || !srv->in_use[m->client]) {
        fprintf(stderr, "dafs-bench floor server: unknown client %u\n", m->client);
        srv->done = 1;
        return;
    }
    int slot = (int)m->client * FLOOR_MAX_OUTSTANDING + (int)(m->tag % FLOOR_MAX_OUTSTANDING);
    floor_work *w = &server_work[slot];
    w->srv = srv;
    w->slot = slot;
    w->client = srv->clients[m->client];
    memset(&w->reply, 0, sizeof(w->reply));
    w->reply.type = m->type;
    w->reply.tag = m->tag;
    if (m->type == FLOOR_BYE) {
        /* the address stays in the AV until the reply went out; the slot is
         * free for the next HELLO (the AV grows by one entry per client) */
        floor_send_reply(srv, w);
        srv->in_use[m->client] = false;
        return;
    }
    if (m->type != FLOOR_OP || m->size > srv->max_size) {
        floor_send_reply(srv, w);
        srv->done = 1;
        return;
    }
    if (m->size == 0 || m->kind == BF_MSG) {
        floor_send_reply(srv, w); /* a bare message round trip */
        return;
    }
    dfab_rseg seg = {.addr = m->addr, .key = m->key, .len = m->size};
    w->op.done = floor_rma_done;
    int rc = m->kind == BF_RMA_READ
                 ? dfab_rma_read(srv->fab, w->client, srv->data, m->size, srv->data_mr, &seg, 1,
                                 &w->op)
                 : dfab_rma_write(srv->fab, w->client, srv->data, m->size, srv->data_mr, &seg,
                                  1, true, &w->op);
    if (rc != 0) {
        fprintf(stderr, "dafs-bench floor server: rma: %s\n", strerror(-rc));
        srv->done = 1;
    }
}

static void floor_rx_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)src;
    floor_rx *rx = (floor_rx *)op;
    floor_server *srv = rx->srv;
    if (status != 0) {
        if (status != -ECANCELED)
            fprintf(stderr, "dafs-bench floor server: recv: %s\n", strerror(-status));
        return;
    }
    floor_msg m;
    memset(&m, 0, sizeof(m));
    memcpy(&m, srv->rx + (size_t)rx->index * FLOOR_MSG_SIZE, len < sizeof(m) ? len : sizeof(m));
    floor_handle(srv, &m);
    if (!srv->done && floor_post_rx(srv, rx) != 0)
        srv->done = 1;
}

static int floor_server_setup(floor_server *srv, const char *provider, size_t max_size)
{
    const char *err = NULL;
    dfab_config cfg = {.provider = provider, .node = "127.0.0.1", .service = "0", .listen = true};
    int rc = dfab_open(&cfg, &srv->fab, &err);
    if (rc != 0) {
        fprintf(stderr, "dafs-bench floor server: %s\n", err ? err : strerror(-rc));
        return rc;
    }
    srv->max_size = max_size;
    srv->rx = aligned_alloc(4096, FLOOR_RX_COUNT * FLOOR_MSG_SIZE);
    srv->tx = aligned_alloc(4096, FLOOR_SLOTS * FLOOR_MSG_SIZE);
    srv->data = aligned_alloc(4096, bench_round_up(max_size, 4096));
    if (!srv->rx || !srv->tx || !srv->data)
        return -ENOMEM;
    memset(srv->data, 0xab, max_size);
    rc = dfab_mr_reg(srv->fab, srv->rx, FLOOR_RX_COUNT * FLOOR_MSG_SIZE, DFAB_ACCESS_LOCAL,
                     &srv->rx_mr);
    if (rc == 0)
        rc = dfab_mr_reg(srv->fab, srv->tx, FLOOR_SLOTS * FLOOR_MSG_SIZE, DFAB_ACCESS_LOCAL,
                         &srv->tx_mr);
    if (rc == 0)
        rc = dfab_mr_reg(srv->fab, srv->data, max_size, DFAB_ACCESS_LOCAL, &srv->data_mr);
    for (int i = 0; rc == 0 && i < FLOOR_RX_COUNT; i++) {
        server_rx[i] = (floor_rx){.op.done = floor_rx_done, .srv = srv, .index = i};
        rc = floor_post_rx(srv, &server_rx[i]);
    }
    return rc;
}

static void floor_server_teardown(floor_server *srv)
{
    dfab_mr_close(srv->rx_mr);
    dfab_mr_close(srv->tx_mr);
    dfab_mr_close(srv->data_mr);
    dfab_close(srv->fab);
    free(srv->rx);
    free(srv->tx);
    free(srv->data);
}

static volatile sig_atomic_t floor_stop_requested;

static void floor_on_sigterm(int sig)
{
    (void)sig;
    floor_stop_requested = 1;
}

/* Child process: serve until SIGTERM; report the bound port on port_fd. */
static int floor_server_main(const char *provider, size_t max_size, int port_fd)
{
    floor_server srv;
    memset(&srv, 0, sizeof(srv));
    int rc = floor_server_setup(&srv, provider, max_size);
    char port[32] = "";
    if (rc == 0)
        rc = dfab_bound_service(srv.fab, port, sizeof(port));
    if (write(port_fd, port, sizeof(port)) != (ssize_t)sizeof(port))
        rc = rc ? rc : -EIO;
    close(port_fd);
    /* after dfab_open: take SIGTERM back from the shm provider's handler */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = floor_on_sigterm;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0)
        rc = rc ? rc : -errno;
    while (rc == 0 && !srv.done && !floor_stop_requested) {
        int n = dfab_progress(srv.fab, 200);
        if (n < 0)
            rc = n;
    }
    /* let the last reply go out before the endpoint closes */
    for (int i = 0; i < 20; i++)
        (void)dfab_progress(srv.fab, 5);
    floor_server_teardown(&srv);
    return rc == 0 ? 0 : 1;
}

/* ---- client side ------------------------------------------------------- */

struct bench_floor_client {
    dfab *fab;
    dfab_addr server;
    dfab_mr *rx_mr, *tx_mr, *data_mr;
    uint8_t *rx, *tx, *data;
    size_t data_len;
    uint32_t index;   /* given by the server's HELLO reply */
    int replies;      /* replies received since last reset */
    double *sent_at;  /* per tag, while a run is going on */
    double *lat;      /* per tag: reply time - send time */
    int ntags;
};
typedef struct bench_floor_client floor_client;

typedef struct floor_crx {
    dfab_op op;
    floor_client *cl;
    int index;
} floor_crx;

static floor_crx client_rx[FLOOR_RX_COUNT];
static dfab_op client_send_ops[FLOOR_MAX_OUTSTANDING];

static int floor_client_post_rx(floor_client *cl, floor_crx *rx)
{
    return dfab_post_recv(cl->fab, cl->rx + (size_t)rx->index * FLOOR_MSG_SIZE, FLOOR_MSG_SIZE,
                          cl->rx_mr, &rx->op);
}

static void floor_client_rx_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)src;
    floor_crx *rx = (floor_crx *)op;
    floor_client *cl = rx->cl;
    if (status != 0)
        return;
    floor_msg m;
    memset(&m, 0, sizeof(m));
    memcpy(&m, cl->rx + (size_t)rx->index * FLOOR_MSG_SIZE, len < sizeof(m) ? len : sizeof(m));
    if (m.type == FLOOR_OP && cl->lat && m.tag < (uint64_t)cl->ntags)
        cl->lat[m.tag] = bench_now() - cl->sent_at[m.tag];
    if (m.type == FLOOR_HELLO)
        cl->index = m.client;
    cl->replies++;
    (void)floor_client_post_rx(cl, rx);
}

static int floor_client_send(floor_client *cl, const floor_msg *m, int slot)
{
    uint8_t *buf = cl->tx + (size_t)slot * FLOOR_MSG_SIZE;
    memcpy(buf, m, sizeof(*m));
    client_send_ops[slot].done = floor_send_done;
    return dfab_send(cl->fab, cl->server, buf, floor_msg_len(m), cl->tx_mr,
                     &client_send_ops[slot]);
}

static int floor_client_wait(floor_client *cl, int want)
{
    double deadline = bench_now() + 30.0;
    while (cl->replies < want) {
        int rc = dfab_progress(cl->fab, 100);
        if (rc < 0)
            return rc;
        if (bench_now() > deadline)
            return -ETIMEDOUT;
    }
    return 0;
}

static int floor_client_register(floor_client *cl, size_t data_len)
{
    cl->data_len = data_len;
    cl->rx = aligned_alloc(4096, FLOOR_RX_COUNT * FLOOR_MSG_SIZE);
    cl->tx = aligned_alloc(4096, FLOOR_MAX_OUTSTANDING * FLOOR_MSG_SIZE);
    cl->data = aligned_alloc(4096, bench_round_up(data_len, 4096));
    if (!cl->rx || !cl->tx || !cl->data)
        return -ENOMEM;
    memset(cl->data, 0xcd, data_len);
    int rc = dfab_mr_reg(cl->fab, cl->rx, FLOOR_RX_COUNT * FLOOR_MSG_SIZE, DFAB_ACCESS_LOCAL,
                         &cl->rx_mr);
    if (rc == 0)
        rc = dfab_mr_reg(cl->fab, cl->tx, FLOOR_MAX_OUTSTANDING * FLOOR_MSG_SIZE,
                         DFAB_ACCESS_LOCAL, &cl->tx_mr);
    if (rc == 0)
        rc = dfab_mr_reg(cl->fab, cl->data, data_len,
                         DFAB_ACCESS_LOCAL | DFAB_ACCESS_REMOTE_WRITE | DFAB_ACCESS_REMOTE_READ,
                         &cl->data_mr);
    return rc;
}

static int floor_client_setup(floor_client *cl, const char *provider, const char *port,
                              size_t data_len)
{
    const char *err = NULL;
    dfab_config cfg = {.provider = provider, .node = "127.0.0.1"};
    int rc = dfab_open(&cfg, &cl->fab, &err);
    if (rc != 0) {
        fprintf(stderr, "dafs-bench floor client: %s\n", err ? err : strerror(-rc));
        cl->fab = NULL;
        return rc;
    }
    rc = dfab_resolve(cl->fab, "127.0.0.1", port, &cl->server);
    if (rc == 0)
        rc = floor_client_register(cl, data_len);
    for (int i = 0; rc == 0 && i < FLOOR_RX_COUNT; i++) {
        client_rx[i] = (floor_crx){.op.done = floor_client_rx_done, .cl = cl, .index = i};
        rc = floor_client_post_rx(cl, &client_rx[i]);
    }
    if (rc == 0) {
        floor_msg hello = {.type = FLOOR_HELLO};
        size_t len = sizeof(hello.name);
        rc = dfab_getname(cl->fab, hello.name, &len);
        hello.name_len = (uint32_t)len;
        if (rc == 0)
            rc = floor_client_send(cl, &hello, 0);
        if (rc == 0)
            rc = floor_client_wait(cl, 1);
    }
    return rc;
}

static void floor_client_teardown(floor_client *cl)
{
    if (cl->fab) {
        floor_msg bye = {.type = FLOOR_BYE, .client = cl->index};
        cl->replies = 0;
        if (floor_client_send(cl, &bye, 0) == 0)
            (void)floor_client_wait(cl, 1);
    }
    dfab_mr_close(cl->rx_mr);
    dfab_mr_close(cl->tx_mr);
    dfab_mr_close(cl->data_mr);
    if (cl->fab)
        dfab_close(cl->fab);
    free(cl->rx);
    free(cl->tx);
    free(cl->data);
}

/* One case: `ops` requests keeping `depth` outstanding; fills r (all but the
 * server's CPU, which the caller measures). */
static int floor_client_run(floor_client *cl, const bench_floor_case *c, bench_result *r)
{
    int depth = c->depth < 1 ? 1 : (c->depth > FLOOR_MAX_OUTSTANDING ? FLOOR_MAX_OUTSTANDING
                                                                     : c->depth);
    if (c->size * (size_t)depth > cl->data_len || c->ops <= 0)
        return -EINVAL;
    cl->lat = calloc((size_t)c->ops, sizeof(double));
    cl->sent_at = calloc((size_t)c->ops, sizeof(double));
    int rc = (cl->lat && cl->sent_at) ? 0 : -ENOMEM;
    cl->ntags = c->ops;
    cl->replies = 0;
    int issued = 0;
    double cpu0 = bench_self_cpu_us();
    double t0 = bench_now();
    while (rc == 0 && cl->replies < c->ops) {
        while (rc == 0 && issued < c->ops && issued - cl->replies < depth) {
            size_t off = (size_t)(issued % depth) * c->size;
            floor_msg m = {.type = FLOOR_OP, .size = (uint32_t)c->size, .kind = c->kind,
                           .client = cl->index, .tag = (uint64_t)issued,
                           .addr = cl->data_mr->remote_addr + off, .key = cl->data_mr->key};
            cl->sent_at[issued] = bench_now();
            rc = floor_client_send(cl, &m, issued % depth);
            if (rc == 0)
                issued++;
        }
        if (rc == 0)
            rc = floor_client_wait(cl, cl->replies + 1);
    }
    double elapsed = bench_now() - t0;
    double cpu = bench_self_cpu_us() - cpu0;
    if (rc == 0)
        bench_fill_result(r, cl->lat, c->ops, elapsed, c->size, cpu / c->ops);
    free(cl->lat);
    free(cl->sent_at);
    cl->lat = cl->sent_at = NULL;
    return rc;
}

/* ---- the API ---------------------------------------------------------- */

int bench_floor_server_start(const char *provider, size_t max_size, bench_floor_server *out)
{
    memset(out, 0, sizeof(*out));
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return -e;
    }
    if (pid == 0) {
        close(pipefd[0]);
        (void)prctl(PR_SET_PDEATHSIG, SIGTERM); /* gone with dafs-bench, even if it is killed */
        _exit(floor_server_main(provider, max_size, pipefd[1]));
    }
    close(pipefd[1]);
    ssize_t got = read(pipefd[0], out->port, sizeof(out->port));
    close(pipefd[0]);
    out->pid = pid;
    out->port[sizeof(out->port) - 1] = '\0';
    if (got != (ssize_t)sizeof(out->port) || !out->port[0]) {
        bench_floor_server_stop(out);
        return -EIO;
    }
    return 0;
}

void bench_floor_server_stop(bench_floor_server *srv)
{
    if (srv->pid <= 0)
        return;
    kill(srv->pid, SIGTERM);
    for (int i = 0; i < 400; i++) { /* it notices within a progress timeout (200 ms) */
        if (waitpid(srv->pid, NULL, WNOHANG) == srv->pid) {
            srv->pid = 0;
            return;
        }
        usleep(5000);
    }
    kill(srv->pid, SIGKILL);
    waitpid(srv->pid, NULL, 0);
    srv->pid = 0;
}

bench_floor_client *bench_floor_connect(const char *provider, const char *port,
                                        size_t data_len)
{
    floor_client *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return NULL;
    if (floor_client_setup(cl, provider, port, data_len < 4096 ? 4096 : data_len) != 0) {
        floor_client_teardown(cl);
        free(cl);
        return NULL;
    }
    return cl;
}

int bench_floor_client_run(bench_floor_client *cl, pid_t server, const bench_floor_case *c,
                           bench_result *r)
{
    double srv0 = server > 0 ? bench_proc_cpu_us(server) : 0;
    r->server_cpu_us_per_op = 0;
    int rc = floor_client_run(cl, c, r);
    r->server_cpu_us_per_op = bench_server_cpu_per_op(server, srv0, c->ops);
    return rc;
}

void bench_floor_disconnect(bench_floor_client *cl)
{
    if (!cl)
        return;
    floor_client_teardown(cl);
    free(cl);
}

int bench_floor_run(const char *provider, const char *port, pid_t server,
                    const bench_floor_case *cases, size_t ncases, bench_result *results)
{
    size_t data_len = 4096;
    for (size_t i = 0; i < ncases; i++) {
        size_t need = cases[i].size * (size_t)cases[i].depth;
        if (need > data_len)
            data_len = need;
    }
    bench_floor_client *cl = bench_floor_connect(provider, port, data_len);
    int rc = cl ? 0 : -EIO;
    for (size_t i = 0; rc == 0 && i < ncases; i++)
        rc = bench_floor_client_run(cl, server, &cases[i], &results[i]);
    bench_floor_disconnect(cl);
    return rc;
}
