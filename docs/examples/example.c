/*
 * example.c — a small libdafs program: connect, write a file through a
 * registered (zero-copy) buffer, read it back, list the directory, clean up.
 *
 * Build:  cc example.c $(pkg-config --cflags --libs dafs) -o example
 * Run:    ./example dafs://127.0.0.1:7070
 */
#include <dafs/dafs.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int report(const char *what, int rc)
{
    fprintf(stderr, "example: %s: %s\n", what, dafs_strerror(rc));
    return 1;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : "dafs://127.0.0.1";
    dafs_session *s;
    int rc = dafs_connect(url, NULL, &s);
    if (rc < 0)
        return report(url, rc);

    /* One buffer, registered once, used for every transfer. */
    size_t len = 1 << 20;
    char *buf = malloc(len);
    dafs_mr *mr;
    if (buf == NULL)
        return report("malloc", -ENOMEM);
    rc = dafs_mem_register(s, buf, len, &mr);
    if (rc < 0)
        return report("dafs_mem_register", rc);

    rc = dafs_mkdir(s, "/example", 0755);
    if (rc < 0 && rc != -EEXIST)
        return report("mkdir /example", rc);

    dafs_file *f;
    rc = dafs_open(s, "/example/hello.txt", O_RDWR | O_CREAT | O_TRUNC, 0644, &f);
    if (rc < 0)
        return report("open /example/hello.txt", rc);
    memset(buf, 'x', len);
    ssize_t n = dafs_pwrite(f, buf, len, 0); /* the server RMA-reads buf */
    if (n != (ssize_t)len)
        return report("pwrite", n < 0 ? (int)n : -EIO);
    rc = dafs_fsync(f);
    if (rc < 0)
        return report("fsync", rc);
    memset(buf, 0, len);
    n = dafs_pread(f, buf, len, 0); /* the server RMA-writes into buf */
    if (n != (ssize_t)len || buf[0] != 'x' || buf[len - 1] != 'x')
        return report("pread", n < 0 ? (int)n : -EIO);
    struct dafs_stat st;
    rc = dafs_fstat(f, &st);
    if (rc < 0)
        return report("fstat", rc);
    printf("hello.txt: %llu bytes\n", (unsigned long long)st.size);
    dafs_close(f);

    dafs_dir *d;
    dafs_dirent ent;
    rc = dafs_opendir(s, "/example", &d);
    if (rc < 0)
        return report("opendir /example", rc);
    while ((rc = dafs_readdir(d, &ent)) == 1)
        printf("entry: %s\n", ent.name);
    dafs_closedir(d);
    if (rc < 0)
        return report("readdir", rc);

    rc = dafs_unlink(s, "/example/hello.txt");
    if (rc == 0)
        rc = dafs_rmdir(s, "/example");
    if (rc < 0)
        return report("cleanup", rc);
    dafs_mem_deregister(mr);
    free(buf);
    return dafs_disconnect(s) < 0 ? 1 : 0;
}
