#!/usr/bin/env bash
# scripts/process-death.sh -- writes of a dying process, and a tablespace
# filesystem that hangs, seen from outside the server.
#
# Usage: scripts/process-death.sh PREFIX WORKDIR
#
# Needs root: it makes a small XFS filesystem of its own on a loop device
# (WTSMGR_DEATH_MOUNT, default /mnt/wtsmgr-death; never the shared ones) for
# the tablespace, and slows down or stops writes to that device for chosen
# processes with cgroup v1 blkio throttling (blkio.throttle.write_bps_device),
# which holds their bios in the block layer, after the filesystem has issued
# them.  The server runs as the unprivileged user, with its data directory
# and pg_wal in WORKDIR (another filesystem).
#
# A. A unit in flight when its process dies must not land after recovery
#    has written its block again.  Blocks 1-16 of a table (one row a
#    block, so that the checkpointer writes them as one run, cut into units
#    of 1, 2, 4, 8 and 1 blocks) are changed; the checkpointer is moved into
#    a cgroup whose writes to the device go at WTSMGR_DEATH_RATE bytes/s
#    (default 32768); a CHECKPOINT starts, and once its first unit is on
#    disk the checkpointer is made to die: by "pg_ctl stop -m immediate",
#    then (second round) by SIGKILL and the postmaster's crash restart.  As
#    soon as it is gone, whatever it left in that cgroup is held there (1
#    byte/s).  Checks, all from outside wtsmgr: recovery ends within 15 s
#    (if not, the held writes are let through and the check fails, naming
#    where the server's processes wait in the kernel); after two more
#    changes of the rows, each checkpointed by processes outside the
#    cgroup, the server is stopped and the held writes let through; then
#    every block's page LSN read from the disk with O_DIRECT is at least
#    that of the last change, and after a restart with the page cache
#    dropped the rows have their last values and pg_amcheck is clean.
#
#    Why two more changes: XFS writes an atomic unit of several blocks
#    into a staging extent of its copy-on-write fork and moves it into
#    the file when the write completes.  A unit left in flight keeps its
#    staging extent; the next write of those blocks (recovery's) reuses
#    it and moves it into the file, the one after that goes elsewhere
#    and frees it, and the third (in every run here) got the freed
#    blocks back: the held unit then lands on the file's newest blocks.
#    Why the first round waits instead: the first writable close of a
#    file that has copy-on-write blocks in flight waits for its direct
#    I/O (inode_dio_wait() in xfs_free_eofblocks()), and PostgreSQL's
#    recovery closes every relation file when it replays a checkpoint
#    record; XFS does that once per cached inode, so only the page cache
#    is dropped here, never the inodes.  On commit a7bda79, which wrote
#    the units of a run through io_uring, the kernel reaps the
#    checkpointer while they are held (the process does not wait for
#    them), the first round's recovery waits in inode_dio_wait(), and in
#    the second the held units overwrite the newer blocks.
#
# B. A tablespace filesystem whose writes hang must not stop the server
#    from starting.  The postmaster is started in a cgroup whose writes to
#    the device are held for good; "pg_ctl start" must return within
#    WTSMGR_DEATH_START_TIMEOUT seconds (default 15) and a connection to a
#    database outside the tablespace must work, while the prober waits in
#    the filesystem (state D).  Controls: a direct write from that cgroup
#    does hang; stock PostgreSQL (wtsmgr not preloaded) starts the same way.
#
# Every cgroup, mount and loop device is removed on exit, whatever happens.
# Prints TAP lines, and the timings as "#" lines.
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$1
workdir=$2
rate=${WTSMGR_DEATH_RATE:-32768}
start_timeout=${WTSMGR_DEATH_START_TIMEOUT:-15}
export PATH="$prefix/bin:$PATH"

skip_unless_root "the process-death tests need root (loop mount, blkio cgroups)"
blkio=/sys/fs/cgroup/blkio
if [ ! -w "$blkio/cgroup.procs" ] || [ ! -e "$blkio/blkio.throttle.write_bps_device" ]; then
	die "no cgroup v1 blkio hierarchy with throttling at $blkio" \
		"mount it: mount -t cgroup -o blkio blkio $blkio"
fi
command -v mkfs.xfs >/dev/null || die "mkfs.xfs is missing" "apt-get install xfsprogs"

mkdir -p "$workdir"
chown "$WTSMGR_USER" "$workdir"
img=$workdir/death-xfs.img
mnt=${WTSMGR_DEATH_MOUNT:-/mnt/wtsmgr-death}
pgdata=$workdir/pgdata
sock=$workdir/sock
log=$workdir/server.log
port=$((20000 + $$ % 10000))
cg_ckpt=$blkio/wtsmgr-death-$$-ckpt
cg_start=$blkio/wtsmgr-death-$$-start
loopdev=
majmin=
held_pids=()

# Release every cgroup first (what is held in them then drains, so that
# processes waiting in the filesystem can exit), then stop the server and
# remove the cgroups, the mount and the loop device.
cleanup()
{
	local cg p
	set +e
	for cg in "$cg_ckpt" "$cg_start"; do
		[ -d "$cg" ] || continue
		[ -n "$majmin" ] && echo "$majmin 0" >"$cg/blkio.throttle.write_bps_device" 2>/dev/null
		while read -r p; do
			echo "$p" >"$blkio/cgroup.procs" 2>/dev/null
		done <"$cg/cgroup.procs"
	done
	for p in "${held_pids[@]}"; do
		timeout 60 tail --pid="$p" -f /dev/null 2>/dev/null
	done
	if [ -f "$pgdata/postmaster.pid" ]; then
		as_user timeout 60 pg_ctl -D "$pgdata" -m immediate -w -t 50 stop >/dev/null 2>&1
	fi
	for cg in "$cg_ckpt" "$cg_start"; do
		[ -d "$cg" ] && rmdir "$cg" 2>/dev/null
	done
	unmount_retry "$mnt" || true
	[ -n "$loopdev" ] && losetup -d "$loopdev" 2>/dev/null
	rm -f "$img"
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP

# A fresh filesystem for every run, on a loop device of our own, whose
# number the throttling needs.
if mountpoint -q "$mnt"; then
	umount "$mnt"
fi
mkdir -p "$mnt"
rm -f "$img"
truncate -s 512M "$img"
mkfs.xfs -q -m reflink=1 "$img"
loopdev=$(losetup --find --show "$img")
majmin=$(lsblk -dno MAJ:MIN "$loopdev" | tr -d ' ')
mount "$loopdev" "$mnt"
chmod 755 "$mnt"
ts=$mnt/ts
mkdir -p "$ts"
chown "$WTSMGR_USER" "$ts"
mkdir "$cg_ckpt" "$cg_start"

# Throttle writes to the device from cgroup $1 to $2 bytes/s (0: none).
throttle()
{
	echo "$majmin $2" >"$1/blkio.throttle.write_bps_device"
}

q()
{
	as_user timeout 60 psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" "$@"
}

start()
{
	as_user pg_ctl -D "$pgdata" -l "$log" -w -t 60 start >/dev/null
}

now_ms()
{
	date +%s%3N
}

# An LSN as a number: "X/Y" -> decimal.
lsn_num()
{
	echo $(((16#${1%/*} << 32) | 16#${1#*/}))
}

# The page LSNs of blocks [$2, $2 + $3) of file $1, read from the disk with
# O_DIRECT, one decimal number a line.
disk_lsns()
{
	dd if="$1" bs=8192 skip="$2" count="$3" iflag=direct status=none |
		od -An -v -tu4 -w8192 | awk '{printf "%.0f\n", $1 * 4294967296 + $2}'
}

# How many of blocks [$2, $2 + $3) of file $1 have a page LSN below $4 on
# disk.
blocks_older_than()
{
	disk_lsns "$1" "$2" "$3" | awk -v lsn="$4" '$1 < lsn {n++} END {print n + 0}'
}

mkdir -p "$sock"
chown "$WTSMGR_USER" "$sock"
init_cluster "$pgdata" "$port" "$sock" "checkpoint_timeout = 1h" "max_wal_size = 1GB" \
	"autovacuum = off" "bgwriter_lru_maxpages = 0" "io_combine_limit = 16" \
	"restart_after_crash = on"
start
q -d postgres -c "CREATE EXTENSION wtsmgr" \
	-c "CREATE EXTENSION amcheck" \
	-c "CREATE TABLESPACE ts_death LOCATION '$ts'"

# One row a block: blocks 0-39 hold ids 1-40.
q -d postgres -c "CREATE TABLE t (id int, v int, pad text) WITH (fillfactor = 10) TABLESPACE ts_death" \
	-c "INSERT INTO t SELECT i, 0, repeat('x', 900) FROM generate_series(1, 40) i" \
	-c "CHECKPOINT"
file=$pgdata/$(q -d postgres -c "SELECT pg_relation_filepath('t')")
layout=$(q -d postgres -c "SELECT bool_and((ctid::text::point)[0] = id - 1 AND (ctid::text::point)[1] = 1) FROM t")
tap_check "$([ "$layout" = t ] && echo 1)" "table t has one row a block, id N in block N-1"
untorn=$(q -d postgres -c "SELECT untorn_blocks FROM wtsmgr_tablespaces WHERE tablespace = 'ts_death'")
tap_check "$([ "$untorn" = t ] && echo 1)" "ts_death on $mnt ($loopdev, $majmin) is untorn"

# The server's processes that wait in the kernel, uninterruptibly (state
# D), each with the function it waits in: "title in function, ...", or
# "none".
waiting_in_kernel()
{
	local pm p out=()
	pm=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null) || true
	for p in ${pm:+$pm $(pgrep -P "$pm")}; do
		[ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" = D ] || continue
		out+=("$(ps -o args= -p "$p" | sed 's/ *$//') in $(head -n 1 "/proc/$p/stack" 2>/dev/null | sed 's/^\[<0>\] //; s/+.*//')")
	done
	if [ ${#out[@]} -eq 0 ]; then
		echo none
	else
		local IFS=,
		echo "${out[*]}"
	fi
}

# Case A, one way of dying: $1 = stop (pg_ctl stop -m immediate) or kill
# (SIGKILL of the checkpointer, then a crash restart), $2 = round.  Prints
# what failed, or nothing; sets the figures printed as "#" lines.
case_a()
{
	local how=$1 v1=$(($2 * 10 + 1)) v2=$(($2 * 10 + 2)) v ckpt lsn1 lsn2 t0 older rows ckpt_bg why=()
	q -d postgres -c "CHECKPOINT"
	lsn1=$(lsn_num "$(q -d postgres -c "SELECT pg_current_wal_insert_lsn()")")
	# blocks 1-16: one run of 16 blocks, not aligned to 16
	q -d postgres -c "UPDATE t SET v = $v1 WHERE id BETWEEN 2 AND 17"
	ckpt=$(q -d postgres -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
	throttle "$cg_ckpt" "$rate"
	echo "$ckpt" >"$cg_ckpt/cgroup.procs"
	q -d postgres -c "CHECKPOINT" >/dev/null 2>&1 &
	ckpt_bg=$!
	# the run has begun once its first unit (block 1) is on disk
	t0=$(now_ms)
	while [ "$(blocks_older_than "$file" 1 1 "$lsn1")" -ne 0 ]; do
		if [ $(($(now_ms) - t0)) -gt 20000 ]; then
			echo "the checkpoint's first unit did not reach the disk in 20 s"
			return
		fi
		sleep 0.05
	done
	older_at_death=$(blocks_older_than "$file" 1 16 "$lsn1")
	state_at_death=$(awk '{print $3}' "/proc/$ckpt/stat")
	t0=$(now_ms)
	if [ "$how" = stop ]; then
		as_user pg_ctl -D "$pgdata" -m immediate -w -t 60 stop >/dev/null ||
			why+=("pg_ctl stop -m immediate failed")
	else
		kill -KILL "$ckpt"
	fi
	# gone once the postmaster has reaped it
	while [ -e "/proc/$ckpt" ] && [ $(($(now_ms) - t0)) -lt 60000 ]; do
		sleep 0.01
	done
	died_ms=$(($(now_ms) - t0))
	# whatever the dead checkpointer left in flight stays there from now on
	throttle "$cg_ckpt" 1
	older_after_death=$(blocks_older_than "$file" 1 16 "$lsn1")
	wait "$ckpt_bg" || true

	# Recovery (for "kill", the crash restart's) must not wait for the dead
	# process's writes either: if it is not done within 15 s, they are let
	# through, and the check fails.
	if [ "$how" = stop ]; then
		as_user pg_ctl -D "$pgdata" -l "$log" -W start >/dev/null
	fi
	t0=$(now_ms)
	released_ms=
	until q -d postgres -c "SELECT 1" >/dev/null 2>&1; do
		if [ -z "$released_ms" ] && [ $(($(now_ms) - t0)) -gt 15000 ]; then
			waiting_at_release=$(waiting_in_kernel)
			throttle "$cg_ckpt" 0
			released_ms=$(($(now_ms) - t0))
			why+=("recovery was not done after $((released_ms / 1000)) s, until the dead checkpointer's writes were let through (waiting in the kernel: $waiting_at_release)")
		fi
		if [ $(($(now_ms) - t0)) -gt 90000 ]; then
			echo "no recovery within 90 s"
			return
		fi
		sleep 0.2
	done
	recovery_ms=$(($(now_ms) - t0))

	# newer contents, written by checkpoints outside the throttled cgroup
	for v in $v2 $((v2 + 1)); do
		lsn2=$(lsn_num "$(q -d postgres -c "SELECT pg_current_wal_insert_lsn()")")
		q -d postgres -c "UPDATE t SET v = $v WHERE id BETWEEN 2 AND 17" -c "CHECKPOINT"
	done
	v2=$v
	older=$(blocks_older_than "$file" 1 16 "$lsn2")
	[ "$older" -eq 0 ] || why+=("$older of the 16 blocks not on disk after the newer CHECKPOINT")
	as_user pg_ctl -D "$pgdata" -w -t 60 stop >/dev/null

	# what was held lands now, after the newer blocks
	throttle "$cg_ckpt" 0
	sleep 1
	older=$(blocks_older_than "$file" 1 16 "$lsn2")
	[ "$older" -eq 0 ] ||
		why+=("$older of the 16 blocks on disk have a page LSN older than their last change")
	# the page cache only: the inodes stay cached (see the header)
	sync
	echo 1 >/proc/sys/vm/drop_caches
	start
	rows=$(q -d postgres -c "SELECT count(*) FROM t WHERE id BETWEEN 2 AND 17 AND v = $v2")
	[ "$rows" = 16 ] ||
		why+=("after a restart with the page cache dropped, only ${rows:-none} of the 16 rows have their last value")
	as_user pg_amcheck -h "$sock" -p "$port" --heapallindexed postgres >"$workdir/amcheck-$how.log" 2>&1 ||
		why+=("pg_amcheck: $(head -n 1 "$workdir/amcheck-$how.log")")
	if [ ${#why[@]} -gt 0 ]; then
		printf '%s; ' "${why[@]}" | sed 's/; $//'
		echo
	fi
}

round=0
for how in ${WTSMGR_DEATH_CASES-stop kill}; do
	round=$((round + 1))
	died_ms=
	older_at_death=
	older_after_death=
	state_at_death=
	recovery_ms=
	case_a "$how" "$round" >"$workdir/case-$how.out" || true
	res=$(cat "$workdir/case-$how.out")
	case $how in
	stop) what="pg_ctl stop -m immediate" ;;
	kill) what="SIGKILL of the checkpointer and a crash restart" ;;
	esac
	echo "# $what: when told to die the checkpointer was in state $state_at_death with $older_at_death of the run's 16 blocks not on disk; gone after $died_ms ms, with $older_after_death not on disk; server up again after ${recovery_ms:-?} ms"
	tap_check "$([ -z "$res" ] && echo 1)" \
		"$what during a throttled checkpoint run: recovery does not wait for the dead checkpointer's writes, and none lands over the newer blocks written after it${res:+: $res}"
done

# Case B: the tablespace's filesystem hangs for the server's processes:
# their writes to the device are held for good (1 byte/s) from before the
# postmaster starts.

# Run "$@" in cgroup $1.
in_cgroup()
{
	local cg=$1
	shift
	sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg" "$@"
}

# Start the server in cg_start: sets start_ms (how long pg_ctl start took),
# started if it succeeded, and connect_ms (how long a connection to postgres
# then took) if that worked; fails unless both did.
start_hung()
{
	local t0
	start_ms=
	started=
	connect_ms=
	t0=$(now_ms)
	in_cgroup "$cg_start" timeout $((start_timeout + 30)) runuser -u "$WTSMGR_USER" -- \
		pg_ctl -D "$pgdata" -l "$log" -w -t "$start_timeout" start >/dev/null 2>&1 && started=1
	start_ms=$(($(now_ms) - t0))
	[ -n "$started" ] || return 1
	t0=$(now_ms)
	as_user timeout 10 psql -X -A -t -q -h "$sock" -p "$port" -d postgres -c "SELECT 1" >/dev/null 2>&1 ||
		return 1
	connect_ms=$(($(now_ms) - t0))
}

as_user pg_ctl -D "$pgdata" -w -t 60 stop >/dev/null
throttle "$cg_start" 1

# Control: a direct write from that cgroup does not return.
in_cgroup "$cg_start" dd if=/dev/zero of="$mnt/hung-write" bs=8192 count=1 oflag=direct status=none &
held_pids+=($!)
sleep 2
hung=
kill -0 "${held_pids[-1]}" 2>/dev/null && hung=1
tap_check "$hung" "control: a direct write of 8 kB to $mnt from the throttled cgroup has not returned after 2 s"

# Control: stock PostgreSQL, the same cluster without wtsmgr.
echo "shared_preload_libraries = ''	# process-death.sh: stock" >>"$pgdata/postgresql.conf"
ok=
start_hung && ok=1
echo "# stock PostgreSQL, writes to the tablespace hung: pg_ctl start returned after $start_ms ms, a connection took ${connect_ms:-?} ms"
tap_check "$ok" "control: stock PostgreSQL starts with the tablespace's filesystem hung, and accepts a connection to postgres"
as_user timeout 60 pg_ctl -D "$pgdata" -w -t 50 stop >/dev/null 2>&1 ||
	as_user timeout 60 pg_ctl -D "$pgdata" -m immediate -w -t 50 stop >/dev/null 2>&1 || true
sed -i '/# process-death.sh: stock$/d' "$pgdata/postgresql.conf"

# wtsmgr: the start must not probe the tablespace itself.
ok=
why_b=
if start_hung; then
	# a background worker without a database: not in pg_stat_activity
	prober=$(pgrep -P "$(head -n 1 "$pgdata/postmaster.pid")" -f '^postgres: wtsmgr prober' || true)
	prober_state=
	[ -n "$prober" ] && prober_state=$(awk '{print $3}' "/proc/$prober/stat" 2>/dev/null || true)
	if [ "$prober_state" = D ]; then
		ok=1
	else
		why_b="the prober (pid ${prober:-none}) is not waiting in the filesystem (state ${prober_state:-none}): the hang was not tested"
	fi
else
	if [ -n "$started" ]; then
		why_b="no connection to postgres within 10 s of the start"
	else
		why_b="pg_ctl start gave up after $start_ms ms: the server did not start"
	fi
	why_b+=" (waiting in the kernel: $(waiting_in_kernel))"
fi
echo "# wtsmgr, writes to the tablespace hung: pg_ctl start returned after $start_ms ms, a connection took ${connect_ms:-?} ms"
tap_check "$ok" "with wtsmgr and the tablespace's filesystem hung, pg_ctl start returns within $start_timeout s and a connection to postgres works, while the prober waits${why_b:+: $why_b}"

tap_done
