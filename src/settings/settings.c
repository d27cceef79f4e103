/* SPDX-License-Identifier: MIT */
/*
 * settings.c - the settings object: definition, lookup, typed access,
 * dsm_settings_set(), dsm_settings_show() and dsm_settings_describe().
 *
 * A server has a few dozen settings at most, so they live in an array in
 * definition order (which is also the order describe() reports) and are
 * found by a linear, case-insensitive scan.  Text parsing lives elsewhere:
 * value.c turns one value into a typed candidate, units.c handles integers
 * with units, parse.c reads config files and -c options.
 *
 * Definitions are validated as strictly as values: a bad name, a duplicate,
 * an empty range or a default that its own setting would refuse is an
 * error at definition time, so a mistake in an application's table shows
 * up at start-up instead of when an operator first edits the file.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "settings_int.h"

static const char *const type_names[] = {
    [DSM_SETTING_BOOL] = "Boolean",
    [DSM_SETTING_INT] = "integer",
    [DSM_SETTING_STRING] = "string",
    [DSM_SETTING_ENUM] = "enum",
};

int dsm__ascii_casecmp(const char *a, const char *b)
{
    /* Not strcasecmp(): that one follows the locale, and names must not. */
    for (;; a++, b++) {
        int ca = (unsigned char)*a, cb = (unsigned char)*b;

        if (ca >= 'A' && ca <= 'Z')
            ca += 'a' - 'A';
        if (cb >= 'A' && cb <= 'Z')
            cb += 'a' - 'A';
        if (ca != cb || ca == 0)
            return ca - cb;
    }
}

int dsm__name_check(const char *name)
{
    size_t len;

    if (name == NULL || name[0] == '\0')
        return dsm__error(-EINVAL, "invalid parameter name: the name is empty");
    len = strnlen(name, DSM__SETTING_NAME_MAX + 1);
    if (len > DSM__SETTING_NAME_MAX)
        return dsm__error(-EINVAL,
                          "invalid parameter name \"%.*s%s\": longer than %d characters",
                          DSM__CLIP(name), DSM__SETTING_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
        bool digit = (c >= '0' && c <= '9') || c == '.';

        if (!letter && !(digit && i > 0))
            return dsm__error(-EINVAL,
                              "invalid parameter name \"%.*s%s\": names are a letter or "
                              "underscore followed by letters, digits, underscores and dots",
                              DSM__CLIP(name));
    }
    return 0;
}

long dsm__settings_index(const dsm_settings *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (dsm__ascii_casecmp(s->items[i]->name, name) == 0)
            return (long)i;
    return -1;
}

static void setting_free(struct dsm__setting *st)
{
    if (st == NULL)
        return;
    free(st->description);
    if (st->choices != NULL) {
        for (size_t i = 0; i < st->nchoices; i++)
            free(st->choices[i]);
        free(st->choices);
    }
    dsm__value_clear(&st->cur);
    free(st);
}

/* Checks what the type needs beyond the name; fills the default into st->cur. */
static int check_spec(const struct dsm__setting_spec *spec, struct dsm__setting *st)
{
    switch (spec->type) {
    case DSM_SETTING_BOOL:
        st->cur.b = spec->def_bool;
        return 0;
    case DSM_SETTING_INT: {
        char lo[32], hi[32], def[32];

        if ((unsigned)spec->unit > DSM_UNIT_MS)
            return dsm__error(-EINVAL, "parameter \"%s\" has an invalid unit (%d)", spec->name,
                              (int)spec->unit);
        if (spec->min > spec->max)
            return dsm__error(-EINVAL,
                              "parameter \"%s\" has an empty range (minimum %lld is above "
                              "maximum %lld)",
                              spec->name, (long long)spec->min, (long long)spec->max);
        if (spec->def_int < spec->min || spec->def_int > spec->max) {
            dsm__int_format(spec->def_int, spec->unit, def, sizeof(def));
            dsm__int_format(spec->min, spec->unit, lo, sizeof(lo));
            dsm__int_format(spec->max, spec->unit, hi, sizeof(hi));
            return dsm__error(-EINVAL,
                              "default %s is outside the valid range for parameter \"%s\" "
                              "(%s .. %s)",
                              def, spec->name, lo, hi);
        }
        st->cur.i = spec->def_int;
        return 0;
    }
    case DSM_SETTING_STRING:
        st->cur.str = strdup(spec->def_str != NULL ? spec->def_str : "");
        if (st->cur.str == NULL)
            return dsm__error(-ENOMEM, "out of memory defining parameter \"%s\"", spec->name);
        return 0;
    case DSM_SETTING_ENUM:
        /* st->choices is already copied; the default must be one of them. */
        if (spec->def_str == NULL)
            return dsm__error(-EINVAL, "enum parameter \"%s\" has no default", spec->name);
        for (size_t i = 0; i < st->nchoices; i++)
            if (dsm__ascii_casecmp(st->choices[i], spec->def_str) == 0) {
                st->cur.e = (int)i;
                return 0;
            }
        return dsm__error(-EINVAL,
                          "default \"%.*s%s\" of parameter \"%s\" is not one of its choices",
                          DSM__CLIP(spec->def_str), spec->name);
    }
    return dsm__error(-EINVAL, "parameter \"%s\" has an invalid type (%d)", spec->name,
                      (int)spec->type);
}

static int copy_choices(const struct dsm__setting_spec *spec, struct dsm__setting *st)
{
    size_t n = 0;

    if (spec->choices == NULL || spec->choices[0] == NULL)
        return dsm__error(-EINVAL, "enum parameter \"%s\" needs at least one choice",
                          spec->name);
    while (spec->choices[n] != NULL)
        n++;
    if (n > INT32_MAX)
        return dsm__error(-EINVAL, "enum parameter \"%s\" has too many choices", spec->name);
    for (size_t i = 0; i < n; i++) {
        if (spec->choices[i][0] == '\0')
            return dsm__error(-EINVAL, "enum parameter \"%s\" has an empty choice", spec->name);
        for (size_t j = 0; j < i; j++)
            if (dsm__ascii_casecmp(spec->choices[i], spec->choices[j]) == 0)
                return dsm__error(-EINVAL,
                                  "enum parameter \"%s\" lists choice \"%.*s%s\" twice "
                                  "(choices are case-insensitive)",
                                  spec->name, DSM__CLIP(spec->choices[i]));
    }
    st->choices = calloc(n + 1, sizeof(*st->choices));
    if (st->choices == NULL)
        return dsm__error(-ENOMEM, "out of memory defining parameter \"%s\"", spec->name);
    st->nchoices = n; /* set first: setting_free() frees what was copied so far */
    for (size_t i = 0; i < n; i++) {
        st->choices[i] = strdup(spec->choices[i]);
        if (st->choices[i] == NULL)
            return dsm__error(-ENOMEM, "out of memory defining parameter \"%s\"", spec->name);
    }
    return 0;
}

int dsm__settings_define(dsm_settings *s, const struct dsm__setting_spec *spec)
{
    struct dsm__setting *st;
    int rc;

    if (s == NULL)
        return dsm__error(-EINVAL, "no settings object given");
    rc = dsm__name_check(spec->name);
    if (rc < 0)
        return rc;
    if (dsm__settings_index(s, spec->name) >= 0)
        return dsm__error(-EEXIST, "parameter \"%s\" is already defined", spec->name);

    /* Make room first so that nothing after the setting's creation can fail. */
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
        struct dsm__setting **items = realloc(s->items, cap * sizeof(*items));

        if (items == NULL)
            return dsm__error(-ENOMEM, "out of memory defining parameter \"%s\"", spec->name);
        s->items = items;
        s->cap = cap;
    }
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return dsm__error(-ENOMEM, "out of memory defining parameter \"%s\"", spec->name);
    memcpy(st->name, spec->name, strlen(spec->name) + 1);
    st->description = strdup(spec->description != NULL ? spec->description : "");
    if (st->description == NULL) {
        rc = dsm__error(-ENOMEM, "out of memory defining parameter \"%s\"", spec->name);
        goto fail;
    }
    if (spec->type == DSM_SETTING_ENUM && (rc = copy_choices(spec, st)) < 0)
        goto fail;
    if ((rc = check_spec(spec, st)) < 0)
        goto fail;

    st->info.name = st->name;
    st->info.type = spec->type;
    st->info.unit = spec->type == DSM_SETTING_INT ? spec->unit : DSM_UNIT_NONE;
    st->info.description = st->description;
    st->info.min = spec->type == DSM_SETTING_INT ? spec->min : 0;
    st->info.max = spec->type == DSM_SETTING_INT ? spec->max : 0;
    st->info.choices = (const char *const *)st->choices;
    st->info.is_default = 1;
    s->items[s->n++] = st;
    return 0;

fail:
    setting_free(st);
    return rc;
}

int dsm_settings_new(dsm_settings **out)
{
    dsm_settings *s;
    int rc;

    if (out == NULL)
        return dsm__error(-EINVAL, "no place to store the settings object");
    *out = NULL;
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return dsm__error(-ENOMEM, "out of memory creating settings");
    rc = dsm__builtin_define(s);
    if (rc < 0) {
        dsm_settings_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void dsm_settings_free(dsm_settings *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        setting_free(s->items[i]);
    free(s->items);
    free(s);
}

int dsm_settings_define_bool(dsm_settings *s, const char *name, bool def,
                             const char *description)
{
    struct dsm__setting_spec spec = {
        .name = name, .type = DSM_SETTING_BOOL, .description = description, .def_bool = def};

    return dsm__settings_define(s, &spec);
}

int dsm_settings_define_int(dsm_settings *s, const char *name, int64_t def, int64_t min,
                            int64_t max, dsm_setting_unit unit, const char *description)
{
    struct dsm__setting_spec spec = {.name = name,
                                     .type = DSM_SETTING_INT,
                                     .description = description,
                                     .def_int = def,
                                     .min = min,
                                     .max = max,
                                     .unit = unit};

    return dsm__settings_define(s, &spec);
}

int dsm_settings_define_string(dsm_settings *s, const char *name, const char *def,
                               const char *description)
{
    struct dsm__setting_spec spec = {
        .name = name, .type = DSM_SETTING_STRING, .description = description, .def_str = def};

    return dsm__settings_define(s, &spec);
}

int dsm_settings_define_enum(dsm_settings *s, const char *name, const char *const *choices,
                             const char *def, const char *description)
{
    struct dsm__setting_spec spec = {.name = name,
                                     .type = DSM_SETTING_ENUM,
                                     .description = description,
                                     .def_str = def,
                                     .choices = choices};

    return dsm__settings_define(s, &spec);
}

/* The setting called name, or NULL with the message set and *rc filled. */
static struct dsm__setting *find(const dsm_settings *s, const char *name, int *rc)
{
    long i;

    if (s == NULL || name == NULL) {
        *rc = dsm__error(-EINVAL, "no settings object or parameter name given");
        return NULL;
    }
    i = dsm__settings_index(s, name);
    if (i < 0) {
        *rc = dsm__error(-ENOENT, "unrecognized configuration parameter \"%.*s%s\"",
                         DSM__CLIP(name));
        return NULL;
    }
    return s->items[i];
}

int dsm_settings_set(dsm_settings *s, const char *name, const char *value)
{
    struct dsm__setting *st;
    struct dsm__value v;
    int rc = 0;

    if ((st = find(s, name, &rc)) == NULL)
        return rc;
    if (value == NULL)
        return dsm__error(-EINVAL, "no value given for parameter \"%s\"", st->name);
    rc = dsm__value_parse(st, value, &v);
    if (rc < 0)
        return rc;
    dsm__value_assign(st, &v);
    return 0;
}

/* The setting, if it exists and has one of the types in mask (bits of 1 << type). */
static struct dsm__setting *find_typed(const dsm_settings *s, const char *name, const void *out,
                                       unsigned mask, const char *wanted, int *rc)
{
    struct dsm__setting *st = find(s, name, rc);

    if (st == NULL)
        return NULL;
    if (out == NULL) {
        *rc = dsm__error(-EINVAL, "no place to store the value of parameter \"%s\"", st->name);
        return NULL;
    }
    if (!(mask & (1u << st->info.type))) {
        *rc = dsm__error(-EINVAL, "parameter \"%s\" is of type %s, not %s", st->name,
                         type_names[st->info.type], wanted);
        return NULL;
    }
    return st;
}

int dsm_settings_get_bool(const dsm_settings *s, const char *name, bool *out)
{
    int rc = 0;
    const struct dsm__setting *st =
        find_typed(s, name, out, 1u << DSM_SETTING_BOOL, "Boolean", &rc);

    if (st == NULL)
        return rc;
    *out = st->cur.b;
    return 0;
}

int dsm_settings_get_int(const dsm_settings *s, const char *name, int64_t *out)
{
    int rc = 0;
    const struct dsm__setting *st =
        find_typed(s, name, out, 1u << DSM_SETTING_INT, "integer", &rc);

    if (st == NULL)
        return rc;
    *out = st->cur.i;
    return 0;
}

int dsm_settings_get_string(const dsm_settings *s, const char *name, const char **out)
{
    int rc = 0;
    const struct dsm__setting *st = find_typed(
        s, name, out, (1u << DSM_SETTING_STRING) | (1u << DSM_SETTING_ENUM), "string", &rc);

    if (st == NULL)
        return rc;
    /* An enum reads as its canonical spelling, whatever case was written. */
    *out = st->info.type == DSM_SETTING_ENUM ? st->choices[st->cur.e] : st->cur.str;
    return 0;
}

int dsm_settings_get_enum(const dsm_settings *s, const char *name, int *out)
{
    int rc = 0;
    const struct dsm__setting *st = find_typed(s, name, out, 1u << DSM_SETTING_ENUM, "enum", &rc);

    if (st == NULL)
        return rc;
    *out = st->cur.e;
    return 0;
}

int dsm_settings_show(const dsm_settings *s, const char *name, char *buf, size_t buflen)
{
    int rc = 0;
    const struct dsm__setting *st = find(s, name, &rc);

    if (st == NULL)
        return rc;
    if (buf == NULL && buflen > 0)
        return dsm__error(-EINVAL, "no buffer given to show parameter \"%s\"", st->name);
    return dsm__value_show(st, buf, buflen);
}

int dsm_settings_describe(const dsm_settings *s, size_t i, dsm_setting_info *info)
{
    if (s == NULL || info == NULL)
        return dsm__error(-EINVAL, "no settings object or no place to store the description");
    if (i >= s->n)
        return dsm__error(-ENOENT, "no parameter number %zu (there are %zu)", i, s->n);
    *info = s->items[i]->info;
    return 0;
}
