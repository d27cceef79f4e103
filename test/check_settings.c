/* SPDX-License-Identifier: MIT */
/*
 * check_settings.c - the settings suite: every type, units, definitions,
 * config-file syntax, -c options, show/describe, and a garbage run.
 *
 * Most cases run against one object holding the built-ins plus a small set
 * of application settings (new_app()), so each type and unit is exercised
 * through the public API the way an application would.  Failures are
 * checked for their code, their message (the text operators will read) and
 * for leaving every value unchanged, via a snapshot of show() output.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dynshm/dsm_impl.h>
#include <dynshm/settings.h>

#include "settings/settings_int.h"
#include "testutil.h"

#define KB INT64_C(1024)
#define MB (KB * 1024)
#define GB (MB * 1024)
#define TB (GB * 1024)

#define ASSERT_OK(expr)                                                                   \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        ck_assert_msg(rc_ == 0, "%s: got %d (%s)", #expr, rc_, dsm_errmsg());             \
    } while (0)

/* The call fails with code, and its message contains needle. */
#define ASSERT_ERR(expr, code, needle)                                                    \
    do {                                                                                  \
        int rc_ = (expr);                                                                 \
        ck_assert_msg(rc_ == (code), "%s: got %d (%s), want %d", #expr, rc_, dsm_errmsg(), \
                      (int)(code));                                                       \
        ck_assert_msg(strstr(dsm_errmsg(), (needle)) != NULL,                             \
                      "%s: message \"%s\" lacks \"%s\"", #expr, dsm_errmsg(), (needle));  \
    } while (0)

static const char *const mode_choices[] = {"Fast", "slow", "Auto", NULL};

/* Built-ins plus one application setting of each kind. */
static dsm_settings *new_app(void)
{
    dsm_settings *s = NULL;

    ASSERT_OK(dsm_settings_new(&s));
    ASSERT_OK(dsm_settings_define_bool(s, "app.enabled", true, "a switch"));
    ASSERT_OK(dsm_settings_define_int(s, "mem", 64 * MB, 0, INT64_MAX, DSM_UNIT_BYTES,
                                      "a memory size"));
    ASSERT_OK(dsm_settings_define_int(s, "delta", 0, INT64_MIN, INT64_MAX, DSM_UNIT_BYTES,
                                      "signed bytes"));
    ASSERT_OK(dsm_settings_define_int(s, "timeout", 1000, -1, INT64_MAX, DSM_UNIT_MS,
                                      "a time"));
    ASSERT_OK(dsm_settings_define_int(s, "count", 50, 10, 100, DSM_UNIT_NONE, "a count"));
    ASSERT_OK(dsm_settings_define_string(s, "label", "dflt", "a string"));
    ASSERT_OK(dsm_settings_define_enum(s, "mode", mode_choices, "fast", "an enum"));
    return s;
}

static int64_t get_int(const dsm_settings *s, const char *name)
{
    int64_t v = -12345;

    ASSERT_OK(dsm_settings_get_int(s, name, &v));
    return v;
}

static const char *get_str(const dsm_settings *s, const char *name)
{
    const char *v = NULL;

    ASSERT_OK(dsm_settings_get_string(s, name, &v));
    return v;
}

static const char *show(const dsm_settings *s, const char *name)
{
    static char buf[DSM__CONFIG_LINE_MAX + 1];

    ASSERT_OK(dsm_settings_show(s, name, buf, sizeof(buf)));
    return buf;
}

/* Every setting as "name=value\n", to prove a failure changed nothing. */
static char *snapshot(const dsm_settings *s)
{
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    dsm_setting_info info;

    ck_assert_ptr_nonnull(out);
    out[0] = '\0';
    for (size_t i = 0; dsm_settings_describe(s, i, &info) == 0; i++) {
        const char *v = show(s, info.name);
        size_t need = strlen(info.name) + strlen(v) + 4;

        if (len + need > cap) {
            cap = (len + need) * 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        len += (size_t)snprintf(out + len, cap - len, "%s=%s%s\n", info.name, v,
                                info.is_default ? "" : "*");
    }
    return out;
}

/* The description of a setting by name (built-ins may be added in any order). */
static dsm_setting_info describe_name(const dsm_settings *s, const char *name)
{
    dsm_setting_info info;

    for (size_t i = 0; dsm_settings_describe(s, i, &info) == 0; i++)
        if (strcmp(info.name, name) == 0)
            return info;
    ck_abort_msg("no setting \"%s\"", name);
    return info;
}

/* How many settings dsm_settings_new() defines. */
static size_t builtin_count(void)
{
    dsm_settings *s = NULL;
    dsm_setting_info info;
    size_t n = 0;

    ASSERT_OK(dsm_settings_new(&s));
    while (dsm_settings_describe(s, n, &info) == 0)
        n++;
    dsm_settings_free(s);
    return n;
}

/* ---------------------------------------------------------------- types */

START_TEST(test_builtins)
{
    dsm_settings *s = NULL;
    const char *expect[DSM_IMPL_NTYPES + 1];
    dsm_setting_info info;
    size_t n = 0;
    int e = -1;

    ASSERT_OK(dsm_settings_new(&s));
    /* Choices: the available backends in table order, "none" (type 0) last. */
    for (int k = 1; k <= DSM_IMPL_NTYPES; k++)
        if (dsm_impl_type_available((dsm_impl_type)(k % DSM_IMPL_NTYPES)))
            expect[n++] = dsm_impl_type_name((dsm_impl_type)(k % DSM_IMPL_NTYPES));
    info = describe_name(s, "dynamic_shared_memory_type");
    ck_assert_int_eq(info.type, DSM_SETTING_ENUM);
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(info.choices[i]);
        ck_assert_str_eq(info.choices[i], expect[i]);
    }
    ck_assert_ptr_null(info.choices[n]);
    ck_assert_str_eq(info.choices[n - 1], dsm_impl_type_name(DSM_IMPL_NONE));
    ck_assert_str_eq(get_str(s, "dynamic_shared_memory_type"),
                     dsm_impl_type_name(dsm_impl_default_type()));

    info = describe_name(s, "dsm_max_segments");
    ck_assert_int_eq(info.type, DSM_SETTING_INT);
    ck_assert_int_eq(info.min, 1);
    ck_assert_int_eq(info.max, 16777216);
    ck_assert_int_eq(info.unit, DSM_UNIT_NONE);
    ck_assert_int_eq(get_int(s, "dsm_max_segments"), 1024);

    info = describe_name(s, "dsm_crash_policy");
    ck_assert_str_eq(get_str(s, "dsm_crash_policy"), "reset");
    ASSERT_OK(dsm_settings_get_enum(s, "dsm_crash_policy", &e));
    ck_assert_int_eq(e, 0);
    ck_assert_ptr_nonnull(strstr(info.description, "reclaim releases"));
    ASSERT_OK(dsm_settings_set(s, "dsm_crash_policy", "RECLAIM"));
    ck_assert_str_eq(get_str(s, "dsm_crash_policy"), "reclaim");
    ck_assert_int_eq(describe_name(s, "dsm_crash_policy").is_default, 0);
    ck_assert_int_eq(describe_name(s, "dsm_max_segments").is_default, 1);
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_bool)
{
    dsm_settings *s = new_app();
    static const char *const yes[] = {"on", "ON", "true", "t", "TRU", "yes", "Y", "1", " on "};
    static const char *const no[] = {"off", "of", "OFF", "false", "F", "no", "N", "0"};
    static const char *const bad[] = {"o", "", "2", "onn", "yess", "maybe", "10", "truee"};
    bool b = false;

    ASSERT_OK(dsm_settings_get_bool(s, "app.enabled", &b));
    ck_assert(b);
    for (size_t i = 0; i < DSM_ARRAY_LEN(no); i++) {
        ASSERT_OK(dsm_settings_set(s, "app.enabled", "on"));
        ASSERT_OK(dsm_settings_set(s, "app.enabled", no[i]));
        ASSERT_OK(dsm_settings_get_bool(s, "app.enabled", &b));
        ck_assert_msg(!b, "%s", no[i]);
        ck_assert_str_eq(show(s, "app.enabled"), "off");
    }
    for (size_t i = 0; i < DSM_ARRAY_LEN(yes); i++) {
        ASSERT_OK(dsm_settings_set(s, "app.enabled", "off"));
        ASSERT_OK(dsm_settings_set(s, "app.enabled", yes[i]));
        ASSERT_OK(dsm_settings_get_bool(s, "app.enabled", &b));
        ck_assert_msg(b, "%s", yes[i]);
        ck_assert_str_eq(show(s, "app.enabled"), "on");
    }
    for (size_t i = 0; i < DSM_ARRAY_LEN(bad); i++) {
        ASSERT_ERR(dsm_settings_set(s, "app.enabled", bad[i]), -EINVAL,
                   "invalid value for parameter \"app.enabled\"");
        ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "Boolean"));
        ASSERT_OK(dsm_settings_get_bool(s, "app.enabled", &b));
        ck_assert(b);
    }
    ASSERT_ERR(dsm_settings_set(s, "app.enabled", "maybe"), -EINVAL,
               "invalid value for parameter \"app.enabled\": \"maybe\"; a Boolean value is "
               "required (on, off, true, false, yes, no, 1, 0)");
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_string)
{
    dsm_settings *s = new_app();
    const char *p;

    ck_assert_str_eq(get_str(s, "label"), "dflt");
    ASSERT_OK(dsm_settings_set(s, "LABEL", "  two words  "));
    ck_assert_str_eq(get_str(s, "label"), "  two words  ");
    ck_assert_str_eq(show(s, "label"), "  two words  ");
    ASSERT_OK(dsm_settings_set(s, "label", ""));
    ck_assert_str_eq(get_str(s, "label"), "");
    ASSERT_OK(dsm_settings_define_string(s, "nodefault", NULL, NULL));
    ck_assert_str_eq(get_str(s, "nodefault"), "");
    ASSERT_ERR(dsm_settings_set(s, "label", NULL), -EINVAL, "no value given");
    /* The pointer a getter returned is stable until the next change. */
    p = get_str(s, "label");
    ASSERT_OK(dsm_settings_get_string(s, "label", &p));
    ck_assert_str_eq(p, "");
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_enum)
{
    dsm_settings *s = new_app();
    char want[512];
    dsm_setting_info info;
    int e = -1;

    ck_assert_str_eq(get_str(s, "mode"), "Fast"); /* default stored as spelled in choices */
    ASSERT_OK(dsm_settings_set(s, "mode", "AUTO"));
    ck_assert_str_eq(get_str(s, "mode"), "Auto");
    ck_assert_str_eq(show(s, "mode"), "Auto");
    ASSERT_OK(dsm_settings_get_enum(s, "Mode", &e));
    ck_assert_int_eq(e, 2);
    ASSERT_OK(dsm_settings_set(s, "mode", " slow\t"));
    ck_assert_str_eq(get_str(s, "mode"), "slow");
    ASSERT_ERR(dsm_settings_set(s, "mode", "sl"), -EINVAL,
               "invalid value for parameter \"mode\": \"sl\"; valid values: Fast, slow, Auto");
    ck_assert_str_eq(get_str(s, "mode"), "slow");

    /* The built-in backend switch lists exactly its choices, in order. */
    info = describe_name(s, "dynamic_shared_memory_type");
    snprintf(want, sizeof(want),
             "invalid value for parameter \"dynamic_shared_memory_type\": \"posixx\"; valid "
             "values: ");
    for (size_t i = 0; info.choices[i] != NULL; i++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%s", i ? ", " : "",
                 info.choices[i]);
    ASSERT_ERR(dsm_settings_set(s, "dynamic_shared_memory_type", "posixx"), -EINVAL, want);
    ck_assert_str_eq(dsm_errmsg(), want);
    for (size_t i = 0; info.choices[i] != NULL; i++) {
        char upper[32];

        snprintf(upper, sizeof(upper), "%s", info.choices[i]);
        for (char *c = upper; *c; c++)
            if (*c >= 'a' && *c <= 'z')
                *c = (char)(*c - 'a' + 'A');
        ASSERT_OK(dsm_settings_set(s, "dynamic_shared_memory_type", upper));
        ck_assert_str_eq(get_str(s, "dynamic_shared_memory_type"), info.choices[i]);
        ASSERT_OK(dsm_settings_get_enum(s, "dynamic_shared_memory_type", &e));
        ck_assert_int_eq(e, (int)i);
    }
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_lookup_and_types)
{
    dsm_settings *s = new_app();
    const char *str;
    int64_t i;
    bool b;
    int e;

    ck_assert_int_eq(get_int(s, "DSM_Max_Segments"), 1024);
    ASSERT_ERR(dsm_settings_get_int(s, "foo", &i), -ENOENT,
               "unrecognized configuration parameter \"foo\"");
    ck_assert_str_eq(dsm_errmsg(), "unrecognized configuration parameter \"foo\"");
    ASSERT_ERR(dsm_settings_set(s, "foo", "1"), -ENOENT,
               "unrecognized configuration parameter \"foo\"");
    ASSERT_ERR(dsm_settings_get_int(s, "label", &i), -EINVAL,
               "parameter \"label\" is of type string, not integer");
    ASSERT_ERR(dsm_settings_get_bool(s, "count", &b), -EINVAL, "not Boolean");
    ASSERT_ERR(dsm_settings_get_string(s, "count", &str), -EINVAL, "not string");
    ASSERT_ERR(dsm_settings_get_enum(s, "label", &e), -EINVAL, "not enum");
    ASSERT_ERR(dsm_settings_get_int(s, "count", NULL), -EINVAL, "no place");
    ASSERT_ERR(dsm_settings_get_int(NULL, "count", &i), -EINVAL, "no settings object");
    ASSERT_ERR(dsm_settings_set(s, NULL, "1"), -EINVAL, "no settings object");
    ASSERT_ERR(dsm_settings_new(NULL), -EINVAL, "no place");
    dsm_settings_free(NULL);
    dsm_settings_free(s);
}
END_TEST

/* ---------------------------------------------------------------- units */

struct int_case {
    const char *name, *text;
    int64_t want;
};

START_TEST(test_units_accepted)
{
    static const struct int_case cases[] = {
        {"mem", "0", 0},
        {"mem", "0B", 0},
        {"mem", "0 TB", 0},
        {"mem", "64", 64},
        {"mem", "64B", 64},
        {"mem", "64MB", 64 * MB},
        {"mem", "64 MB", 64 * MB},
        {"mem", "  64\tMB  ", 64 * MB},
        {"mem", "+64kB", 64 * KB},
        {"mem", "1TB", TB},
        {"mem", "1.5GB", GB + GB / 2},
        {"mem", ".5kB", 512},
        {"mem", "2.kB", 2048},
        {"mem", "0.4B", 0},
        {"mem", "0.5B", 1}, /* halves round away from zero */
        {"mem", "1.0009765625kB", 1025},
        {"mem", "0x40", 64},
        {"mem", "0X10MB", 16 * MB},
        {"mem", "010", 10}, /* not octal */
        {"mem", "8388607TB", INT64_C(8388607) * TB},
        {"mem", "9223372036854775807", INT64_MAX},
        {"mem", "0x7fffffffffffffff", INT64_MAX},
        {"delta", "-5MB", -5 * MB},
        {"delta", "-1.5kB", -1536},
        {"delta", "-9223372036854775808", INT64_MIN},
        {"delta", "-8388608TB", INT64_MIN},
        {"delta", "-0", 0},
        {"timeout", "100", 100},
        {"timeout", "100ms", 100},
        {"timeout", "2s", 2000},
        {"timeout", "1 min", 60000},
        {"timeout", "1h", 3600000},
        {"timeout", "1d", 86400000},
        {"timeout", "0.5s", 500},
        {"timeout", "1500us", 2},
        {"timeout", "1499us", 1},
        {"timeout", "499us", 0},
        {"timeout", "-1", -1},
        {"timeout", "-500us", -1},
        {"timeout", "1.5", 2},
        {"count", "10", 10},
        {"count", "100", 100},
        {"count", " 42 ", 42},
    };
    dsm_settings *s = new_app();

    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        int rc = dsm_settings_set(s, cases[i].name, cases[i].text);

        ck_assert_msg(rc == 0, "%s = \"%s\": %d %s", cases[i].name, cases[i].text, rc,
                      dsm_errmsg());
        ck_assert_msg(get_int(s, cases[i].name) == cases[i].want, "%s = \"%s\": got %lld",
                      cases[i].name, cases[i].text, (long long)get_int(s, cases[i].name));
    }
    dsm_settings_free(s);
}
END_TEST

struct bad_case {
    const char *name, *text, *msg;
};

START_TEST(test_units_rejected)
{
    static const struct bad_case cases[] = {
        {"mem", "9999999TB", "invalid value for parameter \"mem\": \"9999999TB\"; the value "
                             "exceeds the 64-bit integer range"},
        {"mem", "8388608TB", "exceeds the 64-bit integer range"},
        {"mem", "9223372036854775808", "exceeds the 64-bit integer range"},
        {"mem", "99999999999999999999999", "exceeds the 64-bit integer range"},
        {"mem", "0x10000000000000000", "exceeds the 64-bit integer range"},
        {"mem", "9000000.5TB", "exceeds the 64-bit integer range"},
        {"delta", "-9223372036854775809", "exceeds the 64-bit integer range"},
        {"timeout", "106751991168d", "exceeds the 64-bit integer range"},
        {"mem", "64XB", "invalid value for parameter \"mem\": \"64XB\"; valid units for this "
                        "parameter are B, kB, MB, GB, TB"},
        {"mem", "64mb", "valid units for this parameter are B, kB, MB, GB, TB"},
        {"mem", "64 K B", "invalid value for parameter \"mem\""},
        {"mem", "64 ms", "valid units for this parameter are B, kB, MB, GB, TB"},
        {"timeout", "1 MB", "valid units for this parameter are us, ms, s, min, h, d"},
        {"timeout", "1sec", "valid units for this parameter are us, ms, s, min, h, d"},
        {"mem", "", "a number with an optional unit is required (valid units: B, kB, MB"},
        {"mem", "MB", "a number with an optional unit is required"},
        {"mem", "abc", "a number with an optional unit is required"},
        {"mem", "5 5", "invalid value for parameter \"mem\": \"5 5\""},
        {"mem", "1.5.5", "invalid value"},
        {"mem", "--5", "invalid value"},
        {"mem", ".", "invalid value"},
        {"mem", "1e3", "valid units"},
        {"mem", "0x10.5MB", "invalid value"},
        {"mem", "-5MB", "-5MB is outside the valid range for parameter \"mem\" (0 .. "
                        "9223372036854775807B)"},
        {"count", "5", "5 is outside the valid range for parameter \"count\" (10 .. 100)"},
        {"count", "101", "101 is outside the valid range for parameter \"count\" (10 .. 100)"},
        {"count", "1.5", "invalid value for parameter \"count\": \"1.5\"; an integer is required"},
        {"count", "50MB", "invalid value for parameter \"count\": \"50MB\"; this parameter takes "
                          "no unit"},
        {"count", "fifty", "an integer is required"},
        {"timeout", "-2", "-2ms is outside the valid range for parameter \"timeout\" (-1ms .. "},
    };
    dsm_settings *s = new_app();
    char *before = snapshot(s);

    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        char *after;
        int rc = dsm_settings_set(s, cases[i].name, cases[i].text);

        ck_assert_msg(rc == -EINVAL, "%s = \"%s\": got %d", cases[i].name, cases[i].text, rc);
        ck_assert_msg(strstr(dsm_errmsg(), cases[i].msg) != NULL,
                      "%s = \"%s\": message \"%s\" lacks \"%s\"", cases[i].name, cases[i].text,
                      dsm_errmsg(), cases[i].msg);
        after = snapshot(s);
        ck_assert_str_eq(after, before);
        free(after);
    }
    free(before);
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_units_range_message)
{
    dsm_settings *s = NULL;

    ASSERT_OK(dsm_settings_new(&s));
    ASSERT_OK(dsm_settings_define_int(s, "buf", 64 * MB, MB, GB, DSM_UNIT_BYTES, NULL));
    ASSERT_OK(dsm_settings_define_int(s, "nap", 2000, 10, 3600000, DSM_UNIT_MS, NULL));
    ASSERT_ERR(dsm_settings_set(s, "buf", "2GB"), -EINVAL,
               "2GB is outside the valid range for parameter \"buf\" (1MB .. 1GB)");
    ck_assert_str_eq(dsm_errmsg(),
                     "2GB is outside the valid range for parameter \"buf\" (1MB .. 1GB)");
    ASSERT_ERR(dsm_settings_set(s, "nap", "2h"), -EINVAL,
               "2h is outside the valid range for parameter \"nap\" (10ms .. 1h)");
    ASSERT_ERR(dsm_settings_set(s, "nap", "9400us"), -EINVAL, "9ms is outside the valid range");
    ASSERT_OK(dsm_settings_set(s, "nap", "9500us")); /* 9.5ms rounds up into range */
    ck_assert_int_eq(get_int(s, "nap"), 10);
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_format)
{
    static const struct {
        int64_t v;
        dsm_setting_unit unit;
        const char *want;
    } cases[] = {
        {0, DSM_UNIT_BYTES, "0"},          {1, DSM_UNIT_BYTES, "1B"},
        {1023, DSM_UNIT_BYTES, "1023B"},   {1024, DSM_UNIT_BYTES, "1kB"},
        {1536, DSM_UNIT_BYTES, "1536B"},   {512 * KB, DSM_UNIT_BYTES, "512kB"},
        {64 * MB, DSM_UNIT_BYTES, "64MB"}, {GB, DSM_UNIT_BYTES, "1GB"},
        {1536 * MB, DSM_UNIT_BYTES, "1536MB"}, {4096 * TB, DSM_UNIT_BYTES, "4096TB"},
        {-2048, DSM_UNIT_BYTES, "-2kB"},   {INT64_MAX, DSM_UNIT_BYTES, "9223372036854775807B"},
        {INT64_MIN, DSM_UNIT_BYTES, "-8388608TB"},
        {100, DSM_UNIT_MS, "100ms"},       {2000, DSM_UNIT_MS, "2s"},
        {60000, DSM_UNIT_MS, "1min"},      {90000, DSM_UNIT_MS, "90s"},
        {3600000, DSM_UNIT_MS, "1h"},      {86400000, DSM_UNIT_MS, "1d"},
        {-1, DSM_UNIT_MS, "-1ms"},         {1024, DSM_UNIT_NONE, "1024"},
        {-7, DSM_UNIT_NONE, "-7"},
    };
    char buf[64];

    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        dsm__int_format(cases[i].v, cases[i].unit, buf, sizeof(buf));
        ck_assert_str_eq(buf, cases[i].want);
    }
}
END_TEST

/* show() output must read back as the same value, for any value. */
START_TEST(test_show_round_trip)
{
    static const char *const names[] = {"mem", "delta", "timeout"};
    dsm_settings *s = new_app();
    uint64_t x = 88172645463325252u;

    for (int i = 0; i < 3000; i++) {
        const char *name = names[i % 3];
        char text[64];
        int64_t v;

        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        v = (int64_t)(x >> (x % 64)); /* every magnitude, often round numbers */
        if (i % 5 == 0)
            v = (int64_t)((x % 1000) << (10 * (x % 5)));
        if (name[0] != 'd' && v < 0)
            v = -(v + 1);
        if (name[0] == 't' && i % 7 == 0)
            v = (int64_t)(x % 100) * 3600000;
        ASSERT_OK(dsm_settings_set(s, name, "0"));
        snprintf(text, sizeof(text), "%lld", (long long)v);
        ASSERT_OK(dsm_settings_set(s, name, text));
        ck_assert_int_eq(get_int(s, name), v);
        snprintf(text, sizeof(text), "%s", show(s, name));
        ASSERT_OK(dsm_settings_set(s, name, "0"));
        ASSERT_OK(dsm_settings_set(s, name, text));
        ck_assert_msg(get_int(s, name) == v, "%s: %lld shown as %s", name, (long long)v, text);
    }
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_show_buffer)
{
    dsm_settings *s = new_app();
    char buf[8];

    ck_assert_str_eq(show(s, "mem"), "64MB");
    ck_assert_str_eq(show(s, "timeout"), "1s");
    ck_assert_str_eq(show(s, "count"), "50");
    ck_assert_str_eq(show(s, "app.enabled"), "on");
    ck_assert_str_eq(show(s, "label"), "dflt");
    ASSERT_OK(dsm_settings_show(s, "mem", buf, 5)); /* "64MB" + NUL fits exactly */
    ck_assert_str_eq(buf, "64MB");
    ASSERT_ERR(dsm_settings_show(s, "mem", buf, 4), -ERANGE, "buffer too small");
    ck_assert_str_eq(buf, "");
    ASSERT_ERR(dsm_settings_show(s, "mem", NULL, 0), -ERANGE, "buffer too small");
    ASSERT_ERR(dsm_settings_show(s, "nope", buf, sizeof(buf)), -ENOENT, "unrecognized");
    dsm_settings_free(s);
}
END_TEST

/* --------------------------------------------------------- definitions */

START_TEST(test_define_errors)
{
    static const char *const dup_choices[] = {"a", "A", NULL};
    static const char *const empty_choice[] = {"a", "", NULL};
    static const char *const no_choices[] = {NULL};
    static const char *const ab[] = {"a", "Bee", NULL};
    char name64[65], name63[64];
    dsm_settings *s = new_app();
    dsm_setting_info info;
    size_t n = 0;

    while (dsm_settings_describe(s, n, &info) == 0)
        n++;
    memset(name64, 'x', 64);
    name64[64] = '\0';
    memset(name63, 'y', 63);
    name63[63] = '\0';

    ASSERT_ERR(dsm_settings_define_bool(s, "", true, NULL), -EINVAL, "the name is empty");
    ASSERT_ERR(dsm_settings_define_bool(s, NULL, true, NULL), -EINVAL, "the name is empty");
    ASSERT_ERR(dsm_settings_define_bool(s, "1abc", true, NULL), -EINVAL,
               "invalid parameter name \"1abc\"");
    ASSERT_ERR(dsm_settings_define_bool(s, ".abc", true, NULL), -EINVAL, "invalid parameter");
    ASSERT_ERR(dsm_settings_define_bool(s, "a-b", true, NULL), -EINVAL, "invalid parameter");
    ASSERT_ERR(dsm_settings_define_bool(s, "a b", true, NULL), -EINVAL, "invalid parameter");
    ASSERT_ERR(dsm_settings_define_bool(s, "caf\xc3\xa9", true, NULL), -EINVAL, "invalid");
    ASSERT_ERR(dsm_settings_define_bool(s, name64, true, NULL), -EINVAL,
               "longer than 63 characters");
    ASSERT_ERR(dsm_settings_define_bool(s, "mem", true, NULL), -EEXIST,
               "parameter \"mem\" is already defined");
    ASSERT_ERR(dsm_settings_define_int(s, "DSM_MAX_SEGMENTS", 1, 0, 2, DSM_UNIT_NONE, NULL),
               -EEXIST, "already defined");
    ASSERT_ERR(dsm_settings_define_int(s, "i1", 5, 10, 100, DSM_UNIT_NONE, NULL), -EINVAL,
               "default 5 is outside the valid range for parameter \"i1\" (10 .. 100)");
    ASSERT_ERR(dsm_settings_define_int(s, "i2", 5, 10, 1, DSM_UNIT_NONE, NULL), -EINVAL,
               "empty range");
    ASSERT_ERR(dsm_settings_define_int(s, "i3", 5, 0, 10, (dsm_setting_unit)7, NULL), -EINVAL,
               "invalid unit");
    ASSERT_ERR(dsm_settings_define_enum(s, "e1", ab, "c", NULL), -EINVAL,
               "default \"c\" of parameter \"e1\" is not one of its choices");
    ASSERT_ERR(dsm_settings_define_enum(s, "e2", ab, NULL, NULL), -EINVAL, "has no default");
    ASSERT_ERR(dsm_settings_define_enum(s, "e3", NULL, "a", NULL), -EINVAL, "at least one");
    ASSERT_ERR(dsm_settings_define_enum(s, "e4", no_choices, "a", NULL), -EINVAL,
               "at least one");
    ASSERT_ERR(dsm_settings_define_enum(s, "e5", dup_choices, "a", NULL), -EINVAL, "twice");
    ASSERT_ERR(dsm_settings_define_enum(s, "e6", empty_choice, "a", NULL), -EINVAL,
               "empty choice");
    ASSERT_ERR(dsm_settings_define_bool(NULL, "x", true, NULL), -EINVAL, "no settings");
    ck_assert_int_eq(dsm_settings_describe(s, n, &info), -ENOENT); /* nothing was added */

    ASSERT_OK(dsm_settings_define_bool(s, name63, true, NULL));
    ASSERT_OK(dsm_settings_define_bool(s, "_x.y_9.z", false, NULL));
    ASSERT_OK(dsm_settings_define_enum(s, "e7", ab, "bee", "two letters"));
    ck_assert_str_eq(get_str(s, "e7"), "Bee");
    ASSERT_OK(dsm_settings_define_int(s, "i4", INT64_MIN, INT64_MIN, INT64_MIN, DSM_UNIT_MS,
                                      NULL));
    ck_assert_int_eq(get_int(s, "i4"), INT64_MIN);
    ASSERT_OK(dsm_settings_describe(s, n + 2, &info));
    ck_assert_str_eq(info.name, "e7");
    ck_assert_str_eq(info.description, "two letters");
    ck_assert_str_eq(info.choices[1], "Bee");
    ck_assert_ptr_null(info.choices[2]);
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_describe)
{
    /* Application settings follow the built-ins, in definition order. */
    static const char *const order[] = {"app.enabled", "mem",   "delta", "timeout",
                                        "count",       "label", "mode"};
    dsm_settings *s = new_app();
    dsm_setting_info info, again;
    size_t nb = builtin_count(), i;

    ASSERT_OK(dsm_settings_describe(s, 0, &info));
    ck_assert_str_eq(info.name, "dynamic_shared_memory_type");
    for (i = 0; dsm_settings_describe(s, i, &info) == 0; i++) {
        ck_assert_uint_lt(i, nb + DSM_ARRAY_LEN(order));
        if (i >= nb)
            ck_assert_str_eq(info.name, order[i - nb]);
        ck_assert_int_eq(info.is_default, 1);
        ck_assert_ptr_nonnull(info.description);
        ck_assert_uint_gt(strlen(info.description), 0);
        ck_assert_int_eq(dsm__name_check(info.name), 0);
    }
    ck_assert_uint_eq(i, nb + DSM_ARRAY_LEN(order));
    ASSERT_ERR(dsm_settings_describe(s, i, &info), -ENOENT, "no parameter number");
    ASSERT_ERR(dsm_settings_describe(s, (size_t)-1, &info), -ENOENT, "no parameter number");
    ASSERT_ERR(dsm_settings_describe(s, 0, NULL), -EINVAL, "no place");

    ASSERT_OK(dsm_settings_describe(s, nb + 1, &info));
    ck_assert_str_eq(info.name, "mem");
    ck_assert_int_eq(info.type, DSM_SETTING_INT);
    ck_assert_int_eq(info.unit, DSM_UNIT_BYTES);
    ck_assert_int_eq(info.min, 0);
    ck_assert_int_eq(info.max, INT64_MAX);
    ck_assert_ptr_null(info.choices);
    ck_assert_str_eq(info.description, "a memory size");
    /* Setting a value, even the default one, clears is_default; pointers stay. */
    ASSERT_OK(dsm_settings_set(s, "mem", "64MB"));
    ASSERT_OK(dsm_settings_describe(s, nb + 1, &again));
    ck_assert_int_eq(again.is_default, 0);
    ck_assert_ptr_eq(again.name, info.name);
    ck_assert_ptr_eq(again.description, info.description);
    ASSERT_OK(dsm_settings_describe(s, nb + 6, &info));
    ck_assert_int_eq(info.type, DSM_SETTING_ENUM);
    ck_assert_str_eq(info.choices[0], "Fast");
    ck_assert_str_eq(info.choices[2], "Auto");
    ck_assert_ptr_null(info.choices[3]);
    dsm_settings_free(s);
}
END_TEST

/* ---------------------------------------------------------- config text */

static int load(dsm_settings *s, const char *text)
{
    return dsm_settings_load_buffer(s, text, strlen(text), "test.conf");
}

START_TEST(test_file_syntax)
{
    static const char text[] =
        "# a comment line\n"
        "\n"
        "   \t  \n"
        "mem = 128MB\n"
        "count 20   # '=' is optional, trailing comment\n"
        "timeout=2s\n"
        "label = 'it''s a \\'quoted\\' value # not a comment'  # comment\n"
        "Mode = AUTO\r\n"
        "app.enabled off#comment right after\n"
        "delta = -64 kB\n"
        "dsm_crash_policy = 'reclaim'\n"
        "dsm_max_segments = 0x100\n"
        "  # indented comment, no newline at the end";
    dsm_settings *s = new_app();
    bool b = true;

    ASSERT_OK(load(s, text));
    ck_assert_int_eq(get_int(s, "mem"), 128 * MB);
    ck_assert_int_eq(get_int(s, "count"), 20);
    ck_assert_int_eq(get_int(s, "timeout"), 2000);
    ck_assert_str_eq(get_str(s, "label"), "it's a 'quoted' value # not a comment");
    ck_assert_str_eq(get_str(s, "mode"), "Auto");
    ASSERT_OK(dsm_settings_get_bool(s, "app.enabled", &b));
    ck_assert(!b);
    ck_assert_int_eq(get_int(s, "delta"), -64 * KB);
    ck_assert_str_eq(get_str(s, "dsm_crash_policy"), "reclaim");
    ck_assert_int_eq(get_int(s, "dsm_max_segments"), 256);

    ASSERT_OK(load(s, "label = 'tab\\there\\nnewline \\\\ caf\xc3\xa9 \xe2\x9c\x93'\n"));
    ck_assert_str_eq(get_str(s, "label"), "tab\there\nnewline \\ caf\xc3\xa9 \xe2\x9c\x93");
    ASSERT_OK(load(s, "label = ''\nmem '1GB'\n"));
    ck_assert_str_eq(get_str(s, "label"), "");
    ck_assert_int_eq(get_int(s, "mem"), GB);
    ASSERT_OK(load(s, "label = /var/lib/x:y-z.conf\nlabel'quoted'"));
    ck_assert_str_eq(get_str(s, "label"), "quoted");
    ASSERT_OK(load(s, "count = 11\ncount = 12\nCOUNT = 13\n")); /* the last line wins */
    ck_assert_int_eq(get_int(s, "count"), 13);
    ASSERT_OK(load(s, ""));
    ASSERT_OK(load(s, "\n\n# only comments\n"));
    ASSERT_OK(dsm_settings_load_buffer(s, NULL, 0, NULL));
    ck_assert_int_eq(get_int(s, "count"), 13);
    dsm_settings_free(s);
}
END_TEST

struct file_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    const char *msg;
};

START_TEST(test_file_errors)
{
    static const struct file_case cases[] = {
        {"count =\n", 0, "test.conf:1: missing value for parameter \"count\""},
        {"\n\ncount   # no value\n", 0, "test.conf:3: missing value for parameter \"count\""},
        {"count = 20 30\n", 0,
         "test.conf:1: syntax error: unexpected \"30\" after the value of parameter \"count\""},
        {"label = 'a' b\n", 0, "test.conf:1: syntax error: unexpected \"b\""},
        {"label = abc'def'\n", 0, "syntax error: unexpected \"'def'\""},
        {"mem = 64 MB junk\n", 0, "syntax error: unexpected \"MB junk\""},
        {"count = 20 MB\n", 0, "syntax error: unexpected \"MB\""},
        {"label = 'abc\n", 0,
         "test.conf:1: unterminated quoted string in the value of parameter \"label\""},
        {"label = 'abc\\'\n", 0, "unterminated quoted string"},
        {"label = 'a\nb'\n", 0, "test.conf:1: unterminated"},
        {"count = 20\nlabel = a\0b\n", 23, "test.conf:2: line contains a NUL byte at column 10"},
        {"label = \xff\xfe\n", 0, "test.conf:1: line contains a byte sequence that is not valid "
                                  "UTF-8 at column 9"},
        {"# comment \xc0\xaf overlong\n", 0, "not valid UTF-8"},
        {"label = '\xed\xa0\x80'\n", 0, "not valid UTF-8"}, /* a UTF-16 surrogate */
        {"label = '\xe2\x9c'\n", 0, "not valid UTF-8"},       /* truncated sequence */
        {"label = \x1b[1m\n", 0, "control character 0x1b"},
        {"foo = 1\n", 0, "test.conf:1: unrecognized configuration parameter \"foo\""},
        {"= 5\n", 0, "test.conf:1: syntax error: expected a parameter name at \"= 5\""},
        {"1count = 5\n", 0, "expected a parameter name"},
        {"count == 5\n", 0, "syntax error: unexpected \"=\" in the value of parameter \"count\""},
        {"count-x = 5\n", 0, "unexpected character \"-\" after parameter name \"count\""},
        {"caf\xc3\xa9 = 5\n", 0, "unexpected character \"\xc3\xa9\" after parameter name \"caf\""},
        {"count = 50\nmode = sideways\n", 0,
         "test.conf:2: invalid value for parameter \"mode\": \"sideways\"; valid values: Fast, "
         "slow, Auto"},
        {"count = 500\n", 0,
         "test.conf:1: 500 is outside the valid range for parameter \"count\" (10 .. 100)"},
        {"mem = 9999999TB\n", 0, "test.conf:1: invalid value for parameter \"mem\""},
        {"app.enabled = 'maybe'\n", 0, "a Boolean value is required"},
    };
    dsm_settings *s = new_app();
    char *before = snapshot(s);

    for (size_t i = 0; i < DSM_ARRAY_LEN(cases); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);
        int rc = dsm_settings_load_buffer(s, cases[i].text, len, "test.conf");
        char *after;

        ck_assert_msg(rc == -EINVAL, "case %zu: got %d (%s)", i, rc, dsm_errmsg());
        ck_assert_msg(strstr(dsm_errmsg(), cases[i].msg) != NULL,
                      "case %zu: message \"%s\" lacks \"%s\"", i, dsm_errmsg(), cases[i].msg);
        after = snapshot(s);
        ck_assert_str_eq(after, before);
        free(after);
    }
    free(before);
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_file_long_lines)
{
    size_t n = 100000;
    char *text = malloc(n + 32);
    dsm_settings *s = new_app();
    char *before = snapshot(s);

    ck_assert_ptr_nonnull(text);
    /* A 100k-character value. */
    strcpy(text, "label = '");
    memset(text + 9, 'v', n);
    strcpy(text + 9 + n, "'\n");
    ASSERT_ERR(load(s, text), -EINVAL, "test.conf:1: line is too long (100010 bytes; at most "
                                       "8192 are allowed)");
    /* A 100k-character comment is refused the same way. */
    text[0] = '#';
    ASSERT_ERR(load(s, text), -EINVAL, "line is too long");
    /* A 100k-character name, and the longest line that is allowed. */
    memset(text, 'n', n);
    strcpy(text + n, " = 1\n");
    ASSERT_ERR(load(s, text), -EINVAL, "line is too long");
    ASSERT_ERR(load(s, "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn = 1"),
               -EINVAL, "is too long (at most 63 characters)");
    snprintf(text, n, "label = '");
    memset(text + 9, 'w', 8192 - 10);
    strcpy(text + 8191, "'\n");
    ASSERT_OK(load(s, text));
    ck_assert_uint_eq(strlen(get_str(s, "label")), 8192 - 10);
    free(before);
    before = snapshot(s);
    /* A long value is quoted in messages only in part. */
    memcpy(text, "mode    ", 8);
    ASSERT_ERR(load(s, text), -EINVAL, "wwww...\"; valid values: Fast, slow, Auto");
    ck_assert_uint_lt(strlen(dsm_errmsg()), 200);
    free(text);
    {
        char *after = snapshot(s);

        ck_assert_str_eq(after, before);
        free(after);
    }
    free(before);
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_file_all_or_nothing)
{
    dsm_settings *s = new_app();
    char *before = snapshot(s);
    char *after;

    ASSERT_ERR(load(s, "mem = 1GB\nlabel = 'changed'\ncount = 7\nmode = slow\n"), -EINVAL,
               "test.conf:3: 7 is outside the valid range for parameter \"count\"");
    after = snapshot(s);
    ck_assert_str_eq(after, before);
    free(after);
    ck_assert_int_eq(get_int(s, "mem"), 64 * MB);
    ck_assert_str_eq(get_str(s, "label"), "dflt");

    ASSERT_ERR(load(s, "mem = 1GB\nlabel = 'changed'\nbogus = 7\n"), -EINVAL,
               "test.conf:3: unrecognized configuration parameter \"bogus\"");
    after = snapshot(s);
    ck_assert_str_eq(after, before);
    free(after);
    free(before);
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_buffer_limits)
{
    size_t n = DSM__CONFIG_MAX + 1;
    char *text = malloc(n);
    dsm_settings *s = new_app();

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
        text[i] = i % 64 == 63 ? '\n' : '#';
    ASSERT_ERR(dsm_settings_load_buffer(s, text, n, "big.conf"), -EFBIG,
               "big.conf: configuration text is too large");
    ASSERT_OK(dsm_settings_load_buffer(s, text, n - 1, "big.conf"));
    ASSERT_ERR(dsm_settings_load_buffer(s, NULL, 5, "x"), -EINVAL, "no configuration text");
    ASSERT_ERR(dsm_settings_load_buffer(NULL, "a", 1, "x"), -EINVAL, "no settings object");
    ASSERT_ERR(dsm_settings_load_buffer(s, "foo=1", 5, NULL), -EINVAL,
               "(configuration text):1: unrecognized configuration parameter \"foo\"");
    free(text);
    dsm_settings_free(s);
}
END_TEST

/* ---------------------------------------------------------------- files */

static char tmpdir[256];

static void files_setup(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(tmpdir, sizeof(tmpdir), "%s/dynshm-settings.XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

/* Unchecked teardown: runs even when a test failed half-way. */
static void files_teardown(void)
{
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    char path[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(d);
    rmdir(tmpdir);
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_load_file)
{
    static const char good[] = "# dynshm\nmem = 256MB\nmode = slow\n";
    static const char bad[] = "mem = 256MB\n\nmode = slowest\n";
    char path[512], dir[512];
    dsm_settings *s = new_app();

    snprintf(path, sizeof(path), "%s/good.conf", tmpdir);
    write_file(path, good, strlen(good));
    ASSERT_OK(dsm_settings_load_file(s, path));
    ck_assert_int_eq(get_int(s, "mem"), 256 * MB);
    ck_assert_str_eq(get_str(s, "mode"), "slow");

    snprintf(path, sizeof(path), "%s/bad.conf", tmpdir);
    write_file(path, bad, strlen(bad));
    ASSERT_OK(dsm_settings_set(s, "mem", "1MB"));
    ASSERT_ERR(dsm_settings_load_file(s, path), -EINVAL, "/bad.conf:3: invalid value for "
                                                         "parameter \"mode\": \"slowest\"");
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), tmpdir));
    ck_assert_int_eq(get_int(s, "mem"), MB);

    snprintf(path, sizeof(path), "%s/missing.conf", tmpdir);
    ASSERT_ERR(dsm_settings_load_file(s, path), -ENOENT, "could not open configuration file");
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), path));
    ck_assert_ptr_nonnull(strstr(dsm_errmsg(), strerror(ENOENT)));
    ck_assert_int_eq(errno, ENOENT);

    snprintf(dir, sizeof(dir), "%s/adir", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    ASSERT_ERR(dsm_settings_load_file(s, dir), -EISDIR, "could not read configuration file");

    ASSERT_ERR(dsm_settings_load_file(s, NULL), -EINVAL, "no configuration file");
    dsm_settings_free(s);
}
END_TEST

START_TEST(test_load_file_too_big)
{
    size_t n = DSM__CONFIG_MAX + 100;
    char *text = malloc(n);
    char path[512];
    dsm_settings *s = new_app();

    ck_assert_ptr_nonnull(text);
    for (size_t i = 0; i < n; i++)
        text[i] = i % 80 == 79 ? '\n' : '#';
    snprintf(path, sizeof(path), "%s/big.conf", tmpdir);
    write_file(path, text, n);
    ASSERT_ERR(dsm_settings_load_file(s, path), -EFBIG, "is too large (more than 1048576 bytes)");
    write_file(path, text, DSM__CONFIG_MAX);
    ASSERT_OK(dsm_settings_load_file(s, path));
    free(text);
    dsm_settings_free(s);
}
END_TEST

/* -------------------------------------------------------------- options */

START_TEST(test_parse_option)
{
    dsm_settings *s = new_app();

    ASSERT_OK(dsm_settings_parse_option(s, "dsm_max_segments=4096"));
    ck_assert_int_eq(get_int(s, "dsm_max_segments"), 4096);
    ASSERT_OK(dsm_settings_parse_option(s, "  count =  42  "));
    ck_assert_int_eq(get_int(s, "count"), 42);
    ASSERT_OK(dsm_settings_parse_option(s, "mem=64 MB"));
    ck_assert_int_eq(get_int(s, "mem"), 64 * MB);
    ASSERT_OK(dsm_settings_parse_option(s, "label=a b = c # not a comment"));
    ck_assert_str_eq(get_str(s, "label"), "a b = c # not a comment");
    ASSERT_OK(dsm_settings_parse_option(s, "label='it''s'"));
    ck_assert_str_eq(get_str(s, "label"), "it's");
    ASSERT_OK(dsm_settings_parse_option(s, "label='unterminated"));
    ck_assert_str_eq(get_str(s, "label"), "'unterminated");
    ASSERT_OK(dsm_settings_parse_option(s, "label='a' 'b'"));
    ck_assert_str_eq(get_str(s, "label"), "'a' 'b'");
    ASSERT_OK(dsm_settings_parse_option(s, "label="));
    ck_assert_str_eq(get_str(s, "label"), "");
    ASSERT_OK(dsm_settings_parse_option(s, "mem='1GB'"));
    ck_assert_int_eq(get_int(s, "mem"), GB);
    ASSERT_OK(dsm_settings_parse_option(s, "MODE=auto"));
    ck_assert_str_eq(get_str(s, "mode"), "Auto");

    ASSERT_ERR(dsm_settings_parse_option(s, "dsm_max_segments"), -EINVAL,
               "invalid option \"dsm_max_segments\": expected name=value");
    ASSERT_ERR(dsm_settings_parse_option(s, "=5"), -EINVAL, "the parameter name is missing");
    ASSERT_ERR(dsm_settings_parse_option(s, "  =5"), -EINVAL, "the parameter name is missing");
    ASSERT_ERR(dsm_settings_parse_option(s, "nosuch=1"), -ENOENT,
               "unrecognized configuration parameter \"nosuch\"");
    ASSERT_ERR(dsm_settings_parse_option(s, "count="), -EINVAL,
               "invalid value for parameter \"count\": \"\"");
    ASSERT_ERR(dsm_settings_parse_option(s, "count=1000"), -EINVAL,
               "1000 is outside the valid range");
    ASSERT_ERR(dsm_settings_parse_option(s,
                                         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                         "aaaaaaaaaa=1"),
               -ENOENT, "unrecognized configuration parameter");
    ASSERT_ERR(dsm_settings_parse_option(s, NULL), -EINVAL, "no option");
    ck_assert_int_eq(get_int(s, "count"), 42);
    dsm_settings_free(s);
}
END_TEST

/* -------------------------------------------------------------- garbage */

static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/*
 * Random config text built from fragments of real syntax and random bytes,
 * so some buffers load and most fail somewhere interesting.  A failure must
 * change nothing; a success may change anything.
 */
START_TEST(test_garbage)
{
    static const char *const frags[] = {
        "mem", "count", "label", "mode", "timeout", "delta", "app.enabled", "dsm_crash_policy",
        "dynamic_shared_memory_type", "dsm_max_segments", " ", "  ", "\t", "=", " = ", "'",
        "''", "\\", "#", "\n", "\r\n", "64", "-1", "0x", "1.5", "MB", " kB", "ms", "min", "on",
        "slow", "AUTO", "reclaim", "9999999TB", "\xc3\xa9", "\xff", "\0", "\x01", "e", "."};
    char buf[512];
    dsm_settings *s = new_app();
    char *before = snapshot(s);
    int ok = 0;

    for (int iter = 0; iter < 20000; iter++) {
        size_t len = 0, want = rnd() % sizeof(buf);
        char *after;
        int rc;

        if (iter % 2 == 0) {
            /* Line-shaped: "name = value" lines, now and then one stray byte. */
            for (uint64_t k = rnd() % 5; k > 0; k--) {
                const char *name = frags[rnd() % 10], *val = frags[10 + rnd() % 30];

                len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s = %s\n", name, val);
            }
            if (len > 0 && rnd() % 4 == 0)
                buf[rnd() % len] = (char)rnd();
            want = 0;
        }
        while (len < want) {
            uint64_t r = rnd();

            if (r % 4 == 0) {
                buf[len++] = (char)(r >> 8);
            } else {
                const char *f = frags[(r >> 8) % DSM_ARRAY_LEN(frags)];
                size_t fl = f[0] == '\0' ? 1 : strlen(f);

                if (len + fl > want)
                    break;
                memcpy(buf + len, f, fl);
                len += fl;
            }
        }
        rc = dsm_settings_load_buffer(s, buf, len, "fuzz");
        ck_assert_msg(rc == 0 || rc == -EINVAL, "iteration %d: rc %d (%s)", iter, rc,
                      dsm_errmsg());
        if (rc < 0)
            ck_assert_msg(strncmp(dsm_errmsg(), "fuzz:", 5) == 0, "iteration %d: %s", iter,
                          dsm_errmsg());
        after = snapshot(s);
        if (rc == 0) {
            ok += strcmp(after, before) != 0;
            free(before);
            before = after;
        } else {
            ck_assert_msg(strcmp(after, before) == 0, "iteration %d changed settings", iter);
            free(after);
        }
    }
    ck_assert_int_gt(ok, 100); /* loads that changed something: the apply step is reached */
    free(before);
    dsm_settings_free(s);
}
END_TEST

/* Random text as a value of every setting, and as a -c option. */
START_TEST(test_garbage_values)
{
    static const char alphabet[] = "0123456789.+-xXabkBMGTmsuhdin \t'=#\\\xc3\xa9";
    static const char *const names[] = {"mem", "delta", "timeout", "count", "app.enabled",
                                        "mode", "label"};
    char text[40], opt[80];
    dsm_settings *s = new_app();

    for (int iter = 0; iter < 20000; iter++) {
        size_t len = rnd() % (sizeof(text) - 1);
        const char *name = names[rnd() % DSM_ARRAY_LEN(names)];
        int rc;

        for (size_t i = 0; i < len; i++)
            text[i] = alphabet[rnd() % (sizeof(alphabet) - 1)];
        text[len] = '\0';
        rc = dsm_settings_set(s, name, text);
        ck_assert_msg(rc == 0 || rc == -EINVAL, "%s = \"%s\": %d", name, text, rc);
        if (rc == 0 && strcmp(name, "label") != 0) {
            /* Whatever was accepted shows as text that is accepted again. */
            char shown[64];

            snprintf(shown, sizeof(shown), "%s", show(s, name));
            ASSERT_OK(dsm_settings_set(s, name, shown));
            ck_assert_str_eq(show(s, name), shown);
        }
        snprintf(opt, sizeof(opt), "%s=%s", name, text);
        rc = dsm_settings_parse_option(s, opt);
        ck_assert_msg(rc == 0 || rc == -EINVAL, "-c %s: %d", opt, rc);
    }
    dsm_settings_free(s);
}
END_TEST

Suite *suite_settings(void)
{
    Suite *suite = suite_create("settings");
    TCase *tc;

    tc = tcase_create("types");
    tcase_add_test(tc, test_builtins);
    tcase_add_test(tc, test_bool);
    tcase_add_test(tc, test_string);
    tcase_add_test(tc, test_enum);
    tcase_add_test(tc, test_lookup_and_types);
    suite_add_tcase(suite, tc);

    tc = tcase_create("units");
    tcase_add_test(tc, test_units_accepted);
    tcase_add_test(tc, test_units_rejected);
    tcase_add_test(tc, test_units_range_message);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_show_round_trip);
    tcase_add_test(tc, test_show_buffer);
    suite_add_tcase(suite, tc);

    tc = tcase_create("define");
    tcase_add_test(tc, test_define_errors);
    tcase_add_test(tc, test_describe);
    suite_add_tcase(suite, tc);

    tc = tcase_create("text");
    tcase_add_test(tc, test_file_syntax);
    tcase_add_test(tc, test_file_errors);
    tcase_add_test(tc, test_file_long_lines);
    tcase_add_test(tc, test_file_all_or_nothing);
    tcase_add_test(tc, test_buffer_limits);
    tcase_add_test(tc, test_parse_option);
    suite_add_tcase(suite, tc);

    tc = tcase_create("files");
    tcase_add_unchecked_fixture(tc, files_setup, files_teardown);
    tcase_add_test(tc, test_load_file);
    tcase_add_test(tc, test_load_file_too_big);
    suite_add_tcase(suite, tc);

    tc = tcase_create("garbage");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_garbage_values);
    suite_add_tcase(suite, tc);
    return suite;
}
