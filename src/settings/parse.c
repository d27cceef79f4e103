/* SPDX-License-Identifier: MIT */
/*
 * parse.c - config text in PostgreSQL's postgresql.conf syntax, config
 * files, and "-c name=value" options.
 *
 * The text comes from operators and, in tests, from a fuzzer, so the
 * parser trusts nothing: the buffer need not be NUL-terminated and may hold
 * any bytes; the whole text is capped at DSM__CONFIG_MAX and each line at
 * DSM__CONFIG_LINE_MAX, so memory is bounded by the input plus one scratch
 * line plus one pending value per defined setting.  NUL bytes, control
 * characters and invalid UTF-8 anywhere in a line (comments included) are
 * errors: they are always a damaged or wrong file, never an intent.
 *
 * Grammar, one line at a time:
 *     line   = ws* [ name ws* ["=" ws*] value ws* ] ["#" anything]
 *     name   = [A-Za-z_][A-Za-z0-9_.]*            (case-insensitive)
 *     value  = "'" (char | "''" | "\" char)* "'"  (a quoted string)
 *            | run of bytes other than ws # ' =   (a bare word or number)
 * Like PostgreSQL, a bare value is one token; as a courtesy an integer
 * setting with a unit also takes "64 MB" (a number, spaces, a unit word).
 * In quotes, '' is a quote and a backslash escapes the next character
 * (\b \f \n \r \t are the usual control characters).  There is no include
 * directive.
 *
 * Loading is two-pass: every line is parsed and its value fully validated
 * (and allocated) into a per-setting pending slot, a later line replacing
 * an earlier one; only if every line passes are the slots applied, which
 * cannot fail.  So on any error -- syntax, unknown name, bad value, -ENOMEM
 * -- the object is exactly as it was.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "settings_int.h"

struct pending {
    bool set;
    struct dsm__value v;
};

/* Length of the valid UTF-8 character at p (at most n bytes), or 0. */
static size_t utf8_char_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        len = 2, cp = p[0] & 0x1F;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        len = 3, cp = p[0] & 0x0F;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    /* Overlong forms, UTF-16 surrogates, beyond U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* 0 if the line is clean text; else a message (the caller adds file:line). */
static int check_bytes(const char *line, size_t len)
{
    const unsigned char *p = (const unsigned char *)line;

    if (len > DSM__CONFIG_LINE_MAX)
        return dsm__error(-EINVAL, "line is too long (%zu bytes; at most %d are allowed)", len,
                          DSM__CONFIG_LINE_MAX);
    for (size_t i = 0; i < len;) {
        size_t n;

        if (p[i] == 0)
            return dsm__error(-EINVAL, "line contains a NUL byte at column %zu", i + 1);
        if ((p[i] < 0x20 && p[i] != '\t' && p[i] != '\r') || p[i] == 0x7F)
            return dsm__error(-EINVAL, "line contains control character 0x%02x at column %zu",
                              p[i], i + 1);
        n = utf8_char_len(p + i, len - i);
        if (n == 0)
            return dsm__error(-EINVAL, "line contains a byte sequence that is not valid UTF-8 "
                                       "at column %zu",
                              i + 1);
        i += n;
    }
    return 0;
}

/* At most max bytes of [p, end), cut on a UTF-8 boundary, for quoting in messages. */
static int clip_n(const char *p, const char *end, size_t max)
{
    size_t n = (size_t)(end - p);

    if (n <= max)
        return (int)n;
    n = max;
    while (n > 0 && ((unsigned char)p[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool is_name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '.'));
}

static bool is_bare_char(char c)
{
    return !is_ws(c) && c != '#' && c != '\'' && c != '=';
}

/*
 * Unquote the string starting at *pp (on its opening quote) into out,
 * moving *pp past the closing quote.  out has room for the rest of the
 * line.  -EINVAL if the quote is not closed before end.
 */
static int unquote(const char **pp, const char *end, char *out, size_t *outlen)
{
    const char *p = *pp + 1;
    size_t o = 0;

    while (p < end) {
        char c = *p++;

        if (c == '\'') {
            if (p < end && *p == '\'') {
                out[o++] = '\'';
                p++;
                continue;
            }
            out[o] = '\0';
            *outlen = o;
            *pp = p;
            return 0;
        }
        if (c == '\\' && p < end) {
            c = *p++;
            switch (c) {
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            default: break;
            }
        }
        out[o++] = c;
    }
    return -EINVAL;
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws(*p))
        p++;
    return p;
}

static bool at_eol(const char *p, const char *end)
{
    return p == end || *p == '#';
}

/*
 * Parse one line (without its newline) into pend.  scratch holds at least
 * DSM__CONFIG_LINE_MAX + 1 bytes.  Messages lack the "origin:line: " prefix.
 */
static int parse_line(dsm_settings *s, const char *line, size_t len, char *scratch,
                      struct pending *pend)
{
    const char *p = line, *end = line + len, *name_start, *tok;
    char name[DSM__SETTING_NAME_MAX + 1];
    struct dsm__setting *st;
    struct dsm__value v;
    size_t name_len, vlen;
    long idx;
    int rc;

    if ((rc = check_bytes(line, len)) < 0)
        return rc;
    p = skip_ws(p, end);
    if (at_eol(p, end))
        return 0;

    name_start = p;
    if (!is_name_char(*p, true))
        return dsm__error(-EINVAL, "syntax error: expected a parameter name at \"%.*s\"",
                          clip_n(p, end, 20), p);
    while (p < end && is_name_char(*p, false))
        p++;
    name_len = (size_t)(p - name_start);
    if (name_len > DSM__SETTING_NAME_MAX)
        return dsm__error(-EINVAL, "parameter name \"%.*s...\" is too long (at most %d characters)",
                          DSM__QUOTE_MAX, name_start, DSM__SETTING_NAME_MAX);
    memcpy(name, name_start, name_len);
    name[name_len] = '\0';
    if (p < end && !is_ws(*p) && *p != '=' && *p != '#' && *p != '\'')
        return dsm__error(-EINVAL,
                          "syntax error: unexpected character \"%.*s\" after parameter name \"%s\"",
                          (int)utf8_char_len((const unsigned char *)p, (size_t)(end - p)), p,
                          name);
    idx = dsm__settings_index(s, name);
    if (idx < 0)
        return dsm__error(-EINVAL, "unrecognized configuration parameter \"%s\"", name);
    st = s->items[idx];

    p = skip_ws(p, end);
    if (p < end && *p == '=')
        p = skip_ws(p + 1, end);
    if (at_eol(p, end))
        return dsm__error(-EINVAL, "missing value for parameter \"%s\"", st->name);

    if (*p == '\'') {
        if (unquote(&p, end, scratch, &vlen) < 0)
            return dsm__error(-EINVAL, "unterminated quoted string in the value of parameter \"%s\"",
                              st->name);
    } else {
        tok = p;
        while (p < end && is_bare_char(*p))
            p++;
        if (p == tok)
            return dsm__error(-EINVAL, "syntax error: unexpected \"%c\" in the value of parameter "
                                       "\"%s\"",
                              *p, st->name);
        vlen = (size_t)(p - tok);
        memcpy(scratch, tok, vlen);
        /* "64 MB": a unit word may follow a number for settings that have units. */
        tok = skip_ws(p, end);
        if (st->info.type == DSM_SETTING_INT && st->info.unit != DSM_UNIT_NONE && tok > p &&
            !at_eol(tok, end) && ((scratch[vlen - 1] >= '0' && scratch[vlen - 1] <= '9') ||
                                  scratch[vlen - 1] == '.')) {
            const char *w = tok;

            while (w < end && ((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z')))
                w++;
            if (w > tok && at_eol(skip_ws(w, end), end)) {
                scratch[vlen++] = ' ';
                memcpy(scratch + vlen, tok, (size_t)(w - tok));
                vlen += (size_t)(w - tok);
                p = w;
            }
        }
        scratch[vlen] = '\0';
    }
    p = skip_ws(p, end);
    if (!at_eol(p, end))
        return dsm__error(-EINVAL,
                          "syntax error: unexpected \"%.*s\" after the value of parameter \"%s\"",
                          clip_n(p, end, 20), p, st->name);

    if ((rc = dsm__value_parse(st, scratch, &v)) < 0)
        return rc;
    dsm__value_clear(&pend[idx].v); /* a later line overrides an earlier one */
    pend[idx].v = v;
    pend[idx].set = true;
    return 0;
}

/* Prefix the message dsm__error() just recorded with "origin:line: ". */
static int with_position(int rc, const char *origin, unsigned long lineno)
{
    return dsm__error_prefix(rc, "%.200s:%lu: ", origin, lineno);
}

int dsm_settings_load_buffer(dsm_settings *s, const char *text, size_t len, const char *origin)
{
    struct pending *pend = NULL;
    char *scratch = NULL;
    const char *p = text, *end;
    unsigned long lineno = 0;
    int rc = 0;

    if (origin == NULL)
        origin = "(configuration text)";
    if (s == NULL || (text == NULL && len > 0))
        return dsm__error(-EINVAL, "no settings object or no configuration text given");
    if (len > DSM__CONFIG_MAX)
        return dsm__error(-EFBIG, "%.200s: configuration text is too large (%zu bytes; at most "
                                  "%zu are allowed)",
                          origin, len, DSM__CONFIG_MAX);
    if (len == 0)
        return 0; /* before any pointer arithmetic: text may be NULL */
    end = text + len;
    pend = calloc(s->n ? s->n : 1, sizeof(*pend));
    scratch = malloc(DSM__CONFIG_LINE_MAX + 1);
    if (pend == NULL || scratch == NULL) {
        rc = dsm__error(-ENOMEM, "%.200s: out of memory reading configuration", origin);
        goto out;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;

        lineno++;
        rc = parse_line(s, p, (size_t)(eol - p), scratch, pend);
        if (rc < 0) {
            rc = with_position(rc, origin, lineno);
            goto out;
        }
        p = nl ? nl + 1 : end;
    }
    /* Every line passed: apply, in definition order.  Nothing here can fail. */
    for (size_t i = 0; i < s->n; i++)
        if (pend[i].set)
            dsm__value_assign(s->items[i], &pend[i].v);

out:
    if (pend != NULL)
        for (size_t i = 0; i < s->n; i++)
            dsm__value_clear(&pend[i].v);
    free(pend);
    free(scratch);
    return rc;
}

int dsm_settings_load_file(dsm_settings *s, const char *path)
{
    char *buf = NULL, *nbuf;
    size_t len = 0, cap = 0;
    int fd, rc, saved;

    if (s == NULL || path == NULL)
        return dsm__error(-EINVAL, "no settings object or no configuration file given");
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return dsm__error(-errno, "could not open configuration file \"%s\": %m", path);
    /* Read one byte past the cap so an oversized file is noticed, not cut. */
    for (;;) {
        ssize_t n;

        if (len == cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > DSM__CONFIG_MAX + 1)
                cap = DSM__CONFIG_MAX + 1;
            if (len == cap) {
                rc = dsm__error(-EFBIG, "configuration file \"%s\" is too large (more than %zu "
                                        "bytes)",
                                path, DSM__CONFIG_MAX);
                goto out;
            }
            nbuf = realloc(buf, cap);
            if (nbuf == NULL) {
                rc = dsm__error(-ENOMEM, "out of memory reading configuration file \"%s\"", path);
                goto out;
            }
            buf = nbuf;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            saved = errno;
            rc = dsm__error(-saved, "could not read configuration file \"%s\": %m", path);
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    rc = dsm_settings_load_buffer(s, buf, len, path);
out:
    saved = errno; /* the failure's errno, not close()'s */
    free(buf);
    close(fd);
    errno = saved;
    return rc;
}

int dsm_settings_parse_option(dsm_settings *s, const char *option)
{
    const char *eq, *name_start, *name_end, *v, *vend;
    char name[DSM__SETTING_NAME_MAX + 1];
    char *value;
    size_t vlen;
    int rc;

    if (s == NULL || option == NULL)
        return dsm__error(-EINVAL, "no settings object or no option given");
    eq = strchr(option, '=');
    if (eq == NULL)
        return dsm__error(-EINVAL, "invalid option \"%.*s%s\": expected name=value, as in "
                                   "-c dsm_max_segments=4096",
                          DSM__CLIP(option));
    name_start = option;
    while (name_start < eq && dsm__is_space(*name_start))
        name_start++;
    name_end = eq;
    while (name_end > name_start && dsm__is_space(name_end[-1]))
        name_end--;
    if (name_end == name_start)
        return dsm__error(-EINVAL, "invalid option \"%.*s%s\": the parameter name is missing",
                          DSM__CLIP(option));
    if ((size_t)(name_end - name_start) > DSM__SETTING_NAME_MAX)
        return dsm__error(-ENOENT, "unrecognized configuration parameter \"%.*s...\"",
                          DSM__QUOTE_MAX, name_start);
    memcpy(name, name_start, (size_t)(name_end - name_start));
    name[name_end - name_start] = '\0';

    /*
     * The shell has already removed quotes from -c name='a b', so the rest is
     * taken literally; a value that is one whole quoted string, as a config
     * file would write it, is unquoted.
     */
    v = eq + 1;
    while (dsm__is_space(*v))
        v++;
    vend = v + strlen(v);
    while (vend > v && dsm__is_space(vend[-1]))
        vend--;
    vlen = (size_t)(vend - v);
    value = malloc(vlen + 1);
    if (value == NULL)
        return dsm__error(-ENOMEM, "out of memory parsing option \"%s\"", name);
    memcpy(value, v, vlen);
    value[vlen] = '\0';
    if (vlen >= 2 && v[0] == '\'') {
        const char *q = v;
        char *unq = malloc(vlen + 1);
        size_t ulen;

        if (unq == NULL) {
            free(value);
            return dsm__error(-ENOMEM, "out of memory parsing option \"%s\"", name);
        }
        if (unquote(&q, vend, unq, &ulen) == 0 && q == vend) {
            free(value);
            value = unq;
        } else {
            free(unq);
        }
    }
    rc = dsm_settings_set(s, name, value);
    free(value);
    return rc;
}
