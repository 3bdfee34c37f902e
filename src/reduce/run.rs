//! `moatsweep run` for a config with `[reduce]`: the rows (positions) are solved
//! and added to the reduction's state as they come; at the end the state becomes
//! `<out stem>.reduced.csv`, its manifest and `<out stem>.reduced.state` (what
//! `merge` adds up). A checkpoint carrying the state is written about once a
//! second (and when a signal stops the run), so `--resume` continues from it;
//! with `rows = true` the rows file is written too and the checkpoint covers both.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};

use super::output::{csv_bytes, header as reduced_header, reduced_path};
use super::state::{ReduceState, Reducer, base64, unbase64};
use super::{Positions, ReducePlan};
use crate::InputError;
use crate::backend::{Backend, ChunkSink, DeviceSink, Outcomes, Precision};
use crate::gpu::reduce::{DeviceChunk, ReduceJob};
use crate::interrupt::{self, Interrupted};
use crate::output::checkpoint::Checkpoint;
use crate::output::csv::header;
use crate::output::manifest::{MODEL, Manifest, ReducedManifest, timestamp};
use crate::output::parquet::RowGroupMeta;
use crate::output::progress::Progress;
use crate::output::sink::{LogFile, OutputFile, RowSink, Written};
use crate::output::{FileError, OutputFormat, create_partial, hex, partial_path};
use crate::run::{
    Files, Job, RunOptions, RunReport, backend_label, check_resumable, make_backend, read_checkpoint, reopen, reopen_log, row_encoder,
    write_final,
};

/// A checkpoint is written at most this often (and when a signal stops the run).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// `<stem>.reduced.csv` -> `<stem>.reduced.state`.
pub fn state_path(reduced: &Path) -> PathBuf {
    reduced.with_extension("state")
}

/// The reduced run's sink: adds rows to the reducer, writes them to the rows file
/// when asked, and records checkpoints.
struct ReduceRun<'a> {
    reducer: Reducer<'a>,
    rows: Option<RowSink<'a>>,
    base: Checkpoint,
    checkpoint: PathBuf,
    last: Instant,
    progress: &'a Progress,
}

impl ReduceRun<'_> {
    /// Records a checkpoint at the reducer's durable position, if the rows file (if
    /// any) holds exactly those rows.
    fn record(&mut self) -> anyhow::Result<()> {
        let next = self.reducer.durable();
        if next != self.reducer.next() {
            return Ok(()); // rows of an unfinished world are held: not a consistent point
        }
        let (bytes, sha256, nonconverged, log) = match self.rows.as_mut() {
            Some(sink) => {
                let w: Written = sink.durable_now()?;
                if w.next_row != next {
                    return Ok(()); // Parquet holds rows until a row group is complete: try after a later chunk
                }
                (w.bytes, w.sha256, w.nonconverged_scenarios, w.log)
            }
            None => (0, self.base.sha256.clone(), 0, None),
        };
        let cp = Checkpoint {
            next_row: next,
            bytes,
            sha256,
            nonconverged_scenarios: nonconverged,
            reduce_state: Some(base64(&self.reducer.state.to_bytes())),
            log_bytes: log.as_ref().map(|l| l.0),
            log_sha256: log.map(|l| l.1),
            ..self.base.clone()
        };
        cp.write(&self.checkpoint)?;
        self.last = Instant::now();
        Ok(())
    }
}

impl ReduceRun<'_> {
    /// After a chunk: progress, a checkpoint when one is due, a stop when asked.
    fn after(&mut self, n: u64) -> anyhow::Result<()> {
        self.progress.advance(n);
        let stop = interrupt::requested();
        if stop || self.last.elapsed() >= CHECKPOINT_EVERY {
            self.record()?;
        }
        if stop {
            return Err(Interrupted { next_row: self.reducer.durable() }.into());
        }
        Ok(())
    }
}

impl DeviceSink for ReduceRun<'_> {
    fn push_reduced(&mut self, chunk: DeviceChunk) -> anyhow::Result<()> {
        if let (Some(rows), Some(outcomes)) = (self.rows.as_mut(), chunk.outcomes.as_ref()) {
            rows.send(chunk.first, outcomes)?;
        }
        self.reducer.add_device(&chunk)?;
        self.after(chunk.rows)
    }
}

impl ChunkSink for ReduceRun<'_> {
    fn push(&mut self, first: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        let n = outcomes.len() as u64;
        if let Some(rows) = self.rows.as_mut() {
            rows.send(first, &outcomes)?;
        }
        self.reducer.push(first, outcomes)?;
        self.after(n)
    }
}

/// The reduced run's files: the reduced CSV (and its checkpoint, manifest), its
/// state, and the rows file of `rows = true`.
struct ReducedFiles {
    reduced: Files,
    state: PathBuf,
    rows: Option<Files>,
}

impl ReducedFiles {
    /// After a failure: keeps what `--resume` needs when the checkpoint has progress, else removes it all.
    fn keep_or_remove(&self, rows: &Range<u64>, command: &[String]) {
        let _ = std::fs::remove_file(partial_path(&self.state));
        if let Some(r) = &self.rows {
            let _ = std::fs::remove_file(&r.manifest_partial);
        }
        let kept = Checkpoint::read(&self.reduced.checkpoint).ok().filter(|c| c.next_row > rows.start);
        if kept.is_none() {
            if let Some(r) = &self.rows {
                let _ = std::fs::remove_file(&r.partial);
                let _ = std::fs::remove_file(&r.log);
            }
        }
        self.reduced.keep_or_remove(rows, command);
    }
}

/// Runs the reduced sweep of `job`.
pub(crate) fn run(
    config_path: &Path,
    job: Job,
    opts: &RunOptions,
    command: Vec<String>,
    (started_at, t0): (SystemTime, Instant),
) -> anyhow::Result<RunReport> {
    let rp = job.plan.reduce.clone().expect("a reduced run has [reduce]");
    let mut backend = make_backend(opts.backend, opts.chunk_rows, opts.adapter.as_deref(), opts.quiet)?;
    let info = backend.info();
    if info.precision == Precision::F32 {
        crate::run::warn_f32_tolerance(&job.plan, opts.quiet);
    }
    let label = backend_label(backend.as_ref());
    let files = ReducedFiles {
        reduced: Files::of(&reduced_path(&job.plan.output)),
        state: state_path(&reduced_path(&job.plan.output)),
        rows: rp.rows.then(|| Files::of(&job.plan.output)),
    };
    interrupt::install();
    let empty = ReduceState::new(&rp);
    let start = job.start_checkpoint(&info, Some(base64(&empty.to_bytes())));
    let format = job.plan.format;
    let (cp, state, rows_file) = if opts.resume { resume(&files, &rp, start, format)? } else { fresh(&files, start, empty, format)? };
    let resumed_at_row = opts.resume.then_some(cp.next_row);

    let finished = solve(&job, &rp, backend.as_mut(), &files, cp, state, rows_file, &label, opts).and_then(|(state, rows_written)| {
        let bytes = csv_bytes(&job.plan, &rp, &state);
        let state_bytes = state.to_bytes();
        let write = |path: &Path, data: &[u8]| -> Result<(), FileError> {
            let written = std::fs::File::create(path).and_then(|mut f| {
                std::io::Write::write_all(&mut f, data)?;
                f.sync_all()
            });
            written.map_err(|e| FileError::new("writing", path, e))
        };
        write(&files.reduced.partial, &bytes)?;
        write(&partial_path(&files.state), &state_bytes)?;
        let wall = t0.elapsed().as_secs_f64();
        let base = |output: &Path, columns: Vec<String>| Manifest {
            moatsweep_version: env!("CARGO_PKG_VERSION").into(),
            model: MODEL.into(),
            command: command.clone(),
            config_path: config_path.display().to_string(),
            config_sha256: job.config_sha256.clone(),
            config: job.plan.resolved(),
            backend: info.clone(),
            output: output.display().to_string(),
            format: None,
            sha256: None,
            bytes: None,
            columns,
            scenarios: job.plan.rows,
            rows: [job.rows.start, job.rows.end],
            rows_written: job.rows.end - job.rows.start,
            nonconverged_scenarios: 0,
            resumed_at_row,
            merged_from: None,
            verify: None,
            kernel_time_s: backend.kernel_seconds(),
            wall_time_s: wall,
            started_at: timestamp(started_at),
            finished_at: timestamp(SystemTime::now()),
            reduce: None,
        };
        if let (Some(rf), Some(w)) = (&files.rows, &rows_written) {
            let m = Manifest {
                format: (job.plan.format == OutputFormat::Parquet).then_some(job.plan.format),
                sha256: Some(w.sha256.clone()),
                bytes: Some(w.bytes),
                nonconverged_scenarios: w.nonconverged_scenarios,
                ..base(&rf.out, header(&job.plan))
            };
            write_final(rf, &m)?;
        }
        let manifest = Manifest {
            sha256: Some(hex(&Sha256::digest(&bytes))),
            bytes: Some(bytes.len() as u64),
            nonconverged_scenarios: rows_written.as_ref().map_or(0, |w| w.nonconverged_scenarios),
            reduce: Some(ReducedManifest {
                spec: rp.spec(&job.plan),
                groups: rp.groups,
                state: files.state.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                state_sha256: hex(&Sha256::digest(&state_bytes)),
                rows_output: files.rows.as_ref().map(|r| r.out.display().to_string()),
            }),
            ..base(&files.reduced.out, reduced_header(&job.plan, &rp))
        };
        std::fs::rename(partial_path(&files.state), &files.state).map_err(|e| FileError::new("renaming", &files.state, e))?;
        write_final(&files.reduced, &manifest)?;
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
        output: files.reduced.out.clone(),
        manifest: files.reduced.manifest.clone(),
        rows: job.rows,
        rows_written: manifest.rows_written,
        nonconverged_scenarios: manifest.nonconverged_scenarios,
        wall_time_s: manifest.wall_time_s,
        backend: label,
    })
}

/// A fresh start: the reduced CSV's `.partial` (so that an unwritable path fails
/// now), the rows file's, and a checkpoint of the empty state.
fn fresh(
    files: &ReducedFiles,
    start: Checkpoint,
    empty: ReduceState,
    format: OutputFormat,
) -> anyhow::Result<(Checkpoint, ReduceState, Option<RowsFile>)> {
    let cannot = |p: &Path, e: std::io::Error| InputError(format!("cannot write the output {}: {e}", partial_path(p).display()));
    create_partial(&files.reduced.out).map_err(|e| cannot(&files.reduced.out, e))?;
    let mut start = start;
    let rows_file = match &files.rows {
        Some(r) => {
            let (_, file) = create_partial(&r.out).map_err(|e| cannot(&r.out, e))?;
            let log = match format {
                OutputFormat::Csv => None,
                OutputFormat::Parquet => {
                    let f = std::fs::File::create(&r.log).map_err(|e| FileError::new("writing", &r.log, e))?;
                    start.log_bytes = Some(0);
                    start.log_sha256 = Some(hex(&Sha256::new().finalize()));
                    Some(LogFile { file: f, path: r.log.clone(), bytes: 0, hash: Sha256::new() })
                }
            };
            Some(RowsFile {
                file: OutputFile { file, path: r.partial.clone(), bytes: 0, hash: Sha256::new() },
                log,
                row_groups: Vec::new(),
            })
        }
        None => None,
    };
    let _ = std::fs::remove_file(&files.reduced.checkpoint);
    start.write(&files.reduced.checkpoint)?;
    Ok((start, empty, rows_file))
}

/// The rows file of `rows = true`, opened for appending.
struct RowsFile {
    file: OutputFile,
    log: Option<LogFile>,
    row_groups: Vec<RowGroupMeta>,
}

/// Continues from the checkpoint: its state, and the rows file cut back to what it vouches for.
fn resume(
    files: &ReducedFiles,
    rp: &ReducePlan,
    now: Checkpoint,
    format: OutputFormat,
) -> anyhow::Result<(Checkpoint, ReduceState, Option<RowsFile>)> {
    let cp = read_checkpoint(&files.reduced)?;
    check_resumable(&cp, &now, &files.reduced.partial)?;
    let shown = files.reduced.checkpoint.display();
    let bytes = cp.reduce_state.as_deref().ok_or_else(|| InputError(format!("cannot resume: {shown} holds no reduction state")))?;
    let state = unbase64(bytes)
        .and_then(|b| ReduceState::from_bytes(&b, rp))
        .map_err(|e| InputError(format!("cannot resume: the reduction state in {shown} does not fit this sweep: {e}")))?;
    let rows_file = match &files.rows {
        Some(r) => {
            let file = reopen(&r.partial, &cp)?;
            let (log, row_groups) = match format {
                OutputFormat::Csv => (None, Vec::new()),
                OutputFormat::Parquet => reopen_log(&r.log, &cp)?,
            };
            Some(RowsFile { file, log, row_groups })
        }
        None => None,
    };
    Ok((cp, state, rows_file))
}

/// Solves the positions after the checkpoint into the state (and the rows file).
#[allow(clippy::too_many_arguments)]
fn solve(
    job: &Job,
    rp: &ReducePlan,
    backend: &mut dyn Backend,
    files: &ReducedFiles,
    cp: Checkpoint,
    state: ReduceState,
    rows_file: Option<RowsFile>,
    label: &str,
    opts: &RunOptions,
) -> anyhow::Result<(ReduceState, Option<Written>)> {
    let from = cp.next_row;
    let progress = Progress::new(job.rows.end - from, label, opts.quiet);
    let info = backend.info();
    let rows = match rows_file {
        Some(f) => {
            let encoder = row_encoder(job, info.kind, info.precision, from, f.row_groups)?;
            Some(RowSink::with_encoder(encoder, f.file, f.log, cp.bytes == 0, &progress, from, cp.nonconverged_scenarios, None))
        }
        None => None,
    };
    let mut sink = ReduceRun {
        reducer: Reducer::new(&job.plan, rp, state, from),
        rows,
        base: cp.clone(),
        checkpoint: files.reduced.checkpoint.clone(),
        last: Instant::now(),
        progress: &progress,
    };
    let src = Positions { plan: &job.plan, reduce: rp };
    let solved = match backend.as_gpu() {
        // The GPU reduces each block on the device and reads back partials.
        Some(gpu) => {
            let plan = &job.plan;
            let group = move |p: u64| rp.group(plan, p);
            let dj = ReduceJob {
                outputs: &rp.outputs,
                best: rp.best.as_ref(),
                quantiles: rp.quantiles(),
                want_rows: rp.rows,
                block_rows: rp.block_rows,
                group: &group,
            };
            gpu.run_reduced(&src, from..job.rows.end, &dj, &mut sink)
        }
        None => backend.run(&src, from..job.rows.end, &mut sink),
    };
    progress.finish();
    let ReduceRun { reducer, rows, .. } = sink;
    let written = rows.map(RowSink::finish).transpose();
    solved?;
    let written = written?;
    anyhow::ensure!(reducer.durable() == job.rows.end, "internal error: reduced to position {} of {}", reducer.durable(), job.rows.end);
    Ok((reducer.state, written))
}
