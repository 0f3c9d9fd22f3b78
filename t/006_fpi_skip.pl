# Copyright (c) 2026, wtsmgr developers
#
# Leaving full-page images out, on a mixed cluster: one tablespace on the
# atomic XFS filesystem, one on the root filesystem, pgbench tables in each,
# checkpoints every two seconds, data checksums on.
#
# - Per relation (pg_walinspect): no images for the untorn tablespace's
#   relations but forced ones (log_newpage), hint-bit images included;
#   images as usual for the other.  The WAL announces the skipping.
# - While a base backup runs, images come back for both.
# - Crash recovery under load, repeated: pg_amcheck clean, and pgbench's
#   balances agree.
# - A torn page in the other tablespace is healed by its image at recovery.
# - A streaming standby, restored from a base backup, replays it all with
#   wal_consistency_checking = all and finds no inconsistency; a standby
#   whose copy of the untorn tablespace sits on the root filesystem warns.

use strict;
use warnings FATAL => 'all';

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

my $node = new_wtsmgr_node('primary', primary => 1, manual_checkpoints => 1,
	extensions => ['pg_walinspect']);

my $ts_atomic = "$atomic_dir/ts_skip_$$";
my $ts_plain = $node->basedir . '/ts_plain';
my %oid = create_tablespaces(
	$node,
	ts_atomic => $ts_atomic,
	ts_plain => $ts_plain);
$node->safe_psql(
	'postgres', q{
	CREATE DATABASE db_atomic TABLESPACE ts_atomic;
	CREATE DATABASE db_plain TABLESPACE ts_plain});
for my $db ('db_atomic', 'db_plain')
{
	$node->command_ok([ 'pgbench', '--initialize', '--scale=2', '--quiet', $db ],
		"pgbench tables in $db");
	$node->safe_psql($db, 'CREATE EXTENSION amcheck');
}
is($node->safe_psql('postgres', 'SHOW data_checksums'), 'on', 'data checksums are on');

my $decision = sub {
	my ($ts) = @_;
	return $node->safe_psql('postgres',
		"SELECT full_page_images FROM wtsmgr_tablespaces WHERE tablespace = '$ts'");
};
wait_for_decision($node, 'ts_atomic', 'skipped');
is($decision->('ts_atomic'), 'skipped', 'the untorn tablespace skips images');
is($decision->('ts_plain'), 'kept: blocks may tear', 'the other keeps them');

# Start pgbench on both databases, in the background.
sub start_pgbench
{
	my ($seconds) = @_;
	my @runs;
	for my $db ('db_atomic', 'db_plain')
	{
		push @runs,
		  IPC::Run::start(
			[
				'pgbench', '--no-vacuum', '--client=2', "--time=$seconds",
				'--host=' . $node->host, '--port=' . $node->port, $db
			],
			'>', \my $out, '2>', \my $err);
	}
	return @runs;
}

# pgbench on both databases for some seconds, with a CHECKPOINT every two.
sub load
{
	my ($seconds) = @_;
	my @runs = start_pgbench($seconds);
	for (my $t = 0; $t < $seconds; $t += 2)
	{
		# A duration, not a wait: the cadence of checkpoints under a load
		# that runs for a set time, so that the load spans that many cycles.
		sleep 2;
		$node->safe_psql('postgres', 'CHECKPOINT');
	}
	$_->finish for @runs;
	return;
}

# Images per tablespace in [start, end), except log_newpage's FPI records.
sub images
{
	my ($start, $end, $spcoid, $record_type) = @_;
	my $type_cond = $record_type ? "= '$record_type'" : "<> 'FPI'";
	return $node->safe_psql(
		'postgres', qq{
	SELECT count(*) FROM pg_get_wal_block_info('$start', '$end', false)
	WHERE reltablespace = $spcoid AND block_fpi_length > 0
	  AND record_type $type_cond});
}

# 1. Under load: images only where blocks may tear.
$node->safe_psql('postgres', 'SELECT wtsmgr_stat_reset()');
$node->safe_psql('postgres', 'CHECKPOINT');
my $lsn1 = $node->lsn('insert');
load(10);
# scans after a checkpoint set hint bits: FPI_FOR_HINT where images are kept
$node->safe_psql('postgres', 'CHECKPOINT');
for my $db ('db_atomic', 'db_plain')
{
	$node->safe_psql($db, 'SELECT sum(abalance) FROM pgbench_accounts');
}
my $lsn2 = $node->lsn('insert');
# Each checkpoint cycle keeps images until the announcer has announced it in
# WAL (a moment after its redo point), and leaves them out after that.
my $ft = first_touches($node, $lsn1, $lsn2, $oid{ts_atomic});
note explain $ft;
cmp_ok($ft->{cycles}, '>=', 5, "the load spans $ft->{cycles} checkpoint cycles");
# (A record whose images were decided just before the announcement may be
# inserted just after it, with its image: rare, and safe.)
cmp_ok($ft->{after_with_image}, '<=', $ft->{after_announcement} / 100,
	"no full-page images for the untorn tablespace under load once a cycle is announced ($ft->{after_with_image} of $ft->{after_announcement} first changes)"
);
is($ft->{before_without_image}, 0,
	"images for first changes before a cycle's announcement ($ft->{before_announcement} of them)"
);
my $window = images($lsn1, $lsn2, $oid{ts_atomic});
my $plain_images = images($lsn1, $lsn2, $oid{ts_plain});
cmp_ok($plain_images, '>', 0, 'full-page images as usual for the other');
cmp_ok($window, '<', $plain_images / 10,
	"the announcement windows cost few images ($window against $plain_images)");
my $hints = first_touches($node, $lsn1, $lsn2, $oid{ts_atomic},
	record_type => 'FPI_FOR_HINT');
cmp_ok($hints->{after_with_image}, '<=', $hints->{after_announcement} / 100,
	"no hint-bit images for the untorn tablespace once announced ($hints->{after_with_image} of $hints->{after_announcement} hint-bit records)"
);
cmp_ok(images($lsn1, $lsn2, $oid{ts_plain}, 'FPI_FOR_HINT'),
	'>', 0, 'hint-bit images for the other');
cmp_ok(
	$node->safe_psql('postgres',
		q{SELECT fpi_skipped FROM wtsmgr_stat_io WHERE tablespace = 'ts_atomic'}),
	'>', 0, 'wtsmgr_stat_io counts the skipped images');
is( $node->safe_psql(
		'postgres',
		q{SELECT atomic_writes = writes + extends AND refusals + errors = 0
		  FROM wtsmgr_stat_io WHERE tablespace = 'ts_atomic'}),
	't',
	'every block written to the untorn tablespace went down in an atomic unit');
cmp_ok(
	$node->safe_psql('postgres', 'SELECT est_bytes_saved FROM wtsmgr_wal_savings'),
	'>', 0, 'wtsmgr_wal_savings estimates the WAL saved');
cmp_ok(
	$node->safe_psql(
		'postgres', qq{
	SELECT count(*) FROM pg_get_wal_records_info('$lsn1', '$lsn2')
	WHERE resource_manager = 'wtsmgr' AND description LIKE '%$oid{ts_atomic}%'}),
	'>', 0, 'the WAL announces the skipping after each checkpoint');

# Forced images stay: an index build logs its pages whole.
my $lsn3 = $node->lsn('insert');
$node->safe_psql('db_atomic', 'CREATE INDEX ON pgbench_history (aid)');
cmp_ok(images($lsn3, $node->lsn('insert'), $oid{ts_atomic}, 'FPI'),
	'>', 0, 'forced images (log_newpage) are kept');

# 2. While a base backup runs, images come back for both.
my $backup = $node->background_psql('postgres');
$backup->query_safe(q{SELECT pg_backup_start('skip', true)});
is($decision->('ts_atomic'), 'kept: backup running', 'the view says a backup runs');
my $lsn4 = $node->lsn('insert');
load(4);
my $lsn5 = $node->lsn('insert');
$backup->query_safe('SELECT * FROM pg_backup_stop(false)');
$backup->quit;
cmp_ok(images($lsn4, $lsn5, $oid{ts_atomic}),
	'>', 0, 'images for the untorn tablespace while a backup runs');
cmp_ok(images($lsn4, $lsn5, $oid{ts_plain}), '>', 0, 'and for the other');

# 3. Crash recovery under load, three times: the crash comes once pgbench
# has changed blocks in both tablespaces before a checkpoint and again after
# it.
sub wait_for_load
{
	my ($from_lsn) = @_;
	wait_for_changed_blocks($node, $oid{$_}, $from_lsn, 300)
	  for ('ts_atomic', 'ts_plain');
	return;
}
for my $round (1 .. 3)
{
	my $start = $node->lsn('insert');
	my @runs = start_pgbench(30);
	wait_for_load($start);
	my $checkpoint = $node->lsn('insert');
	$node->safe_psql('postgres', 'CHECKPOINT');
	wait_for_load($checkpoint);
	$node->stop('immediate');
	$_->finish for @runs;
	$node->start;
}
for my $db ('db_atomic', 'db_plain')
{
	$node->command_ok([ 'pg_amcheck', '--heapallindexed', $db ],
		"after three crashes under load, pg_amcheck is clean on $db");
	is( $node->safe_psql(
			$db, q{
		SELECT (SELECT sum(abalance) FROM pgbench_accounts) =
			   (SELECT sum(bbalance) FROM pgbench_branches)
		   AND (SELECT sum(bbalance) FROM pgbench_branches) =
			   (SELECT sum(tbalance) FROM pgbench_tellers)
		   AND (SELECT sum(tbalance) FROM pgbench_tellers) =
			   (SELECT coalesce(sum(delta), 0) FROM pgbench_history)}),
		't', "pgbench's balances agree in $db");
}

# 4. A torn page in the other tablespace is healed from its image: after a
# checkpoint, change a page, write it out, crash, and put back one half of
# the page as it was before the change.  (t/020_torn_pages.pl
# shows that the same tear is not healed where the image was left out.)
$node->safe_psql('db_plain', 'CREATE EXTENSION pg_buffercache');
$node->safe_psql('db_plain', 'CHECKPOINT');
my $file = relation_file($node, 'pgbench_branches', 'db_plain');
open(my $fh, '+<', $file) or die "open $file: $!";
binmode $fh;
my ($old, $new);
sysseek($fh, 0, 0);
sysread($fh, $old, 8192) == 8192 or die "read $file";
is( $node->safe_psql(
		'db_plain', q{
	UPDATE pgbench_branches SET bbalance = bbalance + 1000, filler = repeat('t', 88);
	} . evict_block_sql('pgbench_branches')),
	't', 'the changed page was written out (pg_buffercache_evict flushed it)');
$node->stop('immediate');
sysseek($fh, 0, 0);
sysread($fh, $new, 8192) == 8192 or die "read $file";
# The tear puts one 4 kB half back as it was: the second half if the new
# row versions landed there, else the first (whose page header always
# changed).  Either way, the half put back must differ from the one written.
my $half = substr($new, 4096) ne substr($old, 4096) ? 4096 : 0;
ok(substr($new, $half, 4096) ne substr($old, $half, 4096),
	'the half put back differs from the page written');
sysseek($fh, $half, 0);
syswrite($fh, substr($old, $half, 4096), 4096) == 4096 or die "write $file";
close($fh);
$node->start;
is( $node->safe_psql('db_plain',
		q{SELECT count(*) FROM pgbench_branches WHERE filler = repeat('t', 88)}),
	'2', 'a torn page of the other tablespace is healed by its image');
$node->command_ok([ 'pg_amcheck', '--heapallindexed', 'db_plain' ],
	'and its checksums verify');

# 5. A streaming standby, from a base backup, with consistency checks.
$node->safe_psql('postgres',
	q{ALTER SYSTEM SET wal_consistency_checking = 'all'});
$node->reload;
my $bk = $node->backup_dir . '/bk';
$node->backup(
	'bk',
	backup_options => [
		"--tablespace-mapping=$ts_atomic=$bk-ts_atomic",
		"--tablespace-mapping=$ts_plain=$bk-ts_plain"
	]);
my %standby_ts = (
	good => { $oid{ts_atomic} => "$atomic_dir/ts_standby_$$", $oid{ts_plain} => $node->basedir . '/standby_plain' },
	torn => { $oid{ts_atomic} => $node->basedir . '/standby2_atomic', $oid{ts_plain} => $node->basedir . '/standby2_plain' });
my %standby;
for my $kind ('good', 'torn')
{
	my $s = PostgreSQL::Test::Cluster->new("standby_$kind");
	$s->init_from_backup($node, 'bk', has_streaming => 1,
		tablespace_map => $standby_ts{$kind});
	$s->start;
	$standby{$kind} = $s;
}
load(6);
$node->safe_psql('postgres', 'CHECKPOINT');
load(2);
for my $kind ('good', 'torn')
{
	$node->wait_for_replay_catchup($standby{$kind});
}
my $good = $standby{good};
ok(!$good->log_contains(qr/inconsistent page found/),
	'the standby replays with wal_consistency_checking = all: no inconsistency');
ok(!$good->log_contains(qr/lacks full-page images/),
	'a standby on atomic storage does not warn');
for my $db ('db_atomic', 'db_plain')
{
	$good->command_ok([ 'pg_amcheck', '--heapallindexed', $db ],
		"the standby's $db is clean");
}

# A probe that fails on the good standby (its copy's directory made
# read-only) does not take its writes off the atomic path, and replaying
# the next announcements raises no warning: its blocks are still written
# atomically.
my ($good_vdir) = glob("$standby_ts{good}{$oid{ts_atomic}}/PG_18_*");
chmod 0555, $good_vdir or die "chmod $good_vdir: $!";
like($good->safe_psql('postgres',
		q{SELECT untorn_blocks || '|' || write_path || '|' || reason FROM wtsmgr_probe('ts_atomic')}),
	qr/^false\|atomic\|could not create probe file .*Permission denied$/,
	'a failed probe on the standby: not untorn, but written atomically still');
chmod 0755, $good_vdir or die "chmod $good_vdir: $!";
load(4);
$node->wait_for_replay_catchup($good);
ok(!$good->log_contains(qr/lacks full-page images/),
	'and replaying the next announcements raises no warning');
is($good->safe_psql('postgres',
		q{SELECT doublewrites FROM wtsmgr_stat_io WHERE tablespace = 'ts_atomic'}),
	'0', 'nor does anything go through its doublewrite area');

my $torn = $standby{torn};
ok( $torn->log_contains(
		qr/WARNING:  WAL being replayed lacks full-page images for tablespace $oid{ts_atomic} .*, whose blocks may tear on this server/
	),
	'a standby whose copy of the untorn tablespace may tear warns');
ok( $torn->log_contains(
		qr/DETAIL:  .*Until this server stops, its blocks are written with atomic writes where its files take them, and through the doublewrite area.*\n.*HINT:  \S/
	),
	'with a hint');
is(scalar(() = slurp_file($torn->logfile) =~ /lacks full-page images for tablespace $oid{ts_atomic}/g),
	1, 'once');
is( $torn->safe_psql(
		'postgres',
		q{SELECT write_path FROM wtsmgr_tablespaces WHERE tablespace = 'ts_atomic'}),
	'doublewrite', 'and its view says that its blocks go through the doublewrite area');
cmp_ok(
	$torn->safe_psql(
		'postgres',
		q{SELECT doublewrites FROM wtsmgr_stat_io WHERE tablespace = 'ts_atomic'}),
	'>', 0, 'which the standby has written through');


# Its writes there were protected all the same: its doublewrite area holds
# copies of blocks of its own files there (read from the files), and after
# a crash it starts, replays onto whole blocks and checks out.
my $copies_in = sub {
	my %blocks;
	for my $rel ('pgbench_accounts', 'pgbench_branches', 'pgbench_tellers')
	{
		my $data = slurp_file(relation_file($torn, $rel, 'db_atomic'));
		$blocks{ substr($data, $_ * 8192, 8192) } = 1
		  for 0 .. length($data) / 8192 - 1;
	}
	return scalar(grep { $blocks{$_} } doublewrite_copies($torn));
};
$torn->safe_psql('postgres', 'CHECKPOINT');
my $copies = $copies_in->();
cmp_ok($copies, '>', 0,
	"the standby's doublewrite area holds copies of blocks of its files there ($copies)");
load(2);
$torn->stop('immediate');
$torn->start;
$node->wait_for_replay_catchup($torn);
$torn->command_ok([ 'pg_amcheck', '--heapallindexed', 'db_atomic' ],
	"after a crash, the standby's db_atomic is clean");
$_->stop for values %standby;

# 6. Removing wtsmgr is safe only after a clean shutdown: after a crash,
# recovery would replay WAL without images, and refuses to without wtsmgr.
$node->safe_psql('postgres', 'CHECKPOINT');
$node->poll_query_until(
	'postgres', q{
	SELECT count(*) > 0 FROM pg_get_wal_records_info(
		(SELECT redo_lsn FROM pg_control_checkpoint()), pg_current_wal_insert_lsn())
	WHERE resource_manager = 'wtsmgr'})
  or die 'no announcement after the checkpoint';
$node->stop('immediate');
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
my $log_offset = -s $node->logfile;
ok(!$node->start(fail_ok => 1),
	'after a crash, the server does not recover without wtsmgr');
ok( $node->log_contains(
		qr/resource manager with ID 212 not registered/, $log_offset),
	'because the WAL needs wtsmgr\'s resource manager');
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'wtsmgr'");
$node->start;
$node->stop;
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''");
$node->start;
is($node->safe_psql('db_atomic', 'SELECT count(*) FROM pgbench_branches'),
	'2', 'after recovery with wtsmgr and a clean shutdown, it starts without');
$node->stop;

done_testing();
