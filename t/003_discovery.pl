# Copyright (c) 2026, wtsmgr developers
#
# Atomic-write discovery per tablespace and the wtsmgr_tablespaces view:
# a tablespace on the atomic XFS filesystem is untorn, with statx figures
# that match the statx system call; one on the root filesystem is not, with
# a reason naming its filesystem; a tablespace created after start is probed
# on first use; the keep-list keeps images; a segment file that cannot take
# atomic writes is reported; and probe failures (unwritable directory, full
# filesystem) become reasons while the server still starts.
#
# scripts/test.sh, as root, makes the filesystems and passes them in
# WTSMGR_ATOMIC_DIR and WTSMGR_FULL_DIR (a small XFS filesystem to fill).

use strict;
use warnings FATAL => 'all';

use Config;
use File::Copy qw(move);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use FindBin;
use lib $FindBin::RealBin;
use WtsmgrTest;

my $atomic_dir = atomic_dir();
my $full_dir = full_dir();

my %statx_syscall = (x86_64 => 332, aarch64 => 291);
my ($arch) = $Config{archname} =~ /^([^-]+)/;
my $sys_statx = $statx_syscall{$arch}
  or prerequisite_missing("no statx system call number known for $arch");

# statx of a file, decoded at the offsets of the kernel's struct statx:
# "atomic|unit_min|unit_max|unit_max_opt|segments_max|dio_mem|dio_offset".
sub kernel_statx
{
	my ($path) = @_;
	my $buf = "\0" x 256;
	syscall($sys_statx, -100, $path, 0, 0x7ff | 0x2000 | 0x10000, $buf) == 0
	  or die "statx($path): $!";
	my $mask = unpack('L', substr($buf, 0x00, 4));
	my $attributes = unpack('Q', substr($buf, 0x08, 8));
	my ($dio_mem, $dio_off) =
	  ($mask & 0x2000) ? unpack('LL', substr($buf, 0x98, 8)) : (0, 0);
	return join('|', 'f', 0, 0, 0, 0, $dio_mem, $dio_off)
	  unless ($mask & 0x10000) && ($attributes & 0x00400000);
	my ($min, $max, $segs) = unpack('LLL', substr($buf, 0xa8, 12));
	my $max_opt = unpack('L', substr($buf, 0xb8, 4));
	return join('|', 't', $min, $max, $max_opt, $segs, $dio_mem, $dio_off);
}

my $node = new_wtsmgr_node(
	'discovery',
	# wal_level replica, for the base backup below
	allows_streaming => 1,
	conf => "wtsmgr.keep_full_page_images_tablespaces = 'ts_kept'\n");

create_tablespaces(
	$node,
	ts_atomic => "$atomic_dir/ts_atomic_$$",
	ts_kept => "$atomic_dir/ts_kept_$$",
	ts_plain => $node->basedir . '/ts_plain',
	ts_full => "$full_dir/ts_full_$$");
# Restart: the prober probes every tablespace once the server has started.
$node->restart;
wait_for_probes($node);
ok( $node->log_contains(
		qr/LOG:  blocks of tablespace \d+ \("pg_tblspc\/\d+\/PG_18_\d+"\) are written untorn/
	),
	'each probe is logged');

my $row = sub {
	my ($ts, $cols) = @_;
	return $node->safe_psql('postgres',
		"SELECT $cols FROM wtsmgr_tablespaces WHERE tablespace = '$ts'");
};
my $limits = 'atomic_write, atomic_unit_min, atomic_unit_max, '
  . 'atomic_unit_max_opt, atomic_segments_max, dio_mem_align, dio_offset_align';

# Untorn on XFS, with the figures statx gives for a file there.
is( $row->('ts_atomic', 'fs_type, untorn_blocks, write_path'),
	'xfs|t|atomic', 'XFS tablespace: untorn, written with atomic writes');
like(
	$row->('ts_atomic', 'reason'),
	qr/^RWF_ATOMIC write of 8192 bytes proven; atomic units \d+ to \d+ bytes on xfs$/,
	'XFS tablespace: the reason says the probe write proved it');
$node->safe_psql(
	'postgres', q{
	CREATE TABLE t_atomic (id int) TABLESPACE ts_atomic;
	INSERT INTO t_atomic SELECT generate_series(1, 1000);
	CREATE TABLE t_plain (id int) TABLESPACE ts_plain;
	INSERT INTO t_plain SELECT generate_series(1, 1000);
	CHECKPOINT});
my $datadir = $node->data_dir;
for my $t ('t_atomic', 't_plain')
{
	is($node->safe_psql('postgres', "SELECT wtsmgr_relation_smgr('$t')"),
		'wtsmgr', "$t is opened through wtsmgr");
}
my $file_atomic = relation_file($node, 't_atomic');
is($row->('ts_atomic', $limits),
	kernel_statx($file_atomic),
	'XFS tablespace: statx figures match the statx system call on its file');

# Not untorn on the root filesystem, and the reason names the filesystem.
my $fs_plain = $row->('ts_plain', 'fs_type');
is( $row->('ts_plain', 'untorn_blocks, reason'),
	"f|statx reports no atomic write support on $fs_plain",
	"$fs_plain tablespace: not untorn, and the reason names $fs_plain");
my $file_plain = relation_file($node, 't_plain');
is($row->('ts_plain', $limits),
	kernel_statx($file_plain),
	"$fs_plain tablespace: statx figures match the statx system call");
like($row->('ts_plain', 'full_page_images'),
	qr/^kept: blocks may tear$/, "$fs_plain tablespace keeps its images");
is( $node->safe_psql(
		'postgres',
		q{SELECT string_agg(DISTINCT untorn_blocks::text, ',')
		  FROM wtsmgr_relation('t_plain')}),
	'false',
	'wtsmgr_relation() agrees for a relation in it');

# The keep-list.  The announcer decides about new tablespaces as soon as
# they are probed; wait for it.
$node->poll_query_until('postgres',
	q{SELECT count(*) = 0 FROM wtsmgr_tablespaces
	  WHERE full_page_images = 'kept: not yet announced in WAL'})
  or die 'the announcer did not decide';
is( $row->('ts_kept', 'untorn_blocks, full_page_images'),
	't|kept: listed in wtsmgr.keep_full_page_images_tablespaces',
	'a listed tablespace keeps images, and says why');
$node->append_conf('postgresql.conf',
	"wtsmgr.keep_full_page_images_tablespaces = ''");
$node->reload;
$node->poll_query_until('postgres',
	q{SELECT full_page_images NOT LIKE '%listed%' FROM wtsmgr_tablespaces
	  WHERE tablespace = 'ts_kept'})
  or die 'keep-list not reloaded';
unlike($row->('ts_kept', 'full_page_images'),
	qr/listed/, 'after a reload without it, it is no longer listed');

# While a base backup runs, images are kept, and the view says so.
my $backup = $node->background_psql('postgres');
$backup->query_safe(q{SELECT pg_backup_start('discovery', true)});
is($row->('ts_atomic', 'full_page_images'),
	'kept: backup running', 'during a base backup: kept, backup running');
$backup->query_safe('SELECT * FROM pg_backup_stop(false)');
$backup->quit;
isnt($row->('ts_atomic', 'full_page_images'),
	'kept: backup running', 'after the backup: no longer');

# A tablespace created while the server runs: listed, probed on first use.
create_tablespaces($node, ts_late => "$atomic_dir/ts_late_$$");
is( $row->('ts_late', 'untorn_blocks, full_page_images'),
	'f|kept: not probed yet',
	'a new tablespace is listed and keeps images until probed');
$node->safe_psql('postgres',
	'CREATE TABLE t_late (id int) TABLESPACE ts_late');
is($row->('ts_late', 'untorn_blocks, probed_at IS NOT NULL'),
	't|t', 'creating its first relation probed it');

# A segment file that cannot take atomic writes: the file is moved to the
# root filesystem behind a symbolic link.  The first write reports it.
my $moved = $node->basedir . '/t_atomic_segment';
$node->stop;
move($file_atomic, $moved) or die "move: $!";
symlink($moved, $file_atomic) or die "symlink: $!";
$node->start;
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	'UPDATE t_atomic SET id = id + 1; CHECKPOINT;');
is($ret, 0, 'the checkpoint writes it all the same');
cmp_ok(
	$node->safe_psql(
		'postgres',
		q{SELECT doublewrites FROM wtsmgr_stat_io WHERE tablespace = 'ts_atomic'}),
	'>=', 1,
	'through the doublewrite area');
cmp_ok(
	$node->safe_psql(
		'postgres',
		q{SELECT nonatomic_files FROM wtsmgr_stat_io WHERE tablespace = 'ts_atomic'}),
	'>=', 1,
	'a segment file that cannot be written atomically is counted');
ok( $node->log_contains(
		qr/WARNING:  file "pg_tblspc\/\d+\/PG_18_\d+\/\d+\/\d+" in a tablespace with atomic writes cannot be written atomically\n.*DETAIL:  The check of the file reported: statx reports no atomic write support on $fs_plain\./
	),
	'and reported with a WARNING naming the file');
$node->stop;
unlink($file_atomic) or die "unlink: $!";
move($moved, $file_atomic) or die "move back: $!";
$node->start;

# Probe failure: a directory the server cannot write to.
my $spcoid_atomic = $row->('ts_atomic', 'spcoid');
my $version_dir = $datadir . '/' . $row->('ts_atomic', 'path');
chmod 0555, $version_dir or die "chmod: $!";
like(
	$node->safe_psql('postgres',
		q{SELECT untorn_blocks, reason FROM wtsmgr_probe('ts_atomic')}),
	qr/^f\|could not create probe file ".*pgsql_tmp_wtsmgr_probe\.\d+" with O_DIRECT: Permission denied$/,
	'unwritable directory: not untorn, and the reason says why');
$node->restart;
wait_for_probes($node);
like($row->('ts_atomic', 'untorn_blocks, reason'),
	qr/^f\|could not create probe file .*Permission denied$/,
	'the server starts, and the prober reports the same');
chmod 0700, $version_dir or die "chmod: $!";
is($node->safe_psql('postgres',
		q{SELECT untorn_blocks FROM wtsmgr_probe('ts_atomic')}),
	't', 'writable again: untorn again after wtsmgr_probe()');

# Probe failure: a full filesystem.
is($row->('ts_full', 'untorn_blocks'), 't', 'the small XFS tablespace is untorn');
my $filler = "$full_dir/filler_$$";
open(my $fh, '>', $filler) or die "open $filler: $!";
binmode $fh;
for my $size (1024 * 1024, 4096, 512)
{
	my $chunk = "\0" x $size;
	while (syswrite($fh, $chunk)) { }
}
close($fh);
like(
	$node->safe_psql('postgres',
		q{SELECT untorn_blocks, reason FROM wtsmgr_probe('ts_full')}),
	qr/^f\|.*No space left on device$/,
	'full filesystem: not untorn, and the reason says why');
$node->restart;
wait_for_probes($node);
like($row->('ts_full', 'untorn_blocks, reason'),
	qr/^f\|.*No space left on device$/,
	'the server starts with the filesystem full, and reports it');
unlink($filler) or die "unlink $filler: $!";
is($node->safe_psql('postgres',
		q{SELECT untorn_blocks FROM wtsmgr_probe('ts_full')}),
	't', 'space freed: untorn again after wtsmgr_probe()');

# The data written into the tablespaces survives a crash.
$node->stop('immediate');
$node->start;
is( $node->safe_psql(
		'postgres',
		'SELECT (SELECT count(*) FROM t_atomic) + (SELECT count(*) FROM t_plain)'),
	'2000',
	'rows in both tablespaces survive a crash');

# No probe file is left behind anywhere.
my @left = (
	glob("$atomic_dir/*/PG_18_*/pgsql_tmp_wtsmgr_probe.*"),
	glob("$full_dir/*/PG_18_*/pgsql_tmp_wtsmgr_probe.*"),
	glob("$datadir/base/pgsql_tmp_wtsmgr_probe.*"));
is(scalar(@left), 0, 'no probe file is left behind');

$node->stop;

done_testing();
