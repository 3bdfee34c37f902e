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

/// Worlds whose rows the device reads together (a world's rows are consecutive
/// positions): per world it picks one row (the strategy map's choice, the game's
/// leader-follower outcome) and, for a game, its equilibria.
#[derive(Clone, Debug)]
pub struct DeviceWorlds {
    /// Rows per world: the choice axis's values, or the game's profiles.
    pub rows: usize,
    /// Index of the reference row among them.
    pub reference: usize,
    pub pick: Pick,
}

/// What the device makes of a world's rows.
#[derive(Clone, Debug)]
pub enum Pick {
    /// `[reduce.best]`: the first row whose objective is largest (or smallest).
    Best { objective: Source, maximize: bool },
    /// `[reduce.game]` (`crate::reduce::game`): each player's payoff and number of
    /// strategies; the pure equilibria and the leader-follower outcome.
    Game { payoffs: Vec<Source>, sizes: Vec<usize> },
}

impl DeviceWorlds {
    /// Words of a world's equilibrium bitmask (one bit per profile; 0 for `best`).
    pub fn nash_words(&self) -> usize {
        match self.pick {
            Pick::Best { .. } => 0,
            Pick::Game { .. } => self.rows.div_ceil(32),
        }
    }
}

/// A world without a picked row (a game without a leader-follower outcome).
pub const NO_ROW: u32 = u32::MAX;

/// What a device reduces in a run.
pub struct ReduceJob<'a> {
    pub outputs: Vec<Source>,
    pub worlds: Option<DeviceWorlds>,
    /// Count the quantile sketches' buckets too (see [`DeviceChunk::qvals`]).
    pub quantiles: bool,
    /// Read back the rows as well (`rows = true`).
    pub want_rows: bool,
    /// Chunks hold whole blocks of this many positions.
    pub block_rows: u64,
    /// The group of a position.
    pub group: &'a (dyn Fn(u64) -> u32 + Sync),
    /// The group is constant on aligned runs of this many positions (1: known
    /// for no longer run), so the host asks `group` once per run.
    pub group_run: u64,
}

/// Words of one segment's partial per output: count, mean, m2, min, max.
pub const PARTIAL_WORDS: usize = 5;

/// The mark of a header word in [`DeviceChunk::qvals`].
pub const SKETCH_HEADER: u32 = 1 << 31;
/// Bits of an entry's count in [`DeviceChunk::qvals`] (the key is above them).
pub const SKETCH_COUNT_BITS: u32 = 15;

/// What a segment's partials are of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegKind {
    /// Every row of the group in the block.
    Stats,
    /// The picked row of each of the group's worlds in the block (the choice,
    /// the leader-follower outcome).
    Best,
    /// The reference row of each of those worlds.
    Reference,
}

/// One segment of a chunk.
#[derive(Clone, Copy, Debug)]
pub struct SegInfo {
    pub group: u32,
    pub kind: SegKind,
    /// Its first item in the chunk's tables, and its length.
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
    /// Per world (in the tables' order): its group, and the index of the row
    /// picked ([`NO_ROW`]: none).
    pub world_groups: Vec<u32>,
    pub choices: Vec<u32>,
    /// Per world, for a game: its equilibria as a bitmask over profiles
    /// ([`DeviceWorlds::nash_words`] words, bit q % 32 of word q / 32).
    pub nash: Vec<u32>,
    /// With quantiles: the Stats segments' sketch bucket counts, as runs of words,
    /// in no particular order (the counts only add up). A run opens with a header
    /// ([`SKETCH_HEADER`] | segment x outputs + output) and holds entries (key <<
    /// [`SKETCH_COUNT_BITS`] | count): `count` values of that segment and output
    /// fell in the bucket of `key` (`crate::reduce::sketch::DEVICE_NEGATIVE`: 0 a
    /// zero, then the positive buckets, then the negative ones). Empty cells and
    /// NaN are not counted.
    pub qvals: Vec<u32>,
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
