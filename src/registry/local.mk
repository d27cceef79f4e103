# SPDX-License-Identifier: MIT
# src/registry/local.mk - named segments, areas and hash tables (issue 16).
dynshminclude_HEADERS += include/dynshm/registry.h
libdynshm_core_la_SOURCES += \
	src/registry/registry.c
