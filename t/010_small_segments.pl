# Copyright (c) 2026, wtsmgr developers
#
# Relations extended by a jump, across segment files.  md.c keeps every
# segment before the last one full (RELSEG_SIZE blocks) and finds a
# relation's end by stopping at the first short segment; wtsmgr's write path
# must keep that invariant too.  PostgreSQL extends by a jump in
# RelationCopyStorageUsingBuffer() (CREATE DATABASE with the default WAL_LOG
# strategy extends each copy to its last block first) and in
# _hash_alloc_buckets() (hash index splits).
#
# Needs a server built with small segments, so that small relations span
# several segment files: scripts/build-server.sh --flavor debug-smallseg
# (64 kB segments), which scripts/test.sh builds and runs this test with.
# The data directory is on the atomic filesystem, so every relation is
# written by wtsmgr's atomic path.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

if (!check_pg_config('#define RELSEG_SIZE [0-9]{1,2}$'))
{
	plan skip_all =>
	  'needs a server with small segments (scripts/build-server.sh --flavor debug-smallseg)';
}
my $atomic_dir = atomic_dir();

# The node's whole base directory, data directory included, on XFS.
$PostgreSQL::Test::Utils::tmp_check = "$atomic_dir/smallseg_$$";
mkdir $PostgreSQL::Test::Utils::tmp_check
  or die "mkdir $PostgreSQL::Test::Utils::tmp_check: $!";

my $node = new_wtsmgr_node(
	'smallseg',
	allows_streaming => 1,
	conf => q{
checkpoint_timeout = 1h
max_wal_size = 1GB
});

is($node->safe_psql('postgres', 'SHOW segment_size'),
	'64kB', 'the server has 64 kB segment files');
is( $node->safe_psql(
		'postgres',
		q{SELECT untorn_blocks FROM wtsmgr_tablespaces
		  WHERE tablespace = 'pg_default'}),
	't',
	'the data directory is untorn: wtsmgr writes its relations atomically');

# Sizes of a relation's segment files, in blocks, in the data directory
# of $datadir_node ($node by default).
sub segment_blocks
{
	my ($db, $rel, $datadir_node) = @_;
	my $path = relation_file($node, $rel, $db, $datadir_node);
	my @blocks;
	for (my $segno = 0;; $segno++)
	{
		my $file = $segno == 0 ? $path : "$path.$segno";
		last unless -e $file;
		push @blocks, (-s $file) / 8192;
	}
	return @blocks;
}

# Every segment but the last is full.
sub segments_full
{
	my (@blocks) = @_;
	pop @blocks;
	return !grep { $_ != 8 } @blocks;
}

# Sizes of segment files for a test name: the short ones by number.
# How many of the keys from $from to $to by $step $node finds in $table,
# looked up through its index (no sequential or bitmap scans).
sub index_count
{
	my ($n, $table, $from, $to, $step) = @_;
	return $n->safe_psql('postgres',
		qq{SET enable_seqscan = off; SET enable_bitmapscan = off;
		   SELECT count(*) FROM generate_series($from, $to, $step) g
		   WHERE EXISTS (SELECT FROM $table WHERE $table.i = g)});
}

sub describe
{
	my (@blocks) = @_;
	my @short = map { "$_:$blocks[$_]" } grep { $blocks[$_] != 8 } 0 .. $#blocks;
	return scalar(@blocks) . " segments, short ones: @short";
}

# 1. A hash index whose bucket allocations jump across segments.
$node->safe_psql(
	'postgres', q{
	CREATE TABLE h (i int, t text);
	CREATE INDEX h_i ON h USING hash (i)});
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', q{
	INSERT INTO h SELECT g, 'row ' || g FROM generate_series(1, 100000) g;
	CHECKPOINT});
is($ret, 0, 'the hash index grows by bucket splits, and a checkpoint succeeds');
is($stderr, '', 'no error from the inserts or the checkpoint');

my @hash = segment_blocks('postgres', 'h_i');
cmp_ok(scalar(@hash), '>', 8, 'the hash index spans many segments');
ok(segments_full(@hash),
	'its segments before the last are full (' . describe(@hash) . ')');

# Read through the index, from disk after a restart.
{
	local $ENV{PGCTLTIMEOUT} = 60;
	ok($node->restart(fail_ok => 1), 'restart after the hash index grew');
}
my $probe_query = q{
	SET enable_seqscan = off;
	SET enable_bitmapscan = off;
	%s SELECT sum((SELECT count(*) FROM h WHERE h.i = g))
	     || ':' || sum((SELECT length(t) FROM h WHERE h.i = g))
	FROM generate_series(-100, 100100, 101) g};
like(
	$node->safe_psql('postgres', sprintf($probe_query, 'EXPLAIN (COSTS OFF)')),
	qr/Index Scan using h_i on h/,
	'the query uses the hash index');
($ret, $stdout, $stderr) =
  $node->psql('postgres', sprintf($probe_query, ''));
is($stdout, '991:8808', 'every key is found through the hash index, once');
is( $node->safe_psql(
		'postgres', q{SELECT count(*), sum(i) FROM h}),
	'100000|5000050000', 'the table reads back whole');

# More splits, then a crash: recovery replays them.
$node->safe_psql('postgres',
	q{INSERT INTO h SELECT g, 'row ' || g FROM generate_series(100001, 150000) g});
$node->stop('immediate');
$node->start;
@hash = segment_blocks('postgres', 'h_i');
ok(segments_full(@hash),
	'after recovery, the segments before the last are full ('
	  . describe(@hash) . ')');
# 100092 is a key now
is($node->safe_psql('postgres', sprintf($probe_query, '')),
	'992:8818', 'after recovery, every key is found through the hash index');
is(index_count($node, 'h', 100001, 150000, 7), '7143', 'after recovery, the replayed rows are found through the index');

# 2. CREATE DATABASE with the WAL_LOG strategy, then a checkpoint.
($ret, $stdout, $stderr) = $node->psql(
	'postgres', q{
	CREATE DATABASE copied;
	CHECKPOINT});
is($ret, 0, 'CREATE DATABASE (WAL_LOG) and CHECKPOINT succeed');
is($stderr, '', 'no error from CREATE DATABASE or CHECKPOINT');
# Everything since the crash went through the atomic write path, and none failed.
is( $node->safe_psql(
		'postgres',
		q{SELECT atomic_writes > 0, refusals, errors FROM wtsmgr_stat_io
		  WHERE tablespace = 'pg_default'}),
	't|0|0',
	'the blocks were written atomically, with no refusal or error');

my @att = segment_blocks('copied', 'pg_attribute');
cmp_ok(scalar(@att), '>', 2,
	'the copy of pg_attribute spans several segments');
ok(segments_full(@att),
	'its segments before the last are full (' . describe(@att) . ')');

# A clean shutdown: the shutdown checkpoint writes everything.
{
	local $ENV{PGCTLTIMEOUT} = 60;
	ok($node->stop('fast', fail_ok => 1), 'clean shutdown');
}
command_like([ 'pg_controldata', $node->data_dir ],
	qr/Database cluster state:\s+shut down\n/,
	'the control file says shut down');
$node->stop('immediate', fail_ok => 1) if defined $node->{_pid};
$node->start;

is( $node->safe_psql(
		'copied', q{SELECT count(*) > 1000 FROM pg_attribute}),
	't', 'the copied database reads back');

# 3. A standby, its data directory on the atomic filesystem too, replays
# relations growing across segments.  Recovery zero-extends as md.c does:
# only what it writes through writev is written atomically.
$node->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'bk', has_streaming => 1);
$standby->start;
$node->safe_psql(
	'postgres', q{
	CREATE TABLE s AS
	  SELECT g AS i, repeat('s', 200) AS pad FROM generate_series(1, 20000) g;
	CREATE INDEX s_i ON s USING hash (i)});
$node->wait_for_replay_catchup($standby);
$standby->safe_psql('postgres', 'CHECKPOINT');
is( $standby->safe_psql(
		'postgres',
		q{SELECT extends > 0, atomic_writes = writes, refusals + errors
		  FROM wtsmgr_stat_io WHERE tablespace = 'pg_default'}),
	't|t|0',
	'the standby extended relations without atomic writes of zeros');
my @standby_s = segment_blocks('postgres', 's_i', $standby);
ok(segments_full(@standby_s),
	'on the standby, the hash index\'s segments before the last are full ('
	  . describe(@standby_s) . ')');
is(index_count($standby, 's', 1, 20000, 37), '541', 'the standby finds the rows through the hash index');
$standby->stop;

# 4. amcheck: heaps and B-tree indexes of every database.
$node->command_ok(
	[
		'pg_amcheck', '--all', '--install-missing',
		'--heapallindexed', '--port', $node->port,
		'--host', $node->host
	],
	'pg_amcheck is clean');

$node->stop;
done_testing();
