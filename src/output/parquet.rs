//! The sweep as Parquet (`[output] format = "parquet"` or `run --format parquet`),
//! beside the CSV writer: an [`Encoder`] for the one ordered writer
//! ([`super::sink`]), and the reader that `plot`, `summarize`, `sensitivity`,
//! `discover`, `check` and `merge` use.
//!
//! Columns are typed: `scenario` u64 (INT64, unsigned), integer axes and integer
//! outputs (exit months, generations, iteration counts) INT32, real axes DOUBLE,
//! real outputs DOUBLE from the CPU backend and FLOAT from the GPU backend (the
//! key-value `moatsweep.float_precision` says which), a price of a product not
//! offered null. Floats use BYTE_STREAM_SPLIT, every column zstd, no dictionary,
//! chunk-level statistics, no page index.
//!
//! Row groups hold the rows [k R, (k + 1) R) of the sweep (R = [`ROW_GROUP_ROWS`];
//! a block's first and last may be shorter), whatever the chunks, so the bytes do
//! not depend on the thread count or chunk size, and `merge` re-encodes shards into
//! the bytes of one run. The file is assembled here rather than by the crate's file
//! writer so that a run can resume: each row group's column chunks are encoded
//! apart (in parallel), placed at the file's end, and their metadata, with the
//! offsets they landed at, appended to a side log (`<file>.partial.rowgroups`)
//! that the checkpoint vouches for; the footer is written from that metadata when
//! the last row is in. The footer's key-value metadata holds the manifest's
//! reproducible part (`moatsweep.manifest`: config, its SHA-256, backend kind and
//! precision, columns, rows); the manifest itself is beside the file.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parquet::basic::{Compression, Encoding, IntType, LogicalType, Repetition, Type as Physical, ZstdLevel};
use parquet::column::reader::ColumnReader;
use parquet::column::writer::{ColumnCloseResult, ColumnWriter, get_column_writer};
use parquet::file::metadata::{
    FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataOptions, ParquetMetaDataReader, ParquetMetaDataWriter, RowGroupMetaData,
};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterPropertiesPtr, WriterVersion};
use parquet::file::reader::{FileReader, RowGroupReader};
use parquet::file::serialized_reader::SerializedFileReader;
use parquet::file::writer::{SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{ColumnPath, SchemaDescPtr, SchemaDescriptor, Type, TypePtr};
use rayon::prelude::*;

use super::sink::{Encoded, Encoder};
use crate::backend::{Outcomes, Precision};
use crate::model::Outcome;
use crate::model::outputs::{self, Column, Empty, OutKind};
use crate::sweep::Plan;
use crate::sweep::provenance::{Footer, FooterBackend};

/// The manifest's reproducible part, kept in the footer (`moatsweep.manifest`):
/// what made the rows, not when or where (no times, command, threads or paths), so
/// that a file's bytes reproduce and merged shards equal one run.
pub fn provenance(plan: &Plan, config_sha256: &str, kind: crate::backend::BackendKind, precision: Precision, rows: [u64; 2]) -> Footer {
    Footer {
        backend: FooterBackend { kind, precision },
        columns: super::csv::header(plan),
        config: plan.resolved(None),
        config_sha256: config_sha256.to_string(),
        model: super::manifest::MODEL.to_string(),
        moatsweep_version: env!("CARGO_PKG_VERSION").to_string(),
        rows,
        scenarios: plan.rows,
    }
}

/// Rows per row group (aligned to the sweep's row index).
pub const ROW_GROUP_ROWS: u64 = 1 << 17;
/// The bytes every Parquet file starts and ends with.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// `<file>.partial.rowgroups`: the side log of a Parquet run.
pub fn log_path(out: &Path) -> PathBuf {
    let mut s = super::partial_path(out).into_os_string();
    s.push(".rowgroups");
    PathBuf::from(s)
}

/// Whether the file at `path` is Parquet (its first four bytes).
pub fn is_parquet(path: &Path) -> bool {
    let mut head = [0u8; 4];
    File::open(path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok() && &head == MAGIC
}

/// Where a column's values come from.
#[derive(Clone, Copy, Debug)]
enum Source {
    Scenario,
    Axis { a: usize, int: bool },
    Output { col: Column, int: bool, optional: bool },
}

/// A sweep's Parquet schema and writer properties.
pub struct Layout {
    descr: SchemaDescPtr,
    props: WriterPropertiesPtr,
    sources: Vec<Source>,
    /// The `nonconverged_months` column (non-converged rows are counted from it).
    nonconverged: Option<usize>,
}

fn primitive(name: &str, t: Physical, logical: Option<LogicalType>, optional: bool) -> anyhow::Result<TypePtr> {
    let rep = if optional { Repetition::OPTIONAL } else { Repetition::REQUIRED };
    Ok(Arc::new(Type::primitive_type_builder(name, t).with_repetition(rep).with_logical_type(logical).build()?))
}

/// The writer properties (the same for every file, so that bytes reproduce).
fn properties(descr: &SchemaDescriptor) -> anyhow::Result<WriterPropertiesPtr> {
    let mut b = WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .set_created_by(format!("moatsweep {} (parquet-rs 60)", env!("CARGO_PKG_VERSION")));
    for c in descr.columns() {
        if matches!(c.physical_type(), Physical::FLOAT | Physical::DOUBLE) {
            b = b.set_column_encoding(ColumnPath::new(vec![c.name().to_string()]), Encoding::BYTE_STREAM_SPLIT);
        }
    }
    Ok(Arc::new(b.build()))
}

impl Layout {
    /// The layout of `plan`'s rows in `precision`: the CSV's columns, typed.
    pub fn of(plan: &Plan, precision: Precision) -> anyhow::Result<Layout> {
        let int32 = || Some(LogicalType::Integer(IntType { bit_width: 32, is_signed: true }));
        let mut fields =
            vec![primitive("scenario", Physical::INT64, Some(LogicalType::Integer(IntType { bit_width: 64, is_signed: false })), false)?];
        let mut sources = vec![Source::Scenario];
        for (a, axis) in plan.axes.iter().enumerate() {
            let int = axis.is_integer();
            fields.push(if int {
                primitive(&axis.path, Physical::INT32, int32(), false)?
            } else {
                primitive(&axis.path, Physical::DOUBLE, None, false)?
            });
            sources.push(Source::Axis { a, int });
        }
        let real = if precision == Precision::F32 { Physical::FLOAT } else { Physical::DOUBLE };
        let mut nonconverged = None;
        for (name, col) in outputs::columns(&plan.firm_names) {
            let int = col.spec.kind == OutKind::Integer;
            let optional = col.spec.empty != Empty::Never;
            if col.spec.out == crate::model::Out::NonconvergedMonths {
                nonconverged = Some(sources.len());
            }
            fields.push(if int { primitive(&name, Physical::INT32, int32(), optional)? } else { primitive(&name, real, None, optional)? });
            sources.push(Source::Output { col, int, optional });
        }
        let schema = Arc::new(Type::group_type_builder("moatsweep").with_fields(fields).build()?);
        let descr = Arc::new(SchemaDescriptor::new(schema));
        let props = properties(&descr)?;
        Ok(Layout { descr, props, sources, nonconverged })
    }

    /// The layout of an existing file (for `merge`, which re-encodes its columns).
    pub fn from_file(f: &ParquetFile) -> anyhow::Result<Layout> {
        let descr = f.reader.metadata().file_metadata().schema_descr_ptr();
        let props = properties(&descr)?;
        let nonconverged = descr.columns().iter().position(|c| c.name() == "nonconverged_months");
        let sources = descr.columns().iter().map(|_| Source::Scenario).collect();
        Ok(Layout { descr, props, sources, nonconverged })
    }

    /// The column names, in order (the CSV's header).
    pub fn names(&self) -> Vec<String> {
        self.descr.columns().iter().map(|c| c.name().to_string()).collect()
    }
}

/// One column's values for a run of rows: only the present ones, with definition
/// levels (1 present, 0 null) for optional columns.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    I64(Vec<i64>),
    I32(Vec<i32>),
    F64(Vec<f64>),
    F32(Vec<f32>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct ColumnData {
    pub data: Data,
    pub def: Option<Vec<i16>>,
}

impl ColumnData {
    fn extend(&mut self, o: ColumnData) {
        match (&mut self.data, o.data) {
            (Data::I64(a), Data::I64(b)) => a.extend(b),
            (Data::I32(a), Data::I32(b)) => a.extend(b),
            (Data::F64(a), Data::F64(b)) => a.extend(b),
            (Data::F32(a), Data::F32(b)) => a.extend(b),
            _ => unreachable!("columns keep their type"),
        }
        if let (Some(a), Some(b)) = (self.def.as_mut(), o.def) {
            a.extend(b);
        }
    }

    /// Splits off the rows from `rows` on.
    fn split_off(&mut self, rows: usize) -> ColumnData {
        let values = match &self.def {
            Some(d) => d[..rows].iter().filter(|&&l| l == 1).count(),
            None => rows,
        };
        let data = match &mut self.data {
            Data::I64(v) => Data::I64(v.split_off(values)),
            Data::I32(v) => Data::I32(v.split_off(values)),
            Data::F64(v) => Data::F64(v.split_off(values)),
            Data::F32(v) => Data::F32(v.split_off(values)),
        };
        ColumnData { data, def: self.def.as_mut().map(|d| d.split_off(rows)) }
    }

    /// Rows (values plus nulls).
    pub fn rows(&self) -> usize {
        match &self.def {
            Some(d) => d.len(),
            None => match &self.data {
                Data::I64(v) => v.len(),
                Data::I32(v) => v.len(),
                Data::F64(v) => v.len(),
                Data::F32(v) => v.len(),
            },
        }
    }

    /// Every row's value as f64 (NaN for a null).
    pub fn to_f64(&self) -> Vec<f64> {
        let values: Vec<f64> = match &self.data {
            Data::I64(v) => v.iter().map(|&x| x as u64 as f64).collect(),
            Data::I32(v) => v.iter().map(|&x| x as f64).collect(),
            Data::F64(v) => v.clone(),
            Data::F32(v) => v.iter().map(|&x| x as f64).collect(),
        };
        match &self.def {
            None => values,
            Some(d) => {
                let mut it = values.into_iter();
                d.iter().map(|&l| if l == 1 { it.next().unwrap_or(f64::NAN) } else { f64::NAN }).collect()
            }
        }
    }
}

/// The columns of rows `first..` of `plan`.
fn chunk_columns<F: Copy + Send + Sync + Into<f64>>(
    plan: &Plan,
    layout: &Layout,
    first: u64,
    v: &[Outcome<F>],
    f32: bool,
) -> Vec<ColumnData> {
    let rows = first..first + v.len() as u64;
    layout
        .sources
        .par_iter()
        .map(|s| match *s {
            Source::Scenario => ColumnData { data: Data::I64(rows.clone().map(|r| r as i64).collect()), def: None },
            Source::Axis { a, int: true } => {
                ColumnData { data: Data::I32(rows.clone().map(|r| plan.axis_value(r, a) as i32).collect()), def: None }
            }
            Source::Axis { a, int: false } => {
                ColumnData { data: Data::F64(rows.clone().map(|r| plan.axis_value(r, a)).collect()), def: None }
            }
            Source::Output { col, int, optional } => {
                let value = |o: &Outcome<F>| o.get(col).into();
                let def = optional.then(|| v.iter().map(|o| i16::from(!value(o).is_nan())).collect::<Vec<i16>>());
                let present = v.iter().filter(|o| !optional || !value(o).is_nan());
                let data = if int {
                    Data::I32(present.map(|o| value(o) as i32).collect())
                } else if f32 {
                    Data::F32(present.map(|o| value(o) as f32).collect())
                } else {
                    Data::F64(present.map(value).collect())
                };
                ColumnData { data, def }
            }
        })
        .collect()
}

/// Encodes one column chunk into its own buffer (offsets from the buffer's start).
fn encode_column(layout: &Layout, i: usize, c: &ColumnData) -> anyhow::Result<(Vec<u8>, ColumnCloseResult)> {
    let mut buf = Vec::new();
    let mut tw = TrackedWrite::new(&mut buf);
    let close = {
        let pages = Box::new(SerializedPageWriter::new(&mut tw));
        let mut w = get_column_writer(layout.descr.column(i), layout.props.clone(), pages);
        let def = c.def.as_deref();
        match (&mut w, &c.data) {
            (ColumnWriter::Int64ColumnWriter(w), Data::I64(v)) => w.write_batch(v, def, None)?,
            (ColumnWriter::Int32ColumnWriter(w), Data::I32(v)) => w.write_batch(v, def, None)?,
            (ColumnWriter::DoubleColumnWriter(w), Data::F64(v)) => w.write_batch(v, def, None)?,
            (ColumnWriter::FloatColumnWriter(w), Data::F32(v)) => w.write_batch(v, def, None)?,
            _ => anyhow::bail!("internal error: column {i} has data of another type"),
        };
        w.close()?
    };
    tw.into_inner()?;
    Ok((buf, close))
}

/// Encodes a row group placed at byte `offset` of the file: its bytes and metadata.
fn encode_row_group(layout: &Layout, cols: &[ColumnData], ordinal: usize, offset: u64) -> anyhow::Result<(Vec<u8>, RowGroupMetaData)> {
    let rows = cols.first().map_or(0, ColumnData::rows);
    let parts: Vec<(Vec<u8>, ColumnCloseResult)> =
        cols.par_iter().enumerate().map(|(i, c)| encode_column(layout, i, c)).collect::<anyhow::Result<_>>()?;
    let mut bytes = Vec::with_capacity(parts.iter().map(|p| p.0.len()).sum());
    let mut metas = Vec::with_capacity(parts.len());
    let mut uncompressed = 0;
    for (b, close) in parts {
        let m = close.metadata;
        let src = m.dictionary_page_offset().unwrap_or_else(|| m.data_page_offset());
        let at = (offset + bytes.len() as u64) as i64;
        let map = |x: i64| x - src + at;
        uncompressed += m.uncompressed_size();
        let (data, dict) = (m.data_page_offset(), m.dictionary_page_offset());
        metas.push(m.into_builder().set_data_page_offset(map(data)).set_dictionary_page_offset(dict.map(map)).build()?);
        bytes.extend_from_slice(&b);
    }
    let rg = RowGroupMetaData::builder(layout.descr.clone())
        .set_column_metadata(metas)
        .set_total_byte_size(uncompressed)
        .set_num_rows(rows as i64)
        .set_ordinal(ordinal as i32)
        .set_file_offset(offset as i64)
        .build()?;
    Ok((bytes, rg))
}

/// A footer (thrift FileMetaData, its length, the magic) for `row_groups`.
fn footer(layout: &Layout, row_groups: Vec<RowGroupMetaData>, kv: Option<Vec<KeyValue>>) -> anyhow::Result<Vec<u8>> {
    let rows = row_groups.iter().map(|r| r.num_rows()).sum();
    let fm = FileMetaData::new(1, rows, Some(layout.props.created_by().to_string()), kv, layout.descr.clone(), None);
    let md = ParquetMetaData::new(fm, row_groups);
    let mut buf = Vec::new();
    ParquetMetaDataWriter::new(&mut buf, &md).finish()?;
    Ok(buf)
}

/// A row group's metadata as one record of the side log: u32 length, then the
/// thrift FileMetaData of a file holding that row group alone.
fn log_record(layout: &Layout, rg: &RowGroupMetaData) -> anyhow::Result<Vec<u8>> {
    let f = footer(layout, vec![rg.clone()], None)?;
    let body = &f[..f.len() - 8];
    let mut rec = (body.len() as u32).to_le_bytes().to_vec();
    rec.extend_from_slice(body);
    Ok(rec)
}

/// A row group's metadata (as the footer holds it).
pub type RowGroupMeta = RowGroupMetaData;

/// The byte after a row group's last column chunk.
pub fn end_of(rg: &RowGroupMetaData) -> u64 {
    rg.columns()
        .iter()
        .map(|c| (c.dictionary_page_offset().unwrap_or_else(|| c.data_page_offset()) + c.compressed_size()) as u64)
        .max()
        .unwrap_or(0)
}

/// The row groups a side log holds.
pub fn read_log(bytes: &[u8]) -> anyhow::Result<Vec<RowGroupMetaData>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        anyhow::ensure!(at + 4 <= bytes.len(), "the row group log ends inside a record");
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let body = bytes.get(at + 4..at + 4 + len).context("the row group log ends inside a record")?;
        // Page encoding statistics kept whole (the default reads them as a mask), so
        // that the footer written from the log is the footer of an uninterrupted run.
        let opts = ParquetMetaDataOptions::new().with_encoding_stats_as_mask(false);
        let md = ParquetMetaDataReader::decode_metadata_with_options(body, Some(&opts))?;
        out.extend(md.row_groups().iter().cloned());
        at += 4 + len;
    }
    Ok(out)
}

/// The Parquet encoder of a run: buffers rows until a row group is complete.
pub struct ParquetEncoder<'p> {
    plan: Option<&'p Plan>,
    layout: Layout,
    kv: Vec<KeyValue>,
    f32: bool,
    /// Rows held, from `held_from`.
    held: Vec<ColumnData>,
    held_from: u64,
    /// Bytes in the file (where the next row group goes).
    offset: u64,
    row_groups: Vec<RowGroupMetaData>,
}

impl<'p> ParquetEncoder<'p> {
    /// An encoder for `plan`'s rows from `first_row`, for a file that already holds
    /// `offset` bytes (0 for a fresh file, whose [`Encoder::head`] then comes first;
    /// a resumed file's length, its magic and `row_groups` included), with
    /// `manifest` in the footer. Every row group's offsets are counted from there, so
    /// they are right whatever the file held when the run stopped.
    pub fn new(
        plan: Option<&'p Plan>,
        layout: Layout,
        precision: Precision,
        manifest: &Footer,
        first_row: u64,
        offset: u64,
        row_groups: Vec<RowGroupMetaData>,
    ) -> ParquetEncoder<'p> {
        let kv = vec![
            KeyValue::new("moatsweep.manifest".into(), serde_json::to_string(manifest).expect("JSON")),
            KeyValue::new("moatsweep.float_precision".into(), precision.to_string()),
        ];
        let held = layout.sources.iter().map(|_| ColumnData { data: Data::I64(Vec::new()), def: None }).collect();
        ParquetEncoder { plan, layout, kv, f32: precision == Precision::F32, held, held_from: first_row, offset, row_groups }
    }

    /// Adds columns of rows `first..` (in row order) and encodes every row group they complete.
    pub fn push_columns(&mut self, first: u64, cols: Vec<ColumnData>) -> anyhow::Result<Encoded> {
        let n = cols.first().map_or(0, ColumnData::rows) as u64;
        anyhow::ensure!(
            first == self.held_from + self.held_rows(),
            "rows out of order: expected {}, got {first}",
            self.held_from + self.held_rows()
        );
        if self.held_rows() == 0 {
            self.held = cols;
        } else {
            for (h, c) in self.held.iter_mut().zip(cols) {
                h.extend(c);
            }
        }
        let mut out = Encoded { rows_done: self.held_from, ..Default::default() };
        let end = first + n;
        loop {
            let group = crate::testhook::row_group_rows(ROW_GROUP_ROWS);
            let boundary = (self.held_from / group + 1) * group;
            if boundary > end {
                break;
            }
            let take = (boundary - self.held_from) as usize;
            let rest: Vec<ColumnData> = self.held.iter_mut().map(|c| c.split_off(take)).collect();
            let group = std::mem::replace(&mut self.held, rest);
            self.emit(group, &mut out)?;
        }
        Ok(out)
    }

    fn held_rows(&self) -> u64 {
        self.held.first().map_or(0, ColumnData::rows) as u64
    }

    /// Encodes `group` (rows from `held_from`) as the next row group.
    fn emit(&mut self, group: Vec<ColumnData>, out: &mut Encoded) -> anyhow::Result<()> {
        let rows = group.first().map_or(0, ColumnData::rows) as u64;
        if rows == 0 {
            return Ok(());
        }
        if let Some(k) = self.layout.nonconverged
            && let Data::I32(v) = &group[k].data
        {
            out.nonconverged += v.iter().filter(|&&x| x > 0).count() as u64;
        }
        let (bytes, rg) = encode_row_group(&self.layout, &group, self.row_groups.len(), self.offset)?;
        let record = log_record(&self.layout, &rg)?;
        // The footer is written from the row groups as the log gives them back (a
        // decoded statistics drops the deprecated min/max fields), so that a run
        // resumed from the log writes the footer of an uninterrupted run.
        let rg = read_log(&record)?.pop().context("internal error: a row group record without its row group")?;
        out.log.extend(record);
        self.offset += bytes.len() as u64;
        out.blocks.push(bytes);
        self.row_groups.push(rg);
        self.held_from += rows;
        out.rows_done = self.held_from;
        Ok(())
    }
}

impl Encoder for ParquetEncoder<'_> {
    fn head(&mut self) -> Vec<u8> {
        debug_assert_eq!(self.offset, 0, "the head opens an empty file");
        self.offset += MAGIC.len() as u64;
        MAGIC.to_vec()
    }

    fn encode(&mut self, first_row: u64, outcomes: &Outcomes) -> anyhow::Result<Encoded> {
        let plan = self.plan.context("internal error: a Parquet encoder without a plan got outcomes")?;
        let cols = match outcomes {
            Outcomes::F64(v) => chunk_columns(plan, &self.layout, first_row, v, self.f32),
            Outcomes::F32(v) => chunk_columns(plan, &self.layout, first_row, v, self.f32),
        };
        self.push_columns(first_row, cols)
    }

    fn finish(&mut self) -> anyhow::Result<Encoded> {
        let mut out = Encoded { rows_done: self.held_from, ..Default::default() };
        let rest = std::mem::take(&mut self.held);
        self.emit(rest, &mut out)?;
        out.blocks.push(footer(&self.layout, self.row_groups.clone(), Some(self.kv.clone()))?);
        out.log.clear();
        Ok(out)
    }
}

/// A Parquet sweep file opened for reading.
pub struct ParquetFile {
    path: PathBuf,
    reader: SerializedFileReader<File>,
}

impl ParquetFile {
    pub fn open(path: &Path) -> anyhow::Result<ParquetFile> {
        let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let reader = SerializedFileReader::new(file).with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
        Ok(ParquetFile { path: path.to_path_buf(), reader })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The column names (the sweep's header).
    pub fn names(&self) -> Vec<String> {
        self.reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_string()).collect()
    }

    pub fn rows(&self) -> u64 {
        self.reader.metadata().file_metadata().num_rows() as u64
    }

    /// A key-value entry of the footer.
    pub fn key_value(&self, key: &str) -> Option<String> {
        self.reader.metadata().file_metadata().key_value_metadata()?.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone())
    }

    /// Whether column `i` holds integers.
    pub fn is_integer(&self, i: usize) -> bool {
        matches!(self.reader.metadata().file_metadata().schema_descr().column(i).physical_type(), Physical::INT32 | Physical::INT64)
    }

    pub fn row_groups(&self) -> usize {
        self.reader.num_row_groups()
    }

    /// Columns `cols` of row group `g`, typed.
    pub fn read_group(&self, g: usize, cols: &[usize]) -> anyhow::Result<Vec<ColumnData>> {
        let rg = self.reader.get_row_group(g)?;
        let rows = rg.metadata().num_rows() as usize;
        cols.iter()
            .map(|&c| read_column(rg.as_ref(), c, rows).with_context(|| format!("{}: row group {g}, column {c}", self.path.display())))
            .collect()
    }

    /// Calls `f` with columns `cols` (as f64, NaN for null) of each row group in turn.
    pub fn for_each_group(&self, cols: &[usize], mut f: impl FnMut(&[Vec<f64>]) -> anyhow::Result<()>) -> anyhow::Result<()> {
        for g in 0..self.row_groups() {
            let data: Vec<Vec<f64>> = self.read_group(g, cols)?.iter().map(ColumnData::to_f64).collect();
            f(&data)?;
        }
        Ok(())
    }
}

fn read_column(rg: &dyn RowGroupReader, c: usize, rows: usize) -> anyhow::Result<ColumnData> {
    let optional = rg.metadata().schema_descr().column(c).max_def_level() > 0;
    let mut def: Vec<i16> = Vec::new();
    macro_rules! read {
        ($r:expr, $variant:ident, $t:ty) => {{
            // Reserve no more than 2^20 values up front from the file's own metadata,
            // which a corrupted file may overstate; the vector grows as values come.
            let mut values: Vec<$t> = Vec::with_capacity(rows.min(1 << 20));
            let mut r = $r;
            let mut seen = 0;
            while seen < rows {
                let (records, _, _) = r.read_records(rows - seen, if optional { Some(&mut def) } else { None }, None, &mut values)?;
                if records == 0 {
                    break;
                }
                seen += records;
            }
            anyhow::ensure!(seen == rows, "{seen} of {rows} rows");
            Data::$variant(values)
        }};
    }
    let data = match rg.get_column_reader(c)? {
        ColumnReader::Int64ColumnReader(r) => read!(r, I64, i64),
        ColumnReader::Int32ColumnReader(r) => read!(r, I32, i32),
        ColumnReader::DoubleColumnReader(r) => read!(r, F64, f64),
        ColumnReader::FloatColumnReader(r) => read!(r, F32, f32),
        _ => anyhow::bail!("a column of a type moatsweep does not write"),
    };
    Ok(ColumnData { data, def: optional.then_some(def) })
}
