//! Hidden hooks for the crash tests (`tests/crash.rs`) and the non-finite output
//! tests (`tests/nonfinite.rs`), read once from the
//! environment. Unset, as for every user, they change nothing.
//!
//! - `MOATSWEEP_TEST_ABORT=checkpoint:N`: the process aborts (as `kill -9` would:
//!   no cleanup, no destructors) right after the N-th checkpoint it writes is on
//!   disk (a fresh run's first is the empty start).
//! - `MOATSWEEP_TEST_ABORT=closing`: it aborts once half of a rows file's closing
//!   bytes (Parquet's footer) are on disk.
//! - `MOATSWEEP_TEST_ROW_GROUP_ROWS=R`: Parquet row groups of R rows instead of
//!   the default (131,072), so that a small sweep has several.
//! - `MOATSWEEP_TEST_NONFINITE=ROW:COLUMN[:VALUE];...`: an output value made NaN
//!   or infinite before it is written or reduced ([`nonfinite_outputs`]).
//! - `MOATSWEEP_TEST_DEVICE_LOSS=N`: the GPU backend destroys its device
//!   (`wgpu::Device::destroy`, as a driver reset would lose it) right before it
//!   submits the N-th chunk of the process (from 1) ([`lose_device_now`]);
//!   `MOATSWEEP_TEST_DEVICE_LOSS=alloc`: its chunk buffers ask for more than the
//!   device's largest buffer, so that their allocation fails ([`oversize_buffers`]).
//!
//! So a kill lands at a chosen point of a run deterministically, not by racing a
//! `sleep`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

enum Abort {
    Never,
    AtCheckpoint(u64),
    Closing,
}

fn abort_hook() -> &'static Abort {
    static HOOK: OnceLock<Abort> = OnceLock::new();
    HOOK.get_or_init(|| match std::env::var("MOATSWEEP_TEST_ABORT").ok().as_deref() {
        Some("closing") => Abort::Closing,
        Some(s) => match s.strip_prefix("checkpoint:").and_then(|n| n.parse().ok()) {
            Some(n) => Abort::AtCheckpoint(n),
            None => Abort::Never,
        },
        None => Abort::Never,
    })
}

/// Called after each checkpoint reached the disk.
pub fn checkpoint_written() {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    if let Abort::AtCheckpoint(n) = abort_hook()
        && COUNT.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        eprintln!("test hook: aborting after checkpoint {n}");
        std::process::abort();
    }
}

/// Whether to stop halfway through a file's closing bytes.
pub fn abort_while_closing() -> bool {
    matches!(abort_hook(), Abort::Closing)
}

/// Rows per Parquet row group: `default`, unless the hook sets it.
pub fn row_group_rows(default: u64) -> u64 {
    static ROWS: OnceLock<u64> = OnceLock::new();
    *ROWS.get_or_init(|| {
        std::env::var("MOATSWEEP_TEST_ROW_GROUP_ROWS").ok().and_then(|s| s.parse().ok()).filter(|&r| r > 0).unwrap_or(default)
    })
}

/// `MOATSWEEP_TEST_NONFINITE=ROW:COLUMN[:VALUE][;ROW:COLUMN[:VALUE]...]`: the solved
/// value of output COLUMN (named as in the CSV header, e.g. `npv.open` or `hhi`) in
/// row (reduction position) ROW becomes VALUE (`nan`, the default, `inf` or `-inf`)
/// before the run writes or reduces it, on either backend. The parameter ranges
/// keep the model finite, so this is how the tests (`tests/nonfinite.rs`) make a
/// non-finite output occur. Entries that do not parse are ignored.
pub fn nonfinite_outputs() -> &'static [(u64, String, f64)] {
    static POISON: OnceLock<Vec<(u64, String, f64)>> = OnceLock::new();
    POISON.get_or_init(|| {
        let spec = std::env::var("MOATSWEEP_TEST_NONFINITE").unwrap_or_default();
        spec.split(';')
            .filter_map(|e| {
                let mut parts = e.trim().splitn(3, ':');
                let row = parts.next()?.parse().ok()?;
                let column = parts.next()?.to_string();
                let value = match parts.next() {
                    None | Some("nan") => f64::NAN,
                    Some("inf") => f64::INFINITY,
                    Some("-inf") => f64::NEG_INFINITY,
                    Some(_) => return None,
                };
                Some((row, column, value))
            })
            .collect()
    })
}

/// Called by the GPU backend before each chunk's submission: whether
/// `MOATSWEEP_TEST_DEVICE_LOSS=N` asks for the device to be lost now (the N-th
/// submission of the process, counted from 1).
pub fn lose_device_now() -> bool {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let Some(n) = device_loss().as_deref().and_then(|s| s.parse::<u64>().ok()) else {
        return false;
    };
    COUNT.fetch_add(1, Ordering::SeqCst) + 1 == n
}

/// Whether `MOATSWEEP_TEST_DEVICE_LOSS=alloc` asks for chunk buffers beyond the
/// device's largest buffer.
pub fn oversize_buffers() -> bool {
    device_loss().as_deref() == Some("alloc")
}

fn device_loss() -> &'static Option<String> {
    static HOOK: OnceLock<Option<String>> = OnceLock::new();
    HOOK.get_or_init(|| std::env::var("MOATSWEEP_TEST_DEVICE_LOSS").ok().map(|s| s.trim().to_string()))
}
