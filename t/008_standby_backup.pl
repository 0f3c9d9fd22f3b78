# Copyright (c) 2026, wtsmgr developers
#
# A base backup taken on a standby copies files while replay writes them,
# and only full-page images in the WAL it replays can repair a block copied
# half-written.  The primary's wtsmgr leaves images out, which the standby
# cannot see from full_page_writes, so such backups must be refused, as
# they are after full_page_writes = off:
#
# - pg_backup_start() on the standby fails while the primary leaves images
#   out, and so does pg_basebackup against the standby, with SQLSTATE 55000,
#   a message and a hint that names the alternatives;
# - control: with skipping switched off on the primary and a checkpoint
#   there, the same backup on the standby is taken;
# - a backup that started then, during which the primary starts leaving
#   images out again (seen in the primary's WAL with pg_walinspect), fails
#   in pg_backup_stop().

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

my $primary = new_wtsmgr_node('primary', primary => 1, manual_checkpoints => 1,
	extensions => ['pg_walinspect']);

my $ts_dir = "$atomic_dir/ts_sbackup_$$";
my $spcoid = pgbench_tablespace($primary, $ts_dir, 2);

my $wait_decision = sub {
	my ($want) = @_;
	wait_for_decision($primary, 'ts_atomic', $want);
};
$wait_decision->('skipped');

# The standby's copy of the tablespace is on the atomic filesystem too.
my $standby_ts = "$atomic_dir/ts_sbackup_standby_$$";
my $bk = $primary->backup_dir . '/bk';
$primary->backup('bk',
	backup_options => [ "--tablespace-mapping=$ts_dir=$bk-ts" ]);
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1,
	tablespace_map => { $spcoid => $standby_ts });
$standby->start;

# pg_basebackup against the standby, into $dir.
sub standby_basebackup
{
	my ($dir) = @_;
	return [
		'pg_basebackup', '--pgdata' => $dir,
		'--host' => $standby->host, '--port' => $standby->port,
		'--tablespace-mapping' => "$standby_ts=$dir-ts",
		'--checkpoint' => 'fast'
	];
}

# The primary leaves images out: a checkpoint, then changes.
sub primary_changes
{
	$primary->safe_psql('postgres', 'CHECKPOINT');
	$primary->command_ok(
		[ 'pgbench', '--no-vacuum', '--client=2', '--time=2', 'db' ],
		'pgbench on the primary');
	$primary->wait_for_catchup($standby);
}

primary_changes();
my ($ret, $stdout, $stderr) = $standby->psql('postgres',
	q{\set VERBOSITY verbose
	  SELECT pg_backup_start('on standby', true)});
isnt($ret, 0, 'pg_backup_start() on the standby fails');
like(
	$stderr,
	qr/ERROR:  55000: WAL lacking full-page images of blocks written untorn was replayed since last restartpoint/,
	'with SQLSTATE 55000 and a message saying why');
like($stderr,
	qr/HINT:  .*Take the backup on the primary, or make the primary log full-page images/,
	'and a hint that names the alternatives');

$standby->command_fails_like(
	standby_basebackup($standby->backup_dir . '/refused'),
	qr/WAL lacking full-page images of blocks written untorn was replayed/,
	'pg_basebackup against the standby is refused too');

# Control: skipping switched off on the primary, and a checkpoint there.
$primary->safe_psql('postgres',
	'ALTER SYSTEM SET wtsmgr.skip_full_page_images = off');
$primary->reload;
$wait_decision->('kept: wtsmgr.skip_full_page_images is off');
primary_changes();
my $bg = $standby->background_psql('postgres');
$bg->query_safe('\\set VERBOSITY verbose');
my $start = $bg->query_safe(q{SELECT pg_backup_start('control', true)});
like($start, qr/^[0-9A-F]+\/[0-9A-F]+$/,
	'with skipping off on the primary, a backup on the standby starts');

# ... and the primary starts leaving images out again while it runs.
my $lsn1 = $primary->lsn('insert');
$primary->safe_psql('postgres',
	'ALTER SYSTEM RESET wtsmgr.skip_full_page_images');
$primary->reload;
$wait_decision->('skipped');
$primary->safe_psql('postgres', 'CHECKPOINT');
$primary->command_ok(
	[ 'pgbench', '--no-vacuum', '--client=2', '--time=2', 'db' ],
	'pgbench on the primary during the backup');
$primary->wait_for_catchup($standby);
my $lsn2 = $primary->lsn('insert');
my $ft = first_touches($primary, $lsn1, $lsn2, $spcoid);
cmp_ok($ft->{after_announcement} - $ft->{after_with_image},
	'>', 0,
	'the WAL replayed during the backup has changes without their images');
my $log_offset = -s $standby->logfile;
my $stopped =
  eval { $bg->query_safe(q{SELECT lsn FROM pg_backup_stop(false)}); 1 };
eval { $bg->quit; };
ok(!$stopped, 'pg_backup_stop() on the standby refuses the backup');
ok( $standby->log_contains(
		qr/ERROR:  WAL lacking full-page images of blocks written untorn was replayed during online backup/,
		$log_offset),
	'saying why');

# Control, continued: with skipping off again, a whole backup goes through.
$primary->safe_psql('postgres',
	'ALTER SYSTEM SET wtsmgr.skip_full_page_images = off');
$primary->reload;
$wait_decision->('kept: wtsmgr.skip_full_page_images is off');
primary_changes();
$standby->command_ok(
	standby_basebackup($standby->backup_dir . '/taken'),
	'with skipping off on the primary, pg_basebackup against the standby works');

done_testing();
