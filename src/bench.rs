//! `moatsweep bench`: scenarios per second per backend, compute only and end to end.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, ChunkSink, Outcomes, ScenarioSource};
use crate::config;
use crate::gpu::{GpuBackend, GpuOptions};
use crate::model::Scenario;
use crate::output::progress::Progress;
use crate::output::sink::{CsvSink, OutputFile};
use crate::run::backend_label;
use crate::sweep::Plan;

/// The rows of a plan, repeated to reach any count.
struct Cycle<'a>(&'a Plan);

impl ScenarioSource for Cycle<'_> {
    fn n_firms(&self) -> usize {
        self.0.n_firms()
    }
    fn n_segments(&self) -> usize {
        self.0.n_segments()
    }
    fn scenario(&self, row: u64) -> Scenario {
        self.0.scenario(row % self.0.rows)
    }
}

/// Counts rows and drops them: compute only.
struct Discard(u64);

impl ChunkSink for Discard {
    fn push(&mut self, _: u64, o: Outcomes) -> anyhow::Result<()> {
        self.0 += o.len() as u64;
        Ok(())
    }
}

/// Throughput of one backend, in scenarios per second.
pub struct Measurement {
    /// Solving only (outcomes dropped), host work included.
    pub compute: f64,
    /// Solving, formatting and writing the CSV.
    pub end_to_end: f64,
    /// Kernel time alone, where the backend measures it (GPU timestamp queries).
    pub kernel: Option<f64>,
    pub csv_bytes: u64,
}

/// Measures `backend` on `rows` rows of `plan` (wrapping around).
pub fn measure(backend: &mut dyn Backend, plan: &Plan, rows: u64) -> anyhow::Result<Measurement> {
    let src = Cycle(plan);
    // Warm up (pipelines, caches, thread pool).
    backend.run(&src, 0..rows.min(4096), &mut Discard(0))?;
    let kernel_before = backend.kernel_seconds();

    let t = Instant::now();
    let mut d = Discard(0);
    backend.run(&src, 0..rows, &mut d)?;
    let compute = rows as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(d.0 == rows, "backend returned {} of {rows} rows", d.0);
    let kernel = match (kernel_before, backend.kernel_seconds()) {
        (Some(a), Some(b)) if b > a => Some(rows as f64 / (b - a)),
        _ => None,
    };

    let dir = std::env::temp_dir().join(format!("moatsweep-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.csv");
    let progress = Progress::hidden();
    let t = Instant::now();
    let file = OutputFile { file: std::fs::File::create(&path)?, path: path.clone(), bytes: 0, hash: Default::default() };
    let mut sink = CsvSink::new(plan, file, true, &progress, 0, 0, None);
    backend.run(&src, 0..rows, &mut sink)?;
    sink.finish()?;
    let end_to_end = rows as f64 / t.elapsed().as_secs_f64();
    let csv_bytes = std::fs::metadata(&path)?.len();
    std::fs::remove_dir_all(&dir)?;
    Ok(Measurement { compute, end_to_end, kernel, csv_bytes })
}

pub fn bench(config_path: &Path, rows: u64, adapter: Option<&str>, out: &mut impl Write) -> anyhow::Result<()> {
    let plan = config::load(config_path)?.plan;
    let m = &plan.base.model;
    writeln!(
        out,
        "bench: {} ({} rows per measurement; {} months, {} firms, {} segments; {} host threads)",
        config_path.display(),
        rows,
        m.months,
        plan.base.n_firms,
        plan.base.n_segments,
        rayon::current_num_threads()
    )?;
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::default())];
    match GpuBackend::new(&GpuOptions { adapter: adapter.map(str::to_string), allow_software: true, chunk_rows: None }) {
        Ok(g) => backends.push(Box::new(g)),
        Err(e) => writeln!(out, "gpu: not measured ({e:#})")?,
    }
    let mut results = Vec::new();
    for b in backends.iter_mut() {
        let label = backend_label(b.as_ref());
        let m = measure(b.as_mut(), &plan, rows)?;
        let kernel = m.kernel.map_or(String::new(), |k| format!("   kernel only {k:>12.0} scenarios/s"));
        writeln!(
            out,
            "{label:<40} compute {:>10.0} scenarios/s   end to end (CSV, {:.1} MB) {:>10.0} scenarios/s{kernel}",
            m.compute,
            m.csv_bytes as f64 / 1e6,
            m.end_to_end
        )?;
        results.push((label, m));
    }
    if let [(cpu, c), (gpu, g)] = results.as_slice() {
        writeln!(out, "ratio {gpu} / {cpu}: compute {:.2}x, end to end {:.2}x", g.compute / c.compute, g.end_to_end / c.end_to_end)?;
    }
    Ok(())
}
