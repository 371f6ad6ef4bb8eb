/*
 * fabric_internal.h — what the transport's three source files share.
 *
 * fabric.c opens and closes the endpoint and handles addressing,
 * fabric_ops.c registers memory and posts sends, receives and split RMA,
 * fabric_progress.c reaps completions and waits, fabric_peer.c checks a
 * server's address before the first message, fabric_load.c loads libfabric.  The struct dfab below
 * is private to them; transport.h is the only public interface.
 */
#ifndef DAFS_FABRIC_INTERNAL_H
#define DAFS_FABRIC_INTERNAL_H

#include "transport.h"

#include <errno.h>
#include <stdatomic.h>
#include <sys/types.h>
#include <time.h>

#include <rdma/fabric.h>
#include <rdma/fi_errno.h>

#define DFAB_FI_VERSION FI_VERSION(1, 17)
#define SHM_NAME_PREFIX "dafs_shm_"

struct dfab {
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_cq *cq;
    struct fid_av *av;
    struct fid_ep *ep;
    dfab_limits limits;
    bool is_shm;
    bool reports_source; /* FI_SOURCE granted: fi_cq_readfrom is meaningful */
    bool mr_local;       /* FI_MR_LOCAL: descriptors required */
    bool mr_endpoint;    /* FI_MR_ENDPOINT: bind MRs to the ep */
    bool mr_prov_key;    /* FI_MR_PROV_KEY: provider picks keys */
    int cq_wait_fd;      /* -1 when the CQ has no wait fd */
    int wake_fd;         /* eventfd for dfab_wake */
    int shm_lock_fd;     /* shm listener: flock held on "<name>.lock", else -1 */
    int peer_lock_fd;    /* shm client: the server's "<name>.lock", open, else -1 */
    atomic_bool peer_lost; /* that lock was found free: the server is gone */
    atomic_uint_fast64_t next_requested_key;
    _Atomic int64_t last_activity_ns; /* last completion or post, for nap lengths */
    char bound_service[32];
};

/* libfabric returns -FI_Exxx, which equal -Exxx for the errno range; map the
 * libfabric-only codes to something an errno user understands. */
static inline int fabric_errno(ssize_t ret)
{
    int e = (int)(ret < 0 ? -ret : ret);
    if (e == FI_ETRUNC)
        return -EMSGSIZE;
    if (e >= FI_ERRNO_OFFSET)
        return -EIO;
    return -e;
}

static inline int64_t fabric_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* fabric_load.c: libfabric is loaded with dlopen on first use, and its few
 * real functions are called through here (fi_allocinfo() is
 * fablib.dupinfo(NULL)); everything else is inline in its headers. */
struct fabric_lib {
    __typeof__(fi_getinfo) *getinfo;
    __typeof__(fi_freeinfo) *freeinfo;
    __typeof__(fi_dupinfo) *dupinfo;
    __typeof__(fi_fabric) *fabric;
    __typeof__(fi_strerror) *strerror;
};
extern struct fabric_lib fablib;
/* 0 once loaded, else -ELIBACC / -ELIBBAD with *errmsg saying why. */
int fabric_load(const char **errmsg);

/* fabric_ops.c: count `n` parts of a split RMA as done (first error wins);
 * calls op->done after the last. */
void fabric_finish_rma_parts(dfab_op *op, int n, int status);

#endif
