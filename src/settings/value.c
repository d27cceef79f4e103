/* SPDX-License-Identifier: MIT */
/*
 * value.c - one value as text: parse it into a typed candidate for a given
 * setting, move a candidate in, and print the current value.
 *
 * Parsing is where every rule a value must obey is enforced, and where
 * every message about a bad value is written, so the API, -c options and
 * config files refuse the same values with the same words.  Each message
 * names the setting, quotes the value and says what would have been
 * accepted, because the person reading it is usually an operator editing a
 * file, not the programmer who defined the setting.
 *
 * Surrounding whitespace is ignored for Booleans, integers and enums (it
 * can only come from a quoted file value or an API caller, and never
 * changes the meaning); a string is taken exactly as given.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "settings_int.h"

/* *start and *len describe text without its leading and trailing whitespace. */
static void trim(const char *text, const char **start, size_t *len)
{
    size_t n = strlen(text);

    while (n > 0 && dsm__is_space(*text)) {
        text++;
        n--;
    }
    while (n > 0 && dsm__is_space(text[n - 1]))
        n--;
    *start = text;
    *len = n;
}

static char fold(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; /* NOLINT(bugprone-narrowing-conversions): ASCII letters fit */
}

/* Is p[0..len) a case-insensitive prefix of word, at least minlen long? */
static bool prefix_of(const char *word, const char *p, size_t len, size_t minlen)
{
    if (len < minlen || len > strlen(word))
        return false;
    for (size_t i = 0; i < len; i++)
        if (fold(p[i]) != fold(word[i]))
            return false;
    return true;
}

/*
 * PostgreSQL's parse_bool(): any unique prefix of true/false/yes/no, "on",
 * "of(f)", and exactly "1" or "0".  A lone "o" is ambiguous and refused.
 */
static int parse_bool(const struct dsm__setting *st, const char *text, bool *out)
{
    const char *p;
    size_t len;

    trim(text, &p, &len);
    if (prefix_of("true", p, len, 1) || prefix_of("yes", p, len, 1) ||
        prefix_of("on", p, len, 2) || (len == 1 && p[0] == '1')) {
        *out = true;
        return 0;
    }
    if (prefix_of("false", p, len, 1) || prefix_of("no", p, len, 1) ||
        prefix_of("off", p, len, 2) || (len == 1 && p[0] == '0')) {
        *out = false;
        return 0;
    }
    return dsm__error(-EINVAL,
                      "invalid value for parameter \"%s\": \"%.*s%s\"; a Boolean value is "
                      "required (on, off, true, false, yes, no, 1, 0)",
                      st->name, DSM__CLIP(text));
}

static int parse_enum(const struct dsm__setting *st, const char *text, int *out)
{
    char list[384];
    size_t o = 0;
    const char *p;
    size_t len;

    trim(text, &p, &len);
    for (size_t i = 0; i < st->nchoices; i++) {
        const char *c = st->choices[i];

        if (strlen(c) == len && prefix_of(c, p, len, 0)) {
            *out = (int)i;
            return 0;
        }
    }
    /* Build "a, b, c"; a list too long for one message ends in "...". */
    list[0] = '\0';
    for (size_t i = 0; i < st->nchoices; i++) {
        int w = snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "", st->choices[i]);

        if (w < 0 || (size_t)w >= sizeof(list) - o) {
            memcpy(list + sizeof(list) - 4, "...", 4);
            break;
        }
        o += (size_t)w;
    }
    return dsm__error(-EINVAL, "invalid value for parameter \"%s\": \"%.*s%s\"; valid values: %s",
                      st->name, DSM__CLIP(text), list);
}

static int parse_int(const struct dsm__setting *st, const char *text, int64_t *out)
{
    char v[32], lo[32], hi[32];
    int64_t i;
    int rc = dsm__int_parse(st->name, st->info.unit, text, &i);

    if (rc < 0)
        return rc;
    if (i < st->info.min || i > st->info.max) {
        dsm__int_format(i, st->info.unit, v, sizeof(v));
        dsm__int_format(st->info.min, st->info.unit, lo, sizeof(lo));
        dsm__int_format(st->info.max, st->info.unit, hi, sizeof(hi));
        return dsm__error(-EINVAL, "%s is outside the valid range for parameter \"%s\" (%s .. %s)",
                          v, st->name, lo, hi);
    }
    *out = i;
    return 0;
}

int dsm__value_parse(const struct dsm__setting *st, const char *text, struct dsm__value *out)
{
    memset(out, 0, sizeof(*out));
    switch (st->info.type) {
    case DSM_SETTING_BOOL:
        return parse_bool(st, text, &out->b);
    case DSM_SETTING_INT:
        return parse_int(st, text, &out->i);
    case DSM_SETTING_ENUM:
        return parse_enum(st, text, &out->e);
    case DSM_SETTING_STRING:
        out->str = strdup(text);
        if (out->str == NULL)
            return dsm__error(-ENOMEM, "out of memory setting parameter \"%s\"", st->name);
        return 0;
    }
    return dsm__error(-EINVAL, "parameter \"%s\" has an invalid type", st->name);
}

void dsm__value_assign(struct dsm__setting *st, struct dsm__value *v)
{
    /* The old string goes now: getters documented its pointer as dying here. */
    dsm__value_clear(&st->cur);
    st->cur = *v;
    v->str = NULL; /* moved: the caller's clear must not free it */
    st->info.is_default = 0;
}

void dsm__value_clear(struct dsm__value *v)
{
    free(v->str);
    v->str = NULL;
}

int dsm__value_show(const struct dsm__setting *st, char *buf, size_t buflen)
{
    char num[32] = "";
    const char *text = num;
    size_t len;

    switch (st->info.type) {
    case DSM_SETTING_BOOL:
        text = st->cur.b ? "on" : "off";
        break;
    case DSM_SETTING_INT:
        dsm__int_format(st->cur.i, st->info.unit, num, sizeof(num));
        break;
    case DSM_SETTING_ENUM:
        text = st->choices[st->cur.e];
        break;
    case DSM_SETTING_STRING:
        text = st->cur.str;
        break;
    }
    len = strlen(text);
    if (len >= buflen) {
        if (buflen > 0)
            buf[0] = '\0';
        return dsm__error(-ERANGE,
                          "buffer too small to show parameter \"%s\" (%zu bytes needed, %zu given)",
                          st->name, len + 1, buflen);
    }
    memcpy(buf, text, len + 1);
    return 0;
}
