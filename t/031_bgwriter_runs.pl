# Copyright (c) 2026, wtsmgr developers
#
# The background writer writes the dirty replacement candidates that follow
# a buffer in block order with it, in one smgrwritev() call (core patch
# 0006), which wtsmgr writes as multiple-atomicity batches.  Checked from
# outside wtsmgr:
#
# - pg_stat_io: with io_combine_limit = 1 (the control: one block per call,
#   as stock) the background writer's writes carry one block each; with
#   io_combine_limit = 16 they carry more than one on average, and none
#   more than a segment file (run with 64 kB segments by scripts/test.sh
#   too);
# - the data the runs wrote into the untorn tablespace, where recovery has
#   no page images to fall back on, equals the same workload's data written
#   by md.c into the plain one, after a crash, and pg_amcheck and
#   pg_checksums find nothing wrong.
#
# The workload: UPDATE every page of a small table in each tablespace, then
# read a larger table, a few blocks at a time, until the clock sweep has
# aged the updated buffers into replacement candidates and the background
# writer, which runs ahead of the sweep, has written them.

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
	'bgw_runs',
	manual_checkpoints => 1,
	conf => q{
shared_buffers = 16MB
bgwriter_delay = 10ms
bgwriter_lru_maxpages = 1000
bgwriter_lru_multiplier = 10
autovacuum = off
track_io_timing = on
},
	extensions => ['amcheck']);

twin_tables($node, "$atomic_dir/ts_bgw_$$", 5000);
# The table whose reads move the clock sweep: larger than shared_buffers,
# frozen so that reading it dirties nothing, read by index (a sequential
# scan of a large table would recycle a small ring of buffers instead).
$node->safe_psql(
	'postgres', q{
	CREATE TABLE big (id int PRIMARY KEY, pad text);
	INSERT INTO big SELECT g, repeat('y', 500) FROM generate_series(1, 40000) g;
	VACUUM (FREEZE) big;
	CHECKPOINT});

my $bgwriter_io = q{
	SELECT writes || '|' || write_bytes FROM pg_stat_io
	WHERE backend_type = 'background writer' AND object = 'relation'
	  AND context = 'normal'};

# Dirty every page of both tables, then read big in chunks of 500 rows
# (about 36 blocks), pausing between them so that the background writer keeps ahead of the
# sweep, until it has written $want blocks (or 40 passes over big).
# Returns "writes|write_bytes" of the background writer.
sub dirty_and_age
{
	my ($round, $want) = @_;
	$node->safe_psql('postgres', 'SELECT pg_stat_reset_shared(\'io\')');
	for my $ts ('ts_atomic', 'ts_plain')
	{
		$node->safe_psql('postgres',
			"UPDATE t_$ts SET v = v + $round * id % 97, pad = repeat('$round', 200)");
	}
	my $io;
	for my $pass (1 .. 40)
	{
		$node->safe_psql(
			'postgres', q{
	SET enable_seqscan = off;
	SET enable_bitmapscan = off;
	DO $$
	BEGIN
		FOR i IN 0 .. 79 LOOP
			PERFORM count(pad) FROM big
			  WHERE id BETWEEN i * 500 + 1 AND i * 500 + 500;
			PERFORM pg_sleep(0.002);
		END LOOP;
	END $$;
	SELECT pg_stat_force_next_flush()});
		$io = $node->safe_psql('postgres', $bgwriter_io);
		my ($w, $b) = split /\|/, $io;
		last if $b / 8192 >= $want;
	}
	return $io;
}

my $table_blocks = $node->safe_psql('postgres',
	q{SELECT pg_relation_size('t_ts_atomic') / 8192});

# Control: one block per write call, as stock PostgreSQL writes.
alter_system($node, 'io_combine_limit', '8kB');
my ($w1, $b1) = split /\|/, dirty_and_age(1, $table_blocks);
cmp_ok($w1, '>', 100,
	"io_combine_limit = 1: the background writer wrote $w1 times");
is($b1 / $w1, 8192, 'one block per write');

alter_system($node, 'io_combine_limit', '128kB');
my ($w16, $b16) = split /\|/, dirty_and_age(2, $table_blocks);
my $per_write = $b16 / $w16 / 8192;
cmp_ok($b16 / 8192, '>', 100,
	sprintf('io_combine_limit = 16: the background writer wrote %d blocks',
		$b16 / 8192));
cmp_ok($per_write, '>', 2,
	sprintf('%.1f blocks per background writer write (%d writes)',
		$per_write, $w16));
my $seg_blocks = blocks_per_segment($node);
cmp_ok($per_write, '<=', $seg_blocks,
	"no background writer write spans more than a segment ($seg_blocks blocks)");
is( twin_fingerprint($node, 'ts_atomic'),
	twin_fingerprint($node, 'ts_plain'),
	'the runs left the same data as md.c');

# A crash after the background writer's runs, with no checkpoint since the
# changes: recovery replays them onto the pages the runs wrote, with no
# page images in the untorn tablespace.
dirty_and_age(3, $table_blocks);
twin_crash_check($node);

done_testing();
