/*
 * cred.h — caller credentials: the per-session table of registered
 * credentials (REGISTER_CRED / RELEASE_CRED), the export's squash policy,
 * and switching a worker thread's file-system identity to a credential.
 */
#ifndef DAFSD_CRED_H
#define DAFSD_CRED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "proto.h"

#define CRED_SLOTS 64        /* registered credentials per session */
#define CRED_ANON_ID 65534u  /* default anon uid and gid ("nobody") */

enum cred_squash { SQUASH_ROOT = 0, SQUASH_NONE = 1, SQUASH_ALL = 2 };

typedef struct cred_policy {
    enum cred_squash squash;
    uint32_t anon_uid, anon_gid;
} cred_policy;

/* A group list longer than CRED_INLINE_GROUPS: immutable, shared by the
 * table slot and every op_cred copied from it, freed with the last ref. */
typedef struct cred_groups {
    atomic_uint refs;
    uint32_t n;
    uint32_t ids[];
} cred_groups;

#define CRED_INLINE_GROUPS 32

/* One identity, after squashing.  Up to CRED_INLINE_GROUPS groups live in
 * groups[]; a longer list (up to DAFS_GROUPS_MAX) is in *more, which a copy
 * from cred_lookup holds a reference to until cred_put. */
typedef struct op_cred {
    uint32_t uid, gid;
    uint32_t ngroups;
    uint32_t groups[CRED_INLINE_GROUPS]; /* all of them when ngroups <= 32 */
    cred_groups *more;                   /* non-NULL iff ngroups > 32 */
} op_cred;

/* The ngroups ids of c. */
static inline const uint32_t *cred_group_ids(const op_cred *c)
{
    return c->more != NULL ? c->more->ids : c->groups;
}

typedef struct cred_table {
    pthread_mutex_t mu;
    bool used[CRED_SLOTS];
    op_cred slot[CRED_SLOTS];
} cred_table;

int cred_table_init(cred_table *t);
void cred_table_destroy(cred_table *t); /* also drops the slots' group lists */

/* Squash req under policy p and store it: DAFS_ST_OK and *id (1..CRED_SLOTS),
 * DAFS_ST_AGAIN when the table is full, DAFS_ST_INVAL for too many groups,
 * DAFS_ST_NOMEM when a long group list cannot be stored. */
int cred_register(cred_table *t, const cred_policy *p, const dafs_cred_req *req, uint32_t *id);
/* DAFS_ST_OK, or DAFS_ST_INVAL for an id that is not registered. */
int cred_release(cred_table *t, uint32_t id);
/* The credential for header cred id (0 = anonymous).  DAFS_ST_OK, or
 * DAFS_ST_PERM for an id that is not registered on this session.  Every
 * successful lookup is paired with cred_put(out). */
int cred_lookup(cred_table *t, const cred_policy *p, uint32_t id, op_cred *out);
void cred_put(op_cred *c);

/*
 * Thread identity.  cred_init() once at startup (switching is disabled when
 * dafsd is not root).  cred_enter() makes the calling thread's fsuid, fsgid
 * and supplementary groups those of c (raw per-thread syscalls, never the
 * process-wide glibc wrappers); cred_leave() ends the operation (the thread
 * keeps that identity, so the next request of the same user needs no
 * syscalls; file access outside cred_enter/cred_leave is not allowed on a
 * worker).  Between them,
 * cred_suspend()/cred_resume() bracket the few calls that need root's
 * capabilities (open_by_handle_at).  A failure to return to root aborts:
 * a worker must never continue under the wrong identity.
 */
void cred_init(void);
int cred_enter(const op_cred *c);
void cred_leave(void);
/* For a thread that must stay root between operations (the network thread,
 * which also opens the shm provider's regions): switch fully back to uid 0,
 * gid 0 and no groups after a cred_enter; no syscalls when the operation ran
 * as root.  Aborts if it cannot. */
void cred_return_to_root(void);
void cred_suspend(void);
void cred_resume(void);

#endif
