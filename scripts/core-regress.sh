#!/usr/bin/env bash
# scripts/core-regress.sh -- PostgreSQL's own regression suite, run against
# a server with wtsmgr preloaded.
#
# Usage: scripts/core-regress.sh PREFIX DATA_PARENT WORKDIR
#
# PREFIX is a server built by scripts/build-server.sh (its
# wtsmgr-build.info names the source and build trees the suite comes
# from).  The data directory is made in DATA_PARENT, which scripts/test.sh
# puts on the atomic filesystem when there is one; results go to WORKDIR.
# Run as the unprivileged user that owns both directories.
set -euo pipefail

prefix=$1
data_parent=$2
workdir=$3
# shellcheck disable=SC1091
. "$prefix/wtsmgr-build.info"	# source=, build=, version=
export PATH="$prefix/bin:$PATH"

pgdata=$data_parent/core-pgdata
port=$((50000 + $$ % 10000))
sock=$(mktemp -d /tmp/wtsmgr-sock.XXXXXX)
rm -rf "$pgdata"

initdb -D "$pgdata" --no-instructions --locale=C -E UTF8 >"$workdir/initdb.log"
cat >>"$pgdata/postgresql.conf" <<CONF
shared_preload_libraries = 'wtsmgr'
port = $port
unix_socket_directories = '$sock'
listen_addresses = ''
max_connections = 40
CONF
pg_ctl -D "$pgdata" -l "$workdir/server.log" -w start >/dev/null
trap 'pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$sock"' EXIT

q()
{
	psql -X -A -t -v ON_ERROR_STOP=1 -h "$sock" -p "$port" "$@"
}

spl=$(q -d postgres -c 'SHOW shared_preload_libraries')
echo "# data directory: $pgdata ($(stat -f -c %T "$pgdata"))"
echo "# SHOW shared_preload_libraries = $spl"
if [ "$spl" != wtsmgr ]; then
	echo "not ok 0 - wtsmgr is not preloaded"
	exit 1
fi

"$build/src/test/regress/pg_regress" \
	--inputdir="$source/src/test/regress" \
	--bindir="$prefix/bin" \
	--dlpath="$build/src/test/regress" \
	--outputdir="$workdir" \
	--host="$sock" --port="$port" \
	--max-concurrent-tests=20 \
	--schedule="$source/src/test/regress/parallel_schedule"

# The suite ran with every relation handled by wtsmgr.
q -d regression -c 'CREATE EXTENSION IF NOT EXISTS wtsmgr' >/dev/null
smgr=$(q -d regression -c "
	SELECT string_agg(DISTINCT wtsmgr_relation_smgr(oid), ',')
	FROM pg_class
	WHERE relkind IN ('r', 'i', 'S', 't', 'm') AND relpersistence <> 't'")
if [ "$smgr" = wtsmgr ]; then
	echo "ok 1000 - every relation of the regression database is opened through wtsmgr"
else
	echo "not ok 1000 - relations of the regression database are opened through: $smgr"
	exit 1
fi
# On the atomic filesystem, pg_default is untorn: the suite ran with images
# left out.
skipped=$(q -d regression -c "
	SELECT CASE WHEN t.untorn_blocks THEN s.fpi_skipped END
	FROM wtsmgr_tablespaces t JOIN wtsmgr_stat_io s USING (spcoid)
	WHERE t.tablespace = 'pg_default'")
if [ -z "$skipped" ]; then
	echo "ok 1001 # skip pg_default is not on atomic storage here, so no image was left out"
elif [ "$skipped" -gt 0 ]; then
	echo "ok 1001 - the suite ran with full-page images left out ($skipped)"
else
	echo "not ok 1001 - pg_default is untorn, but no full-page image was left out"
	exit 1
fi
pg_ctl -D "$pgdata" -w stop >/dev/null
trap - EXIT
rm -rf "$pgdata" "$sock"
