//! `run --verify K`: re-solve K rows spread over a GPU run on the f64 CPU reference
//! and record, per output column, the largest absolute and relative deviation.
//!
//! Tolerances (the ones `tests/gpu_agreement.rs` justifies and enforces over 20,000
//! random scenarios): relative 1e-4 on every real column, plus an absolute floor
//! where a value is small next to its natural scale — shares 1e-6, prices 1e-6
//! $/Mtok, quality 1e-5, hhi 1e-2, npv and complement_npv 2e-5 times the firm's
//! money scale (sum over months of |direct| + complement + train_spend / 12),
//! consumer surplus 1e-6 times sum_t d_t M_t sum_k w_k / alpha_k. Exit months and
//! offered products must match exactly, max_iterations within 3 + a tenth. A row
//! whose reference cash comes within 1e-4 of its money scale of zero, or that has a
//! non-converged month, is a knife edge: it is counted, not compared.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backend::{ChunkSink, Outcomes, ScenarioSource};
use crate::model::{self, MAX_FIRMS, MonthRecord, Outcome, Scenario};
use crate::output::csv::FIRM_OUTPUTS;
use crate::sweep::Plan;

pub const REL: f64 = 1e-4;
pub const CASH_EDGE: f64 = 1e-4;

/// Forwards chunks to `inner`, keeping the GPU's outcomes of the sampled rows.
pub struct VerifySink<'a> {
    inner: &'a mut dyn ChunkSink,
    rows: Vec<u64>,
    pub kept: Vec<(u64, Outcome<f32>)>,
}

impl<'a> VerifySink<'a> {
    /// Samples `k` rows spread evenly over `rows`.
    pub fn new(inner: &'a mut dyn ChunkSink, rows: std::ops::Range<u64>, k: u64) -> Self {
        let n = rows.end - rows.start;
        let k = k.min(n);
        let rows = (0..k).map(|i| rows.start + ((2 * i + 1) as u128 * n as u128 / (2 * k) as u128) as u64).collect();
        VerifySink { inner, rows, kept: Vec::new() }
    }
}

impl ChunkSink for VerifySink<'_> {
    fn push(&mut self, first_row: u64, outcomes: Outcomes) -> anyhow::Result<()> {
        if let Outcomes::F32(v) = &outcomes {
            let end = first_row + v.len() as u64;
            for &r in self.rows.iter().filter(|&&r| r >= first_row && r < end) {
                self.kept.push((r, v[(r - first_row) as usize]));
            }
        }
        self.inner.push(first_row, outcomes)
    }
}

/// Deviations of one column.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ColumnDeviation {
    pub max_abs: f64,
    pub max_rel: f64,
    /// Rows beyond the tolerance.
    pub beyond: u64,
}

/// What `--verify` records in the manifest.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub rows_checked: u64,
    pub knife_edges: u64,
    pub beyond_tolerance: u64,
    pub tolerance: &'static str,
    pub columns: BTreeMap<String, ColumnDeviation>,
    /// Up to 10 deviations beyond tolerance: "row R column C: reference X, gpu Y".
    pub examples: Vec<String>,
}

/// The f64 reference of a scenario with the scales its tolerance floors use.
pub struct Scaled {
    pub out: Outcome<f64>,
    /// Per firm: the sum over months of |direct| + complement + train_spend / 12.
    pub money_scale: [f64; MAX_FIRMS],
    /// Per firm: the smallest |cash_t| / (funding + money scale up to month t), over
    /// the months it was alive at the start of.
    pub cash_edge: [f64; MAX_FIRMS],
    /// sum_t d_t M_t sum_k w_k / alpha_k: the scale of consumer surplus.
    pub surplus_scale: f64,
}

/// Solves `sc` on the f64 reference, tracing the scales of [`Scaled`].
pub fn scaled_reference(sc: &Scenario) -> Scaled {
    let m = &sc.model;
    let mut money_scale = [0.0; MAX_FIRMS];
    let mut cash_edge = [f64::INFINITY; MAX_FIRMS];
    let mut surplus_scale = 0.0;
    let inv_alpha: f64 = sc.segments().iter().map(|s| s.weight / s.price_sens).sum();
    let out = model::solve_traced(sc, &mut |r: &MonthRecord| {
        let t = r.month as i32;
        let market = m.market0 * (1.0f64 + m.market_growth).powi(t);
        surplus_scale += m.discount.powi(t) * market * inv_alpha;
        for (i, f) in sc.firms().iter().enumerate().filter(|(i, _)| r.alive & (1 << i) != 0) {
            let closed = r.released & (1 << i) == 0;
            let direct = if closed { market * r.share[i] * (r.price[i] - r.cost[i]) } else { 0.0 };
            let complement = f.platform_revenue / 12.0 * m.ad_uplift * (1.0 - r.outside_share);
            money_scale[i] += direct.abs() + complement + f.train_spend / 12.0;
            cash_edge[i] = cash_edge[i].min(r.cash[i].abs() / (f.funding + money_scale[i]));
        }
    });
    Scaled { out, money_scale, cash_edge, surplus_scale }
}

/// Compares the kept GPU rows with the f64 reference.
pub fn verify(plan: &Plan, kept: &[(u64, Outcome<f32>)]) -> Report {
    let mut rep = Report { tolerance: "relative 1e-4 plus per-column floors (src/verify.rs)", ..Default::default() };
    let names = &plan.firm_names;
    for &(row, g) in kept {
        let sc = plan.scenario(row);
        let Scaled { out: o, money_scale: money, cash_edge, surplus_scale } = scaled_reference(&sc);
        let edge = cash_edge.iter().fold(f64::INFINITY, |a, &b| a.min(b));
        rep.rows_checked += 1;
        if edge <= CASH_EDGE || o.nonconverged_months > 0 || g.nonconverged_months > 0 {
            rep.knife_edges += 1;
            continue;
        }
        let mut beyond = false;
        let mut note = |rep: &mut Report, col: String, r: f64, gv: f64, floor: f64| {
            let d = (gv - r).abs();
            let c = rep.columns.entry(col.clone()).or_default();
            c.max_abs = c.max_abs.max(d);
            if r.abs() > floor {
                c.max_rel = c.max_rel.max(d / r.abs());
            }
            if !(d <= REL * r.abs() + floor) {
                c.beyond += 1;
                beyond = true;
                if rep.examples.len() < 10 {
                    rep.examples.push(format!("row {row} {col}: reference {r}, gpu {gv}"));
                }
            }
        };
        for (i, name) in names.iter().enumerate() {
            let price = |o: &Outcome<f64>| if o.is_offered(i) { o.price[i] } else { -1.0 };
            let gprice = if g.is_offered(i) { g.price[i] as f64 } else { -1.0 };
            let per_firm = [
                (o.share[i], g.share[i] as f64, 1e-6),
                (price(&o), gprice, 1e-6),
                (o.quality[i], g.quality[i] as f64, 1e-5),
                (o.npv[i], g.npv[i] as f64, 2e-5 * money[i]),
                (o.complement_npv[i], g.complement_npv[i] as f64, 2e-5 * money[i]),
                (o.exit_month[i] as f64, g.exit_month[i] as f64, 0.0),
            ];
            for (out, (r, gv, floor)) in FIRM_OUTPUTS.iter().zip(per_firm) {
                note(&mut rep, format!("{out}.{name}"), r, gv, floor);
            }
        }
        note(&mut rep, "outside_share".into(), o.outside_share, g.outside_share as f64, 1e-6);
        note(&mut rep, "open_share".into(), o.open_share, g.open_share as f64, 1e-6);
        note(&mut rep, "hhi".into(), o.hhi, g.hhi as f64, 1e-2);
        note(&mut rep, "consumer_surplus_npv".into(), o.consumer_surplus_npv, g.consumer_surplus_npv as f64, 1e-6 * surplus_scale);
        let slack = 3 + o.max_iterations / 10;
        let iters = rep.columns.entry("max_iterations".into()).or_default();
        let di = o.max_iterations.abs_diff(g.max_iterations);
        iters.max_abs = iters.max_abs.max(di as f64);
        if di > slack {
            iters.beyond += 1;
            beyond = true;
        }
        if beyond {
            rep.beyond_tolerance += 1;
        }
    }
    rep
}

/// Rows to verify by default when a GPU ran.
pub const DEFAULT_ROWS: u64 = 64;
