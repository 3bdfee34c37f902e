//! Reading a reduced CSV back (`<out stem>.reduced.csv`, written by `run` with
//! a `[reduce]` table; src/reduce/output.rs): one row per group, the group's
//! axis values first (a bin's centre for a binned axis, `never` as -1), then
//! `<output>.<stat>` columns, then with `[reduce.best]` `best.<value>.share`
//! per value of the choice axis, `best.<output>.mean` and
//! `reference.<output>.mean`. `plot` and `summarize` dispatch here when
//! [`SweepFile::is_reduced`] says so. The file has one row per group (hundreds), so it is
//! read whole.
//!
//! Besides its own columns, a reduced CSV with `best` offers two derived ones:
//! `best` (the modal best value of a group: the value with the largest
//! `best.<value>.share`, the first in axis order on a tie) and
//! `delta.<output>` (`best.<output>.mean - reference.<output>.mean`). One with
//! `[reduce.game]` (`nash.*` and `leader.*` columns) offers `nash` (the modal
//! equilibrium profile: the profile that is an equilibrium in the most worlds,
//! or `none` when more worlds have none) and `leader` (the modal leader-follower
//! outcome), and `delta.<output>` (`leader.<output>.mean - reference.<output>.mean`).

use std::collections::HashSet;
use std::path::Path;

use super::sweep_file::{Provenance, SweepFile, is_stat_column};
use super::{AxisScale, Grouping, is_never};
use crate::InputError;
use crate::config::error::suggest;
use crate::sweep::provenance::{BestSpec, GameSpec};

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

/// The `[reduce.game]` part of a reduced CSV.
pub struct GameColumns {
    /// The players' axes (from the manifest; `player 1`, ... without one), the leader first.
    pub players: Vec<String>,
    /// Their payoffs, when the manifest says.
    pub payoffs: Vec<String>,
    /// Every profile's label (`0_never`), in profile order, then `none`.
    pub labels: Vec<String>,
    /// The columns of `nash.<profile>.share` per profile, then `nash.none.share`.
    pub nash_cols: Vec<usize>,
    /// The columns of `leader.<profile>.share` per profile, then `leader.none.share`.
    pub leader_cols: Vec<usize>,
    /// `nash.one.share` and `nash.many.share`.
    pub one_col: usize,
    pub many_col: usize,
}

/// A column to show: one of the file's, or a derived one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// A numeric column of the file.
    Cell(usize),
    /// The modal best value (an index into [`BestColumns::labels`]).
    Best,
    /// `best.<output>.mean - reference.<output>.mean` (or `leader.` for a game): the columns of both.
    Delta(usize, usize),
    /// A game's modal equilibrium profile (an index into [`GameColumns::labels`]).
    Nash,
    /// A game's modal leader-follower outcome (an index into [`GameColumns::labels`]).
    Leader,
}

/// A reduced CSV, read whole (its header and manifest by [`SweepFile`]).
pub struct Reduced {
    file: SweepFile,
    /// Every row's cells, `None` where empty.
    rows: Vec<Vec<Option<f64>>>,
    best: Option<BestColumns>,
    game: Option<GameColumns>,
}

impl Reduced {
    /// Reads the rows of `file`, a reduced file ([`SweepFile::is_reduced`]). A
    /// cell that is not a number, or an empty group axis value, is an [`InputError`].
    pub fn read(file: SweepFile) -> anyhow::Result<Reduced> {
        let n_axes = file.axes().len();
        let mut rows = Vec::new();
        file.for_each_row(|row| {
            let cells = row.values()?;
            if cells[..n_axes].iter().any(Option::is_none) {
                return Err(InputError(format!("{}: a group axis value is empty", row.at())).into());
            }
            rows.push(cells);
            Ok(())
        })?;
        let columns = file.header();
        let share_cols: Vec<usize> =
            (n_axes..columns.len()).filter(|&i| columns[i].starts_with("best.") && columns[i].ends_with(".share")).collect();
        let best = (!share_cols.is_empty()).then(|| {
            let spec: Option<&BestSpec> = file.manifest().and_then(Provenance::reduce).and_then(|r| r.best.as_ref());
            BestColumns {
                axis: spec.map_or_else(|| "best".to_string(), |b| b.axis.clone()),
                objective: spec.map(|b| b.goal.to_string()),
                reference: spec.map(|b| match &b.reference {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
                labels: share_cols.iter().map(|&i| columns[i]["best.".len()..columns[i].len() - ".share".len()].to_string()).collect(),
                share_cols,
            }
        });
        let game = read_game(&file)?;
        Ok(Reduced { file, rows, best, game })
    }

    pub fn game(&self) -> Option<&GameColumns> {
        self.game.as_ref()
    }

    /// A game's shares of each profile, then of `none`, in `row`: of the worlds
    /// where it is an equilibrium, or (`leader`) whose leader-follower outcome it is.
    pub fn game_shares(&self, row: &[Option<f64>], leader: bool) -> Vec<f64> {
        self.game.as_ref().map_or(Vec::new(), |g| {
            let cols = if leader { &g.leader_cols } else { &g.nash_cols };
            cols.iter().map(|&c| row[c].unwrap_or(0.0)).collect()
        })
    }

    /// The file it was read from.
    pub fn file(&self) -> &SweepFile {
        &self.file
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// The group axes, in CSV order.
    pub fn axes(&self) -> &[String] {
        self.file.axes()
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
        self.file.column(col)
    }

    /// The columns after the group axes.
    fn stat_columns(&self) -> &[String] {
        &self.file.header()[self.axes().len()..]
    }

    /// The reduced outputs, in CSV order (from the `<output>.<stat>` columns).
    pub fn outputs(&self) -> Vec<&str> {
        let mut seen = Vec::new();
        for c in self.stat_columns().iter().filter(|c| is_stat_column(c)) {
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
        for c in self.stat_columns().iter().filter(|c| is_stat_column(c)) {
            let (_, s) = c.rsplit_once('.').expect("a stat column has a dot");
            if !seen.contains(&s) {
                seen.push(s);
            }
        }
        seen
    }

    /// The column named `name`, if the file has it.
    pub fn find_column(&self, name: &str) -> Option<usize> {
        let n_axes = self.axes().len();
        (n_axes..self.file.header().len()).find(|&i| self.file.header()[i] == name)
    }

    /// The sweep's name (see [`SweepFile::sweep_name`]).
    pub fn sweep_name(&self) -> String {
        self.file.sweep_name()
    }

    /// The column index of group axis `name`, or an error naming the group axes.
    /// `flag` is the command-line flag that gave the name.
    pub fn axis_column(&self, flag: &str, name: &str) -> Result<usize, InputError> {
        self.file.axis_column(flag, name)
    }

    /// Every name [`Reduced::column`] accepts, in order: the file's
    /// columns after the axes, then `best` (or `nash` and `leader`) and `delta.<output>`.
    pub fn column_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.stat_columns().to_vec();
        if self.best.is_some() {
            names.push("best".into());
        }
        if self.game.is_some() {
            names.extend(["nash".into(), "leader".into()]);
        }
        names.extend(self.deltas().into_iter().map(|(o, _, _)| format!("delta.{o}")));
        names
    }

    /// `(output, best column, reference column)` for each output with both means.
    fn deltas(&self) -> Vec<(String, usize, usize)> {
        self.stat_columns()
            .iter()
            .filter_map(|c| {
                let prefix = if self.game.is_some() { "leader." } else { "best." };
                let o = c.strip_prefix(prefix)?.strip_suffix(".mean")?;
                Some((o.to_string(), self.find_column(c)?, self.find_column(&format!("reference.{o}.mean"))?))
            })
            .collect()
    }

    /// The column `name` (see [`Reduced::column_names`]), or an error naming the valid ones.
    pub fn column(&self, flag: &str, name: &str) -> Result<Column, InputError> {
        if let Some(i) = self.find_column(name) {
            return Ok(Column::Cell(i));
        }
        match name {
            "best" if self.best.is_some() => return Ok(Column::Best),
            "nash" if self.game.is_some() => return Ok(Column::Nash),
            "leader" if self.game.is_some() => return Ok(Column::Leader),
            _ => {}
        }
        if let Some(o) = name.strip_prefix("delta.")
            && let Some((_, b, r)) = self.deltas().into_iter().find(|(d, _, _)| d == o)
        {
            return Ok(Column::Delta(b, r));
        }
        let valid = self.column_names();
        let problem = if self.axes().iter().any(|a| a == name) {
            format!("\"{name}\" is a group axis of {}, not a column to show", self.path().display())
        } else {
            format!("{} has no column \"{name}\"{}", self.path().display(), suggest(name, valid.iter().map(String::as_str)))
        };
        Err(InputError(format!("{flag}: {problem}; its columns are: {}", valid.join(", "))))
    }

    /// The value of `column` in `row` (for [`Column::Best`], the index of the modal value).
    pub fn value(&self, row: &[Option<f64>], column: Column) -> Option<f64> {
        match column {
            Column::Cell(i) => row[i],
            Column::Best => self.modal(row).map(|(k, _)| k as f64),
            Column::Nash => modal(&self.game_shares(row, false)).map(|(k, _)| k as f64),
            Column::Leader => modal(&self.game_shares(row, true)).map(|(k, _)| k as f64),
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
        let name = self.file.column(col).to_string();
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
        let (lo, hi) = (values.first().copied().unwrap_or(f64::NAN), values.last().copied().unwrap_or(f64::NAN));
        let log = self.file.is_log(&name, lo, hi, &values, false);
        let index = values.iter().enumerate().map(|(i, v)| (v.to_bits(), i)).collect();
        AxisScale { name, log, grouping: Grouping::Values(values, index), never }
    }

    /// The slot of `row`'s value of axis `col` in `scale` (made by [`Reduced::scale`]).
    pub fn slot(&self, scale: &AxisScale, row: &[Option<f64>], col: usize) -> usize {
        scale.slot(row[col].expect("axis cells are checked on reading"))
    }
}

/// The `[reduce.game]` columns of `file`, if it has them (`nash.none.share`
/// names a game's file); each profile's `nash.` and `leader.` columns must both
/// be there.
fn read_game(file: &SweepFile) -> anyhow::Result<Option<GameColumns>> {
    let columns = file.header();
    let find = |name: &str| columns.iter().position(|c| c == name);
    let Some(none) = find("nash.none.share") else { return Ok(None) };
    let missing = |name: &str| InputError(format!("{}: a game's file without a column {name}", file.path().display()));
    let one_col = find("nash.one.share").ok_or_else(|| missing("nash.one.share"))?;
    let many_col = find("nash.many.share").ok_or_else(|| missing("nash.many.share"))?;
    let leader_none = find("leader.none.share").ok_or_else(|| missing("leader.none.share"))?;
    let mut labels = Vec::new();
    let (mut nash_cols, mut leader_cols) = (Vec::new(), Vec::new());
    for (i, c) in columns.iter().enumerate() {
        let Some(l) = c.strip_prefix("nash.").and_then(|c| c.strip_suffix(".share")) else { continue };
        if ["none", "one", "many"].contains(&l) {
            continue;
        }
        let leader = find(&format!("leader.{l}.share")).ok_or_else(|| missing(&format!("leader.{l}.share")))?;
        labels.push(l.to_string());
        nash_cols.push(i);
        leader_cols.push(leader);
    }
    labels.push("none".into());
    nash_cols.push(none);
    leader_cols.push(leader_none);
    let spec: Option<&GameSpec> = file.manifest().and_then(Provenance::reduce).and_then(|r| r.game.as_ref());
    let players = match spec {
        Some(g) => g.players.iter().map(|p| p.axis.clone()).collect(),
        None => {
            let k = labels.first().map_or(0, |l| l.split('_').count());
            (1..=k).map(|i| format!("player {i}")).collect()
        }
    };
    let payoffs = spec.map_or(Vec::new(), |g| g.players.iter().map(|p| p.payoff.clone()).collect());
    Ok(Some(GameColumns { players, payoffs, labels, nash_cols, leader_cols, one_col, many_col }))
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
}
