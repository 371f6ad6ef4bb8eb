/*
 * cred.c — registered credentials, squashing, and per-thread identity.
 *
 * Registration (DAFS REGISTER_CRED) stores an identity once per session; a
 * request names it by id in its header.  Ids are slot index + 1, so 0 stays
 * "anonymous" (the export's anon uid/gid, no groups).  Squash rules are
 * applied when a credential is registered:
 *   root_squash (default)  uid 0 -> anon uid; gid 0 and group 0 -> anon gid
 *   no_root_squash         stored as given
 *   all_squash             every identity -> anon uid/gid, no groups
 *
 * Workers run each operation under its credential by changing only their
 * own thread's fsuid, fsgid and supplementary groups: Linux keeps these per
 * thread, but glibc's setgroups()/setresuid() broadcast the change to every
 * thread, so the raw syscalls are used.  A non-zero fsuid drops the
 * file-system capabilities (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
 * CAP_FOWNER, CAP_CHOWN, CAP_MKNOD, ...) from the thread's effective set,
 * and fsuid 0 restores them, so the kernel enforces permissions, sticky
 * directories, setgid inheritance and ownership exactly as for that user.
 */
#include "cred.h"

#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "log.h"

#if defined(SYS_setfsuid32)
#define SYS_FSUID SYS_setfsuid32
#define SYS_FSGID SYS_setfsgid32
#define SYS_GROUPS SYS_setgroups32
#else
#define SYS_FSUID SYS_setfsuid
#define SYS_FSGID SYS_setfsgid
#define SYS_GROUPS SYS_setgroups
#endif

static bool switching = true;
static __thread const op_cred *current;
/* The identity this thread's fsuid/fsgid/groups hold now (valid once the
 * thread has switched at least once): cred_enter skips the three syscalls
 * when the next request runs as the same user. */
static __thread op_cred active;
static __thread bool active_known;

int cred_table_init(cred_table *t)
{
    memset(t->used, 0, sizeof(t->used));
    return pthread_mutex_init(&t->mu, NULL) == 0 ? 0 : -1;
}

static void groups_unref(cred_groups *g)
{
    if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1)
        free(g);
}

void cred_table_destroy(cred_table *t)
{
    for (unsigned i = 0; i < CRED_SLOTS; i++)
        if (t->used[i])
            groups_unref(t->slot[i].more);
    pthread_mutex_destroy(&t->mu);
}

void cred_put(op_cred *c)
{
    groups_unref(c->more);
    c->more = NULL;
}

/* Squash req into out; a list longer than CRED_INLINE_GROUPS goes to a new
 * cred_groups (one reference, the table's).  DAFS_ST_OK or DAFS_ST_NOMEM. */
static int squash(const cred_policy *p, const dafs_cred_req *req, op_cred *out)
{
    memset(out, 0, sizeof(*out));
    if (p->squash == SQUASH_ALL) {
        out->uid = p->anon_uid;
        out->gid = p->anon_gid;
        return DAFS_ST_OK;
    }
    bool root = p->squash == SQUASH_ROOT;
    out->uid = root && req->uid == 0 ? p->anon_uid : req->uid;
    out->gid = root && req->gid == 0 ? p->anon_gid : req->gid;
    out->ngroups = req->ngroups;
    uint32_t *ids = out->groups;
    if (req->ngroups > CRED_INLINE_GROUPS) {
        out->more = malloc(sizeof(cred_groups) + (size_t)req->ngroups * sizeof(uint32_t));
        if (out->more == NULL)
            return DAFS_ST_NOMEM;
        atomic_init(&out->more->refs, 1);
        out->more->n = req->ngroups;
        ids = out->more->ids;
    }
    for (uint32_t i = 0; i < req->ngroups; i++) {
        uint32_t g = dafs_cred_group(req, i);
        ids[i] = root && g == 0 ? p->anon_gid : g;
    }
    return DAFS_ST_OK;
}

int cred_register(cred_table *t, const cred_policy *p, const dafs_cred_req *req, uint32_t *id)
{
    if (req->ngroups > DAFS_GROUPS_MAX)
        return DAFS_ST_INVAL;
    op_cred c;
    int status = squash(p, req, &c);
    if (status != DAFS_ST_OK)
        return status;
    status = DAFS_ST_AGAIN;
    pthread_mutex_lock(&t->mu);
    for (unsigned i = 0; i < CRED_SLOTS; i++) {
        if (!t->used[i]) {
            t->used[i] = true;
            t->slot[i] = c;
            *id = i + 1;
            status = DAFS_ST_OK;
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (status != DAFS_ST_OK)
        cred_put(&c);
    return status;
}

int cred_release(cred_table *t, uint32_t id)
{
    if (id == 0 || id > CRED_SLOTS)
        return DAFS_ST_INVAL;
    cred_groups *more = NULL;
    pthread_mutex_lock(&t->mu);
    int status = t->used[id - 1] ? DAFS_ST_OK : DAFS_ST_INVAL;
    if (t->used[id - 1])
        more = t->slot[id - 1].more;
    t->used[id - 1] = false;
    pthread_mutex_unlock(&t->mu);
    groups_unref(more); /* requests running under it keep their own reference */
    return status;
}

int cred_lookup(cred_table *t, const cred_policy *p, uint32_t id, op_cred *out)
{
    if (id == 0) {
        memset(out, 0, sizeof(*out));
        out->uid = p->anon_uid;
        out->gid = p->anon_gid;
        return DAFS_ST_OK;
    }
    if (id > CRED_SLOTS)
        return DAFS_ST_PERM;
    pthread_mutex_lock(&t->mu);
    int status = t->used[id - 1] ? DAFS_ST_OK : DAFS_ST_PERM;
    if (status == DAFS_ST_OK) {
        *out = t->slot[id - 1];
        if (out->more != NULL)
            atomic_fetch_add(&out->more->refs, 1);
    }
    pthread_mutex_unlock(&t->mu);
    return status;
}

void cred_init(void)
{
    switching = geteuid() == 0;
    if (!switching)
        log_error("not running as root: requests run as dafsd's own user, "
                  "and file handles need CAP_DAC_READ_SEARCH");
}

/* setfsuid/setfsgid return the previous id whatever happens; read it back. */
static bool set_fsuid(uint32_t uid)
{
    (void)syscall(SYS_FSUID, uid);
    return (uint32_t)syscall(SYS_FSUID, (uid_t)-1) == uid;
}

static bool set_fsgid(uint32_t gid)
{
    (void)syscall(SYS_FSGID, gid);
    return (uint32_t)syscall(SYS_FSGID, (gid_t)-1) == gid;
}

/* Only identities with an inline group list are remembered (a long one
 * would need a reference held between requests); the others switch in full
 * every time. */
static bool is_active(const op_cred *c)
{
    return active_known && c->more == NULL && active.uid == c->uid && active.gid == c->gid &&
           active.ngroups == c->ngroups &&
           memcmp(active.groups, c->groups, (size_t)c->ngroups * sizeof(c->groups[0])) == 0;
}

_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "group ids are passed to setgroups as is");

int cred_enter(const op_cred *c)
{
    if (!switching)
        return 0;
    current = c;
    if (is_active(c))
        return 0;
    active_known = false;
    if (syscall(SYS_GROUPS, (size_t)c->ngroups, (const gid_t *)cred_group_ids(c)) != 0 ||
        !set_fsgid(c->gid) || !set_fsuid(c->uid))
        return -1;
    if (c->more == NULL) {
        active = *c;
        active_known = true;
    }
    return 0;
}

/* The identity stays until the next cred_enter (which every operation that
 * touches files goes through), so a run of requests by one user switches
 * once; a thread whose last switch failed is switched again in full. */
void cred_leave(void)
{
    if (!switching)
        return;
    current = NULL;
    if (active_known)
        return;
    if (!set_fsuid(0) || !set_fsgid(0) || syscall(SYS_GROUPS, (size_t)0, NULL) != 0) {
        log_error("cannot return a worker thread to root's identity; aborting");
        abort();
    }
}

void cred_suspend(void)
{
    if (switching && current && current->uid != 0 && !set_fsuid(0)) {
        log_error("cannot regain root's identity; aborting");
        abort();
    }
}

void cred_resume(void)
{
    if (switching && current && current->uid != 0 && !set_fsuid(current->uid)) {
        log_error("cannot return to the caller's identity; aborting");
        abort();
    }
}

void cred_return_to_root(void)
{
    static const op_cred root; /* uid 0, gid 0, no supplementary groups */
    if (cred_enter(&root) != 0) {
        log_error("cannot return the network thread to root's identity; aborting");
        abort();
    }
    cred_leave();
}
