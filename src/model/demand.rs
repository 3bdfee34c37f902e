//! docs/model.md section 3: segment-mixed logit demand and the zeta-markup update.

use super::{MAX_FIRMS, MAX_SEGMENTS, Segment};

/// Below this Lambda_j the products' segment shares have (nearly) underflowed; the
/// markup update is then evaluated in a rescaled form (see [`zeta_update`]).
pub const TINY_LAMBDA: f64 = 1e-200;

/// Shares of the offered products in every segment at one set of prices.
#[derive(Clone, Copy, Debug)]
pub struct Shares {
    /// s[j][k]: share of product j in segment k.
    pub s: [[f64; MAX_SEGMENTS]; MAX_FIRMS],
    /// max(0, max_l u_lk): the shift that keeps the exponentials finite.
    pub shift: [f64; MAX_SEGMENTS],
    /// e^-shift + sum_l e^(u_lk - shift) = (1 + sum_l e^u_lk) e^-shift.
    pub denom: [f64; MAX_SEGMENTS],
}

impl Default for Shares {
    fn default() -> Self {
        Shares { s: [[0.0; MAX_SEGMENTS]; MAX_FIRMS], shift: [0.0; MAX_SEGMENTS], denom: [1.0; MAX_SEGMENTS] }
    }
}

/// Utility u_jk = a_k + beta_k Q_j + b_j + theta_k o_j - alpha_k p_j, split into the
/// price-free part `base[j][k]` (fixed within a month) and the price term.
#[inline]
pub fn utility(seg: &Segment, base: f64, price: f64) -> f64 {
    base - seg.price_sens * price
}

/// s_jk = exp(u_jk) / (1 + sum_l exp(u_lk)), computed stably (subtract max(0, max_l u_lk)).
pub fn shares(segs: &[Segment], n: usize, base: &[[f64; MAX_SEGMENTS]; MAX_FIRMS], price: &[f64; MAX_FIRMS], out: &mut Shares) {
    for (k, seg) in segs.iter().enumerate() {
        let mut u = [0.0; MAX_FIRMS];
        let mut shift = 0.0f64;
        for j in 0..n {
            u[j] = utility(seg, base[j][k], price[j]);
            shift = shift.max(u[j]);
        }
        let mut denom = (-shift).exp();
        for j in 0..n {
            u[j] = (u[j] - shift).exp();
            denom += u[j];
        }
        let inv = 1.0 / denom;
        for j in 0..n {
            out.s[j][k] = u[j] * inv;
        }
        out.shift[k] = shift;
        out.denom[k] = denom;
    }
}

/// S_j = sum_k w_k s_jk.
#[inline]
pub fn product_share(segs: &[Segment], sh: &Shares, j: usize) -> f64 {
    segs.iter().enumerate().map(|(k, seg)| seg.weight * sh.s[j][k]).sum()
}

/// s_out = sum_k w_k / (1 + sum_l exp(u_lk)): the outside share from its own terms,
/// never as 1 - sum_j S_j.
#[inline]
pub fn outside_share(segs: &[Segment], sh: &Shares) -> f64 {
    segs.iter().enumerate().map(|(k, seg)| seg.weight * (-sh.shift[k]).exp() / sh.denom[k]).sum()
}

/// ln(1 + sum_j exp(u_jk)) for segment k: the logit inclusive value.
#[inline]
pub fn inclusive_value(sh: &Shares, k: usize) -> f64 {
    sh.shift[k] + sh.denom[k].ln()
}

/// (S_j, Lambda_j, Gamma_j) with Lambda_j = sum_k w_k alpha_k s_jk, Gamma_j = sum_k w_k alpha_k s_jk^2.
#[inline]
pub fn foc_terms(segs: &[Segment], sh: &Shares, j: usize) -> (f64, f64, f64) {
    let (mut s, mut lambda, mut gamma) = (0.0, 0.0, 0.0);
    for (k, seg) in segs.iter().enumerate() {
        let ws = seg.weight * sh.s[j][k];
        let was = seg.price_sens * ws;
        s += ws;
        lambda += was;
        gamma += was * sh.s[j][k];
    }
    (s, lambda, gamma)
}

/// One zeta-markup update m_j <- (S_j + Gamma_j m_j) / Lambda_j (Morrow and Skerlos 2011).
///
/// When product j's shares have underflowed in every segment (Lambda_j below
/// [`TINY_LAMBDA`]) the same ratio is evaluated with every segment share divided by
/// the largest one, computed in logs: mathematically identical, and finite. docs/model.md
/// does not address this case; it matters only for products that sell nothing.
#[inline]
pub fn zeta_update(
    segs: &[Segment],
    sh: &Shares,
    base: &[[f64; MAX_SEGMENTS]; MAX_FIRMS],
    price: &[f64; MAX_FIRMS],
    j: usize,
    markup: f64,
) -> f64 {
    let (s, lambda, gamma) = foc_terms(segs, sh, j);
    if lambda > TINY_LAMBDA {
        return (s + gamma * markup) / lambda;
    }
    zeta_update_rescaled(segs, sh, base, price, j, markup)
}

/// [`zeta_update`] for a product whose shares have underflowed: every segment
/// share divided by the largest one, in logs. Kept out of line (and cold): the
/// logs are math intrinsics that the compiler may otherwise evaluate ahead of the
/// test on every update (measured: 10% more instructions per scenario).
#[cold]
#[inline(never)]
fn zeta_update_rescaled(
    segs: &[Segment],
    sh: &Shares,
    base: &[[f64; MAX_SEGMENTS]; MAX_FIRMS],
    price: &[f64; MAX_FIRMS],
    j: usize,
    markup: f64,
) -> f64 {
    // ln s_jk = u_jk - shift_k - ln denom_k; scale by the largest over weighted segments.
    let mut ln_s = [0.0; MAX_SEGMENTS];
    let mut top = f64::NEG_INFINITY;
    for (k, seg) in segs.iter().enumerate() {
        ln_s[k] = utility(seg, base[j][k], price[j]) - sh.shift[k] - sh.denom[k].ln();
        if seg.weight > 0.0 {
            top = top.max(ln_s[k]);
        }
    }
    let (mut num, mut den) = (0.0, 0.0);
    for (k, seg) in segs.iter().enumerate().filter(|(_, seg)| seg.weight > 0.0) {
        // Segments of weight 0 add nothing to S, Lambda or Gamma; skipping them also
        // keeps exp() finite, since their shares may lie far above `top`.
        let scaled = (ln_s[k] - top).exp();
        num += seg.weight * scaled * (1.0 + seg.price_sens * sh.s[j][k] * markup);
        den += seg.weight * seg.price_sens * scaled;
    }
    num / den
}
