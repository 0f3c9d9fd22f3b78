#!/usr/bin/env bash
# scripts/crash-model.sh -- crash the atomic filesystem itself under load,
# losing what its log had not written, and check that PostgreSQL recovers.
#
# Usage: scripts/crash-model.sh PREFIX WORKDIR
#
# Needs root: it makes a small XFS filesystem of its own on a loop device
# (WTSMGR_CRASH_MOUNT, default /mnt/wtsmgr-crash, its image
# WTSMGR_CRASH_IMAGE in the cache directory, default crash-xfs.img; never
# the shared ones), and shuts it down with "xfs_io -x -c shutdown" (no log
# flush, as fstests' godown does): every change its log had not written is
# lost, as in a power failure, which a kill -9 of PostgreSQL never does.
# The server runs as the unprivileged user, with its data directory and
# pg_wal in WORKDIR (another filesystem) and pgbench's tables in a
# tablespace on the XFS filesystem.
#
# Each cycle: pgbench, a CHECKPOINT under load, and the filesystem shut down
# as soon as it returns; the server stopped, the filesystem unmounted and
# mounted again (log recovery), the server started (crash recovery); then
# pgbench's balances must agree, pg_amcheck --heapallindexed must be clean,
# and after a clean shutdown pg_checksums must verify every page.  Cycles
# alternate wtsmgr.durability between fsync and dsync.  WTSMGR_CRASH_CYCLES
# cycles (default 4).
#
# Control: the same with the fsync requests of wtsmgr's writes dropped (the
# injection point wtsmgr-register-sync, through the test-only module
# test/wtsmgr_test, built here), so that no checkpoint makes the
# tablespace's writes durable: within WTSMGR_CRASH_CYCLES cycles one of the
# checks must fail, which shows that the cycles catch a lost fsync.
#
# Prints TAP lines.
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$1
workdir=$2
cycles=${WTSMGR_CRASH_CYCLES:-4}
export PATH="$prefix/bin:$PATH"


skip_unless_root "the crash model needs root (XFS loop mount, shutdown)"
command -v xfs_io >/dev/null || die "xfs_io is missing" "apt-get install xfsprogs"

mkdir -p "$workdir"
chown "$WTSMGR_USER" "$workdir"
img_name=${WTSMGR_CRASH_IMAGE:-crash-xfs.img}
img=$WTSMGR_CACHE_DIR/$img_name
mnt=${WTSMGR_CRASH_MOUNT:-/mnt/wtsmgr-crash}
# A fresh filesystem for every run.
if mountpoint -q "$mnt"; then
	umount "$mnt"
fi
ensure_xfs_mount "$img_name" 1G "$mnt" >/dev/null
ts=$mnt/ts
mkdir -p "$ts"
chown "$WTSMGR_USER" "$ts"

pgdata=$workdir/pgdata
sock=$workdir/sock
port=$((30000 + $$ % 10000))
mkdir -p "$sock"
chown "$WTSMGR_USER" "$sock"

cleanup()
{
	as_user pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
}
trap cleanup EXIT

q()
{
	as_user psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" "$@"
}

start()
{
	as_user pg_ctl -D "$pgdata" -l "$workdir/server.log" -w -t 300 start >/dev/null
}

init_cluster "$pgdata" "$port" "$sock" "checkpoint_timeout = 1h" "max_wal_size = 4GB" \
	"autovacuum = off" "restart_after_crash = off"
start
q -d postgres -c "CREATE EXTENSION wtsmgr" \
	-c "CREATE TABLESPACE ts_crash LOCATION '$ts'" \
	-c "CREATE DATABASE crash" \
	-c "ALTER DATABASE crash SET default_tablespace = ts_crash"
q -d crash -c "CREATE EXTENSION amcheck"
as_user pgbench -h "$sock" -p "$port" --initialize --scale=5 --quiet crash >"$workdir/init.log" 2>&1
untorn=$(q -d postgres -c "SELECT untorn_blocks FROM wtsmgr_tablespaces WHERE tablespace = 'ts_crash'")
tap_check "$([ "$untorn" = t ] && echo 1)" "ts_crash on $mnt is untorn"

# One cycle: $1 = label.  Prints what failed, or nothing.
drop_syncs=
cycle()
{
	local label=$1 bench offset why=()
	q -d postgres -c CHECKPOINT
	[ -n "${drop_syncs:-}" ] && q -d postgres -c "SELECT drop_sync_requests('$module_from_libdir')" >/dev/null
	as_user pgbench -h "$sock" -p "$port" --no-vacuum --client=4 --jobs=2 --time=60 crash \
		>"$workdir/$label-pgbench.log" 2>&1 &
	bench=$!
	sleep 5
	q -d postgres -c CHECKPOINT
	xfs_io -x -c shutdown "$mnt"
	sleep 1
	as_user pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
	wait "$bench" || true
	unmount_retry "$mnt" || die "cannot unmount $mnt after its shutdown"
	mount -o loop "$img" "$mnt" || die "cannot mount $img again"
	offset=$(stat -c %s "$workdir/server.log")
	if ! start; then
		echo "recovery failed: $(grep -E 'PANIC|FATAL' "$workdir/server.log" | tail -n 1)"
		return
	fi
	tail -c +"$((offset + 1))" "$workdir/server.log" | grep -c 'redo starts at' >/dev/null ||
		why+=("no crash recovery ran")
	[ "$(q -d crash -c "$pgbench_balances_agree" 2>&1)" = t ] ||
		why+=("pgbench's balances disagree")
	as_user pg_amcheck -h "$sock" -p "$port" --heapallindexed crash >"$workdir/$label-amcheck.log" 2>&1 ||
		why+=("pg_amcheck: $(head -n 1 "$workdir/$label-amcheck.log")")
	as_user pg_ctl -D "$pgdata" -w stop >/dev/null
	as_user pg_checksums --check -D "$pgdata" >"$workdir/$label-checksums.log" 2>&1 ||
		why+=("pg_checksums: $(grep -m 1 -i 'checksum verification failed\|error' "$workdir/$label-checksums.log")")
	start
	if [ ${#why[@]} -gt 0 ]; then
		local IFS=';'
		echo "${why[*]}"
	fi
}

for i in $(seq 1 "$cycles"); do
	if [ $((i % 2)) -eq 1 ]; then mode=fsync; else mode=dsync; fi
	q -d postgres -c "ALTER SYSTEM SET wtsmgr.durability = $mode" -c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
	res=$(cycle "cycle$i") || res="the cycle did not complete: ${res:-see $workdir}"
	tap_check "$([ -z "$res" ] && echo 1)" \
		"cycle $i ($mode): the filesystem shut down under pgbench; after log recovery and crash recovery, balances agree, pg_amcheck and pg_checksums are clean${res:+: $res}"
done

# Control: wtsmgr's fsync requests dropped, so checkpoints do not make the
# tablespace durable.  The injection point lives in shared memory, so it is
# attached again in each cycle, after the cycle's first checkpoint.
module=$(cd "$(dirname "$0")/../test/wtsmgr_test" && pwd)/wtsmgr_test
make -s -C "$(dirname "$module")" PG_CONFIG="$prefix/bin/pg_config" >"$workdir/module.log" 2>&1 ||
	die "cannot build test/wtsmgr_test" "see $workdir/module.log"
chmod a+r "$module.so"
# injection point callbacks are loaded relative to $libdir
module_from_libdir=$(realpath --relative-to="$("$prefix/bin/pg_config" --pkglibdir)" "$module")
q -d postgres -c "ALTER SYSTEM SET wtsmgr.durability = fsync" -c "SELECT pg_reload_conf()" \
	-c "CREATE FUNCTION drop_sync_requests(text) RETURNS void
		AS '$module', 'wtsmgr_test_drop_sync_requests' LANGUAGE C STRICT" >/dev/null
sleep 1
drop_syncs=1
caught=
for i in $(seq 1 "$cycles"); do
	res=$(cycle "control$i") || res="the cycle did not complete: ${res:-see $workdir}"
	if [ -n "$res" ]; then
		caught="control cycle $i: $res"
		break
	fi
done
tap_check "$([ -n "$caught" ] && echo 1)" \
	"control (wtsmgr's fsync requests dropped): the cycles catch the lost state${caught:+ ($caught)}"

as_user pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
trap - EXIT
tap_done
