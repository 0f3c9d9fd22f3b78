# Copyright (c) 2026, wtsmgr developers
#
# Failures of the atomic write path.  An injection point makes the next
# atomic write fail with EINVAL or EOPNOTSUPP (the kernel refusing an atomic
# write), ENOSPC (copy-on-write atomic writes finding no free extent) or
# EIO.  A refusal never stops a checkpoint: the unit goes through the
# doublewrite area (or, for ENOSPC, is first tried one block at a time),
# the view says so, and a WARNING names the tablespace, file and cause.
# EIO gives an ERROR naming the file, offset and length, with a hint; the
# buffers stay dirty, so the data survives a later successful checkpoint
# and a crash.  Every page's checksum verifies: nothing is torn.
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
	CREATE FUNCTION fail_writes(text, text) RETURNS void
		AS '$module', 'wtsmgr_test_fail_writes' LANGUAGE C STRICT;
	CREATE FUNCTION clear_write_failure() RETURNS bool
		AS '$module', 'wtsmgr_test_clear_write_failure' LANGUAGE C STRICT;
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

my $fallback = sub {
	return $node->safe_psql('postgres',
		q{SELECT coalesce(fallback_cause, '') || '|' || coalesce(last_fallback::text, '')
		  FROM wtsmgr_tablespaces WHERE tablespace = 'ts_faults'});
};

my $round = 0;

# Sets every row of t to $round, makes the next write fail with $errname,
# and runs a checkpoint: returns the log's offset from before the failure,
# and the checkpoint's exit code and stderr.
my $faulty_checkpoint = sub {
	my ($errname) = @_;
	$node->safe_psql('postgres', "UPDATE t SET val = $round");
	my $log_offset = -s $node->logfile;
	$node->safe_psql('postgres',
		"SELECT fail_next_write('$errname', '$module_from_libdir')");
	my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CHECKPOINT');
	return ($log_offset, $ret, $stderr);
};

# The kernel refuses an atomic write: the checkpoint succeeds all the same.
# EINVAL and EOPNOTSUPP send the unit through the doublewrite area, whose
# page slots then hold copies of blocks of t, and the view says when and
# why.  ENOSPC on a unit of several blocks is first tried again one block at
# a time, which needs smaller free extents; here that succeeds.
for my $case ([ 'EINVAL', 'Invalid argument' ],
	[ 'EOPNOTSUPP', 'Operation not supported' ],
	[ 'ENOSPC', 'No space left on device' ])
{
	my ($errname, $message) = @$case;
	$round++;
	my ($refusals0, $errors0) = split /\|/, $counts->();
	my $fallback0 = $fallback->();

	my ($log_offset, $ret) = $faulty_checkpoint->($errname);
	is($ret, 0, "$errname: the checkpoint succeeds");
	my ($refusals1, $errors1) = split /\|/, $counts->();
	is($refusals1 - $refusals0, 1, "$errname: counted as a refusal");
	is($errors1 - $errors0, 0, "$errname: and not as an error");
	if ($errname ne 'ENOSPC')
	{
		my $now = $fallback->();
		isnt($now, $fallback0, "$errname: the view shows a new fallback");
		like($now, qr/^atomic write failed: \Q$message\E\|/,
			"$errname: with its cause");
		my %blocks;
		my $data = slurp_file($node->data_dir . "/$file");
		$blocks{ substr($data, $_ * 8192, 8192) } = 1
		  for 0 .. length($data) / 8192 - 1;
		cmp_ok(scalar(grep { $blocks{$_} } doublewrite_copies($node)),
			'>', 0, "$errname: the doublewrite area holds copies of blocks of t");
	}
	if ($round == 1)
	{
		ok( $node->log_contains(
				qr/WARNING:  atomic writes to tablespace \d+ \(".*"\) fail: $message\n.*DETAIL:  \d+ blocks? of file "\Q$file\E" at offset \d+ (?:was|were) written through the doublewrite area instead.*\n.*HINT:  \S/,
				$log_offset),
			"$errname: a WARNING names the tablespace, the file and the cause, with a hint");
	}

	$node->stop('immediate');
	$node->start;
	is($node->safe_psql('postgres', 'SELECT count(*), min(val), max(val) FROM t'),
		"20000|$round|$round", "$errname: the data survives a crash");
}

# An I/O error: no way out helps.  The checkpoint fails with an ERROR naming
# the file, the buffers stay dirty, and a later checkpoint writes them.
{
	$round++;
	my ($refusals0, $errors0) = split /\|/, $counts->();
	my ($log_offset, $ret, $stderr) = $faulty_checkpoint->('EIO');
	isnt($ret, 0, "EIO: the checkpoint fails");
	like($stderr, qr/checkpoint request failed/, "EIO: and says so to the client");
	ok( $node->log_contains(
			qr/ERROR:  could not write \d+ bytes atomically to file "\Q$file\E" at offset \d+: Input\/output error/,
			$log_offset),
		"EIO: the error names the file, length, offset and cause");
	ok( $node->log_contains(
			qr/Input\/output error\n.*HINT:  Check the tablespace's filesystem and device\./,
			$log_offset),
		"EIO: with a hint");
	my ($refusals1, $errors1) = split /\|/, $counts->();
	is($errors1 - $errors0, 1, "EIO: counted as an error");
	$node->safe_psql('postgres', 'CHECKPOINT');
	$node->stop('immediate');
	$node->start;
	is($node->safe_psql('postgres', 'SELECT count(*), min(val), max(val) FROM t'),
		"20000|$round|$round", "EIO: the data survives a later checkpoint and a crash");
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

# Every atomic write refused, until the failure is cleared (the helper
# scripts/torn-crash.sh uses to send every write through the doublewrite
# area): two checkpoints write all of t's blocks through the area, then,
# cleared, the next one writes them atomically again.
{
	my $doublewrites = sub {
		return $node->safe_psql('postgres',
			q{SELECT doublewrites FROM wtsmgr_stat_io WHERE tablespace = 'ts_faults'});
	};
	my $blocks = $node->safe_psql('postgres',
		q{SELECT pg_relation_size('t') / 8192});
	$node->safe_psql('postgres',
		"SELECT fail_writes('ENOSPC', '$module_from_libdir')");
	for my $pass (1, 2)
	{
		$round++;
		my $dw0 = $doublewrites->();
		$node->safe_psql('postgres', "UPDATE t SET val = $round");
		$node->safe_psql('postgres', 'CHECKPOINT');
		cmp_ok($doublewrites->() - $dw0, '>=', $blocks,
			"every write refused, checkpoint $pass: all $blocks blocks of t went through the doublewrite area");
	}
	is($node->safe_psql('postgres', 'SELECT clear_write_failure()'),
		't', 'the failure was still attached, and is detached');
	$round++;
	my $dw0 = $doublewrites->();
	$node->safe_psql('postgres', "UPDATE t SET val = $round");
	$node->safe_psql('postgres', 'CHECKPOINT');
	is($doublewrites->() - $dw0, 0, 'once detached, the writes are atomic again');
	is($node->safe_psql('postgres', 'SELECT clear_write_failure()'),
		'f', 'and there is nothing left to detach');
	is($node->safe_psql('postgres', 'SELECT count(*), min(val), max(val) FROM t'),
		"20000|$round|$round", 'the data is intact');
}

# Nothing is torn: every page's checksum verifies.
$node->stop;
$node->command_ok([ 'pg_checksums', '--check', '--pgdata', $node->data_dir ],
	'pg_checksums verifies every page');

done_testing();
