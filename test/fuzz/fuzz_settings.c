/* SPDX-License-Identifier: MIT */
/*
 * fuzz_settings.c - libFuzzer target for the settings parser: config text
 * (dsm_settings_load_buffer), "-c name=value" options
 * (dsm_settings_parse_option) and single values (dsm_settings_set) made of
 * arbitrary bytes.
 *
 * ASan and UBSan catch memory and arithmetic errors; on top of that the
 * target checks the parser's promises and traps when one is broken:
 *   - every call returns 0 or a documented error (-EINVAL, -ENOENT, -EFBIG);
 *   - a failed load or set changes no setting (all-or-nothing), compared
 *     through dsm_settings_show() of every setting;
 *   - a failure always leaves a message;
 *   - whatever was accepted shows as text that is accepted again and shows
 *     the same (show/set round trip).
 *
 * The settings object holds the built-ins and one application setting of
 * each type and unit, as check_settings.c's new_app() does.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dynshm/settings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_settings: check failed at line %d: %s (last message: %s)\n", \
                    __LINE__, #cond, dsm_errmsg());                                           \
            __builtin_trap();                                                                 \
        }                                                                                     \
    } while (0)

static const char *const mode_choices[] = {"Fast", "slow", "Auto", NULL};

static dsm_settings *new_app(void)
{
    dsm_settings *s = NULL;

    CHECK(dsm_settings_new(&s) == 0);
    CHECK(dsm_settings_define_bool(s, "app.enabled", true, "a switch") == 0);
    CHECK(dsm_settings_define_int(s, "mem", INT64_C(64) << 20, 0, INT64_MAX, DSM_UNIT_BYTES,
                                  "a memory size") == 0);
    CHECK(dsm_settings_define_int(s, "delta", 0, INT64_MIN, INT64_MAX, DSM_UNIT_BYTES,
                                  "signed bytes") == 0);
    CHECK(dsm_settings_define_int(s, "timeout", 1000, -1, INT64_MAX, DSM_UNIT_MS, "a time") == 0);
    CHECK(dsm_settings_define_int(s, "count", 50, 10, 100, DSM_UNIT_NONE, "a count") == 0);
    CHECK(dsm_settings_define_string(s, "label", "dflt", "a string") == 0);
    CHECK(dsm_settings_define_enum(s, "mode", mode_choices, "fast", "an enum") == 0);
    return s;
}

/* The current value of a setting as malloc'd text (the buffer grows on -ERANGE). */
static char *show(const dsm_settings *s, const char *name)
{
    size_t cap = 64;

    for (;;) {
        char *buf = malloc(cap);
        int rc;

        CHECK(buf != NULL);
        rc = dsm_settings_show(s, name, buf, cap);
        if (rc == 0)
            return buf;
        free(buf);
        CHECK(rc == -ERANGE);
        cap *= 4;
    }
}

/* Every setting as "name=value\n" (with a mark for "was set"). */
static char *snapshot(const dsm_settings *s)
{
    size_t len = 0, cap = 256;
    char *out = malloc(cap);
    dsm_setting_info info;

    CHECK(out != NULL);
    out[0] = '\0';
    for (size_t i = 0; dsm_settings_describe(s, i, &info) == 0; i++) {
        char *v = show(s, info.name);
        size_t need = strlen(info.name) + strlen(v) + 4;

        if (len + need > cap) {
            cap = (len + need) * 2;
            out = realloc(out, cap);
            CHECK(out != NULL);
        }
        len += (size_t)snprintf(out + len, cap - len, "%s=%s%s\n", info.name, v,
                                info.is_default ? "" : "*");
        free(v);
    }
    return out;
}

/*
 * A failed call says why (its message starts with `prefix` when one is
 * given) and leaves the object exactly as it was.  The message is checked
 * first: taking the snapshot makes calls that set messages of their own.
 */
static void check_outcome(dsm_settings *s, int rc, char **before, const char *prefix)
{
    char *after;

    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOENT || rc == -EFBIG);
    if (rc < 0) {
        CHECK(strcmp(dsm_errmsg(), "no error") != 0 && dsm_errmsg()[0] != '\0');
        if (prefix != NULL)
            CHECK(strncmp(dsm_errmsg(), prefix, strlen(prefix)) == 0);
    }
    after = snapshot(s);
    if (rc < 0) {
        CHECK(strcmp(after, *before) == 0);
        free(after);
    } else {
        free(*before);
        *before = after;
    }
}

/* Whatever a setting holds shows as text that is accepted again, unchanged. */
static void check_round_trip(dsm_settings *s)
{
    dsm_setting_info info;

    for (size_t i = 0; dsm_settings_describe(s, i, &info) == 0; i++) {
        char *v = show(s, info.name), *again;

        CHECK(dsm_settings_set(s, info.name, v) == 0);
        again = show(s, info.name);
        CHECK(strcmp(v, again) == 0);
        free(v);
        free(again);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"mem",   "delta", "timeout", "count",
                                        "label", "mode",  "app.enabled", "dsm_max_segments"};
    dsm_settings *s = new_app();
    char *before = snapshot(s), *text;
    int rc;

    /* 1. The whole input as a config file. */
    rc = dsm_settings_load_buffer(s, (const char *)data, size, "fuzz.conf");
    check_outcome(s, rc, &before, "fuzz.conf");

    /* 2. As a -c option and as a value: C strings end at the first NUL. */
    text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    rc = dsm_settings_parse_option(s, text);
    check_outcome(s, rc, &before, NULL);
    if (size > 0) {
        rc = dsm_settings_set(s, names[data[0] % (sizeof(names) / sizeof(names[0]))], text + 1);
        check_outcome(s, rc, &before, NULL);
    }

    check_round_trip(s);
    free(text);
    free(before);
    dsm_settings_free(s);
    return 0;
}
