#!/usr/bin/env bash
# bench/atomic_writes.sh -- how fast wtsmgr's atomic write path is.
#
# Usage: bench/atomic_writes.sh [TOTAL_BLOCKS]
#
# In one run, on the same 256 MB file of a table in a tablespace on the
# atomic XFS filesystem, for wtsmgr.durability = fsync and dsync and for
# batches of 1, 4 and 16 blocks:
#   - wtsmgr: smgrwritev() calls of BATCH blocks at random aligned positions,
#     from inside the server (test/wtsmgr_test's wtsmgr_test_write_bench),
#     plus, in fsync mode, the CHECKPOINT that makes them durable;
#   - raw: bench/raw_atomic_write.c, one pwritev2(RWF_ATOMIC) of BATCH
#     blocks at a time on the same file, plus one fdatasync() in fsync mode.
# Batches also start at unaligned positions, which wtsmgr cuts into several
# atomic units, written one after another.  Then pgbench (scale 10,
# 4 clients, two alternating rounds of 30 s per mode) in that tablespace, to
# choose wtsmgr.durability's default from.
#
# Prints the figures side by side; asserts nothing.  Uses the optimized
# server (scripts/build-server.sh --flavor release).  As root it makes the
# XFS loop filesystem; otherwise set WTSMGR_ATOMIC_DIR.
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"

total=${1:-16384}

bench_prepare bench
# the test module (for the in-server loop) and the raw loop, built here
cp -r "$WTSMGR_ROOT/test/wtsmgr_test" "$work/wtsmgr_test"
make -s -C "$work/wtsmgr_test" PG_CONFIG="$prefix/bin/pg_config" >/dev/null
cc -O2 -Wall -o "$work/raw_atomic_write" "$WTSMGR_ROOT/bench/raw_atomic_write.c"

pgdata=$work/pgdata
port=$((40000 + $$ % 10000))
start_cluster "$pgdata" "$port" "$work" \
	"shared_buffers = 512MB" "max_wal_size = 8GB" "checkpoint_timeout = 30s"
trap 'as_user pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true' EXIT

q()
{
	as_user psql -X -A -t -v ON_ERROR_STOP=1 -h "$work" -p "$port" -d postgres "$@"
}

q -q -c 'CREATE EXTENSION wtsmgr' \
	-c "CREATE TABLESPACE bench LOCATION '$dir'" \
	-c "CREATE FUNCTION write_bench(regclass, int, bigint, bool) RETURNS float8
		AS '$work/wtsmgr_test/wtsmgr_test', 'wtsmgr_test_write_bench'
		LANGUAGE C STRICT" \
	-c 'CREATE TABLE scratch (pad text) TABLESPACE bench' \
	-c 'ALTER TABLE scratch ALTER pad SET STORAGE PLAIN' \
	-c "INSERT INTO scratch SELECT repeat('x', 7000) FROM generate_series(1, 32768)" \
	-c 'CHECKPOINT'
say "$(q -c "SELECT 'tablespace bench: ' || fs_type || ', untorn ' || untorn_blocks || ', ' || reason FROM wtsmgr_tablespaces WHERE tablespace = 'bench'")"
file=$(q -c "SELECT current_setting('data_directory') || '/' || pg_relation_filepath('scratch')")
say "scratch file: $file ($(($(stat -c %s "$file") / 1048576)) MB)"

now()
{
	date +%s.%N
}

rate()
{
	awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'
}

set_durability()
{
	q -q -c "ALTER SYSTEM SET wtsmgr.durability = '$1'" -c 'SELECT pg_reload_conf()' >/dev/null
	sleep 1
}

results=()
for mode in fsync dsync; do
	set_durability "$mode"
	for case in "1 aligned" "4 aligned" "16 aligned" "4 unaligned" "16 unaligned"; do
		set -- $case
		batch=$1 placement=$2
		n=$total
		[ "$mode" = dsync ] && [ "$batch" -eq 1 ] && n=$((total / 4))
		units0=$(q -c "SELECT atomic_units FROM wtsmgr_stat_io WHERE tablespace = 'bench'")
		say "$mode, batch $batch $placement: $n blocks through wtsmgr"
		t0=$(now)
		q -c "SELECT write_bench('scratch', $batch, $n, $([ "$placement" = aligned ] && echo true || echo false))" >/dev/null
		[ "$mode" = fsync ] && q -c 'CHECKPOINT' >/dev/null
		t_wt=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { print b - a }')
		units=$(q -c "SELECT atomic_units - $units0 FROM wtsmgr_stat_io WHERE tablespace = 'bench'")
		say "$mode, batch $batch $placement: $n blocks with the raw loop"
		t_raw=$(as_user "$work/raw_atomic_write" "$file" "$batch" "$n" "$mode" "$placement")
		results+=("| $mode | $batch | $placement | $(awk -v u="$units" -v n="$n" -v b="$batch" 'BEGIN { printf "%.2f", u / (n / b) }') | $(rate "$n" "$t_wt") | $(rate "$n" "$t_raw") | $(awk -v a="$t_raw" -v b="$t_wt" 'BEGIN { printf "%.2f", a / b }') |")
	done
done
stat_line=$(q -c "SELECT 'atomic_writes ' || atomic_writes || ', atomic_units ' || atomic_units || ', batches ' || batches || ', refusals ' || refusals || ', errors ' || errors FROM wtsmgr_stat_io WHERE tablespace = 'bench'")

# pgbench in each durability mode
q -q -c 'DROP TABLE scratch' -c 'CREATE DATABASE pgb TABLESPACE bench'
as_user pgbench -h "$work" -p "$port" -i -s 10 -q pgb >"$work/pgbench-init.log" 2>&1
declare -A tps
for round in 1 2; do
	for mode in fsync dsync; do
		set_durability "$mode"
		q -c 'CHECKPOINT' >/dev/null
		say "pgbench round $round, durability $mode: 4 clients, 30 s"
		tps[$mode]+=" $(as_user pgbench -h "$work" -p "$port" -n -c 4 -j 2 -T 30 pgb 2>&1 |
			sed -n 's/^tps = \([0-9]*\).*/\1/p')"
	done
done
pgb=()
for mode in fsync dsync; do
	pgb+=("| $mode |$(echo "${tps[$mode]}" | sed 's/ / | /g; s/^ | / /') |")
done

cat <<EOF

8 kB atomic writes per second, random aligned positions in a 256 MB file on
XFS (software atomic writes), $total blocks per figure ($((total / 4)) for dsync,
batch 1). wtsmgr: smgrwritev() from inside the server, through wtsmgr's
planner, its writes one unit at a time and fsync requests, plus in fsync mode the
CHECKPOINT that syncs them. raw: one pwritev2(RWF_ATOMIC) per batch, plus one
fdatasync in fsync mode.

Unaligned batches start anywhere, so wtsmgr cuts them into several atomic
units (units per call), written one pwritev2() after another, as the raw
loop writes them.

| durability | batch (blocks) | placement | units per call | wtsmgr (blocks/s) | raw pwritev2 (blocks/s) | wtsmgr / raw |
| --- | --- | --- | --- | --- | --- | --- |
$(printf '%s\n' "${results[@]}")

wtsmgr_stat_io for the tablespace: $stat_line

pgbench TPC-B, scale 10, 4 clients, 30 s per round, modes alternating,
checkpoint_timeout 30 s, all of it in the atomic tablespace:

| wtsmgr.durability | tps, round 1 | tps, round 2 |
| --- | --- | --- |
$(printf '%s\n' "${pgb[@]}")
EOF
as_user pg_ctl -D "$pgdata" -w stop >/dev/null
trap - EXIT
rm -rf "$work" "$dir"
