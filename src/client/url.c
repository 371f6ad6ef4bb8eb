/*
 * url.c — dafs://HOST[:PORT][/PATH] parsing.
 *
 * HOST is a name or IPv4 address (letters, digits, '.', '-', '_') or an IPv6
 * address in brackets ([::1], zone ids allowed: [fe80::1%lo]).  PORT is
 * 1..65535 and defaults to DAFS_DEFAULT_PORT.  PATH defaults to "/".  No user
 * info, query or fragment: anything unexpected is -DAFS_EURL rather than a
 * guess.  dafs_url_error says which part is wrong, for error messages.
 */
#include <ctype.h>
#include <string.h>

#include "client.h"

#define URL_SCHEME "dafs://"

static bool host_char_ok(char c, bool ipv6)
{
    if (ipv6)
        return isxdigit((unsigned char)c) || c == ':' || c == '.' || c == '%' ||
               isalnum((unsigned char)c);
    return isalnum((unsigned char)c) || c == '.' || c == '-' || c == '_';
}

/* Parse the host at *p into host; advance *p past it.  On error *why says
 * what is wrong. */
static int parse_host(const char **p, char *host, size_t hostlen, const char **why)
{
    const char *start = *p, *end;
    bool ipv6 = *start == '[';
    if (ipv6) {
        start++;
        end = strchr(start, ']');
        if (end == NULL) {
            *why = "IPv6 address without its closing ']'";
            return -DAFS_EURL;
        }
        *p = end + 1;
        if (**p != '\0' && **p != ':' && **p != '/') {
            *why = "unexpected text after the IPv6 address's ']'";
            return -DAFS_EURL;
        }
    } else {
        end = start;
        while (*end != '\0' && *end != ':' && *end != '/')
            end++;
        *p = end;
    }
    size_t n = (size_t)(end - start);
    if (n == 0 && !ipv6 && start[0] == ':' && start[1] == ':') {
        *why = "an IPv6 address needs brackets (dafs://[ADDR]:PORT/PATH)";
        return -DAFS_EURL;
    }
    if (n == 0) {
        *why = ipv6 ? "empty IPv6 address in brackets" : "empty host";
        return -DAFS_EURL;
    }
    if (n >= hostlen) {
        *why = "host name too long";
        return -DAFS_EURL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!host_char_ok(start[i], ipv6)) {
            *why = start[i] == '@'   ? "user names are not supported (no '@' in the host)"
                   : start[i] == '[' || start[i] == ']' ? "bad IPv6 brackets (dafs://[ADDR]:PORT/)"
                   : ipv6            ? "bad character in the IPv6 address"
                                     : "bad character in the host name";
            return -DAFS_EURL;
        }
    }
    memcpy(host, start, n);
    host[n] = '\0';
    return 0;
}

static int parse_port(const char **p, unsigned *port, const char **why)
{
    *port = DAFS_DEFAULT_PORT;
    if (**p != ':')
        return 0;
    (*p)++;
    unsigned long v = 0;
    size_t digits = 0;
    while (isdigit((unsigned char)**p)) {
        v = v * 10u + (unsigned long)(**p - '0');
        if (v > 65535u) {
            *why = "bad port (not in 1..65535)";
            return -DAFS_EURL;
        }
        (*p)++;
        digits++;
    }
    if (**p == ':') {
        *why = "an IPv6 address needs brackets (dafs://[ADDR]:PORT/PATH)";
        return -DAFS_EURL;
    }
    if (digits == 0 && (**p == '\0' || **p == '/')) {
        *why = "empty port after ':'";
        return -DAFS_EURL;
    }
    if (digits == 0 || (**p != '\0' && **p != '/')) {
        *why = "bad port (not a number)";
        return -DAFS_EURL;
    }
    if (v == 0) {
        *why = "bad port (not in 1..65535)";
        return -DAFS_EURL;
    }
    *port = (unsigned)v;
    return 0;
}

static int url_parse(const char *url, char *host, size_t hostlen, unsigned *port, char *path,
                     size_t pathlen, const char **why)
{
    *why = "bad arguments";
    if (url == NULL || host == NULL || port == NULL || path == NULL || hostlen == 0 ||
        pathlen < 2)
        return -DAFS_EURL;
    if (strncmp(url, URL_SCHEME, strlen(URL_SCHEME)) != 0) {
        *why = url[0] == '\0'                   ? "empty URL"
               : strncmp(url, "dafs:", 5) == 0 ? "the scheme is dafs:// (two slashes)"
               : strstr(url, "://") != NULL     ? "the scheme must be dafs://"
                                                : "missing scheme (dafs://HOST[:PORT]/PATH)";
        return -DAFS_EURL;
    }
    const char *p = url + strlen(URL_SCHEME);
    int rc = parse_host(&p, host, hostlen, why);
    if (rc == 0)
        rc = parse_port(&p, port, why);
    if (rc < 0)
        return rc;
    if (*p == '\0') {
        strcpy(path, "/");
        return 0;
    }
    if (*p != '/') { /* cannot happen: host and port stop only at '/' or the end */
        *why = "missing '/' before the path";
        return -DAFS_EURL;
    }
    if (strpbrk(p, "?#") != NULL) {
        *why = "queries and fragments ('?', '#') are not supported";
        return -DAFS_EURL;
    }
    size_t n = strlen(p);
    if (n >= pathlen) {
        *why = "path too long";
        return -DAFS_EURL;
    }
    memcpy(path, p, n + 1);
    return 0;
}

int dafs_url_parse(const char *url, char *host, size_t hostlen, unsigned *port, char *path,
                   size_t pathlen)
{
    const char *why;
    return url_parse(url, host, hostlen, port, path, pathlen, &why);
}

const char *dafs_url_error(const char *url)
{
    char host[DAFS_URL_HOST_MAX], path[DAFS_URL_PATH_MAX];
    unsigned port;
    const char *why;
    if (url == NULL)
        return "no URL";
    return url_parse(url, host, sizeof host, &port, path, sizeof path, &why) == 0 ? NULL : why;
}
