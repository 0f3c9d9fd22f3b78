# Copyright (c) 2026, wtsmgr developers
#
# Space for copy-on-write atomic writes.  XFS without hardware atomic writes
# does RWF_ATOMIC by copy-on-write, so every overwrite needs free space:
#
# - A database cloned with file_copy_method = clone shares its blocks with
#   the template.  wtsmgr gives each segment file blocks of its own when it
#   opens it for atomic writing; the clone is written, checkpointed and read
#   back, and amcheck is clean in both databases.
# - On a full filesystem an atomic write fails with ENOSPC (a plain write of
#   an allocated block would not): the blocks go through the doublewrite
#   area, the checkpoint completes, and a WARNING names the tablespace and
#   the cause.  A relation that must grow there cannot, with an ERROR (as
#   with md.c).  Nothing is lost.
# - A clone on a full filesystem cannot be unshared: the write fails with an
#   ERROR naming the file, and succeeds once space is freed.
# - wtsmgr_tablespaces says who makes the writes atomic.

use strict;
use warnings FATAL => 'all';

use File::Path ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();
my $full_dir = full_dir();
my $filefrag = required_program('filefrag',
	'to see shared extents (e2fsprogs)', '/usr/sbin', '/sbin');

my $node = new_wtsmgr_node(
	'cow', conf => q{
file_copy_method = clone
autovacuum = off
checkpoint_timeout = 1h
max_wal_size = 1GB
log_error_verbosity = verbose
});

my $ts_full = "$full_dir/ts_full_$$";
my %oid = create_tablespaces(
	$node,
	ts_clone => "$atomic_dir/ts_clone_$$",
	ts_full => $ts_full);
$node->safe_psql('postgres', 'CREATE DATABASE src TABLESPACE ts_clone');

# Who makes 8 kB writes atomic: the device if it does them in hardware.
is( $node->safe_psql(
		'postgres',
		q{SELECT untorn_blocks, atomic_writes_by = CASE
		    WHEN atomic_unit_max_opt >= 8192 THEN 'device'
		    ELSE 'filesystem copy-on-write' END
		  FROM wtsmgr_tablespaces WHERE tablespace = 'ts_clone'}),
	't|t',
	'wtsmgr_tablespaces says who makes atomic writes on XFS');
is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FROM wtsmgr_tablespaces
		  WHERE atomic_writes_by IS NOT NULL AND NOT atomic_write}),
	'0', 'and nothing where there are no atomic writes');

# 1. A cloned database.
$node->safe_psql(
	'src', q{
	CREATE EXTENSION amcheck;
	CREATE TABLE t (i int, pad text);
	INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 50000) g;
	CREATE INDEX t_i ON t (i);
	CHECKPOINT});
$node->safe_psql('postgres',
	'CREATE DATABASE cl TEMPLATE src STRATEGY FILE_COPY');

my $file = relation_file($node, 't', 'cl');
my $src_file = relation_file($node, 't', 'src');
# The rows of $table in database $db whose pad is 100 times $new, and
# those whose pad is 100 times $old, as "new|old".
sub pad_counts
{
	my ($db, $table, $new, $old) = @_;
	return $node->safe_psql($db,
		qq{SELECT count(*) FILTER (WHERE pad = repeat('$new', 100)),
		          count(*) FILTER (WHERE pad = repeat('$old', 100))
		   FROM $table});
}

sub extents
{
	my ($path) = @_;
	my ($out, $err);
	IPC::Run::run([ $filefrag, '-v', $path ], '>', \$out, '2>', \$err)
	  or die "filefrag $path: $err";
	return $out;
}
like(extents($file), qr/\bshared\b/,
	'the clone shares its blocks with the template (reflink)');

my $log_offset = -s $node->logfile;
$node->safe_psql(
	'cl', q{
	UPDATE t SET pad = repeat('y', 100) WHERE i <= 5000;
	CHECKPOINT});
my $rel = $node->safe_psql('cl', "SELECT pg_relation_filepath('t')");
ok( $node->log_contains(
		qr/unshared the blocks of file "\Q$rel\E" \(\d+ bytes\) before writing it atomically/,
		$log_offset),
	'the clone\'s file got blocks of its own when first written');
unlike(extents($file), qr/\bshared\b/, 'it shares no blocks any more');
unlike(extents($src_file), qr/\bshared\b/,
	'nor does the template\'s file');

$node->restart;
is(pad_counts('cl', 't', 'y', 'x'), '5000|45000', 'the clone reads back with its changes');
is( $node->safe_psql(
		'src', q{SELECT count(*) FROM t WHERE pad = repeat('x', 100)}),
	'50000', 'the template is unchanged');
$node->command_ok(
	[
		'pg_amcheck', '--database' => 'cl', '--database' => 'src',
		'--heapallindexed', '--port' => $node->port, '--host' => $node->host
	],
	'pg_amcheck is clean in the clone and the template');

# 2. ENOSPC.  Updates that stay in their pages (fillfactor 50) dirty blocks
# that are allocated already: md.c could write them on a full filesystem,
# copy-on-write atomic writes cannot.
$node->safe_psql(
	'postgres', q{
	CREATE EXTENSION amcheck;
	CREATE TABLE f (i int PRIMARY KEY, pad text)
	  WITH (fillfactor = 50) TABLESPACE ts_full;
	INSERT INTO f SELECT g, repeat('a', 100) FROM generate_series(1, 20000) g;
	CREATE TABLE g (i int) TABLESPACE ts_full;
	CHECKPOINT});

# Fill the filesystem, in large pieces, then small ones.  The filler goes
# away whatever happens, or it would starve the next tests.
my $filler = "$full_dir/filler_$$";
END { unlink $filler if defined $filler; }
sub fill
{
	open my $fh, '>', $filler or die "open $filler: $!";
	for my $chunk (1024 * 1024, 4096)
	{
		my $buf = "\0" x $chunk;
		while (1)
		{
			my $n = syswrite($fh, $buf);
			last unless defined $n && $n == $chunk;
		}
	}
	close $fh;
}
fill();

$node->safe_psql('postgres',
	q{UPDATE f SET pad = repeat('b', 100) WHERE i % 2 = 0});
$log_offset = -s $node->logfile;
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CHECKPOINT');
is($ret, 0, 'CHECKPOINT completes on the full filesystem');
my $ts_oid = $oid{ts_full};
ok( $node->log_contains(
		qr/WARNING:  53100: atomic writes to tablespace $ts_oid \("pg_tblspc\/$ts_oid\/[^"]+"\) fail: No space left on device\n.*DETAIL:  .* written through the doublewrite area instead/,
		$log_offset),
	'a WARNING (53100) names the tablespace and says the blocks went through the doublewrite area');
{
	my $data = slurp_file(relation_file($node, 'f'));
	my %blocks = map { substr($data, $_ * 8192, 8192) => 1 }
	  0 .. length($data) / 8192 - 1;
	cmp_ok(scalar(grep { $blocks{$_} } doublewrite_copies($node)),
		'>', 0, 'the doublewrite area holds copies of blocks of f');
}

# A backend that must grow a relation there cannot: there is no space.
($ret, $stdout, $stderr) = $node->psql(
	'postgres', q{
	\set VERBOSITY verbose
	INSERT INTO g SELECT generate_series(1, 100000)});
isnt($ret, 0, 'a backend extending a relation there fails');
like($stderr, qr/ERROR:  53100: could not extend file "pg_tblspc\/$ts_oid\/[^"]+": No space left on device/,
	'with ERROR 53100 (disk full) naming the file');

unlink $filler or die "unlink $filler: $!";
($ret, $stdout, $stderr) = $node->psql('postgres', 'CHECKPOINT');
is($ret, 0, 'CHECKPOINT completes once space is freed');
# 3. A clone on the full filesystem: unsharing needs the space, and says
# so; its write fails, and succeeds once space is freed.
$node->safe_psql('postgres', 'CREATE DATABASE src2 TABLESPACE ts_full');
$node->safe_psql(
	'src2', q{
	CREATE TABLE t2 (i int, pad text);
	INSERT INTO t2 SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g;
	CHECKPOINT});
$node->safe_psql('postgres',
	'CREATE DATABASE cl2 TEMPLATE src2 STRATEGY FILE_COPY');
like(extents(relation_file($node, 't2', 'cl2')),
	qr/\bshared\b/,
	'a clone on the small filesystem shares its blocks');
fill();
# The first write there may come from the backend (evicting a buffer) or
# from the checkpointer: either fails.
my $update = q{UPDATE t2 SET pad = repeat('z', 100) WHERE i <= 100};
$log_offset = -s $node->logfile;
my ($ret_update) = $node->psql('cl2', $update);
($ret, $stdout, $stderr) = $node->psql('postgres', 'CHECKPOINT');
ok($ret_update != 0 || $ret != 0,
	'the clone cannot be written: its blocks cannot be unshared');
ok( $node->log_contains(
		qr/ERROR:  53100: could not unshare the blocks of file "pg_tblspc\/$ts_oid\/[^"]+" before writing it atomically: No space left on device/,
		$log_offset),
	'the ERROR (53100) names the file');
unlink $filler or die "unlink $filler: $!";
$node->safe_psql('cl2', $update) if $ret_update != 0;
($ret, $stdout, $stderr) = $node->psql('postgres', 'CHECKPOINT');
is($ret, 0, 'CHECKPOINT completes once space is freed');

$node->restart;
is( $node->safe_psql(
		'cl2', q{SELECT count(*) FROM t2 WHERE pad = repeat('z', 100)}),
	'100', 'the clone\'s update reads back');
is( $node->safe_psql(
		'src2', q{SELECT count(*) FROM t2 WHERE pad = repeat('x', 100)}),
	'20000', 'its template is unchanged');
is(pad_counts('postgres', 'f', 'b', 'a'), '10000|10000', 'every update reads back after a restart');
$node->command_ok(
	[
		'pg_amcheck', '--database' => 'postgres', '--database' => 'cl2',
		'--database' => 'src2', '--install-missing', '--heapallindexed',
		'--port' => $node->port, '--host' => $node->host
	],
	'pg_amcheck is clean');

$node->stop;
# leave the small filesystem empty for the other tests that fill it
File::Path::rmtree($ts_full);
done_testing();
