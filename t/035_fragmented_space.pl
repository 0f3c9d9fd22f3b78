# Copyright (c) 2026, wtsmgr developers
#
# Never wedge on fragmented free space.  XFS does atomic writes in software
# by copy-on-write, and allocates their new blocks aligned: with free space
# cut into single filesystem blocks, an 8 kB RWF_ATOMIC overwrite fails with
# ENOSPC however much space is free.  This test fragments the free space of a
# small XFS that way (4 kB files filling it, every other one removed, the
# large extents XFS held back taken by a fallocated file) until such a write
# fails while a plain O_DIRECT overwrite of the same block, as md.c would
# write it, still succeeds (both asked of the kernel directly, through the
# test module), with a pgbench database in a tablespace there.  Then pgbench,
# CHECKPOINT, more pgbench, an immediate stop and a restart: the checkpoint
# completes, the server starts (crash recovery and its end-of-recovery
# checkpoint complete), and nothing is lost (pgbench's balances agree,
# pg_amcheck and pg_checksums are clean).  strace, outside the server, sees
# every write to the tablespace's relation files: each is an RWF_ATOMIC write
# or comes right after a durable write of its copy to the doublewrite area
# (or writes a block back from it at startup), and some are of the latter
# kind.

use strict;
use warnings FATAL => 'all';

use Cwd ();
use File::Path ();
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $full_dir = full_dir();
my ($module, $lib) = test_module();
my $strace = required_program('strace',
	'to see the write system calls (scripts/build-server.sh installs it as root)');
my $xfs_io = required_program('xfs_io', 'to fallocate and map extents (xfsprogs)',
	'/usr/sbin', '/sbin');
my $xfs_spaceman = required_program('xfs_spaceman',
	'to summarize the free space (xfsprogs)', '/usr/sbin', '/sbin');

my $node = new_wtsmgr_node(
	'frag',
	manual_checkpoints => 1,
	conf => q{
autovacuum = off
log_error_verbosity = verbose
},
	extensions => ['amcheck']);

my $ts_dir = "$full_dir/ts_frag_$$";
my $fill_dir = "$full_dir/frag_fill_$$";
END { File::Path::rmtree($fill_dir) if defined $fill_dir; }
create_tablespaces($node, ts_frag => $ts_dir);
$node->safe_psql('postgres', 'CREATE DATABASE db TABLESPACE ts_frag');
$node->safe_psql('db', 'CREATE EXTENSION amcheck');
$node->command_ok([ 'pgbench', '--initialize', '--scale=3', '--quiet', 'db' ],
	'pgbench tables in a tablespace on the small XFS');
$node->safe_psql(
	'postgres', qq{
	CREATE FUNCTION atomic_overwrite(text) RETURNS text
		AS '$module', 'wtsmgr_test_atomic_overwrite' LANGUAGE C STRICT;
	CREATE FUNCTION plain_overwrite(text) RETURNS text
		AS '$module', 'wtsmgr_test_plain_overwrite' LANGUAGE C STRICT;
	CHECKPOINT});
is($node->safe_psql('postgres',
		q{SELECT untorn_blocks FROM wtsmgr_tablespaces WHERE tablespace = 'ts_frag'}),
	't', 'the tablespace is untorn');

# From here every write system call of every server process is traced by
# strace, and the reads of the doublewrite area at startup.  First the
# running server (its processes, and those they start); the fragmentation
# happens while it runs, as it would in production.
my $datadir = $node->data_dir;
my @traces;
my @strace_opts = ('-f', '-qq', '-y', '-e', 'trace=write,pwrite64,pwritev,pwritev2,pread64');
my @pids = server_pids($node);
push @traces, $node->basedir . '/strace_0.out';
my $tracer = IPC::Run::start(
	[ $strace, @strace_opts, '-o', $traces[-1], map { ('-p', $_) } @pids ],
	'>', \my $tout, '2>', \my $terr);
wait_until(sub { !grep { !traced($_) } @pids },
	'strace has attached to every server process');

# A file of written blocks, to ask the kernel whether an atomic overwrite
# of 8 kB is possible.
mkdir $fill_dir or die "mkdir $fill_dir: $!";
my $scratch = "$fill_dir/scratch";
{
	open my $fh, '>', $scratch or die "open $scratch: $!";
	syswrite($fh, "\x55" x 65536) == 65536 or die "write $scratch: $!";
	close $fh;
}
system('sync', '-f', $fill_dir) == 0 or die 'sync failed';
is($node->safe_psql('postgres', "SELECT atomic_overwrite('$scratch')"),
	'ok', 'before: an 8 kB atomic overwrite succeeds');

# Fragment the free space: 4 kB files until the filesystem is full, then
# every other one removed, leaving holes of one filesystem block.
my $nfiles = 0;
FILL: for (my $d = 0;; $d++)
{
	mkdir "$fill_dir/$d" or last;
	for my $f (0 .. 999)
	{
		open my $fh, '>', "$fill_dir/$d/$f" or last FILL;
		my $n = syswrite($fh, "\xaa" x 4096);
		close $fh or last FILL;
		last FILL unless defined $n && $n == 4096;
		$nfiles++;
	}
	system('sync', '-f', $fill_dir) if $d % 10 == 9;
}
system('sync', '-f', $fill_dir) == 0 or die 'sync failed';
for (my $i = 0; $i < $nfiles; $i += 2)
{
	unlink "$fill_dir/" . int($i / 1000) . '/' . ($i % 1000);
}
system('sync', '-f', $fill_dir) == 0 or die 'sync failed';
cmp_ok($nfiles, '>', 10000, "the filesystem took $nfiles files of 4 kB");

# The filesystem was full while XFS still held large free extents back for
# its own use; now that space is free again, take them.  A fallocated chunk
# of 1 MB that gets many extents came from the small holes: stop then.
my $plug = "$fill_dir/plug";
sub extent_count
{
	my ($out, $err);
	IPC::Run::run([ $xfs_io, '-r', '-c', 'fiemap', $plug ], '>', \$out, '2>', \$err)
	  or die "xfs_io fiemap: $err";
	return scalar(() = $out =~ /^\s*\d+: \[\d+\.\.\d+\]: \d+\.\.\d+/mg);
}
my $plugged = 0;
while (1)
{
	my $before = -e $plug ? extent_count() : 0;
	my ($out, $err);
	IPC::Run::run([ $xfs_io, '-f', '-c', "falloc $plugged 1m", $plug ],
		'>', \$out, '2>', \$err);
	last if $err ne '';
	$plugged += 1024 * 1024;
	last if extent_count() - $before > 8;
}
system('sync', '-f', $fill_dir) == 0 or die 'sync failed';
my $plugged_by_extents = $plugged;

# How much of the free space is left in extents large enough for an 8 kB
# copy-on-write differs between kernels and runs, so ask the kernel itself:
# while an atomic overwrite still finds room, plug more, in chunks of
# 256 kB that may come from the holes, until it fails or the filesystem
# has nothing left to give.
my $overwrite = $node->safe_psql('postgres', "SELECT atomic_overwrite('$scratch')");
while ($overwrite eq 'ok')
{
	my ($out, $err);
	IPC::Run::run([ $xfs_io, '-f', '-c', "falloc $plugged 256k", $plug ],
		'>', \$out, '2>', \$err);
	last if $err ne '';
	$plugged += 256 * 1024;
	$overwrite = $node->safe_psql('postgres', "SELECT atomic_overwrite('$scratch')");
}
note(sprintf(
		'plugged %d kB of free extents: %d kB until a chunk came from the holes, %d kB more while an atomic overwrite still succeeded',
		$plugged / 1024,
		$plugged_by_extents / 1024,
		($plugged - $plugged_by_extents) / 1024));
# What the atomic overwrite was refused on, for docs/design.md: how full
# the filesystem is, and what its free space is cut into.
{
	my ($df, $freesp, $err);
	IPC::Run::run([ 'df', '-P', $full_dir ], '>', \$df, '2>', \$err)
	  or die "df: $err";
	IPC::Run::run([ $xfs_spaceman, '-c', 'freesp -s', $full_dir ],
		'>', \$freesp, '2>', \$err)
	  or die "xfs_spaceman: $err";
	my ($used) = $df =~ /\s(\d+)%\s/;
	my ($extents) = $freesp =~ /^total free extents (\d+)/m;
	my ($average) = $freesp =~ /^average free extent size ([\d.]+)/m;
	note(sprintf('the filesystem is %s%% full; %s free extents of %s blocks on average',
		$used // '?', $extents // '?', $average // '?'));
}
is($overwrite, 'No space left on device',
	'after: an 8 kB atomic overwrite fails with ENOSPC');
is($node->safe_psql('postgres', "SELECT plain_overwrite('$scratch')"),
	'ok', 'where a plain O_DIRECT overwrite of the same block succeeds');

# After the crash, the server starts under strace.
sub start_traced
{
	push @traces, $node->basedir . '/strace_' . scalar(@traces) . '.out';
	my $harness = IPC::Run::start(
		[
			$strace, @strace_opts, '-o', $traces[-1],
			'pg_ctl', '--pgdata', $datadir, '--log', $node->logfile,
			'--wait', 'start'
		],
		'>', \my $out, '2>', \my $err);
	$node->poll_query_until('postgres', 'SELECT true')
	  or die 'the server did not start under strace';
	$node->_update_pid(1);
	return $harness;
}

my $balances = q{
	SELECT (SELECT sum(abalance) FROM pgbench_accounts) || '|' ||
	       (SELECT sum(bbalance) FROM pgbench_branches) || '|' ||
	       (SELECT sum(tbalance) FROM pgbench_tellers) || '|' ||
	       (SELECT coalesce(sum(delta), 0) FROM pgbench_history)};
sub pgbench
{
	my ($seconds) = @_;
	$node->command_ok(
		[ 'pgbench', '--no-vacuum', '--client=2', "--time=$seconds", 'db' ],
		"pgbench for $seconds s on the fragmented filesystem");
}

my $log_offset = -s $node->logfile;
pgbench(8);
my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CHECKPOINT');
is($ret, 0, 'CHECKPOINT completes on the fragmented filesystem');
ok( $node->log_contains(
		qr/WARNING:  53100: atomic writes to tablespace \d+ \(".*"\) fail: No space left on device\n.*DETAIL:  \d+ blocks? of file ".*" at offset \d+ (?:was|were) written through the doublewrite area instead/,
		$log_offset),
	'a WARNING says that writes go through the doublewrite area');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT fallback_cause FROM wtsmgr_tablespaces WHERE tablespace = 'ts_frag'});
like($stdout, qr/^atomic write failed: No space left on device$/,
	'the view says why');
pgbench(5);
my $sum = $node->safe_psql('db', $balances);
$node->stop('immediate');
$tracer->finish;

# The probe after the start finds no space for its atomic write, so the
# tablespace keeps its images from then on; crash recovery replays WAL
# that lacks them, and protects every write there.
$tracer = start_traced();
is($node->safe_psql('db', $balances), $sum,
	'after an immediate stop the server starts, and the balances are as before');
my ($a, $b, $t, $h) = split /\|/, $sum;
ok($a == $b && $b == $t && $t == $h,
	"and they agree with each other ($sum)");
$node->command_ok([ 'pg_amcheck', '--heapallindexed', 'db' ],
	'pg_amcheck is clean');
$node->stop;
$tracer->finish;
$node->command_ok([ 'pg_checksums', '--check', '--pgdata', $datadir ],
	'pg_checksums verifies every page');

# What strace saw.  Per process: a write to a relation file of the
# tablespace is ATOMIC, or comes after a durable write of its copy (a
# header sector and the blocks) to the doublewrite area, or, at startup,
# writes back a block read from it.
my ($real_ts) = glob("$ts_dir/PG_18_*");
$real_ts = Cwd::realpath($real_ts);
my (%copied, %restorable, %calls);
my ($atomic, $protected, $restored, @unprotected) = (0, 0, 0);
for my $trace (@traces)
{
	open(my $fh, '<', $trace) or die "open $trace: $!";
	while (my $line = <$fh>)
	{
		next unless $line =~ /^(\d+)\s+(\w+)\((\d+)<([^>]*)>, (.*)$/;
		my ($pid, $call, $path, $rest) = ($1, $2, $4, $5);
		# bytes: the iovecs' lengths, or pread64's and pwrite64's count
		my $len = 0;
		$len += $_ for $rest =~ /iov_len=(\d+)/g;
		($len) = $rest =~ /, (\d+), \d+\)/ if $call =~ /^p(?:read|write)64$/;
		$len //= 0;
		if ($path =~ m{/pg_wtsmgr/doublewrite$})
		{
			# the startup process reads each region; it may write back
			# the blocks of a valid one with plain pwrite64() calls
			$restorable{$pid} += 16 if $call eq 'pread64' && $len > 4096;
			$copied{$pid} = $len - 4096
			  if $call eq 'pwritev2' && $len > 4096 && $rest =~ /RWF_DSYNC/;
			next;
		}
		# relation files: <relfilenumber>[_fork][.segment]
		next unless index($path, $real_ts) == 0
		  && $path =~ m{/\d+(?:_[a-z]+)?(?:\.\d+)?$};
		next if $call eq 'pread64';
		# strace may not know RWF_ATOMIC (0x40) by name
		if ($call eq 'pwritev2' && $rest =~ /RWF_ATOMIC|\b0x4[0-9a-f]?\b/)
		{
			$atomic++;
		}
		elsif ($call eq 'pwritev2' && ($copied{$pid} // 0) >= $len && $len > 0)
		{
			$protected++;
			$copied{$pid} = 0;
		}
		elsif ($call eq 'pwrite64' && ($restorable{$pid} // 0) > 0)
		{
			$restored++;
			$restorable{$pid}--;
		}
		else
		{
			push @unprotected, $line;
		}
	}
	close($fh);
}
cmp_ok($atomic, '>', 0, "strace saw atomic writes to the tablespace ($atomic)");
cmp_ok($protected, '>', 0,
	"and writes protected by the doublewrite area ($protected; $restored written back at startup)");
is(scalar(@unprotected), 0, 'and no other write to its relation files')
  or diag(join('', @unprotected[ 0 .. ($#unprotected < 5 ? $#unprotected : 4) ]));

done_testing();
