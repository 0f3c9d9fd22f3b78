#!/usr/bin/env bash
# scripts/fragment-audit.sh -- on an XFS filesystem whose free space is
# fragmented until atomic writes fail, check from the kernel's side that no
# write to a relation file can tear.
#
# Usage: scripts/fragment-audit.sh PREFIX WORKDIR
#
# Needs root: it makes a small XFS filesystem on a loop device of its own
# (/mnt/wtsmgr-frag-PID; the image in WORKDIR) and traces it with tracefs,
# in a trace instance of its own filtered by that device.  A cluster with
# wtsmgr, its data directory (and so its doublewrite area) on that
# filesystem but pg_wal in WORKDIR, runs as the unprivileged user:
#
# 1. pgbench --initialize, a CHECKPOINT; then the free space is fragmented
#    (4 kB files until the filesystem is full, every other one removed, the
#    large free extents XFS held back taken by a fallocated file, until no
#    free extent of two blocks is left: xfs_spaceman's histogram), and an
#    8 kB RWF_ATOMIC overwrite must fail with ENOSPC (asked of the kernel
#    through the test module).
# 2. Traced: pgbench, CHECKPOINT, pgbench, an immediate stop, a start
#    (crash recovery), a CHECKPOINT.  Balances agree, pg_amcheck and, after
#    a clean stop, pg_checksums are clean.
# 3. The trace: every direct write to a relation file is ATOMIC, or follows,
#    in the same process and with no other write to a relation file in
#    between, a DSYNC direct write to the doublewrite area at least a
#    header sector longer; a buffered write to a relation file is allowed
#    only from a process that read the doublewrite area before (the startup
#    process writing blocks back).  Some writes must be of the second kind.
#    Control: the same trace without the doublewrite area's events must be
#    flagged.
#
# Prints TAP lines, and the figures as "#" lines.
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$1
workdir=$2
export PATH="$prefix/bin:$PATH"

skip_unless_root "the fragment audit needs root (tracefs, a loop mount)"
mkdir -p "$workdir"
chown "$WTSMGR_USER" "$workdir"

img=$workdir/frag-xfs.img
mnt=/mnt/wtsmgr-frag-$$
tracing=/sys/kernel/tracing
inst=$tracing/instances/wtsmgr-frag-$$
events="iomap/iomap_dio_rw_begin xfs/xfs_file_direct_write xfs/xfs_file_direct_read
	xfs/xfs_file_buffered_write xfs/xfs_file_buffered_read"
pgdata=$mnt/pgdata
sock=$workdir/sock
port=$((41000 + $$ % 10000))

cleanup()
{
	[ -n "${trace_snapper:-}" ] && kill "$trace_snapper" 2>/dev/null
	as_user pg_ctl -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
	if [ -d "$inst" ]; then
		echo 0 >"$inst/tracing_on" 2>/dev/null || true
		for ev in $events; do
			echo 0 >"$inst/events/$ev/enable" 2>/dev/null || true
		done
		rmdir "$inst" 2>/dev/null || true
	fi
	umount "$mnt" 2>/dev/null || true
	rmdir "$mnt" 2>/dev/null || true
	rm -f "$img"
}
trap cleanup EXIT

truncate -s 320M "$img"
mkfs.xfs -q -f -m reflink=1 "$img"
mkdir -p "$mnt" "$sock"
mount -o loop "$img" "$mnt"
chown "$WTSMGR_USER" "$mnt" "$sock"
majmin=$(mountpoint -d "$mnt")
kdev=$(( (${majmin%:*} << 20) | ${majmin#*:} ))

mountpoint -q "$tracing" || mount -t tracefs nodev "$tracing"
mkdir "$inst"
echo 65536 >"$inst/buffer_size_kb"
echo mono >"$inst/trace_clock"
echo 0 >"$inst/tracing_on"
for ev in $events; do
	echo "dev == $kdev" >"$inst/events/$ev/filter"
	echo 1 >"$inst/events/$ev/enable"
done

q()
{
	as_user psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" "$@"
}

# pg_wal elsewhere: WAL segments would take the little free space left
initdb_opts=(-X "$workdir/wal")
start_cluster "$pgdata" "$port" "$sock" "shared_buffers = 16MB" "autovacuum = off" \
	"checkpoint_timeout = 1h" "max_wal_size = 1GB"
module=$(cd "$(dirname "$0")/../test/wtsmgr_test" && pwd)/wtsmgr_test
make -s -C "$(dirname "$module")" PG_CONFIG="$prefix/bin/pg_config" >"$workdir/module.log" 2>&1 ||
	die "cannot build test/wtsmgr_test" "see $workdir/module.log"
chmod a+r "$module.so"
q -d postgres -c "CREATE EXTENSION wtsmgr" \
	-c "CREATE FUNCTION atomic_overwrite(text) RETURNS text
		AS '$module', 'wtsmgr_test_atomic_overwrite' LANGUAGE C STRICT"
as_user pgbench -h "$sock" -p "$port" --initialize --scale=3 --quiet postgres >"$workdir/init.log" 2>&1
q -d postgres -c CHECKPOINT
untorn=$(q -d postgres -c "SELECT untorn_blocks FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")
tap_check "$([ "$untorn" = t ] && echo 1)" "pg_default on the small XFS ($majmin) is untorn"

# 1. Fragment the free space.
fill=$mnt/fill
mkdir "$fill"
chown "$WTSMGR_USER" "$fill"
scratch=$fill/scratch
head -c 65536 /dev/zero | tr '\0' 'U' >"$scratch"
chown "$WTSMGR_USER" "$scratch"
sync -f "$mnt"
nfiles=$(perl -e '
	my ($dir) = @ARGV; my $n = 0; my $buf = "\xaa" x 4096;
	FILL: for (my $d = 0;; $d++) {
		mkdir "$dir/$d" or last;
		for my $f (0 .. 999) {
			open(my $fh, ">", "$dir/$d/$f") or last FILL;
			my $w = syswrite($fh, $buf);
			close($fh) or last FILL;
			last FILL unless defined $w && $w == 4096;
			$n++;
		}
	}
	print "$n\n";' "$fill")
sync -f "$mnt"
perl -e 'my ($dir, $n) = @ARGV;
	for (my $i = 0; $i < $n; $i += 2) { unlink "$dir/" . int($i / 1000) . "/" . ($i % 1000) }' "$fill" "$nfiles"
sync -f "$mnt"
# the largest free extent, in blocks (the "from" of the highest bucket)
maxfree()
{
	xfs_spaceman -c 'freesp' "$mnt" | awk '$1 ~ /^[0-9]+$/ && $3 > 0 {m = $1} END {print m + 0}'
}
off=0
while [ "$(maxfree)" -ge 2 ]; do
	chunk=$(( $(maxfree) >= 64 ? 262144 : 8192 ))
	xfs_io -f -c "falloc $off $chunk" "$fill/plug" >/dev/null 2>&1 || break
	off=$((off + chunk))
done
sync -f "$mnt"
freesp=$(xfs_spaceman -c 'freesp -s' "$mnt" | tr -s ' ' | tr '\n' ';')
echo "# $nfiles files of 4 kB, every other one removed, $((off / 1024)) kB of large free extents plugged; free space: $freesp"
res=$(q -d postgres -c "SELECT atomic_overwrite('$scratch')")
tap_check "$([ "$res" = 'No space left on device' ] && echo 1)" \
	"free space fragmented: an 8 kB atomic overwrite fails ($res)"

# 2. The traced workload, a crash, recovery.
snapshot()
{
	find "$pgdata/base" "$pgdata/global" "$pgdata/pg_wtsmgr" -type f -printf '%i %P\n' >>"$1" 2>/dev/null || true
}
map=$workdir/inodes
trace_start "$inst" "$map" snapshot
balances="SELECT (SELECT sum(abalance) FROM pgbench_accounts) || '|' ||
	(SELECT sum(bbalance) FROM pgbench_branches) || '|' ||
	(SELECT sum(tbalance) FROM pgbench_tellers) || '|' ||
	(SELECT coalesce(sum(delta), 0) FROM pgbench_history)"
ok_bench=1
as_user pgbench -h "$sock" -p "$port" --no-vacuum --client=2 --time=8 postgres >"$workdir/pgbench1.log" 2>&1 || ok_bench=0
ckpt=1
q -d postgres -c CHECKPOINT >/dev/null 2>"$workdir/checkpoint.err" || ckpt=0
as_user pgbench -h "$sock" -p "$port" --no-vacuum --client=2 --time=4 postgres >"$workdir/pgbench2.log" 2>&1 || ok_bench=0
sum=$(q -d postgres -c "$balances")
as_user pg_ctl -D "$pgdata" -m immediate stop >/dev/null
started=1
as_user pg_ctl -D "$pgdata" -l "$sock/server.log" -w -t 300 start >/dev/null || started=0
after=
[ "$started" = 1 ] && after=$(q -d postgres -c "$balances") && q -d postgres -c CHECKPOINT
echo "wtsmgr-audit done" >"$inst/trace_marker"
trace_stop "$inst" "$map" snapshot
cp "$inst/trace" "$workdir/trace"
lost=$(cat "$inst"/per_cpu/cpu*/stats |
	awk '/^(overrun|dropped events|commit overrun):/ {n += $NF} END {print n + 0}')
tap_check "$ok_bench" "pgbench runs on the fragmented filesystem"
tap_check "$ckpt" "CHECKPOINT completes on it"
tap_check "$started" "after an immediate stop, the server starts (crash recovery completes)"
IFS='|' read -r a b t h <<<"$after"
tap_check "$([ -n "$after" ] && [ "$after" = "$sum" ] && [ "$a" = "$b" ] && [ "$b" = "$t" ] && [ "$t" = "$h" ] && echo 1)" \
	"nothing is lost: balances as before the crash, and in agreement ($after)"
amcheck=0
q -d postgres -c "CREATE EXTENSION amcheck" >/dev/null 2>&1 &&
	as_user pg_amcheck -h "$sock" -p "$port" --heapallindexed postgres >"$workdir/amcheck.log" 2>&1 && amcheck=1
tap_check "$amcheck" "pg_amcheck is clean"
as_user pg_ctl -D "$pgdata" -w stop >/dev/null || true
checksums=0
as_user pg_checksums --check --pgdata "$pgdata" >"$workdir/checksums.log" 2>&1 && checksums=1
tap_check "$checksums" "pg_checksums verifies every page"
tap_check "$([ "$lost" -eq 0 ] && echo 1)" "the trace buffer lost no event (overrun + dropped: $lost)"

# 3. The trace.  Prints "atomic protected restored flagged".
classify()
{
	"$(dirname "$0")/trace-audit" doublewrite "$1" "$map"
}
read -r atomic protected restored flagged < <(classify "$workdir/trace" 2>"$workdir/flagged")
echo "# kernel trace: $atomic ATOMIC direct writes to relation files, $protected after their copy in the doublewrite area, $restored buffered writes back from it at startup, $flagged flagged"
sed -n 's/^/# flagged: /; 1,3p' "$workdir/flagged"
tap_check "$([ "${atomic:-0}" -gt 0 ] && [ "${protected:-0}" -gt 0 ] && echo 1)" \
	"the kernel saw atomic writes ($atomic) and writes protected by the doublewrite area ($protected)"
tap_check "$([ "${flagged:-1}" = 0 ] && echo 1)" \
	"and no other write to a relation file ($flagged flagged)"
dw_ino=$(awk '$2 == "doublewrite" {print $1; exit}' "$map")
grep -v "ino 0x$(printf '%x' "${dw_ino:-0}") " "$workdir/trace" >"$workdir/trace-nodw"
read -r atomic protected restored flagged < <(classify "$workdir/trace-nodw" 2>/dev/null)
tap_check "$([ "${flagged:-0}" -gt 0 ] && echo 1)" \
	"control: without the doublewrite area's events, those writes are flagged ($flagged)"
tap_done
