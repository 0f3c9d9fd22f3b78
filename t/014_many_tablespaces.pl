# Copyright (c) 2026, wtsmgr developers
#
# More tablespaces than wtsmgr tracks (wtsmgr.max_tablespaces, 8 here).
# pg_default and pg_global take two of the entries; the tablespaces beyond the last entry keep their full-page
# images and are written by md.c.  Writing them must not take wtsmgr's lock
# nor warn at every write: a process warns once.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $node = new_wtsmgr_node('many', conf => "wtsmgr.max_tablespaces = 8\n");

# 6 user tablespaces fill the 8 entries; three more are untracked.
my $n = 9;
my $sql = '';
for my $i (1 .. $n)
{
	my $dir = $node->basedir . "/ts_$i";
	mkdir $dir or die "mkdir $dir: $!";
	$sql .= "CREATE TABLESPACE ts_$i LOCATION '$dir';\n";
	$sql .= "CREATE TABLE t_$i (x int) TABLESPACE ts_$i;\n";
}
my ($ret, $stdout, $stderr) = $node->psql('postgres', $sql);
is($ret, 0, "$n tablespaces, each with a table");
my @warnings = ($stderr =~ /WARNING:  wtsmgr cannot track tablespace/g);
ok(@warnings >= 1, 'creating them warns that wtsmgr cannot track them all');

is( $node->safe_psql(
		'postgres',
		q{SELECT count(*) FILTER (WHERE probed_at IS NOT NULL),
		         count(*) FILTER (WHERE full_page_images = 'kept: not probed yet')
		  FROM wtsmgr_tablespaces}),
	'8|3', '8 tracked, 3 untracked and keeping their images');

# A new process writing both untracked tablespaces, many times.
($ret, $stdout, $stderr) = $node->psql(
	'postgres', qq{
	INSERT INTO t_8 SELECT generate_series(1, 20000);
	INSERT INTO t_9 SELECT generate_series(1, 20000);
	UPDATE t_8 SET x = x + 1;
	UPDATE t_9 SET x = x + 1;
	CHECKPOINT});
is($ret, 0, 'writes to untracked tablespaces succeed');
@warnings = ($stderr =~ /WARNING:  wtsmgr cannot track tablespace/g);
is(scalar(@warnings), 1, 'and the process warns once, not at every write');
is( $node->safe_psql(
		'postgres',
		q{SELECT (SELECT sum(x) FROM t_8), (SELECT sum(x) FROM t_9)}),
	'200030000|200030000', 'the data reads back');

$node->stop;
done_testing();
