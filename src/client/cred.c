/*
 * cred.c — credentials: under which identity the server runs our requests.
 *
 * Every request header carries a credential id that the server handed out
 * for a REGISTER_CRED (uid, gid, supplementary groups); 0 means anonymous.
 * At connect the session registers the calling process's effective identity
 * (geteuid, getegid, its supplementary groups) and
 * makes it the default: engine_send puts the default into every request
 * that names no credential.  dafs_set_cred swaps the default atomically, so
 * calls already running keep the id they started with and later calls use
 * the new one; the handle-level calls name their credential explicitly.
 *
 * A server that predates credentials answers REGISTER_CRED with BADOP; the
 * session then runs anonymous rather than failing to connect.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"

static int register_cred(dafs_session *s, uint32_t uid, uint32_t gid, unsigned ngroups,
                         const uint32_t *groups, uint32_t *id)
{
    if (ngroups > DAFS_GROUPS_MAX || (ngroups > 0 && groups == NULL))
        return -EINVAL;
    /* The list travels in one message: more groups than the negotiated
     * request size holds cannot be registered (rather than cut silently,
     * which would deny what the missing groups grant). */
    if ((size_t)ngroups * 4 + CRED_REQUEST_OVERHEAD > s->max_request)
        return -E2BIG;
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_REGISTER_CRED;
    req.u.cred.uid = uid;
    req.u.cred.gid = gid;
    req.u.cred.ngroups = ngroups;
    req.u.cred.groups = groups;
    dafs_reply rep;
    client_slot *slot;
    int rc = engine_call(s, &req, &rep, &slot);
    if (rc < 0)
        return rc;
    *id = rep.u.cred.cred_id;
    engine_release(slot);
    return *id == 0 ? -DAFS_EPROTO : 0; /* 0 is never a registered id */
}

/* The process's supplementary groups (a malloc'ed array in *out, NULL when
 * there are none or memory is short: then the primary group only). */
static unsigned process_groups(uint32_t **out)
{
    *out = NULL;
    int n = getgroups(0, NULL);
    if (n <= 0)
        return 0;
    gid_t *all = calloc((size_t)n, sizeof *all);
    uint32_t *groups = calloc((size_t)n, sizeof *groups);
    n = all != NULL && groups != NULL ? getgroups(n, all) : -1;
    for (int i = 0; i < n; i++)
        groups[i] = (uint32_t)all[i];
    free(all);
    if (n <= 0) {
        free(groups);
        return 0;
    }
    *out = groups;
    return (unsigned)n;
}

int cred_register_process(dafs_session *s)
{
    uint32_t *groups;
    unsigned ngroups = process_groups(&groups);
    /* A process in more groups than one request holds (thousands) still
     * connects, with the groups that fit, rather than not at all (an explicit
     * dafs_cred_register refuses instead: -E2BIG). */
    size_t fit = s->max_request > CRED_REQUEST_OVERHEAD
                     ? (s->max_request - CRED_REQUEST_OVERHEAD) / 4
                     : 0;
    if (ngroups > fit)
        ngroups = (unsigned)fit;
    uint32_t id = 0;
    int rc = register_cred(s, (uint32_t)geteuid(), (uint32_t)getegid(), ngroups, groups, &id);
    free(groups);
    if (rc == -DAFS_EBADOP)
        return 0; /* an older server: stay anonymous */
    if (rc < 0)
        return rc;
    s->process_cred = id;
    atomic_store(&s->default_cred, id);
    return 0;
}

int cred_id_for(dafs_session *s, const dafs_cred *c, uint32_t *id)
{
    if (c == NULL) {
        *id = 0; /* engine_send fills in the default */
        return 0;
    }
    if (c->s != s)
        return -EINVAL;
    *id = c->id;
    return 0;
}

int dafs_cred_register(dafs_session *s, uint32_t uid, uint32_t gid, unsigned ngroups,
                       const uint32_t *groups, dafs_cred **out)
{
    if (s == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    dafs_cred *c = calloc(1, sizeof *c);
    if (c == NULL)
        return -ENOMEM;
    int rc = register_cred(s, uid, gid, ngroups, groups, &c->id);
    if (rc < 0) {
        free(c);
        return rc;
    }
    c->s = s;
    *out = c;
    return 0;
}

int dafs_cred_release(dafs_cred *c)
{
    if (c == NULL)
        return -EINVAL;
    dafs_session *s = c->s;
    unsigned id = c->id;
    /* If it is the default, fall back to the process identity first. */
    (void)atomic_compare_exchange_strong(&s->default_cred, &id, s->process_cred);
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_RELEASE_CRED;
    req.u.cred_id.cred_id = c->id;
    int rc = engine_call_simple(s, &req);
    free(c);
    return rc;
}

int dafs_set_cred(dafs_session *s, dafs_cred *c)
{
    if (s == NULL || (c != NULL && c->s != s))
        return -EINVAL;
    atomic_store(&s->default_cred, c != NULL ? c->id : s->process_cred);
    return 0;
}
