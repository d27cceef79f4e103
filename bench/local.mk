# SPDX-License-Identifier: MIT
# bench/local.mk - the benchmark: dynshm against the raw system calls.
# Built and run by `make bench` (BENCH_FLAGS=--quick for a smoke run),
# never part of `make check`: timings are not pass/fail tests.  It links the
# core library so the raw side can call the backends' own helpers.
EXTRA_PROGRAMS += bench/dsm_bench
CLEANFILES += bench/dsm_bench$(EXEEXT)
bench_dsm_bench_SOURCES = \
	bench/bench.h \
	bench/dsm_bench.c \
	bench/guardian.c \
	bench/measure.c \
	bench/raw.c \
	bench/phases.c \
	bench/procs.c \
	bench/capacity.c \
	bench/region.c \
	bench/report.c
bench_dsm_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src -I$(top_srcdir)/bench
bench_dsm_bench_LDADD = libdynshm_core.la -lm

BENCH_FLAGS =
.PHONY: bench
# Every phase, one program after the other (each prints its table with the
# floor measured in the same run).  bench-<layer> runs one alone.
bench: bench-segments bench-area bench-mq
.PHONY: bench-segments
bench-segments: bench/dsm_bench$(EXEEXT)
	./bench/dsm_bench$(EXEEXT) $(BENCH_FLAGS)

# Issue 13: dynamic shared areas against glibc malloc in the same run.
EXTRA_PROGRAMS += bench/area_bench
CLEANFILES += bench/area_bench$(EXEEXT)
bench_area_bench_SOURCES = bench/area_bench.c
bench_area_bench_LDADD = libdynshm.la
.PHONY: bench-area
bench-area: bench/area_bench$(EXEEXT)
	./bench/area_bench$(EXEEXT) $(BENCH_FLAGS)
# The table of contents and the message queue against their floors (issue 14):
# `make bench-mq` (BENCH_MQ_FLAGS=--quick for a smoke run).  Results in doc/performance.md.
EXTRA_PROGRAMS += bench/mq_bench
CLEANFILES += bench/mq_bench$(EXEEXT)
bench_mq_bench_SOURCES = bench/mq_bench.c bench/mq_floor.h bench/mq_floor.c
bench_mq_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src -I$(top_srcdir)/bench
bench_mq_bench_LDADD = libdynshm_core.la

BENCH_MQ_FLAGS =
.PHONY: bench-mq
bench-mq: bench/mq_bench$(EXEEXT)
	./bench/mq_bench$(EXEEXT) $(BENCH_MQ_FLAGS) $(BENCH_FLAGS)
# Huge pages against normal pages (first touch, random loads) in one run;
# run as root: it reserves pages through /proc/sys/vm/nr_hugepages and
# puts the old value back.  ./bench/dsm_bench_huge [SIZE_MIB [ROUNDS]]
EXTRA_PROGRAMS += bench/dsm_bench_huge
CLEANFILES += bench/dsm_bench_huge$(EXEEXT)
.PHONY: bench-huge
bench-huge: bench/dsm_bench_huge$(EXEEXT)
	./bench/dsm_bench_huge$(EXEEXT)
bench_dsm_bench_huge_SOURCES = bench/huge.c
bench_dsm_bench_huge_LDADD = libdynshm.la

# Issue 15: the shared hash table against a local open-addressing table in the
# same run (BENCH_FLAGS=--big adds 10 million keys).
EXTRA_PROGRAMS += bench/hash_bench
CLEANFILES += bench/hash_bench$(EXEEXT)
bench_hash_bench_SOURCES = bench/hash_bench.c
bench_hash_bench_LDADD = libdynshm.la
bench: bench-hash
.PHONY: bench-hash
bench-hash: bench/hash_bench$(EXEEXT)
	./bench/hash_bench$(EXEEXT) $(BENCH_FLAGS)

# Issue 16: finding shared memory by name, against a local table of names and
# the raw shm_open+mmap in the same run.
EXTRA_PROGRAMS += bench/registry_bench
CLEANFILES += bench/registry_bench$(EXEEXT)
bench_registry_bench_SOURCES = bench/registry_bench.c
bench_registry_bench_LDADD = libdynshm.la
bench: bench-registry
.PHONY: bench-registry
bench-registry: bench/registry_bench$(EXEEXT)
	./bench/registry_bench$(EXEEXT) $(BENCH_FLAGS)
