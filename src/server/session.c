/*
 * session.c — session table, credits and leases (DAFS §3.1, §3.2.6).
 *
 * Credits.  Every reply header carries the session's grant: how many
 * requests the client may have outstanding.  The ceiling is the --credits
 * value negotiated down to the client's max_credits; the grant itself is
 * clamp(rx_pool / nsessions, 2, ceiling), so that all sessions together stay
 * within the receive buffers, and is recomputed whenever a session comes or
 * goes (raised again when sessions leave).
 *
 * Lowering rule.  When the grant drops, the client may already have sent
 * requests under the old, larger grant.  The enforced limit therefore stays
 * at the old value until (a) a reply carrying the new grant has been sent
 * and (b) the session's outstanding count is at or below the new grant;
 * only then does the limit fall to the grant.  Raising takes effect at once.
 * A request that arrives while outstanding >= limit is refused with
 * DAFS_ST_CREDIT and not executed.
 *
 * Limits (issue 13: one endpoint opened 1,024 sessions and locked everyone
 * else out).  The table holds at most max_sessions, and one peer — the
 * endpoint name its CONNECT came from — at most max_per_peer of them
 * (dafsd --max-sessions, --max-sessions-per-client); a CONNECT beyond
 * either is refused with DAFS_ST_USERS (EUSERS at the client) and leaves
 * nothing behind.  A closed or expired session frees everything it held
 * (open state, credentials, the session itself) once its last in-flight
 * request is done; only a tombstone (id, address) stays, in a fixed ring.
 *
 * Leases.  Every admitted request renews the lease.  The network thread
 * periodically expires sessions idle for longer than lease_ms that have no
 * request in flight.  Closed and expired sessions leave a tombstone (id and
 * address) so late requests get a BADSESSION reply; the peer's address is
 * removed from the address vector when its tombstone is recycled and no live
 * session uses it.
 */
#include "session.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "batch.h"
#include "log.h"

int64_t session_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int session_table_init(session_table *t, dfab *f, unsigned max_sessions, unsigned rx_pool)
{
    memset(t, 0, sizeof(*t));
    t->fabric = f;
    t->max_sessions = max_sessions;
    t->rx_pool = rx_pool;
    for (unsigned i = 0; i < SESSION_TOMBSTONES; i++)
        t->tomb[i].addr = DFAB_ADDR_UNSPEC;
    return pthread_mutex_init(&t->mu, NULL) == 0 ? 0 : -1;
}

static unsigned bucket_of(uint64_t id)
{
    return (unsigned)((id ^ (id >> 32)) % SESSION_BUCKETS);
}

static session *find_locked(session_table *t, uint64_t id)
{
    for (session *s = t->buckets[bucket_of(id)]; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static bool addr_in_use_locked(session_table *t, dfab_addr addr)
{
    for (unsigned b = 0; b < SESSION_BUCKETS; b++)
        for (session *s = t->buckets[b]; s; s = s->next)
            if (s->addr == addr)
                return true;
    for (unsigned i = 0; i < SESSION_TOMBSTONES; i++)
        if (t->tomb[i].addr == addr)
            return true;
    return false;
}

static void tomb_add_locked(session_table *t, uint64_t id, dfab_addr addr)
{
    unsigned slot = t->tomb_next;
    t->tomb_next = (t->tomb_next + 1) % SESSION_TOMBSTONES;
    dfab_addr old = t->tomb[slot].addr;
    t->tomb[slot].id = id;
    t->tomb[slot].addr = addr;
    if (old != DFAB_ADDR_UNSPEC && !addr_in_use_locked(t, old))
        (void)dfab_remove_addr(t->fabric, old); /* failure only leaks an AV slot */
}

void session_tomb_add(session_table *t, uint64_t id, dfab_addr addr)
{
    pthread_mutex_lock(&t->mu);
    tomb_add_locked(t, id, addr);
    pthread_mutex_unlock(&t->mu);
}

bool session_tomb_addr(session_table *t, uint64_t id, dfab_addr *addr)
{
    bool found = false;
    pthread_mutex_lock(&t->mu);
    for (unsigned i = 0; i < SESSION_TOMBSTONES && !found; i++)
        if (t->tomb[i].id == id && id != 0 && t->tomb[i].addr != DFAB_ADDR_UNSPEC) {
            *addr = t->tomb[i].addr;
            found = true;
        }
    pthread_mutex_unlock(&t->mu);
    return found;
}

static void set_grant_locked(session *s, uint16_t grant)
{
    if (grant >= s->limit) {
        s->limit = grant; /* raising: at once */
    }
    if (grant != s->grant)
        s->grant_seen = false;
    s->grant = grant;
}

static void recompute_grants_locked(session_table *t)
{
    unsigned share = t->count ? t->rx_pool / t->count : t->rx_pool;
    for (unsigned b = 0; b < SESSION_BUCKETS; b++)
        for (session *s = t->buckets[b]; s; s = s->next) {
            unsigned g = share < 2 ? 2 : share;
            if (g > s->max_credits)
                g = s->max_credits;
            set_grant_locked(s, (uint16_t)g);
        }
}

static void unlink_locked(session_table *t, session *s)
{
    session **pp = &t->buckets[bucket_of(s->id)];
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
    s->next = NULL;
    t->count--;
}

static void release_locked(session *s)
{
    if (--s->refs == 0) {
        batch_session_free(s);
        opens_discard(&s->opens); /* fds go to the reaper: never closed here */
        cred_table_destroy(&s->creds);
        free(s);
    }
}

/* Close s: out of the hash, tombstone, drop the table's reference. */
static void close_locked(session_table *t, session *s, enum session_end how, const char *why)
{
    if (s->closed)
        return;
    s->closed = true;
    if (t->on_close != NULL)
        t->on_close(t->on_close_ctx, s->id, (int)how);
    unlink_locked(t, s);
    log_info("session %016llx (client %.*s) %s (%u sessions)", (unsigned long long)s->id,
             (int)s->client_id_len, s->client_id, why, t->count);
    uint64_t id = s->id;
    dfab_addr addr = s->addr;
    release_locked(s);
    tomb_add_locked(t, id, addr);
}

static void close_old_incarnations_locked(session_table *t, const dafs_connect_req *req)
{
    for (unsigned b = 0; b < SESSION_BUCKETS; b++) {
        session *s = t->buckets[b];
        while (s) {
            session *next = s->next;
            if (s->client_id_len == req->client_id.len &&
                memcmp(s->client_id, req->client_id.ptr, req->client_id.len) == 0 &&
                s->boot_verifier != req->boot_verifier)
                close_locked(t, s, SESSION_END_REINIT, "replaced by a new incarnation");
            s = next;
        }
    }
}

static unsigned peer_sessions_locked(session_table *t, const uint8_t *peer, uint32_t len)
{
    unsigned n = 0;
    for (unsigned b = 0; b < SESSION_BUCKETS; b++)
        for (session *s = t->buckets[b]; s; s = s->next)
            if (s->peer_len == len && memcmp(s->peer, peer, len) == 0)
                n++;
    return n;
}

unsigned session_count(session_table *t)
{
    pthread_mutex_lock(&t->mu);
    unsigned n = t->count;
    pthread_mutex_unlock(&t->mu);
    return n;
}

static uint64_t new_session_id_locked(session_table *t)
{
    uint64_t id = 0;
    while (id == 0 || find_locked(t, id)) {
        if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
            id = ((uint64_t)rand() << 32) ^ (uint64_t)rand() ^ (uint64_t)session_now_ms();
    }
    return id;
}

int session_create(session_table *t, const session_params *p, int64_t now_ms, session **out)
{
    const dafs_connect_req *req = p->req;
    if (req->client_id.len == 0 || req->client_id.len > DAFS_CLIENT_ID_MAX)
        return DAFS_ST_INVAL;
    session *s = calloc(1, sizeof(*s));
    if (!s)
        return DAFS_ST_NOMEM;
    if (cred_table_init(&s->creds) != 0) {
        free(s);
        return DAFS_ST_NOMEM;
    }
    if (opens_init(&s->opens, t->max_opens) != 0) {
        cred_table_destroy(&s->creds);
        free(s);
        return DAFS_ST_NOMEM;
    }
    pthread_mutex_lock(&t->mu);
    close_old_incarnations_locked(t, req);
    uint32_t plen = p->peer_len <= DAFS_EPNAME_MAX ? p->peer_len : DAFS_EPNAME_MAX;
    unsigned per_peer = t->max_per_peer ? t->max_per_peer : t->max_sessions;
    const char *full = t->count >= t->max_sessions ? "the server's"
                       : p->peer && peer_sessions_locked(t, p->peer, plen) >= per_peer
                           ? "this client's"
                           : NULL;
    if (full) {
        unsigned count = t->count;
        pthread_mutex_unlock(&t->mu);
        log_info("CONNECT (client %.*s) refused: %s session limit reached (%u sessions)",
                 (int)req->client_id.len, (const char *)req->client_id.ptr, full, count);
        opens_discard(&s->opens);
        cred_table_destroy(&s->creds);
        free(s);
        return DAFS_ST_USERS;
    }
    if (p->peer)
        memcpy(s->peer, p->peer, plen);
    s->peer_len = p->peer ? plen : 0;
    s->id = new_session_id_locked(t);
    s->addr = p->addr;
    memcpy(s->client_id, req->client_id.ptr, req->client_id.len);
    s->client_id_len = req->client_id.len;
    s->boot_verifier = req->boot_verifier;
    s->limits = p->limits;
    s->max_credits = p->max_credits ? p->max_credits : 1;
    s->last_active_ms = now_ms;
    s->refs = 2; /* the table's and the caller's */
    unsigned b = bucket_of(s->id);
    s->next = t->buckets[b];
    t->buckets[b] = s;
    t->count++;
    recompute_grants_locked(t);
    log_info("session %016llx (client %.*s) opened, %u credits (%u sessions)",
             (unsigned long long)s->id, (int)s->client_id_len, s->client_id, s->grant, t->count);
    pthread_mutex_unlock(&t->mu);
    *out = s;
    return DAFS_ST_OK;
}

session *session_acquire(session_table *t, uint64_t id)
{
    pthread_mutex_lock(&t->mu);
    session *s = id ? find_locked(t, id) : NULL;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&t->mu);
    return s;
}

void session_release(session_table *t, session *s)
{
    pthread_mutex_lock(&t->mu);
    release_locked(s);
    pthread_mutex_unlock(&t->mu);
}

static void settle_limit_locked(session *s)
{
    if (s->limit > s->grant && s->grant_seen && s->outstanding <= s->grant)
        s->limit = s->grant;
}

bool session_admit(session_table *t, session *s, int64_t now_ms)
{
    pthread_mutex_lock(&t->mu);
    settle_limit_locked(s);
    bool ok = !s->closed && s->outstanding < s->limit;
    if (ok) {
        s->outstanding++;
        s->last_active_ms = now_ms;
    }
    pthread_mutex_unlock(&t->mu);
    return ok;
}

uint16_t session_grant_for_reply(session_table *t, session *s)
{
    pthread_mutex_lock(&t->mu);
    uint16_t g = s->grant;
    s->grant_seen = true;
    pthread_mutex_unlock(&t->mu);
    return g;
}

void session_request_done(session_table *t, session *s)
{
    pthread_mutex_lock(&t->mu);
    if (s->outstanding > 0)
        s->outstanding--;
    settle_limit_locked(s);
    pthread_mutex_unlock(&t->mu);
}

bool session_is_closed(session_table *t, session *s)
{
    pthread_mutex_lock(&t->mu);
    bool closed = s->closed;
    pthread_mutex_unlock(&t->mu);
    return closed;
}

bool session_close(session_table *t, session *s, enum session_end how, const char *why)
{
    pthread_mutex_lock(&t->mu);
    bool was_open = !s->closed;
    close_locked(t, s, how, why);
    if (was_open)
        recompute_grants_locked(t);
    pthread_mutex_unlock(&t->mu);
    return was_open;
}

unsigned session_expire_idle(session_table *t, int64_t now_ms)
{
    unsigned n = 0;
    pthread_mutex_lock(&t->mu);
    for (unsigned b = 0; b < SESSION_BUCKETS; b++) {
        session *s = t->buckets[b];
        while (s) {
            session *next = s->next;
            if (s->outstanding == 0 && now_ms - s->last_active_ms > (int64_t)s->limits.lease_ms) {
                close_locked(t, s, SESSION_END_LEASE, "expired (lease)");
                n++;
            }
            s = next;
        }
    }
    if (n)
        recompute_grants_locked(t);
    pthread_mutex_unlock(&t->mu);
    return n;
}

void session_table_destroy(session_table *t)
{
    pthread_mutex_lock(&t->mu);
    for (unsigned b = 0; b < SESSION_BUCKETS; b++) {
        while (t->buckets[b]) {
            session *s = t->buckets[b];
            s->closed = true;
            unlink_locked(t, s);
            release_locked(s);
        }
    }
    pthread_mutex_unlock(&t->mu);
    pthread_mutex_destroy(&t->mu);
}

/* ---- administration ----------------------------------------------------- */

unsigned session_list(session_table *t, session_info *out, unsigned max, unsigned *total,
                      int64_t now_ms)
{
    session *held[64];
    unsigned n = 0;
    pthread_mutex_lock(&t->mu);
    *total = t->count;
    for (unsigned b = 0; b < SESSION_BUCKETS; b++)
        for (session *s = t->buckets[b]; s && n < max; s = s->next) {
            session_info *i = &out[n];
            i->id = s->id;
            memcpy(i->client_id, s->client_id, s->client_id_len);
            i->client_id_len = s->client_id_len;
            i->grant = s->grant;
            i->outstanding = s->outstanding;
            i->idle_ms = now_ms - s->last_active_ms;
            i->lease_ms = s->limits.lease_ms;
            i->opens = 0;
            if (n < 64) { /* open counts need the session's own lock: below */
                s->refs++;
                held[n] = s;
            }
            n++;
        }
    pthread_mutex_unlock(&t->mu);
    for (unsigned i = 0; i < n && i < 64; i++) {
        out[i].opens = opens_count(&held[i]->opens);
        session_release(t, held[i]);
    }
    for (unsigned i = 64; i < n; i++) { /* the rest, one at a time */
        session *s = session_acquire(t, out[i].id);
        if (s) {
            out[i].opens = opens_count(&s->opens);
            session_release(t, s);
        }
    }
    return n;
}

bool session_evict(session_table *t, uint64_t id)
{
    pthread_mutex_lock(&t->mu);
    session *s = id ? find_locked(t, id) : NULL;
    if (s) {
        close_locked(t, s, SESSION_END_LEASE, "evicted by the administrator");
        recompute_grants_locked(t);
    }
    pthread_mutex_unlock(&t->mu);
    return s != NULL;
}

void session_totals(session_table *t, unsigned *sessions, uint64_t *granted, uint64_t *in_use)
{
    uint64_t g = 0, u = 0;
    pthread_mutex_lock(&t->mu);
    *sessions = t->count;
    for (unsigned b = 0; b < SESSION_BUCKETS; b++)
        for (session *s = t->buckets[b]; s; s = s->next) {
            g += s->grant;
            u += s->outstanding;
        }
    pthread_mutex_unlock(&t->mu);
    *granted = g;
    *in_use = u;
}
