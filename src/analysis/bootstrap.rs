//! Seeded bootstrap over blocks (saltelli base points, morris trajectories), and
//! the normal quantile for SALib's normal-approximation intervals.
//!
//! Every estimator here is a function of sums over blocks of a few per-block
//! terms, so the sums of all R resamples are one matrix product: counts (R x N,
//! how often resample r drew block i) times terms (N x M). Resample r's draws
//! are keyed by (seed, r, draw), so the result does not depend on the thread
//! count: each group of resamples is one single-threaded product of fixed shape.

use rayon::prelude::*;

use crate::design::bits;

/// Resamples per product (and per parallel task).
const RESAMPLES_PER_TASK: usize = 16;

/// How often each of `n` blocks is drawn in resample `r` (n draws with replacement).
fn counts(seed: u64, r: usize, n: usize, out: &mut [f64]) {
    out.fill(0.0);
    for d in 0..n {
        // Lemire's multiply-shift: uniform on 0..n for n < 2^32 (bias below 2^-32 otherwise).
        let i = ((bits(seed, r as u64, 0, 8 + ((d as u64) << 8)) >> 32) * n as u64) >> 32;
        out[i as usize] += 1.0;
    }
}

/// The sums of each of the `m` terms over each of `resamples` bootstrap
/// resamples of the `n` blocks: `terms` is n x m (row-major), the result
/// resamples x m (row-major).
pub fn resampled_sums(terms: &[f64], n: usize, m: usize, resamples: usize, seed: u64) -> Vec<f64> {
    assert_eq!(terms.len(), n * m);
    assert!(n < 1 << 32, "at most 2^32 blocks");
    let mut sums = vec![0.0; resamples * m];
    if n == 0 || m == 0 {
        return sums;
    }
    sums.par_chunks_mut(RESAMPLES_PER_TASK * m).enumerate().for_each(|(task, out)| {
        let rows = out.len() / m;
        let mut w = vec![0.0; rows * n];
        for (k, row) in w.chunks_mut(n).enumerate() {
            counts(seed, task * RESAMPLES_PER_TASK + k, n, row);
        }
        // SAFETY: the slices have the lengths the shapes and row-major strides describe.
        unsafe {
            matrixmultiply::dgemm(
                rows,
                n,
                m,
                1.0,
                w.as_ptr(),
                n as isize,
                1,
                terms.as_ptr(),
                m as isize,
                1,
                0.0,
                out.as_mut_ptr(),
                m as isize,
                1,
            );
        }
    });
    sums
}

/// The sample standard deviation (n - 1 in the denominator) of the finite values.
pub fn std_ddof1(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let (n, sum) = values.clone().filter(|v| v.is_finite()).fold((0usize, 0.0), |(n, s), v| (n + 1, s + v));
    if n < 2 {
        return f64::NAN;
    }
    let mean = sum / n as f64;
    let ss: f64 = values.filter(|v| v.is_finite()).map(|v| (v - mean) * (v - mean)).sum();
    (ss / (n - 1) as f64).sqrt()
}

/// The standard normal density.
fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Phi(z) - 1/2 for z >= 0 by its Taylor series phi(z) (z + z^3/3 + z^5/(3 5) + ...),
/// whose terms are all positive (no cancellation) for the z of confidence levels.
fn half_cdf(z: f64) -> f64 {
    let (mut term, mut sum, mut k) = (z, z, 1.0);
    while term > sum * 1e-17 {
        k += 2.0;
        term *= z * z / k;
        sum += term;
    }
    pdf(z) * sum
}

/// The quantile z of the standard normal with Phi(z) = 1/2 + conf/2 (conf in (0, 1)),
/// e.g. 1.959963984540054 for 0.95: Newton's method on [`half_cdf`].
pub fn normal_half_width(conf: f64) -> f64 {
    let target = conf / 2.0;
    let mut z = 2.0;
    for _ in 0..200 {
        let step = (half_cdf(z) - target) / pdf(z);
        z = (z - step).max(z / 2.0);
        if step.abs() < 1e-15 * z {
            break;
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_quantiles_match_published_values() {
        // Abramowitz and Stegun, table 26.5 (and scipy.stats.norm.ppf to 16 digits).
        assert!((normal_half_width(0.95) - 1.959963984540054).abs() < 1e-14);
        assert!((normal_half_width(0.9) - 1.6448536269514722).abs() < 1e-14);
        assert!((normal_half_width(0.99) - 2.5758293035489004).abs() < 1e-13);
        assert!((normal_half_width(0.5) - 0.6744897501960817).abs() < 1e-14);
    }

    #[test]
    fn resampled_sums_are_sums_of_drawn_blocks_and_do_not_depend_on_threads() {
        let (n, m, r) = (37, 3, 40);
        let terms: Vec<f64> = (0..n * m).map(|i| (i as f64 * 0.37).sin()).collect();
        let sums = resampled_sums(&terms, n, m, r, 5);
        for (k, row) in sums.chunks(m).enumerate() {
            let mut c = vec![0.0; n];
            counts(5, k, n, &mut c);
            assert_eq!(c.iter().sum::<f64>(), n as f64, "n draws");
            for j in 0..m {
                let want: f64 = (0..n).map(|i| c[i] * terms[i * m + j]).sum();
                assert!((row[j] - want).abs() < 1e-12, "resample {k} term {j}");
            }
        }
        let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| resampled_sums(&terms, n, m, r, 5));
        assert!(one.iter().zip(&sums).all(|(a, b)| a.to_bits() == b.to_bits()));
        // Draws are uniform: over many resamples each block is drawn about once per resample.
        let mut c = vec![0.0; 10];
        let mut total = vec![0.0; 10];
        for k in 0..2000 {
            counts(1, k, 10, &mut c);
            total.iter_mut().zip(&c).for_each(|(t, x)| *t += x);
        }
        assert!(total.iter().all(|&t| (1800.0..2200.0).contains(&t)), "{total:?}");
    }
}
