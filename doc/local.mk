# doc/local.mk - man pages and the user guide.
