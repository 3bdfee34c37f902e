//! moatsweep: sweep scenarios of the moat model (docs/model.md, version 3) on CPU or GPU.
//!
//! The data's way: [`config`] (TOML) -> [`sweep::Plan`] -> [`backend`] (CPU
//! reference in [`model`], or the WGSL kernel) -> [`output`] (CSV + manifest).

pub mod analysis;
pub mod backend;
pub mod calibrate;
pub mod cli;
pub mod commands;
pub mod config;
pub mod cputime;
pub mod design;
pub mod detmath;
pub mod engine;
pub mod gpu;
pub mod interrupt;
pub mod model;
pub mod output;
pub mod reduce;
pub mod sweep;
pub mod testhook;
pub mod verify;

/// A problem with what the user asked for that is not inside a config file
/// (an output path that cannot be written, a bad flag value): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);
