/*
 * openstate.c — per-session open state tables and the fd reaper (see
 * openstate.h for the design).
 */
#include "openstate.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "log.h"

#define OPENS_FIRST_CAP  16u
#define OPENS_FD_RESERVE 512u /* descriptors kept for everything else dafsd opens */

static _Atomic uint64_t global_count;
static uint64_t global_limit = 1024;

/* ---- the reaper: closes the fds of ended sessions off the network thread ---- */

typedef struct reap_batch {
    open_state *slots;
    uint32_t cap;
    struct reap_batch *next;
} reap_batch;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    reap_batch *head;
    bool running, stop;
    pthread_t thread;
} reaper = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void close_slots(open_state *slots, uint32_t cap)
{
    for (uint32_t i = 0; i < cap; i++)
        if (slots[i].used) {
            close(slots[i].fd);
            atomic_fetch_sub(&global_count, 1);
        }
    free(slots);
}

static void *reaper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&reaper.mu);
    for (;;) {
        while (!reaper.head && !reaper.stop)
            pthread_cond_wait(&reaper.cv, &reaper.mu);
        reap_batch *b = reaper.head;
        if (!b)
            break; /* stopping and nothing left */
        reaper.head = b->next;
        pthread_mutex_unlock(&reaper.mu);
        close_slots(b->slots, b->cap);
        free(b);
        pthread_mutex_lock(&reaper.mu);
    }
    pthread_mutex_unlock(&reaper.mu);
    return NULL;
}

int opens_start(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -errno;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    uint64_t nofile = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (uint64_t)rl.rlim_cur;
    global_limit = nofile > 2 * OPENS_FD_RESERVE ? nofile - OPENS_FD_RESERVE : nofile / 2;
    int rc = pthread_create(&reaper.thread, NULL, reaper_main, NULL);
    if (rc != 0)
        return -rc;
    reaper.running = true;
    return 0;
}

void opens_stop(void)
{
    if (!reaper.running)
        return;
    pthread_mutex_lock(&reaper.mu);
    reaper.stop = true;
    pthread_cond_signal(&reaper.cv);
    pthread_mutex_unlock(&reaper.mu);
    pthread_join(reaper.thread, NULL);
    reaper.running = false;
}

/* ---- tables ---------------------------------------------------------------- */

int opens_init(open_table *t, uint32_t limit)
{
    memset(t, 0, sizeof(*t));
    t->limit = limit ? limit : OPENS_DEFAULT_LIMIT;
    if (t->limit > (1u << 31))
        t->limit = 1u << 31;
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&t->idle, NULL) != 0) {
        pthread_mutex_destroy(&t->mu);
        return -1;
    }
    return 0;
}

void opens_discard(open_table *t)
{
    if (t->slots && t->used > 0) {
        reap_batch *b = malloc(sizeof(*b));
        pthread_mutex_lock(&reaper.mu);
        bool queued = b != NULL && reaper.running && !reaper.stop;
        if (queued) {
            *b = (reap_batch){.slots = t->slots, .cap = t->cap, .next = reaper.head};
            reaper.head = b;
            pthread_cond_signal(&reaper.cv);
        }
        pthread_mutex_unlock(&reaper.mu);
        if (!queued) { /* no reaper (startup, shutdown) or no memory: close here */
            free(b);
            close_slots(t->slots, t->cap);
        }
    } else {
        free(t->slots);
    }
    t->slots = NULL;
    t->cap = t->used = 0;
    pthread_cond_destroy(&t->idle);
    pthread_mutex_destroy(&t->mu);
}

static uint32_t random_gen(void)
{
    uint32_t g = 0;
    if (getrandom(&g, sizeof(g), GRND_NONBLOCK) != (ssize_t)sizeof(g))
        g = (uint32_t)rand();
    return g ? g : 1;
}

/* Make room for one more slot; false when out of memory. */
static bool grow_locked(open_table *t)
{
    uint32_t cap = t->cap ? t->cap * 2 : OPENS_FIRST_CAP;
    if (cap > t->limit)
        cap = t->limit;
    open_state *s = realloc(t->slots, (size_t)cap * sizeof(*s));
    if (!s)
        return false;
    for (uint32_t i = t->cap; i < cap; i++)
        s[i] = (open_state){.gen = random_gen(), .fd = -1};
    t->next_free = t->cap;
    t->slots = s;
    t->cap = cap;
    return true;
}

static dafs_stateid make_id(uint32_t gen, uint32_t index)
{
    return ((uint64_t)gen << 32) | index;
}

int opens_add(open_table *t, int fd, unsigned access, const dafs_fh *fh, dafs_stateid *stateid)
{
    pthread_mutex_lock(&t->mu);
    int status = DAFS_ST_OK;
    if (t->used >= t->limit)
        status = DAFS_ST_MFILE;
    else if (atomic_fetch_add(&global_count, 1) >= global_limit) {
        atomic_fetch_sub(&global_count, 1);
        status = DAFS_ST_MFILE;
    } else if (t->used == t->cap && !grow_locked(t)) {
        atomic_fetch_sub(&global_count, 1);
        status = DAFS_ST_NOMEM;
    }
    if (status != DAFS_ST_OK) {
        pthread_mutex_unlock(&t->mu);
        return status;
    }
    uint32_t i = t->next_free < t->cap ? t->next_free : 0;
    while (t->slots[i].used) /* used < cap, so a free slot exists */
        i = (i + 1) % t->cap;
    open_state *s = &t->slots[i];
    s->gen = s->gen + 1 ? s->gen + 1 : 1; /* a new id for every use of the slot */
    s->used = true;
    s->closing = false;
    s->access = access;
    s->refs = 0;
    s->fd = fd;
    s->fh = *fh;
    t->used++;
    t->next_free = (i + 1) % t->cap;
    *stateid = make_id(s->gen, i);
    pthread_mutex_unlock(&t->mu);
    return DAFS_ST_OK;
}

static bool fh_same(const dafs_fh *a, const dafs_fh *b)
{
    return a->len == b->len && a->len <= DAFS_FH_MAX && memcmp(a->data, b->data, a->len) == 0;
}

/* The live state stateid names, for fh; NULL if none. */
static open_state *find_locked(open_table *t, dafs_stateid stateid, const dafs_fh *fh)
{
    uint32_t index = (uint32_t)stateid, gen = (uint32_t)(stateid >> 32);
    if (index >= t->cap)
        return NULL;
    open_state *s = &t->slots[index];
    if (!s->used || s->closing || s->gen != gen || !fh_same(&s->fh, fh))
        return NULL;
    return s;
}

int opens_get(open_table *t, dafs_stateid stateid, const dafs_fh *fh, unsigned need, open_ref *out)
{
    pthread_mutex_lock(&t->mu);
    open_state *s = find_locked(t, stateid, fh);
    int status = DAFS_ST_OK;
    if (!s)
        status = DAFS_ST_BADSTATEID;
    else if ((s->access & need) != need)
        status = DAFS_ST_BADF;
    else {
        s->refs++;
        *out = (open_ref){.fd = s->fd, .index = (uint32_t)stateid, .access = s->access};
    }
    pthread_mutex_unlock(&t->mu);
    return status;
}

void opens_put(open_table *t, const open_ref *ref)
{
    pthread_mutex_lock(&t->mu);
    open_state *s = &t->slots[ref->index];
    if (--s->refs == 0 && s->closing)
        pthread_cond_broadcast(&t->idle);
    pthread_mutex_unlock(&t->mu);
}

int opens_close(open_table *t, dafs_stateid stateid, const dafs_fh *fh)
{
    pthread_mutex_lock(&t->mu);
    open_state *s = find_locked(t, stateid, fh);
    if (!s) {
        pthread_mutex_unlock(&t->mu);
        return DAFS_ST_BADSTATEID;
    }
    uint32_t index = (uint32_t)stateid;
    s->closing = true;
    while (t->slots[index].refs > 0)
        pthread_cond_wait(&t->idle, &t->mu);
    s = &t->slots[index]; /* the array may have moved while we waited */
    int fd = s->fd;
    s->used = false;
    s->closing = false;
    s->fd = -1;
    t->used--;
    pthread_mutex_unlock(&t->mu);
    atomic_fetch_sub(&global_count, 1);
    if (close(fd) != 0 && errno != EINTR)
        log_error("close of an open state's fd failed: %s", strerror(errno));
    return DAFS_ST_OK;
}

int opens_fstat_fh(open_table *t, const dafs_fh *fh, struct stat *st)
{
    int status = DAFS_ST_STALE;
    pthread_mutex_lock(&t->mu);
    for (uint32_t i = 0; i < t->cap && status != DAFS_ST_OK; i++) {
        const open_state *s = &t->slots[i];
        if (s->used && !s->closing && fh_same(&s->fh, fh) && fstat(s->fd, st) == 0)
            status = DAFS_ST_OK;
    }
    pthread_mutex_unlock(&t->mu);
    return status;
}

uint32_t opens_count(open_table *t)
{
    pthread_mutex_lock(&t->mu);
    uint32_t n = t->used;
    pthread_mutex_unlock(&t->mu);
    return n;
}
