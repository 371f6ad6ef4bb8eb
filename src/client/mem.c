/*
 * mem.c — explicit memory registration for zero-copy I/O.
 *
 * dafs_mem_register registers a buffer for local use and for the server's
 * RMA in both directions and keeps it in a per-session list.  pread/pwrite
 * look their buffer up here: a buffer inside a registered region is handed to
 * the server as is (no copy, no registration on the I/O path).  The list is
 * short in practice (a few big regions), so a linear scan under a mutex is
 * enough.  The caller must not deregister a region while I/O on it runs.
 */
#include <errno.h>
#include <stdlib.h>

#include "client.h"

dfab_mr *mem_find_region(dafs_session *s, const void *buf, size_t len)
{
    uintptr_t start = (uintptr_t)buf;
    dfab_mr *found = NULL;
    pthread_mutex_lock(&s->regions_lock);
    for (client_region *r = s->regions; r != NULL; r = r->next) {
        uintptr_t base = (uintptr_t)r->mr->base;
        if (start >= base && len <= r->mr->len && start - base <= r->mr->len - len) {
            found = r->mr;
            break;
        }
    }
    pthread_mutex_unlock(&s->regions_lock);
    return found;
}

int dafs_mem_register(dafs_session *s, void *buf, size_t len, dafs_mr **out)
{
    if (s == NULL || buf == NULL || len == 0 || out == NULL)
        return -EINVAL;
    *out = NULL;
    dafs_mr *handle = calloc(1, sizeof *handle);
    client_region *region = calloc(1, sizeof *region);
    if (handle == NULL || region == NULL) {
        free(handle);
        free(region);
        return -ENOMEM;
    }
    int rc = dfab_mr_reg(s->fab, buf, len,
                         DFAB_ACCESS_LOCAL | DFAB_ACCESS_REMOTE_READ | DFAB_ACCESS_REMOTE_WRITE,
                         &region->mr);
    if (rc < 0) {
        free(handle);
        free(region);
        return rc == -ENOMEM ? -ENOMEM : -DAFS_ETRANSPORT;
    }
    handle->s = s;
    handle->region = region;
    region->handle = handle;
    pthread_mutex_lock(&s->regions_lock);
    region->next = s->regions;
    s->regions = region;
    pthread_mutex_unlock(&s->regions_lock);
    *out = handle;
    return 0;
}

int dafs_mem_deregister(dafs_mr *mr)
{
    if (mr == NULL)
        return -EINVAL;
    dafs_session *s = mr->s;
    bool found = false;
    pthread_mutex_lock(&s->regions_lock);
    for (client_region **pp = &s->regions; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == mr->region) {
            *pp = mr->region->next;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&s->regions_lock);
    if (found) {
        dfab_mr_close(mr->region->mr);
        free(mr->region);
    }
    free(mr);
    return found ? 0 : -EINVAL;
}

/* At disconnect: close the registrations the application left behind and
 * free their handles (like files and directories, a session's dafs_mr handles
 * are invalid once it is disconnected). */
void mem_free_all(dafs_session *s)
{
    pthread_mutex_lock(&s->regions_lock);
    client_region *r = s->regions;
    s->regions = NULL;
    pthread_mutex_unlock(&s->regions_lock);
    while (r != NULL) {
        client_region *next = r->next;
        dfab_mr_close(r->mr);
        free(r->handle);
        free(r);
        r = next;
    }
}
