/* SPDX-License-Identifier: MIT */
/*
 * resowner.c - resource owners: who detaches a mapping when the work it
 * was made for ends, successfully or not.
 *
 * As in PostgreSQL, owners form a tree and each thread has a current owner
 * that new mappings join.  Releasing an owner releases its children first,
 * then detaches its mappings, so an application's error path needs one
 * call to give everything back.  On a success path (is_commit) a mapping
 * still held is a bug in the application, and is reported as a leak.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsm_int.h"

static _Thread_local dsm_resowner *current_owner;

dsm_resowner *dsm_resowner_current(void)
{
    return current_owner;
}

static void owner_unref(dsm_resowner *o)
{
    if (o && atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1)
        free(o);
}

dsm_resowner *dsm_resowner_set_current(dsm_resowner *owner)
{
    dsm_resowner *prev = current_owner, *ret = prev;

    if (owner)
        atomic_fetch_add_explicit(&owner->refs, 1, memory_order_relaxed);
    current_owner = owner;
    if (prev) {
        /* A deleted owner is gone for its caller: never hand it back as "previous". */
        pthread_mutex_lock(&dsm__p.mu);
        if (prev->deleted)
            ret = NULL;
        pthread_mutex_unlock(&dsm__p.mu);
        owner_unref(prev);
    }
    /* Not freed: an owner not deleted keeps its creation reference. */
    return ret; /* NOLINT(clang-analyzer-unix.Malloc) */
}

void dsm__owner_link(dsm_segment *seg, dsm_resowner *owner)
{
    if (owner && owner->deleted)
        owner = NULL; /* current in this thread, deleted by another: session lifetime */
    seg->owner = owner;
    if (owner == NULL)
        return;
    seg->owner_prev = NULL;
    seg->owner_next = owner->segs;
    if (owner->segs)
        owner->segs->owner_prev = seg;
    owner->segs = seg;
}

void dsm__owner_unlink(dsm_segment *seg)
{
    dsm_resowner *owner = seg->owner;

    if (owner == NULL)
        return;
    if (seg->owner_prev)
        seg->owner_prev->owner_next = seg->owner_next;
    else
        owner->segs = seg->owner_next;
    if (seg->owner_next)
        seg->owner_next->owner_prev = seg->owner_prev;
    seg->owner = NULL;
    seg->owner_prev = seg->owner_next = NULL;
}

int dsm_resowner_create(dsm_resowner *parent, const char *name, dsm_resowner **out)
{
    dsm_resowner *o;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to return the resource owner");
    o = calloc(1, sizeof(*o));
    if (o == NULL)
        return dsm__error(-ENOMEM, "out of memory");
    atomic_init(&o->refs, 1);
    snprintf(o->name, sizeof(o->name), "%s", name ? name : "(unnamed)");
    o->parent = parent;
    if (parent) {
        pthread_mutex_lock(&dsm__p.mu);
        o->sibling_next = parent->children;
        if (parent->children)
            parent->children->sibling_prev = o;
        parent->children = o;
        pthread_mutex_unlock(&dsm__p.mu);
    }
    *out = o;
    return 0;
}

void dsm_resowner_release(dsm_resowner *owner, bool is_commit)
{
    if (owner == NULL)
        return;
    for (dsm_resowner *c = owner->children; c; c = c->sibling_next)
        dsm_resowner_release(c, is_commit);
    for (;;) {
        char hb[DSM_HANDLE_STRLEN];
        dsm_segment *seg;

        pthread_mutex_lock(&dsm__p.mu);
        /* Linked segments are never claimed (claiming unlinks), so this one is ours. */
        seg = owner->segs;
        if (seg)
            dsm__claim_detach(seg);
        pthread_mutex_unlock(&dsm__p.mu);
        if (seg == NULL)
            break;
        if (is_commit)
            dsm__log(DSM_LOG_WARNING, "dynamic shared memory leak: segment %s still mapped "
                                      "when resource owner \"%s\" was released",
                     dsm_handle_format(seg->handle, hb), owner->name);
        dsm__detach_claimed(seg, true);
    }
}

void dsm_resowner_delete(dsm_resowner *owner)
{
    dsm_resowner *parent;

    if (owner == NULL)
        return;
    dsm_resowner_release(owner, false);
    while (owner->children) /* each deletion unlinks the child from this list */
        dsm_resowner_delete(owner->children); /* NOLINT(clang-analyzer-unix.Malloc) */
    pthread_mutex_lock(&dsm__p.mu);
    if (owner->deleted) { /* deleted twice: the first call did everything */
        pthread_mutex_unlock(&dsm__p.mu);
        return;
    }
    owner->deleted = true;
    parent = owner->parent;
    owner->parent = NULL;
    if (parent) {
        if (owner->sibling_prev)
            owner->sibling_prev->sibling_next = owner->sibling_next;
        else
            parent->children = owner->sibling_next;
        if (owner->sibling_next)
            owner->sibling_next->sibling_prev = owner->sibling_prev;
    }
    pthread_mutex_unlock(&dsm__p.mu);
    if (current_owner == owner)
        dsm_resowner_set_current(parent);
    owner_unref(owner); /* freed now, or by the last thread where it is current */
}
