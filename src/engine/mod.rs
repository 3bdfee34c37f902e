//! The run engine: one driver for every job a sweep can be (rows to CSV or
//! Parquet, a reduction, later a game). It loads the config and the rows this run
//! covers ([`Job`]), makes the backend, opens the job's files through one output
//! transaction ([`crate::output::transaction`]: fresh, or resumed from the
//! checkpoint), and drives the solve: each chunk goes to the job's outputs, the
//! progress line advances, a checkpoint is recorded when one is due, and a signal
//! stops the run at a chunk boundary. At the end the job's outputs become files and
//! manifests ([`Manifest::for_run`]) committed together; after a failure what is
//! resumable is kept, else removed.
//!
//! A job kind is a [`JobOutputs`]: what a chunk does to its outputs, where they
//! can be checkpointed, what they leave at the end. [`rows`] writes the rows;
//! [`reduced`] reduces them (`[reduce]`), on the device where the backend can.

pub mod reduced;
pub mod rows;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::InputError;
use crate::backend::cpu::CpuBackend;
use crate::backend::device::{DeviceChunk, DeviceSink};
use crate::backend::{Backend, BackendInfo, ChunkSink, Outcomes, Precision};
use crate::config;
use crate::gpu::{GpuBackend, GpuOptions};
use crate::interrupt::{self, Interrupted};
use crate::model::outputs::Column;
use crate::output::checkpoint::Checkpoint;
use crate::output::manifest::{Content, MODEL, Manifest, RunFacts, timestamp};
use crate::output::progress::Progress;
use crate::output::transaction::{Final, Stream, Transaction};
use crate::output::{OutputFormat, hex};
use crate::reduce::ReducePlan;
use crate::sweep::Plan;
use crate::sweep::provenance::OutputSpec;

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

/// Where a GPU run makes its scenarios (`--expand`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ExpandChoice {
    /// On the device where the design allows it, else on the host.
    #[default]
    Auto,
    /// Packed on the host and uploaded, row by row.
    Host,
    /// On the device from the plan; an error where the plan does not allow it.
    Device,
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
    pub fn output(self, full: &Path) -> PathBuf {
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
    /// `--dispatch-budget`: seconds one GPU submission may take (default 0.5).
    pub dispatch_budget: Option<f64>,
    /// `--expand`: where a GPU run makes its scenarios.
    pub expand: ExpandChoice,
    /// `--format`: CSV or Parquet, over the config's `[output] format`.
    pub format: Option<OutputFormat>,
    /// `--allow-nonfinite`: a run with NaN or infinite output values exits 0
    /// (without it, 1 once its files are complete).
    pub allow_nonfinite: bool,
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
    /// A GPU run's traffic and dispatch times.
    pub transfer: Option<crate::backend::TransferStats>,
}

/// Makes the backend a run asked for. `auto` takes a hardware GPU when one exists
/// and otherwise the CPU reference, saying why on stderr unless `quiet`.
pub fn make_backend(
    choice: BackendChoice,
    chunk_rows: Option<u64>,
    dispatch_budget: Option<f64>,
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
    let gpu = |allow_software: bool| {
        GpuBackend::new(&GpuOptions { adapter: adapter.map(str::to_string), allow_software, chunk_rows, dispatch_budget })
    };
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

/// Has a GPU backend make the job's scenarios on the device (`--expand`): where
/// `choice` allows it and the plan can be made there ([`crate::gpu::expand::program`]).
pub fn expand_on_device(job: &Job, backend: &mut dyn Backend, choice: ExpandChoice) -> anyhow::Result<()> {
    let on_gpu = backend.info().kind == crate::backend::BackendKind::Gpu;
    let program = match (choice, on_gpu) {
        (ExpandChoice::Host, _) => return Ok(()),
        (ExpandChoice::Device, false) => {
            anyhow::bail!("--expand device: this run is on the CPU backend, which has no device to make rows on")
        }
        (ExpandChoice::Auto, false) => return Ok(()),
        (_, true) => device_program(&job.plan, job.reduce.as_ref(), None),
    };
    match program {
        Ok(words) => backend.set_device_rows(Some(words)),
        Err(why) if choice == ExpandChoice::Device => {
            anyhow::bail!("--expand device: {why}, so this plan's rows cannot be made on the device; --expand host packs them on the host")
        }
        Err(_) => Ok(()),
    }
}

/// The device program of `plan`'s positions (reordered by `reduce`; repeating
/// every `period` positions), or why there is none.
pub fn device_program(plan: &Plan, reduce: Option<&ReducePlan>, period: Option<u64>) -> Result<Vec<u32>, String> {
    let position_strides = reduce.and_then(|rp| rp.position_strides(plan));
    if position_strides.is_some() && plan.design.name() != "grid" {
        return Err(format!("a reduction reorders the rows of this {} design", plan.design.name()));
    }
    crate::gpu::expand::program(&crate::gpu::expand::Expansion { plan, position_strides, period })
}

/// A label for the progress line and the summary.
pub fn backend_label(b: &dyn Backend) -> String {
    let info = b.info();
    match &info.adapter {
        Some(a) => format!("gpu {} ({})", a.name, info.precision),
        None => format!("{} {} x{}", info.kind, info.precision, info.threads),
    }
}

/// A config loaded, and what this run of it computes and writes.
pub struct Job {
    pub plan: Plan,
    pub config_path: PathBuf,
    pub config_sha256: String,
    /// The rows (positions, for a reduction with `best`) this run covers.
    pub rows: Range<u64>,
    /// Where the rows go (a subset's file beside the whole sweep's).
    pub output: PathBuf,
    pub format: OutputFormat,
    /// `[reduce]`, when the sweep is reduced.
    pub reduce: Option<ReducePlan>,
}

impl Job {
    /// Loads `config_path` and resolves the rows, output and format `opts` ask for.
    pub fn load(config_path: &Path, opts: &RunOptions) -> anyhow::Result<Job> {
        let config::Loaded { plan, reduce, output, format, sha256 } = config::load(config_path)?;
        let (block, block_what) = match &reduce {
            Some(rp) => (rp.block_rows, "one reduction block"),
            None if plan.design.morris(0).is_some() => (plan.block_rows(), "one morris trajectory"),
            None => (plan.block_rows(), "one saltelli base point"),
        };
        let rows = opts.rows.rows_in_blocks(plan.rows, block, block_what)?;
        // --out names the whole sweep's output; a shard or row block writes beside it.
        let (mut output, mut format) = (output, format);
        if let Some(f) = opts.format.filter(|f| *f != format) {
            format = f;
            output = f.with_extension(&output);
        }
        // A shard keeps its name even where it covers every row (more shards than
        // blocks leave some shards empty and one with every block), so that `merge`
        // finds every shard it expects.
        let shard = matches!(opts.rows, RowSelection::Shard(..));
        let selection = if rows == (0..plan.rows) && !shard { RowSelection::All } else { opts.rows };
        let output = selection.output(opts.out.as_ref().unwrap_or(&output));
        Ok(Job { plan, config_path: config_path.to_path_buf(), config_sha256: sha256, rows, output, format, reduce })
    }

    /// The checkpoint of a run that has written nothing yet (`reduce_state`: a
    /// reduced run's empty state).
    pub fn start_checkpoint(&self, info: &BackendInfo, reduce_state: Option<String>) -> Checkpoint {
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
            nonfinite: None,
            reduce_nonfinite: None,
            reduce_state,
            log_bytes: None,
            log_sha256: None,
        }
    }
}

/// A job kind's outputs while the engine drives it.
pub trait JobOutputs {
    /// Solved rows `first..` (in order).
    fn push(&mut self, first: u64, outcomes: Outcomes) -> anyhow::Result<()>;
    /// A chunk reduced on the device (only for kinds that hand the backend a
    /// device reduction).
    fn push_device(&mut self, chunk: DeviceChunk) -> anyhow::Result<()> {
        let _ = chunk;
        anyhow::bail!("internal error: this job does not reduce on the device")
    }
    /// Rows before this one are in the outputs (as far as a checkpoint can say).
    fn durable(&self) -> u64;
    /// Records `base` completed with where the outputs stand, if they are at a
    /// point a checkpoint can describe (else nothing, until a later chunk).
    fn checkpoint(&mut self, base: &Checkpoint) -> anyhow::Result<()>;
    /// How often a checkpoint is due (`None`: after every chunk).
    fn checkpoint_every(&self) -> Option<Duration> {
        None
    }
    /// Everything is in: close the files and say what they hold.
    fn finish(self: Box<Self>) -> anyhow::Result<Finished>;
    /// After a failure: stop writing (what was sent reaches the disk, with the
    /// checkpoints asked for).
    fn abandon(self: Box<Self>);
}

/// A job kind: the files it writes, its outputs, and how its rows are solved.
pub trait JobKind {
    /// The files this job writes.
    fn transaction(&self, job: &Job) -> Transaction;
    /// The empty state a fresh run's checkpoint carries (a reduction's), if any.
    fn empty_state(&self) -> Option<String> {
        None
    }
    /// Its outputs, continuing from `from` (the checkpoint a fresh or resumed run
    /// starts at) on the transaction's rows file `stream`.
    fn open<'j>(
        &'j self,
        job: &'j Job,
        info: &BackendInfo,
        txn: &Transaction,
        from: &Checkpoint,
        stream: Option<Stream>,
        opts: &RunOptions,
    ) -> anyhow::Result<Box<dyn JobOutputs + 'j>>;
    /// Solves `rows` of the job on `backend` into `driver`.
    fn solve(&self, job: &Job, backend: &mut dyn Backend, rows: Range<u64>, driver: &mut Driver) -> anyhow::Result<()>;
}

/// What a job leaves when every row is in, for the commit.
pub struct Finished {
    /// The streamed rows file's content, if the job wrote one.
    pub rows: Option<Content>,
    /// The `--verify` report of a GPU run's rows.
    pub verify: Option<crate::verify::Report>,
    /// The main output when it is written whole at the end (a reduced CSV): its
    /// bytes and content.
    pub whole: Option<(Vec<u8>, Content)>,
    /// The transaction's extra files' contents (a reduced run's state).
    pub extra: Vec<Vec<u8>>,
}

/// The sink a backend pushes to: hands each chunk to the job's outputs, advances
/// the progress line, records a checkpoint when one is due, and stops the run at
/// this chunk boundary when a signal asked for it.
pub struct Driver<'a> {
    outputs: &'a mut dyn JobOutputs,
    base: Checkpoint,
    progress: &'a Progress,
    last: Instant,
    /// The test hook's poisoned outputs ([`crate::testhook::nonfinite_outputs`]).
    poison: Vec<(u64, Column, f64)>,
}

impl Driver<'_> {
    fn after(&mut self, n: u64) -> anyhow::Result<()> {
        self.progress.advance(n);
        let stop = interrupt::requested();
        if stop || self.outputs.checkpoint_every().is_none_or(|every| self.last.elapsed() >= every) {
            self.outputs.checkpoint(&self.base)?;
            self.last = Instant::now();
        }
        if stop {
            return Err(Interrupted { next_row: self.outputs.durable() }.into());
        }
        Ok(())
    }
}

/// Sets the test hook's poisoned values that fall in rows `first..` of `outcomes`.
fn poison(poison: &[(u64, Column, f64)], first: u64, outcomes: &mut Outcomes) {
    for &(row, col, v) in poison {
        let Some(k) = row.checked_sub(first).map(|k| k as usize) else { continue };
        match outcomes {
            Outcomes::F64(o) if k < o.len() => o[k].set(col, v),
            Outcomes::F32(o) if k < o.len() => o[k].set(col, v as f32),
            _ => {}
        }
    }
}

impl ChunkSink for Driver<'_> {
    fn push(&mut self, first: u64, mut outcomes: Outcomes) -> anyhow::Result<()> {
        let n = outcomes.len() as u64;
        poison(&self.poison, first, &mut outcomes);
        self.outputs.push(first, outcomes)?;
        self.after(n)
    }
}

impl DeviceSink for Driver<'_> {
    fn push_reduced(&mut self, mut chunk: DeviceChunk) -> anyhow::Result<()> {
        if let Some(o) = chunk.outcomes.as_mut() {
            poison(&self.poison, chunk.first, o);
        }
        let n = chunk.rows;
        self.outputs.push_device(chunk)?;
        self.after(n)
    }
}

/// Runs the sweep of `config_path`.
pub fn run(config_path: &Path, opts: &RunOptions, command: Vec<String>) -> anyhow::Result<RunReport> {
    let started_at = SystemTime::now();
    let t0 = Instant::now();
    let job = Job::load(config_path, opts)?;
    let mut backend = make_backend(opts.backend, opts.chunk_rows, opts.dispatch_budget, opts.adapter.as_deref(), opts.quiet)?;
    expand_on_device(&job, backend.as_mut(), opts.expand)?;
    let info = backend.info();
    if info.precision == Precision::F32 {
        warn_f32_tolerance(&job.plan, opts.quiet);
    }
    let label = backend_label(backend.as_ref());
    let kind: Box<dyn JobKind> = match &job.reduce {
        Some(rp) => Box::new(reduced::Reduced::new(rp)),
        None => Box::new(rows::Rows),
    };
    let txn = kind.transaction(&job);

    // The first signal stops at the next chunk boundary; the handler is in place
    // before the first checkpoint exists.
    interrupt::install();
    let start = job.start_checkpoint(&info, kind.empty_state());
    let (from, stream) = txn.begin(start, opts.resume)?;

    let solved = (|| -> anyhow::Result<Finished> {
        let mut outputs = kind.open(&job, &info, &txn, &from, stream, opts)?;
        let progress = Progress::new(job.rows.end - from.next_row, &label, opts.quiet);
        let columns = crate::model::outputs::columns(&job.plan.firm_names);
        let poison = crate::testhook::nonfinite_outputs()
            .iter()
            .filter_map(|(row, name, v)| columns.iter().find(|(n, _)| n == name).map(|(_, c)| (*row, *c, *v)))
            .collect();
        let mut driver = Driver { outputs: outputs.as_mut(), base: from.clone(), progress: &progress, last: Instant::now(), poison };
        let solved = kind.solve(&job, backend.as_mut(), from.next_row..job.rows.end, &mut driver);
        progress.finish();
        match solved {
            Ok(()) => outputs.finish(),
            Err(e) => {
                outputs.abandon();
                Err(e)
            }
        }
    })();
    let transfer = backend.take_transfer_stats();
    let committed = solved.and_then(|finished| {
        let facts = RunFacts {
            command: command.clone(),
            config_path: config_path.display().to_string(),
            config_sha256: job.config_sha256.clone(),
            config: job.plan.resolved(Some(OutputSpec { format: job.format, path: job.output.display().to_string() })),
            backend: info.clone(),
            scenarios: job.plan.rows,
            rows: [job.rows.start, job.rows.end],
            resumed_at_row: opts.resume.then_some(from.next_row),
            kernel_time_s: backend.kernel_seconds(),
            transfer,
            wall_time_s: t0.elapsed().as_secs_f64(),
            started_at: timestamp(started_at),
            finished_at: timestamp(SystemTime::now()),
        };
        let mut finals = Vec::new();
        let verify = finished.verify;
        if let (Some((t, _)), Some(c)) = (&txn.rows, finished.rows) {
            finals.push(Final { target: t, contents: None, manifest: Manifest::for_run(&facts, &t.out, c) });
        }
        if let Some((bytes, c)) = finished.whole {
            finals.push(Final { target: &txn.main, contents: Some(bytes), manifest: Manifest::for_run(&facts, &txn.main.out, c) });
        }
        txn.commit(&finals, &finished.extra)?;
        let main = finals.last().expect("a job writes at least one file").manifest.clone();
        // Non-finite values, per file (a reduced run with rows = true has two).
        let nonfinite: Vec<String> = finals
            .iter()
            .filter(|f| f.manifest.nonfinite.is_some())
            .map(|f| format!("{}: {}", f.target.out.display(), f.manifest.nonfinite_count().summary()))
            .collect();
        Ok((main, verify, nonfinite))
    });
    let (manifest, verify, nonfinite) = match committed {
        Ok(m) => m,
        Err(e) if e.chain().any(|c| c.is::<crate::gpu::DeviceFailure>()) => {
            // One message: what happened to the device, and how to continue.
            return Err(match txn.abandon_quietly(&job.rows, &command) {
                Some(kept) => anyhow::anyhow!("{e:#}; {}: `{}` continues the run", kept.rows_in(), kept.command),
                None => anyhow::anyhow!("{e:#}; no rows were completed, so nothing was kept: run it again"),
            });
        }
        Err(e) => {
            txn.abandon(&job.rows, &command);
            return Err(e);
        }
    };
    let verified = verify.map_or(Ok(()), |v| report_verify(&v, &txn.main.out, opts.quiet));
    if !nonfinite.is_empty() {
        let what = nonfinite.join("; ");
        if !opts.allow_nonfinite {
            if let Err(e) = verified {
                eprintln!("error: {e:#}");
            }
            anyhow::bail!(
                "{what}: the output holds NaN or infinite values (the manifest counts them per column in \"nonfinite\"; the files are complete); --allow-nonfinite accepts them"
            );
        }
        eprintln!("warning: {what} (accepted: --allow-nonfinite)");
    }
    verified?;
    Ok(RunReport {
        output: txn.main.out.clone(),
        manifest: txn.main.manifest.clone(),
        rows: job.rows,
        rows_written: manifest.rows_written,
        nonconverged_scenarios: manifest.nonconverged_scenarios,
        wall_time_s: manifest.wall_time_s,
        backend: label,
        transfer,
    })
}

/// Prints the `--verify` summary; rows beyond tolerance, or more exemptions than
/// the caps allow, fail the run (exit status 1) once its files are complete, so
/// that a script notices.
fn report_verify(v: &crate::verify::Report, out: &Path, quiet: bool) -> anyhow::Result<()> {
    if !quiet {
        eprintln!("--verify: {}", v.summary());
    }
    if v.beyond_tolerance > 0 {
        anyhow::bail!(
            "--verify: {} of {} re-solved rows deviate from the f64 reference beyond the documented tolerance, e.g. {} ({} is complete; its manifest holds the report)",
            v.beyond_tolerance,
            v.rows_checked,
            v.examples.first().map_or("", String::as_str),
            out.display()
        );
    }
    if !v.within_caps {
        anyhow::bail!(
            "--verify: more rows were exempted from comparison or admitted only through the probe than the caps allow ({}; {} is complete; its manifest holds the report)",
            v.summary(),
            out.display()
        );
    }
    Ok(())
}

/// docs/model.md section 3: one rounding step of a markup near 10 is about 1e-7 relative
/// in f32, so f32 needs tol >= about 2e-7.
pub const F32_MIN_TOL: f64 = 2e-7;

pub fn warn_f32_tolerance(plan: &Plan, quiet: bool) {
    let tol =
        plan.axes.iter().find(|a| a.param.spec.is(crate::model::params::model::tol())).map_or(plan.base.model.tol, |a| a.values.extent().0);
    if tol < F32_MIN_TOL && !quiet {
        eprintln!(
            "warning: model.tol = {tol} is below what f32 can resolve (about {F32_MIN_TOL}, docs/model.md section 3): GPU months may not converge; use --backend cpu for such a tolerance"
        );
    }
}
