#!/usr/bin/env bash
# bench/replay.sh -- crash recovery of the same WAL: stock PostgreSQL 18
# against the server with wtsmgr.
#
# Usage: bench/replay.sh [--repeats N] [--scale S] [--seconds T] [--clients C]
#
# Makes one crash image: a cluster initialized by stock PostgreSQL 18 (the
# `stock` flavor, no patches) with its data directory on the atomic XFS
# filesystem, pgbench --scale S (default 20), a CHECKPOINT, pgbench for T
# seconds (default 30, C clients, default 4), and an immediate stop.  The
# WAL written since the checkpoint (full_page_writes on, stock's images) is
# what every run replays.  Then, --repeats times (default 3), alternating,
# each configuration starts a fresh copy of the image, with the kernel's
# page cache dropped first (as root), and the report gives, per run and as
# medians, the seconds of the redo loop (the server's own "redo done ...
# elapsed" figure) and the seconds from start until it accepts connections
# (which includes the end-of-recovery checkpoint):
#
#   stock       the stock server
#   wtsmgr      the release server with wtsmgr preloaded, the same WAL: it
#               announces no tablespace, so recovery writes as md.c does
#               (wtsmgr_ts_writes_protected())
#   wtsmgr_own  the release server with wtsmgr preloaded, replaying a
#               second image made the same way by that server with wtsmgr
#               (images left out of the pgbench run's WAL, every write in
#               recovery atomic from the first announcement on): the same
#               workload, its own WAL, which the stock server could not
#               replay
#
# Nothing is asserted.  Builds the release and stock servers if needed.
# Takes about 2 x (T + 60) + 3 x repeats x the recovery time.
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"

repeats=3
scale=20
seconds=30
clients=4
while [ $# -gt 0 ]; do
	case $1 in
		--repeats) repeats=$2; shift 2 ;;
		--scale) scale=$2; shift 2 ;;
		--seconds) seconds=$2; shift 2 ;;
		--clients) clients=$2; shift 2 ;;
		-h|--help) sed -n '2,27p' "$0"; exit 0 ;;
		*) die "unknown option $1" "see $0 --help" ;;
	esac
done

bench_prepare replay			# release prefix, work, dir
release=$prefix
stock=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor stock --print-prefix)
port=$((45000 + $$ % 10000))
sock=$work/sock
mkdir -p "$sock"
is_root && chown "$WTSMGR_USER" "$sock"

cleanup()
{
	for d in "$dir/image" "$dir/image_own" "$dir/run"; do
		[ -f "$d/postmaster.pid" ] && as_user "$stock/bin/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1
	done
	rm -rf "$dir"
}
trap cleanup EXIT

q()
{
	as_user "$stock/bin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" "$@"
}

# A crash image in $1, made by the server in $2 (with wtsmgr if $3 is set):
# sets wal_mb and tps.
make_image()
{
	local image=$1 bin=$2/bin with_wtsmgr=${3:-} lsn0
	PATH="$bin:$PATH" init_cluster "$image" "$port" "$sock" \
		"shared_preload_libraries = '$with_wtsmgr'" "shared_buffers = 128MB" \
		"checkpoint_timeout = 1h" "max_wal_size = 20GB" "autovacuum = off"
	as_user "$bin/pg_ctl" -D "$image" -l "$work/image.log" -w start >/dev/null
	as_user "$bin/pgbench" -h "$sock" -p "$port" -i -s "$scale" -q postgres >"$work/init.log" 2>&1
	q -d postgres -c CHECKPOINT
	if [ -n "$with_wtsmgr" ]; then
		q -d postgres -c "CREATE EXTENSION wtsmgr"
		for _ in $(seq 1 100); do
			[ "$(q -d postgres -c "SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")" = skipped ] && break
			sleep 0.1
		done
	fi
	lsn0=$(q -d postgres -c "SELECT pg_current_wal_insert_lsn()")
	as_user "$bin/pgbench" -h "$sock" -p "$port" -n -c "$clients" -j 2 -T "$seconds" postgres >"$work/pgbench.log" 2>&1
	wal_mb=$(q -d postgres -c "SELECT round(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '$lsn0') / 1048576.0)")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$work/pgbench.log")
	as_user "$bin/pg_ctl" -D "$image" -m immediate stop >/dev/null
}

say "making the crash images: pgbench scale $scale, $seconds s, $clients clients"
make_image "$dir/image" "$stock"
stock_wal=$wal_mb
say "stock's image: $wal_mb MB of WAL to replay (pgbench: $tps tps)"
make_image "$dir/image_own" "$release" wtsmgr
own_wal=$wal_mb
say "wtsmgr's image: $wal_mb MB of WAL to replay (pgbench: $tps tps)"

# One recovery of a fresh copy: prints "redo_seconds start_seconds".
recover()
{
	local cfg=$1 bin log t0 t1 redo
	rm -rf "$dir/run"
	if [ "$cfg" = wtsmgr_own ]; then
		cp -a "$dir/image_own" "$dir/run"
	else
		cp -a "$dir/image" "$dir/run"
	fi
	sync
	is_root && echo 3 >/proc/sys/vm/drop_caches
	log=$work/run-$cfg-$2.log
	case $cfg in
		stock) bin=$stock/bin ;;
		wtsmgr)
			bin=$release/bin
			echo "shared_preload_libraries = 'wtsmgr'" | as_user tee -a "$dir/run/postgresql.conf" >/dev/null ;;
		wtsmgr_own) bin=$release/bin ;;
	esac
	t0=$(date +%s.%N)
	as_user "$bin/pg_ctl" -D "$dir/run" -l "$log" -w -t 3600 start >/dev/null
	t1=$(date +%s.%N)
	as_user "$bin/pg_ctl" -D "$dir/run" -w stop >/dev/null
	redo=$(sed -n 's/.*redo done at .* elapsed: \([0-9.]*\) s.*/\1/p' "$log" | tail -n 1)
	[ -n "$redo" ] || die "no \"redo done\" line in $log"
	echo "$redo $(echo "$t1 - $t0" | bc)"
}

median()
{
	sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

: >"$work/runs.tsv"
for r in $(seq 1 "$repeats"); do
	for cfg in stock wtsmgr wtsmgr_own; do
		read -r redo start < <(recover "$cfg" "$r")
		say "round $r, $cfg: redo $redo s, start $start s"
		printf '%s\t%s\t%s\t%s\n' "$cfg" "$r" "$redo" "$start" >>"$work/runs.tsv"
	done
done

echo
echo "Crash recovery after pgbench (scale $scale, $seconds s, $clients clients), data on the atomic XFS filesystem, page cache dropped before each start; $repeats runs each, alternating.  stock and wtsmgr replay the same $stock_wal MB of WAL, made by stock PostgreSQL 18 (full_page_writes = on); wtsmgr_own replays the $own_wal MB that the same workload wrote with wtsmgr:"
echo
echo "| configuration | redo loop, s (runs) | median | start to ready, s (runs) | median |"
echo "| --- | --- | --- | --- | --- |"
for cfg in stock wtsmgr wtsmgr_own; do
	redos=$(awk -v c="$cfg" '$1 == c {print $3}' "$work/runs.tsv")
	starts=$(awk -v c="$cfg" '$1 == c {printf "%.2f\n", $4}' "$work/runs.tsv")
	printf '| %s | %s | %s | %s | %s |\n' "$cfg" "$(echo $redos)" "$(echo "$redos" | median)" \
		"$(echo $starts)" "$(echo "$starts" | median)"
done
