/* SPDX-License-Identifier: MIT */
/*
 * dsm_impl_none.c - the "none" backend: dynamic shared memory switched off.
 *
 * Always built.  A server configured with dynamic_shared_memory_type = none
 * still starts; every attempt to use a segment fails with DSM_EDISABLED and
 * a message saying how to turn the facility on.
 */
#include "config.h"

#include <stdio.h>

#include "dsm_impl_int.h"

static int disabled(void)
{
    return dsm__impl_disabled();
}

static int none_create(dsm_impl_instance *inst, dsm_handle handle, size_t size,
                       dsm_impl_segment *seg)
{
    return disabled();
}

static int none_attach(dsm_impl_instance *inst, dsm_handle handle, dsm_impl_segment *seg)
{
    return disabled();
}

static int none_detach(dsm_impl_instance *inst, dsm_impl_segment *seg)
{
    return disabled();
}

static int none_destroy(dsm_impl_instance *inst, const dsm_impl_segment *seg)
{
    return disabled();
}

static int none_name(const dsm_impl_instance *inst, dsm_handle handle, char *buf, size_t len)
{
    if (snprintf(buf, len, "(none)") >= (int)len)
        return dsm__error(-ERANGE, "buffer too small for a segment name");
    return 0;
}

const struct dsm__impl_ops dsm__impl_none_ops = {
    .create = none_create,
    .attach = none_attach,
    .detach = none_detach,
    .destroy = none_destroy,
    .name = none_name,
};
