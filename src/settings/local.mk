# src/settings/local.mk - GUC-style typed settings.
dynshminclude_HEADERS += include/dynshm/settings.h
libdynshm_core_la_SOURCES +=
