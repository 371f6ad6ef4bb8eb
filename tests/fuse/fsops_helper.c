/*
 * fsops_helper.c — the system calls the mount tests need and the shell has
 * no tool for (tests/fuse/modes.sh, fileops.sh, groups.sh).  Each command
 * prints "ok" plus its result, or the errno name of the failure (ENODATA,
 * ERANGE, ...), and exits 0 either way unless its arguments are wrong, so
 * a test compares the output with what a local file system gives.
 *
 *   create PATH MODE              umask(0); open(O_CREAT|O_EXCL|O_WRONLY, MODE)
 *   open PATH rdonly|wronly|rdwr  open(O_NONBLOCK) and close
 *   write PATH                    open(O_WRONLY) and write 4 bytes at 0
 *   fallocate PATH MODE OFF LEN   MODE: a + separated list of keep,punch,zero,
 *                                 collapse,insert,unshare or 0
 *   seek PATH OFF data|hole       lseek SEEK_DATA/SEEK_HOLE -> offset
 *   copy SRC OFFIN DST OFFOUT LEN copy_file_range -> bytes copied (all of LEN)
 *   setx PATH NAME VALUE [create|replace]
 *   getx PATH NAME SIZE           -> value (or size for SIZE 0)
 *   listx PATH SIZE               -> names, comma-separated (or size for 0)
 *   rmx PATH NAME
 *   setacl PATH UID               access ACL: owner rw, user UID rw, nobody else
 *   asgroups UID GID FIRST COUNT CMD...  setgroups(FIRST..FIRST+COUNT-1),
 *                                 setgid, setuid, then exec CMD
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

static int usage(void)
{
    fprintf(stderr, "fsops_helper: bad arguments (see the source)\n");
    return 2;
}

static int report(long rc)
{
    if (rc < 0)
        printf("%s\n", strerrorname_np(errno));
    else
        printf("ok %ld\n", rc);
    return 0;
}

static long long num(const char *s)
{
    return strtoll(s, NULL, 0);
}

static int falloc_mode(char *spec)
{
    int mode = 0;
    for (char *save = NULL, *t = strtok_r(spec, "+", &save); t; t = strtok_r(NULL, "+", &save)) {
        if (strcmp(t, "keep") == 0) mode |= FALLOC_FL_KEEP_SIZE;
        else if (strcmp(t, "punch") == 0) mode |= FALLOC_FL_PUNCH_HOLE;
        else if (strcmp(t, "zero") == 0) mode |= FALLOC_FL_ZERO_RANGE;
        else if (strcmp(t, "collapse") == 0) mode |= FALLOC_FL_COLLAPSE_RANGE;
        else if (strcmp(t, "insert") == 0) mode |= FALLOC_FL_INSERT_RANGE;
        else if (strcmp(t, "unshare") == 0) mode |= FALLOC_FL_UNSHARE_RANGE;
        else if (strcmp(t, "0") != 0) return -1;
    }
    return mode;
}

static int cmd_file(int argc, char **argv)
{
    const char *cmd = argv[1], *path = argv[2];
    if (strcmp(cmd, "create") == 0 && argc == 4) {
        umask(0);
        int fd = open(path, O_CREAT | O_EXCL | O_WRONLY, (mode_t)num(argv[3]));
        if (fd >= 0)
            close(fd);
        return report(fd < 0 ? -1 : 0);
    }
    if (strcmp(cmd, "open") == 0 && argc == 4) {
        int acc = strcmp(argv[3], "rdwr") == 0 ? O_RDWR
                  : strcmp(argv[3], "wronly") == 0 ? O_WRONLY : O_RDONLY;
        int fd = open(path, acc | O_NONBLOCK);
        if (fd >= 0)
            close(fd);
        return report(fd < 0 ? -1 : 0);
    }
    if (strcmp(cmd, "write") == 0 && argc == 3) {
        int fd = open(path, O_WRONLY);
        long rc = fd < 0 ? -1 : (long)pwrite(fd, "data", 4, 0);
        if (fd >= 0)
            close(fd);
        return report(rc);
    }
    if (strcmp(cmd, "fallocate") == 0 && argc == 6) {
        int mode = falloc_mode(argv[3]);
        if (mode < 0)
            return usage();
        int fd = open(path, O_RDWR);
        long rc = fd < 0 ? -1 : fallocate(fd, mode, num(argv[4]), num(argv[5]));
        if (fd >= 0)
            close(fd);
        return report(rc);
    }
    if (strcmp(cmd, "seek") == 0 && argc == 5) {
        int fd = open(path, O_RDONLY);
        int whence = strcmp(argv[4], "hole") == 0 ? SEEK_HOLE : SEEK_DATA;
        long rc = fd < 0 ? -1 : (long)lseek(fd, num(argv[3]), whence);
        if (fd >= 0)
            close(fd);
        return report(rc);
    }
    return -1;
}

static int cmd_copy(int argc, char **argv)
{
    if (argc != 7)
        return usage();
    int in = open(argv[2], O_RDONLY), out = open(argv[4], O_WRONLY);
    if (in < 0 || out < 0)
        return report(-1);
    loff_t oin = num(argv[3]), oout = num(argv[5]);
    long long left = num(argv[6]), total = 0;
    while (left > 0) {
        ssize_t n = copy_file_range(in, &oin, out, &oout, (size_t)left, 0);
        if (n < 0)
            return report(-1);
        if (n == 0)
            break;
        total += n;
        left -= n;
    }
    close(in);
    close(out);
    return report((long)total);
}

static int cmd_xattr(int argc, char **argv)
{
    const char *cmd = argv[1], *path = argv[2];
    char buf[65536 + 1];
    if (strcmp(cmd, "setx") == 0 && (argc == 5 || argc == 6)) {
        int flags = argc == 5 ? 0 : strcmp(argv[5], "create") == 0 ? XATTR_CREATE : XATTR_REPLACE;
        return report(setxattr(path, argv[3], argv[4], strlen(argv[4]), flags));
    }
    if (strcmp(cmd, "getx") == 0 && argc == 5) {
        size_t size = (size_t)num(argv[4]);
        if (size > sizeof buf - 1)
            return usage();
        ssize_t n = getxattr(path, argv[3], size ? buf : NULL, size);
        if (n < 0 || size == 0)
            return report(n);
        buf[n] = '\0';
        printf("ok %s\n", buf);
        return 0;
    }
    if (strcmp(cmd, "listx") == 0 && argc == 4) {
        size_t size = (size_t)num(argv[3]);
        if (size > sizeof buf - 1)
            return usage();
        ssize_t n = listxattr(path, size ? buf : NULL, size);
        if (n < 0 || size == 0)
            return report(n);
        printf("ok ");
        for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
            printf("%s%s", i ? "," : "", buf + i);
        printf("\n");
        return 0;
    }
    if (strcmp(cmd, "rmx") == 0 && argc == 4)
        return report(removexattr(path, argv[3]));
    if (strcmp(cmd, "setacl") == 0 && argc == 4) {
        /* system.posix_acl_access: user::rw- user:UID:rw- group::---
         * mask::rw- other::--- (version 2; tag u16, perm u16, id u32) */
        static const uint16_t tags[] = {0x01, 0x02, 0x04, 0x10, 0x20};
        static const uint16_t perms[] = {6, 6, 0, 6, 0};
        unsigned char acl[4 + 5 * 8];
        uint32_t version = 2;
        memcpy(acl, &version, 4);
        for (int i = 0; i < 5; i++) {
            uint32_t id = tags[i] == 0x02 ? (uint32_t)num(argv[3]) : UINT32_MAX;
            memcpy(acl + 4 + 8 * i, &tags[i], 2);
            memcpy(acl + 6 + 8 * i, &perms[i], 2);
            memcpy(acl + 8 + 8 * i, &id, 4);
        }
        return report(setxattr(path, "system.posix_acl_access", acl, sizeof acl, 0));
    }
    return usage();
}

static int cmd_asgroups(int argc, char **argv)
{
    if (argc < 7)
        return usage();
    gid_t first = (gid_t)num(argv[4]);
    size_t count = (size_t)num(argv[5]);
    gid_t *groups = calloc(count ? count : 1, sizeof *groups);
    if (groups == NULL)
        return 1;
    for (size_t i = 0; i < count; i++)
        groups[i] = first + (gid_t)i;
    if (setgroups(count, groups) != 0 || setgid((gid_t)num(argv[3])) != 0 ||
        setuid((uid_t)num(argv[2])) != 0) {
        perror("fsops_helper: asgroups");
        return 1;
    }
    free(groups);
    execvp(argv[6], argv + 6);
    perror("fsops_helper: exec");
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    setvbuf(stdout, NULL, _IONBF, 0);
    if (strcmp(argv[1], "copy") == 0)
        return cmd_copy(argc, argv);
    if (strcmp(argv[1], "asgroups") == 0)
        return cmd_asgroups(argc, argv);
    if (strncmp(argv[1], "setx", 4) == 0 || strcmp(argv[1], "getx") == 0 ||
        strcmp(argv[1], "setacl") == 0 ||
        strcmp(argv[1], "listx") == 0 || strcmp(argv[1], "rmx") == 0)
        return cmd_xattr(argc, argv);
    int rc = cmd_file(argc, argv);
    return rc < 0 ? usage() : rc;
}
