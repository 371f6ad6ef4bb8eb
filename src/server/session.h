/*
 * session.h — the session table: who is connected, their negotiated limits,
 * credit grants and leases.
 *
 * The network thread creates, looks up, expires and closes sessions; workers
 * only hold references and report finished requests.  One mutex guards the
 * table (operations on it are short and never do I/O).
 */
#ifndef DAFSD_SESSION_H
#define DAFSD_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "cred.h"
#include "openstate.h"
#include "proto.h"
#include "transport.h"

#define SESSION_BUCKETS 1024
#define SESSION_TOMBSTONES 1024

typedef struct session {
    uint64_t id;
    dfab_addr addr;                 /* the client's endpoint, for replies and RMA */
    uint8_t peer[DAFS_EPNAME_MAX];  /* the endpoint name CONNECT came from: the peer */
    uint32_t peer_len;
    char client_id[DAFS_CLIENT_ID_MAX];
    uint32_t client_id_len;
    uint64_t boot_verifier;
    dafs_connect_rep limits;        /* what CONNECT granted */
    uint16_t max_credits;           /* negotiated ceiling of the grant */
    uint16_t grant;                 /* advertised in every reply header */
    uint16_t limit;                 /* enforced; > grant only while lowering */
    bool grant_seen;                /* a reply carrying the current grant went out */
    uint32_t outstanding;           /* admitted requests not yet answered */
    int64_t last_active_ms;
    int refs;                       /* the table's own + one per in-flight request */
    bool closed;
    cred_table creds;               /* REGISTER_CRED identities (own mutex) */
    open_table opens;               /* open state (stateids), own mutex; released
                                     * when the session is freed */
    struct batch_sess *batch;       /* asynchronous batches (batch.c); NULL until used */
    struct session *next;           /* hash chain */
} session;

typedef struct session_table {
    pthread_mutex_t mu;
    dfab *fabric;
    session *buckets[SESSION_BUCKETS];
    unsigned count;
    unsigned max_sessions;
    unsigned max_per_peer;          /* sessions of one endpoint (0: max_sessions) */
    unsigned rx_pool;               /* receive buffers shared by all sessions */
    unsigned max_opens;             /* open states per session (0: default) */
    /* Recently closed or expired sessions: id -> address, so that a late
     * request still gets a BADSESSION reply; the address leaves the AV when
     * its tombstone is recycled. */
    struct { uint64_t id; dfab_addr addr; } tomb[SESSION_TOMBSTONES];
    unsigned tomb_next;
    /* Called when a session closes (not at table destruction), with t->mu
     * held: it must not call back into the table.  The locks use it. */
    void (*on_close)(void *ctx, uint64_t id, int how); /* how: enum session_end */
    void *on_close_ctx;
} session_table;

/* Why a session ended, for what it leaves behind (its locks: locktab.h's
 * enum lt_end has the same values). */
enum session_end {
    SESSION_END_CLEAN = 1,  /* DISCONNECT */
    SESSION_END_LEASE = 2,  /* expired, evicted, or the client stopped progressing */
    SESSION_END_REINIT = 3, /* the client came back as a new incarnation */
};

int session_table_init(session_table *t, dfab *f, unsigned max_sessions, unsigned rx_pool);
void session_table_destroy(session_table *t); /* closes every session */

/* Parameters of a new session, negotiated by the caller. */
typedef struct session_params {
    const dafs_connect_req *req;
    dafs_connect_rep limits;
    uint16_t max_credits;
    dfab_addr addr;
    const uint8_t *peer;            /* the endpoint name, counted against max_per_peer */
    uint32_t peer_len;
} session_params;

/* Create a session (closing older incarnations of the same client id).
 * Returns DAFS_ST_OK with a referenced *out, or DAFS_ST_USERS when the
 * table holds max_sessions or the peer max_per_peer sessions already. */
int session_create(session_table *t, const session_params *p, int64_t now_ms, session **out);

/* Find a live session and take a reference; NULL if unknown/closed. */
session *session_acquire(session_table *t, uint64_t id);
void session_release(session_table *t, session *s);

/* Credit check for one incoming request (renews the lease).  True: admitted
 * and counted as outstanding; false: beyond the credits, refuse it. */
bool session_admit(session_table *t, session *s, int64_t now_ms);
/* Current grant, to put in a reply header; marks that the client has it. */
uint16_t session_grant_for_reply(session_table *t, session *s);
/* An admitted request has been answered. */
void session_request_done(session_table *t, session *s);

/* True once s has been closed (DISCONNECT, expiry, stuck client). */
bool session_is_closed(session_table *t, session *s);
/* Close a session (DISCONNECT).  False if it was already closed. */
bool session_close(session_table *t, session *s, enum session_end how, const char *why);
/* Address of a recently closed session, for a BADSESSION reply. */
bool session_tomb_addr(session_table *t, uint64_t id, dfab_addr *addr);
/* Remember an address that belongs to no session (refused CONNECT), so it
 * leaves the AV later. */
void session_tomb_add(session_table *t, uint64_t id, dfab_addr addr);
/* Expire sessions idle longer than their lease.  Returns how many. */
unsigned session_expire_idle(session_table *t, int64_t now_ms);

/* Live sessions now. */
unsigned session_count(session_table *t);

int64_t session_now_ms(void);

/* ---- administration (admin.c) ----------------------------------------- */

/* What `dafsctl sessions list` shows of one session, copied out. */
typedef struct session_info {
    uint64_t id;
    char client_id[DAFS_CLIENT_ID_MAX];
    uint32_t client_id_len;
    uint16_t grant;                 /* credits granted */
    uint32_t outstanding;           /* credits in use */
    int64_t idle_ms;
    uint32_t lease_ms;
    uint32_t opens;                 /* open states */
} session_info;

/* Copy out up to max sessions (their count, at most max, is returned; the
 * whole count in *total).  Allocation-free under the table lock. */
unsigned session_list(session_table *t, session_info *out, unsigned max, unsigned *total,
                      int64_t now_ms);
/* Close session id as the administrator asked: its client's next request
 * gets BADSESSION; its open state is released once its in-flight requests
 * finish.  False if no such open session. */
bool session_evict(session_table *t, uint64_t id);
/* Open sessions, and the sums of their grants and outstanding requests. */
void session_totals(session_table *t, unsigned *sessions, uint64_t *granted, uint64_t *in_use);

#endif
