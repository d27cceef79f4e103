/* SPDX-License-Identifier: MIT */
/*
 * settings_int.h - what the settings files share: the object's layout, the
 * candidate-value type every setter goes through, and the helpers each file
 * exposes to the others.  Never installed.
 *
 * Every way of changing a setting (dsm_settings_set, -c options, config
 * files) runs in two steps: dsm__value_parse() turns text into a candidate
 * value, validating it completely and doing every allocation; then
 * dsm__value_assign() moves the candidate in and cannot fail.  That split is
 * what makes a config file all-or-nothing and -ENOMEM harmless.
 *
 * Thread safety: a dsm_settings object has no lock.  An application that
 * shares one between threads must serialise every call on it, readers
 * included (a getter's string pointer dies when a writer replaces the value).
 * The module keeps no global mutable state, so distinct objects are
 * independent.
 */
#ifndef DYNSHM_SETTINGS_INT_H
#define DYNSHM_SETTINGS_INT_H

#include <stdbool.h>
#include <string.h>
#include <dynshm/settings.h>

#include "../common/internal.h"

#define DSM__SETTING_NAME_MAX 63 /* characters, not counting the NUL */

/* Longest user text quoted in a message; the rest becomes "...". */
#define DSM__QUOTE_MAX 64

/* Config text: whole-file and per-line caps keep the parser's memory bounded. */
#define DSM__CONFIG_MAX ((size_t)1 << 20)
#define DSM__CONFIG_LINE_MAX 8192

/* A value of any type.  str is owned (malloc'd) when the type is STRING. */
struct dsm__value {
    bool b;
    int64_t i;
    int e;     /* ENUM: index into choices */
    char *str; /* STRING: owned copy; NULL for other types */
};

struct dsm__setting {
    /*
     * What dsm_settings_describe() hands out.  name, description and choices
     * point into this struct's own allocations and never change after
     * definition, so the caller's copy stays valid while the object lives.
     */
    dsm_setting_info info;
    char name[DSM__SETTING_NAME_MAX + 1];
    char *description;         /* owned; "" when none was given */
    char **choices;            /* ENUM: owned, NULL-terminated; else NULL */
    size_t nchoices;
    struct dsm__value cur;     /* the current value */
};

struct dsm_settings {
    struct dsm__setting **items; /* definition order; each item is its own
                                  * allocation so pointers survive growth */
    size_t n, cap;
};

/* Everything a definition needs; public define_* and builtin.c both fill one. */
struct dsm__setting_spec {
    const char *name;
    dsm_setting_type type;
    const char *description;
    bool def_bool;
    int64_t def_int, min, max;
    dsm_setting_unit unit;
    const char *def_str;          /* STRING and ENUM */
    const char *const *choices;   /* ENUM: NULL-terminated; copied */
};

/* settings.c */
int dsm__settings_define(dsm_settings *s, const struct dsm__setting_spec *spec);
/* Index of a setting by case-insensitive name, or -1. */
long dsm__settings_index(const dsm_settings *s, const char *name);
/* 0, or -EINVAL with a message, for a name that breaks the naming rule. */
int dsm__name_check(const char *name);
int dsm__ascii_casecmp(const char *a, const char *b);

/* value.c */
int dsm__value_parse(const struct dsm__setting *st, const char *text, struct dsm__value *out);
void dsm__value_assign(struct dsm__setting *st, struct dsm__value *v);
void dsm__value_clear(struct dsm__value *v);
int dsm__value_show(const struct dsm__setting *st, char *buf, size_t buflen);

/* units.c */
int dsm__int_parse(const char *name, dsm_setting_unit unit, const char *text, int64_t *out);
/* Writes v with the largest exact unit; returns the length snprintf would. */
int dsm__int_format(int64_t v, dsm_setting_unit unit, char *buf, size_t buflen);
/* "B, kB, MB, GB, TB" and the like; "" for DSM_UNIT_NONE. */
const char *dsm__unit_list(dsm_setting_unit unit);

/* builtin.c */
int dsm__builtin_define(dsm_settings *s);

/*
 * Quoting user text in messages: at most DSM__QUOTE_MAX bytes, cut on a
 * UTF-8 character boundary, then "..." -- so a 100 kB value cannot push the
 * useful part of a message (the list of valid values) out of the buffer.
 *     dsm__error(-EINVAL, "bad \"%.*s%s\"", DSM__CLIP(text));
 */
static inline int dsm__clip_len(const char *s)
{
    size_t n = strnlen(s, DSM__QUOTE_MAX + 1);

    if (n <= DSM__QUOTE_MAX)
        return (int)n;
    n = DSM__QUOTE_MAX;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}
#define DSM__CLIP(s) dsm__clip_len(s), (s), (strnlen((s), DSM__QUOTE_MAX + 1) > DSM__QUOTE_MAX ? "..." : "")

static inline bool dsm__is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

#endif /* DYNSHM_SETTINGS_INT_H */
