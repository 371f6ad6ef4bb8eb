/*
 * ops.h — one function per protocol operation, run on a worker thread.
 */
#ifndef DAFSD_OPS_H
#define DAFSD_OPS_H

#include <stddef.h>

#include "server.h"

struct worker;

/*
 * Everything one operation needs.  The reply header (xid, session, grant)
 * is prepared by the caller; the op fills the body of `rep` and returns a
 * DAFS_ST_* status, or encodes the whole reply itself into reply_buf and
 * sets encoded_len (READDIR).
 *
 * Credentials seam: requests do not carry a caller identity yet, so every
 * operation runs as dafsd's own user.  When they do, the decoded uid/gids
 * go here and ops switch to them (setfsuid/setfsgid per worker thread)
 * before touching the file system.
 */
typedef struct op_ctx {
    server *srv;
    struct worker *w;
    session *sess;
    const dafs_request *req;
    dafs_reply rep;
    uint8_t *reply_buf;
    size_t reply_cap;   /* the session's max_response */
    int encoded_len;
} op_ctx;

/* Execute c->req (a worker-side opcode).  Returns a DAFS_ST_* status. */
int ops_execute(op_ctx *c);

#endif
