/*
 * creds.c — the calling user's identity as a registered dafs credential.
 *
 * With allow_other, many users share one mount, and the server must check
 * permissions as the user making each request, not as the daemon.  Every
 * request carries uid/gid (and the kernel lets us read the supplementary
 * groups); the server wants a credential id registered once per identity.
 * This cache maps (uid, gid, sorted groups) to a dafs_cred.  It is bounded:
 * when full, the least recently used entry nobody holds is released; if all
 * are held, the new credential is used once and released after its request
 * (correct, just slower).  Registration is a round trip and runs outside the
 * lock; when two threads race to register the same identity, the loser
 * releases its copy.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dafs_fuse.h"

int creds_init(struct dfuse_creds *cc, dafs_session *s, unsigned max)
{
    memset(cc, 0, sizeof *cc);
    cc->session = s;
    cc->max = max == 0 ? 1 : max;
    return pthread_mutex_init(&cc->lock, NULL) == 0 ? 0 : -1;
}

void creds_destroy(struct dfuse_creds *cc)
{
    struct dfuse_cred *c = cc->list;
    while (c != NULL) {
        struct dfuse_cred *next = c->next;
        (void)dafs_cred_release(c->cred); /* the session is closing anyway */
        free(c);
        c = next;
    }
    cc->list = NULL;
    pthread_mutex_destroy(&cc->lock);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int same_identity(const struct dfuse_cred *c, const struct dfuse_cred *key)
{
    return c->uid == key->uid && c->gid == key->gid && c->ngroups == key->ngroups &&
           memcmp(c->groups, key->groups, key->ngroups * sizeof key->groups[0]) == 0;
}

/* Under the lock: the cached entry for key, with a reference taken. */
static struct dfuse_cred *creds_find(struct dfuse_creds *cc, const struct dfuse_cred *key)
{
    for (struct dfuse_cred *c = cc->list; c != NULL; c = c->next) {
        if (same_identity(c, key)) {
            c->refs++;
            c->last_use = ++cc->clock;
            return c;
        }
    }
    return NULL;
}

/* Under the lock: unlink the least recently used idle entry, if any. */
static struct dfuse_cred *creds_evict(struct dfuse_creds *cc)
{
    struct dfuse_cred **victim = NULL;
    for (struct dfuse_cred **p = &cc->list; *p != NULL; p = &(*p)->next) {
        if ((*p)->refs == 0 && (victim == NULL || (*p)->last_use < (*victim)->last_use))
            victim = p;
    }
    if (victim == NULL)
        return NULL;
    struct dfuse_cred *c = *victim;
    *victim = c->next;
    cc->count--;
    return c;
}

/* Under the lock: add fresh (refs 1) to the cache if there is room. */
static struct dfuse_cred *creds_insert(struct dfuse_creds *cc, struct dfuse_cred *fresh)
{
    struct dfuse_cred *evicted = NULL;
    if (cc->count >= cc->max)
        evicted = creds_evict(cc);
    if (cc->count < cc->max) {
        fresh->cached = 1;
        fresh->next = cc->list;
        cc->list = fresh;
        cc->count++;
    }
    return evicted;
}

int creds_get(struct dfuse_creds *cc, uint32_t uid, uint32_t gid, unsigned ngroups,
              const uint32_t *groups, struct dfuse_cred **out)
{
    if (ngroups > DFUSE_GROUPS_MAX)
        return -EINVAL;
    struct dfuse_cred *fresh = calloc(1, sizeof *fresh + (size_t)ngroups * sizeof groups[0]);
    if (fresh == NULL)
        return -ENOMEM;
    fresh->uid = uid;
    fresh->gid = gid;
    fresh->ngroups = ngroups;
    if (fresh->ngroups > 0)
        memcpy(fresh->groups, groups, fresh->ngroups * sizeof groups[0]);
    qsort(fresh->groups, fresh->ngroups, sizeof fresh->groups[0], cmp_u32);

    pthread_mutex_lock(&cc->lock);
    struct dfuse_cred *hit = creds_find(cc, fresh);
    pthread_mutex_unlock(&cc->lock);
    if (hit != NULL) {
        free(fresh);
        *out = hit;
        return 0;
    }

    int rc = dafs_cred_register(cc->session, uid, gid, fresh->ngroups, fresh->groups,
                                &fresh->cred);
    if (rc < 0) {
        free(fresh);
        return rc;
    }
    fresh->refs = 1;

    pthread_mutex_lock(&cc->lock);
    fresh->last_use = ++cc->clock;
    fresh->serial = fresh->last_use; /* unique: the clock only grows */
    struct dfuse_cred *evicted = NULL;
    hit = creds_find(cc, fresh);
    if (hit == NULL)
        evicted = creds_insert(cc, fresh);
    pthread_mutex_unlock(&cc->lock);

    if (hit != NULL) { /* lost a race: use the winner's */
        (void)dafs_cred_release(fresh->cred);
        free(fresh);
        fresh = hit;
    }
    if (evicted != NULL) {
        (void)dafs_cred_release(evicted->cred); /* a failed release only leaks a server id */
        free(evicted);
    }
    *out = fresh;
    return 0;
}

void creds_put(struct dfuse_creds *cc, struct dfuse_cred *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&cc->lock);
    int release = --c->refs == 0 && !c->cached;
    pthread_mutex_unlock(&cc->lock);
    if (release) {
        (void)dafs_cred_release(c->cred);
        free(c);
    }
}

/* The caller's groups, read by libfuse from /proc; the list is grown until
 * it holds them all (NGROUPS_MAX at most).  A caller that is gone, or no
 * /proc, gives the primary group only. */
int dfuse_caller_cred(fuse_req_t req, struct dfuse_cred **out)
{
    struct dfuse *fs = fuse_req_userdata(req);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    gid_t small[64];
    gid_t *gids = small;
    int cap = 64;
    int n = fuse_req_getgroups(req, cap, gids);
    while (n > cap && n <= DFUSE_GROUPS_MAX) {
        gid_t *bigger = realloc(gids == small ? NULL : gids, (size_t)n * sizeof *gids);
        if (bigger == NULL) {
            n = -ENOMEM;
            break;
        }
        gids = bigger;
        cap = n;
        n = fuse_req_getgroups(req, cap, gids); /* it may have changed meanwhile */
    }
    if (n < 0 || n > cap)
        n = 0;
    _Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is a 32-bit group id");
    int rc = creds_get(&fs->creds, (uint32_t)ctx->uid, (uint32_t)ctx->gid, (unsigned)n,
                       (const uint32_t *)gids, out);
    if (gids != small)
        free(gids);
    return rc;
}
