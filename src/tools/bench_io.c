/*
 * bench_io.c — the dafs-bench workloads, run against dafs (libdafs) or a
 * local directory (plain POSIX calls) with the same code, so the two rows of
 * each workload differ only in the system underneath.
 *
 * Data: a 64 MiB file written once; 4 KiB random reads/writes at QD1 (one
 * thread) and QD32 (32 threads on one session, each with its own registered
 * 4 KiB buffer); 1 MiB sequential reads/writes as 8 MiB calls, so that 8 x
 * 1 MiB are in flight, like the floor's 8 outstanding 1 MiB RMAs.
 *
 * Async QD32 (dafs only): one thread keeps 32 4 KiB I/Os in flight with
 * dafs_submit, the same 32 registered buffers as the threaded QD32 rows,
 * and reaps with dafs_cq_reap (at least one, as many as are ready),
 * resubmitting the buffers that came back with one dafs_submit per reap.  Latency is from
 * submission to the reap that returned it.
 *
 * Metadata: a fresh directory per repeat; create, stat, readdir and unlink of
 * its o->ops_meta files.  dafs uses the handle-level calls relative to the
 * directory's handle (one round trip each, as a kernel client with a cached
 * directory would do); the local side uses openat/fstatat/unlinkat on a
 * directory descriptor, the same shape.
 */
#include "bench.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dafs/dafs.h>

typedef struct io_target {
    dafs_session *s; /* dafs, or NULL for local */
    dafs_file *f;
    int fd;          /* local data file */
    const char *dir; /* local: the scratch directory */
    pid_t server;    /* dafs server for CPU accounting, or 0 */
} io_target;

/* ---- data operations ------------------------------------------------------ */

static int io_rw(io_target *t, int write, char *buf, size_t size, uint64_t off)
{
    ssize_t n;
    if (t->s)
        n = write ? dafs_pwrite(t->f, buf, size, off) : dafs_pread(t->f, buf, size, off);
    else
        n = write ? pwrite(t->fd, buf, size, (off_t)off) : pread(t->fd, buf, size, (off_t)off);
    if (n == (ssize_t)size)
        return 0;
    return n < 0 ? (int)n : -EIO;
}

static uint64_t random_block(unsigned *seed)
{
    return (uint64_t)(rand_r(seed) % (BENCH_FILE_SIZE / 4096)) * 4096;
}

typedef struct io_thread {
    io_target *t;
    int write;
    char *buf;
    int ops;
    double *lat;
    unsigned seed;
    pthread_barrier_t *start;
    double t0, t1;
    int rc;
} io_thread;

static void *io_thread_main(void *arg)
{
    io_thread *th = arg;
    pthread_barrier_wait(th->start);
    th->t0 = bench_now();
    for (int i = 0; i < th->ops && th->rc == 0; i++) {
        double a = bench_now();
        th->rc = io_rw(th->t, th->write, th->buf, 4096, random_block(&th->seed));
        th->lat[i] = bench_now() - a;
    }
    th->t1 = bench_now();
    return NULL;
}

/* 4 KiB random I/O with `nthreads` threads (1 = QD1). */
static int run_random(io_target *t, int write, char **bufs, int nthreads, int ops,
                      bench_result *r)
{
    int per = ops / nthreads;
    ops = per * nthreads;
    double *lat = calloc((size_t)ops, sizeof(double));
    io_thread th[BENCH_QD];
    pthread_t tid[BENCH_QD];
    pthread_barrier_t start;
    if (!lat || per < 1 || nthreads > BENCH_QD) {
        free(lat);
        return -EINVAL;
    }
    if (pthread_barrier_init(&start, NULL, (unsigned)nthreads + 1) != 0) {
        free(lat);
        return -ENOMEM;
    }
    double srv0 = t->server > 0 ? bench_proc_cpu_us(t->server) : 0;
    double cpu0 = bench_self_cpu_us();
    int started = 0, rc = 0;
    for (int i = 0; i < nthreads; i++) {
        th[i] = (io_thread){.t = t, .write = write, .buf = bufs[i], .ops = per,
                            .lat = lat + (size_t)i * per, .seed = 12345u + 7919u * (unsigned)i,
                            .start = &start};
        if (pthread_create(&tid[i], NULL, io_thread_main, &th[i]) != 0) {
            rc = -EAGAIN;
            break;
        }
        started++;
    }
    if (rc != 0) { /* release the ones waiting: they run their (short) share */
        for (int i = started; i < nthreads; i++)
            pthread_barrier_wait(&start);
    }
    pthread_barrier_wait(&start);
    double first = 0, last = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        if (th[i].rc != 0 && rc == 0)
            rc = th[i].rc;
        if (i == 0 || th[i].t0 < first)
            first = th[i].t0;
        if (th[i].t1 > last)
            last = th[i].t1;
    }
    pthread_barrier_destroy(&start);
    double cpu = bench_self_cpu_us() - cpu0;
    r->server_cpu_us_per_op = bench_server_cpu_per_op(t->server, srv0, ops);
    if (rc == 0)
        bench_fill_result(r, lat, ops, last - first, 4096, cpu / ops);
    free(lat);
    return rc;
}

/* 4 KiB random reads in batches of BENCH_QD from one thread: one dafs_batch
 * (BATCH_SUBMIT) per batch on dafs, BENCH_QD preads on the local side.  Each
 * read's latency is its batch's. */
static int run_batch(io_target *t, char **bufs, int ops, bench_result *r)
{
    int batches = ops / BENCH_QD;
    ops = batches * BENCH_QD;
    double *lat = calloc((size_t)ops, sizeof(double));
    if (!lat || batches < 1) {
        free(lat);
        return -EINVAL;
    }
    dafs_io ios[BENCH_QD];
    dafs_cqe res[BENCH_QD];
    unsigned seed = 4242u;
    double srv0 = t->server > 0 ? bench_proc_cpu_us(t->server) : 0;
    double cpu0 = bench_self_cpu_us(), t0 = bench_now();
    int rc = 0;
    for (int b = 0; b < batches && rc == 0; b++) {
        double a = bench_now();
        for (int i = 0; i < BENCH_QD; i++)
            ios[i] = (dafs_io){.op = DAFS_IO_READ, .file = t->f, .buf = bufs[i], .len = 4096,
                               .offset = random_block(&seed)};
        if (t->s) {
            rc = dafs_batch(t->s, ios, res, BENCH_QD);
            for (int i = 0; i < BENCH_QD && rc == 0; i++)
                if (res[i].res != 4096)
                    rc = res[i].res < 0 ? (int)res[i].res : -EIO;
        } else {
            for (int i = 0; i < BENCH_QD && rc == 0; i++)
                rc = io_rw(t, 0, bufs[i], 4096, ios[i].offset);
        }
        double dt = bench_now() - a;
        for (int i = 0; i < BENCH_QD; i++)
            lat[(size_t)b * BENCH_QD + (size_t)i] = dt;
    }
    double elapsed = bench_now() - t0, cpu = bench_self_cpu_us() - cpu0;
    r->server_cpu_us_per_op = bench_server_cpu_per_op(t->server, srv0, ops);
    if (rc == 0)
        bench_fill_result(r, lat, ops, elapsed, 4096, cpu / ops);
    free(lat);
    return rc;
}

/* Sequential 1 MiB I/O as 8 MiB calls; reported per 1 MiB operation. */
static int run_seq(io_target *t, int write, char *buf, int calls, bench_result *r)
{
    const int per_call = BENCH_SEQ_CALL >> 20;
    double *lat = calloc((size_t)calls, sizeof(double));
    if (!lat)
        return -ENOMEM;
    double srv0 = t->server > 0 ? bench_proc_cpu_us(t->server) : 0;
    double cpu0 = bench_self_cpu_us(), t0 = bench_now();
    int rc = 0;
    for (int i = 0; i < calls && rc == 0; i++) {
        uint64_t off = (uint64_t)(i % (int)(BENCH_FILE_SIZE / BENCH_SEQ_CALL)) * BENCH_SEQ_CALL;
        double a = bench_now();
        rc = io_rw(t, write, buf, BENCH_SEQ_CALL, off);
        lat[i] = bench_now() - a;
    }
    double elapsed = bench_now() - t0, cpu = bench_self_cpu_us() - cpu0;
    r->server_cpu_us_per_op = bench_server_cpu_per_op(t->server, srv0, calls * per_call);
    if (rc == 0) {
        bench_fill_result(r, lat, calls, elapsed, BENCH_SEQ_CALL, cpu / calls / per_call);
        r->ops = calls * per_call;
        r->size = 1u << 20;
        r->ops_per_s *= per_call; /* MB/s stays: bytes over time */
    }
    free(lat);
    return rc;
}

/* ---- 4 KiB random I/O, one thread, async QD32 (dafs only) ---------------- */

static int run_async(io_target *t, int write, char **bufs, int ops, bench_result *r)
{
    enum { DEPTH = BENCH_QD };
    double *lat = calloc((size_t)ops, sizeof(double));
    dafs_cq *cq = NULL;
    int rc = lat == NULL ? -ENOMEM : dafs_cq_create(t->s, DEPTH, &cq);
    if (rc != 0) {
        free(lat);
        return rc;
    }
    double sent[DEPTH];
    unsigned seed = 4242u;
    int submitted = 0, done = 0;
    double srv0 = t->server > 0 ? bench_proc_cpu_us(t->server) : 0;
    double cpu0 = bench_self_cpu_us(), t0 = bench_now();
    dafs_io io = {.op = write ? DAFS_IO_WRITE : DAFS_IO_READ, .file = t->f, .len = 4096};
    for (int i = 0; i < DEPTH && submitted < ops && rc == 0; i++) {
        io.buf = bufs[i];
        io.offset = random_block(&seed);
        io.user_data = (void *)(uintptr_t)i;
        sent[i] = bench_now();
        rc = dafs_submit(cq, &io, 1) == 1 ? 0 : -EIO;
        submitted++;
    }
    dafs_cqe ev[DEPTH];
    dafs_io next[DEPTH];
    while (rc == 0 && done < submitted) {
        int k = dafs_cq_reap(cq, ev, DEPTH, 1, -1);
        if (k < 0) {
            rc = k;
            break;
        }
        double now = bench_now();
        int nnext = 0;
        for (int j = 0; j < k && rc == 0; j++) {
            uintptr_t b = (uintptr_t)ev[j].user_data;
            if (ev[j].res != 4096 || b >= DEPTH) {
                rc = ev[j].res < 0 ? (int)ev[j].res : -EIO;
                break;
            }
            lat[done++] = now - sent[b];
            if (submitted + nnext < ops) { /* resubmitted together below */
                next[nnext] = io;
                next[nnext].buf = bufs[b];
                next[nnext].offset = random_block(&seed);
                next[nnext].user_data = (void *)b;
                sent[b] = now;
                nnext++;
            }
        }
        if (rc == 0 && nnext > 0) {
            rc = dafs_submit(cq, next, (unsigned)nnext) == nnext ? 0 : -EIO;
            submitted += nnext;
        }
    }
    double elapsed = bench_now() - t0, cpu = bench_self_cpu_us() - cpu0;
    (void)dafs_cq_destroy(cq);
    r->server_cpu_us_per_op = bench_server_cpu_per_op(t->server, srv0, ops);
    if (rc == 0)
        bench_fill_result(r, lat, ops, elapsed, 4096, cpu / ops);
    free(lat);
    return rc;
}

/* ---- metadata --------------------------------------------------------------- */

typedef struct meta_dir {
    io_target *t;
    char name[64];
    dafs_handle root, dir; /* dafs */
    int dirfd;             /* local */
} meta_dir;

static void meta_file_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "f%06d", i);
}

static int meta_create(meta_dir *m, const char *name)
{
    if (m->t->s) {
        dafs_handle fh;
        struct dafs_stat st;
        int created = 0;
        return dafs_h_open(m->t->s, NULL, &m->dir, name, O_WRONLY | O_CREAT | O_EXCL, 0644, &fh,
                           &st, &created);
    }
    int fd = openat(m->dirfd, name, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0)
        return -errno;
    return close(fd) == 0 ? 0 : -errno;
}

static int meta_stat(meta_dir *m, const char *name)
{
    if (m->t->s) {
        dafs_handle fh;
        struct dafs_stat st;
        return dafs_h_lookup(m->t->s, NULL, &m->dir, name, &fh, &st);
    }
    struct stat st;
    return fstatat(m->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int meta_unlink(meta_dir *m, const char *name)
{
    if (m->t->s)
        return dafs_h_unlink(m->t->s, NULL, &m->dir, name);
    return unlinkat(m->dirfd, name, 0) == 0 ? 0 : -errno;
}

typedef int (*meta_op)(meta_dir *m, const char *name);

static int run_meta_op(meta_dir *m, meta_op op, int n, bench_result *r)
{
    double *lat = calloc((size_t)n, sizeof(double));
    if (!lat)
        return -ENOMEM;
    double srv0 = m->t->server > 0 ? bench_proc_cpu_us(m->t->server) : 0;
    double cpu0 = bench_self_cpu_us(), t0 = bench_now();
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        char name[32];
        meta_file_name(name, sizeof(name), i);
        double a = bench_now();
        rc = op(m, name);
        lat[i] = bench_now() - a;
    }
    double elapsed = bench_now() - t0, cpu = bench_self_cpu_us() - cpu0;
    r->server_cpu_us_per_op = bench_server_cpu_per_op(m->t->server, srv0, n);
    if (rc == 0)
        bench_fill_result(r, lat, n, elapsed, 0, cpu / n);
    free(lat);
    return rc;
}

/* readdir: per-entry latency is the time since the previous entry arrived. */
typedef struct readdir_state {
    double *lat;
    int n, max;
    double last;
} readdir_state;

static void readdir_entry(readdir_state *rs)
{
    double now = bench_now();
    if (rs->n < rs->max)
        rs->lat[rs->n] = now - rs->last;
    rs->n++;
    rs->last = now;
}

static int readdir_cb(void *arg, const dafs_dirent *ent, uint64_t next_cookie)
{
    (void)ent, (void)next_cookie;
    readdir_entry(arg);
    return 0;
}

static int list_dir(meta_dir *m, readdir_state *rs)
{
    if (m->t->s) {
        uint64_t cookie = 0;
        int eof = 0, rc = 0;
        while (!eof && rc == 0)
            rc = dafs_h_readdir(m->t->s, NULL, &m->dir, &cookie, readdir_cb, rs, &eof);
        return rc;
    }
    int fd = dup(m->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return -e;
    }
    rewinddir(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            readdir_entry(rs);
    closedir(d);
    return 0;
}

static int run_readdir(meta_dir *m, int n, bench_result *r)
{
    readdir_state rs = {.lat = calloc((size_t)n, sizeof(double)), .max = n};
    if (!rs.lat)
        return -ENOMEM;
    double srv0 = m->t->server > 0 ? bench_proc_cpu_us(m->t->server) : 0;
    double cpu0 = bench_self_cpu_us(), t0 = bench_now();
    rs.last = t0;
    int rc = list_dir(m, &rs);
    double elapsed = bench_now() - t0, cpu = bench_self_cpu_us() - cpu0;
    if (rc == 0 && rs.n != n) {
        fprintf(stderr, "dafs-bench: readdir saw %d entries, expected %d\n", rs.n, n);
        rc = -EIO;
    }
    r->server_cpu_us_per_op = bench_server_cpu_per_op(m->t->server, srv0, n);
    if (rc == 0)
        bench_fill_result(r, rs.lat, n, elapsed, 0, cpu / n);
    free(rs.lat);
    return rc;
}

static int meta_dir_open(meta_dir *m, io_target *t, int repeat_index)
{
    memset(m, 0, sizeof(*m));
    m->t = t;
    m->dirfd = -1;
    snprintf(m->name, sizeof(m->name), "dafs-bench-meta.%d", repeat_index);
    if (t->s) {
        struct dafs_stat st;
        int rc = dafs_h_root(t->s, &m->root, &st);
        return rc ? rc : dafs_h_mkdir(t->s, NULL, &m->root, m->name, 0755, &m->dir, &st);
    }
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", t->dir, m->name);
    if (mkdir(path, 0755) != 0)
        return -errno;
    m->dirfd = open(path, O_RDONLY | O_DIRECTORY);
    return m->dirfd >= 0 ? 0 : -errno;
}

/* Remove what is left (after a failure) and the directory itself. */
static void meta_dir_close(meta_dir *m, int n)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        meta_file_name(name, sizeof(name), i);
        (void)meta_unlink(m, name);
    }
    if (m->t->s) {
        (void)dafs_h_rmdir(m->t->s, NULL, &m->root, m->name);
        return;
    }
    close(m->dirfd);
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", m->t->dir, m->name);
    (void)rmdir(path);
}

static int run_meta(io_target *t, const bench_opts *o, int repeat_index,
                    bench_result out[BW_COUNT])
{
    meta_dir m;
    int rc = meta_dir_open(&m, t, repeat_index);
    if (rc != 0)
        return rc;
    rc = run_meta_op(&m, meta_create, o->ops_meta, &out[BW_CREATE]);
    if (rc == 0)
        rc = run_meta_op(&m, meta_stat, o->ops_meta, &out[BW_STAT]);
    if (rc == 0)
        rc = run_readdir(&m, o->ops_meta, &out[BW_READDIR]);
    if (rc == 0)
        rc = run_meta_op(&m, meta_unlink, o->ops_meta, &out[BW_UNLINK]);
    meta_dir_close(&m, rc == 0 ? 0 : o->ops_meta);
    return rc;
}

/* ---- locks ------------------------------------------------------------------ */

/* One exclusive lock and its unlock, on a range of the data file that moves
 * each time: dafs_lock/dafs_unlock (two round trips), or fcntl(2) locally. */
static int lock_unlock(io_target *t, uint64_t off)
{
    if (t->s) {
        int rc = dafs_lock(t->f, 1, DAFS_LOCK_EXCLUSIVE, 0, off, 4096);
        return rc == 0 ? dafs_unlock(t->f, 1, off, 4096) : rc;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = (off_t)off,
                       .l_len = 4096};
    if (fcntl(t->fd, F_SETLK, &fl) != 0)
        return -errno;
    fl.l_type = F_UNLCK;
    return fcntl(t->fd, F_SETLK, &fl) == 0 ? 0 : -errno;
}

static int run_lock(io_target *t, int n, bench_result *r)
{
    double *lat = calloc((size_t)n, sizeof(double));
    if (!lat)
        return -ENOMEM;
    double srv0 = t->server > 0 ? bench_proc_cpu_us(t->server) : 0;
    double cpu0 = bench_self_cpu_us(), t0 = bench_now();
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        double a = bench_now();
        rc = lock_unlock(t, (uint64_t)(i % 1024) * 4096);
        lat[i] = bench_now() - a;
    }
    double elapsed = bench_now() - t0, cpu = bench_self_cpu_us() - cpu0;
    r->server_cpu_us_per_op = bench_server_cpu_per_op(t->server, srv0, n);
    if (rc == 0)
        bench_fill_result(r, lat, n, elapsed, 0, cpu / n);
    free(lat);
    return rc;
}

/* write4k_qd1 with the whole data file under an AUTORECOVER lock, so each
 * write first saves what it overwrites to the server's undo log (one
 * fdatasync each); the unlock at the end commits.  Local: the same writes
 * with no lock, the baseline of the row. */
static int run_autorecover(io_target *t, char *buf, int n, bench_result *r)
{
    if (t->s) {
        int rc = dafs_lock(t->f, 2, DAFS_LOCK_EXCLUSIVE, DAFS_LOCK_AUTORECOVER, 0,
                           DAFS_LOCK_TO_EOF);
        if (rc != 0)
            return rc;
    }
    int rc = run_random(t, 1, &buf, 1, n, r);
    if (t->s) {
        int urc = dafs_unlock(t->f, 2, 0, DAFS_LOCK_TO_EOF);
        rc = rc != 0 ? rc : urc;
    }
    return rc;
}

/* ---- one repeat of everything selected ------------------------------------ */

static int run_all(io_target *t, char *big, char **small, const bench_opts *o,
                   int repeat_index, bench_result out[BW_COUNT])
{
    int rc = 0;
    if (o->selected[BW_READ4K_QD1])
        rc = run_random(t, 0, &big, 1, o->ops_small, &out[BW_READ4K_QD1]);
    if (rc == 0 && o->selected[BW_READ4K_QD32])
        rc = run_random(t, 0, small, BENCH_QD, o->ops_qd32, &out[BW_READ4K_QD32]);
    if (rc == 0 && o->selected[BW_WRITE4K_QD1])
        rc = run_random(t, 1, &big, 1, o->ops_small, &out[BW_WRITE4K_QD1]);
    if (rc == 0 && o->selected[BW_WRITE4K_QD32])
        rc = run_random(t, 1, small, BENCH_QD, o->ops_qd32, &out[BW_WRITE4K_QD32]);
    if (rc == 0 && t->s && o->selected[BW_READ4K_ASYNC_QD32])
        rc = run_async(t, 0, small, o->ops_qd32, &out[BW_READ4K_ASYNC_QD32]);
    if (rc == 0 && t->s && o->selected[BW_WRITE4K_ASYNC_QD32])
        rc = run_async(t, 1, small, o->ops_qd32, &out[BW_WRITE4K_ASYNC_QD32]);
    if (rc == 0 && o->selected[BW_READ4K_BATCH32])
        rc = run_batch(t, small, o->ops_qd32, &out[BW_READ4K_BATCH32]);
    if (rc == 0 && o->selected[BW_SEQREAD_1M])
        rc = run_seq(t, 0, big, o->seq_calls, &out[BW_SEQREAD_1M]);
    if (rc == 0 && o->selected[BW_SEQWRITE_1M])
        rc = run_seq(t, 1, big, o->seq_calls, &out[BW_SEQWRITE_1M]);
    if (rc == 0 && o->selected[BW_CREATE])
        rc = run_meta(t, o, repeat_index, out);
    if (rc == 0 && o->selected[BW_LOCK])
        rc = run_lock(t, o->ops_meta, &out[BW_LOCK]);
    if (rc == 0 && o->selected[BW_WRITE4K_AR]) /* ~1 ms a write: a tenth of the QD1 count */
        rc = run_autorecover(t, big, o->ops_small / 10 > 0 ? o->ops_small / 10 : 1,
                             &out[BW_WRITE4K_AR]);
    return rc;
}

/* Buffers: one 8 MiB (QD1 and sequential) and BENCH_QD 4 KiB ones, each
 * registered on its own when dafs. */
typedef struct io_buffers {
    char *big;
    char *small[BENCH_QD];
    dafs_mr *mr[BENCH_QD + 1];
} io_buffers;

static void buffers_free(io_buffers *b)
{
    for (int i = 0; i < BENCH_QD + 1; i++)
        if (b->mr[i])
            dafs_mem_deregister(b->mr[i]);
    free(b->big);
    for (int i = 0; i < BENCH_QD; i++)
        free(b->small[i]);
}

static int buffers_alloc(io_buffers *b, dafs_session *s)
{
    memset(b, 0, sizeof(*b));
    b->big = aligned_alloc(4096, BENCH_SEQ_CALL);
    int rc = b->big ? 0 : -ENOMEM;
    if (rc == 0) {
        memset(b->big, 0x5a, BENCH_SEQ_CALL);
        if (s)
            rc = dafs_mem_register(s, b->big, BENCH_SEQ_CALL, &b->mr[BENCH_QD]);
    }
    for (int i = 0; rc == 0 && i < BENCH_QD; i++) {
        b->small[i] = aligned_alloc(4096, 4096);
        rc = b->small[i] ? 0 : -ENOMEM;
        if (rc == 0) {
            memset(b->small[i], 0x3c, 4096);
            if (s)
                rc = dafs_mem_register(s, b->small[i], 4096, &b->mr[i]);
        }
    }
    if (rc != 0)
        buffers_free(b);
    return rc;
}

static int fill_file(io_target *t, char *buf)
{
    for (uint64_t off = 0; off < BENCH_FILE_SIZE; off += BENCH_SEQ_CALL) {
        int rc = io_rw(t, 1, buf, BENCH_SEQ_CALL, off);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int bench_io_prepare_dafs(dafs_session *s)
{
    io_target t = {.s = s};
    io_buffers b;
    int rc = buffers_alloc(&b, s);
    if (rc != 0)
        return rc;
    rc = dafs_open(s, BENCH_DATA_FILE, O_RDWR | O_CREAT | O_TRUNC, 0644, &t.f);
    if (rc == 0) {
        rc = fill_file(&t, b.big);
        int crc = dafs_close(t.f);
        rc = rc ? rc : crc;
    }
    buffers_free(&b);
    return rc;
}

int bench_io_prepare_local(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, BENCH_DATA_FILE);
    io_target t = {.fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644)};
    if (t.fd < 0)
        return -errno;
    char *buf = aligned_alloc(4096, BENCH_SEQ_CALL);
    int rc = buf ? 0 : -ENOMEM;
    if (rc == 0) {
        memset(buf, 0x5a, BENCH_SEQ_CALL);
        rc = fill_file(&t, buf);
    }
    free(buf);
    close(t.fd);
    return rc;
}

void bench_io_cleanup_dafs(dafs_session *s)
{
    (void)dafs_unlink(s, BENCH_DATA_FILE);
}

void bench_io_cleanup_local(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, BENCH_DATA_FILE);
    (void)unlink(path);
}

int bench_io_dafs(dafs_session *s, const bench_opts *o, pid_t server, int repeat_index,
                  bench_result out[BW_COUNT])
{
    io_target t = {.s = s, .server = server};
    io_buffers b;
    int rc = buffers_alloc(&b, s);
    if (rc != 0)
        return rc;
    rc = dafs_open(s, BENCH_DATA_FILE, O_RDWR, 0, &t.f);
    if (rc == 0) {
        rc = run_all(&t, b.big, b.small, o, repeat_index, out);
        int crc = dafs_close(t.f);
        rc = rc ? rc : crc;
    }
    buffers_free(&b);
    return rc;
}

int bench_io_local(const char *dir, const bench_opts *o, int repeat_index,
                   bench_result out[BW_COUNT])
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, BENCH_DATA_FILE);
    io_target t = {.dir = dir, .fd = open(path, O_RDWR)};
    if (t.fd < 0)
        return -errno;
    io_buffers b;
    int rc = buffers_alloc(&b, NULL);
    if (rc == 0) {
        rc = run_all(&t, b.big, b.small, o, repeat_index, out);
        buffers_free(&b);
    }
    close(t.fd);
    return rc;
}
