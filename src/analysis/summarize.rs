//! `moatsweep summarize`: per group of rows (each combination of the `--by`
//! axes' values, or all rows), every output's mean, min and max, the share of
//! rows in which each firm exited, and the number of non-converged scenarios.
//! A firm's exit month (`exit_month.<firm>`, -1 when it survived) is summarized
//! over the rows where it exited only: its mean, min and max are exit months,
//! and there are none (empty, `-`) when it never exited.
//! A reduced CSV (see [`super::reduced`]) is already one row per group: per
//! group, its statistics of each output (or of those given with `--output`)
//! and the modal best value with its share of the group's worlds.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use super::reduced::{self, Reduced};
use super::{AxisScale, Stats, SweepFile, fmt_number};
use crate::InputError;

/// Mean, min and max of every output, exits and non-convergence, per group.
#[derive(clap::Args, Debug)]
pub struct SummarizeArgs {
    /// A sweep CSV written by `moatsweep run`, or a reduced CSV (`<out stem>.reduced.csv`: one block per group, with the modal best value).
    pub csv: PathBuf,
    /// Group the rows by this axis (repeatable: one group per combination of values). Not for a reduced CSV, already one row per group.
    #[arg(long, value_name = "AXIS")]
    pub by: Vec<String>,
    /// Write the table as CSV (one row per group) instead of printing it.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// A reduced CSV only: show this output (repeatable; default: every reduced output).
    #[arg(long = "output", value_name = "OUTPUT")]
    pub outputs: Vec<String>,
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
    let csv = SweepFile::open(&args.csv)?;
    if csv.is_reduced() {
        return run_reduced(args, Reduced::read(csv)?, out);
    }
    if let Some(o) = args.outputs.first() {
        return Err(InputError(format!(
            "--output {o}: --output picks the outputs of a reduced CSV; {} is a sweep CSV, whose summary shows every output",
            args.csv.display()
        ))
        .into());
    }
    csv.check_outputs()?;
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
            match *count {
                // -1: the firm survived; its exit month is not a month to average.
                Count::Exit(_) if v < 0.0 => continue,
                Count::Exit(i) => group.exits[i] += 1,
                Count::Nonconverged if v > 0.0 => group.nonconverged += 1,
                _ => {}
            }
            stats.add(v);
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
    /// min and max as columns (exit months over the rows where the firm exited),
    /// then each firm's exit share with its mean exit month, and non-convergence.
    fn print(&self, out: &mut impl Write) -> std::io::Result<()> {
        let names: Vec<String> =
            self.outputs.iter().map(|o| if o.starts_with("exit_month.") { format!("{o} (if exited)") } else { o.clone() }).collect();
        let name_w = names.iter().map(String::len).max().unwrap_or(0).max("output".len());
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
            for (name, [mean, min, max]) in names.iter().zip(&cells) {
                writeln!(out, "  {name:name_w$}  {mean:>num_w$}  {min:>num_w$}  {max:>num_w$}")?;
            }
            let exits: Vec<String> = self
                .firms
                .iter()
                .zip(&g.exits)
                .map(|(f, &n)| {
                    let share = format!("{f} {:.1}%", 100.0 * n as f64 / g.rows as f64);
                    match self.exit_stats(g, f).and_then(Stats::mean) {
                        Some(mean) => format!("{share} (mean exit month {})", fmt_number(mean, 4)),
                        None => share,
                    }
                })
                .collect();
            writeln!(out, "  exited (share of rows): {}", exits.join(", "))?;
            writeln!(out, "  non-converged scenarios: {} of {}", g.nonconverged, g.rows)?;
        }
        Ok(())
    }

    /// The statistics of firm `firm`'s exit months in group `g` (over the rows where it exited).
    fn exit_stats<'g>(&self, g: &'g Group, firm: &str) -> Option<&'g Stats> {
        let name = format!("exit_month.{firm}");
        self.outputs.iter().position(|o| *o == name).map(|k| &g.outputs[k])
    }

    /// One row per group: the `by` axis values (a bin's centre, geometric on
    /// a log scale, for a binned axis; `never` as -1), `rows`, `<output>.mean`,
    /// `<output>.min`, `<output>.max` per output (empty where the output had
    /// no value; for `exit_month.<firm>`, over the rows where the firm exited,
    /// empty when it never did), `exited.<firm>` (a share of the rows) per
    /// firm, and `nonconverged_scenarios`.
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

/// `moatsweep summarize` of a reduced CSV: its groups are already made, so
/// `--by` does not apply. Per group, a line naming it, then one line per
/// output with its statistics (the file's `<output>.<stat>` columns), then,
/// with `best`, the mean at the best value and at the reference value, and a
/// line with the modal best value, its share of the group's worlds and every
/// other value with a positive share. `--out` writes the same as CSV: the
/// group axes, the chosen outputs' columns, `best`, `best.share`.
fn run_reduced(args: &SummarizeArgs, csv: Reduced, out: &mut impl Write) -> anyhow::Result<()> {
    if let Some(by) = args.by.first() {
        return Err(InputError(format!(
            "--by {by}: {} is a reduced CSV, already one row per group of {}; --by does not apply",
            args.csv.display(),
            csv.axes().join(", ")
        ))
        .into());
    }
    let all = csv.outputs();
    for o in &args.outputs {
        if !all.contains(&o.as_str()) {
            return Err(InputError(format!(
                "--output: {} has no reduced output \"{o}\"{}; its outputs are: {}",
                args.csv.display(),
                crate::config::error::suggest(o, all.iter().copied()),
                all.join(", ")
            ))
            .into());
        }
    }
    let outputs: Vec<&str> = if args.outputs.is_empty() { all } else { args.outputs.iter().map(String::as_str).collect() };
    let stats = csv.stats();
    let mut heads: Vec<String> = stats.iter().map(|s| s.to_string()).collect();
    let mut cols: Vec<Vec<Option<usize>>> =
        outputs.iter().map(|o| stats.iter().map(|s| csv.find_column(&format!("{o}.{s}"))).collect()).collect();
    // The means at the chosen value (best) or the leader-follower outcome (game), and at the reference.
    let at = if csv.game().is_some() { Some("leader") } else { csv.best().map(|_| "best") };
    if let Some(at) = at {
        heads.extend([at.to_string(), "reference".to_string()]);
        for (o, c) in outputs.iter().zip(&mut cols) {
            c.extend([at, "reference"].map(|p| csv.find_column(&format!("{p}.{o}.mean"))));
        }
    }
    let scales: Vec<AxisScale> = (0..csv.axes().len()).map(|c| csv.scale(c)).collect();
    let label = |row: &[Option<f64>]| -> String {
        scales.iter().enumerate().map(|(c, s)| format!("{} = {}", s.name, s.label(csv.slot(s, row, c), 6))).collect::<Vec<_>>().join(", ")
    };

    if let Some(path) = &args.out {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| InputError(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut w = csv::Writer::from_path(path).map_err(|e| InputError(format!("cannot write {}: {e}", path.display())))?;
        let mut header: Vec<String> = csv.axes().to_vec();
        for o in &outputs {
            header.extend(heads.iter().map(|h| match h.as_str() {
                "best" | "leader" | "reference" => format!("{h}.{o}.mean"),
                s => format!("{o}.{s}"),
            }));
        }
        if csv.best().is_some() {
            header.extend(["best".to_string(), "best.share".to_string()]);
        }
        if csv.game().is_some() {
            header.extend(["nash.one.share", "nash.many.share", "nash", "nash.share", "leader", "leader.share"].map(String::from));
        }
        w.write_record(&header)?;
        for row in csv.rows() {
            let mut record: Vec<String> = row[..csv.axes().len()].iter().map(|v| number(v.expect("axis cells are checked"))).collect();
            record.extend(cols.iter().flatten().map(|c| c.and_then(|c| row[c]).map_or(String::new(), number)));
            if let Some(b) = csv.best() {
                match csv.modal(row) {
                    Some((k, share)) => record.extend([b.labels[k].clone(), number(share)]),
                    None => record.extend([String::new(), String::new()]),
                }
            }
            if let Some(g) = csv.game() {
                record.extend([g.one_col, g.many_col].map(|c| row[c].map_or(String::new(), number)));
                for leader in [false, true] {
                    match reduced::modal(&csv.game_shares(row, leader)) {
                        Some((k, share)) => record.extend([g.labels[k].clone(), number(share)]),
                        None => record.extend([String::new(), String::new()]),
                    }
                }
            }
            w.write_record(&record)?;
        }
        w.flush()?;
        writeln!(out, "wrote {} groups to {}", csv.rows().len(), path.display())?;
        return Ok(());
    }

    writeln!(
        out,
        "{} (sweep {}): reduced, {} groups by {}",
        args.csv.display(),
        csv.sweep_name(),
        csv.rows().len(),
        csv.axes().join(", ")
    )?;
    if let Some(b) = csv.best() {
        let objective = b.objective.as_ref().map_or(String::new(), |o| format!(" to {o}"));
        let reference = b.reference.as_ref().map_or(String::new(), |r| format!(" (reference: {r})"));
        writeln!(
            out,
            "best: per world, the {} value{objective}; \"best\" and \"reference\" are the outputs' means at the best value and at the reference{reference}",
            b.axis
        )?;
    }
    if let Some(g) = csv.game() {
        let players: Vec<String> = g
            .players
            .iter()
            .enumerate()
            .map(|(i, p)| match g.payoffs.get(i) {
                Some(pay) => format!("{p} (maximizing {pay})"),
                None => p.clone(),
            })
            .collect();
        writeln!(out, "game: {}; profiles are their values in this order, joined by _", players.join(" x "))?;
        writeln!(
            out,
            "\"leader\" and \"reference\" are the outputs' means at the leader-follower outcome ({} moves first) and at the reference profile",
            g.players[0]
        )?;
    }
    let name_w = outputs.iter().map(|o| o.len()).max().unwrap_or(0).max("output".len());
    for row in csv.rows() {
        let cells: Vec<Vec<String>> =
            cols.iter().map(|c| c.iter().map(|c| c.and_then(|c| row[c]).map_or("-".to_string(), |v| fmt_number(v, 6))).collect()).collect();
        let num_w = cells.iter().flatten().chain(&heads).map(String::len).max().unwrap_or(0);
        writeln!(out)?;
        writeln!(out, "{}", label(row))?;
        write!(out, "  {:name_w$}", "output")?;
        for h in &heads {
            write!(out, "  {h:>num_w$}")?;
        }
        writeln!(out)?;
        for (o, cells) in outputs.iter().zip(&cells) {
            write!(out, "  {o:name_w$}")?;
            for c in cells {
                write!(out, "  {c:>num_w$}")?;
            }
            writeln!(out)?;
        }
        if let Some(b) = csv.best() {
            let shares = csv.shares(row);
            match csv.modal(row) {
                Some((k, share)) => {
                    let others: Vec<String> = shares
                        .iter()
                        .enumerate()
                        .filter(|&(i, &s)| i != k && s > 0.0)
                        .map(|(i, &s)| format!("{} {:.1}%", b.labels[i], 100.0 * s))
                        .collect();
                    let others = if others.is_empty() { String::new() } else { format!("; also {}", others.join(", ")) };
                    writeln!(out, "  best {}: {} in {:.1}% of worlds{others}", b.axis, b.labels[k], 100.0 * share)?;
                }
                None => writeln!(out, "  best {}: - (no worlds)", b.axis)?,
            }
        }
        if let Some(g) = csv.game() {
            let pct = |v: Option<f64>| format!("{:.1}%", 100.0 * v.unwrap_or(0.0));
            let listed = |shares: Vec<f64>| {
                let mut v: Vec<(usize, f64)> = shares.into_iter().enumerate().filter(|&(_, s)| s > 0.0).collect();
                v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                v.iter().map(|&(k, s)| format!("{} {}", g.labels[k], pct(Some(s)))).collect::<Vec<_>>().join(", ")
            };
            let none = *g.nash_cols.last().expect("the none column");
            writeln!(
                out,
                "  worlds with no pure equilibrium {}, one {}, several {}",
                pct(row[none]),
                pct(row[g.one_col]),
                pct(row[g.many_col])
            )?;
            let nash = listed(csv.game_shares(row, false)[..g.labels.len() - 1].to_vec());
            writeln!(out, "  equilibria (share of worlds where each is one): {}", if nash.is_empty() { "-".into() } else { nash })?;
            let leader = listed(csv.game_shares(row, true));
            writeln!(out, "  leader-follower outcome: {}", if leader.is_empty() { "- (no worlds)".into() } else { leader })?;
        }
    }
    Ok(())
}
