//! The data layout shared by the host and `shaders/moat.wgsl`: one flat f32
//! parameter vector per scenario in, one flat u32 output vector per scenario out.
//!
//! Every offset here has a twin of the same name in the shader; the unit test at
//! the bottom parses the shader and checks that the two agree.
//!
//! Parameters (`params`, f32, [`param_stride`] floats per scenario):
//! a header of [`P_FIRMS`] floats (model and scaling), then `n_firms` blocks of
//! [`F_STRIDE`] floats, then `n_segments` blocks of [`S_STRIDE`] floats.
//! Integers (months, max_iter, release_month) are stored as f32 values, exact
//! below 2^24 (the validated ranges stop at 100,000); never as raw bits, which a
//! device that flushes denormals or canonicalises NaNs on load could alter.
//! Fields named `LN_*` are logarithms computed on the host in f64 and rounded once
//! to f32: they stand for inputs whose range or differences f32 cannot hold
//! directly (train_usd_per_flop near 1e-18 against spends near 1e9, loss_ref - E,
//! discount^t and (1 + growth)^t over long horizons).
//!
//! Outputs (`outputs`, u32, [`out_stride`] words per scenario): a header of
//! [`O_FIRMS`] words, then `n_firms` blocks of [`OF_STRIDE`] words. f32 values are
//! stored as their bits, exit months as i32 bits.

use crate::model::{MAX_FIRMS, Outcome, Scenario};

// Header (model and scaling).
pub const P_MONTHS: usize = 0;
pub const P_MAX_ITER: usize = 1;
pub const P_TOL: usize = 2;
pub const P_LN_DISCOUNT: usize = 3;
pub const P_MARKET0: usize = 4;
pub const P_LN1P_GROWTH: usize = 5;
pub const P_LN_SERVE: usize = 6;
pub const P_SPILL_GAP: usize = 7;
pub const P_CATCHUP_RATE: usize = 8;
pub const P_TALENT_DECAY: usize = 9;
pub const P_COMMUNITY_GAIN: usize = 10;
pub const P_COMMUNITY_DECAY: usize = 11;
pub const P_COMMUNITY_ELASTICITY: usize = 12;
pub const P_COMMUNITY_QUALITY: usize = 13;
pub const P_COMMUNITY_COST: usize = 14;
pub const P_AD_UPLIFT: usize = 15;
pub const P_A: usize = 16;
pub const P_B: usize = 17;
pub const P_ALPHA: usize = 18;
pub const P_BETA: usize = 19;
pub const P_REPEAT_SCALE: usize = 20;
pub const P_LN_LOSS_GAP: usize = 21;
/// Start of the firm blocks (= header length).
pub const P_FIRMS: usize = 22;

// Firm block.
pub const F_LN_C6: usize = 0;
pub const F_LN_U: usize = 1;
pub const F_RELEASE_MONTH: usize = 2;
pub const F_BRAND: usize = 3;
pub const F_PLATFORM_REVENUE: usize = 4;
pub const F_TRAIN_SPEND: usize = 5;
pub const F_FUNDING: usize = 6;
pub const F_STRIDE: usize = 7;

// Segment block.
pub const S_WEIGHT: usize = 0;
pub const S_INTERCEPT: usize = 1;
pub const S_PRICE_SENS: usize = 2;
pub const S_QUALITY_TASTE: usize = 3;
pub const S_OPEN_TASTE: usize = 4;
pub const S_STRIDE: usize = 5;

// Output header.
pub const O_OFFERED: usize = 0;
pub const O_OUTSIDE_SHARE: usize = 1;
pub const O_OPEN_SHARE: usize = 2;
pub const O_HHI: usize = 3;
pub const O_CONSUMER_SURPLUS_NPV: usize = 4;
pub const O_MAX_ITERATIONS: usize = 5;
pub const O_NONCONVERGED_MONTHS: usize = 6;
/// 1 when one of the kernel's long loops ended before its exit condition held
/// (llvmpipe's loop cap, see `super::LLVMPIPE_LOOP_CAP`): the row is then wrong.
pub const O_LOOPS_CUT: usize = 7;
/// Start of the per-firm output blocks (= header length).
pub const O_FIRMS: usize = 8;

// Per-firm output block.
pub const OF_SHARE: usize = 0;
pub const OF_PRICE: usize = 1;
pub const OF_QUALITY: usize = 2;
pub const OF_NPV: usize = 3;
pub const OF_COMPLEMENT_NPV: usize = 4;
pub const OF_EXIT_MONTH: usize = 5;
pub const OF_STRIDE: usize = 6;

/// f32 values per scenario in the parameter buffer (WGSL `P_STRIDE`).
pub const fn param_stride(n_firms: usize, n_segments: usize) -> usize {
    P_FIRMS + n_firms * F_STRIDE + n_segments * S_STRIDE
}

/// u32 words per scenario in the output buffer (WGSL `O_STRIDE`).
pub const fn out_stride(n_firms: usize) -> usize {
    O_FIRMS + n_firms * OF_STRIDE
}

/// ln(2 * 1e6 * infer_usd_per_flop): serving cost c0 = e^(ln N + this).
fn ln_serve(infer_usd_per_flop: f64) -> f64 {
    (2.0 * 1e6 * infer_usd_per_flop).ln()
}

/// Writes the parameter vector of `sc` into `dst` (exactly `param_stride` floats).
pub fn pack(sc: &Scenario, dst: &mut [f32]) {
    let (nf, ns) = (sc.n_firms, sc.n_segments);
    debug_assert_eq!(dst.len(), param_stride(nf, ns));
    let m = &sc.model;
    let s = &sc.scaling;
    dst[P_MONTHS] = m.months as f32;
    dst[P_MAX_ITER] = m.max_iter as f32;
    dst[P_TOL] = m.tol as f32;
    dst[P_LN_DISCOUNT] = m.discount.ln() as f32;
    dst[P_MARKET0] = m.market0 as f32;
    dst[P_LN1P_GROWTH] = m.market_growth.ln_1p() as f32;
    dst[P_LN_SERVE] = ln_serve(m.infer_usd_per_flop) as f32;
    dst[P_SPILL_GAP] = m.spill_gap as f32;
    dst[P_CATCHUP_RATE] = m.catchup_rate as f32;
    dst[P_TALENT_DECAY] = m.talent_decay as f32;
    dst[P_COMMUNITY_GAIN] = m.community_gain as f32;
    dst[P_COMMUNITY_DECAY] = m.community_decay as f32;
    dst[P_COMMUNITY_ELASTICITY] = m.community_elasticity as f32;
    dst[P_COMMUNITY_QUALITY] = m.community_quality as f32;
    dst[P_COMMUNITY_COST] = m.community_cost as f32;
    dst[P_AD_UPLIFT] = m.ad_uplift as f32;
    dst[P_A] = s.a as f32;
    dst[P_B] = s.b as f32;
    dst[P_ALPHA] = s.alpha as f32;
    dst[P_BETA] = s.beta as f32;
    dst[P_REPEAT_SCALE] = s.repeat_scale as f32;
    dst[P_LN_LOSS_GAP] = (s.loss_ref - s.e).ln() as f32;
    for (i, f) in sc.firms().iter().enumerate() {
        let o = P_FIRMS + i * F_STRIDE;
        dst[o + F_LN_C6] = crate::model::scaling::ln_c6(m, f) as f32;
        dst[o + F_LN_U] = f.data_tokens.ln() as f32;
        dst[o + F_RELEASE_MONTH] = f.release_month as f32;
        dst[o + F_BRAND] = f.brand as f32;
        dst[o + F_PLATFORM_REVENUE] = f.platform_revenue as f32;
        dst[o + F_TRAIN_SPEND] = f.train_spend as f32;
        dst[o + F_FUNDING] = f.funding as f32;
    }
    let sb = P_FIRMS + nf * F_STRIDE;
    for (k, seg) in sc.segments().iter().enumerate() {
        let o = sb + k * S_STRIDE;
        dst[o + S_WEIGHT] = seg.weight as f32;
        dst[o + S_INTERCEPT] = seg.intercept as f32;
        dst[o + S_PRICE_SENS] = seg.price_sens as f32;
        dst[o + S_QUALITY_TASTE] = seg.quality_taste as f32;
        dst[o + S_OPEN_TASTE] = seg.open_taste as f32;
    }
}

/// Reads one scenario's outputs (exactly `out_stride(n_firms)` words).
pub fn unpack(src: &[u32], n_firms: usize) -> Outcome<f32> {
    debug_assert_eq!(src.len(), out_stride(n_firms));
    let f = |o: usize| f32::from_bits(src[o]);
    let mut out = Outcome::<f32> {
        offered: src[O_OFFERED],
        outside_share: f(O_OUTSIDE_SHARE),
        open_share: f(O_OPEN_SHARE),
        hhi: f(O_HHI),
        consumer_surplus_npv: f(O_CONSUMER_SURPLUS_NPV),
        max_iterations: src[O_MAX_ITERATIONS],
        nonconverged_months: src[O_NONCONVERGED_MONTHS],
        // Firms past n_firms do not exist: as in the reference, they never exit.
        exit_month: [-1; MAX_FIRMS],
        ..Default::default()
    };
    for i in 0..n_firms {
        let o = O_FIRMS + i * OF_STRIDE;
        out.share[i] = f(o + OF_SHARE);
        out.price[i] = f(o + OF_PRICE);
        out.quality[i] = f(o + OF_QUALITY);
        out.npv[i] = f(o + OF_NPV);
        out.complement_npv[i] = f(o + OF_COMPLEMENT_NPV);
        out.exit_month[i] = src[o + OF_EXIT_MONTH] as i32;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `const NAME: u32 = N;` of the shader whose name is a layout constant
    /// here must have the same value, and every layout constant must be there.
    #[test]
    fn shader_layout_matches_host() {
        let host: &[(&str, usize)] = &[
            ("P_MONTHS", P_MONTHS),
            ("P_MAX_ITER", P_MAX_ITER),
            ("P_TOL", P_TOL),
            ("P_LN_DISCOUNT", P_LN_DISCOUNT),
            ("P_MARKET0", P_MARKET0),
            ("P_LN1P_GROWTH", P_LN1P_GROWTH),
            ("P_LN_SERVE", P_LN_SERVE),
            ("P_SPILL_GAP", P_SPILL_GAP),
            ("P_CATCHUP_RATE", P_CATCHUP_RATE),
            ("P_TALENT_DECAY", P_TALENT_DECAY),
            ("P_COMMUNITY_GAIN", P_COMMUNITY_GAIN),
            ("P_COMMUNITY_DECAY", P_COMMUNITY_DECAY),
            ("P_COMMUNITY_ELASTICITY", P_COMMUNITY_ELASTICITY),
            ("P_COMMUNITY_QUALITY", P_COMMUNITY_QUALITY),
            ("P_COMMUNITY_COST", P_COMMUNITY_COST),
            ("P_AD_UPLIFT", P_AD_UPLIFT),
            ("P_A", P_A),
            ("P_B", P_B),
            ("P_ALPHA", P_ALPHA),
            ("P_BETA", P_BETA),
            ("P_REPEAT_SCALE", P_REPEAT_SCALE),
            ("P_LN_LOSS_GAP", P_LN_LOSS_GAP),
            ("P_FIRMS", P_FIRMS),
            ("F_LN_C6", F_LN_C6),
            ("F_LN_U", F_LN_U),
            ("F_RELEASE_MONTH", F_RELEASE_MONTH),
            ("F_BRAND", F_BRAND),
            ("F_PLATFORM_REVENUE", F_PLATFORM_REVENUE),
            ("F_TRAIN_SPEND", F_TRAIN_SPEND),
            ("F_FUNDING", F_FUNDING),
            ("F_STRIDE", F_STRIDE),
            ("S_WEIGHT", S_WEIGHT),
            ("S_INTERCEPT", S_INTERCEPT),
            ("S_PRICE_SENS", S_PRICE_SENS),
            ("S_QUALITY_TASTE", S_QUALITY_TASTE),
            ("S_OPEN_TASTE", S_OPEN_TASTE),
            ("S_STRIDE", S_STRIDE),
            ("O_OFFERED", O_OFFERED),
            ("O_OUTSIDE_SHARE", O_OUTSIDE_SHARE),
            ("O_OPEN_SHARE", O_OPEN_SHARE),
            ("O_HHI", O_HHI),
            ("O_CONSUMER_SURPLUS_NPV", O_CONSUMER_SURPLUS_NPV),
            ("O_MAX_ITERATIONS", O_MAX_ITERATIONS),
            ("O_NONCONVERGED_MONTHS", O_NONCONVERGED_MONTHS),
            ("O_LOOPS_CUT", O_LOOPS_CUT),
            ("O_FIRMS", O_FIRMS),
            ("OF_SHARE", OF_SHARE),
            ("OF_PRICE", OF_PRICE),
            ("OF_QUALITY", OF_QUALITY),
            ("OF_NPV", OF_NPV),
            ("OF_COMPLEMENT_NPV", OF_COMPLEMENT_NPV),
            ("OF_EXIT_MONTH", OF_EXIT_MONTH),
            ("OF_STRIDE", OF_STRIDE),
        ];
        let mut shader = std::collections::HashMap::new();
        for line in super::super::SHADER_SOURCE.lines() {
            let Some(rest) = line.trim().strip_prefix("const ") else {
                continue;
            };
            let Some((name, rest)) = rest.split_once(": u32 = ") else {
                continue;
            };
            let value = rest.split(['u', ';']).next().unwrap().trim();
            if let Ok(v) = value.parse::<usize>() {
                shader.insert(name.to_string(), v);
            }
        }
        for (name, v) in host {
            assert_eq!(shader.get(*name), Some(v), "layout constant {name} differs between host and shader");
        }
        let layout_names = shader.keys().filter(|n| ["P_", "F_", "S_", "O_", "OF_"].iter().any(|p| n.starts_with(p))).count();
        assert_eq!(layout_names, host.len(), "the shader has layout constants the host does not know");
    }
}
