/*
 * test_async.c — libdafs asynchronous I/O (dafs_cq_*, dafs_submit) against a
 * real dafsd.
 *
 * Usage: test_async DAFSD_PATH [TEST_NAME...]  (provider from FI_PROVIDER,
 * as test_client.c).  Data is checked byte for byte, written data also on
 * the server's disk copy.  Completions are counted per user_data: each must
 * come back exactly once.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h" /* white box: the session's batch counters, struct dafs_file */
#include "dafs/dafs.h"
#include "server_fixture.h"

typedef test_ctx ctx;

#define BLK 4096u
#define FILE_BLOCKS 1024u /* 4 MiB test file */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Byte i of the test pattern for file offset off (seeded). */
static uint8_t pat(uint64_t off, unsigned seed)
{
    uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    x ^= x >> 29;
    return (uint8_t)(x ^ (x >> 8));
}

static void fill(uint8_t *buf, size_t len, uint64_t off, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = pat(off + i, seed);
}

static bool check_bytes(const uint8_t *buf, size_t len, uint64_t off, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != pat(off + i, seed))
            return false;
    return true;
}

/* A file of FILE_BLOCKS blocks holding pattern seed, written synchronously. */
static int make_file(dafs_session *s, const char *name, unsigned seed, dafs_file **out)
{
    size_t len = (size_t)FILE_BLOCKS * BLK;
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return -ENOMEM;
    fill(buf, len, 0, seed);
    int rc = dafs_open(s, name, O_RDWR | O_CREAT | O_TRUNC, 0644, out);
    if (rc == 0 && dafs_pwrite(*out, buf, len, 0) != (ssize_t)len)
        rc = -EIO;
    free(buf);
    return rc;
}

/* Reap until want completions came or the deadline: counts each user_data
 * (an index < n) in seen[].  Returns how many were reaped. */
static unsigned reap_all(dafs_cq *cq, unsigned want, unsigned n, unsigned *seen, int64_t *res)
{
    dafs_cqe ev[64];
    unsigned got = 0;
    uint64_t deadline = now_ms() + 60000; /* a hang, not a speed limit */
    while (got < want && now_ms() < deadline) {
        int k = dafs_cq_reap(cq, ev, 64, 1, 1000);
        if (k < 0)
            break;
        for (int i = 0; i < k; i++) {
            uintptr_t id = (uintptr_t)ev[i].user_data;
            if (id < n) {
                seen[id]++;
                if (res != NULL)
                    res[id] = ev[i].res;
            }
        }
        got += (unsigned)k;
    }
    return got;
}

/* ---- hundreds in flight from one thread, every byte verified ---- */

static void test_many_inflight(ctx *c)
{
    enum { N = 600 };
    dafs_file *f = NULL, *w = NULL;
    CHECK_EQ(make_file(c->s, "async_src", 7, &f), 0);
    CHECK_EQ(dafs_open(c->s, "async_dst", O_RDWR | O_CREAT | O_TRUNC, 0644, &w), 0);
    dafs_cq *cq;
    CHECK_EQ(dafs_cq_create(c->s, N, &cq), 0);
    /* sizes: 4 KiB (inline or direct by provider), 64 KiB (direct, a
     * registration per I/O), some in a dafs_mem_register region */
    uint8_t *bufs = malloc((size_t)N * 65536u);
    uint8_t *reg = malloc(64u * BLK);
    CHECK(bufs != NULL && reg != NULL);
    dafs_mr *mr;
    CHECK_EQ(dafs_mem_register(c->s, reg, 64u * BLK, &mr), 0);
    static dafs_io ios[N];
    static unsigned seen[N];
    static int64_t res[N];
    memset(seen, 0, sizeof seen);
    size_t lens[N];
    uint64_t offs[N];
    for (unsigned i = 0; i < N; i++) {
        lens[i] = i % 10 == 3 ? 65536u : BLK;
        offs[i] = (uint64_t)((i * 37u) % (FILE_BLOCKS - 16u)) * BLK + (i % 7u);
        uint8_t *b = i % 10 == 5 ? reg + (size_t)(i / 10 % 64) * BLK : bufs + (size_t)i * 65536u;
        if (i % 10 == 5)
            lens[i] = BLK;
        ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = b, .len = lens[i],
                           .offset = offs[i], .user_data = (void *)(uintptr_t)i};
    }
    /* the registered-region reads share 64 buffers: submit those last, one
     * per buffer, so no two are in flight on the same bytes */
    unsigned accepted = 0;
    for (unsigned i = 0; i < N; i++)
        if (i % 10 != 5 || i / 10 < 64) {
            int rc = dafs_submit(cq, &ios[i], 1);
            CHECK_EQ(rc, 1);
            accepted++;
        } else {
            seen[i] = 1; /* not submitted */
        }
    dafs_session_info info;
    CHECK_EQ(dafs_session_get_info(c->s, &info), 0);
    CHECK(accepted > info.credits); /* beyond the credits: queued, not refused */
    CHECK_EQ(reap_all(cq, accepted, N, seen, res), accepted);
    for (unsigned i = 0; i < N; i++) {
        if (i % 10 == 5 && i / 10 >= 64)
            continue;
        CHECK_EQ(seen[i], 1);
        CHECK_EQ(res[i], (int64_t)lens[i]);
        CHECK(check_bytes(ios[i].buf, lens[i], offs[i], 7));
    }
    /* writes: N distinct blocks of a new file, then read back and on disk */
    memset(seen, 0, sizeof seen);
    for (unsigned i = 0; i < N; i++) {
        uint8_t *b = bufs + (size_t)i * 65536u;
        size_t len = i % 10 == 3 ? 8192u : BLK;
        fill(b, len, (uint64_t)i * 8192u, 9);
        ios[i] = (dafs_io){.op = DAFS_IO_WRITE, .file = w, .buf = b, .len = len,
                           .offset = (uint64_t)i * 8192u, .user_data = (void *)(uintptr_t)i};
    }
    int rc = dafs_submit(cq, ios, N);
    CHECK_EQ(rc, N);
    CHECK_EQ(reap_all(cq, N, N, seen, res), N);
    for (unsigned i = 0; i < N; i++) {
        CHECK_EQ(seen[i], 1);
        CHECK_EQ(res[i], (int64_t)ios[i].len);
    }
    /* a commit completes with 0 */
    dafs_io cm = {.op = DAFS_IO_COMMIT, .file = w, .user_data = (void *)(uintptr_t)7};
    CHECK_EQ(dafs_submit(cq, &cm, 1), 1);
    dafs_cqe ev;
    CHECK_EQ(dafs_cq_reap(cq, &ev, 1, 1, 30000), 1);
    CHECK_EQ(ev.res, 0);
    CHECK(ev.user_data == (void *)(uintptr_t)7);
    char path[512];
    (void)snprintf(path, sizeof path, "%s/async_dst", c->srv.export_dir);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    uint8_t *disk = malloc((size_t)N * 8192u);
    ssize_t got = disk != NULL ? pread(fd, disk, (size_t)N * 8192u, 0) : -1;
    (void)close(fd);
    bool ok = got >= (ssize_t)((N - 1) * 8192u + BLK);
    for (unsigned i = 0; ok && i < N; i++)
        ok = check_bytes(disk + (size_t)i * 8192u, ios[i].len, (uint64_t)i * 8192u, 9);
    free(disk);
    CHECK(ok);
    CHECK_EQ(dafs_cq_destroy(cq), 0);
    CHECK_EQ(dafs_mem_deregister(mr), 0);
    free(bufs);
    free(reg);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_close(w), 0);
}

/* ---- several ready I/Os travel as one BATCH_SUBMIT ---- */

static void test_batched(ctx *c)
{
    enum { N = 25, BAD = 11 };
    dafs_file *f = NULL;
    CHECK_EQ(make_file(c->s, "async_mix", 3, &f), 0);
    /* a bad entry: the same file under a stateid the server never gave */
    struct dafs_file badst = *f;
    badst.stateid ^= 0x123456789ull;
    atomic_store(&badst.aio_inflight, 0u);
    dafs_cq *cq;
    CHECK_EQ(dafs_cq_create(c->s, N, &cq), 0);
    uint8_t *bufs = malloc((size_t)N * 65536u);
    uint8_t *reg = malloc(8u * BLK);
    CHECK(bufs != NULL && reg != NULL);
    dafs_mr *mr;
    CHECK_EQ(dafs_mem_register(c->s, reg, 8u * BLK, &mr), 0);
    dafs_io ios[N];
    unsigned seen[N] = {0};
    int64_t res[N];
    /* even: reads of blocks 0.. (some into the registered region); odd:
     * writes of blocks 512.. of 200 bytes (inline entry), 4 KiB or 64 KiB
     * (a registration for the I/O) */
    for (unsigned i = 0; i < N; i++) {
        uint8_t *b = bufs + (size_t)i * 65536u;
        if (i % 2 == 0) {
            if (i % 4 == 0)
                b = reg + (size_t)(i / 4) * BLK;
            ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = b, .len = BLK,
                               .offset = (uint64_t)i * BLK + 5u};
        } else {
            size_t len = i % 3 == 0 ? 200u : i % 5 == 0 ? 65536u : BLK;
            uint64_t off = 512u * BLK + (uint64_t)i * 65536u;
            fill(b, len, off, 4);
            ios[i] = (dafs_io){.op = DAFS_IO_WRITE, .file = f, .buf = b, .len = len,
                               .offset = off};
        }
        ios[i].user_data = (void *)(uintptr_t)i;
    }
    ios[BAD].file = &badst;
    unsigned batches = atomic_load(&c->s->aio_batches);
    unsigned batched = atomic_load(&c->s->aio_batched);
    CHECK_EQ(dafs_submit(cq, ios, N), N);
    CHECK_EQ(reap_all(cq, N, N, seen, res), N);
    /* all of them went as entries of BATCH_SUBMITs, not one request each */
    CHECK(atomic_load(&c->s->aio_batches) - batches >= 2u);
    CHECK_EQ(atomic_load(&c->s->aio_batched) - batched, N);
    for (unsigned i = 0; i < N; i++) {
        CHECK_EQ(seen[i], 1);
        if (i == BAD) {
            CHECK(res[i] < 0);
            continue;
        }
        CHECK_EQ(res[i], (int64_t)ios[i].len);
        if (ios[i].op == DAFS_IO_READ)
            CHECK(check_bytes(ios[i].buf, BLK, ios[i].offset, 3));
    }
    CHECK_EQ(dafs_cq_destroy(cq), 0);
    CHECK_EQ(atomic_load(&f->aio_inflight), 0u);
    CHECK_EQ(dafs_close(f), 0);
    /* the writes on the server's disk; the bad one wrote nothing */
    char path[512];
    (void)snprintf(path, sizeof path, "%s/async_mix", c->srv.export_dir);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    uint8_t *disk = malloc(65536u);
    CHECK(disk != NULL);
    for (unsigned i = 1; i < N; i += 2) {
        ssize_t got = pread(fd, disk, ios[i].len, (off_t)ios[i].offset);
        if (i == BAD) { /* past the file's end, or zeros of a hole */
            bool untouched = got <= 0 || !check_bytes(disk, (size_t)got, ios[i].offset, 4);
            CHECK(untouched);
        } else {
            CHECK_EQ(got, (ssize_t)ios[i].len);
            CHECK(check_bytes(disk, ios[i].len, ios[i].offset, 4));
        }
    }
    (void)close(fd);
    free(disk);
    CHECK_EQ(dafs_mem_deregister(mr), 0);
    free(bufs);
    free(reg);
}

/* ---- appends, limits, errors, rules ---- */

static void test_rules(ctx *c)
{
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "async_rules", O_RDWR | O_CREAT | O_TRUNC, 0644, &f), 0);
    dafs_cq *cq;
    CHECK_EQ(dafs_cq_create(c->s, 4, &cq), 0);
    dafs_session_info info;
    CHECK_EQ(dafs_session_get_info(c->s, &info), 0);
    static uint8_t big[1];
    dafs_io io = {.op = DAFS_IO_READ, .file = f, .buf = big, .len = (size_t)info.max_io + 1};
    CHECK_EQ(dafs_submit(cq, &io, 1), -EINVAL); /* longer than max_io */
    io = (dafs_io){.op = 99, .file = f};
    CHECK_EQ(dafs_submit(cq, &io, 1), -EINVAL);
    /* appends: each lands whole, the offsets tile the file */
    uint8_t data[4][100];
    dafs_io ap[4];
    for (unsigned i = 0; i < 4; i++) {
        memset(data[i], 'a' + (int)i, sizeof data[i]);
        ap[i] = (dafs_io){.op = DAFS_IO_APPEND, .file = f, .buf = data[i], .len = 100,
                          .user_data = (void *)(uintptr_t)i};
    }
    CHECK_EQ(dafs_submit(cq, ap, 4), 4);
    CHECK_EQ(dafs_submit(cq, ap, 1), 0); /* the group is full: none accepted */
    /* a file with I/O in flight cannot be closed */
    int closed = dafs_close(f);
    dafs_cqe ev[4];
    int n = 0;
    uint64_t deadline = now_ms() + 60000;
    while (n < 4 && now_ms() < deadline) {
        int k = dafs_cq_reap(cq, ev + n, 4u - (unsigned)n, 1, 1000);
        CHECK(k >= 0);
        n += k;
    }
    CHECK_EQ(n, 4);
    bool where[4] = {false};
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(ev[i].res, 100);
        CHECK(ev[i].offset % 100 == 0 && ev[i].offset < 400);
        where[ev[i].offset / 100] = true;
    }
    CHECK(where[0] && where[1] && where[2] && where[3]);
    CHECK_EQ(closed, -EBUSY);
    /* dafs_cq_destroy with I/O in flight waits for it */
    uint8_t rb[100];
    io = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = rb, .len = 100, .offset = 0};
    CHECK_EQ(dafs_submit(cq, &io, 1), 1);
    CHECK_EQ(dafs_cq_destroy(cq), 0);
    CHECK_EQ(dafs_close(f), 0);
    /* dafs_disconnect with a group alive (and I/O in flight) */
    dafs_session *s2;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    dafs_file *g;
    CHECK_EQ(dafs_open(s2, "async_rules", O_RDONLY, 0, &g), 0);
    dafs_cq *cq2;
    CHECK_EQ(dafs_cq_create(s2, 8, &cq2), 0);
    int fd = dafs_cq_fd(cq2);
    CHECK(fd >= 0);
    io = (dafs_io){.op = DAFS_IO_READ, .file = g, .buf = rb, .len = 100, .offset = 0};
    CHECK_EQ(dafs_submit(cq2, &io, 1), 1);
    /* the completion arrives (the fd goes readable) with nobody reaping;
     * then the file can be closed, and the group is left to disconnect */
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&pfd, 1, 60000), 1);
    CHECK_EQ(dafs_close(g), 0);
    CHECK_EQ(dafs_disconnect(s2), 0);
}

/* ---- wait-for-N beyond what is outstanding; zero timeout ---- */

static void test_timeouts(ctx *c)
{
    dafs_file *f;
    CHECK_EQ(make_file(c->s, "async_to", 3, &f), 0);
    dafs_cq *cq;
    CHECK_EQ(dafs_cq_create(c->s, 16, &cq), 0);
    dafs_cqe ev[16];
    /* nothing at all outstanding: zero timeout returns at once */
    uint64_t t0 = now_ms();
    for (int i = 0; i < 100; i++)
        CHECK_EQ(dafs_cq_reap(cq, ev, 16, 1, 0), 0);
    CHECK(now_ms() - t0 < 2000); /* 100 calls that never block */
    uint8_t bufs[3][BLK];
    dafs_io ios[3];
    for (unsigned i = 0; i < 3; i++)
        ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = bufs[i], .len = BLK,
                           .offset = (uint64_t)i * BLK, .user_data = (void *)(uintptr_t)i};
    CHECK_EQ(dafs_submit(cq, ios, 3), 3);
    /* wait for 10 with 3 outstanding: returns the 3 at the timeout */
    t0 = now_ms();
    int k = dafs_cq_reap(cq, ev, 16, 10, 400);
    uint64_t took = now_ms() - t0;
    CHECK_EQ(k, 3);
    CHECK(took >= 390);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(ev[i].res, BLK);
    /* zero timeout with I/O in flight: never blocks, eventually sees them */
    CHECK_EQ(dafs_submit(cq, ios, 3), 3);
    int seen = 0, calls = 0;
    uint64_t deadline = now_ms() + 60000;
    uint64_t slowest = 0;
    while (seen < 3 && now_ms() < deadline) {
        uint64_t a = now_ms();
        k = dafs_cq_reap(cq, ev, 16, 3, 0);
        uint64_t d = now_ms() - a;
        slowest = d > slowest ? d : slowest;
        CHECK(k >= 0);
        seen += k;
        calls++;
    }
    CHECK_EQ(seen, 3);
    CHECK(slowest < 1000); /* a poll, not a wait (generous for a loaded machine) */
    CHECK_EQ(dafs_cq_reap(cq, ev, 16, 0, -1), 0); /* min 0: a poll even with -1 */
    CHECK_EQ(dafs_cq_destroy(cq), 0);
    CHECK_EQ(dafs_close(f), 0);
}

/* ---- several threads and groups under load ---- */

#define LOAD_PER_GROUP 3000u

typedef struct load_group {
    ctx *c;
    dafs_cq *cq;
    dafs_file *f;
    uint8_t *bufs;          /* one block per entry slot */
    _Atomic unsigned *seen; /* per I/O id */
    atomic_uint reaped;
    atomic_int bad;
} load_group;

static void *load_submitter(void *arg)
{
    load_group *g = arg;
    unsigned next = 0;
    uint64_t deadline = now_ms() + 120000;
    while (next < LOAD_PER_GROUP && now_ms() < deadline) {
        dafs_io io = {.op = DAFS_IO_READ, .file = g->f, .len = BLK,
                      .offset = (uint64_t)(next % FILE_BLOCKS) * BLK,
                      .buf = g->bufs + (size_t)(next % 4096u) * BLK,
                      .user_data = (void *)(uintptr_t)next};
        int rc = dafs_submit(g->cq, &io, 1);
        if (rc == 1)
            next++;
        else if (rc == 0)
            sched_yield(); /* group full: the reapers make room */
        else {
            atomic_fetch_add(&g->bad, 1);
            break;
        }
    }
    return NULL;
}

static void *load_reaper(void *arg)
{
    load_group *g = arg;
    dafs_cqe ev[16];
    uint64_t deadline = now_ms() + 120000;
    while (atomic_load(&g->reaped) < LOAD_PER_GROUP && now_ms() < deadline) {
        int k = dafs_cq_reap(g->cq, ev, 16, 1, 50);
        if (k < 0) {
            atomic_fetch_add(&g->bad, 1);
            break;
        }
        for (int i = 0; i < k; i++) {
            uintptr_t id = (uintptr_t)ev[i].user_data;
            if (id >= LOAD_PER_GROUP || ev[i].res != BLK)
                atomic_fetch_add(&g->bad, 1);
            else
                atomic_fetch_add(&g->seen[id], 1u);
        }
        atomic_fetch_add(&g->reaped, (unsigned)k);
    }
    return NULL;
}

static void *sync_reader(void *arg)
{
    load_group *g = arg; /* group 0's file, read synchronously meanwhile */
    uint8_t buf[BLK];
    for (unsigned i = 0; i < 300; i++) {
        uint64_t off = (uint64_t)(i * 13u % FILE_BLOCKS) * BLK;
        if (dafs_pread(g->f, buf, BLK, off) != BLK || !check_bytes(buf, BLK, off, 11)) {
            atomic_fetch_add(&g->bad, 1000);
            break;
        }
    }
    return NULL;
}

static void test_threads_groups(ctx *c)
{
    enum { GROUPS = 2, REAPERS = 2 };
    dafs_file *f;
    CHECK_EQ(make_file(c->s, "async_load", 11, &f), 0);
    load_group g[GROUPS];
    for (int i = 0; i < GROUPS; i++) {
        g[i] = (load_group){.c = c, .f = f};
        g[i].bufs = malloc(4096u * BLK); /* reads share buffers: content not checked here */
        g[i].seen = calloc(LOAD_PER_GROUP, sizeof *g[i].seen);
        CHECK(g[i].bufs != NULL && g[i].seen != NULL);
        CHECK_EQ(dafs_cq_create(c->s, 64, &g[i].cq), 0);
    }
    pthread_t tid[GROUPS * (REAPERS + 1) + 1];
    int nt = 0;
    for (int i = 0; i < GROUPS; i++) {
        CHECK_EQ(pthread_create(&tid[nt++], NULL, load_submitter, &g[i]), 0);
        for (int r = 0; r < REAPERS; r++)
            CHECK_EQ(pthread_create(&tid[nt++], NULL, load_reaper, &g[i]), 0);
    }
    CHECK_EQ(pthread_create(&tid[nt++], NULL, sync_reader, &g[0]), 0);
    for (int i = 0; i < nt; i++)
        (void)pthread_join(tid[i], NULL);
    for (int i = 0; i < GROUPS; i++) {
        CHECK_EQ(atomic_load(&g[i].bad), 0);
        CHECK_EQ(atomic_load(&g[i].reaped), LOAD_PER_GROUP);
        for (unsigned id = 0; id < LOAD_PER_GROUP; id++)
            CHECK_EQ(atomic_load(&g[i].seen[id]), 1);
        CHECK_EQ(dafs_cq_destroy(g[i].cq), 0);
        free(g[i].bufs);
        free(g[i].seen);
    }
    CHECK_EQ(dafs_close(f), 0);
}

/* ---- an event loop on dafs_cq_fd, no blocking dafs call ---- */

static void test_epoll(ctx *c)
{
    enum { TOTAL = 400, DEPTH = 32 };
    dafs_file *f;
    CHECK_EQ(make_file(c->s, "async_epoll", 5, &f), 0);
    dafs_cq *cq;
    CHECK_EQ(dafs_cq_create(c->s, DEPTH, &cq), 0);
    int fd = dafs_cq_fd(cq);
    CHECK(fd >= 0);
    CHECK_EQ(dafs_cq_fd(cq), fd); /* one fd per group */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    struct epoll_event ee = {.events = EPOLLIN, .data.u32 = 1};
    CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ee), 0);
    /* empty group: not readable */
    CHECK_EQ(epoll_wait(ep, &ee, 1, 0), 0);
    static uint8_t bufs[DEPTH][BLK];
    static unsigned seen[TOTAL];
    memset(seen, 0, sizeof seen);
    unsigned submitted = 0, done = 0, free_list[DEPTH], nfree = DEPTH;
    uint64_t offs[TOTAL];
    for (unsigned i = 0; i < DEPTH; i++)
        free_list[i] = i;
    bool ok = true;
    uint64_t deadline = now_ms() + 60000;
    while (done < TOTAL && now_ms() < deadline && ok) {
        while (nfree > 0 && submitted < TOTAL) {
            unsigned b = free_list[--nfree];
            offs[submitted] = (uint64_t)((submitted * 31u) % FILE_BLOCKS) * BLK;
            dafs_io io = {.op = DAFS_IO_READ, .file = f, .buf = bufs[b], .len = BLK,
                          .offset = offs[submitted],
                          .user_data = (void *)(uintptr_t)(submitted << 8 | b)};
            if (dafs_submit(cq, &io, 1) != 1) {
                ok = false;
                break;
            }
            submitted++;
        }
        int n = epoll_wait(ep, &ee, 1, 1000);
        if (n <= 0)
            continue;
        dafs_cqe ev[DEPTH];
        int k = dafs_cq_reap(cq, ev, DEPTH, 0, 0);
        if (k < 0)
            ok = false;
        for (int i = 0; ok && i < k; i++) {
            uintptr_t u = (uintptr_t)ev[i].user_data;
            unsigned id = (unsigned)(u >> 8), b = (unsigned)(u & 0xff);
            ok = id < TOTAL && b < DEPTH && ev[i].res == BLK &&
                 check_bytes(bufs[b], BLK, offs[id], 5);
            if (ok) {
                seen[id]++;
                free_list[nfree++] = b;
                done++;
            }
        }
    }
    (void)close(ep);
    CHECK(ok);
    CHECK_EQ(done, TOTAL);
    for (unsigned i = 0; i < TOTAL; i++)
        CHECK_EQ(seen[i], 1);
    CHECK_EQ(dafs_cq_destroy(cq), 0);
    CHECK_EQ(dafs_close(f), 0);
}

/* ---- the server killed with I/O in flight ---- */

static void test_server_killed(ctx *c)
{
    enum { N = 300 };
    test_server srv;
    CHECK_EQ(test_server_start(c->dafsd, &srv), 0);
    dafs_options opts = {.timeout_ms = 4000};
    dafs_session *s;
    int rc = dafs_connect(srv.url, &opts, &s);
    if (rc != 0)
        test_server_stop(&srv);
    CHECK_EQ(rc, 0);
    dafs_file *f = NULL;
    rc = make_file(s, "victim", 2, &f);
    dafs_cq *cq = NULL;
    if (rc == 0)
        rc = dafs_cq_create(s, N, &cq);
    static uint8_t bufs[N][BLK];
    static unsigned seen[N];
    static int64_t res[N];
    memset(seen, 0, sizeof seen);
    dafs_io ios[N];
    for (unsigned i = 0; i < N; i++)
        ios[i] = (dafs_io){.op = i % 2 ? DAFS_IO_READ : DAFS_IO_WRITE, .file = f,
                           .buf = bufs[i], .len = BLK, .offset = (uint64_t)(i % 64) * BLK,
                           .user_data = (void *)(uintptr_t)i};
    int sub = rc == 0 ? dafs_submit(cq, ios, N) : rc;
    (void)kill(srv.pid, SIGKILL);
    int status;
    (void)waitpid(srv.pid, &status, 0);
    srv.pid = -1;
    unsigned got = sub == N ? reap_all(cq, N, N, seen, res) : 0;
    /* nothing more arrives, and no second completion of anything */
    dafs_cqe extra[4];
    int more = cq != NULL ? dafs_cq_reap(cq, extra, 4, 4, 300) : 0;
    unsigned errors = 0, twice = 0;
    for (unsigned i = 0; i < N; i++) {
        if (seen[i] != 1)
            twice++;
        else if (res[i] < 0) {
            errors++;
            if (res[i] != -DAFS_ETRANSPORT)
                twice += 1000; /* wrong error */
        }
    }
    dafs_io again = ios[0];
    int after = cq != NULL ? dafs_submit(cq, &again, 1) : 0;
    if (cq != NULL)
        (void)dafs_cq_destroy(cq);
    if (f != NULL)
        (void)dafs_close(f); /* fails: the session is gone; frees the handle */
    (void)dafs_disconnect(s);
    test_server_stop(&srv);
    CHECK_EQ(rc, 0);
    CHECK_EQ(sub, N);
    CHECK_EQ(got, N);
    CHECK_EQ(more, 0);
    CHECK_EQ(twice, 0);
    CHECK(errors > 0); /* the kill came with I/O in flight */
    CHECK_EQ(after, -DAFS_ETRANSPORT);
}

/* ---- submissions beyond a small credit grant queue and complete ---- */

static void test_few_credits(ctx *c)
{
    enum { N = 200 };
    dafs_options opts = {.max_credits = 2};
    dafs_session *s;
    CHECK_EQ(dafs_connect(c->srv.url, &opts, &s), 0);
    dafs_file *f = NULL;
    int rc = make_file(s, "async_credits", 4, &f);
    dafs_cq *cq = NULL;
    if (rc == 0)
        rc = dafs_cq_create(s, N, &cq);
    static uint8_t bufs[N][BLK];
    static unsigned seen[N];
    static int64_t res[N];
    memset(seen, 0, sizeof seen);
    dafs_io ios[N];
    for (unsigned i = 0; i < N; i++)
        ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = bufs[i], .len = BLK,
                           .offset = (uint64_t)i * BLK, .user_data = (void *)(uintptr_t)i};
    int sub = rc == 0 ? dafs_submit(cq, ios, N) : rc;
    dafs_session_info info = {0};
    (void)dafs_session_get_info(s, &info);
    unsigned got = sub == N ? reap_all(cq, N, N, seen, res) : 0;
    bool ok = true;
    for (unsigned i = 0; i < N; i++)
        ok = ok && seen[i] == 1 && res[i] == BLK && check_bytes(bufs[i], BLK, (uint64_t)i * BLK, 4);
    if (cq != NULL)
        (void)dafs_cq_destroy(cq);
    if (f != NULL)
        (void)dafs_close(f);
    CHECK_EQ(dafs_disconnect(s), 0);
    CHECK_EQ(rc, 0);
    CHECK(info.credits <= 2);
    CHECK_EQ(sub, N);
    CHECK_EQ(got, N);
    CHECK(ok);
}

static const test_case tests[] = {
    {"many_inflight", test_many_inflight},
    {"rules", test_rules},
    {"batched", test_batched},
    {"timeouts", test_timeouts},
    {"threads_groups", test_threads_groups},
    {"epoll", test_epoll},
    {"few_credits", test_few_credits},
    {"server_killed", test_server_killed},
};

int main(int argc, char **argv)
{
    return run_session_tests(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
