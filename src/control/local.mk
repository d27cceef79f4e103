# SPDX-License-Identifier: MIT
# src/control/local.mk - the control segment and the state file.
libdynshm_core_la_SOURCES += \
	src/control/control.h \
	src/control/control.c \
	src/control/slots.c \
	src/control/state_file.h \
	src/control/state_file.c \
	src/control/inspect.h \
	src/control/inspect.c
