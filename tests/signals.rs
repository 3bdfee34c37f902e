#![cfg(unix)]
//! Real signals to the real binary: SIGINT, SIGTERM and SIGHUP stop a run at a
//! chunk boundary with exit status 130 and a resume hint, on the CPU and on the GPU
//! backend (lavapipe will do), a second signal stops it at once, and either way
//! `--resume` gives the bytes of an uninterrupted run. The Slurm example script
//! resumes a requeued task instead of starting over.

mod common;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use support::{Block, Running, assert_checkpoint_consistent, bin, checkpoint_row, moatsweep, root, wait_for};

const CONFIG: &str = "configs/release-timing-lhs.toml";
const ROWS: &str = "0..100000";
const CHUNK: u64 = 1000;

/// The uninterrupted run of ROWS on `backend` ("cpu" or "gpu"), computed once per
/// backend for this file's tests.
fn reference(backend: &str) -> &'static [u8] {
    static CPU: OnceLock<Vec<u8>> = OnceLock::new();
    static GPU: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if backend == "gpu" { &GPU } else { &CPU };
    cell.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let st = moatsweep()
            .args(["run", "--quiet", CONFIG, "--backend", backend, "--verify", "0", "--rows", ROWS, "--out"])
            .arg(tmp.path().join("r.csv"))
            .status();
        assert!(st.unwrap().success());
        std::fs::read(tmp.path().join("r.rows-0-100000.csv")).unwrap()
    })
}

fn run_cmd(backend: &str, out: &Path, chunk: u64) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(root()).args(["run", "--quiet", CONFIG, "--backend", backend, "--verify", "0", "--rows", ROWS]);
    c.args(["--chunk-rows", &chunk.to_string(), "--out"]).arg(out);
    c
}

/// Runs the command line the hint printed (`continue with:` and the next line).
fn run_hint(stderr: &str) {
    let line = stderr.lines().skip_while(|l| !l.ends_with("continue with:")).nth(1).unwrap_or_else(|| panic!("no resume hint: {stderr}"));
    let args: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(args.last(), Some(&"--resume"), "{line}");
    assert_eq!(args[0], bin(), "the hint repeats the command line: {line}");
    let res = Command::new(args[0]).current_dir(root()).args(&args[1..]).output().unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
}

/// One signal: the run on `backend` finishes the chunk in hand, records it, and stops.
fn stop_with(backend: &str, signal: i32, name: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.csv");
    let b = Block::new(tmp.path(), "x", "rows-0-100000");
    let mut run = Running::spawn(run_cmd(backend, &out, CHUNK));
    wait_for("a checkpoint at row 3000", || checkpoint_row(&b.checkpoint).is_some_and(|n| n >= 3000) || run.exited());
    assert!(!run.exited(), "the run ended before the signal: {}", run.stderr());
    run.signal(signal);
    let (status, stderr) = run.wait();
    assert_eq!(status.code(), Some(130), "{name}: {stderr}");
    assert!(stderr.contains("stopping once the chunk in hand is on disk"), "{stderr}");
    assert!(!stderr.contains("stopped at once"), "{stderr}");
    let stopped: u64 =
        stderr.lines().find_map(|l| l.strip_prefix("stopped: interrupted at row ")).unwrap_or_else(|| panic!("{stderr}")).parse().unwrap();
    // At a chunk boundary: a whole number of chunks, all of them in the file and
    // vouched for by the checkpoint, and nothing after them.
    assert_eq!(stopped % CHUNK, 0, "{stderr}");
    assert!(stopped > 0 && stopped < 100000);
    let (next, len) = assert_checkpoint_consistent(&b.checkpoint, &b.partial, 0);
    assert_eq!(next, stopped);
    assert_eq!(std::fs::metadata(&b.partial).unwrap().len(), len, "bytes past the last chunk");
    assert!(stderr.contains(&format!("rows 0..{stopped} of 0..100000 are in {}; continue with:", b.partial.display())), "{stderr}");

    run_hint(&stderr);
    assert!(std::fs::read(&b.csv).unwrap() == reference(backend), "{name} then --resume on {backend} differs from an uninterrupted run");
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&b.manifest).unwrap()).unwrap();
    assert_eq!(m["resumed_at_row"], stopped);
    assert_eq!(m["backend"]["kind"], backend);
}

#[test]
fn sigint_stops_at_a_chunk_boundary_and_resume_finishes() {
    stop_with("cpu", libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_behaves_like_the_first_ctrl_c() {
    stop_with("cpu", libc::SIGTERM, "SIGTERM");
}

/// SIGHUP (the terminal closed) stops the run as SIGTERM does.
#[test]
fn sighup_behaves_like_the_first_ctrl_c() {
    stop_with("cpu", libc::SIGHUP, "SIGHUP");
}

/// The GPU run stops at a chunk boundary too: the chunks in flight on the device
/// are written and checkpointed before it stops.
#[test]
fn signals_stop_a_gpu_run_at_a_chunk_boundary_and_resume_finishes() {
    if !common::have_gpu() {
        return;
    }
    stop_with("gpu", libc::SIGINT, "SIGINT");
    stop_with("gpu", libc::SIGHUP, "SIGHUP");
}

/// A second Ctrl-C does not wait for the chunk: the whole run is one chunk here,
/// so only the second signal can end it before it is done.
#[test]
fn a_second_ctrl_c_stops_at_once_and_resume_still_works() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("x.csv");
    let b = Block::new(tmp.path(), "x", "rows-0-100000");
    let mut run = Running::spawn(run_cmd("cpu", &out, 100_000));
    // The first checkpoint (before any row) is written once the handler is in place.
    wait_for("the first checkpoint", || checkpoint_row(&b.checkpoint).is_some() || run.exited());
    run.signal(libc::SIGINT);
    wait_for("the first signal's note", || run.stderr().contains("stopping once the chunk in hand is on disk") || run.exited());
    run.signal(libc::SIGINT);
    let (status, stderr) = run.wait();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("stopped at once; continue with --resume"), "{stderr}");
    assert!(!stderr.contains("stopped: interrupted at row"), "the run finished its only chunk before the second signal: {stderr}");
    assert_eq!(assert_checkpoint_consistent(&b.checkpoint, &b.partial, 0).0, 0);

    let res = run_cmd("cpu", &out, 100_000).arg("--resume").output().unwrap();
    assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
    assert!(std::fs::read(&b.csv).unwrap() == reference("cpu"), "resume after a second Ctrl-C differs from an uninterrupted run");
}

/// examples/slurm/sweep.sbatch as Slurm would run an array task, with a stub
/// `sbatch` that records the merge it is asked to submit.
struct Script {
    tmp: tempfile::TempDir,
    config: PathBuf,
    out: PathBuf,
}

impl Script {
    fn new(samples: u64) -> Script {
        let tmp = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(root().join(CONFIG)).unwrap();
        let config = tmp.path().join("sweep.toml");
        let edited = text.lines().map(|l| if l.starts_with("samples") { format!("samples = {samples}") } else { l.to_string() });
        std::fs::write(&config, edited.collect::<Vec<_>>().join("\n")).unwrap();
        std::fs::create_dir(tmp.path().join("bin")).unwrap();
        let stub = tmp.path().join("bin/sbatch");
        std::fs::write(&stub, format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> {}\n", tmp.path().join("sbatch.calls").display())).unwrap();
        std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let out = tmp.path().join("out/sweep.csv");
        Script { tmp, config, out }
    }

    /// The script as array task `id` of 0..count, attempt `restart` (SLURM_RESTART_COUNT).
    fn command(&self, id: u64, count: u64, restart: u64) -> Command {
        let mut c = Command::new("bash");
        c.current_dir(self.tmp.path()).arg(root().join("examples/slurm/sweep.sbatch")).arg(&self.config).arg(&self.out);
        let path = format!("{}:{}", self.tmp.path().join("bin").display(), std::env::var("PATH").unwrap_or_default());
        c.env("PATH", path).env("MOATSWEEP", bin()).env("SLURM_ARRAY_JOB_ID", "77");
        c.env("SLURM_ARRAY_TASK_ID", id.to_string()).env("SLURM_ARRAY_TASK_MIN", "0").env("SLURM_ARRAY_TASK_COUNT", count.to_string());
        if restart > 0 {
            c.env("SLURM_RESTART_COUNT", restart.to_string());
        } else {
            c.env_remove("SLURM_RESTART_COUNT");
        }
        c
    }

    fn sbatch_calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.tmp.path().join("sbatch.calls")).map(|s| s.lines().map(str::to_string).collect()).unwrap_or_default()
    }

    fn shard(&self, i: u64, n: u64) -> Block {
        Block::new(&self.tmp.path().join("out"), "sweep", &format!("shard-{i}-of-{n}"))
    }
}

/// The pid of `parent`'s child process, from /proc.
fn child_of(parent: u32) -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok()).find(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            // Fields after the command's closing parenthesis: state, then ppid.
            .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_string)))
            .is_some_and(|ppid| ppid == parent.to_string())
    })
}

/// A task stopped by SIGTERM (as at a time limit or on preemption) and run again
/// resumes from its checkpoint and writes the shard an uninterrupted run writes.
#[test]
fn the_sbatch_script_resumes_a_requeued_task() {
    let s = Script::new(400_000);
    let b = s.shard(1, 2);
    let mut first = Running::spawn(s.command(1, 2, 0));
    wait_for("task 1's first checkpoint past its first row", || {
        checkpoint_row(&b.checkpoint).is_some_and(|n| n > 200_000) || first.exited()
    });
    assert!(!first.exited(), "the task ended before the signal: {}", first.stderr());
    let pid = child_of(first.child.id()).expect("moatsweep runs as the script's child");
    // SAFETY: kill(2) on the moatsweep process the script started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (status, stderr) = first.wait();
    assert_eq!(status.code(), Some(130), "the task fails with moatsweep's status: {stderr}");
    let (stopped, _) = assert_checkpoint_consistent(&b.checkpoint, &b.partial, 200_000);
    assert!(stopped < 400_000);
    assert!(s.sbatch_calls().is_empty(), "only the first task submits the merge");

    let second = s.command(1, 2, 1).output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(String::from_utf8_lossy(&second.stdout).contains("resuming"));
    let m: serde_json::Value = serde_json::from_slice(&std::fs::read(&b.manifest).unwrap()).unwrap();
    assert_eq!(m["resumed_at_row"], stopped, "the requeued task continued instead of starting over");

    let direct = s.tmp.path().join("direct.csv");
    let st = moatsweep().args(["run", "--quiet", "--backend", "cpu", "--shard", "1/2"]).arg(&s.config).arg("--out").arg(&direct).status();
    assert!(st.unwrap().success());
    let want = std::fs::read(s.tmp.path().join("direct.shard-1-of-2.csv")).unwrap();
    assert!(std::fs::read(&b.csv).unwrap() == want, "the requeued shard differs from an uninterrupted run of it");
}

/// The first task submits the merge once, on its first attempt, and a first
/// attempt (no checkpoint) runs without --resume.
#[test]
fn the_sbatch_script_submits_the_merge_once() {
    let s = Script::new(3000);
    for restart in [0, 1] {
        let res = s.command(0, 2, restart).output().unwrap();
        assert!(res.status.success(), "attempt {restart}: {}", String::from_utf8_lossy(&res.stderr));
        assert!(!String::from_utf8_lossy(&res.stdout).contains("resuming"), "nothing to resume on attempt {restart}");
        assert!(s.shard(0, 2).csv.exists());
    }
    let calls = s.sbatch_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    let stem = s.out.display().to_string().trim_end_matches(".csv").to_string();
    assert!(calls[0].contains("--dependency=afterok:77"), "{}", calls[0]);
    assert!(calls[0].contains(&format!("merge \"{}\"  {stem}.shard-0-of-2.csv {stem}.shard-1-of-2.csv", s.out.display())), "{}", calls[0]);
}
