# Copyright (c) 2026, wtsmgr developers
#
# The announcer connects to wtsmgr.database to look up the tablespaces of
# wtsmgr.keep_full_page_images_tablespaces.  When it cannot (here: the
# database does not exist yet), the list cannot be read, so:
#
# - every tablespace keeps its images, including one whose images were left
#   out before the list was set (checked in the WAL with pg_walinspect);
# - the attempts are spaced out instead of one a second, and each says in a
#   WARNING what is going on, with a hint;
# - once the database exists, the announcer connects and the decision comes
#   back, images are left out again.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

my $node = new_wtsmgr_node(
	'announcer_db',
	manual_checkpoints => 1,
	conf => "wtsmgr.database = 'wtsmgr_later'\n",
	extensions => ['pg_walinspect']);
my %oid = create_tablespaces($node, ts_atomic => "$atomic_dir/ts_ann_$$");
my $spcoid = $oid{ts_atomic};
$node->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int PRIMARY KEY, v int) TABLESPACE ts_atomic;
	INSERT INTO t SELECT g, 0 FROM generate_series(1, 5000) g});

# Checkpoint, wait until the view shows $decision, change every page of t,
# and return what the WAL did with the first change to each block
# (first_touches).
sub update_after_checkpoint
{
	my ($round, $decision) = @_;
	my $start = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	$node->safe_psql('postgres', 'CHECKPOINT');
	wait_for_decision($node, 'ts_atomic', $decision);
	$node->safe_psql('postgres', "UPDATE t SET v = v + $round");
	my $end = $node->safe_psql('postgres', 'SELECT pg_current_wal_insert_lsn()');
	return first_touches($node, $start, $end, $spcoid);
}

# With the keep-list empty, no connection is needed: images are left out.
wait_for_decision($node, 'ts_atomic', 'skipped');
my $ft = update_after_checkpoint(1, 'skipped');
cmp_ok($ft->{after_without_image}, '>', 0,
	"with the keep-list empty, images were left out ($ft->{after_without_image} first changes without one)"
);

# Name another tablespace in the keep-list: the announcer must now connect.
my $log_offset = -s $node->logfile;
$node->append_conf('postgresql.conf',
	"wtsmgr.keep_full_page_images_tablespaces = 'pg_default'");
$node->reload;
wait_for_decision($node, 'ts_atomic',
	'kept: cannot connect to wtsmgr.database');
pass('while the keep-list cannot be looked up, the view says why images are kept');
$ft = update_after_checkpoint(2,
	'kept: cannot connect to wtsmgr.database');
is($ft->{after_announcement} + $ft->{before_without_image}, 0,
	"no first change went without its image ($ft->{before_announcement} first changes)");
cmp_ok($ft->{before_announcement}, '>', 0, 'the UPDATE changed blocks of ts_atomic');

# The attempts, counted over 8 seconds once the first one has failed: one
# a second before, 1, 2 and 4 seconds apart now.
wait_until(
	sub {
		slurp_file($node->logfile, $log_offset) =~
		  /database "wtsmgr_later" does not exist/;
	},
	'the first connection attempt fails');
my $window = -s $node->logfile;
sleep(8);	  # a duration: the test counts what happens within it
my $attempts = () =
  slurp_file($node->logfile, $window) =~
  /FATAL:  database "wtsmgr_later" does not exist/g;
cmp_ok($attempts, '<=', 4,
	"the attempts are spaced out ($attempts in 8 s; one a second before)");
like(
	slurp_file($node->logfile, $log_offset),
	qr/WARNING:  could not connect to database "wtsmgr_later" to look up the tablespaces in "wtsmgr.keep_full_page_images_tablespaces"\n.*DETAIL:  \d+ attempts? ha(?:s|ve) failed; the next one is in \d+ s\. Until one succeeds, every tablespace keeps its full-page images\.\n.*HINT:  The server log says why the last attempt failed\./,
	'each attempt after a failure explains itself, with a hint');

# Once the database exists, the next attempt connects.
$node->safe_psql('postgres', 'CREATE DATABASE wtsmgr_later');
wait_for_decision($node, 'ts_atomic', 'skipped');
ok( $node->log_contains(
		'connected to database "wtsmgr_later"', $log_offset),
	'the announcer connected once the database existed');
$ft = update_after_checkpoint(3, 'skipped');
cmp_ok($ft->{after_without_image}, '>', 0,
	"images are left out again ($ft->{after_without_image} first changes without one)");

$node->stop;
done_testing();
