//! The f32 GPU kernel against the f64 CPU reference: one comparison, used by
//! `run --verify K` (K rows re-solved after a GPU run, the report in the manifest)
//! and by the agreement tests (`tests/gpu_agreement.rs`, 20,000 random scenarios).
//!
//! # Tolerances
//!
//! Every output column is compared as its row of the output table says
//! (`src/model/outputs.rs`, [`Tolerance`]): a real column may differ by
//!
//!   allowed = REL x |ref| + floor + SENSITIVITY x |probe - ref|
//!
//! - [`REL`] = 1e-4: one month's shares and prices are good to a few 1e-6 in f32
//!   (logs of O(30) quantities, llvmpipe's exp good to 2e-6 relative), and a few
//!   dozen months of warm-started markups, community stock and spillover grow that.
//! - floor: the table's, for values small next to their natural scale.
//! - the probe: the reference solved again with every real input moved by a
//!   relative [`PROBE`] = 2^-20 (about 8 f32 ulps, the size of the kernel's own
//!   per-operation errors), [`SENSITIVITY`] = 4 times its change. Some scenarios
//!   amplify perturbations by 1e3 or more (a cheap released model with
//!   price-sensitive demand feeds its share back into its community stock, its
//!   cost and its share month after month); there f64 itself moves by that much.
//!   A value that passes only thanks to this allowance is *admitted through the
//!   probe*: counted per column, and capped.
//!
//! Integer columns: exit months and non-converged months must be equal;
//! max_iterations within [`iteration_slack`]; a price is empty exactly when the
//! reference's is.
//!
//! # Exemptions: only for the reference's own reasons
//!
//! A row is exempted from the column comparison only when the f64 reference, or
//! its probe, is at an edge; the GPU's own state never excuses it:
//! - [`Exemption::ExitOrInvestorEdge`]: the GPU's decisions differ from the
//!   reference's (an exit month, or the money raised beyond its tolerance, which
//!   a refinancing in another month gives), and for every firm where they differ
//!   the reference was at an edge: its cash came within [`CASH_EDGE`] of its money
//!   scale of zero in some month, or investors judged its lead within
//!   [`HURDLE_EDGE`] of the hurdle, or the probe decided otherwise.
//! - [`Exemption::ReferenceNotConverged`], [`Exemption::ProbeNotConverged`]: a month
//!   of the reference or of the probe stopped at max_iter.
//! - [`Exemption::NearIterationCap`]: the reference's max_iterations is within the
//!   slack of max_iter, so the GPU's month may or may not converge in time.
//! - [`Exemption::OscillatingFixedPoint`]: in some month the reference's markups
//!   oscillate so nearly undamped that f32 cannot meet tol: with contraction
//!   rho < 0 (`MonthRecord::contraction`), an error e in each update sustains a
//!   2-cycle whose successive iterates differ by 2 e / (1 + rho) relative, and the
//!   month is at the edge when that reaches tol already for e = 2^-23, one f32 ulp,
//!   the least error any f32 evaluation makes: 1 + rho <= 2^-22 / tol (rho <= -0.76
//!   at tol = 1e-6). Measured over `tests/gpu_agreement.rs`'s 20,480 scenarios: every
//!   month the kernel failed to converge where the reference converged had rho
//!   between -0.94 and -0.76.
//!
//! Convergence exemptions still require equal exit months. Each cause is counted,
//! printed and capped ([`CAPS`]).
//!
//! A non-finite GPU value (infinity anywhere, NaN in a column that is never empty,
//! or an empty price where the reference offers one and the exits agree) is beyond
//! tolerance before any exemption is considered: no edge of the reference excuses it.

use crate::backend::ScenarioSource;
use crate::design::mix64;
use crate::model::outputs::{self, Column, Empty, OutKind, OutputSpec, Tolerance};
use crate::model::params::{Group, Kind, PARAMS};
use crate::model::{self, MAX_FIRMS, MonthRecord, Out, Outcome, Scenario};

/// Relative tolerance of every real column.
pub const REL: f64 = 1e-4;
/// Times the probe's change a value may differ by, on top of REL and the floor.
pub const SENSITIVITY: f64 = 4.0;
/// A cash edge: the reference's |cash| within this fraction of the firm's money scale.
pub const CASH_EDGE: f64 = 1e-4;
/// An investor edge: the reference's lead within this of the hurdle (capability
/// units: twice the quality column's allowance at a quality of 5).
pub const HURDLE_EDGE: f64 = 1e-3;
/// Relative size of the probe's perturbation: 2^-20.
pub const PROBE: f64 = 1.0 / (1u64 << 20) as f64;

pub use crate::sweep::provenance::{ColumnDeviation, Exemption, VerifyReport as Report};

/// The most rows each kind of allowance may cover, as a fraction of the rows
/// compared: an exemption or the probe's allowance that covered more would be
/// hiding a systematic error rather than excusing knife edges. Measured over the
/// 20,480 scenarios of `tests/gpu_agreement.rs` (wide ranges, a fifth with
/// max_iter below 200): see the numbers printed there.
pub struct Caps {
    pub exit_edges: f64,
    /// All three convergence causes together.
    pub convergence: f64,
    /// Rows with at least one value admitted only through the probe.
    pub admitted_by_probe: f64,
}

pub const CAPS: Caps = Caps { exit_edges: 0.01, convergence: 0.02, admitted_by_probe: 0.05 };

/// The f64 reference of a scenario, its probe, and the scales its tolerance floors use.
pub struct Reference {
    pub out: Outcome<f64>,
    /// The reference on inputs perturbed by [`PROBE`] (see [`perturbed`]).
    pub probe: Outcome<f64>,
    /// Per firm: the sum over months of |direct| + complement + train_spend / 12.
    pub money_scale: [f64; MAX_FIRMS],
    /// Per firm: the smallest |cash_t| / (funding + raised + money scale up to
    /// month t), cash_t before any investors' decision, over the months it was
    /// alive at the start of.
    pub cash_edge: [f64; MAX_FIRMS],
    /// Per firm: the smallest |lead - hurdle| over investors' decisions (inf if none).
    pub hurdle_edge: [f64; MAX_FIRMS],
    /// sum_t d_t M_t sum_k w_k / alpha_k: the scale of consumer surplus.
    pub surplus_scale: f64,
    /// The contraction of the reference's most nearly undamped oscillating month
    /// (the smallest `MonthRecord::contraction`, 0 when no month oscillates).
    pub oscillation: f64,
}

/// Whether a month whose fixed point contracts at `rho` is beyond what f32 resolves
/// at tolerance `tol` (see [`Exemption::OscillatingFixedPoint`]).
pub fn oscillation_edge(rho: f64, tol: f64) -> bool {
    rho < 0.0 && 1.0 + rho <= 2f64.powi(-22) / tol
}

/// `sc` with every real input multiplied by 1 +- [`PROBE`] (signs from a PRNG seeded
/// by `seed`), kept inside its allowed range; segment weights are renormalised.
pub fn perturbed(sc: &Scenario, seed: u64) -> Scenario {
    let mut s = *sc;
    let mut state = seed;
    let mut sign = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        if mix64(state) >> 63 == 0 { 1.0 + PROBE } else { 1.0 - PROBE }
    };
    for p in PARAMS.iter().filter(|p| p.kind == Kind::Real) {
        let entities = match p.group {
            Group::Model | Group::Scaling => 1,
            Group::Firm => sc.n_firms,
            Group::Segment => sc.n_segments,
        };
        for i in 0..entities {
            let v = (p.get)(&s, i) * sign();
            let b = p.bound;
            // A bound's closed end is kept (discount 1 stays 1, not 1 + 2^-20).
            let v = if !b.hi_open && v > b.hi {
                b.hi
            } else if !b.lo_open && v < b.lo {
                b.lo
            } else {
                v
            };
            (p.set)(&mut s, i, v);
        }
    }
    let total: f64 = s.segments().iter().map(|g| g.weight).sum();
    for g in &mut s.segments[..sc.n_segments] {
        g.weight /= total;
    }
    s
}

/// Solves `sc` on the f64 reference, tracing the scales of [`Reference`], and its probe.
pub fn reference(sc: &Scenario, seed: u64) -> Reference {
    let m = &sc.model;
    let mut money_scale = [0.0; MAX_FIRMS];
    let mut cash_edge = [f64::INFINITY; MAX_FIRMS];
    let mut hurdle_edge = [f64::INFINITY; MAX_FIRMS];
    let mut surplus_scale = 0.0;
    let mut oscillation: f64 = 0.0;
    let inv_alpha: f64 = sc.segments().iter().map(|s| s.weight / s.price_sens).sum();
    let out = model::solve_traced(sc, &mut |r: &MonthRecord| {
        let t = r.month as i32;
        let market = m.market0 * (1.0f64 + m.market_growth).powi(t);
        surplus_scale += m.discount.powi(t) * market * inv_alpha;
        if r.iterations >= 2 {
            oscillation = oscillation.min(r.contraction);
        }
        for (i, f) in sc.firms().iter().enumerate().filter(|(i, _)| r.alive & (1 << i) != 0) {
            let closed = r.released & (1 << i) == 0;
            let direct = if closed { market * r.share[i] * (r.price[i] - r.cost[i]) } else { 0.0 };
            let complement = f.platform_revenue / 12.0 * m.ad_uplift * (1.0 - r.outside_share);
            money_scale[i] += direct.abs() + complement + r.spend[i] / 12.0;
            cash_edge[i] = cash_edge[i].min(
                (r.cash_before_investors[i] - model::solve::cash_threshold(r.spend[i])).abs() / (f.funding + r.raised[i] + money_scale[i]),
            );
            if !r.investor_margin[i].is_nan() {
                hurdle_edge[i] = hurdle_edge[i].min(r.investor_margin[i].abs());
            }
        }
    });
    let probe = model::solve(&perturbed(sc, seed));
    Reference { out, probe, money_scale, cash_edge, hurdle_edge, surplus_scale, oscillation }
}

/// Iterations apart that max_iterations may be: 3, or a quarter of the count, or
/// twice the probe's own shift. A month that needs n iterations brings its change
/// from O(1) to about tol = 1e-6, some 14 e-folds at n/14 iterations each; f32's
/// evaluation errors, of the size of tol themselves, move the iteration at which
/// the change first falls below tol by up to about three e-folds (measured: 24 of
/// 105 iterations in the worst of 20,480 random scenarios).
pub fn iteration_slack(r: &Reference) -> u32 {
    let n = r.out.scenario(Out::MaxIterations) as u32;
    let p = r.probe.scenario(Out::MaxIterations) as u32;
    3 + (n / 4).max(2 * n.abs_diff(p))
}

/// The absolute floor of a real column's tolerance, for firm `i` (0 for the exact kinds).
fn floor(spec: &OutputSpec, r: &Reference, i: usize) -> f64 {
    match spec.tolerance {
        Tolerance::Abs(f) => f,
        Tolerance::Money(f) => f * r.money_scale[i],
        Tolerance::Surplus(f) => f * r.surplus_scale,
        Tolerance::Exact | Tolerance::Iterations => 0.0,
    }
}

/// One value compared: what the agreement test's statistics need.
pub struct Checked<'a> {
    pub column: &'a str,
    pub spec: &'static outputs::OutputSpec,
    pub reference: f64,
    pub probe: f64,
    pub gpu: f64,
    /// REL x |ref| + floor: what is allowed without the probe.
    pub plain: f64,
    /// `plain` plus the probe's allowance.
    pub allowed: f64,
    pub floor: f64,
}

impl Checked<'_> {
    pub fn passes(&self) -> bool {
        (self.gpu - self.reference).abs() <= self.allowed
    }
    /// Passes only thanks to the probe's allowance.
    pub fn admitted_by_probe(&self) -> bool {
        self.passes() && (self.gpu - self.reference).abs() > self.plain
    }
}

/// The outcome of comparing one row.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Compared column by column (failures, if any, were reported).
    Compared,
    Exempt(Exemption),
    /// The f64 reference itself produced NaN or infinity (a reference bug).
    ReferenceNonFinite,
}

fn finite(o: &Outcome<f64>, cols: &[(String, Column)]) -> bool {
    cols.iter().all(|(_, c)| {
        let v = o.get(*c);
        v.is_finite() || (c.spec.empty != Empty::Never && v.is_nan())
    })
}

/// Whether the GPU's value in column `c` is non-finite where no empty cell excuses
/// it: infinite anywhere; NaN in a column that is never empty; NaN (not offered) in
/// a price whose reference is finite, unless the GPU's firm exited in another month
/// than the reference's (whether a firm offers a product follows from its exit month
/// and its release month, an input; a different exit is judged with the decisions).
fn non_finite_gpu_value(o: &Outcome<f64>, g: &Outcome<f32>, c: Column) -> bool {
    let gv = g.get(c);
    if gv.is_infinite() {
        return true;
    }
    if !gv.is_nan() {
        return false;
    }
    match c.spec.empty {
        Empty::Never => true,
        Empty::NotOffered => !o.get(c).is_nan() && g.firm(Out::ExitMonth, c.firm) as f64 == o.firm(Out::ExitMonth, c.firm),
    }
}

/// Compares the GPU's outcome `g` of scenario `sc` with its reference `r`, column by
/// column (`cols`: the sweep's output columns). Every compared value goes to
/// `check`; the values beyond tolerance are those whose `passes()` is false.
pub fn compare(sc: &Scenario, r: &Reference, g: &Outcome<f32>, cols: &[(String, Column)], check: &mut dyn FnMut(&Checked)) -> Verdict {
    let (o, p) = (&r.out, &r.probe);
    let nf = sc.n_firms;
    if !finite(o, cols) || !finite(p, cols) || !r.money_scale[..nf].iter().all(|x| x.is_finite()) {
        return Verdict::ReferenceNonFinite;
    }
    // A non-finite GPU value is the kernel's own failure: beyond tolerance (allowed
    // 0, which NaN and infinity never pass), whatever edge the reference is at.
    let mut gpu_non_finite = false;
    for (name, c) in cols.iter().filter(|(_, c)| non_finite_gpu_value(o, g, *c)) {
        gpu_non_finite = true;
        let (rv, pv, gv) = (o.get(*c), p.get(*c), g.get(*c) as f64);
        check(&Checked { column: name, spec: c.spec, reference: rv, probe: pv, gpu: gv, plain: 0.0, allowed: 0.0, floor: 0.0 });
    }
    if gpu_non_finite {
        return Verdict::Compared;
    }
    // Decisions first (exits, and refinancings through the money raised): they
    // decide everything downstream.
    let raised = |x: &Outcome<f64>, i: usize| x.firm(Out::Raised, i);
    let raised_plain = |i: usize| REL * raised(o, i).abs() + floor(Out::Raised.spec(), r, i);
    let raised_allowed = |i: usize| raised_plain(i) + SENSITIVITY * (raised(p, i) - raised(o, i)).abs();
    let gpu_differs = |i: usize| {
        o.firm(Out::ExitMonth, i) != g.firm(Out::ExitMonth, i) as f64
            || !((g.firm(Out::Raised, i) as f64 - raised(o, i)).abs() <= raised_allowed(i))
    };
    let probe_differs =
        |i: usize| o.firm(Out::ExitMonth, i) != p.firm(Out::ExitMonth, i) || (raised(p, i) - raised(o, i)).abs() > raised_plain(i);
    let differ: Vec<usize> = (0..nf).filter(|&i| gpu_differs(i)).collect();
    if !differ.is_empty() {
        let at_edge = |i: usize| r.cash_edge[i] <= CASH_EDGE || r.hurdle_edge[i] <= HURDLE_EDGE || probe_differs(i);
        if differ.iter().all(|&i| at_edge(i)) {
            return Verdict::Exempt(Exemption::ExitOrInvestorEdge);
        }
        for (name, c) in cols.iter().filter(|(_, c)| differ.contains(&c.firm) && matches!(c.spec.out, Out::ExitMonth | Out::Raised)) {
            let (rv, gv) = (o.get(*c), g.get(*c) as f64);
            let (plain, allowed) = if c.spec.out == Out::Raised { (raised_plain(c.firm), raised_allowed(c.firm)) } else { (0.0, 0.0) };
            check(&Checked { column: name, spec: c.spec, reference: rv, probe: p.get(*c), gpu: gv, plain, allowed, floor: 0.0 });
        }
        return Verdict::Compared;
    }
    let slack = iteration_slack(r);
    let max_iter = sc.model.max_iter;
    if o.scenario(Out::NonconvergedMonths) > 0.0 {
        return Verdict::Exempt(Exemption::ReferenceNotConverged);
    }
    if p.scenario(Out::NonconvergedMonths) > 0.0 {
        return Verdict::Exempt(Exemption::ProbeNotConverged);
    }
    if o.scenario(Out::MaxIterations) as u32 + slack >= max_iter {
        return Verdict::Exempt(Exemption::NearIterationCap);
    }
    if oscillation_edge(r.oscillation, sc.model.tol) {
        return Verdict::Exempt(Exemption::OscillatingFixedPoint);
    }
    for (name, c) in cols {
        let (rv, pv, gv) = (o.get(*c), p.get(*c), g.get(*c) as f64);
        let spec = c.spec;
        if spec.empty != Empty::Never && (rv.is_nan() || gv.is_nan()) {
            // Empty in both: equal. Empty in one only: a failure (allowed 0, and NaN never passes).
            if !(rv.is_nan() && gv.is_nan()) {
                check(&Checked { column: name, spec, reference: rv, probe: pv, gpu: gv, plain: 0.0, allowed: 0.0, floor: 0.0 });
            }
            continue;
        }
        let (plain, allowed, floor) = match spec.tolerance {
            Tolerance::Exact => (0.0, 0.0, 0.0),
            Tolerance::Iterations => ((3 + (rv as u32) / 4) as f64, slack as f64, 0.0),
            _ => {
                let floor = floor(spec, r, c.firm);
                let plain = REL * rv.abs() + floor;
                (plain, plain + SENSITIVITY * (pv - rv).abs(), floor)
            }
        };
        debug_assert!(spec.kind == OutKind::Real || matches!(spec.tolerance, Tolerance::Exact | Tolerance::Iterations));
        check(&Checked { column: name, spec, reference: rv, probe: pv, gpu: gv, plain, allowed, floor });
    }
    Verdict::Compared
}

/// `k` rows spread evenly over `rows` (all of them when there are fewer), sorted.
pub fn sample(rows: std::ops::Range<u64>, k: u64) -> Vec<u64> {
    let n = rows.end - rows.start;
    let k = k.min(n);
    (0..k).map(|i| rows.start + ((2 * i + 1) as u128 * n as u128 / (2 * k) as u128) as u64).collect()
}

impl Report {
    /// An empty report with the tolerance and the caps it applies.
    pub fn new() -> Report {
        Report {
            tolerance:
                "output table (src/model/outputs.rs): relative 1e-4 plus per-column floors plus 4 x the probe's change (src/verify.rs)"
                    .into(),
            caps: [("exit_edges", CAPS.exit_edges), ("convergence", CAPS.convergence), ("admitted_by_probe", CAPS.admitted_by_probe)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ..Default::default()
        }
    }

    /// Adds one row's comparison.
    pub fn add(&mut self, row: u64, sc: &Scenario, r: &Reference, g: &Outcome<f32>, cols: &[(String, Column)]) -> Verdict {
        self.rows_checked += 1;
        let mut beyond = false;
        let mut by_probe = false;
        let columns = &mut self.columns;
        let examples = &mut self.examples;
        let verdict = compare(sc, r, g, cols, &mut |c| {
            let d = (c.gpu - c.reference).abs();
            let e = columns.entry(c.column.to_string()).or_default();
            if d.is_finite() {
                e.max_abs = e.max_abs.max(d);
                if c.reference.abs() > c.floor && c.reference != 0.0 {
                    e.max_rel = e.max_rel.max(d / c.reference.abs());
                }
            }
            if !c.passes() {
                e.beyond += 1;
                beyond = true;
                if examples.len() < 10 {
                    examples.push(format!(
                        "row {row} {}: reference {}, gpu {} (allowed difference {:e})",
                        c.column, c.reference, c.gpu, c.allowed
                    ));
                }
            } else if c.admitted_by_probe() {
                e.admitted_by_probe += 1;
                by_probe = true;
            }
        });
        match verdict {
            Verdict::Compared => self.rows_compared += 1,
            Verdict::Exempt(why) => *self.exempted.entry(why).or_default() += 1,
            Verdict::ReferenceNonFinite => self.reference_non_finite += 1,
        }
        self.beyond_tolerance += beyond as u64;
        self.admitted_by_probe += by_probe as u64;
        self.within_caps = self.caps_hold();
        verdict
    }

    /// Exit edges, convergence exemptions and probe admissions as fractions of the rows checked.
    pub fn fractions(&self) -> (f64, f64, f64) {
        let n = self.rows_checked.max(1) as f64;
        let exits = *self.exempted.get(&Exemption::ExitOrInvestorEdge).unwrap_or(&0) as f64;
        let conv: u64 = self.exempted.iter().filter(|(k, _)| **k != Exemption::ExitOrInvestorEdge).map(|(_, v)| v).sum();
        (exits / n, conv as f64 / n, self.admitted_by_probe as f64 / n)
    }

    fn caps_hold(&self) -> bool {
        let (e, c, p) = self.fractions();
        e <= CAPS.exit_edges && c <= CAPS.convergence && p <= CAPS.admitted_by_probe
    }

    /// One line: rows checked, compared, exempted per cause, admitted through the probe.
    pub fn summary(&self) -> String {
        let exempted: Vec<String> = self.exempted.iter().map(|(k, v)| format!("{v} {}", serde_plain(k))).collect();
        format!(
            "{} rows checked, {} compared; exempted: {}; admitted through the probe: {}; reference not finite: {}; beyond tolerance: {}{}",
            self.rows_checked,
            self.rows_compared,
            if exempted.is_empty() { "none".into() } else { exempted.join(", ") },
            self.admitted_by_probe,
            self.reference_non_finite,
            self.beyond_tolerance,
            if self.within_caps { "" } else { " (OVER THE CAPS)" }
        )
    }
}

fn serde_plain(e: &Exemption) -> String {
    serde_json::to_value(e).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

/// Compares the kept GPU rows of `src` with the f64 reference.
pub fn verify(src: &dyn ScenarioSource, firm_names: &[String], kept: &[(u64, Outcome<f32>)]) -> Report {
    let cols = outputs::columns(firm_names);
    let mut rep = Report::new();
    let checked: Vec<(u64, Scenario, Reference)> = {
        use rayon::prelude::*;
        kept.par_iter()
            .map(|&(row, _)| {
                let sc = src.scenario(row);
                (row, sc, reference(&sc, row))
            })
            .collect()
    };
    for ((row, sc, r), (_, g)) in checked.iter().zip(kept) {
        rep.add(*row, sc, r, g, &cols);
    }
    rep
}

/// Rows to verify by default when a GPU ran.
pub const DEFAULT_ROWS: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params::{DEFAULT_FIRM_NAMES, baseline};

    fn cols() -> Vec<(String, Column)> {
        outputs::columns(&DEFAULT_FIRM_NAMES.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn col(cols: &[(String, Column)], name: &str) -> Column {
        cols.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no column {name}")).1
    }

    /// The reference rounded to f32: what a kernel without errors of its own returns.
    fn exact_gpu(r: &Reference) -> Outcome<f32> {
        r.out.map(|v| v as f32)
    }

    /// The report of one row whose GPU outcome is `g`.
    fn report(sc: &Scenario, r: &Reference, g: &Outcome<f32>) -> (Report, Verdict) {
        let mut rep = Report::new();
        let v = rep.add(0, sc, r, g, &cols());
        (rep, v)
    }

    /// The row the edge test needs: a reference that does not converge (max_iter 2,
    /// far below what the baseline's months take), so the row is exempt.
    fn not_converged() -> (Scenario, Reference) {
        let mut sc = baseline();
        sc.model.max_iter = 2;
        let r = reference(&sc, 7);
        assert!(r.out.scenario(Out::NonconvergedMonths) > 0.0, "the premise: the reference stops at max_iter");
        (sc, r)
    }

    #[test]
    fn an_exact_f32_copy_passes_and_an_edge_exempts_it() {
        let sc = baseline();
        let r = reference(&sc, 7);
        let (rep, v) = report(&sc, &r, &exact_gpu(&r));
        assert_eq!(v, Verdict::Compared);
        assert_eq!((rep.beyond_tolerance, rep.rows_compared), (0, 1), "{}", rep.summary());

        let (sc, r) = not_converged();
        let (rep, v) = report(&sc, &r, &exact_gpu(&r));
        assert_eq!(v, Verdict::Exempt(Exemption::ReferenceNotConverged));
        assert_eq!(rep.beyond_tolerance, 0);
    }

    #[test]
    fn a_nan_gpu_value_is_beyond_tolerance_even_where_the_reference_is_at_an_edge() {
        let (sc, r) = not_converged();
        let cols = cols();
        for name in ["share.open", "npv.challenger", "exit_month.open", "consumer_surplus_npv"] {
            let mut g = exact_gpu(&r);
            g.set(col(&cols, name), f32::NAN);
            let (rep, v) = report(&sc, &r, &g);
            assert_eq!(v, Verdict::Compared, "{name}: a NaN is not exempt");
            assert_eq!(rep.beyond_tolerance, 1, "{name}: {}", rep.summary());
            assert!(rep.exempted.is_empty(), "{name}: {:?}", rep.exempted);
            assert_eq!(rep.columns[name].beyond, 1, "{name}");
        }
    }

    #[test]
    fn an_infinite_gpu_value_is_beyond_tolerance_in_any_row() {
        let cols = cols();
        let sc = baseline();
        let r = reference(&sc, 7);
        let (edge_sc, edge_r) = not_converged();
        for (sc, r) in [(&sc, &r), (&edge_sc, &edge_r)] {
            for (name, x) in [("quality.frontier_a", f32::INFINITY), ("hhi", f32::NEG_INFINITY), ("price.challenger", f32::INFINITY)] {
                let mut g = exact_gpu(r);
                g.set(col(&cols, name), x);
                let (rep, v) = report(sc, r, &g);
                assert_eq!(v, Verdict::Compared, "{name} = {x}");
                assert_eq!((rep.beyond_tolerance, rep.columns[name].beyond), (1, 1), "{name} = {x}: {}", rep.summary());
            }
        }
    }

    /// An empty price is NaN: beyond tolerance where the reference's firm offers a
    /// product and the exits agree, equal where both are empty.
    #[test]
    fn an_empty_gpu_price_counts_only_where_the_reference_has_one() {
        let cols = cols();
        let (sc, r) = not_converged();
        let price = col(&cols, "price.challenger");
        assert!(r.out.get(price).is_finite(), "the premise: the challenger offers a product");
        let mut g = exact_gpu(&r);
        g.set(price, f32::NAN);
        let (rep, _) = report(&sc, &r, &g);
        assert_eq!(rep.columns["price.challenger"].beyond, 1, "{}", rep.summary());

        // Both empty: equal, nothing beyond.
        let mut r2 = reference(&baseline(), 7);
        r2.out.set(price, f64::NAN);
        r2.probe.set(price, f64::NAN);
        let mut g = exact_gpu(&r2);
        g.set(price, f32::NAN);
        let (rep, v) = report(&baseline(), &r2, &g);
        assert_eq!((v, rep.beyond_tolerance), (Verdict::Compared, 0), "{}", rep.summary());
    }
}
