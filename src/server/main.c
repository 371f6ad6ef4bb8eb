/*
 * main.c — dafsd: command line, signals, startup and shutdown.
 *
 *   dafsd --export DIR [--listen HOST[:PORT]] [--provider NAME]
 *         [--state-dir DIR] [--threads N] [--credits N] [--lease-ms MS]
 *         [--ready-file FILE] [--root-squash | --no-root-squash | --all-squash]
 *         [--anon-uid N] [--anon-gid N] [--read-only] [--io-timeout-ms MS] [--max-opens N]
 *         [--admin-socket PATH|none] [--metrics-listen HOST:PORT]
 *         [--max-sessions N] [--max-sessions-per-client N] [-f] [--verbose]
 *
 * Startup: refuse an unsafe --state-dir (statedir.c, exit 2), open the export
 * and the handle key, open the fabric endpoint (the first use of libfabric,
 * which is loaded only then), start the workers, post the receive pool,
 * open the admin socket (admin.c) and the metrics endpoint if asked
 * (metrics.c), print the one start line (export, bound address, provider,
 * squash mode),
 * then (optionally) write the bound port to --ready-file (tmp + rename, so a
 * reader never sees half a file) and run the network loop in the main
 * thread.  Arguments are parsed without writing into argv.  SIGTERM/SIGINT set a flag and wake
 * the loop (dfab_wake is signal-safe); the loop stops taking requests,
 * finishes those in flight (bounded wait), and everything is torn down in
 * reverse order.  dafsd always stays in the foreground.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "dafs_version.h"
#include "dafs/dafs.h"
#include "admin.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "server.h"
#include "ops_lock.h"
#include "statedir.h"
#include "worker.h"

#define DRAIN_MS 5000

static server the_server;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dafsd --export DIR [options]\n"
            "  --export DIR        directory to export (required)\n"
            "  --listen HOST[:PORT] address to bind (default 127.0.0.1:%d; port 0 = any)\n"
            "  --provider NAME     libfabric provider (default: DAFS_PROVIDER, FI_PROVIDER)\n"
            "  --state-dir DIR     server state, outside the export, mode 0700\n"
            "                      (default /var/lib/dafs)\n"
            "  --threads N         worker threads (default 4)\n"
            "  --credits N         per-session credit ceiling (default 32)\n"
            "  --lease-ms MS       session lease (default 30000)\n"
            "  --ready-file FILE   write the bound port here once serving\n"
            "  --root-squash       run uid 0 as the anon user (default)\n"
            "  --no-root-squash    run uid 0 as root\n"
            "  --all-squash        run every caller as the anon user\n"
            "  --anon-uid N        anon uid (default 65534)\n"
            "  --anon-gid N        anon gid (default 65534)\n"
            "  --read-only         refuse every modifying request (ROFS)\n"
            "  --io-timeout-ms MS  give up on a client's RMA/reply after MS (default 10000)\n"
            "  --max-opens N       open files (stateids) per session (default 4096)\n"
            "  --admin-socket PATH dafsctl's socket (default STATE_DIR/admin.sock; none: off)\n"
            "  --metrics-listen HOST:PORT\n"
            "                      serve Prometheus metrics at http://HOST:PORT/metrics\n"
            "                      (off by default; e.g. 127.0.0.1:9560)%s\n"
            "  --max-sessions N    sessions in all (default 1024)\n"
            "  --max-sessions-per-client N\n"
            "                      sessions of one client endpoint (default 64)\n"
            "  -f, --foreground    stay in the foreground (always the case)\n"
            "  -v, --verbose       log session events\n"
            "  -h, --help          this text\n"
            "  -V, --version       print the version\n",
            DAFS_DEFAULT_PORT,
            metrics_available() ? "" : "\n                      (not in this build: no libmicrohttpd)");
}

static void die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "dafsd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see dafsd --help)\n");
    exit(2);
}

static unsigned parse_unsigned(const char *opt, const char *s, unsigned lo, unsigned hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
        char msg[128];
        snprintf(msg, sizeof(msg), "invalid %s value '%%s' (expected %u..%u)", opt, lo, hi);
        die_usage(msg, s);
    }
    return (unsigned)v;
}

/* HOST, HOST:PORT, [V6]:PORT or [V6].  The parts are copied out: argv is
 * left as it was given, so ps shows the command line the admin typed. */
static void parse_listen(server_config *cfg, const char *arg)
{
    static char port[16];
    static char host[256];
    const char *h = arg, *colon;
    size_t hlen;
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (!close || (close[1] != '\0' && close[1] != ':'))
            die_usage("invalid --listen address '%s'", arg);
        h = arg + 1;
        hlen = (size_t)(close - h);
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = strrchr(arg, ':');
        hlen = colon ? (size_t)(colon - arg) : strlen(arg);
    }
    if (colon) {
        unsigned p = parse_unsigned("--listen port", colon + 1, 0, 65535);
        snprintf(port, sizeof(port), "%u", p);
        cfg->listen_service = port;
    }
    if (hlen == 0)
        die_usage("invalid --listen address '%s' (empty host)", arg);
    if (hlen >= sizeof(host))
        die_usage("invalid --listen address '%s' (host too long)", arg);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    cfg->listen_node = host;
}

static void parse_args(int argc, char **argv, server_config *cfg)
{
    static char default_port[16];
    snprintf(default_port, sizeof(default_port), "%d", DAFS_DEFAULT_PORT);
    *cfg = (server_config){
        .listen_node = "127.0.0.1",
        .listen_service = default_port,
        .state_dir = "/var/lib/dafs",
        .threads = 4,
        .credits = 32,
        .lease_ms = 30000,
        .max_request = 16384,
        .max_response = 16384,
        .inline_max = 8192,
        .max_io = 1u << 20,
        .rx_buffers = 512,
        .max_sessions = 1024,
        .max_sessions_per_client = 64,
        .max_opens = OPENS_DEFAULT_LIMIT,
        .policy = {.squash = SQUASH_ROOT, .anon_uid = CRED_ANON_ID, .anon_gid = CRED_ANON_ID},
        .io_timeout_ms = 10000,
    };
    enum { O_EXPORT = 256, O_LISTEN, O_PROVIDER, O_STATE, O_THREADS, O_CREDITS, O_LEASE, O_READY,
           O_ROOT_SQUASH, O_NO_ROOT_SQUASH, O_ALL_SQUASH, O_ANON_UID, O_ANON_GID, O_RO,
           O_IO_TIMEOUT, O_MAX_OPENS, O_ADMIN_SOCKET, O_METRICS_LISTEN, O_MAX_SESSIONS,
           O_MAX_PER_CLIENT };
    static const struct option opts[] = {
        {"export", required_argument, NULL, O_EXPORT},
        {"listen", required_argument, NULL, O_LISTEN},
        {"provider", required_argument, NULL, O_PROVIDER},
        {"state-dir", required_argument, NULL, O_STATE},
        {"threads", required_argument, NULL, O_THREADS},
        {"credits", required_argument, NULL, O_CREDITS},
        {"lease-ms", required_argument, NULL, O_LEASE},
        {"ready-file", required_argument, NULL, O_READY},
        {"root-squash", no_argument, NULL, O_ROOT_SQUASH},
        {"no-root-squash", no_argument, NULL, O_NO_ROOT_SQUASH},
        {"all-squash", no_argument, NULL, O_ALL_SQUASH},
        {"anon-uid", required_argument, NULL, O_ANON_UID},
        {"anon-gid", required_argument, NULL, O_ANON_GID},
        {"read-only", no_argument, NULL, O_RO},
        {"io-timeout-ms", required_argument, NULL, O_IO_TIMEOUT},
        {"max-opens", required_argument, NULL, O_MAX_OPENS},
        {"admin-socket", required_argument, NULL, O_ADMIN_SOCKET},
        {"metrics-listen", required_argument, NULL, O_METRICS_LISTEN},
        {"max-sessions", required_argument, NULL, O_MAX_SESSIONS},
        {"max-sessions-per-client", required_argument, NULL, O_MAX_PER_CLIENT},
        {"foreground", no_argument, NULL, 'f'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":fvhV", opts, NULL)) != -1) {
        switch (c) {
        case O_EXPORT: cfg->export_dir = optarg; break;
        case O_LISTEN: parse_listen(cfg, optarg); break;
        case O_PROVIDER: cfg->provider = optarg; break;
        case O_STATE: cfg->state_dir = optarg; break;
        case O_THREADS: cfg->threads = parse_unsigned("--threads", optarg, 1, 256); break;
        case O_CREDITS: cfg->credits = parse_unsigned("--credits", optarg, 1, 4096); break;
        case O_LEASE: cfg->lease_ms = parse_unsigned("--lease-ms", optarg, 10, 86400000); break;
        case O_READY: cfg->ready_file = optarg; break;
        case O_ROOT_SQUASH: cfg->policy.squash = SQUASH_ROOT; break;
        case O_NO_ROOT_SQUASH: cfg->policy.squash = SQUASH_NONE; break;
        case O_ALL_SQUASH: cfg->policy.squash = SQUASH_ALL; break;
        case O_ANON_UID:
            cfg->policy.anon_uid = parse_unsigned("--anon-uid", optarg, 0, 4294967294u);
            break;
        case O_ANON_GID:
            cfg->policy.anon_gid = parse_unsigned("--anon-gid", optarg, 0, 4294967294u);
            break;
        case O_RO: cfg->read_only = true; break;
        case O_IO_TIMEOUT:
            cfg->io_timeout_ms = parse_unsigned("--io-timeout-ms", optarg, 10, 3600000);
            break;
        case O_MAX_OPENS:
            cfg->max_opens = parse_unsigned("--max-opens", optarg, 1, 1u << 20);
            break;
        case O_ADMIN_SOCKET:
            if (optarg[0] == '\0')
                die_usage("%s", "empty --admin-socket path (\"none\" turns the socket off)");
            cfg->admin_socket = optarg;
            break;
        case O_METRICS_LISTEN:
            if (!metrics_available())
                die_usage("%s", "--metrics-listen: this dafsd was built without libmicrohttpd "
                                "(install libmicrohttpd-dev and rebuild)");
            cfg->metrics_listen = optarg;
            break;
        case O_MAX_SESSIONS:
            cfg->max_sessions = parse_unsigned("--max-sessions", optarg, 1, 65536);
            break;
        case O_MAX_PER_CLIENT:
            cfg->max_sessions_per_client =
                parse_unsigned("--max-sessions-per-client", optarg, 1, 65536);
            break;
        case 'f': break;
        case 'v': dafsd_verbose = true; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("dafsd (dafs) %s\n", DAFS_VERSION_STRING); exit(0);
        case ':': die_usage("option '%s' needs an argument", argv[optind - 1]); break;
        default: die_usage("unknown option '%s'", argv[optind - 1]); break;
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!cfg->export_dir)
        die_usage("%s", "missing --export DIR");
    char why[PATH_MAX * 2 + 256];
    if (statedir_check(cfg->export_dir, cfg->state_dir, why, sizeof(why)) != 0) {
        fprintf(stderr, "dafsd: %s\n", why);
        exit(2);
    }
}

static void on_signal(int sig)
{
    (void)sig;
    the_server.stopping = 1;
    if (the_server.fabric)
        dfab_wake(the_server.fabric);
}

static int install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

static int write_ready_file(const char *path, const char *port)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -errno;
    int ok = fprintf(f, "%s\n", port) > 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        int err = errno ? errno : EIO;
        unlink(tmp);
        return -err;
    }
    return 0;
}

/* "root squashed to 65534:65534", "no root squash", ... */
static void describe_squash(const cred_policy *p, char *buf, size_t len)
{
    switch (p->squash) {
    case SQUASH_NONE:
        snprintf(buf, len, "no root squash");
        break;
    case SQUASH_ALL:
        snprintf(buf, len, "all users squashed to %u:%u", p->anon_uid, p->anon_gid);
        break;
    case SQUASH_ROOT:
    default:
        snprintf(buf, len, "root squashed to %u:%u", p->anon_uid, p->anon_gid);
        break;
    }
}

/* The one line dafsd always prints (stderr, like every log line) once it is
 * serving: what it exports, where, over which provider, and how it treats
 * root, so that a refused root client can be explained from the log. */
static void log_start_line(const server *srv, const char *port)
{
    char squash[96];
    describe_squash(&srv->cfg.policy, squash, sizeof(squash));
    bool v6 = strchr(srv->cfg.listen_node, ':') != NULL;
    log_notice("dafsd %s: exporting %s on %s%s%s:%s (%s), %s%s", DAFS_VERSION_STRING,
               srv->cfg.export_dir, v6 ? "[" : "", srv->cfg.listen_node, v6 ? "]" : "", port,
               srv->limits->provider, squash, srv->cfg.read_only ? ", read-only" : "");
}

static int start(server *srv)
{
    const char *why = NULL;
    cred_init();
    int rc = export_open(&srv->exp, srv->cfg.export_dir, srv->cfg.state_dir, &why);
    if (rc != 0) {
        log_error("%s: %s: %s", srv->cfg.export_dir, why, strerror(-rc));
        return -1;
    }
    if (getrandom(&srv->instance, sizeof(srv->instance), 0) != (ssize_t)sizeof(srv->instance)) {
        log_error("getrandom failed: %s", strerror(errno));
        return -1;
    }
    dfab_config fc = {.provider = srv->cfg.provider, .node = srv->cfg.listen_node,
                      .service = srv->cfg.listen_service, .listen = true};
    rc = dfab_open(&fc, &srv->fabric, &why);
    if (rc != 0) {
        log_error("cannot listen on %s:%s: %s", srv->cfg.listen_node, srv->cfg.listen_service,
                  why ? why : strerror(-rc));
        return -1;
    }
    srv->limits = dfab_get_limits(srv->fabric);
    if (srv->limits->max_msg_size < srv->cfg.max_request) {
        log_error("provider %s: messages limited to %zu bytes", srv->limits->provider,
                  srv->limits->max_msg_size);
        return -1;
    }
    if (fdcache_init(&srv->fds) != 0) {
        log_error("cannot initialise the fd cache");
        return -1;
    }
    if (durable_init(&srv->durable) != 0) {
        log_error("cannot initialise the durable-directory set");
        return -1;
    }
    if ((rc = opens_start()) != 0) {
        log_error("cannot start the open-state reaper: %s", strerror(-rc));
        return -1;
    }
    int tables = session_table_init(&srv->sessions, srv->fabric, srv->cfg.max_sessions,
                                    srv->cfg.rx_buffers);
    srv->sessions.max_opens = srv->cfg.max_opens;
    srv->sessions.max_per_peer = srv->cfg.max_sessions_per_client;
    if (tables == 0 && (rc = locks_open(srv, &why)) != 0) {
        log_error("%s: %s", why, strerror(-rc));
        return -1;
    }
    if (tables != 0 ||
        workers_start(srv, rx_repost, &why) != 0 || dispatch_start(srv, &why) != 0) {
        log_error("startup failed: %s", why ? why : "session table");
        return -1;
    }
    if (admin_start(srv, &why) != 0 || metrics_start(srv, &why) != 0) {
        log_error("%s", why);
        return -1;
    }
    char port[32];
    rc = dfab_bound_service(srv->fabric, port, sizeof(port));
    if (rc != 0) {
        log_error("cannot tell the bound port: %s", strerror(-rc));
        return -1;
    }
    log_start_line(srv, port); /* before the ready file: a reader of both sees both */
    if (srv->cfg.ready_file && (rc = write_ready_file(srv->cfg.ready_file, port)) != 0) {
        log_error("%s: %s", srv->cfg.ready_file, strerror(-rc));
        return -1;
    }
    log_info("server instance %016llx", (unsigned long long)srv->instance);
    return 0;
}

static void shutdown_server(server *srv, bool drained)
{
    metrics_stop(); /* before the session table they read */
    admin_stop();
    if (!drained) {
        /* A worker is stuck on a fabric operation of a vanished peer; its
         * buffers are still posted, so leave teardown to process exit. */
        log_error("in-flight requests did not finish within %d ms; exiting", DRAIN_MS);
        return;
    }
    workers_stop(srv);
    dispatch_close_mrs(srv);
    if (srv->sessions.fabric)
        session_table_destroy(&srv->sessions);
    locks_close(srv); /* PERSIST locks stay in the database, breakable at the next start */
    opens_stop(); /* after the sessions: closes the last open states' fds */
    dfab *f = srv->fabric;
    srv->fabric = NULL; /* the signal handler must not wake a closed endpoint */
    if (f)
        dfab_close(f);
    workers_free(srv);
    dispatch_free(srv);
    fdcache_destroy(&srv->fds);
    durable_destroy(&srv->durable);
    export_close(&srv->exp);
}

int main(int argc, char **argv)
{
    server *srv = &the_server;
    parse_args(argc, argv, &srv->cfg);
    if (install_signals() != 0) {
        log_error("cannot install signal handlers: %s", strerror(errno));
        return 1;
    }
    if (start(srv) != 0) {
        srv->draining = true;
        shutdown_server(srv, true);
        return 1;
    }
    int drained = dispatch_run(srv, DRAIN_MS) == 0;
    log_info("shutting down");
    shutdown_server(srv, drained);
    return 0;
}
