/* SPDX-License-Identifier: MIT */
/*
 * error.c - the thread-local last-error message and the log hook.
 *
 * Every failing public call leaves a sentence in its thread's buffer so the
 * caller can say what went wrong without dynshm ever printing on its own.
 * Where it helps, a failure also carries a detail (the facts behind it: how
 * much was asked, how much is free, which setting sized it) and a hint (what
 * to do about it), in PostgreSQL's style.  A new failure clears both, so a
 * detail never outlives the message it explains.
 * The log hook is process-wide; it is read under a lock-free snapshot so a
 * hook can be installed while other threads log.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define DSM_ERRMSG_LEN 512

static _Thread_local char errmsg_buf[DSM_ERRMSG_LEN];
static _Thread_local char errdetail_buf[DSM_ERRMSG_LEN];
static _Thread_local char errhint_buf[DSM_ERRMSG_LEN];

struct hook_state {
    dsm_log_hook hook;
    void *arg;
};
static struct hook_state hooks[2];
static _Atomic int hook_current = 0; /* index into hooks[] of the live pair */
static _Atomic int hook_min_level = DSM_LOG_ERROR + 1;

const char *dsm_errmsg(void)
{
    return errmsg_buf[0] ? errmsg_buf : "no error";
}

const char *dsm_version(void)
{
    return PACKAGE_VERSION;
}

const char *dsm_errdetail(void)
{
    return errdetail_buf;
}

const char *dsm_errhint(void)
{
    return errhint_buf;
}

static void vset(char *buf, const char *fmt, va_list ap)
{
    int saved_errno = errno;

    vsnprintf(buf, DSM_ERRMSG_LEN, fmt, ap);
    errno = saved_errno; /* the failure's errno stays what dsm__error set */
}

int dsm__errdetail(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vset(errdetail_buf, fmt, ap);
    va_end(ap);
    return code;
}

int dsm__errhint(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vset(errhint_buf, fmt, ap);
    va_end(ap);
    return code;
}

int dsm__error_prefix(int code, const char *fmt, ...)
{
    char msg[DSM_ERRMSG_LEN], prefix[DSM_ERRMSG_LEN];
    va_list ap;

    memcpy(msg, errmsg_buf, sizeof(msg));
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    snprintf(errmsg_buf, sizeof(errmsg_buf), "%s%s", prefix, msg);
    if (code < 0 && code > -4096)
        errno = -code;
    return code;
}

void dsm__error_save(struct dsm__saved_error *e, int code)
{
    e->code = code;
    memcpy(e->msg, errmsg_buf, sizeof(e->msg));
    memcpy(e->detail, errdetail_buf, sizeof(e->detail));
    memcpy(e->hint, errhint_buf, sizeof(e->hint));
}

int dsm__error_restore(const struct dsm__saved_error *e)
{
    memcpy(errmsg_buf, e->msg, sizeof(errmsg_buf));
    memcpy(errdetail_buf, e->detail, sizeof(errdetail_buf));
    memcpy(errhint_buf, e->hint, sizeof(errhint_buf));
    if (e->code < 0 && e->code > -4096)
        errno = -e->code;
    return e->code;
}

const char *dsm_strerror(int code)
{
    switch (code) {
    case 0:
        return "Success";
    case DSM_EDISABLED:
        return "dynamic shared memory is disabled";
    case DSM_ENOSLOTS:
        return "too many dynamic shared memory segments";
    case DSM_ECORRUPT:
        return "control data is corrupt";
    case DSM_EFOREIGN:
        return "object does not belong to this instance";
    case DSM_ESTATE:
        return "operation not valid in the current state";
    default:
        break;
    }
    if (code < 0 && code > -4096)
        return strerror(-code); /* glibc returns static strings for known codes */
    return "unknown error";
}

/*
 * Expand our own "%m" (the error's text) and then format normally.  Only the
 * first few %m are expanded; messages never need more than one.
 */
int dsm__verror(int code, const char *fmt, va_list ap)
{
    char fmt2[DSM_ERRMSG_LEN];
    const char *text = dsm_strerror(code);
    size_t o = 0;

    for (const char *p = fmt; *p && o + 1 < sizeof(fmt2); p++) {
        if (p[0] == '%' && p[1] == '%') {
            if (o + 2 >= sizeof(fmt2))
                break;
            fmt2[o++] = '%';
            fmt2[o++] = '%';
            p++;
        } else if (p[0] == '%' && p[1] == 'm') {
            /* Escape any '%' in the text so vsnprintf copies it literally. */
            for (const char *t = text; *t && o + 2 < sizeof(fmt2); t++) {
                if (*t == '%')
                    fmt2[o++] = '%';
                fmt2[o++] = *t;
            }
            p++;
        } else {
            fmt2[o++] = *p;
        }
    }
    fmt2[o] = '\0';
    vsnprintf(errmsg_buf, sizeof(errmsg_buf), fmt2, ap);
    errdetail_buf[0] = '\0';
    errhint_buf[0] = '\0';
    if (code < 0 && code > -4096)
        errno = -code;
    return code;
}

int dsm__error(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    dsm__verror(code, fmt, ap);
    va_end(ap);
    return code;
}

int dsm__error_silent(int code)
{
    snprintf(errmsg_buf, sizeof(errmsg_buf), "%s", dsm_strerror(code));
    errdetail_buf[0] = '\0';
    errhint_buf[0] = '\0';
    if (code < 0 && code > -4096)
        errno = -code;
    return code;
}

void dsm_set_log_hook(dsm_log_hook hook, void *arg, dsm_log_level min_level)
{
    /*
     * Write the spare pair and then publish it.  Two threads installing
     * hooks at the same moment is an application error we tolerate by
     * last-writer-wins; a logging thread always sees a consistent pair.
     */
    int next = 1 - atomic_load(&hook_current);

    hooks[next].hook = hook;
    hooks[next].arg = arg;
    atomic_store(&hook_current, next);
    atomic_store(&hook_min_level, hook ? (int)min_level : DSM_LOG_ERROR + 1);
}

int dsm__log_enabled(dsm_log_level level)
{
    return (int)level >= atomic_load(&hook_min_level);
}

void dsm__log(dsm_log_level level, const char *fmt, ...)
{
    char buf[DSM_ERRMSG_LEN];
    struct hook_state st;
    va_list ap;
    int saved_errno = errno;

    if (!dsm__log_enabled(level))
        return;
    st = hooks[atomic_load(&hook_current)];
    if (st.hook == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    st.hook(level, buf, st.arg);
    errno = saved_errno; /* logging must never disturb the caller's errno */
}
