//! Parquet output (`run --format parquet`): every value read back through the
//! parquet crate's own record reader equals the CSV of the same run (CPU: the f64
//! the CSV's shortest decimal parses to; GPU: the f32 it parses to), an empty cell
//! is a null, the column types and footer key-values are as docs/config.md says;
//! the bytes do not depend on threads or chunk size, kill -9 + `--resume` and
//! shards + `merge` give one run's bytes; every analysis prints the same for the
//! Parquet as for the CSV; bad input is refused with exit status 2.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::Output;

use parquet::basic::{LogicalType, Repetition, Type as Physical};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use support::moatsweep;

/// Rows per row group (docs/config.md: row groups hold rows [k 131072, (k + 1) 131072)).
const GROUP: u64 = 131_072;

fn ok(out: Output, what: &str) -> Output {
    assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn run(cfg: &Path, backend: &[String], extra: &[&str]) {
    let out = moatsweep().args(["run", "--quiet"]).args(backend).arg(cfg).args(extra).output().unwrap();
    ok(out, &format!("run {} {extra:?}", cfg.display()));
}

fn cpu() -> Vec<String> {
    vec!["--backend".into(), "cpu".into()]
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A small grid with an integer axis (release month, `never` included), real
/// axes, and prices that are empty where a product is not offered.
const SMALL: &str = r#"version = 1
[sweep]
name = "pq-small"
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
"firm.challenger.funding" = { logspace = [3e7, 1e9], steps = 6 }
"model.ad_uplift" = { logspace = [1e-3, 1e-1], steps = 5 }
"#;

/// 8 x 6 x 8 x 100 = 38,400... times 8 = 307,200 rows: three row groups, the last short.
const LARGE: &str = r#"version = 1
[sweep]
name = "pq-large"
[model]
months = 12
[[firm]]
name = "open"
[[firm]]
name = "challenger"
train_spend = 5e8
[axes]
"firm.open.release_month" = { values = [0, 1, 2, 3, 4, 6, 9, "never"] }
"firm.challenger.funding" = { logspace = [3e7, 1e9], steps = 48 }
"model.ad_uplift" = { logspace = [1e-3, 1e-1], steps = 40 }
"firm.challenger.train_spend" = { logspace = [2e8, 2e9], steps = 20 }
"#;

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The CSV's header and its rows of cells.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header = r.headers().unwrap().iter().map(str::to_string).collect();
    let rows = r.records().map(|rec| rec.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn reader(path: &Path) -> SerializedFileReader<std::fs::File> {
    SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn key_value(r: &SerializedFileReader<std::fs::File>, key: &str) -> Option<String> {
    r.metadata().file_metadata().key_value_metadata()?.iter().find(|kv| kv.key == key)?.value.clone()
}

/// Whether every cell of CSV column `c` is an integer literal (`-1`, `12`): the CSV
/// writes every real in shortest round-trip form, which always has a `.` or an
/// exponent, so these are the integer columns.
fn integer_column(rows: &[Vec<String>], c: usize) -> bool {
    rows.iter().all(|r| {
        let d = r[c].strip_prefix('-').unwrap_or(&r[c]);
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Checks the Parquet at `pq` against the CSV at `csv` of the same run: values,
/// nulls, column types, key-values. `f32`: the run was on the GPU.
fn assert_round_trip(csv: &Path, pq: &Path, f32: bool, kind: &str) {
    let (header, rows) = read_csv(csv);
    let r = reader(pq);
    let meta = r.metadata().file_metadata();
    let schema = meta.schema_descr();
    let names: Vec<String> = schema.columns().iter().map(|c| c.name().to_string()).collect();
    assert_eq!(names, header, "Parquet columns = CSV header");
    assert_eq!(meta.num_rows() as usize, rows.len());

    let csv_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.manifest.json", csv.display())).unwrap()).unwrap();
    let axes: Vec<String> =
        csv_manifest["config"]["axes"].as_array().unwrap().iter().map(|a| a["path"].as_str().unwrap().to_string()).collect();
    assert!(axes.len() >= 2);
    // Types: scenario unsigned 64-bit; integer columns INT32 (signed 32-bit);
    // reals DOUBLE (CPU) or FLOAT (GPU); a column with an empty cell is OPTIONAL.
    for (c, col) in schema.columns().iter().enumerate() {
        let name = &header[c];
        let t = col.self_type();
        let logical = t.get_basic_info().logical_type_ref();
        let optional = t.get_basic_info().repetition() == Repetition::OPTIONAL;
        if c == 0 {
            assert_eq!(col.physical_type(), Physical::INT64, "{name}");
            assert!(matches!(logical, Some(LogicalType::Integer(t)) if t.bit_width == 64 && !t.is_signed), "{name}: {logical:?}");
        } else if integer_column(&rows, c) {
            assert_eq!(col.physical_type(), Physical::INT32, "{name}");
            assert!(matches!(logical, Some(LogicalType::Integer(t)) if t.bit_width == 32 && t.is_signed), "{name}: {logical:?}");
        } else {
            let axis = axes.contains(name);
            let want = if f32 && !axis { Physical::FLOAT } else { Physical::DOUBLE };
            assert_eq!(col.physical_type(), want, "{name}");
            assert!(logical.is_none(), "{name}: {logical:?}");
        }
        if rows.iter().any(|r| r[c].is_empty()) {
            assert!(optional, "{name} has empty cells in the CSV but is not OPTIONAL");
        }
    }
    for name in ["exit_month.open", "generations.open", "max_iterations", "nonconverged_months", "firm.open.release_month"] {
        let c = header.iter().position(|h| h == name).unwrap();
        assert_eq!(schema.column(c).physical_type(), Physical::INT32, "{name} (docs/config.md: INT32)");
    }
    let c = header.iter().position(|h| h == "share.open").unwrap();
    assert_eq!(schema.column(c).physical_type(), if f32 { Physical::FLOAT } else { Physical::DOUBLE });

    // Values, through the crate's record reader (not moatsweep's).
    let mut nulls = 0;
    for (i, row) in r.get_row_iter(None).unwrap().enumerate() {
        let row = row.unwrap();
        let cells = &rows[i];
        for (c, (_, field)) in row.get_column_iter().enumerate() {
            let cell = &cells[c];
            let at = || format!("{}: row {i}, {}: CSV {cell:?}, Parquet {field:?}", pq.display(), header[c]);
            match field {
                Field::Null => {
                    assert!(cell.is_empty(), "{}", at());
                    nulls += 1;
                }
                Field::ULong(v) => assert_eq!(Some(*v), cell.parse::<u64>().ok(), "{}", at()),
                Field::Int(v) => assert_eq!(Some(*v), cell.parse::<i32>().ok(), "{}", at()),
                Field::Double(v) => {
                    let want: f64 = cell.parse().unwrap_or_else(|_| panic!("{}", at()));
                    assert_eq!(v.to_bits(), want.to_bits(), "{}", at());
                }
                Field::Float(v) => {
                    let want: f32 = cell.parse().unwrap_or_else(|_| panic!("{}", at()));
                    assert_eq!(v.to_bits(), want.to_bits(), "{}", at());
                }
                other => panic!("{}: unexpected field {other:?}", at()),
            }
        }
    }
    let empty = rows.iter().flatten().filter(|c| c.is_empty()).count();
    assert!(empty > 0, "the config should give some empty prices, so that nulls are tested");
    assert_eq!(nulls, empty, "nulls = empty CSV cells");

    // Key-values.
    assert_eq!(key_value(&r, "moatsweep.float_precision").as_deref(), Some(if f32 { "f32" } else { "f64" }));
    let m: serde_json::Value = serde_json::from_str(&key_value(&r, "moatsweep.manifest").expect("moatsweep.manifest")).unwrap();
    let beside: serde_json::Value = serde_json::from_slice(&std::fs::read(format!("{}.manifest.json", pq.display())).unwrap()).unwrap();
    assert_eq!(m["columns"], serde_json::json!(header));
    assert_eq!(m["rows"], serde_json::json!([0, rows.len()]));
    assert_eq!(m["config_sha256"], csv_manifest["config_sha256"]);
    assert_eq!(m["config_sha256"], beside["config_sha256"]);
    assert_eq!(m["backend"]["kind"], kind);
    assert_eq!(m["backend"]["precision"], if f32 { "f32" } else { "f64" });
    assert_eq!(beside["format"], "parquet");
}

#[test]
fn parquet_round_trip_equals_the_csv_on_every_backend() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "small.toml", SMALL);
    for b in common::backends() {
        let tag = if b.f32 { "gpu" } else { "cpu" };
        let csv = tmp.path().join(format!("{tag}.csv"));
        let pq = tmp.path().join(format!("{tag}.parquet"));
        run(&cfg, &b.cli_args, &["--out", &s(&csv)]);
        run(&cfg, &b.cli_args, &["--out", &s(&pq), "--format", "parquet"]);
        assert_round_trip(&csv, &pq, b.f32, tag);
        // summarize reads the f32s as the CSV's decimals: the same table.
        let work = tmp.path().join("work");
        let args = ["summarize", "--by", "firm.open.release_month"];
        assert_eq!(analysis(&work, &pq, &args, None).0, analysis(&work, &csv, &args, None).0, "{}", b.name);
        let check = ok(moatsweep().arg("check").arg(&pq).output().unwrap(), "check");
        assert!(String::from_utf8_lossy(&check.stdout).contains(": ok ("));
    }
}

#[test]
fn the_config_key_selects_parquet_and_the_flag_overrides_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "fmt.toml", &format!("{SMALL}[output]\nformat = \"parquet\"\n"));
    let pq = tmp.path().join("a.parquet");
    run(&cfg, &cpu(), &["--out", &s(&pq)]);
    assert_eq!(&std::fs::read(&pq).unwrap()[..4], b"PAR1");
    let csv = tmp.path().join("a.csv");
    run(&cfg, &cpu(), &["--out", &s(&csv), "--format", "csv"]);
    assert!(std::fs::read_to_string(&csv).unwrap().starts_with("scenario,"));
    assert_round_trip(&csv, &pq, false, "cpu");
}

fn row_groups(path: &Path) -> Vec<i64> {
    reader(path).metadata().row_groups().iter().map(|g| g.num_rows()).collect()
}

#[test]
fn bytes_do_not_depend_on_threads_chunks_shards_or_kill_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cfg = write_config(dir, "large.toml", LARGE);
    let rows = 8 * 48 * 40 * 20u64;
    let full_path = dir.join("full.parquet");
    run(&cfg, &cpu(), &["--out", &s(&full_path), "--format", "parquet"]);
    let full = std::fs::read(&full_path).unwrap();
    assert_eq!(row_groups(&full_path), [GROUP as i64, GROUP as i64, (rows - 2 * GROUP) as i64], "row groups aligned to the row index");

    // One thread with small chunks (that cut row groups), and large chunks.
    let one = dir.join("one.parquet");
    let out = moatsweep()
        .args(["--threads", "1", "run", "--quiet", "--backend", "cpu", "--chunk-rows", "7000", "--format", "parquet"])
        .arg(&cfg)
        .args(["--out", &s(&one)])
        .output()
        .unwrap();
    ok(out, "--threads 1 --chunk-rows 7000");
    assert!(std::fs::read(&one).unwrap() == full, "1 thread, 7000-row chunks differ from the default run");
    let big = dir.join("big.parquet");
    run(&cfg, &cpu(), &["--out", &s(&big), "--format", "parquet", "--chunk-rows", "100000"]);
    assert!(std::fs::read(&big).unwrap() == full, "100000-row chunks differ from the default run");

    // Shards (whose ends cut row groups) merged in any order: one run's bytes.
    let mut shards = Vec::new();
    for i in 0..3 {
        run(&cfg, &cpu(), &["--out", &s(&dir.join("s.parquet")), "--format", "parquet", "--shard", &format!("{i}/3")]);
        shards.push(dir.join(format!("s.shard-{i}-of-3.parquet")));
    }
    let merged = dir.join("merged.parquet");
    ok(moatsweep().arg("merge").arg(&merged).args([&shards[2], &shards[0], &shards[1]]).output().unwrap(), "merge");
    assert!(std::fs::read(&merged).unwrap() == full, "merged shards differ from one run");
    ok(moatsweep().arg("check").arg(&merged).output().unwrap(), "check merged");
    // A shard changed after it was written is refused, and nothing is written.
    let mut bytes = std::fs::read(&shards[1]).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&shards[1], bytes).unwrap();
    let m = moatsweep().arg("merge").arg(dir.join("bad.parquet")).args(&shards).output().unwrap();
    assert_eq!(m.status.code(), Some(2), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(String::from_utf8_lossy(&m.stderr).contains("the file changed after it was written"));
    assert!(!dir.join("bad.parquet").exists() && !dir.join("bad.parquet.partial").exists());

    // kill -9 once a row group is in, then --resume: the same bytes; nothing that
    // looks complete before the end.
    let out = dir.join("killed.parquet");
    let partial = dir.join("killed.parquet.partial");
    let checkpoint = dir.join("killed.parquet.partial.checkpoint");
    let log = dir.join("killed.parquet.partial.rowgroups");
    let mut child = std::process::Command::new(support::bin())
        .args(["--threads", "1", "run", "--quiet", "--backend", "cpu", "--chunk-rows", "5000", "--format", "parquet"])
        .arg(&cfg)
        .args(["--out", &s(&out)])
        .spawn()
        .unwrap();
    support::wait_for("a checkpoint past the first row group", || support::checkpoint_row(&checkpoint).is_some_and(|r| r >= GROUP));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!out.exists(), "the run finished before it could be killed; make it longer");
    assert!(partial.exists() && log.exists());
    assert!(SerializedFileReader::new(std::fs::File::open(&partial).unwrap()).is_err(), "the partial file reads as complete Parquet");
    let summarize = moatsweep().arg("summarize").arg(&partial).output().unwrap();
    assert_eq!(summarize.status.code(), Some(2), "summarize on a partial Parquet: {}", String::from_utf8_lossy(&summarize.stderr));
    run(&cfg, &cpu(), &["--out", &s(&out), "--format", "parquet", "--resume"]);
    assert!(std::fs::read(&out).unwrap() == full, "the resumed run differs");
    assert!(!checkpoint.exists() && !log.exists() && !partial.exists(), "the side files are left behind");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("killed.parquet.manifest.json")).unwrap()).unwrap();
    assert!(manifest["resumed_at_row"].as_u64().is_some_and(|r| r >= GROUP && r % GROUP == 0), "{}", manifest["resumed_at_row"]);
    ok(moatsweep().arg("check").arg(&out).output().unwrap(), "check resumed");
}

/// A small Saltelli sweep (for `sensitivity` and `discover`).
const SALTELLI: &str = r#"version = 1
[sweep]
name = "pq-saltelli"
design = "saltelli"
samples = 64
seed = 7
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
"firm.open.release_month" = { integers = [0, 24] }
"firm.challenger.funding" = { loguniform = [1e8, 5e9] }
"model.ad_uplift" = { loguniform = [0.002, 0.1] }
"model.catchup_rate" = { uniform = [0.05, 0.5] }
"#;

/// Runs `args` on `file` copied (with its manifest) to `work/sweep`, so that the
/// path any output shows is the same for either file; the image, if asked for
/// with the flag `image`, is `work/out.png`. Returns stdout and the image.
fn analysis(work: &Path, file: &Path, args: &[&str], image: Option<&str>) -> (String, Option<Vec<u8>>) {
    std::fs::create_dir_all(work).unwrap();
    let at = work.join("sweep");
    std::fs::copy(file, &at).unwrap();
    let manifest = PathBuf::from(format!("{}.manifest.json", file.display()));
    let at_manifest = work.join("sweep.manifest.json");
    let _ = std::fs::remove_file(&at_manifest);
    if manifest.exists() {
        std::fs::copy(&manifest, &at_manifest).unwrap();
    }
    let png = work.join("out.png");
    let _ = std::fs::remove_file(&png);
    let mut cmd = moatsweep();
    cmd.args(&args[..1]).arg(&at).args(&args[1..]);
    if let Some(flag) = image {
        cmd.arg(flag).arg(&png);
    }
    let out = ok(cmd.output().unwrap(), &format!("{args:?} on {}", file.display()));
    (String::from_utf8(out.stdout).unwrap(), image.map(|_| std::fs::read(&png).unwrap()))
}

#[test]
fn every_analysis_prints_the_same_for_the_parquet_as_for_the_csv() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, text) in [("small", SMALL), ("saltelli", SALTELLI)] {
        let cfg = write_config(dir, &format!("{name}.toml"), text);
        let d = dir.join(name);
        run(&cfg, &cpu(), &["--out", &s(&d.join("sweep.csv"))]);
        run(&cfg, &cpu(), &["--out", &s(&d.join("sweep.parquet")), "--format", "parquet"]);
    }
    let small = |f: &str| dir.join("small").join(f);
    let salt = |f: &str| dir.join("saltelli").join(f);
    let cases: Vec<(PathBuf, PathBuf, Vec<&str>, Option<&str>)> = vec![
        (small("sweep.csv"), small("sweep.parquet"), vec!["summarize"], None),
        (small("sweep.csv"), small("sweep.parquet"), vec!["summarize", "--by", "firm.open.release_month", "--by", "model.ad_uplift"], None),
        (small("sweep.csv"), small("sweep.parquet"), vec!["plot", "--x", "model.ad_uplift", "--z", "price.open"], Some("--out")),
        (
            small("sweep.csv"),
            small("sweep.parquet"),
            vec!["plot", "--x", "firm.open.release_month", "--y", "firm.challenger.funding", "--z", "npv.open"],
            Some("--out"),
        ),
        (salt("sweep.csv"), salt("sweep.parquet"), vec!["sensitivity", "--outputs", "npv.open,hhi", "--resamples", "20"], None),
        (salt("sweep.csv"), salt("sweep.parquet"), vec!["discover", "--where", "npv.open > 0"], Some("--plot")),
        (salt("sweep.csv"), salt("sweep.parquet"), vec!["summarize", "--by", "model.catchup_rate"], None),
    ];
    let work = dir.join("work");
    for (csv, pq, args, image) in &cases {
        let a = analysis(&work, csv, args, *image);
        let b = analysis(&work, pq, args, *image);
        assert!(!a.0.trim().is_empty(), "{args:?} printed nothing");
        assert_eq!(b.0, a.0, "{args:?}: stdout differs");
        assert!(a.1 == b.1, "{args:?}: the images differ");
    }
    // Without the manifest beside it, the footer's manifest serves (sensitivity
    // needs the design from it).
    std::fs::remove_file(salt("sweep.parquet.manifest.json")).unwrap();
    let args = ["sensitivity", "--outputs", "npv.open", "--resamples", "20"];
    assert_eq!(analysis(&work, &salt("sweep.parquet"), &args, None).0, analysis(&work, &salt("sweep.csv"), &args, None).0);
}

#[test]
fn unreadable_parquet_is_named_with_exit_status_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = write_config(tmp.path(), "small.toml", SMALL);
    let good = tmp.path().join("good.parquet");
    run(&cfg, &cpu(), &["--out", &s(&good), "--format", "parquet"]);
    let bytes = std::fs::read(&good).unwrap();
    let cut = tmp.path().join("cut.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let junk = tmp.path().join("junk.parquet");
    std::fs::write(&junk, b"PAR1 this is not a Parquet file PAR1").unwrap();
    // A damaged footer length points outside the file.
    let mut bad_len = bytes.clone();
    let n = bad_len.len();
    bad_len[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let footer = tmp.path().join("footer.parquet");
    std::fs::write(&footer, bad_len).unwrap();
    // Damaged pages under an intact footer.
    let mut pages = bytes.clone();
    for i in (200..bytes.len() / 2).step_by(7) {
        pages[i] ^= 0x5a;
    }
    let damaged = tmp.path().join("pages.parquet");
    std::fs::write(&damaged, pages).unwrap();
    for file in [&cut, &junk, &footer, &damaged] {
        for args in [
            vec!["summarize"],
            vec!["plot", "--x", "model.ad_uplift", "--z", "hhi"],
            vec!["sensitivity", "--outputs", "hhi"],
            vec!["discover", "--where", "hhi > 0"],
        ] {
            let out = moatsweep().arg(args[0]).arg(file).args(&args[1..]).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?} on {}: {err}", file.display());
            assert!(err.contains(&s(file)), "{args:?}: the message names the file: {err}");
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    // check, with the good file's manifest beside the cut one.
    std::fs::copy(format!("{}.manifest.json", good.display()), format!("{}.manifest.json", cut.display())).unwrap();
    let out = moatsweep().arg("check").arg(&cut).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&s(&cut)) && !err.contains("panicked"), "{err}");
    // The bad --format value.
    let out = moatsweep().args(["run", "--backend", "cpu", "--format", "arrow"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("arrow"));
}
