/*
 * main.c — dafs-fuse / mount.dafs: parse the command line, connect to dafsd,
 * mount, and serve kernel requests until unmounted or signalled.
 *
 *   dafs-fuse dafs://HOST[:PORT]/[PATH] MOUNTPOINT [-f] [-d] [-o OPT[,OPT...]]
 *   mount.dafs dafs://HOST[:PORT]/[PATH] DIR [-sfnv] [-o OPTS]   (from mount(8))
 *
 * Without -f the program forks; the parent waits until the child has
 * connected and mounted and exits 0, or exits 1 with the child's error on
 * stderr, so `mount -t dafs` reports failures truthfully.  The connection is
 * made in the child, after the fork, because libdafs runs threads.
 *
 * Our own -o options (attr_timeout, entry_timeout, timeout, direct_io,
 * writeback_cache, local_locks, provider) are taken out; fstab-only options (defaults,
 * _netdev, noauto, nofail, user, x-*, ...) are dropped; the rest (allow_other,
 * ro, nosuid, max_read, ...) go to libfuse, which rejects what it does not
 * know.  default_permissions is always passed on: the kernel opens FIFOs
 * and device nodes without asking the file system, so its own mode check is
 * the only one they get; everything else the server checks again as the
 * calling user.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dafs_version.h"
#include "dafs_fuse.h"

#define DFUSE_CRED_CACHE 64

struct cmdline {
    struct dfuse_config cfg;
    char fuse_opts[4096]; /* comma-separated options for libfuse */
    int fake;             /* mount.dafs -f: do everything but mount */
    int default_permissions; /* given with -o (it is always passed on) */
    int as_mount_helper;
    int overmount;        /* -o nonempty: mount over an existing FUSE mount */
};

/* mount.dafs is called by mount(8), whose -f means "fake" and whose -n, -s
 * and -v mean nothing here; dafs-fuse has -f (foreground) and -d. */
static void usage(FILE *out, const char *prog, int as_mount_helper)
{
    if (as_mount_helper)
        fprintf(out,
                "usage: %s dafs://HOST[:PORT]/[PATH] MOUNTPOINT [-fnsv] [-o OPTIONS]\n"
                "  -f                 fake: do everything but the mount (mount -f)\n"
                "  -n, -s, -v         accepted from mount(8), no effect\n",
                prog);
    else
        fprintf(out,
                "usage: %s dafs://HOST[:PORT]/[PATH] MOUNTPOINT [-f] [-d] [-o OPTIONS]\n"
                "  -f                 stay in the foreground\n"
                "  -d                 foreground with FUSE debug output\n",
                prog);
    fprintf(out,
            "  -o attr_timeout=S  cache attributes for S seconds (default 60)\n"
            "  -o entry_timeout=S cache names for S seconds (default 60)\n"
            "  -o timeout=MS      per-request timeout in ms (default: libdafs's)\n"
            "  -o read_ahead_kb=N kernel read-ahead for the mount (default 4096; 0: kernel's)\n"
            "  -o direct_io       bypass the page cache\n"
            "  -o writeback_cache cache writes in the kernel (off by default)\n"
            "  -o local_locks     fcntl/flock locks local to this mount, not the server's\n"
            "  -o provider=NAME   libfabric provider (e.g. \"tcp;ofi_rxm\", shm)\n"
            "  -o nonempty        mount even where a FUSE file system is mounted already\n"
            "  -o allow_other, ro, nosuid, ... are passed to FUSE\n");
}

static int add_fuse_opt(struct cmdline *cl, const char *opt)
{
    size_t used = strlen(cl->fuse_opts);
    int n = snprintf(cl->fuse_opts + used, sizeof cl->fuse_opts - used, "%s%s",
                     used ? "," : "", opt);
    if (n < 0 || (size_t)n >= sizeof cl->fuse_opts - used) {
        fprintf(stderr, "dafs-fuse: too many options\n");
        return -1;
    }
    return 0;
}

static int parse_seconds(const char *name, const char *value, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno != 0 || end == value || *end != '\0' || !(v >= 0) || v > 86400) {
        fprintf(stderr, "dafs-fuse: bad %s '%s' (seconds, 0..86400)\n", name, value);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_ms(const char *value, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v == 0 || v > 3600000) {
        fprintf(stderr, "dafs-fuse: bad timeout '%s' (milliseconds, 1..3600000)\n", value);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

/* read_ahead_kb: 0 (leave the kernel's) .. 1 GiB. */
static int parse_kb(const char *value, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v > 1048576) {
        fprintf(stderr, "dafs-fuse: bad read_ahead_kb '%s' (KiB, 0..1048576)\n", value);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static int is_fstab_only(const char *opt)
{
    static const char *const dropped[] = {"defaults", "_netdev", "auto", "noauto", "user",
                                          "users", "nouser", "nofail", "owner", "group"};
    for (size_t i = 0; i < sizeof dropped / sizeof dropped[0]; i++)
        if (strcmp(opt, dropped[i]) == 0)
            return 1;
    return strncmp(opt, "x-", 2) == 0 || strncmp(opt, "comment=", 8) == 0;
}

static int parse_one_option(struct cmdline *cl, const char *opt)
{
    const char *eq = strchr(opt, '=');
    const char *value = eq ? eq + 1 : NULL;
    size_t keylen = eq ? (size_t)(eq - opt) : strlen(opt);
#define KEY_IS(k) (keylen == strlen(k) && strncmp(opt, k, keylen) == 0)
    if (KEY_IS("attr_timeout") && value)
        return parse_seconds("attr_timeout", value, &cl->cfg.attr_timeout);
    if (KEY_IS("entry_timeout") && value)
        return parse_seconds("entry_timeout", value, &cl->cfg.entry_timeout);
    if (KEY_IS("timeout") && value)
        return parse_ms(value, &cl->cfg.timeout_ms);
    if (KEY_IS("read_ahead_kb") && value)
        return parse_kb(value, &cl->cfg.read_ahead_kb);
    if (KEY_IS("provider") && value) {
        free(cl->cfg.provider);
        cl->cfg.provider = strdup(value);
        return cl->cfg.provider ? 0 : -1;
    }
    if (KEY_IS("direct_io") && !value)
        return (cl->cfg.direct_io = 1, 0);
    if (KEY_IS("writeback_cache") && !value)
        return (cl->cfg.writeback_cache = 1, 0);
    if (KEY_IS("local_locks") && !value)
        return (cl->cfg.local_locks = 1, 0);
    if (KEY_IS("nonempty") && !value)
        return (cl->overmount = 1, 0);
    if (KEY_IS("default_permissions") && !value)
        cl->default_permissions = 1; /* added below in any case */
#undef KEY_IS
    if (is_fstab_only(opt))
        return 0;
    return add_fuse_opt(cl, opt);
}

/* Split a -o argument on commas (no escapes: provider names use ';'). */
static int parse_option_list(struct cmdline *cl, const char *list)
{
    char *copy = strdup(list);
    if (copy == NULL)
        return -1;
    int rc = 0;
    char *save = NULL;
    for (char *opt = strtok_r(copy, ",", &save); opt && rc == 0; opt = strtok_r(NULL, ",", &save))
        rc = parse_one_option(cl, opt);
    free(copy);
    return rc;
}

/* Returns 0 to go on, 1 to exit 0 (help/version), -1 on error. */
static int parse_cmdline(int argc, char **argv, struct cmdline *cl)
{
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    cl->as_mount_helper = strncmp(base, "mount.", 6) == 0;
    cl->cfg.attr_timeout = 60.0;
    cl->cfg.entry_timeout = 60.0;
    cl->cfg.read_ahead_kb = DFUSE_READ_AHEAD_KB;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout, base, cl->as_mount_helper);
            return 1;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("%s (dafs) %s\n", base, DAFS_VERSION_STRING);
            return 1;
        } else if (strcmp(a, "-o") == 0 || strncmp(a, "-o", 2) == 0) {
            const char *list = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : NULL);
            if (list == NULL || parse_option_list(cl, list) < 0)
                return -1;
        } else if ((strcmp(a, "-t") == 0 || strcmp(a, "-N") == 0) && cl->as_mount_helper) {
            i++; /* type / namespace from mount(8): not used */
        } else if (strcmp(a, "-f") == 0) {
            if (cl->as_mount_helper)
                cl->fake = 1; /* mount(8): fake */
            else
                cl->cfg.foreground = 1;
        } else if (strcmp(a, "-d") == 0 && !cl->as_mount_helper) {
            cl->cfg.foreground = cl->cfg.debug = 1;
        } else if ((strcmp(a, "-s") == 0 || strcmp(a, "-n") == 0 || strcmp(a, "-v") == 0) &&
                   cl->as_mount_helper) {
            /* sloppy / no mtab / verbose: nothing to do */
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "%s: unknown option %s\n", base, a);
            return -1;
        } else if (cl->cfg.url == NULL) {
            cl->cfg.url = a;
        } else if (cl->cfg.mountpoint == NULL) {
            cl->cfg.mountpoint = a;
        } else {
            fprintf(stderr, "%s: unexpected argument %s\n", base, a);
            return -1;
        }
    }
    if (cl->cfg.url == NULL || cl->cfg.mountpoint == NULL) {
        usage(stderr, base, cl->as_mount_helper);
        return -1;
    }
    /* The kernel opens FIFOs and device nodes itself, without asking the
     * file system, so only its own check (default_permissions) can refuse
     * a 0000 FIFO; the server still checks every request as the caller. */
    if (!cl->default_permissions && add_fuse_opt(cl, "default_permissions") < 0)
        return -1;
    return 0;
}

int dfuse_resolve_root(dafs_session *s, const char *path, dafs_handle *out)
{
    struct dafs_stat st;
    int rc = dafs_h_root(s, out, &st);
    char *copy = strdup(path);
    if (copy == NULL)
        return -ENOMEM;
    char *save = NULL;
    for (char *name = strtok_r(copy, "/", &save); name && rc == 0;
         name = strtok_r(NULL, "/", &save)) {
        dafs_handle next;
        rc = dafs_h_lookup(s, NULL, out, name, &next, &st);
        if (rc == 0)
            *out = next;
    }
    free(copy);
    if (rc == 0 && !S_ISDIR(st.mode))
        rc = -ENOTDIR;
    return rc;
}

/* Connect and find the root; messages name the URL.  0 or -1. */
static int connect_export(struct dfuse *fs, dafs_handle *root)
{
    char host[256], path[PATH_MAX];
    unsigned port;
    int rc = dafs_url_parse(fs->cfg.url, host, sizeof host, &port, path, sizeof path);
    if (rc == 0) {
        dafs_options o = {.provider = fs->cfg.provider, .timeout_ms = fs->cfg.timeout_ms};
        rc = dafs_connect(fs->cfg.url, &o, &fs->session);
    }
    if (rc == 0) {
        rc = dfuse_resolve_root(fs->session, path, root);
        if (rc < 0) {
            (void)dafs_disconnect(fs->session);
            fs->session = NULL;
        }
    }
    if (rc < 0) {
        fprintf(stderr, "dafs-fuse: %s: %s\n", fs->cfg.url, dafs_strerror(rc));
        return -1;
    }
    return 0;
}

static struct fuse_session *new_fuse_session(struct dfuse *fs, struct cmdline *cl,
                                             const char *prog)
{
    char extra[PATH_MAX + 64];
    snprintf(extra, sizeof extra, "fsname=%s,subtype=dafs", fs->cfg.url);
    if (strchr(fs->cfg.url, ',') == NULL && add_fuse_opt(cl, extra) < 0)
        return NULL;
    char *argv[5] = {(char *)prog, "-o", cl->fuse_opts, NULL, NULL};
    if (fs->cfg.debug)
        argv[3] = "-d";
    struct fuse_args args = FUSE_ARGS_INIT(fs->cfg.debug ? 4 : 3, argv);
    struct fuse_session *se = fuse_session_new(&args, &dfuse_ops, sizeof dfuse_ops, fs);
    fuse_opt_free_args(&args);
    return se;
}

/* Detach: the parent exits with the status the child reports on the pipe. */
static int daemonize_start(int *status_fd)
{
    int p[2];
    if (pipe(p) < 0) {
        perror("dafs-fuse: pipe");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("dafs-fuse: fork");
        return -1;
    }
    if (pid > 0) {
        close(p[1]);
        char st = 1;
        ssize_t n = read(p[0], &st, 1);
        _exit(n == 1 ? st : 1);
    }
    close(p[0]);
    *status_fd = p[1];
    if (setsid() < 0)
        perror("dafs-fuse: setsid");
    return 0;
}

static void daemonize_done(int status_fd)
{
    char ok = 0;
    if (chdir("/") < 0)
        perror("dafs-fuse: chdir /");
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        if (null > 2)
            close(null);
    }
    if (write(status_fd, &ok, 1) != 1) {
        /* the parent is gone; nothing to tell */
    }
    close(status_fd);
}

static int serve(struct fuse_session *se)
{
    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    if (lc == NULL)
        return -1;
    fuse_loop_cfg_set_max_threads(lc, DFUSE_MAX_THREADS);
    fuse_loop_cfg_set_clone_fd(lc, 0);
    int rc = fuse_session_loop_mt(se, lc);
    fuse_loop_cfg_destroy(lc);
    return rc;
}

/* libfabric's shm provider (loaded by dafs_connect) installs its own SIGTERM
 * and SIGINT handlers, and libfuse only installs its handlers over SIG_DFL.
 * Reset them, so a signal ends the loop and we unmount and disconnect in
 * order (the disconnect releases the provider's resources). */
static int take_over_signals(struct fuse_session *se)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        if (signal(sigs[i], SIG_DFL) == SIG_ERR)
            return -1;
    }
    return fuse_set_signal_handlers(se);
}

static int run(struct dfuse *fs, struct cmdline *cl, const char *prog, int status_fd)
{
    dafs_handle root;
    if (connect_export(fs, &root) < 0)
        return 1;
    int rc = 1;
    if (nodes_init(&fs->nodes, &root) < 0)
        goto out_session;
    if (creds_init(&fs->creds, fs->session, DFUSE_CRED_CACHE) < 0)
        goto out_nodes;
    if (dfuse_iobuf_init(fs) < 0)
        goto out_creds;
    struct fuse_session *se = new_fuse_session(fs, cl, prog);
    if (se == NULL)
        goto out_key;
    fs->se = se;
    if (take_over_signals(se) < 0)
        goto out_se;
    if (cl->fake) {
        rc = 0;
        goto out_signals;
    }
    if (fuse_session_mount(se, fs->cfg.mountpoint) < 0)
        goto out_signals;
    if (status_fd >= 0)
        daemonize_done(status_fd);
    /* a signal ends the loop with the signal number: a clean stop */
    rc = serve(se) == 0 || fuse_session_exited(se) ? 0 : 1;
    fuse_session_unmount(se);
out_signals:
    fuse_remove_signal_handlers(se);
out_se:
    fuse_session_destroy(se);
out_key:
    pthread_key_delete(fs->iobuf_key);
out_creds:
    creds_destroy(&fs->creds);
out_nodes:
    nodes_destroy(&fs->nodes);
out_session:
    (void)dafs_disconnect(fs->session);
    return rc;
}

/* Undo the octal escapes of /proc/self/mountinfo (\\040 for a space...). */
static void unescape_mountinfo(char *s)
{
    char *out = s;
    for (; *s != '\0'; s++) {
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            *out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        } else {
            *out++ = *s;
        }
    }
    *out = '\0';
}

/* The last FUSE mount at mnt (a canonical path) in /proc/self/mountinfo:
 * 1 and its "type from source" in what (if not NULL) and its device
 * "MAJ:MIN" in dev (if not NULL); 0 if there is none or no /proc. */
static int fuse_mount_find(const char *mnt, char *what, size_t whatlen, char *dev, size_t devlen)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (f == NULL)
        return 0;
    char line[2 * PATH_MAX + 512];
    int found = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPER */
        char *save = NULL, *field = strtok_r(line, " ", &save);
        char *majmin = NULL;
        for (int i = 1; field != NULL && i < 5; i++) {
            field = strtok_r(NULL, " ", &save);
            if (i == 2)
                majmin = field;
        }
        if (field == NULL || majmin == NULL)
            continue;
        unescape_mountinfo(field);
        if (strcmp(field, mnt) != 0)
            continue;
        char *type = NULL;
        while ((field = strtok_r(NULL, " ", &save)) != NULL)
            if (strcmp(field, "-") == 0) {
                type = strtok_r(NULL, " ", &save);
                break;
            }
        char *source = type != NULL ? strtok_r(NULL, " ", &save) : NULL;
        if (type == NULL || strncmp(type, "fuse", 4) != 0)
            continue;
        if (source != NULL)
            unescape_mountinfo(source);
        if (what != NULL)
            snprintf(what, whatlen, "%s from %s", type, source != NULL ? source : "?");
        if (dev != NULL)
            snprintf(dev, devlen, "%s", majmin);
        found = 1; /* go on: a later line is a mount stacked over this one */
    }
    fclose(f);
    return found;
}

/* Mounting again would stack a second dafs-fuse over the first without a word. */
static int fuse_mounted_at(const char *mnt, char *what, size_t whatlen)
{
    return fuse_mount_find(mnt, what, whatlen, NULL, 0);
}

int dfuse_set_readahead(const char *mnt, unsigned kb)
{
    char dev[64], path[128];
    if (!fuse_mount_find(mnt, NULL, 0, dev, sizeof dev))
        return -ENOENT;
    snprintf(path, sizeof path, "/sys/class/bdi/%s/read_ahead_kb", dev);
    FILE *f = fopen(path, "we");
    if (f == NULL)
        return -errno;
    int rc = fprintf(f, "%u\n", kb) < 0 ? -EIO : 0;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

int main(int argc, char **argv)
{
    static struct cmdline cl;
    int prc = parse_cmdline(argc, argv, &cl);
    if (prc != 0)
        return prc > 0 ? 0 : 2;

    char mnt[PATH_MAX];
    if (realpath(cl.cfg.mountpoint, mnt) == NULL) {
        fprintf(stderr, "dafs-fuse: mount point %s: %s\n", cl.cfg.mountpoint, strerror(errno));
        return 1;
    }
    char what[PATH_MAX + 64];
    if (!cl.overmount && fuse_mounted_at(mnt, what, sizeof what)) {
        fprintf(stderr,
                "dafs-fuse: mount point %s: already mounted (%s); unmount it first, or add "
                "-o nonempty to mount over it\n",
                mnt, what);
        free(cl.cfg.provider);
        return 1;
    }
    static struct dfuse fs;
    fs.cfg = cl.cfg;
    fs.cfg.mountpoint = mnt;

    int status_fd = -1;
    if (!fs.cfg.foreground && !cl.fake && daemonize_start(&status_fd) < 0)
        return 1;
    int rc = run(&fs, &cl, argv[0], status_fd);
    free(cl.cfg.provider);
    return rc;
}
