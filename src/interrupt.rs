//! Stopping a run cleanly: the first SIGINT (Ctrl-C), SIGTERM (what Slurm sends
//! at a time limit or on preemption) or SIGHUP asks the run to stop once the chunk
//! in hand has reached the disk; a second one stops the process at once. Either
//! way the checkpoint describes what is on disk, so `run --resume` continues.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once per process; later calls do nothing).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::Relaxed) {
            eprintln!("\nstopped at once; continue with --resume");
            std::process::exit(130);
        }
        eprintln!("\nstopping once the chunk in hand is on disk (signal again to stop at once)");
    });
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// The run stopped at a chunk boundary because a signal asked it to (exit status 130).
#[derive(Debug, thiserror::Error)]
#[error("interrupted at row {next_row}")]
pub struct Interrupted {
    pub next_row: u64,
}

/// Whether an error is such a stop.
pub fn is_interrupt(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Interrupted>().is_some()
}
