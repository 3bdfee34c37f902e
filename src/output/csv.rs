//! The sweep CSV: header, row formatting (shortest round-trip floats, parallel
//! over blocks of rows) and the ordered streaming writer.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use anyhow::Context;
use rayon::prelude::*;

use super::progress::Progress;
use crate::backend::{ChunkSink, Outcomes};
use crate::model::outputs::{self, Column, Empty, OutKind};
use crate::model::{Out, Outcome};
use crate::sweep::Plan;

/// Rows formatted per parallel task.
const FORMAT_BLOCK: usize = 1024;

/// The CSV header: `scenario`, the axis paths, then the output columns (the
/// output table's order, `src/model/outputs.rs`).
pub fn header(plan: &Plan) -> Vec<String> {
    let mut h = vec!["scenario".to_string()];
    h.extend(plan.axes.iter().map(|a| a.path.clone()));
    h.extend(outputs::columns(&plan.firm_names).into_iter().map(|(name, _)| name));
    h
}

/// The header line, quoted where a name needs it.
pub fn header_line(plan: &Plan) -> Vec<u8> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(header(plan)).expect("writing to memory");
    w.into_inner().expect("writing to memory")
}

/// A float type whose values are written in shortest round-trip form.
pub trait Real: Copy + Send + Sync + Into<f64> {
    fn write_to(self, buf: &mut Vec<u8>);
    fn to_f64(self) -> f64;
}

impl Real for f64 {
    fn write_to(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(ryu::Buffer::new().format(self).as_bytes());
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    fn write_to(self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(ryu::Buffer::new().format(self).as_bytes());
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

fn int(buf: &mut Vec<u8>, v: impl itoa::Integer) {
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

/// Appends the CSV row of scenario `row` to `buf`: its index, its axis values and
/// every output column (empty where the table says so and the value is NaN).
pub fn format_row<F: Real>(plan: &Plan, cols: &[Column], row: u64, o: &Outcome<F>, buf: &mut Vec<u8>) {
    int(buf, row);
    for (a, axis) in plan.axes.iter().enumerate() {
        buf.push(b',');
        let v = plan.axis_value(row, a);
        if axis.is_integer() { int(buf, v as i64) } else { v.write_to(buf) }
    }
    for &c in cols {
        buf.push(b',');
        let v = o.get(c);
        match c.spec.kind {
            OutKind::Integer => int(buf, v.to_f64() as i64),
            OutKind::Real if c.spec.empty != Empty::Never && v.to_f64().is_nan() => {}
            OutKind::Real => v.write_to(buf),
        }
    }
    buf.push(b'\n');
}

/// The output columns of `plan`, in CSV order.
pub fn output_columns(plan: &Plan) -> Vec<Column> {
    outputs::columns(&plan.firm_names).into_iter().map(|(_, c)| c).collect()
}

/// Formats a chunk in parallel blocks, in row order.
pub fn format_chunk<F: Real>(plan: &Plan, first_row: u64, outcomes: &[Outcome<F>]) -> Vec<Vec<u8>> {
    let cols = output_columns(plan);
    outcomes
        .par_chunks(FORMAT_BLOCK)
        .enumerate()
        .map(|(b, block)| {
            let mut buf = Vec::with_capacity(block.len() * 256);
            for (k, o) in block.iter().enumerate() {
                format_row(plan, &cols, first_row + (b * FORMAT_BLOCK + k) as u64, o, &mut buf);
            }
            buf
        })
        .collect()
}

/// Where a run stands, written beside `<out>.partial` after every chunk that has
/// reached the disk, so that `run --resume` can continue from there.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub config_sha256: String,
    /// Backend kind and precision, e.g. "cpu f64".
    pub backend: String,
    /// The rows [start, end) the run writes.
    pub rows: [u64; 2],
    /// Rows before this one are in the file.
    pub next_row: u64,
    /// Length of the `.partial` file holding exactly those rows.
    pub bytes: u64,
    pub nonconverged_scenarios: u64,
}

impl Checkpoint {
    pub fn read(path: &std::path::Path) -> std::io::Result<Checkpoint> {
        serde_json::from_slice(&std::fs::read(path)?).map_err(std::io::Error::other)
    }

    fn write(&self, path: &std::path::Path) -> std::io::Result<()> {
        let tmp = super::partial_path(path);
        std::fs::write(&tmp, serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, path)
    }
}

/// Set by Ctrl-C: the sink stops after the chunk in hand has reached the file.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The run was interrupted by Ctrl-C at a chunk boundary.
#[derive(Debug)]
pub struct Interrupted {
    pub next_row: u64,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "interrupted at row {}", self.next_row)
    }
}

impl std::error::Error for Interrupted {}

/// A chunk's bytes and where the run stands once they are written.
struct Message {
    blocks: Vec<Vec<u8>>,
    next_row: u64,
    nonconverged_scenarios: u64,
}

/// Streams formatted chunks to a file on a writer thread, in the order pushed,
/// updating the checkpoint (if any) after each chunk has reached the disk.
pub struct CsvSink<'p> {
    plan: &'p Plan,
    tx: Option<SyncSender<Message>>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
    pub next_row: u64,
    pub rows_written: u64,
    /// Non-converged scenarios among all rows in the file (resumed runs included).
    pub nonconverged_scenarios: u64,
    progress: &'p Progress,
}

impl<'p> CsvSink<'p> {
    /// Starts the writer thread on `file` (positioned at its end), writing the header
    /// first when `header` is set. With `checkpoint`, `(path, state)` gives the state
    /// of the file as it is now; it is rewritten after every chunk.
    pub fn new(
        plan: &'p Plan,
        file: std::fs::File,
        header: bool,
        progress: &'p Progress,
        start: Checkpoint,
        checkpoint: Option<std::path::PathBuf>,
    ) -> Self {
        let (tx, rx) = sync_channel::<Message>(4);
        let head = if header { header_line(plan) } else { Vec::new() };
        let mut state = start.clone();
        let writer = std::thread::spawn(move || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            out.write_all(&head)?;
            state.bytes += head.len() as u64;
            for msg in rx {
                for b in &msg.blocks {
                    out.write_all(b)?;
                    state.bytes += b.len() as u64;
                }
                if let Some(path) = &checkpoint {
                    out.flush()?;
                    out.get_ref().sync_data()?;
                    state.next_row = msg.next_row;
                    state.nonconverged_scenarios = msg.nonconverged_scenarios;
                    state.write(path)?;
                }
            }
            out.flush()?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()
        });
        CsvSink {
            plan,
            tx: Some(tx),
            writer: Some(writer),
            next_row: start.next_row,
            rows_written: 0,
            nonconverged_scenarios: start.nonconverged_scenarios,
            progress,
        }
    }

    /// Waits for every row to reach the file.
    pub fn finish(mut self) -> anyhow::Result<()> {
        drop(self.tx.take());
        let writer = self.writer.take().expect("finish runs once");
        writer.join().map_err(|_| anyhow::anyhow!("the CSV writer thread panicked"))?.context("writing the CSV")
    }

    fn count<F: Real>(&mut self, v: &[Outcome<F>]) {
        self.nonconverged_scenarios += v.iter().filter(|o| o.scenario(Out::NonconvergedMonths).to_f64() > 0.0).count() as u64;
    }

    fn finish_after_error(&mut self) -> anyhow::Result<()> {
        drop(self.tx.take());
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => Err(anyhow::Error::new(e).context("writing the CSV")),
            _ => Err(anyhow::anyhow!("the CSV writer stopped")),
        }
    }
}

impl ChunkSink for CsvSink<'_> {
    fn push(&mut self, first_row: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        anyhow::ensure!(first_row == self.next_row, "chunk out of order: expected row {}, got {first_row}", self.next_row);
        let n = outcomes.len() as u64;
        let blocks = match &outcomes {
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
        let msg = Message { blocks, next_row: self.next_row, nonconverged_scenarios: self.nonconverged_scenarios };
        if self.tx.as_ref().expect("open until finish").send(msg).is_err() {
            // The writer stopped: report its error.
            return self.finish_after_error();
        }
        self.progress.advance(n);
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err(Interrupted { next_row: self.next_row }.into());
        }
        Ok(())
    }
}
