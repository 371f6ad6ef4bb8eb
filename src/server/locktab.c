/*
 * locktab.c — the lock table (see locktab.h for the semantics and the
 * thread model).
 *
 * Layout: a hash of files (only files with locks or waiters exist), each
 * with an array of locks sorted by start (then owner) and a FIFO list of
 * waiters; a hash of sessions with their lock and waiter counts (the caps).
 * Ranges are inclusive [start, end]; end UINT64_MAX is "to end of file".
 *
 * A lock that must be rolled back or committed (AUTORECOVER) is put in
 * state LT_ROLLBACK with its owner marked dead: it conflicts with everyone
 * and I/O answers LT_BUSY.  finish(), at the end of every call, runs such
 * pending actions without the mutex (f->busy keeps the file alive), then
 * removes the lock (or marks it broken) and grants the waiters that can go.
 * Then it delivers the grant notifications collected meanwhile.
 *
 * A lock operation works on a copy of the file's lock array: when the
 * result would pass the session's cap, or the lock database cannot be
 * written, the copy is put back and the call fails without a trace.
 */
#include "locktab.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_BUCKETS 1024u
#define SESS_BUCKETS 256u

enum { ACT_NONE = 0, ACT_ROLLBACK, ACT_COMMIT }; /* what a LT_ROLLBACK lock waits for */
enum { AFTER_REMOVE = 0, AFTER_BROKEN };         /* and what it becomes then */

typedef struct lt_lock {
    lt_owner who;
    uint64_t stateid;
    uint64_t start, end;
    uint32_t type, flags; /* flags: LT_PERSIST | LT_AUTORECOVER */
    uint8_t state;        /* enum lt_state */
    uint8_t action, after;
    bool dead;    /* the owner is gone (or the lock is leaving): never "own" */
    bool repair;  /* taken over from a broken lock with REPAIR */
    bool running; /* its action runs now (token names the run) */
    bool failed;  /* its action failed: stays until a restart */
    uint64_t token;
} lt_lock;

typedef struct lt_waiter {
    uint64_t id;
    lt_req req;
    uint64_t start, end;
    struct lt_waiter *prev, *next;
} lt_waiter;

typedef struct lt_file {
    lt_fid fid;
    struct lt_file *hnext;
    lt_lock *locks;
    size_t n, cap;
    lt_waiter *wh, *wt;
    unsigned busy;   /* actions running on it without the mutex */
    unsigned io;     /* I/O in flight (locktab_io_begin) */
    size_t npersist; /* records in the database */
} lt_file;

typedef struct lt_sess {
    uint64_t id;
    uint32_t locks, waiters;
    struct lt_sess *next;
} lt_sess;

typedef struct lt_note {
    uint64_t id;
    int status;
    lt_req req;
    lt_conflict c;
} lt_note;

struct locktab {
    pthread_mutex_t mu;
    pthread_cond_t idle;
    locktab_config cfg;
    lt_file *files[FILE_BUCKETS];
    lt_sess *sess[SESS_BUCKETS];
    uint64_t nfiles, nwaiters, next_waiter, next_token;
    atomic_uint_fast64_t nfiles_seen; /* nfiles, for locktab_empty without the mutex */
    unsigned pending;  /* locks with an action not yet started */
    unsigned running;  /* actions running */
    unsigned inflight; /* calls inside the table (close waits for them) */
    bool closing;
    bool grace;      /* after a restart: only reclaims */
    bool sess_dirty; /* some session entry may be empty */
    lt_note *notes;
    size_t nnotes, notecap;
    uint64_t st_broken, st_rollbacks, st_failures, st_io_waits;
};

/* ---- small helpers ---------------------------------------------------------- */

static bool overlap(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
    return s1 <= e2 && s2 <= e1;
}

static bool same_owner(lt_owner a, lt_owner b)
{
    return a.session == b.session && a.owner == b.owner;
}

static int to_range(uint64_t offset, uint64_t length, uint64_t *s, uint64_t *e)
{
    *s = offset;
    if (length == 0 || length == LT_TO_EOF) {
        *e = UINT64_MAX;
        return LT_OK;
    }
    if (length - 1 > UINT64_MAX - offset)
        return LT_INVAL;
    *e = offset + (length - 1);
    return LT_OK;
}

static bool fid_ok(const lt_fid *fid)
{
    return fid->len >= 1 && fid->len <= LOCKTAB_FID_MAX;
}

static uint32_t fid_hash(const lt_fid *fid)
{
    uint32_t h = 2166136261u;
    for (unsigned i = 0; i < fid->len; i++)
        h = (h ^ fid->b[i]) * 16777619u;
    return h;
}

static void fill_conflict_lock(lt_conflict *c, const lt_lock *L)
{
    if (!c)
        return;
    c->who = L->who;
    c->offset = L->start;
    c->length = L->end == UINT64_MAX ? LT_TO_EOF : L->end - L->start + 1;
    c->type = L->type;
    c->flags = L->flags | (L->repair ? LT_REPAIR : 0);
    c->state = L->state;
    c->waiter = false;
}

static void fill_conflict_waiter(lt_conflict *c, const lt_waiter *w)
{
    if (!c)
        return;
    c->who = w->req.who;
    c->offset = w->start;
    c->length = w->end == UINT64_MAX ? LT_TO_EOF : w->end - w->start + 1;
    c->type = w->req.type;
    c->flags = w->req.flags;
    c->state = 0;
    c->waiter = true;
}

/* ---- sessions (the caps) ----------------------------------------------------- */

static lt_sess *sess_get(locktab *t, uint64_t id, bool create)
{
    lt_sess **pp = &t->sess[(id ^ (id >> 32)) % SESS_BUCKETS];
    for (lt_sess *s = *pp; s; s = s->next)
        if (s->id == id)
            return s;
    if (!create)
        return NULL;
    lt_sess *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->id = id;
    s->next = *pp;
    *pp = s;
    return s;
}

/* An entry may have become empty: finish() frees it (callers may still
 * hold a pointer to it until then). */
static void sess_gc(locktab *t, uint64_t id)
{
    (void)id;
    t->sess_dirty = true;
}

static void sess_add_locks(locktab *t, uint64_t id, int delta)
{
    lt_sess *s = sess_get(t, id, delta > 0);
    if (!s)
        return; /* only on allocation failure: the cap check then fails closed */
    s->locks = (uint32_t)((int64_t)s->locks + delta);
    if (s->locks == 0)
        t->sess_dirty = true; /* freed by finish(): callers may hold s */
}

/* Free every session entry with nothing left. */
static void sess_sweep(locktab *t)
{
    for (unsigned b = 0; b < SESS_BUCKETS; b++)
        for (lt_sess **pp = &t->sess[b]; *pp;) {
            lt_sess *s = *pp;
            if (s->locks == 0 && s->waiters == 0) {
                *pp = s->next;
                free(s);
            } else {
                pp = &s->next;
            }
        }
    t->sess_dirty = false;
}

/* ---- files -------------------------------------------------------------------- */

static lt_file *file_get(locktab *t, const lt_fid *fid, bool create)
{
    lt_file **pp = &t->files[fid_hash(fid) % FILE_BUCKETS];
    for (lt_file *f = *pp; f; f = f->hnext)
        if (f->fid.len == fid->len && memcmp(f->fid.b, fid->b, fid->len) == 0)
            return f;
    if (!create)
        return NULL;
    lt_file *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->fid = *fid;
    f->hnext = *pp;
    *pp = f;
    t->nfiles++;
    atomic_store(&t->nfiles_seen, t->nfiles);
    return f;
}

static void file_gc(locktab *t, lt_file *f)
{
    if (f->n > 0 || f->wh || f->busy > 0 || f->io > 0)
        return;
    lt_file **pp = &t->files[fid_hash(&f->fid) % FILE_BUCKETS];
    for (; *pp; pp = &(*pp)->hnext)
        if (*pp == f) {
            *pp = f->hnext;
            free(f->locks);
            free(f);
            t->nfiles--;
            atomic_store(&t->nfiles_seen, t->nfiles);
            return;
        }
}

/* ---- lock array primitives (keep the session counts) ---------------------------- */

static int lock_cmp(const void *a, const void *b)
{
    const lt_lock *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->who.session != y->who.session)
        return x->who.session < y->who.session ? -1 : 1;
    if (x->who.owner != y->who.owner)
        return x->who.owner < y->who.owner ? -1 : 1;
    return 0;
}

static void sort_locks(lt_file *f)
{
    if (f->n > 1)
        qsort(f->locks, f->n, sizeof(lt_lock), lock_cmp);
}

static int push_lock(locktab *t, lt_file *f, const lt_lock *L)
{
    if (f->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 4;
        lt_lock *nl = realloc(f->locks, ncap * sizeof(*nl));
        if (!nl)
            return LT_RESOURCE;
        f->locks = nl;
        f->cap = ncap;
    }
    f->locks[f->n++] = *L;
    if (!L->dead)
        sess_add_locks(t, L->who.session, 1);
    return LT_OK;
}

static void remove_lock(locktab *t, lt_file *f, size_t i)
{
    if (!f->locks[i].dead)
        sess_add_locks(t, f->locks[i].who.session, -1);
    memmove(&f->locks[i], &f->locks[i + 1], (f->n - i - 1) * sizeof(lt_lock));
    f->n--;
}

/* The owner of a live lock is gone, or the lock is leaving. */
static void kill_lock(locktab *t, lt_lock *L)
{
    if (!L->dead) {
        L->dead = true;
        sess_add_locks(t, L->who.session, -1);
    }
}

/* Take [s, e] out of lock i.  Returns true if lock i was removed. */
static int cut_lock(locktab *t, lt_file *f, size_t i, uint64_t s, uint64_t e, bool *removed)
{
    lt_lock *L = &f->locks[i];
    *removed = false;
    if (L->start >= s && L->end <= e) {
        remove_lock(t, f, i);
        *removed = true;
        return LT_OK;
    }
    if (L->start < s && L->end > e) { /* split */
        lt_lock right = *L;
        right.start = e + 1;
        L->end = s - 1;
        return push_lock(t, f, &right);
    }
    if (L->start < s)
        L->end = s - 1;
    else
        L->start = e + 1;
    return LT_OK;
}

/* Take [s, e] out of the live locks of `who` (any flags) and, with
 * `broken`, out of broken locks.  Array order is restored by the caller. */
static int cut_range(locktab *t, lt_file *f, lt_owner who, uint64_t s, uint64_t e, bool broken,
                     bool *cut_broken)
{
    for (size_t i = 0; i < f->n;) {
        lt_lock *L = &f->locks[i];
        bool own = !L->dead && same_owner(L->who, who) && L->state == LT_HELD;
        bool brk = broken && L->dead && L->state == LT_BROKEN_STATE;
        if ((own || brk) && overlap(L->start, L->end, s, e)) {
            if (brk && cut_broken)
                *cut_broken = true;
            bool removed;
            int rc = cut_lock(t, f, i, s, e, &removed);
            if (rc != LT_OK)
                return rc;
            if (removed)
                continue;
        }
        i++;
    }
    return LT_OK;
}

static bool mergeable(const lt_lock *a, const lt_lock *b)
{
    return !a->dead && !b->dead && a->state == LT_HELD && b->state == LT_HELD &&
           same_owner(a->who, b->who) && a->type == b->type && a->flags == b->flags &&
           a->stateid == b->stateid && a->repair == b->repair;
}

static bool touching(const lt_lock *a, const lt_lock *b)
{
    return overlap(a->start, a->end, b->start, b->end) ||
           (a->end != UINT64_MAX && a->end + 1 == b->start) ||
           (b->end != UINT64_MAX && b->end + 1 == a->start);
}

/* Merge lock k with the owner's locks it touches. */
static void merge_into(locktab *t, lt_file *f, size_t k)
{
    for (size_t j = 0; j < f->n;) {
        if (j != k && mergeable(&f->locks[j], &f->locks[k]) &&
            touching(&f->locks[j], &f->locks[k])) {
            lt_lock *K = &f->locks[k], *J = &f->locks[j];
            if (J->start < K->start)
                K->start = J->start;
            if (J->end > K->end)
                K->end = J->end;
            remove_lock(t, f, j);
            if (j < k)
                k--;
            j = 0;
            continue;
        }
        j++;
    }
}

/* ---- persistence --------------------------------------------------------------- */

static bool is_persistent(const lt_lock *L)
{
    if (L->state == LT_ROLLBACK)
        return L->after == AFTER_BROKEN;
    return (L->flags & LT_PERSIST) || L->repair || L->state == LT_BROKEN_STATE;
}

static uint32_t persist_state(const lt_lock *L)
{
    if (L->state == LT_BROKEN_STATE || L->state == LT_ROLLBACK)
        return LOCKDB_BROKEN;
    if (L->state == LT_BREAKABLE)
        return LOCKDB_BREAKABLE;
    return L->repair ? LOCKDB_REPAIRING : LOCKDB_HELD;
}

static int persist(locktab *t, lt_file *f)
{
    if (!t->cfg.db)
        return LT_OK;
    size_t n = 0;
    for (size_t i = 0; i < f->n; i++)
        n += is_persistent(&f->locks[i]);
    if (n == 0 && f->npersist == 0)
        return LT_OK;
    lockdb_rec *recs = n ? calloc(n, sizeof(*recs)) : NULL;
    if (n && !recs)
        return LT_RESOURCE;
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++) {
        const lt_lock *L = &f->locks[i];
        if (!is_persistent(L))
            continue;
        recs[k++] = (lockdb_rec){.start = L->start,
                                 .end = L->end,
                                 .session = L->who.session,
                                 .owner = L->who.owner,
                                 .stateid = L->stateid,
                                 .type = L->type,
                                 .flags = L->flags,
                                 .state = persist_state(L)};
    }
    int rc = lockdb_replace_file(t->cfg.db, f->fid.b, f->fid.len, recs, n);
    free(recs);
    if (rc != 0)
        return LT_IO;
    f->npersist = n;
    return LT_OK;
}

/* ---- notifications ------------------------------------------------------------- */

static void note(locktab *t, uint64_t id, int status, const lt_req *req, const lt_conflict *c)
{
    if (!t->cfg.on_grant)
        return;
    if (t->nnotes == t->notecap) {
        size_t ncap = t->notecap ? t->notecap * 2 : 16;
        lt_note *nn = realloc(t->notes, ncap * sizeof(*nn));
        if (!nn) {
            /* Cannot queue it: deliver nothing rather than crash; the
             * waiter's owner learns at its session's end.  Practically
             * unreachable (a few dozen bytes). */
            fprintf(stderr, "dafsd: lock table: out of memory for a grant notification\n");
            return;
        }
        t->notes = nn;
        t->notecap = ncap;
    }
    lt_note *n = &t->notes[t->nnotes++];
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->status = status;
    n->req = *req;
    if (c)
        n->c = *c;
}

/* ---- waiters ------------------------------------------------------------------- */

static void unlink_waiter(locktab *t, lt_file *f, lt_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        f->wh = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        f->wt = w->prev;
    t->nwaiters--;
    lt_sess *s = sess_get(t, w->req.who.session, false);
    if (s) {
        s->waiters--;
        sess_gc(t, w->req.who.session);
    }
    free(w);
}

/* ---- conflict classification ------------------------------------------------------ */

enum { C_NONE, C_BROKEN, C_LIVE, C_WAITER };

static bool lock_conflicts(const lt_lock *L, lt_owner who, uint32_t type, uint64_t s, uint64_t e)
{
    if (!overlap(L->start, L->end, s, e))
        return false;
    if (!L->dead && same_owner(L->who, who))
        return false;
    if (L->state == LT_ROLLBACK)
        return true;
    return L->type == LT_EXCL || type == LT_EXCL;
}

/* Break lock L (breakable or, on re-initialization, held). */
static void break_lock(locktab *t, lt_lock *L)
{
    kill_lock(t, L);
    t->st_broken++;
    if (L->flags & LT_AUTORECOVER) {
        L->state = LT_ROLLBACK;
        L->action = ACT_ROLLBACK;
        L->after = AFTER_BROKEN;
        t->pending++;
    } else {
        L->state = LT_BROKEN_STATE;
    }
}

/* What stands in the way of a request of `who`.  With may_break, breakable
 * locks in the way are broken (and *dirty set).  upto: check only the
 * waiters queued before it (NULL: all). */
static int classify(locktab *t, lt_file *f, lt_owner who, uint32_t type, uint32_t flags, uint64_t s,
                    uint64_t e, const lt_waiter *upto, bool may_break, bool *dirty, lt_conflict *c)
{
    bool repair = flags & LT_REPAIR;
    int first_broken = -1;
    if (may_break)
        for (size_t i = 0; i < f->n; i++) {
            lt_lock *L = &f->locks[i];
            if (L->state == LT_BREAKABLE && lock_conflicts(L, who, type, s, e)) {
                break_lock(t, L);
                *dirty = true;
                if (first_broken < 0)
                    first_broken = (int)i;
            }
        }
    if (first_broken >= 0 && !repair) {
        fill_conflict_lock(c, &f->locks[first_broken]);
        return C_BROKEN;
    }
    if (!repair)
        for (size_t i = 0; i < f->n; i++)
            if (f->locks[i].state == LT_BROKEN_STATE &&
                lock_conflicts(&f->locks[i], who, type, s, e)) {
                fill_conflict_lock(c, &f->locks[i]);
                return C_BROKEN;
            }
    for (size_t i = 0; i < f->n; i++) {
        const lt_lock *L = &f->locks[i];
        if (L->state == LT_BROKEN_STATE)
            continue; /* repair: taken over */
        if (lock_conflicts(L, who, type, s, e)) {
            fill_conflict_lock(c, L);
            return C_LIVE;
        }
    }
    for (const lt_waiter *w = f->wh; w && w != upto; w = w->next)
        if (!same_owner(w->req.who, who) && overlap(w->start, w->end, s, e) &&
            (w->req.type == LT_EXCL || type == LT_EXCL)) {
            fill_conflict_waiter(c, w);
            return C_WAITER;
        }
    return C_NONE;
}

/* ---- granting ------------------------------------------------------------------------ */

/* Give r (range [s, e]) to its owner: REPAIR takes the broken parts over,
 * the owner's own locks on the range are replaced, touching ones merged.
 * All or nothing. */
static int apply_lock(locktab *t, lt_file *f, const lt_req *r, uint64_t s, uint64_t e)
{
    lt_sess *sess = sess_get(t, r->who.session, true);
    if (!sess)
        return LT_RESOURCE;
    uint32_t saved_count = sess->locks;
    lt_lock *snap = NULL;
    size_t snap_n = f->n;
    if (f->n) {
        snap = malloc(f->n * sizeof(*snap));
        if (!snap)
            return LT_RESOURCE;
        memcpy(snap, f->locks, f->n * sizeof(*snap));
    }
    bool repaired = false;
    int rc = cut_range(t, f, r->who, s, e, (r->flags & LT_REPAIR) != 0, &repaired);
    if (rc == LT_OK) {
        lt_lock L = {.who = r->who,
                     .stateid = r->stateid,
                     .start = s,
                     .end = e,
                     .type = r->type,
                     .flags = r->flags & (LT_PERSIST | LT_AUTORECOVER),
                     .state = LT_HELD,
                     .repair = repaired};
        rc = push_lock(t, f, &L);
        if (rc == LT_OK)
            merge_into(t, f, f->n - 1);
    }
    sort_locks(f);
    if (rc == LT_OK && sess->locks > t->cfg.max_locks_per_session)
        rc = LT_RESOURCE;
    if (rc == LT_OK)
        rc = persist(t, f);
    if (rc != LT_OK) {         /* put the copy back */
        if (snap_n > f->cap) { /* cannot happen: the array only grew */
            free(snap);
            return rc;
        }
        if (snap_n)
            memcpy(f->locks, snap, snap_n * sizeof(*snap));
        f->n = snap_n;
        sess->locks = saved_count;
    }
    free(snap);
    sess_gc(t, r->who.session);
    return rc;
}

/* Grant, in FIFO order, every waiter of f that can go now. */
static void grant_waiters(locktab *t, lt_file *f)
{
    bool dirty = false;
    for (lt_waiter *w = f->wh, *next; w; w = next) {
        next = w->next;
        lt_conflict c;
        memset(&c, 0, sizeof(c));
        int cls = classify(t, f, w->req.who, w->req.type, w->req.flags, w->start, w->end, w, true,
                           &dirty, &c);
        if (cls == C_BROKEN) {
            note(t, w->id, LT_BROKEN, &w->req, &c);
            unlink_waiter(t, f, w);
            continue;
        }
        if (cls != C_NONE)
            continue;
        int rc = apply_lock(t, f, &w->req, w->start, w->end);
        note(t, w->id, rc, &w->req, NULL);
        unlink_waiter(t, f, w);
    }
    if (dirty && persist(t, f) != LT_OK)
        fprintf(stderr, "dafsd: lock table: cannot record broken locks\n");
}

/* ---- pending AUTORECOVER actions and the end of every call ------------------------------ */

static lt_lock *find_running(lt_file *f, uint64_t token)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->locks[i].running && f->locks[i].token == token)
            return &f->locks[i];
    return NULL;
}

/* Run the action of lock L of f without the mutex; returns its result. */
static int run_action(locktab *t, lt_file *f, lt_lock *L)
{
    uint64_t token = ++t->next_token;
    L->running = true;
    L->token = token;
    int action = L->action;
    t->pending--;
    t->running++;
    f->busy++;
    lt_fid fid = f->fid;
    /* I/O that passed its check before the lock began to leave finishes
     * first (later I/O is refused: LT_BUSY). */
    if (f->io > 0)
        t->st_io_waits++;
    while (f->io > 0)
        pthread_cond_wait(&t->idle, &t->mu);
    pthread_mutex_unlock(&t->mu);
    int rc = 0;
    if (action == ACT_ROLLBACK)
        rc = t->cfg.rollback ? t->cfg.rollback(t->cfg.ctx, &fid) : 0;
    else if (t->cfg.commit)
        rc = t->cfg.commit(t->cfg.ctx, &fid);
    pthread_mutex_lock(&t->mu);
    f->busy--;
    t->running--;
    L = find_running(f, token); /* the array may have moved meanwhile */
    L->running = false;
    if (action == ACT_ROLLBACK)
        t->st_rollbacks++;
    if (rc != 0) {
        L->failed = true;
        t->st_failures++;
        fprintf(stderr,
                "dafsd: lock table: %s failed (%s): the file stays locked until a restart\n",
                action == ACT_ROLLBACK ? "rollback" : "undo log removal", strerror(-rc));
    } else if (L->after == AFTER_BROKEN) {
        L->state = LT_BROKEN_STATE;
        L->action = ACT_NONE;
    } else {
        remove_lock(t, f, (size_t)(L - f->locks));
    }
    if (persist(t, f) != LT_OK)
        fprintf(stderr, "dafsd: lock table: cannot update the lock database\n");
    grant_waiters(t, f);
    pthread_cond_broadcast(&t->idle);
    return rc;
}

/* A pending action anywhere, or NULL. */
static lt_lock *find_pending(locktab *t, lt_file **fp)
{
    for (unsigned b = 0; b < FILE_BUCKETS; b++)
        for (lt_file *f = t->files[b]; f; f = f->hnext)
            for (size_t i = 0; i < f->n; i++) {
                lt_lock *L = &f->locks[i];
                if (L->state == LT_ROLLBACK && !L->running && !L->failed && L->action != ACT_NONE) {
                    *fp = f;
                    return L;
                }
            }
    return NULL;
}

/* End of a call: run pending actions, deliver notifications, leave. */
static void finish(locktab *t)
{
    while (t->pending > 0 && !t->closing) {
        lt_file *f;
        lt_lock *L = find_pending(t, &f);
        if (!L)
            break;
        run_action(t, f, L);
        file_gc(t, f);
    }
    if (t->sess_dirty)
        sess_sweep(t);
    lt_note *notes = t->notes;
    size_t n = t->nnotes;
    t->notes = NULL;
    t->nnotes = t->notecap = 0;
    pthread_mutex_unlock(&t->mu);
    for (size_t i = 0; i < n; i++)
        t->cfg.on_grant(t->cfg.ctx, notes[i].id, notes[i].status, &notes[i].req,
                        notes[i].status == LT_BROKEN ? &notes[i].c : NULL);
    free(notes);
    pthread_mutex_lock(&t->mu);
    t->inflight--;
    pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->mu);
}

static void enter(locktab *t)
{
    pthread_mutex_lock(&t->mu);
    t->inflight++;
}

/* ---- open and close ------------------------------------------------------------------- */

static int load_one(void *ctx, const uint8_t *fidb, size_t fid_len, const lockdb_rec *r)
{
    locktab *t = ctx;
    lt_fid fid = {.len = (uint8_t)fid_len};
    memcpy(fid.b, fidb, fid_len);
    lt_file *f = file_get(t, &fid, true);
    if (!f)
        return -ENOMEM;
    /* A lock held at the crash is breakable (reclaims do not break it, so
     * it stays unbroken through a grace period); one
     * broken or under repair is broken. */
    lt_lock L = {.who = {r->session, r->owner},
                 .stateid = r->stateid,
                 .start = r->start,
                 .end = r->end,
                 .type = r->type == LT_SHARED ? LT_SHARED : LT_EXCL,
                 .flags = r->flags & (LT_PERSIST | LT_AUTORECOVER),
                 .dead = true,
                 .state = (r->state == LOCKDB_HELD || r->state == LOCKDB_BREAKABLE)
                              ? LT_BREAKABLE
                              : LT_BROKEN_STATE};
    if (push_lock(t, f, &L) != LT_OK)
        return -ENOMEM;
    f->npersist++;
    return 0;
}

int locktab_open(const locktab_config *cfg, locktab **out)
{
    *out = NULL;
    locktab *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->cfg = *cfg;
    if (!t->cfg.max_locks_per_session)
        t->cfg.max_locks_per_session = LOCKTAB_DEFAULT_MAX_LOCKS;
    if (!t->cfg.max_waiters)
        t->cfg.max_waiters = LOCKTAB_DEFAULT_MAX_WAITERS;
    if (!t->cfg.max_waiters_per_session)
        t->cfg.max_waiters_per_session = LOCKTAB_DEFAULT_MAX_WAITERS_PER_SESSION;
    t->next_waiter = 1;
    if (pthread_mutex_init(&t->mu, NULL) != 0) {
        free(t);
        return -ENOMEM;
    }
    if (pthread_cond_init(&t->idle, NULL) != 0) {
        pthread_mutex_destroy(&t->mu);
        free(t);
        return -ENOMEM;
    }
    if (t->cfg.db) {
        int rc = lockdb_load(t->cfg.db, load_one, t, NULL);
        if (rc != 0) {
            t->cfg.on_grant = NULL;
            locktab_close(t);
            return rc < 0 ? rc : -EIO;
        }
        for (unsigned b = 0; b < FILE_BUCKETS; b++)
            for (lt_file *f = t->files[b]; f; f = f->hnext)
                sort_locks(f);
    }
    *out = t;
    return 0;
}

void locktab_close(locktab *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->mu);
    t->closing = true;
    for (unsigned b = 0; b < FILE_BUCKETS; b++)
        for (lt_file *f = t->files[b]; f; f = f->hnext)
            while (f->wh) {
                note(t, f->wh->id, LT_SHUTDOWN, &f->wh->req, NULL);
                unlink_waiter(t, f, f->wh);
            }
    t->inflight++;
    finish(t); /* delivers the cancellations; runs no new action (closing) */
    pthread_mutex_lock(&t->mu);
    while (t->running > 0 || t->inflight > 0)
        pthread_cond_wait(&t->idle, &t->mu);
    pthread_mutex_unlock(&t->mu);
    for (unsigned b = 0; b < FILE_BUCKETS; b++)
        for (lt_file *f = t->files[b], *next; f; f = next) {
            next = f->hnext;
            while (f->wh) /* queued by a callback during the cancellations */
                unlink_waiter(t, f, f->wh);
            free(f->locks);
            free(f);
        }
    for (unsigned b = 0; b < SESS_BUCKETS; b++)
        for (lt_sess *s = t->sess[b], *next; s; s = next) {
            next = s->next;
            free(s);
        }
    free(t->notes);
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* ---- LOCK, LOCKT, LOCKU, cancel, ABORT ---------------------------------------------------- */

static int check_req(const locktab *t, const lt_req *r, uint64_t *s, uint64_t *e)
{
    if (!fid_ok(&r->fid) || (r->type != LT_SHARED && r->type != LT_EXCL) ||
        (r->flags & ~(LT_RECLAIM | LT_PERSIST | LT_AUTORECOVER | LT_REPAIR)))
        return LT_INVAL;
    int rc = to_range(r->offset, r->length, s, e);
    if (rc != LT_OK)
        return rc;
    if ((r->flags & LT_RECLAIM) && (r->flags & LT_AUTORECOVER))
        return LT_NOTSUPP; /* its changes were rolled back at start */
    if ((r->flags & LT_PERSIST) && !t->cfg.db)
        return LT_NOTSUPP;
    if ((r->flags & LT_AUTORECOVER) &&
        (!t->cfg.rollback || r->type != LT_EXCL || *s != 0 || *e != UINT64_MAX))
        return LT_NOTSUPP;
    return LT_OK;
}

/* The owner's live AUTORECOVER lock on f, or NULL. */
static lt_lock *own_autorecover(lt_file *f, lt_owner who)
{
    for (size_t i = 0; i < f->n; i++) {
        lt_lock *L = &f->locks[i];
        if (!L->dead && L->state == LT_HELD && same_owner(L->who, who) &&
            (L->flags & LT_AUTORECOVER))
            return L;
    }
    return NULL;
}

/* The owner of the first live lock of f in the way of a request, or false. */
static bool first_blocker(const lt_file *f, lt_owner who, uint32_t type, uint64_t s, uint64_t e,
                          lt_owner *blocker)
{
    for (size_t i = 0; i < f->n; i++) {
        const lt_lock *L = &f->locks[i];
        if (!L->dead && L->state == LT_HELD && lock_conflicts(L, who, type, s, e)) {
            *blocker = L->who;
            return true;
        }
    }
    return false;
}

/* A queued request of `who`, anywhere (and its file), or NULL. */
static const lt_waiter *waiter_of(const locktab *t, lt_owner who, const lt_file **wf)
{
    for (unsigned b = 0; b < FILE_BUCKETS; b++)
        for (const lt_file *f = t->files[b]; f; f = f->hnext)
            for (const lt_waiter *w = f->wh; w; w = w->next)
                if (same_owner(w->req.who, who)) {
                    *wf = f;
                    return w;
                }
    return NULL;
}

/* Would `who` waiting for [s, e] on f close a cycle of waits? */
static bool would_deadlock(const locktab *t, const lt_file *f, lt_owner who, uint32_t type,
                           uint64_t s, uint64_t e)
{
    lt_owner cur_who = who;
    for (unsigned depth = 0; depth < LOCKTAB_DEADLK_DEPTH; depth++) {
        lt_owner blocker;
        if (!first_blocker(f, cur_who, type, s, e, &blocker))
            return false;
        if (same_owner(blocker, who))
            return true;
        const lt_file *wf;
        const lt_waiter *w = waiter_of(t, blocker, &wf);
        if (!w)
            return false;
        f = wf;
        cur_who = blocker;
        type = w->req.type;
        s = w->start;
        e = w->end;
    }
    return false;
}

int locktab_lock(locktab *t, const lt_req *r, bool blocking, uint64_t *waiter_id,
                 lt_conflict *conflict)
{
    uint64_t s, e;
    if (waiter_id)
        *waiter_id = 0;
    if (conflict)
        memset(conflict, 0, sizeof(*conflict));
    int rc = check_req(t, r, &s, &e);
    if (rc != LT_OK)
        return rc;
    if (blocking && (!t->cfg.on_grant || !waiter_id))
        return LT_INVAL;
    enter(t);
    if (t->closing) {
        finish(t);
        return LT_SHUTDOWN;
    }
    bool reclaim = r->flags & LT_RECLAIM;
    if (t->grace != reclaim) {
        finish(t);
        return reclaim ? LT_NOGRACE : LT_GRACE;
    }
    if (reclaim)
        blocking = false; /* a reclaim is granted or refused at once */
    lt_file *f = file_get(t, &r->fid, true);
    if (!f) {
        finish(t);
        return LT_RESOURCE;
    }
    lt_lock *ar = own_autorecover(f, r->who);
    if (ar) {
        /* The same lock again is a no-op; anything else would cut it. */
        rc = (r->flags & LT_AUTORECOVER) && r->type == LT_EXCL &&
                     (r->flags & LT_PERSIST) == (ar->flags & LT_PERSIST)
                 ? LT_OK
                 : LT_RANGE;
        finish(t);
        return rc;
    }
    bool dirty = false;
    int cls = classify(t, f, r->who, r->type, r->flags, s, e, NULL, !reclaim, &dirty, conflict);
    if (dirty && persist(t, f) != LT_OK)
        fprintf(stderr, "dafsd: lock table: cannot record broken locks\n");
    if (cls == C_BROKEN) {
        rc = LT_BROKEN;
    } else if (cls != C_NONE && !blocking) {
        rc = LT_DENIED;
    } else if (cls != C_NONE && would_deadlock(t, f, r->who, r->type, s, e)) {
        rc = LT_DEADLK;
    } else if (cls != C_NONE) {
        lt_sess *sess = sess_get(t, r->who.session, true);
        lt_waiter *w = NULL;
        if (sess && t->nwaiters < t->cfg.max_waiters &&
            sess->waiters < t->cfg.max_waiters_per_session)
            w = calloc(1, sizeof(*w));
        if (!w) {
            rc = LT_RESOURCE;
            if (sess)
                sess_gc(t, r->who.session);
        } else {
            w->id = t->next_waiter++;
            w->req = *r;
            w->start = s;
            w->end = e;
            w->prev = f->wt;
            if (f->wt)
                f->wt->next = w;
            else
                f->wh = w;
            f->wt = w;
            t->nwaiters++;
            sess->waiters++;
            *waiter_id = w->id;
            rc = LT_QUEUED;
        }
    } else {
        rc = apply_lock(t, f, r, s, e);
    }
    file_gc(t, f);
    finish(t);
    return rc;
}

int locktab_test(locktab *t, const lt_req *r, lt_conflict *conflict)
{
    uint64_t s, e;
    if (conflict)
        memset(conflict, 0, sizeof(*conflict));
    int rc = check_req(t, r, &s, &e);
    if (rc == LT_NOTSUPP)
        rc = LT_OK; /* testing for a kind we do not grant is still a fair question */
    if (rc != LT_OK)
        return rc;
    enter(t);
    lt_file *f = file_get(t, &r->fid, false);
    rc = t->grace ? LT_GRACE : LT_OK;
    if (f && rc == LT_OK) {
        /* LOCKT breaks nothing: a breakable lock is reported as a conflict. */
        int cls = classify(t, f, r->who, r->type, r->flags & ~LT_REPAIR, s, e, NULL, false, NULL,
                           conflict);
        rc = cls == C_NONE ? LT_OK : cls == C_BROKEN ? LT_BROKEN : LT_DENIED;
    }
    finish(t);
    return rc;
}

/* Hand an AUTORECOVER lock to finish(): committed (clean) or rolled back. */
static void leave_autorecover(locktab *t, lt_lock *L, int action, int after)
{
    kill_lock(t, L);
    L->state = LT_ROLLBACK;
    L->action = (uint8_t)action;
    L->after = (uint8_t)after;
    t->pending++;
}

int locktab_unlock(locktab *t, const lt_req *r)
{
    uint64_t s, e;
    if (!fid_ok(&r->fid))
        return LT_INVAL;
    int rc = to_range(r->offset, r->length, &s, &e);
    if (rc != LT_OK)
        return rc;
    enter(t);
    lt_file *f = file_get(t, &r->fid, false);
    if (!f) {
        finish(t);
        return LT_OK;
    }
    lt_lock *ar = own_autorecover(f, r->who);
    if (ar && overlap(ar->start, ar->end, s, e)) {
        if (s > ar->start || e < ar->end) {
            finish(t);
            return LT_RANGE;
        }
        /* The owner has no other lock on this file (the AUTORECOVER lock
         * replaced them and refuses new ones): commit, and say whether the
         * log is gone (if not, a restart would roll the file back). */
        leave_autorecover(t, ar, ACT_COMMIT, AFTER_REMOVE);
        if (persist(t, f) != LT_OK)
            fprintf(stderr, "dafsd: lock table: cannot update the lock database\n");
        rc = run_action(t, f, ar);
        file_gc(t, f);
        finish(t);
        return rc == 0 ? LT_OK : LT_IO;
    }
    lt_sess *sess = sess_get(t, r->who.session, true);
    uint32_t saved = sess ? sess->locks : 0;
    lt_lock *snap = f->n ? malloc(f->n * sizeof(*snap)) : NULL;
    size_t snap_n = f->n;
    if (!sess || (f->n && !snap)) {
        free(snap);
        finish(t);
        return LT_RESOURCE;
    }
    if (snap_n)
        memcpy(snap, f->locks, snap_n * sizeof(*snap));
    rc = cut_range(t, f, r->who, s, e, false, NULL);
    sort_locks(f);
    if (rc == LT_OK && sess->locks > t->cfg.max_locks_per_session)
        rc = LT_RESOURCE; /* a split past the cap (POSIX: ENOLCK) */
    if (rc == LT_OK)
        rc = persist(t, f);
    if (rc != LT_OK) {
        if (snap_n)
            memcpy(f->locks, snap, snap_n * sizeof(*snap));
        f->n = snap_n;
        sess->locks = saved;
    }
    free(snap);
    sess_gc(t, r->who.session);
    if (rc == LT_OK)
        grant_waiters(t, f);
    file_gc(t, f);
    finish(t);
    return rc;
}

int locktab_cancel(locktab *t, uint64_t waiter_id)
{
    enter(t);
    for (unsigned b = 0; b < FILE_BUCKETS; b++)
        for (lt_file *f = t->files[b]; f; f = f->hnext)
            for (lt_waiter *w = f->wh; w; w = w->next)
                if (w->id == waiter_id) {
                    unlink_waiter(t, f, w);
                    grant_waiters(t, f); /* it may have held later ones back */
                    file_gc(t, f);
                    finish(t);
                    return LT_OK;
                }
    finish(t);
    return LT_NOENT;
}

int locktab_abort(locktab *t, const lt_req *r)
{
    if (!fid_ok(&r->fid))
        return LT_INVAL;
    enter(t);
    lt_file *f = file_get(t, &r->fid, false);
    lt_lock *ar = f ? own_autorecover(f, r->who) : NULL;
    if (!ar) {
        finish(t);
        return LT_NOENT;
    }
    leave_autorecover(t, ar, ACT_ROLLBACK, AFTER_REMOVE);
    persist(t, f); /* a PERSIST|AUTORECOVER lock leaves the database */
    int rc = run_action(t, f, ar);
    file_gc(t, f);
    finish(t);
    return rc == 0 ? LT_OK : LT_IO;
}

/* ---- releases ------------------------------------------------------------------------------- */

typedef struct lt_match {
    uint64_t session;
    bool by_stateid;
    uint64_t stateid;
    bool by_owner;
    lt_owner who;
} lt_match;

static bool matches(const lt_match *m, lt_owner who, uint64_t stateid)
{
    if (who.session != m->session)
        return false;
    if (m->by_stateid && stateid != m->stateid)
        return false;
    if (m->by_owner && !same_owner(who, m->who))
        return false;
    return true;
}

/* What happens to one live lock when its owner goes (`how`); it may be
 * removed from the array. */
static void end_lock(locktab *t, lt_file *f, size_t i, enum lt_end how)
{
    lt_lock *L = &f->locks[i];
    bool ar = L->flags & LT_AUTORECOVER;
    if (how == LT_END_CLEAN) {
        if (ar) {
            leave_autorecover(t, L, ACT_COMMIT, AFTER_REMOVE);
            return;
        }
        remove_lock(t, f, i);
        return;
    }
    if (L->repair || (L->flags & LT_PERSIST)) {
        if (how == LT_END_LEASE && !L->repair) {
            kill_lock(t, L);
            L->state = LT_BREAKABLE;
        } else {
            break_lock(t, L); /* re-initialization, or a repair cut short */
        }
        return;
    }
    if (ar) {
        leave_autorecover(t, L, ACT_ROLLBACK, AFTER_REMOVE);
        return;
    }
    remove_lock(t, f, i);
}

static void release_matching(locktab *t, const lt_match *m, enum lt_end how)
{
    for (unsigned b = 0; b < FILE_BUCKETS; b++) {
        for (lt_file *f = t->files[b], *next; f; f = next) {
            next = f->hnext;
            bool changed = false;
            for (lt_waiter *w = f->wh, *wn; w; w = wn) {
                wn = w->next;
                if (matches(m, w->req.who, w->req.stateid)) {
                    note(t, w->id, LT_SHUTDOWN, &w->req, NULL);
                    unlink_waiter(t, f, w);
                    changed = true;
                }
            }
            for (size_t i = 0; i < f->n;) {
                lt_lock *L = &f->locks[i];
                if (!L->dead && matches(m, L->who, L->stateid)) {
                    changed = true;
                    size_t before = f->n;
                    end_lock(t, f, i, how);
                    if (f->n < before)
                        continue;
                } else if (how == LT_END_REINIT && L->dead && L->state == LT_BREAKABLE &&
                           L->who.session == m->session && !m->by_owner && !m->by_stateid) {
                    break_lock(t, L); /* §4.4.1.5: broken "regardless of whether it was
                                       * breakable" */
                    changed = true;
                }
                i++;
            }
            if (!changed)
                continue;
            if (persist(t, f) != LT_OK)
                fprintf(stderr, "dafsd: lock table: cannot update the lock database\n");
            grant_waiters(t, f);
            file_gc(t, f);
        }
    }
}

void locktab_release_open(locktab *t, uint64_t session, uint64_t stateid)
{
    lt_match m = {.session = session, .by_stateid = true, .stateid = stateid};
    enter(t);
    release_matching(t, &m, LT_END_CLEAN);
    finish(t);
}

void locktab_release_owner(locktab *t, lt_owner who)
{
    lt_match m = {.session = who.session, .by_owner = true, .who = who};
    enter(t);
    release_matching(t, &m, LT_END_CLEAN);
    finish(t);
}

void locktab_release_session(locktab *t, uint64_t session, enum lt_end how)
{
    lt_match m = {.session = session};
    enter(t);
    release_matching(t, &m, how);
    finish(t);
}

/* ---- I/O checks and statistics -------------------------------------------------------------- */

static int io_check(locktab *t, const lt_fid *fid, uint64_t session, uint64_t offset,
                    uint64_t length, bool write, bool *undo, bool *counted)
{
    uint64_t s, e;
    if (undo)
        *undo = false;
    if (!fid_ok(fid))
        return LT_INVAL;
    if (length == 0)
        length = LT_TO_EOF;
    if (to_range(offset, length, &s, &e) != LT_OK)
        e = UINT64_MAX;
    pthread_mutex_lock(&t->mu);
    lt_file *f = file_get(t, fid, false);
    int rc = t->grace ? LT_GRACE : LT_OK;
    for (size_t i = 0; f && rc == LT_OK && i < f->n; i++) {
        const lt_lock *L = &f->locks[i];
        if (L->state == LT_ROLLBACK) {
            rc = LT_BUSY; /* rolled back before anyone reads it; holds the whole file */
            break;
        }
        if (!overlap(L->start, L->end, s, e))
            continue;
        if (L->state == LT_BROKEN_STATE && (write || L->type == LT_EXCL)) {
            rc = LT_BROKEN;
            break;
        }
        if (undo && !L->dead && L->who.session == session && (L->flags & LT_AUTORECOVER))
            *undo = true;
    }
    if (rc == LT_OK && f && counted) {
        f->io++;
        *counted = true;
    }
    pthread_mutex_unlock(&t->mu);
    if (rc != LT_OK && undo)
        *undo = false;
    return rc;
}

bool locktab_empty(locktab *t)
{
    return atomic_load(&t->nfiles_seen) == 0;
}

int locktab_io_allowed(locktab *t, const lt_fid *fid, uint64_t session, uint64_t offset,
                       uint64_t length, bool write, bool *undo)
{
    return io_check(t, fid, session, offset, length, write, undo, NULL);
}

int locktab_io_begin(locktab *t, const lt_fid *fid, uint64_t session, uint64_t offset,
                     uint64_t length, bool write, bool *undo, bool *counted)
{
    *counted = false;
    return io_check(t, fid, session, offset, length, write, undo, counted);
}

void locktab_io_end(locktab *t, const lt_fid *fid)
{
    pthread_mutex_lock(&t->mu);
    lt_file *f = file_get(t, fid, false);
    if (f && f->io > 0) {
        f->io--;
        if (f->io == 0) {
            pthread_cond_broadcast(&t->idle);
            file_gc(t, f);
        }
    }
    pthread_mutex_unlock(&t->mu);
}

void locktab_grace_begin(locktab *t)
{
    pthread_mutex_lock(&t->mu);
    t->grace = true;
    pthread_mutex_unlock(&t->mu);
}

void locktab_grace_end(locktab *t)
{
    pthread_mutex_lock(&t->mu);
    t->grace = false;
    pthread_mutex_unlock(&t->mu);
}

void locktab_get_stats(locktab *t, locktab_stats *st)
{
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&t->mu);
    st->files = t->nfiles;
    st->waiters = t->nwaiters;
    for (unsigned b = 0; b < FILE_BUCKETS; b++)
        for (lt_file *f = t->files[b]; f; f = f->hnext)
            st->locks += f->n;
    st->broken = t->st_broken;
    st->rollbacks = t->st_rollbacks;
    st->rollback_failures = t->st_failures;
    st->io_waits = t->st_io_waits;
    pthread_mutex_unlock(&t->mu);
}

const char *locktab_status_name(int status)
{
    static const char *const names[] = {"OK",    "DENIED", "QUEUED",   "BROKEN",   "NOTSUPP",
                                        "INVAL", "RANGE",  "RESOURCE", "SHUTDOWN", "BUSY",
                                        "IO",    "NOENT",  "DEADLK",   "GRACE",    "NOGRACE"};
    return status >= 0 && status < (int)(sizeof(names) / sizeof(names[0])) ? names[status] : "?";
}
