//! `<out>.partial.checkpoint`: how much of `<out>.partial` has reached the disk,
//! so that `run --resume` continues from there.
//!
//! The writer thread ([`super::sink`]) reports each chunk once its bytes are
//! synced; the run records that report here. A checkpoint never claims bytes that
//! are not on disk: it is written after the data, to a temporary file that is
//! synced and then renamed over the old one, so a failed checkpoint write leaves
//! the previous checkpoint (describing a shorter prefix) in place.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::nonfinite::NonFinite;
use super::{FileError, partial_path};
use crate::backend::{BackendKind, Precision};

/// Where a run stands.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub moatsweep_version: String,
    /// The model specification the rows follow (see the manifest's `model`).
    pub model: String,
    pub config_sha256: String,
    pub backend: BackendKind,
    pub precision: Precision,
    /// The rows [start, end) the run writes.
    pub rows: [u64; 2],
    /// Rows before this one are in the file.
    pub next_row: u64,
    /// Length of the prefix of `<out>.partial` holding exactly those rows (and the header).
    pub bytes: u64,
    /// SHA-256 of that prefix, hex.
    pub sha256: String,
    /// Non-converged scenarios among those rows.
    pub nonconverged_scenarios: u64,
    /// Non-finite values among those rows (absent when there are none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonfinite: Option<NonFinite>,
    /// A reduced run: non-finite values among the positions reduced (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce_nonfinite: Option<NonFinite>,
    /// A reduced run (`[reduce]`): the reduction's state over positions before
    /// `next_row` (canonical bytes, base64; `bytes` and `sha256` then describe the
    /// rows file of `rows = true`, or nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce_state: Option<String>,
    /// A Parquet file: the length and SHA-256 of its row group log
    /// (`<out>.partial.rowgroups`) that those bytes go with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_sha256: Option<String>,
}

/// `<out>.partial.checkpoint`.
pub fn checkpoint_path(out: &Path) -> PathBuf {
    let mut s = partial_path(out).into_os_string();
    s.push(".checkpoint");
    PathBuf::from(s)
}

impl Checkpoint {
    /// Reads a checkpoint; a file that is not one is an `InvalidData` error.
    pub fn read(path: &Path) -> std::io::Result<Checkpoint> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    /// Replaces the checkpoint at `path` atomically (write `<path>.partial`, sync, rename).
    pub fn write(&self, path: &Path) -> Result<(), FileError> {
        let tmp = partial_path(path);
        let json = serde_json::to_vec_pretty(self).expect("a checkpoint serializes");
        let written = std::fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(&json)?;
            f.sync_all()
        });
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(FileError::new("writing", &tmp, e));
        }
        std::fs::rename(&tmp, path).map_err(|e| FileError::new("writing", path, e))?;
        crate::testhook::checkpoint_written();
        Ok(())
    }
}
