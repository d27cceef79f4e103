/* SPDX-License-Identifier: MIT */
/*
 * log.c - the server's log: one timestamped line per event on standard
 * error (which is DIR/dsm_demo.log for a daemon).
 *
 * The library prints nothing by itself; it reports what is not an error of
 * the current call (leftovers removed at start-up, crash resets, leaked
 * mappings) through its log hook.  Installing the hook here puts those
 * messages into the same log, in the same format, as the server's own, so
 * that an operator reading the start-up log after a crash sees exactly
 * what was cleaned up.
 *
 * Workers inherit the hook across fork(); the pid in every line tells the
 * supervisor's messages from a worker's.  Each line is written with a
 * single write() so that lines from several processes never interleave.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsm_demo.h"

static dsm_log_level log_min_level = DSM_LOG_INFO;

static const char *level_label(dsm_log_level level)
{
    switch ((int)level) {
    case DSM_LOG_DEBUG:
        return "DEBUG";
    case DSM_LOG_INFO:
        return "LOG";
    case DSM_LOG_WARNING:
        return "WARNING";
    case DSM_LOG_ERROR:
        return "ERROR";
    default:
        return "FATAL";
    }
}

static void emit(dsm_log_level level, const char *message)
{
    char stamp[64], line[4096];
    struct timespec now;
    struct tm tm;
    size_t off;
    int n;

    clock_gettime(CLOCK_REALTIME, &now);
    localtime_r(&now.tv_sec, &tm);
    off = strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(stamp + off, sizeof(stamp) - off, ".%03ld", now.tv_nsec / 1000000);
    off = strlen(stamp);
    strftime(stamp + off, sizeof(stamp) - off, " %Z", &tm);

    n = snprintf(line, sizeof(line), "%s [%d] %s:  %s\n", stamp, (int)getpid(),
                 level_label(level), message);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        /* Keep the line a line: cut the message, not the newline. */
        memcpy(line + sizeof(line) - 5, "...\n", 5);
        n = (int)sizeof(line) - 1;
    }
    for (const char *p = line; n > 0;) {
        ssize_t w = write(STDERR_FILENO, p, (size_t)n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break; /* nowhere left to complain to */
        p += w;
        n -= (int)w;
    }
}

static void library_hook(dsm_log_level level, const char *message, void *arg)
{
    (void)arg;
    emit(level, message);
}

void demo_log_init(dsm_log_level min_level)
{
    tzset(); /* once, before fork(), so %Z never needs the time zone files later */
    log_min_level = min_level;
    dsm_set_log_hook(library_hook, NULL, min_level);
}

void demo_log(dsm_log_level level, const char *fmt, ...)
{
    char message[3072];
    int saved_errno = errno; /* callers log between a failure and their use of errno */
    va_list ap;

    if (level < log_min_level)
        return;
    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    emit(level, message);
    errno = saved_errno;
}
