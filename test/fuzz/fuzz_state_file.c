/* SPDX-License-Identifier: MIT */
/*
 * fuzz_state_file.c - libFuzzer target for the state file parser
 * (dsm__state_parse in src/control/state_file.c).
 *
 * A supervisor starting after a crash reads <datadir>/dynshm.state, which
 * may be truncated, damaged, from another version or not ours.  The parser
 * must never read past the text it was given (the input is passed exactly
 * as libFuzzer allocated it, without a terminating NUL, so ASan sees any
 * over-read) and must only accept a complete record.  What it accepts is
 * checked for sense and must survive a format/parse round trip.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "control/state_file.h"
#include "common/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                           \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz_state_file: check failed at line %d: %s (last message: %s)\n", \
                    __LINE__, #cond, dsm_errmsg());                                           \
            __builtin_trap();                                                                 \
        }                                                                                     \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dsm_state_record rec, again;
    char text[DSM_STATE_MAX_SIZE];
    int rc, n;

    memset(&rec, 0x5a, sizeof(rec));
    rc = dsm__state_parse((const char *)data, size, &rec);
    if (rc != 0) {
        CHECK(rc == DSM_ECORRUPT);
        CHECK(strncmp(dsm_errmsg(), "state file", 10) == 0);
        return 0;
    }
    /* Accepted: a whole record with values that make sense. */
    CHECK(size <= DSM_STATE_MAX_SIZE);
    CHECK(dsm_impl_type_name(rec.backend) != NULL);
    CHECK(rec.pid > 0);
    n = dsm__state_format(&rec, text, sizeof(text));
    CHECK(n > 0);
    CHECK(dsm__state_parse(text, (size_t)n, &again) == 0);
    CHECK(again.instance_id == rec.instance_id && again.backend == rec.backend &&
          again.control == rec.control && again.os_id == rec.os_id && again.size == rec.size &&
          again.pid == rec.pid);
    return 0;
}
