//! The `moatsweep` binary: parse flags, run, turn errors into exit codes.

use std::process::ExitCode;

use clap::Parser;

use moatsweep::InputError;
use moatsweep::cli::Cli;
use moatsweep::commands::dispatch;
use moatsweep::config::ConfigError;

fn main() -> ExitCode {
    // Mesa's Vulkan device-select layer looks for a display to order devices by and
    // prints "XDG_RUNTIME_DIR is invalid" on headless machines; moatsweep picks its
    // adapter itself, so the layer is switched off unless the user set it.
    #[cfg(target_os = "linux")]
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: first thing in main, before any thread exists.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`moatsweep scenario ... | head`) is not an error.
            if err.chain().any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            if moatsweep::interrupt::is_interrupt(&err) {
                eprintln!("stopped: {err}");
                return ExitCode::from(130);
            }
            // One line, whatever a quoted value held (a newline, NUL, a right-to-left override).
            eprintln!("error: {}", moatsweep::config::error::escape(&format!("{err:#}")));
            if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<InputError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
