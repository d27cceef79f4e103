/* SPDX-License-Identifier: MIT */
/*
 * fd_list.c - prints the descriptors it was started with, for the fd-leak
 * check in check_hostile.c: a process that execs must not pass any dynshm
 * descriptor (lock file, mmap directory, segment) on to the new program.
 *
 * Prints one line per open descriptor above 2, "<fd> <target>", where the
 * target is what /proc/self/fd/<fd> links to, and nothing else.  Uses libc
 * only, so it is a plain binary (no libtool wrapper that could open
 * descriptors of its own before we look).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    if (d == NULL) {
        perror("fd_list: /proc/self/fd");
        return 2;
    }
    while ((e = readdir(d)) != NULL) {
        char path[64], target[4096];
        int fd;
        ssize_t n;

        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        fd = atoi(e->d_name);
        if (fd <= 2 || fd == dirfd(d))
            continue;
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        n = readlink(path, target, sizeof(target) - 1);
        target[n > 0 ? n : 0] = '\0';
        printf("%d %s\n", fd, target);
    }
    closedir(d);
    return 0;
}
