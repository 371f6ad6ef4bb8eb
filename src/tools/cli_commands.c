/*
 * cli_commands.c — the `dafs` commands that move no file data: ls, stat,
 * df, rm, mkdir, rmdir, mv, ln -s and chmod.
 *
 * Commands that take several URLs (ls, stat, rm, mkdir, rmdir, chmod) go on
 * after a failure, print one line for each, and exit 1 if any failed, as
 * coreutils do; URLs of the same server share one session.  cp and mv work
 * inside one server: both names are on the session of the first URL (the
 * second may be another URL of the same server or a bare /path); mv is one
 * RENAME.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

#define RM_MAX_DEPTH 256

static const char *type_name(uint32_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return "regular file";
    case S_IFDIR: return "directory";
    case S_IFLNK: return "symbolic link";
    case S_IFCHR: return "character device";
    case S_IFBLK: return "block device";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    default: return "unknown";
    }
}

static void format_time(int64_t sec, uint32_t nsec, char *buf, size_t len, bool precise)
{
    time_t t = (time_t)sec;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL) {
        (void)snprintf(buf, len, "%" PRId64, sec);
        return;
    }
    char base[64];
    (void)strftime(base, sizeof base, precise ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
    if (precise)
        (void)snprintf(buf, len, "%.32s.%09u", base, nsec % 1000000000u);
    else
        (void)snprintf(buf, len, "%s", base);
}

/* Run one command per URL; the status is 1 if any failed.  (Only a
 * transfer defers signals, so none of these is ever interrupted half way:
 * a signal ends the process in its handler.) */
typedef int (*per_url)(cli *c, const char *url);

static int each_url(cli *c, int argc, char **argv, per_url fn)
{
    if (argc < 1)
        return cli_bad_usage(c);
    int status = 0;
    for (int i = 0; i < argc; i++) {
        int rc = cli_open(c, argv[i]) != 0 ? 1 : fn(c, argv[i]);
        if (rc != 0)
            status = 1;
    }
    return cli_close_session(c, argv[argc - 1], status);
}

/* ---- ls ---- */

static void print_long(cli *c, const char *path, const char *name, const struct dafs_stat *st)
{
    char mode[11], when[64];
    cli_mode_string(st->mode, mode);
    format_time(st->mtime.tv_sec, st->mtime.tv_nsec, when, sizeof when, false);
    printf("%s %3u %5u %5u %12" PRIu64 " %s %s", mode, st->nlink, st->uid, st->gid, st->size,
           when, name);
    char target[4096];
    ssize_t n;
    if (S_ISLNK(st->mode) && (n = dafs_readlink(c->s, path, target, sizeof target - 1)) >= 0) {
        target[n] = '\0';
        printf(" -> %s", target);
    }
    putchar('\n');
}

static bool shown(const cli *c, const char *name)
{
    return name[0] != '.' || c->flags.all || c->flags.almost_all;
}

/* One directory entry of a listing; a name removed since the READDIR is
 * skipped. */
static int list_entry(cli *c, const char *dir, const char *name)
{
    if (!c->flags.long_form) {
        puts(name);
        return 0;
    }
    char child[CLI_PATH_BUF];
    struct dafs_stat st;
    if (strcmp(name, ".") == 0)
        (void)snprintf(child, sizeof child, "%s", dir);
    else
        cli_join(child, sizeof child, dir, name);
    int rc = dafs_stat(c->s, child, &st);
    if (rc == -ENOENT)
        return 0;
    if (rc < 0)
        return rc;
    print_long(c, child, name, &st);
    return 0;
}

static int list_dir(cli *c, const char *url)
{
    dafs_dir *d;
    int rc = dafs_opendir(c->s, c->path, &d);
    if (rc < 0)
        return cli_fail_dafs(c, url, rc);
    if (c->flags.all) {
        rc = list_entry(c, c->path, ".");
        if (rc == 0)
            rc = list_entry(c, c->path, "..");
    }
    dafs_dirent ent;
    while (rc == 0 && (rc = dafs_readdir(d, &ent)) == 1)
        rc = shown(c, ent.name) ? list_entry(c, c->path, ent.name) : 0;
    (void)dafs_closedir(d);
    return rc < 0 ? cli_fail_dafs(c, url, rc) : 0;
}

static int ls_one(cli *c, const char *url, bool header)
{
    struct dafs_stat st;
    int rc = dafs_stat(c->s, c->path, &st);
    if (rc < 0)
        return cli_fail_dafs(c, url, rc);
    if (!S_ISDIR(st.mode) || c->flags.directory) {
        const char *name = cli_base_name(c->path);
        if (c->flags.long_form)
            print_long(c, c->path, name, &st);
        else
            puts(name);
        return 0;
    }
    if (header)
        printf("%s:\n", url);
    return list_dir(c, url);
}

int cmd_ls(cli *c, int argc, char **argv)
{
    if (argc < 1)
        return cli_bad_usage(c);
    int status = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && argc > 1 && !c->flags.directory)
            putchar('\n');
        int rc = cli_open(c, argv[i]) != 0 ? 1 : ls_one(c, argv[i], argc > 1);
        if (rc != 0)
            status = 1;
    }
    if (fflush(stdout) != 0 && status == 0)
        status = cli_fail(c, argv[argc - 1], "%s", strerror(errno));
    return cli_close_session(c, argv[argc - 1], status);
}

/* ---- stat / df ---- */

static int stat_one(cli *c, const char *url)
{
    struct dafs_stat st;
    int rc = dafs_stat(c->s, c->path, &st);
    if (rc < 0)
        return cli_fail_dafs(c, url, rc);
    char mode[11], at[80], mt[80], ct[80];
    cli_mode_string(st.mode, mode);
    format_time(st.atime.tv_sec, st.atime.tv_nsec, at, sizeof at, true);
    format_time(st.mtime.tv_sec, st.mtime.tv_nsec, mt, sizeof mt, true);
    format_time(st.ctime.tv_sec, st.ctime.tv_nsec, ct, sizeof ct, true);
    printf("path: %s\n"
           "type: %s\n"
           "mode: %04o (%s)\n"
           "size: %" PRIu64 "\n"
           "blocks: %" PRIu64 "\n"
           "inode: %" PRIu64 "\n"
           "links: %u\n"
           "uid: %u\n"
           "gid: %u\n"
           "access: %s\n"
           "modify: %s\n"
           "change: %s\n",
           c->path, type_name(st.mode), st.mode & 07777u, mode, st.size, st.blocks, st.ino,
           st.nlink, st.uid, st.gid, at, mt, ct);
    return 0;
}

int cmd_stat(cli *c, int argc, char **argv)
{
    return each_url(c, argc, argv, stat_one);
}

int cmd_df(cli *c, int argc, char **argv)
{
    if (argc != 1)
        return cli_bad_usage(c);
    const char *url = argv[0];
    if (cli_open(c, url) != 0)
        return 1;
    struct dafs_statfs st;
    int rc = dafs_statfs(c->s, c->path, &st);
    if (rc < 0)
        return cli_close_session(c, url, cli_fail_dafs(c, url, rc));
    uint64_t unit = st.frsize != 0 ? st.frsize : st.bsize;
    uint64_t size = st.blocks * unit, avail = st.bavail * unit;
    uint64_t used = (st.blocks - (st.bfree < st.blocks ? st.bfree : st.blocks)) * unit;
    char s1[32], s2[32], s3[32];
    cli_human_size(size, s1, sizeof s1);
    cli_human_size(used, s2, sizeof s2);
    cli_human_size(avail, s3, sizeof s3);
    unsigned pct = used + avail > 0 ? (unsigned)((used * 100 + used + avail - 1) / (used + avail)) : 0;
    printf("%-12s %12s %12s %12s %5s\n", "Filesystem", "Size", "Used", "Avail", "Use%");
    printf("%-12s %12s %12s %12s %4u%%\n", "dafs", s1, s2, s3, pct);
    printf("bytes: size %" PRIu64 " used %" PRIu64 " avail %" PRIu64 "\n", size, used, avail);
    printf("files: %" PRIu64 " free %" PRIu64 "\n", st.files, st.ffree);
    return cli_close_session(c, url, 0);
}

/* ---- rm / mkdir / rmdir ---- */

/* Remove path and everything under it.  Names are collected before any is
 * removed, so the READDIR cookies never point into a changing directory. */
static int remove_tree(cli *c, const char *path, int depth)
{
    struct dafs_stat st;
    int rc = dafs_stat(c->s, path, &st);
    if (rc < 0)
        return rc;
    if (!S_ISDIR(st.mode))
        return dafs_unlink(c->s, path);
    if (depth >= RM_MAX_DEPTH)
        return -ELOOP;
    dafs_dir *d;
    if ((rc = dafs_opendir(c->s, path, &d)) < 0)
        return rc;
    char **names = NULL;
    size_t n = 0, cap = 0;
    dafs_dirent ent;
    while ((rc = dafs_readdir(d, &ent)) == 1) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **bigger = realloc(names, ncap * sizeof *names);
            if (bigger == NULL) {
                rc = -ENOMEM;
                break;
            }
            names = bigger;
            cap = ncap;
        }
        if ((names[n] = strdup(ent.name)) == NULL) {
            rc = -ENOMEM;
            break;
        }
        n++;
    }
    (void)dafs_closedir(d);
    for (size_t i = 0; i < n; i++) {
        char child[CLI_PATH_BUF];
        cli_join(child, sizeof child, path, names[i]);
        if (rc == 0 && strlen(path) + 1 + strlen(names[i]) >= sizeof child)
            rc = -ENAMETOOLONG;
        if (rc == 0) {
            rc = remove_tree(c, child, depth + 1);
            if (rc == -ENOENT)
                rc = 0; /* gone meanwhile */
        }
        free(names[i]);
    }
    free(names);
    return rc < 0 ? rc : dafs_rmdir(c->s, path);
}

static int rm_one(cli *c, const char *url)
{
    int rc = c->flags.recursive ? remove_tree(c, c->path, 0) : dafs_unlink(c->s, c->path);
    if (rc == -ENOENT && c->flags.force)
        return 0;
    return rc < 0 ? cli_fail_dafs(c, url, rc) : 0;
}

int cmd_rm(cli *c, int argc, char **argv)
{
    if (argc == 0 && c->flags.force)
        return 0; /* as rm -f */
    return each_url(c, argc, argv, rm_one);
}

/* mkdir -p: every missing component, and no error if the directory exists. */
static int mkdir_parents(cli *c, const char *path)
{
    char partial[sizeof c->path];
    size_t len = strlen(path);
    if (len >= sizeof partial)
        return -ENAMETOOLONG;
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        memcpy(partial, path, i);
        partial[i] = '\0';
        if (i > 1 && path[i - 1] == '/')
            continue; /* "a//b", or a trailing '/' */
        int rc = dafs_mkdir(c->s, partial, 0777);
        struct dafs_stat st;
        if (rc == -EEXIST && dafs_stat(c->s, partial, &st) == 0 && S_ISDIR(st.mode))
            rc = 0;
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int mkdir_one(cli *c, const char *url)
{
    /* 0777: the server applies its own umask, as mkdir(2) does */
    int rc = c->flags.parents ? mkdir_parents(c, c->path) : dafs_mkdir(c->s, c->path, 0777);
    return rc < 0 ? cli_fail_dafs(c, url, rc) : 0;
}

int cmd_mkdir(cli *c, int argc, char **argv)
{
    return each_url(c, argc, argv, mkdir_one);
}

static int rmdir_one(cli *c, const char *url)
{
    int rc = dafs_rmdir(c->s, c->path);
    return rc < 0 ? cli_fail_dafs(c, url, rc) : 0;
}

int cmd_rmdir(cli *c, int argc, char **argv)
{
    return each_url(c, argc, argv, rmdir_one);
}

/* ---- mv / ln / chmod ---- */

int cmd_mv(cli *c, int argc, char **argv)
{
    if (argc != 2)
        return cli_bad_usage(c);
    const char *url = argv[0];
    if (cli_open(c, url) != 0)
        return 1;
    char dst[CLI_PATH_BUF];
    if (cli_second_path(c, url, argv[1], dst, sizeof dst) != 0)
        return cli_close_session(c, url, 1);
    struct dafs_stat st;
    int rc = 0;
    if (dafs_stat(c->s, dst, &st) == 0 && S_ISDIR(st.mode)) { /* into the directory */
        char dir[CLI_PATH_BUF];
        const char *name = cli_base_name(c->path);
        (void)snprintf(dir, sizeof dir, "%s", dst);
        if (strlen(dir) + 1 + strlen(name) >= sizeof dst)
            rc = -ENAMETOOLONG;
        else
            cli_join(dst, sizeof dst, dir, name);
    }
    if (rc == 0)
        rc = dafs_rename(c->s, c->path, dst, 0);
    return cli_close_session(c, url, rc < 0 ? cli_fail_dafs(c, url, rc) : 0);
}

int cmd_ln(cli *c, int argc, char **argv)
{
    if (argc != 2 || !c->flags.symbolic)
        return cli_bad_usage(c); /* hard links: not offered by the CLI */
    const char *url = argv[1];
    if (cli_open(c, url) != 0)
        return 1;
    int rc = dafs_symlink(c->s, argv[0], c->path);
    return cli_close_session(c, url, rc < 0 ? cli_fail_dafs(c, url, rc) : 0);
}

static const char *chmod_spec;

static int chmod_one(cli *c, const char *url)
{
    uint32_t mode = 0;
    bool octal = chmod_spec[0] >= '0' && chmod_spec[0] <= '7';
    struct dafs_stat st = {0};
    int rc = octal ? 0 : dafs_stat(c->s, c->path, &st); /* symbolic: relative to the old mode */
    if (rc == 0 && cli_parse_mode(chmod_spec, st.mode, &mode) != 0)
        rc = -EINVAL; /* checked in cmd_chmod: cannot happen */
    if (rc == 0)
        rc = dafs_chmod(c->s, c->path, (mode_t)mode);
    return rc < 0 ? cli_fail_dafs(c, url, rc) : 0;
}

int cmd_chmod(cli *c, int argc, char **argv)
{
    if (argc < 2)
        return cli_bad_usage(c);
    uint32_t mode;
    if (cli_parse_mode(argv[0], 0, &mode) != 0) {
        fprintf(stderr, "%s: %s: invalid mode '%s' (octal, or like u+x,go-w,a=rX)\n",
                cli_progname, c->cmd, argv[0]);
        return 2;
    }
    chmod_spec = argv[0];
    return each_url(c, argc - 1, argv + 1, chmod_one);
}
