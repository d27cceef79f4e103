# SPDX-License-Identifier: MIT
# src/hash/local.mk - the concurrent hash table in a dynamic shared area (issue 15).
dynshminclude_HEADERS += include/dynshm/hash.h
libdynshm_core_la_SOURCES += \
	src/hash/hash_int.h \
	src/hash/hash.c \
	src/hash/scan.c
