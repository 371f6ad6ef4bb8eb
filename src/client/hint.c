/*
 * hint.c — cache hints (DAFS CACHE_HINT, protocol op 41): dafs_cache_hint()
 * on an open file, and the mapping from the public enum dafs_cache_hint to
 * the wire's, which the per-request hints of READ and WRITE use too
 * (file_io_hint in file.c, and the asynchronous and batch I/O).
 */
#include <errno.h>
#include <string.h>

#include "client.h"

int client_hint_to_wire(int hint, uint32_t *out)
{
    switch (hint) {
    case DAFS_HINT_NORMAL: *out = DAFS_WIRE_HINT_NORMAL; return 0;
    case DAFS_HINT_RANDOM: *out = DAFS_WIRE_HINT_RANDOM; return 0;
    case DAFS_HINT_SEQUENTIAL: *out = DAFS_WIRE_HINT_SEQUENTIAL; return 0;
    case DAFS_HINT_WILLNEED: *out = DAFS_WIRE_HINT_WILLNEED; return 0;
    case DAFS_HINT_DONTNEED: *out = DAFS_WIRE_HINT_DONTNEED; return 0;
    default: return -EINVAL;
    }
}

int dafs_cache_hint(dafs_file *f, uint64_t offset, uint64_t len, int hint)
{
    uint32_t wire;
    if (f == NULL || client_hint_to_wire(hint, &wire) < 0)
        return -EINVAL;
    if (offset > (uint64_t)INT64_MAX || len > (uint64_t)INT64_MAX - offset)
        return -EINVAL;
    dafs_request req;
    memset(&req, 0, sizeof req);
    req.hdr.opcode = DAFS_OP_CACHE_HINT;
    req.hdr.cred = f->cred;
    req.u.cache_hint = (dafs_cache_hint_req){.fh = f->fh, .stateid = f->stateid,
                                             .offset = offset, .len = len, .hint = wire};
    return engine_call_simple(f->s, &req);
}
