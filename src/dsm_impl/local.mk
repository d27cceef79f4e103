# SPDX-License-Identifier: MIT
# src/dsm_impl/local.mk - the raw layer: backend switch and one file per backend.
dynshminclude_HEADERS += include/dynshm/dsm_impl.h
libdynshm_core_la_SOURCES += \
	src/dsm_impl/dsm_impl_int.h \
	src/dsm_impl/dsm_impl.c \
	src/dsm_impl/syscalls.h \
	src/dsm_impl/syscalls.c \
	src/dsm_impl/dsm_impl_none.c \
	src/dsm_impl/dsm_impl_posix.c \
	src/dsm_impl/dsm_impl_sysv.c \
	src/dsm_impl/dsm_impl_mmap.c \
	src/dsm_impl/fdobj.c \
	src/dsm_impl/sweep.c \
	src/dsm_impl/dsm_impl_memfd.c \
	src/dsm_impl/memfd_registry.h \
	src/dsm_impl/memfd_registry.c \
	src/dsm_impl/hugepages.c \
	src/dsm_impl/region.h \
	src/dsm_impl/region.c
