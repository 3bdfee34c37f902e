//! `[reduce]` on the CPU backend: every reduced statistic equals the same
//! statistic computed here from the rows of a normal run of the same sweep (f64,
//! two-pass, to 1e-12 relative), quantiles lie within the sketch's stated bound of
//! the order statistic, `best` equals a brute-force argmax over the rows, and the
//! reduced bytes do not depend on threads, chunk size, shards + merge or kill -9 +
//! resume. (The GPU side is in tests/gpu_reduce.rs.)

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use support::{Table, moatsweep};

/// The sketch's relative accuracy (docs/config.md, src/reduce/sketch.rs).
const ALPHA: f64 = 0.01;

fn run(cfg: &Path, extra: &[&str]) {
    let out = moatsweep().args(["run", "--quiet", "--backend", "cpu"]).arg(cfg).args(extra).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Mean, sample std (two-pass), min, max, count of the present values.
fn describe(xs: &[f64]) -> (f64, Option<f64>, f64, f64, usize) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let std = (xs.len() > 1).then(|| (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    let min = xs.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = xs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (mean, std, min, max, xs.len())
}

fn close(a: f64, b: f64, rel: f64, what: &str) {
    let scale = a.abs().max(b.abs());
    assert!((a - b).abs() <= rel * scale, "{what}: reduced {a} vs rows {b}");
}

/// The order statistic a quantile stands for: rank floor(q (n - 1)) of the sorted values.
fn order_stat(xs: &[f64], q: f64) -> f64 {
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    s[(q * (s.len() - 1) as f64).floor() as usize]
}

const OUTPUTS: &[&str] = &["npv.open", "share.open", "price.open", "exit_month.challenger", "consumer_surplus_npv"];

fn grid_axes() -> &'static str {
    // The choice axis first: positions reorder the rows so that a world's rows are solved together.
    "[model]\nmonths = 18\n[axes]\n\
     \"firm.open.release_month\" = { values = [0, 4, 9, \"never\"] }\n\
     \"model.ad_uplift\" = { logspace = [1e-3, 1e-1], steps = 3 }\n\
     \"firm.challenger.funding\" = { logspace = [3e7, 1e9], steps = 4 }\n\
     \"firm.challenger.train_spend\" = { values = [3e8, 6e8, 9e8] }\n"
}

/// The value of an exited.<firm> output from an exit month.
fn exited(exit_month: f64) -> f64 {
    if exit_month >= 0.0 { 1.0 } else { 0.0 }
}

/// The values of output `name` in `rows` (with exited.<firm> derived, empty cells left out).
fn values(t: &Table, rows: &[&Vec<Option<f64>>], name: &str) -> Vec<f64> {
    match name.strip_prefix("exited.") {
        Some(firm) => {
            let c = t.col(&format!("exit_month.{firm}"));
            rows.iter().map(|r| exited(r[c].unwrap())).collect()
        }
        None => {
            let c = t.col(name);
            rows.iter().filter_map(|r| r[c]).collect()
        }
    }
}

#[test]
fn reduced_statistics_and_best_equal_those_of_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.toml");
    std::fs::write(&plain, format!("version = 1\n[sweep]\nname = \"g\"\n{}", grid_axes())).unwrap();
    let rows_csv = tmp.path().join("rows.csv");
    run(&plain, &["--out", rows_csv.to_str().unwrap()]);

    let reduced_cfg = tmp.path().join("reduced.toml");
    let outputs: Vec<String> = OUTPUTS.iter().map(|o| format!("\"{o}\"")).chain(["\"exited.challenger\"".into()]).collect();
    std::fs::write(
        &reduced_cfg,
        format!(
            "version = 1\n[sweep]\nname = \"g\"\n{}[reduce]\nby = [\"model.ad_uplift\", \"firm.challenger.funding\"]\noutputs = [{}]\n\
             stats = [\"mean\", \"std\", \"min\", \"max\", \"count\", \"q05\", \"q50\", \"q95\"]\n\
             [reduce.best]\naxis = \"firm.open.release_month\"\nmaximize = \"npv.open\"\nreference = \"never\"\n",
            grid_axes(),
            outputs.join(", ")
        ),
    )
    .unwrap();
    let out = tmp.path().join("r.csv");
    run(&reduced_cfg, &["--out", out.to_str().unwrap()]);
    let rows = Table::read(&rows_csv);
    let red = Table::read(&tmp.path().join("r.reduced.csv"));
    assert_eq!(red.rows.len(), 3 * 4, "one row per (ad_uplift, funding) group");
    let months = [0.0, 4.0, 9.0, -1.0];
    let (c_ad, c_fund, c_month, c_spend) = (
        rows.col("model.ad_uplift"),
        rows.col("firm.challenger.funding"),
        rows.col("firm.open.release_month"),
        rows.col("firm.challenger.train_spend"),
    );
    let mut checked = 0;
    for g in &red.rows {
        let (ad, fund) = (g[red.col("model.ad_uplift")].unwrap(), g[red.col("firm.challenger.funding")].unwrap());
        let in_group: Vec<&Vec<Option<f64>>> = rows.rows.iter().filter(|r| r[c_ad] == Some(ad) && r[c_fund] == Some(fund)).collect();
        assert_eq!(in_group.len(), 4 * 3, "group ({ad}, {fund}) has every release month and spend");
        for name in OUTPUTS.iter().copied().chain(["exited.challenger"]) {
            let xs = values(&rows, &in_group, name);
            let (mean, std, min, max, count) = describe(&xs);
            let cell = |stat: &str| g[red.col(&format!("{name}.{stat}"))];
            assert_eq!(cell("count"), Some(count as f64), "{name} count");
            close(cell("mean").unwrap(), mean, 1e-12, &format!("{name}.mean"));
            match std {
                Some(s) => close(cell("std").unwrap(), s, 1e-12, &format!("{name}.std")),
                None => assert_eq!(cell("std"), None),
            }
            assert_eq!((cell("min"), cell("max")), (Some(min), Some(max)), "{name} min, max");
            for (stat, q) in [("q05", 0.05), ("q50", 0.5), ("q95", 0.95)] {
                let want = order_stat(&xs, q);
                let got = cell(stat).unwrap();
                assert!((got - want).abs() <= ALPHA * want.abs() * (1.0 + 1e-9), "{name}.{stat}: {got} vs order statistic {want}");
            }
            checked += 1;
        }
        // Brute force: per world (spend value), the first release month of largest npv.open.
        let npv = rows.col("npv.open");
        let mut shares = BTreeMap::new();
        let mut at_best: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut at_ref: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let worlds: Vec<f64> = {
            let mut w: Vec<f64> = in_group.iter().map(|r| r[c_spend].unwrap()).collect();
            w.sort_by(f64::total_cmp);
            w.dedup();
            w
        };
        for spend in &worlds {
            let world: Vec<&Vec<Option<f64>>> =
                months.iter().map(|m| *in_group.iter().find(|r| r[c_spend] == Some(*spend) && r[c_month] == Some(*m)).unwrap()).collect();
            let mut best = 0;
            for k in 1..world.len() {
                if world[k][npv].unwrap() > world[best][npv].unwrap() {
                    best = k;
                }
            }
            *shares.entry(best).or_insert(0) += 1;
            for name in OUTPUTS.iter().copied().chain(["exited.challenger"]) {
                at_best.entry(name).or_default().extend(values(&rows, &[world[best]], name));
                at_ref.entry(name).or_default().extend(values(&rows, &[world[3]], name));
            }
        }
        for (k, label) in ["0", "4", "9", "never"].iter().enumerate() {
            let want = *shares.get(&k).unwrap_or(&0) as f64 / worlds.len() as f64;
            assert_eq!(g[red.col(&format!("best.{label}.share"))], Some(want), "share of {label}");
        }
        for name in OUTPUTS.iter().copied().chain(["exited.challenger"]) {
            for (prefix, xs) in [("best", &at_best[name]), ("reference", &at_ref[name])] {
                let cell = g[red.col(&format!("{prefix}.{name}.mean"))];
                if xs.is_empty() {
                    assert_eq!(cell, None, "{prefix}.{name}.mean of no values");
                } else {
                    close(cell.unwrap(), describe(xs).0, 1e-12, &format!("{prefix}.{name}.mean"));
                }
            }
        }
    }
    assert_eq!(checked, 12 * 6);
}

#[test]
fn binned_groups_of_a_sampled_design_match_the_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let axes = "[model]\nmonths = 12\n[axes]\n\"model.ad_uplift\" = { loguniform = [1e-3, 1e-1] }\n\
                \"firm.challenger.funding\" = { uniform = [3e7, 1e9] }\n\"firm.open.release_month\" = { values = [0, 6, \"never\"] }\n";
    let sweep = "[sweep]\nname = \"l\"\ndesign = \"lhs\"\nsamples = 3000\nseed = 7\n";
    let plain = tmp.path().join("plain.toml");
    std::fs::write(&plain, format!("version = 1\n{sweep}{axes}")).unwrap();
    let rows_csv = tmp.path().join("rows.csv");
    run(&plain, &["--out", rows_csv.to_str().unwrap()]);
    let cfg = tmp.path().join("binned.toml");
    std::fs::write(
        &cfg,
        format!(
            "version = 1\n{sweep}{axes}[reduce]\nby = [{{ axis = \"model.ad_uplift\", bins = 4 }}, \"firm.open.release_month\"]\noutputs = [\"npv.open\", \"exited.challenger\"]\n"
        ),
    )
    .unwrap();
    let out = tmp.path().join("b.csv");
    run(&cfg, &["--out", out.to_str().unwrap()]);
    let rows = Table::read(&rows_csv);
    let red = Table::read(&tmp.path().join("b.reduced.csv"));
    assert_eq!(red.rows.len(), 4 * 3);
    let (c_ad, c_m) = (rows.col("model.ad_uplift"), rows.col("firm.open.release_month"));
    let mut total = 0;
    for (k, g) in red.rows.iter().enumerate() {
        // Bins equal in log10 over [1e-3, 1e-1]; the bin's centre is geometric.
        let bin = k / 3;
        let (lo, hi) = (-3.0 + 0.5 * bin as f64, -3.0 + 0.5 * (bin + 1) as f64);
        close(g[red.col("model.ad_uplift")].unwrap(), 10f64.powf((lo + hi) / 2.0), 1e-12, "bin centre");
        let month = g[red.col("firm.open.release_month")].unwrap();
        assert_eq!(month, [0.0, 6.0, -1.0][k % 3]);
        let in_group: Vec<&Vec<Option<f64>>> = rows
            .rows
            .iter()
            .filter(|r| {
                let d = r[c_ad].unwrap().log10();
                let b = (((d + 3.0) / 0.5).floor() as usize).min(3);
                b == bin && r[c_m] == Some(month)
            })
            .collect();
        total += in_group.len();
        for name in ["npv.open", "exited.challenger"] {
            let xs = values(&rows, &in_group, name);
            let (mean, std, ..) = describe(&xs);
            assert_eq!(g[red.col(&format!("{name}.count"))], Some(xs.len() as f64));
            close(g[red.col(&format!("{name}.mean"))].unwrap(), mean, 1e-12, name);
            close(g[red.col(&format!("{name}.std"))].unwrap(), std.unwrap(), 1e-12, name);
        }
    }
    assert_eq!(total, 3000, "every row in exactly one group");
}

/// A sweep of about 100,000 rows (25 blocks) for the byte-identity tests.
fn long_config(dir: &Path) -> PathBuf {
    let path = dir.join("long.toml");
    std::fs::write(
        &path,
        "version = 1\n[sweep]\nname = \"long\"\n[axes]\n\
         \"firm.open.release_month\" = { values = [0, 3, 6, 9, 12, 18, 24, \"never\"] }\n\
         \"model.ad_uplift\" = { logspace = [1e-3, 1e-1], steps = 25 }\n\
         \"firm.challenger.funding\" = { logspace = [3e7, 1e9], steps = 25 }\n\
         \"firm.challenger.train_spend\" = { logspace = [2e8, 1e9], steps = 20 }\n\
         [reduce]\nby = [\"model.ad_uplift\"]\noutputs = [\"npv.open\", \"share.open\", \"price.challenger\", \"exited.challenger\"]\n\
         stats = [\"mean\", \"std\", \"min\", \"max\", \"count\", \"q50\"]\n\
         [reduce.best]\naxis = \"firm.open.release_month\"\nmaximize = \"npv.open\"\n",
    )
    .unwrap();
    path
}

#[test]
fn reduced_bytes_do_not_depend_on_threads_chunks_shards_or_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = long_config(tmp.path());
    let dir = tmp.path();
    let path = |n: &str| dir.join(n).to_str().unwrap().to_string();
    run(&cfg, &["--out", &path("full.csv")]);
    let full = std::fs::read(dir.join("full.reduced.csv")).unwrap();
    let full_state = std::fs::read(dir.join("full.reduced.state")).unwrap();
    assert!(!dir.join("full.csv").exists(), "rows = false writes no rows");

    let one = moatsweep()
        .args(["--threads", "1", "run", "--quiet", "--backend", "cpu"])
        .arg(&cfg)
        .args(["--out", &path("one.csv"), "--chunk-rows", "7"])
        .output()
        .unwrap();
    assert!(one.status.success());
    assert!(std::fs::read(dir.join("one.reduced.csv")).unwrap() == full, "1 thread and 7-row chunks changed the bytes");
    run(&cfg, &["--out", &path("big.csv"), "--chunk-rows", "50000"]);
    assert!(std::fs::read(dir.join("big.reduced.csv")).unwrap() == full, "50000-row chunks changed the bytes");

    // Shards: on whole blocks; merged, the bytes of one run (and its state).
    let mut shards = Vec::new();
    for i in 0..3 {
        run(&cfg, &["--out", &path("s.csv"), "--shard", &format!("{i}/3")]);
        shards.push(dir.join(format!("s.shard-{i}-of-3.reduced.csv")));
    }
    let merged = dir.join("merged.reduced.csv");
    let m = moatsweep().arg("merge").arg(&merged).args([&shards[2], &shards[0], &shards[1]]).output().unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(std::fs::read(&merged).unwrap() == full, "merged shards differ from one run");
    assert!(std::fs::read(dir.join("merged.reduced.state")).unwrap() == full_state);
    let check = moatsweep().arg("check").arg(&merged).arg(dir.join("full.reduced.csv")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    // A shard missing is named.
    let m = moatsweep().arg("merge").arg(dir.join("bad.reduced.csv")).args([&shards[0], &shards[2]]).output().unwrap();
    assert_eq!(m.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&m.stderr).contains("are missing"), "{}", String::from_utf8_lossy(&m.stderr));
    // A state changed after it was written is refused by merge.
    let state = dir.join("s.shard-1-of-3.reduced.state");
    let mut bytes = std::fs::read(&state).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&state, bytes).unwrap();
    let m = moatsweep().arg("merge").arg(dir.join("bad.reduced.csv")).args(&shards).output().unwrap();
    assert_eq!(m.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&m.stderr).contains("the file changed after it was written"));
    assert!(!dir.join("bad.reduced.csv").exists());

    // --limit must fall on a block.
    let bad = moatsweep()
        .args(["run", "--quiet", "--backend", "cpu"])
        .arg(&cfg)
        .args(["--out", &path("x.csv"), "--limit", "5000"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("whole blocks of 4096 rows (one reduction block)"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // kill -9 once a checkpoint holds some state, then --resume: the same bytes.
    let out = path("killed.csv");
    let checkpoint = dir.join("killed.reduced.csv.partial.checkpoint");
    let mut child = std::process::Command::new(support::bin())
        .args(["run", "--quiet", "--backend", "cpu", "--chunk-rows", "2000"])
        .arg(&cfg)
        .args(["--out", &out])
        .spawn()
        .unwrap();
    support::wait_for("a checkpoint past the first rows", || support::checkpoint_row(&checkpoint).is_some_and(|r| r >= 4000));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!dir.join("killed.reduced.csv").exists(), "the run finished before it could be killed; make it longer");
    let cp = support::checkpoint(&checkpoint).unwrap();
    assert!(cp["reduce_state"].as_str().is_some_and(|s| !s.is_empty()));
    run(&cfg, &["--out", &out, "--resume"]);
    assert!(std::fs::read(dir.join("killed.reduced.csv")).unwrap() == full, "the resumed run differs");
    assert!(!checkpoint.exists());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("killed.reduced.csv.manifest.json")).unwrap()).unwrap();
    assert!(manifest["resumed_at_row"].as_u64().unwrap() >= 4000);
    assert_eq!(manifest["reduce"]["groups"], 25);
}

#[test]
fn rows_true_writes_the_rows_of_a_normal_run_beside_the_reduction() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain.toml");
    let axes = "[model]\nmonths = 12\n[axes]\n\"model.ad_uplift\" = { values = [0.01, 0.05] }\n\"firm.open.release_month\" = { values = [0, 6, \"never\"] }\n";
    std::fs::write(&plain, format!("version = 1\n[sweep]\nname = \"p\"\n{axes}")).unwrap();
    let with_rows = tmp.path().join("rows.toml");
    std::fs::write(
        &with_rows,
        format!("version = 1\n[sweep]\nname = \"p\"\n{axes}[reduce]\nrows = true\n[reduce.best]\naxis = \"firm.open.release_month\"\nmaximize = \"npv.open\"\n"),
    )
    .unwrap();
    let a = tmp.path().join("a.csv");
    let b = tmp.path().join("b.csv");
    run(&plain, &["--out", a.to_str().unwrap()]);
    run(&with_rows, &["--out", b.to_str().unwrap()]);
    assert!(std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(), "rows = true writes the rows of a normal run");
    let red = Table::read(&tmp.path().join("b.reduced.csv"));
    assert_eq!(red.rows.len(), 1, "no by: one group");
    // Every output and exited.<firm> by default, with mean, std, min, max and count.
    assert_eq!(red.header[0], "share.open.mean");
    assert!(red.header.contains(&"exited.challenger.count".to_string()));
    let check = moatsweep().arg("check").arg(&b).arg(tmp.path().join("b.reduced.csv")).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
}

/// A group's axis values are written as the rows CSV writes them (`30000000.0`, not
/// `30000000`), so the text of every group's axis cell is one of the texts in the
/// rows CSV's column of that axis, and a join of the two files on the text works.
#[test]
fn reduced_axis_cells_are_the_text_of_the_rows_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(support::root().join("tests/configs/strategy-map-small.toml")).unwrap();
    // rows = true with best needs the choice axis last: move it there.
    let choice = text.lines().find(|l| l.starts_with("\"firm.open.release_month\"")).unwrap();
    let text = text.replace(&format!("{choice}\n"), "").replace("\n[reduce]\n", &format!("{choice}\n\n[reduce]\nrows = true\n"));
    let cfg = tmp.path().join("sm.toml");
    std::fs::write(&cfg, text).unwrap();
    let out = tmp.path().join("sm.csv");
    run(&cfg, &["--out", out.to_str().unwrap()]);

    let cells = |path: &Path| -> (Vec<String>, Vec<Vec<String>>) {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = text.lines().map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>());
        (lines.next().unwrap(), lines.collect())
    };
    let (rh, rows) = cells(&out);
    let (gh, groups) = cells(&tmp.path().join("sm.reduced.csv"));
    assert_eq!(groups.len(), 5 * 4, "one group per (ad uplift, funding)");
    for axis in ["model.ad_uplift", "firm.challenger.funding"] {
        let (rc, gc) = (rh.iter().position(|h| h == axis).unwrap(), gh.iter().position(|h| h == axis).unwrap());
        let in_rows: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[rc].as_str()).collect();
        let in_groups: std::collections::BTreeSet<&str> = groups.iter().map(|g| g[gc].as_str()).collect();
        assert_eq!(in_groups, in_rows, "{axis}: the groups' axis texts are the rows' texts");
        // The joined rows: each group's count of rows is its share of the grid.
        for g in &groups {
            let n = rows.iter().filter(|r| r[rc] == g[gc]).count();
            assert_eq!(n, rows.len() / in_rows.len(), "{axis} = {}: rows with that text", g[gc]);
        }
    }
    // The ends of a logspace are the config's numbers; whole ones keep their `.0`
    // in the rows CSV (docs/config.md: `100000000.0`), and now in the groups too.
    let funding = gh.iter().position(|h| h == "firm.challenger.funding").unwrap();
    assert!(groups.iter().any(|g| g[funding] == "30000000.0") && groups.iter().any(|g| g[funding] == "3000000000.0"), "{groups:?}");
}
