/*
 * worker.h — the worker pool: threads that execute requests, each with its
 * own io_uring, registered bounce buffer (max_io bytes) and REPLY_BUFS
 * registered reply buffers (max_response bytes each).  A worker runs the
 * ops (opctx.h) with its io_uring and bounce buffer as their op_io; the
 * ops know nothing of this header.
 */
#ifndef DAFSD_WORKER_H
#define DAFSD_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>

#include "opctx.h"
#include "server.h"

/* A posted fabric operation a worker waits for; the network thread's
 * dfab_progress() completes it. */
typedef struct fabric_wait {
    dfab_op op;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    int status;
} fabric_wait;

/* The buffers one fabric operation may use.  When a client stops
 * progressing, the worker gives up waiting, keeps the set (the provider may
 * still touch it) on an orphan list until its completion arrives, and
 * continues with a fresh set. */
/* One part of a grouped RMA (op_io.rma_many, for batches). */
typedef struct worker_rma_part_op {
    dfab_op op;
    struct worker_bufs *b;
    unsigned index;
} worker_rma_part_op;

typedef struct worker_bufs {
    fabric_wait wait;
    /* rma_many: its parts complete into wait (guarded by wait.mu) */
    worker_rma_part_op parts[OPCTX_RMA_GROUP];
    int part_status[OPCTX_RMA_GROUP];
    unsigned parts_left;
    uint8_t *bounce;
    dfab_mr *bounce_mr;
    struct worker_bufs *next_orphan;
} worker_bufs;

/* A registered reply buffer.  The worker posts the reply and moves on; the
 * send's completion (network thread, or inside dfab_send when injected)
 * returns the buffer to its worker's free list and drops the session
 * reference.  A buffer whose client stopped progressing is retired: it is
 * never reused, and is freed once its completion arrives. */
#define REPLY_BUFS 8
typedef struct reply_buf {
    dfab_op op;
    struct worker *w;
    uint8_t *mem;
    dfab_mr *mr;
    session *sess;          /* held while in flight; NULL once retired */
    bool in_flight;
    bool retired;
    struct reply_buf *next; /* free list or retired list */
} reply_buf;

typedef struct worker {
    server *srv;
    unsigned index;
    pthread_t thread;
    bool started;
    struct io_uring ring;
    bool ring_ready;
    worker_bufs *bufs;     /* current set */
    uint8_t *bounce;       /* == bufs->bounce */
    worker_bufs *orphans;  /* abandoned sets awaiting their completion */
    unsigned norphans;
    bool timed_out;        /* the current request gave up on its client */
    pthread_mutex_t reply_mu; /* guards the reply_* fields below */
    pthread_cond_t reply_cv;
    bool reply_ready;
    reply_buf *reply_all[REPLY_BUFS]; /* the live (not retired) buffers */
    reply_buf *reply_free;
    reply_buf *reply_retired;
    unsigned nreply_retired;
    unsigned replies_in_flight;      /* live buffers posted, not yet completed */
    reply_buf *reply;                /* the one the current request encodes into */
} worker;

/* Start the pool.  done(srv, slot) gives each finished request's receive
 * buffer back (dispatch.c's rx_repost; called on the worker thread). */
int workers_start(server *srv, void (*done)(server *srv, rx_slot *slot), const char **why);
/* Hand a decoded, admitted request to the pool (network thread). */
void workers_submit(server *srv, rx_slot *slot);
/* Number of requests queued or executing. */
unsigned workers_busy(server *srv);
void workers_stop(server *srv); /* joins; call once the queue is empty */
void workers_free(server *srv); /* after dfab_close: frees the workers and abandoned buffers */

#endif
