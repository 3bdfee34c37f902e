//! The real binary end to end: CSV header and rows, manifest, `.partial` handling,
//! determinism, the shipped configs, `scenario`, help and closed pipes.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command as Std, Stdio};

use assert_cmd::Command;
use sha2::{Digest, Sha256};

mod common;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn moatsweep() -> Command {
    let mut c = Command::cargo_bin("moatsweep").unwrap();
    c.current_dir(root());
    c
}

/// Runs `config` on the CPU backend into `out` and returns the CSV text.
fn run_to(config: &str, out: &Path, extra: &[&str]) -> String {
    moatsweep().args(["run", "--quiet", "--backend", "cpu", config, "--out"]).arg(out).args(extra).assert().success();
    std::fs::read_to_string(out).unwrap()
}

/// The header docs/model.md section 5 describes: per-firm outputs, each for every
/// firm, then per-scenario outputs (version 2 adds raised and generations after
/// exit_month).
fn expected_header(axes: &[&str], firms: &[&str]) -> Vec<String> {
    let mut h = vec!["scenario".to_string()];
    h.extend(axes.iter().map(|s| s.to_string()));
    for o in ["share", "price", "quality", "npv", "complement_npv", "exit_month", "raised", "generations"] {
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
    // Grid order, from the config's own axes: the last axis varies fastest, a
    // logspace of n steps from lo to hi is lo (hi/lo)^(k/(n-1)), "never" is -1.
    let months = [0, 3, 6, 9, 12, 18, 24, -1];
    let logspace = |lo: f64, hi: f64, n: usize, k: usize| lo * (hi / lo).powf(k as f64 / (n - 1) as f64);
    for (i, r) in rows.iter().enumerate() {
        let (m, f, a) = (i / (20 * 13), (i / 13) % 20, i % 13);
        assert_eq!(r[1].parse::<i64>().unwrap(), months[m], "row {i}: release month");
        for (col, want) in [(2, logspace(3e7, 1e9, 20, f)), (3, logspace(1e-3, 1e-1, 13, a))] {
            let got: f64 = r[col].parse().unwrap();
            assert!((got - want).abs() <= 1e-12 * want, "row {i} column {}: {got}, want {want}", header[col]);
        }
    }
    // The ends of a logspace are the config's numbers exactly.
    assert_eq!((rows[0][2], rows[0][3]), ("30000000.0", "0.001"));
    assert_eq!((rows[2079][2], rows[2079][3]), ("1000000000.0", "0.1"));
    assert!(!tmp.path().join("q.csv.partial").exists(), ".partial left behind");

    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp.path().join("q.csv.manifest.json")).unwrap()).unwrap();
    let sha: String =
        Sha256::digest(std::fs::read(root().join("configs/quickstart.toml")).unwrap()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(manifest["config_sha256"], sha.as_str());
    assert_eq!(manifest["moatsweep_version"], env!("CARGO_PKG_VERSION"));
    // The model version the numbers follow (docs/model.md is version 3).
    let model = manifest["model"].as_str().unwrap();
    assert!(model.contains("version 3") && model.contains("docs/model.md"), "{model}");
    assert_eq!(manifest["scenarios"], 2080);
    assert_eq!(manifest["rows_written"], 2080);
    assert_eq!(manifest["rows"], serde_json::json!([0, 2080]));
    assert_eq!(manifest["backend"]["kind"], "cpu");
    assert_eq!(manifest["backend"]["precision"], "f64");
    // Counted independently: rows of the CSV with a non-converged month.
    let last = header.len() - 1;
    assert_eq!(header[last], "nonconverged_months");
    let nonconverged = rows.iter().filter(|r| r[last] != "0").count();
    assert_eq!(manifest["nonconverged_scenarios"], nonconverged as u64);
    assert!(manifest["wall_time_s"].as_f64().is_some_and(|t| t > 0.0));
    // The SHA-256 of the CSV's bytes, computed here.
    let csv_sha: String = Sha256::digest(csv.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(manifest["sha256"], csv_sha.as_str());
    assert_eq!(manifest["bytes"], csv.len() as u64);
    for key in ["started_at", "finished_at"] {
        assert!(manifest[key].as_str().unwrap().ends_with('Z'), "{key}");
    }
    // The resolved config has every default filled in.
    assert_eq!(manifest["config"]["model"]["discount"], 0.99);
    assert_eq!(manifest["config"]["scaling"]["E"], 1.8172);
    assert_eq!(manifest["config"]["firm"][3]["name"], "challenger");
    assert_eq!(manifest["config"]["firm"][1]["release_month"], "never");
    assert_eq!(manifest["config"]["segment"][2]["price_sens"], 1.5);
    assert_eq!(manifest["columns"], serde_json::json!(want));
}

#[test]
fn runs_are_byte_identical_whatever_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let a = run_to("configs/quickstart.toml", &tmp.path().join("a.csv"), &[]);
    let b = run_to("configs/quickstart.toml", &tmp.path().join("b.csv"), &[]);
    let c_path = tmp.path().join("c.csv");
    moatsweep()
        .args(["--threads", "1", "run", "--quiet", "--backend", "cpu", "configs/quickstart.toml", "--out"])
        .arg(&c_path)
        .assert()
        .success();
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
        .args(["run", "--quiet", "--backend", "cpu", "configs/quickstart.toml", "--limit", "100", "--out"])
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

/// The baseline row reads back the docs/model.md section 6 figures.
#[test]
fn baseline_config_runs_to_one_row() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = run_to("configs/baseline.toml", &tmp.path().join("b.csv"), &[]);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 2);
    let header: Vec<&str> = lines[0].split(',').collect();
    let row: Vec<&str> = lines[1].split(',').collect();
    let get = |c: &str| row[header.iter().position(|h| *h == c).unwrap()].parse::<f64>().unwrap();
    // Month 35: shares open 0.427, outside 0.416; three generations each; 26 iterations.
    assert!((get("share.open") - 0.427).abs() <= 0.0005);
    assert!((get("outside_share") - 0.416).abs() <= 0.0005);
    assert_eq!(get("max_iterations"), 26.0);
    assert_eq!(get("exit_month.challenger"), -1.0);
    assert_eq!(get("generations.challenger"), 3.0);
    assert_eq!(get("raised.challenger"), 0.0);
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
        // A reduced sweep ([reduce]) is cut on whole reduction blocks ("  blocks:   B rows").
        let reduced_block: Option<u64> =
            text.lines().find_map(|l| l.strip_prefix("  blocks:")).map(|b| b.trim().split(' ').next().unwrap().parse().unwrap());
        let limit = match reduced_block {
            Some(b) => rows.min(b),
            None => rows.min(2000 / block * block),
        };
        moatsweep()
            .args(["run", "--quiet", "--backend", "cpu", "--limit", &limit.to_string()])
            .arg(&cfg)
            .arg("--out")
            .arg(tmp.path().join(format!("{stem}.csv")))
            .assert()
            .success();
        let stem = if limit < rows { format!("{stem}.rows-0-{limit}") } else { stem };
        if reduced_block.is_some() {
            // One row per group the rows reached, after the header; no row-level CSV.
            let reduced = std::fs::read_to_string(tmp.path().join(format!("{stem}.reduced.csv"))).unwrap();
            assert!(reduced.lines().count() >= 2, "{}: {reduced}", cfg.display());
            assert!(!tmp.path().join(format!("{stem}.csv")).exists(), "{}", cfg.display());
        } else {
            let csv = tmp.path().join(format!("{stem}.csv"));
            assert_eq!(std::fs::read_to_string(&csv).unwrap().lines().count() as u64, limit + 1, "{}", cfg.display());
        }
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
    // docs/model.md section 6: out of cash in month 2 before any release, refinanced
    // with about 5.04e8; after a release at month 0, refused, and it exits then.
    let value = |text: &str, col: &str| -> f64 {
        let line = text.lines().find(|l| l.trim_start().starts_with(col)).unwrap_or_else(|| panic!("no {col} in {text}"));
        line.split_whitespace().last().unwrap().parse().unwrap()
    };
    assert_eq!(value(&text, "exit_month.challenger"), -1.0);
    assert!((value(&text, "raised.challenger") / 1e8 - 5.04).abs() < 0.005, "{text}");
    let out = moatsweep()
        .args(["scenario", "configs/baseline.toml", "--set", "firm.challenger.train_spend=5e8", "--set", "firm.challenger.funding=5e7"])
        .args(["--set", "firm.open.release_month=0"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("exited"), "{text}");
    assert_eq!(value(&text, "exit_month.challenger"), 2.0);
    assert_eq!(value(&text, "raised.challenger"), 0.0);
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
    std::fs::write(&cfg, "version = 1\n[model]\nmonths = 1200\nmarket_growth = 0.01\ngeneration_months = 0\n").unwrap();
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
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["validate", "--help"],
        &["scenario", "--help"],
        &["bench", "--help"],
        &["merge", "--help"],
        &["check", "--help"],
    ] {
        let out = moatsweep().args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("moatsweep ") && text.contains("Example"), "{args:?}: {text}");
    }
}

#[test]
fn docs_model_md_holds_the_parameter_and_output_tables_of_the_code() {
    let doc = std::fs::read_to_string(root().join("docs/model.md")).unwrap();
    for (marker, args) in [("params", &["params"][..]), ("outputs", &["params", "--outputs"])] {
        let out = moatsweep().args(args).output().unwrap();
        let table = String::from_utf8(out.stdout).unwrap();
        let begin = format!("<!-- {marker}:begin -->\n");
        let at = doc.find(&begin).unwrap_or_else(|| panic!("docs/model.md has the {marker}:begin marker")) + begin.len();
        let end = doc.find(&format!("<!-- {marker}:end -->")).expect("end marker");
        assert_eq!(
            doc[at..end].trim(),
            table.trim(),
            "docs/model.md's {marker} table differs from `moatsweep {}`: run scripts/docs-tables.sh",
            args.join(" ")
        );
        assert!(table.lines().count() > 10, "{marker}: {table}");
    }
}

/// `--backend auto` without any GPU adapter (WGPU_BACKEND names no backend, so wgpu
/// looks nowhere) falls back to the CPU, says so, records it, and writes the CPU's bytes.
#[test]
fn auto_falls_back_to_the_cpu_without_an_adapter() {
    let tmp = tempfile::tempdir().unwrap();
    let cpu = run_to("configs/quickstart.toml", &tmp.path().join("cpu.csv"), &[]);
    let out = tmp.path().join("auto.csv");
    let res = moatsweep()
        .args(["run", "--backend", "auto", "configs/quickstart.toml", "--out"])
        .arg(&out)
        .env("WGPU_BACKEND", "none")
        .env_remove("WGPU_ADAPTER_NAME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{stderr}");
    assert!(stderr.starts_with("note: using the CPU backend (no GPU adapter found"), "{stderr}");
    assert!(stderr.contains(" on cpu f64 x"), "{stderr}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(tmp.path().join("auto.csv.manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["backend"]["kind"], "cpu");
    assert_eq!(manifest["backend"]["precision"], "f64");
    assert!(manifest["backend"].get("adapter").is_none());
    assert!(std::fs::read_to_string(&out).unwrap() == cpu, "auto's fallback differs from --backend cpu");
}

/// `check` passes a file that matches its manifest and names one that does not.
#[test]
fn check_verifies_a_csv_against_its_manifest() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("q.csv");
    let csv = run_to("configs/quickstart.toml", &out, &[]);
    let res = moatsweep().arg("check").arg(&out).output().unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let sha: String = Sha256::digest(csv.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(String::from_utf8_lossy(&res.stdout), format!("{}: ok (2080 rows, {} bytes, sha256 {sha})\n", out.display(), csv.len()));

    let refused = |text: &str, needle: &str| {
        std::fs::write(&out, text).unwrap();
        let res = moatsweep().arg("check").arg(&out).output().unwrap();
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{stderr}");
        assert!(stderr.starts_with(&format!("error: {}: {needle}", out.display())), "{stderr}");
    };
    // One byte of a value changed: same length, same rows, different hash.
    let at = csv.find("\n1,").unwrap() + 3;
    let digit = if &csv[at..at + 1] == "3" { "4" } else { "3" };
    refused(&format!("{}{digit}{}", &csv[..at], &csv[at + 1..]), "its SHA-256 is ");
    // A row missing.
    let cut = csv[..csv.len() - 1].rfind('\n').unwrap() + 1;
    refused(&csv[..cut], "holds 2079 rows, its manifest says 2080");
    // Two columns swapped in the header.
    refused(
        &csv.replacen("share.open,share.frontier_a", "share.frontier_a,share.open", 1),
        "its header differs from the columns of its manifest: column 5 is \"share.frontier_a\" in the file, \"share.open\" in the manifest",
    );
    // No manifest.
    std::fs::remove_file(tmp.path().join("q.csv.manifest.json")).unwrap();
    refused(&csv, "cannot read its manifest ");
}

/// docs/model.md section 6's default tables (the specification) hold the code's
/// defaults: every default firm's and segment's every parameter.
#[test]
fn docs_model_md_section_6_tables_are_the_code_defaults() {
    use moatsweep::model::params::{self, DEFAULT_FIRM_NAMES, DEFAULT_SEGMENT_NAMES, Group, PARAMS};
    let doc = std::fs::read_to_string(root().join("docs/model.md")).unwrap();
    let section = &doc[doc.find("## 6. Defaults").unwrap()..doc.find("## 7.").unwrap()];
    let number = |cell: &str| if cell == "never" { -1.0 } else { cell.parse::<f64>().unwrap_or_else(|_| panic!("{cell}")) };
    for (group, first, names) in [(Group::Segment, "| segment |", DEFAULT_SEGMENT_NAMES), (Group::Firm, "| firm |", DEFAULT_FIRM_NAMES)] {
        let table: Vec<Vec<&str>> = section[section.find(first).unwrap()..]
            .lines()
            .take_while(|l| l.starts_with('|'))
            .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
            .collect();
        let header = &table[0];
        let specs: Vec<_> = PARAMS.iter().filter(|p| p.group == group).collect();
        assert_eq!(header.len() - 1, specs.len(), "{first} has a column per parameter");
        for (k, name) in names.iter().enumerate() {
            let row = table.iter().find(|r| r[0] == *name).unwrap_or_else(|| panic!("no row {name}"));
            let sc = params::baseline();
            for (c, col) in header.iter().enumerate().skip(1) {
                let spec = specs.iter().find(|p| p.name == *col).unwrap_or_else(|| panic!("{col} is not a parameter"));
                assert_eq!(number(row[c]), (spec.get)(&sc, k), "{name}.{col}");
            }
        }
    }
}

/// docs/config.md's complete example is a valid config (version 2's firms need
/// their growth rates: the example must keep up with the parameter table).
#[test]
fn docs_config_md_complete_example_validates() {
    let doc = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    let section = &doc[doc.find("## A complete example").expect("the section")..];
    let example = section.split("```toml\n").nth(1).unwrap().split("```").next().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("example.toml");
    std::fs::write(&path, example).unwrap();
    let out = moatsweep().arg("validate").arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("generations.startup"));
}

/// `--set` names an unknown parameter as a config key does: the nearest name when
/// one is close, and every name of its group, exit status 2, nothing printed.
#[test]
fn scenario_set_names_an_unknown_parameter_and_suggests_a_close_one() {
    let model_names: Vec<String> = moatsweep::model::params::names(moatsweep::model::params::Group::Model).map(str::to_string).collect();
    for (path, near) in [("model.ad_uplfit", Some("ad_uplift")), ("model.nosuch", None), ("firm.open.fundin", Some("funding"))] {
        let out = moatsweep().args(["scenario", "configs/baseline.toml", "--set", &format!("{path}=1")]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(out.stdout.is_empty(), "{path}: nothing solved");
        assert_eq!(err.lines().count(), 1, "{path}: one line: {err}");
        let (group, name) = path.rsplit_once('.').unwrap();
        let group = group.split('.').next().unwrap();
        assert!(err.starts_with(&format!("error: --set: {path}: unknown {group} parameter \"{name}\"")), "{err}");
        match near {
            Some(n) => assert!(err.contains(&format!("(did you mean \"{n}\"?)")), "{path}: {err}"),
            None => assert!(!err.contains("did you mean"), "{path}: nothing is close to {name}: {err}"),
        }
        assert!(err.contains("; expected one of: "), "{path}: every name is listed: {err}");
        if group == "model" {
            for n in &model_names {
                assert!(err.contains(n.as_str()), "{path}: {n} is not listed: {err}");
            }
        }
    }
}

/// The number printed before " scenarios/s" after `key` in `line`.
fn rate_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest[..rest.find(" scenarios/s")?].split_whitespace().last()?.parse().ok()
}

/// Whether `printed` (rounded to `digits` decimals) can be a / b for the rates a and
/// b printed rounded to whole numbers.
fn ratio_of_printed(printed: f64, a: f64, b: f64, digits: i32) -> bool {
    let half = 0.5 * 10f64.powi(-digits);
    let (lo, hi) = ((a - 0.5).max(0.0) / (b + 0.5), (a + 0.5) / (b - 0.5).max(1e-300));
    printed >= lo - half && printed <= hi + half
}

/// A backend's line of `bench`: its label, then compute and end-to-end rates
/// (positive; nothing is said about their size), and the kernel's where measured.
struct BenchLine {
    label: String,
    compute: f64,
    end_to_end: f64,
}

fn bench_line(line: &str) -> BenchLine {
    let at = line.find(" compute ").unwrap_or_else(|| panic!("no compute rate: {line}"));
    let compute = rate_after(line, " compute ").unwrap_or_else(|| panic!("{line}"));
    let end_to_end = rate_after(line, "end to end (CSV, ").unwrap_or_else(|| panic!("{line}"));
    assert!(compute > 0.0 && end_to_end > 0.0 && compute.is_finite() && end_to_end.is_finite(), "{line}");
    if let Some(k) = rate_after(line, " kernel only ") {
        assert!(k > 0.0 && k.is_finite(), "{line}");
    }
    BenchLine { label: line[..at].trim().to_string(), compute, end_to_end }
}

/// Runs `bench` with `args` (and `env`) and returns its stdout's lines.
fn bench(args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = moatsweep();
    cmd.arg("bench").args(args).env_remove("WGPU_ADAPTER_NAME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "bench {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// `bench` with its smallest row count: a header naming the config and the shape of
/// its scenarios, a rate line for the CPU, and, where an adapter exists (a software
/// one, lavapipe, counts: bench measures any adapter), one for the GPU with its
/// rows packed on the host and one with them made on the device (quickstart is a
/// grid), each with the ratio of the printed rates; without an adapter it says the
/// GPU was not measured.
#[test]
fn bench_prints_a_rate_for_the_cpu_and_any_gpu() {
    for env in [&[][..], &[("WGPU_BACKEND", "none")]] {
        let gpu = env.is_empty() && common::have_gpu();
        let lines = bench(&["--rows", "1"], env);
        // configs/quickstart.toml: 36 months and the default 4 firms and 3 segments (docs/model.md section 6).
        assert!(
            lines[0]
                .starts_with("bench: configs/quickstart.toml (1 rows per GPU measurement, 1 per CPU one; 36 months, 4 firms, 3 segments; "),
            "{lines:?}"
        );
        assert!(lines[0].ends_with(" host threads)"), "{lines:?}");
        if !gpu {
            // Said when the backends are made, before any measurement.
            assert_eq!(lines.len(), 3, "{lines:?}");
            assert!(lines[1].starts_with("gpu: not measured (no GPU adapter found"), "{lines:?}");
            assert!(bench_line(&lines[2]).label.starts_with("cpu f64 x"), "{lines:?}");
            continue;
        }
        let cpu = bench_line(&lines[1]);
        assert!(cpu.label.starts_with("cpu f64 x"), "{lines:?}");
        assert_eq!(lines.len(), 8, "{lines:?}");
        for (k, mode) in ["host rows", "device rows"].iter().enumerate() {
            let g = bench_line(&lines[2 + k]);
            assert!(g.label.starts_with("gpu ") && g.label.ends_with(&format!("(f32) {mode}")), "{lines:?}");
            let ratio =
                lines[4 + k].strip_prefix(&format!("ratio {} / {}: compute ", g.label, cpu.label)).unwrap_or_else(|| panic!("{lines:?}"));
            let (c, e) = ratio.split_once("x, end to end ").unwrap();
            let (c, e): (f64, f64) = (c.parse().unwrap(), e.strip_suffix('x').unwrap().parse().unwrap());
            assert!(ratio_of_printed(c, g.compute, cpu.compute, 2), "compute ratio {c} of {} / {}", g.compute, cpu.compute);
            assert!(ratio_of_printed(e, g.end_to_end, cpu.end_to_end, 2), "end-to-end ratio {e} of {} / {}", g.end_to_end, cpu.end_to_end);
            // Last, what the GPU's end-to-end runs moved: one row in one chunk uploads
            // its parameters (host rows; device rows upload none, their plan went up
            // once before the run) and the chunk's 16-byte uniform, and reads back its
            // outputs (and 16 bytes of timestamps where the adapter has them).
            let cost = lines[6 + k].strip_prefix(&format!("{} end to end (CSV): ", g.label)).unwrap_or_else(|| panic!("{lines:?}"));
            let (nf, ns) = (4, 3);
            let ts = if moatsweep::gpu::list_adapters()[0].timestamp_query { 16.0 } else { 0.0 };
            let params = if k == 0 { 4 * moatsweep::gpu::layout::param_stride(nf, ns) } else { 0 };
            assert_eq!(bytes_after(cost, "uploaded "), (params + 16) as f64, "{cost}");
            assert_eq!(bytes_after(cost, "read back "), (4 * moatsweep::gpu::layout::out_stride(nf)) as f64 + ts, "{cost}");
            assert!(cost.contains(" us (process ") && cost.contains("longest dispatch "), "{cost}");
            assert!(cost.ends_with(" of budget 0.5 s (1 submissions)"), "{cost}");
        }
    }
}

/// The bytes printed after `key` (`uploaded 320.0 B`).
fn bytes_after(line: &str, key: &str) -> f64 {
    let rest = &line[line.find(key).unwrap_or_else(|| panic!("no {key:?}: {line}")) + key.len()..];
    rest.split(" B").next().unwrap().parse().unwrap_or_else(|_| panic!("{line}"))
}

/// `bench` on a reduced config also measures the reduction on every backend: the
/// groups, outputs and statistics of its [reduce] table, a reduced rate per backend
/// and the host's per-core rates.
#[test]
fn bench_of_a_reduced_config_measures_the_reduction() {
    let gpu = common::have_gpu();
    let lines = bench(&["tests/configs/strategy-map-small.toml", "--rows", "1"], &[]);
    // The CPU; the GPU with host rows and with device rows.
    let backends = if gpu { 3 } else { 1 };
    let at = lines.iter().position(|l| l.starts_with("reduce: ")).unwrap_or_else(|| panic!("{lines:?}"));
    // by ad uplift (5 steps) x funding (4 steps); the six outputs and five stats it lists.
    assert!(lines[at].starts_with("reduce: 20 groups x 6 outputs (mean, std, min, max, count), best; the kernel writes "), "{}", lines[at]);
    let labels: Vec<String> = lines[1..at]
        .iter()
        .filter(|l| !l.starts_with("ratio ") && !l.starts_with("gpu: not measured"))
        .map(|l| bench_line(l).label)
        .collect();
    assert_eq!(labels.len(), backends, "{lines:?}");
    for (k, label) in labels.iter().enumerate() {
        let line = &lines[at + 1 + k];
        assert!(line.starts_with(label.as_str()), "{line}");
        let r = rate_after(line, "reduced end to end ").unwrap_or_else(|| panic!("{line}"));
        assert!(r > 0.0 && r.is_finite(), "{line}");
        if let Some(kernel) = rate_after(line, "of kernel only in the same run (") {
            let pct: f64 = line.split(" = ").nth(1).unwrap().split('%').next().unwrap().parse().unwrap();
            assert!(ratio_of_printed(pct / 100.0, r, kernel, 3), "{line}");
        }
    }
    let host = &lines[at + 1 + backends];
    assert!(host.starts_with("host, per core: reduce f64 rows "), "{lines:?}");
    let rates: Vec<f64> = host.split(" rows/s").filter_map(|p| p.split_whitespace().last()?.parse().ok()).collect();
    assert_eq!(rates.len(), 3, "{host}");
    assert!(rates.iter().all(|r| *r > 0.0 && r.is_finite()), "{host}");
    if gpu {
        // Last, each GPU measurement's bytes per scenario, end to end then reduced
        // (with one row, a block's partials outweigh the row: nothing is said about
        // their sizes).
        let costs = &lines[at + 2 + backends..];
        assert_eq!(costs.len(), 4, "{lines:?}");
        for (k, what) in ["end to end (CSV)", "end to end (CSV)", "reduced", "reduced"].iter().enumerate() {
            let gpu_label = &labels[1 + k % 2];
            let line = costs[k].strip_prefix(&format!("{gpu_label} {what}: ")).unwrap_or_else(|| panic!("{lines:?}"));
            assert!(bytes_after(line, "uploaded ") > 0.0 && bytes_after(line, "read back ") > 0.0, "{line}");
            assert!(line.contains("longest dispatch "), "{line}");
        }
    }
    assert_eq!(lines.len(), at + 2 + backends + if gpu { 4 } else { 0 }, "{lines:?}");
}

/// `adapters` prints one line per adapter wgpu finds (name, backend, type, software
/// or not, driver, limits), lavapipe among them where its driver is installed, and
/// a plain sentence when there is none.
#[test]
fn adapters_lists_what_wgpu_finds() {
    let out = moatsweep().arg("adapters").env("WGPU_BACKEND", "none").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "no GPU adapter found (run uses the CPU backend)\n");

    let out = moatsweep().arg("adapters").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    if !common::have_gpu() {
        assert_eq!(text, "no GPU adapter found (run uses the CPU backend)\n");
        return;
    }
    let lines: Vec<&str> = text.lines().collect();
    let found = moatsweep::gpu::list_adapters();
    assert_eq!(lines.len(), found.len(), "{text}");
    for a in &found {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("{} ({}, {}", a.name, a.backend, a.device_type)))
            .unwrap_or_else(|| panic!("{} in {text}", a.name));
        assert_eq!(line.contains(", software;"), a.software, "{line}");
        assert!(line.contains("; driver ") && line.contains(" MiB, max buffer ") && line.contains(" workgroups per dimension"), "{line}");
    }
    // Mesa's lavapipe registers itself as lvp_icd.<arch>.json; where it is installed
    // (as in CI), wgpu finds it as llvmpipe, a software Vulkan adapter.
    let lavapipe = std::fs::read_dir("/usr/share/vulkan/icd.d")
        .map(|d| d.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with("lvp_icd.")))
        .unwrap_or(false);
    if lavapipe {
        assert!(lines.iter().any(|l| l.starts_with("llvmpipe") && l.contains("(vulkan, Cpu, software;")), "lavapipe is installed: {text}");
    }
}
