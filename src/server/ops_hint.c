/*
 * ops_hint.c — cache hints (DAFS 4.2.4, 6.5.6): the CACHE_HINT operation and
 * the per-request `hints` of READ and WRITE, applied to the server's page
 * cache, which is where a dafs file's data is cached.
 *
 *   NORMAL, RANDOM, SEQUENTIAL  posix_fadvise(2) with the same advice: the
 *                               kernel's read-ahead for the file (the advice
 *                               is per open file, so it lasts as long as the
 *                               fd does: an open state's, or a cached fd's)
 *   WILLNEED                    posix_fadvise(WILLNEED): the kernel starts
 *                               reading the range into the page cache
 *   DONTNEED                    write back the range's dirty pages and wait
 *                               (sync_file_range), then posix_fadvise
 *                               (DONTNEED), which only drops clean pages
 *
 * After a READ or WRITE whose `hints` is DONTNEED, the range just moved is
 * dropped the same way; after a READ with WILLNEED or SEQUENTIAL the kernel
 * is asked to read ahead past it (at least HINT_READAHEAD_MIN bytes).  These
 * per-request hints are best effort: their failure never fails the I/O.
 *
 * A hint acts on data the caller may read or write: the fd is the open
 * state's (any access), or one opened as the caller for reading, else for
 * writing (as SEEK does).  A directory is ISDIR, other non-files INVAL.
 */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>

#include "fdcache.h"

#define HINT_READAHEAD_MIN (128u << 10)

/* Write back [offset, offset+len) (len 0: to the end) and wait for it, so
 * that DONTNEED finds clean pages it can drop. */
static int writeback(int fd, uint64_t offset, uint64_t len)
{
    unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                     SYNC_FILE_RANGE_WAIT_AFTER;
    int rc;
    do
        rc = sync_file_range(fd, (off64_t)offset, (off64_t)len, flags);
    while (rc != 0 && errno == EINTR);
    return rc == 0 ? 0 : errno;
}

/* Apply hint to [offset, offset+len) of fd; 0 or an errno value. */
static int apply_hint(int fd, uint32_t hint, uint64_t offset, uint64_t len)
{
    int advice;
    switch (hint) {
    case DAFS_WIRE_HINT_NORMAL: advice = POSIX_FADV_NORMAL; break;
    case DAFS_WIRE_HINT_RANDOM: advice = POSIX_FADV_RANDOM; break;
    case DAFS_WIRE_HINT_SEQUENTIAL: advice = POSIX_FADV_SEQUENTIAL; break;
    case DAFS_WIRE_HINT_WILLNEED: advice = POSIX_FADV_WILLNEED; break;
    case DAFS_WIRE_HINT_DONTNEED: {
        advice = POSIX_FADV_DONTNEED;
        int err = writeback(fd, offset, len);
        if (err != 0)
            return err;
        break;
    }
    default:
        return EINVAL;
    }
    return posix_fadvise(fd, (off_t)offset, (off_t)len, advice); /* returns the error */
}

int ops_cache_hint(op_ctx *c)
{
    const dafs_cache_hint_req *r = &c->req->u.cache_hint;
    if (r->hint > DAFS_WIRE_HINT_DONTNEED || ops_check_range(r->offset, r->len) != DAFS_ST_OK)
        return DAFS_ST_INVAL;
    ops_data_fd d;
    int status = r->stateid != 0 ? ops_data_state(c, &r->fh, r->stateid, 0, &d)
                                 : ops_data_cached(c, &r->fh, FDC_READ, &d);
    if (status == DAFS_ST_ACCES && r->stateid == 0)
        status = ops_data_cached(c, &r->fh, FDC_WRITE, &d);
    if (status != DAFS_ST_OK)
        return status;
    int err = apply_hint(d.fd, r->hint, r->offset, r->len);
    ops_data_close(c, &d);
    return err == 0 ? DAFS_ST_OK : export_errno_status(err);
}

void ops_hint_after_io(int fd, uint32_t hint, bool read, uint64_t offset, uint64_t len)
{
    if (len == 0)
        return;
    if (hint == DAFS_WIRE_HINT_DONTNEED) {
        (void)apply_hint(fd, hint, offset, len);
    } else if (read && (hint == DAFS_WIRE_HINT_WILLNEED || hint == DAFS_WIRE_HINT_SEQUENTIAL)) {
        uint64_t ahead = len < HINT_READAHEAD_MIN ? HINT_READAHEAD_MIN : len;
        if (ops_check_range(offset + len, ahead) == DAFS_ST_OK)
            (void)posix_fadvise(fd, (off_t)(offset + len), (off_t)ahead, POSIX_FADV_WILLNEED);
    }
}
