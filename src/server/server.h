/*
 * server.h — the dafsd process as one struct shared by its modules:
 * configuration, the fabric endpoint, the export, the session table, the
 * receive-buffer pool and the worker pool.
 */
#ifndef DAFSD_SERVER_H
#define DAFSD_SERVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "cred.h"
#include "durable.h"
#include "export.h"
#include "fdcache.h"
#include "proto.h"
#include "session.h"
#include "transport.h"

typedef struct server_config {
    const char *export_dir;
    const char *listen_node;
    const char *listen_service;
    const char *provider;
    const char *state_dir;
    const char *ready_file;
    unsigned threads;
    unsigned credits;       /* per-session ceiling */
    unsigned lease_ms;
    uint32_t max_request;   /* receive buffer size */
    uint32_t max_response;  /* reply buffer size */
    uint32_t inline_max;
    uint32_t max_io;        /* largest direct transfer (bounce buffer size) */
    unsigned rx_buffers;
    unsigned max_sessions;  /* --max-sessions */
    unsigned max_sessions_per_client; /* --max-sessions-per-client: per endpoint name */
    unsigned max_opens;     /* open states per session (--max-opens) */
    cred_policy policy;     /* root_squash / no_root_squash / all_squash, anon ids */
    bool read_only;         /* every modifying op gets DAFS_ST_ROFS */
    unsigned io_timeout_ms; /* longest wait for one RMA or reply completion */
    const char *admin_socket;   /* NULL: STATE_DIR/admin.sock; "none": no socket */
    const char *metrics_listen; /* HOST:PORT of the Prometheus endpoint, or NULL */
} server_config;

struct server;

/* One posted receive buffer; travels to a worker with its request. */
typedef struct rx_slot {
    dfab_op op;
    struct server *srv;
    uint8_t *buf;
    size_t len;            /* bytes received */
    dafs_request req;      /* decoded request, points into buf */
    session *sess;         /* referenced while the request is in flight */
    uint64_t t_recv;       /* stats_clock() at arrival, for the latency statistics */
    struct rx_slot *next;  /* work queue link */
} rx_slot;

/* A small registered buffer for replies the network thread sends itself. */
typedef struct ctl_reply {
    dfab_op op;
    struct server *srv;
    uint8_t *buf;
    struct ctl_reply *next_free;
} ctl_reply;

typedef struct work_queue {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rx_slot *head, *tail;
    unsigned busy;         /* requests queued or executing */
    bool stop;
    void (*done)(struct server *srv, rx_slot *slot); /* gives the receive buffer back */
} work_queue;

struct worker;

typedef struct server {
    server_config cfg;
    dfab *fabric;
    const dfab_limits *limits;
    dafs_export exp;
    session_table sessions;
    uint64_t instance;     /* random per start: server_instance and write verifier */
    fdcache fds;           /* open fds by handle + identity + mode */
    durable_dirs durable;  /* directories changed since the last commit */
    struct locktab *locks; /* byte-range locks (ops_lock.c) */
    struct lockdb *lockdb; /* their stable part: STATE_DIR/locks.mdb */
    struct undo_set *undo; /* AUTORECOVER undo logs: STATE_DIR/undo */
    int undo_dirfd;        /* -1 until open */

    uint8_t *rx_mem;
    dfab_mr *rx_mr;
    rx_slot *rx_slots;

    uint8_t *ctl_mem;
    dfab_mr *ctl_mr;
    ctl_reply *ctl_slots;
    ctl_reply *ctl_free;   /* touched only by the network thread */

    work_queue queue;
    struct worker *workers;
    unsigned nworkers;

    volatile sig_atomic_t stopping;
    bool draining;         /* no new requests are dispatched */
} server;

#define CTL_REPLY_SLOTS 256
#define CTL_REPLY_SIZE 256

#endif
