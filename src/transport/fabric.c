/*
 * fabric.c — opening the libfabric endpoint behind transport.h; addressing.
 *
 * One dfab owns a fabric, domain, completion queue, address vector and one
 * FI_EP_RDM endpoint (FI_MSG|FI_RMA, FI_THREAD_SAFE).  Everything provider
 * specific is decided once in dfab_open() and kept as plain flags:
 *
 *  - Provider choice: cfg->provider, then $DAFS_PROVIDER, then $FI_PROVIDER
 *    (libfabric filters on that itself), then libfabric's order minus "net"
 *    (its wait fd spins in 1.17), "sockets" (deprecated, pathological
 *    latency) and "shm" (local only, used when asked), preferring
 *    tcp;ofi_rxm.  See /work/shared/libfabric-notes.md for the measurements.
 *  - Ordering: we ask every provider for FI_ORDER_SAW so a reply sent after
 *    an RMA write's completion cannot overtake the data.  Where it is not
 *    granted, RMA writes that must be visible before the reply are posted
 *    with FI_DELIVERY_COMPLETE instead.  shm 1.17 grants SAW when asked, at
 *    the price of its "fast RMA" (a synchronous process_vm_writev/readv by
 *    the initiator, taken only without FI_DELIVERY_COMPLETE): with SAW a
 *    4 KiB write is an inject-buffer copy the target applies before the
 *    reply behind it, where FI_DELIVERY_COMPLETE forced the SAR protocol and
 *    one more round trip before the reply could leave (4 KiB read QD1 floor
 *    ~2.4 -> ~1.7 us; larger writes use CMA with or without SAW).
 *  - Memory registration: all mr_mode bits we can honour are requested
 *    (LOCAL, VIRT_ADDR, ALLOCATED, PROV_KEY, ENDPOINT) and whatever the
 *    provider keeps is honoured in dfab_mr_reg(); FI_MR_RAW is refused.
 *  - Addressing: a listening tcp endpoint binds node:service via FI_SOURCE
 *    (service "0": the OS picks, dfab_bound_service() reports it).  shm has
 *    no ports; a name without the "fi_shm://" prefix is used verbatim as the
 *    shared-memory region name, so (node, service) maps deterministically to
 *    "dafs_shm_<service>" and a client given the same port finds the server.
 *    An flock on "<name>.lock" makes stale regions of crashed servers safe to
 *    remove (see shm_claim_name).  shm clients claim a random
 *    "dafs_shm_c<hex>" name the same way (see open_shm_any_port).
 *  - Test hook: $DAFS_FABRIC_MAX_MSG (>= 4096) lowers max_msg_size so tests
 *    can exercise splitting and EMSGSIZE on providers that allow SIZE_MAX.
 *  - Waiting: a CQ with a wait fd when the provider offers one, else
 *    FI_WAIT_NONE (shm); see fabric_progress.c.
 *
 * This file opens/closes the endpoint and handles addresses; memory and
 * posting live in fabric_ops.c, completions and waiting in
 * fabric_progress.c.
 */
#include "fabric_internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>

static _Thread_local char errbuf[256];

__attribute__((format(printf, 1, 2))) static const char *set_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return errbuf;
}

/* ---------------------------------------------------------------- open -- */

static const char *requested_provider(const dfab_config *cfg)
{
    if (cfg && cfg->provider && cfg->provider[0])
        return cfg->provider;
    const char *env = getenv("DAFS_PROVIDER");
    if (env && env[0])
        return env;
    return NULL; /* FI_PROVIDER, if set, is applied by libfabric itself */
}

static bool provider_is(const struct fi_info *info, const char *name)
{
    return info->fabric_attr && info->fabric_attr->prov_name &&
           strcmp(info->fabric_attr->prov_name, name) == 0;
}

static struct fi_info *make_hints(const char *prov, uint64_t extra_caps, bool want_saw)
{
    struct fi_info *hints = fablib.dupinfo(NULL);
    if (!hints)
        return NULL;
    hints->ep_attr->type = FI_EP_RDM;
    hints->caps = FI_MSG | FI_RMA | extra_caps;
    hints->mode = 0;
    hints->domain_attr->threading = FI_THREAD_SAFE;
    hints->domain_attr->mr_mode =
        FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED | FI_MR_PROV_KEY | FI_MR_ENDPOINT;
    if (want_saw) {
        hints->tx_attr->msg_order = FI_ORDER_SAW;
        hints->rx_attr->msg_order = FI_ORDER_SAW;
    }
    if (prov) {
        hints->fabric_attr->prov_name = strdup(prov);
        if (!hints->fabric_attr->prov_name) {
            fablib.freeinfo(hints);
            return NULL;
        }
    }
    return hints;
}

/* Rank a provider for default selection; lower is better, < 0 = skip. */
static int default_rank(const struct fi_info *info)
{
    static const char *const skipped[] = {"net", "sockets", "shm", "net;ofi_rxm",
                                          "sockets;ofi_rxm"};
    static const char *const hardware[] = {"verbs;ofi_rxm", "efa", "psm3", "psm2",
                                           "cxi",           "opx", "ucx"};
    for (size_t i = 0; i < sizeof skipped / sizeof skipped[0]; i++)
        if (provider_is(info, skipped[i]))
            return -1;
    for (size_t i = 0; i < sizeof hardware / sizeof hardware[0]; i++)
        if (provider_is(info, hardware[i]))
            return 0;
    if (provider_is(info, "tcp;ofi_rxm"))
        return 1;
    return 2;
}

/* Which provider to use, as a name: the requested one, or the best default. */
static int choose_provider(const char *requested, char *out, size_t outlen, const char **errmsg)
{
    struct fi_info *hints = make_hints(requested, 0, false);
    struct fi_info *list = NULL;
    if (!hints)
        return -ENOMEM;
    int ret = fablib.getinfo(DFAB_FI_VERSION, NULL, NULL, 0, hints, &list);
    fablib.freeinfo(hints);
    if (ret) {
        const char *fp = getenv("FI_PROVIDER");
        if (requested)
            *errmsg =
                set_err("no libfabric provider '%s' with FI_EP_RDM+FI_MSG+FI_RMA (%s)%s%s%s%s",
                        requested, fablib.strerror(-ret),
                        (strcmp(requested, "tcp") && strcmp(requested, "verbs"))
                            ? ""
                            : "; for RDM over it ask for '<name>;ofi_rxm'",
                        fp ? "; FI_PROVIDER='" : "", fp ? fp : "", fp ? "' also filters" : "");
        else
            *errmsg = set_err("no usable libfabric provider (FI_PROVIDER='%s'): %s", fp ? fp : "",
                              fablib.strerror(-ret));
        return ret == -FI_ENODATA ? -EPROTONOSUPPORT : fabric_errno(ret);
    }
    const struct fi_info *best = NULL;
    int best_rank = 1 << 30;
    for (const struct fi_info *cur = list; cur; cur = cur->next) {
        int rank = (requested || getenv("FI_PROVIDER")) ? 0 : default_rank(cur);
        if (rank >= 0 && rank < best_rank) {
            best = cur;
            best_rank = rank;
        }
    }
    if (!best) {
        fablib.freeinfo(list);
        *errmsg = set_err("only 'net'/'sockets'/'shm' providers found; ask for one explicitly");
        return -EPROTONOSUPPORT;
    }
    snprintf(out, outlen, "%s", best->fabric_attr->prov_name);
    fablib.freeinfo(list);
    return 0;
}

/* The provider found nothing for node: a name that does not resolve
 * (-EHOSTUNREACH) or an address it cannot use, e.g. IPv6 where it does only
 * IPv4 (-EAFNOSUPPORT). */
static int unusable_node(const char *prov, const char *node, const char **errmsg)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(node, NULL, &hints, &res);
    if (gai != 0) {
        *errmsg = set_err("cannot resolve '%s': %s", node, gai_strerror(gai));
        return -EHOSTUNREACH;
    }
    int family = res->ai_family;
    freeaddrinfo(res);
    *errmsg =
        set_err("libfabric provider '%s' cannot use the %s address '%s'%s", prov,
                family == AF_INET6  ? "IPv6"
                : family == AF_INET ? "IPv4"
                                    : "given",
                node, getenv("FI_TCP_IFACE") ? " (FI_TCP_IFACE limits it to one interface)" : "");
    return -EAFNOSUPPORT;
}

/* fi_getinfo for the chosen provider, trying the most wanted features first. */
static int get_final_info(const dfab_config *cfg, const char *prov, struct fi_info **out,
                          const char **errmsg)
{
    bool shm = strcmp(prov, "shm") == 0;
    const char *node = cfg->node ? cfg->node : "127.0.0.1";
    char shm_name[64];
    int ret = -FI_ENODATA;
    /* try: FI_SOURCE + SAW, FI_SOURCE, SAW, neither */
    for (int attempt = 0; attempt < 4 && ret; attempt++) {
        uint64_t extra = attempt < 2 ? FI_SOURCE : 0;
        bool saw = attempt % 2 == 0;
        struct fi_info *hints = make_hints(prov, extra, saw);
        if (!hints)
            return -ENOMEM;
        if (shm) {
            if (cfg->service) { /* a claimed dafs_shm_ name (see dfab_open) */
                snprintf(shm_name, sizeof shm_name, SHM_NAME_PREFIX "%s",
                         cfg->service ? cfg->service : "0");
                hints->addr_format = FI_ADDR_STR;
                hints->src_addr = strdup(shm_name);
                hints->src_addrlen = strlen(shm_name) + 1;
                if (!hints->src_addr) {
                    fablib.freeinfo(hints);
                    return -ENOMEM;
                }
            }
            ret = fablib.getinfo(DFAB_FI_VERSION, NULL, NULL, 0, hints, out);
        } else if (cfg->listen) {
            ret = fablib.getinfo(DFAB_FI_VERSION, node, cfg->service ? cfg->service : "0",
                                 FI_SOURCE, hints, out);
        } else {
            /* the destination lets libfabric pick a route-appropriate source */
            ret = fablib.getinfo(DFAB_FI_VERSION, node, "0", 0, hints, out);
        }
        fablib.freeinfo(hints);
    }
    if (ret) {
        *errmsg = set_err("libfabric provider '%s' cannot serve this endpoint: %s", prov,
                          fablib.strerror(-ret));
        if (ret == -FI_ENODATA && !shm)
            return unusable_node(prov, node, errmsg);
        return fabric_errno(ret);
    }
    return 0;
}

static void fill_limits(dfab *f)
{
    const struct fi_info *info = f->info;
    dfab_limits *l = &f->limits;
    snprintf(l->provider, sizeof l->provider, "%s", info->fabric_attr->prov_name);
    l->max_msg_size = info->ep_attr->max_msg_size;
    /* test hook: a smaller limit makes the RMA splitting and the EMSGSIZE
     * paths testable on providers whose limit is SIZE_MAX */
    const char *clamp = getenv("DAFS_FABRIC_MAX_MSG");
    if (clamp) {
        unsigned long long v = strtoull(clamp, NULL, 10);
        if (v >= 4096 && v < l->max_msg_size)
            l->max_msg_size = (size_t)v;
    }
    l->inject_size = info->tx_attr->inject_size;
    l->rma_iov_limit = info->tx_attr->rma_iov_limit ? info->tx_attr->rma_iov_limit : 1;
    l->tx_size = info->tx_attr->size;
    l->rx_size = info->rx_attr->size;
    l->mr_mode = (uint64_t)info->domain_attr->mr_mode;
    l->write_then_send_ordered =
        (info->tx_attr->msg_order & FI_ORDER_SAW) && (info->rx_attr->msg_order & FI_ORDER_SAW);
    l->virt_addr = (info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
    f->mr_local = (info->domain_attr->mr_mode & FI_MR_LOCAL) != 0;
    f->mr_endpoint = (info->domain_attr->mr_mode & FI_MR_ENDPOINT) != 0;
    f->mr_prov_key = (info->domain_attr->mr_mode & FI_MR_PROV_KEY) != 0;
    f->reports_source = (info->caps & FI_SOURCE) != 0;
    f->is_shm = strcmp(l->provider, "shm") == 0;
    /* shm 1.17 grants FI_SOURCE but reported fi_addr 0 for a peer never
     * inserted, even with another peer at 0 (measured): its source cannot
     * tell senders apart, so callers are told it names none */
    l->reports_source = f->reports_source && !f->is_shm;
    /* shm 1.17 sends more than its inject size (4 KiB) by CMA: the receiver
     * copies with process_vm_readv (~1.5 us here) and acknowledges */
    l->eager_msg_max = f->is_shm ? l->inject_size : SIZE_MAX;
}

static int open_cq(dfab *f)
{
    struct fi_cq_attr attr = {
        .size = f->limits.tx_size + f->limits.rx_size,
        .format = FI_CQ_FORMAT_DATA,
        .wait_obj = FI_WAIT_FD,
    };
    int ret = fi_cq_open(f->domain, &attr, &f->cq, NULL);
    if (ret == 0) {
        ret = fi_control(&f->cq->fid, FI_GETWAIT, &f->cq_wait_fd);
        if (ret == 0)
            return 0;
        fi_close(&f->cq->fid);
        f->cq = NULL;
    }
    /* no wait fd (shm): poll the CQ and sleep in between, see dfab_progress */
    f->cq_wait_fd = -1;
    attr.wait_obj = FI_WAIT_NONE;
    return fi_cq_open(f->domain, &attr, &f->cq, NULL);
}

static int open_objects(dfab *f, const char **errmsg)
{
    const char *step = "fi_fabric";
    int ret = fablib.fabric(f->info->fabric_attr, &f->fabric, NULL);
    if (!ret) {
        step = "fi_domain";
        ret = fi_domain(f->fabric, f->info, &f->domain, NULL);
    }
    if (!ret) {
        step = "fi_cq_open";
        ret = open_cq(f);
    }
    if (!ret) {
        struct fi_av_attr av_attr = {.type = FI_AV_TABLE};
        step = "fi_av_open";
        ret = fi_av_open(f->domain, &av_attr, &f->av, NULL);
    }
    if (!ret) {
        step = "fi_endpoint";
        ret = fi_endpoint(f->domain, f->info, &f->ep, NULL);
    }
    if (!ret) {
        step = "fi_ep_bind(av)";
        ret = fi_ep_bind(f->ep, &f->av->fid, 0);
    }
    if (!ret) {
        step = "fi_ep_bind(cq)";
        ret = fi_ep_bind(f->ep, &f->cq->fid, FI_TRANSMIT | FI_RECV);
    }
    if (!ret) {
        step = "fi_enable";
        ret = fi_enable(f->ep);
    }
    if (ret) {
        if (ret == -FI_EBUSY && f->is_shm)
            *errmsg =
                set_err("shm endpoint name already in use (%s: %s)", step, fablib.strerror(-ret));
        else
            *errmsg = set_err("%s failed: %s", step, fablib.strerror(-ret));
        return ret == -FI_EBUSY && f->is_shm ? -EADDRINUSE : fabric_errno(ret);
    }
    return 0;
}

static void close_objects(dfab *f)
{
    if (f->ep)
        fi_close(&f->ep->fid);
    if (f->av)
        fi_close(&f->av->fid);
    if (f->cq)
        fi_close(&f->cq->fid);
    if (f->domain)
        fi_close(&f->domain->fid);
    if (f->fabric)
        fi_close(&f->fabric->fid);
    f->ep = NULL;
    f->av = NULL;
    f->cq = NULL;
    f->domain = NULL;
    f->fabric = NULL;
    if (f->info)
        fablib.freeinfo(f->info);
    f->info = NULL;
}

/* Record the port we are reachable on.  tcp: parsed from fi_getname; shm:
 * the service baked into the region name. */
static int record_bound_service(dfab *f, const dfab_config *cfg)
{
    if (f->is_shm) {
        snprintf(f->bound_service, sizeof f->bound_service, "%s",
                 cfg->service ? cfg->service : "0");
        return 0;
    }
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        char raw[256];
    } name;
    size_t len = sizeof name;
    memset(&name, 0, sizeof name);
    int ret = fi_getname(&f->ep->fid, &name, &len);
    if (ret)
        return fabric_errno(ret);
    unsigned port;
    if (len >= sizeof name.in4 && name.sa.sa_family == AF_INET)
        port = ntohs(name.in4.sin_port);
    else if (len >= sizeof name.in6 && name.sa.sa_family == AF_INET6)
        port = ntohs(name.in6.sin6_port);
    else
        return -EAFNOSUPPORT;
    snprintf(f->bound_service, sizeof f->bound_service, "%u", port);
    return 0;
}

/* A crashed shm server leaves its region behind and libfabric then refuses
 * the name (-FI_EBUSY) forever.  So every dafs shm listener holds an flock on
 * "<name>.lock" for its lifetime: holding the lock proves any region of that
 * name is stale, and we unlink it before libfabric creates a fresh one.  The
 * lock file is removed on close; a locker that finds its file already
 * unlinked (inode changed) retries, so two listeners never share a name. */
static int lock_name_file(const char *lock_name, bool patient, int *lock_fd)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm/%s", lock_name);
    for (int attempt = 0; attempt < 8; attempt++) {
        int fd = shm_open(lock_name, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return -errno;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
            close(fd);
            if (e != -EADDRINUSE || !patient || attempt >= 3)
                return e;
            /* maybe only another opener's stale-region sweep: it lets go
             * within microseconds, a live server never does */
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            continue;
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(path, &named) == 0 && held.st_ino == named.st_ino &&
            held.st_dev == named.st_dev) {
            *lock_fd = fd;
            return 0;
        }
        close(fd); /* unlinked by its previous owner meanwhile: try again */
    }
    return -EADDRINUSE;
}

/* Remove what crashed listeners left behind: for every "dafs_shm_*.lock"
 * we can lock, nobody owns that name, so its region and lock file go.  Each
 * stale region is 16 MiB of tmpfs, and with random ports ("0") a name may
 * never be reused, so sweep whenever a listener opens. */
static void shm_sweep_stale(void)
{
    DIR *dir = opendir("/dev/shm");
    if (!dir)
        return;
    size_t prefix_len = strlen(SHM_NAME_PREFIX);
    const struct dirent *e;
    for (int examined = 0; examined < 4096 && (e = readdir(dir)) != NULL; examined++) {
        size_t len = strlen(e->d_name);
        if (len <= prefix_len + 5 || len >= 80 ||
            strncmp(e->d_name, SHM_NAME_PREFIX, prefix_len) != 0 ||
            strcmp(e->d_name + len - 5, ".lock") != 0)
            continue;
        char lock_name[80], region[80];
        snprintf(lock_name, sizeof lock_name, "%s", e->d_name);
        snprintf(region, sizeof region, "%.*s", (int)(len - 5), lock_name);
        int fd;
        if (lock_name_file(lock_name, false, &fd) != 0)
            continue; /* in use (or unreadable): leave it */
        shm_unlink(region);
        shm_unlink(lock_name);
        close(fd);
    }
    closedir(dir);
}

static int shm_claim_name(const char *service, int *lock_fd, const char **errmsg)
{
    shm_sweep_stale();
    char name[64], lock_name[80];
    snprintf(name, sizeof name, SHM_NAME_PREFIX "%s", service ? service : "0");
    snprintf(lock_name, sizeof lock_name, "%s.lock", name);
    int ret = lock_name_file(lock_name, true, lock_fd);
    if (ret) {
        if (ret == -EADDRINUSE)
            *errmsg = set_err("shm address '%s' is in use by another server", name);
        else
            *errmsg = set_err("cannot lock %s: %s", lock_name, strerror(-ret));
        return ret;
    }
    if (shm_unlink(name) != 0 && errno != ENOENT) {
        ret = -errno;
        close(*lock_fd);
        *lock_fd = -1;
        *errmsg = set_err("cannot remove stale shm region %s: %s", name, strerror(-ret));
        return ret;
    }
    return 0;
}

/* Called with the lock held, after the region is gone. */
static void shm_release_name(dfab *f)
{
    char lock_name[80];
    snprintf(lock_name, sizeof lock_name, SHM_NAME_PREFIX "%s.lock", f->bound_service);
    if (f->bound_service[0])
        shm_unlink(lock_name); /* best effort: a leftover lock file is harmless */
    close(f->shm_lock_fd);
    f->shm_lock_fd = -1;
}

static int open_with_provider(const dfab_config *cfg, const char *prov, dfab **out,
                              const char **errmsg)
{
    dfab *f = calloc(1, sizeof *f);
    if (!f)
        return -ENOMEM;
    f->cq_wait_fd = -1;
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->wake_fd < 0) {
        int e = -errno;
        free(f);
        *errmsg = set_err("eventfd failed: %s", strerror(-e));
        return e;
    }
    atomic_init(&f->next_requested_key, 1);
    f->shm_lock_fd = -1;
    f->peer_lock_fd = -1;
    int ret = 0;
    if (strcmp(prov, "shm") == 0 && cfg->service)
        ret = shm_claim_name(cfg->service, &f->shm_lock_fd, errmsg);
    if (!ret)
        ret = get_final_info(cfg, prov, &f->info, errmsg);
    if (!ret) {
        fill_limits(f);
        if (f->limits.mr_mode & FI_MR_RAW) {
            *errmsg = set_err("provider '%s' requires FI_MR_RAW keys, which dafs does not "
                              "support",
                              prov);
            ret = -ENOTSUP;
        }
    }
    if (!ret)
        ret = open_objects(f, errmsg);
    if (!ret && (cfg->listen || f->shm_lock_fd >= 0)) {
        ret = record_bound_service(f, cfg); /* shm clients: for shm_release_name */
        if (ret)
            *errmsg = set_err("cannot read the bound address: %s", strerror(-ret));
    }
    if (ret) {
        close_objects(f);
        if (f->shm_lock_fd >= 0)
            close(f->shm_lock_fd);
        close(f->wake_fd);
        free(f);
        return ret;
    }
    *out = f;
    return 0;
}

/* shm has no ports: for service "0" pick random numbers until a name is free.
 * Clients claim a name too ("c" and 8 hex digits, never a listener's port):
 * left to itself libfabric names a client's region after its pid, so one
 * SIGKILLed client left a region that made the next process to get that pid
 * fail to open its endpoint.  A claimed name is locked while in use and swept
 * by the next opener once its owner is gone. */
static int open_shm_any_port(const dfab_config *cfg, dfab **out, const char **errmsg)
{
    unsigned seed = (unsigned)(fabric_now_ns() ^ getpid());
    int ret = -EADDRINUSE;
    for (int attempt = 0; attempt < 64 && ret == -EADDRINUSE; attempt++) {
        char service[16];
        dfab_config c = *cfg;
        unsigned r = (unsigned)rand_r(&seed);
        if (cfg->listen)
            snprintf(service, sizeof service, "%u", 20000u + r % 40000u);
        else
            snprintf(service, sizeof service, "c%08x", r ^ (unsigned)rand_r(&seed) << 16);
        c.service = service;
        ret = open_with_provider(&c, "shm", out, errmsg);
    }
    return ret;
}

/* The service becomes part of a shm region name: keep it short and flat. */
static bool shm_service_ok(const char *service)
{
    if (!service)
        return true;
    size_t len = strlen(service);
    return len > 0 && len <= 32 && !strpbrk(service, "/:");
}

int dfab_open(const dfab_config *cfg, dfab **out, const char **errmsg)
{
    static const dfab_config defaults = {0};
    const char *dummy;
    char prov[64];
    if (!errmsg)
        errmsg = &dummy;
    *errmsg = NULL;
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!cfg)
        cfg = &defaults;
    int ret = fabric_load(errmsg);
    if (ret)
        return ret;
    ret = choose_provider(requested_provider(cfg), prov, sizeof prov, errmsg);
    if (ret)
        return ret;
    if (strcmp(prov, "shm") == 0 && !shm_service_ok(cfg->service)) {
        *errmsg = set_err("shm service '%s' must be a short name without '/' or ':'", cfg->service);
        return -EINVAL;
    }
    bool any_port = !cfg->service || strcmp(cfg->service, "0") == 0;
    if (strcmp(prov, "shm") == 0 && any_port)
        return open_shm_any_port(cfg, out, errmsg);
    return open_with_provider(cfg, prov, out, errmsg);
}

void dfab_close(dfab *f)
{
    if (!f)
        return;
    close_objects(f);
    if (f->shm_lock_fd >= 0)
        shm_release_name(f); /* after the region is gone */
    if (f->peer_lock_fd >= 0)
        close(f->peer_lock_fd);
    close(f->wake_fd);
    free(f);
}

const dfab_limits *dfab_get_limits(const dfab *f)
{
    return &f->limits;
}

/* ----------------------------------------------------------- addresses -- */

int dfab_getname(dfab *f, void *addr, size_t *len)
{
    int ret = fi_getname(&f->ep->fid, addr, len);
    return ret == -FI_ETOOSMALL ? -ENOSPC : fabric_errno(ret);
}

int dfab_insert_name(dfab *f, const void *addr, size_t len, dfab_addr *out)
{
    fi_addr_t fa = FI_ADDR_NOTAVAIL;
    char str[256];
    const void *name = addr;
    if (!addr || len == 0 || len >= sizeof str)
        return -EINVAL;
    if (f->info->addr_format == FI_ADDR_STR) {
        /* string names must be NUL-terminated whatever the peer sent */
        memcpy(str, addr, len);
        str[len] = '\0';
        if (strlen(str) == 0)
            return -EINVAL;
        name = str;
    }
    int ret = fi_av_insert(f->av, name, 1, &fa, 0, NULL);
    if (ret != 1)
        return ret < 0 ? fabric_errno(ret) : -EINVAL;
    *out = fa;
    return 0;
}

static int resolve_shm(dfab *f, const char *service, dfab_addr *out)
{
    char name[64];
    int n = snprintf(name, sizeof name, SHM_NAME_PREFIX "%s", service);
    if (n < 0 || (size_t)n >= sizeof name)
        return -EINVAL;
    return dfab_insert_name(f, name, (size_t)n + 1, out);
}

int dfab_resolve(dfab *f, const char *node, const char *service, dfab_addr *out)
{
    if (!service || !out)
        return -EINVAL;
    if (f->is_shm && !shm_service_ok(service))
        return -EINVAL;
    if (f->is_shm)
        return resolve_shm(f, service, out);
    struct fi_info *hints = fablib.dupinfo(f->info);
    struct fi_info *info = NULL;
    if (!hints)
        return -ENOMEM;
    free(hints->src_addr);
    hints->src_addr = NULL;
    hints->src_addrlen = 0;
    free(hints->dest_addr);
    hints->dest_addr = NULL;
    hints->dest_addrlen = 0;
    int ret = fablib.getinfo(DFAB_FI_VERSION, node ? node : "127.0.0.1", service, 0, hints, &info);
    fablib.freeinfo(hints);
    if (ret)
        return ret == -FI_ENODATA ? -EHOSTUNREACH : fabric_errno(ret);
    if (!info->dest_addr) {
        fablib.freeinfo(info);
        return -EHOSTUNREACH;
    }
    ret = dfab_insert_name(f, info->dest_addr, info->dest_addrlen, out);
    fablib.freeinfo(info);
    return ret;
}

int dfab_bound_service(dfab *f, char *buf, size_t len)
{
    if (!f->bound_service[0])
        return -ENOTCONN;
    int n = snprintf(buf, len, "%s", f->bound_service);
    return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int dfab_remove_addr(dfab *f, dfab_addr addr)
{
    fi_addr_t fa = addr;
    return fabric_errno(fi_av_remove(f->av, &fa, 1, 0));
}
