//! Sampling designs: every value is a pure function of (seed, row, axis), so any
//! row of a sweep can be computed alone (shards, resume, `scenario --index`).
//!
//! - [`unit`]: counter-based uniform draws keyed by (seed, row, axis), for `random`;
//! - [`Permutation`]: a keyed bijection of 0..n (Feistel network with cycle
//!   walking), giving each row its Latin hypercube stratum per axis, for `lhs`;
//! - [`Sobol`]: Owen-scrambled Sobol points addressed by index, for `sobol`;
//! - [`Saltelli`]: blocks of rows from one Sobol point, laid out as SALib's
//!   Saltelli sample, for `saltelli` (Sobol indices);
//! - [`Morris`]: one-at-a-time trajectories on a grid of levels, laid out as
//!   SALib's Morris sample, for `morris` (elementary effects).

use std::sync::OnceLock;

/// The splitmix64 finaliser: a bijective mix of 64 bits.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// 64 random bits keyed by (seed, row, axis, stream).
#[inline]
pub fn bits(seed: u64, row: u64, axis: usize, stream: u64) -> u64 {
    let k = mix64(seed ^ 0x6A09_E667_F3BC_C908);
    let k = mix64(k ^ row);
    mix64(k ^ ((axis as u64) << 8 | stream).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// A uniform draw in [0, 1) keyed by (seed, row, axis, stream), 53 bits.
#[inline]
pub fn unit(seed: u64, row: u64, axis: usize, stream: u64) -> f64 {
    (bits(seed, row, axis, stream) >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A keyed bijection of 0..n that can be evaluated at one point.
#[derive(Clone, Copy, Debug)]
pub struct Permutation {
    n: u64,
    half_bits: u32,
    key: u64,
}

impl Permutation {
    pub fn new(n: u64, key: u64) -> Permutation {
        // A Feistel network permutes 0..4^h; cycle walking restricts it to 0..n.
        let mut half_bits = 1;
        while half_bits < 32 && (1u64 << (2 * half_bits)) < n {
            half_bits += 1;
        }
        Permutation { n, half_bits, key: mix64(key) }
    }

    /// The mixed key and the half width of the Feistel network (the device's
    /// expansion evaluates the same network, `shaders/expand.wgsl`).
    pub fn parts(&self) -> (u64, u32) {
        (self.key, self.half_bits)
    }

    fn feistel(&self, x: u64) -> u64 {
        let mask = (1u64 << self.half_bits) - 1;
        let (mut l, mut r) = (x >> self.half_bits, x & mask);
        for round in 0..4u64 {
            let f = mix64(self.key ^ round.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ r) & mask;
            (l, r) = (r, l ^ f);
        }
        (l << self.half_bits) | r
    }

    /// The image of `x` (x < n).
    pub fn apply(&self, x: u64) -> u64 {
        let mut y = self.feistel(x);
        while y >= self.n {
            y = self.feistel(y);
        }
        y
    }
}

/// Latin hypercube coordinate of `row` on `axis` in [0, 1): row's stratum on that
/// axis (a keyed permutation of the rows) plus a uniform offset inside it.
pub fn lhs_unit(seed: u64, samples: u64, row: u64, axis: usize) -> f64 {
    let stratum = Permutation::new(samples, bits(seed, 0, axis, 1)).apply(row);
    (stratum as f64 + unit(seed, row, axis, 2)) / samples as f64
}

/// Sobol dimensions available (direction numbers of Joe and Kuo 2008).
pub const SOBOL_DIMENSIONS: usize = 64;
/// Sobol points are addressed by a 32-bit index.
pub const SOBOL_MAX_SAMPLES: u64 = 1 << 32;

/// Owen-scrambled Sobol points, 32 bits deep.
pub struct Sobol {
    /// v[d][j]: direction number j of dimension d, left-aligned in 32 bits.
    v: Vec<[u32; 32]>,
}

impl Sobol {
    /// The shared table of direction numbers.
    pub fn get() -> &'static Sobol {
        static TABLE: OnceLock<Sobol> = OnceLock::new();
        TABLE.get_or_init(Sobol::build)
    }

    fn build() -> Sobol {
        let mut v = vec![std::array::from_fn(|j| 1u32 << (31 - j))]; // dimension 1: van der Corput
        for line in include_str!("joe-kuo-6.64.txt").lines().filter(|l| !l.starts_with('#')) {
            let nums: Vec<u32> = line.split_whitespace().map(|x| x.parse().expect("direction numbers")).collect();
            let (s, a, m) = (nums[1] as usize, nums[2], &nums[3..]);
            let mut d = [0u32; 32];
            for j in 0..32 {
                d[j] = if j < s {
                    m[j] << (31 - j)
                } else {
                    let mut x = d[j - s] ^ (d[j - s] >> s);
                    for k in 1..s {
                        if (a >> (s - 1 - k)) & 1 == 1 {
                            x ^= d[j - k];
                        }
                    }
                    x
                };
            }
            v.push(d);
        }
        assert_eq!(v.len(), SOBOL_DIMENSIONS);
        Sobol { v }
    }

    /// The unscrambled Sobol point `index` in dimension `dim`, as 32 bits.
    pub fn raw(&self, index: u32, dim: usize) -> u32 {
        let mut x = 0;
        let mut i = index;
        let mut j = 0;
        while i != 0 {
            if i & 1 == 1 {
                x ^= self.v[dim][j];
            }
            i >>= 1;
            j += 1;
        }
        x
    }

    /// Point `index` in dimension `dim` under the Owen scramble keyed by `seed`, in [0, 1).
    ///
    /// Nested uniform scrambling: bit b is flipped by a keyed coin that depends on the
    /// b bits above it, which maps each elementary interval onto one of the same size
    /// and so keeps the net's stratification. Below the 32nd bit a uniform offset fills in.
    pub fn sample(&self, index: u32, dim: usize, seed: u64) -> f64 {
        let x = self.raw(index, dim);
        let key = bits(seed, 0, dim, 3);
        let mut out = 0u32;
        for b in 0..32 {
            let prefix = if b == 0 { 0 } else { (x >> (32 - b)) as u64 };
            let flip = (mix64(key ^ (prefix | (1u64 << b))) & 1) as u32;
            out |= (((x >> (31 - b)) & 1) ^ flip) << (31 - b);
        }
        (out as f64 + unit(seed, index as u64, dim, 4)) / 4_294_967_296.0
    }
}

/// Where a row sits in its Saltelli block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// Every axis from A.
    A,
    /// Axis j from B, the others from A.
    AB(usize),
    /// Axis j from A, the others from B (second order only).
    BA(usize),
    /// Every axis from B.
    B,
}

/// The Saltelli layout of SALib 1.6's `sobol.sample`: per base point a block of
/// k + 2 rows (A, AB_1 .. AB_k, B), or 2k + 2 with second order (A, AB_1 .. AB_k,
/// BA_1 .. BA_k, B). Base point i is point i of a 2k-dimensional Owen-scrambled
/// Sobol sequence keyed by the seed: its first k coordinates are A, its last k B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Saltelli {
    /// Number of axes.
    pub k: usize,
    pub second_order: bool,
    pub seed: u64,
}

/// Saltelli designs have at most this many axes (A and B take 2k Sobol dimensions).
pub const SALTELLI_MAX_AXES: usize = SOBOL_DIMENSIONS / 2;

impl Saltelli {
    /// Rows per base point.
    pub fn block_rows(&self) -> u64 {
        if self.second_order { 2 * self.k as u64 + 2 } else { self.k as u64 + 2 }
    }

    /// The position of row `s` (0 <= s < block_rows) within its block.
    pub fn position(&self, s: u64) -> Position {
        let (s, k) = (s as usize, self.k);
        match s {
            0 => Position::A,
            _ if s <= k => Position::AB(s - 1),
            _ if self.second_order && s <= 2 * k => Position::BA(s - 1 - k),
            _ => Position::B,
        }
    }

    /// The unit coordinate of `row` on `axis`.
    pub fn unit(&self, row: u64, axis: usize) -> f64 {
        let block = self.block_rows();
        let from_b = match self.position(row % block) {
            Position::A => false,
            Position::AB(j) => axis == j,
            Position::BA(j) => axis != j,
            Position::B => true,
        };
        let dim = if from_b { self.k + axis } else { axis };
        Sobol::get().sample((row / block) as u32, dim, self.seed)
    }
}

/// The trajectories of SALib 1.6's `morris.sample` (without optimised trajectories):
/// trajectory t is k + 1 rows. Its start x* takes on each axis one of the levels
/// 0, 1/(p-1), ..., (p/2 - 1)/(p-1) (keyed by seed, t, axis); each axis moves once,
/// by delta = p / (2 (p - 1)), at the step a keyed permutation of the axes gives it,
/// up from x* or, with a keyed sign of -1, down from x* + delta to x*. So every unit
/// coordinate is a level i / (p - 1), and rows s - 1 and s differ in one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Morris {
    /// Number of axes.
    pub k: usize,
    /// Number of levels p (even, at least 2).
    pub levels: u64,
    pub seed: u64,
}

impl Morris {
    /// Rows per trajectory.
    pub fn block_rows(&self) -> u64 {
        self.k as u64 + 1
    }

    /// delta = p / (2 (p - 1)), the step in unit coordinates.
    pub fn delta(&self) -> f64 {
        self.levels as f64 / (2.0 * (self.levels - 1) as f64)
    }

    /// Trajectory `t`'s start level on `axis` (0 .. p/2 - 1), its direction (true: up)
    /// and the step (1 ..= k) at which the axis moves.
    fn axis_plan(&self, t: u64, axis: usize) -> (u64, bool, u64) {
        let start = (unit(self.seed, t, axis, 5) * (self.levels / 2) as f64) as u64;
        let up = bits(self.seed, t, axis, 6) & 1 == 1;
        let step = Permutation::new(self.k as u64, bits(self.seed, t, 0, 7)).apply(axis as u64) + 1;
        (start.min(self.levels / 2 - 1), up, step)
    }

    /// The level (0 ..= p - 1) of `row` on `axis`.
    pub fn level(&self, row: u64, axis: usize) -> u64 {
        let (t, s) = (row / self.block_rows(), row % self.block_rows());
        let (start, up, step) = self.axis_plan(t, axis);
        let moved = s >= step;
        start + if moved == up { self.levels / 2 } else { 0 }
    }

    /// The unit coordinate of `row` on `axis`: its level / (p - 1).
    pub fn unit(&self, row: u64, axis: usize) -> f64 {
        self.level(row, axis) as f64 / (self.levels - 1) as f64
    }

    /// Trajectory `t`'s steps in order: (axis, up) for steps 1 ..= k, where row
    /// s of the trajectory differs from row s - 1 in that axis only.
    pub fn steps(&self, t: u64) -> Vec<(usize, bool)> {
        let mut steps = vec![(0, false); self.k];
        for axis in 0..self.k {
            let (_, up, step) = self.axis_plan(t, axis);
            steps[step as usize - 1] = (axis, up);
        }
        steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_bijections() {
        for n in [1u64, 2, 3, 10, 17, 1000, 4097] {
            for key in [0u64, 1, 99] {
                let p = Permutation::new(n, key);
                let mut seen = vec![false; n as usize];
                for x in 0..n {
                    let y = p.apply(x) as usize;
                    assert!(!seen[y], "n {n} key {key}: {y} twice");
                    seen[y] = true;
                }
            }
        }
    }

    #[test]
    fn unscrambled_sobol_starts_as_published() {
        // Dimension 2 (s = 1, a = 0, m1 = 1): v1 = 1/2, v2 = 3/4, v3 = 5/8, so in natural
        // (not Gray-code) order the points are 0, v1, v2, v1^v2, v3, v3^v1, v3^v2, v3^v2^v1.
        let s = Sobol::get();
        let got: Vec<f64> = (0..8).map(|i| s.raw(i, 1) as f64 / 4_294_967_296.0).collect();
        assert_eq!(got, [0.0, 0.5, 0.75, 0.25, 0.625, 0.125, 0.375, 0.875]);
        // Dimension 1 is van der Corput's sequence.
        let got: Vec<f64> = (0..4).map(|i| s.raw(i, 0) as f64 / 4_294_967_296.0).collect();
        assert_eq!(got, [0.0, 0.5, 0.25, 0.75]);
    }
}
