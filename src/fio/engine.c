/*
 * engine.c — libdafs_fio.so, a fio I/O engine that does fio's I/O on a dafs
 * server through libdafs:
 *
 *     fio --ioengine=external:/path/libdafs_fio.so --dafs_url=dafs://HOST:PORT/ ...
 *
 * (engine options go after --ioengine; the URL may also come from $DAFS_URL,
 * the provider from --dafs_provider, else $DAFS_PROVIDER, $FI_PROVIDER).
 * See docs/fio.md.
 *
 * One dafs session per fio job (thread or process), opened in ->init; fio's
 * I/O buffers (td->orig_buffer, from which every io_u's buffer is carved) are
 * registered with dafs_mem_register in ->post_init, so the server moves the
 * data straight into and out of them.  File names are paths below the URL's
 * path in the export.  The engine is "diskless" to fio: fio never touches a
 * local file of that name; ->open_file creates the file when the job writes
 * and extends it (sparse, with dafs_ftruncate) to the size the job covers, as
 * fio lays out a local file.  A job needs size= (fio cannot stat the file).
 *
 * Two I/O paths, chosen at compile time:
 *   - DAFS_FIO_ASYNC (the default; cmake -DDAFS_FIO_ASYNC=OFF for the other):
 *     libdafs's asynchronous API.
 *     ->queue gathers up to iodepth reads and writes, ->commit hands them to
 *     dafs_submit on one completion group, ->getevents reaps them with
 *     dafs_cq_reap (at least min, at most max, fio's timeout), ->event maps a
 *     completion back to its io_u through its user_data.
 *   - otherwise: ->queue does dafs_pread/dafs_pwrite and returns
 *     FIO_Q_COMPLETED, so fio runs it as a synchronous engine (iodepth 1);
 *     kept compiled (every build compiles both) as the simplest reference.
 * Syncs and trims run synchronously on both paths, after whatever is in flight
 * (as fio's libaio engine does).
 */
#include "fio.h"
#include "optgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include <dafs/dafs.h>

struct dafs_fio_options {
    void *pad; /* fio keeps its thread_data pointer here: an option cannot be at offset 0 */
    char *url;
    char *provider;
};

static struct fio_option options[] = {
    {
        .name = "dafs_url",
        .lname = "dafs server URL",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct dafs_fio_options, url),
        .help = "dafs://HOST[:PORT][/DIR]: the server; file names are below DIR in its "
                "export (default: $DAFS_URL)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "dafs_provider",
        .lname = "libfabric provider",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct dafs_fio_options, provider),
        .help = "libfabric provider, e.g. \"tcp;ofi_rxm\" or shm (default: $DAFS_PROVIDER, "
                "$FI_PROVIDER, libfabric's choice)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {.name = NULL},
};

struct dafs_fio_data {
    dafs_session *s;
    dafs_mr *mr;       /* fio's I/O buffers, or NULL */
    char prefix[DAFS_URL_PATH_MAX]; /* the URL's path: file names are below it */
#ifdef DAFS_FIO_ASYNC
    dafs_cq *cq;
    unsigned depth;    /* iodepth: the most I/Os queued + in flight */
    unsigned inflight; /* submitted, not yet reaped */
    unsigned npending; /* queued by ->queue, not yet accepted by dafs_submit */
    unsigned nfailed;  /* refused by dafs_submit: complete at the next ->getevents */
    dafs_io *pending;
    dafs_cqe *cqes;
    struct io_u **failed;
    struct io_u **events; /* what the last ->getevents reaped, for ->event */
#endif
};

/* A libdafs error as the errno fio reports (the dafs-specific codes become
 * EIO, after a message naming them). */
static int fio_errno(const char *what, long long rc)
{
    if (rc > -4096)
        return (int)-rc;
    log_err("dafs: %s: %s\n", what, dafs_strerror((int)rc));
    return EIO;
}

/* Finish io_u with res (bytes moved, or -error). */
static void complete_io_u(struct io_u *io_u, long long res)
{
    if (res < 0) {
        io_u->error = fio_errno(io_ddir_name(io_u->ddir), res);
    } else {
        io_u->error = 0;
        if (io_u->ddir == DDIR_READ || io_u->ddir == DDIR_WRITE)
            io_u->resid = io_u->xfer_buflen - (unsigned long long)res;
    }
}

/* The synchronous path: every I/O, and on the asynchronous one syncs and trims. */
static enum fio_q_status queue_sync(struct io_u *io_u)
{
    dafs_file *df = io_u->file->engine_data;
    long long r;
    switch (io_u->ddir) {
    case DDIR_READ:
        r = dafs_pread(df, io_u->xfer_buf, io_u->xfer_buflen, io_u->offset);
        break;
    case DDIR_WRITE:
        r = dafs_pwrite(df, io_u->xfer_buf, io_u->xfer_buflen, io_u->offset);
        break;
    case DDIR_SYNC:
        r = dafs_fsync(df);
        break;
    case DDIR_DATASYNC:
        r = dafs_fdatasync(df);
        break;
    case DDIR_TRIM:
        r = dafs_fallocate(df, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, io_u->offset,
                           io_u->xfer_buflen);
        break;
    default:
        r = -EINVAL;
        break;
    }
    complete_io_u(io_u, r);
    return FIO_Q_COMPLETED;
}

#ifdef DAFS_FIO_ASYNC
static enum fio_q_status dafs_fio_queue(struct thread_data *td, struct io_u *io_u)
{
    struct dafs_fio_data *d = td->io_ops_data;
    fio_ro_check(td, io_u);
    if (io_u->ddir != DDIR_READ && io_u->ddir != DDIR_WRITE) {
        if (d->npending + d->inflight + d->nfailed > 0)
            return FIO_Q_BUSY; /* fio commits, reaps, and queues it again */
        return queue_sync(io_u);
    }
    if (d->npending + d->inflight + d->nfailed >= d->depth)
        return FIO_Q_BUSY;
    d->pending[d->npending++] = (dafs_io){
        .op = io_u->ddir == DDIR_READ ? DAFS_IO_READ : DAFS_IO_WRITE,
        .file = io_u->file->engine_data,
        .buf = io_u->xfer_buf,
        .len = io_u->xfer_buflen,
        .offset = io_u->offset,
        .user_data = io_u,
    };
    return FIO_Q_QUEUED;
}

/* Hand the queued I/Os to libdafs.  The group has room for all of them
 * (->queue keeps queued + in flight <= depth = its entries); should it take
 * fewer (or none: 0, -EAGAIN or -EBUSY), the rest wait for the next ->commit
 * or ->getevents.  If it refuses them with another error, they complete with
 * it at the next ->getevents. */
static int dafs_fio_commit(struct thread_data *td)
{
    struct dafs_fio_data *d = td->io_ops_data;
    while (d->npending > 0) {
        int n = dafs_submit(d->cq, d->pending, d->npending);
        if (n == 0 || n == -EAGAIN || n == -EBUSY)
            return 0;
        if (n < 0) {
            for (unsigned i = 0; i < d->npending; i++) {
                struct io_u *io_u = d->pending[i].user_data;
                complete_io_u(io_u, n);
                d->failed[d->nfailed++] = io_u;
            }
            d->npending = 0;
            return 0;
        }
        d->npending -= (unsigned)n;
        memmove(d->pending, d->pending + n, d->npending * sizeof *d->pending);
        d->inflight += (unsigned)n;
    }
    return 0;
}

static int dafs_fio_getevents(struct thread_data *td, unsigned int min, unsigned int max,
                              const struct timespec *t)
{
    struct dafs_fio_data *d = td->io_ops_data;
    unsigned n = 0;
    if (max > d->depth)
        max = d->depth;
    dafs_fio_commit(td);
    while (n < max && d->nfailed > 0)
        d->events[n++] = d->failed[--d->nfailed];
    if (n == max || d->inflight == 0)
        return (int)n;
    /* Wait for no more than is in flight; fio's timeout, none without one. */
    unsigned want = min > n ? min - n : 0;
    if (want > d->inflight)
        want = d->inflight;
    int timeout_ms = -1;
    if (want == 0)
        timeout_ms = 0;
    else if (t != NULL)
        timeout_ms = (int)(t->tv_sec * 1000 + (t->tv_nsec + 999999) / 1000000);
    int r = dafs_cq_reap(d->cq, d->cqes, max - n, want, timeout_ms);
    if (r < 0)
        return n > 0 ? (int)n : r;
    for (int i = 0; i < r; i++) {
        struct io_u *io_u = d->cqes[i].user_data;
        complete_io_u(io_u, d->cqes[i].res);
        d->events[n++] = io_u;
        d->inflight--;
    }
    return (int)n;
}

static struct io_u *dafs_fio_event(struct thread_data *td, int event)
{
    struct dafs_fio_data *d = td->io_ops_data;
    return d->events[event];
}

static int async_init(struct thread_data *td, struct dafs_fio_data *d)
{
    dafs_session_info info;
    int rc = dafs_session_get_info(d->s, &info);
    if (rc < 0)
        return fio_errno("session info", rc);
    if (td->o.max_bs[DDIR_READ] > info.max_io || td->o.max_bs[DDIR_WRITE] > info.max_io) {
        log_err("dafs: block size above the server's largest I/O (%u bytes)\n", info.max_io);
        return EINVAL;
    }
    d->depth = td->o.iodepth > 0 ? td->o.iodepth : 1;
    d->pending = calloc(d->depth, sizeof *d->pending);
    d->cqes = calloc(d->depth, sizeof *d->cqes);
    d->failed = calloc(d->depth, sizeof *d->failed);
    d->events = calloc(d->depth, sizeof *d->events);
    if (d->pending == NULL || d->cqes == NULL || d->failed == NULL || d->events == NULL)
        return ENOMEM;
    rc = dafs_cq_create(d->s, d->depth, &d->cq);
    return rc < 0 ? fio_errno("dafs_cq_create", rc) : 0;
}

static void async_cleanup(struct dafs_fio_data *d)
{
    if (d->cq != NULL) {
        int rc = dafs_cq_destroy(d->cq);
        if (rc < 0)
            log_err("dafs: dafs_cq_destroy: %s\n", dafs_strerror(rc));
    }
    free(d->pending);
    free(d->cqes);
    free(d->failed);
    free(d->events);
}
#else /* !DAFS_FIO_ASYNC */
static enum fio_q_status dafs_fio_queue(struct thread_data *td, struct io_u *io_u)
{
    fio_ro_check(td, io_u);
    return queue_sync(io_u);
}
#endif

static void dafs_fio_cleanup(struct thread_data *td)
{
    struct dafs_fio_data *d = td->io_ops_data;
    if (d == NULL)
        return;
#ifdef DAFS_FIO_ASYNC
    async_cleanup(d);
#endif
    if (d->mr != NULL) {
        int rc = dafs_mem_deregister(d->mr);
        if (rc < 0)
            log_err("dafs: dafs_mem_deregister: %s\n", dafs_strerror(rc));
    }
    if (d->s != NULL) {
        int rc = dafs_disconnect(d->s);
        if (rc < 0)
            log_err("dafs: dafs_disconnect: %s\n", dafs_strerror(rc));
    }
    free(d);
    td->io_ops_data = NULL;
}

/* fio's init: returns 0 or an errno, which fio reports. */
static int dafs_fio_init(struct thread_data *td)
{
    struct dafs_fio_options *o = td->eo;
    const char *url = o != NULL && o->url != NULL && o->url[0] != '\0' ? o->url : getenv("DAFS_URL");
    if (url == NULL || url[0] == '\0') {
        log_err("dafs: no server: give dafs_url=dafs://HOST[:PORT]/ (after ioengine=) or set "
                "DAFS_URL\n");
        return EINVAL;
    }
    struct dafs_fio_data *d = calloc(1, sizeof *d);
    if (d == NULL)
        return ENOMEM;
    td->io_ops_data = d;
    char host[DAFS_URL_HOST_MAX];
    unsigned port;
    if (dafs_url_parse(url, host, sizeof host, &port, d->prefix, sizeof d->prefix) < 0) {
        const char *why = dafs_url_error(url);
        log_err("dafs: bad URL '%s': %s\n", url, why != NULL ? why : "too long");
        dafs_fio_cleanup(td);
        return EINVAL;
    }
    dafs_options dopts = {.provider = o != NULL && o->provider != NULL && o->provider[0] != '\0'
                                          ? o->provider
                                          : NULL};
    int rc = dafs_connect(url, &dopts, &d->s);
    if (rc < 0) {
        log_err("dafs: cannot connect to %s: %s\n", url, dafs_strerror(rc));
        dafs_fio_cleanup(td);
        return rc > -4096 ? -rc : EIO;
    }
#ifdef DAFS_FIO_ASYNC
    rc = async_init(td, d);
    if (rc != 0) {
        dafs_fio_cleanup(td);
        return rc;
    }
#endif
    return 0;
}

/* After fio has allocated its I/O buffers: register them all, once. */
static int dafs_fio_post_init(struct thread_data *td)
{
    struct dafs_fio_data *d = td->io_ops_data;
    if (td->orig_buffer == NULL || td->orig_buffer_size == 0)
        return 0;
    int rc = dafs_mem_register(d->s, td->orig_buffer, td->orig_buffer_size, &d->mr);
    if (rc < 0) {
        log_err("dafs: cannot register fio's %zu bytes of I/O buffers: %s\n",
                td->orig_buffer_size, dafs_strerror(rc));
        td_verror(td, rc > -4096 ? -rc : EIO, "dafs_mem_register");
        return 1;
    }
    return 0;
}

/* No local stat: the sizes come from size= (fio's own setup would stat a
 * local file of the same name). */
static int dafs_fio_setup(struct thread_data fio_unused *td)
{
    return 0;
}

/* The file's path in the export: the URL's path, then fio's file name. */
static int file_path(const struct dafs_fio_data *d, const struct fio_file *f, char *out,
                     size_t outlen)
{
    const char *sep = d->prefix[strlen(d->prefix) - 1] == '/' ? "" : "/";
    int n = snprintf(out, outlen, "%s%s%s", d->prefix, sep, f->file_name);
    return n < 0 || (size_t)n >= outlen ? -ENAMETOOLONG : 0;
}

static int dafs_fio_open_file(struct thread_data *td, struct fio_file *f)
{
    struct dafs_fio_data *d = td->io_ops_data;
    char path[DAFS_URL_PATH_MAX];
    int rc = file_path(d, f, path, sizeof path);
    if (rc < 0) {
        td_verror(td, -rc, "dafs path");
        return 1;
    }
    dafs_file *df;
    rc = dafs_open(d->s, path, td_write(td) ? O_RDWR | O_CREAT : O_RDONLY, 0644, &df);
    if (rc < 0) {
        log_err("dafs: open %s: %s\n", path, dafs_strerror(rc));
        td_verror(td, rc > -4096 ? -rc : EIO, "dafs_open");
        return 1;
    }
    /* Like fio's layout of a local file: as long as the job's range. */
    struct dafs_stat st;
    unsigned long long need = f->file_offset + f->io_size;
    rc = dafs_fstat(df, &st);
    if (rc == 0 && st.size < need) {
        if (td_write(td)) {
            rc = dafs_ftruncate(df, need);
        } else {
            log_err("dafs: %s has %llu bytes, the job reads up to %llu: write it first\n", path,
                    (unsigned long long)st.size, need);
            rc = -EINVAL;
        }
    }
    if (rc < 0) {
        int err = fio_errno(path, rc);
        dafs_close(df);
        td_verror(td, err, "dafs_open");
        return 1;
    }
    f->engine_data = df;
    return 0;
}

static int dafs_fio_close_file(struct thread_data fio_unused *td, struct fio_file *f)
{
    dafs_file *df = f->engine_data;
    f->engine_data = NULL;
    if (df == NULL)
        return 0;
    int rc = dafs_close(df);
    return rc < 0 ? fio_errno("close", rc) : 0;
}

static int dafs_fio_unlink_file(struct thread_data *td, struct fio_file *f)
{
    struct dafs_fio_data *d = td->io_ops_data;
    char path[DAFS_URL_PATH_MAX];
    if (d == NULL || d->s == NULL)
        return 0;
    int rc = file_path(d, f, path, sizeof path);
    if (rc == 0)
        rc = dafs_unlink(d->s, path);
    return rc < 0 && rc != -ENOENT ? fio_errno(path, rc) : 0;
}

static struct ioengine_ops dafs_ioengine = {
    .name = "dafs",
    .version = FIO_IOOPS_VERSION,
#ifdef DAFS_FIO_ASYNC
    .flags = FIO_DISKLESSIO | FIO_NODISKUTIL,
    .commit = dafs_fio_commit,
    .getevents = dafs_fio_getevents,
    .event = dafs_fio_event,
#else
    .flags = FIO_SYNCIO | FIO_DISKLESSIO | FIO_NODISKUTIL,
#endif
    .setup = dafs_fio_setup,
    .init = dafs_fio_init,
    .post_init = dafs_fio_post_init,
    .queue = dafs_fio_queue,
    .cleanup = dafs_fio_cleanup,
    .open_file = dafs_fio_open_file,
    .close_file = dafs_fio_close_file,
    .unlink_file = dafs_fio_unlink_file,
    .option_struct_size = sizeof(struct dafs_fio_options),
    .options = options,
};

/* fio's entry point for an external engine (ioengines.c, dlopen_ioengine). */
__attribute__((visibility("default"))) void get_ioengine(struct ioengine_ops **ops);
__attribute__((visibility("default"))) void get_ioengine(struct ioengine_ops **ops)
{
    *ops = &dafs_ioengine;
}
