//! Helpers shared by the integration tests (each test crate uses a part of them).
#![allow(dead_code)]

use moatsweep::backend::cpu::CpuBackend;
use moatsweep::backend::{Backend, Collect};
use moatsweep::design::mix64;
use moatsweep::gpu::{GpuBackend, GpuOptions};
use moatsweep::model::{NEVER, Outcome, Scenario};

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

/// One backend of the conformance suite.
pub struct TestBackend {
    /// "cpu", or "gpu <adapter name>".
    pub name: String,
    /// What to pass to `moatsweep run` to get this backend.
    pub cli_args: Vec<String>,
    pub backend: Box<dyn Backend>,
    /// Whether it computes in f32 (the GPU kernel) rather than f64.
    pub f32: bool,
}

impl TestBackend {
    /// Solves `scs` (one shape) and returns the outcomes in f64 (exact for f32 ones).
    #[allow(clippy::ptr_arg)] // a Vec is a ScenarioSource, a slice is not
    pub fn solve(&mut self, scs: &Vec<Scenario>) -> Vec<Outcome<f64>> {
        let mut sink = Collect::default();
        self.backend.run(scs, 0..scs.len() as u64, &mut sink).unwrap_or_else(|e| panic!("{}: {e:#}", self.name));
        let out: Vec<Outcome<f64>> = if self.f32 { sink.f32.iter().map(|o| o.map(f64::from)).collect() } else { sink.f64 };
        assert_eq!(out.len(), scs.len(), "{}", self.name);
        out
    }

    /// The relative tolerance a closed form is checked to on this backend: f64's
    /// rounding, or the f32 kernel's (the output table's 1e-4, docs/model.md).
    pub fn rel(&self) -> f64 {
        if self.f32 { 1e-4 } else { 1e-9 }
    }
}

/// Every backend present: the f64 CPU reference, and the f32 kernel on every GPU
/// adapter wgpu finds (software ones included: lavapipe in CI).
pub fn backends() -> Vec<TestBackend> {
    let mut v = vec![TestBackend {
        name: "cpu".into(),
        cli_args: vec!["--backend".into(), "cpu".into()],
        backend: Box::new(CpuBackend::default()),
        f32: false,
    }];
    if have_gpu() {
        for a in moatsweep::gpu::list_adapters() {
            let opts = GpuOptions { adapter: Some(a.name.clone()), allow_software: true, ..Default::default() };
            let gpu = GpuBackend::new(&opts).unwrap_or_else(|e| panic!("adapter {} is listed but does not start: {e:#}", a.name));
            v.push(TestBackend {
                name: format!("gpu {}", a.name),
                cli_args: vec!["--backend".into(), "gpu".into(), "--adapter".into(), a.name.clone()],
                backend: Box::new(gpu),
                f32: true,
            });
        }
    }
    v
}

/// A scenario over wide ranges, for the agreement tests and the invariants:
/// utilities from deep negative to large positive (shares near 0 and near 1),
/// compute and data over orders of magnitude, funding from 0 (exit in month 0) to
/// ample, releases from month 0 to never, every parameter of the table varied
/// (`tests/gpu_agreement.rs` checks that).
pub fn wide_scenario(rng: &mut Rng, n_firms: usize, n_segments: usize) -> Scenario {
    let mut sc = moatsweep::model::params::baseline();
    let m = &mut sc.model;
    m.months = if rng.chance(0.1) { rng.int(1, 3) as u32 } else { rng.int(1, 120) as u32 };
    m.discount = rng.uniform(0.9, 1.0);
    m.market0 = rng.log_uniform(1e5, 1e10);
    m.market_growth = rng.uniform(-0.1, 0.2);
    m.train_usd_per_flop = rng.log_uniform(3e-19, 5e-18);
    m.infer_usd_per_flop = rng.log_uniform(1e-20, 1e-17);
    m.spill_gap = rng.uniform(0.0, 0.5);
    m.catchup_rate = rng.uniform(0.0, 1.0);
    m.talent_decay = rng.uniform(0.0, 0.1);
    m.community_gain = rng.uniform(0.0, 2.0);
    m.community_decay = rng.uniform(0.0, 0.5);
    m.community_elasticity = rng.uniform(0.2, 2.0);
    m.community_quality = rng.uniform(0.0, 0.5);
    m.community_cost = rng.uniform(0.0, 2.0);
    m.ad_uplift = rng.uniform(0.0, 0.1);
    m.tol = if rng.chance(0.2) { 1e-5 } else { 1e-6 };
    m.max_iter = if rng.chance(0.2) { rng.int(20, 500) as u32 } else { 200 };
    // Version 2: generations every few months (or none), investors with a hurdle
    // on either side of 0 (or none).
    m.generation_months = if rng.chance(0.25) { 0 } else { rng.int(1, 24) as u32 };
    m.investor_hurdle = rng.uniform(-0.5, 0.5);
    m.investor_runway = if rng.chance(0.25) { 0.0 } else { rng.uniform(0.5, 24.0) };
    if rng.chance(0.3) {
        let s = &mut sc.scaling;
        s.e = rng.uniform(1.5, 2.0);
        s.a *= rng.uniform(0.7, 1.3);
        s.b *= rng.uniform(0.7, 1.3);
        s.alpha = rng.uniform(0.25, 0.45);
        s.beta = rng.uniform(0.25, 0.45);
        s.repeat_scale = rng.uniform(5.0, 30.0);
        s.loss_ref = s.e + rng.log_uniform(0.05, 1.0);
    }
    let months = sc.model.months as u64;
    sc.n_firms = n_firms;
    for f in &mut sc.firms[..n_firms] {
        f.spend_growth = if rng.chance(0.2) { rng.uniform(-0.5, 0.0) } else { rng.uniform(0.0, 3.0) };
        f.data_growth = if rng.chance(0.2) { rng.uniform(-0.5, 0.0) } else { rng.uniform(0.0, 2.0) };
        // C / 6 >= 1e12 FLOP for every generation (a shrinking spend is smallest in
        // the last month), times at least 1.01.
        let shrink = f.spend_growth.min(0.0).ln_1p() * (months.saturating_sub(1)) as f64 / 12.0;
        let min_spend = 6e12 * sc.model.train_usd_per_flop * 1.01 / shrink.exp();
        f.train_spend = rng.log_uniform(1e3, 1e11).max(min_spend);
        f.data_tokens = rng.log_uniform(1e8, 1e14);
        f.release_month = if rng.chance(0.4) { NEVER } else { rng.int(0, months + 5) as i32 };
        f.brand = rng.uniform(-2.0, 2.0);
        f.platform_revenue = if rng.chance(0.6) { 0.0 } else { rng.log_uniform(1e8, 3e11) };
        f.funding = if rng.chance(0.1) { 0.0 } else { rng.log_uniform(1e5, 1e12) };
        // Version 3: a serving-cost factor, often the default 1, drawn from a side
        // stream so that every other draw is the one version 2's tests made (their
        // scenarios stay those the suite was built on).
        let mut side = Rng(rng.0 ^ 0xc057_fac7);
        f.cost_factor = if side.chance(0.5) { 1.0 } else { side.log_uniform(0.05, 20.0) };
    }
    sc.n_segments = n_segments;
    let mut total = 0.0;
    for seg in &mut sc.segments[..n_segments] {
        seg.weight = if n_segments > 1 && rng.chance(0.1) { 0.0 } else { rng.uniform(0.05, 1.0) };
        seg.intercept = rng.uniform(-15.0, 8.0);
        seg.price_sens = rng.log_uniform(0.01, 10.0);
        seg.quality_taste = rng.uniform(-1.0, 6.0);
        seg.open_taste = rng.uniform(-3.0, 3.0);
        total += seg.weight;
    }
    if total == 0.0 {
        sc.segments[0].weight = 1.0;
        total = 1.0;
    }
    for seg in &mut sc.segments[..n_segments] {
        seg.weight /= total;
    }
    sc
}

/// Logit shares per firm and segment in month `t`, computed by the test from
/// docs/model.md section 3 (not the model's code): the utility of each offered
/// product (`quality`, `price`, open or not), a closed firm's brand decaying from
/// the first release month, and the outside option at utility 0.
#[allow(dead_code)]
pub fn logit_shares(
    sc: &Scenario,
    t: i32,
    first_release: Option<i32>,
    offered: impl Fn(usize) -> bool,
    open: impl Fn(usize) -> bool,
    quality: impl Fn(usize) -> f64,
    price: impl Fn(usize) -> f64,
) -> Vec<Vec<f64>> {
    let mut s = vec![vec![0.0; sc.n_segments]; sc.n_firms];
    for (k, seg) in sc.segments().iter().enumerate() {
        let mut u = vec![f64::NEG_INFINITY; sc.n_firms];
        for i in (0..sc.n_firms).filter(|&i| offered(i)) {
            let mut brand = sc.firms[i].brand;
            if let Some(ts) = first_release.filter(|&ts| !open(i) && t >= ts) {
                brand *= (-sc.model.talent_decay * (t - ts) as f64).exp();
            }
            u[i] = seg.intercept + seg.quality_taste * quality(i) + brand + if open(i) { seg.open_taste } else { 0.0 }
                - seg.price_sens * price(i);
        }
        let top = u.iter().cloned().fold(0.0, f64::max);
        let denom: f64 = (-top).exp() + u.iter().map(|x| (x - top).exp()).sum::<f64>();
        for i in 0..sc.n_firms {
            s[i][k] = (u[i] - top).exp() / denom;
        }
    }
    s
}
