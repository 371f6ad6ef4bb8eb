/*
 * session_holder.c — a libdafs client that holds one session for ops.sh:
 * it connects, prints "session ID", and for every line read on stdin stats
 * the export root and prints "ok" or "error: MESSAGE" (dafs_strerror), so
 * the test can see what an application sees after `dafsctl sessions
 * evict`.  Usage: session_holder dafs://127.0.0.1:PORT/
 */
#include <inttypes.h>
#include <stdio.h>

#include "dafs/dafs.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: session_holder URL\n");
        return 2;
    }
    dafs_session *s;
    int rc = dafs_connect(argv[1], NULL, &s);
    if (rc != 0) {
        fprintf(stderr, "session_holder: connect: %s\n", dafs_strerror(rc));
        return 1;
    }
    dafs_session_info info;
    if ((rc = dafs_session_get_info(s, &info)) != 0) {
        fprintf(stderr, "session_holder: info: %s\n", dafs_strerror(rc));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("session %016" PRIx64 "\n", info.session_id);
    char line[64];
    while (fgets(line, sizeof(line), stdin)) {
        struct dafs_stat st;
        rc = dafs_stat(s, "/", &st);
        if (rc == 0)
            printf("ok\n");
        else
            printf("error: %s\n", dafs_strerror(rc));
    }
    (void)dafs_disconnect(s);
    return 0;
}
