# Copyright (c) 2026, wtsmgr developers
#
# Failures of the atomic write path.  An injection point makes the next
# atomic write fail with EINVAL or EOPNOTSUPP (the kernel refusing an atomic
# write), ENOSPC or EIO.  Each gives an ERROR naming the file, offset and
# length, with a hint; no plain write is tried instead; the buffers stay
# dirty, so the transaction's data survives a later successful checkpoint
# and a crash, and every page's checksum verifies: nothing is torn.
#
# Needs a server built with --enable-injection-points (scripts/test.sh
# builds one) and the test-only module test/wtsmgr_test.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();
my ($module, $module_from_libdir) = test_module();

my $node = new_wtsmgr_node(
	'faults',
	manual_checkpoints => 1,
	conf => q{
# only the checkpoint below may write the table's pages
autovacuum = off
bgwriter_lru_maxpages = 0
},
	extensions => [ 'injection_points', 'amcheck' ]);

create_tablespaces($node, ts_faults => "$atomic_dir/ts_faults_$$");
$node->safe_psql(
	'postgres', qq{
	CREATE FUNCTION fail_next_write(text, text) RETURNS void
		AS '$module', 'wtsmgr_test_fail_next_write' LANGUAGE C STRICT;
	CREATE TABLE t (id int PRIMARY KEY, val int) TABLESPACE ts_faults;
	INSERT INTO t SELECT g, 0 FROM generate_series(1, 20000) g;
	CHECKPOINT});
is($node->safe_psql('postgres',
		q{SELECT untorn_blocks FROM wtsmgr_tablespaces WHERE tablespace = 'ts_faults'}),
	't', 'the tablespace is untorn');

my $file = $node->safe_psql('postgres', q{SELECT pg_relation_filepath('t')});
my $counts = sub {
	return $node->safe_psql('postgres',
		q{SELECT refusals || '|' || errors FROM wtsmgr_stat_io WHERE tablespace = 'ts_faults'});
};

my $round = 0;
for my $case (
	[ 'EINVAL', qr/Invalid argument/, 'refusals' ],
	[ 'EOPNOTSUPP', qr/Operation not supported/, 'refusals' ],
	[ 'ENOSPC', qr/No space left on device/, 'errors' ],
	[ 'EIO', qr/Input\/output error/, 'errors' ])
{
	my ($errname, $message, $counter) = @$case;
	$round++;
	my ($refusals0, $errors0) = split /\|/, $counts->();

	# Dirty every page of t, then make the checkpoint's first write fail.
	$node->safe_psql('postgres', "UPDATE t SET val = $round");
	my $log_offset = -s $node->logfile;
	$node->safe_psql('postgres',
		"SELECT fail_next_write('$errname', '$module_from_libdir')");
	my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CHECKPOINT');
	isnt($ret, 0, "$errname: the checkpoint fails");
	like($stderr, qr/checkpoint request failed/,
		"$errname: and says so to the client");
	ok( $node->log_contains(
			qr/ERROR:  could not write \d+ bytes atomically to file "\Q$file\E" at offset \d+: $message/,
			$log_offset),
		"$errname: the error names the file, length, offset and cause");
	ok( $node->log_contains(
			qr/DETAIL:  .*The blocks stay dirty in shared buffers and nothing is lost.*\n.*HINT:  \S/,
			$log_offset),
		"$errname: with a hint");
	if ($counter eq 'refusals')
	{
		ok( $node->log_contains(
				qr/DETAIL:  The kernel refused an RWF_ATOMIC write .* never falls back to a write that could tear/,
				$log_offset),
			"$errname: a refusal, and no fallback");
	}
	my ($refusals1, $errors1) = split /\|/, $counts->();
	if ($counter eq 'refusals')
	{
		is($refusals1 - $refusals0, 1, "$errname: counted as a refusal");
	}
	else
	{
		is($errors1 - $errors0, 1, "$errname: counted as an error");
	}

	# The next checkpoint writes the still dirty pages, and they survive.
	$node->safe_psql('postgres', 'CHECKPOINT');
	$node->stop('immediate');
	$node->start;
	is($node->safe_psql('postgres', 'SELECT count(*), min(val), max(val) FROM t'),
		"20000|$round|$round", "$errname: the data survives a later checkpoint and a crash");
}

# A failure in a backend's own write: an index build writes through
# bulk_write.c in the backend, which gets the ERROR; its transaction rolls
# back and the same build then succeeds.
$node->safe_psql('postgres',
	"SELECT fail_next_write('EIO', '$module_from_libdir')");
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	'CREATE INDEX t_val ON t (val, id) TABLESPACE ts_faults');
isnt($ret, 0, 'an index build whose write fails errors out');
like($stderr, qr/ERROR:  could not write \d+ bytes atomically to file ".*" at offset \d+: Input\/output error/,
	'with the error of the failed write');
$node->safe_psql('postgres', 'CREATE INDEX t_val ON t (val, id) TABLESPACE ts_faults');
$node->command_ok([ 'pg_amcheck', '--heapallindexed', 'postgres' ],
	'the index built on retry checks out');

# Nothing is torn: every page's checksum verifies.
$node->stop;
$node->command_ok([ 'pg_checksums', '--check', '--pgdata', $node->data_dir ],
	'pg_checksums verifies every page');

done_testing();
