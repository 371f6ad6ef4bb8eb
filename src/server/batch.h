/*
 * batch.h — BATCH_SUBMIT and HURRY_UP (batch.c), run on a worker like any op.
 */
#ifndef DAFSD_BATCH_H
#define DAFSD_BATCH_H

#include "ops.h"

/* BATCH_SUBMIT or HURRY_UP: encodes the whole reply itself (encoded_len).
 * Returns a DAFS_ST_* status for the request as a whole. */
int batch_execute(op_ctx *c);
/* Network thread, after every progress call: send asynchronous completions
 * whose latency window has passed (or that waited for buffers or grant). */
void batch_tick(server *srv);
/* Free a session's asynchronous state (session.c, when the session is freed:
 * no notification is in flight then, each holds a session reference). */
void batch_session_free(session *s);

#endif
