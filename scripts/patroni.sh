#!/usr/bin/env bash
# scripts/patroni.sh -- wtsmgr under Patroni with etcd: failover of a
# killed leader, its rejoin through pg_rewind, and a planned switchover.
#
# Usage: scripts/patroni.sh PREFIX WORKDIR
#
# Needs root (for the atomic XFS loop mount, ensure_atomic_fs); etcd,
# Patroni and PostgreSQL run as the unprivileged user.  Owns: one etcd
# member and two Patroni nodes (n1, n2) on loopback ports picked free at
# start, their configuration and logs in WORKDIR, and their data
# directories in a directory of its own on the atomic filesystem.  The
# PostgreSQL is PREFIX (our patched debug build) with
# shared_preload_libraries = 'wtsmgr', data checksums (Patroni's initdb
# options), use_pg_rewind and a separate rewind role
# (postgresql.authentication.rewind), as docs/patroni.md describes.
#
# Patroni creates the rewind role with EXECUTE on pg_ls_dir, pg_stat_file
# and the two pg_read_binary_file functions only; patch 0004 makes
# pg_rewind with a live source also call pg_backup_start()/pg_backup_stop()
# there, so bootstrap.post_bootstrap runs docs/patroni-post-bootstrap.sh,
# which grants those two as well (Patroni runs it before it creates its
# roles, so the script creates the role and Patroni then sets its password
# and the four grants).  WTSMGR_PATRONI_GRANTS=documented leaves the script
# out: the negative control, under which the rejoin of (A) must fail.
#
# A. Under pgbench on the leader n1, SIGKILL n1's Patroni, postmaster and
#    every backend at once.  n2 must become leader (seconds to failover).
#    n1's Patroni started again must recover in single-user mode, run
#    pg_rewind (its log: exit code 0) and follow n2, with no base backup
#    (no such line in its log, the same data directory inode and system
#    identifier); then, after more pgbench on n2 and waiting for replay,
#    pgbench's tables agree on both (counts and hashes of every row), and
#    pg_amcheck --heapallindexed is clean on both (seconds to rejoin).
# B. patronictl switchover back to n1 under pgbench on n2; n2 rejoins as
#    replica; the same checks.
# C. pg_rewind connecting with a role that has only Patroni's four grants
#    is refused before it touches the target (the error of patch 0004),
#    so that (A) passing means the extra grants are what made it work.
# D. Patroni's single-user crash recovery, whose work on every block
#    changed since the last common checkpoint the rewind then overwrites,
#    run the same way on a copy of the crashed n1 taken in (A): it must
#    run with wtsmgr's resource manager registered (asked in that session;
#    control: not without shared_preload_libraries), over WAL that lacks
#    images (pg_waldump counts), and leave pgbench's balances agreeing and
#    pg_amcheck --heapallindexed clean.
#
# Everything (Patroni, PostgreSQL, etcd, pgbench, the data directories,
# the atomic mount if this script mounted it) is removed on exit, also on
# failure.  Prints TAP lines, and the timings as "#" lines.
set -euo pipefail
. "$(dirname "$0")/common.sh"

prefix=$1
workdir=$2
grants=${WTSMGR_PATRONI_GRANTS:-wtsmgr}
export PATH="$prefix/bin:$PATH"

skip_unless_root "the Patroni suite needs root (atomic XFS loop mount)"
for c in patroni patronictl etcd curl; do
	command -v "$c" >/dev/null ||
		die "$c is missing" "apt-get install -t bookworm patroni etcd-server curl"
done
case $grants in
	wtsmgr | documented) ;;
	*) die "WTSMGR_PATRONI_GRANTS must be wtsmgr or documented, not '$grants'" ;;
esac

ensure_user
mkdir -p "$workdir"
chown "$WTSMGR_USER" "$workdir"
chmod 755 "$workdir"
atomic_mnt=${WTSMGR_ATOMIC_MOUNT:-/mnt/wtsmgr-atomic}
mounted_here=false
mountpoint -q "$atomic_mnt" || mounted_here=true
datadirs=$(atomic_scratch_dir "patroni-$$")
chown "$WTSMGR_USER" "$datadirs"
scope=wtsmgr-patroni-$$
pw_super=super-$$
pw_repl=repl-$$
pw_rewind=rewind-$$
nodes=(n1 n2)
crashcopy=$datadirs/n1-crashed
declare -A api_port pg_port patroni_pid
etcd_pid=
pgbench_pid=

# Loopback ports nobody listens on, from a base that differs between runs.
used_ports=" $(ss -Htan | awk '{n = split($4, a, ":"); print a[n]}' | sort -u | tr '\n' ' ') "
next_port=$((30000 + $$ % 20000))
# Sets port (not in a subshell: it advances next_port).
free_port()
{
	while [[ $used_ports == *" $next_port "* ]]; do
		next_port=$((next_port + 1))
	done
	port=$next_port
	next_port=$((next_port + 1))
}
free_port; etcd_client=$port
free_port; etcd_peer=$port
for n in "${nodes[@]}"; do
	free_port; api_port[$n]=$port
	free_port; pg_port[$n]=$port
done
free_port; copy_port=$port

cleanup()
{
	local n pm
	set +e
	[ -n "$pgbench_pid" ] && kill "$pgbench_pid" 2>/dev/null
	# Patroni stops its PostgreSQL when it gets SIGTERM.
	for n in "${nodes[@]}"; do
		[ -n "${patroni_pid[$n]:-}" ] && kill "${patroni_pid[$n]}" 2>/dev/null
	done
	for n in "${nodes[@]}"; do
		[ -n "${patroni_pid[$n]:-}" ] && timeout 30 tail --pid="${patroni_pid[$n]}" -f /dev/null
		[ -n "${patroni_pid[$n]:-}" ] && kill -KILL "${patroni_pid[$n]}" 2>/dev/null
	done
	for n in "${nodes[@]}" n1-crashed; do
		if [ -f "$datadirs/$n/postmaster.pid" ]; then
			as_user pg_ctl -D "$datadirs/$n" -m immediate -w -t 30 stop >/dev/null 2>&1
		fi
	done
	if [ -n "$etcd_pid" ]; then
		kill "$etcd_pid" 2>/dev/null
		timeout 30 tail --pid="$etcd_pid" -f /dev/null
	fi
	rm -rf "$datadirs"
	if $mounted_here && mountpoint -q "$atomic_mnt"; then
		umount "$atomic_mnt"
	fi
}
trap cleanup EXIT

psql_node()
{
	local n=$1
	shift
	PGPASSWORD=$pw_super psql -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 \
		-p "${pg_port[$n]}" -U postgres -d postgres "$@"
}

# HTTP status of Patroni's REST API: /primary answers 200 on the leader
# only, /replica on a running replica only.
api_status()
{
	curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:${api_port[$1]}/$2" || true
}

# Wait up to $3 seconds for node $1's REST API to answer 200 on $2.
wait_api()
{
	local end=$(($(date +%s) + $3))
	while [ "$(api_status "$1" "$2")" != 200 ]; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.2
	done
}

# Wait up to $3 seconds for node $1 to run as replica and stream from
# node $2.
wait_streaming()
{
	local end=$(($(date +%s) + $3))
	until [ "$(api_status "$1" replica)" = 200 ] &&
		[ "$(psql_node "$2" -c "SELECT count(*) FROM pg_stat_replication WHERE application_name = '$1' AND state = 'streaming'" 2>/dev/null)" = 1 ]; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.2
	done
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

# The post_bootstrap script of docs/patroni.md, copied where the
# unprivileged user can run it.
cp "$WTSMGR_ROOT/docs/patroni-post-bootstrap.sh" "$workdir/post-bootstrap.sh"
chmod 755 "$workdir/post-bootstrap.sh"

write_config()
{
	local n=$1 post=
	[ "$grants" = wtsmgr ] && post="  post_bootstrap: $workdir/post-bootstrap.sh"
	mkdir -p "$workdir/$n"
	cat >"$workdir/$n/patroni.yml" <<EOF
scope: $scope
name: $n

restapi:
  listen: 127.0.0.1:${api_port[$n]}
  connect_address: 127.0.0.1:${api_port[$n]}

etcd3:
  hosts: 127.0.0.1:$etcd_client

bootstrap:
  dcs:
    # Fast failover for the test; loop_wait + 2 * retry_timeout <= ttl.
    ttl: 10
    loop_wait: 1
    retry_timeout: 4
    maximum_lag_on_failover: 67108864
    postgresql:
      use_pg_rewind: true
      use_slots: true
      parameters:
        shared_preload_libraries: wtsmgr
        wal_level: replica
        hot_standby: "on"
        max_wal_senders: 5
        max_replication_slots: 5
        wal_keep_size: 128MB
  initdb:
    - data-checksums
    - encoding: UTF8
    - locale: C
$post

postgresql:
  listen: 127.0.0.1:${pg_port[$n]}
  connect_address: 127.0.0.1:${pg_port[$n]}
  data_dir: $datadirs/$n
  bin_dir: $prefix/bin
  pgpass: $workdir/$n/pgpass
  authentication:
    superuser:
      username: postgres
      password: $pw_super
    replication:
      username: replicator
      password: $pw_repl
    rewind:
      username: rewind_user
      password: $pw_rewind
  parameters:
    unix_socket_directories: $workdir/$n
    logging_collector: "on"
    log_directory: $workdir/$n/pglog
    log_filename: postgresql.log
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 scram-sha-256
    - host all all 127.0.0.1/32 scram-sha-256
EOF
}

# Run a command in the background as the unprivileged user, in a session
# of its own, output appended to $2; sets spawned_pid to its real pid
# (runuser forks and does not pass signals on, so the shell that execs the
# command writes its pid into $1).
spawn_user()
{
	local pidfile=$1 log=$2
	shift 2
	rm -f "$pidfile"
	touch "$log"
	chown "$WTSMGR_USER" "$log"
	setsid runuser -u "$WTSMGR_USER" -- env HOME="$workdir" sh -c \
		'p=$1 l=$2; shift 2; echo $$ >"$p"; exec "$@" >>"$l" 2>&1' \
		sh "$pidfile" "$log" "$@" </dev/null 2>>"$log" &
	disown
	for _ in $(seq 50); do
		[ -s "$pidfile" ] && break
		sleep 0.1
	done
	spawned_pid=$(cat "$pidfile")
}

start_patroni()
{
	spawn_user "$workdir/$1/patroni.pid" "$workdir/$1/patroni.log" patroni "$workdir/$1/patroni.yml"
	patroni_pid[$1]=$spawned_pid
}

# Every process of node $1's PostgreSQL: the postmaster and its children.
pg_pids()
{
	local pm
	pm=$(head -n 1 "$datadirs/$1/postmaster.pid")
	echo "$pm" $(pgrep -P "$pm")
}

sysid() { as_user pg_controldata "$datadirs/$1" | awk -F': *' '/system identifier/ {print $2}'; }
dir_inode() { stat -c %i "$datadirs/$1"; }

# Counts and an order-independent hash of every row of pgbench's tables.
table_digest="
	SELECT string_agg(format('%s:%s:%s', t, n, h), ' ' ORDER BY t) FROM (
		SELECT 'accounts' t, count(*) n, sum(hashtext(a::text)::bigint) h FROM pgbench_accounts a
		UNION ALL SELECT 'branches', count(*), sum(hashtext(b::text)::bigint) FROM pgbench_branches b
		UNION ALL SELECT 'tellers', count(*), sum(hashtext(t::text)::bigint) FROM pgbench_tellers t
		UNION ALL SELECT 'history', count(*), sum(hashtext(h::text)::bigint) FROM pgbench_history h) s"

pgbench_on()
{
	local n=$1 secs=$2
	PGPASSWORD=$pw_super pgbench -h 127.0.0.1 -p "${pg_port[$n]}" -U postgres \
		-c 4 -j 2 -T "$secs" postgres >>"$workdir/pgbench.log" 2>&1
}

# pgbench_on in the background, its pid in pgbench_pid (which cleanup
# kills); pgbench_wait waits for it to end, however it ends.
pgbench_bg()
{
	pgbench_on "$@" &
	pgbench_pid=$!
}

pgbench_wait()
{
	wait "$pgbench_pid" 2>/dev/null || true
	pgbench_pid=
}

# The checks after node $2 rejoined leader $1: replay caught up, the same
# rows, amcheck clean on both.  $3 names the step.
check_same_data()
{
	local leader=$1 replica=$2 what=$3 lsn d1 d2 ok end
	pgbench_on "$leader" 5 || true
	lsn=$(psql_node "$leader" -c "SELECT pg_current_wal_lsn()")
	end=$(($(date +%s) + 60))
	ok=0
	while [ "$(date +%s)" -lt "$end" ]; do
		if [ "$(psql_node "$replica" -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'" 2>/dev/null)" = t ]; then
			ok=1
			break
		fi
		sleep 0.2
	done
	tap_check "$ok" "$what: $replica replayed $leader's WAL up to $lsn"
	d1=$(psql_node "$leader" -c "$table_digest")
	d2=$(psql_node "$replica" -c "$table_digest")
	echo "# $what: $leader $d1"
	echo "# $what: $replica $d2"
	[ -n "$d1" ] && [ "$d1" = "$d2" ] && ok=1 || ok=0
	tap_check "$ok" "$what: pgbench tables the same on $leader and $replica"
	for n in "$leader" "$replica"; do
		if PGPASSWORD=$pw_super pg_amcheck -h 127.0.0.1 -p "${pg_port[$n]}" -U postgres \
			-d postgres --heapallindexed >"$workdir/amcheck-$what-$n.log" 2>&1; then
			ok=1
		else
			ok=0
			sed 's/^/# /' "$workdir/amcheck-$what-$n.log" | head -n 20 || true
		fi
		tap_check "$ok" "$what: pg_amcheck --heapallindexed clean on $n"
	done
}

# The checks that node $1 rejoined without a new base backup, from its
# Patroni log after byte $2: $3 = 1 when pg_rewind must have run.
check_no_reclone()
{
	local n=$1 from=$2 want_rewind=$3 what=$4 newlog ok
	newlog=$(tail -c +"$((from + 1))" "$workdir/$n/patroni.log")
	if [ "$want_rewind" = 1 ]; then
		grep -q 'running pg_rewind from' <<<"$newlog" &&
			grep -q 'pg_rewind exit code=0' <<<"$newlog" && ok=1 || ok=0
		tap_check "$ok" "$what: $n's Patroni ran pg_rewind, exit code 0"
		grep -E 'single user mode$|pg_rewind exit code|stderr=|^pg_rewind:' <<<"$newlog" |
			sed "s/^/# $what: /" | head -n 12 || true
	fi
	grep -qiE 'basebackup|bootstrap from leader|bootstrap_from_leader|clone from|removing data directory' \
		<<<"$newlog" && ok=0 || ok=1
	tap_check "$ok" "$what: no base backup in $n's Patroni log"
	[ "$(sysid "$n")" = "${sysid_before[$n]}" ] && ok=1 || ok=0
	tap_check "$ok" "$what: $n's system identifier unchanged (${sysid_before[$n]})"
	[ "$(dir_inode "$n")" = "${inode_before[$n]}" ] && ok=1 || ok=0
	tap_check "$ok" "$what: $n's data directory is the same directory (inode ${inode_before[$n]})"
}

suite_start=$(now)
failover_s=n/a rejoin_s=n/a switchover_s=n/a rejoin2_s=n/a

# etcd, one member, v3 API (Patroni's etcd3 section).
spawn_user "$workdir/etcd.pid" "$workdir/etcd.log" etcd --name e1 --data-dir "$workdir/etcd" \
	--listen-client-urls "http://127.0.0.1:$etcd_client" \
	--advertise-client-urls "http://127.0.0.1:$etcd_client" \
	--listen-peer-urls "http://127.0.0.1:$etcd_peer" \
	--initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
	--initial-cluster "e1=http://127.0.0.1:$etcd_peer" \
	--initial-cluster-state new
etcd_pid=$spawned_pid
ok=0
for _ in $(seq 100); do
	if curl -s -m 1 "http://127.0.0.1:$etcd_client/health" | grep -q '"health":"true"'; then
		ok=1
		break
	fi
	sleep 0.1
done
tap_check "$ok" "etcd answers on 127.0.0.1:$etcd_client"
[ "$ok" = 1 ] || die "etcd did not start" "see $workdir/etcd.log"

for n in "${nodes[@]}"; do
	write_config "$n"
done
chown -R "$WTSMGR_USER" "$workdir"

start_patroni n1
wait_api n1 primary 90 && ok=1 || ok=0
tap_check "$ok" "n1 bootstrapped and leads (grants: $grants)"
[ "$ok" = 1 ] || die "n1 did not become leader" "see $workdir/n1/patroni.log"
start_patroni n2
wait_api n2 replica 90 && ok=1 || ok=0
tap_check "$ok" "n2 cloned from n1 and runs as replica"
[ "$ok" = 1 ] || die "n2 did not start as replica" "see $workdir/n2/patroni.log"

psql_node n1 -c "CREATE EXTENSION wtsmgr; CREATE EXTENSION amcheck"
echo "# n1: $(psql_node n1 -c "SELECT format('data_checksums=%s shared_preload_libraries=%s', current_setting('data_checksums'), current_setting('shared_preload_libraries'))")"
echo "# n1: $(psql_node n1 -c "SELECT format('pg_default: untorn_blocks=%s full_page_images=%s', untorn_blocks, full_page_images) FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")"
[ "$(psql_node n1 -c "SELECT untorn_blocks AND current_setting('data_checksums')::bool FROM wtsmgr_tablespaces WHERE tablespace = 'pg_default'")" = t ] && ok=1 || ok=0
tap_check "$ok" "n1 has data checksums and wtsmgr leaves images out in pg_default"
echo "# rewind_user's grants: $(psql_node n1 -c "SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1) FROM pg_proc p WHERE has_function_privilege('rewind_user', p.oid, 'EXECUTE') AND p.proname IN ('pg_ls_dir','pg_stat_file','pg_read_binary_file','pg_backup_start','pg_backup_stop') AND NOT has_function_privilege('public', p.oid, 'EXECUTE')")"
PGPASSWORD=$pw_super pgbench -h 127.0.0.1 -p "${pg_port[n1]}" -U postgres -i -s 5 -q postgres \
	>"$workdir/pgbench-init.log" 2>&1
declare -A sysid_before inode_before
for n in "${nodes[@]}"; do
	sysid_before[$n]=$(sysid "$n")
	inode_before[$n]=$(dir_inode "$n")
done

# A. The leader dies with everything it runs.
pgbench_bg n1 60
sleep 8
# shellcheck disable=SC2046 # one pid a word
kill -KILL "${patroni_pid[n1]}" $(pg_pids n1)
t_kill=$(now)
patroni_pid[n1]=
pgbench_wait
wait_api n2 primary 60 && ok=1 || ok=0
failover_s=$(elapsed "$t_kill")
echo "# A: failover: n2 leads ${failover_s} s after the SIGKILL"
tap_check "$ok" "A: n2 took over after n1 was killed"
[ "$ok" = 1 ] || die "no failover" "see $workdir/n2/patroni.log"

# A copy of n1 as it crashed, for (D); Patroni's rewind overwrites what
# its own single-user recovery did to every block changed since the last
# common checkpoint, so that recovery is checked on the copy.
cp -a "$datadirs/n1" "$crashcopy"
log_from=$(stat -c %s "$workdir/n1/patroni.log")
t_start=$(now)
start_patroni n1
wait_streaming n1 n2 90 && ok=1 || ok=0
rejoin_s=$(elapsed "$t_start")
echo "# A: rejoin: n1 streams from n2 ${rejoin_s} s after its Patroni started"
tap_check "$ok" "A: n1 rejoined as replica of n2"
a_rejoined=$ok
check_no_reclone n1 "$log_from" 1 A
grep -q 'doing crash recovery in a single user mode' <(tail -c +"$((log_from + 1))" "$workdir/n1/patroni.log") && ok=1 || ok=0
tap_check "$ok" "A: n1's Patroni recovered it in single-user mode before the rewind"
if [ "$(api_status n1 replica)" = 200 ]; then
	check_same_data n2 n1 A
fi

# D. Patroni's crash recovery in single-user mode, on the copy of the
# crashed n1, exactly as Patroni runs it (rewind.py ensure_clean_shutdown:
# the -- options of postmaster.opts, archive_mode=on, archive_command=
# false, database template1): it must succeed with wtsmgr's resource
# manager registered (pg_get_wal_resource_managers(), asked in that same
# single-user session), after replaying WAL that lacks images (pg_waldump);
# then the copy, started on its own, is clean under pg_amcheck
# --heapallindexed and pgbench's balances agree.  Control: the same
# single-user session without shared_preload_libraries lists no wtsmgr.
single_user_opts=()
while IFS= read -r opt; do
	case $opt in
		--config-file=*) ;;	# the copy has its own
		--*=*) single_user_opts+=(-c "${opt#--}") ;;
	esac
done < <(sed 's/" "/\n/g; s/"//g' "$crashcopy/postmaster.opts" | tr -d '\r')
redo=$(as_user pg_controldata "$crashcopy" | awk -F': *' '/REDO location/ {print $2}')
# (pg_waldump exits 1 at the end of the WAL, which it always reaches here)
n_rec=$( (as_user pg_waldump -p "$crashcopy/pg_wal" -s "$redo" 2>/dev/null || true) | wc -l)
n_fpi=$( (as_user pg_waldump -p "$crashcopy/pg_wal" -s "$redo" --fullpage 2>/dev/null || true) | wc -l)
echo "# D: WAL of the crashed n1 from its redo pointer $redo: $n_rec records, $n_fpi of them with full-page images"
rmgr_query="SELECT string_agg(rm_name, ',') AS custom_rmgrs FROM pg_get_wal_resource_managers() WHERE NOT rm_builtin"
as_user postgres --single -D "$crashcopy" "${single_user_opts[@]}" -c archive_mode=on \
	-c archive_command=false template1 <<<"$rmgr_query" >"$workdir/crash-single.log" 2>&1 && ok=1 || ok=0
grep -q 'custom_rmgrs = "wtsmgr"' "$workdir/crash-single.log" || ok=0
grep -E 'redo (starts|done)|custom_rmgrs' "$workdir/crash-single.log" | sed 's/^/# D: /' | head -n 4 || true
tap_check "$ok" "D: single-user crash recovery of the crashed n1 ran with wtsmgr's resource manager"
as_user postgres --single -D "$crashcopy" -c shared_preload_libraries= template1 <<<"$rmgr_query" \
	>"$workdir/crash-single-control.log" 2>&1 || true
# (single-user mode prints no line for a NULL value, only the column)
grep -q 'custom_rmgrs' "$workdir/crash-single-control.log" &&
	! grep -q 'custom_rmgrs = "wtsmgr"' "$workdir/crash-single-control.log" && ok=1 || ok=0
tap_check "$ok" "D: control: without shared_preload_libraries the same session lists no wtsmgr"
as_user pg_ctl -D "$crashcopy" -w -l "$workdir/crash-copy.log" -o "-c port=$copy_port -c listen_addresses='' -c unix_socket_directories=$workdir -c logging_collector=off -c archive_mode=off" start >/dev/null && ok=1 || ok=0
if [ "$ok" = 1 ]; then
	as_user psql -X -q -At -h "$workdir" -p "$copy_port" -U postgres -d postgres \
		-c "$pgbench_balances_agree" >"$workdir/crash-balances.log" 2>&1 || true
	[ "$(cat "$workdir/crash-balances.log")" = t ] && ok=1 || ok=0
	tap_check "$ok" "D: pgbench's balances agree on the recovered copy"
	as_user pg_amcheck -h "$workdir" -p "$copy_port" -U postgres -d postgres --heapallindexed \
		>"$workdir/crash-amcheck.log" 2>&1 && ok=1 || ok=0
	tap_check "$ok" "D: pg_amcheck --heapallindexed clean on the recovered copy"
	as_user pg_ctl -D "$crashcopy" -w stop >/dev/null
else
	tap_check 0 "D: the recovered copy starts (see $workdir/crash-copy.log)"
fi
rm -rf "$crashcopy"

# B. A planned switchover back to n1, under pgbench on n2.
# It needs n1 back as replica: without it, (B) fails as a whole.
if [ "$a_rejoined" != 1 ]; then
	tap_check 0 "B: switchover not tried: n1 did not rejoin in (A)"
else
	pgbench_bg n2 15
	sleep 4
	log_from=$(stat -c %s "$workdir/n2/patroni.log")
	t_sw=$(now)
	as_user patronictl -c "$workdir/n1/patroni.yml" switchover --leader n2 --candidate n1 --force \
		>"$workdir/switchover.log" 2>&1 && ok=1 || ok=0
	sed 's/^/# /' "$workdir/switchover.log" | tail -n 3
	wait_api n1 primary 60 && [ "$ok" = 1 ] && ok=1 || ok=0
	switchover_s=$(elapsed "$t_sw")
	echo "# B: switchover: n1 leads ${switchover_s} s after patronictl switchover"
	tap_check "$ok" "B: patronictl switchover made n1 leader"
	pgbench_wait
	wait_streaming n2 n1 90 && ok=1 || ok=0
	rejoin2_s=$(elapsed "$t_sw")
	echo "# B: rejoin: n2 streams from n1 ${rejoin2_s} s after patronictl switchover"
	tap_check "$ok" "B: n2 rejoined as replica of n1"
	# A clean switchover needs no rewind: the old leader's shutdown checkpoint
	# reached the replica before it was promoted.  Patroni 3.0.2 cannot
	# parse PostgreSQL 16+'s pg_waldump error ("expected at least", not
	# "wanted") to find where that checkpoint ends, so it runs pg_rewind
	# anyway, which finds nothing to do.  Say what it did.
	grep -E 'Failed to parse pg_waldump|pg_rewind exit code|^pg_rewind:' \
		<(tail -c +"$((log_from + 1))" "$workdir/n2/patroni.log") | sed 's/^/# B: /' | head -n 5 || true
	check_no_reclone n2 "$log_from" 0 B
	if [ "$(api_status n2 replica)" = 200 ]; then
		check_same_data n1 n2 B
	fi
fi

# C. The documented rewind role alone is refused by the patched pg_rewind,
# before it reads or changes the target (an empty directory here).
leader=n1
[ "$(api_status n1 primary)" = 200 ] || leader=n2
psql_node "$leader" -c "CREATE ROLE rewind_doc LOGIN PASSWORD '$pw_rewind'" \
	-c "GRANT EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewind_doc" \
	-c "GRANT EXECUTE ON function pg_catalog.pg_stat_file(text, boolean) TO rewind_doc" \
	-c "GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text) TO rewind_doc" \
	-c "GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewind_doc"
as_user mkdir -m 700 "$workdir/empty-target"
if as_user env PGPASSWORD="$pw_rewind" pg_rewind --dry-run -D "$workdir/empty-target" \
	--source-server "host=127.0.0.1 port=${pg_port[$leader]} user=rewind_doc dbname=postgres" \
	>"$workdir/rewind-doc.log" 2>&1; then
	ok=0
else
	grep -q 'permission denied to put the source server in backup mode' "$workdir/rewind-doc.log" && ok=1 || ok=0
fi
sed 's/^/# C: /' "$workdir/rewind-doc.log" | head -n 3 || true
tap_check "$ok" "C: pg_rewind with only Patroni's four grants is refused"

echo "# figures: failover ${failover_s} s, rejoin after crash ${rejoin_s} s, switchover ${switchover_s} s, rejoin after switchover ${rejoin2_s} s, suite $(elapsed "$suite_start") s"
tap_done
