//! `moatsweep merge` of reduced shards: each shard's exact state (checked against
//! the SHA-256 its manifest records) is added up, and the reduced CSV is written
//! from the sum: the same bytes as one run of the whole sweep on the same backend.
//! The config (at the manifests' `config_path`, with their SHA-256) gives the groups
//! and columns.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::output::csv_bytes;
use super::run::state_path;
use super::state::ReduceState;
use crate::merge::{Shard, refuse};
use crate::output::manifest::{Manifest, ReducedManifest};
use crate::output::{FileError, hex, manifest_path, partial_path};

/// Merges reduced shards (sorted, of one sweep, covering it) into `out`; returns the rows reduced.
pub(crate) fn merge(out: &Path, shards: &[Shard], command: Vec<String>) -> anyhow::Result<u64> {
    let first = &shards[0].manifest;
    if let Some(s) = shards.iter().find(|s| s.manifest.reduce.is_none()) {
        return Err(refuse(format!("{}: it is a sweep CSV, the others are reduced CSVs; merge one kind at a time", s.path.display())));
    }
    let config = Path::new(&first.config_path);
    let loaded = crate::config::load(config)
        .map_err(|e| refuse(format!("merging reduced shards needs their config {} (to name the groups): {e}", config.display())))?;
    if loaded.sha256 != first.config_sha256 {
        return Err(refuse(format!(
            "{}: its SHA-256 is {}, the shards were made from {}; merge with the config they ran",
            config.display(),
            loaded.sha256,
            first.config_sha256
        )));
    }
    let plan = loaded.plan;
    let rp = plan.reduce.as_ref().ok_or_else(|| refuse(format!("{}: it has no [reduce] section", config.display())))?;
    let mut total = ReduceState::new(rp);
    for s in shards {
        let r = s.manifest.reduce.as_ref().expect("checked above");
        let path = s.path.with_file_name(&r.state);
        let bytes =
            std::fs::read(&path).map_err(|e| refuse(format!("{}: cannot read its state {}: {e}", s.path.display(), path.display())))?;
        let sha = hex(&Sha256::digest(&bytes));
        if sha != r.state_sha256 {
            return Err(refuse(format!(
                "{}: its SHA-256 is {sha}, its manifest records {}: the file changed after it was written",
                path.display(),
                r.state_sha256
            )));
        }
        let state = ReduceState::from_bytes(&bytes, rp).map_err(|e| refuse(format!("{}: {e}", path.display())))?;
        total.merge(&state);
    }
    let csv = csv_bytes(&plan, rp, &total);
    let state = total.to_bytes();
    let state_file = state_path(out);
    let manifest = Manifest {
        command,
        output: out.display().to_string(),
        sha256: Some(hex(&Sha256::digest(&csv))),
        bytes: Some(csv.len() as u64),
        rows: [0, first.scenarios],
        rows_written: first.scenarios,
        nonconverged_scenarios: shards.iter().map(|s| s.manifest.nonconverged_scenarios).sum(),
        resumed_at_row: None,
        merged_from: Some(crate::merge::merged_from(shards)),
        kernel_time_s: shards.iter().map(|s| s.manifest.kernel_time_s).sum::<Option<f64>>(),
        wall_time_s: shards.iter().map(|s| s.manifest.wall_time_s).sum(),
        started_at: shards.iter().map(|s| s.manifest.started_at.clone()).min().unwrap_or_default(),
        finished_at: shards.iter().map(|s| s.manifest.finished_at.clone()).max().unwrap_or_default(),
        reduce: Some(ReducedManifest {
            state: state_file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            state_sha256: hex(&Sha256::digest(&state)),
            rows_output: None,
            ..first.reduce.clone().expect("checked above")
        }),
        ..first.clone()
    };
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| refuse(format!("cannot write {}: {e}", out.display())))?;
    }
    let write = |path: &Path, data: &[u8]| -> Result<(), FileError> {
        let written = std::fs::File::create(path).and_then(|mut f| {
            std::io::Write::write_all(&mut f, data)?;
            f.sync_all()
        });
        written.map_err(|e| FileError::new("writing", path, e))
    };
    let (csv_partial, state_partial, mpath) = (partial_path(out), partial_path(&state_file), manifest_path(out));
    let mpartial = partial_path(&mpath);
    let done = write(&csv_partial, &csv)
        .and_then(|()| write(&state_partial, &state))
        .and_then(|()| manifest.write(&mpartial))
        .and_then(|()| std::fs::rename(&state_partial, &state_file).map_err(|e| FileError::new("renaming", &state_partial, e)))
        .and_then(|()| std::fs::rename(&csv_partial, out).map_err(|e| FileError::new("renaming", &csv_partial, e)))
        .and_then(|()| std::fs::rename(&mpartial, &mpath).map_err(|e| FileError::new("renaming", &mpartial, e)));
    if let Err(e) = done {
        for p in [&csv_partial, &state_partial, &mpartial] {
            let _ = std::fs::remove_file(p);
        }
        return Err(e.into());
    }
    Ok(first.scenarios)
}
