# Copyright (c) 2026, wtsmgr developers
#
# "ALTER SYSTEM SET wtsmgr.skip_full_page_images = off; SELECT
# pg_reload_conf(); CHECKPOINT" is enough: every first change to a block
# after the redo point of that checkpoint has its full-page image, with no
# wait for the view in between, even for a statement that was running all
# along (it never reloads its settings) and even if the reload has not
# reached any process yet when the checkpoint begins: pg_reload_conf() only
# signals the postmaster, which re-reads the files and signals its children
# when it gets to it.  The last case is made certain by stopping the
# postmaster (SIGSTOP) before pg_reload_conf() and letting it go on only
# after the checkpoint.
#
# Judged from the WAL with pg_walinspect: the first reference to each block
# of the table after the checkpoint's redo point, and whether it carries an
# image.  The table is changed only by HOT updates in pages that exist
# before the round (no new pages, no index), so every such first change
# needs an image; a control round that keeps skipping on shows that the
# count sees the images wtsmgr leaves out.
#
# The other way, only a reload counts: skipping put back on in the file but
# not reloaded leaves every image in a checkpoint's cycle.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

# 4000 pages take the running statement about 4 s to go through, longer
# than a round needs
my $pages = 4000;
my $rows_per_page = 13;    # 200-byte rows at fillfactor 40

my $node = new_wtsmgr_node(
	'reload_checkpoint',
	manual_checkpoints => 1,
	conf => "autovacuum = off\nshared_buffers = 64MB\n",
	extensions => ['pg_walinspect']);
my %oid =
  create_tablespaces($node, ts_atomic => "$atomic_dir/ts_reload_$$");
my $spcoid = $oid{ts_atomic};
$node->safe_psql('postgres',
	'CREATE TABLE ctl (done bool); INSERT INTO ctl VALUES (false)');
my $postmaster = $node->{_pid};

# The first changes to blocks of t after redo pointer $redo, and how many
# of them lack an image (pg_walinspect).
sub first_changes
{
	my ($redo) = @_;
	my ($first, $missing, $shown) = split /\|/, $node->safe_psql(
		'postgres', qq{
	WITH firsts AS (
		SELECT DISTINCT ON (relblocknumber) relblocknumber, start_lsn,
			   record_type, block_fpi_length > 0 AS image
		FROM pg_get_wal_block_info('$redo', pg_current_wal_flush_lsn(), false)
		WHERE reltablespace = $spcoid
		  AND relfilenode = pg_relation_filenode('t') AND relforknumber = 0
		ORDER BY relblocknumber, start_lsn)
	SELECT count(*),
		   count(*) FILTER (WHERE NOT image AND record_type NOT LIKE '%INIT%'),
		   (array_agg(format('%s %s block %s', start_lsn, record_type,
							 relblocknumber) ORDER BY start_lsn)
			  FILTER (WHERE NOT image))[1:3]
	FROM firsts});
	note("after redo $redo: $first first changes, $missing without image $shown");
	return ($first, $missing);
}

# One round: a fresh table, a statement that changes one row in each of its
# pages in turn (a first change to a new block every millisecond or so),
# and, while it runs, $change->($session) in another session, which ends
# with the checkpoint.  Returns the first changes after the checkpoint's
# redo point and how many of them lack an image.
sub round
{
	my ($change) = @_;

	$node->safe_psql(
		'postgres', qq{
	DROP TABLE IF EXISTS t;
	CREATE TABLE t (id int, v int, pad text)
	  WITH (fillfactor = 40) TABLESPACE ts_atomic;
	INSERT INTO t SELECT g, 0, repeat('x', 200)
	  FROM generate_series(1, $rows_per_page * $pages) g;
	VACUUM (FREEZE) t;
	UPDATE ctl SET done = false;
	CHECKPOINT});
	wait_for_decision($node, 'ts_atomic', 'skipped');
	my $npages = $node->safe_psql('postgres',
		"SELECT pg_relation_size('t') / current_setting('block_size')::int");

	# both sessions are opened now: no new connection while the postmaster
	# may be stopped
	my $dba = $node->background_psql('postgres');
	my $statement = $node->background_psql('postgres');
	my $start = $node->lsn('insert');
	$statement->query_until(
		qr/started/, qq{
	\\echo started
	DO \$\$
	BEGIN
		FOR p IN 0 .. $npages - 1 LOOP
			EXIT WHEN (SELECT done FROM ctl);
			UPDATE t SET v = v + 1 WHERE ctid = format('(%s,1)', p)::tid;
			PERFORM pg_sleep(0.001);
		END LOOP;
	END
	\$\$;
});
	wait_for_changed_blocks($node, $spcoid, $start, 100);

	my $redo = $change->($dba);

	# the statement goes on changing blocks for a while after the checkpoint
	sleep 1;
	$node->safe_psql('postgres', 'UPDATE ctl SET done = true');
	$statement->quit;
	$dba->quit;

	my ($first, $missing) = first_changes($redo);
	$node->safe_psql('postgres',
		'ALTER SYSTEM RESET wtsmgr.skip_full_page_images; SELECT pg_reload_conf()'
	);
	wait_for_decision($node, 'ts_atomic', 'skipped');
	return ($first, $missing);
}

# The redo point of the checkpoint that $session has just run.
sub checkpoint_in
{
	my ($session) = @_;
	$session->query_safe('CHECKPOINT');
	return $session->query_safe('SELECT redo_lsn FROM pg_control_checkpoint()');
}

my $switch_off =
  q{ALTER SYSTEM SET wtsmgr.skip_full_page_images = off; SELECT pg_reload_conf()};

# Control: skipping stays on, and the count sees the images left out.
my ($first, $missing) = round(sub { return checkpoint_in($_[0]); });
cmp_ok($missing, '>', 100,
	"control, skipping on: $missing of $first first changes after the checkpoint lack an image"
);

# The DBA's habit, each case twice.
my %cases = (
	'reload, 1 s, CHECKPOINT' => sub {
		my ($session) = @_;
		$session->query_safe($switch_off);
		sleep 1;
		return checkpoint_in($session);
	},
	'reload, CHECKPOINT at once' => sub {
		my ($session) = @_;
		$session->query_safe($switch_off);
		return checkpoint_in($session);
	},
	'reload, CHECKPOINT before the postmaster has reloaded' => sub {
		my ($session) = @_;
		kill 'STOP', $postmaster or die "cannot stop the postmaster: $!";
		$session->query_safe($switch_off);
		my $redo = checkpoint_in($session);
		# first changes after the checkpoint while no process has reloaded
		sleep 1;
		kill 'CONT', $postmaster or die "cannot continue the postmaster: $!";
		return $redo;
	});
for my $case (sort keys %cases)
{
	my ($sum_first, $sum_missing) = (0, 0);
	for (1 .. 2)
	{
		my ($f, $m) = round($cases{$case});
		cmp_ok($f, '>', 300,
			"$case: the running statement changed $f blocks first after the checkpoint"
		);
		$sum_first += $f;
		$sum_missing += $m;
	}
	is($sum_missing, 0,
		"$case: $sum_missing of $sum_first first changes after the checkpoint lack an image"
	);
}

# Towards leaving images out, only a reload changes the decision: with
# skipping off and reloaded, ALTER SYSTEM RESET puts it back on in the file,
# and a checkpoint without a reload still keeps every image.
alter_system($node, 'wtsmgr.skip_full_page_images', 'off');
wait_for_decision($node, 'ts_atomic',
	'kept: wtsmgr.skip_full_page_images is off');
$node->safe_psql('postgres',
	'ALTER SYSTEM RESET wtsmgr.skip_full_page_images');
$node->safe_psql('postgres', 'CHECKPOINT');
my $redo = $node->safe_psql('postgres',
	'SELECT redo_lsn FROM pg_control_checkpoint()');
# A duration, not a wait: time for the announcer to read the files and
# (wrongly) announce the cycle, which nothing outside it would show.
sleep 1;
is( $node->safe_psql(
		'postgres',
		q{SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = 'ts_atomic'}
	),
	'kept: wtsmgr.skip_full_page_images is off',
	'skipping on in the file but not reloaded: the checkpoint keeps the images');
$node->safe_psql('postgres', 'UPDATE t SET v = v + 1 WHERE id % 13 = 0');
($first, $missing) = first_changes($redo);
cmp_ok($first, '>', 1000, "an UPDATE changed $first blocks first after the checkpoint");
is($missing, 0, "$missing of them lack an image");
$node->reload;
wait_for_decision($node, 'ts_atomic', 'skipped');
pass('once reloaded, images are left out again');

$node->stop;
done_testing();
