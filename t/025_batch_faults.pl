# Copyright (c) 2026, wtsmgr developers
#
# Faults inside batches of atomic units.  The checkpointer writes blocks
# 1..16 of a table (block 0 stays clean, so the run is unaligned) with one
# call, which wtsmgr cuts into five naturally aligned units: [1] [2-3]
# [4-7] [8-15] [16].  The injection point "wtsmgr-atomic-unit" (through
# test/wtsmgr_test) makes one unit fail or complete short without writing
# it.  For each case:
#
# - the SQLSTATE of the error, from the server log (log_error_verbosity =
#   verbose);
# - the buffers stay dirty (pg_buffercache), and a later successful
#   CHECKPOINT writes them;
# - the file's bytes right after the failure, unit by unit, are each
#   entirely the old contents (before the failed checkpoint) or entirely the
#   new ones (after the later successful one), in the pattern the fault
#   must leave (O = old, N = new), and every block differs between old and
#   new, so the comparison can tell;
# - the data reads back after the later checkpoint and a crash.
#
# Cases: no fault (the control each fault is told apart from); the first
# and a middle unit failing with EIO (the run stops there); a unit the
# kernel refuses (EINVAL, EOPNOTSUPP, ENOSPC), which goes through the
# doublewrite area; a multi-block unit with ENOSPC, tried again one block
# at a time; a unit written short once and every time (never written
# atomically again: through the doublewrite area); a segment file made
# read-only before the checkpoint opens it; a tablespace on tmpfs (no
# O_DIRECT: probed torn, md.c writes it and keeps its images, and a
# read-only segment file there fails md.c's way); and a unit failing in a
# backend's bulk write (an index build), whose SQLSTATE the client sees.
#
# WTSMGR_T025_NO_FAULTS=1 makes every fault injection a no-op: then the
# fault cases must fail, which shows the test tells a fault from none.
#
# Needs a server built with --enable-injection-points and the test-only
# module test/wtsmgr_test.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();
my ($module, $lib) = test_module();
my $no_faults = ($ENV{WTSMGR_T025_NO_FAULTS} // '') eq '1';
# the test module's fault functions attach injection points
prerequisite_missing('the server is built without injection points')
  unless check_pg_config('#define USE_INJECTION_POINTS 1');

my $node = new_wtsmgr_node(
	'batch_faults',
	manual_checkpoints => 1,
	conf => q{
# only checkpoints may write the table's pages
autovacuum = off
bgwriter_lru_maxpages = 0
io_combine_limit = 16
log_error_verbosity = verbose
# the torn-unit case crashes the checkpointer, as the server's default does
restart_after_crash = on
},
	extensions => [ 'pg_buffercache', 'amcheck' ]);

create_tablespaces($node, ts_batch => "$atomic_dir/ts_batch_$$");
$node->safe_psql(
	'postgres', qq{
	CREATE FUNCTION fault_unit(int, text, bool, text) RETURNS void
		AS '$module', 'wtsmgr_test_fault_unit' LANGUAGE C STRICT;
	CREATE FUNCTION clear_unit_fault() RETURNS bool
		AS '$module', 'wtsmgr_test_clear_unit_fault' LANGUAGE C STRICT;
	CREATE FUNCTION crash_at(text, text) RETURNS void
		AS '$module', 'wtsmgr_test_crash_at' LANGUAGE C STRICT;
	CREATE VIEW checkpointer_writes AS
		SELECT write_bytes FROM pg_stat_io
		WHERE backend_type = 'checkpointer' AND object = 'relation'
		  AND context = 'normal';
	-- few rows a page, room for HOT updates: an update dirties its page only
	CREATE TABLE t (id int, val int) WITH (fillfactor = 10) TABLESPACE ts_batch;
	INSERT INTO t SELECT g, 0 FROM generate_series(1, 1000) g;
	CHECKPOINT});
is(untorn_blocks('ts_batch'), 't', 'the tablespace is untorn');
my $nblocks = $node->safe_psql('postgres',
	q{SELECT pg_relation_size('t') / 8192});
cmp_ok($nblocks, '>', 17, "t has more than 17 blocks ($nblocks)");

# Blocks 1..16: one unaligned run of the checkpointer, five units.
my @units = ([ 1, 1 ], [ 2, 2 ], [ 4, 4 ], [ 8, 8 ], [ 16, 1 ]);
my $range = q{ctid >= '(1,0)' AND ctid < '(17,0)'};
my $rows = $node->safe_psql('postgres',
	"SET enable_seqscan = off; SELECT count(*) FROM t WHERE $range");

# Whether the view says tablespace $ts is untorn ("t" or "f").
sub untorn_blocks
{
	my ($ts) = @_;
	return $node->safe_psql('postgres',
		"SELECT untorn_blocks FROM wtsmgr_tablespaces WHERE tablespace = '$ts'");
}

# "rows with val = $round|all rows" of relation $rel.
sub round_counts
{
	my ($rel, $round) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE val = $round), count(*) FROM $rel");
}

sub file_of
{
	my ($rel) = @_;
	return relation_file($node, $rel);
}

sub read_blocks
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "open $path: $!";
	local $/;
	my $bytes = <$fh>;
	close $fh;
	return $bytes;
}

sub block { my ($bytes, $b, $n) = @_; return substr($bytes, $b * 8192, ($n // 1) * 8192); }

sub dirty_blocks
{
	my ($rel) = @_;
	return $node->safe_psql(
		'postgres', qq{
		SELECT count(*) FILTER (WHERE isdirty) || '/' ||
			   coalesce(string_agg(relblocknumber::text, ',' ORDER BY relblocknumber)
						FILTER (WHERE isdirty), '')
		FROM pg_buffercache
		WHERE relfilenode = pg_relation_filenode('$rel') AND relforknumber = 0
		  AND reldatabase = (SELECT oid FROM pg_database WHERE datname = 'postgres')});
}

# Dirty blocks 1..16 of $rel with val = $round, and set their hint bits so
# that nothing changes them until they are written.  Returns the file's
# bytes before.
sub dirty_run
{
	my ($rel, $round, $checkpoint) = @_;
	$node->safe_psql('postgres', 'CHECKPOINT') if $checkpoint;
	$node->safe_psql('postgres',
		"SET enable_seqscan = off; UPDATE $rel SET val = $round WHERE $range");
	$node->safe_psql('postgres',
		"SET enable_seqscan = off; SELECT count(*) FROM $rel WHERE $range");
	is(dirty_blocks($rel), '16/' . join(',', 1 .. 16),
		"round $round: exactly blocks 1..16 of $rel are dirty");
	return read_blocks(file_of($rel));
}

# Each unit of $mid as O (entirely $old), N (entirely $new) or T (torn).
sub classify
{
	my ($old, $mid, $new) = @_;
	my $pattern = '';
	for my $u (@units)
	{
		my ($first, $n) = @$u;
		my $m = block($mid, $first, $n);
		$pattern .=
			$m eq block($old, $first, $n) ? 'O'
		  : $m eq block($new, $first, $n) ? 'N'
		  :                                 'T';
	}
	return $pattern;
}

# Checks that each unit of $mid is entirely $old or entirely $new; returns
# the pattern.
my ($last_old, $last_new);
my $ckpt_writes;
sub unit_pattern
{
	my ($name, $old, $mid, $new) = @_;
	my $differ = 1;
	for my $b (1 .. 16)
	{
		$differ = 0 if block($old, $b) eq block($new, $b);
	}
	my $pattern = classify($old, $mid, $new);
	($last_old, $last_new) = ($old, $new);
	ok($differ, "$name: every block of the run differs between old and new");
	is(block($mid, 0) . substr($mid, 17 * 8192),
		block($old, 0) . substr($old, 17 * 8192),
		"$name: the blocks outside the run are untouched");
	unlike($pattern, qr/T/, "$name: every unit is entirely old or entirely new ($pattern)");
	return $pattern;
}

# After a failed or successful checkpoint: the rest of the checks.
sub finish_case
{
	my ($name, $rel, $round, $old, $mid, $expect) = @_;
	my $pattern = unit_pattern($name, $old, $mid, read_blocks(file_of($rel)));
	is($pattern, $expect, "$name: the units on disk after it are $expect");
	is(dirty_blocks($rel), '0/', "$name: a later checkpoint wrote every dirty block");
	cmp_ok($node->safe_psql('postgres', 'SELECT write_bytes FROM checkpointer_writes')
		  - $ckpt_writes, '>=', 16 * 8192,
		"$name: pg_stat_io counts the checkpointer's write of the run");
	$node->stop('immediate');
	$node->start;
	is($node->safe_psql('postgres',
			"SELECT count(*) FILTER (WHERE val = $round), count(*) FROM $rel"),
		"$rows|1000", "$name: the data reads back after a crash");
}

my $round = 0;

# $fault: [unit, what, once] or undef; $expect_state: SQLSTATE or undef for
# success; $expect: the pattern after the first checkpoint.
sub run_case
{
	my (%c) = @_;
	my $name = $c{name};
	$round++;
	my $old = dirty_run('t', $round, !$c{no_checkpoint});
	$c{before}->() if $c{before};
	if ($c{fault} && !$no_faults)
	{
		my ($unit, $what, $once) = @{ $c{fault} };
		$node->safe_psql('postgres',
			"SELECT fault_unit($unit, '$what', $once, '$lib')");
	}
	$ckpt_writes = $node->safe_psql('postgres', 'SELECT write_bytes FROM checkpointer_writes');
	my $log_offset = -s $node->logfile;
	my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CHECKPOINT');
	my $log = slurp_file($node->logfile, $log_offset);
	my $mid = read_blocks(file_of('t'));
	if (defined $c{sqlstate})
	{
		isnt($ret, 0, "$name: the checkpoint fails");
		like($log, qr/ERROR:  $c{sqlstate}: $c{message}/,
			"$name: the checkpointer's error has SQLSTATE $c{sqlstate}");
		is(dirty_blocks('t'), '16/' . join(',', 1 .. 16),
			"$name: the blocks stay dirty");
	}
	else
	{
		is($ret, 0, "$name: the checkpoint succeeds");
		unlike($log, qr/ERROR:/, "$name: no error in the log");
	}
	my $fired = () = $log =~ /LOG:  [0-9A-Z]{5}: wtsmgr_test: unit/g;
	is($fired, $c{fired} // 0, "$name: the fault fired " . ($c{fired} // 0) . ' times');
	$c{after}->($log) if $c{after};
	$node->safe_psql('postgres', 'SELECT clear_unit_fault()');
	# after a failure, the later checkpoint is the one that writes the run
	$ckpt_writes = $node->safe_psql('postgres', 'SELECT write_bytes FROM checkpointer_writes')
	  if defined $c{sqlstate};
	$node->safe_psql('postgres', 'CHECKPOINT');
	finish_case($name, 't', $round, $old, $mid, $c{pattern});
}

my $batches_now = sub {
	my $batches = $node->safe_psql('postgres',
		q{SELECT batches FROM wtsmgr_stat_io WHERE tablespace = 'ts_batch'});
	return $batches;
};
my $fallback_now = sub {
	return $node->safe_psql('postgres',
		q{SELECT coalesce(fallback_cause, '') || '|' || coalesce(last_fallback::text, '')
		  FROM wtsmgr_tablespaces WHERE tablespace = 'ts_batch'});
};

# Are these blocks of $new among the copies in the doublewrite area?
sub copied_through_area
{
	my ($new, $first, $n) = @_;
	my %copies = map { $_ => 1 } doublewrite_copies($node);
	for my $b ($first .. $first + $n - 1)
	{
		return 0 unless $copies{ block($new, $b) };
	}
	return 1;
}

# Units are written one after another, with synchronous pwritev2() calls.
# The first case also checks that the comparison sees a torn unit: the new
# bytes with the first 4 kB of block 5 (inside unit [4-7]) old.
my $batches0 = $batches_now->();
run_case(
	name => 'control',
	pattern => 'NNNNN',
	after => sub {
		cmp_ok($batches_now->(), '>', $batches0,
			'control: the run was cut into several units');
	});
{
	my $torn = $last_new;
	substr($torn, 5 * 8192, 4096) = substr($last_old, 5 * 8192, 4096);
	is(classify($last_old, $torn, $last_new), 'NNTNN',
		'the comparison flags a unit torn inside one block as torn');
	$torn = $last_new;
	substr($torn, 8 * 8192, 8192) = substr($last_old, 8 * 8192, 8192);
	is(classify($last_old, $torn, $last_new), 'NNNTN',
		'and a unit with one whole block old and the rest new');
}

# An I/O error stops the run: the units after it are not written.
for my $case ([ 'first unit EIO', 0, 8192, 8192, 'OOOOO' ],
	[ 'middle unit EIO', 2, 32768, 32768, 'NNOOO' ])
{
	my ($name, $unit, $bytes, $offset, $pattern) = @$case;
	run_case(
		name => $name,
		fault => [ $unit, 'EIO', 'true' ],
		sqlstate => '58030',
		message => qr/could not write $bytes bytes atomically to file ".*" at offset $offset: Input\/output error/,
		fired => 1,
		pattern => $pattern);
}

# A unit the kernel refuses to write atomically goes through the
# doublewrite area: the checkpoint succeeds, the area's page slots hold the
# unit's new blocks, and the view says when and why.
for my $case (
	[ 'middle unit EINVAL', 2, 'EINVAL', 4, 4, 'Invalid argument' ],
	[ 'middle unit EOPNOTSUPP', 2, 'EOPNOTSUPP', 4, 4, 'Operation not supported' ],
	[ 'last unit ENOSPC', -1, 'ENOSPC', 16, 1, 'No space left on device' ])
{
	my ($name, $unit, $err, $first, $n, $message) = @$case;
	my $fallback0 = $fallback_now->();
	run_case(
		name => $name,
		fault => [ $unit, $err, 'true' ],
		fired => 1,
		pattern => 'NNNNN',
		after => sub {
			my $fallback = $fallback_now->();
			isnt($fallback, $fallback0, "$name: the view shows a new fallback");
			like($fallback, qr/^atomic write failed: \Q$message\E\|/,
				"$name: and its cause");
			ok(copied_through_area(read_blocks(file_of('t')), $first, $n),
				"$name: the doublewrite area holds the unit's new blocks");
		});
}

# A unit of several blocks that finds no free extent (ENOSPC) is tried
# again one block at a time, atomically, as smaller extents may be free.
{
	my $atomic0 = $node->safe_psql('postgres',
		q{SELECT atomic_writes || '|' || doublewrites FROM wtsmgr_stat_io WHERE tablespace = 'ts_batch'});
	run_case(
		name => 'middle unit ENOSPC',
		fault => [ 2, 'ENOSPC', 'true' ],
		fired => 1,
		pattern => 'NNNNN',
		after => sub {
			my ($atomic1, $dw1) = split /\|/, $node->safe_psql('postgres',
				q{SELECT atomic_writes || '|' || doublewrites FROM wtsmgr_stat_io WHERE tablespace = 'ts_batch'});
			my ($atomic0w, $dw0) = split /\|/, $atomic0;
			is($dw1 - $dw0, 0, 'middle unit ENOSPC: nothing went through the doublewrite area');
		});
}

# A unit that completes short is never written again atomically: the
# kernel broke its promise, and the unit may be torn.  It goes through the
# doublewrite area at once, the fault fires once even when it would fire
# every time, and the tablespace keeps its images from then on, until a
# probe finds it untorn again.
for my $once ('true', 'false')
{
	my $name = "middle unit short" . ($once eq 'true' ? ' once' : ', every time');
	run_case(
		name => $name,
		fault => [ 2, 'short', $once ],
		fired => 1,
		pattern => 'NNNNN',
		after => sub {
			my ($log) = @_;
			like($log,
				qr/WARNING:  58030: an atomic write of 32768 bytes to file ".*" at offset 32768 completed short: 16384 bytes/,
				"$name: a WARNING says so");
			is( $node->safe_psql('postgres',
					q{SELECT untorn_blocks || '|' || write_path || '|' || full_page_images
					  FROM wtsmgr_tablespaces WHERE tablespace = 'ts_batch'}),
				'false|doublewrite|kept: blocks may tear',
				"$name: the tablespace keeps its images and writes through the doublewrite area");
		});
	$node->safe_psql('postgres', q{SELECT untorn_blocks FROM wtsmgr_probe('ts_batch')});
}

# A unit torn for real, reported short, and a crash at once: the test
# module writes the unit's first 4 kB and reports the write short; were the
# unit written again atomically, it would crash before that write (as a
# power failure right before a retry would); wtsmgr writes it through the
# doublewrite area instead, and the test crashes the checkpointer once the
# copies are durable.  The startup process writes the copies back before
# recovery: the data reads back and every page's checksum verifies.  (With
# the unit retried, the torn block stays torn: recovery or pg_checksums
# fails.)
{
	$round++;
	# the changes must have no images: after the cycle's announcement
	$node->safe_psql('postgres', 'CHECKPOINT');
	wait_for_decision($node, 'ts_batch', 'skipped');
	my $old = dirty_run('t', $round, 0);
	unless ($no_faults)
	{
		$node->safe_psql('postgres', "SELECT fault_unit(2, 'torn', true, '$lib')");
		$node->safe_psql('postgres',
			"SELECT crash_at('wtsmgr-doublewrite-copied', '$lib')");
	}
	my $log_offset = -s $node->logfile;
	my ($ret) = $node->psql('postgres', 'CHECKPOINT');
	isnt($ret, 0, 'torn unit: the checkpointer crashes');
	ok($node->poll_query_until('postgres', 'SELECT true'),
		'torn unit: the server restarts');
	my $log = slurp_file($node->logfile, $log_offset);
	like($log, qr/wtsmgr_test: unit 2 of 5 \(32768 bytes\) torn: 4096 bytes written/,
		'torn unit: the unit was torn');
	like($log, qr/wtsmgr_test: crashing at injection point "wtsmgr-doublewrite-copied"/,
		'torn unit: the crash came with its copies in the doublewrite area');
	like($log, qr/LOG:  00000: restored 4 blocks from doublewrite area "[^"]+"\n.*DETAIL:  The copies were in 1 region,/,
		'torn unit: the startup process wrote them back');
	is($node->safe_psql('postgres',
			"SELECT count(*) FILTER (WHERE val = $round), count(*) FROM t"),
		"$rows|1000", 'torn unit: the data reads back');
	$node->stop;
	$node->command_ok([ 'pg_checksums', '--check', '--pgdata', $node->data_dir ],
		'torn unit: every page\'s checksum verifies');
	$node->start;
}

# A read-only segment file: the checkpointer, which has not opened it since
# the restart, cannot open it for writing.  Nothing of the run is written.
{
	my $file = file_of('t');
	$node->restart;
	run_case(
		name => 'read-only segment file',
		no_checkpoint => 1,
		before => sub { chmod 0444, $file or die "chmod $file: $!" unless $no_faults; },
		sqlstate => '42501',
		message => qr/could not open file ".*" for atomic writes: Permission denied/,
		after => sub { chmod 0600, $file or die "chmod $file: $!"; },
		pattern => 'OOOOO');
}

# A tablespace on tmpfs: no O_DIRECT, so probed torn; md.c writes it, keeps
# its images, and the unit fault never fires there.
SKIP:
{
	my $fstype = `stat -f -c %T /dev/shm 2>/dev/null`;
	chomp $fstype;
	skip "/dev/shm is not tmpfs ($fstype)", 15 unless $fstype eq 'tmpfs';
	my $tmp_dir = "/dev/shm/wtsmgr_t025_$$";
	mkdir $tmp_dir or die "mkdir $tmp_dir: $!";
	$node->safe_psql(
		'postgres', qq{
		CREATE TABLESPACE ts_tmpfs LOCATION '$tmp_dir';
		CREATE TABLE u (id int, val int) WITH (fillfactor = 10) TABLESPACE ts_tmpfs;
		INSERT INTO u SELECT g, 0 FROM generate_series(1, 1000) g;
		CHECKPOINT});
	is(untorn_blocks('ts_tmpfs'), 'f', 'tmpfs: the tablespace is probed torn');
	$round++;
	my $fpi0 = $node->safe_psql('postgres', 'SELECT wal_fpi FROM pg_stat_wal');
	my $old = dirty_run('u', $round, 1);
	my $fpi1 = $node->safe_psql('postgres', 'SELECT wal_fpi FROM pg_stat_wal');
	cmp_ok($fpi1 - $fpi0, '>=', 16, 'tmpfs: its first changes after a checkpoint have images');
	$node->safe_psql('postgres', "SELECT fault_unit(-1, 'EIO', false, '$lib')");
	my $log_offset = -s $node->logfile;
	$node->safe_psql('postgres', 'CHECKPOINT');
	ok(!$node->log_contains(qr/wtsmgr_test: unit/, $log_offset),
		'tmpfs: md.c writes it, no atomic unit');
	is($node->safe_psql('postgres',
			q{SELECT atomic_writes FROM wtsmgr_stat_io WHERE tablespace = 'ts_tmpfs'}),
		'0', 'tmpfs: no atomic writes');
	$node->safe_psql('postgres', 'SELECT clear_unit_fault()');
	my $new = read_blocks(file_of('u'));
	isnt(block($new, 1, 16), block($old, 1, 16), 'tmpfs: the checkpoint wrote the run');
	is(dirty_blocks('u'), '0/', 'tmpfs: nothing stays dirty');
	$node->stop('immediate');
	$node->start;
	is(round_counts('u', $round), "$rows|1000",
		'tmpfs: the data reads back after a crash');

	# md.c's own failure there: a read-only segment file, which the
	# checkpointer has not opened since the restart.
	$node->restart;
	$round++;
	$old = dirty_run('u', $round, 0);
	my $ufile = file_of('u');
	chmod 0444, $ufile or die "chmod $ufile: $!" unless $no_faults;
	$log_offset = -s $node->logfile;
	my ($ret) = $node->psql('postgres', 'CHECKPOINT');
	chmod 0600, $ufile or die "chmod $ufile: $!";
	isnt($ret, 0, 'tmpfs, read-only segment file: the checkpoint fails');
	ok( $node->log_contains(
			qr/ERROR:  42501: could not open file ".*": Permission denied/,
			$log_offset),
		'tmpfs, read-only segment file: md.c\'s error has SQLSTATE 42501');
	is(dirty_blocks('u'), '16/' . join(',', 1 .. 16),
		'tmpfs, read-only segment file: the blocks stay dirty');
	is(block(read_blocks($ufile), 1, 16), block($old, 1, 16),
		'tmpfs, read-only segment file: nothing of the run was written');
	$node->safe_psql('postgres', 'CHECKPOINT');
	is(dirty_blocks('u'), '0/', 'tmpfs: a later checkpoint writes them');
	$node->stop('immediate');
	$node->start;
	is(round_counts('u', $round), "$rows|1000",
		'tmpfs: the data reads back after a crash');
	$node->safe_psql('postgres', 'DROP TABLE u; DROP TABLESPACE ts_tmpfs');
	rmdir $tmp_dir;
}

# A backend's bulk write (an index build through bulk_write.c, runs of up
# to io_combine_limit pages) whose second unit fails: the client gets the
# error with its SQLSTATE, the build rolls back, and the same build then
# succeeds.
$node->safe_psql('postgres',
	"SELECT fault_unit(1, 'EIO', true, '$lib')") unless $no_faults;
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nCREATE INDEX t_val ON t (val, id) TABLESPACE ts_batch");
isnt($ret, 0, 'bulk write, second unit EIO: the index build fails');
like($stderr,
	qr/ERROR:  58030: could not write \d+ bytes atomically to file ".*" at offset \d+: Input\/output error/,
	'bulk write, second unit EIO: the client gets SQLSTATE 58030');
$node->safe_psql('postgres',
	'DROP INDEX IF EXISTS t_val; CREATE INDEX t_val ON t (val, id) TABLESPACE ts_batch');
$node->command_ok([ 'pg_amcheck', '--heapallindexed', 'postgres' ],
	'bulk write: the index built on retry checks out');

$node->stop;
$node->command_ok([ 'pg_checksums', '--check', '--pgdata', $node->data_dir ],
	'pg_checksums verifies every page');

done_testing();
