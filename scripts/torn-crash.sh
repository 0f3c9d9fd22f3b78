#!/usr/bin/env bash
# scripts/torn-crash.sh -- a disk that loses and tears writes at a crash,
# under stock PostgreSQL (full_page_writes on and off) and under wtsmgr.
#
# Usage: scripts/torn-crash.sh PREFIX WORKDIR
#
# Needs root (FUSE, loop devices, mounts); its servers run as the
# unprivileged user.  PREFIX is a server with wtsmgr installed (the debug
# server in CI).
#
# The device: test/tornsim serves an image file through FUSE and logs, in
# order, every write (offset, length, data) and every flush that reaches
# it.  A loop device over the served file (--direct-io=on, so that the loop
# driver passes each write and flush straight to the file, and a flush is a
# real fsync of it; --sector-size WTSMGR_TORN_SECTOR, default 4096) carries
# an XFS filesystem (reflink, hence XFS's software atomic writes) with the
# whole data directory, pg_wal included.
#
# For each configuration -- stock-fpw-on (full_page_writes = on),
# stock-fpw-off (full_page_writes = off), wtsmgr (wtsmgr preloaded, images
# left out), wtsmgr-doublewrite (the same, with every atomic write refused
# with ENOSPC, so that every write of a relation block goes through the
# doublewrite area) -- a cluster is made there, pgbench is initialized, a
# mark is logged, and pgbench runs WTSMGR_TORN_SECONDS seconds (default 20)
# with a CHECKPOINT every 3 seconds.  pg_walinspect then counts the block
# references of the workload's WAL and those with an image: wtsmgr must
# have left (nearly) all of them out.
#
# wtsmgr-doublewrite refuses atomic writes with test/wtsmgr_test's
# wtsmgr_test_fail_writes(), attached after pgbench's initialization and
# never detached (it lives in shared memory: the servers started on the
# crash states have none, so their recovery writes atomically again).  The
# server log must warn that atomic writes fail, and the device's log must
# show it: the physical extents of pg_wtsmgr/doublewrite and of the
# relation files (FIEMAP, while mounted) name areas of the device, and
# tornreplay areas must find relation pages written into the doublewrite
# area and in place, none elsewhere, and each page written in place after
# the same bytes were written into the area and flushed.  Every other state
# is aimed at an in-place write (tornreplay plan --target relation), the
# others at any write of a relation page, copies included: aimed only as in
# the other configurations, about one state in seven tears a page in place,
# and 30 states would find none about once in a hundred runs.  A state's
# torn relation pages are counted by area: those in the relation files'
# extents are tears of in-place writes, which the startup process must
# repair ("restored N blocks from doublewrite area", in every such state).
# After each state's clean shutdown no region header may be left valid.  As
# a control, the states that tore a page in place are replayed again with
# the region headers zeroed in the image before the start (the repair finds
# nothing, as if the copies had never been made): at least one must then be
# corrupted, so that the clean recoveries are the repair's doing.
#
# Then WTSMGR_TORN_STATES crash states per configuration (default 30) are
# drawn by test/tornsim's tornreplay, with a seed printed here
# (WTSMGR_TORN_SEED sets it): each state keeps every write before a flush
# and applies each write after it, up to the crash point, whole, not at all,
# or torn (only some of its sectors).  States are aimed at moments when
# relation pages are in flight (see tornreplay.c).  For each state the image
# is loop-mounted (XFS log recovery), the server started (crash recovery),
# and then pgbench's balances must agree, pg_amcheck --heapallindexed must
# be clean, and after a clean shutdown pg_checksums must verify every page;
# any failure, including a mount or a recovery that fails, makes the state
# corrupted.
#
# Must show: stock-fpw-off corrupted in at least one state (the negative
# control: a simulator that cannot tear would find nothing), and the same
# states replayed with tornreplay --no-tear (writes lost, none torn)
# corrupted in none, so that what corrupts is tearing; stock-fpw-on and
# wtsmgr corrupted in no state, with states that tore relation pages in
# both; wtsmgr-doublewrite corrupted in no state, with states that tore a
# relation page in place.  Prints TAP lines and a table; a state where
# wtsmgr corrupts keeps its log and prints the command that rebuilds its
# image.
#
# Settings (environment):
#   WTSMGR_TORN_STATES    crash states per configuration (default 30)
#   WTSMGR_TORN_SEED      seed of the states drawn (default: from the clock)
#   WTSMGR_TORN_SECTOR    loop device sector size, 4096 or 512 (default 4096)
#   WTSMGR_TORN_SECONDS   pgbench seconds per configuration (default 20)
#   WTSMGR_TORN_SCALE     pgbench scale (default 2)
#   WTSMGR_TORN_CONFIGS   configurations to run (default all four)
#   WTSMGR_TORN_STOCK_PREFIX  server for the stock configurations (default
#                         PREFIX, without wtsmgr preloaded); e.g. the one
#                         scripts/build-server.sh --flavor stock prints
#   WTSMGR_TORN_MOUNT     mount point (default /mnt/wtsmgr-torn-PID, removed
#                         afterwards)
#   WTSMGR_TORN_IMAGES    where to make the directory for crash images
#                         (default /dev/shm when it exists, else WORKDIR)
#   WTSMGR_TORN_KEEP      1: keep every log and plan (default: only those
#                         of a configuration whose result is unexpected)
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$1
workdir=$2
states=${WTSMGR_TORN_STATES:-30}
seed=${WTSMGR_TORN_SEED:-$(date +%s%N | cut -c1-15)}
sector=${WTSMGR_TORN_SECTOR:-4096}
seconds=${WTSMGR_TORN_SECONDS:-20}
scale=${WTSMGR_TORN_SCALE:-2}
configs=${WTSMGR_TORN_CONFIGS:-stock-fpw-on stock-fpw-off wtsmgr wtsmgr-doublewrite}
stock_prefix=${WTSMGR_TORN_STOCK_PREFIX:-$prefix}
mnt=${WTSMGR_TORN_MOUNT:-/mnt/wtsmgr-torn-$$}
keep=${WTSMGR_TORN_KEEP:-0}
device_size=$((1024 * 1024 * 1024))

skip_unless_root "the torn-write simulator needs root (FUSE, loop devices, mounts)"
case $sector in
	512|4096) ;;
	*) die "WTSMGR_TORN_SECTOR must be 512 or 4096, not '$sector'" ;;
esac
[ -e /dev/fuse ] || die "/dev/fuse is missing" "load the fuse module (modprobe fuse)"
pkg-config --exists fuse3 || die "libfuse3 is missing" "apt-get install libfuse3-dev fuse3"
command -v fusermount3 >/dev/null || die "fusermount3 is missing" "apt-get install fuse3"
command -v mkfs.xfs >/dev/null || die "mkfs.xfs is missing" "apt-get install xfsprogs"
command -v filefrag >/dev/null || die "filefrag is missing" "apt-get install e2fsprogs"
mountpoint -q "$mnt" && die "$mnt is already mounted" \
	"another torn-crash.sh may be using it; unmount it or set WTSMGR_TORN_MOUNT to another directory"

mkdir -p "$workdir" "$mnt"
workdir=$(cd "$workdir" && pwd)
chown "$WTSMGR_USER" "$workdir"
# a directory of our own, removed at the end
if [ -n "${WTSMGR_TORN_IMAGES:-}" ]; then
	images=$WTSMGR_TORN_IMAGES/wtsmgr-torn-$$
elif [ -d /dev/shm ]; then
	images=/dev/shm/wtsmgr-torn-$$
else
	images=$workdir/images-$$
fi
mkdir -p "$images"
sock=$workdir/sock
mkdir -p "$sock"
chown "$WTSMGR_USER" "$sock"
port=$((40000 + $$ % 10000))
bin=$workdir/bin
mkdir -p "$bin"
make -s -C "$WTSMGR_ROOT/test/tornsim" BUILD_DIR="$bin" >"$workdir/build.log" 2>&1 ||
	{ cat "$workdir/build.log" >&2; die "cannot build test/tornsim" "see $workdir/build.log"; }

# The doublewrite area: 16 regions of a 4 kB header and 16 blocks of 8 kB
# (wtsmgr_doublewrite.c); in 4 kB filesystem blocks.
dw_regions=16
dw_region_blocks=$(((4096 + 16 * 8192) / 4096))

# What is running, for cleanup: the server's data directory and binaries,
# the FUSE server, loop devices, mounts.
cur_pgdata=
cur_bindir=
fuse_pid=
fuse_mnt=
loopdev=

pg()
{
	local b=$1
	shift
	as_user "$cur_bindir/$b" "$@"
}

q()
{
	pg psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" "$@" </dev/null
}

stop_server()
{
	if [ -n "$cur_pgdata" ] && [ -f "$cur_pgdata/postmaster.pid" ]; then
		pg pg_ctl -D "$cur_pgdata" -m immediate stop >/dev/null 2>&1 || true
	fi
}

unmount_all()
{
	local _
	stop_server
	unmount_retry "$mnt" || true
	if [ -n "$loopdev" ]; then
		losetup -d "$loopdev" 2>/dev/null || true
		loopdev=
	fi
	if [ -n "$fuse_mnt" ] && mountpoint -q "$fuse_mnt"; then
		fusermount3 -u "$fuse_mnt" 2>/dev/null || umount -l "$fuse_mnt" 2>/dev/null || true
	fi
	fuse_mnt=
	if [ -n "$fuse_pid" ]; then
		wait "$fuse_pid" 2>/dev/null || true
		fuse_pid=
	fi
}

cleanup()
{
	unmount_all
	rm -rf "$images"
	[ -n "${WTSMGR_TORN_MOUNT:-}" ] || rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT

case " $configs " in
	*" wtsmgr-doublewrite "*)
		# it needs injection points; pg_config's output is read whole, since
		# piped into grep -q it could die of SIGPIPE under pipefail
		case $("$prefix/bin/pg_config" --configure) in
			*--enable-injection-points*) ;;
			*)
				die "wtsmgr-doublewrite needs a server built with --enable-injection-points, which $prefix is not" \
					"use scripts/build-server.sh --flavor debug, or leave wtsmgr-doublewrite out of WTSMGR_TORN_CONFIGS" ;;
		esac
		# the test-only module that refuses atomic writes, loaded by path
		module=$WTSMGR_ROOT/test/wtsmgr_test/wtsmgr_test
		make -s -C "$(dirname "$module")" PG_CONFIG="$prefix/bin/pg_config" \
			>"$workdir/module.log" 2>&1 ||
			die "cannot build test/wtsmgr_test" "see $workdir/module.log"
		chmod a+r "$module.so"
		# injection point callbacks are loaded relative to $libdir
		module_from_libdir=$(realpath --relative-to="$("$prefix/bin/pg_config" --pkglibdir)" "$module")
		;;
esac

# Wait up to 10 s for a mount to appear.
wait_mounted()
{
	local _
	for _ in $(seq 1 50); do
		mountpoint -q "$1" && return 0
		sleep 0.2
	done
	return 1
}

# Where the doublewrite area and the relation files lie on the device, from
# FIEMAP while the filesystem is mounted: $1 = data directory, $2 = where
# to write "areas" (tornreplay's areas file: doublewrite and relation
# extents, in bytes) and "dw-headers" (the device offset of each region's
# header).
map_areas()
{
	local pgdata=$1 d=$2
	# filefrag -e: "N: LSTART.. LEND: PSTART.. PEND: LEN: [EXPECTED:] FLAGS"
	# in 4 kB blocks; extents without a place on disk yet are skipped.
	# shellcheck disable=SC2016
	local extents='
		/^ *[0-9]+: / && !/unknown_loc|delalloc|inline/ {
			gsub(/\.\./, " "); gsub(/:/, " ")
			print $2, $4, $6
		}'
	filefrag -e -b4096 "$pgdata/pg_wtsmgr/doublewrite" | awk "$extents" >"$d/dw-extents"
	find "$pgdata/base" "$pgdata/global" -type f \
		-regextype posix-extended -regex '.*/[0-9]+(_fsm|_vm|_init)?(\.[0-9]+)?' -print0 |
		xargs -0 filefrag -e -b4096 | awk "$extents" >"$d/rel-extents"
	{
		awk '{ print "doublewrite", $2 * 4096, $3 * 4096 }' "$d/dw-extents"
		awk '{ print "relation", $2 * 4096, $3 * 4096 }' "$d/rel-extents"
	} >"$d/areas"
	awk -v n="$dw_regions" -v step="$dw_region_blocks" '
		{ l[NR] = $1; p[NR] = $2; c[NR] = $3 }
		END {
			for (r = 0; r < n; r++)
				for (i = 1; i <= NR; i++)
					if (r * step >= l[i] && r * step < l[i] + c[i])
						print (p[i] + r * step - l[i]) * 4096
		}' "$d/dw-extents" >"$d/dw-headers"
	[ "$(wc -l <"$d/dw-headers")" -eq "$dw_regions" ] ||
		die "could not map the $dw_regions region headers of $pgdata/pg_wtsmgr/doublewrite" \
			"see $d/dw-extents"
}

# Are all region headers of the doublewrite area zeros?  $1 = data
# directory.  Prints the regions that are not.
dw_valid_regions()
{
	local r
	for r in $(seq 0 $((dw_regions - 1))); do
		[ "$(dd if="$1/pg_wtsmgr/doublewrite" bs=4096 skip=$((r * dw_region_blocks)) count=1 \
			status=none | tr -d '\0' | wc -c)" -eq 0 ] || printf '%s ' "$r"
	done
}

# Record one configuration's workload on the logging device: $1 = name.
# Sets fpi_refs and all_refs (the workload's block references with an image,
# and all of them, from pg_walinspect).
record()
{
	local cfg=$1 d=$workdir/$1 pgdata=$mnt/pgdata dio bench start_lsn end_lsn

	mkdir -p "$d/fuse"
	chown "$WTSMGR_USER" "$d"
	truncate -s "$device_size" "$d/device.img"
	rm -f "$d/device.log"
	"$bin/tornsim" "$d/device.img" "$d/device.log" "$d/fuse" >"$d/tornsim.out" 2>&1 &
	fuse_pid=$!
	fuse_mnt=$d/fuse
	wait_mounted "$d/fuse" || die "tornsim did not mount $d/fuse" "see $d/tornsim.out"
	loopdev=$(losetup --direct-io=on --sector-size "$sector" -f --show "$d/fuse/disk")
	dio=$(losetup -n -O DIO "$loopdev" | tr -d ' ')
	[ "$dio" = 1 ] || die "$loopdev over $d/fuse/disk does not do direct I/O" \
		"the log would show the loop driver's page cache, not what the device received"
	mkfs.xfs -q -m reflink=1 "$loopdev" || die "mkfs.xfs failed on $loopdev"
	mount "$loopdev" "$mnt" || die "cannot mount $loopdev on $mnt"
	chown "$WTSMGR_USER" "$mnt"

	case $cfg in
		wtsmgr*) cur_bindir=$prefix/bin ;;
		*) cur_bindir=$stock_prefix/bin ;;
	esac
	cur_pgdata=$pgdata
	pg initdb -D "$pgdata" --no-instructions -A trust >"$d/initdb.log" 2>&1 ||
		die "initdb failed" "see $d/initdb.log"
	{
		echo "port = $port"
		echo "unix_socket_directories = '$sock'"
		echo "listen_addresses = ''"
		# small, so that backends and the background writer write too
		echo "shared_buffers = 16MB"
		# checkpoints come from this script, every 3 s
		echo "checkpoint_timeout = 1h"
		echo "max_wal_size = 256MB"
		echo "min_wal_size = 64MB"
		# pg_walinspect reads the whole workload's WAL afterwards
		echo "wal_keep_size = 512MB"
		echo "restart_after_crash = off"
		case $cfg in
			stock-fpw-on) echo "full_page_writes = on" ;;
			stock-fpw-off) echo "full_page_writes = off" ;;
			wtsmgr*)
				echo "full_page_writes = on"
				echo "shared_preload_libraries = 'wtsmgr'" ;;
		esac
	} | as_user tee -a "$pgdata/postgresql.conf" >/dev/null
	# Nothing fsyncs postgresql.conf: without this the crash states would
	# lose these lines (an administrator's file is durable long before).
	sync -f "$pgdata/postgresql.conf"
	pg pg_ctl -D "$pgdata" -l "$d/server.log" -w start >/dev/null ||
		die "the $cfg server did not start" "see $d/server.log"
	q -d postgres -c "CREATE DATABASE bench"
	q -d bench -c "CREATE EXTENSION amcheck" -c "CREATE EXTENSION pg_walinspect"
	case $cfg in
		wtsmgr*) q -d postgres -c "CREATE EXTENSION wtsmgr" ;;
	esac
	pg pgbench -h "$sock" -p "$port" --initialize --scale="$scale" --quiet bench \
		>"$d/init.log" 2>&1 </dev/null || die "pgbench -i failed" "see $d/init.log"
	q -d postgres -c CHECKPOINT
	if [ "$cfg" = wtsmgr-doublewrite ]; then
		# From here every atomic write fails, as on fragmented free space.
		q -d postgres -c "CREATE FUNCTION fail_writes(text, text) RETURNS void
				AS '$module', 'wtsmgr_test_fail_writes' LANGUAGE C STRICT" \
			-c "SELECT fail_writes('ENOSPC', '$module_from_libdir')" >/dev/null
	fi
	sync -f "$mnt"
	start_lsn=$(q -d postgres -c "SELECT pg_current_wal_insert_lsn()")
	echo workload >"$d/fuse/mark"
	pg pgbench -h "$sock" -p "$port" --no-vacuum --client=4 --jobs=2 --time="$seconds" bench \
		>"$d/pgbench.log" 2>&1 </dev/null &
	bench=$!
	while kill -0 "$bench" 2>/dev/null; do
		sleep 3
		if kill -0 "$bench" 2>/dev/null; then
			q -d postgres -c CHECKPOINT 2>/dev/null || true
		fi
	done
	wait "$bench" || die "pgbench failed on $cfg" "see $d/pgbench.log"
	end_lsn=$(q -d postgres -c "SELECT pg_current_wal_insert_lsn()")
	read -r fpi_refs all_refs < <(q -d bench -F ' ' -c "
		SELECT count(*) FILTER (WHERE block_fpi_length > 0), count(*)
		FROM pg_get_wal_block_info('$start_lsn', '$end_lsn', false)")
	tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$d/pgbench.log" | cut -d. -f1)
	case $cfg in
		wtsmgr*)
			untorn=$(q -d postgres -c "SELECT untorn_blocks AND full_page_images = 'skipped'
				FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'") ;;
	esac
	# Not detached: the server dies with it attached, and the device's log
	# says whether every write took the doublewrite area until then.
	if [ "$cfg" = wtsmgr-doublewrite ]; then
		map_areas "$pgdata" "$d"
	fi
	# The server dies with the device (the crash states come from the log).
	stop_server
	unmount_all
}

# Check one crash state: $1 = config, $2 = state number, $3 = its image.
# Sets res to the reasons it is corrupted, or to nothing.  Runs in this
# shell, not a subshell, so that cleanup knows the loop device.
check_state()
{
	local cfg=$1 k=$2 img=$3 d=$workdir/$1 pgdata=$mnt/pgdata out why=()
	local slog=$d/state-$k.log

	res=
	loopdev=$(losetup --sector-size "$sector" -f --show "$img")
	if ! out=$(mount "$loopdev" "$mnt" 2>&1); then
		res="XFS mount (log recovery) failed: $out"
		return
	fi
	cur_pgdata=$pgdata
	# The PID in a crashed server's lock file may belong to a live process
	# here (after a real power loss it could not): remove it.
	rm -f "$pgdata/postmaster.pid"
	rm -f "$slog"
	if ! pg pg_ctl -D "$pgdata" -l "$slog" -w -t 300 start >/dev/null 2>&1; then
		res="recovery failed: $(grep -E 'PANIC|FATAL|ERROR' "$slog" | head -n 2 | tr '\n' ' ')"
		return
	fi
	grep -q 'database system was interrupted' "$slog" ||
		why+=("no crash recovery ran")
	[ "$(q -d bench -c "$pgbench_balances_agree" 2>&1)" = t ] ||
		why+=("pgbench's balances disagree")
	pg pg_amcheck -h "$sock" -p "$port" --heapallindexed bench >"$d/state-$k-amcheck.log" 2>&1 </dev/null ||
		why+=("pg_amcheck: $(grep -v '^$' "$d/state-$k-amcheck.log" | head -n 2 | tr '\n' ' ')")
	if pg pg_ctl -D "$pgdata" -w -t 120 stop >/dev/null 2>&1; then
		pg pg_checksums --check -D "$pgdata" >"$d/state-$k-checksums.log" 2>&1 ||
			why+=("pg_checksums: $(grep -m 2 -i 'checksum verification failed\|error\|bad checksums' "$d/state-$k-checksums.log" | tr '\n' ' ')")
		# a valid region left would be written back at the next start,
		# over whatever its blocks hold by then
		if [ -f "$pgdata/pg_wtsmgr/doublewrite" ]; then
			out=$(dw_valid_regions "$pgdata")
			[ -z "$out" ] || why+=("regions $out of the doublewrite area are valid after a clean shutdown")
		fi
	else
		why+=("clean shutdown failed")
	fi
	if [ ${#why[@]} -gt 0 ]; then
		local IFS=';'
		res="${why[*]}"
	fi
}

# The crash states of one configuration: $1 = config, $2 = the label its
# figures go under, $3 = extra options of tornreplay build (--no-tear), $4 =
# "unrepaired": only the states of $d/inplace-states (those that tore a
# relation page in place), with the doublewrite area's region headers
# zeroed in the image before the start.  Sets n_tried, n_clean, n_corrupt,
# n_torn (states with a torn relation page) and, with an areas file (the
# doublewrite configuration), n_torn_inplace (states with a torn relation
# page in a relation file's extents: an in-place write torn), n_restored
# (states whose startup process restored blocks from the doublewrite
# area), n_restored_blocks, n_ignored (states where it ignored a region),
# n_unrepaired (states with an in-place tear and no restore).
replay_states()
{
	local cfg=$1 label=$2 extra=${3:-} mode=${4:-} d=$workdir/$1 k flush crash sseed tail torn
	local img=$images/$cfg-state.img prefix_img=$images/$cfg-prefix.img areas=() slog off
	local inplace blocks
	n_tried=0 n_clean=0 n_corrupt=0 n_torn=0
	n_torn_inplace=0 n_restored=0 n_restored_blocks=0 n_ignored=0 n_unrepaired=0
	[ -f "$d/areas" ] && areas=(--areas "$d/areas")
	if [ ! -f "$d/plan" ]; then
		"$bin/tornreplay" stats "$d/device.log" | sed 's/^/# '"$cfg"': log: /'
		"$bin/tornreplay" plan "$d/device.log" --mark workload --states "$states" --seed "$seed" \
			${areas[@]:+"${areas[@]}" --target relation} \
			>"$d/plan" || die "tornreplay plan failed for $cfg"
		echo "# $cfg: $(head -n 1 "$d/plan")"
	fi
	[ "$mode" = unrepaired ] || : >"$d/inplace-states"
	while read -r _ k _ flush _ crash _ sseed <&3; do
		if [ "$mode" = unrepaired ] && ! grep -qx "$k" "$d/inplace-states"; then
			continue
		fi
		# shellcheck disable=SC2086
		tail=$("$bin/tornreplay" build "$d/device.log" --flush "$flush" --crash "$crash" \
			--seed "$sseed" --sector "$sector" --size "$device_size" \
			--prefix "$prefix_img" $extra "${areas[@]}" --out "$img") ||
			die "tornreplay build failed for $cfg state $k"
		if [ "$mode" = unrepaired ]; then
			# XFS's log recovery replays no file data: these blocks stay zeros
			while read -r off; do
				dd if=/dev/zero of="$img" bs=4096 seek=$((off / 4096)) count=1 \
					conv=notrunc status=none
			done <"$d/dw-headers"
		fi
		check_state "$cfg" "$label-$k" "$img"
		unmount_all
		rm -f "$img"
		n_tried=$((n_tried + 1))
		torn=$(echo "$tail" | sed -n 's/.*in flight, \([0-9]*\) torn.*/\1/p')
		[ "${torn:-0}" -gt 0 ] && n_torn=$((n_torn + 1))
		if [ ${#areas[@]} -gt 0 ]; then
			slog=$d/state-$label-$k.log
			inplace=$(echo "$tail" | sed -n 's/.*torn by area:.* relation \([0-9]*\),.*/\1/p')
			if [ "${inplace:-0}" -gt 0 ]; then
				n_torn_inplace=$((n_torn_inplace + 1))
				[ "$mode" = unrepaired ] || echo "$k" >>"$d/inplace-states"
			fi
			blocks=$(sed -n 's/.*restored \([0-9]*\) blocks\{0,1\} from doublewrite area.*/\1/p' "$slog" 2>/dev/null | head -n 1)
			if [ -n "$blocks" ]; then
				n_restored=$((n_restored + 1))
				n_restored_blocks=$((n_restored_blocks + blocks))
				tail="$tail; restored $blocks blocks"
			elif [ "${inplace:-0}" -gt 0 ]; then
				n_unrepaired=$((n_unrepaired + 1))
				tail="$tail; nothing restored"
			fi
			if grep -q 'ignored region [0-9]* of doublewrite area' "$slog" 2>/dev/null; then
				n_ignored=$((n_ignored + 1))
				tail="$tail; ignored $(grep -c 'ignored region [0-9]* of doublewrite area' "$slog") regions"
			fi
		fi
		if [ -z "$res" ]; then
			n_clean=$((n_clean + 1))
			echo "# $label state $k (flush $flush crash $crash seed $sseed): $tail; clean"
		else
			n_corrupt=$((n_corrupt + 1))
			echo "# $label state $k (flush $flush crash $crash seed $sseed): $tail; CORRUPTED: $res"
			case $label in
				stock-fpw-off|*-unrepaired) ;;
				*)
					keep_cfg=1
					echo "#   rebuild it: $bin/tornreplay build $d/device.log --flush $flush --crash $crash --seed $sseed --sector $sector --size $device_size${extra:+ $extra} --out IMAGE"
					echo "#   then: losetup --sector-size $sector -f --show IMAGE, mount it, start the server on pgdata/ there (logs: $d/state-$label-$k*.log)"
					;;
			esac
		fi
	done 3< <(grep '^state ' "$d/plan")
	rm -f "$prefix_img" "$prefix_img.pos"
}

say "torn-write crash simulator: $states states per configuration, seed $seed, ${sector}-byte sectors, pgbench ${seconds} s at scale $scale"
echo "# seed $seed, sector $sector bytes, $states states per configuration, pgbench $seconds s scale $scale"
[ "$stock_prefix" != "$prefix" ] && echo "# stock configurations run $stock_prefix"
declare -A r_tried r_clean r_corrupt r_torn r_fpi r_refs r_secs r_tps
declare -A r_inplace r_restored r_blocks r_ignored r_unrepaired
t_all=$(date +%s)
all_labels=
for cfg in $configs; do
	case $cfg in
		stock-fpw-on|stock-fpw-off|wtsmgr|wtsmgr-doublewrite) ;;
		*) die "unknown configuration '$cfg'" "use stock-fpw-on, stock-fpw-off, wtsmgr, wtsmgr-doublewrite" ;;
	esac
	t0=$(date +%s)
	keep_cfg=$keep
	untorn=
	say "$cfg: recording pgbench on the logging device"
	record "$cfg"
	r_fpi[$cfg]=$fpi_refs
	r_refs[$cfg]=$all_refs
	r_tps[$cfg]=${tps:-?}
	echo "# $cfg: pgbench $tps tps; the workload's WAL has $all_refs block references, $fpi_refs of them with an image"
	case $cfg in
		wtsmgr*)
			tap_check "$([ "$untorn" = t ] && echo 1)" "$cfg: pg_default on XFS over the logging device is untorn and its images are skipped (${untorn:-no row})" ;;
	esac
	if [ "$cfg" = wtsmgr-doublewrite ]; then
		d=$workdir/$cfg
		warning=$(grep -m 1 'WARNING:.*atomic writes to tablespace .* fail: No space left on device' "$d/server.log" || true)
		tap_check "$([ -n "$warning" ] && echo 1)" \
			"$cfg: the server warned that atomic writes fail (${warning:-no warning})"
		"$bin/tornreplay" areas "$d/device.log" --mark workload --areas "$d/areas" \
			--copies doublewrite >"$d/areas.out" || die "tornreplay areas failed for $cfg"
		sed 's/^/# '"$cfg"': device log: /' "$d/areas.out"
		a_dw=$(sed -n 's/^area doublewrite: \([0-9]*\) relation pages.*/\1/p' "$d/areas.out")
		a_rel=$(sed -n 's/^area relation: \([0-9]*\) relation pages.*/\1/p' "$d/areas.out")
		a_none=$(sed -n 's/^area none: \([0-9]*\) relation pages.*/\1/p' "$d/areas.out")
		a_copied=$(sed -n 's/^outside doublewrite: [0-9]* relation pages, \([0-9]*\) after.*/\1/p' "$d/areas.out")
		a_uncopied=$(sed -n 's/^outside doublewrite: .*, \([0-9]*\) without$/\1/p' "$d/areas.out")
		tap_check "$([ "${a_dw:-0}" -gt 0 ] && [ "${a_rel:-0}" -gt 0 ] && [ "${a_none:-1}" -eq 0 ] &&
			[ "${a_uncopied:-1}" -eq 0 ] && echo 1)" \
			"$cfg: the device received ${a_dw:-?} relation pages in the doublewrite area's extents and ${a_rel:-?} in the relation files', ${a_none:-?} elsewhere; ${a_copied:-?} written in place after a durable copy of the same bytes in the area, ${a_uncopied:-?} without"
	fi
	labels=$cfg
	# The control of the control: the same states of stock-fpw-off with
	# no write torn, only lost, must all recover: what corrupts is tearing.
	[ "$cfg" = stock-fpw-off ] && labels="$cfg $cfg-untorn"
	# And the doublewrite area's: the states that tore a page in place,
	# with nothing for the repair to find, must not all recover.
	[ "$cfg" = wtsmgr-doublewrite ] && labels="$cfg $cfg-unrepaired"
	for label in $labels; do
		case $label in
			stock-fpw-off-untorn)
				say "$label: replaying $states crash states"
				replay_states "$cfg" "$label" --no-tear ;;
			wtsmgr-doublewrite-unrepaired)
				say "$label: replaying the $(wc -l <"$workdir/$cfg/inplace-states") states that tore a relation page in place, the doublewrite area's headers zeroed"
				replay_states "$cfg" "$label" "" unrepaired ;;
			*)
				say "$label: replaying $states crash states"
				replay_states "$cfg" "$label" ;;
		esac
		r_tried[$label]=$n_tried
		r_clean[$label]=$n_clean
		r_corrupt[$label]=$n_corrupt
		r_torn[$label]=$n_torn
		r_inplace[$label]=$n_torn_inplace
		r_restored[$label]=$n_restored
		r_blocks[$label]=$n_restored_blocks
		r_ignored[$label]=$n_ignored
		r_unrepaired[$label]=$n_unrepaired
		r_fpi[$label]=$fpi_refs
		r_refs[$label]=$all_refs
		r_tps[$label]=${tps:-?}
		case $label in
			stock-fpw-off) [ "$n_corrupt" -gt 0 ] || keep_cfg=1 ;;
			stock-fpw-off-untorn) [ "$n_corrupt" -eq 0 ] || keep_cfg=1 ;;
			wtsmgr-doublewrite-unrepaired) [ "$n_corrupt" -gt 0 ] || keep_cfg=1 ;;
			wtsmgr-doublewrite)
				[ "$n_corrupt" -eq 0 ] && [ "$n_torn_inplace" -gt 0 ] &&
					[ "$n_unrepaired" -eq 0 ] || keep_cfg=1 ;;
			*) [ "$n_corrupt" -eq 0 ] && [ "$n_torn" -gt 0 ] || keep_cfg=1 ;;
		esac
		say "$label: $n_tried states, $n_clean clean, $n_corrupt corrupted, $n_torn tore a relation page"
		if [ "$cfg" = wtsmgr-doublewrite ]; then
			say "$label: $n_torn_inplace tore one in place; $n_restored restored blocks from the doublewrite area ($n_restored_blocks in all), $n_ignored ignored a region"
		fi
	done
	r_secs[$cfg]=$(($(date +%s) - t0))
	echo "# $cfg: ${r_secs[$cfg]} s, recording and crash states"
	if [ "$keep_cfg" = 1 ]; then
		echo "# $cfg: log and plan kept in $workdir/$cfg"
	else
		rm -f "$workdir/$cfg/device.log" "$workdir/$cfg/device.img"
	fi
	all_labels="$all_labels $labels"
done

# The checks.
for cfg in $configs; do
	case $cfg in
		stock-fpw-on)
			tap_check "$([ "${r_fpi[$cfg]}" -gt 0 ] && echo 1)" \
				"stock-fpw-on: the workload's WAL has images (${r_fpi[$cfg]} of ${r_refs[$cfg]} block references)"
			tap_check "$([ "${r_corrupt[$cfg]}" -eq 0 ] && [ "${r_torn[$cfg]}" -gt 0 ] && echo 1)" \
				"stock-fpw-on: 0 of ${r_tried[$cfg]} crash states corrupted (${r_corrupt[$cfg]}), ${r_torn[$cfg]} of them with a torn relation page"
			;;
		stock-fpw-off)
			tap_check "$([ "${r_corrupt[$cfg]}" -gt 0 ] && echo 1)" \
				"stock-fpw-off (negative control): torn pages corrupt it in ${r_corrupt[$cfg]} of ${r_tried[$cfg]} crash states (${r_torn[$cfg]} with a torn relation page)"
			l=stock-fpw-off-untorn
			tap_check "$([ "${r_corrupt[$l]}" -eq 0 ] && [ "${r_torn[$l]}" -eq 0 ] && echo 1)" \
				"stock-fpw-off, the same states with writes lost but none torn: ${r_corrupt[$l]} of ${r_tried[$l]} corrupted"
			;;
		wtsmgr)
			# Images wtsmgr still takes: the first changes of a cycle before
			# its announcement is written (a few milliseconds).
			tap_check "$([ "${r_refs[$cfg]}" -gt 0 ] && [ $((r_fpi[$cfg] * 100)) -le "${r_refs[$cfg]}" ] && echo 1)" \
				"wtsmgr: images left out (${r_fpi[$cfg]} of ${r_refs[$cfg]} block references with an image, at most 1%)"
			tap_check "$([ "${r_corrupt[$cfg]}" -eq 0 ] && [ "${r_torn[$cfg]}" -gt 0 ] && echo 1)" \
				"wtsmgr: 0 of ${r_tried[$cfg]} crash states corrupted (${r_corrupt[$cfg]}), ${r_torn[$cfg]} of them with a torn relation page"
			;;
		wtsmgr-doublewrite)
			tap_check "$([ "${r_refs[$cfg]}" -gt 0 ] && [ $((r_fpi[$cfg] * 100)) -le "${r_refs[$cfg]}" ] && echo 1)" \
				"$cfg: images left out (${r_fpi[$cfg]} of ${r_refs[$cfg]} block references with an image, at most 1%)"
			tap_check "$([ "${r_corrupt[$cfg]}" -eq 0 ] && [ "${r_inplace[$cfg]}" -gt 0 ] && echo 1)" \
				"$cfg: 0 of ${r_tried[$cfg]} crash states corrupted (${r_corrupt[$cfg]}), ${r_inplace[$cfg]} of them with a relation page torn in place (${r_torn[$cfg]} with one torn anywhere)"
			tap_check "$([ "${r_unrepaired[$cfg]}" -eq 0 ] && [ "${r_restored[$cfg]}" -gt 0 ] && echo 1)" \
				"$cfg: the startup process restored blocks from the doublewrite area in every state that tore a page in place (${r_restored[$cfg]} states restored ${r_blocks[$cfg]} blocks; ${r_unrepaired[$cfg]} states with an in-place tear restored none; ${r_ignored[$cfg]} ignored a region)"
			l=wtsmgr-doublewrite-unrepaired
			tap_check "$([ "${r_corrupt[$l]}" -gt 0 ] && echo 1)" \
				"$cfg (control): the states that tore a page in place, with the doublewrite area's headers zeroed, corrupted in ${r_corrupt[$l]} of ${r_tried[$l]}"
			;;
	esac
done

echo "#"
echo "# | configuration | states | recovered clean | corrupted | states with a torn relation page | states that restored blocks from the doublewrite area | states that ignored a region | images in WAL | tps |"
echo "# | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for l in $all_labels; do
	case $l in
		wtsmgr-doublewrite*)
			torn_cell="${r_inplace[$l]} in place (${r_torn[$l]} anywhere)"
			dw_cells="${r_restored[$l]} (${r_blocks[$l]} blocks) | ${r_ignored[$l]}" ;;
		*)
			torn_cell=${r_torn[$l]}
			dw_cells="- | -" ;;
	esac
	echo "# | $l | ${r_tried[$l]} | ${r_clean[$l]} | ${r_corrupt[$l]} | $torn_cell | $dw_cells | ${r_fpi[$l]} of ${r_refs[$l]} | ${r_tps[$l]} |"
done
echo "# seed $seed, ${sector}-byte sectors; $(($(date +%s) - t_all)) s in all"
trap - EXIT
cleanup
tap_done
