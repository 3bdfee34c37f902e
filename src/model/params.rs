//! Every parameter of the model in one table: its path, meaning, unit, default,
//! allowed range and source (MODEL.md section 6). The config validator enforces
//! these ranges and `docs/model.md` prints this same table (`moatsweep params`).

use super::{Firm, Model, NEVER, Scaling, Scenario, Segment};

/// Which part of a config a parameter lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Group {
    Model,
    Scaling,
    Segment,
    Firm,
}

impl Group {
    pub fn prefix(self) -> &'static str {
        match self {
            Group::Model => "model",
            Group::Scaling => "scaling",
            Group::Segment => "segment",
            Group::Firm => "firm",
        }
    }
}

/// How a parameter's values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Real,
    Integer,
    /// An integer month >= 0, or `never` (-1).
    Month,
}

/// An interval of allowed values; infinite ends are open.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    pub lo: f64,
    pub lo_open: bool,
    pub hi: f64,
    pub hi_open: bool,
}

const INF: f64 = f64::INFINITY;

const fn closed(lo: f64, hi: f64) -> Bound {
    Bound { lo, lo_open: false, hi, hi_open: false }
}
const fn open_closed(lo: f64, hi: f64) -> Bound {
    Bound { lo, lo_open: true, hi, hi_open: false }
}
/// (0, inf)
const POSITIVE: Bound = Bound { lo: 0.0, lo_open: true, hi: INF, hi_open: true };
/// [0, inf)
const NON_NEGATIVE: Bound = Bound { lo: 0.0, lo_open: false, hi: INF, hi_open: true };
/// any finite number
const FINITE: Bound = Bound { lo: -INF, lo_open: true, hi: INF, hi_open: true };
/// [0, 1]
const UNIT: Bound = closed(0.0, 1.0);

impl Bound {
    pub fn contains(&self, v: f64) -> bool {
        let above = if self.lo_open { v > self.lo } else { v >= self.lo };
        let below = if self.hi_open { v < self.hi } else { v <= self.hi };
        v.is_finite() && above && below
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.lo == -INF, self.hi == INF) {
            (true, true) => write!(f, "any finite number"),
            (false, true) if self.lo_open => write!(f, "> {}", self.lo),
            (false, true) => write!(f, ">= {}", self.lo),
            _ => write!(f, "{}{}, {}{}", if self.lo_open { "(" } else { "[" }, self.lo, self.hi, if self.hi_open { ")" } else { "]" }),
        }
    }
}

/// One row of the parameter table.
pub struct ParamSpec {
    pub group: Group,
    pub name: &'static str,
    pub kind: Kind,
    pub bound: Bound,
    /// Default of a model or scaling parameter (firm and segment defaults are per name).
    pub default: Option<f64>,
    pub unit: &'static str,
    pub meaning: &'static str,
    pub source: &'static str,
    /// Reads the parameter of entity `idx` (firm or segment index; 0 otherwise).
    pub get: fn(&Scenario, usize) -> f64,
    /// Writes the parameter of entity `idx`; integers arrive already checked.
    pub set: fn(&mut Scenario, usize, f64),
}

macro_rules! param {
    (model $name:ident, $kind:ident, $bound:expr, $default:expr, $unit:expr, $meaning:expr, $source:expr) => {
        ParamSpec {
            group: Group::Model,
            name: stringify!($name),
            kind: Kind::$kind,
            bound: $bound,
            default: Some($default as f64),
            unit: $unit,
            meaning: $meaning,
            source: $source,
            get: |s, _| s.model.$name as f64,
            set: |s, _, v| s.model.$name = v as _,
        }
    };
    (scaling $name:ident = $field:ident, $bound:expr, $default:expr, $unit:expr, $meaning:expr, $source:expr) => {
        ParamSpec {
            group: Group::Scaling,
            name: stringify!($name),
            kind: Kind::Real,
            bound: $bound,
            default: Some($default),
            unit: $unit,
            meaning: $meaning,
            source: $source,
            get: |s, _| s.scaling.$field,
            set: |s, _, v| s.scaling.$field = v,
        }
    };
    (segment $name:ident, $bound:expr, $unit:expr, $meaning:expr, $source:expr) => {
        ParamSpec {
            group: Group::Segment,
            name: stringify!($name),
            kind: Kind::Real,
            bound: $bound,
            default: None,
            unit: $unit,
            meaning: $meaning,
            source: $source,
            get: |s, i| s.segments[i].$name,
            set: |s, i, v| s.segments[i].$name = v,
        }
    };
    (firm $name:ident, $kind:ident, $bound:expr, $unit:expr, $meaning:expr, $source:expr) => {
        ParamSpec {
            group: Group::Firm,
            name: stringify!($name),
            kind: Kind::$kind,
            bound: $bound,
            default: None,
            unit: $unit,
            meaning: $meaning,
            source: $source,
            get: |s, i| s.firms[i].$name as f64,
            set: |s, i, v| s.firms[i].$name = v as _,
        }
    };
}

const ASSUMED: &str = "assumption (MODEL.md section 6)";

/// The parameter table, in the order of MODEL.md section 6.
pub static PARAMS: &[ParamSpec] = &[
    param!(model months, Integer, closed(1.0, 1200.0), 36, "months", "horizon T: months t = 0 .. T-1 are solved", ASSUMED),
    param!(model discount, Real, open_closed(0.0, 1.0), 0.99, "per month", "discount factor: month t is weighted discount^t", ASSUMED),
    param!(model market0, Real, POSITIVE, 5e7, "Mtok/month", "market size (potential usage) in month 0", ASSUMED),
    param!(model market_growth, Real, Bound { lo: -1.0, lo_open: true, hi: 1.0, hi_open: false }, 0.05, "per month", "market growth: M_t = market0 (1 + market_growth)^t", ASSUMED),
    param!(model train_usd_per_flop, Real, POSITIVE, 1.4e-18, "$/FLOP", "price of training compute", "a $2 H100-hour at 40% utilisation"),
    param!(model infer_usd_per_flop, Real, POSITIVE, 5e-19, "$/FLOP", "price of inference compute (serving cost 2N FLOP per token)", ASSUMED),
    param!(model spill_gap, Real, NON_NEGATIVE, 0.15, "capability", "closed firms catch up to the best open product less this gap", ASSUMED),
    param!(model catchup_rate, Real, UNIT, 0.25, "per month", "fraction of the remaining gap to (best open - spill_gap) closed each month", ASSUMED),
    param!(model talent_decay, Real, NON_NEGATIVE, 0.02, "per month", "decay of closed firms' brand (talent premium) after the first release", ASSUMED),
    param!(model community_gain, Real, NON_NEGATIVE, 0.4, "stock per month", "community stock added per month at share 1", ASSUMED),
    param!(model community_decay, Real, UNIT, 0.03, "per month", "fraction of the community stock lost each month", ASSUMED),
    param!(model community_elasticity, Real, POSITIVE, 0.7, "1", "elasticity of community gain in the open product's share", ASSUMED),
    param!(model community_quality, Real, NON_NEGATIVE, 0.12, "capability", "quality of released weights: q0 + community_quality ln(1 + K)", ASSUMED),
    param!(model community_cost, Real, NON_NEGATIVE, 0.5, "1/stock", "serving cost of released weights: c0 / (1 + community_cost K)", ASSUMED),
    param!(model ad_uplift, Real, NON_NEGATIVE, 0.02, "1", "platform revenue gained per unit of AI usage share (1 - s_out)", ASSUMED),
    param!(model tol, Real, POSITIVE, 1e-6, "1", "convergence tolerance of the markup fixed point (relative change)", "MODEL.md section 3"),
    param!(model max_iter, Integer, closed(1.0, 100_000.0), 200, "iterations", "iteration cap of the markup fixed point per month", "MODEL.md section 3"),
    param!(scaling E = e, POSITIVE, 1.8172, "nats/token", "irreducible loss", "Besiroglu et al. 2024 (Chinchilla replication)"),
    param!(scaling A = a, POSITIVE, 482.01, "nats/token", "parameter term coefficient", "Besiroglu et al. 2024"),
    param!(scaling B = b, POSITIVE, 2085.43, "nats/token", "data term coefficient", "Besiroglu et al. 2024"),
    param!(scaling alpha = alpha, POSITIVE, 0.3478, "1", "parameter exponent", "Besiroglu et al. 2024"),
    param!(scaling beta = beta, POSITIVE, 0.3658, "1", "data exponent", "Besiroglu et al. 2024"),
    param!(scaling repeat_scale = repeat_scale, POSITIVE, 15.39, "epochs", "R*: decay scale of repeated data's value", "Muennighoff et al. 2023"),
    param!(scaling loss_ref = loss_ref, POSITIVE, 2.2, "nats/token", "reference loss: capability q0 = ln(loss_ref - E) - ln R (must exceed E)", ASSUMED),
    param!(segment weight, UNIT, "1", "segment's weight in demand (weights sum to 1)", ASSUMED),
    param!(segment intercept, FINITE, "utils", "a_k: utility of any AI product relative to none", ASSUMED),
    param!(segment price_sens, POSITIVE, "utils per $/Mtok", "alpha_k: price sensitivity", ASSUMED),
    param!(segment quality_taste, FINITE, "utils per capability", "beta_k: taste for capability Q", ASSUMED),
    param!(segment open_taste, FINITE, "utils", "theta_k: taste for open weights", ASSUMED),
    param!(firm train_spend, Real, POSITIVE, "$/year", "training compute spend (C = train_spend / train_usd_per_flop); also a cost of train_spend/12 per month", "Llama 3.1 405B anchors the scale"),
    param!(firm data_tokens, Real, POSITIVE, "tokens", "unique training data U", ASSUMED),
    param!(firm release_month, Month, closed(0.0, 1200.0), "month or never", "month from which the firm's weights are open", ASSUMED),
    param!(firm brand, Real, FINITE, "utils", "b_i: brand and talent premium", ASSUMED),
    param!(firm platform_revenue, Real, NON_NEGATIVE, "$/year", "revenue of the firm's platform (ads) that cheap AI lifts", "Meta's 2024 revenue is of order 160e9"),
    param!(firm funding, Real, NON_NEGATIVE, "$", "cash at month 0; the firm exits when cash turns negative", ASSUMED),
];

/// Looks a parameter up by group and name.
pub fn spec(group: Group, name: &str) -> Option<&'static ParamSpec> {
    PARAMS.iter().find(|p| p.group == group && p.name == name)
}

/// Every parameter name of a group (for "did you mean" suggestions).
pub fn names(group: Group) -> impl Iterator<Item = &'static str> {
    PARAMS.iter().filter(move |p| p.group == group).map(|p| p.name)
}

/// Model defaults (MODEL.md section 6).
pub fn default_model() -> Model {
    let mut sc = empty_scenario();
    for p in PARAMS.iter().filter(|p| p.group == Group::Model) {
        (p.set)(&mut sc, 0, p.default.expect("model parameters have defaults"));
    }
    sc.model
}

/// Scaling constants (MODEL.md section 1).
pub fn default_scaling() -> Scaling {
    let mut sc = empty_scenario();
    for p in PARAMS.iter().filter(|p| p.group == Group::Scaling) {
        (p.set)(&mut sc, 0, p.default.expect("scaling constants have defaults"));
    }
    sc.scaling
}

/// The default segments of MODEL.md section 6.
pub const DEFAULT_SEGMENTS: [(&str, Segment); 3] = [
    ("enterprise", Segment { weight: 0.35, intercept: -4.0, price_sens: 0.15, quality_taste: 3.0, open_taste: -0.5 }),
    ("developers", Segment { weight: 0.25, intercept: -4.0, price_sens: 0.6, quality_taste: 2.5, open_taste: 0.8 }),
    ("consumers", Segment { weight: 0.40, intercept: -4.5, price_sens: 1.5, quality_taste: 2.0, open_taste: -0.8 }),
];

/// The default firms of MODEL.md section 6.
pub const DEFAULT_FIRMS: [(&str, Firm); 4] = [
    ("open", Firm { train_spend: 1.0e9, data_tokens: 40e12, release_month: 6, brand: 0.0, platform_revenue: 160e9, funding: 50e9 }),
    (
        "frontier_a",
        Firm { train_spend: 1.5e9, data_tokens: 40e12, release_month: NEVER, brand: 0.6, platform_revenue: 0.0, funding: 100e9 },
    ),
    ("frontier_b", Firm { train_spend: 1.2e9, data_tokens: 20e12, release_month: NEVER, brand: 0.9, platform_revenue: 0.0, funding: 20e9 }),
    (
        "challenger",
        Firm { train_spend: 0.15e9, data_tokens: 10e12, release_month: NEVER, brand: 0.3, platform_revenue: 0.0, funding: 0.5e9 },
    ),
];

fn empty_scenario() -> Scenario {
    Scenario {
        model: Model {
            months: 0,
            discount: 0.0,
            market0: 0.0,
            market_growth: 0.0,
            train_usd_per_flop: 0.0,
            infer_usd_per_flop: 0.0,
            spill_gap: 0.0,
            catchup_rate: 0.0,
            talent_decay: 0.0,
            community_gain: 0.0,
            community_decay: 0.0,
            community_elasticity: 0.0,
            community_quality: 0.0,
            community_cost: 0.0,
            ad_uplift: 0.0,
            tol: 0.0,
            max_iter: 0,
        },
        scaling: Scaling { e: 0.0, a: 0.0, b: 0.0, alpha: 0.0, beta: 0.0, repeat_scale: 0.0, loss_ref: 0.0 },
        n_firms: 0,
        firms: Default::default(),
        n_segments: 0,
        segments: Default::default(),
    }
}

/// The baseline scenario of MODEL.md section 6: default model, segments and firms.
pub fn baseline() -> Scenario {
    let mut sc = empty_scenario();
    sc.model = default_model();
    sc.scaling = default_scaling();
    for (k, (_, seg)) in DEFAULT_SEGMENTS.iter().enumerate() {
        sc.segments[k] = *seg;
    }
    sc.n_segments = DEFAULT_SEGMENTS.len();
    for (i, (_, firm)) in DEFAULT_FIRMS.iter().enumerate() {
        sc.firms[i] = *firm;
    }
    sc.n_firms = DEFAULT_FIRMS.len();
    sc
}
