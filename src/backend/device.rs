//! The device-reduction capability: a backend that can reduce solved rows where it
//! solved them (the GPU, `shaders/reduce.wgsl`) offers [`DeviceReduce`] through
//! [`super::Backend::device_reduce`]; a job (`[reduce]`) describes what to reduce
//! in a [`ReduceJob`] and receives each chunk's partials as a [`DeviceChunk`].
//! Defined here, beside the other backend traits, so that neither the backends
//! nor the reduction depend on each other.

use std::ops::Range;

use super::{Outcomes, ScenarioSource};
use crate::model::outputs::Column;

/// Where a reduced value comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source {
    /// An output column (NaN where its cell is empty: a price when nothing is offered).
    Column(Column),
    /// `exited.<firm>`: 1 if the firm exited (exit_month >= 0), else 0.
    Exited(usize),
}

/// The strategy map's choice, as the device makes it per world.
#[derive(Clone, Copy, Debug)]
pub struct DeviceBest {
    /// The value maximized (or minimized).
    pub objective: Source,
    pub maximize: bool,
    /// The choice axis's values per world (a world's rows are consecutive positions).
    pub choices: usize,
    /// Index of the reference value among them.
    pub reference: usize,
}

/// What a device reduces in a run.
pub struct ReduceJob<'a> {
    pub outputs: Vec<Source>,
    pub best: Option<DeviceBest>,
    /// Read back every output's value per row too (for the quantile sketches).
    pub quantiles: bool,
    /// Read back the rows as well (`rows = true`).
    pub want_rows: bool,
    /// Chunks hold whole blocks of this many positions.
    pub block_rows: u64,
    /// The group of a position.
    pub group: &'a (dyn Fn(u64) -> u32 + Sync),
}

/// Words of one segment's partial per output: count, mean, m2, min, max.
pub const PARTIAL_WORDS: usize = 5;

/// What a segment's partials are of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegKind {
    /// Every row of the group in the block.
    Stats,
    /// The chosen row of each of the group's worlds in the block.
    Best,
    /// The reference row of each of those worlds.
    Reference,
}

/// One segment of a chunk.
#[derive(Clone, Copy, Debug)]
pub struct SegInfo {
    pub group: u32,
    pub kind: SegKind,
    /// For Stats segments: its first item (rows of `qvals`), and its length.
    pub start: u32,
    pub len: u32,
}

/// A chunk reduced on the device.
pub struct DeviceChunk {
    pub first: u64,
    pub rows: u64,
    pub segments: Vec<SegInfo>,
    /// `segments x outputs x PARTIAL_WORDS` words: count, then f32 bits of mean, m2, min, max.
    pub partials: Vec<u32>,
    /// Rows of the chunk whose loops the driver cut short (the run fails on any).
    pub cut_rows: u64,
    /// Per world (in the tables' order): its group, and the index of the value chosen.
    pub world_groups: Vec<u32>,
    pub choices: Vec<u32>,
    /// With quantiles: `rows x outputs` values of the Stats items, in item order (NaN: empty).
    pub qvals: Vec<f32>,
    /// With `want_rows`: the rows.
    pub outcomes: Option<Outcomes>,
}

/// Receives chunks reduced on the device, in position order.
pub trait DeviceSink {
    fn push_reduced(&mut self, chunk: DeviceChunk) -> anyhow::Result<()>;
}

/// A backend that reduces on its device.
pub trait DeviceReduce {
    /// Solves `rows` of `src` (positions of a reduction) and reduces each chunk on
    /// the device, handing the partials (and the rows, with `job.want_rows`) to `sink`.
    fn run_reduced(&mut self, src: &dyn ScenarioSource, rows: Range<u64>, job: &ReduceJob, sink: &mut dyn DeviceSink)
    -> anyhow::Result<()>;
}
