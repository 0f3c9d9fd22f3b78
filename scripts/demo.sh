#!/usr/bin/env bash
# scripts/demo.sh -- the main job: see wtsmgr leave full-page images out.
#
# Usage: scripts/demo.sh
#
# Builds what is missing (the patched server, wtsmgr), creates a cluster in
# a scratch directory ($WTSMGR_DEMO_DIR, default /var/tmp/wtsmgr-demo) with
# wtsmgr in shared_preload_libraries, and two tablespaces:
#   - demo_atomic, on storage with atomic writes: as root, an XFS filesystem
#     on a loop device (software atomic writes); otherwise the directory in
#     $WTSMGR_ATOMIC_DIR, if set;
#   - demo_plain, next to the data directory (no atomic writes on ext4).
# It prints what wtsmgr found out about each tablespace, runs a short
# pgbench in a database in each, and prints, side by side, the full-page
# images and WAL bytes per transaction each produced.  Then it says how to
# connect and how to stop.  As root, the cluster belongs to the
# unprivileged user "wtsmgr".
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor debug --print-prefix)
say "installing wtsmgr into $prefix"
make -s -C "$WTSMGR_ROOT" PG_CONFIG="$prefix/bin/pg_config" install >/dev/null
ensure_user

demo=${WTSMGR_DEMO_DIR:-/var/tmp/wtsmgr-demo}
port=${WTSMGR_DEMO_PORT:-5499}
seconds=${WTSMGR_DEMO_SECONDS:-15}
pgdata=$demo/pgdata
export PATH="$prefix/bin:$PATH"

if [ -f "$pgdata/postmaster.pid" ]; then
	as_user pg_ctl -D "$pgdata" -m fast stop >/dev/null 2>&1 || true
fi
rm -rf "$demo"
mkdir -p "$demo/plain"
is_root && chown -R "$WTSMGR_USER" "$demo"

# Where the atomic tablespace goes.
atomic=
if is_root; then
	mnt=$(ensure_atomic_fs)
	atomic=$mnt/demo
	rm -rf "$atomic"
	mkdir -p "$atomic"
	chown "$WTSMGR_USER" "$atomic"
elif [ -n "${WTSMGR_ATOMIC_DIR:-}" ]; then
	atomic=$WTSMGR_ATOMIC_DIR/wtsmgr-demo
	rm -rf "$atomic"
	mkdir -p "$atomic"
fi

say "creating a cluster in $pgdata"
start_cluster "$pgdata" "$port" "$demo"
say "server started on port $port (log: $demo/server.log)"

psql_demo()
{
	as_user psql -X -h "$demo" -p "$port" -d postgres "$@"
}

psql_demo -q -c 'CREATE EXTENSION wtsmgr' \
	-c "CREATE TABLESPACE demo_plain LOCATION '$demo/plain'" \
	-c 'CREATE DATABASE demo_plain TABLESPACE demo_plain'
dbs=(demo_plain)
if [ -n "$atomic" ]; then
	psql_demo -q -c "CREATE TABLESPACE demo_atomic LOCATION '$atomic'" \
		-c 'CREATE DATABASE demo_atomic TABLESPACE demo_atomic'
	dbs=(demo_atomic demo_plain)
	say "tablespace demo_atomic is on $atomic"
	# images are left out once the WAL has announced it
	for i in $(seq 50); do
		[ "$(psql_demo -A -t -c "SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = 'demo_atomic'")" = skipped ] && break
		sleep 0.2
	done
fi

echo
echo "What wtsmgr found out about each tablespace:"
psql_demo -c "SELECT tablespace, fs_type, atomic_unit_min, atomic_unit_max,
	untorn_blocks, full_page_images, reason FROM wtsmgr_tablespaces"

if [ -z "$atomic" ]; then
	cat <<'EOF'
There is no tablespace on storage with atomic writes: making the XFS loop
filesystem needs root, and WTSMGR_ATOMIC_DIR is not set. So every
tablespace keeps its full-page images, as without wtsmgr. Run this as root,
or set WTSMGR_ATOMIC_DIR to a directory on a filesystem with atomic writes
(XFS or ext4 on atomic-capable storage, or XFS with reflink), to see them
left out.

EOF
fi

# A short pgbench in each database, one after the other, each measured
# from a checkpoint, so that pg_stat_wal's counters are its own.
results=()
for db in "${dbs[@]}"; do
	say "pgbench in $db: initializing (scale 5)"
	as_user pgbench -h "$demo" -p "$port" -i -s 5 -q "$db" >"$demo/pgbench-init-$db.log" 2>&1
	psql_demo -q -c 'CHECKPOINT' -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
	say "pgbench in $db: 4 clients, $seconds s"
	as_user pgbench -h "$demo" -p "$port" -n -c 4 -j 2 -T "$seconds" "$db" >"$demo/pgbench-$db.log" 2>&1
	txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$demo/pgbench-$db.log")
	tps=$(sed -n 's/^tps = \([0-9]*\).*/\1/p' "$demo/pgbench-$db.log")
	row=$(psql_demo -A -t -F ' | ' -c "
		SELECT t.full_page_images, w.wal_fpi, round(w.wal_fpi::numeric / $txns, 2),
		       round(w.wal_bytes / $txns)
		FROM pg_stat_wal w, wtsmgr_tablespaces t WHERE t.tablespace = '$db'")
	results+=("| $db | $tps | $txns | $row |")
done

cat <<EOF

Full-page images and WAL per transaction, per tablespace (pgbench TPC-B,
scale 5, 4 clients, $seconds s each, from a checkpoint; checkpoint_timeout
is 5 min, so each run has the images of one checkpoint cycle):

| tablespace | tps | transactions | full-page images | wal_fpi | images/txn | WAL bytes/txn |
| --- | --- | --- | --- | --- | --- | --- |
$(printf '%s\n' "${results[@]}")

EOF

run_as=
is_root && run_as="runuser -u $WTSMGR_USER -- "
cat <<EOF
The cluster keeps running.
Connect:  ${run_as}$prefix/bin/psql -h $demo -p $port postgres
Stop:     ${run_as}$prefix/bin/pg_ctl -D $pgdata stop
EOF
