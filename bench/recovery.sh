#!/usr/bin/env bash
# bench/recovery.sh -- what leaving full-page images out costs at replay:
# crash recovery time and a streaming standby's replay lag, stock
# PostgreSQL 18 against the server with wtsmgr.
#
# Usage: bench/recovery.sh [--repeats N] [--scale S] [--seconds T]
#            [--lag-seconds T] [--clients C] [--parts "crash lag"]
#            [--configs "..."] [--out DIR]
#
# Without images, replay must read every block that a record changes (an
# image restores the block without reading it), and where data files are
# read with O_DIRECT none of those reads comes from the page cache.  Four
# configurations, each on its own copy of one pgbench data set (scale S,
# default 20, made by the stock server), data directory on the atomic XFS
# filesystem:
#   stock_fpw_on       stock PostgreSQL 18 (the `stock` flavor), images on
#   stock_fpw_off      stock, full_page_writes = off (torn pages unprotected)
#   stock_fpw_off_dio  stock_fpw_off with debug_io_direct = data: what direct
#                      I/O alone costs, which is all that a device with
#                      hardware atomic writes would pay
#   wtsmgr             the release server with wtsmgr preloaded: images left
#                      out, O_DIRECT RWF_ATOMIC writes (copy-on-write in
#                      software on this XFS)
# Parts (--parts, default both):
#   crash  start, CHECKPOINT, pgbench (C clients, default 4) for --seconds
#          (default 30), then SIGKILL of the postmaster and all its
#          children in the middle of the run; sync and drop the page cache
#          (as root), start, and time until it accepts connections.  Per
#          run: the server's own "redo done ... elapsed" seconds, start to
#          ready (includes the end-of-recovery checkpoint), the WAL replayed
#          (the "redo starts at" and "redo done at" LSNs of the log) and
#          its full-page-image bytes (pg_waldump --stats), the transactions
#          replayed (rows of pgbench_history) and the redo time per
#          transaction, since each configuration runs its own pgbench and
#          writes its own WAL.
#   lag    a primary and a streaming standby, both copies of the data set
#          on the atomic XFS filesystem, the same configuration on both;
#          page cache dropped, then pgbench on the primary for
#          --lag-seconds (default 30) with checkpoint_timeout = 30s.  Every
#          second: pg_stat_replication's replay_lag and sent_lsn -
#          replay_lsn, and the primary's current LSN - the standby's
#          pg_last_wal_replay_lsn(); per run their median and maximum,
#          and the seconds the standby needs to catch up once pgbench
#          stops.
# Each configuration runs --repeats times (default 3), alternating (A B C
# D A B C D ...); the report gives each run and the medians.  Writes
# report.md and runs.tsv into --out (default bench/results/recovery) and
# prints the report.
#
# Nothing is asserted about the figures, but the script fails if a
# configuration did not run as named: full_page_writes, debug_io_direct and
# shared_preload_libraries as configured (SHOW, before the run and after
# recovery), wtsmgr's pg_default untorn with images skipped
# (wtsmgr_tablespaces) and images really left out (wtsmgr_stat_io's
# fpi_skipped), stock_fpw_on's WAL with images, the crash really needing
# recovery ("database system was not properly shut down" in the log),
# pgbench's balances agreeing after recovery, and the standby streaming,
# in recovery and (wtsmgr) untorn, with no "lacks full-page images"
# warning.  Needs root (page cache, loop device counters, SIGKILL of the
# unprivileged user's server).  Uses the cached release and stock servers
# (scripts/build-server.sh builds them if they are missing).  The defaults
# take about 25 minutes.
set -eEuo pipefail
. "$(dirname "$0")/../scripts/common.sh"
# a command that fails outside die() still says where
trap 'printf "wtsmgr: error: line %s: %s failed\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

repeats=3
scale=20
seconds=30
lag_seconds=30
clients=4
parts="crash lag"
configs="stock_fpw_on stock_fpw_off stock_fpw_off_dio wtsmgr"
out=$WTSMGR_ROOT/bench/results/recovery
# medians and the runs' figures (bench/WtsmgrBench.pm)
report_cmd=$WTSMGR_ROOT/bench/bench-report
cmdline=$(echo "bench/recovery.sh $*" | sed "s/ *$//")
while [ $# -gt 0 ]; do
	case $1 in
		--repeats) repeats=$2; shift 2 ;;
		--scale) scale=$2; shift 2 ;;
		--seconds) seconds=$2; shift 2 ;;
		--lag-seconds) lag_seconds=$2; shift 2 ;;
		--clients) clients=$2; shift 2 ;;
		--parts) parts=$2; shift 2 ;;
		--configs) configs=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		-h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
		*) die "unknown option $1" "see $0 --help" ;;
	esac
done
case $repeats$scale$seconds$lag_seconds$clients in *[!0-9]*)
	die "--repeats, --scale, --seconds, --lag-seconds and --clients take whole numbers" ;;
esac
[ "$repeats" -ge 1 ] && [ "$seconds" -ge 2 ] && [ "$lag_seconds" -ge 2 ] && [ "$scale" -ge 1 ] ||
	die "--repeats and --scale must be >= 1, --seconds and --lag-seconds >= 2"
for p in $parts; do
	case $p in crash|lag) ;; *) die "unknown part $p" "use crash and/or lag" ;; esac
done
for c in $configs; do
	case $c in stock_fpw_on|stock_fpw_off|stock_fpw_off_dio|wtsmgr) ;;
		*) die "unknown configuration $c" "see $0 --help" ;;
	esac
done
is_root || die "bench/recovery.sh needs root" \
	"it drops the page cache, reads the loop device's counters and kills the server with SIGKILL"

has()
{
	case " $1 " in *" $2 "*) return 0 ;; esac
	return 1
}

t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
bench_prepare recovery			# release prefix, work, dir
release=$prefix
stock=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor stock --print-prefix)
mkdir -p "$out"
port=$((46000 + $$ % 9000))
sport=$((port + 1))
sock=$work/sock
mkdir -p "$sock" "$work/logs"
chown -R "$WTSMGR_USER" "$sock" "$work/logs"
runs=$work/runs.tsv
: >"$runs"

# The data device's counters: 8 kB blocks read and written, shared with
# whatever else uses the atomic filesystem.
datastat=
d=$(findmnt -n -o SOURCE --target "$dir" 2>/dev/null || true)
case $d in /dev/loop*) datastat=/sys/class/block/$(basename "$d")/stat ;; esac
[ -n "$datastat" ] && [ -r "$datastat" ] || datastat=
dev_blocks()
{
	if [ -n "$datastat" ]; then awk '{ print int($3 / 16), int($7 / 16) }' "$datastat"; else echo "- -"; fi
}

cleanup()
{
	local rc=$?
	trap - EXIT
	for d in "$dir/run" "$dir/primary" "$dir/standby" "$dir/template"; do
		if [ -f "$d/postmaster.pid" ]; then
			as_user "$stock/bin/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$dir"
	if [ "$rc" -ne 0 ]; then
		say "failed: logs kept in $work"
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# q PORT SQL...: one value per line, unaligned
q()
{
	local p=$1
	shift
	as_user "$stock/bin/psql" -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$p" -d postgres "$@"
}

config_prefix()
{
	case $1 in stock_*) echo "$stock" ;; *) echo "$release" ;; esac
}

config_conf()
{
	case $1 in
		stock_fpw_on) echo "shared_preload_libraries = ''" ;;
		stock_fpw_off) echo "shared_preload_libraries = ''"; echo "full_page_writes = off" ;;
		stock_fpw_off_dio)
			echo "shared_preload_libraries = ''"; echo "full_page_writes = off"
			echo "debug_io_direct = 'data'" ;;
		wtsmgr) echo "shared_preload_libraries = 'wtsmgr'" ;;
	esac
}

# check_config CONFIG PORT WHAT [primary]: die unless the server on PORT
# runs as CONFIG says; for wtsmgr, pg_default must be untorn there, and on
# a primary its images skipped.
check_config()
{
	local config=$1 p=$2 what=$3 role=${4:-} fpw dio spl want_fpw=on want_dio= want_spl= row
	fpw=$(q "$p" -c 'SHOW full_page_writes')
	dio=$(q "$p" -c 'SHOW debug_io_direct')
	spl=$(q "$p" -c 'SHOW shared_preload_libraries')
	case $config in
		stock_fpw_off) want_fpw=off ;;
		stock_fpw_off_dio) want_fpw=off; want_dio=data ;;
		wtsmgr) want_spl=wtsmgr ;;
	esac
	[ "$fpw" = "$want_fpw" ] && [ "$dio" = "$want_dio" ] && [ "$spl" = "$want_spl" ] ||
		die "$what: runs with full_page_writes = '$fpw', debug_io_direct = '$dio', shared_preload_libraries = '$spl'; $config needs '$want_fpw', '$want_dio', '$want_spl'" \
			"see the server log in $work/logs"
	if [ "$config" = wtsmgr ]; then
		row=$(q "$p" -c "SELECT untorn_blocks || ' ' || write_path || ' ' || full_page_images FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")
		case $row in
			"true atomic skipped") ;;
			"true atomic "*) [ "$role" != primary ] || die "$what: pg_default's images are not skipped: $row" \
				"see wtsmgr_tablespaces' reason and the server log in $work/logs" ;;
			*) die "$what: pg_default is not untorn with atomic writes: $row" \
				"see wtsmgr_tablespaces' reason and the server log in $work/logs" ;;
		esac
	fi
}

# Wait (up to 20 s) until wtsmgr's published decision for pg_default is
# "skipped", which follows the announcement after each checkpoint's start.
wait_skipped()
{
	local p=$1 i
	for i in $(seq 1 100); do
		[ "$(q "$p" -c "SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")" = skipped ] && return 0
		sleep 0.2
	done
	die "wtsmgr never skipped pg_default's images on port $p" \
		"$(q "$p" -c "SELECT full_page_images || ': ' || reason FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")"
}

# Copy of the template into $1: a real copy (XFS on 6.18 refuses atomic
# writes to blocks shared by reflink with ENOSPC), written out before the
# run, with the configuration's settings appended.
copy_template()
{
	local to=$1 config=$2
	shift 2
	rm -rf "$to"
	as_user cp -a --reflink=never "$dir/template" "$to"
	rm -f "$to/postmaster.pid"
	{
		config_conf "$config"
		printf '%s\n' "$@"
	} | as_user tee -a "$to/postgresql.conf" >/dev/null
	sync -f "$to"
}

drop_caches()
{
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

lsn_bytes()
{
	local h=${1%/*} l=${1#*/}
	echo $(((16#$h << 32) + 16#$l))
}

# SIGKILL the postmaster of data directory $1 and all its children: stop
# it first, so that it forks no one meanwhile, then kill them all at once,
# and wait until none is left running.
kill_server()
{
	local pm kids i live p
	pm=$(head -n 1 "$1/postmaster.pid")
	kill -STOP "$pm"
	kids=$(ps -o pid= --ppid "$pm" | tr -d ' ' | tr '\n' ' ')
	kill -KILL $kids "$pm"
	# zombies too: until reaped, a zombie postmaster's PID makes the next
	# start refuse the data directory ("lock file already exists")
	for i in $(seq 1 600); do
		live=0
		for p in $pm $kids; do [ -e "/proc/$p" ] && live=$((live + 1)); done
		[ "$live" -eq 0 ] && return 0
		sleep 0.05
	done
	die "server processes $pm $kids still exist 30 s after SIGKILL"
}

# Template: pgbench -i by the stock server, checkpointed, shut down cleanly.
say "making the data set: pgbench scale $scale, by the stock server"
PATH="$stock/bin:$PATH" init_cluster "$dir/template" "$port" "$sock" \
	"shared_preload_libraries = ''" "shared_buffers = 128MB" "autovacuum = off" \
	"log_checkpoints = on" "wal_receiver_status_interval = 1s"
as_user "$stock/bin/pg_ctl" -D "$dir/template" -l "$work/logs/template.log" -w start >/dev/null
as_user "$stock/bin/pgbench" -h "$sock" -p "$port" -i -s "$scale" -q postgres >"$work/logs/init.log" 2>&1
q "$port" -c CHECKPOINT
as_user "$stock/bin/pg_ctl" -D "$dir/template" -w stop >/dev/null
say "data set: $(du -sm "$dir/template/base" | cut -f1) MB of relations"

# One crash and recovery; appends a "crash" line to runs.tsv.
crash_run()
{
	local config=$1 rep=$2 pfx tag log redo0 pid t0 t1 redo start_lsn end_lsn wal fpi st txns
	local dev0 dev1 skipped ws
	pfx=$(config_prefix "$config")
	tag=crash-$config-$rep
	log=$work/logs/$tag.log
	copy_template "$dir/run" "$config" "checkpoint_timeout = 1h" "max_wal_size = 20GB"
	as_user "$pfx/bin/pg_ctl" -D "$dir/run" -l "$log" -w start >/dev/null
	if [ "$config" = wtsmgr ]; then
		q "$port" -c 'CREATE EXTENSION wtsmgr'
		wait_skipped "$port"
	fi
	# the checkpoint whose redo pointer recovery starts from
	q "$port" -c CHECKPOINT
	[ "$config" = wtsmgr ] && wait_skipped "$port" && q "$port" -c 'SELECT wtsmgr_stat_reset()' >/dev/null
	check_config "$config" "$port" "$tag" primary
	redo0=$(q "$port" -c 'SELECT redo_lsn FROM pg_control_checkpoint()')
	say "$tag: pgbench, $clients clients, SIGKILL after $seconds s"
	as_user "$pfx/bin/pgbench" -h "$sock" -p "$port" -n -c "$clients" -j 2 -T $((seconds + 600)) \
		postgres >"$work/logs/$tag.pgbench" 2>&1 &
	pid=$!
	sleep "$seconds"
	skipped=-
	[ "$config" = wtsmgr ] && skipped=$(q "$port" -c 'SELECT sum(fpi_skipped) FROM wtsmgr_stat_io')
	kill_server "$dir/run"
	wait "$pid" || true			# pgbench loses its connections
	# what recovery will replay, read now (before the page cache is dropped)
	# (pg_waldump fails at the end of the WAL, after the figures)
	fpi=$( (as_user "$pfx/bin/pg_waldump" -p "$dir/run/pg_wal" -s "$redo0" --stats 2>/dev/null || true) |
		awk '$1 == "Total" { print $2, $3, $5 }')
	[ -n "$fpi" ] || die "$tag: pg_waldump --stats printed no total from $redo0"
	set -- $fpi					# records, record bytes, image bytes
	case $config in
		stock_fpw_on) [ "$3" -gt 0 ] || die "$tag: the WAL has no full-page images" "full_page_writes did not act" ;;
		wtsmgr) [ "$skipped" -gt 0 ] || die "$tag: wtsmgr_stat_io counts no image left out" \
			"wtsmgr did not skip images; see $log" ;;
	esac
	drop_caches
	dev0=$(dev_blocks)
	t0=$(date +%s.%N)
	# (pg_ctl says "another server might be running": the stale lock file)
	as_user "$pfx/bin/pg_ctl" -D "$dir/run" -l "$log" -w -t 3600 start >"$work/logs/$tag.pg_ctl" 2>&1 ||
		die "$tag: the server did not start after the crash" "see $log"
	t1=$(date +%s.%N)
	dev1=$(dev_blocks)
	grep -q 'database system was not properly shut down' "$log" ||
		die "$tag: the start needed no crash recovery" "see $log"
	redo=$(sed -n 's/.*redo done at .* elapsed: \([0-9.]*\) s.*/\1/p' "$log" | tail -n 1)
	start_lsn=$(sed -n 's/.*redo starts at \([0-9A-F]*\/[0-9A-F]*\).*/\1/p' "$log" | tail -n 1)
	end_lsn=$(sed -n 's/.*redo done at \([0-9A-F]*\/[0-9A-F]*\) .*/\1/p' "$log" | tail -n 1)
	[ -n "$redo" ] && [ -n "$start_lsn" ] && [ -n "$end_lsn" ] ||
		die "$tag: no \"redo starts at\" / \"redo done at\" lines in $log"
	[ "$start_lsn" = "$redo0" ] || die "$tag: redo started at $start_lsn, not at the checkpoint's $redo0" "see $log"
	wal=$(($(lsn_bytes "$end_lsn") - $(lsn_bytes "$start_lsn")))
	st=$(echo "$t1 $t0" | awk '{ printf "%.2f", $1 - $2 }')
	check_config "$config" "$port" "$tag after recovery"
	[ "$config" = wtsmgr ] && ws=$(q "$port" -c "SELECT write_path FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")
	[ "$(q "$port" -c "$pgbench_balances_agree")" = t ] ||
		die "$tag: pgbench's balances disagree after recovery" "see $log"
	txns=$(q "$port" -c 'SELECT count(*) FROM pgbench_history')
	as_user "$pfx/bin/pg_ctl" -D "$dir/run" -w stop >/dev/null
	local rd wr
	read -r rd wr < <(echo $dev0 $dev1 | awk '{ if ($1 == "-") print "- -"; else print $3 - $1, $4 - $2 }')
	# crash config rep redo_s start_s wal_bytes records record_bytes fpi_bytes txns dev_read dev_written fpi_skipped
	printf 'crash\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$config" "$rep" "$redo" "$st" \
		"$wal" "$1" "$2" "$3" "$txns" "$rd" "$wr" "$skipped" >>"$runs"
	say "$tag: redo $redo s, start to ready $st s; $((wal / 1048576)) MB of WAL ($(($3 / 1048576)) MB images), $txns transactions; device blocks read $rd, written $wr${ws:+; write path $ws}"
}

# wait_replayed PORT LSN SECONDS MESSAGE HINT: until the standby on PORT
# has replayed the WAL up to LSN, or die after SECONDS
wait_replayed()
{
	local i
	for i in $(seq 1 $(($3 * 10))); do
		[ "$(q "$1" -c "SELECT pg_last_wal_replay_lsn() >= '$2'")" = t ] && return 0
		sleep 0.1
	done
	die "$4" "$5"
}

# One primary and standby under pgbench; appends a "lag" line to runs.tsv.
lag_run()
{
	local config=$1 rep=$2 pfx tag plog slog pid cur row sb i t0 t1 end_lsn lsn0 n
	pfx=$(config_prefix "$config")
	tag=lag-$config-$rep
	plog=$work/logs/$tag-primary.log
	slog=$work/logs/$tag-standby.log
	local conf=("checkpoint_timeout = 30s" "max_wal_size = 1GB")
	copy_template "$dir/primary" "$config" "${conf[@]}"
	# the standby starts from the same clean shutdown checkpoint
	copy_template "$dir/standby" "$config" "${conf[@]}" "port = $sport" \
		"primary_conninfo = 'host=$sock port=$port application_name=standby'"
	as_user touch "$dir/standby/standby.signal"
	as_user "$pfx/bin/pg_ctl" -D "$dir/primary" -l "$plog" -w start >/dev/null
	as_user "$pfx/bin/pg_ctl" -D "$dir/standby" -l "$slog" -w start >/dev/null
	if [ "$config" = wtsmgr ]; then
		q "$port" -c 'CREATE EXTENSION wtsmgr'
		wait_skipped "$port"
	fi
	q "$port" -c CHECKPOINT
	[ "$config" = wtsmgr ] && wait_skipped "$port"
	# the standby has replayed all of it, streaming
	lsn0=$(q "$port" -c 'SELECT pg_current_wal_lsn()')
	wait_replayed "$sport" "$lsn0" 30 "$tag: the standby did not catch up before pgbench" "see $slog"
	[ "$(q "$port" -c "SELECT state FROM pg_stat_replication WHERE application_name = 'standby'")" = streaming ] ||
		die "$tag: the standby is not streaming" "see $slog"
	[ "$(q "$sport" -c 'SELECT pg_is_in_recovery()')" = t ] || die "$tag: the standby is not in recovery" "see $slog"
	check_config "$config" "$port" "$tag primary" primary
	check_config "$config" "$sport" "$tag standby"
	q "$port" -c "SELECT pg_stat_reset_shared('wal')" >/dev/null
	drop_caches
	say "$tag: pgbench on the primary, $clients clients, $lag_seconds s"
	lsn0=$(q "$port" -c 'SELECT pg_current_wal_lsn()')
	as_user "$pfx/bin/pgbench" -h "$sock" -p "$port" -n -c "$clients" -j 2 -T "$lag_seconds" \
		postgres >"$work/logs/$tag.pgbench" 2>&1 &
	pid=$!
	: >"$work/samples"
	t0=$(date +%s.%N)
	n=0
	# one sample a second while pgbench runs: sent - replay bytes and
	# replay_lag seconds (pg_stat_replication), primary current LSN -
	# standby replay LSN bytes
	while kill -0 "$pid" 2>/dev/null; do
		n=$((n + 1))
		sleep "$(echo "$t0 + $n - $(date +%s.%N)" | bc | awk '{ print ($1 > 0 ? $1 : 0) }')"
		kill -0 "$pid" 2>/dev/null || break
		row=$(q "$port" -F ' ' -c "SELECT pg_current_wal_lsn(), pg_wal_lsn_diff(sent_lsn, replay_lsn),
			coalesce(extract(epoch FROM replay_lag), 0) FROM pg_stat_replication WHERE application_name = 'standby'")
		[ -n "$row" ] || die "$tag: the standby left pg_stat_replication under load" "see $slog"
		set -- $row
		# asked after the primary: 0 when it has replayed past that LSN
		sb=$(q "$sport" -c "SELECT greatest(0, pg_wal_lsn_diff('$1', pg_last_wal_replay_lsn()))")
		echo "$2 $3 $sb" >>"$work/samples"
	done
	wait "$pid" || die "$tag: pgbench failed" "see $work/logs/$tag.pgbench"
	t1=$(date +%s.%N)
	end_lsn=$(q "$port" -c 'SELECT pg_current_wal_lsn()')
	wait_replayed "$sport" "$end_lsn" 600 "$tag: the standby did not catch up in 600 s" "see $slog"
	local catchup tps wal fpis
	catchup=$(echo "$(date +%s.%N) $t1" | awk '{ printf "%.1f", $1 - $2 }')
	tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$work/logs/$tag.pgbench")
	wal=$(q "$port" -c "SELECT pg_wal_lsn_diff('$end_lsn', '$lsn0')::bigint")
	fpis=$(q "$port" -c 'SELECT wal_fpi FROM pg_stat_wal')
	[ "$config" != stock_fpw_on ] || [ "$fpis" -gt 0 ] || die "$tag: the primary wrote no full-page images"
	check_config "$config" "$sport" "$tag standby after the run"
	if grep -q 'lacks full-page images' "$slog"; then
		die "$tag: the standby warns that its storage may tear" "see $slog"
	fi
	as_user "$pfx/bin/pg_ctl" -D "$dir/standby" -w stop >/dev/null
	as_user "$pfx/bin/pg_ctl" -D "$dir/primary" -w stop >/dev/null
	local stats
	# per run: median and max of each sample column
	stats=$("$report_cmd" spread "$work/samples" 3)
	set -- $stats
	# lag config rep tps wal_bytes wal_fpi samples sent-replay(med max) replay_lag(med max) current-standby(med max) catchup_s
	printf 'lag\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$config" "$rep" "$tps" "$wal" "$fpis" \
		"$(wc -l <"$work/samples")" "$1" "$2" "$3" "$4" "$5" "$6" "$catchup" >>"$runs"
	cp "$work/samples" "$work/logs/$tag.samples"
	say "$tag: tps ${tps%.*}, $((wal / 1048576)) MB of WAL, $fpis images; sent-replay median/max $(($1 / 1024))/$(($2 / 1024)) kB, replay_lag median/max $3/$4 s, behind the primary median/max $(($5 / 1024))/$(($6 / 1024)) kB; caught up $catchup s after pgbench"
}

for part in $parts; do
	for rep in $(seq 1 "$repeats"); do
		for config in $configs; do
			if [ "$part" = crash ]; then crash_run "$config" "$rep"; else lag_run "$config" "$rep"; fi
		done
	done
done

# The report.
# col PART CONFIG K [DIVISOR FORMAT]: field K of each run in order, divided
# by DIVISOR, printed with FORMAT, joined by " / "; med: their median
# (bench/bench-report)
col()
{
	"$report_cmd" runs "$runs" "$@"
}

med()
{
	"$report_cmd" median "$runs" "$@"
}

elapsed=$(($(date +%s) - t_start))
report=$out/report.md
{
	echo "# Replay without full-page images: crash recovery and standby lag"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) cores, load average"
	echo "$load_start at the start and $(cut -d' ' -f1-3 /proc/loadavg) at the end; $elapsed s in all."
	echo "Command: \`$cmdline\`"
	echo
	echo "pgbench TPC-B scale $scale, $clients clients, data on XFS on a loop device"
	echo "(software atomic writes), data checksums on, shared_buffers 128MB,"
	echo "autovacuum off; $repeats run(s) of each configuration, alternating; \"runs\""
	echo "lists each run in order, \"median\" is over the runs.  1 MB = 2^20 bytes."

	if has "$parts" crash; then
		echo
		echo "## Crash recovery"
		echo
		echo "CHECKPOINT, pgbench for $seconds s, SIGKILL of the postmaster and all its"
		echo "children during the run (checkpoint_timeout 1h: recovery replays all the"
		echo "WAL since that checkpoint), sync and page cache dropped, start.  Redo: the"
		echo "server's \"redo done ... elapsed\"; ready: from pg_ctl start until it"
		echo "accepts connections (includes the end-of-recovery checkpoint).  WAL: from"
		echo "the \"redo starts at\" to the \"redo done at\" LSN; images: pg_waldump"
		echo "--stats' FPI bytes of it; transactions: pgbench_history's rows after"
		echo "recovery; device: 8 kB blocks read from the data's loop device during"
		echo "the start (shared with other users of the filesystem)."
		echo
		echo "| configuration | redo s (runs) | redo s | ready s (runs) | ready s | WAL MB | images MB | transactions | redo µs/txn | device blocks read |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		for c in $configs; do
			# redo seconds over transactions, in µs
			perx=$(med crash "$c" 4/10 0.000001 %.0f)
			echo "| $c | $(col crash "$c" 4 1 %.2f) | $(med crash "$c" 4 1 %.2f) | $(col crash "$c" 5 1 %.2f) | $(med crash "$c" 5 1 %.2f) | $(med crash "$c" 6 1048576 %.0f) | $(med crash "$c" 9 1048576 %.0f) | $(med crash "$c" 10 1 %.0f) | $perx | $(med crash "$c" 11 1 %.0f) |"
		done
	fi

	if has "$parts" lag; then
		echo
		echo "## Standby replay lag under load"
		echo
		echo "Primary and streaming standby, both on the atomic XFS filesystem with the"
		echo "same configuration, checkpoint_timeout 30s, wal_receiver_status_interval"
		echo "1s; page cache dropped, then pgbench on the primary for $lag_seconds s, sampled"
		echo "every second.  sent-replay: pg_stat_replication's sent_lsn - replay_lsn;"
		echo "behind: the primary's pg_current_wal_lsn() - the standby's"
		echo "pg_last_wal_replay_lsn(), asked just after (0 when it had replayed past it);"
	echo "replay_lag: pg_stat_replication's, in seconds (0 when NULL: caught up).  Per"
		echo "run the median and the maximum of the samples, then the median of those"
		echo "over the runs; catch-up: seconds from pgbench's end until the standby has"
		echo "replayed the primary's WAL up to its LSN then."
		echo
		echo "| configuration | TPS | WAL MB | images | sent-replay kB median | max (runs) | behind kB median | max (runs) | replay_lag s median | max (runs) | catch-up s (runs) |"
		echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
		for c in $configs; do
			echo "| $c | $(med lag "$c" 4 1 %.0f) | $(med lag "$c" 5 1048576 %.0f) | $(med lag "$c" 6 1 %.0f) | $(med lag "$c" 8 1024 %.0f) | $(med lag "$c" 9 1024 %.0f) ($(col lag "$c" 9 1024 %.0f)) | $(med lag "$c" 12 1024 %.0f) | $(med lag "$c" 13 1024 %.0f) ($(col lag "$c" 13 1024 %.0f)) | $(med lag "$c" 10 1 %.2f) | $(med lag "$c" 11 1 %.2f) ($(col lag "$c" 11 1 %.2f)) | $(med lag "$c" 14 1 %.1f) ($(col lag "$c" 14 1 %.1f)) |"
		done
	fi
} >"$report"
{
	echo "# part config rep: crash: redo_s ready_s wal_bytes records record_bytes fpi_bytes txns dev_blocks_read dev_blocks_written fpi_skipped"
	echo "# part config rep: lag: tps wal_bytes wal_fpi samples sent_replay_med sent_replay_max replay_lag_med replay_lag_max behind_med behind_max catchup_s"
	cat "$runs"
} >"$out/runs.tsv"
echo
cat "$report"
say "report in $report, runs in $out/runs.tsv"
