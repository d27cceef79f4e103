/* SPDX-License-Identifier: MIT */
/*
 * examples/hash_wordcount.c - several workers count words into one shared
 * hash table at once; the supervisor checks every count and prints the
 * most frequent words.
 *
 * The table lives in a dynamic shared area and is keyed by strings (the
 * word, at most 31 bytes).  Each worker attaches the area by its handle
 * and the table by its relative pointer, then for every word of its share
 * of the text calls dsm_hash_find_or_insert(), bumps the count in the
 * entry it gets back (the entry's partition is locked meanwhile) and
 * releases it.  Workers touching different words rarely meet: each word
 * belongs to one of 128 partitions, each with its own lock.  The
 * supervisor then scans the table, compares each count with its own
 * sequential count of the same text, and deletes every entry through the
 * scan, which gives the table's memory back to the area.
 *
 * Run:  examples/hash_wordcount DATADIR   (the guide's chapter "Shared
 * hash tables" walks through it).  Exit status 0 when every count was
 * right and nothing was left in the area.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

#define WORKERS 4
#define WORDS_EACH 40000
#define VOCABULARY 3000

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "hash_wordcount: " __VA_ARGS__);                    \
            fprintf(stderr, "\n");                                              \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

struct word_count {
    char word[32]; /* the key: a NUL-terminated string */
    uint64_t count;
};

/* Every process passes the same parameter block (no addresses are shared). */
static const dsm_hash_params params = {
    .key_size = sizeof(((struct word_count *)0)->word),
    .entry_size = sizeof(struct word_count),
    .key_kind = DSM_HASH_KEY_STRING,
};

static uint64_t next(uint64_t *s)
{
    uint64_t x = (*s += UINT64_C(0x9e3779b97f4a7c15));

    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

/* The n-th word of the vocabulary: syllables spelling its number. */
static void make_word(unsigned n, char *out)
{
    static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo"};

    out[0] = '\0';
    do {
        strcat(out, syl[n % 8]);
        n /= 8;
    } while (n > 0);
}

/* The next word of a worker's text: the smaller of two random choices, so
 * words early in the vocabulary are the frequent ones. */
static unsigned text_word(uint64_t *state)
{
    uint64_t r = next(state);
    unsigned a = (unsigned)(r % VOCABULARY), b = (unsigned)((r >> 32) % VOCABULARY);

    return a < b ? a : b;
}

static int worker(dsm_handle area_handle, dsm_hash_handle table_handle, int w)
{
    uint64_t state = (uint64_t)w + 1;
    struct word_count *e;
    dsm_area *area;
    dsm_hash *table;
    char word[32];

    if (dsm_worker_init_after_fork() != 0 || dsm_area_attach(area_handle, &area) != 0 ||
        dsm_hash_attach(area, table_handle, &params, &table) != 0)
        return 10;
    for (unsigned i = 0; i < WORDS_EACH; i++) {
        make_word(text_word(&state), word);
        /* 0: inserted (zeroed, key filled in); 1: found.  Locked either way. */
        if (dsm_hash_find_or_insert(table, word, (void **)&e) < 0)
            return 11;
        e->count++;
        dsm_hash_release(table, e);
    }
    dsm_hash_detach(table);
    return 0; /* exit() detaches the area */
}

static void log_hook(dsm_log_level level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    printf("  [dynshm] %s\n", msg);
}

int main(int argc, char **argv)
{
    static uint64_t expect[VOCABULARY];
    struct word_count *e, top[5] = {{"", 0}};
    dsm_hash_stats hs;
    dsm_area_stats as;
    dsm_hash_scan scan;
    dsm_area *area;
    dsm_hash *table;
    pid_t pid[WORKERS];
    uint64_t words = 0, distinct = 0;
    char word[32];
    int status, rc;

    if (argc != 2) {
        fprintf(stderr, "usage: hash_wordcount DATADIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dsm_set_log_hook(log_hook, NULL, DSM_LOG_INFO);
    CHECK(dsm_supervisor_start(argv[1], NULL) == 0, "start-up: %s", dsm_errmsg());
    CHECK(dsm_area_create(NULL, &area) == 0, "area: %s", dsm_errmsg());
    CHECK(dsm_hash_create(area, &params, &table) == 0, "table: %s", dsm_errmsg());

    for (int w = 0; w < WORKERS; w++) {
        pid[w] = fork();
        CHECK(pid[w] >= 0, "fork");
        if (pid[w] == 0) {
            rc = worker(dsm_area_handle(area), dsm_hash_get_handle(table), w);
            if (rc != 0)
                fprintf(stderr, "hash_wordcount: worker %d: failure %d: %s\n", w, rc,
                        dsm_errmsg());
            exit(rc == 0 ? 0 : 1);
        }
    }
    /* Meanwhile, count the same text here, the slow way. */
    for (int w = 0; w < WORKERS; w++) {
        uint64_t state = (uint64_t)w + 1;

        for (unsigned i = 0; i < WORDS_EACH; i++)
            expect[text_word(&state)]++;
    }
    for (int w = 0; w < WORKERS; w++) {
        CHECK(waitpid(pid[w], &status, 0) == pid[w], "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "worker %d failed", w);
        dsm_supervisor_worker_exited(pid[w], status);
    }
    CHECK(dsm_hash_validate(table) == 0, "validate: %s", dsm_errmsg());
    CHECK(dsm_hash_stats_get(table, &hs) == 0, "stats: %s", dsm_errmsg());
    printf("supervisor: %d workers counted %d words each: %llu distinct words, %llu KiB in "
           "%u partitions\n",
           WORKERS, WORDS_EACH, (unsigned long long)hs.entries,
           (unsigned long long)(hs.bytes / 1024), hs.partitions);

    /* Every distinct word the text has, with the count computed here. */
    for (unsigned n = 0; n < VOCABULARY; n++) {
        struct word_count c;

        if (expect[n] == 0)
            continue;
        make_word(n, word);
        CHECK(dsm_hash_lookup(table, word, &c) == 1, "\"%s\" is missing", word);
        CHECK(c.count == expect[n], "\"%s\": %llu counted, %llu expected", word,
              (unsigned long long)c.count, (unsigned long long)expect[n]);
        distinct++;
    }
    CHECK(distinct == hs.entries, "%llu words expected, %llu in the table",
          (unsigned long long)distinct, (unsigned long long)hs.entries);

    /* Scan: the five most frequent words; delete every entry on the way. */
    CHECK(dsm_hash_scan_begin(table, DSM_HASH_EXCLUSIVE, &scan) == 0, "scan");
    while ((rc = dsm_hash_scan_next(&scan, (void **)&e)) == 1) {
        struct word_count w = *e;

        words += w.count;
        for (int k = 0; k < 5; k++)
            if (w.count > top[k].count) {
                memmove(&top[k + 1], &top[k], (size_t)(4 - k) * sizeof(top[0]));
                top[k] = w;
                break;
            }
        CHECK(dsm_hash_scan_delete_current(&scan) == 0, "delete: %s", dsm_errmsg());
    }
    CHECK(rc == 0 && dsm_hash_scan_end(&scan) == 0, "scan: %s", dsm_errmsg());
    CHECK(words == (uint64_t)WORKERS * WORDS_EACH, "%llu words counted",
          (unsigned long long)words);
    for (int k = 0; k < 5; k++)
        printf("  %-12s %llu\n", top[k].word, (unsigned long long)top[k].count);

    CHECK(dsm_hash_stats_get(table, &hs) == 0 && hs.entries == 0, "the table is not empty");
    CHECK(dsm_hash_destroy(table) == 0, "destroy: %s", dsm_errmsg());
    CHECK(dsm_area_stats_get(area, &as) == 0, "stats: %s", dsm_errmsg());
    CHECK(as.bytes_in_use == 0, "%zu bytes still in use", as.bytes_in_use);
    printf("supervisor: every count right; table destroyed, area empty\n");
    dsm_area_detach(area);
    CHECK(dsm_supervisor_shutdown() == 0, "shut-down: %s", dsm_errmsg());
    return 0;
}
