//! Reading a reduced CSV back (`<out stem>.reduced.csv`, written by `run` with
//! a `[reduce]` table; src/reduce/output.rs): one row per group, the group's
//! axis values first (a bin's centre for a binned axis, `never` as -1), then
//! `<output>.<stat>` columns, then with `[reduce.best]` `best.<value>.share`
//! per value of the choice axis, `best.<output>.mean` and
//! `reference.<output>.mean`. `plot` and `summarize` dispatch here when
//! [`is_reduced`] says so. The file has one row per group (hundreds), so it is
//! read whole.
//!
//! Besides its own columns, a reduced CSV with `best` offers two derived ones:
//! `best` (the modal best value of a group: the value with the largest
//! `best.<value>.share`, the first in axis order on a tie) and
//! `delta.<output>` (`best.<output>.mean - reference.<output>.mean`).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};

use super::{AxisScale, Grouping, is_geometric, is_never};
use crate::InputError;
use crate::config::error::suggest;
use crate::output::manifest_path;
use crate::reduce::Stat;

/// Whether `path` is a reduced CSV: its header's first column is not
/// `scenario` and either its manifest has a `reduce` section or its header
/// has `<output>.<stat>` columns. A file that cannot be read is not (the
/// row-CSV reader then reports why).
pub fn is_reduced(path: &Path) -> bool {
    let Some(columns) = header(path) else {
        return false;
    };
    if columns.first().map(String::as_str) == Some("scenario") {
        return false;
    }
    manifest(path, &columns).is_some() || columns.iter().any(|c| is_stat_column(c) || is_best_column(c))
}

fn header(path: &Path) -> Option<Vec<String>> {
    let file = File::open(path).ok()?;
    Some(csv::Reader::from_reader(file).headers().ok()?.iter().map(str::to_string).collect())
}

/// The manifest beside `path` when it describes a reduction and its `columns` are this header.
fn manifest(path: &Path, columns: &[String]) -> Option<serde_json::Value> {
    let bytes = std::fs::read(manifest_path(path)).ok()?;
    let m: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let same = m["columns"].as_array().is_some_and(|c| c.iter().map(|v| v.as_str()).eq(columns.iter().map(|c| Some(c.as_str()))));
    (same && m["reduce"].is_object()).then_some(m)
}

/// `<output>.<stat>`, e.g. `npv.open.mean`, `share.open.q95`.
fn is_stat_column(c: &str) -> bool {
    !c.starts_with("best.") && !c.starts_with("reference.") && c.rsplit_once('.').is_some_and(|(_, s)| Stat::parse(s).is_some())
}

fn is_best_column(c: &str) -> bool {
    c.starts_with("reference.") || (c.starts_with("best.") && (c.ends_with(".share") || c.ends_with(".mean")))
}

/// The `[reduce.best]` part of a reduced CSV.
pub struct BestColumns {
    /// The choice axis (`best` when the manifest does not say).
    pub axis: String,
    /// `maximize npv.open`, when the manifest says.
    pub objective: Option<String>,
    /// The reference value's label, when the manifest says.
    pub reference: Option<String>,
    /// The choice axis's values as labels (`never` for -1), in axis order.
    pub labels: Vec<String>,
    /// The column of `best.<label>.share`, per label.
    pub share_cols: Vec<usize>,
}

/// A column to show: one of the file's, or a derived one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// A numeric column of the file.
    Cell(usize),
    /// The modal best value (an index into [`BestColumns::labels`]).
    Best,
    /// `best.<output>.mean - reference.<output>.mean`: the columns of both.
    Delta(usize, usize),
}

/// A reduced CSV, read whole.
pub struct ReducedCsv {
    path: PathBuf,
    columns: Vec<String>,
    /// Axis columns are `columns[..n_axes]`.
    n_axes: usize,
    /// Every row's cells, `None` where empty.
    rows: Vec<Vec<Option<f64>>>,
    manifest: Option<serde_json::Value>,
    best: Option<BestColumns>,
}

impl ReducedCsv {
    /// Reads `path` whole. A file that cannot be read, is not a reduced CSV,
    /// or has a cell that is not a number is an [`InputError`].
    pub fn open(path: &Path) -> anyhow::Result<ReducedCsv> {
        let file = File::open(path).map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))?;
        let mut reader = csv::Reader::from_reader(file);
        let columns: Vec<String> =
            reader.headers().map_err(|e| InputError(format!("{}: {e}", path.display())))?.iter().map(str::to_string).collect();
        let manifest = manifest(path, &columns);
        let n_axes = match manifest.as_ref().and_then(|m| m["reduce"]["spec"]["by"].as_array()) {
            Some(by) => by.len(),
            None => columns.iter().take_while(|c| !is_stat_column(c) && !is_best_column(c)).count(),
        };
        if n_axes == columns.len() || columns.first().map(String::as_str) == Some("scenario") {
            return Err(InputError(format!(
                "{} is not a reduced CSV: it has no <output>.<stat> or best.* columns after its group axes",
                path.display()
            ))
            .into());
        }
        let mut rows = Vec::new();
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(|e| InputError(format!("{}: {e}", path.display())))? {
            let line = record.position().map_or(0, |p| p.line());
            let row = record
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    if cell.is_empty() {
                        return Ok(None);
                    }
                    // + 0.0 turns -0 into 0, so that equal values have equal bits.
                    cell.parse::<f64>()
                        .map(|v| Some(v + 0.0))
                        .map_err(|_| InputError(format!("{}:{line}: {}: \"{cell}\" is not a number", path.display(), columns[i])))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if row[..n_axes].iter().any(Option::is_none) {
                return Err(InputError(format!("{}:{line}: a group axis value is empty", path.display())).into());
            }
            rows.push(row);
        }
        let share_cols: Vec<usize> =
            (n_axes..columns.len()).filter(|&i| columns[i].starts_with("best.") && columns[i].ends_with(".share")).collect();
        let best = (!share_cols.is_empty()).then(|| {
            let spec = manifest.as_ref().map(|m| &m["reduce"]["spec"]["best"]);
            let text = |key: &str| spec.and_then(|b| b[key].as_str()).map(str::to_string);
            let objective = text("maximize").map(|o| format!("maximize {o}")).or_else(|| text("minimize").map(|o| format!("minimize {o}")));
            let reference = spec.and_then(|b| match &b["reference"] {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
            BestColumns {
                axis: text("axis").unwrap_or_else(|| "best".to_string()),
                objective,
                reference,
                labels: share_cols.iter().map(|&i| columns[i]["best.".len()..columns[i].len() - ".share".len()].to_string()).collect(),
                share_cols,
            }
        });
        Ok(ReducedCsv { path: path.to_path_buf(), columns, n_axes, rows, manifest, best })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The group axes, in CSV order.
    pub fn axes(&self) -> &[String] {
        &self.columns[..self.n_axes]
    }

    /// The rows (groups), each a cell per column.
    pub fn rows(&self) -> &[Vec<Option<f64>>] {
        &self.rows
    }

    pub fn best(&self) -> Option<&BestColumns> {
        self.best.as_ref()
    }

    /// The name of the column at `col`.
    pub fn column_name(&self, col: usize) -> &str {
        &self.columns[col]
    }

    /// The reduced outputs, in CSV order (from the `<output>.<stat>` columns).
    pub fn outputs(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for c in self.columns[self.n_axes..].iter().filter(|c| is_stat_column(c)) {
            let (o, _) = c.rsplit_once('.').expect("a stat column has a dot");
            if !seen.contains(&o) {
                seen.push(o);
            }
        }
        seen
    }

    /// The statistics of the `<output>.<stat>` columns, in CSV order.
    pub fn stats(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for c in self.columns[self.n_axes..].iter().filter(|c| is_stat_column(c)) {
            let (_, s) = c.rsplit_once('.').expect("a stat column has a dot");
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        seen
    }

    /// The column named `name`, if the file has it.
    pub fn find_column(&self, name: &str) -> Option<usize> {
        (self.n_axes..self.columns.len()).find(|&i| self.columns[i] == name)
    }

    /// The sweep's name: the manifest's `config.sweep.name`, else the file stem.
    pub fn sweep_name(&self) -> String {
        match self.manifest.as_ref().and_then(|m| m["config"]["sweep"]["name"].as_str()) {
            Some(name) => name.to_string(),
            None => self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }

    /// The column index of group axis `name`, or an error naming the group axes.
    /// `flag` is the command-line flag that gave the name.
    pub fn axis_column(&self, flag: &str, name: &str) -> Result<usize, InputError> {
        if let Some(i) = (0..self.n_axes).find(|&i| self.columns[i] == name) {
            return Ok(i);
        }
        let valid = self.axes();
        let problem = if self.columns.iter().any(|c| c == name) {
            format!("\"{name}\" is not a group axis of {}", self.path.display())
        } else {
            format!("{} has no group axis \"{name}\"{}", self.path.display(), suggest(name, valid.iter().map(String::as_str)))
        };
        Err(InputError(format!("{flag}: {problem}; its group axes are: {}", valid.join(", "))))
    }

    /// Every name [`ReducedCsv::column`] accepts, in order: the file's
    /// columns after the axes, then `best` and `delta.<output>`.
    pub fn column_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.columns[self.n_axes..].to_vec();
        if self.best.is_some() {
            names.push("best".into());
            names.extend(self.deltas().into_iter().map(|(o, _, _)| format!("delta.{o}")));
        }
        names
    }

    /// `(output, best column, reference column)` for each output with both means.
    fn deltas(&self) -> Vec<(String, usize, usize)> {
        self.columns[self.n_axes..]
            .iter()
            .filter_map(|c| {
                let o = c.strip_prefix("best.")?.strip_suffix(".mean")?;
                Some((o.to_string(), self.find_column(c)?, self.find_column(&format!("reference.{o}.mean"))?))
            })
            .collect()
    }

    /// The column `name` (see [`ReducedCsv::column_names`]), or an error naming the valid ones.
    pub fn column(&self, flag: &str, name: &str) -> Result<Column, InputError> {
        if let Some(i) = self.find_column(name) {
            return Ok(Column::Cell(i));
        }
        if self.best.is_some() {
            if name == "best" {
                return Ok(Column::Best);
            }
            if let Some(o) = name.strip_prefix("delta.")
                && let Some((_, b, r)) = self.deltas().into_iter().find(|(d, _, _)| d == o)
            {
                return Ok(Column::Delta(b, r));
            }
        }
        let valid = self.column_names();
        let problem = if self.axes().iter().any(|a| a == name) {
            format!("\"{name}\" is a group axis of {}, not a column to show", self.path.display())
        } else {
            format!("{} has no column \"{name}\"{}", self.path.display(), suggest(name, valid.iter().map(String::as_str)))
        };
        Err(InputError(format!("{flag}: {problem}; its columns are: {}", valid.join(", "))))
    }

    /// The value of `column` in `row` (for [`Column::Best`], the index of the modal value).
    pub fn value(&self, row: &[Option<f64>], column: Column) -> Option<f64> {
        match column {
            Column::Cell(i) => row[i],
            Column::Best => self.modal(row).map(|(k, _)| k as f64),
            Column::Delta(b, r) => Some(row[b]? - row[r]?),
        }
    }

    /// The shares of the choice axis's values in `row` (0 where empty).
    pub fn shares(&self, row: &[Option<f64>]) -> Vec<f64> {
        self.best.as_ref().map_or(Vec::new(), |b| b.share_cols.iter().map(|&c| row[c].unwrap_or(0.0)).collect())
    }

    /// The modal best value of `row`: its index and share (the first in axis
    /// order on a tie); `None` when no share is positive (a group without worlds).
    pub fn modal(&self, row: &[Option<f64>]) -> Option<(usize, f64)> {
        modal(&self.shares(row))
    }

    /// How group axis `col` is shown: its distinct values (bin centres),
    /// ascending, `never` last; on a log scale when the manifest says the axis
    /// is logspace, loguniform or log-binned, or (without a manifest) its
    /// values are geometrically spaced.
    pub fn scale(&self, col: usize) -> AxisScale {
        let name = self.columns[col].clone();
        let mut never = false;
        let mut seen = HashSet::new();
        for row in &self.rows {
            let v = row[col].expect("axis cells are checked on reading");
            if is_never(&name, v) {
                never = true;
            } else {
                seen.insert(v.to_bits());
            }
        }
        let mut values: Vec<f64> = seen.into_iter().map(f64::from_bits).collect();
        values.sort_by(f64::total_cmp);
        let by =
            self.manifest.as_ref().and_then(|m| m["reduce"]["spec"]["by"].as_array()?.iter().find(|b| b["axis"] == name.as_str()).cloned());
        let described =
            self.manifest.as_ref().and_then(|m| m["config"]["axes"].as_array()?.iter().find(|a| a["path"] == name.as_str()).cloned());
        let log = values.first().is_some_and(|&v| v > 0.0)
            && match (by.as_ref().and_then(|b| b["log"].as_bool()), described) {
                (Some(log), _) => log,
                (None, Some(axis)) => axis.get("logspace").or(axis.get("loguniform")).is_some(),
                (None, None) => is_geometric(&values),
            };
        let index = values.iter().enumerate().map(|(i, v)| (v.to_bits(), i)).collect();
        AxisScale { name, log, grouping: Grouping::Values(values, index), never }
    }

    /// The slot of `row`'s value of axis `col` in `scale` (made by [`ReducedCsv::scale`]).
    pub fn slot(&self, scale: &AxisScale, row: &[Option<f64>], col: usize) -> usize {
        scale.slot(row[col].expect("axis cells are checked on reading"))
    }
}

/// The index and value of the largest positive share, the first on a tie.
pub fn modal(shares: &[f64]) -> Option<(usize, f64)> {
    let mut best: Option<(usize, f64)> = None;
    for (k, &s) in shares.iter().enumerate() {
        if s > 0.0 && best.is_none_or(|(_, b)| s > b) {
            best = Some((k, s));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modal_takes_the_first_of_equal_shares() {
        assert_eq!(modal(&[0.25, 0.5, 0.25]), Some((1, 0.5)));
        assert_eq!(modal(&[0.0, 0.5, 0.5]), Some((1, 0.5)));
        assert_eq!(modal(&[0.0, 0.0]), None);
    }

    #[test]
    fn columns_are_told_apart() {
        assert!(is_stat_column("npv.open.mean") && is_stat_column("share.open.q95") && is_stat_column("npv.open.count"));
        assert!(!is_stat_column("model.ad_uplift") && !is_stat_column("firm.challenger.funding"));
        assert!(!is_stat_column("best.npv.open.mean") && is_best_column("best.npv.open.mean"));
        assert!(is_best_column("best.never.share") && is_best_column("reference.npv.open.mean"));
    }
}
