//! Command-line interface: the flags of every command, parsed by clap; `crate::commands`
//! runs them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::engine::{BackendChoice, ExpandChoice, RowSelection};

/// The most threads `--threads` may ask for: more only adds start-up time and
/// memory (a machine's thousands of threads were once spawned and never used).
pub const MAX_THREADS: usize = 1024;

/// `--dispatch-budget SECONDS`: a finite number above 0.
pub fn parse_dispatch_budget(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("'{s}' is not a number of seconds above 0 (e.g. 0.5)")),
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "moatsweep",
    version,
    about = "Sweep millions of scenarios of an AI-market moat model (open-weight releases, Bertrand-Nash pricing, exits) on CPU or GPU",
    after_help = "\
Examples:
  moatsweep run configs/quickstart.toml          # writes results/quickstart.csv and its manifest
  moatsweep validate configs/release-timing.toml # checks a config, prints axes and row count
  moatsweep scenario configs/baseline.toml       # month-by-month table of one scenario
  moatsweep bench                                # scenarios per second on this machine
  moatsweep check results/quickstart.csv         # the CSV against its manifest

Docs: docs/model.md (the model), docs/config.md (the config format)."
)]
pub struct Cli {
    /// Threads for solving and formatting (default: all cores; at most 1024).
    #[arg(long, global = true, value_name = "N")]
    pub threads: Option<usize>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a sweep: one CSV row per scenario, plus <out>.manifest.json.
    #[command(after_help = "\
Examples:
  moatsweep run configs/quickstart.toml
  moatsweep run configs/release-timing.toml --out /tmp/rt.csv --limit 1000
  moatsweep run configs/quickstart.toml --backend cpu --quiet
  moatsweep run configs/release-timing-lhs.toml --shard 0/4     # rows of block 0 of 4
  moatsweep run configs/release-timing-lhs.toml --resume        # continue after Ctrl-C or SIGTERM

The CSV is written to <out>.partial and renamed to <out> only when complete. After
every chunk a checkpoint (<out>.partial.checkpoint) records what reached the disk
and its SHA-256; --resume checks that prefix, continues from it and gives the same
bytes as an uninterrupted run. Ctrl-C, SIGTERM or SIGHUP stop at the next chunk
boundary (exit status 130; a second one stops at once); an I/O error ends the run
with one message naming the file (exit status 1). The manifest records the CSV's
SHA-256 (see `moatsweep check`). An output value that is NaN or infinite is
counted per column in the manifest (`nonfinite`) and its first row printed; the
run then exits with status 1, after its files are complete, unless
--allow-nonfinite is given.")]
    Run {
        /// The sweep config (TOML, version 1).
        config: PathBuf,
        /// Output CSV (default: [output] path of the config, or results/<name>.csv).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Which backend solves the scenarios.
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
        /// GPU adapter to use: a case-insensitive part of its name (see `moatsweep adapters`).
        #[arg(long, value_name = "NAME")]
        adapter: Option<String>,
        /// After a GPU run, re-solve K rows spread over it on the f64 CPU reference and
        /// record each column's largest deviation in the manifest (default 64; 0: off).
        #[arg(long, value_name = "K")]
        verify: Option<u64>,
        /// Solve only the first N rows.
        #[arg(long, value_name = "N", conflicts_with_all = ["rows", "shard"])]
        limit: Option<u64>,
        /// Solve rows A (included) to B (excluded), written to <out stem>.rows-A-B.csv.
        #[arg(long, value_name = "A..B", value_parser = RowSelection::parse_rows, conflicts_with = "shard")]
        rows: Option<RowSelection>,
        /// Solve the I-th of N contiguous, near-equal blocks of rows (I from 0), written to
        /// <out stem>.shard-I-of-N.csv; join shards with `moatsweep merge`. `auto` takes
        /// I/N from a Slurm job array or a Kubernetes Indexed Job (with --shards N).
        #[arg(long, value_name = "I/N|auto", value_parser = RowSelection::parse_shard)]
        shard: Option<RowSelection>,
        /// Number of shards for --shard auto where the environment does not say it
        /// (Kubernetes: the Job's completions).
        #[arg(long, value_name = "N", requires = "shard", value_parser = clap::value_parser!(u64).range(1..))]
        shards: Option<u64>,
        /// Continue an interrupted run from its checkpoint (same config, backend and rows);
        /// an error when there is no checkpoint.
        #[arg(long)]
        resume: bool,
        /// Rows per chunk (tests and tuning).
        #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u64).range(1..))]
        chunk_rows: Option<u64>,
        /// GPU: seconds one submission (a chunk of rows) may take; chunks are sized
        /// from the rate measured so far to stay under it (drivers reset a GPU busy
        /// for about 2 s). Ignored with --chunk-rows.
        #[arg(long, value_name = "SECONDS", default_value_t = crate::gpu::DEFAULT_DISPATCH_BUDGET_S, value_parser = parse_dispatch_budget, allow_negative_numbers = true)]
        dispatch_budget: f64,
        /// GPU: where the scenarios are made. `device` uploads only the plan and
        /// makes every row on the GPU, bit for bit as the host would (grid, random,
        /// lhs, sobol, saltelli and morris designs); `host` packs and uploads each
        /// row; `auto` takes the device where the plan allows it.
        #[arg(long, value_enum, default_value_t = ExpandChoice::Auto)]
        expand: ExpandChoice,
        /// Write the rows as CSV or Parquet (default: the config's [output] format, else csv).
        #[arg(long, value_enum, value_name = "FORMAT")]
        format: Option<crate::output::OutputFormat>,
        /// Exit 0 even when an output value is NaN or infinite. Without it such a run
        /// still completes its files (the manifest counts them per column in
        /// `nonfinite`) but exits with status 1.
        #[arg(long)]
        allow_nonfinite: bool,
        /// No progress line.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Check a config without running it: axes, row count, columns, estimated CSV size.
    #[command(after_help = "\
Example:
  moatsweep validate configs/release-timing.toml

Exit status 0 when the config is valid, 2 (with a message naming file, line, column and key) when not.")]
    Validate {
        /// The sweep config (TOML, version 1).
        config: PathBuf,
    },
    /// Solve one scenario and print it month by month.
    #[command(after_help = "\
Examples:
  moatsweep scenario configs/quickstart.toml --index 17
  moatsweep scenario configs/baseline.toml --set firm.challenger.train_spend=5e8 --set firm.challenger.funding=5e7
  moatsweep scenario configs/baseline.toml --set firm.open.release_month=never

Without --index the config's own values are used (no axis applied); --set overrides come last.")]
    Scenario {
        /// The sweep config (TOML, version 1).
        config: PathBuf,
        /// Row of the sweep to solve (the `scenario` column of the CSV).
        #[arg(long, value_name = "I")]
        index: Option<u64>,
        /// Override a parameter, e.g. --set model.ad_uplift=0.05 (repeatable).
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
    },
    /// Measure throughput in scenarios per second (compute only, and end to end with the CSV).
    #[command(after_help = "\
Examples:
  moatsweep bench
  moatsweep bench configs/release-timing.toml --rows 500000
  moatsweep --threads 1 bench

Rows beyond the config's row count wrap around to row 0. Each backend is measured
compute only (outcomes dropped), end to end (CSV written to a temporary file) and,
where the adapter has timestamp queries, kernel only; the GPU/CPU ratios come from
the same run.")]
    Bench {
        /// Config whose scenarios are solved.
        #[arg(default_value = "configs/quickstart.toml")]
        config: PathBuf,
        /// Scenarios per measurement (at least 1).
        #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(1..))]
        rows: u64,
        /// GPU adapter to measure (default: the first adapter, software ones included).
        #[arg(long, value_name = "NAME")]
        adapter: Option<String>,
        /// GPU: seconds one submission may take (as for `run`).
        #[arg(long, value_name = "SECONDS", default_value_t = crate::gpu::DEFAULT_DISPATCH_BUDGET_S, value_parser = parse_dispatch_budget, allow_negative_numbers = true)]
        dispatch_budget: f64,
        /// GPU: where the scenarios are made (as for `run`); bench measures the
        /// GPU both ways when the plan allows the device.
        #[arg(long, value_enum, default_value_t = ExpandChoice::Auto)]
        expand: ExpandChoice,
        /// Scenarios per CPU measurement (default: --rows), to measure a fast GPU
        /// at many rows without waiting for the CPU as long.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        cpu_rows: Option<u64>,
    },
    /// Join shards (or row blocks) of one sweep into one CSV with its manifest.
    #[command(after_help = "\
Example:
  moatsweep merge results/lhs.csv results/lhs.shard-*-of-4.csv

The inputs' manifests must share the config hash, moatsweep version and precision,
and their row ranges must cover the sweep exactly once; the output is byte-identical
to a single run of the whole sweep on the same backend.")]
    Merge {
        /// The merged CSV to write.
        out: PathBuf,
        /// The shard CSVs (each with its .manifest.json beside it), in any order.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Start from an observed market: set every firm's brand and cost factor so that
    /// month 0 reproduces observed shares and prices (docs/model.md section 9).
    #[command(after_help = "\
Examples:
  moatsweep calibrate configs/my.toml --observed data/obs.csv --out configs/my-calibrated.toml
  moatsweep calibrate configs/llm-market-2025-uncalibrated.toml --observed data/llm-market-2025.csv \\
      --outside-share 0.5 --usage 1.2e9 --margin 0.55 --out configs/llm-market-2025.toml
  moatsweep calibrate configs/my.toml --observed data/obs.csv --sweep --out results/fits.csv

The observations file has one row per firm of the config: `firm,share,price` (share of
the whole market, the outside option included; prices in $/Mtok), or
`firm,revenue_share,price` with --outside-share. Lines starting with # are comments.
Brands come from the BLP contraction at the observed prices, costs from each closed
firm's first-order condition (a firm released at month 0 sells at cost); month 0 is
then solved to tol 1e-13 and must give every share and price back to 1e-9, or nothing
is written. The output is the input config with `brand` and `cost_factor` of every firm
set (`market0` with --usage, every segment's `price_sens` with --margin) and nothing
else changed; comments at its top say how it was made. Bad observations end with a
message naming the file, line and firm, and exit status 2.

With --sweep, every row of the config's sweep (times each --outside-share value) is
calibrated on every thread and written as CSV: brands, cost factors, costs, markups and
elasticities per firm, and the fit, or the row's error.")]
    Calibrate {
        /// The config whose month 0 is calibrated (TOML, version 1).
        config: PathBuf,
        /// The observations: CSV with `firm,share,price` or `firm,revenue_share,price`.
        #[arg(long, value_name = "FILE.csv")]
        observed: PathBuf,
        /// The calibrated config to write (with --sweep: the CSV of every row's calibration).
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
        /// The share of the market that buys no AI, to convert revenue shares (with
        /// --sweep: several, comma-separated, each calibrated).
        #[arg(long, value_name = "X[,X...]", value_delimiter = ',')]
        outside_share: Vec<f64>,
        /// AI usage of the firms together, Mtok per month: sets market0 = V / sum of shares.
        #[arg(long, value_name = "V")]
        usage: Option<f64>,
        /// The closed firms' usage-weighted average margin (Lerner index, in (0, 1)):
        /// sets one common scale of every segment's price sensitivity.
        #[arg(long, value_name = "L")]
        margin: Option<f64>,
        /// Calibrate every row of the config's sweep and write them as CSV.
        #[arg(long)]
        sweep: bool,
    },
    /// Check finished CSVs against their manifests: header, row count and SHA-256 of the bytes.
    #[command(after_help = "\
Examples:
  moatsweep check results/quickstart.csv
  moatsweep check results/lhs.shard-*-of-4.csv

Prints one line per file that matches its <file>.manifest.json. The first file whose
header differs from the manifest's columns, whose row count differs from its
rows_written, or whose bytes differ from its sha256 ends the check with a message
naming it and exit status 2.")]
    Check {
        /// The CSVs (each with its .manifest.json beside it).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the GPU adapters wgpu finds (name, backend, device type, driver, key limits).
    #[command(after_help = "\
Examples:
  moatsweep adapters
  WGPU_BACKEND=vulkan moatsweep adapters

`run --backend auto` uses the first hardware adapter; `run --adapter NAME` picks one.")]
    Adapters,
    /// Print the table of every model parameter (path, default, range, unit, meaning, source) as Markdown.
    #[command(after_help = "\
Examples:
  moatsweep params             # the parameter table of docs/model.md
  moatsweep params --outputs   # the output table: every CSV column, its type and GPU tolerance")]
    Params {
        /// Print the output table instead (every output column, when it is empty, its GPU tolerance and why).
        #[arg(long)]
        outputs: bool,
    },
    /// Draw an output of a sweep CSV over one or two axes (heatmap or lines), as PNG or SVG.
    #[command(after_help = "\
Examples:
  moatsweep plot results/quickstart.csv --x firm.open.release_month --y model.ad_uplift --z npv.open
  moatsweep plot results/quickstart.csv --x model.ad_uplift --z share.open --by firm.open.release_month
  moatsweep plot results/quickstart.csv --x firm.open.release_month --z exit_month.challenger --agg max --out /tmp/exits.svg

Other axes are aggregated (--agg, default mean); logspace axes are drawn on a log scale, a release month's never after the largest month; an axis with more than 100 distinct values (a sampling design) is cut into 25 bins.")]
    Plot(crate::analysis::plot::PlotArgs),
    /// Summarize a sweep CSV: each output's mean, min and max, exits and non-convergence, per group of rows.
    #[command(after_help = "\
Examples:
  moatsweep summarize results/quickstart.csv
  moatsweep summarize results/quickstart.csv --by firm.open.release_month
  moatsweep summarize results/quickstart.csv --by firm.open.release_month --by model.ad_uplift --out /tmp/summary.csv

Without --by every row is one group; an axis with more than 100 distinct values is grouped in 25 bins. --out writes one CSV row per group instead of printing.")]
    Summarize(crate::analysis::summarize::SummarizeArgs),
    /// Which parameters move each output: Sobol indices (saltelli sweep) or Morris elementary effects (morris sweep).
    #[command(after_help = "\
Examples:
  moatsweep run configs/sensitivity.toml --backend cpu
  moatsweep sensitivity results/sensitivity.csv
  moatsweep sensitivity results/sensitivity.csv --outputs npv.open,exit_month.challenger --plot /tmp/sobol.png

Every output column is analysed in one pass (or those of --outputs): S1, ST (and S2 with
second_order = true) or mu, mu_star, sigma, with the estimators of SALib 1.6, and bootstrap
intervals over base points or trajectories. A block with an empty, non-finite or
non-converged row is left out of that output. Writes a tidy CSV with the columns
output,index,parameter,parameter2,value,conf.")]
    Sensitivity(crate::analysis::sensitivity::SensitivityArgs),
    /// Where in parameter space an outcome happens: PRIM scenario discovery (as EMA Workbench) on any sweep CSV.
    #[command(after_help = "\
Examples:
  moatsweep discover results/release-timing-lhs.csv --where \"exit_month.challenger >= 0\"
  moatsweep discover results/release-timing-lhs.csv --where \"exit_month.challenger >= 0 and npv.open > 0\" --plot /tmp/tradeoff.png
  moatsweep discover results/quickstart.csv --where \"npv.open > 2e10\" --inputs model.ad_uplift,firm.open.release_month --box 12

Comparisons (<, <=, >, >=, ==, !=) of a column with a number, joined by and, or, not and
parentheses; an empty cell compares false. exit_month.<firm> is -1 when the firm did not exit.")]
    Discover(crate::analysis::discover::DiscoverArgs),
}
