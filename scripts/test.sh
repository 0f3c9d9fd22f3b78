#!/usr/bin/env bash
# scripts/test.sh -- build everything needed and run all of wtsmgr's tests.
#
# Usage: scripts/test.sh
#
# 1. Builds (or reuses) the patched PostgreSQL 18 server, debug flavor, and
#    the test-only flavors debug-smallseg (64 kB segment files) and
#    debug-asan (sanitizers).
# 2. Builds and installs wtsmgr into those servers, with -Werror: a
#    compiler warning fails the run (not for debug-asan, whose -O1 build
#    only adds sanitizer checks).
# 3. As root, makes an XFS filesystem on a loop device, which has atomic
#    writes, and exports its path as WTSMGR_ATOMIC_DIR; otherwise uses
#    WTSMGR_ATOMIC_DIR if you set it, or tells you which tests are skipped.
# 4. Runs, as an unprivileged user (wtsmgr, created when we are root):
#    - a check of patches/ against the pristine source, a check that every
#      relative link in README.md, docs/ and bench/README.md resolves
#      (scripts/check-docs.sh), a check of every server message against
#      the message style guide (scripts/check-messages), the unit test
#      of the multiple-atomicity planner (test/split_test.c), and the tests
#      of the trace audits' parser (test/audit/trace_audit.pl) and of the
#      benchmarks' report (test/bench/bench_report.pl);
#    - scripts/pgindent-check.sh: every C file laid out as the server
#      source's pgindent and pg_bsd_indent lay it out;
#    - the pg_regress tests in sql/ against a temporary instance with
#      wtsmgr preloaded, and the TAP tests in t/ ("make installcheck");
#    - the TAP tests that need small segments (t/010_small_segments.pl),
#      and t/030_checkpoint_runs.pl and t/031_bgwriter_runs.pl again, whose
#      runs must then be split at segment boundaries, against the
#      debug-smallseg server;
#    - sql/ and t/001, t/004 and t/016 against the debug-asan server
#      (AddressSanitizer and UndefinedBehaviorSanitizer), failing on any
#      sanitizer report (scripts/sanitize.sh);
#    - PostgreSQL's own regression suite against a wtsmgr-preloaded server
#      whose data directory is on the atomic filesystem;
#    - pg_rewind's own TAP suite (scripts/core-rewind.sh), since core patches
#      0004 and 0007 change pg_rewind.
# 5. As root, scripts/write-audit.sh: every write to an untorn tablespace,
#    seen by the kernel (tracefs); scripts/crash-model.sh: the atomic
#    filesystem shut down under load, then log and crash recovery;
#    scripts/fragment-audit.sh: free space fragmented until atomic writes
#    fail, pgbench, a crash, recovery, and every write seen by the kernel;
#    scripts/process-death.sh: writes held in the block layer (blkio
#    throttling) while their process dies, and a start with a tablespace
#    whose filesystem hangs; scripts/exporter.sh: wtsmgr's views through
#    prometheus-postgres-exporter and the query file in monitoring/,
#    against SQL and the WAL; scripts/patroni.sh: failover, rejoin through
#    pg_rewind and switchover under Patroni with etcd; and
#    scripts/torn-crash.sh: a simulated disk
#    that loses and tears writes at a crash, under stock PostgreSQL,
#    under wtsmgr, and under wtsmgr with every write through its
#    doublewrite area (WTSMGR_TORN_STATES crash states per configuration,
#    30 by default).
# Prints each runner's summary and a last line "tests: N passed, N failed,
# N skipped".  A skipped test (TAP "ok N # skip", or a whole TAP file that
# skips) counts as skipped, never as passed.  Exits non-zero if anything
# failed, or, under CI=true, if anything was skipped.  Leaves the work
# directory in place when something failed, and says where it is.
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor debug --print-prefix)
pg_config=$prefix/bin/pg_config
# Relations that span segment files, without gigabytes of data; cached
# like the debug build, so it is built once.
ss_prefix=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor debug-smallseg --print-prefix)
# Built with AddressSanitizer and UndefinedBehaviorSanitizer, for the
# sanitize suite; cached the same way.
asan_prefix=$("$WTSMGR_ROOT/scripts/build-server.sh" --flavor debug-asan --print-prefix)
# shellcheck disable=SC1091
. "$prefix/wtsmgr-build.info"	# source=, build=, version=

# COPT=-Werror: PGXS adds COPT to CFLAGS, here and in the make of the test
# module (test-modules), so any compiler warning stops the run.
say "building and installing wtsmgr into $prefix (with -Werror)"
make -s -C "$WTSMGR_ROOT" PG_CONFIG="$pg_config" COPT=-Werror install test-modules >/dev/null

ensure_user

# A work directory owned by the user who runs PostgreSQL, with a copy of
# the tree: pg_regress and prove write their results next to the tests.
work=$(mktemp -d "${TMPDIR:-/var/tmp}/wtsmgr-test.XXXXXX")
chmod 755 "$work"
# The small-segment and the sanitized servers get copies of their own:
# wtsmgr is compiled for each.
for copy in src smallseg asan; do
	mkdir -p "$work/$copy"
	tar -C "$WTSMGR_ROOT" --exclude=.git --exclude='*.o' --exclude='*.so' \
		--exclude='*.bc' --exclude=tmp_check --exclude=tmp_check_regress \
		--exclude=results -cf - . | tar -C "$work/$copy" -xf -
done
say "building and installing wtsmgr into $ss_prefix (with -Werror)"
make -s -C "$work/smallseg" PG_CONFIG="$ss_prefix/bin/pg_config" COPT=-Werror install >/dev/null
# PGXS compiles it with the server's own -fsanitize flags (pg_config's
# CFLAGS, CPPFLAGS and LDFLAGS).  That pg_config is instrumented too, and
# LeakSanitizer would fail it: PostgreSQL's programs do not free at exit.
say "building and installing wtsmgr into $asan_prefix"
ASAN_OPTIONS=detect_leaks=0 \
	make -s -C "$work/asan" PG_CONFIG="$asan_prefix/bin/pg_config" install >/dev/null
if is_root; then
	chown -R "$WTSMGR_USER" "$work"
fi

# The atomic filesystem.
if is_root; then
	mnt=$(ensure_atomic_fs)
	export WTSMGR_ATOMIC_DIR=$mnt/test-$$
	rm -rf "$mnt"/test-* "$mnt"/man
	mkdir -p "$WTSMGR_ATOMIC_DIR"
	chown "$WTSMGR_USER" "$WTSMGR_ATOMIC_DIR"
	say "atomic filesystem: $WTSMGR_ATOMIC_DIR (XFS on a loop device)"
	# A small one for tests that fill it up.
	small=$(ensure_xfs_mount small-xfs.img 320M "${WTSMGR_SMALL_MOUNT:-/mnt/wtsmgr-small}")
	export WTSMGR_FULL_DIR=$small/test-$$
	rm -rf "$small"/test-*
	mkdir -p "$WTSMGR_FULL_DIR"
	chown "$WTSMGR_USER" "$WTSMGR_FULL_DIR"
	say "small filesystem to fill: $WTSMGR_FULL_DIR (XFS on a loop device)"
elif [ -n "${WTSMGR_ATOMIC_DIR:-}" ]; then
	say "atomic filesystem: $WTSMGR_ATOMIC_DIR (from WTSMGR_ATOMIC_DIR)"
	[ -n "${WTSMGR_FULL_DIR:-}" ] ||
		say "NOTE: WTSMGR_FULL_DIR is unset: the full-filesystem test is skipped"
else
	[ "${CI:-}" = true ] && die "CI must run the atomic-filesystem tests, but this is not root" \
		"run CI as root so that it can loop-mount XFS"
	say "NOTE: not root and WTSMGR_ATOMIC_DIR is unset: tests that need an atomic"
	say "      filesystem are skipped (making the XFS loop mount needs root)"
fi

passed=0
failed=0
skipped=0
failures=()
skips=()

# Run one suite as the unprivileged user, from the work directory (the
# clone itself may not be readable by that user), showing its output, and
# add its counts: $1 = name, $2 = awk program printing "passed failed
# skipped" from the output, rest = command.  run_suite_as_root is the same
# for the few suites that need root themselves (they start their servers as
# the unprivileged user).
run_suite()
{
	_run_suite as_user "$@"
}

run_suite_as_root()
{
	_run_suite "" "$@"
}

_run_suite()
{
	local runner=$1 name=$2 counter=$3 log=$work/$2.log rc p f s
	shift 3
	say "running $name"
	$runner "$@" 2>&1 | tee "$log" && rc=0 || rc=${PIPESTATUS[0]}
	read -r p f s < <(awk "$counter" "$log")
	p=${p:-0}
	f=${f:-0}
	s=${s:-0}
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	if [ "$f" -ne 0 ]; then
		failures+=("$name (log: $log)")
	fi
	if [ "$s" -ne 0 ]; then
		skips+=("$name: $s skipped (log: $log)")
	fi
	say "$name: $p passed, $f failed, $s skipped"
}

# pg_regress (TAP-style output since PostgreSQL 17) and prove -v, counted
# from the per-test lines each prints: "ok N # skip ..." is a skip, and so
# is a TAP file that skips as a whole (prove: "t/NNN.pl .. skipped: why").
# prove's own summary adds failures that no line shows (a test that died, a
# plan not met).
count_regress='/^ok [0-9]/ && tolower($0) ~ /^ok [0-9]+[^#]*# *skip/ {s++; next}
	/^ok [0-9]/ {p++} /^not ok [0-9]/ {f++}
	END {print p+0, f+0, s+0}'
count_prove='/^ok [0-9]/ && tolower($0) ~ /^ok [0-9]+[^#]*# *skip/ {s++; next}
	/^ok [0-9]/ {p++} /^not ok [0-9]/ {f++}
	/\.\. skipped: / {s++}
	/^Failed [0-9]+\/[0-9]+ subtests/ {split($2, a, "/"); sf += a[1]}
	/Wstat|Bailout called|Parse errors|Dubious/ {bad = 1}
	END {if (sf > f) f = sf; if (bad && f == 0) f = 1; print p+0, f+0, s+0}'

export PATH="$prefix/bin:$PATH"

# The core patches, against the pristine source they were made for.
orig=$(ls -1 "$WTSMGR_CACHE_DIR"/src/postgresql-18_*.orig.tar.bz2 2>/dev/null | sort -V | tail -n 1 || true)
if [ -n "$orig" ]; then
	run_suite patches "$count_regress" "$work/src/scripts/check-patches.sh" "$orig"
else
	say "patches/ not checked: no pristine source tarball cached (the server was built with --source)"
fi

# Every relative link of the documentation resolves: in the tree itself,
# since the work directory's copy leaves out results/ directories (those
# of bench/ among them).  It only reads files.
run_suite_as_root docs "$count_regress" "$WTSMGR_ROOT/scripts/check-docs.sh"
# Every ereport() of the C files against the message style guide
# (docs/code-checks.md): it only reads files.
run_suite_as_root messages "$count_regress" "$WTSMGR_ROOT/scripts/check-messages"
run_suite unit "$count_regress" \
	make -s -C "$work/src" PG_CONFIG="$pg_config" check-split
# The kernel-side audits' judge of a trace (scripts/WtsmgrTrace.pm), on
# made-up traces that keep and break each of its rules.
run_suite trace-audit-unit "$count_prove" prove -v "$work/src/test/audit/trace_audit.pl"
# The benchmarks' figures and reports (bench/WtsmgrBench.pm and
# bench/bench-report), on made-up runs.
run_suite bench-unit "$count_prove" prove -v "$work/src/test/bench/bench_report.pl"
# pgindent and pg_bsd_indent from the server's own source tree
run_suite pgindent "$count_regress" \
	"$work/src/scripts/pgindent-check.sh" "$prefix" "$work/pgindent"
run_suite regress "$count_regress" \
	make -C "$work/src" PG_CONFIG="$pg_config" installcheck TAP_TESTS=
# t/010 needs small segment files: it runs in tap-smallseg only (here it
# would skip itself, and a skip is no pass).
main_tap=$(cd "$work/src" && ls t/*.pl | grep -v '^t/010_small_segments\.pl$' | tr '\n' ' ')
run_suite tap "$count_prove" \
	make -C "$work/src" PG_CONFIG="$pg_config" installcheck REGRESS= PROVE_FLAGS=-v \
	PROVE_TESTS="$main_tap"
# The TAP tests that need small segments, and t/030 and t/031 again, whose
# runs are split there.
run_suite tap-smallseg "$count_prove" \
	make -C "$work/smallseg" PG_CONFIG="$ss_prefix/bin/pg_config" installcheck \
	REGRESS= PROVE_TESTS='t/010_small_segments.pl t/030_checkpoint_runs.pl t/031_bgwriter_runs.pl' PROVE_FLAGS=-v

# sql/ and a few TAP tests (SQL functions and views, the write path on the
# atomic filesystem, statistics) under ASan and UBSan: any report fails.
mkdir -p "$work/sanitize-reports"
is_root && chown "$WTSMGR_USER" "$work/sanitize-reports"
run_suite sanitize "$count_prove" \
	"$work/src/scripts/sanitize.sh" "$asan_prefix" "$work/asan" "$work/sanitize-reports"

# PostgreSQL's own regression suite, on the atomic filesystem when there
# is one, against a server with wtsmgr preloaded.
mkdir -p "$work/core"
is_root && chown "$WTSMGR_USER" "$work/core"
run_suite core-regress "$count_regress" \
	"$work/src/scripts/core-regress.sh" "$prefix" "${WTSMGR_ATOMIC_DIR:-$work/core}" "$work/core"

# pg_rewind's own TAP suite, against the pg_rewind that patches 0004 and 0007
# change.
run_suite core-rewind "$count_prove" \
	"$work/src/scripts/core-rewind.sh" "$prefix" "$work/rewind"

# The kernel-side audit of every write to an untorn tablespace: as root
# (tracefs), with its server run as the unprivileged user.
run_suite_as_root write-audit "$count_regress" \
	"$work/src/scripts/write-audit.sh" "$prefix" "${WTSMGR_ATOMIC_DIR:-}" "$work/audit"

# The atomic filesystem shut down under load, losing what its log had not
# written: crash recovery must still leave everything consistent.
run_suite_as_root crash-model "$count_regress" \
	"$work/src/scripts/crash-model.sh" "$prefix" "$work/crash"

# Free space fragmented until atomic writes fail: checkpoints and crash
# recovery complete, and the kernel sees no write that could tear.
run_suite_as_root fragment-audit "$count_regress" \
	"$work/src/scripts/fragment-audit.sh" "$prefix" "$work/fragment"

# Writes in flight while their process dies, and a tablespace filesystem
# that hangs at start: writes held back with blkio throttling.
run_suite_as_root process-death "$count_regress" \
	"$work/src/scripts/process-death.sh" "$prefix" "$work/death"

# wtsmgr's views as Prometheus metrics: prometheus-postgres-exporter with
# monitoring/postgres_exporter/wtsmgr-queries.yaml, scraped and compared
# with SQL and the WAL.
run_suite_as_root exporter "$count_regress" \
	"$work/src/scripts/exporter.sh" "$prefix" "$work/exporter"

# Patroni with etcd: a killed leader fails over and rejoins through the
# patched pg_rewind with the rewind role of docs/patroni.md, then a
# planned switchover back.
run_suite_as_root patroni "$count_regress" \
	"$work/src/scripts/patroni.sh" "$prefix" "$work/patroni"

# A disk that loses and tears the writes in its cache at a crash: stock
# PostgreSQL with full_page_writes = off must be corrupted by it, with
# full_page_writes = on and with wtsmgr never, nor with wtsmgr writing
# every block through its doublewrite area.
run_suite_as_root torn-crash "$count_regress" \
	"$work/src/scripts/torn-crash.sh" "$prefix" "$work/torn"

ok=true
[ "$failed" -eq 0 ] || ok=false
# Under CI=true a skip fails the run: CI must run everything.
if [ "${CI:-}" = true ] && [ "$skipped" -ne 0 ]; then
	failures+=("CI=true, but $skipped tests were skipped: CI must run them all")
	ok=false
fi
if $ok; then
	rm -rf "$work"
	if is_root; then
		rm -rf "$WTSMGR_ATOMIC_DIR" "$WTSMGR_FULL_DIR"
	fi
else
	for f in "${failures[@]}"; do
		say "FAILED: $f"
	done
	say "work directory kept: $work"
fi
for s in "${skips[@]}"; do
	say "SKIPPED: $s"
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
$ok
