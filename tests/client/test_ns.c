/*
 * test_ns.c — libdafs namespace calls, credentials and the handle-level API
 * against a real dafsd (started with --no-root-squash: the tests run as
 * root and register other identities explicitly).
 *
 * Usage: test_ns DAFSD_PATH [TEST_NAME...]
 * The provider comes from FI_PROVIDER (CTest runs both).  Results are checked
 * through the library and, where it matters (ownership, sizes, file
 * contents, escapes), on the server's export directory directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
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

typedef test_ctx ctx;

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Create path holding text through the library. */
static int put_text(dafs_session *s, const char *path, const char *text)
{
    dafs_file *f;
    int rc = dafs_open(s, path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &f);
    if (rc < 0)
        return rc;
    size_t len = strlen(text);
    ssize_t n = dafs_pwrite(f, text, len, 0);
    rc = dafs_close(f);
    return n == (ssize_t)len ? rc : (n < 0 ? (int)n : -EIO);
}

/* Read path (following a final symlink) into buf as a string. */
static int get_text(dafs_session *s, const char *path, char *buf, size_t len)
{
    dafs_file *f;
    int rc = dafs_open(s, path, O_RDONLY, 0, &f);
    if (rc < 0)
        return rc;
    ssize_t n = dafs_pread(f, buf, len - 1, 0);
    (void)dafs_close(f);
    if (n < 0)
        return (int)n;
    buf[n] = '\0';
    return 0;
}

/* stat(2) of the server's copy. */
static int disk_stat(const ctx *c, const char *name, struct stat *st)
{
    char path[512];
    (void)snprintf(path, sizeof path, "%s/%s", c->srv.export_dir, name);
    return lstat(path, st) == 0 ? 0 : -errno;
}

/* ---- tests ---- */

static void test_chmod_chown(ctx *c)
{
    struct dafs_stat st;
    struct stat ds;
    CHECK_EQ(put_text(c->s, "perm", "x"), 0);
    CHECK_EQ(dafs_chmod(c->s, "perm", 0604), 0);
    CHECK_EQ(dafs_stat(c->s, "perm", &st), 0);
    CHECK_EQ(st.mode & 07777, 0604);
    CHECK_EQ(dafs_lchown(c->s, "perm", 1234, 2345), 0);
    CHECK_EQ(disk_stat(c, "perm", &ds), 0);
    CHECK_EQ(ds.st_uid, 1234);
    CHECK_EQ(ds.st_gid, 2345);
    CHECK_EQ(dafs_lchown(c->s, "perm", UINT32_MAX, 3456), 0); /* uid unchanged */
    CHECK_EQ(dafs_stat(c->s, "perm", &st), 0);
    CHECK_EQ(st.uid, 1234);
    CHECK_EQ(st.gid, 3456);
    CHECK_EQ(dafs_chmod(c->s, "missing", 0600), -ENOENT);
    CHECK_EQ(dafs_access(c->s, "perm", F_OK), 0);
    CHECK_EQ(dafs_access(c->s, "perm", R_OK | W_OK), 0);
    CHECK_EQ(dafs_access(c->s, "missing", F_OK), -ENOENT);
    CHECK_EQ(dafs_access(c->s, "perm", 0100), -EINVAL);
    CHECK_EQ(dafs_unlink(c->s, "perm"), 0);
}

static void test_truncate(ctx *c)
{
    struct stat ds;
    char buf[64];
    CHECK_EQ(put_text(c->s, "trunc", "0123456789"), 0);
    CHECK_EQ(dafs_truncate(c->s, "trunc", 4), 0);
    CHECK_EQ(get_text(c->s, "trunc", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "0123") == 0);
    CHECK_EQ(dafs_truncate(c->s, "trunc", 100000), 0);
    CHECK_EQ(disk_stat(c, "trunc", &ds), 0);
    CHECK_EQ(ds.st_size, 100000);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "trunc", O_RDWR, 0, &f), 0);
    CHECK_EQ(dafs_ftruncate(f, 2), 0);
    struct dafs_stat st;
    CHECK_EQ(dafs_fstat(f, &st), 0);
    CHECK_EQ(st.size, 2);
    CHECK_EQ(dafs_pread(f, buf, 10, 0), 2);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_open(c->s, "trunc", O_RDONLY, 0, &f), 0);
    CHECK_EQ(dafs_ftruncate(f, 0), -EBADF);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_mkdir(c->s, "tdir", 0755), 0);
    CHECK_EQ(dafs_truncate(c->s, "tdir", 0), -EISDIR);
    CHECK_EQ(dafs_rmdir(c->s, "tdir"), 0);
    CHECK_EQ(dafs_unlink(c->s, "trunc"), 0);
}

static void test_utimens(ctx *c)
{
    struct dafs_stat st;
    CHECK_EQ(put_text(c->s, "times", "t"), 0);
    struct timespec_dafs t[2] = {{1000000000, 500}, {1100000000, 700000000}};
    CHECK_EQ(dafs_utimens(c->s, "times", t), 0);
    CHECK_EQ(dafs_stat(c->s, "times", &st), 0);
    CHECK_EQ(st.atime.tv_sec, 1000000000);
    CHECK_EQ(st.atime.tv_nsec, 500);
    CHECK_EQ(st.mtime.tv_sec, 1100000000);
    CHECK_EQ(st.mtime.tv_nsec, 700000000);
    /* OMIT atime, set mtime: atime stays. */
    struct timespec_dafs t2[2] = {{0, DAFS_UTIME_OMIT}, {1200000000, 0}};
    CHECK_EQ(dafs_utimens(c->s, "times", t2), 0);
    CHECK_EQ(dafs_stat(c->s, "times", &st), 0);
    CHECK_EQ(st.atime.tv_sec, 1000000000);
    CHECK_EQ(st.mtime.tv_sec, 1200000000);
    /* NOW for mtime, OMIT atime. */
    struct timespec_dafs t3[2] = {{0, DAFS_UTIME_OMIT}, {0, DAFS_UTIME_NOW}};
    CHECK_EQ(dafs_utimens(c->s, "times", t3), 0);
    CHECK_EQ(dafs_stat(c->s, "times", &st), 0);
    CHECK_EQ(st.atime.tv_sec, 1000000000);
    CHECK(llabs((long long)st.mtime.tv_sec - (long long)time(NULL)) < 60);
    /* NULL: both now. */
    CHECK_EQ(dafs_utimens(c->s, "times", NULL), 0);
    CHECK_EQ(dafs_stat(c->s, "times", &st), 0);
    CHECK(llabs((long long)st.atime.tv_sec - (long long)time(NULL)) < 60);
    /* both OMIT: nothing to do, but the path must exist */
    struct timespec_dafs t4[2] = {{0, DAFS_UTIME_OMIT}, {0, DAFS_UTIME_OMIT}};
    CHECK_EQ(dafs_utimens(c->s, "times", t4), 0);
    CHECK_EQ(dafs_utimens(c->s, "nothere", t4), -ENOENT);
    struct timespec_dafs bad[2] = {{0, 1000000000u}, {0, 0}};
    CHECK_EQ(dafs_utimens(c->s, "times", bad), -EINVAL);
    CHECK_EQ(dafs_unlink(c->s, "times"), 0);
}

static void test_rename(ctx *c)
{
    char buf[64];
    CHECK_EQ(put_text(c->s, "ra", "AAA"), 0);
    CHECK_EQ(put_text(c->s, "rb", "BBB"), 0);
    CHECK_EQ(dafs_rename(c->s, "ra", "rc", 0), 0);
    CHECK_EQ(get_text(c->s, "ra", buf, sizeof buf), -ENOENT);
    CHECK_EQ(get_text(c->s, "rc", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "AAA") == 0);
    CHECK_EQ(dafs_rename(c->s, "rc", "rb", DAFS_RENAME_NOREPLACE), -EEXIST);
    CHECK_EQ(dafs_rename(c->s, "rc", "rb", DAFS_RENAME_EXCHANGE), 0);
    CHECK_EQ(get_text(c->s, "rb", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "AAA") == 0);
    CHECK_EQ(get_text(c->s, "rc", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "BBB") == 0);
    CHECK_EQ(dafs_rename(c->s, "rc", "rb", 0), 0); /* over an existing target */
    CHECK_EQ(get_text(c->s, "rb", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "BBB") == 0);
    CHECK_EQ(dafs_rename(c->s, "rb", "rc", DAFS_RENAME_EXCHANGE), -ENOENT);
    CHECK_EQ(dafs_rename(c->s, "rb", "rc", DAFS_RENAME_NOREPLACE | DAFS_RENAME_EXCHANGE),
             -EINVAL);
    CHECK_EQ(dafs_rename(c->s, "missing", "rc", 0), -ENOENT);
    /* directories */
    CHECK_EQ(dafs_mkdir(c->s, "rd1", 0755), 0);
    CHECK_EQ(dafs_mkdir(c->s, "rd2", 0755), 0);
    CHECK_EQ(put_text(c->s, "rd2/inside", "i"), 0);
    CHECK_EQ(dafs_rename(c->s, "rd1", "rd2", 0), -ENOTEMPTY);
    CHECK_EQ(dafs_rename(c->s, "rb", "rd1", 0), -EISDIR);
    CHECK_EQ(dafs_rename(c->s, "rd1", "rb", 0), -ENOTDIR);
    CHECK_EQ(dafs_rename(c->s, "rb", "rd2/moved", 0), 0); /* across directories */
    CHECK_EQ(get_text(c->s, "rd2/moved", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "BBB") == 0);
    CHECK_EQ(dafs_rename(c->s, "rd2", "rd2/sub", 0), -EINVAL); /* into itself */
    CHECK_EQ(dafs_rmdir(c->s, "rd2"), -ENOTEMPTY);
    CHECK_EQ(dafs_unlink(c->s, "rd2/moved"), 0);
    CHECK_EQ(dafs_unlink(c->s, "rd2/inside"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "rd2"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "rd1"), 0);
}

static void test_link(ctx *c)
{
    struct dafs_stat st;
    char buf[64];
    CHECK_EQ(put_text(c->s, "l_orig", "linked"), 0);
    CHECK_EQ(dafs_link(c->s, "l_orig", "l_second"), 0);
    CHECK_EQ(dafs_stat(c->s, "l_orig", &st), 0);
    CHECK_EQ(st.nlink, 2);
    uint64_t ino = st.ino;
    CHECK_EQ(dafs_stat(c->s, "l_second", &st), 0);
    CHECK_EQ(st.ino, ino);
    CHECK_EQ(dafs_link(c->s, "l_orig", "l_second"), -EEXIST);
    CHECK_EQ(dafs_link(c->s, "missing", "l_third"), -ENOENT);
    CHECK_EQ(dafs_mkdir(c->s, "l_dir", 0755), 0);
    CHECK_EQ(dafs_link(c->s, "l_dir", "l_dir2"), -EPERM);
    CHECK_EQ(dafs_unlink(c->s, "l_orig"), 0);
    CHECK_EQ(get_text(c->s, "l_second", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "linked") == 0);
    CHECK_EQ(dafs_stat(c->s, "l_second", &st), 0);
    CHECK_EQ(st.nlink, 1);
    CHECK_EQ(dafs_unlink(c->s, "l_second"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "l_dir"), 0);
}

static void test_symlink(ctx *c)
{
    struct dafs_stat st;
    char buf[128];
    dafs_file *f;
    CHECK_EQ(dafs_mkdir(c->s, "sd", 0755), 0);
    CHECK_EQ(put_text(c->s, "sd/file", "target data"), 0);
    CHECK_EQ(dafs_symlink(c->s, "sd/file", "sl"), 0);
    CHECK_EQ(dafs_stat(c->s, "sl", &st), 0); /* lstat semantics */
    CHECK(S_ISLNK(st.mode));
    CHECK_EQ(dafs_readlink(c->s, "sl", buf, sizeof buf), 7);
    CHECK(strcmp(buf, "sd/file") == 0);
    CHECK_EQ(dafs_readlink(c->s, "sl", buf, 3), 3); /* truncated, not terminated */
    CHECK(memcmp(buf, "sd/", 3) == 0);
    CHECK_EQ(dafs_readlink(c->s, "sd/file", buf, sizeof buf), -EINVAL);
    CHECK_EQ(dafs_symlink(c->s, "x", "sl"), -EEXIST);
    /* dafs_open follows a final symlink; O_NOFOLLOW refuses it. */
    CHECK_EQ(get_text(c->s, "sl", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "target data") == 0);
    CHECK_EQ(dafs_open(c->s, "sl", O_RDONLY | O_NOFOLLOW, 0, &f), -ELOOP);
    /* A symlink to a directory in the middle of a path. */
    CHECK_EQ(dafs_symlink(c->s, "sd", "sdl"), 0);
    CHECK_EQ(dafs_stat(c->s, "sdl/file", &st), 0);
    CHECK_EQ(st.size, 11);
    CHECK_EQ(dafs_stat(c->s, "sdl/", &st), 0); /* trailing slash follows */
    CHECK(S_ISDIR(st.mode));
    /* Relative targets resolve from the link's directory. */
    CHECK_EQ(dafs_mkdir(c->s, "sd/sub", 0755), 0);
    CHECK_EQ(dafs_symlink(c->s, "../file", "sd/sub/up"), 0);
    CHECK_EQ(get_text(c->s, "sd/sub/up", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "target data") == 0);
    /* Absolute targets resolve from the export root. */
    CHECK_EQ(dafs_symlink(c->s, "/sd/file", "sd/sub/abs"), 0);
    CHECK_EQ(get_text(c->s, "sd/sub/abs", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "target data") == 0);
    /* Creating through a symlinked directory lands in its target. */
    CHECK_EQ(put_text(c->s, "sdl/created", "c"), 0);
    CHECK_EQ(dafs_stat(c->s, "sd/created", &st), 0);
    /* O_CREAT through a dangling final symlink creates the target. */
    CHECK_EQ(dafs_symlink(c->s, "sd/dangling_target", "dangle"), 0);
    CHECK_EQ(put_text(c->s, "dangle", "d"), 0);
    CHECK_EQ(dafs_stat(c->s, "sd/dangling_target", &st), 0);
    /* Loops. */
    CHECK_EQ(dafs_symlink(c->s, "loop2", "loop1"), 0);
    CHECK_EQ(dafs_symlink(c->s, "loop1", "loop2"), 0);
    CHECK_EQ(dafs_stat(c->s, "loop1/x", &st), -ELOOP);
    CHECK_EQ(dafs_open(c->s, "loop1", O_RDONLY, 0, &f), -ELOOP);
    CHECK_EQ(dafs_stat(c->s, "loop1", &st), 0); /* not followed */
    /* A symlink through a file is ENOTDIR. */
    CHECK_EQ(dafs_stat(c->s, "sl/x", &st), -ENOTDIR);
    /* Bad names and targets. */
    char long_target[4096 + 2];
    memset(long_target, 'a', sizeof long_target - 1);
    long_target[sizeof long_target - 1] = '\0';
    CHECK_EQ(dafs_symlink(c->s, long_target, "toolong"), -ENAMETOOLONG);
    CHECK_EQ(dafs_symlink(c->s, "", "empty"), -ENOENT);
    char long_name[300];
    memset(long_name, 'n', 256);
    long_name[256] = '\0';
    CHECK_EQ(dafs_symlink(c->s, "x", long_name), -ENAMETOOLONG);
    const char *cleanup[] = {"sd/sub/up", "sd/sub/abs", "sd/created", "sd/dangling_target",
                             "dangle", "loop1", "loop2", "sdl", "sl", "sd/file"};
    for (size_t i = 0; i < sizeof cleanup / sizeof cleanup[0]; i++)
        CHECK_EQ(dafs_unlink(c->s, cleanup[i]), 0);
    CHECK_EQ(dafs_rmdir(c->s, "sd/sub"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "sd"), 0);
}

static void test_dotdot_and_escape(ctx *c)
{
    struct dafs_stat st, root;
    char buf[128];
    CHECK_EQ(dafs_stat(c->s, "/", &root), 0);
    CHECK_EQ(dafs_mkdir(c->s, "da", 0755), 0);
    CHECK_EQ(dafs_mkdir(c->s, "da/db", 0755), 0);
    CHECK_EQ(put_text(c->s, "da/f", "in da"), 0);
    CHECK_EQ(get_text(c->s, "da/db/../f", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "in da") == 0);
    CHECK_EQ(dafs_stat(c->s, "da/db/../../da/db", &st), 0);
    CHECK(S_ISDIR(st.mode));
    CHECK_EQ(dafs_stat(c->s, "../../..", &st), 0); /* never above the root */
    CHECK_EQ(st.ino, root.ino);
    CHECK_EQ(dafs_stat(c->s, "da/f/..", &st), -ENOTDIR);
    /* A symlink aiming outside the export lands inside it. */
    CHECK_EQ(dafs_symlink(c->s, "../../../../etc", "da/esc"), 0);
    CHECK_EQ(dafs_symlink(c->s, "/etc/passwd", "abs_esc"), 0);
    CHECK_EQ(dafs_stat(c->s, "da/esc/passwd", &st), -ENOENT); /* no etc/ in the export */
    CHECK_EQ(get_text(c->s, "abs_esc", buf, sizeof buf), -ENOENT);
    CHECK_EQ(dafs_mkdir(c->s, "etc", 0755), 0);
    CHECK_EQ(put_text(c->s, "etc/passwd", "export's own"), 0);
    CHECK_EQ(get_text(c->s, "da/esc/passwd", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "export's own") == 0);
    CHECK_EQ(get_text(c->s, "abs_esc", buf, sizeof buf), 0);
    CHECK(strcmp(buf, "export's own") == 0);
    CHECK_EQ(dafs_unlink(c->s, "etc/passwd"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "etc"), 0);
    CHECK_EQ(dafs_unlink(c->s, "abs_esc"), 0);
    CHECK_EQ(dafs_unlink(c->s, "da/esc"), 0);
    CHECK_EQ(dafs_unlink(c->s, "da/f"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "da/db"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "da"), 0);
}

static void test_errors(ctx *c)
{
    CHECK_EQ(dafs_mkdir(c->s, "e_dir", 0755), 0);
    CHECK_EQ(dafs_mkdir(c->s, "e_dir", 0755), -EEXIST);
    CHECK_EQ(put_text(c->s, "e_dir/f", "f"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "e_dir"), -ENOTEMPTY);
    int rc = dafs_unlink(c->s, "e_dir");
    CHECK(rc == -EISDIR || rc == -EPERM);
    CHECK_EQ(dafs_rmdir(c->s, "e_dir/f"), -ENOTDIR);
    CHECK_EQ(dafs_mkdir(c->s, "e_dir/f/x", 0755), -ENOTDIR);
    CHECK_EQ(dafs_mknod(c->s, "e_fifo", S_IFIFO | 0600, 0), 0);
    struct dafs_stat st;
    CHECK_EQ(dafs_stat(c->s, "e_fifo", &st), 0);
    CHECK(S_ISFIFO(st.mode));
    CHECK_EQ(dafs_mknod(c->s, "e_fifo", S_IFIFO | 0600, 0), -EEXIST);
    CHECK_EQ(dafs_unlink(c->s, "e_fifo"), 0);
    char path[5000];
    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    for (size_t i = 100; i < sizeof path - 1; i += 101)
        path[i] = '/';
    CHECK_EQ(dafs_stat(c->s, path, &st), -ENAMETOOLONG);
    CHECK_EQ(dafs_unlink(c->s, "e_dir/f"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "e_dir"), 0);
}

/* ---- append from several threads ---- */

#define APPEND_THREADS 4
#define APPENDS_PER_THREAD 50
#define RECORD 100

typedef struct append_job {
    dafs_session *s;
    int id;
    uint64_t offsets[APPENDS_PER_THREAD];
    int err;
} append_job;

static void *append_main(void *arg)
{
    append_job *j = arg;
    dafs_file *f;
    j->err = dafs_open(j->s, "appended", O_WRONLY, 0, &f);
    if (j->err < 0)
        return NULL;
    for (int i = 0; i < APPENDS_PER_THREAD && j->err == 0; i++) {
        uint8_t rec[RECORD];
        memset(rec, 'A' + j->id, sizeof rec);
        rec[0] = (uint8_t)i;
        ssize_t n = dafs_append(f, rec, sizeof rec, &j->offsets[i]);
        if (n != RECORD)
            j->err = n < 0 ? (int)n : -EIO;
    }
    (void)dafs_close(f);
    return NULL;
}

static void test_append_threads(ctx *c)
{
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "appended", O_RDWR | O_CREAT | O_TRUNC, 0644, &f), 0);
    append_job jobs[APPEND_THREADS];
    pthread_t tids[APPEND_THREADS];
    for (int i = 0; i < APPEND_THREADS; i++) {
        jobs[i] = (append_job){.s = c->s, .id = i};
        CHECK_EQ(pthread_create(&tids[i], NULL, append_main, &jobs[i]), 0);
    }
    for (int i = 0; i < APPEND_THREADS; i++)
        (void)pthread_join(tids[i], NULL);
    size_t total = (size_t)APPEND_THREADS * APPENDS_PER_THREAD * RECORD;
    uint8_t *all = malloc(total + 1);
    CHECK(all != NULL);
    ssize_t n = dafs_pread(f, all, total + 1, 0);
    int bad = 0;
    bool *seen = calloc(total / RECORD, sizeof *seen);
    for (int t = 0; t < APPEND_THREADS && seen != NULL; t++) {
        if (jobs[t].err != 0) {
            fprintf(stderr, "  thread %d: %s\n", t, dafs_strerror(jobs[t].err));
            bad++;
            continue;
        }
        for (int i = 0; i < APPENDS_PER_THREAD; i++) {
            uint64_t off = jobs[t].offsets[i];
            if (off % RECORD != 0 || off >= total || seen[off / RECORD] ||
                (n == (ssize_t)total && (all[off] != (uint8_t)i || all[off + 1] != 'A' + t))) {
                bad++;
                continue;
            }
            seen[off / RECORD] = true;
        }
    }
    free(seen);
    free(all);
    CHECK_EQ(n, (ssize_t)total);
    CHECK_EQ(bad, 0);
    /* One direct (larger than inline) append, and one too big for a request. */
    dafs_session_info info;
    CHECK_EQ(dafs_session_get_info(c->s, &info), 0);
    size_t big = (size_t)info.inline_max * 3;
    uint8_t *data = calloc(1, (size_t)info.max_io + 1);
    CHECK(data != NULL);
    memset(data, 'Z', big);
    uint64_t where = 0;
    ssize_t r = dafs_append(f, data, big, &where);
    ssize_t r2 = dafs_append(f, data, (size_t)info.max_io + 1, NULL);
    free(data);
    CHECK_EQ(r, (ssize_t)big);
    CHECK_EQ(where, total);
    CHECK_EQ(r2, -EINVAL);
    struct dafs_stat st;
    CHECK_EQ(dafs_fstat(f, &st), 0);
    CHECK_EQ(st.size, total + big);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_open(c->s, "appended", O_RDONLY, 0, &f), 0);
    CHECK_EQ(dafs_append(f, "x", 1, NULL), -EBADF);
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_unlink(c->s, "appended"), 0);
}

/* ---- credentials ---- */

#define DAFS_TEST_NGROUPS_MAX 65536 /* NGROUPS_MAX, the protocol's bound */

static void test_credentials(ctx *c)
{
    dafs_cred *user;
    struct stat ds;
    uint32_t groups[2] = {1000, 1001};
    static uint32_t many[DAFS_TEST_NGROUPS_MAX + 1];
    CHECK_EQ(dafs_cred_register(c->s, 1, 1, DAFS_TEST_NGROUPS_MAX + 1, many, &user), -EINVAL);
    CHECK(user == NULL);
    /* all 65536 do not fit one request of the default size (16 KiB) */
    CHECK_EQ(dafs_cred_register(c->s, 1, 1, DAFS_TEST_NGROUPS_MAX, many, &user), -E2BIG);
    CHECK(user == NULL);
    /* more than the 32 groups of protocol v1 */
    CHECK_EQ(dafs_cred_register(c->s, 1, 1, 1000, many, &user), 0);
    CHECK_EQ(dafs_cred_release(user), 0);
    CHECK_EQ(dafs_cred_register(c->s, 1000, 1000, 2, groups, &user), 0);
    CHECK_EQ(dafs_mkdir(c->s, "shared", 0777), 0);
    CHECK_EQ(dafs_chmod(c->s, "shared", 0777), 0); /* past the server's umask */
    CHECK_EQ(dafs_mkdir(c->s, "private", 0700), 0);
    CHECK_EQ(put_text(c->s, "private/secret", "s"), 0);

    CHECK_EQ(dafs_set_cred(c->s, user), 0);
    int made = put_text(c->s, "shared/mine", "m");
    struct dafs_stat st;
    int denied = dafs_stat(c->s, "private/secret", &st);
    int denied_create = put_text(c->s, "private/new", "n");
    int chmod_other = dafs_chmod(c->s, "private", 0777);
    CHECK_EQ(dafs_set_cred(c->s, NULL), 0); /* back to root before checking */
    CHECK_EQ(made, 0);
    CHECK_EQ(disk_stat(c, "shared/mine", &ds), 0);
    CHECK_EQ(ds.st_uid, 1000);
    CHECK_EQ(ds.st_gid, 1000);
    CHECK_EQ(denied, -EACCES);
    CHECK_EQ(denied_create, -EACCES);
    CHECK_EQ(chmod_other, -EPERM);

    /* The handle-level calls take the credential explicitly. */
    dafs_handle root, priv;
    CHECK_EQ(dafs_h_root(c->s, &root, NULL), 0);
    CHECK_EQ(dafs_h_lookup(c->s, NULL, &root, "private", &priv, NULL), 0);
    CHECK_EQ(dafs_h_access(c->s, user, &priv, R_OK), -EACCES);
    CHECK_EQ(dafs_h_access(c->s, NULL, &priv, R_OK | W_OK | X_OK), 0);
    CHECK_EQ(dafs_h_lookup(c->s, user, &priv, "secret", NULL, NULL), -EACCES);
    CHECK_EQ(dafs_h_lookup(c->s, NULL, &priv, "secret", NULL, NULL), 0);

    /* A credential of another session is refused. */
    dafs_session *s2;
    CHECK_EQ(dafs_connect(c->srv.url, NULL, &s2), 0);
    int cross = dafs_set_cred(s2, user);
    int cross_h = dafs_h_getattr(s2, user, &root, &st);
    CHECK_EQ(dafs_disconnect(s2), 0);
    CHECK_EQ(cross, -EINVAL);
    CHECK_EQ(cross_h, -EINVAL);

    CHECK_EQ(dafs_set_cred(c->s, user), 0);
    CHECK_EQ(dafs_cred_release(user), 0); /* the default falls back to the process */
    CHECK_EQ(dafs_stat(c->s, "private/secret", &st), 0);
    CHECK_EQ(dafs_unlink(c->s, "private/secret"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "private"), 0);
    CHECK_EQ(dafs_unlink(c->s, "shared/mine"), 0);
    CHECK_EQ(dafs_rmdir(c->s, "shared"), 0);
}

/* ---- the handle-level API ---- */

typedef struct listing {
    int seen;
    int stop_after; /* stop (without consuming) when seen reaches this */
    char names[64][256];
} listing;

static int collect(void *arg, const dafs_dirent *ent, uint64_t next_cookie)
{
    listing *l = arg;
    (void)next_cookie;
    if (l->stop_after > 0 && l->seen == l->stop_after)
        return 1;
    if (l->seen < 64)
        memcpy(l->names[l->seen], ent->name, sizeof l->names[0]);
    l->seen++;
    return 0;
}

static void test_handles(ctx *c)
{
    dafs_handle root, dir, file, again, parent;
    struct dafs_stat st;
    int created = -1;
    CHECK_EQ(dafs_h_root(c->s, &root, &st), 0);
    CHECK(S_ISDIR(st.mode));
    CHECK_EQ(dafs_h_mkdir(c->s, NULL, &root, "hd", 0755, &dir, &st), 0);
    CHECK(S_ISDIR(st.mode));
    CHECK_EQ(dafs_h_mkdir(c->s, NULL, &root, "hd", 0755, &dir, &st), -EEXIST);
    CHECK_EQ(dafs_h_open(c->s, NULL, &dir, "hf", O_RDWR | O_CREAT | O_EXCL, 0644, &file, &st,
                         &created), 0);
    CHECK_EQ(created, 1);
    CHECK_EQ(dafs_h_open(c->s, NULL, &dir, "hf", O_RDWR | O_CREAT, 0644, &again, &st, &created),
             0);
    CHECK_EQ(created, 0);
    CHECK_EQ(dafs_h_pwrite(c->s, NULL, &file, "hello handles", 13, 0), 13);
    uint64_t off = 0;
    CHECK_EQ(dafs_h_append(c->s, NULL, &file, "!", 1, &off), 1);
    CHECK_EQ(off, 13);
    char buf[64] = {0};
    CHECK_EQ(dafs_h_pread(c->s, NULL, &file, buf, sizeof buf, 0), 14);
    CHECK(memcmp(buf, "hello handles!", 14) == 0);
    CHECK_EQ(dafs_h_commit(c->s, NULL, &file, 1), 0);
    dafs_setattr sa = {.valid = DAFS_SETATTR_SIZE | DAFS_SETATTR_MODE, .size = 5, .mode = 0600};
    CHECK_EQ(dafs_h_setattr(c->s, NULL, &file, &sa, &st), 0);
    CHECK_EQ(st.size, 5);
    CHECK_EQ(st.mode & 07777, 0600);
    CHECK_EQ(dafs_h_getattr(c->s, NULL, &file, &st), 0);
    CHECK_EQ(st.size, 5);
    CHECK_EQ(dafs_h_lookup(c->s, NULL, &dir, "hf", &again, NULL), 0);
    CHECK(again.len == file.len && memcmp(again.data, file.data, file.len) == 0);
    dafs_file *f;
    CHECK_EQ(dafs_open(c->s, "hd/hf", O_RDONLY, 0, &f), 0);
    CHECK_EQ(dafs_file_handle(f, &again), 0);
    CHECK_EQ(dafs_close(f), 0);
    CHECK(again.len == file.len && memcmp(again.data, file.data, file.len) == 0);
    CHECK_EQ(dafs_h_lookupp(c->s, NULL, &dir, &parent, &st), 0);
    CHECK(parent.len == root.len && memcmp(parent.data, root.data, root.len) == 0);
    CHECK_EQ(dafs_h_lookupp(c->s, NULL, &root, &parent, NULL), 0);
    CHECK(parent.len == root.len && memcmp(parent.data, root.data, root.len) == 0);
    CHECK_EQ(dafs_h_symlink(c->s, NULL, &dir, "hl", "hf", &again, &st), 0);
    CHECK(S_ISLNK(st.mode));
    CHECK_EQ(dafs_h_readlink(c->s, NULL, &again, buf, sizeof buf), 2);
    CHECK(strcmp(buf, "hf") == 0);
    CHECK_EQ(dafs_h_link(c->s, NULL, &file, &root, "hlink", &st), 0);
    CHECK_EQ(st.nlink, 2);
    CHECK_EQ(dafs_h_rename(c->s, NULL, &root, "hlink", &dir, "hlink2", 0), 0);
    CHECK_EQ(dafs_h_mknod(c->s, NULL, &dir, "hfifo", S_IFIFO | 0644, 0, NULL, &st), 0);
    CHECK(S_ISFIFO(st.mode));
    struct dafs_statfs sf;
    CHECK_EQ(dafs_h_statfs(c->s, NULL, &dir, &sf), 0);
    CHECK(sf.bsize > 0);
    /* readdir with cookies: 20 more entries, read 7 at a time */
    for (int i = 0; i < 20; i++) {
        char name[16];
        (void)snprintf(name, sizeof name, "e%02d", i);
        CHECK_EQ(dafs_h_open(c->s, NULL, &dir, name, O_WRONLY | O_CREAT, 0644, NULL, NULL,
                             NULL), 0);
    }
    uint64_t cookie = 0;
    int eof = 0, total = 0, rounds = 0;
    while (!eof && rounds < 100) {
        listing l = {.stop_after = 7};
        CHECK_EQ(dafs_h_readdir(c->s, NULL, &dir, &cookie, collect, &l, &eof), 0);
        CHECK(l.seen <= 7);
        CHECK(eof || l.seen == 7);
        total += l.seen;
        rounds++;
    }
    CHECK_EQ(total, 24); /* hf, hl, hlink2, hfifo + 20 */
    CHECK_EQ(eof, 1);
    for (int i = 0; i < 20; i++) {
        char name[16];
        (void)snprintf(name, sizeof name, "e%02d", i);
        CHECK_EQ(dafs_h_unlink(c->s, NULL, &dir, name), 0);
    }
    /* bad input */
    dafs_handle bad = {.len = 0};
    CHECK_EQ(dafs_h_getattr(c->s, NULL, &bad, &st), -EINVAL);
    CHECK_EQ(dafs_h_lookup(c->s, NULL, &dir, "a/b", NULL, NULL), -EINVAL);
    CHECK_EQ(dafs_h_lookup(c->s, NULL, &dir, "", NULL, NULL), -ENOENT);
    dafs_handle forged = file;
    forged.data[forged.len - 1] ^= 0x5a;
    int rc = dafs_h_getattr(c->s, NULL, &forged, &st);
    CHECK(rc == -DAFS_EBADHANDLE || rc == -ESTALE);
    CHECK_EQ(dafs_h_rmdir(c->s, NULL, &root, "hd"), -ENOTEMPTY);
    const char *names[] = {"hf", "hl", "hlink2", "hfifo"};
    for (size_t i = 0; i < 4; i++)
        CHECK_EQ(dafs_h_unlink(c->s, NULL, &dir, names[i]), 0);
    CHECK_EQ(dafs_h_rmdir(c->s, NULL, &root, "hd"), 0);
    CHECK_EQ(dafs_h_getattr(c->s, NULL, &file, &st), -ESTALE);
}

/* Open state through libdafs, as a non-root credential: a file created mode 0
 * stays writable through its dafs_file, chmod 0000 and unlink do not break it,
 * while the handle-only calls (no open state) are checked against the mode. */
static void test_open_state(ctx *c)
{
    dafs_cred *user;
    dafs_handle root, dir, h;
    struct dafs_stat st;
    dafs_file *f = NULL, *g = NULL;
    int created = 0;
    char buf[32] = {0};
    CHECK_EQ(dafs_cred_register(c->s, 1000, 1000, 0, NULL, &user), 0);
    CHECK_EQ(dafs_h_root(c->s, &root, &st), 0);
    CHECK_EQ(dafs_h_mkdir(c->s, NULL, &root, "os", 0777, &dir, &st), 0);
    CHECK_EQ(dafs_chmod(c->s, "os", 0777), 0);
    CHECK_EQ(dafs_h_open_file(c->s, user, &dir, "m0", O_RDWR | O_CREAT | O_EXCL, 0, &f, &h, &st,
                              &created), 0);
    CHECK_EQ(created, 1);
    CHECK_EQ(st.mode & 07777, 0);
    CHECK_EQ(dafs_pwrite(f, "mode zero", 9, 0), 9);
    CHECK_EQ(dafs_h_pwrite(c->s, user, &h, "x", 1, 0), -EACCES); /* no open state */
    CHECK_EQ(dafs_pread(f, buf, sizeof buf, 0), 9);
    CHECK(memcmp(buf, "mode zero", 9) == 0);
    CHECK_EQ(dafs_ftruncate(f, 4), 0);
    CHECK_EQ(dafs_fsync(f), 0);
    CHECK_EQ(dafs_h_open_fh(c->s, user, &h, O_RDONLY, &g, NULL), -EACCES);
    CHECK_EQ(dafs_h_open_fh(c->s, user, &h, O_RDONLY | O_CREAT, &g, NULL), -EINVAL);
    CHECK_EQ(dafs_h_unlink(c->s, user, &dir, "m0"), 0);
    CHECK_EQ(dafs_pwrite(f, "MODE", 4, 0), 4);
    CHECK_EQ(dafs_pread(f, buf, sizeof buf, 0), 4);
    CHECK(memcmp(buf, "MODE", 4) == 0);
    CHECK_EQ(dafs_fstat(f, &st), 0);
    CHECK_EQ(st.nlink, 0);
    CHECK_EQ(st.size, 4);
    CHECK_EQ(dafs_close(f), 0);
    /* dafs_h_open_fh of a 0644 file, then chmod 0000: reads go on */
    CHECK_EQ(dafs_h_open_file(c->s, user, &dir, "c0", O_WRONLY | O_CREAT, 0644, &f, &h, NULL,
                              NULL), 0);
    CHECK_EQ(dafs_pwrite(f, "data", 4, 0), 4);
    CHECK_EQ(dafs_pread(f, buf, sizeof buf, 0), -EBADF); /* opened write-only */
    CHECK_EQ(dafs_close(f), 0);
    CHECK_EQ(dafs_h_open_fh(c->s, user, &h, O_RDONLY, &g, &st), 0);
    CHECK_EQ(st.size, 4);
    dafs_setattr sa = {.valid = DAFS_SETATTR_MODE, .mode = 0};
    CHECK_EQ(dafs_h_setattr(c->s, user, &h, &sa, NULL), 0);
    CHECK_EQ(dafs_pread(g, buf, sizeof buf, 0), 4);
    CHECK_EQ(dafs_h_pread(c->s, user, &h, buf, sizeof buf, 0), -EACCES);
    CHECK_EQ(dafs_close(g), 0);
    CHECK_EQ(dafs_h_unlink(c->s, NULL, &dir, "c0"), 0);
    CHECK_EQ(dafs_h_rmdir(c->s, NULL, &root, "os"), 0);
    CHECK_EQ(dafs_cred_release(user), 0);
}

static void test_read_only(ctx *c)
{
    static const char *const ro[] = {"--no-root-squash", "--read-only", NULL};
    test_server srv;
    CHECK_EQ(test_server_start_opts(c->dafsd, &srv, ro), 0);
    dafs_session *s;
    int rc = dafs_connect(srv.url, NULL, &s);
    int mk = -1, st_rc = -1;
    if (rc == 0) {
        struct dafs_stat st;
        mk = dafs_mkdir(s, "nope", 0755);
        st_rc = dafs_stat(s, "/", &st);
        (void)dafs_disconnect(s);
    }
    test_server_stop(&srv);
    CHECK_EQ(rc, 0);
    CHECK_EQ(mk, -EROFS);
    CHECK_EQ(st_rc, 0);
}

/* A killed server is noticed by the keepalive probe well before the request
 * timeout (30 s): the call fails within seconds on either provider. */
static void test_dead_server(ctx *c)
{
    test_server srv;
    CHECK_EQ(test_server_start(c->dafsd, &srv), 0);
    dafs_session *s;
    int rc = dafs_connect(srv.url, NULL, &s);
    if (rc != 0) {
        test_server_stop(&srv);
        CHECK_EQ(rc, 0);
    }
    (void)kill(srv.pid, SIGKILL);
    int status;
    (void)waitpid(srv.pid, &status, 0);
    srv.pid = -1;
    double t0 = now_sec();
    struct dafs_stat st;
    rc = dafs_stat(s, "/", &st);
    double took = now_sec() - t0;
    (void)dafs_disconnect(s);
    test_server_stop(&srv);
    printf("  dead server noticed after %.1f s\n", took);
    CHECK_EQ(rc, -DAFS_ETRANSPORT);
    CHECK(took < 12.0);
}

static const test_case tests[] = {
    {"chmod_chown", test_chmod_chown},
    {"truncate", test_truncate},
    {"utimens", test_utimens},
    {"rename", test_rename},
    {"link", test_link},
    {"symlink", test_symlink},
    {"dotdot_and_escape", test_dotdot_and_escape},
    {"errors", test_errors},
    {"append_threads", test_append_threads},
    {"credentials", test_credentials},
    {"handles", test_handles},
    {"open_state", test_open_state},
    {"read_only", test_read_only},
    {"dead_server", test_dead_server},
};

int main(int argc, char **argv)
{
    return run_session_tests(argc, argv, tests, sizeof tests / sizeof tests[0]);
}
