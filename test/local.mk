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
	test/check_settings.c \
	test/dsmtest.h \
	test/dsmtest.c \
	test/check_dsm.c \
	test/check_lifecycle.c

# A worker started by exec, for the lifecycle suite: public API only.
check_PROGRAMS += test/exec_worker
test_exec_worker_SOURCES = test/exec_worker.c
test_exec_worker_LDADD = libdynshm.la
endif

# Check writes its summary into the .log files; show it on the console too.
check-local: check-TESTS
	@for f in $(TEST_LOGS); do \
	  test -f "$$f" && grep -h -E '^[0-9]+%: Checks: ' "$$f" || true; \
	done

# The manual: lint every page, one page per exported symbol, exports match the list.
TESTS += test/check-man.sh
EXTRA_DIST += test/check-man.sh

# The demo server and client, end to end, on every backend.
TESTS += test/demo-e2e.sh
EXTRA_DIST += test/demo-e2e.sh
if HAVE_CHECK
# check_dynshm counts (and at the end removes) every System V segment created
# while it runs, whoever created it: run the end-to-end test after it, not beside
# it.  (Named through a variable so that automake adds this prerequisite to its
# own rule for the log instead of replacing that rule.)
DEMO_E2E_LOG = test/demo-e2e.sh.log
$(DEMO_E2E_LOG): test/check_dynshm.log
endif
