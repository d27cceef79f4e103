/* SPDX-License-Identifier: MIT */
/*
 * limits.h - the capacity limits of an instance, in one place.
 *
 * The settings module validates dsm_max_segments, dsm_max_processes and
 * dsm_max_mappings against these bounds; the control segment sizes its
 * tables by the same ones and refuses a header that exceeds them.  They keep
 * every size computation (entries times entry size, in 64 bits) far from
 * overflow while leaving room no real server needs.
 */
#ifndef DYNSHM_LIMITS_H
#define DYNSHM_LIMITS_H

#include <stdint.h>

#define DSM_LIMIT_SEGMENTS (UINT32_C(1) << 24)  /* slots in the control segment */
#define DSM_LIMIT_PROCESSES (UINT32_C(1) << 20) /* registered processes */
#define DSM_LIMIT_MAPPINGS (UINT32_C(1) << 26)  /* references, all processes together */

#endif /* DYNSHM_LIMITS_H */
