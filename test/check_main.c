/*
 * check_main.c - the one Check runner: gathers every suite and runs them.
 *
 * Set CK_RUN_SUITE / CK_RUN_CASE to run a part, as Check documents.
 */
#include "config.h"

#include <stdlib.h>

#include "testutil.h"

int main(void)
{
    SRunner *sr = srunner_create(suite_common());
    int failed;

    srunner_add_suite(sr, suite_dsm_impl());
    srunner_add_suite(sr, suite_inject());
    srunner_add_suite(sr, suite_settings());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
