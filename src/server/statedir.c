/*
 * statedir.c — see statedir.h.
 *
 * "Inside the export" is decided on the directories themselves, not on path
 * strings: from the state directory (or its nearest existing ancestor) the
 * check climbs ".." to the root and compares each directory's device and
 * inode with the export root's.  That sees through symlinks, "..", relative
 * paths and a bind mount of the export (which shares the root's device and
 * inode).  What it cannot see is a bind mount of a subdirectory of the
 * export mounted somewhere else; an admin who does that has to be careful.
 *
 * A state directory that contains the export is fine: clients cannot climb
 * out of the export to reach it.
 */
#include "statedir.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Open the directory named by path, or its nearest existing ancestor. */
static int open_existing_ancestor(const char *path, bool *exists)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
        return -ENAMETOOLONG;
    *exists = true;
    for (;;) {
        int fd = open(buf, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno != ENOENT || strcmp(buf, ".") == 0 || strcmp(buf, "/") == 0)
            return -errno; /* "." gone (deleted cwd): nothing left to climb */
        *exists = false;
        /* strip trailing slashes, then the last component */
        size_t n = strlen(buf);
        while (n > 1 && buf[n - 1] == '/')
            buf[--n] = '\0';
        char *slash = strrchr(buf, '/');
        if (!slash)
            snprintf(buf, sizeof(buf), ".");
        else if (slash == buf)
            buf[1] = '\0';
        else
            *slash = '\0';
    }
}

/* 1 if the directory fd (consumed) is the export root, 2 if it is beneath
 * it, 0 if neither, or -errno. */
static int is_within(int fd, const struct stat *root)
{
    for (int depth = 0; depth < 4096; depth++) {
        struct stat st;
        if (fstat(fd, &st) != 0) {
            int err = errno;
            close(fd);
            return -err;
        }
        if (st.st_dev == root->st_dev && st.st_ino == root->st_ino) {
            close(fd);
            return depth == 0 ? 1 : 2;
        }
        int up = openat(fd, "..", O_PATH | O_DIRECTORY | O_CLOEXEC);
        close(fd);
        if (up < 0)
            return -errno;
        struct stat ust;
        if (fstat(up, &ust) != 0) {
            int err = errno;
            close(up);
            return -err;
        }
        if (ust.st_dev == st.st_dev && ust.st_ino == st.st_ino) { /* "/" */
            close(up);
            return 0;
        }
        fd = up;
    }
    close(fd);
    return -ELOOP;
}

int statedir_check(const char *export_dir, const char *state_dir, char *why, size_t whylen)
{
    struct stat root;
    if (stat(export_dir, &root) != 0 || !S_ISDIR(root.st_mode))
        return 0; /* export_open says what is wrong with the export */
    bool exists;
    int fd = open_existing_ancestor(state_dir, &exists);
    if (fd < 0) {
        snprintf(why, whylen, "cannot check --state-dir %s: %s", state_dir, strerror(-fd));
        return -1;
    }
    int in = is_within(fd, &root);
    if (in < 0) {
        snprintf(why, whylen, "cannot check --state-dir %s: %s", state_dir, strerror(-in));
        return -1;
    }
    if (in > 0) {
        snprintf(why, whylen,
                 "--state-dir %s %s the export %s: clients could read or delete the handle "
                 "key; choose a directory outside the export",
                 state_dir, exists && in == 1 ? "is" : "is inside", export_dir);
        return -1;
    }
    if (!exists)
        return 0; /* export_open creates it with mode 0700 */
    struct stat st;
    if (stat(state_dir, &st) != 0) {
        snprintf(why, whylen, "cannot check --state-dir %s: %s", state_dir, strerror(errno));
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO) & ~(S_IXGRP | S_IXOTH)) {
        snprintf(why, whylen,
                 "--state-dir %s is %s by group or others (mode %04o): they could read or "
                 "replace the handle key; run chmod 700 on it",
                 state_dir, (st.st_mode & (S_IWGRP | S_IWOTH)) ? "writable" : "readable",
                 (unsigned)(st.st_mode & 07777));
        return -1;
    }
    char key[PATH_MAX];
    if (snprintf(key, sizeof(key), "%s/handle.key", state_dir) >= (int)sizeof(key)) {
        snprintf(why, whylen, "--state-dir %s: path too long", state_dir);
        return -1;
    }
    if (lstat(key, &st) != 0) {
        if (errno == ENOENT)
            return 0; /* created with mode 0600 */
        snprintf(why, whylen, "cannot check %s: %s", key, strerror(errno));
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        snprintf(why, whylen, "%s is a symbolic link; dafsd reads only a regular file there", key);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(why, whylen,
                 "%s is accessible to group or others (mode %04o): they could read or replace "
                 "the handle key; run chmod 600 on it",
                 key, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}
