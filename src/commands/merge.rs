//! `moatsweep merge`: join the shards of one sweep into the file a single run
//! gives, checking each shard's bytes against the SHA-256 its manifest records.
//! Rows files (CSV: concatenated; Parquet: decoded and encoded again in the whole
//! sweep's row groups) and reduced shards (their exact states added up, the
//! reduced CSV written from the sum); shards of a `rows = true` run give both
//! merged outputs in one call. Every merged file is committed with its manifest
//! ([`Manifest::for_merge`]) through the output transaction's [`commit`].

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::InputError;
use crate::engine::reduced::state_path;
use crate::output::manifest::{Manifest, ReducedManifest};
use crate::output::transaction::{Final, Target, commit};
use crate::output::{FileError, HashedWriter, OutputFormat, create_partial, hex, manifest_path, partial_path};
use crate::reduce::output::{csv_bytes, reduced_path};
use crate::reduce::state::ReduceState;
use crate::sweep::provenance::Footer;

struct Shard {
    path: PathBuf,
    manifest: Manifest,
}

fn refuse(msg: String) -> anyhow::Error {
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
    // Before any byte is copied: a regular file, of its manifest's format, length and header.
    crate::analysis::sweep_file::check_outline(path, &manifest, &mpath)?;
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
    let mut provenance: Footer = first
        .key_value("moatsweep.manifest")
        .and_then(|m| serde_json::from_str(&m).ok())
        .ok_or_else(|| refuse(format!("{}: its footer holds no moatsweep manifest", shards[0].path.display())))?;
    provenance.rows = [0, total];
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
    finish_merge(out, shards, command, w).map(|()| total)
}

/// Merges `inputs` into `out` (and its manifest); returns the number of rows.
/// Shards of a `rows = true` reduced run also give their reduced CSV merged (beside
/// `out`, as a single run writes it).
pub fn merge(out: &Path, inputs: &[PathBuf], command: Vec<String>) -> anyhow::Result<u64> {
    let mut shards = inputs.iter().map(|p| read_shard(p)).collect::<anyhow::Result<Vec<_>>>()?;
    check_same_sweep(&shards)?;
    let total = shards[0].manifest.scenarios;
    shards.sort_by_key(|s| s.manifest.rows);
    check_coverage(&shards, total)?;
    if shards.iter().any(|s| s.manifest.reduce.is_some()) {
        return merge_reduced(out, &shards, command);
    }
    if let Some(s) = shards.iter().find(|s| s.manifest.format != shards[0].manifest.format) {
        return Err(refuse(format!(
            "{}: its format differs from {}'s; shards must come from one sweep",
            s.path.display(),
            shards[0].path.display()
        )));
    }
    // A rows = true run's shards: their reduced shards beside them, each naming it.
    let companions: Vec<PathBuf> = shards.iter().map(|s| reduced_path(&s.path)).collect();
    let reduced_too = companions.iter().zip(&shards).all(|(r, s)| {
        Manifest::read(&manifest_path(r))
            .is_ok_and(|m| m.reduce.and_then(|x| x.rows_output).is_some_and(|o| Path::new(&o).file_name() == s.path.file_name()))
    });
    let rows = if shards[0].manifest.format == Some(OutputFormat::Parquet) {
        merge_parquet(out, &shards, command.clone())?
    } else {
        merge_csv(out, &shards, command.clone())?
    };
    if reduced_too {
        let reduced_out = reduced_path(out);
        merge(&reduced_out, &companions, command)?;
        eprintln!("merged their reduced shards into {}", reduced_out.display());
    }
    Ok(rows)
}

/// CSV shards: one header, then every shard's rows in row order.
fn merge_csv(out: &Path, shards: &[Shard], command: Vec<String>) -> anyhow::Result<u64> {
    let (partial, file) = create_partial(out).map_err(|e| refuse(format!("cannot write {}: {e}", partial_path(out).display())))?;
    let mut w = HashedWriter::new(partial.clone(), file, 1 << 20);
    let written = (|| -> anyhow::Result<()> {
        let mut header = None;
        for s in shards {
            append(s, &mut w, &mut header)?;
        }
        Ok(w.sync()?)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    finish_merge(out, shards, command, w).map(|()| shards[0].manifest.scenarios)
}

/// Writes the merged rows file's manifest and puts both in place.
fn finish_merge(out: &Path, shards: &[Shard], command: Vec<String>, w: HashedWriter) -> anyhow::Result<()> {
    let manifest = Manifest::for_merge(&pairs(shards), out, command, w.sha256(), w.bytes(), None);
    let target = Target::of(out);
    let done = commit(&[Final { target: &target, contents: None, manifest }], &[]);
    if done.is_err() {
        let _ = std::fs::remove_file(&target.partial);
        let _ = std::fs::remove_file(&target.manifest_partial);
    }
    done
}

fn pairs(shards: &[Shard]) -> Vec<(PathBuf, Manifest)> {
    shards.iter().map(|s| (s.path.clone(), s.manifest.clone())).collect()
}

/// Reduced shards (sorted, of one sweep, covering it): each shard's exact state
/// (checked against the SHA-256 its manifest records) added up, and the reduced CSV
/// written from the sum: the same bytes as one run of the whole sweep on the same
/// backend. The config (at the manifests' `config_path`, with their SHA-256) gives
/// the groups and columns. Returns the rows reduced.
fn merge_reduced(out: &Path, shards: &[Shard], command: Vec<String>) -> anyhow::Result<u64> {
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
    let rp = loaded.reduce.as_ref().ok_or_else(|| refuse(format!("{}: it has no [reduce] section", config.display())))?;
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
    let reduce = ReducedManifest {
        state: state_file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        state_sha256: hex(&Sha256::digest(&state)),
        rows_output: None,
        ..first.reduce.clone().expect("checked above")
    };
    let manifest = Manifest::for_merge(&pairs(shards), out, command, hex(&Sha256::digest(&csv)), csv.len() as u64, Some(reduce));
    let target = Target::of(out);
    let done = commit(&[Final { target: &target, contents: Some(csv), manifest }], &[(state_file.clone(), &state)]);
    if done.is_err() {
        for p in [&target.partial, &partial_path(&state_file), &target.manifest_partial] {
            let _ = std::fs::remove_file(p);
        }
    }
    done.map(|()| first.scenarios)
}
