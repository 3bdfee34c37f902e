//! A job of rows: every solved row goes to the rows file (CSV or Parquet) in row
//! order, a checkpoint after every chunk; a GPU run keeps a sample of rows to
//! re-solve on the f64 reference (`--verify`).

use std::ops::Range;

use super::{Driver, Finished, Job, JobKind, JobOutputs, RunOptions};
use crate::backend::{Backend, BackendInfo, BackendKind, Outcomes, Precision};
use crate::model::Outcome;
use crate::output::OutputFormat;
use crate::output::checkpoint::Checkpoint;
use crate::output::csv::header;
use crate::output::manifest::Content;
use crate::output::parquet;
use crate::output::sink::{CsvEncoder, Encoder, RowSink};
use crate::output::transaction::{Stream, Transaction};
use crate::verify;

/// The job of a sweep without `[reduce]`.
pub struct Rows;

impl JobKind for Rows {
    fn transaction(&self, job: &Job) -> Transaction {
        Transaction::rows(&job.output, job.format)
    }

    fn open<'j>(
        &'j self,
        job: &'j Job,
        info: &BackendInfo,
        txn: &Transaction,
        from: &Checkpoint,
        stream: Option<Stream>,
        opts: &RunOptions,
    ) -> anyhow::Result<Box<dyn JobOutputs + 'j>> {
        let stream = stream.ok_or_else(|| anyhow::anyhow!("internal error: a job of rows without its rows file"))?;
        let sink = rows_file(job, info, from, stream, txn)?;
        let verify_rows = match (info.precision, opts.verify) {
            (Precision::F32, k) => k.unwrap_or(verify::DEFAULT_ROWS),
            (Precision::F64, Some(_)) if !opts.quiet => {
                eprintln!("note: --verify compares a GPU run with the CPU reference; this run is the CPU reference");
                0
            }
            (Precision::F64, _) => 0,
        };
        let sample = verify::sample(from.next_row..job.rows.end, verify_rows);
        Ok(Box::new(RowsOutputs { job, sink, sample, kept: Vec::new(), format: job.format, verify: verify_rows > 0 }))
    }

    fn solve(&self, job: &Job, backend: &mut dyn Backend, rows: Range<u64>, driver: &mut Driver) -> anyhow::Result<()> {
        backend.run(&job.plan, rows, driver)
    }
}

/// The rows file of `job` opened on `stream` from the checkpoint `from`, its
/// checkpoints recorded through `txn`.
pub fn rows_file<'j>(
    job: &'j Job,
    info: &BackendInfo,
    from: &Checkpoint,
    mut stream: Stream,
    txn: &Transaction,
) -> anyhow::Result<RowSink<'j>> {
    let row_groups = std::mem::take(&mut stream.row_groups);
    let encoder = encoder(job, info.kind, info.precision, from.next_row, stream.file.bytes, row_groups)?;
    Ok(RowSink::start(
        encoder,
        &job.plan.firm_names,
        stream.file,
        stream.log,
        stream.fresh,
        from.next_row,
        from.nonconverged_scenarios,
        from.nonfinite.clone().unwrap_or_default(),
        Some(txn.recorder()),
    ))
}

/// The encoder of a job's rows file: CSV, or Parquet continuing after
/// `row_groups` in a file that holds `bytes` bytes.
fn encoder<'p>(
    job: &'p Job,
    kind: BackendKind,
    precision: Precision,
    from: u64,
    bytes: u64,
    row_groups: Vec<parquet::RowGroupMeta>,
) -> anyhow::Result<Box<dyn Encoder + 'p>> {
    let plan = &job.plan;
    Ok(match job.format {
        OutputFormat::Csv => Box::new(CsvEncoder { plan }),
        OutputFormat::Parquet => {
            let layout = parquet::Layout::of(plan, precision)?;
            let provenance = parquet::provenance(plan, &job.config_sha256, kind, precision, [job.rows.start, job.rows.end]);
            Box::new(parquet::ParquetEncoder::new(Some(plan), layout, precision, &provenance, from, bytes, row_groups))
        }
    })
}

/// The rows file being written, and the GPU rows kept for `--verify`.
struct RowsOutputs<'j> {
    job: &'j Job,
    sink: RowSink<'j>,
    /// Rows to keep for `--verify` (sorted), and those kept.
    sample: Vec<u64>,
    kept: Vec<(u64, Outcome<f32>)>,
    format: OutputFormat,
    verify: bool,
}

impl JobOutputs for RowsOutputs<'_> {
    fn push(&mut self, first: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        if let Outcomes::F32(v) = &outcomes {
            let end = first + v.len() as u64;
            for &r in self.sample.iter().filter(|&&r| r >= first && r < end) {
                self.kept.push((r, v[(r - first) as usize]));
            }
        }
        self.sink.send(first, &outcomes)
    }

    fn durable(&self) -> u64 {
        self.sink.done_row()
    }

    fn checkpoint(&mut self, base: &Checkpoint) -> anyhow::Result<()> {
        self.sink.record(base.clone())
    }

    fn finish(self: Box<Self>) -> anyhow::Result<Finished> {
        let RowsOutputs { job, sink, kept, format, verify, .. } = *self;
        let written = sink.finish()?;
        anyhow::ensure!(written.next_row == job.rows.end, "internal error: stopped at row {} of {}", written.next_row, job.rows.end);
        // A resumed run verifies the rows it solved (none, when it resumed at the end).
        let report = (verify && !kept.is_empty()).then(|| verify::verify(&job.plan, &job.plan.firm_names, &kept));
        let content = Content {
            columns: header(&job.plan),
            format: (format == OutputFormat::Parquet).then_some(format),
            sha256: written.sha256,
            bytes: written.bytes,
            nonconverged_scenarios: written.nonconverged_scenarios,
            nonfinite: written.nonfinite,
            verify: report.clone(),
            reduce: None,
        };
        Ok(Finished { rows: Some(content), verify: report, whole: None, extra: Vec::new() })
    }

    fn abandon(self: Box<Self>) {
        let _ = self.sink.abandon();
    }
}
