/*
 * cli_mode.c — permission modes as chmod(1) reads them and ls(1) shows them.
 *
 * Parsing follows GNU chmod: a mode is octal (at most 07777) or a comma
 * list of clauses [ugoa]*([-+=]([rwxXst]*|[ugo]))+.  Without u, g, o or a
 * the clause applies to all classes except the bits set in the umask
 * (so "+x" under umask 022 adds 0111 and "-w" leaves group and other write
 * alone); X means x only for directories or when someone already has x;
 * "g=u" copies the user bits.  No locale, no surprises: anything else is an
 * error.
 */
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define MODE_BITS 07777u

static uint32_t who_bits(char c)
{
    switch (c) {
    case 'u': return S_ISUID | S_IRWXU;
    case 'g': return S_ISGID | S_IRWXG;
    case 'o': return S_ISVTX | S_IRWXO;
    case 'a': return MODE_BITS;
    default: return 0;
    }
}

/* The r/w/x bits of one class (u, g or o) of mode, copied to all three. */
static uint32_t copy_class(char c, uint32_t mode)
{
    uint32_t bits = c == 'u' ? (mode >> 6) & 7u : c == 'g' ? (mode >> 3) & 7u : mode & 7u;
    return bits * 0111u;
}

static mode_t current_umask(void)
{
    mode_t m = umask(0); /* there is no way to read it without setting it */
    (void)umask(m);
    return m;
}

static int parse_octal(const char *spec, uint32_t *out)
{
    uint32_t v = 0;
    for (const char *p = spec; *p != '\0'; p++) {
        if (*p < '0' || *p > '7')
            return -1;
        v = v * 8u + (uint32_t)(*p - '0');
        if (v > MODE_BITS)
            return -1;
    }
    *out = v;
    return 0;
}

/* One operator and what follows it, applied to *mode. */
static int apply_op(const char **pp, uint32_t affected, uint32_t mask, uint32_t old, uint32_t *mode)
{
    const char *p = *pp;
    char op = *p++;
    uint32_t value = 0;
    if (*p == 'u' || *p == 'g' || *p == 'o') {
        value = copy_class(*p, *mode);
        p++;
    } else {
        for (; *p != '\0' && strchr("rwxXst", *p) != NULL; p++) {
            switch (*p) {
            case 'r': value |= 0444u; break;
            case 'w': value |= 0222u; break;
            case 'x': value |= 0111u; break;
            case 'X':
                if (S_ISDIR(old) || (*mode & 0111u) != 0)
                    value |= 0111u;
                break;
            case 's': value |= S_ISUID | S_ISGID; break;
            case 't': value |= S_ISVTX; break;
            default: break;
            }
        }
    }
    value &= mask;
    switch (op) {
    case '+': *mode |= value; break;
    case '-': *mode &= ~value; break;
    default: /* '=': the affected bits become exactly value */
        *mode = (*mode & (affected != 0 ? ~affected : (uint32_t)current_umask())) | value;
        break;
    }
    *pp = p;
    return 0;
}

int cli_parse_mode(const char *spec, uint32_t old, uint32_t *out)
{
    if (spec == NULL || spec[0] == '\0')
        return -1;
    if (spec[0] >= '0' && spec[0] <= '7')
        return parse_octal(spec, out);
    uint32_t mode = old & MODE_BITS;
    const char *p = spec;
    for (;;) {
        uint32_t affected = 0;
        for (; who_bits(*p) != 0; p++)
            affected |= who_bits(*p);
        uint32_t mask = affected != 0 ? affected : (MODE_BITS & ~(uint32_t)current_umask());
        if (*p != '+' && *p != '-' && *p != '=')
            return -1; /* a clause needs at least one operator */
        while (*p == '+' || *p == '-' || *p == '=')
            (void)apply_op(&p, affected, mask, old, &mode);
        if (*p == '\0')
            break;
        if (*p != ',')
            return -1;
        p++;
    }
    *out = mode & MODE_BITS;
    return 0;
}

bool cli_mode_is_symbolic_option(const char *arg)
{
    uint32_t m;
    return arg[0] == '-' && arg[1] != '\0' && arg[1] != '-' && cli_parse_mode(arg, 0, &m) == 0;
}

void cli_mode_string(uint32_t mode, char out[11])
{
    char type = '?';
    switch (mode & S_IFMT) {
    case S_IFREG: type = '-'; break;
    case S_IFDIR: type = 'd'; break;
    case S_IFLNK: type = 'l'; break;
    case S_IFCHR: type = 'c'; break;
    case S_IFBLK: type = 'b'; break;
    case S_IFIFO: type = 'p'; break;
    case S_IFSOCK: type = 's'; break;
    default: break;
    }
    const char *rwx = "rwxrwxrwx";
    out[0] = type;
    for (int i = 0; i < 9; i++)
        out[i + 1] = (mode & (1u << (8 - i))) ? rwx[i] : '-';
    /* As ls: s/t over an x, S/T where the x is missing. */
    if (mode & S_ISUID)
        out[3] = (mode & S_IXUSR) ? 's' : 'S';
    if (mode & S_ISGID)
        out[6] = (mode & S_IXGRP) ? 's' : 'S';
    if (mode & S_ISVTX)
        out[9] = (mode & S_IXOTH) ? 't' : 'T';
    out[10] = '\0';
}
