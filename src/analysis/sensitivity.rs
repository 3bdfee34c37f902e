//! `moatsweep sensitivity`: which parameters move each output. Sobol indices
//! (S1, ST, S2) from a saltelli sweep, Morris elementary effects (mu, mu_star,
//! sigma) from a morris sweep, for every output at once, with the estimators of
//! SALib 1.6 (`SALib.analyze.sobol`, `SALib.analyze.morris`) so that on the same
//! rows the point estimates are SALib's:
//!
//! - Sobol: the output is standardized over the rows used, y' = (y - mean) / std
//!   (population std); with A, B, AB_j, BA_j the values of a block's rows and
//!   V the population variance of A and B together, S1_j = mean(B (AB_j - A)) / V
//!   (Saltelli 2010), ST_j = mean((A - AB_j)^2) / (2 V) (Jansen), S2_jk =
//!   mean(BA_j AB_k - A B) / V - S1_j - S1_k (Saltelli 2002).
//! - Morris: the elementary effect of axis j in a trajectory is (y at the
//!   higher level - y at the lower level) / delta, per unit of the axis's unit
//!   interval; mu, mu_star and sigma (n - 1) are their mean, mean absolute value
//!   and standard deviation over trajectories.
//!
//! Intervals: a bootstrap over blocks ([`super::bootstrap`]), the normal
//! approximation z sd as SALib reports them. A block with an empty or
//! non-finite value of an output, or a non-converged row, is left out of that
//! output's analysis.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::SweepFile;
use super::bootstrap::{normal_half_width, resampled_sums, std_ddof1};
use super::{fmt_number, image};
use crate::InputError;
use crate::design::{Morris, Position, Saltelli};
use crate::sweep::provenance::DesignSpec;

/// An output's report and, with bootstrap resamples, its terms and point estimates.
type Prepared = (OutputReport, Option<(Terms, Vec<Estimate>)>);

/// The column whose positive values mark a non-converged row.
pub const NONCONVERGED: &str = "nonconverged_months";
/// Bytes of per-block terms held at once (outputs are analysed in groups of this size).
const TERMS_BUDGET: usize = 256 << 20;

/// Sobol indices (saltelli sweep) or elementary effects (morris sweep) of every output.
#[derive(clap::Args, Debug)]
pub struct SensitivityArgs {
    /// A saltelli or morris sweep CSV, with its manifest beside it.
    pub csv: PathBuf,
    /// Only these outputs (comma-separated; default: every output column).
    #[arg(long, value_name = "A,B,...", value_delimiter = ',')]
    pub outputs: Vec<String>,
    /// Bootstrap resamples for the intervals.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(2..=1_000_000))]
    pub resamples: u64,
    /// Confidence level of the intervals (a normal-approximation half-width, as SALib).
    #[arg(long, default_value_t = 0.95)]
    pub conf: f64,
    /// Seed of the bootstrap draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Check the SHA-256 of a Parquet file's bytes against its manifest before
    /// computing (a full read of the file; a CSV is always checked, as it is
    /// read whole anyway). The header, row count, length and column types are
    /// always checked.
    #[arg(long)]
    pub verify_hash: bool,
    /// The tidy CSV to write (default: beside the input, <stem>.sensitivity.csv).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Also draw the indices with their intervals, one panel per output (.png or .svg).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
}

/// The analysis a sweep's design allows.
#[derive(Clone, Copy, Debug)]
pub enum Method {
    Sobol(Saltelli),
    Morris(Morris),
}

impl Method {
    pub fn block_rows(&self) -> usize {
        match self {
            Method::Sobol(s) => s.block_rows() as usize,
            Method::Morris(m) => m.block_rows() as usize,
        }
    }
}

/// One index estimate: `index` of `parameter` (and `parameter2` for S2).
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub index: &'static str,
    pub parameter: usize,
    pub parameter2: Option<usize>,
    pub value: f64,
    pub conf: f64,
}

/// What an output gave.
#[derive(Clone, Debug)]
pub enum Outcome {
    Indices(Vec<Estimate>),
    /// Every value used is the same (Sobol indices would divide by zero).
    ZeroVariance,
    /// Every block was dropped.
    NoBlocks,
}

/// One output's analysis.
#[derive(Clone, Debug)]
pub struct OutputReport {
    pub name: String,
    pub blocks: usize,
    pub dropped: usize,
    pub outcome: Outcome,
}

/// How the intervals are made.
#[derive(Clone, Copy, Debug)]
pub struct Bootstrap {
    pub resamples: usize,
    pub conf: f64,
    pub seed: u64,
}

/// The blocks of one output: `kept[b]` when block b has no empty, non-finite or non-converged row.
fn kept_blocks(values: &[f64], nonconverged: Option<&[f64]>, block: usize) -> Vec<bool> {
    values
        .chunks(block)
        .enumerate()
        .map(|(b, rows)| {
            rows.iter().all(|v| v.is_finite()) && nonconverged.is_none_or(|nc| nc[b * block..(b + 1) * block].iter().all(|&m| !(m > 0.0)))
        })
        .collect()
}

/// Per-block terms of an output whose estimates are functions of their sums.
struct Terms {
    /// blocks x m, row-major; zero rows for dropped blocks.
    values: Vec<f64>,
    m: usize,
}

/// Analyses every output of `outputs` (each the values of all rows, in row order,
/// block after block). `first_block` is the index of the first block in the
/// sweep (a morris trajectory's number decides its steps).
pub fn analyze(
    method: Method,
    outputs: &[(String, Vec<f64>)],
    nonconverged: Option<&[f64]>,
    first_block: u64,
    boot: Bootstrap,
) -> Vec<OutputReport> {
    let block = method.block_rows();
    let blocks = outputs.first().map_or(0, |o| o.1.len() / block);
    let z = normal_half_width(boot.conf);
    // Point estimates and bootstrap terms, per output.
    let prepared: Vec<Prepared> = {
        use rayon::prelude::*;
        outputs
            .par_iter()
            .map(|(name, values)| {
                let kept = kept_blocks(values, nonconverged, block);
                let used = kept.iter().filter(|&&k| k).count();
                let mut report = OutputReport { name: name.clone(), blocks, dropped: blocks - used, outcome: Outcome::NoBlocks };
                if used == 0 {
                    return (report, None);
                }
                let prepared = match method {
                    Method::Sobol(s) => sobol(s, values, &kept),
                    Method::Morris(m) => Some(morris(m, values, &kept, first_block)),
                };
                match prepared {
                    None => {
                        report.outcome = Outcome::ZeroVariance;
                        (report, None)
                    }
                    Some(p) => (report, Some(p)),
                }
            })
            .collect()
    };
    // Bootstrap in groups of outputs whose terms fit the budget.
    let mut reports = Vec::with_capacity(outputs.len());
    let mut group: Vec<(OutputReport, Terms, Vec<Estimate>)> = Vec::new();
    let mut group_bytes = 0;
    let flush = |group: &mut Vec<(OutputReport, Terms, Vec<Estimate>)>, reports: &mut Vec<OutputReport>| {
        let m: usize = group.iter().map(|g| g.1.m).sum();
        let mut terms = vec![0.0; blocks * m];
        let mut at = 0;
        for (_, t, _) in group.iter() {
            for b in 0..blocks {
                terms[b * m + at..b * m + at + t.m].copy_from_slice(&t.values[b * t.m..(b + 1) * t.m]);
            }
            at += t.m;
        }
        let sums = resampled_sums(&terms, blocks, m, boot.resamples, boot.seed);
        let mut at = 0;
        for (mut report, t, mut estimates) in group.drain(..) {
            let per_resample: Vec<Vec<f64>> =
                (0..boot.resamples).map(|r| resample_estimates(method, &sums[r * m + at..r * m + at + t.m])).collect();
            for (e, est) in estimates.iter_mut().enumerate() {
                est.conf = z * std_ddof1(per_resample.iter().map(|v| v[e]));
            }
            at += t.m;
            report.outcome = Outcome::Indices(estimates);
            reports.push(report);
        }
    };
    for (report, prepared) in prepared {
        match prepared {
            None => {
                flush(&mut group, &mut reports);
                group_bytes = 0;
                reports.push(report);
            }
            Some((terms, estimates)) => {
                let bytes = terms.values.len() * 8;
                if !group.is_empty() && group_bytes + bytes > TERMS_BUDGET {
                    flush(&mut group, &mut reports);
                    group_bytes = 0;
                }
                group_bytes += bytes;
                group.push((report, terms, estimates));
            }
        }
    }
    flush(&mut group, &mut reports);
    reports
}

/// The estimates of one resample from its sums of an output's terms, in the
/// order of that output's point estimates.
fn resample_estimates(method: Method, s: &[f64]) -> Vec<f64> {
    let n = s[0];
    match method {
        Method::Sobol(sal) => {
            let k = sal.k;
            let mean = s[1] / (2.0 * n);
            let var = s[2] / (2.0 * n) - mean * mean;
            let s1: Vec<f64> = (0..k).map(|j| s[3 + j] / n / var).collect();
            let mut out = s1.clone();
            out.extend((0..k).map(|j| 0.5 * s[3 + k + j] / n / var));
            if sal.second_order {
                let mut at = 3 + 2 * k;
                for j in 0..k {
                    for l in j + 1..k {
                        out.push(s[at] / n / var - s1[j] - s1[l]);
                        at += 1;
                    }
                }
            }
            out
        }
        Method::Morris(mo) => {
            let k = mo.k;
            let mut out = Vec::with_capacity(3 * k);
            for j in 0..k {
                let (sum, abs, sq) = (s[1 + j], s[1 + k + j], s[1 + 2 * k + j]);
                let mu = sum / n;
                out.extend([mu, abs / n, ((sq - n * mu * mu) / (n - 1.0)).max(0.0).sqrt()]);
            }
            out
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sobol indices as SALib: point estimates and the per-block terms of the
/// bootstrap (kept, A + B, A^2 + B^2, B (AB_j - A), (A - AB_j)^2, BA_j AB_k - A B).
/// `None` when the values used do not vary.
fn sobol(s: Saltelli, values: &[f64], kept: &[bool]) -> Option<(Terms, Vec<Estimate>)> {
    let block = s.block_rows() as usize;
    let k = s.k;
    let rows = || values.chunks(block).zip(kept).filter(|(_, k)| **k).flat_map(|(r, _)| r.iter().copied());
    let count = rows().count() as f64;
    let m = rows().sum::<f64>() / count;
    let sd = (rows().map(|v| (v - m) * (v - m)).sum::<f64>() / count).sqrt();
    if !(sd > 0.0) {
        return None;
    }
    let at = |p: Position| match p {
        Position::A => 0,
        Position::AB(j) => 1 + j,
        Position::BA(j) => 1 + k + j,
        Position::B => block - 1,
    };
    // Standardized values of the kept blocks, one vector per position.
    let column =
        |p: Position| -> Vec<f64> { values.chunks(block).zip(kept).filter(|(_, k)| **k).map(|(r, _)| (r[at(p)] - m) / sd).collect() };
    let (a, b) = (column(Position::A), column(Position::B));
    let ab: Vec<Vec<f64>> = (0..k).map(|j| column(Position::AB(j))).collect();
    let ba: Vec<Vec<f64>> = if s.second_order { (0..k).map(|j| column(Position::BA(j))).collect() } else { Vec::new() };
    let n = a.len();

    let ab_mean = (a.iter().sum::<f64>() + b.iter().sum::<f64>()) / (2 * n) as f64;
    let var = (a.iter().chain(&b).map(|v| (v - ab_mean) * (v - ab_mean)).sum::<f64>()) / (2 * n) as f64;
    let (lo, hi) = a.iter().chain(&b).fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    // SALib gives 0 where A and B do not vary (and where their variance is below machine epsilon).
    let flat = hi - lo <= f64::EPSILON || var <= f64::EPSILON;
    let ratio = |x: f64| if flat { 0.0 } else { x / var };
    let s1: Vec<f64> = (0..k).map(|j| ratio(mean(&(0..n).map(|i| b[i] * (ab[j][i] - a[i])).collect::<Vec<_>>()))).collect();
    let st: Vec<f64> = (0..k).map(|j| ratio(0.5 * mean(&(0..n).map(|i| (a[i] - ab[j][i]).powi(2)).collect::<Vec<_>>()))).collect();
    let mut estimates: Vec<Estimate> = Vec::new();
    let est = |index, parameter, parameter2, value| Estimate { index, parameter, parameter2, value, conf: f64::NAN };
    estimates.extend((0..k).map(|j| est("S1", j, None, s1[j])));
    estimates.extend((0..k).map(|j| est("ST", j, None, st[j])));
    if s.second_order {
        for j in 0..k {
            for l in j + 1..k {
                let v = ratio(mean(&(0..n).map(|i| ba[j][i] * ab[l][i] - a[i] * b[i]).collect::<Vec<_>>()));
                estimates.push(est("S2", j, Some(l), if flat { 0.0 } else { v - s1[j] - s1[l] }));
            }
        }
    }

    let pairs = if s.second_order { k * (k - 1) / 2 } else { 0 };
    let width = 3 + 2 * k + pairs;
    let blocks = kept.len();
    let mut terms = vec![0.0; blocks * width];
    let mut i = 0;
    for (bk, &keep) in kept.iter().enumerate() {
        if !keep {
            continue;
        }
        let t = &mut terms[bk * width..(bk + 1) * width];
        t[0] = 1.0;
        t[1] = a[i] + b[i];
        t[2] = a[i] * a[i] + b[i] * b[i];
        for j in 0..k {
            t[3 + j] = b[i] * (ab[j][i] - a[i]);
            t[3 + k + j] = (a[i] - ab[j][i]).powi(2);
        }
        let mut at = 3 + 2 * k;
        for j in 0..ba.len() {
            for l in j + 1..k {
                t[at] = ba[j][i] * ab[l][i] - a[i] * b[i];
                at += 1;
            }
        }
        i += 1;
    }
    Some((Terms { values: terms, m: width }, estimates))
}

/// Morris statistics as SALib: point estimates and the per-trajectory terms of
/// the bootstrap (kept, EE_j, |EE_j|, EE_j^2).
fn morris(mo: Morris, values: &[f64], kept: &[bool], first_block: u64) -> (Terms, Vec<Estimate>) {
    let k = mo.k;
    let block = mo.block_rows() as usize;
    let delta = mo.delta();
    let width = 1 + 3 * k;
    let mut terms = vec![0.0; kept.len() * width];
    let mut effects: Vec<Vec<f64>> = vec![Vec::new(); k];
    for (t, rows) in values.chunks(block).enumerate() {
        if !kept[t] {
            continue;
        }
        let row = &mut terms[t * width..(t + 1) * width];
        row[0] = 1.0;
        for (s, (axis, up)) in mo.steps(first_block + t as u64).into_iter().enumerate() {
            let (before, after) = (rows[s], rows[s + 1]);
            let ee = if up { (after - before) / delta } else { (before - after) / delta };
            effects[axis].push(ee);
            row[1 + axis] = ee;
            row[1 + k + axis] = ee.abs();
            row[1 + 2 * k + axis] = ee * ee;
        }
    }
    let mut estimates = Vec::with_capacity(3 * k);
    for (j, ee) in effects.iter().enumerate() {
        let mu = mean(ee);
        let mu_star = ee.iter().map(|e| e.abs()).sum::<f64>() / ee.len() as f64;
        let sigma = std_ddof1(ee.iter().copied());
        for (index, value) in [("mu", mu), ("mu_star", mu_star), ("sigma", sigma)] {
            estimates.push(Estimate { index, parameter: j, parameter2: None, value, conf: f64::NAN });
        }
    }
    (Terms { values: terms, m: width }, estimates)
}

/// `moatsweep sensitivity`: checks the CSV against its manifest, reads it once,
/// analyses every output, writes the tidy CSV (and the figure), prints the ranking.
pub fn run(args: &SensitivityArgs, out: &mut impl Write) -> anyhow::Result<()> {
    if !(args.conf > 0.0 && args.conf < 1.0) {
        return Err(InputError(format!("--conf must be between 0 and 1 (e.g. 0.95), not {}", args.conf)).into());
    }
    let table = SweepFile::open_rows(&args.csv, args.verify_hash)?;
    let why = "for the design and its layout of rows";
    let manifest = table.require_manifest("sensitivity", why)?;
    let axes = table.manifest_axes("sensitivity", why)?;
    let k = axes.len();
    let (method, recorded_block) = match manifest.config().sweep.design {
        DesignSpec::Saltelli { seed, second_order, block_rows, .. } => (Method::Sobol(Saltelli { k, second_order, seed }), block_rows),
        DesignSpec::Morris { levels, seed, block_rows, .. } => (Method::Morris(Morris { k, levels, seed }), block_rows),
        ref other => {
            let other = other.name();
            return Err(InputError(format!(
                "{}: sensitivity needs a saltelli sweep (Sobol indices) or a morris sweep (elementary effects), and this is a {other} sweep; `moatsweep discover` reads any design",
                args.csv.display()
            ))
            .into());
        }
    };
    let block = method.block_rows();
    if recorded_block != block as u64 {
        return Err(InputError(format!(
            "{}: the manifest's block_rows ({recorded_block}) is not what its {k} axes give ({block})",
            args.csv.display()
        ))
        .into());
    }
    let [start, end] = manifest.rows();
    let what = if matches!(method, Method::Sobol(_)) { "base point" } else { "trajectory" };
    if start % block as u64 != 0 || end % block as u64 != 0 {
        return Err(InputError(format!(
            "{}: rows {start}..{end} cut a {what}'s block of {block} rows; analyse whole blocks (run with --shard, or merge the shards)",
            args.csv.display()
        ))
        .into());
    }

    let all_outputs: Vec<String> = table.header()[1..].iter().filter(|c| !axes.contains(c)).cloned().collect();
    let names: Vec<String> = if args.outputs.is_empty() { all_outputs.clone() } else { args.outputs.clone() };
    let output_cols: Vec<usize> =
        names.iter().map(|n| table.find("--outputs", n, &all_outputs, "the outputs")).collect::<Result<_, _>>()?;
    let axis_cols: Vec<usize> = axes.iter().map(|a| table.header().iter().position(|c| c == a).expect("checked")).collect();
    let nc_col = table.header().iter().position(|c| c == NONCONVERGED);
    let mut cols = output_cols.clone();
    cols.extend(&axis_cols);
    cols.extend(nc_col);
    let mut data = table.read(&cols)?;

    // The rows must be the manifest's, whole blocks, in the design's layout.
    let rows = data.rows() as u64;
    if rows != end - start || data.scenario.first().is_some_and(|&s| s != start) {
        let ends = if !rows.is_multiple_of(block as u64) {
            format!("; it ends inside {what} {}", (start + rows) / block as u64)
        } else {
            String::new()
        };
        return Err(InputError(format!(
            "{}: holds {rows} rows from row {}, its manifest says rows {start}..{end} (a partial or cut CSV){ends}",
            args.csv.display(),
            data.scenario.first().copied().unwrap_or(start)
        ))
        .into());
    }
    if let Some(i) = data.scenario.iter().enumerate().position(|(i, &s)| s != start + i as u64) {
        return Err(InputError(format!(
            "{}: row {i} of the file is scenario {}, not {}",
            args.csv.display(),
            data.scenario[i],
            start + i as u64
        ))
        .into());
    }
    let nonconverged = nc_col.map(|_| data.data.pop().expect("read"));
    let axis_values = data.data.split_off(output_cols.len());
    check_layout(method, &axis_values, &axes, start, &args.csv)?;
    let outputs: Vec<(String, Vec<f64>)> = names.into_iter().zip(data.data).collect();
    let boot = Bootstrap { resamples: args.resamples as usize, conf: args.conf, seed: args.seed };
    let reports = analyze(method, &outputs, nonconverged.as_deref(), start / block as u64, boot);

    let path = args.out.clone().unwrap_or_else(|| beside(&args.csv, "sensitivity.csv"));
    let figure = match &args.plot {
        Some(p) => {
            Some((p, image::render(p, &SensitivityFigure { reports: &reports, axes: &axes, method, conf: args.conf, sweep: &table })?))
        }
        None => None,
    };
    write_tidy(&path, &reports, &axes)?;
    if let Some((p, bytes)) = figure {
        image::write(p, &bytes)?;
    }
    print_reports(out, &reports, &axes, method, args)?;
    writeln!(out, "wrote {}", path.display())?;
    if let Some(p) = &args.plot {
        writeln!(out, "wrote {}", p.display())?;
    }
    Ok(())
}

/// `<stem>.<suffix>` beside `csv`.
pub fn beside(csv: &Path, suffix: &str) -> PathBuf {
    let stem = csv.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    csv.with_file_name(format!("{stem}.{suffix}"))
}

/// Each row's axis values follow the design: in a saltelli block AB_j and BA_j
/// share A's or B's value on every axis as the layout says, and consecutive
/// rows of a morris trajectory differ only in the axis that the step moves.
fn check_layout(method: Method, axes: &[Vec<f64>], names: &[String], start: u64, csv: &Path) -> Result<(), InputError> {
    let block = method.block_rows();
    let rows = axes.first().map_or(0, Vec::len);
    let same = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
    for b in 0..rows / block {
        let base = b * block;
        let bad = |s: usize, a: usize, why: &str| {
            InputError(format!(
                "{}: row {} ({}) does not follow the {} layout: {} {why}; was the CSV sorted or edited?",
                csv.display(),
                start + (base + s) as u64,
                match method {
                    Method::Sobol(sal) => format!("{:?} of base point {}", sal.position(s as u64), start / block as u64 + b as u64),
                    Method::Morris(_) => format!("step {s} of trajectory {}", start / block as u64 + b as u64),
                },
                if matches!(method, Method::Sobol(_)) { "saltelli" } else { "morris" },
                names[a]
            ))
        };
        match method {
            Method::Sobol(sal) => {
                for s in 1..block - 1 {
                    for (a, column) in axes.iter().enumerate() {
                        let from_b = match sal.position(s as u64) {
                            Position::AB(j) => a == j,
                            Position::BA(j) => a != j,
                            _ => unreachable!("A and B end the block"),
                        };
                        let want = column[base + if from_b { block - 1 } else { 0 }];
                        if !same(column[base + s], want) {
                            return Err(bad(s, a, if from_b { "differs from B's" } else { "differs from A's" }));
                        }
                    }
                }
            }
            Method::Morris(mo) => {
                for (s, (moved, _)) in mo.steps(start / block as u64 + b as u64).into_iter().enumerate() {
                    for (a, column) in axes.iter().enumerate() {
                        if a != moved && !same(column[base + s + 1], column[base + s]) {
                            return Err(bad(s + 1, a, "changes at a step that moves another axis"));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A number as the tidy CSV writes it: shortest round trip, empty when not finite.
fn cell(v: f64) -> String {
    if v.is_finite() { ryu::Buffer::new().format(v).to_string() } else { String::new() }
}

/// `output,index,parameter,parameter2,value,conf`, one row per estimate; written
/// to `<path>.partial` and renamed, so that a failure leaves nothing.
fn write_tidy(path: &Path, reports: &[OutputReport], axes: &[String]) -> anyhow::Result<()> {
    let mut text = String::from("output,index,parameter,parameter2,value,conf\n");
    for r in reports {
        if let Outcome::Indices(estimates) = &r.outcome {
            for e in estimates {
                let p2 = e.parameter2.map_or("", |j| axes[j].as_str());
                text += &format!("{},{},{},{p2},{},{}\n", r.name, e.index, axes[e.parameter], cell(e.value), cell(e.conf));
            }
        }
    }
    image::write(path, text.as_bytes())
}

/// Per output, the parameters ranked by ST (Sobol) or mu_star (Morris), with intervals.
fn print_reports(
    out: &mut impl Write,
    reports: &[OutputReport],
    axes: &[String],
    method: Method,
    args: &SensitivityArgs,
) -> std::io::Result<()> {
    let pct = fmt_number(args.conf * 100.0, 4);
    let width = axes.iter().map(String::len).max().unwrap_or(9).max(9);
    let (kind, what) = match method {
        Method::Sobol(_) => ("Sobol indices", "base points"),
        Method::Morris(_) => ("Morris elementary effects (per unit of each axis's unit interval)", "trajectories"),
    };
    writeln!(out, "{}: {kind}, intervals +-{pct}% from {} bootstrap resamples", args.csv.display(), args.resamples)?;
    let pm = |e: &Estimate| format!("{} +- {}", fmt_number(e.value, 3), fmt_number(e.conf, 2));
    for r in reports {
        let dropped =
            if r.dropped > 0 { format!(", {} dropped (empty, non-finite or non-converged rows)", r.dropped) } else { String::new() };
        let head = format!("\n{}: {} of {} {what}{dropped}", r.name, r.blocks - r.dropped, r.blocks);
        match &r.outcome {
            Outcome::NoBlocks => writeln!(out, "{head}: no complete block, nothing to analyse")?,
            Outcome::ZeroVariance => writeln!(out, "{head}: zero variance (the same value in every row used), no indices")?,
            Outcome::Indices(estimates) => {
                let find =
                    |index: &str, j: usize| estimates.iter().find(|e| e.index == index && e.parameter == j && e.parameter2.is_none());
                let (rank_by, cols): (&str, &[&str]) = match method {
                    Method::Sobol(_) => ("ST", &["S1", "ST"]),
                    Method::Morris(_) => ("mu_star", &["mu_star", "mu", "sigma"]),
                };
                writeln!(out, "{head}, ranked by {rank_by}")?;
                let mut order: Vec<usize> = (0..axes.len()).collect();
                order.sort_by(|&x, &y| {
                    let v = |j| find(rank_by, j).map_or(f64::NEG_INFINITY, |e| e.value);
                    v(y).total_cmp(&v(x))
                });
                write!(out, "  {:width$}", "parameter")?;
                for c in cols {
                    write!(out, "  {c:>22}")?;
                }
                writeln!(out)?;
                for j in order {
                    write!(out, "  {:width$}", axes[j])?;
                    for c in cols {
                        write!(out, "  {:>22}", find(c, j).map_or(String::new(), pm))?;
                    }
                    writeln!(out)?;
                }
                let mut s2: Vec<&Estimate> = estimates.iter().filter(|e| e.index == "S2").collect();
                if !s2.is_empty() {
                    s2.sort_by(|x, y| y.value.total_cmp(&x.value));
                    let top: Vec<String> = s2
                        .iter()
                        .take(3)
                        .map(|e| format!("{} x {} {}", axes[e.parameter], axes[e.parameter2.unwrap_or(0)], pm(e)))
                        .collect();
                    writeln!(out, "  largest S2: {}", top.join("; "))?;
                }
            }
        }
    }
    Ok(())
}

/// The figure: per output a panel of horizontal bars (S1 and ST, or mu_star)
/// with interval whiskers, parameters ranked as in the terminal.
struct SensitivityFigure<'a> {
    reports: &'a [OutputReport],
    axes: &'a [String],
    method: Method,
    conf: f64,
    sweep: &'a SweepFile,
}

impl image::Figure for SensitivityFigure<'_> {
    fn draw<DB: plotters::prelude::DrawingBackend>(
        &self,
        root: plotters::prelude::DrawingArea<DB, plotters::coord::Shift>,
    ) -> anyhow::Result<()>
    where
        DB::ErrorType: 'static,
    {
        use plotters::prelude::*;
        let panels: Vec<(&OutputReport, &Vec<Estimate>)> = self
            .reports
            .iter()
            .filter_map(|r| match &r.outcome {
                Outcome::Indices(e) => Some((r, e)),
                _ => None,
            })
            .collect();
        root.fill(&WHITE)?;
        let (w, _) = root.dim_in_pixel();
        let scale = (w as f64 / 1000.0).clamp(0.6, 4.0);
        let font = |size: f64| (image::FAMILY, size * scale).into_font();
        let kind = match self.method {
            Method::Sobol(_) => "Sobol indices S1 (dark) and ST (light)",
            Method::Morris(_) => "Morris mu_star (per unit interval)",
        };
        let title = format!(
            "{}: {kind}, {}% intervals",
            self.sweep.path().file_stem().map_or(String::new(), |s| s.to_string_lossy().into_owned()),
            fmt_number(self.conf * 100.0, 3)
        );
        let body = root.titled(&title, font(20.0))?;
        if panels.is_empty() {
            return Ok(());
        }
        let cols = (panels.len() as f64).sqrt().ceil() as usize;
        let rows = panels.len().div_ceil(cols);
        let areas = body.split_evenly((rows, cols));
        let (index, second) = match self.method {
            Method::Sobol(_) => ("ST", Some("S1")),
            Method::Morris(_) => ("mu_star", None),
        };
        let label_w = self.axes.iter().map(String::len).max().unwrap_or(10) as f64 * 7.0 * scale;
        for ((report, estimates), area) in panels.iter().zip(areas.iter()) {
            let get = |name: &str, j: usize| estimates.iter().find(|e| e.index == name && e.parameter == j && e.parameter2.is_none());
            let mut order: Vec<usize> = (0..self.axes.len()).collect();
            order.sort_by(|&x, &y| get(index, x).map_or(0.0, |e| e.value).total_cmp(&get(index, y).map_or(0.0, |e| e.value)));
            let ends = estimates
                .iter()
                .filter(|e| e.index == index || Some(e.index) == second)
                .flat_map(|e| [e.value - e.conf.max(0.0), e.value + e.conf.max(0.0)])
                .filter(|v| v.is_finite());
            let (lo, hi) = ends.fold((0.0f64, 0.0f64), |(l, h), v| (l.min(v), h.max(v)));
            let hi = if hi <= lo { lo + 1.0 } else { hi + (hi - lo) * 0.05 };
            let k = self.axes.len() as f64;
            let names = self.axes.to_vec();
            let order_for_labels = order.clone();
            let mut chart = ChartBuilder::on(area)
                .caption(&report.name, font(14.0))
                .margin((6.0 * scale) as u32)
                .x_label_area_size((24.0 * scale) as u32)
                .y_label_area_size(label_w as u32)
                .build_cartesian_2d(lo..hi, -0.5..k - 0.5)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .light_line_style(WHITE)
                .y_labels(self.axes.len())
                .y_label_formatter(&|y| {
                    let i = y.round();
                    if (y - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < order_for_labels.len() {
                        names[order_for_labels[i as usize]].clone()
                    } else {
                        String::new()
                    }
                })
                .x_label_formatter(&|x| fmt_number(*x, 2))
                .label_style(font(10.0))
                .draw()?;
            let light = RGBColor(158, 202, 225);
            let dark = RGBColor(33, 113, 181);
            for (slot, &j) in order.iter().enumerate() {
                let y = slot as f64;
                let mut bars = vec![(index, if second.is_some() { light } else { dark }, y - 0.35, y + 0.35)];
                if let Some(s) = second {
                    bars.push((s, dark, y - 0.2, y + 0.2));
                }
                for (name, colour, y0, y1) in bars {
                    let Some(e) = get(name, j) else { continue };
                    if !e.value.is_finite() {
                        continue;
                    }
                    chart.draw_series(std::iter::once(Rectangle::new([(0.0, y0), (e.value, y1)], colour.filled())))?;
                    if e.conf.is_finite() && e.conf > 0.0 {
                        let (a, b) = (e.value - e.conf, e.value + e.conf);
                        let ym = (y0 + y1) / 2.0;
                        let tick = (y1 - y0) / 3.0;
                        chart.draw_series(
                            [vec![(a, ym), (b, ym)], vec![(a, ym - tick), (a, ym + tick)], vec![(b, ym - tick), (b, ym + tick)]]
                                .into_iter()
                                .map(|p| PathElement::new(p, BLACK.stroke_width(1))),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}
