#!/usr/bin/env bash
# bench/pgbench_report.sh -- wtsmgr against stock PostgreSQL 18, in pgbench.
#
# Usage: bench/pgbench_report.sh [--duration SECONDS] [--scales "5 20"]
#                                [--out DIR]
#
# In one invocation, on the same atomic XFS filesystem and the same data set
# (one pgbench database per scale, copied for each run), runs
# pgbench TPC-B (4 clients, --duration seconds, default 60) against:
#   1. stock_fpw_on   stock PostgreSQL 18, full_page_writes = on
#   2. stock_fpw_off  stock PostgreSQL 18, full_page_writes = off (no
#                     torn-page protection: the upper bound)
#   3. wtsmgr_fsync   wtsmgr, wtsmgr.durability = fsync
#   4. wtsmgr_dsync   wtsmgr, wtsmgr.durability = dsync
#   5. wtsmgr_mixed   wtsmgr (fsync), with pgbench_branches, _tellers and
#                     _history in a tablespace on the root filesystem
# at two scales (default 5, which fits shared_buffers = 128MB, and 20,
# more than twice as large), with checkpoint_timeout = 30s, and records per
# run: TPS, the standard deviation of per-second TPS, p99 latency, WAL bytes
# per transaction and full-page images (pg_stat_wal), and checkpoint write
# and sync time (pg_stat_checkpointer), with ratios to 1 and 2.  Writes
# report.md and tps.png (TPS over time, gnuplot) into --out (default
# bench/results) and prints the report.  Nothing is asserted.
#
# Builds the optimized server and a stock one if needed.  As root it makes
# the XFS loop filesystem and installs gnuplot from the machine's own suite;
# otherwise set WTSMGR_ATOMIC_DIR (the plot is skipped without gnuplot).
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"

duration=60
scales="5 20"
out=$WTSMGR_ROOT/bench/results
while [ $# -gt 0 ]; do
	case $1 in
		--duration) duration=$2; shift 2 ;;
		--scales) scales=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		-h|--help) sed -n '2,29p' "$0"; exit 0 ;;
		*) die "unknown option $1" "see $0 --help" ;;
	esac
done

prefix_w=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor release --print-prefix)
prefix_s=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor stock --print-prefix)
say "installing wtsmgr into $prefix_w"
make -s -C "$WTSMGR_ROOT" PG_CONFIG="$prefix_w/bin/pg_config" install >/dev/null
ensure_user

if ! command -v gnuplot >/dev/null && is_root; then
	say "installing gnuplot-nox"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		gnuplot-nox >/dev/null 2>&1 || say "could not install gnuplot-nox: no plot"
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/wtsmgr-report.XXXXXX")
chmod 755 "$work"
mkdir -p "$work/ext4" "$work/logs" "$out"
base=$(atomic_scratch_dir "report-$$")
is_root && chown -R "$WTSMGR_USER" "$work" "$base"
say "work directory $work, data on $base"

port=$((41000 + $$ % 10000))
common_conf=(
	"shared_buffers = 128MB" "checkpoint_timeout = 30s" "max_wal_size = 1GB"
	"log_checkpoints = on")

# The server of a configuration, and its extra settings.
config_prefix()
{
	case $1 in stock_*) echo "$prefix_s" ;; *) echo "$prefix_w" ;; esac
}

config_conf()
{
	case $1 in
		stock_fpw_on) echo "shared_preload_libraries = ''" ;;
		stock_fpw_off) echo "shared_preload_libraries = ''"; echo "full_page_writes = off" ;;
		wtsmgr_dsync) echo "shared_preload_libraries = 'wtsmgr'"; echo "wtsmgr.durability = dsync" ;;
		*) echo "shared_preload_libraries = 'wtsmgr'"; echo "wtsmgr.durability = fsync" ;;
	esac
}

q()
{
	as_user "$prefix_w/bin/psql" -X -A -t -v ON_ERROR_STOP=1 -h "$work" -p "$port" -d "${DB:-postgres}" "$@"
}

# One pgbench database per scale, made by the stock server.
saved_path=$PATH
export PATH="$prefix_s/bin:$saved_path"
for scale in $scales; do
	say "scale $scale: initializing the data set"
	start_cluster "$base/template-$scale" "$port" "$work" \
		"${common_conf[@]}" "shared_preload_libraries = ''"
	as_user "$prefix_s/bin/pgbench" -h "$work" -p "$port" -i -s "$scale" -q postgres \
		>"$work/logs/init-$scale.log" 2>&1
	as_user "$prefix_s/bin/pg_ctl" -D "$base/template-$scale" -w stop >/dev/null
done

export PATH=$saved_path

configs="stock_fpw_on stock_fpw_off wtsmgr_fsync wtsmgr_dsync wtsmgr_mixed"
declare -A R

run()
{
	local config=$1 scale=$2 prefix data tag
	prefix=$(config_prefix "$config")
	data=$base/run
	tag=$config-$scale
	rm -rf "$data"
	# a real copy: on Linux 6.18, XFS fails RWF_ATOMIC writes to blocks
	# shared by reflink with ENOSPC
	as_user cp -a --reflink=never "$base/template-$scale" "$data"
	rm -f "$data/postmaster.pid"
	{
		printf '%s\n' "${common_conf[@]}"
		config_conf "$config"
	} | as_user tee -a "$data/postgresql.conf" >/dev/null
	as_user "$prefix/bin/pg_ctl" -D "$data" -l "$work/logs/server-$tag.log" -w start >/dev/null

	if [ "$config" != "${config#wtsmgr}" ]; then
		q -q -c 'CREATE EXTENSION IF NOT EXISTS wtsmgr'
		if [ "$config" = wtsmgr_mixed ]; then
			as_user mkdir -p "$work/ext4/$tag"
			q -q -c "CREATE TABLESPACE plain LOCATION '$work/ext4/$tag'" \
				-c 'ALTER TABLE pgbench_branches SET TABLESPACE plain' \
				-c 'ALTER TABLE pgbench_tellers SET TABLESPACE plain' \
				-c 'ALTER TABLE pgbench_history SET TABLESPACE plain' \
				-c 'ALTER INDEX pgbench_branches_pkey SET TABLESPACE plain' \
				-c 'ALTER INDEX pgbench_tellers_pkey SET TABLESPACE plain'
		fi
		for i in $(seq 50); do
			[ "$(q -c "SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")" = skipped ] && break
			sleep 0.2
		done
		q -q -c 'SELECT wtsmgr_stat_reset()' >/dev/null
	fi
	q -q -c 'CHECKPOINT' -c "SELECT pg_stat_reset_shared('wal')" \
		-c "SELECT pg_stat_reset_shared('checkpointer')" >/dev/null

	say "$tag: pgbench, 4 clients, $duration s"
	if ! (cd "$work/logs" && as_user "$prefix/bin/pgbench" -h "$work" -p "$port" -n -c 4 -j 2 \
		-T "$duration" -P 1 -l --log-prefix="txn-$tag" postgres \
		>"$work/logs/pgbench-$tag.out" 2>"$work/logs/progress-$tag.log"); then
		tail -n 5 "$work/logs/progress-$tag.log" >&2
		die "$tag: pgbench failed" "see $work/logs and $base"
	fi

	local stats
	stats=$(q -F ' ' -c "SELECT w.wal_bytes, w.wal_fpi, c.num_timed + c.num_requested,
		round(c.write_time::numeric / 1000, 1), round(c.sync_time::numeric / 1000, 1)
		FROM pg_stat_wal w, pg_stat_checkpointer c")
	local mixed=""
	if [ "$config" = wtsmgr_mixed ]; then
		mixed=$(q -c "SELECT string_agg(tablespace || ' ' || full_page_images, '; ' ORDER BY 1) FROM wtsmgr_tablespaces")
	fi
	as_user "$prefix/bin/pg_ctl" -D "$data" -w stop >/dev/null

	local tps txns series sd p99
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/logs/pgbench-$tag.out")
	txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/logs/pgbench-$tag.out")
	series=$work/logs/series-$tag.dat
	sed -n 's/^progress: \([0-9.]*\) s, \([0-9.]*\) tps.*/\1 \2/p' "$work/logs/progress-$tag.log" >"$series"
	sd=$(awk '{ s += $2; ss += $2 * $2; n++ } END { if (n > 1) printf "%.0f", sqrt((ss - s * s / n) / (n - 1)) }' "$series")
	p99=$(cat "$work/logs"/txn-"$tag".* | awk '{ print $3 }' | sort -n |
		awk '{ a[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.1f", a[i] / 1000 }')
	rm -f "$work/logs"/txn-"$tag".*
	set -- $stats
	R[$tag]="$tps $sd $p99 $(awk -v b="$1" -v t="$txns" 'BEGIN { printf "%.0f", b / t }') $2 $3 $4 $5"
	[ -n "$mixed" ] && R[$tag-mixed]=$mixed
	say "$tag: ${R[$tag]}"
}

for scale in $scales; do
	for config in $configs; do
		run "$config" "$scale"
	done
	# the 4 GB loop filesystem holds one data set and one copy at a time
	rm -rf "$base/template-$scale" "$base/run"
done

# The report.
ratio()
{
	awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'
}

report=$out/report.md
{
	echo "# wtsmgr against stock PostgreSQL 18: pgbench"
	echo
	echo "$(date -u +%Y-%m-%d), $(uname -r), $(nproc) cores; data on XFS on a loop"
	echo "device (software atomic writes), WAL on the same filesystem;"
	echo "pgbench TPC-B, 4 clients, $duration s per run; shared_buffers 128MB,"
	echo "checkpoint_timeout 30s; data checksums on. p99 is the latency of the"
	echo "99th percentile transaction; sd is the standard deviation of per-second TPS."
	echo "Ratios are to stock_fpw_on (1) and stock_fpw_off (2)."
	for scale in $scales; do
		echo
		echo "## Scale $scale"
		echo
		echo "| configuration | TPS | TPS sd | p99 ms | WAL bytes/txn | wal_fpi | checkpoints | ckpt write s | ckpt sync s | TPS / 1 | TPS / 2 | WAL / 1 | WAL / 2 | sd / 1 |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		read -r tps1 sd1 _ wal1 _ <<<"${R[stock_fpw_on-$scale]}"
		read -r tps2 _ _ wal2 _ <<<"${R[stock_fpw_off-$scale]}"
		for config in $configs; do
			read -r tps sd p99 wal fpi ckpts wt st <<<"${R[$config-$scale]}"
			echo "| $config | ${tps%.*} | $sd | $p99 | $wal | $fpi | $ckpts | $wt | $st | $(ratio "$tps" "$tps1") | $(ratio "$tps" "$tps2") | $(ratio "$wal" "$wal1") | $(ratio "$wal" "$wal2") | $(ratio "$sd" "$sd1") |"
		done
		echo
		echo "wtsmgr_mixed, per tablespace: ${R[wtsmgr_mixed-$scale-mixed]:-}"
	done
	echo
	echo "Targets: WAL bytes/txn <= 1.1 x stock_fpw_off; TPS >= stock_fpw_off;"
	echo "TPS sd <= 1/3 of stock_fpw_on."
} >"$report"

if command -v gnuplot >/dev/null; then
	plot=$out/tps.png
	{
		echo "set terminal png noenhanced size 1200,$((400 * $(echo $scales | wc -w)))"
		echo "set output '$plot'"
		echo "set multiplot layout $(echo $scales | wc -w),1"
		echo "set xlabel 'seconds'; set ylabel 'TPS'; set key outside right"
		for scale in $scales; do
			echo "set title 'pgbench TPS per second, scale $scale'"
			printf "plot "
			sep=""
			for config in stock_fpw_on stock_fpw_off wtsmgr_fsync wtsmgr_dsync; do
				printf "%s'%s' using 1:2 with lines title '%s'" "$sep" \
					"$work/logs/series-$config-$scale.dat" "$config"
				sep=", "
			done
			echo
		done
		echo "unset multiplot"
	} | gnuplot
	echo "![TPS over time](tps.png)" >>"$report"
	say "plot: $plot"
else
	say "gnuplot is not installed: no plot"
fi

cat "$report"
say "report: $report"
rm -rf "$base" "$work"
