/* SPDX-License-Identifier: MIT */
/*
 * format.c - how dsmctl prints ages, times, sizes and JSON strings, and
 * reads sizes and durations from the command line.
 *
 * JSON output must stay one well-formed document whatever a path contains:
 * data directories and mmap segment paths are arbitrary bytes, so strings
 * are escaped here, in one place, and bytes that are not UTF-8 are replaced
 * (JSON text must be Unicode) rather than passed through.  Sizes in
 * JSON are always exact byte counts; -h (powers of 1024, "1.5MiB") is for
 * people only.  Sizes on the command line accept both spellings people
 * use, "64k", "64kB", "64KiB", all meaning 65536 bytes, as dynshm's own
 * settings do.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "dsmctl.h"

void dsmctl_format_age(int64_t s, char *buf, size_t len)
{
    if (s < 0)
        s = 0; /* a clock stepped backwards */
    if (s < 60)
        snprintf(buf, len, "%llds", (long long)s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 86400)
        snprintf(buf, len, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        snprintf(buf, len, "%lldd%02lldh", (long long)(s / 86400), (long long)(s % 86400 / 3600));
}

void dsmctl_format_time(int64_t epoch, char *buf, size_t len)
{
    time_t t = (time_t)epoch;
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm) == 0)
        snprintf(buf, len, "@%lld", (long long)epoch);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if it is not one. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n;
    unsigned cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2, cp = p[0] & 0x1f;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3, cp = p[0] & 0x0f;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4, cp = p[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void dsmctl_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    putc('"', f);
    while (*p) {
        size_t n;

        switch (*p) {
        case '"': fputs("\\\"", f); p++; continue;
        case '\\': fputs("\\\\", f); p++; continue;
        case '\b': fputs("\\b", f); p++; continue;
        case '\f': fputs("\\f", f); p++; continue;
        case '\n': fputs("\\n", f); p++; continue;
        case '\r': fputs("\\r", f); p++; continue;
        case '\t': fputs("\\t", f); p++; continue;
        default: break;
        }
        if (*p < 0x20 || *p == 0x7f) {
            fprintf(f, "\\u%04x", *p);
            p++;
            continue;
        }
        n = utf8_len(p);
        if (n == 0) {
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        fwrite(p, 1, n, f);
        p += n;
    }
    putc('"', f);
}

const char *dsmctl_format_size(uint64_t n, bool human, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n / 1024;
    int u = 0;

    if (!human || n < 1024) {
        snprintf(buf, len, human ? "%lluB" : "%llu", (unsigned long long)n);
        return buf;
    }
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, len, v < 10 ? "%.1f%s" : "%.0f%s", v, units[u]);
    return buf;
}

/* The multiplier of a unit suffix ("" is bytes or seconds); 0 if unknown. */
static uint64_t unit_of(const char *suffix, const char *const *names, const uint64_t *mult,
                        size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(suffix, names[i]) == 0)
            return mult[i];
    return 0;
}

static bool parse_scaled(const char *s, const char *const *names, const uint64_t *mult,
                         size_t n, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t m;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || (m = unit_of(end, names, mult, n)) == 0 || v > UINT64_MAX / m)
        return false;
    *out = (uint64_t)v * m;
    return true;
}

bool dsmctl_parse_size(const char *s, uint64_t *out)
{
    static const char *const names[] = {"", "b", "k", "kb", "kib", "m", "mb", "mib",
                                        "g", "gb", "gib", "t", "tb", "tib"};
    static const uint64_t mult[] = {1, 1, 1ULL << 10, 1ULL << 10, 1ULL << 10,
                                    1ULL << 20, 1ULL << 20, 1ULL << 20,
                                    1ULL << 30, 1ULL << 30, 1ULL << 30,
                                    1ULL << 40, 1ULL << 40, 1ULL << 40};

    return parse_scaled(s, names, mult, sizeof(mult) / sizeof(mult[0]), out);
}

bool dsmctl_parse_duration(const char *s, int64_t *out)
{
    static const char *const names[] = {"", "s", "m", "min", "h", "d"};
    static const uint64_t mult[] = {1, 1, 60, 60, 3600, 86400};
    uint64_t v;

    if (!parse_scaled(s, names, mult, sizeof(mult) / sizeof(mult[0]), &v) || v > INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}
