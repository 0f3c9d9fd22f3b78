#!/usr/bin/env bash
# scripts/demo.sh -- the main job: a local cluster with wtsmgr loaded.
#
# Usage: scripts/demo.sh
#
# Builds what is missing (the patched server, wtsmgr), creates a cluster in
# a scratch directory ($WTSMGR_DEMO_DIR, default /var/tmp/wtsmgr-demo) with
# wtsmgr in shared_preload_libraries, starts it, prints what was loaded and
# what statx reports for its data directory, and says how to connect and
# stop.  As root, the cluster belongs to the unprivileged user "wtsmgr".
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor debug --print-prefix)
say "installing wtsmgr into $prefix"
make -s -C "$WTSMGR_ROOT" PG_CONFIG="$prefix/bin/pg_config" install >/dev/null
ensure_user

demo=${WTSMGR_DEMO_DIR:-/var/tmp/wtsmgr-demo}
port=${WTSMGR_DEMO_PORT:-5499}
pgdata=$demo/pgdata
export PATH="$prefix/bin:$PATH"

if [ -f "$pgdata/postmaster.pid" ]; then
	as_user pg_ctl -D "$pgdata" -m fast stop >/dev/null 2>&1 || true
fi
rm -rf "$demo"
mkdir -p "$demo"
is_root && chown "$WTSMGR_USER" "$demo"

say "creating a cluster in $pgdata"
start_cluster "$pgdata" "$port" "$demo"
say "server started on port $port (log: $demo/server.log)"

psql_demo()
{
	as_user psql -X -h "$demo" -p "$port" -d postgres "$@"
}

psql_demo -q -c 'CREATE EXTENSION wtsmgr'

# A tablespace on the atomic XFS filesystem, which root can make.
if is_root; then
	mnt=$(ensure_atomic_fs)
	rm -rf "$mnt/demo"
	mkdir -p "$mnt/demo"
	chown "$WTSMGR_USER" "$mnt/demo"
	psql_demo -q -c "CREATE TABLESPACE demo_atomic LOCATION '$mnt/demo'" \
		-c 'CREATE TABLE demo_atomic (id int) TABLESPACE demo_atomic'
	say "created tablespace demo_atomic on $mnt/demo (XFS on a loop device)"
else
	say "not root: no atomic filesystem for a demo tablespace (making the XFS loop mount needs root)"
fi
psql_demo <<'SQL'
\pset footer off
\echo 'What the server loaded:'
SELECT current_setting('shared_preload_libraries') AS shared_preload_libraries,
       wtsmgr_version() AS wtsmgr_library,
       (SELECT extversion FROM pg_extension WHERE extname = 'wtsmgr') AS wtsmgr_extension,
       wtsmgr_relation_smgr('pg_class') AS storage_manager_of_pg_class;
\echo 'Calls wtsmgr''s storage manager received since start:'
SELECT * FROM wtsmgr_smgr_counters;
\echo 'What statx reports for a file of the data directory:'
SELECT * FROM wtsmgr_statx(pg_relation_filepath('pg_class'));
\echo 'What wtsmgr found out about each tablespace at startup or first use:'
SELECT tablespace, fs_type, atomic_unit_min, atomic_unit_max, untorn_blocks,
       full_page_images, reason
FROM wtsmgr_tablespaces;
SQL

run_as=
is_root && run_as="runuser -u $WTSMGR_USER -- "
cat <<EOF

Connect:  ${run_as}$prefix/bin/psql -h $demo -p $port postgres
Stop:     ${run_as}$prefix/bin/pg_ctl -D $pgdata stop
EOF
