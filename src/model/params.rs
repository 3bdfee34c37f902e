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
/// [0, 1]
const UNIT: Bound = closed(0.0, 1.0);
impl Bound {
    pub fn contains(&self, v: f64) -> bool {
        let above = if self.lo_open { v > self.lo } else { v >= self.lo };
        let below = if self.hi_open { v < self.hi } else { v <= self.hi };
        v.is_finite() && above && below
    }
}

/// A bound's end as written in the parameter table: plain for moderate values,
/// scientific (1e-24, 1e30) otherwise.
fn end(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) { format!("{v:e}") } else { v.to_string() }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.lo == -INF, self.hi == INF) {
            (true, true) => write!(f, "any finite number"),
            (false, true) if self.lo_open => write!(f, "> {}", end(self.lo)),
            (false, true) => write!(f, ">= {}", end(self.lo)),
            _ => write!(
                f,
                "{}{}, {}{}",
                if self.lo_open { "(" } else { "[" },
                end(self.lo),
                end(self.hi),
                if self.hi_open { ")" } else { "]" }
            ),
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
    /// Why the allowed range is what it is: what it keeps finite in the f64
    /// reference and the f32 kernel (docs/model.md, "Parameters").
    pub why: &'static str,
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
            $( #[doc = $mdoc:literal] $mname:ident : $mty:ty = $mdef:expr ; $mkind:ident $mbound:expr ; $munit:literal ; $mgpu:ident ; $msrc:expr ; $mwhy:expr ; )*
        }
        scaling {
            $( #[doc = $sdoc:literal] $sname:ident as $skey:literal = $sdef:expr ; $sbound:expr ; $sunit:literal ; $sgpu:ident ; $ssrc:expr ; $swhy:expr ; )*
        }
        segment [$($segname:literal),+] {
            $( #[doc = $gdoc:literal] $gname:ident = [$($gdef:expr),+] ; $gbound:expr ; $gunit:literal ; $ggpu:ident ; $gsrc:expr ; $gwhy:expr ; )*
        }
        firm [$($firmname:literal),+] {
            $( #[doc = $fdoc:literal] $fname:ident : $fty:ty = [$($fdef:expr),+] ; $fkind:ident $fbound:expr ; $funit:literal ; $fgpu:ident ; $fsrc:expr ; $fwhy:expr ; )*
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
                defaults: &[$mdef as f64], unit: $munit, gpu: Gpu::$mgpu, meaning: $mdoc, source: $msrc, why: $mwhy,
                get: |s, _| s.model.$mname as f64, set: |s, _, v| s.model.$mname = v as $mty,
            }, )*
            $( ParamSpec {
                group: Group::Scaling, name: $skey, kind: Kind::Real, bound: $sbound,
                defaults: &[$sdef as f64], unit: $sunit, gpu: Gpu::$sgpu, meaning: $sdoc, source: $ssrc, why: $swhy,
                get: |s, _| s.scaling.$sname, set: |s, _, v| s.scaling.$sname = v,
            }, )*
            $( ParamSpec {
                group: Group::Segment, name: stringify!($gname), kind: Kind::Real, bound: $gbound,
                defaults: &[$($gdef as f64),+], unit: $gunit, gpu: Gpu::$ggpu, meaning: $gdoc, source: $gsrc, why: $gwhy,
                get: |s, i| s.segments[i].$gname, set: |s, i, v| s.segments[i].$gname = v,
            }, )*
            $( ParamSpec {
                group: Group::Firm, name: stringify!($fname), kind: Kind::$fkind, bound: $fbound,
                defaults: &[$($fdef as f64),+], unit: $funit, gpu: Gpu::$fgpu, meaning: $fdoc, source: $fsrc, why: $fwhy,
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
            "every sum over months (npv, surplus, raised) has at most 1200 terms";
        /// discount factor: month t is weighted discount^t
        discount: f64 = 0.99; Real open_closed(0.0, 1.0); "per month"; Ln; ASSUMED;
            "d_t = discount^t <= 1 never amplifies a flow; above 0 because the kernel gets ln(discount)";
        /// market size (potential usage) in month 0
        market0: f64 = 5e7; Real open_closed(0.0, 1e20); "Mtok/month"; Value; ASSUMED;
            "money and surplus sums (M_t x share x markup, M_t x surplus / alpha, 1200 months; see price_sens) stay below f32's 3.4e38 while M_t <= 1e28; market0 (1 + market_growth)^t over the horizon is checked against 1e30";
        /// market growth: M_t = market0 (1 + market_growth)^t
        market_growth: f64 = 0.05; Real Bound { lo: -1.0, lo_open: true, hi: 1.0, hi_open: false }; "per month"; Ln1p; ASSUMED;
            "1 + g > 0 for ln(1 + g); M_t = market0 (1 + g)^t is checked against 1e30 Mtok with market0 and months";
        /// price of training compute
        train_usd_per_flop: f64 = 1.4e-18; Real closed(1e-24, 1e-6); "$/FLOP"; Derived; "a $2 H100-hour at 40% utilisation";
            "C = spend / price <= 1e30 / 1e-24: ln(C/6) <= 123, so x = ln N and ln D <= 109 and every term of the loss stays a normal number in f64 and f32 (5e-324 made C infinite); at 1e-6 the minimum C/6 = 1e12 FLOP still costs only 6e6 $/year";
        /// price of inference compute (serving cost 2N FLOP per token)
        infer_usd_per_flop: f64 = 5e-19; Real closed(1e-24, 1e-12); "$/FLOP"; Derived; ASSUMED;
            "c = 2 N 1e6 price cost_factor with N <= e^109: at most 3e44 $/Mtok in f64, and alpha c finite; below 1e-24 only underflows the cost to 0";
        /// closed firms catch up to the best open product less this gap
        spill_gap: f64 = 0.15; Real closed(0.0, 1000.0); "capability"; Value; ASSUMED;
            "capabilities are within [-56, 220] (see scaling); a larger gap is the same as no spillover";
        /// fraction of the remaining gap to (best open - spill_gap) closed each month
        catchup_rate: f64 = 0.25; Real UNIT; "per month"; Value; ASSUMED;
            "a fraction: q moves at most to the best open product's Q, never beyond";
        /// decay of closed firms' brand (talent premium) after the first release
        talent_decay: f64 = 0.02; Real closed(0.0, 100.0); "per month"; Value; ASSUMED;
            "brand e^(-decay t) only shrinks; e^-100 already erases any brand, and the value must be an f32";
        /// community stock added per month at share 1
        community_gain: f64 = 0.4; Real closed(0.0, 1000.0); "stock per month"; Value; ASSUMED;
            "K <= 1200 gain <= 1.2e6, so ln(1 + K) <= 14 in Q and 1 + community_cost K stays finite";
        /// fraction of the community stock lost each month
        community_decay: f64 = 0.03; Real UNIT; "per month"; Value; ASSUMED;
            "a fraction: K never turns negative";
        /// elasticity of community gain in the open product's share
        community_elasticity: f64 = 0.7; Real open_closed(0.0, 100.0); "1"; Value; ASSUMED;
            "S^e <= 1 for any e > 0; the kernel's e ln S >= -8730 only underflows to 0";
        /// quality of released weights: q0 + community_quality ln(1 + K)
        community_quality: f64 = 0.12; Real closed(0.0, 10.0); "capability"; Value; ASSUMED;
            "adds at most 10 x 14 = 140 to Q, keeping Q <= 220 and the utilities beta Q small";
        /// serving cost of released weights: c0 / (1 + community_cost K)
        community_cost: f64 = 0.5; Real closed(0.0, 1e6); "1/stock"; Value; ASSUMED;
            "divides the cost by 1 + community_cost K <= 1.2e12: only lowers it";
        /// platform revenue gained per unit of AI usage share (1 - s_out)
        ad_uplift: f64 = 0.02; Real closed(0.0, 1000.0); "1"; Value; ASSUMED;
            "complement <= platform_revenue / 12 x 1000 <= 8.4e31 $ a month, 1e35 over 1200 months: within f32";
        /// convergence tolerance of the markup fixed point (relative change)
        tol: f64 = 1e-6; Real open_closed(0.0, 1.0); "1"; Value; "docs/model.md section 3";
            "a relative change: above 1 every month would stop after one update";
        /// iteration cap of the markup fixed point per month
        max_iter: u32 = 200; Integer closed(1.0, 100_000.0); "iterations"; Value; "docs/model.md section 3";
            "bounds the work per month; an integer exact in f32";
        /// G: every G months each alive firm trains a new generation (0: one generation for the whole horizon)
        generation_months: u32 = 12; Integer closed(0.0, 1200.0); "months"; Value; ASSUMED;
            "at most the horizon's 1200 months";
        /// investors refinance a firm out of cash only while its product leads the best other released product by at least this
        investor_hurdle: f64 = 0.0; Real closed(-1000.0, 1000.0); "capability"; Value; ASSUMED;
            "compared with differences of capabilities (within 300 of each other); beyond +-1000 always or never, and the value must be an f32";
        /// investors refill this many months of the firm's current training spend (0: no refinancing, firms exit)
        investor_runway: f64 = 12.0; Real closed(0.0, 1200.0); "months of spend"; Value; ASSUMED;
            "a top-up is at most 1200 x 1e30 / 12 = 1e32 $, 1.2e35 over 1200 months: within f32";
    }
    scaling {
        /// irreducible loss
        e as "E" = 1.8172; closed(0.01, 100.0); "nats/token"; Derived; BESIROGLU;
            "losses are O(1) nats; with loss_ref <= 1000 the gap loss_ref - E is at least an ulp of 100, so ln(loss_ref - E) >= ln(ulp of 0.01) = -41";
        /// parameter term coefficient
        a as "A" = 482.01; closed(1e-3, 1e6); "nats/token"; Value; "Besiroglu et al. 2024";
            "A e^(-alpha x) >= 1e-3 e^(-0.6 x 109) = e^-72 stays a normal f32 (R > 0, q finite); R <= A + B keeps q >= -56";
        /// data term coefficient
        b as "B" = 2085.43; closed(1e-3, 1e6); "nats/token"; Value; "Besiroglu et al. 2024";
            "as A, for B D'^-beta with ln D' <= 109";
        /// parameter exponent
        alpha as "alpha" = 0.3478; open_closed(0.0, 0.6); "1"; Value; "Besiroglu et al. 2024";
            "alpha x <= 0.6 x 109 = 65: e^(-alpha x) stays a normal f32, so R > 0 and q = ln(loss_ref - E) - ln R <= 79";
        /// data exponent
        beta as "beta" = 0.3658; open_closed(0.0, 0.6); "1"; Value; "Besiroglu et al. 2024";
            "as alpha, for D'^-beta";
        /// R*: decay scale of repeated data's value
        repeat_scale as "repeat_scale" = 15.39; closed(1e-3, 1e6); "epochs"; Value; "Muennighoff et al. 2023";
            "r / R* <= e^80 / 1e-3 = 5.5e37 stays an f32 (the kernel caps r at e^80); D' <= U (1 + R*)";
        /// reference loss: capability q0 = ln(loss_ref - E) - ln R (must exceed E)
        loss_ref as "loss_ref" = 2.2; closed(0.01, 1000.0); "nats/token"; Derived; ASSUMED;
            "ln(loss_ref - E) <= ln 1000 keeps q <= 79; loss_ref > E is checked";
    }
    segment ["enterprise", "developers", "consumers"] {
        /// segment's weight in demand (weights sum to 1)
        weight = [0.35, 0.25, 0.40]; UNIT; "1"; Value; ASSUMED;
            "a fraction (the weights sum to 1)";
        /// a_k: utility of any AI product relative to none
        intercept = [-4.0, -4.0, -4.5]; closed(-100.0, 100.0); "utils"; Value; ASSUMED;
            "shares are e^u after shifting by the largest utility, so only the surplus ln(1 + sum e^u) <= max(0, u) + ln 9 grows with u: |a|, |b|, |theta| <= 100 and |beta Q| <= 2200 keep it below 2500";
        /// alpha_k: price sensitivity
        price_sens = [0.15, 0.6, 1.5]; closed(1e-3, 1e3); "utils per $/Mtok"; Value; ASSUMED;
            "surplus / alpha <= 2.5e6 and markups (about u / alpha) <= 2.5e6: money and surplus sums of 1200 months stay within f32 while M_t <= 1e28 (5e-324 made shares NaN); alpha c and alpha m stay finite";
        /// beta_k: taste for capability Q
        quality_taste = [3.0, 2.5, 2.0]; closed(-10.0, 10.0); "utils per capability"; Value; ASSUMED;
            "|beta Q| <= 10 x 220 = 2200 utils (1e308 made shares NaN); see intercept";
        /// theta_k: taste for open weights
        open_taste = [-0.5, 0.8, -0.8]; closed(-100.0, 100.0); "utils"; Value; ASSUMED;
            "see intercept";
    }
    firm ["open", "frontier_a", "frontier_b", "challenger"] {
        /// first generation's yearly training spend (C = spend / train_usd_per_flop); the current generation's spend / 12 is a cost each month
        train_spend: f64 = [1.0e9, 1.5e9, 1.2e9, 0.15e9]; Real open_closed(0.0, 1e30); "$/year"; Value; "Llama 3.1 405B anchors the scale";
            "every generation's spend <= 1e30 $/year (also checked with spend_growth), 1e32 over 1200 months; C/6 >= 1e12 FLOP is checked";
        /// unique training data U of the first generation
        data_tokens: f64 = [40e12, 40e12, 20e12, 10e12]; Real closed(1e6, 1e30); "tokens"; Ln; ASSUMED;
            "U >= 1e6 (the fewest tokens the bracket tries) keeps D' >= 1, so D'^-beta <= 1 and R <= A + B";
        /// month from which the firm's weights are open
        release_month: i32 = [6, NEVER, NEVER, NEVER]; Month closed(0.0, 1200.0); "month or never"; Value; ASSUMED;
            "a month of the longest horizon";
        /// b_i: brand and talent premium
        brand: f64 = [0.0, 0.6, 0.9, 0.3]; Real closed(-100.0, 100.0); "utils"; Value; ASSUMED;
            "see segment intercept (1e300 made the surplus infinite)";
        /// revenue of the firm's platform (ads) that cheap AI lifts
        platform_revenue: f64 = [160e9, 0.0, 0.0, 0.0]; Real closed(0.0, 1e30); "$/year"; Value; "Meta's 2024 revenue is of order 160e9";
            "see ad_uplift: the complement stays within f32";
        /// cash at month 0; when cash falls below -spend/12000 investors refinance the firm or it exits
        funding: f64 = [50e9, 100e9, 20e9, 0.5e9]; Real closed(0.0, 1e35); "$"; Value; ASSUMED;
            "cash = funding + flows stays below 3.4e38 in f32";
        /// yearly growth of training spend: a generation trained at month t spends train_spend (1 + g)^(t/12)
        spend_growth: f64 = [1.0, 1.5, 1.0, 0.5]; Real Bound { lo: -1.0, lo_open: true, hi: 100.0, hi_open: false }; "per year"; Ln1p; "frontier budgets grew 2-4x a year (docs/model.md section 6)";
            "1 + g > 0 for ln(1 + g); the grown spend is checked against 1e30 $/year and C/6 >= 1e12";
        /// yearly growth of unique data: a generation trained at month t has data_tokens (1 + g)^(t/12)
        data_growth: f64 = [0.5, 0.3, 0.3, 0.1]; Real Bound { lo: -1.0, lo_open: true, hi: 100.0, hi_open: false }; "per year"; Ln1p; ASSUMED;
            "1 + g > 0 for ln(1 + g); only ln U enters the model (no overflow), and U below D only saturates D' at U (1 + R*)";
        /// serving-cost factor: the firm pays cost_factor times the plain 2N-FLOP serving cost of every generation (hardware, architecture, batching); new firms may omit it (1)
        cost_factor: f64 = [1.0, 1.0, 1.0, 1.0]; Real open_closed(0.0, 1000.0); "1"; Ln; "1 (plain 2N FLOP per token); `moatsweep calibrate` sets it from observed prices (docs/model.md section 9)";
            "scales the serving cost by at most 1000 (see infer_usd_per_flop); above 0 because the kernel gets its log";
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
