/* SPDX-License-Identifier: MIT */
/*
 * check_common.c - the conventions every module relies on: error codes and
 * messages, errno preservation, the log hook, and handle text.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <dynshm/common.h>

#include "common/internal.h"
#include "testutil.h"

START_TEST(test_handle_roundtrip)
{
    char buf[DSM_HANDLE_STRLEN];
    dsm_handle h;

    ck_assert_str_eq(dsm_handle_format(0x1234abcdULL, buf), "000000001234abcd");
    ck_assert_int_eq(dsm_handle_parse("000000001234abcd", &h), 0);
    ck_assert_uint_eq(h, 0x1234abcdULL);
    ck_assert_int_eq(dsm_handle_parse("0xFFFFFFFFFFFFFFFF", &h), 0);
    ck_assert_uint_eq(h, UINT64_MAX);
    ck_assert_int_eq(dsm_handle_parse("ff", &h), 0);
    ck_assert_uint_eq(h, 255);
}
END_TEST

START_TEST(test_handle_parse_rejects)
{
    const char *bad[] = {"", "0", "0x", "xyz", "12 ", "-1", "00000000000000001", "0x0g"};
    dsm_handle h = 42;

    for (size_t i = 0; i < DSM_ARRAY_LEN(bad); i++) {
        ck_assert_int_eq(dsm_handle_parse(bad[i], &h), -EINVAL);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_ptr_nonnull(strstr(dsm_errmsg(), "invalid handle"));
        ck_assert_uint_eq(h, 42); /* untouched on failure */
    }
    ck_assert_int_eq(dsm_handle_parse(NULL, &h), -EINVAL);
}
END_TEST

START_TEST(test_strerror)
{
    ck_assert_str_eq(dsm_strerror(-ENOENT), strerror(ENOENT));
    ck_assert_str_eq(dsm_strerror(DSM_EDISABLED), "dynamic shared memory is disabled");
    ck_assert_str_eq(dsm_strerror(DSM_ENOSLOTS), "too many dynamic shared memory segments");
    ck_assert_str_eq(dsm_strerror(12345678), "unknown error");
}
END_TEST

START_TEST(test_error_message_format)
{
    errno = 0;
    ck_assert_int_eq(dsm__error(-ENOSPC, "could not create \"%s\": %m", "/x"), -ENOSPC);
    ck_assert_str_eq(dsm_errmsg(), "could not create \"/x\": No space left on device");
    ck_assert_int_eq(errno, ENOSPC);
    /* %% stays literal and %m expands to our code, not to the current errno. */
    errno = EPERM;
    dsm__error(DSM_EDISABLED, "100%% sure: %m");
    ck_assert_str_eq(dsm_errmsg(), "100% sure: dynamic shared memory is disabled");
    ck_assert_int_eq(errno, EPERM); /* dynshm codes leave errno alone */
}
END_TEST

static int hook_calls;
static char hook_last[256];

static void hook(dsm_log_level level, const char *msg, void *arg)
{
    hook_calls += *(int *)arg;
    snprintf(hook_last, sizeof(hook_last), "%d:%s", (int)level, msg);
}

START_TEST(test_log_hook)
{
    int one = 1;

    dsm__log(DSM_LOG_WARNING, "nobody listens");
    dsm_set_log_hook(hook, &one, DSM_LOG_INFO);
    errno = EXDEV;
    dsm__log(DSM_LOG_DEBUG, "too quiet");
    dsm__log(DSM_LOG_WARNING, "segment %d leaked", 7);
    ck_assert_int_eq(errno, EXDEV);
    ck_assert_int_eq(hook_calls, 1);
    ck_assert_str_eq(hook_last, "2:segment 7 leaked");
    dsm_set_log_hook(NULL, NULL, DSM_LOG_DEBUG);
    dsm__log(DSM_LOG_ERROR, "gone");
    ck_assert_int_eq(hook_calls, 1);
}
END_TEST

START_TEST(test_random)
{
    uint64_t a = 0, b = 0;

    ck_assert_int_eq(dsm__random_bytes(&a, sizeof(a)), 0);
    ck_assert_int_eq(dsm__random_bytes(&b, sizeof(b)), 0);
    ck_assert_uint_ne(a, b); /* 2^-64 chance of a false failure */
}
END_TEST

Suite *suite_common(void)
{
    Suite *s = suite_create("common");
    TCase *tc = tcase_create("conventions");

    tcase_add_test(tc, test_handle_roundtrip);
    tcase_add_test(tc, test_handle_parse_rejects);
    tcase_add_test(tc, test_strerror);
    tcase_add_test(tc, test_error_message_format);
    tcase_add_test(tc, test_log_hook);
    tcase_add_test(tc, test_random);
    suite_add_tcase(s, tc);
    return s;
}
