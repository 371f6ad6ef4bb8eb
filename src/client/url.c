/*
 * url.c — dafs://HOST[:PORT][/PATH] parsing.
 *
 * HOST is a name or IPv4 address (letters, digits, '.', '-', '_') or an IPv6
 * address in brackets ([::1], zone ids allowed: [fe80::1%lo]).  PORT is
 * 1..65535 and defaults to DAFS_DEFAULT_PORT.  PATH defaults to "/".  No user
 * info, query or fragment: anything unexpected is -DAFS_EURL rather than a
 * guess.
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

/* Parse the host at *p into host; advance *p past it. */
static int parse_host(const char **p, char *host, size_t hostlen)
{
    const char *start = *p, *end;
    bool ipv6 = *start == '[';
    if (ipv6) {
        start++;
        end = strchr(start, ']');
        if (end == NULL)
            return -DAFS_EURL;
        *p = end + 1;
    } else {
        end = start;
        while (*end != '\0' && *end != ':' && *end != '/')
            end++;
        *p = end;
    }
    size_t n = (size_t)(end - start);
    if (n == 0 || n >= hostlen)
        return -DAFS_EURL;
    for (size_t i = 0; i < n; i++)
        if (!host_char_ok(start[i], ipv6))
            return -DAFS_EURL;
    memcpy(host, start, n);
    host[n] = '\0';
    return 0;
}

static int parse_port(const char **p, unsigned *port)
{
    *port = DAFS_DEFAULT_PORT;
    if (**p != ':')
        return 0;
    (*p)++;
    unsigned long v = 0;
    size_t digits = 0;
    while (isdigit((unsigned char)**p)) {
        v = v * 10u + (unsigned long)(**p - '0');
        if (v > 65535u)
            return -DAFS_EURL;
        (*p)++;
        digits++;
    }
    if (digits == 0 || v == 0)
        return -DAFS_EURL;
    *port = (unsigned)v;
    return 0;
}

int dafs_url_parse(const char *url, char *host,
                                                          size_t hostlen, unsigned *port,
                                                          char *path, size_t pathlen)
{
    if (url == NULL || host == NULL || port == NULL || path == NULL || hostlen == 0 ||
        pathlen < 2)
        return -DAFS_EURL;
    if (strncmp(url, URL_SCHEME, strlen(URL_SCHEME)) != 0)
        return -DAFS_EURL;
    const char *p = url + strlen(URL_SCHEME);
    int rc = parse_host(&p, host, hostlen);
    if (rc == 0)
        rc = parse_port(&p, port);
    if (rc < 0)
        return rc;
    if (*p == '\0') {
        strcpy(path, "/");
        return 0;
    }
    if (*p != '/' || strpbrk(p, "?#") != NULL)
        return -DAFS_EURL;
    size_t n = strlen(p);
    if (n >= pathlen)
        return -DAFS_EURL;
    memcpy(path, p, n + 1);
    return 0;
}
