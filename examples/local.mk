# examples/local.mk - small programs built only on the public API and the
# installed library (they link libdynshm.la, never the core), so they show
# exactly what a user writes.
noinst_PROGRAMS += examples/raw_roundtrip
examples_raw_roundtrip_SOURCES = examples/raw_roundtrip.c
examples_raw_roundtrip_LDADD = libdynshm.la
