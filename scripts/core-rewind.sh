#!/usr/bin/env bash
# scripts/core-rewind.sh -- pg_rewind's own TAP suite, run against the
# patched server's pg_rewind (core patch 0004 changes how pg_rewind treats
# a live source server, 0007 where it starts reading the target's WAL).
#
# Usage: scripts/core-rewind.sh PREFIX WORKDIR
#
# PREFIX is a debug server built by scripts/build-server.sh (TAP tests
# enabled; its wtsmgr-build.info names the source and build trees the
# suite comes from).  Its data directories, logs and port locks go to
# WORKDIR, so the cached trees are only read.  Run as the unprivileged
# user that owns WORKDIR.  Prints prove's -v output.
set -euo pipefail

prefix=$1
workdir=$2
# shellcheck disable=SC1091
. "$prefix/wtsmgr-build.info"	# source=, build=, version=
export PATH="$prefix/bin:$PATH"
mkdir -p "$workdir"

export TESTLOGDIR=$workdir/log TESTDATADIR=$workdir/data \
	PG_TEST_PORT_DIR=$workdir/portlock top_builddir=$build \
	PG_REGRESS=$build/src/test/regress/pg_regress
cd "$source/src/bin/pg_rewind"
exec prove -v -I "$source/src/test/perl" -I "$source/src/bin/pg_rewind" t/*.pl
