//! `moatsweep run`: config -> plan -> backend -> ordered CSV writer -> manifest,
//! for the whole sweep or a block of its rows, resumable after an interruption.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::InputError;
use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, Precision};
use crate::config;
use crate::gpu::{GpuBackend, GpuOptions};
use crate::interrupt;
use crate::output::checkpoint::{Checkpoint, checkpoint_path};
use crate::output::csv::header;
use crate::output::manifest::{MODEL, Manifest, timestamp};
use crate::output::parquet;
use crate::output::progress::Progress;
use crate::output::sink::{CsvEncoder, Encoder, LogFile, OnDurable, OutputFile, RowSink, Written};
use crate::output::{FileError, OutputFormat, create_partial, hash_prefix, hex, manifest_path, partial_path};
use crate::sweep::Plan;
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
        // The last block may be short (a reduced sweep's rows need not fill whole blocks).
        let blocks = total.div_ceil(block);
        let refuse = |flag: String, near: String| {
            InputError(format!("{flag}: this sweep is cut only on whole blocks of {block} rows ({what}); use {near}"))
        };
        match self {
            RowSelection::Shard(i, n) => {
                let at = |k: u64| ((k as u128 * blocks as u128 / n as u128) as u64 * block).min(total);
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
        let ext = full.extension().map_or("csv".into(), |e| e.to_string_lossy().into_owned());
        full.with_file_name(format!("{stem}.{suffix}.{ext}"))
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
    /// `--format`: CSV or Parquet, over the config's `[output] format`.
    pub format: Option<OutputFormat>,
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
        Some(a) => format!("gpu {} ({})", a.name, info.precision),
        None => format!("{} {} x{}", info.kind, info.precision, info.threads),
    }
}

/// The files of a run's output.
pub(crate) struct Files {
    pub out: PathBuf,
    pub partial: PathBuf,
    pub checkpoint: PathBuf,
    pub manifest: PathBuf,
    pub manifest_partial: PathBuf,
    /// Parquet's row group log (`<out>.partial.rowgroups`).
    pub log: PathBuf,
}

impl Files {
    pub(crate) fn of(out: &Path) -> Files {
        let manifest = manifest_path(out);
        Files {
            out: out.to_path_buf(),
            partial: partial_path(out),
            checkpoint: checkpoint_path(out),
            manifest_partial: partial_path(&manifest),
            manifest,
            log: parquet::log_path(out),
        }
    }

    /// After a failure: keeps the `.partial` and its checkpoint when some rows of
    /// this run are on disk (and prints how to continue), else removes them.
    pub(crate) fn keep_or_remove(&self, rows: &Range<u64>, command: &[String]) {
        let _ = std::fs::remove_file(&self.manifest_partial);
        let kept = Checkpoint::read(&self.checkpoint).ok().filter(|c| c.next_row > rows.start && self.partial.exists());
        let Some(cp) = kept else {
            let _ = std::fs::remove_file(&self.partial);
            let _ = std::fs::remove_file(&self.checkpoint);
            let _ = std::fs::remove_file(&self.log);
            return;
        };
        let mut args = command.to_vec();
        if !args.iter().any(|a| a == "--resume") {
            args.push("--resume".into());
        }
        eprintln!(
            "rows {}..{} of {}..{} are in {}; continue with:\n  {}",
            rows.start,
            cp.next_row,
            rows.start,
            rows.end,
            self.partial.display(),
            args.join(" ")
        );
    }
}

/// A config loaded and the rows of it this run writes (positions, for a reduced
/// run with `best`).
pub(crate) struct Job {
    pub plan: Plan,
    pub config_sha256: String,
    pub rows: Range<u64>,
}

impl Job {
    /// The checkpoint of a run that has written nothing yet (`reduce_state`: a
    /// reduced run's empty state).
    pub(crate) fn start_checkpoint(&self, info: &crate::backend::BackendInfo, reduce_state: Option<String>) -> Checkpoint {
        Checkpoint {
            moatsweep_version: env!("CARGO_PKG_VERSION").into(),
            model: MODEL.into(),
            config_sha256: self.config_sha256.clone(),
            backend: info.kind,
            precision: info.precision,
            rows: [self.rows.start, self.rows.end],
            next_row: self.rows.start,
            bytes: 0,
            sha256: hex(&Sha256::new().finalize()),
            nonconverged_scenarios: 0,
            reduce_state,
            log_bytes: None,
            log_sha256: None,
        }
    }

    fn load(config_path: &Path, opts: &RunOptions) -> anyhow::Result<Job> {
        let loaded = config::load(config_path)?;
        let mut plan = loaded.plan;
        let (block, block_what) = match &plan.reduce {
            Some(rp) => (rp.block_rows, "one reduction block"),
            None if plan.design.morris(0).is_some() => (plan.block_rows(), "one morris trajectory"),
            None => (plan.block_rows(), "one saltelli base point"),
        };
        let rows = opts.rows.rows_in_blocks(plan.rows, block, block_what)?;
        // --out names the whole sweep's output; a shard or row block writes beside it.
        if let Some(f) = opts.format.filter(|f| *f != plan.format) {
            plan.format = f;
            plan.output = f.with_extension(&plan.output);
        }
        let selection = if rows == (0..plan.rows) { RowSelection::All } else { opts.rows };
        plan.output = selection.output(opts.out.as_ref().unwrap_or(&plan.output));
        Ok(Job { plan, config_sha256: loaded.sha256, rows })
    }
}

/// The output opened for writing, and the checkpoint it starts from.
struct Opened {
    file: OutputFile,
    header: bool,
    checkpoint: Checkpoint,
    /// Parquet: the row group log, and the row groups already in the file.
    log: Option<LogFile>,
    row_groups: Vec<parquet::RowGroupMeta>,
}

/// A fresh `.partial` (and a checkpoint of its empty state), replacing any earlier one.
fn open_fresh(files: &Files, start: Checkpoint, format: OutputFormat) -> anyhow::Result<Opened> {
    let (_, file) =
        create_partial(&files.out).map_err(|e| InputError(format!("cannot write the output {}: {e}", files.partial.display())))?;
    let _ = std::fs::remove_file(&files.checkpoint);
    let log = match format {
        OutputFormat::Csv => None,
        OutputFormat::Parquet => {
            let f = std::fs::File::create(&files.log).map_err(|e| FileError::new("writing", &files.log, e))?;
            Some(LogFile { file: f, path: files.log.clone(), bytes: 0, hash: Sha256::new() })
        }
    };
    let start = match format {
        OutputFormat::Csv => start,
        OutputFormat::Parquet => Checkpoint { log_bytes: Some(0), log_sha256: Some(hex(&Sha256::new().finalize())), ..start },
    };
    if let Err(e) = start.write(&files.checkpoint) {
        let _ = std::fs::remove_file(&files.partial);
        return Err(e.into());
    }
    let file = OutputFile { file, path: files.partial.clone(), bytes: 0, hash: Sha256::new() };
    Ok(Opened { file, header: true, checkpoint: start, log, row_groups: Vec::new() })
}

/// The `.partial` a checkpoint describes, cut back to the bytes the checkpoint
/// vouches for, once their SHA-256 matches and nothing that shapes the rows changed.
fn open_resumed(files: &Files, now: Checkpoint, format: OutputFormat) -> anyhow::Result<Opened> {
    let cp = read_checkpoint(files)?;
    check_resumable(&cp, &now, &files.partial)?;
    let file = reopen(&files.partial, &cp)?;
    let (log, row_groups) = match format {
        OutputFormat::Csv => (None, Vec::new()),
        OutputFormat::Parquet => reopen_log(&files.log, &cp)?,
    };
    Ok(Opened { file, header: cp.bytes == 0, checkpoint: cp, log, row_groups })
}

/// Parquet's row group log, cut back to the bytes the checkpoint vouches for once
/// their SHA-256 matches, and the row groups it holds.
pub(crate) fn reopen_log(path: &Path, cp: &Checkpoint) -> anyhow::Result<(Option<LogFile>, Vec<parquet::RowGroupMeta>)> {
    let shown = path.display();
    let (Some(len), Some(sha)) = (cp.log_bytes, cp.log_sha256.as_ref()) else {
        return Err(InputError(format!(
            "cannot resume: the checkpoint records no row group log for {shown}; run without --resume to start over"
        ))
        .into());
    };
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| InputError(format!("cannot resume: {shown}: {e}")))?;
    let hash = match hash_prefix(&mut file, len).map_err(|e| FileError::new("reading", path, e))? {
        Some(h) if hex(&h.clone().finalize()) == *sha => h,
        _ => {
            return Err(InputError(format!(
                "cannot resume: {shown} does not hold the {len} bytes its checkpoint records; run without --resume to start over"
            ))
            .into());
        }
    };
    let cut = file.set_len(len).and_then(|()| file.seek(SeekFrom::End(0)));
    cut.map_err(|e| FileError::new("writing", path, e))?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(path).map_err(|e| FileError::new("reading", path, e))?, len),
        &mut bytes,
    )
    .map_err(|e| FileError::new("reading", path, e))?;
    let groups = parquet::read_log(&bytes).map_err(|e| InputError(format!("cannot resume: {shown}: {e:#}")))?;
    Ok((Some(LogFile { file, path: path.to_path_buf(), bytes: len, hash }), groups))
}

/// The checkpoint of `files`, or an error saying there is nothing to resume.
pub(crate) fn read_checkpoint(files: &Files) -> anyhow::Result<Checkpoint> {
    Ok(Checkpoint::read(&files.checkpoint)
        .map_err(|e| InputError(format!("nothing to resume: cannot read the checkpoint {}: {e}", files.checkpoint.display())))?)
}

/// Refuses to resume when the config, backend, rows or program changed since `cp`.
pub(crate) fn check_resumable(cp: &Checkpoint, now: &Checkpoint, partial: &Path) -> anyhow::Result<()> {
    let partial = partial.display();
    let refuse = |what: &str, was: &dyn std::fmt::Display, is: &dyn std::fmt::Display| -> anyhow::Error {
        InputError(format!("cannot resume {partial}: {what} changed (checkpoint: {was}; now: {is}); run without --resume to start over"))
            .into()
    };
    if cp.config_sha256 != now.config_sha256 {
        return Err(refuse("the config", &cp.config_sha256, &now.config_sha256));
    }
    if (cp.backend, cp.precision) != (now.backend, now.precision) {
        return Err(refuse("the backend", &format!("{} {}", cp.backend, cp.precision), &format!("{} {}", now.backend, now.precision)));
    }
    if cp.rows != now.rows {
        return Err(refuse("the rows", &format!("{:?}", cp.rows), &format!("{:?}", now.rows)));
    }
    if (&cp.moatsweep_version, &cp.model) != (&now.moatsweep_version, &now.model) {
        let version = |c: &Checkpoint| format!("moatsweep {}, {}", c.moatsweep_version, c.model);
        return Err(refuse("the program", &version(&cp), &version(&now)));
    }
    Ok(())
}

/// Opens the `.partial` at `path` for appending after the `cp.bytes` it vouches for,
/// once their SHA-256 matches (bytes after them, an unfinished chunk, are dropped).
pub(crate) fn reopen(path: &Path, cp: &Checkpoint) -> anyhow::Result<OutputFile> {
    let partial = path.display();
    let mut file =
        OpenOptions::new().read(true).write(true).open(path).map_err(|e| InputError(format!("cannot resume: {partial}: {e}")))?;
    let hash = match hash_prefix(&mut file, cp.bytes).map_err(|e| FileError::new("reading", path, e))? {
        Some(h) if hex(&h.clone().finalize()) == cp.sha256 => h,
        Some(_) => {
            return Err(InputError(format!(
                "cannot resume {partial}: its first {} bytes do not match the SHA-256 in its checkpoint (the file changed after they were written); run without --resume to start over",
                cp.bytes
            ))
            .into());
        }
        None => {
            return Err(InputError(format!(
                "cannot resume {partial}: it is shorter than the {} bytes its checkpoint records; run without --resume to start over",
                cp.bytes
            ))
            .into());
        }
    };
    // Bytes past the checkpoint are a chunk that was not finished: drop them.
    let cut = file.set_len(cp.bytes).and_then(|()| file.seek(SeekFrom::End(0)));
    cut.map_err(|e| FileError::new("writing", path, e))?;
    Ok(OutputFile { file, path: path.to_path_buf(), bytes: cp.bytes, hash })
}

/// What the solving step leaves for the manifest.
struct Solved {
    written: Written,
    /// GPU rows kept for `--verify`.
    kept: Vec<(u64, crate::model::Outcome<f32>)>,
    verify_rows: u64,
}

/// Solves the rows after the checkpoint, streaming them to the `.partial` and
/// recording a checkpoint after every chunk that reached the disk.
fn solve(job: &Job, backend: &mut dyn Backend, opened: Opened, files: &Files, label: &str, opts: &RunOptions) -> anyhow::Result<Solved> {
    let from = opened.checkpoint.next_row;
    let progress = Progress::new(job.rows.end - from, label, opts.quiet);
    let (base, path) = (opened.checkpoint.clone(), files.checkpoint.clone());
    let record: OnDurable = Box::new(move |w: &Written| {
        let cp = Checkpoint {
            next_row: w.next_row,
            bytes: w.bytes,
            sha256: w.sha256.clone(),
            nonconverged_scenarios: w.nonconverged_scenarios,
            log_bytes: w.log.as_ref().map(|l| l.0),
            log_sha256: w.log.as_ref().map(|l| l.1.clone()),
            ..base.clone()
        };
        Ok(cp.write(&path)?)
    });
    let nonconverged = opened.checkpoint.nonconverged_scenarios;
    let info = backend.info();
    let encoder = row_encoder(job, info.kind, info.precision, from, opened.row_groups)?;
    let mut sink = RowSink::with_encoder(encoder, opened.file, opened.log, opened.header, &progress, from, nonconverged, Some(record));
    let verify_rows = match (backend.info().precision, opts.verify) {
        (Precision::F32, k) => k.unwrap_or(verify::DEFAULT_ROWS),
        (Precision::F64, Some(_)) if !opts.quiet => {
            eprintln!("note: --verify compares a GPU run with the CPU reference; this run is the CPU reference");
            0
        }
        (Precision::F64, _) => 0,
    };
    let mut checked = VerifySink::new(&mut sink, from..job.rows.end, verify_rows);
    let solved = backend.run(&job.plan, from..job.rows.end, &mut checked);
    let kept = std::mem::take(&mut checked.kept);
    let written = sink.finish();
    progress.finish();
    solved?;
    let written = written?;
    anyhow::ensure!(written.next_row == job.rows.end, "internal error: stopped at row {} of {}", written.next_row, job.rows.end);
    Ok(Solved { written, kept, verify_rows })
}

/// The encoder of a job's rows file: CSV, or Parquet continuing after `row_groups`.
pub(crate) fn row_encoder<'p>(
    job: &'p Job,
    kind: crate::backend::BackendKind,
    precision: Precision,
    from: u64,
    row_groups: Vec<parquet::RowGroupMeta>,
) -> anyhow::Result<Box<dyn Encoder + 'p>> {
    let plan = &job.plan;
    Ok(match plan.format {
        OutputFormat::Csv => Box::new(CsvEncoder { plan }),
        OutputFormat::Parquet => {
            let layout = parquet::Layout::of(plan, precision)?;
            let provenance = parquet::provenance(plan, &job.config_sha256, kind, precision, [job.rows.start, job.rows.end]);
            let offset = row_groups.iter().map(parquet::end_of).max().unwrap_or(0);
            Box::new(parquet::ParquetEncoder::new(Some(plan), layout, precision, &provenance, from, offset, row_groups))
        }
    })
}

/// Checks the kept GPU rows on the f64 reference (warning when any deviate beyond
/// tolerance) and returns the report for the manifest.
fn verify_report(plan: &Plan, solved: &Solved, quiet: bool) -> Option<verify::Report> {
    if solved.verify_rows == 0 {
        return None;
    }
    let v = verify::verify(plan, &plan.firm_names, &solved.kept);
    if !quiet {
        eprintln!("--verify: {}", v.summary());
    }
    if !v.within_caps {
        eprintln!(
            "warning: --verify: more rows were exempted from comparison or admitted only through the probe than the caps allow ({})",
            v.summary()
        );
    }
    if v.beyond_tolerance > 0 {
        eprintln!(
            "warning: --verify: {} of {} re-solved rows deviate from the f64 reference beyond the documented tolerance, e.g. {}",
            v.beyond_tolerance,
            v.rows_checked,
            v.examples.first().map_or("", String::as_str)
        );
    }
    Some(v)
}

/// Runs the sweep of `config_path`.
pub fn run(config_path: &Path, opts: &RunOptions, command: Vec<String>) -> anyhow::Result<RunReport> {
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let job = Job::load(config_path, opts)?;
    if job.plan.reduce.is_some() {
        return crate::reduce::run::run(config_path, job, opts, command, (started_at, t0));
    }
    let mut backend = make_backend(opts.backend, opts.chunk_rows, opts.adapter.as_deref(), opts.quiet)?;
    let info = backend.info();
    if info.precision == Precision::F32 {
        warn_f32_tolerance(&job.plan, opts.quiet);
    }
    let label = backend_label(backend.as_ref());
    let files = Files::of(&job.plan.output);

    // The first signal stops at the next chunk boundary; the handler is in place
    // before the first checkpoint exists.
    interrupt::install();
    let start = job.start_checkpoint(&info, None);
    let format = job.plan.format;
    let opened = if opts.resume { open_resumed(&files, start, format)? } else { open_fresh(&files, start, format)? };
    let resumed_at_row = opts.resume.then_some(opened.checkpoint.next_row);

    let finished = solve(&job, backend.as_mut(), opened, &files, &label, opts).and_then(|solved| {
        let manifest = Manifest {
            moatsweep_version: env!("CARGO_PKG_VERSION").into(),
            model: MODEL.into(),
            command: command.clone(),
            config_path: config_path.display().to_string(),
            config_sha256: job.config_sha256.clone(),
            config: job.plan.resolved(),
            backend: info,
            output: files.out.display().to_string(),
            format: (format == OutputFormat::Parquet).then_some(format),
            sha256: Some(solved.written.sha256.clone()),
            bytes: Some(solved.written.bytes),
            columns: header(&job.plan),
            scenarios: job.plan.rows,
            rows: [job.rows.start, job.rows.end],
            rows_written: job.rows.end - job.rows.start,
            nonconverged_scenarios: solved.written.nonconverged_scenarios,
            resumed_at_row,
            merged_from: None,
            verify: verify_report(&job.plan, &solved, opts.quiet),
            kernel_time_s: backend.kernel_seconds(),
            wall_time_s: t0.elapsed().as_secs_f64(),
            started_at: timestamp(started_at),
            finished_at: timestamp(SystemTime::now()),
            reduce: None,
        };
        write_final(&files, &manifest)?;
        Ok(manifest)
    });
    let manifest = match finished {
        Ok(m) => m,
        Err(e) => {
            files.keep_or_remove(&job.rows, &command);
            return Err(e);
        }
    };
    Ok(RunReport {
        output: files.out,
        manifest: files.manifest,
        rows: job.rows,
        rows_written: manifest.rows_written,
        nonconverged_scenarios: manifest.nonconverged_scenarios,
        wall_time_s: manifest.wall_time_s,
        backend: label,
    })
}

/// Writes the manifest beside the `.partial`, then renames both into place and
/// removes the checkpoint.
pub(crate) fn write_final(files: &Files, manifest: &Manifest) -> anyhow::Result<()> {
    manifest.write(&files.manifest_partial)?;
    let rename = |from: &Path, to: &Path| std::fs::rename(from, to).map_err(|e| FileError::new("renaming", from, e));
    rename(&files.partial, &files.out)?;
    rename(&files.manifest_partial, &files.manifest)?;
    let _ = std::fs::remove_file(&files.checkpoint);
    let _ = std::fs::remove_file(&files.log);
    Ok(())
}

/// docs/model.md section 3: one rounding step of a markup near 10 is about 1e-7 relative
/// in f32, so f32 needs tol >= about 2e-7.
pub const F32_MIN_TOL: f64 = 2e-7;

pub(crate) fn warn_f32_tolerance(plan: &Plan, quiet: bool) {
    let tol = plan.axes.iter().find(|a| a.param.spec.name == "tol").map_or(plan.base.model.tol, |a| a.values.extent().0);
    if tol < F32_MIN_TOL && !quiet {
        eprintln!(
            "warning: model.tol = {tol} is below what f32 can resolve (about {F32_MIN_TOL}, docs/model.md section 3): GPU months may not converge; use --backend cpu for such a tolerance"
        );
    }
}
