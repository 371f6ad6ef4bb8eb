/*
 * fabric_ops.c — memory registration and posting: sends, receives, RMA.
 *
 * Every post goes through post_with_retry(): on a full queue (-FI_EAGAIN)
 * it drives the provider and retries, for at most 5 s.  It never runs
 * completion callbacks itself: callers (server network thread, client
 * progress role) rely on callbacks running only inside dfab_progress(), and a
 * post from inside a callback must not recurse into more callbacks.
 *
 * RMA is split into parts of one local iov and at most rma_iov_limit remote
 * iovs, each part at most max_msg_size, posted with fi_writemsg/fi_readmsg
 * and the caller's op as context.  op->parts_left counts the parts, so the
 * last completion (in the progressing thread) calls op->done once with the
 * first error.  Writes that must be visible before a
 * reply get FI_DELIVERY_COMPLETE unless the provider orders send-after-write.
 */
#include "fabric_internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_rma.h>

#define EAGAIN_RETRY_NS 5000000000LL /* give up a post stuck on -FI_EAGAIN after 5 s */
#define MAX_RMA_IOV     8

/* -------------------------------------------------------------- memory -- */

static uint64_t access_flags(unsigned access)
{
    uint64_t flags = 0;
    if (access & DFAB_ACCESS_LOCAL)
        flags |= FI_SEND | FI_RECV | FI_READ | FI_WRITE;
    if (access & DFAB_ACCESS_REMOTE_READ)
        flags |= FI_REMOTE_READ;
    if (access & DFAB_ACCESS_REMOTE_WRITE)
        flags |= FI_REMOTE_WRITE;
    return flags;
}

int dfab_mr_reg(dfab *f, void *buf, size_t len, unsigned access, dfab_mr **out)
{
    if (!buf || len == 0 || !out || access == 0)
        return -EINVAL;
    dfab_mr *mr = calloc(1, sizeof *mr);
    if (!mr)
        return -ENOMEM;
    uint64_t requested_key = f->mr_prov_key ? 0 : atomic_fetch_add(&f->next_requested_key, 1);
    struct fid_mr *fmr = NULL;
    int ret = fi_mr_reg(f->domain, buf, len, access_flags(access), 0, requested_key, 0, &fmr, NULL);
    if (!ret && f->mr_endpoint) {
        ret = fi_mr_bind(fmr, &f->ep->fid, 0);
        if (!ret)
            ret = fi_mr_enable(fmr);
    }
    if (ret) {
        if (fmr)
            fi_close(&fmr->fid);
        free(mr);
        return fabric_errno(ret);
    }
    mr->base = buf;
    mr->len = len;
    mr->desc = fi_mr_desc(fmr);
    mr->key = fi_mr_key(fmr);
    mr->remote_addr = f->limits.virt_addr ? (uint64_t)(uintptr_t)buf : 0;
    mr->fid = fmr;
    *out = mr;
    return 0;
}

void dfab_mr_close(dfab_mr *mr)
{
    if (!mr)
        return;
    if (mr->fid)
        fi_close(&((struct fid_mr *)mr->fid)->fid);
    free(mr);
}

static bool inside_mr(const dfab_mr *mr, const void *buf, size_t len)
{
    uintptr_t b = (uintptr_t)buf, base = (uintptr_t)mr->base;
    return b >= base && len <= mr->len && b - base <= mr->len - len;
}

/* ---------------------------------------------------------- posting ops -- */

/* Run `post` until it stops returning -FI_EAGAIN, driving the provider in
 * between; gives up with -ETIMEDOUT after EAGAIN_RETRY_NS.  Never runs
 * callbacks, so it is safe from inside one and from any thread. */
typedef ssize_t (*post_fn)(dfab *f, void *arg);

static int post_with_retry(dfab *f, post_fn post, void *arg)
{
    int64_t deadline = 0;
    if (f->cq_wait_fd < 0)
        atomic_store(&f->last_activity_ns, fabric_now_ns()); /* an answer may be due soon */
    for (;;) {
        if (dfab_peer_lost(f)) /* shm: see reap() in fabric_progress.c */
            return -ECONNRESET;
        ssize_t ret = post(f, arg);
        if (ret != -FI_EAGAIN)
            return ret ? fabric_errno(ret) : 0;
        int64_t now = fabric_now_ns();
        if (!deadline)
            deadline = now + EAGAIN_RETRY_NS;
        else if (now > deadline)
            return -ETIMEDOUT;
        /* A zero-count read drives the provider (util CQs: shm, rxm), which
         * frees queue slots, without taking completions off the CQ: their
         * callbacks stay with whichever thread holds the progress role. */
        ssize_t pr = fi_cq_read(f->cq, NULL, 0);
        if (pr < 0 && pr != -FI_EAGAIN && pr != -FI_EAVAIL)
            return fabric_errno(pr);
        sched_yield();
    }
}

struct recv_args {
    void *buf;
    size_t len;
    void *desc;
    dfab_op *op;
};

static ssize_t post_recv_once(dfab *f, void *arg)
{
    struct recv_args *a = arg;
    return fi_recv(f->ep, a->buf, a->len, a->desc, FI_ADDR_UNSPEC, a->op);
}

int dfab_post_recv(dfab *f, void *buf, size_t len, dfab_mr *mr, dfab_op *op)
{
    if (!buf || !op || !op->done || len > f->limits.max_msg_size)
        return len > f->limits.max_msg_size ? -EMSGSIZE : -EINVAL;
    if (!mr || !inside_mr(mr, buf, len))
        return -EINVAL;
    struct recv_args a = {buf, len, mr->desc, op};
    op->parts_left = 0;
    op->first_error = 0;
    return post_with_retry(f, post_recv_once, &a);
}

struct send_args {
    const void *buf;
    size_t len;
    void *desc;
    fi_addr_t dst;
    dfab_op *op;
    bool inject;
};

static ssize_t post_send_once(dfab *f, void *arg)
{
    struct send_args *a = arg;
    if (a->inject)
        return fi_inject(f->ep, a->buf, a->len, a->dst);
    return fi_send(f->ep, a->buf, a->len, a->desc, a->dst, a->op);
}

int dfab_send(dfab *f, dfab_addr dst, const void *buf, size_t len, dfab_mr *mr, dfab_op *op)
{
    if (len > f->limits.max_msg_size)
        return -EMSGSIZE;
    if ((!buf && len) || (op && !op->done))
        return -EINVAL;
    bool inject = len <= f->limits.inject_size;
    if (!inject && (!op || !mr))
        return -EINVAL; /* the contract: only injected sends may go without an MR */
    if (mr && !inside_mr(mr, buf, len))
        return -EINVAL;
    struct send_args a = {buf, len, mr ? mr->desc : NULL, dst, op, inject};
    if (op) {
        op->parts_left = 0;
        op->first_error = 0;
    }
    int ret = post_with_retry(f, post_send_once, &a);
    if (ret == 0 && inject && op)
        op->done(op, 0, len, DFAB_ADDR_UNSPEC);
    return ret;
}

/* One RMA part: one local iov and up to rma_iov_limit remote iovs. */
struct rma_part {
    struct fi_msg_rma msg;
    struct iovec local;
    void *desc;
    struct fi_rma_iov remote[MAX_RMA_IOV];
    uint64_t flags;
    bool is_write;
};

static ssize_t post_rma_once(dfab *f, void *arg)
{
    struct rma_part *p = arg;
    if (p->is_write)
        return fi_writemsg(f->ep, &p->msg, p->flags);
    return fi_readmsg(f->ep, &p->msg, p->flags);
}

/* Cursor over the remote segments while splitting. */
struct seg_cursor {
    const dfab_rseg *segs;
    size_t nsegs;
    size_t index;
    uint64_t offset; /* within segs[index] */
};

/* Fill the next part's remote iovs, covering at most `want` bytes; returns the
 * bytes covered (0 only when the segments run out). */
static size_t next_part(struct seg_cursor *c, size_t want, size_t iov_limit, struct fi_rma_iov *iov,
                        size_t *niov)
{
    size_t covered = 0;
    *niov = 0;
    while (covered < want && *niov < iov_limit && c->index < c->nsegs) {
        const dfab_rseg *s = &c->segs[c->index];
        uint64_t avail = s->len - c->offset;
        if (avail == 0) {
            c->index++;
            c->offset = 0;
            continue;
        }
        size_t take = want - covered < avail ? want - covered : (size_t)avail;
        iov[*niov].addr = s->addr + c->offset;
        iov[*niov].len = take;
        iov[*niov].key = s->key;
        (*niov)++;
        covered += take;
        c->offset += take;
    }
    return covered;
}

static size_t part_limit(const dfab *f)
{
    size_t max = f->limits.max_msg_size;
    return max ? max : SIZE_MAX;
}

static size_t count_parts(const dfab *f, size_t len, const dfab_rseg *segs, size_t nsegs,
                          size_t iov_limit)
{
    struct seg_cursor c = {segs, nsegs, 0, 0};
    struct fi_rma_iov iov[MAX_RMA_IOV];
    size_t niov, parts = 0, done = 0;
    while (done < len) {
        size_t want = len - done < part_limit(f) ? len - done : part_limit(f);
        size_t got = next_part(&c, want, iov_limit, iov, &niov);
        if (got == 0)
            return 0;
        done += got;
        parts++;
    }
    return parts;
}

/* Drop `n` parts of a split op; calls done when it was the last. */
void fabric_finish_rma_parts(dfab_op *op, int n, int status)
{
    if (status)
        __atomic_compare_exchange_n(&op->first_error, &(int){0}, status, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE);
    if (__atomic_sub_fetch(&op->parts_left, n, __ATOMIC_ACQ_REL) == 0)
        op->done(op, __atomic_load_n(&op->first_error, __ATOMIC_ACQUIRE), 0, DFAB_ADDR_UNSPEC);
}

static int rma(dfab *f, bool is_write, dfab_addr dst, void *buf, size_t len, dfab_mr *mr,
               const dfab_rseg *segs, size_t nsegs, uint64_t flags, dfab_op *op)
{
    size_t iov_limit =
        f->limits.rma_iov_limit < MAX_RMA_IOV ? f->limits.rma_iov_limit : MAX_RMA_IOV;
    if (!op || !op->done || (!buf && len) || (nsegs && !segs) || len == 0)
        return -EINVAL;
    if (!mr || !inside_mr(mr, buf, len))
        return -EINVAL;
    size_t parts = count_parts(f, len, segs, nsegs, iov_limit);
    if (parts == 0 || parts > (size_t)(1 << 30))
        return -EINVAL; /* segments shorter than len */
    /* the count can only reach zero once every part is posted and complete,
     * so the last completion, in the progressing thread, calls done */
    __atomic_store_n(&op->first_error, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&op->parts_left, (int)parts, __ATOMIC_RELEASE);
    struct seg_cursor c = {segs, nsegs, 0, 0};
    size_t done = 0, posted = 0;
    int ret = 0;
    while (done < len) {
        struct rma_part p = {.flags = flags, .is_write = is_write, .desc = mr ? mr->desc : NULL};
        size_t niov;
        size_t want = len - done < part_limit(f) ? len - done : part_limit(f);
        size_t got = next_part(&c, want, iov_limit, p.remote, &niov);
        p.local.iov_base = (char *)buf + done;
        p.local.iov_len = got;
        p.msg = (struct fi_msg_rma){.msg_iov = &p.local,
                                    .desc = &p.desc,
                                    .iov_count = 1,
                                    .addr = dst,
                                    .rma_iov = p.remote,
                                    .rma_iov_count = niov,
                                    .context = op};
        ret = post_with_retry(f, post_rma_once, &p);
        if (ret)
            break;
        posted++;
        done += got;
    }
    if (ret && posted == 0) {
        __atomic_store_n(&op->parts_left, 0, __ATOMIC_RELEASE);
        return ret; /* nothing in flight: no callback */
    }
    /* failed part-way: parts never posted count as finished with the error
     * (done may then run here, if the posted parts already completed) */
    if (ret)
        fabric_finish_rma_parts(op, (int)(parts - posted), ret);
    return 0;
}

int dfab_rma_write(dfab *f, dfab_addr dst, const void *buf, size_t len, dfab_mr *mr,
                   const dfab_rseg *segs, size_t nsegs, bool visible_before_reply, dfab_op *op)
{
    uint64_t flags = FI_COMPLETION;
    if (visible_before_reply && !f->limits.write_then_send_ordered)
        flags |= FI_DELIVERY_COMPLETE;
    return rma(f, true, dst, (void *)buf, len, mr, segs, nsegs, flags, op);
}

int dfab_rma_read(dfab *f, dfab_addr dst, void *buf, size_t len, dfab_mr *mr, const dfab_rseg *segs,
                  size_t nsegs, dfab_op *op)
{
    return rma(f, false, dst, buf, len, mr, segs, nsegs, FI_COMPLETION, op);
}
