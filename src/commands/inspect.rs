//! `validate`, `scenario` and `params`: looking at a config without running a sweep.

use std::io::Write;
use std::path::Path;

use crate::InputError;
use crate::backend::ScenarioSource;
use crate::config::{self, ConfigError};
use crate::model::outputs::{Empty, OUTPUTS, OutKind, Scope, Tolerance};
use crate::model::params::{Group, Kind, PARAMS};
use crate::model::{self, MonthRecord, NEVER};
use crate::output::csv::{format_row, header, output_columns};
use crate::sweep::{AxisValues, Design, Plan};

/// Rows solved to estimate the CSV size.
const SIZE_SAMPLE: u64 = 16;

fn fmt_value(kind: Kind, v: f64) -> String {
    match kind {
        Kind::Month if v == NEVER as f64 => "never".into(),
        Kind::Real => ryu::Buffer::new().format(v).trim_end_matches(".0").to_string(),
        _ => format!("{}", v as i64),
    }
}

fn human_bytes(b: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut x = b;
    let mut u = 0;
    while x >= 1000.0 && u + 1 < units.len() {
        x /= 1000.0;
        u += 1;
    }
    format!("{x:.1} {}", units[u])
}

/// `moatsweep validate`.
pub fn validate(path: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    let loaded = config::load(path)?;
    let plan = &loaded.plan;
    writeln!(out, "config:     {} (sha256 {})", path.display(), loaded.sha256)?;
    let design = match &plan.design {
        Design::Grid => "grid: every combination, the last axis fastest".to_string(),
        Design::Random { samples, seed } => format!("random: {samples} samples, seed {seed}"),
        Design::Lhs { samples, seed } => format!("lhs: Latin hypercube of {samples} samples, seed {seed}"),
        Design::Sobol { samples, seed } => format!("sobol: {samples} scrambled Sobol points, seed {seed}"),
        Design::List { file, .. } => format!("list: {} rows from {file}", plan.rows),
        Design::Saltelli { samples, seed, second_order } => {
            format!("saltelli: {samples} Sobol base points, seed {seed}, {} order", if *second_order { "second" } else { "first" })
        }
        Design::Morris { trajectories, levels, seed } => format!("morris: {trajectories} trajectories on {levels} levels, seed {seed}"),
    };
    writeln!(out, "sweep:      {} ({design})", plan.name)?;
    if let Some(blocks) = block_structure(plan) {
        writeln!(out, "blocks:     {blocks}")?;
    }
    writeln!(out, "model:      {} months, max_iter {}, tol {}", plan.base.model.months, plan.base.model.max_iter, plan.base.model.tol)?;
    writeln!(out, "firms:      {}", plan.firm_names.join(", "))?;
    writeln!(out, "segments:   {}", plan.segment_names.join(", "))?;
    if plan.axes.is_empty() {
        writeln!(out, "axes:       none (a single scenario)")?;
    } else {
        writeln!(out, "axes:")?;
        let width = plan.axes.iter().map(|a| a.path.len()).max().unwrap_or(0);
        for a in &plan.axes {
            let kind = a.param.spec.kind;
            let desc = match &a.values {
                AxisValues::List(v) if v.len() <= 8 => v.iter().map(|&x| fmt_value(kind, x)).collect::<Vec<_>>().join(", "),
                AxisValues::List(v) => {
                    format!("{}, {}, ..., {}", fmt_value(kind, v[0]), fmt_value(kind, v[1]), fmt_value(kind, v[v.len() - 1]))
                }
                AxisValues::Range { lo, hi, .. } => format!("range {lo} .. {hi}"),
                AxisValues::Logspace { lo, hi, .. } => format!("logspace {lo} .. {hi}"),
                AxisValues::Uniform { lo, hi } => format!("uniform on [{lo}, {hi}]"),
                AxisValues::LogUniform { lo, hi } => format!("log-uniform on [{lo}, {hi}]"),
                AxisValues::Integers { lo, hi } => format!("integers {} ..= {}", fmt_value(kind, *lo), fmt_value(kind, *hi)),
            };
            match (&plan.design, &a.values) {
                (Design::Grid, v) => writeln!(out, "  {:width$}  {:>8} values: {desc}", a.path, v.len())?,
                (Design::List { .. }, _) => writeln!(out, "  {:width$}  column of the list", a.path)?,
                _ => writeln!(out, "  {:width$}  {desc}", a.path)?,
            }
        }
    }
    if !matches!(plan.design, Design::Grid | Design::List { .. }) {
        writeln!(out, "first rows:")?;
        for row in 0..plan.rows.min(5) {
            let values: Vec<String> = plan
                .axes
                .iter()
                .enumerate()
                .map(|(a, ax)| format!("{}={}", ax.path, fmt_value(ax.param.spec.kind, plan.axis_value(row, a))))
                .collect();
            writeln!(out, "  {row}: {}", values.join("  "))?;
        }
    }
    writeln!(out, "scenarios:  {}", plan.rows)?;
    if let Some(rp) = &loaded.reduce {
        return validate_reduce(plan, rp, &loaded.output, out);
    }
    writeln!(out, "output:     {}", loaded.output.display())?;
    let cols = header(plan);
    writeln!(out, "columns ({}): {}", cols.len(), cols.join(", "))?;
    // Estimate the CSV size from a few solved rows spread over the sweep.
    let n = SIZE_SAMPLE.min(plan.rows);
    let mut buf = Vec::new();
    let out_cols = output_columns(plan);
    for k in 0..n {
        let row = k * plan.rows / n;
        format_row(plan, &out_cols, row, &model::solve(&plan.scenario(row)), &mut buf);
    }
    let per_row = buf.len() as f64 / n as f64;
    let total = per_row * plan.rows as f64 + cols.join(",").len() as f64;
    writeln!(out, "estimated CSV size: {} (about {per_row:.0} bytes a row, from {n} solved rows)", human_bytes(total))?;
    Ok(())
}

/// `validate` of a reduced sweep: groups, statistics, the state's bound and the reduced CSV's columns.
fn validate_reduce(plan: &Plan, rp: &crate::reduce::ReducePlan, output: &Path, out: &mut impl Write) -> anyhow::Result<()> {
    use crate::reduce::Grouping;
    let by: Vec<String> = rp
        .by
        .iter()
        .map(|a| match &a.grouping {
            Grouping::Bins { bins, log, .. } => format!("{} ({bins} {}bins)", a.path, if *log { "log " } else { "" }),
            _ => format!("{} ({} values)", a.path, a.slots()),
        })
        .collect();
    writeln!(out, "reduce:     {} groups{}", rp.groups, if by.is_empty() { String::new() } else { format!(" by {}", by.join(" x ")) })?;
    writeln!(out, "  outputs:  {}", rp.outputs.iter().map(|o| o.name.as_str()).collect::<Vec<_>>().join(", "))?;
    writeln!(out, "  stats:    {}", rp.stats.iter().map(|s| s.name()).collect::<Vec<_>>().join(", "))?;
    if let Some(b) = &rp.best {
        let kind = plan.axes[b.axis].param.spec.kind;
        writeln!(
            out,
            "  best:     {} of {} per world ({} values, {} worlds), reference {}{}",
            if b.maximize { "maximize" } else { "minimize" },
            b.objective.name,
            b.values.len(),
            plan.rows / b.values.len() as u64,
            crate::reduce::output::value_label(kind, b.values[b.reference]),
            if rp.reorders() { "; solved with the choice axis fastest" } else { "" }
        )?;
    }
    if let Some(g) = &rp.game {
        let sizes: Vec<String> = g.players.iter().map(|p| p.values.len().to_string()).collect();
        writeln!(
            out,
            "  game:     {} players, {} = {} profiles per world, {} worlds{}",
            g.players.len(),
            sizes.join(" x "),
            g.profiles(),
            plan.rows / g.profiles() as u64,
            if rp.reorders() { "; solved with the players' axes fastest" } else { "" }
        )?;
        for (i, p) in g.players.iter().enumerate() {
            let kind = plan.axes[p.axis].param.spec.kind;
            let label = |x: f64| crate::reduce::output::value_label(kind, x);
            writeln!(
                out,
                "  player {}: {} maximizes {} over {} ({} values: {}), reference {}",
                i + 1,
                if i == 0 { "leads," } else { "follows," },
                p.payoff.name,
                p.path,
                p.values.len(),
                p.values.iter().map(|&x| label(x)).collect::<Vec<_>>().join(", "),
                label(p.values[p.reference])
            )?;
        }
    }
    writeln!(out, "  blocks:   {} rows (runs, shards and --rows cut only whole blocks)", rp.block_rows)?;
    writeln!(out, "  state:    at most {:.1} MB", rp.state_bytes() as f64 / 1e6)?;
    let reduced = crate::reduce::output::reduced_path(output);
    writeln!(out, "output:     {} ({} rows)", reduced.display(), rp.groups)?;
    if rp.rows {
        writeln!(out, "rows:       {} (rows = true)", output.display())?;
    }
    let cols = crate::reduce::output::header(plan, rp);
    writeln!(out, "columns ({}): {}", cols.len(), cols.join(", "))?;
    Ok(())
}

/// The rows of a saltelli block or morris trajectory, e.g. `4096 blocks of 12 rows (A, AB_1 .. AB_10, B) = 49152 rows`.
fn block_structure(plan: &Plan) -> Option<String> {
    let k = plan.axes.len();
    let (blocks, what, layout) = match plan.design {
        Design::Saltelli { samples, second_order, .. } => {
            let ba = if second_order { format!(", BA_1 .. BA_{k}") } else { String::new() };
            (samples, "blocks (one per base point)", format!("A, AB_1 .. AB_{k}{ba}, B; AB_j takes axis j from B, BA_j from A"))
        }
        Design::Morris { trajectories, levels, .. } => {
            let delta = crate::analysis::fmt_number(levels as f64 / (2.0 * (levels - 1) as f64), 4);
            (trajectories, "trajectories", format!("a start, then one axis moved by {delta} of its unit interval per row"))
        }
        _ => return None,
    };
    let block = plan.block_rows();
    let formula = match plan.design {
        Design::Saltelli { second_order: true, .. } => "N(2k+2)",
        Design::Saltelli { .. } => "N(k+2)",
        _ => "r(k+1)",
    };
    Some(format!(
        "{blocks} {what} of {block} rows ({layout}); {formula} = {blocks} x {block} = {} rows, cut only on whole blocks",
        plan.rows
    ))
}

/// `moatsweep scenario`: one scenario, month by month.
pub fn scenario(path: &Path, index: Option<u64>, sets: &[String], out: &mut impl Write) -> anyhow::Result<()> {
    let loaded = config::load(path)?;
    let plan = &loaded.plan;
    let mut sc = match index {
        Some(i) if i >= plan.rows => {
            return Err(InputError(format!("--index {i} is outside the sweep's rows 0..{} of {}", plan.rows, path.display())).into());
        }
        Some(i) => plan.scenario(i),
        None => plan.base,
    };
    for s in sets {
        config::apply_set(plan, &mut sc, s)?;
    }
    // The scenario as a one-row plan must pass the same checks as a config.
    let single = Plan::new(plan.name.clone(), Design::Grid, sc, plan.firm_names.clone(), plan.segment_names.clone(), Vec::new());
    config::check_plan(&single, "--set").map_err(|e: ConfigError| anyhow::Error::new(e))?;

    match index {
        Some(i) => {
            write!(out, "scenario {i} of {}", path.display())?;
            for (a, axis) in plan.axes.iter().enumerate() {
                write!(out, "  {}={}", axis.path, fmt_value(axis.param.spec.kind, plan.axis_value(i, a)))?;
            }
        }
        None => write!(out, "scenario: the base values of {}", path.display())?,
    }
    for s in sets {
        write!(out, "  --set {s}")?;
    }
    writeln!(out)?;

    let mut months: Vec<MonthRecord> = Vec::new();
    let outcome = model::solve_traced(&sc, &mut |r: &MonthRecord| months.push(*r));

    // Per firm: quality Q, price p ($/Mtok; "-" when not offered, "open" marks released weights), share S, cash ($bn).
    const FIRM_W: usize = 37;
    write!(out, "{:>5} ", "")?;
    for name in &plan.firm_names {
        write!(out, "| {:^w$}", name, w = FIRM_W - 2)?;
    }
    writeln!(out, "| {:>7} {:>5}", "", "")?;
    write!(out, "{:>5} ", "month")?;
    for _ in &plan.firm_names {
        write!(out, "| {:>6} {:>9} {:>7} {:>10}", "Q", "price", "share", "cash $bn")?;
    }
    writeln!(out, "| {:>7} {:>5}", "outside", "iters")?;
    for r in &months {
        write!(out, "{:>5} ", r.month)?;
        for i in 0..sc.n_firms {
            let offered = r.offered & (1 << i) != 0;
            let price = if !offered {
                "-".to_string()
            } else if r.released & (1 << i) != 0 {
                format!("{:.3}o", r.price[i])
            } else {
                format!("{:.3}", r.price[i])
            };
            let cash = if r.alive & (1 << i) == 0 { "exited".to_string() } else { format!("{:.3}", r.cash[i] / 1e9) };
            write!(out, "| {:>6.3} {:>9} {:>7.4} {:>10}", r.quality[i], price, r.share[i], cash)?;
        }
        writeln!(out, "| {:>7.4} {:>4}{}", r.outside_share, r.iterations, if r.converged { " " } else { "!" })?;
    }
    writeln!(out, "(price suffix o: released weights served at cost; iters suffix !: not converged; cash after the month's flows)")?;

    writeln!(out, "\noutputs (the CSV row):")?;
    let mut row = Vec::new();
    format_row(&single, &output_columns(&single), 0, &outcome, &mut row);
    let text = String::from_utf8(row).expect("CSV rows are ASCII");
    let cols = header(&single);
    for (c, v) in cols.iter().zip(text.trim_end().split(',')).skip(1) {
        writeln!(out, "  {c:<32} {}", if v.is_empty() { "(not offered)" } else { v })?;
    }
    Ok(())
}

/// `moatsweep params`: the parameter table of docs/model.md.
pub fn params_table(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "| path | meaning | unit | default | allowed | why this range | source |")?;
    writeln!(out, "| --- | --- | --- | --- | --- | --- | --- |")?;
    for p in PARAMS {
        let default = match p.group {
            Group::Model | Group::Scaling => fmt_value(p.kind, p.defaults[0]),
            _ => format!("per {} (table below)", p.group.prefix()),
        };
        let allowed = match p.kind {
            Kind::Integer => format!("integer, {}", p.bound),
            Kind::Month => format!("integer month, {}, or never", p.bound),
            Kind::Real => p.bound.to_string(),
        };
        writeln!(out, "| `{}` | {} | {} | {default} | {allowed} | {} | {} |", p.path("<name>"), p.meaning(), p.unit, p.why, p.source)?;
    }
    Ok(())
}

/// `moatsweep params --outputs`: the output table of docs/model.md.
pub fn outputs_table(out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "| column | meaning | type | empty when | GPU tolerance (f32 against f64) | why |")?;
    writeln!(out, "| --- | --- | --- | --- | --- | --- |")?;
    for o in OUTPUTS {
        let column = match o.scope {
            Scope::Firm => format!("`{}.<firm>`", o.name),
            Scope::Scenario => format!("`{}`", o.name),
        };
        let kind = match o.kind {
            OutKind::Real => "real",
            OutKind::Integer => "integer",
        };
        let empty = match o.empty {
            Empty::Never => "never",
            Empty::NotOffered => "the firm offers no product",
        };
        let tolerance = match o.tolerance {
            Tolerance::Abs(f) => format!("1e-4 relative + {f:e}"),
            Tolerance::Money(f) => format!("1e-4 relative + {f:e} x the firm's money scale"),
            Tolerance::Surplus(f) => format!("1e-4 relative + {f:e} x the surplus scale"),
            Tolerance::Exact => "equal".into(),
            Tolerance::Iterations => "3 + a quarter of the count (or twice the probe's shift)".into(),
        };
        writeln!(out, "| {column} | {} | {kind} | {empty} | {tolerance} | {} |", o.meaning(), o.why)?;
    }
    Ok(())
}
