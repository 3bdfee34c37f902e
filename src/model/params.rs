//! Every parameter of the model in one table (docs/model.md, "Parameters").
//!
//! Each row of [`parameter_table!`] below is one parameter: its name, type, default
//! (one per default firm or segment for firm and segment parameters), kind, allowed
//! range, unit, how the GPU kernel receives it, its meaning and its source. From
//! these rows come the structs the model reads ([`Model`], [`Scaling`],
//! [`Segment`], [`Firm`]), the defaults of docs/model.md section 6, [`PARAMS`] (which
//! the config validator, `--set`, `moatsweep params`, the docs and the tests'
//! perturbations iterate) and the GPU's parameter layout and WGSL declarations
//! (`src/gpu/layout.rs`). Adding a parameter is one row here, plus its use in the
//! model and in the kernel.

use super::{NEVER, Scenario};

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

/// How the GPU kernel receives a parameter (one f32 in its block, `src/gpu/layout.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gpu {
    /// The value, rounded once to f32 (integers are exact below 2^24).
    Value,
    /// ln(value), computed on the host in f64: for values whose range or whose
    /// powers f32 cannot hold directly (data_tokens near 1e13, discount^t).
    Ln,
    /// ln(1 + value), computed on the host in f64: for growth rates, so that
    /// (1 + g)^t becomes exp(t ln(1 + g)) on the device.
    Ln1p,
    /// Not sent itself: folded on the host into a derived field of the layout
    /// (`src/gpu/layout.rs`, `DERIVED`) with the other parameters it combines with.
    Derived,
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
/// (-1, inf): a yearly growth rate (1 + g > 0)
const GROWTH: Bound = Bound { lo: -1.0, lo_open: true, hi: INF, hi_open: true };

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
    /// The name in configs (`model.<name>`, `firm.<firm>.<name>`, ...).
    pub name: &'static str,
    pub kind: Kind,
    pub bound: Bound,
    /// The default: one value for a model or scaling parameter; one per default
    /// segment ([`DEFAULT_SEGMENT_NAMES`]) or default firm ([`DEFAULT_FIRM_NAMES`]).
    pub defaults: &'static [f64],
    pub unit: &'static str,
    pub gpu: Gpu,
    meaning: &'static str,
    pub source: &'static str,
    /// Reads the parameter of entity `idx` (firm or segment index; 0 otherwise).
    pub get: fn(&Scenario, usize) -> f64,
    /// Writes the parameter of entity `idx`; integers arrive already checked.
    pub set: fn(&mut Scenario, usize, f64),
}

impl ParamSpec {
    /// What the parameter means (its doc comment in the table).
    pub fn meaning(&self) -> &'static str {
        self.meaning.trim()
    }

    /// `model.<name>`, `scaling.<name>`, `firm.<name>.<param>` or `segment.<name>.<param>`.
    pub fn path(&self, entity: &str) -> String {
        match self.group {
            Group::Model | Group::Scaling => format!("{}.{}", self.group.prefix(), self.name),
            Group::Firm | Group::Segment => format!("{}.{entity}.{}", self.group.prefix(), self.name),
        }
    }
}

/// Builds the structs, defaults and [`PARAMS`] from one table (see the module docs).
macro_rules! parameter_table {
    (
        model {
            $( #[doc = $mdoc:literal] $mname:ident : $mty:ty = $mdef:expr ; $mkind:ident $mbound:expr ; $munit:literal ; $mgpu:ident ; $msrc:expr ; )*
        }
        scaling {
            $( #[doc = $sdoc:literal] $sname:ident as $skey:literal = $sdef:expr ; $sbound:expr ; $sunit:literal ; $sgpu:ident ; $ssrc:expr ; )*
        }
        segment [$($segname:literal),+] {
            $( #[doc = $gdoc:literal] $gname:ident = [$($gdef:expr),+] ; $gbound:expr ; $gunit:literal ; $ggpu:ident ; $gsrc:expr ; )*
        }
        firm [$($firmname:literal),+] {
            $( #[doc = $fdoc:literal] $fname:ident : $fty:ty = [$($fdef:expr),+] ; $fkind:ident $fbound:expr ; $funit:literal ; $fgpu:ident ; $fsrc:expr ; )*
        }
    ) => {
        /// Model-wide parameters (docs/model.md section 6, "Model").
        #[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
        pub struct Model {
            $( #[doc = $mdoc] pub $mname: $mty, )*
        }

        /// Scaling-law constants (docs/model.md section 1).
        #[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
        pub struct Scaling {
            $( #[doc = $sdoc] #[serde(rename = $skey)] pub $sname: f64, )*
        }

        /// One consumer segment (docs/model.md section 3).
        #[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
        pub struct Segment {
            $( #[doc = $gdoc] pub $gname: f64, )*
        }

        /// One firm (docs/model.md sections 1, 2 and 4).
        #[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
        pub struct Firm {
            $( #[doc = $fdoc] pub $fname: $fty, )*
        }

        /// The model defaults of docs/model.md section 6.
        pub const DEFAULT_MODEL: Model = Model { $( $mname: $mdef as $mty, )* };

        /// The scaling constants of docs/model.md section 1.
        pub const DEFAULT_SCALING: Scaling = Scaling { $( $sname: $sdef as f64, )* };

        /// The default segments of docs/model.md section 6, in order.
        pub const DEFAULT_SEGMENT_NAMES: &[&str] = &[$($segname),+];

        /// The default firms of docs/model.md section 6, in order.
        pub const DEFAULT_FIRM_NAMES: &[&str] = &[$($firmname),+];

        /// Default segment `k` (an index into [`DEFAULT_SEGMENT_NAMES`]).
        pub const fn default_segment(k: usize) -> Segment {
            Segment { $( $gname: [$($gdef as f64),+][k], )* }
        }

        /// Default firm `k` (an index into [`DEFAULT_FIRM_NAMES`]).
        pub const fn default_firm(k: usize) -> Firm {
            Firm { $( $fname: [$($fdef as $fty),+][k], )* }
        }

        // Every segment and firm row gives one default per default entity.
        const _: () = {
            $( assert!([$($gdef as f64),+].len() == DEFAULT_SEGMENT_NAMES.len(), concat!("segment.", stringify!($gname), ": one default per default segment")); )*
            $( assert!([$($fdef as f64),+].len() == DEFAULT_FIRM_NAMES.len(), concat!("firm.", stringify!($fname), ": one default per default firm")); )*
        };

        /// Handles of the model parameters: `params::model::tol()` is the table's row
        /// of `model.tol`, a name the compiler checks (renaming the row breaks every use).
        pub mod model {
            $( #[doc = concat!("The row of `model.", stringify!($mname), "`.")]
            pub fn $mname() -> &'static super::ParamSpec { super::handle(super::Group::Model, stringify!($mname)) } )*
        }

        /// Handles of the scaling constants (see [`model`]).
        pub mod scaling {
            $( #[doc = concat!("The row of `scaling.", $skey, "`.")]
            pub fn $sname() -> &'static super::ParamSpec { super::handle(super::Group::Scaling, $skey) } )*
        }

        /// Handles of the segment parameters (see [`model`]).
        pub mod segment {
            $( #[doc = concat!("The row of `segment.<name>.", stringify!($gname), "`.")]
            pub fn $gname() -> &'static super::ParamSpec { super::handle(super::Group::Segment, stringify!($gname)) } )*
        }

        /// Handles of the firm parameters (see [`model`]).
        pub mod firm {
            $( #[doc = concat!("The row of `firm.<name>.", stringify!($fname), "`.")]
            pub fn $fname() -> &'static super::ParamSpec { super::handle(super::Group::Firm, stringify!($fname)) } )*
        }

        /// The parameter table, in the order of docs/model.md section 6.
        pub static PARAMS: &[ParamSpec] = &[
            $( ParamSpec {
                group: Group::Model, name: stringify!($mname), kind: Kind::$mkind, bound: $mbound,
                defaults: &[$mdef as f64], unit: $munit, gpu: Gpu::$mgpu, meaning: $mdoc, source: $msrc,
                get: |s, _| s.model.$mname as f64, set: |s, _, v| s.model.$mname = v as $mty,
            }, )*
            $( ParamSpec {
                group: Group::Scaling, name: $skey, kind: Kind::Real, bound: $sbound,
                defaults: &[$sdef as f64], unit: $sunit, gpu: Gpu::$sgpu, meaning: $sdoc, source: $ssrc,
                get: |s, _| s.scaling.$sname, set: |s, _, v| s.scaling.$sname = v,
            }, )*
            $( ParamSpec {
                group: Group::Segment, name: stringify!($gname), kind: Kind::Real, bound: $gbound,
                defaults: &[$($gdef as f64),+], unit: $gunit, gpu: Gpu::$ggpu, meaning: $gdoc, source: $gsrc,
                get: |s, i| s.segments[i].$gname, set: |s, i, v| s.segments[i].$gname = v,
            }, )*
            $( ParamSpec {
                group: Group::Firm, name: stringify!($fname), kind: Kind::$fkind, bound: $fbound,
                defaults: &[$($fdef as f64),+], unit: $funit, gpu: Gpu::$fgpu, meaning: $fdoc, source: $fsrc,
                get: |s, i| s.firms[i].$fname as f64, set: |s, i, v| s.firms[i].$fname = v as $fty,
            }, )*
        ];
    };
}

const ASSUMED: &str = "assumption (docs/model.md section 6)";
const BESIROGLU: &str = "Besiroglu et al. 2024 (Chinchilla replication)";

// Columns: name: type = default(s); kind range; unit; GPU form; source. The doc
// comment is the meaning that `moatsweep params` and docs/model.md print.
parameter_table! {
    model {
        /// horizon T: months t = 0 .. T-1 are solved
        months: u32 = 36; Integer closed(1.0, 1200.0); "months"; Value; ASSUMED;
        /// discount factor: month t is weighted discount^t
        discount: f64 = 0.99; Real open_closed(0.0, 1.0); "per month"; Ln; ASSUMED;
        /// market size (potential usage) in month 0
        market0: f64 = 5e7; Real POSITIVE; "Mtok/month"; Value; ASSUMED;
        /// market growth: M_t = market0 (1 + market_growth)^t
        market_growth: f64 = 0.05; Real Bound { lo: -1.0, lo_open: true, hi: 1.0, hi_open: false }; "per month"; Ln1p; ASSUMED;
        /// price of training compute
        train_usd_per_flop: f64 = 1.4e-18; Real POSITIVE; "$/FLOP"; Derived; "a $2 H100-hour at 40% utilisation";
        /// price of inference compute (serving cost 2N FLOP per token)
        infer_usd_per_flop: f64 = 5e-19; Real POSITIVE; "$/FLOP"; Derived; ASSUMED;
        /// closed firms catch up to the best open product less this gap
        spill_gap: f64 = 0.15; Real NON_NEGATIVE; "capability"; Value; ASSUMED;
        /// fraction of the remaining gap to (best open - spill_gap) closed each month
        catchup_rate: f64 = 0.25; Real UNIT; "per month"; Value; ASSUMED;
        /// decay of closed firms' brand (talent premium) after the first release
        talent_decay: f64 = 0.02; Real NON_NEGATIVE; "per month"; Value; ASSUMED;
        /// community stock added per month at share 1
        community_gain: f64 = 0.4; Real NON_NEGATIVE; "stock per month"; Value; ASSUMED;
        /// fraction of the community stock lost each month
        community_decay: f64 = 0.03; Real UNIT; "per month"; Value; ASSUMED;
        /// elasticity of community gain in the open product's share
        community_elasticity: f64 = 0.7; Real POSITIVE; "1"; Value; ASSUMED;
        /// quality of released weights: q0 + community_quality ln(1 + K)
        community_quality: f64 = 0.12; Real NON_NEGATIVE; "capability"; Value; ASSUMED;
        /// serving cost of released weights: c0 / (1 + community_cost K)
        community_cost: f64 = 0.5; Real NON_NEGATIVE; "1/stock"; Value; ASSUMED;
        /// platform revenue gained per unit of AI usage share (1 - s_out)
        ad_uplift: f64 = 0.02; Real NON_NEGATIVE; "1"; Value; ASSUMED;
        /// convergence tolerance of the markup fixed point (relative change)
        tol: f64 = 1e-6; Real POSITIVE; "1"; Value; "docs/model.md section 3";
        /// iteration cap of the markup fixed point per month
        max_iter: u32 = 200; Integer closed(1.0, 100_000.0); "iterations"; Value; "docs/model.md section 3";
        /// G: every G months each alive firm trains a new generation (0: one generation for the whole horizon)
        generation_months: u32 = 12; Integer closed(0.0, 1200.0); "months"; Value; ASSUMED;
        /// investors refinance a firm out of cash only while its product leads the best other released product by at least this
        investor_hurdle: f64 = 0.0; Real FINITE; "capability"; Value; ASSUMED;
        /// investors refill this many months of the firm's current training spend (0: no refinancing, firms exit)
        investor_runway: f64 = 12.0; Real closed(0.0, 1200.0); "months of spend"; Value; ASSUMED;
    }
    scaling {
        /// irreducible loss
        e as "E" = 1.8172; POSITIVE; "nats/token"; Derived; BESIROGLU;
        /// parameter term coefficient
        a as "A" = 482.01; POSITIVE; "nats/token"; Value; "Besiroglu et al. 2024";
        /// data term coefficient
        b as "B" = 2085.43; POSITIVE; "nats/token"; Value; "Besiroglu et al. 2024";
        /// parameter exponent
        alpha as "alpha" = 0.3478; POSITIVE; "1"; Value; "Besiroglu et al. 2024";
        /// data exponent
        beta as "beta" = 0.3658; POSITIVE; "1"; Value; "Besiroglu et al. 2024";
        /// R*: decay scale of repeated data's value
        repeat_scale as "repeat_scale" = 15.39; POSITIVE; "epochs"; Value; "Muennighoff et al. 2023";
        /// reference loss: capability q0 = ln(loss_ref - E) - ln R (must exceed E)
        loss_ref as "loss_ref" = 2.2; POSITIVE; "nats/token"; Derived; ASSUMED;
    }
    segment ["enterprise", "developers", "consumers"] {
        /// segment's weight in demand (weights sum to 1)
        weight = [0.35, 0.25, 0.40]; UNIT; "1"; Value; ASSUMED;
        /// a_k: utility of any AI product relative to none
        intercept = [-4.0, -4.0, -4.5]; FINITE; "utils"; Value; ASSUMED;
        /// alpha_k: price sensitivity
        price_sens = [0.15, 0.6, 1.5]; POSITIVE; "utils per $/Mtok"; Value; ASSUMED;
        /// beta_k: taste for capability Q
        quality_taste = [3.0, 2.5, 2.0]; FINITE; "utils per capability"; Value; ASSUMED;
        /// theta_k: taste for open weights
        open_taste = [-0.5, 0.8, -0.8]; FINITE; "utils"; Value; ASSUMED;
    }
    firm ["open", "frontier_a", "frontier_b", "challenger"] {
        /// first generation's yearly training spend (C = spend / train_usd_per_flop); the current generation's spend / 12 is a cost each month
        train_spend: f64 = [1.0e9, 1.5e9, 1.2e9, 0.15e9]; Real POSITIVE; "$/year"; Value; "Llama 3.1 405B anchors the scale";
        /// unique training data U of the first generation
        data_tokens: f64 = [40e12, 40e12, 20e12, 10e12]; Real POSITIVE; "tokens"; Ln; ASSUMED;
        /// month from which the firm's weights are open
        release_month: i32 = [6, NEVER, NEVER, NEVER]; Month closed(0.0, 1200.0); "month or never"; Value; ASSUMED;
        /// b_i: brand and talent premium
        brand: f64 = [0.0, 0.6, 0.9, 0.3]; Real FINITE; "utils"; Value; ASSUMED;
        /// revenue of the firm's platform (ads) that cheap AI lifts
        platform_revenue: f64 = [160e9, 0.0, 0.0, 0.0]; Real NON_NEGATIVE; "$/year"; Value; "Meta's 2024 revenue is of order 160e9";
        /// cash at month 0; when cash falls below -spend/12000 investors refinance the firm or it exits
        funding: f64 = [50e9, 100e9, 20e9, 0.5e9]; Real NON_NEGATIVE; "$"; Value; ASSUMED;
        /// yearly growth of training spend: a generation trained at month t spends train_spend (1 + g)^(t/12)
        spend_growth: f64 = [1.0, 1.5, 1.0, 0.5]; Real GROWTH; "per year"; Ln1p; "frontier budgets grew 2-4x a year (docs/model.md section 6)";
        /// yearly growth of unique data: a generation trained at month t has data_tokens (1 + g)^(t/12)
        data_growth: f64 = [0.5, 0.3, 0.3, 0.1]; Real GROWTH; "per year"; Ln1p; ASSUMED;
        /// serving-cost factor: the firm pays cost_factor times the plain 2N-FLOP serving cost of every generation (hardware, architecture, batching); new firms may omit it (1)
        cost_factor: f64 = [1.0, 1.0, 1.0, 1.0]; Real open_closed(0.0, 1000.0); "1"; Ln; "1 (plain 2N FLOP per token); `moatsweep calibrate` sets it from observed prices (docs/model.md section 9)";
    }
}

/// Firm parameters that a firm of a new name may leave out, with the value it
/// then gets (docs/model.md section 10: `cost_factor` defaults to 1 for every firm).
pub const NEW_FIRM_DEFAULTS: &[(&str, f64)] = &[("cost_factor", 1.0)];

/// The row a handle ([`model`], [`scaling`], [`segment`], [`firm`]) stands for:
/// the handles are generated from the same rows, so it exists.
fn handle(group: Group, name: &str) -> &'static ParamSpec {
    spec(group, name).expect("a handle names a row of the table")
}

impl ParamSpec {
    /// Whether this is the row `other` (e.g. a handle: `spec.is(params::model::tol())`).
    pub fn is(&self, other: &ParamSpec) -> bool {
        std::ptr::eq(self, other)
    }
}

/// Looks a parameter up by group and name.
pub fn spec(group: Group, name: &str) -> Option<&'static ParamSpec> {
    PARAMS.iter().find(|p| p.group == group && p.name == name)
}

/// Every parameter name of a group (for "did you mean" suggestions).
pub fn names(group: Group) -> impl Iterator<Item = &'static str> {
    PARAMS.iter().filter(move |p| p.group == group).map(|p| p.name)
}

/// The baseline scenario of docs/model.md section 6: default model, segments and firms.
pub fn baseline() -> Scenario {
    let mut sc = Scenario {
        model: DEFAULT_MODEL,
        scaling: DEFAULT_SCALING,
        n_firms: DEFAULT_FIRM_NAMES.len(),
        firms: Default::default(),
        n_segments: DEFAULT_SEGMENT_NAMES.len(),
        segments: Default::default(),
    };
    for k in 0..sc.n_segments {
        sc.segments[k] = default_segment(k);
    }
    for i in 0..sc.n_firms {
        sc.firms[i] = default_firm(i);
    }
    sc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row's getter and setter address its own field: setting each parameter
    /// in turn to a distinct value changes that parameter and no other.
    #[test]
    fn getters_and_setters_address_their_own_fields() {
        for (n, p) in PARAMS.iter().enumerate() {
            let mut sc = baseline();
            let before: Vec<f64> = PARAMS.iter().map(|q| (q.get)(&sc, 1)).collect();
            let v = if p.kind == Kind::Real { 0.123456 } else { 7.0 };
            (p.set)(&mut sc, 1, v);
            for (m, q) in PARAMS.iter().enumerate() {
                let now = (q.get)(&sc, 1);
                if m == n {
                    assert_eq!(now, v, "{}.{} did not take its value", q.group.prefix(), q.name);
                } else {
                    assert_eq!(now.to_bits(), before[m].to_bits(), "setting {} changed {}", p.name, q.name);
                }
            }
        }
    }

    /// Each handle is the row of its own name and group, and tells rows apart.
    #[test]
    fn handles_are_their_rows() {
        let cases: [(&ParamSpec, Group, &str); 6] = [
            (model::tol(), Group::Model, "tol"),
            (model::generation_months(), Group::Model, "generation_months"),
            (scaling::e(), Group::Scaling, "E"),
            (scaling::loss_ref(), Group::Scaling, "loss_ref"),
            (segment::weight(), Group::Segment, "weight"),
            (firm::release_month(), Group::Firm, "release_month"),
        ];
        for (h, group, name) in cases {
            assert_eq!((h.group, h.name), (group, name));
            assert!(h.is(spec(group, name).unwrap()));
        }
        assert!(!model::months().is(model::max_iter()));
        let mut sc = baseline();
        (model::tol().set)(&mut sc, 0, 1e-9);
        assert_eq!(sc.model.tol, 1e-9);
        (firm::release_month().set)(&mut sc, 3, 12.0);
        assert_eq!(sc.firms[3].release_month, 12);
    }

    /// The defaults table of docs/model.md section 6, read off the table rows.
    #[test]
    fn defaults_are_those_of_the_spec() {
        let sc = baseline();
        assert_eq!((sc.model.months, sc.model.max_iter, sc.model.discount, sc.model.tol), (36, 200, 0.99, 1e-6));
        assert_eq!(sc.firms[0].release_month, 6);
        assert_eq!(sc.firms[3].release_month, NEVER);
        assert_eq!((sc.firms[3].train_spend, sc.firms[3].funding), (0.15e9, 0.5e9));
        assert_eq!((sc.segments[2].weight, sc.segments[2].price_sens, sc.segments[1].open_taste), (0.40, 1.5, 0.8));
        assert_eq!((sc.scaling.e, sc.scaling.a, sc.scaling.loss_ref), (1.8172, 482.01, 2.2));
        for p in PARAMS {
            for &d in p.defaults {
                assert!(p.bound.contains(d) || (p.kind == Kind::Month && d == NEVER as f64), "{}: default {d} outside {}", p.name, p.bound);
            }
        }
    }
}
