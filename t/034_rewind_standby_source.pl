# Copyright (c) 2026, wtsmgr developers
#
# pg_rewind with a standby as its live source, when the standby refuses to
# be put in backup mode: it has replayed WAL whose primary left images out
# (core patch 0002), so a copy of its files could keep a torn block.  The
# refusal must come before pg_rewind changes anything in the target, so
# that the target is left as it was and can still start; a dry run must be
# refused the same way, or it would promise a rewind that cannot be done.
#
# A is the primary, B a standby of A, C a standby of A that is promoted and
# diverges.  C is rewound from B: refused with the server's error and hint,
# and C's data directory and tablespace (every path, its type, size and
# SHA-256, read from the filesystem) are the same before and after.  Then
# the same after an immediate stop of C: pg_rewind must not even run C's
# crash recovery (ensureCleanShutdown) before the source has accepted.

use strict;
use warnings FATAL => 'all';

use Digest::SHA;
use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();

my $a = new_wtsmgr_node('a', primary => 1, manual_checkpoints => 1,
	extensions => ['pg_walinspect']);
my $ts_a = "$atomic_dir/ts_rsrc_a_$$";
my $spcoid = pgbench_tablespace($a, $ts_a, 1);
wait_for_decision($a, 'ts_atomic', 'skipped');

my $bk = $a->backup_dir . '/bk';
$a->backup('bk', backup_options => [ "--tablespace-mapping=$ts_a=$bk-ts" ]);
my %standby;
for my $name ('b', 'c')
{
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init_from_backup($a, 'bk',
		has_streaming => 1,
		tablespace_map => { $spcoid => "$atomic_dir/ts_rsrc_${name}_$$" });
	$node->start;
	$standby{$name} = $node;
}
my ($b, $c) = @standby{ 'b', 'c' };
my $ts_c = "$atomic_dir/ts_rsrc_c_$$";

$a->wait_for_catchup($c);
$c->promote;
$c->safe_psql('db', q{UPDATE pgbench_branches SET bbalance = bbalance + 1});

# A leaves images out (a checkpoint, then changes, all replayed by B):
# B refuses to start a backup from then on.
my $lsn_before = $a->lsn('insert');
$a->safe_psql('postgres', 'CHECKPOINT');
$a->command_ok([ 'pgbench', '--no-vacuum', '--client=2', '--time=2', 'db' ],
	'pgbench on the primary');
my $ft = first_touches($a, $lsn_before, $a->lsn('insert'), $spcoid);
cmp_ok($ft->{after_without_image},
	'>', 0, 'the primary left images out, in WAL that the standby replays');
$a->wait_for_catchup($b);

# Every path under each directory given (label => directory), with its
# type, size and SHA-256 (symbolic links by their target), one line each,
# sorted.
sub tree_listing
{
	my %roots = @_;
	my @lines;
	for my $label (sort keys %roots)
	{
		my $root = $roots{$label};
		find(
			{
				no_chdir => 1,
				wanted => sub {
					my $path = $File::Find::name;
					my $rel = "$label:" . substr($path, length($root));
					if (-l $path)
					{
						push @lines, "$rel link " . readlink($path);
					}
					elsif (-d $path)
					{
						push @lines, "$rel dir";
					}
					else
					{
						my $sha = Digest::SHA->new(256);
						$sha->addfile($path);
						push @lines,
						  "$rel file " . (-s $path) . ' ' . $sha->hexdigest;
					}
				}
			},
			$root);
	}
	return join("\n", sort @lines) . "\n";
}

# A refused rewind of C from B, with or without --dry-run: pg_rewind fails
# with the standby's error and hint, and C's files are as they were.
sub refused_rewind
{
	my ($what, @extra) = @_;
	my %dirs = (data => $c->data_dir, tablespace => $ts_c);
	my $before = tree_listing(%dirs);
	$c->command_fails_like(
		[
			'pg_rewind', @extra,
			'--target-pgdata' => $c->data_dir,
			'--source-server' => $b->connstr('postgres'),
		],
		qr/could not start a backup on the source server: ERROR:  WAL lacking full-page images of blocks written untorn was replayed since last restartpoint(.|\n)*Take the backup on the primary/,
		"$what: pg_rewind from the standby is refused, with the standby's hint"
	);
	my $after = tree_listing(%dirs);
	my %was = map { $_ => 1 } split /\n/, $before;
	my @changed = grep { !$was{$_} } split /\n/, $after;
	note("changed or new in the target: $_")
	  for @changed[ 0 .. ($#changed < 9 ? $#changed : 9) ];
	ok($before eq $after,
		"$what: the target's files are unchanged (paths, sizes, SHA-256)");
	return;
}

# 1. C shut down cleanly.
$c->stop;
refused_rewind('clean target, dry run', '--dry-run');
refused_rewind('clean target');

ok($c->start(fail_ok => 1),
	'the target starts after the refused rewinds');
is( $c->safe_psql('db', 'SELECT pg_is_in_recovery()::text || count(*) FROM pgbench_branches'),
	'false1', 'and is the primary of its own timeline, with its data');

# 2. C stopped in the middle of its work: pg_rewind would run its crash
# recovery first.
$c->safe_psql('db', q{UPDATE pgbench_branches SET bbalance = bbalance + 1});
$c->stop('immediate');
refused_rewind('target not shut down cleanly');

done_testing();
