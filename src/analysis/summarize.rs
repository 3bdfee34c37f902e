//! `moatsweep summarize`: per group of rows (each combination of the `--by`
//! axes' values, or all rows), every output's mean, min and max, the share of
//! rows in which each firm exited, and the number of non-converged scenarios.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use super::{AxisScale, Stats, SweepCsv, fmt_number};
use crate::InputError;

/// Mean, min and max of every output, exits and non-convergence, per group.
#[derive(clap::Args, Debug)]
pub struct SummarizeArgs {
    /// A sweep CSV written by `moatsweep run`.
    pub csv: PathBuf,
    /// Group the rows by this axis (repeatable: one group per combination of values).
    #[arg(long, value_name = "AXIS")]
    pub by: Vec<String>,
    /// Write the table as CSV (one row per group) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// What an output column also counts, besides its statistics.
#[derive(Clone, Copy)]
enum Count {
    Nothing,
    /// `exit_month.<firm>` of firm i: the rows in which it exited (>= 0).
    Exit(usize),
    /// `nonconverged_months`: the rows with a month that did not converge (> 0).
    Nonconverged,
}

/// The aggregates of one group of rows.
struct Group {
    rows: u64,
    /// One per output column, in CSV order.
    outputs: Vec<Stats>,
    /// Rows in which each firm exited.
    exits: Vec<u64>,
    nonconverged: u64,
}

/// `moatsweep summarize`: aggregates the rows per group, then prints the groups or writes them as CSV.
pub fn run(args: &SummarizeArgs, out: &mut impl Write) -> anyhow::Result<()> {
    let csv = SweepCsv::open(&args.csv)?;
    let by: Vec<usize> = args.by.iter().map(|b| csv.axis_column("--by", b)).collect::<Result<_, _>>()?;
    if let Some(dup) = args.by.iter().enumerate().find_map(|(i, b)| args.by[..i].contains(b).then_some(b)) {
        return Err(InputError(format!("--by: axis \"{dup}\" is given twice")).into());
    }
    let firms: Vec<String> = csv.firms().into_iter().map(str::to_string).collect();
    let outputs: Vec<String> = csv.outputs().to_vec();
    let first_output = 1 + csv.axes().len();
    let counts: Vec<Count> = outputs
        .iter()
        .map(|name| match name.strip_prefix("exit_month.") {
            Some(firm) => Count::Exit(firms.iter().position(|f| f == firm).expect("firms come from these columns")),
            None if name == "nonconverged_months" => Count::Nonconverged,
            None => Count::Nothing,
        })
        .collect();

    // With --by, one pass to see the axes' values (and bin them if there are
    // many), then one to aggregate. Groups are keyed by the slot of each axis
    // value, so the map keeps them in the order of the values, `never` last.
    let scales = csv.scales(&by)?;
    let mut groups: BTreeMap<Vec<usize>, Group> = BTreeMap::new();
    let mut key = Vec::with_capacity(by.len());
    let rows = csv.for_each_row(|row| {
        key.clear();
        for (scale, &c) in scales.iter().zip(&by) {
            key.push(scale.slot(row.number(c)?));
        }
        if !groups.contains_key(&key) {
            let group = Group { rows: 0, outputs: vec![Stats::default(); outputs.len()], exits: vec![0; firms.len()], nonconverged: 0 };
            groups.insert(key.clone(), group);
        }
        let group = groups.get_mut(&key).expect("inserted above");
        group.rows += 1;
        for (k, (stats, count)) in group.outputs.iter_mut().zip(&counts).enumerate() {
            let Some(v) = row.value(first_output + k)? else {
                continue;
            };
            stats.add(v);
            match *count {
                Count::Exit(i) if v >= 0.0 => group.exits[i] += 1,
                Count::Nonconverged if v > 0.0 => group.nonconverged += 1,
                _ => {}
            }
        }
        Ok(())
    })?;

    let table = Table { by: &scales, outputs: &outputs, firms: &firms, groups: &groups };
    match &args.out {
        Some(path) => {
            table.write_csv(path)?;
            writeln!(out, "wrote {} groups of {rows} rows to {}", groups.len(), path.display())?;
        }
        None => {
            let grouping =
                if args.by.is_empty() { String::new() } else { format!(" in {} groups by {}", groups.len(), args.by.join(", ")) };
            writeln!(out, "{} (sweep {}): {rows} rows{grouping}", args.csv.display(), csv.sweep_name())?;
            table.print(out)?;
        }
    }
    Ok(())
}

/// The summary: one group per entry, keyed by the slot of each `by` axis.
struct Table<'a> {
    by: &'a [AxisScale],
    outputs: &'a [String],
    firms: &'a [String],
    groups: &'a BTreeMap<Vec<usize>, Group>,
}

impl Table<'_> {
    /// One block per group: a line naming it, the outputs as rows with mean,
    /// min and max as columns, then exits and non-convergence.
    fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        let name_w = self.outputs.iter().map(String::len).max().unwrap_or(0).max("output".len());
        for (key, g) in self.groups {
            let cells: Vec<[String; 3]> = g
                .outputs
                .iter()
                .map(|s| match s.mean() {
                    Some(mean) => [mean, s.min, s.max].map(|v| fmt_number(v, 6)),
                    None => ["-", "-", "-"].map(str::to_string),
                })
                .collect();
            let num_w = cells.iter().flatten().map(String::len).max().unwrap_or(0).max("mean".len());
            writeln!(out)?;
            if self.by.is_empty() {
                writeln!(out, "all rows: {}", g.rows)?;
            } else {
                let names: Vec<String> = key
                    .iter()
                    .zip(self.by)
                    .map(|(&slot, axis)| match axis.bin(slot) {
                        Some((from, to)) => format!("{} in [{}, {})", axis.name, fmt_number(from, 4), fmt_number(to, 4)),
                        None => format!("{} = {}", axis.name, axis.label(slot, 6)),
                    })
                    .collect();
                writeln!(out, "{}: {} rows", names.join(", "), g.rows)?;
            }
            writeln!(out, "  {:name_w$}  {:>num_w$}  {:>num_w$}  {:>num_w$}", "output", "mean", "min", "max")?;
            for (name, [mean, min, max]) in self.outputs.iter().zip(&cells) {
                writeln!(out, "  {name:name_w$}  {mean:>num_w$}  {min:>num_w$}  {max:>num_w$}")?;
            }
            let exits: Vec<String> =
                self.firms.iter().zip(&g.exits).map(|(f, &n)| format!("{f} {:.1}%", 100.0 * n as f64 / g.rows as f64)).collect();
            writeln!(out, "  exited (share of rows): {}", exits.join(", "))?;
            writeln!(out, "  non-converged scenarios: {} of {}", g.nonconverged, g.rows)?;
        }
        Ok(())
    }

    /// One row per group: the `by` axis values (a bin's centre, geometric on
    /// a log scale, for a binned axis; `never` as -1), `rows`, `<output>.mean`,
    /// `<output>.min`, `<output>.max` per output (empty where the output had
    /// no value), `exited.<firm>` (a share of the rows) per firm, and
    /// `nonconverged_scenarios`.
    fn write_csv(&self, path: &std::path::Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| InputError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut w = csv::Writer::from_path(path).map_err(|e| InputError(format!("cannot write {}: {e}", path.display())))?;
        let mut header: Vec<String> = self.by.iter().map(|a| a.name.clone()).collect();
        header.push("rows".into());
        for o in self.outputs {
            header.extend(["mean", "min", "max"].map(|s| format!("{o}.{s}")));
        }
        header.extend(self.firms.iter().map(|f| format!("exited.{f}")));
        header.push("nonconverged_scenarios".into());
        w.write_record(&header)?;
        for (key, g) in self.groups {
            let mut record: Vec<String> = key.iter().zip(self.by).map(|(&slot, axis)| number(axis.value(slot))).collect();
            record.push(g.rows.to_string());
            for s in &g.outputs {
                match s.mean() {
                    Some(mean) => record.extend([mean, s.min, s.max].map(number)),
                    None => record.extend(["", "", ""].map(str::to_string)),
                }
            }
            record.extend(g.exits.iter().map(|&n| number(n as f64 / g.rows as f64)));
            record.push(g.nonconverged.to_string());
            w.write_record(&record)?;
        }
        w.flush()?;
        Ok(())
    }
}

/// Shortest form that reads back to the same number, without a trailing `.0`
/// (so months and counts read as integers, `never` as -1, as in the sweep CSV).
fn number(v: f64) -> String {
    ryu::Buffer::new().format(v).trim_end_matches(".0").to_string()
}
