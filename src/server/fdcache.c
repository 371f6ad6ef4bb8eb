/*
 * fdcache.c — the set-associative cache of open fds (see fdcache.h).
 *
 * FDC_SETS sets of FDC_WAYS entries; a key hashes to one set, and a miss
 * replaces that set's least recently used unreferenced entry.  No
 * allocation after init; the lock is held only for table bookkeeping, and
 * fds are closed after it is released.
 */
#include "fdcache.h"

#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fdcache_init(fdcache *c)
{
    memset(c, 0, sizeof(*c));
    c->gen = 1;
    c->fgen = 1;
    return pthread_mutex_init(&c->mu, NULL) == 0 ? 0 : -1;
}

void fdcache_destroy(fdcache *c)
{
    for (unsigned s = 0; s < FDC_SETS; s++)
        for (unsigned w = 0; w < FDC_WAYS; w++)
            if (c->sets[s][w].used)
                close(c->sets[s][w].fd);
    pthread_mutex_destroy(&c->mu);
}

fdc_gen fdcache_gen(fdcache *c)
{
    pthread_mutex_lock(&c->mu);
    fdc_gen g = {c->gen, c->fgen};
    pthread_mutex_unlock(&c->mu);
    return g;
}

static unsigned set_of(const dafs_fh *fh, uint32_t uid)
{
    uint32_t h = 2166136261u;
    for (unsigned i = 0; i < fh->len && i < DAFS_FH_MAX; i++)
        h = (h ^ fh->data[i]) * 16777619u;
    h = (h ^ uid) * 16777619u;
    return h % FDC_SETS;
}

/* Identities with a long group list are never cached (fdcache_add), so
 * comparing the inline lists is exact. */
static bool same_cred(const op_cred *a, const op_cred *b)
{
    if (a->uid != b->uid || a->gid != b->gid || a->ngroups != b->ngroups || a->more || b->more)
        return false;
    return memcmp(a->groups, b->groups, (size_t)a->ngroups * sizeof(a->groups[0])) == 0;
}

static bool matches(const fdc_entry *e, int kind, const dafs_fh *fh, const op_cred *cred)
{
    return e->used && e->kind == kind && e->fh.len == fh->len &&
           memcmp(e->fh.data, fh->data, fh->len) == 0 && (kind == FDC_PATH || same_cred(&e->cred, cred));
}

static bool is_live(const fdcache *c, const fdc_entry *e, int64_t now)
{
    return !e->dead && e->gen == c->gen && (e->fgen == c->fgen || S_ISDIR(e->mode)) &&
           now - e->born_ms < FDC_TTL_MS;
}

fdc_entry *fdcache_get(fdcache *c, int kind, const dafs_fh *fh, const op_cred *cred)
{
    if (fh->len == 0 || fh->len > DAFS_FH_MAX)
        return NULL;
    static const op_cred root;
    if (kind == FDC_PATH)
        cred = &root;
    fdc_entry *set = c->sets[set_of(fh, cred->uid)];
    int64_t now = now_ms();
    fdc_entry *hit = NULL;
    pthread_mutex_lock(&c->mu);
    for (unsigned w = 0; w < FDC_WAYS; w++) {
        fdc_entry *e = &set[w];
        if (matches(e, kind, fh, cred) && is_live(c, e, now)) {
            e->refs++;
            e->last_use = ++c->tick;
            hit = e;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void fdcache_put(fdcache *c, fdc_entry *e, bool may_close)
{
    int fd = -1;
    pthread_mutex_lock(&c->mu);
    e->refs--;
    if (e->refs == 0 && e->dead && may_close) {
        fd = e->fd;
        e->used = false;
    }
    pthread_mutex_unlock(&c->mu);
    if (fd >= 0)
        close(fd);
}

/* Choose the way to fill in set: a free one, else a dead or expired
 * unreferenced one, else the LRU unreferenced one; *old_fd gets the fd to
 * close.  NULL when every way is in use. */
static fdc_entry *victim(fdcache *c, fdc_entry *set, int64_t now, int *old_fd)
{
    fdc_entry *best = NULL;
    for (unsigned w = 0; w < FDC_WAYS; w++) {
        fdc_entry *e = &set[w];
        if (!e->used)
            return e;
        if (e->refs > 0)
            continue;
        if (!is_live(c, e, now)) {
            best = e;
            break;
        }
        if (!best || e->last_use < best->last_use)
            best = e;
    }
    if (best) {
        *old_fd = best->fd;
        best->used = false;
    }
    return best;
}

bool fdcache_add(fdcache *c, int kind, const dafs_fh *fh, const op_cred *cred, int fd,
                 mode_t mode, ino_t ino, fdc_gen gen, fdc_entry **out)
{
    static const op_cred root;
    if (kind == FDC_PATH)
        cred = &root;
    if (fh->len == 0 || fh->len > DAFS_FH_MAX || cred->more != NULL)
        return false;
    fdc_entry *set = c->sets[set_of(fh, cred->uid)];
    int64_t now = now_ms();
    int old_fd = -1;
    fdc_entry *e = NULL;
    pthread_mutex_lock(&c->mu);
    if (gen.all == c->gen && (gen.files == c->fgen || S_ISDIR(mode)))
        e = victim(c, set, now, &old_fd);
    if (e) {
        memset(e, 0, sizeof(*e));
        e->used = true;
        e->kind = (uint8_t)kind;
        e->refs = 1;
        e->gen = gen.all;
        e->fgen = gen.files;
        e->born_ms = now;
        e->last_use = ++c->tick;
        e->fh = *fh;
        e->cred = *cred;
        e->fd = fd;
        e->mode = mode;
        e->ino = ino;
    }
    pthread_mutex_unlock(&c->mu);
    if (old_fd >= 0)
        close(old_fd);
    *out = e;
    return e != NULL;
}

void fdcache_invalidate(fdcache *c, bool files_only)
{
    int fds[FDC_SETS * FDC_WAYS];
    unsigned n = 0;
    pthread_mutex_lock(&c->mu);
    if (files_only)
        c->fgen++;
    else
        c->gen++;
    for (unsigned s = 0; s < FDC_SETS; s++) {
        for (unsigned w = 0; w < FDC_WAYS; w++) {
            fdc_entry *e = &c->sets[s][w];
            if (!e->used || (files_only && S_ISDIR(e->mode)))
                continue;
            e->dead = true;
            if (e->refs == 0) {
                fds[n++] = e->fd;
                e->used = false;
            }
        }
    }
    pthread_mutex_unlock(&c->mu);
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
}
