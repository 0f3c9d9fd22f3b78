# Copyright (c) 2026, wtsmgr developers
#
# A failed re-probe does not stop writes.  Once a tablespace was found
# untorn, every write there stays atomic until the server stops; a later
# probe that cannot even create its file (here: the tablespace directory is
# made read-only) reports that as its result, but the write path plans its
# atomic units with the limits statx gives for each segment file, not with
# whatever the last probe read from the directory.  Relations opened after
# the failed probe are written, checkpointed and read back; amcheck is
# clean.

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
	'reprobe',
	conf => q{
autovacuum = off
checkpoint_timeout = 1h
},
	extensions => ['amcheck']);

my $ts_dir = "$atomic_dir/ts_reprobe_$$";
create_tablespaces($node, ts_p => $ts_dir);
$node->safe_psql(
	'postgres', q{
	CREATE TABLE a (i int PRIMARY KEY, pad text) TABLESPACE ts_p;
	INSERT INTO a SELECT g, repeat('a', 100) FROM generate_series(1, 10000) g;
	CHECKPOINT});
is( $node->safe_psql(
		'postgres',
		q{SELECT untorn_blocks, write_path FROM wtsmgr_tablespaces
		  WHERE tablespace = 'ts_p'}),
	't|atomic', 'the tablespace is untorn and written atomically');

# The probe creates its file in the tablespace's version directory; the
# relations live one level down, in the database's directory.
my ($vdir) = glob("$ts_dir/PG_18_*");
chmod 0500, $vdir or die "chmod $vdir: $!";

my $probe = $node->safe_psql('postgres',
	q{SELECT untorn_blocks, write_path, reason FROM wtsmgr_probe('ts_p')});
like(
	$probe,
	qr/^f\|atomic\|could not create probe file "[^"]+"[^:]*: Permission denied$/,
	'the re-probe fails, says why, and writes stay atomic');
is( $node->safe_psql(
		'postgres',
		q{SELECT reason LIKE 'could not create probe file%'
		  FROM wtsmgr_tablespaces WHERE tablespace = 'ts_p'}),
	't', 'the view shows the failure as the latest probe result');

# Relations opened after the failed probe, in this backend and in the
# checkpointer.
my ($ret, $stdout, $stderr) = $node->psql(
	'postgres', q{
	CREATE TABLE b (i int PRIMARY KEY, pad text) TABLESPACE ts_p;
	INSERT INTO b SELECT g, repeat('b', 100) FROM generate_series(1, 10000) g;
	UPDATE a SET pad = repeat('c', 100) WHERE i % 3 = 0;
	CHECKPOINT});
is($ret, 0, 'writes and a checkpoint succeed after the failed probe');
is($stderr, '', 'with no error');
is( $node->safe_psql(
		'postgres',
		q{SELECT refusals, errors, atomic_writes > 0 FROM wtsmgr_stat_io
		  WHERE tablespace = 'ts_p'}),
	'0|0|t', 'every write there was atomic, none refused');

chmod 0700, $vdir or die "chmod $vdir: $!";
$node->restart;
is( $node->safe_psql(
		'postgres',
		q{SELECT (SELECT count(*) FROM a WHERE pad = repeat('c', 100)),
		         (SELECT count(*) FROM b)}),
	'3333|10000', 'the data reads back after a restart');
$node->command_ok(
	[
		'pg_amcheck', '--database' => 'postgres', '--heapallindexed',
		'--port' => $node->port, '--host' => $node->host
	],
	'pg_amcheck is clean');

$node->stop;
done_testing();
