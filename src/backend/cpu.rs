//! The CPU backend: the f64 reference, parallel over scenarios with rayon.
//!
//! Each row is solved independently, so the output does not depend on the thread
//! count or the chunk size.

use std::ops::Range;

use rayon::prelude::*;

use super::{Backend, BackendInfo, BackendKind, ChunkSink, Outcomes, Precision, ScenarioSource};
use crate::model::{self, NoTrace, scaling::TrainCache};

/// Rows per chunk handed to the sink: large enough to keep threads busy, small
/// enough to bound memory and keep progress moving.
pub const DEFAULT_CHUNK_ROWS: u64 = 1 << 14;

pub struct CpuBackend {
    pub chunk_rows: u64,
}

impl Default for CpuBackend {
    fn default() -> Self {
        CpuBackend { chunk_rows: DEFAULT_CHUNK_ROWS }
    }
}

impl Backend for CpuBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo { kind: BackendKind::Cpu, precision: Precision::F64, threads: rayon::current_num_threads(), adapter: None }
    }

    fn run(&mut self, src: &dyn ScenarioSource, rows: Range<u64>, sink: &mut dyn ChunkSink) -> anyhow::Result<()> {
        let mut start = rows.start;
        while start < rows.end {
            let end = rows.end.min(start + self.chunk_rows.max(1));
            let mut out = Vec::new();
            (0..(end - start) as usize)
                .into_par_iter()
                .map_init(TrainCache::default, |cache, k| model::solve_with(&src.scenario(start + k as u64), &mut NoTrace, cache))
                .collect_into_vec(&mut out);
            sink.push(start, Outcomes::F64(out))?;
            start = end;
        }
        Ok(())
    }
}
