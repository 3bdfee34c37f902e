#![cfg(unix)]
//! `run --resume` refuses what it cannot continue: another backend, other rows,
//! another program version, no checkpoint, a `.partial` shorter than its checkpoint
//! records. Each refusal is exit status 2 and one message naming what changed,
//! and leaves the interrupted run's files as they were, so that the right
//! `--resume` still finishes it with the bytes of an uninterrupted run.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::{Block, Running, assert_checkpoint_consistent, bin, checkpoint_row, root, wait_for};

const CONFIG: &str = "configs/release-timing-lhs.toml";
/// The run's rows: `--limit 50000`, written to `<out stem>.rows-0-50000.csv`.
const LIMIT: &str = "50000";

fn run_cmd(out: &Path, backend: &str, limit: &str) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(root()).args(["run", "--quiet", CONFIG, "--backend", backend, "--limit", limit, "--chunk-rows", "500", "--out"]);
    c.arg(out);
    c
}

/// A CPU run of the first 50,000 rows stopped by SIGINT once a checkpoint past row
/// 1000 is on disk: a `.partial` and the checkpoint that vouches for it remain.
struct Stopped {
    tmp: tempfile::TempDir,
    out: PathBuf,
    b: Block,
    partial: Vec<u8>,
    checkpoint: Vec<u8>,
}

impl Stopped {
    fn new() -> Stopped {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("x.csv");
        let b = Block::new(tmp.path(), "x", "rows-0-50000");
        let mut run = Running::spawn(run_cmd(&out, "cpu", LIMIT));
        wait_for("a checkpoint past row 1000", || checkpoint_row(&b.checkpoint).is_some_and(|n| n >= 1000) || run.exited());
        assert!(!run.exited(), "the run ended before the signal: {}", run.stderr());
        run.signal(libc::SIGINT);
        let (status, stderr) = run.wait();
        assert_eq!(status.code(), Some(130), "{stderr}");
        let (next, _) = assert_checkpoint_consistent(&b.checkpoint, &b.partial, 0);
        assert!(next > 0 && next < 50000, "{next}");
        let (partial, checkpoint) = (std::fs::read(&b.partial).unwrap(), std::fs::read(&b.checkpoint).unwrap());
        Stopped { tmp, out, b, partial, checkpoint }
    }

    /// `--resume` with `backend` and `--limit limit`.
    fn resume(&self, backend: &str, limit: &str) -> Output {
        run_cmd(&self.out, backend, limit).args(["--verify", "0", "--resume"]).output().unwrap()
    }

    /// The checkpoint as JSON, changed by `edit`, written back.
    fn edit_checkpoint(&self, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut cp: serde_json::Value = serde_json::from_slice(&self.checkpoint).unwrap();
        edit(&mut cp);
        std::fs::write(&self.b.checkpoint, serde_json::to_vec_pretty(&cp).unwrap()).unwrap();
    }

    /// The `.partial` is as the interrupted run left it, and the checkpoint is
    /// `checkpoint`; no finished CSV or manifest appeared.
    fn assert_left_as(&self, partial: &[u8], checkpoint: &[u8]) {
        assert!(std::fs::read(&self.b.partial).unwrap() == partial, "a refused resume changed the .partial");
        assert!(std::fs::read(&self.b.checkpoint).unwrap() == checkpoint, "a refused resume changed the checkpoint");
        assert!(!self.b.csv.exists() && !self.b.manifest.exists());
    }
}

/// Asserts exit status 2 and one `error:` line, no panic; returns that line.
fn refusal(res: &Output) -> String {
    let stderr = String::from_utf8_lossy(&res.stderr).into_owned();
    assert_eq!(res.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_string()
}

/// The tail every refusal of a checkpoint ends with.
const START_OVER: &str = "; run without --resume to start over";

#[test]
fn resume_refuses_another_backend() {
    if !common::have_gpu() {
        return;
    }
    let s = Stopped::new();
    let err = refusal(&s.resume("gpu", LIMIT));
    let want =
        format!("error: cannot resume {}: the backend changed (checkpoint: cpu f64; now: gpu f32){START_OVER}", s.b.partial.display());
    assert_eq!(err, want);
    s.assert_left_as(&s.partial, &s.checkpoint);
}

/// Other rows, through the flags: `--limit 40000` names another file, whose
/// checkpoint does not exist; through the checkpoint: its rows are not the run's.
#[test]
fn resume_refuses_other_rows() {
    let s = Stopped::new();
    let err = refusal(&s.resume("cpu", "40000"));
    let other = s.tmp.path().join("x.rows-0-40000.csv.partial.checkpoint");
    assert!(err.starts_with(&format!("error: nothing to resume: cannot read the checkpoint {}: ", other.display())), "{err}");
    assert!(!s.tmp.path().join("x.rows-0-40000.csv.partial").exists(), "a refused resume starts nothing");
    s.assert_left_as(&s.partial, &s.checkpoint);

    s.edit_checkpoint(|cp| cp["rows"] = serde_json::json!([0, 40000]));
    let edited = std::fs::read(&s.b.checkpoint).unwrap();
    let err = refusal(&s.resume("cpu", LIMIT));
    let want =
        format!("error: cannot resume {}: the rows changed (checkpoint: [0, 40000]; now: [0, 50000]){START_OVER}", s.b.partial.display());
    assert_eq!(err, want);
    s.assert_left_as(&s.partial, &edited);
}

/// A checkpoint written by another version of moatsweep is refused, naming both
/// versions; put back, the same `--resume` finishes the run with the bytes of an
/// uninterrupted one (a refusal damaged nothing).
#[test]
fn resume_refuses_another_program_version_and_then_finishes() {
    let s = Stopped::new();
    s.edit_checkpoint(|cp| cp["moatsweep_version"] = "0.0.1-old".into());
    let edited = std::fs::read(&s.b.checkpoint).unwrap();
    let err = refusal(&s.resume("cpu", LIMIT));
    let prefix = format!("error: cannot resume {}: the program changed (checkpoint: moatsweep 0.0.1-old, ", s.b.partial.display());
    assert!(err.starts_with(&prefix), "{err}");
    assert!(err.contains(&format!("; now: moatsweep {}, ", env!("CARGO_PKG_VERSION"))) && err.ends_with(START_OVER), "{err}");
    s.assert_left_as(&s.partial, &edited);

    std::fs::write(&s.b.checkpoint, &s.checkpoint).unwrap();
    let res = s.resume("cpu", LIMIT);
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    let reference = s.tmp.path().join("ref.csv");
    let st = run_cmd(&reference, "cpu", LIMIT).status().unwrap();
    assert!(st.success());
    let want = std::fs::read(s.tmp.path().join("ref.rows-0-50000.csv")).unwrap();
    assert!(std::fs::read(&s.b.csv).unwrap() == want, "the resumed run differs from an uninterrupted one");
    assert!(!s.b.partial.exists() && !s.b.checkpoint.exists());
}

/// No checkpoint: nothing to resume, and nothing is started. With a `.partial`
/// but no checkpoint the `.partial` is left as it is.
#[test]
fn resume_without_a_checkpoint_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.csv");
    let b = Block::new(tmp.path(), "x", "rows-0-50000");
    let res = run_cmd(&out, "cpu", LIMIT).arg("--resume").output().unwrap();
    let err = refusal(&res);
    assert!(err.starts_with(&format!("error: nothing to resume: cannot read the checkpoint {}: ", b.checkpoint.display())), "{err}");
    assert!(err.contains("No such file"), "{err}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "a refused resume wrote {left:?}");

    let s = Stopped::new();
    std::fs::remove_file(&s.b.checkpoint).unwrap();
    let err = refusal(&s.resume("cpu", LIMIT));
    assert!(err.starts_with(&format!("error: nothing to resume: cannot read the checkpoint {}: ", s.b.checkpoint.display())), "{err}");
    assert!(std::fs::read(&s.b.partial).unwrap() == s.partial && !s.b.checkpoint.exists());
}

/// A `.partial` cut shorter than the bytes its checkpoint vouches for.
#[test]
fn resume_refuses_a_partial_shorter_than_its_checkpoint() {
    let s = Stopped::new();
    let cp: serde_json::Value = serde_json::from_slice(&s.checkpoint).unwrap();
    let bytes = cp["bytes"].as_u64().unwrap();
    let short = &s.partial[..bytes as usize - 10];
    std::fs::write(&s.b.partial, short).unwrap();
    let err = refusal(&s.resume("cpu", LIMIT));
    let want =
        format!("error: cannot resume {}: it is shorter than the {bytes} bytes its checkpoint records{START_OVER}", s.b.partial.display());
    assert_eq!(err, want);
    s.assert_left_as(short, &s.checkpoint);
}
