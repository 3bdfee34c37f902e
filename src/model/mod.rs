//! The moat model, version 1 (`../shared/MODEL.md`), as the f64 CPU reference.
//!
//! The sections of the specification map onto files:
//! - section 1 (capability from compute and data): [`scaling`]
//! - section 3 (demand and Bertrand-Nash prices): [`demand`]
//! - sections 2, 4 and 5 (products, release, money, exits, outputs): [`solve`]
//! - section 6 (defaults) and every parameter's allowed range: [`params`]
//!
//! The WGSL kernel (`shaders/moat.wgsl`) mirrors these files in f32.

pub mod demand;
pub mod params;
pub mod scaling;
pub mod solve;

pub use solve::{MonthRecord, NoTrace, Observer, solve, solve_traced, solve_with};

/// At most this many firms in one config (MODEL.md section 3: one product per firm).
pub const MAX_FIRMS: usize = 8;
/// At most this many consumer segments (MODEL.md section 3).
pub const MAX_SEGMENTS: usize = 8;

/// `release_month` of a firm that never releases (written `never` in configs, -1 in CSV).
pub const NEVER: i32 = -1;

/// Model-wide parameters (MODEL.md section 6, "Model").
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Model {
    pub months: u32,
    pub discount: f64,
    pub market0: f64,
    pub market_growth: f64,
    pub train_usd_per_flop: f64,
    pub infer_usd_per_flop: f64,
    pub spill_gap: f64,
    pub catchup_rate: f64,
    pub talent_decay: f64,
    pub community_gain: f64,
    pub community_decay: f64,
    pub community_elasticity: f64,
    pub community_quality: f64,
    pub community_cost: f64,
    pub ad_uplift: f64,
    pub tol: f64,
    pub max_iter: u32,
}

/// Scaling-law constants (MODEL.md section 1).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct Scaling {
    #[serde(rename = "E")]
    pub e: f64,
    #[serde(rename = "A")]
    pub a: f64,
    #[serde(rename = "B")]
    pub b: f64,
    pub alpha: f64,
    pub beta: f64,
    pub repeat_scale: f64,
    pub loss_ref: f64,
}

/// One consumer segment (MODEL.md section 3).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Segment {
    pub weight: f64,
    pub intercept: f64,
    pub price_sens: f64,
    pub quality_taste: f64,
    pub open_taste: f64,
}

/// One firm (MODEL.md sections 1, 2 and 4).
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct Firm {
    pub train_spend: f64,
    pub data_tokens: f64,
    /// Month of the open-weight release, or [`NEVER`].
    pub release_month: i32,
    pub brand: f64,
    pub platform_revenue: f64,
    pub funding: f64,
}

/// Every parameter of one scenario: what a row of a sweep evaluates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scenario {
    pub model: Model,
    pub scaling: Scaling,
    pub n_firms: usize,
    pub firms: [Firm; MAX_FIRMS],
    pub n_segments: usize,
    pub segments: [Segment; MAX_SEGMENTS],
}

impl Scenario {
    pub fn firms(&self) -> &[Firm] {
        &self.firms[..self.n_firms]
    }
    pub fn segments(&self) -> &[Segment] {
        &self.segments[..self.n_segments]
    }
}

/// The outputs of one scenario (MODEL.md section 5): the final month T-1 as solved.
///
/// Generic over the float type so that the f32 GPU kernel's results are written
/// in their own shortest round-trip form.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome<F = f64> {
    /// Bit i set when firm i offers a product in month T-1 (its price is then meaningful).
    pub offered: u32,
    pub share: [F; MAX_FIRMS],
    pub price: [F; MAX_FIRMS],
    pub quality: [F; MAX_FIRMS],
    pub npv: [F; MAX_FIRMS],
    pub complement_npv: [F; MAX_FIRMS],
    pub exit_month: [i32; MAX_FIRMS],
    pub outside_share: F,
    pub open_share: F,
    pub hhi: F,
    pub consumer_surplus_npv: F,
    pub max_iterations: u32,
    pub nonconverged_months: u32,
}

impl<F> Outcome<F> {
    pub fn is_offered(&self, firm: usize) -> bool {
        self.offered & (1 << firm) != 0
    }
}
