//! Exact, order-independent moments: count, sum, sum of squares, min and max of
//! one output in one group.
//!
//! Sums are kept exactly, as integers in a fixed-point accumulator wide enough
//! for any f64 (and any square of one), so adding values in any order, in any
//! split across threads, chunks, shards or resumed runs gives the same state bit
//! for bit. Mean and variance are computed from the exact sums at the end, in
//! double-double arithmetic (about 104 bits), and rounded once to f64:
//! var = (S2 - S1^2 / n) / (n - 1), the sample variance (n - 1, as pandas).

/// Bit position of 2^0 in an accumulator: values down to 2^-2176 are whole numbers
/// of its units (the smallest square of an f64 is 2^-2148).
const BIAS: i32 = 2176;
/// Adds between carry propagations: each add puts less than 2^32 into a limb.
const NORMALIZE_EVERY: u32 = 1 << 30;

/// An exact sum of numbers m 2^e (integers m, e >= -BIAS): signed 32-bit limbs
/// held in i64 with carries propagated lazily, over a window of limbs that grows as
/// values arrive. [`ExactSum::canonical`] gives the same limbs for the same value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExactSum {
    /// Index of `limbs[0]`: limb k holds units of 2^(32 (lo + k) - BIAS).
    lo: i32,
    limbs: Vec<i64>,
    pending: u32,
}

impl ExactSum {
    /// Adds `sign * mag * 2^exp` (exp >= -BIAS).
    #[inline]
    pub fn add_int(&mut self, negative: bool, mag: u128, exp: i32) {
        if mag == 0 {
            return;
        }
        let at = exp + BIAS;
        debug_assert!(at >= 0, "exponent {exp} below the accumulator's range");
        self.add_u64(negative, mag as u64, at);
        let high = (mag >> 64) as u64;
        if high != 0 {
            self.add_u64(negative, high, at + 64);
        }
    }

    /// Adds `sign * v * 2^(at - BIAS)`.
    #[inline]
    fn add_u64(&mut self, negative: bool, v: u64, at: i32) {
        if v == 0 {
            return;
        }
        if self.pending >= NORMALIZE_EVERY {
            self.normalize();
        }
        self.pending += 1;
        let limb = at >> 5;
        let t = (v as u128) << (at & 31);
        let words = [(t & 0xffff_ffff) as i64, ((t >> 32) & 0xffff_ffff) as i64, (t >> 64) as i64];
        self.cover(limb, limb + 3);
        let base = (limb - self.lo) as usize;
        for (k, w) in words.into_iter().enumerate() {
            if negative {
                self.limbs[base + k] -= w;
            } else {
                self.limbs[base + k] += w;
            }
        }
    }

    /// Makes the window cover limbs [from, to).
    #[inline]
    fn cover(&mut self, from: i32, to: i32) {
        if self.limbs.is_empty() {
            self.lo = from;
            self.limbs.resize((to - from) as usize, 0);
            return;
        }
        if from < self.lo {
            let grow = (self.lo - from) as usize;
            self.limbs.splice(0..0, std::iter::repeat_n(0, grow));
            self.lo = from;
        }
        let hi = self.lo + self.limbs.len() as i32;
        if to > hi {
            self.limbs.resize(self.limbs.len() + (to - hi) as usize, 0);
        }
    }

    /// Adds an f64 exactly (it must be finite).
    #[inline]
    pub fn add_f64(&mut self, x: f64) {
        let (neg, m, e) = decompose(x);
        self.add_int(neg, m as u128, e);
    }

    /// Adds x^2 exactly (x finite).
    #[inline]
    pub fn add_square(&mut self, x: f64) {
        let (_, m, e) = decompose(x);
        self.add_int(false, m as u128 * m as u128, 2 * e);
    }

    /// Adds another sum.
    pub fn merge(&mut self, other: &ExactSum) {
        if other.limbs.is_empty() {
            return;
        }
        if self.pending as u64 + other.pending as u64 + 1 >= NORMALIZE_EVERY as u64 {
            self.normalize();
        }
        let other_hi = other.lo + other.limbs.len() as i32;
        self.cover(other.lo, other_hi);
        let base = (other.lo - self.lo) as usize;
        for (k, &w) in other.limbs.iter().enumerate() {
            self.limbs[base + k] += w;
        }
        // Other's limbs may each hold up to `other.pending` adds.
        self.pending += other.pending.max(1);
        if self.pending >= NORMALIZE_EVERY {
            self.normalize();
        }
    }

    /// Propagates carries into the canonical form: every limb but the top in
    /// [0, 2^32), the top in [1, 2^32) or [-2^32, -1] (and -1 only when it is the only
    /// limb), no zero limb at either end.
    pub fn normalize(&mut self) {
        self.pending = 0;
        let mut carry = 0i64;
        for l in self.limbs.iter_mut() {
            let v = *l + carry;
            carry = v >> 32;
            *l = v & 0xffff_ffff;
        }
        while carry != 0 && carry != -1 {
            self.limbs.push(carry & 0xffff_ffff);
            carry >>= 32;
        }
        if carry == -1 {
            self.limbs.push(-1);
        }
        while self.limbs.last() == Some(&0) {
            self.limbs.pop();
        }
        while self.limbs.len() >= 2 && self.limbs.last() == Some(&-1) {
            self.limbs.pop();
            *self.limbs.last_mut().expect("two limbs") -= 1 << 32;
        }
        let zeros = self.limbs.iter().take_while(|&&l| l == 0).count();
        if zeros > 0 {
            self.limbs.drain(..zeros);
            self.lo += zeros as i32;
        }
        if self.limbs.is_empty() {
            self.lo = 0;
        }
    }

    /// The canonical form of the same value (for serialization and comparison).
    pub fn canonical(&self) -> ExactSum {
        let mut c = self.clone();
        c.normalize();
        c
    }

    /// (lo, limbs) of the canonical form.
    pub fn parts(&self) -> (i32, Vec<i64>) {
        let c = self.canonical();
        (c.lo, c.limbs)
    }

    pub fn from_parts(lo: i32, limbs: Vec<i64>) -> ExactSum {
        ExactSum { lo, limbs, pending: 1 }
    }

    pub fn is_zero(&self) -> bool {
        self.canonical().limbs.is_empty()
    }

    /// The value as a double-double (hi + lo, |lo| <= ulp(hi) / 2), to about 2^-104 relative.
    pub fn to_dd(&self) -> Dd {
        let c = self.canonical();
        if c.limbs.is_empty() {
            return Dd(0.0, 0.0);
        }
        let negative = *c.limbs.last().expect("not empty") < 0;
        // The magnitude, as limbs in [0, 2^32).
        let m = if negative {
            let mut m = ExactSum { lo: c.lo, limbs: c.limbs.iter().map(|&l| -l).collect(), pending: 1 };
            m.normalize();
            m
        } else {
            c
        };
        let (lo, mag) = (m.lo, m.limbs);
        // The top five limbs (at least 129 significant bits) decide the value to 2^-104.
        let mut acc = Dd(0.0, 0.0);
        let top = mag.len();
        for k in (top.saturating_sub(5)..top).rev() {
            let scale = 32 * (lo + k as i32) - BIAS;
            acc = acc.add_f64(ldexp(mag[k] as f64, scale));
        }
        if negative { acc.neg() } else { acc }
    }
}

/// x = (-1)^neg * m * 2^e with m an integer below 2^53 (x finite).
#[inline]
pub fn decompose(x: f64) -> (bool, u64, i32) {
    let bits = x.to_bits();
    let neg = bits >> 63 != 0;
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    if exp == 0 { (neg, frac, -1074) } else { (neg, frac | (1 << 52), exp - 1075) }
}

/// x 2^e, exact while the result is a normal f64 (or zero).
pub fn ldexp(x: f64, e: i32) -> f64 {
    let mut x = x;
    let mut e = e;
    while e > 1000 {
        x *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        x *= 2f64.powi(-1000);
        e += 1000;
    }
    x * 2f64.powi(e)
}

/// A double-double number hi + lo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dd(pub f64, pub f64);

#[inline]
fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

#[inline]
fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

// Double-double arithmetic by name (`add`, `mul`, `neg`), kept apart from the
// operators so that an f64 `+` is never mistaken for an exact one.
#[allow(clippy::should_implement_trait)]
impl Dd {
    pub fn neg(self) -> Dd {
        Dd(-self.0, -self.1)
    }

    pub fn add_f64(self, b: f64) -> Dd {
        let (s, e) = two_sum(self.0, b);
        let (hi, lo) = two_sum(s, e + self.1);
        Dd(hi, lo)
    }

    pub fn add(self, b: Dd) -> Dd {
        let (s, e) = two_sum(self.0, b.0);
        let (t, f) = two_sum(self.1, b.1);
        let (s, e) = two_sum(s, e + t);
        let (hi, lo) = two_sum(s, e + f);
        Dd(hi, lo)
    }

    pub fn mul(self, b: Dd) -> Dd {
        let (p, e) = two_prod(self.0, b.0);
        let (hi, lo) = two_sum(p, e + (self.0 * b.1 + self.1 * b.0));
        Dd(hi, lo)
    }

    /// self / d for a double d.
    pub fn div_f64(self, d: f64) -> Dd {
        let q1 = self.0 / d;
        let r = self.add(Dd::from(q1).mul(Dd(-d, 0.0)));
        let q2 = r.0 / d;
        let r = r.add(Dd::from(q2).mul(Dd(-d, 0.0)));
        let q3 = r.0 / d;
        let (hi, lo) = two_sum(q1, q2);
        Dd(hi, lo).add_f64(q3)
    }

    pub fn to_f64(self) -> f64 {
        self.0 + self.1
    }
}

impl From<f64> for Dd {
    fn from(x: f64) -> Dd {
        Dd(x, 0.0)
    }
}

/// Count, exact sums of values and of squares, min and max of one output in one group.
#[derive(Clone, Debug, PartialEq)]
pub struct Moments {
    pub n: u64,
    pub s1: ExactSum,
    pub s2: ExactSum,
    pub min: f64,
    pub max: f64,
    /// Infinite values seen (+inf, -inf): the sums hold finite values only.
    pub pos_inf: u64,
    pub neg_inf: u64,
}

impl Default for Moments {
    fn default() -> Self {
        Moments {
            n: 0,
            s1: ExactSum::default(),
            s2: ExactSum::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            pos_inf: 0,
            neg_inf: 0,
        }
    }
}

impl Moments {
    /// Adds one value; NaN (an empty cell) is not a value and is skipped.
    #[inline]
    pub fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.n += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
        if x.is_infinite() {
            if x > 0.0 {
                self.pos_inf += 1
            } else {
                self.neg_inf += 1
            }
            return;
        }
        self.s1.add_f64(x);
        self.s2.add_square(x);
    }

    /// Adds `n` values summarised by the GPU as their f32 mean and sum of squared
    /// deviations from it, min and max: S1 += n mean, S2 += m2 + n mean^2, exactly.
    pub fn add_block(&mut self, n: u32, mean: f32, m2: f32, min: f32, max: f32) {
        if n == 0 {
            return;
        }
        self.n += n as u64;
        self.min = self.min.min(min as f64);
        self.max = self.max.max(max as f64);
        if !(mean.is_finite() && m2.is_finite()) {
            // An infinite or overflowing block: its sums are not finite numbers.
            if mean > 0.0 || (mean.is_nan() && max == f32::INFINITY) {
                self.pos_inf += 1;
            } else {
                self.neg_inf += 1;
            }
            return;
        }
        let (neg, m, e) = decompose(mean as f64);
        self.s1.add_int(neg, m as u128 * n as u128, e);
        self.s2.add_int(false, m as u128 * m as u128 * n as u128, 2 * e);
        self.s2.add_f64(m2.max(0.0) as f64);
    }

    pub fn merge(&mut self, o: &Moments) {
        self.n += o.n;
        self.s1.merge(&o.s1);
        self.s2.merge(&o.s2);
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.pos_inf += o.pos_inf;
        self.neg_inf += o.neg_inf;
    }

    /// The mean, or None without values.
    pub fn mean(&self) -> Option<f64> {
        exact_mean(self.n, &self.s1, self.pos_inf, self.neg_inf)
    }

    /// The sample variance (n - 1), or None with fewer than two values.
    pub fn variance(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        if self.pos_inf + self.neg_inf > 0 {
            return Some(f64::NAN);
        }
        if self.min == self.max {
            return Some(0.0);
        }
        let n = self.n as f64;
        let s1 = self.s1.to_dd();
        let ss = self.s2.to_dd().add(s1.mul(s1).div_f64(n).neg());
        Some(ss.div_f64(n - 1.0).to_f64().max(0.0))
    }

    /// The sample standard deviation (n - 1).
    pub fn std(&self) -> Option<f64> {
        self.variance().map(f64::sqrt)
    }
}

/// The mean of `n` values whose finite ones sum exactly to `s1`, with `pos_inf`
/// and `neg_inf` infinite ones: None without values, an infinity (or NaN for
/// both signs) when there are infinite values.
fn exact_mean(n: u64, s1: &ExactSum, pos_inf: u64, neg_inf: u64) -> Option<f64> {
    if n == 0 {
        return None;
    }
    match (pos_inf > 0, neg_inf > 0) {
        (true, true) => Some(f64::NAN),
        (true, false) => Some(f64::INFINITY),
        (false, true) => Some(f64::NEG_INFINITY),
        _ => Some(s1.to_dd().div_f64(n as f64).to_f64()),
    }
}

/// Count and exact sum: a mean (what `best` reports at the chosen and reference values).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeanAcc {
    pub n: u64,
    pub s1: ExactSum,
    pub pos_inf: u64,
    pub neg_inf: u64,
}

impl MeanAcc {
    /// Adds one value; NaN is skipped.
    #[inline]
    pub fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        self.n += 1;
        if x.is_infinite() {
            if x > 0.0 {
                self.pos_inf += 1
            } else {
                self.neg_inf += 1
            }
            return;
        }
        self.s1.add_f64(x);
    }

    /// Adds `n` values of f32 mean `mean` (a GPU block): S1 += n mean exactly.
    pub fn add_block(&mut self, n: u32, mean: f32) {
        if n == 0 {
            return;
        }
        self.n += n as u64;
        if !mean.is_finite() {
            if mean > 0.0 {
                self.pos_inf += 1
            } else {
                self.neg_inf += 1
            }
            return;
        }
        let (neg, m, e) = decompose(mean as f64);
        self.s1.add_int(neg, m as u128 * n as u128, e);
    }

    pub fn merge(&mut self, o: &MeanAcc) {
        self.n += o.n;
        self.s1.merge(&o.s1);
        self.pos_inf += o.pos_inf;
        self.neg_inf += o.neg_inf;
    }

    /// The mean, or None without values.
    pub fn mean(&self) -> Option<f64> {
        exact_mean(self.n, &self.s1, self.pos_inf, self.neg_inf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_of(xs: &[f64]) -> ExactSum {
        let mut s = ExactSum::default();
        for &x in xs {
            s.add_f64(x);
        }
        s
    }

    #[test]
    fn sums_are_exact_and_independent_of_order() {
        // 1e16 + 1 - 1e16 loses the 1 in f64; the exact sum keeps it.
        let xs = [1e16, 1.0, -1e16, 3.5, 1e-300, -2.25];
        let a = exact_of(&xs);
        assert_eq!(a.to_dd().to_f64(), 1.0 + 3.5 - 2.25 + 1e-300);
        let mut rev = xs;
        rev.reverse();
        assert_eq!(a.canonical(), exact_of(&rev).canonical());
        // Split and merged in any way.
        let (mut left, right) = (exact_of(&xs[..2]), exact_of(&xs[2..]));
        left.merge(&right);
        assert_eq!(left.canonical(), a.canonical());
        // Cancelling to zero, and negative totals.
        assert!(exact_of(&[1.5, -1.5, 1e300, -1e300]).is_zero());
        assert_eq!(exact_of(&[-3.0, 1.0]).to_dd().to_f64(), -2.0);
        assert_eq!(exact_of(&[-(2f64.powi(70)), 1.0]).to_dd(), Dd(-(2f64.powi(70)), 1.0));
    }

    #[test]
    fn squares_are_exact() {
        // (1 + 2^-30)^2 = 1 + 2^-29 + 2^-60: the last term is below f64's resolution of the square.
        let x = 1.0 + 2f64.powi(-30);
        let mut s = ExactSum::default();
        s.add_square(x);
        s.add_f64(-1.0);
        s.add_f64(-(2f64.powi(-29)));
        assert_eq!(s.to_dd().to_f64(), 2f64.powi(-60));
    }

    #[test]
    fn many_adds_do_not_overflow_limbs() {
        // Each add puts up to 2^32 - 1 into one limb; more than 2^31 of them would overflow i64 without normalizing.
        let mut s = ExactSum { pending: NORMALIZE_EVERY - 2, ..ExactSum::default() };
        for _ in 0..10 {
            s.add_f64(4294967295.0);
        }
        assert_eq!(s.to_dd().to_f64(), 10.0 * 4294967295.0);
    }

    #[test]
    fn moments_match_two_pass_formulas() {
        let xs: Vec<f64> = (0..1000).map(|i| 1e10 + (i as f64 * 0.37).sin() * 1e3).collect();
        let mut m = Moments::default();
        for &x in &xs {
            m.add(x);
        }
        m.add(f64::NAN);
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        assert_eq!(m.n, 1000);
        assert!((m.mean().unwrap() / mean - 1.0).abs() < 1e-15);
        assert!((m.variance().unwrap() / var - 1.0).abs() < 1e-9, "{} vs {var}", m.variance().unwrap());
        let mut c = Moments::default();
        c.add(2.0);
        c.add(2.0);
        assert_eq!(c.variance(), Some(0.0));
        let mut one = Moments::default();
        one.add(5.0);
        assert_eq!((one.mean(), one.std()), (Some(5.0), None));
    }

    #[test]
    fn gpu_blocks_add_their_exact_contribution() {
        // A block of values whose f32 mean and m2 are exact: 1, 2, 3 (mean 2, m2 2).
        let mut a = Moments::default();
        a.add_block(3, 2.0, 2.0, 1.0, 3.0);
        let mut b = Moments::default();
        for x in [1.0, 2.0, 3.0] {
            b.add(x);
        }
        assert_eq!(a.s1.canonical(), b.s1.canonical());
        assert_eq!(a.s2.canonical(), b.s2.canonical());
        assert_eq!((a.min, a.max, a.n), (1.0, 3.0, 3));
    }
}
