//! `<csv>.manifest.json`: how a CSV was made, so that it can be reproduced, and
//! the SHA-256 of its bytes, so that it can be checked (`moatsweep check`, `merge`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::nonfinite::NonFinite;
use crate::backend::BackendInfo;
use crate::sweep::provenance::{ReduceSpec, ResolvedConfig, VerifyReport};

/// The model specification the numbers follow, recorded in manifests and checkpoints.
pub const MODEL: &str = crate::model::SPEC;

/// The largest manifest read (256 MiB; a list design's manifest grows with its list).
pub const MAX_MANIFEST_BYTES: u64 = 256 << 20;

/// Everything recorded beside a sweep's CSV. Fields added later are optional, so
/// that older manifests still read.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub moatsweep_version: String,
    /// The model specification the numbers follow.
    pub model: String,
    pub command: Vec<String>,
    pub config_path: String,
    pub config_sha256: String,
    /// The config as resolved: every default filled in.
    pub config: ResolvedConfig,
    pub backend: BackendInfo,
    pub output: String,
    /// `parquet` for a Parquet file (absent: CSV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<super::OutputFormat>,
    /// SHA-256 of the CSV's bytes, hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The CSV's length in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    pub columns: Vec<String>,
    /// Rows in the whole sweep.
    pub scenarios: u64,
    /// Rows [start, end) that this file holds.
    pub rows: [u64; 2],
    pub rows_written: u64,
    /// Rows with at least one month whose markup iteration hit max_iter.
    pub nonconverged_scenarios: u64,
    /// Non-finite values (NaN or an infinity; an empty cell is none) per column:
    /// column -> rows holding one (a reduced CSV: per reduced output, among the
    /// values reduced). Absent when there are none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonfinite: Option<BTreeMap<String, u64>>,
    /// The first row (a reduced CSV: position) holding a non-finite value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_nonfinite_row: Option<u64>,
    /// Set when the run was resumed from a checkpoint at this row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_at_row: Option<u64>,
    /// `merge`: the files joined into this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_from: Option<Vec<MergedFrom>>,
    /// `--verify`: GPU rows re-solved on the f64 reference, deviations per column
    /// (the report of `crate::verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifyReport>,
    /// Total GPU kernel time (timestamp queries), where the adapter has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_time_s: Option<f64>,
    /// A GPU run: where its scenarios were made, `host` (packed and uploaded) or
    /// `device` (from the plan, `run --expand`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand: Option<crate::backend::Expand>,
    /// A GPU run: bytes written to the device (parameters, reduce tables,
    /// uniforms) by this run (a resumed run: since it resumed). Absent for a CPU run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uploaded_bytes: Option<u64>,
    /// A GPU run: bytes copied back from the device (rows, reduce partials, timestamps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_back_bytes: Option<u64>,
    /// A GPU run: the longest time one submission took, from its submission (or the
    /// previous one's completion) to its completion as the host saw it, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_dispatch_s: Option<f64>,
    /// A GPU run: the time budget chunks were sized for (`--dispatch-budget`);
    /// absent when `--chunk-rows` fixed them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_budget_s: Option<f64>,
    pub wall_time_s: f64,
    pub started_at: String,
    pub finished_at: String,
    /// A reduced CSV (`[reduce]`): what was reduced, and the state that `merge` adds up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce: Option<ReducedManifest>,
}

/// What a reduced CSV's manifest adds: its `rows` are the positions reduced and
/// `rows_written` their count; the file holds one line per group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReducedManifest {
    /// The `[reduce]` section as resolved.
    pub spec: ReduceSpec,
    /// Lines of the reduced CSV after its header.
    pub groups: u64,
    /// The reduction's exact state (`<stem>.reduced.state`), beside the CSV.
    pub state: String,
    pub state_sha256: String,
    /// The rows file of `rows = true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_output: Option<String>,
}

/// One input of a merged file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MergedFrom {
    pub path: String,
    pub rows: [u64; 2],
    pub backend: BackendInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Manifest {
    /// Reads a manifest; the error says what is wrong (unreadable, not JSON, a field
    /// missing or of the wrong type) without naming the file.
    pub fn read(path: &Path) -> Result<Manifest, String> {
        use std::io::Read;
        // A regular file of a checked size: /dev/zero or a FIFO would never end.
        let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
        if !meta.is_file() {
            return Err("not a regular file".to_string());
        }
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(format!("{} bytes, more than the limit of {MAX_MANIFEST_BYTES} bytes for a manifest", meta.len()));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        file.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
        if bytes.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(format!("more than the limit of {MAX_MANIFEST_BYTES} bytes for a manifest"));
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("not a moatsweep manifest: {e}"))
    }

    /// The non-finite values it records (none when `nonfinite` is absent).
    pub fn nonfinite_count(&self) -> NonFinite {
        NonFinite::from_manifest(self.nonfinite.as_ref(), self.first_nonfinite_row)
    }

    /// Writes the manifest to `path` (pretty JSON) and syncs it.
    pub fn write(&self, path: &Path) -> Result<(), super::FileError> {
        let json = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        let written = std::fs::File::create(path).and_then(|mut f| {
            std::io::Write::write_all(&mut f, &json)?;
            f.sync_all()
        });
        written.map_err(|e| super::FileError::new("writing", path, e))
    }
}

/// RFC 3339 UTC timestamp, to the second.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// What every manifest of one run records of how it ran (see [`Manifest::for_run`]).
#[derive(Clone, Debug)]
pub struct RunFacts {
    pub command: Vec<String>,
    pub config_path: String,
    pub config_sha256: String,
    pub config: ResolvedConfig,
    pub backend: BackendInfo,
    pub scenarios: u64,
    pub rows: [u64; 2],
    pub resumed_at_row: Option<u64>,
    pub kernel_time_s: Option<f64>,
    /// A device backend's traffic and dispatch times (None on the CPU).
    pub transfer: Option<crate::backend::TransferStats>,
    pub wall_time_s: f64,
    pub started_at: String,
    pub finished_at: String,
}

/// What a manifest says of its file's content.
#[derive(Clone, Debug)]
pub struct Content {
    pub columns: Vec<String>,
    /// `Some(Parquet)` for a Parquet file.
    pub format: Option<super::OutputFormat>,
    pub sha256: String,
    pub bytes: u64,
    pub nonconverged_scenarios: u64,
    pub nonfinite: NonFinite,
    pub verify: Option<VerifyReport>,
    pub reduce: Option<ReducedManifest>,
}

impl Manifest {
    /// The manifest of `output`, a file of the run `facts` describes.
    pub fn for_run(facts: &RunFacts, output: &Path, content: Content) -> Manifest {
        let f = facts.clone();
        let (nonfinite, first_nonfinite_row) = content.nonfinite.manifest();
        Manifest {
            moatsweep_version: env!("CARGO_PKG_VERSION").into(),
            model: MODEL.into(),
            command: f.command,
            config_path: f.config_path,
            config_sha256: f.config_sha256,
            config: f.config,
            backend: f.backend,
            output: output.display().to_string(),
            format: content.format,
            sha256: Some(content.sha256),
            bytes: Some(content.bytes),
            columns: content.columns,
            scenarios: f.scenarios,
            rows: f.rows,
            rows_written: f.rows[1] - f.rows[0],
            nonconverged_scenarios: content.nonconverged_scenarios,
            nonfinite,
            first_nonfinite_row,
            resumed_at_row: f.resumed_at_row,
            merged_from: None,
            verify: content.verify,
            kernel_time_s: f.kernel_time_s,
            expand: f.transfer.map(|t| t.expand),
            uploaded_bytes: f.transfer.map(|t| t.uploaded_bytes),
            read_back_bytes: f.transfer.map(|t| t.read_back_bytes),
            longest_dispatch_s: f.transfer.map(|t| t.longest_dispatch_s),
            dispatch_budget_s: f.transfer.and_then(|t| t.dispatch_budget_s),
            wall_time_s: f.wall_time_s,
            started_at: f.started_at,
            finished_at: f.finished_at,
            reduce: content.reduce,
        }
    }

    /// The manifest of `output`, the merge of `shards` (each a path and its
    /// manifest, sorted by rows, covering the sweep), whose bytes hash to `sha256`
    /// (`bytes` long), by `command`. It is the first shard's, with the whole
    /// sweep's rows, the shards' sums (non-converged scenarios, times) and span of
    /// dates, and where each row came from; `reduce` replaces a reduced shard's.
    pub fn for_merge(
        shards: &[(std::path::PathBuf, Manifest)],
        output: &Path,
        command: Vec<String>,
        sha256: String,
        bytes: u64,
        reduce: Option<ReducedManifest>,
    ) -> Manifest {
        let first = &shards[0].1;
        let manifests = || shards.iter().map(|(_, m)| m);
        let mut nonfinite = NonFinite::default();
        for m in manifests() {
            nonfinite.add(&m.nonfinite_count());
        }
        let (nonfinite, first_nonfinite_row) = nonfinite.manifest();
        Manifest {
            command,
            output: output.display().to_string(),
            sha256: Some(sha256),
            bytes: Some(bytes),
            rows: [0, first.scenarios],
            rows_written: first.scenarios,
            nonconverged_scenarios: manifests().map(|m| m.nonconverged_scenarios).sum(),
            nonfinite,
            first_nonfinite_row,
            resumed_at_row: None,
            merged_from: Some(
                shards
                    .iter()
                    .map(|(p, m)| MergedFrom {
                        path: p.display().to_string(),
                        rows: m.rows,
                        backend: m.backend.clone(),
                        sha256: m.sha256.clone(),
                    })
                    .collect(),
            ),
            kernel_time_s: manifests().map(|m| m.kernel_time_s).sum::<Option<f64>>(),
            // One mode where every part agrees on it.
            expand: manifests().map(|m| m.expand).reduce(|a, b| if a == b { a } else { None }).flatten(),
            uploaded_bytes: manifests().map(|m| m.uploaded_bytes).sum::<Option<u64>>(),
            read_back_bytes: manifests().map(|m| m.read_back_bytes).sum::<Option<u64>>(),
            longest_dispatch_s: manifests().map(|m| m.longest_dispatch_s).reduce(|a, b| Some(a?.max(b?))).flatten(),
            wall_time_s: manifests().map(|m| m.wall_time_s).sum(),
            started_at: manifests().map(|m| m.started_at.clone()).min().unwrap_or_default(),
            finished_at: manifests().map(|m| m.finished_at.clone()).max().unwrap_or_default(),
            reduce,
            ..first.clone()
        }
    }
}
