//! `moatsweep bench`: scenarios per second per backend, compute only and end to end.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use crate::backend::cpu::CpuBackend;
use crate::backend::device::{DeviceChunk, DeviceSink};
use crate::backend::{Backend, ChunkSink, Expand, Outcomes, ScenarioSource, TransferStats};
use crate::engine::{ExpandChoice, backend_label, device_program};
use crate::gpu::reduce::Tables;
use crate::gpu::{GpuBackend, GpuOptions};
use crate::model::Scenario;
use crate::output::sink::{OutputFile, RowSink};
use crate::reduce::ReducePlan;
use crate::reduce::state::{ReduceState, Reducer};
use crate::sweep::Plan;
use crate::{config, cputime};

/// The rows of a plan, repeated to reach any count; with a reduced plan, its
/// positions (the order a reduced run solves rows in).
struct Cycle<'a>(&'a Plan, Option<&'a ReducePlan>);

impl ScenarioSource for Cycle<'_> {
    fn n_firms(&self) -> usize {
        self.0.n_firms()
    }
    fn n_segments(&self) -> usize {
        self.0.n_segments()
    }
    fn scenario(&self, row: u64) -> Scenario {
        let r = row % self.0.rows;
        self.0.scenario(self.1.map_or(r, |rp| rp.row(r)))
    }
    fn horizon_fixed(&self) -> bool {
        self.0.horizon_fixed()
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
    /// What the end-to-end run cost the host and moved to and from the device.
    pub host: HostCost,
}

/// A device run's bytes, host CPU and kernel time, for `rows` scenarios.
#[derive(Clone, Copy, Debug, Default)]
pub struct HostCost {
    pub rows: u64,
    /// None for a backend without a device.
    pub transfer: Option<TransferStats>,
    /// [`crate::cputime::host_seconds`] over the run.
    pub host_cpu_s: Option<f64>,
    /// [`crate::cputime::process_seconds`] over the run (the driver's threads too).
    pub process_cpu_s: Option<f64>,
    /// The kernel's time in the run (timestamp queries).
    pub kernel_s: Option<f64>,
}

impl HostCost {
    /// Runs `f` on `backend` and records its cost over `rows` scenarios.
    fn of<T>(backend: &mut dyn Backend, rows: u64, f: impl FnOnce(&mut dyn Backend) -> anyhow::Result<T>) -> anyhow::Result<(T, HostCost)> {
        backend.take_transfer_stats();
        let (kernel0, cpu0, all0) = (backend.kernel_seconds(), cputime::host_seconds(), cputime::process_seconds());
        let out = f(backend)?;
        let (kernel1, cpu1, all1) = (backend.kernel_seconds(), cputime::host_seconds(), cputime::process_seconds());
        let kernel_s = match (kernel0, kernel1) {
            (Some(a), Some(b)) if b > a => Some(b - a),
            (None, Some(b)) => Some(b),
            _ => None,
        };
        let host_cpu_s = cpu0.zip(cpu1).map(|(a, b)| b - a);
        let process_cpu_s = all0.zip(all1).map(|(a, b)| b - a);
        Ok((out, HostCost { rows, transfer: backend.take_transfer_stats(), host_cpu_s, process_cpu_s, kernel_s }))
    }

    /// `uploaded 224.0 B, read back 180.0 B per scenario; host CPU 3.1 us, kernel
    /// 16.3 us per scenario; longest dispatch 0.12 s of budget 0.5 s (40 submissions)`;
    /// None without a device.
    pub fn line(&self) -> Option<String> {
        let t = self.transfer?;
        let per = |x: f64| x / self.rows.max(1) as f64;
        let us = |s: Option<f64>| s.map_or("not measured".to_string(), |s| format!("{:.2} us", 1e6 * per(s)));
        Some(format!(
            "uploaded {:.1} B, read back {:.1} B per scenario; host CPU {} (process {}), kernel {} per scenario; {}",
            per(t.uploaded_bytes as f64),
            per(t.read_back_bytes as f64),
            us(self.host_cpu_s),
            us(self.process_cpu_s),
            us(self.kernel_s),
            dispatch_summary(&t)
        ))
    }
}

/// `longest dispatch 0.12 s of budget 0.5 s (40 submissions)`.
pub fn dispatch_summary(t: &TransferStats) -> String {
    let budget = t.dispatch_budget_s.map_or("fixed chunks".to_string(), |b| format!("budget {b} s"));
    format!("longest dispatch {:.3} s of {budget} ({} submissions)", t.longest_dispatch_s, t.dispatches)
}

/// A GPU run's closing note: bytes moved and the longest dispatch.
pub fn transfer_summary(t: &TransferStats, rows: u64) -> String {
    format!(
        "gpu: {rows} rows, uploaded {:.1} MB, read back {:.1} MB; {}",
        t.uploaded_bytes as f64 / 1e6,
        t.read_back_bytes as f64 / 1e6,
        dispatch_summary(t)
    )
}

/// Measures `backend` on `rows` rows of `plan` (wrapping around).
pub fn measure(backend: &mut dyn Backend, plan: &Plan, rows: u64) -> anyhow::Result<Measurement> {
    let src = Cycle(plan, None);
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
    let t = Instant::now();
    let file = OutputFile { file: std::fs::File::create(&path)?, path: path.clone(), bytes: 0, hash: Default::default() };
    let mut sink = RowSink::csv(plan, file);
    let ((), host) = HostCost::of(backend, rows, |b| {
        b.run(&src, 0..rows, &mut sink)?;
        sink.finish()?;
        Ok(())
    })?;
    let end_to_end = rows as f64 / t.elapsed().as_secs_f64();
    let csv_bytes = std::fs::metadata(&path)?.len();
    std::fs::remove_dir_all(&dir)?;
    Ok(Measurement { compute, end_to_end, kernel, csv_bytes, host })
}

/// A reduced run's throughput on one backend.
pub struct ReducedMeasurement {
    /// Solving and reducing (nothing written), scenarios per second.
    pub end_to_end: f64,
    /// GPU: bytes read back from the device per scenario.
    pub read_back_per_scenario: Option<f64>,
    /// The kernel alone in the same run (timestamp queries), scenarios per second.
    pub kernel: Option<f64>,
    /// What the run cost the host and moved to and from the device.
    pub host: HostCost,
}

/// Adds device chunks to a reducer and counts the bytes that came back.
struct CountingSink<'a> {
    reducer: Reducer<'a>,
    bytes: u64,
}

impl DeviceSink for CountingSink<'_> {
    fn push_reduced(&mut self, c: DeviceChunk) -> anyhow::Result<()> {
        self.bytes += 4 * (c.partials.len() + c.choices.len() + c.qvals.len()) as u64;
        self.reducer.add_device(&c)
    }
}

/// Measures a reduced run of `rows` positions of `plan` on `backend` (wrapping around).
pub fn measure_reduced(backend: &mut dyn Backend, plan: &Plan, rp: &ReducePlan, rows: u64) -> anyhow::Result<ReducedMeasurement> {
    let src = Cycle(plan, Some(rp));
    let group = |p: u64| rp.group(plan, p % plan.rows);
    let job = crate::backend::device::ReduceJob { want_rows: false, ..rp.device_job(plan, &group) };
    let go = |backend: &mut dyn Backend, n: u64| -> anyhow::Result<u64> {
        let reducer = Reducer::new(plan, rp, ReduceState::new(rp), 0);
        match backend.device_reduce() {
            Some(device) => {
                let mut sink = CountingSink { reducer, bytes: 0 };
                device.run_reduced(&src, 0..n, &job, &mut sink)?;
                Ok(sink.bytes)
            }
            None => {
                let mut reducer = reducer;
                backend.run(&src, 0..n, &mut reducer)?;
                Ok(0)
            }
        }
    };
    go(backend, rows.min(4 * rp.block_rows))?;
    let kernel_before = backend.kernel_seconds();
    let t = Instant::now();
    let (bytes, host) = HostCost::of(backend, rows, |b| go(b, rows))?;
    let end_to_end = rows as f64 / t.elapsed().as_secs_f64();
    let kernel = match (kernel_before, backend.kernel_seconds()) {
        (Some(a), Some(b)) if b > a => Some(rows as f64 / (b - a)),
        _ => None,
    };
    let read_back_per_scenario = backend.device_reduce().map(|_| bytes as f64 / rows as f64);
    Ok(ReducedMeasurement { end_to_end, read_back_per_scenario, kernel, host })
}

/// Host work per row, on one core: the reducer over f64 rows (the CPU path), and on
/// the GPU path packing a scenario's parameters and building the reduce tables.
pub struct HostRates {
    pub reduce_f64: f64,
    pub pack: f64,
    pub tables: f64,
}

pub fn host_rates(plan: &Plan, rp: &ReducePlan) -> anyhow::Result<HostRates> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool.install(|| -> anyhow::Result<HostRates> {
        let src = Cycle(plan, Some(rp));
        let n = (rp.block_rows * 8).min(plan.rows.max(1) * 64);
        let mut solved = crate::backend::Collect::default();
        CpuBackend::default().run(&src, 0..n, &mut solved)?;
        let time = |f: &mut dyn FnMut()| {
            let t = Instant::now();
            let mut k = 0u32;
            while k < 3 || t.elapsed().as_secs_f64() < 0.5 {
                f();
                k += 1;
            }
            n as f64 * k as f64 / t.elapsed().as_secs_f64()
        };
        let reduce_f64 = time(&mut || {
            let mut r = Reducer::new(plan, rp, ReduceState::new(rp), 0);
            r.add_rows(0, solved.f64.clone()).expect("in order");
        });
        let (nf, ns) = (plan.n_firms(), plan.n_segments());
        let stride = crate::gpu::layout::param_stride(nf, ns);
        let mut buf = vec![0f32; stride];
        let pack = time(&mut || {
            for p in 0..n {
                crate::gpu::layout::pack(&src.scenario(p), &mut buf);
            }
            std::hint::black_box(&buf);
        });
        let group = |p: u64| rp.group(plan, p % plan.rows);
        let job = crate::backend::device::ReduceJob { want_rows: false, ..rp.device_job(plan, &group) };
        let dispatch: Vec<u32> = (0..n as u32).collect();
        let tables = time(&mut || {
            std::hint::black_box(Tables::build(&job, 0, n as usize, &dispatch));
        });
        Ok(HostRates { reduce_f64, pack, tables })
    })
}

/// The ways a backend is measured: the CPU once; the GPU with its rows packed on
/// the host and, where the plan allows, made on the device (`--expand`).
fn modes(b: &dyn Backend, expand: ExpandChoice, device_ok: bool) -> Vec<Expand> {
    if b.info().kind != crate::backend::BackendKind::Gpu {
        return vec![Expand::Host];
    }
    let mut m = Vec::new();
    if expand != ExpandChoice::Device {
        m.push(Expand::Host);
    }
    if expand != ExpandChoice::Host && device_ok {
        m.push(Expand::Device);
    }
    m
}

/// Has the GPU make its rows where `mode` says (from `program`, already checked
/// to exist for device rows); the measurement's label.
fn switch_to(b: &mut dyn Backend, mode: Expand, program: &Result<Vec<u32>, String>) -> anyhow::Result<String> {
    if b.info().kind == crate::backend::BackendKind::Gpu {
        b.set_device_rows((mode == Expand::Device).then(|| program.clone().expect("checked")))?;
    }
    let label = backend_label(b);
    Ok(match (b.info().kind, mode) {
        (crate::backend::BackendKind::Gpu, Expand::Host) => format!("{label} host rows"),
        (crate::backend::BackendKind::Gpu, Expand::Device) => format!("{label} device rows"),
        _ => label,
    })
}

/// Scenarios per measurement, per backend.
#[derive(Clone, Copy, Debug)]
pub struct Rows {
    pub gpu: u64,
    pub cpu: u64,
}

impl Rows {
    fn of(&self, b: &dyn Backend) -> u64 {
        if b.info().kind == crate::backend::BackendKind::Gpu { self.gpu } else { self.cpu }
    }
}

pub fn bench(
    config_path: &Path,
    rows: Rows,
    adapter: Option<&str>,
    dispatch_budget: f64,
    expand: ExpandChoice,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let loaded = config::load(config_path)?;
    let plan = loaded.plan;
    let m = &plan.base.model;
    writeln!(
        out,
        "bench: {} ({} rows per GPU measurement, {} per CPU one; {} months, {} firms, {} segments; {} host threads)",
        config_path.display(),
        rows.gpu,
        rows.cpu,
        m.months,
        plan.base.n_firms,
        plan.base.n_segments,
        rayon::current_num_threads()
    )?;
    let mut backends: Vec<Box<dyn Backend>> = vec![Box::new(CpuBackend::default())];
    match GpuBackend::new(&GpuOptions {
        adapter: adapter.map(str::to_string),
        allow_software: true,
        chunk_rows: None,
        dispatch_budget: Some(dispatch_budget),
    }) {
        Ok(g) => backends.push(Box::new(g)),
        Err(e) => writeln!(out, "gpu: not measured ({e:#})")?,
    }
    // The device's programs: rows cycle over the plan (positions of the reduction).
    let rows_program = device_program(&plan, None, Some(plan.rows));
    let reduced_program = loaded.reduce.as_ref().map(|rp| device_program(&plan, Some(rp), Some(plan.rows)));
    if let Err(why) = &rows_program {
        writeln!(out, "gpu: rows made on the host only ({why})")?;
    }
    if let (ExpandChoice::Device, Err(why)) = (expand, &rows_program) {
        anyhow::bail!("--expand device: {why}");
    }
    let mut results = Vec::new();
    // Per device measurement, printed last: bytes, host CPU and kernel time per scenario.
    let mut costs = Vec::new();
    for b in backends.iter_mut() {
        for mode in modes(b.as_ref(), expand, rows_program.is_ok()) {
            let label = switch_to(b.as_mut(), mode, &rows_program)?;
            let n = rows.of(b.as_ref());
            let m = measure(b.as_mut(), &plan, n)?;
            let kernel = m.kernel.map_or(String::new(), |k| format!("   kernel only {k:>12.0} scenarios/s"));
            writeln!(
                out,
                "{label:<40} compute {:>10.0} scenarios/s   end to end (CSV, {:.1} MB) {:>10.0} scenarios/s{kernel}",
                m.compute,
                m.csv_bytes as f64 / 1e6,
                m.end_to_end
            )?;
            if let Some(line) = m.host.line() {
                costs.push(format!("{label} end to end (CSV): {line}"));
            }
            results.push((label, m));
        }
    }
    if let Some(((cpu, c), gpus)) = results.split_first() {
        for (gpu, g) in gpus {
            writeln!(out, "ratio {gpu} / {cpu}: compute {:.2}x, end to end {:.2}x", g.compute / c.compute, g.end_to_end / c.end_to_end)?;
        }
    }
    if let Some(rp) = &loaded.reduce {
        let row_bytes = 4 * crate::gpu::layout::out_stride(plan.base.n_firms);
        writeln!(
            out,
            "reduce: {} groups x {} outputs ({}){}; the kernel writes {row_bytes} B of outputs per scenario",
            rp.groups,
            rp.outputs.len(),
            rp.stats.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "),
            if rp.best.is_some() {
                ", best"
            } else if rp.game.is_some() {
                ", game"
            } else {
                ""
            }
        )?;
        let program = reduced_program.expect("a reduced plan has one");
        if let Err(why) = &program {
            writeln!(out, "gpu: reduced rows made on the host only ({why})")?;
        }
        for b in backends.iter_mut() {
            for mode in modes(b.as_ref(), expand, program.is_ok()) {
                let label = switch_to(b.as_mut(), mode, &program)?;
                let n = rows.of(b.as_ref());
                let r = measure_reduced(b.as_mut(), &plan, rp, n)?;
                let kernel = r.kernel.map_or(String::new(), |k| {
                    format!(" = {:.1}% of kernel only in the same run ({k:.0} scenarios/s)", 100.0 * r.end_to_end / k)
                });
                let back = r.read_back_per_scenario.map_or(String::new(), |b| {
                    format!("   read back {b:.3} B per scenario ({:.0}x less than the rows)", row_bytes as f64 / b.max(1e-12))
                });
                writeln!(out, "{label:<40} reduced end to end {:>10.0} scenarios/s{kernel}{back}", r.end_to_end)?;
                if let Some(line) = r.host.line() {
                    costs.push(format!("{label} reduced: {line}"));
                }
            }
        }
        let h = host_rates(&plan, rp)?;
        writeln!(
            out,
            "host, per core: reduce f64 rows {:.0} rows/s; GPU path: pack parameters {:.0} rows/s, reduce tables {:.0} rows/s",
            h.reduce_f64, h.pack, h.tables
        )?;
    }
    for line in costs {
        writeln!(out, "{line}")?;
    }
    Ok(())
}
