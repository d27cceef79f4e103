/* SPDX-License-Identifier: MIT */
/*
 * fuzz_control.c - libFuzzer target for control segment validation
 * (dsm__control_validate) and for what a cleanup does with a segment that
 * passed it: walk the slot and process tables and repair the derived state
 * (dsm__control_repair), on a private copy and without system calls.
 *
 * Input: one flag byte, then the bytes of a would-be control segment, of
 * exactly that size (copied to a 64-byte aligned buffer of exactly that
 * size, so ASan sees any read past the end).  Flags:
 *   bit 0  make the header pass validation: magic, version, a backend in
 *          range, capacities that fit the size, a terminated data
 *          directory, and the checksum -- so the
 *          walk and the repair see arbitrary tables, not just rejections
 *   bit 1  validate against the instance id and handle the header records
 *          (else against fixed ones, so the "foreign" checks are reached)
 * The FNV-1a header checksum is recomputed here as control.c computes it.
 *
 * Promises checked (a broken one traps):
 *   - validation accepts only a header that is ours and fits the buffer;
 *   - after a repair every free list holds exactly the free entries, each
 *     active process's list exactly its references, the counters match,
 *     a live slot's refcnt is its references plus its pin;
 *   - a second repair finds nothing to fix.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "control/control.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_control: check failed at line %d: %s (last message: %s)\n", \
                    __LINE__, #cond, dsm_errmsg());                                           \
            __builtin_trap();                                                                 \
        }                                                                                     \
    } while (0)

#define FIXED_INSTANCE UINT64_C(0x0123456789abcdef)
#define FIXED_HANDLE UINT64_C(0xfedcba9800000000)

/* Bit 0: turn the header into one that passes, keeping the input's tables. */
static void make_valid(struct dsm_control_header *h, size_t size)
{
    uint32_t ns = 1 + h->nslots % 64, np = 1 + h->nprocs % 16, nr = 1 + h->nrefs % 128;

    h->magic = DSM_CONTROL_MAGIC;
    h->version = DSM_CONTROL_VERSION;
    h->backend %= DSM_IMPL_NTYPES;
    /* Shrink the capacities until they fit the bytes we have. */
    while (dsm__control_size(ns, np, nr) > size && (ns > 1 || np > 1 || nr > 1)) {
        ns = ns > 1 ? ns / 2 : 1;
        np = np > 1 ? np / 2 : 1;
        nr = nr > 1 ? nr / 2 : 1;
    }
    h->nslots = ns;
    h->nprocs = np;
    h->nrefs = nr;
    h->total_size = dsm__control_size(ns, np, nr);
    h->datadir[sizeof(h->datadir) - 1] = '\0';
    h->checksum = dsm__control_checksum(h);
}

/* A bitmap of visited indexes, so a cycle in a list is caught, not looped on. */
static int visit(unsigned char *seen, uint32_t i)
{
    if (seen[i / 8] & (1u << (i % 8)))
        return 0;
    seen[i / 8] |= (unsigned char)(1u << (i % 8));
    return 1;
}

/* What a cleanup reads: destroy_all's slot walk, clean_previous's process walk. */
static void walk(const struct dsm_control *ctl)
{
    const struct dsm_control_header *h = ctl->hdr;

    for (uint32_t i = 0; i < h->nslots; i++) {
        const struct dsm_control_slot *s = &ctl->slots[i];
        dsm_impl_segment seg;

        if (s->state == DSM_SLOT_FREE || s->state > DSM_SLOT_DYING || (uint32_t)s->handle != i)
            continue;
        dsm__control_slot_segment(ctl, i, &seg);
        CHECK(seg.handle == s->handle);
        CHECK(s->state != DSM_SLOT_CREATING || (seg.size == 0 && seg.os_id == -1));
    }
    for (uint32_t i = 0; i < h->nprocs; i++) {
        const struct dsm_control_proc *p = &ctl->procs[i];
        volatile int32_t pid = p->id.pid;
        volatile uint64_t start = p->id.start_time;

        (void)pid, (void)start;
    }
}

/* Everything the repair promises to rebuild. */
static void check_repaired(const struct dsm_control *ctl)
{
    const struct dsm_control_header *h = ctl->hdr;
    uint32_t max = h->nslots > h->nprocs ? h->nslots : h->nprocs, n, count;
    unsigned char *seen;
    uint32_t *refs_of;

    if (h->nrefs > max)
        max = h->nrefs;
    seen = calloc(max / 8 + 1, 1);
    refs_of = calloc(h->nslots, sizeof(*refs_of));
    CHECK(seen != NULL && refs_of != NULL);

    /* Slots: the free list is exactly the FREE slots. */
    n = 0;
    for (uint32_t i = h->slot_free; i != DSM_CONTROL_NONE; i = ctl->slots[i].next_free) {
        CHECK(i < h->nslots);
        CHECK(visit(seen, i));
        CHECK(ctl->slots[i].state == DSM_SLOT_FREE);
        n++;
    }
    count = 0;
    for (uint32_t i = 0; i < h->nslots; i++)
        count += ctl->slots[i].state == DSM_SLOT_FREE;
    CHECK(n == count);
    CHECK(h->slots_used == h->nslots - count);

    /* Processes: the free list is exactly the FREE entries, the rest ACTIVE. */
    memset(seen, 0, max / 8 + 1);
    n = 0;
    for (uint32_t i = h->proc_free; i != DSM_CONTROL_NONE; i = ctl->procs[i].next_free) {
        CHECK(i < h->nprocs);
        CHECK(visit(seen, i));
        CHECK(ctl->procs[i].state == DSM_PROC_FREE);
        n++;
    }
    count = 0;
    for (uint32_t i = 0; i < h->nprocs; i++) {
        CHECK(ctl->procs[i].state == DSM_PROC_FREE || ctl->procs[i].state == DSM_PROC_ACTIVE);
        count += ctl->procs[i].state == DSM_PROC_FREE;
    }
    CHECK(n == count);
    CHECK(h->procs_used == h->nprocs - count);

    /* References: each is on exactly one list -- the free list or its process's. */
    memset(seen, 0, max / 8 + 1);
    n = 0;
    for (uint32_t i = h->ref_free; i != DSM_CONTROL_NONE; i = ctl->refs[i].next) {
        CHECK(i < h->nrefs);
        CHECK(visit(seen, i));
        CHECK(ctl->refs[i].slot == DSM_CONTROL_NONE);
        n++;
    }
    for (uint32_t p = 0; p < h->nprocs; p++) {
        const struct dsm_control_proc *pr = &ctl->procs[p];
        uint32_t prev = DSM_CONTROL_NONE, k = 0;

        if (pr->state != DSM_PROC_ACTIVE)
            continue;
        for (uint32_t i = pr->ref_head; i != DSM_CONTROL_NONE; prev = i, i = ctl->refs[i].next) {
            const struct dsm_control_ref *r;

            CHECK(i < h->nrefs);
            CHECK(visit(seen, i));
            r = &ctl->refs[i];
            CHECK(r->proc == p && r->prev == prev);
            CHECK(r->slot < h->nslots && ctl->slots[r->slot].state != DSM_SLOT_FREE);
            refs_of[r->slot]++;
            k++;
        }
        CHECK(k == pr->nrefs);
        n += k;
    }
    CHECK(n == h->nrefs); /* every reference was on one list */
    count = 0;
    for (uint32_t i = 0; i < h->nrefs; i++)
        count += ctl->refs[i].slot != DSM_CONTROL_NONE;
    CHECK(h->refs_used == count);

    /* Counts: a live slot's refcnt is its references plus its pin; others 0. */
    for (uint32_t i = 0; i < h->nslots; i++) {
        const struct dsm_control_slot *s = &ctl->slots[i];

        if (s->state == DSM_SLOT_LIVE)
            CHECK(s->refcnt == refs_of[i] + (s->pinned ? 1u : 0u));
        else
            CHECK(s->refcnt == 0);
        if (s->state == DSM_SLOT_FREE)
            CHECK(!s->pinned);
    }
    free(refs_of);
    free(seen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dsm_control ctl;
    uint64_t id = FIXED_INSTANCE, handle = FIXED_HANDLE;
    void *buf = NULL;
    uint8_t flags;
    int rc;

    if (size < 1)
        return 0;
    flags = data[0];
    data++;
    size--;
    /* Exactly `size` bytes (at least one, for posix_memalign), 64-byte aligned like a mapping. */
    CHECK(posix_memalign(&buf, 64, size ? size : 1) == 0);
    memcpy(buf, data, size);
    if ((flags & 1) && size >= sizeof(struct dsm_control_header))
        make_valid(buf, size);
    if ((flags & 2) && size >= sizeof(struct dsm_control_header)) {
        id = ((struct dsm_control_header *)buf)->instance_id;
        handle = ((struct dsm_control_header *)buf)->control_handle;
    }

    rc = dsm__control_validate(buf, size, id, handle);
    if (rc != 0) {
        CHECK(rc == DSM_ECORRUPT || rc == DSM_EFOREIGN);
        CHECK(strncmp(dsm_errmsg(), "control segment", 15) == 0);
        free(buf);
        return 0;
    }
    {
        const struct dsm_control_header *h = buf;

        CHECK(size >= sizeof(*h) && h->magic == DSM_CONTROL_MAGIC &&
              h->version == DSM_CONTROL_VERSION && h->instance_id == id &&
              h->control_handle == handle && h->total_size <= size &&
              h->total_size == dsm__control_size(h->nslots, h->nprocs, h->nrefs));
    }
    memset(&ctl, 0, sizeof(ctl));
    dsm__control_bind(&ctl, buf, size);
    walk(&ctl);
    dsm__control_repair(&ctl);
    check_repaired(&ctl);
    walk(&ctl);
    CHECK(dsm__control_repair(&ctl) == 0); /* nothing left to fix */
    check_repaired(&ctl);
    free(buf);
    return 0;
}
