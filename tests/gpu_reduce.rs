//! `[reduce]` on the GPU (lavapipe will do): the device's reduction equals the
//! statistics of the GPU's own rows (counts, min, max, choices and quantile buckets
//! exactly; means and spreads to f32's rounding), agrees with the CPU's reduction,
//! and its bytes do not depend on chunk size, shards + merge or kill -9 + resume.
//! Without an adapter it says so loudly and passes, unless MOATSWEEP_REQUIRE_GPU=1.

mod common;
mod support;

use std::path::{Path, PathBuf};

use common::have_gpu;
use moatsweep::reduce::sketch::Sketch;
use support::{Table, moatsweep};

const ALPHA: f64 = 0.01;

fn run(cfg: &Path, extra: &[&str]) -> String {
    let out = moatsweep().args(["run", "--quiet"]).arg(cfg).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const AXES: &str = "[model]\nmonths = 18\n[axes]\n\
    \"firm.open.release_month\" = { values = [0, 4, 9, \"never\"] }\n\
    \"model.ad_uplift\" = { logspace = [1e-3, 1e-1], steps = 3 }\n\
    \"firm.challenger.funding\" = { logspace = [3e7, 1e9], steps = 4 }\n\
    \"firm.challenger.train_spend\" = { logspace = [2e8, 1e9], steps = 40 }\n";
const OUTPUTS: &[&str] = &["npv.open", "share.open", "price.open", "exit_month.challenger", "exited.challenger"];

/// The values of an output in the GPU's rows: each cell is the shortest decimal of an
/// f32, read back to that f32 exactly.
fn values(t: &Table, rows: &[&Vec<Option<f64>>], name: &str) -> Vec<f64> {
    match name.strip_prefix("exited.") {
        Some(f) => {
            let c = t.col(&format!("exit_month.{f}"));
            rows.iter().map(|r| if r[c].unwrap() >= 0.0 { 1.0 } else { 0.0 }).collect()
        }
        None => {
            let c = t.col(name);
            rows.iter().filter_map(|r| r[c]).map(|x| x as f32 as f64).collect()
        }
    }
}

/// The GPU's rows of the sweep of `AXES` (no reduction), in `dir/rows.csv`.
fn gpu_rows(dir: &Path) -> PathBuf {
    let plain = dir.join("plain.toml");
    std::fs::write(&plain, format!("version = 1\n[sweep]\nname = \"g\"\n{AXES}")).unwrap();
    let rows_csv = dir.join("rows.csv");
    run(&plain, &["--backend", "gpu", "--verify", "0", "--out", rows_csv.to_str().unwrap()]);
    rows_csv
}

#[test]
fn the_device_reduction_equals_the_statistics_of_the_gpu_rows() {
    if !have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rows_csv = gpu_rows(tmp.path());
    let cfg = tmp.path().join("reduced.toml");
    let outs: Vec<String> = OUTPUTS.iter().map(|o| format!("\"{o}\"")).collect();
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n[sweep]\nname = \"g\"\n{AXES}[reduce]\nby = [\"model.ad_uplift\", \"firm.challenger.funding\"]\noutputs = [{}]\n\
             stats = [\"mean\", \"std\", \"min\", \"max\", \"count\", \"q05\", \"q50\", \"q95\"]\n\
             [reduce.best]\naxis = \"firm.open.release_month\"\nmaximize = \"npv.open\"\n",
            outs.join(", ")
        ),
    )
    .unwrap();
    run(&cfg, &["--backend", "gpu", "--out", tmp.path().join("g.csv").to_str().unwrap()]);
    run(&cfg, &["--backend", "cpu", "--out", tmp.path().join("c.csv").to_str().unwrap()]);
    let rows = Table::read(&rows_csv);
    let gpu = Table::read(&tmp.path().join("g.reduced.csv"));
    let cpu = Table::read(&tmp.path().join("c.reduced.csv"));
    assert_eq!(gpu.header, cpu.header);
    assert_eq!(gpu.rows.len(), 12);
    let (c_ad, c_fund, c_month, c_spend, c_npv) = (
        rows.col("model.ad_uplift"),
        rows.col("firm.challenger.funding"),
        rows.col("firm.open.release_month"),
        rows.col("firm.challenger.train_spend"),
        rows.col("npv.open"),
    );
    for (g, c) in gpu.rows.iter().zip(&cpu.rows) {
        let (ad, fund) = (g[gpu.col("model.ad_uplift")].unwrap(), g[gpu.col("firm.challenger.funding")].unwrap());
        let group: Vec<&Vec<Option<f64>>> = rows.rows.iter().filter(|r| r[c_ad] == Some(ad) && r[c_fund] == Some(fund)).collect();
        assert_eq!(group.len(), 160);
        for name in OUTPUTS {
            let xs = values(&rows, &group, name);
            let cell = |stat: &str| g[gpu.col(&format!("{name}.{stat}"))];
            let n = xs.len() as f64;
            let mean = xs.iter().sum::<f64>() / n;
            let scale = xs.iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-30);
            let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
            assert_eq!(cell("count"), Some(n), "{name}.count");
            assert_eq!(cell("min"), Some(xs.iter().cloned().fold(f64::INFINITY, f64::min)), "{name}.min");
            assert_eq!(cell("max"), Some(xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max)), "{name}.max");
            // f32 partials over blocks of rows: a few f32 roundings of the largest |x|.
            assert!((cell("mean").unwrap() - mean).abs() <= 1e-6 * scale, "{name}.mean {} vs {mean}", cell("mean").unwrap());
            assert!((cell("std").unwrap() - std).abs() <= 1e-5 * scale, "{name}.std {} vs {std}", cell("std").unwrap());
            for (stat, q) in [("q05", 0.05), ("q50", 0.5), ("q95", 0.95)] {
                let mut s = xs.clone();
                s.sort_by(f64::total_cmp);
                let want = s[(q * (n - 1.0)).floor() as usize];
                let got = cell(stat).unwrap();
                assert!((got - want).abs() <= ALPHA * want.abs() * (1.0 + 1e-9), "{name}.{stat}: {got} vs {want}");
            }
            // And the CPU's reduction of its own f64 rows, within the f32 kernel's tolerance.
            let cm = c[cpu.col(&format!("{name}.mean"))].unwrap();
            assert!((cell("mean").unwrap() - cm).abs() <= 1e-3 * scale, "{name}.mean gpu vs cpu");
        }
        // Best: the GPU's rows, brute force.
        let mut counts = [0u32; 4];
        let mut spends: Vec<f64> = group.iter().map(|r| r[c_spend].unwrap()).collect();
        spends.sort_by(f64::total_cmp);
        spends.dedup();
        for spend in &spends {
            let world: Vec<f64> = [0.0, 4.0, 9.0, -1.0]
                .iter()
                .map(|m| group.iter().find(|r| r[c_spend] == Some(*spend) && r[c_month] == Some(*m)).unwrap()[c_npv].unwrap())
                .collect();
            let mut best = 0;
            for k in 1..4 {
                if world[k] > world[best] {
                    best = k;
                }
            }
            counts[best] += 1;
        }
        for (k, label) in ["0", "4", "9", "never"].iter().enumerate() {
            assert_eq!(g[gpu.col(&format!("best.{label}.share"))], Some(counts[k] as f64 / spends.len() as f64), "best.{label}.share");
        }
    }
}

/// Groups of 4 rows: the device reduces each (block, group) segment of at most
/// 32 rows with one invocation (`reduce_small`) instead of a workgroup; its
/// statistics must be those of the GPU's rows as well.
#[test]
fn short_segments_reduce_to_the_statistics_of_the_gpu_rows() {
    if !have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rows_csv = gpu_rows(tmp.path());
    let cfg = tmp.path().join("small.toml");
    let outs: Vec<String> = OUTPUTS.iter().map(|o| format!("\"{o}\"")).collect();
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n[sweep]\nname = \"g\"\n{AXES}[reduce]\nby = [\"model.ad_uplift\", \"firm.challenger.funding\", \"firm.challenger.train_spend\"]\noutputs = [{}]\n\
             stats = [\"mean\", \"std\", \"min\", \"max\", \"count\", \"q50\"]\n",
            outs.join(", ")
        ),
    )
    .unwrap();
    run(&cfg, &["--backend", "gpu", "--out", tmp.path().join("g.csv").to_str().unwrap()]);
    let rows = Table::read(&rows_csv);
    let gpu = Table::read(&tmp.path().join("g.reduced.csv"));
    assert_eq!(gpu.rows.len(), 3 * 4 * 40);
    let keys = ["model.ad_uplift", "firm.challenger.funding", "firm.challenger.train_spend"];
    for g in &gpu.rows {
        let group: Vec<&Vec<Option<f64>>> = rows.rows.iter().filter(|r| keys.iter().all(|k| r[rows.col(k)] == g[gpu.col(k)])).collect();
        assert_eq!(group.len(), 4, "one row per release month");
        for name in OUTPUTS {
            let xs = values(&rows, &group, name);
            let cell = |stat: &str| g[gpu.col(&format!("{name}.{stat}"))];
            let n = xs.len() as f64;
            assert_eq!(cell("count"), Some(n), "{name}.count");
            if xs.is_empty() {
                continue;
            }
            let mean = xs.iter().sum::<f64>() / n;
            let scale = xs.iter().map(|x| x.abs()).fold(0.0, f64::max).max(1e-30);
            assert_eq!(cell("min"), Some(xs.iter().cloned().fold(f64::INFINITY, f64::min)), "{name}.min");
            assert_eq!(cell("max"), Some(xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max)), "{name}.max");
            assert!((cell("mean").unwrap() - mean).abs() <= 1e-6 * scale, "{name}.mean {} vs {mean}", cell("mean").unwrap());
            if xs.len() > 1 {
                let std = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
                assert!((cell("std").unwrap() - std).abs() <= 1e-5 * scale, "{name}.std {} vs {std}", cell("std").unwrap());
            }
        }
    }
}

/// The device counts each segment's sketch buckets and the host adds the counts
/// (issue 21): every quantile must be exactly what the host's own sketch
/// (`Sketch::add` on each f32 value, read as f64) gives for the GPU's rows, with
/// segments reduced by a workgroup (groups of 160 rows) and by one invocation
/// (groups of 4 rows), over values of both signs, zeros and empty cells.
#[test]
fn device_quantiles_are_the_host_sketch_of_the_gpu_rows() {
    if !have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rows_csv = gpu_rows(tmp.path());
    let rows = Table::read(&rows_csv);
    let outputs =
        ["npv.open", "share.open", "price.open", "exit_month.challenger", "exited.challenger", "npv.challenger", "price.challenger"];
    let all: Vec<&Vec<Option<f64>>> = rows.rows.iter().collect();
    // What the data holds, so that the test covers it.
    let every: Vec<f64> = outputs.iter().flat_map(|o| values(&rows, &all, o)).collect();
    assert!(every.iter().any(|&x| x < 0.0) && every.contains(&0.0) && every.iter().any(|&x| x > 0.0));
    assert!(outputs.iter().any(|o| values(&rows, &all, o).len() < all.len()), "no empty cell in the GPU's rows");
    let quoted: Vec<String> = outputs.iter().map(|o| format!("\"{o}\"")).collect();
    for (name, by, size) in [
        ("large", "\"model.ad_uplift\", \"firm.challenger.funding\"", 160),
        ("small", "\"model.ad_uplift\", \"firm.challenger.funding\", \"firm.challenger.train_spend\"", 4),
    ] {
        let cfg = tmp.path().join(format!("{name}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "version = 1\n[sweep]\nname = \"g\"\n{AXES}[reduce]\nby = [{by}]\noutputs = [{}]\n\
                 stats = [\"min\", \"max\", \"count\", \"q05\", \"q50\", \"q95\"]\n",
                quoted.join(", ")
            ),
        )
        .unwrap();
        let out = tmp.path().join(format!("{name}.csv"));
        run(&cfg, &["--backend", "gpu", "--out", out.to_str().unwrap()]);
        let gpu = Table::read(&tmp.path().join(format!("{name}.reduced.csv")));
        let keys: Vec<&str> = by.split(", ").map(|k| k.trim_matches('"')).collect();
        let mut checked = 0;
        for g in &gpu.rows {
            let group: Vec<&Vec<Option<f64>>> = rows.rows.iter().filter(|r| keys.iter().all(|k| r[rows.col(k)] == g[gpu.col(k)])).collect();
            assert_eq!(group.len(), size);
            for o in outputs {
                let xs = values(&rows, &group, o);
                let cell = |stat: &str| g[gpu.col(&format!("{o}.{stat}"))];
                assert_eq!(cell("count"), Some(xs.len() as f64), "{name} {o}.count");
                let mut sketch = Sketch::default();
                for &x in &xs {
                    sketch.add(x);
                }
                let (lo, hi) = (xs.iter().cloned().fold(f64::INFINITY, f64::min), xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max));
                for (stat, q) in [("q05", 0.05), ("q50", 0.5), ("q95", 0.95)] {
                    assert_eq!(cell(stat), sketch.quantile(q, lo, hi), "{name} {o}.{stat}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, gpu.rows.len() * outputs.len() * 3);
    }
}

fn long_config(dir: &Path) -> PathBuf {
    let path = dir.join("long.toml");
    std::fs::write(
        &path,
        "version = 1\n[sweep]\nname = \"long\"\n[model]\nmonths = 24\n[axes]\n\
         \"firm.open.release_month\" = { values = [0, 3, 6, 9, 12, 18, 24, \"never\"] }\n\
         \"model.ad_uplift\" = { logspace = [1e-3, 1e-1], steps = 25 }\n\
         \"firm.challenger.funding\" = { logspace = [3e7, 1e9], steps = 40 }\n\
         \"firm.challenger.train_spend\" = { logspace = [2e8, 1e9], steps = 40 }\n\
         [reduce]\nby = [\"model.ad_uplift\", \"firm.challenger.funding\"]\noutputs = [\"npv.open\", \"share.open\", \"price.challenger\", \"exited.challenger\"]\n\
         stats = [\"mean\", \"std\", \"min\", \"max\", \"count\", \"q50\"]\n\
         [reduce.best]\naxis = \"firm.open.release_month\"\nmaximize = \"npv.open\"\n",
    )
    .unwrap();
    path
}

#[test]
fn gpu_reduced_bytes_do_not_depend_on_chunks_shards_or_resume() {
    if !have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = long_config(dir);
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    let gpu = ["--backend", "gpu"];
    run(&cfg, &[&gpu[..], &["--out", &path("full.csv")]].concat());
    let full = std::fs::read(dir.join("full.reduced.csv")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("full.reduced.csv.manifest.json")).unwrap()).unwrap();
    assert_eq!(m["backend"]["kind"], "gpu");
    assert_eq!(m["rows_written"], 320_000);

    for chunk in ["333", "20000"] {
        run(&cfg, &[&gpu[..], &["--out", &path(&format!("c{chunk}.csv")), "--chunk-rows", chunk]].concat());
        assert!(std::fs::read(dir.join(format!("c{chunk}.reduced.csv"))).unwrap() == full, "--chunk-rows {chunk} changed the bytes");
    }
    let one =
        moatsweep().args(["--threads", "1", "run", "--quiet"]).arg(&cfg).args(gpu).args(["--out", &path("one.csv")]).output().unwrap();
    assert!(one.status.success());
    assert!(std::fs::read(dir.join("one.reduced.csv")).unwrap() == full, "1 host thread changed the bytes");

    let mut shards = Vec::new();
    for i in 0..3 {
        run(&cfg, &[&gpu[..], &["--out", &path("s.csv"), "--shard", &format!("{i}/3")]].concat());
        shards.push(dir.join(format!("s.shard-{i}-of-3.reduced.csv")));
    }
    let merged = dir.join("merged.reduced.csv");
    let out = moatsweep().arg("merge").arg(&merged).args(&shards).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&merged).unwrap() == full, "merged GPU shards differ from one GPU run");

    // A CPU shard does not merge with GPU shards.
    run(&cfg, &["--backend", "cpu", "--out", &path("cpu.csv"), "--shard", "2/3"]);
    let out = moatsweep()
        .arg("merge")
        .arg(dir.join("mixed.reduced.csv"))
        .args([&shards[0], &shards[1], &dir.join("cpu.shard-2-of-3.reduced.csv")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("its precision (f64) differs"), "{}", String::from_utf8_lossy(&out.stderr));

    let checkpoint = dir.join("killed.reduced.csv.partial.checkpoint");
    let mut child = std::process::Command::new(support::bin())
        .args(["run", "--quiet", "--backend", "gpu", "--chunk-rows", "4096"])
        .arg(&cfg)
        .args(["--out", &path("killed.csv")])
        .spawn()
        .unwrap();
    support::wait_for("a checkpoint past the first blocks", || support::checkpoint_row(&checkpoint).is_some_and(|r| r >= 8192));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.join("killed.reduced.csv").exists(), "the run finished before it could be killed; make it longer");
    run(&cfg, &[&gpu[..], &["--out", &path("killed.csv"), "--resume"]].concat());
    assert!(std::fs::read(dir.join("killed.reduced.csv")).unwrap() == full, "the resumed GPU run differs");
}
