/*
 * engine.c — the request engine of libdafs: slots, credits, waiting.
 *
 * Every request owns a slot: a registered send buffer plus the state of one
 * outstanding request.  The xid sent on the wire carries the slot index in
 * its low 16 bits, so the receive callback finds the slot in O(1); the upper
 * 48 bits are a keyed hash of (generation, index) under a per-session random
 * key from getrandom(2), so a late reply meant for an earlier use of the same
 * slot (after a timeout, say) is dropped, and a sender who cannot see our
 * traffic cannot guess an xid we would accept.
 *
 * Forged replies (issue 13): a reply is taken only when it comes from the
 * server's address (when the provider names senders: FI_SOURCE), carries
 * our session id (any id for the CONNECT reply, which assigns it) and the
 * exact xid of an outstanding request.  Anything else is dropped and counted
 * (s->dropped_replies; logged to stderr when DAFS_DEBUG is set).
 *
 * Credits: a caller takes a slot only while fewer than the server's latest
 * grant (carried in every reply header) are outstanding; otherwise it waits.
 *
 * Progress ("the caller progresses"): there is no progress thread.  Of all
 * the threads waiting for something (a reply, a credit), one at a time holds
 * the progress role and calls dfab_progress(), which polls briefly and then
 * blocks in the provider.  The others sleep, each on its own slot's semaphore
 * (credit waiters on the session's condition variable), so a completion wakes exactly
 * the thread it belongs to — no thundering herd with 32 threads on one
 * session.  When the progressor's own reply is in it gives the role up and
 * wakes one sleeper whose reply is still due (or, failing that, a credit
 * waiter), which takes it over.  A lone caller (QD1) therefore reaps its own
 * reply with no wakeup at all, and while any request is outstanding some
 * thread is inside libfabric — which the tcp provider needs for the server's
 * RMA to move — and an idle client burns no CPU.
 *
 * Asynchronous requests (cq.c) use the same slots and credits, but nobody
 * sleeps on their slot: the callback that makes one done (reply in, send
 * failed) claims it (engine_aio_claim_locked) and turns it into a
 * completion in its group right there, in whichever thread progresses —
 * a synchronous caller, a reaper in dafs_cq_reap, or cq.c's helper.  The
 * role passes to reapers too: pass_progress_role wakes, in this order, a
 * slot owner whose reply is due, a credit waiter, then (aio_pass_role) a
 * reaper or the helper while async I/O is in flight.  A slot freed by an
 * async completion, a synchronous release or a raised grant sends the
 * submissions queued for want of credits (aio_kick), in order.
 *
 * A reply that does not arrive within the session timeout breaks the session:
 * every later call fails with -DAFS_ETRANSPORT.  (The server might still act
 * on the request, and a late RMA into a reused buffer would be worse than a
 * dead session.)  Reconnecting is a later feature.
 */
#include <errno.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "client.h"

uint64_t engine_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool slot_done(const client_slot *slot) /* slot->mtx held */
{
    return (slot->send_done && slot->send_status < 0) || (slot->replied && slot->send_done);
}

bool engine_aio_claim_locked(client_slot *slot)
{
    if (slot->aio == NULL || !slot->aio_armed || slot->aio_finished)
        return false;
    if (!slot_done(slot) && atomic_load(&slot->s->broken) == 0)
        return false;
    slot->aio_finished = true;
    return true;
}

/* slot->mtx held: should the sleeping owner be woken (given `wake`)?  Clears
 * the flag so that one sleep gets at most one post. */
static bool claim_wake(client_slot *slot, bool wake)
{
    if (!wake || !atomic_load(&slot->sleeping))
        return false;
    atomic_store(&slot->sleeping, false);
    return true;
}

static void wake_slot(client_slot *slot)
{
    pthread_mutex_lock(&slot->mtx);
    bool wake = claim_wake(slot, true);
    pthread_mutex_unlock(&slot->mtx);
    if (wake)
        (void)sem_post(&slot->wake);
}

static void break_session_locked(dafs_session *s, int err)
{
    if (atomic_load(&s->broken) == 0)
        atomic_store(&s->broken, err);
    pthread_cond_broadcast(&s->cond);
    for (uint32_t i = 0; i < s->nslots; i++)
        if (atomic_load(&s->slots[i].sleeping))
            wake_slot(&s->slots[i]);
}

void engine_break(dafs_session *s, int err)
{
    pthread_mutex_lock(&s->lock);
    break_session_locked(s, err);
    pthread_mutex_unlock(&s->lock);
    aio_fail_all(s);
    batch_async_fail_all(s, atomic_load(&s->broken)); /* each entry exactly once */
}

static void repost_rx(client_rx *rx)
{
    dafs_session *s = rx->s;
    int rc = dfab_post_recv(s->fab, rx->buf, s->recv_size, s->recv_mr, &rx->op);
    if (rc < 0)
        engine_break(s, -DAFS_ETRANSPORT);
}

/* Is h the awaited reply of slot?  slot->mtx held. */
static bool awaits_reply(const client_slot *slot, const dafs_hdr *h)
{
    return slot->busy && slot->sent && !slot->replied && slot->xid == h->xid;
}

static void update_grant(dafs_session *s, uint16_t credits)
{
    uint32_t grant = credits == 0 ? 1u : credits; /* 0 would stall us forever */
    if (grant > s->nslots)
        grant = s->nslots;
    uint32_t old = atomic_exchange(&s->grant, grant);
    if (grant > old && atomic_load(&s->credit_waiters) > 0) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
    if (grant > old && atomic_load(&s->aio_pending) > 0)
        aio_kick(s);
}

/* A reply that is not ours (another sender, session or xid): drop it. */
static void drop_reply(client_rx *rx, const char *why, dfab_addr src, const dafs_hdr *h)
{
    dafs_session *s = rx->s;
    uint64_t n = atomic_fetch_add(&s->dropped_replies, 1u) + 1u;
    if (s->debug)
        fprintf(stderr, "libdafs: dropped a reply (%s): src %llx session %016llx xid %016llx"
                        " (%llu dropped)\n",
                why, (unsigned long long)src, (unsigned long long)(h ? h->session_id : 0),
                (unsigned long long)(h ? h->xid : 0), (unsigned long long)n);
    repost_rx(rx);
}

/* From the server?  Only checkable when the provider names senders. */
static bool from_server(const dafs_session *s, dfab_addr src)
{
    return !s->src_checked || src == s->server;
}

/* The xid of a slot's next use: index in the low 16 bits, the rest a keyed
 * hash of (generation, index) (the splitmix64/murmur3 finaliser over the key
 * mixed in twice); no generation repeats within a session. */
static uint64_t make_xid(const dafs_session *s, uint64_t generation, uint32_t index)
{
    uint64_t z = s->xid_key ^ (generation << 16 | index);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    z ^= s->xid_key2;
    z = (z ^ (z >> 33)) * 0xff51afd7ed558ccdULL;
    z = (z ^ (z >> 33)) * 0xc4ceb9fe1a85ec53ULL;
    z ^= z >> 33;
    return (z & ~(uint64_t)0xffffu) | index;
}

static void rx_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    client_rx *rx = (client_rx *)op;
    dafs_session *s = rx->s;
    if (status < 0) {
        pthread_mutex_lock(&s->lock);
        bool stopping = s->stopping;
        if (!stopping)
            break_session_locked(s, -DAFS_ETRANSPORT);
        pthread_mutex_unlock(&s->lock);
        if (!stopping)
            aio_fail_all(s);
        return;
    }
    dafs_hdr h;
    int hrc = dafs_decode_hdr(rx->buf, len, &h);
    if (hrc == 0 && (h.flags & DAFS_HDR_NOTIFY) && h.session_id == s->session_id &&
        from_server(s, src)) {
        batch_notify(s, rx->buf, len); /* asynchronous batch completions */
        atomic_fetch_add(&s->bc_granted, 1u); /* this buffer goes back to the pool */
        repost_rx(rx);
        return;
    }
    /* a reply of another version (a server's VERSION error) still names our xid */
    if ((hrc != 0 && hrc != -DAFS_ST_VERSION) || !(h.flags & DAFS_HDR_REPLY) ||
        (h.xid & 0xffffu) >= s->nslots) {
        drop_reply(rx, "not a reply of ours", src, hrc == 0 ? &h : NULL);
        return;
    }
    if (!from_server(s, src)) {
        drop_reply(rx, "not from the server's address", src, &h);
        return;
    }
    client_slot *slot = &s->slots[h.xid & 0xffffu];
    pthread_mutex_lock(&slot->mtx);
    bool mine = awaits_reply(slot, &h), wake = false, fire = false;
    /* the CONNECT reply assigns the session id; every other names ours */
    if (mine && slot->opcode != DAFS_OP_CONNECT && h.session_id != s->session_id)
        mine = false;
    if (mine) {
        slot->rx = rx;
        slot->rx_len = len;
        slot->replied = true;
        wake = claim_wake(slot, slot_done(slot));
        fire = engine_aio_claim_locked(slot);
    }
    pthread_mutex_unlock(&slot->mtx);
    if (wake) /* after the unlock, so the woken owner does not block on mtx */
        (void)sem_post(&slot->wake);
    if (!mine) {
        drop_reply(rx, "stale or unknown xid, or another session", src, &h);
        return;
    }
    atomic_store(&s->last_reply_ms, engine_now_ms());
    update_grant(s, h.credits);
    if (fire)
        aio_slot_done(slot);
}

static void send_done(dfab_op *op, int status, size_t len, dfab_addr src)
{
    client_slot *slot = (client_slot *)op;
    (void)len;
    (void)src;
    pthread_mutex_lock(&slot->mtx);
    slot->send_done = true;
    slot->send_status = status;
    bool wake = claim_wake(slot, slot_done(slot));
    bool fire = engine_aio_claim_locked(slot);
    pthread_mutex_unlock(&slot->mtx);
    if (wake)
        (void)sem_post(&slot->wake);
    if (fire)
        aio_slot_done(slot);
}

static int alloc_registered(dafs_session *s, size_t bytes, uint8_t **mem, dfab_mr **mr)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, bytes) != 0)
        return -ENOMEM;
    memset(p, 0, bytes);
    int rc = dfab_mr_reg(s->fab, p, bytes, DFAB_ACCESS_LOCAL, mr);
    if (rc < 0) {
        free(p);
        return rc;
    }
    *mem = p;
    return 0;
}

/* Destroy the mutex and semaphore of the first n slots. */
static void destroy_slot_sync(dafs_session *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        (void)sem_destroy(&s->slots[i].wake);
        pthread_mutex_destroy(&s->slots[i].mtx);
    }
}

/* Every slot's mutex and wake semaphore.  On failure the ones made so far
 * are destroyed. */
static int init_slot_sync(dafs_session *s)
{
    uint32_t made = 0;
    int rc = 0;
    while (made < s->nslots) {
        client_slot *slot = &s->slots[made];
        rc = pthread_mutex_init(&slot->mtx, NULL);
        if (rc != 0)
            break;
        if (sem_init(&slot->wake, 0, 0) != 0) {
            rc = errno;
            pthread_mutex_destroy(&slot->mtx);
            break;
        }
        made++;
    }
    if (made < s->nslots) {
        destroy_slot_sync(s, made);
        return rc != 0 ? -rc : -ENOMEM;
    }
    s->slot_sync_made = true;
    return 0;
}

int engine_init(dafs_session *s, uint32_t nslots, size_t send_size, size_t recv_size)
{
    s->nslots = nslots;
    s->nrecv = nslots + CLIENT_EXTRA_RECVS + CLIENT_NOTIFY_RECVS;
    atomic_store(&s->bc_granted, CLIENT_NOTIFY_RECVS);
    atomic_store(&s->bc_told, 0u);
    s->send_size = send_size;
    s->recv_size = recv_size;
    atomic_store(&s->grant, 1u);
    if (getrandom(&s->xid_key, sizeof s->xid_key, 0) != (ssize_t)sizeof s->xid_key ||
        getrandom(&s->xid_key2, sizeof s->xid_key2, 0) != (ssize_t)sizeof s->xid_key2)
        return -EIO; /* no unpredictable xids without the kernel's randomness */
    s->src_checked = dfab_get_limits(s->fab)->reports_source;
    s->debug = getenv("DAFS_DEBUG") != NULL;
    s->slots = calloc(s->nslots, sizeof *s->slots);
    s->rx = calloc(s->nrecv, sizeof *s->rx);
    if (s->slots == NULL || s->rx == NULL)
        return -ENOMEM;
    int rc = alloc_registered(s, (size_t)s->nslots * send_size, &s->send_mem, &s->send_mr);
    if (rc < 0)
        return rc;
    rc = alloc_registered(s, (size_t)s->nrecv * recv_size, &s->recv_mem, &s->recv_mr);
    if (rc < 0)
        return rc;
    rc = init_slot_sync(s);
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < s->nslots; i++) {
        client_slot *slot = &s->slots[i];
        slot->send_op.done = send_done;
        slot->s = s;
        slot->index = i;
        slot->sbuf = s->send_mem + (size_t)i * send_size;
    }
    for (uint32_t i = 0; i < s->nrecv; i++) {
        client_rx *rx = &s->rx[i];
        rx->op.done = rx_done;
        rx->s = s;
        rx->buf = s->recv_mem + (size_t)i * recv_size;
        rc = dfab_post_recv(s->fab, rx->buf, recv_size, s->recv_mr, &rx->op);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Frees buffers; the endpoint must already be closed (no more callbacks). */
void engine_fini(dafs_session *s)
{
    free(s->send_mem);
    free(s->recv_mem);
    if (s->slot_sync_made)
        destroy_slot_sync(s, s->nslots);
    s->slot_sync_made = false;
    free(s->slots);
    free(s->rx);
    s->send_mem = s->recv_mem = NULL;
    s->slots = NULL;
    s->rx = NULL;
}

static void deadline_to_timespec(uint64_t deadline_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(deadline_ms / 1000u);
    ts->tv_nsec = (long)(deadline_ms % 1000u) * 1000000L;
}

/* Called by a thread that stops waiting: if nobody progresses now, wake one
 * sleeper that still needs progress — a slot owner whose reply is due, else a
 * credit waiter — to take the role.  A sleeper sets its `sleeping` flag
 * before it tries for the role, and the role is released before this looks
 * at the flags, so either the sleeper gets the role or it is seen here. */
static void pass_progress_role(dafs_session *s)
{
    if (atomic_load(&s->progressing))
        return;
    if (atomic_load(&s->reply_sleepers) > 0) {
        for (uint32_t i = 0; i < s->nslots; i++) {
            client_slot *slot = &s->slots[i];
            if (!atomic_load(&slot->sleeping))
                continue;
            pthread_mutex_lock(&slot->mtx);
            bool wake = claim_wake(slot, !slot_done(slot));
            pthread_mutex_unlock(&slot->mtx);
            if (wake) {
                (void)sem_post(&slot->wake);
                return;
            }
        }
    }
    if (atomic_load(&s->credit_waiters) > 0) {
        pthread_mutex_lock(&s->lock);
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        return;
    }
    aio_pass_role(s);
}

void engine_pass_role(dafs_session *s)
{
    pass_progress_role(s);
}

/* Progress the endpoint for up to slice_ms, holding the role (taken by the
 * caller); no lock held. */
static void progress_once(dafs_session *s, int slice_ms)
{
    int rc = dfab_progress(s->fab, slice_ms);
    atomic_store(&s->progressing, false);
    if (rc < 0)
        engine_break(s, -DAFS_ETRANSPORT);
}

static bool take_progress_role(dafs_session *s)
{
    bool expected = false;
    return atomic_compare_exchange_strong(&s->progressing, &expected, true);
}

bool engine_take_role(dafs_session *s)
{
    return take_progress_role(s);
}

void engine_progress(dafs_session *s, int slice_ms)
{
    progress_once(s, slice_ms);
}

static int slice_until(uint64_t deadline_ms, uint64_t *now_out)
{
    uint64_t now = engine_now_ms();
    *now_out = now;
    if (now >= deadline_ms)
        return -ETIMEDOUT;
    uint64_t left = deadline_ms - now;
    return left < (uint64_t)CLIENT_PROGRESS_SLICE_MS ? (int)left : CLIENT_PROGRESS_SLICE_MS;
}

/*
 * One step of waiting for a credit, s->lock held on entry and exit: progress
 * the endpoint if nobody else does, else sleep on s->cond until woken (a slot
 * freed, the grant raised, the role passed on) or a slice passes.
 */
static int credit_wait_step_locked(dafs_session *s, uint64_t deadline_ms)
{
    uint64_t now;
    int slice = slice_until(deadline_ms, &now);
    if (slice < 0)
        return slice;
    atomic_fetch_add(&s->credit_waiters, 1u);
    if (take_progress_role(s)) {
        atomic_fetch_sub(&s->credit_waiters, 1u);
        pthread_mutex_unlock(&s->lock);
        progress_once(s, slice);
        pthread_mutex_lock(&s->lock);
        return 0;
    }
    struct timespec ts;
    deadline_to_timespec(now + (uint64_t)slice, &ts);
    int rc = pthread_cond_timedwait(&s->cond, &s->lock, &ts);
    atomic_fetch_sub(&s->credit_waiters, 1u);
    if (rc != 0 && rc != ETIMEDOUT)
        return -rc;
    return 0;
}

static client_slot *free_slot_locked(dafs_session *s)
{
    for (uint32_t i = 0; i < s->nslots; i++)
        if (!s->slots[i].busy)
            return &s->slots[i];
    return NULL;
}

client_slot *engine_take_slot_locked(dafs_session *s)
{
    client_slot *slot = s->outstanding < atomic_load(&s->grant) ? free_slot_locked(s) : NULL;
    if (slot == NULL)
        return NULL;
    pthread_mutex_lock(&slot->mtx);
    slot->busy = true;
    slot->sent = slot->send_done = slot->replied = false;
    slot->send_status = 0;
    slot->rx = NULL;
    slot->aio = NULL;
    slot->aio_armed = slot->aio_finished = false;
    slot->generation++;
    slot->xid = make_xid(s, slot->generation, slot->index);
    pthread_mutex_unlock(&slot->mtx);
    s->outstanding++;
    return slot;
}

int engine_progress_wait(dafs_session *s, int timeout_ms)
{
    int err = atomic_load(&s->broken);
    if (err != 0)
        return err;
    if (take_progress_role(s)) {
        progress_once(s, timeout_ms < CLIENT_PROGRESS_SLICE_MS ? timeout_ms
                                                               : CLIENT_PROGRESS_SLICE_MS);
        pass_progress_role(s);
    } else if (timeout_ms > 0) {
        struct timespec ts = {0, 1000000L};
        (void)nanosleep(&ts, NULL);
    }
    return atomic_load(&s->broken);
}

int engine_acquire(dafs_session *s, bool blocking, client_slot **out)
{
    uint64_t deadline = engine_now_ms() + s->timeout_ms;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        int err = atomic_load(&s->broken);
        if (err != 0) {
            pthread_mutex_unlock(&s->lock);
            pass_progress_role(s);
            return err;
        }
        client_slot *slot = engine_take_slot_locked(s);
        if (slot != NULL) {
            pthread_mutex_unlock(&s->lock);
            *out = slot;
            return 0; /* the caller goes on to wait for this slot: no role to pass */
        }
        if (!blocking) {
            pthread_mutex_unlock(&s->lock);
            return -EAGAIN;
        }
        int rc = credit_wait_step_locked(s, deadline);
        if (rc < 0) {
            if (rc == -ETIMEDOUT)
                break_session_locked(s, -DAFS_ETRANSPORT);
            pthread_mutex_unlock(&s->lock);
            if (rc == -ETIMEDOUT)
                aio_fail_all(s);
            pass_progress_role(s);
            return -DAFS_ETRANSPORT;
        }
    }
}

int engine_send(client_slot *slot, dafs_request *req)
{
    dafs_session *s = slot->s;
    req->hdr.session_id = req->hdr.opcode == DAFS_OP_CONNECT ? 0 : s->session_id;
    req->hdr.xid = slot->xid;
    req->hdr.flags = 0;
    req->hdr.credits = 0;
    req->hdr.status = 0;
    if (req->hdr.opcode == DAFS_OP_CONNECT)
        req->hdr.cred = 0;
    else if (req->hdr.cred == 0)
        req->hdr.cred = atomic_load(&s->default_cred);
    slot->opcode = req->hdr.opcode;
    int len = dafs_encode_request(slot->sbuf, s->send_size, req);
    if (len < 0)
        return len == -DAFS_ST_OVERFLOW ? -ENAMETOOLONG : -EINVAL;
    pthread_mutex_lock(&slot->mtx);
    slot->sent = true;
    pthread_mutex_unlock(&slot->mtx);
    atomic_store(&s->last_send_ms, engine_now_ms());
    int rc = dfab_send(s->fab, s->server, slot->sbuf, (size_t)len, s->send_mr, &slot->send_op);
    if (rc < 0) {
        pthread_mutex_lock(&slot->mtx);
        slot->sent = false;
        slot->send_done = true;
        slot->send_status = rc;
        pthread_mutex_unlock(&slot->mtx);
        return -DAFS_ETRANSPORT;
    }
    return 0;
}

/* The state of a slot's wait; slot->mtx held. */
static int reply_state(const client_slot *slot)
{
    if (slot->send_done && slot->send_status < 0)
        return -DAFS_ETRANSPORT;
    if (slot->replied && slot->send_done)
        return 0;
    int broken = atomic_load(&slot->s->broken);
    return broken != 0 ? broken : 1;
}

/*
 * Wait for slot's reply: progress the endpoint while nobody else does, else
 * sleep on the slot's own semaphore until the reply is in, the
 * progress role is passed here, or a slice passes.  slot->mtx held on entry
 * and exit.  Returns 0 or a negative error.
 */
static int wait_reply_locked(client_slot *slot, unsigned timeout_ms)
{
    dafs_session *s = slot->s;
    uint64_t deadline = engine_now_ms() + timeout_ms;
    for (;;) {
        int st = reply_state(slot);
        if (st <= 0)
            return st;
        uint64_t now;
        int slice = slice_until(deadline, &now);
        if (slice < 0) {
            pthread_mutex_unlock(&slot->mtx);
            engine_break(s, -DAFS_ETRANSPORT);
            pthread_mutex_lock(&slot->mtx);
            return -DAFS_ETRANSPORT;
        }
        atomic_fetch_add(&s->reply_sleepers, 1u);
        atomic_store(&slot->sleeping, true);
        if (take_progress_role(s)) {
            atomic_store(&slot->sleeping, false);
            atomic_fetch_sub(&s->reply_sleepers, 1u);
            pthread_mutex_unlock(&slot->mtx);
            progress_once(s, slice);
            pthread_mutex_lock(&slot->mtx);
            continue;
        }
        struct timespec ts;
        deadline_to_timespec(now + (uint64_t)slice, &ts);
        pthread_mutex_unlock(&slot->mtx);
        int rc = sem_clockwait(&slot->wake, CLOCK_MONOTONIC, &ts) == 0 ? 0 : errno;
        pthread_mutex_lock(&slot->mtx);
        atomic_fetch_sub(&s->reply_sleepers, 1u);
        atomic_store(&slot->sleeping, false); /* timed out: no post is owed */
        if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
            return -rc;
    }
}

int engine_wait(client_slot *slot, dafs_reply *rep)
{
    return engine_wait_for(slot, rep, slot->s->timeout_ms);
}

int engine_wait_for(client_slot *slot, dafs_reply *rep, unsigned timeout_ms)
{
    pthread_mutex_lock(&slot->mtx);
    int rc = wait_reply_locked(slot, timeout_ms);
    pthread_mutex_unlock(&slot->mtx);
    pass_progress_role(slot->s); /* we are done waiting: someone else may need the role */
    if (rc < 0)
        return rc;
    int drc = dafs_decode_reply(slot->rx->buf, slot->rx_len, rep);
    if (drc == -DAFS_ST_VERSION)
        return -DAFS_EVERSION; /* the server speaks another protocol version */
    if (drc != 0 || rep->hdr.opcode != slot->opcode)
        return -DAFS_EPROTO;
    if (rep->hdr.status != DAFS_ST_OK)
        return client_map_status(rep->hdr.status);
    return 0;
}

void engine_release(client_slot *slot)
{
    engine_free_slot(slot);
    if (atomic_load(&slot->s->aio_pending) > 0)
        aio_kick(slot->s);
}

void engine_free_slot(client_slot *slot)
{
    dafs_session *s = slot->s;
    client_rx *rx = slot->rx;
    slot->rx = NULL;
    if (rx != NULL)
        repost_rx(rx);
    pthread_mutex_lock(&s->lock);
    pthread_mutex_lock(&slot->mtx);
    slot->busy = false;
    slot->aio = NULL;
    pthread_mutex_unlock(&slot->mtx);
    s->outstanding--;
    if (atomic_load(&s->credit_waiters) > 0)
        pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

int engine_call(dafs_session *s, dafs_request *req, dafs_reply *rep, client_slot **slot_out)
{
    client_slot *slot = NULL;
    *slot_out = NULL;
    int rc = engine_acquire(s, true, &slot);
    if (rc < 0)
        return rc;
    rc = engine_send(slot, req);
    if (rc == 0)
        rc = engine_wait(slot, rep);
    if (rc < 0) {
        engine_release(slot);
        return rc;
    }
    *slot_out = slot;
    return 0;
}

int engine_call_simple(dafs_session *s, dafs_request *req)
{
    dafs_reply rep;
    client_slot *slot = NULL;
    int rc = engine_call(s, req, &rep, &slot);
    if (rc == 0)
        engine_release(slot);
    return rc;
}
