/* SPDX-License-Identifier: MIT */
/*
 * datadir.h - the data directory's permission check and lock (datadir.c).
 */
#ifndef DYNSHM_DATADIR_H
#define DYNSHM_DATADIR_H

#include <stdbool.h>

#define DSM_LOCK_FILE "dynshm.lock"

/*
 * The directory exists, is a directory owned by this user, and no other
 * user can write it.  0, or an error whose message says what to change.
 */
int dsm__datadir_check(const char *datadir);

/*
 * Take the lock exclusively without waiting, creating the lock file if
 * needed (and writing this pid into it if write_pid).  Returns the
 * descriptor that holds it (close it to release), -EBUSY if it is held
 * (*holder, if not NULL, gets the pid written there), or another error.
 */
int dsm__datadir_lock(const char *datadir, bool write_pid, long *holder);

/* Is the lock file there, and held?  *pid: what its last supervisor wrote. */
int dsm__datadir_probe(const char *datadir, bool *exists, bool *held, long *pid);

#endif /* DYNSHM_DATADIR_H */
