# Copyright (c) 2026, wtsmgr developers
#
# Which images are left out is decided per checkpoint cycle, once for all
# backends, and crash recovery honours it.  Judged from the WAL
# (pg_walinspect), not from wtsmgr's counters:
#
# 1. WAL from a checkpoint's redo point carries wtsmgr's announcement before
#    any first change without an image: with the announcer stopped (SIGSTOP)
#    across a checkpoint, every first change keeps its image, and skipping
#    resumes once it runs again.
# 2. wtsmgr.skip_full_page_images = off and the keep-list bind statements
#    that were already running: after the reload and a checkpoint, no first
#    change lacks its image.
# 3. A crash restart that cannot prove the tablespace untorn any more
#    still recovers, and protects every write there: atomic writes where the
#    files take them, the doublewrite area where they do not (its page
#    slots then hold copies of the file's blocks); nothing is lost or torn.

use strict;
use warnings FATAL => 'all';

use File::Copy qw(move);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

# pg_walinspect reads WAL from before the test's own CHECKPOINTs, which
# would otherwise remove or recycle its segments once enough WAL has been
# written since (how much depends on the machine's speed).
my $node = new_wtsmgr_node(
	'decisions',
	manual_checkpoints => 1,
	conf => "wal_keep_size = 1GB\n",
	extensions => ['pg_walinspect']);

my $ts_dir = "$atomic_dir/ts_decisions_$$";
my $spcoid = pgbench_tablespace($node, $ts_dir, 2);
$node->safe_psql(
	'db', q{
	CREATE EXTENSION amcheck;
	CREATE TABLE ctl (done bool);
	INSERT INTO ctl VALUES (false)});

my $decision = sub {
	return $node->safe_psql('postgres',
		q{SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = 'ts_atomic'});
};
my $wait_decision = sub {
	my ($want) = @_;
	wait_for_decision($node, 'ts_atomic', $want);
};
$wait_decision->('skipped');

sub pgbench
{
	my ($seconds) = @_;
	$node->command_ok(
		[ 'pgbench', '--no-vacuum', '--client=2', "--time=$seconds", 'db' ],
		"pgbench for $seconds s");
}

sub wtsmgr_records
{
	my ($start, $end) = @_;
	return $node->safe_psql('postgres',
		qq{SELECT count(*) FROM pg_get_wal_records_info('$start', '$end')
		   WHERE resource_manager = 'wtsmgr'});
}

# 1. The announcer stopped across a checkpoint.
my ($announcer) = split /\n/, `pgrep -P $node->{_pid} -f 'wtsmgr announcer'`;
$announcer //= '';
like($announcer, qr/^\d+$/, 'the announcer runs');
kill 'STOP', $announcer or die "cannot stop the announcer: $!";
my $lsn1 = $node->lsn('insert');
$node->safe_psql('postgres', 'CHECKPOINT');
is($decision->(), 'kept: not yet announced in WAL',
	'after a checkpoint without announcement, the view says images are kept');
pgbench(3);
my $lsn2 = $node->lsn('insert');
is(wtsmgr_records($lsn1, $lsn2), 0, 'no announcement while the announcer is stopped');
my $ft = first_touches($node, $lsn1, $lsn2, $spcoid);
cmp_ok($ft->{before_announcement}, '>', 100,
	"pgbench changed $ft->{before_announcement} blocks first after the checkpoint");
is($ft->{before_without_image}, 0,
	'each of them has its full-page image: none is left out before the announcement');

kill 'CONT', $announcer or die "cannot continue the announcer: $!";
$wait_decision->('skipped');
my $lsn3 = $node->lsn('insert');
pgbench(2);
my $lsn4 = $node->lsn('insert');
$ft = first_touches($node, $lsn1, $lsn4, $spcoid);
cmp_ok($ft->{after_announcement}, '>', 100,
	"once announced, first changes leave images out again ($ft->{after_announcement}, $ft->{after_with_image} with image)"
);
cmp_ok(wtsmgr_records($lsn2, $lsn4), '>', 0,
	'the announcer announced the cycle once it ran again');

# 2. Settings bind statements that are already running.  A statement that
# changes blocks all over pgbench_accounts until it is told to stop, in one
# backend that does not reload its settings until it is done.
sub running_statement_keeps_images
{
	my ($setting, $value, $kept_as) = @_;
	$node->safe_psql('db', 'UPDATE ctl SET done = false');
	$wait_decision->('skipped');
	my $bg = $node->background_psql('db');
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(
		qr/started/, q{
	\echo started
	DO $$
	DECLARE
		i int := 0;
	BEGIN
		WHILE NOT (SELECT done FROM ctl) LOOP
			UPDATE pgbench_accounts SET abalance = abalance + 1
			 WHERE aid = 1 + (i * 7919) % 200000;
			i := i + 1;
			IF i % 50 = 0 THEN
				PERFORM pg_sleep(0.01);
			END IF;
		END LOOP;
	END
	$$;
});
	$node->poll_query_until('postgres',
		"SELECT state = 'active' FROM pg_stat_activity WHERE pid = $pid")
	  or die 'the statement did not start';
	$node->safe_psql('postgres', "ALTER SYSTEM SET $setting = '$value'");
	$node->reload;
	$wait_decision->($kept_as);
	my $start = $node->lsn('insert');
	$node->safe_psql('postgres', 'CHECKPOINT');
	# A duration, not a wait: the running statement goes on changing blocks
	# for a while after the checkpoint, across several of the announcer's
	# rounds (it looks at the tablespaces every 200 ms), which nothing
	# outside it shows.
	sleep 2;
	$node->safe_psql('db', 'UPDATE ctl SET done = true');
	$bg->quit;
	my $end = $node->lsn('insert');

	my $ft = first_touches($node, $start, $end, $spcoid);
	cmp_ok($ft->{before_announcement}, '>', 50,
		"$setting = '$value': the running statement changed $ft->{before_announcement} blocks first after the checkpoint"
	);
	is($ft->{after_announcement} + $ft->{before_without_image},
		0, "$setting = '$value': each of them has its image");
	$node->safe_psql('postgres', "ALTER SYSTEM RESET $setting");
	$node->reload;
	$wait_decision->('skipped');
}

running_statement_keeps_images('wtsmgr.skip_full_page_images',
	'off', 'kept: wtsmgr.skip_full_page_images is off');
running_statement_keeps_images('wtsmgr.keep_full_page_images_tablespaces',
	'ts_atomic', 'kept: listed in wtsmgr.keep_full_page_images_tablespaces');

# 3. Crash recovery where this server cannot prove the tablespace untorn
# any more: replay protects every write of a tablespace whose images the
# WAL lacks, atomically where its files take atomic writes, through the
# doublewrite area where they do not, and nothing is lost or torn.
my $sum_query = q{SELECT sum(abalance) FROM pgbench_accounts};
my $version_dir = "$ts_dir/"
  . $node->safe_psql('db',
	"SELECT split_part(pg_relation_filepath('pgbench_accounts'), '/', 3)");

# Crash with changes whose images were left out since the last checkpoint.
sub crash_under_load
{
	$node->safe_psql('postgres', 'CHECKPOINT');
	$wait_decision->('skipped');
	pgbench(2);
	my $sum = $node->safe_psql('db', $sum_query);
	$node->stop('immediate');
	return $sum;
}

# (a) The probe cannot create its file: the tablespace is not proven untorn,
# but its files still take atomic writes.
my $sum = crash_under_load();
chmod 0555, $version_dir or die "chmod $version_dir: $!";
$node->append_conf('postgresql.conf', 'restart_after_crash = off');
my $log_offset = -s $node->logfile;
ok($node->start(fail_ok => 1),
	'crash recovery runs when the tablespace cannot be probed');
ok( $node->log_contains(
		qr/WARNING:  WAL being replayed lacks full-page images for tablespace $spcoid \(".*"\), whose blocks may tear on this server\n.*DETAIL:  .*probe.*Permission denied\. Until this server stops/,
		$log_offset),
	'with a WARNING naming the tablespace and the probe\'s reason');
is($node->safe_psql('db', $sum_query), $sum, 'nothing is lost');
$node->command_ok([ 'pg_amcheck', '--heapallindexed', 'db' ],
	'pg_amcheck finds nothing wrong');
chmod 0755, $version_dir or die "chmod $version_dir: $!";
$node->restart;

# (b) A segment file that cannot take atomic writes any more: moved to the
# root filesystem behind a symbolic link.  Recovery writes it through the
# doublewrite area, whose copies (left in its page slots) are blocks of
# that very file, as the file's own bytes show.
my $datadir = $node->data_dir;
my $file = "$datadir/"
  . $node->safe_psql('db', "SELECT pg_relation_filepath('pgbench_accounts')");
my $moved = $node->basedir . '/accounts_segment';
$sum = crash_under_load();
move($file, $moved) or die "move: $!";
symlink($moved, $file) or die "symlink: $!";
$log_offset = -s $node->logfile;
ok($node->start(fail_ok => 1),
	'crash recovery runs when a file cannot take atomic writes');
is($node->safe_psql('db', $sum_query), $sum, 'nothing is lost');
$node->command_ok([ 'pg_amcheck', '--heapallindexed', 'db' ],
	'pg_amcheck finds nothing wrong');
$node->stop;
my %blocks;
{
	my $data = slurp_file($moved);
	$blocks{ substr($data, $_ * 8192, 8192) } = 1
	  for 0 .. length($data) / 8192 - 1;
}
my $copies = grep { $blocks{$_} } doublewrite_copies($node);
cmp_ok($copies, '>', 0,
	"the doublewrite area holds copies of blocks of the moved file ($copies)");
unlink($file) or die "unlink: $!";
move($moved, $file) or die "move back: $!";
$node->command_ok([ 'pg_checksums', '--check', '--pgdata', $datadir ],
	'pg_checksums verifies every page');

done_testing();
