/*
 * test_undolog.c — unit tests of the AUTORECOVER undo log
 * (src/server/undolog.c), on real files in a fresh temporary directory.
 *
 *  - random sequences of overwrites, extending writes (some past the end,
 *    leaving a hole), writes larger than 1 MiB (several records) and
 *    truncations (shrinking and growing), then rollback: content and size
 *    are exactly the pre-lock file's (compared byte for byte and by CRC);
 *  - commit keeps the changes and removes the log; a second log for the
 *    same object is refused while one exists;
 *  - the set of logs (undo_set) with four threads writing concurrently,
 *    then one rollback;
 *  - crash tests: for every crash point (fault.h) and several hit counts, a
 *    child process runs a sequence with DAFS_FAULT set and dies there
 *    (_exit 137) — after creating the log, before a record, in the middle of
 *    a record (torn), after a record but before its write, in the middle of
 *    a write, after a write, in the middle of a rollback (after each
 *    record's undo) and just before the log's removal; the parent then runs
 *    the start-up recovery and checks the file is exactly the pre-lock one;
 *  - recovery drops a log whose object is gone and a log with a bad header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fault.h"
#include "undolog.h"

#define MIB (1u << 20)

typedef struct fixture {
    char dir[256];   /* the "export": data files */
    char state[300]; /* the state dir */
    int undo_dirfd;
} fixture;

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(rnd() >> 24);
}

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(f->dir, sizeof(f->dir), "%s/dafs-undolog-XXXXXX", tmp);
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
    assert_int_equal(mkdir(f->state, 0700), 0);
    assert_int_equal(undolog_dir_open(f->state, &f->undo_dirfd), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    close(f->undo_dirfd);
    rm_rf(f->dir);
    free(f);
    return 0;
}

static int open_data(fixture *f, const char *name, int flags)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    return open(path, flags | O_CLOEXEC, 0600);
}

/* Recovery's way to the data: the object id is the file's name. */
static int open_by_id(void *ctx, const uint8_t *id, size_t id_len)
{
    fixture *f = ctx;
    char name[UNDOLOG_ID_MAX + 1];
    memcpy(name, id, id_len);
    name[id_len] = '\0';
    int fd = open_data(f, name, O_RDWR);
    return fd >= 0 ? fd : -errno;
}

typedef struct image {
    uint8_t *data;
    size_t size;
} image;

static image read_image(int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    image im = {malloc((size_t)st.st_size + 1), (size_t)st.st_size};
    assert_non_null(im.data);
    size_t done = 0;
    while (done < im.size) {
        ssize_t n = pread(fd, im.data + done, im.size - done, (off_t)done);
        assert_true(n > 0);
        done += (size_t)n;
    }
    return im;
}

static void assert_same_image(int fd, const image *want)
{
    image got = read_image(fd);
    assert_int_equal(got.size, want->size);
    assert_int_equal(undolog_crc32c(0, got.data, got.size),
                     undolog_crc32c(0, want->data, want->size));
    assert_memory_equal(got.data, want->data, want->size);
    free(got.data);
}

static void write_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        assert_true(w > 0);
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
}

/* A data file of `size` random bytes; returns its fd (O_RDWR). */
static int make_file(fixture *f, const char *name, size_t size)
{
    int fd = open_data(f, name, O_RDWR | O_CREAT | O_TRUNC);
    assert_true(fd >= 0);
    uint8_t *p = malloc(size + 1);
    assert_non_null(p);
    fill_random(p, size);
    write_all(fd, p, size, 0);
    free(p);
    assert_int_equal(fsync(fd), 0);
    return fd;
}

static int log_count(fixture *f)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "test $(ls '%s/undo' | wc -l) -eq 0", f->state);
    return system(cmd) == 0 ? 0 : 1;
}

/* One random change under the log: overwrite, extend, big write, hole,
 * shrink or grow.  Crash points of the test itself: "test:mid_write" (half
 * the write applied) and "test:after_write". */
static void random_change(undolog *u, int fd)
{
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint64_t size = (uint64_t)st.st_size;
    unsigned kind = (unsigned)(rnd() % 6);
    if (kind == 4 || kind == 5) { /* truncate: shrink or grow */
        uint64_t ns = kind == 4 ? (size ? rnd() % size : 0) : size + rnd() % (2 * MIB);
        assert_int_equal(undolog_before_truncate(u, ns), 0);
        assert_int_equal(ftruncate(fd, (off_t)ns), 0);
        fault_point("test:after_write");
        return;
    }
    uint64_t off, len;
    switch (kind) {
    case 0:
        off = size ? rnd() % size : 0;
        len = 1 + rnd() % 65536;
        break; /* overwrite */
    case 1:
        off = size ? size - rnd() % (size < 4096 ? size : 4096) : 0; /* extend */
        len = 1 + rnd() % (256 * 1024);
        break;
    case 2:
        off = size ? rnd() % size : 0;
        len = MIB + 1 + rnd() % (2 * MIB);
        break; /* > 1 MiB */
    default:
        off = size + 1 + rnd() % MIB;
        len = 1 + rnd() % 8192;
        break; /* hole */
    }
    uint8_t *p = malloc(len);
    assert_non_null(p);
    fill_random(p, len);
    assert_int_equal(undolog_before_write(u, off, len), 0);
    write_all(fd, p, len / 2, off);
    fault_point("test:mid_write");
    write_all(fd, p + len / 2, len - len / 2, off + len / 2);
    free(p);
    fault_point("test:after_write");
}

/* ---- tests ------------------------------------------------------------------ */

static void test_rollback_random(void **state)
{
    fixture *f = *state;
    for (unsigned round = 0; round < 12; round++) {
        rng_state = 0x9e3779b97f4a7c15ull + round;
        int fd = make_file(f, "data", (size_t)(rnd() % (3 * MIB)) + (round % 3 == 0 ? 0 : 1));
        if (round == 1)
            assert_int_equal(ftruncate(fd, 0), 0); /* empty file */
        image orig = read_image(fd);
        undolog *u;
        assert_int_equal(undolog_create(f->undo_dirfd, "data", 4, fd, &u), 0);
        unsigned changes = 1 + (unsigned)(rnd() % 10);
        for (unsigned i = 0; i < changes; i++)
            random_change(u, fd);
        assert_true(undolog_records(u) >= changes);
        assert_int_equal(undolog_rollback(u), 0);
        assert_same_image(fd, &orig);
        assert_int_equal(log_count(f), 0);
        free(orig.data);
        close(fd);
    }
}

static void test_big_write_records(void **state)
{
    fixture *f = *state;
    rng_state = 42;
    int fd = make_file(f, "big", 5 * MIB + 17);
    image orig = read_image(fd);
    undolog *u;
    assert_int_equal(undolog_create(f->undo_dirfd, "big", 3, fd, &u), 0);
    uint64_t len = 4 * MIB + 100;
    uint8_t *p = calloc(1, len);
    assert_non_null(p);
    assert_int_equal(undolog_before_write(u, 3 * MIB, len), 0);
    /* pre-image: 2 MiB + 17 bytes below the size -> 3 records of <= 1 MiB */
    assert_int_equal(undolog_records(u), 3);
    write_all(fd, p, len, 3 * MIB);
    assert_int_equal(undolog_before_truncate(u, 100), 0); /* 7 MiB + 100 - 100 cut */
    assert_int_equal(ftruncate(fd, 100), 0);
    assert_int_equal(undolog_before_truncate(u, 9 * MIB), 0); /* grows: one empty record */
    assert_int_equal(ftruncate(fd, 9 * MIB), 0);
    assert_int_equal(undolog_records(u), 3 + 7 + 1);
    assert_int_equal(undolog_rollback(u), 0);
    assert_same_image(fd, &orig);
    free(p);
    free(orig.data);
    close(fd);
}

static void test_commit(void **state)
{
    fixture *f = *state;
    rng_state = 7;
    int fd = make_file(f, "c", 1000);
    undolog *u;
    assert_int_equal(undolog_create(f->undo_dirfd, "c", 1, fd, &u), 0);
    undolog *u2;
    assert_int_equal(undolog_create(f->undo_dirfd, "c", 1, fd, &u2), -EEXIST);
    assert_int_equal(undolog_create(f->undo_dirfd, "", 0, fd, &u2), -EINVAL);
    assert_int_equal(undolog_before_write(u, 10, 5), 0);
    write_all(fd, (const uint8_t *)"HELLO", 5, 10);
    assert_int_equal(log_count(f), 1);
    assert_int_equal(undolog_commit(u), 0);
    assert_int_equal(log_count(f), 0);
    char b[5];
    assert_int_equal(pread(fd, b, 5, 10), 5);
    assert_memory_equal(b, "HELLO", 5);
    /* A new log for the same object after the commit is fine; recovery of a
     * log without records changes nothing. */
    assert_int_equal(undolog_create(f->undo_dirfd, "c", 1, fd, &u), 0);
    undolog_close(u);
    unsigned rolled = 99;
    assert_int_equal(undolog_recover(f->undo_dirfd, open_by_id, f, &rolled), 0);
    assert_int_equal(rolled, 1);
    assert_int_equal(log_count(f), 0);
    assert_int_equal(pread(fd, b, 5, 10), 5);
    assert_memory_equal(b, "HELLO", 5);
    close(fd);
}

static void test_recover_gone_and_bad(void **state)
{
    fixture *f = *state;
    rng_state = 9;
    int fd = make_file(f, "gone", 4096);
    undolog *u;
    assert_int_equal(undolog_create(f->undo_dirfd, "gone", 4, fd, &u), 0);
    assert_int_equal(undolog_before_write(u, 0, 10), 0);
    undolog_close(u);
    close(fd);
    char path[600];
    snprintf(path, sizeof(path), "%s/gone", f->dir);
    assert_int_equal(unlink(path), 0);
    /* a log with a garbage header */
    int bad = openat(f->undo_dirfd, "undo-6261.log", O_CREAT | O_WRONLY, 0600);
    assert_true(bad >= 0);
    assert_int_equal(write(bad, "garbage", 7), 7);
    close(bad);
    unsigned rolled = 99;
    assert_int_equal(undolog_recover(f->undo_dirfd, open_by_id, f, &rolled), 0);
    assert_int_equal(rolled, 0);
    assert_int_equal(log_count(f), 0);
}

/* Concurrent writers through the set of logs (as dafsd's workers would
 * write under one AUTORECOVER lock): overlapping writes and extensions
 * from four threads, then one rollback gives back the pre-lock file. */
typedef struct writer_arg {
    undo_set *set;
    int fd;
    unsigned seed;
    int rc;
} writer_arg;

static void *writer_main(void *p)
{
    writer_arg *a = p;
    uint64_t st = a->seed * 0x9e3779b97f4a7c15ull + 1;
    uint8_t *buf = malloc(256 * 1024);
    if (!buf) {
        a->rc = -ENOMEM;
        return NULL;
    }
    for (unsigned i = 0; i < 40 && a->rc == 0; i++) {
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        uint64_t off = st % (3 * MIB), len = 1 + (st >> 20) % (256 * 1024);
        memset(buf, (int)(a->seed * 16 + i), len);
        a->rc = undoset_before_write(a->set, "cc", 2, a->fd, off, len);
        if (a->rc == 0 && pwrite(a->fd, buf, len, (off_t)off) != (ssize_t)len)
            a->rc = -EIO;
    }
    free(buf);
    return NULL;
}

static void test_set_concurrent_writers(void **state)
{
    fixture *f = *state;
    rng_state = 4242;
    int fd = make_file(f, "cc", 2 * MIB + 333);
    image orig = read_image(fd);
    undo_set *set;
    assert_int_equal(undoset_open(f->undo_dirfd, &set), 0);
    assert_int_equal(undoset_rollback(set, "cc", 2), 0); /* no log: nothing to do */
    assert_int_equal(undoset_commit(set, "cc", 2), 0);
    pthread_t th[4];
    writer_arg args[4];
    for (unsigned i = 0; i < 4; i++) {
        args[i] = (writer_arg){set, fd, i + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &args[i]), 0);
    }
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].rc, 0);
    }
    assert_int_equal(undoset_before_truncate(set, "cc", 2, fd, 1000), 0);
    assert_int_equal(ftruncate(fd, 1000), 0);
    assert_int_equal(undoset_rollback(set, "cc", 2), 0);
    assert_same_image(fd, &orig);
    assert_int_equal(log_count(f), 0);
    /* commit through the set; a log left open at close stays for recovery */
    assert_int_equal(undoset_before_write(set, "cc", 2, fd, 0, 4), 0);
    assert_int_equal(pwrite(fd, "NEW!", 4, 0), 4);
    assert_int_equal(undoset_commit(set, "cc", 2), 0);
    assert_int_equal(log_count(f), 0);
    assert_int_equal(undoset_before_write(set, "cc", 2, fd, 4, 4), 0);
    assert_int_equal(undoset_before_write(set, "", 0, fd, 4, 4), -EINVAL);
    undoset_close(set);
    assert_int_equal(log_count(f), 1);
    unsigned rolled = 0;
    assert_int_equal(undolog_recover(f->undo_dirfd, open_by_id, f, &rolled), 0);
    assert_int_equal(rolled, 1);
    free(orig.data);
    close(fd);
}

/* The crash sequence: create the log, make changes, roll back.  Runs in a
 * child with DAFS_FAULT set. */
static void crash_child(fixture *f, const char *spec, uint64_t seed)
{
    setenv("DAFS_FAULT", spec, 1);
    fault_reset();
    rng_state = seed;
    int fd = open_data(f, "crash", O_RDWR);
    if (fd < 0)
        _exit(2);
    undolog *u;
    if (undolog_create(f->undo_dirfd, "crash", 5, fd, &u) != 0)
        _exit(3);
    for (unsigned i = 0; i < 6; i++)
        random_change(u, fd);
    if (undolog_rollback(u) != 0)
        _exit(4);
    _exit(0);
}

static void test_crash_points(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *point;
        unsigned max_hit;
    } points[] = {
        {"undo:after_create", 1},    {"undo:before_record", 4},     {"undo:mid_record", 5},
        {"undo:after_record", 5},    {"test:mid_write", 4},         {"test:after_write", 6},
        {"rollback:after_apply", 8}, {"rollback:before_unlink", 1},
    };
    unsigned crashed = 0, runs = 0;
    for (size_t p = 0; p < sizeof(points) / sizeof(points[0]); p++) {
        for (unsigned hit = 1; hit <= points[p].max_hit; hit++) {
            uint64_t seed = 1000 + p * 16 + hit;
            rng_state = seed * 7919;
            int fd = make_file(f, "crash", (size_t)(MIB + rnd() % (2 * MIB)));
            image orig = read_image(fd);
            char spec[64];
            snprintf(spec, sizeof(spec), "%s:%u", points[p].point, hit);
            fflush(NULL);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0)
                crash_child(f, spec, seed);
            int ws;
            assert_int_equal(waitpid(pid, &ws, 0), pid);
            assert_true(WIFEXITED(ws));
            int code = WEXITSTATUS(ws);
            if (code != 0 && code != FAULT_EXIT_CODE)
                fail_msg("%s: child exited %d", spec, code);
            crashed += code == FAULT_EXIT_CODE;
            runs++;
            unsigned rolled = 0;
            assert_int_equal(undolog_recover(f->undo_dirfd, open_by_id, f, &rolled), 0);
            if (code == 0)
                assert_int_equal(rolled, 0); /* the child finished its rollback */
            assert_same_image(fd, &orig);
            assert_int_equal(log_count(f), 0);
            free(orig.data);
            close(fd);
        }
    }
    /* Most runs must really have crashed (a point not reached exits 0). */
    assert_true(crashed * 4 >= runs * 3);
    print_message("crash runs: %u, crashed at the point: %u\n", runs, crashed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollback_random, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_write_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recover_gone_and_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_concurrent_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_points, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
