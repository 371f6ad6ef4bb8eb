/*
 * proto_samples.h — one fully populated sample request and reply for every
 * dafs opcode, and field-by-field equality of decoded messages.  Shared by
 * the codec unit tests (tests/unit/test_proto.c) and the fuzz target and its
 * seed-corpus generator (fuzz/), so that both exercise every body layout.
 */
#ifndef DAFS_PROTO_SAMPLES_H
#define DAFS_PROTO_SAMPLES_H

#include "proto.h"

/* Fill *q with a valid request for op, every field distinct and non-zero
 * where the protocol allows.  Byte strings point to static storage. */
void sample_request(uint16_t op, dafs_request *q);

/* Same for a successful reply (READDIR carries three entries). */
void sample_reply(uint16_t op, dafs_reply *r);

/* Field-by-field equality of the parts of the message that op carries. */
bool requests_equal(const dafs_request *a, const dafs_request *b);
bool replies_equal(const dafs_reply *a, const dafs_reply *b);

#endif
