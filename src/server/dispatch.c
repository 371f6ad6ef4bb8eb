/*
 * dispatch.c — the network thread.
 *
 * One thread runs dfab_progress() in a loop; receive completions are handled
 * right in their callbacks, which are short and never touch files:
 *
 *   decode header ─ bad ──────────────► error reply if we can address the
 *        │                              sender (known/recent session or a
 *        │                              source address), else drop
 *        │      ─ other version ──────► VERSION, in a header that peer's
 *        │                              version can decode (v1: 40 bytes)
 *   CONNECT ───────────────────────────► session table, reply here
 *   find session ─ unknown ───────────► BADSESSION (same addressing rule)
 *   credit check ─ over the limit ────► CREDIT, request not executed
 *   decode body ─ bad ────────────────► BADMSG / BADOP
 *   NULL, DISCONNECT ─────────────────► answered here
 *   READ/GETATTR, fd cached, LOOKUP
 *   in a cached directory, REMOVE of
 *   an empty file there ──────────────► answered here (fastpath.c)
 *   everything else ──────────────────► worker queue (keeps the rx buffer;
 *                                       the pool gives it back through
 *                                       rx_repost, the callback it was
 *                                       started with)
 *
 * This file decides where a request runs and nothing else: it calls into
 * fastpath.c and worker.c, they call the ops through opctx.h, and nothing
 * below calls back up here (scripts/check-layering.sh).
 *
 * Replies sent from this thread use a small pool of registered slots; when
 * all are in flight (a flooding client), further error replies are dropped
 * rather than queued, so memory stays bounded.  The loop also expires idle
 * sessions every 100 ms.
 */
#include "dispatch.h"

#include <endian.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "ops_lock.h"
#include "fastpath.h"
#include "log.h"
#include "opctx.h"
#include "stats.h"
#include "worker.h"

#define INLINE_HEADROOM 512 /* request/reply bytes besides inline data */
#define LEASE_CHECK_MS 100

/* ---- control replies -------------------------------------------------- */

static void ctl_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    (void)status;
    (void)len;
    (void)src;
    ctl_reply *c = (ctl_reply *)((char *)op - offsetof(ctl_reply, op));
    c->next_free = c->srv->ctl_free;
    c->srv->ctl_free = c;
}

/* Send a (small) reply from the network thread.  False when no slot was
 * free (or the send failed): the reply is dropped, unless the caller keeps
 * it to try again. */
static bool ctl_send(server *srv, dfab_addr dst, const dafs_reply *rep)
{
    ctl_reply *c = srv->ctl_free;
    if (!c || dst == DFAB_ADDR_UNSPEC)
        return false;
    int len = dafs_encode_reply(c->buf, CTL_REPLY_SIZE, rep);
    if (len < 0) {
        log_error("cannot encode %s reply: status %d", dafs_op_name(rep->hdr.opcode), -len);
        return true; /* trying again will not help */
    }
    stats_reply_here(rep, (size_t)len);
    srv->ctl_free = c->next_free;
    memset(&c->op, 0, sizeof(c->op));
    c->op.done = ctl_done;
    int rc = dfab_send(srv->fabric, dst, c->buf, (size_t)len, srv->ctl_mr, &c->op);
    if (rc != 0) {
        c->next_free = srv->ctl_free;
        srv->ctl_free = c;
    }
    return rc == 0;
}

/* The answers of queued LOCKs that were granted (or cancelled): each is
 * the reply its LOCK did not get when it queued.  One whose session is gone
 * is dropped; one that finds no free slot waits for the next pass. */
static void send_lock_answers(server *srv)
{
    lock_answer a;
    while (locks_next_answer(&a)) {
        session *s = session_acquire(&srv->sessions, a.session);
        if (s == NULL)
            continue;
        dafs_hdr req = {.opcode = DAFS_OP_LOCK, .session_id = a.session, .xid = a.xid};
        dafs_reply rep;
        memset(&rep, 0, sizeof(rep));
        reply_hdr_init(&rep.hdr, &req, s->id, session_grant_for_reply(&srv->sessions, s),
                       a.status);
        bool sent = ctl_send(srv, s->addr, &rep);
        session_release(&srv->sessions, s);
        if (!sent) {
            locks_requeue_answer(&a);
            return;
        }
    }
}

static void ctl_send_status(server *srv, dfab_addr dst, const dafs_hdr *req, session *s, int st)
{
    dafs_reply rep;
    memset(&rep, 0, sizeof(rep));
    uint16_t credits = s ? session_grant_for_reply(&srv->sessions, s) : 0;
    reply_hdr_init(&rep.hdr, req, s ? s->id : req->session_id, credits, st);
    ctl_send(srv, dst, &rep);
}

/* Where to send an error for a message from session id (may be unknown). */
static dfab_addr error_address(server *srv, uint64_t id, dfab_addr src, session **held)
{
    *held = session_acquire(&srv->sessions, id);
    if (*held)
        return (*held)->addr;
    dfab_addr a;
    if (session_tomb_addr(&srv->sessions, id, &a))
        return a;
    return src;
}

/* The header did not decode: answer if it at least looks like ours. */
static void reply_undecodable(server *srv, const uint8_t *buf, size_t len, dfab_addr src, int st)
{
    uint32_t magic;
    dafs_hdr h;
    if (len < DAFS_HDR_SIZE)
        return;
    memcpy(&magic, buf, 4);
    if (le32toh(magic) != DAFS_PROTO_MAGIC)
        return;
    memset(&h, 0, sizeof(h));
    memcpy(&h.opcode, buf + 6, 2);
    memcpy(&h.session_id, buf + 16, 8);
    memcpy(&h.xid, buf + 24, 8);
    h.opcode = le16toh(h.opcode);
    h.session_id = le64toh(h.session_id);
    h.xid = le64toh(h.xid);
    session *s;
    dfab_addr dst = error_address(srv, h.session_id, src, &s);
    ctl_send_status(srv, dst, &h, s, st);
    if (s)
        session_release(&srv->sessions, s);
}

/*
 * Where to answer a version-1 CONNECT: a new peer is not in the address
 * vector yet, so its endpoint name must come from the CONNECT body.  That body
 * is laid out as ours, 8 bytes earlier (only the header grew), so it is
 * decoded by moving it behind a version-2 header (and, as for our own
 * CONNECT, the name in the body is used even when the fabric reports a source
 * address).  Other versions' layouts are unknown: their CONNECTs go unanswered
 * unless the fabric names the source.
 */
static bool v1_connect_addr(server *srv, const uint8_t *buf, size_t len, const dafs_hdr *h,
                            dfab_addr *addr)
{
    const size_t grow = DAFS_HDR_SIZE - DAFS_HDR_V1_SIZE;
    if (h->version != 1 || h->opcode != DAFS_OP_CONNECT || h->session_id != 0 ||
        len < DAFS_HDR_V1_SIZE || len > srv->cfg.max_request)
        return false;
    uint8_t *v2 = malloc(len + grow);
    if (!v2)
        return false;
    dafs_hdr h2 = *h;
    h2.version = DAFS_PROTO_VERSION;
    h2.length = (uint32_t)(len + grow);
    h2.slot = h2.seq = 0;
    dafs_encode_hdr(v2, &h2);
    memcpy(v2 + DAFS_HDR_SIZE, buf + DAFS_HDR_V1_SIZE, len - DAFS_HDR_V1_SIZE);
    dafs_request req;
    bool ok = dafs_decode_request(v2, len + grow, &req) == 0 &&
              dfab_insert_name(srv->fabric, req.u.connect.ep_name.ptr,
                               req.u.connect.ep_name.len, addr) == 0;
    free(v2);
    return ok;
}

/* A request of another protocol version: VERSION, in a header the peer can
 * read (dafs_encode_version_error).  Replies of another version are dropped. */
static void reply_version(server *srv, const uint8_t *buf, size_t len, const dafs_hdr *h,
                          dfab_addr src)
{
    if (h->flags & DAFS_HDR_REPLY)
        return;
    session *s = NULL;
    dfab_addr dst;
    if (v1_connect_addr(srv, buf, len, h, &dst)) /* as for CONNECT: where it says it is */
        session_tomb_add(&srv->sessions, 0, dst); /* leaves the AV later */
    else
        dst = error_address(srv, h->session_id, src, &s);
    ctl_reply *c = srv->ctl_free;
    if (c && dst != DFAB_ADDR_UNSPEC) {
        uint16_t credits = s ? session_grant_for_reply(&srv->sessions, s) : 0;
        int n = dafs_encode_version_error(c->buf, CTL_REPLY_SIZE, h, credits);
        if (n > 0) {
            srv->ctl_free = c->next_free;
            memset(&c->op, 0, sizeof(c->op));
            c->op.done = ctl_done;
            if (dfab_send(srv->fabric, dst, c->buf, (size_t)n, srv->ctl_mr, &c->op) != 0) {
                c->next_free = srv->ctl_free;
                srv->ctl_free = c;
            }
        }
    }
    if (s)
        session_release(&srv->sessions, s);
}

/* ---- CONNECT ---------------------------------------------------------- */

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

static int negotiate(const server *srv, const dafs_connect_req *req, session_params *p)
{
    const server_config *cfg = &srv->cfg;
    if (req->max_request < DAFS_MSG_MIN || req->max_response < DAFS_MSG_MIN ||
        req->client_id.len == 0 || req->client_id.len > DAFS_CLIENT_ID_MAX)
        return DAFS_ST_INVAL;
    dafs_connect_rep *l = &p->limits;
    l->server_instance = srv->instance;
    l->max_request = min_u32(cfg->max_request, req->max_request);
    l->max_response = min_u32(cfg->max_response, req->max_response);
    l->inline_max = min_u32(cfg->inline_max, req->inline_max);
    l->inline_max = min_u32(l->inline_max, l->max_request - INLINE_HEADROOM);
    l->inline_max = min_u32(l->inline_max, l->max_response - INLINE_HEADROOM);
    l->max_io = cfg->max_io;
    l->lease_ms = cfg->lease_ms;
    l->max_segs = DAFS_SEG_MAX;
    unsigned credits = cfg->credits < req->max_credits ? cfg->credits : req->max_credits;
    p->max_credits = (uint16_t)(credits ? credits : 1);
    p->req = req;
    return DAFS_ST_OK;
}

static void handle_connect(server *srv, const uint8_t *buf, size_t len, const dafs_hdr *h,
                           dfab_addr src)
{
    dafs_request req;
    int rc = dafs_decode_request(buf, len, &req);
    if (rc != 0) {
        session *none = NULL;
        ctl_send_status(srv, src, h, none, -rc);
        return;
    }
    dfab_addr addr;
    const dafs_connect_req *cr = &req.u.connect;
    if (cr->ep_name.len == 0 ||
        dfab_insert_name(srv->fabric, cr->ep_name.ptr, cr->ep_name.len, &addr) != 0) {
        ctl_send_status(srv, src, h, NULL, DAFS_ST_INVAL);
        return;
    }
    session_params p;
    memset(&p, 0, sizeof(p));
    p.addr = addr;
    p.peer = cr->ep_name.ptr;
    p.peer_len = cr->ep_name.len;
    session *s = NULL;
    int st = negotiate(srv, cr, &p);
    if (st == DAFS_ST_OK)
        st = session_create(&srv->sessions, &p, session_now_ms(), &s);
    if (st != DAFS_ST_OK) {
        ctl_send_status(srv, addr, h, NULL, st);
        session_tomb_add(&srv->sessions, 0, addr); /* leaves the AV later */
        return;
    }
    dafs_reply rep;
    memset(&rep, 0, sizeof(rep));
    reply_hdr_init(&rep.hdr, h, s->id, session_grant_for_reply(&srv->sessions, s), DAFS_ST_OK);
    rep.u.connect = s->limits;
    ctl_send(srv, addr, &rep);
    session_release(&srv->sessions, s);
}

/* ---- requests on a session -------------------------------------------- */

/* Returns true when the slot went to a worker (which reposts it). */
static bool handle_session_request(server *srv, rx_slot *slot, const dafs_hdr *h, dfab_addr src)
{
    session *s = session_acquire(&srv->sessions, h->session_id);
    if (!s) {
        dfab_addr dst;
        if (!session_tomb_addr(&srv->sessions, h->session_id, &dst))
            dst = src;
        ctl_send_status(srv, dst, h, NULL, DAFS_ST_BADSESSION);
        return false;
    }
    if (!session_admit(&srv->sessions, s, session_now_ms())) {
        ctl_send_status(srv, s->addr, h, s, DAFS_ST_CREDIT);
        session_release(&srv->sessions, s);
        return false;
    }
    int rc = dafs_decode_request(slot->buf, slot->len, &slot->req);
    if (rc == 0 && (h->opcode == DAFS_OP_NULL || h->opcode == DAFS_OP_DISCONNECT)) {
        session_request_done(&srv->sessions, s);
        ctl_send_status(srv, s->addr, h, s, DAFS_ST_OK);
        if (h->opcode == DAFS_OP_DISCONNECT)
            session_close(&srv->sessions, s, SESSION_END_CLEAN, "closed by the client");
        session_release(&srv->sessions, s);
        return false;
    }
    if (rc != 0 || h->opcode == DAFS_OP_CONNECT) {
        session_request_done(&srv->sessions, s);
        ctl_send_status(srv, s->addr, h, s, rc != 0 ? -rc : DAFS_ST_INVAL);
        session_release(&srv->sessions, s);
        return false;
    }
    if (fastpath_try(srv, slot, s))
        return false; /* answered here; the slot holds the session reference */
    slot->sess = s; /* the worker releases it */
    workers_submit(srv, slot);
    return true;
}

static bool handle_message(server *srv, rx_slot *slot, dfab_addr src)
{
    dafs_hdr h;
    int rc = dafs_decode_hdr(slot->buf, slot->len, &h);
    if (rc == -DAFS_ST_VERSION) {
        reply_version(srv, slot->buf, slot->len, &h, src);
        return false;
    }
    if (rc != 0) {
        reply_undecodable(srv, slot->buf, slot->len, src, -rc);
        return false;
    }
    if (h.flags & DAFS_HDR_REPLY) {
        reply_undecodable(srv, slot->buf, slot->len, src, DAFS_ST_BADMSG);
        return false;
    }
    if (h.opcode == DAFS_OP_CONNECT && h.session_id == 0) {
        handle_connect(srv, slot->buf, slot->len, &h, src);
        return false;
    }
    return handle_session_request(srv, slot, &h, src);
}

static void rx_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    rx_slot *slot = (rx_slot *)((char *)op - offsetof(rx_slot, op));
    server *srv = slot->srv;
    if (srv->draining)
        return; /* shutting down: the buffer is not reposted */
    if (status < 0) {
        if (status != -ECANCELED)
            log_error("receive failed: %s", strerror(-status));
    } else {
        slot->len = len;
        slot->t_recv = stats_request_begin(len);
        if (handle_message(srv, slot, src))
            return;
    }
    rx_repost(srv, slot);
}

void rx_repost(server *srv, rx_slot *slot)
{
    if (srv->draining)
        return;
    memset(&slot->op, 0, sizeof(slot->op));
    slot->op.done = rx_done;
    int rc = dfab_post_recv(srv->fabric, slot->buf, srv->cfg.max_request, srv->rx_mr, &slot->op);
    if (rc != 0)
        log_error("cannot repost a receive buffer: %s", strerror(-rc));
}

/* ---- pools and the loop ----------------------------------------------- */

static int ctl_pool_start(server *srv, const char **why)
{
    size_t bytes = (size_t)CTL_REPLY_SLOTS * CTL_REPLY_SIZE;
    srv->ctl_mem = aligned_alloc(4096, bytes);
    srv->ctl_slots = calloc(CTL_REPLY_SLOTS, sizeof(ctl_reply));
    if (!srv->ctl_mem || !srv->ctl_slots) {
        *why = "out of memory";
        return -1;
    }
    if (dfab_mr_reg(srv->fabric, srv->ctl_mem, bytes, DFAB_ACCESS_LOCAL, &srv->ctl_mr) != 0) {
        *why = "cannot register reply buffers";
        return -1;
    }
    for (unsigned i = 0; i < CTL_REPLY_SLOTS; i++) {
        ctl_reply *c = &srv->ctl_slots[i];
        c->srv = srv;
        c->buf = srv->ctl_mem + (size_t)i * CTL_REPLY_SIZE;
        c->next_free = srv->ctl_free;
        srv->ctl_free = c;
    }
    return 0;
}

int dispatch_start(server *srv, const char **why)
{
    if (ctl_pool_start(srv, why) != 0 || fastpath_start(srv, why) != 0)
        return -1;
    unsigned n = srv->cfg.rx_buffers;
    if (srv->limits->rx_size > 0 && srv->limits->rx_size < n)
        srv->cfg.rx_buffers = n = (unsigned)srv->limits->rx_size;
    size_t bytes = (size_t)n * srv->cfg.max_request;
    srv->rx_mem = aligned_alloc(4096, bytes);
    srv->rx_slots = calloc(n, sizeof(rx_slot));
    if (!srv->rx_mem || !srv->rx_slots) {
        *why = "out of memory for receive buffers";
        return -1;
    }
    if (dfab_mr_reg(srv->fabric, srv->rx_mem, bytes, DFAB_ACCESS_LOCAL, &srv->rx_mr) != 0) {
        *why = "cannot register receive buffers";
        return -1;
    }
    for (unsigned i = 0; i < n; i++) {
        rx_slot *slot = &srv->rx_slots[i];
        slot->srv = srv;
        slot->buf = srv->rx_mem + (size_t)i * srv->cfg.max_request;
        memset(&slot->op, 0, sizeof(slot->op));
        slot->op.done = rx_done;
        if (dfab_post_recv(srv->fabric, slot->buf, srv->cfg.max_request, srv->rx_mr,
                           &slot->op) != 0) {
            *why = "cannot post receive buffers";
            return -1;
        }
    }
    return 0;
}

int dispatch_run(server *srv, int drain_ms)
{
    int64_t next_check = session_now_ms() + LEASE_CHECK_MS;
    while (!srv->stopping) {
        int rc = dfab_progress(srv->fabric, LEASE_CHECK_MS);
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN) {
            log_error("fabric progress failed: %s", strerror(-rc));
            break;
        }
        batch_tick(srv); /* asynchronous batch completions that are due */
        send_lock_answers(srv);
        int64_t now = session_now_ms();
        if (now >= next_check) {
            session_expire_idle(&srv->sessions, now);
            next_check = now + LEASE_CHECK_MS;
        }
    }
    /* Stop taking requests; keep progressing so in-flight ones finish. */
    srv->draining = true;
    int64_t deadline = session_now_ms() + drain_ms;
    while ((workers_busy(srv) > 0 || fastpath_busy(srv) > 0) && session_now_ms() < deadline) {
        (void)dfab_progress(srv->fabric, 10);
    }
    /* let the last replies leave */
    for (int i = 0; i < 5; i++)
        (void)dfab_progress(srv->fabric, 0);
    return workers_busy(srv) == 0 && fastpath_busy(srv) == 0 ? 0 : -1;
}

void dispatch_close_mrs(server *srv)
{
    dfab_mr_close(srv->rx_mr);
    dfab_mr_close(srv->ctl_mr);
    fastpath_close_mr(srv);
    srv->rx_mr = srv->ctl_mr = NULL;
}

void dispatch_free(server *srv)
{
    free(srv->rx_mem);
    free(srv->rx_slots);
    free(srv->ctl_mem);
    free(srv->ctl_slots);
    fastpath_free(srv);
}
