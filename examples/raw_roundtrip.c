/* SPDX-License-Identifier: MIT */
/*
 * raw_roundtrip.c - a tour of the raw layer (dynshm/dsm_impl.h).
 *
 * For every backend this platform has: create a segment, write into it,
 * let a forked child attach and answer, destroy it, and show that nothing
 * is left.  Run with a data directory argument, or it makes a temporary one.
 * Built only against the public API and the installed library.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

static int child(dsm_impl_instance *inst, dsm_handle handle)
{
    dsm_impl_segment seg;

    if (dsm_impl_attach(inst, handle, &seg) != 0) {
        fprintf(stderr, "  child: %s\n", dsm_errmsg());
        return 1;
    }
    printf("  child %d: attached %zu bytes, read \"%s\"\n", (int)getpid(), seg.size,
           (char *)seg.address);
    snprintf((char *)seg.address + 64, 64, "hello back from pid %d", (int)getpid());
    fflush(stdout); /* the child leaves with _exit, which does not flush */
    return dsm_impl_detach(inst, &seg) == 0 ? 0 : 1;
}

static int tour(dsm_impl_type type, const char *datadir)
{
    dsm_impl_instance *inst;
    dsm_impl_segment seg, probe;
    char name[4096], hbuf[DSM_HANDLE_STRLEN];
    dsm_handle handle;
    int status, rc;
    pid_t pid;

    printf("%s:\n", dsm_impl_type_name(type));
    if (dsm_impl_instance_open(type, datadir, &inst) != 0) {
        fprintf(stderr, "  %s\n", dsm_errmsg());
        return 1;
    }
    /* A random handle; on the rare collision, try another, as the API asks. */
    do {
        FILE *f = fopen("/dev/urandom", "r");

        if (f == NULL || fread(&handle, sizeof(handle), 1, f) != 1) {
            perror("/dev/urandom");
            return 1;
        }
        fclose(f);
        rc = handle ? dsm_impl_create(inst, handle, 1 << 20, &seg) : -EEXIST;
    } while (rc == -EEXIST);
    if (rc != 0) {
        fprintf(stderr, "  create: %s\n", dsm_errmsg());
        dsm_impl_instance_close(inst);
        return 1;
    }
    dsm_impl_segment_name(inst, handle, name, sizeof(name));
    printf("  created 1 MiB segment, handle %s, OS name %s\n", dsm_handle_format(handle, hbuf),
           name);
    strcpy(seg.address, "something");
    printf("  parent wrote \"something\"\n");

    fflush(stdout); /* or the child would print the parent's buffered lines again */
    pid = fork();
    if (pid == 0)
        _exit(child(inst, handle));
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        fprintf(stderr, "  child failed\n");
        rc = 1;
    } else {
        printf("  parent read \"%s\"\n", (char *)seg.address + 64);
    }
    dsm_impl_detach(inst, &seg);
    if (dsm_impl_destroy(inst, &seg) != 0) {
        fprintf(stderr, "  destroy: %s\n", dsm_errmsg());
        rc = 1;
    }
    if (dsm_impl_attach(inst, handle, &probe) == -ENOENT)
        printf("  destroyed; attaching again fails as it should: %s\n", dsm_errmsg());
    else {
        fprintf(stderr, "  segment still attachable after destroy\n");
        rc = 1;
    }
    dsm_impl_instance_close(inst);
    return rc;
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/dynshm-tour.XXXXXX";
    const char *datadir = argc > 1 ? argv[1] : mkdtemp(tmp);
    int failed = 0;

    if (datadir == NULL) {
        perror("mkdtemp");
        return 1;
    }
    printf("data directory %s\n", datadir);
    for (int t = 0; t < DSM_IMPL_NTYPES; t++) {
        dsm_impl_instance *inst;
        dsm_impl_segment seg;

        if (!dsm_impl_type_available((dsm_impl_type)t))
            continue;
        if (t == DSM_IMPL_NONE) {
            dsm_impl_instance_open(DSM_IMPL_NONE, datadir, &inst);
            if (dsm_impl_create(inst, 1, 4096, &seg) == DSM_EDISABLED)
                printf("none:\n  create refused: %s\n", dsm_errmsg());
            else
                failed++;
            dsm_impl_instance_close(inst);
            continue;
        }
        failed += tour((dsm_impl_type)t, datadir) != 0;
    }
    if (argc <= 1) {
        char path[sizeof(tmp) + 16];

        snprintf(path, sizeof(path), "%s/dynshm_mmap", datadir);
        rmdir(path);
        rmdir(datadir);
    }
    printf(failed ? "FAILED\n" : "all backends OK\n");
    return failed ? 1 : 0;
}
