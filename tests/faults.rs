#![cfg(unix)]
//! Faults lose nothing: a full disk, a checkpoint that cannot be written, a file
//! removed during the run, or a `.partial` changed in place end the run with one
//! message naming the file and no panic, and leave either a `.partial` whose
//! checkpoint vouches only for bytes on disk (so `--resume` gives the bytes of an
//! uninterrupted run) or nothing at all.

mod common;
mod support;

use std::path::Path;

use support::{Block, Running, Tmpfs, assert_checkpoint_consistent, checkpoint_row, moatsweep, sha256_hex, wait_for};

const CONFIG: &str = "configs/release-timing-lhs.toml";

/// The uninterrupted run of `rows` on `backend`, written in its own folder.
fn reference(backend: &str, rows: &str) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let st = moatsweep()
        .args(["run", "--quiet", CONFIG, "--backend", backend, "--rows", rows, "--out"])
        .arg(tmp.path().join("ref.csv"))
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::read(tmp.path().join(format!("ref.rows-{}.csv", rows.replace("..", "-")))).unwrap()
}

/// Asserts one `error:` line naming `file` and containing `os_error`, no panic.
fn assert_one_clean_error(stderr: &str, file: &Path, os_error: &str) {
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(errors[0].contains(&file.display().to_string()) && errors[0].contains(os_error), "{stderr}");
}

fn run_args(backend: &str, out: &Path, rows: &str) -> Vec<String> {
    ["run", "--quiet", CONFIG, "--backend", backend, "--rows", rows, "--chunk-rows", "1000", "--out"]
        .iter()
        .map(|s| s.to_string())
        .chain([out.display().to_string()])
        .collect()
}

/// Fills a 3 MB tmpfs part way through a 10 MB sweep, then gives it room and resumes.
fn full_disk_then_resume(backend: &str) {
    let Some(fs) = Tmpfs::mount("3m") else { return };
    let rows = "0..20000";
    let out = fs.path().join("x.csv");
    let b = Block::new(fs.path(), "x", "rows-0-20000");
    let res = moatsweep().args(run_args(backend, &out, rows)).output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{stderr}");
    assert_one_clean_error(&stderr, &b.partial, "No space left on device");
    assert!(stderr.contains("continue with:"), "{stderr}");
    let (next, _) = assert_checkpoint_consistent(&b.checkpoint, &b.partial, 0);
    assert!(next > 0 && next < 20000, "some rows, not all, reached the disk: {next}");
    assert!(!b.csv.exists() && !b.manifest.exists());

    // Resuming on a disk still full fails the same clean way and loses nothing.
    let again = moatsweep().args(run_args(backend, &out, rows)).arg("--resume").output().unwrap();
    assert_eq!(again.status.code(), Some(1), "{}", String::from_utf8_lossy(&again.stderr));
    assert_checkpoint_consistent(&b.checkpoint, &b.partial, 0);

    fs.resize("64m");
    let res = moatsweep().args(run_args(backend, &out, rows)).arg("--resume").output().unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let got = std::fs::read(&b.csv).unwrap();
    assert!(got == reference(backend, rows), "the resumed {backend} CSV differs from an uninterrupted run");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&b.manifest).unwrap()).unwrap();
    assert_eq!(m["sha256"], sha256_hex(&got).as_str());
    assert_eq!(m["bytes"], got.len() as u64);
    assert!(m["resumed_at_row"].as_u64().unwrap() >= next);
    assert!(!b.partial.exists() && !b.checkpoint.exists());
}

#[test]
fn a_full_disk_ends_the_cpu_run_cleanly_and_resume_finishes_it() {
    full_disk_then_resume("cpu");
}

#[test]
fn a_full_disk_ends_the_gpu_run_cleanly_and_resume_finishes_it() {
    if !common::have_gpu() {
        return;
    }
    full_disk_then_resume("gpu");
}

/// A checkpoint that cannot be written stops the run; the previous checkpoint
/// stays, describing a shorter prefix than the file holds, and resume works.
#[test]
fn a_failed_checkpoint_write_keeps_the_previous_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.csv");
    let rows = "0..100000";
    let b = Block::new(tmp.path(), "x", "rows-0-100000");
    let run = Running::spawn({
        let mut c = moatsweep();
        c.args(run_args("cpu", &out, rows));
        c
    });
    wait_for("a checkpoint at row 3000", || checkpoint_row(&b.checkpoint).is_some_and(|n| n >= 3000));
    // The checkpoint is written to <checkpoint>.partial and renamed: a folder in
    // that place makes the next write fail (retry while the file is there).
    let tmp_cp = std::path::PathBuf::from(format!("{}.partial", b.checkpoint.display()));
    wait_for("the checkpoint's temporary path to be free", || std::fs::create_dir(&tmp_cp).is_ok());
    let (status, stderr) = run.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_one_clean_error(&stderr, &tmp_cp, "Is a directory");
    let (next, len) = assert_checkpoint_consistent(&b.checkpoint, &b.partial, 0);
    assert!(next < 100000);
    assert!(std::fs::metadata(&b.partial).unwrap().len() > len, "the chunk whose checkpoint failed is on disk but not vouched for");

    std::fs::remove_dir(&tmp_cp).unwrap();
    let res = moatsweep().args(run_args("cpu", &out, rows)).arg("--resume").output().unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(std::fs::read(&b.csv).unwrap() == reference("cpu", rows), "the resumed CSV differs from an uninterrupted run");
}

/// A `.partial` removed while the run writes it: one message, and nothing left
/// that looks resumable.
#[test]
fn a_partial_removed_during_the_run_ends_it_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.csv");
    let b = Block::new(tmp.path(), "x", "rows-0-100000");
    let run = Running::spawn({
        let mut c = moatsweep();
        c.args(run_args("cpu", &out, "0..100000"));
        c
    });
    wait_for("a checkpoint at row 3000", || checkpoint_row(&b.checkpoint).is_some_and(|n| n >= 3000));
    std::fs::remove_file(&b.partial).unwrap();
    let (status, stderr) = run.wait();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert_one_clean_error(&stderr, &b.partial, "removed");
    assert!(!stderr.contains("continue with"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

/// A `.partial` edited in place after its checkpoint was written is refused by
/// `--resume`, naming it, and left as it is.
#[test]
fn resume_refuses_a_partial_changed_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.csv");
    let b = Block::new(tmp.path(), "x", "rows-0-100000");
    let mut run = Running::spawn({
        let mut c = moatsweep();
        c.args(run_args("cpu", &out, "0..100000"));
        c
    });
    wait_for("a checkpoint at row 2000", || checkpoint_row(&b.checkpoint).is_some_and(|n| n >= 2000));
    run.child.kill().unwrap();
    run.wait();
    // One digit of row 1 changes; the length and the row count stay.
    let mut data = std::fs::read(&b.partial).unwrap();
    let at = data.iter().position(|&c| c == b'\n').unwrap() + 3;
    data[at] = if data[at] == b'1' { b'2' } else { b'1' };
    std::fs::write(&b.partial, &data).unwrap();
    let res = moatsweep().args(run_args("cpu", &out, "0..100000")).arg("--resume").output().unwrap();
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot resume {}: its first ", b.partial.display()))
            && stderr.contains("do not match the SHA-256 in its checkpoint"),
        "{stderr}"
    );
    assert!(std::fs::read(&b.partial).unwrap() == data, "a refused resume must not touch the file");
    assert!(b.checkpoint.exists());
}
