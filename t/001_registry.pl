# Copyright (c) 2026, wtsmgr developers
#
# The storage-manager registry: with wtsmgr in shared_preload_libraries every
# relation is opened through wtsmgr, in client backends and in auxiliary
# processes alike; without it, wtsmgr refuses to load and says what to do.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

# Without the preload, the library refuses to load, with a hint.
my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;

my ($ret, $stdout, $stderr) =
  $plain->psql('postgres', 'CREATE EXTENSION wtsmgr');
isnt($ret, 0, 'CREATE EXTENSION fails without shared_preload_libraries');
like(
	$stderr,
	qr/ERROR:  wtsmgr must be loaded via "shared_preload_libraries"/,
	'the error says wtsmgr must be preloaded');
like(
	$stderr,
	qr/HINT:  Add wtsmgr to "shared_preload_libraries" in postgresql.conf and restart the server/,
	'the hint says what to do');

($ret, $stdout, $stderr) = $plain->psql('postgres', q{LOAD 'wtsmgr'});
like(
	$stderr,
	qr/wtsmgr must be loaded via "shared_preload_libraries"/,
	'LOAD fails the same way');
$plain->stop;

# With the preload.
my $node = new_wtsmgr_node('main');

is($node->safe_psql('postgres', 'SHOW shared_preload_libraries'),
	'wtsmgr', 'wtsmgr is preloaded');
$node->safe_psql('template1', 'CREATE EXTENSION wtsmgr');

is( $node->safe_psql(
		'postgres', q{
	SELECT wtsmgr_version() = extversion
	FROM pg_extension WHERE extname = 'wtsmgr'}),
	't',
	'the loaded library has the extension\'s version');
is( $node->safe_psql(
		'postgres', q{
	SELECT version = wtsmgr_version()
	FROM pg_get_loaded_modules() WHERE module_name = 'wtsmgr'}),
	't',
	'pg_get_loaded_modules() shows the same wtsmgr library');

# Every relation with storage, shared catalogs included, in two databases.
my $smgr_query = q{
	SELECT smgr || ':' || count(*)
	FROM (SELECT wtsmgr_relation_smgr(oid) AS smgr
		  FROM pg_class
		  WHERE relkind IN ('r', 'i', 'S', 't', 'm') AND relpersistence <> 't') s
	GROUP BY smgr};
for my $db ('postgres', 'template1')
{
	like($node->safe_psql($db, $smgr_query),
		qr/^wtsmgr:\d+$/,
		"every relation in $db is opened through wtsmgr");
}

# A temporary table goes through it as well (local buffers).
is( $node->safe_psql(
		'postgres', q{
	CREATE TEMP TABLE tmp AS SELECT g FROM generate_series(1, 1000) g;
	SELECT wtsmgr_relation_smgr('tmp')}),
	'wtsmgr',
	'temporary relations are opened through wtsmgr');

# Writes by the checkpointer go through wtsmgr: counters are shared.
$node->safe_psql('postgres', 'CHECKPOINT');
my $before = $node->safe_psql('postgres',
	'SELECT writev_blocks FROM wtsmgr_smgr_counters');
$node->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int, pad text);
	INSERT INTO t SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
	CHECKPOINT});
my ($after, $blocks) = split /\|/, $node->safe_psql('postgres',
	q{SELECT writev_blocks, pg_relation_size('t') / current_setting('block_size')::int
	  FROM wtsmgr_smgr_counters});
cmp_ok($after - $before, '>=', $blocks,
	"all $blocks blocks of a new table were written through wtsmgr");

# Truncation and unlinking go through it too.
my $counts = q{SELECT truncates || ':' || unlinks FROM wtsmgr_smgr_counters};
my ($trunc0, $unlink0) = split /:/, $node->safe_psql('postgres', $counts);
$node->safe_psql('postgres', 'DELETE FROM t WHERE id > 10');
$node->safe_psql('postgres', 'VACUUM t');
$node->safe_psql('postgres', 'DROP TABLE t');
my ($trunc1, $unlink1) = split /:/, $node->safe_psql('postgres', $counts);
cmp_ok($trunc1, '>', $trunc0, 'VACUUM truncated through wtsmgr');
cmp_ok($unlink1, '>', $unlink0, 'DROP TABLE unlinked through wtsmgr');

# Crash recovery: the startup process and the end-of-recovery checkpoint
# write through wtsmgr.  The counters start from zero with the new shared
# memory, before any client has written anything.
$node->safe_psql(
	'postgres', q{
	CREATE TABLE r (id int);
	INSERT INTO r SELECT generate_series(1, 50000)});
$node->stop('immediate');
$node->start;
cmp_ok(
	$node->safe_psql(
		'postgres', 'SELECT writev_blocks + extend_blocks FROM wtsmgr_smgr_counters'
	),
	'>',
	0,
	'recovery wrote blocks through wtsmgr');
is($node->safe_psql('postgres', 'SELECT count(*) FROM r'),
	'50000', 'data survived the crash');

$node->stop;

done_testing();
