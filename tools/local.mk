# tools/local.mk - programs for users and operators.

# dsmctl: the operator's view of an instance (status, list) and offline
# cleanup of a dead one (gc).  It reads the control segment and the state
# file, which are internals, so it links the core library (statically) and
# sees src/ -- it is part of the project and is versioned with the library.
bin_PROGRAMS += tools/dsmctl/dsmctl
tools_dsmctl_dsmctl_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src
tools_dsmctl_dsmctl_LDADD = libdynshm_core.la
tools_dsmctl_dsmctl_SOURCES = \
	tools/dsmctl/dsmctl.h \
	tools/dsmctl/main.c \
	tools/dsmctl/datadir.c \
	tools/dsmctl/format.c \
	tools/dsmctl/status.c \
	tools/dsmctl/list.c \
	tools/dsmctl/gc.c
# The operator's guide to dsmctl (to be folded into the user guide).
EXTRA_DIST += doc/dsmctl.md
