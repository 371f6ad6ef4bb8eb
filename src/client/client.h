/*
 * client.h — libdafs internals shared by the files of src/client/.
 *
 * The library is split by concern:
 *   engine.c   request slots, credits and the "caller progresses" wait loop
 *   cq.c       asynchronous I/O: completion groups, dafs_submit, dafs_cq_reap
 *   session.c  dafs_connect/dafs_disconnect, the lease keepalive thread
 *   ops.c      one function per namespace request (LOOKUP, SETATTR, ...)
 *   path.c     path walking (.., symlinks) and the path-based calls
 *   file.c     open/close, append and the chunked, pipelined pread/pwrite
 *   dir.c      opendir/readdir and the cookie-based dafs_h_readdir
 *   cred.c     credentials: the process identity, dafs_cred_*, dafs_set_cred
 *   handle.c   the handle-level dafs_h_* API over ops.c
 *   mem.c      dafs_mem_register and the registered-region lookup
 *   url.c      dafs:// URL parsing
 *   errors.c   wire status -> error code mapping, dafs_strerror
 *
 * Nothing here is visible outside the shared library: libdafs.map exports
 * only the functions of include/dafs/dafs.h.
 */
#ifndef DAFS_CLIENT_H
#define DAFS_CLIENT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "dafs/dafs.h"
#include "proto.h"
#include "transport.h"

#define CLIENT_DEFAULT_CREDITS 32u
#define CLIENT_MAX_SLOTS 1024u          /* slot index lives in the low 16 bits of an xid */
#define CLIENT_EXTRA_RECVS 4u           /* receives posted beyond the slot count */
#define CLIENT_NOTIFY_RECVS 8u          /* more for back-channel notifications (batch.c) */
#define CLIENT_DEFAULT_TIMEOUT_MS 30000u
#define CLIENT_INLINE_MAX (32u * 1024u) /* proposed inline payload limit */
#define CLIENT_MSG_OVERHEAD 1024u       /* header + body fields around inline data */
#define CLIENT_READ_REPLY_OVERHEAD 64u  /* READ_INLINE reply bytes besides the data */
#define CLIENT_PIPELINE_DEPTH 8u        /* chunks of one large I/O in flight */
#define CLIENT_PROGRESS_SLICE_MS 100    /* longest single block in dfab_progress */
#define CLIENT_PROBE_MS 2000u           /* silence with requests outstanding before a probe */
#define CLIENT_PROBE_REPLY_MS 5000u     /* an unanswered probe after this breaks the session */
#define CLIENT_SYMLINK_HOPS 40u         /* symlinks followed in one path before -ELOOP */
#define CLIENT_PATH_MAX 4096u           /* longest path accepted (with its NUL) */
#define CRED_REQUEST_OVERHEAD 128u      /* REGISTER_CRED bytes besides the group ids */

struct dafs_session;
struct client_aio;

/* One posted receive buffer. op must stay first (callbacks cast back). */
typedef struct client_rx {
    dfab_op op;
    struct dafs_session *s;
    uint8_t *buf;
} client_rx;

/* One request slot: a registered send buffer and the state of the request
 * using it.  xid = keyed hash of (generation, index) with index in the low
 * 16 bits (engine.c make_xid), so a late reply to an earlier use of the slot
 * is recognised and dropped, and an xid cannot be guessed.  The request state is guarded by
 * the slot's own mutex, so completions for different slots never contend;
 * lock order: session lock, then a slot's. */
typedef struct client_slot {
    dfab_op send_op; /* first: the send completion casts back */
    struct dafs_session *s;
    uint32_t index;
    uint64_t generation;
    uint64_t xid;
    uint16_t opcode; /* of the request, checked against the reply */
    uint8_t *sbuf;
    bool busy;       /* owned by a caller */
    bool sent;       /* send posted and not yet completed */
    bool send_done;
    int send_status;
    bool replied;
    client_rx *rx;   /* the receive holding the reply, until the caller reposts it */
    size_t rx_len;
    /* asynchronous owner (cq.c), under mtx: the slot belongs to aio, armed
     * once its send is posted; finished once its completion is claimed
     * (exactly one of the reply, a failed send or a broken session does) */
    struct client_aio *aio;
    bool aio_armed;
    bool aio_finished;
    uint64_t sent_ms;     /* when the async request went out (timeout check) */
    atomic_bool sleeping; /* the owner sleeps on wake and is owed one post */
    pthread_mutex_t mtx;  /* guards the request state above (busy .. rx_len) */
    sem_t wake;           /* the owner sleeps here: its reply, or the progress role.
                           * A semaphore, not a condvar: waking it takes one futex
                           * call and the woken owner never blocks on mtx. */
} client_slot;

typedef struct client_region {
    struct client_region *next;
    dfab_mr *mr;
    struct dafs_mr *handle;
} client_region;

struct dafs_session {
    dfab *fab;
    dfab_addr server;
    char provider[64];
    unsigned timeout_ms;

    /* negotiated */
    uint64_t session_id;
    uint64_t server_instance;
    uint32_t max_request, max_response, inline_max, max_io, lease_ms;
    uint16_t max_segs;
    dafs_fh root;

    /* credentials: ids from REGISTER_CRED; 0 = anonymous */
    uint32_t process_cred;    /* the identity registered at connect */
    atomic_uint default_cred; /* used by requests that name none (dafs_set_cred) */

    /* buffers */
    uint32_t nslots, nrecv;
    client_slot *slots;
    bool slot_sync_made;      /* every slots[i].mtx and .wake initialised */
    client_rx *rx;
    uint8_t *send_mem, *recv_mem;
    dfab_mr *send_mr, *recv_mr;
    size_t send_size, recv_size; /* bytes per buffer */

    /* engine state: slot allocation under lock, the rest atomic */
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* credit waiters sleep here (a slot freed, the role free) */
    atomic_uint credit_waiters; /* threads blocked on cond in engine_acquire */
    atomic_uint reply_sleepers; /* slot owners blocked on their own semaphore */
    atomic_uint grant;        /* latest credit grant from the server (>= 1) */
    uint32_t outstanding;     /* busy slots, under lock */
    atomic_bool progressing;  /* some caller holds the progress role */
    atomic_int broken;        /* 0, or the error every call now returns (set under lock) */
    _Atomic uint64_t last_send_ms;
    _Atomic uint64_t last_reply_ms; /* any reply received */
    uint64_t xid_key, xid_key2; /* random per session: xids cannot be guessed */
    bool src_checked;         /* the provider names senders: replies must come from server */
    bool debug;               /* DAFS_DEBUG set: log dropped replies */
    atomic_uint_fast64_t dropped_replies; /* forged, stale or foreign replies dropped */

    /* asynchronous I/O (cq.c).  Under lock: the FIFO of submissions waiting
     * for a slot or a credit, and the list of completion groups. */
    struct client_aio *aio_head, *aio_tail;
    atomic_uint aio_pending;  /* entries in that FIFO */
    atomic_uint aio_inflight; /* submitted and not yet completed, every group */
    atomic_uint reap_waiters; /* reapers asleep on their group's condition */
    atomic_uint aio_batches;  /* BATCH_SUBMIT requests that carried queued I/Os (white box) */
    atomic_uint aio_batched;  /* I/Os that travelled inside them */
    struct dafs_cq *cqs;
    /* the progress helper (started by dafs_cq_fd), see cq.c */
    pthread_t helper;
    bool helper_running;
    bool helper_stop;         /* under lock */
    atomic_bool helper_idle;  /* asleep on helper_cond */
    atomic_bool helper_role;  /* holds the progress role */
    pthread_cond_t helper_cond;
    /* asynchronous batches (batch.c) */
    atomic_uint bc_granted;   /* notifications the client can take since CONNECT (cumulative) */
    atomic_uint bc_told;      /* the grant last sent to the server */
    _Atomic(struct batch_async *) async; /* in-flight asynchronous entries; NULL until used */
    pthread_mutex_t async_lock; /* creates async */

    /* registered regions (dafs_mem_register) */
    pthread_mutex_t regions_lock;
    client_region *regions;

    /* lease keepalive */
    pthread_t keepalive;
    bool keepalive_running;
    bool keepalive_stop;      /* under lock */
    bool stopping;            /* under lock: endpoint closing, ignore errors */
    pthread_cond_t keepalive_cond;
};

struct dafs_file {
    dafs_session *s;
    dafs_fh fh;
    int flags;
    uint32_t cred; /* the session default at open time (or the opener's), used for its I/O */
    dafs_stateid stateid; /* the server's open state; 0 = none (I/O checked as cred) */
    atomic_uint aio_inflight; /* asynchronous I/O submitted and not completed */
};

struct dafs_cred {
    dafs_session *s;
    uint32_t id;
};

struct dafs_mr {
    dafs_session *s;
    client_region *region;
};

/* ---- engine.c ---- */
int engine_init(dafs_session *s, uint32_t nslots, size_t send_size, size_t recv_size);
void engine_fini(dafs_session *s);
uint64_t engine_now_ms(void);
/* Take a slot, waiting (and progressing) while the credit grant is used up.
 * blocking=false returns -EAGAIN instead of waiting. */
int engine_acquire(dafs_session *s, bool blocking, client_slot **out);
/* Encode req (header fields session/xid filled here) and send it.  A request
 * whose hdr.cred is 0 goes out under the session's default credential. */
int engine_send(client_slot *slot, dafs_request *req);
/* Wait for the reply; on success rep is decoded (and points into the slot's
 * receive buffer, valid until engine_release).  Returns 0 or a negative error:
 * a transport failure, or the mapped non-OK status of the reply. */
int engine_wait(client_slot *slot, dafs_reply *rep);
/* engine_wait with its own timeout (a probe's); expiry still breaks the session. */
int engine_wait_for(client_slot *slot, dafs_reply *rep, unsigned timeout_ms);
void engine_release(client_slot *slot);
/* Mark the session broken with err (if not already) and wake every waiter. */
void engine_break(dafs_session *s, int err);
/* acquire + send + wait.  On success the slot is still held (rep points into
 * it) and the caller must engine_release(*slot_out); on failure it is already
 * released. */
int engine_call(dafs_session *s, dafs_request *req, dafs_reply *rep, client_slot **slot_out);
/* A call whose reply body is not needed. */
int engine_call_simple(dafs_session *s, dafs_request *req);
/* Take a free slot if the credit grant allows one now, else NULL; s->lock
 * held.  (engine_acquire without waiting, for cq.c.) */
client_slot *engine_take_slot_locked(dafs_session *s);
/* Give a slot back (its receive reposted) without starting queued async
 * submissions: the caller does that (aio_kick). */
void engine_free_slot(client_slot *slot);
/* The progress role (see engine.c): take it (true) or not; progress while
 * holding it, which also gives it up; pass it on to a waiter when leaving. */
bool engine_take_role(dafs_session *s);
void engine_progress(dafs_session *s, int slice_ms);
void engine_pass_role(dafs_session *s);
/* Slot of an async request, mtx held: claim its completion if it is due
 * (reply in, send failed, or the session broken); true at most once. */
bool engine_aio_claim_locked(client_slot *slot);

/* ---- cq.c ---- */
/* The async request on slot was claimed (engine_aio_claim_locked): turn it
 * into a completion, free the slot, send what is queued.  No lock held. */
void aio_slot_done(client_slot *slot);
/* Send queued async submissions while slots and credits allow. */
void aio_kick(dafs_session *s);
/* The session broke: complete every async I/O still in flight or queued
 * with the session's error, each exactly once. */
void aio_fail_all(dafs_session *s);
/* The progress role is free and no synchronous caller wants it: wake a
 * reaper or the helper that still needs it. */
void aio_pass_role(dafs_session *s);
/* dafs_disconnect: destroy the groups left, stop the helper. */
void aio_session_end(dafs_session *s);

/* Progress the endpoint for up to timeout_ms if no other thread does (else
 * let that one deliver, sleeping at most 1 ms); 0 or a negative error. */
int engine_progress_wait(dafs_session *s, int timeout_ms);

/* ---- batch.c: entries of a BATCH_SUBMIT, shared by dafs_batch and cq.c ----
 * batch_entry_describe checks io and fills *e except its RMA segment (no
 * lock taken, no registration); a WRITE/APPEND of at most inline_max bytes
 * (and the session's inline limit) carries its data in the entry.  Returns
 * 0 or the error the I/O fails with.
 * batch_entry_seg fills the segment of a non-inline READ/WRITE/APPEND entry:
 * from mr when given (a registration covering io->buf), else a
 * dafs_mem_register'ed region, else a registration made now (*own, closed
 * by the caller once the request is done).  batch_entry_size bounds an
 * entry's encoded size; a request holds batch_req_room(s) bytes of entries
 * and at most batch_max_entries(s) entries (its reply within max_response). */
int batch_entry_describe(const dafs_session *s, const dafs_io *io, size_t inline_max,
                         dafs_batch_entry *e);
int batch_entry_seg(dafs_session *s, const dafs_io *io, dfab_mr *mr, dafs_batch_entry *e,
                    dfab_mr **own);
size_t batch_entry_size(const dafs_batch_entry *e);
size_t batch_req_room(const dafs_session *s);
unsigned batch_max_entries(const dafs_session *s);
/* A BATCH_SUBMIT request of n entries (mode DAFS_BATCH_SYNC or _ASYNC)
 * under credential cred; asynchronous fields (window, N, grant) stay 0. */
void batch_request_init(dafs_request *req, uint32_t mode, uint32_t cred,
                        const dafs_batch_entry *ent, unsigned n);

/* ---- batch.c: asynchronous batches (internal API for completion groups) ----
 * batch_async_submit sends ios as asynchronous BATCH_SUBMIT entries; each one
 * completes exactly once through cb (with its user_data, res and offset),
 * called from whichever thread progresses the session (keep it short; it may
 * not call back into the session's blocking calls).  A server that pushes
 * back (WHOA) is waited on: the batch is sent again after completions arrive,
 * nothing is lost.  num_completions: DAFS_BATCH_NOTIFY_ALL, N, or 0 (keep);
 * usec_window 0 keeps the server's.  Returns how many of ios were taken (a
 * prefix: the table of in-flight entries holds CLIENT_ASYNC_MAX), or -error
 * when none was.  If the session dies, every entry in flight completes with
 * the error, exactly once: at once when engine_break() marks it, else (a
 * break noticed inside the progress callbacks) at the next batch_async_*
 * call, and at the latest at dafs_disconnect (-DAFS_EBADSESSION). */
#define CLIENT_ASYNC_MAX 4096u
typedef void (*batch_async_cb)(void *arg, const dafs_cqe *cqe);
int batch_async_submit(dafs_session *s, const dafs_io *ios, unsigned n, uint32_t num_completions,
                       uint32_t usec_window, batch_async_cb cb, void *arg);
/* HURRY_UP: ask the server for every pending completion now. */
int batch_async_hurry(dafs_session *s);
/* Progress until at most `left` entries are in flight or timeout_ms passes
 * (-ETIMEDOUT); renews the back-channel grant as notifications are used. */
int batch_async_wait(dafs_session *s, unsigned left, int timeout_ms);
unsigned batch_async_in_flight(dafs_session *s);
unsigned batch_async_notifications(dafs_session *s); /* received so far */
unsigned batch_async_pushbacks(dafs_session *s);     /* WHOA answers waited out so far */
/* engine.c: a NOTIFY message arrived (progress thread); and the session broke. */
void batch_notify(dafs_session *s, const uint8_t *buf, size_t len);
void batch_async_fail_all(dafs_session *s, int err);
void batch_async_free(dafs_session *s); /* at disconnect: fails what is left */

/* ---- errors.c ---- */
int client_map_status(int32_t status);

/* ---- mem.c ---- */
/* Find a dafs_mem_register'ed region holding [buf, buf+len). */
dfab_mr *mem_find_region(dafs_session *s, const void *buf, size_t len);
void mem_free_all(dafs_session *s);

/* ---- cred.c ---- */
/* Register the calling process's identity and make it the default. */
int cred_register_process(dafs_session *s);
/* The id to put in a header: c's, or 0 (= the session default) for NULL.
 * Returns -EINVAL when c belongs to another session. */
int cred_id_for(dafs_session *s, const dafs_cred *c, uint32_t *id);

/* ---- ops.c: one request each; cred 0 = the session default ---- */
int op_lookup(dafs_session *s, uint32_t cred, const dafs_fh *dir, const char *name,
              dafs_fh *fh, dafs_attr *attr);
int op_lookupp(dafs_session *s, uint32_t cred, const dafs_fh *dir, dafs_fh *fh,
               dafs_attr *attr);
int op_getattr(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_attr *attr);
/* sa->fh is filled in here; attr may be NULL. */
int op_setattr(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_setattr_req *sa,
               dafs_attr *attr);
/* Copies the target NUL-terminated into buf[len], len > DAFS_PATH_MAX. */
int op_readlink(dafs_session *s, uint32_t cred, const dafs_fh *fh, char *buf, size_t len,
                size_t *target_len);
/* OPEN, MKDIR, REMOVE, RMDIR: fh/attr/created may be NULL.  OPEN: the new
 * open state's id in *stateid; with stateid NULL the OPEN asks for none
 * (DAFS_OPEN_NOSTATE: handle-only users such as dafs_h_open). */
int op_dirop(dafs_session *s, uint32_t cred, uint16_t opcode, const dafs_fh *dir,
             const char *name, uint32_t flags, uint32_t mode, dafs_fh *fh, dafs_attr *attr,
             int *created, dafs_stateid *stateid);
/* OPEN_FH: open the existing file fh (DAFS_OPEN_* access | TRUNC). */
int op_open_fh(dafs_session *s, uint32_t cred, const dafs_fh *fh, uint32_t flags,
               dafs_attr *attr, dafs_stateid *stateid);
int op_symlink(dafs_session *s, uint32_t cred, const dafs_fh *dir, const char *name,
               const char *target, dafs_fh *fh, dafs_attr *attr);
int op_mknod(dafs_session *s, uint32_t cred, const dafs_fh *dir, const char *name,
             uint32_t mode, uint64_t rdev, dafs_fh *fh, dafs_attr *attr);
int op_link(dafs_session *s, uint32_t cred, const dafs_fh *fh, const dafs_fh *dir,
            const char *name, dafs_attr *attr);
int op_rename(dafs_session *s, uint32_t cred, const dafs_fh *sdir, const char *sname,
              const dafs_fh *ddir, const char *dname, unsigned flags);
int op_access(dafs_session *s, uint32_t cred, const dafs_fh *fh, int mask);
int op_close(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid stateid);
int op_commit(dafs_session *s, uint32_t cred, const dafs_fh *fh, uint32_t stable,
              dafs_stateid stateid);
int op_statfs(dafs_session *s, uint32_t cred, const dafs_fh *fh, struct dafs_statfs *st);
/* A name from the caller: 1..DAFS_NAME_MAX bytes, no '/'. */
int check_name(const char *name);
void attr_to_stat(const dafs_attr *a, struct dafs_stat *st);
void fh_from_handle(const dafs_handle *h, dafs_fh *fh);
void fh_to_handle(const dafs_fh *fh, dafs_handle *h);
int check_handle(const dafs_handle *h);

/* ---- hint.c ---- */
/* enum dafs_cache_hint (DAFS_HINT_*) -> DAFS_WIRE_HINT_*; -EINVAL if unknown. */
int client_hint_to_wire(int hint, uint32_t *out);

/* ---- path.c ---- */
/* Resolve a whole path to fh (+ attr): symlinks in the middle are followed,
 * a final one only when follow_final (or the path ends in '/'). */
int path_resolve(dafs_session *s, const char *path, bool follow_final, dafs_fh *fh,
                 dafs_attr *attr);
/* Resolve the parent of path (from start; NULL = the root) and copy its last
 * component into name.  *has_name false when path is the root. */
int path_resolve_parent_at(dafs_session *s, const dafs_fh *start, unsigned *hops,
                           const char *path, dafs_fh *dir, char *name, bool *has_name);
int path_resolve_parent(dafs_session *s, const char *path, dafs_fh *dir, char *name,
                        bool *has_name);
int client_getattr(dafs_session *s, const dafs_fh *fh, dafs_attr *attr);

/* ---- file.c ---- */
/* Data I/O and append on a handle under a credential (0 = default) and an
 * open state (0 = none). */
ssize_t file_io(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid stateid,
                bool write, void *buf, size_t len, uint64_t offset);
ssize_t file_append(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid stateid,
                    const void *buf, size_t len, uint64_t *offset);
/* file_io with a per-request cache hint (DAFS_WIRE_HINT_*) in every READ or
 * WRITE it sends; file_io sends DAFS_WIRE_HINT_NORMAL. */
ssize_t file_io_hint(dafs_session *s, uint32_t cred, const dafs_fh *fh, dafs_stateid stateid,
                     bool write, void *buf, size_t len, uint64_t offset, uint32_t hint);
/* The largest read that travels inline on s (see file.c). */
size_t file_read_inline_limit(const dafs_session *s);
/* A dafs_file for an open state the caller just got. */
int file_new(dafs_session *s, uint32_t cred, const dafs_fh *fh, int flags,
             dafs_stateid stateid, dafs_file **out);

#endif
