//! Helpers shared by the integration tests (each test crate uses a part of them).
#![allow(dead_code)]

use moatsweep::design::mix64;

/// A small deterministic PRNG (splitmix64) for random scenarios.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        self.uniform(lo.ln(), hi.ln()).exp()
    }
    /// Uniform integer in lo..=hi.
    pub fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// Whether a GPU adapter exists. Without one, GPU tests print a loud line and
/// pass, unless `MOATSWEEP_REQUIRE_GPU=1` (as in CI), which makes it a failure.
pub fn have_gpu() -> bool {
    if !moatsweep::gpu::list_adapters().is_empty() {
        return true;
    }
    assert!(
        std::env::var("MOATSWEEP_REQUIRE_GPU").as_deref() != Ok("1"),
        "MOATSWEEP_REQUIRE_GPU=1 but there is no GPU adapter (not even lavapipe)"
    );
    eprintln!("GPU TESTS SKIPPED: no adapter");
    false
}
