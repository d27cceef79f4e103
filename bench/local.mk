# SPDX-License-Identifier: MIT
# bench/local.mk - the benchmark: dynshm against the raw system calls.
# Built by `make`, run by `make bench` (BENCH_FLAGS=--quick for a smoke run),
# never part of `make check`: timings are not pass/fail tests.  It links the
# core library so the raw side can call the backends' own helpers.
noinst_PROGRAMS += bench/dsm_bench
bench_dsm_bench_SOURCES = \
	bench/bench.h \
	bench/dsm_bench.c \
	bench/guardian.c \
	bench/measure.c \
	bench/raw.c \
	bench/phases.c \
	bench/procs.c \
	bench/capacity.c \
	bench/report.c
bench_dsm_bench_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/src -I$(top_srcdir)/bench
bench_dsm_bench_LDADD = libdynshm_core.la -lm

BENCH_FLAGS =
.PHONY: bench
bench: bench/dsm_bench$(EXEEXT)
	./bench/dsm_bench$(EXEEXT) $(BENCH_FLAGS)

# Huge pages against normal pages (first touch, random loads) in one run;
# run as root: it reserves pages through /proc/sys/vm/nr_hugepages and
# puts the old value back.  ./bench/dsm_bench_huge [SIZE_MIB [ROUNDS]]
noinst_PROGRAMS += bench/dsm_bench_huge
bench_dsm_bench_huge_SOURCES = bench/huge.c
bench_dsm_bench_huge_LDADD = libdynshm.la
