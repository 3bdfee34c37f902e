//! Reductions that run inside a sweep (`[reduce]`): per group of rows (each
//! combination of the `by` axes' values or bins), every reduced output's
//! statistics, and optionally a strategy map (`[reduce.best]`: per "world", the
//! value of a choice axis that is best for an objective).
//!
//! - [`stats`]: exact, order-independent moments (count, sums, min, max).
//! - [`sketch`]: the quantile sketch (DDSketch, mergeable, relative error 1%).
//! - [`best`]: per-world argmax and what the chosen value does to every output.
//! - [`state`]: the reduction's state per group, the host reducer (a
//!   [`crate::backend::ChunkSink`]), and its canonical serialization (checkpoints,
//!   shards, merge).
//! - [`output`]: `<stem>.reduced.csv`, one row per group.
//!
//! The run engine drives a reduced job (`crate::engine::reduced`); `merge` adds
//! shards' states ([`state::ReduceState::merge`]).
//!
//! Rows never reach a file unless `rows = true`. Each row adds exactly to its
//! group's state (integer sums, bucket counts), so the same config gives the same
//! bytes whatever the thread count, chunk size, sharding or interruption. With
//! `best`, a sweep is solved in "positions": the same grid with the choice axis
//! moved to the fastest place, so that the rows of a world are solved together
//! and nothing is held per world, wherever the choice axis stands in the config.

pub mod best;
pub mod game;
pub mod output;
pub mod sketch;
pub mod state;
pub mod stats;

use crate::backend::ScenarioSource;
use crate::backend::device::{DeviceWorlds, Pick, ReduceJob};
use crate::model::outputs::{self, OutKind, Scope};
use crate::model::{Out, Outcome, Scenario};
use crate::sweep::provenance::{BestOrder, BestSpec, Bins, ByAxis, GameOrder, GameSpec, Goal, PlayerSpec, ReduceSpec};
use crate::sweep::{AxisValues, Design, Plan};

/// Rows per reduction block: runs of a reduced sweep are cut only on whole blocks
/// (the GPU reduces each block on the device), rounded to whole worlds with `best`.
pub const BLOCK_ROWS: u64 = 4096;

/// The reduction's state may need at most this many bytes (a bound, from the
/// number of groups and what each holds): larger reductions are refused.
pub const MAX_STATE_BYTES: u64 = 2 << 30;

/// Bytes one group's moments of one output may hold at most (two exact sums over
/// the whole f64 range and their squares).
pub const MOMENTS_BYTES: u64 = 1792;

/// How one `by` axis groups rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Grouping {
    /// A grid axis: one group per value (slot = the value's index).
    Grid { len: u64 },
    /// A sampled axis of listed values: one group per distinct value.
    Values { values: Vec<f64> },
    /// A sampled integer axis: one group per integer lo..=hi.
    Integers { lo: f64, hi: f64 },
    /// Equal-width bins on [lo, hi] in the axis's own scale (log10 for log axes).
    Bins { bins: u64, lo: f64, hi: f64, log: bool },
}

/// One `by` axis.
#[derive(Clone, Debug)]
pub struct GroupAxis {
    /// The axis's index in the plan.
    pub axis: usize,
    pub path: String,
    pub grouping: Grouping,
}

impl GroupAxis {
    /// Number of groups along this axis.
    pub fn slots(&self) -> u64 {
        match &self.grouping {
            Grouping::Grid { len } => *len,
            Grouping::Values { values } => values.len() as u64,
            Grouping::Integers { lo, hi } => (hi - lo) as u64 + 1,
            Grouping::Bins { bins, .. } => *bins,
        }
    }

    /// The slot of a row whose axis value is `v` (grid: the value's index `index`).
    #[inline]
    fn slot(&self, index: u64, v: f64) -> u64 {
        match &self.grouping {
            Grouping::Grid { .. } => index,
            Grouping::Values { values } => values.iter().position(|&x| x == v).unwrap_or(0) as u64,
            Grouping::Integers { lo, hi } => (v.clamp(*lo, *hi) - lo) as u64,
            Grouping::Bins { bins, lo, hi, log } => {
                let d = if *log { v.log10() } else { v };
                let t = if hi > lo { (d - lo) / (hi - lo) } else { 0.0 };
                ((t * *bins as f64).floor().max(0.0) as u64).min(bins - 1)
            }
        }
    }

    /// What slot `s` stands for in the reduced CSV: the value, or the bin's centre
    /// (geometric for log axes).
    pub fn label(&self, plan: &Plan, s: u64) -> f64 {
        match &self.grouping {
            Grouping::Grid { .. } => plan.axes[self.axis].values.value(s),
            Grouping::Values { values } => values[s as usize],
            Grouping::Integers { lo, .. } => lo + s as f64,
            Grouping::Bins { bins, lo, hi, log } => {
                let c = lo + (hi - lo) * (s as f64 + 0.5) / *bins as f64;
                if *log { 10f64.powf(c) } else { c }
            }
        }
    }

    /// The bin edges [from, to) of slot `s`, for binned axes.
    pub fn bin(&self, s: u64) -> Option<(f64, f64)> {
        match &self.grouping {
            Grouping::Bins { bins, lo, hi, log } => {
                let edge = |k: u64| {
                    let d = lo + (hi - lo) * k as f64 / *bins as f64;
                    if *log { 10f64.powf(d) } else { d }
                };
                Some((edge(s), edge(s + 1)))
            }
            _ => None,
        }
    }
}

/// Where a reduced output's value comes from (defined with the device reduction,
/// which reads the same values on the device).
pub use crate::backend::device::Source;

/// One reduced output.
#[derive(Clone, Debug)]
pub struct ReducedOutput {
    pub name: String,
    pub source: Source,
}

impl ReducedOutput {
    /// Its value in outcome `o` (NaN for an empty cell).
    #[inline]
    pub fn value<F: Copy + Into<f64>>(&self, o: &Outcome<F>) -> f64 {
        match self.source {
            Source::Column(c) => o.get_f64(c),
            Source::Exited(i) => {
                if o.firm(Out::ExitMonth, i).into() >= 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        }
    }

    /// Whether its value in `o` is non-finite (NaN or an infinity; an empty cell is
    /// not): the values a reduction would take in without a word
    /// ([`crate::output::nonfinite`]). `exited.<firm>` is judged by its exit month.
    pub fn is_nonfinite<F: Copy + Into<f64>>(&self, o: &Outcome<F>) -> bool {
        match self.source {
            Source::Column(c) => crate::output::nonfinite::is_nonfinite(o, c),
            Source::Exited(i) => !o.firm(Out::ExitMonth, i).into().is_finite(),
        }
    }

    /// Whether its values are whole numbers.
    pub fn is_integer(&self) -> bool {
        match self.source {
            Source::Column(c) => c.spec.kind == OutKind::Integer,
            Source::Exited(_) => true,
        }
    }
}

/// Every output a reduction can name: the sweep's output columns, then `exited.<firm>`.
pub fn available_outputs(firms: &[String]) -> Vec<ReducedOutput> {
    let mut v: Vec<ReducedOutput> =
        outputs::columns(firms).into_iter().map(|(name, c)| ReducedOutput { name, source: Source::Column(c) }).collect();
    v.extend(firms.iter().enumerate().map(|(i, f)| ReducedOutput { name: format!("exited.{f}"), source: Source::Exited(i) }));
    v
}

/// A statistic of `[reduce] stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    Mean,
    /// The sample standard deviation (n - 1).
    Std,
    Min,
    Max,
    /// Values (non-empty cells).
    Count,
    /// `qNN`: the NN-th percentile, from the sketch.
    Quantile(u32),
}

impl Stat {
    pub fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "mean" => Stat::Mean,
            "std" => Stat::Std,
            "min" => Stat::Min,
            "max" => Stat::Max,
            "count" => Stat::Count,
            _ => {
                let d = s.strip_prefix('q')?;
                if d.len() != 2 || !d.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let p: u32 = d.parse().ok()?;
                if !(1..=99).contains(&p) {
                    return None;
                }
                Stat::Quantile(p)
            }
        })
    }

    pub fn name(self) -> String {
        match self {
            Stat::Mean => "mean".into(),
            Stat::Std => "std".into(),
            Stat::Min => "min".into(),
            Stat::Max => "max".into(),
            Stat::Count => "count".into(),
            Stat::Quantile(p) => format!("q{p:02}"),
        }
    }
}

/// The names `[reduce] stats` accepts, for messages.
pub const STAT_NAMES: &str = "mean, std, min, max, count, or qNN for the NN-th percentile (q01 to q99, e.g. q05, q50, q95)";

/// `[reduce.best]`: the strategy map.
#[derive(Clone, Debug)]
pub struct Best {
    /// The choice axis's index in the plan (a grid axis).
    pub axis: usize,
    pub path: String,
    /// Its values, in axis order.
    pub values: Vec<f64>,
    pub objective: ReducedOutput,
    pub maximize: bool,
    /// Index of the reference value in `values`.
    pub reference: usize,
}

/// A validated `[reduce]` section.
#[derive(Clone, Debug)]
pub struct ReducePlan {
    pub by: Vec<GroupAxis>,
    pub outputs: Vec<ReducedOutput>,
    pub stats: Vec<Stat>,
    /// Also write every row.
    pub rows: bool,
    pub best: Option<Best>,
    /// `[reduce.game]`: the release game (never with `best`).
    pub game: Option<game::Game>,
    /// Number of groups: the product of the `by` axes' slots.
    pub groups: u64,
    /// Rows per block (see [`BLOCK_ROWS`]).
    pub block_rows: u64,
    /// With `best` or `game`: positions p map to rows with the choice axis, or the
    /// players' axes, fastest.
    order: Option<Order>,
}

/// The position order of a reduction whose worlds are solved together: the grid
/// with some axes (the choice axis; the players' axes, in player order) moved to
/// the fastest places. Position p is world w = p / unit and, within it, the
/// moved axes' values q = p % unit; each is a mixed-radix number (last digit
/// fastest) over the other axes, in plan order, and the moved axes.
#[derive(Clone, Debug)]
struct Order {
    unit: u64,
    /// (values, row stride) of the moved axes, in order.
    moved: Vec<(u64, u64)>,
    /// (values, row stride) of the other axes, in plan order.
    rest: Vec<(u64, u64)>,
}

impl Order {
    /// The order that moves `axes` of `plan` to the fastest places, or None
    /// where they already are there (positions are rows).
    fn new(plan: &Plan, axes: &[usize]) -> Option<Order> {
        let n = plan.axes.len();
        if axes.iter().enumerate().all(|(k, &a)| a == n - axes.len() + k) {
            return None;
        }
        let digit = |a: usize| (plan.axes[a].values.len(), plan.axis_stride(a));
        Some(Order {
            unit: axes.iter().map(|&a| plan.axes[a].values.len()).product(),
            moved: axes.iter().map(|&a| digit(a)).collect(),
            rest: (0..n).filter(|a| !axes.contains(a)).map(digit).collect(),
        })
    }

    #[inline]
    fn row(&self, p: u64) -> u64 {
        let (mut w, mut q) = (p / self.unit, p % self.unit);
        let mut row = 0;
        for &(n, s) in self.moved.iter().rev() {
            row += q % n * s;
            q /= n;
        }
        for &(n, s) in self.rest.iter().rev() {
            row += w % n * s;
            w /= n;
        }
        row
    }
}

impl ReducePlan {
    /// Builds the plan of a checked `[reduce]` (the checks are the config's).
    pub fn new(
        plan: &Plan,
        by: Vec<GroupAxis>,
        outputs: Vec<ReducedOutput>,
        stats: Vec<Stat>,
        rows: bool,
        best: Option<Best>,
        game: Option<game::Game>,
    ) -> ReducePlan {
        let groups = by.iter().map(GroupAxis::slots).product();
        let moved = moved_axes(&best, &game);
        let unit = match moved.is_empty() {
            true => plan.block_rows().max(1),
            false => moved.iter().map(|&a| plan.axes[a].values.len()).product(),
        };
        let block_rows = unit * (BLOCK_ROWS / unit).max(1);
        let order = if moved.is_empty() { None } else { Order::new(plan, &moved) };
        ReducePlan { by, outputs, stats, rows, best, game, groups, block_rows, order }
    }

    /// Positions per world: the choice axis's values with `best`, the profiles
    /// with `game`, else 1.
    pub fn world_rows(&self) -> usize {
        match (&self.best, &self.game) {
            (Some(b), _) => b.values.len(),
            (None, Some(g)) => g.profiles(),
            (None, None) => 1,
        }
    }

    /// The row solved at position `p`.
    #[inline]
    pub fn row(&self, p: u64) -> u64 {
        match &self.order {
            None => p,
            Some(o) => o.row(p),
        }
    }

    /// Whether positions are not rows.
    pub fn reorders(&self) -> bool {
        self.order.is_some()
    }

    /// Where positions are not rows: each grid axis's stride in positions (its
    /// value at position p is (p / stride) % len), for the device to make the
    /// scenario of a position. None where positions are rows.
    pub fn position_strides(&self, plan: &Plan) -> Option<Vec<u64>> {
        self.order.as_ref()?;
        let moved = moved_axes(&self.best, &self.game);
        let mut strides = vec![0; plan.axes.len()];
        let mut s = 1;
        let rest = (0..plan.axes.len()).filter(|a| !moved.contains(a));
        for a in moved.iter().copied().rev().chain(rest.rev()) {
            strides[a] = s;
            s *= plan.axes[a].values.len();
        }
        Some(strides)
    }

    /// The group of the row at position `p`.
    #[inline]
    pub fn group(&self, plan: &Plan, p: u64) -> u32 {
        let row = self.row(p);
        let mut g = 0u64;
        for a in &self.by {
            let index = if matches!(a.grouping, Grouping::Grid { .. }) { plan.grid_index(row, a.axis) } else { 0 };
            let v = if matches!(a.grouping, Grouping::Grid { .. }) { 0.0 } else { plan.axis_value(row, a.axis) };
            g = g * a.slots() + a.slot(index, v);
        }
        g as u32
    }

    /// The slot of each `by` axis in group `g`.
    pub fn slots_of(&self, g: u64) -> Vec<u64> {
        let mut s = vec![0; self.by.len()];
        let mut rest = g;
        for (k, a) in self.by.iter().enumerate().rev() {
            s[k] = rest % a.slots();
            rest /= a.slots();
        }
        s
    }

    /// Whether any statistic needs the sketch.
    pub fn quantiles(&self) -> bool {
        self.stats.iter().any(|s| matches!(s, Stat::Quantile(_)))
    }

    /// Positions over which the group stays the same, from a multiple of it on:
    /// every position without `by`; with grid axes only, the smallest stride in
    /// positions among them (each slower one's is a multiple of it); else 1.
    pub fn group_run(&self, plan: &Plan) -> u64 {
        if self.by.is_empty() {
            return plan.rows.max(1);
        }
        if !matches!(plan.design, Design::Grid) || !self.by.iter().all(|a| matches!(a.grouping, Grouping::Grid { .. })) {
            return 1;
        }
        let strides = self.position_strides(plan);
        self.by.iter().map(|a| strides.as_ref().map_or(plan.axis_stride(a.axis), |s| s[a.axis])).min().unwrap_or(1).max(1)
    }

    /// What a device reduces of `plan`, with `group` the group of a position.
    pub fn device_job<'a>(&self, plan: &Plan, group: &'a (dyn Fn(u64) -> u32 + Sync)) -> ReduceJob<'a> {
        ReduceJob {
            outputs: self.outputs.iter().map(|o| o.source).collect(),
            worlds: match (&self.best, &self.game) {
                (Some(b), _) => Some(DeviceWorlds {
                    rows: b.values.len(),
                    reference: b.reference,
                    pick: Pick::Best { objective: b.objective.source, maximize: b.maximize },
                }),
                (None, Some(g)) => Some(DeviceWorlds {
                    rows: g.profiles(),
                    reference: g.reference_profile(),
                    pick: Pick::Game { payoffs: g.players.iter().map(|p| p.payoff.source).collect(), sizes: g.sizes() },
                }),
                (None, None) => None,
            },
            quantiles: self.quantiles(),
            want_rows: self.rows,
            block_rows: self.block_rows,
            group,
            group_run: self.group_run(plan),
        }
    }

    /// An upper bound on the bytes of the reduction's state.
    pub fn state_bytes(&self) -> u64 {
        let j = self.outputs.len() as u64;
        let sketch = if self.quantiles() { sketch::Sketch::max_bytes() as u64 } else { 0 };
        let mut per_group = 64 + j * (MOMENTS_BYTES + sketch);
        if let Some(b) = &self.best {
            per_group += 8 * b.values.len() as u64 + 2 * j * MOMENTS_BYTES;
        }
        if let Some(g) = &self.game {
            per_group += 32 + 16 * g.profiles() as u64 + 2 * j * MOMENTS_BYTES;
        }
        self.groups.saturating_mul(per_group)
    }

    /// The `[reduce]` section as resolved, for the manifest.
    pub fn spec(&self, plan: &Plan) -> ReduceSpec {
        let by = self
            .by
            .iter()
            .map(|a| ByAxis {
                axis: a.path.clone(),
                bins: match a.grouping {
                    Grouping::Bins { bins, log, .. } => Some(Bins { bins, log }),
                    _ => None,
                },
            })
            .collect();
        let best = self.best.as_ref().map(|b| {
            let spec = plan.axes[b.axis].param.spec;
            let value = |x: f64| crate::sweep::value_json(spec, x, true);
            BestSpec {
                axis: b.path.clone(),
                goal: if b.maximize { Goal::Maximize(b.objective.name.clone()) } else { Goal::Minimize(b.objective.name.clone()) },
                order: if self.reorders() { BestOrder::ChoiceAxisFastest } else { BestOrder::Rows },
                reference: value(b.values[b.reference]),
                values: b.values.iter().map(|&x| value(x)).collect(),
            }
        });
        let game = self.game.as_ref().map(|g| GameSpec {
            order: if self.reorders() { GameOrder::PlayersFastest } else { GameOrder::Rows },
            players: g
                .players
                .iter()
                .map(|p| {
                    let spec = plan.axes[p.axis].param.spec;
                    let value = |x: f64| crate::sweep::value_json(spec, x, true);
                    PlayerSpec {
                        axis: p.path.clone(),
                        payoff: p.payoff.name.clone(),
                        reference: value(p.values[p.reference]),
                        values: p.values.iter().map(|&x| value(x)).collect(),
                    }
                })
                .collect(),
        });
        ReduceSpec {
            best,
            game,
            block_rows: self.block_rows,
            by,
            groups: self.groups,
            outputs: self.outputs.iter().map(|o| o.name.clone()).collect(),
            rows: self.rows,
            stats: self.stats.iter().map(|s| s.name()).collect(),
        }
    }
}

/// The axes a reduction moves to the fastest places: the choice axis of `best`,
/// the players' axes of `game`, in order.
fn moved_axes(best: &Option<Best>, game: &Option<game::Game>) -> Vec<usize> {
    match (best, game) {
        (Some(b), _) => vec![b.axis],
        (None, Some(g)) => g.players.iter().map(|p| p.axis).collect(),
        (None, None) => Vec::new(),
    }
}

/// A plan's scenarios in the order of its reduction's positions.
pub struct Positions<'a> {
    pub plan: &'a Plan,
    pub reduce: &'a ReducePlan,
}

impl ScenarioSource for Positions<'_> {
    fn n_firms(&self) -> usize {
        self.plan.n_firms()
    }
    fn n_segments(&self) -> usize {
        self.plan.n_segments()
    }
    fn scenario(&self, p: u64) -> Scenario {
        self.plan.scenario(self.reduce.row(p))
    }
    fn horizon_fixed(&self) -> bool {
        self.plan.horizon_fixed()
    }
}

/// Whether `design` groups its axes' values by bins (every design but grid).
pub fn sampled(design: &Design) -> bool {
    !matches!(design, Design::Grid)
}

/// The default grouping of a sampled axis without bins: its values or integers, if
/// it has a finite set of them.
pub fn value_grouping(values: &AxisValues) -> Option<Grouping> {
    match values {
        AxisValues::List(v) => {
            let mut distinct: Vec<f64> = Vec::new();
            for &x in v {
                if !distinct.contains(&x) {
                    distinct.push(x);
                }
            }
            Some(Grouping::Values { values: distinct })
        }
        AxisValues::Integers { lo, hi } => Some(Grouping::Integers { lo: *lo, hi: *hi }),
        _ => None,
    }
}

/// Whether an output's name is per firm (for the reduced CSV's readers).
pub fn is_firm_output(name: &str) -> bool {
    outputs::OUTPUTS.iter().any(|o| o.scope == Scope::Firm && name.split_once('.').is_some_and(|(h, _)| h == o.name))
        || name.starts_with("exited.")
}
