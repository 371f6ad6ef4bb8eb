/*
 * cli.h — what the modules of the `dafs` command-line client share.
 *
 *   dafs.c          main: the command table, option parsing (GNU style,
 *                   options anywhere), --help and --version
 *   cli_common.c    the one error line, sessions, signals, small helpers
 *   cli_transfer.c  get, put, cat and cp: the transfer loop, the progress
 *                   line, and writing through a temporary name on both sides
 *   cli_commands.c  ls, stat, df, rm, mkdir, rmdir, mv, ln and chmod
 *   cli_mode.c      permission modes: chmod(1)'s symbolic and octal syntax,
 *                   and the ls(1) style "drwsr-xr-t" string
 */
#ifndef DAFS_CLI_H
#define DAFS_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "dafs/dafs.h"

#define CLI_PATH_BUF 4352 /* a path plus one more component */

/* Per-command flags set by the option parser in dafs.c. */
typedef struct cli_flags {
    bool long_form;   /* ls -l */
    bool all;         /* ls -a: also names starting with '.', and . and .. */
    bool almost_all;  /* ls -A: names starting with '.', without . and .. */
    bool directory;   /* ls -d: the directory itself, not its entries */
    bool force;       /* rm -f: no error for a missing file */
    bool recursive;   /* rm -r: directories and their contents */
    bool symbolic;    /* ln -s */
    bool parents;     /* mkdir -p: make parents as needed, no error if it exists */
} cli_flags;

typedef struct cli {
    const char *cmd;      /* "get" */
    const char *provider; /* --provider */
    cli_flags flags;
    dafs_session *s;      /* the open session, or NULL */
    char host[256];       /* the server of s */
    unsigned port;
    char path[4096];      /* the path part of the last URL opened */
} cli;

extern const char *cli_progname;
extern volatile sig_atomic_t cli_progress_open; /* a progress line lacks its newline */

/* ---- errors (cli_common.c) ----
 * Every failure prints exactly one line, "dafs: CMD OBJECT: MESSAGE", and
 * the command exits 1; usage errors exit 2. */
__attribute__((format(printf, 3, 4))) int cli_fail(const cli *c, const char *object,
                                                   const char *fmt, ...);
int cli_fail_dafs(const cli *c, const char *object, int err); /* a libdafs error code */
int cli_fail_url(const cli *c, const char *url); /* a malformed URL: says what is wrong */
int cli_bad_usage(const cli *c);                              /* exit status 2 */
const char *cli_command_usage(const char *cmd);               /* dafs.c */

/* ---- sessions (cli_common.c) ----
 * cli_open parses url (an error line names what is wrong with it) and
 * connects, reusing the open session when the server is the same; it sets
 * c->path.  cli_close_session disconnects; status is passed through, or
 * becomes 1 if disconnecting fails first. */
int cli_open(cli *c, const char *url);
int cli_close_session(cli *c, const char *url, int status);
/* The path of dst on c's server: dst is a URL of the same server or a path
 * starting with '/'. */
int cli_second_path(cli *c, const char *src_url, const char *dst, char *out, size_t outlen);

/* ---- signals (cli_common.c) ----
 * SIGINT, SIGTERM and SIGHUP end a command with one "interrupted" line and
 * exit status 128+signal.  Outside a transfer that happens at once, in the
 * handler.  A transfer sets cli_signals_deferred(true) while it owns
 * temporary files: the handler then only records the signal, the transfer
 * stops at its next chunk, removes what it made and calls cli_interrupted.
 * A second signal does not wait: it removes the local temporary file named
 * by cli_set_local_temp and exits at once. */
void cli_signals_install(void);
void cli_signals_deferred(bool on);
int cli_pending_signal(void); /* 0 or the signal caught while deferred */
void cli_set_local_temp(const char *path); /* NULL: none */
int cli_interrupted(const cli *c, const char *object); /* prints the line, returns 128+sig */
void cli_set_object(const cli *c, const char *object); /* what the handler's line names */

/* ---- helpers (cli_common.c) ---- */
const char *cli_base_name(const char *path); /* static buffer */
void cli_join(char *out, size_t outlen, const char *dir, const char *name);
void cli_human_size(uint64_t bytes, char *buf, size_t len);
double cli_now(void);

/* ---- modes (cli_mode.c) ---- */
/* Parse a chmod(1) mode (octal, or symbolic like u+x,go-w,a=rX) against the
 * current mode old (type bits included, for X).  Returns 0 and sets *out
 * (permission bits 07777 only), or -1 for a malformed mode. */
int cli_parse_mode(const char *spec, uint32_t old, uint32_t *out);
bool cli_mode_is_symbolic_option(const char *arg); /* "-w", "-x,u+r": a mode, not an option */
void cli_mode_string(uint32_t mode, char out[11]);  /* "-rwsr-xr-x" */

/* ---- the commands ---- */
int cmd_ls(cli *c, int argc, char **argv);
int cmd_stat(cli *c, int argc, char **argv);
int cmd_df(cli *c, int argc, char **argv);
int cmd_rm(cli *c, int argc, char **argv);
int cmd_mkdir(cli *c, int argc, char **argv);
int cmd_rmdir(cli *c, int argc, char **argv);
int cmd_mv(cli *c, int argc, char **argv);
int cmd_ln(cli *c, int argc, char **argv);
int cmd_chmod(cli *c, int argc, char **argv);
int cmd_cat(cli *c, int argc, char **argv);
int cmd_get(cli *c, int argc, char **argv);
int cmd_put(cli *c, int argc, char **argv);
int cmd_cp(cli *c, int argc, char **argv);

#endif
