//! A validated sweep: the base scenario, the axes and the design that turn a row
//! index into a scenario. Built from a config by [`crate::config`]; everything
//! after config loading works with this form only.

pub mod provenance;

use crate::backend::ScenarioSource;
use crate::design;
use crate::model::params::{Group, Kind, ParamSpec};
use crate::model::{NEVER, Scenario};

/// Largest number of rows a sweep may have.
pub const MAX_ROWS: u64 = 1 << 40;

/// A parameter of one scenario: a table row, and the firm or segment it belongs to.
#[derive(Clone, Copy)]
pub struct Param {
    pub spec: &'static ParamSpec,
    /// Firm or segment index (0 for model and scaling parameters).
    pub index: usize,
}

impl Param {
    pub fn get(&self, sc: &Scenario) -> f64 {
        (self.spec.get)(sc, self.index)
    }
    pub fn set(&self, sc: &mut Scenario, v: f64) {
        (self.spec.set)(sc, self.index, v)
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}[{}]", self.spec.group.prefix(), self.spec.name, self.index)
    }
}

/// The values one axis takes.
#[derive(Clone, Debug, PartialEq)]
pub enum AxisValues {
    /// An explicit list (`values = [...]`); `never` is stored as -1.
    List(Vec<f64>),
    /// `steps` values evenly spaced from `lo` to `hi`, both included.
    Range { lo: f64, hi: f64, steps: u64 },
    /// `steps` values evenly spaced in log from `lo` to `hi`, both included.
    Logspace { lo: f64, hi: f64, steps: u64 },
    /// Sampling designs: uniform on [lo, hi].
    Uniform { lo: f64, hi: f64 },
    /// Sampling designs: uniform in log on [lo, hi].
    LogUniform { lo: f64, hi: f64 },
    /// Sampling designs: the integers lo..=hi, equally likely.
    Integers { lo: f64, hi: f64 },
}

impl AxisValues {
    /// Number of values of a grid axis (0 for the continuous kinds of sampling designs).
    pub fn len(&self) -> u64 {
        match self {
            AxisValues::List(v) => v.len() as u64,
            AxisValues::Range { steps, .. } | AxisValues::Logspace { steps, .. } => *steps,
            AxisValues::Uniform { .. } | AxisValues::LogUniform { .. } | AxisValues::Integers { .. } => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The i-th value (i < len); the ends of ranges are exact.
    pub fn value(&self, i: u64) -> f64 {
        match *self {
            AxisValues::List(ref v) => v[i as usize],
            AxisValues::Range { lo, hi, steps } => {
                if i + 1 == steps {
                    hi
                } else {
                    lo + (hi - lo) * (i as f64 / (steps - 1) as f64)
                }
            }
            AxisValues::Logspace { lo, hi, steps } => {
                if i == 0 {
                    lo
                } else if i + 1 == steps {
                    hi
                } else {
                    (lo.ln() + (hi.ln() - lo.ln()) * (i as f64 / (steps - 1) as f64)).exp()
                }
            }
            // Continuous kinds of sampling designs have no i-th value: their middle.
            _ => self.map_unit(0.5),
        }
    }

    /// The value at `u` in [0, 1) for sampling designs: log axes in log space,
    /// integer axes by flooring, lists by equal shares. A morris design's top
    /// level u = 1 gives the upper end (hi, the largest integer, the last item).
    pub fn map_unit(&self, u: f64) -> f64 {
        match *self {
            AxisValues::Uniform { hi, .. } | AxisValues::LogUniform { hi, .. } if u >= 1.0 => hi,
            AxisValues::List(ref v) => v[((u * v.len() as f64) as usize).min(v.len() - 1)],
            AxisValues::Uniform { lo, hi } | AxisValues::Range { lo, hi, .. } => lo + (hi - lo) * u,
            AxisValues::LogUniform { lo, hi } | AxisValues::Logspace { lo, hi, .. } => {
                crate::detmath::exp(lo.ln() + (hi.ln() - lo.ln()) * u)
            }
            AxisValues::Integers { lo, hi } => lo + (u * (hi - lo + 1.0)).floor().min(hi - lo),
        }
    }

    /// Smallest and largest value.
    pub fn extent(&self) -> (f64, f64) {
        match self {
            AxisValues::List(v) => v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x))),
            AxisValues::Range { lo, hi, .. }
            | AxisValues::Logspace { lo, hi, .. }
            | AxisValues::Uniform { lo, hi }
            | AxisValues::LogUniform { lo, hi }
            | AxisValues::Integers { lo, hi } => (lo.min(*hi), lo.max(*hi)),
        }
    }
}

/// One axis of a sweep.
#[derive(Clone, Debug)]
pub struct Axis {
    /// The parameter path as written, e.g. `firm.open.release_month`.
    pub path: String,
    pub param: Param,
    pub values: AxisValues,
}

impl Axis {
    /// Whether CSV cells of this axis are integers.
    pub fn is_integer(&self) -> bool {
        self.param.spec.kind != Kind::Real
    }
}

/// How rows map onto the axes. Every row is a pure function of (plan, row index).
#[derive(Clone, Debug, PartialEq)]
pub enum Design {
    /// Every combination; row i is the mixed-radix decomposition of i, last axis fastest.
    Grid,
    /// Independent uniform draws keyed by (seed, row, axis).
    Random { samples: u64, seed: u64 },
    /// Latin hypercube: on every axis each of the `samples` strata holds one row.
    Lhs { samples: u64, seed: u64 },
    /// Owen-scrambled Sobol points.
    Sobol { samples: u64, seed: u64 },
    /// Sobol indices: `samples` blocks laid out as SALib's Saltelli sample ([`design::Saltelli`]).
    Saltelli { samples: u64, seed: u64, second_order: bool },
    /// Elementary effects: `trajectories` trajectories as SALib's Morris sample ([`design::Morris`]).
    Morris { trajectories: u64, levels: u64, seed: u64 },
    /// Rows read from a CSV (each axis holds its column); `file` as written in the config.
    List { file: String, sha256: String },
}

impl Design {
    pub fn name(&self) -> &'static str {
        match self {
            Design::Grid => "grid",
            Design::Random { .. } => "random",
            Design::Lhs { .. } => "lhs",
            Design::Sobol { .. } => "sobol",
            Design::Saltelli { .. } => "saltelli",
            Design::Morris { .. } => "morris",
            Design::List { .. } => "list",
        }
    }

    /// The Saltelli layout of a saltelli design with `k` axes.
    pub fn saltelli(&self, k: usize) -> Option<design::Saltelli> {
        match *self {
            Design::Saltelli { seed, second_order, .. } => Some(design::Saltelli { k, second_order, seed }),
            _ => None,
        }
    }

    /// The trajectories of a morris design with `k` axes.
    pub fn morris(&self, k: usize) -> Option<design::Morris> {
        match *self {
            Design::Morris { levels, seed, .. } => Some(design::Morris { k, levels, seed }),
            _ => None,
        }
    }

    /// Rows that belong together and are only run, cut and analysed whole: a
    /// saltelli base point's block or a morris trajectory (1 for other designs).
    pub fn block_rows(&self, k: usize) -> u64 {
        match (self.saltelli(k), self.morris(k)) {
            (Some(s), _) => s.block_rows(),
            (_, Some(m)) => m.block_rows(),
            _ => 1,
        }
    }
}

/// A validated sweep, ready to run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub name: String,
    pub design: Design,
    /// Every parameter with defaults filled in and no axis applied.
    pub base: Scenario,
    pub firm_names: Vec<String>,
    pub segment_names: Vec<String>,
    pub axes: Vec<Axis>,
    /// Number of rows (scenarios) of the sweep.
    pub rows: u64,
    /// Rows between successive values of each axis.
    strides: Vec<u64>,
}

impl Plan {
    /// Builds a plan; the caller has checked that the row count is at most [`MAX_ROWS`].
    pub fn new(name: String, design: Design, base: Scenario, firm_names: Vec<String>, segment_names: Vec<String>, axes: Vec<Axis>) -> Plan {
        let mut strides = vec![1u64; axes.len()];
        let mut grid_rows = 1u64;
        for (a, axis) in axes.iter().enumerate().rev() {
            strides[a] = grid_rows;
            grid_rows = grid_rows.saturating_mul(axis.values.len());
        }
        let rows = match &design {
            Design::Grid => grid_rows,
            Design::Random { samples, .. } | Design::Lhs { samples, .. } | Design::Sobol { samples, .. } => *samples,
            Design::List { .. } => axes.first().map_or(0, |a| a.values.len()),
            Design::Saltelli { samples, .. } => samples * design.block_rows(axes.len()),
            Design::Morris { trajectories, .. } => trajectories * design.block_rows(axes.len()),
        };
        Plan { name, design, base, firm_names, segment_names, axes, rows, strides }
    }

    /// Rows of a block (see [`Design::block_rows`]).
    pub fn block_rows(&self) -> u64 {
        self.design.block_rows(self.axes.len())
    }

    /// Rows between successive values of grid axis `a`.
    pub fn axis_stride(&self, a: usize) -> u64 {
        self.strides[a]
    }

    /// The index of the value grid axis `a` takes in row `row`.
    #[inline]
    pub fn grid_index(&self, row: u64, a: usize) -> u64 {
        (row / self.strides[a]) % self.axes[a].values.len()
    }

    /// The value axis `a` takes in row `row`.
    pub fn axis_value(&self, row: u64, a: usize) -> f64 {
        let values = &self.axes[a].values;
        let k = self.axes.len();
        match self.design {
            Design::Grid => values.value((row / self.strides[a]) % values.len()),
            Design::Random { seed, .. } => values.map_unit(design::unit(seed, row, a, 0)),
            Design::Lhs { seed, samples } => values.map_unit(design::lhs_unit(seed, samples, row, a)),
            Design::Sobol { seed, .. } => values.map_unit(design::Sobol::get().sample(row as u32, a, seed)),
            Design::List { .. } => values.value(row),
            Design::Saltelli { .. } => values.map_unit(self.design.saltelli(k).expect("saltelli").unit(row, a)),
            Design::Morris { .. } => values.map_unit(self.design.morris(k).expect("morris").unit(row, a)),
        }
    }
}

impl ScenarioSource for Plan {
    fn n_firms(&self) -> usize {
        self.base.n_firms
    }
    fn n_segments(&self) -> usize {
        self.base.n_segments
    }
    fn scenario(&self, row: u64) -> Scenario {
        let mut sc = self.base;
        for (a, axis) in self.axes.iter().enumerate() {
            axis.param.set(&mut sc, self.axis_value(row, a));
        }
        sc
    }
    fn horizon_fixed(&self) -> bool {
        use crate::model::params::model;
        let horizon = [model::months(), model::max_iter(), model::generation_months()];
        !self.axes.iter().any(|a| horizon.iter().any(|h| a.param.spec.is(h)))
    }
}

/// A parameter value as a config or CSV writes it: integers without a fraction,
/// `never` for a release month of -1 when `words` is set.
pub fn value_json(spec: &ParamSpec, v: f64, words: bool) -> serde_json::Value {
    match spec.kind {
        Kind::Month if v == NEVER as f64 && words => serde_json::Value::from("never"),
        Kind::Integer | Kind::Month => serde_json::Value::from(v as i64),
        Kind::Real => serde_json::Value::from(v),
    }
}

impl Plan {
    /// The config as resolved: every default filled in, with `output` where the rows
    /// went (recorded in the manifest; a Parquet footer records none).
    pub fn resolved(&self, output: Option<provenance::OutputSpec>) -> provenance::ResolvedConfig {
        use crate::model::params::PARAMS;
        use provenance::{AxisSpec, AxisSpecValues, DesignSpec, NamedParams, Params, ResolvedConfig, SweepSpec};
        let group = |g: Group, index: usize| -> Params {
            PARAMS.iter().filter(|p| p.group == g).map(|p| (p.name.to_string(), value_json(p, (p.get)(&self.base, index), true))).collect()
        };
        let named = |g: Group, names: &[String]| -> Vec<NamedParams> {
            names.iter().enumerate().map(|(i, n)| NamedParams { name: n.clone(), params: group(g, i) }).collect()
        };
        let list = matches!(self.design, Design::List { .. });
        let axes = self
            .axes
            .iter()
            .map(|a| {
                let spec = a.param.spec;
                let values = match &a.values {
                    _ if list => AxisSpecValues::FromList,
                    AxisValues::List(v) => AxisSpecValues::Values(v.iter().map(|&x| value_json(spec, x, true)).collect()),
                    &AxisValues::Range { lo, hi, steps } => AxisSpecValues::Range { lo, hi, steps },
                    &AxisValues::Logspace { lo, hi, steps } => AxisSpecValues::Logspace { lo, hi, steps },
                    &AxisValues::Uniform { lo, hi } => AxisSpecValues::Uniform { lo, hi },
                    &AxisValues::LogUniform { lo, hi } => AxisSpecValues::LogUniform { lo, hi },
                    &AxisValues::Integers { lo, hi } => AxisSpecValues::Integers { lo: lo as i64, hi: hi as i64 },
                };
                AxisSpec { path: a.path.clone(), values }
            })
            .collect();
        let design = match self.design.clone() {
            Design::Grid => DesignSpec::Grid,
            Design::Random { samples, seed } => DesignSpec::Random { samples, seed },
            Design::Lhs { samples, seed } => DesignSpec::Lhs { samples, seed },
            Design::Sobol { samples, seed } => DesignSpec::Sobol { samples, seed },
            Design::List { file, sha256 } => DesignSpec::List { list: file, list_sha256: sha256, rows: self.rows },
            Design::Saltelli { samples, seed, second_order } => {
                DesignSpec::Saltelli { samples, seed, second_order, block_rows: self.block_rows() }
            }
            Design::Morris { trajectories, levels, seed } => {
                DesignSpec::Morris { trajectories, levels, seed, block_rows: self.block_rows() }
            }
        };
        ResolvedConfig {
            axes,
            firm: named(Group::Firm, &self.firm_names),
            model: group(Group::Model, 0),
            output,
            scaling: group(Group::Scaling, 0),
            segment: named(Group::Segment, &self.segment_names),
            sweep: SweepSpec { name: self.name.clone(), design },
            version: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Configs of every design and every kind of axis: the shipped ones, the tests'
    /// list and reduced configs, and inline ones for what those lack.
    fn plans() -> Vec<(String, super::Plan, Option<crate::reduce::ReducePlan>, super::provenance::OutputSpec)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut plans = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(root.join("configs")).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.push(root.join("tests/configs/list.toml"));
        files.push(root.join("tests/configs/strategy-map-small.toml"));
        for f in files.iter().filter(|f| f.extension().is_some_and(|e| e == "toml")) {
            let loaded = crate::config::load(f).unwrap();
            let output = super::provenance::OutputSpec { format: loaded.format, path: loaded.output.display().to_string() };
            plans.push((f.display().to_string(), loaded.plan, loaded.reduce, output));
        }
        let inline = [
            (
                "morris",
                "[sweep]\nname = \"m\"\ndesign = \"morris\"\ntrajectories = 4\nlevels = 6\nseed = 3\n[axes]\n\"model.ad_uplift\" = { loguniform = [1e-3, 1e-1] }\n\"model.max_iter\" = { integers = [50, 300] }\n\"firm.open.release_month\" = { values = [0, 6, \"never\"] }\n",
            ),
            (
                "saltelli",
                "[sweep]\nname = \"s\"\ndesign = \"saltelli\"\nsamples = 8\nsecond_order = true\n[axes]\n\"model.ad_uplift\" = { uniform = [0.0, 0.1] }\n\"firm.open.brand\" = { uniform = [-1.0, 1.0] }\n",
            ),
            ("random", "[sweep]\nname = \"r\"\ndesign = \"random\"\nsamples = 10\n[axes]\n\"model.tol\" = { loguniform = [1e-7, 1e-5] }\n"),
            (
                "sobol",
                "[sweep]\nname = \"o\"\ndesign = \"sobol\"\nsamples = 16\nseed = 9\n[axes]\n\"model.discount\" = { uniform = [0.9, 0.99] }\n[output]\nformat = \"parquet\"\n",
            ),
            (
                "range",
                "[sweep]\nname = \"g\"\n[axes]\n\"model.spill_gap\" = { range = [0.0, 0.3], steps = 4 }\n\"model.months\" = { values = [12, 24] }\n",
            ),
            (
                "binned",
                "[sweep]\nname = \"b\"\ndesign = \"lhs\"\nsamples = 64\n[axes]\n\"model.ad_uplift\" = { loguniform = [1e-3, 1e-1] }\n\"firm.open.release_month\" = { values = [0, 6, \"never\"] }\n[reduce]\nby = [{ axis = \"model.ad_uplift\", bins = 4 }]\noutputs = [\"npv.open\"]\nstats = [\"mean\", \"q50\"]\n",
            ),
            (
                "minimize",
                "[sweep]\nname = \"n\"\n[axes]\n\"model.ad_uplift\" = { values = [0.01, 0.1] }\n\"firm.open.release_month\" = { values = [0, 6, \"never\"] }\n[reduce]\nby = [\"model.ad_uplift\"]\noutputs = [\"npv.open\"]\n[reduce.best]\naxis = \"firm.open.release_month\"\nminimize = \"exited.challenger\"\nreference = 0\n",
            ),
        ];
        for (name, body) in inline {
            let text = format!("version = 1\n{body}");
            match crate::config::parse_config(name, &text, None, Path::new(".")) {
                Ok(c) => {
                    let output = super::provenance::OutputSpec { format: c.format, path: c.output.display().to_string() };
                    plans.push((name.to_string(), c.plan, c.reduce, output))
                }
                Err(e) => panic!("{name}: {e}"),
            }
        }
        plans
    }

    /// The fixtures in tests/fixtures/provenance are what the untyped JSON builders
    /// (`Plan::resolved_json` and `ReducePlan::to_json` before these types) wrote for
    /// each of these configs; the typed values must write the same bytes and read back.
    #[test]
    fn resolved_config_writes_what_the_json_builder_wrote() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/provenance");
        // Configs shipped after the untyped builders were removed (the calibrated
        // market of model version 3, the release game) have no builder's bytes to
        // compare with; they are checked to read back, below.
        let later_configs = ["llm-market-2025", "release-game"];
        let (plans, later): (Vec<_>, Vec<_>) = plans().into_iter().partition(|(name, ..)| !later_configs.iter().any(|c| name.contains(c)));
        assert_eq!(plans.len(), 16);
        assert_eq!(later.len(), 3);
        for (name, plan, reduce_plan, output) in later {
            let typed = plan.resolved(Some(output));
            let text = serde_json::to_string_pretty(&typed).unwrap();
            assert_eq!(serde_json::from_str::<super::provenance::ResolvedConfig>(&text).unwrap(), typed, "{name}");
            if let Some(r) = reduce_plan {
                let spec = r.spec(&plan);
                let text = serde_json::to_string_pretty(&spec).unwrap();
                assert_eq!(serde_json::from_str::<super::provenance::ReduceSpec>(&text).unwrap(), spec, "{name}");
            }
        }
        for (name, plan, reduce_plan, output) in plans {
            let stem = Path::new(&name).file_stem().unwrap().to_string_lossy().into_owned();
            let want = std::fs::read_to_string(dir.join(format!("{stem}.config.json"))).unwrap();
            let typed = plan.resolved(Some(output));
            assert_eq!(serde_json::to_string_pretty(&typed).unwrap(), want, "{name}");
            let back: super::provenance::ResolvedConfig = serde_json::from_str(&want).unwrap();
            assert_eq!(back, typed, "{name}");
            let reduce = dir.join(format!("{stem}.reduce.json"));
            match &reduce_plan {
                Some(r) => {
                    let want = std::fs::read_to_string(&reduce).unwrap();
                    let spec = r.spec(&plan);
                    assert_eq!(serde_json::to_string_pretty(&spec).unwrap(), want, "{name}");
                    assert_eq!(serde_json::from_str::<super::provenance::ReduceSpec>(&want).unwrap(), spec, "{name}");
                }
                None => assert!(!reduce.exists(), "{name}"),
            }
        }
    }
}
