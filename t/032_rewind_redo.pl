# Copyright (c) 2026, wtsmgr developers
#
# pg_rewind and the WAL between the last common checkpoint's redo pointer
# and its record.
#
# The rewound server replays from the redo pointer of the last checkpoint
# that both servers share.  A block first changed after that redo pointer
# but before the checkpoint's record, without its image (wtsmgr left it
# out), and then given hint bits on the old primary after the failover
# (which logs nothing, the block's LSN being past the redo pointer), must
# be copied from the new primary: no image in the WAL replayed overwrites
# it.  So pg_rewind must learn the blocks to copy from the old primary's WAL
# from the redo pointer on, not from the checkpoint record.
#
# The phantom row: on the old primary P, a checkpoint is held between its
# redo pointer and its record (the injection point "wtsmgr-atomic-write",
# where the checkpointer writes a block of the untorn tablespace, made to
# wait: the WAL then looks as it does for most of a spread checkpoint's
# cycle), and a prepared transaction inserts a row into a block that
# existed before, and the WAL switches to a new segment.  The checkpoint
# ends, the standby S is promoted, P commits the transaction and a reader
# sets the row's hint bits, P is rewound from S, and S rolls the
# transaction back: both must then see one row.  The control,
# wtsmgr.skip_full_page_images = off, logs the insert with its image, and
# both see one row with any pg_rewind.  A third run has the old primary's
# WAL segment holding the redo pointer only in an archive: pg_rewind reads
# it with restore_command (--restore-target-wal), and stops without it.

use strict;
use warnings FATAL => 'all';

use File::Copy;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

# The phantom-row scenario, with wtsmgr.skip_full_page_images = $skip on
# the old primary; with $archived, the old primary's WAL segment holding
# the redo pointer is only in an archive when pg_rewind runs, which must
# then be given --restore-target-wal.
sub phantom_row
{
	my ($skip, $archived) = @_;
	my $name = "skip_$skip" . ($archived ? '_archived' : '');
	my $what =
	  "skip $skip" . ($archived ? ', redo segment archived' : '');
	my $p = new_wtsmgr_node(
		"p_$name",
		primary => 1,
		manual_checkpoints => 1,
		# Only the checkpointer writes blocks of the untorn tablespace
		# while the injection point holds its writes: no background
		# writer, and no backend that evicts a dirty block (the test
		# cluster's shared_buffers is 1MB).
		conf => "max_prepared_transactions = 5\n"
		  . "bgwriter_lru_maxpages = 0\n"
		  . "shared_buffers = 32MB\n"
		  . "wtsmgr.skip_full_page_images = $skip\n",
		extensions => [ 'pg_walinspect', 'injection_points' ]);
	my $want_decision =
	  $skip eq 'on' ? 'skipped' : 'kept: wtsmgr.skip_full_page_images is off';

	my $ts_p = "$atomic_dir/ts_rredo_p_${name}_$$";
	my $ts_s = "$atomic_dir/ts_rredo_s_${name}_$$";
	my %oid = create_tablespaces($p, ts_atomic => $ts_p);
	# t's block 0 exists, with a committed and hinted row, before the
	# checkpoint; blocker's block is what the checkpointer is held at.
	$p->safe_psql(
		'postgres', q{
	CREATE TABLE t (id int) TABLESPACE ts_atomic;
	INSERT INTO t VALUES (1);
	SELECT count(*) FROM t;
	CREATE TABLE blocker (id int) TABLESPACE ts_atomic;
	INSERT INTO blocker VALUES (1)});
	wait_for_decision($p, 'ts_atomic', $want_decision);

	my $bk = $p->backup_dir . '/bk';
	$p->backup('bk', backup_options => [ "--tablespace-mapping=$ts_p=$bk-ts" ]);
	my $s = PostgreSQL::Test::Cluster->new("s_$name");
	$s->init_from_backup($p, 'bk',
		has_streaming => 1,
		tablespace_map => { $oid{ts_atomic} => $ts_s });
	$s->start;

	# A checkpoint held between its redo pointer and its record.
	$p->safe_psql('postgres', 'CHECKPOINT');
	$p->safe_psql('postgres',
		q{SELECT injection_points_attach('wtsmgr-atomic-write', 'wait')});
	$p->safe_psql('postgres', 'UPDATE blocker SET id = id + 1');
	my $ckpt = $p->background_psql('postgres');
	$ckpt->query_until(qr/checkpoint requested/,
		"\\echo checkpoint requested\nCHECKPOINT;\n");
	$p->poll_query_until(
		'postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity
		WHERE backend_type = 'checkpointer' AND wait_event = 'wtsmgr-atomic-write'})
	  or die 'the checkpointer never reached the injection point';
	# The announcer has announced the held checkpoint's cycle (the view
	# compares with the current redo pointer, which the checkpoint set
	# before writing blocks).
	wait_for_decision($p, 'ts_atomic', $want_decision);

	my $lsn_insert = $p->lsn('insert');
	$p->safe_psql('postgres',
		q{BEGIN; INSERT INTO t VALUES (2); PREPARE TRANSACTION 'p1'});
	my $lsn_insert_end = $p->lsn('insert');
	# The checkpoint's record goes to the next WAL segment: pg_rewind reads
	# the redo pointer's segment too.
	$p->safe_psql('postgres', 'SELECT pg_switch_wal()');

	$p->safe_psql('postgres',
		q{SELECT injection_points_detach('wtsmgr-atomic-write')});
	$p->poll_query_until(
		'postgres', q{
		SELECT count(*) = 0 FROM (
			SELECT injection_points_wakeup('wtsmgr-atomic-write')
			FROM pg_stat_activity WHERE wait_event = 'wtsmgr-atomic-write'
			LIMIT 1) w})
	  or die 'the injection point kept waiting';
	$ckpt->quit;

	my ($redo, $ckpt_lsn) = split /\|/,
	  $p->safe_psql('postgres',
		'SELECT redo_lsn, checkpoint_lsn FROM pg_control_checkpoint()');
	is( $p->safe_psql(
			'postgres', qq{
		SELECT '$redo'::pg_lsn < '$lsn_insert' AND '$lsn_insert_end'::pg_lsn < '$ckpt_lsn'
		  AND pg_walfile_name('$redo') <> pg_walfile_name('$ckpt_lsn')}),
		't',
		"$what: the insert lies between the checkpoint's redo pointer and its record, in another WAL segment"
	);
	my $redo_segment =
	  $p->safe_psql('postgres', "SELECT pg_walfile_name('$redo')");
	my $relfilenode = $p->safe_psql('postgres',
		q{SELECT relfilenode FROM pg_class WHERE relname = 't'});
	is( $p->safe_psql(
			'postgres', qq{
		SELECT string_agg(record_type || ':' || relblocknumber || ':' ||
						  (block_fpi_length > 0), ',')
		FROM pg_get_wal_block_info('$lsn_insert', '$lsn_insert_end', false)
		WHERE relfilenode = $relfilenode}),
		$skip eq 'on' ? 'INSERT:0:false' : 'INSERT:0:true',
		"$what: the insert into block 0 of t is logged "
		  . ($skip eq 'on' ? 'without' : 'with')
		  . ' its image');

	# Failover once the checkpoint has ended.
	$p->wait_for_catchup($s);
	$s->promote;

	# On the old primary: commit, and a reader sets the row's hint bits,
	# which logs nothing (t's block is newer than the redo pointer).
	my $lsn_hint = $p->lsn('insert');
	$p->safe_psql('postgres', q{COMMIT PREPARED 'p1'});
	is($p->safe_psql('postgres', 'SELECT count(*) FROM t'),
		'2', "$what: two rows on the old primary");
	my $lsn_hint_end = $p->lsn('insert');
	is( $p->safe_psql(
			'postgres', qq{
		SELECT count(*) FROM pg_get_wal_block_info('$lsn_hint', '$lsn_hint_end', false)
		WHERE relfilenode = $relfilenode}),
		'0',
		"$what: the old primary logged no change of t after the failover");
	$p->stop;

	# The new primary rolls the transaction back; P is rewound from it.
	$s->safe_psql('postgres', q{ROLLBACK PREPARED 'p1'});
	my @rewind = (
		'pg_rewind',
		'--target-pgdata' => $p->data_dir,
		'--source-server' => $s->connstr('postgres'));
	if ($archived)
	{
		my $archive = $p->basedir . '/wal_archive';
		mkdir $archive or die "mkdir $archive: $!";
		move($p->data_dir . "/pg_wal/$redo_segment", $archive)
		  or die "move $redo_segment: $!";
		$p->append_conf('postgresql.conf',
			"restore_command = 'cp \"$archive/%f\" \"%p\"'\n");
		$p->command_fails_like(
			[@rewind],
			qr/could not open file ".*\Q$redo_segment\E"/,
			"$what: without --restore-target-wal, pg_rewind stops for want of the redo pointer's segment"
		);
		push @rewind, '--restore-target-wal';
	}
	my $p_conf = $p->data_dir . '/postgresql.conf';
	my $p_conf_keep = $p->basedir . '/postgresql.conf.keep';
	copy($p_conf, $p_conf_keep) or die "copy $p_conf: $!";
	$p->command_ok([@rewind], "$what: pg_rewind from the new primary");
	copy($p_conf_keep, $p_conf) or die "copy $p_conf_keep: $!";
	$p->enable_streaming($s);
	$p->start;
	$s->wait_for_catchup($p);

	is($s->safe_psql('postgres', 'SELECT count(*) FROM t'),
		'1', "$what: one row on the new primary");
	is($p->safe_psql('postgres', 'SELECT count(*) FROM t'),
		'1', "$what: and one row on the rewound old primary");
	$p->stop;
	$s->stop;
	return;
}

phantom_row('off');
phantom_row('on');
phantom_row('on', 1);

done_testing();
