/*
 * handle.c - printing and parsing handles, and the process's random source.
 *
 * Handles travel between processes as text (command lines, sockets, logs),
 * so their one printed form lives here.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#ifdef HAVE_SYS_RANDOM_H
#include <sys/random.h>
#endif

#include "internal.h"

char *dsm_handle_format(dsm_handle handle, char *buf)
{
    snprintf(buf, DSM_HANDLE_STRLEN, "%016llx", (unsigned long long)handle);
    return buf;
}

int dsm_handle_parse(const char *text, dsm_handle *out)
{
    const char *p = text;
    uint64_t v = 0;
    int digits = 0;

    if (text == NULL || out == NULL)
        return dsm__error(-EINVAL, "invalid handle: no text given");
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        p += 2;
    for (; *p; p++) {
        int d;

        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            return dsm__error(-EINVAL, "invalid handle \"%.40s\": not a hexadecimal number",
                              text);
        if (++digits > 16)
            return dsm__error(-EINVAL, "invalid handle \"%.40s\": more than 16 digits", text);
        v = (v << 4) | (uint64_t)d;
    }
    if (digits == 0)
        return dsm__error(-EINVAL, "invalid handle \"%.40s\": no digits", text);
    if (v == DSM_HANDLE_INVALID)
        return dsm__error(-EINVAL, "invalid handle \"%.40s\": 0 is never a handle", text);
    *out = v;
    return 0;
}

int dsm__random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;
    size_t got = 0;

#ifdef HAVE_GETRANDOM
    while (got < len) {
        ssize_t n = getrandom(p + got, len - got, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* ENOSYS on old kernels: fall back below */
        }
        got += (size_t)n;
    }
    if (got == len)
        return 0;
#endif
    {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

        if (fd < 0)
            return dsm__error(-errno, "could not open \"/dev/urandom\": %m");
        while (got < len) {
            ssize_t n = read(fd, p + got, len - got);

            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                int e = n < 0 ? errno : EIO;

                close(fd);
                return dsm__error(-e, "could not read \"/dev/urandom\": %m");
            }
            got += (size_t)n;
        }
        close(fd);
    }
    return 0;
}
