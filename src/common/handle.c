/* SPDX-License-Identifier: MIT */
/*
 * handle.c - printing and parsing handles, and the process's random source.
 *
 * Handles travel between processes as text (command lines, sockets, logs),
 * so their one printed form lives here.  So does the randomness in them:
 * kernel bytes, pooled per thread (see dsm__random_bytes below).
 */
#include "config.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
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

/* Fill buf straight from the kernel (getrandom, or /dev/urandom without it). */
static int random_direct(void *buf, size_t len)
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

/*
 * Small requests (the 32 random bits of a handle, on every create) are
 * served from a per-thread pool that one getrandom() call refills every 64
 * creates: a system call per create cost more than all the rest of
 * dynshm's bookkeeping (see doc/performance.md).  The bytes are the same
 * kernel randomness, each handed out once and then wiped from the pool.
 * A fork child starts with an empty pool, so parent and child never hand
 * out the same bytes; other threads have pools of their own.
 */
#define RANDOM_POOL 256
#define RANDOM_POOLED_MAX 16 /* larger requests go to the kernel directly */

static _Thread_local struct {
    unsigned char bytes[RANDOM_POOL];
    size_t left; /* the unused bytes are the last `left` */
} pool;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_forget(void)
{
    memset(&pool, 0, sizeof(pool));
}

static void pool_init(void)
{
    pthread_atfork(NULL, NULL, pool_forget);
}

int dsm__random_bytes(void *buf, size_t len)
{
    unsigned char *p;

    if (len > RANDOM_POOLED_MAX)
        return random_direct(buf, len);
    pthread_once(&pool_once, pool_init);
    if (pool.left < len) {
        int rc = random_direct(pool.bytes, RANDOM_POOL);

        if (rc < 0)
            return rc;
        pool.left = RANDOM_POOL;
    }
    p = pool.bytes + RANDOM_POOL - pool.left;
    memcpy(buf, p, len);
    memset(p, 0, len);
    pool.left -= len;
    return 0;
}
