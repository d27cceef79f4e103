/* SPDX-License-Identifier: MIT */
/*
 * internal.h - helpers shared by every dynshm module; never installed.
 *
 * Internal functions use the dsm__ prefix (two underscores) so they cannot
 * be mistaken for public API; the shared library hides them anyway.
 */
#ifndef DYNSHM_INTERNAL_H
#define DYNSHM_INTERNAL_H

#include <errno.h>
#include <stdarg.h>
#include <dynshm/common.h>

#define DSM_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Record a failure for dsm_errmsg(), set errno to -code when code is an
 * errno value, and return code, so call sites read
 *     return dsm__error(-errno_saved, "could not open \"%s\": %m", path);
 * "%m" in the format is replaced by dsm_strerror(code) (glibc's %m would
 * use errno at the time of formatting, which cleanup may have clobbered).
 */
int dsm__error(int code, const char *fmt, ...) DSM_PRINTF(2, 3);
int dsm__verror(int code, const char *fmt, va_list ap) DSM_PRINTF(2, 0);

/* Record a failure without producing a message (expected, silent cases). */
int dsm__error_silent(int code);

/*
 * Attach a detail (the facts behind the failure just recorded) or a hint
 * (what to do about it) to the current error; both return code, so
 *     rc = dsm__error(-ENOSPC, "could not ...");
 *     dsm__errdetail(rc, "%zu bytes were requested; %llu are free", ...);
 *     return dsm__errhint(rc, "Give /dev/shm more room, or ...");
 * Every new dsm__error() clears both.
 */
int dsm__errdetail(int code, const char *fmt, ...) DSM_PRINTF(2, 3);
int dsm__errhint(int code, const char *fmt, ...) DSM_PRINTF(2, 3);

/*
 * Keep an error across clean-up calls that may record errors of their own,
 * then put it back: message, detail, hint and errno.  Restore returns the
 * code, so a failure path reads
 *     dsm__error_save(&e, rc); ...clean up...; return dsm__error_restore(&e);
 */
/* Put context before the current message ("file:3: " + message), keeping
 * its detail and hint; returns code. */
int dsm__error_prefix(int code, const char *fmt, ...) DSM_PRINTF(2, 3);

struct dsm__saved_error {
    int code;
    char msg[512], detail[512], hint[512];
};
void dsm__error_save(struct dsm__saved_error *e, int code);
int dsm__error_restore(const struct dsm__saved_error *e);

/* Send a message to the log hook, if any and if level is high enough. */
void dsm__log(dsm_log_level level, const char *fmt, ...) DSM_PRINTF(2, 3);
int dsm__log_enabled(dsm_log_level level);

/* Fill buf with len unpredictable bytes (getrandom, falling back to /dev/urandom);
 * requests of up to 16 bytes come from a per-thread pool, refilled 256 bytes at a time. */
int dsm__random_bytes(void *buf, size_t len);

/* 64-bit mixing function (splitmix64 finaliser); used to derive names and keys. */
static inline uint64_t dsm__mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/* FNV-1a, 64 bits: the checksum of control-segment headers and state files. */
static inline uint64_t dsm__fnv1a64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t x = UINT64_C(0xcbf29ce484222325);

    for (size_t i = 0; i < len; i++) {
        x ^= p[i];
        x *= UINT64_C(0x100000001b3);
    }
    return x;
}

#endif /* DYNSHM_INTERNAL_H */
