/*
 * ops_client.c — a raw-protocol dafs client driven line by line from stdin,
 * for the operations tests (ops.sh): it holds one session while dafsctl
 * looks at the server, and sends exactly the requests it is told to, so
 * that the statistics can be checked to the request.
 *
 * Usage: ops_client PORT.  Commands (one a line; each answers one line,
 * "ok [value]" or "err STATUS"):
 *   connect ID        CONNECT as client ID (+ REGISTER_CRED); value: session id
 *   getroot           GETROOT (keeps the root handle)
 *   getattr N         N GETATTR of the root
 *   badfh N           N GETATTR of a forged handle (each fails)
 *   open NAME         OPEN NAME (create, read-write) in the root
 *   write N BYTES     N WRITE_INLINE of BYTES each, one after another
 *   read N BYTES      N READ_INLINE of BYTES at offset 0
 *   readd N BYTES     N READ_DIRECT of BYTES at offset 0
 *   null N            N NULL
 *   quit              DISCONNECT and exit
 * A command stops at its first failure and reports that status.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raw_client.h"

static client c;
static dafs_fh root, file;

static int repeat(const char *what, unsigned n, unsigned bytes)
{
    static uint8_t buf[MSG];
    for (unsigned i = 0; i < n; i++) {
        int st = 0;
        uint32_t got = 0;
        bool eof = false;
        if (strcmp(what, "getattr") == 0 || strcmp(what, "badfh") == 0) {
            dafs_request req;
            dafs_reply rep;
            init_req(&req, DAFS_OP_GETATTR);
            req.u.fh.fh = root;
            if (what[0] == 'b')
                req.u.fh.fh.data[req.u.fh.fh.len - 1] ^= 0x5a; /* the MAC no longer fits */
            st = call(&c, &req, &rep);
        } else if (strcmp(what, "write") == 0) {
            memset(buf, 'a' + (int)(i % 26), sizeof(buf));
            st = write_inline(&c, &file, (uint64_t)i * bytes, buf, bytes);
        } else if (strcmp(what, "read") == 0) {
            st = read_inline(&c, &file, 0, bytes, buf, &got, &eof);
        } else if (strcmp(what, "readd") == 0) {
            dafs_seg seg;
            size_t off = 0, len = bytes;
            make_segs(&c, &seg, &off, &len, 1);
            st = direct(&c, DAFS_OP_READ_DIRECT, &file, 0, bytes, &seg, 1, &got);
        } else if (strcmp(what, "null") == 0) {
            st = simple(&c, DAFS_OP_NULL);
        } else {
            return -1;
        }
        if (st != 0)
            return st;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: ops_client PORT\n");
        return 2;
    }
    if (client_open(&c, argv[1]) != 0) {
        fprintf(stderr, "ops_client: cannot open the client endpoint\n");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    char line[256];
    while (fgets(line, sizeof(line), stdin)) {
        char cmd[32], arg[128] = "";
        unsigned n = 0, bytes = 0;
        int words = sscanf(line, "%31s %127s %u", cmd, arg, &bytes);
        if (words < 1)
            continue;
        int st;
        if (strcmp(cmd, "connect") == 0 && words >= 2) {
            st = do_connect(&c, arg, 1, 8);
            if (st == 0) {
                printf("ok %016" PRIx64 "\n", c.session);
                continue;
            }
        } else if (strcmp(cmd, "getroot") == 0) {
            st = getroot(&c, &root);
        } else if (strcmp(cmd, "open") == 0 && words >= 2) {
            st = dirop(&c, DAFS_OP_OPEN, &root, arg, DAFS_OPEN_RDWR | DAFS_OPEN_CREAT, &file, NULL);
        } else if (strcmp(cmd, "quit") == 0) {
            st = simple(&c, DAFS_OP_DISCONNECT);
            printf(st == 0 ? "ok\n" : "err %d\n", st);
            break;
        } else if (words >= 2 && sscanf(arg, "%u", &n) == 1 && n <= 100000 && bytes <= 65536) {
            st = repeat(cmd, n, bytes);
            if (st == -1) {
                printf("err unknown command %s\n", cmd);
                continue;
            }
        } else {
            printf("err bad command\n");
            continue;
        }
        if (st == 0)
            printf("ok\n");
        else
            printf("err %d\n", st);
    }
    client_close(&c);
    return 0;
}
