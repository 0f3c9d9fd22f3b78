# Makefile for wtsmgr, built with PGXS against a PostgreSQL 18 server that
# carries wtsmgr's core patches (scripts/build-server.sh builds one).
#
#   make PG_CONFIG=<prefix>/bin/pg_config [install | installcheck]
#
# installcheck runs the pg_regress tests in sql/ (in a temporary instance
# with wtsmgr preloaded) and the TAP tests in t/.  scripts/test.sh runs all
# of it, plus PostgreSQL's own regression suite, the way CI does.

MODULE_big = wtsmgr
OBJS = \
	$(WIN32RES) \
	wtsmgr.o \
	wtsmgr_atomic.o \
	wtsmgr_doublewrite.o \
	wtsmgr_fpi.o \
	wtsmgr_registry.o \
	wtsmgr_sql.o \
	wtsmgr_stats.o \
	wtsmgr_statx.o

EXTENSION = wtsmgr
DATA = wtsmgr--1.0.sql
PGFILEDESC = "wtsmgr - storage manager with untorn writes"

REGRESS = wtsmgr
REGRESS_OPTS = --temp-instance=./tmp_check_regress \
	--temp-config=$(srcdir)/test/wtsmgr_regress.conf
TAP_TESTS = 1

EXTRA_CLEAN = tmp_check_regress test/split_test .pg_config_stamp

# The library reports the version in wtsmgr.control.
WTSMGR_VERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(dir $(lastword $(MAKEFILE_LIST)))wtsmgr.control)
PG_CPPFLAGS = -DWTSMGR_VERSION='"$(WTSMGR_VERSION)"'

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

# Refuse early, with a clear message, a server without the core patches.
ifeq ($(filter clean distclean,$(MAKECMDGOALS)),)
WTSMGR_SERVER_INC := $(shell $(PG_CONFIG) --includedir-server)
ifeq ($(shell grep -l SMGR_HAS_REGISTER $(WTSMGR_SERVER_INC)/storage/smgr.h 2>/dev/null),)
$(error $(PG_CONFIG) belongs to a PostgreSQL server without wtsmgr's core patches (no smgr_register in $(WTSMGR_SERVER_INC)/storage/smgr.h). Build one with scripts/build-server.sh and pass PG_CONFIG=<prefix>/bin/pg_config)
endif
ifeq ($(shell grep -l XLogNoteImagesOmitted $(WTSMGR_SERVER_INC)/access/xlog.h 2>/dev/null),)
$(error $(PG_CONFIG) belongs to a PostgreSQL server without the current version of wtsmgr's full-page-image hook (no XLogNoteImagesOmitted in $(WTSMGR_SERVER_INC)/access/xlog.h). Build one with scripts/build-server.sh)
endif
endif

include $(PGXS)

# Objects built against one server (say, with injection points) must not be
# installed into another: rebuild when PG_CONFIG names a different server.
# The stamp only changes when the server does.
$(OBJS): .pg_config_stamp
# Each module's header, and the headers of the modules it uses (wtsmgr.h)
wtsmgr_statx.o: wtsmgr_statx.h
wtsmgr_registry.o: wtsmgr_registry.h wtsmgr_statx.h
wtsmgr_stats.o: wtsmgr_stats.h wtsmgr_registry.h wtsmgr_statx.h
wtsmgr_doublewrite.o: wtsmgr_doublewrite.h
wtsmgr_atomic.o: wtsmgr_atomic.h wtsmgr_doublewrite.h wtsmgr_split.h wtsmgr_stats.h wtsmgr_registry.h wtsmgr_statx.h
wtsmgr_fpi.o: wtsmgr_fpi.h wtsmgr_stats.h wtsmgr_registry.h wtsmgr_statx.h
wtsmgr.o: wtsmgr.h wtsmgr_atomic.h wtsmgr_doublewrite.h wtsmgr_fpi.h wtsmgr_stats.h wtsmgr_registry.h wtsmgr_statx.h
wtsmgr_sql.o: wtsmgr.h wtsmgr_fpi.h wtsmgr_stats.h wtsmgr_registry.h wtsmgr_statx.h
.pg_config_stamp: FORCE
	@echo '$(shell $(PG_CONFIG) --bindir) $(shell $(PG_CONFIG) --configure)' | cmp -s - $@ || \
		echo '$(shell $(PG_CONFIG) --bindir) $(shell $(PG_CONFIG) --configure)' > $@
.PHONY: FORCE
FORCE:

# Test-only module used by the TAP tests; built here, never installed.
export WTSMGR_TEST_MODULE := $(abspath test/wtsmgr_test/wtsmgr_test)

# Unit test of the multiple-atomicity planner (wtsmgr_split.h); plain C.
test/split_test: test/split_test.c wtsmgr_split.h
	$(CC) -O2 -Wall -Wextra -std=c99 -o $@ test/split_test.c

.PHONY: check-split
check-split: test/split_test
	test/split_test

.PHONY: test-modules
test-modules:
	$(MAKE) -C test/wtsmgr_test PG_CONFIG=$(PG_CONFIG)

installcheck: test-modules

clean: clean-test-modules
.PHONY: clean-test-modules
clean-test-modules:
	$(MAKE) -C test/wtsmgr_test PG_CONFIG=$(PG_CONFIG) clean
