/*
 * nodes.c — the table between FUSE node ids and dafs file handles.
 *
 * The kernel names files by 64-bit node ids and counts how many times each id
 * was returned by lookup/create/mkdir/...; it sends FORGET with that count
 * when it drops the inode.  The server names files by opaque handles.  Each
 * handle we have given the kernel gets one heap node; the node's address is
 * its node id (the root is FUSE_ROOT_ID and never freed).  A hash table on
 * the handle bytes finds the existing node when the same object is looked up
 * again (another name, a hard link), so one server object is one kernel
 * inode.  The table doubles when it holds twice as many nodes as buckets.
 * (Unlink of an open file needs nothing here: the open holds server-side
 * open state, which keeps the file usable; see ops.c.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dafs_fuse.h"

#define NODES_INITIAL_BUCKETS 1024u

static uint64_t handle_hash(const dafs_handle *h)
{
    uint64_t x = 1469598103934665603ull; /* FNV-1a */
    for (unsigned i = 0; i < h->len; i++) {
        x ^= h->data[i];
        x *= 1099511628211ull;
    }
    return x;
}

static int handle_equal(const dafs_handle *a, const dafs_handle *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

int nodes_init(struct dfuse_nodes *t, const dafs_handle *root)
{
    memset(t, 0, sizeof *t);
    t->buckets = calloc(NODES_INITIAL_BUCKETS, sizeof *t->buckets);
    if (t->buckets == NULL)
        return -1;
    t->nbuckets = NODES_INITIAL_BUCKETS;
    t->root.handle = *root;
    t->root.nlookup = 1;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t->buckets);
        return -1;
    }
    return 0;
}

void nodes_destroy(struct dfuse_nodes *t)
{
    for (size_t b = 0; b < t->nbuckets; b++) {
        struct dfuse_node *n = t->buckets[b];
        while (n != NULL) {
            struct dfuse_node *next = n->next;
            free(n);
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    pthread_mutex_destroy(&t->lock);
}

const struct dfuse_node *nodes_get(struct dfuse_nodes *t, fuse_ino_t ino)
{
    if (ino == FUSE_ROOT_ID)
        return &t->root;
    return (const struct dfuse_node *)(uintptr_t)ino;
}

/* Rehash into twice the buckets; on allocation failure keep the old table
 * (longer chains, still correct). */
static void nodes_grow(struct dfuse_nodes *t)
{
    size_t nb = t->nbuckets * 2;
    struct dfuse_node **nbk = calloc(nb, sizeof *nbk);
    if (nbk == NULL)
        return;
    for (size_t b = 0; b < t->nbuckets; b++) {
        struct dfuse_node *n = t->buckets[b];
        while (n != NULL) {
            struct dfuse_node *next = n->next;
            size_t i = handle_hash(&n->handle) & (nb - 1);
            n->next = nbk[i];
            nbk[i] = n;
            n = next;
        }
    }
    free(t->buckets);
    t->buckets = nbk;
    t->nbuckets = nb;
}

fuse_ino_t nodes_ref(struct dfuse_nodes *t, const dafs_handle *h)
{
    if (handle_equal(h, &t->root.handle))
        return FUSE_ROOT_ID;
    pthread_mutex_lock(&t->lock);
    size_t i = handle_hash(h) & (t->nbuckets - 1);
    struct dfuse_node *n = t->buckets[i];
    while (n != NULL && !handle_equal(&n->handle, h))
        n = n->next;
    if (n == NULL) {
        n = calloc(1, sizeof *n);
        if (n == NULL) {
            pthread_mutex_unlock(&t->lock);
            return 0;
        }
        n->handle = *h;
        n->next = t->buckets[i];
        t->buckets[i] = n;
        t->count++;
        if (t->count > 2 * t->nbuckets)
            nodes_grow(t);
    }
    n->nlookup++;
    pthread_mutex_unlock(&t->lock);
    return (fuse_ino_t)(uintptr_t)n;
}

void nodes_forget(struct dfuse_nodes *t, fuse_ino_t ino, uint64_t count)
{
    if (ino == FUSE_ROOT_ID)
        return;
    struct dfuse_node *node = (struct dfuse_node *)(uintptr_t)ino;
    pthread_mutex_lock(&t->lock);
    node->nlookup = count >= node->nlookup ? 0 : node->nlookup - count;
    if (node->nlookup == 0) {
        struct dfuse_node **p = &t->buckets[handle_hash(&node->handle) & (t->nbuckets - 1)];
        while (*p != NULL && *p != node)
            p = &(*p)->next;
        if (*p == node)
            *p = node->next;
        t->count--;
        free(node);
    }
    pthread_mutex_unlock(&t->lock);
}

size_t nodes_count(struct dfuse_nodes *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

/* Under the lock: the node for h, without taking a reference. */
static struct dfuse_node *nodes_find_locked(struct dfuse_nodes *t, const dafs_handle *h)
{
    if (handle_equal(h, &t->root.handle))
        return &t->root;
    struct dfuse_node *n = t->buckets[handle_hash(h) & (t->nbuckets - 1)];
    while (n != NULL && !handle_equal(&n->handle, h))
        n = n->next;
    return n;
}

void nodes_set_parent(struct dfuse_nodes *t, fuse_ino_t ino, const dafs_handle *parent,
                      const char *name)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    size_t len = strlen(name);
    if (ino == FUSE_ROOT_ID || len == 0 || len >= sizeof n->name)
        return;
    pthread_mutex_lock(&t->lock);
    n->has_parent = 1;
    n->parent = *parent;
    memcpy(n->name, name, len + 1);
    n->moved_told = 0;
    pthread_mutex_unlock(&t->lock);
}

int nodes_dir_parent(struct dfuse_nodes *t, const dafs_handle *dir, dafs_handle *parent,
                     char *name, size_t len, uint64_t serial, uint64_t now_ns, uint64_t ttl_ns,
                     int *fresh)
{
    pthread_mutex_lock(&t->lock);
    struct dfuse_node *n = nodes_find_locked(t, dir);
    int known = n != NULL && n->has_parent && strlen(n->name) < len;
    if (known) {
        *parent = n->parent;
        memcpy(name, n->name, strlen(n->name) + 1);
        *fresh = n->srch_serial == serial && n->srch_ns + ttl_ns >= now_ns;
    }
    pthread_mutex_unlock(&t->lock);
    return known;
}

void nodes_dir_searched(struct dfuse_nodes *t, const dafs_handle *dir, uint64_t serial,
                        uint64_t now_ns)
{
    pthread_mutex_lock(&t->lock);
    struct dfuse_node *n = nodes_find_locked(t, dir);
    if (n != NULL) {
        n->srch_serial = serial;
        n->srch_ns = now_ns;
    }
    pthread_mutex_unlock(&t->lock);
}

int nodes_moved(struct dfuse_nodes *t, fuse_ino_t ino, int moved)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    pthread_mutex_lock(&t->lock);
    int tell = moved && !n->moved_told;
    n->moved_told = moved;
    pthread_mutex_unlock(&t->lock);
    return tell;
}

static int reached_as(const struct dfuse_node *n, const dafs_handle *dir, const char *name)
{
    return n->has_parent && strcmp(n->name, name) == 0 && handle_equal(&n->parent, dir);
}

void nodes_rename(struct dfuse_nodes *t, const dafs_handle *olddir, const char *oldname,
                  const dafs_handle *newdir, const char *newname, int exchange)
{
    struct dfuse_node *from = NULL, *to = NULL;
    if (strlen(oldname) >= sizeof from->name || strlen(newname) >= sizeof from->name)
        return;
    pthread_mutex_lock(&t->lock);
    for (size_t b = 0; b < t->nbuckets; b++) {
        for (struct dfuse_node *n = t->buckets[b]; n != NULL; n = n->next) {
            if (from == NULL && reached_as(n, olddir, oldname))
                from = n;
            else if (to == NULL && reached_as(n, newdir, newname))
                to = n;
        }
    }
    if (from != NULL) {
        from->parent = *newdir;
        snprintf(from->name, sizeof from->name, "%s", newname);
        from->moved_told = 0;
    }
    if (to != NULL) {
        if (exchange) {
            to->parent = *olddir;
            snprintf(to->name, sizeof to->name, "%s", oldname);
            to->moved_told = 0;
        } else {
            to->has_parent = 0; /* replaced: that name is not its any more */
        }
    }
    pthread_mutex_unlock(&t->lock);
}

void nodes_hold(struct dfuse_nodes *t, fuse_ino_t ino, uint64_t serial, int delta)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    const size_t slots = sizeof n->holders / sizeof n->holders[0];
    pthread_mutex_lock(&t->lock);
    size_t i = 0;
    while (i < slots && !(n->holders[i].count > 0 && n->holders[i].serial == serial))
        i++;
    if (i == slots && delta > 0) { /* a free slot, if any (else not tracked) */
        i = 0;
        while (i < slots && n->holders[i].count > 0)
            i++;
        if (i < slots)
            n->holders[i].serial = serial;
    }
    if (i < slots && delta > 0)
        n->holders[i].count++;
    else if (i < slots && n->holders[i].count > 0)
        n->holders[i].count--;
    pthread_mutex_unlock(&t->lock);
}

int nodes_held(struct dfuse_nodes *t, fuse_ino_t ino, uint64_t serial)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    int held = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i < sizeof n->holders / sizeof n->holders[0]; i++)
        held |= n->holders[i].count > 0 && n->holders[i].serial == serial;
    pthread_mutex_unlock(&t->lock);
    return held;
}

int nodes_seen_perm(struct dfuse_nodes *t, fuse_ino_t ino, uint32_t *mode, uint32_t *uid,
                    uint32_t *gid)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    pthread_mutex_lock(&t->lock);
    int seen = n->seen;
    *mode = n->seen_mode;
    *uid = n->seen_uid;
    *gid = n->seen_gid;
    pthread_mutex_unlock(&t->lock);
    return seen;
}

int nodes_is_reg(struct dfuse_nodes *t, fuse_ino_t ino)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    pthread_mutex_lock(&t->lock);
    int reg = n->seen && S_ISREG(n->seen_mode);
    pthread_mutex_unlock(&t->lock);
    return reg;
}

void nodes_note_locked(struct dfuse_nodes *t, fuse_ino_t ino)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    pthread_mutex_lock(&t->lock);
    n->locked = 1;
    pthread_mutex_unlock(&t->lock);
}

int nodes_locked(struct dfuse_nodes *t, fuse_ino_t ino)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    pthread_mutex_lock(&t->lock);
    int locked = n->locked;
    pthread_mutex_unlock(&t->lock);
    return locked;
}

int nodes_get_parent(struct dfuse_nodes *t, fuse_ino_t ino, dafs_handle *parent, char *name,
                     size_t len)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    pthread_mutex_lock(&t->lock);
    int known = n->has_parent && strlen(n->name) < len;
    if (known) {
        *parent = n->parent;
        memcpy(name, n->name, strlen(n->name) + 1);
    }
    pthread_mutex_unlock(&t->lock);
    return known;
}

static int ts_equal(const struct timespec_dafs *a, const struct timespec_dafs *b)
{
    return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

int nodes_attr_changed(struct dfuse_nodes *t, fuse_ino_t ino, const struct dafs_stat *st)
{
    struct dfuse_node *n = (struct dfuse_node *)nodes_get(t, ino);
    pthread_mutex_lock(&t->lock);
    int changed = !n->seen || n->seen_size != st->size || !ts_equal(&n->seen_mtime, &st->mtime) ||
                  !ts_equal(&n->seen_ctime, &st->ctime);
    n->seen = 1;
    n->seen_mode = st->mode;
    n->seen_uid = st->uid;
    n->seen_gid = st->gid;
    n->seen_size = st->size;
    n->seen_mtime = st->mtime;
    n->seen_ctime = st->ctime;
    pthread_mutex_unlock(&t->lock);
    return changed;
}

void nodes_note_attr(struct dfuse_nodes *t, fuse_ino_t ino, const struct dafs_stat *st)
{
    (void)nodes_attr_changed(t, ino, st);
}

char *nodes_children(struct dfuse_nodes *t, const dafs_handle *dir, size_t *count)
{
    char *buf = NULL;
    size_t used = 0, cap = 0;
    *count = 0;
    pthread_mutex_lock(&t->lock);
    for (size_t b = 0; b < t->nbuckets; b++) {
        for (struct dfuse_node *n = t->buckets[b]; n != NULL; n = n->next) {
            if (!n->has_parent || !handle_equal(&n->parent, dir))
                continue;
            size_t len = strlen(n->name) + 1;
            if (used + len > cap) {
                size_t ncap = cap ? 2 * cap : 4096;
                char *nb = realloc(buf, ncap);
                if (nb == NULL) {
                    pthread_mutex_unlock(&t->lock);
                    free(buf);
                    *count = 0;
                    return NULL;
                }
                buf = nb;
                cap = ncap;
            }
            memcpy(buf + used, n->name, len);
            used += len;
            (*count)++;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return buf;
}
