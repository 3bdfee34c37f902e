//! The real binary end to end: CSV header and rows, manifest, `.partial` handling,
//! determinism, the shipped configs, `scenario`, help and closed pipes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};

use assert_cmd::Command;
use sha2::{Digest, Sha256};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn moatsweep() -> Command {
    let mut c = Command::cargo_bin("moatsweep").unwrap();
    c.current_dir(root());
    c
}

/// Runs `config` into `out` and returns the CSV text.
fn run_to(config: &str, out: &Path, extra: &[&str]) -> String {
    moatsweep().args(["run", "--quiet", config, "--out"]).arg(out).args(extra).assert().success();
    std::fs::read_to_string(out).unwrap()
}

fn expected_header(axes: &[&str], firms: &[&str]) -> Vec<String> {
    let mut h = vec!["scenario".to_string()];
    h.extend(axes.iter().map(|s| s.to_string()));
    for o in ["share", "price", "quality", "npv", "complement_npv", "exit_month"] {
        h.extend(firms.iter().map(|f| format!("{o}.{f}")));
    }
    for s in ["outside_share", "open_share", "hhi", "consumer_surplus_npv", "max_iterations", "nonconverged_months"] {
        h.push(s.to_string());
    }
    h
}

const FIRMS: [&str; 4] = ["open", "frontier_a", "frontier_b", "challenger"];

#[test]
fn quickstart_csv_has_header_rows_and_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q.csv");
    let csv = run_to("configs/quickstart.toml", &out, &[]);
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let want = expected_header(&["firm.open.release_month", "firm.challenger.funding", "model.ad_uplift"], &FIRMS);
    assert_eq!(header, want);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8 * 20 * 13);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.len(), header.len(), "row {i}");
        assert_eq!(r[0], i.to_string(), "rows are in index order");
    }
    // Grid order: the last axis varies fastest; "never" is written -1.
    assert_eq!((rows[0][1], rows[0][3]), ("0", "0.001"));
    assert_eq!((rows[1][1], rows[1][3]), ("0", rows[1][3]));
    assert_ne!(rows[1][3], rows[0][3]);
    assert_eq!(rows[13][2], rows[13 * 20 - 1][2].to_string().as_str().max(rows[13][2]));
    assert_eq!(rows[rows.len() - 1][1], "-1");
    assert_eq!(rows[rows.len() - 1][3], "0.1");
    assert!(!tmp.path().join("q.csv.partial").exists(), ".partial left behind");

    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp.path().join("q.csv.manifest.json")).unwrap()).unwrap();
    let sha: String =
        Sha256::digest(std::fs::read(root().join("configs/quickstart.toml")).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(manifest["config_sha256"], sha.as_str());
    assert_eq!(manifest["moatsweep_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["scenarios"], 2080);
    assert_eq!(manifest["rows_written"], 2080);
    assert_eq!(manifest["rows"], serde_json::json!([0, 2080]));
    assert_eq!(manifest["backend"]["kind"], "cpu");
    assert_eq!(manifest["backend"]["precision"], "f64");
    assert!(manifest["nonconverged_scenarios"].is_u64());
    assert!(manifest["wall_time_s"].is_f64());
    for key in ["started_at", "finished_at"] {
        assert!(manifest[key].as_str().unwrap().ends_with('Z'), "{key}");
    }
    // The resolved config has every default filled in.
    assert_eq!(manifest["config"]["model"]["discount"], 0.99);
    assert_eq!(manifest["config"]["scaling"]["E"], 1.8172);
    assert_eq!(manifest["config"]["firm"][3]["name"], "challenger");
    assert_eq!(manifest["config"]["firm"][1]["release_month"], "never");
    assert_eq!(manifest["config"]["segment"][2]["price_sens"], 1.5);
    assert_eq!(manifest["columns"].as_array().unwrap().len(), want.len());
}

#[test]
fn runs_are_byte_identical_whatever_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let a = run_to("configs/quickstart.toml", &tmp.path().join("a.csv"), &[]);
    let b = run_to("configs/quickstart.toml", &tmp.path().join("b.csv"), &[]);
    let c_path = tmp.path().join("c.csv");
    moatsweep().args(["--threads", "1", "run", "--quiet", "configs/quickstart.toml", "--out"]).arg(&c_path).assert().success();
    let c = std::fs::read_to_string(&c_path).unwrap();
    assert!(a == b, "two runs differ");
    assert!(a == c, "1 thread and all threads differ");
}

#[test]
fn limit_writes_the_first_rows_of_the_full_run() {
    let tmp = tempfile::tempdir().unwrap();
    let full = run_to("configs/quickstart.toml", &tmp.path().join("full.csv"), &[]);
    // A subset never overwrites the whole sweep's CSV: it writes beside it.
    moatsweep()
        .args(["run", "--quiet", "configs/quickstart.toml", "--limit", "100", "--out"])
        .arg(tmp.path().join("full.csv"))
        .assert()
        .success();
    assert!(std::fs::read_to_string(tmp.path().join("full.csv")).unwrap() == full);
    let part = std::fs::read_to_string(tmp.path().join("full.rows-0-100.csv")).unwrap();
    let want: Vec<&str> = full.lines().take(101).collect();
    assert_eq!(part.lines().collect::<Vec<_>>(), want);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("full.rows-0-100.csv.manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["rows"], serde_json::json!([0, 100]));
    assert_eq!(manifest["scenarios"], 2080);
}

/// The baseline row reads back the MODEL.md section 6 figures.
#[test]
fn baseline_config_runs_to_one_row() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = run_to("configs/baseline.toml", &tmp.path().join("b.csv"), &[]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2);
    let header: Vec<&str> = lines[0].split(',').collect();
    let row: Vec<&str> = lines[1].split(',').collect();
    let get = |c: &str| row[header.iter().position(|h| *h == c).unwrap()].parse::<f64>().unwrap();
    assert!((get("share.open") - 0.43).abs() <= 0.005);
    assert!((get("outside_share") - 0.39).abs() <= 0.005);
    assert_eq!(get("max_iterations"), 26.0);
    assert_eq!(get("exit_month.challenger"), -1.0);
}

#[test]
fn every_shipped_config_validates_and_the_small_ones_run() {
    let mut configs: Vec<PathBuf> = std::fs::read_dir(root().join("configs")).unwrap().map(|e| e.unwrap().path()).collect();
    configs.sort();
    assert!(configs.len() >= 3);
    let tmp = tempfile::tempdir().unwrap();
    for cfg in configs {
        let out = moatsweep().arg("validate").arg(&cfg).output().unwrap();
        assert!(out.status.success(), "{}: {}", cfg.display(), String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        let rows: u64 = text.lines().find_map(|l| l.strip_prefix("scenarios:")).unwrap().trim().parse().unwrap();
        // Small configs run whole; large ones run their first 2,000 rows, or the whole
        // blocks within them of a saltelli or morris sweep (validate: "blocks: ... of B rows (").
        let stem = cfg.file_stem().unwrap().to_string_lossy().into_owned();
        let block: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("blocks:"))
            .map_or(1, |b| b.split(" of ").nth(1).unwrap().split(' ').next().unwrap().parse().unwrap());
        let limit = rows.min(2000 / block * block);
        moatsweep()
            .args(["run", "--quiet", "--limit", &limit.to_string()])
            .arg(&cfg)
            .arg("--out")
            .arg(tmp.path().join(format!("{stem}.csv")))
            .assert()
            .success();
        let csv = if limit < rows { tmp.path().join(format!("{stem}.rows-0-{limit}.csv")) } else { tmp.path().join(format!("{stem}.csv")) };
        assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count() as u64, limit + 1, "{}", cfg.display());
    }
}

#[test]
fn release_timing_is_about_a_million_scenarios() {
    let out = moatsweep().args(["validate", "configs/release-timing.toml"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("scenarios:  1000000"), "{text}");
    assert!(text.contains("firm.open.release_month") && text.contains("firm.challenger.funding"));
}

#[test]
fn scenario_prints_every_month_and_the_row() {
    let out = moatsweep()
        .args(["scenario", "configs/baseline.toml", "--set", "firm.challenger.train_spend=5e8", "--set", "firm.challenger.funding=5e7"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let month_lines = text.lines().filter(|l| l.trim_start().split(' ').next().is_some_and(|w| w.parse::<u32>().is_ok())).count();
    assert_eq!(month_lines, 36);
    assert!(text.contains("exited"), "{text}");
    let exit_line = text.lines().find(|l| l.trim_start().starts_with("exit_month.challenger")).unwrap();
    assert!(exit_line.trim_end().ends_with(" 2"), "{exit_line}");
    // --index picks a row of the sweep: its axis values are printed.
    let out = moatsweep().args(["scenario", "configs/quickstart.toml", "--index", "2079"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("firm.open.release_month=never"));
    let out = moatsweep().args(["scenario", "configs/quickstart.toml", "--index", "2080"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    // 1200 months print far more than a pipe buffer holds.
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("long.toml");
    std::fs::write(&cfg, "version = 1\n[model]\nmonths = 1200\nmarket_growth = 0.01\n").unwrap();
    let mut child =
        Std::new(env!("CARGO_BIN_EXE_moatsweep")).arg("scenario").arg(&cfg).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 64];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}, stderr {err}");
    assert!(err.is_empty(), "{err}");
}

#[test]
fn help_gives_worked_examples() {
    for args in [&["--help"][..], &["run", "--help"], &["validate", "--help"], &["scenario", "--help"], &["bench", "--help"]] {
        let out = moatsweep().args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("moatsweep ") && text.contains("Example"), "{args:?}: {text}");
    }
}

#[test]
fn docs_model_md_holds_the_parameter_table_of_the_code() {
    let out = moatsweep().arg("params").output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(root().join("docs/model.md")).unwrap();
    let begin = doc.find("<!-- params:begin -->\n").expect("docs/model.md has the params:begin marker") + "<!-- params:begin -->\n".len();
    let end = doc.find("<!-- params:end -->").expect("params:end marker");
    assert_eq!(doc[begin..end].trim(), table.trim(), "docs/model.md's table differs from `moatsweep params`: paste it again");
}
