/*
 * batch.h — BATCH_SUBMIT and HURRY_UP (batch.c), run on a worker like any op,
 * plus the two hooks the network thread and the session table call.  Only
 * forward declarations here, so that session.c and dispatch.c do not pull in
 * the ops.
 */
#ifndef DAFSD_BATCH_H
#define DAFSD_BATCH_H

struct op_ctx;
struct server;
struct session;

/* BATCH_SUBMIT or HURRY_UP: encodes the whole reply itself (encoded_len).
 * Returns a DAFS_ST_* status for the request as a whole. */
int batch_execute(struct op_ctx *c);
/* Network thread, after every progress call: send asynchronous completions
 * whose latency window has passed (or that waited for buffers or grant). */
void batch_tick(struct server *srv);
/* Free a session's asynchronous state (session.c, when the session is freed:
 * no notification is in flight then, each holds a session reference). */
void batch_session_free(struct session *s);

#endif
