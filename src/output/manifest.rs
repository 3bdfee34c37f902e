//! `<csv>.manifest.json`: how a CSV was made, so that it can be reproduced.

use std::time::SystemTime;

use serde::Serialize;

use crate::backend::BackendInfo;

/// Everything recorded beside a sweep's CSV.
#[derive(Serialize)]
pub struct Manifest {
    pub moatsweep_version: &'static str,
    /// The model specification the numbers follow.
    pub model: &'static str,
    pub command: Vec<String>,
    pub config_path: String,
    pub config_sha256: String,
    /// The config as resolved: every default filled in.
    pub config: serde_json::Value,
    pub backend: BackendInfo,
    pub output: String,
    pub columns: Vec<String>,
    /// Rows in the whole sweep.
    pub scenarios: u64,
    /// Rows [start, end) that this file holds.
    pub rows: [u64; 2],
    pub rows_written: u64,
    /// Rows with at least one month whose markup iteration hit max_iter.
    pub nonconverged_scenarios: u64,
    /// Set when the run was resumed from a checkpoint at this row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_at_row: Option<u64>,
    /// `--verify`: GPU rows re-solved on the f64 reference, deviations per column.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::verify::Report>,
    /// Total GPU kernel time (timestamp queries), where the adapter has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_time_s: Option<f64>,
    pub wall_time_s: f64,
    pub started_at: String,
    pub finished_at: String,
}

/// RFC 3339 UTC timestamp, to the second.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
