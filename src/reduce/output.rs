//! `<out stem>.reduced.csv`: one row per group. The group's axis values first (a
//! bin's centre for binned axes, `never` as -1), written as the rows CSV writes its
//! axis columns (an integer axis as an integer, a real value in its shortest
//! round-trip form with `.0` on whole numbers, `30000000.0`), so that a group's axis
//! text joins the rows CSV's; then `<output>.<stat>` for every reduced output and
//! statistic, then with `best`: `best.<value>.share` for every value of the choice
//! axis (`never` for -1), `best.<output>.mean` (at the chosen value) and
//! `reference.<output>.mean` (at the reference value) per output. Statistics are
//! written in their shortest round-trip form (whole numbers without `.0`); an
//! undefined value (no rows, the std of one value) is an empty cell.

use std::path::{Path, PathBuf};

use super::ReducePlan;
use super::state::ReduceState;
use crate::model::NEVER;
use crate::model::params::Kind;
use crate::output::csv::Real;
use crate::sweep::Plan;

/// `x.csv` -> `x.reduced.csv` (and `x.shard-0-of-4.csv` -> `x.shard-0-of-4.reduced.csv`).
pub fn reduced_path(out: &Path) -> PathBuf {
    let stem = out.file_stem().map_or("sweep".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}.reduced.csv"))
}

/// A value of the choice axis as a column name: `never`, an integer, or a short real.
pub fn value_label(kind: Kind, v: f64) -> String {
    match kind {
        Kind::Month if v == NEVER as f64 => "never".into(),
        Kind::Real => number(v),
        _ => format!("{}", v as i64),
    }
}

/// Shortest round-trip form, whole numbers without `.0`.
pub fn number(v: f64) -> String {
    let s = ryu::Buffer::new().format(v).to_string();
    match s.strip_suffix(".0") {
        Some(t) => t.to_string(),
        None => s,
    }
}

/// A group's axis value as the rows CSV writes an axis value ([`crate::output::csv::format_row`]):
/// an integer axis's value as an integer, any other (a real axis's, a bin's centre)
/// by the same shortest round-trip formatter.
fn axis_cell(v: f64, integer: bool) -> String {
    if integer {
        return format!("{}", v as i64);
    }
    let mut buf = Vec::new();
    v.write_to(&mut buf);
    String::from_utf8(buf).expect("a formatted number is ASCII")
}

/// Every profile's label of a game, in profile order (see the module's comment).
pub fn profile_labels(plan: &Plan, game: &super::game::Game) -> Vec<String> {
    let labels: Vec<Vec<String>> = game
        .players
        .iter()
        .map(|p| {
            let spec = plan.axes[p.axis].param.spec;
            let integer = plan.axes[p.axis].is_integer();
            p.values
                .iter()
                .map(|&v| if spec.kind == Kind::Month && v == NEVER as f64 { "never".into() } else { axis_cell(v, integer) })
                .collect()
        })
        .collect();
    (0..game.profiles())
        .map(|q| game.strategies(q).iter().zip(&labels).map(|(&s, l)| l[s].as_str()).collect::<Vec<_>>().join("_"))
        .collect()
}

/// The reduced CSV's header.
pub fn header(plan: &Plan, rp: &ReducePlan) -> Vec<String> {
    let mut h: Vec<String> = rp.by.iter().map(|a| a.path.clone()).collect();
    for o in &rp.outputs {
        for s in &rp.stats {
            h.push(format!("{}.{}", o.name, s.name()));
        }
    }
    if let Some(b) = &rp.best {
        let kind = plan.axes[b.axis].param.spec.kind;
        h.extend(b.values.iter().map(|&v| format!("best.{}.share", value_label(kind, v))));
        h.extend(rp.outputs.iter().map(|o| format!("best.{}.mean", o.name)));
        h.extend(rp.outputs.iter().map(|o| format!("reference.{}.mean", o.name)));
    }
    if let Some(g) = &rp.game {
        let labels = profile_labels(plan, g);
        h.extend(["nash.none.share", "nash.one.share", "nash.many.share"].map(String::from));
        h.extend(labels.iter().map(|l| format!("nash.{l}.share")));
        h.push("leader.none.share".into());
        h.extend(labels.iter().map(|l| format!("leader.{l}.share")));
        h.extend(rp.outputs.iter().map(|o| format!("leader.{}.mean", o.name)));
        h.extend(rp.outputs.iter().map(|o| format!("reference.{}.mean", o.name)));
    }
    h
}

/// The reduced CSV's bytes.
pub fn csv_bytes(plan: &Plan, rp: &ReducePlan, state: &ReduceState) -> Vec<u8> {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(header(plan, rp)).expect("writing to memory");
    let cell = |v: Option<f64>| v.map_or(String::new(), number);
    for (g, st) in state.groups.iter().enumerate() {
        let mut rec: Vec<String> = Vec::new();
        for (a, s) in rp.by.iter().zip(rp.slots_of(g as u64)) {
            rec.push(axis_cell(a.label(plan, s), plan.axes[a.axis].is_integer() && a.bin(s).is_none()));
        }
        for j in 0..rp.outputs.len() {
            for &s in &rp.stats {
                rec.push(cell(st.stat(j, s)));
            }
        }
        if let (Some(b), Some(bs)) = (&rp.best, &st.best) {
            rec.extend((0..b.values.len()).map(|k| cell(bs.share(k))));
            rec.extend(bs.at_best.iter().map(|m| cell(m.mean())));
            rec.extend(bs.at_ref.iter().map(|m| cell(m.mean())));
        }
        if let Some(gs) = &st.game {
            rec.extend(gs.counts.iter().chain(&gs.nash).map(|&c| cell(gs.share(c))));
            rec.extend(std::iter::once(&gs.leader_none).chain(&gs.leader).map(|&c| cell(gs.share(c))));
            rec.extend(gs.at_leader.iter().chain(&gs.at_ref).map(|m| cell(m.mean())));
        }
        w.write_record(&rec).expect("writing to memory");
    }
    w.into_inner().expect("writing to memory")
}
