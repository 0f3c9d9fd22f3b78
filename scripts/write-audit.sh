#!/usr/bin/env bash
# scripts/write-audit.sh -- check, from the kernel's side, every write a
# wtsmgr server makes to the relation files of an untorn tablespace.
#
# Usage: scripts/write-audit.sh PREFIX ATOMIC_DIR WORKDIR
#
# Needs root: it traces the atomic filesystem with tracefs, in a trace
# instance of its own (so that parallel runs do not collide), filtered by the
# filesystem's device.  The server runs as the unprivileged user, with its
# data directory (pg_default, pg_wal, temporary files) in WORKDIR and one
# tablespace, ts_audit, in ATOMIC_DIR, the default tablespace of the audited
# database.  Three phases run the same workload (pgbench with checkpoints,
# CREATE INDEX, VACUUM, VACUUM FULL, COPY into a new table, CREATE TABLE AS,
# ALTER TABLE SET TABLESPACE, CHECKPOINT):
#
# 1. wtsmgr, wtsmgr.durability = fsync: every direct write to a relation file
#    of ts_audit (or to a file the audit could not name) is ATOMIC, DIRECT,
#    of a power-of-two length within the probe's atomic unit limits, aligned
#    to its length, of whole blocks; no buffered write touches those files;
#    every relation file written is fsynced after its last write and before
#    the final CHECKPOINT returns.
#    Then, the same checks while PostgreSQL's own regression suite runs
#    with default_tablespace = ts_audit (its tests may fail there; only its
#    writes matter).
#    Then, the same checks while the background writer writes runs of
#    dirty blocks (the table's pages, aged by reads of a larger table), and
#    among its writes, multi-block atomic units.
# 2. The same with wtsmgr.durability = dsync: every write carries DSYNC.
# 3. Control: the same cluster restarted without wtsmgr (after a clean
#    shutdown, which is when that is allowed).  The same checks must flag
#    its writes, which proves that they can fail.
#
# Every phase fails if the trace buffer overran or dropped events.  Prints
# TAP lines, and the figures as "#" lines.
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$1
atomic_dir=$2
workdir=$3
export PATH="$prefix/bin:$PATH"


if ! is_root || [ -z "$atomic_dir" ]; then
	echo "1..1"
	echo "ok 1 # skip the write audit needs root (tracefs, the XFS loop mount)"
	exit 0
fi
mkdir -p "$workdir"

# The trace instance, filtered by the device of the atomic filesystem.
tracing=/sys/kernel/tracing
mountpoint -q "$tracing" || mount -t tracefs nodev "$tracing"
inst=$tracing/instances/wtsmgr-audit-$$
mkdir "$inst"
majmin=$(mountpoint -d "$(stat -c %m "$atomic_dir")")
kdev=$(( (${majmin%:*} << 20) | ${majmin#*:} ))
echo "${WTSMGR_AUDIT_BUFFER_KB:-65536}" >"$inst/buffer_size_kb"
echo mono >"$inst/trace_clock"
# iomap_dio_rw_begin has the flags of every direct I/O, but sets WRITE only
# for io_uring and aio: XFS's direct read and write events, which come just
# before it in the same task, tell reads from writes.
events="iomap/iomap_dio_rw_begin xfs/xfs_file_direct_write xfs/xfs_file_direct_read
	xfs/xfs_file_buffered_write xfs/xfs_file_fsync"
echo 0 >"$inst/tracing_on"
for ev in $events; do
	echo "dev == $kdev" >"$inst/events/$ev/filter"
	echo 1 >"$inst/events/$ev/enable"
done

ts=$atomic_dir/audit-ts-$$
pgdata=$workdir/pgdata
sock=$workdir/sock
port=$((40000 + $$ % 10000))
mkdir -p "$ts" "$sock"
chown "$WTSMGR_USER" "$ts" "$workdir" "$sock"
cleanup()
{
	[ -n "${trace_snapper:-}" ] && kill "$trace_snapper" 2>/dev/null
	as_user pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
	echo 0 >"$inst/tracing_on" 2>/dev/null || true
	for ev in $events; do
		echo 0 >"$inst/events/$ev/enable" 2>/dev/null || true
	done
	rmdir "$inst" 2>/dev/null || true
	rm -rf "$ts"
}
trap cleanup EXIT

q()
{
	as_user psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" "$@"
}

as_user initdb -D "$pgdata" --no-instructions -A trust >"$workdir/initdb.log"
cat >>"$pgdata/postgresql.conf" <<CONF
port = $port
unix_socket_directories = '$sock'
listen_addresses = ''
shared_buffers = 16MB
autovacuum = off
checkpoint_timeout = 1h
max_wal_size = 4GB
CONF
set_preload()
{
	echo "shared_preload_libraries = '$1'" | as_user tee -a "$pgdata/postgresql.conf" >/dev/null
}
set_preload wtsmgr
as_user pg_ctl -D "$pgdata" -l "$workdir/server.log" -w start >/dev/null

q -d postgres -c "CREATE EXTENSION wtsmgr" \
	-c "CREATE TABLESPACE ts_audit LOCATION '$ts'" \
	-c "CREATE DATABASE audit" \
	-c "ALTER DATABASE audit SET default_tablespace = ts_audit"
spcoid=$(q -d postgres -c "SELECT oid FROM pg_tablespace WHERE spcname = 'ts_audit'")
q -d audit -c "CREATE TABLE probe_me (x int)" -c "DROP TABLE probe_me"
read -r untorn unit_min unit_max < <(q -d postgres -F ' ' -c "
	SELECT untorn_blocks, atomic_unit_min, atomic_unit_max
	FROM wtsmgr_tablespaces WHERE tablespace = 'ts_audit'")
tap_check "$([ "$untorn" = t ] && echo 1)" \
	"ts_audit on the atomic filesystem ($majmin) is untorn: atomic units $unit_min to $unit_max bytes"

# Inode numbers of the files in ts_audit, recorded often while the workload
# runs, so that files unlinked before the end are still named.
snapshot()
{
	find "$ts" -type f -printf '%i %P\n' >>"$1" 2>/dev/null || true
}

# The workload, as the unprivileged user, against database audit.
workload()
{
	local phase=$1 i bench
	as_user pgbench -h "$sock" -p "$port" --initialize --scale=4 --quiet audit >"$workdir/$phase-init.log" 2>&1
	as_user pgbench -h "$sock" -p "$port" --no-vacuum --client=2 --jobs=2 --time=12 audit \
		>"$workdir/$phase-pgbench.log" 2>&1 &
	bench=$!
	for i in 1 2 3; do
		sleep 3
		q -d audit -c CHECKPOINT
	done
	wait "$bench"
	q -d audit <<SQL
DROP TABLE IF EXISTS audit_copy, audit_ctas, audit_moved;
CREATE INDEX audit_abalance ON pgbench_accounts (abalance);
VACUUM pgbench_accounts;
VACUUM FULL pgbench_history;
COPY (SELECT * FROM pgbench_accounts) TO '$workdir/accounts.copy';
BEGIN;
CREATE TABLE audit_copy (LIKE pgbench_accounts);
COPY audit_copy FROM '$workdir/accounts.copy';
COMMIT;
CREATE TABLE audit_ctas AS SELECT * FROM pgbench_accounts WHERE aid % 2 = 0;
CREATE TABLE audit_moved TABLESPACE pg_default AS SELECT * FROM pgbench_accounts WHERE aid <= 20000;
ALTER TABLE audit_moved SET TABLESPACE ts_audit;
UPDATE audit_moved SET abalance = abalance + 1 WHERE aid % 7 = 0;
SQL
	q -d audit -c CHECKPOINT
}

# PostgreSQL's own regression suite as a workload, with its tables in
# ts_audit (default_tablespace); whether its tests pass does not matter
# here, only how its writes reach the disk.
regress_workload()
{
	local phase=$1 source build
	# shellcheck disable=SC1091
	. "$prefix/wtsmgr-build.info"	# source=, build=
	q -d postgres -c "ALTER SYSTEM SET default_tablespace = 'ts_audit'" \
		-c "SELECT pg_reload_conf()" >/dev/null
	mkdir -p "$workdir/regress"
	chown "$WTSMGR_USER" "$workdir/regress"
	as_user "$build/src/test/regress/pg_regress" \
		--inputdir="$source/src/test/regress" --bindir="$prefix/bin" \
		--dlpath="$build/src/test/regress" --outputdir="$workdir/regress" \
		--host="$sock" --port="$port" --max-concurrent-tests=20 \
		--schedule="$source/src/test/regress/parallel_schedule" \
		>"$workdir/$phase-regress.log" 2>&1 || true
	q -d postgres -c "ALTER SYSTEM RESET default_tablespace" \
		-c "SELECT pg_reload_conf()" >/dev/null
	q -d postgres -c CHECKPOINT
}

# The background writer's runs: dirty every page of a table in ts_audit,
# then read a table of pg_default larger than shared_buffers a few blocks at
# a time, so that the clock sweep ages the dirty buffers into replacement
# candidates and the background writer, kept ahead of it by these settings,
# writes them, until it has written as many blocks as the table has (or 30
# passes over the large table).
bgwriter_workload()
{
	local phase=$1 pass want
	q -d postgres -c "ALTER SYSTEM SET bgwriter_delay = '10ms'" \
		-c "ALTER SYSTEM SET bgwriter_lru_maxpages = 1000" \
		-c "ALTER SYSTEM SET bgwriter_lru_multiplier = 10" \
		-c "SELECT pg_reload_conf()" >/dev/null
	q -d audit >/dev/null <<SQL
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
DROP TABLE IF EXISTS bgw_dirty, bgw_big;
CREATE TABLE bgw_dirty (id int, v int, pad text) WITH (fillfactor = 50);
INSERT INTO bgw_dirty SELECT g, 0, repeat('x', 200) FROM generate_series(1, 5000) g;
CREATE TABLE bgw_big (id int, pad text) TABLESPACE pg_default;
INSERT INTO bgw_big SELECT g, repeat('y', 500) FROM generate_series(1, 40000) g;
VACUUM (FREEZE) bgw_big;
CHECKPOINT;
SELECT pg_stat_reset_shared('io');
UPDATE bgw_dirty SET v = v + id % 97;
SQL
	want=$(q -d audit -c "SELECT pg_relation_size('bgw_dirty') / 8192")
	for pass in $(seq 1 30); do
		q -d audit >/dev/null <<'SQL'
DO $$
DECLARE
	nblocks int := pg_relation_size('bgw_big') / 8192;
BEGIN
	FOR i IN 0 .. (nblocks - 1) / 32 LOOP
		PERFORM pg_prewarm('bgw_big', 'buffer', 'main', i * 32,
						   least(i * 32 + 31, nblocks - 1));
		PERFORM pg_sleep(0.002);
	END LOOP;
END $$;
SQL
		[ "$(q -d audit -c "SELECT coalesce(sum(write_bytes), 0) / 8192 >= $want FROM pg_stat_io
			WHERE backend_type = 'background writer'")" = t ] && break
	done
	q -d postgres -c "ALTER SYSTEM RESET bgwriter_delay" \
		-c "ALTER SYSTEM RESET bgwriter_lru_maxpages" \
		-c "ALTER SYSTEM RESET bgwriter_lru_multiplier" \
		-c "SELECT pg_reload_conf()" >/dev/null
	q -d audit -c CHECKPOINT
}

# Count the ATOMIC direct writes longer than a block in trace $1 by the
# process $2.
multi_block_writes_by()
{
	perl -ne 'BEGIN { $pid = shift } $n++ if /^\s*postgres-$pid\s+\[/ &&
		/iomap_dio_rw_begin:.* length 0x([0-9a-f]+) .*ATOMIC/ && hex($1) > 8192;
		END { print $n + 0, "\n" }' "$2" "$1"
}

# Classify a saved trace: every write to a relation file of ts_audit, or to
# a file of the filesystem the snapshots do not name, must be atomic as
# described above.  Prints "writes atomic bad buffered unfsynced other
# nowait reads": direct writes, ATOMIC ones, bad ones, buffered writes,
# relation files written and not fsynced, direct writes to other files of
# the filesystem, NOWAIT attempts (none: wtsmgr writes synchronously) and
# direct reads.
classify()
{
	"$(dirname "$0")/trace-audit" atomic "$1" "$2" "$3" "$4" "$5" "$unit_min" "$unit_max"
}

# Run the workload under the trace; $1 phase name, $2 the workload function
# (default: workload).  Leaves the trace, the inode map and the final
# listing in WORKDIR.
traced_phase()
{
	local phase=$1 run=${2:-workload} map=$workdir/$1.inodes
	trace_start "$inst" "$map" snapshot
	"$run" "$phase"
	echo "wtsmgr-audit checkpoint done" >"$inst/trace_marker"
	trace_stop "$inst" "$map" snapshot
	find "$ts" -type f -printf '%i %P\n' >"$workdir/$phase.final"
	cp "$inst/trace" "$workdir/$phase.trace"
	lost=$(cat "$inst"/per_cpu/cpu*/stats |
		awk '/^(overrun|dropped events|commit overrun):/ {n += $NF} END {print n + 0}')
	tap_check "$([ "$lost" -eq 0 ] && echo 1)" "$phase: the trace buffer lost no event (overrun + dropped: $lost)"
}

# Classify phase $1's trace (or the file $5), $2 = DSYNC required, $3 =
# fsync before the checkpoint required, $4 = stderr (the flagged writes).
# Sets w a b buf unf oth nw rd (see classify).
audit()
{
	local phase=$1
	w='' a='' b='' buf='' unf='' oth='' nw='' rd=''
	read -r w a b buf unf oth nw rd < <(classify "${5:-$workdir/$phase.trace}" "$workdir/$phase.inodes" \
		"$workdir/$phase.final" "$2" "$3" 2>"$4") || true
}

# Phase 1: wtsmgr, durability fsync.
traced_phase fsync
audit fsync 0 1 "$workdir/fsync.flagged"
echo "# fsync: $w direct writes to relation files of ts_audit ($nw of them NOWAIT attempts), $a ATOMIC, $b flagged; $buf buffered writes to them; $unf written files not fsynced by the checkpoint; $oth direct writes and $rd direct reads elsewhere on the filesystem"
tap_check "$([ "${w:-0}" -gt 1000 ] && echo 1)" "fsync: the workload wrote to ts_audit's relation files ($w writes)"
tap_check "$([ "$b" = 0 ] && [ "$a" = "$w" ] && echo 1)" \
	"fsync: every write is atomic, direct, a power of two in [$unit_min, $unit_max], aligned, whole blocks ($a of $w)"
tap_check "$([ "$buf" = 0 ] && echo 1)" "fsync: no buffered write to them ($buf)"
tap_check "$([ "$unf" = 0 ] && echo 1)" "fsync: every relation file written is fsynced before the checkpoint ends ($unf not)"
multi=$(perl -ne 'print "$1\n" if /iomap_dio_rw_begin:.* length 0x([0-9a-f]+) .*ATOMIC/' "$workdir/fsync.trace" |
	awk '{ if ($1 != "2000") n++ } END {print n + 0}')
tap_check "$([ "$multi" -gt 0 ] && echo 1)" "fsync: multi-block atomic units were among them ($multi)"

# The classifier's own checks can fail: on the same trace, it flags every
# write when DSYNC is required, the multi-block units when the unit limit is
# one block, and unfsynced files when the fsync events are taken out.
audit fsync 1 0 /dev/null
tap_check "$([ -n "$w" ] && [ "$b" = "$w" ] && echo 1)" "control: requiring DSYNC flags every write of that trace ($b of $w)"
saved_max=$unit_max
unit_max=8192
audit fsync 0 0 /dev/null
unit_max=$saved_max
tap_check "$([ "$multi" -gt 0 ] && [ "$b" = "$multi" ] && echo 1)" "control: a unit limit of one block flags the multi-block units ($b)"
grep -v xfs_file_fsync "$workdir/fsync.trace" >"$workdir/nofsync.trace"
audit fsync 0 1 /dev/null "$workdir/nofsync.trace"
tap_check "$([ "${unf:-0}" -gt 0 ] && echo 1)" "control: without the fsync events, unfsynced files are flagged ($unf)"

# Phase 1b: PostgreSQL's regression suite, tables in ts_audit, fsync.
traced_phase regress regress_workload
audit regress 0 1 "$workdir/regress.flagged"
ntests=$(grep -c '^ok ' "$workdir/regress-regress.log" || true)
echo "# regress ($ntests regression tests passed, with tables in ts_audit): $w direct writes to relation files of ts_audit, $a ATOMIC, $b flagged; $buf buffered writes to them; $unf written files not fsynced by the checkpoint"
tap_check "$([ "${w:-0}" -gt 1000 ] && [ "$b" = 0 ] && [ "$a" = "$w" ] && echo 1)" \
	"regress: every write of PostgreSQL's regression suite to ts_audit is atomic, as above ($a of $w)"
tap_check "$([ "$buf" = 0 ] && [ "$unf" = 0 ] && echo 1)" \
	"regress: no buffered write to them ($buf), every file fsynced by the checkpoint ($unf not)"

# Phase 1c: the background writer's runs (core patch 0006).
traced_phase bgwriter bgwriter_workload
audit bgwriter 0 1 "$workdir/bgwriter.flagged"
bgw_pid=$(q -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'background writer'")
bgw_multi=$(multi_block_writes_by "$workdir/bgwriter.trace" "$bgw_pid")
echo "# bgwriter: $w direct writes to relation files of ts_audit, $a ATOMIC, $b flagged; $buf buffered writes to them; $unf written files not fsynced by the checkpoint; $bgw_multi multi-block atomic writes by the background writer (pid $bgw_pid)"
tap_check "$([ "${w:-0}" -gt 100 ] && [ "$b" = 0 ] && [ "$a" = "$w" ] && [ "$buf" = 0 ] && [ "$unf" = 0 ] && echo 1)" \
	"bgwriter: every write is atomic, as above, and fsynced by the checkpoint ($a of $w)"
tap_check "$([ "$bgw_multi" -gt 0 ] && echo 1)" \
	"bgwriter: the background writer wrote multi-block atomic units ($bgw_multi)"

# Phase 2: durability dsync.
q -d postgres -c "ALTER SYSTEM SET wtsmgr.durability = dsync" -c "SELECT pg_reload_conf()" >/dev/null
sleep 2
traced_phase dsync
audit dsync 1 0 "$workdir/dsync.flagged"
echo "# dsync: $w direct writes to relation files of ts_audit ($nw of them NOWAIT attempts), $a ATOMIC, $b flagged; $buf buffered writes to them; $oth direct writes and $rd direct reads elsewhere on the filesystem"
tap_check "$([ "${w:-0}" -gt 1000 ] && [ "$b" = 0 ] && [ "$a" = "$w" ] && echo 1)" \
	"dsync: every write is atomic and carries DSYNC, as above ($a of $w)"
tap_check "$([ "$buf" = 0 ] && echo 1)" "dsync: no buffered write to them ($buf)"

# Phase 3: control, the same cluster without wtsmgr.
q -d postgres -c "ALTER SYSTEM RESET wtsmgr.durability" -c "DROP EXTENSION wtsmgr"
as_user pg_ctl -D "$pgdata" -w stop >/dev/null
set_preload ''
as_user pg_ctl -D "$pgdata" -l "$workdir/server.log" -w start >/dev/null
traced_phase control
audit control 0 1 "$workdir/control.flagged"
echo "# control (no wtsmgr): $w direct writes to relation files of ts_audit, $a ATOMIC, $b flagged; $buf buffered writes to them"
sed -n 's/^/# flagged: /; 1,3p' "$workdir/control.flagged"
tap_check "$([ "${buf:-0}" -gt 0 ] && echo 1)" "control: the audit flags the stock server's buffered writes ($buf)"

for phase in fsync regress bgwriter dsync; do
	if [ -s "$workdir/$phase.flagged" ]; then
		sed 's/^/# flagged: /' "$workdir/$phase.flagged"
	fi
done
as_user pg_ctl -D "$pgdata" -w stop >/dev/null
tap_done
