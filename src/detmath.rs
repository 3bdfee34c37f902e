//! moatsweep's own exp, ln and ln_1p: written with nothing but f64 `+ - * /`,
//! comparisons and bit manipulation, so that their results are the same on every
//! platform (Rust never contracts or reorders float operations) and so that
//! `shaders/f64.wgsl` (`f64_exp`, `f64_ln`, `f64_ln1p`) can run the identical
//! sequence of operations through its software binary64 and get the same bits on
//! the GPU. Every constant is given as its exact bit pattern, in hex, here and in
//! the shader.
//!
//! Accuracy: each function keeps the leading terms as an unevaluated sum of two
//! f64 (hi + lo, built with error-free sums and Dekker products, no FMA) and
//! rounds once at the end, so results are within 1 ulp and almost always the
//! correctly rounded value (tests below; figures in the report of tests/softf64.rs).
//!
//! Domains, and what happens outside them (always the same bits):
//! - [`exp`]: finite x in [-708, 709] (the result is a normal number). x > 709 gives
//!   +inf, x < -708 gives +0, NaN gives NaN.
//! - [`ln`]: positive finite x (subnormals included). x = ±0 gives -inf, x < 0 or
//!   NaN gives NaN, +inf gives +inf.
//! - [`ln_1p`]: finite x > -1. x = -1 gives -inf, x < -1 or NaN gives NaN, +inf
//!   gives +inf, ±0 gives itself.

/// 1 / ln 2.
const INV_LN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
/// 1.5 * 2^52: adding and subtracting it rounds to an integer (ties to even).
const SHIFTER: f64 = f64::from_bits(0x4338_0000_0000_0000);
/// ln 2 = LN2_HI + LN2_LO; LN2_HI has 32 significant bits, so k * LN2_HI is exact for |k| < 2^21.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
/// 2^27 + 1: Dekker's splitting factor.
const SPLIT: f64 = f64::from_bits(0x41a0_0000_0200_0000);
/// 2^54: brings a subnormal into the normal range.
const TWO54: f64 = f64::from_bits(0x4350_0000_0000_0000);
const EXP_MAX: f64 = f64::from_bits(0x4086_2800_0000_0000); // 709
const EXP_MIN: f64 = f64::from_bits(0xc086_2000_0000_0000); // -708

/// 1/n! for n = 3..=14: e^r = 1 + r + r^2/2 + r^3 (1/3! + r (1/4! + ...)).
/// With |r| <= ln2/2 the first term left out, r^15/15!, is below 1e-19.
const EXP_C: [f64; 12] = [
    f64::from_bits(0x3fc5_5555_5555_5555),
    f64::from_bits(0x3fa5_5555_5555_5555),
    f64::from_bits(0x3f81_1111_1111_1111),
    f64::from_bits(0x3f56_c16c_16c1_6c17),
    f64::from_bits(0x3f2a_01a0_1a01_a01a),
    f64::from_bits(0x3efa_01a0_1a01_a01a),
    f64::from_bits(0x3ec7_1de3_a556_c734),
    f64::from_bits(0x3e92_7e4f_b778_9f5c),
    f64::from_bits(0x3e5a_e645_67f5_44e4),
    f64::from_bits(0x3e21_eed8_eff8_d898),
    f64::from_bits(0x3de6_1246_13a8_6d09),
    f64::from_bits(0x3da9_3974_a8c0_7c9d),
];

/// 2/(2n+1) for n = 1..=11: ln((1+s)/(1-s)) = 2s + s z (2/3 + z (2/5 + ...)), z = s^2.
/// With |s| <= 0.1716 the first term left out is below 2e-20 relative.
const LN_C: [f64; 11] = [
    f64::from_bits(0x3fe5_5555_5555_5555),
    f64::from_bits(0x3fd9_9999_9999_999a),
    f64::from_bits(0x3fd2_4924_9249_2492),
    f64::from_bits(0x3fcc_71c7_1c71_c71c),
    f64::from_bits(0x3fc7_45d1_745d_1746),
    f64::from_bits(0x3fc3_b13b_13b1_3b14),
    f64::from_bits(0x3fc1_1111_1111_1111),
    f64::from_bits(0x3fbe_1e1e_1e1e_1e1e),
    f64::from_bits(0x3fba_f286_bca1_af28),
    f64::from_bits(0x3fb8_6186_1861_8618),
    f64::from_bits(0x3fb6_42c8_590b_2164),
];

/// s + e = a + b exactly (Knuth), for any a, b.
#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    let e = (a - (s - bb)) + (b - bb);
    (s, e)
}

/// s + e = a + b exactly, where |a| >= |b| (or a = 0).
#[inline]
fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let e = b - (s - a);
    (s, e)
}

/// hi + lo = a, each with at most 26 significant bits (Dekker).
#[inline]
fn split(a: f64) -> (f64, f64) {
    let c = SPLIT * a;
    let hi = c - (c - a);
    (hi, a - hi)
}

/// p + e = a * b exactly (Dekker, no FMA), barring overflow and underflow.
#[inline]
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    let e = (((ah * bh) - p) + (ah * bl) + (al * bh)) + (al * bl);
    (p, e)
}

/// e^x. See the module's documentation for the domain.
///
/// x = k ln2 + r with k = round(x / ln2), |r| <= ln2/2 (a little more when x / ln2
/// rounds), r = rh + rl exactly enough (k * LN2_HI is exact and so is x minus it);
/// e^r = 1 + r + r^2/2 + r^3 P(r) with 1 + r + r^2/2 as a two-f64 sum; e^x = e^r 2^k,
/// the last product exact.
pub fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x > EXP_MAX {
        return f64::INFINITY;
    }
    if x < EXP_MIN {
        return 0.0;
    }
    let t = (x * INV_LN2) + SHIFTER;
    let kd = t - SHIFTER;
    let k = t.to_bits() as u32 as i32;
    let r0 = x - (kd * LN2_HI);
    let (rh, rl) = two_sum(r0, -(kd * LN2_LO));
    let mut p = EXP_C[11];
    for i in (0..11).rev() {
        p = EXP_C[i] + (rh * p);
    }
    let (r2h, r2l) = two_prod(rh, rh);
    let tail = (rh * r2h) * p;
    let (t1, t1e) = two_sum(rh, r2h * 0.5);
    let (u, ue) = fast_two_sum(1.0, t1);
    let lo = ue + (t1e + (rl + ((r2l * 0.5) + ((rh * rl) + tail))));
    let y = u + lo;
    y * f64::from_bits(((k + 1023) as u64) << 52)
}

/// ln(x) as an unrounded sum h + lo, for positive finite x.
///
/// x = 2^k m with m in [sqrt(2)/2, sqrt(2)); f = m - 1 (exact); ln m = 2 atanh(s)
/// with s = f / (2 + f), kept as s + sl (sl from the exact residual f - s (2 + f));
/// ln x = k LN2_HI + 2s + (k LN2_LO + 2 sl + s z Q(z)), z = s^2.
fn ln_parts(x: f64) -> (f64, f64) {
    let mut bits = x.to_bits();
    let mut k: i32 = 0;
    if bits < (1 << 52) {
        bits = (x * TWO54).to_bits();
        k = -54;
    }
    let hi = (bits >> 32) as u32;
    let frac_hi = hi & 0x000f_ffff;
    k += (hi >> 20) as i32 - 1023;
    // the top 20 bits of sqrt(2)'s mantissa are 0x6a09e
    let m_hi = if frac_hi >= 0x6a09e {
        k += 1;
        frac_hi | 0x3fe0_0000
    } else {
        frac_hi | 0x3ff0_0000
    };
    let m = f64::from_bits(((m_hi as u64) << 32) | (bits & 0xffff_ffff));
    let f = m - 1.0;
    let d = 2.0 + f;
    let s = f / d;
    let (p, pe) = two_prod(s, f);
    let residual = ((f - (2.0 * s)) - p) - pe;
    let sl = residual / d;
    let z = s * s;
    let mut q = LN_C[10];
    for i in (0..10).rev() {
        q = LN_C[i] + (z * q);
    }
    let t = (s * z) * q;
    let kd = k as f64;
    let (h, e) = two_sum(kd * LN2_HI, 2.0 * s);
    let lo = e + ((kd * LN2_LO) + ((2.0 * sl) + t));
    (h, lo)
}

/// The natural logarithm. See the module's documentation for the domain.
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x == f64::INFINITY {
        return f64::INFINITY;
    }
    let (h, lo) = ln_parts(x);
    h + lo
}

/// ln(1 + x), accurate for small x. See the module's documentation for the domain.
///
/// 1 + x = u + err exactly; ln(1 + x) = ln u + ln(1 + err/u) = ln u + err/u to
/// far below an ulp, added to ln u's low part before the one rounding.
pub fn ln_1p(x: f64) -> f64 {
    if x.is_nan() || x < -1.0 {
        return f64::NAN;
    }
    if x == -1.0 {
        return f64::NEG_INFINITY;
    }
    if x == 0.0 || x == f64::INFINITY {
        return x;
    }
    let (u, err) = two_sum(1.0, x);
    let (h, lo) = ln_parts(u);
    h + (lo + (err / u))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64, for reproducible inputs.
    struct Rng(u64);
    impl Rng {
        fn unit(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Distance in ulps between two finite f64 of the same sign.
    fn ulps(a: f64, b: f64) -> u64 {
        assert_eq!(a.is_sign_negative(), b.is_sign_negative(), "{a:e} vs {b:e}");
        a.to_bits().abs_diff(b.to_bits())
    }

    /// (inputs, results that differ from the platform's, largest difference in ulps).
    fn compare(n: usize, seed: u64, input: impl Fn(f64) -> f64, ours: fn(f64) -> f64, theirs: fn(f64) -> f64) -> (usize, usize, u64) {
        let mut rng = Rng(seed);
        let (mut differ, mut worst) = (0, 0);
        for _ in 0..n {
            let x = input(rng.unit());
            let (a, b) = (ours(x), theirs(x));
            if a != b {
                differ += 1;
                worst = worst.max(ulps(a, b));
            }
        }
        (n, differ, worst)
    }

    const N: usize = 200_000;

    #[test]
    fn exp_is_within_one_ulp_of_the_platforms() {
        // log-uniform axes: exponents in [ln 1e-6, ln 1e12]
        let (lo, hi) = (1e-6f64.ln(), 1e12f64.ln());
        let (n, differ, worst) = compare(N, 1, |u| lo + (hi - lo) * u, exp, f64::exp);
        eprintln!("exp on [ln 1e-6, ln 1e12]: {differ} of {n} differ from the platform's, at most {worst} ulp");
        assert!(worst <= 1, "exp differs by {worst} ulp");
        let (n, differ, worst) = compare(N, 2, |u| -708.0 + 1417.0 * u, exp, f64::exp);
        eprintln!("exp on [-708, 709]: {differ} of {n} differ, at most {worst} ulp");
        assert!(worst <= 1, "exp differs by {worst} ulp");
        let (n, differ, worst) = compare(N, 3, |u| (u - 0.5) * 1e-6, exp, f64::exp);
        eprintln!("exp near 0: {differ} of {n} differ, at most {worst} ulp");
        assert!(worst <= 1, "exp differs by {worst} ulp");
    }

    #[test]
    fn ln_is_within_one_ulp_of_the_platforms() {
        // ln on [1e-30, 1e30], log-uniformly
        let (lo, hi) = (1e-30f64.ln(), 1e30f64.ln());
        let (n, differ, worst) = compare(N, 4, |u| (lo + (hi - lo) * u).exp(), ln, f64::ln);
        eprintln!("ln on [1e-30, 1e30]: {differ} of {n} differ from the platform's, at most {worst} ulp");
        assert!(worst <= 1, "ln differs by {worst} ulp");
        let (n, differ, worst) = compare(N, 5, |u| 0.5 + 1.5 * u, ln, f64::ln);
        eprintln!("ln on [0.5, 2]: {differ} of {n} differ, at most {worst} ulp");
        assert!(worst <= 1, "ln differs by {worst} ulp");
        let (n, differ, worst) = compare(N, 6, |u| f64::from_bits((u * (1u64 << 52) as f64) as u64 + 1), ln, f64::ln);
        eprintln!("ln of subnormals: {differ} of {n} differ, at most {worst} ulp");
        assert!(worst <= 1, "ln differs by {worst} ulp");
    }

    #[test]
    fn ln_1p_is_within_one_ulp_of_the_platforms() {
        let (n, differ, worst) = compare(N, 7, |u| -0.9 + 100.9 * u, ln_1p, f64::ln_1p);
        eprintln!("ln_1p on (-0.9, 100]: {differ} of {n} differ from the platform's, at most {worst} ulp");
        assert!(worst <= 1, "ln_1p differs by {worst} ulp");
        let (n, differ, worst) = compare(N, 8, |u| (u - 0.5) * 1e-3, ln_1p, f64::ln_1p);
        eprintln!("ln_1p near 0: {differ} of {n} differ, at most {worst} ulp");
        assert!(worst <= 1, "ln_1p differs by {worst} ulp");
        let (n, differ, worst) = compare(N, 9, |u| (-60.0 + 60.0 * u).exp() * 0.9, ln_1p, f64::ln_1p);
        eprintln!("ln_1p on (0, 0.9) log-uniformly: {differ} of {n} differ, at most {worst} ulp");
        assert!(worst <= 1, "ln_1p differs by {worst} ulp");
    }

    #[test]
    fn exact_and_special_values() {
        assert_eq!(exp(0.0).to_bits(), 1f64.to_bits());
        assert_eq!(exp(-0.0).to_bits(), 1f64.to_bits());
        assert_eq!(ln(1.0).to_bits(), 0f64.to_bits());
        assert_eq!(ln_1p(0.0).to_bits(), 0f64.to_bits());
        assert_eq!(ln_1p(-0.0).to_bits(), (-0f64).to_bits());
        // ln of powers of two is k ln 2 rounded once
        for k in [-1074, -1022, -1, 1, 2, 10, 1023] {
            let x = 2f64.powi(k);
            assert_eq!(ln(x), f64::ln(x), "ln 2^{k}");
        }
        // tiny arguments: exp(x) = 1 + x rounds to 1; ln_1p(x) = x
        assert_eq!(exp(1e-300), 1.0);
        assert_eq!(ln_1p(1e-300), 1e-300);
        assert_eq!(ln_1p(-1e-20), -1e-20);
        assert!(exp(f64::NAN).is_nan() && ln(-1.0).is_nan() && ln_1p(-2.0).is_nan());
        assert_eq!(exp(710.0), f64::INFINITY);
        assert_eq!(exp(-709.0), 0.0);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln_1p(-1.0), f64::NEG_INFINITY);
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
    }
}
