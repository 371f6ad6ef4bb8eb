/*
 * test_client.c — libdafs against a real dafsd.
 *
 * Usage: test_client DAFSD_PATH [TEST_NAME...]
 * Starts dafsd on a scratch export (server_fixture.c), runs every test (or
 * the named ones) on one session, stops the server.  The provider comes from
 * FI_PROVIDER, which CTest sets ("tcp;ofi_rxm" and "shm"); both dafsd and the
 * library read it.  Data written through the library is checked both by
 * reading it back and by reading the server's copy on disk directly, so a
 * symmetric bug in the read and write paths cannot hide.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dafs/dafs.h"
#include "server_fixture.h"

typedef test_ctx ctx;

/* ---- data helpers ---- */

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

static uint64_t checksum(const uint8_t *buf, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ buf[i]) * 1099511628211ull;
    return h;
}

/* Read [off, off+len) of the server's copy of name straight from disk. */
static uint64_t disk_checksum(const ctx *c, const char *name, uint64_t off, size_t len)
{
    char path[512];
    (void)snprintf(path, sizeof path, "%s/%s", c->srv.export_dir, name);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    uint8_t *buf = malloc(len ? len : 1);
    ssize_t n = buf != NULL ? pread(fd, buf, len, (off_t)off) : -1;
    uint64_t h = n == (ssize_t)len ? checksum(buf, len) : 0;
    free(buf);
    close(fd);
    return h;
}

/* ---- tests ---- */

static void test_session_info(ctx *c)
{
    dafs_session_info info;
    CHECK_EQ(dafs_session_get_info(c->s, &info), 0);
    CHECK(info.credits >= 1);
    CHECK(info.max_request >= 1024 && info.max_response >= 1024);
    CHECK(info.session_id != 0);
    CHECK(info.provider[0] != '\0');
    CHECK_EQ(dafs_null(c->s), 0);
    printf("  provider %s, credits %u, inline %u, max_io %u, lease %u ms\n", info.provider,
           info.credits, info.inline_max, info.max_io, info.lease_ms);
}

static void test_open_flags(ctx *c)
{
    dafs_file *f, *g;
    struct dafs_stat st;
    CHECK_EQ(dafs_open(c->s, "/flags", O_RDWR | O_CREAT | O_EXCL, 0644, &f), 0);
    CHECK_EQ(dafs_open(c->s, "flags", O_RDWR | O_CREAT | O_EXCL, 0644, &g), -EEXIST);
    CHECK_EQ(dafs_pwrite(f, "hello", 5, 0), 5);
    CHECK_EQ(dafs_fstat(f, &st), 0);
    CHECK_EQ(st.size, 5);
    CHECK(S_ISREG(st.mode));
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_open(c->s, "flags", O_RDWR | O_CREAT, 0644, &f), 0); /* exists: fine */
    CHECK_EQ(dafs_fstat(f, &st), 0);
    CHECK_EQ(st.size, 5);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_open(c->s, "flags", O_WRONLY | O_TRUNC, 0, &f), 0);
    CHECK_EQ(dafs_fstat(f, &st), 0);
    CHECK_EQ(st.size, 0);
    char b[4];
    CHECK_EQ(dafs_pread(f, b, sizeof b, 0), -EBADF); /* write-only */
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_open(c->s, "flags", O_RDONLY, 0, &f), 0);
    CHECK_EQ(dafs_pwrite(f, "x", 1, 0), -EBADF); /* read-only */
    CHECK_EQ(dafs_fsync(f), 0);
    CHECK_EQ(dafs_fdatasync(f), 0);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_open(c->s, "flags", O_RDWR | O_APPEND, 0, &f), -EINVAL);
    CHECK_EQ(dafs_unlink(c->s, "flags"), 0);
}

/* Write len bytes at an odd offset, read them back, compare both copies. */
static void round_trip(ctx *c, size_t len, bool registered)
{
    const uint64_t off = 12347;
    char name[64];
    (void)snprintf(name, sizeof name, "rt-%zu-%s", len, registered ? "reg" : "unreg");
    size_t region = 2 * len + 64;
    uint8_t *mem = malloc(region);
    CHECK(mem != NULL);
    uint8_t *wbuf = mem + 3, *rbuf = mem + len + 40; /* unaligned on purpose */
    dafs_mr *mr = NULL;
    if (registered && dafs_mem_register(c->s, mem, region, &mr) != 0) {
        free(mem);
        CHECK(!"dafs_mem_register failed");
    }
    fill_pattern(wbuf, len, len + registered);
    memset(rbuf, 0xEE, len);
    dafs_file *f;
    int rc = dafs_open(c->s, name, O_RDWR | O_CREAT | O_TRUNC, 0644, &f);
    ssize_t w = rc == 0 ? dafs_pwrite(f, wbuf, len, off) : rc;
    ssize_t r = rc == 0 ? dafs_pread(f, rbuf, len, off) : rc;
    struct dafs_stat st = {0};
    int src = rc == 0 ? dafs_fstat(f, &st) : rc;
    if (rc == 0)
        (void)dafs_close(f);
    uint64_t want = checksum(wbuf, len), got = checksum(rbuf, len);
    uint64_t disk = disk_checksum(c, name, off, len);
    if (mr != NULL)
        CHECK_EQ(dafs_mem_deregister(mr), 0);
    free(mem);
    CHECK_EQ(rc, 0);
    CHECK_EQ(w, (ssize_t)len);
    CHECK_EQ(r, (ssize_t)len);
    CHECK_EQ(src, 0);
    CHECK_EQ(st.size, len == 0 ? 0 : off + len);
    CHECK(got == want);
    CHECK(disk == want);
    CHECK_EQ(dafs_unlink(c->s, name), 0);
}

static void test_round_trips(ctx *c)
{
    static const size_t sizes[] = {0, 1, 4095, 4096, 4097, (1u << 20) + 3, 64u << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        int before = test_failures;
        round_trip(c, sizes[i], false);
        round_trip(c, sizes[i], true);
        if (test_failures != before) {
            fprintf(stderr, "  round trip of %zu bytes failed\n", sizes[i]);
            return;
        }
    }
}

/* Reads from just under the provider's one-copy send size up to the inline
 * limit: on shm these go direct (RMA write plus a short reply) instead of
 * inline; either way the bytes, the count at EOF, and the bytes after a short
 * read (untouched) must be right, into registered memory or not, and again
 * once the server has the file's fd cached (its network-thread fast path). */
static void test_small_reads(ctx *c)
{
    enum { FILE_LEN = 20000, BUF = 8192 + 64 };
    static const size_t sizes[] = {1000, 4000, 4032, 4033, 4096, 4097, 6000, 8192};
    static const uint64_t offs[] = {0, 1, 4096, FILE_LEN - 8192, FILE_LEN - 1000, FILE_LEN};
    uint8_t *data = malloc(FILE_LEN), *mem = malloc(BUF);
    CHECK(data != NULL && mem != NULL);
    fill_pattern(data, FILE_LEN, 77);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "small", O_RDWR | O_CREAT | O_TRUNC, 0644, &f), 0);
    CHECK_EQ(dafs_pwrite(f, data, FILE_LEN, 0), FILE_LEN);
    for (int registered = 0; registered < 2; registered++) {
        dafs_mr *mr = NULL;
        if (registered)
            CHECK_EQ(dafs_mem_register(c->s, mem, BUF, &mr), 0);
        for (int pass = 0; pass < 2; pass++)
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
                for (size_t j = 0; j < sizeof offs / sizeof offs[0]; j++) {
                    uint8_t *buf = mem + 8; /* not page aligned */
                    size_t want = offs[j] >= FILE_LEN ? 0
                                  : FILE_LEN - offs[j] < sizes[i] ? FILE_LEN - offs[j]
                                                                 : sizes[i];
                    memset(mem, 0xEE, BUF);
                    ssize_t n = dafs_pread(f, buf, sizes[i], offs[j]);
                    bool ok = n == (ssize_t)want &&
                              (want == 0 || memcmp(buf, data + offs[j], want) == 0);
                    for (size_t k = want; ok && k < sizes[i]; k++)
                        ok = buf[k] == 0xEE;
                    if (!ok)
                        fprintf(stderr, "  read %zu at %llu (%s): %zd\n", sizes[i],
                                (unsigned long long)offs[j], registered ? "reg" : "unreg", n);
                    CHECK(ok);
                }
        if (mr != NULL)
            CHECK_EQ(dafs_mem_deregister(mr), 0);
    }
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_unlink(c->s, "small"), 0);
    free(data);
    free(mem);
}

static void test_sparse_and_eof(ctx *c)
{
    dafs_file *f;
    const uint64_t far = 10u << 20;
    CHECK_EQ(dafs_open(c->s, "sparse", O_RDWR | O_CREAT | O_TRUNC, 0644, &f), 0);
    CHECK_EQ(dafs_pwrite(f, "0123456789", 10, far), 10);
    struct dafs_stat st;
    CHECK_EQ(dafs_fstat(f, &st), 0);
    CHECK_EQ(st.size, far + 10);
    size_t hole = 200000; /* inline and direct chunks from the hole */
    uint8_t *buf = malloc(hole);
    CHECK(buf != NULL);
    memset(buf, 0xAB, hole);
    ssize_t n = dafs_pread(f, buf, hole, far - hole / 2);
    size_t nonzero = 0;
    for (size_t i = 0; i < hole / 2; i++)
        nonzero += buf[i] != 0;
    bool tail_ok = n == (ssize_t)(hole / 2 + 10) && memcmp(buf + hole / 2, "0123456789", 10) == 0;
    free(buf);
    CHECK_EQ(n, (ssize_t)(hole / 2 + 10)); /* short read: EOF */
    CHECK_EQ(nonzero, 0);
    CHECK(tail_ok);
    char small[16];
    CHECK_EQ(dafs_pread(f, small, sizeof small, far + 10), 0);   /* at EOF */
    CHECK_EQ(dafs_pread(f, small, sizeof small, far + 1000), 0); /* past EOF */
    CHECK_EQ(dafs_pread(f, small, sizeof small, far + 5), 5);
    CHECK(memcmp(small, "56789", 5) == 0);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_unlink(c->s, "sparse"), 0);
}

static void test_overwrite_middle(ctx *c)
{
    dafs_file *f;
    enum { LEN = 300000 };
    uint8_t *want = malloc(LEN), *got = malloc(LEN);
    CHECK(want != NULL && got != NULL);
    fill_pattern(want, LEN, 7);
    int rc = dafs_open(c->s, "middle", O_RDWR | O_CREAT | O_TRUNC, 0644, &f);
    ssize_t w1 = rc == 0 ? dafs_pwrite(f, want, LEN, 0) : rc;
    memset(want + 4000, 'b', 100);          /* inline overwrite */
    fill_pattern(want + 100001, 70000, 8);  /* direct overwrite */
    ssize_t w2 = rc == 0 ? dafs_pwrite(f, want + 4000, 100, 4000) : rc;
    ssize_t w3 = rc == 0 ? dafs_pwrite(f, want + 100001, 70000, 100001) : rc;
    ssize_t r = rc == 0 ? dafs_pread(f, got, LEN, 0) : rc;
    bool same = r == LEN && memcmp(want, got, LEN) == 0;
    bool disk = disk_checksum(c, "middle", 0, LEN) == checksum(want, LEN);
    if (rc == 0)
        (void)dafs_close(f);
    free(want);
    free(got);
    CHECK_EQ(rc, 0);
    CHECK_EQ(w1, LEN);
    CHECK_EQ(w2, 100);
    CHECK_EQ(w3, 70000);
    CHECK_EQ(r, LEN);
    CHECK(same);
    CHECK(disk);
    CHECK_EQ(dafs_unlink(c->s, "middle"), 0);
}

static void test_metadata(ctx *c)
{
    struct dafs_stat st;
    CHECK_EQ(dafs_stat(c->s, "/", &st), 0);
    CHECK(S_ISDIR(st.mode));
    CHECK_EQ(dafs_mkdir(c->s, "m", 0755), 0);
    CHECK_EQ(dafs_mkdir(c->s, "m", 0755), -EEXIST);
    CHECK_EQ(dafs_mkdir(c->s, "/m/n", 0700), 0);
    CHECK_EQ(dafs_stat(c->s, "m//n/", &st), 0);
    CHECK(S_ISDIR(st.mode));
    CHECK_EQ(st.mode & 0777, 0700);
    CHECK_EQ(dafs_stat(c->s, "./m/./n", &st), 0);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "m/n/file", O_WRONLY | O_CREAT, 0600, &f), 0);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_stat(c->s, "m/n/file", &st), 0);
    CHECK(S_ISREG(st.mode));
    CHECK_EQ(st.size, 0);
    CHECK(st.nlink >= 1);
    CHECK_EQ(dafs_stat(c->s, "m/n/file/", &st), -ENOTDIR);
    CHECK_EQ(dafs_rmdir(c->s, "m"), -ENOTEMPTY);
    CHECK_EQ(dafs_rmdir(c->s, "m/n/file"), -ENOTDIR);
    CHECK_EQ(dafs_unlink(c->s, "m/n/file"), 0);
    CHECK_EQ(dafs_stat(c->s, "m/n/file", &st), -ENOENT);
    CHECK_EQ(dafs_rmdir(c->s, "m/n"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "m/"), 0);
    CHECK_EQ(dafs_stat(c->s, "m", &st), -ENOENT);
    CHECK_EQ(dafs_rmdir(c->s, "/"), -EBUSY);
    struct dafs_statfs sf;
    CHECK_EQ(dafs_statfs(c->s, "/", &sf), 0);
    CHECK(sf.blocks > 0 && sf.bsize > 0 && sf.bavail <= sf.blocks);
    CHECK(sf.namemax >= 255);
}

static void test_readdir_large(ctx *c)
{
    enum { COUNT = 10000 };
    CHECK_EQ(dafs_mkdir(c->s, "big", 0755), 0);
    char path[512];
    for (int i = 0; i < COUNT; i++) { /* on disk directly: this tests listing */
        (void)snprintf(path, sizeof path, "%s/big/entry-%05d", c->srv.export_dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        CHECK(fd >= 0);
        close(fd);
    }
    uint8_t *seen = calloc(COUNT, 1);
    CHECK(seen != NULL);
    dafs_dir *d;
    int rc = dafs_opendir(c->s, "big", &d);
    int total = 0, dups = 0, strange = 0;
    dafs_dirent ent;
    while (rc == 0 && (rc = dafs_readdir(d, &ent)) == 1) {
        int n;
        char extra;
        if (sscanf(ent.name, "entry-%d%c", &n, &extra) != 1 || n < 0 || n >= COUNT) {
            strange++;
            rc = 0;
            continue;
        }
        dups += seen[n]++ != 0;
        total++;
        rc = 0;
    }
    if (rc >= 0)
        (void)dafs_closedir(d);
    free(seen);
    CHECK_EQ(rc, 0);
    CHECK_EQ(strange, 0);
    CHECK_EQ(dups, 0);
    CHECK_EQ(total, COUNT);
    for (int i = 0; i < COUNT; i++) {
        (void)snprintf(path, sizeof path, "%s/big/entry-%05d", c->srv.export_dir, i);
        (void)unlink(path);
    }
    CHECK_EQ(dafs_opendir(c->s, "flagsx", &d), -ENOENT);
    CHECK_EQ(dafs_opendir(c->s, "big", &d), 0);
    CHECK_EQ(dafs_readdir(d, &ent), 0); /* empty now */
    CHECK_EQ(dafs_closedir(d), 0);
    CHECK_EQ(dafs_rmdir(c->s, "big"), 0);
}

static void test_errors(ctx *c)
{
    dafs_file *f;
    struct dafs_stat st;
    dafs_dir *d;
    char long_name[300];
    memset(long_name, 'x', 256);
    long_name[256] = '\0';
    CHECK_EQ(dafs_open(c->s, "missing", O_RDONLY, 0, &f), -ENOENT);
    CHECK_EQ(dafs_stat(c->s, "missing/x", &st), -ENOENT);
    CHECK_EQ(dafs_open(c->s, "missing/x", O_RDWR | O_CREAT, 0644, &f), -ENOENT);
    CHECK_EQ(dafs_unlink(c->s, "missing"), -ENOENT);
    CHECK_EQ(dafs_rmdir(c->s, "missing"), -ENOENT);
    CHECK_EQ(dafs_open(c->s, "", O_RDONLY, 0, &f), -ENOENT);
    CHECK_EQ(dafs_stat(c->s, "", &st), -ENOENT);
    CHECK_EQ(dafs_mkdir(c->s, "", 0755), -ENOENT);
    CHECK_EQ(dafs_open(c->s, long_name, O_RDWR | O_CREAT, 0644, &f), -ENAMETOOLONG);
    CHECK_EQ(dafs_stat(c->s, long_name, &st), -ENAMETOOLONG);
    CHECK_EQ(dafs_mkdir(c->s, long_name, 0755), -ENAMETOOLONG);
    long_name[255] = '\0'; /* 255 is allowed */
    CHECK_EQ(dafs_open(c->s, long_name, O_RDWR | O_CREAT, 0644, &f), 0);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_unlink(c->s, long_name), 0);
    CHECK_EQ(dafs_stat(c->s, "..", &st), 0); /* the root is its own parent */
    CHECK(S_ISDIR(st.mode));
    CHECK_EQ(dafs_stat(c->s, "a/../b", &st), -ENOENT); /* no "a" */
    CHECK_EQ(dafs_open(c->s, "../x", O_RDONLY, 0, &f), -ENOENT);
    CHECK_EQ(dafs_mkdir(c->s, "..", 0755), -EINVAL);

    CHECK_EQ(dafs_open(c->s, "plain", O_RDWR | O_CREAT | O_EXCL, 0644, &f), 0);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_open(c->s, "plain/x", O_RDONLY, 0, &f), -ENOTDIR);
    CHECK_EQ(dafs_open(c->s, "plain/x", O_RDWR | O_CREAT, 0644, &f), -ENOTDIR);
    CHECK_EQ(dafs_stat(c->s, "plain/x", &st), -ENOTDIR);
    CHECK_EQ(dafs_mkdir(c->s, "plain/x", 0755), -ENOTDIR);
    CHECK_EQ(dafs_opendir(c->s, "plain", &d), -ENOTDIR);
    CHECK_EQ(dafs_mkdir(c->s, "dir", 0755), 0);
    CHECK_EQ(dafs_open(c->s, "dir", O_RDWR, 0, &f), -EISDIR);
    CHECK_EQ(dafs_open(c->s, "dir", O_RDONLY, 0, &f), -EISDIR);
    CHECK_EQ(dafs_open(c->s, "/", O_RDONLY, 0, &f), -EISDIR);
    int rc = dafs_unlink(c->s, "dir");
    CHECK(rc == -EISDIR || rc == -EPERM);
    CHECK_EQ(dafs_rmdir(c->s, "dir"), 0);
    CHECK_EQ(dafs_unlink(c->s, "plain"), 0);

    CHECK_EQ(dafs_open(c->s, "x", 12345678, 0, &f), -EINVAL);
    CHECK_EQ(dafs_close(NULL), -EINVAL);
    CHECK_EQ(dafs_mem_deregister(NULL), -EINVAL);
    CHECK_EQ(dafs_mem_register(c->s, NULL, 10, NULL), -EINVAL);
}

static void test_urls(ctx *c)
{
    (void)c;
    char host[64], path[64];
    unsigned port;
    CHECK_EQ(dafs_url_parse("dafs://h", host, sizeof host, &port, path, sizeof path), 0);
    CHECK(strcmp(host, "h") == 0 && port == DAFS_DEFAULT_PORT && strcmp(path, "/") == 0);
    CHECK_EQ(dafs_url_parse("dafs://[::1]:99/a/b", host, sizeof host, &port, path, sizeof path),
             0);
    CHECK(strcmp(host, "::1") == 0 && port == 99 && strcmp(path, "/a/b") == 0);
    CHECK_EQ(dafs_url_parse("dafs://10.0.0.1:7/", host, sizeof host, &port, path, sizeof path),
             0);
    CHECK(strcmp(host, "10.0.0.1") == 0 && port == 7 && strcmp(path, "/") == 0);
    static const char *bad[] = {"",          "http://h/x",   "dafs://",     "dafs://h:0",
                                "dafs://h:99999", "dafs://h:x", "dafs://[::1", "dafs://h?x",
                                "dafs://u@h/", "dafs://h:/",  "dafs:/h",     "dafs://h x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (dafs_url_parse(bad[i], host, sizeof host, &port, path, sizeof path) !=
            -DAFS_EURL) {
            fprintf(stderr, "  accepted bad URL '%s'\n", bad[i]);
            CHECK(0);
        }
    }
    /* dafs_url_error names the part that is wrong. */
    static const struct {
        const char *url, *says;
    } why[] = {{"", "empty URL"},
               {"http://h/x", "scheme must be dafs://"},
               {"h:7/x", "missing scheme"},
               {"dafs:/h", "two slashes"},
               {"dafs://", "empty host"},
               {"dafs://:7/x", "empty host"},
               {"dafs://h:/x", "empty port"},
               {"dafs://h:x/", "bad port"},
               {"dafs://h:0/", "bad port"},
               {"dafs://h:99999", "bad port"},
               {"dafs://[::1/x", "closing ']'"},
               {"dafs://[::1]x/", "after the IPv6"},
               {"dafs://fe80::1/x", "needs brackets"},
               {"dafs://u@h/", "user names"},
               {"dafs://h x/", "bad character"},
               {"dafs://h/x#y", "fragments"}};
    for (size_t i = 0; i < sizeof why / sizeof why[0]; i++) {
        const char *got = dafs_url_error(why[i].url);
        if (got == NULL || strstr(got, why[i].says) == NULL) {
            fprintf(stderr, "  dafs_url_error(\"%s\") = \"%s\", expected \"...%s...\"\n",
                    why[i].url, got ? got : "(null)", why[i].says);
            CHECK(0);
        }
    }
    CHECK(dafs_url_error("dafs://[fe80::1%lo]:99/a") == NULL);
    CHECK(dafs_url_error("dafs://h") == NULL);
    CHECK(dafs_url_error(NULL) != NULL);
    dafs_session *s2;
    CHECK_EQ(dafs_connect("dafs:/nope", NULL, &s2), -DAFS_EURL);
    CHECK(strcmp(dafs_strerror(-ENOENT), "No such file or directory") == 0);
    CHECK(strcmp(dafs_strerror(ENOENT), "No such file or directory") == 0);
    CHECK(strstr(dafs_strerror(-DAFS_ETRANSPORT), "Transport") != NULL);
    CHECK(strstr(dafs_strerror(-DAFS_EURL), "URL") != NULL);
    CHECK(strstr(dafs_strerror(-99999), "99999") != NULL);
}

/* ---- concurrency ---- */

typedef struct thread_job {
    ctx *c;
    int index;
    int failed; /* 0 ok, else the line that failed */
} thread_job;

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    dafs_session *s = job->c->s;
    char name[32];
    (void)snprintf(name, sizeof name, "thread-%d", job->index);
    size_t len = (2u << 20) + (size_t)job->index * 4097;
    uint8_t *want = malloc(len), *got = malloc(len);
    dafs_file *f = NULL;
    job->failed = __LINE__;
    if (want == NULL || got == NULL)
        goto out;
    fill_pattern(want, len, 100 + (uint64_t)job->index);
    if (dafs_open(s, name, O_RDWR | O_CREAT | O_EXCL, 0644, &f) != 0)
        goto out;
    /* mixed chunk sizes: inline and direct requests interleave across threads */
    for (size_t off = 0, step = 1000; off < len; off += step, step = step * 3 % 200000 + 777) {
        size_t n = len - off < step ? len - off : step;
        if (dafs_pwrite(f, want + off, n, off) != (ssize_t)n)
            goto out;
    }
    struct dafs_stat st;
    if (dafs_stat(s, name, &st) != 0 || st.size != len)
        goto out;
    if (dafs_pread(f, got, len, 0) != (ssize_t)len || memcmp(want, got, len) != 0)
        goto out;
    job->failed = 0;
out:
    if (f != NULL && dafs_close(f) != 0 && job->failed == 0)
        job->failed = __LINE__;
    if (job->failed == 0 && dafs_unlink(s, name) != 0)
        job->failed = __LINE__;
    free(want);
    free(got);
    return NULL;
}

static void test_threads(ctx *c)
{
    enum { THREADS = 8 };
    pthread_t tids[THREADS];
    thread_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (thread_job){.c = c, .index = i};
        CHECK_EQ(pthread_create(&tids[i], NULL, thread_main, &jobs[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < THREADS; i++) {
        (void)pthread_join(tids[i], NULL);
        if (jobs[i].failed != 0) {
            fprintf(stderr, "  thread %d failed at line %d\n", i, jobs[i].failed);
            bad++;
        }
    }
    CHECK_EQ(bad, 0);
}

static void test_second_session(ctx *c)
{
    dafs_session *s2;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    dafs_file *f;
    int rc = dafs_open(s2, "two", O_RDWR | O_CREAT, 0644, &f);
    if (rc == 0) {
        rc = dafs_pwrite(f, "abc", 3, 0) == 3 ? 0 : -EIO;
        (void)dafs_close(f);
    }
    struct dafs_stat st;
    int rc2 = dafs_stat(c->s, "two", &st); /* visible on the first session */
    CHECK_EQ(dafs_disconnect(s2), 0);
    CHECK_EQ(rc, 0);
    CHECK_EQ(rc2, 0);
    CHECK_EQ(st.size, 3);
    CHECK_EQ(dafs_unlink(c->s, "two"), 0);
}

static const test_case tests[] = {
    {"session_info", test_session_info},
    {"urls", test_urls},
    {"open_flags", test_open_flags},
    {"round_trips", test_round_trips},
    {"small_reads", test_small_reads},
    {"sparse_and_eof", test_sparse_and_eof},
    {"overwrite_middle", test_overwrite_middle},
    {"metadata", test_metadata},
    {"errors", test_errors},
    {"readdir_large", test_readdir_large},
    {"threads", test_threads},
    {"second_session", test_second_session},
};

int main(int argc, char **argv)
{
    return run_session_tests(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
