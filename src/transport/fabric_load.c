/*
 * fabric_load.c — libfabric, loaded on first use.
 *
 * Debian's libfabric.so.1 links libpsm2 and libpsm_infinipath, whose
 * constructors probe for their adapters and sleep while doing it: about
 * 0.2 s before main() in every program that links libfabric, even for
 * `dafs --version`.  So nothing links it: the first dfab_open() loads
 * libfabric.so.1 with dlopen and takes the five functions the transport
 * calls by name (everything else in the libfabric API is an inline wrapper
 * around the objects' ops tables).  Programs that never open an endpoint
 * (--help, --version, argument errors, dafsd refusing its configuration)
 * never pay for it.  The library stays loaded for the life of the process.
 * Signal handlers its dependencies install while loading are undone (see
 * save_signals).
 *
 * Each symbol is taken at the version our headers were compiled against
 * (dlvsym), as the linker would have bound it; plain dlsym (the default
 * version) only if that version is missing.
 */
#include "fabric_internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#define LIBFABRIC_SONAME "libfabric.so.1"

struct fabric_lib fablib;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_status;
static char load_error[256];

static void *lookup(void *lib, const char *name, const char *version)
{
    void *p = dlvsym(lib, name, version);
    return p ? p : dlsym(lib, name);
}

/* The constructors of libpsm_infinipath/libpsm2 install handlers for
 * SIGINT, SIGTERM, SIGSEGV, SIGBUS, SIGILL and SIGABRT (one that prints a
 * backtrace and exits 1).  Linked, they ran before main() and the program's
 * own handlers replaced theirs; loaded later they would replace the
 * program's (dafsd's SIGTERM shutdown, the CLI's SIGINT cleanup).  So the
 * dispositions are saved around dlopen and put back where they changed. */
static void save_signals(struct sigaction *saved)
{
    for (int sig = 1; sig < 32; sig++)
        if (sig != SIGKILL && sig != SIGSTOP && sigaction(sig, NULL, &saved[sig]) != 0)
            saved[sig].sa_handler = SIG_ERR; /* not restorable: leave it alone */
}

static void restore_signals(const struct sigaction *saved)
{
    for (int sig = 1; sig < 32; sig++) {
        struct sigaction now;
        if (sig == SIGKILL || sig == SIGSTOP || saved[sig].sa_handler == SIG_ERR ||
            sigaction(sig, NULL, &now) != 0)
            continue;
        if (now.sa_handler != saved[sig].sa_handler || now.sa_flags != saved[sig].sa_flags)
            (void)sigaction(sig, &saved[sig], NULL); /* best effort, nothing to report to */
    }
}

static void load(void)
{
    struct sigaction saved[32];
    memset(saved, 0, sizeof saved);
    save_signals(saved);
    void *lib = dlopen(LIBFABRIC_SONAME, RTLD_NOW | RTLD_GLOBAL);
    restore_signals(saved);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load %s: %s", LIBFABRIC_SONAME,
                 why ? why : "unknown error");
        load_status = -ELIBACC;
        return;
    }
    struct fabric_lib l = {
        .getinfo = (__typeof__(l.getinfo))lookup(lib, "fi_getinfo", "FABRIC_1.3"),
        .freeinfo = (__typeof__(l.freeinfo))lookup(lib, "fi_freeinfo", "FABRIC_1.3"),
        .dupinfo = (__typeof__(l.dupinfo))lookup(lib, "fi_dupinfo", "FABRIC_1.3"),
        .fabric = (__typeof__(l.fabric))lookup(lib, "fi_fabric", "FABRIC_1.1"),
        .strerror = (__typeof__(l.strerror))lookup(lib, "fi_strerror", "FABRIC_1.0"),
    };
    if (!l.getinfo || !l.freeinfo || !l.dupinfo || !l.fabric || !l.strerror) {
        snprintf(load_error, sizeof load_error,
                 "%s lacks a function dafs needs (fi_getinfo, "
                 "fi_freeinfo, fi_dupinfo, fi_fabric, fi_strerror)",
                 LIBFABRIC_SONAME);
        load_status = -ELIBBAD;
        return; /* leave it loaded: unloading a half-used library gains nothing */
    }
    fablib = l;
}

int fabric_load(const char **errmsg)
{
    (void)pthread_once(&load_once, load);
    if (load_status != 0 && errmsg)
        *errmsg = load_error;
    return load_status;
}
