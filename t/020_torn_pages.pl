# Copyright (c) 2026, wtsmgr developers
#
# Torn pages, and what heals them.  The same tear -- a page changed after a
# checkpoint and written out, then, after a crash, its second 4 kB put back
# as they were before the change -- is applied three times, data checksums
# on:
#
# - to a page of the tablespace that md.c writes: its full-page image is in
#   the WAL (pg_walinspect), and recovery heals the page;
# - negative control A: to a page of the untorn tablespace, whose image
#   wtsmgr left out (pg_walinspect shows none): recovery cannot heal it, and
#   the checksum failure stops it.  This shows that the image really was
#   left out, and that a tear is seen: wtsmgr's atomic writes are what
#   rules tears out there;
# - negative control B: to a page of the tablespace that md.c writes, with
#   full_page_writes = off: the same failure.
#
# Each time the test checks that the page was written out and that the
# half put back differs from the half written, and, after a failure, that
# the torn page is still on disk as it was torn and that putting the
# written half back lets the server recover.

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
	'torn',
	manual_checkpoints => 1,
	conf => "autovacuum = off\n",
	extensions => [ 'pg_walinspect', 'pg_buffercache', 'amcheck' ]);
is($node->safe_psql('postgres', 'SHOW data_checksums'), 'on', 'data checksums are on');

create_tablespaces(
	$node,
	ts_atomic => "$atomic_dir/ts_torn_$$",
	ts_plain => $node->basedir . '/ts_plain');
# One page each: 20 rows, stored at the end of the page (its second half).
for my $ts ('ts_atomic', 'ts_plain')
{
	$node->safe_psql(
		'postgres', qq{
	CREATE TABLE t_$ts (id int PRIMARY KEY, v int, filler text) TABLESPACE $ts;
	INSERT INTO t_$ts SELECT g, 0, repeat('x', 100) FROM generate_series(1, 20) g});
}
is(untorn_tablespaces($node),
	'ts_atomic:true,ts_plain:false',
	'one untorn tablespace and one that md.c writes');

my $round = 0;

# Tear block 0 of t_$ts: returns the WAL's images of it for the change and
# the page as written (to put back later).  The server is left stopped.
sub tear
{
	my ($ts, $what, $decision) = @_;
	my $table = "t_$ts";
	$round++;

	$node->safe_psql('postgres', 'CHECKPOINT');
	# images are left out only once the WAL announces it after a checkpoint
	wait_for_decision($node, $ts, $decision);
	my $file = relation_file($node, $table);
	my $old = slurp_block($file);
	my $lsn0 = $node->lsn('insert');
	is( $node->safe_psql(
			'postgres', qq{
		UPDATE $table SET v = $round, filler = repeat('$round', 100);
		} . evict_block_sql($table)),
		't', "$what: the changed page was written out (pg_buffercache_evict flushed it)");
	my $images = $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FROM pg_get_wal_block_info('$lsn0', pg_current_wal_flush_lsn(), false)
		WHERE relfilenode = pg_relation_filenode('$table') AND relforknumber = 0
		  AND relblocknumber = 0 AND block_fpi_length > 0});
	$node->stop('immediate');

	my $new = slurp_block($file);
	ok(substr($new, 4096) ne substr($old, 4096),
		"$what: the half put back differs from the half written");
	ok(substr($new, 0, 4096) ne substr($old, 0, 4096),
		"$what: and the first half kept is the new one");
	write_half($file, substr($old, 4096));
	return ($file, $images, $new, substr($new, 0, 4096) . substr($old, 4096));
}

sub slurp_block
{
	my ($file) = @_;
	open(my $fh, '<', $file) or die "open $file: $!";
	binmode $fh;
	my $buf;
	sysread($fh, $buf, 8192) == 8192 or die "read $file";
	close($fh);
	return $buf;
}

sub write_half
{
	my ($file, $half) = @_;
	open(my $fh, '+<', $file) or die "open $file: $!";
	binmode $fh;
	sysseek($fh, 4096, 0);
	syswrite($fh, $half, 4096) == 4096 or die "write $file";
	close($fh);
	return;
}

# A server that cannot recover past the torn page: it fails to start, the
# log shows the checksum failure, and the page is still torn on disk.  Put
# the written half back, and it recovers.
sub check_not_healed
{
	my ($what, $file, $new, $torn) = @_;
	my $offset = -s $node->logfile;
	ok(!$node->start(fail_ok => 1), "$what: recovery does not get past the torn page");
	ok( $node->log_contains(
			qr/page verification failed, calculated checksum \d+ but expected \d+/,
			$offset),
		"$what: the checksum failure shows it");
	ok($node->log_contains(qr/invalid page in block 0 of relation/, $offset),
		"$what: in block 0");
	ok(slurp_block($file) eq $torn, "$what: the page on disk is still torn");
	write_half($file, substr($new, 4096));
	$node->start;
	return;
}

# 1. The tablespace that md.c writes: healed by its image.
my ($file, $images, $new, $torn) = tear('ts_plain', 'images kept', 'kept: blocks may tear');
cmp_ok($images, '>', 0, 'images kept: the WAL holds an image of the page');
$node->start;
is($node->safe_psql('postgres', "SELECT count(*) FROM t_ts_plain WHERE v = $round"),
	'20', 'images kept: recovery heals the torn page');
$node->command_ok([ 'pg_amcheck', '--heapallindexed', '--table=t_ts_plain', 'postgres' ],
	'images kept: and pg_amcheck finds it clean');

# 2. Negative control A: the untorn tablespace, image left out.
($file, $images, $new, $torn) = tear('ts_atomic', 'image left out', 'skipped');
is($images, '0', 'image left out: the WAL holds no image of the page');
check_not_healed('image left out', $file, $new, $torn);
is($node->safe_psql('postgres', "SELECT count(*) FROM t_ts_atomic WHERE v = $round"),
	'20', 'image left out: the page as written is whole again');
$node->command_ok([ 'pg_amcheck', '--heapallindexed', '--table=t_ts_atomic', 'postgres' ],
	'image left out: and pg_amcheck finds it clean');

# 3. Negative control B: the tablespace that md.c writes, without images.
$node->safe_psql('postgres', 'ALTER SYSTEM SET full_page_writes = off');
$node->reload;
($file, $images, $new, $torn) = tear('ts_plain', 'full_page_writes off',
	'none: full_page_writes is off');
is($images, '0', 'full_page_writes off: the WAL holds no image of the page');
check_not_healed('full_page_writes off', $file, $new, $torn);
is($node->safe_psql('postgres', "SELECT count(*) FROM t_ts_plain WHERE v = $round"),
	'20', 'full_page_writes off: the page as written is whole again');

$node->stop;

done_testing();
