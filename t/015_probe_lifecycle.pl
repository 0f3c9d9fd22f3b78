# Copyright (c) 2026, wtsmgr developers
#
# Probes and the tablespace table over a tablespace's life:
#
# 1. A probe does its file I/O without wtsmgr's lock.  With one probe stalled
#    (injection point "wtsmgr-probe", local to its backend), other sessions
#    write, checkpoint, and create and probe another tablespace.  The control:
#    once the stall is released, the stalled probe completes.
# 2. A dropped tablespace is no longer announced in WAL (pg_walinspect), and
#    the views say so.
# 3. A tablespace created with the OID of a dropped one, in another
#    directory, is probed anew: an untorn one's successor on the root
#    filesystem keeps its images and is written by md.c, so its writes and
#    checkpoints succeed (with the old entry's "untorn" they would be refused).

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

my $node = new_wtsmgr_node(
	'lifecycle',
	conf => "checkpoint_timeout = 1h\n",
	extensions => [ 'pg_walinspect', 'injection_points' ]);

my %oid = create_tablespaces(
	$node,
	ts_a => "$atomic_dir/ts_life_a_$$",
	ts_b => "$atomic_dir/ts_life_b_$$");
my $ts_c = "$atomic_dir/ts_life_c_$$";
mkdir $ts_c or die "mkdir $ts_c: $!";
$node->safe_psql(
	'postgres', q{
	CREATE TABLE t_a (x int) TABLESPACE ts_a;
	CREATE TABLE t_b (x int) TABLESPACE ts_b;
	INSERT INTO t_a SELECT generate_series(1, 1000)});

# 1. Stall a re-probe of ts_a in one backend.
my $stalled = $node->background_psql('postgres');
$stalled->query_safe(q{SELECT injection_points_set_local()});
$stalled->query_safe(q{SELECT injection_points_attach('wtsmgr-probe', 'wait')});
$stalled->query_until(qr/probing/, q{
\echo probing
SELECT tablespace, untorn_blocks FROM wtsmgr_probe('ts_a');
});
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'wtsmgr-probe'})
  or die 'the probe did not stall';

my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', qq{
	SET statement_timeout = '20s';
	INSERT INTO t_b SELECT generate_series(1, 10000);
	CHECKPOINT;
	CREATE TABLESPACE ts_c LOCATION '$ts_c';
	CREATE TABLE t_c (x int) TABLESPACE ts_c;
	INSERT INTO t_c SELECT generate_series(1, 10000);
	CHECKPOINT;
	SELECT untorn_blocks FROM wtsmgr_tablespaces WHERE tablespace = 'ts_c'},
	# (a wait for an LWLock cannot be cancelled: if the stalled probe held
	# wtsmgr's lock, this would hang, so time it out)
	timeout => 60, timed_out => \my $timed_out);
ok(!$timed_out, 'nobody waits for the stalled probe');
is($ret, 0, 'while a probe of ts_a is stalled, others write, checkpoint and probe')
  or diag $stderr;
is($stdout, 't', 'the new tablespace was probed meanwhile');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'wtsmgr-probe'}),
	'1', 'and the probe of ts_a is still stalled');

# Control: released, the stalled probe completes.
$node->safe_psql('postgres', q{SELECT injection_points_wakeup('wtsmgr-probe')});
like($stalled->query_safe(q{SELECT 1}), qr/1/, 'released, the probe returns');
$stalled->quit;
is($node->safe_psql('postgres', 'SELECT count(*) FROM t_a'),
	'1000', 'ts_a reads back');

# 2. A dropped tablespace is no longer announced.
my $oid_a = $oid{ts_a};
$node->safe_psql('postgres', 'DROP TABLE t_a');
$node->safe_psql('postgres', 'DROP TABLESPACE ts_a');
my $lsn1 = $node->lsn('insert');
$node->safe_psql('postgres', 'CHECKPOINT');
$node->safe_psql('postgres', 'INSERT INTO t_b VALUES (1)');
wait_for_decision($node, 'ts_b', 'skipped');
# a commit flushes the WAL that holds the announcement, for pg_walinspect
$node->safe_psql('postgres', 'INSERT INTO t_b VALUES (2)');
my $announced = $node->safe_psql(
	'postgres', qq{
	SELECT string_agg(description, ';') FROM pg_get_wal_records_info('$lsn1', pg_current_wal_flush_lsn())
	WHERE resource_manager = 'wtsmgr'});
like($announced, qr/tablespaces/, "the cycle is announced: $announced");
unlike($announced, qr/\b$oid_a\b/, 'without the dropped tablespace');

# 3. A new tablespace with ts_a's OID, on the root filesystem.  Only binary
# upgrade mode lets us choose a tablespace's OID.
my $plain = $node->basedir . '/ts_reused';
mkdir $plain or die "mkdir $plain: $!";
$node->stop;
$node->command_ok(
	[ 'pg_ctl', '--pgdata' => $node->data_dir, '--log' => $node->logfile,
	  '--options' => '-b', '--wait', 'start' ],
	'restart in binary upgrade mode');
$node->_update_pid(1);

# In binary upgrade mode every new relation needs its OIDs set.
my $next_oid = 900000;
sub create_table_bu
{
	my ($table, $ts) = @_;
	my ($type, $array, $rel) = ($next_oid, $next_oid + 1, $next_oid + 2);
	$next_oid += 3;
	return qq{
	SELECT binary_upgrade_set_next_pg_type_oid($type);
	SELECT binary_upgrade_set_next_array_pg_type_oid($array);
	SELECT binary_upgrade_set_next_heap_pg_class_oid($rel);
	SELECT binary_upgrade_set_next_heap_relfilenode($rel);
	CREATE TABLE $table (x int) TABLESPACE $ts;};
}

# The restart forgot ts_a; make the server learn it under the old
# directory first, as a running server that saw it would have.
my $ts_a2 = "$atomic_dir/ts_life_a2_$$";
mkdir $ts_a2 or die "mkdir $ts_a2: $!";
$node->safe_psql(
	'postgres', qq{
	SELECT binary_upgrade_set_next_pg_tablespace_oid($oid_a);
	CREATE TABLESPACE ts_a2 LOCATION '$ts_a2';
	} . create_table_bu('t_a2', 'ts_a2') . qq{
	INSERT INTO t_a2 VALUES (1);
	CHECKPOINT;
	DROP TABLE t_a2;
	DROP TABLESPACE ts_a2});
is( $node->safe_psql(
		'postgres', q{SELECT untorn_blocks FROM wtsmgr_tablespaces WHERE tablespace = 'ts_b'}),
	't', 'ts_b is untorn');
($ret, $stdout, $stderr) = $node->psql(
	'postgres', qq{
	SELECT binary_upgrade_set_next_pg_tablespace_oid($oid_a);
	CREATE TABLESPACE ts_reused LOCATION '$plain';
	} . create_table_bu('t_reused', 'ts_reused') . qq{
	INSERT INTO t_reused SELECT generate_series(1, 5000);
	CHECKPOINT;
	SELECT oid FROM pg_tablespace WHERE spcname = 'ts_reused'});
is($ret, 0, 'a tablespace re-created with a known OID on the root filesystem takes writes and checkpoints')
  or diag $stderr;
like($stdout, qr/\b$oid_a$/, 'with the old OID');
is( $node->safe_psql(
		'postgres',
		q{SELECT untorn_blocks || '|' || full_page_images FROM wtsmgr_tablespaces
		  WHERE tablespace = 'ts_reused'}),
	'false|kept: blocks may tear',
	'it was probed anew: its blocks may tear and it keeps its images');
is($node->safe_psql('postgres', 'SELECT sum(x) FROM t_reused'),
	'12502500', 'its data reads back');
$node->stop;

done_testing();
