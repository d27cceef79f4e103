# SPDX-License-Identifier: MIT
# tools/local.mk - programs for users and operators.

# dsmctl: the operator's view of an instance (status, list, procs, scan),
# offline cleanup of a dead one (gc), and unpin through a live one.  A client of the installed library like any
# other program: public headers (dynshm/inspect.h) and libdynshm only.
if BUILD_TOOLS
bin_PROGRAMS += tools/dsmctl/dsmctl
endif
tools_dsmctl_dsmctl_LDADD = libdynshm.la
tools_dsmctl_dsmctl_SOURCES = \
	tools/dsmctl/dsmctl.h \
	tools/dsmctl/main.c \
	tools/dsmctl/format.c \
	tools/dsmctl/status.c \
	tools/dsmctl/list.c \
	tools/dsmctl/gc.c \
	tools/dsmctl/procs.c \
	tools/dsmctl/limits.c \
	tools/dsmctl/watch.c \
	tools/dsmctl/scan.c \
	tools/dsmctl/unpin.c \
	tools/dsmctl/names.c
# The operator's guide to dsmctl (to be folded into the user guide).
EXTRA_DIST += doc/dsmctl.md
