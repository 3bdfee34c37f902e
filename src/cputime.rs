//! CPU time of the host's side of a run, for `moatsweep bench`: the calling
//! thread, every thread of rayon's global pool, and the output writer threads
//! that have finished (each adds its own time when it ends). The GPU driver's
//! threads (lavapipe's shader threads, for one) are not among them; the process's
//! total, which includes them, is [`process_seconds`].

use std::sync::atomic::{AtomicU64, Ordering};

/// CPU nanoseconds of writer threads that have ended.
static ENDED_NS: AtomicU64 = AtomicU64::new(0);

/// This thread's CPU time in seconds (None where the platform has no per-thread clock).
pub fn thread_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: clock_gettime writes one timespec through a valid pointer.
        let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (r == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Called by a helper thread (the output writer) as it ends: its CPU time counts
/// in [`host_seconds`] from then on.
pub fn thread_ending() {
    if let Some(s) = thread_seconds() {
        ENDED_NS.fetch_add((s * 1e9) as u64, Ordering::Relaxed);
    }
}

/// The host's CPU time so far: this thread, rayon's global pool, ended writer threads.
pub fn host_seconds() -> Option<f64> {
    let pool: Option<f64> = rayon::broadcast(|_| thread_seconds()).into_iter().sum();
    Some(thread_seconds()? + pool? + ENDED_NS.load(Ordering::Relaxed) as f64 * 1e-9)
}

/// The whole process's CPU time (user and system), every thread included.
pub fn process_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: getrusage writes one rusage through a valid pointer.
        let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
        (r == 0).then_some(tv(ru.ru_utime) + tv(ru.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}
