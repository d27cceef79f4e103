# SPDX-License-Identifier: MIT
# src/toc/local.mk - the table of contents: keys to offsets in a shared buffer.
dynshminclude_HEADERS += include/dynshm/toc.h
libdynshm_core_la_SOURCES += src/toc/toc.c
