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
	test/check_dsm.c
endif

# Check writes its summary into the .log files; show it on the console too.
check-local: check-TESTS
	@for f in $(TEST_LOGS); do \
	  test -f "$$f" && grep -h -E '^[0-9]+%: Checks: ' "$$f" || true; \
	done

# The manual: lint every page, one page per exported symbol, exports match the list.
TESTS += test/check-man.sh
EXTRA_DIST += test/check-man.sh
