/* SPDX-License-Identifier: MIT */
/*
 * registry.c - named segments, areas and hash tables (dynshm/registry.h).
 *
 * Where the names live: in a hash table (src/hash) in an area of its own,
 * so the registry grows to any number of names and a lookup by name takes
 * no lock (dsm_hash_lookup reads optimistically).  The table and the area
 * are found through a small *root* segment whose handle is published in
 * the control segment's registry anchor (services.h), the one place every
 * process of the instance, forked or exec'd, can read.  The first process
 * that needs the registry creates root, area and table, pins them, and
 * publishes the root with a compare-and-swap; a process that loses the
 * race destroys its own and attaches the winner's.  That whole step is a
 * critical section (services.h): a death half-way escalates the crash
 * action to a reset, which is the only way to be sure nothing pinned is
 * left without a name.  It happens once per instance.
 *
 * Exactly once: an entry is inserted in state INIT with the inserting
 * process as owner, then the partition lock is released -- the initialiser
 * is the caller's code and may take as long as it likes, and no lock of
 * ours is held while it runs.  The owner creates the object, records its
 * handle in the entry (still INIT), runs the initialiser, pins the object,
 * and only then marks the entry READY.  A caller that finds INIT waits on
 * the root's wake word (a futex, bumped after every initialisation ends
 * either way) in 20 ms slices, looking each time whether the owner still
 * lives (pid + start time).  Owner dead: the waiter takes the entry over
 * (new generation, itself as owner), unpins whatever the dead owner had
 * pinned, and initialises afresh -- a half-initialised object is never
 * attached.  The order matters: a segment's handle is recorded before the
 * pin, so a segment can be pinned only while an entry names it, and a dead
 * owner's unpinned segment is destroyed with its references by the
 * supervisor's reclaim.  An area is different: its own segments are pinned
 * by the area layer, so one that its only attacher leaves behind unpinned
 * would stay for ever.  So an area (or a table's area) is made, pinned and
 * recorded inside one critical section -- a death there resets -- and
 * from then on a taker-over can attach it and unpin it.  An initialiser
 * that fails: the object is unpinned and destroyed and the entry removed,
 * and waiters try themselves.
 *
 * Deleting unpins first and removes the entry second.  A deleter killed
 * between the two leaves a READY entry whose object may be gone; whoever
 * next attaches it gets -ENOENT, removes that entry (if its generation is
 * unchanged) and creates the object anew.
 *
 * The per-process cache: a process keeps what it got by name for its
 * life (mapping pinned) and finds it again without touching the shared
 * table: an open-addressing table of immutable records, read without a
 * lock (records and old tables are only freed when the whole registry
 * state of the process is dropped).  A record is trusted while the root's
 * delete counter has not moved since it was last checked -- one load of a
 * line that only deletes write.  When it moved, the record is checked
 * against the shared entry (same generation) once and trusted again.
 *
 * What resets the process state: the root segment's detach callback
 * (dsm_worker_exit, a crash reset or shut-down in the supervisor) and
 * fork (a pthread_atfork child handler): a child starts with no registry
 * state and attaches again when it asks.
 *
 * A process killed while holding a partition lock of the registry's table
 * makes the table inconsistent, by the hash table's rule (a reset follows
 * unless the crash hook decides otherwise); the windows are a few stores.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <dynshm/registry.h>

#include "../common/futex.h"
#include "../common/internal.h"
#include "../dsm/services.h"
#include "../hash/hash_int.h"

#define ROOT_MAGIC UINT64_C(0x5447524d44534d44) /* "DMSDMRGT" */
#define ROOT_VERSION 1u
#define ROOT_SIZE 4096u
#define KEY_SIZE (DSM_NAMED_MAX_LEN + 1)
#define WAIT_SLICE_NS (20LL * 1000 * 1000)

enum { REG_INIT = 1, REG_READY = 2 };

/* Tests: called between the steps of an initialisation (kill points); NULL otherwise. */
void (*dsm__registry_step_hook)(void);
#define REG_STEP()                                                \
    do {                                                          \
        if (__builtin_expect(dsm__registry_step_hook != NULL, 0)) \
            dsm__registry_step_hook();                            \
    } while (0)

/* The root segment: what a process needs to find the table. */
struct reg_root {
    uint64_t magic;
    uint32_t version;
    uint32_t wake; /* futex word: bumped when an initialisation ends */
    dsm_handle area;
    dsm_hash_handle table;
    uint64_t check; /* over magic, version, area and table */
    uint64_t deletes; /* bumped by every delete: cached records check again */
    uint64_t next_generation;
};

/* One name: an entry of the shared table, keyed by the name. */
struct reg_entry {
    char name[KEY_SIZE];
    uint32_t state; /* REG_INIT or REG_READY */
    uint32_t type;  /* dsm_named_type */
    struct dsm__procid owner;
    uint64_t generation;
    dsm_handle handle; /* the segment, or the area; 0 until made */
    uint64_t size;     /* segment: bytes asked for */
    dsm_hash_handle table;
    uint32_t key_size, entry_size, key_kind, funcs_id; /* a hash table's parameters */
    int64_t created_usec;
};

static const dsm_hash_params table_params = {
    .key_size = KEY_SIZE,
    .entry_size = sizeof(struct reg_entry),
    .key_kind = DSM_HASH_KEY_STRING,
    .partitions = 16,
};

/*
 * What a process got by name; immutable once published except seen/gone.
 * The fields a lookup reads come first, so that with a short name the
 * whole check is one cache line (records are 64-byte aligned).
 */
struct cached {
    uint64_t hash;            /* local_hash() of the name */
    _Atomic uint64_t seen;    /* the root's delete count it was last checked at */
    void *object;             /* dsm_segment *, dsm_area * or dsm_hash * */
    uint64_t size;
    dsm_named_type type;
    _Atomic bool gone;        /* its entry was deleted */
    char name[KEY_SIZE];
    uint64_t generation;
    uint32_t key_size, entry_size, key_kind, funcs_id;
    struct cached *next_all;  /* every record, for freeing */
};

/*
 * A slot keeps the record's hash beside the pointer, so a probe past other
 * names touches no record.  Written hash first, pointer last (release); a
 * reader loads the pointer (acquire) before the hash.  A slot's pointer only
 * ever changes to a record of the same name, so the hash stays right.
 */
struct cslot {
    _Atomic(struct cached *) rec;
    _Atomic uint64_t hash;
};

struct ctable {
    size_t mask;
    struct ctable *older; /* kept until the state is dropped: readers may be in it */
    struct cslot slot[];
};

static struct {
    pthread_mutex_t mu; /* recursive: an initialiser may ask for other names */
    bool atfork_done;
    bool inherited; /* a fork child's copy of its parent's state, not dropped yet */
    dsm_segment *root_seg;
    struct reg_root *_Atomic root;
    dsm_area *area;
    dsm_hash *table;
    struct ctable *_Atomic cache;
    size_t ncached;
    struct cached *all;
} reg = {.mu = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP};

/* ---- small helpers ----------------------------------------------------------- */

/* The area a table lives in (the registry makes one area per named table). */
static dsm_area *table_area(dsm_hash *t)
{
    return t ? t->area : NULL;
}

static uint64_t root_check(const struct reg_root *r)
{
    uint64_t c = dsm__mix64(r->magic ^ ((uint64_t)r->version << 32));

    c = dsm__mix64(c ^ r->area);
    return dsm__mix64(c ^ r->table);
}

static int64_t now_usec(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

const char *dsm_named_type_name(dsm_named_type type)
{
    switch (type) {
    case DSM_NAMED_SEGMENT:
        return "segment";
    case DSM_NAMED_AREA:
        return "area";
    case DSM_NAMED_HASH:
        return "hash table";
    }
    return "unknown";
}

/* Copy a valid name into a zeroed key buffer (the table reads KEY_SIZE bytes). */
static int make_key(const char *name, char key[KEY_SIZE])
{
    size_t n;

    if (name == NULL)
        return dsm__error(-EINVAL, "a shared memory name is missing");
    n = strnlen(name, KEY_SIZE);
    if (n == 0)
        return dsm__error(-EINVAL, "a shared memory name must not be empty");
    if (n > DSM_NAMED_MAX_LEN)
        return dsm__error(-ENAMETOOLONG, "shared memory name \"%.20s...\" is longer than %d bytes",
                          name, DSM_NAMED_MAX_LEN);
    memset(key, 0, KEY_SIZE);
    memcpy(key, name, n);
    return 0;
}

/* ---- the process state -------------------------------------------------------- */

/*
 * Areas a fork child inherited from its parent's registry state: the area
 * layer forgets a parent's areas in the child without freeing them (their
 * segments are not mapped there; see area.c), so they are kept here, where
 * they stay reachable instead of being reported as leaks.
 */
static struct {
    dsm_area **a;
    size_t n, cap;
} parked;

static void park(dsm_area *a)
{
    if (a == NULL)
        return;
    if (parked.n == parked.cap) {
        size_t cap = parked.cap ? parked.cap * 2 : 8;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
        dsm_area **p = realloc(parked.a, cap * sizeof(*p));

        if (p == NULL)
            return; /* memory lost in a child, nothing shared */
        parked.a = p;
        parked.cap = cap;
    }
    parked.a[parked.n++] = a;
}

/*
 * Forget everything this process knew (mu held).  The local memory is
 * freed: records, cache tables and hash views.  Segments and areas are
 * the lower layers': when the root was detached they are detached too (an
 * area releases itself with its segments); inherited over fork, the areas
 * are parked.
 */
static void drop_state(bool inherited)
{
    struct ctable *t = atomic_load(&reg.cache);

    atomic_store(&reg.root, NULL); /* first: the fast path stops here */
    while (reg.all) {
        struct cached *c = reg.all;

        reg.all = c->next_all;
        if (c->type == DSM_NAMED_HASH) {
            if (inherited)
                park(table_area(c->object));
            dsm_hash_detach(c->object); /* a local view only */
        } else if (c->type == DSM_NAMED_AREA && inherited) {
            park(c->object);
        }
        free(c);
    }
    while (t) {
        struct ctable *older = t->older;

        free(t);
        t = older;
    }
    atomic_store(&reg.cache, NULL);
    reg.ncached = 0;
    reg.root_seg = NULL;
    if (inherited)
        park(reg.area);
    reg.area = NULL;
    if (reg.table)
        dsm_hash_detach(reg.table);
    reg.table = NULL;
    reg.inherited = false;
}

static void root_detached(dsm_segment *seg, void *arg)
{
    (void)seg;
    (void)arg;
    pthread_mutex_lock(&reg.mu);
    drop_state(false);
    pthread_mutex_unlock(&reg.mu);
}

static void atfork_prepare(void)
{
    pthread_mutex_lock(&reg.mu);
}

static void atfork_parent(void)
{
    pthread_mutex_unlock(&reg.mu);
}

static void atfork_child(void)
{
    /* A recursive mutex remembers its owner thread, which the child lacks. */
    pthread_mutex_t fresh = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

    memcpy(&reg.mu, &fresh, sizeof(fresh));
    /*
     * Nothing the parent got by name is mapped here (segments are kept out
     * of fork children): stop the fast path now, and drop the rest at the
     * next slow call (no freeing inside a fork handler).
     */
    atomic_store(&reg.root, NULL);
    reg.inherited = true;
}

/* ---- the per-process cache ------------------------------------------------------ */

/*
 * The cache's own hash of a name of len bytes: private to the process, so
 * it need not be the shared table's, only cheap -- one multiply per eight
 * bytes (names are short), then a fold so the low bits depend on all.
 */
static inline uint64_t local_hash(const char *name, size_t len)
{
    uint64_t h = len * UINT64_C(0x9e3779b97f4a7c15);
    size_t i = 0;

    for (; i + 8 <= len; i += 8) {
        uint64_t w;

        memcpy(&w, name + i, 8);
        h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
    }
    if (i < len) {
        uint64_t w = 0;

        memcpy(&w, name + i, len - i);
        h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
    }
    return h ^ (h >> 29) ^ (h >> 47);
}

/* The record of name (len bytes, NUL after them), or NULL; no lock. */
static struct cached *cache_find_len(const char *name, size_t len, uint64_t h)
{
    struct ctable *t = atomic_load_explicit(&reg.cache, memory_order_acquire);

    if (t == NULL)
        return NULL;
    for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
        struct cached *c = atomic_load_explicit(&t->slot[i].rec, memory_order_acquire);

        if (c == NULL)
            return NULL;
        if (atomic_load_explicit(&t->slot[i].hash, memory_order_relaxed) == h &&
            memcmp(c->name, name, len + 1) == 0)
            return c;
    }
}

static struct cached *cache_find(const char *key)
{
    size_t len = strlen(key);

    return cache_find_len(key, len, local_hash(key, len));
}

static void cache_put_in(struct ctable *t, struct cached *c)
{
    for (size_t i = c->hash & t->mask;; i = (i + 1) & t->mask) {
        struct cached *o = atomic_load_explicit(&t->slot[i].rec, memory_order_relaxed);

        if (o == NULL || (o->hash == c->hash && strcmp(o->name, c->name) == 0)) {
            atomic_store_explicit(&t->slot[i].hash, c->hash, memory_order_relaxed);
            atomic_store_explicit(&t->slot[i].rec, c, memory_order_release);
            return;
        }
    }
}

/* Publish c (mu held); a record of the same name is replaced. */
static int cache_add(struct cached *c)
{
    struct ctable *t = atomic_load(&reg.cache);

    if (t == NULL || (reg.ncached + 1) * 2 > t->mask + 1) {
        size_t cap = t ? (t->mask + 1) * 2 : 16;
        struct ctable *n = calloc(1, sizeof(*n) + cap * sizeof(n->slot[0]));

        if (n == NULL)
            return dsm__error(-ENOMEM, "out of memory for the shared memory name cache");
        n->mask = cap - 1;
        n->older = t;
        for (size_t i = 0; t && i <= t->mask; i++) {
            struct cached *o = atomic_load(&t->slot[i].rec);

            if (o)
                cache_put_in(n, o);
        }
        atomic_store_explicit(&reg.cache, n, memory_order_release);
        t = n;
    }
    if (cache_find(c->name) == NULL)
        reg.ncached++;
    c->next_all = reg.all;
    reg.all = c;
    cache_put_in(t, c);
    return 0;
}

/* ---- the root: find or make the registry ------------------------------------------ */

static int validate_root(const struct reg_root *r)
{
    if (r->magic != ROOT_MAGIC || r->version != ROOT_VERSION || r->check != root_check(r))
        return dsm__error(DSM_ECORRUPT, "the shared memory registry's root segment is corrupt "
                                        "(magic %#llx, version %u)",
                          (unsigned long long)r->magic, r->version);
    return 0;
}

/* Attach the published root (mu held). */
static int attach_root(dsm_handle h)
{
    dsm_segment *seg;
    dsm_area *area = NULL;
    dsm_hash *table = NULL;
    struct reg_root *r;
    int rc;

    if ((rc = dsm_attach(h, &seg)) < 0)
        return dsm__error_prefix(rc, "could not attach the shared memory registry: ");
    r = dsm_segment_address(seg);
    if (dsm_segment_map_length(seg) < sizeof(*r) || (rc = validate_root(r)) < 0)
        goto fail;
    if ((rc = dsm_area_attach(r->area, &area)) < 0 ||
        (rc = dsm_hash_attach(area, r->table, &table_params, &table)) < 0) {
        rc = dsm__error_prefix(rc, "could not attach the shared memory registry's table: ");
        goto fail;
    }
    if ((rc = dsm_pin_mapping(seg)) < 0 || (rc = dsm_area_pin_mapping(area)) < 0 ||
        (rc = dsm_on_detach(seg, root_detached, NULL)) < 0)
        goto fail;
    reg.root_seg = seg;
    reg.area = area;
    reg.table = table;
    atomic_store_explicit(&reg.root, r, memory_order_release);
    return 0;

fail:
    if (table)
        dsm_hash_detach(table);
    if (area)
        dsm_area_detach(area);
    dsm_detach(seg);
    return rc;
}

/* Make a root, area and table, pinned, and publish them (mu held). */
static int create_root(void)
{
    dsm_area_options opt = {.init_segment_size = 256 * 1024};
    dsm_segment *seg = NULL;
    dsm_area *area = NULL;
    dsm_hash *table = NULL;
    struct reg_root *r;
    bool pinned_seg = false, pinned_area = false;
    int rc;

    dsm__critical_enter(); /* a death in here resets: nothing pinned is left unnamed */
    if ((rc = dsm_create(ROOT_SIZE, 0, &seg)) < 0 || (rc = dsm_area_create(&opt, &area)) < 0 ||
        (rc = dsm_hash_create(area, &table_params, &table)) < 0)
        goto fail;
    r = dsm_segment_address(seg);
    r->version = ROOT_VERSION;
    r->area = dsm_area_handle(area);
    r->table = dsm_hash_get_handle(table);
    r->magic = ROOT_MAGIC;
    r->check = root_check(r);
    if ((rc = dsm_area_pin(area)) < 0)
        goto fail;
    pinned_area = true;
    if ((rc = dsm_pin_segment(seg)) < 0)
        goto fail;
    pinned_seg = true;
    if (!dsm__anchor_cas(DSM_ANCHOR_REGISTRY, 0, dsm_segment_handle(seg))) {
        rc = 1; /* another process published first: ours goes, theirs is used */
        goto fail;
    }
    if ((rc = dsm_pin_mapping(seg)) < 0 || (rc = dsm_area_pin_mapping(area)) < 0 ||
        (rc = dsm_on_detach(seg, root_detached, NULL)) < 0) {
        /* Published and pinned: it stays for others; this process just lets go. */
        dsm__critical_leave();
        dsm_hash_detach(table);
        dsm_area_detach(area);
        dsm_detach(seg);
        return rc;
    }
    dsm__critical_leave();
    reg.root_seg = seg;
    reg.area = area;
    reg.table = table;
    atomic_store_explicit(&reg.root, r, memory_order_release);
    return 0;

fail:
    if (table)
        dsm_hash_detach(table);
    if (pinned_area)
        dsm_area_unpin(area);
    if (area)
        dsm_area_detach(area);
    if (pinned_seg)
        dsm_unpin_segment(dsm_segment_handle(seg));
    if (seg)
        dsm_detach(seg);
    dsm__critical_leave();
    return rc;
}

/*
 * Make sure this process has the registry (mu held).  create: make it if
 * there is none; else -ENOENT then.
 */
static int ensure_root(bool create)
{
    if (reg.inherited)
        drop_state(true);
    for (int tries = 0; tries < 3; tries++) {
        dsm_handle h = dsm__anchor_load(DSM_ANCHOR_REGISTRY);
        int rc;

        if (reg.root_seg != NULL && h == dsm_segment_handle(reg.root_seg))
            return 0;
        if (reg.root_seg != NULL) {
            /* Not the published one any more: forget it (cannot happen without a reset). */
            dsm_segment *old = reg.root_seg;

            dsm_cancel_on_detach(old, root_detached, NULL);
            drop_state(false);
            dsm_detach(old);
        }
        if (h != 0)
            return attach_root(h);
        if (dsm_control_handle() == DSM_HANDLE_INVALID)
            return dsm__error(DSM_ESTATE, "dynamic shared memory is not initialised in this "
                                          "process");
        if (!create)
            return dsm__error(-ENOENT, "no shared memory name was ever registered");
        if ((rc = create_root()) <= 0)
            return rc;
        /* Lost the race to publish: attach the winner's on the next turn. */
    }
    return dsm__error(-EAGAIN, "could not set up the shared memory registry");
}

/* ---- entries ----------------------------------------------------------------------- */

static bool is_me(const struct dsm__procid *id)
{
    struct dsm__procid me;

    dsm__self_identity(&me);
    return dsm__procid_same(id, &me);
}

static void wake_waiters(void)
{
    struct reg_root *r = atomic_load(&reg.root);

    __atomic_fetch_add(&r->wake, 1, __ATOMIC_RELEASE);
    dsm__futex_wake(&r->wake, INT32_MAX);
}

/* Lock the entry of key if it still has generation gen and is ours: 1, 0 (not), or error. */
static int find_mine(const char *key, uint64_t gen, struct reg_entry **e)
{
    void *p;
    int rc = dsm_hash_find(reg.table, key, DSM_HASH_EXCLUSIVE, &p);

    if (rc <= 0)
        return rc;
    *e = p;
    if ((*e)->generation != gen || !is_me(&(*e)->owner)) {
        dsm_hash_release(reg.table, p);
        return 0;
    }
    return 1;
}

/* Remove the entry of key if it still has generation gen. */
static void remove_generation(const char *key, uint64_t gen)
{
    void *p;

    if (dsm_hash_find(reg.table, key, DSM_HASH_EXCLUSIVE, &p) == 1) {
        if (((struct reg_entry *)p)->generation == gen)
            dsm_hash_delete_entry(reg.table, p);
        else
            dsm_hash_release(reg.table, p);
    }
}

/* Give up a pin an entry's object may have (its owner died, or it is deleted). */
/*
 * Give up a pin an entry's object may have (its owner died, or it is
 * deleted).  mine: the area when this process has it attached already --
 * an area can be attached once per process, so a second attach to unpin
 * it would fail and leave the pin for ever.
 */
static void unpin_object(uint32_t type, dsm_handle h, dsm_area *mine)
{
    struct dsm__saved_error e;
    dsm_area *area;

    if (h == 0)
        return;
    dsm__error_save(&e, 0); /* failures here are expected (not pinned, gone) */
    if (type == DSM_NAMED_SEGMENT) {
        dsm_unpin_segment(h);
    } else if (mine != NULL) {
        dsm_area_unpin(mine);
    } else if (dsm_area_attach(h, &area) == 0) {
        dsm_area_unpin(area);
        dsm_area_detach(area);
    }
    dsm__error_restore(&e);
}

/* The area behind an object this process holds (NULL for a segment). */
static dsm_area *area_of(uint32_t type, void *object)
{
    if (object == NULL || type == DSM_NAMED_SEGMENT)
        return NULL;
    return type == DSM_NAMED_AREA ? (dsm_area *)object : table_area(object);
}

/* What get() asks for; also what a READY entry must agree with. */
struct want {
    const char *key;
    dsm_named_type type;
    size_t size;                       /* segment */
    const dsm_area_options *options;   /* area */
    const dsm_hash_params *params;     /* hash table */
    void *init;
    void *arg;
};

static int mismatch(const struct want *w, const struct reg_entry *e)
{
    if (e->type != (uint32_t)w->type)
        return dsm__error(-EEXIST, "shared memory name \"%s\" is of type %s, not %s", w->key,
                          dsm_named_type_name((dsm_named_type)e->type),
                          dsm_named_type_name(w->type));
    if (w->type == DSM_NAMED_SEGMENT && e->size != w->size)
        return dsm__error(-EEXIST, "named segment \"%s\" has %llu bytes, not %zu", w->key,
                          (unsigned long long)e->size, w->size);
    if (w->type == DSM_NAMED_HASH &&
        (e->key_size != w->params->key_size || e->entry_size != w->params->entry_size ||
         e->key_kind != (uint32_t)w->params->key_kind || e->funcs_id != w->params->funcs_id))
        return dsm__error(-EEXIST, "named hash table \"%s\" has key size %u, entry size %u, key "
                                   "kind %u and funcs_id %u; asked for %zu, %zu, %d and %u",
                          w->key, e->key_size, e->entry_size, e->key_kind, e->funcs_id,
                          w->params->key_size, w->params->entry_size, w->params->key_kind,
                          w->params->funcs_id);
    return 0;
}

static struct cached *new_record(const struct want *w, const struct reg_entry *e, void *object)
{
    size_t bytes = (sizeof(struct cached) + 63) / 64 * 64;
    struct cached *c = aligned_alloc(64, bytes);

    if (c == NULL)
        return NULL;
    memset(c, 0, bytes);
    memcpy(c->name, w->key, KEY_SIZE);
    c->hash = local_hash(w->key, strlen(w->key));
    c->type = w->type;
    c->generation = e->generation;
    c->size = e->size;
    c->key_size = e->key_size;
    c->entry_size = e->entry_size;
    c->key_kind = e->key_kind;
    c->funcs_id = e->funcs_id;
    c->object = object;
    atomic_store(&c->seen, __atomic_load_n(&atomic_load(&reg.root)->deletes, __ATOMIC_ACQUIRE));
    return c;
}

/* Detach an object this process made or attached by name (not pinned by it). */
static void release_object(dsm_named_type type, void *object)
{
    if (type == DSM_NAMED_SEGMENT) {
        dsm_detach(object);
    } else if (type == DSM_NAMED_AREA) {
        dsm_area_detach(object);
    } else {
        dsm_hash *t = object;
        dsm_area *a = table_area(t);

        dsm_hash_detach(t);
        dsm_area_detach(a);
    }
}

/* Keep an object for the process's life: pin its mapping, cache it. */
static int keep(const struct want *w, const struct reg_entry *e, void *object, void **out)
{
    struct cached *c;
    int rc;

    if (w->type == DSM_NAMED_SEGMENT)
        rc = dsm_pin_mapping(object);
    else
        rc = dsm_area_pin_mapping(w->type == DSM_NAMED_AREA ? object : table_area(object));
    if (rc < 0)
        return rc;
    if ((c = new_record(w, e, object)) == NULL)
        return dsm__error(-ENOMEM, "out of memory for the shared memory name cache");
    if ((rc = cache_add(c)) < 0) {
        free(c);
        return rc;
    }
    *out = object;
    return 0;
}

/* Attach the object a READY entry names: 0, -ENOENT if it is gone, or an error. */
static int attach_object(const struct want *w, const struct reg_entry *e, void **out)
{
    dsm_area *area = NULL;
    dsm_hash *t;
    int rc;

    if (w->type == DSM_NAMED_SEGMENT) {
        dsm_segment *seg;

        if ((rc = dsm_attach(e->handle, &seg)) < 0)
            return rc;
        *out = seg;
        return 0;
    }
    if ((rc = dsm_area_attach(e->handle, &area)) < 0)
        return rc;
    if (w->type == DSM_NAMED_AREA) {
        *out = area;
        return 0;
    }
    if ((rc = dsm_hash_attach(area, e->table, w->params, &t)) < 0) {
        dsm_area_detach(area);
        return rc;
    }
    *out = t;
    return 0;
}

/* Create, initialise, pin and publish the object of an entry we own (INIT, generation gen). */
static int create_object(const struct want *w, uint64_t gen, void **out)
{
    void *object = NULL;
    dsm_handle handle = 0;
    dsm_hash_handle th = 0;
    struct reg_entry *e, copy;
    dsm_area *area = NULL;
    bool pinned = false;
    int rc;

    if (w->type == DSM_NAMED_SEGMENT) {
        dsm_segment *seg;

        if ((rc = dsm_create(w->size, 0, &seg)) == 0) {
            object = seg;
            handle = dsm_segment_handle(seg);
        }
    } else {
        /*
         * An area outlives its creator only if pinned, and a process that
         * dies holding an unpinned area nobody else attached leaves it for
         * ever (its segments are pinned by the area itself).  So an area is
         * made, pinned and recorded in one critical section -- a death in
         * those few steps resets, like the registry's own creation -- and
         * from then on a taker-over can always attach it to unpin it.
         */
        dsm__critical_enter();
        if ((rc = dsm_area_create(w->options, &area)) == 0) {
            handle = dsm_area_handle(area);
            object = area;
            if (w->type == DSM_NAMED_HASH) {
                dsm_hash *t;

                if ((rc = dsm_hash_create(area, w->params, &t)) < 0) {
                    dsm_area_detach(area);
                    object = NULL;
                } else {
                    object = t;
                    th = dsm_hash_get_handle(t);
                }
            }
            if (rc == 0 && (rc = dsm_area_pin(area)) < 0) {
                release_object(w->type, object);
                object = NULL;
            }
            pinned = rc == 0;
        }
        if (rc < 0)
            dsm__critical_leave();
    }
    if (rc < 0)
        goto give_up;
    REG_STEP(); /* made, nothing recorded (an area: inside its critical section) */
    /* Record the handle before the object is pinned (see the header). */
    rc = find_mine(w->key, gen, &e);
    if (rc == 1) {
        e->handle = handle;
        e->table = th;
        dsm_hash_release(reg.table, e);
    }
    if (w->type != DSM_NAMED_SEGMENT)
        dsm__critical_leave();
    if (rc != 1)
        goto lost;
    REG_STEP(); /* recorded, not initialised */

    if (w->init) {
        if (w->type == DSM_NAMED_SEGMENT)
            rc = ((dsm_named_segment_init)w->init)(dsm_segment_address(object), w->size, w->arg);
        else if (w->type == DSM_NAMED_AREA)
            rc = ((dsm_named_area_init)w->init)(object, w->arg);
        else
            rc = ((dsm_named_hash_init)w->init)(object, w->arg);
        if (rc > 0)
            rc = -rc;
        if (rc < 0) {
            dsm__error(rc, "the initialiser of shared memory name \"%s\" failed (%s)", w->key,
                       dsm_strerror(rc));
            goto destroy;
        }
    }
    REG_STEP(); /* initialised, a segment not pinned yet */
    if (!pinned) {
        if ((rc = dsm_pin_segment(object)) < 0)
            goto destroy;
        pinned = true;
    }
    REG_STEP(); /* pinned, not ready */
    if ((rc = find_mine(w->key, gen, &e)) != 1)
        goto lost;
    e->state = REG_READY;
    copy = *e;
    dsm_hash_release(reg.table, e);
    wake_waiters();
    REG_STEP(); /* ready */
    return keep(w, &copy, object, out);

lost:
    /* Someone decided we were dead and took the entry: ours must not be used. */
    if (rc == 0)
        rc = dsm__error(-EAGAIN, "shared memory name \"%s\" was taken over while it was being "
                                 "initialised",
                        w->key);
    if (pinned)
        unpin_object(w->type, handle, area_of(w->type, object));
    release_object(w->type, object);
    wake_waiters();
    return rc;

destroy:
    {
        struct dsm__saved_error se;

        dsm__error_save(&se, rc);
        if (pinned)
            unpin_object(w->type, handle, area_of(w->type, object));
        release_object(w->type, object); /* unpinned: destroyed with our reference */
        remove_generation(w->key, gen);
        wake_waiters();
        dsm__error_restore(&se);
        return rc;
    }

give_up:
    {
        struct dsm__saved_error se;

        dsm__error_save(&se, rc);
        remove_generation(w->key, gen);
        wake_waiters();
        dsm__error_restore(&se);
        return dsm__error_prefix(rc, "could not create shared memory name: ");
    }
}

/* The slow path (mu held). */
static int get_locked(const struct want *w, void **out, bool *found)
{
    int rc;

    if ((rc = ensure_root(true)) < 0)
        return rc;
    for (;;) {
        struct reg_root *r = atomic_load(&reg.root);
        struct reg_entry *e, copy;
        uint32_t seq;
        void *p, *object;

        /* Most names exist: find them without a lock (and without writing). */
        if (dsm_hash_lookup(reg.table, w->key, &copy) == 1 && copy.state == REG_READY &&
            mismatch(w, &copy) == 0) {
            rc = attach_object(w, &copy, &object);
            if (rc == 0) {
                if ((rc = keep(w, &copy, object, out)) < 0) {
                    release_object(w->type, object);
                    return rc;
                }
                *found = true;
                return 0;
            }
            if (rc != -ENOENT)
                return dsm__error_prefix(rc, "could not attach shared memory name: ");
            /* Gone: the locked path below sees why (a deleter died half-way). */
        }
        rc = dsm_hash_find_or_insert(reg.table, w->key, &p);
        if (rc < 0)
            return rc;
        e = p;
        if (rc == 0) { /* new: ours to initialise */
            e->state = REG_INIT;
            e->type = (uint32_t)w->type;
            dsm__self_identity(&e->owner);
            e->generation = __atomic_add_fetch(&r->next_generation, 1, __ATOMIC_RELAXED);
            e->size = w->type == DSM_NAMED_SEGMENT ? w->size : 0;
            if (w->type == DSM_NAMED_HASH) {
                e->key_size = (uint32_t)w->params->key_size;
                e->entry_size = (uint32_t)w->params->entry_size;
                e->key_kind = (uint32_t)w->params->key_kind;
                e->funcs_id = w->params->funcs_id;
            }
            e->created_usec = now_usec();
            copy = *e;
            dsm_hash_release(reg.table, p);
            *found = false;
            REG_STEP(); /* inserted, nothing made */
            return create_object(w, copy.generation, out);
        }
        if ((rc = mismatch(w, e)) < 0) {
            dsm_hash_release(reg.table, p);
            return rc;
        }
        if (e->state == REG_READY) {
            copy = *e;
            dsm_hash_release(reg.table, p);
            rc = attach_object(w, &copy, &object);
            if (rc == -ENOENT) { /* a deleter died half-way: the entry is stale */
                remove_generation(w->key, copy.generation);
                continue;
            }
            if (rc < 0)
                return dsm__error_prefix(rc, "could not attach shared memory name: ");
            if ((rc = keep(w, &copy, object, out)) < 0) {
                release_object(w->type, object);
                return rc;
            }
            *found = true;
            return 0;
        }
        if (is_me(&e->owner)) {
            dsm_hash_release(reg.table, p);
            return dsm__error(-EDEADLK, "shared memory name \"%s\" is being initialised by "
                                        "this process (an initialiser asked for its own name)",
                              w->key);
        }
        if (dsm__procid_alive(&e->owner)) {
            seq = __atomic_load_n(&r->wake, __ATOMIC_ACQUIRE);
            dsm_hash_release(reg.table, p);
            dsm__futex_wait(&r->wake, seq, WAIT_SLICE_NS);
            continue;
        }
        /* Its initialiser died: take the entry over and start afresh. */
        copy = *e;
        dsm__self_identity(&e->owner);
        e->generation = __atomic_add_fetch(&r->next_generation, 1, __ATOMIC_RELAXED);
        e->handle = 0;
        e->table = 0;
        e->created_usec = now_usec();
        {
            uint64_t gen = e->generation;

            dsm_hash_release(reg.table, p);
            unpin_object(copy.type, copy.handle, NULL);
            *found = false;
            return create_object(w, gen, out);
        }
    }
}

/* The fast path: a record this process already has and may still trust. */
/*
 * The fast path, before anything is copied or checked twice: a name this
 * process already has, whose record it may still trust.
 * false: take the slow path, which also reports every error.
 */
static inline bool fast_get(const char *name, dsm_named_type type, size_t size,
                            const dsm_hash_params *params, void **out, bool *found)
{
    struct reg_root *r = atomic_load_explicit(&reg.root, memory_order_acquire);
    struct cached *c;
    size_t len;

    if (r == NULL || name == NULL || out == NULL)
        return false;
    len = strnlen(name, KEY_SIZE);
    if (len == 0 || len > DSM_NAMED_MAX_LEN)
        return false;
    c = cache_find_len(name, len, local_hash(name, len));
    if (c == NULL || c->type != type || atomic_load_explicit(&c->gone, memory_order_relaxed) ||
        atomic_load_explicit(&c->seen, memory_order_relaxed) !=
            __atomic_load_n(&r->deletes, __ATOMIC_ACQUIRE))
        return false;
    if (type == DSM_NAMED_SEGMENT ? c->size != size
        : type == DSM_NAMED_HASH
            ? (params == NULL || c->key_size != params->key_size ||
               c->entry_size != params->entry_size || c->key_kind != (uint32_t)params->key_kind ||
               c->funcs_id != params->funcs_id)
            : false)
        return false;
    *out = c->object;
    if (found)
        *found = true;
    return true;
}

/* Recheck a record whose delete count moved (mu held): still its entry? */
static void *recheck(const struct want *w)
{
    struct reg_root *r = atomic_load(&reg.root);
    struct cached *c;
    struct reg_entry e;
    uint64_t deletes;

    if (r == NULL || (c = cache_find(w->key)) == NULL ||
        atomic_load(&c->gone))
        return NULL;
    deletes = __atomic_load_n(&r->deletes, __ATOMIC_ACQUIRE);
    if (dsm_hash_lookup(reg.table, w->key, &e) == 1 && e.state == REG_READY &&
        e.generation == c->generation) {
        void *object;

        atomic_store(&c->seen, deletes);
        /* NULL when it differs from what is asked: the slow path says how. */
        return fast_get(w->key, w->type, w->size, w->params, &object, NULL) ? object : NULL;
    }
    atomic_store(&c->gone, true); /* its entry went: the mapping stays, the name moves on */
    return NULL;
}

static int get(const struct want *w, void **out, bool *found)
{
    bool f = false;
    void *object = NULL;
    int rc = 0;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return a named %s", dsm_named_type_name(w->type));
    *out = NULL;
    pthread_mutex_lock(&reg.mu);
    if (!reg.atfork_done) {
        pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
        reg.atfork_done = true;
    }
    if (reg.root_seg != NULL && (object = recheck(w)) != NULL) {
        f = true;
        rc = 0;
    } else {
        rc = get_locked(w, &object, &f);
    }
    pthread_mutex_unlock(&reg.mu);
    if (rc < 0)
        return rc;
    if (found)
        *found = f;
    *out = object;
    return 0;
}

/* ---- the public functions ------------------------------------------------------------ */


int dsm_named_segment_get(const char *name, size_t size, dsm_named_segment_init init,
                          void *arg, dsm_segment **out, bool *found)
{
    char key[KEY_SIZE];
    struct want w = {.key = key, .type = DSM_NAMED_SEGMENT, .size = size,
                     .init = (void *)init, .arg = arg};
    int rc;

    if (fast_get(name, DSM_NAMED_SEGMENT, size, NULL, (void **)out, found))
        return 0;
    if ((rc = make_key(name, key)) < 0)
        return rc;
    if (size == 0)
        return dsm__error(-EINVAL, "named segment \"%s\" must have a size", key);
    return get(&w, (void **)out, found);
}

int dsm_named_area_get(const char *name, const dsm_area_options *options,
                       dsm_named_area_init init, void *arg, dsm_area **out, bool *found)
{
    char key[KEY_SIZE];
    struct want w = {.key = key, .type = DSM_NAMED_AREA, .options = options,
                     .init = (void *)init, .arg = arg};
    int rc;

    if (fast_get(name, DSM_NAMED_AREA, 0, NULL, (void **)out, found))
        return 0;
    if ((rc = make_key(name, key)) < 0)
        return rc;
    return get(&w, (void **)out, found);
}

int dsm_named_hash_get(const char *name, const dsm_hash_params *params,
                       dsm_named_hash_init init, void *arg, dsm_hash **out, bool *found)
{
    char key[KEY_SIZE];
    struct want w = {.key = key, .type = DSM_NAMED_HASH, .params = params,
                     .init = (void *)init, .arg = arg};
    int rc;

    if (fast_get(name, DSM_NAMED_HASH, 0, params, (void **)out, found))
        return 0;
    if ((rc = make_key(name, key)) < 0)
        return rc;
    if (params == NULL)
        return dsm__error(-EINVAL, "named hash table \"%s\" needs its parameters", key);
    return get(&w, (void **)out, found);
}

int dsm_named_delete(const char *name)
{
    char key[KEY_SIZE];
    struct reg_entry copy;
    struct cached *c;
    void *p;
    int rc;

    if ((rc = make_key(name, key)) < 0)
        return rc;
    pthread_mutex_lock(&reg.mu);
    if ((rc = ensure_root(false)) < 0)
        goto out;
    rc = dsm_hash_find(reg.table, key, DSM_HASH_EXCLUSIVE, &p);
    if (rc < 0)
        goto out;
    if (rc == 0) {
        rc = dsm__error(-ENOENT, "no shared memory is named \"%s\"", key);
        goto out;
    }
    copy = *(struct reg_entry *)p;
    dsm_hash_release(reg.table, p);
    if (copy.state != REG_READY && dsm__procid_alive(&copy.owner)) {
        rc = dsm__error(-EBUSY, "shared memory name \"%s\" is being initialised by process %d",
                        key, (int)copy.owner.pid);
        goto out;
    }
    /* Unpin first, remove second: a death between leaves a stale entry, not a lost pin. */
    c = cache_find(key);
    unpin_object(copy.type, copy.handle,
                 c && !atomic_load(&c->gone) && c->generation == copy.generation
                     ? area_of(c->type, c->object)
                     : NULL);
    REG_STEP(); /* delete: unpinned, entry still there */
    remove_generation(key, copy.generation);
    __atomic_fetch_add(&atomic_load(&reg.root)->deletes, 1, __ATOMIC_RELEASE);
    if (c != NULL)
        atomic_store(&c->gone, true);
    rc = 0;
out:
    pthread_mutex_unlock(&reg.mu);
    return rc;
}

int dsm_named_list(dsm_named_info **out, size_t *count)
{
    dsm_named_info *list = NULL;
    size_t n = 0, cap = 0;
    dsm_hash_scan scan;
    void *p;
    int rc;

    if (out == NULL || count == NULL)
        return dsm__error(-EINVAL, "invalid argument to dsm_named_list");
    *out = NULL;
    *count = 0;
    pthread_mutex_lock(&reg.mu);
    if ((rc = ensure_root(false)) < 0) {
        pthread_mutex_unlock(&reg.mu);
        return rc == -ENOENT ? 0 : rc; /* nothing was ever named */
    }
    if ((rc = dsm_hash_scan_begin(reg.table, DSM_HASH_SHARED, &scan)) < 0)
        goto out;
    while ((rc = dsm_hash_scan_next(&scan, &p)) == 1) {
        const struct reg_entry *e = p;
        dsm_named_info *i;

        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            dsm_named_info *nl = realloc(list, ncap * sizeof(*nl));

            if (nl == NULL) {
                rc = dsm__error(-ENOMEM, "out of memory listing shared memory names");
                break;
            }
            list = nl;
            cap = ncap;
        }
        i = &list[n++];
        memset(i, 0, sizeof(*i));
        memcpy(i->name, e->name, KEY_SIZE);
        i->name[DSM_NAMED_MAX_LEN] = '\0';
        i->type = (dsm_named_type)e->type;
        i->ready = e->state == REG_READY;
        i->initialiser = (pid_t)e->owner.pid;
        i->handle = e->handle;
        i->size = e->size;
        i->created_usec = e->created_usec;
    }
    dsm_hash_scan_end(&scan);
out:
    pthread_mutex_unlock(&reg.mu);
    if (rc < 0) {
        free(list);
        return rc;
    }
    /* Sizes and holders from the control table, outside every lock. */
    for (size_t k = 0; k < n; k++) {
        uint64_t size;
        uint32_t holders;

        if (list[k].handle != 0 && dsm__segment_usage(list[k].handle, &size, &holders) == 0) {
            list[k].holders = holders;
            if (list[k].type != DSM_NAMED_SEGMENT)
                list[k].size = size;
        }
    }
    *out = list;
    *count = n;
    return 0;
}
