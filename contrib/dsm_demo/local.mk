# SPDX-License-Identifier: MIT
# contrib/dsm_demo/local.mk - the demo server and client.
# Built only on the public API and the installed library (libdynshm.la,
# never the core), exactly as a user's server would be.
if BUILD_DEMO
bin_PROGRAMS += contrib/dsm_demo/dsm_demo
endif
contrib_dsm_demo_dsm_demo_SOURCES = \
	contrib/dsm_demo/dsm_demo.h \
	contrib/dsm_demo/protocol.h \
	contrib/dsm_demo/protocol.c \
	contrib/dsm_demo/log.c \
	contrib/dsm_demo/main.c \
	contrib/dsm_demo/server.h \
	contrib/dsm_demo/server.c \
	contrib/dsm_demo/supervise.c \
	contrib/dsm_demo/worker.c \
	contrib/dsm_demo/client.h \
	contrib/dsm_demo/client.c \
	contrib/dsm_demo/session.c
contrib_dsm_demo_dsm_demo_LDADD = libdynshm.la
