//! moatsweep: sweep scenarios of the moat model (`../shared/MODEL.md`) on CPU or GPU.

pub mod backend;
pub mod model;
