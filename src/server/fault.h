/*
 * fault.h — crash points for tests (SQLite-style fault injection).
 *
 * Code that must survive a crash at a given point calls fault_point("name")
 * there.  With the environment variable DAFS_FAULT unset (the normal case)
 * that is one relaxed atomic load and nothing else.  With
 *
 *     DAFS_FAULT=NAME:N      e.g. DAFS_FAULT=undo:after_record:3
 *
 * the N-th call (1-based) of fault_point("NAME") in the process ends it with
 * _exit(137) at once: no atexit handlers, no stdio flush, no fsync — what a
 * SIGKILL or a power cut would leave (a power cut can lose more: data that
 * was never fsync'd; the code under test never counts on such data).
 *
 * The points are listed in docs/design.md ("Locks", crash points).  The
 * switch is compiled in always and is inert unless set, so the binary the
 * tests exercise is the one that ships.
 */
#ifndef DAFSD_FAULT_H
#define DAFSD_FAULT_H

#define FAULT_EXIT_CODE 137

void fault_point(const char *name);

/* Re-read DAFS_FAULT and reset the hit counter (tests that fork a child per
 * fault point call this in the child after setenv). */
void fault_reset(void);

#endif
