//! The long-lived wgpu context: instance, adapter, device, queue, one pipeline per
//! (n_firms, n_segments) shape, and the ring of buffer sets reused for every chunk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, anyhow, bail};

use super::bind::{storage, uniform};
use super::{AdapterSummary, GpuOptions, WORKGROUP_SIZE, layout, specialized_source};

/// A software rasteriser posing as a GPU (llvmpipe/lavapipe, SwiftShader, WARP).
pub(crate) fn is_software_info(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || ["llvmpipe", "lavapipe", "swiftshader", "basic render driver"].iter().any(|s| name.contains(s))
}

/// llvmpipe in particular (its loop-iteration cap, see `super::loop_iterations`).
pub(crate) fn is_llvmpipe_info(info: &wgpu::AdapterInfo) -> bool {
    let name = info.name.to_lowercase();
    let driver = info.driver.to_lowercase();
    name.contains("llvmpipe") || driver.contains("llvmpipe") || name.contains("lavapipe")
}

/// The instance, configured from the environment: backends Vulkan, Metal and DX12
/// unless `WGPU_BACKEND` says otherwise; `WGPU_DEBUG`, `WGPU_VALIDATION` and the other
/// flags wgpu reads from the environment apply too.
pub(crate) fn instance() -> wgpu::Instance {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::PRIMARY;
    wgpu::Instance::new(desc.with_env())
}

fn backends() -> wgpu::Backends {
    wgpu::Backends::PRIMARY.with_env()
}

/// Every adapter of the instance that can run compute shaders.
pub(crate) fn adapters(instance: &wgpu::Instance) -> Vec<wgpu::Adapter> {
    pollster::block_on(instance.enumerate_adapters(backends()))
        .into_iter()
        .filter(|a| a.get_downlevel_capabilities().flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS))
        .collect()
}

pub(crate) fn summary(adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let limits = adapter.limits();
    AdapterSummary {
        software: is_software_info(&info),
        name: info.name,
        backend: info.backend.to_string(),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
        max_buffer_size: limits.max_buffer_size,
        timestamp_query: adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY),
    }
}

/// Preference among hardware kinds when nothing names an adapter.
fn rank(info: &wgpu::AdapterInfo) -> u32 {
    if is_software_info(info) {
        return 0;
    }
    match info.device_type {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 1,
        wgpu::DeviceType::Cpu => 0,
    }
}

fn describe(list: &[wgpu::Adapter]) -> String {
    if list.is_empty() {
        return "none (no Vulkan, Metal or DX12 adapter with compute shaders was found; \
                WGPU_BACKEND selects other backends)"
            .into();
    }
    list.iter().map(|a| format!("\n  {}", summary(a))).collect::<String>()
}

/// Picks the adapter: `opts.adapter` (case-insensitive substring of its name),
/// else `WGPU_ADAPTER_NAME` (same matching as wgpu's `util::initialize_adapter_from_env`,
/// but an error rather than a panic when nothing matches), else the best hardware one.
pub(crate) fn choose_adapter(instance: &wgpu::Instance, opts: &GpuOptions) -> anyhow::Result<wgpu::Adapter> {
    let list = adapters(instance);
    let wanted = opts.adapter.clone().or_else(|| std::env::var("WGPU_ADAPTER_NAME").ok().filter(|s| !s.is_empty()));
    let chosen = if let Some(wanted) = &wanted {
        let needle = wanted.to_lowercase();
        let Some(a) = list.iter().find(|a| a.get_info().name.to_lowercase().contains(&needle)) else {
            bail!("no GPU adapter's name contains {wanted:?}; adapters: {}", describe(&list));
        };
        a.clone()
    } else {
        let Some(a) = list.iter().max_by_key(|a| rank(&a.get_info())) else {
            bail!("no GPU adapter found; adapters: {}", describe(&list));
        };
        a.clone()
    };
    if is_software_info(&chosen.get_info()) && !opts.allow_software {
        bail!(
            "the only usable GPU adapter is a software one ({}); pass --backend gpu to use it \
             (it is much slower than the CPU backend on most machines). Adapters: {}",
            chosen.get_info().name,
            describe(&list)
        );
    }
    Ok(chosen)
}

/// One set of buffers for a chunk in flight.
pub(crate) struct Slot {
    /// Host staging of the packed parameters, in row order (reused).
    pub host_params: Vec<f32>,
    /// The same rows in dispatch order (see `coherent_order`), when that differs.
    pub host_sorted: Vec<f32>,
    /// Dispatch position p holds row `first_row + order[p]`; empty when the
    /// dispatch order is the row order.
    pub order: Vec<u32>,
    pub params: wgpu::Buffer,
    pub outputs: wgpu::Buffer,
    pub uniform: wgpu::Buffer,
    /// Outputs, then (with timestamps) two u64 ticks at `ts_offset`.
    pub readback: wgpu::Buffer,
    pub ts_offset: u64,
    pub queries: Option<(wgpu::QuerySet, wgpu::Buffer)>,
    pub bind_group: wgpu::BindGroup,
    pub param_bytes: u64,
    pub out_bytes: u64,
    /// Buffers of the reduce passes (`[reduce]` runs), sized for the largest chunk so far.
    pub reduce: Option<(super::reduce::Sizes, super::reduce::Buffers)>,
}

/// The device's queue, counting every byte written through it (a manifest's
/// `uploaded_bytes`); everything else is wgpu's queue.
pub(crate) struct Queue {
    inner: wgpu::Queue,
    pub uploaded: AtomicU64,
}

impl Queue {
    /// `wgpu::Queue::write_buffer`, counted.
    pub fn write_buffer(&self, buffer: &wgpu::Buffer, offset: wgpu::BufferAddress, data: &[u8]) {
        self.uploaded.fetch_add(data.len() as u64, Ordering::Relaxed);
        self.inner.write_buffer(buffer, offset, data);
    }
}

impl std::ops::Deref for Queue {
    type Target = wgpu::Queue;
    fn deref(&self) -> &wgpu::Queue {
        &self.inner
    }
}

/// What ended a run on the device: the device was lost (a driver reset, e.g. a
/// watchdog such as Windows' TDR, a removed or crashed GPU, or `Device::destroy`),
/// it ran out of memory, or a result could not be mapped back. The rows already
/// handed on are kept, so such a run can be resumed (`run --resume`).
#[derive(Debug)]
pub struct DeviceFailure {
    /// The adapter's name.
    pub adapter: String,
    /// What happened, e.g. `was lost (Destroyed: ...)`.
    pub what: String,
}

impl std::fmt::Display for DeviceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the GPU device of adapter {:?} {}", self.adapter, self.what)
    }
}

impl std::error::Error for DeviceFailure {}

pub(crate) struct Context {
    pub adapter: wgpu::Adapter,
    pub info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: Queue,
    pub limits: wgpu::Limits,
    pub timestamps: bool,
    bind_group_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    pipelines: HashMap<(usize, usize), wgpu::ComputePipeline>,
    /// Errors the device reported outside an error scope (wgpu's default handler
    /// panics), each with whether it is an out-of-memory error.
    pub errors: Arc<Mutex<Vec<(bool, String)>>>,
    /// Why the device was lost, once its device-lost callback ran.
    pub lost: Arc<Mutex<Option<String>>>,
    pub slots: Vec<Slot>,
    /// Sentinel-filled buffer copied over the outputs before each dispatch (tests).
    pub poison: Option<wgpu::Buffer>,
    /// The reduce passes' pipelines, built on a reduced run's first chunk.
    pub reduce: Option<super::reduce::Pipelines>,
}

/// Every output word is set to this before a poisoned run (a NaN pattern the kernel never writes).
pub const POISON: u32 = 0x7fc0_dead;

impl Context {
    pub fn new(opts: &GpuOptions) -> anyhow::Result<Context> {
        let instance = instance();
        let adapter = choose_adapter(&instance, opts)?;
        let info = adapter.get_info();
        let adapter_limits = adapter.limits();
        let timestamps = adapter.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let required_features = if timestamps { wgpu::Features::TIMESTAMP_QUERY } else { wgpu::Features::empty() };
        // The adapter's own limits: big storage bindings and the full dispatch grid.
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("moatsweep"),
            required_features,
            required_limits: adapter_limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .with_context(|| format!("could not open a device on GPU adapter {:?}", info.name))?;
        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let errors = errors.clone();
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                let oom = matches!(e, wgpu::Error::OutOfMemory { .. });
                errors.lock().unwrap().push((oom, e.to_string()));
            }));
        }
        let lost = Arc::new(Mutex::new(None));
        {
            let lost = lost.clone();
            device.set_device_lost_callback(move |reason, message| {
                let mut lost = lost.lock().unwrap();
                if lost.is_none() {
                    let what = match reason {
                        wgpu::DeviceLostReason::Destroyed => "was destroyed",
                        _ => "was lost",
                    };
                    *lost = Some(if message.is_empty() { what.to_string() } else { format!("{what} ({message})") });
                }
            });
        }
        let limits = device.limits();

        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("moat bindings"),
            entries: &[storage(0, true), storage(1, false), uniform(2)],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("moat"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        Ok(Context {
            adapter,
            info,
            device,
            queue: Queue { inner: queue, uploaded: AtomicU64::new(0) },
            limits,
            timestamps,
            bind_group_layout,
            pipeline_layout,
            pipelines: HashMap::new(),
            errors,
            lost,
            slots: Vec::new(),
            poison: None,
            reduce: None,
        })
    }

    /// Fails with the first error the device reported since the last check: a
    /// [`DeviceFailure`] when the device was lost or out of memory.
    pub fn check_errors(&self) -> anyhow::Result<()> {
        if self.errors.lock().unwrap().is_empty() && self.lost.lock().unwrap().is_none() {
            return Ok(());
        }
        self.await_loss();
        if self.lost.lock().unwrap().is_some() {
            self.errors.lock().unwrap().clear();
            return Err(self.failure(String::new()));
        }
        let mut errors = self.errors.lock().unwrap();
        if let Some((oom, e)) = errors.first() {
            let err = if *oom {
                anyhow::Error::new(DeviceFailure { adapter: self.info.name.clone(), what: format!("ran out of memory ({e})") })
            } else {
                anyhow!("GPU error on {:?}: {e}", self.info.name)
            };
            errors.clear();
            return Err(err);
        }
        Ok(())
    }

    /// After an error: a destroyed or lost device makes every later call fail
    /// (validation, mapping) before its device-lost callback runs, which wgpu does
    /// once the queue is idle; waits for that, so that the loss is what is reported.
    fn await_loss(&self) {
        for _ in 0..2 {
            if self.lost.lock().unwrap().is_some() {
                return;
            }
            let _ = self.device.poll(wgpu::PollType::wait_indefinitely());
        }
    }

    /// A [`DeviceFailure`]: the device's loss, when its callback said so, else `what`.
    pub fn failure(&self, what: String) -> anyhow::Error {
        self.await_loss();
        let what = self.lost.lock().unwrap().clone().unwrap_or(what);
        anyhow::Error::new(DeviceFailure { adapter: self.info.name.clone(), what })
    }

    /// The pipeline specialised for one shape (compiled once, then cached).
    pub fn pipeline(&mut self, n_firms: usize, n_segments: usize) -> anyhow::Result<wgpu::ComputePipeline> {
        if let Some(p) = self.pipelines.get(&(n_firms, n_segments)) {
            return Ok(p.clone());
        }
        let constants = [("N_FIRMS", n_firms as f64), ("N_SEGMENTS", n_segments as f64), ("WORKGROUP_SIZE", WORKGROUP_SIZE as f64)];
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some("moat.wgsl"),
            source: wgpu::ShaderSource::Wgsl(specialized_source(n_firms, n_segments).into()),
        };
        // wgpu's runtime bounds checks stay on: every index into a private array is
        // a constant after the loops are expanded, so they cost nothing there
        // (measured: the same instruction count per scenario on llvmpipe).
        let module = self.device.create_shader_module(desc);
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("moat"),
            layout: Some(&self.pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, zero_initialize_workgroup_memory: false },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            bail!("could not build the moat pipeline for {n_firms} firms and {n_segments} segments on {:?}: {e}", self.info.name);
        }
        self.pipelines.insert((n_firms, n_segments), pipeline.clone());
        Ok(pipeline)
    }

    /// Whether the slots hold chunks of `rows` rows of this shape.
    pub fn slots_fit(&self, ring: usize, rows: u64, n_firms: usize, n_segments: usize) -> bool {
        let param_bytes = rows * layout::param_stride(n_firms, n_segments) as u64 * 4;
        let out_bytes = rows * layout::out_stride(n_firms) as u64 * 4;
        self.slots.len() == ring && self.slots.iter().all(|s| s.param_bytes >= param_bytes && s.out_bytes >= out_bytes)
    }

    /// Makes sure there are `ring` slots holding `rows` rows of this shape; a
    /// [`DeviceFailure`] when the device has no memory for them.
    pub fn ensure_slots(&mut self, ring: usize, rows: u64, n_firms: usize, n_segments: usize) -> anyhow::Result<()> {
        if self.slots_fit(ring, rows, n_firms, n_segments) {
            return Ok(());
        }
        // Out of memory, or a buffer the device refuses (beyond its limits).
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let refused = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        self.allocate_slots(ring, rows, n_firms, n_segments);
        let refused = pollster::block_on(refused.pop());
        let oom = pollster::block_on(oom.pop());
        let failed = oom.map(|e| ("ran out of memory allocating", e)).or(refused.map(|e| ("could not allocate", e)));
        if let Some((what, e)) = failed {
            self.slots.clear();
            let bytes = rows * (layout::param_stride(n_firms, n_segments) + 2 * layout::out_stride(n_firms)) as u64 * 4;
            let e = e.to_string().lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            return Err(anyhow::Error::new(DeviceFailure {
                adapter: self.info.name.clone(),
                what: format!("{what} {ring} sets of buffers for chunks of {rows} rows (about {} MiB each): {e}", bytes.div_ceil(1 << 20)),
            }));
        }
        self.check_errors()
    }

    fn allocate_slots(&mut self, ring: usize, rows: u64, n_firms: usize, n_segments: usize) {
        let param_bytes = rows * layout::param_stride(n_firms, n_segments) as u64 * 4;
        let out_bytes = rows * layout::out_stride(n_firms) as u64 * 4;
        // Grow to the larger of old and new needs, so alternating shapes do not churn.
        let mut param_bytes = self.slots.iter().map(|s| s.param_bytes).fold(param_bytes, u64::max);
        if crate::testhook::oversize_buffers() {
            param_bytes = self.limits.max_buffer_size.next_multiple_of(4) + 4;
        }
        let out_bytes = self.slots.iter().map(|s| s.out_bytes).fold(out_bytes, u64::max);
        self.slots = (0..ring).map(|k| self.new_slot(k, param_bytes, out_bytes)).collect();
        if self.poison.is_some() {
            self.poison = Some(self.poison_buffer(out_bytes));
        }
    }

    fn new_slot(&self, k: usize, param_bytes: u64, out_bytes: u64) -> Slot {
        let d = &self.device;
        let buffer = |label: &str, size: u64, usage| {
            d.create_buffer(&wgpu::BufferDescriptor { label: Some(&format!("moat {label} {k}")), size, usage, mapped_at_creation: false })
        };
        use wgpu::BufferUsages as U;
        let params = buffer("params", param_bytes, U::STORAGE | U::COPY_DST | U::COPY_SRC);
        let outputs = buffer("outputs", out_bytes, U::STORAGE | U::COPY_SRC | U::COPY_DST);
        let uniform = buffer("chunk", 16, U::UNIFORM | U::COPY_DST);
        let ts_offset = out_bytes.next_multiple_of(8);
        let readback = buffer("readback", ts_offset + 16, U::MAP_READ | U::COPY_DST);
        let queries = self.timestamps.then(|| {
            let set =
                d.create_query_set(&wgpu::QuerySetDescriptor { label: Some("moat kernel time"), ty: wgpu::QueryType::Timestamp, count: 2 });
            let resolve = buffer("timestamps", 16, U::QUERY_RESOLVE | U::COPY_SRC);
            (set, resolve)
        });
        let bind_group = d.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(&format!("moat bindings {k}")),
            layout: &self.bind_group_layout,
            entries: &[
                wgpu::BindGroupEntry { binding: 0, resource: params.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 1, resource: outputs.as_entire_binding() },
                wgpu::BindGroupEntry { binding: 2, resource: uniform.as_entire_binding() },
            ],
        });
        Slot {
            host_params: Vec::new(),
            host_sorted: Vec::new(),
            order: Vec::new(),
            params,
            outputs,
            uniform,
            readback,
            ts_offset,
            queries,
            bind_group,
            param_bytes,
            out_bytes,
            reduce: None,
        }
    }

    pub fn poison_buffer(&self, out_bytes: u64) -> wgpu::Buffer {
        let words = vec![POISON; (out_bytes / 4) as usize];
        self.queue.uploaded.fetch_add(out_bytes, Ordering::Relaxed);
        wgpu::util::DeviceExt::create_buffer_init(
            &self.device,
            &wgpu::util::BufferInitDescriptor {
                label: Some("moat poison"),
                contents: bytemuck::cast_slice(&words),
                usage: wgpu::BufferUsages::COPY_SRC,
            },
        )
    }
}
