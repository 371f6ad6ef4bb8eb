/*
 * durable.c — see durable.h.  The set is a small array searched linearly:
 * a workload changes few distinct directories between two commits, and a
 * full set just means one syncfs at the next commit.
 */
#include "durable.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

int durable_init(durable_dirs *d)
{
    memset(d, 0, sizeof *d);
    if (pthread_mutex_init(&d->mu, NULL) != 0)
        return -1;
    if (pthread_mutex_init(&d->flush, NULL) != 0) {
        pthread_mutex_destroy(&d->mu);
        return -1;
    }
    return 0;
}

void durable_destroy(durable_dirs *d)
{
    pthread_mutex_destroy(&d->flush);
    pthread_mutex_destroy(&d->mu);
}

static bool same_fh(const dafs_fh *a, const dafs_fh *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void note_dir(durable_dirs *d, const dafs_fh *dir)
{
    pthread_mutex_lock(&d->mu);
    bool known = d->overflow;
    for (unsigned i = 0; i < d->count && !known; i++)
        known = same_fh(&d->dirs[i], dir);
    if (!known) {
        if (d->count < DURABLE_DIRS_MAX)
            d->dirs[d->count++] = *dir;
        else
            d->overflow = true;
    }
    pthread_mutex_unlock(&d->mu);
}

void durable_note_request(durable_dirs *d, const dafs_request *req)
{
    switch (req->hdr.opcode) {
    case DAFS_OP_OPEN: /* a create (O_CREAT), or nothing changed */
        if (req->u.dirop.flags & DAFS_OPEN_CREAT)
            note_dir(d, &req->u.dirop.dir);
        break;
    case DAFS_OP_MKDIR:
    case DAFS_OP_REMOVE:
    case DAFS_OP_RMDIR:
        note_dir(d, &req->u.dirop.dir);
        break;
    case DAFS_OP_SYMLINK:
        note_dir(d, &req->u.symlink.dir);
        break;
    case DAFS_OP_MKNOD:
        note_dir(d, &req->u.mknod.dir);
        break;
    case DAFS_OP_LINK:
        note_dir(d, &req->u.link.dir);
        break;
    case DAFS_OP_RENAME:
        note_dir(d, &req->u.rename.src_dir);
        note_dir(d, &req->u.rename.dst_dir);
        break;
    default:
        break;
    }
}

static int sync_dir(const dafs_export *e, const dafs_fh *dir)
{
    int fd;
    struct stat st;
    int status = export_open_fh(e, dir, O_RDONLY | O_DIRECTORY, &fd, &st);
    if (status == DAFS_ST_NOENT || status == DAFS_ST_STALE)
        return 0; /* removed since: its parent's entry is what matters, and noted */
    if (status != DAFS_ST_OK)
        return -EIO;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    (void)close(fd);
    return rc;
}

int durable_flush(durable_dirs *d, const dafs_export *e)
{
    pthread_mutex_lock(&d->flush);
    pthread_mutex_lock(&d->mu);
    unsigned n = d->count;
    bool all = d->overflow;
    dafs_fh *taken = d->flushing;
    memcpy(taken, d->dirs, n * sizeof taken[0]);
    d->count = 0;
    d->overflow = false;
    pthread_mutex_unlock(&d->mu);

    int rc = 0;
    unsigned done = 0;
    if (all) {
        rc = syncfs(e->mount_fd) == 0 ? 0 : -errno;
        done = rc == 0 ? n : 0;
        d->syncs += rc == 0;
    } else {
        for (; done < n && rc == 0; done++)
            rc = sync_dir(e, &taken[done]);
        if (rc < 0)
            done--; /* the failed one stays noted */
        d->syncs += done;
    }
    if (rc < 0) { /* put back what was not synced, for the next commit */
        for (unsigned i = done; i < n; i++)
            note_dir(d, &taken[i]);
        if (all) {
            pthread_mutex_lock(&d->mu);
            d->overflow = true;
            pthread_mutex_unlock(&d->mu);
        }
    }
    pthread_mutex_unlock(&d->flush);
    return rc;
}
