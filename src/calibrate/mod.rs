//! Calibration to an observed market (docs/model.md section 9): every firm's brand
//! and serving-cost factor (and, given a margin, one common scale of the segments'
//! price sensitivities) such that month 0 of the model is the market observed.
//!
//! - [`observed`]: the observations file (`firm,share,price` or
//!   `firm,revenue_share,price`), checked line by line;
//! - this file: the inversion, in f64 on the CPU reference's own functions
//!   (`model::scaling::train` for capabilities and plain serving costs,
//!   `model::demand` for shares and the first-order terms, `model::solve_traced`
//!   for the check);
//! - [`write`]: the calibrated config, written by editing the input's TOML.
//!
//! The steps are those of section 9: (0) with a margin L, bisection on ln lambda
//! for the Lerner index; (1) brands by the BLP contraction at the observed prices;
//! (2) costs from the first-order condition (released products sell at cost);
//! (3) the check: month 0 solved to tol 1e-13 from the default start reproduces
//! every share and price to 1e-9 relative, or the calibration is refused.

pub mod observed;
pub mod write;

use crate::model::demand::{self, Shares};
use crate::model::params::Segment;
use crate::model::scaling::{self, TrainInputs};
use crate::model::{self, MAX_FIRMS, MAX_SEGMENTS, MonthRecord, Scenario};

pub use observed::Observed;

/// Section 9, step 1: the contraction stops when no brand moves by this much.
pub const CONTRACTION_TOL: f64 = 1e-13;
/// The contraction's stopping rule for one brand: a step below [`CONTRACTION_TOL`],
/// as section 9 says, or below 8 ulps of the brand where f64 cannot resolve 1e-13
/// (|b| above about 56, reached only at extreme price-sensitivity scales, where the
/// brands absorb price terms of thousands): there the spec's absolute 1e-13 is
/// below the brand's own rounding and could never be met (docs/model.md section 9).
#[inline]
fn brand_tol(brand: f64) -> f64 {
    CONTRACTION_TOL.max(8.0 * f64::EPSILON * brand.abs())
}

/// Section 9, step 1: at most this many contraction steps.
pub const CONTRACTION_MAX_ITER: u32 = 100_000;
/// Section 9, step 0: the bracket of ln lambda, [ln 1e-3, ln 1e3], and its halvings.
pub const SCALE_BRACKET: (f64, f64) = (1e-3, 1e3);
pub const SCALE_HALVINGS: u32 = 100;
/// Section 9, step 3: month 0 is solved to this tolerance...
pub const CHECK_TOL: f64 = 1e-13;
/// ... within this many iterations ...
pub const CHECK_MAX_ITER: u32 = 100_000;
/// ... and must reproduce every observed share and price to this relative error.
pub const CHECK_REL: f64 = 1e-9;

/// What a user gives besides the observations (section 9).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Targets {
    /// V: AI usage of the inside goods in Mtok per month; sets market0 = V / sum_i S_i.
    pub usage: Option<f64>,
    /// L: the closed firms' usage-weighted average Lerner index; sets the price-sensitivity scale.
    pub margin: Option<f64>,
}

/// One firm's calibration and its month-0 fit.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FirmFit {
    /// Observed share of the whole market and price.
    pub share: f64,
    pub price: f64,
    /// Month 0 of the calibrated scenario, solved to [`CHECK_TOL`].
    pub model_share: f64,
    pub model_price: f64,
    /// Released at month 0 (sells at cost).
    pub open: bool,
    /// q0_i: the first generation's capability.
    pub capability: f64,
    /// c_law_i = 2 N_i 1e6 infer_usd_per_flop: the plain serving cost.
    pub plain_cost: f64,
    pub brand: f64,
    pub cost_factor: f64,
    /// c_i = p_i - m_i: the implied marginal cost.
    pub cost: f64,
    pub markup: f64,
    /// Own-price elasticity at the observed point: -(Lambda_i - Gamma_i) p_i / S_i.
    pub elasticity: f64,
}

/// A calibrated scenario.
#[derive(Clone, Debug)]
pub struct Calibration {
    /// The input scenario with brands and cost factors set (market0, price_sens too when asked).
    pub scenario: Scenario,
    pub firms: Vec<FirmFit>,
    /// lambda, when a margin was given: every segment's price_sens was multiplied by it.
    pub price_scale: Option<f64>,
    /// The closed firms' usage-weighted Lerner index at the calibrated costs (None without closed firms).
    pub lerner: Option<f64>,
    /// market0, when usage was given.
    pub market0: Option<f64>,
    /// Contraction steps of the final brand inversion.
    pub contraction_steps: u32,
    /// Iterations month 0 took at [`CHECK_TOL`].
    pub check_iterations: u32,
    /// Largest relative error of the month-0 shares and prices.
    pub share_error: f64,
    pub price_error: f64,
}

/// Why a calibration failed: `firm` is the index of the firm it concerns, if one.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub firm: Option<usize>,
    pub message: String,
}

impl Failure {
    fn firm(i: usize, message: String) -> Failure {
        Failure { firm: Some(i), message }
    }
    fn market(message: String) -> Failure {
        Failure { firm: None, message }
    }
}

/// Month 0's products before brands and prices: capability, plain cost and open flag.
struct Market {
    n: usize,
    capability: [f64; MAX_FIRMS],
    plain_cost: [f64; MAX_FIRMS],
    open: [bool; MAX_FIRMS],
    share: [f64; MAX_FIRMS],
    price: [f64; MAX_FIRMS],
}

impl Market {
    fn new(sc: &Scenario, share: &[f64], price: &[f64]) -> Market {
        let mut m = Market {
            n: sc.n_firms,
            capability: [0.0; MAX_FIRMS],
            plain_cost: [0.0; MAX_FIRMS],
            open: [false; MAX_FIRMS],
            share: [0.0; MAX_FIRMS],
            price: [0.0; MAX_FIRMS],
        };
        for (i, firm) in sc.firms().iter().enumerate() {
            let trained = scaling::train(&TrainInputs::first_generation(&sc.model, &sc.scaling, firm));
            m.capability[i] = trained.q0;
            m.plain_cost[i] = trained.c0;
            m.open[i] = firm.release_month == 0;
            m.share[i] = share[i];
            m.price[i] = price[i];
        }
        m
    }

    /// a_k + beta_k Q_j + theta_k o_j + b_j: the price-free utility (section 3).
    fn base(&self, segs: &[Segment], brand: &[f64; MAX_FIRMS]) -> [[f64; MAX_SEGMENTS]; MAX_FIRMS] {
        let mut base = [[0.0; MAX_SEGMENTS]; MAX_FIRMS];
        for j in 0..self.n {
            let open = if self.open[j] { 1.0 } else { 0.0 };
            for (k, seg) in segs.iter().enumerate() {
                base[j][k] = seg.intercept + seg.quality_taste * self.capability[j] + brand[j] + seg.open_taste * open;
            }
        }
        base
    }
}

/// Step 1 and 2 at one set of segments: brands, costs and what they imply.
struct Inverted {
    brand: [f64; MAX_FIRMS],
    markup: [f64; MAX_FIRMS],
    elasticity: [f64; MAX_FIRMS],
    steps: u32,
}

impl Inverted {
    /// The closed firms' usage-weighted Lerner index, sum S m/p / sum S; None without closed firms.
    fn lerner(&self, mk: &Market) -> Option<f64> {
        let (mut num, mut den) = (0.0, 0.0);
        for j in (0..mk.n).filter(|&j| !mk.open[j]) {
            num += mk.share[j] * self.markup[j] / mk.price[j];
            den += mk.share[j];
        }
        (den > 0.0).then(|| num / den)
    }
}

/// Steps 1 and 2: the BLP contraction for brands at the observed prices, from b = 0,
/// then each closed firm's markup from its first-order condition.
fn invert(mk: &Market, segs: &[Segment]) -> Result<Inverted, Failure> {
    invert_within(mk, segs, &[0.0; MAX_FIRMS], CONTRACTION_MAX_ITER)
}

/// [`invert`] from the brands `start`, with at most `max_steps` contraction steps.
/// The contraction converges to the same brands from any start (Berry 1994); step
/// 0's bisection starts each step from the last one's brands, which saves most of
/// the steps, and step 1 itself starts from 0 as section 9 says.
fn invert_within(mk: &Market, segs: &[Segment], start: &[f64; MAX_FIRMS], max_steps: u32) -> Result<Inverted, Failure> {
    let mut brand = *start;
    let mut steps = 0;
    loop {
        let ln_s = ln_shares(mk, segs, &brand);
        let (mut change, mut settled) = (0.0f64, true);
        for j in 0..mk.n {
            let step = mk.share[j].ln() - ln_s[j];
            brand[j] += step;
            change = change.max(step.abs());
            settled &= step.abs() < brand_tol(brand[j]);
        }
        steps += 1;
        if !change.is_finite() {
            return Err(Failure::market("the brand contraction diverged (a non-finite step)".into()));
        }
        if settled {
            break;
        }
        if steps >= max_steps {
            return Err(Failure::market(format!(
                "the brand contraction did not converge in {max_steps} steps (last change {change:.3e}, tolerance {CONTRACTION_TOL:e})"
            )));
        }
    }
    Ok(inverted(mk, segs, brand, steps))
}

/// Step 2 at brands `brand`: the first-order terms at the observed prices.
fn inverted(mk: &Market, segs: &[Segment], brand: [f64; MAX_FIRMS], steps: u32) -> Inverted {
    let mut sh = Shares::default();
    demand::shares(segs, mk.n, &mk.base(segs, &brand), &mk.price, &mut sh);
    let mut markup = [0.0; MAX_FIRMS];
    let mut elasticity = [0.0; MAX_FIRMS];
    for j in 0..mk.n {
        let (s, lambda, gamma) = demand::foc_terms(segs, &sh, j);
        let slope = lambda - gamma; // -dS_j/dp_j
        elasticity[j] = -slope * mk.price[j] / s;
        markup[j] = if mk.open[j] { 0.0 } else { s / slope };
    }
    Inverted { brand, markup, elasticity, steps }
}

/// The brands of step 1 by Newton's method on ln S(b) = ln S(observed), from
/// `start`, with the contraction's stopping rule (every residual, which is the
/// contraction's step, below [`brand_tol`]); None where it does not get there in
/// 50 steps or meets an underflowed share or a singular Jacobian. Only step 0's
/// bisection uses it, from the last step's brands: the brands are unique (Berry
/// 1994), so this finds the contraction's fixed point, in a few steps where the
/// contraction can need thousands (at a large price-sensitivity scale one segment
/// buys nearly everything and the contraction's modulus nears 1).
fn newton_brands(mk: &Market, segs: &[Segment], start: &[f64; MAX_FIRMS]) -> Option<[f64; MAX_FIRMS]> {
    let n = mk.n;
    let residual = |brand: &[f64; MAX_FIRMS]| -> ([f64; MAX_FIRMS], f64, bool) {
        let ln_s = ln_shares(mk, segs, brand);
        let (mut r, mut worst, mut settled) = ([0.0; MAX_FIRMS], 0.0f64, true);
        for j in 0..n {
            r[j] = mk.share[j].ln() - ln_s[j];
            worst = worst.max(r[j].abs());
            settled &= r[j].abs() < brand_tol(brand[j]);
        }
        (r, if worst.is_finite() { worst } else { f64::INFINITY }, settled)
    };
    let mut brand = *start;
    let (mut r, mut worst, mut settled) = residual(&brand);
    let mut sh = Shares::default();
    for _ in 0..50 {
        if settled {
            return Some(brand);
        }
        // d ln S_j / d b_l = sum_k w_k s_jk (delta_jl - s_lk) / S_j
        demand::shares(segs, n, &mk.base(segs, &brand), &mk.price, &mut sh);
        let mut jac = [[0.0; MAX_FIRMS]; MAX_FIRMS];
        for j in 0..n {
            let big = demand::product_share(segs, &sh, j);
            if !(big > 0.0) {
                return None;
            }
            for l in 0..n {
                let d: f64 = segs.iter().enumerate().map(|(k, g)| g.weight * sh.s[j][k] * (f64::from(j == l) - sh.s[l][k])).sum();
                jac[j][l] = d / big;
            }
        }
        let mut rhs = r;
        let step = solve_linear(&mut jac, &mut rhs, n)?;
        // Damped: the step is halved until the largest residual falls (a full
        // Newton step from far away can overshoot into brands of 1e16, where f64
        // no longer resolves the shares).
        let mut t = 1.0;
        loop {
            let mut tried = brand;
            for j in 0..n {
                tried[j] += t * step[j];
            }
            let (r_new, worst_new, settled_new) = residual(&tried);
            if worst_new < worst {
                (brand, r, worst, settled) = (tried, r_new, worst_new, settled_new);
                break;
            }
            t *= 0.5;
            if t < 1e-6 {
                return None;
            }
        }
    }
    None
}

/// Solves a x = b (n <= 8) by Gaussian elimination with partial pivoting; None when
/// a pivot vanishes.
fn solve_linear(a: &mut [[f64; MAX_FIRMS]; MAX_FIRMS], b: &mut [f64; MAX_FIRMS], n: usize) -> Option<[f64; MAX_FIRMS]> {
    for c in 0..n {
        let p = (c..n).max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))?;
        if !(a[p][c].abs() > 1e-300) {
            return None;
        }
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let f = a[r][c] / a[c][c];
            for k in c..n {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = [0.0; MAX_FIRMS];
    for r in (0..n).rev() {
        let tail: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (b[r] - tail) / a[r][r];
    }
    Some(x)
}

/// ln S_j at the observed prices and brands `brand`, in logs throughout: ln s_jk =
/// u_jk - shift_k - ln denom_k (denom_k >= 1, section 3's stable form), and ln S_j
/// by log-sum-exp over the segments. Equal to ln of `demand`'s shares where those
/// are positive, and finite where they underflow (a contraction from b = 0 at a
/// large price-sensitivity scale starts there).
fn ln_shares(mk: &Market, segs: &[Segment], brand: &[f64; MAX_FIRMS]) -> [f64; MAX_FIRMS] {
    let base = mk.base(segs, brand);
    let mut ln_s = [[f64::NEG_INFINITY; MAX_SEGMENTS]; MAX_FIRMS];
    for (k, seg) in segs.iter().enumerate() {
        let mut u = [0.0; MAX_FIRMS];
        let mut shift = 0.0f64;
        for j in 0..mk.n {
            u[j] = demand::utility(seg, base[j][k], mk.price[j]);
            shift = shift.max(u[j]);
        }
        let denom = (-shift).exp() + (0..mk.n).map(|j| (u[j] - shift).exp()).sum::<f64>();
        for j in 0..mk.n {
            ln_s[j][k] = u[j] - shift - denom.ln();
        }
    }
    let mut out = [0.0; MAX_FIRMS];
    for j in 0..mk.n {
        let top = segs.iter().enumerate().filter(|(_, g)| g.weight > 0.0).map(|(k, _)| ln_s[j][k]).fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = segs.iter().enumerate().filter(|(_, g)| g.weight > 0.0).map(|(k, g)| g.weight * (ln_s[j][k] - top).exp()).sum();
        out[j] = top + sum.ln();
    }
    out
}

/// The segments with every price sensitivity multiplied by `scale`.
fn scaled(sc: &Scenario, scale: f64) -> Vec<Segment> {
    sc.segments().iter().map(|s| Segment { price_sens: scale * s.price_sens, ..*s }).collect()
}

/// Step 0: lambda such that the Lerner index at the inverted costs is `target`,
/// by 100 halvings of ln lambda over [ln 1e-3, ln 1e3].
fn price_scale(sc: &Scenario, mk: &Market, target: f64) -> Result<f64, Failure> {
    let lerner_from = |ln_scale: f64, start: &[f64; MAX_FIRMS]| -> Result<(f64, [f64; MAX_FIRMS]), Failure> {
        let segs = scaled(sc, ln_scale.exp());
        let inv = match newton_brands(mk, &segs, start) {
            Some(brand) => inverted(mk, &segs, brand, 0),
            None => invert_within(mk, &segs, start, CONTRACTION_MAX_ITER)?,
        };
        let l = inv
            .lerner(mk)
            .ok_or_else(|| Failure::market("--margin needs at least one closed firm (one not released at month 0)".into()))?;
        Ok((l, inv.brand))
    };
    let (mut lo, mut hi) = (SCALE_BRACKET.0.ln(), SCALE_BRACKET.1.ln());
    let (mut moved_lo, mut moved_hi) = (false, false);
    let mut warm = [0.0; MAX_FIRMS];
    for _ in 0..SCALE_HALVINGS {
        let mid = 0.5 * (lo + hi);
        if mid == lo || mid == hi {
            break; // the bracket no longer shrinks: every later halving repeats this one
        }
        let (l, brand) = lerner_from(mid, &warm)?;
        warm = brand;
        // L falls as lambda grows: above the target, the root lies at larger lambda.
        if l > target {
            (lo, moved_lo) = (mid, true);
        } else {
            (hi, moved_hi) = (mid, true);
        }
    }
    // A bisection that only ever moved one end found no root inside unless the
    // bracket's ends say so; they are evaluated only then (at lambda = 1e3 the
    // contraction is slow: the price terms there are thousands of utils).
    if !(moved_lo && moved_hi) {
        let zero = [0.0; MAX_FIRMS];
        let (at_lo, at_hi) = (lerner_from(SCALE_BRACKET.0.ln(), &zero)?.0, lerner_from(SCALE_BRACKET.1.ln(), &zero)?.0);
        if !(at_lo >= target && target >= at_hi) {
            return Err(Failure::market(format!(
                "no price-sensitivity scale in [{:e}, {:e}] gives the margin {target}: the Lerner index runs from {at_lo:.6} (scale {:e}) to {at_hi:.6} (scale {:e})",
                SCALE_BRACKET.0, SCALE_BRACKET.1, SCALE_BRACKET.0, SCALE_BRACKET.1
            )));
        }
    }
    Ok((0.5 * (lo + hi)).exp())
}

/// Calibrates `sc` to the observed shares of the whole market `share` and prices
/// `price` (one per firm, in the scenario's firm order), as section 9 says.
pub fn calibrate(sc: &Scenario, share: &[f64], price: &[f64], targets: Targets) -> Result<Calibration, Failure> {
    let mk = Market::new(sc, share, price);
    let mut out = *sc;
    let price_scale = match targets.margin {
        Some(l) => {
            let scale = price_scale(sc, &mk, l)?;
            let bound = crate::model::params::segment::price_sens().bound;
            for seg in &mut out.segments[..sc.n_segments] {
                seg.price_sens *= scale;
                if !bound.contains(seg.price_sens) {
                    return Err(Failure::market(format!(
                        "the price-sensitivity scale {scale:.6} takes a segment's price_sens to {:e}, outside price_sens's range {bound}",
                        seg.price_sens
                    )));
                }
            }
            Some(scale)
        }
        None => None,
    };
    let inv = invert(&mk, out.segments())?;
    let mut firms = Vec::with_capacity(mk.n);
    for j in 0..mk.n {
        let cost = mk.price[j] - inv.markup[j];
        if !(cost > 0.0) {
            return Err(Failure::firm(
                j,
                format!(
                    "the implied marginal cost is {cost:.6} $/Mtok: at the price {} $/Mtok the segments imply a markup of {:.6} $/Mtok, so demand is less price-sensitive than the price suggests (raise the segments' price_sens, or give --margin)",
                    mk.price[j], inv.markup[j]
                ),
            ));
        }
        let cost_factor = cost / mk.plain_cost[j];
        let bound = crate::model::params::firm::cost_factor().bound;
        if !bound.contains(cost_factor) {
            return Err(Failure::firm(
                j,
                format!(
                    "the implied cost factor {cost_factor:.6e} (cost {cost:.6} $/Mtok over the plain serving cost {:.6e} $/Mtok) is outside cost_factor's range {bound}",
                    mk.plain_cost[j]
                ),
            ));
        }
        let brand_bound = crate::model::params::firm::brand().bound;
        if !brand_bound.contains(inv.brand[j]) {
            return Err(Failure::firm(
                j,
                format!(
                    "the implied brand {:.6} is outside brand's range {brand_bound}: the share cannot be had at this price with these segments",
                    inv.brand[j]
                ),
            ));
        }
        out.firms[j].brand = inv.brand[j];
        out.firms[j].cost_factor = cost_factor;
        firms.push(FirmFit {
            share: mk.share[j],
            price: mk.price[j],
            open: mk.open[j],
            capability: mk.capability[j],
            plain_cost: mk.plain_cost[j],
            brand: inv.brand[j],
            cost_factor,
            cost,
            markup: inv.markup[j],
            elasticity: inv.elasticity[j],
            ..FirmFit::default()
        });
    }
    let market0 = targets.usage.map(|v| v / share.iter().sum::<f64>());
    if let Some(m0) = market0 {
        let bound = crate::model::params::model::market0().bound;
        if !bound.contains(m0) {
            return Err(Failure::market(format!("market0 = usage / sum of shares = {m0:e} is outside market0's range {bound}")));
        }
        out.model.market0 = m0;
    }
    let lerner = inv.lerner(&mk);
    let mut cal = Calibration {
        scenario: out,
        firms,
        price_scale,
        lerner,
        market0,
        contraction_steps: inv.steps,
        check_iterations: 0,
        share_error: 0.0,
        price_error: 0.0,
    };
    check(&mut cal)?;
    Ok(cal)
}

/// Step 3: month 0 of the calibrated scenario, solved from the default start to
/// [`CHECK_TOL`], must give every observed share and price back to [`CHECK_REL`].
fn check(cal: &mut Calibration) -> Result<(), Failure> {
    let mut sc = cal.scenario;
    sc.model.months = 1;
    sc.model.tol = CHECK_TOL;
    sc.model.max_iter = CHECK_MAX_ITER;
    let mut month0: Option<MonthRecord> = None;
    model::solve_traced(&sc, &mut |r: &MonthRecord| month0 = Some(*r));
    let r = month0.expect("one month is solved");
    if !r.converged {
        return Err(Failure::market(format!(
            "month 0 of the calibrated market did not converge to tol {CHECK_TOL:e} in {CHECK_MAX_ITER} iterations from the default start"
        )));
    }
    cal.check_iterations = r.iterations;
    let rel = |got: f64, want: f64| ((got - want) / want).abs();
    for (i, f) in cal.firms.iter_mut().enumerate() {
        f.model_share = r.share[i];
        f.model_price = r.price[i];
        let (es, ep) = (rel(f.model_share, f.share), rel(f.model_price, f.price));
        cal.share_error = cal.share_error.max(es);
        cal.price_error = cal.price_error.max(ep);
        if !(es <= CHECK_REL && ep <= CHECK_REL) {
            return Err(Failure::firm(
                i,
                format!(
                    "month 0 of the calibrated market, solved from the default start, reaches another equilibrium: share {:.12} and price {:.12} against the observed {} and {} (mixed logit need not have a unique equilibrium)",
                    f.model_share, f.model_price, f.share, f.price
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::params::baseline;

    /// Month 0 of a known scenario, solved tightly, is an observation that the
    /// calibration must invert back to the scenario's own brands and cost factors.
    fn observe(sc: &Scenario) -> (Vec<f64>, Vec<f64>) {
        let mut s = *sc;
        s.model.months = 1;
        s.model.tol = 1e-15;
        s.model.max_iter = 100_000;
        let mut rec = None;
        model::solve_traced(&s, &mut |r: &MonthRecord| rec = Some(*r));
        let r = rec.unwrap();
        (r.share[..sc.n_firms].to_vec(), r.price[..sc.n_firms].to_vec())
    }

    #[test]
    fn recovers_the_brands_and_cost_factors_that_made_the_market() {
        let mut sc = baseline();
        sc.firms[0].release_month = 0;
        let factors = [0.7, 1.3, 0.9, 2.0];
        for (i, f) in factors.iter().enumerate() {
            sc.firms[i].cost_factor = *f;
        }
        let (share, price) = observe(&sc);
        let mut input = sc;
        for f in &mut input.firms[..4] {
            (f.brand, f.cost_factor) = (0.0, 1.0);
        }
        let cal = calibrate(&input, &share, &price, Targets::default()).unwrap();
        for i in 0..4 {
            assert!((cal.firms[i].brand - sc.firms[i].brand).abs() < 1e-9, "brand {i}: {} vs {}", cal.firms[i].brand, sc.firms[i].brand);
            assert!((cal.firms[i].cost_factor / factors[i] - 1.0).abs() < 1e-9, "cost factor {i}");
        }
        assert!(cal.firms[0].open && cal.firms[0].markup == 0.0);
    }

    /// A contraction that runs out of steps is an error, not a calibration.
    #[test]
    fn a_contraction_out_of_steps_is_an_error() {
        let sc = baseline();
        let (share, price) = observe(&sc);
        let mk = Market::new(&sc, &share, &price);
        let e = invert_within(&mk, sc.segments(), &[0.0; MAX_FIRMS], 3).map(|_| ()).unwrap_err();
        assert!(e.message.starts_with("the brand contraction did not converge in 3 steps"), "{}", e.message);
        assert!(invert_within(&mk, sc.segments(), &[0.0; MAX_FIRMS], CONTRACTION_MAX_ITER).is_ok());
    }

    /// The check refuses a calibration whose month 0 lands elsewhere: here a brand
    /// moved after the inversion stands for an equilibrium the start does not reach.
    #[test]
    fn the_check_refuses_a_month_0_that_misses_the_observations() {
        let sc = baseline();
        let (share, price) = observe(&sc);
        let mut cal = calibrate(&sc, &share, &price, Targets::default()).unwrap();
        cal.scenario.firms[2].brand += 1e-6;
        let e = check(&mut cal).unwrap_err();
        assert!(e.message.contains("reaches another equilibrium"), "{}", e.message);
    }

    /// Newton's brands inside the bisection are the contraction's, also from a start
    /// far away (the previous step's brands at a much smaller scale), where an
    /// undamped Newton step once overshot to brands of 1e16.
    #[test]
    fn newton_finds_the_contractions_brands_from_far_away() {
        let mut sc = baseline();
        sc.firms[0].release_month = 0;
        let (share, price) = observe(&sc);
        let mk = Market::new(&sc, &share, &price);
        let near = invert(&mk, &scaled(&sc, 1.0)).unwrap().brand;
        for ln_scale in [3.45, 5.0, -4.0] {
            let segs = scaled(&sc, f64::exp(ln_scale));
            let want = invert(&mk, &segs).unwrap();
            if let Some(got) = newton_brands(&mk, &segs, &near) {
                for j in 0..4 {
                    assert!(
                        (got[j] - want.brand[j]).abs() < 1e-9 * want.brand[j].abs().max(1.0),
                        "scale e^{ln_scale}: {got:?} vs {:?}",
                        want.brand
                    );
                }
            }
        }
    }
}
