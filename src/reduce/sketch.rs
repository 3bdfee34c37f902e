//! Quantiles from a deterministic, mergeable sketch: DDSketch (Masson, Rim and
//! Lee, "DDSketch: a fast and fully-mergeable quantile sketch with
//! relative-error guarantees", VLDB 2019) with bucket counts that only add up.
//!
//! A value x > 0 falls in bucket i = ceil(ln x / ln gamma), gamma = (1 + a) / (1 - a),
//! which covers (gamma^(i-1), gamma^i]; negative values in a second store by |x|,
//! zeros in a count of their own. The quantile q of n values is the bucket that
//! holds the value of rank floor(q (n - 1)) (0-based, ascending), reported as
//! 2 gamma^i / (gamma + 1) and clamped to the group's [min, max]: within a
//! relative error [`ALPHA`] of that order statistic.
//!
//! Each store keeps at most [`MAX_BUCKETS`] buckets below the largest index it has
//! seen; values further below are counted in the lowest kept bucket. A value's final
//! bucket is max(its index, top - MAX_BUCKETS + 1) with top the largest index over
//! all values, whatever the order in which they came, so two sketches merge by
//! adding counts and the result does not depend on order, threads, chunks or
//! shards. The bound holds for every quantile whose value has |x| >= max|x| /
//! gamma^(MAX_BUCKETS - 1) (about max|x| x 1.8e-18); only smaller nonzero values
//! can be reported larger than they are.

/// Relative accuracy of every quantile.
pub const ALPHA: f64 = 0.01;
/// Buckets kept per sign.
pub const MAX_BUCKETS: usize = 2048;

fn gamma() -> f64 {
    (1.0 + ALPHA) / (1.0 - ALPHA)
}

fn ln_gamma() -> f64 {
    gamma().ln()
}

/// The bucket of x > 0 (finite).
#[inline]
fn index(x: f64) -> i32 {
    (x.ln() / ln_gamma()).ceil() as i32
}

/// The value reported for bucket i: within ALPHA of any value in (gamma^(i-1), gamma^i].
fn value(i: i32) -> f64 {
    2.0 * (i as f64 * ln_gamma()).exp() / (gamma() + 1.0)
}

/// Positions of the device's threshold table ([`device_buckets`]): a power of two
/// above the number of buckets that positive f32 values reach (about 9,700).
pub const DEVICE_TABLE: usize = 16384;

/// The bucket of the positive f32 with these bits (infinity included), as
/// [`Sketch::add`] computes it for that f32 read as f64.
fn f32_index(bits: u32) -> i32 {
    index((f32::from_bits(bits) as f64).min(f64::MAX))
}

/// The table with which a device finds, for every f32, the bucket that
/// [`Sketch::add`] gives it in f64 (`shaders/reduce.wgsl`, `q_key`).
///
/// Entry k holds the smallest positive f32 (as bits) whose bucket is
/// `buckets[k]`; the buckets rise with k, and `thresholds` is padded to
/// [`DEVICE_TABLE`] entries with `u32::MAX`. The bucket of a positive f32 with bits
/// u is then `buckets[k]` for the largest k with `thresholds[k] <= u`: a binary
/// search over bit patterns, which order positive floats as their values do.
///
/// Why that is exact: the host's bucket of an f32 x is ceil(ln(x as f64) / ln
/// gamma). x as f64 is exact, and two consecutive positive f32 differ by at least
/// 2^-24 of their value, so their logarithms differ by more than 2^-25, far more
/// than the error of f64's `ln` (under an ulp, at most 2^-45 for |ln x| < 104);
/// so the computed ln rises strictly over the f32 values, a division by a
/// positive constant and `ceil` keep that order, and the bucket is a
/// nondecreasing step function of the f32's bits. Each step is found below by a
/// binary search over bit patterns with [`f32_index`] itself, and [`build`] checks
/// the steps where they are found: each threshold is in its bucket, the pattern
/// just below it in the bucket before, and the buckets rise.
pub struct DeviceBuckets {
    pub thresholds: Vec<u32>,
    pub buckets: Vec<i32>,
    /// The entry of bucket b, for the buckets of normal f32, is b + shift: the
    /// device guesses b from b's formula in f32 (with `inv_ln_gamma`, 1 / ln gamma
    /// as f32) and checks the guess against the thresholds before it takes it.
    pub shift: i32,
    pub inv_ln_gamma: f32,
}

/// Device sketch keys (`shaders/reduce.wgsl`): 0 a zero, 1 + k a positive value of
/// table entry k, 1 + DEVICE_TABLE + k a negative one (by |x|).
pub const DEVICE_NEGATIVE: u32 = 1 + DEVICE_TABLE as u32;

/// The table, built once; an error if the host's logarithm does not give the steps
/// the table assumes (the device then cannot match the host's buckets).
pub fn device_buckets() -> anyhow::Result<&'static DeviceBuckets> {
    static TABLE: std::sync::OnceLock<Result<DeviceBuckets, String>> = std::sync::OnceLock::new();
    TABLE.get_or_init(build).as_ref().map_err(|e| anyhow::anyhow!("{e}"))
}

fn build() -> Result<DeviceBuckets, String> {
    const INF: u32 = 0x7f80_0000;
    let (mut thresholds, mut buckets) = (vec![1u32], vec![f32_index(1)]);
    loop {
        let (at, b) = (*thresholds.last().expect("one"), *buckets.last().expect("one"));
        if f32_index(INF) <= b {
            break;
        }
        // The smallest pattern in (at, INF] whose bucket is above b.
        let (mut lo, mut hi) = (at, INF);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if f32_index(mid) > b { hi = mid } else { lo = mid }
        }
        let next = f32_index(hi);
        if f32_index(hi - 1) != b || next <= b {
            return Err(format!(
                "the host's logarithm is not monotone at f32 bits {hi:#x} (buckets {} then {next}); quantiles cannot be reduced on this device",
                f32_index(hi - 1)
            ));
        }
        thresholds.push(hi);
        buckets.push(next);
    }
    if thresholds.len() > DEVICE_TABLE {
        return Err(format!("{} buckets do not fit the device's table of {DEVICE_TABLE}", thresholds.len()));
    }
    // The smallest normal f32's entry, from which buckets rise one by one.
    let first_normal = thresholds.partition_point(|&t| t <= 0x0080_0000) - 1;
    let shift = first_normal as i32 - buckets[first_normal];
    thresholds.resize(DEVICE_TABLE, u32::MAX);
    Ok(DeviceBuckets { thresholds, buckets, shift, inv_ln_gamma: (1.0 / ln_gamma()) as f32 })
}

impl DeviceBuckets {
    /// The bucket of the positive f32 with bits `bits` (finite or infinite), by the table.
    pub fn bucket(&self, bits: u32) -> i32 {
        let k = self.thresholds.partition_point(|&t| t <= bits) - 1;
        self.buckets[k]
    }
}

/// Counts of buckets [lo, lo + counts.len()), the top bucket `counts.len() - 1`
/// being the largest index seen.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    lo: i32,
    counts: Vec<u64>,
}

impl Store {
    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn top(&self) -> Option<i32> {
        (!self.counts.is_empty()).then(|| self.lo + self.counts.len() as i32 - 1)
    }

    /// Adds `count` values of bucket `i`.
    #[inline]
    fn add(&mut self, i: i32, count: u64) {
        if self.counts.is_empty() {
            self.lo = i;
            self.counts.push(count);
            return;
        }
        let top = self.top().expect("not empty");
        if i > top {
            self.counts.resize(self.counts.len() + (i - top) as usize, 0);
            self.collapse();
        }
        let floor = self.top().expect("not empty") - MAX_BUCKETS as i32 + 1;
        let i = i.max(floor);
        if i < self.lo {
            let grow = (self.lo - i) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.lo = i;
        }
        self.counts[(i - self.lo) as usize] += count;
    }

    /// Folds buckets below top - MAX_BUCKETS + 1 into that bucket.
    fn collapse(&mut self) {
        if self.counts.len() <= MAX_BUCKETS {
            return;
        }
        let cut = self.counts.len() - MAX_BUCKETS;
        let folded: u64 = self.counts.drain(..cut).sum();
        self.counts[0] += folded;
        self.lo += cut as i32;
    }

    fn merge(&mut self, o: &Store) {
        for (k, &c) in o.counts.iter().enumerate() {
            if c > 0 {
                self.add(o.lo + k as i32, c);
            }
        }
    }

    /// Without zero counts at either end.
    fn canonical(&self) -> Store {
        let first = self.counts.iter().position(|&c| c > 0);
        match first {
            None => Store::default(),
            Some(f) => {
                let last = self.counts.iter().rposition(|&c| c > 0).expect("a nonzero count");
                Store { lo: self.lo + f as i32, counts: self.counts[f..=last].to_vec() }
            }
        }
    }
}

/// A quantile sketch of one output in one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sketch {
    pub positive: Store,
    pub negative: Store,
    pub zeros: u64,
}

impl Sketch {
    /// Adds a value; NaN is skipped. Infinite values count as the largest bucket
    /// of their sign reachable from f64::MAX.
    #[inline]
    pub fn add(&mut self, x: f64) {
        if x.is_nan() {
            return;
        }
        if x == 0.0 {
            self.zeros += 1;
            return;
        }
        let m = x.abs().min(f64::MAX);
        if x > 0.0 { self.positive.add(index(m), 1) } else { self.negative.add(index(m), 1) }
    }

    /// Adds `count` values of a device sketch key ([`DEVICE_NEGATIVE`]): the same as
    /// adding each of those values; an error for a key that no value has.
    pub fn add_device(&mut self, t: &DeviceBuckets, key: u32, count: u64) -> anyhow::Result<()> {
        let n = t.buckets.len() as u32;
        match key {
            0 => self.zeros += count,
            k if (1..1 + n).contains(&k) => self.positive.add(t.buckets[k as usize - 1], count),
            k if (DEVICE_NEGATIVE..DEVICE_NEGATIVE + n).contains(&k) => self.negative.add(t.buckets[(k - DEVICE_NEGATIVE) as usize], count),
            _ => anyhow::bail!("the device returned a quantile bucket key ({key}) that no value has"),
        }
        Ok(())
    }

    pub fn merge(&mut self, o: &Sketch) {
        self.positive.merge(&o.positive);
        self.negative.merge(&o.negative);
        self.zeros += o.zeros;
    }

    pub fn count(&self) -> u64 {
        self.positive.total() + self.negative.total() + self.zeros
    }

    /// The q-quantile (0 <= q <= 1), clamped to [min, max]; None when empty.
    pub fn quantile(&self, q: f64, min: f64, max: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (q * (n - 1) as f64).floor() as u64;
        // Ascending: negatives from the largest |x| down, zeros, positives up.
        let mut seen = 0u64;
        let neg = &self.negative;
        for k in (0..neg.counts.len()).rev() {
            seen += neg.counts[k];
            if seen > rank {
                return Some((-value(neg.lo + k as i32)).clamp(min, max));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(0.0f64.clamp(min, max));
        }
        let pos = &self.positive;
        for (k, &c) in pos.counts.iter().enumerate() {
            seen += c;
            if seen > rank {
                return Some(value(pos.lo + k as i32).clamp(min, max));
            }
        }
        unreachable!("the ranks add up to the count")
    }

    /// The same sketch with no zero counts at the ends of its stores.
    pub fn canonical(&self) -> Sketch {
        Sketch { positive: self.positive.canonical(), negative: self.negative.canonical(), zeros: self.zeros }
    }

    /// (lo, counts) of each store, canonical, for serialization.
    pub fn parts(&self) -> [(i32, Vec<u64>); 2] {
        let c = self.canonical();
        [(c.positive.lo, c.positive.counts), (c.negative.lo, c.negative.counts)]
    }

    pub fn from_parts(zeros: u64, positive: (i32, Vec<u64>), negative: (i32, Vec<u64>)) -> Sketch {
        Sketch { positive: Store { lo: positive.0, counts: positive.1 }, negative: Store { lo: negative.0, counts: negative.1 }, zeros }
    }

    /// Bytes held (for the memory bound).
    pub fn max_bytes() -> usize {
        2 * MAX_BUCKETS * 8 + 64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order statistic the sketch reports: rank floor(q (n - 1)) of the sorted values.
    fn order_stat(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    #[test]
    fn quantiles_are_within_alpha_of_the_order_statistic() {
        let mut xs: Vec<f64> = (0..20_000).map(|i| ((i as f64 * 0.7391).sin() * 7.0).exp() - 3.0).collect();
        xs.extend([0.0; 100]);
        let mut s = Sketch::default();
        for &x in &xs {
            s.add(x);
        }
        xs.sort_by(f64::total_cmp);
        let (min, max) = (xs[0], xs[xs.len() - 1]);
        for q in [0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0] {
            let want = order_stat(&xs, q);
            let got = s.quantile(q, min, max).unwrap();
            assert!((got - want).abs() <= ALPHA * want.abs() * (1.0 + 1e-12), "q{q}: {got} vs {want}");
        }
    }

    /// A xorshift64 generator: the test's bit patterns, the same on every run.
    fn bits(n: usize) -> impl Iterator<Item = u32> {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        (0..n).map(move |_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u32
        })
    }

    #[test]
    fn the_device_table_gives_the_hosts_bucket_of_every_f32_tried() {
        let t = device_buckets().unwrap();
        let n = t.buckets.len();
        // f32 reaches buckets from its smallest subnormal (1.4e-45) to its largest
        // finite value (3.4e38), and infinity counts as f64::MAX.
        assert_eq!(t.buckets[0], index(1.4012984643e-45));
        assert_eq!(t.buckets[n - 2], index(f32::MAX as f64));
        assert_eq!(t.buckets[n - 1], index(f64::MAX));
        assert!(n > 9000 && n < DEVICE_TABLE, "{n} buckets");
        // From the smallest normal f32 to the largest finite one, entry k is bucket
        // k - shift (the device's guess), and no bucket is skipped.
        let normal = t.thresholds.partition_point(|&u| u <= 0x0080_0000) - 1;
        for k in normal..n - 1 {
            assert_eq!(t.buckets[k], k as i32 - t.shift, "entry {k}");
        }
        let mut tried = 0;
        // Random patterns (every positive finite f32 and infinity), each threshold and
        // its neighbours, and the ends of the range.
        let edges = t.thresholds[..n].iter().flat_map(|&u| [u.saturating_sub(1).max(1), u, u + 1]);
        for u in bits(2_000_000).map(|b| b & 0x7fff_ffff).filter(|u| (1..=0x7f80_0000).contains(u)).chain(edges).chain([
            1,
            2,
            0x7f7f_ffff,
            0x7f80_0000,
        ]) {
            let x = f32::from_bits(u) as f64;
            let want = (x.min(f64::MAX).ln() / ln_gamma()).ceil() as i32;
            assert_eq!(t.bucket(u), want, "f32 bits {u:#x} ({x:e})");
            tried += 1;
        }
        assert!(tried > 1_900_000);
    }

    #[test]
    fn device_keys_add_as_the_values_do() {
        let t = device_buckets().unwrap();
        // Values of both signs over f32's whole range, zeros of both signs, infinities.
        let mut xs: Vec<f32> = bits(50_000).map(f32::from_bits).filter(|x| !x.is_nan()).collect();
        xs.extend([0.0, -0.0, 0.0, f32::INFINITY, f32::NEG_INFINITY, 1.0, -1.0, 1.0]);
        let mut want = Sketch::default();
        let mut keys = std::collections::BTreeMap::new();
        for &x in &xs {
            want.add(x as f64);
            // The key the device computes (shaders/reduce.wgsl, q_key), written anew here.
            let u = x.to_bits() & 0x7fff_ffff;
            let key = if u == 0 {
                0
            } else {
                let k = t.thresholds.partition_point(|&v| v <= u) as u32;
                if x.is_sign_negative() { DEVICE_NEGATIVE + k - 1 } else { k }
            };
            *keys.entry(key).or_insert(0u64) += 1;
        }
        let mut got = Sketch::default();
        // In reverse key order, as counts: the same sketch.
        for (&k, &c) in keys.iter().rev() {
            got.add_device(t, k, c).unwrap();
        }
        assert_eq!(got.canonical(), want.canonical());
        assert_eq!(got.zeros, 3);
        assert!(got.add_device(t, DEVICE_NEGATIVE - 1, 1).is_err());
        assert!(got.add_device(t, DEVICE_NEGATIVE + t.buckets.len() as u32, 1).is_err());
    }

    #[test]
    fn any_order_and_split_gives_the_same_sketch() {
        let xs: Vec<f64> = (0..5000).map(|i| 10f64.powf((i as f64 * 0.123).sin() * 25.0)).collect();
        let mut a = Sketch::default();
        for &x in &xs {
            a.add(x);
        }
        let mut b = Sketch::default();
        for &x in xs.iter().rev() {
            b.add(x);
        }
        let (mut c, mut d) = (Sketch::default(), Sketch::default());
        for (k, &x) in xs.iter().enumerate() {
            if k % 3 == 0 { c.add(x) } else { d.add(x) }
        }
        c.merge(&d);
        // 50 decades exceed the kept buckets: the lowest are collapsed, the same way each time.
        assert!(a.positive.counts.len() <= MAX_BUCKETS);
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a.canonical(), c.canonical());
    }
}
