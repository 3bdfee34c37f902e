//! The ordered streaming writer: chunks are formatted on all threads, then a
//! writer thread appends them to the file in row order and hashes the bytes as
//! it writes them. After each chunk that has reached the disk it reports what the
//! file now holds ([`Written`]) to whoever records it (the run's checkpoint).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::anyhow;
use sha2::{Digest, Sha256};

use super::FileError;
use super::csv::{Real, format_chunk, header_line};
use super::progress::Progress;
use crate::backend::{ChunkSink, Outcomes};
use crate::interrupt::{self, Interrupted};
use crate::model::{Out, Outcome};
use crate::sweep::Plan;

/// What a file holds once a chunk has reached the disk.
#[derive(Clone, Debug)]
pub struct Written {
    /// Rows before this one are in the file.
    pub next_row: u64,
    /// Non-converged scenarios among them (those of a resumed prefix included).
    pub nonconverged_scenarios: u64,
    /// The file's length.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
}

/// Called on the writer thread after each chunk is synced; an error stops the run.
pub type OnDurable = Box<dyn FnMut(&Written) -> anyhow::Result<()> + Send>;

/// An output file opened for appending, with what it already holds.
pub struct OutputFile {
    /// Positioned at its end.
    pub file: File,
    /// Its path, for messages and for noticing the file being removed.
    pub path: PathBuf,
    /// Bytes already in the file.
    pub bytes: u64,
    /// SHA-256 state of those bytes.
    pub hash: Sha256,
}

/// A chunk's bytes and where the run stands once they are written.
struct Message {
    blocks: Vec<Vec<u8>>,
    next_row: u64,
    nonconverged_scenarios: u64,
    /// Sync now and say what the file holds (see [`CsvSink::durable_now`]).
    reply: Option<SyncSender<Written>>,
}

/// Streams formatted chunks to a file on a writer thread, in the order pushed.
pub struct CsvSink<'p> {
    plan: &'p Plan,
    tx: Option<SyncSender<Message>>,
    writer: Option<JoinHandle<anyhow::Result<Written>>>,
    pub next_row: u64,
    pub rows_written: u64,
    /// Non-converged scenarios among all rows in the file (resumed runs included).
    pub nonconverged_scenarios: u64,
    progress: &'p Progress,
}

impl<'p> CsvSink<'p> {
    /// Starts the writer thread on `out`, writing the header first when `header` is
    /// set. The file holds the rows before `next_row`, `nonconverged_scenarios` of
    /// them non-converged. With `on_durable`, every chunk is synced to the disk and
    /// reported before the next one is written.
    pub fn new(
        plan: &'p Plan,
        out: OutputFile,
        header: bool,
        progress: &'p Progress,
        next_row: u64,
        nonconverged_scenarios: u64,
        on_durable: Option<OnDurable>,
    ) -> Self {
        let (tx, rx) = sync_channel::<Message>(4);
        let head = if header { header_line(plan) } else { Vec::new() };
        let writer = std::thread::spawn(move || -> anyhow::Result<Written> {
            let mut a = Appender { path: out.path, w: BufWriter::with_capacity(1 << 20, out.file), bytes: out.bytes, hash: out.hash };
            let mut state = Written { next_row, nonconverged_scenarios, bytes: a.bytes, sha256: String::new() };
            let mut on_durable = on_durable;
            a.put(&head)?;
            for msg in rx {
                for b in &msg.blocks {
                    a.put(b)?;
                }
                state.next_row = msg.next_row;
                state.nonconverged_scenarios = msg.nonconverged_scenarios;
                if on_durable.is_some() || msg.reply.is_some() {
                    a.sync()?;
                    state.bytes = a.bytes;
                    state.sha256 = super::hex(&a.hash.clone().finalize());
                    if let Some(record) = on_durable.as_mut() {
                        record(&state)?;
                    }
                    if let Some(reply) = msg.reply {
                        let _ = reply.send(state.clone());
                    }
                }
            }
            a.sync()?;
            state.bytes = a.bytes;
            state.sha256 = super::hex(&a.hash.finalize());
            Ok(state)
        });
        CsvSink { plan, tx: Some(tx), writer: Some(writer), next_row, rows_written: 0, nonconverged_scenarios, progress }
    }

    /// Waits for every row to reach the file; returns what the file holds.
    pub fn finish(mut self) -> anyhow::Result<Written> {
        self.stop_writer()
    }

    /// Closes the channel and waits for the writer thread: its result, or (when it
    /// was already collected) an error saying the writer stopped.
    fn stop_writer(&mut self) -> anyhow::Result<Written> {
        drop(self.tx.take());
        match self.writer.take() {
            Some(w) => w.join().map_err(|_| anyhow!("the CSV writer thread panicked"))?,
            None => Err(anyhow!("the CSV writer had stopped")),
        }
    }

    /// Waits until every row pushed so far is synced to the disk; returns what the
    /// file then holds (a reduced run records it in its own checkpoint).
    pub fn durable_now(&mut self) -> anyhow::Result<Written> {
        let (tx, rx) = sync_channel(1);
        let msg =
            Message { blocks: Vec::new(), next_row: self.next_row, nonconverged_scenarios: self.nonconverged_scenarios, reply: Some(tx) };
        let sent = self.tx.as_ref().is_some_and(|t| t.send(msg).is_ok());
        match rx.recv() {
            Ok(w) if sent => Ok(w),
            _ => Err(self.stop_writer().err().unwrap_or_else(|| anyhow!("the CSV writer stopped early"))),
        }
    }

    /// Formats a chunk and hands it to the writer thread (no progress, no interrupt check).
    pub fn send(&mut self, first_row: u64, outcomes: &Outcomes) -> anyhow::Result<()> {
        anyhow::ensure!(first_row == self.next_row, "chunk out of order: expected row {}, got {first_row}", self.next_row);
        let n = outcomes.len() as u64;
        let blocks = match outcomes {
            Outcomes::F64(v) => {
                self.count(v);
                format_chunk(self.plan, first_row, v)
            }
            Outcomes::F32(v) => {
                self.count(v);
                format_chunk(self.plan, first_row, v)
            }
        };
        self.next_row += n;
        self.rows_written += n;
        let msg = Message { blocks, next_row: self.next_row, nonconverged_scenarios: self.nonconverged_scenarios, reply: None };
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if !sent {
            // The writer stopped: its error says why.
            return Err(self.stop_writer().err().unwrap_or_else(|| anyhow!("the CSV writer stopped early")));
        }
        Ok(())
    }

    fn count<F: Real>(&mut self, v: &[Outcome<F>]) {
        self.nonconverged_scenarios += v.iter().filter(|o| o.scenario(Out::NonconvergedMonths).to_f64() > 0.0).count() as u64;
    }
}

/// The writer thread's end of the file: appends and hashes.
struct Appender {
    path: PathBuf,
    w: BufWriter<File>,
    bytes: u64,
    hash: Sha256,
}

impl Appender {
    fn put(&mut self, b: &[u8]) -> Result<(), FileError> {
        self.w.write_all(b).map_err(|e| FileError::new("writing", &self.path, e))?;
        self.hash.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }

    /// Flushes and syncs the file, and checks that it is still where it was.
    fn sync(&mut self) -> Result<(), FileError> {
        let synced = self.w.flush().and_then(|()| self.w.get_ref().sync_data()).and_then(|()| still_there(&self.path, self.w.get_ref()));
        synced.map_err(|e| FileError::new("writing", &self.path, e))
    }
}

/// Fails when `path` no longer names `file` (removed or replaced during the run),
/// so that rows are not written on into a file nobody will find.
fn still_there(path: &Path, file: &File) -> std::io::Result<()> {
    let gone = || std::io::Error::new(std::io::ErrorKind::NotFound, "the file was removed or replaced during the run");
    let on_disk = std::fs::metadata(path).map_err(|e| if e.kind() == std::io::ErrorKind::NotFound { gone() } else { e })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let open = file.metadata()?;
        if (on_disk.dev(), on_disk.ino()) != (open.dev(), open.ino()) {
            return Err(gone());
        }
    }
    #[cfg(not(unix))]
    let _ = (on_disk, file);
    Ok(())
}

impl ChunkSink for CsvSink<'_> {
    fn push(&mut self, first_row: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        self.send(first_row, &outcomes)?;
        self.progress.advance(outcomes.len() as u64);
        if interrupt::requested() {
            return Err(Interrupted { next_row: self.next_row }.into());
        }
        Ok(())
    }
}
