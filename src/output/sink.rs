//! The ordered streaming writer, one for every format: chunks are encoded on all
//! threads by the format's [`Encoder`] (CSV text, [`super::csv`]; Parquet row
//! groups, [`super::parquet`]), then a writer thread appends the bytes to the file
//! in row order and hashes them as it writes them. When asked ([`RowSink::record`])
//! it syncs what it wrote and then records a checkpoint saying what the file now
//! holds, so that a checkpoint never vouches for bytes that are not on disk. An
//! encoder may hold rows back (Parquet writes whole row groups); the file then
//! "holds" only the rows its bytes complete, and a side log (Parquet: each row
//! group's metadata, for the footer and for `--resume`) is appended and synced
//! with them.

use std::fs::File;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::anyhow;
use sha2::Sha256;

use super::checkpoint::Checkpoint;
use super::csv::{Real, format_chunk, header_line};
use super::nonfinite::{self, NonFinite};
use super::{FileError, HashedWriter};
use crate::backend::{ChunkSink, Outcomes};
use crate::model::outputs::Column;
use crate::model::{Out, Outcome};
use crate::sweep::Plan;

/// What a file holds once a chunk has reached the disk.
#[derive(Clone, Debug)]
pub struct Written {
    /// Rows before this one are in the file.
    pub next_row: u64,
    /// Non-converged scenarios among them (those of a resumed prefix included).
    pub nonconverged_scenarios: u64,
    /// Non-finite values among them (those of a resumed prefix included).
    pub nonfinite: NonFinite,
    /// The file's length.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// The side log's length and SHA-256 (Parquet: row group metadata), if there is one.
    pub log: Option<(u64, String)>,
}

/// Records a checkpoint, on the writer thread, once the bytes it describes are
/// synced (the run's transaction); an error stops the run.
pub type Recorder = Box<dyn FnMut(&Checkpoint) -> Result<(), FileError> + Send>;

/// An output file (or a Parquet file's side log) opened for appending, with what it already holds.
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

/// What an encoder makes of a chunk.
#[derive(Default)]
pub struct Encoded {
    /// Bytes to append, in order.
    pub blocks: Vec<Vec<u8>>,
    /// The file holds every row before this one once `blocks` are appended.
    pub rows_done: u64,
    /// Non-converged scenarios among the rows those blocks complete.
    pub nonconverged: u64,
    /// Bytes to append to the side log.
    pub log: Vec<u8>,
}

/// How solved rows become the bytes of a file.
pub trait Encoder: Send {
    /// Bytes that open a fresh file (the CSV header; Parquet's magic).
    fn head(&mut self) -> Vec<u8>;
    /// Encodes a chunk (rows `first_row..`, in parallel on the calling thread).
    fn encode(&mut self, first_row: u64, outcomes: &Outcomes) -> anyhow::Result<Encoded>;
    /// Whatever is held back, then the bytes that close the file (Parquet: the footer).
    fn finish(&mut self) -> anyhow::Result<Encoded>;
}

/// CSV: a header line, then one line per row, nothing held back.
pub struct CsvEncoder<'p> {
    pub plan: &'p Plan,
}

fn nonconverged<F: Real>(v: &[Outcome<F>]) -> u64 {
    v.iter().filter(|o| o.scenario(Out::NonconvergedMonths).to_f64() > 0.0).count() as u64
}

/// Non-converged scenarios among a chunk's rows.
pub fn count_nonconverged(outcomes: &Outcomes) -> u64 {
    match outcomes {
        Outcomes::F64(v) => nonconverged(v),
        Outcomes::F32(v) => nonconverged(v),
    }
}

impl Encoder for CsvEncoder<'_> {
    fn head(&mut self) -> Vec<u8> {
        header_line(self.plan)
    }

    fn encode(&mut self, first_row: u64, outcomes: &Outcomes) -> anyhow::Result<Encoded> {
        let blocks = match outcomes {
            Outcomes::F64(v) => format_chunk(self.plan, first_row, v),
            Outcomes::F32(v) => format_chunk(self.plan, first_row, v),
        };
        Ok(Encoded { blocks, rows_done: first_row + outcomes.len() as u64, nonconverged: count_nonconverged(outcomes), log: Vec::new() })
    }

    fn finish(&mut self) -> anyhow::Result<Encoded> {
        Ok(Encoded::default())
    }
}

/// A chunk's bytes and where the run stands once they are written.
struct Message {
    blocks: Vec<Vec<u8>>,
    log: Vec<u8>,
    next_row: u64,
    nonconverged_scenarios: u64,
    nonfinite: NonFinite,
    /// Sync, then record this checkpoint with what the file holds.
    record: Option<Checkpoint>,
    /// The file's closing bytes (for a test hook, [`crate::testhook`]).
    closing: bool,
}

/// Streams encoded chunks to a file on a writer thread, in the order pushed.
pub struct RowSink<'p> {
    encoder: Box<dyn Encoder + 'p>,
    tx: Option<SyncSender<Message>>,
    writer: Option<JoinHandle<anyhow::Result<Written>>>,
    /// The next row expected.
    pub next_row: u64,
    /// Rows the file holds once the bytes sent so far are written.
    done_row: u64,
    /// Non-converged scenarios among the rows the file holds (resumed runs included).
    pub nonconverged_scenarios: u64,
    /// The output columns, for counting non-finite values.
    columns: Vec<(String, Column)>,
    /// Non-finite values among the rows the file holds (resumed runs included).
    nonfinite: NonFinite,
    /// Non-finite values of rows sent but held back by the encoder: (row, column).
    held: Vec<(u64, usize)>,
}

impl<'p> RowSink<'p> {
    /// A CSV of `plan` from its first row into `out`, header first, no checkpoints.
    pub fn csv(plan: &'p Plan, out: OutputFile) -> Self {
        Self::start(Box::new(CsvEncoder { plan }), &plan.firm_names, out, None, true, 0, 0, NonFinite::default(), None)
    }

    /// Starts the writer thread on `out` (and the side log `log`), writing the
    /// encoder's head first when the file is `fresh`. The file holds the rows before `next_row`,
    /// `nonconverged_scenarios` of them non-converged, with the non-finite values
    /// `nonfinite`; `recorder` records the checkpoints asked for with
    /// [`RowSink::record`]. `firms` name the output columns.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        mut encoder: Box<dyn Encoder + 'p>,
        firms: &[String],
        out: OutputFile,
        log: Option<OutputFile>,
        fresh: bool,
        next_row: u64,
        nonconverged_scenarios: u64,
        nonfinite: NonFinite,
        recorder: Option<Recorder>,
    ) -> Self {
        let (tx, rx) = sync_channel::<Message>(8);
        let head = if fresh { encoder.head() } else { Vec::new() };
        let start_nonfinite = nonfinite.clone();
        let writer = std::thread::spawn(move || -> anyhow::Result<Written> {
            let mut a = HashedWriter::resume(out.path, out.file, 1 << 20, out.bytes, out.hash);
            let mut log = log.map(|l| HashedWriter::resume(l.path, l.file, 1 << 16, l.bytes, l.hash));
            let mut state = Written {
                next_row,
                nonconverged_scenarios,
                nonfinite: start_nonfinite,
                bytes: a.bytes(),
                sha256: String::new(),
                log: None,
            };
            let mut recorder = recorder;
            a.put(&head)?;
            let sync = |a: &mut HashedWriter, log: &mut Option<HashedWriter>, state: &mut Written| -> Result<(), FileError> {
                a.sync()?;
                state.bytes = a.bytes();
                state.sha256 = a.sha256();
                if let Some(l) = log.as_mut() {
                    l.sync()?;
                    state.log = Some((l.bytes(), l.sha256()));
                }
                Ok(())
            };
            for msg in rx {
                if msg.closing && crate::testhook::abort_while_closing() {
                    let bytes = msg.blocks.concat();
                    a.put(&bytes[..bytes.len() / 2])?;
                    a.sync()?;
                    eprintln!("test hook: aborting halfway through the closing bytes");
                    std::process::abort();
                }
                for b in &msg.blocks {
                    a.put(b)?;
                }
                if let Some(l) = log.as_mut() {
                    l.put(&msg.log)?;
                }
                state.next_row = msg.next_row;
                state.nonconverged_scenarios = msg.nonconverged_scenarios;
                state.nonfinite = msg.nonfinite;
                if let Some(template) = msg.record {
                    sync(&mut a, &mut log, &mut state)?;
                    if let Some(record) = recorder.as_mut() {
                        record(&state.checkpoint(template))?;
                    }
                }
            }
            sync(&mut a, &mut log, &mut state)?;
            crate::cputime::thread_ending();
            Ok(state)
        });
        RowSink {
            encoder,
            tx: Some(tx),
            writer: Some(writer),
            next_row,
            done_row: next_row,
            nonconverged_scenarios,
            columns: nonfinite::columns(firms),
            nonfinite,
            held: Vec::new(),
        }
    }

    /// Rows the file holds once the bytes sent so far are written.
    pub fn done_row(&self) -> u64 {
        self.done_row
    }

    /// Writes what the encoder held back and the file's tail, then waits for every
    /// byte to reach the file; returns what the file holds.
    pub fn finish(mut self) -> anyhow::Result<Written> {
        match self.encoder.finish() {
            Ok(e) => {
                if !e.blocks.is_empty() || !e.log.is_empty() {
                    self.nonconverged_scenarios += e.nonconverged;
                    self.done_row = self.next_row;
                    self.settle_nonfinite();
                    self.send_message(e.blocks, e.log, None, true)?;
                }
                self.stop_writer()
            }
            Err(e) => {
                let _ = self.stop_writer();
                Err(e)
            }
        }
    }

    /// Stops after a failure: what was sent is written (and the checkpoints asked
    /// for recorded), nothing is closed; the writer's own error, if it had one.
    pub fn abandon(mut self) -> anyhow::Result<()> {
        self.stop_writer().map(|_| ())
    }

    /// Closes the channel and waits for the writer thread: its result, or (when it
    /// was already collected) an error saying the writer stopped.
    fn stop_writer(&mut self) -> anyhow::Result<Written> {
        drop(self.tx.take());
        match self.writer.take() {
            Some(w) => w.join().map_err(|_| anyhow!("the writer thread panicked"))?,
            None => Err(anyhow!("the writer had stopped")),
        }
    }

    fn send_message(&mut self, blocks: Vec<Vec<u8>>, log: Vec<u8>, record: Option<Checkpoint>, closing: bool) -> anyhow::Result<()> {
        let msg = Message {
            blocks,
            log,
            next_row: self.done_row,
            nonconverged_scenarios: self.nonconverged_scenarios,
            nonfinite: self.nonfinite.clone(),
            record,
            closing,
        };
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(msg).is_ok());
        if !sent {
            // The writer stopped: its error says why.
            return Err(self.stop_writer().err().unwrap_or_else(|| anyhow!("the writer stopped early")));
        }
        Ok(())
    }

    /// Asks the writer to record `template` as a checkpoint once every byte sent so
    /// far is synced, with what the file then holds (rows before [`Self::done_row`],
    /// its length, SHA-256 and side log).
    pub fn record(&mut self, template: Checkpoint) -> anyhow::Result<()> {
        self.send_message(Vec::new(), Vec::new(), Some(template), false)
    }

    /// Encodes a chunk and hands it to the writer thread.
    pub fn send(&mut self, first_row: u64, outcomes: &Outcomes) -> anyhow::Result<()> {
        anyhow::ensure!(first_row == self.next_row, "chunk out of order: expected row {}, got {first_row}", self.next_row);
        let e = self.encoder.encode(first_row, outcomes)?;
        let n = outcomes.len() as u64;
        self.held.extend(match outcomes {
            Outcomes::F64(v) => nonfinite::scan(&self.columns, first_row, v),
            Outcomes::F32(v) => nonfinite::scan(&self.columns, first_row, v),
        });
        self.next_row += n;
        self.done_row = e.rows_done;
        self.nonconverged_scenarios += e.nonconverged;
        self.settle_nonfinite();
        self.send_message(e.blocks, e.log, None, false)
    }

    /// Counts the held non-finite values of rows the file now holds.
    fn settle_nonfinite(&mut self) {
        let done = self.done_row;
        let columns = &self.columns;
        let nonfinite = &mut self.nonfinite;
        self.held.retain(|&(row, j)| {
            if row < done {
                nonfinite.hit(row, &columns[j].0);
                false
            } else {
                true
            }
        });
    }
}

impl Written {
    /// `template` completed with what the file holds.
    fn checkpoint(&self, template: Checkpoint) -> Checkpoint {
        Checkpoint {
            next_row: self.next_row,
            bytes: self.bytes,
            sha256: self.sha256.clone(),
            nonconverged_scenarios: self.nonconverged_scenarios,
            nonfinite: (!self.nonfinite.is_empty()).then(|| self.nonfinite.clone()),
            log_bytes: self.log.as_ref().map(|l| l.0),
            log_sha256: self.log.as_ref().map(|l| l.1.clone()),
            ..template
        }
    }
}

impl ChunkSink for RowSink<'_> {
    fn push(&mut self, first_row: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        self.send(first_row, &outcomes)
    }
}
