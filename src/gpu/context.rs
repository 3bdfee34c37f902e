//! The long-lived wgpu context: instance, adapter, device, queue, one pipeline per
//! (n_firms, n_segments) shape, and the ring of buffer sets reused for every chunk.

use std::collections::HashMap;
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

pub(crate) struct Context {
    pub adapter: wgpu::Adapter,
    pub info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    pub timestamps: bool,
    bind_group_layout: wgpu::BindGroupLayout,
    pipeline_layout: wgpu::PipelineLayout,
    pipelines: HashMap<(usize, usize), wgpu::ComputePipeline>,
    /// Errors the device reported outside an error scope (wgpu's default handler panics).
    pub errors: Arc<Mutex<Vec<String>>>,
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
                errors.lock().unwrap().push(e.to_string());
            }));
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
            queue,
            limits,
            timestamps,
            bind_group_layout,
            pipeline_layout,
            pipelines: HashMap::new(),
            errors,
            slots: Vec::new(),
            poison: None,
            reduce: None,
        })
    }

    /// Fails with the first error the device reported since the last check.
    pub fn check_errors(&self) -> anyhow::Result<()> {
        let mut errors = self.errors.lock().unwrap();
        if let Some(e) = errors.first() {
            let msg = format!("GPU error on {:?}: {e}", self.info.name);
            errors.clear();
            return Err(anyhow!(msg));
        }
        Ok(())
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

    /// Makes sure there are `ring` slots holding `rows` rows of this shape.
    pub fn ensure_slots(&mut self, ring: usize, rows: u64, n_firms: usize, n_segments: usize) {
        let param_bytes = rows * layout::param_stride(n_firms, n_segments) as u64 * 4;
        let out_bytes = rows * layout::out_stride(n_firms) as u64 * 4;
        let fits = self.slots.len() == ring && self.slots.iter().all(|s| s.param_bytes >= param_bytes && s.out_bytes >= out_bytes);
        if fits {
            return;
        }
        // Grow to the larger of old and new needs, so alternating shapes do not churn.
        let param_bytes = self.slots.iter().map(|s| s.param_bytes).fold(param_bytes, u64::max);
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
        let params = buffer("params", param_bytes, U::STORAGE | U::COPY_DST);
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
