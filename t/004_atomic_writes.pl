# Copyright (c) 2026, wtsmgr developers
#
# The atomic write path.  pgbench and an index build on a tablespace on the
# atomic XFS filesystem: wtsmgr_stat_io shows atomic writes and multi-unit
# batches, strace shows that no process writes data to those files except
# with pwritev2(RWF_ATOMIC) (every unit is one such call), pg_amcheck is
# clean, and the data
# is identical to the same deterministic run on a tablespace that md.c
# writes, before and after a crash.  Both durability modes are run.

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
my $strace = required_program('strace',
	'to see the write system calls (scripts/build-server.sh installs it as root)');

my $node = new_wtsmgr_node(
	'atomic',
	allows_streaming => 1,
	manual_checkpoints => 1);

my $ts_atomic = "$atomic_dir/ts_atomic_$$";
create_tablespaces(
	$node,
	ts_atomic => $ts_atomic,
	ts_plain => $node->basedir . '/ts_plain');
$node->safe_psql(
	'postgres', q{
	CREATE DATABASE db_atomic TABLESPACE ts_atomic;
	CREATE DATABASE db_plain TABLESPACE ts_plain});
for my $db ('db_atomic', 'db_plain')
{
	$node->safe_psql($db, 'CREATE EXTENSION amcheck');
}
is(untorn_tablespaces($node),
	'ts_atomic:true,ts_plain:false',
	'one untorn tablespace and one that md.c writes');

my $io = sub {
	my ($cols) = @_;
	return $node->safe_psql('postgres',
		"SELECT $cols FROM wtsmgr_stat_io WHERE tablespace = 'ts_atomic'");
};

# A fingerprint of pgbench's data, without history's timestamps.
my $fingerprint = q{
	SELECT md5(string_agg(x, ',' ORDER BY x)) FROM (
		SELECT 'a' || aid || ':' || abalance AS x FROM pgbench_accounts
		UNION ALL SELECT 'b' || bid || ':' || bbalance FROM pgbench_branches
		UNION ALL SELECT 't' || tid || ':' || tbalance FROM pgbench_tellers
		UNION ALL SELECT 'h' || tid || ':' || bid || ':' || aid || ':' || delta
			FROM pgbench_history) s};

for my $mode ('fsync', 'dsync')
{
	alter_system($node, 'wtsmgr.durability', $mode);
	$node->safe_psql('postgres', 'SELECT wtsmgr_stat_reset()');

	# Trace every write system call of every server process, new ones too.
	my $trace = $node->basedir . "/strace_$mode.out";
	my @pids = server_pids($node);
	my @p = map { ('-p', $_) } @pids;
	my $tracer = IPC::Run::start(
		[
			$strace, '-f', '-qq', '-y', '-o', $trace,
			'-e', 'trace=write,pwrite64,pwritev,pwritev2', @p
		],
		'>', \my $tout, '2>', \my $terr);
	wait_until(sub { !grep { !traced($_) } @pids },
		'strace has attached to every server process');

	# The same deterministic workload in both tablespaces.
	for my $db ('db_atomic', 'db_plain')
	{
		$node->command_ok(
			[ 'pgbench', '--initialize', '--scale=2', '--quiet', $db ],
			"$mode: pgbench tables and indexes in $db");
		$node->command_ok(
			[
				'pgbench', '--no-vacuum', '--client=1',
				'--transactions=1000', '--random-seed=4242', $db
			],
			"$mode: pgbench on $db");
		# an index build: bulk_write.c writes runs of pages
		$node->safe_psql($db,
			'CREATE INDEX accounts_bal ON pgbench_accounts (abalance, aid)');
	}
	$node->safe_psql('postgres', 'CHECKPOINT');
	$tracer->signal('INT');
	$tracer->finish;

	my ($writes, $atomic, $units, $batches, $refusals, $errors) = split /\|/,
	  $io->('writes, atomic_writes, atomic_units, batches, refusals, errors');
	cmp_ok($atomic, '>', 1000, "$mode: atomic writes counted ($atomic blocks)");
	is($atomic, $writes + $io->('extends'),
		"$mode: every block written or added there was written atomically");
	cmp_ok($batches, '>', 0, "$mode: multi-unit batches ($batches)");
	cmp_ok($units, '>', $batches, "$mode: more units ($units) than batches");
	is("$refusals|$errors", '0|0', "$mode: no refusals, no errors");

	# What strace saw for files in the atomic tablespace.
	my (@atomic_calls, @other_calls);
	open(my $fh, '<', $trace) or die "open $trace: $!";
	while (my $line = <$fh>)
	{
		next unless $line =~ /^\d+\s+(\w+)\(\d+<([^>]*)>/;
		my ($call, $path) = ($1, $2);
		next unless index($path, $ts_atomic) == 0;
		next if $path =~ /pgsql_tmp/;    # probe files
		if ($call eq 'pwritev2' && $line =~ /RWF_ATOMIC|0x4[0-9a-f]?\b/)
		{
			push @atomic_calls, $line;
		}
		else
		{
			push @other_calls, $line;
		}
	}
	close($fh);
	cmp_ok(scalar(@atomic_calls),
		'>', 0,
		"$mode: strace saw pwritev2(RWF_ATOMIC) on the tablespace's files ("
		  . scalar(@atomic_calls) . ')');
	is(scalar(@other_calls), 0,
		"$mode: and no other data write to them")
	  or diag(join('', @other_calls[ 0 .. ($#other_calls < 5 ? $#other_calls : 4) ]));
	if ($mode eq 'dsync')
	{
		is(scalar(grep { !/RWF_DSYNC|0x42\b/ } @atomic_calls),
			0, 'dsync: every atomic write carries RWF_DSYNC');
	}

	is( $node->safe_psql('db_atomic', $fingerprint),
		$node->safe_psql('db_plain', $fingerprint),
		"$mode: data identical to the run that md.c wrote");

	for my $db ('db_atomic', 'db_plain')
	{
		$node->command_ok(
			[ 'pg_amcheck', '--heapallindexed', '--rootdescend', $db ],
			"$mode: pg_amcheck is clean on $db");
	}

	# After a crash, too.
	my $before = $node->safe_psql('db_atomic', $fingerprint);
	$node->stop('immediate');
	$node->start;
	is($node->safe_psql('db_atomic', $fingerprint),
		$before, "$mode: data unchanged by a crash and recovery");
	$node->command_ok(
		[ 'pg_amcheck', '--heapallindexed', 'db_atomic' ],
		"$mode: pg_amcheck is clean after recovery");

	for my $db ('db_atomic', 'db_plain')
	{
		$node->safe_psql($db,
			'DROP TABLE pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history'
		);
	}
}

# The checksums of every page on disk verify.
$node->stop;
$node->command_ok([ 'pg_checksums', '--check', '--pgdata', $node->data_dir ],
	'pg_checksums verifies every page');

done_testing();
