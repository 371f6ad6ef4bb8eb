/*
 * transport.h — dafs's only window onto libfabric.
 *
 * One `dfab` is one reliable-datagram endpoint (FI_EP_RDM, FI_MSG|FI_RMA)
 * with its fabric, domain, address vector and completion queue.  Everything
 * above this module (server, client library, benchmark) talks in terms of
 * posting messages and RMA and getting completions back through callbacks;
 * provider quirks (mr_mode bits, ordering, waiting, inject sizes, splitting
 * large RMA) stay in here, the way Redis's ae.c hides epoll.
 *
 * Completions: every post takes a `dfab_op *` that the caller embeds in its
 * own struct; when the operation completes, dfab_progress() (called by
 * whichever thread is progressing) calls op->done exactly once, with status 0
 * or a negative errno.  Callbacks run in the progressing thread and must be
 * short; they may post new operations.
 *
 * Threads: the endpoint is opened FI_THREAD_SAFE, so any thread may post.
 * dfab_progress() may be called from several threads, but callers normally
 * keep one progressing thread at a time (the server's network thread; on the
 * client, whichever caller is waiting).
 *
 * Read-data visibility: dfab_rma_write() with `visible_before_reply` makes
 * sure that data written into the peer's memory is visible there before any
 * message sent after the write's completion callback.  When the provider
 * orders send-after-write (FI_ORDER_SAW on both sides) the write completes
 * normally and a reply can follow; otherwise it is posted with
 * FI_DELIVERY_COMPLETE.  Callers therefore always send the reply from the
 * write's completion callback (or after it), never before.
 */
#ifndef DAFS_TRANSPORT_H
#define DAFS_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct dfab dfab;
typedef uint64_t dfab_addr;          /* fi_addr_t */
#define DFAB_ADDR_UNSPEC UINT64_MAX  /* FI_ADDR_UNSPEC / FI_ADDR_NOTAVAIL */

typedef struct dfab_op dfab_op;
struct dfab_op {
    /* status: 0 or negative errno.  len: bytes received (receives only).
     * src: sender's address when the provider reports it, else DFAB_ADDR_UNSPEC. */
    void (*done)(dfab_op *op, int status, size_t len, dfab_addr src);
    /* private to the transport (split RMA bookkeeping) */
    int parts_left;
    int first_error;
};

typedef struct dfab_config {
    const char *provider; /* NULL: DAFS_PROVIDER, then FI_PROVIDER, then libfabric's order */
    const char *node;     /* host to bind (server) or to reach (client); NULL = "127.0.0.1" */
    const char *service;  /* port (server) — "0" lets the provider pick; NULL for a client */
    bool listen;          /* server: bind to node:service (FI_SOURCE) */
} dfab_config;

typedef struct dfab_limits {
    char provider[64];     /* e.g. "tcp;ofi_rxm", "shm" */
    size_t max_msg_size;   /* largest single send or RMA */
    size_t inject_size;    /* sends at most this big use fi_inject */
    size_t rma_iov_limit;
    size_t tx_size, rx_size;
    uint64_t mr_mode;      /* FI_MR_* bits granted */
    bool write_then_send_ordered; /* FI_ORDER_SAW honoured */
    /* Sends up to this many bytes are delivered with one copy through the
     * provider's buffers; a larger one costs the receiver an extra step
     * (shm: a process_vm_readv system call and an acknowledgement), so a
     * small RMA write plus a short message can beat one long message.
     * SIZE_MAX when the provider shows no such step below max_msg_size. */
    size_t eager_msg_max;
    bool virt_addr;        /* remote addresses are virtual addresses */
    /* Receive completions name the sender (FI_SOURCE): a message from a peer
     * in the address vector reports its dfab_addr, one from any other peer
     * DFAB_ADDR_UNSPEC (tcp;ofi_rxm).  False where src cannot tell senders
     * apart: none reported, or shm 1.17, which reports 0 for every sender. */
    bool reports_source;
} dfab_limits;

/* Registered memory. `remote_addr` is what a peer must use as the RMA address
 * of `base` (base itself under FI_MR_VIRT_ADDR, else 0). */
typedef struct dfab_mr {
    void *base;
    size_t len;
    void *desc;            /* fi_mr_desc, for local use */
    uint64_t key;          /* fi_mr_key, for the peer */
    uint64_t remote_addr;
    void *fid;             /* struct fid_mr *, private */
} dfab_mr;

#define DFAB_ACCESS_LOCAL 0x1u        /* used as a local send/recv/RMA buffer */
#define DFAB_ACCESS_REMOTE_READ 0x2u  /* the peer may RMA-read it */
#define DFAB_ACCESS_REMOTE_WRITE 0x4u /* the peer may RMA-write it */

/* One remote segment for RMA. */
typedef struct dfab_rseg {
    uint64_t addr;
    uint64_t key;
    uint64_t len;
} dfab_rseg;

/* Open an endpoint.  Returns 0 or negative errno; on failure *errmsg (if
 * non-NULL) points to a static or thread-local description. */
int dfab_open(const dfab_config *cfg, dfab **out, const char **errmsg);
/* Close every dfab_mr of this endpoint first (the domain cannot close under
 * live registrations).  Operations still pending are dropped without their
 * callbacks being called. */
void dfab_close(dfab *f);

const dfab_limits *dfab_get_limits(const dfab *f);

/* This endpoint's address, to send to a peer (e.g. in CONNECT). */
int dfab_getname(dfab *f, void *addr, size_t *len);
/* Insert a peer's endpoint name (from dfab_getname on its side). */
int dfab_insert_name(dfab *f, const void *addr, size_t len, dfab_addr *out);
/* Client: resolve and insert the server at node:service. */
int dfab_resolve(dfab *f, const char *node, const char *service, dfab_addr *out);
/* Client, before the first message: is a server at node:service reachable
 * over this endpoint's provider?  tcp: a plain TCP connect; shm: is the
 * region's owner alive.  0 when it is (or the provider offers no cheap
 * check), else -ECONNREFUSED (nothing there), -EHOSTUNREACH (no route, or
 * the name does not resolve), -ENETUNREACH, -EAFNOSUPPORT (address family
 * not usable), -ETIMEDOUT (no answer within timeout_ms) or -EPROTOTYPE (a
 * server is there, on another provider: tcp vs shm).  *errmsg (if non-NULL)
 * then describes it.  See fabric_peer.c for why libfabric cannot tell. */
int dfab_check_peer(dfab *f, const char *node, const char *service, int timeout_ms,
                    const char **errmsg);
/* shm only: true once the server last checked by dfab_check_peer is known to
 * have exited.  libfabric 1.17's shm takes spin locks inside the shared
 * regions (the peer's to queue a message, our own to read one), and a peer
 * killed while holding one makes every later send or CQ read spin forever.
 * So every post and every CQ read here asks first (one flock(2)) and fails
 * with -ECONNRESET once the server is gone.  A peer that dies during a call
 * can still catch it; that window is microseconds.  Always false on other
 * providers, whose operations fail by themselves. */
bool dfab_peer_lost(dfab *f);
/* Server: the port actually bound (useful after service "0"), as text. */
int dfab_bound_service(dfab *f, char *buf, size_t len);
/* Forget a peer (session closed). */
int dfab_remove_addr(dfab *f, dfab_addr addr);

int dfab_mr_reg(dfab *f, void *buf, size_t len, unsigned access, dfab_mr **out);
void dfab_mr_close(dfab_mr *mr); /* NULL is fine */

/* Post a receive of up to len bytes into buf (inside mr). */
int dfab_post_recv(dfab *f, void *buf, size_t len, dfab_mr *mr, dfab_op *op);
/* Send len bytes from buf (inside mr, or NULL when len <= inject_size; the
 * transport then injects and calls op->done right away if op != NULL).
 * Every post (send, recv, RMA) retries a full queue itself, driving the
 * provider, for up to 5 s, then fails with -ETIMEDOUT: callers never see
 * -EAGAIN. */
int dfab_send(dfab *f, dfab_addr dst, const void *buf, size_t len, dfab_mr *mr, dfab_op *op);

/* RMA between local [buf, buf+len) (inside mr) and the peer's segments, in
 * order; split to max_msg_size and rma_iov_limit; op->done once after every
 * part completes (first error wins).  sum(segs.len) must be >= len. */
int dfab_rma_write(dfab *f, dfab_addr dst, const void *buf, size_t len, dfab_mr *mr,
                   const dfab_rseg *segs, size_t nsegs, bool visible_before_reply, dfab_op *op);
int dfab_rma_read(dfab *f, dfab_addr dst, void *buf, size_t len, dfab_mr *mr,
                  const dfab_rseg *segs, size_t nsegs, dfab_op *op);

/*
 * Reap completions and call their callbacks.  Polls briefly (~30 µs of
 * spinning), then, if timeout_ms != 0 and nothing completed, blocks until a
 * completion, dfab_wake(), or the timeout (-1 = no timeout).  Never spins for
 * long on an idle endpoint.  Returns the number of completions handled (>= 0)
 * or a negative errno.
 */
int dfab_progress(dfab *f, int timeout_ms);
/* Reap what the CQ holds now and return: no spinning, no blocking (an event
 * loop polling between other work).  Returns completions handled or -errno. */
int dfab_poll(dfab *f);
/* Make a blocked dfab_progress() return soon (any thread, signal-safe). */
void dfab_wake(dfab *f);

#endif
