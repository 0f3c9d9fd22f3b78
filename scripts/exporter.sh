#!/usr/bin/env bash
# scripts/exporter.sh -- wtsmgr's views as Prometheus metrics, through
# prometheus-postgres-exporter (Debian bookworm's package, 0.11) and
# monitoring/postgres_exporter/wtsmgr-queries.yaml.
#
# Usage: scripts/exporter.sh PREFIX WORKDIR
#
# Needs root for the atomic XFS loop mount (ensure_atomic_fs).  A server
# with wtsmgr preloaded runs as the unprivileged user, data directory in
# WORKDIR (ext4), with two tablespaces: ts_atomic on the atomic XFS and
# ts_plain in WORKDIR.  The exporter runs as that user too, connects as a
# role that has only pg_monitor (as docs/monitoring.md says to), listens
# on a free loopback port, and is scraped with HTTP::Tiny.  Each scrape
# is taken between two readings of the same views through psql, so that a
# counter must lie between the two and a state must equal one of them.
#
#  1. After a table in each tablespace was filled and checkpointed: every
#     series the query file promises is there with its type and labels
#     (one per tablespace, the server's label), and agrees with
#     wtsmgr_tablespaces, wtsmgr_stat_io and pg_stat_wal; the untorn
#     gauges agree with the filesystem under each tablespace (stat -f).
#  2. After a checkpoint, an UPDATE of every row of both tables and
#     another checkpoint: the same checks on a second scrape, and the
#     counters moved as the WAL says (pg_walinspect, which reads it):
#     ts_atomic's first changes have no image and fpi_skipped_total rose
#     by at least as many blocks, ts_plain's have images and
#     pg_stat_wal_fpi_total rose by at least that many; writes_total rose
#     by at least the blocks changed, atomically only in ts_atomic.
#  3. Controls, which prove that the checks can fail: the exporter run
#     without --extend.query-path, and with a query file whose mappings
#     are wrong (made from the repository's file with sed, below), must
#     each fail every one of the four checks of a scrape.
#
# WTSMGR_EXPORTER_QUERIES names another query file to test (a negative
# control by hand).  Everything started here (server, exporter) is stopped
# and the tablespace directory on the atomic filesystem removed on exit,
# whatever happens.  Prints TAP lines, and figures as "#" lines.
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$1
workdir=$2
queries_src=${WTSMGR_EXPORTER_QUERIES:-$WTSMGR_ROOT/monitoring/postgres_exporter/wtsmgr-queries.yaml}
export PATH="$prefix/bin:$PATH"

skip_unless_root "the exporter suite needs root (the XFS loop mount)"
exporter_bin=$(command -v prometheus-postgres-exporter) ||
	die "prometheus-postgres-exporter is missing" \
		"apt-get install prometheus-postgres-exporter (scripts/build-server.sh lists it)"

mkdir -p "$workdir"
chown "$WTSMGR_USER" "$workdir"
pgdata=$workdir/pgdata
sock=$workdir/sock
plain=$workdir/ts_plain
atomic=$(ensure_atomic_fs)/exporter-$$
port=5432	# the server listens on its own socket directory only
mkdir -p "$sock" "$plain" "$atomic"
chown "$WTSMGR_USER" "$sock" "$plain" "$atomic"
# The exporter reads the file as the unprivileged user: a copy it can read.
queries=$workdir/wtsmgr-queries.yaml
if [ -e "$queries_src" ]; then
	install -m 644 -o "$WTSMGR_USER" "$queries_src" "$queries"
else
	queries=$queries_src	# a missing file, tested as such
fi

exporter_pid=
cleanup()
{
	set +e
	stop_exporter
	if [ -f "$pgdata/postmaster.pid" ]; then
		as_user pg_ctl -D "$pgdata" -m immediate -w stop >/dev/null 2>&1
	fi
	rm -rf "$atomic"
}
trap cleanup EXIT
trap "exit 1" INT TERM HUP

q()
{
	as_user timeout 60 psql -X -A -t -q -v ON_ERROR_STOP=1 -h "$sock" -p "$port" -d postgres "$@"
}

# Wait until tablespace $1's full_page_images reads $2 (the announcer
# publishes the decision a moment after each checkpoint starts).
wait_decision()
{
	local _
	for _ in $(seq 1 100); do
		[ "$(q -c "SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = '$1'")" = "$2" ] &&
			return 0
		sleep 0.1
	done
	die "tablespace $1 never showed \"$2\" in wtsmgr_tablespaces" "see $sock/server.log"
}

# --- the exporter -------------------------------------------------------

# Start the exporter as the unprivileged user on a free loopback port,
# with the arguments given (the query file or none), and wait until it
# serves /metrics.  setpriv execs, so exporter_pid is the exporter itself.
# A port taken between choosing and binding makes it exit: choose again.
start_exporter()
{
	local _try _
	for _try in 1 2 3; do
		xport=$(perl -MIO::Socket::INET -e '
			my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
				LocalPort => 0, ReuseAddr => 1) or die "no free port: $!\n";
			print $s->sockport, "\n"')
		: >"$workdir/exporter.log"
		chown "$WTSMGR_USER" "$workdir/exporter.log"
		DATA_SOURCE_NAME="host=$sock port=$port user=prometheus dbname=postgres sslmode=disable" \
			setpriv --reuid="$WTSMGR_USER" --regid="$WTSMGR_USER" --init-groups \
			"$exporter_bin" --web.listen-address="127.0.0.1:$xport" \
			--no-collector.bgwriter "$@" >>"$workdir/exporter.log" 2>&1 &
		exporter_pid=$!
		for _ in $(seq 1 100); do
			kill -0 "$exporter_pid" 2>/dev/null || break
			grep -q 'msg="Listening on"' "$workdir/exporter.log" && return 0
			sleep 0.1
		done
		stop_exporter
		grep -q 'address already in use' "$workdir/exporter.log" || break
	done
	cat "$workdir/exporter.log" >&2
	die "the exporter did not start" "its log is above"
}

stop_exporter()
{
	if [ -n "$exporter_pid" ]; then
		kill "$exporter_pid" 2>/dev/null || true
		wait "$exporter_pid" 2>/dev/null || true
		exporter_pid=
	fi
	return 0
}

# Scrape /metrics into $1; print the HTTP status.  On an error the body
# (the exporter's complaint) goes to $1.error, and $1 is left empty, so
# that every check of it fails and says what is absent.
scrape()
{
	perl -MHTTP::Tiny -e '
		my ($url, $out) = @ARGV;
		my $r = HTTP::Tiny->new(timeout => 30)->get($url);
		open my $f, ">", $out or die "$out: $!\n";
		open my $e, ">", "$out.error" or die "$out.error: $!\n";
		print { $r->{success} ? $f : $e } $r->{content};
		print "$r->{status}\n";' "http://127.0.0.1:$xport/metrics" "$1"
}

# The value of series $2 with tablespace $3 (none: "-") in scrape $1, as a
# plain number (the exporter prints 7.118848e+06), "absent" if there is no
# such series, "several" if more than one.
mval()
{
	awk -v m="$2" -v ts="$3" '
		index($0, m "{") == 1 || $0 ~ "^" m " " {
			if (ts != "-" && index($0, "tablespace=\"" ts "\"") == 0) next
			n++; v = $NF
		}
		END {
			if (n == 0) print "absent"
			else if (n > 1) print "several"
			else if (v ~ /^[-+0-9.e]+$/ && v == int(v)) printf "%.0f\n", v
			else print v
		}' "$1"
}

# Label $4 of series $2 with tablespace $3 in scrape $1 ("absent" if none).
mlabel()
{
	perl -ne '
		BEGIN { ($m, $ts, $l) = splice @ARGV, 0, 3; $out = "absent" }
		next unless /^\Q$m\E\{(.*)\} \S+$/;
		my %lab = $1 =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		next unless $lab{tablespace} eq $ts;
		$out = exists $lab{$l} ? $lab{$l} : "absent";
		END { print "$out\n" }' "$2" "$3" "$4" "$1"
}

# The label names of series $2 with tablespace $3, sorted, comma-separated.
mlabelnames()
{
	perl -ne '
		BEGIN { ($m, $ts) = splice @ARGV, 0, 2; $out = "absent" }
		next unless /^\Q$m\E\{(.*)\} \S+$/;
		my %lab = $1 =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
		next unless $lab{tablespace} eq $ts;
		$out = join ",", sort keys %lab;
		END { print "$out\n" }' "$2" "$3" "$1"
}

# --- what the checks compare against ---------------------------------

# The series the query file promises, with their types.
ts_gauges="untorn probed atomic_write images_skipped write_path_atomic
	write_path_doublewrite write_path_md atomic_unit_max_bytes
	probed_time_seconds last_fallback_time_seconds"
io_counters="writes write_bytes extends atomic_writes atomic_units batches
	fpi_skipped refusals errors nonatomic_files doublewrites"
wal_counters="records fpi bytes buffers_full"
info_labels="fs_type device write_path atomic_writes_by full_page_images
	reason fallback_cause"

# A reading of the views straight from SQL into file $1, one
# "key|tablespace|value" line each: the views' own columns, booleans as
# t/f, times as epoch seconds, NULL as "".
sql_reading()
{
	q -F '|' >"$1" <<'SQL'
SELECT 'ts.' || c, tablespace, coalesce(v, '')
  FROM wtsmgr_tablespaces,
       LATERAL (VALUES ('untorn_blocks', untorn_blocks::text),
                       ('atomic_write', atomic_write::text),
                       ('probed_at', extract(epoch FROM probed_at)::text),
                       ('atomic_unit_max', atomic_unit_max::text),
                       ('last_fallback', extract(epoch FROM last_fallback)::text),
                       ('fs_type', fs_type), ('device', device),
                       ('write_path', write_path),
                       ('atomic_writes_by', atomic_writes_by),
                       ('full_page_images', full_page_images),
                       ('reason', reason),
                       ('fallback_cause', fallback_cause)) AS x(c, v)
UNION ALL
SELECT 'io.' || c, tablespace, v::text
  FROM wtsmgr_stat_io,
       LATERAL (VALUES ('writes', writes), ('write_bytes', write_bytes),
                       ('extends', extends), ('atomic_writes', atomic_writes),
                       ('atomic_units', atomic_units), ('batches', batches),
                       ('fpi_skipped', fpi_skipped), ('refusals', refusals),
                       ('errors', errors),
                       ('nonatomic_files', nonatomic_files),
                       ('doublewrites', doublewrites),
                       ('stats_reset', coalesce(extract(epoch FROM stats_reset), 0)::bigint)) AS x(c, v)
UNION ALL
SELECT 'wal.' || c, '-', v
  FROM pg_stat_wal,
       LATERAL (VALUES ('records', wal_records::text), ('fpi', wal_fpi::text),
                       ('bytes', wal_bytes::text),
                       ('buffers_full', wal_buffers_full::text)) AS x(c, v)
ORDER BY 1, 2;
SQL
}

# Value of key $2 for tablespace $3 in reading $1.
sval()
{
	awk -F'|' -v k="$2" -v ts="$3" '$1 == k && $2 == ts { print $3; f = 1 } END { if (!f) print "absent" }' "$1"
}

# Tablespaces of reading $1 that have key $2.
stablespaces()
{
	awk -F'|' -v k="$2" '$1 == k { print $2 }' "$1"
}

# Each check group collects what is wrong in $problems; group_ok prints 1
# if nothing, else 0, and shows the first problems as "#" lines.
problems=()
problem()
{
	problems+=("$*")
}
group_ok()
{
	local p n=0
	if [ ${#problems[@]} -eq 0 ]; then
		echo 1
		return
	fi
	for p in "${problems[@]}"; do
		n=$((n + 1))
		[ "$n" -le 8 ] && echo "#   $p" >&2
	done
	[ "$n" -gt 8 ] && echo "#   ... and $((n - 8)) more" >&2
	echo 0
}

# Check numeric $2 lies in [$3, $4]; else note problem $1.
between()
{
	if [ "$2" = absent ] || [ "$2" = several ] ||
		! awk -v v="$2" -v a="$3" -v b="$4" 'BEGIN { exit !(v + 0 >= a + 0 && v + 0 <= b + 0) }'; then
		problem "$1: exporter $2, SQL $3 .. $4"
	fi
}

# A boolean of the view as the gauge's 1 or 0.
bool01()
{
	case $1 in true) echo 1 ;; false) echo 0 ;; *) echo "?$1" ;; esac
}

# A problem unless scrape $1 declares metric $2 of type $3.
want_type()
{
	grep -qx "# TYPE $2 $3" "$1" || problem "no $3 $2"
}

# A problem unless series $2 of tablespace $3 in scrape $1 has the labels
# server and tablespace, and no other.
want_ts_labels()
{
	local got
	got=$(mlabelnames "$1" "$2" "$3")
	[ "$got" = "server,tablespace" ] || problem "$2{tablespace=$3}: labels $got"
}

# The checks of a scrape $1 against readings $2 (before) and $3 (after);
# each prints 1 or 0.

# Every promised series is there, typed, once per tablespace, with the
# labels it should have.
check_series()
{
	local m=$1 r=$2 name ts want got
	problems=()
	for name in $ts_gauges; do
		want_type "$m" "wtsmgr_tablespace_$name" gauge
	done
	want_type "$m" wtsmgr_tablespace_status_info gauge
	for name in $io_counters; do
		want_type "$m" "wtsmgr_stat_io_${name}_total" counter
	done
	for name in $wal_counters; do
		want_type "$m" "pg_stat_wal_${name}_total" counter
	done
	for ts in $(stablespaces "$r" ts.untorn_blocks); do
		for name in $ts_gauges; do
			want_ts_labels "$m" "wtsmgr_tablespace_$name" "$ts"
		done
		want=$(echo "$info_labels server tablespace" | tr -s ' \t\n' '\n' | sort | paste -sd,)
		got=$(mlabelnames "$m" wtsmgr_tablespace_status_info "$ts")
		[ "$got" = "$want" ] || problem "wtsmgr_tablespace_status_info{tablespace=$ts}: labels $got"
		got=$(mlabel "$m" wtsmgr_tablespace_untorn "$ts" server)
		[ "$got" = "$sock:$port" ] || problem "wtsmgr_tablespace_untorn{tablespace=$ts}: server label $got"
	done
	for ts in $(stablespaces "$r" io.writes); do
		for name in $io_counters; do
			want_ts_labels "$m" "wtsmgr_stat_io_${name}_total" "$ts"
		done
	done
	for name in $wal_counters; do
		got=$(mval "$m" "pg_stat_wal_${name}_total" -)
		case $got in absent | several) problem "pg_stat_wal_${name}_total: $got" ;; esac
	done
	group_ok
}

# The tablespace gauges and the info metric's labels say what
# wtsmgr_tablespaces says (before or after the scrape).
check_tablespaces()
{
	local m=$1 r1=$2 r2=$3 ts c g v1 v2 got wp one
	problems=()
	for ts in $(stablespaces "$r1" ts.untorn_blocks); do
		for c in untorn_blocks:untorn atomic_write:atomic_write; do
			v1=$(bool01 "$(sval "$r1" "ts.${c%%:*}" "$ts")")
			v2=$(bool01 "$(sval "$r2" "ts.${c%%:*}" "$ts")")
			got=$(mval "$m" "wtsmgr_tablespace_${c#*:}" "$ts")
			[ "$got" = "$v1" ] || [ "$got" = "$v2" ] ||
				problem "wtsmgr_tablespace_${c#*:}{$ts}: exporter $got, view $v1/$v2"
		done
		# probed, and when: the epoch of probed_at to the microsecond
		v1=$(sval "$r1" ts.probed_at "$ts")
		got=$(mval "$m" wtsmgr_tablespace_probed "$ts")
		[ "$got" = "$([ -n "$v1" ] && echo 1 || echo 0)" ] ||
			problem "wtsmgr_tablespace_probed{$ts}: exporter $got, probed_at '$v1'"
		got=$(mval "$m" wtsmgr_tablespace_probed_time_seconds "$ts")
		awk -v a="$got" -v b="${v1:-0}" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }' ||
			problem "wtsmgr_tablespace_probed_time_seconds{$ts}: exporter $got, probed_at $v1"
		v1=$(sval "$r1" ts.last_fallback "$ts")
		got=$(mval "$m" wtsmgr_tablespace_last_fallback_time_seconds "$ts")
		awk -v a="$got" -v b="${v1:-0}" 'BEGIN { d = a - b; exit !(d < 1e-5 && d > -1e-5) }' ||
			problem "wtsmgr_tablespace_last_fallback_time_seconds{$ts}: exporter $got, last_fallback '$v1'"
		v1=$(sval "$r1" ts.atomic_unit_max "$ts")
		got=$(mval "$m" wtsmgr_tablespace_atomic_unit_max_bytes "$ts")
		[ "$got" = "${v1:-0}" ] ||
			problem "wtsmgr_tablespace_atomic_unit_max_bytes{$ts}: exporter $got, view '$v1'"
		# images_skipped is full_page_images = 'skipped'
		v1=$(sval "$r1" ts.full_page_images "$ts")
		v2=$(sval "$r2" ts.full_page_images "$ts")
		got=$(mval "$m" wtsmgr_tablespace_images_skipped "$ts")
		{ [ "$v1" = skipped ] && [ "$got" = 1 ]; } || { [ "$v1" != skipped ] && [ "$got" = 0 ]; } ||
			{ [ "$v2" = skipped ] && [ "$got" = 1 ]; } || { [ "$v2" != skipped ] && [ "$got" = 0 ]; } ||
			problem "wtsmgr_tablespace_images_skipped{$ts}: exporter $got, view '$v1'/'$v2'"
		# exactly the write_path_* gauge that the view's write_path names is 1
		wp=$(sval "$r1" ts.write_path "$ts")
		one=
		for g in atomic doublewrite md; do
			got=$(mval "$m" "wtsmgr_tablespace_write_path_$g" "$ts")
			[ "$got" = 1 ] && one="$one$g"
			[ "$got" = 1 ] || [ "$got" = 0 ] ||
				problem "wtsmgr_tablespace_write_path_$g{$ts}: $got"
		done
		[ "$one" = "$wp" ] || problem "wtsmgr_tablespace_write_path_*{$ts}: '$one' is 1, view says '$wp'"
		# the info metric's labels are the view's words
		for c in $info_labels; do
			v1=$(sval "$r1" "ts.$c" "$ts")
			v2=$(sval "$r2" "ts.$c" "$ts")
			got=$(mlabel "$m" wtsmgr_tablespace_status_info "$ts" "$c")
			[ "$got" = "$v1" ] || [ "$got" = "$v2" ] ||
				problem "wtsmgr_tablespace_status_info{$ts}: $c=\"$got\", view \"$v1\""
		done
		got=$(mval "$m" wtsmgr_tablespace_status_info "$ts")
		[ "$got" = 1 ] || problem "wtsmgr_tablespace_status_info{$ts}: $got"
	done
	group_ok
}

# The counters lie between the two readings of wtsmgr_stat_io and
# pg_stat_wal.
check_counters()
{
	local m=$1 r1=$2 r2=$3 ts name
	problems=()
	for ts in $(stablespaces "$r1" io.writes); do
		for name in $io_counters; do
			between "wtsmgr_stat_io_${name}_total{$ts}" \
				"$(mval "$m" "wtsmgr_stat_io_${name}_total" "$ts")" \
				"$(sval "$r1" "io.$name" "$ts")" "$(sval "$r2" "io.$name" "$ts")"
		done
		between "wtsmgr_stat_io_stats_reset_time_seconds{$ts}" \
			"$(mval "$m" wtsmgr_stat_io_stats_reset_time_seconds "$ts" | awk '{ printf "%.0f\n", $1 }')" \
			"$(sval "$r1" io.stats_reset "$ts")" "$(sval "$r2" io.stats_reset "$ts")"
	done
	group_ok
}

check_wal()
{
	local m=$1 r1=$2 r2=$3 name
	problems=()
	for name in $wal_counters; do
		between "pg_stat_wal_${name}_total" "$(mval "$m" "pg_stat_wal_${name}_total" -)" \
			"$(sval "$r1" "wal.$name" -)" "$(sval "$r2" "wal.$name" -)"
	done
	group_ok
}

# Scrape $1 between readings $1.before and $1.after; the HTTP status
# goes to $1.status.
reading_scrape()
{
	sql_reading "$1.before"
	scrape "$1" >"$1.status"
	sql_reading "$1.after"
}

# TAP: scrape $1 answered 200.
check_status()
{
	local st
	st=$(cat "$1.status")
	[ "$st" = 200 ] || echo "# $(basename "$1"): HTTP $st: $(head -c 300 "$1.error" | tr '\n' ' ')"
	tap_check "$([ "$st" = 200 ] && echo 1 || echo 0)" "$2: /metrics answers 200 (got $st)"
}

# TAP: the four checks of scrape $1 against its readings, $2 naming it.
check_scrape()
{
	tap_check "$(check_series "$1" "$1.before")" \
		"$2: every series is there, typed, once per tablespace, with its labels"
	tap_check "$(check_tablespaces "$1" "$1.before" "$1.after")" \
		"$2: the tablespace gauges and status labels agree with wtsmgr_tablespaces"
	tap_check "$(check_counters "$1" "$1.before" "$1.after")" \
		"$2: the wtsmgr_stat_io counters lie between two SQL readings"
	tap_check "$(check_wal "$1" "$1.before" "$1.after")" \
		"$2: the pg_stat_wal counters lie between two SQL readings"
}

# --- the server -----------------------------------------------------------

say "server in $workdir, ts_atomic in $atomic"
start_cluster "$pgdata" "$port" "$sock" \
	"checkpoint_timeout = 1h" "max_wal_size = 1GB" "autovacuum = off"
q -c "CREATE EXTENSION wtsmgr" -c "CREATE EXTENSION pg_walinspect" \
	-c "CREATE TABLESPACE ts_atomic LOCATION '$atomic'" \
	-c "CREATE TABLESPACE ts_plain LOCATION '$plain'" \
	-c "CREATE ROLE prometheus LOGIN" -c "GRANT pg_monitor TO prometheus"
# fillfactor 50: the UPDATE below stays on each page (HOT), so it changes
# exactly the pages there are.
for t in atomic plain; do
	q -c "CREATE TABLE t_$t (id int, pad text) WITH (fillfactor = 50) TABLESPACE ts_$t" \
		-c "INSERT INTO t_$t SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g"
done
q -c "CHECKPOINT"
wait_decision ts_atomic skipped

# --- 1. the first scrape ------------------------------------------------

start_exporter --extend.query-path="$queries"
m1=$workdir/scrape1.prom
reading_scrape "$m1"
check_status "$m1" "scrape 1"

tap_check "$([ "$(mval "$m1" pg_up -)" = 1 ] &&
	[ "$(mval "$m1" pg_exporter_last_scrape_error -)" = 0 ] && echo 1 || echo 0)" \
	"the exporter reaches the server (pg_up 1) and its last scrape had no error"
tap_check "$([ "$(awk -v f="filename=\"$queries\"" 'index($0, "pg_exporter_user_queries_load_error{") == 1 && index($0, f) { print $NF }' "$m1")" = 0 ] &&
	echo 1 || echo 0)" "the query file loads (pg_exporter_user_queries_load_error 0)"
check_scrape "$m1" "scrape 1"

# The untorn gauge against the filesystem under each tablespace, as the
# kernel names it (stat -f), not as wtsmgr does.
fs_atomic=$(stat -f -c %T "$atomic")
fs_plain=$(stat -f -c %T "$plain")
echo "# filesystems: ts_atomic on $fs_atomic, ts_plain on $fs_plain"
tap_check "$([ "$fs_atomic" = xfs ] && [ "$(mval "$m1" wtsmgr_tablespace_untorn ts_atomic)" = 1 ] &&
	[ "$fs_plain" != xfs ] && [ "$(mval "$m1" wtsmgr_tablespace_untorn ts_plain)" = 0 ] &&
	[ "$(mval "$m1" wtsmgr_tablespace_write_path_atomic ts_atomic)" = 1 ] &&
	[ "$(mval "$m1" wtsmgr_tablespace_write_path_md ts_plain)" = 1 ] && echo 1 || echo 0)" \
	"untorn and write path: 1 and atomic for ts_atomic on XFS, 0 and md for ts_plain on $fs_plain"

# --- 2. more writes, the second scrape ----------------------------------

q -c "CHECKPOINT"
wait_decision ts_atomic skipped
lsn_a=$(q -c "SELECT pg_current_wal_insert_lsn()")
for t in atomic plain; do
	q -c "UPDATE t_$t SET id = id + 1"
done
lsn_b=$(q -c "SELECT pg_current_wal_insert_lsn()")
# Writes every page changed; the checkpointer flushes its statistics
# before it reports the checkpoint done.
q -c "CHECKPOINT"
# The decision settles again, so that the images_skipped gauge of scrape
# 2 has one value to agree with.
wait_decision ts_atomic skipped

# What the WAL holds for each table's blocks in [lsn_a, lsn_b): blocks
# changed and images logged.
read -r blocks_atomic fpi_atomic blocks_plain fpi_plain < <(q -F ' ' -c "
	SELECT count(DISTINCT b.relblocknumber) FILTER (WHERE c.relname = 't_atomic'),
	       count(*) FILTER (WHERE c.relname = 't_atomic' AND b.block_fpi_length > 0),
	       count(DISTINCT b.relblocknumber) FILTER (WHERE c.relname = 't_plain'),
	       count(*) FILTER (WHERE c.relname = 't_plain' AND b.block_fpi_length > 0)
	  FROM pg_get_wal_block_info('$lsn_a', '$lsn_b', false) b
	  JOIN pg_class c ON c.relfilenode = b.relfilenode
	 WHERE b.relforknumber = 0 AND c.relname IN ('t_atomic', 't_plain')")
echo "# WAL $lsn_a .. $lsn_b: t_atomic $blocks_atomic blocks changed, $fpi_atomic images;" \
	"t_plain $blocks_plain blocks changed, $fpi_plain images"

m2=$workdir/scrape2.prom
reading_scrape "$m2"
check_status "$m2" "scrape 2"
check_scrape "$m2" "scrape 2"

# Increase of series $1 (tablespace $2) from scrape 1 to scrape 2.
delta()
{
	local a b
	a=$(mval "$m1" "$1" "$2")
	b=$(mval "$m2" "$1" "$2")
	awk -v a="$a" -v b="$b" 'BEGIN { if (a ~ /^[0-9.e+]+$/ && b ~ /^[0-9.e+]+$/) printf "%.0f\n", b - a; else print "absent" }'
}
# Is $1 >= $2 (both numbers)?
ge()
{
	[ "$1" != absent ] && awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'
}

d_skip_a=$(delta wtsmgr_stat_io_fpi_skipped_total ts_atomic)
d_skip_p=$(delta wtsmgr_stat_io_fpi_skipped_total ts_plain)
d_fpi=$(delta pg_stat_wal_fpi_total -)
d_w_a=$(delta wtsmgr_stat_io_writes_total ts_atomic)
d_aw_a=$(delta wtsmgr_stat_io_atomic_writes_total ts_atomic)
d_e_a=$(delta wtsmgr_stat_io_extends_total ts_atomic)
d_w_p=$(delta wtsmgr_stat_io_writes_total ts_plain)
d_aw_p=$(delta wtsmgr_stat_io_atomic_writes_total ts_plain)
echo "# increases from scrape 1 to 2: fpi_skipped_total ts_atomic $d_skip_a, ts_plain $d_skip_p;" \
	"pg_stat_wal_fpi_total $d_fpi; writes_total ts_atomic $d_w_a, extends $d_e_a (atomic $d_aw_a)," \
	"ts_plain $d_w_p (atomic $d_aw_p)"

tap_check "$([ "$blocks_atomic" -gt 0 ] && [ "$fpi_atomic" -eq 0 ] && ge "$d_skip_a" "$blocks_atomic" &&
	[ "$d_skip_p" = 0 ] && echo 1 || echo 0)" \
	"images: WAL has none for ts_atomic's $blocks_atomic changed blocks, and its fpi_skipped_total rose by $d_skip_a >= $blocks_atomic; ts_plain's by $d_skip_p"
tap_check "$([ "$blocks_plain" -gt 0 ] && ge "$fpi_plain" "$blocks_plain" && ge "$d_fpi" "$fpi_plain" &&
	echo 1 || echo 0)" \
	"pg_stat_wal_fpi_total rose by $d_fpi >= the $fpi_plain images WAL has for ts_plain's $blocks_plain changed blocks"
# atomic_writes counts the blocks of writes and of extensions written atomically.
tap_check "$(ge "$d_w_a" "$blocks_atomic" && [ "$d_aw_a" = "$((d_w_a + d_e_a))" ] &&
	ge "$d_w_p" "$blocks_plain" && [ "$d_aw_p" = 0 ] && echo 1 || echo 0)" \
	"writes_total rose by at least the blocks changed ($d_w_a, $d_w_p), atomically in ts_atomic only"

# --- 3. controls -----------------------------------------------------

# The same checks of scrape 2 against an exporter that does not have the
# file, then one whose file maps columns wrongly: each check must fail.
control()
{
	local what=$1 m=$workdir/control-$2.prom fails=0 names="" r c
	shift 2
	stop_exporter
	start_exporter "$@"
	reading_scrape "$m"
	for c in check_series check_tablespaces check_counters check_wal; do
		r=$($c "$m" "$m.before" "$m.after" 2>"$m.$c")
		[ "$r" = 0 ] && fails=$((fails + 1)) || names="$names $c"
		# what it found, for the record
		[ -s "$m.$c" ] && echo "# $c: $(sed -n '1s/^#   //p' "$m.$c")"
	done
	tap_check "$([ "$fails" -eq 4 ] && echo 1 || echo 0)" \
		"control, $what: $fails of 4 checks fail${names:+ (these pass:$names)}"
}
control "exporter without --extend.query-path" none
# Made from the repository's file, whichever file the main part tested.
good=$WTSMGR_ROOT/monitoring/postgres_exporter/wtsmgr-queries.yaml
wrong=$workdir/wrong-queries.yaml
sed -e 's/untorn_blocks::int AS untorn,/(NOT untorn_blocks)::int AS untorn,/' \
	-e 's/SELECT tablespace, fs_type, device, write_path,/SELECT tablespace, fs_type, device, fs_type AS write_path,/' \
	-e 's/writes AS writes_total,/extends AS writes_total,/' \
	-e 's/wal_fpi AS fpi_total,/wal_records AS fpi_total,/' \
	-e '/- writes_total:/,/usage:/s/"COUNTER"/"GAUGE"/' \
	"$good" >"$wrong"
[ "$(diff "$good" "$wrong" | grep -c '^>')" -eq 5 ] ||
	die "the wrong query file does not differ from $good in 5 lines" \
		"the sed expressions above no longer match the query file"
chown "$WTSMGR_USER" "$wrong"
control "a query file with wrong mappings" wrong --extend.query-path="$wrong"
stop_exporter

tap_done
