//! Reading a sweep's CSV back: [`plot`] draws an output over one or two axes,
//! [`summarize`] tables every output per group of rows. Both stream the CSV
//! row by row (one pass to see the axes' values, one to aggregate) and keep
//! only aggregates, so the file's size does not matter.
//!
//! What is an axis and what is an output comes from the header alone (the
//! `scenario` column, the axis paths, then the outputs of `output::csv`); the
//! manifest beside the CSV, when it matches the header, adds the sweep's name
//! and which axes are logspace or loguniform. An axis with many distinct
//! values (a sampling design draws a new one for every row) is cut into bins.
//!
//! A sweep written as Parquet (`run --format parquet`, told apart by its magic
//! bytes) is read the same way, row group by row group: its column names are the
//! header, its manifest the one beside it or else the footer's
//! `moatsweep.manifest`, and every value is the number the CSV of the same run
//! holds (an f32 through its shortest decimal, as the CSV writes it; a null as an
//! empty cell), so every analysis prints the same for either file.

mod bootstrap;
pub mod discover;
mod font;
mod image;
pub mod plot;
pub mod reduced;
pub mod sensitivity;
pub mod summarize;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use crate::InputError;
use crate::config::error::suggest;
use crate::model::NEVER;
use crate::model::outputs::{OUTPUTS, Scope};
use crate::output::manifest_path;
use crate::output::parquet::{ColumnData, Data, ParquetFile, is_parquet};

/// Distinct values an axis may have before it is cut into bins.
const MAX_VALUES: usize = 100;
/// Bins of an axis with more than [`MAX_VALUES`] distinct values.
const BINS: usize = 25;

/// A sweep CSV: its header and manifest, and passes over its rows.
pub struct SweepCsv {
    path: PathBuf,
    /// The header: `scenario`, the axes, the outputs.
    columns: Vec<String>,
    /// Axis columns are `columns[1..=n_axes]`.
    n_axes: usize,
    /// `<csv>.manifest.json`, when there is one and its `columns` are this header.
    manifest: Option<serde_json::Value>,
    /// The Parquet file, when the sweep is one (else it is a CSV).
    parquet: Option<ParquetFile>,
}

/// Opens the Parquet sweep at `path`; a file that is not readable Parquet is an
/// [`InputError`] naming it.
pub(crate) fn open_parquet(path: &Path) -> Result<ParquetFile, InputError> {
    ParquetFile::open(path).map_err(|e| InputError(format!("{e:#}")))
}

/// The manifest in a Parquet file's footer (`moatsweep.manifest`), if it holds one.
pub(crate) fn footer_manifest(f: &ParquetFile) -> Option<serde_json::Value> {
    let mut m: serde_json::Value = serde_json::from_str(&f.key_value("moatsweep.manifest")?).ok()?;
    // The footer keeps the reproducible part; the rows written are the file's.
    if m.get("rows_written").is_none() {
        m["rows_written"] = serde_json::json!(f.rows());
    }
    Some(m)
}

/// A Parquet column as the CSV of the same run reads back: each value as f64, an
/// f32 through its shortest decimal (what the CSV writes), NaN for a null.
pub(crate) fn csv_values(c: &ColumnData) -> Vec<f64> {
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
pub(crate) fn read_group_values(f: &ParquetFile, g: usize, cols: &[usize]) -> Result<Vec<Vec<f64>>, InputError> {
    let group = f.read_group(g, cols).map_err(|e| InputError(format!("{e:#}")))?;
    Ok(group.iter().map(csv_values).collect())
}

impl SweepCsv {
    /// Opens `path` and reads its header and manifest. A file that cannot be
    /// read or is not a moatsweep CSV is an [`InputError`].
    pub fn open(path: &Path) -> anyhow::Result<SweepCsv> {
        if is_parquet(path) {
            let f = open_parquet(path)?;
            let columns = f.names();
            return SweepCsv::with_columns(path, columns, Some(f));
        }
        let file = File::open(path).map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))?;
        let columns: Vec<String> = csv::Reader::from_reader(file)
            .headers()
            .map_err(|e| InputError(format!("{}: {e}", path.display())))?
            .iter()
            .map(str::to_string)
            .collect();
        SweepCsv::with_columns(path, columns, None)
    }

    fn with_columns(path: &Path, columns: Vec<String>, parquet: Option<ParquetFile>) -> anyhow::Result<SweepCsv> {
        if columns.first().map(String::as_str) != Some("scenario") {
            return Err(InputError(format!("{} is not a moatsweep CSV: its first column should be \"scenario\"", path.display())).into());
        }
        let n_axes = columns[1..].iter().take_while(|c| !is_output(c)).count();
        if n_axes + 1 == columns.len() {
            return Err(InputError(format!("{} is not a moatsweep CSV: it has no output columns", path.display())).into());
        }
        let fits = |m: &serde_json::Value| {
            m["columns"].as_array().is_some_and(|c| c.iter().map(|v| v.as_str()).eq(columns.iter().map(|c| Some(c.as_str()))))
        };
        let manifest = std::fs::read(manifest_path(path))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .filter(fits)
            .or_else(|| parquet.as_ref().and_then(footer_manifest).filter(fits));
        Ok(SweepCsv { path: path.to_path_buf(), columns, n_axes, manifest, parquet })
    }

    /// The axis columns, in CSV order.
    pub fn axes(&self) -> &[String] {
        &self.columns[1..=self.n_axes]
    }

    /// The output columns, in CSV order.
    pub fn outputs(&self) -> &[String] {
        &self.columns[self.n_axes + 1..]
    }

    /// The firms, in CSV order (from the `exit_month.<firm>` columns).
    pub fn firms(&self) -> Vec<&str> {
        self.outputs().iter().filter_map(|c| c.strip_prefix("exit_month.")).collect()
    }

    /// The column index of axis `name`, or an error naming the valid axes.
    /// `flag` is the command-line flag that gave the name.
    pub fn axis_column(&self, flag: &str, name: &str) -> Result<usize, InputError> {
        self.find(flag, name, "axis", "axes", 1..self.n_axes + 1)
    }

    /// The column index of output `name`, or an error naming the valid outputs.
    pub fn output_column(&self, flag: &str, name: &str) -> Result<usize, InputError> {
        self.find(flag, name, "output", "outputs", self.n_axes + 1..self.columns.len())
    }

    fn find(&self, flag: &str, name: &str, what: &str, plural: &str, range: std::ops::Range<usize>) -> Result<usize, InputError> {
        if let Some(i) = range.clone().find(|&i| self.columns[i] == name) {
            return Ok(i);
        }
        let valid = &self.columns[range];
        let names = if valid.is_empty() { "none".to_string() } else { valid.join(", ") };
        let problem = if self.columns.iter().any(|c| c == name) {
            format!("\"{name}\" is not an {what} of {}", self.path.display())
        } else {
            format!("{} has no {what} \"{name}\"{}", self.path.display(), suggest(name, valid.iter().map(String::as_str)))
        };
        Err(InputError(format!("{flag}: {problem}; its {plural} are: {names}")))
    }

    /// The name of the column at `col`.
    pub fn column(&self, col: usize) -> &str {
        &self.columns[col]
    }

    /// The sweep's name: the manifest's `config.sweep.name`, else the file stem.
    pub fn sweep_name(&self) -> String {
        match self.manifest.as_ref().and_then(|m| m["config"]["sweep"]["name"].as_str()) {
            Some(name) => name.to_string(),
            None => self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }

    /// How each of the axis columns `cols` is grouped and shown, from one
    /// pass over the CSV (none when `cols` is empty).
    pub fn scales(&self, cols: &[usize]) -> anyhow::Result<Vec<AxisScale>> {
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

    fn scale(&self, col: usize, seen: Seen) -> AxisScale {
        let name = self.columns[col].clone();
        let described = self.manifest.as_ref().and_then(|m| m["config"]["axes"].as_array()?.iter().find(|a| a["path"] == name.as_str()));
        let (lo, hi) = (seen.min, seen.max);
        let binned = seen.distinct.len() > MAX_VALUES;
        let mut values: Vec<f64> = seen.distinct.into_iter().map(f64::from_bits).collect();
        values.sort_by(f64::total_cmp);
        let log = lo > 0.0
            && match described {
                Some(axis) => axis.get("logspace").or(axis.get("loguniform")).is_some(),
                None if binned => hi / lo >= 100.0,
                None => is_geometric(&values),
            };
        let grouping = if binned {
            let (lo, hi) = if log { (lo.log10(), hi.log10()) } else { (lo, hi) };
            Grouping::Bins { lo, hi, n: BINS }
        } else {
            let index = values.iter().enumerate().map(|(i, v)| (v.to_bits(), i)).collect();
            Grouping::Values(values, index)
        };
        AxisScale { name, log, grouping, never: seen.never }
    }

    /// Reads every row, calling `f` on each; returns the number of rows.
    pub fn for_each_row(&self, mut f: impl FnMut(&Row) -> anyhow::Result<()>) -> anyhow::Result<u64> {
        if let Some(pq) = &self.parquet {
            let all: Vec<usize> = (0..self.columns.len()).collect();
            let mut rows = 0;
            for g in 0..pq.row_groups() {
                let cols = read_group_values(pq, g, &all)?;
                for i in 0..cols.first().map_or(0, Vec::len) {
                    f(&Row { cells: Cells::Parquet { cols: &cols, i, row: rows }, csv: self })?;
                    rows += 1;
                }
            }
            return Ok(rows);
        }
        let file = File::open(&self.path).map_err(|e| InputError(format!("cannot read {}: {e}", self.path.display())))?;
        let mut reader = csv::Reader::from_reader(file);
        let mut record = csv::ByteRecord::new();
        let mut rows = 0;
        while reader.read_byte_record(&mut record).map_err(|e| InputError(format!("{}: {e}", self.path.display())))? {
            f(&Row { cells: Cells::Csv(&record), csv: self })?;
            rows += 1;
        }
        Ok(rows)
    }
}

/// One row of a [`SweepCsv`].
pub struct Row<'a> {
    cells: Cells<'a>,
    csv: &'a SweepCsv,
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
            None => Err(self.error(col, &format!("\"{}\" is not a number", String::from_utf8_lossy(bytes)))),
        }
    }

    /// The number in column `col`, which must not be empty (an axis value).
    pub fn number(&self, col: usize) -> Result<f64, InputError> {
        self.value(col)?.ok_or_else(|| self.error(col, "empty cell"))
    }

    fn error(&self, col: usize, message: &str) -> InputError {
        let line = match self.cells {
            Cells::Csv(record) => record.position().map_or(0, |p| p.line()),
            Cells::Parquet { row, .. } => {
                return InputError(format!("{}: row {row}: {}: {message}", self.csv.path.display(), self.csv.columns[col]));
            }
        };
        InputError(format!("{}:{line}: {}: {message}", self.csv.path.display(), self.csv.columns[col]))
    }
}

/// What one pass sees of an axis column.
struct Seen {
    /// Distinct values (bits), `never` excluded, up to one more than [`MAX_VALUES`].
    distinct: HashSet<u64>,
    min: f64,
    max: f64,
    never: bool,
}

impl Default for Seen {
    fn default() -> Self {
        Seen { distinct: HashSet::new(), min: f64::INFINITY, max: f64::NEG_INFINITY, never: false }
    }
}

impl Seen {
    fn add(&mut self, name: &str, v: f64) {
        if is_never(name, v) {
            self.never = true;
            return;
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if self.distinct.len() <= MAX_VALUES {
            self.distinct.insert(v.to_bits());
        }
    }
}

/// How an axis's values are grouped and shown: one slot per distinct value,
/// or, past [`MAX_VALUES`] distinct values, one per equal-width bin (equal in
/// log on a log scale); `never` gets a slot of its own, the last. Slots are in
/// ascending order of value.
pub struct AxisScale {
    /// The axis path (its CSV column).
    pub name: String,
    /// Whether the axis is shown on a log scale: the manifest calls it
    /// logspace or loguniform; without a manifest, its values are
    /// geometrically spaced, or (binned) positive and spanning two decades.
    pub log: bool,
    grouping: Grouping,
    /// Whether `never` occurs.
    never: bool,
}

enum Grouping {
    /// The distinct values, ascending, and the slot of each (by its bits).
    Values(Vec<f64>, HashMap<u64, usize>),
    /// `n` equal bins from `lo` to `hi` (log10 of the values on a log scale).
    Bins { lo: f64, hi: f64, n: usize },
}

impl AxisScale {
    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.never as usize
            + match &self.grouping {
                Grouping::Values(values, _) => values.len(),
                Grouping::Bins { n, .. } => *n,
            }
    }

    /// The slot of value `v`, which was seen in the pass that made the scale.
    pub fn slot(&self, v: f64) -> usize {
        if is_never(&self.name, v) {
            return self.slots() - 1;
        }
        match &self.grouping {
            Grouping::Values(_, index) => index[&v.to_bits()],
            Grouping::Bins { lo, hi, n } => {
                let at = (self.display(v) - lo) / (hi - lo) * *n as f64;
                (at.max(0.0) as usize).min(n - 1)
            }
        }
    }

    /// Whether slot `i` is `never`.
    pub fn is_never_slot(&self, i: usize) -> bool {
        self.never && i == self.slots() - 1
    }

    /// The number of bins, when the axis is cut into bins.
    pub fn bins(&self) -> Option<usize> {
        match self.grouping {
            Grouping::Bins { n, .. } => Some(n),
            Grouping::Values(..) => None,
        }
    }

    /// Where slot `i` is drawn: its value or its bin's centre (log10 of it on
    /// a log scale); `never` one step (the last spacing) after the last slot.
    pub fn position(&self, i: usize) -> f64 {
        let n = self.slots() - self.never as usize;
        if self.is_never_slot(i) {
            return match n {
                0 => 0.0,
                1 => self.position(0) + 1.0,
                _ => 2.0 * self.position(n - 1) - self.position(n - 2),
            };
        }
        self.display(self.value(i))
    }

    /// The value slot `i` stands for: the value itself, its bin's centre
    /// (geometric on a log scale), or `never` (-1).
    pub fn value(&self, i: usize) -> f64 {
        if self.is_never_slot(i) {
            return NEVER as f64;
        }
        match &self.grouping {
            Grouping::Values(values, _) => values[i],
            Grouping::Bins { lo, hi, n } => self.undisplay(lo + (hi - lo) * (i as f64 + 0.5) / *n as f64),
        }
    }

    /// The bounds [from, to) of bin `i`, for a binned axis.
    pub fn bin(&self, i: usize) -> Option<(f64, f64)> {
        match &self.grouping {
            Grouping::Bins { lo, hi, n } if !self.is_never_slot(i) => {
                let edge = |k: usize| self.undisplay(lo + (hi - lo) * k as f64 / *n as f64);
                Some((edge(i), edge(i + 1)))
            }
            _ => None,
        }
    }

    /// Slot `i` as shown: `never`, or its value with at most `digits`
    /// significant digits.
    pub fn label(&self, i: usize, digits: usize) -> String {
        if self.is_never_slot(i) { "never".to_string() } else { fmt_number(self.value(i), digits) }
    }

    fn display(&self, v: f64) -> f64 {
        if self.log { v.log10() } else { v }
    }

    fn undisplay(&self, d: f64) -> f64 {
        if self.log { 10f64.powf(d) } else { d }
    }
}

/// Whether `column` is an output of a sweep CSV rather than an axis.
fn is_output(column: &str) -> bool {
    OUTPUTS.iter().any(|o| match o.scope {
        Scope::Scenario => o.name == column,
        Scope::Firm => column.split_once('.').is_some_and(|(head, _)| head == o.name),
    })
}

/// Whether an axis column may hold `never` (written -1): a firm's release month.
fn is_month_axis(name: &str) -> bool {
    name.starts_with("firm.") && name.ends_with(".release_month")
}

/// Whether `v` is `never` on the axis `name`.
fn is_never(name: &str, v: f64) -> bool {
    v == NEVER as f64 && is_month_axis(name)
}

/// Sorted distinct values, three or more, all positive, with one common ratio.
fn is_geometric(sorted: &[f64]) -> bool {
    if sorted.len() < 3 || sorted[0] <= 0.0 {
        return false;
    }
    let ratio = sorted[1] / sorted[0];
    ratio > 1.0 && sorted.windows(2).all(|w| ((w[1] / w[0]) / ratio - 1.0).abs() < 1e-6)
}

/// `v` with at most `digits` significant digits, trailing zeros dropped, in
/// scientific notation when it is very large or very small (`1.6e8`, `0.0147`).
pub fn fmt_number(v: f64, digits: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{}", v + 0.0);
    }
    let exp = v.abs().log10().floor() as i32;
    let trim = |s: &str| {
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s.to_string() }
    };
    if (-3..6).contains(&exp) {
        let decimals = (digits as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{v:.decimals$}"))
    } else {
        let s = format!("{v:.prec$e}", prec = digits.saturating_sub(1));
        let (mantissa, exponent) = s.split_once('e').expect("`e` format has an exponent");
        format!("{}e{exponent}", trim(mantissa))
    }
}

/// Count, sum, smallest and largest of a column's values.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub n: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats { n: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY }
    }
}

impl Stats {
    /// Adds one value.
    pub fn add(&mut self, v: f64) {
        self.n += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    /// The mean, or `None` when no value was added.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short() {
        assert_eq!(fmt_number(0.0, 3), "0");
        assert_eq!(fmt_number(12.0, 3), "12");
        assert_eq!(fmt_number(0.0014677992676220694, 3), "0.00147");
        assert_eq!(fmt_number(5e7, 3), "5e7");
        assert_eq!(fmt_number(1.6e8, 3), "1.6e8");
        assert_eq!(fmt_number(-2299605603.53, 6), "-2.29961e9");
        assert_eq!(fmt_number(0.1, 3), "0.1");
        assert_eq!(fmt_number(1e-6, 3), "1e-6");
    }

    #[test]
    fn geometric_spacing_is_detected() {
        assert!(is_geometric(&[1.0, 10.0, 100.0]));
        assert!(is_geometric(&[5e7, 5e8, 5e9]));
        assert!(!is_geometric(&[1.0, 2.0, 3.0]));
        assert!(!is_geometric(&[0.0, 1.0, 2.0]));
        assert!(!is_geometric(&[1.0, 10.0]));
    }

    #[test]
    fn never_is_last_and_named() {
        let scale = |name: &str| {
            let mut seen = Seen::default();
            for v in [12.0, -1.0, 0.0, 6.0] {
                seen.add(name, v);
            }
            let csv = SweepCsv {
                path: PathBuf::from("t.csv"),
                columns: vec!["scenario".into(), name.into()],
                n_axes: 1,
                manifest: None,
                parquet: None,
            };
            csv.scale(1, seen)
        };
        let months = scale("firm.open.release_month");
        assert_eq!(months.slots(), 4);
        assert_eq!((months.slot(-1.0), months.label(3, 3)), (3, "never".to_string()));
        assert_eq!((months.slot(0.0), months.slot(12.0)), (0, 2));
        assert_eq!(months.position(3), 18.0, "one step after the last month");
        let plain = scale("model.spill_gap");
        assert_eq!((plain.slot(-1.0), plain.label(0, 3)), (0, "-1".to_string()));
    }

    #[test]
    fn many_values_are_binned() {
        let mut seen = Seen::default();
        for k in 0..1000 {
            seen.add("firm.open.train_spend", 1e8 * 10f64.powf(k as f64 / 999.0 * 2.0));
        }
        let csv = SweepCsv {
            path: PathBuf::from("t.csv"),
            columns: vec!["scenario".into(), "firm.open.train_spend".into()],
            n_axes: 1,
            manifest: None,
            parquet: None,
        };
        let s = csv.scale(1, seen);
        assert!(s.bins() == Some(BINS) && s.log, "two decades of positive values: log bins");
        assert_eq!(s.slots(), BINS);
        assert_eq!((s.slot(1e8), s.slot(1e10)), (0, BINS - 1));
        let (from, to) = s.bin(0).unwrap();
        assert!((from - 1e8).abs() < 1.0 && (to / from - 10f64.powf(2.0 / BINS as f64)).abs() < 1e-9);
        assert!((s.value(0) / (from * to).sqrt() - 1.0).abs() < 1e-12, "geometric centre");
    }
}
