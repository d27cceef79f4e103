/* SPDX-License-Identifier: MIT */
/*
 * fuzz_area.c - libFuzzer target for the validation of an area's control
 * data read from shared memory: a same-user scribble must be reported as
 * corruption (or go unnoticed where it changes only numbers), never crash
 * and never make the allocator touch memory outside the area.
 *
 * Each input starts from the same realistic area: created in place in a
 * 256 KiB buffer of its own (so ASan sees any access past it), with
 * blocks of several classes allocated, some freed and cached, a large
 * block, a span partly carved.  The input is then a list of patches,
 * three bytes each: a 16-bit offset into the area's metadata pages (its
 * header, tables, page map -- the lock's 24 bytes excepted: a scribbled
 * holder pid could name a live process and make the locker wait for it,
 * see dynshm/lock.h) and the byte to store there; an input of 2 bytes or
 * less patches a block's free-list link instead.  Then every operation
 * runs on the scribbled area: allocations of every kind, frees of every
 * block handed out, statistics, the dump, trim, detach.
 *
 * No system call can create a segment here (dynshm is not started), so
 * growth fails cleanly; that is part of what is exercised.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "area/area_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define AREA_BYTES (256 * 1024)

static const size_t sizes[] = {16, 40, 100, 500, 3000, 20000, 50000};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    dsm_area_options o = {.max_segments = 4, .caches = 2};
    dsm_pointer p[32] = {0}, q[16] = {0};
    size_t meta, lock_off = offsetof(struct area_hdr, lock);
    dsm_area_stats st;
    unsigned char *buf = aligned_alloc(4096, AREA_BYTES);
    dsm_area *a;

    if (devnull == NULL)
        devnull = fopen("/dev/null", "w");
    if (buf == NULL)
        return 0;
    memset(buf, 0, AREA_BYTES);
    if (dsm_area_create_in_place(buf, AREA_BYTES, &o, NULL, &a) != 0) {
        free(buf);
        return 0;
    }
    for (int i = 0; i < 32; i++)
        dsm_area_allocate(a, sizes[i % 7], 0, &p[i]);
    for (int i = 0; i < 32; i += 3) {
        dsm_area_free(a, p[i]);
        p[i] = 0;
    }
    meta = (size_t)a->fp[0] * PAGE;
    if (size <= 2) {
        /* A free object's link: the first cached or span-free block. */
        for (int i = 0; i < 32; i += 3)
            if (DSM_POINTER_OFFSET(p[i + 1]) < AREA_BYTES)
                buf[DSM_POINTER_OFFSET(p[i + 1]) + (size ? data[0] % 8 : 0)] ^= 0xff;
    }
    for (size_t k = 0; k + 3 <= size; k += 3) {
        size_t at = (((size_t)data[k] << 8) | data[k + 1]) % meta;

        if (at >= lock_off && at < lock_off + sizeof(dsm_lock))
            continue;
        buf[at] = data[k + 2];
    }
    for (int i = 0; i < 16; i++)
        dsm_area_allocate(a, sizes[(i + size) % 7] + (size_t)i, i & 1 ? DSM_AREA_ALLOC_ZERO : 0,
                          &q[i]);
    for (int i = 0; i < 32; i++)
        if (p[i])
            dsm_area_free(a, p[i]);
    dsm_area_stats_get(a, &st);
    for (int i = 0; i < 16; i++)
        if (q[i]) {
            void *addr = dsm_area_get_address(a, q[i]);

            if (addr != NULL && ((unsigned char *)addr < buf ||
                                 (unsigned char *)addr >= buf + AREA_BYTES))
                __builtin_trap(); /* a block outside the only segment there is */
            dsm_area_free(a, q[i]);
        }
    dsm_area_dump(a, devnull);
    dsm_area_trim(a);
    dsm_area_detach(a);
    free(buf);
    return 0;
}
