//! moatsweep: sweep scenarios of the moat model (`../shared/MODEL.md`) on CPU or GPU.
//!
//! The data's way: [`config`] (TOML) -> [`sweep::Plan`] -> [`backend`] (CPU
//! reference in [`model`], or the WGSL kernel) -> [`output`] (CSV + manifest).

pub mod analysis;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod config;
pub mod design;
pub mod gpu;
pub mod inspect;
pub mod merge;
pub mod model;
pub mod output;
pub mod run;
pub mod sweep;
pub mod verify;

/// A problem with what the user asked for that is not inside a config file
/// (an output path that cannot be written, a bad flag value): exit status 2.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}
