# Copyright (c) 2026, wtsmgr developers
#
# A tablespace on a filesystem with atomic writes (scripts/test.sh makes an
# XFS loop mount as root and passes a directory on it in WTSMGR_ATOMIC_DIR)
# next to one on the ordinary filesystem.  Relations in both go through
# wtsmgr, and wtsmgr_statx() reports for their files exactly what the statx
# system call reports, read here independently through Perl's syscall().

use strict;
use warnings FATAL => 'all';

use Config;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $atomic_dir = $ENV{WTSMGR_ATOMIC_DIR};
if (!$atomic_dir)
{
	BAIL_OUT('WTSMGR_ATOMIC_DIR must be set when CI=true')
	  if ($ENV{CI} // '') eq 'true';
	plan skip_all =>
	  'WTSMGR_ATOMIC_DIR is not set: scripts/test.sh makes the atomic XFS filesystem only when run as root';
}

my %statx_syscall = (x86_64 => 332, aarch64 => 291);
my ($arch) = $Config{archname} =~ /^([^-]+)/;
my $sys_statx = $statx_syscall{$arch}
  or plan skip_all => "no statx system call number known for $arch";

# statx(AT_FDCWD, path, 0, BASIC_STATS | DIOALIGN | WRITE_ATOMIC), decoded
# at the offsets of the kernel's uapi struct statx.
sub kernel_statx
{
	my ($path) = @_;
	my $buf = "\0" x 256;
	syscall($sys_statx, -100, $path, 0, 0x7ff | 0x2000 | 0x10000, $buf) == 0
	  or die "statx($path): $!";
	my $mask = unpack('L', substr($buf, 0x00, 4));
	my $attributes = unpack('Q', substr($buf, 0x08, 8));
	my %r = (atomic_write => 'f');
	@r{qw(dio_mem_align dio_offset_align)} =
	  ($mask & 0x2000) ? unpack('LL', substr($buf, 0x98, 8)) : (0, 0);
	if (($mask & 0x10000) && ($attributes & 0x00400000))
	{
		$r{atomic_write} = 't';
		@r{qw(atomic_unit_min atomic_unit_max atomic_segments_max)} =
		  unpack('LLL', substr($buf, 0xa8, 12));
		$r{atomic_unit_max_opt} = unpack('L', substr($buf, 0xb8, 4));
	}
	else
	{
		@r{qw(atomic_unit_min atomic_unit_max atomic_segments_max atomic_unit_max_opt)} =
		  (0, 0, 0, 0);
	}
	return \%r;
}

my @columns = qw(atomic_write atomic_unit_min atomic_unit_max
  atomic_unit_max_opt atomic_segments_max dio_mem_align dio_offset_align);

my $node = PostgreSQL::Test::Cluster->new('atomic');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'wtsmgr'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION wtsmgr');

my $ts_atomic = "$atomic_dir/ts_atomic_" . $$;
my $ts_plain = $node->basedir . '/ts_plain';
mkdir $ts_atomic or die "mkdir $ts_atomic: $!";
mkdir $ts_plain or die "mkdir $ts_plain: $!";

$node->safe_psql(
	'postgres', qq{
	CREATE TABLESPACE ts_atomic LOCATION '$ts_atomic';
	CREATE TABLESPACE ts_plain LOCATION '$ts_plain';
	CREATE TABLE t_atomic (id int, pad text) TABLESPACE ts_atomic;
	CREATE TABLE t_plain (id int, pad text) TABLESPACE ts_plain;
	INSERT INTO t_atomic SELECT g, repeat('a', 100) FROM generate_series(1, 20000) g;
	INSERT INTO t_plain SELECT g, repeat('p', 100) FROM generate_series(1, 20000) g;
	CHECKPOINT});

my $datadir = $node->data_dir;
for my $t ('t_atomic', 't_plain')
{
	is($node->safe_psql('postgres', "SELECT wtsmgr_relation_smgr('$t')"),
		'wtsmgr', "$t is opened through wtsmgr");

	my $file = $datadir . '/'
	  . $node->safe_psql('postgres', "SELECT pg_relation_filepath('$t')");
	my $expected = kernel_statx($file);
	my @got = split /\|/, $node->safe_psql('postgres',
		'SELECT fs_type, ' . join(', ', @columns) . " FROM wtsmgr_statx('$file')");
	my $fs_type = shift @got;
	for my $i (0 .. $#columns)
	{
		is($got[$i], $expected->{ $columns[$i] },
			"$t: $columns[$i] matches statx ($got[$i])");
	}

	if ($t eq 't_atomic')
	{
		is($fs_type, 'xfs', 'the atomic tablespace is on XFS');
		is($got[0], 't', 'statx reports atomic writes there');
		cmp_ok($got[1], '<=', 8192, 'atomic unit min is at most a block');
		cmp_ok($got[2], '>=', 8192, 'atomic unit max is at least a block');
	}
	else
	{
		isnt($fs_type, '', "the plain tablespace is on $fs_type");
	}
}

# The data written into both tablespaces survives a crash.
$node->stop('immediate');
$node->start;
is( $node->safe_psql(
		'postgres',
		'SELECT (SELECT count(*) FROM t_atomic) + (SELECT count(*) FROM t_plain)'),
	'40000',
	'rows in both tablespaces survive a crash');

$node->stop;

done_testing();
