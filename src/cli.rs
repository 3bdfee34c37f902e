//! Command-line interface: flags in, a validated command out, dispatched here.

use std::io::Write;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::run::{BackendChoice, RunOptions};

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

Docs: docs/model.md (the model), docs/config.md (the config format)."
)]
pub struct Cli {
    /// Threads for solving and formatting (default: all cores).
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

The CSV is written to <out>.partial and renamed to <out> only when complete.")]
    Run {
        /// The sweep config (TOML, version 1).
        config: PathBuf,
        /// Output CSV (default: [output] path of the config, or results/<name>.csv).
        #[arg(long, value_name = "PATH")]
        out: Option<PathBuf>,
        /// Which backend solves the scenarios.
        #[arg(long, value_enum, default_value_t = BackendChoice::Auto)]
        backend: BackendChoice,
        /// Solve only the first N rows.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
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

Rows beyond the config's row count wrap around to row 0.")]
    Bench {
        /// Config whose scenarios are solved.
        #[arg(default_value = "configs/quickstart.toml")]
        config: PathBuf,
        /// Scenarios per measurement.
        #[arg(long, default_value_t = 200_000)]
        rows: u64,
    },
    /// Print the table of every model parameter (path, default, range, unit, meaning, source) as Markdown.
    Params,
}

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    if let Some(n) = cli.threads {
        if n == 0 {
            return Err(crate::InputError("--threads must be at least 1".into()).into());
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global()?;
    }
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Run { config, out, backend, limit, quiet } => {
            let command = std::env::args().collect();
            let report = crate::run::run(&config, &RunOptions { out, backend, limit, quiet }, command)?;
            if !quiet {
                eprintln!(
                    "wrote {} rows to {} in {:.2} s on {} ({} non-converged); manifest {}",
                    report.rows_written,
                    report.output.display(),
                    report.wall_time_s,
                    report.backend,
                    report.nonconverged_scenarios,
                    report.manifest.display()
                );
            }
        }
        Command::Validate { config } => crate::inspect::validate(&config, &mut stdout)?,
        Command::Scenario { config, index, set } => crate::inspect::scenario(&config, index, &set, &mut stdout)?,
        Command::Bench { config, rows } => crate::bench::bench(&config, rows, &mut stdout)?,
        Command::Params => crate::inspect::params_table(&mut stdout)?,
    }
    stdout.flush()?;
    Ok(())
}
