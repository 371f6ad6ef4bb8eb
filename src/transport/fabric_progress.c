/*
 * fabric_progress.c — reaping completions and waiting without burning a core.
 *
 * dfab_progress() polls the CQ for ~30 us (a reply is often that close),
 * yielding the core between polls — when client and server share a core,
 * a plain spin only delays the answer (4K round trip on one core: tcp
 * 125 -> 58 us, shm 113 -> 20 us) — then blocks.  With a CQ wait fd (tcp;ofi_rxm) it uses
 * fi_trywait + ppoll on [cq fd, wake eventfd].  Without one (shm: FI_WAIT_FD fails, FI_WAIT_UNSPEC
 * spins) it keeps polling (yielding the core between polls) for 500 us after
 * the last post or completion — the peer's answer, or its request that we
 * must progress (shm RMA needs the target to process a command), is then
 * usually microseconds away; sleeping there cost ~380 us per round trip on
 * this VM.  After that it naps on the eventfd: 50 us naps up to 1 ms of quiet,
 * then 250 us, 1 ms after 10 ms and 2 ms after 100 ms — ~3 % of a core when
 * idle, at most ~2 ms extra latency for the first message after a long
 * silence.
 *
 * Completions are dispatched to the dfab_op that was the post's context.
 * Remote-CQ-data and remote-access completions are never dereferenced (shm
 * reports garbage contexts there; we never ask for them anyway).
 */
#include "fabric_internal.h"

#include <poll.h>
#include <sched.h>
#include <string.h>
#include <unistd.h>

#include <rdma/fi_domain.h>
#include <rdma/fi_eq.h>

#define SPIN_NS  30000L /* poll the CQ this long before blocking */
#define CQ_BATCH 16
#define HOT_NS   500000L /* no wait fd: keep polling this long after traffic */

/* ------------------------------------------------------------ progress -- */

/* RMA ops carry a part count (> 0 until the last part completes); sends and
 * receives are posted with 0, so completion flags need not be trusted. */
static bool is_rma_part(dfab_op *op)
{
    return __atomic_load_n(&op->parts_left, __ATOMIC_ACQUIRE) > 0;
}

static void complete_entry(const struct fi_cq_data_entry *e, fi_addr_t src)
{
    /* remote-CQ-data completions carry no context of ours (shm even reports
     * garbage there); we never request them, so ignore them if they appear */
    if ((e->flags & FI_REMOTE_CQ_DATA) || (e->flags & (FI_REMOTE_READ | FI_REMOTE_WRITE)))
        return;
    dfab_op *op = e->op_context;
    if (!op)
        return;
    if (is_rma_part(op)) {
        fabric_finish_rma_parts(op, 1, 0);
        return;
    }
    op->done(op, 0, e->len, src == FI_ADDR_NOTAVAIL ? DFAB_ADDR_UNSPEC : src);
}

static int complete_error(dfab *f)
{
    struct fi_cq_err_entry err;
    memset(&err, 0, sizeof err);
    ssize_t ret = fi_cq_readerr(f->cq, &err, 0);
    if (ret == -FI_EAGAIN)
        return 0;
    if (ret < 0)
        return fabric_errno(ret);
    if ((err.flags & FI_REMOTE_CQ_DATA) || !err.op_context)
        return 1;
    dfab_op *op = err.op_context;
    int status = err.err ? fabric_errno(err.err) : -EIO;
    if (is_rma_part(op))
        fabric_finish_rma_parts(op, 1, status);
    else
        op->done(op, status, 0, DFAB_ADDR_UNSPEC);
    return 1;
}

/* Read and dispatch what the CQ holds now; returns completions handled. */
static int reap(dfab *f)
{
    struct fi_cq_data_entry entries[CQ_BATCH];
    fi_addr_t srcs[CQ_BATCH] = {0}; /* filled by readfrom; zeroed for the analyzer */
    int handled = 0;
    for (;;) {
        /* shm: a read takes region spin locks a killed peer may have held
         * when it died; once its death is known, never read again. */
        if (dfab_peer_lost(f))
            return -ECONNRESET;
        ssize_t n = f->reports_source ? fi_cq_readfrom(f->cq, entries, CQ_BATCH, srcs)
                                      : fi_cq_read(f->cq, entries, CQ_BATCH);
        if (n == -FI_EAGAIN)
            return handled;
        if (n == -FI_EAVAIL) {
            int r = complete_error(f);
            if (r < 0)
                return r;
            handled += r;
            continue;
        }
        if (n < 0)
            return fabric_errno(n);
        atomic_store(&f->last_activity_ns, fabric_now_ns());
        for (ssize_t i = 0; i < n; i++)
            complete_entry(&entries[i], f->reports_source ? srcs[i] : FI_ADDR_NOTAVAIL);
        handled += (int)n;
        if (n < CQ_BATCH)
            return handled;
    }
}

static void drain_wake(dfab *f)
{
    uint64_t v;
    ssize_t ret = read(f->wake_fd, &v, sizeof v);
    (void)ret; /* EAGAIN: another thread drained it first */
}

static int64_t remaining_ns(int64_t deadline)
{
    if (deadline < 0)
        return INT64_MAX;
    int64_t left = deadline - fabric_now_ns();
    return left > 0 ? left : 0;
}

/* Block on [cq fd, wake fd] until something is readable or the deadline. */
static int wait_fd(dfab *f, int64_t deadline, bool *woken)
{
    struct fid *fid = &f->cq->fid;
    int ret = fi_trywait(f->fabric, &fid, 1);
    if (ret == -FI_EAGAIN)
        return 0; /* completions (or internal work) pending: go read */
    if (ret)
        return fabric_errno(ret);
    struct pollfd pfd[2] = {{.fd = f->cq_wait_fd, .events = POLLIN},
                            {.fd = f->wake_fd, .events = POLLIN}};
    int64_t left = remaining_ns(deadline);
    struct timespec ts = {left / 1000000000LL, left % 1000000000LL};
    ret = ppoll(pfd, 2, left == INT64_MAX ? NULL : &ts, NULL);
    if (ret < 0 && errno != EINTR)
        return -errno;
    if (ret > 0 && (pfd[1].revents & POLLIN)) {
        drain_wake(f);
        *woken = true;
    }
    return 0;
}

/* How long to nap between CQ polls when there is no wait fd: short while
 * traffic is recent (a reply is likely due), longer as the endpoint idles.
 * Each nap costs ~15-30 us of CPU in wakeups, so the count matters. */
static int64_t nap_slice(dfab *f)
{
    int64_t idle = fabric_now_ns() - atomic_load(&f->last_activity_ns);
    if (idle < HOT_NS)
        return 0; /* an answer is probably microseconds away: keep polling */
    if (idle < 1000000)
        return 50000;
    if (idle < 10000000)
        return 250000;
    if (idle < 100000000)
        return 1000000;
    return 2000000;
}

/* No wait fd (shm): sleep on the wake fd for a while. */
static int wait_sleep(dfab *f, int64_t deadline, bool *woken)
{
    int64_t left = remaining_ns(deadline);
    int64_t slice = nap_slice(f);
    if (slice == 0) {
        uint64_t v;
        if (read(f->wake_fd, &v, sizeof v) == (ssize_t)sizeof v)
            *woken = true;
        sched_yield(); /* let a peer sharing this core run */
        return 0;
    }
    int64_t nap = slice < left ? slice : left;
    struct pollfd pfd = {.fd = f->wake_fd, .events = POLLIN};
    struct timespec ts = {nap / 1000000000LL, nap % 1000000000LL};
    int ret = ppoll(&pfd, 1, &ts, NULL);
    if (ret < 0 && errno != EINTR)
        return -errno;
    if (ret > 0) {
        drain_wake(f);
        *woken = true;
    }
    return 0;
}

int dfab_progress(dfab *f, int timeout_ms)
{
    int64_t start = fabric_now_ns();
    int handled;
    do {
        handled = reap(f);
        if (handled != 0)
            return handled;
        sched_yield(); /* a peer on this core (client and server on one box) can answer */
    } while (fabric_now_ns() - start < SPIN_NS);
    if (timeout_ms == 0)
        return 0;
    int64_t deadline = timeout_ms < 0 ? -1 : start + (int64_t)timeout_ms * 1000000LL;
    bool woken = false;
    while (!woken && remaining_ns(deadline) > 0) {
        int ret =
            f->cq_wait_fd >= 0 ? wait_fd(f, deadline, &woken) : wait_sleep(f, deadline, &woken);
        if (ret < 0)
            return ret;
        handled = reap(f);
        if (handled != 0)
            return handled;
    }
    return 0;
}

int dfab_poll(dfab *f)
{
    return reap(f);
}

void dfab_wake(dfab *f)
{
    uint64_t one = 1;
    ssize_t ret = write(f->wake_fd, &one, sizeof one);
    (void)ret; /* full counter (EAGAIN) means a wake is already pending */
}
