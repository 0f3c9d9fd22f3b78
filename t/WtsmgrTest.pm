# Copyright (c) 2026, wtsmgr developers
#
# Helpers shared by wtsmgr's TAP tests: prerequisites (skipped outside CI,
# fatal under CI=true), the usual cluster and tablespace setup, and waits on
# conditions that the tests observe in the server.

package WtsmgrTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(
  server_pids
  traced
  doublewrite_copies
  wait_for_probes
  prerequisite_missing required_dir atomic_dir full_dir required_program
  test_module new_wtsmgr_node create_tablespaces tablespace_oid
  relation_file untorn_tablespaces evict_block_sql alter_system wait_until
  wait_for_changed_blocks wait_for_decision first_touches twin_tables
  twin_fingerprint twin_crash_check blocks_per_segment pgbench_tablespace);

# The rule for a missing prerequisite (a directory, a program, an
# extension, the test-only module...): outside CI the whole test is
# skipped, saying why; under CI=true it must not be missing, and the run
# stops.  Call it before the first test.
sub prerequisite_missing
{
	my ($reason) = @_;
	BAIL_OUT("under CI=true every test must run, but $reason")
	  if ($ENV{CI} // '') eq 'true';
	plan skip_all => $reason;
	return;
}

# The directory an environment variable names, which scripts/test.sh sets
# when it can make the filesystem (as root); a prerequisite.
sub required_dir
{
	my ($var, $what) = @_;
	my $dir = $ENV{$var};
	return $dir if $dir;
	prerequisite_missing(
		"$var is not set: scripts/test.sh makes $what only when run as root");
	return;
}

# The atomic XFS filesystem (WTSMGR_ATOMIC_DIR), and the small XFS
# filesystem that tests fill up (WTSMGR_FULL_DIR).
sub atomic_dir
{
	return required_dir('WTSMGR_ATOMIC_DIR', 'the atomic XFS filesystem');
}

sub full_dir
{
	return required_dir('WTSMGR_FULL_DIR', 'the small XFS filesystem to fill');
}

# The path of program $name, looked up in PATH and then in @more_dirs; a
# prerequisite, $what says what it is needed for.
sub required_program
{
	my ($name, $what, @more_dirs) = @_;
	my ($path) = grep { -x $_ }
	  map { "$_/$name" } (split(/:/, $ENV{PATH}), @more_dirs);
	return $path if $path;
	prerequisite_missing("$name is needed $what");
	return;
}

# The test-only module test/wtsmgr_test, which "make installcheck" builds
# but never installs (a prerequisite): its absolute path (for
# shared_preload_libraries and CREATE FUNCTION ... AS), and the same
# relative to $libdir (injection point callbacks are loaded from there).
sub test_module
{
	my $module = $ENV{WTSMGR_TEST_MODULE};
	prerequisite_missing(
		'WTSMGR_TEST_MODULE is not set: run the TAP tests through "make installcheck" or scripts/test.sh, which build test/wtsmgr_test'
	) unless $module;
	my $pkglibdir = `pg_config --pkglibdir`;
	chomp $pkglibdir;
	return ($module, File::Spec->abs2rel($module, $pkglibdir));
}

# A new node, started, with wtsmgr preloaded and its extension created in
# the postgres database: new_wtsmgr_node($name, %options).  Options:
#
# - allows_streaming => 1: wal_level replica and friends, for base backups
#   and standbys (PostgreSQL::Test::Cluster::init);
# - primary => 1: the same, and wal_keep_size = 1GB, so that standbys made
#   from its base backups can stream from where the backup ends;
# - manual_checkpoints => 1: checkpoint_timeout = 1h and max_wal_size =
#   4GB, so that only the test's own CHECKPOINTs run;
# - conf => text: more lines for postgresql.conf;
# - preload => library: shared_preload_libraries instead of wtsmgr, whose
#   extension is then not created;
# - extensions => [names]: more extensions to create there, after wtsmgr's;
#   one that the server lacks is a missing prerequisite.
sub new_wtsmgr_node
{
	my ($name, %opt) = @_;
	my $preload = $opt{preload} // 'wtsmgr';
	my @extensions = @{ $opt{extensions} // [] };

	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(
		($opt{allows_streaming} || $opt{primary})
		? (allows_streaming => 1)
		: ());
	my $conf = "shared_preload_libraries = '$preload'\n";
	$conf .= "checkpoint_timeout = 1h\nmax_wal_size = 4GB\n"
	  if $opt{manual_checkpoints};
	$conf .= "wal_keep_size = 1GB\n" if $opt{primary};
	$conf .= $opt{conf} if defined $opt{conf};
	$node->append_conf('postgresql.conf', $conf);
	$node->start;

	for my $ext (@extensions)
	{
		prerequisite_missing("the extension $ext is not installed")
		  unless $node->check_extension($ext);
	}
	unshift @extensions, 'wtsmgr' if $preload eq 'wtsmgr';
	$node->safe_psql('postgres',
		join('', map { "CREATE EXTENSION $_;\n" } @extensions))
	  if @extensions;
	return $node;
}

# Make each directory and create a tablespace there, in the order given:
# create_tablespaces($node, name => directory, ...).  Returns the
# tablespaces' OIDs as name => oid pairs.
sub create_tablespaces
{
	my ($node, @spec) = @_;
	my (@names, $sql);
	while (my ($ts, $dir) = splice(@spec, 0, 2))
	{
		mkdir $dir or die "mkdir $dir: $!";
		$sql .= "CREATE TABLESPACE $ts LOCATION '$dir';\n";
		push @names, $ts;
	}
	$node->safe_psql('postgres', $sql);
	return map { ($_ => tablespace_oid($node, $_)) } @names;
}

# The OID of tablespace $name.
sub tablespace_oid
{
	my ($node, $name) = @_;
	return $node->safe_psql('postgres',
		"SELECT oid FROM pg_tablespace WHERE spcname = '$name'");
}

# Create tablespace ts_atomic in directory $dir, database db in it, and
# pgbench's tables at scale $scale in db (a test of its own).  Returns the
# tablespace's OID.
sub pgbench_tablespace
{
	my ($node, $dir, $scale) = @_;
	my %oid = create_tablespaces($node, ts_atomic => $dir);
	$node->safe_psql('postgres', 'CREATE DATABASE db TABLESPACE ts_atomic');
	$node->command_ok(
		[ 'pgbench', '--initialize', "--scale=$scale", '--quiet', 'db' ],
		'pgbench tables in the untorn tablespace');
	return $oid{ts_atomic};
}

# The absolute path of the first segment file of relation $rel in database
# $db (postgres by default), under the data directory of $datadir_node
# ($node by default: a standby's copy of a primary's relation, say).
sub relation_file
{
	my ($node, $rel, $db, $datadir_node) = @_;
	$datadir_node //= $node;
	return $datadir_node->data_dir . '/'
	  . $node->safe_psql($db // 'postgres', "SELECT pg_relation_filepath('$rel')");
}

# "name:untorn_blocks" of every tablespace named ts_*, by name, joined by
# commas: "ts_atomic:true,ts_plain:false", say.
sub untorn_tablespaces
{
	my ($node) = @_;
	return $node->safe_psql(
		'postgres',
		q{SELECT string_agg(tablespace || ':' || untorn_blocks, ',' ORDER BY 1)
		  FROM wtsmgr_tablespaces WHERE tablespace LIKE 'ts_%'});
}

# SQL that evicts block $block (0 by default) of relation $rel's main fork
# in the current database from shared buffers (pg_buffercache, which must
# be installed there), writing it out first; it returns true if the block
# was both evicted and written.
sub evict_block_sql
{
	my ($rel, $block) = @_;
	$block //= 0;
	return qq{
	SELECT e.buffer_evicted AND e.buffer_flushed
	FROM pg_buffercache b, pg_buffercache_evict(b.bufferid) e
	WHERE b.reldatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
	  AND b.relfilenode = pg_relation_filenode('$rel')
	  AND b.relforknumber = 0 AND b.relblocknumber = $block};
}

# ALTER SYSTEM SET $name = '$value', reload, and wait until new sessions
# see the value; die if they never do.
sub alter_system
{
	my ($node, $name, $value) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM SET $name = '$value'");
	$node->reload;
	$node->poll_query_until('postgres',
		"SELECT current_setting('$name') = '$value'")
	  or die "$name was not reloaded";
	return;
}

# The prober, a background worker, probes every tablespace once the server
# has started; wait until it has (or until first use did).
sub wait_for_probes
{
	my ($node) = @_;
	$node->poll_query_until('postgres',
		q{SELECT count(*) = 0 FROM wtsmgr_tablespaces WHERE probed_at IS NULL})
	  or die 'the tablespaces were not probed';
	return;
}

# The blocks copied into the doublewrite area's page slots (all but the
# zero ones), read from the file: wtsmgr_doublewrite.c's layout, 16 regions
# of a 4 kB header and 16 block copies.  A protected write leaves its copies
# there (it invalidates only the header).
sub doublewrite_copies
{
	my ($node) = @_;
	my $area = PostgreSQL::Test::Utils::slurp_file($node->data_dir . '/pg_wtsmgr/doublewrite');
	my $region = 4096 + 16 * 8192;
	my @copies;
	for my $r (0 .. length($area) / $region - 1)
	{
		for my $b (0 .. 15)
		{
			my $copy = substr($area, $r * $region + 4096 + $b * 8192, 8192);
			push @copies, $copy if $copy ne "\0" x 8192;
		}
	}
	return @copies;
}

# Every process of a cluster, for strace: the postmaster (not in
# pg_stat_activity) and those pg_stat_activity lists.
sub server_pids
{
	my ($node) = @_;
	my ($pm) = split /\n/,
	  PostgreSQL::Test::Utils::slurp_file($node->data_dir . '/postmaster.pid');
	return ($pm, split /\n/,
		$node->safe_psql('postgres', 'SELECT pid FROM pg_stat_activity'));
}

# Whether process $pid is traced (its TracerPid in /proc is set), or gone.
sub traced
{
	my ($pid) = @_;
	open(my $fh, '<', "/proc/$pid/status") or return 1;
	my ($tracer) = join('', <$fh>) =~ /^TracerPid:\s+(\d+)/m;
	close($fh);
	return !defined $tracer || $tracer != 0;
}

# Wait until $cond->() returns true, checking every 0.1 s as
# poll_query_until does, for as long (timeout_default); die saying $what
# never happened if it does not.
sub wait_until
{
	my ($cond, $what) = @_;
	my $attempts = 10 * $PostgreSQL::Test::Utils::timeout_default;
	for (1 .. $attempts)
	{
		return if $cond->();
		usleep(100_000);
	}
	die "timed out waiting until $what";
}

# Wait until the WAL from $from_lsn on (up to the flush LSN) changes at
# least $n distinct blocks of tablespace $spcoid (pg_walinspect): a load
# under way has done that much.
sub wait_for_changed_blocks
{
	my ($node, $spcoid, $from_lsn, $n) = @_;
	$node->poll_query_until(
		'postgres', qq{
		SELECT count(DISTINCT (relfilenode, relforknumber, relblocknumber)) >= $n
		FROM pg_get_wal_block_info('$from_lsn', pg_current_wal_flush_lsn(), false)
		WHERE reltablespace = $spcoid})
	  or die "fewer than $n blocks of tablespace $spcoid changed since $from_lsn";
	return;
}

# Wait until wtsmgr_tablespaces shows $want as the full-page-image decision
# of tablespace $ts (the announcer publishes decisions, and announces each
# checkpoint cycle, a moment after the fact); die if it never does.
sub wait_for_decision
{
	my ($node, $ts, $want) = @_;
	$node->poll_query_until('postgres',
		qq{SELECT full_page_images = '$want' FROM wtsmgr_tablespaces WHERE tablespace = '$ts'})
	  or die "tablespace $ts never showed \"$want\"";
	return;
}

# What WAL in [start, end) did with the first change to each block of a
# tablespace after each checkpoint's redo point, read with pg_walinspect
# (which must be installed in the postgres database).  Full-page images
# protect exactly these first changes, so:
#
# - before_announcement: first changes between a redo point and wtsmgr's
#   announcement of the tablespace in that checkpoint cycle (or with no
#   announcement yet); before_without_image: how many of those have no image
#   although they need one (records that initialize the page, and log_newpage's
#   FPI records, need none);
# - after_announcement: first changes after the announcement;
#   after_with_image: how many of those still have an image;
#   after_without_image: how many have none although they would need one
#   (the images wtsmgr left out);
# - cycles: how many redo points the range holds.
#
# Options: record_type => only block references of records of that type
# count; ignore_announcements => every first change counts as before the
# announcement (for a range in which a backup ran, where all need images).
# Returns a hash reference; the first few first changes that lack an image
# before an announcement are shown with note().
sub first_touches
{
	my ($node, $start, $end, $spcoid, %opt) = @_;
	my $type_cond =
	  $opt{record_type} ? "AND b.record_type = '$opt{record_type}'" : '';
	my $announcements =
	  $opt{ignore_announcements}
	  ? ''
	  : "OR (resource_manager = 'wtsmgr' AND description ~ '\\m$spcoid\\M')";
	my $row = $node->safe_psql(
		'postgres', qq{
	WITH marks AS (
		SELECT start_lsn, resource_manager = 'wtsmgr' AS announces
		FROM pg_get_wal_records_info('$start', '$end')
		WHERE (resource_manager = 'XLOG' AND record_type = 'CHECKPOINT_REDO')
		   $announcements),
	refs AS (
		SELECT b.start_lsn, b.relfilenode, b.relforknumber, b.relblocknumber,
			   b.block_fpi_length > 0 AS image,
			   b.record_type,
			   b.record_type LIKE '%INIT%' OR b.record_type = 'FPI' AS no_image_needed,
			   (SELECT max(m.start_lsn) FROM marks m
				WHERE NOT m.announces AND m.start_lsn <= b.start_lsn) AS cycle
		FROM pg_get_wal_block_info('$start', '$end', false) b
		WHERE b.reltablespace = $spcoid $type_cond),
	firsts AS (
		SELECT DISTINCT ON (cycle, relfilenode, relforknumber, relblocknumber) *
		FROM refs WHERE cycle IS NOT NULL
		ORDER BY cycle, relfilenode, relforknumber, relblocknumber, start_lsn),
	judged AS (
		SELECT f.*, EXISTS (SELECT 1 FROM marks m
							WHERE m.announces AND m.start_lsn > f.cycle
							  AND m.start_lsn < f.start_lsn) AS announced
		FROM firsts f)
	SELECT (array_agg(format('%s %s %s/%s/%s', start_lsn, record_type,
			   relfilenode, relforknumber, relblocknumber) ORDER BY start_lsn)
			 FILTER (WHERE NOT announced AND NOT image AND NOT no_image_needed))[1:5],
		   count(*) FILTER (WHERE NOT announced),
		   count(*) FILTER (WHERE NOT announced AND NOT image AND NOT no_image_needed),
		   count(*) FILTER (WHERE announced),
		   count(*) FILTER (WHERE announced AND image),
		   count(*) FILTER (WHERE announced AND NOT image AND NOT no_image_needed),
		   (SELECT count(*) FROM marks WHERE NOT announces)
	FROM judged});
	my ($unimaged, @v) = split /\|/, $row;
	Test::More::note("first changes without image before an announcement: $unimaged")
	  if $unimaged ne '';
	return {
		before_announcement => $v[0],
		before_without_image => $v[1],
		after_announcement => $v[2],
		after_with_image => $v[3],
		after_without_image => $v[4],
		cycles => $v[5],
	};
}

# Twin tables for comparing wtsmgr's writes with md.c's: tablespace
# ts_atomic in $atomic_location (untorn) and ts_plain in the node's base
# directory (written by md.c), each with a table t_<tablespace> of $rows
# rows at fillfactor 50; checks that exactly ts_atomic is untorn.
sub twin_tables
{
	my ($node, $atomic_location, $rows) = @_;
	create_tablespaces(
		$node,
		ts_atomic => $atomic_location,
		ts_plain => $node->basedir . '/ts_plain');
	for my $ts ('ts_atomic', 'ts_plain')
	{
		$node->safe_psql(
			'postgres', qq{
	CREATE TABLE t_$ts (id int PRIMARY KEY, v int, pad text)
	  WITH (fillfactor = 50) TABLESPACE $ts;
	INSERT INTO t_$ts SELECT g, 0, repeat('x', 200) FROM generate_series(1, $rows) g});
	}
	# (tablespaces are probed when their first relation is created)
	Test::More::is(
		$node->safe_psql(
			'postgres',
			q{SELECT string_agg(untorn_blocks::text, ',' ORDER BY tablespace)
		  FROM wtsmgr_tablespaces WHERE tablespace IN ('ts_atomic', 'ts_plain')}),
		'true,false',
		'one untorn tablespace, one written by md.c');
	return;
}

# A fingerprint of every row of twin table t_$ts.
sub twin_fingerprint
{
	my ($node, $ts) = @_;
	return $node->safe_psql('postgres',
		"SELECT md5(string_agg(id || ':' || v || ':' || pad, ',' ORDER BY id)) FROM t_$ts"
	);
}

# Crash the node (immediate stop) and start it again: the twin tables must
# then hold what ts_plain held before the crash, and pg_amcheck and (after
# a clean stop, which this leaves the node in) pg_checksums must find
# nothing wrong.  Needs amcheck in the postgres database.
sub twin_crash_check
{
	my ($node) = @_;
	my $expect = twin_fingerprint($node, 'ts_plain');
	$node->stop('immediate');
	$node->start;
	Test::More::is(twin_fingerprint($node, 'ts_atomic'),
		$expect, 'after a crash, the data is the same as md.c\'s');
	Test::More::is(twin_fingerprint($node, 'ts_plain'),
		$expect, 'and md.c\'s is unchanged');
	$node->command_ok([ 'pg_amcheck', '--heapallindexed', 'postgres' ],
		'pg_amcheck finds nothing wrong');
	$node->stop;
	$node->command_ok(
		[ 'pg_checksums', '--check', '--pgdata' => $node->data_dir ],
		'pg_checksums finds nothing wrong');
	return;
}

# How many blocks a segment file holds on this server.
sub blocks_per_segment
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		q{SELECT setting::int * 8192 / current_setting('block_size')::int
	  FROM pg_settings WHERE name = 'segment_size'});
}

1;
