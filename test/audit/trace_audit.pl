# test/audit/trace_audit.pl -- the trace audits of scripts/WtsmgrTrace.pm on
# made-up traces, in the format tracefs prints (lines copied from a real
# trace of the atomic filesystem, with other numbers).
#
# Each rule of each audit has a trace that keeps it and one that breaks it:
# an audit that flags nothing, or everything, fails here.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../../scripts";
use File::Temp qw(tempdir);
use Test::More;
use WtsmgrTrace qw(parse_line read_inode_map audit_atomic audit_doublewrite);

my $dir = tempdir(CLEANUP => 1);
my $clock = 100;

# Trace lines: pid, then the event's own fields.
sub direct_write
{
	my ($pid, $ino, $off, $len, $flags, $dio_flags) = @_;
	$dio_flags //= '';
	my @l;
	for my $ev (
		sprintf('xfs_file_direct_write: dev 7:0 ino 0x%x disize 0x200000 pos 0x%x bytecount 0x%x', $ino, $off, $len),
		sprintf('iomap_dio_rw_begin: dev 7:0 ino 0x%x size 0x200000 offset 0x%x length 0x%x done_before 0x0 flags %s dio_flags %s aio 0', $ino, $off, $len, $flags, $dio_flags))
	{
		$clock += 0.001;
		push @l, sprintf("        postgres-%d   [000] ..... %.6f: %s\n", $pid, $clock, $ev);
	}
	return @l;
}

sub direct_read
{
	my ($pid, $ino, $off, $len) = @_;
	my @l;
	for my $ev (
		sprintf('xfs_file_direct_read: dev 7:0 ino 0x%x disize 0x200000 pos 0x%x bytecount 0x%x', $ino, $off, $len),
		sprintf('iomap_dio_rw_begin: dev 7:0 ino 0x%x size 0x200000 offset 0x%x length 0x%x done_before 0x0 flags DIRECT dio_flags  aio 0', $ino, $off, $len))
	{
		$clock += 0.001;
		push @l, sprintf("        postgres-%d   [000] ..... %.6f: %s\n", $pid, $clock, $ev);
	}
	return @l;
}

sub event
{
	my ($pid, $text) = @_;
	$clock += 0.001;
	return sprintf("        postgres-%d   [001] .n... %.6f: %s\n", $pid, $clock, $text);
}

sub buffered_write
{
	my ($pid, $ino) = @_;
	return event($pid, sprintf('xfs_file_buffered_write: dev 7:0 ino 0x%x disize 0x1000000 pos 0x8a4000 bytecount 0x2000', $ino));
}

sub buffered_read
{
	my ($pid, $ino) = @_;
	return event($pid, sprintf('xfs_file_buffered_read: dev 7:0 ino 0x%x disize 0x200000 pos 0x1000 bytecount 0x2000', $ino));
}

sub fsync_ev
{
	my ($pid, $ino) = @_;
	return event($pid, sprintf('xfs_file_fsync: dev 7:0 ino 0x%x iflags 0x40', $ino));
}

sub marker
{
	$clock += 0.001;
	return sprintf("           <...>-1   [000] ..... %.6f: tracing_mark_write: wtsmgr-audit checkpoint done\n", $clock);
}

my $n = 0;
sub write_file
{
	my (@lines) = @_;
	my $f = "$dir/f" . $n++;
	open(my $fh, '>', $f) or die;
	print $fh @lines;
	close($fh);
	return $f;
}

# --- the parser

my $ev = parse_line((direct_write(7, 0x2c3, 0x4000, 0x2000, 'DSYNC|ATOMIC|DIRECT', 'DIO_FORCE_WAIT'))[1]);
is_deeply([ @$ev{qw(pid event ino offset length)} ],
	[ 7, 'iomap_dio_rw_begin', 0x2c3, 0x4000, 0x2000 ],
	'parse_line reads pid, event, inode, offset and length');
is_deeply([ sort keys %{ $ev->{flags} } ], [qw(ATOMIC DIRECT DSYNC)],
	'and the flags, not the dio_flags after them');
is(parse_line("# tracer: nop\n"), undef, 'a comment line is no event');

my $map = write_file("195 PG_18_202506291/16384/16400\n",
	"196 PG_18_202506291/16384/16400_fsm.1\n", "197 PG_18_202506291/pgsql_tmp/x\n",
	"197 PG_18_202506291/16384/16401\n", "198 PG_18_202506291/16384/16402\n");
my $relfile = qr{^PG_\d+_\d+/\d+/\d+(?:_fsm|_vm|_init)?(?:\.\d+)?$};
my $kind = read_inode_map($map, sub { $_[0] =~ $relfile ? 'rel' : 'other' });
is_deeply($kind, { 195 => 'rel', 196 => 'rel', 197 => 'rel', 198 => 'rel' },
	'read_inode_map: relation files, and an inode number reused by one counts as one');
$kind->{199} = 'other';

# --- audit_atomic

sub atomic
{
	my ($lines, %o) = @_;
	return audit_atomic(
		trace => write_file(@$lines),
		kind => $kind,
		alive => $kind,
		want_dsync => 0,
		want_fsync => 0,
		unit_min => 4096,
		unit_max => 1048576,
		%o);
}

my $good = [
	direct_write(10, 195, 0x4000, 0x2000, 'ATOMIC|DIRECT'),
	direct_write(10, 195, 0x10000, 0x10000, 'ATOMIC|DIRECT'),
	direct_read(11, 196, 0, 0x2000),
	direct_write(12, 199, 0x1000, 0x1000, 'DIRECT'),
	buffered_write(12, 199)
];
my $r = atomic($good);
is_deeply([ @$r{qw(writes atomic bad buffered other reads)} ], [ 2, 2, 0, 0, 1, 1 ],
	'atomic: aligned atomic writes of whole blocks pass; reads and other files are counted apart');

my %bad = (
	'not ATOMIC' => [ direct_write(10, 195, 0x4000, 0x2000, 'DIRECT') ],
	'not whole blocks' => [ direct_write(10, 195, 0x1000, 0x1000, 'ATOMIC|DIRECT') ],
	'length not a power of two' => [ direct_write(10, 195, 0x6000, 0x6000, 'ATOMIC|DIRECT') ],
	'offset not aligned to the length' => [ direct_write(10, 195, 0x2000, 0x4000, 'ATOMIC|DIRECT') ],
	'length outside' => [ direct_write(10, 195, 0, 0x200000, 'ATOMIC|DIRECT') ],
	'an inode no listing names' => [ direct_write(10, 4242, 0x4000, 0x2000, 'DIRECT') ],
);
for my $why (sort keys %bad)
{
	my $r = atomic($bad{$why});
	is($r->{bad}, 1, "atomic: a write flagged for $why");
}
like(atomic($bad{'not whole blocks'})->{shown}[0], qr/not whole blocks/,
	'atomic: the flagged write is described');

$r = atomic([ direct_write(10, 195, 0x4000, 0x2000, 'ATOMIC|DIRECT') ], want_dsync => 1);
is($r->{bad}, 1, 'atomic: with DSYNC asked for, a write without it is flagged');
$r = atomic([ direct_write(10, 195, 0x4000, 0x2000, 'DSYNC|ATOMIC|DIRECT') ], want_dsync => 1);
is($r->{bad}, 0, 'atomic: and one with it passes');

$r = atomic([ buffered_write(10, 195) ]);
is($r->{buffered}, 1, 'atomic: a buffered write to a relation file is counted');

my @w = direct_write(10, 195, 0x4000, 0x2000, 'ATOMIC|DIRECT');
$r = atomic([ @w, fsync_ev(20, 195), marker() ], want_fsync => 1);
is($r->{unfsynced}, 0, 'atomic: a file fsynced after its last write and before the marker passes');
@w = direct_write(10, 195, 0x4000, 0x2000, 'ATOMIC|DIRECT');
my $f = fsync_ev(20, 195);
my @w2 = direct_write(10, 195, 0x8000, 0x2000, 'ATOMIC|DIRECT');
$r = atomic([ @w, $f, @w2, marker() ], want_fsync => 1);
is($r->{unfsynced}, 1, 'atomic: one written again after its fsync is flagged');
$r = atomic([ @w, marker() ], want_fsync => 1, alive => {});
is($r->{unfsynced}, 0, 'atomic: one unlinked since is not asked to be fsynced');
ok(!eval { atomic([@w], want_fsync => 1); 1 }, 'atomic: a trace without the checkpoint marker is an error');

# NOWAIT attempts are counted; a direct I/O whose direction is unknown is
# an error, not a pass.
$r = atomic([ direct_write(10, 195, 0x4000, 0x2000, 'ATOMIC|DIRECT|NOWAIT') ]);
is($r->{nowait}, 1, 'atomic: NOWAIT attempts are counted');
my $orphan = (direct_write(10, 195, 0x4000, 0x2000, 'DIRECT'))[1];
ok(!eval { atomic([$orphan]); 1 }, 'atomic: a direct I/O without its direction is an error');

# --- audit_doublewrite

my %dwkind = (300 => 'rel', 301 => 'dw', 302 => 'other');
sub dw
{
	my (@lines) = @_;
	return audit_doublewrite(trace => write_file(@lines), kind => \%dwkind);
}

$r = dw(direct_write(30, 300, 0x4000, 0x2000, 'ATOMIC|DIRECT'),
	direct_write(30, 301, 0, 0x1000 + 0x4000, 'DSYNC|DIRECT'),
	direct_write(30, 300, 0x8000, 0x4000, 'DSYNC|DIRECT'),
	direct_write(30, 302, 0, 0x1000, 'DIRECT'));
is_deeply([ @$r{qw(atomic protected restored flagged)} ], [ 1, 1, 0, 0 ],
	'doublewrite: an atomic write, and a plain one after its copy in the area, pass');

$r = dw(direct_write(30, 300, 0x8000, 0x2000, 'DSYNC|DIRECT'));
is($r->{flagged}, 1, 'doublewrite: a plain write without a copy is flagged');
$r = dw(direct_write(30, 301, 0, 0x1000 + 0x2000, 'DSYNC|DIRECT'),
	direct_write(30, 300, 0x8000, 0x4000, 'DSYNC|DIRECT'));
is($r->{flagged}, 1, 'doublewrite: one longer than its copy is flagged');
$r = dw(direct_write(30, 301, 0, 0x1000 + 0x2000, 'DIRECT'),
	direct_write(30, 300, 0x8000, 0x2000, 'DSYNC|DIRECT'));
is($r->{flagged}, 1, 'doublewrite: one whose copy was not DSYNC is flagged');
$r = dw(direct_write(31, 301, 0, 0x1000 + 0x2000, 'DSYNC|DIRECT'),
	direct_write(30, 300, 0x8000, 0x2000, 'DSYNC|DIRECT'));
is($r->{flagged}, 1, "doublewrite: another process's copy protects nothing");
$r = dw(direct_write(30, 301, 0, 0x1000 + 0x2000, 'DSYNC|DIRECT'),
	direct_write(30, 300, 0x8000, 0x2000, 'DSYNC|DIRECT'),
	direct_write(30, 300, 0xa000, 0x2000, 'DSYNC|DIRECT'));
is_deeply([ @$r{qw(protected flagged)} ], [ 1, 1 ],
	'doublewrite: one copy protects one write, not the next');
$r = dw(buffered_write(40, 300));
is($r->{flagged}, 1, 'doublewrite: a buffered write to a relation file is flagged');
$r = dw(buffered_read(40, 301), buffered_write(40, 300));
is_deeply([ @$r{qw(restored flagged)} ], [ 1, 0 ],
	'doublewrite: unless its process read the area first (the repair at startup)');
$r = dw(direct_read(30, 301, 0, 0x3000), direct_write(30, 300, 0x8000, 0x2000, 'DIRECT'));
is($r->{flagged}, 1, 'doublewrite: a direct read of the area is no copy');

done_testing();
