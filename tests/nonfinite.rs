//! No silent non-finite output (issue 22).
//!
//! - The parameter ranges keep the model finite: every real parameter at each end
//!   of its range (the others at the baseline) solves to finite outputs on the f64
//!   reference and, on an adapter, in the f32 kernel; so do the combined extremes
//!   that the issue's inputs pushed on, on the f64 reference, and in f32 all but
//!   one: the most compute on the least data with the dearest serving gives a
//!   serving cost above 1e41 $/Mtok, finite in f64 and beyond f32 (3.4e38). No single
//!   range can prevent that (it is a product of five parameters); a run on the GPU
//!   counts it and fails, which a test here shows without any hook.
//! - The issue's inputs are refused with exit status 2 naming the key (the config
//!   fixtures are in tests/configs/bad/, checked by tests/bad_configs.rs; here `run`
//!   and `scenario --set`).
//! - A non-finite output that still occurs is counted per column in the manifest,
//!   its first row printed, and `run` exits 1 unless `--allow-nonfinite`; the count
//!   survives `--resume` and `merge`, for rows (CSV, Parquet) and reductions. Since
//!   the ranges leave no way to make one, the hidden test hook
//!   `MOATSWEEP_TEST_NONFINITE=ROW:COLUMN[:VALUE]` (src/testhook.rs) poisons a
//!   solved value before it is written or reduced.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;
use moatsweep::backend::{Backend, Collect};
use moatsweep::config::{MAX_MARKET, MAX_SPEND};
use moatsweep::gpu::{GpuBackend, GpuOptions};
use moatsweep::model::outputs::{self, Column};
use moatsweep::model::params::{self, Group, Kind, PARAMS};
use moatsweep::model::scaling::MIN_LN_C6;
use moatsweep::model::{Outcome, Scenario};
use moatsweep::output::nonfinite::is_nonfinite;

// ---------------------------------------------------------------------------
// The ranges keep the model finite.

/// A value just inside an open end (or the end itself when closed).
fn inside(lo: f64, open: bool, toward: f64) -> f64 {
    if !open {
        return lo;
    }
    if lo == 0.0 { 1e-300 * toward.signum() } else { lo + (toward - lo) * 1e-12 }
}

/// The two ends of a real parameter's range.
fn ends(p: &params::ParamSpec) -> [f64; 2] {
    let b = p.bound;
    [inside(b.lo, b.lo_open, b.hi), inside(b.hi, b.hi_open, b.lo)]
}

/// Sets parameter `p` to `v` for every entity of its group.
fn set_all(sc: &mut Scenario, p: &params::ParamSpec, v: f64) {
    let n = match p.group {
        Group::Model | Group::Scaling => 1,
        Group::Firm => sc.n_firms,
        Group::Segment => sc.n_segments,
    };
    for i in 0..n {
        (p.set)(sc, i, v);
    }
}

/// The checks that involve several parameters (src/config/mod.rs, `cross_checks`),
/// restated from docs/model.md sections 1 and 2: loss_ref above E, the market at
/// most 1e30 Mtok, and every generation's spend at most 1e30 $/year with C/6 at
/// least 1e12 FLOP. A scenario that fails them is refused before any work.
fn accepted(sc: &Scenario) -> bool {
    let m = &sc.model;
    if sc.scaling.loss_ref <= sc.scaling.e {
        return false;
    }
    if market_ln_last(sc) > MAX_MARKET.ln() {
        return false;
    }
    let g = m.generation_months.max(1);
    let gens: Vec<u32> = if m.generation_months == 0 { vec![0] } else { (0..m.months).step_by(g as usize).collect() };
    sc.firms().iter().all(|f| {
        gens.iter().all(|&t| {
            let spend = f.train_spend * (t as f64 / 12.0 * f.spend_growth.ln_1p()).exp();
            spend <= MAX_SPEND && (spend / m.train_usd_per_flop / 6.0).ln() >= MIN_LN_C6
        })
    })
}

fn market_ln_last(sc: &Scenario) -> f64 {
    sc.model.market0.ln() + ((sc.model.months as f64 - 1.0) * sc.model.market_growth.ln_1p()).max(0.0)
}

/// Every real parameter at each end of its range, the others at the baseline
/// (segment weights excepted: they must sum to 1), where the config checks accept it.
fn single_corners() -> (Vec<(String, Scenario)>, usize) {
    let mut out = Vec::new();
    let mut refused = 0;
    for p in PARAMS.iter().filter(|p| p.kind == Kind::Real && !p.is(params::segment::weight())) {
        for v in ends(p) {
            let mut sc = params::baseline();
            set_all(&mut sc, p, v);
            if accepted(&sc) {
                out.push((format!("{} = {v:e}", p.path("*")), sc));
            } else {
                refused += 1;
            }
        }
    }
    (out, refused)
}

/// Combined extremes where the issue's inputs overflowed: the largest compute with
/// the least data (N at the top of the bisection bracket), the largest utilities
/// with the smallest price sensitivity, the largest money terms.
fn combined_corners() -> Vec<(String, Scenario)> {
    let mut v = Vec::new();
    let base = params::baseline;
    let mut sc = base();
    sc.model.train_usd_per_flop = 1e-24;
    sc.model.infer_usd_per_flop = 1e-12;
    for f in &mut sc.firms[..sc.n_firms] {
        f.train_spend = 1e30;
        f.spend_growth = 0.0;
        f.data_tokens = 1e6;
        f.data_growth = 0.0;
        f.cost_factor = 1000.0;
    }
    v.push(("most compute, least data, dearest serving".to_string(), sc));

    let mut sc = base();
    sc.model.market0 = 1e20;
    sc.model.market_growth = 0.0;
    sc.model.discount = 1.0;
    sc.model.ad_uplift = 1000.0;
    sc.model.community_quality = 10.0;
    sc.model.community_gain = 1000.0;
    sc.model.community_decay = 0.0;
    for s in &mut sc.segments[..sc.n_segments] {
        s.intercept = 100.0;
        s.quality_taste = 10.0;
        s.open_taste = 100.0;
        s.price_sens = 1e-3;
    }
    for f in &mut sc.firms[..sc.n_firms] {
        f.brand = 100.0;
        f.platform_revenue = 1e30;
        f.funding = 1e35;
    }
    v.push(("largest utilities and money, least price sensitivity".to_string(), sc));

    let mut sc = base();
    for s in &mut sc.segments[..sc.n_segments] {
        s.intercept = -100.0;
        s.quality_taste = -10.0;
        s.open_taste = -100.0;
        s.price_sens = 1e3;
    }
    for f in &mut sc.firms[..sc.n_firms] {
        f.brand = -100.0;
    }
    v.push(("smallest utilities, most price sensitivity".to_string(), sc));

    let mut sc = base();
    sc.scaling.a = 1e-3;
    sc.scaling.b = 1e-3;
    sc.scaling.alpha = 0.6;
    sc.scaling.beta = 0.6;
    sc.scaling.e = 100.0;
    sc.scaling.loss_ref = 1000.0;
    sc.model.train_usd_per_flop = 1e-24;
    for f in &mut sc.firms[..sc.n_firms] {
        f.train_spend = 1e30;
        f.spend_growth = 0.0;
    }
    v.push(("smallest reducible loss (largest capability)".to_string(), sc));
    for (name, sc) in &v {
        assert!(accepted(sc), "{name}: the corner must be a config the checks accept");
    }
    v
}

fn columns() -> Vec<(String, Column)> {
    let firms: Vec<String> = params::DEFAULT_FIRM_NAMES.iter().map(|s| s.to_string()).collect();
    outputs::columns(&firms)
}

fn nonfinite_columns<F: Copy + Into<f64>>(o: &Outcome<F>, cols: &[(String, Column)]) -> Vec<String> {
    cols.iter().filter(|(_, c)| is_nonfinite(o, *c)).map(|(n, _)| n.clone()).collect()
}

#[test]
fn every_end_of_every_range_solves_to_finite_outputs_on_the_reference() {
    let (corners, refused) = single_corners();
    // Most ends are configs: the ones refused are those whose growth or horizon
    // the cross-checks cap (e.g. 1200 months of the default growth).
    assert!(corners.len() >= 3 * refused && corners.len() > 60, "{} corners, {refused} refused", corners.len());
    let cols = columns();
    let mut bad = Vec::new();
    for (name, sc) in corners.iter().chain(&combined_corners()) {
        let o = moatsweep::model::solve(sc);
        let nf = nonfinite_columns(&o, &cols);
        if !nf.is_empty() {
            bad.push(format!("{name}: {}", nf.join(", ")));
        }
    }
    assert!(bad.is_empty(), "non-finite outputs on the f64 reference:\n{}", bad.join("\n"));
}

#[test]
fn every_end_of_every_range_solves_to_finite_outputs_in_the_f32_kernel() {
    if !common::have_gpu() {
        return;
    }
    // The first combined corner is left out: its serving cost (above 1e41 $/Mtok) is
    // beyond f32's range, which no single range can prevent (see
    // `the_f32_kernel_beyond_its_range_is_counted_not_silent`).
    let (mut corners, _) = single_corners();
    corners.extend(combined_corners().into_iter().skip(1));
    let scs: Vec<Scenario> = corners.iter().map(|(_, sc)| *sc).collect();
    let mut gpu = GpuBackend::new(&GpuOptions { allow_software: true, ..Default::default() }).unwrap();
    let mut sink = Collect::default();
    gpu.run(&scs, 0..scs.len() as u64, &mut sink).unwrap();
    assert_eq!(sink.f32.len(), scs.len());
    let cols = columns();
    let bad: Vec<String> = corners
        .iter()
        .zip(&sink.f32)
        .filter_map(|((name, _), o)| {
            let nf = nonfinite_columns(o, &cols);
            (!nf.is_empty()).then(|| format!("{name}: {}", nf.join(", ")))
        })
        .collect();
    assert!(bad.is_empty(), "non-finite outputs in the f32 kernel:\n{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------
// The issue's inputs are refused with exit status 2.

fn moatsweep() -> Command {
    let mut c = Command::cargo_bin("moatsweep").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c.env_remove("MOATSWEEP_TEST_NONFINITE").env_remove("MOATSWEEP_TEST_ABORT");
    c
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_and_scenario_refuse_the_issues_inputs_naming_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    for (fixture, key) in [
        ("train-price-denormal", "model.train_usd_per_flop"),
        ("brand-huge", "firm.open.brand"),
        ("price-sens-denormal", "segment.developers.price_sens"),
        ("quality-taste-huge", "segment.consumers.quality_taste"),
    ] {
        let cfg = format!("tests/configs/bad/{fixture}.toml");
        let out = tmp.path().join(format!("{fixture}.csv"));
        let o = moatsweep().args(["run", "--quiet", "--backend", "cpu", &cfg, "--out"]).arg(&out).output().unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{fixture}: {e}");
        assert!(e.starts_with(&format!("error: {cfg}:")) && e.contains(&format!(": {key}: value ")), "{fixture}: {e}");
        assert!(e.contains("is outside the allowed range"), "{fixture}: {e}");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "{fixture}: nothing may be written");
    }
    for set in ["segment.developers.price_sens=1e-300", "model.train_usd_per_flop=5e-324", "segment.consumers.quality_taste=1e308"] {
        let o = moatsweep().args(["scenario", "configs/baseline.toml", "--set", set]).output().unwrap();
        let key = set.split('=').next().unwrap();
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{set}: {e}");
        assert!(e.starts_with(&format!("error: --set: {key}: value ")) && e.contains("outside the allowed range"), "{set}: {e}");
        assert!(o.stdout.is_empty(), "{set}: no table is printed");
    }
}

// ---------------------------------------------------------------------------
// Non-finite output is counted, reported and fails the run.

const SWEEP: &str = r#"version = 1
[sweep]
name = "nf"
[axes]
"firm.open.release_month" = { values = [0, 6, 12, "never"] }
"model.ad_uplift" = { values = [0.01, 0.02, 0.03] }
"#;

const REDUCED: &str = r#"
[reduce]
by = ["model.ad_uplift"]
outputs = ["npv.open", "hhi", "share.challenger"]
stats = ["mean", "count"]
"#;

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(cfg: &Path, out: &Path, backend: &str, poison: Option<&str>, extra: &[&str]) -> Output {
    let mut c = moatsweep();
    if let Some(p) = poison {
        c.env("MOATSWEEP_TEST_NONFINITE", p);
    }
    c.args(["run", "--quiet", "--backend", backend, "--chunk-rows", "4"]).arg(cfg).arg("--out").arg(out).args(extra);
    c.output().unwrap()
}

fn manifest(path: &Path) -> serde_json::Value {
    let p = format!("{}.manifest.json", path.display());
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))).unwrap()
}

fn backends() -> Vec<&'static str> {
    let mut b = vec!["cpu"];
    if common::have_gpu() {
        b.push("gpu");
    }
    b
}

/// The CSV cells of `column` (header name) by row.
fn csv_column(path: &Path, column: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == column).unwrap();
    lines.map(|l| l.split(',').nth(k).unwrap().to_string()).collect()
}

#[test]
fn a_nonfinite_output_is_counted_printed_and_fails_the_run_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "nf.toml", SWEEP);
    for backend in backends() {
        // Without non-finite values: exit 0 and no `nonfinite` key at all.
        let clean = tmp.path().join(format!("clean-{backend}.csv"));
        let o = run(&cfg, &clean, backend, None, &["--verify", "0"]);
        assert!(o.status.success(), "{backend}: {}", stderr(&o));
        let m = manifest(&clean);
        assert!(m.get("nonfinite").is_none() && m.get("first_nonfinite_row").is_none(), "{backend}: {m}");

        // Two poisoned values in row 5, one in row 9.
        let out = tmp.path().join(format!("nf-{backend}.csv"));
        let poison = "9:hhi:inf;5:npv.open;5:price.frontier_a:-inf";
        let o = run(&cfg, &out, backend, Some(poison), &["--verify", "0"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{backend}: {e}");
        assert_eq!(e.lines().count(), 1, "{backend}: one line: {e}");
        assert!(e.contains("3 non-finite values (hhi: 1, npv.open: 1, price.frontier_a: 1), the first in row 5"), "{backend}: {e}");
        assert!(e.contains("--allow-nonfinite"), "{backend}: {e}");
        // The files are complete: the CSV holds every row, with the values as solved.
        assert!(!Path::new(&format!("{}.partial", out.display())).exists());
        let npv = csv_column(&out, "npv.open");
        assert_eq!(npv.len(), 12, "{backend}");
        assert_eq!((npv[5].as_str(), csv_column(&out, "hhi")[9].as_str()), ("NaN", "inf"), "{backend}");
        let m = manifest(&out);
        assert_eq!(m["nonfinite"], serde_json::json!({"hhi": 1, "npv.open": 1, "price.frontier_a": 1}), "{backend}");
        assert_eq!(m["first_nonfinite_row"], 5, "{backend}");

        // --allow-nonfinite: the same files, exit 0, the count still printed.
        let allowed = tmp.path().join(format!("allowed-{backend}.csv"));
        let o = run(&cfg, &allowed, backend, Some(poison), &["--verify", "0", "--allow-nonfinite"]);
        let e = stderr(&o);
        assert!(o.status.success(), "{backend}: {e}");
        assert!(e.starts_with("warning: ") && e.contains("the first in row 5"), "{backend}: {e}");
        assert_eq!(manifest(&allowed)["nonfinite"], m["nonfinite"]);
        assert_eq!(std::fs::read(&allowed).unwrap(), std::fs::read(&out).unwrap(), "{backend}");
    }
}

/// A NaN GPU value is never excused by `--verify`: with `--allow-nonfinite` the run
/// still fails, on the verification (the reference of the poisoned row is finite).
#[test]
fn verify_counts_a_nan_gpu_value_beyond_tolerance() {
    if !common::have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "nf.toml", SWEEP);
    let out = tmp.path().join("v.csv");
    let o = run(&cfg, &out, "gpu", Some("4:share.open"), &["--verify", "12", "--allow-nonfinite"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("--verify: 1 of 12 re-solved rows deviate") && e.contains("row 4 share.open: reference"), "{e}");
    let v = &manifest(&out)["verify"];
    assert_eq!((v["beyond_tolerance"].as_u64(), v["columns"]["share.open"]["beyond"].as_u64()), (Some(1), Some(1)), "{v}");
    // Without the poison the same run verifies.
    let o = run(&cfg, &tmp.path().join("clean.csv"), "gpu", None, &["--verify", "12"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn parquet_rows_count_them_too() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "nf.toml", SWEEP);
    for backend in backends() {
        let out = tmp.path().join(format!("nf-{backend}.parquet"));
        // Row groups of 5 rows: the encoder holds rows back across chunks of 4.
        let mut c = moatsweep();
        c.env("MOATSWEEP_TEST_NONFINITE", "7:consumer_surplus_npv;11:quality.open:inf").env("MOATSWEEP_TEST_ROW_GROUP_ROWS", "5");
        c.args(["run", "--quiet", "--backend", backend, "--chunk-rows", "4", "--format", "parquet", "--verify", "0"])
            .arg(&cfg)
            .arg("--out")
            .arg(&out);
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(1), "{backend}: {}", stderr(&o));
        let m = manifest(&out);
        assert_eq!(m["nonfinite"], serde_json::json!({"consumer_surplus_npv": 1, "quality.open": 1}), "{backend}");
        assert_eq!(m["first_nonfinite_row"], 7);
    }
}

/// A reduction counts them by reduced output, among the values it takes in (on the
/// CPU, where the hook reaches the rows; a device reduction sees its own values).
#[test]
fn a_reduction_counts_them_by_reduced_output() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "r.toml", &format!("{SWEEP}{REDUCED}"));
    let out = tmp.path().join("r.csv");
    // npv.open and hhi are reduced; outside_share is not, so it is not counted.
    let o = run(&cfg, &out, "cpu", Some("3:npv.open:inf;8:hhi;2:outside_share"), &[]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("r.reduced.csv: 2 non-finite values (hhi: 1, npv.open: 1), the first in row 3"), "{e}");
    let m = manifest(&tmp.path().join("r.reduced.csv"));
    assert_eq!(m["nonfinite"], serde_json::json!({"hhi": 1, "npv.open": 1}), "{m}");
    assert_eq!(m["first_nonfinite_row"], 3);
}

/// `--resume` keeps the count of the rows before the checkpoint (they are not
/// solved again), and `merge` adds up the shards': both give the manifest of one
/// uninterrupted run. A reduction is cut only on whole blocks of 4096 positions,
/// so its sweep is larger (8400 positions, chunks of 1024).
#[test]
fn the_count_survives_resume_and_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "nf.toml", SWEEP);
    let big = format!("{SWEEP}\"firm.challenger.funding\" = {{ logspace = [3e7, 1e9], steps = 700 }}\n{REDUCED}");
    let rcfg = write_config(tmp.path(), "r.toml", &big);
    let want = serde_json::json!({"hhi": 1, "npv.open": 1});
    // (config, reduced, chunk rows, the poison: one value in each shard's rows)
    for (cfg, reduced, chunk, last) in [(&cfg, false, 4u64, 10u64), (&rcfg, true, 1024, 8000)] {
        let poison = format!("1:npv.open;{last}:hhi:-inf");
        let poison = poison.as_str();
        let file =
            |out: &Path| if reduced { PathBuf::from(out.display().to_string().replace(".csv", ".reduced.csv")) } else { out.to_path_buf() };
        let go = |out: &Path, extra: &[&str], abort: Option<&str>| {
            let mut c = moatsweep();
            c.env("MOATSWEEP_TEST_NONFINITE", poison);
            if let Some(a) = abort {
                c.env("MOATSWEEP_TEST_ABORT", a);
            }
            c.args(["run", "--quiet", "--backend", "cpu", "--chunk-rows", &chunk.to_string()]).arg(cfg).arg("--out").arg(out).args(extra);
            c.output().unwrap()
        };
        let whole = tmp.path().join(format!("whole-{reduced}.csv"));
        assert_eq!(go(&whole, &[], None).status.code(), Some(1));
        let mw = manifest(&file(&whole));
        assert_eq!((&mw["nonfinite"], &mw["first_nonfinite_row"]), (&want, &serde_json::json!(1)), "reduced {reduced}");

        // Killed after the checkpoint of the first two chunks (the first checkpoint is the empty start).
        let out = tmp.path().join(format!("resumed-{reduced}.csv"));
        let killed = go(&out, &[], Some("checkpoint:3"));
        assert!(stderr(&killed).contains("test hook: aborting"), "reduced {reduced}: {}", stderr(&killed));
        let o = go(&out, &["--resume"], None);
        assert_eq!(o.status.code(), Some(1), "reduced {reduced}: {}", stderr(&o));
        let m = manifest(&file(&out));
        assert_eq!(m["resumed_at_row"], 2 * chunk, "reduced {reduced}");
        assert_eq!((&m["nonfinite"], &m["first_nonfinite_row"]), (&want, &serde_json::json!(1)), "reduced {reduced}");

        // Two shards, one poisoned value in each.
        let base = tmp.path().join(format!("sharded-{reduced}.csv"));
        let mut shards = Vec::new();
        for s in ["0/2", "1/2"] {
            let o = go(&base, &["--shard", s], None);
            assert_eq!(o.status.code(), Some(1), "reduced {reduced} shard {s}: {}", stderr(&o));
            let i = &s[..1];
            shards.push(file(&tmp.path().join(format!("sharded-{reduced}.shard-{i}-of-2.csv"))));
        }
        assert_eq!(manifest(&shards[0])["nonfinite"], serde_json::json!({"npv.open": 1}));
        assert_eq!(manifest(&shards[1])["first_nonfinite_row"], last);
        let merged = file(&tmp.path().join(format!("merged-{reduced}.csv")));
        let o = moatsweep().arg("merge").arg(&merged).args(&shards).output().unwrap();
        assert!(o.status.success(), "reduced {reduced}: {}", stderr(&o));
        let m = manifest(&merged);
        assert_eq!((&m["nonfinite"], &m["first_nonfinite_row"]), (&want, &serde_json::json!(1)), "reduced {reduced}");
    }
}

/// The one place the ranges leave to f32: the largest compute on the least data
/// (N at the top of the bisection bracket) with the dearest serving gives a
/// serving cost above 1e41 $/Mtok. The f64 reference writes it; the GPU's prices and
/// npvs overflow, and the run counts them and fails instead of passing them on;
/// `--verify` counts them beyond tolerance.
#[test]
fn the_f32_kernel_beyond_its_range_is_counted_not_silent() {
    let tmp = tempfile::tempdir().unwrap();
    let mut text = String::from("version = 1\n[sweep]\nname = \"edge\"\n[model]\ntrain_usd_per_flop = 1e-24\ninfer_usd_per_flop = 1e-12\n");
    for f in params::DEFAULT_FIRM_NAMES {
        text += &format!(
            "[[firm]]\nname = \"{f}\"\ntrain_spend = 1e30\nspend_growth = 0\ndata_tokens = 1e6\ndata_growth = 0\ncost_factor = 1000\n"
        );
    }
    text += "[axes]\n\"model.ad_uplift\" = { values = [0.01, 0.02] }\n";
    let cfg = write_config(tmp.path(), "edge.toml", &text);
    let cpu = tmp.path().join("cpu.csv");
    let o = run(&cfg, &cpu, "cpu", None, &[]);
    assert!(o.status.success(), "the f64 reference stays finite: {}", stderr(&o));
    assert!(manifest(&cpu).get("nonfinite").is_none());
    // The premise: the reference's serving cost, finite, is beyond f32's range.
    let p: f64 = csv_column(&cpu, "price.open")[0].parse().unwrap();
    assert!(p.is_finite() && p > f32::MAX as f64, "price {p:e}");
    if !common::have_gpu() {
        return;
    }
    let gpu = tmp.path().join("gpu.csv");
    let o = run(&cfg, &gpu, "gpu", None, &["--verify", "0"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("the first in row 0") && e.contains("price.open: 2"), "{e}");
    let nf = manifest(&gpu)["nonfinite"].clone();
    for f in params::DEFAULT_FIRM_NAMES {
        assert_eq!(nf[format!("price.{f}")], 2, "{nf}");
    }
    let o = run(&cfg, &tmp.path().join("v.csv"), "gpu", None, &["--verify", "2", "--allow-nonfinite"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("--verify: 2 of 2 re-solved rows deviate"), "{e}");

    // Reduced on the device, which hands back partials only: the NaN npvs it
    // skipped are counted exactly (npv is never empty, so each missing value is
    // one), the infinite prices once per block of a group.
    let rcfg = write_config(
        tmp.path(),
        "edge-r.toml",
        &format!(
            "{text}[reduce]\nby = [\"model.ad_uplift\"]\noutputs = [\"npv.open\", \"price.open\", \"share.open\"]\nstats = [\"mean\", \"count\"]\n"
        ),
    );
    let out = tmp.path().join("r.csv");
    let o = run(&rcfg, &out, "gpu", None, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let m = manifest(&tmp.path().join("r.reduced.csv"));
    assert_eq!(m["nonfinite"], serde_json::json!({"npv.open": 2, "price.open": 2}), "{m}");
    // The same on the CPU: finite.
    let o = run(&rcfg, &tmp.path().join("rc.csv"), "cpu", None, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}
