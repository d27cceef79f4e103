/* SPDX-License-Identifier: MIT */
/*
 * builtin.c - dynshm's own settings, defined in every new settings object.
 *
 * One table, one line per setting, so adding a setting is adding a line;
 * the macros below fill a struct dsm__setting_spec, the same description an
 * application's dsm_settings_define_*() call builds, and the same checks
 * apply (a bad default here makes dsm_settings_new() fail, loudly, in every
 * test).
 *
 * Most settings are static.  dynamic_shared_memory_type is not: its choices
 * are the backends this build and platform support, and they are asked
 * from src/dsm_impl at run time rather than spelled here, so the backend
 * table stays the only place that knows backend names.
 */
#include "config.h"

#include <dynshm/dsm_impl.h>

#include "../common/limits.h"
#include "settings_int.h"

struct builtin {
    struct dsm__setting_spec spec;
    /* Optional: fills choices and def_str in a copy of spec just before defining. */
    int (*dynamic)(struct dsm__setting_spec *spec, const char **choices, size_t nchoices);
};

#define BUILTIN_BOOL(name_, def_, desc_)                                                   \
    {.spec = {.name = (name_), .type = DSM_SETTING_BOOL, .def_bool = (def_), .description = (desc_)}}
#define BUILTIN_INT(name_, def_, min_, max_, unit_, desc_)                                 \
    {.spec = {.name = (name_), .type = DSM_SETTING_INT, .def_int = (def_), .min = (min_), \
              .max = (max_), .unit = (unit_), .description = (desc_)}}
#define BUILTIN_STRING(name_, def_, desc_)                                                 \
    {.spec = {.name = (name_), .type = DSM_SETTING_STRING, .def_str = (def_),            \
              .description = (desc_)}}
/* The choices follow the description: BUILTIN_ENUM("x", "a", "...", "a", "b"). */
#define BUILTIN_ENUM(name_, def_, desc_, ...)                                              \
    {.spec = {.name = (name_), .type = DSM_SETTING_ENUM, .def_str = (def_),              \
              .description = (desc_),                                                      \
              .choices = (const char *const[]){__VA_ARGS__, NULL}}}
#define BUILTIN_ENUM_DYNAMIC(name_, fn_, desc_)                                            \
    {.spec = {.name = (name_), .type = DSM_SETTING_ENUM, .description = (desc_)},        \
     .dynamic = (fn_)}

/*
 * The available backends, best first as the backend table orders them,
 * then "none" last: it switches the facility off, so it is the one an
 * operator should reach for least.  The default is the platform's best.
 */
static int impl_type_choices(struct dsm__setting_spec *spec, const char **choices,
                             size_t nchoices)
{
    size_t n = 0;

    for (int k = 1; k <= DSM_IMPL_NTYPES; k++) {
        dsm_impl_type t = (dsm_impl_type)(k % DSM_IMPL_NTYPES); /* NONE (0) comes last */

        if (dsm_impl_type_available(t) && n + 1 < nchoices)
            choices[n++] = dsm_impl_type_name(t);
    }
    choices[n] = NULL;
    spec->choices = choices;
    spec->def_str = dsm_impl_type_name(dsm_impl_default_type());
    return 0;
}

static const struct builtin builtins[] = {
    BUILTIN_ENUM_DYNAMIC("dynamic_shared_memory_type", impl_type_choices,
                         "the dynamic shared memory implementation to use"),
    BUILTIN_INT("dsm_max_segments", 1024, 1, DSM_LIMIT_SEGMENTS, DSM_UNIT_NONE,
                "capacity of the control segment: how many segments may exist at once"),
    BUILTIN_INT("dsm_max_processes", 256, 1, DSM_LIMIT_PROCESSES, DSM_UNIT_NONE,
                "how many processes (supervisor and workers) may use dynamic shared memory "
                "at once"),
    BUILTIN_INT("dsm_max_mappings", 4096, 1, DSM_LIMIT_MAPPINGS, DSM_UNIT_NONE,
                "how many mappings all processes together may hold at once"),
    BUILTIN_ENUM("huge_pages", "off",
                 "huge pages for dynamic segments: off, try (normal pages when they cannot be "
                 "had, said once) or on (creating fails, naming what is missing)",
                 "off", "try", "on"),
    BUILTIN_INT("huge_page_size", 0, 0, INT64_C(1) << 34, DSM_UNIT_BYTES,
                "the huge page size to use; 0 means the system's default (Hugepagesize in "
                "/proc/meminfo)"),
    BUILTIN_INT("min_dynamic_shared_memory", 0, 0, INT64_C(1) << 40, DSM_UNIT_BYTES,
                "bytes of a region the supervisor preallocates at start-up, from which "
                "segments that fit are carved without a system call; 0 means no region"),
    BUILTIN_ENUM("dsm_crash_policy", "reset",
                 "what the supervisor does when a worker dies: reset destroys everything, "
                 "reclaim releases only the dead worker's references",
                 "reset", "reclaim"),
};

int dsm__builtin_define(dsm_settings *s)
{
    for (size_t i = 0; i < DSM_ARRAY_LEN(builtins); i++) {
        struct dsm__setting_spec spec = builtins[i].spec;
        const char *choices[DSM_IMPL_NTYPES + 8]; /* room for any dynamic list we build */
        int rc;

        if (builtins[i].dynamic != NULL &&
            (rc = builtins[i].dynamic(&spec, choices, DSM_ARRAY_LEN(choices))) < 0)
            return rc;
        /* The choices copy happens inside define, before `choices` goes out of scope. */
        if ((rc = dsm__settings_define(s, &spec)) < 0)
            return rc;
    }
    return 0;
}
