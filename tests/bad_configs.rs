//! Every invalid config gets exit status 2 and one clear message naming the file,
//! line, column and key. Each fixture in tests/configs/bad/ ends with a line
//! `# expect: LINE:COL: KEY: message` (a prefix of the message is enough where it
//! ends in a long number); the comment is last so that it shifts no line numbers.

use std::path::Path;

use assert_cmd::Command;

fn expectation(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let line =
        text.lines().rev().find(|l| l.starts_with("# expect: ")).unwrap_or_else(|| panic!("{} has no # expect: line", path.display()));
    line["# expect: ".len()..].to_string()
}

#[test]
fn each_bad_config_gets_its_message_and_exit_status_2() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/bad");
    let mut fixtures: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    fixtures.sort();
    assert!(fixtures.len() >= 30, "expected the full fixture set, found {}", fixtures.len());
    let mut failures = Vec::new();
    for path in &fixtures {
        let rel = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap();
        let want = format!("error: {}:{}", rel.display(), expectation(path));
        let out =
            Command::cargo_bin("moatsweep").unwrap().current_dir(env!("CARGO_MANIFEST_DIR")).arg("validate").arg(rel).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().next().unwrap_or("");
        if out.status.code() != Some(2) || !first.starts_with(&want) || stderr.lines().count() != 1 || !out.stdout.is_empty() {
            failures.push(format!("{}\n  status: {:?}\n  want:   {want}\n  got:    {stderr}", rel.display(), out.status.code()));
        }
    }
    assert!(failures.is_empty(), "{} of {} fixtures failed:\n{}", failures.len(), fixtures.len(), failures.join("\n"));
}

#[test]
fn an_invalid_config_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out.csv");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs/bad/weights-sum.toml");
    Command::cargo_bin("moatsweep").unwrap().args(["run", "--quiet", "--backend", "cpu"]).arg(&cfg).arg("--out").arg(&out).assert().code(2);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing may be written for an invalid config");
}

#[test]
fn an_unwritable_output_is_reported_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    // A path below a regular file cannot be created, whoever runs the test.
    let blocker = tmp.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("out.csv");
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/quickstart.toml");
    let res = Command::cargo_bin("moatsweep")
        .unwrap()
        .args(["run", "--quiet", "--backend", "cpu"])
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.starts_with("error: cannot write the output ") && stderr.contains("out.csv.partial"), "{stderr}");
}

#[test]
fn a_missing_config_is_a_clear_error() {
    let res = Command::cargo_bin("moatsweep").unwrap().args(["validate", "no/such/config.toml"]).output().unwrap();
    assert_eq!(res.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(stderr.starts_with("error: no/such/config.toml: cannot read the config: "), "{stderr}");
}

#[test]
fn bad_set_overrides_name_the_path() {
    let cfg = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/baseline.toml");
    let res = Command::cargo_bin("moatsweep").unwrap().arg("scenario").arg(&cfg).args(["--set", "firm.open.funding=-5"]).output().unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&res.stderr), "error: --set: firm.open.funding: value -5 is outside the allowed range [0, 1e35]\n");
    let res = Command::cargo_bin("moatsweep")
        .unwrap()
        .arg("scenario")
        .arg(&cfg)
        .args(["--set", "firm.challenger.train_spend=1e-9"])
        .output()
        .unwrap();
    assert_eq!(res.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&res.stderr).starts_with("error: --set: firm.challenger.train_spend: training compute C/6"));
}
