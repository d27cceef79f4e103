/*
 * testutil.c - scratch directories and leftover counting for the suites.
 *
 * Counting what is left in /dev/shm, the mmap directory and the SysV table
 * is how every test proves it leaked nothing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

void tu_make_datadir(char *buf, size_t len)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(buf, len, "%s/dynshm-test.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    ck_assert_msg(mkdtemp(buf) != NULL, "mkdtemp(%s): %s", buf, strerror(errno));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void tu_remove_datadir(const char *path)
{
    if (path && path[0])
        nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_count_posix(const char *id)
{
    char prefix[64];
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    int n = 0;

    snprintf(prefix, sizeof(prefix), "dynshm.%s.", id);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

int tu_count_mmap(const char *datadir)
{
    char path[512];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof(path), "%s/dynshm_mmap", datadir);
    d = opendir(path);
    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int tu_count_sysv_keys(const int *keys, int nkeys)
{
    int n = 0;

    for (int i = 0; i < nkeys; i++)
        if (keys[i] != 0 && shmget((key_t)keys[i], 0, 0) >= 0)
            n++;
    return n;
}

int tu_can_unshare_mount(void)
{
    pid_t pid = fork();
    int status;

    if (pid == 0) {
        if (unshare(CLONE_NEWNS) != 0)
            _exit(1);
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
            _exit(1);
        if (mount("tmpfs", "/dev/shm", "tmpfs", 0, "size=1m") != 0)
            _exit(1);
        _exit(0);
    }
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}
