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
pub mod outputs;
pub mod params;
pub mod scaling;
pub mod solve;

pub use outputs::{Out, Outcome};
pub use params::{Firm, Model, Scaling, Segment};

pub use solve::{MonthRecord, NoTrace, Observer, solve, solve_traced, solve_with};

/// At most this many firms in one config (MODEL.md section 3: one product per firm).
pub const MAX_FIRMS: usize = 8;
/// At most this many consumer segments (MODEL.md section 3).
pub const MAX_SEGMENTS: usize = 8;

/// `release_month` of a firm that never releases (written `never` in configs, -1 in CSV).
pub const NEVER: i32 = -1;

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
