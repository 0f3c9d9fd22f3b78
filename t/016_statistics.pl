# Copyright (c) 2026, wtsmgr developers
#
# wtsmgr's counters are cumulative statistics (pgstat_register_kind()):
#
# - Images left out are counted once per WAL record: the count equals the
#   first changes after the announcement that pg_walinspect finds without
#   their image, in a workload where VACUUM's pruning also asks whether a
#   change would take an image (XLogCheckBufferNeedsBackup()) before the
#   record that asks again.
# - The counts survive a clean restart; a crash discards them, as it does
#   PostgreSQL's own statistics (the control: it shows that the comparison
#   would notice lost counts).
# - wtsmgr_stat_reset() sets them to zero and stamps stats_reset.

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
	'stats',
	manual_checkpoints => 1,
	conf => "autovacuum = off\n",
	extensions => ['pg_walinspect']);
my %oid = create_tablespaces($node, ts_stats => "$atomic_dir/ts_stats_$$");
my $spcoid = $oid{ts_stats};
$node->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int, pad text) TABLESPACE ts_stats;
	INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
	DELETE FROM t WHERE id % 10 = 0;
	SELECT count(*) FROM t;});
wait_for_decision($node, 'ts_stats', 'skipped');

my $skipped = sub {
	return $node->safe_psql('postgres',
		"SELECT fpi_skipped FROM wtsmgr_stat_io WHERE tablespace = 'ts_stats'"
	);
};

# 1. Once per record.  After a checkpoint and its announcement, VACUUM
# prunes the deleted rows and could freeze the rest: for each page its
# pruning asks whether the change would take an image anyway, then logs the
# record that asks again.  (It asks only if setting hint bits has not
# logged the page first, so the SELECT above set them before the
# checkpoint.)  An UPDATE then changes some pages again.
my $lsn1 = $node->lsn('insert');
$node->safe_psql('postgres', 'CHECKPOINT');
wait_for_decision($node, 'ts_stats', 'skipped');
my $before = $skipped->();
$node->safe_psql(
	'postgres', q{
	VACUUM t;
	UPDATE t SET pad = repeat('y', 200) WHERE id % 7 = 0;
	SELECT pg_stat_force_next_flush();});
my $lsn2 = $node->lsn('insert');
my $after = $skipped->();

my $wal = first_touches($node, $lsn1, $lsn2, $spcoid);
my $omitted = $wal->{after_without_image};
cmp_ok($omitted, '>', 100,
	"VACUUM and UPDATE changed pages without their images ($omitted)");
is($after - $before, $omitted,
	'fpi_skipped counts each image left out of a WAL record once');
is( $node->safe_psql(
		'postgres', qq{
	SELECT count(*) FROM pg_get_wal_records_info('$lsn1', '$lsn2')
	WHERE record_type LIKE 'PRUNE%'}) > 0,
	1,
	'the workload pruned pages, which asks about images before the record');

# 2. Kept across a clean restart.
$node->safe_psql('postgres', 'CHECKPOINT');
my $cols =
  'writes, write_bytes, extends, atomic_writes, atomic_units, fpi_skipped';
my $io = $node->safe_psql('postgres',
	"SELECT $cols FROM wtsmgr_stat_io WHERE tablespace = 'ts_stats'");
like($io, qr/^[1-9]\d*\|/, "the tablespace has counts before the restart ($io)");
my $calls = $node->safe_psql('postgres',
	'SELECT creates > 0 AND writev_blocks > 0 FROM wtsmgr_smgr_counters');
is($calls, 't', 'wtsmgr_smgr_counters has counts before the restart');

$node->restart;
is( $node->safe_psql(
		'postgres',
		"SELECT $cols FROM wtsmgr_stat_io WHERE tablespace = 'ts_stats'"),
	$io,
	'wtsmgr_stat_io shows the same counts after a clean restart');
is( $node->safe_psql(
		'postgres',
		'SELECT creates > 0 AND writev_blocks > 0 FROM wtsmgr_smgr_counters'),
	't',
	'and wtsmgr_smgr_counters kept its counts');

# The control: a crash discards the statistics, so the comparison above
# would have noticed counts that were not kept.
$node->stop('immediate');
$node->start;
isnt(
	$node->safe_psql(
		'postgres',
		"SELECT $cols FROM wtsmgr_stat_io WHERE tablespace = 'ts_stats'"),
	$io,
	'control: after a crash the counts are gone');

# 3. Reset.
$node->safe_psql('postgres',
	"INSERT INTO t SELECT g, 'z' FROM generate_series(1, 5000) g; CHECKPOINT"
);
cmp_ok(
	$node->safe_psql(
		'postgres',
		"SELECT writes FROM wtsmgr_stat_io WHERE tablespace = 'ts_stats'"),
	'>', 0,
	'writes are counted again');
my $t0 = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->safe_psql('postgres', 'SELECT wtsmgr_stat_reset()');
is( $node->safe_psql(
		'postgres', qq{
	SELECT writes || '|' || fpi_skipped || '|' ||
		   (stats_reset BETWEEN '$t0' AND clock_timestamp())
	FROM wtsmgr_stat_io WHERE tablespace = 'ts_stats'}),
	'0|0|true',
	'wtsmgr_stat_reset() zeroes the counts and stamps stats_reset');

$node->stop;
done_testing();
