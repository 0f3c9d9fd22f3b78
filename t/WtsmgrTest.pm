# Copyright (c) 2026, wtsmgr developers
#
# Helpers shared by wtsmgr's TAP tests: prerequisites (skipped outside CI,
# fatal under CI=true), and what the tests read from the server.

package WtsmgrTest;

use strict;
use warnings FATAL => 'all';

use Exporter 'import';
use File::Spec;
use Test::More;

our @EXPORT = qw(
  prerequisite_missing required_dir atomic_dir full_dir required_program
  test_module wait_for_decision first_touches);

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
		cycles => $v[4],
	};
}

1;
