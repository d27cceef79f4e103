/* SPDX-License-Identifier: MIT */
/*
 * exec_worker.c - a worker started by exec, for the lifecycle and crash
 * suites: it shares nothing with the supervisor but the data directory.
 *
 *   exec_worker DATADIR HANDLE write   attach, print the text, write a reply, exit
 *   exec_worker DATADIR HANDLE hold    attach, print "ready", wait to be killed
 *
 * Built on the public API and the installed library only.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <dynshm/dynshm.h>

int main(int argc, char **argv)
{
    dsm_segment *seg;
    dsm_handle h;

    if (argc != 4 || dsm_handle_parse(argv[2], &h) != 0) {
        fprintf(stderr, "usage: exec_worker DATADIR HANDLE write|hold\n");
        return 2;
    }
    if (dsm_worker_attach(argv[1]) != 0 || dsm_attach(h, &seg) != 0) {
        fprintf(stderr, "exec_worker: %s\n", dsm_errmsg());
        return 1;
    }
    printf("%s\n", (char *)dsm_segment_address(seg));
    fflush(stdout);
    if (strcmp(argv[3], "hold") == 0) {
        for (;;)
            pause();
    }
    strcpy(dsm_segment_address(seg), "exec was here");
    return 0; /* exit() leaves dynamic shared memory: detach and unregister */
}
