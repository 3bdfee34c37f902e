//! The f32 WGSL kernel against the f64 CPU reference (MODEL.md v1).
//!
//! These tests need a GPU adapter; a software one (lavapipe) is enough and is what
//! CI uses. Without any adapter they print "GPU TESTS SKIPPED: no adapter" and
//! pass, unless `MOATSWEEP_REQUIRE_GPU=1` (set in CI), which makes that a failure.
//!
//! # Tolerances (see [`compare`])
//!
//! The kernel evaluates the same formulas in the same order in f32 (unit roundoff
//! 6e-8), except that it always takes the zeta-markup update in the rescaled form
//! that the reference keeps for underflowed shares (the same ratio). Logs of O(30) quantities (ln C/6, x = ln N) carry absolute errors near
//! 2e-6, llvmpipe's exp is good to 2e-6 relative for arguments near 30, and
//! utilities of magnitude U carry U x 6e-8; so one month's shares and prices are
//! good to a few 1e-6. Each real column gets
//!
//!   allowed = REL x |ref| + floor + SENSITIVITY x |probe - ref|
//!
//! - `REL` = 1e-4: the "few 1e-6" with the growth that a few dozen months of
//!   warm-started markups, community stock and spillover add in ordinary
//!   scenarios (measured over values that the probe below moves by less than
//!   1e-7: at most 6.8e-5 for npv, 4.8e-5 for shares, 8e-6 for prices).
//! - floor, for values that are small next to their natural scale, where a
//!   relative error means nothing: shares (share, outside_share, open_share) 1e-6,
//!   16 f32 ulps at 1 (a share of 1e-9 may be 0 or 2e-9 in f32: both are "no
//!   demand"); price 1e-6 $/Mtok; quality 1e-5 (capabilities are O(1), from logs
//!   of O(30)); hhi 1e-2 on its 0..1e4 scale; npv and complement_npv 2e-5 times
//!   the firm's money scale, the sum over months of |direct| + complement +
//!   train_spend / 12 from the reference's trace (flows are differences of these
//!   terms and npv sums them, so f32's error is relative to this scale, not to a
//!   possibly cancelling result); consumer_surplus_npv 1e-6 times
//!   sum_t d_t M_t sum_k w_k / alpha_k (the f32 error of ln(denom), denom >= 1,
//!   carried through).
//! - the probe: the reference solved again with every real input moved by a
//!   relative 2^-20 (about 8 f32 ulps, the size of the kernel's own per-operation
//!   errors), `SENSITIVITY` = 4 times its change. Some scenarios amplify
//!   perturbations by 1e3 or more: a cheap released model with price-sensitive
//!   demand feeds its share back into its community stock, its cost and its share
//!   again month after month, and several firms can sit near alternative
//!   equilibria. There the f32 kernel legitimately differs from the f64 reference
//!   by far more than 1e-4, and the probe shows by how much f64 itself moves. In
//!   well-conditioned scenarios the probe's change is ~1e-8 and adds nothing.
//! - max_iterations: at most 3 apart, or a tenth of the count, or twice the
//!   probe's own shift ([`iteration_slack`]): the month that needs the most
//!   iterations stops where a slowly shrinking change first drops below tol, and
//!   a relative error of a few percent in that change (f32 roundoff of 1e-7
//!   against tol = 1e-6) moves the crossing by many iterations when the
//!   contraction is slow.
//! - exit_month, offered, nonconverged_months: exactly equal, except on the knife
//!   edges below.
//!
//! Injecting a 1e-3 relative error into any one step of the kernel (talent decay,
//! community cost, catch-up rate) or 2e-4 into the complement makes thousands of
//! the 20,480 scenarios fail, so the allowances do not hide real errors.
//!
//! # Knife edges
//!
//! - Exits: a firm exits when its cash turns negative. When the reference's cash
//!   at some month is within `CASH_EDGE` = 1e-4 of that firm's money scale (to
//!   that month) from zero, or the probe moves the exit, f32 may decide the other
//!   way; such a scenario is counted as an exit knife edge and its other columns,
//!   which then legitimately differ, are not compared. Exits that differ anywhere
//!   else are failures.
//! - Convergence: a month that does not converge within max_iter stops wherever
//!   the iteration happens to be, and a month that converges on its last
//!   iterations may or may not do so in f32. When the reference, its probe or the
//!   GPU has a non-converged month, or max_iterations is within the slack of
//!   max_iter, the scenario is counted as a convergence knife edge: offered and
//!   exit months must still agree, other columns are not compared.
//!
//! Both kinds are tallied and printed and must stay rare (below 1% and 2% of the
//! scenarios; measured: no exit edges and 0.9% convergence edges, 40% of them in
//! the fifth of scenarios with a random max_iter below 200), so that the
//! exemptions cannot hide a systematic error.
//!
//! # The reference's own NaN
//!
//! The f64 reference must itself stay finite: a NaN or infinity there is a failure
//! (it once happened in `zeta_update`'s rescaled branch with a segment of weight 0;
//! see `tests/model.rs`, `zero_weight_segment_with_underflowing_shares_stays_finite`).

mod common;

use common::{Rng, have_gpu};
use moatsweep::backend::{Backend, Collect};
use moatsweep::gpu::{GpuBackend, GpuOptions};
use moatsweep::model::{self, MonthRecord, NEVER, Outcome, Scenario, params};
use moatsweep::verify::{Scaled, scaled_reference};

fn gpu_or_skip_with(opts: GpuOptions) -> Option<GpuBackend> {
    have_gpu().then(|| GpuBackend::new(&opts).expect("an adapter exists, so the GPU backend must start"))
}

fn gpu_or_skip() -> Option<GpuBackend> {
    gpu_or_skip_with(GpuOptions { allow_software: true, ..Default::default() })
}

#[allow(clippy::ptr_arg)] // a Vec is a ScenarioSource, a slice is not
fn run_gpu(gpu: &mut GpuBackend, scs: &Vec<Scenario>) -> Vec<Outcome<f32>> {
    let mut sink = Collect::default();
    gpu.run(scs, 0..scs.len() as u64, &mut sink).unwrap();
    assert_eq!(sink.f32.len(), scs.len());
    sink.f32
}

// ---------------------------------------------------------------------------
// The scenario generator (its PRNG is in tests/common).

/// A scenario over wide ranges: utilities from deep negative to large positive
/// (shares near 0 and near 1), compute and data over orders of magnitude, funding
/// from 0 (exit in month 0) to ample, releases from month 0 to never.
fn random_scenario(rng: &mut Rng, n_firms: usize, n_segments: usize) -> Scenario {
    let mut sc = params::baseline();
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
        // C / 6 >= 1e12 FLOP: the smallest spend the model accepts, times at least 1.01.
        let min_spend = 6e12 * sc.model.train_usd_per_flop * 1.01;
        f.train_spend = rng.log_uniform(1e3, 1e11).max(min_spend);
        f.data_tokens = rng.log_uniform(1e8, 1e14);
        f.release_month = if rng.chance(0.4) { NEVER } else { rng.int(0, months + 5) as i32 };
        f.brand = rng.uniform(-2.0, 2.0);
        f.platform_revenue = if rng.chance(0.6) { 0.0 } else { rng.log_uniform(1e8, 3e11) };
        f.funding = if rng.chance(0.1) { 0.0 } else { rng.log_uniform(1e5, 1e12) };
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

// ---------------------------------------------------------------------------
// The reference, with what the comparison needs from its trace, and its probe.

struct Reference {
    out: Outcome<f64>,
    /// The reference on inputs perturbed by about 1e-6 relative (see [`perturbed`]).
    probe: Outcome<f64>,
    /// Per firm: the sum over months of |direct| + complement + train_spend / 12.
    money_scale: [f64; model::MAX_FIRMS],
    /// Per firm: the smallest |cash_t| / (funding + money scale up to month t), over
    /// the months it was alive at the start of.
    cash_edge: [f64; model::MAX_FIRMS],
    /// sum_t d_t M_t sum_k w_k / alpha_k.
    surplus_scale: f64,
}

/// Relative size of the probe's perturbation: 2^-20, about 8 f32 ulps, the order
/// of the kernel's own per-operation errors (llvmpipe's exp alone was measured at
/// up to 16 ulps).
const PROBE: f64 = 1.0 / (1u64 << 20) as f64;

/// `sc` with every real input multiplied by 1 +- PROBE (signs from a PRNG seeded by
/// `seed`); segment weights are renormalised to sum to 1.
fn perturbed(sc: &Scenario, seed: u64) -> Scenario {
    let mut rng = Rng(seed);
    let mut s = *sc;
    let mut r = |x: &mut f64| *x *= if rng.chance(0.5) { 1.0 + PROBE } else { 1.0 - PROBE };
    let m = &mut s.model;
    for x in [
        &mut m.discount,
        &mut m.market0,
        &mut m.market_growth,
        &mut m.train_usd_per_flop,
        &mut m.infer_usd_per_flop,
        &mut m.spill_gap,
        &mut m.catchup_rate,
        &mut m.talent_decay,
        &mut m.community_gain,
        &mut m.community_decay,
        &mut m.community_elasticity,
        &mut m.community_quality,
        &mut m.community_cost,
        &mut m.ad_uplift,
    ] {
        r(x);
    }
    m.discount = m.discount.min(1.0);
    let c = &mut s.scaling;
    for x in [&mut c.e, &mut c.a, &mut c.b, &mut c.alpha, &mut c.beta, &mut c.repeat_scale, &mut c.loss_ref] {
        r(x);
    }
    for f in &mut s.firms[..sc.n_firms] {
        for x in [&mut f.train_spend, &mut f.data_tokens, &mut f.brand, &mut f.platform_revenue, &mut f.funding] {
            r(x);
        }
    }
    let mut total = 0.0;
    for g in &mut s.segments[..sc.n_segments] {
        for x in [&mut g.weight, &mut g.intercept, &mut g.price_sens, &mut g.quality_taste, &mut g.open_taste] {
            r(x);
        }
        total += g.weight;
    }
    for g in &mut s.segments[..sc.n_segments] {
        g.weight /= total;
    }
    s
}

fn reference(sc: &Scenario, seed: u64) -> Reference {
    let Scaled { out, money_scale, cash_edge, surplus_scale } = scaled_reference(sc);
    let probe = model::solve(&perturbed(sc, seed));
    Reference { out, probe, money_scale, cash_edge, surplus_scale }
}

// ---------------------------------------------------------------------------
// The comparison.

const REL: f64 = 1e-4;
/// How many times the probe's change the GPU may deviate by, on top of REL and the floor.
const SENSITIVITY: f64 = 4.0;
const CASH_EDGE: f64 = 1e-4;

/// Iterations apart that max_iterations may be: 3, or a tenth of the count (the
/// crossing of tol by a slowly shrinking change moves by many iterations for a
/// small relative error in the change), or twice the probe's own shift.
fn iteration_slack(r: &Reference) -> u32 {
    let n = r.out.max_iterations;
    3 + (n / 10).max(2 * n.abs_diff(r.probe.max_iterations))
}

#[derive(Debug, PartialEq)]
enum Verdict {
    Agree,
    ExitEdge,
    ConvergenceEdge,
    /// The f64 reference itself produced NaN or infinity (nothing to compare with).
    ReferenceNonFinite,
}

struct Failure {
    index: usize,
    column: String,
    reference: f64,
    gpu: f64,
    allowed: f64,
}

/// Per column over agreeing scenarios: the largest relative deviation
/// |gpu - ref| / |ref| where |ref| is above the column's floor, the same over
/// well-conditioned values (the probe moved them by less than 1e-7 relative), and
/// the largest share of the allowed difference used.
#[derive(Default)]
struct Deviations(std::collections::BTreeMap<&'static str, [(f64, usize); 3]>);

impl Deviations {
    #[allow(clippy::too_many_arguments)]
    fn note(&mut self, column: &'static str, r: f64, p: f64, g: f64, floor: f64, allowed: f64, index: usize) {
        let e = self.0.entry(column).or_insert([(0.0, 0); 3]);
        let d = (g - r).abs();
        if r.abs() > floor && d / r.abs() > e[0].0 {
            e[0] = (d / r.abs(), index);
        }
        if r.abs() > floor && (p - r).abs() < 1e-7 * r.abs() && d / r.abs() > e[1].0 {
            e[1] = (d / r.abs(), index);
        }
        if allowed > 0.0 && d / allowed > e[2].0 {
            e[2] = (d / allowed, index);
        }
    }
}

fn finite(o: &Outcome<f64>, nf: usize) -> bool {
    let f = |a: &[f64]| a.iter().all(|x| x.is_finite());
    f(&o.share[..nf])
        && f(&o.price[..nf])
        && f(&o.quality[..nf])
        && f(&o.npv[..nf])
        && f(&o.complement_npv[..nf])
        && f(&[o.outside_share, o.open_share, o.hhi, o.consumer_surplus_npv])
}

fn compare(index: usize, sc: &Scenario, r: &Reference, g: &Outcome<f32>, failures: &mut Vec<Failure>, dev: &mut Deviations) -> Verdict {
    let (o, p) = (&r.out, &r.probe);
    let nf = sc.n_firms;
    if !finite(o, nf) || !finite(p, nf) || !r.money_scale[..nf].iter().all(|x| x.is_finite()) {
        return Verdict::ReferenceNonFinite;
    }
    let mut fail = |column: String, reference: f64, gpu: f64, allowed: f64| {
        failures.push(Failure { index, column, reference, gpu, allowed });
    };

    // Exits first: they decide everything downstream.
    let exits_differ = (0..nf).any(|i| o.exit_month[i] != g.exit_month[i]);
    if exits_differ {
        let on_edge =
            (0..nf).all(|i| o.exit_month[i] == g.exit_month[i] || r.cash_edge[i] <= CASH_EDGE || o.exit_month[i] != p.exit_month[i]);
        if on_edge {
            return Verdict::ExitEdge;
        }
        for i in 0..nf {
            if o.exit_month[i] != g.exit_month[i] {
                fail(format!("exit_month[{i}] (cash edge {:.2e})", r.cash_edge[i]), o.exit_month[i] as f64, g.exit_month[i] as f64, 0.0);
            }
        }
        return Verdict::Agree;
    }
    if o.offered != g.offered {
        fail("offered".into(), o.offered as f64, g.offered as f64, 0.0);
        return Verdict::Agree;
    }
    let slack = iteration_slack(r);
    if o.nonconverged_months > 0
        || g.nonconverged_months > 0
        || p.nonconverged_months > 0
        || o.max_iterations.max(g.max_iterations) + slack >= sc.model.max_iter
    {
        return Verdict::ConvergenceEdge;
    }

    let mut real = |column: &'static str, label: String, rv: f64, pv: f64, gv: f32, floor: f64| {
        let gv = gv as f64;
        let allowed = REL * rv.abs() + floor + SENSITIVITY * (pv - rv).abs();
        #[allow(clippy::neg_cmp_op_on_partial_ord)] // a NaN from the GPU must fail
        if !((gv - rv).abs() <= allowed) {
            fail(label, rv, gv, allowed);
        }
        dev.note(column, rv, pv, gv, floor, allowed, index);
    };
    for i in 0..nf {
        real("share", format!("share[{i}]"), o.share[i], p.share[i], g.share[i], 1e-6);
        if o.is_offered(i) {
            real("price", format!("price[{i}]"), o.price[i], p.price[i], g.price[i], 1e-6);
        }
        real("quality", format!("quality[{i}]"), o.quality[i], p.quality[i], g.quality[i], 1e-5);
        let money = 2e-5 * r.money_scale[i];
        real("npv", format!("npv[{i}]"), o.npv[i], p.npv[i], g.npv[i], money);
        real("complement_npv", format!("complement_npv[{i}]"), o.complement_npv[i], p.complement_npv[i], g.complement_npv[i], money);
    }
    real("outside_share", "outside_share".into(), o.outside_share, p.outside_share, g.outside_share, 1e-6);
    real("open_share", "open_share".into(), o.open_share, p.open_share, g.open_share, 1e-6);
    real("hhi", "hhi".into(), o.hhi, p.hhi, g.hhi, 1e-2);
    real(
        "consumer_surplus_npv",
        "consumer_surplus_npv".into(),
        o.consumer_surplus_npv,
        p.consumer_surplus_npv,
        g.consumer_surplus_npv,
        1e-6 * r.surplus_scale,
    );
    let di = o.max_iterations.abs_diff(g.max_iterations);
    if di > slack {
        fail("max_iterations".into(), o.max_iterations as f64, g.max_iterations as f64, slack as f64);
    }
    let e = dev.0.entry("max_iterations (abs)").or_insert([(0.0, 0); 3]);
    if di as f64 > e[0].0 {
        e[0] = (di as f64, index);
    }
    if o.max_iterations == p.max_iterations && di as f64 > e[1].0 {
        e[1] = (di as f64, index);
    }
    if di as f64 / slack as f64 > e[2].0 {
        e[2] = (di as f64 / slack as f64, index);
    }
    Verdict::Agree
}

// ---------------------------------------------------------------------------

#[test]
fn baseline_matches_model_md() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    eprintln!("adapter: {}", gpu.adapter_summary());
    let sc = params::baseline();
    let g = run_gpu(&mut gpu, &vec![sc])[0];
    // MODEL.md section 6: month 35 shares open 0.43, frontier_a 0.055, frontier_b
    // 0.059, challenger 0.060, outside 0.39; open price about 0.94; no exits; 26 iterations.
    let printed = |x: f32, quoted: f64, decimals: i32| (x as f64 - quoted).abs() <= 0.5 * 10f64.powi(-decimals);
    assert!(printed(g.share[0], 0.43, 2), "{g:?}");
    assert!(printed(g.share[1], 0.055, 3), "{g:?}");
    assert!(printed(g.share[2], 0.059, 3), "{g:?}");
    assert!(printed(g.share[3], 0.060, 3), "{g:?}");
    assert!(printed(g.outside_share, 0.39, 2), "{g:?}");
    assert!(printed(g.price[0], 0.94, 2), "{g:?}");
    assert_eq!(&g.exit_month[..4], &[-1, -1, -1, -1]);
    assert_eq!(g.max_iterations, 26);
    assert_eq!(g.nonconverged_months, 0);
    assert_eq!(g.offered, 0b1111);

    // The underfunded challenger of section 6 exits at month 2.
    let mut sc = params::baseline();
    sc.firms[3].train_spend = 5e8;
    sc.firms[3].funding = 5e7;
    let g = run_gpu(&mut gpu, &vec![sc])[0];
    assert_eq!(&g.exit_month[..4], &[-1, -1, -1, 2]);
    assert!(!g.is_offered(3));
    assert_eq!(g.share[3], 0.0);
}

/// Shapes (firms, segments) of the wide test: every count from 1 to 8 of each, the
/// four corners, and a spread between. Each shape is its own pipeline, and building
/// one takes llvmpipe about 2 s (the loops are fully unrolled), so all 64 would
/// spend two minutes compiling; `MOATSWEEP_ALL_SHAPES=1` runs them all.
const SHAPES: [(usize, usize); 12] = [(1, 1), (1, 8), (8, 1), (8, 8), (2, 3), (3, 6), (4, 3), (5, 2), (6, 7), (7, 4), (2, 5), (4, 8)];

fn shapes() -> Vec<(usize, usize)> {
    if std::env::var("MOATSWEEP_ALL_SHAPES").as_deref() == Ok("1") {
        (1..=model::MAX_FIRMS).flat_map(|f| (1..=model::MAX_SEGMENTS).map(move |s| (f, s))).collect()
    } else {
        SHAPES.to_vec()
    }
}

/// The random scenarios of the wide test, grouped by shape (a source has one shape).
fn wide_scenarios() -> Vec<Vec<Scenario>> {
    let shapes = shapes();
    let per_shape = 20_480usize.div_ceil(shapes.len());
    let mut rng = Rng(0x005e_ed0f_0a75);
    shapes.iter().map(|&(nf, ns)| (0..per_shape).map(|_| random_scenario(&mut rng, nf, ns)).collect()).collect()
}

/// The wide agreement test: 20,480 random scenarios (or a few more) over 12 shapes.
#[test]
fn gpu_agrees_with_cpu_reference_on_random_scenarios() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    gpu.poison_outputs(true);
    let mut failures = Vec::new();
    let mut dev = Deviations::default();
    let (mut n, mut exit_edges, mut conv_edges) = (0usize, 0usize, 0usize);
    let mut reference_nan = Vec::new();
    let mut nan_with_zero_weight = 0;
    let mut conv_edges_small_cap = 0;
    let (mut gpu_time, mut cpu_time, mut build_time) = (0.0, 0.0, 0.0);
    for scs in wide_scenarios() {
        {
            let t = std::time::Instant::now();
            run_gpu(&mut gpu, &vec![scs[0]]);
            build_time += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let g = run_gpu(&mut gpu, &scs);
            gpu_time += t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let refs: Vec<Reference> = {
                use rayon::prelude::*;
                scs.par_iter().enumerate().map(|(k, sc)| reference(sc, (n + k) as u64)).collect()
            };
            cpu_time += t.elapsed().as_secs_f64();
            for (k, sc) in scs.iter().enumerate() {
                match compare(n + k, sc, &refs[k], &g[k], &mut failures, &mut dev) {
                    Verdict::Agree => {}
                    Verdict::ExitEdge => exit_edges += 1,
                    Verdict::ConvergenceEdge => {
                        conv_edges += 1;
                        if sc.model.max_iter < 200 {
                            conv_edges_small_cap += 1;
                        }
                    }
                    Verdict::ReferenceNonFinite => {
                        reference_nan.push(n + k);
                        if sc.segments().iter().any(|g| g.weight == 0.0) {
                            nan_with_zero_weight += 1;
                        }
                    }
                }
            }
            n += scs.len();
        }
    }
    eprintln!(
        "{n} scenarios: GPU {gpu_time:.1}s (+ {build_time:.1}s building pipelines), CPU reference {cpu_time:.1}s; \
         exit knife edges {exit_edges}, convergence knife edges {conv_edges} \
         ({conv_edges_small_cap} with max_iter < 200)"
    );
    assert!(
        reference_nan.is_empty(),
        "the f64 reference produced NaN or infinity in {} scenarios ({nan_with_zero_weight} with a segment of weight 0), e.g. {:?}",
        reference_nan.len(),
        &reference_nan[..reference_nan.len().min(10)]
    );
    eprintln!(
        "per column: largest |gpu - ref| / |ref| where |ref| > floor (scenario); the same where the probe \
         moved ref by < 1e-7 relative; largest share of the allowance used"
    );
    for (col, [(d, i), (w, j), (u, k)]) in &dev.0 {
        eprintln!("  {col:>22}: {d:.2e} ({i}); {w:.2e} ({j}); {u:.3} ({k})");
    }
    if !failures.is_empty() {
        for f in failures.iter().take(20) {
            eprintln!(
                "scenario {} column {}: reference {:e}, gpu {:e} (allowed difference {:e})",
                f.index, f.column, f.reference, f.gpu, f.allowed
            );
        }
        panic!("{} disagreements over {n} scenarios (first 20 above)", failures.len());
    }
    assert!(exit_edges * 100 < n, "too many exit knife edges: {exit_edges} of {n}");
    assert!(conv_edges * 50 < n, "too many convergence knife edges: {conv_edges} of {n}");
}

/// Chunk boundaries change nothing: every row is solved by the same code alone.
#[test]
fn chunk_size_does_not_change_results() {
    let mut rng = Rng(42);
    let scs: Vec<Scenario> = (0..9000).map(|_| random_scenario(&mut rng, 3, 2)).collect();
    let mut runs = Vec::new();
    for chunk_rows in [None, Some(1000), Some(4096)] {
        let Some(mut gpu) = gpu_or_skip_with(GpuOptions { allow_software: true, chunk_rows, ..Default::default() }) else {
            return;
        };
        gpu.poison_outputs(true);
        runs.push(run_gpu(&mut gpu, &scs));
    }
    let bits = |o: &Outcome<f32>| {
        format!(
            "{:?}",
            (
                o.offered,
                o.exit_month,
                o.max_iterations,
                o.nonconverged_months,
                [o.share, o.price, o.quality, o.npv, o.complement_npv].map(|a| a.map(f32::to_bits)),
                [o.outside_share, o.open_share, o.hhi, o.consumer_surplus_npv].map(f32::to_bits)
            )
        )
    };
    for (k, o) in runs[0].iter().enumerate() {
        assert_eq!(bits(o), bits(&runs[1][k]), "row {k}: default chunk vs 1000");
        assert_eq!(bits(o), bits(&runs[2][k]), "row {k}: default chunk vs 4096");
    }
}

/// Asking for an adapter that is not there, or refusing software when only
/// software is there, fails with a message that lists the adapters.
#[test]
fn adapter_choice_errors_list_the_adapters() {
    let adapters = moatsweep::gpu::list_adapters();
    let Some(first) = adapters.first() else {
        let _ = gpu_or_skip(); // prints the skip line, or panics in CI
        return;
    };
    for a in &adapters {
        assert_eq!(a.to_string().lines().count(), 1, "one line per adapter: {a}");
    }
    let opts = GpuOptions { adapter: Some("no such adapter".into()), allow_software: true, chunk_rows: None };
    let e = format!("{:#}", GpuBackend::new(&opts).err().expect("no adapter has that name"));
    assert!(e.contains("no such adapter") && e.contains(&first.name), "{e}");

    let opts = GpuOptions { adapter: None, allow_software: false, chunk_rows: None };
    match GpuBackend::new(&opts) {
        Ok(g) => assert!(!g.is_software()),
        Err(e) => {
            let e = format!("{e:#}");
            assert!(adapters.iter().all(|a| a.software), "{e}");
            assert!(e.contains("software") && e.contains(&first.name), "{e}");
        }
    }
}

/// Inputs that f32 cannot hold are refused, not turned into infinities; so are
/// rows whose shape differs from the source's.
#[test]
fn out_of_range_and_misshapen_rows_are_refused() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let mut sc = params::baseline();
    sc.firms[1].funding = 1e39;
    let mut sink = Collect::default();
    let e = gpu.run(&vec![params::baseline(), sc], 0..2, &mut sink).expect_err("funding 1e39 is beyond f32");
    assert!(format!("{e:#}").contains("row 1 has a parameter beyond the range of f32"), "{e:#}");
    let mut other = params::baseline();
    other.n_segments = 2;
    let e = gpu.run(&vec![params::baseline(), other], 0..2, &mut sink).expect_err("two shapes in one source");
    assert!(format!("{e:#}").contains("row 1 has 4 firms, 2 segments"), "{e:#}");
    assert!(sink.f32.is_empty());
    // The backend is still usable afterwards.
    assert_eq!(run_gpu(&mut gpu, &vec![params::baseline()])[0].max_iterations, 26);
}

/// The baseline's firms and segments repeated to `nf` x `ns`, nobody releasing or
/// exiting, equal segment weights: the longest-running shape of the kernel.
fn closed_shape(nf: usize, ns: usize) -> Scenario {
    let mut sc = params::baseline();
    sc.n_firms = nf;
    sc.n_segments = ns;
    for i in 0..nf {
        sc.firms[i] = params::baseline().firms[i % 4];
        sc.firms[i].release_month = NEVER;
        sc.firms[i].funding = 1e15;
    }
    for k in 0..ns {
        sc.segments[k] = params::baseline().segments[k % 3];
        sc.segments[k].weight = 1.0 / ns as f64;
    }
    sc
}

/// llvmpipe's loop cap: a run that could reach it is refused before it starts,
/// one just below it runs whole, and a cut row is caught by the kernel's own flag.
#[test]
fn loop_cap_is_respected() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    gpu.poison_outputs(true);
    for (nf, ns) in [(1usize, 1usize), (8, 8)] {
        let mut sc = closed_shape(nf, ns);
        sc.model.max_iter = 200;
        // The most months whose count stays within the cap.
        sc.model.months = 1;
        while {
            let mut next = sc;
            next.model.months += 1;
            moatsweep::gpu::loop_iterations(&next) <= moatsweep::gpu::LLVMPIPE_LOOP_CAP
        } {
            sc.model.months += 1;
        }
        // tol = 0 (outside the validated range): every month runs all max_iter iterations.
        let mut worst = sc;
        worst.model.tol = 0.0;
        let g = run_gpu(&mut gpu, &vec![worst])[0];
        assert_eq!(g.max_iterations, 200);
        assert_eq!(g.nonconverged_months, worst.model.months);

        let mut over = sc;
        over.model.months += 1;
        let mut sink = Collect::default();
        let r = gpu.run(&vec![over], 0..1, &mut sink);
        if gpu.is_llvmpipe() {
            let e = format!("{:#}", r.expect_err("llvmpipe must refuse a run that can reach its loop cap"));
            assert!(e.contains("llvmpipe") && e.contains(&format!("months = {}", over.model.months)), "{e}");
            assert!(sink.f32.is_empty());
            // Past the refusal, the kernel's own flag catches the cut row.
            over.model.tol = 0.0;
            over.model.months += 10;
            let e = gpu.run_unchecked_for_tests(&vec![over], &mut sink).expect_err("a cut row must fail the run");
            assert!(format!("{e:#}").contains("ended the kernel's loops early"), "{e:#}");
        } else {
            r.expect("only llvmpipe has a loop cap");
        }
    }
}

/// The throughput of the baseline scenario on the GPU and on the CPU backend
/// (`cargo test --release --test gpu_agreement throughput -- --ignored --nocapture`).
#[test]
#[ignore]
fn throughput_baseline() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    let n: usize = std::env::var("N").map(|v| v.parse().unwrap()).unwrap_or(65536);
    let scs = vec![params::baseline(); n];
    let t = std::time::Instant::now();
    let _ = run_gpu(&mut gpu, &vec![params::baseline()]);
    eprintln!("first run (pipeline build) {:.3}s", t.elapsed().as_secs_f64());
    let kernel_before = gpu.kernel_seconds().unwrap_or(0.0);
    let t = std::time::Instant::now();
    let out = run_gpu(&mut gpu, &scs);
    let g = t.elapsed().as_secs_f64();
    let kernel = gpu.kernel_seconds().map(|k| k - kernel_before);
    eprintln!("gpu {n} rows in {g:.3}s = {:.0} rows/s; kernel {kernel:?} s", n as f64 / g);
    let mut cpu = moatsweep::backend::cpu::CpuBackend::default();
    let mut sink = Collect::default();
    let t = std::time::Instant::now();
    cpu.run(&scs, 0..n as u64, &mut sink).unwrap();
    let c = t.elapsed().as_secs_f64();
    eprintln!("cpu {n} rows in {c:.3}s = {:.0} rows/s ({} threads)", n as f64 / c, rayon::current_num_threads());
    assert_eq!(out.len(), n);
}

/// Debugging aid: `IDX=n cargo test --test gpu_agreement dump -- --ignored --nocapture`
/// prints scenario n of the random agreement test, the reference's months and both outcomes.
#[test]
#[ignore]
fn dump() {
    let idx: usize = std::env::var("IDX").expect("IDX").parse().unwrap();
    let Some(mut gpu) = gpu_or_skip() else { return };
    let sc = wide_scenarios().concat()[idx];
    eprintln!("{sc:#?}");
    let out = model::solve_traced(&sc, &mut |r: &MonthRecord| eprintln!("{r:?}"));
    eprintln!("reference {out:?}");
    eprintln!("gpu       {:?}", run_gpu(&mut gpu, &vec![sc])[0]);
}

/// Measuring aid for [`moatsweep::gpu::loop_iterations`] on llvmpipe:
/// `SHAPES=8x8x200,1x1x100 cargo test --test gpu_agreement measure_loop_cap -- --ignored --nocapture`
/// (firms x segments x max_iter) finds, for never-converging scenarios (tol = 0),
/// the most months that run whole, and prints the formula's count there and one month later.
#[test]
#[ignore]
fn measure_loop_cap() {
    let Some(mut gpu) = gpu_or_skip() else { return };
    gpu.poison_outputs(true);
    let shapes = std::env::var("SHAPES").unwrap_or("8x8x200,1x1x200,4x3x200".into());
    for shape in shapes.split(',') {
        let v: Vec<u32> = shape.split('x').map(|x| x.parse().unwrap()).collect();
        let (nf, ns, max_iter) = (v[0] as usize, v[1] as usize, v[2]);
        let mut sc = closed_shape(nf, ns);
        sc.model.tol = 0.0;
        sc.model.max_iter = max_iter;
        let (mut lo, mut hi) = (1u32, 1201u32);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            sc.model.months = mid;
            let mut sink = Collect::default();
            if gpu.run_unchecked_for_tests(&vec![sc], &mut sink).is_ok() { lo = mid } else { hi = mid }
        }
        sc.model.months = lo;
        let good = moatsweep::gpu::loop_iterations(&sc);
        sc.model.months = lo + 1;
        let bad = moatsweep::gpu::loop_iterations(&sc);
        eprintln!("{nf}x{ns}, max_iter {max_iter}: at most {lo} months run whole: count {good}, one more month {bad} (cap 65535)");
    }
}
