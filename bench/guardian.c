/* SPDX-License-Identifier: MIT */
/*
 * bench/guardian.c - the process that makes sure the benchmark leaves
 * nothing behind, whatever happens to it.
 *
 * A benchmark that creates a hundred thousand segments must not be able to
 * leave them in /dev/shm, `ipcs -m` or a temporary directory when it
 * crashes or is interrupted.  So the process started from the command line
 * only guards: it makes the data directory, forks the runner that does all
 * the work, waits for it (passing SIGINT/SIGTERM/SIGHUP on), and then
 * removes anything that survived: it lets dynshm's own start-up cleanup
 * destroy what a dead runner's control segment still lists, unlinks raw
 * objects by their name prefix, removes raw SysV segments listed in a page
 * it shares with the runner (unless the runner used a private IPC
 * namespace, whose segments die with it), and deletes the directory.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static volatile sig_atomic_t runner_pid, got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
    if (runner_pid > 0)
        kill((pid_t)runner_pid, SIGTERM);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

/* Let dynshm destroy what a dead runner's control segment lists (cleanup 4). */
static int recover_datadir(const char *dir)
{
    char state[800];
    struct stat st;
    int rc = -1;

    snprintf(state, sizeof(state), "%s/dynshm.state", dir);
    if (stat(state, &st) != 0)
        return 0;
    for (int tries = 0; tries < 50 && rc < 0; tries++) {
        rc = bench_start(dsm_impl_default_type(), dir, 0, 0);
        if (rc < 0)
            usleep(100000); /* a worker of the runner may still hold the directory lock */
    }
    if (rc == 0)
        dsm_supervisor_shutdown();
    return 1;
}

/* Remove /dev/shm objects whose names start with prefix; returns how many. */
static int sweep_dev_shm(const char *prefix)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    char name[300];
    int n = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        snprintf(name, sizeof(name), "/%s", e->d_name);
        n += shm_unlink(name) == 0;
    }
    closedir(d);
    return n;
}

static int cleanup(const struct bench_opts *o)
{
    const char *dirs[] = {"posix", "sysv", "mmap", "capacity"};
    char path[700], prefix[64];
    int leftovers = 0;

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        dsm_impl_instance *inst;
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", o->tmpdir, dirs[i]);
        if (stat(path, &st) != 0)
            continue;
        leftovers += recover_datadir(path);
        /* Belt and braces: anything still named after this instance. */
        if (dsm_impl_type_available(DSM_IMPL_POSIX) &&
            dsm_impl_instance_open(DSM_IMPL_POSIX, path, &inst) == 0) {
            snprintf(prefix, sizeof(prefix), "dynshm.%s.", dsm_impl_instance_id(inst));
            dsm_impl_instance_close(inst);
            leftovers += sweep_dev_shm(prefix);
        }
    }
    snprintf(prefix, sizeof(prefix), "dsm_bench.%08x.", (unsigned)o->guardian);
    leftovers += sweep_dev_shm(prefix);
    if (!bench_reg->private_ipc) {
        for (int i = 0; i < BENCH_REG_SLOTS; i++) {
            struct shmid_ds ds;
            int id = bench_reg->sysv[i].shmid;

            if (id < 0 || bench_reg->sysv[i].key == 0 || shmctl(id, IPC_STAT, &ds) != 0)
                continue;
            if (ds.shm_perm.__key == bench_reg->sysv[i].key && ds.shm_perm.cuid == geteuid())
                leftovers += shmctl(id, IPC_RMID, NULL) == 0;
        }
    }
    nftw(o->tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return leftovers;
}

int bench_guard(struct bench_opts *o, int (*run)(const struct bench_opts *o))
{
    struct sigaction sa;
    const char *tmp;
    int status = 0, leftovers;
    pid_t pid;

    o->guardian = getpid();
    tmp = o->dir ? o->dir : getenv("TMPDIR");
    if (tmp == NULL || *tmp == '\0')
        tmp = "/tmp";
    /* Not "dsm_bench.": that prefix marks raw objects, which the guardian unlinks. */
    snprintf(o->tmpdir, sizeof(o->tmpdir), "%s/dsm-bench-data.XXXXXX", tmp);
    if (mkdtemp(o->tmpdir) == NULL) {
        fprintf(stderr, "dsm_bench: could not create a directory under %s: %s\n", tmp,
                strerror(errno));
        return 1;
    }
    bench_reg = mmap(NULL, sizeof(*bench_reg), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (bench_reg == MAP_FAILED) {
        perror("dsm_bench: mmap");
        rmdir(o->tmpdir);
        return 1;
    }
    for (int i = 0; i < BENCH_REG_SLOTS; i++)
        bench_reg->sysv[i].shmid = -1;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid == 0) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        exit(run(o)); /* exit(), so dynshm's exit handler runs too */
    }
    if (pid < 0) {
        perror("dsm_bench: fork");
        status = 1 << 8;
    } else {
        runner_pid = pid;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        runner_pid = 0;
    }
    leftovers = cleanup(o);
    if (leftovers > 0)
        fprintf(stderr, "dsm_bench: removed %d leftover object(s) after the run\n", leftovers);
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "dsm_bench: the benchmark was killed by signal %d\n", WTERMSIG(status));
        return 128 + WTERMSIG(status);
    }
    if (got_signal)
        return 128 + got_signal;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
