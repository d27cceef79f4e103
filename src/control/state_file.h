/* SPDX-License-Identifier: MIT */
/*
 * state_file.h - the state file: where a supervisor leaves the handle of its
 * control segment, so the next supervisor can find it after a kill -9.
 */
#ifndef DYNSHM_STATE_FILE_H
#define DYNSHM_STATE_FILE_H

#include <stdint.h>
#include <sys/types.h>

#include <dynshm/dsm_impl.h>

#define DSM_STATE_FILE "dynshm.state"
#define DSM_STATE_VERSION 1
#define DSM_STATE_MAX_SIZE 4096

struct dsm_state_record {
    uint64_t instance_id;
    dsm_impl_type backend;
    dsm_handle control;
    int64_t os_id;   /* the control segment's sysv shmid, else -1 */
    uint64_t size;   /* the control segment's size */
    pid_t pid;       /* the supervisor that wrote it */
};

/* Write atomically (temporary file, fsync, rename, fsync the directory), mode 0600. */
int dsm__state_write(const char *datadir, const struct dsm_state_record *r);

/* Read and validate; -ENOENT if there is none, DSM_ECORRUPT if it is malformed. */
int dsm__state_read(const char *datadir, struct dsm_state_record *r);

/* Parse state-file text (need not be NUL-terminated); never reads past len. */
int dsm__state_parse(const char *text, size_t len, struct dsm_state_record *r);

/* Format a record as state-file text; returns its length, or -ERANGE. */
int dsm__state_format(const struct dsm_state_record *r, char *buf, size_t len);

/* Remove the state file; -ENOENT if there was none. */
int dsm__state_remove(const char *datadir);

#endif /* DYNSHM_STATE_FILE_H */
