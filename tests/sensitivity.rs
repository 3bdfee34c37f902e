//! Sensitivity designs and `moatsweep sensitivity`: closed forms (Ishigami, the
//! Sobol g-function, a linear function for Morris) evaluated by the test over the
//! design's own rows, whole blocks under shards and merge, and bad input.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use moatsweep::analysis::sensitivity::{Bootstrap, Estimate, Method, Outcome, analyze};
use moatsweep::config;
use moatsweep::sweep::Plan;

fn moatsweep() -> Command {
    let mut c = Command::cargo_bin("moatsweep").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

fn plan(text: &str) -> Plan {
    config::parse("test.toml", text, None, Path::new(".")).unwrap()
}

/// A saltelli or morris plan whose axes are parameters that take any real value.
fn sampled_plan(sweep: &str, axes: &[(&str, f64, f64)]) -> Plan {
    let mut text = format!("version = 1\n[sweep]\nname = \"t\"\n{sweep}\n[axes]\n");
    for (path, lo, hi) in axes {
        text += &format!("\"{path}\" = {{ uniform = [{lo}, {hi}] }}\n");
    }
    plan(&text)
}

/// Parameters with no bounds (utils), used as plain real axes.
const FREE: [&str; 6] = [
    "firm.open.brand",
    "firm.frontier_a.brand",
    "firm.frontier_b.brand",
    "firm.challenger.brand",
    "segment.enterprise.intercept",
    "segment.developers.intercept",
];

fn rows_of(plan: &Plan, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    (0..plan.rows).map(|r| f(&(0..plan.axes.len()).map(|a| plan.axis_value(r, a)).collect::<Vec<_>>())).collect()
}

fn estimates(plan: &Plan, y: Vec<f64>) -> Vec<Estimate> {
    let k = plan.axes.len();
    let method = match (plan.design.saltelli(k), plan.design.morris(k)) {
        (Some(s), _) => Method::Sobol(s),
        (_, Some(m)) => Method::Morris(m),
        _ => panic!("not a sensitivity design"),
    };
    let boot = Bootstrap { resamples: 1000, conf: 0.95, seed: 0 };
    let reports = analyze(method, &[("y".to_string(), y)], None, 0, boot);
    match &reports[0].outcome {
        Outcome::Indices(e) => e.clone(),
        other => panic!("{other:?}"),
    }
}

fn get(e: &[Estimate], index: &str, p: usize, p2: Option<usize>) -> Estimate {
    e.iter().find(|x| x.index == index && x.parameter == p && x.parameter2 == p2).unwrap().clone()
}

/// Each estimate's interval holds the true value (and the interval is informative: narrower than 0.1).
fn assert_inside(e: &[Estimate], index: &str, truth: &[f64]) {
    for (j, &want) in truth.iter().enumerate() {
        let x = get(e, index, j, None);
        assert!(x.conf > 0.0 && x.conf < 0.1, "{index}[{j}]: interval +-{}", x.conf);
        assert!((x.value - want).abs() <= x.conf, "{index}[{j}] = {} +- {}, closed form {want}", x.value, x.conf);
    }
}

#[test]
fn ishigami_indices_land_inside_their_intervals() {
    // Ishigami and Homma (1990), a = 7, b = 0.1, on [-pi, pi]^3; published indices (Saltelli et al. 2008, SALib's tests).
    let axes: Vec<(&str, f64, f64)> = FREE[..3].iter().map(|p| (*p, -PI, PI)).collect();
    let plan = sampled_plan("design = \"saltelli\"\nsamples = 8192\nseed = 11", &axes);
    assert_eq!(plan.rows, 8192 * 5);
    let y = rows_of(&plan, |x| x[0].sin() + 7.0 * x[1].sin().powi(2) + 0.1 * x[2].powi(4) * x[0].sin());
    let e = estimates(&plan, y);
    assert_inside(&e, "S1", &[0.3139, 0.4424, 0.0]);
    assert_inside(&e, "ST", &[0.5576, 0.4424, 0.2437]);
    assert!(!e.iter().any(|x| x.index == "S2"), "first order only");
}

#[test]
fn g_function_indices_land_inside_their_intervals_second_order_too() {
    // Sobol's g-function: f = prod (|4x - 2| + a_i) / (1 + a_i) on [0, 1]^k; V_i = 1 / (3 (1 + a_i)^2),
    // V = prod (1 + V_i) - 1, S1_i = V_i / V, ST_i = V_i prod_{j != i} (1 + V_j) / V, S2_ij = V_i V_j / V.
    let a = [0.0, 1.0, 4.5, 9.0, 99.0];
    let axes: Vec<(&str, f64, f64)> = FREE[..5].iter().map(|p| (*p, 0.0, 1.0)).collect();
    let plan = sampled_plan("design = \"saltelli\"\nsamples = 8192\nseed = 3\nsecond_order = true", &axes);
    assert_eq!(plan.rows, 8192 * 12);
    let y = rows_of(&plan, |x| x.iter().zip(&a).map(|(x, a)| ((4.0 * x - 2.0).abs() + a) / (1.0 + a)).product());
    let vi: Vec<f64> = a.iter().map(|a| 1.0 / (3.0 * (1.0 + a) * (1.0 + a))).collect();
    let v = vi.iter().map(|v| 1.0 + v).product::<f64>() - 1.0;
    let s1: Vec<f64> = vi.iter().map(|x| x / v).collect();
    let st: Vec<f64> = (0..5).map(|i| vi[i] * (0..5).filter(|&j| j != i).map(|j| 1.0 + vi[j]).product::<f64>() / v).collect();
    let e = estimates(&plan, y);
    assert_inside(&e, "S1", &s1);
    assert_inside(&e, "ST", &st);
    for i in 0..5 {
        for j in i + 1..5 {
            let x = get(&e, "S2", i, Some(j));
            let want = vi[i] * vi[j] / v;
            assert!((x.value - want).abs() <= x.conf, "S2[{i},{j}] = {} +- {}, closed form {want}", x.value, x.conf);
        }
    }
}

#[test]
fn morris_effects_of_a_linear_function_are_its_slopes_per_unit_interval() {
    // f = sum c_j x_j with x_j uniform on [lo_j, hi_j]: one step of delta in unit coordinates moves x_j by
    // delta (hi_j - lo_j), so every elementary effect is c_j (hi_j - lo_j): mu = that, mu_star = |mu|, sigma = 0.
    let axes = [(FREE[0], 0.0, 1.0), (FREE[1], -2.0, 2.0), (FREE[2], 10.0, 11.0)];
    let c = [3.0, -0.5, 0.0];
    for levels in [2u64, 4, 6] {
        let plan = sampled_plan(&format!("design = \"morris\"\ntrajectories = 50\nlevels = {levels}\nseed = 9"), &axes);
        assert_eq!(plan.rows, 50 * 4);
        // Consecutive rows of a trajectory differ in exactly one axis, by delta of its range.
        let delta = levels as f64 / (2.0 * (levels - 1) as f64);
        for t in 0..50 {
            for s in 1..4 {
                let r = t * 4 + s;
                let moved: Vec<usize> = (0..3).filter(|&a| plan.axis_value(r, a) != plan.axis_value(r - 1, a)).collect();
                assert_eq!(moved.len(), 1, "trajectory {t} step {s}");
                let (a, span) = (moved[0], axes[moved[0]].2 - axes[moved[0]].1);
                assert!(((plan.axis_value(r, a) - plan.axis_value(r - 1, a)).abs() - delta * span).abs() < 1e-12);
            }
        }
        let e = estimates(&plan, rows_of(&plan, |x| x.iter().zip(&c).map(|(x, c)| x * c).sum()));
        for j in 0..3 {
            let want = c[j] * (axes[j].2 - axes[j].1);
            assert!((get(&e, "mu", j, None).value - want).abs() < 1e-9, "levels {levels} mu[{j}]");
            assert!((get(&e, "mu_star", j, None).value - want.abs()).abs() < 1e-9);
            assert!(get(&e, "sigma", j, None).value.abs() < 1e-9);
        }
    }
}

const SMALL: &str = "version = 1
[sweep]
name = \"small\"
design = \"saltelli\"
samples = 64
seed = 5
[[firm]]
name = \"open\"
[[firm]]
name = \"challenger\"
train_spend = 5e8
[axes]
\"firm.open.release_month\" = { integers = [0, 24] }
\"firm.challenger.funding\" = { loguniform = [3e7, 1e9] }
\"model.ad_uplift\" = { uniform = [0.001, 0.1] }
";

fn small_sweep(dir: &Path, extra: &[&str]) -> PathBuf {
    let cfg = dir.join("small.toml");
    std::fs::write(&cfg, SMALL).unwrap();
    let csv = dir.join("small.csv");
    moatsweep().args(["run", "--quiet", "--backend", "cpu"]).arg(&cfg).arg("--out").arg(&csv).args(extra).assert().success();
    csv
}

#[test]
fn shards_cut_whole_blocks_and_merge_and_misaligned_rows_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let full = small_sweep(tmp.path(), &[]);
    let mut shards = Vec::new();
    for i in 0..3 {
        small_sweep(tmp.path(), &["--shard", &format!("{i}/3")]);
        let shard = tmp.path().join(format!("small.shard-{i}-of-3.csv"));
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{}.manifest.json", shard.display())).unwrap()).unwrap();
        // 64 blocks of 5 rows in 3 shards: blocks 0..21, 21..42, 42..64.
        let blocks = [[0, 21], [21, 42], [42, 64]][i];
        assert_eq!(m["rows"], serde_json::json!([blocks[0] * 5, blocks[1] * 5]));
        shards.push(shard);
    }
    let merged = tmp.path().join("merged.csv");
    moatsweep().arg("merge").arg(&merged).args(&shards).assert().success();
    assert!(std::fs::read(&merged).unwrap() == std::fs::read(&full).unwrap());
    // A shard holds whole blocks, so it can be analysed alone.
    moatsweep().arg("sensitivity").arg(&shards[1]).args(["--outputs", "npv.open", "--resamples", "10"]).assert().success();

    let cfg = tmp.path().join("small.toml");
    for (flag, want) in [
        (
            ["--rows", "3..20"],
            "--rows 3..20: this sweep is cut only on whole blocks of 5 rows (one saltelli base point); use multiples of 5, e.g. --rows 0..20",
        ),
        (
            ["--limit", "12"],
            "--limit 12: this sweep is cut only on whole blocks of 5 rows (one saltelli base point); use a multiple of 5, e.g. --limit 10",
        ),
    ] {
        let out = moatsweep().args(["run", "--quiet", "--backend", "cpu"]).arg(&cfg).args(flag).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), format!("error: {want}"));
    }
}

#[test]
fn the_same_command_gives_the_same_bytes_on_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = small_sweep(tmp.path(), &[]);
    let mut outs = Vec::new();
    for threads in ["1", "2", "3"] {
        let out = tmp.path().join(format!("s{threads}.csv"));
        moatsweep().args(["--threads", threads, "sensitivity"]).arg(&csv).arg("--out").arg(&out).assert().success();
        outs.push(std::fs::read_to_string(&out).unwrap());
    }
    assert!(outs.iter().all(|o| *o == outs[0]));
    let lines: Vec<&str> = outs[0].lines().collect();
    assert_eq!(lines[0], "output,index,parameter,parameter2,value,conf");
    // Per analysed output: S1 and ST for each of the 3 axes.
    assert_eq!((lines.len() - 1) % 6, 0);
    assert!(lines.iter().any(|l| l.starts_with("npv.open,ST,model.ad_uplift,,")));
    // Another seed gives other intervals, the same point estimates.
    let other = tmp.path().join("seed.csv");
    moatsweep().arg("sensitivity").arg(&csv).arg("--out").arg(&other).args(["--seed", "1"]).assert().success();
    let other = std::fs::read_to_string(&other).unwrap();
    let value = |t: &str| t.lines().map(|l| l.rsplit_once(',').unwrap().0.to_string()).collect::<Vec<_>>();
    assert_eq!(value(&other), value(&outs[0]));
    assert_ne!(other, outs[0]);
}

#[test]
fn bad_input_exits_2_with_one_message_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = small_sweep(tmp.path(), &[]);
    let refused = |args: &[&str], csv: &Path, want: &str| {
        let out_csv = tmp.path().join("out.csv");
        let out = moatsweep().arg("sensitivity").arg(csv).args(args).arg("--out").arg(&out_csv).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "want {want:?} in {err}");
        assert!(!out_csv.exists() && out.stdout.is_empty());
    };
    refused(&["--outputs", "npv.opn"], &csv, "--outputs: ");
    refused(&["--outputs", "npv.opn"], &csv, "has no column \"npv.opn\" (did you mean \"npv.open\"?)");
    refused(&["--outputs", "model.ad_uplift"], &csv, "\"model.ad_uplift\" is not the outputs of");
    refused(&["--conf", "1.5"], &csv, "--conf must be between 0 and 1");

    // A partial CSV: the file cut inside a block, its manifest unchanged.
    let text = std::fs::read_to_string(&csv).unwrap();
    let cut = tmp.path().join("cut.csv");
    std::fs::write(&cut, text.lines().take(1 + 12).map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    std::fs::copy(format!("{}.manifest.json", csv.display()), format!("{}.manifest.json", cut.display())).unwrap();
    refused(&[], &cut, "cut.csv: holds 12 rows, its manifest ");
    // The manifest's counts and hash removed (as an older moatsweep wrote none) and
    // its rows_written made the file's: the block structure still refuses it.
    let older = |path: &Path, rows: Option<u64>| {
        let mpath = format!("{}.manifest.json", path.display());
        let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath).unwrap()).unwrap();
        let o = m.as_object_mut().unwrap();
        o.remove("sha256");
        o.remove("bytes");
        if let Some(rows) = rows {
            o.insert("rows_written".into(), rows.into());
        }
        std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    };
    older(&cut, Some(12));
    refused(&[], &cut, "holds 12 rows from row 0, its manifest says rows 0..320 (a partial or cut CSV); it ends inside base point 2");
    // Rows sorted out of the layout.
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(2, 3);
    let shuffled = tmp.path().join("shuffled.csv");
    std::fs::write(&shuffled, lines.join("\n") + "\n").unwrap();
    std::fs::copy(format!("{}.manifest.json", csv.display()), format!("{}.manifest.json", shuffled.display())).unwrap();
    refused(&[], &shuffled, "shuffled.csv: its SHA-256 is ");
    older(&shuffled, None);
    refused(&[], &shuffled, "row 1 of the file is scenario 2, not 1");
    // No manifest.
    let bare = tmp.path().join("bare.csv");
    std::fs::copy(&csv, &bare).unwrap();
    refused(&[], &bare, "bare.csv: no manifest beside it");
    // Another design.
    let lhs_cfg = tmp.path().join("lhs.toml");
    std::fs::write(&lhs_cfg, SMALL.replace("saltelli", "lhs")).unwrap();
    let lhs = tmp.path().join("lhs.csv");
    moatsweep().args(["run", "--quiet", "--backend", "cpu"]).arg(&lhs_cfg).arg("--out").arg(&lhs).assert().success();
    refused(
        &[],
        &lhs,
        "sensitivity needs a saltelli sweep (Sobol indices) or a morris sweep (elementary effects), and this is a lhs sweep",
    );
}

#[test]
fn validate_prints_the_block_structure() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("m.toml");
    std::fs::write(&cfg, SMALL.replace("design = \"saltelli\"\nsamples = 64", "design = \"morris\"\ntrajectories = 10\nlevels = 6"))
        .unwrap();
    let out = moatsweep().arg("validate").arg(&cfg).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sweep:      small (morris: 10 trajectories on 6 levels, seed 5)"), "{text}");
    assert!(text.contains("blocks:     10 trajectories of 4 rows (a start, then one axis moved by 0.6 of its unit interval per row); r(k+1) = 10 x 4 = 40 rows"), "{text}");
    let out = moatsweep().arg("validate").arg("configs/sensitivity.toml").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("(A, AB_1 .. AB_10, B; AB_j takes axis j from B, BA_j from A); N(k+2) = "), "{text}");
}
