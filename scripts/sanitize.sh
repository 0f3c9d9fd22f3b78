#!/usr/bin/env bash
# scripts/sanitize.sh -- the pg_regress tests in sql/ and a few TAP tests
# against a server and a wtsmgr built with AddressSanitizer and
# UndefinedBehaviorSanitizer; any sanitizer report fails the run.
#
# Usage: scripts/sanitize.sh PREFIX TREE REPORTDIR
#
#   PREFIX     a server built by scripts/build-server.sh --flavor debug-asan
#   TREE       a copy of the wtsmgr tree whose wtsmgr is installed into
#              PREFIX (scripts/test.sh builds and installs it, as it does
#              for debug-smallseg); the tests write their results there
#   REPORTDIR  where the sanitizers write their reports (emptied first)
#
# Run as the unprivileged user; the TAP tests use WTSMGR_ATOMIC_DIR (the
# atomic filesystem) as under scripts/test.sh.  WTSMGR_SANITIZE_TAP
# replaces the TAP subset (default: t/001_registry.pl, the SQL functions
# and views; t/004_atomic_writes.pl, the write path on the atomic
# filesystem with crash recovery; t/016_statistics.pl, wtsmgr_stat_io and
# the statistics' pgstat kind).
#
# PostgreSQL forks a process per connection, and a sanitizer report aborts
# only that process (the postmaster then restarts the others): the test that
# drove it may still pass, and the report would go to a server log that
# nobody reads.  So every report goes to a file of its own in REPORTDIR
# (log_path, one file per process), and the run fails when any file is
# there, whatever the tests said; the server logs are searched as well, for
# a report written before log_path applied and for a process that died of a
# signal.  The build has PostgreSQL's Valgrind hooks carried out by ASan
# (test/asan/valgrind/memcheck.h), so reads past a palloc'd chunk are seen.
# Prints TAP-style lines: pg_regress's and prove's, then this script's own.
set -euo pipefail
. "$(dirname "$0")/common.sh"

[ $# -eq 3 ] || die "usage: $0 PREFIX TREE REPORTDIR"
prefix=$1
tree=$2
reports=$3
pg_config=$prefix/bin/pg_config

_tap_n=0
_tap_failed=0

mkdir -p "$reports"
find "$reports" -mindepth 1 -delete
# As PostgreSQL's CI: abort on the first report, with a stack trace;
# detect_leaks=0 because PostgreSQL does not free what it allocates before
# exiting.  log_path makes each process write its report to
# REPORTDIR/asan.PID (or ubsan.PID).
export ASAN_OPTIONS="print_stacktrace=1:abort_on_error=1:detect_leaks=0:log_path=$reports/asan${WTSMGR_SANITIZE_ASAN_OPTIONS:+:$WTSMGR_SANITIZE_ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:abort_on_error=1:log_path=$reports/ubsan"

# The server and wtsmgr are really instrumented: otherwise a clean run
# would prove nothing.  PGXS takes CFLAGS, CPPFLAGS and LDFLAGS from
# pg_config's Makefile.global, so wtsmgr is compiled as the server is.
cflags=$("$pg_config" --cflags)
case $cflags in
	*-fsanitize=address*) asan=1 ;;
	*) asan=0 ;;
esac
tap_check "$asan" "the server at $prefix is built with -fsanitize=address (pg_config --cflags)"
lib=$("$pg_config" --pkglibdir)/wtsmgr.so
n_asan=$(nm -u "$lib" 2>/dev/null | grep -c ' __asan_report_' || true)
n_ubsan=$(nm -u "$lib" 2>/dev/null | grep -c ' __ubsan_handle_' || true)
n_pois=$(nm -u "$lib" 2>/dev/null | grep -c ' __asan_.*poison_memory_region' || true)
tap_check "$([ "$n_asan" -gt 0 ] && [ "$n_ubsan" -gt 0 ] && echo 1 || echo 0)" \
	"installed wtsmgr.so calls ASan ($n_asan report functions) and UBSan ($n_ubsan handlers)"
n_srv=$(nm -u "$prefix/bin/postgres" 2>/dev/null | grep -c ' __asan_.*poison_memory_region' || true)
tap_check "$([ "$n_srv" -gt 0 ] && echo 1 || echo 0)" \
	"the server's memory contexts poison through ASan (USE_VALGRIND: $n_srv poisoning functions used)"

mkdir -p "$reports"
find "$reports" -mindepth 1 -delete
tap_tests=${WTSMGR_SANITIZE_TAP:-t/001_registry.pl t/004_atomic_writes.pl t/016_statistics.pl}
# Logs of an earlier run would be searched below.
rm -rf "$tree/log" "$tree/tmp_check"
# sql/ and the TAP tests in two runs, so that a failure of one does not
# keep the other from running.
rc=0
make -C "$tree" PG_CONFIG="$pg_config" installcheck TAP_TESTS= || rc=$?
tap_check "$([ "$rc" -eq 0 ] && echo 1 || echo 0)" "make installcheck of sql/: exit status $rc"
rc=0
make -C "$tree" PG_CONFIG="$pg_config" installcheck REGRESS= PROVE_FLAGS=-v \
	PROVE_TESTS="$tap_tests" || rc=$?
tap_check "$([ "$rc" -eq 0 ] && echo 1 || echo 0)" "make installcheck of $tap_tests: exit status $rc"

# Every report file, printed whole.
mapfile -t files < <(find "$reports" -type f | sort)
for f in "${files[@]}"; do
	echo "# ---- $f"
	sed 's/^/# /' "$f"
done
tap_check "$([ ${#files[@]} -eq 0 ] && echo 1 || echo 0)" \
	"no sanitizer report files in $reports (${#files[@]} found)"

# The server logs: pg_regress's temporary instance's (log/, kept) and the
# TAP nodes' (tmp_check/log).
mapfile -t logs < <(find "$tree/log" "$tree/tmp_check" -type f \
	\( -name '*.log' -o -name 'regress_log_*' \) 2>/dev/null | sort)
hits=$(grep -E -n 'AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:|terminated by signal' \
	"${logs[@]}" /dev/null 2>/dev/null || true)
[ -n "$hits" ] && printf '%s\n' "$hits" | sed 's/^/# /'
tap_check "$([ -z "$hits" ] && echo 1 || echo 0)" \
	"no sanitizer report and no process killed by a signal in ${#logs[@]} server and test logs"
tap_done
