/*
 * cli_transfer.c — the commands that move file data: get, cat, put and cp.
 *
 * Data moves through one large buffer registered once with
 * dafs_mem_register, so get, put and cat are zero copy on the network side:
 * the server RMA-writes file data straight into the buffer we then write(2)
 * out, and RMA-reads what we read(2) in.  cp streams through the same
 * buffer from one remote file to another.  Every local read and write is
 * looped until complete, and byte counts are checked against the file
 * sizes, so nothing is lost silently.
 *
 * Nothing that looks complete is left behind by a transfer that did not
 * complete.  get writes a temporary file next to the destination,
 * ".NAME.dafs-XXXXXX", and renames it over NAME only when every byte is in;
 * put and cp do the same on the server (create the temporary name with
 * O_EXCL, write, fsync, RENAME, then fsync again: the server makes the new
 * name durable at a commit).  On an error, or on SIGINT/SIGTERM/SIGHUP
 * (which the transfer notices between two chunks), the temporary file is
 * removed instead and the command prints one line.  Only a server that
 * dies in the middle of a put can leave its temporary file there (the dot
 * name makes it plain what it is).  Destinations that are not regular files
 * (/dev/null, a FIFO) and standard output are written directly.
 *
 * A progress line (bytes, %, MB/s) is drawn on stderr only when stderr is a
 * terminal, the data does not go to the terminal itself (cat), and the
 * transfer has lasted more than a second; it always ends with a newline,
 * also on errors and signals.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define XFER_BUF_SIZE (8u << 20) /* 8 MiB: several max_io chunks in flight */
#define XFER_PROBE_SIZE 4096u     /* a read past the expected end: one small request */
#define TEMP_TRIES 100

/* ---- progress line ---- */

typedef struct progress {
    bool enabled; /* stderr is a terminal */
    double start, last_draw;
    uint64_t total; /* 0: unknown */
} progress;

static void progress_init(progress *p, uint64_t total, bool quiet)
{
    p->enabled = !quiet && isatty(STDERR_FILENO) == 1;
    p->start = p->last_draw = cli_now();
    p->total = total;
}

static void progress_update(progress *p, uint64_t done, bool final)
{
    if (!p->enabled)
        return;
    double now = cli_now(), elapsed = now - p->start;
    if (elapsed < 1.0 || (!final && now - p->last_draw < 0.2))
        return;
    p->last_draw = now;
    char sz[32];
    cli_human_size(done, sz, sizeof sz);
    double mbps = (double)done / elapsed / 1e6;
    cli_progress_open = 1;
    if (p->total > 0)
        fprintf(stderr, "\r%12s  %3u%%  %8.1f MB/s ", sz,
                (unsigned)((double)done * 100.0 / (double)p->total), mbps);
    else
        fprintf(stderr, "\r%12s  %8.1f MB/s ", sz, mbps);
}

static void progress_finish(progress *p, uint64_t done)
{
    progress_update(p, done, true);
    if (cli_progress_open) {
        fputc('\n', stderr);
        cli_progress_open = 0;
    }
}

/* ---- local I/O that never stops half way ---- */

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            return -EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read up to len bytes, stopping early only at end of file. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, buf + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

/* ---- temporary names: ".NAME.dafs-XXXXXX" next to NAME ---- */

static void temp_sibling(const char *final, char *out, size_t outlen)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    static unsigned counter;
    uint8_t rnd[6];
    if (getrandom(rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t v = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 20) ^ (uint64_t)++counter * 7919u;
        for (size_t i = 0; i < sizeof rnd; i++)
            rnd[i] = (uint8_t)(v >> (8 * i));
    }
    char suffix[sizeof rnd + 1];
    for (size_t i = 0; i < sizeof rnd; i++)
        suffix[i] = chars[rnd[i] % (sizeof chars - 1)];
    suffix[sizeof rnd] = '\0';
    const char *slash = strrchr(final, '/');
    int dirlen = slash != NULL ? (int)(slash - final + 1) : 0;
    const char *name = final + dirlen;
    /* 200 bytes of the name keep the temporary name within NAME_MAX. */
    (void)snprintf(out, outlen, "%.*s.%.200s.dafs-%s", dirlen, final, name, suffix);
}

/* Create a remote temporary file for final; returns 0 or a libdafs error. */
static int remote_temp_create(cli *c, const char *final, mode_t mode, char *temp, size_t templen,
                              dafs_file **f)
{
    int rc = -EEXIST;
    for (int i = 0; i < TEMP_TRIES && rc == -EEXIST; i++) {
        temp_sibling(final, temp, templen);
        rc = dafs_open(c->s, temp, O_WRONLY | O_CREAT | O_EXCL, mode, f);
    }
    return rc;
}

/* ---- the registered buffer and the transfer loop ---- */

typedef struct xfer_buf {
    uint8_t *data;
    dafs_mr *mr;
} xfer_buf;

static int xfer_buf_open(cli *c, const char *url, xfer_buf *b)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, XFER_BUF_SIZE) != 0)
        return cli_fail_dafs(c, url, -ENOMEM);
    b->data = p;
    int rc = dafs_mem_register(c->s, b->data, XFER_BUF_SIZE, &b->mr);
    if (rc < 0) {
        free(b->data);
        return cli_fail_dafs(c, url, rc);
    }
    return 0;
}

static void xfer_buf_close(xfer_buf *b)
{
    (void)dafs_mem_deregister(b->mr);
    free(b->data);
}

/* One chunk of a transfer: move up to XFER_BUF_SIZE bytes at off through buf
 * and set *moved (0 once the source is exhausted).  Returns 0, or 1 after
 * printing the error line. */
typedef struct transfer transfer;
typedef int (*transfer_step)(const transfer *t, uint8_t *buf, uint64_t off, size_t *moved);

struct transfer {
    cli *c;
    const char *url;   /* the remote object, named in remote errors */
    const char *local; /* the local file (get, put), named in local errors */
    dafs_file *src;    /* remote source (get, cp) */
    dafs_file *dst;    /* remote destination (put, cp) */
    int fd;            /* local file (get, put) */
    uint64_t size;     /* bytes expected */
    bool quiet;        /* no progress line (the data goes to the terminal) */
    transfer_step step;
};

/* Run t->step through one registered buffer until the source ends, a step
 * fails or a signal arrives, drawing progress; *total is the number of
 * bytes moved.  An interrupted transfer returns 0: callers check
 * cli_pending_signal() first. */
static int run_transfer(const transfer *t, uint64_t *total)
{
    xfer_buf b;
    if (xfer_buf_open(t->c, t->url, &b) != 0)
        return 1;
    progress pr;
    progress_init(&pr, t->size, t->quiet);
    uint64_t off = 0;
    size_t moved = 0;
    int status = 0;
    while (cli_pending_signal() == 0 && (status = t->step(t, b.data, off, &moved)) == 0 &&
           moved > 0) {
        off += moved;
        progress_update(&pr, off, false);
    }
    progress_finish(&pr, off);
    xfer_buf_close(&b);
    *total = off;
    return status;
}

/* A transfer out of a remote file (get, cat, cp): fewer bytes than its size
 * means the file shrank under us. */
static int transfer_from_remote(const transfer *t)
{
    uint64_t off = 0;
    int status = run_transfer(t, &off);
    if (status == 0 && cli_pending_signal() == 0 && off < t->size)
        status = cli_fail(t->c, t->url, "file shrank during the copy (%" PRIu64 " of %" PRIu64
                          " bytes)", off, t->size);
    return status;
}

/* End the deferred-signal section of a transfer whose temporary files are
 * gone: a signal caught in it becomes the exit status (with its line,
 * unless an error line was printed already). */
static int end_transfer(cli *c, const char *object, int status)
{
    cli_set_local_temp(NULL);
    cli_signals_deferred(false);
    int sig = cli_pending_signal();
    if (sig == 0)
        return status;
    return status != 0 ? 128 + sig : cli_interrupted(c, object);
}

static int open_remote_for_read(cli *c, const char *url, dafs_file **f, uint64_t *size)
{
    int rc = dafs_open(c->s, c->path, O_RDONLY, 0, f);
    if (rc < 0)
        return cli_fail_dafs(c, url, rc);
    struct dafs_stat st;
    rc = dafs_fstat(*f, &st);
    if (rc < 0) {
        (void)dafs_close(*f);
        return cli_fail_dafs(c, url, rc);
    }
    *size = st.size;
    return 0;
}

/* ---- get / cat ---- */

/* One chunk of get/cat: remote pread, then write(2) all of it.  Up to the
 * size the file had at open; past it one small read tells whether it grew
 * (a full-buffer read there would send XFER_BUF_SIZE / max_io requests for
 * nothing: 8 READs for a 3-byte file). */
static int remote_to_local(const transfer *t, uint8_t *buf, uint64_t off, size_t *moved)
{
    size_t want = off < t->size ? (t->size - off < XFER_BUF_SIZE ? (size_t)(t->size - off)
                                                                   : XFER_BUF_SIZE)
                                : XFER_PROBE_SIZE;
    ssize_t n = dafs_pread(t->src, buf, want, off);
    if (n < 0)
        return cli_fail_dafs(t->c, t->url, (int)n);
    int rc = write_all(t->fd, buf, (size_t)n);
    if (rc < 0)
        return cli_fail(t->c, t->local, "%s", strerror(-rc));
    *moved = (size_t)n;
    return 0;
}

/* Where get writes: the destination the user named (final), and the
 * temporary file actually written (temp, "" when writing final directly). */
typedef struct local_dest {
    const char *shown; /* the name as given, for error lines */
    char final[PATH_MAX];
    char temp[PATH_MAX];
    int fd;
} local_dest;

/* Open d->final for writing through a temporary sibling; d->final may be
 * rewritten to the file a symlink points to (the link stays). */
static int local_dest_open(cli *c, local_dest *d)
{
    struct stat st;
    bool exists = stat(d->final, &st) == 0;
    d->temp[0] = '\0';
    d->fd = -1;
    if (exists && !S_ISREG(st.st_mode)) { /* /dev/null, a FIFO, a terminal */
        d->fd = open(d->final, O_WRONLY | O_TRUNC | O_CLOEXEC);
        return d->fd < 0 ? cli_fail(c, d->shown, "%s", strerror(errno)) : 0;
    }
    if (exists && access(d->final, W_OK) != 0) /* as cp: no replacing a file we may not write */
        return cli_fail(c, d->shown, "%s", strerror(errno));
    struct stat lst;
    if (exists && lstat(d->final, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        char resolved[PATH_MAX];
        if (realpath(d->final, resolved) == NULL)
            return cli_fail(c, d->shown, "%s", strerror(errno));
        memcpy(d->final, resolved, sizeof resolved);
    }
    for (int i = 0; i < TEMP_TRIES && d->fd < 0; i++) {
        temp_sibling(d->final, d->temp, sizeof d->temp);
        cli_set_local_temp(d->temp); /* before it exists: a second signal removes it */
        d->fd = open(d->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (d->fd < 0 && errno != EEXIST)
            break;
    }
    if (d->fd < 0) {
        int err = errno;
        cli_set_local_temp(NULL);
        d->temp[0] = '\0';
        return cli_fail(c, d->shown, "%s", strerror(err));
    }
    if (exists) { /* the replacement keeps the old file's mode (and owner, if we may) */
        if (fchmod(d->fd, st.st_mode & 07777) != 0)
            return cli_fail(c, d->shown, "%s", strerror(errno));
        if ((st.st_uid != geteuid() || st.st_gid != getegid()) &&
            fchown(d->fd, st.st_uid, st.st_gid) != 0) {
            /* not allowed: the copy is ours, as cp's would be */
        }
    }
    return 0;
}

/* Close the destination; on success move the temporary file into place,
 * otherwise remove it.  Returns the final status. */
static int local_dest_close(cli *c, local_dest *d, int status)
{
    if (d->fd >= 0 && close(d->fd) != 0 && status == 0)
        status = cli_fail(c, d->shown, "%s", strerror(errno));
    d->fd = -1;
    if (d->temp[0] == '\0')
        return status;
    if (status == 0 && cli_pending_signal() == 0 && rename(d->temp, d->final) != 0)
        status = cli_fail(c, d->shown, "%s", strerror(errno));
    if (status != 0 || cli_pending_signal() != 0)
        (void)unlink(d->temp);
    d->temp[0] = '\0';
    return status;
}

/* Copy c->path (on the open session) to local, or to stdout for NULL. */
static int get_to(cli *c, const char *url, const char *local)
{
    dafs_file *f = NULL;
    uint64_t size = 0;
    int status = open_remote_for_read(c, url, &f, &size);
    if (status != 0)
        return status;
    local_dest d = {.shown = local != NULL ? local : "<stdout>", .fd = STDOUT_FILENO};
    cli_signals_deferred(true);
    if (local != NULL) {
        if (strlen(local) >= sizeof d.final)
            status = cli_fail(c, local, "%s", strerror(ENAMETOOLONG));
        else {
            strcpy(d.final, local);
            status = local_dest_open(c, &d);
        }
    }
    if (status == 0) {
        transfer t = {.c = c, .url = url, .local = d.shown, .src = f, .fd = d.fd,
                      .size = size, .quiet = local == NULL && isatty(STDOUT_FILENO) == 1,
                      .step = remote_to_local};
        status = transfer_from_remote(&t);
    }
    if (local != NULL)
        status = local_dest_close(c, &d, status);
    int rc = dafs_close(f);
    if (rc < 0 && status == 0)
        status = cli_fail_dafs(c, url, rc);
    return end_transfer(c, url, status);
}

int cmd_cat(cli *c, int argc, char **argv)
{
    if (argc < 1)
        return cli_bad_usage(c);
    int status = 0;
    for (int i = 0; i < argc && status < 128; i++) { /* on after a failure, as cat */
        int rc = cli_open(c, argv[i]) != 0 ? 1 : get_to(c, argv[i], NULL);
        if (rc > status)
            status = rc;
    }
    return cli_close_session(c, argv[argc - 1], status);
}

/* The local name get writes for remote path: local itself, local/NAME when
 * local is a directory, ./NAME without local (like wget). */
static int get_destination(cli *c, const char *url, const char *remote, const char *local,
                           char *out, size_t outlen)
{
    const char *name = cli_base_name(remote);
    struct stat st;
    bool into_dir = local == NULL || (stat(local, &st) == 0 && S_ISDIR(st.st_mode));
    if (into_dir && strcmp(name, "/") == 0)
        return cli_fail(c, url, "%s", strerror(EISDIR));
    if (local == NULL)
        (void)snprintf(out, outlen, "%s", name);
    else if (into_dir)
        cli_join(out, outlen, local, name);
    else
        (void)snprintf(out, outlen, "%s", local);
    return 0;
}

int cmd_get(cli *c, int argc, char **argv)
{
    if (argc < 1)
        return cli_bad_usage(c);
    /* get URL [LOCAL|-]; get URL... DIR */
    const char *local = argc >= 2 ? argv[argc - 1] : NULL;
    int nurls = argc >= 2 ? argc - 1 : 1;
    struct stat st;
    if (nurls > 1 && stat(local, &st) != 0)
        return cli_fail(c, local, "%s", strerror(errno));
    if (nurls > 1 && !S_ISDIR(st.st_mode))
        return cli_fail(c, local, "%s", strerror(ENOTDIR));
    int status = 0;
    for (int i = 0; i < nurls && status < 128; i++) { /* on after a failure, as cp */
        const char *url = argv[i];
        int rc = cli_open(c, url);
        char dest[PATH_MAX];
        if (rc == 0 && local != NULL && strcmp(local, "-") == 0)
            rc = get_to(c, url, NULL);
        else if (rc == 0 && (rc = get_destination(c, url, c->path, local, dest, sizeof dest)) == 0)
            rc = get_to(c, url, dest);
        if (rc > status)
            status = rc;
    }
    return cli_close_session(c, argv[0], status);
}

/* ---- put ---- */

/* One chunk of put: read(2) a full buffer, then pwrite all of it. */
static int local_to_remote(const transfer *t, uint8_t *buf, uint64_t off, size_t *moved)
{
    ssize_t n = read_full(t->fd, buf, XFER_BUF_SIZE);
    if (n < 0)
        return cli_fail(t->c, t->local, "%s", strerror((int)-n));
    size_t done = 0;
    while (done < (size_t)n) {
        ssize_t w = dafs_pwrite(t->dst, buf + done, (size_t)n - done, off + done);
        if (w <= 0)
            return cli_fail_dafs(t->c, t->url, w < 0 ? (int)w : -EIO);
        done += (size_t)w;
    }
    *moved = (size_t)n;
    return 0;
}

/* If path is an existing remote directory, the object goes inside it under
 * name.  Returns 0 or a libdafs error. */
static int into_remote_directory(cli *c, char *path, size_t pathlen, const char *name)
{
    struct dafs_stat st;
    if (dafs_stat(c->s, path, &st) != 0 || !S_ISDIR(st.mode))
        return 0;
    size_t len = strlen(path);
    if (len + 1 + strlen(name) >= pathlen)
        return -ENAMETOOLONG;
    char dir[CLI_PATH_BUF];
    (void)snprintf(dir, sizeof dir, "%s", path);
    cli_join(path, pathlen, dir, name);
    return 0;
}

/* Write a new remote file at final through a temporary name: create it,
 * run t (whose dst this sets), fsync, RENAME, fsync, close; on any failure or
 * signal remove the temporary file.  object names the remote side. */
static int remote_write_via_temp(cli *c, const char *object, const char *final, mode_t mode,
                                 transfer *t, bool exact_size)
{
    char temp[CLI_PATH_BUF];
    dafs_file *f = NULL;
    int rc = remote_temp_create(c, final, mode, temp, sizeof temp, &f);
    if (rc < 0)
        return cli_fail_dafs(c, object, rc);
    t->dst = f;
    uint64_t off = 0;
    int status = exact_size ? run_transfer(t, &off) : transfer_from_remote(t);
    if (status == 0 && exact_size && cli_pending_signal() == 0 && off != t->size)
        status = cli_fail(c, t->local, "file changed size during the copy (%" PRIu64 " of %"
                          PRIu64 " bytes)", off, t->size);
    if (status == 0 && cli_pending_signal() == 0 && (rc = dafs_fsync(f)) < 0)
        status = cli_fail_dafs(c, object, rc);
    if (status == 0 && cli_pending_signal() == 0 && (rc = dafs_rename(c->s, temp, final, 0)) < 0)
        status = cli_fail_dafs(c, object, rc);
    /* a commit after the RENAME makes the new name durable too (the server
     * syncs every directory changed before a commit); the data is already */
    if (status == 0 && (rc = dafs_fsync(f)) < 0)
        status = cli_fail_dafs(c, object, rc);
    rc = dafs_close(f);
    if (rc < 0 && status == 0)
        status = cli_fail_dafs(c, object, rc);
    if (status != 0 || cli_pending_signal() != 0)
        (void)dafs_unlink(c->s, temp); /* best effort: the server may be gone */
    return status;
}

static int put_one(cli *c, const char *local, const char *url)
{
    int fd = open(local, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cli_fail(c, local, "%s", strerror(errno));
    struct stat lst;
    if (fstat(fd, &lst) != 0 || S_ISDIR(lst.st_mode)) {
        int err = S_ISDIR(lst.st_mode) ? EISDIR : errno;
        close(fd);
        return cli_fail(c, local, "%s", strerror(err));
    }
    if (cli_open(c, url) != 0) {
        close(fd);
        return 1;
    }
    char path[CLI_PATH_BUF];
    (void)snprintf(path, sizeof path, "%s", c->path);
    int rc = into_remote_directory(c, path, sizeof path, cli_base_name(local));
    int status = 0;
    if (rc < 0) {
        status = cli_fail_dafs(c, url, rc);
    } else {
        cli_signals_deferred(true);
        transfer t = {.c = c, .url = url, .local = local, .fd = fd, .size = (uint64_t)lst.st_size,
                      .step = local_to_remote};
        status = remote_write_via_temp(c, url, path, lst.st_mode & 0777, &t, true);
        status = end_transfer(c, url, status);
    }
    close(fd);
    return status;
}

int cmd_put(cli *c, int argc, char **argv)
{
    if (argc < 2)
        return cli_bad_usage(c);
    /* put LOCAL URL; put LOCAL... URL-of-a-directory */
    const char *url = argv[argc - 1];
    if (argc > 2) {
        if (cli_open(c, url) != 0)
            return 1;
        struct dafs_stat st;
        int rc = dafs_stat(c->s, c->path, &st);
        if (rc == 0 && !S_ISDIR(st.mode))
            rc = -ENOTDIR;
        if (rc < 0)
            return cli_close_session(c, url, cli_fail_dafs(c, url, rc));
    }
    int status = 0;
    for (int i = 0; i < argc - 1 && status < 128; i++) { /* on after a failure, as cp */
        int rc = put_one(c, argv[i], url);
        if (rc > status)
            status = rc;
    }
    return cli_close_session(c, url, status);
}

/* ---- cp ---- */

/* One chunk of cp: remote pread, then remote pwrite of the same bytes. */
static int remote_to_remote(const transfer *t, uint8_t *buf, uint64_t off, size_t *moved)
{
    ssize_t n = dafs_pread(t->src, buf, XFER_BUF_SIZE, off);
    if (n < 0)
        return cli_fail_dafs(t->c, t->url, (int)n);
    if (n > 0) {
        ssize_t w = dafs_pwrite(t->dst, buf, (size_t)n, off);
        if (w != n)
            return cli_fail_dafs(t->c, t->url, w < 0 ? (int)w : -EIO);
    }
    *moved = (size_t)n;
    return 0;
}

int cmd_cp(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return cli_bad_usage(c);
    const char *url = argv[0];
    if (cli_open(c, url) != 0)
        return 1;
    char dst_path[CLI_PATH_BUF];
    if (cli_second_path(c, url, argv[1], dst_path, sizeof dst_path) != 0)
        return cli_close_session(c, url, 1);
    int rc = into_remote_directory(c, dst_path, sizeof dst_path, cli_base_name(c->path));
    if (rc < 0)
        return cli_close_session(c, url, cli_fail_dafs(c, argv[1], rc));
    dafs_file *src = NULL;
    uint64_t size = 0;
    int status = open_remote_for_read(c, url, &src, &size);
    if (status != 0)
        return cli_close_session(c, url, status);
    struct dafs_stat st;
    rc = dafs_fstat(src, &st);
    mode_t mode = rc == 0 ? (mode_t)(st.mode & 0777u) : 0644;
    cli_signals_deferred(true);
    transfer t = {.c = c, .url = url, .src = src, .fd = -1, .size = size,
                  .step = remote_to_remote};
    status = remote_write_via_temp(c, argv[1], dst_path, mode, &t, false);
    if ((rc = dafs_close(src)) < 0 && status == 0)
        status = cli_fail_dafs(c, url, rc);
    status = end_transfer(c, url, status);
    return cli_close_session(c, url, status);
}
