//! Hostile input (issue 22): each case that once crashed, hung or exhausted the
//! memory of the binary, or that an analysis read without a word, now ends with
//! exit status 2 and a one-line error naming what is wrong. Each runs under a
//! 1 GiB data limit (`ulimit -d`: an allocation past it aborts the process, so
//! the test fails instead of the machine swapping) and is killed after 10 s (a
//! hang fails the test instead of the suite; nothing here measures speed).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{bin, root};

/// Runs the binary with `args` from the repository root, bounded to 1 GiB of
/// data and 10 s.
fn bounded(args: &[&str]) -> Output {
    let mut c = Command::new("sh");
    c.current_dir(root()).arg("-c").arg("ulimit -d 1048576 && exec \"$0\" \"$@\"").arg(bin()).args(args);
    let mut c = assert_cmd::Command::from_std(c);
    c.timeout(Duration::from_secs(10));
    c.output().unwrap()
}

/// Exit status 2, and stderr one line holding `needle`.
fn refused(out: &Output, needle: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr:.2000}");
    assert!(stderr.contains(needle), "{needle:?} not in: {stderr:.2000}");
    assert_eq!(stderr.matches('\n').count(), 1, "one line: {stderr:.2000}");
    assert!(stderr.ends_with('\n') && !stderr.contains('\r') && !stderr.contains('\0'), "{stderr:?}");
    stderr
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The quickstart sweep run into `dir/q.csv` (2,080 rows) with its manifest.
fn quickstart(dir: &Path) -> PathBuf {
    let csv = dir.join("q.csv");
    let out = bounded(&["run", "configs/quickstart.toml", "--backend", "cpu", "--quiet", "--out", s(&csv)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    csv
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(root().join("tests/fixtures/hostile").join(name)).unwrap()
}

/// `file` with the quickstart's manifest beside it (copied), so that commands
/// that need one get past it to the file.
fn with_manifest(q: &Path, file: &Path) {
    std::fs::copy(manifest(q), manifest(file)).unwrap();
}

fn manifest(p: &Path) -> PathBuf {
    PathBuf::from(format!("{}.manifest.json", p.display()))
}

/// Every command that reads a sweep's file, on `file` (`out`: where merge may write).
fn every_reader(file: &Path, out: &Path) -> Vec<(&'static str, Output)> {
    let f = s(file);
    let png = out.with_extension("png");
    vec![
        ("summarize", bounded(&["summarize", f])),
        ("plot", bounded(&["plot", f, "--x", "firm.open.release_month", "--z", "npv.open", "--out", s(&png)])),
        ("discover", bounded(&["discover", f, "--where", "npv.open > 0", "--out", s(&out.with_extension("d.csv"))])),
        ("sensitivity", bounded(&["sensitivity", f, "--out", s(&out.with_extension("s.csv"))])),
        ("merge", bounded(&["merge", s(out), f])),
        ("check", bounded(&["check", f])),
    ]
}

// ------------------------------------------------------------------ limits

#[test]
fn where_of_20000_open_parentheses_is_refused_by_the_length_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let q = quickstart(tmp.path());
    let expr = fixture("where-20000-open-parens.txt");
    assert_eq!(expr.len(), 20_000);
    let err = refused(&bounded(&["discover", s(&q), "--where", &expr]), "more than the limit of 10000 characters");
    // The expression is quoted cut, with its length.
    assert!(err.contains("… (20000 characters)") && err.len() < 1000, "{err}");
}

#[test]
fn where_nested_past_100_is_refused_by_the_depth_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let q = quickstart(tmp.path());
    for (name, at) in [("where-5000-open-parens.txt", 101), ("where-200-nots.txt", 401)] {
        let expr = fixture(name);
        refused(
            &bounded(&["discover", s(&q), "--where", &expr]),
            &format!("parentheses and not nested more than 100 deep at character {at} (the limit is 100)"),
        );
    }
    // 100 levels are allowed: the expression parses and holds where npv.open > 0 does.
    let expr = format!("{}npv.open > 0{}", "(".repeat(100), ")".repeat(100));
    let out = bounded(&["discover", s(&q), "--where", &expr, "--out", s(&tmp.path().join("d.csv"))]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn threads_past_the_cap_are_refused() {
    refused(&bounded(&["--threads", "100000", "validate", "configs/quickstart.toml"]), "--threads 100000 is more than the limit of 1024");
    refused(&bounded(&["--threads", "1025", "summarize", "no-such.csv"]), "the limit of 1024 threads");
    // The cap itself is allowed (without the data limit: 1,024 thread stacks reserve 2 GiB).
    let out = support::moatsweep().args(["--threads", "1024", "validate", "configs/quickstart.toml"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_3_gb_sparse_config_is_refused_before_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.toml");
    std::fs::File::create(&big).unwrap().set_len(3 << 30).unwrap();
    for cmd in ["validate", "run", "scenario"] {
        refused(&bounded(&[cmd, s(&big)]), "the config is 3221225472 bytes, more than the limit of 1048576 bytes (1 MiB)");
    }
    // At the limit, a config is read (and here refused as TOML: it is all NULs).
    std::fs::File::create(&big).unwrap().set_len(1 << 20).unwrap();
    refused(&bounded(&["validate", s(&big)]), "TOML syntax error");
}

#[test]
fn a_3_gb_sparse_csv_is_refused_by_every_reader() {
    let tmp = tempfile::tempdir().unwrap();
    let q = quickstart(tmp.path());
    let big = tmp.path().join("big.csv");
    std::fs::File::create(&big).unwrap().set_len(3 << 30).unwrap();
    with_manifest(&q, &big);
    for (cmd, out) in every_reader(&big, &tmp.path().join("m.csv")) {
        let err = refused(&out, "big.csv");
        assert!(err.contains("longer than 1048576 bytes"), "{cmd}: {err}");
    }
    assert!(!tmp.path().join("m.csv").exists());
}

#[test]
fn dev_zero_a_directory_and_a_fifo_are_refused_as_not_regular_files() {
    let tmp = tempfile::tempdir().unwrap();
    let q = quickstart(tmp.path());
    let fifo = tmp.path().join("fifo.csv");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: a valid C string; mkfifo has no other precondition.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let zero = tmp.path().join("zero.csv");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let dir = tmp.path().join("dir.csv");
    std::fs::create_dir(&dir).unwrap();
    for (path, kind) in [(&zero, "a character device"), (&dir, "a directory"), (&fifo, "a FIFO")] {
        with_manifest(&q, path);
        for (cmd, out) in every_reader(path, &tmp.path().join("m.csv")) {
            let err = refused(&out, &format!("{}: it is {kind}, not a regular file", path.display()));
            assert!(!err.contains("allocation"), "{cmd}: {err}");
        }
        for cmd in ["validate", "run", "scenario"] {
            refused(&bounded(&[cmd, s(path)]), &format!("cannot read the config: it is {kind}, not a regular file"));
        }
    }
    refused(&bounded(&["validate", "/dev/zero"]), "/dev/zero: cannot read the config: it is a character device, not a regular file");
    refused(&bounded(&["summarize", "/dev/zero"]), "/dev/zero: it is a character device, not a regular file");
    // A manifest that is not a regular file is refused too.
    let q2 = tmp.path().join("q2.csv");
    std::fs::copy(&q, &q2).unwrap();
    std::os::unix::fs::symlink("/dev/zero", manifest(&q2)).unwrap();
    refused(&bounded(&["summarize", s(&q2)]), "q2.csv.manifest.json: not a regular file");
}

// ------------------------------------------------- files against manifests

/// The quickstart CSV cut to its first 1,417 rows, and with two header names
/// swapped, each with the original's manifest: refused by every reader.
#[test]
fn a_cut_csv_and_a_swapped_header_are_refused_by_every_analysis() {
    let tmp = tempfile::tempdir().unwrap();
    let q = quickstart(tmp.path());
    let text = std::fs::read_to_string(&q).unwrap();
    assert_eq!(text.lines().count(), 2081);
    let cut = tmp.path().join("cut.csv");
    let end = text.match_indices('\n').nth(1417).unwrap().0 + 1; // the header and 1,417 rows
    std::fs::write(&cut, &text[..end]).unwrap();
    with_manifest(&q, &cut);
    for (cmd, out) in every_reader(&cut, &tmp.path().join("m.csv")) {
        let err = refused(&out, "cut.csv: holds 1417 rows, its manifest ");
        assert!(err.contains("says 2080"), "{cmd}: {err}");
    }

    let header = text.lines().next().unwrap();
    let names: Vec<&str> = header.split(',').collect();
    assert_eq!(names[2..4], ["firm.challenger.funding", "model.ad_uplift"]);
    let swapped = tmp.path().join("swapped.csv");
    std::fs::write(&swapped, text.replacen("firm.challenger.funding,model.ad_uplift", "model.ad_uplift,firm.challenger.funding", 1))
        .unwrap();
    with_manifest(&q, &swapped);
    for (cmd, out) in every_reader(&swapped, &tmp.path().join("m.csv")) {
        let err = refused(&out, "swapped.csv: its header differs from the columns of its manifest");
        assert!(err.contains("column 3 is \"model.ad_uplift\" in the file, \"firm.challenger.funding\" in the manifest"), "{cmd}: {err}");
    }
    assert!(!tmp.path().join("m.csv").exists());
}

/// Edit the manifest beside `csv` as JSON.
fn edit_manifest(csv: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let path = manifest(csv);
    let mut m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut m);
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
}

#[test]
fn an_older_manifest_still_has_rows_and_header_checked_and_a_changed_byte_is_caught_by_its_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let q = quickstart(tmp.path());
    let text = std::fs::read_to_string(&q).unwrap();
    // A manifest without sha256 or bytes (an older moatsweep): the row count still catches the cut.
    let cut = tmp.path().join("cut.csv");
    std::fs::write(&cut, &text[..text.match_indices('\n').nth(1417).unwrap().0 + 1]).unwrap();
    with_manifest(&q, &cut);
    edit_manifest(&cut, |m| {
        let o = m.as_object_mut().unwrap();
        o.remove("sha256");
        o.remove("bytes");
    });
    refused(&bounded(&["summarize", s(&cut)]), "cut.csv: holds 1417 rows, its manifest");
    // One digit changed: same rows, same length; the SHA-256 differs.
    let at = text.find("\n1,").unwrap() + 3;
    let digit = if &text[at..at + 1] == "3" { "4" } else { "3" };
    let edited = tmp.path().join("edited.csv");
    std::fs::write(&edited, format!("{}{digit}{}", &text[..at], &text[at + 1..])).unwrap();
    with_manifest(&q, &edited);
    for (cmd, out) in every_reader(&edited, &tmp.path().join("m.csv")) {
        let err = refused(&out, "edited.csv: its SHA-256 is ");
        assert!(err.contains("the file changed after it was written"), "{cmd}: {err}");
    }
    // The manifest's byte count is checked too.
    let q3 = tmp.path().join("q3.csv");
    std::fs::copy(&q, &q3).unwrap();
    with_manifest(&q, &q3);
    edit_manifest(&q3, |m| m["bytes"] = serde_json::json!(text.len() + 1));
    refused(
        &bounded(&["plot", s(&q3), "--x", "firm.open.release_month", "--z", "hhi", "--out", s(&tmp.path().join("p.svg"))]),
        &format!("q3.csv: is {} bytes long, its manifest {} records {}", text.len(), manifest(&q3).display(), text.len() + 1),
    );
}

#[test]
fn a_parquet_file_is_checked_against_its_manifest_and_hashed_when_read_whole_or_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let pq = tmp.path().join("q.parquet");
    let out = bounded(&["run", "configs/quickstart.toml", "--backend", "cpu", "--quiet", "--format", "parquet", "--out", s(&pq)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let d = tmp.path().join("d.csv");
    let discover = |extra: &[&str]| {
        let mut args = vec!["discover", s(&pq), "--where", "npv.open > 0", "--out", s(&d)];
        args.extend_from_slice(extra);
        bounded(&args)
    };
    assert!(discover(&[]).status.success());
    // The manifest's hash changed: summarize reads every column and checks it; discover
    // reads some columns and checks it only with --verify-hash.
    let sha = {
        let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(manifest(&pq)).unwrap()).unwrap();
        m["sha256"].as_str().unwrap().to_string()
    };
    let other = format!("{}{}", if sha.starts_with('0') { "1" } else { "0" }, &sha[1..]);
    edit_manifest(&pq, |m| m["sha256"] = serde_json::json!(other));
    refused(&bounded(&["summarize", s(&pq)]), &format!("q.parquet: its SHA-256 is {sha}, its manifest"));
    assert!(discover(&[]).status.success());
    refused(&discover(&["--verify-hash"]), &format!("q.parquet: its SHA-256 is {sha}, its manifest"));
    refused(
        &bounded(&["sensitivity", s(&pq), "--verify-hash", "--out", s(&tmp.path().join("s.csv"))]),
        &format!("q.parquet: its SHA-256 is {sha}"),
    );
    // A row count the file does not hold is refused without a hash.
    edit_manifest(&pq, |m| {
        m["sha256"] = serde_json::json!(sha);
        m["rows_written"] = serde_json::json!(2079);
    });
    refused(&discover(&[]), "q.parquet: holds 2080 rows, its manifest");
    // A manifest that calls it a CSV.
    edit_manifest(&pq, |m| {
        m["rows_written"] = serde_json::json!(2080);
        m.as_object_mut().unwrap().remove("format");
    });
    refused(&discover(&[]), "q.parquet: is a Parquet file, its manifest");
}

// ---------------------------------------------------------------- messages

#[test]
fn quoted_values_are_escaped_and_cut() {
    use moatsweep::config::error::{escape, quoted, shown};
    assert_eq!(escape("a\nb\rc\td\0e\u{7f}f\u{202e}g\u{2066}h"), "a\\nb\\rc\\td\\0e\\u{7f}f\\u{202e}g\\u{2066}h");
    assert_eq!(escape(&escape("a\nb")), "a\\nb");
    assert_eq!(quoted("ok name"), "\"ok name\"");
    // 200 characters are shown whole; more are cut at 200 with the length given.
    let x200 = "é".repeat(200);
    assert_eq!(shown(&x200), x200);
    let big = "x".repeat(5_000_000);
    assert_eq!(shown(&big), format!("{}… (5000000 characters)", "x".repeat(200)));
    // The cut counts characters of the value, escapes are made after it.
    let nl = "\n".repeat(300);
    assert_eq!(shown(&nl), format!("{}… (300 characters)", "\\n".repeat(200)));
}

#[test]
fn a_newline_a_nul_and_a_right_to_left_override_in_a_name_are_shown_escaped() {
    for (file, shown) in [("name-newline.toml", "evil\\nname"), ("name-nul.toml", "evil\\0name"), ("name-rlo.toml", "evil\\u{202e}eman")] {
        let path = format!("tests/fixtures/hostile/{file}");
        let err = refused(&bounded(&["validate", &path]), &format!("{path}:4:8: firm.name: \"{shown}\" is not a valid name"));
        assert!(!err.contains('\u{202e}'), "{err}");
    }
    // A --set path with a newline in it, and one with an RLO.
    let out = bounded(&["scenario", "configs/quickstart.toml", "--set", "firm.ev\nil.brand=1"]);
    refused(&out, "unknown firm \"ev\\nil\"");
    let out = bounded(&["scenario", "configs/quickstart.toml", "--set", "firm.ev\u{202e}il.brand=1"]);
    refused(&out, "\"ev\\u{202e}il\"");
}

#[test]
fn a_5_mb_name_is_cut_in_the_message() {
    let name = "n".repeat(5_000_000);
    // Through the parser (a config file that large is refused before parsing) ...
    let text = format!("version = 1\n[[firm]]\nname = \"{name}\"\n");
    let err = moatsweep::config::parse_config("big.toml", &text, Some("big"), Path::new(".")).err().unwrap().to_string();
    assert!(err.starts_with("big.toml:3:8: firm.name: \"nnn"), "{err:.300}");
    assert!(err.contains("… (5000000 characters)\" is not a valid name") && err.len() < 1000, "{err:.300}");
    // ... and through the binary, as a list design's column name (a list may be large).
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("list.csv"), format!("firm.open.{name}\n1\n")).unwrap();
    let config = tmp.path().join("c.toml");
    std::fs::write(&config, "version = 1\n[sweep]\ndesign = \"list\"\nlist = \"list.csv\"\n").unwrap();
    let err = refused(&bounded(&["validate", s(&config)]), "… (5000010 characters)");
    assert!(err.contains("unknown firm parameter \"nnn") && err.contains("… (5000000 characters)\""), "{err:.500}");
    assert!(err.len() < 2000, "{}", err.len());
}

#[test]
fn a_config_with_a_byte_order_mark_is_refused() {
    refused(
        &bounded(&["validate", "tests/fixtures/hostile/bom.toml"]),
        "tests/fixtures/hostile/bom.toml:1:1: the config starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without one",
    );
    // The same config without it is valid.
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("bom.toml");
    std::fs::write(&plain, fixture("bom.toml").trim_start_matches('\u{feff}')).unwrap();
    let out = bounded(&["validate", s(&plain)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn discover_names_the_manifest_when_it_lists_an_axis_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let q = quickstart(tmp.path());
    edit_manifest(&q, |m| {
        let axes = m["config"]["axes"].as_array_mut().unwrap();
        let first = axes[0].clone();
        axes.push(first);
    });
    let err = refused(
        &bounded(&["discover", s(&q), "--where", "npv.open > 0", "--out", s(&tmp.path().join("d.csv"))]),
        &format!("{}: its manifest lists the axis \"firm.open.release_month\" twice", q.display()),
    );
    assert!(!err.contains("--inputs: "), "{err}");
    // Given twice on the command line, --inputs is named.
    let out = bounded(&[
        "discover",
        s(&q),
        "--where",
        "npv.open > 0",
        "--inputs",
        "model.ad_uplift,model.ad_uplift",
        "--out",
        s(&tmp.path().join("d.csv")),
    ]);
    refused(&out, "--inputs: \"model.ad_uplift\" is given twice");
}
