/* SPDX-License-Identifier: MIT */
/*
 * toc.c - a table of contents: key -> offset, published without locks.
 *
 * Why: every process maps a segment at its own address, so "where is the
 * queue for worker 3" must be answered by an offset found under an agreed
 * key.  PostgreSQL's shm_toc answers with a linear scan under a spinlock
 * for inserts; its lookup costs grow with the number of keys and a process
 * that dies holding the spinlock wedges every later insert.  Here:
 *
 *   - The entries form an open-addressing hash table (linear probing,
 *     Fibonacci hashing, at most half full), sized once at creation: a
 *     lookup is one multiply and, almost always, one probe.
 *   - No lock at all.  An insert claims an empty slot by compare-and-swap
 *     of its key (0 marks an empty slot, so key 0 is not allowed), then
 *     publishes the offset with a release store; a lookup that finds the
 *     key reads the offset with an acquire load, so it also sees what the
 *     inserter wrote before inserting.  Duplicate keys are impossible: the
 *     second inserter of a key meets the first one's key on its probe path.
 *     A process killed between the claim and the publication leaves a key
 *     with no offset, which lookups report as absent and inserts as taken:
 *     nothing else is disturbed.
 *   - Allocation is a bump pointer advanced by compare-and-swap, so it is
 *     lock free as well; chunks are cache-line aligned and never freed.
 *
 * What it deliberately does not do: remove keys, grow, or free chunks.  A
 * segment's layout is decided by whoever sets it up; a structure that
 * needs to grow belongs in an area.
 *
 * Validation: the header's constants are checked at attach and copied
 * into the process-local handle, so a later scribble over them cannot
 * steer a probe or a bounds check; the bump pointer and every offset are
 * checked against the size each time they are read, and every probe loop
 * is bounded by the table size.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <dynshm/toc.h>

#include "../common/internal.h"

#define TOC_MAGIC UINT64_C(0x64736d746f630a01) /* "dsmtoc\n\1" */
#define TOC_VERSION 1
#define TOC_MIN_BUCKETS 8
#define TOC_MAX_KEYS (UINT32_C(1) << 24)

/* The shared header: one cache line, then the entries, then the chunks. */
struct toc_header {
    _Atomic uint64_t magic;     /* stored last at creation (release) */
    uint32_t version;
    uint32_t nbuckets;          /* a power of two, >= 2 * max_keys */
    uint64_t size;              /* bytes of the buffer the creator was given */
    uint64_t data_start;        /* offset of the first chunk */
    _Atomic uint64_t alloc_next; /* offset of the first free byte */
    _Atomic uint32_t nkeys;     /* keys claimed so far */
    uint32_t max_keys;
    uint64_t reserved[2];
};

/* key 0: empty.  value: offset + 1 once published, 0 before. */
struct toc_entry {
    _Atomic uint64_t key;
    _Atomic uint64_t value;
};

_Static_assert(sizeof(struct toc_header) == 64, "toc header is one cache line");

/* This process's view: constants validated once, never re-read. */
struct dsm_toc {
    char *base;
    uint64_t size;
    uint64_t data_start;
    uint64_t mask;
    unsigned shift;
    uint32_t max_keys;
    struct toc_header *hdr;
    struct toc_entry *entries;
};

static size_t round_up(size_t n, size_t to)
{
    return (n + to - 1) & ~(to - 1);
}

static uint32_t buckets_for(size_t max_keys)
{
    uint32_t n = TOC_MIN_BUCKETS;

    while (n < 2 * max_keys)
        n *= 2;
    return n;
}

static size_t table_bytes(uint32_t nbuckets)
{
    return round_up(sizeof(struct toc_header) + (size_t)nbuckets * sizeof(struct toc_entry),
                    DSM_TOC_ALIGN);
}

static unsigned log2_of(uint32_t pow2)
{
    unsigned b = 0;

    while ((UINT32_C(1) << b) < pow2)
        b++;
    return b;
}

static inline uint64_t bucket_of(const dsm_toc *toc, uint64_t key)
{
    return (key * UINT64_C(0x9e3779b97f4a7c15)) >> toc->shift;
}

void dsm_toc_estimator_init(dsm_toc_estimator *e)
{
    e->space = 0;
    e->nkeys = 0;
}

void dsm_toc_estimate_chunk(dsm_toc_estimator *e, size_t size)
{
    size_t r = round_up(size, DSM_TOC_ALIGN);

    e->space = (r < size || e->space + r < e->space) ? SIZE_MAX : e->space + r;
}

void dsm_toc_estimate_keys(dsm_toc_estimator *e, size_t nkeys)
{
    e->nkeys = e->nkeys + nkeys < e->nkeys ? SIZE_MAX : e->nkeys + nkeys;
}

size_t dsm_toc_estimate(const dsm_toc_estimator *e)
{
    size_t t;

    if (e->nkeys > TOC_MAX_KEYS || e->space == SIZE_MAX)
        return SIZE_MAX;
    t = table_bytes(buckets_for(e->nkeys));
    return e->space > SIZE_MAX - t ? SIZE_MAX : t + e->space;
}

static int make_handle(void *base, const struct toc_header *h, uint64_t size, dsm_toc **out)
{
    dsm_toc *toc = malloc(sizeof(*toc));

    if (toc == NULL)
        return dsm__error(-ENOMEM, "could not allocate a table of contents handle: %m");
    toc->base = base;
    toc->size = size;
    toc->data_start = h->data_start;
    toc->mask = h->nbuckets - 1;
    toc->shift = 64 - log2_of(h->nbuckets);
    toc->max_keys = h->max_keys;
    toc->hdr = (struct toc_header *)base;
    toc->entries = (struct toc_entry *)((char *)base + sizeof(struct toc_header));
    *out = toc;
    return 0;
}

int dsm_toc_create(void *base, size_t size, size_t max_keys, dsm_toc **out)
{
    struct toc_header *h = base;
    uint32_t nb;
    size_t tb;

    *out = NULL;
    if (base == NULL || ((uintptr_t)base & 7) != 0)
        return dsm__error(-EINVAL, "a table of contents needs an 8-byte aligned buffer");
    if (max_keys > TOC_MAX_KEYS)
        return dsm__error(-EINVAL, "a table of contents holds at most %u keys",
                          (unsigned)TOC_MAX_KEYS);
    nb = buckets_for(max_keys);
    tb = table_bytes(nb);
    if (size < tb)
        return dsm__error(-ENOSPC, "a table of contents for %zu keys needs %zu bytes, not %zu",
                          max_keys, tb, size);
    memset(base, 0, tb);
    h->version = TOC_VERSION;
    h->nbuckets = nb;
    h->size = size;
    h->data_start = tb;
    atomic_store_explicit(&h->alloc_next, tb, memory_order_relaxed);
    atomic_store_explicit(&h->nkeys, 0, memory_order_relaxed);
    h->max_keys = (uint32_t)max_keys;
    atomic_store_explicit(&h->magic, TOC_MAGIC, memory_order_release);
    return make_handle(base, h, size, out);
}

int dsm_toc_attach(void *base, size_t size, dsm_toc **out)
{
    const struct toc_header *h = base;
    uint32_t nb;

    *out = NULL;
    if (base == NULL || ((uintptr_t)base & 7) != 0)
        return dsm__error(-EINVAL, "a table of contents needs an 8-byte aligned buffer");
    if (size < sizeof(struct toc_header) ||
        atomic_load_explicit(&h->magic, memory_order_acquire) != TOC_MAGIC)
        return dsm__error(DSM_ECORRUPT, "no table of contents at this address (bad magic)");
    if (h->version != TOC_VERSION)
        return dsm__error(DSM_ECORRUPT, "table of contents has layout version %u, not %u",
                          (unsigned)h->version, (unsigned)TOC_VERSION);
    nb = h->nbuckets;
    if (nb < TOC_MIN_BUCKETS || (nb & (nb - 1)) != 0 || nb > 2 * TOC_MAX_KEYS ||
        h->max_keys > nb / 2 || h->data_start != table_bytes(nb) || h->size > size ||
        h->data_start > h->size)
        return dsm__error(DSM_ECORRUPT, "table of contents header fails its bounds checks");
    return make_handle(base, h, h->size, out);
}

void dsm_toc_release(dsm_toc *toc)
{
    free(toc);
}

int dsm_toc_allocate(dsm_toc *toc, size_t size, void **addr)
{
    uint64_t cur, next, r = round_up(size, DSM_TOC_ALIGN);

    *addr = NULL;
    if (r < size || r == 0)
        return dsm__error(-EINVAL, "cannot allocate %zu bytes from a table of contents", size);
    cur = atomic_load_explicit(&toc->hdr->alloc_next, memory_order_relaxed);
    do {
        if (cur < toc->data_start || cur > toc->size || (cur & (DSM_TOC_ALIGN - 1)) != 0)
            return dsm__error(DSM_ECORRUPT, "table of contents allocation pointer %llu is "
                              "outside its buffer", (unsigned long long)cur);
        if (r > toc->size - cur)
            return dsm__error(-ENOSPC, "table of contents has %llu bytes free, %zu requested",
                              (unsigned long long)(toc->size - cur), size);
        next = cur + r;
    } while (!atomic_compare_exchange_weak_explicit(&toc->hdr->alloc_next, &cur, next,
                                                    memory_order_relaxed,
                                                    memory_order_relaxed));
    *addr = toc->base + cur;
    return 0;
}

int dsm_toc_insert(dsm_toc *toc, uint64_t key, const void *addr)
{
    uint64_t off, b = bucket_of(toc, key);
    uint32_t n;

    if (key == 0)
        return dsm__error(-EINVAL, "key 0 is reserved in a table of contents");
    if ((const char *)addr < toc->base || (uint64_t)((const char *)addr - toc->base) >= toc->size)
        return dsm__error(-EINVAL, "address is outside the table of contents' buffer");
    off = (uint64_t)((const char *)addr - toc->base);
    /*
     * max_keys keeps the table at most half full.  Checked before the
     * claim and counted after it, so racing inserts of one key never make
     * a spurious -ENOSPC; concurrent inserters may overshoot it by their
     * number, which the spare half absorbs (the probe is bounded anyway).
     */
    for (uint64_t i = 0; i <= toc->mask; i++) {
        struct toc_entry *e = &toc->entries[(b + i) & toc->mask];
        uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);

        if (k == 0 && (n = atomic_load_explicit(&toc->hdr->nkeys, memory_order_relaxed)) >=
                          toc->max_keys)
            return dsm__error(n > toc->mask + 1 ? DSM_ECORRUPT : -ENOSPC,
                              "table of contents holds %u keys, its maximum is %u",
                              (unsigned)n, (unsigned)toc->max_keys);
        if (k == 0 && atomic_compare_exchange_strong_explicit(&e->key, &k, key,
                                                              memory_order_relaxed,
                                                              memory_order_relaxed)) {
            atomic_store_explicit(&e->value, off + 1, memory_order_release);
            atomic_fetch_add_explicit(&toc->hdr->nkeys, 1, memory_order_relaxed);
            return 0;
        }
        if (k == key)
            return dsm__error(-EEXIST, "key %#llx is already in the table of contents",
                              (unsigned long long)key);
    }
    return dsm__error(-ENOSPC, "table of contents has no free entry");
}

/* Probe past the home bucket; also reports absent keys and corrupt entries. */
static int lookup_slow(const dsm_toc *toc, uint64_t key, void **addr)
{
    uint64_t b = bucket_of(toc, key);

    *addr = NULL;
    for (uint64_t i = 0; i <= toc->mask; i++) {
        const struct toc_entry *e = &toc->entries[(b + i) & toc->mask];
        uint64_t k = atomic_load_explicit(&e->key, memory_order_relaxed);

        if (k == key && key != 0) {
            uint64_t v = atomic_load_explicit(&e->value, memory_order_acquire);

            if (v == 0)
                break; /* claimed, not yet published (or its inserter died) */
            if (v > toc->size)
                return dsm__error(DSM_ECORRUPT, "table of contents entry %#llx points outside "
                                  "its buffer", (unsigned long long)key);
            *addr = toc->base + (v - 1);
            return 0;
        }
        if (k == 0)
            break;
    }
    return dsm__error(-ENOENT, "key %#llx is not in the table of contents",
                      (unsigned long long)key);
}

int dsm_toc_lookup(const dsm_toc *toc, uint64_t key, void **addr)
{
    const struct toc_entry *e = &toc->entries[bucket_of(toc, key)];

    /* The common case: the key sits in its home bucket, published and in bounds.
     * The acquire load of the value is what pairs with the inserter's release. */
    if (__builtin_expect(atomic_load_explicit(&e->key, memory_order_relaxed) == key && key != 0,
                         1)) {
        uint64_t v = atomic_load_explicit(&e->value, memory_order_acquire);

        if (__builtin_expect(v - 1 < toc->size, 1)) {
            *addr = toc->base + (v - 1);
            return 0;
        }
    }
    return lookup_slow(toc, key, addr);
}
