/*
 * fabric_test.c — end-to-end test of src/transport on one provider.
 *
 * Usage: fabric_test <provider>   (e.g. "tcp;ofi_rxm" or "shm"; ',' may stand
 * for ';' because CMake splits test arguments at ';')
 *
 * The parent never touches libfabric (forking a process that has libfabric
 * state is unsafe); it forks a server process, reads the port the server
 * bound (service "0") from a pipe, then forks a client process, and finally
 * runs the single-process checks (bad provider, idle CPU) in further
 * children.  Each child exits 0 on success; the parent prints a summary and
 * fails if any child failed or hung.
 *
 * Client/server protocol, the same pattern the real server uses: the client
 * sends HELLO carrying its own endpoint name; the server inserts that name
 * and replies to it; then they exchange pings, and the server RMA-writes and
 * RMA-reads the client's registered memory (single and multi-segment),
 * replying with a checksum that the client checks the moment the reply
 * arrives — so a write that is not visible before the reply fails the test.
 * The 4 KiB write round trip and 1 MiB write throughput are printed (not
 * asserted) as the transport's raw floor.
 */
#include "transport.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "[%s] FAIL %s:%d: %s: ", role, __FILE__, __LINE__, #cond);             \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

enum {
    MSG_HELLO = 1,
    MSG_PING,
    MSG_WRITE,
    MSG_READ,
    MSG_BW,
    MSG_BIG,
    MSG_BYE,
    MSG_FLOOD,
    MSG_THREADS,
    MSG_REPLY
};

#define MAX_SEGS   8
#define NRECV      8
#define WAIT_MS    30000
#define BIG_BUF    (64u << 20)
#define BW_SLOT    (1u << 20)
#define BW_DEPTH   8
#define BW_OPS     256
#define LAT_ITERS  2000
#define MT_THREADS 4
#define MT_ITERS   50
#define MT_CHUNK   (256u << 10)
#define FLOOD      5000 /* more than any provider's tx queue: exercises -FI_EAGAIN */

struct msg {
    uint32_t type;
    uint32_t nsegs;
    uint64_t seq;
    uint64_t len;
    uint64_t seed;
    uint64_t sum;
    uint64_t extra; /* BW: nanoseconds taken */
    dfab_rseg segs[MAX_SEGS];
    uint32_t namelen;
    uint8_t name[256];
};

struct slot {
    dfab_op op;
    struct msg m;
    int status;
    size_t len;
    dfab_addr src;
};

struct flag_op {
    dfab_op op;
    volatile int done;
    int status;
};

static const char *role = "parent";
static const char *provider;

/* receive ring: callbacks append finished slots, the main loop pops them */
static struct slot *ready[NRECV * 2];
static unsigned ready_head, ready_tail;

static void recv_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    struct slot *s = (struct slot *)op;
    s->status = status;
    s->len = len;
    s->src = src;
    ready[ready_tail++ % (NRECV * 2)] = s;
}

static void flag_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)len;
    (void)src;
    struct flag_op *fo = (struct flag_op *)op;
    fo->status = status;
    __atomic_store_n(&fo->done, 1, __ATOMIC_RELEASE);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void wait_flag(dfab *f, struct flag_op *fo)
{
    int64_t deadline = now_ns() + (int64_t)WAIT_MS * 1000000;
    while (!fo->done) {
        int ret = dfab_progress(f, 100);
        CHECK(ret >= 0, "dfab_progress: %s", strerror(-ret));
        CHECK(now_ns() < deadline, "operation did not complete in %d ms", WAIT_MS);
    }
}

static struct slot *wait_msg(dfab *f)
{
    int64_t deadline = now_ns() + (int64_t)WAIT_MS * 1000000;
    while (ready_head == ready_tail) {
        int ret = dfab_progress(f, 100);
        CHECK(ret >= 0, "dfab_progress: %s", strerror(-ret));
        CHECK(now_ns() < deadline, "no message in %d ms", WAIT_MS);
    }
    return ready[ready_head++ % (NRECV * 2)];
}

static void post_slot(dfab *f, struct slot *s, dfab_mr *mr)
{
    s->op.done = recv_done;
    int ret = dfab_post_recv(f, &s->m, sizeof s->m, mr, &s->op);
    CHECK(ret == 0, "post_recv: %s", strerror(-ret));
}

static void send_msg(dfab *f, dfab_addr dst, struct msg *m, dfab_mr *mr)
{
    struct flag_op fo = {.op.done = flag_done};
    int ret = dfab_send(f, dst, m, sizeof *m, mr, &fo.op);
    CHECK(ret == 0, "send: %s", strerror(-ret));
    wait_flag(f, &fo);
    CHECK(fo.status == 0, "send completion: %s", strerror(-fo.status));
}

static void fill_pattern(uint8_t *p, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (uint8_t)x;
    }
}

static uint64_t checksum(const uint8_t *p, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ^ len;
}

static dfab *open_or_die(const dfab_config *cfg)
{
    dfab *f = NULL;
    const char *err = NULL;
    int ret = dfab_open(cfg, &f, &err);
    CHECK(ret == 0, "dfab_open(%s): %s (%s)", provider, strerror(-ret), err ? err : "?");
    const dfab_limits *l = dfab_get_limits(f);
    CHECK(strcmp(l->provider, provider) == 0, "got provider %s", l->provider);
    return f;
}

/* ----------------------------------------------------------- server -- */

struct server {
    dfab *f;
    dfab_mr *slots_mr, *out_mr, *big_mr;
    struct slot *slots;
    struct msg *out;
    uint8_t *big;
    dfab_addr client;
};

static void server_rma(struct server *s, const struct msg *req, bool write)
{
    struct flag_op fo = {.op.done = flag_done};
    int ret;
    CHECK(req->len <= BIG_BUF && req->nsegs <= MAX_SEGS, "bad request");
    if (write) {
        fill_pattern(s->big, req->len, req->seed);
        ret = dfab_rma_write(s->f, s->client, s->big, req->len, s->big_mr, req->segs, req->nsegs,
                             true, &fo.op);
    } else {
        memset(s->big, 0, req->len);
        ret = dfab_rma_read(s->f, s->client, s->big, req->len, s->big_mr, req->segs, req->nsegs,
                            &fo.op);
    }
    CHECK(ret == 0, "rma post: %s", strerror(-ret));
    wait_flag(s->f, &fo);
    CHECK(fo.status == 0, "rma completion: %s", strerror(-fo.status));
    s->out->sum = checksum(s->big, req->len);
}

/* Write BW_OPS x 1 MiB into the client's BW_DEPTH slots, BW_DEPTH outstanding. */
static void server_bandwidth(struct server *s, const struct msg *req)
{
    struct flag_op ops[BW_DEPTH];
    int posted = 0;
    int64_t start = now_ns();
    for (int i = 0; i < BW_DEPTH; i++)
        ops[i] = (struct flag_op){.done = 1};
    while (posted < BW_OPS) {
        for (int i = 0; i < BW_DEPTH && posted < BW_OPS; i++) {
            if (!ops[i].done)
                continue;
            CHECK(ops[i].status == 0, "bw completion: %s", strerror(-ops[i].status));
            ops[i] = (struct flag_op){.op.done = flag_done};
            dfab_rseg seg = {req->segs[0].addr + (uint64_t)i * BW_SLOT, req->segs[0].key, BW_SLOT};
            int ret = dfab_rma_write(s->f, s->client, s->big + (size_t)i * BW_SLOT, BW_SLOT,
                                     s->big_mr, &seg, 1, false, &ops[i].op);
            CHECK(ret == 0, "bw write: %s", strerror(-ret));
            posted++;
        }
        int ret = dfab_progress(s->f, 100);
        CHECK(ret >= 0, "progress");
    }
    for (int i = 0; i < BW_DEPTH; i++) {
        wait_flag(s->f, &ops[i]);
        CHECK(ops[i].status == 0, "bw completion: %s", strerror(-ops[i].status));
    }
    s->out->extra = (uint64_t)(now_ns() - start);
}

/* Receive FLOOD messages the client posts back to back, reposting as we go. */
static void server_flood(struct server *s)
{
    for (int i = 0; i < FLOOD; i++) {
        struct slot *in = wait_msg(s->f);
        CHECK(in->status == 0 && in->m.type == MSG_PING && in->m.seq == (uint64_t)i,
              "flood message %d: status %d type %u seq %" PRIu64, i, in->status, in->m.type,
              in->m.seq);
        post_slot(s->f, in, s->slots_mr);
    }
}

/* Worker threads post RMA while the main thread alone progresses — the
 * server's real threading pattern (FI_THREAD_SAFE endpoint). */
struct mt_worker {
    struct server *s;
    const struct msg *req;
    int index;
    pthread_t thread;
    struct flag_op fo;
    int failures;
    int finished;
};

static void *mt_worker_main(void *arg)
{
    struct mt_worker *w = arg;
    uint8_t *src = w->s->big + (size_t)w->index * MT_CHUNK;
    dfab_rseg seg = {w->req->segs[0].addr + (uint64_t)w->index * MT_CHUNK, w->req->segs[0].key,
                     MT_CHUNK};
    for (int i = 0; i < MT_ITERS; i++) {
        fill_pattern(src, MT_CHUNK, (uint64_t)w->index * 1000 + (uint64_t)i);
        w->fo = (struct flag_op){.op.done = flag_done};
        int ret = dfab_rma_write(w->s->f, w->s->client, src, MT_CHUNK, w->s->big_mr, &seg, 1, true,
                                 &w->fo.op);
        if (ret) {
            w->failures++;
            break;
        }
        while (!__atomic_load_n(&w->fo.done, __ATOMIC_ACQUIRE))
            sched_yield();
        if (w->fo.status)
            w->failures++;
    }
    __atomic_store_n(&w->finished, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void server_threads(struct server *s, const struct msg *req)
{
    struct mt_worker w[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++) {
        w[i] = (struct mt_worker){.s = s, .req = req, .index = i};
        CHECK(pthread_create(&w[i].thread, NULL, mt_worker_main, &w[i]) == 0, "thread");
    }
    /* progress until every worker has finished its last write */
    for (;;) {
        int busy = 0;
        for (int i = 0; i < MT_THREADS; i++)
            busy += !__atomic_load_n(&w[i].finished, __ATOMIC_ACQUIRE);
        if (!busy)
            break;
        int ret = dfab_progress(s->f, 10);
        CHECK(ret >= 0, "progress: %s", strerror(-ret));
    }
    for (int i = 0; i < MT_THREADS; i++)
        pthread_join(w[i].thread, NULL);
    for (int i = 0; i < MT_THREADS; i++)
        CHECK(w[i].failures == 0, "worker %d: %d failures", i, w[i].failures);
}

static void server_handle_hello(struct server *s, struct slot *in)
{
    CHECK(in->len == sizeof in->m && in->m.namelen <= sizeof in->m.name, "bad hello");
    int ret = dfab_insert_name(s->f, in->m.name, in->m.namelen, &s->client);
    CHECK(ret == 0, "insert_name: %s", strerror(-ret));
}

static void server_expect_oversized(struct server *s)
{
    struct slot *bad = wait_msg(s->f);
    CHECK(bad->status < 0, "oversized message was not rejected (len %zu)", bad->len);
    fprintf(stderr, "[server] oversized message rejected: %s\n", strerror(-bad->status));
    post_slot(s->f, bad, s->slots_mr);
}

/* Handle one request; returns false after BYE. */
static bool server_serve_one(struct server *s, uint64_t *src_checked)
{
    struct slot *in = wait_msg(s->f);
    CHECK(in->status == 0, "recv error %s", strerror(-in->status));
    struct msg req = in->m;
    if (req.type != MSG_HELLO && in->src != DFAB_ADDR_UNSPEC) {
        CHECK(in->src == s->client, "src %" PRIu64 " != client %" PRIu64, in->src, s->client);
        (*src_checked)++;
    }
    if (req.type == MSG_HELLO)
        server_handle_hello(s, in);
    post_slot(s->f, in, s->slots_mr);
    memset(s->out, 0, sizeof *s->out);
    s->out->type = MSG_REPLY;
    s->out->seq = req.seq;
    switch (req.type) {
    case MSG_HELLO:
    case MSG_PING:
    case MSG_BYE:
        break;
    case MSG_WRITE:
        server_rma(s, &req, true);
        break;
    case MSG_READ:
        server_rma(s, &req, false);
        break;
    case MSG_BW:
        server_bandwidth(s, &req);
        break;
    case MSG_THREADS:
        server_threads(s, &req);
        break;
    case MSG_FLOOD:
        send_msg(s->f, s->client, s->out, s->out_mr); /* go ahead */
        server_flood(s);
        break;
    case MSG_BIG:
        /* last request: tcp;ofi_rxm drops the connection after truncating */
        server_expect_oversized(s);
        return false;
    default:
        CHECK(0, "unknown message type %u", req.type);
    }
    send_msg(s->f, s->client, s->out, s->out_mr);
    return true;
}

static int server_main(int port_fd)
{
    role = "server";
    dfab_config cfg = {.provider = provider, .node = "127.0.0.1", .service = "0", .listen = true};
    struct server s = {.f = open_or_die(&cfg)};
    char port[32];
    int ret = dfab_bound_service(s.f, port, sizeof port);
    CHECK(ret == 0 && strcmp(port, "0") != 0, "bound service '%s'", port);
    const dfab_limits *l = dfab_get_limits(s.f);
    fprintf(stderr,
            "[server] %s port %s max_msg %zu inject %zu rma_iov %zu mr_mode 0x%" PRIx64 " saw %d\n",
            l->provider, port, l->max_msg_size, l->inject_size, l->rma_iov_limit, l->mr_mode,
            l->write_then_send_ordered);
    s.slots = calloc(NRECV, sizeof *s.slots);
    s.out = calloc(1, sizeof *s.out);
    s.big = malloc(BIG_BUF);
    CHECK(s.slots && s.out && s.big, "oom");
    CHECK(dfab_mr_reg(s.f, s.slots, NRECV * sizeof *s.slots, DFAB_ACCESS_LOCAL, &s.slots_mr) == 0,
          "mr");
    CHECK(dfab_mr_reg(s.f, s.out, sizeof *s.out, DFAB_ACCESS_LOCAL, &s.out_mr) == 0, "mr");
    CHECK(dfab_mr_reg(s.f, s.big, BIG_BUF, DFAB_ACCESS_LOCAL, &s.big_mr) == 0, "mr");
    for (int i = 0; i < NRECV; i++)
        post_slot(s.f, &s.slots[i], s.slots_mr);
    CHECK(write(port_fd, port, strlen(port) + 1) == (ssize_t)strlen(port) + 1, "pipe");
    close(port_fd);
    uint64_t src_checked = 0;
    while (server_serve_one(&s, &src_checked))
        ;
    fprintf(stderr, "[server] source address reported on %" PRIu64 " receives\n", src_checked);
    ret = dfab_remove_addr(s.f, s.client);
    CHECK(ret == 0, "remove_addr: %s", strerror(-ret));
    dfab_mr_close(s.slots_mr);
    dfab_mr_close(s.out_mr);
    dfab_mr_close(s.big_mr);
    dfab_close(s.f);
    free(s.slots);
    free(s.out);
    free(s.big);
    return 0;
}

/* ----------------------------------------------------------- client -- */

struct client {
    dfab *f;
    dfab_mr *slots_mr, *out_mr, *big_mr;
    struct slot *slots;
    struct msg *out;
    uint8_t *big;
    dfab_addr server;
    uint64_t seq;
};

/* Send the request in c->out and return the reply (slot already reposted). */
static struct msg call(struct client *c)
{
    c->out->seq = ++c->seq;
    send_msg(c->f, c->server, c->out, c->out_mr);
    struct slot *in = wait_msg(c->f);
    CHECK(in->status == 0, "reply error %s", strerror(-in->status));
    struct msg reply = in->m;
    post_slot(c->f, in, c->slots_mr);
    CHECK(reply.type == MSG_REPLY && reply.seq == c->seq, "reply %u seq %" PRIu64, reply.type,
          reply.seq);
    return reply;
}

static void request(struct client *c, uint32_t type)
{
    memset(c->out, 0, sizeof *c->out);
    c->out->type = type;
}

static void client_hello(struct client *c)
{
    request(c, MSG_HELLO);
    size_t len = sizeof c->out->name;
    int ret = dfab_getname(c->f, c->out->name, &len);
    CHECK(ret == 0, "getname: %s", strerror(-ret));
    c->out->namelen = (uint32_t)len;
    call(c);
}

static void client_pings(struct client *c, int n)
{
    for (int i = 0; i < n; i++) {
        request(c, MSG_PING);
        call(c);
    }
}

/* Segments of the client's big buffer, `nsegs` pieces of odd sizes with gaps. */
static size_t make_segs(struct client *c, size_t len, uint32_t nsegs, dfab_rseg *segs)
{
    uint64_t off = 0;
    size_t left = len;
    for (uint32_t i = 0; i < nsegs; i++) {
        uint64_t piece = i + 1 == nsegs ? left : left / (nsegs - i) + (i * 7 + 3) % 13;
        if (piece > left)
            piece = left;
        off += 17 * i; /* a gap */
        segs[i] = (dfab_rseg){c->big_mr->remote_addr + off, c->big_mr->key, piece};
        off += piece;
        left -= piece;
    }
    return (size_t)off; /* extent used */
}

static uint64_t gather_checksum(struct client *c, const dfab_rseg *segs, uint32_t nsegs, size_t len)
{
    uint8_t *tmp = malloc(len);
    CHECK(tmp, "oom");
    size_t at = 0;
    for (uint32_t i = 0; i < nsegs; i++) {
        memcpy(tmp + at, c->big + (segs[i].addr - c->big_mr->remote_addr), segs[i].len);
        at += segs[i].len;
    }
    uint64_t sum = checksum(tmp, len);
    free(tmp);
    return sum;
}

static void client_write_test(struct client *c, size_t len, uint32_t nsegs)
{
    request(c, MSG_WRITE);
    c->out->len = len;
    c->out->seed = len * 3 + nsegs;
    c->out->nsegs = nsegs;
    size_t extent = make_segs(c, len, nsegs, c->out->segs);
    CHECK(extent <= BIG_BUF, "test bug");
    memset(c->big, 0, extent);
    struct msg reply = call(c);
    /* check at once: the data must have been visible before the reply */
    uint64_t got = gather_checksum(c, c->out->segs, nsegs, len);
    uint8_t *want = malloc(len);
    CHECK(want, "oom");
    fill_pattern(want, len, c->out->seed);
    uint64_t expected = checksum(want, len);
    free(want);
    CHECK(got == expected && reply.sum == expected,
          "RMA write of %zu bytes in %u segs: client sum %" PRIx64 " server %" PRIx64
          " expected %" PRIx64,
          len, nsegs, got, reply.sum, expected);
    fprintf(stderr, "[client] ok: RMA write %zu bytes, %u segment(s)\n", len, nsegs);
}

static void client_read_test(struct client *c, size_t len, uint32_t nsegs)
{
    request(c, MSG_READ);
    c->out->len = len;
    c->out->nsegs = nsegs;
    make_segs(c, len, nsegs, c->out->segs);
    for (uint32_t i = 0; i < nsegs; i++)
        fill_pattern(c->big + (c->out->segs[i].addr - c->big_mr->remote_addr), c->out->segs[i].len,
                     i + len);
    uint64_t expected = gather_checksum(c, c->out->segs, nsegs, len);
    struct msg reply = call(c);
    CHECK(reply.sum == expected,
          "RMA read of %zu bytes in %u segs: server sum %" PRIx64 " expected %" PRIx64, len, nsegs,
          reply.sum, expected);
    fprintf(stderr, "[client] ok: RMA read %zu bytes, %u segment(s)\n", len, nsegs);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Raw floor: request -> server RMA-writes 4 KiB -> reply, QD1; and 1 MiB
 * writes with 8 outstanding.  Printed only, never asserted. */
static void client_measure(struct client *c)
{
    static int64_t lat[LAT_ITERS];
    for (int i = 0; i < LAT_ITERS; i++) {
        request(c, MSG_WRITE);
        c->out->len = 4096;
        c->out->seed = (uint64_t)i;
        c->out->nsegs = 1;
        c->out->segs[0] = (dfab_rseg){c->big_mr->remote_addr, c->big_mr->key, 4096};
        int64_t t0 = now_ns();
        call(c);
        lat[i] = now_ns() - t0;
    }
    qsort(lat, LAT_ITERS, sizeof lat[0], cmp_i64);
    request(c, MSG_BW);
    c->out->nsegs = 1;
    c->out->segs[0] = (dfab_rseg){c->big_mr->remote_addr, c->big_mr->key, BW_SLOT * BW_DEPTH};
    struct msg reply = call(c);
    double gbps = (double)BW_OPS * BW_SLOT / (double)reply.extra;
    fprintf(stderr,
            "[client] FLOOR %s: 4K write round trip median %.1f us (p10 %.1f, p90 %.1f, n=%d); "
            "1 MiB writes x%d outstanding: %.2f GB/s\n",
            provider, lat[LAT_ITERS / 2] / 1e3, lat[LAT_ITERS / 10] / 1e3,
            lat[LAT_ITERS * 9 / 10] / 1e3, LAT_ITERS, BW_DEPTH, gbps);
}

static void client_oversized(struct client *c)
{
    const dfab_limits *l = dfab_get_limits(c->f);
    /* larger than max_msg_size: refused before anything is posted */
    if (l->max_msg_size < SIZE_MAX) {
        struct flag_op fo = {.op.done = flag_done};
        int ret = dfab_send(c->f, c->server, c->big, l->max_msg_size + 1, c->big_mr, &fo.op);
        CHECK(ret == -EMSGSIZE, "send > max_msg_size returned %d", ret);
        ret = dfab_post_recv(c->f, c->big, l->max_msg_size + 1, c->big_mr, &fo.op);
        CHECK(ret == -EMSGSIZE, "recv > max_msg_size returned %d", ret);
        fprintf(stderr, "[client] ok: > max_msg_size (%zu) refused\n", l->max_msg_size);
    }
    /* larger than the peer's receive buffer: the server must see an error
     * (and then stops; the provider may have dropped the connection) */
    request(c, MSG_BIG);
    c->out->seq = ++c->seq;
    send_msg(c->f, c->server, c->out, c->out_mr);
    size_t big =
        sizeof(struct msg) + 512; /* eager-sized: rendezvous truncation kills rxm connections */
    struct flag_op fo = {.op.done = flag_done};
    int ret = dfab_send(c->f, c->server, c->big, big, c->big_mr, &fo.op);
    CHECK(ret == 0, "oversized send post: %s", strerror(-ret));
    wait_flag(c->f, &fo);
    fprintf(stderr, "[client] ok: oversized messages rejected (send status %d)\n", fo.status);
}

/* Post FLOOD sends without waiting, more than the tx queue holds, so posts hit
 * -FI_EAGAIN and the transport must progress and retry. */
static void client_flood(struct client *c)
{
    request(c, MSG_FLOOD);
    call(c); /* the server is now receiving */
    struct msg *msgs = calloc(FLOOD, sizeof *msgs);
    struct flag_op *ops = calloc(FLOOD, sizeof *ops);
    dfab_mr *mr;
    CHECK(msgs && ops, "oom");
    CHECK(dfab_mr_reg(c->f, msgs, FLOOD * sizeof *msgs, DFAB_ACCESS_LOCAL, &mr) == 0, "mr");
    for (int i = 0; i < FLOOD; i++) {
        msgs[i].type = MSG_PING;
        msgs[i].seq = (uint64_t)i;
        ops[i].op.done = flag_done;
        int ret = dfab_send(c->f, c->server, &msgs[i], sizeof msgs[i], mr, &ops[i].op);
        CHECK(ret == 0, "flood send %d: %s", i, strerror(-ret));
    }
    for (int i = 0; i < FLOOD; i++) {
        wait_flag(c->f, &ops[i]);
        CHECK(ops[i].status == 0, "flood send %d completion: %s", i, strerror(-ops[i].status));
    }
    struct slot *in = wait_msg(c->f); /* the server's reply to FLOOD */
    CHECK(in->status == 0 && in->m.seq == c->seq, "flood end reply");
    post_slot(c->f, in, c->slots_mr);
    dfab_mr_close(mr);
    free(msgs);
    free(ops);
    fprintf(stderr, "[client] ok: %d back-to-back sends\n", FLOOD);
}

static void client_threads(struct client *c)
{
    request(c, MSG_THREADS);
    c->out->nsegs = 1;
    c->out->segs[0] = (dfab_rseg){c->big_mr->remote_addr, c->big_mr->key, MT_THREADS * MT_CHUNK};
    memset(c->big, 0, MT_THREADS * MT_CHUNK);
    call(c);
    uint8_t *want = malloc(MT_CHUNK);
    CHECK(want, "oom");
    for (int i = 0; i < MT_THREADS; i++) {
        fill_pattern(want, MT_CHUNK, (uint64_t)i * 1000 + MT_ITERS - 1);
        CHECK(memcmp(want, c->big + (size_t)i * MT_CHUNK, MT_CHUNK) == 0,
              "worker %d's last write not visible", i);
    }
    free(want);
    fprintf(stderr, "[client] ok: %d server threads x %d RMA writes\n", MT_THREADS, MT_ITERS);
}

static void client_bad_input(struct client *c)
{
    struct flag_op fo = {.op.done = flag_done};
    /* large send without an MR (needs a descriptor) */
    int ret = dfab_send(c->f, c->server, c->big, 8192, NULL, &fo.op);
    CHECK(ret == -EINVAL, "no-mr send %d", ret);
    /* buffer outside the MR */
    ret = dfab_send(c->f, c->server, c->big + BIG_BUF - 10, 4096, c->big_mr, &fo.op);
    CHECK(ret == -EINVAL, "send outside mr %d", ret);
    /* segments shorter than the RMA */
    dfab_rseg seg = {c->big_mr->remote_addr, c->big_mr->key, 100};
    ret = dfab_rma_write(c->f, c->server, c->big, 200, c->big_mr, &seg, 1, true, &fo.op);
    CHECK(ret == -EINVAL, "short segments %d", ret);
    /* junk peer name */
    dfab_addr a;
    ret = dfab_insert_name(c->f, "", 0, &a);
    CHECK(ret < 0, "empty name inserted");
    fprintf(stderr, "[client] ok: bad input rejected\n");
}

static int client_main(const char *port)
{
    role = "client";
    dfab_config cfg = {.provider = provider, .node = "127.0.0.1"};
    struct client c = {.f = open_or_die(&cfg)};
    int ret = dfab_resolve(c.f, "127.0.0.1", port, &c.server);
    CHECK(ret == 0, "resolve 127.0.0.1:%s: %s", port, strerror(-ret));
    c.slots = calloc(NRECV, sizeof *c.slots);
    c.out = calloc(1, sizeof *c.out);
    c.big = malloc(BIG_BUF);
    CHECK(c.slots && c.out && c.big, "oom");
    unsigned remote = DFAB_ACCESS_LOCAL | DFAB_ACCESS_REMOTE_READ | DFAB_ACCESS_REMOTE_WRITE;
    CHECK(dfab_mr_reg(c.f, c.slots, NRECV * sizeof *c.slots, DFAB_ACCESS_LOCAL, &c.slots_mr) == 0,
          "mr");
    CHECK(dfab_mr_reg(c.f, c.out, sizeof *c.out, DFAB_ACCESS_LOCAL, &c.out_mr) == 0, "mr");
    CHECK(dfab_mr_reg(c.f, c.big, BIG_BUF, remote, &c.big_mr) == 0, "mr");
    for (int i = 0; i < NRECV; i++)
        post_slot(c.f, &c.slots[i], c.slots_mr);

    client_hello(&c);
    client_pings(&c, 1000);
    fprintf(stderr, "[client] ok: hello + 1000 ping-pongs\n");
    client_write_test(&c, 4096, 1);
    client_write_test(&c, (1u << 20) + 3, 1);
    client_write_test(&c, BIG_BUF, 1);
    client_read_test(&c, 4096, 1);
    client_read_test(&c, (1u << 20) + 3, 1);
    client_read_test(&c, BIG_BUF - 4096, 1);
    client_write_test(&c, 3 * 4096 + 1001, 5);
    client_read_test(&c, 3 * 4096 + 1001, 5);
    client_write_test(&c, (2u << 20) + 12345, 7);
    client_read_test(&c, (2u << 20) + 12345, 7);
    if (!getenv("FABRIC_TEST_NO_MEASURE"))
        client_measure(&c);
    client_bad_input(&c);
    client_threads(&c);
    client_flood(&c);
    client_pings(&c, 10);
    client_oversized(&c); /* last: the provider may drop the connection */
    dfab_mr_close(c.slots_mr);
    dfab_mr_close(c.out_mr);
    dfab_mr_close(c.big_mr);
    dfab_close(c.f);
    free(c.slots);
    free(c.out);
    free(c.big);
    return 0;
}

/* ----------------------------------------------- single-process checks -- */

static int bad_provider_main(void)
{
    role = "bad-provider";
    dfab_config cfg = {.provider = "no_such_provider"};
    dfab *f = NULL;
    const char *err = NULL;
    int ret = dfab_open(&cfg, &f, &err);
    CHECK(ret < 0 && f == NULL, "open succeeded");
    CHECK(err && strstr(err, "no_such_provider"), "errmsg '%s'", err ? err : "(null)");
    fprintf(stderr, "[bad-provider] ok: %s\n", err);
    ret = dfab_open(NULL, NULL, NULL);
    CHECK(ret == -EINVAL, "NULL out accepted");
    /* default choice skips net/sockets/shm and prefers tcp;ofi_rxm (libfabric
     * reads FI_PROVIDER once, so this only makes sense without it) */
    if (getenv("FI_PROVIDER")) {
        fprintf(stderr, "[bad-provider] FI_PROVIDER set: default choice not checked\n");
        return 0;
    }
    unsetenv("DAFS_PROVIDER");
    ret = dfab_open(NULL, &f, &err);
    CHECK(ret == 0, "default open: %s", err);
    CHECK(strcmp(dfab_get_limits(f)->provider, "tcp;ofi_rxm") == 0, "default provider %s",
          dfab_get_limits(f)->provider);
    dfab_close(f);
    setenv("DAFS_PROVIDER", "shm", 1);
    ret = dfab_open(NULL, &f, &err);
    CHECK(ret == 0, "DAFS_PROVIDER=shm open: %s", err);
    CHECK(strcmp(dfab_get_limits(f)->provider, "shm") == 0, "DAFS_PROVIDER gave %s",
          dfab_get_limits(f)->provider);
    dfab_close(f);
    fprintf(stderr, "[bad-provider] ok: default is tcp;ofi_rxm, DAFS_PROVIDER honoured\n");
    return 0;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void *wake_later(void *arg)
{
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    dfab_wake(arg);
    return NULL;
}

static int idle_main(bool listen)
{
    role = listen ? "idle-server" : "idle-client";
    dfab_config cfg = {.provider = provider, .node = "127.0.0.1", .service = "0", .listen = listen};
    dfab *f = open_or_die(&cfg);
    static struct slot slot;
    dfab_mr *mr;
    CHECK(dfab_mr_reg(f, &slot, sizeof slot, DFAB_ACCESS_LOCAL, &mr) == 0, "mr");
    post_slot(f, &slot, mr);
    /* best of 3: a spinning wait fails every time, a noisy machine rarely */
    double cpu = 1e9;
    int64_t wall = 0, t0;
    int ret;
    for (int attempt = 0; attempt < 3 && cpu >= 0.050; attempt++) {
        double cpu0 = cpu_seconds();
        t0 = now_ns();
        ret = dfab_progress(f, 300);
        wall = now_ns() - t0;
        cpu = cpu_seconds() - cpu0;
        CHECK(ret == 0, "idle progress returned %d", ret);
        CHECK(wall >= 290 * 1000000LL && wall < 2000 * 1000000LL, "blocked %.1f ms", wall / 1e6);
    }
    CHECK(cpu < 0.050, "idle progress burned %.1f ms CPU in %.1f ms", cpu * 1e3, wall / 1e6);
    /* dfab_wake from another thread ends a blocked progress early */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, wake_later, f) == 0, "thread");
    t0 = now_ns();
    ret = dfab_progress(f, 5000);
    wall = now_ns() - t0;
    pthread_join(t, NULL);
    CHECK(ret == 0 && wall < 1000 * 1000000LL, "wake took %.1f ms", wall / 1e6);
    fprintf(stderr, "[%s] ok: idle progress %.1f ms CPU over 300 ms; woken after %.1f ms\n", role,
            cpu * 1e3, wall / 1e6);
    dfab_mr_close(mr); /* MRs first: the domain cannot close under them */
    dfab_close(f);     /* drops the still-posted receive */
    return 0;
}

/* A /dev/shm that only this process (and its children) sees, so that no
 * other dafs process on the machine sweeps the stale region this test leaves
 * on purpose: a new mount namespace with its own tmpfs.  Needs root; without
 * it the test runs on the shared /dev/shm and allows for other sweepers. */
static bool private_dev_shm(void)
{
    return unshare(CLONE_NEWNS) == 0 && mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
           mount("dafs-test-shm", "/dev/shm", "tmpfs", 0, "mode=1777,size=256m") == 0;
}

/* shm: a second listener on a name in use is refused; a crashed listener's
 * leftover region does not block a restart on the same port. */
static int shm_names_main(void)
{
    role = "shm-names";
    bool private_shm = private_dev_shm();
    fprintf(stderr, "[shm-names] %s /dev/shm\n", private_shm ? "private" : "shared");
    /* never a name dafsd ("<port>") or a client ("c<hex>") picks */
    char service[16];
    snprintf(service, sizeof service, "t%d", (int)getpid());
    dfab_config cfg = {.provider = "shm", .service = service, .listen = true};
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t holder = fork();
    CHECK(holder >= 0, "fork");
    if (holder == 0) {
        dfab *f = open_or_die(&cfg);
        (void)f;
        CHECK(write(fds[1], "x", 1) == 1, "pipe");
        for (;;)
            pause(); /* killed below, leaving its region behind */
    }
    char c;
    CHECK(read(fds[0], &c, 1) == 1, "holder did not open");
    dfab *f = NULL;
    const char *err = NULL;
    int ret = dfab_open(&cfg, &f, &err);
    CHECK(ret == -EADDRINUSE, "second listener on %s: %d (%s)", service, ret, err ? err : "");
    fprintf(stderr, "[shm-names] ok: in use: %s\n", err);
    kill(holder, SIGKILL);
    CHECK(waitpid(holder, NULL, 0) == holder, "waitpid");
    char path[64];
    snprintf(path, sizeof path, "/dev/shm/dafs_shm_%s", service);
    if (access(path, F_OK) != 0) {
        /* on a shared /dev/shm another dafs process may have swept it first */
        CHECK(!private_shm, "expected a stale region at %s", path);
        fprintf(stderr, "[shm-names] note: %s already swept by another process\n", path);
    }
    /* any other listener sweeps it away */
    dfab_config other_cfg = {.provider = "shm", .service = "0", .listen = true};
    f = open_or_die(&other_cfg);
    CHECK(access(path, F_OK) != 0, "stale region %s not swept", path);
    dfab_close(f);
    f = open_or_die(&cfg);
    dfab_close(f);
    CHECK(access(path, F_OK) != 0, "region %s left after close", path);
    fprintf(stderr, "[shm-names] ok: stale region swept; restart on a crashed listener's port\n");
    return 0;
}

/* ----------------------------------------------------------- parent -- */

static pid_t spawn(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        exit(fn(arg)); /* exit, not _exit: lets LeakSanitizer check the child */
    return pid;
}

/* FABRIC_TEST_PIN=1 puts server and client on different cores (measuring). */
static void maybe_pin(int cpu)
{
    if (!getenv("FABRIC_TEST_PIN"))
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    CHECK(sched_setaffinity(0, sizeof set, &set) == 0, "sched_setaffinity");
}

static int run_server(void *arg)
{
    maybe_pin(0);
    return server_main(*(int *)arg);
}
static int run_client(void *arg)
{
    maybe_pin(1);
    return client_main(arg);
}
static int run_bad_provider(void *arg)
{
    (void)arg;
    return bad_provider_main();
}
static int run_idle(void *arg)
{
    return idle_main(arg != NULL);
}
static int run_shm_names(void *arg)
{
    (void)arg;
    return shm_names_main();
}

/* Wait for pid with a deadline; kill it (by pid) if it hangs. */
static bool reap_child(pid_t pid, const char *what, int timeout_s)
{
    int status = 0;
    for (int i = 0; i < timeout_s * 10; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            fprintf(stderr, "[parent] %-14s %s\n", what, ok ? "PASS" : "FAIL");
            return ok;
        }
        struct timespec ts = {0, 100 * 1000000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fprintf(stderr, "[parent] %-14s FAIL (hung, killed)\n", what);
    return false;
}

/* One server + client run; `max_msg` (if set) lowers max_msg_size in both. */
static int run_pair(const char *max_msg)
{
    if (max_msg) {
        setenv("DAFS_FABRIC_MAX_MSG", max_msg, 1);
        setenv("FABRIC_TEST_NO_MEASURE", "1", 1);
        fprintf(stderr, "[parent] --- again with max_msg_size %s ---\n", max_msg);
    }
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    pid_t server = spawn(run_server, &fds[1]);
    close(fds[1]);
    char port[32] = {0};
    ssize_t n = read(fds[0], port, sizeof port - 1);
    close(fds[0]);
    int failures = 0;
    if (n <= 0) {
        fprintf(stderr, "[parent] server did not report a port\n");
        failures += !reap_child(server, "server", 5);
        return failures ? failures : 1;
    }
    pid_t client = spawn(run_client, port);
    failures += !reap_child(client, "client", 240);
    failures += !reap_child(server, "server", failures ? 1 : 10);
    unsetenv("DAFS_FABRIC_MAX_MSG");
    unsetenv("FABRIC_TEST_NO_MEASURE");
    return failures;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <provider>\n", argv[0]);
        return 2;
    }
    /* CMake splits arguments at ';', so "tcp,ofi_rxm" stands for "tcp;ofi_rxm" */
    static char prov[64];
    snprintf(prov, sizeof prov, "%s", argv[1]);
    for (char *p = prov; *p; p++)
        if (*p == ',')
            *p = ';';
    provider = prov;
    setenv("FI_TCP_IFACE", "lo", 0);
    int failures = 0;

    failures += !reap_child(spawn(run_bad_provider, NULL), "bad provider", 30);
    failures += !reap_child(spawn(run_idle, NULL), "idle client", 30);
    failures += !reap_child(spawn(run_idle, "listen"), "idle server", 30);
    if (strcmp(provider, "shm") == 0)
        failures += !reap_child(spawn(run_shm_names, NULL), "shm names", 30);

    failures += run_pair(NULL);
    /* again with max_msg_size lowered, so RMA is split and EMSGSIZE is hit */
    failures += run_pair("262144");
    fprintf(stderr, "[parent] %s: %s (%d failure(s))\n", provider, failures ? "FAIL" : "PASS",
            failures);
    return failures ? 1 : 0;
}
