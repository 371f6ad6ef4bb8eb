/*
 * test_batch.c — dafs_batch (BATCH_SUBMIT) against a real dafsd.
 *
 * Usage: test_batch DAFSD_PATH [TEST_NAME...]
 * (test_batch --child URL FILE is the client the client_killed test kills.)
 * Every byte a batch writes is checked on the server's disk directly, every
 * byte it reads against what was put on disk directly, so a symmetric bug in
 * the client and server cannot hide.  Results are pre-filled with a sentinel,
 * so an entry that got no result, or whose result does not belong to it,
 * shows.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dafs/dafs.h"
#include "server_fixture.h"
/* White box: a dafs_file's handle and stateid (bad-handle tests), and the
 * internal asynchronous batch API (client.h; linked from the static library). */
#include "client.h"

typedef test_ctx ctx;

#define SENTINEL INT64_MIN
#define BLK 4096u

static void fill_pattern(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void path_of(const test_server *srv, const char *name, char *out, size_t len)
{
    (void)snprintf(out, len, "%s/%s", srv->export_dir, name);
}

/* Put len pattern bytes (seed) into the server's file straight on disk. */
static int disk_put(const test_server *srv, const char *name, size_t len, uint64_t seed)
{
    char path[512];
    path_of(srv, name, path, sizeof path);
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return -1;
    fill_pattern(buf, len, seed);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ssize_t n = fd >= 0 ? pwrite(fd, buf, len, 0) : -1;
    if (fd >= 0)
        close(fd);
    free(buf);
    return n == (ssize_t)len ? 0 : -1;
}

/* Does [off, off+len) of the server's file equal want? */
static bool disk_equals(const test_server *srv, const char *name, uint64_t off, const uint8_t *want,
                        size_t len)
{
    char path[512];
    path_of(srv, name, path, sizeof path);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    uint8_t *buf = malloc(len ? len : 1);
    ssize_t n = buf != NULL ? pread(fd, buf, len, (off_t)off) : -1;
    bool eq = n == (ssize_t)len && memcmp(buf, want, len) == 0;
    free(buf);
    close(fd);
    return eq;
}

static void prefill(dafs_cqe *res, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        res[i] = (dafs_cqe){.user_data = NULL, .res = SENTINEL, .offset = UINT64_MAX};
}

/* ---- batches of reads of every size, every byte checked ---- */

static void read_batch_of(ctx *c, unsigned n, bool registered)
{
    size_t flen = (size_t)n * BLK;
    CHECK_EQ(disk_put(&c->srv, "rb", flen, n), 0);
    uint8_t *want = malloc(flen), *got = malloc(flen);
    dafs_io *ios = calloc(n, sizeof *ios);
    dafs_cqe *res = calloc(n, sizeof *res);
    CHECK(want != NULL && got != NULL && ios != NULL && res != NULL);
    fill_pattern(want, flen, n);
    memset(got, 0xee, flen);
    dafs_mr *mr = NULL;
    if (registered)
        CHECK_EQ(dafs_mem_register(c->s, got, flen, &mr), 0);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "rb", O_RDONLY, 0, &f), 0);
    for (unsigned i = 0; i < n; i++) {
        unsigned blk = (i * 7u) % n; /* out of order */
        ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = got + (size_t)blk * BLK,
                           .len = BLK, .offset = (uint64_t)blk * BLK,
                           .user_data = (void *)(uintptr_t)(i + 1)};
    }
    prefill(res, n);
    int rc = dafs_batch(c->s, ios, res, n);
    (void)dafs_close(f);
    if (mr != NULL)
        (void)dafs_mem_deregister(mr);
    CHECK_EQ(rc, 0);
    for (unsigned i = 0; i < n; i++) {
        CHECK_EQ(res[i].res, BLK);
        CHECK(res[i].user_data == (void *)(uintptr_t)(i + 1));
        CHECK_EQ(res[i].offset, ios[i].offset);
    }
    CHECK(memcmp(got, want, flen) == 0);
    free(want);
    free(got);
    free(ios);
    free(res);
    CHECK_EQ(dafs_unlink(c->s, "rb"), 0);
}

static void test_read_sizes(ctx *c)
{
    static const unsigned sizes[] = {1, 32, 1000};
    for (unsigned k = 0; k < 3; k++) {
        int before = test_failures;
        read_batch_of(c, sizes[k], k == 1);
        if (test_failures != before) {
            fprintf(stderr, "  (batch of %u)\n", sizes[k]);
            return;
        }
    }
}

/* Writes of 1, 32, 1000 entries (some small enough to go inline), checked on disk. */
static void write_batch_of(ctx *c, unsigned n, size_t blk)
{
    size_t flen = (size_t)n * blk;
    uint8_t *data = malloc(flen);
    dafs_io *ios = calloc(n, sizeof *ios);
    dafs_cqe *res = calloc(n, sizeof *res);
    CHECK(data != NULL && ios != NULL && res != NULL);
    fill_pattern(data, flen, n + blk);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "wb", O_RDWR | O_CREAT | O_TRUNC, 0644, &f), 0);
    for (unsigned i = 0; i < n; i++)
        ios[i] = (dafs_io){.op = DAFS_IO_WRITE, .file = f, .buf = data + (size_t)i * blk,
                           .len = blk, .offset = (uint64_t)i * blk};
    prefill(res, n);
    int rc = dafs_batch(c->s, ios, res, n);
    (void)dafs_close(f);
    CHECK_EQ(rc, 0);
    for (unsigned i = 0; i < n; i++)
        CHECK_EQ(res[i].res, (int64_t)blk);
    CHECK(disk_equals(&c->srv, "wb", 0, data, flen));
    free(data);
    free(ios);
    free(res);
    CHECK_EQ(dafs_unlink(c->s, "wb"), 0);
}

static void test_write_sizes(ctx *c)
{
    static const unsigned sizes[] = {1, 32, 1000};
    for (unsigned k = 0; k < 3; k++) {
        int before = test_failures;
        write_batch_of(c, sizes[k], BLK);
        write_batch_of(c, sizes[k], 100); /* inline */
        if (test_failures != before) {
            fprintf(stderr, "  (batch of %u)\n", sizes[k]);
            return;
        }
    }
}

/* ---- mixed reads, writes, appends and commits on several files ---- */

#define NFILES 4
#define MIXED 300

static void test_mixed(ctx *c)
{
    char names[NFILES][16];
    dafs_file *f[NFILES];
    size_t flen = 64 * BLK;
    for (int k = 0; k < NFILES; k++) {
        (void)snprintf(names[k], sizeof names[k], "mix%d", k);
        CHECK_EQ(disk_put(&c->srv, names[k], flen, 100 + k), 0);
        CHECK_EQ(dafs_open(c->s, names[k], O_RDWR, 0, &f[k]), 0);
    }
    static uint8_t expect[NFILES][64 * BLK];
    for (int k = 0; k < NFILES; k++)
        fill_pattern(expect[k], flen, 100 + k);
    uint8_t *rbuf = calloc(MIXED, BLK), *wbuf = malloc((size_t)MIXED * BLK);
    dafs_io ios[MIXED + 2];
    dafs_cqe res[MIXED + 2];
    CHECK(rbuf != NULL && wbuf != NULL);
    fill_pattern(wbuf, (size_t)MIXED * BLK, 7);
    /* Reads only of blocks no write in the batch touches (0..31), writes to
     * 32..63 with varied sizes; each block written at most once. */
    unsigned nr = 0, nw = 0;
    for (unsigned i = 0; i < MIXED; i++) {
        int k = (int)(i % NFILES);
        if (i % 3 != 0) {
            unsigned blk = (i * 13u) % 32u;
            ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f[k], .buf = rbuf + (size_t)i * BLK,
                               .len = BLK, .offset = (uint64_t)blk * BLK};
            nr++;
        } else {
            unsigned slot = i / 3; /* 0..99: file k = i%4, block 32 + slot/4 (distinct per file) */
            unsigned blk = 32u + slot / NFILES;
            size_t len = (slot % 5 == 0) ? 64 : (slot % 5 == 1) ? 1000 : BLK;
            ios[i] = (dafs_io){.op = DAFS_IO_WRITE, .file = f[k], .buf = wbuf + (size_t)i * BLK,
                               .len = len, .offset = (uint64_t)blk * BLK,
                               .flags = slot % 7 == 0 ? DAFS_IO_STABLE : 0u};
            memcpy(expect[k] + (size_t)blk * BLK, wbuf + (size_t)i * BLK, len);
            nw++;
        }
        ios[i].user_data = &ios[i];
    }
    ios[MIXED] = (dafs_io){.op = DAFS_IO_APPEND, .file = f[0], .buf = wbuf, .len = 200,
                           .user_data = &ios[MIXED]};
    ios[MIXED + 1] = (dafs_io){.op = DAFS_IO_COMMIT, .file = f[1], .flags = DAFS_IO_DATASYNC,
                               .user_data = &ios[MIXED + 1]};
    prefill(res, MIXED + 2);
    int rc = dafs_batch(c->s, ios, res, MIXED + 2);
    CHECK_EQ(rc, 0);
    for (unsigned i = 0; i < MIXED; i++) {
        CHECK(res[i].user_data == &ios[i]);
        CHECK_EQ(res[i].res, (int64_t)ios[i].len);
        if (ios[i].op == DAFS_IO_READ) {
            int k = (int)(i % NFILES);
            CHECK(memcmp(rbuf + (size_t)i * BLK, expect[k] + ios[i].offset, BLK) == 0);
        }
    }
    CHECK_EQ(res[MIXED].res, 200);
    CHECK_EQ(res[MIXED].offset, flen); /* appended at the end of mix0 */
    CHECK_EQ(res[MIXED + 1].res, 0);
    for (int k = 0; k < NFILES; k++) {
        CHECK(disk_equals(&c->srv, names[k], 0, expect[k], flen));
        (void)dafs_close(f[k]);
        CHECK_EQ(dafs_unlink(c->s, names[k]), 0);
    }
    CHECK(nr > 0 && nw > 0);
    free(rbuf);
    free(wbuf);
}

/* ---- a bad entry fails alone ---- */

static void test_bad_entries(ctx *c)
{
    CHECK_EQ(disk_put(&c->srv, "bad", 16 * BLK, 55), 0);
    uint8_t want[16 * BLK], got[16 * BLK];
    fill_pattern(want, sizeof want, 55);
    memset(got, 0, sizeof got);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "bad", O_RDWR, 0, &f), 0);
    /* the same open file with a forged handle, and with a stateid nobody has */
    struct dafs_file badfh = *f, badst = *f;
    badfh.fh.data[badfh.fh.len - 1] ^= 0x5a;
    badfh.fh.data[0] ^= 0x5a;
    badfh.stateid = 0;
    badst.stateid ^= 0x123456789ull;
    dafs_io ios[16];
    for (unsigned i = 0; i < 16; i++)
        ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = got + i * BLK, .len = BLK,
                           .offset = (uint64_t)i * BLK};
    ios[5].file = &badfh;
    ios[9].file = &badst;
    ios[12].op = 99;                 /* refused by the library, not sent */
    ios[13].len = 64u << 20;         /* above max_io */
    dafs_cqe res[16];
    prefill(res, 16);
    CHECK_EQ(dafs_batch(c->s, ios, res, 16), 0);
    for (unsigned i = 0; i < 16; i++) {
        if (i == 5) {
            CHECK(res[i].res == -DAFS_EBADHANDLE || res[i].res == -ESTALE);
        } else if (i == 9) {
            CHECK_EQ(res[i].res, -DAFS_EBADSTATEID);
        } else if (i == 12 || i == 13) {
            CHECK_EQ(res[i].res, -EINVAL);
        } else {
            CHECK_EQ(res[i].res, BLK);
            CHECK(memcmp(got + i * BLK, want + i * BLK, BLK) == 0);
        }
    }
    /* the same in writes: the good ones land, the bad ones change nothing */
    uint8_t w[4 * BLK];
    fill_pattern(w, sizeof w, 56);
    dafs_io wios[4];
    for (unsigned i = 0; i < 4; i++)
        wios[i] = (dafs_io){.op = DAFS_IO_WRITE, .file = f, .buf = w + i * BLK, .len = BLK,
                            .offset = (uint64_t)i * BLK};
    wios[1].file = &badst;
    wios[2].file = &badfh;
    prefill(res, 4);
    CHECK_EQ(dafs_batch(c->s, wios, res, 4), 0);
    CHECK_EQ(res[0].res, BLK);
    CHECK_EQ(res[1].res, -DAFS_EBADSTATEID);
    CHECK(res[2].res == -DAFS_EBADHANDLE || res[2].res == -ESTALE);
    CHECK_EQ(res[3].res, BLK);
    CHECK(disk_equals(&c->srv, "bad", 0, w, BLK));
    CHECK(disk_equals(&c->srv, "bad", BLK, want + BLK, 2 * BLK));
    CHECK(disk_equals(&c->srv, "bad", 3 * BLK, w + 3 * BLK, BLK));
    (void)dafs_close(f);
    CHECK_EQ(dafs_unlink(c->s, "bad"), 0);
}

/* ---- more messages than credits ---- */

static void test_over_credits(ctx *c)
{
    dafs_options o = {.max_credits = 2};
    dafs_session *s2;
    CHECK_EQ(dafs_connect(c->srv.url, &o, &s2), 0);
    dafs_session_info info;
    CHECK_EQ(dafs_session_get_info(s2, &info), 0);
    unsigned n = 3000; /* several messages per credit */
    size_t flen = (size_t)64 * BLK;
    CHECK_EQ(disk_put(&c->srv, "cr", flen, 9), 0);
    uint8_t *want = malloc(flen), *got = malloc((size_t)n * BLK);
    dafs_io *ios = calloc(n, sizeof *ios);
    dafs_cqe *res = calloc(n, sizeof *res);
    CHECK(want != NULL && got != NULL && ios != NULL && res != NULL);
    fill_pattern(want, flen, 9);
    dafs_file *f;
    CHECK_EQ(dafs_open(s2, "cr", O_RDONLY, 0, &f), 0);
    for (unsigned i = 0; i < n; i++)
        ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = got + (size_t)i * BLK,
                           .len = BLK, .offset = (uint64_t)(i % 64) * BLK};
    prefill(res, n);
    int rc = dafs_batch(s2, ios, res, n);
    (void)dafs_close(f);
    CHECK_EQ(dafs_disconnect(s2), 0);
    CHECK_EQ(rc, 0);
    CHECK(info.credits <= 2);
    for (unsigned i = 0; i < n; i++) {
        CHECK_EQ(res[i].res, BLK);
        CHECK(memcmp(got + (size_t)i * BLK, want + (size_t)(i % 64) * BLK, BLK) == 0);
    }
    free(want);
    free(got);
    free(ios);
    free(res);
    CHECK_EQ(dafs_unlink(c->s, "cr"), 0);
}

/* ---- the server dies with a batch in flight ---- */

typedef struct looper {
    dafs_session *s;
    dafs_file *f;
    unsigned n;
    uint8_t *buf;
    dafs_io *ios;
    dafs_cqe *res;
    atomic_uint done; /* batches completed without error */
    int last_rc;
} looper;

static void *loop_batches(void *arg)
{
    looper *l = arg;
    for (;;) {
        prefill(l->res, l->n);
        int rc = dafs_batch(l->s, l->ios, l->res, l->n);
        if (rc != 0) {
            l->last_rc = rc;
            return NULL;
        }
        atomic_fetch_add(&l->done, 1);
    }
}

static void test_server_killed(ctx *c)
{
    test_server srv;
    CHECK_EQ(test_server_start(c->dafsd, &srv), 0);
    dafs_options o = {.timeout_ms = 3000};
    dafs_session *s2 = NULL;
    int rc = disk_put(&srv, "k", 256 * BLK, 3);
    if (rc == 0)
        rc = dafs_connect(srv.url, &o, &s2);
    /* shm (libfabric 1.17) queues a message under a spin lock in the
     * receiver's shared region; a server killed while holding it leaves a
     * send that is already spinning on it there forever (see
     * dfab_peer_lost).  So on shm a batch is one message: after the kill the
     * client sends only once the server is gone, and the library sees that
     * first.  On tcp, three messages per batch. */
    dafs_session_info info;
    bool shm = rc == 0 && dafs_session_get_info(s2, &info) == 0 &&
               strcmp(info.provider, "shm") == 0;
    looper l = {.s = s2, .n = shm ? 128 : 512};
    if (rc == 0)
        rc = dafs_open(s2, "k", O_RDONLY, 0, &l.f);
    l.buf = malloc((size_t)l.n * BLK);
    l.ios = calloc(l.n, sizeof *l.ios);
    l.res = calloc(l.n, sizeof *l.res);
    pthread_t t;
    bool started = false;
    if (rc == 0 && l.buf && l.ios && l.res) {
        for (unsigned i = 0; i < l.n; i++)
            l.ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = l.f, .buf = l.buf + (size_t)i * BLK,
                                 .len = BLK, .offset = (uint64_t)(i % 256) * BLK,
                                 .user_data = (void *)(uintptr_t)i};
        started = pthread_create(&t, NULL, loop_batches, &l) == 0;
    }
    /* kill it while batches keep going: after the second one completed */
    int64_t until = now_ms() + 30000;
    while (started && atomic_load(&l.done) < 2 && l.last_rc == 0 && now_ms() < until)
        usleep(1000);
    unsigned before_kill = atomic_load(&l.done);
    (void)kill(srv.pid, SIGKILL);
    (void)waitpid(srv.pid, NULL, 0);
    srv.pid = -1;
    if (started)
        pthread_join(t, NULL);
    unsigned ok = 0, failed = 0, bad = 0;
    for (unsigned i = 0; started && i < l.n; i++) {
        if (l.res[i].res == SENTINEL || l.res[i].user_data != (void *)(uintptr_t)i)
            bad++;
        else if (l.res[i].res == BLK)
            ok++;
        else if (l.res[i].res < 0)
            failed++;
        else
            bad++;
    }
    if (s2 != NULL) {
        if (l.f != NULL)
            (void)dafs_close(l.f); /* fails: the session is gone */
        (void)dafs_disconnect(s2);
    }
    test_server_stop(&srv);
    free(l.buf);
    free(l.ios);
    free(l.res);
    CHECK_EQ(rc, 0);
    CHECK(started);
    CHECK(before_kill >= 2);
    CHECK(l.last_rc < 0);
    CHECK_EQ(bad, 0);
    CHECK(failed > 0);
    CHECK_EQ(ok + failed, l.n);
}

/* ---- a client dies with a batch in flight ---- */

static int child_main(const char *url, const char *name)
{
    dafs_session *s;
    if (dafs_connect(url, NULL, &s) != 0)
        return 1;
    dafs_file *f;
    if (dafs_open(s, name, O_RDWR, 0, &f) != 0)
        return 1;
    enum { N = 256 };
    static uint8_t buf[N * BLK];
    static dafs_io ios[N];
    static dafs_cqe res[N];
    for (unsigned i = 0; i < N; i++)
        ios[i] = (dafs_io){.op = i % 2 ? DAFS_IO_READ : DAFS_IO_WRITE, .file = f,
                           .buf = buf + (size_t)i * BLK, .len = BLK,
                           .offset = (uint64_t)(i % 64) * BLK};
    for (unsigned round = 0;; round++) {
        if (dafs_batch(s, ios, res, N) != 0)
            return 1;
        if (round == 1 && write(1, "r", 1) != 1) /* tell the parent: batches are going */
            return 1;
    }
}

/* On its own server with a short --io-timeout-ms: the workers the dead
 * client's requests hold are busy until their transfers time out. */
static void client_killed_on(ctx *c)
{
    CHECK_EQ(disk_put(&c->srv, "ck", 64 * BLK, 4), 0);
    int p[2];
    CHECK_EQ(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) {
        (void)dup2(p[1], 1);
        close(p[0]);
        execl("/proc/self/exe", "test_batch", "--child", c->srv.url, "ck", (char *)NULL);
        _exit(127);
    }
    close(p[1]);
    CHECK(pid > 0);
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    char ch = 0;
    int ready = poll(&pfd, 1, 30000) == 1 && read(p[0], &ch, 1) == 1;
    (void)kill(pid, SIGKILL); /* with batches in flight */
    (void)waitpid(pid, NULL, 0);
    close(p[0]);
    CHECK(ready && ch == 'r');
    /* the server goes on serving others: a client that connects now (one
     * that waited meanwhile may have given up while the dead client's
     * transfers timed out) */
    dafs_session *s2;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    int bad = 0;
    for (int k = 0; k < 2 && bad == 0; k++) {
        uint8_t w[32 * BLK], r[32 * BLK];
        fill_pattern(w, sizeof w, 77 + k);
        memset(r, 0, sizeof r);
        dafs_file *f;
        if (dafs_open(s2, "after", O_RDWR | O_CREAT | O_TRUNC, 0644, &f) != 0) {
            bad = 1;
            break;
        }
        dafs_io ios[64];
        dafs_cqe res[64];
        for (unsigned i = 0; i < 32; i++)
            ios[i] = (dafs_io){.op = DAFS_IO_WRITE, .file = f, .buf = w + i * BLK, .len = BLK,
                               .offset = (uint64_t)i * BLK};
        prefill(res, 64);
        int brc = dafs_batch(s2, ios, res, 32);
        if (brc != 0) {
            fprintf(stderr, "  batch after the kill: %s\n", dafs_strerror(brc));
            bad = 2;
        }
        for (unsigned i = 0; i < 32; i++)
            ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = r + i * BLK, .len = BLK,
                               .offset = (uint64_t)i * BLK};
        if (bad == 0 && dafs_batch(s2, ios, res + 32, 32) != 0)
            bad = 3;
        (void)dafs_close(f);
        for (unsigned i = 0; i < 64 && bad == 0; i++)
            if (res[i].res != BLK)
                bad = 4;
        if (bad == 0 && memcmp(w, r, sizeof w) != 0)
            bad = 5;
    }
    int un = dafs_unlink(s2, "after");
    int un2 = dafs_unlink(s2, "ck");
    CHECK_EQ(dafs_disconnect(s2), 0);
    CHECK_EQ(bad, 0);
    CHECK_EQ(un, 0);
    CHECK_EQ(un2, 0);
}

static void test_client_killed(ctx *c)
{
    /* Not on shm: there a client killed with direct I/O in flight leaves
     * dafsd unable to finish transfers with the next client for a while (its
     * session is closed by the I/O timeout).  That happens with plain
     * dafs_pread in the killed client too, so it is not a batch matter; it
     * is reported as an open problem of the server/transport. */
    dafs_session_info info;
    CHECK_EQ(dafs_session_get_info(c->s, &info), 0);
    if (strcmp(info.provider, "shm") == 0) {
        printf("skip client_killed on shm (a dead shm client stalls dafsd; not batch-specific)\n");
        return;
    }
    static const char *const opts[] = {"--no-root-squash", "--io-timeout-ms", "1000", NULL};
    ctx own = {.dafsd = c->dafsd};
    CHECK_EQ(test_server_start_opts(c->dafsd, &own.srv, opts), 0);
    int rc = dafs_connect(own.srv.url, NULL, &own.s);
    if (rc == 0) {
        client_killed_on(&own);
        (void)dafs_disconnect(own.s); /* may have given up meanwhile: see above */
    }
    test_server_stop(&own.srv);
    CHECK_EQ(rc, 0);
}

/* ---- asynchronous batches (the internal API completion groups use) ---- */

typedef struct tally {
    pthread_mutex_t mu;
    unsigned n;
    unsigned *times;   /* completions seen per entry */
    int64_t *res;
} tally;

static void tally_cb(void *arg, const dafs_cqe *cqe)
{
    tally *t = arg;
    uintptr_t i = (uintptr_t)cqe->user_data;
    pthread_mutex_lock(&t->mu);
    if (i < t->n) {
        t->times[i]++;
        t->res[i] = cqe->res;
    }
    pthread_mutex_unlock(&t->mu);
}

static bool tally_init(tally *t, unsigned n)
{
    pthread_mutex_init(&t->mu, NULL);
    t->n = n;
    t->times = calloc(n, sizeof *t->times);
    t->res = calloc(n, sizeof *t->res);
    return t->times != NULL && t->res != NULL;
}

static void tally_free(tally *t)
{
    free(t->times);
    free(t->res);
    pthread_mutex_destroy(&t->mu);
}

/* Every entry completed exactly once with want (or, want 0: any error). */
static unsigned tally_bad(tally *t, int64_t want)
{
    unsigned bad = 0;
    pthread_mutex_lock(&t->mu);
    for (unsigned i = 0; i < t->n; i++)
        if (t->times[i] != 1 || (want != 0 ? t->res[i] != want : t->res[i] >= 0)) {
            if (bad++ < 3)
                fprintf(stderr, "  entry %u: %u completion(s), res %lld\n", i, t->times[i],
                        (long long)t->res[i]);
        }
    pthread_mutex_unlock(&t->mu);
    return bad;
}

static void reads_of(dafs_io *ios, unsigned n, dafs_file *f, uint8_t *buf, unsigned nblocks)
{
    for (unsigned i = 0; i < n; i++)
        ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = f, .buf = buf + (size_t)i * BLK,
                           .len = BLK, .offset = (uint64_t)(i % nblocks) * BLK,
                           .user_data = (void *)(uintptr_t)i};
}

/* notify after N: 100 entries, N = 32, a long window: three messages of 32
 * come at once, the last 4 only on HURRY_UP. */
static void test_async_notify_n(ctx *c)
{
    enum { N = 100 };
    CHECK_EQ(disk_put(&c->srv, "an", N * BLK, 21), 0);
    static uint8_t want[N * BLK], got[N * BLK];
    fill_pattern(want, sizeof want, 21);
    memset(got, 0, sizeof got);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "an", O_RDONLY, 0, &f), 0);
    dafs_io ios[N];
    reads_of(ios, N, f, got, N);
    tally t;
    CHECK(tally_init(&t, N));
    unsigned before = batch_async_notifications(c->s);
    CHECK_EQ(batch_async_submit(c->s, ios, N, 32, 60u * 1000 * 1000, tally_cb, &t), N);
    CHECK_EQ(batch_async_wait(c->s, 4, 20000), 0);
    CHECK_EQ(batch_async_notifications(c->s) - before, 3);
    CHECK_EQ(batch_async_in_flight(c->s), 4); /* held: the window is a minute */
    CHECK_EQ(batch_async_hurry(c->s), 0);
    CHECK_EQ(batch_async_wait(c->s, 0, 20000), 0);
    CHECK_EQ(batch_async_notifications(c->s) - before, 4);
    CHECK_EQ(tally_bad(&t, BLK), 0);
    CHECK(memcmp(got, want, sizeof got) == 0);
    tally_free(&t);
    /* the same with a 100 ms window: the last 8 of 40 come when it expires, no HURRY_UP */
    CHECK(tally_init(&t, 40));
    memset(got, 0, sizeof got);
    before = batch_async_notifications(c->s);
    CHECK_EQ(batch_async_submit(c->s, ios, 40, 32, 100u * 1000, tally_cb, &t), 40);
    CHECK_EQ(batch_async_wait(c->s, 0, 20000), 0);
    CHECK_EQ(batch_async_notifications(c->s) - before, 2);
    CHECK_EQ(tally_bad(&t, BLK), 0);
    CHECK(memcmp(got, want, 40 * BLK) == 0);
    tally_free(&t);
    (void)dafs_close(f);
    /* back to the default for the next tests */
    CHECK_EQ(batch_async_submit(c->s, NULL, 0, DAFS_BATCH_NOTIFY_ALL, 0, tally_cb, &t), 0);
    CHECK_EQ(dafs_unlink(c->s, "an"), 0);
}

/* notify all: one message per batch, holding all of its completions; writes
 * land on disk; a bad handle fails alone. */
static void test_async_notify_all(ctx *c)
{
    enum { N = 50, B = 3 };
    CHECK_EQ(disk_put(&c->srv, "aa", 2 * N * BLK, 22), 0);
    static uint8_t want[2 * N * BLK], got[B * N * BLK], w[N * BLK];
    fill_pattern(want, sizeof want, 22);
    fill_pattern(w, sizeof w, 23);
    memset(got, 0, sizeof got);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "aa", O_RDWR, 0, &f), 0);
    struct dafs_file badfh = *f;
    badfh.fh.data[0] ^= 0x5a;
    badfh.stateid = 0;
    tally t;
    CHECK(tally_init(&t, B * N));
    unsigned before = batch_async_notifications(c->s);
    for (unsigned b = 0; b < B; b++) {
        dafs_io ios[N];
        reads_of(ios, N, f, got + (size_t)b * N * BLK, N); /* blocks 0..N-1 */
        for (unsigned i = 0; i < N; i++)
            ios[i].user_data = (void *)(uintptr_t)(b * N + i);
        if (b == 1) /* the second batch writes blocks N..2N-1 instead */
            for (unsigned i = 0; i < N; i++) {
                ios[i].op = DAFS_IO_WRITE;
                ios[i].buf = w + (size_t)i * BLK;
                ios[i].offset = (uint64_t)(N + i) * BLK;
            }
        if (b == 2)
            ios[7].file = &badfh;
        CHECK_EQ(batch_async_submit(c->s, ios, N, DAFS_BATCH_NOTIFY_ALL, 0, tally_cb, &t), N);
        CHECK_EQ(batch_async_wait(c->s, 0, 20000), 0);
        CHECK_EQ(batch_async_notifications(c->s) - before, b + 1);
    }
    pthread_mutex_lock(&t.mu);
    bool bad7 = t.times[2 * N + 7] == 1 &&
                (t.res[2 * N + 7] == -DAFS_EBADHANDLE || t.res[2 * N + 7] == -ESTALE);
    t.times[2 * N + 7] = 1;
    t.res[2 * N + 7] = BLK;
    pthread_mutex_unlock(&t.mu);
    CHECK(bad7);
    CHECK_EQ(tally_bad(&t, BLK), 0);
    CHECK(memcmp(got, want, N * BLK) == 0);
    CHECK(memcmp(got + 2 * N * BLK, want, 7 * BLK) == 0);
    CHECK(memcmp(got + (2 * N + 8) * BLK, want + 8 * BLK, (N - 8) * BLK) == 0);
    CHECK(disk_equals(&c->srv, "aa", (uint64_t)N * BLK, w, sizeof w));
    tally_free(&t);
    (void)dafs_close(f);
    CHECK_EQ(dafs_unlink(c->s, "aa"), 0);
}

/* More entries than the server keeps unreported: it pushes back (WHOA), the
 * library waits for completions and sends again; nothing is lost. */
static void test_async_pushback(ctx *c)
{
    enum { N = 3000 };
    CHECK_EQ(disk_put(&c->srv, "ap", 64 * BLK, 24), 0);
    uint8_t *got = malloc((size_t)N * BLK);
    dafs_io *ios = calloc(N, sizeof *ios);
    CHECK(got != NULL && ios != NULL);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "ap", O_RDONLY, 0, &f), 0);
    reads_of(ios, N, f, got, 64);
    tally t;
    CHECK(tally_init(&t, N));
    unsigned pb = batch_async_pushbacks(c->s);
    /* completions held back (a huge N, a minute's window) until pushed */
    CHECK_EQ(batch_async_submit(c->s, ios, N, 1000000, 60u * 1000 * 1000, tally_cb, &t), N);
    CHECK(batch_async_pushbacks(c->s) > pb);
    CHECK_EQ(batch_async_hurry(c->s), 0);
    CHECK_EQ(batch_async_wait(c->s, 0, 30000), 0);
    CHECK_EQ(tally_bad(&t, BLK), 0);
    uint8_t want[64 * BLK];
    fill_pattern(want, sizeof want, 24);
    for (unsigned i = 0; i < N; i++)
        CHECK(memcmp(got + (size_t)i * BLK, want + (size_t)(i % 64) * BLK, BLK) == 0);
    tally_free(&t);
    free(got);
    free(ios);
    (void)dafs_close(f);
    CHECK_EQ(batch_async_submit(c->s, NULL, 0, DAFS_BATCH_NOTIFY_ALL, 1, tally_cb, &t), 0);
    CHECK_EQ(dafs_unlink(c->s, "ap"), 0);
}

/* The server dies with asynchronous entries in flight (held back on it):
 * every entry completes, with an error, exactly once. */
static void test_async_server_killed(ctx *c)
{
    enum { N = 200 };
    test_server srv;
    CHECK_EQ(test_server_start(c->dafsd, &srv), 0);
    dafs_options o = {.timeout_ms = 3000};
    dafs_session *s2 = NULL;
    dafs_file *f = NULL;
    static uint8_t got[N * BLK];
    dafs_io ios[N];
    tally t;
    bool ok = tally_init(&t, N);
    int rc = disk_put(&srv, "ak", 64 * BLK, 25);
    if (rc == 0)
        rc = dafs_connect(srv.url, &o, &s2);
    if (rc == 0)
        rc = dafs_open(s2, "ak", O_RDONLY, 0, &f);
    int sub = -1, waited = 0;
    unsigned held = 0;
    if (rc == 0) {
        reads_of(ios, N, f, got, 64);
        sub = batch_async_submit(s2, ios, N, 1000000, 60u * 1000 * 1000, tally_cb, &t);
        held = batch_async_in_flight(s2);
    }
    (void)kill(srv.pid, SIGKILL);
    (void)waitpid(srv.pid, NULL, 0);
    srv.pid = -1;
    if (s2 != NULL)
        waited = batch_async_wait(s2, 0, 30000);
    unsigned bad = ok ? tally_bad(&t, 0) : N;
    if (f != NULL)
        (void)dafs_close(f); /* fails: the server is gone; frees f */
    if (s2 != NULL)
        (void)dafs_disconnect(s2);
    test_server_stop(&srv);
    tally_free(&t);
    CHECK_EQ(rc, 0);
    CHECK_EQ(sub, N);
    CHECK_EQ(held, N);
    CHECK(waited < 0);
    CHECK_EQ(bad, 0);
}

static void test_args(ctx *c)
{
    dafs_cqe res[1];
    CHECK_EQ(dafs_batch(NULL, NULL, NULL, 0), -EINVAL);
    CHECK_EQ(dafs_batch(c->s, NULL, res, 0), 0);
    CHECK_EQ(dafs_batch(c->s, NULL, res, 1), -EINVAL);
}

static const test_case tests[] = {
    {"args", test_args},
    {"read_sizes", test_read_sizes},
    {"write_sizes", test_write_sizes},
    {"mixed", test_mixed},
    {"bad_entries", test_bad_entries},
    {"over_credits", test_over_credits},
    {"client_killed", test_client_killed},
    {"server_killed", test_server_killed},
    {"async_notify_n", test_async_notify_n},
    {"async_notify_all", test_async_notify_all},
    {"async_pushback", test_async_pushback},
    {"async_server_killed", test_async_server_killed},
};

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], argv[3]);
    return run_session_tests(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
