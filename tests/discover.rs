//! `moatsweep discover`: PRIM recovers boxes planted in synthetic data, the
//! trajectory's statistics agree with counts made here from the CSV, and bad
//! input gets one message.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::Rng;
use moatsweep::analysis::discover::{Input, PrimOptions, prim};

fn moatsweep() -> Command {
    let mut c = Command::cargo_bin("moatsweep").unwrap();
    c.current_dir(env!("CARGO_MANIFEST_DIR"));
    c
}

#[test]
fn prim_recovers_a_planted_box() {
    // Cases of interest: x0 in [0.2, 0.6] and x1 in [0.3, 0.9], x2 irrelevant; 5% label noise outside.
    let mut rng = Rng(42);
    let n = 20_000;
    let x: Vec<Vec<f64>> = (0..3).map(|_| (0..n).map(|_| rng.unit()).collect()).collect();
    let y: Vec<bool> = (0..n).map(|i| ((0.2..=0.6).contains(&x[0][i]) && (0.3..=0.9).contains(&x[1][i])) || rng.chance(0.05)).collect();
    let inputs: Vec<Input> = x.into_iter().enumerate().map(|(j, values)| Input { name: format!("x{j}"), values, integer: false }).collect();
    let t = prim(&inputs, &y, PrimOptions::default());
    let chosen = (0..t.boxes.len()).rev().find(|&b| t.density(b) >= 0.8).expect("a box reaches density 0.8");
    let b = &t.boxes[chosen];
    assert_eq!(t.restricted(chosen), [0, 1], "x2 stays free: {:?}", b.limits);
    for (got, want) in [(b.limits[0], (0.2, 0.6)), (b.limits[1], (0.3, 0.9))] {
        assert!((got.0 - want.0).abs() < 0.03 && (got.1 - want.1).abs() < 0.03, "limits {got:?}, planted {want:?}");
    }
    assert!(t.coverage(chosen) > 0.75, "coverage {}", t.coverage(chosen));
    // Each step of the trajectory: box 0 is everything; peeling shrinks the mass, the stats are counts.
    assert_eq!((t.boxes[0].n, t.mass(0), t.coverage(0)), (n, 1.0, 1.0));
    for (k, bx) in t.boxes.iter().enumerate() {
        let inside = (0..n).filter(|&i| inputs.iter().zip(&bx.limits).all(|(x, l)| l.0 <= x.values[i] && x.values[i] <= l.1));
        let (count, hits) = inside.fold((0, 0), |(c, h), i| (c + 1, h + y[i] as usize));
        assert_eq!((count, hits), (bx.n, bx.k), "box {k}");
        assert!(t.mass(k) >= 0.05);
    }
}

#[test]
fn integer_inputs_peel_as_ordered_values() {
    // A month 0..=20 and a real x: interest where month <= 5 and x > 0.5. The month's
    // limits stay whole months, and its upper limit lands on 5.
    let mut rng = Rng(7);
    let n = 20_000;
    let month: Vec<f64> = (0..n).map(|_| rng.int(0, 20) as f64).collect();
    let x: Vec<f64> = (0..n).map(|_| rng.unit()).collect();
    let y: Vec<bool> = (0..n).map(|i| month[i] <= 5.0 && x[i] > 0.5).collect();
    let inputs = vec![Input { name: "month".into(), values: month, integer: true }, Input { name: "x".into(), values: x, integer: false }];
    let t = prim(&inputs, &y, PrimOptions::default());
    let last = t.boxes.len() - 1;
    let (lo, hi) = t.boxes[last].limits[0];
    assert_eq!((lo, hi), (0.0, 5.0), "month limits {:?}", t.boxes[last].limits);
    assert!((t.boxes[last].limits[1].0 - 0.5).abs() < 0.02);
    assert_eq!(t.density(last), 1.0);
    for b in &t.boxes {
        assert_eq!(b.limits[0].0.fract(), 0.0);
        assert_eq!(b.limits[0].1.fract(), 0.0);
    }
}

fn lhs_sweep(dir: &Path) -> PathBuf {
    let cfg = dir.join("lhs.toml");
    std::fs::write(
        &cfg,
        "version = 1\n[sweep]\nname = \"lhs\"\ndesign = \"lhs\"\nsamples = 4000\nseed = 3\n[[firm]]\nname = \"open\"\n[[firm]]\nname = \"frontier_a\"\n[[firm]]\nname = \"challenger\"\ntrain_spend = 5e8\n[axes]\n\"firm.open.release_month\" = { integers = [0, 36] }\n\"firm.challenger.funding\" = { loguniform = [3e7, 1e9] }\n\"model.ad_uplift\" = { uniform = [0.001, 0.1] }\n",
    )
    .unwrap();
    let csv = dir.join("lhs.csv");
    moatsweep().args(["run", "--quiet", "--backend", "cpu"]).arg(&cfg).arg("--out").arg(&csv).assert().success();
    csv
}

#[test]
fn discover_finds_where_the_challenger_exits_and_its_numbers_are_counts_of_the_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = lhs_sweep(tmp.path());
    let png = tmp.path().join("tradeoff.png");
    let out = moatsweep().arg("discover").arg(&csv).args(["--where", "exit_month.challenger >= 0", "--plot"]).arg(&png).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(png.exists());
    // The chosen box restricts the challenger's funding from above: low funding, exit.
    let table = text.split("qp upper\n").nth(1).expect("a restricted box");
    let funding = table.lines().find(|l| l.trim_start().starts_with("firm.challenger.funding")).expect("funding restricted");
    let cells: Vec<&str> = funding.split_whitespace().collect();
    let upper: f64 = cells[2].parse().unwrap();
    assert!(upper < 5e8, "{funding}");
    // coverage, density and mass of every box from the trajectory CSV, against the
    // rows of the sweep CSV: box 0 counts all rows and all exits.
    let rows: Vec<Vec<String>> = std::fs::read_to_string(&csv).unwrap().lines().map(|l| l.split(',').map(String::from).collect()).collect();
    let col = rows[0].iter().position(|c| c == "exit_month.challenger").unwrap();
    let exits = rows[1..].iter().filter(|r| r[col].parse::<f64>().unwrap() >= 0.0).count();
    let trajectory = std::fs::read_to_string(tmp.path().join("lhs.discover.csv")).unwrap();
    let lines: Vec<&str> = trajectory.lines().collect();
    assert_eq!(lines[0], "box,coverage,density,mass,mean,res_dim");
    let box0: Vec<f64> = lines[1].split(',').map(|c| c.parse().unwrap()).collect();
    assert_eq!(box0, [0.0, 1.0, exits as f64 / 4000.0, 1.0, exits as f64 / 4000.0, 0.0]);
    let chosen: usize = text.split("\nbox ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap();
    let stats: Vec<f64> = lines[chosen + 1].split(',').map(|c| c.parse().unwrap()).collect();
    // Every restricted input's printed limits (6 significant digits, so widened by 1e-5 relative).
    let limits: Vec<(usize, f64, f64)> = table
        .lines()
        .take_while(|l| !l.starts_with("wrote"))
        .map(|l| {
            let c: Vec<&str> = l.split_whitespace().collect();
            let at = rows[0].iter().position(|h| h == c[0]).unwrap();
            (at, c[1].parse::<f64>().unwrap(), c[2].parse::<f64>().unwrap())
        })
        .collect();
    let inside = |r: &&Vec<String>| {
        limits.iter().all(|&(at, lo, hi)| {
            let v: f64 = r[at].parse().unwrap();
            lo - 1e-5 * lo.abs() <= v && v <= hi + 1e-5 * hi.abs()
        })
    };
    let in_box: Vec<&Vec<String>> = rows[1..].iter().filter(inside).collect();
    let hits = in_box.iter().filter(|r| r[col].parse::<f64>().unwrap() >= 0.0).count();
    // The printed limit has 6 digits; the counts agree to within the rows that rounding can move.
    assert!((stats[2] - hits as f64 / in_box.len() as f64).abs() < 0.01, "density {} vs {hits}/{}", stats[2], in_box.len());
    assert!((stats[3] - in_box.len() as f64 / 4000.0).abs() < 0.002);
}

#[test]
fn bad_input_exits_2_with_one_message_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = lhs_sweep(tmp.path());
    let refused = |args: &[&str], want: &str| {
        let out_csv = tmp.path().join("out.csv");
        let out = moatsweep().arg("discover").arg(&csv).args(args).arg("--out").arg(&out_csv).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(want), "want {want:?} in {err}");
        assert!(!out_csv.exists() && out.stdout.is_empty());
    };
    refused(
        &["--where", "exit_month.chalenger >= 0"],
        "--where \"exit_month.chalenger >= 0\": unknown column \"exit_month.chalenger\" at character 1 (did you mean \"exit_month.challenger\"?)",
    );
    refused(&["--where", "npv.open >"], "expected a column or a number at the end");
    refused(&["--where", "npv.open > 1e30"], "holds in none of the 4000 rows");
    refused(&["--where", "npv.open > 0", "--inputs", "model.ad_uplif"], "--inputs: ");
    refused(&["--where", "npv.open > 0", "--inputs", "model.ad_uplif"], "(did you mean \"model.ad_uplift\"?)");
    refused(&["--where", "npv.open > 0", "--box", "999"], "--box 999: the trajectory has boxes 0 to");
    refused(&["--where", "npv.open > 0", "--threshold", "0"], "--threshold is a density");
    refused(&["--where", "npv.open > 0", "--plot", "x.gif"], "--plot: x.gif must end in .png or .svg");
    // Without a manifest the axes are unknown unless --inputs names them.
    let bare = tmp.path().join("bare.csv");
    std::fs::copy(&csv, &bare).unwrap();
    let out = moatsweep().arg("discover").arg(&bare).args(["--where", "npv.open > 0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no manifest beside it"));
    moatsweep().arg("discover").arg(&bare).args(["--where", "npv.open > 0", "--inputs", "model.ad_uplift"]).assert().success();
}
