//! Backends solve rows of a sweep: the f64 CPU reference ([`cpu`]) and the f32
//! WGSL kernel ([`crate::gpu`]). Both take scenarios from a [`ScenarioSource`] and hand
//! solved chunks, in row order, to a [`ChunkSink`] (the run engine's driver, or a
//! test). A backend that can also reduce rows where it solves them offers the
//! [`device`] capability.

pub mod cpu;
pub mod device;

use std::ops::Range;

use crate::model::{Outcome, Scenario};

/// Where scenarios come from: a sweep plan (row i of the design), or a test's list.
pub trait ScenarioSource: Sync {
    /// Firms in every scenario of this source.
    fn n_firms(&self) -> usize;
    /// Segments in every scenario of this source.
    fn n_segments(&self) -> usize;
    /// The scenario of row `row` (a pure function of the row).
    fn scenario(&self, row: u64) -> Scenario;
    /// Whether every row has the same months, max_iter and generation_months (so
    /// one row tells the GPU backend the loop counts of all).
    fn horizon_fixed(&self) -> bool {
        false
    }
}

impl ScenarioSource for [Scenario] {
    fn n_firms(&self) -> usize {
        self.first().map_or(0, |s| s.n_firms)
    }
    fn n_segments(&self) -> usize {
        self.first().map_or(0, |s| s.n_segments)
    }
    fn scenario(&self, row: u64) -> Scenario {
        self[row as usize]
    }
}

/// A list of scenarios as a source (`[Scenario]` itself is unsized, so it cannot be
/// passed as `&dyn ScenarioSource`; a `Vec` can).
impl ScenarioSource for Vec<Scenario> {
    fn n_firms(&self) -> usize {
        self.as_slice().n_firms()
    }
    fn n_segments(&self) -> usize {
        self.as_slice().n_segments()
    }
    fn scenario(&self, row: u64) -> Scenario {
        self[row as usize]
    }
}

/// A solved chunk, in the precision of the backend that solved it.
pub enum Outcomes {
    F64(Vec<Outcome<f64>>),
    F32(Vec<Outcome<f32>>),
}

impl Outcomes {
    pub fn len(&self) -> usize {
        match self {
            Outcomes::F64(v) => v.len(),
            Outcomes::F32(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Receives solved chunks in row order: chunk k+1 starts where chunk k ended.
pub trait ChunkSink {
    fn push(&mut self, first_row: u64, outcomes: Outcomes) -> anyhow::Result<()>;
}

/// Collects every chunk (tests, `--verify`, small runs).
#[derive(Default)]
pub struct Collect {
    pub f64: Vec<Outcome<f64>>,
    pub f32: Vec<Outcome<f32>>,
}

impl ChunkSink for Collect {
    fn push(&mut self, _first_row: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        match outcomes {
            Outcomes::F64(v) => self.f64.extend(v),
            Outcomes::F32(v) => self.f32.extend(v),
        }
        Ok(())
    }
}

/// Which kind of backend solved a sweep; written `"cpu"` or `"gpu"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Cpu,
    Gpu,
}

/// The float precision of a backend's outcomes; written `"f64"` or `"f32"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    F64,
    F32,
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Gpu => "gpu",
        })
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F64 => "f64",
            Precision::F32 => "f32",
        })
    }
}

/// What solved a sweep, as recorded in the manifest.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct BackendInfo {
    pub kind: BackendKind,
    pub precision: Precision,
    /// Host threads used for solving (CPU) or for decoding and formatting (GPU).
    pub threads: usize,
    /// The GPU adapter, when a GPU solved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<AdapterInfo>,
}

/// A way of solving rows.
pub trait Backend {
    fn info(&self) -> BackendInfo;
    /// Solves `rows` of `src`, pushing chunks to `sink` in order.
    fn run(&mut self, src: &dyn ScenarioSource, rows: Range<u64>, sink: &mut dyn ChunkSink) -> anyhow::Result<()>;
    /// Total kernel time in seconds, where the backend can measure it.
    fn kernel_seconds(&self) -> Option<f64> {
        None
    }
    /// The backend's device reduction (`[reduce]` reduced where it is solved), if it has one.
    fn device_reduce(&mut self) -> Option<&mut dyn device::DeviceReduce> {
        None
    }
    /// Makes the scenarios of the next runs on the device from `program` (the
    /// words `crate::gpu::expand::program` writes), or packs them on the host
    /// again (None); an error for a backend without a device.
    fn set_device_rows(&mut self, program: Option<Vec<u32>>) -> anyhow::Result<()> {
        match program {
            None => Ok(()),
            Some(_) => anyhow::bail!("this backend has no device to make rows on"),
        }
    }
    /// What went to and came from a device since the last call (and resets it);
    /// None for a backend without one.
    fn take_transfer_stats(&mut self) -> Option<TransferStats> {
        None
    }
}

/// Where a GPU run's scenarios were made (`run --expand`): packed on the host
/// and uploaded, or made on the device from the plan (`crate::gpu::expand`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expand {
    #[default]
    Host,
    Device,
}

/// A device backend's traffic and dispatch times over some runs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TransferStats {
    /// Where the scenarios were made.
    pub expand: Expand,
    /// Bytes written to the device: parameters, reduce tables, uniforms.
    pub uploaded_bytes: u64,
    /// Bytes copied back from the device: rows, partials, timestamps.
    pub read_back_bytes: u64,
    /// Submissions (chunks).
    pub dispatches: u64,
    /// The longest time one submission took (an upper bound, see `crate::gpu`).
    pub longest_dispatch_s: f64,
    /// The time budget each submission was sized for (`--dispatch-budget`); None
    /// when `--chunk-rows` fixed the chunks.
    pub dispatch_budget_s: Option<f64>,
}

/// The GPU adapter that solved a sweep (`backend.adapter` in a manifest).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdapterInfo {
    /// wgpu's backend (Vulkan, Metal, ...).
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub name: String,
}

impl AdapterInfo {
    /// What wgpu says of an adapter.
    pub fn of(i: &wgpu::AdapterInfo) -> AdapterInfo {
        AdapterInfo {
            backend: i.backend.to_string(),
            device_type: format!("{:?}", i.device_type),
            driver: i.driver.clone(),
            driver_info: i.driver_info.clone(),
            name: i.name.clone(),
        }
    }
}
