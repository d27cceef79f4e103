# SPDX-License-Identifier: MIT
# src/mq/local.mk - the single-reader, single-writer message queue.
dynshminclude_HEADERS += include/dynshm/mq.h
libdynshm_core_la_SOURCES += \
	src/mq/mq_int.h \
	src/mq/mq.c \
	src/mq/mq_io.c
