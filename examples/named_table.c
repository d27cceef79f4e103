/* SPDX-License-Identifier: MIT */
/*
 * examples/named_table.c - programs that share nothing but a data
 * directory find the same hash table by its name.
 *
 *   named_table DATADIR             the supervisor: starts the instance,
 *                                   execs the programs, checks the result
 *   named_table --program N DATADIR one of the programs (started by it)
 *
 * Each program joins the instance with dsm_worker_attach(DATADIR) and asks
 * for the hash table named "inventory" with dsm_named_hash_get().  They
 * start at the same moment; whichever asks first creates the table and
 * runs the initialiser, which stocks it; the others wait until it is done
 * and attach the initialised table -- the initialiser runs exactly once,
 * whoever wins.  Each program then takes items out of stock.  The
 * supervisor checks the stock left, lists the names, deletes the table by
 * its name and shuts down, leaving nothing behind.
 *
 * Exit status 0 when every check passed.  Public API only; built and run
 * by `make check` (test/examples.sh); the guide's chapter "Named shared
 * memory" quotes it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

#define PROGRAMS 3
#define TAKES 100

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (!(cond)) {                                                          \
            fprintf(stderr, "named_table: " __VA_ARGS__);                       \
            fprintf(stderr, ": %s\n", dsm_errmsg());                            \
            exit(1);                                                            \
        }                                                                       \
    } while (0)

struct item {
    char name[24]; /* the key */
    int64_t stock;
    int64_t initialisations; /* only in the item "widgets" */
};

static const dsm_hash_params params = {
    .key_size = sizeof(((struct item *)0)->name),
    .entry_size = sizeof(struct item),
    .key_kind = DSM_HASH_KEY_STRING,
};

/* Runs once, in whichever program asked first. */
static int stock_up(dsm_hash *table, void *arg)
{
    struct item *it;
    char key[24] = "widgets";

    (void)arg;
    if (dsm_hash_find_or_insert(table, key, (void **)&it) < 0)
        return -1;
    it->stock = 1000;
    it->initialisations++;
    return dsm_hash_release(table, it);
}

static void log_hook(dsm_log_level level, const char *msg, void *arg)
{
    (void)level;
    (void)arg;
    printf("  [dynshm] %s\n", msg);
}

static int program(int n, const char *datadir)
{
    char key[24] = "widgets";
    dsm_hash *table;
    struct item *it;
    bool found;

    CHECK(dsm_worker_attach(datadir) == 0, "program %d: could not join", n);
    CHECK(dsm_named_hash_get("inventory", &params, stock_up, NULL, &table, &found) == 0,
          "program %d: no inventory", n);
    printf("program %d: %s the inventory\n", n, found ? "found" : "created");
    for (int i = 0; i < TAKES; i++) {
        CHECK(dsm_hash_find(table, key, DSM_HASH_EXCLUSIVE, (void **)&it) == 1,
              "program %d: no widgets", n);
        it->stock--;
        dsm_hash_release(table, it);
    }
    dsm_worker_exit();
    return 0;
}

int main(int argc, char **argv)
{
    char self[4096], key[24] = "widgets", arg[16];
    dsm_named_info *names;
    pid_t pid[PROGRAMS];
    struct item copy;
    dsm_hash *table;
    size_t count;
    ssize_t len;

    if (argc == 4 && strcmp(argv[1], "--program") == 0) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        return program(atoi(argv[2]), argv[3]);
    }
    if (argc != 2) {
        fprintf(stderr, "usage: named_table DATADIR\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dsm_set_log_hook(log_hook, NULL, DSM_LOG_INFO);
    CHECK(dsm_supervisor_start(argv[1], NULL) == 0, "could not start");
    len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    CHECK(len > 0, "where am I");
    self[len] = '\0';
    for (int i = 0; i < PROGRAMS; i++) {
        snprintf(arg, sizeof(arg), "%d", i);
        pid[i] = fork();
        CHECK(pid[i] >= 0, "fork");
        if (pid[i] == 0) {
            execl(self, self, "--program", arg, argv[1], (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < PROGRAMS; i++) {
        int st;

        CHECK(waitpid(pid[i], &st, 0) == pid[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "program %d failed", i);
    }
    /* The supervisor finds the table by its name too. */
    CHECK(dsm_named_hash_get("inventory", &params, stock_up, NULL, &table, NULL) == 0,
          "no inventory");
    CHECK(dsm_hash_lookup(table, key, &copy) == 1, "no widgets");
    printf("widgets left: %lld (stocked once: %s)\n", (long long)copy.stock,
           copy.initialisations == 1 ? "yes" : "no");
    CHECK(copy.stock == 1000 - PROGRAMS * TAKES && copy.initialisations == 1, "wrong stock");
    CHECK(dsm_named_list(&names, &count) == 0 && count == 1, "list");
    printf("name \"%s\": a %s, %u process(es) mapping it\n", names[0].name,
           dsm_named_type_name(names[0].type), names[0].holders);
    free(names);
    CHECK(dsm_named_delete("inventory") == 0, "delete");
    CHECK(dsm_supervisor_shutdown() == 0, "shutdown");
    printf("named_table: every program saw one inventory, stocked once\n");
    return 0;
}
