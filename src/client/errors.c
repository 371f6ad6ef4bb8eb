/*
 * errors.c — from wire status to libdafs error code, and dafs_strerror.
 *
 * Wire statuses are protocol constants (proto.h).  The POSIX-like ones share
 * Linux's errno numbers, but the mapping below is written out anyway so that
 * the library stays right on a system whose errno values differ, and so that
 * an unknown status from a newer or broken server becomes -DAFS_EPROTO rather
 * than some unrelated errno.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client.h"

struct status_map {
    int32_t status;
    int err;
};

static const struct status_map status_table[] = {
    {DAFS_ST_PERM, EPERM},
    {DAFS_ST_NOENT, ENOENT},
    {DAFS_ST_IO, EIO},
    {DAFS_ST_NXIO, ENXIO},
    {DAFS_ST_TOOBIG, E2BIG},
    {DAFS_ST_BADF, EBADF},
    {DAFS_ST_AGAIN, EAGAIN},
    {DAFS_ST_USERS, EUSERS},
    {DAFS_ST_NOMEM, ENOMEM},
    {DAFS_ST_ACCES, EACCES},
    {DAFS_ST_EXIST, EEXIST},
    {DAFS_ST_XDEV, EXDEV},
    {DAFS_ST_NOTDIR, ENOTDIR},
    {DAFS_ST_ISDIR, EISDIR},
    {DAFS_ST_INVAL, EINVAL},
    {DAFS_ST_FBIG, EFBIG},
    {DAFS_ST_NOSPC, ENOSPC},
    {DAFS_ST_ROFS, EROFS},
    {DAFS_ST_MLINK, EMLINK},
    {DAFS_ST_RANGE, ERANGE},
    {DAFS_ST_NAMETOOLONG, ENAMETOOLONG},
    {DAFS_ST_NOSYS, ENOSYS},
    {DAFS_ST_NOTEMPTY, ENOTEMPTY},
    {DAFS_ST_LOOP, ELOOP},
    {DAFS_ST_NODATA, ENODATA},
    {DAFS_ST_OVERFLOW, EOVERFLOW},
    {DAFS_ST_BADMSG, EBADMSG},
    {DAFS_ST_NOTSUP, EOPNOTSUPP},
    {DAFS_ST_STALE, ESTALE},
    {DAFS_ST_DQUOT, EDQUOT},
    {DAFS_ST_BADSESSION, DAFS_EBADSESSION},
    {DAFS_ST_CREDIT, DAFS_ECREDIT},
    {DAFS_ST_VERSION, DAFS_EVERSION},
    {DAFS_ST_BADHANDLE, DAFS_EBADHANDLE},
    {DAFS_ST_SERVERFAULT, DAFS_ESERVERFAULT},
    {DAFS_ST_BADOP, DAFS_EBADOP},
    {DAFS_ST_MFILE, EMFILE},
    {DAFS_ST_BADSTATEID, DAFS_EBADSTATEID},
    {DAFS_ST_WHOA, EBUSY}, /* batch push-back: the library waits and retries */
    {DAFS_ST_INTR, EINTR},
    {DAFS_ST_DEADLK, EDEADLK},
    {DAFS_ST_NOLCK, ENOLCK},
    {DAFS_ST_LOCK_BROKEN, DAFS_ELOCKBROKEN},
    {DAFS_ST_GRACE, DAFS_EGRACE},
};

int client_map_status(int32_t status)
{
    if (status == DAFS_ST_OK)
        return 0;
    for (size_t i = 0; i < sizeof status_table / sizeof status_table[0]; i++)
        if (status_table[i].status == status)
            return -status_table[i].err;
    return -DAFS_EPROTO;
}

static const char *dafs_specific_message(int err)
{
    switch (err) {
    case DAFS_EBADSESSION: return "Session unknown to the server";
    case DAFS_ECREDIT: return "Request beyond the server's credit grant";
    case DAFS_EVERSION: return "Server speaks another protocol version";
    case DAFS_EBADHANDLE: return "Malformed or stale file handle";
    case DAFS_ESERVERFAULT: return "Server fault";
    case DAFS_EBADOP: return "Operation not supported by the server";
    case DAFS_EPROTO: return "Malformed reply from the server";
    case DAFS_EBADSTATEID: return "Open file unknown to the server (closed, or its session ended)";
    case DAFS_ETRANSPORT: return "Transport error (connection lost or timed out)";
    case DAFS_EURL: return "Malformed dafs:// URL";
    case DAFS_ELOCKBROKEN: return "Lock broken: its previous holder died holding it";
    case DAFS_EGRACE: return "Server in its grace period after a restart: try again";
    default: return NULL;
    }
}

/* dafs_connect's errno codes for a server it cannot reach, in words that
 * name the cause rather than the socket-level symptom. */
static const char *connect_message(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return "Connection refused (no dafs server at that address and port)";
    case EHOSTUNREACH:
        return "Host unreachable (no route to it, or its name does not resolve)";
    case ENETUNREACH:
        return "Network unreachable";
    case EAFNOSUPPORT:
        return "Address family not usable (IPv4 vs IPv6: the server, the provider or the "
               "network does only the other)";
    case EPROTONOSUPPORT:
        return "No such libfabric provider (fi_info -l lists them)";
    case EPROTOTYPE:
        return "The server uses another libfabric provider than this client (shm vs "
               "tcp;ofi_rxm)";
    case ETIMEDOUT:
        return "Connection timed out (nothing answered at that address)";
    case ELIBACC:
        return "Cannot load libfabric.so.1, a needed shared library (missing or broken)";
    case ELIBBAD:
        return "libfabric.so.1 lacks functions dafs needs (a needed shared library)";
    default:
        return NULL;
    }
}

const char *dafs_strerror(int err)
{
    static __thread char unknown[48];
    if (err < 0)
        err = -err;
    if (err == 0)
        return "Success";
    const char *msg = dafs_specific_message(err);
    if (msg == NULL)
        msg = connect_message(err);
    if (msg != NULL)
        return msg;
    if (err < 10000) {
        char buf[128];
        /* GNU strerror_r returns a pointer to a static or to buf. */
        const char *m = strerror_r(err, buf, sizeof buf);
        if (m != buf)
            return m;
    }
    (void)snprintf(unknown, sizeof unknown, "Unknown error %d", err);
    return unknown;
}
