//! The GPU backend: the moat model in WGSL (`shaders/moat.wgsl`, f32) through wgpu.
//!
//! One long-lived [`context::Context`] holds the device, a pipeline per
//! (n_firms, n_segments) shape (the kernel's loops over firms and segments are
//! expanded for the shape before compiling, see [`source`]) and a ring of
//! buffer sets. A run packs each chunk's parameters on host threads (rayon),
//! uploads them, dispatches one invocation per scenario and reads the outputs back;
//! while chunk k is mapped, decoded and handed to the sink, the device already
//! computes chunk k+1. Memory stays bounded by the ring, whatever the row count.
//!
//! The data layout is in [`layout`]; the adapter choice honours `WGPU_BACKEND`,
//! `WGPU_ADAPTER_NAME` and the other variables wgpu reads from the environment.

pub mod bind;
pub mod context;
pub mod expand;
pub mod layout;
pub mod reduce;
pub mod source;

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{anyhow, bail};
use rayon::prelude::*;

use crate::backend::device::{DeviceReduce, DeviceSink, DeviceWorlds, Pick, ReduceJob};
use crate::backend::{Backend, BackendInfo, ChunkSink, Outcomes, ScenarioSource, TransferStats};
#[cfg(test)]
use crate::model::Out;
use crate::model::scaling::BISECTION_STEPS;
use crate::model::{MAX_FIRMS, MAX_SEGMENTS, Outcome, Scenario};
pub use context::DeviceFailure;
use context::{Context, POISON};
pub use source::{SHADER_SOURCE, specialized_source};

/// Set by a buffer's map callback: whether (and how) its mapping finished.
type MapFlag = Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>;

/// Invocations per workgroup (the shader's `WORKGROUP_SIZE` override).
pub const WORKGROUP_SIZE: u32 = 64;

/// Rows per chunk of [`GpuBackend::chunk_rows_for`] without
/// [`GpuOptions::chunk_rows`] (chunks were this size, cut for long horizons,
/// before they were sized by time).
pub const DEFAULT_CHUNK_ROWS: u64 = 65_536;

/// Rows x months of the first chunk of a run: the first chunk is solved alone and
/// timed, and later chunks are sized from the rate it showed
/// ([`ChunkSizer`]). 4,096 rows of 36 months take about 70 ms on lavapipe with two
/// cores and well under a millisecond on a desktop GPU, so even a device a
/// hundred times slower than lavapipe stays far below the 2 s after which
/// Windows resets a busy driver (TDR).
pub const FIRST_CHUNK_ROW_MONTHS: u64 = 4_096 * 36;

/// Rows x months per chunk for the previous default (65,536 rows of 36 months).
pub const DEFAULT_CHUNK_ROW_MONTHS: u64 = DEFAULT_CHUNK_ROWS * 36;

/// Seconds one submission (a chunk's kernel and reduce passes) may take by
/// default (`run --dispatch-budget`): a quarter of the 2 s watchdog of Windows and
/// of similar ones in other drivers.
pub const DEFAULT_DISPATCH_BUDGET_S: f64 = 0.5;

/// Chunks are sized for this fraction of the budget, so that rows up to twice as
/// slow as those measured (a design's rows differ) still fit it.
pub const BUDGET_SAFETY: f64 = 0.5;

/// A chunk is at most this many times the largest one timed so far: a rate
/// measured on a small chunk is not trusted for one far larger at once. (With
/// the ring, chunk k+1 is sized before chunk k is timed, and the first chunk,
/// timed alone, runs faster than later ones that share the host with decoding.)
pub const CHUNK_GROWTH: u64 = 4;

/// The largest buffer a time-sized chunk may need (its parameters or its
/// outputs), whatever the rate: bounds host and device memory (a ring of
/// [`RING`] sets of parameters, outputs and their read-back copy).
pub const MAX_CHUNK_BUFFER_BYTES: u64 = 64 << 20;

/// Sizes a run's chunks by time: the first chunk has a fixed, small size; each
/// finished chunk's submit-to-completion time gives a rate (rows per second),
/// and later chunks get `rate x budget x` [`BUDGET_SAFETY`] rows, where the rate
/// is the slowest of the last four measured. A chunk is a multiple of `unit` rows
/// (a reduction's block; at least one), at most [`CHUNK_GROWTH`] times the
/// largest one timed and at most `max` rows.
#[derive(Clone, Debug)]
pub struct ChunkSizer {
    budget_s: f64,
    unit: u64,
    max: u64,
    first: u64,
    recent: VecDeque<f64>,
    largest_timed: u64,
}

impl ChunkSizer {
    /// Every run starts afresh: a rate measured by an earlier run (another sink,
    /// other threads busy beside the device) is not trusted for this one.
    pub fn new(budget_s: f64, unit: u64, max: u64, first: u64) -> ChunkSizer {
        ChunkSizer { budget_s, unit: unit.max(1), max: max.max(1), first: first.max(1), recent: VecDeque::new(), largest_timed: 0 }
    }

    /// Rows per second to size by: the slowest recent measurement.
    pub fn rate(&self) -> Option<f64> {
        self.recent.iter().copied().reduce(f64::min)
    }

    /// The next chunk's rows.
    pub fn next(&self) -> u64 {
        let want = match self.rate() {
            None => self.first,
            Some(r) => {
                let by_time = (r * self.budget_s * BUDGET_SAFETY).min(u64::MAX as f64 / 2.0) as u64;
                by_time.min(self.largest_timed.saturating_mul(CHUNK_GROWTH))
            }
        };
        let whole = (self.max / self.unit).max(1) * self.unit;
        ((want / self.unit).max(1) * self.unit).min(whole)
    }

    /// A chunk of `rows` took `seconds` from submission to completion.
    pub fn record(&mut self, rows: u64, seconds: f64) {
        if self.recent.len() == 4 {
            self.recent.pop_front();
        }
        self.recent.push_back(rows as f64 / seconds.max(1e-6));
        self.largest_timed = self.largest_timed.max(rows);
    }
}

/// Buffer sets in the ring: one being computed while the other is read back.
pub const RING: usize = 2;

/// llvmpipe (Mesa's software Vulkan) silently ends every loop of an invocation
/// once 65,535 loop iterations in all have run (`LP_MAX_TGSI_LOOP_ITERATIONS`):
/// no error, just wrong rows. Runs that could reach it are refused there.
pub const LLVMPIPE_LOOP_CAP: u64 = 65_535;

/// The loop iterations one invocation of the kernel runs for `sc` at most, as
/// llvmpipe counts them: per month `max_iter` + 2 (the markup iterations, their
/// exit test and the month loop), per generation trained (the first, then one every
/// `generation_months` months) at most 60 + 2 (the bisection's halvings, which stop
/// early once the bracket no longer moves, and the generation loop), and 1. The
/// loops over firms and segments are expanded before compiling (see
/// [`specialized_source`]) and do not count. Measured on Mesa 22.3 (test
/// `measure_loop_cap`) with scenarios that never converge (tol = 0), on six shapes
/// (1x1 to 8x8 firms x segments, max_iter 7 to 200, generations every month,
/// every 5 or 12 months, or never): the month term is exact, and every row whose
/// count by this bound is within the cap ran whole. The kernel also flags any row
/// whose loops were cut (`layout::O_LOOPS_CUT`) and a run fails on such a row, so
/// a driver that counts differently cannot pass wrong rows silently.
pub fn loop_iterations(sc: &Scenario) -> u64 {
    let months = sc.model.months as u64;
    let max_iter = sc.model.max_iter as u64;
    let g = sc.model.generation_months as u64;
    let trainings = 1 + months.saturating_sub(1).checked_div(g).unwrap_or(0);
    trainings * (BISECTION_STEPS as u64 + 2) + 1 + months * (max_iter + 2)
}

/// The largest [`loop_iterations`] over `rows` of `src` (in parallel; one row when
/// the source says every row has the same horizon).
pub fn worst_case_loop_iterations(src: &dyn ScenarioSource, rows: Range<u64>) -> u64 {
    if src.horizon_fixed() && !rows.is_empty() {
        return loop_iterations(&src.scenario(rows.start));
    }
    rows.into_par_iter().map(|r| loop_iterations(&src.scenario(r))).max().unwrap_or(0)
}

/// One adapter, as `moatsweep adapters` lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AdapterSummary {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// A software rasteriser (llvmpipe/lavapipe, SwiftShader, WARP).
    pub software: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_compute_workgroups_per_dimension: u32,
    pub max_buffer_size: u64,
    pub timestamp_query: bool,
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}{}; driver {} {}; max storage binding {} MiB, max buffer {} MiB, \
             {} workgroups per dimension{})",
            self.name,
            self.backend,
            self.device_type,
            if self.software { ", software" } else { "" },
            if self.driver.is_empty() { "?" } else { &self.driver },
            self.driver_info,
            self.max_storage_buffer_binding_size >> 20,
            self.max_buffer_size >> 20,
            self.max_compute_workgroups_per_dimension,
            if self.timestamp_query { ", timestamps" } else { "" },
        )
    }
}

/// Every adapter with compute shaders on the backends the environment allows.
pub fn list_adapters() -> Vec<AdapterSummary> {
    let instance = context::instance();
    context::adapters(&instance).iter().map(context::summary).collect()
}

/// How to pick and drive the GPU.
#[derive(Clone, Debug, Default)]
pub struct GpuOptions {
    /// Case-insensitive substring of the adapter's name (else `WGPU_ADAPTER_NAME`,
    /// else the best hardware adapter).
    pub adapter: Option<String>,
    /// Accept a software adapter (llvmpipe, SwiftShader, WARP).
    pub allow_software: bool,
    /// Rows per chunk, fixed (capped by the device's limits); without it chunks
    /// are sized by time ([`ChunkSizer`]).
    pub chunk_rows: Option<u64>,
    /// Seconds one submission may take (default [`DEFAULT_DISPATCH_BUDGET_S`]).
    pub dispatch_budget: Option<f64>,
}

/// The f32 WGSL kernel on one adapter.
pub struct GpuBackend {
    ctx: Context,
    chunk_rows: Option<u64>,
    poison: bool,
    /// Kernel time summed over every chunk since creation (timestamp queries).
    kernel_ns: Option<f64>,
    skip_loop_check: bool,
    /// Seconds one submission may take.
    budget_s: f64,
    /// Bytes read back, submissions and the longest since the last
    /// [`Backend::take_transfer_stats`] (uploads are counted by the queue).
    read_back_bytes: u64,
    dispatches: u64,
    longest_dispatch_s: f64,
    /// When the previous chunk was seen to complete (while waiting for it); None
    /// when that is not known (it had completed before the wait).
    prev_done: Option<Instant>,
    /// The last finished chunk's rows and seconds from submission to completion.
    last_dispatch: Option<(u64, f64)>,
    /// While set, each chunk's scenarios are made on the device from this plan
    /// ([`expand`]) instead of packed and uploaded.
    device_rows: Option<Arc<expand::Loaded>>,
    /// Programs built so far, with their passes (a pass is compiled once per program).
    programs: Vec<(Vec<u32>, Arc<expand::Loaded>)>,
}

/// A chunk submitted and not yet handed to the sink.
struct InFlight {
    slot: usize,
    first_row: u64,
    rows: u64,
    submission: wgpu::SubmissionIndex,
    submitted: Instant,
    mapped: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>,
    /// Whether the rows were copied back (always, unless reduced without `rows = true`).
    rows_back: bool,
    reduced: Option<ReducedInFlight>,
}

/// The reduce passes' part of a chunk in flight.
struct ReducedInFlight {
    tables: reduce::Tables,
    outputs: usize,
    nash_words: usize,
    quantiles: bool,
    mapped: Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>,
}

/// What a finished chunk gives.
struct Finished {
    first: u64,
    outcomes: Option<Vec<Outcome<f32>>>,
    reduced: Option<reduce::DeviceChunk>,
}

impl GpuBackend {
    pub fn new(opts: &GpuOptions) -> anyhow::Result<GpuBackend> {
        let budget_s = opts.dispatch_budget.unwrap_or(DEFAULT_DISPATCH_BUDGET_S);
        if !(budget_s.is_finite() && budget_s > 0.0) {
            bail!("the dispatch budget must be a number of seconds above 0 (got {budget_s})");
        }
        let ctx = Context::new(opts)?;
        Ok(GpuBackend {
            ctx,
            chunk_rows: opts.chunk_rows.map(|r| r.max(1)),
            poison: false,
            kernel_ns: None,
            skip_loop_check: false,
            budget_s,
            read_back_bytes: 0,
            dispatches: 0,
            longest_dispatch_s: 0.0,
            prev_done: None,
            last_dispatch: None,
            device_rows: None,
            programs: Vec::new(),
        })
    }

    /// A software adapter (llvmpipe, SwiftShader, WARP).
    pub fn is_software(&self) -> bool {
        context::is_software_info(&self.ctx.info)
    }

    /// Whether this is Mesa's llvmpipe, with its loop-iteration cap.
    pub fn is_llvmpipe(&self) -> bool {
        context::is_llvmpipe_info(&self.ctx.info)
    }

    /// The adapter's summary line (name, backend, limits).
    pub fn adapter_summary(&self) -> AdapterSummary {
        context::summary(&self.ctx.adapter)
    }

    /// For tests: fill every output word with a sentinel before each dispatch and
    /// fail the run if any word of any row is left unwritten.
    pub fn poison_outputs(&mut self, on: bool) {
        self.poison = on;
        if !on {
            self.ctx.poison = None;
        }
    }

    #[doc(hidden)]
    pub fn run_unchecked_for_tests(&mut self, src: &dyn ScenarioSource, sink: &mut dyn ChunkSink) -> anyhow::Result<()> {
        self.skip_loop_check = true;
        let r = self.run(src, 0..1, sink);
        self.skip_loop_check = false;
        r
    }

    /// The parameter words the device makes from `program` for positions
    /// `first..first + rows` (the expansion pass alone, read back), to compare
    /// with the host's packing (tests and `scripts/device-check.sh`).
    pub fn expand_only(&mut self, program: Vec<u32>, n_firms: usize, n_segments: usize, first: u64, rows: u64) -> anyhow::Result<Vec<u32>> {
        let loaded = self.load(program)?;
        self.ctx.ensure_slots(RING, rows, n_firms, n_segments)?;
        let (gx, gy) = self.write_chunk(0, first, rows);
        let s = &self.ctx.slots[0];
        let bytes = rows * layout::param_stride(n_firms, n_segments) as u64 * 4;
        let readback = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("expand readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind = loaded.bind_group(&self.ctx.device, s);
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("expand only") });
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("expand"), timestamp_writes: None });
            pass.set_pipeline(&loaded.pipeline);
            pass.set_bind_group(0, &bind, &[]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        enc.copy_buffer_to_buffer(&s.params, 0, &readback, 0, bytes);
        self.ctx.queue.submit([enc.finish()]);
        readback.map_async(wgpu::MapMode::Read, .., |_| {});
        let _ = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
        self.ctx.check_errors()?;
        let words = {
            let view = readback.get_mapped_range(..).map_err(|e| anyhow!("could not map the expanded parameters: {e}"))?;
            bytemuck::cast_slice(&view).to_vec()
        };
        readback.unmap();
        Ok(words)
    }

    /// Writes slot `slot`'s chunk uniform for positions `first..first + rows`
    /// (rows, invocations per row of workgroups, the first position's two words)
    /// and returns the dispatch grid (workgroups in x and y).
    fn write_chunk(&self, slot: usize, first: u64, rows: u64) -> (u32, u32) {
        let groups = rows.div_ceil(WORKGROUP_SIZE as u64);
        let gx = groups.min(self.ctx.limits.max_compute_workgroups_per_dimension as u64);
        let pitch = gx * WORKGROUP_SIZE as u64;
        let words = [rows as u32, pitch as u32, first as u32, (first >> 32) as u32];
        self.ctx.queue.write_buffer(&self.ctx.slots[slot].uniform, 0, bytemuck::cast_slice(&words));
        (gx as u32, groups.div_ceil(gx) as u32)
    }

    /// The pass of `program`, built on its first use.
    fn load(&mut self, program: Vec<u32>) -> anyhow::Result<Arc<expand::Loaded>> {
        if let Some((_, l)) = self.programs.iter().find(|(w, _)| *w == program) {
            return Ok(l.clone());
        }
        let loaded = Arc::new(expand::Loaded::new(&self.ctx, program.clone())?);
        self.programs.push((program, loaded.clone()));
        Ok(loaded)
    }

    /// Rows per chunk for one shape and horizon when they are fixed:
    /// [`GpuOptions::chunk_rows`] if set, else [`DEFAULT_CHUNK_ROWS`] cut to
    /// [`DEFAULT_CHUNK_ROW_MONTHS`] / `months`; either way capped by
    /// [`GpuBackend::device_chunk_rows`].
    pub fn chunk_rows_for(&self, n_firms: usize, n_segments: usize, months: u32) -> u64 {
        let wanted = self.chunk_rows.unwrap_or_else(|| DEFAULT_CHUNK_ROWS.min(DEFAULT_CHUNK_ROW_MONTHS / months.max(1) as u64));
        wanted.min(self.device_chunk_rows(n_firms, n_segments)).max(1)
    }

    /// The most rows one chunk of this shape can have: the device's storage
    /// binding and buffer sizes and the 2D dispatch grid.
    pub fn device_chunk_rows(&self, n_firms: usize, n_segments: usize) -> u64 {
        let l = &self.ctx.limits;
        let row_bytes = 4 * layout::param_stride(n_firms, n_segments).max(layout::out_stride(n_firms)) as u64;
        let max_bytes = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
        let per_dim = l.max_compute_workgroups_per_dimension as u64;
        let grid = per_dim * per_dim * WORKGROUP_SIZE as u64;
        (max_bytes / row_bytes).min(grid).max(1)
    }

    /// The chunk sizer of a run of this shape and horizon (None: `chunk_rows` fixes
    /// the chunks): at most [`MAX_CHUNK_BUFFER_BYTES`] per buffer and the device's
    /// limits, the first chunk [`FIRST_CHUNK_ROW_MONTHS`] / `months` rows.
    fn sizer(&self, n_firms: usize, n_segments: usize, months: u32, unit: u64) -> Option<ChunkSizer> {
        if self.chunk_rows.is_some() {
            return None;
        }
        let row_bytes = 4 * layout::param_stride(n_firms, n_segments).max(layout::out_stride(n_firms)) as u64;
        let max = (MAX_CHUNK_BUFFER_BYTES / row_bytes).min(self.device_chunk_rows(n_firms, n_segments));
        let first = (FIRST_CHUNK_ROW_MONTHS / months.max(1) as u64).max(WORKGROUP_SIZE as u64);
        Some(ChunkSizer::new(self.budget_s, unit, max, first))
    }

    /// Packs the scenarios of rows `first_row..first_row + rows` on host threads
    /// and uploads them into slot `slot` (in the dispatch order of `coherent_order`).
    fn pack_chunk(&mut self, src: &dyn ScenarioSource, slot: usize, first_row: u64, rows: u64) -> anyhow::Result<()> {
        let (nf, ns) = (src.n_firms(), src.n_segments());
        let stride = layout::param_stride(nf, ns);
        let s = &mut self.ctx.slots[slot];
        s.host_params.resize(rows as usize * stride, 0.0);
        let bad_shape = AtomicU64::new(u64::MAX);
        let bad_range = AtomicU64::new(u64::MAX);
        s.host_params.par_chunks_mut(stride).enumerate().for_each(|(k, dst)| {
            let row = first_row + k as u64;
            let sc = src.scenario(row);
            if sc.n_firms != nf || sc.n_segments != ns || sc.model.months == 0 {
                bad_shape.fetch_min(row, Ordering::Relaxed);
                return;
            }
            layout::pack(&sc, dst);
            if !dst.iter().all(|x| x.is_finite()) {
                bad_range.fetch_min(row, Ordering::Relaxed);
            }
        });
        let bad = bad_shape.into_inner();
        if bad != u64::MAX {
            let sc = src.scenario(bad);
            bail!(
                "row {bad} has {} firms, {} segments and {} months, but the GPU kernel for this source \
                 was built for {nf} firms and {ns} segments (and needs at least one month)",
                sc.n_firms,
                sc.n_segments,
                sc.model.months
            );
        }
        let bad = bad_range.into_inner();
        if bad != u64::MAX {
            bail!(
                "row {bad} has a parameter beyond the range of f32 (about 3.4e38), which the GPU kernel \
                 computes in; use the CPU backend for it"
            );
        }
        let s = &mut self.ctx.slots[slot];
        coherent_order(&s.host_params, stride, nf, &mut s.order);
        if !s.order.is_empty() {
            s.host_sorted.resize(s.host_params.len(), 0.0);
            let (from, order) = (&s.host_params, &s.order);
            s.host_sorted.par_chunks_mut(stride).zip(order.par_iter()).for_each(|(dst, &k)| {
                dst.copy_from_slice(&from[k as usize * stride..][..stride]);
            });
        }
        let s = &self.ctx.slots[slot];
        let q = &self.ctx.queue;
        let upload = if s.order.is_empty() { &s.host_params } else { &s.host_sorted };
        q.write_buffer(&s.params, 0, bytemuck::cast_slice(upload));
        Ok(())
    }

    /// Submits one chunk into slot `slot`: its scenarios packed and uploaded, or made on the device.
    fn submit(
        &mut self,
        src: &dyn ScenarioSource,
        pipeline: &wgpu::ComputePipeline,
        slot: usize,
        first_row: u64,
        rows: u64,
        job: Option<&reduce::ReduceJob>,
    ) -> anyhow::Result<InFlight> {
        let nf = src.n_firms();
        if self.poison {
            let need = self.ctx.slots[slot].out_bytes;
            if self.ctx.poison.as_ref().is_none_or(|p| p.size() < need) {
                self.ctx.poison = Some(self.ctx.poison_buffer(need));
            }
        }
        if self.device_rows.is_some() {
            self.ctx.slots[slot].order.clear();
        } else {
            self.pack_chunk(src, slot, first_row, rows)?;
        }
        let (gx, gy) = self.write_chunk(slot, first_row, rows);
        let s = &self.ctx.slots[slot];
        let expand_bind = self.device_rows.as_ref().map(|d| d.bind_group(&self.ctx.device, s));

        let per_dim = self.ctx.limits.max_compute_workgroups_per_dimension as u64;
        let tables = match job {
            Some(job) => Some(self.prepare_reduce(job, slot, first_row, rows, nf, per_dim)?),
            None => None,
        };
        let s = &self.ctx.slots[slot];
        let q = &self.ctx.queue;
        let out_bytes = rows * layout::out_stride(nf) as u64 * 4;
        let mut enc = self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("moat chunk") });
        if let Some(p) = self.ctx.poison.as_ref().filter(|_| self.poison) {
            enc.copy_buffer_to_buffer(p, 0, &s.outputs, 0, out_bytes);
        }
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("moat"),
                timestamp_writes: s.queries.as_ref().map(|(set, _)| wgpu::ComputePassTimestampWrites {
                    query_set: set,
                    beginning_of_pass_write_index: Some(0),
                    end_of_pass_write_index: Some(1),
                }),
            });
            // The scenarios made on the device first (the kernel's time includes them).
            if let (Some(d), Some(bind)) = (&self.device_rows, &expand_bind) {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, bind, &[]);
                pass.dispatch_workgroups(gx, gy, 1);
            }
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &s.bind_group, &[]);
            pass.dispatch_workgroups(gx, gy, 1);
        }
        let grid = |n: u64| {
            let x = n.min(per_dim).max(1);
            (x as u32, n.div_ceil(x).max(1) as u32)
        };
        let mut reduced = None;
        if let (Some(job), Some(t)) = (job, tables) {
            let pipes = self.ctx.reduce.as_ref().expect("built by prepare_reduce");
            let (_, b) = s.reduce.as_ref().expect("sized by prepare_reduce");
            let j = job.outputs.len();
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("reduce"), timestamp_writes: None });
                pass.set_bind_group(0, &b.bind_group, &[]);
                if let (true, Some(wd)) = (t.worlds > 0, &job.worlds) {
                    let (x, y) = grid((t.worlds as u64).div_ceil(64));
                    pass.set_pipeline(if matches!(wd.pick, Pick::Game { .. }) { &pipes.game } else { &pipes.choose });
                    pass.dispatch_workgroups(x, y, 1);
                }
                if t.large > 0 {
                    let (x, y) = grid(t.large as u64);
                    pass.set_pipeline(&pipes.reduce);
                    pass.dispatch_workgroups(x, y, 1);
                }
                let small = t.segs.len() as u64 - t.large as u64;
                if small > 0 {
                    let (x, y) = grid(small.div_ceil(64));
                    pass.set_pipeline(&pipes.reduce_small);
                    pass.dispatch_workgroups(x, y, 1);
                }
            }
            let nash_words = job.worlds.as_ref().map_or(0, DeviceWorlds::nash_words);
            let (partial_bytes, choice_bytes, qval_bytes) = reduce_bytes(&t, j, nash_words, job.quantiles);
            if partial_bytes > 0 {
                enc.copy_buffer_to_buffer(&b.partials, 0, &b.readback, 0, partial_bytes);
            }
            if choice_bytes > 0 {
                // The worlds buffer: [picked rows' positions | picked indices | equilibria]; the last two come back.
                enc.copy_buffer_to_buffer(&b.worlds, 4 * t.worlds as u64, &b.readback, partial_bytes, choice_bytes);
            }
            if qval_bytes > 0 {
                enc.copy_buffer_to_buffer(&b.qvals, 0, &b.readback, partial_bytes + choice_bytes, qval_bytes);
            }
            reduced =
                Some(ReducedInFlight { tables: t, outputs: j, nash_words, quantiles: job.quantiles, mapped: Arc::new(Mutex::new(None)) });
        }
        let rows_back = job.is_none_or(|j| j.want_rows);
        if rows_back {
            enc.copy_buffer_to_buffer(&s.outputs, 0, &s.readback, 0, out_bytes);
        }
        if let Some((set, resolve)) = &s.queries {
            enc.resolve_query_set(set, 0..2, resolve, 0);
            enc.copy_buffer_to_buffer(resolve, 0, &s.readback, s.ts_offset, 16);
        }
        let commands = enc.finish();
        let submitted = Instant::now();
        let submission = q.submit([commands]);
        let mapped = Arc::new(Mutex::new(None));
        let mut read_back = 0;
        {
            let mapped = mapped.clone();
            let range = if rows_back { 0..s.ts_offset + 16 } else { s.ts_offset..s.ts_offset + 16 };
            // What was copied into the mapped range: the rows, the timestamps.
            read_back += if rows_back { out_bytes } else { 0 } + if s.queries.is_some() { 16 } else { 0 };
            s.readback.map_async(wgpu::MapMode::Read, range, move |r| {
                *mapped.lock().unwrap() = Some(r);
            });
        }
        if let Some(r) = &reduced {
            let (_, b) = s.reduce.as_ref().expect("sized by prepare_reduce");
            let (p, c, qv) = reduce_bytes(&r.tables, r.outputs, r.nash_words, r.quantiles);
            read_back += p + c + qv;
            let mapped = r.mapped.clone();
            if p + c + qv == 0 {
                *mapped.lock().unwrap() = Some(Ok(()));
            } else {
                b.readback.map_async(wgpu::MapMode::Read, 0..p + c + qv, move |r| {
                    *mapped.lock().unwrap() = Some(r);
                });
            }
        }
        self.read_back_bytes += read_back;
        self.ctx.check_errors()?;
        Ok(InFlight { slot, first_row, rows, submission, submitted, mapped, rows_back, reduced })
    }

    /// Builds a chunk's reduce tables, sizes the slot's reduce buffers and uploads them.
    fn prepare_reduce(
        &mut self,
        job: &reduce::ReduceJob,
        slot: usize,
        first_row: u64,
        rows: u64,
        nf: usize,
        per_dim: u64,
    ) -> anyhow::Result<reduce::Tables> {
        if self.ctx.reduce.is_none() {
            self.ctx.reduce = Some(reduce::Pipelines::new(&self.ctx.device)?);
        }
        let s = &mut self.ctx.slots[slot];
        // Position k of the chunk sits at dispatch position dispatch[k].
        let dispatch: Vec<u32> = if s.order.is_empty() {
            (0..rows as u32).collect()
        } else {
            let mut d = vec![0u32; rows as usize];
            for (p, &k) in s.order.iter().enumerate() {
                d[k as usize] = p as u32;
            }
            d
        };
        let mut t = reduce::Tables::build(job, first_row, rows as usize, &dispatch);
        let j = job.outputs.len();
        if job.quantiles && t.segs.len() as u64 * j as u64 >= reduce::SKETCH_HEADER as u64 {
            bail!(
                "a chunk of {rows} rows has too many (segment, output) pairs for the GPU's quantile counts; use fewer outputs or the CPU backend"
            );
        }
        let picks = match job.worlds.as_ref().map(|w| &w.pick) {
            Some(Pick::Game { payoffs, .. }) => payoffs.len(),
            _ => 1,
        };
        let nash_words = job.worlds.as_ref().map_or(0, DeviceWorlds::nash_words);
        let need = reduce::Sizes::of(&t, j, picks, nash_words, job.quantiles);
        let pipes = self.ctx.reduce.as_ref().expect("built above");
        reduce::ensure(&self.ctx.device, pipes, &s.outputs, &mut s.reduce, need);
        let (_, b) = s.reduce.as_ref().expect("sized above");
        let q = &self.ctx.queue;
        if job.quantiles {
            // The sketch counts: read back room for what the chunks so far wrote per
            // row, with a margin; `finish` fetches the rest if a chunk writes more.
            let guess = (pipes.sketch_per_row * rows as f64 * 1.5).ceil() as u64 + 16 * j as u64 + 1;
            t.sketch_cap = guess.min(t.sketch_words(j));
            q.write_buffer(&b.qvals, 0, bytemuck::bytes_of(&0u32));
        }
        if !t.items.is_empty() {
            q.write_buffer(&b.items, 0, bytemuck::cast_slice(&t.items));
        }
        if !t.segs.is_empty() {
            q.write_buffer(&b.segs, 0, bytemuck::cast_slice(&t.segs));
        }
        // The reduced outputs' columns, then the objective (`best`) or each player's payoff (`game`).
        let mut cols: Vec<[u32; 4]> = job.outputs.iter().copied().map(reduce::column).collect();
        let (mut maximize, mut sizes) = (0, [1u32; 4]);
        match job.worlds.as_ref().map(|w| &w.pick) {
            None => cols.push([0; 4]),
            Some(Pick::Best { objective, maximize: m }) => {
                cols.push(reduce::column(*objective));
                maximize = *m as u32;
            }
            Some(Pick::Game { payoffs, sizes: n }) => {
                cols.extend(payoffs.iter().copied().map(reduce::column));
                for (d, &n) in sizes.iter_mut().zip(n) {
                    *d = n as u32;
                }
            }
        }
        q.write_buffer(&b.cols, 0, bytemuck::cast_slice(&cols));
        let players = match job.worlds.as_ref().map(|w| &w.pick) {
            Some(Pick::Game { payoffs, .. }) => payoffs.len() as u32,
            _ => 0,
        };
        let table = crate::reduce::sketch::device_buckets()?;
        let params: [u32; 24] = [
            t.segs.len() as u32,
            t.worlds,
            j as u32,
            job.worlds.as_ref().map_or(0, |w| w.rows as u32),
            maximize,
            layout::out_stride(nf) as u32,
            per_dim as u32,
            job.quantiles as u32,
            t.world_base,
            players,
            nash_words as u32,
            t.large,
            sizes[0],
            sizes[1],
            sizes[2],
            sizes[3],
            table.shift as u32,
            table.inv_ln_gamma.to_bits(),
            table.buckets.len() as u32,
            0,
            t.implicit as u32,
            job.worlds.as_ref().map_or(0, |w| w.reference as u32),
            t.ref_base,
            0,
        ];
        q.write_buffer(&b.params, 0, bytemuck::cast_slice(&params));
        Ok(t)
    }

    /// Waits for a chunk's results to be mapped and records how long it took from
    /// its submission: to its completion as seen here, from the previous chunk's
    /// completion when this one was queued behind it. A bound from above: where
    /// the chunk had completed before the wait began, the time until then counts.
    fn wait(&mut self, f: &InFlight) -> anyhow::Result<()> {
        let flags: Vec<&MapFlag> = std::iter::once(&f.mapped).chain(f.reduced.as_ref().map(|r| &r.mapped)).collect();
        let mut done = vec![false; flags.len()];
        let (mut polled, mut blocked) = (false, false);
        loop {
            for (k, m) in flags.iter().enumerate() {
                let result = if done[k] { None } else { m.lock().unwrap().take() };
                if let Some(r) = result {
                    r.map_err(|e| self.ctx.failure(format!("could not map its results back ({e})")))?;
                    done[k] = true;
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
            // First a poll that does not wait (it runs the callbacks of work already
            // done), then one that does.
            let poll = if polled {
                blocked = true;
                wgpu::PollType::Wait { submission_index: Some(f.submission.clone()), timeout: None }
            } else {
                polled = true;
                wgpu::PollType::Poll
            };
            self.ctx.device.poll(poll).map_err(|e| self.ctx.failure(format!("was lost or timed out ({e})")))?;
            self.ctx.check_errors()?;
        }
        let now = Instant::now();
        let start = self.prev_done.filter(|&t| t > f.submitted).unwrap_or(f.submitted);
        let seconds = now.duration_since(start).as_secs_f64();
        self.prev_done = blocked.then_some(now);
        self.dispatches += 1;
        self.longest_dispatch_s = self.longest_dispatch_s.max(seconds);
        self.last_dispatch = Some((f.rows, seconds));
        Ok(())
    }

    /// Waits for a chunk and decodes what came back: its rows, its reduce partials.
    fn finish(&mut self, f: InFlight, n_firms: usize) -> anyhow::Result<Finished> {
        self.wait(&f)?;
        let s = &self.ctx.slots[f.slot];
        let stride = layout::out_stride(n_firms);
        let words = f.rows as usize * stride;
        let outcomes: Option<Result<Vec<Outcome<f32>>, String>> = {
            // Without the rows, only the timestamps were mapped.
            let from = if f.rows_back { 0 } else { s.ts_offset };
            let view = s.readback.get_mapped_range(from..s.ts_offset + 16).map_err(|e| anyhow!("could not map the GPU's results: {e}"))?;
            let all: &[u32] = bytemuck::cast_slice(&view[..]);
            if let Some((_, _)) = &s.queries {
                let at = (s.ts_offset - from) as usize;
                let ticks: &[u64] = bytemuck::cast_slice(&view[at..at + 16]);
                let period = self.ctx.queue.get_timestamp_period() as f64;
                let ns = ticks[1].wrapping_sub(ticks[0]) as f64 * period;
                *self.kernel_ns.get_or_insert(0.0) += ns;
            }
            let out = &all[..words.min(all.len())];
            let poison = self.poison;
            if !f.rows_back {
                None
            } else if s.order.is_empty() {
                Some(out.par_chunks(stride).enumerate().map(|(k, w)| decode_row(w, n_firms, f.first_row + k as u64, poison)).collect())
            } else {
                // Back to row order: row k sits at dispatch position position[k].
                let mut position = vec![0u32; s.order.len()];
                for (p, &k) in s.order.iter().enumerate() {
                    position[k as usize] = p as u32;
                }
                Some(
                    position
                        .par_iter()
                        .enumerate()
                        .map(|(k, &p)| decode_row(&out[p as usize * stride..][..stride], n_firms, f.first_row + k as u64, poison))
                        .collect(),
                )
            }
        };
        s.readback.unmap();
        let outcomes = outcomes.transpose().map_err(|e| anyhow!(e))?;
        let reduced = match f.reduced {
            None => None,
            Some(r) => {
                let (_, b) = s.reduce.as_ref().expect("a reduced chunk has reduce buffers");
                let (p, c, q) = reduce_bytes(&r.tables, r.outputs, r.nash_words, r.quantiles);
                let (partials, mut choices, mut qvals) = if p + c + q == 0 {
                    (Vec::new(), Vec::new(), Vec::new())
                } else {
                    let view = b.readback.get_mapped_range(..p + c + q).map_err(|e| anyhow!("could not map the GPU's partials: {e}"))?;
                    let words: &[u32] = bytemuck::cast_slice(&view[..]);
                    let (p, c) = ((p / 4) as usize, (c / 4) as usize);
                    (words[..p].to_vec(), words[p..p + c].to_vec(), words[p + c..].to_vec())
                };
                // A game's equilibria follow the picked indices.
                let nash = choices.split_off((r.tables.worlds as usize).min(choices.len()));
                if p + c + q > 0 {
                    b.readback.unmap();
                }
                if r.quantiles {
                    qvals = self.sketch_counts(f.slot, &r, qvals, f.rows)?;
                }
                let n = r.tables.segs.len();
                let cut_rows = partials.get(n * r.outputs * reduce::PARTIAL_WORDS..).map_or(0, |w| w.iter().map(|&x| x as u64).sum());
                if cut_rows > 0 {
                    bail!(
                        "the GPU driver ended the kernel's loops early in {cut_rows} rows of positions {}..{} (llvmpipe stops an \
                         invocation's loops after {LLVMPIPE_LOOP_CAP} iterations in all): lower months or max_iter, or use the CPU backend",
                        f.first_row,
                        f.first_row + f.rows
                    );
                }
                Some(reduce::DeviceChunk {
                    first: f.first_row,
                    rows: f.rows,
                    segments: r.tables.info,
                    partials,
                    cut_rows,
                    world_groups: r.tables.world_groups,
                    choices,
                    nash,
                    qvals,
                    outcomes: None,
                })
            }
        };
        Ok(Finished { first: f.first_row, outcomes, reduced })
    }

    /// The sketch runs of a chunk from the first words of its sketch buffer (its
    /// count word, then as many words as were read back): the words beyond those
    /// are fetched now, in a copy of their own. Also sizes the next chunks' read-back.
    fn sketch_counts(&mut self, slot: usize, r: &ReducedInFlight, mut head: Vec<u32>, rows: u64) -> anyhow::Result<Vec<u32>> {
        let used = head.first().copied().unwrap_or(0) as u64;
        let have = head.len() as u64;
        if 1 + used > r.tables.sketch_words(r.outputs) {
            bail!("the GPU wrote {used} words of quantile counts, more than their buffer holds");
        }
        if let Some(p) = self.ctx.reduce.as_mut() {
            p.sketch_per_row = p.sketch_per_row.max((1 + used) as f64 / rows.max(1) as f64);
        }
        let (_, b) = self.ctx.slots[slot].reduce.as_ref().expect("a reduced chunk has reduce buffers");
        if 1 + used > have {
            // The rest, from the same slot's buffer (no later chunk has used the slot yet).
            let bytes = 4 * (1 + used - have);
            let dev = &self.ctx.device;
            let rest = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("sketch rest"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("sketch rest") });
            enc.copy_buffer_to_buffer(&b.qvals, 4 * have, &rest, 0, bytes);
            let submission = self.ctx.queue.submit([enc.finish()]);
            let mapped: MapFlag = Arc::new(Mutex::new(None));
            let flag = mapped.clone();
            rest.slice(..).map_async(wgpu::MapMode::Read, move |m| *flag.lock().unwrap() = Some(m));
            dev.poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None })
                .map_err(|e| self.ctx.failure(format!("was lost or timed out ({e})")))?;
            self.ctx.check_errors()?;
            match mapped.lock().unwrap().take() {
                Some(Ok(())) => {}
                Some(Err(e)) => return Err(self.ctx.failure(format!("could not map its results back ({e})"))),
                None => bail!("the GPU's quantile counts were not mapped back"),
            }
            {
                let view = rest.slice(..).get_mapped_range().map_err(|e| anyhow!("could not map the GPU's quantile counts: {e}"))?;
                head.extend_from_slice(bytemuck::cast_slice(&view[..]));
            }
            rest.unmap();
            self.read_back_bytes += bytes;
        }
        head.truncate(1 + used as usize);
        head.remove(0);
        Ok(head)
    }

    /// Checks a source's shape and (on llvmpipe) its loop count, builds its
    /// pipeline; returns the pipeline and the longest horizon seen in the rows.
    fn prepare(&mut self, src: &dyn ScenarioSource, rows: &Range<u64>) -> anyhow::Result<(wgpu::ComputePipeline, u32)> {
        let (nf, ns) = (src.n_firms(), src.n_segments());
        if !(1..=MAX_FIRMS).contains(&nf) || !(1..=MAX_SEGMENTS).contains(&ns) {
            bail!("the GPU kernel needs 1 to {MAX_FIRMS} firms and 1 to {MAX_SEGMENTS} segments (got {nf} and {ns})");
        }
        if self.is_llvmpipe() && !self.skip_loop_check {
            let worst = worst_case_loop_iterations(src, rows.clone());
            if worst > LLVMPIPE_LOOP_CAP {
                let (months, max_iter) = rows
                    .clone()
                    .into_par_iter()
                    .map(|r| {
                        let sc = src.scenario(r);
                        (loop_iterations(&sc), sc.model.months, sc.model.max_iter)
                    })
                    .max()
                    .map(|(_, m, i)| (m, i))
                    .unwrap_or_default();
                bail!(
                    "this sweep cannot run on llvmpipe: a scenario with months = {months} and max_iter = {max_iter} \
                     may need up to {worst} loop iterations in one GPU invocation, and llvmpipe silently stops \
                     an invocation's loops after {LLVMPIPE_LOOP_CAP} (months x (max_iter + 2) + 62 x generations + 1 must \
                     stay within that); lower months or max_iter, or use the CPU backend"
                );
            }
        }
        let pipeline = self.ctx.pipeline(nf, ns)?;
        // The horizon, from up to 64 rows spread over the range (months may be an axis).
        let len = rows.end - rows.start;
        let months = (0..64.min(len))
            .map(|k| src.scenario(rows.start + k * len / 64.min(len)).model.months)
            .chain([src.scenario(rows.end - 1).model.months])
            .max()
            .unwrap_or(1);
        Ok((pipeline, months))
    }

    /// Runs `rows` of `src` in chunks (sized by time, or `chunk_rows`; whole blocks
    /// of a reduction when `job` is given), computing chunk k+1 while chunk k is
    /// decoded and handed on. Until a chunk has been timed, each is waited for
    /// before the next is submitted, so that the first measurement is its own.
    fn run_chunks(
        &mut self,
        src: &dyn ScenarioSource,
        rows: Range<u64>,
        job: Option<&reduce::ReduceJob>,
        mut hand: impl FnMut(&mut Self, Finished) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (pipeline, months) = self.prepare(src, &rows)?;
        let (nf, ns) = (src.n_firms(), src.n_segments());
        let unit = job.map_or(1, |j| j.block_rows.max(1));
        let mut sizer = self.sizer(nf, ns, months, unit);
        let fixed = (self.chunk_rows_for(nf, ns, months) / unit).max(1) * unit;
        self.prev_done = None;
        self.last_dispatch = None;
        let mut pending: VecDeque<InFlight> = Default::default();
        let mut start = rows.start;
        let mut k = 0usize;
        let result = (|| {
            let mut finish_one = |me: &mut Self, f: InFlight, sizer: &mut Option<ChunkSizer>| -> anyhow::Result<()> {
                let done = me.finish(f, nf)?;
                if let (Some(s), Some((n, secs))) = (sizer.as_mut(), me.last_dispatch.take()) {
                    s.record(n, secs);
                }
                hand(me, done)
            };
            while start < rows.end {
                let n = sizer.as_ref().map_or(fixed, ChunkSizer::next).min(rows.end - start);
                if !self.ctx.slots_fit(RING, n, nf, ns) {
                    // New buffers: every chunk in flight on the old ones first.
                    while let Some(f) = pending.pop_front() {
                        finish_one(self, f, &mut sizer)?;
                    }
                    let room = sizer.as_ref().map_or(n, |s| (2 * n).min(s.max).max(n));
                    self.ctx.ensure_slots(RING, room, nf, ns)?;
                }
                let slot = k % RING;
                if pending.len() == RING {
                    let f = pending.pop_front().unwrap();
                    finish_one(self, f, &mut sizer)?;
                }
                if crate::testhook::lose_device_now() {
                    self.ctx.device.destroy();
                }
                pending.push_back(self.submit(src, &pipeline, slot, start, n, job)?);
                // The device computes this chunk while the previous one is decoded
                // (once a chunk has been timed).
                let untimed = sizer.as_ref().is_some_and(|s| s.rate().is_none());
                if pending.len() > 1 || untimed {
                    let f = pending.pop_front().unwrap();
                    finish_one(self, f, &mut sizer)?;
                }
                start += n;
                k += 1;
            }
            while let Some(f) = pending.pop_front() {
                finish_one(self, f, &mut sizer)?;
            }
            Ok(())
        })();
        if result.is_err() {
            // Leave no buffer mapped or pending for the next run.
            let _ = self.ctx.device.poll(wgpu::PollType::wait_indefinitely());
            for f in pending {
                if f.mapped.lock().unwrap().take().is_some_and(|r| r.is_ok()) {
                    self.ctx.slots[f.slot].readback.unmap();
                }
                if let Some(r) = &f.reduced
                    && r.mapped.lock().unwrap().take().is_some_and(|r| r.is_ok())
                    && let Some((_, b)) = self.ctx.slots[f.slot].reduce.as_ref()
                {
                    b.readback.unmap();
                }
            }
        }
        result
    }
}

impl DeviceReduce for GpuBackend {
    /// Reduces each chunk with `shaders/reduce.wgsl` after the kernel.
    fn run_reduced(
        &mut self,
        src: &dyn ScenarioSource,
        rows: Range<u64>,
        job: &ReduceJob,
        sink: &mut dyn DeviceSink,
    ) -> anyhow::Result<()> {
        // The reduce pass's loops, as llvmpipe counts them: per output two passes over a
        // segment (at most a block) and two trees, plus the cut-row count.
        // Short segments (`reduce_small`): every item of a segment in one invocation.
        let per_segment = job.block_rows.div_ceil(64);
        let small = reduce::SMALL as u64;
        // With quantiles, each output's bucket counts too (`reduce::sketch_loop_iterations`).
        let sketch = if job.quantiles { reduce::sketch_loop_iterations(job.block_rows) } else { 0 };
        let iterations = (job.outputs.len() as u64 * (2 * per_segment + 14 + sketch) + per_segment)
            .max(job.outputs.len() as u64 * (1 + 2 * small + sketch) + small);
        if self.is_llvmpipe() && iterations > LLVMPIPE_LOOP_CAP {
            bail!(
                "this reduction cannot run on llvmpipe: its reduce pass may need {iterations} loop iterations in one invocation, above llvmpipe's {LLVMPIPE_LOOP_CAP}; reduce fewer outputs or use the CPU backend"
            );
        }
        if let Some(Pick::Game { sizes, .. }) = job.worlds.as_ref().map(|w| &w.pick) {
            let iterations = reduce::game_loop_iterations(sizes);
            if self.is_llvmpipe() && iterations > LLVMPIPE_LOOP_CAP {
                bail!(
                    "this game cannot run on llvmpipe: solving one world's payoff table ({} profiles) may need {iterations} loop iterations in one invocation, above llvmpipe's {LLVMPIPE_LOOP_CAP}; give the players fewer values or use the CPU backend",
                    sizes.iter().product::<usize>()
                );
            }
        }
        self.run_chunks(src, rows, Some(job), |_, done| {
            let mut chunk = done.reduced.expect("a reduced chunk");
            chunk.outcomes = done.outcomes.map(Outcomes::F32);
            sink.push_reduced(chunk)
        })
    }
}

/// Bytes read back per chunk by the reduce passes, with the chunk: partials (with
/// the cut-row counts), the worlds' choices, and the first words of the quantile
/// counts (`finish` fetches any beyond them on its own).
fn reduce_bytes(t: &reduce::Tables, outputs: usize, nash_words: usize, quantiles: bool) -> (u64, u64, u64) {
    (
        4 * (t.segs.len() * (outputs * reduce::PARTIAL_WORDS + 1)) as u64,
        4 * t.worlds as u64 * (1 + nash_words as u64),
        if quantiles { 4 * t.sketch_cap } else { 0 },
    )
}

/// The order in which to dispatch a chunk's rows (packed in `params`, `stride`
/// floats each), into `order`: stably sorted by the first release month, then by
/// each firm's release month. Rows that release at the same months need similar
/// numbers of markup iterations month by month (a month before any release
/// usually takes one, a month after it five to twenty), and a GPU runs
/// neighbouring invocations in lockstep (a warp, or llvmpipe's 8 SIMD lanes) for
/// as long as the slowest of them: on a sampled design such as
/// configs/release-timing-lhs.toml this ordering cuts the lockstep markup
/// iterations by about a third. Each row's result does not depend on its
/// neighbours, so the CSV is the same byte for byte. `order` is left empty when
/// the rows are already in that order (as on most grids).
fn coherent_order(params: &[f32], stride: usize, n_firms: usize, order: &mut Vec<u32>) {
    let l = layout::param_layout();
    let at: Vec<usize> = (0..n_firms).map(|i| l.firm_offset(i, crate::model::params::firm::release_month().name)).collect();
    let release = |k: u32, i: usize| params[k as usize * stride + at[i]];
    // -1 (never) sorts after every month.
    let month = |m: f32| if m < 0.0 { f32::MAX } else { m };
    let first = |k: u32| (0..n_firms).map(|i| month(release(k, i))).fold(f32::MAX, f32::min);
    let key_cmp = |a: u32, b: u32| {
        first(a).total_cmp(&first(b)).then_with(|| {
            (0..n_firms)
                .map(|i| month(release(a, i)).total_cmp(&month(release(b, i))))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
    };
    let rows = (params.len() / stride) as u32;
    order.clear();
    if (1..rows).into_par_iter().all(|k| key_cmp(k - 1, k).is_le()) {
        return;
    }
    order.extend(0..rows);
    order.par_sort_by(|&a, &b| key_cmp(a, b)); // stable: ties keep row order
}

/// One row of the output buffer: an error when the kernel flagged its loops as
/// cut (llvmpipe's cap) or, with `poison`, when a word still holds the sentinel.
fn decode_row(w: &[u32], n_firms: usize, row: u64, poison: bool) -> Result<Outcome<f32>, String> {
    // The flag first: a cut row may also have left words unwritten.
    if w[layout::O_LOOPS_CUT] == 1 {
        return Err(format!(
            "the GPU driver ended the kernel's loops early at row {row} (llvmpipe stops an \
             invocation's loops after {LLVMPIPE_LOOP_CAP} iterations in all): lower months \
             or max_iter, or use the CPU backend"
        ));
    }
    if poison && let Some(p) = w.iter().position(|&x| x == POISON) {
        return Err(format!("row {row} word {p} of {} was not written by the kernel", w.len()));
    }
    Ok(layout::unpack(w, n_firms))
}

impl Backend for GpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: crate::backend::BackendKind::Gpu,
            precision: crate::backend::Precision::F32,
            threads: rayon::current_num_threads(),
            adapter: Some(crate::sweep::provenance::AdapterInfo::of(&self.ctx.info)),
        }
    }

    fn run(&mut self, src: &dyn ScenarioSource, rows: Range<u64>, sink: &mut dyn ChunkSink) -> anyhow::Result<()> {
        self.run_chunks(src, rows, None, |_, done| {
            let outcomes = done.outcomes.expect("rows are read back without a reduction");
            sink.push(done.first, Outcomes::F32(outcomes))
        })
    }

    /// Kernel time in seconds summed over every run since the backend was created
    /// (take differences to time one run); None without timestamp queries, or
    /// before the first chunk.
    fn kernel_seconds(&self) -> Option<f64> {
        self.kernel_ns.map(|ns| ns * 1e-9)
    }

    fn device_reduce(&mut self) -> Option<&mut dyn DeviceReduce> {
        Some(self)
    }

    /// The rows made on the device: the plan's words uploaded once ([`expand`]).
    fn set_device_rows(&mut self, program: Option<Vec<u32>>) -> anyhow::Result<()> {
        self.device_rows = match program {
            Some(words) => Some(self.load(words)?),
            None => None,
        };
        Ok(())
    }

    fn take_transfer_stats(&mut self) -> Option<TransferStats> {
        let stats = TransferStats {
            expand: if self.device_rows.is_some() { crate::backend::Expand::Device } else { crate::backend::Expand::Host },
            uploaded_bytes: self.ctx.queue.uploaded.swap(0, Ordering::Relaxed),
            read_back_bytes: std::mem::take(&mut self.read_back_bytes),
            dispatches: std::mem::take(&mut self.dispatches),
            longest_dispatch_s: std::mem::take(&mut self.longest_dispatch_s),
            dispatch_budget_s: self.chunk_rows.is_none().then_some(self.budget_s),
        };
        Some(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_row_catches_unwritten_words_and_cut_loops() {
        let nf = 2;
        let mut w = vec![0u32; layout::out_stride(nf)];
        let words = layout::word;
        w[words(Out::ExitMonth, 0)] = (-1.0f32).to_bits();
        w[words(Out::Share, 1)] = 0.25f32.to_bits();
        let o = decode_row(&w, nf, 7, true).unwrap();
        assert_eq!([o.firm(Out::ExitMonth, 0), o.firm(Out::ExitMonth, 1)], [-1.0, 0.0]);
        assert_eq!(o.firm(Out::Share, 1), 0.25);

        let mut poisoned = w.clone();
        poisoned[words(Out::Npv, 0)] = POISON;
        let e = decode_row(&poisoned, nf, 7, true).unwrap_err();
        assert!(e.contains("row 7") && e.contains("not written"), "{e}");
        assert!(decode_row(&poisoned, nf, 7, false).is_ok());

        let mut cut = poisoned;
        cut[layout::O_LOOPS_CUT] = 1;
        let e = decode_row(&cut, nf, 7, false).unwrap_err();
        assert!(e.contains("ended the kernel's loops early at row 7"), "{e}");
    }

    #[test]
    fn coherent_order_groups_rows_by_release_months_stably() {
        let (nf, ns) = (3, 2);
        let stride = layout::param_stride(nf, ns);
        // Row r: firm 0 releases at month r % 3 (2 = never), firm 2 at (r / 3) % 2.
        let months = |r: usize| [[0.0, 1.0, -1.0][r % 3], -1.0, [5.0, 4.0][(r / 3) % 2]];
        let mut params = vec![0.0f32; 12 * stride];
        for r in 0..12 {
            for (i, m) in months(r).into_iter().enumerate() {
                params[r * stride + layout::param_layout().firm_offset(i, crate::model::params::firm::release_month().name)] = m;
            }
        }
        let mut order = Vec::new();
        coherent_order(&params, stride, nf, &mut order);
        // First release month (then firm by firm), "never" last, ties in row order.
        let key = |r: usize| {
            let m = months(r).map(|m| if m < 0.0 { 99.0 } else { m });
            (m.iter().cloned().fold(99.0, f32::min), m)
        };
        let mut want: Vec<u32> = (0..12).collect();
        want.sort_by(|&a, &b| key(a as usize).partial_cmp(&key(b as usize)).unwrap());
        assert_eq!(order, want);
        assert_eq!(&order[..4], &[3, 9, 0, 6], "month-0 releases first, then by firm 2, ties in row order");

        // Rows already in that order need no permutation.
        let sorted: Vec<f32> = want.iter().flat_map(|&r| params[r as usize * stride..][..stride].to_vec()).collect();
        coherent_order(&sorted, stride, nf, &mut order);
        assert!(order.is_empty());
    }

    #[test]
    fn chunk_sizer_starts_small_then_sizes_by_the_slowest_recent_rate() {
        // 0.5 s budget, chunks of whole 100-row blocks, at most 1e6 rows, 4,096 first.
        let mut s = ChunkSizer::new(0.5, 100, 1_000_000, 4_096);
        assert_eq!(s.next(), 4_000, "the first size, cut to whole blocks");
        // 4,000 rows in 0.1 s: 40,000 rows/s; half the budget is 10,000 rows.
        s.record(4_000, 0.1);
        assert_eq!(s.next(), 10_000);
        // Much faster rows: the slowest recent rate rules while it is among the last four.
        s.record(10_000, 0.001);
        assert_eq!(s.next(), 10_000, "the slowest of the recent rates still rules");
        for _ in 0..3 {
            s.record(10_000, 0.001);
        }
        assert_eq!(s.next(), 40_000, "at most four times the largest chunk timed");
        s.record(40_000, 0.004);
        assert_eq!(s.next(), 160_000);
        s.record(400_000, 0.04);
        assert_eq!(s.next(), 1_000_000, "never above the maximum");
        // A slow chunk: the next is sized by it at once.
        s.record(1_000, 1.0);
        assert_eq!(s.next(), 200, "1,000 rows/s x 0.25 s, cut to blocks");
        s.record(1, 10.0);
        assert_eq!(s.next(), 100, "never below one block");

        // A fast first chunk does not size the next beyond four times its rows.
        let mut s = ChunkSizer::new(0.5, 1, u64::MAX, 4_096);
        s.record(4_096, 0.001);
        assert_eq!(s.next(), 16_384);

        let s = ChunkSizer::new(0.5, 4_096, 1_000, 64);
        assert_eq!(s.next(), 4_096, "a block larger than the maximum is still whole");
    }

    #[test]
    fn loop_iterations_counts_months_iterations_and_bisections() {
        let mut sc = crate::model::params::baseline();
        assert_eq!(loop_iterations(&sc), 3 * 62 + 1 + 36 * 202, "three generations (months 0, 12, 24) of at most 60 halvings");
        sc.model.generation_months = 0;
        assert_eq!(loop_iterations(&sc), 62 + 1 + 36 * 202);
        sc.model.months = 120;
        sc.model.max_iter = 1000;
        assert!(loop_iterations(&sc) > LLVMPIPE_LOOP_CAP);
    }
}
