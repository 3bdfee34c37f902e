//! `moatsweep bench`: scenarios per second per backend, compute only and end to end.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::backend::cpu::CpuBackend;
use crate::backend::{Backend, ChunkSink, Outcomes, ScenarioSource};
use crate::config;
use crate::model::Scenario;
use crate::output::csv::{Checkpoint, CsvSink};
use crate::output::progress::Progress;
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

/// One measurement: (compute-only rows/s, end-to-end rows/s, CSV bytes).
pub fn measure(backend: &mut dyn Backend, plan: &Plan, rows: u64) -> anyhow::Result<(f64, f64, u64)> {
    let src = Cycle(plan);
    // Warm up (pipelines, caches, thread pool).
    backend.run(&src, 0..rows.min(4096), &mut Discard(0))?;

    let t = Instant::now();
    let mut d = Discard(0);
    backend.run(&src, 0..rows, &mut d)?;
    let compute = rows as f64 / t.elapsed().as_secs_f64();
    anyhow::ensure!(d.0 == rows, "backend returned {} of {rows} rows", d.0);

    let dir = std::env::temp_dir().join(format!("moatsweep-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("bench.csv");
    let progress = Progress::hidden();
    let t = Instant::now();
    let mut sink = CsvSink::new(plan, std::fs::File::create(&path)?, true, &progress, Checkpoint::default(), None);
    backend.run(&src, 0..rows, &mut sink)?;
    sink.finish()?;
    let end_to_end = rows as f64 / t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)?.len();
    std::fs::remove_dir_all(&dir)?;
    Ok((compute, end_to_end, bytes))
}

pub fn bench(config_path: &Path, rows: u64, out: &mut impl Write) -> anyhow::Result<()> {
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
    let mut results = Vec::new();
    for b in backends.iter_mut() {
        let label = backend_label(b.as_ref());
        let (compute, e2e, bytes) = measure(b.as_mut(), &plan, rows)?;
        writeln!(out, "{label:<28} compute only {compute:>12.0} scenarios/s   end to end (CSV, {:.1} MB) {e2e:>12.0} scenarios/s", bytes as f64 / 1e6)?;
        results.push((label, compute, e2e));
    }
    Ok(())
}
