# SPDX-License-Identifier: MIT
# src/settings/local.mk - GUC-style typed settings.
dynshminclude_HEADERS += include/dynshm/settings.h
libdynshm_core_la_SOURCES += \
	src/settings/settings_int.h \
	src/settings/settings.c \
	src/settings/value.c \
	src/settings/units.c \
	src/settings/parse.c \
	src/settings/builtin.c
