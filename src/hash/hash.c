/* SPDX-License-Identifier: MIT */
/*
 * hash.c - a concurrent hash table in a dynamic shared area: life cycle,
 * partition locks, find, insert, delete and the lock-free lookup.
 *
 * PostgreSQL's dshash keeps one bucket array for the whole table, chains
 * entries as separate allocations, and grows by locking every partition and
 * rehashing everything at once -- the insert that triggers the growth pays
 * for all of it, every other backend waits, and the array never shrinks.
 * We give each partition an array of its own instead.  A partition is an
 * open-addressing table with linear probing and backward-shift deletion
 * (no tombstones, so a table that churns does not decay), entries stored
 * inline (one allocation per partition, not one per entry).  It doubles
 * when three quarters full and halves when under an eighth, under its own
 * lock: a resize moves about n / P entries and stops only that partition's
 * writers.  A partition that empties frees its array.
 *
 * Readers that want a copy take no lock: the partition's version counter
 * is odd while a writer works in it (a seqlock), so a reader loads the
 * counter, probes, copies, and loads the counter again; equal and even
 * means the copy is good.  Every value it read racing with a writer is
 * bounded before use (capacity, array pointer, probe length), so a torn
 * read can only cost a retry.  After a few failed attempts it takes the
 * lock, which also notices a writer that died with the counter odd.
 * Caveat: an array a resize frees may be reused or, if the area trims its
 * segment, unmapped while a stalled reader still reads it; reads of reused
 * memory fail the version check, but reads of an unmapped segment would
 * fault.  We keep the previous array of each partition for 64 more
 * inserts or deletes in it (or until its next resize), which makes that
 * window far longer than any reader's pass over a partition.
 *
 * Where the time goes: in a large table every operation is one cache miss
 * on the key's home slot, and the rest is overhead around it.  Lookups of
 * 8-byte keys with the built-in functions take a short path without calls
 * (a processor overlaps the misses of successive lookups only as far as
 * its reorder window reaches, so instructions on that path cost
 * parallelism); anything unusual falls back to the general loop.  Updates
 * prefetch the home slot before taking the lock: the lock's atomic
 * instructions hold back every later load, so the miss would otherwise
 * start only once the lock is ours.  Neither changes what is validated.
 *
 * A dead holder: the partition lock is a dsm_lock taken inside a dsm__
 * critical section, so a death while holding it escalates the crash action
 * to a reset (unless the crash hook decides otherwise); the next locker
 * gets -EOWNERDEAD, marks the whole table inconsistent and every later
 * operation fails with -ENOTRECOVERABLE -- the area's rule.  We cannot
 * repair a partition in place: a half-done backward shift or resize loses
 * or duplicates entries with nothing recorded to tell which.  The section
 * opens before the wait for the lock, so a death while only waiting
 * escalates too (conservative; the area's internal helper opens it at the
 * compare-and-swap).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <string.h>

#include "../dsm/services.h"
#include "hash_int.h"

void (*dsm__hash_step_hook)(void);

/* ---- the built-in functions ------------------------------------------------ */

#define mix dsm__mix64

uint64_t dsm_hash_bytes(const void *key, size_t key_size, void *arg)
{
    const unsigned char *p = key;
    uint64_t h = UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)key_size;
    uint64_t w;

    (void)arg;
    if (key_size == 8) { /* one mix: the fast path of 8-byte keys computes the same */
        memcpy(&w, p, 8);
        return dsm__mix64(w ^ HASH_SEED);
    }
    while (key_size >= 8) {
        memcpy(&w, p, 8);
        h = mix(h ^ w) + UINT64_C(0x9e3779b97f4a7c15);
        p += 8;
        key_size -= 8;
    }
    if (key_size > 0) {
        w = 0;
        memcpy(&w, p, key_size);
        h = mix(h ^ w ^ ((uint64_t)key_size << 56));
    }
    return mix(h);
}

uint64_t dsm_hash_string(const void *key, size_t key_size, void *arg)
{
    return dsm_hash_bytes(key, strnlen(key, key_size), arg);
}

static int compare_bytes(const void *a, const void *b, size_t key_size, void *arg)
{
    (void)arg;
    return memcmp(a, b, key_size);
}

static int compare_string(const void *a, const void *b, size_t key_size, void *arg)
{
    (void)arg;
    return strncmp(a, b, key_size);
}

/* ---- the header ---------------------------------------------------------------- */

uint64_t dsm__hash_header_check(const struct hash_hdr *h)
{
    uint64_t c = h->magic;

    c = dsm__mix64(c ^ h->version ^ ((uint64_t)h->key_kind << 32));
    c = dsm__mix64(c ^ h->key_size ^ ((uint64_t)h->entry_size << 32));
    c = dsm__mix64(c ^ h->slot_size ^ ((uint64_t)h->nparts << 32));
    c = dsm__mix64(c ^ h->part_shift ^ ((uint64_t)h->funcs_id << 32));
    c = dsm__mix64(c ^ h->parts_off);
    return dsm__mix64(c ^ h->self);
}

static int check_params(const dsm_hash_params *p, bool creating)
{
    if (p == NULL)
        return dsm__error(-EINVAL, "hash table parameters are missing");
    if (p->key_kind != DSM_HASH_KEY_BINARY && p->key_kind != DSM_HASH_KEY_STRING)
        return dsm__error(-EINVAL, "invalid hash table key kind %d", p->key_kind);
    if (p->key_size == 0 || p->key_size > DSM_HASH_MAX_KEY_SIZE ||
        (p->key_kind == DSM_HASH_KEY_STRING && p->key_size < 2))
        return dsm__error(-EINVAL, "invalid hash table key size %zu", p->key_size);
    if (p->entry_size < p->key_size || p->entry_size > DSM_HASH_MAX_ENTRY_SIZE)
        return dsm__error(-EINVAL, "invalid hash table entry size %zu (key size %zu)",
                          p->entry_size, p->key_size);
    if (creating && p->partitions != 0 &&
        (p->partitions > DSM_HASH_MAX_PARTITIONS || (p->partitions & (p->partitions - 1))))
        return dsm__error(-EINVAL, "hash table partitions must be a power of two up to %d",
                          DSM_HASH_MAX_PARTITIONS);
    if ((p->hash == NULL) != (p->compare == NULL))
        return dsm__error(-EINVAL, "give both hash table functions or neither");
    return 0;
}

static void set_view(dsm_hash *t, dsm_area *area, const dsm_hash_params *p)
{
    t->area = area;
    t->key_size = p->key_size;
    t->entry_size = p->entry_size;
    t->key_kind = p->key_kind;
    t->arg = p->arg;
    t->hash = p->hash ? p->hash
                      : (p->key_kind == DSM_HASH_KEY_STRING ? dsm_hash_string : dsm_hash_bytes);
    t->compare = p->compare ? p->compare
                            : (p->key_kind == DSM_HASH_KEY_STRING ? compare_string : compare_bytes);
    t->fast8 = p->hash == NULL && p->key_kind == DSM_HASH_KEY_BINARY && p->key_size == 8;
    t->fast_lookup = t->fast8 && p->entry_size % 8 == 0;
#if defined(__x86_64__) || defined(__i386__)
    {
        unsigned a, b, c, d;

        /* CPUID 0x80000001, ECX bit 8: PREFETCHW. */
        t->prefetchw = __get_cpuid(0x80000001u, &a, &b, &c, &d) && (c & (1u << 8)) != 0;
    }
#endif
}

int dsm_hash_create(dsm_area *area, const dsm_hash_params *params, dsm_hash **out)
{
    unsigned nparts, shift = 64;
    struct hash_hdr *h;
    dsm_pointer hp;
    dsm_hash *t;
    size_t off;
    char *base;
    int rc;

    if (area == NULL || out == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_create");
    if ((rc = check_params(params, true)) < 0)
        return rc;
    nparts = params->partitions ? params->partitions : DSM_HASH_DEFAULT_PARTITIONS;
    for (unsigned n = nparts; n > 1; n >>= 1)
        shift--;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    rc = dsm_area_allocate(area, 128 + (size_t)nparts * sizeof(struct part), DSM_AREA_ALLOC_ZERO,
                           &hp);
    if (rc < 0) {
        free(t);
        return rc;
    }
    base = dsm_area_address(area, hp);
    if (base == NULL) {
        rc = dsm__error(DSM_ECORRUPT, "could not address a new hash table's header");
        dsm_area_free(area, hp);
        free(t);
        return rc;
    }
    h = (struct hash_hdr *)(void *)base;
    /* Partitions start on a cache line (mappings are page aligned, so the
     * offset is the same in every process). */
    off = (64 - ((uintptr_t)(base + sizeof(*h)) & 63)) & 63;
    off += sizeof(*h);
    h->version = HASH_VERSION;
    h->key_kind = (uint32_t)params->key_kind;
    h->key_size = (uint32_t)params->key_size;
    h->entry_size = (uint32_t)params->entry_size;
    h->slot_size = (uint32_t)(8 + ((params->entry_size + 7) & ~(size_t)7));
    h->nparts = nparts;
    h->part_shift = shift;
    h->funcs_id = params->funcs_id;
    h->parts_off = (uint32_t)off;
    h->self = hp;
    t->parts = (struct part *)(void *)(base + off);
    for (unsigned i = 0; i < nparts; i++)
        dsm_lock_init(&t->parts[i].lock);
    h->magic = HASH_MAGIC;
    h->check = dsm__hash_header_check(h);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    set_view(t, area, params);
    t->hdr = h;
    t->handle = hp;
    t->slot_size = h->slot_size;
    t->nparts = nparts;
    t->part_shift = shift;
    *out = t;
    return 0;
}

int dsm_hash_attach(dsm_area *area, dsm_hash_handle handle, const dsm_hash_params *params,
                    dsm_hash **out)
{
    struct hash_hdr *h;
    dsm_hash *t;
    char *base, *end;
    size_t len;
    int rc;

    if (area == NULL || out == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_attach");
    if ((rc = check_params(params, false)) < 0)
        return rc;
    base = dsm_area_address(area, handle);
    if (base == NULL)
        return dsm__error(DSM_ECORRUPT, "hash table handle does not name memory of the area");
    end = dsm_area_address(area, handle + sizeof(*h) - 1);
    if (end != base + sizeof(*h) - 1)
        return dsm__error(DSM_ECORRUPT, "hash table handle does not name a table");
    h = (struct hash_hdr *)(void *)base;
    if (h->magic == HASH_DEAD)
        return dsm__error(-ENOENT, "hash table was destroyed");
    if (h->magic != HASH_MAGIC || h->version != HASH_VERSION || h->self != handle ||
        h->check != dsm__hash_header_check(h))
        return dsm__error(DSM_ECORRUPT, "hash table header is corrupt");
    if (h->nparts == 0 || h->nparts > DSM_HASH_MAX_PARTITIONS || (h->nparts & (h->nparts - 1)) ||
        (UINT64_C(1) << (64 - h->part_shift)) != h->nparts || h->parts_off < sizeof(*h) ||
        h->parts_off >= sizeof(*h) + 64 || h->key_size == 0 ||
        h->key_size > DSM_HASH_MAX_KEY_SIZE || h->entry_size < h->key_size ||
        h->entry_size > DSM_HASH_MAX_ENTRY_SIZE ||
        h->slot_size != 8 + ((h->entry_size + 7) & ~UINT32_C(7)))
        return dsm__error(DSM_ECORRUPT, "hash table header has bad bounds");
    len = h->parts_off + (size_t)h->nparts * sizeof(struct part);
    if (dsm_area_address(area, handle + len - 1) != base + len - 1)
        return dsm__error(DSM_ECORRUPT, "hash table partitions lie outside their block");
    if (h->key_kind != (uint32_t)params->key_kind || h->key_size != params->key_size ||
        h->entry_size != params->entry_size || h->funcs_id != params->funcs_id ||
        (params->partitions != 0 && params->partitions != h->nparts))
        return dsm__error(-EINVAL, "hash table parameters differ from the table's");
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    set_view(t, area, params);
    t->hdr = h;
    t->parts = (struct part *)(void *)(base + h->parts_off);
    t->handle = handle;
    t->slot_size = h->slot_size;
    t->nparts = h->nparts;
    t->part_shift = h->part_shift;
    *out = t;
    return 0;
}

dsm_hash_handle dsm_hash_get_handle(const dsm_hash *table)
{
    return table ? table->handle : DSM_POINTER_INVALID;
}

int dsm_hash_detach(dsm_hash *table)
{
    if (table == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_detach");
    free(table);
    return 0;
}

int dsm_hash_destroy(dsm_hash *table)
{
    int rc = 0, r;

    if (table == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_destroy");
    for (unsigned i = 0; i < table->nparts; i++) {
        struct part *p = &table->parts[i];
        uint64_t w = p->slots, old = p->spare[0];

        p->slots = 0;
        p->spare[0] = 0;
        p->count = 0;
        if (SLOTS_PTR(w) && (r = dsm_area_free(table->area, SLOTS_PTR(w))) < 0 && rc == 0)
            rc = r;
        if (SLOTS_PTR(old) && (r = dsm_area_free(table->area, SLOTS_PTR(old))) < 0 && rc == 0)
            rc = r;
    }
    table->hdr->magic = HASH_DEAD;
    if ((r = dsm_area_free(table->area, table->handle)) < 0 && rc == 0)
        rc = r;
    free(table);
    return rc;
}

/* ---- partition locks ------------------------------------------------------------ */

static int inconsistent(void)
{
    return dsm__error(-ENOTRECOVERABLE,
                      "shared hash table is inconsistent: a process died while updating it");
}

/* dsm_lock_acquire() failed with rc: a dead holder, a corrupt lock or another error. */
static __attribute__((noinline)) int lock_failed(dsm_hash *t, struct part *p, int rc)
{
    if (rc == -EOWNERDEAD || rc == -ENOTRECOVERABLE) {
        __atomic_store_n(&t->hdr->inconsistent, 1, __ATOMIC_RELEASE);
        if (rc == -EOWNERDEAD) {
            dsm_lock_release(&p->lock); /* not repaired: later lockers get -ENOTRECOVERABLE */
            dsm__log(DSM_LOG_WARNING, "a process died holding a lock of a shared hash table; "
                                      "the table is now inconsistent");
        }
        dsm__critical_leave();
        return inconsistent();
    }
    dsm__critical_leave();
    if (rc == DSM_ECORRUPT)
        return dsm__error(DSM_ECORRUPT, "hash table partition %u has a corrupt lock",
                          (unsigned)(p - t->parts));
    return rc;
}

/* Lock p; in write mode the version goes odd until dsm__hash_unlock(). */
static inline __attribute__((always_inline)) int lock_part(dsm_hash *t, struct part *p,
                                                           bool write)
{
    int rc;

    if (__builtin_expect(__atomic_load_n(&t->hdr->inconsistent, __ATOMIC_ACQUIRE) != 0, 0))
        return inconsistent();
    dsm__critical_enter();
    rc = dsm_lock_acquire(&p->lock, -1);
    if (__builtin_expect(rc != 0, 0))
        return lock_failed(t, p, rc);
    if (__builtin_expect((__atomic_load_n(&p->seq, __ATOMIC_RELAXED) & 1) != 0, 0)) {
        /* Odd with the lock free: only a scribble does this. */
        dsm_lock_release(&p->lock);
        dsm__critical_leave();
        return dsm__error(DSM_ECORRUPT, "hash table partition %u has a bad version",
                          (unsigned)(p - t->parts));
    }
    if (write) {
        __atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
    }
    HASH_STEP();
    return 0;
}

int dsm__hash_lock(dsm_hash *t, struct part *p, bool write)
{
    return lock_part(t, p, write);
}

void dsm__hash_unlock(struct part *p)
{
    uint32_t s = p->seq;

    if (s & 1)
        __atomic_store_n(&p->seq, s + 1, __ATOMIC_RELEASE);
    dsm_lock_release(&p->lock);
    dsm__critical_leave();
}

/* dsm__hash_array() found the array word bad: say why. */
int dsm__hash_array_bad(dsm_hash *t, const struct part *p, uint64_t w)
{
    unsigned l2 = SLOTS_LOG2(w);

    if (l2 < MIN_LOG2 || l2 > MAX_LOG2 || SLOTS_PTR(w) == 0)
        return dsm__error(DSM_ECORRUPT, "hash table partition %u has a bad array",
                          (unsigned)(p - t->parts));
    return dsm__error(DSM_ECORRUPT, "hash table partition %u has an array outside the area",
                      (unsigned)(p - t->parts));
}

static inline struct part *part_of(dsm_hash *t, uint64_t h)
{
    return &t->parts[t->nparts > 1 ? h >> t->part_shift : 0];
}

static int check_key(dsm_hash *t, const void *key)
{
    if (key == NULL)
        return dsm__error(-EINVAL, "hash table key is NULL");
    if (t->key_kind == DSM_HASH_KEY_STRING && strnlen(key, t->key_size) >= t->key_size)
        return dsm__error(-ENAMETOOLONG, "hash table key is longer than %zu bytes",
                          t->key_size - 1);
    return 0;
}

/* Under the lock: the slot holding key, or the empty slot ending its probe. */
static inline __attribute__((always_inline)) int probe(dsm_hash *t, const struct arr *a, uint64_t h,
                                                       const void *key, uint64_t *pos)
{
    uint64_t i = h & a->mask;

    for (uint64_t n = 0; n <= a->mask; n++, i = (i + 1) & a->mask) {
        const char *s = slot_at(t, a, i);
        uint64_t sh = slot_hash(s);

        if (sh == 0) {
            *pos = i;
            return 0;
        }
        if (sh == h && dsm__hash_key_eq(t, s + 8, key)) {
            *pos = i;
            return 1;
        }
    }
    return dsm__error(DSM_ECORRUPT, "hash table partition has no free slot");
}

/*
 * Move a slot (resize, backward shift): the common sizes with a constant
 * length, which the compiler turns into a few loads and stores instead of
 * a call per slot.
 */
static inline void copy_slot(const dsm_hash *t, char *dst, const char *src)
{
    switch (t->slot_size) {
    case 16:
        memcpy(dst, src, 16);
        break;
    case 24:
        memcpy(dst, src, 24);
        break;
    case 32:
        memcpy(dst, src, 32);
        break;
    default:
        memcpy(dst, src, t->slot_size);
    }
}

/* ---- resizing ---------------------------------------------------------------- */

/* Move p's entries to a new array of 2^log2 slots (log2 0: no array). */
static int resize(dsm_hash *t, struct part *p, const struct arr *old, unsigned log2)
{
    dsm_pointer np = DSM_POINTER_INVALID;
    uint64_t op = p->slots; /* kept whole: the retired array's size is its log2 */
    struct arr na = {NULL, 0, log2};
    int rc;

    if (log2) {
        size_t len = ((size_t)1 << log2) * t->slot_size;

        /* HUGE only when needed: the area sends every HUGE request down its
         * slow path (tens of microseconds for a small block). */
        rc = dsm_area_allocate(t->area, len,
                               DSM_AREA_ALLOC_ZERO |
                                   (len > DSM_AREA_MAX_ALLOC ? DSM_AREA_ALLOC_HUGE : 0),
                               &np);
        if (rc < 0)
            return rc;
        na.base = dsm_area_address(t->area, np);
        if (na.base == NULL) {
            dsm_area_free(t->area, np);
            return dsm__error(DSM_ECORRUPT, "could not address a new hash table array");
        }
        na.mask = ((uint64_t)1 << log2) - 1;
        for (uint64_t i = 0, moved = 0; old->base && i <= old->mask; i++) {
            const char *s = slot_at(t, old, i);
            uint64_t h = slot_hash(s), j;

            if (h == 0)
                continue;
            if (++moved > na.mask) { /* more entries than the count said: a scribble */
                dsm_area_free(t->area, np);
                return dsm__error(DSM_ECORRUPT, "hash table partition %u has a bad count",
                                  (unsigned)(p - t->parts));
            }
            for (j = h & na.mask; slot_hash(slot_at(t, &na, j)) != 0; j = (j + 1) & na.mask)
                ;
            copy_slot(t, slot_at(t, &na, j), s);
            HASH_STEP();
        }
    }
    HASH_STEP();
    __atomic_store_n(&p->slots, log2 ? SLOTS_WORD(np, log2) : 0, __ATOMIC_RELEASE);
    HASH_STEP();
    /* Keep the old array one more resize for stalled optimistic readers. */
    if (p->spare[0])
        dsm_area_free(t->area, SLOTS_PTR(p->spare[0]));
    p->spare[0] = op;
    p->spare[1] = p->seq;
    if (log2 == 0 && op) {
        /* Empty: give everything back now (no reader can find anything in it). */
        dsm_area_free(t->area, SLOTS_PTR(op));
        p->spare[0] = 0;
    }
    return 0;
}

/*
 * Free the retired array once RETIRE_AFTER more write-locked operations
 * have gone through the partition: a reader still inside it by then has
 * been descheduled for that long, and its version check fails anyway.
 */
#define RETIRE_AFTER 64u

static void retire_old(dsm_hash *t, struct part *p)
{
    if (p->spare[0] && (uint32_t)(p->seq - (uint32_t)p->spare[1]) > 2 * RETIRE_AFTER) {
        dsm_area_free(t->area, SLOTS_PTR(p->spare[0]));
        p->spare[0] = 0;
    }
}

int dsm__hash_maybe_shrink(dsm_hash *t, struct part *p)
{
    struct arr a;
    int rc = dsm__hash_array(t, p, &a);

    if (rc < 0 || a.base == NULL)
        return rc;
    if (p->count == 0)
        return resize(t, p, &a, 0);
    if (a.log2 > MIN_LOG2 && p->count < ((a.mask + 1) >> 3))
        return resize(t, p, &a, a.log2 - 1);
    return 0;
}

/* Backward-shift deletion of slot i. */
void dsm__hash_remove_at(dsm_hash *t, struct part *p, struct arr *a, uint64_t i)
{
    uint64_t j = i;

    for (uint64_t n = 0; n < a->mask; n++) {
        char *sj;
        uint64_t k;

        j = (j + 1) & a->mask;
        sj = slot_at(t, a, j);
        if (slot_hash(sj) == 0)
            break;
        k = slot_hash(sj) & a->mask;
        /* Stays if its home lies cyclically in (i, j]. */
        if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
            continue;
        copy_slot(t, slot_at(t, a, i), sj);
        HASH_STEP();
        i = j;
    }
    *(uint64_t *)(void *)slot_at(t, a, i) = 0;
    HASH_STEP();
    p->count--;
}

/* ---- operations ------------------------------------------------------------------ */

/*
 * Start loading the key's home slot before taking the lock.  The lock's
 * atomic instructions order every later load after them, so without this
 * the probe's cache miss (the whole cost of an update in a large table)
 * could not begin until the lock was ours.  The array word is read without
 * the lock and may be stale or torn: a prefetch never faults and changes
 * nothing, and the address is kept inside a segment mapped here anyway.
 */
static inline void prefetch_home(dsm_hash *t, const struct part *p, uint64_t h)
{
    uint64_t w, mask;
    unsigned l2;
    const char *base;

#if defined(__x86_64__) || defined(__i386__)
    /*
     * The partition's line first, for writing: read plainly, it would come
     * in shared and the lock's compare-and-swap would then fetch it again
     * from another writer (two transfers instead of one).  PREFETCHW only
     * where the processor has it (checked once, in set_view()).
     */
    if (t->prefetchw)
        __asm__ volatile("prefetchw %0" : : "m"(*(const char *)p));
#endif
    w = __atomic_load_n(&p->slots, __ATOMIC_RELAXED);
    l2 = SLOTS_LOG2(w);
    if (w == 0 || l2 < MIN_LOG2 || l2 > MAX_LOG2)
        return;
    mask = ((uint64_t)1 << l2) - 1;
    base = span_mapped(t->area, SLOTS_PTR(w), (mask + 1) * t->slot_size);
    if (base != NULL)
        __builtin_prefetch(base + (h & mask) * t->slot_size, 1);
}

/*
 * Lock key's partition *pp and look the key up in it: 1 found at *pos, 0 not
 * there, or a negative error.  *locked says whether the partition is locked
 * (false only when taking the lock failed: then there is nothing to unlock).
 */
static int lock_and_probe(dsm_hash *t, const void *key, bool exclusive, struct part **pp,
                          bool *locked, struct arr *a, uint64_t *h, uint64_t *pos)
{
    int rc;

    *h = dsm__hash_key_hash(t, key);
    *pp = part_of(t, *h);
    *locked = false;
    prefetch_home(t, *pp, *h);
    if ((rc = lock_part(t, *pp, exclusive)) < 0)
        return rc;
    *locked = true;
    rc = dsm__hash_array(t, *pp, a);
    if (rc == 0 && a->base != NULL)
        rc = probe(t, a, *h, key, pos);
    return rc;
}

int dsm_hash_find(dsm_hash *table, const void *key, int flags, void **entry)
{
    bool locked;
    struct part *p;
    struct arr a;
    uint64_t h, pos = 0;
    int rc;

    if (table == NULL || entry == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_find");
    if ((rc = check_key(table, key)) < 0)
        return rc;
    rc = lock_and_probe(table, key, (flags & DSM_HASH_EXCLUSIVE) != 0, &p, &locked, &a, &h,
                        &pos);
    if (!locked)
        return rc;
    if (rc == 1) {
        *entry = slot_at(table, &a, pos) + 8;
        return 1;
    }
    dsm__hash_unlock(p);
    return rc;
}

int dsm_hash_find_or_insert(dsm_hash *table, const void *key, void **entry)
{
    bool locked;
    struct part *p;
    struct arr a;
    uint64_t h, pos = 0;
    char *s;
    int rc;

    if (table == NULL || entry == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_find_or_insert");
    if ((rc = check_key(table, key)) < 0)
        return rc;
    rc = lock_and_probe(table, key, true, &p, &locked, &a, &h, &pos);
    if (!locked)
        return rc;
    if (rc == 1) {
        *entry = slot_at(table, &a, pos) + 8;
        return 1;
    }
    if (rc < 0)
        goto fail;
    if (p->count > a.mask) {
        rc = dsm__error(DSM_ECORRUPT, "hash table partition %u has a bad count",
                        (unsigned)(p - table->parts));
        goto fail;
    }
    if (a.base == NULL || (p->count + 1) * 4 > (a.mask + 1) * 3) {
        unsigned log2 = a.base ? a.log2 + 1 : MIN_LOG2;

        if (log2 > MAX_LOG2 || (rc = resize(table, p, &a, log2)) < 0) {
            if (a.base == NULL || p->count + 1 > a.mask) /* no room at all */
                goto fail;
        } else if ((rc = dsm__hash_array(table, p, &a)) < 0)
            goto fail;
        if ((rc = probe(table, &a, h, key, &pos)) < 0)
            goto fail;
    }
    s = slot_at(table, &a, pos);
    if (table->fast8) {
        /* Word stores, no calls: the common case of 8-byte keys. */
        memcpy(s + 8, key, 8);
        for (size_t j = 16; j < table->slot_size; j += 8)
            memset(s + j, 0, 8);
    } else {
        memset(s + 8, 0, table->slot_size - 8);
        if (table->key_kind == DSM_HASH_KEY_STRING)
            memcpy(s + 8, key, strlen(key) + 1); /* fits: check_key() */
        else
            memcpy(s + 8, key, table->key_size);
    }
    HASH_STEP();
    *(uint64_t *)(void *)s = h;
    HASH_STEP();
    p->count++;
    retire_old(table, p);
    *entry = s + 8;
    return 0;
fail:
    dsm__hash_unlock(p);
    return rc;
}

/* The partition of an entry we handed out, or NULL (and an error set). */
static struct part *entry_part(dsm_hash *t, void *entry)
{
    uint64_t h;

    if (t == NULL || entry == NULL) {
        dsm__error(-EINVAL, "invalid hash table entry");
        return NULL;
    }
    h = slot_hash((const char *)entry - 8);
    if (h == 0) {
        dsm__error(-EINVAL, "hash table entry is not in use");
        return NULL;
    }
    return part_of(t, h);
}

int dsm_hash_release(dsm_hash *table, void *entry)
{
    struct part *p = entry_part(table, entry);

    if (p == NULL)
        return -EINVAL;
    dsm__hash_unlock(p);
    return 0;
}

int dsm_hash_delete_entry(dsm_hash *table, void *entry)
{
    struct part *p = entry_part(table, entry);
    struct arr a;
    uint64_t i;
    int rc;

    if (p == NULL)
        return -EINVAL;
    if ((p->seq & 1) == 0) {
        /* Found in shared mode: the lock is ours, make the update visible. */
        __atomic_store_n(&p->seq, p->seq + 1, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
    }
    rc = dsm__hash_array(table, p, &a);
    if (rc == 0 && a.base != NULL) {
        i = (uint64_t)((char *)entry - 8 - a.base) / table->slot_size;
        if (i > a.mask || slot_at(table, &a, i) + 8 != (char *)entry)
            rc = dsm__error(-EINVAL, "hash table entry is not in its partition");
        else {
            dsm__hash_remove_at(table, p, &a, i);
            rc = dsm__hash_maybe_shrink(table, p);
            retire_old(table, p);
        }
    }
    dsm__hash_unlock(p);
    return rc;
}

int dsm_hash_delete_key(dsm_hash *table, const void *key)
{
    bool locked;
    struct part *p;
    struct arr a;
    uint64_t h, pos = 0;
    int rc;

    if (table == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_delete_key");
    if ((rc = check_key(table, key)) < 0)
        return rc;
    rc = lock_and_probe(table, key, true, &p, &locked, &a, &h, &pos);
    if (!locked)
        return rc;
    if (rc == 1) {
        int r;

        dsm__hash_remove_at(table, p, &a, pos);
        if ((r = dsm__hash_maybe_shrink(table, p)) < 0)
            rc = r;
        retire_old(table, p);
    }
    dsm__hash_unlock(p);
    return rc;
}

/* ---- the lock-free lookup ------------------------------------------------------- */

#define OPTIMISTIC_TRIES 16

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Every key kind, with retries and the fallback to the lock. */
static __attribute__((noinline)) int lookup_general(dsm_hash *table, const void *key, void *copy)
{
    struct part *p;
    uint64_t h;
    void *e;
    int rc;

    if (table->key_kind == DSM_HASH_KEY_STRING && (rc = check_key(table, key)) < 0)
        return rc;
    h = dsm__hash_key_hash(table, key);
    p = part_of(table, h);
    for (int tries = 0; tries < OPTIMISTIC_TRIES; tries++) {
        uint32_t s1 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
        uint64_t w, mask, i;
        char *base;
        int found = 0;

        if (__builtin_expect(__atomic_load_n(&table->hdr->inconsistent, __ATOMIC_RELAXED), 0))
            return inconsistent();
        if (s1 & 1) {
            cpu_relax();
            continue;
        }
        w = __atomic_load_n(&p->slots, __ATOMIC_RELAXED);
        if (w != 0) {
            unsigned l2 = SLOTS_LOG2(w);
            size_t len;

            if (l2 < MIN_LOG2 || l2 > MAX_LOG2)
                break; /* the lock path reports it */
            mask = ((uint64_t)1 << l2) - 1;
            len = (size_t)(mask + 1) * table->slot_size;
            base = span_address(table->area, SLOTS_PTR(w), len);
            if (base == NULL)
                break;
            i = h & mask;
            for (uint64_t n = 0; n <= mask; n++, i = (i + 1) & mask) {
                const char *s = base + i * table->slot_size;
                uint64_t sh = __atomic_load_n((const uint64_t *)(const void *)s, __ATOMIC_RELAXED);

                if (sh == 0)
                    break;
                if (sh == h && dsm__hash_key_eq(table, s + 8, key)) {
                    if (table->entry_size == 16)
                        memcpy(copy, s + 8, 16); /* a constant size: two loads */
                    else
                        memcpy(copy, s + 8, table->entry_size);
                    found = 1;
                    break;
                }
            }
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) == s1)
            return found;
    }
    /* Writers kept us out (or one died mid-update): ask the lock. */
    rc = dsm_hash_find(table, key, DSM_HASH_SHARED, &e);
    if (rc == 1) {
        memcpy(copy, e, table->entry_size);
        dsm_hash_release(table, e);
    }
    return rc;
}

/*
 * One optimistic pass for 8-byte keys with the built-in functions, the
 * common case.  It is kept small on purpose: lookups of a large table are
 * bound by cache misses, and a processor overlaps the misses of successive
 * lookups only as far as its reorder window reaches, so every instruction
 * on this path costs parallelism.  Anything unusual (a writer inside, a bad
 * array word, an unmapped segment, a failed version check, a probe longer
 * than the array) goes to lookup_general(), which repeats the work with
 * retries and the lock; nothing read here is trusted before it is bounded.
 */
int dsm_hash_lookup(dsm_hash *table, const void *key, void *copy)
{
    const struct part *p;
    const char *base;
    uint64_t k, h, w, mask, i, len;
    uint32_t s1;
    unsigned l2;
    int found = 0;

    if (__builtin_expect(table == NULL || copy == NULL, 0))
        return dsm__error(-EINVAL, "invalid argument to dsm_hash_lookup");
    if (!table->fast_lookup)
        return lookup_general(table, key, copy);
    memcpy(&k, key, 8);
    h = dsm__mix64(k ^ HASH_SEED);
    h = h ? h : 1;
    p = part_of(table, h);
    s1 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
    if (__builtin_expect((s1 & 1) != 0 ||
                             __atomic_load_n(&table->hdr->inconsistent, __ATOMIC_RELAXED) != 0,
                         0))
        return lookup_general(table, key, copy);
    w = __atomic_load_n(&p->slots, __ATOMIC_RELAXED);
    if (w != 0) {
        l2 = SLOTS_LOG2(w);
        if (__builtin_expect(l2 < MIN_LOG2 || l2 > MAX_LOG2, 0))
            return lookup_general(table, key, copy);
        mask = ((uint64_t)1 << l2) - 1;
        len = (mask + 1) * table->slot_size;
        base = span_mapped(table->area, SLOTS_PTR(w), len);
        if (__builtin_expect(base == NULL, 0))
            return lookup_general(table, key, copy);
        i = h & mask;
        for (uint64_t n = 0;; n++, i = (i + 1) & mask) {
            const char *s = base + i * table->slot_size;
            uint64_t sh = __atomic_load_n((const uint64_t *)(const void *)s, __ATOMIC_RELAXED);

            if (sh == h && memcmp(s + 8, &k, 8) == 0) {
                /* Word by word: a call to memcpy would cost more than the copy. */
                for (size_t j = 0; j < table->entry_size; j += 8)
                    memcpy((char *)copy + j, s + 8 + j, 8);
                found = 1;
                break;
            }
            if (sh == 0)
                break;
            if (__builtin_expect(n == mask, 0))
                return lookup_general(table, key, copy);
        }
    }
    __atomic_thread_fence(__ATOMIC_ACQUIRE);
    if (__builtin_expect(__atomic_load_n(&p->seq, __ATOMIC_RELAXED) != s1, 0))
        return lookup_general(table, key, copy);
    return found;
}
