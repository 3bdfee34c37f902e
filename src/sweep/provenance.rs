//! What a manifest (and a Parquet footer) records about how a file was made, as
//! types: the resolved config ([`ResolvedConfig`]: design, axes, base scenario),
//! the reduction ([`ReduceSpec`]), the GPU adapter ([`AdapterInfo`]) and the
//! `--verify` report ([`VerifyReport`]). They are written and read back only
//! through these types; a required key that is missing is an error, and `Option`
//! marks only what is genuinely absent in some files.
//!
//! The JSON they write is the JSON that the untyped builders wrote before them,
//! byte for byte: those went through `serde_json::Value`, whose objects (without
//! serde_json's `preserve_order`) keep their keys in alphabetical order, so every
//! struct here declares its fields in alphabetical order, and the variants that
//! interleave keys (a design's keys, an axis's kind) are written through a flat
//! "raw" struct whose fields are in that order. `tests` checks both.
//!
//! These types sit low in the module graph (they use nothing of `output`,
//! `verify`, `reduce` or `analysis`), so that the manifest can hold them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{BackendKind, Precision};

/// A parameter value as a config writes it: an integer, a real, or `"never"`.
pub type ParamValue = serde_json::Value;

/// The resolved parameters of one group (`model`, `scaling`): name to value.
pub type Params = BTreeMap<String, ParamValue>;

/// The config as resolved: every default filled in (`config` in a manifest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedConfig {
    pub axes: Vec<AxisSpec>,
    pub firm: Vec<NamedParams>,
    pub model: Params,
    /// `[output]`; absent from a Parquet footer, which records what made the rows, not where they went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputSpec>,
    pub scaling: Params,
    pub segment: Vec<NamedParams>,
    pub sweep: SweepSpec,
    pub version: u32,
}

impl ResolvedConfig {
    /// The axis at `path`, if the sweep has one.
    pub fn axis(&self, path: &str) -> Option<&AxisSpec> {
        self.axes.iter().find(|a| a.path == path)
    }

    /// The axis paths, in config order.
    pub fn axis_paths(&self) -> Vec<String> {
        self.axes.iter().map(|a| a.path.clone()).collect()
    }
}

/// `[output]` as resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    pub format: OutputFormat,
    pub path: String,
}

/// A firm's or a segment's parameters with its name (written as one object, the
/// name among the parameters in alphabetical order).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedParams {
    pub name: String,
    pub params: Params,
}

impl Serialize for NamedParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut all: BTreeMap<&str, &ParamValue> = self.params.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let name = ParamValue::from(self.name.as_str());
        all.insert("name", &name);
        all.serialize(s)
    }
}

impl<'de> Deserialize<'de> for NamedParams {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut params = Params::deserialize(d)?;
        match params.remove("name") {
            Some(ParamValue::String(name)) => Ok(NamedParams { name, params }),
            Some(_) => Err(serde::de::Error::custom("`name` is not a string")),
            None => Err(serde::de::Error::missing_field("name")),
        }
    }
}

/// `[sweep]` as resolved: the name and the design with its keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSweep", into = "RawSweep")]
pub struct SweepSpec {
    pub name: String,
    pub design: DesignSpec,
}

/// A design and the keys it records.
#[derive(Clone, Debug, PartialEq)]
pub enum DesignSpec {
    Grid,
    Random {
        samples: u64,
        seed: u64,
    },
    Lhs {
        samples: u64,
        seed: u64,
    },
    Sobol {
        samples: u64,
        seed: u64,
    },
    /// Rows of a CSV: the file as written in the config, its SHA-256, its rows.
    List {
        list: String,
        list_sha256: String,
        rows: u64,
    },
    Saltelli {
        samples: u64,
        seed: u64,
        second_order: bool,
        block_rows: u64,
    },
    Morris {
        trajectories: u64,
        levels: u64,
        seed: u64,
        block_rows: u64,
    },
}

impl DesignSpec {
    /// The design's name, as `[sweep] design` writes it.
    pub fn name(&self) -> &'static str {
        match self {
            DesignSpec::Grid => "grid",
            DesignSpec::Random { .. } => "random",
            DesignSpec::Lhs { .. } => "lhs",
            DesignSpec::Sobol { .. } => "sobol",
            DesignSpec::List { .. } => "list",
            DesignSpec::Saltelli { .. } => "saltelli",
            DesignSpec::Morris { .. } => "morris",
        }
    }
}

/// `[sweep]` as written: every key any design has, in alphabetical order.
#[derive(Clone, Default, Serialize, Deserialize)]
struct RawSweep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    block_rows: Option<u64>,
    design: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    levels: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    list: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    list_sha256: Option<String>,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    samples: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    second_order: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trajectories: Option<u64>,
}

/// `key` of a design that needs it, or an error naming both.
fn needed<T>(v: Option<T>, design: &str, key: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("sweep: a {design} design records `{key}`, and it is missing"))
}

impl TryFrom<RawSweep> for SweepSpec {
    type Error = String;
    fn try_from(r: RawSweep) -> Result<SweepSpec, String> {
        let d = r.design.as_str();
        let design = match d {
            "grid" => DesignSpec::Grid,
            "random" | "lhs" | "sobol" => {
                let (samples, seed) = (needed(r.samples, d, "samples")?, needed(r.seed, d, "seed")?);
                match d {
                    "random" => DesignSpec::Random { samples, seed },
                    "lhs" => DesignSpec::Lhs { samples, seed },
                    _ => DesignSpec::Sobol { samples, seed },
                }
            }
            "list" => DesignSpec::List {
                list: needed(r.list, d, "list")?,
                list_sha256: needed(r.list_sha256, d, "list_sha256")?,
                rows: needed(r.rows, d, "rows")?,
            },
            "saltelli" => DesignSpec::Saltelli {
                samples: needed(r.samples, d, "samples")?,
                seed: needed(r.seed, d, "seed")?,
                second_order: needed(r.second_order, d, "second_order")?,
                block_rows: needed(r.block_rows, d, "block_rows")?,
            },
            "morris" => DesignSpec::Morris {
                trajectories: needed(r.trajectories, d, "trajectories")?,
                levels: needed(r.levels, d, "levels")?,
                seed: needed(r.seed, d, "seed")?,
                block_rows: needed(r.block_rows, d, "block_rows")?,
            },
            other => return Err(format!("sweep: unknown design \"{other}\"")),
        };
        Ok(SweepSpec { name: r.name, design })
    }
}

impl From<SweepSpec> for RawSweep {
    fn from(s: SweepSpec) -> RawSweep {
        let mut r = RawSweep { design: s.design.name().to_string(), name: s.name, ..Default::default() };
        match s.design {
            DesignSpec::Grid => {}
            DesignSpec::Random { samples, seed } | DesignSpec::Lhs { samples, seed } | DesignSpec::Sobol { samples, seed } => {
                (r.samples, r.seed) = (Some(samples), Some(seed));
            }
            DesignSpec::List { list, list_sha256, rows } => (r.list, r.list_sha256, r.rows) = (Some(list), Some(list_sha256), Some(rows)),
            DesignSpec::Saltelli { samples, seed, second_order, block_rows } => {
                (r.samples, r.seed, r.second_order, r.block_rows) = (Some(samples), Some(seed), Some(second_order), Some(block_rows));
            }
            DesignSpec::Morris { trajectories, levels, seed, block_rows } => {
                (r.trajectories, r.levels, r.seed, r.block_rows) = (Some(trajectories), Some(levels), Some(seed), Some(block_rows));
            }
        }
        r
    }
}

/// One axis as resolved: its parameter path and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAxis", into = "RawAxis")]
pub struct AxisSpec {
    pub path: String,
    pub values: AxisSpecValues,
}

/// How an axis's values are given (`crate::sweep::AxisValues`, as written).
#[derive(Clone, Debug, PartialEq)]
pub enum AxisSpecValues {
    /// A list design's column (`from = "list"`).
    FromList,
    /// `values = [...]`: integers, reals or `"never"`.
    Values(Vec<ParamValue>),
    Range {
        lo: f64,
        hi: f64,
        steps: u64,
    },
    Logspace {
        lo: f64,
        hi: f64,
        steps: u64,
    },
    Uniform {
        lo: f64,
        hi: f64,
    },
    LogUniform {
        lo: f64,
        hi: f64,
    },
    Integers {
        lo: i64,
        hi: i64,
    },
}

impl AxisSpec {
    /// Whether the axis is spaced in log (logspace, loguniform): drawn on a log scale.
    pub fn is_log(&self) -> bool {
        matches!(self.values, AxisSpecValues::Logspace { .. } | AxisSpecValues::LogUniform { .. })
    }
}

#[derive(Clone, Default, Serialize, Deserialize)]
struct RawAxis {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    integers: Option<[i64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logspace: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    loguniform: Option<[f64; 2]>,
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    range: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steps: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    uniform: Option<[f64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    values: Option<Vec<ParamValue>>,
}

impl TryFrom<RawAxis> for AxisSpec {
    type Error = String;
    fn try_from(r: RawAxis) -> Result<AxisSpec, String> {
        let path = r.path;
        let steps = |kind: &str| r.steps.ok_or_else(|| format!("axes: {path}: a {kind} axis records `steps`, and it is missing"));
        let mut kinds: Vec<AxisSpecValues> = Vec::new();
        if let Some(from) = &r.from {
            if from != "list" {
                return Err(format!("axes: {path}: from = \"{from}\": only \"list\" is known"));
            }
            kinds.push(AxisSpecValues::FromList);
        }
        if let Some(v) = r.values {
            kinds.push(AxisSpecValues::Values(v));
        }
        if let Some([lo, hi]) = r.range {
            kinds.push(AxisSpecValues::Range { lo, hi, steps: steps("range")? });
        }
        if let Some([lo, hi]) = r.logspace {
            kinds.push(AxisSpecValues::Logspace { lo, hi, steps: steps("logspace")? });
        }
        if let Some([lo, hi]) = r.uniform {
            kinds.push(AxisSpecValues::Uniform { lo, hi });
        }
        if let Some([lo, hi]) = r.loguniform {
            kinds.push(AxisSpecValues::LogUniform { lo, hi });
        }
        if let Some([lo, hi]) = r.integers {
            kinds.push(AxisSpecValues::Integers { lo, hi });
        }
        match kinds.len() {
            1 => Ok(AxisSpec { path, values: kinds.pop().expect("one") }),
            0 => Err(format!("axes: {path}: no values (one of from, values, range, logspace, uniform, loguniform, integers)")),
            _ => Err(format!("axes: {path}: more than one kind of values")),
        }
    }
}

impl From<AxisSpec> for RawAxis {
    fn from(a: AxisSpec) -> RawAxis {
        let mut r = RawAxis { path: a.path, ..Default::default() };
        match a.values {
            AxisSpecValues::FromList => r.from = Some("list".into()),
            AxisSpecValues::Values(v) => r.values = Some(v),
            AxisSpecValues::Range { lo, hi, steps } => (r.range, r.steps) = (Some([lo, hi]), Some(steps)),
            AxisSpecValues::Logspace { lo, hi, steps } => (r.logspace, r.steps) = (Some([lo, hi]), Some(steps)),
            AxisSpecValues::Uniform { lo, hi } => r.uniform = Some([lo, hi]),
            AxisSpecValues::LogUniform { lo, hi } => r.loguniform = Some([lo, hi]),
            AxisSpecValues::Integers { lo, hi } => r.integers = Some([lo, hi]),
        }
        r
    }
}

/// The `[reduce]` section as resolved (`reduce.spec` in a reduced file's manifest).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReduceSpec {
    /// `[reduce.best]`, when the reduction has a strategy map.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<BestSpec>,
    pub block_rows: u64,
    pub by: Vec<ByAxis>,
    /// `[reduce.game]`, when the reduction is a game.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub game: Option<GameSpec>,
    pub groups: u64,
    pub outputs: Vec<String>,
    /// Whether every row was also written.
    pub rows: bool,
    pub stats: Vec<String>,
}

/// One `by` axis of a reduction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawBy", into = "RawBy")]
pub struct ByAxis {
    pub axis: String,
    /// Binned: the number of bins and whether they are equal in log.
    pub bins: Option<Bins>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bins {
    pub bins: u64,
    pub log: bool,
}

#[derive(Clone, Serialize, Deserialize)]
struct RawBy {
    axis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bins: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<bool>,
}

impl TryFrom<RawBy> for ByAxis {
    type Error = String;
    fn try_from(r: RawBy) -> Result<ByAxis, String> {
        let bins = match (r.bins, r.log) {
            (Some(bins), Some(log)) => Some(Bins { bins, log }),
            (None, None) => None,
            (Some(_), None) => return Err(format!("reduce.by: {}: `bins` without `log`", r.axis)),
            (None, Some(_)) => return Err(format!("reduce.by: {}: `log` without `bins`", r.axis)),
        };
        Ok(ByAxis { axis: r.axis, bins })
    }
}

impl From<ByAxis> for RawBy {
    fn from(b: ByAxis) -> RawBy {
        RawBy { axis: b.axis, bins: b.bins.map(|b| b.bins), log: b.bins.map(|b| b.log) }
    }
}

/// `[reduce.best]` as resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawBest", into = "RawBest")]
pub struct BestSpec {
    /// The choice axis's path.
    pub axis: String,
    pub goal: Goal,
    pub order: BestOrder,
    /// The reference value (as `values` writes it).
    pub reference: ParamValue,
    /// The choice axis's values, in axis order (`"never"` for -1).
    pub values: Vec<ParamValue>,
}

/// What `best` optimizes: an output to maximize or to minimize.
#[derive(Clone, Debug, PartialEq)]
pub enum Goal {
    Maximize(String),
    Minimize(String),
}

impl std::fmt::Display for Goal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Goal::Maximize(o) => write!(f, "maximize {o}"),
            Goal::Minimize(o) => write!(f, "minimize {o}"),
        }
    }
}

/// The order in which the rows were solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BestOrder {
    /// The choice axis moved to the fastest place.
    #[serde(rename = "choice axis fastest")]
    ChoiceAxisFastest,
    /// The rows in their own order (the choice axis is already fastest).
    #[serde(rename = "rows")]
    Rows,
}

#[derive(Clone, Serialize, Deserialize)]
struct RawBest {
    axis: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maximize: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    minimize: Option<String>,
    order: BestOrder,
    reference: ParamValue,
    values: Vec<ParamValue>,
}

impl TryFrom<RawBest> for BestSpec {
    type Error = String;
    fn try_from(r: RawBest) -> Result<BestSpec, String> {
        let goal = match (r.maximize, r.minimize) {
            (Some(o), None) => Goal::Maximize(o),
            (None, Some(o)) => Goal::Minimize(o),
            (None, None) => return Err("reduce.best: one of `maximize` and `minimize` is missing".into()),
            (Some(_), Some(_)) => return Err("reduce.best: both `maximize` and `minimize`".into()),
        };
        Ok(BestSpec { axis: r.axis, goal, order: r.order, reference: r.reference, values: r.values })
    }
}

impl From<BestSpec> for RawBest {
    fn from(b: BestSpec) -> RawBest {
        let (maximize, minimize) = match b.goal {
            Goal::Maximize(o) => (Some(o), None),
            Goal::Minimize(o) => (None, Some(o)),
        };
        RawBest { axis: b.axis, maximize, minimize, order: b.order, reference: b.reference, values: b.values }
    }
}

/// `[reduce.game]` as resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GameSpec {
    pub order: GameOrder,
    /// The players, in order (the first is the leader).
    pub players: Vec<PlayerSpec>,
}

/// One player of a game as resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlayerSpec {
    /// Its strategy axis's path.
    pub axis: String,
    /// The output it maximizes.
    pub payoff: String,
    /// Its reference value (as `values` writes it).
    pub reference: ParamValue,
    /// Its strategies, in axis order (`"never"` for -1).
    pub values: Vec<ParamValue>,
}

/// The order in which a game's rows were solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GameOrder {
    /// The players' axes moved to the fastest places, in player order.
    #[serde(rename = "players fastest")]
    PlayersFastest,
    /// The rows in their own order (the players' axes are already the last).
    #[serde(rename = "rows")]
    Rows,
}

/// The GPU adapter that solved a sweep (defined with the backends).
pub use crate::backend::AdapterInfo;

/// Why a row was not compared column by column (`crate::verify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exemption {
    ExitOrInvestorEdge,
    ReferenceNotConverged,
    ProbeNotConverged,
    NearIterationCap,
    OscillatingFixedPoint,
}

/// Deviations of one column.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnDeviation {
    /// Rows where this column passed only thanks to the probe's allowance.
    pub admitted_by_probe: u64,
    /// Rows beyond the tolerance.
    pub beyond: u64,
    pub max_abs: f64,
    pub max_rel: f64,
}

/// What `--verify` records in the manifest (made by `crate::verify`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Rows with at least one value admitted only through the probe.
    pub admitted_by_probe: u64,
    pub beyond_tolerance: u64,
    pub caps: BTreeMap<String, f64>,
    pub columns: BTreeMap<String, ColumnDeviation>,
    /// Up to 10 deviations beyond tolerance: "row R column C: reference X, gpu Y".
    pub examples: Vec<String>,
    /// Rows not compared, per cause (the reference's or its probe's edges only).
    pub exempted: BTreeMap<Exemption, u64>,
    /// Rows where the f64 reference itself was not finite.
    pub reference_non_finite: u64,
    pub rows_checked: u64,
    /// Rows compared column by column.
    pub rows_compared: u64,
    pub tolerance: String,
    /// Whether the exemptions and probe admissions stay within `crate::verify::CAPS`.
    pub within_caps: bool,
}

/// A Parquet footer's `moatsweep.manifest`: the manifest's reproducible part
/// (what made the rows, not when or where: no times, command, threads or paths).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Footer {
    pub backend: FooterBackend,
    pub columns: Vec<String>,
    /// The resolved config without `output`.
    pub config: ResolvedConfig,
    pub config_sha256: String,
    // Keys in the order a JSON object sorts them ("moa" < "mod"), as footers were written.
    pub moatsweep_version: String,
    pub model: String,
    /// Rows [start, end) of the sweep that the file holds.
    pub rows: [u64; 2],
    /// Rows in the whole sweep.
    pub scenarios: u64,
}

/// The backend of a [`Footer`]: its kind and precision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FooterBackend {
    pub kind: BackendKind,
    pub precision: Precision,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes `v` directly and through `serde_json::Value` (whose objects sort
    /// their keys, as the untyped builders' output did): the two must agree.
    fn sorted_like_value<T: Serialize>(v: &T) {
        let direct = serde_json::to_string_pretty(v).unwrap();
        let through = serde_json::to_string_pretty(&serde_json::to_value(v).unwrap()).unwrap();
        assert_eq!(direct, through);
    }

    #[test]
    fn every_type_writes_its_keys_in_alphabetical_order() {
        let mut report = VerifyReport { tolerance: "t".into(), ..Default::default() };
        report.caps.insert("exit_edges".into(), 0.01);
        report.columns.insert("npv.open".into(), ColumnDeviation { admitted_by_probe: 1, beyond: 2, max_abs: 0.5, max_rel: 1e-5 });
        report.exempted.insert(Exemption::NearIterationCap, 3);
        sorted_like_value(&report);
        let adapter = AdapterInfo {
            backend: "vulkan".into(),
            device_type: "Cpu".into(),
            driver: "d".into(),
            driver_info: "i".into(),
            name: "n".into(),
        };
        sorted_like_value(&adapter);
        let best = BestSpec {
            axis: "firm.open.release_month".into(),
            goal: Goal::Minimize("exited.challenger".into()),
            order: BestOrder::ChoiceAxisFastest,
            reference: "never".into(),
            values: vec![0.into(), "never".into()],
        };
        let spec = ReduceSpec {
            best: Some(best),
            block_rows: 4096,
            game: None,
            by: vec![ByAxis { axis: "a".into(), bins: Some(Bins { bins: 5, log: true }) }, ByAxis { axis: "b".into(), bins: None }],
            groups: 10,
            outputs: vec!["npv.open".into()],
            rows: false,
            stats: vec!["mean".into()],
        };
        sorted_like_value(&spec);
        let back: ReduceSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
        // A Parquet footer (its config from a shipped sweep).
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let plan = crate::config::load(&root.join("configs/quickstart.toml")).unwrap().plan;
        let footer = Footer {
            backend: FooterBackend { kind: BackendKind::Cpu, precision: Precision::F64 },
            columns: vec!["scenario".into()],
            config: plan.resolved(None),
            config_sha256: "s".into(),
            moatsweep_version: "v".into(),
            model: "m".into(),
            rows: [0, 1],
            scenarios: 1,
        };
        sorted_like_value(&footer);
    }

    #[test]
    fn missing_keys_are_errors() {
        let err = serde_json::from_str::<SweepSpec>(r#"{"name":"s","design":"morris","trajectories":4,"seed":1,"block_rows":5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a morris design records `levels`, and it is missing"), "{err}");
        let err = serde_json::from_str::<SweepSpec>(r#"{"name":"s","design":"saltelli","samples":4,"seed":1,"block_rows":5}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`second_order`"), "{err}");
        let err = serde_json::from_str::<AxisSpec>(r#"{"path":"model.tol","logspace":[1e-6,1e-3]}"#).unwrap_err().to_string();
        assert!(err.contains("model.tol: a logspace axis records `steps`"), "{err}");
        let err = serde_json::from_str::<NamedParams>(r#"{"brand":0.5}"#).unwrap_err().to_string();
        assert!(err.contains("missing field `name`"), "{err}");
        let err = serde_json::from_str::<ByAxis>(r#"{"axis":"a","bins":4}"#).unwrap_err().to_string();
        assert!(err.contains("`bins` without `log`"), "{err}");
        let ok: SweepSpec =
            serde_json::from_str(r#"{"name":"s","design":"morris","trajectories":4,"levels":6,"seed":1,"block_rows":5}"#).unwrap();
        assert_eq!(ok.design, DesignSpec::Morris { trajectories: 4, levels: 6, seed: 1, block_rows: 5 });
    }
}

/// The format of a sweep's rows file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    /// CSV: shortest round-trip decimals (the default).
    #[default]
    Csv,
    /// Parquet: typed columns, zstd (see `parquet`).
    Parquet,
}

impl OutputFormat {
    pub fn name(self) -> &'static str {
        match self {
            OutputFormat::Csv => "csv",
            OutputFormat::Parquet => "parquet",
        }
    }

    /// `path` with this format's extension, when it has the other format's.
    pub fn with_extension(self, path: &Path) -> PathBuf {
        match path.extension().and_then(|e| e.to_str()) {
            Some("csv") | Some("parquet") => path.with_extension(self.name()),
            _ => path.to_path_buf(),
        }
    }
}
