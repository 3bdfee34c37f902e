//! Every output of a scenario in one table (docs/model.md section 5 and "Output
//! columns").
//!
//! Each row of [`output_table!`] below is one output: per firm or per scenario,
//! integer or real, when its CSV cell is empty, and how closely the f32 GPU kernel
//! must match the f64 reference, with the reason. From these rows come [`Out`], the
//! [`Outcome`] both backends fill, [`OUTPUTS`] (which the CSV header and rows,
//! `moatsweep params`, the GPU's output layout and read-back, `--verify` and the
//! agreement tests iterate) and the CSV column order: per-firm outputs in table
//! order, each for every firm, then the per-scenario outputs. Adding an output is
//! one row here, plus the model and the kernel writing it.

use super::MAX_FIRMS;

/// One value per firm (`<output>.<firm>` columns) or one per scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Firm,
    Scenario,
}

/// How an output's CSV cells are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    /// Shortest round-trip decimal of the backend's precision.
    Real,
    /// A whole number (both backends hold it exactly).
    Integer,
}

/// When an output's cell is empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Empty {
    Never,
    /// When the firm offers no product in the last month (the value is NaN in an [`Outcome`]).
    NotOffered,
}

/// How closely the f32 GPU kernel must match the f64 reference (`src/verify.rs`):
/// |gpu - ref| <= `verify::REL` |ref| + floor (+ the probe's allowance there), with the floor
/// below, except for the exact kinds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tolerance {
    /// floor = this value.
    Abs(f64),
    /// floor = this times the firm's money scale (the sum over months of |direct| +
    /// complement + spend / 12, from the reference's trace).
    Money(f64),
    /// floor = this times sum_t d_t M_t sum_k w_k / alpha_k.
    Surplus(f64),
    /// Equal: the result of comparisons (exits), unless the reference is at an edge.
    Exact,
    /// Iteration counts: within `verify::iteration_slack`.
    Iterations,
}

/// One row of the output table.
#[derive(Debug)]
pub struct OutputSpec {
    pub out: Out,
    /// The column name (`<name>.<firm>` for per-firm outputs).
    pub name: &'static str,
    pub scope: Scope,
    pub kind: OutKind,
    pub empty: Empty,
    pub tolerance: Tolerance,
    /// Why the tolerance is what it is.
    pub why: &'static str,
    meaning: &'static str,
}

impl OutputSpec {
    /// What the output means (its doc comment in the table).
    pub fn meaning(&self) -> &'static str {
        self.meaning.trim()
    }
}

macro_rules! output_table {
    (
        firm { $( #[doc = $fdoc:literal] $fvar:ident $fname:ident : $fkind:ident, $fempty:ident, $ftol:expr, $fwhy:literal; )* }
        scenario { $( #[doc = $sdoc:literal] $svar:ident $sname:ident : $skind:ident, $sempty:ident, $stol:expr, $swhy:literal; )* }
    ) => {
        /// An output of the table, per firm ones first.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Out {
            $( #[doc = $fdoc] $fvar, )*
            $( #[doc = $sdoc] $svar, )*
        }

        /// Outputs with one value per firm.
        pub const N_FIRM_OUTPUTS: usize = [$(Out::$fvar),*].len();
        /// Outputs with one value per scenario.
        pub const N_SCENARIO_OUTPUTS: usize = [$(Out::$svar),*].len();

        /// The output table, per-firm outputs first, each group in column order.
        pub static OUTPUTS: &[OutputSpec] = &[
            $( OutputSpec { out: Out::$fvar, name: stringify!($fname), scope: Scope::Firm, kind: OutKind::$fkind,
                empty: Empty::$fempty, tolerance: $ftol, why: $fwhy, meaning: $fdoc }, )*
            $( OutputSpec { out: Out::$svar, name: stringify!($sname), scope: Scope::Scenario, kind: OutKind::$skind,
                empty: Empty::$sempty, tolerance: $stol, why: $swhy, meaning: $sdoc }, )*
        ];
    };
}

use Tolerance::*;

output_table! {
    firm {
        /// S_i: the product's share of the market in month T-1 (0 when not offered)
        Share share: Real, Never, Abs(1e-6),
            "16 f32 ulps at 1: a share of 1e-9 may be 0 or 2e-9 in f32, both 'no demand'";
        /// p_i in $/Mtok (released weights: their serving cost)
        Price price: Real, NotOffered, Abs(1e-6),
            "prices of cheap models are far below 1 $/Mtok; 1e-6 is below any price that matters";
        /// Q_i of the product offered in month T-1, or the firm's capability q_i when it offers none
        Quality quality: Real, Never, Abs(1e-5),
            "capabilities are O(1), differences of logs of O(30) quantities (ln C/6, x = ln N)";
        /// sum_t d_t flow_i: direct profit + complement - training spend / 12, discounted, while alive
        Npv npv: Real, Never, Money(2e-5),
            "flows are differences of direct profit, complement and spend, so f32's error is relative to their sum, not to a cancelling npv";
        /// sum_t d_t complement_i: the platform revenue that AI usage lifts, discounted
        ComplementNpv complement_npv: Real, Never, Money(2e-5),
            "accumulated with npv over the same months";
        /// the month the firm exited (cash turned negative), or -1
        ExitMonth exit_month: Integer, Never, Exact,
            "an exit is a comparison of cash with 0: equal unless the reference's cash comes near 0 (a knife edge)";
    }
    scenario {
        /// s_out: the share of the market that buys no AI in month T-1
        OutsideShare outside_share: Real, Never, Abs(1e-6),
            "as share";
        /// sum of S over released products in month T-1
        OpenShare open_share: Real, Never, Abs(1e-6),
            "as share";
        /// 1e4 sum_j (S_j / sum_l S_l)^2 in month T-1 (0 when nothing is bought)
        Hhi hhi: Real, Never, Abs(1e-2),
            "1e-6 of its 0..1e4 scale";
        /// sum_t d_t CS_t: consumer surplus over the horizon, discounted ($)
        ConsumerSurplusNpv consumer_surplus_npv: Real, Never, Surplus(1e-6),
            "the f32 error of ln(denominator) (denominator >= 1) carried through every month's surplus";
        /// the most markup iterations any month took
        MaxIterations max_iterations: Integer, Never, Iterations,
            "where a slowly shrinking change first drops below tol moves by many iterations for an f32-sized error in it";
        /// months whose markup iteration stopped at max_iter
        NonconvergedMonths nonconverged_months: Integer, Never, Exact,
            "0 unless the reference itself is at an edge (it, or its probe, has a non-converged month)";
    }
}

impl Out {
    /// This output's row of [`OUTPUTS`].
    pub fn spec(self) -> &'static OutputSpec {
        &OUTPUTS[self as usize]
    }
}

/// Per-firm outputs in table (and column) order.
pub fn firm_outputs() -> impl Iterator<Item = &'static OutputSpec> {
    OUTPUTS.iter().filter(|o| o.scope == Scope::Firm)
}

/// Per-scenario outputs in table (and column) order.
pub fn scenario_outputs() -> impl Iterator<Item = &'static OutputSpec> {
    OUTPUTS.iter().filter(|o| o.scope == Scope::Scenario)
}

/// One output column of a sweep with `firms`: the table row and the firm it is of.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub spec: &'static OutputSpec,
    /// The firm's index for per-firm outputs (0 otherwise).
    pub firm: usize,
}

/// The output columns of a sweep, in CSV order, with their names.
pub fn columns(firms: &[String]) -> Vec<(String, Column)> {
    let mut cols = Vec::new();
    for spec in firm_outputs() {
        for (i, f) in firms.iter().enumerate() {
            cols.push((format!("{}.{f}", spec.name), Column { spec, firm: i }));
        }
    }
    for spec in scenario_outputs() {
        cols.push((spec.name.to_string(), Column { spec, firm: 0 }));
    }
    cols
}

/// The outputs of one scenario: the final month T-1 as solved (docs/model.md section 5).
///
/// Generic over the float type so that the f32 GPU kernel's results are written in
/// their own shortest round-trip form; integer outputs are held exactly in either.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Outcome<F = f64> {
    firm: [[F; MAX_FIRMS]; N_FIRM_OUTPUTS],
    scenario: [F; N_SCENARIO_OUTPUTS],
}

impl<F: Copy + Default> Default for Outcome<F> {
    fn default() -> Self {
        Outcome { firm: [[F::default(); MAX_FIRMS]; N_FIRM_OUTPUTS], scenario: [F::default(); N_SCENARIO_OUTPUTS] }
    }
}

impl<F: Copy> Outcome<F> {
    /// Per-firm output `out` of firm `i`.
    #[inline]
    pub fn firm(&self, out: Out, i: usize) -> F {
        self.firm_values(out)[i]
    }

    /// Per-firm output `out` of every firm slot (only the sweep's firms are meaningful).
    #[inline]
    pub fn firm_values(&self, out: Out) -> &[F; MAX_FIRMS] {
        debug_assert_eq!(out.spec().scope, Scope::Firm, "{out:?} is per scenario");
        &self.firm[out as usize]
    }

    #[inline]
    pub fn firm_values_mut(&mut self, out: Out) -> &mut [F; MAX_FIRMS] {
        debug_assert_eq!(out.spec().scope, Scope::Firm, "{out:?} is per scenario");
        &mut self.firm[out as usize]
    }

    /// Per-scenario output `out`.
    #[inline]
    pub fn scenario(&self, out: Out) -> F {
        debug_assert_eq!(out.spec().scope, Scope::Scenario, "{out:?} is per firm");
        self.scenario[out as usize - N_FIRM_OUTPUTS]
    }

    #[inline]
    pub fn set_scenario(&mut self, out: Out, v: F) {
        debug_assert_eq!(out.spec().scope, Scope::Scenario, "{out:?} is per firm");
        self.scenario[out as usize - N_FIRM_OUTPUTS] = v;
    }

    /// The value of a column.
    #[inline]
    pub fn get(&self, col: Column) -> F {
        match col.spec.scope {
            Scope::Firm => self.firm[col.spec.out as usize][col.firm],
            Scope::Scenario => self.scenario[col.spec.out as usize - N_FIRM_OUTPUTS],
        }
    }

    #[inline]
    pub fn set(&mut self, col: Column, v: F) {
        match col.spec.scope {
            Scope::Firm => self.firm[col.spec.out as usize][col.firm] = v,
            Scope::Scenario => self.scenario[col.spec.out as usize - N_FIRM_OUTPUTS] = v,
        }
    }
}

impl<F: Copy + Into<f64>> Outcome<F> {
    /// Whether firm `i` offers a product in month T-1 (its price is then a number).
    pub fn is_offered(&self, i: usize) -> bool {
        !self.firm(Out::Price, i).into().is_nan()
    }

    /// The value of a column as f64 (exact for f32).
    pub fn get_f64(&self, col: Column) -> f64 {
        self.get(col).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_enum_order_and_grouped_by_scope() {
        for (k, spec) in OUTPUTS.iter().enumerate() {
            assert_eq!(spec.out as usize, k, "{}", spec.name);
            assert_eq!(spec.scope == Scope::Firm, k < N_FIRM_OUTPUTS, "{}", spec.name);
            assert!(!spec.meaning().is_empty() && !spec.why.is_empty(), "{}", spec.name);
        }
        assert_eq!(OUTPUTS.len(), N_FIRM_OUTPUTS + N_SCENARIO_OUTPUTS);
    }

    #[test]
    fn columns_are_per_firm_outputs_by_firm_then_scenario_outputs() {
        let firms = ["a".to_string(), "b".to_string()];
        let names: Vec<String> = columns(&firms).into_iter().map(|c| c.0).collect();
        assert_eq!(&names[..4], ["share.a", "share.b", "price.a", "price.b"]);
        assert_eq!(names.len(), 2 * N_FIRM_OUTPUTS + N_SCENARIO_OUTPUTS);
        assert_eq!(names.last().map(String::as_str), Some("nonconverged_months"));
        // Every column reads and writes its own cell.
        let cols = columns(&firms);
        let mut o = Outcome::<f64>::default();
        for (k, (_, c)) in cols.iter().enumerate() {
            o.set(*c, k as f64);
        }
        for (k, (name, c)) in cols.iter().enumerate() {
            assert_eq!(o.get(*c), k as f64, "{name}");
        }
    }
}
