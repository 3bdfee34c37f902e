//! `moatsweep calibrate`: a config's month 0 made the observed market (docs/model.md
//! section 9), written as a calibrated config with its fit table; or, with
//! `--sweep`, one calibration per row of the config's sweep, written as CSV, to see
//! how much the inverted brands and costs depend on the assumptions swept.

use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::InputError;
use crate::calibrate::observed::{Observed, ShareKind};
use crate::calibrate::{self, Calibration, Failure, Targets};
use crate::config;
use crate::model::params;
use crate::sweep::Plan;

/// What `calibrate` was asked.
#[derive(Clone, Debug)]
pub struct Request {
    pub config: PathBuf,
    pub observed: PathBuf,
    pub out: PathBuf,
    /// Assumed outside shares (one, or several with --sweep) for revenue shares.
    pub outside_share: Vec<f64>,
    pub usage: Option<f64>,
    pub margin: Option<f64>,
    pub sweep: bool,
}

/// A sweep calibrates at most this many rows (they are kept in memory).
pub const MAX_SWEEP_ROWS: u64 = 10_000_000;

pub fn calibrate(req: &Request, out: &mut impl Write) -> anyhow::Result<()> {
    let targets = targets(req)?;
    let loaded = config::load(&req.config)?;
    let plan = &loaded.plan;
    refuse_overridden(plan, &req.config, targets)?;
    let obs = Observed::read(&req.observed, &plan.firm_names)?;
    if req.outside_share.len() > 1 && !req.sweep {
        return Err(InputError("--outside-share: several values need --sweep (one calibration per value)".into()).into());
    }
    // Whether the file's kind of share and --outside-share go together: the one
    // conversion says (each further --sweep value differs only in its number).
    obs.market_shares(req.outside_share.first().copied())?;
    if req.sweep { sweep(req, plan, &obs, targets, out) } else { single(req, &loaded, &obs, targets, out) }
}

fn targets(req: &Request) -> Result<Targets, InputError> {
    if let Some(l) = req.margin
        && !(l > 0.0 && l < 1.0)
    {
        return Err(InputError(format!("--margin: {l} is not a Lerner index in (0, 1)")));
    }
    if let Some(v) = req.usage
        && !(v.is_finite() && v > 0.0)
    {
        return Err(InputError(format!("--usage: {v} is not a positive usage (Mtok per month)")));
    }
    for &s in &req.outside_share {
        if !(s > 0.0 && s < 1.0) {
            return Err(InputError(format!("--outside-share: {s} is not a share in (0, 1)")));
        }
    }
    Ok(Targets { usage: req.usage, margin: req.margin })
}

/// An axis over a parameter that calibration sets would override it in every row.
fn refuse_overridden(plan: &Plan, file: &Path, targets: Targets) -> Result<(), InputError> {
    for axis in &plan.axes {
        let spec = axis.param.spec;
        let set = spec.is(params::firm::brand())
            || spec.is(params::firm::cost_factor())
            || (targets.margin.is_some() && spec.is(params::segment::price_sens()))
            || (targets.usage.is_some() && spec.is(params::model::market0()));
        if set {
            return Err(InputError(format!(
                "{}: axis \"{}\": calibration sets this parameter, so an axis over it would override the calibrated value; remove the axis",
                file.display(),
                axis.path
            )));
        }
    }
    Ok(())
}

/// A failure as the user reads it: the observations file, the firm's line and name.
fn failure(obs: &Observed, plan: &Plan, f: &Failure) -> InputError {
    match f.firm {
        Some(i) => InputError(format!("{}:{}: firm \"{}\": {}", obs.file, obs.line(i), plan.firm_names[i], f.message)),
        None => InputError(format!("{}: {}", obs.file, f.message)),
    }
}

fn prices(obs: &Observed) -> Vec<f64> {
    obs.rows.iter().map(|r| r.price).collect()
}

fn single(req: &Request, loaded: &config::Loaded, obs: &Observed, targets: Targets, out: &mut impl Write) -> anyhow::Result<()> {
    let plan = &loaded.plan;
    let shares = obs.market_shares(req.outside_share.first().copied())?;
    let cal = calibrate::calibrate(&plan.base, &shares, &prices(obs), targets).map_err(|f| failure(obs, plan, &f))?;

    let bytes = config::read_limited(&req.config, config::MAX_CONFIG_BYTES, "config")
        .map_err(|e| InputError(format!("{}: {e}", req.config.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| InputError(format!("{}: the config is not UTF-8 text: {e}", req.config.display())))?;
    let header = header_lines(req, loaded, obs, &cal);
    let written = calibrate::write::calibrated_config(&text, &plan.firm_names, &plan.segment_names, &cal, &header)
        .map_err(|e| InputError(format!("{}: cannot edit the config: {e}", req.config.display())))?;
    // The calibrated config must read back as exactly the calibrated scenario.
    let file = req.out.display().to_string();
    let back =
        config::parse(&file, &written, req.config.file_stem().and_then(|s| s.to_str()), req.config.parent().unwrap_or(Path::new("")))?;
    if back.base != cal.scenario {
        anyhow::bail!("internal error: {file} does not read back as the calibrated scenario");
    }
    crate::output::transaction::commit(&[], &[(req.out.clone(), written.as_bytes())])?;

    writeln!(out, "{}", fit_table(plan, &cal))?;
    writeln!(out, "{}", summary(&cal).join("\n"))?;
    writeln!(out, "wrote {}", req.out.display())?;
    Ok(())
}

/// The comment block on top of the calibrated config.
fn header_lines(req: &Request, loaded: &config::Loaded, obs: &Observed, cal: &Calibration) -> Vec<String> {
    let command: Vec<String> = std::env::args().map(|a| shell_word(&a)).collect();
    let mut h = vec![
        format!("  {}", command.join(" ")),
        format!("model version {} (docs/model.md section 9); moatsweep {}", crate::model::VERSION, env!("CARGO_PKG_VERSION")),
        format!("config: {} (sha256 {})", req.config.display(), loaded.sha256),
        format!("observations: {} (sha256 {})", obs.file, obs.sha256),
    ];
    if let Some(s) = req.outside_share.first() {
        h.push(format!("revenue shares converted at an outside share of {s}"));
    }
    h.extend(summary(cal));
    h.push("Everything but the calibrated values above is the input config, unchanged.".into());
    h
}

/// The calibration's market-wide figures, one line each.
fn summary(cal: &Calibration) -> Vec<String> {
    let mut s = vec![format!(
        "month-0 fit at tol {:e} ({} iterations from the default start): largest relative error {:.1e} in shares, {:.1e} in prices",
        calibrate::CHECK_TOL,
        cal.check_iterations,
        cal.share_error,
        cal.price_error
    )];
    if let Some(l) = cal.price_scale {
        s.push(format!(
            "price sensitivity: every segment's price_sens x {l:.6} (the closed firms' usage-weighted Lerner index is {:.9})",
            cal.lerner.unwrap_or(f64::NAN)
        ));
    } else if let Some(l) = cal.lerner {
        s.push(format!("the closed firms' usage-weighted Lerner index is {l:.4}"));
    }
    if let Some(m) = cal.market0 {
        s.push(format!("market0 = usage / sum of shares = {m:.6e} Mtok/month"));
    }
    s
}

/// The per-firm fit table.
fn fit_table(plan: &Plan, cal: &Calibration) -> String {
    let mut t = String::new();
    let w = plan.firm_names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
    t.push_str(&format!(
        "{:w$}  {:>6}  {:>10}  {:>10}  {:>10}  {:>10}  {:>9}  {:>11}  {:>10}  {:>10}  {:>10}\n",
        "firm", "open", "share obs", "model", "price obs", "model", "brand", "cost factor", "cost", "markup", "elasticity"
    ));
    for (name, f) in plan.firm_names.iter().zip(&cal.firms) {
        t.push_str(&format!(
            "{name:w$}  {:>6}  {:>10.6}  {:>10.6}  {:>10.4}  {:>10.4}  {:>9.4}  {:>11.4}  {:>10.4}  {:>10.4}  {:>10.3}\n",
            if f.open { "yes" } else { "no" },
            f.share,
            f.model_share,
            f.price,
            f.model_price,
            f.brand,
            f.cost_factor,
            f.cost,
            f.markup,
            f.elasticity
        ));
    }
    t.push_str("(shares of the whole market; prices, costs and markups in $/Mtok; elasticity: own-price, at the observed point)");
    t
}

/// An argument as a shell would need it quoted to read it back.
fn shell_word(a: &str) -> String {
    if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=,:+@%".contains(c)) {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''").replace('\n', "\\n"))
    }
}

/// One calibration per row of the sweep (times each outside share), to CSV.
fn sweep(req: &Request, plan: &Plan, obs: &Observed, targets: Targets, out: &mut impl Write) -> anyhow::Result<()> {
    use crate::backend::ScenarioSource;
    let outside: Vec<Option<f64>> =
        if req.outside_share.is_empty() { vec![None] } else { req.outside_share.iter().map(|&s| Some(s)).collect() };
    let total = plan.rows.saturating_mul(outside.len() as u64);
    if total > MAX_SWEEP_ROWS {
        return Err(InputError(format!(
            "{}: {total} calibrations ({} rows x {} outside shares); calibrate --sweep does at most {MAX_SWEEP_ROWS}",
            req.config.display(),
            plan.rows,
            outside.len()
        ))
        .into());
    }
    let price = prices(obs);
    let started = std::time::Instant::now();
    let mut header: Vec<String> = vec!["row".into(), "scenario".into()];
    header.extend(plan.axes.iter().map(|a| a.path.clone()));
    if obs.kind == ShareKind::Revenue {
        header.push("outside_share".into());
    }
    if targets.margin.is_some() {
        header.push("price_scale".into());
    }
    if targets.usage.is_some() {
        header.push("market0".into());
    }
    header.push("lerner".into());
    for what in ["brand", "cost_factor", "cost", "markup", "elasticity"] {
        header.extend(plan.firm_names.iter().map(|f| format!("{what}.{f}")));
    }
    header.extend(["share_error".into(), "price_error".into(), "error".into()]);
    let n_firms = plan.firm_names.len();

    let lines: Vec<(Vec<u8>, bool)> = (0..total)
        .into_par_iter()
        .map(|r| {
            let (k, row) = ((r / plan.rows) as usize, r % plan.rows);
            let sc = plan.scenario(row);
            let result = obs
                .market_shares(outside[k])
                .map_err(|e| e.0)
                .and_then(|shares| calibrate::calibrate(&sc, &shares, &price, targets).map_err(|f| failure(obs, plan, &f).0));
            let mut rec: Vec<String> = vec![r.to_string(), row.to_string()];
            for (a, axis) in plan.axes.iter().enumerate() {
                let v = plan.axis_value(row, a);
                rec.push(if axis.is_integer() { (v as i64).to_string() } else { fmt(v) });
            }
            if let Some(s) = outside[k] {
                rec.push(fmt(s));
            }
            let ok = result.is_ok();
            match result {
                Ok(c) => {
                    if let Some(l) = c.price_scale {
                        rec.push(fmt(l));
                    }
                    if let Some(m) = c.market0 {
                        rec.push(fmt(m));
                    }
                    rec.push(c.lerner.map_or(String::new(), fmt));
                    let cols: [fn(&calibrate::FirmFit) -> f64; 5] =
                        [|f| f.brand, |f| f.cost_factor, |f| f.cost, |f| f.markup, |f| f.elasticity];
                    for col in cols {
                        rec.extend(c.firms.iter().map(|f| fmt(col(f))));
                    }
                    rec.extend([fmt(c.share_error), fmt(c.price_error), String::new()]);
                }
                Err(message) => {
                    let blanks = usize::from(targets.margin.is_some()) + usize::from(targets.usage.is_some()) + 1 + 5 * n_firms + 2;
                    rec.extend(std::iter::repeat_n(String::new(), blanks));
                    rec.push(message);
                }
            }
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&rec).expect("writing to memory");
            (w.into_inner().expect("writing to memory"), ok)
        })
        .collect();
    let mut bytes = {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&header).expect("writing to memory");
        w.into_inner().expect("writing to memory")
    };
    let mut failed = 0u64;
    let mut first_failure = None;
    for (r, (line, ok)) in lines.iter().enumerate() {
        bytes.extend_from_slice(line);
        if !ok {
            failed += 1;
            first_failure.get_or_insert(r);
        }
    }
    crate::output::transaction::commit(&[], &[(req.out.clone(), &bytes)])?;
    writeln!(
        out,
        "calibrated {} of {total} rows in {:.2} s on {} threads -> {}",
        total - failed,
        started.elapsed().as_secs_f64(),
        rayon::current_num_threads(),
        req.out.display()
    )?;
    if let Some(r) = first_failure {
        writeln!(out, "{failed} rows could not be calibrated (column `error`); the first is row {r}")?;
    }
    Ok(())
}

/// A float in shortest round-trip form.
fn fmt(v: f64) -> String {
    ryu::Buffer::new().format(v).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shell_words_quote_what_a_shell_would_split() {
        assert_eq!(super::shell_word("configs/a.toml"), "configs/a.toml");
        assert_eq!(super::shell_word("a b"), "'a b'");
        assert_eq!(super::shell_word("it's"), "'it'\\''s'");
    }
}
