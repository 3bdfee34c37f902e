//! A reduced job (`[reduce]`): the rows (positions) are added to the reduction's
//! state as they come, on the device where the backend can reduce there; at the
//! end the state becomes `<out stem>.reduced.csv`, its manifest and
//! `<out stem>.reduced.state` (what `merge` adds up). The checkpoint carries the
//! state: after every chunk while the state is small (1 MiB), else about once a second
//! (and when a signal stops the run). With `rows = true` the rows file is written
//! too and a checkpoint is recorded only where it holds exactly the rows reduced.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::rows::rows_file;
use super::{Driver, Finished, Job, JobKind, JobOutputs, RunOptions};
use crate::InputError;
use crate::backend::device::{DeviceChunk, PARTIAL_WORDS, SegKind, Source};
use crate::backend::{Backend, BackendInfo, ChunkSink, Outcomes};
use crate::model::outputs::Empty;
use crate::output::checkpoint::Checkpoint;
use crate::output::csv::header;
use crate::output::manifest::Content;
use crate::output::manifest::ReducedManifest;
use crate::output::nonfinite::NonFinite;
use crate::output::sink::{Recorder, RowSink};
use crate::output::transaction::{Stream, Transaction};
use crate::output::{OutputFormat, hex};
use crate::reduce::output::{csv_bytes, header as reduced_header, reduced_path};
use crate::reduce::state::{ReduceState, Reducer, base64, unbase64};
use crate::reduce::{Positions, ReducePlan};

/// While the state's bytes are at most this many, it is checkpointed after every
/// chunk; a larger one at most once per [`CHECKPOINT_EVERY`].
const SMALL_STATE_BYTES: u64 = 1 << 20;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// `<stem>.reduced.csv` -> `<stem>.reduced.state`.
pub fn state_path(reduced: &Path) -> PathBuf {
    reduced.with_extension("state")
}

/// The job of a sweep with `[reduce]`.
pub struct Reduced {
    rp: ReducePlan,
}

impl Reduced {
    pub fn new(rp: &ReducePlan) -> Reduced {
        Reduced { rp: rp.clone() }
    }
}

impl JobKind for Reduced {
    fn transaction(&self, job: &Job) -> Transaction {
        let reduced = reduced_path(&job.output);
        let rows = self.rp.rows.then_some((job.output.as_path(), job.format));
        Transaction::whole(&reduced, rows, vec![state_path(&reduced)])
    }

    fn empty_state(&self) -> Option<String> {
        Some(base64(&ReduceState::new(&self.rp).to_bytes()))
    }

    fn open<'j>(
        &'j self,
        job: &'j Job,
        info: &BackendInfo,
        txn: &Transaction,
        from: &Checkpoint,
        stream: Option<Stream>,
        _opts: &RunOptions,
    ) -> anyhow::Result<Box<dyn JobOutputs + 'j>> {
        let shown = txn.checkpoint.display();
        let bytes = from.reduce_state.as_deref().ok_or_else(|| InputError(format!("cannot resume: {shown} holds no reduction state")))?;
        let state = unbase64(bytes)
            .and_then(|b| ReduceState::from_bytes(&b, &self.rp))
            .map_err(|e| InputError(format!("cannot resume: the reduction state in {shown} does not fit this sweep: {e}")))?;
        let rows = match stream {
            Some(s) => Some(rows_file(job, info, from, s, txn)?),
            None => None,
        };
        Ok(Box::new(ReducedOutputs {
            job,
            rp: &self.rp,
            reducer: Reducer::new(&job.plan, &self.rp, state, from.next_row),
            rows,
            record: txn.recorder(),
            state_bytes: bytes.len() as u64 * 3 / 4,
            nonfinite: from.reduce_nonfinite.clone().unwrap_or_default(),
        }))
    }

    fn solve(&self, job: &Job, backend: &mut dyn Backend, rows: Range<u64>, driver: &mut Driver) -> anyhow::Result<()> {
        let rp = &self.rp;
        let src = Positions { plan: &job.plan, reduce: rp };
        match backend.device_reduce() {
            // The device reduces each block and hands back partials.
            Some(device) => {
                let plan = &job.plan;
                let group = move |p: u64| rp.group(plan, p);
                device.run_reduced(&src, rows, &rp.device_job(plan, &group), driver)
            }
            None => backend.run(&src, rows, driver),
        }
    }
}

/// The reduction's state, and the rows file of `rows = true`.
struct ReducedOutputs<'j> {
    job: &'j Job,
    rp: &'j ReducePlan,
    reducer: Reducer<'j>,
    rows: Option<RowSink<'j>>,
    /// Records a checkpoint when there is no rows file to record it after its bytes.
    record: Recorder,
    /// The size of the state last checkpointed.
    state_bytes: u64,
    /// Non-finite values among the positions pushed, per reduced output.
    nonfinite: NonFinite,
}

impl ReducedOutputs<'_> {
    /// Counts the non-finite values of the reduced outputs among rows `first..`.
    fn count(&mut self, first: u64, outcomes: &Outcomes) {
        fn scan<F: Copy + Into<f64>>(rp: &ReducePlan, nf: &mut NonFinite, first: u64, v: &[crate::model::Outcome<F>]) {
            for (k, o) in v.iter().enumerate() {
                for out in &rp.outputs {
                    if out.is_nonfinite(o) {
                        nf.hit(first + k as u64, &out.name);
                    }
                }
            }
        }
        match outcomes {
            Outcomes::F64(v) => scan(self.rp, &mut self.nonfinite, first, v),
            Outcomes::F32(v) => scan(self.rp, &mut self.nonfinite, first, v),
        }
    }

    /// Counts what a chunk reduced on the device shows of non-finite values: its
    /// rows exactly when they came back with it. Else from the partials: the device
    /// skips a NaN as an empty cell, so a block of one group's rows that counts
    /// fewer values of a column that is never empty than it has rows held that many
    /// NaNs (exact); any other partial whose f32 mean, m2, min or max is not finite
    /// counts once (a lower bound). Both at the chunk's first position.
    fn count_device(&mut self, chunk: &DeviceChunk) {
        if let Some(outcomes) = chunk.outcomes.as_ref() {
            return self.count(chunk.first, outcomes);
        }
        let j = self.rp.outputs.len();
        for (k, seg) in chunk.segments.iter().enumerate() {
            for (o, out) in self.rp.outputs.iter().enumerate() {
                let w = &chunk.partials[(k * j + o) * PARTIAL_WORDS..][..PARTIAL_WORDS];
                let never_empty = matches!(out.source, Source::Column(c) if c.spec.empty == Empty::Never);
                let skipped = if seg.kind == SegKind::Stats && never_empty { seg.len.saturating_sub(w[0]) } else { 0 };
                let unbounded = w[0] > 0 && w[1..5].iter().any(|&b| !f32::from_bits(b).is_finite());
                for _ in 0..skipped.max(u32::from(unbounded)) {
                    self.nonfinite.hit(chunk.first, &out.name);
                }
            }
        }
    }
}

impl JobOutputs for ReducedOutputs<'_> {
    fn push(&mut self, first: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        if let Some(rows) = self.rows.as_mut() {
            rows.send(first, &outcomes)?;
        }
        self.count(first, &outcomes);
        ChunkSink::push(&mut self.reducer, first, outcomes)
    }

    fn push_device(&mut self, chunk: DeviceChunk) -> anyhow::Result<()> {
        if let (Some(rows), Some(outcomes)) = (self.rows.as_mut(), chunk.outcomes.as_ref()) {
            rows.send(chunk.first, outcomes)?;
        }
        self.count_device(&chunk);
        self.reducer.add_device(&chunk)
    }

    fn durable(&self) -> u64 {
        self.reducer.durable()
    }

    fn checkpoint(&mut self, base: &Checkpoint) -> anyhow::Result<()> {
        let next = self.reducer.durable();
        if next != self.reducer.next() {
            return Ok(()); // rows of an unfinished world are held: not a consistent point
        }
        if self.rows.as_ref().is_some_and(|rows| rows.done_row() != next) {
            return Ok(()); // Parquet holds rows until a row group is complete: try after a later chunk
        }
        let state = self.reducer.state.to_bytes();
        self.state_bytes = state.len() as u64;
        // Every position pushed is in the state here, so the count is of those positions.
        let reduce_nonfinite = (!self.nonfinite.is_empty()).then(|| self.nonfinite.clone());
        let cp = Checkpoint { next_row: next, reduce_state: Some(base64(&state)), reduce_nonfinite, ..base.clone() };
        match self.rows.as_mut() {
            Some(rows) => rows.record(cp),
            None => Ok((self.record)(&cp)?),
        }
    }

    fn checkpoint_every(&self) -> Option<Duration> {
        (self.state_bytes > SMALL_STATE_BYTES).then_some(CHECKPOINT_EVERY)
    }

    fn finish(self: Box<Self>) -> anyhow::Result<Finished> {
        let ReducedOutputs { job, rp, reducer, rows, nonfinite, .. } = *self;
        let written = rows.map(RowSink::finish).transpose()?;
        anyhow::ensure!(reducer.durable() == job.rows.end, "internal error: reduced to position {} of {}", reducer.durable(), job.rows.end);
        let state = reducer.state;
        let csv = csv_bytes(&job.plan, rp, &state);
        let state_bytes = state.to_bytes();
        let reduced_out = reduced_path(&job.output);
        let nonconverged = written.as_ref().map_or(0, |w| w.nonconverged_scenarios);
        let rows = written.map(|w| Content {
            columns: header(&job.plan),
            format: (job.format == OutputFormat::Parquet).then_some(job.format),
            sha256: w.sha256,
            bytes: w.bytes,
            nonconverged_scenarios: w.nonconverged_scenarios,
            nonfinite: w.nonfinite,
            verify: None,
            reduce: None,
        });
        let whole = Content {
            columns: reduced_header(&job.plan, rp),
            format: None,
            sha256: hex(&Sha256::digest(&csv)),
            bytes: csv.len() as u64,
            nonconverged_scenarios: nonconverged,
            nonfinite,
            verify: None,
            reduce: Some(ReducedManifest {
                spec: rp.spec(&job.plan),
                groups: rp.groups,
                state: state_path(&reduced_out).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                state_sha256: hex(&Sha256::digest(&state_bytes)),
                rows_output: rp.rows.then(|| job.output.display().to_string()),
            }),
        };
        Ok(Finished { rows, verify: None, whole: Some((csv, whole)), extra: vec![state_bytes] })
    }

    fn abandon(self: Box<Self>) {
        if let Some(rows) = self.rows {
            let _ = rows.abandon();
        }
    }
}
