//! A run killed at any point (as `kill -9` would: a crash, a pre-empted node)
//! resumes with `--resume` to the uninterrupted run's exact bytes, and `check`
//! vouches for nothing that a reader cannot decode.
//!
//! The kill lands at a chosen point deterministically: the binary's hidden test
//! hooks (src/testhook.rs) abort the process right after its N-th checkpoint is on
//! disk, or halfway through the file's closing bytes, and make Parquet's row
//! groups small so that a small sweep has several. Points: before the first row
//! group (the `.partial` holds only Parquet's magic), between row groups, and
//! during the footer; on the CPU and on every GPU adapter (lavapipe in CI), for
//! rows files and for reduced runs.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use parquet::file::reader::{FileReader, SerializedFileReader};
use support::moatsweep;

/// Rows per Parquet row group in these tests.
const GROUP: u64 = 500;
/// Rows per chunk: a chunk never completes a row group by itself.
const CHUNK: u64 = 200;

/// 4 x 10 x 50 = 2,000 rows: four row groups of 500.
const ROWS: &str = r#"version = 1
[sweep]
name = "crash-rows"
[model]
months = 24
[[firm]]
name = "open"
[[firm]]
name = "frontier_a"
[[firm]]
name = "challenger"
train_spend = 5e8
[axes]
"firm.open.release_month" = { values = [0, 6, 12, "never"] }
"firm.challenger.funding" = { logspace = [3e7, 1e9], steps = 10 }
"model.ad_uplift" = { logspace = [1e-3, 1e-1], steps = 50 }
"#;

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what}: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

fn backends() -> Vec<&'static str> {
    let mut b = vec!["cpu"];
    if common::have_gpu() {
        b.push("gpu");
    }
    b
}

/// `moatsweep run` of `cfg` into `out` with the test's row groups and chunks, and `hook` (if any).
fn run(cfg: &Path, out: &Path, backend: &str, format: &str, hook: Option<&str>, resume: bool) -> Output {
    run_with(cfg, out, backend, format, hook, resume, GROUP, CHUNK)
}

#[allow(clippy::too_many_arguments)]
fn run_with(cfg: &Path, out: &Path, backend: &str, format: &str, hook: Option<&str>, resume: bool, group: u64, chunk: u64) -> Output {
    let mut c: Command = moatsweep();
    c.env("MOATSWEEP_TEST_ROW_GROUP_ROWS", group.to_string());
    match hook {
        Some(h) => c.env("MOATSWEEP_TEST_ABORT", h),
        None => c.env_remove("MOATSWEEP_TEST_ABORT"),
    };
    c.args(["run", "--quiet", "--backend", backend, "--chunk-rows", &chunk.to_string(), "--format", format]).arg(cfg).arg("--out").arg(out);
    if resume {
        c.arg("--resume");
    }
    c.output().unwrap()
}

fn partial(out: &Path) -> PathBuf {
    PathBuf::from(format!("{}.partial", out.display()))
}

/// Every page of every column of the file decodes (not only its footer).
fn decode_all(path: &Path) -> u64 {
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = 0;
    for g in 0..r.num_row_groups() {
        let rg = r.get_row_group(g).unwrap();
        for c in 0..rg.num_columns() {
            let mut pages = rg.get_column_page_reader(c).unwrap();
            while let Some(p) = pages.get_next_page().unwrap_or_else(|e| panic!("{} row group {g} column {c}: {e}", path.display())) {
                let _ = p.num_values();
            }
        }
        rows += rg.metadata().num_rows() as u64;
    }
    rows
}

/// Kills a run at `hook`, checks that nothing looks complete, resumes it and
/// compares the bytes with `full`'s.
fn kill_and_resume(cfg: &Path, dir: &Path, backend: &str, name: &str, hook: &str, full: &[u8], check_partial: impl Fn(&Path)) {
    let out = dir.join(format!("{name}.parquet"));
    let killed = run(cfg, &out, backend, "parquet", Some(hook), false);
    assert!(!killed.status.success(), "{backend} {hook}: the run was not stopped by the hook");
    assert!(
        String::from_utf8_lossy(&killed.stderr).contains("test hook: aborting"),
        "{backend} {hook}: stopped for another reason: {}",
        String::from_utf8_lossy(&killed.stderr)
    );
    assert!(!out.exists(), "{backend} {hook}: a killed run left a file that looks complete");
    check_partial(&partial(&out));
    ok(run(cfg, &out, backend, "parquet", None, true), &format!("{backend} {hook}: --resume"));
    let resumed = std::fs::read(&out).unwrap();
    assert!(
        resumed == full,
        "{backend} {hook}: the resumed file differs from the uninterrupted run's ({} against {} bytes)",
        resumed.len(),
        full.len()
    );
    assert_eq!(decode_all(&out), 2000, "{backend} {hook}");
    ok(moatsweep().arg("check").arg(&out).output().unwrap(), &format!("{backend} {hook}: check"));
}

#[test]
fn a_parquet_run_killed_anywhere_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = dir.join("crash-rows.toml");
    std::fs::write(&cfg, ROWS).unwrap();
    for backend in backends() {
        let full_path = dir.join(format!("full-{backend}.parquet"));
        ok(run(&cfg, &full_path, backend, "parquet", None, false), &format!("{backend}: the uninterrupted run"));
        let full = std::fs::read(&full_path).unwrap();
        assert_eq!(decode_all(&full_path), 2000);
        assert_eq!(SerializedFileReader::new(std::fs::File::open(&full_path).unwrap()).unwrap().num_row_groups() as u64, 2000 / GROUP);

        // Checkpoint 1 is the fresh run's empty start; 2 follows the first chunk,
        // which completes no row group: the `.partial` holds only the magic bytes.
        kill_and_resume(&cfg, dir, backend, &format!("magic-{backend}"), "checkpoint:2", &full, |p| {
            assert_eq!(std::fs::read(p).unwrap(), b"PAR1", "{backend}: before the first row group the file holds only its magic");
        });
        // After the fourth chunk (800 rows): one row group in, the next begun.
        kill_and_resume(&cfg, dir, backend, &format!("between-{backend}"), "checkpoint:5", &full, |p| {
            assert!(std::fs::metadata(p).unwrap().len() > 4, "{backend}: a row group is in");
            assert!(SerializedFileReader::new(std::fs::File::open(p).unwrap()).is_err(), "{backend}: the partial reads as complete");
        });
        // Halfway through the footer: every row group is in.
        kill_and_resume(&cfg, dir, backend, &format!("footer-{backend}"), "closing", &full, |p| {
            let len = std::fs::metadata(p).unwrap().len();
            assert!(len < full.len() as u64 && len > full.len() as u64 / 2, "{backend}: stopped inside the footer ({len} bytes)");
        });
    }
}

/// The same points for a CSV: a header, then rows.
#[test]
fn a_csv_run_killed_anywhere_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = dir.join("crash-rows.toml");
    std::fs::write(&cfg, ROWS).unwrap();
    for backend in backends() {
        let full_path = dir.join(format!("full-{backend}.csv"));
        ok(run(&cfg, &full_path, backend, "csv", None, false), &format!("{backend}: the uninterrupted run"));
        let full = std::fs::read(&full_path).unwrap();
        for hook in ["checkpoint:1", "checkpoint:2", "checkpoint:7"] {
            let out = dir.join(format!("k-{backend}-{}.csv", hook.replace(':', "-")));
            let killed = run(&cfg, &out, backend, "csv", Some(hook), false);
            assert!(!killed.status.success() && !out.exists(), "{backend} {hook}");
            ok(run(&cfg, &out, backend, "csv", None, true), &format!("{backend} {hook}: --resume"));
            assert!(std::fs::read(&out).unwrap() == full, "{backend} {hook}: the resumed CSV differs");
        }
    }
}

/// 4 x 16 x 200 = 12,800 rows: three reduction blocks of 4,096 and a short one;
/// with `rows = true` the rows file too, in row groups of 1,024.
const REDUCED: &str = r#"version = 1
[sweep]
name = "crash-reduced"
[model]
months = 24
[[firm]]
name = "open"
[[firm]]
name = "frontier_a"
[[firm]]
name = "challenger"
train_spend = 5e8
[axes]
"firm.open.release_month" = { values = [0, 6, 12, "never"] }
"firm.challenger.funding" = { logspace = [3e7, 1e9], steps = 16 }
"model.ad_uplift" = { logspace = [1e-3, 1e-1], steps = 200 }
[reduce]
by = ["firm.challenger.funding"]
outputs = ["npv.open", "share.open", "exited.challenger"]
stats = ["mean", "std", "min", "max", "q50"]
rows = ROWS
"#;

const BLOCK: u64 = 4096;
const REDUCED_GROUP: u64 = 1024;

fn reduced_file(out: &Path) -> PathBuf {
    out.with_file_name(format!("{}.reduced.csv", out.file_stem().unwrap().to_string_lossy()))
}

/// A reduced run killed at each point (its state in the checkpoint; with `rows =
/// true` its Parquet rows file before, between and after row groups) resumes to the
/// bytes of the uninterrupted run: the reduced CSV, its state, and the rows.
#[test]
fn a_reduced_run_killed_anywhere_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for rows in [true, false] {
        let cfg = dir.join(format!("crash-reduced-{rows}.toml"));
        std::fs::write(&cfg, REDUCED.replace("ROWS", &rows.to_string())).unwrap();
        for backend in backends() {
            let go =
                |out: &Path, hook: Option<&str>, resume: bool| run_with(&cfg, out, backend, "parquet", hook, resume, REDUCED_GROUP, BLOCK);
            let full_path = dir.join(format!("full-{backend}-{rows}.parquet"));
            ok(go(&full_path, None, false), &format!("{backend} rows={rows}: the uninterrupted run"));
            let full_reduced = std::fs::read(reduced_file(&full_path)).unwrap();
            let full_state = std::fs::read(reduced_file(&full_path).with_extension("state")).unwrap();
            let full_rows = rows.then(|| std::fs::read(&full_path).unwrap());
            assert_eq!(full_path.exists(), rows, "{backend}: the rows file exists exactly when rows = true");
            // 1: the empty start; 2: after the first block (the rows file, if any, holds
            // four whole row groups); and halfway through the rows file's footer.
            let mut hooks = vec!["checkpoint:1", "checkpoint:2", "checkpoint:3"];
            if rows {
                hooks.push("closing");
            }
            for hook in hooks {
                let what = format!("{backend} rows={rows} {hook}");
                let out = dir.join(format!("k-{backend}-{rows}-{}.parquet", hook.replace(':', "-")));
                let killed = go(&out, Some(hook), false);
                assert!(!killed.status.success(), "{what}: not stopped by the hook");
                assert!(
                    String::from_utf8_lossy(&killed.stderr).contains("test hook: aborting"),
                    "{what}: {}",
                    String::from_utf8_lossy(&killed.stderr)
                );
                assert!(!reduced_file(&out).exists() && !out.exists(), "{what}: a killed run left a file that looks complete");
                ok(go(&out, None, true), &format!("{what}: --resume"));
                assert!(std::fs::read(reduced_file(&out)).unwrap() == full_reduced, "{what}: the resumed reduced CSV differs");
                assert!(
                    std::fs::read(reduced_file(&out).with_extension("state")).unwrap() == full_state,
                    "{what}: the resumed state differs"
                );
                if let Some(full_rows) = &full_rows {
                    assert!(std::fs::read(&out).unwrap() == *full_rows, "{what}: the resumed rows file differs");
                    assert_eq!(decode_all(&out), 12_800, "{what}");
                    ok(moatsweep().arg("check").arg(&out).output().unwrap(), &format!("{what}: check rows"));
                }
                ok(moatsweep().arg("check").arg(reduced_file(&out)).output().unwrap(), &format!("{what}: check reduced"));
            }
        }
    }
}

/// `check` decodes what it vouches for: a Parquet file whose manifest records its
/// SHA-256 but one of whose pages is damaged, and a CSV with a cut line, are
/// refused with exit status 2 naming the file and the row group or line.
#[test]
fn check_refuses_a_file_its_manifest_vouches_for_but_no_reader_can_decode() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = dir.join("crash-rows.toml");
    std::fs::write(&cfg, ROWS).unwrap();
    let pq = dir.join("ok.parquet");
    ok(run(&cfg, &pq, "cpu", "parquet", None, false), "the run");
    ok(moatsweep().arg("check").arg(&pq).output().unwrap(), "check of the intact file");
    // Damage the middle of the first row group's first page and record the damaged
    // bytes' SHA-256 in the manifest, as the resume bug did.
    let mut bytes = std::fs::read(&pq).unwrap();
    for b in &mut bytes[40..60] {
        *b ^= 0x5a;
    }
    std::fs::write(&pq, &bytes).unwrap();
    let mpath = dir.join("ok.parquet.manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["sha256"] = serde_json::Value::from(support::sha256_hex(&bytes));
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let out = moatsweep().arg("check").arg(&pq).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "check of a damaged page: {err}");
    assert!(err.contains("ok.parquet") && err.contains("row group 0"), "{err}");

    let csv = dir.join("ok.csv");
    ok(run(&cfg, &csv, "cpu", "csv", None, false), "the CSV run");
    let text = std::fs::read_to_string(&csv).unwrap();
    // Line 3 loses its last two fields; the row count and the recorded hash still agree.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let cut = lines[2].rsplitn(3, ',').nth(2).unwrap().to_string();
    lines[2] = cut;
    let damaged = lines.join("\n") + "\n";
    std::fs::write(&csv, &damaged).unwrap();
    let mpath = dir.join("ok.csv.manifest.json");
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["sha256"] = serde_json::Value::from(support::sha256_hex(damaged.as_bytes()));
    std::fs::write(&mpath, serde_json::to_vec_pretty(&m).unwrap()).unwrap();
    let out = moatsweep().arg("check").arg(&csv).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "check of a cut line: {err}");
    assert!(err.contains("ok.csv") && err.contains("line 3"), "{err}");
}
