# SPDX-License-Identifier: MIT
# examples/local.mk - small programs built only on the public API and the
# installed library (they link libdynshm.la, never the core), so they show
# exactly what a user writes.  Built by `make check` (and `make examples`),
# not by `make`: they are not part of what ships.
check_PROGRAMS += examples/raw_roundtrip
examples_raw_roundtrip_SOURCES = examples/raw_roundtrip.c
examples_raw_roundtrip_LDADD = libdynshm.la

# The two integration patterns the user guide (doc/guide.md) walks through:
# a supervisor that forks its workers, and one that execs them.  Run by
# test/examples.sh in `make check`, so they cannot rot.
check_PROGRAMS += examples/fork_server examples/exec_worker_demo
examples_fork_server_SOURCES = examples/fork_server.c
examples_fork_server_LDADD = libdynshm.la
examples_exec_worker_demo_SOURCES = examples/exec_worker_demo.c
examples_exec_worker_demo_LDADD = libdynshm.la

# Issue 13: a tree of variable-size records shared through an area, one worker
# killed mid-way (the guide's "Putting data structures in shared memory").
check_PROGRAMS += examples/area_tree
examples_area_tree_SOURCES = examples/area_tree.c
examples_area_tree_LDADD = libdynshm.la

# Issue 14: a supervisor and workers talking through message queues found in a
# segment's table of contents; one worker is killed (doc/guide.md quotes it).
check_PROGRAMS += examples/mq_workers
examples_mq_workers_SOURCES = examples/mq_workers.c
examples_mq_workers_LDADD = libdynshm.la
# Issue 15: a word count built by several workers at once in a shared hash
# table (the guide's "Shared hash tables").
check_PROGRAMS += examples/hash_wordcount
examples_hash_wordcount_SOURCES = examples/hash_wordcount.c
examples_hash_wordcount_LDADD = libdynshm.la
# Issue 16: separate programs find one hash table by its name (the guide's
# "Named shared memory").
check_PROGRAMS += examples/named_table
examples_named_table_SOURCES = examples/named_table.c
examples_named_table_LDADD = libdynshm.la

# `make examples` builds them alone (the demo command runs raw_roundtrip).
EXAMPLE_BINARIES = examples/raw_roundtrip$(EXEEXT) examples/fork_server$(EXEEXT) \
	examples/exec_worker_demo$(EXEEXT) examples/area_tree$(EXEEXT) \
	examples/mq_workers$(EXEEXT) examples/hash_wordcount$(EXEEXT) \
	examples/named_table$(EXEEXT)
examples: $(EXAMPLE_BINARIES)
.PHONY: examples
