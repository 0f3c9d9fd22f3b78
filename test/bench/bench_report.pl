# test/bench/bench_report.pl -- bench/WtsmgrBench.pm and bench/bench-report
# on made-up runs whose figures are known: medians, ratios and verdicts,
# the reduction of pgbench's transaction logs, the layout check of the
# results file, the report's tables and targets, the gnuplot programs, and
# the command line that bench/pgbench_report.sh and bench/recovery.sh call.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/../../bench";
use File::Temp qw(tempdir);
use Test::More;
use WtsmgrBench
  qw(@COLUMNS median ratio fmt verdict txn_summary read_rows column
  median_of maximum_of per_run pgbench_report tps_plot sbcurve_plot);

my $dir = tempdir(CLEANUP => 1);
my $cli = "$FindBin::RealBin/../../bench/bench-report";

sub slurp
{
	return do { local (@ARGV, $/) = @_; <> };
}

sub spew
{
	my ($file, $text) = @_;
	open my $fh, '>', $file or die "cannot write $file: $!";
	print $fh $text;
	close $fh;
	return;
}

# medians, ratios, formats and verdicts
is(median(3, 1, 2), 2, 'median of an odd count is the middle value');
is(median(4, 1, 3, 2), 2.5, 'median of an even count is the mean of the middle two');
is(median(10, 9, 100), 10, 'median sorts numerically, not as text');
is(median(), '-', 'median of nothing is "-"');
is(median(1, '-', 3), '-', 'median with a missing run is "-"');
is(ratio(3, 2), '1.50', 'ratio to two decimals');
is(ratio(1, 0), '-', 'ratio to zero is "-"');
is(ratio('-', 2), '-', 'ratio of a missing figure is "-"');
is(fmt(2.345, '%.1f'), '2.3', 'fmt applies the format');
is(fmt('-', '%.1f'), '-', 'fmt keeps "-"');
is(verdict('0.95', '>=', 0.95), 'met', 'a value at a ">=" target meets it');
is(verdict('0.94', '>=', 0.95), 'not met', 'a value below a ">=" target misses it');
is(verdict('0.4', '<=', 0.3334), 'not met', 'a value above a "<=" target misses it');
is(verdict('-', '<=', 1), 'not measured', 'a missing value is not measured');

# txn_summary: four clients' log lines (latency µs, end epoch s, µs) whose
# first transaction starts at 1000.0; ends fall in seconds 0, 0, 1, 3 and
# 3 of a 5 s run, and one after its end.
my $log1 = "$dir/txn.1";
my $log2 = "$dir/txn.2";
spew($log1, "0 0 100000 0 1000 100000\n0 1 200000 0 1000 900000\n0 2 50000 0 1001 500000\n");
spew($log2, "1 0 300000 0 1003 100000\n1 1 400000 0 1003 200000\n1 2 1000 0 1005 500000\n");
my ($sd, $cov, $zero, $p99) = txn_summary(5, "$dir/series.dat", $log1, $log2);
is(slurp("$dir/series.dat"), "1 2\n2 1\n3 0\n4 2\n5 0\n",
	'txn_summary: TPS per second from the first start, ends past the run left out');
# counts 2 1 0 2 0: mean 1, sd sqrt((9 - 25 / 5) / 4) = 1
is($sd, '1', 'txn_summary: standard deviation of per-second TPS');
is($cov, '1.000', 'txn_summary: coefficient of variation');
is($zero, 2, 'txn_summary: seconds without a commit');
# six latencies: int(6 * 0.99) = 5th smallest, 300000 µs
is($p99, '300.0', 'txn_summary: 99th percentile latency in ms');
spew("$dir/empty", '');
ok(!eval { txn_summary(5, "$dir/s2.dat", "$dir/empty"); 1 },
	'txn_summary: a log without transactions is an error');

# results files: one line a run, the layout of @COLUMNS
is(scalar @COLUMNS, 41, 'a run has 41 columns');
is($COLUMNS[40], 'bgw_blocks_per_call', 'the last column is the background writer\'s blocks per call');
is((grep { $COLUMNS[$_] eq 'ckpt_us_per_write' } 0 .. $#COLUMNS)[0], 25,
	'the checkpointer\'s µs per write is column 26');

# A run line: named figures, the rest counted from 1000 so that each
# column's value tells which column it came from.
sub read_rows_line
{
	spew("$dir/one", $_[0]);
	return read_rows("$dir/one")->[0];
}

sub run_line
{
	my (%v) = @_;
	my @f;
	for my $i (0 .. $#COLUMNS)
	{
		my $c = $COLUMNS[$i];
		push @f, defined $v{$c} ? $v{$c} : 1000 + $i;
	}
	return join(' ', @f) . "\n";
}

my @capped = (
	[ 'stock_fpw_on', [ 100, 120 ], [ 0.30, 0.50 ], [ 3, 1 ] ],
	[ 'stock_lz4', [ 150, 170 ], [ 0.2, 0.2 ], [ 0, 0 ] ],
	[ 'stock_fpw_off', [ 200, 220 ], [ 0.1, 0.1 ], [ 0, 0 ] ],
	[ 'wtsmgr_fsync', [ 205, 215 ], [ 0.1, 0.1 ], [ 0, 0 ] ]);
my $results = '';
for my $rep (1, 2)
{
	for my $c (@capped)
	{
		$results .= run_line(
			scenario => 'capped',
			config => $c->[0],
			scale => 20,
			repeat => $rep,
			tps => $c->[1][ $rep - 1 ],
			cov => $c->[2][ $rep - 1 ],
			zero_s => $c->[3][ $rep - 1 ],
			ckpt_us_per_write => $c->[0] eq 'wtsmgr_fsync' ? 40 : 120,
			blocks_per_atomic_unit => $c->[0] eq 'wtsmgr_fsync' ? 3.5 : '-');
	}
}
for my $sb ('128MB', '1GB')
{
	for my $c ('stock_fpw_off', 'wtsmgr_fsync')
	{
		$results .= run_line(
			scenario => "sbcurve-$sb",
			config => $c,
			scale => 20,
			repeat => 1,
			tps => ($c eq 'wtsmgr_fsync' ? 300 : 400) * ($sb eq '1GB' ? 2 : 1));
	}
}
spew("$dir/results", $results);
my $rows = read_rows("$dir/results");
is(scalar @$rows, 12, 'read_rows reads every run');
spew("$dir/short", "capped stock_fpw_on 20 1 100\n");
ok(!eval { read_rows("$dir/short"); 1 }, 'read_rows refuses a line of another layout');
like($@, qr/has 5 fields, not the 41/, 'and says how many fields it has');

is(join(',', column($rows, 'capped', 'stock_fpw_on', 20, 'tps')), '100,120',
	'column: one configuration\'s runs in order');
is(median_of($rows, 'capped', 'stock_fpw_on', 20, 'cov'), 0.4, 'median_of a column');
is(median_of($rows, 'capped', 'stock_zstd', 20, 'tps'), '-', 'median_of a configuration not run is "-"');
is(median_of($rows, 'capped', 'wtsmgr_fsync', 20, 'blocks_per_atomic_unit'), 3.5,
	'median_of a wtsmgr-only column');
is(median_of($rows, 'capped', 'stock_lz4', 20, 'blocks_per_atomic_unit'), '-',
	'and "-" for stock');
is(maximum_of($rows, 'capped', 'stock_fpw_on', 20, 'zero_s'), 3, 'maximum_of a column');
is(per_run($rows, 'capped', 'wtsmgr_fsync', 20, 'tps', '%.0f'), '205 / 215', 'per_run');
ok(!eval { column($rows, 'capped', 'stock_lz4', 20, 'no_such'); 1 },
	'a column that does not exist is an error');

# the report
my %settings = (
	duration => 40, repeats => 2, scenarios => 'capped sbcurve', scales => 20,
	capped_scale => 20,
	capped_configs => 'stock_fpw_on stock_lz4 stock_fpw_off wtsmgr_fsync',
	uncapped_configs => 'stock_fpw_on', sb_sizes => '128MB 1GB',
	sb_scale => 20, sb_configs => 'stock_fpw_off wtsmgr_fsync',
	bgwriter => 'bgwriter_delay=10ms', wal_cap => 5, load_start => '1 1 1',
	elapsed => 99, date => '2026-01-01 00:00 UTC', kernel => '6.18',
	cores => 2, load_end => '2 2 2', gnuplot => 0, 'size-20' => 300);
my $report = pgbench_report($rows, %settings);
like($report, qr/^\| wtsmgr_fsync \| 210 \| 205 \/ 215 \| 0\.10 \| 0 \(0\) \| 1008\.0 \| 1009 \| 1010 \| 1\.00 \| 1\.31 \| 0\.25 \|$/m,
	'capped table: medians, runs and ratios of wtsmgr_fsync');
like($report, qr/^\| stock_fpw_on \| 110 \| 100 \/ 120 \| 0\.40 \| 2 \(3\) \|/m,
	'capped table: median and worst zero-TPS seconds');
like($report, qr/^- TPS >= 0\.95 x stock_fpw_off: 1\.00, met$/m, 'target against fpw_off met');
like($report, qr/^- TPS >= 1\.2 x stock_lz4: 1\.31, met$/m, 'target against lz4 met');
like($report, qr/^- CoV <= 1\/3 of stock_fpw_on's: 0\.25, met$/m, 'CoV target met');
like($report, qr/^- no second at 0 TPS: 0 in the worst run, met$/m, 'zero-TPS target met');
like($report, qr/^\| capped 20 \| wtsmgr_fsync \| checkpointer \| 1020 \| 1021 \| 1022 \| 1023 \| 1024 \| 40 \| 1039\.00 \| 3\.50 \|$/m,
	'I/O table: the checkpointer\'s columns, blocks per call and per atomic unit');
like($report, qr/^\| capped 20 \| wtsmgr_fsync \| background writer \| 1026 \| 1027 \| 1028 \| 1029 \| 1030 \| 1031 \| 1040\.00 \| - \|$/m,
	'I/O table: the background writer\'s columns');
like($report, qr/^stock_fpw_on 120 µs: 0\.33 x\.$/m, 'checkpointer time per block against stock');
like($report, qr/^\| stock_fpw_off \| 400 \(400\) \| 800 \(800\) \|$/m, 'sbcurve TPS table');
like($report, qr/^\| wtsmgr_fsync \| 0\.75 \| 0\.75 \|$/m, 'sbcurve ratio table');
like($report, qr/\$? 300 MB of relation data/, 'sbcurve: the data set size');
unlike($report, qr/issue|png/i, 'no issue numbers, and no plot without gnuplot');
unlike($report, qr/## Uncapped/, 'no section of a scenario not run');

# a target missed
my @slow = map { { %$_ } } @$rows;
$_->{tps} = 150 for grep { $_->{config} eq 'wtsmgr_fsync' } @slow;
like(pgbench_report(\@slow, %settings),
	qr/^- TPS >= 0\.95 x stock_fpw_off: 0\.71, not met$/m, 'a missed target says so');

# the uncapped scenario: its table and the scale-20 target
my @unc;
for my $u ([ 'stock_fpw_on', 100, 900 ], [ 'stock_fpw_off', 200, 300 ],
	[ 'wtsmgr_fsync', 180, 330 ])
{
	push @unc,
	  read_rows_line(
		run_line(
			scenario => 'uncapped',
			config => $u->[0],
			scale => 20,
			repeat => 1,
			tps => $u->[1],
			wal_bytes_per_txn => $u->[2],
			checkpoints => 2));
}
my $ur = pgbench_report(\@unc, %settings, scenarios => 'uncapped',
	uncapped_configs => 'stock_fpw_on stock_fpw_off wtsmgr_fsync',
	'mixed-20' => 'pg_default skipped; plain written');
like($ur, qr/^\| wtsmgr_fsync \| 180 \| 180 \| 1006\.00 \| 1007 \(1007\) \| 1008\.0 \| 330 \| 1010 \| 2 \| 1012\.0 \| 1013\.0 \| 1\.80 \| 0\.90 \| 1\.10 \|$/m,
	'uncapped table: runs, checkpoints and ratios to fpw_on and fpw_off');
like($ur, qr/^0\.95 x stock_fpw_off: 0\.90, not met\.$/m, 'uncapped scale-20 target');
like($ur, qr/^wtsmgr_mixed, per tablespace: pg_default skipped; plain written$/m,
	'wtsmgr_mixed\'s tablespaces');

# plots
for my $c (qw(a b))
{
	for my $rep (1, 2)
	{
		spew("$dir/series-capped-$c-20-$rep.dat", "1 10\n2 " . ($rep * 50) . "\n");
	}
}
my $gp = tps_plot(dir => $dir, scenario => 'capped', scale => 20,
	configs => 'a b', repeats => 2, duration => 40, png => "$dir/x.png");
like($gp, qr/set multiplot layout 2,1/, 'tps_plot: a panel a configuration');
like($gp, qr/set yrange \[0:111\]/, 'tps_plot: y up to 1.1 x the highest TPS');
like($gp, qr{'\Q$dir\E/series-capped-b-20-2\.dat' using 1:2 with lines title 'run 2'},
	'tps_plot: a line a run');
$gp = sbcurve_plot($rows, dir => $dir, sb_configs => 'stock_fpw_off wtsmgr_fsync',
	sb_sizes => '128MB 1GB', sb_scale => 20, duration => 40, png => "$dir/y.png");
is(slurp("$dir/sbcurve-2.dat"), "128 300\n1024 600\n",
	'sbcurve_plot: median TPS over shared_buffers in MB');
like($gp, qr/title 'wtsmgr_fsync'/, 'sbcurve_plot: a line a configuration');

# the command line
is(`'$cli' txn-summary 5 '$dir/cli-series.dat' '$log1' '$log2'`, "1 1.000 2 300.0\n",
	'bench-report txn-summary prints sd, CoV, zero seconds and p99');
spew("$dir/runs.tsv", "# part config rep\ncrash\tstock\t1\t2.0\t9\ncrash\twtsmgr\t1\t1.0\t4\n"
	  . "crash\tstock\t2\t4.0\t10\ncrash\tstock\t3\t3.0\t12\n");
is(`'$cli' median '$dir/runs.tsv' crash stock 4 1 %.2f`, "3.00\n", 'bench-report median');
is(`'$cli' runs '$dir/runs.tsv' crash stock 4 0.5 %.0f`, "4 / 8 / 6\n",
	'bench-report runs, with a divisor');
is(`'$cli' median '$dir/runs.tsv' crash stock 4/5 0.001 %.0f`, "250\n",
	'bench-report median of a field over another');
is(`'$cli' median '$dir/runs.tsv' lag stock 4`, "-\n", 'bench-report median of no run');
spew("$dir/zero.tsv", "crash\tstock\t1\t2.0\t0\n");
is(`'$cli' median '$dir/zero.tsv' crash stock 4/5`, "-\n", 'bench-report median over a zero field is "-"');
spew("$dir/samples", "1 5 0.5\n3 2 0.1\n2 9 0.3\n");
is(`'$cli' spread '$dir/samples' 3`, "2 3 5 9 0.3 0.5\n", 'bench-report spread: median and maximum of each field');
spew("$dir/samples", '');
is(`'$cli' spread '$dir/samples' 2`, "- - - -\n", 'bench-report spread of no sample');
# the series files of the runs, for the plots where gnuplot is installed
for my $c (qw(stock_fpw_off wtsmgr_fsync))
{
	spew("$dir/series-capped-$c-20-$_.dat", "1 200\n2 210\n") for 1, 2;
}
mkdir "$dir/out";
my $printed = `'$cli' pgbench '$dir/results' '$dir/out' '$dir' duration=40 repeats=2 scenarios=capped scales=20 capped_scale=20 'capped_configs=stock_fpw_off wtsmgr_fsync' uncapped_configs=x sb_sizes=128MB sb_scale=20 sb_configs=x bgwriter=x wal_cap=5 'load_start=1 1 1' elapsed=7 2>/dev/null`;
is($?, 0, 'bench-report pgbench succeeds');
is(slurp("$dir/out/report.md"), $printed, 'and prints the report it writes');
like($printed, qr/^\| wtsmgr_fsync \| 210 \|/m, 'the report has the runs\' figures');
like(slurp("$dir/out/runs.tsv"), qr/^# scenario config scale repeat tps .* bgw_blocks_per_call\n/,
	'runs.tsv starts with the column names');
system("'$cli' pgbench '$dir/results' '$dir/out' '$dir' duration=40 2>/dev/null");
isnt($?, 0, 'bench-report pgbench refuses missing settings');

done_testing();
