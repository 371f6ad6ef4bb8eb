/*
 * make_corpus.c — writes the fuzz seed corpus: one valid encoded request and
 * reply for every opcode (from tests/unit/proto_samples.c), an error reply
 * and a READDIR reply built with the incremental encoder.  Usage:
 *   make_corpus DIR
 * The files in fuzz/corpus/ were made with it; rerun it after a protocol
 * change.
 */
#include <stdio.h>
#include <string.h>

#include "proto.h"
#include "proto_samples.h"

static int write_file(const char *dir, const char *kind, const char *name, const void *buf, int n)
{
    char path[512];
    if (n <= 0) {
        fprintf(stderr, "make_corpus: encoding %s %s failed: %d\n", kind, name, n);
        return -1;
    }
    snprintf(path, sizeof path, "%s/%s-%s", dir, kind, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t written = fwrite(buf, 1, (size_t)n, f);
    if (fclose(f) != 0 || written != (size_t)n) {
        perror(path);
        return -1;
    }
    return 0;
}

static int write_readdir_seed(const char *dir)
{
    static uint8_t buf[512];
    dafs_hdr h = {.opcode = DAFS_OP_READDIR, .session_id = 1, .xid = 2, .credits = 4};
    dafs_readdir_enc e;
    if (dafs_readdir_enc_begin(&e, buf, sizeof buf, &h) != 0)
        return -1;
    static const char *const names[] = {".", "..", "file", "a-much-longer-name.txt"};
    for (unsigned i = 0; i < 4; i++) {
        dafs_dirent_wire ent = {.fileid = 100 + i,
                                .cookie = i + 1,
                                .type = 0100000,
                                .name = {(const uint8_t *)names[i], (uint32_t)strlen(names[i])}};
        if (dafs_readdir_enc_add(&e, &ent) != 0)
            return -1;
    }
    return write_file(dir, "rep", "READDIR-enc", buf, dafs_readdir_enc_finish(&e, true));
}

int main(int argc, char **argv)
{
    static uint8_t buf[8192];
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    int failed = 0;
    for (uint16_t op = 0; op < DAFS_OP_LIMIT; op = dafs_op_next(op)) {
        dafs_request q;
        dafs_reply p;
        sample_request(op, &q);
        failed |= write_file(argv[1], "req", dafs_op_name(op), buf,
                             dafs_encode_request(buf, sizeof buf, &q));
        sample_reply(op, &p);
        failed |= write_file(argv[1], "rep", dafs_op_name(op), buf,
                             dafs_encode_reply(buf, sizeof buf, &p));
    }
    dafs_reply err = {.hdr = {.opcode = DAFS_OP_LOOKUP, .xid = 3, .status = DAFS_ST_NOENT}};
    failed |= write_file(argv[1], "rep", "error", buf, dafs_encode_reply(buf, sizeof buf, &err));
    failed |= write_readdir_seed(argv[1]);
    /* other versions: a version-1 request (40-byte header) and the VERSION
     * replies the server sends a v1 and a v3 peer */
    dafs_request null_req = {.hdr = {.opcode = DAFS_OP_NULL, .session_id = 5, .xid = 6}};
    int n = dafs_encode_request(buf, sizeof buf, &null_req);
    if (n == DAFS_HDR_SIZE) {
        buf[4] = 1;
        buf[8] = DAFS_HDR_V1_SIZE;
        failed |= write_file(argv[1], "req", "v1-NULL", buf, DAFS_HDR_V1_SIZE);
    }
    dafs_hdr peer = {.version = 1, .opcode = DAFS_OP_LOOKUP, .session_id = 5, .xid = 7};
    failed |= write_file(argv[1], "rep", "version-v1", buf,
                         dafs_encode_version_error(buf, sizeof buf, &peer, 2));
    peer.version = 3;
    failed |= write_file(argv[1], "rep", "version-v3", buf,
                         dafs_encode_version_error(buf, sizeof buf, &peer, 2));
    /* batch I/O: a BATCH_COMPLETION notification */
    dafs_batch_cpl cpl[2] = {{.request_id = 7, .count = 4096, .offset = 8192},
                             {.request_id = 9, .status = DAFS_ST_STALE, .offset = 1}};
    dafs_notify note = {.hdr = {.opcode = DAFS_OP_BATCH_COMPLETION, .session_id = 5, .xid = 1,
                                .credits = 8},
                        .batch = {.ncompl = 2, .outstanding = 3, .cpl = cpl}};
    failed |= write_file(argv[1], "notify", "BATCH_COMPLETION", buf,
                         dafs_encode_notify(buf, sizeof buf, &note));
    return failed ? 1 : 0;
}
