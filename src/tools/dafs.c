/*
 * dafs.c — the `dafs` command-line client: ls, stat, cat, get, put, cp, mv,
 * rm, mkdir, rmdir, ln -s, chmod and df against a dafsd without mounting
 * anything.  This file holds main: the command table, the options and the
 * help text; the commands are in cli_transfer.c (get, put, cat, cp) and
 * cli_commands.c (the rest), what they share in cli_common.c (see cli.h).
 *
 * Every command opens a libdafs session from its URL
 * (dafs://HOST[:PORT]/PATH), does its work and disconnects.
 *
 * Options follow GNU habits: global options (--provider, --help,
 * --version) may come before or after the command, a command's own options
 * anywhere after it, short options combine (ls -la), and "--" ends them.
 * Before the command, -p is --provider; after mkdir it is mkdir's -p.
 *
 * Errors: exit status 1 (2 for usage errors, 128+N after signal N) and
 * exactly one line on stderr naming the command, the object and the cause:
 *     dafs: get dafs://h/x: No such file or directory
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dafs_version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: dafs [--provider NAME] COMMAND [OPTIONS] ARGS...\n"
            "\n"
            "commands:\n"
            "  ls [-lAad] URL...          list directories (-l: mode, size, mtime;\n"
            "                             -a/-A: names starting with '.'; -d: not their entries)\n"
            "  stat URL...                show attributes\n"
            "  cat URL...                 write files to standard output\n"
            "  get URL [LOCAL|DIR|-]      copy a file from the server\n"
            "  get URL... DIR             copy files from the server into a directory\n"
            "  put LOCAL URL              copy a file to the server (URL may be a directory)\n"
            "  put LOCAL... URL           copy files into a directory on the server\n"
            "  cp SRC DST                 copy a file within one server (DST: URL or /path)\n"
            "  mv SRC DST                 rename within one server (DST: URL or /path)\n"
            "  ln -s TARGET URL           create a symbolic link\n"
            "  chmod MODE URL...          change permission bits (644, u+x,go-w, a=rX)\n"
            "  rm [-f] [-r] URL...        remove files (-r: and directories with their contents;\n"
            "                             -f: no error for missing files)\n"
            "  mkdir [-p] URL...          create directories (-p: and missing parents)\n"
            "  rmdir URL...               remove empty directories\n"
            "  df URL                     show file system size, used and available space\n"
            "\n"
            "options:\n"
            "  -p, --provider NAME        libfabric provider (default: $DAFS_PROVIDER,\n"
            "                             $FI_PROVIDER, then libfabric's choice)\n"
            "  -h, --help                 show this help\n"
            "  -V, --version              show the version\n"
            "\n"
            "URLs look like dafs://HOST[:PORT]/PATH (default port %d).\n"
            "Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.\n",
            DAFS_DEFAULT_PORT);
}

/* ---- main ---- */

typedef struct command {
    const char *name;
    int (*run)(cli *c, int argc, char **argv);
    const char *args;
    const char *shortopts; /* the command's own options */
} command;

static const command commands[] = {
    {"ls", cmd_ls, "[-lAad] URL...", "lAad1"},
    {"stat", cmd_stat, "URL...", ""},
    {"cat", cmd_cat, "URL...", ""},
    {"get", cmd_get, "URL [LOCAL|DIR|-] | URL... DIR", ""},
    {"put", cmd_put, "LOCAL URL | LOCAL... URL", ""},
    {"cp", cmd_cp, "SRC DST", ""},
    {"mv", cmd_mv, "SRC DST", ""},
    {"ln", cmd_ln, "-s TARGET URL", "s"},
    {"chmod", cmd_chmod, "MODE URL...", ""},
    {"rm", cmd_rm, "[-f] [-r] URL...", "frR"},
    {"mkdir", cmd_mkdir, "[-p] URL...", "p"},
    {"rmdir", cmd_rmdir, "URL...", ""},
    {"df", cmd_df, "URL", ""},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

const char *cli_command_usage(const char *cmd)
{
    const command *k = find_command(cmd);
    return k != NULL ? k->args : "";
}

enum { OPT_PROVIDER = 1000, OPT_PARENTS }; /* long options whose letter is taken */

static const struct option long_options[] = {
    {"provider", required_argument, NULL, OPT_PROVIDER},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    /* the commands' own, accepted only where the command has the short one */
    {"long", no_argument, NULL, 'l'},
    {"all", no_argument, NULL, 'a'},
    {"almost-all", no_argument, NULL, 'A'},
    {"directory", no_argument, NULL, 'd'},
    {"force", no_argument, NULL, 'f'},
    {"recursive", no_argument, NULL, 'r'},
    {"symbolic", no_argument, NULL, 's'},
    {"parents", no_argument, NULL, OPT_PARENTS},
    {NULL, 0, NULL, 0},
};

/* A bad option: one line, status 2. */
static int bad_option(const char *cmd, int opt, const char *arg)
{
    char what[64];
    if (opt != 0 && opt != '?' && opt != ':')
        (void)snprintf(what, sizeof what, "-%c", opt);
    else
        (void)snprintf(what, sizeof what, "%s", arg);
    fprintf(stderr, "%s: %s%s%s '%.60s' (try dafs --help)\n", cli_progname, cmd,
            cmd[0] ? ": " : "", opt == ':' ? "option needs an argument:" : "unknown option",
            what);
    return 2;
}

/* Handle one option; returns -1 to go on, or an exit status. */
static int take_option(cli *c, const command *k, int opt, const char *arg)
{
    const char *own = k != NULL ? k->shortopts : "";
    switch (opt) {
    case 'p':
        if (strchr(own, 'p') != NULL) { /* mkdir -p */
            c->flags.parents = true;
            return -1;
        }
        c->provider = optarg;
        return -1;
    case OPT_PROVIDER:
        c->provider = optarg;
        return -1;
    case OPT_PARENTS:
        if (strchr(own, 'p') == NULL)
            return bad_option(c->cmd, 0, arg);
        c->flags.parents = true;
        return -1;
    case 'h': usage(stdout); return 0;
    case 'V': printf("dafs (dafs) %s\n", DAFS_VERSION_STRING); return 0;
    case ':':
    case '?': return bad_option(c->cmd, opt == ':' ? ':' : optopt, arg);
    default: break;
    }
    if (opt > 0 && opt < 256 && strchr(own, opt) == NULL)
        return bad_option(c->cmd, 0, arg); /* a long option of another command */
    switch (opt) {
    case 'l': c->flags.long_form = true; break;
    case 'a': c->flags.all = true; break;
    case 'A': c->flags.almost_all = true; break;
    case 'd': c->flags.directory = true; break;
    case 'f': c->flags.force = true; break;
    case 'r':
    case 'R': c->flags.recursive = true; break;
    case 's': c->flags.symbolic = true; break;
    default: break; /* ls -1: one name per line is what ls does anyway */
    }
    return -1;
}

/* The options after the command, permuted GNU style: argv[0] is the
 * command, the operands end up in argv[*first..argc). */
static int parse_command_options(cli *c, const command *k, int argc, char **argv, int *first)
{
    char optstring[32];
    /* The command's letters win over the global ones (mkdir -p). */
    (void)snprintf(optstring, sizeof optstring, ":%s%shV", k->shortopts,
                   strchr(k->shortopts, 'p') != NULL ? "" : "p:");
    /* chmod -w URL: "-w" is a mode, not an option (as chmod(1) reads it).
     * getopt sees a stand-in and the mode comes back after permuting. */
    static char mode_stand_in[] = "mode";
    char *mode_arg = NULL;
    for (int i = 1; k->run == cmd_chmod && i < argc && mode_arg == NULL; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (cli_mode_is_symbolic_option(argv[i])) {
            mode_arg = argv[i];
            argv[i] = mode_stand_in;
        }
    }
    optind = 0; /* a fresh scan (GNU) */
    int opt, status = -1;
    while (status < 0 && (opt = getopt_long(argc, argv, optstring, long_options, NULL)) != -1)
        status = take_option(c, k, opt, argv[optind - 1]);
    for (int i = 1; i < argc; i++)
        if (argv[i] == mode_stand_in)
            argv[i] = mode_arg;
    *first = optind;
    return status;
}

int main(int argc, char **argv)
{
    cli c = {.cmd = ""};
    int opt, status = -1;
    opterr = 0; /* we print the one error line ourselves */
    /* Global options up to the command word. */
    while (status < 0 && (opt = getopt_long(argc, argv, "+:p:hV", long_options, NULL)) != -1) {
        if (opt != 'p' && opt != OPT_PROVIDER && opt != 'h' && opt != 'V' && opt != ':' &&
            opt != '?')
            status = bad_option("", 0, argv[optind - 1]); /* a command's, before any command */
        else
            status = take_option(&c, NULL, opt, argv[optind - 1]);
    }
    if (status >= 0)
        return status;
    if (optind >= argc) {
        fprintf(stderr, "%s: no command given (try dafs --help)\n", cli_progname);
        return 2;
    }
    c.cmd = argv[optind];
    const command *k = find_command(c.cmd);
    if (k == NULL) {
        fprintf(stderr, "%s: unknown command '%s' (try dafs --help)\n", cli_progname, c.cmd);
        return 2;
    }
    int cargc = argc - optind, first = 0;
    char **cargv = argv + optind;
    status = parse_command_options(&c, k, cargc, cargv, &first);
    if (status >= 0)
        return status;
    cli_set_object(&c, NULL);
    cli_signals_install();
    return k->run(&c, cargc - first, cargv + first);
}
