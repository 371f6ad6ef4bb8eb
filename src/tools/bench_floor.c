/*
 * bench_floor.c — the raw libfabric floor for dafs-bench.
 *
 * What a dafs READ_DIRECT costs with no file system in the way: a request
 * message, a server-initiated RMA write of `size` bytes into the client's
 * registered buffer (visible before the reply, as dafsd does it), and a reply
 * message.  Server and client are two processes on this machine using the
 * same transport module as dafsd and libdafs, so every dafs figure can be read
 * as a ratio to this one.
 *
 * The wire format here is private to the benchmark (a few fixed structs), not
 * the dafs protocol: the point is to measure the fabric, not our codec.
 */
#include "bench.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

enum { FLOOR_HELLO = 1, FLOOR_READ = 2, FLOOR_BYE = 3 };
/* Server CPU is read from /proc by the parent (bench_proc_cpu_us), so the
 * floor server needs no accounting of its own. */
#define FLOOR_MSG_SIZE 512
#define FLOOR_RX_COUNT 64
#define FLOOR_MAX_OUTSTANDING 32

typedef struct floor_msg {
    uint32_t type;
    uint32_t size;      /* READ: bytes to RMA-write */
    uint64_t tag;       /* echoed */
    uint64_t addr, key; /* READ: client segment */
    uint32_t name_len;  /* HELLO: client endpoint name */
    uint8_t name[256];
} floor_msg;

/* ---- server side ------------------------------------------------------- */

typedef struct floor_server {
    dfab *fab;
    dfab_mr *rx_mr, *tx_mr, *data_mr;
    uint8_t *rx, *tx, *data;
    dfab_addr client;
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
    floor_msg reply;
} floor_work;

static floor_work server_work[FLOOR_MAX_OUTSTANDING];
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
    int rc = dfab_send(srv->fab, srv->client, buf, floor_msg_len(&w->reply), srv->tx_mr,
                       &w->send_op);
    if (rc != 0)
        fprintf(stderr, "dafs-bench floor server: send: %s\n", strerror(-rc));
}

static void floor_write_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)len, (void)src;
    floor_work *w = (floor_work *)op;
    if (status != 0)
        fprintf(stderr, "dafs-bench floor server: rma write: %s\n", strerror(-status));
    floor_send_reply(w->srv, w);
}

static void floor_handle(floor_server *srv, const floor_msg *m)
{
    floor_work *w = &server_work[m->tag % FLOOR_MAX_OUTSTANDING];
    w->srv = srv;
    w->slot = (int)(m->tag % FLOOR_MAX_OUTSTANDING);
    memset(&w->reply, 0, sizeof(w->reply));
    w->reply.type = m->type;
    w->reply.tag = m->tag;
    if (m->type == FLOOR_HELLO) {
        if (m->name_len > sizeof(m->name) ||
            dfab_insert_name(srv->fab, m->name, m->name_len, &srv->client) != 0) {
            fprintf(stderr, "dafs-bench floor server: bad hello\n");
            srv->done = 1;
            return;
        }
        floor_send_reply(srv, w);
    } else if (m->type == FLOOR_READ && m->size == 0) {
        floor_send_reply(srv, w); /* a bare message round trip */
    } else if (m->type == FLOOR_READ && m->size <= srv->max_size) {
        dfab_rseg seg = {.addr = m->addr, .key = m->key, .len = m->size};
        w->op.done = floor_write_done;
        int rc = dfab_rma_write(srv->fab, srv->client, srv->data, m->size, srv->data_mr, &seg, 1,
                                true, &w->op);
        if (rc != 0) {
            fprintf(stderr, "dafs-bench floor server: rma write: %s\n", strerror(-rc));
            srv->done = 1;
        }
    } else {
        floor_send_reply(srv, w);
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
    srv->tx = aligned_alloc(4096, FLOOR_MAX_OUTSTANDING * FLOOR_MSG_SIZE);
    srv->data = aligned_alloc(4096, bench_round_up(max_size, 4096));
    if (!srv->rx || !srv->tx || !srv->data)
        return -ENOMEM;
    memset(srv->data, 0xab, max_size);
    rc = dfab_mr_reg(srv->fab, srv->rx, FLOOR_RX_COUNT * FLOOR_MSG_SIZE, DFAB_ACCESS_LOCAL,
                     &srv->rx_mr);
    if (rc == 0)
        rc = dfab_mr_reg(srv->fab, srv->tx, FLOOR_MAX_OUTSTANDING * FLOOR_MSG_SIZE,
                         DFAB_ACCESS_LOCAL, &srv->tx_mr);
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

/* Child process: serve until BYE; report the bound port on port_fd. */
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
    while (rc == 0 && !srv.done) {
        int n = dfab_progress(srv.fab, 1000);
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

typedef struct floor_client {
    dfab *fab;
    dfab_addr server;
    dfab_mr *rx_mr, *tx_mr, *data_mr;
    uint8_t *rx, *tx, *data;
    size_t data_len;
    int replies;      /* replies received since last reset */
    double *sent_at;  /* per tag, while a run is going on */
    double *lat;      /* per tag: reply time - send time */
    int ntags;
} floor_client;

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
    if (m.type == FLOOR_READ && cl->lat && m.tag < (uint64_t)cl->ntags)
        cl->lat[m.tag] = bench_now() - cl->sent_at[m.tag];
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
    double deadline = bench_now() + 10.0;
    while (cl->replies < want) {
        int rc = dfab_progress(cl->fab, 100);
        if (rc < 0)
            return rc;
        if (bench_now() > deadline)
            return -ETIMEDOUT;
    }
    return 0;
}

static int floor_client_setup(floor_client *cl, const char *provider, const char *port,
                              size_t data_len)
{
    const char *err = NULL;
    dfab_config cfg = {.provider = provider, .node = "127.0.0.1"};
    int rc = dfab_open(&cfg, &cl->fab, &err);
    if (rc != 0) {
        fprintf(stderr, "dafs-bench floor client: %s\n", err ? err : strerror(-rc));
        return rc;
    }
    rc = dfab_resolve(cl->fab, "127.0.0.1", port, &cl->server);
    cl->data_len = data_len;
    cl->rx = aligned_alloc(4096, FLOOR_RX_COUNT * FLOOR_MSG_SIZE);
    cl->tx = aligned_alloc(4096, FLOOR_MAX_OUTSTANDING * FLOOR_MSG_SIZE);
    cl->data = aligned_alloc(4096, bench_round_up(data_len, 4096));
    if (!cl->rx || !cl->tx || !cl->data)
        return -ENOMEM;
    if (rc == 0)
        rc = dfab_mr_reg(cl->fab, cl->rx, FLOOR_RX_COUNT * FLOOR_MSG_SIZE, DFAB_ACCESS_LOCAL,
                         &cl->rx_mr);
    if (rc == 0)
        rc = dfab_mr_reg(cl->fab, cl->tx, FLOOR_MAX_OUTSTANDING * FLOOR_MSG_SIZE,
                         DFAB_ACCESS_LOCAL, &cl->tx_mr);
    if (rc == 0)
        rc = dfab_mr_reg(cl->fab, cl->data, data_len,
                         DFAB_ACCESS_LOCAL | DFAB_ACCESS_REMOTE_WRITE, &cl->data_mr);
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
    dfab_mr_close(cl->rx_mr);
    dfab_mr_close(cl->tx_mr);
    dfab_mr_close(cl->data_mr);
    dfab_close(cl->fab);
    free(cl->rx);
    free(cl->tx);
    free(cl->data);
}

/* `ops` reads of `size` bytes keeping `depth` outstanding; fills r (all but
 * the server's CPU, which the caller measures). */
static int floor_client_run(floor_client *cl, size_t size, int depth, int ops, bench_result *r)
{
    cl->lat = calloc((size_t)ops, sizeof(double));
    cl->sent_at = calloc((size_t)ops, sizeof(double));
    int rc = (cl->lat && cl->sent_at) ? 0 : -ENOMEM;
    cl->ntags = ops;
    cl->replies = 0;
    int issued = 0;
    double cpu0 = bench_self_cpu_us();
    double t0 = bench_now();
    while (rc == 0 && cl->replies < ops) {
        while (rc == 0 && issued < ops && issued - cl->replies < depth) {
            size_t off = (size_t)(issued % depth) * size;
            floor_msg m = {.type = FLOOR_READ, .size = (uint32_t)size, .tag = (uint64_t)issued,
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
        bench_fill_result(r, cl->lat, ops, elapsed, size, cpu / ops);
    free(cl->lat);
    free(cl->sent_at);
    cl->lat = cl->sent_at = NULL;
    return rc;
}

int bench_floor(const char *provider, const bench_floor_case *cases, size_t ncases,
                bench_result *results)
{
    size_t max_size = 0;
    for (size_t i = 0; i < ncases; i++) {
        size_t need = cases[i].size * (size_t)cases[i].depth;
        if (need > max_size)
            max_size = need;
    }
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        close(pipefd[0]);
        _exit(floor_server_main(provider, max_size, pipefd[1]));
    }
    close(pipefd[1]);
    char port[32] = "";
    ssize_t got = read(pipefd[0], port, sizeof(port));
    close(pipefd[0]);
    int rc = (got == (ssize_t)sizeof(port) && port[0]) ? 0 : -EIO;

    floor_client cl;
    memset(&cl, 0, sizeof(cl));
    if (rc == 0)
        rc = floor_client_setup(&cl, provider, port, max_size);
    for (size_t i = 0; rc == 0 && i < ncases; i++) {
        double srv0 = bench_proc_cpu_us(pid);
        rc = floor_client_run(&cl, cases[i].size, cases[i].depth, cases[i].ops, &results[i]);
        results[i].server_cpu_us_per_op = (bench_proc_cpu_us(pid) - srv0) / cases[i].ops;
    }
    if (cl.fab) {
        floor_msg bye = {.type = FLOOR_BYE};
        cl.replies = 0;
        if (floor_client_send(&cl, &bye, 0) == 0)
            (void)floor_client_wait(&cl, 1);
        floor_client_teardown(&cl);
    }
    int status = 0;
    if (rc != 0)
        kill(pid, SIGTERM);
    if (waitpid(pid, &status, 0) < 0 && rc == 0)
        rc = -errno;
    return rc;
}
