/* SPDX-License-Identifier: MIT */
/*
 * hash_int.h - the shared layout of a hash table and each process's view
 * of it; never installed.
 *
 * Shared memory, all in blocks of one area:
 *
 *   header block  [struct hash_hdr][pad to 64][struct part x nparts]
 *   array blocks  one per non-empty partition: 2^log2 slots of slot_size
 *                 bytes, each [uint64_t hash word][entry, padded to 8]
 *
 * A hash word of 0 marks an empty slot (a key hashing to 0 is stored as 1,
 * and every use of the hash goes through the same adjustment).  The
 * partition is the hash's top bits, the home slot its low bits.
 *
 * Each struct part is one cache line: its robust lock, its version counter
 * (odd while a writer holds the lock in write mode), its array as a
 * dsm_pointer with log2 of the capacity in the six high bits (bits 58..63,
 * always zero in a dsm_pointer), so a reader loads both with one load, and
 * its count.  Everything in them is validated before it is used.
 */
#ifndef DYNSHM_HASH_INT_H
#define DYNSHM_HASH_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <dynshm/area.h>
#include <dynshm/hash.h>
#include <dynshm/lock.h>

#include "../common/internal.h"

#define HASH_MAGIC UINT64_C(0x48534148444d5344) /* "DSMDHASH" */
#define HASH_DEAD UINT64_C(0x44414544444d5344)  /* "DSMDDEAD": destroyed */
#define HASH_VERSION 1u
#define MIN_LOG2 4u /* 16 slots */
#define MAX_LOG2 40u /* 2^40 slots: beyond any area */
#define SLOTS_PTR(w) ((w) & ((UINT64_C(1) << 58) - 1))
#define SLOTS_LOG2(w) ((unsigned)((w) >> 58))
#define SLOTS_WORD(p, l) ((p) | ((uint64_t)(l) << 58))

struct hash_hdr {
    uint64_t magic;
    uint32_t version;
    uint32_t key_kind;
    uint32_t key_size;
    uint32_t entry_size;
    uint32_t slot_size;
    uint32_t nparts;
    uint32_t part_shift; /* 64 - log2(nparts) */
    uint32_t funcs_id;
    uint32_t parts_off; /* from the header to part 0, a multiple of 64 away from a page */
    uint32_t inconsistent;
    dsm_pointer self;
    uint64_t check; /* dsm__mix64 over the fields above */
};

struct part {
    dsm_lock lock;
    uint32_t seq;
    uint32_t pad;
    uint64_t slots; /* SLOTS_WORD(array, log2 capacity), 0 if none */
    uint64_t count;
    uint64_t spare[2]; /* [0]: the retired array, as a slots word (0: none); [1]: seq then */
};

struct dsm_hash {
    dsm_area *area;
    struct hash_hdr *hdr;
    struct part *parts;
    dsm_pointer handle;
    size_t key_size, entry_size, slot_size;
    unsigned nparts, part_shift;
    int key_kind;
    bool fast8; /* built-in functions on 8-byte binary keys */
    bool fast_lookup; /* fast8 and whole words of entry: dsm_hash_lookup()'s short path */
    bool prefetchw;   /* the processor has PREFETCHW */
    dsm_hash_hash_fn hash;
    dsm_hash_compare_fn compare;
    void *arg;
};

/* A partition's array, checked: base, capacity mask. */
struct arr {
    char *base;
    uint64_t mask;
    unsigned log2;
};

/* Tests: called at each step of a locked update (kill points); NULL otherwise. */
extern void (*dsm__hash_step_hook)(void);
#define HASH_STEP()                                          \
    do {                                                     \
        if (__builtin_expect(dsm__hash_step_hook != NULL, 0)) \
            dsm__hash_step_hook();                           \
    } while (0)

uint64_t dsm__hash_header_check(const struct hash_hdr *h);
int dsm__hash_lock(dsm_hash *t, struct part *p, bool write);
void dsm__hash_unlock(struct part *p);
int dsm__hash_array_bad(dsm_hash *t, const struct part *p, uint64_t w);
void dsm__hash_remove_at(dsm_hash *t, struct part *p, struct arr *a, uint64_t i);
int dsm__hash_maybe_shrink(dsm_hash *t, struct part *p);

#define HASH_SEED UINT64_C(0x9e3779b97f4a7c15)

/* A key's hash as stored (never 0). */
static inline uint64_t dsm__hash_key_hash(dsm_hash *t, const void *key)
{
    uint64_t h;

    if (t->fast8) {
        uint64_t w;

        /* dsm_hash_bytes() for 8 bytes, inlined: both must agree. */
        memcpy(&w, key, 8);
        h = dsm__mix64(w ^ HASH_SEED); /* the project's one 64-bit mixer */
    } else
        h = t->hash(key, t->key_size, t->arg);
    return h ? h : 1;
}

static inline bool dsm__hash_key_eq(dsm_hash *t, const void *stored, const void *key)
{
    if (t->fast8) {
        uint64_t a, b;

        memcpy(&a, stored, 8);
        memcpy(&b, key, 8);
        return a == b;
    }
    return t->compare(stored, key, t->key_size, t->arg) == 0;
}

/*
 * The address of len bytes at p in this process, or NULL if they are not
 * all inside one mapped segment of the area: dsm_area_address() and the
 * check of the end in one step when the segment is mapped.
 */
static inline char *span_address(dsm_area *area, dsm_pointer p, uint64_t len)
{
    const struct dsm__area_view *v = (const struct dsm__area_view *)(const void *)area;
    uint32_t s = DSM_POINTER_SEGMENT(p) & (DSM_AREA_MAX_SEGMENTS - 1);
    uint64_t o = DSM_POINTER_OFFSET(p), lim = v->map[s].limit;
    char *b = v->map[s].base, *a, *e;

    if (__builtin_expect(b != NULL && o - 1 < lim - 1 && len <= lim - o, 1))
        return b + o;
    if (len == 0 || (a = dsm_area_get_address(area, p)) == NULL)
        return NULL;
    e = dsm_area_get_address(area, p + len - 1);
    return e == a + len - 1 ? a : NULL;
}

/*
 * span_address() when the segment is already mapped in this process, NULL
 * otherwise (the caller then takes its slow path): no call, so a caller on
 * a hot path keeps its registers.
 */
static inline const char *span_mapped(dsm_area *area, dsm_pointer p, uint64_t len)
{
    const struct dsm__area_view *v = (const struct dsm__area_view *)(const void *)area;
    uint32_t s = DSM_POINTER_SEGMENT(p) & (DSM_AREA_MAX_SEGMENTS - 1);
    uint64_t o = DSM_POINTER_OFFSET(p), lim = v->map[s].limit;
    const char *b = v->map[s].base;

    return b != NULL && o - 1 < lim - 1 && len <= lim - o ? b + o : NULL;
}

/* The partition's array, validated; base NULL if it has none. */
static inline int dsm__hash_array(dsm_hash *t, const struct part *p, struct arr *a)
{
    uint64_t w = __atomic_load_n(&p->slots, __ATOMIC_RELAXED);
    unsigned l2 = SLOTS_LOG2(w);

    a->base = NULL;
    a->mask = 0;
    a->log2 = 0;
    if (w == 0)
        return 0;
    /* Arrays are area blocks, 16-byte aligned: a misaligned pointer is a scribble. */
    if (__builtin_expect(l2 < MIN_LOG2 || l2 > MAX_LOG2 || (SLOTS_PTR(w) & 15) != 0, 0))
        return dsm__hash_array_bad(t, p, w);
    a->base = span_address(t->area, SLOTS_PTR(w), ((uint64_t)1 << l2) * t->slot_size);
    if (__builtin_expect(a->base == NULL, 0))
        return dsm__hash_array_bad(t, p, w);
    a->log2 = l2;
    a->mask = ((uint64_t)1 << l2) - 1;
    return 0;
}

static inline char *slot_at(const dsm_hash *t, const struct arr *a, uint64_t i)
{
    return a->base + i * t->slot_size;
}

static inline uint64_t slot_hash(const char *s)
{
    return *(const uint64_t *)(const void *)s;
}

#endif /* DYNSHM_HASH_INT_H */
