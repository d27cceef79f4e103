/* SPDX-License-Identifier: MIT */
/*
 * dynshm/dynshm.h - umbrella header: include this to get every public API.
 */
#ifndef DYNSHM_DYNSHM_H
#define DYNSHM_DYNSHM_H

#include <dynshm/version.h>
#include <dynshm/common.h>
#include <dynshm/dsm_impl.h>
#include <dynshm/settings.h>
#include <dynshm/dsm.h>
#include <dynshm/inspect.h>
#include <dynshm/area.h>
#include <dynshm/lock.h>
#include <dynshm/toc.h>
#include <dynshm/mq.h>
#include <dynshm/hash.h>
#include <dynshm/registry.h>

#endif /* DYNSHM_DYNSHM_H */
