/*
 * statedir.h — refuse a --state-dir that would give the handle key away.
 *
 * The state directory holds handle.key, the secret that makes file handles
 * unforgeable.  A state directory inside the export (or the export itself)
 * lets any client read or delete that key; one readable or writable by group
 * or others lets any local user do the same.  dafsd checks both before it
 * creates anything and refuses to start (exit 2) with a message that says
 * which and what to do.
 */
#ifndef DAFSD_STATEDIR_H
#define DAFSD_STATEDIR_H

#include <stddef.h>

/* 0 if state_dir is safe to use with export_dir, else -1 with a one-line
 * reason in why.  A state dir that does not exist yet is judged by its
 * nearest existing ancestor (dafsd creates it with mode 0700).  An export
 * that cannot be opened is left for export_open to report. */
int statedir_check(const char *export_dir, const char *state_dir, char *why, size_t whylen);

#endif
