//! A GPU device lost in the middle of a run (a driver reset after a watchdog, a
//! crashed or removed GPU) ends the run cleanly: exit status 1, one message naming
//! the adapter, what happened and the command that continues, no panic, and the
//! `.partial` and checkpoint kept, so that `run --resume` finishes to the bytes of
//! an uninterrupted run. The loss is provoked on lavapipe by the hidden test hook
//! `MOATSWEEP_TEST_DEVICE_LOSS=N` (src/testhook.rs), which destroys the device
//! (`wgpu::Device::destroy`) right before the N-th chunk is submitted, or makes
//! the chunk buffers too large for the device (`=alloc`). Skips
//! without an adapter unless MOATSWEEP_REQUIRE_GPU=1.

mod common;
mod support;

use std::path::Path;
use std::process::Output;

use support::moatsweep;

/// 8 x 30 x 50 = 12,000 rows: the first chunk (4,096 rows at 36 months) is solved
/// alone, so a loss before chunk 2 leaves it checkpointed.
const ROWS: &str = r#"version = 1
[sweep]
name = "loss-rows"
design = "grid"
[model]
months = 36
[[firm]]
name = "open"
[[firm]]
name = "frontier_a"
[[firm]]
name = "challenger"
train_spend = 5e8
[axes]
"firm.open.release_month" = { values = [0, 3, 6, 9, 12, 18, 24, "never"] }
"firm.challenger.funding" = { logspace = [3e7, 1e9], steps = 30 }
"model.ad_uplift" = { logspace = [1e-2, 4e-2], steps = 50 }
"#;

/// tests/configs/strategy-map-small.toml with 25 open train_spend steps: 16,000
/// rows, four reduction blocks of 4,096.
const REDUCED: &str = r#"version = 1
[sweep]
name = "loss-reduced"
design = "grid"
[model]
months = 36
[axes]
"firm.open.release_month" = { values = [0, 3, 6, 9, 12, 18, 24, "never"] }
"model.ad_uplift" = { logspace = [1e-2, 4e-2], steps = 5 }
"firm.challenger.funding" = { logspace = [3e7, 3e9], steps = 4 }
"firm.challenger.train_spend" = { logspace = [1e8, 2e9], steps = 4 }
"firm.open.train_spend" = { logspace = [2e8, 5e9], steps = 25 }
[reduce]
by = ["model.ad_uplift", "firm.challenger.funding"]
outputs = ["npv.open", "share.open", "npv.challenger", "exited.challenger"]
stats = ["mean", "std", "min", "max", "count"]
[reduce.best]
axis = "firm.open.release_month"
maximize = "npv.open"
reference = "never"
"#;

fn run(config: &Path, out: &Path, extra: &[&str], loss: Option<&str>) -> Output {
    let mut cmd = moatsweep();
    cmd.args(["run", "--quiet", "--backend", "gpu", "--verify", "0"]).arg(config).arg("--out").arg(out).args(extra);
    cmd.env_remove("MOATSWEEP_TEST_DEVICE_LOSS");
    if let Some(n) = loss {
        cmd.env("MOATSWEEP_TEST_DEVICE_LOSS", n);
    }
    cmd.output().unwrap()
}

/// Loses the device before chunk 2 of a run of `config` into `out` (whose main
/// output is `main`), checks how it ended, resumes it and compares `compare` (paths
/// relative to the two runs' outputs) with an uninterrupted run's.
fn lose_and_resume(config_text: &str, main: &str, compare: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("sweep.toml");
    std::fs::write(&config, config_text).unwrap();
    let lost_dir = tmp.path().join("lost");
    let whole_dir = tmp.path().join("whole");
    std::fs::create_dir_all(&lost_dir).unwrap();
    std::fs::create_dir_all(&whole_dir).unwrap();

    let out = run(&config, &lost_dir.join("sweep.csv"), &[], Some("2"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
    assert!(stderr.starts_with("error: the GPU device of adapter \""), "{stderr}");
    assert!(stderr.contains("\" was destroyed; rows 0.."), "{stderr}");
    assert!(stderr.trim_end().ends_with(" --resume` continues the run"), "{stderr}");
    let main_path = lost_dir.join(main);
    assert!(!main_path.exists(), "no complete-looking output after the loss");
    let partial = lost_dir.join(format!("{main}.partial"));
    let checkpoint = lost_dir.join(format!("{main}.partial.checkpoint"));
    assert!(checkpoint.exists(), "the checkpoint is kept: {stderr}");
    assert!(stderr.contains(&format!(" are in {}", if partial.exists() { partial.display() } else { checkpoint.display() })), "{stderr}");

    let resumed = run(&config, &lost_dir.join("sweep.csv"), &["--resume"], None);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    let whole = run(&config, &whole_dir.join("sweep.csv"), &[], None);
    assert!(whole.status.success(), "{}", String::from_utf8_lossy(&whole.stderr));
    for f in compare {
        let (a, b) = (std::fs::read(lost_dir.join(f)).unwrap(), std::fs::read(whole_dir.join(f)).unwrap());
        assert!(a == b, "{f}: the resumed run's bytes differ from an uninterrupted run's");
    }
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(lost_dir.join(format!("{main}.manifest.json"))).unwrap()).unwrap();
    assert!(m["resumed_at_row"].as_u64().is_some_and(|r| r > 0), "{m}");
}

#[test]
fn a_lost_device_ends_a_rows_run_that_resumes_to_the_same_bytes() {
    if !common::have_gpu() {
        return;
    }
    lose_and_resume(ROWS, "sweep.csv", &["sweep.csv"]);
}

#[test]
fn a_lost_device_ends_a_reduced_run_that_resumes_to_the_same_bytes() {
    if !common::have_gpu() {
        return;
    }
    lose_and_resume(REDUCED, "sweep.reduced.csv", &["sweep.reduced.csv", "sweep.reduced.state"]);
}

/// Chunk buffers the device refuses (`MOATSWEEP_TEST_DEVICE_LOSS=alloc` asks for
/// one beyond its `max_buffer_size`) end the run the same way, before any row:
/// one message naming the adapter and the allocation, nothing left behind.
#[test]
fn an_allocation_the_device_refuses_ends_the_run_with_one_message() {
    if !common::have_gpu() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("sweep.toml");
    std::fs::write(&config, ROWS).unwrap();
    let out = run(&config, &tmp.path().join("sweep.csv"), &[], Some("alloc"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one message: {stderr}");
    assert!(stderr.starts_with("error: the GPU device of adapter \""), "{stderr}");
    assert!(stderr.contains("\" could not allocate 2 sets of buffers for chunks of "), "{stderr}");
    assert!(stderr.contains("greater than the maximum buffer size"), "{stderr}");
    assert!(stderr.trim_end().ends_with("no rows were completed, so nothing was kept: run it again"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n != "sweep.toml").collect();
    assert!(left.is_empty(), "{left:?}");
}
