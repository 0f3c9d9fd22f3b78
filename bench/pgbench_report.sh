#!/usr/bin/env bash
# bench/pgbench_report.sh -- wtsmgr against stock PostgreSQL 18, in pgbench.
#
# Usage: bench/pgbench_report.sh [--duration SECONDS] [--repeats N]
#            [--wal-cap MB_PER_S] [--scenarios "capped uncapped"]
#            [--scales "20"] [--capped-scale 20] [--capped-configs "..."]
#            [--uncapped-configs "..."] [--shared-buffers "128MB 256MB ..."]
#            [--sbcurve-scale 20] [--sbcurve-configs "..."]
#            [--bgwriter "NAME=VALUE ..."] [--out DIR]
#
# Runs pgbench TPC-B (4 clients, --duration seconds each, default 40) on
# copies of one data set per scale, data on the atomic XFS filesystem, with
# shared_buffers = 128MB, checkpoint_timeout = 30s and track_io_timing = on,
# in two scenarios by default:
#   capped    pg_wal on its own ext4 loop device whose writes are capped
#             with a cgroup v1 blkio throttle (--wal-cap, default 5 MB/s,
#             1 MB = 2^20 bytes), scale --capped-scale (default 20; needs
#             root)
#   uncapped  everything on the XFS loop filesystem, each of --scales
#             (default 20, more than twice shared_buffers)
# and, only when named in --scenarios:
#   sbcurve   uncapped, scale --sbcurve-scale (default 20), once for each
#             shared_buffers of --shared-buffers (default "128MB 256MB
#             512MB 1GB"): TPS over shared_buffers, with the evictions,
#             the background writer's work and the reads that reach the
#             data device (its loop device's counters; as root)
# Configurations (default capped: stock_fpw_on stock_lz4 stock_fpw_off
# wtsmgr_fsync; uncapped: the same and stock_zstd; sbcurve: stock_fpw_on
# stock_fpw_off wtsmgr_fsync wtsmgr_fsync+bgw):
#   stock_fpw_on   stock PostgreSQL 18, full_page_writes = on
#   stock_lz4      stock, full_page_writes = on, wal_compression = lz4
#   stock_zstd     stock, full_page_writes = on, wal_compression = zstd
#   stock_fpw_off  stock, full_page_writes = off (no torn-page protection)
#   wtsmgr_fsync   wtsmgr, wtsmgr.durability = fsync (the default)
#   wtsmgr_dsync   wtsmgr, wtsmgr.durability = dsync
#   wtsmgr_reread  wtsmgr_fsync with wtsmgr.reread_written = on
#   wtsmgr_mixed   wtsmgr_fsync with pgbench_branches, _tellers and
#                  _history on the root filesystem (uncapped only)
#   CONFIG+bgw     any of these with the background writer settings of
#                  --bgwriter (default "bgwriter_delay=10ms
#                  bgwriter_lru_maxpages=1000 bgwriter_lru_multiplier=10";
#                  PostgreSQL's defaults are 200ms, 100 and 2)
# Each configuration runs --repeats times (default 2), alternating
# (A B C A B C ...; sbcurve alternates over shared_buffers too); the report
# gives medians.  Per run: TPS, the
# coefficient of variation of per-second TPS and the seconds at 0 TPS (from
# pgbench's transaction log), p99 latency, WAL bytes per transaction and
# wal_fpi (pg_stat_wal), checkpoints and their write and sync time
# (pg_stat_checkpointer), pg_stat_io relation reads and writes with their
# times for client backends, the checkpointer and the background writer,
# the checkpointer's and the background writer's blocks per write call,
# and wtsmgr's blocks per atomic unit (wtsmgr_stat_io); runs.tsv also gets
# the client backends' evictions, pg_stat_bgwriter's buffers_clean and
# maxwritten_clean, and the blocks read from and written to the data
# device during pgbench.  The checkpointer
# reports its I/O only when a checkpoint ends, so a CHECKPOINT after
# pgbench finishes the one in progress before its figures are read (WAL
# and client figures are read before it).  This script runs the servers
# and pgbench and writes a line of figures a run; bench/bench-report
# (bench/WtsmgrBench.pm) reduces each run's transaction log, and at the end
# writes report.md, runs.tsv, capped-tps.png, uncapped-SCALE-tps.png (TPS
# per second) and sbcurve-tps.png (median TPS over shared_buffers; gnuplot)
# into --out (default bench/results) and prints the report.  Nothing is
# asserted.
# The defaults take about 20 minutes; sbcurve about --duration + 5 s per
# run, sizes x configurations x repeats runs (4 x 4 x 2 = 32 by default:
# about 25 minutes).
#
# Builds the optimized server and a stock one if needed.  As root it makes
# the XFS loop filesystem, the capped WAL device (an image in the cache
# directory, mounted on $WTSMGR_WAL_MOUNT, default /mnt/wtsmgr-capped-wal,
# removed at the end, the throttle lifted, also on failure) and installs
# gnuplot from the machine's own suite; otherwise set WTSMGR_ATOMIC_DIR
# (the capped scenario, the device counters and the plots are then skipped).
set -euo pipefail
. "$(dirname "$0")/../scripts/common.sh"

# has "LIST" WORD: WORD is one of LIST's words
has()
{
	case " $1 " in *" $2 "*) return 0 ;; esac
	return 1
}

duration=40
repeats=2
wal_cap=5
scenarios="capped uncapped"
scales="20"
capped_scale=20
capped_configs="stock_fpw_on stock_lz4 stock_fpw_off wtsmgr_fsync"
uncapped_configs="stock_fpw_on stock_lz4 stock_zstd stock_fpw_off wtsmgr_fsync"
sb_sizes="128MB 256MB 512MB 1GB"
sb_scale=20
sb_configs="stock_fpw_on stock_fpw_off wtsmgr_fsync wtsmgr_fsync+bgw"
bgwriter="bgwriter_delay=10ms bgwriter_lru_maxpages=1000 bgwriter_lru_multiplier=10"
out=$WTSMGR_ROOT/bench/results
# the figures, the report and the plots (bench/WtsmgrBench.pm)
report_cmd=$WTSMGR_ROOT/bench/bench-report
while [ $# -gt 0 ]; do
	case $1 in
		--duration) duration=$2; shift 2 ;;
		--repeats) repeats=$2; shift 2 ;;
		--wal-cap) wal_cap=$2; shift 2 ;;
		--scenarios) scenarios=$2; shift 2 ;;
		--scales) scales=$2; shift 2 ;;
		--capped-scale) capped_scale=$2; shift 2 ;;
		--capped-configs) capped_configs=$2; shift 2 ;;
		--uncapped-configs) uncapped_configs=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		--shared-buffers) sb_sizes=$2; shift 2 ;;
		--sbcurve-scale) sb_scale=$2; shift 2 ;;
		--sbcurve-configs) sb_configs=$2; shift 2 ;;
		--bgwriter) bgwriter=$2; shift 2 ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
		*) die "unknown option $1" "see $0 --help" ;;
	esac
done
case $duration$repeats in *[!0-9]*) die "--duration and --repeats take whole numbers" ;; esac
[ "$duration" -ge 5 ] && [ "$repeats" -ge 1 ] || die "--duration must be >= 5 and --repeats >= 1"
case $wal_cap in ''|*[!0-9.]*|*.*.*) die "--wal-cap must be a positive number of MB/s" ;; esac
cap_bytes=$(perl -e 'printf "%d", $ARGV[0] * 1048576' "$wal_cap")
[ "$cap_bytes" -gt 0 ] || die "--wal-cap must be a positive number of MB/s"
for s in $scenarios; do
	case $s in capped|uncapped|sbcurve) ;; *) die "unknown scenario $s" "use capped, uncapped and/or sbcurve" ;; esac
done
for c in $capped_configs $uncapped_configs $sb_configs; do
	case ${c%+bgw} in stock_fpw_on|stock_lz4|stock_zstd|stock_fpw_off|wtsmgr_fsync|wtsmgr_dsync|wtsmgr_reread|wtsmgr_mixed) ;;
		*) die "unknown configuration $c" "see $0 --help" ;;
	esac
done
case " $capped_configs $sb_configs " in *" wtsmgr_mixed "*|*" wtsmgr_mixed+bgw "*)
	die "wtsmgr_mixed is for the uncapped scenario only" ;;
esac
case $sb_scale in ''|*[!0-9]*) die "--sbcurve-scale takes a whole number" ;; esac
for b in $sb_sizes; do
	case $b in [1-9]*MB|[1-9]*GB) case ${b%?B} in *[!0-9]*) die "bad --shared-buffers size $b" "use sizes such as 128MB or 1GB" ;; esac ;;
		*) die "bad --shared-buffers size $b" "use sizes such as 128MB or 1GB" ;;
	esac
done
[ -n "$(echo $sb_sizes)" ] || die "--shared-buffers is empty"
for b in $bgwriter; do
	case $b in bgwriter_?*=?*) ;; *) die "bad --bgwriter setting $b" "use NAME=VALUE with bgwriter_* names" ;; esac
done
if ! is_root && has "$scenarios" capped; then
	say "not root: no loop device or throttle for the capped scenario; skipping it"
	left=
	for s in $scenarios; do [ "$s" = capped ] || left="$left $s"; done
	scenarios=$left
fi
scenarios=$(echo $scenarios)
[ -n "$scenarios" ] || die "no scenario left to run"
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

prefix_w=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor release --print-prefix)
prefix_s=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor stock --print-prefix)
say "installing wtsmgr into $prefix_w"
make -s -C "$WTSMGR_ROOT" PG_CONFIG="$prefix_w/bin/pg_config" install >/dev/null
ensure_user
grep -q 'define USE_LZ4 1' "$prefix_s/include/postgresql/server/pg_config.h" ||
	die "the stock build lacks lz4" "scripts/build-server.sh configures --with-lz4"
grep -q 'define USE_ZSTD 1' "$prefix_s/include/postgresql/server/pg_config.h" ||
	die "the stock build lacks zstd" "scripts/build-server.sh configures --with-zstd"

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
results=$work/results.tsv
: >"$results"

# The capped WAL device and everything that must not outlive the script.
walmnt=${WTSMGR_WAL_MOUNT:-/mnt/wtsmgr-capped-wal}
walimg=$WTSMGR_CACHE_DIR/capped-wal-ext4.img
waldev=
blkio=/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device
walmounted=0
cur_prefix=
cur_data=

throttle_off()
{
	[ -n "$waldev" ] && [ -w "$blkio" ] && echo "$waldev 0" >"$blkio" 2>/dev/null || true
}

cleanup()
{
	local rc=$?
	trap - EXIT
	if [ -n "$cur_data" ] && [ -f "$cur_data/postmaster.pid" ]; then
		as_user "$cur_prefix/bin/pg_ctl" -D "$cur_data" -m immediate -w stop >/dev/null 2>&1 || true
	fi
	throttle_off
	if [ "$walmounted" -eq 1 ]; then
		umount "$walmnt" 2>/dev/null || umount -l "$walmnt" 2>/dev/null || true
		rmdir "$walmnt" 2>/dev/null || true
	fi
	rm -f "$walimg"
	if [ "$rc" -ne 0 ]; then
		say "failed: logs kept in $work, data in $base"
	else
		rm -rf "$base" "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if has "$scenarios" capped; then
	[ -w "$blkio" ] || die "no cgroup v1 blkio throttle at $blkio" \
		"run with --scenarios uncapped on a machine without it"
	command -v mkfs.ext4 >/dev/null || die "mkfs.ext4 is missing" "apt-get install e2fsprogs"
	mountpoint -q "$walmnt" && die "$walmnt is already mounted" \
		"another run, or a stale mount: umount $walmnt, or set WTSMGR_WAL_MOUNT"
	say "capped WAL device: ext4 image $walimg on $walmnt, writes capped at $wal_cap MB/s"
	mkdir -p "$walmnt" "$WTSMGR_CACHE_DIR"
	rm -f "$walimg"
	truncate -s 3G "$walimg"
	# no lazy initialization: it would write behind our back, through the cap
	mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$walimg" >/dev/null
	mount -o loop,noatime "$walimg" "$walmnt"
	walmounted=1
	chown "$WTSMGR_USER" "$walmnt"
	waldev=$(cat "/sys/class/block/$(basename "$(findmnt -n -o SOURCE "$walmnt")")/dev")
	[ -n "$waldev" ] || die "cannot find the device of $walmnt"
fi

# The data's loop device, whose counters tell the reads that missed the
# page cache (as root; "-" otherwise).
datastat=
if is_root; then
	d=$(findmnt -n -o SOURCE --target "$base" 2>/dev/null || true)
	case $d in /dev/loop*) datastat=/sys/class/block/$(basename "$d")/stat ;; esac
	[ -n "$datastat" ] && [ -r "$datastat" ] || datastat=
fi
# sectors read and written so far, or "- -"
dev_sectors()
{
	local f
	if [ -n "$datastat" ]; then
		read -r -a f <"$datastat"
		echo "${f[2]} ${f[6]}"
	else
		echo "- -"
	fi
}

port=$((41000 + $$ % 10000))
common_conf=(
	"shared_buffers = 128MB" "checkpoint_timeout = 30s" "max_wal_size = 1GB"
	"min_wal_size = 512MB" "track_io_timing = on" "log_checkpoints = on")

# The server of a configuration, and its extra settings.
config_prefix()
{
	case $1 in stock_*) echo "$prefix_s" ;; *) echo "$prefix_w" ;; esac
}

config_conf()
{
	case ${1%+bgw} in
		stock_fpw_on) echo "shared_preload_libraries = ''" ;;
		stock_lz4) echo "shared_preload_libraries = ''"; echo "wal_compression = lz4" ;;
		stock_zstd) echo "shared_preload_libraries = ''"; echo "wal_compression = zstd" ;;
		stock_fpw_off) echo "shared_preload_libraries = ''"; echo "full_page_writes = off" ;;
		wtsmgr_dsync) echo "shared_preload_libraries = 'wtsmgr'"; echo "wtsmgr.durability = dsync" ;;
		wtsmgr_reread) echo "shared_preload_libraries = 'wtsmgr'"; echo "wtsmgr.reread_written = on" ;;
		*) echo "shared_preload_libraries = 'wtsmgr'"; echo "wtsmgr.durability = fsync" ;;
	esac
	if [ "$1" != "${1%+bgw}" ]; then
		for b in $bgwriter; do echo "${b%%=*} = '${b#*=}'"; done
	fi
}

q()
{
	as_user "$prefix_w/bin/psql" -X -A -t -v ON_ERROR_STOP=1 -h "$work" -p "$port" -d "${DB:-postgres}" "$@"
}

# One pgbench database per scale, made by the stock server.  min_wal_size
# keeps the WAL that initialization wrote as recycled segments, so that no
# run has to create (zero-fill) new segments through the cap.
need_scales=
case " $scenarios " in *" uncapped "*) need_scales=$scales ;; esac
case " $scenarios " in *" capped "*) need_scales="$capped_scale $need_scales" ;; esac
case " $scenarios " in *" sbcurve "*) need_scales="$sb_scale $need_scales" ;; esac
need_scales=$(printf '%s\n' $need_scales | sort -nu | tr '\n' ' ')
saved_path=$PATH
export PATH="$prefix_s/bin:$saved_path"
for scale in $need_scales; do
	say "scale $scale: initializing the data set"
	start_cluster "$base/template-$scale" "$port" "$work" \
		"${common_conf[@]}" "shared_preload_libraries = ''"
	as_user "$prefix_s/bin/pgbench" -h "$work" -p "$port" -i -s "$scale" -q postgres \
		>"$work/logs/init-$scale.log" 2>&1
	q -q -c 'CHECKPOINT'
	as_user "$prefix_s/bin/pg_ctl" -D "$base/template-$scale" -w stop >/dev/null
	du -sm "$base/template-$scale/base" | cut -f1 >"$work/size-$scale"
	say "scale $scale: $(du -sm "$base/template-$scale" | cut -f1) MB, of which pg_wal $(du -sm "$base/template-$scale/pg_wal" | cut -f1) MB"
done
export PATH=$saved_path

# pg_stat_io relation I/O of one backend type: read blocks, read ms, µs per
# read, written blocks, write ms, µs per write.
io_sql()
{
	echo "SELECT concat_ws(' ', r, round(rt), CASE WHEN r > 0 THEN round(1000 * rt / r) ELSE 0 END,
		w, round(wt), CASE WHEN w > 0 THEN round(1000 * wt / w) ELSE 0 END)
	FROM (SELECT (coalesce(sum(read_bytes), 0) / 8192)::bigint AS r, coalesce(sum(read_time), 0) AS rt,
		(coalesce(sum(write_bytes), 0) / 8192)::bigint AS w, coalesce(sum(write_time), 0) AS wt
		FROM pg_stat_io WHERE object = 'relation' AND backend_type = '$1') s"
}

run()
{
	local scen=$1 config=$2 scale=$3 rep=$4 prefix data tpl tag f sb=128MB
	# sbcurve runs are uncapped runs named sbcurve-SHARED_BUFFERS
	case $scen in sbcurve-*) sb=${scen#sbcurve-} ;; esac
	prefix=$(config_prefix "$config")
	data=$base/run
	tpl=$base/template-$scale
	tag=$scen-$config-$scale-$rep
	rm -rf "$data"
	# a real copy: on Linux 6.18, XFS fails RWF_ATOMIC writes to blocks
	# shared by reflink with ENOSPC
	if [ "$scen" = capped ]; then
		rm -rf "$walmnt/pg_wal"
		as_user mkdir -m 700 "$data"
		for f in "$tpl"/*; do
			[ "$(basename "$f")" = pg_wal ] && continue
			as_user cp -a --reflink=never "$f" "$data/"
		done
		as_user cp -a "$tpl/pg_wal" "$walmnt/pg_wal"
		as_user ln -s "$walmnt/pg_wal" "$data/pg_wal"
	else
		as_user cp -a --reflink=never "$tpl" "$data"
	fi
	rm -f "$data/postmaster.pid"
	# write the copies out now: the WAL copy's writeback must not go
	# through the cap during the run
	sync -f "$data"
	[ "$scen" = capped ] && sync -f "$walmnt/pg_wal"
	{
		printf '%s\n' "${common_conf[@]}"
		config_conf "$config"
		[ "$sb" = 128MB ] || echo "shared_buffers = $sb"
	} | as_user tee -a "$data/postgresql.conf" >/dev/null
	cur_prefix=$prefix
	cur_data=$data
	as_user "$prefix/bin/pg_ctl" -D "$data" -l "$work/logs/server-$tag.log" -w start >/dev/null

	if [ "$config" != "${config#wtsmgr}" ]; then
		q -q -c 'CREATE EXTENSION IF NOT EXISTS wtsmgr'
		if [ "${config%+bgw}" = wtsmgr_mixed ]; then
			as_user mkdir -p "$work/ext4/$tag"
			q -q -c "CREATE TABLESPACE plain LOCATION '$work/ext4/$tag'" \
				-c 'ALTER TABLE pgbench_branches SET TABLESPACE plain' \
				-c 'ALTER TABLE pgbench_tellers SET TABLESPACE plain' \
				-c 'ALTER TABLE pgbench_history SET TABLESPACE plain' \
				-c 'ALTER INDEX pgbench_branches_pkey SET TABLESPACE plain' \
				-c 'ALTER INDEX pgbench_tellers_pkey SET TABLESPACE plain'
		fi
		for _ in $(seq 50); do
			[ "$(q -c "SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")" = skipped ] && break
			sleep 0.2
		done
		q -q -c 'SELECT wtsmgr_stat_reset()' >/dev/null
	fi
	q -q -c 'CHECKPOINT' -c "SELECT pg_stat_reset_shared('wal')" \
		-c "SELECT pg_stat_reset_shared('checkpointer')" \
		-c "SELECT pg_stat_reset_shared('io')" \
		-c "SELECT pg_stat_reset_shared('bgwriter')" >/dev/null

	[ "$scen" = capped ] && echo "$waldev $cap_bytes" >"$blkio"
	say "$tag: pgbench, 4 clients, $duration s"
	local dev0 dev1
	dev0=$(dev_sectors)
	if ! (cd "$work/logs" && as_user "$prefix/bin/pgbench" -h "$work" -p "$port" -n -c 4 -j 2 \
		-T "$duration" -P 1 -l --log-prefix="txn-$tag" postgres \
		>"$work/logs/pgbench-$tag.out" 2>"$work/logs/progress-$tag.log"); then
		tail -n 5 "$work/logs/progress-$tag.log" >&2
		die "$tag: pgbench failed" "see $work/logs and $base"
	fi
	[ "$scen" = capped ] && throttle_off
	dev1=$(dev_sectors)

	# WAL and the backends' I/O first, then finish the checkpoint in
	# progress so that the checkpointer reports its I/O.
	local stats cb bw ck bpu="-"
	stats=$(q -c "SELECT concat_ws(' ', wal_bytes, wal_fpi) FROM pg_stat_wal")
	cb=$(q -c "$(io_sql 'client backend')")
	bw=$(q -c "$(io_sql 'background writer')")
	local extra
	extra=$(q -c "SELECT concat_ws(' ', (SELECT coalesce(sum(evictions), 0) FROM pg_stat_io
			WHERE object = 'relation' AND backend_type = 'client backend'),
		buffers_clean, maxwritten_clean) FROM pg_stat_bgwriter")
	# 512-byte sectors, 16 to a block
	if [ "$dev0" = "- -" ]; then
		extra="$extra - -"
	else
		set -- $dev0 $dev1
		extra="$extra $((($3 - $1) / 16)) $((($4 - $2) / 16))"
	fi
	q -q -c 'CHECKPOINT'
	ck=$(q -c "$(io_sql checkpointer)")
	# blocks per write call (pg_stat_io counts a combined write as one)
	local per_call
	per_call=$(q -c "SELECT concat_ws(' ',
		coalesce(max(round(b / nullif(w, 0), 2)) FILTER (WHERE bt = 'checkpointer')::text, '-'),
		coalesce(max(round(b / nullif(w, 0), 2)) FILTER (WHERE bt = 'background writer')::text, '-'))
		FROM (SELECT backend_type AS bt, sum(write_bytes) / 8192.0 AS b, sum(writes) AS w
			FROM pg_stat_io WHERE object = 'relation' GROUP BY 1) s")
	stats="$stats $(q -c "SELECT concat_ws(' ', num_done, round(write_time::numeric / 1000, 1),
		round(sync_time::numeric / 1000, 1)) FROM pg_stat_checkpointer")"
	local mixed=""
	if [ "$config" != "${config#wtsmgr}" ]; then
		bpu=$(q -c "SELECT coalesce(round(sum(writes)::numeric / nullif(sum(atomic_units), 0), 2)::text, '-')
			FROM wtsmgr_stat_io")
	fi
	if [ "${config%+bgw}" = wtsmgr_mixed ]; then
		mixed=$(q -c "SELECT string_agg(tablespace || ' ' || full_page_images, '; ' ORDER BY 1) FROM wtsmgr_tablespaces")
		echo "$mixed" >"$work/mixed-$scale"
	fi
	as_user "$prefix/bin/pg_ctl" -D "$data" -w stop >/dev/null
	cur_data=

	# Per-second TPS, its spread and p99 latency from the transaction log
	local tps txns summary p99 walpt
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/logs/pgbench-$tag.out")
	txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$work/logs/pgbench-$tag.out")
	summary=$("$report_cmd" txn-summary "$duration" \
		"$work/logs/series-$scen-$config-$scale-$rep.dat" "$work/logs"/txn-"$tag".*)
	# sd, CoV and zero seconds, then p99
	p99=${summary##* }
	summary=${summary% *}
	rm -f "$work/logs"/txn-"$tag".*
	set -- $stats
	walpt=0
	[ "$txns" -gt 0 ] && walpt=$((($1 + txns / 2) / txns))
	# the columns of WtsmgrBench.pm's @COLUMNS, in order
	echo "$scen $config $scale $rep $tps $summary $p99 $walpt $2 $3 $4 $5 $cb $ck $bw $bpu $sb $extra $per_call" >>"$results"
	say "$tag: tps ${tps%.*}, sd/CoV/zero-s $summary, WAL/txn $walpt, fpi $2; io: client $cb; checkpointer $ck; bgwriter $bw; blocks/unit $bpu; evictions, clean, maxwritten, device r/w $extra"
}

for scen in $scenarios; do
	if [ "$scen" = sbcurve ]; then
		for rep in $(seq "$repeats"); do
			for sb in $sb_sizes; do
				for config in $sb_configs; do
					run "sbcurve-$sb" "$config" "$sb_scale" "$rep"
				done
			done
		done
		continue
	fi
	if [ "$scen" = capped ]; then
		sc=$capped_scale; cfgs=$capped_configs
	else
		sc=$scales; cfgs=$uncapped_configs
	fi
	for scale in $sc; do
		for rep in $(seq "$repeats"); do
			for config in $cfgs; do
				run "$scen" "$config" "$scale" "$rep"
			done
		done
	done
done
rm -rf "$base/run"

# The report, its plots and runs.tsv.
settings=(
	"duration=$duration" "repeats=$repeats" "scenarios=$scenarios"
	"scales=$scales" "capped_scale=$capped_scale"
	"capped_configs=$capped_configs" "uncapped_configs=$uncapped_configs"
	"sb_sizes=$sb_sizes" "sb_scale=$sb_scale" "sb_configs=$sb_configs"
	"bgwriter=$bgwriter" "wal_cap=$wal_cap" "load_start=$load_start"
	"elapsed=$(($(date +%s) - t_start))")
for f in "$work"/mixed-* "$work"/size-*; do
	if [ -f "$f" ]; then
		settings+=("$(basename "$f")=$(cat "$f")")
	fi
done
"$report_cmd" pgbench "$results" "$out" "$work/logs" "${settings[@]}"
say "report: $out/report.md (per run: $out/runs.tsv)"
