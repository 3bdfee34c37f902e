//! Scenarios made on the device (`run --expand device`, `shaders/expand.wgsl`)
//! against the host's packing (`layout::pack` of `Plan::scenario`): every
//! parameter word of every row bit for bit, for every design that the device
//! makes (grid, random, lhs, sobol, saltelli, morris) and every kind of axis, on
//! 2^20 rows per sampled design and windows beyond 2^24 for sobol and random.
//! Then whole runs: `--expand device` writes the bytes `--expand host` writes.
//!
//! The expected words come from the host's own f64 code path (the one every GPU
//! run used before this pass existed), an implementation independent of the
//! shader's software arithmetic.
//!
//! Needs a GPU adapter (lavapipe in CI); without one the tests print "GPU TESTS
//! SKIPPED" and pass, unless `MOATSWEEP_REQUIRE_GPU=1`.

mod common;

use std::path::Path;

use moatsweep::backend::ScenarioSource;
use moatsweep::gpu::layout;
use moatsweep::gpu::{GpuBackend, GpuOptions};

fn gpu() -> Option<GpuBackend> {
    common::have_gpu().then(|| GpuBackend::new(&GpuOptions { allow_software: true, ..Default::default() }).expect("an adapter exists"))
}

/// Compares the device's words with the host's packing over `ranges` of positions [from, to).
fn compare(gpu: &mut GpuBackend, name: &str, text: &str, ranges: &[(u64, u64)]) -> u64 {
    let text = format!("version = 1\n{text}");
    let c = moatsweep::config::parse_config(name, &text, None, Path::new(".")).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (plan, reduce) = (c.plan, c.reduce);
    let program = moatsweep::engine::device_program(&plan, reduce.as_ref(), None).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (nf, ns) = (plan.n_firms(), plan.n_segments());
    let stride = layout::param_stride(nf, ns);
    let mut checked = 0;
    for &(from, to) in ranges {
        let mut start = from;
        while start < to {
            let n = (to - start).min(1 << 16);
            let device = gpu.expand_only(program.clone(), nf, ns, start, n).unwrap();
            let mut host = vec![0f32; stride];
            for k in 0..n {
                let p = start + k;
                let row = reduce.as_ref().map_or(p, |rp| rp.row(p));
                layout::pack(&plan.scenario(row), &mut host);
                let got = &device[k as usize * stride..][..stride];
                for (w, (&h, &d)) in host.iter().zip(got).enumerate() {
                    assert_eq!(
                        h.to_bits(),
                        d,
                        "{name}: position {p} (row {row}), parameter word {w}: host {h:e}, device {:e}",
                        f32::from_bits(d)
                    );
                }
            }
            checked += n;
            start += n;
        }
    }
    checked
}

/// A grid with every kind of grid axis: real, integer and month lists (with
/// `never`), range, logspace; parameters sent as values, logs and ln(1 + x); the
/// derived fields with one and with two axes among their inputs.
const GRID: &str = r#"
[sweep]
name = "every-axis"
[model]
months = 3
[axes]
"firm.open.release_month" = { values = [0, 2, "never"] }
"model.max_iter" = { values = [50, 300] }
"model.ad_uplift" = { values = [0.0, 0.013, 0.1] }
"model.spill_gap" = { range = [0.0, 0.3], steps = 4 }
"firm.challenger.train_spend" = { logspace = [1e8, 2e9], steps = 3 }
"model.train_usd_per_flop" = { logspace = [1e-18, 3e-18], steps = 3 }
"model.discount" = { range = [0.95, 0.995], steps = 3 }
"firm.open.spend_growth" = { range = [0.1, 2.0], steps = 3 }
"model.infer_usd_per_flop" = { logspace = [1e-19, 1e-18], steps = 2 }
"scaling.E" = { values = [1.7, 1.8172] }
"scaling.loss_ref" = { values = [2.2, 2.5] }
"#;

#[test]
fn grids_of_every_axis_kind_are_made_as_the_host_packs_them() {
    let Some(mut gpu) = gpu() else { return };
    let n = compare(&mut gpu, "grid", GRID, &[(0, 3 * 2 * 3 * 4 * 3 * 3 * 3 * 3 * 2 * 2 * 2)]);
    assert_eq!(n, 46_656);
}

/// Reductions with `best` and `game` solve positions in another order than rows.
#[test]
fn reordered_positions_of_best_and_game_are_made_as_the_host_packs_them() {
    let Some(mut gpu) = gpu() else { return };
    let best = format!(
        "{GRID}[reduce]\nby = [\"model.ad_uplift\"]\noutputs = [\"npv.open\"]\n[reduce.best]\naxis = \"firm.open.release_month\"\nmaximize = \"npv.open\"\nreference = \"never\"\n"
    );
    compare(&mut gpu, "best", &best, &[(0, 46_656)]);
    let game = format!(
        "{GRID}[reduce]\noutputs = [\"npv.open\"]\n[reduce.game]\nplayers = [{{ axis = \"firm.open.release_month\", payoff = \"npv.open\" }}, {{ axis = \"model.max_iter\", payoff = \"npv.challenger\" }}]\n"
    );
    compare(&mut gpu, "game", &game, &[(0, 46_656)]);
}

/// The axes of the sampled designs, on 2^20 rows: uniform and log-uniform reals,
/// a list of months with `never`, a short integer range (a table) and a long one
/// (computed), a list of reals.
const SAMPLED_AXES: &str = r#"
[model]
months = 3
[axes]
"model.ad_uplift" = { uniform = [0.0, 0.1] }
"firm.open.release_month" = { values = [0, 6, "never"] }
"model.generation_months" = { integers = [1, 24] }
"model.max_iter" = { integers = [1, 100000] }
"firm.challenger.brand" = { values = [-0.5, 0.25, 1.0] }
"firm.open.funding" = { loguniform = [1e9, 1e11] }
"#;

/// Continuous axes of parameters the kernel gets as logs and ln(1 + x), and of
/// the derived fields' inputs, alone (ln_serve), two together (ln_loss_gap) and
/// one with a list (ln_c6): each row takes several software logs (their
/// divisions loop over quotient bits, slow on llvmpipe), so these run on 2^13
/// rows per design.
const LOG_AXES: &str = r#"
"model.discount" = { uniform = [0.9, 0.999] }
"firm.open.spend_growth" = { uniform = [-0.5, 3.0] }
"firm.open.data_tokens" = { loguniform = [1e12, 1e14] }
"model.infer_usd_per_flop" = { loguniform = [1e-20, 1e-17] }
"scaling.E" = { uniform = [1.6, 1.9] }
"scaling.loss_ref" = { uniform = [2.0, 2.6] }
"firm.challenger.train_spend" = { loguniform = [1e8, 2e9] }
"model.train_usd_per_flop" = { values = [1e-18, 1.4e-18, 3e-18] }
"#;

/// Every design's rows with the log axes too.
fn logs(gpu: &mut GpuBackend, design: &str, rows: u64) {
    let text = format!("[sweep]\nname = \"l\"\n{design}\n{SAMPLED_AXES}{LOG_AXES}");
    assert_eq!(compare(gpu, "logs", &text, &[(0, rows)]), rows);
}

fn sampled(design: &str) -> String {
    format!("[sweep]\nname = \"s\"\n{design}\n{SAMPLED_AXES}")
}

#[test]
fn random_rows_are_made_as_the_host_packs_them() {
    let Some(mut gpu) = gpu() else { return };
    let n = compare(&mut gpu, "random", &sampled("design = \"random\"\nsamples = 1048576\nseed = 11"), &[(0, 1 << 20)]);
    assert_eq!(n, 1 << 20);
    logs(&mut gpu, "design = \"random\"\nsamples = 8192\nseed = 12", 1 << 13);
    // Beyond 2^24 rows (f32 holds integers exactly only below it) and near 2^32.
    let big = sampled("design = \"random\"\nsamples = 8589934592\nseed = 5");
    compare(&mut gpu, "random-big", &big, &[((1 << 24) - 4096, (1 << 24) + 4096), ((1 << 32) - 2048, (1 << 32) + 2048)]);
}

#[test]
fn lhs_rows_are_made_as_the_host_packs_them() {
    let Some(mut gpu) = gpu() else { return };
    compare(&mut gpu, "lhs", &sampled("design = \"lhs\"\nsamples = 1048576\nseed = 3"), &[(0, 1 << 20)]);
    // A sample count that is not a power of 4: the permutation walks its cycles.
    logs(&mut gpu, "design = \"lhs\"\nsamples = 8192\nseed = 13", 1 << 13);
    compare(&mut gpu, "lhs-odd", &sampled("design = \"lhs\"\nsamples = 1000003\nseed = 4"), &[(0, 65536), (1_000_003 - 4096, 1_000_003)]);
}

#[test]
fn sobol_rows_are_made_as_the_host_packs_them() {
    let Some(mut gpu) = gpu() else { return };
    compare(&mut gpu, "sobol", &sampled("design = \"sobol\"\nsamples = 1048576\nseed = 9"), &[(0, 1 << 20)]);
    logs(&mut gpu, "design = \"sobol\"\nsamples = 8192\nseed = 14", 1 << 13);
    // Beyond 2^24 points: the direction numbers' high bits.
    let big = sampled("design = \"sobol\"\nsamples = 67108864\nseed = 2");
    compare(&mut gpu, "sobol-big", &big, &[((1 << 24) - 4096, (1 << 24) + 4096), ((1 << 26) - 4096, 1 << 26)]);
}

#[test]
fn saltelli_rows_are_made_as_the_host_packs_them() {
    let Some(mut gpu) = gpu() else { return };
    // 6 axes: blocks of 8 rows, or 14 with second order.
    compare(&mut gpu, "saltelli", &sampled("design = \"saltelli\"\nsamples = 131072\nseed = 7"), &[(0, 1 << 20)]);
    compare(&mut gpu, "saltelli-2", &sampled("design = \"saltelli\"\nsamples = 8192\nsecond_order = true\nseed = 1"), &[(0, 8192 * 14)]);
    // 14 axes: blocks of 16 rows.
    logs(&mut gpu, "design = \"saltelli\"\nsamples = 512\nseed = 15", 1 << 13);
}

#[test]
fn morris_rows_are_made_as_the_host_packs_them() {
    let Some(mut gpu) = gpu() else { return };
    // 6 axes: trajectories of 7 rows.
    let n = compare(&mut gpu, "morris", &sampled("design = \"morris\"\ntrajectories = 149797\nlevels = 6\nseed = 8"), &[(0, 149_797 * 7)]);
    assert!(n >= 1 << 20);
    // 14 axes: trajectories of 15 rows (levels are tables: no software log per row).
    logs(&mut gpu, "design = \"morris\"\ntrajectories = 547\nlevels = 4\nseed = 16", 547 * 15);
}
