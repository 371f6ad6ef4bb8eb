/*
 * fabric.c — the libfabric endpoint behind transport.h.
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
 *  - Ordering: for providers other than shm we ask for FI_ORDER_SAW so a
 *    reply sent after an RMA write's completion cannot overtake the data.
 *    shm loses its fast path when asked for SAW, so for shm (and any provider
 *    that does not grant SAW) RMA writes that must be visible before the
 *    reply are posted with FI_DELIVERY_COMPLETE instead.
 *  - Memory registration: all mr_mode bits we can honour are requested
 *    (LOCAL, VIRT_ADDR, ALLOCATED, PROV_KEY, ENDPOINT) and whatever the
 *    provider keeps is honoured in dfab_mr_reg(); FI_MR_RAW is refused.
 *  - Addressing: a listening tcp endpoint binds node:service via FI_SOURCE
 *    (service "0": the OS picks, dfab_bound_service() reports it).  shm has
 *    no ports; a name without the "fi_shm://" prefix is used verbatim as the
 *    shared-memory region name, so (node, service) maps deterministically to
 *    "dafs_shm_<service>" and a client given the same port finds the server.
 *  - Test hook: $DAFS_FABRIC_MAX_MSG (>= 4096) lowers max_msg_size so tests
 *    can exercise splitting and EMSGSIZE on providers that allow SIZE_MAX.
 *  - Waiting: dfab_progress() spins on fi_cq_read for ~30 us, then blocks in
 *    poll() on the CQ's wait fd plus an eventfd used by dfab_wake().  shm
 *    cannot give a wait fd (fi_cq_open fails) and its FI_WAIT_UNSPEC spins,
 *    so for a CQ without a fd we sleep on the eventfd with a backoff growing
 *    from 50 us to 1 ms, keeping an idle process near 0 % CPU.
 *
 * Completion contexts are always the caller's dfab_op.  Split RMA posts
 * several parts with the same op and counts them down in op->parts_left
 * (atomically: parts may complete on another progressing thread while the
 * poster is still posting); the last part calls op->done with the first
 * error seen.
 */
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/fi_rma.h>

#define DFAB_FI_VERSION FI_VERSION(1, 17)
#define SPIN_NS 30000L                 /* poll the CQ this long before blocking */
#define EAGAIN_RETRY_NS 5000000000LL   /* give up a post stuck on -FI_EAGAIN after 5 s */
#define MAX_NESTED_PROGRESS 4          /* EAGAIN retries from inside callbacks */
#define SHM_SLEEP_MIN_NS 50000L
#define SHM_SLEEP_MAX_NS 1000000L
#define SHM_BUSY_WINDOW_NS 2000000L    /* naps stay short this long after traffic */
#define CQ_BATCH 16
#define SHM_NAME_PREFIX "dafs_shm_"

struct dfab {
    struct fi_info *info;
    struct fid_fabric *fabric;
    struct fid_domain *domain;
    struct fid_cq *cq;
    struct fid_av *av;
    struct fid_ep *ep;
    dfab_limits limits;
    bool is_shm;
    bool reports_source;       /* FI_SOURCE granted: fi_cq_readfrom is meaningful */
    bool mr_local;             /* FI_MR_LOCAL: descriptors required */
    bool mr_endpoint;          /* FI_MR_ENDPOINT: bind MRs to the ep */
    bool mr_prov_key;          /* FI_MR_PROV_KEY: provider picks keys */
    int cq_wait_fd;            /* -1 when the CQ has no wait fd */
    int wake_fd;               /* eventfd for dfab_wake */
    atomic_uint_fast64_t next_requested_key;
    _Atomic int64_t last_activity_ns;  /* last completion or post, for nap lengths */
    char bound_service[32];
};

static _Thread_local char errbuf[256];
static _Thread_local int progress_depth;

__attribute__((format(printf, 1, 2))) static const char *set_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return errbuf;
}

/* libfabric returns -FI_Exxx, which equal -Exxx for the errno range; map the
 * libfabric-only codes to something an errno user understands. */
static int to_errno(ssize_t ret)
{
    int e = (int)(ret < 0 ? -ret : ret);
    if (e == FI_ETRUNC)
        return -EMSGSIZE;
    if (e >= FI_ERRNO_OFFSET)
        return -EIO;
    return -e;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
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
    struct fi_info *hints = fi_allocinfo();
    if (!hints)
        return NULL;
    hints->ep_attr->type = FI_EP_RDM;
    hints->caps = FI_MSG | FI_RMA | extra_caps;
    hints->mode = 0;
    hints->domain_attr->threading = FI_THREAD_SAFE;
    hints->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
                                  FI_MR_PROV_KEY | FI_MR_ENDPOINT;
    if (want_saw) {
        hints->tx_attr->msg_order = FI_ORDER_SAW;
        hints->rx_attr->msg_order = FI_ORDER_SAW;
    }
    if (prov) {
        hints->fabric_attr->prov_name = strdup(prov);
        if (!hints->fabric_attr->prov_name) {
            fi_freeinfo(hints);
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
                                           "cxi", "opx", "ucx"};
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
    int ret = fi_getinfo(DFAB_FI_VERSION, NULL, NULL, 0, hints, &list);
    fi_freeinfo(hints);
    if (ret) {
        const char *fp = getenv("FI_PROVIDER");
        if (requested)
            *errmsg = set_err("no libfabric provider '%s' with FI_EP_RDM+FI_MSG+FI_RMA (%s)",
                              requested, fi_strerror(-ret));
        else
            *errmsg = set_err("no usable libfabric provider (FI_PROVIDER='%s'): %s", fp ? fp : "",
                              fi_strerror(-ret));
        return ret == -FI_ENODATA ? -ENOENT : to_errno(ret);
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
        fi_freeinfo(list);
        *errmsg = set_err("only 'net'/'sockets'/'shm' providers found; ask for one explicitly");
        return -ENOENT;
    }
    snprintf(out, outlen, "%s", best->fabric_attr->prov_name);
    fi_freeinfo(list);
    return 0;
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
        bool saw = !shm && (attempt % 2 == 0);
        if (shm && attempt % 2 == 0)
            continue;
        struct fi_info *hints = make_hints(prov, extra, saw);
        if (!hints)
            return -ENOMEM;
        if (shm) {
            if (cfg->listen) {
                snprintf(shm_name, sizeof shm_name, SHM_NAME_PREFIX "%s",
                         cfg->service ? cfg->service : "0");
                hints->addr_format = FI_ADDR_STR;
                hints->src_addr = strdup(shm_name);
                hints->src_addrlen = strlen(shm_name) + 1;
                if (!hints->src_addr) {
                    fi_freeinfo(hints);
                    return -ENOMEM;
                }
            }
            ret = fi_getinfo(DFAB_FI_VERSION, NULL, NULL, 0, hints, out);
        } else if (cfg->listen) {
            ret = fi_getinfo(DFAB_FI_VERSION, node, cfg->service ? cfg->service : "0",
                             FI_SOURCE, hints, out);
        } else {
            /* the destination lets libfabric pick a route-appropriate source */
            ret = fi_getinfo(DFAB_FI_VERSION, node, "0", 0, hints, out);
        }
        fi_freeinfo(hints);
    }
    if (ret) {
        *errmsg = set_err("libfabric provider '%s' cannot serve this endpoint: %s", prov,
                          fi_strerror(-ret));
        return to_errno(ret);
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
    l->write_then_send_ordered = (info->tx_attr->msg_order & FI_ORDER_SAW) &&
                                 (info->rx_attr->msg_order & FI_ORDER_SAW);
    l->virt_addr = (info->domain_attr->mr_mode & FI_MR_VIRT_ADDR) != 0;
    f->mr_local = (info->domain_attr->mr_mode & FI_MR_LOCAL) != 0;
    f->mr_endpoint = (info->domain_attr->mr_mode & FI_MR_ENDPOINT) != 0;
    f->mr_prov_key = (info->domain_attr->mr_mode & FI_MR_PROV_KEY) != 0;
    f->reports_source = (info->caps & FI_SOURCE) != 0;
    f->is_shm = strcmp(l->provider, "shm") == 0;
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
    int ret = fi_fabric(f->info->fabric_attr, &f->fabric, NULL);
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
            *errmsg = set_err("shm endpoint name already in use (%s: %s)", step,
                              fi_strerror(-ret));
        else
            *errmsg = set_err("%s failed: %s", step, fi_strerror(-ret));
        return ret == -FI_EBUSY && f->is_shm ? -EADDRINUSE : to_errno(ret);
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
        fi_freeinfo(f->info);
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
        return to_errno(ret);
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
    int ret = get_final_info(cfg, prov, &f->info, errmsg);
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
    if (!ret && cfg->listen) {
        ret = record_bound_service(f, cfg);
        if (ret)
            *errmsg = set_err("cannot read the bound address: %s", strerror(-ret));
    }
    if (ret) {
        close_objects(f);
        close(f->wake_fd);
        free(f);
        return ret;
    }
    *out = f;
    return 0;
}

/* shm has no ports: for service "0" pick random numbers until a name is free. */
static int open_shm_any_port(const dfab_config *cfg, dfab **out, const char **errmsg)
{
    unsigned seed = (unsigned)(now_ns() ^ getpid());
    int ret = -EADDRINUSE;
    for (int attempt = 0; attempt < 64 && ret == -EADDRINUSE; attempt++) {
        char service[16];
        dfab_config c = *cfg;
        snprintf(service, sizeof service, "%u", 20000u + rand_r(&seed) % 40000u);
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
    int ret = choose_provider(requested_provider(cfg), prov, sizeof prov, errmsg);
    if (ret)
        return ret;
    if (strcmp(prov, "shm") == 0 && !shm_service_ok(cfg->service)) {
        *errmsg = set_err("shm service '%s' must be a short name without '/' or ':'",
                          cfg->service);
        return -EINVAL;
    }
    bool any_port = !cfg->service || strcmp(cfg->service, "0") == 0;
    if (strcmp(prov, "shm") == 0 && cfg->listen && any_port)
        return open_shm_any_port(cfg, out, errmsg);
    return open_with_provider(cfg, prov, out, errmsg);
}

void dfab_close(dfab *f)
{
    if (!f)
        return;
    close_objects(f);
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
    return ret == -FI_ETOOSMALL ? -ENOSPC : to_errno(ret);
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
        return ret < 0 ? to_errno(ret) : -EINVAL;
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
    struct fi_info *hints = fi_dupinfo(f->info);
    struct fi_info *info = NULL;
    if (!hints)
        return -ENOMEM;
    free(hints->src_addr);
    hints->src_addr = NULL;
    hints->src_addrlen = 0;
    free(hints->dest_addr);
    hints->dest_addr = NULL;
    hints->dest_addrlen = 0;
    int ret = fi_getinfo(DFAB_FI_VERSION, node ? node : "127.0.0.1", service, 0, hints, &info);
    fi_freeinfo(hints);
    if (ret)
        return ret == -FI_ENODATA ? -EHOSTUNREACH : to_errno(ret);
    if (!info->dest_addr) {
        fi_freeinfo(info);
        return -EHOSTUNREACH;
    }
    ret = dfab_insert_name(f, info->dest_addr, info->dest_addrlen, out);
    fi_freeinfo(info);
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
    return to_errno(fi_av_remove(f->av, &fa, 1, 0));
}

/* -------------------------------------------------------------- memory -- */

static uint64_t access_flags(unsigned access)
{
    uint64_t flags = 0;
    if (access & DFAB_ACCESS_LOCAL)
        flags |= FI_SEND | FI_RECV | FI_READ | FI_WRITE;
    if (access & DFAB_ACCESS_REMOTE_READ)
        flags |= FI_REMOTE_READ;
    if (access & DFAB_ACCESS_REMOTE_WRITE)
        flags |= FI_REMOTE_WRITE;
    return flags;
}

int dfab_mr_reg(dfab *f, void *buf, size_t len, unsigned access, dfab_mr **out)
{
    if (!buf || len == 0 || !out || access == 0)
        return -EINVAL;
    dfab_mr *mr = calloc(1, sizeof *mr);
    if (!mr)
        return -ENOMEM;
    uint64_t requested_key = f->mr_prov_key ? 0 : atomic_fetch_add(&f->next_requested_key, 1);
    struct fid_mr *fmr = NULL;
    int ret = fi_mr_reg(f->domain, buf, len, access_flags(access), 0, requested_key, 0, &fmr,
                        NULL);
    if (!ret && f->mr_endpoint) {
        ret = fi_mr_bind(fmr, &f->ep->fid, 0);
        if (!ret)
            ret = fi_mr_enable(fmr);
    }
    if (ret) {
        if (fmr)
            fi_close(&fmr->fid);
        free(mr);
        return to_errno(ret);
    }
    mr->base = buf;
    mr->len = len;
    mr->desc = fi_mr_desc(fmr);
    mr->key = fi_mr_key(fmr);
    mr->remote_addr = f->limits.virt_addr ? (uint64_t)(uintptr_t)buf : 0;
    mr->fid = fmr;
    *out = mr;
    return 0;
}

void dfab_mr_close(dfab_mr *mr)
{
    if (!mr)
        return;
    if (mr->fid)
        fi_close(&((struct fid_mr *)mr->fid)->fid);
    free(mr);
}

static bool inside_mr(const dfab_mr *mr, const void *buf, size_t len)
{
    uintptr_t b = (uintptr_t)buf, base = (uintptr_t)mr->base;
    return b >= base && len <= mr->len && b - base <= mr->len - len;
}

/* ---------------------------------------------------------- posting ops -- */

/* Run `post` until it stops returning -FI_EAGAIN, progressing in between.
 * Bounded in time, and in nesting: a callback that posts into a full queue
 * may progress (and so run other callbacks) only a few levels deep. */
typedef ssize_t (*post_fn)(dfab *f, void *arg);

static int post_with_retry(dfab *f, post_fn post, void *arg)
{
    int64_t deadline = 0;
    if (f->cq_wait_fd < 0)
        atomic_store(&f->last_activity_ns, now_ns()); /* an answer may be due soon */
    for (;;) {
        ssize_t ret = post(f, arg);
        if (ret != -FI_EAGAIN)
            return ret ? to_errno(ret) : 0;
        int64_t now = now_ns();
        if (!deadline)
            deadline = now + EAGAIN_RETRY_NS;
        else if (now > deadline)
            return -ETIMEDOUT;
        if (progress_depth < MAX_NESTED_PROGRESS) {
            int pr = dfab_progress(f, 0);
            if (pr < 0)
                return pr;
        } else {
            /* too deep to run more callbacks: a zero-count read drives the
             * provider's progress (util CQs: shm, rxm) without taking any
             * completion off the queue */
            ssize_t pr = fi_cq_read(f->cq, NULL, 0);
            if (pr < 0 && pr != -FI_EAGAIN && pr != -FI_EAVAIL)
                return to_errno(pr);
            sched_yield();
        }
    }
}

struct recv_args {
    void *buf;
    size_t len;
    void *desc;
    dfab_op *op;
};

static ssize_t post_recv_once(dfab *f, void *arg)
{
    struct recv_args *a = arg;
    return fi_recv(f->ep, a->buf, a->len, a->desc, FI_ADDR_UNSPEC, a->op);
}

int dfab_post_recv(dfab *f, void *buf, size_t len, dfab_mr *mr, dfab_op *op)
{
    if (!buf || !op || !op->done || len > f->limits.max_msg_size)
        return len > f->limits.max_msg_size ? -EMSGSIZE : -EINVAL;
    if (!mr || !inside_mr(mr, buf, len))
        return -EINVAL;
    struct recv_args a = {buf, len, mr->desc, op};
    op->parts_left = 0;
    op->first_error = 0;
    return post_with_retry(f, post_recv_once, &a);
}

struct send_args {
    const void *buf;
    size_t len;
    void *desc;
    fi_addr_t dst;
    dfab_op *op;
    bool inject;
};

static ssize_t post_send_once(dfab *f, void *arg)
{
    struct send_args *a = arg;
    if (a->inject)
        return fi_inject(f->ep, a->buf, a->len, a->dst);
    return fi_send(f->ep, a->buf, a->len, a->desc, a->dst, a->op);
}

int dfab_send(dfab *f, dfab_addr dst, const void *buf, size_t len, dfab_mr *mr, dfab_op *op)
{
    if (len > f->limits.max_msg_size)
        return -EMSGSIZE;
    if ((!buf && len) || (op && !op->done))
        return -EINVAL;
    bool inject = len <= f->limits.inject_size;
    if (!inject && (!op || !mr))
        return -EINVAL; /* the contract: only injected sends may go without an MR */
    if (mr && !inside_mr(mr, buf, len))
        return -EINVAL;
    struct send_args a = {buf, len, mr ? mr->desc : NULL, dst, op, inject};
    if (op) {
        op->parts_left = 0;
        op->first_error = 0;
    }
    int ret = post_with_retry(f, post_send_once, &a);
    if (ret == 0 && inject && op)
        op->done(op, 0, len, DFAB_ADDR_UNSPEC);
    return ret;
}

/* One RMA part: one local iov and up to rma_iov_limit remote iovs. */
struct rma_part {
    struct fi_msg_rma msg;
    struct iovec local;
    void *desc;
    struct fi_rma_iov remote[8];
    uint64_t flags;
    bool is_write;
};

static ssize_t post_rma_once(dfab *f, void *arg)
{
    struct rma_part *p = arg;
    if (p->is_write)
        return fi_writemsg(f->ep, &p->msg, p->flags);
    return fi_readmsg(f->ep, &p->msg, p->flags);
}

/* Cursor over the remote segments while splitting. */
struct seg_cursor {
    const dfab_rseg *segs;
    size_t nsegs;
    size_t index;
    uint64_t offset; /* within segs[index] */
};

/* Fill the next part's remote iovs, covering at most `want` bytes; returns the
 * bytes covered (0 only when the segments run out). */
static size_t next_part(struct seg_cursor *c, size_t want, size_t iov_limit,
                        struct fi_rma_iov *iov, size_t *niov)
{
    size_t covered = 0;
    *niov = 0;
    while (covered < want && *niov < iov_limit && c->index < c->nsegs) {
        const dfab_rseg *s = &c->segs[c->index];
        uint64_t avail = s->len - c->offset;
        if (avail == 0) {
            c->index++;
            c->offset = 0;
            continue;
        }
        size_t take = want - covered < avail ? want - covered : (size_t)avail;
        iov[*niov].addr = s->addr + c->offset;
        iov[*niov].len = take;
        iov[*niov].key = s->key;
        (*niov)++;
        covered += take;
        c->offset += take;
    }
    return covered;
}

static size_t part_limit(const dfab *f)
{
    size_t max = f->limits.max_msg_size;
    return max ? max : SIZE_MAX;
}

static size_t count_parts(const dfab *f, size_t len, const dfab_rseg *segs, size_t nsegs,
                          size_t iov_limit)
{
    struct seg_cursor c = {segs, nsegs, 0, 0};
    struct fi_rma_iov iov[8];
    size_t niov, parts = 0, done = 0;
    while (done < len) {
        size_t want = len - done < part_limit(f) ? len - done : part_limit(f);
        size_t got = next_part(&c, want, iov_limit, iov, &niov);
        if (got == 0)
            return 0;
        done += got;
        parts++;
    }
    return parts;
}

/* Drop `n` parts of a split op; calls done when it was the last. */
static void finish_parts(dfab_op *op, int n, int status)
{
    if (status)
        __atomic_compare_exchange_n(&op->first_error, &(int){0}, status, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
    if (__atomic_sub_fetch(&op->parts_left, n, __ATOMIC_ACQ_REL) == 0)
        op->done(op, __atomic_load_n(&op->first_error, __ATOMIC_ACQUIRE), 0, DFAB_ADDR_UNSPEC);
}

static int rma(dfab *f, bool is_write, dfab_addr dst, void *buf, size_t len, dfab_mr *mr,
               const dfab_rseg *segs, size_t nsegs, uint64_t flags, dfab_op *op)
{
    size_t iov_limit = f->limits.rma_iov_limit < 8 ? f->limits.rma_iov_limit : 8;
    if (!op || !op->done || (!buf && len) || (nsegs && !segs) || len == 0)
        return -EINVAL;
    if (!mr || !inside_mr(mr, buf, len))
        return -EINVAL;
    size_t parts = count_parts(f, len, segs, nsegs, iov_limit);
    if (parts == 0 || parts > (size_t)(1 << 30))
        return -EINVAL; /* segments shorter than len */
    /* +1 guard so no completion finishes the op while we are still posting */
    op->parts_left = (int)parts + 1;
    op->first_error = 0;
    struct seg_cursor c = {segs, nsegs, 0, 0};
    size_t done = 0, posted = 0;
    int ret = 0;
    while (done < len) {
        struct rma_part p = {.flags = flags, .is_write = is_write, .desc = mr ? mr->desc : NULL};
        size_t niov;
        size_t want = len - done < part_limit(f) ? len - done : part_limit(f);
        size_t got = next_part(&c, want, iov_limit, p.remote, &niov);
        p.local.iov_base = (char *)buf + done;
        p.local.iov_len = got;
        p.msg = (struct fi_msg_rma){.msg_iov = &p.local,
                                    .desc = &p.desc,
                                    .iov_count = 1,
                                    .addr = dst,
                                    .rma_iov = p.remote,
                                    .rma_iov_count = niov,
                                    .context = op};
        ret = post_with_retry(f, post_rma_once, &p);
        if (ret)
            break;
        posted++;
        done += got;
    }
    if (ret && posted == 0) {
        op->parts_left = 0;
        return ret;
    }
    /* parts never posted count as finished, with the error */
    finish_parts(op, (int)(parts - posted) + 1, ret);
    return 0;
}

int dfab_rma_write(dfab *f, dfab_addr dst, const void *buf, size_t len, dfab_mr *mr,
                   const dfab_rseg *segs, size_t nsegs, bool visible_before_reply, dfab_op *op)
{
    uint64_t flags = FI_COMPLETION;
    if (visible_before_reply && !f->limits.write_then_send_ordered)
        flags |= FI_DELIVERY_COMPLETE;
    return rma(f, true, dst, (void *)buf, len, mr, segs, nsegs, flags, op);
}

int dfab_rma_read(dfab *f, dfab_addr dst, void *buf, size_t len, dfab_mr *mr,
                  const dfab_rseg *segs, size_t nsegs, dfab_op *op)
{
    return rma(f, false, dst, buf, len, mr, segs, nsegs, FI_COMPLETION, op);
}

/* ------------------------------------------------------------ progress -- */

/* RMA ops carry a part count (> 0 until the last part completes); sends and
 * receives are posted with 0, so completion flags need not be trusted. */
static bool is_rma_part(dfab_op *op)
{
    return __atomic_load_n(&op->parts_left, __ATOMIC_ACQUIRE) > 0;
}

static void complete_entry(const struct fi_cq_data_entry *e, fi_addr_t src)
{
    /* remote-CQ-data completions carry no context of ours (shm even reports
     * garbage there); we never request them, so ignore them if they appear */
    if ((e->flags & FI_REMOTE_CQ_DATA) || (e->flags & (FI_REMOTE_READ | FI_REMOTE_WRITE)))
        return;
    dfab_op *op = e->op_context;
    if (!op)
        return;
    if (is_rma_part(op)) {
        finish_parts(op, 1, 0);
        return;
    }
    op->done(op, 0, e->len, src == FI_ADDR_NOTAVAIL ? DFAB_ADDR_UNSPEC : src);
}

static int complete_error(dfab *f)
{
    struct fi_cq_err_entry err;
    memset(&err, 0, sizeof err);
    ssize_t ret = fi_cq_readerr(f->cq, &err, 0);
    if (ret == -FI_EAGAIN)
        return 0;
    if (ret < 0)
        return to_errno(ret);
    if ((err.flags & FI_REMOTE_CQ_DATA) || !err.op_context)
        return 1;
    dfab_op *op = err.op_context;
    int status = err.err ? to_errno(err.err) : -EIO;
    if (is_rma_part(op))
        finish_parts(op, 1, status);
    else
        op->done(op, status, 0, DFAB_ADDR_UNSPEC);
    return 1;
}

/* Read and dispatch what the CQ holds now; returns completions handled. */
static int reap(dfab *f)
{
    struct fi_cq_data_entry entries[CQ_BATCH];
    fi_addr_t srcs[CQ_BATCH];
    int handled = 0;
    for (;;) {
        ssize_t n = f->reports_source ? fi_cq_readfrom(f->cq, entries, CQ_BATCH, srcs)
                                      : fi_cq_read(f->cq, entries, CQ_BATCH);
        if (n == -FI_EAGAIN)
            return handled;
        if (n == -FI_EAVAIL) {
            int r = complete_error(f);
            if (r < 0)
                return r;
            handled += r;
            continue;
        }
        if (n < 0)
            return to_errno(n);
        atomic_store(&f->last_activity_ns, now_ns());
        for (ssize_t i = 0; i < n; i++)
            complete_entry(&entries[i], f->reports_source ? srcs[i] : FI_ADDR_NOTAVAIL);
        handled += (int)n;
        if (n < CQ_BATCH)
            return handled;
    }
}

static void drain_wake(dfab *f)
{
    uint64_t v;
    ssize_t ret = read(f->wake_fd, &v, sizeof v);
    (void)ret; /* EAGAIN: another thread drained it first */
}

static int64_t remaining_ns(int64_t deadline)
{
    if (deadline < 0)
        return INT64_MAX;
    int64_t left = deadline - now_ns();
    return left > 0 ? left : 0;
}

/* Block on [cq fd, wake fd] until something is readable or the deadline. */
static int wait_fd(dfab *f, int64_t deadline, bool *woken)
{
    struct fid *fid = &f->cq->fid;
    int ret = fi_trywait(f->fabric, &fid, 1);
    if (ret == -FI_EAGAIN)
        return 0; /* completions (or internal work) pending: go read */
    if (ret)
        return to_errno(ret);
    struct pollfd pfd[2] = {{.fd = f->cq_wait_fd, .events = POLLIN},
                            {.fd = f->wake_fd, .events = POLLIN}};
    int64_t left = remaining_ns(deadline);
    struct timespec ts = {left / 1000000000LL, left % 1000000000LL};
    ret = ppoll(pfd, 2, left == INT64_MAX ? NULL : &ts, NULL);
    if (ret < 0 && errno != EINTR)
        return -errno;
    if (ret > 0 && (pfd[1].revents & POLLIN)) {
        drain_wake(f);
        *woken = true;
    }
    return 0;
}

/* How long to nap between CQ polls when there is no wait fd: short while
 * traffic is recent (a reply is likely due), long once the endpoint idles. */
static int64_t nap_slice(dfab *f)
{
    int64_t idle = now_ns() - atomic_load(&f->last_activity_ns);
    if (idle < SHM_BUSY_WINDOW_NS)
        return SHM_SLEEP_MIN_NS;
    if (idle < 10 * SHM_BUSY_WINDOW_NS)
        return 4 * SHM_SLEEP_MIN_NS;
    return SHM_SLEEP_MAX_NS;
}

/* No wait fd (shm): sleep on the wake fd for a while. */
static int wait_sleep(dfab *f, int64_t deadline, bool *woken)
{
    int64_t left = remaining_ns(deadline);
    int64_t slice = nap_slice(f);
    int64_t nap = slice < left ? slice : left;
    struct pollfd pfd = {.fd = f->wake_fd, .events = POLLIN};
    struct timespec ts = {nap / 1000000000LL, nap % 1000000000LL};
    int ret = ppoll(&pfd, 1, &ts, NULL);
    if (ret < 0 && errno != EINTR)
        return -errno;
    if (ret > 0) {
        drain_wake(f);
        *woken = true;
    }
    return 0;
}

static int progress_at_depth(dfab *f, int timeout_ms)
{
    int64_t start = now_ns();
    int handled;
    do {
        handled = reap(f);
        if (handled != 0)
            return handled;
    } while (now_ns() - start < SPIN_NS);
    if (timeout_ms == 0)
        return 0;
    int64_t deadline = timeout_ms < 0 ? -1 : start + (int64_t)timeout_ms * 1000000LL;
    bool woken = false;
    while (!woken && remaining_ns(deadline) > 0) {
        int ret = f->cq_wait_fd >= 0 ? wait_fd(f, deadline, &woken) : wait_sleep(f, deadline, &woken);
        if (ret < 0)
            return ret;
        handled = reap(f);
        if (handled != 0)
            return handled;
    }
    return 0;
}

int dfab_progress(dfab *f, int timeout_ms)
{
    progress_depth++;
    int ret = progress_at_depth(f, timeout_ms);
    progress_depth--;
    return ret;
}

void dfab_wake(dfab *f)
{
    uint64_t one = 1;
    ssize_t ret = write(f->wake_fd, &one, sizeof one);
    (void)ret; /* full counter (EAGAIN) means a wake is already pending */
}
