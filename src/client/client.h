/*
 * client.h — libdafs internals shared by the files of src/client/.
 *
 * The library is split by concern:
 *   engine.c   request slots, credits and the "caller progresses" wait loop
 *   session.c  dafs_connect/dafs_disconnect, the lease keepalive thread
 *   path.c     path walking and the metadata calls (stat, mkdir, ...)
 *   file.c     open/close and the chunked, pipelined pread/pwrite
 *   dir.c      opendir/readdir
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
#include <stdbool.h>
#include <stdint.h>

#include "dafs/dafs.h"
#include "proto.h"
#include "transport.h"

#define CLIENT_DEFAULT_CREDITS 32u
#define CLIENT_MAX_SLOTS 1024u          /* slot index lives in the low 16 bits of an xid */
#define CLIENT_EXTRA_RECVS 4u           /* receives posted beyond the slot count */
#define CLIENT_DEFAULT_TIMEOUT_MS 30000u
#define CLIENT_INLINE_MAX (32u * 1024u) /* proposed inline payload limit */
#define CLIENT_MSG_OVERHEAD 1024u       /* header + body fields around inline data */
#define CLIENT_PIPELINE_DEPTH 8u        /* chunks of one large I/O in flight */
#define CLIENT_PROGRESS_SLICE_MS 100    /* longest single block in dfab_progress */
#define CLIENT_PROBE_MS 2000u           /* silence with requests outstanding before a probe */

struct dafs_session;

/* One posted receive buffer. op must stay first (callbacks cast back). */
typedef struct client_rx {
    dfab_op op;
    struct dafs_session *s;
    uint8_t *buf;
} client_rx;

/* One request slot: a registered send buffer and the state of the request
 * using it.  xid = generation << 16 | index, so a late reply to an earlier
 * use of the slot is recognised and dropped. */
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

    /* buffers */
    uint32_t nslots, nrecv;
    client_slot *slots;
    client_rx *rx;
    uint8_t *send_mem, *recv_mem;
    dfab_mr *send_mr, *recv_mr;
    size_t send_size, recv_size; /* bytes per buffer */

    /* engine state, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* any slot/credit/progress-role change */
    uint32_t grant;           /* latest credit grant from the server (>= 1) */
    uint32_t outstanding;     /* busy slots */
    bool progressing;         /* some caller holds the progress role */
    int broken;               /* 0, or the error every call now returns */
    uint64_t last_send_ms;
    uint64_t last_reply_ms;   /* any reply received */

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
/* Encode req (header fields opcode/session/xid filled here) and send it. */
int engine_send(client_slot *slot, dafs_request *req);
/* Wait for the reply; on success rep is decoded (and points into the slot's
 * receive buffer, valid until engine_release).  Returns 0 or a negative error:
 * a transport failure, or the mapped non-OK status of the reply. */
int engine_wait(client_slot *slot, dafs_reply *rep);
void engine_release(client_slot *slot);
/* acquire + send + wait.  On success the slot is still held (rep points into
 * it) and the caller must engine_release(*slot_out); on failure it is already
 * released. */
int engine_call(dafs_session *s, dafs_request *req, dafs_reply *rep, client_slot **slot_out);
/* A call whose reply body is not needed. */
int engine_call_simple(dafs_session *s, dafs_request *req);

/* ---- errors.c ---- */
int client_map_status(int32_t status);

/* ---- mem.c ---- */
/* Find a dafs_mem_register'ed region holding [buf, buf+len). */
dfab_mr *mem_find_region(dafs_session *s, const void *buf, size_t len);
void mem_free_all(dafs_session *s);

/* ---- path.c ---- */
/* Resolve a whole path to fh (+ attr). */
int path_resolve(dafs_session *s, const char *path, dafs_fh *fh, dafs_attr *attr);
/* Resolve the parent of path and copy its last component into name.
 * Returns -EINVAL-style errors; *has_name false when path is the root. */
int path_resolve_parent(dafs_session *s, const char *path, dafs_fh *dir, char *name,
                        bool *has_name);
int client_getattr(dafs_session *s, const dafs_fh *fh, dafs_attr *attr);
void attr_to_stat(const dafs_attr *a, struct dafs_stat *st);

#endif
