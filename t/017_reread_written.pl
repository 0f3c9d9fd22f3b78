# Copyright (c) 2026, wtsmgr developers
#
# wtsmgr.reread_written: a direct write drops the range it writes from the
# kernel's page cache, so a block that shared buffers evict later is read
# from the device.  With the setting on, the kernel reads the written range
# back in the background.  What is in the page cache is observed with
# fincore (mincore(2)), outside PostgreSQL:
#
# - off (the default, and the control): after a checkpoint has rewritten
#   every page of a table whose file was cached, almost none of it is;
# - on: after the same, nearly all of it is cached again.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();
my $fincore = required_program('fincore',
	'to see what the page cache holds (util-linux-extra)');

my $node = new_wtsmgr_node('reread', manual_checkpoints => 1,
	conf => "autovacuum = off\n");
create_tablespaces($node, ts_reread => "$atomic_dir/ts_reread_$$");
# room on most pages for HOT updates, in space and in line pointers:
# rewriting the rows rewrites the pages in place
$node->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int, val int, pad text)
		WITH (fillfactor = 50) TABLESPACE ts_reread;
	INSERT INTO t SELECT g, 0, repeat('x', 100) FROM generate_series(1, 60000) g;
	VACUUM t;
	CHECKPOINT;});
my $file = relation_file($node, 't');
my $size = -s $file;
cmp_ok($size, '>', 4 * 1024 * 1024, "the table's file has $size bytes");

# Bytes of the file in the page cache.
sub cached
{
	my $out = `$fincore --bytes --noheadings --output RES '$file'`;
	die "fincore failed: $?" if $?;
	$out =~ s/^\s+|\s+$//g;
	return $out;
}

# Read the whole file into the page cache, then rewrite every page and let
# the checkpoint write them.
sub cache_then_rewrite
{
	open my $fh, '<', $file or die "open $file: $!";
	binmode $fh;
	my $buf;
	1 while read($fh, $buf, 1024 * 1024);
	close $fh;
	cmp_ok(cached(), '>=', $size * 0.9, 'the file was read into the page cache');
	# VACUUM makes room for the next round's HOT updates
	$node->safe_psql('postgres', 'UPDATE t SET val = val + 1; VACUUM t; CHECKPOINT');
	$size = -s $file;
	return;
}

# off: the checkpoint's direct writes leave the rewritten pages uncached
cache_then_rewrite();
my $off = cached();
cmp_ok($off, '<=', $size * 0.1,
	"reread_written off: the checkpoint's direct writes dropped the file from the page cache ($off of $size bytes left)"
);

# on: the kernel reads them back
alter_system($node, 'wtsmgr.reread_written', 'on');
cache_then_rewrite();
my $on;
wait_until(
	sub { $on = cached(); $on >= $size * 0.9 },
	'the rewritten file to be read back into the page cache');
cmp_ok($on, '>=', $size * 0.9,
	"reread_written on: the written pages are read back ($on of $size bytes cached)"
);

$node->stop;
done_testing();
