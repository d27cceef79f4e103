# SPDX-License-Identifier: MIT
# src/common/local.mk - error messages, log hook, handles (shared by all modules).
dynshminclude_HEADERS += include/dynshm/common.h include/dynshm/dynshm.h
libdynshm_core_la_SOURCES += \
	src/common/internal.h \
	src/common/error.c \
	src/common/handle.c \
	src/common/limits.h \
	src/common/procid.h \
	src/common/procid.c \
	src/common/futex.h \
	src/common/futex.c \
	src/common/robust_mutex.h \
	src/common/robust_mutex.c
