/*
 * worker.h — the worker pool: threads that execute requests, each with its
 * own io_uring, registered bounce buffer (max_io bytes) and registered reply
 * buffer (max_response bytes).
 */
#ifndef DAFSD_WORKER_H
#define DAFSD_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>

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
typedef struct worker_bufs {
    fabric_wait wait;
    uint8_t *bounce;
    dfab_mr *bounce_mr;
    uint8_t *reply;
    dfab_mr *reply_mr;
    struct worker_bufs *next_orphan;
} worker_bufs;

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
} worker;

int workers_start(server *srv, const char **why);
/* Hand a decoded, admitted request to the pool (network thread). */
void workers_submit(server *srv, rx_slot *slot);
/* Number of requests queued or executing. */
unsigned workers_busy(server *srv);
void workers_stop(server *srv); /* joins; call once the queue is empty */
void workers_free(server *srv); /* after dfab_close: frees the workers and abandoned buffers */

/* File I/O through the worker's io_uring.  Return 0 or -errno. */
int worker_file_read(worker *w, int fd, void *buf, size_t len, uint64_t off, size_t *got);
int worker_file_write(worker *w, int fd, const void *buf, size_t len, uint64_t off);
int worker_file_sync(worker *w, int fd, bool datasync);

/* RMA with the session's client, waiting for completion.  Return 0 or -errno. */
int worker_rma_write(worker *w, dfab_addr dst, size_t len, const dafs_seg *segs, unsigned nsegs);
int worker_rma_read(worker *w, dfab_addr src, size_t len, const dafs_seg *segs, unsigned nsegs);

#endif
