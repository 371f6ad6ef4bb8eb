/*
 * test_hint.c — cache hints against a real dafsd: dafs_cache_hint() and the
 * per-request hints of READ and WRITE must change the server's page cache.
 *
 * Usage: test_hint DAFSD_PATH [TEST_NAME...]
 * The server runs on this machine, so its page cache is ours: the test maps
 * the exported file (never touching the mapping) and asks mincore(2) which
 * of its pages are resident, polling with a deadline for the state a hint
 * should bring about.  An export on tmpfs cannot drop pages (they are its
 * storage), so there the page-cache checks are skipped, saying so.
 *
 * It links libdafs statically to reach file_io_hint() (the per-request hint
 * the asynchronous and batch code passes) and, to send a stateid the server
 * never issued, the dafs_file layout.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "dafs/dafs.h"
#include "server_fixture.h"

typedef test_ctx ctx;

#define FILE_SIZE (8u << 20)
#define MIB (1u << 20)
#define DEADLINE_MS 20000

/* A local view of the exported file: its fd and a mapping mincore can ask. */
typedef struct view {
    int fd;
    uint8_t *map;
    size_t page;
} view;

static int view_open(const ctx *c, const char *name, view *v)
{
    char path[512];
    (void)snprintf(path, sizeof path, "%s/%s", c->srv.export_dir, name);
    v->page = (size_t)sysconf(_SC_PAGESIZE);
    v->fd = open(path, O_RDWR);
    if (v->fd < 0)
        return -1;
    v->map = mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, v->fd, 0);
    if (v->map == MAP_FAILED) {
        close(v->fd);
        return -1;
    }
    return 0;
}

static void view_close(view *v)
{
    (void)munmap(v->map, FILE_SIZE);
    close(v->fd);
}

/* Resident pages of [off, off+len) (page-aligned), or -1. */
static long resident(const view *v, size_t off, size_t len)
{
    size_t n = len / v->page;
    unsigned char *vec = malloc(n);
    if (vec == NULL || mincore(v->map + off, len, vec) != 0) {
        free(vec);
        return -1;
    }
    long count = 0;
    for (size_t i = 0; i < n; i++)
        count += vec[i] & 1;
    free(vec);
    return count;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll until [off, off+len) is entirely resident (want_all) or entirely
 * dropped; false at the deadline.  Read-ahead is best effort: the kernel
 * gives up on a page it cannot allocate at once (CI saw 511 of 512 pages
 * stay out for 20 s), so at the deadline 7/8 of the range counts as read
 * ahead; without the hint none of it would be.  Dropping is exact. */
static bool wait_resident(const view *v, size_t off, size_t len, bool want_all)
{
    long want = want_all ? (long)(len / v->page) : 0;
    long long end = now_ms() + DEADLINE_MS;
    for (;;) {
        long got = resident(v, off, len);
        if (got == want)
            return true;
        bool late = now_ms() > end;
        if (late && want_all && got >= want - want / 8) {
            fprintf(stderr, "  [%zu, +%zu): %ld of %ld pages resident: accepted\n", off, len,
                    got, want);
            return true;
        }
        if (got < 0 || late) {
            fprintf(stderr, "  [%zu, +%zu): %ld of %ld pages resident, wanted %ld\n", off, len,
                    got, (long)(len / v->page), want);
            return false;
        }
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/* Bring [off, off+len) into the page cache by reading it locally, without
 * read-ahead (POSIX_FADV_RANDOM on our fd): the kernel then caches it in
 * single pages.  (It drops only whole folios, and read-ahead may cache a
 * file in folios of up to 2 MiB, larger than a 1 MiB request whose hint is
 * to drop exactly its own range.) */
static bool load(const view *v, size_t off, size_t len)
{
    uint8_t buf[16 << 10];
    if (posix_fadvise(v->fd, 0, 0, POSIX_FADV_RANDOM) != 0)
        return false;
    for (size_t pos = 0; pos < len; pos += sizeof buf)
        if (pread(v->fd, buf, sizeof buf, (off_t)(off + pos)) != (ssize_t)sizeof buf)
            return false;
    return wait_resident(v, off, len, true);
}

static bool on_tmpfs(const ctx *c)
{
    struct statfs fs;
    if (statfs(c->srv.export_dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC) {
        fprintf(stderr, "  export on tmpfs: page-cache checks skipped\n");
        return true;
    }
    return false;
}

/* A FILE_SIZE file of known bytes, on disk, owned by us. */
static int make_file(const ctx *c, const char *name)
{
    char path[512];
    (void)snprintf(path, sizeof path, "%s/%s", c->srv.export_dir, name);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    if (fd < 0)
        return -1;
    uint8_t *buf = malloc(MIB);
    int rc = buf != NULL ? 0 : -1;
    for (size_t off = 0; rc == 0 && off < FILE_SIZE; off += MIB) {
        for (size_t i = 0; i < MIB; i++)
            buf[i] = (uint8_t)((off + i) * 7 + 3);
        if (pwrite(fd, buf, MIB, (off_t)off) != (ssize_t)MIB)
            rc = -1;
    }
    free(buf);
    /* on disk, and out of the cache (the writes cached it in large folios) */
    if (fsync(fd) != 0 || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) != 0)
        rc = -1;
    close(fd);
    return rc;
}

/* ---- tests ---- */

/* DONTNEED drops a range (dirty pages too, written back first); WILLNEED
 * brings it back. */
static void test_cache_hint(ctx *c)
{
    if (on_tmpfs(c))
        return;
    CHECK_EQ(make_file(c, "hint.dat"), 0);
    view v;
    CHECK_EQ(view_open(c, "hint.dat", &v), 0);
    dafs_file *f = NULL;
    int rc = dafs_open(c->s, "hint.dat", O_RDWR, 0, &f);
    bool ok = rc == 0 && load(&v, 0, FILE_SIZE);

    /* clean pages */
    ok = ok && dafs_cache_hint(f, 2 * MIB, 2 * MIB, DAFS_HINT_DONTNEED) == 0 &&
         wait_resident(&v, 2 * MIB, 2 * MIB, false);
    bool dropped_clean = ok;
    ok = ok && dafs_cache_hint(f, 2 * MIB, 2 * MIB, DAFS_HINT_WILLNEED) == 0 &&
         wait_resident(&v, 2 * MIB, 2 * MIB, true);
    bool prefetched = ok;

    /* dirty pages: written through dafs, dropped only after write-back */
    static uint8_t data[256 << 10];
    memset(data, 0x5a, sizeof data);
    ok = ok && dafs_pwrite(f, data, sizeof data, 4 * MIB) == (ssize_t)sizeof data &&
         dafs_cache_hint(f, 4 * MIB, sizeof data, DAFS_HINT_DONTNEED) == 0 &&
         wait_resident(&v, 4 * MIB, sizeof data, false);
    bool dropped_dirty = ok;
    uint8_t back[4096];
    ok = ok && pread(v.fd, back, sizeof back, 4 * MIB + 8192) == (ssize_t)sizeof back &&
         back[0] == 0x5a && back[sizeof back - 1] == 0x5a;
    bool data_kept = ok;

    /* len 0 = to the end of the file; the other advice is accepted */
    ok = ok && dafs_cache_hint(f, 6 * MIB, 0, DAFS_HINT_DONTNEED) == 0 &&
         wait_resident(&v, 6 * MIB, 2 * MIB, false);
    bool to_end = ok;
    int rc_seq = f ? dafs_cache_hint(f, 0, 0, DAFS_HINT_SEQUENTIAL) : -1;
    int rc_rand = f ? dafs_cache_hint(f, 0, MIB, DAFS_HINT_RANDOM) : -1;
    int rc_norm = f ? dafs_cache_hint(f, 0, 0, DAFS_HINT_NORMAL) : -1;
    if (f != NULL)
        (void)dafs_close(f);
    view_close(&v);
    CHECK_EQ(rc, 0);
    CHECK(dropped_clean);
    CHECK(prefetched);
    CHECK(dropped_dirty);
    CHECK(data_kept);
    CHECK(to_end);
    CHECK_EQ(rc_seq, 0);
    CHECK_EQ(rc_rand, 0);
    CHECK_EQ(rc_norm, 0);
    CHECK_EQ(dafs_unlink(c->s, "hint.dat"), 0);
}

/* The hints field of READ and WRITE (file_io_hint). */
static void test_request_hints(ctx *c)
{
    if (on_tmpfs(c))
        return;
    CHECK_EQ(make_file(c, "req.dat"), 0);
    view v;
    CHECK_EQ(view_open(c, "req.dat", &v), 0);
    dafs_file *f = NULL;
    int rc = dafs_open(c->s, "req.dat", O_RDWR, 0, &f);
    static uint8_t buf[1 << 20];
    bool ok = rc == 0 && load(&v, 0, FILE_SIZE);

    /* READ + DONTNEED: the range read is dropped afterwards (checked data too) */
    ok = ok && file_io_hint(f->s, f->cred, &f->fh, f->stateid, false, buf, MIB, 2 * MIB,
                            DAFS_WIRE_HINT_DONTNEED) == (ssize_t)MIB &&
         buf[5] == (uint8_t)((2 * MIB + 5) * 7 + 3) && wait_resident(&v, 2 * MIB, MIB, false);
    bool read_dropped = ok;

    /* READ + WILLNEED: what follows the range is read ahead.  RANDOM advice
     * first stops the kernel's own read-ahead on the server's fd, and a read
     * without the hint shows it: nothing after it comes in. */
    ok = ok && dafs_cache_hint(f, 0, 0, DAFS_HINT_DONTNEED) == 0 &&
         wait_resident(&v, 0, FILE_SIZE, false) &&
         dafs_cache_hint(f, 0, 0, DAFS_HINT_RANDOM) == 0 &&
         dafs_pread(f, buf, 64 << 10, 1 * MIB) == (ssize_t)(64 << 10) &&
         wait_resident(&v, 1 * MIB, 64 << 10, true);
    long control = ok ? resident(&v, 1 * MIB + (128 << 10), 64 << 10) : -1;
    ok = ok && control == 0 &&
         file_io_hint(f->s, f->cred, &f->fh, f->stateid, false, buf, 64 << 10, 5 * MIB,
                      DAFS_WIRE_HINT_WILLNEED) == (ssize_t)(64 << 10) &&
         wait_resident(&v, 5 * MIB + (128 << 10), 64 << 10, true);
    bool read_ahead = ok;

    /* WRITE + DONTNEED: the written (dirty) range is written back and dropped */
    memset(buf, 0xa5, sizeof buf);
    ok = ok && load(&v, 0, FILE_SIZE) &&
         file_io_hint(f->s, f->cred, &f->fh, f->stateid, true, buf, 512 << 10, 3 * MIB,
                      DAFS_WIRE_HINT_DONTNEED) == (ssize_t)(512 << 10) &&
         wait_resident(&v, 3 * MIB, 512 << 10, false);
    bool write_dropped = ok;
    uint8_t back[16];
    ok = ok && pread(v.fd, back, sizeof back, 3 * MIB + 100) == (ssize_t)sizeof back &&
         back[0] == 0xa5 && back[15] == 0xa5;
    bool data_kept = ok;
    ssize_t bad = f ? file_io_hint(f->s, f->cred, &f->fh, f->stateid, false, buf, 10, 0, 5) : 0;
    if (f != NULL)
        (void)dafs_close(f);
    view_close(&v);
    CHECK_EQ(rc, 0);
    CHECK(read_dropped);
    CHECK_EQ(control, 0); /* no read-ahead under RANDOM advice */
    CHECK(read_ahead);
    CHECK(write_dropped);
    CHECK(data_kept);
    CHECK_EQ(bad, -EINVAL);
    CHECK_EQ(dafs_unlink(c->s, "req.dat"), 0);
}

/* Bad input gets a clear error. */
static void test_hint_errors(ctx *c)
{
    dafs_file *f = NULL;
    CHECK_EQ(dafs_open(c->s, "err.dat", O_CREAT | O_RDWR, 0644, &f), 0);
    int unknown = dafs_cache_hint(f, 0, 0, DAFS_HINT_DONTNEED + 1);
    int negative = dafs_cache_hint(f, 0, 0, -1);
    int overflow = dafs_cache_hint(f, (uint64_t)INT64_MAX, 2, DAFS_HINT_NORMAL);
    dafs_stateid real = f->stateid;
    f->stateid = real ^ 0x5a5a00000000ull; /* a generation the server never issued */
    int forged = dafs_cache_hint(f, 0, 0, DAFS_HINT_WILLNEED);
    f->stateid = real;
    int fine = dafs_cache_hint(f, 0, 0, DAFS_HINT_WILLNEED);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_cache_hint(NULL, 0, 0, DAFS_HINT_NORMAL), -EINVAL);
    CHECK_EQ(unknown, -EINVAL);
    CHECK_EQ(negative, -EINVAL);
    CHECK_EQ(overflow, -EINVAL);
    CHECK_EQ(forged, -DAFS_EBADSTATEID);
    CHECK_EQ(fine, 0);

    /* a directory (no open state: the server opens it by handle) */
    CHECK_EQ(dafs_mkdir(c->s, "hint.dir", 0755), 0);
    dafs_fh fh;
    dafs_attr attr;
    CHECK_EQ(path_resolve(c->s, "hint.dir", false, &fh, &attr), 0);
    dafs_file *d = NULL;
    CHECK_EQ(file_new(c->s, atomic_load(&c->s->default_cred), &fh, O_RDONLY, 0, &d), 0);
    int isdir = dafs_cache_hint(d, 0, 0, DAFS_HINT_WILLNEED);
    CHECK_EQ(dafs_close(d), 0);
    CHECK_EQ(isdir, -EISDIR);
    CHECK_EQ(dafs_rmdir(c->s, "hint.dir"), 0);
    CHECK_EQ(dafs_unlink(c->s, "err.dat"), 0);
}

static const test_case tests[] = {
    {"cache_hint", test_cache_hint},
    {"request_hints", test_request_hints},
    {"hint_errors", test_hint_errors},
};

int main(int argc, char **argv)
{
    return run_session_tests(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
