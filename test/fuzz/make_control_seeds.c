/* SPDX-License-Identifier: MIT */
/*
 * make_control_seeds.c - writes the seed corpus of fuzz_control
 * (test/fuzz/corpus/control/) from the table operations themselves, so the
 * seeds follow the layout: rerun it whenever DSM_CONTROL_VERSION changes.
 *
 *   _build/fuzz/test/fuzz/make_control_seeds test/fuzz/corpus/control
 *
 * Each seed is fuzz_control's input: one flag byte, then a control segment.
 * A small table (8 slots, 4 processes, 16 references) with a supervisor, a
 * worker, a shared segment, a pinned one and one still being created; then
 * copies broken the ways a crash or a scribble breaks them.
 */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include "common/internal.h"
#include "common/procid.h"
#include "control/control.h"

static const char *outdir;

static void out(const char *name, uint8_t flag, const void *buf, size_t n)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", outdir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(&flag, 1, 1, f) != 1 || fwrite(buf, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    uint32_t ns = 8, np = 4, nr = 16;
    size_t size = dsm__control_size(ns, np, nr);
    void *buf;
    struct dsm_control ctl;
    struct dsm_control_header *h;
    struct dsm__procid sup = {1234, 0, 5555}, w = {1240, 0, 5600};
    uint32_t psup, pw, slot, ref, slot2, ref2, s3, r3, aslot, aref;
    dsm_handle hd, hd2, hd3;
    dsm_impl_segment seg;
    pthread_mutexattr_t a;

    if (argc != 2) {
        fprintf(stderr, "usage: make_control_seeds DIR\n");
        return 2;
    }
    outdir = argv[1];
    if (posix_memalign(&buf, 64, size) != 0)
        return 1;
    memset(buf, 0, size);
    h = buf;
    h->version = DSM_CONTROL_VERSION;
    h->backend = 0;
    h->instance_id = UINT64_C(0x0123456789abcdef);
    h->control_handle = UINT64_C(0xfedcba9800000000);
    h->total_size = size;
    h->created_usec = 1700000000000000ull;
    h->nslots = ns; h->nprocs = np; h->nrefs = nr;
    h->supervisor_pid = 1234;
    dsm__control_bind(&ctl, buf, size);
    for (uint32_t i = 0; i < ns; i++) ctl.slots[i].os_id = -1;
    for (uint32_t i = 0; i < nr; i++) ctl.refs[i].slot = DSM_CONTROL_NONE;
    pthread_mutexattr_init(&a);
    pthread_mutex_init(&h->lock, &a);
    dsm__control_repair(&ctl);
    h->repairs = 0;
    h->magic = DSM_CONTROL_MAGIC;
    h->checksum = dsm__control_checksum(h);
    if (dsm__control_proc_register(&ctl, &sup, DSM_PROC_SUPERVISOR, &psup)) return 1;
    if (dsm__control_proc_register(&ctl, &w, DSM_PROC_FORKED, &pw)) return 2;
    if (dsm__control_slot_reserve(&ctl, psup, &hd, &slot, &ref)) return 3;
    if (dsm__control_slot_publish(&ctl, slot, ref, 1 << 20, -1)) return 4;
    if (dsm__control_ref_acquire(&ctl, pw, hd, &aslot, &aref, &seg)) return 5;
    if (dsm__control_slot_reserve(&ctl, pw, &hd2, &slot2, &ref2)) return 6;
    if (dsm__control_slot_publish(&ctl, slot2, ref2, 4096, -1)) return 7;
    if (dsm__control_pin(&ctl, slot2, hd2) < 0) return 8;
    if (dsm__control_slot_reserve(&ctl, pw, &hd3, &s3, &r3)) return 9;
    out("valid-table", 0x02, buf, size);
    out("valid-table-made-valid", 0x03, buf, size);
    out("valid-table-other-instance", 0x00, buf, size);
    {   /* the worker died mid-operation: its entry half written, counts off */
        void *b2 = malloc(size);

        if (b2 == NULL)
            return 1;
        memcpy(b2, buf, size);
        struct dsm_control c2;
        dsm__control_bind(&c2, b2, size);
        c2.hdr->slots_used = 7;
        c2.slots[slot].refcnt = 9;
        c2.procs[pw].nrefs = 0;
        c2.refs[aref].prev = 3;
        c2.slots[5].refcnt = 4; /* a free slot with garbage */
        c2.slots[5].pinned = 1;
        out("inconsistent-after-crash", 0x02, b2, size);
        c2.hdr->version = DSM_CONTROL_VERSION + 1;
        out("version-next", 0x02, b2, size);
        c2.hdr->version = 1;
        out("version-1", 0x02, b2, size);
        c2.hdr->version = DSM_CONTROL_VERSION;
        c2.hdr->magic ^= 1;
        out("bad-magic", 0x02, b2, size);
        c2.hdr->magic ^= 1;
        c2.hdr->nslots = 9;
        out("capacity-mismatch", 0x02, b2, size);
        out("truncated-header", 0x02, b2, 40);
        out("truncated-table", 0x02, buf, size - 100);
        free(b2);
    }
    free(buf);
    return 0;
}
