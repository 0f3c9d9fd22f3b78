#!/usr/bin/env bash
# scripts/check-docs.sh -- every relative link in the documentation resolves.
#
# Usage: scripts/check-docs.sh [FILE.md ...]
#
# For README.md, docs/*.md and bench/README.md (or the files named), each
# Markdown link [text](target) that is not a URL must name a file of the
# tree, and a #anchor must be one of the headings of the file it points
# into, spelled the way GitHub makes anchors (lower case, punctuation
# dropped, spaces as hyphens).  Prints one TAP line per file and exits
# non-zero if any link is broken.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- README.md docs/*.md bench/README.md
exec perl -e '
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;

sub anchors
{
	my ($file) = @_;
	my %a;
	local $/ = "\n";
	open(my $fh, "<", $file) or return undef;
	my $code = 0;
	while (<$fh>)
	{
		$code = !$code if /^```/;
		next if $code || !/^#+ (.*?)\s*$/;
		my $t = lc $1;
		$t =~ s/[^\w\- ]//g;
		$t =~ tr/ /-/;
		$a{$t} = 1;
	}
	return \%a;
}

my ($n, $bad) = (0, 0);
for my $file (@ARGV)
{
	$n++;
	open(my $fh, "<", $file) or die "$file: $!\n";
	local $/;
	my $text = <$fh>;
	# Links are prose: not in indented blocks or code spans.
	$text =~ s/^(?: {4}|\t).*$//mg;
	$text =~ s/`[^`]*`//g;
	my @broken;
	while ($text =~ /\]\(([^)\s]+)\)/g)
	{
		my $target = $1;
		next if $target =~ m{^[a-z]+:};
		my ($path, $anchor) = split /#/, $target, 2;
		my $dest = $path eq "" ? $file
		  : File::Spec->catfile(dirname($file), $path);
		if (!-e $dest)
		{
			push @broken, "$target (no file $dest)";
			next;
		}
		next unless defined $anchor;
		my $a = anchors($dest);
		push @broken, "$target (no heading \"$anchor\" in $dest)"
		  unless $a && $a->{$anchor};
	}
	if (@broken)
	{
		$bad++;
		print "not ok $n - $file: ", scalar(@broken), " broken links\n";
		print "# $_\n" for @broken;
	}
	else
	{
		print "ok $n - $file: every link resolves\n";
	}
}
print "1..$n\n";
exit($bad ? 1 : 0);
' "$@"
