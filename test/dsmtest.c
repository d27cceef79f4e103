/* SPDX-License-Identifier: MIT */
/*
 * dsmtest.c - supervisor set-up, object counting and process rendezvous for
 * the dsm suites (see dsmtest.h).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dsmtest.h"

int sv_restart(struct sv *v, const char *const *options)
{
    dsm_settings *s;
    int rc;

    ck_assert_int_eq(dsm_settings_new(&s), 0);
    ck_assert_msg(dsm_settings_set(s, "dynamic_shared_memory_type",
                                   dsm_impl_type_name(v->type)) == 0, "%s", dsm_errmsg());
    for (; options && *options; options++)
        ck_assert_msg(dsm_settings_parse_option(s, *options) == 0, "%s", dsm_errmsg());
    rc = dsm_supervisor_start(v->dir, s);
    dsm_settings_free(s);
    return rc;
}

int sv_start(struct sv *v, int type, const char *const *options)
{
    dsm_impl_instance *inst;

    memset(v, 0, sizeof(*v));
    v->type = (dsm_impl_type)type;
    if (!dsm_impl_type_available(v->type))
        return 0;
    tu_sysv_mark();
    tu_make_datadir(v->dir, sizeof(v->dir));
    ck_assert_int_eq(dsm_impl_instance_open(DSM_IMPL_NONE, v->dir, &inst), 0);
    snprintf(v->id, sizeof(v->id), "%s", dsm_impl_instance_id(inst));
    dsm_impl_instance_close(inst);
    ck_assert_msg(sv_restart(v, options) == 0, "supervisor start: %s", dsm_errmsg());
    return 1;
}

int sv_objects(const struct sv *v)
{
    return tu_count_posix(v->id) + tu_count_mmap(v->dir) + tu_sysv_count_new() +
           tu_count_memfd(v->id);
}

pid_t sv_fork_worker(int (*fn)(void *), void *arg)
{
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (dsm_worker_init_after_fork() != 0) {
            fprintf(stderr, "worker init: %s\n", dsm_errmsg());
            _exit(99);
        }
        exit(fn(arg)); /* exit, not _exit: the exit handler is part of what is tested */
    }
    return pid;
}

int sv_wait(pid_t pid)
{
    int st;

    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void sync_init(struct sync *s)
{
    ck_assert_int_eq(pipe(s->to_child), 0);
    ck_assert_int_eq(pipe(s->to_parent), 0);
}

void sync_signal_parent(struct sync *s, dsm_handle value)
{
    if (write(s->to_parent[1], &value, sizeof(value)) != sizeof(value))
        _exit(98);
}

dsm_handle sync_wait_child(struct sync *s)
{
    dsm_handle v = 0;

    ck_assert_int_eq(read(s->to_parent[0], &v, sizeof(v)), sizeof(v));
    return v;
}

void sync_signal_child(struct sync *s)
{
    char c = 'g';

    ck_assert_int_eq(write(s->to_child[1], &c, 1), 1);
}

void sync_wait_parent(struct sync *s)
{
    char c;

    if (read(s->to_child[0], &c, 1) != 1)
        _exit(97);
}

static char log_lines[64][512];
static int log_n;

static void capture(dsm_log_level level, const char *msg, void *arg)
{
    (void)level, (void)arg;
    snprintf(log_lines[log_n % 64], sizeof(log_lines[0]), "%s", msg);
    log_n++;
}

void log_capture_start(void)
{
    log_n = 0;
    dsm_set_log_hook(capture, NULL, DSM_LOG_DEBUG);
}

int log_count(const char *substring)
{
    int n = 0;

    for (int i = 0; i < log_n && i < 64; i++)
        if (strstr(log_lines[i], substring))
            n++;
    return n;
}
