/* SPDX-License-Identifier: MIT */
/*
 * procid.c - process identity: pid plus start time, and whether it still runs.
 *
 * The start time comes from /proc/<pid>/stat (field 22, clock ticks since
 * boot): it is fixed for the life of a process and differs for the next
 * process that gets the same pid unless both start within one tick, which
 * pid allocation (sequential, wrapping at pid_max) makes practically
 * impossible.  Reading it costs a few microseconds, so callers that hold a
 * lock copy identities out and check them after unlocking (see
 * src/control/slots.c); this file never takes a lock of its own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "procid.h"

uint64_t dsm__proc_start_time(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long start = 0;
    const char *p;
    ssize_t n;
    int fd, field;

    if (pid <= 0)
        return 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* The command name (field 2) may contain spaces and ')': skip to the last ')'. */
    p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    /* Field 3, the state: a zombie (its parent has not reaped it, as under a
     * container init that never reaps) holds no mapping and no lock; it is dead. */
    if (p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'))
        return 0;
    for (field = 2; *p && field < 22; p++)
        if (*p == ' ')
            field++;
    if (sscanf(p, "%llu", &start) != 1)
        return 0;
    return start;
}

/* Cached per process image; a fork child sees another pid and reads its own. */
static struct dsm__procid self_cache;

void dsm__procid_self(struct dsm__procid *out)
{
    pid_t pid = getpid();

    if (__atomic_load_n(&self_cache.pid, __ATOMIC_ACQUIRE) != (int32_t)pid) {
        struct dsm__procid id = {.pid = (int32_t)pid, .start_time = dsm__proc_start_time(pid)};

        /* Threads racing here compute the same value; last writer wins. */
        __atomic_store_n(&self_cache.start_time, id.start_time, __ATOMIC_RELAXED);
        __atomic_store_n(&self_cache.pid, id.pid, __ATOMIC_RELEASE);
        *out = id;
        return;
    }
    out->pid = (int32_t)pid;
    out->reserved = 0;
    out->start_time = __atomic_load_n(&self_cache.start_time, __ATOMIC_RELAXED);
}

bool dsm__procid_alive(const struct dsm__procid *id)
{
    int saved = errno;
    bool alive;

    if (id->pid <= 0)
        return false;
    if (id->start_time != 0)
        return dsm__proc_start_time(id->pid) == id->start_time;
    /* No start time was recorded (no /proc then): existence is all we can check. */
    alive = kill(id->pid, 0) == 0 || errno == EPERM;
    errno = saved;
    return alive;
}
