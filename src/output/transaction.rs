//! One output transaction: everything a job writes (its rows file, a reduced CSV
//! and its state, their manifests) becomes visible complete or not at all, and an
//! interrupted job leaves exactly what `--resume` continues from.
//!
//! While a job runs, each output is a `<out>.partial` (with a Parquet rows file's
//! side log `<out>.partial.rowgroups`), and one checkpoint (`<main>.partial.checkpoint`)
//! records how far the job got and what of the files that covers ([`Checkpoint`]).
//! The checkpoint is written only after the bytes it vouches for are synced.
//! [`Transaction::begin`] opens the files fresh, or, resuming, cuts them back to
//! what the checkpoint vouches for once their SHA-256 matches; [`commit`] writes
//! each manifest beside its `.partial` and renames everything into place; after a
//! failure [`Transaction::abandon`] keeps what is resumable or removes it all.
//! `run` (rows or reduced) and `merge` commit through here.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::checkpoint::{Checkpoint, checkpoint_path};
use super::manifest::Manifest;
use super::parquet::{self, RowGroupMeta};
use super::sink::{OutputFile, Recorder};
use super::{FileError, OutputFormat, create_partial, hash_prefix, hex, manifest_path, partial_path};
use crate::InputError;

/// The files of one output: the file, its `.partial`, its manifest (and that
/// manifest's `.partial`), and the side log of a Parquet file.
#[derive(Clone, Debug)]
pub struct Target {
    pub out: PathBuf,
    pub partial: PathBuf,
    pub manifest: PathBuf,
    pub manifest_partial: PathBuf,
    pub log: PathBuf,
}

impl Target {
    pub fn of(out: &Path) -> Target {
        let manifest = manifest_path(out);
        Target {
            out: out.to_path_buf(),
            partial: partial_path(out),
            manifest_partial: partial_path(&manifest),
            manifest,
            log: parquet::log_path(out),
        }
    }
}

/// A rows file opened for appending: what it holds, its side log and row groups
/// (Parquet), and whether it is new (its head still to be written).
pub struct Stream {
    pub file: OutputFile,
    pub log: Option<OutputFile>,
    pub row_groups: Vec<RowGroupMeta>,
    pub fresh: bool,
}

/// What one job writes.
pub struct Transaction {
    /// The output whose checkpoint records the job's progress.
    pub main: Target,
    pub checkpoint: PathBuf,
    /// The rows file streamed while the job runs (CSV or Parquet), if any; it is
    /// `main` for a job of rows.
    pub rows: Option<(Target, OutputFormat)>,
    /// Files written whole when the job commits, beside the main output (a reduced
    /// run's state): removed with the rest after a failure.
    pub extra: Vec<PathBuf>,
}

/// One file to put in place at commit: its bytes (or `None` when its `.partial` is
/// already complete, as a streamed rows file is) and its manifest.
pub struct Final<'a> {
    pub target: &'a Target,
    pub contents: Option<Vec<u8>>,
    pub manifest: Manifest,
}

impl Transaction {
    /// A job writing rows to `out`.
    pub fn rows(out: &Path, format: OutputFormat) -> Transaction {
        Transaction { main: Target::of(out), checkpoint: checkpoint_path(out), rows: Some((Target::of(out), format)), extra: Vec::new() }
    }

    /// A job whose main output `main` is written whole at the end (beside `extra`),
    /// with a streamed rows file when `rows` names one.
    pub fn whole(main: &Path, rows: Option<(&Path, OutputFormat)>, extra: Vec<PathBuf>) -> Transaction {
        Transaction { main: Target::of(main), checkpoint: checkpoint_path(main), rows: rows.map(|(p, f)| (Target::of(p), f)), extra }
    }

    /// Opens the job's files: fresh (replacing any earlier attempt, with the
    /// checkpoint `start`), or, with `resume`, as the checkpoint on disk describes
    /// them once nothing that shapes the rows changed since it was written (its
    /// fields are compared with `start`'s). Returns the checkpoint the job starts
    /// from and its rows file.
    pub fn begin(&self, start: Checkpoint, resume: bool) -> anyhow::Result<(Checkpoint, Option<Stream>)> {
        if resume { self.resume(start) } else { self.fresh(start) }
    }

    fn fresh(&self, mut start: Checkpoint) -> anyhow::Result<(Checkpoint, Option<Stream>)> {
        let cannot = |t: &Target, e: std::io::Error| InputError(format!("cannot write the output {}: {e}", t.partial.display()));
        // The main output's `.partial` now, so that an unwritable path fails before any work.
        let (_, main) = create_partial(&self.main.out).map_err(|e| cannot(&self.main, e))?;
        let _ = std::fs::remove_file(&self.checkpoint);
        let stream = match &self.rows {
            None => None,
            Some((t, format)) => {
                let file = if t.out == self.main.out { main } else { create_partial(&t.out).map_err(|e| cannot(t, e))?.1 };
                let log = match format {
                    OutputFormat::Csv => None,
                    OutputFormat::Parquet => {
                        let f = File::create(&t.log).map_err(|e| FileError::new("writing", &t.log, e))?;
                        start.log_bytes = Some(0);
                        start.log_sha256 = Some(hex(&Sha256::new().finalize()));
                        Some(OutputFile { file: f, path: t.log.clone(), bytes: 0, hash: Sha256::new() })
                    }
                };
                let file = OutputFile { file, path: t.partial.clone(), bytes: 0, hash: Sha256::new() };
                Some(Stream { file, log, row_groups: Vec::new(), fresh: true })
            }
        };
        if let Err(e) = self.record(&start) {
            self.remove_all();
            return Err(e.into());
        }
        Ok((start, stream))
    }

    fn resume(&self, now: Checkpoint) -> anyhow::Result<(Checkpoint, Option<Stream>)> {
        let cp = Checkpoint::read(&self.checkpoint)
            .map_err(|e| InputError(format!("nothing to resume: cannot read the checkpoint {}: {e}", self.checkpoint.display())))?;
        check_resumable(&cp, &now, &self.main.partial)?;
        let stream = match &self.rows {
            None => None,
            Some((t, format)) => {
                let file = reopen(&t.partial, cp.bytes, &cp.sha256)?;
                let (log, row_groups) = match format {
                    OutputFormat::Csv => (None, Vec::new()),
                    OutputFormat::Parquet => {
                        let (log, groups) = reopen_log(&t.log, &cp)?;
                        (Some(log), groups)
                    }
                };
                Some(Stream { file, log, row_groups, fresh: cp.bytes == 0 })
            }
        };
        Ok((cp, stream))
    }

    /// Replaces the checkpoint (atomically; see [`Checkpoint::write`]).
    pub fn record(&self, cp: &Checkpoint) -> Result<(), FileError> {
        cp.write(&self.checkpoint)
    }

    /// [`Transaction::record`] as a closure that owns the path, for the writer
    /// thread or a job's outputs.
    pub fn recorder(&self) -> Recorder {
        let path = self.checkpoint.clone();
        Box::new(move |cp: &Checkpoint| cp.write(&path))
    }

    /// Writes `finals` (their bytes where given, and their manifests) and the
    /// `extra` files' `contents`, renames all into place, and removes the
    /// checkpoint and side log.
    pub fn commit(&self, finals: &[Final], extra: &[Vec<u8>]) -> anyhow::Result<()> {
        let extra: Vec<(PathBuf, &[u8])> = self.extra.iter().cloned().zip(extra.iter().map(Vec::as_slice)).collect();
        commit(finals, &extra)?;
        let _ = std::fs::remove_file(&self.checkpoint);
        if let Some((t, _)) = &self.rows {
            let _ = std::fs::remove_file(&t.log);
        }
        Ok(())
    }

    /// After a failure: keeps the `.partial`s and the checkpoint when it vouches for
    /// some of the job's `rows` (and prints how to continue with `command`), else
    /// removes every file the job made.
    pub fn abandon(&self, rows: &Range<u64>, command: &[String]) {
        if let Some(kept) = self.abandon_quietly(rows, command) {
            eprintln!("{}; continue with:\n  {}", kept.rows_in(), kept.command);
        }
    }

    /// [`Transaction::abandon`] without the message: what was kept, if anything.
    pub fn abandon_quietly(&self, rows: &Range<u64>, command: &[String]) -> Option<Kept> {
        let _ = std::fs::remove_file(&self.main.manifest_partial);
        for p in &self.extra {
            let _ = std::fs::remove_file(partial_path(p));
        }
        if let Some((t, _)) = &self.rows {
            let _ = std::fs::remove_file(&t.manifest_partial);
        }
        let streamed = self.rows.as_ref().is_none_or(|(t, _)| t.partial.exists());
        let kept = Checkpoint::read(&self.checkpoint).ok().filter(|c| c.next_row > rows.start && streamed);
        let Some(cp) = kept else {
            self.remove_all();
            return None;
        };
        let mut args = command.to_vec();
        if !args.iter().any(|a| a == "--resume") {
            args.push("--resume".into());
        }
        let at = self.rows.as_ref().map_or(&self.checkpoint, |(t, _)| &t.partial);
        Some(Kept { done: rows.start..cp.next_row, rows: rows.clone(), at: at.clone(), command: args.join(" ") })
    }

    fn remove_all(&self) {
        let _ = std::fs::remove_file(&self.main.partial);
        let _ = std::fs::remove_file(&self.checkpoint);
        if let Some((t, _)) = &self.rows {
            let _ = std::fs::remove_file(&t.partial);
            let _ = std::fs::remove_file(&t.log);
        }
    }
}

/// Puts files in place: writes each `extra` file's and each final's bytes (where
/// given) to its `.partial`, then each manifest beside its file, syncing all; then
/// renames the extra files, each file and each manifest into place. Nothing is
/// removed on failure (the caller decides what is resumable).
pub fn commit(finals: &[Final], extra: &[(PathBuf, &[u8])]) -> anyhow::Result<()> {
    for (path, bytes) in extra {
        write_synced(&partial_path(path), bytes)?;
    }
    for f in finals {
        if let Some(bytes) = &f.contents {
            write_synced(&f.target.partial, bytes)?;
        }
        f.manifest.write(&f.target.manifest_partial)?;
    }
    let rename = |from: &Path, to: &Path| std::fs::rename(from, to).map_err(|e| FileError::new("renaming", from, e));
    for (path, _) in extra {
        rename(&partial_path(path), path)?;
    }
    for f in finals {
        rename(&f.target.partial, &f.target.out)?;
        rename(&f.target.manifest_partial, &f.target.manifest)?;
    }
    Ok(())
}

/// Writes `bytes` to `path` (creating its folder) and syncs it.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| FileError::new("writing", path, e))?;
    }
    let written = File::create(path).and_then(|mut f| {
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()
    });
    written.map_err(|e| FileError::new("writing", path, e))
}

/// Refuses to resume when the config, backend, rows or program changed since `cp`.
fn check_resumable(cp: &Checkpoint, now: &Checkpoint, partial: &Path) -> anyhow::Result<()> {
    let partial = partial.display();
    let refuse = |what: &str, was: &dyn std::fmt::Display, is: &dyn std::fmt::Display| -> anyhow::Error {
        InputError(format!("cannot resume {partial}: {what} changed (checkpoint: {was}; now: {is}); run without --resume to start over"))
            .into()
    };
    if cp.config_sha256 != now.config_sha256 {
        return Err(refuse("the config", &cp.config_sha256, &now.config_sha256));
    }
    if (cp.backend, cp.precision) != (now.backend, now.precision) {
        return Err(refuse("the backend", &format!("{} {}", cp.backend, cp.precision), &format!("{} {}", now.backend, now.precision)));
    }
    if cp.rows != now.rows {
        return Err(refuse("the rows", &format!("{:?}", cp.rows), &format!("{:?}", now.rows)));
    }
    if (&cp.moatsweep_version, &cp.model) != (&now.moatsweep_version, &now.model) {
        let version = |c: &Checkpoint| format!("moatsweep {}, {}", c.moatsweep_version, c.model);
        return Err(refuse("the program", &version(cp), &version(now)));
    }
    if cp.reduce_state.is_some() != now.reduce_state.is_some() {
        let kind = |c: &Checkpoint| if c.reduce_state.is_some() { "reduced" } else { "rows" };
        return Err(refuse("the kind of run", &kind(cp), &kind(now)));
    }
    Ok(())
}

/// Opens the file at `path` for appending after the first `len` bytes a checkpoint
/// vouches for, once their SHA-256 is `sha256` (bytes after them, an unfinished
/// chunk, are dropped): a `.partial`, or its side log.
fn reopen(path: &Path, len: u64, sha256: &str) -> anyhow::Result<OutputFile> {
    let shown = path.display();
    let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(|e| InputError(format!("cannot resume: {shown}: {e}")))?;
    let hash = match hash_prefix(&mut file, len).map_err(|e| FileError::new("reading", path, e))? {
        Some(h) if hex(&h.clone().finalize()) == sha256 => h,
        Some(_) => {
            return Err(InputError(format!(
                "cannot resume {shown}: its first {len} bytes do not match the SHA-256 in its checkpoint (the file changed after they were written); run without --resume to start over"
            ))
            .into());
        }
        None => {
            return Err(InputError(format!(
                "cannot resume {shown}: it is shorter than the {len} bytes its checkpoint records; run without --resume to start over"
            ))
            .into());
        }
    };
    let cut = file.set_len(len).and_then(|()| file.seek(SeekFrom::End(0)));
    cut.map_err(|e| FileError::new("writing", path, e))?;
    Ok(OutputFile { file, path: path.to_path_buf(), bytes: len, hash })
}

/// Parquet's row group log, cut back to the bytes the checkpoint vouches for once
/// their SHA-256 matches, and the row groups it holds, which must end where the
/// checkpoint says the file does.
fn reopen_log(path: &Path, cp: &Checkpoint) -> anyhow::Result<(OutputFile, Vec<RowGroupMeta>)> {
    let shown = path.display();
    let (Some(len), Some(sha)) = (cp.log_bytes, cp.log_sha256.as_ref()) else {
        return Err(InputError(format!(
            "cannot resume: the checkpoint records no row group log for {shown}; run without --resume to start over"
        ))
        .into());
    };
    let log = reopen(path, len, sha)?;
    let mut bytes = Vec::new();
    let read = File::open(path).and_then(|f| std::io::Read::read_to_end(&mut std::io::Read::take(f, len), &mut bytes));
    read.map_err(|e| FileError::new("reading", path, e))?;
    let groups = parquet::read_log(&bytes).map_err(|e| InputError(format!("cannot resume: {shown}: {e:#}")))?;
    // The file holds its magic and then exactly the logged row groups.
    let end = groups.iter().map(parquet::end_of).max().unwrap_or(if cp.bytes == 0 { 0 } else { parquet::MAGIC.len() as u64 });
    if end != cp.bytes {
        return Err(InputError(format!(
            "cannot resume: the row groups in {shown} end at byte {end}, but its checkpoint records {} bytes; run without --resume to start over",
            cp.bytes
        ))
        .into());
    }
    Ok((log, groups))
}

/// What an abandoned run kept for `--resume`.
#[derive(Clone, Debug)]
pub struct Kept {
    /// The rows done and kept.
    pub done: Range<u64>,
    /// The rows the run covers.
    pub rows: Range<u64>,
    /// Where they are (the rows file's `.partial`, or the checkpoint).
    pub at: PathBuf,
    /// The command line that continues the run (with `--resume`).
    pub command: String,
}

impl Kept {
    /// `rows A..B of A..C are in PATH`.
    pub fn rows_in(&self) -> String {
        format!("rows {}..{} of {}..{} are in {}", self.done.start, self.done.end, self.rows.start, self.rows.end, self.at.display())
    }
}
