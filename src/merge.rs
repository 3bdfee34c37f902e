//! `moatsweep merge`: join the shards of one sweep into the CSV a single run gives.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::InputError;
use crate::output::{manifest_path, partial_path};

struct Shard {
    path: PathBuf,
    manifest: Value,
    rows: [u64; 2],
}

fn refuse(msg: String) -> anyhow::Error {
    InputError(msg).into()
}

fn read_shard(path: &Path) -> anyhow::Result<Shard> {
    let mpath = manifest_path(path);
    let bytes =
        std::fs::read(&mpath).map_err(|e| refuse(format!("{}: cannot read its manifest {}: {e}", path.display(), mpath.display())))?;
    let manifest: Value =
        serde_json::from_slice(&bytes).map_err(|e| refuse(format!("{}: its manifest is not valid JSON: {e}", mpath.display())))?;
    let rows = match manifest["rows"].as_array().map(|r| r.iter().filter_map(Value::as_u64).collect::<Vec<_>>()) {
        Some(r) if r.len() == 2 && r[0] <= r[1] => [r[0], r[1]],
        _ => return Err(refuse(format!("{}: its manifest has no row range (\"rows\": [start, end])", mpath.display()))),
    };
    if manifest["rows_written"].as_u64() != Some(rows[1] - rows[0]) {
        return Err(refuse(format!(
            "{}: its manifest says rows {}..{} but rows_written {}",
            path.display(),
            rows[0],
            rows[1],
            manifest["rows_written"]
        )));
    }
    Ok(Shard { path: path.to_path_buf(), manifest, rows })
}

/// Merges `inputs` into `out` (and its manifest); returns the number of rows.
pub fn merge(out: &Path, inputs: &[PathBuf], command: Vec<String>) -> anyhow::Result<u64> {
    let mut shards = inputs.iter().map(|p| read_shard(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let first = &shards[0];
    for s in &shards[1..] {
        for (key, what) in [
            ("/config_sha256", "config"),
            ("/moatsweep_version", "moatsweep version"),
            ("/backend/precision", "precision"),
            ("/scenarios", "scenario count"),
        ] {
            if s.manifest.pointer(key) != first.manifest.pointer(key) {
                return Err(refuse(format!(
                    "{}: its {what} ({}) differs from {}'s ({}); shards must come from one sweep",
                    s.path.display(),
                    s.manifest.pointer(key).unwrap_or(&Value::Null),
                    first.path.display(),
                    first.manifest.pointer(key).unwrap_or(&Value::Null)
                )));
            }
        }
    }
    let total = first.manifest["scenarios"]
        .as_u64()
        .ok_or_else(|| refuse(format!("{}: its manifest has no scenario count", first.path.display())))?;
    shards.sort_by_key(|s| s.rows);
    let mut next = 0;
    for (k, s) in shards.iter().enumerate() {
        if s.rows[0] < next {
            return Err(refuse(format!(
                "{} (rows {}..{}) overlaps {} (rows {}..{})",
                s.path.display(),
                s.rows[0],
                s.rows[1],
                shards[k - 1].path.display(),
                shards[k - 1].rows[0],
                shards[k - 1].rows[1]
            )));
        }
        if s.rows[0] > next {
            return Err(refuse(format!("rows {next}..{} are missing (before {})", s.rows[0], s.path.display())));
        }
        next = s.rows[1];
    }
    if next != total {
        return Err(refuse(format!("rows {next}..{total} are missing (after {})", shards[shards.len() - 1].path.display())));
    }

    // Concatenate: one header, then every shard's rows in row order.
    let partial = partial_path(out);
    let written = (|| -> anyhow::Result<()> {
        if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut w = std::io::BufWriter::with_capacity(
            1 << 20,
            File::create(&partial).map_err(|e| refuse(format!("cannot write {}: {e}", partial.display())))?,
        );
        let mut header = None;
        for s in &shards {
            let mut r = BufReader::with_capacity(1 << 20, File::open(&s.path).with_context(|| format!("reading {}", s.path.display()))?);
            let mut line = String::new();
            r.read_line(&mut line)?;
            match &header {
                None => {
                    w.write_all(line.as_bytes())?;
                    header = Some(line);
                }
                Some(h) if *h != line => {
                    return Err(refuse(format!("{}: its CSV header differs from {}'s", s.path.display(), shards[0].path.display())));
                }
                Some(_) => {}
            }
            let mut body = Vec::new();
            r.read_to_end(&mut body)?;
            let rows = body.iter().filter(|&&b| b == b'\n').count() as u64;
            if rows != s.rows[1] - s.rows[0] {
                return Err(refuse(format!("{}: holds {rows} rows, its manifest says {}", s.path.display(), s.rows[1] - s.rows[0])));
            }
            w.write_all(&body)?;
        }
        w.flush()?;
        w.get_ref().sync_all()?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }

    let mut manifest = shards[0].manifest.clone();
    let sum = |key: &str| shards.iter().filter_map(|s| s.manifest[key].as_f64()).sum::<f64>();
    manifest["command"] = Value::from(command);
    manifest["output"] = Value::from(out.display().to_string());
    manifest["rows"] = serde_json::json!([0, total]);
    manifest["rows_written"] = Value::from(total);
    manifest["nonconverged_scenarios"] = Value::from(sum("nonconverged_scenarios") as u64);
    manifest["wall_time_s"] = Value::from(sum("wall_time_s"));
    if shards.iter().all(|s| s.manifest["kernel_time_s"].is_number()) {
        manifest["kernel_time_s"] = Value::from(sum("kernel_time_s"));
    }
    let times = |key: &str| shards.iter().filter_map(|s| s.manifest[key].as_str().map(str::to_string)).collect::<Vec<_>>();
    manifest["started_at"] = Value::from(times("started_at").into_iter().min());
    manifest["finished_at"] = Value::from(times("finished_at").into_iter().max());
    manifest["merged_from"] = shards
        .iter()
        .map(|s| serde_json::json!({ "path": s.path.display().to_string(), "rows": s.rows, "backend": s.manifest["backend"] }))
        .collect();
    if let Some(m) = manifest.as_object_mut() {
        m.remove("resumed_at_row");
    }
    let mpath = manifest_path(out);
    std::fs::write(partial_path(&mpath), serde_json::to_vec_pretty(&manifest)?)?;
    std::fs::rename(&partial, out)?;
    std::fs::rename(partial_path(&mpath), &mpath)?;
    Ok(total)
}
