/*
 * dafs.c — the `dafs` command-line client: ls, stat, cat, get, put, cp, mv,
 * rm, mkdir, rmdir, ln -s, chmod and df against a dafsd without mounting
 * anything.
 *
 * cp and mv work inside one server: both names are on the session of the
 * first URL (the second may be another URL of the same server or a bare
 * /path).  mv is one RENAME; cp streams the file through the registered
 * buffer (server RMA-writes it in, RMA-reads it back out), so the data never
 * touches a local file.
 *
 * Every command opens one libdafs session from its URL
 * (dafs://HOST[:PORT]/PATH), does its work and disconnects.  Data moves
 * through one large buffer registered once with dafs_mem_register, so get,
 * put and cat are zero copy on the network side: the server RMA-writes file
 * data straight into the buffer we then write(2) out, and RMA-reads what we
 * read(2) in.  Every local read and write is looped until complete, and byte
 * counts are checked against the file sizes, so nothing is lost silently.
 *
 * Errors: exit status 1 (2 for usage errors) and exactly one line on stderr
 * naming the command, the object and the cause:
 *     dafs: get dafs://h/x: No such file or directory
 * A progress bar (bytes, %, MB/s) is drawn on stderr only when stderr is a
 * terminal and the transfer has lasted more than a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dafs/dafs.h"

#define XFER_BUF_SIZE (8u << 20) /* 8 MiB: several max_io chunks in flight */
#define PATH_BUF 4352            /* a path plus one more component */

typedef struct cli {
    const char *cmd;      /* "get" */
    const char *provider; /* --provider */
    dafs_session *s;
    char path[4096];      /* the path part of the URL */
} cli;

static const char *progname = "dafs";

/* Print the one error line: "dafs: CMD OBJECT: MESSAGE". */
__attribute__((format(printf, 3, 4))) static int fail(const cli *c, const char *object,
                                                       const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s %s: %s\n", progname, c->cmd, object, msg);
    return 1;
}

static int fail_dafs(const cli *c, const char *object, int err)
{
    return fail(c, object, "%s", dafs_strerror(err));
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dafs [--provider NAME] COMMAND ARGS...\n"
            "\n"
            "commands:\n"
            "  ls [-l] URL              list a directory (-l: mode, size, mtime)\n"
            "  stat URL                 show attributes\n"
            "  cat URL                  write a file to standard output\n"
            "  get URL [LOCALFILE|-]    copy a file from the server\n"
            "  put LOCALFILE URL        copy a file to the server\n"
            "  cp SRC DST               copy a file within one server (DST: URL or /path)\n"
            "  mv SRC DST               rename within one server (DST: URL or /path)\n"
            "  ln -s TARGET URL         create a symbolic link\n"
            "  chmod MODE URL           change permission bits (octal MODE)\n"
            "  rm URL                   remove a file\n"
            "  mkdir URL                create a directory\n"
            "  rmdir URL                remove an empty directory\n"
            "  df URL                   show file system size, used and available space\n"
            "\n"
            "options:\n"
            "  -p, --provider NAME      libfabric provider (default: $DAFS_PROVIDER,\n"
            "                           $FI_PROVIDER, then libfabric's choice)\n"
            "  -h, --help               show this help\n"
            "  -V, --version            show the version\n"
            "\n"
            "URLs look like dafs://HOST[:PORT]/PATH (default port %d).\n",
            DAFS_DEFAULT_PORT);
}

static const char *command_usage(const char *cmd);

/* A usage error: one line, exit status 2. */
static int bad_usage(const cli *c)
{
    fprintf(stderr, "%s: usage: dafs %s %s\n", progname, c->cmd, command_usage(c->cmd));
    return 2;
}

/* ---- sessions ---- */

static int open_session(cli *c, const char *url)
{
    char host[256];
    unsigned port;
    int rc = dafs_url_parse(url, host, sizeof host, &port, c->path, sizeof c->path);
    if (rc < 0)
        return fail_dafs(c, url[0] ? url : "\"\"", rc);
    dafs_options opts = {.provider = c->provider};
    rc = dafs_connect(url, &opts, &c->s);
    if (rc < 0)
        return fail_dafs(c, url, rc);
    return 0;
}

static int close_session(cli *c, const char *url, int status)
{
    int rc = dafs_disconnect(c->s);
    c->s = NULL;
    if (rc < 0 && status == 0)
        return fail_dafs(c, url, rc);
    return status;
}

/* ---- formatting helpers ---- */

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void human_size(uint64_t bytes, char *buf, size_t len)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < sizeof units / sizeof units[0]) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        (void)snprintf(buf, len, "%" PRIu64 " B", bytes);
    else
        (void)snprintf(buf, len, "%.1f %s", v, units[u]);
}

static void mode_string(uint32_t mode, char out[11])
{
    char type = '?';
    switch (mode & S_IFMT) {
    case S_IFREG: type = '-'; break;
    case S_IFDIR: type = 'd'; break;
    case S_IFLNK: type = 'l'; break;
    case S_IFCHR: type = 'c'; break;
    case S_IFBLK: type = 'b'; break;
    case S_IFIFO: type = 'p'; break;
    case S_IFSOCK: type = 's'; break;
    default: break;
    }
    const char *rwx = "rwxrwxrwx";
    out[0] = type;
    for (int i = 0; i < 9; i++)
        out[i + 1] = (mode & (1u << (8 - i))) ? rwx[i] : '-';
    out[10] = '\0';
}

static const char *type_name(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symbolic link";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    default: return "unknown";
    }
}

static void format_time(int64_t sec, uint32_t nsec, char *buf, size_t len, bool precise)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL) {
        (void)snprintf(buf, len, "%" PRId64, sec);
        return;
    }
    char base[64];
    (void)strftime(base, sizeof base, precise ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
    if (precise)
        (void)snprintf(buf, len, "%.32s.%09u", base, nsec % 1000000000u);
    else
        (void)snprintf(buf, len, "%s", base);
}

/* ---- progress bar ---- */

typedef struct progress {
    bool enabled;     /* stderr is a terminal */
    bool shown;       /* something was drawn (must be finished with a newline) */
    double start, last_draw;
    uint64_t total;   /* 0: unknown */
} progress;

static void progress_init(progress *p, uint64_t total)
{
    p->enabled = isatty(STDERR_FILENO) == 1;
    p->shown = false;
    p->start = p->last_draw = now_sec();
    p->total = total;
}

static void progress_update(progress *p, uint64_t done, bool final)
{
    if (!p->enabled)
        return;
    double now = now_sec(), elapsed = now - p->start;
    if (elapsed < 1.0 || (!final && now - p->last_draw < 0.2))
        return;
    p->last_draw = now;
    char sz[32];
    human_size(done, sz, sizeof sz);
    double mbps = (double)done / elapsed / 1e6;
    if (p->total > 0)
        fprintf(stderr, "\r%12s  %3u%%  %8.1f MB/s ", sz,
                (unsigned)((double)done * 100.0 / (double)p->total), mbps);
    else
        fprintf(stderr, "\r%12s  %8.1f MB/s ", sz, mbps);
    p->shown = true;
}

static void progress_finish(progress *p, uint64_t done)
{
    progress_update(p, done, true);
    if (p->shown)
        fputc('\n', stderr);
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

/* A transfer buffer registered with the session. */
typedef struct xfer_buf {
    uint8_t *data;
    dafs_mr *mr;
} xfer_buf;

static int xfer_buf_open(cli *c, const char *url, xfer_buf *b)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, XFER_BUF_SIZE) != 0)
        return fail_dafs(c, url, -ENOMEM);
    b->data = p;
    int rc = dafs_mem_register(c->s, b->data, XFER_BUF_SIZE, &b->mr);
    if (rc < 0) {
        free(b->data);
        return fail_dafs(c, url, rc);
    }
    return 0;
}

static void xfer_buf_close(xfer_buf *b)
{
    (void)dafs_mem_deregister(b->mr);
    free(b->data);
}

/* ---- the transfer loop shared by get, put and cp ---- */

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
    transfer_step step;
};

/* Run t->step through one registered buffer until the source ends or a
 * step fails, drawing progress; *total is the number of bytes moved. */
static int run_transfer(const transfer *t, uint64_t *total)
{
    xfer_buf b;
    if (xfer_buf_open(t->c, t->url, &b) != 0)
        return 1;
    progress pr;
    progress_init(&pr, t->size);
    uint64_t off = 0;
    size_t moved = 0;
    int status;
    while ((status = t->step(t, b.data, off, &moved)) == 0 && moved > 0) {
        off += moved;
        progress_update(&pr, off, false);
    }
    progress_finish(&pr, off);
    xfer_buf_close(&b);
    *total = off;
    return status;
}

/* A transfer out of a remote file (get, cp): fewer bytes than its size
 * means the file shrank under us. */
static int transfer_from_remote(const transfer *t)
{
    uint64_t off = 0;
    int status = run_transfer(t, &off);
    if (status == 0 && off < t->size)
        status = fail(t->c, t->url, "file shrank during the copy (%" PRIu64 " of %" PRIu64
                      " bytes)", off, t->size);
    return status;
}

/* ---- get / cat ---- */

/* One chunk of get/cat: remote pread, then write(2) all of it. */
static int remote_to_local(const transfer *t, uint8_t *buf, uint64_t off, size_t *moved)
{
    ssize_t n = dafs_pread(t->src, buf, XFER_BUF_SIZE, off);
    if (n < 0)
        return fail_dafs(t->c, t->url, (int)n);
    int rc = write_all(t->fd, buf, (size_t)n);
    if (rc < 0)
        return fail(t->c, t->local, "%s", strerror(-rc));
    *moved = (size_t)n;
    return 0;
}

/* Copy the remote file f to fd. */
static int copy_out(cli *c, const char *url, dafs_file *f, int fd, const char *local,
                    uint64_t size)
{
    transfer t = {.c = c, .url = url, .local = local, .src = f, .fd = fd, .size = size,
                  .step = remote_to_local};
    return transfer_from_remote(&t);
}

static int open_remote_for_read(cli *c, const char *url, dafs_file **f, uint64_t *size)
{
    int rc = dafs_open(c->s, c->path, O_RDONLY, 0, f);
    if (rc < 0)
        return fail_dafs(c, url, rc);
    struct dafs_stat st;
    rc = dafs_fstat(*f, &st);
    if (rc < 0) {
        (void)dafs_close(*f);
        return fail_dafs(c, url, rc);
    }
    *size = st.size;
    return 0;
}

static const char *base_name(const char *path)
{
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/')
        len--;
    static char buf[4096];
    (void)snprintf(buf, sizeof buf, "%.*s", (int)len, path);
    char *slash = strrchr(buf, '/');
    return slash != NULL && slash[1] != '\0' ? slash + 1 : buf;
}

static int cmd_get_or_cat(cli *c, const char *url, const char *local)
{
    if (open_session(c, url) != 0)
        return 1;
    dafs_file *f = NULL;
    uint64_t size = 0;
    int status = open_remote_for_read(c, url, &f, &size);
    if (status != 0)
        return close_session(c, url, status);
    bool to_stdout = local == NULL || strcmp(local, "-") == 0;
    int fd = STDOUT_FILENO;
    if (!to_stdout) {
        fd = open(local, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0)
            status = fail(c, local, "%s", strerror(errno));
    }
    if (status == 0)
        status = copy_out(c, url, f, fd, to_stdout ? "<stdout>" : local, size);
    if (!to_stdout && fd >= 0 && close(fd) != 0 && status == 0)
        status = fail(c, local, "%s", strerror(errno));
    int rc = dafs_close(f);
    if (rc < 0 && status == 0)
        status = fail_dafs(c, url, rc);
    return close_session(c, url, status);
}

static int cmd_cat(cli *c, int argc, char **argv)
{
    if (argc != 1)
        return bad_usage(c);
    return cmd_get_or_cat(c, argv[0], "-");
}

static int cmd_get(cli *c, int argc, char **argv)
{
    if (argc < 1 || argc > 2)
        return bad_usage(c);
    const char *local = argc == 2 ? argv[1] : NULL;
    char host[256], path[4096];
    unsigned port;
    if (local == NULL) { /* like wget: the remote name, in the current directory */
        if (dafs_url_parse(argv[0], host, sizeof host, &port, path, sizeof path) < 0)
            return fail_dafs(c, argv[0], -DAFS_EURL);
        local = base_name(path);
        if (strcmp(local, "/") == 0)
            return fail(c, argv[0], "%s", strerror(EISDIR));
    }
    return cmd_get_or_cat(c, argv[0], local);
}

/* ---- put ---- */

/* One chunk of put: read(2) a full buffer, then pwrite all of it. */
static int local_to_remote(const transfer *t, uint8_t *buf, uint64_t off, size_t *moved)
{
    ssize_t n = read_full(t->fd, buf, XFER_BUF_SIZE);
    if (n < 0)
        return fail(t->c, t->local, "%s", strerror((int)-n));
    size_t done = 0;
    while (done < (size_t)n) {
        ssize_t w = dafs_pwrite(t->dst, buf + done, (size_t)n - done, off + done);
        if (w <= 0)
            return fail_dafs(t->c, t->url, w < 0 ? (int)w : -EIO);
        done += (size_t)w;
    }
    *moved = (size_t)n;
    return 0;
}

static int copy_in(cli *c, const char *url, int fd, const char *local, dafs_file *f,
                   uint64_t size)
{
    transfer t = {.c = c, .url = url, .local = local, .dst = f, .fd = fd, .size = size,
                  .step = local_to_remote};
    uint64_t off = 0;
    int status = run_transfer(&t, &off);
    if (status == 0 && off != size)
        status = fail(c, local, "file changed size during the copy (%" PRIu64 " of %" PRIu64
                      " bytes)", off, size);
    return status;
}

/* If the target is an existing directory, put into it under the local name. */
static void target_path(cli *c, const char *local, char *out, size_t outlen)
{
    struct dafs_stat st;
    if (dafs_stat(c->s, c->path, &st) == 0 && S_ISDIR(st.mode)) {
        size_t len = strlen(c->path);
        const char *sep = len > 0 && c->path[len - 1] == '/' ? "" : "/";
        (void)snprintf(out, outlen, "%s%s%s", c->path, sep, base_name(local));
    } else {
        (void)snprintf(out, outlen, "%s", c->path);
    }
}

static int cmd_put(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return bad_usage(c);
    const char *local = argv[0], *url = argv[1];
    int fd = open(local, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(c, local, "%s", strerror(errno));
    struct stat lst;
    if (fstat(fd, &lst) != 0 || S_ISDIR(lst.st_mode)) {
        int err = S_ISDIR(lst.st_mode) ? EISDIR : errno;
        close(fd);
        return fail(c, local, "%s", strerror(err));
    }
    if (open_session(c, url) != 0) {
        close(fd);
        return 1;
    }
    char path[PATH_BUF];
    target_path(c, local, path, sizeof path);
    dafs_file *f;
    int status = 0;
    int rc = dafs_open(c->s, path, O_WRONLY | O_CREAT | O_TRUNC, lst.st_mode & 0777, &f);
    if (rc < 0) {
        status = fail_dafs(c, url, rc);
    } else {
        status = copy_in(c, url, fd, local, f, (uint64_t)lst.st_size);
        rc = status == 0 ? dafs_fsync(f) : 0;
        if (rc < 0)
            status = fail_dafs(c, url, rc);
        rc = dafs_close(f);
        if (rc < 0 && status == 0)
            status = fail_dafs(c, url, rc);
    }
    close(fd);
    return close_session(c, url, status);
}

/* ---- ls / stat / df ---- */

static void print_long(const char *name, const struct dafs_stat *st)
{
    char mode[11], when[64];
    mode_string(st->mode, mode);
    format_time(st->mtime.tv_sec, st->mtime.tv_nsec, when, sizeof when, false);
    printf("%s %3u %5u %5u %12" PRIu64 " %s %s\n", mode, st->nlink, st->uid, st->gid, st->size,
           when, name);
}

static int list_dir(cli *c, const char *url, bool long_form)
{
    dafs_dir *d;
    int rc = dafs_opendir(c->s, c->path, &d);
    if (rc < 0)
        return fail_dafs(c, url, rc);
    dafs_dirent ent;
    int status = 0;
    size_t len = strlen(c->path);
    const char *sep = len > 0 && c->path[len - 1] == '/' ? "" : "/";
    while ((rc = dafs_readdir(d, &ent)) == 1) {
        if (!long_form) {
            puts(ent.name);
            continue;
        }
        char child[PATH_BUF];
        struct dafs_stat st;
        (void)snprintf(child, sizeof child, "%s%s%s", c->path, sep, ent.name);
        rc = dafs_stat(c->s, child, &st);
        if (rc == -ENOENT)
            continue; /* removed since the listing */
        if (rc < 0)
            break;
        print_long(ent.name, &st);
    }
    if (rc < 0)
        status = fail_dafs(c, url, rc);
    (void)dafs_closedir(d);
    return status;
}

static int cmd_ls(cli *c, int argc, char **argv)
{
    bool long_form = false;
    if (argc >= 1 && strcmp(argv[0], "-l") == 0) {
        long_form = true;
        argc--;
        argv++;
    }
    if (argc != 1)
        return bad_usage(c);
    const char *url = argv[0];
    if (open_session(c, url) != 0)
        return 1;
    struct dafs_stat st;
    int rc = dafs_stat(c->s, c->path, &st);
    int status = 0;
    if (rc < 0)
        status = fail_dafs(c, url, rc);
    else if (S_ISDIR(st.mode))
        status = list_dir(c, url, long_form);
    else if (long_form)
        print_long(base_name(c->path), &st);
    else
        puts(base_name(c->path));
    if (fflush(stdout) != 0 && status == 0)
        status = fail(c, url, "%s", strerror(errno));
    return close_session(c, url, status);
}

static int cmd_stat(cli *c, int argc, char **argv)
{
    if (argc != 1)
        return bad_usage(c);
    const char *url = argv[0];
    if (open_session(c, url) != 0)
        return 1;
    struct dafs_stat st;
    int rc = dafs_stat(c->s, c->path, &st);
    if (rc < 0)
        return close_session(c, url, fail_dafs(c, url, rc));
    char mode[11], at[80], mt[80], ct[80];
    mode_string(st.mode, mode);
    format_time(st.atime.tv_sec, st.atime.tv_nsec, at, sizeof at, true);
    format_time(st.mtime.tv_sec, st.mtime.tv_nsec, mt, sizeof mt, true);
    format_time(st.ctime.tv_sec, st.ctime.tv_nsec, ct, sizeof ct, true);
    printf("path: %s\n"
           "type: %s\n"
           "mode: %04o (%s)\n"
           "size: %" PRIu64 "\n"
           "blocks: %" PRIu64 "\n"
           "inode: %" PRIu64 "\n"
           "links: %u\n"
           "uid: %u\n"
           "gid: %u\n"
           "access: %s\n"
           "modify: %s\n"
           "change: %s\n",
           c->path, type_name(st.mode), st.mode & 07777u, mode, st.size, st.blocks, st.ino,
           st.nlink, st.uid, st.gid, at, mt, ct);
    return close_session(c, url, 0);
}

static int cmd_df(cli *c, int argc, char **argv)
{
    if (argc != 1)
        return bad_usage(c);
    const char *url = argv[0];
    if (open_session(c, url) != 0)
        return 1;
    struct dafs_statfs st;
    int rc = dafs_statfs(c->s, c->path, &st);
    if (rc < 0)
        return close_session(c, url, fail_dafs(c, url, rc));
    uint64_t unit = st.frsize != 0 ? st.frsize : st.bsize;
    uint64_t size = st.blocks * unit, avail = st.bavail * unit;
    uint64_t used = (st.blocks - (st.bfree < st.blocks ? st.bfree : st.blocks)) * unit;
    char s1[32], s2[32], s3[32];
    human_size(size, s1, sizeof s1);
    human_size(used, s2, sizeof s2);
    human_size(avail, s3, sizeof s3);
    unsigned pct = used + avail > 0 ? (unsigned)((used * 100 + used + avail - 1) / (used + avail)) : 0;
    printf("%-12s %12s %12s %12s %5s\n", "Filesystem", "Size", "Used", "Avail", "Use%");
    printf("%-12s %12s %12s %12s %4u%%\n", "dafs", s1, s2, s3, pct);
    printf("bytes: size %" PRIu64 " used %" PRIu64 " avail %" PRIu64 "\n", size, used, avail);
    printf("files: %" PRIu64 " free %" PRIu64 "\n", st.files, st.ffree);
    return close_session(c, url, 0);
}

/* ---- rm / mkdir / rmdir ---- */

typedef int (*path_op)(dafs_session *s, const char *path);

static int mkdir_default(dafs_session *s, const char *path)
{
    return dafs_mkdir(s, path, 0777); /* the server applies its umask policy */
}

static int simple_path_cmd(cli *c, int argc, char **argv, path_op op)
{
    if (argc != 1)
        return bad_usage(c);
    const char *url = argv[0];
    if (open_session(c, url) != 0)
        return 1;
    int rc = op(c->s, c->path);
    return close_session(c, url, rc < 0 ? fail_dafs(c, url, rc) : 0);
}

static int cmd_rm(cli *c, int argc, char **argv)
{
    return simple_path_cmd(c, argc, argv, dafs_unlink);
}

static int cmd_mkdir(cli *c, int argc, char **argv)
{
    return simple_path_cmd(c, argc, argv, mkdir_default);
}

static int cmd_rmdir(cli *c, int argc, char **argv)
{
    return simple_path_cmd(c, argc, argv, dafs_rmdir);
}

/* ---- cp / mv / ln / chmod ---- */

/* The path of DST on the session of the already parsed SRC: DST is a URL
 * of the same server, or a path starting with '/'. */
static int second_path(cli *c, const char *src_url, const char *dst, char *out, size_t outlen)
{
    if (dst[0] == '/') {
        if (strlen(dst) >= outlen)
            return fail_dafs(c, dst, -ENAMETOOLONG);
        strcpy(out, dst);
        return 0;
    }
    char h1[256], h2[256], p1[4096];
    unsigned port1, port2;
    if (dafs_url_parse(dst, h2, sizeof h2, &port2, out, outlen) < 0)
        return fail_dafs(c, dst, -DAFS_EURL);
    if (dafs_url_parse(src_url, h1, sizeof h1, &port1, p1, sizeof p1) == -DAFS_EURL ||
        strcmp(h1, h2) != 0 || port1 != port2)
        return fail(c, dst, "not on the same server as %s", src_url);
    return 0;
}

/* If dst names an existing directory, the object goes inside it. */
static int into_directory(cli *c, const char *src, char *dst, size_t dstlen)
{
    struct dafs_stat st;
    if (dafs_stat(c->s, dst, &st) != 0 || !S_ISDIR(st.mode))
        return 0;
    const char *name = base_name(src);
    size_t len = strlen(dst);
    if (len + 1 + strlen(name) >= dstlen)
        return -ENAMETOOLONG;
    (void)snprintf(dst + len, dstlen - len, "%s%s", len > 0 && dst[len - 1] == '/' ? "" : "/",
                   name);
    return 0;
}

static int cmd_mv(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return bad_usage(c);
    const char *url = argv[0];
    if (open_session(c, url) != 0)
        return 1;
    char dst[PATH_BUF];
    if (second_path(c, url, argv[1], dst, sizeof dst) != 0)
        return close_session(c, url, 1);
    int rc = into_directory(c, c->path, dst, sizeof dst);
    if (rc == 0)
        rc = dafs_rename(c->s, c->path, dst, 0);
    return close_session(c, url, rc < 0 ? fail_dafs(c, url, rc) : 0);
}

/* One chunk of cp: remote pread, then remote pwrite of the same bytes. */
static int remote_to_remote(const transfer *t, uint8_t *buf, uint64_t off, size_t *moved)
{
    ssize_t n = dafs_pread(t->src, buf, XFER_BUF_SIZE, off);
    if (n < 0)
        return fail_dafs(t->c, t->url, (int)n);
    if (n > 0) {
        ssize_t w = dafs_pwrite(t->dst, buf, (size_t)n, off);
        if (w != n)
            return fail_dafs(t->c, t->url, w < 0 ? (int)w : -EIO);
    }
    *moved = (size_t)n;
    return 0;
}

/* Copy src (open) to dst (open) through the registered buffer. */
static int copy_remote(cli *c, const char *url, dafs_file *src, dafs_file *dst, uint64_t size)
{
    transfer t = {.c = c, .url = url, .src = src, .dst = dst, .fd = -1, .size = size,
                  .step = remote_to_remote};
    return transfer_from_remote(&t);
}

static int cmd_cp(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return bad_usage(c);
    const char *url = argv[0];
    if (open_session(c, url) != 0)
        return 1;
    char dst_path[PATH_BUF];
    if (second_path(c, url, argv[1], dst_path, sizeof dst_path) != 0)
        return close_session(c, url, 1);
    int rc = into_directory(c, c->path, dst_path, sizeof dst_path);
    if (rc < 0)
        return close_session(c, url, fail_dafs(c, argv[1], rc));
    dafs_file *src = NULL, *dst = NULL;
    uint64_t size = 0;
    int status = open_remote_for_read(c, url, &src, &size);
    if (status != 0)
        return close_session(c, url, status);
    struct dafs_stat st;
    rc = dafs_fstat(src, &st);
    mode_t mode = rc == 0 ? (mode_t)(st.mode & 0777u) : 0644;
    rc = dafs_open(c->s, dst_path, O_WRONLY | O_CREAT | O_TRUNC, mode, &dst);
    if (rc < 0)
        status = fail_dafs(c, argv[1], rc);
    else
        status = copy_remote(c, url, src, dst, size);
    if (dst != NULL && (rc = dafs_close(dst)) < 0 && status == 0)
        status = fail_dafs(c, argv[1], rc);
    if ((rc = dafs_close(src)) < 0 && status == 0)
        status = fail_dafs(c, url, rc);
    return close_session(c, url, status);
}

static int cmd_ln(cli *c, int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[0], "-s") != 0)
        return bad_usage(c); /* hard links: not offered by the CLI */
    const char *url = argv[2];
    if (open_session(c, url) != 0)
        return 1;
    int rc = dafs_symlink(c->s, argv[1], c->path);
    return close_session(c, url, rc < 0 ? fail_dafs(c, url, rc) : 0);
}

static int cmd_chmod(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return bad_usage(c);
    char *end = NULL;
    errno = 0;
    unsigned long mode = strtoul(argv[0], &end, 8);
    if (errno != 0 || end == argv[0] || *end != '\0' || mode > 07777)
        return fail(c, argv[0], "not an octal mode");
    const char *url = argv[1];
    if (open_session(c, url) != 0)
        return 1;
    int rc = dafs_chmod(c->s, c->path, (mode_t)mode);
    return close_session(c, url, rc < 0 ? fail_dafs(c, url, rc) : 0);
}

/* ---- main ---- */

typedef struct command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
    const char *args;
} command;

static const command commands[] = {
    {"ls", cmd_ls, "[-l] URL"},
    {"stat", cmd_stat, "URL"},
    {"cat", cmd_cat, "URL"},
    {"get", cmd_get, "URL [LOCALFILE|-]"},
    {"put", cmd_put, "LOCALFILE URL"},
    {"cp", cmd_cp, "SRC DST"},
    {"mv", cmd_mv, "SRC DST"},
    {"ln", cmd_ln, "-s TARGET URL"},
    {"chmod", cmd_chmod, "MODE URL"},
    {"rm", cmd_rm, "URL"},
    {"mkdir", cmd_mkdir, "URL"},
    {"rmdir", cmd_rmdir, "URL"},
    {"df", cmd_df, "URL"},
};

static const char *command_usage(const char *cmd)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, cmd) == 0)
            return commands[i].args;
    return "";
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"provider", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    cli c = {.cmd = ""};
    int opt;
    opterr = 0; /* we print the one error line ourselves */
    while ((opt = getopt_long(argc, argv, "+p:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'p': c.provider = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("dafs %d.%d.0\n", DAFS_VERSION_MAJOR, DAFS_VERSION_MINOR); return 0;
        default:
            fprintf(stderr, "%s: bad option '%s' (try --help)\n", progname, argv[optind - 1]);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "%s: no command given (try --help)\n", progname);
        return 2;
    }
    c.cmd = argv[optind];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, c.cmd) == 0)
            return commands[i].run(&c, argc - optind - 1, argv + optind + 1);
    fprintf(stderr, "%s: unknown command '%s' (try --help)\n", progname, c.cmd);
    return 2;
}
