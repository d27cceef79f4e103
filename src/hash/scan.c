/* SPDX-License-Identifier: MIT */
/*
 * scan.c - sequential scans, statistics and the validator of a shared
 * hash table.
 *
 * A scan holds one partition's lock at a time, as PostgreSQL's dshash
 * does, so what it returns from a partition is a consistent picture of
 * that partition; entries never move between partitions, so an entry
 * present throughout is returned once.  Inside a partition it walks the
 * slots starting just after an empty one: backward-shift deletion moves an
 * entry only towards the slot just freed and never across an empty slot,
 * so deleting the current entry can only pull not-yet-seen entries into
 * the current position, which the scan then examines again.  Shrinking is
 * put off until the scan leaves the partition.
 *
 * The validator is what the kill tests run after every cycle: it locks
 * each partition in turn and checks every invariant an operation relies
 * on, reporting the first violation as DSM_ECORRUPT.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "hash_int.h"

enum { S_PART, S_LOCKED, S_START, S_N, S_FLAGS, S_CUR };
#define CUR_NONE 0
#define CUR_LIVE 1
#define CUR_DELETED 2

int dsm_hash_scan_begin(dsm_hash *table, int flags, dsm_hash_scan *scan)
{
    if (table == NULL || scan == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_scan_begin");
    memset(scan, 0, sizeof(*scan));
    scan->table = table;
    scan->opaque[S_FLAGS] = (uint64_t)flags;
    return 0;
}

static int leave_part(dsm_hash_scan *scan)
{
    dsm_hash *t = scan->table;
    struct part *p = &t->parts[scan->opaque[S_PART]];
    int rc = dsm__hash_maybe_shrink(t, p);

    dsm__hash_unlock(p);
    scan->opaque[S_LOCKED] = 0;
    scan->opaque[S_CUR] = CUR_NONE;
    scan->opaque[S_PART]++;
    return rc;
}

int dsm_hash_scan_next(dsm_hash_scan *scan, void **entry)
{
    dsm_hash *t;
    struct arr a;
    int rc;

    if (scan == NULL || scan->table == NULL || entry == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_scan_next");
    t = scan->table;
    for (;;) {
        struct part *p;

        if (scan->opaque[S_PART] >= t->nparts)
            return 0;
        p = &t->parts[scan->opaque[S_PART]];
        if (!scan->opaque[S_LOCKED]) {
            uint64_t e;

            rc = dsm__hash_lock(t, p, (scan->opaque[S_FLAGS] & DSM_HASH_EXCLUSIVE) != 0);
            if (rc < 0)
                return rc;
            scan->opaque[S_LOCKED] = 1;
            if ((rc = dsm__hash_array(t, p, &a)) < 0) {
                leave_part(scan);
                return rc;
            }
            if (a.base == NULL) {
                leave_part(scan);
                continue;
            }
            for (e = 0; e <= a.mask && slot_hash(slot_at(t, &a, e)) != 0; e++)
                ;
            if (e > a.mask) {
                leave_part(scan);
                return dsm__error(DSM_ECORRUPT, "hash table partition has no free slot");
            }
            scan->opaque[S_START] = e;
            scan->opaque[S_N] = 0;
            scan->opaque[S_CUR] = CUR_NONE;
        } else if ((rc = dsm__hash_array(t, p, &a)) < 0) {
            leave_part(scan);
            return rc;
        } else if (a.base == NULL) { /* emptied by our own deletes */
            if ((rc = leave_part(scan)) < 0)
                return rc;
            continue;
        }
        if (scan->opaque[S_CUR] == CUR_LIVE)
            scan->opaque[S_N]++;
        /* CUR_DELETED: the same position again, it may hold a moved entry. */
        while (scan->opaque[S_N] < a.mask) {
            uint64_t i = (scan->opaque[S_START] + 1 + scan->opaque[S_N]) & a.mask;
            char *s = slot_at(t, &a, i);

            if (slot_hash(s) != 0) {
                scan->opaque[S_CUR] = CUR_LIVE;
                *entry = s + 8;
                return 1;
            }
            scan->opaque[S_N]++;
        }
        if ((rc = leave_part(scan)) < 0)
            return rc;
    }
}

int dsm_hash_scan_delete_current(dsm_hash_scan *scan)
{
    dsm_hash *t;
    struct part *p;
    struct arr a;
    int rc;

    if (scan == NULL || scan->table == NULL || !scan->opaque[S_LOCKED] ||
        scan->opaque[S_CUR] != CUR_LIVE)
        return dsm__error(-EINVAL, "hash table scan has no current entry");
    t = scan->table;
    p = &t->parts[scan->opaque[S_PART]];
    if ((rc = dsm__hash_array(t, p, &a)) < 0)
        return rc;
    if (a.base == NULL)
        return dsm__error(DSM_ECORRUPT, "hash table partition lost its array");
    if ((p->seq & 1) == 0) {
        __atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
    }
    dsm__hash_remove_at(t, p, &a, (scan->opaque[S_START] + 1 + scan->opaque[S_N]) & a.mask);
    scan->opaque[S_CUR] = CUR_DELETED;
    return 0;
}

int dsm_hash_scan_end(dsm_hash_scan *scan)
{
    int rc = 0;

    if (scan == NULL || scan->table == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_scan_end");
    if (scan->opaque[S_LOCKED])
        rc = leave_part(scan);
    scan->table = NULL;
    return rc;
}

/* ---- statistics ------------------------------------------------------------------ */

int dsm_hash_stats_get(dsm_hash *table, dsm_hash_stats *out)
{
    if (table == NULL || out == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_stats_get");
    memset(out, 0, sizeof(*out));
    out->partitions = table->nparts;
    out->bytes = table->hdr->parts_off + (size_t)table->nparts * sizeof(struct part);
    out->inconsistent = __atomic_load_n(&table->hdr->inconsistent, __ATOMIC_RELAXED) != 0;
    for (unsigned i = 0; i < table->nparts; i++) {
        const struct part *p = &table->parts[i];
        uint64_t w = __atomic_load_n(&p->slots, __ATOMIC_RELAXED);
        uint64_t sp = __atomic_load_n(&p->spare[0], __ATOMIC_RELAXED);
        uint64_t c = __atomic_load_n(&p->count, __ATOMIC_RELAXED);

        out->entries += c;
        if (c > out->largest_partition)
            out->largest_partition = c;
        if (w && SLOTS_LOG2(w) <= MAX_LOG2) {
            out->slots += UINT64_C(1) << SLOTS_LOG2(w);
            out->bytes += (size_t)(UINT64_C(1) << SLOTS_LOG2(w)) * table->slot_size;
        }
        if (sp && SLOTS_LOG2(sp) <= MAX_LOG2)
            out->bytes += (size_t)(UINT64_C(1) << SLOTS_LOG2(sp)) * table->slot_size;
    }
    return 0;
}

/* ---- the validator ------------------------------------------------------------- */

static int bad(unsigned part, const char *what, uint64_t slot)
{
    return dsm__error(DSM_ECORRUPT, "hash table partition %u is corrupt: %s (slot %llu)", part,
                      what, (unsigned long long)slot);
}

static int check_part(dsm_hash *t, unsigned pi, struct part *p)
{
    struct arr a;
    uint64_t n = 0;
    int rc = dsm__hash_array(t, p, &a);

    if (rc < 0)
        return rc;
    if (a.base == NULL)
        return p->count == 0 ? 0 : bad(pi, "entries counted but no array", 0);
    for (uint64_t i = 0; i <= a.mask; i++) {
        const char *s = slot_at(t, &a, i);
        uint64_t h = slot_hash(s), j;

        if (h == 0)
            continue;
        n++;
        if ((t->nparts > 1 ? h >> t->part_shift : 0) != pi)
            return bad(pi, "an entry lies in another key's partition", i);
        if (h != dsm__hash_key_hash(t, s + 8))
            return bad(pi, "an entry's stored hash is not its key's", i);
        if (t->key_kind == DSM_HASH_KEY_STRING && strnlen(s + 8, t->key_size) >= t->key_size)
            return bad(pi, "a string key is not terminated", i);
        /* Reachable: no empty slot between home and here; found first: no twin before. */
        for (j = h & a.mask; j != i; j = (j + 1) & a.mask) {
            const char *o = slot_at(t, &a, j);

            if (slot_hash(o) == 0)
                return bad(pi, "an entry is unreachable from its home slot", i);
            if (slot_hash(o) == h && dsm__hash_key_eq(t, o + 8, s + 8))
                return bad(pi, "a key appears twice", i);
        }
    }
    if (n != p->count)
        return bad(pi, "the count is not the number of entries", n);
    if (n > a.mask)
        return bad(pi, "no free slot", n);
    return 0;
}

int dsm_hash_validate(dsm_hash *table)
{
    const struct hash_hdr *h;

    if (table == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_validate");
    h = table->hdr;
    if (h->magic != HASH_MAGIC || h->check != dsm__hash_header_check(h) ||
        h->nparts != table->nparts || h->slot_size != table->slot_size)
        return dsm__error(DSM_ECORRUPT, "hash table header is corrupt");
    for (unsigned i = 0; i < table->nparts; i++) {
        struct part *p = &table->parts[i];
        int rc = dsm__hash_lock(table, p, false);

        if (rc < 0)
            return rc;
        rc = check_part(table, i, p);
        dsm__hash_unlock(p);
        if (rc < 0)
            return rc;
    }
    return 0;
}
