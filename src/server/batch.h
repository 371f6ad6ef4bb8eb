/*
 * batch.h — BATCH_SUBMIT and HURRY_UP (batch.c), run on a worker like any op.
 */
#ifndef DAFSD_BATCH_H
#define DAFSD_BATCH_H

#include "ops.h"

/* BATCH_SUBMIT or HURRY_UP: encodes the whole reply itself (encoded_len).
 * Returns a DAFS_ST_* status for the request as a whole. */
int batch_execute(op_ctx *c);

#endif
