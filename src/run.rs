//! `moatsweep run`: config -> plan -> backend -> ordered CSV writer -> manifest,
//! for the whole sweep or a block of its rows, resumable after an interruption.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use anyhow::Context;

use crate::InputError;
use crate::backend::Backend;
use crate::backend::cpu::CpuBackend;
use crate::config;
use crate::gpu::{GpuBackend, GpuOptions};
use crate::output::csv::{Checkpoint, CsvSink, INTERRUPTED, Interrupted, header};
use crate::output::manifest::{Manifest, timestamp};
use crate::output::progress::Progress;
use crate::output::{create_partial, manifest_path, partial_path};
use crate::verify::{self, VerifySink};

/// Which backend solves a sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// A hardware GPU when one exists, otherwise the CPU reference.
    Auto,
    /// The f64 CPU reference.
    Cpu,
    /// The f32 GPU kernel on any adapter, software ones included.
    Gpu,
}

/// Which rows of the sweep a run computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowSelection {
    /// Every row.
    All,
    /// The first N rows (`--limit`).
    First(u64),
    /// Rows A..B (`--rows A..B`).
    Range(u64, u64),
    /// The I-th of N contiguous, near-equal blocks (`--shard I/N`).
    Shard(u64, u64),
}

impl RowSelection {
    /// Parses `A..B`.
    pub fn parse_rows(s: &str) -> Result<RowSelection, String> {
        let (a, b) = s.split_once("..").ok_or("expected A..B, e.g. 0..1000 (B excluded)")?;
        let a: u64 = a.trim().parse().map_err(|_| format!("'{a}' is not a row number"))?;
        let b: u64 = b.trim().parse().map_err(|_| format!("'{b}' is not a row number"))?;
        if a >= b {
            return Err(format!("the range {a}..{b} is empty"));
        }
        Ok(RowSelection::Range(a, b))
    }

    /// Parses `I/N`, or `auto` (resolved by [`RowSelection::shard_from_env`]).
    pub fn parse_shard(s: &str) -> Result<RowSelection, String> {
        if s == "auto" {
            return Ok(RowSelection::Shard(u64::MAX, 0));
        }
        let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 0/4 (I from 0)")?;
        let i: u64 = i.trim().parse().map_err(|_| format!("'{i}' is not a shard index"))?;
        let n: u64 = n.trim().parse().map_err(|_| format!("'{n}' is not a shard count"))?;
        if n == 0 || i >= n {
            return Err(format!("shard {i}/{n} does not exist: I runs from 0 to N-1"));
        }
        Ok(RowSelection::Shard(i, n))
    }

    /// Whether this is `--shard auto`, still to be resolved.
    pub fn is_auto(self) -> bool {
        self == RowSelection::Shard(u64::MAX, 0)
    }

    /// `--shard auto`: I/N from a Slurm job array (`SLURM_ARRAY_TASK_ID` minus
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`) or a Kubernetes Indexed
    /// Job (`JOB_COMPLETION_INDEX`, of `--shards N`).
    pub fn shard_from_env(shards: Option<u64>, var: impl Fn(&str) -> Option<String>) -> Result<RowSelection, InputError> {
        let num = |name: &str| -> Result<Option<u64>, InputError> {
            match var(name) {
                None => Ok(None),
                Some(v) => v.trim().parse().map(Some).map_err(|_| InputError(format!("--shard auto: {name}={v} is not a whole number"))),
            }
        };
        let (i, n, source) = if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let n = match (shards, num("SLURM_ARRAY_TASK_COUNT")?) {
                (Some(n), _) | (None, Some(n)) => n,
                (None, None) => return Err(InputError("--shard auto: SLURM_ARRAY_TASK_COUNT is not set; give --shards N".into())),
            };
            let i = id
                .checked_sub(min)
                .ok_or_else(|| InputError(format!("--shard auto: SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")))?;
            (i, n, "SLURM_ARRAY_TASK_ID")
        } else if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            let n = shards.ok_or_else(|| {
                InputError(
                    "--shard auto: JOB_COMPLETION_INDEX is set but the shard count is not; give --shards N (the Job's completions)".into(),
                )
            })?;
            (i, n, "JOB_COMPLETION_INDEX")
        } else {
            return Err(InputError(
                "--shard auto needs a job array: SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (Slurm, sbatch --array) or JOB_COMPLETION_INDEX with --shards N (Kubernetes Indexed Job); neither is set".into(),
            ));
        };
        if n == 0 || i >= n {
            return Err(InputError(format!("--shard auto: {source} gives shard {i} of {n}, which does not exist (I runs from 0 to N-1)")));
        }
        Ok(RowSelection::Shard(i, n))
    }

    /// The rows of a sweep of `total` rows.
    pub fn rows(self, total: u64) -> Result<Range<u64>, InputError> {
        match self {
            RowSelection::All => Ok(0..total),
            RowSelection::First(n) => Ok(0..n.min(total)),
            RowSelection::Range(a, b) if b <= total => Ok(a..b),
            RowSelection::Range(a, b) => Err(InputError(format!("--rows {a}..{b} goes past the sweep's {total} rows"))),
            RowSelection::Shard(i, n) => {
                let at = |k: u64| (k as u128 * total as u128 / n as u128) as u64;
                Ok(at(i)..at(i + 1))
            }
        }
    }

    /// The rows of a sweep of `total` rows made of blocks of `block` rows that are
    /// only cut whole (`what`: a saltelli base point's block or a morris trajectory):
    /// shards split on block boundaries, and `--limit` and `--rows` must fall on them.
    pub fn rows_in_blocks(self, total: u64, block: u64, what: &str) -> Result<Range<u64>, InputError> {
        if block <= 1 {
            return self.rows(total);
        }
        let blocks = total / block;
        let refuse = |flag: String, near: String| {
            InputError(format!("{flag}: this sweep is cut only on whole blocks of {block} rows ({what}); use {near}"))
        };
        match self {
            RowSelection::Shard(i, n) => {
                let at = |k: u64| (k as u128 * blocks as u128 / n as u128) as u64 * block;
                Ok(at(i)..at(i + 1))
            }
            RowSelection::First(n) if n < total && n % block != 0 => {
                Err(refuse(format!("--limit {n}"), format!("a multiple of {block}, e.g. --limit {}", (n / block).max(1) * block)))
            }
            RowSelection::Range(a, b) if b <= total && (a % block != 0 || (b % block != 0 && b != total)) => {
                let (lo, hi) = (a / block * block, b.div_ceil(block) * block);
                Err(refuse(format!("--rows {a}..{b}"), format!("multiples of {block}, e.g. --rows {lo}..{}", hi.min(total))))
            }
            _ => self.rows(total),
        }
    }

    /// The output of a subset: `x.csv` becomes `x.shard-I-of-N.csv` or `x.rows-A-B.csv`
    /// (a subset never overwrites the whole sweep's CSV).
    fn output(self, full: &Path) -> PathBuf {
        let suffix = match self {
            RowSelection::All => return full.to_path_buf(),
            RowSelection::First(n) => format!("rows-0-{n}"),
            RowSelection::Range(a, b) => format!("rows-{a}-{b}"),
            RowSelection::Shard(i, n) => format!("shard-{i}-of-{n}"),
        };
        let stem = full.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
        full.with_file_name(format!("{stem}.{suffix}.csv"))
    }
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub out: Option<PathBuf>,
    pub backend: BackendChoice,
    pub rows: RowSelection,
    /// GPU adapter name (case-insensitive substring).
    pub adapter: Option<String>,
    /// Rows to re-solve on the f64 reference after a GPU run (default 64 then).
    pub verify: Option<u64>,
    pub resume: bool,
    pub quiet: bool,
    /// Rows per chunk (default: the backend's own).
    pub chunk_rows: Option<u64>,
}

/// What a finished run reports.
pub struct RunReport {
    pub output: PathBuf,
    pub manifest: PathBuf,
    pub rows: Range<u64>,
    pub rows_written: u64,
    pub nonconverged_scenarios: u64,
    pub wall_time_s: f64,
    pub backend: String,
}

/// Makes the backend a run asked for. `auto` takes a hardware GPU when one exists
/// and otherwise the CPU reference, saying why on stderr unless `quiet`.
pub fn make_backend(
    choice: BackendChoice,
    chunk_rows: Option<u64>,
    adapter: Option<&str>,
    quiet: bool,
) -> anyhow::Result<Box<dyn Backend>> {
    let cpu = || {
        let mut cpu = CpuBackend::default();
        if let Some(n) = chunk_rows {
            cpu.chunk_rows = n;
        }
        Box::new(cpu)
    };
    let gpu = |allow_software: bool| GpuBackend::new(&GpuOptions { adapter: adapter.map(str::to_string), allow_software, chunk_rows });
    match choice {
        BackendChoice::Cpu => Ok(cpu()),
        BackendChoice::Gpu => Ok(Box::new(gpu(true).context("--backend gpu")?)),
        BackendChoice::Auto => match gpu(false) {
            Ok(g) => Ok(Box::new(g)),
            Err(e) => {
                if !quiet {
                    eprintln!("note: using the CPU backend ({:#})", e);
                }
                Ok(cpu())
            }
        },
    }
}

/// A label for the progress line and the summary.
pub fn backend_label(b: &dyn Backend) -> String {
    let info = b.info();
    match &info.adapter {
        Some(a) => format!("gpu {} ({})", a.get("name").and_then(|n| n.as_str()).unwrap_or("?"), info.precision),
        None => format!("{} {} x{}", info.kind, info.precision, info.threads),
    }
}

/// `<out>.partial.checkpoint`.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    let mut s = partial_path(out).into_os_string();
    s.push(".checkpoint");
    PathBuf::from(s)
}

/// Removes files unless the run completed (or left a checkpoint to resume from).
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in self.0.drain(..) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Runs the sweep of `config_path`.
pub fn run(config_path: &Path, opts: &RunOptions, command: Vec<String>) -> anyhow::Result<RunReport> {
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let loaded = config::load(config_path)?;
    let mut plan = loaded.plan;
    let block_what = if plan.design.morris(0).is_some() { "one morris trajectory" } else { "one saltelli base point" };
    let rows = opts.rows.rows_in_blocks(plan.rows, plan.block_rows(), block_what)?;
    // --out names the whole sweep's output; a shard or row block writes beside it.
    let selection = if rows == (0..plan.rows) { RowSelection::All } else { opts.rows };
    plan.output = selection.output(opts.out.as_ref().unwrap_or(&plan.output));
    let plan = &plan;
    let out = plan.output.clone();

    let mut backend = make_backend(opts.backend, opts.chunk_rows, opts.adapter.as_deref(), opts.quiet)?;
    if backend.info().precision == "f32" {
        warn_f32_tolerance(plan, opts.quiet);
    }
    let label = backend_label(backend.as_ref());
    let info = backend.info();
    let fresh = Checkpoint {
        config_sha256: loaded.sha256.clone(),
        backend: format!("{} {}", info.kind, info.precision),
        rows: [rows.start, rows.end],
        next_row: rows.start,
        bytes: 0,
        nonconverged_scenarios: 0,
    };
    let checkpoint = checkpoint_path(&out);
    let partial = partial_path(&out);

    // Open the output: a fresh `.partial`, or the one a checkpoint describes.
    let (file, start, write_header) = if opts.resume {
        let cp = Checkpoint::read(&checkpoint)
            .map_err(|e| InputError(format!("nothing to resume: cannot read the checkpoint {}: {e}", checkpoint.display())))?;
        let refuse = |what: &str, was: &str, now: &str| {
            InputError(format!(
                "cannot resume {}: {what} changed (checkpoint: {was}; now: {now}); run without --resume to start over",
                partial.display()
            ))
        };
        if cp.config_sha256 != fresh.config_sha256 {
            return Err(refuse("the config", &cp.config_sha256, &fresh.config_sha256).into());
        }
        if cp.backend != fresh.backend {
            return Err(refuse("the backend", &cp.backend, &fresh.backend).into());
        }
        if cp.rows != fresh.rows {
            return Err(refuse("the rows", &format!("{:?}", cp.rows), &format!("{:?}", fresh.rows)).into());
        }
        let mut file =
            OpenOptions::new().write(true).open(&partial).map_err(|e| InputError(format!("cannot resume: {}: {e}", partial.display())))?;
        file.set_len(cp.bytes)?;
        file.seek(SeekFrom::End(0))?;
        (file, cp, false)
    } else {
        let (_, file) = create_partial(&out).map_err(|e| InputError(format!("cannot write the output {}: {e}", partial.display())))?;
        let _ = std::fs::remove_file(&checkpoint);
        (file, fresh, true)
    };
    let resumed_at_row = opts.resume.then_some(start.next_row);
    let manifest_file = manifest_path(&out);
    let manifest_partial = partial_path(&manifest_file);
    let mut cleanup = Cleanup(vec![partial.clone(), checkpoint.clone(), manifest_partial.clone()]);

    // Ctrl-C stops at the next chunk boundary; a second Ctrl-C stops at once (the
    // checkpoint still describes what reached the disk, so --resume works either way).
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::Relaxed) {
            eprintln!("\nstopped at once; continue with --resume");
            std::process::exit(130);
        }
    });
    let progress = Progress::new(rows.end - start.next_row, &label, opts.quiet);
    let mut sink = CsvSink::new(plan, file, write_header, &progress, start.clone(), Some(checkpoint.clone()));
    let verify_rows = match (info.precision, opts.verify) {
        ("f32", k) => k.unwrap_or(verify::DEFAULT_ROWS),
        (_, Some(_)) if !opts.quiet => {
            eprintln!("note: --verify compares a GPU run with the CPU reference; this run is the CPU reference");
            0
        }
        _ => 0,
    };
    let mut checked = VerifySink::new(&mut sink, start.next_row..rows.end, verify_rows);
    let solved = backend.run(plan, start.next_row..rows.end, &mut checked);
    let kept = std::mem::take(&mut checked.kept);
    let (rows_written, nonconverged_scenarios, next_row) = (sink.rows_written, sink.nonconverged_scenarios, sink.next_row);
    let written = sink.finish();
    progress.finish();
    if let Err(e) = solved.and(written) {
        // Keep what reached the disk: the checkpoint says where to resume.
        if checkpoint.exists() {
            cleanup.0.clear();
            let mut args: Vec<String> = std::env::args().collect();
            if !args.iter().any(|a| a == "--resume") {
                args.push("--resume".into());
            }
            let done = Checkpoint::read(&checkpoint).map(|c| c.next_row).unwrap_or(next_row);
            eprintln!(
                "rows {}..{done} of {}..{} are in {}; continue with:\n  {}",
                rows.start,
                rows.start,
                rows.end,
                partial.display(),
                args.join(" ")
            );
        }
        return Err(e);
    }
    anyhow::ensure!(next_row == rows.end, "internal error: stopped at row {next_row} of {}", rows.end);

    let verified = (verify_rows > 0).then(|| verify::verify(plan, &kept));
    if let Some(v) = &verified {
        if v.beyond_tolerance > 0 {
            eprintln!(
                "warning: --verify: {} of {} re-solved rows deviate from the f64 reference beyond the documented tolerance, e.g. {}",
                v.beyond_tolerance,
                v.rows_checked,
                v.examples.first().map_or("", String::as_str)
            );
        }
    }

    let finished_at = SystemTime::now();
    let wall_time_s = t0.elapsed().as_secs_f64();
    let manifest = Manifest {
        moatsweep_version: env!("CARGO_PKG_VERSION"),
        model: "MODEL.md version 1",
        command,
        config_path: config_path.display().to_string(),
        config_sha256: loaded.sha256.clone(),
        config: plan.resolved_json(),
        backend: info,
        output: out.display().to_string(),
        columns: header(plan),
        scenarios: plan.rows,
        rows: [rows.start, rows.end],
        rows_written: rows.end - rows.start,
        nonconverged_scenarios,
        resumed_at_row,
        verify: verified,
        kernel_time_s: backend.kernel_seconds(),
        wall_time_s,
        started_at: timestamp(started_at),
        finished_at: timestamp(finished_at),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    std::fs::write(&manifest_partial, json).with_context(|| format!("writing {}", manifest_partial.display()))?;
    std::fs::rename(&partial, &out).with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    std::fs::rename(&manifest_partial, &manifest_file).with_context(|| format!("writing {}", manifest_file.display()))?;
    drop(cleanup); // removes the checkpoint; the other two are renamed

    Ok(RunReport { output: out, manifest: manifest_file, rows, rows_written, nonconverged_scenarios, wall_time_s, backend: label })
}

/// MODEL.md section 3: one rounding step of a markup near 10 is about 1e-7 relative
/// in f32, so f32 needs tol >= about 2e-7.
pub const F32_MIN_TOL: f64 = 2e-7;

fn warn_f32_tolerance(plan: &crate::sweep::Plan, quiet: bool) {
    let tol = plan.axes.iter().find(|a| a.param.spec.name == "tol").map_or(plan.base.model.tol, |a| a.values.extent().0);
    if tol < F32_MIN_TOL && !quiet {
        eprintln!(
            "warning: model.tol = {tol} is below what f32 can resolve (about {F32_MIN_TOL}, MODEL.md section 3): GPU months may not converge; use --backend cpu for such a tolerance"
        );
    }
}

/// Whether an error is a Ctrl-C stop (exit status 130).
pub fn is_interrupt(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Interrupted>().is_some()
}
