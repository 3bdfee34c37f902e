//! The moat model, version 3 (docs/model.md, the complete specification), as the
//! f64 CPU reference.
//!
//! The sections of the specification map onto files:
//! - section 1 (capability from compute and data): [`scaling`]
//! - section 3 (demand and Bertrand-Nash prices): [`demand`]
//! - sections 2, 4 and 5 (generations, release, products, money, investors,
//!   exits, the end of the month): [`solve`]
//! - section 5 (outputs): [`outputs`], the output table
//! - section 6 (defaults) and every parameter's allowed range: [`params`], the
//!   parameter table
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

/// The version of the model's specification this code implements (docs/model.md).
pub const VERSION: u32 = 3;

/// How manifests and checkpoints name the specification the numbers follow.
pub const SPEC: &str = "moat model version 3 (docs/model.md)";

/// At most this many firms in one config (docs/model.md section 3: one product per firm).
pub const MAX_FIRMS: usize = 8;
/// At most this many consumer segments (docs/model.md section 3).
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
