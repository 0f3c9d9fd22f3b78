# Copyright (c) 2026, wtsmgr developers
#
# The core full-page-image hook (xlog_untorn_block_hook) on its own, before
# wtsmgr uses it.  A test-only module (test/wtsmgr_test, never installed)
# declares one tablespace untorn.  Under pgbench, relations there get no
# full-page images (neither for changes nor for hint bits: checksums are on),
# relations in another tablespace keep theirs, forced images stay, and while
# a base backup runs images come back for everything.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my ($module) = test_module();

my $node = new_wtsmgr_node(
	'hook',
	preload => $module,
	# wal_level replica, which base backups need
	allows_streaming => 1,
	manual_checkpoints => 1,
	conf => "allow_in_place_tablespaces = on\n",
	extensions => ['pg_walinspect']);

is($node->safe_psql('postgres', 'SHOW data_checksums'),
	'on', 'data checksums are on, so hint bits are WAL-logged');

$node->safe_psql(
	'postgres', q{
	CREATE TABLESPACE ts_untorn LOCATION '';
	CREATE TABLESPACE ts_torn LOCATION '';
	CREATE DATABASE db_untorn TABLESPACE ts_untorn;
	CREATE DATABASE db_torn TABLESPACE ts_torn});
my $untorn_oid = tablespace_oid($node, 'ts_untorn');
my $torn_oid = tablespace_oid($node, 'ts_torn');

for my $db ('db_untorn', 'db_torn')
{
	$node->command_ok(
		[ 'pgbench', '--initialize', '--scale=2', '--quiet', $db ],
		"pgbench tables in $db");
}

alter_system($node, 'wtsmgr_test.untorn_tablespace_oid', $untorn_oid);

# Run pgbench on both databases between two LSNs.
sub run_pgbench
{
	my ($name) = @_;
	for my $db ('db_untorn', 'db_torn')
	{
		$node->command_ok(
			[
				'pgbench', '--no-vacuum', '--client=2',
				'--transactions=300', $db
			],
			"pgbench on $db ($name)");
	}
}

# Images per tablespace between two LSNs, in records other than the
# forced-image FPI records of log_newpage and friends: "images|replayed",
# the latter counting images marked for replay (BKPIMAGE_APPLY).
sub images
{
	my ($start, $end, $spc) = @_;
	return $node->safe_psql(
		'postgres', qq{
	SELECT count(*) FILTER (WHERE block_fpi_length > 0) || '|' ||
	       count(*) FILTER (WHERE 'APPLY' = ANY (block_fpi_info))
	FROM pg_get_wal_block_info('$start', '$end', false)
	WHERE reltablespace = $spc AND record_type <> 'FPI'});
}

sub hint_images
{
	my ($start, $end, $spc) = @_;
	return $node->safe_psql(
		'postgres', qq{
	SELECT count(*) FILTER (WHERE block_fpi_length > 0) || '|' || count(*)
	FROM pg_get_wal_block_info('$start', '$end', false)
	WHERE reltablespace = $spc AND record_type = 'FPI_FOR_HINT'});
}

# 1. A checkpoint makes every page due for an image again.
$node->safe_psql('postgres', 'CHECKPOINT');
my $lsn1 = $node->lsn('insert');
run_pgbench('after checkpoint');
# A sequential scan after the updates sets hint bits on pages not yet
# changed since the checkpoint, which logs FPI_FOR_HINT records.
$node->safe_psql('postgres', 'CHECKPOINT');
my $lsn_hint = $node->lsn('insert');
for my $db ('db_untorn', 'db_torn')
{
	$node->safe_psql($db, 'SELECT count(*) FROM pgbench_history');
	$node->safe_psql($db, 'SELECT sum(abalance) FROM pgbench_accounts');
}
my $lsn2 = $node->lsn('insert');

my ($untorn_fpi) = split /\|/, images($lsn1, $lsn2, $untorn_oid);
my ($torn_fpi) = split /\|/, images($lsn1, $lsn2, $torn_oid);
is($untorn_fpi, 0, 'no full-page images for the untorn tablespace');
cmp_ok($torn_fpi, '>', 0,
	"the other tablespace keeps its full-page images ($torn_fpi)");
my ($untorn_hint_fpi, $untorn_hint_records) = split /\|/,
  hint_images($lsn_hint, $lsn2, $untorn_oid);
my ($torn_hint_fpi) = split /\|/, hint_images($lsn_hint, $lsn2, $torn_oid);
is($untorn_hint_fpi, 0, 'no hint-bit images for the untorn tablespace');
# As with full_page_writes = off, the record itself stays: pg_rewind and WAL
# summaries learn from its block reference that the block changed.
cmp_ok($untorn_hint_records, '>', 0,
	"hint-bit records without images for the untorn tablespace ($untorn_hint_records)");
cmp_ok($torn_hint_fpi, '>', 0, 'hint-bit images for the other tablespace');

# 2. Forced images stay: an index build logs its pages with log_newpage.
my $lsn3 = $node->lsn('insert');
$node->safe_psql('db_untorn',
	'CREATE INDEX pgbench_accounts_abalance ON pgbench_accounts (abalance)');
my $lsn4 = $node->lsn('insert');
cmp_ok(
	$node->safe_psql(
		'postgres', qq{
	SELECT count(*) FROM pg_get_wal_block_info('$lsn3', '$lsn4', false)
	WHERE reltablespace = $untorn_oid AND record_type = 'FPI'
	  AND 'APPLY' = ANY (block_fpi_info)}),
	'>', 0,
	'forced images (log_newpage) are kept for the untorn tablespace');

# 3. wal_consistency_checking images stay, but are not for replay there.
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET wal_consistency_checking = 'heap,btree'});
$node->reload;
$node->safe_psql('postgres', 'CHECKPOINT');
my $lsn5 = $node->lsn('insert');
run_pgbench('with wal_consistency_checking');
my $lsn6 = $node->lsn('insert');
my ($u_img, $u_apply) = split /\|/, images($lsn5, $lsn6, $untorn_oid);
my ($t_img, $t_apply) = split /\|/, images($lsn5, $lsn6, $torn_oid);
cmp_ok($u_img, '>', 0,
	'consistency-check images are kept for the untorn tablespace');
is($u_apply, 0, '... and none of them is marked for replay');
cmp_ok($t_apply, '>', 0,
	'the other tablespace still has images marked for replay');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET wal_consistency_checking');
$node->reload;

# 4. While a base backup runs, images come back for everything.
my $backup = $node->background_psql('postgres');
$backup->query_safe(q{SELECT pg_backup_start('wtsmgr_test', true)});
my $lsn7 = $node->lsn('insert');
run_pgbench('during backup');
my $lsn8 = $node->lsn('insert');
$backup->query_safe('SELECT * FROM pg_backup_stop(false)');
$backup->quit;
($untorn_fpi) = split /\|/, images($lsn7, $lsn8, $untorn_oid);
($torn_fpi) = split /\|/, images($lsn7, $lsn8, $torn_oid);
cmp_ok($untorn_fpi, '>', 0,
	"images for the untorn tablespace while a backup runs ($untorn_fpi)");
cmp_ok($torn_fpi, '>', 0, 'and for the other tablespace');

# 5. After the backup, the untorn tablespace goes without images again.
$node->safe_psql('postgres', 'CHECKPOINT');
my $lsn9 = $node->lsn('insert');
run_pgbench('after backup');
my $lsn10 = $node->lsn('insert');
($untorn_fpi) = split /\|/, images($lsn9, $lsn10, $untorn_oid);
is($untorn_fpi, 0, 'no images for the untorn tablespace after the backup');

# The data is intact: pgbench's invariant holds in both databases.
for my $db ('db_untorn', 'db_torn')
{
	is( $node->safe_psql(
			$db, q{
		SELECT (SELECT sum(abalance) FROM pgbench_accounts) =
		       (SELECT sum(delta) FROM pgbench_history)}),
		't',
		"pgbench balances match history in $db");
}

$node->stop;

done_testing();
