//! The progress line on stderr: rows done, rate and ETA. It appears only when a
//! run lasts longer than a moment, and never with `--quiet` or when stderr is not
//! a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A run shorter than this shows no progress line.
const SHOW_AFTER: Duration = Duration::from_millis(500);

pub struct Progress {
    bar: ProgressBar,
    enabled: bool,
    shown: AtomicBool,
    start: Instant,
}

impl Progress {
    /// A progress line over `total` rows labelled `label`; `quiet` silences it.
    pub fn new(total: u64, label: &str, quiet: bool) -> Progress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {human_pos}/{human_len} rows  {per_sec}  ETA {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Progress { bar, enabled: !quiet && std::io::stderr().is_terminal(), shown: AtomicBool::new(false), start: Instant::now() }
    }

    /// A progress line that never shows (tests, benchmarks).
    pub fn hidden() -> Progress {
        Progress::new(0, "", true)
    }

    pub fn advance(&self, rows: u64) {
        self.bar.inc(rows);
        if self.enabled && !self.shown.load(Ordering::Relaxed) && self.start.elapsed() >= SHOW_AFTER {
            self.shown.store(true, Ordering::Relaxed);
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }

    pub fn finish(&self) {
        if self.shown.load(Ordering::Relaxed) {
            self.bar.finish_and_clear();
        }
    }
}
