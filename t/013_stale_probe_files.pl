# Copyright (c) 2026, wtsmgr developers
#
# Probe files left behind.  A probe writes pgsql_tmp_wtsmgr_probe.<pid> in
# the tablespace's directory and removes it; a crash in between leaves it.
# Such a file must not make DROP TABLESPACE fail, and must not make a later
# probe by a process with the same PID (containers reuse PIDs) fail and
# call the tablespace torn.  Each probe removes the files of processes that
# no longer exist, so the prober removes them after a start.

use strict;
use warnings FATAL => 'all';

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

my $node = new_wtsmgr_node('stale');

my %dir = (ts_s1 => "$atomic_dir/ts_s1_$$", ts_s2 => "$atomic_dir/ts_s2_$$");
create_tablespaces($node, ts_s1 => $dir{ts_s1}, ts_s2 => $dir{ts_s2});
my ($vdir1) = glob("$dir{ts_s1}/PG_18_*");
my ($vdir2) = glob("$dir{ts_s2}/PG_18_*");

sub touch
{
	my ($file) = @_;
	open my $fh, '>', $file or die "open $file: $!";
	close $fh;
}

# 1. A file left by a process whose PID a backend now has.
my $psql = $node->background_psql('postgres');
my $pid = $psql->query_safe('SELECT pg_backend_pid()');
touch("$vdir2/pgsql_tmp_wtsmgr_probe.$pid");
is($psql->query_safe(q{SELECT untorn_blocks FROM wtsmgr_probe('ts_s2')}),
	't', 'a probe by a process with the PID of a left-over file succeeds');
like(
	$node->safe_psql('postgres',
		q{SELECT reason FROM wtsmgr_tablespaces WHERE tablespace = 'ts_s2'}),
	qr/^RWF_ATOMIC write of 8192 bytes proven/,
	'and proves the tablespace untorn');
$psql->quit;
ok(!-e "$vdir2/pgsql_tmp_wtsmgr_probe.$pid", 'the left-over file is gone');

# 2. Files left by a crash, found at the next start.
$node->stop;
touch("$vdir1/pgsql_tmp_wtsmgr_probe.999999");
touch($node->data_dir . '/base/pgsql_tmp_wtsmgr_probe.999998');
$node->start;
wait_for_probes($node);
is( join(',',
		glob("$vdir1/pgsql_tmp_wtsmgr_probe.*"),
		glob($node->data_dir . '/base/pgsql_tmp_wtsmgr_probe.*')),
	'',
	'left-over probe files are removed when the tablespaces are probed after start');
my ($ret, $stdout, $stderr) =
  $node->psql('postgres', 'DROP TABLESPACE ts_s1');
is($ret, 0, 'DROP TABLESPACE succeeds');
is($stderr, '', 'with no error or warning');
ok(!-e $vdir1, 'the tablespace directory is gone');

$node->stop;
done_testing();
