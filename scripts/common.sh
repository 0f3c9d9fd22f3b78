# scripts/common.sh -- shell helpers shared by wtsmgr's scripts.
#
# Sourced, never run.  Owns: progress messages, the cache directory that
# holds built servers outside the clone, the unprivileged user that runs
# PostgreSQL when we are root, and the atomic XFS loop filesystem.

WTSMGR_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Where built servers and downloaded sources live: outside the clone, so
# that a fresh clone reuses them.
if [ -n "${WTSMGR_CACHE_DIR:-}" ]; then
	:
elif [ "$(id -u)" -eq 0 ]; then
	WTSMGR_CACHE_DIR=/var/cache/wtsmgr
else
	WTSMGR_CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/wtsmgr
fi

# Unprivileged account that owns test and demo clusters when run as root.
WTSMGR_USER=${WTSMGR_USER:-wtsmgr}

_wt_t0=$(date +%s)

say()
{
	printf '[wtsmgr %4ss] %s\n' "$(($(date +%s) - _wt_t0))" "$*"
}

die()
{
	printf 'wtsmgr: error: %s\n' "$1" >&2
	[ -n "${2:-}" ] && printf 'wtsmgr: hint: %s\n' "$2" >&2
	exit 1
}

is_root()
{
	[ "$(id -u)" -eq 0 ]
}

# Run "$@" with output going to a log file, printing a progress line every
# 30 seconds and the log's tail if the command fails.
run_logged()
{
	local log=$1 what=$2
	shift 2
	local start=$(date +%s) last pid rc
	last=$start
	say "$what (log: $log)"
	"$@" >"$log" 2>&1 &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		sleep 2
		if kill -0 "$pid" 2>/dev/null && [ $(($(date +%s) - last)) -ge 30 ]; then
			last=$(date +%s)
			say "  ... $what: $((last - start)) s, $(wc -l <"$log") log lines"
		fi
	done
	wait "$pid" && rc=0 || rc=$?
	if [ "$rc" -ne 0 ]; then
		tail -n 40 "$log" >&2
		die "$what failed (exit $rc)" "the whole log is $log"
	fi
	say "  done: $what in $(($(date +%s) - start)) s"
}

# TAP output for the scripts that check something as root (write-audit.sh,
# crash-model.sh): tap_check OK DESCRIPTION prints "ok N - ..." when OK is
# 1, "not ok N - ..." otherwise; tap_done prints the plan and fails if any
# check failed.
_tap_n=0
_tap_failed=0

tap_check()
{
	local ok=$1
	shift
	_tap_n=$((_tap_n + 1))
	if [ "$ok" = 1 ]; then
		echo "ok $_tap_n - $*"
	else
		echo "not ok $_tap_n - $*"
		_tap_failed=$((_tap_failed + 1))
	fi
}

tap_done()
{
	echo "1..$_tap_n"
	[ "$_tap_failed" -eq 0 ]
}

# For the suites that need root: without it, print a plan of one skipped
# test, saying why ("$1"), and exit.
skip_unless_root()
{
	is_root && return 0
	echo "1..1"
	echo "ok 1 # skip $1"
	exit 0
}

# SQL that is true when pgbench's balances agree: accounts, branches,
# tellers and history must sum to the same, whatever transactions ran.
pgbench_balances_agree="
	SELECT (SELECT sum(abalance) FROM pgbench_accounts) =
		   (SELECT sum(bbalance) FROM pgbench_branches)
	   AND (SELECT sum(bbalance) FROM pgbench_branches) =
		   (SELECT sum(tbalance) FROM pgbench_tellers)
	   AND (SELECT sum(tbalance) FROM pgbench_tellers) =
		   (SELECT coalesce(sum(delta), 0) FROM pgbench_history)"

# Create the unprivileged user that runs clusters when we are root.
ensure_user()
{
	is_root || return 0
	if ! id "$WTSMGR_USER" >/dev/null 2>&1; then
		useradd --system --create-home --home-dir "/var/lib/$WTSMGR_USER" \
			--shell /bin/bash "$WTSMGR_USER" ||
			die "cannot create user $WTSMGR_USER" "set WTSMGR_USER to an existing unprivileged user"
	fi
}

# Run a command as the unprivileged user (or as ourselves when not root),
# keeping the environment that the tests rely on.
as_user()
{
	if is_root; then
		runuser -u "$WTSMGR_USER" -- env HOME="$(getent passwd "$WTSMGR_USER" | cut -d: -f6)" "$@"
	else
		"$@"
	fi
}

# Make (or reuse) an XFS filesystem on a loop device, which gives software
# RWF_ATOMIC writes on any block device: $1 image name in the cache
# directory, $2 size, $3 mount point.  Prints the mount point.  Needs root;
# the caller checks.
ensure_xfs_mount()
{
	local img=$WTSMGR_CACHE_DIR/$1 size=$2 mnt=$3

	if ! mountpoint -q "$mnt"; then
		command -v mkfs.xfs >/dev/null || die "mkfs.xfs is missing" "apt-get install xfsprogs"
		mkdir -p "$mnt" "$WTSMGR_CACHE_DIR"
		rm -f "$img"
		truncate -s "$size" "$img"
		# reflink (the default) lets XFS do atomic writes in software
		mkfs.xfs -q -m reflink=1 "$img" >&2 || die "mkfs.xfs failed on $img"
		mount -o loop "$img" "$mnt" >&2 || die "cannot loop-mount $img on $mnt" \
			"loop devices must be available (modprobe loop)"
	fi
	chmod 755 "$mnt"
	echo "$mnt"
}

# The atomic filesystem that tests and the demo use.
ensure_atomic_fs()
{
	ensure_xfs_mount atomic-xfs.img 4G "${WTSMGR_ATOMIC_MOUNT:-/mnt/wtsmgr-atomic}"
}

# Create a cluster with wtsmgr preloaded, owned by the unprivileged user:
# $1 data directory, $2 port, $3 socket directory (also where initdb's log
# goes), then extra postgresql.conf lines.  The caller's array
# initdb_opts, if set, holds more options for initdb.
initdb_opts=()
init_cluster()
{
	local pgdata=$1 port=$2 sockdir=$3
	shift 3
	as_user initdb -D "$pgdata" "${initdb_opts[@]}" --no-instructions -A trust >"$sockdir/initdb.log" ||
		die "initdb failed" "see $sockdir/initdb.log"
	{
		echo "shared_preload_libraries = 'wtsmgr'"
		echo "port = $port"
		echo "unix_socket_directories = '$sockdir'"
		echo "listen_addresses = ''"
		printf '%s\n' "$@"
	} | as_user tee -a "$pgdata/postgresql.conf" >/dev/null
}

# init_cluster, then the server started, its log in the socket directory.
start_cluster()
{
	init_cluster "$@"
	as_user pg_ctl -D "$1" -l "$3/server.log" -w start >/dev/null ||
		die "the server did not start" "see $3/server.log"
}

# What a benchmark on one server needs, named $1: the optimized server
# (built if need be) with wtsmgr installed, first on PATH; a work directory
# owned by the unprivileged user; and a fresh directory on the atomic
# filesystem for the data.  Sets prefix, work and dir.
bench_prepare()
{
	prefix=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor release --print-prefix)
	export PATH="$prefix/bin:$PATH"
	say "installing wtsmgr into $prefix"
	make -s -C "$WTSMGR_ROOT" PG_CONFIG="$prefix/bin/pg_config" install >/dev/null
	ensure_user
	work=$(mktemp -d "${TMPDIR:-/var/tmp}/wtsmgr-$1.XXXXXX")
	chmod 755 "$work"
	say "work directory: $work"
	dir=$(atomic_scratch_dir "$1-$$")
	if is_root; then
		chown -R "$WTSMGR_USER" "$work" "$dir"
	fi
}

# A fresh directory on the atomic filesystem for benchmark data, named $1:
# as root on the XFS loop mount, otherwise under $WTSMGR_ATOMIC_DIR.
atomic_scratch_dir()
{
	local dir
	if is_root; then
		dir=$(ensure_atomic_fs)/$1
	elif [ -n "${WTSMGR_ATOMIC_DIR:-}" ]; then
		dir=$WTSMGR_ATOMIC_DIR/$1
	else
		die "no atomic filesystem" \
			"run as root (to make the XFS loop mount) or set WTSMGR_ATOMIC_DIR"
	fi
	mkdir -p "$dir"
	echo "$dir"
}

# Unmount $1 if it is mounted, trying for up to 10 s: a process that has
# just exited may still hold it busy for a moment.  Whether it is mounted
# comes from the mount table, not from mountpoint(1): on a filesystem shut
# down (scripts/crash-model.sh) stat fails, and mountpoint says no.
unmount_retry()
{
	local _
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		umount "$1" 2>/dev/null && return 0
		awk -v m="$1" '$2 == m {found = 1} END {exit !found}' /proc/self/mounts ||
			return 0
		sleep 1
	done
	return 1
}

# Clear and start the trace of tracefs instance $1, with the inode map $2
# written by the function $3 (called with the map's path) now and every
# 0.2 s until trace_stop: files created and unlinked while the workload
# runs get their inode numbers named too.
trace_start()
{
	: >"$2"
	"$3" "$2"
	echo >"$1/trace"
	echo 1 >"$1/tracing_on"
	(while :; do "$3" "$2"; sleep 0.2; done) &
	trace_snapper=$!
}

# Stop what trace_start started, the map's last listing taken.
trace_stop()
{
	local inst=$1 map=$2 snap=$3
	if [ -n "${trace_snapper:-}" ]; then
		kill "$trace_snapper" 2>/dev/null || true
		wait "$trace_snapper" 2>/dev/null || true
	fi
	trace_snapper=
	echo 0 >"$inst/tracing_on"
	"$snap" "$map"
}
