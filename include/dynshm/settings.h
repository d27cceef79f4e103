/* SPDX-License-Identifier: MIT */
/*
 * dynshm/settings.h - typed, validated settings in PostgreSQL's GUC style.
 *
 * A dsm_settings object holds a set of named settings, each with a type
 * (bool, integer with an optional unit, string, enum), a default and a
 * current value.  dsm_settings_new() returns one holding dynshm's own
 * settings (dynamic_shared_memory_type, ...); applications may define
 * their own in the same object so one config file and one -c syntax
 * serve both.
 *
 * Values come from the API, from "-c name=value" options and from config
 * files in PostgreSQL's syntax:
 *     # comment
 *     name = value          # trailing comment
 *     name value            # '=' is optional
 *     name = 'quoted value' # '' inside quotes is a literal quote
 * Integers accept units: memory settings B, kB, MB, GB, TB (1024-based),
 * time settings us, ms, s, min, h, d.  Booleans accept on/off, true/false,
 * yes/no, 1/0 (any case, unique prefixes).  Names are case-insensitive.
 *
 * Every setter validates before it changes anything: a bad value is refused
 * with a message naming the setting, the value and what is allowed (for an
 * enum, the list of valid values), and the old value stays.  Loading a file
 * is all-or-nothing: on any error (reported as "file:line: ...") no setting
 * from that file is applied.
 */
#ifndef DYNSHM_SETTINGS_H
#define DYNSHM_SETTINGS_H

#include <stdbool.h>
#include <dynshm/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsm_settings dsm_settings;

typedef enum dsm_setting_type {
    DSM_SETTING_BOOL = 0,
    DSM_SETTING_INT = 1,
    DSM_SETTING_STRING = 2,
    DSM_SETTING_ENUM = 3
} dsm_setting_type;

/* Unit of an integer setting: its value is stored in the base unit named here. */
typedef enum dsm_setting_unit {
    DSM_UNIT_NONE = 0,
    DSM_UNIT_BYTES = 1, /* accepts B, kB, MB, GB, TB; a bare number is bytes */
    DSM_UNIT_MS = 2     /* accepts us, ms, s, min, h, d; a bare number is ms */
} dsm_setting_unit;

/* Everything known about one setting (see dsm_settings_describe()). */
typedef struct dsm_setting_info {
    const char *name;
    dsm_setting_type type;
    dsm_setting_unit unit;          /* DSM_SETTING_INT only */
    const char *description;
    int64_t min, max;               /* DSM_SETTING_INT only */
    const char *const *choices;     /* DSM_SETTING_ENUM only: NULL-terminated */
    int is_default;                 /* 1 while the value was never set */
} dsm_setting_info;

/* A new settings object holding dynshm's built-in settings at their defaults. */
DSM_EXPORT int dsm_settings_new(dsm_settings **out);
DSM_EXPORT void dsm_settings_free(dsm_settings *s);

/* Define an application setting.  -EEXIST if the name is taken, -EINVAL if
 * the name or the default is not valid. */
DSM_EXPORT int dsm_settings_define_bool(dsm_settings *s, const char *name, bool def,
                                        const char *description);
DSM_EXPORT int dsm_settings_define_int(dsm_settings *s, const char *name, int64_t def,
                                       int64_t min, int64_t max, dsm_setting_unit unit,
                                       const char *description);
DSM_EXPORT int dsm_settings_define_string(dsm_settings *s, const char *name, const char *def,
                                          const char *description);
DSM_EXPORT int dsm_settings_define_enum(dsm_settings *s, const char *name,
                                        const char *const *choices, const char *def,
                                        const char *description);

/* Set from text, exactly as a config file value would be written. */
DSM_EXPORT int dsm_settings_set(dsm_settings *s, const char *name, const char *value);

/* Apply one "name=value" option, as given to -c. */
DSM_EXPORT int dsm_settings_parse_option(dsm_settings *s, const char *option);

/* Load a config file; all-or-nothing.  -ENOENT if it does not exist. */
DSM_EXPORT int dsm_settings_load_file(dsm_settings *s, const char *path);

/* Parse config text held in memory (need not be NUL-terminated); all-or-nothing.
 * `origin` names the text in messages ("dsm_demo.conf"). */
DSM_EXPORT int dsm_settings_load_buffer(dsm_settings *s, const char *text, size_t len,
                                        const char *origin);

/* Typed getters; -ENOENT for an unknown name, -EINVAL for the wrong type. */
DSM_EXPORT int dsm_settings_get_bool(const dsm_settings *s, const char *name, bool *out);
DSM_EXPORT int dsm_settings_get_int(const dsm_settings *s, const char *name, int64_t *out);
/* Strings and enums: the pointer stays valid until the setting changes or s is freed. */
DSM_EXPORT int dsm_settings_get_string(const dsm_settings *s, const char *name,
                                       const char **out);
/* Enums: index of the current value in the choices array. */
DSM_EXPORT int dsm_settings_get_enum(const dsm_settings *s, const char *name, int *out);

/* The current value as text with the largest exact unit ("64MB"); -ERANGE if buf is small. */
DSM_EXPORT int dsm_settings_show(const dsm_settings *s, const char *name, char *buf,
                                 size_t buflen);

/* The i-th setting in definition order; -ENOENT past the end. */
DSM_EXPORT int dsm_settings_describe(const dsm_settings *s, size_t i, dsm_setting_info *info);

#ifdef __cplusplus
}
#endif
#endif /* DYNSHM_SETTINGS_H */
