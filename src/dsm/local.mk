# SPDX-License-Identifier: MIT
# src/dsm/local.mk - the dsm API: segments, resource owners, process lifecycle.
dynshminclude_HEADERS += include/dynshm/dsm.h include/dynshm/inspect.h
libdynshm_core_la_SOURCES += \
	src/dsm/dsm_int.h \
	src/dsm/services.h \
	src/dsm/dsm.c \
	src/dsm/resowner.c \
	src/dsm/lifecycle.c \
	src/dsm/crash.c \
	src/dsm/cleanup.h \
	src/dsm/cleanup.c \
	src/dsm/datadir.h \
	src/dsm/datadir.c \
	src/dsm/inspection.c \
	src/dsm/keeper.h \
	src/dsm/keeper.c \
	src/dsm/scan.c
