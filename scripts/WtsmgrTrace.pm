# scripts/WtsmgrTrace.pm -- reading tracefs traces of an atomic filesystem,
# and the two audits that judge them.
#
# scripts/write-audit.sh and scripts/fragment-audit.sh trace the filesystem
# under test with iomap:iomap_dio_rw_begin, xfs:xfs_file_direct_write/_read,
# xfs:xfs_file_buffered_write/_read and xfs:xfs_file_fsync, and map inode
# numbers to paths with listings taken while the workload ran.  This module
# owns how such a trace is read (one parser for both) and what each audit
# counts as a write that could tear:
#
#   audit_atomic()       every direct write to a relation file must be an
#                        ATOMIC, DIRECT write of whole blocks, of a
#                        power-of-two length within the atomic unit limits,
#                        aligned to its length (and DSYNC when asked); no
#                        buffered write may touch one; and, when asked,
#                        every relation file written before the checkpoint
#                        marker must have been fsynced after its last write
#                        and before the marker.
#   audit_doublewrite()  every direct write to a relation file must be
#                        ATOMIC, or follow, in the same process, a DSYNC
#                        direct write to the doublewrite area at least a
#                        header (4 kB) longer, with no other relation write
#                        in between; a buffered write to a relation file is
#                        allowed only from a process that read the area
#                        before (the startup process writing blocks back).
#
# The direction of a direct I/O is known from the xfs_file_direct_* event
# that precedes the process's iomap_dio_rw_begin.  scripts/trace-audit is
# the command-line front end; test/audit/trace_audit.pl tests both audits
# on made-up traces.
package WtsmgrTrace;

use strict;
use warnings;
use Exporter 'import';

our @EXPORT_OK = qw(parse_line read_inode_map audit_atomic audit_doublewrite);

# How many flagged events each audit describes in its result.
my $max_shown = 5;

# One line of a trace: undef, or a hash of pid, time, event, ino (a number,
# undef if the event names none) and, for iomap_dio_rw_begin, offset,
# length and flags (a hash of the flag names).
sub parse_line
{
	my ($line) = @_;
	chomp $line;
	my ($pid, $time, $event, $rest) =
	  $line =~ /^\s*.+?-(\d+)\s+\[\d+\]\s+\S+\s+(\d+\.\d+):\s+(\w+):\s?(.*)$/
	  or return undef;
	my %ev = (pid => $pid, time => $time, event => $event, line => $line);
	$ev{ino} = hex($1) if $rest =~ /\bino 0x([0-9a-f]+)/;
	if ($event eq 'iomap_dio_rw_begin')
	{
		# " flags", not "dio_flags": the second may have values too.
		my ($off, $len, $flags) =
		  $rest =~ /\boffset 0x([0-9a-f]+) length 0x([0-9a-f]+) .*?\sflags (\S+)/
		  or die "cannot parse iomap_dio_rw_begin: $line";
		$ev{offset} = hex($off);
		$ev{length} = hex($len);
		$ev{flags} = { map { $_ => 1 } split /\|/, $flags };
	}
	elsif ($event eq 'tracing_mark_write')
	{
		$ev{mark} = $rest;
	}
	return \%ev;
}

# An inode listing ("INODE PATH" per line, as find -printf '%i %P\n'
# prints) as a hash of inode => kind, where $kind_of->(PATH) names the kind.
# A listing taken several times may show an inode number reused: once it
# has been a relation file ('rel'), it stays one.
sub read_inode_map
{
	my ($file, $kind_of) = @_;
	my %kind;
	open(my $fh, '<', $file) or die "$file: $!\n";
	while (<$fh>)
	{
		my ($ino, $path) = /^(\d+) (.*)$/ or next;
		next if ($kind{$ino} // '') eq 'rel';
		$kind{$ino} = $kind_of->($path);
	}
	close($fh);
	return \%kind;
}

# Calls $cb->(EVENT, DIRECTION) for each event of the trace file that names
# an inode, DIRECTION being 'read' or 'write' for iomap_dio_rw_begin (from
# the process's preceding xfs_file_direct_* event, 'unknown' without one),
# and for checkpoint markers.
sub walk_trace
{
	my ($trace, $cb) = @_;
	my %dir;
	open(my $fh, '<', $trace) or die "$trace: $!\n";
	while (my $line = <$fh>)
	{
		my $ev = parse_line($line) or next;
		if ($ev->{event} =~ /^xfs_file_direct_(read|write)$/)
		{
			$dir{ $ev->{pid} } = $1;
			next;
		}
		my $dir;
		$dir = delete $dir{ $ev->{pid} } // 'unknown'
		  if $ev->{event} eq 'iomap_dio_rw_begin';
		next unless defined $ev->{ino} || defined $ev->{mark};
		$cb->($ev, $dir);
	}
	close($fh);
}

sub flag
{
	my ($r, $why, $ev) = @_;
	push @{ $r->{shown} }, "$why: $ev->{line}"
	  if @{ $r->{shown} } < $max_shown;
}

# The audit of scripts/write-audit.sh.  Options: trace, kind (inode =>
# 'rel' or 'other', from read_inode_map), alive (the same from the listing
# taken at the end: files unlinked since are not asked to be fsynced),
# want_dsync, want_fsync, unit_min, unit_max.  Returns a hash of counts
# (writes, atomic, bad, buffered, unfsynced, other, nowait, reads) and
# shown, a few of the flagged events described.
sub audit_atomic
{
	my (%o) = @_;
	my %r = (shown => []);
	$r{$_} = 0 for qw(writes atomic bad buffered unfsynced other nowait reads);
	my (%last_write, %last_fsync, $marker);
	walk_trace(
		$o{trace},
		sub {
			my ($ev, $dir) = @_;
			if (defined $ev->{mark})
			{
				$marker = $ev->{time}
				  if $ev->{mark} =~ /wtsmgr-audit checkpoint done/;
				return;
			}
			my $k = $o{kind}{ $ev->{ino} } // 'unknown';
			if ($ev->{event} eq 'xfs_file_fsync')
			{
				$last_fsync{ $ev->{ino} } = $ev->{time};
				return;
			}
			if ($ev->{event} eq 'xfs_file_buffered_write')
			{
				return if $k eq 'other';
				$r{buffered}++;
				flag(\%r, "buffered write to $k inode $ev->{ino}", $ev);
				return;
			}
			return unless $ev->{event} eq 'iomap_dio_rw_begin';
			if ($dir eq 'read')
			{
				$r{reads}++;
				return;
			}
			die "direct I/O of unknown direction: $ev->{line}"
			  if $dir ne 'write';
			my $fl = $ev->{flags};
			$r{nowait}++ if $fl->{NOWAIT};
			if ($k eq 'other')
			{
				$r{other}++;
				return;
			}
			my ($pos, $len) = ($ev->{offset}, $ev->{length});
			$r{writes}++;
			$r{atomic}++ if $fl->{ATOMIC};
			$last_write{ $ev->{ino} } = $ev->{time} if $k eq 'rel';
			my @why;
			push @why, 'not ATOMIC' unless $fl->{ATOMIC};
			push @why, 'not DIRECT' unless $fl->{DIRECT};
			push @why, 'no DSYNC' if $o{want_dsync} && !$fl->{DSYNC};
			push @why, 'length not a power of two' if $len & ($len - 1);
			push @why, "length outside [$o{unit_min}, $o{unit_max}]"
			  if $len < $o{unit_min} || $len > $o{unit_max};
			push @why, 'offset not aligned to the length'
			  if $len && $pos % $len;
			push @why, 'not whole blocks' if $len % 8192 || $pos % 8192;
			return unless @why;
			$r{bad}++;
			flag(\%r,
				"bad write to $k inode $ev->{ino} (" . join(', ', @why) . ')',
				$ev);
		});
	if ($o{want_fsync})
	{
		die "no checkpoint marker in $o{trace}\n" unless defined $marker;
		for my $ino (sort { $a <=> $b } keys %last_write)
		{
			next unless ($o{alive}{$ino} // '') eq 'rel';
			next if $last_write{$ino} > $marker;
			my $f = $last_fsync{$ino};
			next if defined $f && $f > $last_write{$ino} && $f <= $marker;
			$r{unfsynced}++;
			push @{ $r{shown} },
			  "relation file inode $ino written at $last_write{$ino}, not fsynced before the checkpoint ended"
			  if @{ $r{shown} } < $max_shown;
		}
	}
	return \%r;
}

# The audit of scripts/fragment-audit.sh.  Options: trace, kind (inode =>
# 'rel', 'dw' for the doublewrite area, or 'other').  Returns a hash of
# counts (atomic, protected, restored, flagged) and shown.
sub audit_doublewrite
{
	my (%o) = @_;
	my %r = (shown => []);
	$r{$_} = 0 for qw(atomic protected restored flagged);
	my (%copied, %restorable);
	walk_trace(
		$o{trace},
		sub {
			my ($ev, $dir) = @_;
			return unless defined $ev->{ino};
			my $k = $o{kind}{ $ev->{ino} } // 'other';
			my $pid = $ev->{pid};
			if ($ev->{event} eq 'xfs_file_buffered_read')
			{
				$restorable{$pid} = 1 if $k eq 'dw';
				return;
			}
			if ($ev->{event} eq 'xfs_file_buffered_write')
			{
				return unless $k eq 'rel';
				if ($restorable{$pid})
				{
					$r{restored}++;
					return;
				}
				$r{flagged}++;
				flag(\%r, 'buffered write to a relation file', $ev);
				return;
			}
			return unless $ev->{event} eq 'iomap_dio_rw_begin';
			return if $dir ne 'write';
			my ($len, $fl) = ($ev->{length}, $ev->{flags});
			if ($k eq 'dw')
			{
				$copied{$pid} = $len - 4096 if $fl->{DSYNC} && $len > 4096;
				return;
			}
			return unless $k eq 'rel';
			if ($fl->{ATOMIC})
			{
				$r{atomic}++;
				return;
			}
			if (($copied{$pid} // 0) >= $len)
			{
				$r{protected}++;
				$copied{$pid} = 0;
				return;
			}
			$r{flagged}++;
			flag(\%r, 'unprotected write to a relation file', $ev);
		});
	return \%r;
}

1;
