//! `moatsweep run`: config -> plan -> backend -> ordered CSV writer -> manifest.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::Context;

use crate::InputError;
use crate::backend::cpu::CpuBackend;
use crate::backend::Backend;
use crate::config;
use crate::output::csv::{CsvSink, header};
use crate::output::manifest::{Manifest, timestamp};
use crate::output::progress::Progress;
use crate::output::{create_partial, manifest_path, partial_path};

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

#[derive(Clone, Debug)]
pub struct RunOptions {
    pub out: Option<PathBuf>,
    pub backend: BackendChoice,
    pub limit: Option<u64>,
    pub quiet: bool,
}

/// What a finished run reports.
pub struct RunReport {
    pub output: PathBuf,
    pub manifest: PathBuf,
    pub rows_written: u64,
    pub nonconverged_scenarios: u64,
    pub wall_time_s: f64,
    pub backend: String,
}

/// Makes the backend a run asked for.
pub fn make_backend(choice: BackendChoice) -> anyhow::Result<Box<dyn Backend>> {
    match choice {
        BackendChoice::Auto | BackendChoice::Cpu => Ok(Box::new(CpuBackend::default())),
        BackendChoice::Gpu => Err(InputError("the GPU backend is not available in this build; use --backend cpu".into()).into()),
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

/// Removes a `.partial` file unless the run completed.
struct PartialGuard(Option<PathBuf>);

impl Drop for PartialGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
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
    if let Some(out) = &opts.out {
        plan.output = out.clone();
    }
    let plan = &plan;
    let out = plan.output.clone();
    let rows: Range<u64> = 0..opts.limit.map_or(plan.rows, |l| l.min(plan.rows));

    let mut backend = make_backend(opts.backend)?;
    let label = backend_label(backend.as_ref());

    let (partial, file) = create_partial(&out).map_err(|e| InputError(format!("cannot write the output {}: {e}", partial_path(&out).display())))?;
    let mut guard = PartialGuard(Some(partial.clone()));
    let manifest_file = manifest_path(&out);
    let manifest_partial = partial_path(&manifest_file);
    let mut manifest_guard = PartialGuard(Some(manifest_partial.clone()));

    let progress = Progress::new(rows.end - rows.start, &label, opts.quiet);
    let mut sink = CsvSink::new(plan, file, rows.start, &progress);
    let solved = backend.run(plan, rows.clone(), &mut sink);
    let (rows_written, nonconverged_scenarios) = (sink.rows_written, sink.nonconverged_scenarios);
    let written = sink.finish();
    progress.finish();
    solved?;
    written?;
    anyhow::ensure!(rows_written == rows.end - rows.start, "internal error: {rows_written} rows written of {}", rows.end - rows.start);

    let finished_at = SystemTime::now();
    let wall_time_s = t0.elapsed().as_secs_f64();
    let manifest = Manifest {
        moatsweep_version: env!("CARGO_PKG_VERSION"),
        model: "MODEL.md version 1",
        command,
        config_path: config_path.display().to_string(),
        config_sha256: loaded.sha256.clone(),
        config: plan.resolved_json(),
        backend: backend.info(),
        output: out.display().to_string(),
        columns: header(plan),
        scenarios: plan.rows,
        rows: [rows.start, rows.end],
        rows_written,
        nonconverged_scenarios,
        kernel_time_s: backend.kernel_seconds(),
        wall_time_s,
        started_at: timestamp(started_at),
        finished_at: timestamp(finished_at),
    };
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serializes");
    std::fs::write(&manifest_partial, json).with_context(|| format!("writing {}", manifest_partial.display()))?;
    std::fs::rename(&partial, &out).with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    guard.0 = None;
    std::fs::rename(&manifest_partial, &manifest_file).with_context(|| format!("writing {}", manifest_file.display()))?;
    manifest_guard.0 = None;

    Ok(RunReport { output: out, manifest: manifest_file, rows_written, nonconverged_scenarios, wall_time_s, backend: label })
}
