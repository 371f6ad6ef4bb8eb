/*
 * fault.c — see fault.h.
 */
#include "fault.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t fault_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_int fault_state; /* 0 = not parsed, 1 = inert, 2 = armed */
static char fault_name[128];
static unsigned long fault_at, fault_hits;

static void fault_parse_locked(void)
{
    const char *spec = getenv("DAFS_FAULT");
    fault_hits = 0;
    fault_at = 0;
    fault_name[0] = '\0';
    const char *colon = spec ? strrchr(spec, ':') : NULL;
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(fault_name)) {
        atomic_store(&fault_state, 1);
        return;
    }
    char *end;
    unsigned long n = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || n == 0) {
        atomic_store(&fault_state, 1);
        return;
    }
    memcpy(fault_name, spec, (size_t)(colon - spec));
    fault_name[colon - spec] = '\0';
    fault_at = n;
    atomic_store(&fault_state, 2);
}

void fault_reset(void)
{
    pthread_mutex_lock(&fault_mu);
    fault_parse_locked();
    pthread_mutex_unlock(&fault_mu);
}

void fault_point(const char *name)
{
    int st = atomic_load_explicit(&fault_state, memory_order_relaxed);
    if (st == 1)
        return;
    pthread_mutex_lock(&fault_mu);
    if (atomic_load(&fault_state) == 0)
        fault_parse_locked();
    bool hit =
        atomic_load(&fault_state) == 2 && strcmp(name, fault_name) == 0 && ++fault_hits == fault_at;
    pthread_mutex_unlock(&fault_mu);
    if (hit)
        _exit(FAULT_EXIT_CODE);
}
