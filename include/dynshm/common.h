/* SPDX-License-Identifier: MIT */
/*
 * dynshm/common.h - conventions shared by every dynshm module.
 *
 * Error convention (the same in every public function):
 *   - A function that can fail returns int: 0 on success, or a negative
 *     error code on failure.  Error codes are negated errno values (-ENOENT,
 *     -ENOSPC, ...) or one of the DSM_E* codes below for conditions errno
 *     has no name for.  Results come back through out-parameters.
 *   - On failure the calling thread's last-error message is set to a
 *     sentence in PostgreSQL's style, e.g.
 *       could not create shared memory segment "/dynshm.1f..": No space left on device
 *     dsm_errmsg() returns it.  errno is also left equal to the failure's
 *     errno value, so callers that prefer errno lose nothing.  Where it
 *     helps, dsm_errdetail() adds the facts behind the failure and
 *     dsm_errhint() what to do about it (both "" when there are none).
 *   - These are valid only right after a call that FAILED.  A successful
 *     call does not clear them (that would cost every call a write), so
 *     never read them to decide whether a call worked: test its result.
 *   - The library never exits, aborts, longjmps or prints.  It reports
 *     events that are not errors of the current call (leaks, cleanups,
 *     repairs) only through the log hook, if the application installed one.
 */
#ifndef DYNSHM_COMMON_H
#define DYNSHM_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(DSM_BUILDING_LIBRARY) && defined(__GNUC__)
#define DSM_EXPORT __attribute__((visibility("default")))
#else
#define DSM_EXPORT
#endif

#if defined(__GNUC__)
#define DSM_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define DSM_PRINTF(f, a)
#endif

/*
 * A handle names a segment across processes.  0 is never a valid handle.
 * Handles are printed as 16 lowercase hex digits (see dsm_handle_format()).
 */
typedef uint64_t dsm_handle;
#define DSM_HANDLE_INVALID ((dsm_handle)0)
#define DSM_HANDLE_STRLEN 17 /* 16 hex digits and the terminating NUL */

/* dynshm's own error codes: negative, and far outside errno's range. */
enum dsm_error_code {
    DSM_EDISABLED = -10001, /* dynamic_shared_memory_type is "none" */
    DSM_ENOSLOTS = -10002,  /* the control segment has no free slot */
    DSM_ECORRUPT = -10003,  /* a control segment or state file failed validation */
    DSM_EFOREIGN = -10004,  /* an object exists but cannot be proven to be ours */
    DSM_ESTATE = -10005     /* call not valid in the current state (e.g. not initialised) */
};

/* Message of the last failure in the calling thread; never NULL. */
DSM_EXPORT const char *dsm_errmsg(void);

/* Detail (the facts behind it) and hint (what to do) of that failure; "" if none. */
DSM_EXPORT const char *dsm_errdetail(void);
DSM_EXPORT const char *dsm_errhint(void);

/* The library's version at run time, "MAJOR.MINOR.PATCH" (compare DYNSHM_VERSION). */
DSM_EXPORT const char *dsm_version(void);

/* Static description of an error code (errno values or DSM_E*); never NULL. */
DSM_EXPORT const char *dsm_strerror(int code);

typedef enum dsm_log_level {
    DSM_LOG_DEBUG = 0,
    DSM_LOG_INFO = 1,
    DSM_LOG_WARNING = 2,
    DSM_LOG_ERROR = 3
} dsm_log_level;

typedef void (*dsm_log_hook)(dsm_log_level level, const char *message, void *arg);

/*
 * Install (or, with hook == NULL, remove) the process-wide log hook.
 * Messages below min_level are not formatted at all.
 */
DSM_EXPORT void dsm_set_log_hook(dsm_log_hook hook, void *arg, dsm_log_level min_level);

/* Parse a handle printed by dynshm (hex, optional 0x prefix). */
DSM_EXPORT int dsm_handle_parse(const char *text, dsm_handle *out);

/* Format a handle into buf (at least DSM_HANDLE_STRLEN bytes); returns buf. */
DSM_EXPORT char *dsm_handle_format(dsm_handle handle, char *buf);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_COMMON_H */
