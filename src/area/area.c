/* SPDX-License-Identifier: MIT */
/*
 * area.c - creating, attaching, growing and releasing dynamic shared areas.
 *
 * PostgreSQL's dsa keeps an area alive with a reference count in its
 * control segment and pins every segment, so that a segment survives while
 * no process happens to map it (processes map segments lazily).  We do the
 * same, with two differences.  The count is a table of the attached
 * processes' identities rather than a number, so the attachment of a
 * process that died is found and dropped instead of keeping the area (and
 * its pinned segments) alive for ever.  And an area gives segments back:
 * dsm_area_trim() destroys empty ones, and the others notice through a
 * generation number and unmap their stale mappings lazily.
 *
 * Every segment an area maps carries an on-detach callback, so whatever
 * detaches the first of them (dsm_area_detach, the resource owner of the
 * first segment, dsm_detach_all at exit) releases the whole area while all
 * its mappings still exist: this thread's cache and the process's other
 * caches go back first, then the process's attachment.
 *
 * Lock order: the area lock, then dsm's own locks (dsm_create and
 * dsm_attach are called with the area lock held); `mu` (mappings) is taken
 * inside the area lock or alone.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../dsm/services.h"
#include "area_int.h"
#include "lock_int.h"

void (*dsm__area_step_hook)(void);

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static dsm_area *registry;
static uint64_t next_id = 1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void reclaim_listener(const struct dsm__procid *dead, const dsm_handle *mapped,
                             int nmapped);

static void after_fork_child(void)
{
    /* The parent's areas are not ours: forget them without touching anything. */
    pthread_mutex_init(&reg_mu, NULL);
    registry = NULL;
}

static void init_once(void)
{
    dsm__area_classes_init();
    pthread_atfork(NULL, NULL, after_fork_child);
    dsm__add_reclaim_listener(reclaim_listener);
}

/* ---- validation ------------------------------------------------------------ */

int dsm__area_corrupt(dsm_area *a, const char *what)
{
    (void)a;
    return dsm__error(DSM_ECORRUPT, "shared memory area is corrupt: %s", what);
}

static size_t pagemap_bytes(uint32_t npages)
{
    return sizeof(struct seg_hdr) + (size_t)npages * sizeof(struct pg);
}

/* Check a segment header read from shared memory against what it must say. */
static int check_seg(const struct seg_hdr *sh, size_t hdr_off, size_t maplen, uint64_t area_id,
                     uint32_t index)
{
    if (sh->magic != SEG_MAGIC || sh->area_id != area_id || sh->index != index)
        return dsm__error(DSM_ECORRUPT, "segment %u of a shared memory area has a bad header",
                          index);
    if (sh->npages == 0 || sh->npages > MAX_SEG_PAGES || (uint64_t)sh->npages * PAGE > maplen ||
        sh->first_page > sh->npages ||
        hdr_off + pagemap_bytes(sh->npages) > (uint64_t)sh->first_page * PAGE ||
        sh->free_pages > sh->npages)
        return dsm__error(DSM_ECORRUPT, "segment %u of a shared memory area has bad bounds",
                          index);
    return 0;
}

static int check_hdr(const struct area_hdr *h, size_t maplen)
{
    if (maplen < sizeof(*h) || h->magic != AREA_MAGIC)
        return dsm__error(DSM_ECORRUPT, "not a dynshm shared memory area (bad magic)");
    if (h->version != AREA_VERSION)
        return dsm__error(DSM_ECORRUPT, "shared memory area has layout version %u, expected %u",
                          h->version, AREA_VERSION);
    if (h->seg0_size > maplen || h->nsegmax == 0 || h->nsegmax > DSM_AREA_MAX_SEGMENTS ||
        h->nsegs > h->nsegmax || h->nattach == 0 || h->nattach > 4096 || h->ncaches > 4096 ||
        h->attach_off < sizeof(*h) ||
        (uint64_t)h->attach_off + (uint64_t)h->nattach * sizeof(struct attach_ent) >
            h->caches_off ||
        (uint64_t)h->caches_off + (uint64_t)h->ncaches * sizeof(struct cache) > h->segtab_off ||
        (uint64_t)h->segtab_off + (uint64_t)h->nsegmax * sizeof(struct seg_ent) >
            h->seg0hdr_off ||
        h->seg0hdr_off % 8 || h->caches_off % 8 || h->segtab_off % 8 || h->attach_off % 8 ||
        (uint64_t)h->seg0hdr_off + sizeof(struct seg_hdr) > h->seg0_size)
        return dsm__error(DSM_ECORRUPT, "shared memory area header has bad bounds");
    return check_seg((const struct seg_hdr *)(const void *)((const char *)h + h->seg0hdr_off),
                     h->seg0hdr_off, h->seg0_size, h->area_id, 0);
}

/* ---- the area lock ---------------------------------------------------------- */

int dsm__area_lock(dsm_area *a)
{
    struct area_hdr *h = a->hdr;
    int rc;

    if (__atomic_load_n(&h->inconsistent, __ATOMIC_ACQUIRE))
        return dsm__error(-ENOTRECOVERABLE, "shared memory area is inconsistent: a process died "
                                            "while updating it");
    /* Counted from the instant it is held: a death while holding escalates. */
    rc = dsm__lock_acquire_critical(&h->lock, -1);
    if (rc == -EOWNERDEAD) {
        __atomic_store_n(&h->inconsistent, 1, __ATOMIC_RELEASE);
        dsm_lock_release(&h->lock); /* not repaired: later lockers get -ENOTRECOVERABLE */
        dsm__critical_leave();
        dsm__log(DSM_LOG_WARNING, "a process died holding the lock of a shared memory area; "
                                  "the area is now inconsistent");
        return dsm__error(-ENOTRECOVERABLE, "shared memory area is inconsistent: a process died "
                                            "while updating it");
    }
    if (rc == -ENOTRECOVERABLE) {
        __atomic_store_n(&h->inconsistent, 1, __ATOMIC_RELEASE);
        return dsm__error(-ENOTRECOVERABLE, "shared memory area is inconsistent: a process died "
                                            "while updating it");
    }
    return rc < 0 ? rc : 0;
}

void dsm__area_unlock(dsm_area *a)
{
    dsm_lock_release(&a->hdr->lock);
    dsm__critical_leave();
}

/* ---- the local view ------------------------------------------------------------ */

static void on_segment_detach(dsm_segment *seg, void *arg);

static void local_free(dsm_area *a)
{
    if (a == NULL)
        return;
    pthread_mutex_destroy(&a->mu);
    free(a->sh);
    free(a->pm);
    free(a->seg);
    free(a->handle);
    free(a->np);
    free(a->fp);
    free(a);
}

static dsm_area *local_new(uint32_t nsegmax)
{
    dsm_area *a = calloc(1, sizeof(*a));

    if (a == NULL)
        return NULL;
    pthread_mutex_init(&a->mu, NULL);
    a->nsegs = nsegmax;
    /* Always the full index range: the inline conversion masks instead of comparing. */
    nsegmax = DSM_AREA_MAX_SEGMENTS;
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    a->sh = calloc(nsegmax, sizeof(*a->sh));
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    a->pm = calloc(nsegmax, sizeof(*a->pm));
    /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
    a->seg = calloc(nsegmax, sizeof(*a->seg));
    a->handle = calloc(nsegmax, sizeof(*a->handle));
    a->np = calloc(nsegmax, sizeof(*a->np));
    a->fp = calloc(nsegmax, sizeof(*a->fp));
    if (!a->sh || !a->pm || !a->seg || !a->handle || !a->np || !a->fp) {
        local_free(a);
        return NULL;
    }
    return a;
}

/* The tables of a validated header, remembered so they are never re-read. */
static void set_views(dsm_area *a, struct area_hdr *h)
{
    a->hdr = h;
    a->caches = area_caches(h);
    a->attach = area_attach(h);
    a->segtab = area_segtab(h);
    a->ncaches = h->ncaches;
    a->nattach = h->nattach;
}

/* Record a mapping of segment s (mu held or not yet shared). */
static void local_set(dsm_area *a, uint32_t s, char *addr, struct seg_hdr *sh, size_t hdr_off,
                      dsm_segment *seg, dsm_handle handle)
{
    a->sh[s] = sh;
    a->pm[s] = (struct pg *)(void *)((char *)sh + sizeof(*sh));
    (void)hdr_off;
    a->np[s] = sh->npages;
    a->fp[s] = sh->first_page;
    a->map[s].limit = (uint64_t)sh->npages * PAGE;
    a->seg[s] = seg;
    a->handle[s] = handle;
    __atomic_store_n(&a->map[s].base, addr, __ATOMIC_RELEASE);
}

static void registry_add(dsm_area *a)
{
    pthread_mutex_lock(&reg_mu);
    a->id = next_id++;
    a->next = registry;
    registry = a;
    pthread_mutex_unlock(&reg_mu);
}

static void registry_remove(dsm_area *a)
{
    pthread_mutex_lock(&reg_mu);
    for (dsm_area **pp = &registry; *pp; pp = &(*pp)->next)
        if (*pp == a) {
            *pp = a->next;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
}

/* Is area id still attached in this process?  Returns it with reg_mu held, or NULL. */
dsm_area *dsm__area_find_locked(uint64_t id);
dsm_area *dsm__area_find_locked(uint64_t id)
{
    pthread_mutex_lock(&reg_mu);
    for (dsm_area *a = registry; a; a = a->next)
        if (a->id == id)
            return a;
    pthread_mutex_unlock(&reg_mu);
    return NULL;
}

void dsm__area_find_unlock(void);
void dsm__area_find_unlock(void)
{
    pthread_mutex_unlock(&reg_mu);
}

/* ---- mapping segments ------------------------------------------------------------ */

int dsm__area_map(dsm_area *a, uint32_t s)
{
    struct seg_ent *st = a->segtab;
    dsm_resowner *prev;
    dsm_segment *seg;
    dsm_handle h;
    int rc;

    if (s >= a->nsegs)
        return dsm__error(-EINVAL, "relative pointer names segment %u, beyond the area's %u",
                          s, a->nsegs);
    pthread_mutex_lock(&a->mu);
    h = __atomic_load_n(&st[s].handle, __ATOMIC_ACQUIRE);
    if (a->map[s].base && a->handle[s] == h) {
        pthread_mutex_unlock(&a->mu);
        return 0;
    }
    if (h == DSM_HANDLE_INVALID || s == 0) {
        pthread_mutex_unlock(&a->mu);
        return dsm__error(-ENOENT, "segment %u of the shared memory area does not exist", s);
    }
    if (a->seg[s]) { /* a stale mapping of a destroyed segment whose index was reused */
        dsm_segment *old = a->seg[s];

        a->map[s].base = NULL;
        a->seg[s] = NULL;
        dsm_cancel_on_detach(old, on_segment_detach, a);
        dsm_detach(old);
    }
    prev = dsm_resowner_set_current(NULL); /* the area owns it, not the caller's owner */
    rc = dsm_attach(h, &seg);
    dsm_resowner_set_current(prev);
    if (rc < 0) {
        pthread_mutex_unlock(&a->mu);
        return rc;
    }
    rc = check_seg(dsm_segment_address(seg), 0, dsm_segment_map_length(seg), a->hdr->area_id, s);
    if (rc == 0)
        rc = dsm_on_detach(seg, on_segment_detach, a);
    if (rc < 0) {
        char msg[256];

        snprintf(msg, sizeof(msg), "%s", dsm_errmsg());
        dsm_detach(seg);
        pthread_mutex_unlock(&a->mu);
        return dsm__error(rc, "%s", msg);
    }
    local_set(a, s, dsm_segment_address(seg), dsm_segment_address(seg), 0, seg, h);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

void dsm__area_sync_freed(dsm_area *a)
{
    struct seg_ent *st = a->segtab;
    uint32_t gen = __atomic_load_n(&a->hdr->freed_gen, __ATOMIC_ACQUIRE);

    if (gen == a->seen_gen)
        return;
    pthread_mutex_lock(&a->mu);
    for (uint32_t s = 1; s < a->nsegs; s++) {
        dsm_segment *old = a->seg[s];

        if (old == NULL || __atomic_load_n(&st[s].handle, __ATOMIC_ACQUIRE) == a->handle[s])
            continue;
        a->map[s].base = NULL;
        a->seg[s] = NULL;
        dsm_cancel_on_detach(old, on_segment_detach, a);
        dsm_detach(old);
    }
    a->seen_gen = gen;
    pthread_mutex_unlock(&a->mu);
}

/* ---- growing ------------------------------------------------------------------------ */

static uint32_t meta_pages(uint32_t npages, size_t hdr_off)
{
    return (uint32_t)((hdr_off + pagemap_bytes(npages) + PAGE - 1) / PAGE);
}

int dsm__area_new_segment(dsm_area *a, uint64_t min_pages, uint32_t *out)
{
    struct area_hdr *h = a->hdr;
    struct seg_ent *st = a->segtab;
    uint64_t size, need, live = 0;
    uint32_t s, free_index = 0, npages;
    dsm_resowner *prev;
    dsm_segment *seg;
    dsm_handle handle;
    int rc;

    for (s = 1; s < a->nsegs; s++) {
        if (st[s].handle != 0)
            live++;
        else if (free_index == 0)
            free_index = s;
    }
    if (free_index == 0)
        return dsm__error(-ENOMEM, "shared memory area has no free segment slot (%u in use)",
                          a->nsegs);
    /* Geometric: the size doubles every two segments, up to the maximum. */
    size = h->init_seg_size;
    for (uint64_t i = 0; i < (live + 1) / 2 && size < h->max_seg_size; i++)
        size *= 2;
    if (size > h->max_seg_size)
        size = h->max_seg_size;
    need = (min_pages + meta_pages((uint32_t)(min_pages + 1), 0) + 1) * PAGE;
    if (min_pages >= MAX_SEG_PAGES || need > (uint64_t)MAX_SEG_PAGES * PAGE)
        return dsm__error(-ENOMEM, "allocation of %llu pages is larger than a segment can be",
                          (unsigned long long)min_pages);
    if (size < need)
        size = need;
    size = (size + PAGE - 1) & ~(PAGE - 1);
    if (h->total_size + size > h->max_total_size) {
        if (h->total_size + need > h->max_total_size)
            return dsm__error_silent(-ENOMEM);
        size = (h->max_total_size - h->total_size) & ~(PAGE - 1);
    }
    prev = dsm_resowner_set_current(NULL);
    rc = dsm_create(size, 0, &seg);
    dsm_resowner_set_current(prev);
    if (rc < 0)
        return rc;
    AREA_STEP();
    if ((rc = dsm_pin_segment(seg)) < 0) {
        dsm_detach(seg);
        return rc;
    }
    AREA_STEP();
    npages = (uint32_t)(size / PAGE);
    dsm__seg_init(dsm_segment_address(seg),
                  (struct pg *)(void *)((char *)dsm_segment_address(seg) + sizeof(struct seg_hdr)),
                  h->area_id, free_index, npages, meta_pages(npages, 0));
    handle = dsm_segment_handle(seg);
    if ((rc = dsm_on_detach(seg, on_segment_detach, a)) < 0) {
        dsm_unpin_segment(handle);
        dsm_detach(seg);
        return rc;
    }
    pthread_mutex_lock(&a->mu);
    if (a->seg[free_index]) { /* stale mapping of an older segment at this index */
        dsm_segment *old = a->seg[free_index];

        a->map[free_index].base = NULL;
        a->seg[free_index] = NULL;
        dsm_cancel_on_detach(old, on_segment_detach, a);
        dsm_detach(old);
    }
    local_set(a, free_index, dsm_segment_address(seg), dsm_segment_address(seg), 0, seg, handle);
    pthread_mutex_unlock(&a->mu);
    st[free_index].size = size;
    AREA_STEP();
    __atomic_store_n(&st[free_index].handle, handle, __ATOMIC_RELEASE);
    if (free_index >= h->nsegs)
        h->nsegs = free_index + 1;
    h->total_size += size;
    AREA_STEP();
    *out = free_index;
    return 0;
}

/* ---- creating ------------------------------------------------------------------------ */

struct layout {
    uint32_t nattach, ncaches, nsegmax;
    uint32_t attach_off, caches_off, segtab_off, seg0hdr_off;
};

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

static void plan(struct layout *l)
{
    l->attach_off = (uint32_t)align8(sizeof(struct area_hdr));
    l->caches_off = (uint32_t)align8(l->attach_off + l->nattach * sizeof(struct attach_ent));
    l->segtab_off = (uint32_t)align8(l->caches_off + l->ncaches * sizeof(struct cache));
    l->seg0hdr_off = (uint32_t)align8(l->segtab_off + l->nsegmax * sizeof(struct seg_ent));
}

static int init_area(char *place, size_t size, const dsm_area_options *o, bool in_place,
                     dsm_handle handle, struct area_hdr **out)
{
    struct layout l = {0};
    struct area_hdr *h = (struct area_hdr *)(void *)place;
    uint32_t npages, first;
    uint64_t id;

    l.nattach = 128;
    l.nsegmax = o && o->max_segments ? o->max_segments : (in_place ? 16 : DSM_AREA_MAX_SEGMENTS);
    if (l.nsegmax > DSM_AREA_MAX_SEGMENTS)
        return dsm__error(-EINVAL, "an area has at most %d segments", DSM_AREA_MAX_SEGMENTS);
    if (o && o->caches)
        l.ncaches = o->caches > 4096 ? 4096 : o->caches;
    else
        l.ncaches = in_place ? (uint32_t)(size / (64 * 1024)) : DSM_AREA_DEFAULT_CACHES;
    if (l.ncaches > DSM_AREA_DEFAULT_CACHES && !(o && o->caches))
        l.ncaches = DSM_AREA_DEFAULT_CACHES;
    plan(&l);
    npages = (uint32_t)(size / PAGE);
    if (size / PAGE > MAX_SEG_PAGES)
        return dsm__error(-EINVAL, "an area segment must be smaller than 16 GiB");
    first = meta_pages(npages, l.seg0hdr_off);
    if (npages < first + 4)
        return dsm__error(-EINVAL, "%zu bytes are too few for a shared memory area (its "
                                   "header alone takes %u pages)", size, first);
    if (dsm__random_bytes(&id, sizeof(id)) < 0)
        return -EIO;
    memset(h, 0, l.seg0hdr_off);
    h->version = AREA_VERSION;
    h->hdr_size = l.seg0hdr_off;
    h->area_id = id;
    dsm_lock_init(&h->lock);
    h->in_place = in_place;
    h->nattach = l.nattach;
    h->ncaches = l.ncaches;
    h->nsegmax = l.nsegmax;
    h->nsegs = 1;
    h->seg0_size = size;
    h->init_seg_size = o && o->init_segment_size ? o->init_segment_size : 1024 * 1024;
    if (in_place && !(o && o->init_segment_size))
        h->init_seg_size = size < 1024 * 1024 ? 1024 * 1024 : size;
    h->max_seg_size = o && o->max_segment_size ? o->max_segment_size : (size_t)1 << 30;
    if (h->max_seg_size > (uint64_t)(MAX_SEG_PAGES - 1) * PAGE)
        h->max_seg_size = (uint64_t)(MAX_SEG_PAGES - 1) * PAGE;
    if (h->init_seg_size > h->max_seg_size)
        h->init_seg_size = h->max_seg_size;
    h->max_total_size = o && o->max_total_size ? o->max_total_size : UINT64_MAX;
    h->total_size = size;
    for (int c = 0; c < NCLASS; c++)
        h->partial[c] = NIL;
    h->attach_off = l.attach_off;
    h->caches_off = l.caches_off;
    h->segtab_off = l.segtab_off;
    h->seg0hdr_off = l.seg0hdr_off;
    for (uint32_t i = 0; i < l.ncaches; i++)
        area_caches(h)[i].magic = CACHE_MAGIC;
    area_segtab(h)[0].handle = handle;
    area_segtab(h)[0].size = size;
    dsm__seg_init((struct seg_hdr *)(void *)(place + l.seg0hdr_off),
                  (struct pg *)(void *)(place + l.seg0hdr_off + sizeof(struct seg_hdr)), id, 0,
                  npages, first);
    __atomic_store_n(&h->magic, AREA_MAGIC, __ATOMIC_RELEASE);
    *out = h;
    return 0;
}

/* Add this process to the attach table (locked); -EEXIST if it is there already. */
static int add_attachment(dsm_area *a, bool check_live)
{
    struct attach_ent *t = a->attach;
    struct dsm__procid me;
    int free_i = -1, live = 0;

    dsm__self_identity(&me);
    for (uint32_t i = 0; i < a->nattach; i++) {
        if (t[i].id.pid == 0) {
            if (free_i < 0)
                free_i = (int)i;
            continue;
        }
        if (dsm__procid_same(&t[i].id, &me))
            return dsm__error(-EEXIST, "this process has already attached the shared memory "
                                       "area");
        live++;
    }
    if (check_live && live == 0 && !a->hdr->pinned)
        return dsm__error(-ENOENT, "the shared memory area is being destroyed");
    if (free_i < 0)
        return dsm__error(-EMFILE, "too many processes attached to the shared memory area");
    AREA_STEP();
    t[free_i].id = me;
    return 0;
}

/* Address segment 0 in this process's view (local only; done again by finish_local). */
static void map_seg0(dsm_area *a, char *place, dsm_segment *seg0)
{
    struct area_hdr *h = a->hdr;

    local_set(a, 0, place, (struct seg_hdr *)(void *)(place + h->seg0hdr_off), h->seg0hdr_off,
              seg0, a->segtab[0].handle);
    a->map[0].limit = h->seg0_size;
}

static int finish_local(dsm_area *a, char *place, dsm_segment *seg0, dsm_segment *host)
{
    int rc = 0;

    map_seg0(a, place, seg0);
    a->host = host;
    a->seen_gen = a->hdr->freed_gen;
    if (seg0)
        rc = dsm_on_detach(seg0, on_segment_detach, a);
    else if (host)
        rc = dsm_on_detach(host, on_segment_detach, a);
    return rc;
}

static int create_common(char *place, size_t size, const dsm_area_options *o, bool in_place,
                         dsm_segment *seg0, dsm_segment *host, dsm_area **out)
{
    struct area_hdr *h = NULL;
    dsm_area *a;
    int rc;

    rc = init_area(place, size, o, in_place, seg0 ? dsm_segment_handle(seg0) : 0, &h);
    if (rc < 0 || h == NULL)
        return rc < 0 ? rc : -EINVAL;
    if ((a = local_new(h->nsegmax)) == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    set_views(a, h);
    if ((rc = add_attachment(a, false)) < 0 || (rc = finish_local(a, place, seg0, host)) < 0) {
        h->magic = 0;
        local_free(a);
        return rc;
    }
    registry_add(a);
    *out = a;
    return 0;
}

int dsm_area_create(const dsm_area_options *options, dsm_area **out)
{
    size_t size = options && options->init_segment_size ? options->init_segment_size
                                                        : 1024 * 1024;
    dsm_segment *seg;
    int rc;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the area");
    *out = NULL;
    pthread_once(&once, init_once);
    size = (size + PAGE - 1) & ~(PAGE - 1);
    if (size < 256 * 1024)
        size = 256 * 1024; /* room for the header, its tables and some pages */
    if ((rc = dsm_create(size, 0, &seg)) < 0)
        goto fail;
    if ((rc = dsm_pin_segment(seg)) < 0)
        goto fail_detach;
    if ((rc = create_common(dsm_segment_address(seg), size, options, false, seg, NULL, out)) < 0)
        goto fail_unpin;
    return 0;

fail_unpin:
    dsm_unpin_segment(dsm_segment_handle(seg));
fail_detach: {
    char msg[256];

    snprintf(msg, sizeof(msg), "%s", dsm_errmsg());
    dsm_detach(seg);
    dsm__error(rc, "%s", msg);
}
fail:
    return rc;
}

int dsm_area_create_in_place(void *place, size_t size, const dsm_area_options *options,
                             dsm_segment *host, dsm_area **out)
{
    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the area");
    *out = NULL;
    pthread_once(&once, init_once);
    if (place == NULL || ((uintptr_t)place & 15) != 0)
        return dsm__error(-EINVAL, "an in-place area must start at a 16-byte aligned address");
    if (size < 64 * 1024)
        return dsm__error(-EINVAL, "an in-place area needs at least 64 KiB, not %zu bytes",
                          size);
    return create_common(place, size, options, true, NULL, host, out);
}

static int attach_common(char *place, size_t maplen, dsm_segment *seg0, dsm_segment *host,
                         dsm_area **out)
{
    struct area_hdr *h = (struct area_hdr *)(void *)place;
    dsm_area *a;
    int rc;

    if ((rc = check_hdr(h, maplen)) < 0)
        return rc;
    if ((a = local_new(h->nsegmax)) == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    set_views(a, h);
    /*
     * Segment 0 must be addressable before the reclaim below: returning a
     * dead process's cached blocks follows links stored in them, which may
     * lie in segment 0.  Without it the chain read as corrupt and the
     * blocks were lost for good (a worker attaching after another had
     * exited, about once in a hundred runs of examples/hash_wordcount).
     */
    map_seg0(a, place, seg0);
    if ((rc = dsm__area_lock(a)) < 0)
        goto fail;
    dsm__area_reclaim_dead(a);
    rc = add_attachment(a, true);
    dsm__area_unlock(a);
    if (rc < 0)
        goto fail;
    if ((rc = finish_local(a, place, seg0, host)) < 0)
        goto fail; /* the attachment is dropped as dead-or-gone by the next reclaim */
    registry_add(a);
    *out = a;
    return 0;

fail:
    local_free(a);
    return rc;
}

int dsm_area_attach(dsm_handle handle, dsm_area **out)
{
    dsm_segment *seg;
    int rc;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the area");
    *out = NULL;
    pthread_once(&once, init_once);
    if ((rc = dsm_attach(handle, &seg)) < 0)
        return rc;
    if ((rc = attach_common(dsm_segment_address(seg), dsm_segment_map_length(seg), seg, NULL,
                            out)) < 0) {
        char msg[256];

        snprintf(msg, sizeof(msg), "%s", dsm_errmsg());
        dsm_detach(seg);
        return dsm__error(rc, "%s", msg);
    }
    return 0;
}

int dsm_area_attach_in_place(void *place, dsm_segment *host, dsm_area **out)
{
    size_t maplen = SIZE_MAX;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the area");
    *out = NULL;
    pthread_once(&once, init_once);
    if (place == NULL || ((uintptr_t)place & 15) != 0)
        return dsm__error(-EINVAL, "an in-place area must start at a 16-byte aligned address");
    if (host) {
        char *b = dsm_segment_address(host);

        if ((char *)place < b || (char *)place >= b + dsm_segment_map_length(host))
            return dsm__error(-EINVAL, "the in-place area is not inside its host segment");
        maplen = (size_t)(b + dsm_segment_map_length(host) - (char *)place);
    }
    return attach_common(place, maplen, NULL, host, out);
}

/* ---- releasing ---------------------------------------------------------------------- */

/*
 * Give back this process's caches and attachment; if it was the last
 * reference, unpin every segment.  `except`: a segment dsm is detaching
 * right now (its callback called us), not to be detached again.
 */
static void release(dsm_area *a, dsm_segment *except)
{
    struct area_hdr *h = a->hdr;
    dsm_handle handles[DSM_AREA_MAX_SEGMENTS];
    struct dsm__procid me;
    uint32_t nh = 0;
    bool last = false;

    a->detaching = true;
    registry_remove(a);
    dsm__area_forget_caches(a);
    dsm__self_identity(&me);
    if (dsm__area_lock(a) == 0) {
        struct attach_ent *t = a->attach;
        int live = 0;

        dsm__area_reclaim_proc(a, &me); /* every cache of this process, then its attachment */
        dsm__area_reclaim_dead(a);
        for (uint32_t i = 0; i < a->nattach; i++)
            live += t[i].id.pid != 0;
        if (live == 0 && !h->pinned) {
            struct seg_ent *st = a->segtab;

            last = true;
            /* Local knowledge decides what is ours to unpin, never a shared flag. */
            for (uint32_t s = a->seg[0] ? 0 : 1; s < h->nsegs && s < a->nsegs; s++)
                if (st[s].handle != 0)
                    handles[nh++] = st[s].handle;
            if (a->seg[0] == NULL)
                h->magic = 0; /* its memory stays the host's: make it unattachable */
        }
        dsm__area_unlock(a);
    }
    /* Unpin first: the mappings detached below are then the last references. */
    for (uint32_t i = 0; i < nh; i++)
        dsm_unpin_segment(handles[i]);
    (void)last;
    pthread_mutex_lock(&a->mu);
    for (uint32_t s = a->nsegs; s-- > 0;) {
        dsm_segment *seg = a->seg[s];

        a->map[s].base = NULL;
        a->seg[s] = NULL;
        if (seg == NULL || seg == except)
            continue;
        dsm_cancel_on_detach(seg, on_segment_detach, a);
        dsm_detach(seg);
    }
    pthread_mutex_unlock(&a->mu);
    if (a->host && a->host != except)
        dsm_cancel_on_detach(a->host, on_segment_detach, a);
    local_free(a);
}

static void on_segment_detach(dsm_segment *seg, void *arg)
{
    dsm_area *a = arg;

    if (a->detaching) {
        /* We are detaching it ourselves (mu held by release or a remap). */
        return;
    }
    release(a, seg);
}

int dsm_area_detach(dsm_area *area)
{
    if (area == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    release(area, NULL);
    return 0;
}

dsm_handle dsm_area_handle(const dsm_area *area)
{
    /* Local state only: valid even where the area is not mapped (a fork child). */
    if (area == NULL || area->seg[0] == NULL)
        return DSM_HANDLE_INVALID;
    return area->handle[0];
}

static int set_pinned(dsm_area *a, bool pin)
{
    int rc;

    if (a == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    if ((rc = dsm__area_lock(a)) < 0)
        return rc;
    if ((a->hdr->pinned != 0) == pin)
        rc = pin ? dsm__error(-EALREADY, "the shared memory area is already pinned")
                 : dsm__error(-EINVAL, "the shared memory area is not pinned");
    else
        a->hdr->pinned = pin;
    dsm__area_unlock(a);
    return rc;
}

int dsm_area_pin(dsm_area *area)
{
    return set_pinned(area, true);
}

int dsm_area_unpin(dsm_area *area)
{
    return set_pinned(area, false);
}

int dsm_area_pin_mapping(dsm_area *area)
{
    if (area == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    if (area->seg[0] == NULL)
        return dsm__error(-EINVAL, "an in-place area lives as long as its host segment");
    return dsm_pin_mapping(area->seg[0]);
}

int dsm_area_unpin_mapping(dsm_area *area)
{
    if (area == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    if (area->seg[0] == NULL)
        return dsm__error(-EINVAL, "an in-place area lives as long as its host segment");
    return dsm_unpin_mapping(area->seg[0]);
}

size_t dsm_area_total_size(dsm_area *area)
{
    return area ? (size_t)__atomic_load_n(&area->hdr->total_size, __ATOMIC_RELAXED) : 0;
}

int dsm_area_set_size_limit(dsm_area *area, size_t limit)
{
    int rc;

    if (area == NULL)
        return dsm__error(-EINVAL, "invalid shared memory area");
    if ((rc = dsm__area_lock(area)) < 0)
        return rc;
    area->hdr->max_total_size = limit ? limit : UINT64_MAX;
    dsm__area_unlock(area);
    return 0;
}

/* ---- the supervisor reclaims a dead worker ------------------------------------------ */

/*
 * A dead process may have been the last one attached to an area nobody
 * pinned -- typically its creator, killed before anyone else attached.
 * The area's segments are pinned by the area itself, and only a detach
 * (release()) unpins them, so nothing in any running process would ever
 * give them back.  The supervisor therefore looks into every pinned
 * segment the dead process mapped that is not an area it has attached
 * itself (an area pins each of its segments; unpinned ones are left
 * alone, and so are segments others map without being an area): for an
 * area's first segment it returns the dead process's caches and
 * attachment and, when no live attachment is left and the area is not
 * pinned, unpins the area's segments -- releasing the dead process's
 * references then destroys them.  A temporary view is enough; segments it
 * maps on the way are detached again.
 */
static void reap_unattached(const struct dsm__procid *dead, dsm_handle h)
{
    dsm_handle handles[DSM_AREA_MAX_SEGMENTS];
    struct dsm__saved_error e;
    struct area_hdr *hdr;
    dsm_segment *seg;
    dsm_area *a;
    uint32_t nh = 0;

    dsm__error_save(&e, 0); /* most segments are not areas: nothing to report */
    if (dsm_attach(h, &seg) < 0)
        goto out;
    hdr = dsm_segment_address(seg);
    if (dsm_segment_map_length(seg) < sizeof(*hdr) || hdr->magic != AREA_MAGIC ||
        check_hdr(hdr, dsm_segment_map_length(seg)) < 0 || area_segtab(hdr)[0].handle != h ||
        (a = local_new(hdr->nsegmax)) == NULL)
        goto detach;
    set_views(a, hdr);
    a->detaching = true; /* segments mapped on the way must not release this view */
    map_seg0(a, (char *)hdr, seg);
    if (dsm__area_lock(a) == 0) {
        struct attach_ent *t = a->attach;
        int live = 0;

        dsm__area_reclaim_proc(a, dead);
        dsm__area_reclaim_dead(a);
        for (uint32_t i = 0; i < a->nattach; i++)
            live += t[i].id.pid != 0;
        if (live == 0 && !hdr->pinned)
            for (uint32_t s = 0; s < hdr->nsegs && s < a->nsegs; s++)
                if (a->segtab[s].handle != 0)
                    handles[nh++] = a->segtab[s].handle;
        dsm__area_unlock(a);
    }
    for (uint32_t i = 0; i < nh; i++)
        dsm_unpin_segment(handles[i]);
    for (uint32_t s = a->nsegs; s-- > 1;)
        if (a->seg[s] != NULL) {
            dsm_cancel_on_detach(a->seg[s], on_segment_detach, a);
            dsm_detach(a->seg[s]);
        }
    local_free(a);
detach:
    dsm_detach(seg);
out:
    dsm__error_restore(&e);
}

static void reclaim_listener(const struct dsm__procid *dead, const dsm_handle *mapped,
                             int nmapped)
{
    pthread_mutex_lock(&reg_mu);
    for (dsm_area *a = registry; a; a = a->next) {
        if (dsm__area_lock(a) < 0)
            continue;
        dsm__area_reclaim_proc(a, dead);
        dsm__area_unlock(a);
    }
    for (int i = 0; i < nmapped; i++) {
        bool mine = false;

        for (dsm_area *a = registry; a && !mine; a = a->next)
            mine = a->seg[0] != NULL && a->handle[0] == mapped[i];
        if (!mine) {
            pthread_mutex_unlock(&reg_mu);
            reap_unattached(dead, mapped[i]);
            pthread_mutex_lock(&reg_mu);
        }
    }
    pthread_mutex_unlock(&reg_mu);
}

/* Registered at load: a supervisor that never touches an area still reclaims them. */
__attribute__((constructor)) static void register_reclaim(void)
{
    dsm__add_reclaim_listener(reclaim_listener);
}
