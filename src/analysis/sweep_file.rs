//! The one reader of a sweep's file, for every analysis: a sweep CSV or Parquet
//! file of rows, or a reduced CSV (`<out stem>.reduced.csv`, see
//! [`super::reduced`]). [`SweepFile::open`] reads its header and its manifest
//! once (the one beside it, or else a Parquet footer's `moatsweep.manifest`),
//! and then offers the rows as a stream ([`SweepFile::for_each_row`], what `plot`
//! and `summarize` aggregate) or whole columns ([`SweepFile::read`], read once,
//! in parallel, keeping only the columns asked for: what `sensitivity` and
//! `discover` need). It also knows, once, the sweep's name and which axes are
//! drawn on a log scale.
//!
//! A manifest that is there must be one, and describe this file: one that does
//! not parse (a key missing, of the wrong type) or lists other columns is an
//! error naming it, never silently ignored. Before any analysis computes, the
//! file is compared with it ([`SweepFile::open_checked`]): the header (names and
//! order), the format, the length in bytes, the row count, the column types of a
//! Parquet file (integer or real, as the output table and the parameter table
//! say), and the SHA-256 of the bytes where the command reads the whole file
//! anyway (every CSV; a Parquet file read whole) or `--verify-hash` asks.
//!
//! Hostile files end in an error, not in memory exhaustion: a path that is not
//! a regular file (a directory, /dev/zero, a FIFO) is refused before it is
//! opened, and no line of a CSV (header or row) may be longer than
//! [`MAX_LINE_BYTES`], so no buffer grows by a size that was not checked.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Seen, is_geometric, is_output};
use crate::InputError;
use crate::config::error::{quoted, suggest};
use crate::output::manifest::Manifest;
use crate::output::manifest_path;
use crate::output::parquet::{ColumnData, Data, ParquetFile, is_parquet};
use crate::sweep::provenance::{Footer, ReduceSpec, ResolvedConfig};

/// Bytes read per parallel batch by [`SweepFile::read`].
const BATCH_BYTES: usize = 32 << 20;

/// The longest line (header or row) of a sweep's CSV: 1 MiB (a quickstart row is
/// about 600 bytes; a 64-firm sweep's a few KiB).
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// Rows of a Parquet file allocated for ahead of reading them: a footer's count
/// is a hint, not a promise.
const RESERVE_ROWS: u64 = 1 << 20;

/// How much of a file an analysis reads, which decides whether its SHA-256 is
/// checked by default (see [`SweepFile::open_checked`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reads {
    /// Every byte: every row of every column (`plot`, `summarize`; any CSV).
    Whole,
    /// Some columns of a Parquet file (`sensitivity`, `discover`).
    Columns,
}

/// Refuses a path that is not a regular file (a directory, a device such as
/// /dev/zero, a FIFO, which would never end or block), before it is opened.
pub fn regular_file(path: &Path) -> Result<std::fs::Metadata, InputError> {
    let meta = std::fs::metadata(path).map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(InputError(format!("{}: it is {}, not a regular file", path.display(), crate::config::file_kind(&meta))));
    }
    Ok(meta)
}

/// The first line of `path` (without its line end), read through a bounded
/// buffer: a line longer than [`MAX_LINE_BYTES`] is an error.
pub fn first_line(path: &Path) -> Result<Vec<u8>, InputError> {
    let file = File::open(path).map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))?;
    let mut head = Vec::new();
    file.take(MAX_LINE_BYTES as u64 + 1).read_to_end(&mut head).map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))?;
    match head.iter().position(|&b| b == b'\n') {
        Some(end) => head.truncate(end),
        None if head.len() > MAX_LINE_BYTES => {
            return Err(InputError(format!(
                "{}: its first line is longer than {MAX_LINE_BYTES} bytes: not a moatsweep CSV",
                path.display()
            )));
        }
        None => {}
    }
    if head.ends_with(b"\r") {
        head.pop();
    }
    Ok(head)
}

/// A reader that fails once a line runs past [`MAX_LINE_BYTES`], so that the
/// CSV reader behind it never buffers more than that for one record.
struct LineLimit<R> {
    inner: R,
    /// Bytes since the last newline.
    run: usize,
}

impl<R: Read> Read for LineLimit<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            self.run = if b == b'\n' { 0 } else { self.run + 1 };
            if self.run > MAX_LINE_BYTES {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("a line longer than {MAX_LINE_BYTES} bytes: not a moatsweep CSV"),
                ));
            }
        }
        Ok(n)
    }
}

/// The file's newlines and SHA-256 (hex), in one pass through a fixed buffer.
fn count_and_hash(path: &Path) -> Result<(u64, String), InputError> {
    use sha2::Digest;
    let err = |e: std::io::Error| InputError(format!("cannot read {}: {e}", path.display()));
    let mut file = File::open(path).map_err(err)?;
    let mut hash = sha2::Sha256::new();
    let mut lines = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok((lines, crate::output::hex(&hash.finalize())))
}

/// Whether the column `name` of a file of rows holds integers: `scenario`, an
/// integer output, an axis of an integer parameter; `None` when the tables do
/// not know it.
fn integer_column(name: &str) -> Option<bool> {
    use crate::model::outputs::{OUTPUTS, OutKind, Scope};
    use crate::model::params::{Group, Kind, spec};
    if name == "scenario" {
        return Some(true);
    }
    let output = OUTPUTS.iter().find(|o| match o.scope {
        Scope::Scenario => o.name == name,
        Scope::Firm => name.split_once('.').is_some_and(|(head, _)| head == o.name),
    });
    if let Some(o) = output {
        return Some(o.kind == OutKind::Integer);
    }
    let parts: Vec<&str> = name.split('.').collect();
    let (group, param) = match parts[..] {
        ["model", p] => (Group::Model, p),
        ["scaling", p] => (Group::Scaling, p),
        ["firm", _, p] => (Group::Firm, p),
        ["segment", _, p] => (Group::Segment, p),
        _ => return None,
    };
    spec(group, param).map(|s| s.kind != Kind::Real)
}

/// What can be compared of `path` with its manifest `m` (read from `mpath`)
/// without reading the file through: it is a regular file, of the manifest's
/// format, and its header (a CSV's first line, a Parquet
/// file's column names) is the manifest's columns. `merge` checks each shard so
/// before it reads one, and counts rows and hashes bytes as it copies them.
pub fn check_outline(path: &Path, m: &Manifest, mpath: &Path) -> Result<(), InputError> {
    let shown = path.display();
    regular_file(path)?;
    let says_parquet = m.format == Some(crate::output::OutputFormat::Parquet);
    let parquet = is_parquet(path);
    if says_parquet != parquet {
        let (is, says) = if says_parquet { ("a CSV", "Parquet") } else { ("a Parquet file", "CSV") };
        return Err(InputError(format!("{shown}: is {is}, its manifest {} says {says}", mpath.display())));
    }
    let header: Vec<String> = if parquet {
        ParquetFile::open(path).map_err(|e| InputError(format!("{e:#}")))?.names()
    } else {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&first_line(path)?[..])
            .records()
            .next()
            .transpose()
            .map_err(|e| InputError(format!("{shown}: {e}")))?
            .map(|r| r.iter().map(str::to_string).collect())
            .unwrap_or_default()
    };
    if header != m.columns {
        return Err(InputError(format!(
            "{shown}: its header differs from the columns of its manifest {}: {}",
            mpath.display(),
            header_difference(&header, &m.columns)
        )));
    }
    Ok(())
}

/// Where two headers first differ, for messages: `column K is "a" in the file, "b" in the manifest`.
fn header_difference(file: &[String], manifest: &[String]) -> String {
    let at = file.iter().zip(manifest).position(|(a, b)| a != b).unwrap_or(file.len().min(manifest.len()));
    let col = |v: &[String]| v.get(at).map_or("nothing".to_string(), |c| quoted(c));
    format!("column {} is {} in the file, {} in the manifest", at + 1, col(file), col(manifest))
}

/// Where a file's manifest came from, and what it says.
pub enum Provenance {
    /// `<file>.manifest.json` beside it.
    Manifest(Box<Manifest>),
    /// A Parquet footer's `moatsweep.manifest`, and the file's row count.
    Footer(Box<Footer>, u64),
}

impl Provenance {
    /// The config as resolved when the file was made.
    pub fn config(&self) -> &ResolvedConfig {
        match self {
            Provenance::Manifest(m) => &m.config,
            Provenance::Footer(f, _) => &f.config,
        }
    }

    /// The columns the file was written with.
    pub fn columns(&self) -> &[String] {
        match self {
            Provenance::Manifest(m) => &m.columns,
            Provenance::Footer(f, _) => &f.columns,
        }
    }

    /// Rows [start, end) of the sweep that the file holds (positions, for a reduced file).
    pub fn rows(&self) -> [u64; 2] {
        match self {
            Provenance::Manifest(m) => m.rows,
            Provenance::Footer(f, _) => f.rows,
        }
    }

    /// The rows written: the manifest's count, or the Parquet file's.
    pub fn rows_written(&self) -> u64 {
        match self {
            Provenance::Manifest(m) => m.rows_written,
            Provenance::Footer(_, rows) => *rows,
        }
    }

    /// The reduction, for a reduced file.
    pub fn reduce(&self) -> Option<&ReduceSpec> {
        match self {
            Provenance::Manifest(m) => m.reduce.as_ref().map(|r| &r.spec),
            Provenance::Footer(..) => None,
        }
    }
}

/// A sweep's file: its header and manifest, read once.
pub struct SweepFile {
    path: PathBuf,
    /// The header: `scenario`, the axes, the outputs; or, reduced, the group axes then the statistics.
    columns: Vec<String>,
    /// Axis columns: `columns[1..=n_axes]`, or `columns[..n_axes]` in a reduced file.
    n_axes: usize,
    reduced: bool,
    provenance: Option<Provenance>,
    /// The Parquet file, when the sweep is one (else it is a CSV).
    parquet: Option<ParquetFile>,
}

/// `<output>.<stat>`, e.g. `npv.open.mean`, `share.open.q95`: a reduced file's column.
pub(crate) fn is_stat_column(c: &str) -> bool {
    !c.starts_with("best.")
        && !c.starts_with("reference.")
        && !c.starts_with("leader.")
        && !c.starts_with("nash.")
        && c.rsplit_once('.').is_some_and(|(_, s)| crate::reduce::Stat::parse(s).is_some())
}

/// `best.<value>.share`, `best.<output>.mean`, `reference.<output>.mean`: a
/// reduced file's `[reduce.best]` column; `nash.<...>.share`, `leader.<...>.share`
/// and `leader.<output>.mean`: a `[reduce.game]` column.
pub(crate) fn is_best_column(c: &str) -> bool {
    c.starts_with("reference.")
        || (["best.", "leader.", "nash."].iter().any(|p| c.starts_with(p)) && (c.ends_with(".share") || c.ends_with(".mean")))
}

impl SweepFile {
    /// Opens `path`: reads its header and its manifest. A file that cannot be read,
    /// is not a sweep's file, or whose manifest is not one or belongs to another
    /// file is an [`InputError`] naming it. The file is checked against its
    /// manifest as [`SweepFile::open_checked`] does for a command that reads it whole.
    pub fn open(path: &Path) -> Result<SweepFile, InputError> {
        Self::open_checked(path, Reads::Whole, false)
    }

    /// [`SweepFile::open`], then the file compared with its manifest before any
    /// analysis computes (see [`SweepFile::verify`]): the SHA-256 of its bytes is
    /// checked when the command `reads` the whole file anyway (every CSV), or
    /// when `verify_hash` asks (`--verify-hash`, for a Parquet file of which
    /// only some columns are read).
    pub fn open_checked(path: &Path, reads: Reads, verify_hash: bool) -> Result<SweepFile, InputError> {
        let file = Self::open_unchecked(path)?;
        let hash = file.parquet.is_none() || reads == Reads::Whole || verify_hash;
        file.verify(hash)?;
        Ok(file)
    }

    fn open_unchecked(path: &Path) -> Result<SweepFile, InputError> {
        regular_file(path)?;
        let parquet = if is_parquet(path) { Some(ParquetFile::open(path).map_err(|e| InputError(format!("{e:#}")))?) } else { None };
        let columns: Vec<String> = match &parquet {
            Some(f) => f.names(),
            None => csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(&first_line(path)?[..])
                .records()
                .next()
                .transpose()
                .map_err(|e| InputError(format!("{}: {e}", path.display())))?
                .map(|r| r.iter().map(str::to_string).collect())
                .unwrap_or_default(),
        };
        let provenance = Self::provenance(path, &columns, parquet.as_ref())?;
        let rows_file = columns.first().map(String::as_str) == Some("scenario");
        let reduced = !rows_file
            && (provenance.as_ref().is_some_and(|p| p.reduce().is_some())
                || columns.iter().any(|c| is_stat_column(c) || is_best_column(c)));
        let n_axes = if reduced {
            match provenance.as_ref().and_then(Provenance::reduce) {
                Some(spec) => spec.by.len(),
                None => columns.iter().take_while(|c| !is_stat_column(c) && !is_best_column(c)).count(),
            }
        } else if rows_file {
            columns[1..].iter().take_while(|c| !is_output(c)).count()
        } else {
            return Err(InputError(format!("{} is not a moatsweep CSV: its first column should be \"scenario\"", path.display())));
        };
        if reduced && n_axes >= columns.len() {
            return Err(InputError(format!(
                "{} is not a reduced CSV: it has no <output>.<stat> or best.* columns after its group axes",
                path.display()
            )));
        }
        Ok(SweepFile { path: path.to_path_buf(), columns, n_axes, reduced, provenance, parquet })
    }

    /// Opens a file of rows (what [`SweepFile::read`] reads, for a command that
    /// reads some of its columns), checked as [`SweepFile::open_checked`] does:
    /// a reduced file is an error.
    pub fn open_rows(path: &Path, verify_hash: bool) -> Result<SweepFile, InputError> {
        let file = SweepFile::open_checked(path, Reads::Columns, verify_hash)?;
        if file.reduced {
            return Err(InputError(format!("{} is not a moatsweep CSV: its first column should be \"scenario\"", path.display())));
        }
        Ok(file)
    }

    /// The manifest beside `path`, or else the footer's, checked against the header `columns`.
    fn provenance(path: &Path, columns: &[String], parquet: Option<&ParquetFile>) -> Result<Option<Provenance>, InputError> {
        let mpath = manifest_path(path);
        if mpath.exists() {
            let m = Manifest::read(&mpath).map_err(|e| InputError(format!("{}: {e}", mpath.display())))?;
            if m.columns != columns {
                return Err(InputError(format!(
                    "{}: its header differs from the columns of its manifest {}: {}",
                    path.display(),
                    mpath.display(),
                    header_difference(columns, &m.columns)
                )));
            }
            return Ok(Some(Provenance::Manifest(Box::new(m))));
        }
        let Some(f) = parquet else { return Ok(None) };
        let Some(text) = f.key_value("moatsweep.manifest") else { return Ok(None) };
        let footer: Footer = serde_json::from_str(&text)
            .map_err(|e| InputError(format!("{}: its footer's moatsweep.manifest is not a moatsweep manifest: {e}", path.display())))?;
        if footer.columns != columns {
            return Err(InputError(format!(
                "{}: its footer's manifest lists other columns than the file has: {}",
                path.display(),
                header_difference(columns, &footer.columns)
            )));
        }
        Ok(Some(Provenance::Footer(Box::new(footer), f.rows())))
    }

    /// Compares the file with its manifest (beside it, or its Parquet footer's),
    /// if it has one: its format, its length in bytes, its row count (a reduced
    /// file's groups), the types of a Parquet file's columns, and, when `hash`,
    /// the SHA-256 of its bytes. (The header was compared when it was opened.) A
    /// difference is an [`InputError`] naming the file and what differs.
    pub fn verify(&self, hash: bool) -> Result<(), InputError> {
        let shown = self.path.display();
        let mpath = manifest_path(&self.path);
        if let Some(Provenance::Manifest(m)) = &self.provenance {
            let says_parquet = m.format == Some(crate::output::OutputFormat::Parquet);
            if says_parquet != self.parquet.is_some() {
                let (is, says) = if says_parquet { ("a CSV", "Parquet") } else { ("a Parquet file", "CSV") };
                return Err(InputError(format!("{shown}: is {is}, its manifest {} says {says}", mpath.display())));
            }
        }
        let Some(p) = &self.provenance else { return Ok(()) };
        let want = match p {
            Provenance::Manifest(m) => m.reduce.as_ref().map_or(m.rows_written, |r| r.groups),
            Provenance::Footer(_, rows) => *rows,
        };
        let what = match p {
            Provenance::Manifest(_) => format!("its manifest {}", mpath.display()),
            Provenance::Footer(..) => "its footer's manifest".to_string(),
        };
        let sha = match &self.parquet {
            Some(f) => {
                let footer_rows = f.rows();
                if let Provenance::Footer(footer, _) = p {
                    let [a, b] = footer.rows;
                    if b.checked_sub(a) != Some(footer_rows) {
                        return Err(InputError(format!("{shown}: holds {footer_rows} rows, {what} says rows {a}..{b}")));
                    }
                }
                if footer_rows != want {
                    return Err(InputError(format!("{shown}: holds {footer_rows} rows, {what} says {want}")));
                }
                for (i, name) in self.columns.iter().enumerate() {
                    if let Some(int) = integer_column(name).filter(|&int| int != f.is_integer(i)) {
                        let (is, should) = if int { ("real", "integers") } else { ("integer", "reals") };
                        return Err(InputError(format!(
                            "{shown}: its column {} ({}) is of {is} numbers, the sweep writes {should} there",
                            i + 1,
                            quoted(name)
                        )));
                    }
                }
                if hash { Some(count_and_hash(&self.path)?.1) } else { None }
            }
            None => {
                // Every CSV is read whole by every analysis: one more pass counts and hashes it.
                let (lines, sha) = count_and_hash(&self.path)?;
                let rows = lines.saturating_sub(1);
                if rows != want {
                    return Err(InputError(format!("{shown}: holds {rows} rows, {what} says {want}")));
                }
                Some(sha)
            }
        };
        if let Provenance::Manifest(m) = p
            && let Some(want) = m.bytes
        {
            let len = std::fs::metadata(&self.path).map_err(|e| InputError(format!("cannot read {shown}: {e}")))?.len();
            if len != want {
                return Err(InputError(format!(
                    "{shown}: is {len} bytes long, its manifest {} records {want}: the file was cut or changed after it was written",
                    mpath.display()
                )));
            }
        }
        if let (Some(sha), Provenance::Manifest(m)) = (sha, p)
            && let Some(recorded) = &m.sha256
            && *recorded != sha
        {
            return Err(InputError(format!(
                "{shown}: its SHA-256 is {sha}, its manifest {} records {recorded}: the file changed after it was written",
                mpath.display()
            )));
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header.
    pub fn header(&self) -> &[String] {
        &self.columns
    }

    /// Whether this is a reduced file (one row per group).
    pub fn is_reduced(&self) -> bool {
        self.reduced
    }

    /// The manifest (beside the file, or the footer's), if there is one.
    pub fn manifest(&self) -> Option<&Provenance> {
        self.provenance.as_ref()
    }

    /// The manifest, or an error saying that `command` needs it `why`.
    pub fn require_manifest(&self, command: &str, why: &str) -> Result<&Provenance, InputError> {
        self.provenance.as_ref().ok_or_else(|| {
            InputError(format!(
                "{}: no manifest beside it ({}); {command} needs it {why}",
                self.path.display(),
                manifest_path(&self.path).display()
            ))
        })
    }

    /// The sweep's name: the manifest's `config.sweep.name`, else the file stem.
    pub fn sweep_name(&self) -> String {
        match &self.provenance {
            Some(p) => p.config().sweep.name.clone(),
            None => self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }

    /// Whether the axis `name`, whose values seen are positive from `lo` to `hi`
    /// (`values`: the distinct ones, ascending, unless the axis is `binned`), is
    /// drawn on a log scale: as the reduction's bins say; else as the manifest
    /// says (logspace, loguniform); without a manifest, when the values are
    /// geometrically spaced or, binned, span two decades.
    pub fn is_log(&self, name: &str, lo: f64, hi: f64, values: &[f64], binned: bool) -> bool {
        if lo.is_nan() || lo <= 0.0 {
            return false;
        }
        let by = self.provenance.as_ref().and_then(|p| p.reduce()?.by.iter().find(|b| b.axis == name)?.bins);
        match (by, self.provenance.as_ref().map(|p| p.config().axis(name))) {
            (Some(bins), _) => bins.log,
            (None, Some(Some(axis))) => axis.is_log(),
            (None, _) if binned => hi / lo >= 100.0,
            (None, _) => is_geometric(values),
        }
    }

    /// The axis columns, in file order (a reduced file's group axes).
    pub fn axes(&self) -> &[String] {
        if self.reduced { &self.columns[..self.n_axes] } else { &self.columns[1..=self.n_axes] }
    }

    /// The index of the first axis column.
    pub fn first_axis(&self) -> usize {
        usize::from(!self.reduced)
    }

    /// The output columns of a file of rows, in file order (every column after the axes).
    pub fn outputs(&self) -> &[String] {
        &self.columns[self.first_axis() + self.n_axes..]
    }

    /// A file of rows that `plot` and `summarize` can read: it has output columns.
    pub fn check_outputs(&self) -> Result<(), InputError> {
        if self.outputs().is_empty() {
            return Err(InputError(format!("{} is not a moatsweep CSV: it has no output columns", self.path.display())));
        }
        Ok(())
    }

    /// The firms, in file order (from the `exit_month.<firm>` columns).
    pub fn firms(&self) -> Vec<&str> {
        self.outputs().iter().filter_map(|c| c.strip_prefix("exit_month.")).collect()
    }

    /// The name of the column at `col`.
    pub fn column(&self, col: usize) -> &str {
        &self.columns[col]
    }

    /// The column index of axis `name`, or an error naming the valid axes.
    /// `flag` is the command-line flag that gave the name.
    pub fn axis_column(&self, flag: &str, name: &str) -> Result<usize, InputError> {
        let (what, plural) = if self.reduced { ("group axis", "group axes") } else { ("axis", "axes") };
        self.find_in(flag, name, what, plural, self.first_axis()..self.first_axis() + self.n_axes)
    }

    /// The column index of output `name`, or an error naming the valid outputs.
    pub fn output_column(&self, flag: &str, name: &str) -> Result<usize, InputError> {
        self.find_in(flag, name, "output", "outputs", self.first_axis() + self.n_axes..self.columns.len())
    }

    fn find_in(&self, flag: &str, name: &str, what: &str, plural: &str, range: std::ops::Range<usize>) -> Result<usize, InputError> {
        if let Some(i) = range.clone().find(|&i| self.columns[i] == name) {
            return Ok(i);
        }
        let valid = &self.columns[range];
        let names = if valid.is_empty() { "none".to_string() } else { valid.join(", ") };
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        let problem = if self.columns.iter().any(|c| c == name) {
            format!("{} is not {article} {what} of {}", quoted(name), self.path.display())
        } else {
            format!("{} has no {what} {}{}", self.path.display(), quoted(name), suggest(name, valid.iter().map(String::as_str)))
        };
        let its = if self.reduced { format!("its {plural} are: {}", valid.join(", ")) } else { format!("its {plural} are: {names}") };
        Err(InputError(format!("{flag}: {problem}; {its}")))
    }

    /// The manifest's axes (its config's), each checked to be a column; without a
    /// manifest, an error saying that `command` needs it `why`.
    pub fn manifest_axes(&self, command: &str, why: &str) -> Result<Vec<String>, InputError> {
        let axes = self.require_manifest(command, why)?.config().axis_paths();
        for a in &axes {
            if !self.columns.contains(a) {
                return Err(InputError(format!("{}: the manifest's axis {a} is not a column of the CSV", self.path.display())));
            }
        }
        Ok(axes)
    }

    /// The index of column `name` among `candidates`, or an error that names the
    /// closest candidate and what `flag` accepts.
    pub fn find(&self, flag: &str, name: &str, candidates: &[String], what: &str) -> Result<usize, InputError> {
        if let Some(i) = self.columns.iter().position(|c| c == name).filter(|&i| candidates.contains(&self.columns[i])) {
            return Ok(i);
        }
        let problem = if self.columns.iter().any(|c| c == name) {
            format!("{} is not {what} of {}", quoted(name), self.path.display())
        } else {
            format!("{} has no column {}{}", self.path.display(), quoted(name), suggest(name, candidates.iter().map(String::as_str)))
        };
        Err(InputError(format!("{flag}: {problem}; {what} are: {}", candidates.join(", "))))
    }

    /// Reads every row, calling `f` on each; returns the number of rows.
    pub fn for_each_row(&self, mut f: impl FnMut(&Row) -> anyhow::Result<()>) -> anyhow::Result<u64> {
        if let Some(pq) = &self.parquet {
            let all: Vec<usize> = (0..self.columns.len()).collect();
            let mut rows = 0;
            for g in 0..pq.row_groups() {
                let cols = read_group_values(pq, g, &all)?;
                for i in 0..cols.first().map_or(0, Vec::len) {
                    f(&Row { cells: Cells::Parquet { cols: &cols, i, row: rows }, file: self })?;
                    rows += 1;
                }
            }
            return Ok(rows);
        }
        let file = File::open(&self.path).map_err(|e| InputError(format!("cannot read {}: {e}", self.path.display())))?;
        // Unquoted, as moatsweep writes them: a record is a line, and a line is bounded.
        let mut reader = csv::ReaderBuilder::new().quoting(false).from_reader(LineLimit { inner: file, run: 0 });
        let mut record = csv::ByteRecord::new();
        let mut rows = 0;
        while reader.read_byte_record(&mut record).map_err(|e| InputError(format!("{}: {e}", self.path.display())))? {
            f(&Row { cells: Cells::Csv(&record), file: self })?;
            rows += 1;
        }
        Ok(rows)
    }

    /// Reads the columns `cols` (header indices, repeats allowed) of every row of a
    /// file of rows, in one pass.
    pub fn read(&self, cols: &[usize]) -> anyhow::Result<Columns> {
        let mut unique: Vec<usize> = Vec::new();
        for &c in cols {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        let mut read = match &self.parquet {
            Some(f) => read_parquet(f, &unique)?,
            None => read_columns(&self.path, self.columns.len(), &unique)?,
        };
        if unique.len() == cols.len() {
            return Ok(read);
        }
        let at = |c: usize| unique.iter().position(|&u| u == c).expect("listed");
        let data = cols.iter().map(|&c| read.data[at(c)].clone()).collect();
        let integer = cols.iter().map(|&c| read.integer[at(c)]).collect();
        read.data = data;
        read.integer = integer;
        Ok(read)
    }

    /// How the axis at `col` is grouped and shown, from what one pass saw of it.
    pub(super) fn scale(&self, col: usize, seen: Seen) -> super::AxisScale {
        let name = self.columns[col].clone();
        let binned = seen.distinct.len() > super::MAX_VALUES;
        let mut values: Vec<f64> = seen.distinct.into_iter().map(f64::from_bits).collect();
        values.sort_by(f64::total_cmp);
        let (lo, hi) = (seen.min, seen.max);
        let log = self.is_log(&name, lo, hi, &values, binned);
        let grouping = if binned {
            let (lo, hi) = if log { (lo.log10(), hi.log10()) } else { (lo, hi) };
            super::Grouping::Bins { lo, hi, n: super::BINS }
        } else {
            let index = values.iter().enumerate().map(|(i, v)| (v.to_bits(), i)).collect();
            super::Grouping::Values(values, index)
        };
        super::AxisScale { name, log, grouping, never: seen.never }
    }

    /// How each of the axis columns `cols` is grouped and shown, from one
    /// pass over the file (none when `cols` is empty).
    pub fn scales(&self, cols: &[usize]) -> anyhow::Result<Vec<super::AxisScale>> {
        if cols.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen: Vec<Seen> = cols.iter().map(|_| Seen::default()).collect();
        self.for_each_row(|row| {
            for (s, &c) in seen.iter_mut().zip(cols) {
                s.add(&self.columns[c], row.number(c)?);
            }
            Ok(())
        })?;
        Ok(cols.iter().zip(seen).map(|(&c, s)| self.scale(c, s)).collect())
    }

    #[cfg(test)]
    pub(super) fn bare(name: &str, reduced: bool) -> SweepFile {
        let columns = if reduced { vec![name.into()] } else { vec!["scenario".into(), name.into()] };
        SweepFile { path: PathBuf::from("t.csv"), columns, n_axes: 1, reduced, provenance: None, parquet: None }
    }
}

/// One row of a [`SweepFile`].
pub struct Row<'a> {
    cells: Cells<'a>,
    file: &'a SweepFile,
}

/// Where a row's cells are: a CSV record, or row `i` of a Parquet row group's
/// columns (row `row` of the file).
enum Cells<'a> {
    Csv(&'a csv::ByteRecord),
    Parquet { cols: &'a [Vec<f64>], i: usize, row: u64 },
}

impl Row<'_> {
    /// The number in column `col`; `None` for an empty cell (the price of a
    /// firm that offers no product).
    pub fn value(&self, col: usize) -> Result<Option<f64>, InputError> {
        let record = match self.cells {
            Cells::Csv(record) => record,
            Cells::Parquet { cols, i, .. } => {
                let v = cols[col][i];
                return Ok((!v.is_nan()).then_some(v + 0.0));
            }
        };
        let bytes = record.get(col).unwrap_or_default();
        if bytes.is_empty() {
            return Ok(None);
        }
        match std::str::from_utf8(bytes).ok().and_then(|s| s.parse::<f64>().ok()) {
            // + 0.0 turns -0 into 0, so that equal values have equal bits (group keys).
            Some(v) => Ok(Some(v + 0.0)),
            None => Err(self.error(col, &format!("{} is not a number", quoted(&String::from_utf8_lossy(bytes))))),
        }
    }

    /// The number in column `col`, which must not be empty (an axis value).
    pub fn number(&self, col: usize) -> Result<f64, InputError> {
        self.value(col)?.ok_or_else(|| self.error(col, "empty cell"))
    }

    /// Every cell of the row.
    pub fn values(&self) -> Result<Vec<Option<f64>>, InputError> {
        (0..self.file.columns.len()).map(|c| self.value(c)).collect()
    }

    /// Where the row is, for messages: `<file>:<line>` or `<file>: row <n>`.
    pub fn at(&self) -> String {
        match self.cells {
            Cells::Csv(record) => format!("{}:{}", self.file.path.display(), record.position().map_or(0, |p| p.line())),
            Cells::Parquet { row, .. } => format!("{}: row {row}", self.file.path.display()),
        }
    }

    fn error(&self, col: usize, message: &str) -> InputError {
        InputError(format!("{}: {}: {message}", self.at(), self.file.columns[col]))
    }
}

/// A Parquet column as the CSV of the same run reads back: each value as f64, an
/// f32 through its shortest decimal (what the CSV writes), NaN for a null.
fn csv_values(c: &ColumnData) -> Vec<f64> {
    let mut v = c.to_f64();
    if matches!(c.data, Data::F32(_)) {
        let mut buf = ryu::Buffer::new();
        for x in v.iter_mut().filter(|x| x.is_finite()) {
            *x = buf.format(*x as f32).parse().unwrap_or(*x);
        }
    }
    v
}

/// Columns `cols` of row group `g` of `f`, as [`csv_values`]; a read error names the file.
fn read_group_values(f: &ParquetFile, g: usize, cols: &[usize]) -> Result<Vec<Vec<f64>>, InputError> {
    let group = f.read_group(g, cols).map_err(|e| InputError(format!("{e:#}")))?;
    Ok(group.iter().map(csv_values).collect())
}

/// Columns of a sweep, one vector per column asked for (NaN for an empty cell).
pub struct Columns {
    /// The `scenario` column.
    pub scenario: Vec<u64>,
    pub data: Vec<Vec<f64>>,
    /// Per column: every cell is an integer literal (`-1`, `12`), as pandas would read it.
    pub integer: Vec<bool>,
}

impl Columns {
    pub fn rows(&self) -> usize {
        self.scenario.len()
    }
}

/// What one batch of lines gives.
struct Part {
    scenario: Vec<u64>,
    data: Vec<Vec<f64>>,
    integer: Vec<bool>,
}

fn read_columns(path: &Path, width: usize, cols: &[usize]) -> anyhow::Result<Columns> {
    let shown = path.display().to_string();
    let mut file = File::open(path).map_err(|e| InputError(format!("cannot read {shown}: {e}")))?;
    let mut out = Columns { scenario: Vec::new(), data: vec![Vec::new(); cols.len()], integer: vec![true; cols.len()] };
    // slot[c]: where column c goes, if it was asked for.
    let mut slot = vec![usize::MAX; width];
    for (k, &c) in cols.iter().enumerate() {
        slot[c] = k;
    }
    let mut carry: Vec<u8> = Vec::new();
    let mut line = 1u64; // the header
    let mut header_done = false;
    let mut buf = vec![0u8; BATCH_BYTES];
    loop {
        let n = file.read(&mut buf).map_err(|e| InputError(format!("cannot read {shown}: {e}")))?;
        let eof = n == 0;
        carry.extend_from_slice(&buf[..n]);
        let mut text: &[u8] = &carry;
        if !header_done {
            let Some(end) = text.iter().position(|&b| b == b'\n') else {
                if eof {
                    break;
                }
                if carry.len() > MAX_LINE_BYTES {
                    return Err(InputError(format!("{shown}:1: a header longer than {MAX_LINE_BYTES} bytes: not a moatsweep CSV")).into());
                }
                continue;
            };
            text = &text[end + 1..];
            header_done = true;
        }
        // Whole lines only, unless the file ends without a newline.
        let cut = if eof { text.len() } else { text.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1) };
        let batch = &text[..cut];
        if !batch.is_empty() {
            let first_line = line + 1;
            let pieces = split_lines(batch, rayon::current_num_threads() * 4);
            let mut starts = Vec::with_capacity(pieces.len());
            let mut at = first_line;
            for p in &pieces {
                starts.push(at);
                at += p.iter().filter(|&&b| b == b'\n').count() as u64 + u64::from(!p.ends_with(b"\n") && !p.is_empty());
            }
            line = at - 1;
            let parts: Vec<Part> = pieces
                .par_iter()
                .zip(starts.par_iter())
                .map(|(piece, &start)| parse_piece(piece, start, width, &slot, cols.len(), &shown))
                .collect::<Result<_, InputError>>()?;
            for part in parts {
                out.scenario.extend_from_slice(&part.scenario);
                for (k, column) in part.data.into_iter().enumerate() {
                    out.data[k].extend_from_slice(&column);
                    out.integer[k] &= part.integer[k];
                }
            }
        }
        let consumed = carry.len() - text.len() + cut;
        carry.drain(..consumed);
        if carry.len() > MAX_LINE_BYTES {
            // What is left is one line without its end (or the header, before its end).
            return Err(InputError(format!("{shown}:{}: a line longer than {MAX_LINE_BYTES} bytes: not a moatsweep CSV", line + 1)).into());
        }
        if eof {
            break;
        }
    }
    Ok(out)
}

/// Columns `cols` of a Parquet sweep, with the values and integer flags the CSV of
/// the same run gives: integer columns are integers unless a cell is null, real
/// ones never are (the CSV writes every real with a `.` or an exponent).
fn read_parquet(f: &ParquetFile, cols: &[usize]) -> Result<Columns, InputError> {
    let mut out = Columns {
        scenario: Vec::with_capacity(f.rows().min(RESERVE_ROWS) as usize),
        data: vec![Vec::new(); cols.len()],
        integer: vec![true; cols.len()],
    };
    let mut want = vec![0];
    want.extend_from_slice(cols);
    let groups: Vec<usize> = (0..f.row_groups()).collect();
    let read: Vec<Vec<ColumnData>> =
        groups.par_iter().map(|&g| f.read_group(g, &want).map_err(|e| InputError(format!("{e:#}")))).collect::<Result<_, _>>()?;
    for group in read {
        let (scenario, rest) = group.split_first().expect("the scenario column was asked for");
        match &scenario.data {
            Data::I64(v) => out.scenario.extend(v.iter().map(|&s| s as u64)),
            _ => return Err(InputError(format!("{}: its scenario column is not of 64-bit integers", f.path().display()))),
        }
        for (k, c) in rest.iter().enumerate() {
            let values = csv_values(c);
            out.integer[k] &= values.is_empty() || (f.is_integer(cols[k]) && c.def.as_ref().is_none_or(|d| d.iter().all(|&l| l == 1)));
            out.data[k].extend_from_slice(&values);
        }
    }
    Ok(out)
}

/// Splits `text` into about `n` pieces at line ends.
fn split_lines(text: &[u8], n: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(n);
    let target = text.len().div_ceil(n.max(1)).max(1);
    let mut rest = text;
    while !rest.is_empty() {
        let end = if rest.len() <= target {
            rest.len()
        } else {
            rest[target..].iter().position(|&b| b == b'\n').map_or(rest.len(), |p| target + p + 1)
        };
        pieces.push(&rest[..end]);
        rest = &rest[end..];
    }
    pieces
}

/// Whether `cell` is an integer literal, as pandas reads a column of them as int64.
fn is_integer_literal(cell: &[u8]) -> bool {
    let digits = cell.strip_prefix(b"-").unwrap_or(cell);
    !digits.is_empty() && digits.iter().all(u8::is_ascii_digit)
}

fn parse_piece(piece: &[u8], first_line: u64, width: usize, slot: &[usize], n: usize, shown: &str) -> Result<Part, InputError> {
    let lines = piece.iter().filter(|&&b| b == b'\n').count() + 1;
    let mut part = Part { scenario: Vec::with_capacity(lines), data: vec![Vec::with_capacity(lines); n], integer: vec![true; n] };
    for (i, raw) in piece.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        if raw.is_empty() {
            continue;
        }
        let line = first_line + i as u64;
        let mut fields = 0;
        for (c, cell) in raw.split(|&b| b == b',').enumerate() {
            fields += 1;
            if c >= width {
                continue;
            }
            if c == 0 {
                let s = std::str::from_utf8(cell).ok().and_then(|s| s.parse::<u64>().ok());
                part.scenario.push(s.ok_or_else(|| {
                    InputError(format!("{shown}:{line}: scenario: {} is not a row number", quoted(&String::from_utf8_lossy(cell))))
                })?);
                continue;
            }
            let k = slot[c];
            if k == usize::MAX {
                continue;
            }
            let v = if cell.is_empty() {
                part.integer[k] = false;
                f64::NAN
            } else {
                part.integer[k] &= is_integer_literal(cell);
                match std::str::from_utf8(cell).ok().and_then(|s| s.parse::<f64>().ok()) {
                    Some(v) => v,
                    None => {
                        return Err(InputError(format!(
                            "{shown}:{line}: column {}: {} is not a number",
                            c + 1,
                            quoted(&String::from_utf8_lossy(cell))
                        )));
                    }
                }
            };
            part.data[k].push(v);
        }
        if fields != width {
            return Err(InputError(format!("{shown}:{line}: {fields} fields, the header has {width} (a cut or damaged line)")));
        }
    }
    Ok(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_read_whatever_the_batch_cuts() {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        let mut text = String::from("scenario,a,b,c\n");
        for i in 0..5000 {
            let b = if i % 7 == 0 { String::new() } else { format!("{}.5", i) };
            text += &format!("{i},{},{b},{}\n", i as i64 - 3, i * 2);
        }
        std::fs::write(tmp.path(), &text).unwrap();
        let cols = read_columns(tmp.path(), 4, &[3, 1, 2]).unwrap();
        assert_eq!(cols.rows(), 5000);
        assert!(cols.scenario.iter().enumerate().all(|(i, &s)| s == i as u64));
        assert_eq!(cols.data[0][4999], 9998.0);
        assert_eq!(cols.data[1][10], 7.0);
        assert!(cols.data[2][7].is_nan() && cols.data[2][8] == 8.5);
        assert_eq!(cols.integer, [true, true, false]);
        // A cut last line is named.
        std::fs::write(tmp.path(), format!("{text}5000,1")).unwrap();
        let err = read_columns(tmp.path(), 4, &[1]).err().unwrap().to_string();
        assert!(err.ends_with(":5002: 2 fields, the header has 4 (a cut or damaged line)"), "{err}");
    }

    #[test]
    fn columns_are_told_apart() {
        assert!(is_stat_column("npv.open.mean") && is_stat_column("share.open.q95") && is_stat_column("npv.open.count"));
        assert!(!is_stat_column("model.ad_uplift") && !is_stat_column("firm.challenger.funding"));
        assert!(!is_stat_column("best.npv.open.mean") && is_best_column("best.npv.open.mean"));
        assert!(is_best_column("best.never.share") && is_best_column("reference.npv.open.mean"));
        assert!(!is_stat_column("leader.npv.open.mean") && is_best_column("leader.npv.open.mean"));
        assert!(is_best_column("nash.0_never.share") && is_best_column("leader.none.share") && !is_stat_column("nash.many.share"));
    }
}
