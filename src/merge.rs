//! `moatsweep merge`: join the shards of one sweep into the CSV a single run gives,
//! checking each shard's bytes against the SHA-256 its manifest records.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::InputError;
use crate::output::manifest::{Manifest, MergedFrom};
use crate::output::{FileError, HashedWriter, OutputFormat, create_partial, hex, manifest_path, partial_path};

pub(crate) struct Shard {
    pub path: PathBuf,
    pub manifest: Manifest,
}

pub(crate) fn refuse(msg: String) -> anyhow::Error {
    InputError(msg).into()
}

fn read_shard(path: &Path) -> anyhow::Result<Shard> {
    let mpath = manifest_path(path);
    let manifest =
        Manifest::read(&mpath).map_err(|e| refuse(format!("{}: cannot read its manifest {}: {e}", path.display(), mpath.display())))?;
    let [a, b] = manifest.rows;
    if a > b || manifest.rows_written != b - a {
        return Err(refuse(format!("{}: its manifest says rows {a}..{b} but rows_written {}", path.display(), manifest.rows_written)));
    }
    Ok(Shard { path: path.to_path_buf(), manifest })
}

/// Refuses shards that do not come from one sweep.
fn check_same_sweep(shards: &[Shard]) -> anyhow::Result<()> {
    let first = &shards[0];
    let facts = |m: &Manifest| {
        [
            ("config", m.config_sha256.clone()),
            ("moatsweep version", m.moatsweep_version.clone()),
            ("model", m.model.clone()),
            ("precision", m.backend.precision.to_string()),
            ("scenario count", m.scenarios.to_string()),
        ]
    };
    for s in &shards[1..] {
        for ((what, theirs), (_, ours)) in facts(&s.manifest).into_iter().zip(facts(&first.manifest)) {
            if theirs != ours {
                return Err(refuse(format!(
                    "{}: its {what} ({theirs}) differs from {}'s ({ours}); shards must come from one sweep",
                    s.path.display(),
                    first.path.display()
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a set of row ranges (sorted) that does not cover 0..total exactly once.
fn check_coverage(shards: &[Shard], total: u64) -> anyhow::Result<()> {
    let mut next = 0;
    for (k, s) in shards.iter().enumerate() {
        let [a, b] = s.manifest.rows;
        if a < next {
            let prev = &shards[k - 1];
            return Err(refuse(format!(
                "{} (rows {a}..{b}) overlaps {} (rows {}..{})",
                s.path.display(),
                prev.path.display(),
                prev.manifest.rows[0],
                prev.manifest.rows[1]
            )));
        }
        if a > next {
            return Err(refuse(format!("rows {next}..{a} are missing (before {})", s.path.display())));
        }
        next = b;
    }
    if next != total {
        return Err(refuse(format!("rows {next}..{total} are missing (after {})", shards[shards.len() - 1].path.display())));
    }
    Ok(())
}

/// Appends shard `s` to `out` (its header only when `header` is `None`, else
/// checked against it), verifying its row count and SHA-256 on the way.
fn append(s: &Shard, out: &mut HashedWriter, header: &mut Option<(String, PathBuf)>) -> anyhow::Result<()> {
    let shown = s.path.display();
    let err = |e| FileError::new("reading", &s.path, e);
    let mut r = BufReader::with_capacity(1 << 20, File::open(&s.path).map_err(err)?);
    let mut line = String::new();
    r.read_line(&mut line).map_err(err)?;
    let mut hash = Sha256::new();
    hash.update(line.as_bytes());
    match header {
        None => {
            out.put(line.as_bytes())?;
            *header = Some((line, s.path.clone()));
        }
        Some((h, first)) if *h != line => {
            return Err(refuse(format!("{shown}: its CSV header differs from {}'s", first.display())));
        }
        Some(_) => {}
    }
    let mut rows = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        hash.update(chunk);
        rows += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        out.put(chunk)?;
    }
    let want = s.manifest.rows_written;
    if rows != want {
        return Err(refuse(format!("{shown}: holds {rows} rows, its manifest says {want}")));
    }
    let sha = hex(&hash.finalize());
    match &s.manifest.sha256 {
        Some(recorded) if *recorded != sha => {
            Err(refuse(format!("{shown}: its SHA-256 is {sha}, its manifest records {recorded}: the file changed after it was written")))
        }
        Some(_) => Ok(()),
        None => {
            eprintln!("note: {shown}: its manifest records no sha256 (an older moatsweep), so its bytes were not checked");
            Ok(())
        }
    }
}

/// Checks a shard's bytes against the SHA-256 its manifest records.
fn check_bytes(s: &Shard) -> anyhow::Result<()> {
    let sha = crate::output::scan(&s.path).map_err(|e| refuse(format!("{}: cannot read it: {}", s.path.display(), e.source)))?.sha256;
    match &s.manifest.sha256 {
        Some(recorded) if *recorded != sha => Err(refuse(format!(
            "{}: its SHA-256 is {sha}, its manifest records {recorded}: the file changed after it was written",
            s.path.display()
        ))),
        _ => Ok(()),
    }
}

/// Parquet shards: every shard's rows decoded (after checking its bytes) and encoded
/// again in row groups of the whole sweep, with the footer one run writes.
fn merge_parquet(out: &Path, shards: &[Shard], command: Vec<String>) -> anyhow::Result<u64> {
    use crate::output::parquet::{Layout, ParquetEncoder, ParquetFile};
    use crate::output::sink::Encoder;
    let total = shards[0].manifest.scenarios;
    let mut files = Vec::new();
    for s in shards {
        check_bytes(s)?;
        let f = ParquetFile::open(&s.path).map_err(|e| refuse(format!("{e:#}")))?;
        if f.names() != shards[0].manifest.columns {
            return Err(refuse(format!("{}: its columns differ from its manifest's", s.path.display())));
        }
        if f.rows() != s.manifest.rows_written {
            return Err(refuse(format!("{}: holds {} rows, its manifest says {}", s.path.display(), f.rows(), s.manifest.rows_written)));
        }
        files.push(f);
    }
    let first = &files[0];
    let mut provenance: serde_json::Value = first
        .key_value("moatsweep.manifest")
        .and_then(|m| serde_json::from_str(&m).ok())
        .ok_or_else(|| refuse(format!("{}: its footer holds no moatsweep manifest", shards[0].path.display())))?;
    provenance["rows"] = serde_json::json!([0, total]);
    let precision = shards[0].manifest.backend.precision;
    let layout = Layout::from_file(first).map_err(|e| refuse(format!("{}: {e:#}", shards[0].path.display())))?;
    let mut enc = ParquetEncoder::new(None, layout, precision, &provenance, 0, 0, Vec::new());
    let (partial, file) = create_partial(out).map_err(|e| refuse(format!("cannot write {}: {e}", partial_path(out).display())))?;
    let mut w = HashedWriter::new(partial.clone(), file, 1 << 20);
    let written = (|| -> anyhow::Result<()> {
        w.put(&enc.head())?;
        for (s, f) in shards.iter().zip(&files) {
            let mut row = s.manifest.rows[0];
            let all: Vec<usize> = (0..f.names().len()).collect();
            for g in 0..f.row_groups() {
                let cols = f.read_group(g, &all)?;
                let n = cols.first().map_or(0, |c| c.rows()) as u64;
                for b in enc.push_columns(row, cols)?.blocks {
                    w.put(&b)?;
                }
                row += n;
            }
        }
        for b in enc.finish()?.blocks {
            w.put(&b)?;
        }
        Ok(w.sync()?)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    finish_merge(out, shards, command, w, total)
}

/// Merges `inputs` into `out` (and its manifest); returns the number of rows.
pub fn merge(out: &Path, inputs: &[PathBuf], command: Vec<String>) -> anyhow::Result<u64> {
    let mut shards = inputs.iter().map(|p| read_shard(p)).collect::<anyhow::Result<Vec<_>>>()?;
    check_same_sweep(&shards)?;
    let total = shards[0].manifest.scenarios;
    shards.sort_by_key(|s| s.manifest.rows);
    check_coverage(&shards, total)?;
    if shards.iter().any(|s| s.manifest.reduce.is_some()) {
        return crate::reduce::merge::merge(out, &shards, command);
    }
    if let Some(s) = shards.iter().find(|s| s.manifest.format != shards[0].manifest.format) {
        return Err(refuse(format!(
            "{}: its format differs from {}'s; shards must come from one sweep",
            s.path.display(),
            shards[0].path.display()
        )));
    }
    if shards[0].manifest.format == Some(OutputFormat::Parquet) {
        return merge_parquet(out, &shards, command);
    }

    // Concatenate: one header, then every shard's rows in row order.
    let (partial, file) = create_partial(out).map_err(|e| refuse(format!("cannot write {}: {e}", partial_path(out).display())))?;
    let mut w = HashedWriter::new(partial.clone(), file, 1 << 20);
    let written = (|| -> anyhow::Result<()> {
        let mut header = None;
        for s in &shards {
            append(s, &mut w, &mut header)?;
        }
        Ok(w.sync()?)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }

    finish_merge(out, &shards, command, w, total)
}

/// The manifest's `merged_from`: each shard's path, rows, backend and SHA-256.
pub(crate) fn merged_from(shards: &[Shard]) -> Vec<MergedFrom> {
    shards
        .iter()
        .map(|s| MergedFrom {
            path: s.path.display().to_string(),
            rows: s.manifest.rows,
            backend: s.manifest.backend.clone(),
            sha256: s.manifest.sha256.clone(),
        })
        .collect()
}

/// Writes the merged file's manifest and renames both into place.
fn finish_merge(out: &Path, shards: &[Shard], command: Vec<String>, w: HashedWriter, total: u64) -> anyhow::Result<u64> {
    let partial = partial_path(out);
    let first = &shards[0].manifest;
    let sum = |f: fn(&Manifest) -> Option<f64>| shards.iter().map(|s| f(&s.manifest)).sum::<Option<f64>>();
    let manifest = Manifest {
        command,
        output: out.display().to_string(),
        sha256: Some(w.sha256()),
        bytes: Some(w.bytes()),
        rows: [0, total],
        rows_written: total,
        nonconverged_scenarios: shards.iter().map(|s| s.manifest.nonconverged_scenarios).sum(),
        resumed_at_row: None,
        merged_from: Some(merged_from(shards)),
        kernel_time_s: sum(|m| m.kernel_time_s),
        wall_time_s: sum(|m| Some(m.wall_time_s)).unwrap_or(0.0),
        started_at: shards.iter().map(|s| s.manifest.started_at.clone()).min().unwrap_or_default(),
        finished_at: shards.iter().map(|s| s.manifest.finished_at.clone()).max().unwrap_or_default(),
        ..first.clone()
    };
    let mpath = manifest_path(out);
    let mpartial = partial_path(&mpath);
    let finished = manifest.write(&mpartial).and_then(|()| {
        std::fs::rename(&partial, out).map_err(|e| FileError::new("renaming", &partial, e))?;
        std::fs::rename(&mpartial, &mpath).map_err(|e| FileError::new("renaming", &mpartial, e))
    });
    if let Err(e) = finished {
        let _ = std::fs::remove_file(&partial);
        let _ = std::fs::remove_file(&mpartial);
        return Err(e.into());
    }
    Ok(total)
}
