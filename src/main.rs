//! The `moatsweep` binary: parse flags, run, turn errors into exit codes.

use std::process::ExitCode;

use clap::Parser;

use moatsweep::InputError;
use moatsweep::cli::{Cli, dispatch};
use moatsweep::config::ConfigError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (`moatsweep scenario ... | head`) is not an error.
            if err.chain().any(|e| e.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)) {
                return ExitCode::SUCCESS;
            }
            if moatsweep::run::is_interrupt(&err) {
                eprintln!("stopped: {err}");
                return ExitCode::from(130);
            }
            eprintln!("error: {err:#}");
            if err.downcast_ref::<ConfigError>().is_some() || err.downcast_ref::<InputError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
