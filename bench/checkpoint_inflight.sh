#!/usr/bin/env bash
# bench/checkpoint_inflight.sh -- what keeping several atomic units in
# flight gains the checkpointer.
#
# Usage: bench/checkpoint_inflight.sh [--repeats N] [--runs N] [--run-length BLOCKS]
#
# The checkpointer writes runs of consecutive dirty blocks with one call
# (patch 0005).  wtsmgr cuts a run that does not start on an aligned block
# into several atomic units (wtsmgr_split.h) and submits them to io_uring
# together, so they are all in flight at once; wtsmgr.io_uring_entries = 1
# makes it submit them one at a time, each waited for before the next.
#
# A table of one row per 8 kB page (plain storage, fillfactor 50, so that
# updates stay on their page) in a tablespace on the atomic XFS filesystem;
# each round dirties --runs runs of --run-length consecutive pages (default
# 256 runs of 13 pages, at random unaligned positions) and times the
# CHECKPOINT that writes them, with io_uring_entries = 64 (the default) and
# = 1 alternating, --repeats rounds each (default 5), the server restarted
# for each setting.  Per setting, the medians of: the checkpointer's write
# time per block and per write call (pg_stat_io, track_io_timing = on), the
# checkpoint's write time (pg_stat_checkpointer) and atomic units per call
# (wtsmgr_stat_io).  Prints the figures side by side; asserts nothing.
#
# Uses the optimized server (scripts/build-server.sh --flavor release).  As
# root it makes the XFS loop filesystem; otherwise set WTSMGR_ATOMIC_DIR.
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"

repeats=5
runs=256
run_length=13
while [ $# -gt 0 ]; do
	case $1 in
		--repeats) repeats=$2; shift 2 ;;
		--runs) runs=$2; shift 2 ;;
		--run-length) run_length=$2; shift 2 ;;
		-h|--help) sed -n '2,26p' "$0"; exit 0 ;;
		*) die "unknown option $1" "see $0 --help" ;;
	esac
done

bench_prepare inflight

pgdata=$work/pgdata
port=$((40000 + $$ % 10000))
start_cluster "$pgdata" "$port" "$work" \
	"shared_buffers = 256MB" "max_wal_size = 8GB" "checkpoint_timeout = 1h" \
	"track_io_timing = on" "autovacuum = off" "bgwriter_lru_maxpages = 0"
trap 'as_user pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true' EXIT

q()
{
	as_user psql -X -A -t -v ON_ERROR_STOP=1 -h "$work" -p "$port" -d postgres "$@"
}

# 16384 pages (128 MB): all dirty pages stay in shared buffers until the
# checkpoint writes them.
pages=16384
q -q -c 'CREATE EXTENSION wtsmgr' \
	-c "CREATE TABLESPACE bench LOCATION '$dir'" \
	-c 'CREATE TABLE pages (id int, pad text) WITH (fillfactor = 50) TABLESPACE bench' \
	-c 'ALTER TABLE pages ALTER pad SET STORAGE PLAIN' \
	-c "INSERT INTO pages SELECT g, repeat('x', 3000) FROM generate_series(0, $pages - 1) g" \
	-c 'VACUUM pages' -c 'CHECKPOINT'
say "$(q -c "SELECT 'tablespace bench: ' || fs_type || ', untorn ' || untorn_blocks || ', ' || reason FROM wtsmgr_tablespaces WHERE tablespace = 'bench'")"
[ "$(q -c "SELECT pg_relation_size('pages') / 8192")" -eq "$pages" ] ||
	die "the table does not have one row per page" "check the row size"

set_entries()
{
	q -q -c "ALTER SYSTEM SET wtsmgr.io_uring_entries = $1" >/dev/null
	as_user pg_ctl -D "$pgdata" -l "$work/server.log" -w restart >/dev/null
}

# One round: dirty the runs, checkpoint, print "us_per_block us_per_call
# ckpt_write_ms units_per_call".  Run starts are random and not aligned to
# the run length, so most runs are cut into several units.
round()
{
	q -q -c 'CHECKPOINT' \
		-c "SELECT pg_stat_reset_shared('io')" -c "SELECT pg_stat_reset_shared('checkpointer')" \
		-c 'SELECT wtsmgr_stat_reset()' >/dev/null
	q -q -c "UPDATE pages SET id = id
		WHERE id IN (SELECT s + i FROM
			(SELECT (random() * ($pages - $run_length))::int AS s
			 FROM generate_series(1, $runs)) r,
			generate_series(0, $run_length - 1) i)" >/dev/null
	q -q -c 'CHECKPOINT' >/dev/null
	# the checkpointer reports pg_stat_io just after CHECKPOINT returns
	sleep 1
	q -c "SELECT round((io.write_time * 1000 / nullif(io.write_bytes / 8192, 0))::numeric, 1)
			|| ' ' || round((io.write_time * 1000 / nullif(io.writes, 0))::numeric, 1)
			|| ' ' || round(c.write_time::numeric, 0)
			|| ' ' || round(w.atomic_units::numeric / nullif(w.batches, 0), 2)
		FROM pg_stat_io io, pg_stat_checkpointer c, wtsmgr_stat_io w
		WHERE io.backend_type = 'checkpointer' AND io.object = 'relation'
		  AND io.context = 'normal' AND w.tablespace = 'bench'"
}

declare -A res
for r in $(seq 1 "$repeats"); do
	for entries in 64 1; do
		set_entries "$entries"
		say "round $r, wtsmgr.io_uring_entries = $entries"
		res[$entries]+="$(round)"$'\n'
	done
done

median()
{
	sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

col()
{
	printf '%s' "${res[$1]}" | awk -v c="$2" 'NF { print $c }' | median
}

units=$(q -c "SELECT round(atomic_units::numeric / nullif(batches, 0), 2) FROM wtsmgr_stat_io WHERE tablespace = 'bench'")
cat <<EOF

Checkpoint of $runs runs of $run_length dirty pages at random unaligned
positions in a 128 MB table on XFS (software atomic writes), $repeats rounds
per setting, alternating, medians. Atomic units per multi-unit call in the
last round: $units.

| wtsmgr.io_uring_entries | units in flight | checkpointer µs per block (pg_stat_io) | µs per write call | checkpoint write time, ms (pg_stat_checkpointer) |
| --- | --- | --- | --- | --- |
| 64 | all of a run's | $(col 64 1) | $(col 64 2) | $(col 64 3) |
| 1 | one at a time | $(col 1 1) | $(col 1 2) | $(col 1 3) |

Per round (µs per block, µs per call, ms, units per batch):
64: $(printf '%s' "${res[64]}" | tr '\n' ';')
1: $(printf '%s' "${res[1]}" | tr '\n' ';')
EOF
