//! The commands: what each does with its parsed flags ([`crate::cli`]). `run` drives
//! the [`crate::engine`]; `merge` joins shards, `check` checks files against their
//! manifests, `validate`, `scenario` and `params` inspect ([`inspect`]), `bench`
//! measures; the analyses (`plot`, `summarize`, `sensitivity`, `discover`) are in
//! [`crate::analysis`].

pub mod bench;
pub mod calibrate;
pub mod check;
pub mod inspect;
pub mod merge;

use std::io::Write;

use crate::cli::{Cli, Command};
use crate::engine::{RowSelection, RunOptions};

/// Runs the parsed command.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    if let Some(n) = cli.threads {
        if n == 0 {
            return Err(crate::InputError("--threads must be at least 1".into()).into());
        }
        if n > crate::cli::MAX_THREADS {
            return Err(crate::InputError(format!(
                "--threads {n} is more than the limit of {} threads (each thread costs memory and start-up time; the default is one per core)",
                crate::cli::MAX_THREADS
            ))
            .into());
        }
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global()?;
    }
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Run {
            config,
            out,
            backend,
            adapter,
            verify,
            limit,
            rows,
            shard,
            shards,
            resume,
            quiet,
            chunk_rows,
            dispatch_budget,
            expand,
            format,
            allow_nonfinite,
        } => {
            let command = std::env::args().collect();
            let rows = match (limit, rows, shard) {
                (Some(n), _, _) => RowSelection::First(n),
                (_, _, Some(s)) if s.is_auto() => RowSelection::shard_from_env(shards, |v| std::env::var(v).ok())?,
                (_, Some(r), _) | (_, _, Some(r)) => r,
                _ => RowSelection::All,
            };
            let report = crate::engine::run(
                &config,
                &RunOptions {
                    out,
                    backend,
                    rows,
                    adapter,
                    verify,
                    resume,
                    quiet,
                    chunk_rows,
                    dispatch_budget: Some(dispatch_budget),
                    expand,
                    format,
                    allow_nonfinite,
                },
                command,
            )?;
            if !quiet {
                if let Some(t) = report.transfer {
                    eprintln!("{}", crate::commands::bench::transfer_summary(&t, report.rows.end - report.rows.start));
                }
                eprintln!(
                    "wrote rows {}..{} to {} in {:.2} s on {} ({} non-converged); manifest {}",
                    report.rows.start,
                    report.rows.end,
                    report.output.display(),
                    report.wall_time_s,
                    report.backend,
                    report.nonconverged_scenarios,
                    report.manifest.display()
                );
            }
        }
        Command::Validate { config } => inspect::validate(&config, &mut stdout)?,
        Command::Scenario { config, index, set } => inspect::scenario(&config, index, &set, &mut stdout)?,
        Command::Bench { config, rows, adapter, dispatch_budget, expand, cpu_rows } => {
            let rows = bench::Rows { gpu: rows, cpu: cpu_rows.unwrap_or(rows) };
            bench::bench(&config, rows, adapter.as_deref(), dispatch_budget, expand, &mut stdout)?
        }
        Command::Params { outputs: false } => inspect::params_table(&mut stdout)?,
        Command::Params { outputs: true } => inspect::outputs_table(&mut stdout)?,
        Command::Adapters => {
            let adapters = crate::gpu::list_adapters();
            if adapters.is_empty() {
                writeln!(stdout, "no GPU adapter found (run uses the CPU backend)")?;
            }
            for a in adapters {
                writeln!(stdout, "{a}")?;
            }
        }
        Command::Merge { out, inputs } => {
            let rows = merge::merge(&out, &inputs, std::env::args().collect())?;
            eprintln!("merged {} files, {rows} rows, into {}", inputs.len(), out.display());
        }
        Command::Calibrate { config, observed, out, outside_share, usage, margin, sweep } => {
            let req = calibrate::Request { config, observed, out, outside_share, usage, margin, sweep };
            calibrate::calibrate(&req, &mut stdout)?
        }
        Command::Check { files } => check::check(&files, &mut stdout)?,
        Command::Plot(args) => crate::analysis::plot::run(&args, &mut stdout)?,
        Command::Summarize(args) => crate::analysis::summarize::run(&args, &mut stdout)?,
        Command::Sensitivity(args) => crate::analysis::sensitivity::run(&args, &mut stdout)?,
        Command::Discover(args) => crate::analysis::discover::run(&args, &mut stdout)?,
    }
    stdout.flush()?;
    Ok(())
}
