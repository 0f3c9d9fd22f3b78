# Copyright (c) 2026, wtsmgr developers
#
# The checkpointer writes runs of consecutive dirty blocks with one
# smgrwritev() call (core patch 0005), which wtsmgr writes as
# multiple-atomicity batches.  Checked from outside wtsmgr:
#
# - pg_stat_io: the checkpointer's writes carry more than one block each on
#   average (write_bytes / writes), and more with io_combine_limit = 16 than
#   with io_combine_limit = 1 (the control: one block per call, as stock);
# - no write is longer than a segment file (run with 64 kB segments by
#   scripts/test.sh too, where runs are split at every eighth block);
# - the data written by runs into the untorn tablespace equals the same
#   workload's data written by md.c into the plain one (a fingerprint of
#   every row), before and after a crash, and pg_amcheck and pg_checksums
#   find nothing wrong.

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
	'runs',
	manual_checkpoints => 1,
	conf => q{
shared_buffers = 64MB
bgwriter_lru_maxpages = 0
track_io_timing = on
},
	extensions => ['amcheck']);

twin_tables($node, "$atomic_dir/ts_runs_$$", 20000);

# Dirty every page of both tables, then let the checkpointer write them.
sub dirty_and_checkpoint
{
	my ($round) = @_;
	$node->safe_psql('postgres', 'CHECKPOINT');
	$node->safe_psql('postgres', 'SELECT pg_stat_reset_shared(\'io\')');
	for my $ts ('ts_atomic', 'ts_plain')
	{
		$node->safe_psql('postgres',
			"UPDATE t_$ts SET v = v + $round * id % 97, pad = repeat('$round', 200)");
	}
	$node->safe_psql('postgres', 'CHECKPOINT');
	return $node->safe_psql(
		'postgres', q{
	SELECT writes || '|' || write_bytes FROM pg_stat_io
	WHERE backend_type = 'checkpointer' AND object = 'relation'
	  AND context = 'normal'});
}


# Control: one block per write call, as stock PostgreSQL writes.
$node->safe_psql('postgres', 'ALTER SYSTEM SET io_combine_limit = 1');
$node->reload;
my ($w1, $b1) = split /\|/, dirty_and_checkpoint(1);
cmp_ok($w1, '>', 500, "io_combine_limit = 1: the checkpointer wrote $w1 times");
is($b1 / $w1, 8192, 'one block per write');

$node->safe_psql('postgres', 'ALTER SYSTEM SET io_combine_limit = 16');
$node->reload;
my ($w16, $b16) = split /\|/, dirty_and_checkpoint(2);
my $per_write = $b16 / $w16 / 8192;
cmp_ok($per_write, '>', 4,
	sprintf('io_combine_limit = 16: %.1f blocks per checkpoint write (%d writes)',
		$per_write, $w16));
cmp_ok($w16, '<', $w1 / 4, 'far fewer write calls than one per block');
# With small segment files (the debug-smallseg server), runs stop at segment
# boundaries, which md.c and wtsmgr cannot write across in one call.
my $seg_blocks = blocks_per_segment($node);
cmp_ok($per_write, '<=', $seg_blocks,
	"no checkpoint write spans more than a segment ($seg_blocks blocks)");
cmp_ok(
	$node->safe_psql('postgres',
		q{SELECT batches + atomic_units FROM wtsmgr_stat_io WHERE tablespace = 'ts_atomic'}),
	'>', 0, 'wtsmgr wrote the runs in atomic units');

is( twin_fingerprint($node, 'ts_atomic'),
	twin_fingerprint($node, 'ts_plain'),
	'the runs left the same data as md.c');

# A crash after the runs, with more changes since.
dirty_and_checkpoint(3);
for my $ts ('ts_atomic', 'ts_plain')
{
	$node->safe_psql('postgres', "UPDATE t_$ts SET v = v + 1 WHERE id % 3 = 0");
}
twin_crash_check($node);

done_testing();
