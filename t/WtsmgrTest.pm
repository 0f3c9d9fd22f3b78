# Copyright (c) 2026, wtsmgr developers
#
# Helpers shared by wtsmgr's TAP tests.

package WtsmgrTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use Test::More;

our @EXPORT = qw(required_dir);

# The directory an environment variable names, which scripts/test.sh sets
# when it can make the filesystem (as root).  Without it the whole test is
# skipped, saying why, except under CI=true, where it must run.
sub required_dir
{
	my ($var, $what) = @_;
	my $dir = $ENV{$var};
	return $dir if $dir;
	BAIL_OUT("$var must be set when CI=true") if ($ENV{CI} // '') eq 'true';
	plan skip_all =>
	  "$var is not set: scripts/test.sh makes $what only when run as root";
	return;
}

1;
