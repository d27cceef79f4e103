# SPDX-License-Identifier: MIT
# test/local.mk - the Check runner (one program, every suite) and its helpers.
if HAVE_CHECK
check_PROGRAMS += test/check_dynshm
TESTS += test/check_dynshm
test_check_dynshm_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
test_check_dynshm_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
test_check_dynshm_LDADD = libdynshm_core.la $(CHECK_LIBS)
test_check_dynshm_SOURCES = \
	test/testutil.h \
	test/testutil.c \
	test/check_main.c \
	test/check_common.c \
	test/check_dsm_impl.c \
	test/check_inject.c \
	test/check_control.c \
	test/check_settings.c \
	test/dsmtest.h \
	test/dsmtest.c \
	test/check_dsm.c \
	test/check_lifecycle.c \
	test/check_crash.c \
	test/check_killpoints.c \
	test/check_process.c \
	test/check_memfd.c \
	test/check_hugepages.c \
	test/check_region.c

# A worker started by exec, for the lifecycle suite: public API only.
check_PROGRAMS += test/exec_worker
test_exec_worker_SOURCES = test/exec_worker.c
test_exec_worker_LDADD = libdynshm.la
endif

# The kill loops, many times longer: make soak [SOAK=N], N times the make check counts.
soak: test/check_dynshm test/exec_worker
	DYNSHM_SOAK=$${SOAK:-10} CK_RUN_SUITE=crash CK_RUN_CASE=kill_loop \
	  CK_TIMEOUT_MULTIPLIER=$${SOAK:-10} ./test/check_dynshm
.PHONY: soak

# Check writes its summary into the .log files; show it on the console too.
check-local: check-TESTS
	@for f in $(TEST_LOGS); do \
	  test -f "$$f" && grep -h -E '^[0-9]+%: Checks: ' "$$f" || true; \
	done

# The optional Python binding (python/dynshm.py, ctypes) against the library
# just built; it also proves the library can be dlopen()ed.  Not in
# sanitizer builds: their runtime must be loaded before any library.
EXTRA_DIST += test/python-binding.sh python/dynshm.py python/test_dynshm.py
if !SANITIZED
TESTS += test/python-binding.sh
endif

# Every public header compiles on its own, as C and as C++.
TESTS += test/check-headers.sh
EXTRA_DIST += test/check-headers.sh

# The manual: lint every page, one page per exported symbol, exports match the list.
TESTS += test/check-man.sh
EXTRA_DIST += test/check-man.sh

# The demo server and client, end to end, on every backend.
EXTRA_DIST += test/demo-e2e.sh
if BUILD_DEMO
TESTS += test/demo-e2e.sh
if HAVE_CHECK
# check_dynshm counts (and at the end removes) every System V segment created
# while it runs, whoever created it: run the end-to-end test after it, not beside
# it.  (Named through a variable so that automake adds this prerequisite to its
# own rule for the log instead of replacing that rule.)
DEMO_E2E_LOG = test/demo-e2e.sh.log
$(DEMO_E2E_LOG): test/check_dynshm.log
endif
endif

# dsmctl: a quick unit test of what it builds on (no Check needed), a helper
# that fills a control segment for the timing check, and the end-to-end test.
if BUILD_TOOLS
check_PROGRAMS += test/dsmctl_unit test/dsmctl_fill
TESTS += test/dsmctl_unit
test_dsmctl_unit_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src -I$(top_srcdir)/tools/dsmctl
test_dsmctl_unit_SOURCES = test/dsmctl_unit.c tools/dsmctl/format.c
test_dsmctl_unit_LDADD = libdynshm_core.la
test_dsmctl_fill_SOURCES = test/dsmctl_fill.c
test_dsmctl_fill_LDADD = libdynshm.la

if BUILD_DEMO
TESTS += test/dsmctl-e2e.sh
# Runs after the demo's end-to-end test (and so after check_dynshm), for the
# same reason as that one: System V counts.  The log is named through a
# variable so automake adds the prerequisite to its own rule.
DSMCTL_E2E_LOG = test/dsmctl-e2e.sh.log
$(DSMCTL_E2E_LOG): test/demo-e2e.sh.log
endif
endif
EXTRA_DIST += test/dsmctl-e2e.sh

# ---- issue 7: exhaustion, hostile input, security review, fuzzing ----------------
if HAVE_CHECK
test_check_dynshm_SOURCES += test/hostile.h test/hostile.c test/check_hostile.c \
	test/check_exhaustion.c test/check_security.c
# Lists the descriptors it inherits across exec (check_hostile.c): libc only.
check_PROGRAMS += test/fd_list
test_fd_list_SOURCES = test/fd_list.c
endif
# valgrind stage (scripts/sanitize.sh): each suppression says why it is there.
EXTRA_DIST += test/valgrind.supp

# libFuzzer targets: built by `configure --enable-fuzzing CC=clang` (scripts/fuzz.sh
# does that out of tree in _build/fuzz); seed corpora in test/fuzz/corpus/<target>/.
if ENABLE_FUZZING
noinst_PROGRAMS += test/fuzz/fuzz_settings test/fuzz/fuzz_state_file test/fuzz/fuzz_control \
	test/fuzz/make_control_seeds
endif
FUZZ_TARGET_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
test_fuzz_fuzz_settings_SOURCES = test/fuzz/fuzz_settings.c
test_fuzz_fuzz_settings_CPPFLAGS = $(FUZZ_TARGET_CPPFLAGS)
test_fuzz_fuzz_settings_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
test_fuzz_fuzz_settings_LDADD = libdynshm_core.la
test_fuzz_fuzz_state_file_SOURCES = test/fuzz/fuzz_state_file.c
test_fuzz_fuzz_state_file_CPPFLAGS = $(FUZZ_TARGET_CPPFLAGS)
test_fuzz_fuzz_state_file_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
test_fuzz_fuzz_state_file_LDADD = libdynshm_core.la
test_fuzz_fuzz_control_SOURCES = test/fuzz/fuzz_control.c
test_fuzz_fuzz_control_CPPFLAGS = $(FUZZ_TARGET_CPPFLAGS)
test_fuzz_fuzz_control_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
test_fuzz_fuzz_control_LDADD = libdynshm_core.la
# Regenerates the control seeds when the layout changes (see its header).
test_fuzz_make_control_seeds_SOURCES = test/fuzz/make_control_seeds.c
test_fuzz_make_control_seeds_CPPFLAGS = $(FUZZ_TARGET_CPPFLAGS)
test_fuzz_make_control_seeds_LDADD = libdynshm_core.la
EXTRA_DIST += test/fuzz/corpus

# A longer fuzzing run: FUZZ_SECONDS per target (default 300); CI runs 20.
fuzz:
	$(SHELL) $(top_srcdir)/scripts/fuzz.sh
.PHONY: fuzz

# The example programs the user guide quotes (examples/), run so they cannot rot.
TESTS += test/examples.sh
EXTRA_DIST += test/examples.sh
EXTRA_DIST += test/testlib.sh

# ---- issue 13: dynamic shared areas and robust user locks ------------------------
if HAVE_CHECK
test_check_dynshm_SOURCES += test/check_area.c
endif
# ---- issue 14: the table of contents and the message queue ------------------------
if HAVE_CHECK
test_check_dynshm_SOURCES += test/check_toc.c test/check_mq.c
endif

# libFuzzer target for the queue's and the table of contents' shared state
# (scripts/fuzz.sh mq); it drives a script from a valid start, so it needs no seeds.
if ENABLE_FUZZING
noinst_PROGRAMS += test/fuzz/fuzz_mq
endif
test_fuzz_fuzz_mq_SOURCES = test/fuzz/fuzz_mq.c
test_fuzz_fuzz_mq_CPPFLAGS = $(FUZZ_TARGET_CPPFLAGS)
test_fuzz_fuzz_mq_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
test_fuzz_fuzz_mq_LDADD = libdynshm_core.la
# dsmctl's operator features (issue 18): JSON, filters, procs, watch, unpin,
# scan, exit codes.  After dsmctl-e2e.sh: it plants an orphan in /dev/shm
# and scans the host, so it keeps out of the tests that count objects.
EXTRA_DIST += test/dsmctl-ops-e2e.sh
if BUILD_TOOLS
if BUILD_DEMO
TESTS += test/dsmctl-ops-e2e.sh
DSMCTL_OPS_E2E_LOG = test/dsmctl-ops-e2e.sh.log
$(DSMCTL_OPS_E2E_LOG): test/dsmctl-e2e.sh.log
endif
endif
# libFuzzer target for an area's control data (issue 13).
if ENABLE_FUZZING
noinst_PROGRAMS += test/fuzz/fuzz_area
endif
test_fuzz_fuzz_area_SOURCES = test/fuzz/fuzz_area.c
test_fuzz_fuzz_area_CPPFLAGS = $(FUZZ_TARGET_CPPFLAGS)
test_fuzz_fuzz_area_LDFLAGS = $(AM_LDFLAGS) $(FUZZ_LDFLAGS)
test_fuzz_fuzz_area_LDADD = libdynshm_core.la

# ---- issue 15: the concurrent hash table in an area ------------------------------
if HAVE_CHECK
test_check_dynshm_SOURCES += test/check_hash.c
test_check_dynshm_SOURCES += test/check_registry.c
endif
