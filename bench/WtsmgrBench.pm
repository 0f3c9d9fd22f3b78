# bench/WtsmgrBench.pm -- the figures and the report of the benchmarks.
#
# bench/pgbench_report.sh runs pgbench and reads the servers' statistics;
# bench/recovery.sh times recovery and standby replay.  Both leave one line
# a run in a results file and call bench/bench-report, whose work is this
# module's:
#
#   txn_summary()     pgbench's transaction logs of one run: TPS per second
#                     (a series for the plot), its standard deviation and
#                     coefficient of variation, the seconds without a
#                     commit, and the 99th percentile latency.
#   read_rows()       a pgbench results file, each line checked against
#                     @COLUMNS, the layout bench/pgbench_report.sh writes.
#   median_of(), maximum_of(), per_run()
#                     one column over the repeats of a scenario,
#                     configuration and scale.
#   pgbench_report()  the Markdown report, and tps_plot() and
#                     sbcurve_plot() the gnuplot programs of its plots.
#
# A missing figure is "-" throughout: a median over runs of which one has
# none is "-", as is a ratio with such a side.  bench/bench_report.pl (in
# test/bench/) tests all of it on made-up runs.
package WtsmgrBench;

use strict;
use warnings;
use Exporter 'import';
use List::Util qw(sum);
use POSIX qw(floor);

our @EXPORT_OK = qw(
  @COLUMNS median ratio fmt verdict txn_summary read_rows column
  median_of maximum_of per_run pgbench_report tps_plot sbcurve_plot);

# The columns of a line of pgbench results, in order.  _reads and _writes
# are 8 kB blocks (pg_stat_io), _ms milliseconds and _us_per_ µs a block,
# of client backends, the checkpointer and the background writer; the
# device's blocks are those read and written on the data's loop device
# while pgbench ran.
my @io = qw(reads read_ms us_per_read writes write_ms us_per_write);
our @COLUMNS = (
	qw(scenario config scale repeat tps tps_sd cov zero_s p99_ms
	  wal_bytes_per_txn wal_fpi checkpoints ckpt_write_s ckpt_sync_s),
	(map { my $b = $_; map { "${b}_$_" } @io } qw(client ckpt bgw)),
	qw(blocks_per_atomic_unit shared_buffers client_evictions buffers_clean
	  maxwritten_clean device_read_blocks device_write_blocks
	  ckpt_blocks_per_call bgw_blocks_per_call));

# The median of a list of numbers; "-" if it is empty or holds a "-".
sub median
{
	my @v = @_;
	return '-' if !@v || grep { $_ eq '-' } @v;
	@v = sort { $a <=> $b } @v;
	my $n = @v;
	return $n % 2 ? $v[ ($n - 1) / 2 ] : ($v[ $n / 2 - 1 ] + $v[ $n / 2 ]) / 2;
}

# a / b to two decimals; "-" if either is missing or b is not positive.
sub ratio
{
	my ($a, $b) = @_;
	return '-' if $a eq '-' || $b eq '-' || $b <= 0;
	return sprintf('%.2f', $a / $b);
}

# A figure in a printf format, "-" staying "-".
sub fmt
{
	my ($v, $f) = @_;
	return $v eq '-' ? '-' : sprintf($f, $v);
}

# "met", "not met" or "not measured": VALUE OP TARGET, OP ">=" or "<=".
sub verdict
{
	my ($v, $op, $t) = @_;
	return 'not measured' if $v eq '-';
	my $ok = $op eq '>=' ? $v >= $t : $v <= $t;
	return $ok ? 'met' : 'not met';
}

# The transaction logs of one pgbench run of DURATION seconds (pgbench -l:
# "client transaction latency_us script epoch_s epoch_us" a line, the time
# being the transaction's end).  Second 0 begins with the first
# transaction's start.  Writes "SECOND TPS" lines for seconds 1 to
# DURATION into SERIES, and returns the standard deviation of per-second
# TPS, its coefficient of variation (sd / mean), the seconds without a
# commit and the 99th percentile latency in ms.
sub txn_summary
{
	my ($duration, $series, @logs) = @_;
	my (@end, @lat);
	my $t0;

	for my $log (@logs)
	{
		open my $fh, '<', $log or die "cannot read $log: $!\n";
		while (<$fh>)
		{
			my @f = split;
			next unless @f >= 6;
			my $e = $f[4] + $f[5] / 1e6;
			my $s = $e - $f[2] / 1e6;
			$t0 = $s if !defined $t0 || $s < $t0;
			push @end, $e;
			push @lat, $f[2];
		}
		close $fh;
	}
	die "no transactions in @logs\n" unless @end;

	my @count = (0) x $duration;
	for my $e (@end)
	{
		my $b = floor($e - $t0);
		$count[$b]++ if $b < $duration;
	}
	open my $out, '>', $series or die "cannot write $series: $!\n";
	print $out $_ + 1, ' ', $count[$_], "\n" for 0 .. $duration - 1;
	close $out or die "cannot write $series: $!\n";

	my $total = sum(@count);
	my $squares = sum(map { $_ * $_ } @count);
	my $mean = $total / $duration;
	my $var = ($squares - $total * $total / $duration) / ($duration - 1);
	my $sd = sqrt($var > 0 ? $var : 0);
	my $zero = grep { $_ == 0 } @count;

	@lat = sort { $a <=> $b } @lat;
	my $i = int(@lat * 0.99);
	$i = 1 if $i < 1;
	return (sprintf('%.0f', $sd), sprintf('%.3f', $mean > 0 ? $sd / $mean : 0),
		$zero, sprintf('%.1f', $lat[ $i - 1 ] / 1000));
}

# The lines of a pgbench results file, as hashes keyed by @COLUMNS.  A line
# with another number of fields is an error: the writer and this module
# disagree about the layout.
sub read_rows
{
	my ($file) = @_;
	my @rows;
	open my $fh, '<', $file or die "cannot read $file: $!\n";
	while (<$fh>)
	{
		next if /^#/ || !/\S/;
		my @f = split;
		die sprintf("%s line %d has %d fields, not the %d of its columns\n",
			$file, $., scalar @f, scalar @COLUMNS)
		  if @f != @COLUMNS;
		my %row;
		@row{@COLUMNS} = @f;
		push @rows, \%row;
	}
	close $fh;
	return \@rows;
}

# One column's values over the repeats of SCENARIO, CONFIG and SCALE, in
# the order of the runs.
sub column
{
	my ($rows, $scen, $config, $scale, $col) = @_;
	die "no column $col\n" unless grep { $_ eq $col } @COLUMNS;
	return map { $_->{$col} }
	  grep {
		     $_->{scenario} eq $scen
		  && $_->{config} eq $config
		  && $_->{scale} eq $scale
	  } @$rows;
}

sub median_of
{
	return median(column(@_));
}

# The largest value, "-" if there is no run.
sub maximum_of
{
	my @v = column(@_);
	return '-' unless @v;
	my $m = $v[0];
	for (@v)
	{
		$m = $_ if $_ ne '-' && ($m eq '-' || $_ > $m);
	}
	return $m;
}

# Every run's value in a printf format, joined by " / ".
sub per_run
{
	my ($rows, $scen, $config, $scale, $col, $f) = @_;
	return join(' / ',
		map { fmt($_, $f) } column($rows, $scen, $config, $scale, $col));
}

sub has
{
	my ($list, $word) = @_;
	return scalar grep { $_ eq $word } split ' ', $list;
}

sub table_row
{
	return '| ' . join(' | ', @_) . " |\n";
}

sub table_head
{
	return table_row(@_) . table_row(map { '---' } @_);
}

# The first columns of a scenario's table, and their cells for a
# configuration: its median TPS, every run's, CoV, seconds at 0 TPS (and
# the worst run's), p99, WAL bytes per transaction and images.
my @run_heads = ('configuration', 'TPS', 'TPS per run', 'CoV',
	'0 TPS s (max)', 'p99 ms', 'WAL bytes/txn', 'wal_fpi');

sub run_cells
{
	my ($rows, $scen, $c, $sc) = @_;
	my $f = sub { fmt(median_of($rows, $scen, $c, $sc, $_[0]), $_[1]) };
	return ($c, $f->('tps', '%.0f'),
		per_run($rows, $scen, $c, $sc, 'tps', '%.0f'),
		$f->('cov', '%.2f'),
		$f->('zero_s', '%g') . ' ('
		  . maximum_of($rows, $scen, $c, $sc, 'zero_s') . ')',
		$f->('p99_ms', '%.1f'), $f->('wal_bytes_per_txn', '%.0f'),
		$f->('wal_fpi', '%.0f'));
}

# The report of bench/pgbench_report.sh: ROWS from read_rows(), S the
# run's settings (see bench/bench-report's "pgbench" command).
sub pgbench_report
{
	my ($rows, %s) = @_;
	my $plots = $s{gnuplot};
	my $r = '';
	my $med = sub { median_of($rows, @_) };

	$r .= "# wtsmgr against stock PostgreSQL 18: pgbench\n\n";
	$r .= "$s{date}, $s{kernel}, $s{cores} cores, load average\n";
	$r .= "$s{load_start} at the start and $s{load_end} at the end; "
	  . "$s{elapsed} s in all.\n";
	$r .= "pgbench TPC-B, 4 clients, $s{duration} s per run, "
	  . "$s{repeats} run(s) of each configuration,\n";
	$r .= "alternating; figures are medians over the runs "
	  . "(\"per run\": each run in order).\n";
	$r .= <<'TEXT';
Data on XFS on a loop device (software atomic writes), data checksums on,
shared_buffers 128MB, checkpoint_timeout 30s, min_wal_size 512MB (WAL segments
are recycled), track_io_timing on. CoV is the coefficient of variation of
per-second TPS (sd / mean) and "0 TPS s" the seconds without a commit, both
from pgbench's transaction log; p99 is the 99th percentile latency.
TEXT
	$r .= "The sbcurve scenario sets shared_buffers to each of: $s{sb_sizes}.\n"
	  if has($s{scenarios}, 'sbcurve');

	if (has($s{scenarios}, 'capped'))
	{
		my $sc = $s{capped_scale};
		my $off = $med->('capped', 'stock_fpw_off', $sc, 'tps');
		my $lz4 = $med->('capped', 'stock_lz4', $sc, 'tps');
		my $cov_on = $med->('capped', 'stock_fpw_on', $sc, 'cov');

		$r .= "\n## Capped WAL: pg_wal on an ext4 loop device capped at "
		  . "$s{wal_cap} MB/s, scale $sc\n\n";
		$r .= table_head(@run_heads, 'TPS / fpw_off', 'TPS / lz4',
			'CoV / fpw_on');
		for my $c (split ' ', $s{capped_configs})
		{
			my $tps = $med->('capped', $c, $sc, 'tps');
			$r .= table_row(
				run_cells($rows, 'capped', $c, $sc),
				ratio($tps, $off),
				ratio($tps, $lz4),
				ratio($med->('capped', $c, $sc, 'cov'), $cov_on));
		}
		if (has($s{capped_configs}, 'wtsmgr_fsync'))
		{
			my $w = $med->('capped', 'wtsmgr_fsync', $sc, 'tps');
			my $wc = $med->('capped', 'wtsmgr_fsync', $sc, 'cov');
			my ($r1, $r2, $r3) =
			  (ratio($w, $off), ratio($w, $lz4), ratio($wc, $cov_on));
			my $z = maximum_of($rows, 'capped', 'wtsmgr_fsync', $sc, 'zero_s');
			$r .= "\nTargets (wtsmgr_fsync):\n\n";
			$r .= "- TPS >= 0.95 x stock_fpw_off: $r1, "
			  . verdict($r1, '>=', 0.95) . "\n";
			$r .= "- TPS >= 1.2 x stock_lz4: $r2, "
			  . verdict($r2, '>=', 1.2) . "\n";
			$r .= "- CoV <= 1/3 of stock_fpw_on's: $r3, "
			  . verdict($r3, '<=', 0.3334) . "\n";
			$r .= "- no second at 0 TPS: $z in the worst run, "
			  . verdict($z, '<=', 0) . "\n";
		}
		$r .= "\n![TPS per second, capped WAL](capped-tps.png)\n" if $plots;
	}

	if (has($s{scenarios}, 'uncapped'))
	{
		for my $sc (split ' ', $s{scales})
		{
			my $on = $med->('uncapped', 'stock_fpw_on', $sc, 'tps');
			my $off = $med->('uncapped', 'stock_fpw_off', $sc, 'tps');
			my $woff =
			  $med->('uncapped', 'stock_fpw_off', $sc, 'wal_bytes_per_txn');

			$r .= "\n## Uncapped: everything on the XFS loop filesystem, "
			  . "scale $sc\n\n";
			$r .= table_head(@run_heads, 'checkpoints', 'ckpt write s',
				'ckpt sync s', 'TPS / fpw_on', 'TPS / fpw_off', 'WAL / fpw_off');
			for my $c (split ' ', $s{uncapped_configs})
			{
				my $tps = $med->('uncapped', $c, $sc, 'tps');
				my $wal = $med->('uncapped', $c, $sc, 'wal_bytes_per_txn');
				$r .= table_row(
					run_cells($rows, 'uncapped', $c, $sc),
					fmt($med->('uncapped', $c, $sc, 'checkpoints'), '%g'),
					fmt($med->('uncapped', $c, $sc, 'ckpt_write_s'), '%.1f'),
					fmt($med->('uncapped', $c, $sc, 'ckpt_sync_s'), '%.1f'),
					ratio($tps, $on),
					ratio($tps, $off),
					ratio($wal, $woff));
			}
			$r .= "\nwtsmgr_mixed, per tablespace: $s{\"mixed-$sc\"}\n"
			  if defined $s{"mixed-$sc"};
			if (has($s{uncapped_configs}, 'wtsmgr_fsync') && $sc eq '20')
			{
				my $x = ratio($med->('uncapped', 'wtsmgr_fsync', $sc, 'tps'),
					$off);
				$r .= "\nTarget (scale 20, shared_buffers 128MB): "
				  . "wtsmgr_fsync TPS >=\n0.95 x stock_fpw_off: $x, "
				  . verdict($x, '>=', 0.95) . ".\n";
			}
			$r .= "\n![TPS per second, uncapped](uncapped-$sc-tps.png)\n"
			  if $plots;
		}
	}

	$r .= io_section($rows, %s)
	  if has($s{scenarios}, 'capped') || has($s{scenarios}, 'uncapped');
	$r .= sbcurve_section($rows, %s) if has($s{scenarios}, 'sbcurve');
	return $r;
}

# The scales and configurations of the capped or uncapped scenario.
sub scenario_runs
{
	my ($scen, %s) = @_;
	return $scen eq 'capped'
	  ? ([ $s{capped_scale} ], [ split ' ', $s{capped_configs} ])
	  : ([ split ' ', $s{scales} ], [ split ' ', $s{uncapped_configs} ]);
}

# Relation I/O per backend type, of the capped and uncapped scenarios.
sub io_section
{
	my ($rows, %s) = @_;
	my @scens = grep { $_ ne 'sbcurve' } split ' ', $s{scenarios};
	my $r = <<'TEXT';

## Relation I/O per backend type (pg_stat_io, medians)

Blocks of 8 kB read and written by client backends, the checkpointer and the
background writer, the time they took (track_io_timing) and the time per block.
The checkpointer's include the checkpoint in progress at the end of the run,
finished by a CHECKPOINT once pgbench has stopped. Blocks per atomic unit:
wtsmgr_stat_io writes / atomic_units, all writers. Blocks per call: blocks
written per write call (pg_stat_io write_bytes / writes; patches 0005 and 0006
combine the checkpointer's and the background writer's).

TEXT
	$r .= table_head('scenario', 'configuration', 'backend', 'reads',
		'read ms', 'µs/read', 'writes', 'write ms', 'µs/write',
		'blocks per call', 'blocks/atomic unit');
	for my $scen (@scens)
	{
		my ($scales, $configs) = scenario_runs($scen, %s);
		for my $sc (@$scales)
		{
			for my $c (@$configs)
			{
				for my $bt ([ 'client backend', 'client' ],
					[ 'checkpointer', 'ckpt' ],
					[ 'background writer', 'bgw' ])
				{
					my ($name, $p) = @$bt;
					my $f = sub { fmt(median_of($rows, $scen, $c, $sc, $_[0]), $_[1]) };
					$r .= table_row("$scen $sc", $c, $name,
						(map { $f->("${p}_$_", '%.0f') } @io),
						$p eq 'client' ? '-' : $f->("${p}_blocks_per_call", '%.2f'),
						$p eq 'ckpt' ? $f->('blocks_per_atomic_unit', '%.2f') : '-');
				}
			}
		}
	}
	for my $scen (@scens)
	{
		my ($scales, $configs) = scenario_runs($scen, %s);
		next unless grep { $_ eq 'wtsmgr_fsync' } @$configs;
		for my $sc (@$scales)
		{
			my $w = median_of($rows, $scen, 'wtsmgr_fsync', $sc, 'ckpt_us_per_write');
			my $on = median_of($rows, $scen, 'stock_fpw_on', $sc, 'ckpt_us_per_write');
			$r .= "\nCheckpointer write time per block, $scen scale $sc: "
			  . "wtsmgr_fsync " . fmt($w, '%.0f') . " µs,\nstock_fpw_on "
			  . fmt($on, '%.0f') . " µs: " . ratio($w, $on) . " x.\n";
		}
	}
	return $r;
}

# TPS and I/O over shared_buffers.
sub sbcurve_section
{
	my ($rows, %s) = @_;
	my $sc = $s{sb_scale};
	my @sizes = split ' ', $s{sb_sizes};
	my @configs = split ' ', $s{sb_configs};
	my $med = sub { median_of($rows, "sbcurve-$_[0]", $_[1], $sc, $_[2]) };
	my $table = sub {
		my ($cell) = @_;
		my $t = table_head('configuration', @sizes);
		for my $c (@configs)
		{
			$t .= table_row($c, map { $cell->($_, $c) } @sizes);
		}
		return $t;
	};
	my $mb = defined $s{"size-$sc"} ? $s{"size-$sc"} : '-';

	my $r = "\n## TPS over shared_buffers: uncapped, scale $sc\n\n";
	$r .= "Everything on the XFS loop filesystem; $mb MB of relation data "
	  . "after\ninitialization (pgbench_history grows during a run). "
	  . "+bgw: $s{bgwriter}.\n";
	$r .= "Median TPS and, in brackets, every run's TPS in order.\n\n";
	$r .= $table->(
		sub {
			my ($sb, $c) = @_;
			return fmt($med->($sb, $c, 'tps'), '%.0f') . ' ('
			  . per_run($rows, "sbcurve-$sb", $c, $sc, 'tps', '%.0f') . ')';
		});
	if (grep { $_ eq 'stock_fpw_off' } @configs)
	{
		$r .= "\nMedian TPS against stock_fpw_off's at the same "
		  . "shared_buffers:\n\n";
		$r .= $table->(
			sub {
				my ($sb, $c) = @_;
				return ratio($med->($sb, $c, 'tps'),
					$med->($sb, 'stock_fpw_off', 'tps'));
			});
	}
	$r .= <<'TEXT';

I/O during the runs (medians). Client backends' and the background writer's
relation reads and writes (pg_stat_io, 8 kB blocks) and the time per block;
evictions of client backends (pg_stat_io); maxwritten_clean (pg_stat_bgwriter:
the rounds in which the background writer stopped at bgwriter_lru_maxpages);
device reads: 8 kB blocks read from the data's loop device during pgbench,
that is, reads that missed the page cache; the checkpointer's write time per
block (including the checkpoint finished after the run).

TEXT
	my @cols = qw(tps client_reads client_us_per_read device_read_blocks
	  client_writes client_us_per_write client_evictions bgw_writes
	  bgw_us_per_write maxwritten_clean ckpt_writes ckpt_us_per_write);
	$r .= table_head('shared_buffers', 'configuration', 'TPS',
		'client reads', 'µs/read', 'device reads', 'client writes',
		'µs/write', 'client evictions', 'bgwriter writes', 'µs/write',
		'maxwritten_clean', 'checkpointer writes', 'µs/write');
	for my $sb (@sizes)
	{
		for my $c (@configs)
		{
			$r .= table_row($sb, $c,
				map { fmt($med->($sb, $c, $_), '%.0f') } @cols);
		}
	}
	$r .= "\n![median TPS over shared_buffers](sbcurve-tps.png)\n"
	  if $s{gnuplot};
	return $r;
}

# The start of a gnuplot program: a PNG 1000 pixels wide, of HEIGHT, into
# PNG, names as they are, the key on the right.
sub plot_head
{
	my ($height, $png) = @_;
	return "set terminal png size 1000,$height\nset termoption noenhanced\n"
	  . "set output '$png'\nset key outside right\n";
}

# The gnuplot program of TPS per second of a scenario and scale: a panel a
# configuration, a line a run, from the series files
# DIR/series-SCENARIO-CONFIG-SCALE-REPEAT.dat that txn_summary() wrote.
sub tps_plot
{
	my (%p) = @_;
	my @configs = split ' ', $p{configs};
	my $ymax = 0;
	for my $c (@configs)
	{
		for my $rep (1 .. $p{repeats})
		{
			my $f = "$p{dir}/series-$p{scenario}-$c-$p{scale}-$rep.dat";
			open my $fh, '<', $f or die "cannot read $f: $!\n";
			while (<$fh>)
			{
				my (undef, $tps) = split;
				$ymax = $tps if $tps > $ymax;
			}
			close $fh;
		}
	}
	$ymax = int($ymax * 1.1) + 1;
	my $n = @configs;
	my $g = plot_head(220 * $n + 60, $p{png});
	$g .= "set multiplot layout $n,1 title '$p{scenario} WAL, scale "
	  . "$p{scale}: pgbench TPS per second, $p{duration} s runs'\n";
	$g .= "set xlabel 'seconds'; set ylabel 'TPS'; set yrange [0:$ymax]; "
	  . "set xrange [0:$p{duration}]\n";
	for my $c (@configs)
	{
		$g .= "set title '$c'\nplot "
		  . join(', ',
			map {
				"'$p{dir}/series-$p{scenario}-$c-$p{scale}-$_.dat' "
				  . "using 1:2 with lines title 'run $_'"
			} 1 .. $p{repeats})
		  . "\n";
	}
	return $g . "unset multiplot\n";
}

# shared_buffers as MB: 128MB is 128, 1GB 1024.
sub megabytes
{
	my ($size) = @_;
	my ($n, $unit) = $size =~ /^(\d+)([MG])B$/
	  or die "bad shared_buffers size $size\n";
	return $unit eq 'G' ? $n * 1024 : $n;
}

# The gnuplot program of median TPS over shared_buffers (log scale), a line
# a configuration and a point a run; writes its data files into DIR.
sub sbcurve_plot
{
	my ($rows, %p) = @_;
	my @configs = split ' ', $p{sb_configs};
	my @plots;
	for my $i (1 .. @configs)
	{
		my $c = $configs[ $i - 1 ];
		my ($med, $runs) = ("$p{dir}/sbcurve-$i.dat", "$p{dir}/sbcurve-runs-$i.dat");
		open my $m, '>', $med or die "cannot write $med: $!\n";
		open my $all, '>', $runs or die "cannot write $runs: $!\n";
		for my $sb (split ' ', $p{sb_sizes})
		{
			my $mb = megabytes($sb);
			my @tps = column($rows, "sbcurve-$sb", $c, $p{sb_scale}, 'tps');
			print $m "$mb ", median(@tps), "\n";
			print $all "$mb $_\n" for @tps;
		}
		close $m;
		close $all;
		push @plots,
		  "'$med' using 1:2 with linespoints lw 2 lc $i title '$c', "
		  . "'$runs' using 1:2 with points pt 2 lc $i notitle";
	}
	my $g = plot_head(560, $p{png});
	$g .= "set title 'pgbench TPS over shared_buffers, scale $p{sb_scale}, "
	  . "$p{duration} s runs: medians (lines) and runs (points)'\n";
	$g .= "set xlabel 'shared_buffers (MB)'; set ylabel 'TPS'; "
	  . "set logscale x 2; set yrange [0:*]\n";
	return $g . 'plot ' . join(', ', @plots) . "\n";
}

1;
