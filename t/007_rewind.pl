# Copyright (c) 2026, wtsmgr developers
#
# Failover and pg_rewind with a table in an untorn tablespace.
#
# 1. The phantom row.  A prepared transaction inserts a row on the primary P,
#    P checkpoints, and the standby S is promoted.  On P the transaction
#    commits and a reader sets the row's hint bits: that change of the block
#    must still be WAL-logged (an XLOG_FPI_FOR_HINT record, without its
#    image), or pg_rewind, which copies the blocks that the WAL of P says
#    changed, keeps P's hinted block.  P is rewound from S and S rolls the
#    transaction back: both must then see no row.
# 2. pg_rewind from a live source reads blocks that the source may be
#    writing, and relies on images in the source's WAL to repair a torn
#    read.  It keeps the source in backup mode while it copies (core patch
#    0004), so the source's WAL during the copy (pg_walinspect) holds a
#    backup and no first change without its image, although pgbench runs on
#    the source meanwhile.  A role that may not start a backup is refused
#    before the target is touched, with a hint naming the safe ways.
#
# The rewound P follows S, and both hold the same data.

use strict;
use warnings FATAL => 'all';

use File::Copy;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

my $p = new_wtsmgr_node(
	'p',
	primary => 1,
	manual_checkpoints => 1,
	conf => "max_prepared_transactions = 5\n",
	extensions => [ 'pg_walinspect', 'amcheck' ]);
is($p->safe_psql('postgres', 'SHOW data_checksums'),
	'on', 'data checksums are on, as pg_rewind needs');

my $ts_p = "$atomic_dir/ts_rewind_p_$$";
my $ts_s = "$atomic_dir/ts_rewind_s_$$";
my %oid = create_tablespaces($p, ts_atomic => $ts_p);
my $spcoid = $oid{ts_atomic};
$p->safe_psql(
	'postgres', q{
	CREATE TABLE t (id int) TABLESPACE ts_atomic;
	CREATE DATABASE db TABLESPACE ts_atomic;
	CREATE ROLE rewind_user LOGIN;
	GRANT EXECUTE ON function pg_catalog.pg_ls_dir(text, boolean, boolean) TO rewind_user;
	GRANT EXECUTE ON function pg_catalog.pg_stat_file(text, boolean) TO rewind_user;
	GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text) TO rewind_user;
	GRANT EXECUTE ON function pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO rewind_user;
});
$p->command_ok([ 'pgbench', '--initialize', '--scale=2', '--quiet', 'db' ],
	'pgbench tables in the untorn tablespace');
$p->safe_psql('db', 'CREATE EXTENSION amcheck');
wait_for_decision($p, 'ts_atomic', 'skipped');

my $bk = $p->backup_dir . '/bk';
$p->backup('bk', backup_options => [ "--tablespace-mapping=$ts_p=$bk-ts" ]);
my $s = PostgreSQL::Test::Cluster->new('s');
$s->init_from_backup($p, 'bk',
	has_streaming => 1,
	tablespace_map => { $spcoid => $ts_s });
$s->start;

# 1. A prepared transaction, a checkpoint, failover.
$p->safe_psql('postgres',
	q{BEGIN; INSERT INTO t VALUES (1); PREPARE TRANSACTION 'p1'});
$p->safe_psql('postgres', 'CHECKPOINT');
$p->wait_for_catchup($s);
$s->promote;

# On the old primary: commit, and a reader sets the hint bits, once the
# checkpoint's cycle is announced (before that, images are kept).
wait_for_decision($p, 'ts_atomic', 'skipped');
my $lsn_hint = $p->lsn('insert');
$p->safe_psql('postgres', q{COMMIT PREPARED 'p1'});
is($p->safe_psql('postgres', 'SELECT count(*) FROM t'), '1',
	'the row is committed on the old primary');
my $lsn_hint_end = $p->lsn('insert');
my $relfilenode =
  $p->safe_psql('postgres', q{SELECT relfilenode FROM pg_class WHERE relname = 't'});
is( $p->safe_psql(
		'postgres', qq{
	SELECT count(*) FILTER (WHERE block_fpi_length = 0) || '|' || count(*)
	FROM pg_get_wal_block_info('$lsn_hint', '$lsn_hint_end', false)
	WHERE record_type = 'FPI_FOR_HINT' AND relfilenode = $relfilenode}),
	'1|1',
	'setting the hint bits logged an FPI_FOR_HINT record, without its image');
$p->stop;

# 2. Rewind P from the live S while pgbench writes on S.
my $p_conf = $p->data_dir . '/postgresql.conf';
my $p_conf_keep = $p->basedir . "/postgresql.conf.keep";
copy($p_conf, $p_conf_keep) or die "copy $p_conf: $!";
my $source = 'host=' . $s->host . ' port=' . $s->port . ' dbname=postgres';

$p->command_fails_like(
	[
		'pg_rewind', '--dry-run', '--target-pgdata' => $p->data_dir,
		'--source-server' => "$source user=rewind_user"
	],
	qr/permission denied to put the source server in backup mode(.|\n)*hint: Grant EXECUTE on pg_backup_start\(\) and pg_backup_stop\(\)(.|\n)*--source-pgdata/,
	'a role that may not start a backup on the source is refused, with the safe ways'
);
$s->safe_psql(
	'postgres', q{
	GRANT EXECUTE ON function pg_catalog.pg_backup_start(text, boolean) TO rewind_user;
	GRANT EXECUTE ON function pg_catalog.pg_backup_stop(boolean) TO rewind_user});

my $lsn_before = $s->lsn('insert');
my $bench = IPC::Run::start(
	[
		'pgbench', '--no-vacuum', '--client=2', '--time=6',
		'--host=' . $s->host, '--port=' . $s->port, 'db'
	],
	'>', \my $bench_out, '2>', \my $bench_err);
# pg_rewind starts once pgbench is changing blocks on the source
wait_for_changed_blocks($s, $spcoid, $lsn_before, 100);
$p->command_ok(
	[
		'pg_rewind', '--target-pgdata' => $p->data_dir,
		'--source-server' => "$source user=rewind_user"
	],
	'pg_rewind from the live standby');
$bench->finish;
my $lsn_after = $s->lsn('insert');

my $backup_end = $s->safe_psql(
	'postgres', qq{
	SELECT string_agg(start_lsn::text, ',')
	FROM pg_get_wal_records_info('$lsn_before', '$lsn_after')
	WHERE resource_manager = 'XLOG' AND record_type = 'BACKUP_END'});
like($backup_end, qr/^[0-9A-F]+\/[0-9A-F]+$/,
	'pg_rewind kept the source in backup mode while it copied');
# From the backup's checkpoint to its end: what pg_rewind's copy relies on.
$backup_end = $lsn_after if $backup_end eq '';
my $ft = first_touches($s, $lsn_before, $backup_end, $spcoid,
	ignore_announcements => 1);
cmp_ok($ft->{before_announcement},
	'>', 100, 'pgbench changed blocks on the source during the rewind');
is($ft->{before_without_image},
	0, 'and the source logged each first change with its image');

# S rolls the prepared transaction back; P follows S.
$s->safe_psql('postgres', q{ROLLBACK PREPARED 'p1'});
copy($p_conf_keep, $p_conf) or die "copy $p_conf_keep: $!";
$p->enable_streaming($s);
$p->start;
$s->wait_for_catchup($p);

is($s->safe_psql('postgres', 'SELECT count(*) FROM t'), '0',
	'the new primary has no row');
is($p->safe_psql('postgres', 'SELECT count(*) FROM t'), '0',
	'the rewound old primary has no phantom row either');
my $sums = q{SELECT sum(abalance) || '|' || count(*) FROM pgbench_accounts};
is($p->safe_psql('db', $sums), $s->safe_psql('db', $sums),
	'pgbench data agree on both');
$p->command_ok([ 'pg_amcheck', '--heapallindexed', '--all' ],
	'pg_amcheck finds nothing wrong on the rewound server');

done_testing();
