/* SPDX-License-Identifier: MIT */
/*
 * check_main.c - the one Check runner: gathers every suite and runs them,
 * then sweeps the scratch root and fails the run if any test leaked.
 *
 * Set CK_RUN_SUITE / CK_RUN_CASE to run a part, as Check documents.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

int main(void)
{
    SRunner *sr;
    int failed, leaked;

    tu_root_init();
    sr = srunner_create(suite_common());
    srunner_add_suite(sr, suite_dsm_impl());
    srunner_add_suite(sr, suite_control());
    srunner_add_suite(sr, suite_inject());
    srunner_add_suite(sr, suite_settings());
    srunner_add_suite(sr, suite_dsm());
    srunner_add_suite(sr, suite_lifecycle());
    srunner_add_suite(sr, suite_crash());
    srunner_add_suite(sr, suite_killpoints());
    srunner_add_suite(sr, suite_process());
    srunner_add_suite(sr, suite_hostile());
    srunner_add_suite(sr, suite_area());
    srunner_add_suite(sr, suite_toc());
    srunner_add_suite(sr, suite_mq());
    srunner_add_suite(sr, suite_memfd());
    srunner_add_suite(sr, suite_hugepages());
    srunner_add_suite(sr, suite_region());
    srunner_add_suite(sr, suite_hash());
    srunner_add_suite(sr, suite_registry());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    leaked = tu_root_sweep();
    if (leaked > 0)
        fprintf(stderr, "check_dynshm: %d object(s) were left behind by the tests and have "
                        "been removed\n", leaked);
    return failed == 0 && leaked == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
