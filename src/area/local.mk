# SPDX-License-Identifier: MIT
# src/area/local.mk - dynamic shared areas (a heap across segments, relative
# pointers) and the robust lock users embed in shared structures.
dynshminclude_HEADERS += include/dynshm/area.h include/dynshm/lock.h
libdynshm_core_la_SOURCES += \
	src/area/area_int.h \
	src/area/lock_int.h \
	src/area/lock.c \
	src/area/rwlock.c \
	src/area/area.c \
	src/area/pages.c \
	src/area/alloc.c \
	src/area/stats.c
