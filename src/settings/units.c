/* SPDX-License-Identifier: MIT */
/*
 * units.c - integers with units: "64MB", "1.5 GB", "250ms", "0x40", "-5s".
 *
 * Memory settings are stored in bytes and time settings in milliseconds;
 * the unit a value was written in is converted away at once.  The rules,
 * chosen to match PostgreSQL where it has an answer:
 *   - Units are case-sensitive (kB, not KB or kb), as in PostgreSQL; the
 *     message for an unknown unit lists the valid ones.  Whitespace may
 *     separate the number from its unit.
 *   - A value that is not a whole number of the base unit is rounded to
 *     the nearest one, halves away from zero: "1500us" is 2ms, "1.5kB" is
 *     1536 bytes, "0.4B" is 0.  PostgreSQL rounds too (it uses rint()).
 *     Fractions are only accepted for settings that have a unit: "1.5" for
 *     a plain count is an error, not a silent 2.
 *   - Whole numbers are converted with exact 64-bit arithmetic; only
 *     values with a fractional part go through a double (precise to about
 *     15 significant digits, far beyond what a setting needs).
 *   - Leading zeros do not mean octal ("010" is ten); "0x" means hex,
 *     for whole numbers only.
 *   - Anything beyond the int64 range is an error, computed without ever
 *     overflowing a signed type.
 * Nothing here depends on the locale: the decimal point is always '.'.
 */
#include "config.h"

#include <stdio.h>

#include "settings_int.h"

struct unit_def {
    const char *suffix;
    uint64_t num, den; /* one suffix unit is num/den base units */
};

/* Smallest first; formatting walks them backwards to find the largest exact one. */
static const struct unit_def byte_units[] = {
    {"B", 1, 1},
    {"kB", UINT64_C(1) << 10, 1},
    {"MB", UINT64_C(1) << 20, 1},
    {"GB", UINT64_C(1) << 30, 1},
    {"TB", UINT64_C(1) << 40, 1},
};
static const struct unit_def ms_units[] = {
    {"us", 1, 1000},
    {"ms", 1, 1},
    {"s", 1000, 1},
    {"min", 60L * 1000, 1},
    {"h", 60L * 60 * 1000, 1},
    {"d", 24L * 60 * 60 * 1000, 1},
};

static const struct unit_def *units_of(dsm_setting_unit unit, size_t *n)
{
    switch (unit) {
    case DSM_UNIT_BYTES:
        *n = DSM_ARRAY_LEN(byte_units);
        return byte_units;
    case DSM_UNIT_MS:
        *n = DSM_ARRAY_LEN(ms_units);
        return ms_units;
    case DSM_UNIT_NONE:
        break;
    }
    *n = 0;
    return NULL;
}

const char *dsm__unit_list(dsm_setting_unit unit)
{
    switch (unit) {
    case DSM_UNIT_BYTES:
        return "B, kB, MB, GB, TB";
    case DSM_UNIT_MS:
        return "us, ms, s, min, h, d";
    case DSM_UNIT_NONE:
        break;
    }
    return "";
}

int dsm__int_format(int64_t v, dsm_setting_unit unit, char *buf, size_t buflen)
{
    size_t n;
    const struct unit_def *u = units_of(unit, &n);

    /* Zero has no natural unit; a bare "0" reads back the same for any. */
    if (u != NULL && v != 0)
        for (size_t k = n; k-- > 0;)
            if (u[k].den == 1 && v % (int64_t)u[k].num == 0)
                return snprintf(buf, buflen, "%lld%s", (long long)(v / (int64_t)u[k].num),
                                u[k].suffix);
    return snprintf(buf, buflen, "%lld", (long long)v);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int bad_value(const char *name, dsm_setting_unit unit, const char *text)
{
    if (unit == DSM_UNIT_NONE)
        return dsm__error(-EINVAL,
                          "invalid value for parameter \"%s\": \"%.*s%s\"; an integer is required",
                          name, DSM__CLIP(text));
    return dsm__error(-EINVAL,
                      "invalid value for parameter \"%s\": \"%.*s%s\"; a number with an optional "
                      "unit is required (valid units: %s)",
                      name, DSM__CLIP(text), dsm__unit_list(unit));
}

static int out_of_range(const char *name, const char *text)
{
    return dsm__error(-EINVAL,
                      "invalid value for parameter \"%s\": \"%.*s%s\"; the value exceeds the "
                      "64-bit integer range",
                      name, DSM__CLIP(text));
}

int dsm__int_parse(const char *name, dsm_setting_unit unit, const char *text, int64_t *out)
{
    const char *p = text, *unit_start;
    const struct unit_def *units, *u = NULL;
    const uint64_t limit_pos = (uint64_t)INT64_MAX;
    uint64_t mag = 0, frac = 0, frac_scale = 1, limit;
    size_t nunits, unit_len;
    bool neg = false, digits = false, has_frac = false;

    units = units_of(unit, &nunits);
    while (dsm__is_space(*p))
        p++;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    limit = neg ? limit_pos + 1 : limit_pos;

    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && hexval(p[2]) >= 0) {
        for (p += 2; hexval(*p) >= 0; p++) {
            if (mag > (UINT64_MAX >> 4))
                return out_of_range(name, text);
            mag = (mag << 4) | (uint64_t)hexval(*p);
        }
        digits = true;
    } else {
        for (; *p >= '0' && *p <= '9'; p++) {
            if (mag > (UINT64_MAX - 9) / 10)
                return out_of_range(name, text);
            mag = mag * 10 + (uint64_t)(*p - '0');
            digits = true;
        }
        if (*p == '.') {
            has_frac = true;
            /* Digits past the 18th cannot change a double; skip them. */
            for (p++; *p >= '0' && *p <= '9'; p++) {
                if (frac_scale < UINT64_C(1000000000000000000)) {
                    frac = frac * 10 + (uint64_t)(*p - '0');
                    frac_scale *= 10;
                }
                digits = true;
            }
        }
    }
    if (!digits)
        return bad_value(name, unit, text);

    while (dsm__is_space(*p))
        p++;
    unit_start = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        p++;
    unit_len = (size_t)(p - unit_start);
    while (dsm__is_space(*p))
        p++;
    if (*p != '\0')
        return bad_value(name, unit, text);
    if (unit_len > 0) {
        for (size_t k = 0; k < nunits && u == NULL; k++)
            if (strlen(units[k].suffix) == unit_len &&
                memcmp(units[k].suffix, unit_start, unit_len) == 0)
                u = &units[k];
        if (u == NULL && units == NULL)
            return dsm__error(-EINVAL,
                              "invalid value for parameter \"%s\": \"%.*s%s\"; this parameter "
                              "takes no unit",
                              name, DSM__CLIP(text));
        if (u == NULL)
            return dsm__error(-EINVAL,
                              "invalid value for parameter \"%s\": \"%.*s%s\"; valid units for "
                              "this parameter are %s",
                              name, DSM__CLIP(text), dsm__unit_list(unit));
    } else if (units != NULL) {
        /* A bare number is in the base unit, the one whose factor is 1. */
        for (size_t k = 0; k < nunits && u == NULL; k++)
            if (units[k].num == 1 && units[k].den == 1)
                u = &units[k];
    }
    if (has_frac && units == NULL)
        return bad_value(name, unit, text);

    if (!has_frac) {
        uint64_t num = u ? u->num : 1, den = u ? u->den : 1, q, r;

        if (mag > UINT64_MAX / num)
            return out_of_range(name, text);
        mag *= num;
        q = mag / den;
        r = mag % den;
        if (r >= den - r) /* r >= den/2 without overflow: round half away from zero */
            q++;
        mag = q;
    } else {
        /* 2^63 as a double is exact; anything at or above it cannot fit. */
        const double two63 = 9223372036854775808.0;
        double x = ((double)mag + (double)frac / (double)frac_scale) * (double)u->num /
                   (double)u->den;

        if (!(x < two63))
            return out_of_range(name, text);
        mag = (uint64_t)x;
        if (x - (double)mag >= 0.5)
            mag++;
    }
    if (mag > limit)
        return out_of_range(name, text);
    if (mag == limit_pos + 1)
        *out = INT64_MIN;
    else
        *out = neg ? -(int64_t)mag : (int64_t)mag;
    return 0;
}
